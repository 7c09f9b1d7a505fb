// The generic HTTP layer on both engines, with routes of its own (no domain logic): path parameters,
// 404 vs 405 with patterns, streamed uploads with backpressure and a size limit, aborted uploads,
// handler errors on stream routes, and buffered routes as before.
import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import { requireScope } from "../../src/http/admin-auth.ts";
import { BodyStream } from "../../src/http/body-stream.ts";
import { type HttpAnswer, type HttpRequestData, jsonAnswer, type Route } from "../../src/http/http-types.ts";
import { startNodeServer } from "../../src/http/node-server.ts";
import { type RunningServer, startUwsServer } from "../../src/http/uws-server.ts";
import type { HttpEngine } from "../helpers/service.ts";

const MiB = 1024 * 1024;
const SMALL_LIMIT = 64 * 1024;
const UPLOAD_BYTES = 20 * MiB;

/** What the routes saw, for the assertions that cannot be read off an answer. */
interface Seen {
  uploads: number;
  /** Messages of the errors upload handlers got from their stream. */
  streamErrors: string[];
  internalErrors: unknown[];
}

function testRoutes(seen: Seen): Route[] {
  const echoParams = (req: { path: string; params: readonly string[] }): HttpAnswer =>
    jsonAnswer(200, { route: req.path, params: req.params });
  /** Reads the whole stream through a writable that takes `delayMs` per chunk; hashes and counts it. */
  const upload = async (req: HttpRequestData): Promise<HttpAnswer> => {
    seen.uploads++;
    const stream = req.stream;
    if (stream === null) throw new Error("stream route without a stream");
    const delayMs = Number(new URLSearchParams(req.query).get("delayMs") ?? "0");
    const hash = createHash("sha256");
    let bytes = 0;
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        hash.update(chunk);
        maxBuffered = Math.max(maxBuffered, stream.readableLength);
        if (delayMs > 0) setTimeout(cb, delayMs);
        else setImmediate(cb);
      },
    });
    try {
      await pipeline(stream, slow);
    } catch (err) {
      seen.streamErrors.push((err as Error).message);
      throw err;
    }
    return jsonAnswer(200, { name: req.params[0], bytes, sha256: hash.digest("hex"), maxBuffered });
  };
  return [
    { method: "GET", path: "/v1/things/:type/:id", body: "none", handler: echoParams },
    // Same shape, other parameter names and method: one pattern, two methods.
    { method: "DELETE", path: "/v1/things/:kind/:key", body: "none", handler: echoParams },
    { method: "POST", path: "/v1/things/special/:id", body: "none", handler: echoParams },
    { method: "GET", path: "/v1/things/special/one", body: "none", handler: echoParams },
    {
      method: "POST",
      path: "/v1/echo",
      body: "buffered",
      handler: (req) =>
        jsonAnswer(200, {
          bytes: req.body.length,
          text: req.body.toString(),
          stream: req.stream === null ? null : "stream",
          params: req.params,
          authorization: req.authorization,
          contentEncoding: req.contentEncoding,
          contentType: req.contentType,
        }),
    },
    { method: "PUT", path: "/v1/uploads/:name", body: "stream", handler: upload },
    {
      method: "PUT",
      path: "/v1/guarded/:name",
      body: "stream",
      handler: requireScope(
        new Map([["guard-token-0123456789", new Set(["users:write"])]]),
        "users:write",
        upload,
      ),
    },
    {
      method: "PUT",
      path: "/v1/fail/:how",
      body: "stream",
      handler: async (req) => {
        if (req.params[0] === "api") throw new ApiError("AUD_ERR_BAD_FIELD", "name is wrong", "name");
        if (req.params[0] === "early") throw new Error("bug before reading");
        // Reads a little, then fails like a bug would.
        for await (const _chunk of req.stream ?? []) break;
        throw new Error("bug while reading");
      },
    },
  ];
}

/** A random body of `total` bytes as a web stream, pulled in `chunk`s, and its sha256 once fully sent. */
function randomBody(
  total: number,
  chunk = 64 * 1024,
): { body: ReadableStream<Uint8Array>; sha256: () => string } {
  const hash = createHash("sha256");
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) {
        c.close();
        return;
      }
      const part = randomBytes(Math.min(chunk, total - sent));
      hash.update(part);
      sent += part.length;
      c.enqueue(part);
    },
  });
  return { body, sha256: () => hash.digest("hex") };
}

/** Writes `head`, then `chunks` one by one (pausing `gapMs`), and returns all the server said until it closed. */
function rawExchange(port: number, head: string, chunks: readonly Buffer[] = [], gapMs = 2): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let got = "";
    let closed = false;
    sock.on("data", (d) => {
      got += d.toString();
    });
    // The server may close while we still write (it answered early): EPIPE/ECONNRESET are expected then.
    sock.on("error", () => {});
    sock.on("close", () => {
      closed = true;
      resolve(got);
    });
    sock.write(head);
    (async () => {
      for (const c of chunks) {
        if (closed) return;
        sock.write(c);
        await new Promise((r) => setTimeout(r, gapMs));
      }
      // Whatever was not answered by now will not be.
      setTimeout(() => sock.destroy(), 2_000);
    })();
  });
}

/** Sends each payload on one connection once the previous one is answered (uWS drops pipelined requests). */
function keepAliveExchange(port: number, payloads: readonly Buffer[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    const answers: string[] = [];
    let got = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve([...answers, got]);
    }, 5_000);
    sock.on("data", (d) => {
      got += d.toString("latin1");
      // Every answer here is a JSON object with a Content-Length: complete when the body is.
      const len = /content-length: (\d+)\r\n/i.exec(got);
      const head = got.indexOf("\r\n\r\n");
      if (len === null || head < 0 || got.length < head + 4 + Number(len[1])) return;
      answers.push(got);
      got = "";
      const next = payloads[answers.length];
      if (next !== undefined) sock.write(next);
      else {
        clearTimeout(timer);
        sock.destroy();
        resolve(answers);
      }
    });
    sock.on("error", reject);
    sock.write(payloads[0] ?? Buffer.alloc(0));
  });
}

// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
const json = (res: Response): Promise<any> => res.json();

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each<HttpEngine>(["uws", "node"])("generic HTTP over %s", (engine) => {
  const seen: Seen = { uploads: 0, streamErrors: [], internalErrors: [] };
  let server: RunningServer;
  /** Same routes, ADMIN_BODY_LIMIT_BYTES-like limit of 64 KiB. */
  let small: RunningServer;
  let base: string;

  beforeAll(async () => {
    const start = engine === "node" ? startNodeServer : startUwsServer;
    const common = {
      host: "127.0.0.1",
      port: 0,
      bodyLimitBytes: 4096,
      routes: testRoutes(seen),
      onInternalError: (err: unknown) => {
        seen.internalErrors.push(err);
      },
    };
    server = await start({ ...common, streamBodyLimitBytes: 64 * MiB });
    small = await start({ ...common, streamBodyLimitBytes: SMALL_LIMIT });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => {
    server.close();
    small.close();
  });

  describe("path parameters", () => {
    it.each([
      ["/v1/things/eid%3Auidapi.com/abc", "/v1/things/:type/:id", ["eid:uidapi.com", "abc"]],
      ["/v1/things/a%2Fb/c%20d+e", "/v1/things/:type/:id", ["a/b", "c d+e"]],
      ["/v1/things/special/one", "/v1/things/special/one", []],
      ["/v1/things/special/two", "/v1/things/:type/:id", ["special", "two"]],
      ["/v1/things/special/one?x=1", "/v1/things/special/one", []],
    ])("GET %s -> %s, decoded", async (url, route, params) => {
      const res = await fetch(`${base}${url}`);
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ route, params });
    });

    it("serves the most specific pattern that has the method", async () => {
      const post = await fetch(`${base}/v1/things/special/two`, { method: "POST" });
      expect(await json(post)).toEqual({ route: "/v1/things/special/:id", params: ["two"] });
      const del = await fetch(`${base}/v1/things/eid%3Ax/7`, { method: "DELETE" });
      expect(await json(del)).toEqual({ route: "/v1/things/:kind/:key", params: ["eid:x", "7"] });
    });

    it("405 with Allow for a known pattern and the wrong method; Allow lists every matching pattern's", async () => {
      const put = await fetch(`${base}/v1/things/x/y`, { method: "PUT" });
      expect(put.status).toBe(405);
      expect(put.headers.get("allow")).toBe("GET, DELETE");
      expect((await json(put)).error.code).toBe("AUD_ERR_METHOD");
      const special = await fetch(`${base}/v1/things/special/two`, { method: "PUT" });
      expect(special.status).toBe(405);
      expect(special.headers.get("allow")).toBe("POST, GET, DELETE");
      await special.body?.cancel();
      const echo = await fetch(`${base}/v1/echo`);
      expect(echo.status).toBe(405);
      expect(echo.headers.get("allow")).toBe("POST");
      await echo.body?.cancel();
    });

    it.each(["/v1/things/x", "/v1/things/x/y/z", "/v1/things//y", "/v1/things/x/y/", "/v1/nope", "/"])(
      "404 for %s",
      async (url) => {
        const res = await fetch(`${base}${url}`);
        expect(res.status).toBe(404);
        expect((await json(res)).error.code).toBe("AUD_ERR_NOT_FOUND");
      },
    );

    it("400 naming the path for a malformed %-escape", async () => {
      const res = await fetch(`${base}/v1/things/%zz/b`);
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ code: "AUD_ERR_BAD_FIELD", field: "path" });
    });
  });

  describe("buffered routes", () => {
    it("read the whole body and the headers handlers use; no params, no stream", async () => {
      const res = await fetch(`${base}/v1/echo`, {
        method: "POST",
        headers: {
          authorization: "Bearer abc",
          "content-encoding": "identity",
          "content-type": "text/plain",
        },
        body: "hello",
      });
      expect(await json(res)).toEqual({
        bytes: 5,
        text: "hello",
        stream: null,
        params: [],
        authorization: "Bearer abc",
        contentEncoding: "identity",
        contentType: "text/plain",
      });
      const bare = await json(await fetch(`${base}/v1/echo`, { method: "POST", body: "x" }));
      expect(bare).toMatchObject({ authorization: "", contentEncoding: "" });
    });

    it("413 over BODY_LIMIT_BYTES, then keep serving", async () => {
      const res = await fetch(`${base}/v1/echo`, { method: "POST", body: "y".repeat(5000) });
      expect(res.status).toBe(413);
      expect((await json(res)).error.code).toBe("AUD_ERR_BODY_TOO_LARGE");
      const after = await fetch(`${base}/v1/echo`, { method: "POST", body: "ok" });
      expect((await json(after)).text).toBe("ok");
    });
  });

  describe("stream routes", () => {
    it("a ~20 MB upload read slowly arrives whole, with the socket paused instead of buffering", async () => {
      const { body, sha256 } = randomBody(UPLOAD_BYTES);
      const res = await fetch(`${base}/v1/uploads/big%20one?delayMs=2`, {
        method: "PUT",
        body,
        duplex: "half",
      } as RequestInit);
      expect(res.status).toBe(200);
      const got = await json(res);
      expect(got).toMatchObject({ name: "big one", bytes: UPLOAD_BYTES, sha256: sha256() });
      // Without backpressure the slow reader would let most of the 20 MB pile up in the stream.
      expect(got.maxBuffered).toBeLessThan(4 * MiB);
    });

    it("an upload with a declared length arrives whole too, at full speed", async () => {
      const data = randomBytes(3 * MiB);
      const res = await fetch(`${base}/v1/uploads/fixed`, { method: "PUT", body: data });
      expect(await json(res)).toMatchObject({
        bytes: data.length,
        sha256: createHash("sha256").update(data).digest("hex"),
      });
    });

    it("a connection serves its next requests after streamed uploads read slowly", async () => {
      const bodies = [3 * MiB, 2 * MiB + 12_345, 1 * MiB + 512 * 1024].map((n) => randomBytes(n));
      const answers = await keepAliveExchange(server.port, [
        ...bodies.map((b, i) =>
          Buffer.concat([
            Buffer.from(
              `PUT /v1/uploads/u${i}?delayMs=2 HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n\r\n`,
            ),
            b,
          ]),
        ),
        Buffer.from("GET /v1/things/next/one HTTP/1.1\r\nHost: x\r\n\r\n"),
      ]);
      expect(answers).toHaveLength(4);
      bodies.forEach((b, i) => {
        expect(answers[i]).toMatch(/^HTTP\/1\.1 200 /);
        expect(answers[i]).toContain(`"bytes":${b.length}`);
      });
      expect(answers[3]).toMatch(/^HTTP\/1\.1 200 /);
      expect(answers[3]).toContain('{"route":"/v1/things/:type/:id","params":["next","one"]}');
    });

    it("413 at once for a declared Content-Length over the limit, without calling the handler", async () => {
      const before = seen.uploads;
      const answer = await rawExchange(
        small.port,
        `PUT /v1/uploads/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${SMALL_LIMIT + 1}\r\n\r\n`,
        [Buffer.alloc(1000)],
      );
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain("AUD_ERR_BODY_TOO_LARGE");
      expect(seen.uploads).toBe(before);
    });

    it("413 when a chunked body crosses the limit; the handler's stream is destroyed", async () => {
      const errorsBefore = seen.streamErrors.length;
      const chunk = Buffer.concat([Buffer.from("4000\r\n"), Buffer.alloc(0x4000, 97), Buffer.from("\r\n")]);
      const answer = await rawExchange(
        small.port,
        "PUT /v1/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        Array.from({ length: 16 }, () => chunk),
      );
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain("AUD_ERR_BODY_TOO_LARGE");
      await waitFor(() => seen.streamErrors.length > errorsBefore);
      expect(seen.streamErrors.at(-1)).toMatch(/exceeds 65536 bytes/);
      const ok = await fetch(`http://127.0.0.1:${small.port}/v1/uploads/fits`, {
        method: "PUT",
        body: Buffer.alloc(SMALL_LIMIT),
      });
      expect(await json(ok)).toMatchObject({ bytes: SMALL_LIMIT });
    });

    it("a client aborting mid-upload errors the handler's stream, is not reported as a bug, and the server goes on", async () => {
      const errorsBefore = seen.streamErrors.length;
      const internalBefore = seen.internalErrors.length;
      for (let i = 0; i < 5; i++) {
        const sock = connect(server.port, "127.0.0.1");
        sock.on("error", () => {});
        await new Promise<void>((r) => sock.on("connect", () => r()));
        sock.write(
          `PUT /v1/uploads/gone?delayMs=1 HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * MiB}\r\n\r\n`,
        );
        sock.write(randomBytes(2 * MiB));
        await new Promise((r) => setTimeout(r, 30));
        sock.destroy();
      }
      await waitFor(() => seen.streamErrors.length >= errorsBefore + 5);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen.internalErrors.length).toBe(internalBefore);
      const { body, sha256 } = randomBody(MiB);
      const res = await fetch(`${base}/v1/uploads/after`, {
        method: "PUT",
        body,
        duplex: "half",
      } as RequestInit);
      expect(await json(res)).toMatchObject({ bytes: MiB, sha256: sha256() });
    });

    it("errors thrown by a stream handler become the usual answers", async () => {
      const internalBefore = seen.internalErrors.length;
      const api = await fetch(`${base}/v1/fail/api`, { method: "PUT", body: "abc" });
      expect(api.status).toBe(400);
      expect((await json(api)).error).toMatchObject({ code: "AUD_ERR_BAD_FIELD", field: "name" });
      expect(seen.internalErrors.length).toBe(internalBefore);
      for (const how of ["early", "reading"]) {
        const res = await fetch(`${base}/v1/fail/${how}`, { method: "PUT", body: randomBytes(256 * 1024) });
        expect(res.status).toBe(500);
        expect((await json(res)).error.code).toBe("AUD_ERR_INTERNAL");
      }
      expect(seen.internalErrors.length).toBe(internalBefore + 2);
    });

    it("an answer given before the body is read (here 401 from requireScope) closes the connection", async () => {
      const answer = await rawExchange(
        server.port,
        `PUT /v1/guarded/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-0123456789\r\nContent-Length: ${MiB}\r\n\r\n`,
        [Buffer.alloc(64 * 1024)],
      );
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer.toLowerCase()).toContain("www-authenticate: bearer");
      const { body, sha256 } = randomBody(MiB);
      const ok = await fetch(`${base}/v1/guarded/y`, {
        method: "PUT",
        headers: { authorization: "Bearer guard-token-0123456789" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(await json(ok)).toMatchObject({ name: "y", bytes: MiB, sha256: sha256() });
    });
  });
});

// The piece both servers share, with a fake socket: when it pauses and resumes, and what it ends with.
describe("BodyStream", () => {
  const source = () => {
    const calls: string[] = [];
    return { calls, pause: () => calls.push("pause"), resume: () => calls.push("resume") };
  };

  it("pauses the source once its buffer is full and resumes it when read", async () => {
    const src = source();
    const body = new BodyStream(10 * MiB, src);
    for (let i = 0; i < 4; i++) expect(body.feed(Buffer.alloc(512 * 1024))).toBe(true);
    expect(src.calls).toEqual(["pause"]);
    body.read();
    await new Promise((r) => setImmediate(r));
    expect(src.calls).toEqual(["pause", "resume"]);
  });

  it("resumes a paused source when the last chunk arrives: the connection has a next request to read", () => {
    const src = source();
    const body = new BodyStream(10 * MiB, src);
    body.feed(Buffer.alloc(2 * MiB));
    body.receivedAll();
    expect(src.calls).toEqual(["pause", "resume"]);
    expect(body.complete).toBe(true);
  });

  it("is destroyed with a 413 ApiError past the limit, and with an abort error when the client goes away", () => {
    const big = new BodyStream(1000, source());
    big.on("error", () => {});
    expect(big.feed(Buffer.alloc(600))).toBe(true);
    expect(big.feed(Buffer.alloc(600))).toBe(false);
    expect(big.errored).toBeInstanceOf(ApiError);
    expect((big.errored as ApiError).code).toBe("AUD_ERR_BODY_TOO_LARGE");

    const gone = new BodyStream(1000, source());
    gone.on("error", () => {});
    gone.feed(Buffer.alloc(10));
    gone.abort();
    expect(gone.isAbort(gone.errored)).toBe(true);
    expect(gone.isAbort(new Error("other"))).toBe(false);

    const whole = new BodyStream(1000, source());
    whole.receivedAll();
    whole.abort();
    expect(whole.destroyed).toBe(false);
  });
});
