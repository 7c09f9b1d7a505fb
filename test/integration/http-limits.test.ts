// Bodies, lines and admission against a hostile client, on both HTTP engines, each test replaying an
// attack: one 32 MB line (to an admin upload and to POST /v1/events), an oversized event batch, a request
// that would have its declared body allocated before it was admitted, trickled uploads against the bid
// path's slots, an idle upload, and Transfer-Encoding framings a proxy may read otherwise.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpEngine, postJson, startService, type TestService } from "../helpers/service.ts";

const MiB = 1024 * 1024;
const ADMIN = "admin-token-limits-0123456789";
const LINE_BYTES = 32 * MiB;

/** One NDJSON line of `bytes` bytes (a JSON object with one huge id), then `after`, pulled in 64 KiB pieces. */
function hugeLineBody(bytes: number, after: string): ReadableStream<Uint8Array> {
  const head = Buffer.from('{"type":"bu","id":"');
  const tail = Buffer.from(`"}\n${after}`);
  let sent = 0;
  const fill = bytes - head.length - 2;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent === 0) c.enqueue(head);
      if (sent >= fill) {
        c.enqueue(tail);
        c.close();
        return;
      }
      const n = Math.min(64 * 1024, fill - sent);
      c.enqueue(Buffer.alloc(n, 0x61));
      sent += n;
    },
  });
}

/** Runs `work` while sampling this process's RSS (the service runs in it); the peak growth in bytes. */
async function rssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growth: peak - before };
  } finally {
    clearInterval(timer);
  }
}

/** Opens a connection and writes `head`; the caller writes more or waits. Collects all the server says. */
function rawClient(port: number, head: string) {
  const sock = connect(port, "127.0.0.1");
  let got = "";
  const closed = new Promise<void>((r) => sock.on("close", () => r()));
  sock.on("data", (d) => {
    got += d.toString("latin1");
  });
  // The server may answer and close while we still write: EPIPE/ECONNRESET are expected then.
  sock.on("error", () => {});
  sock.write(head);
  return {
    sock,
    closed,
    got: () => got,
    /** Resolves with what has arrived once it matches `re`, or throws after `ms`. */
    async until(re: RegExp, ms = 3_000): Promise<string> {
      const end = Date.now() + ms;
      while (!re.test(got)) {
        if (Date.now() > end)
          throw new Error(`no ${re} within ${ms} ms; got ${JSON.stringify(got.slice(0, 200))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return got;
    },
  };
}

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));

describe.each<HttpEngine>(["uws", "node"])("limits over %s", (engine) => {
  let svc: TestService;
  let port: number;

  beforeAll(async () => {
    // The settings that ship, but for the admin token the upload routes need.
    svc = await startService({ ADMIN_TOKENS: `${ADMIN}=*` }, engine);
    port = svc.server.port;
  });
  afterAll(() => svc?.stop());

  it("rejects a 32 MB line in an admin upload by its line number, in well under a second and flat memory, and loads the row after it", async () => {
    const after = `${JSON.stringify({ type: "bu", id: "after-long-line", segment: "1001" })}\n`;
    const t0 = performance.now();
    const { result: res, growth } = await rssGrowth(async () => {
      const r = await fetch(`${svc.base}/v1/admin/memberships?format=ndjson`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}` },
        body: hugeLineBody(LINE_BYTES, after),
        duplex: "half",
      } as RequestInit);
      return { status: r.status, json: await r.json() };
    });
    const ms = performance.now() - t0;
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      read: 2,
      loaded: 1,
      rejected: 1,
      errors: [{ line: 1, reason: "line longer than 1048576 bytes" }],
    });
    // The bound: the old reader took 0.9 s and 611 MB of RSS for this line.
    expect(ms).toBeLessThan(1_000);
    // The reader keeps at most 1 MiB of the line; the allowance is for the 64 KiB pieces the client makes
    // and the server copies, garbage until the next collection, in this same process.
    expect(growth).toBeLessThan(96 * MiB);
  });

  it("rejects a 32 MB event batch with 413 at once, and a line over 64 KiB in a batch by its line number", async () => {
    const t0 = performance.now();
    const big = await fetch(`${svc.base}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: hugeLineBody(LINE_BYTES, ""),
      duplex: "half",
    } as RequestInit).catch((err: Error) => err);
    // The server answers 413 as soon as the body passes EVENTS_BODY_LIMIT_BYTES and closes the connection;
    // the client may see the answer or, still sending, the connection reset.
    if (big instanceof Response) {
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { code: string } }).error.code).toBe("AUD_ERR_BODY_TOO_LARGE");
    }
    expect(performance.now() - t0).toBeLessThan(1_000);

    const line = `{"type":"bu","id":"${"b".repeat(70 * 1024)}","campaign":"c1","imp":"i1"}`;
    const { status, json } = await postJson(`${svc.base}/v1/events`, `${line}\n`, {
      authorization: `Bearer ${ADMIN}`,
    });
    expect(status).toBe(200);
    expect(json.errors).toEqual([{ line: 1, reason: "line longer than 65536 bytes", field: "" }]);
  });

  it("answers an event batch over EVENTS_BODY_LIMIT_BYTES (1 MiB) with 413 from its Content-Length", async () => {
    const c = rawClient(port, `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB + 1}\r\n\r\n`);
    const answer = await c.until(/\r\n\r\n\{.*\}$/s);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(bodyOf(answer).error.code).toBe("AUD_ERR_BODY_TOO_LARGE");
    c.sock.destroy();
  });

  it("sheds a request before reading or allocating its body when MAX_IN_FLIGHT is taken", async () => {
    const one = await startService({ MAX_IN_FLIGHT: "1" }, engine);
    try {
      const body = JSON.stringify({ ids: [{ type: "bu", id: "held" }] });
      // The first request holds the only slot while its body is still to come.
      const first = rawClient(
        one.server.port,
        `POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
      );
      await new Promise((r) => setTimeout(r, 100));
      expect(one.service.admission.inFlight).toBe(1);
      // The second sends headers only, declaring 60 KB: the shed answer comes without a byte of body sent.
      const second = rawClient(
        one.server.port,
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n",
      );
      const shed = await second.until(/\r\n\r\n\{.*\}$/s);
      expect(shed).toMatch(/^HTTP\/1\.1 503 /);
      expect(bodyOf(shed).error.code).toBe("AUD_ERR_OVERLOADED");
      // The unread body cannot be told from a next request: the connection is closed.
      await second.closed;
      first.sock.write(body.slice(5));
      expect(await first.until(/"segments"/)).toMatch(/^HTTP\/1\.1 200 /);
      first.sock.destroy();
      expect(one.service.admission.shed).toBe(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(one.service.admission.inFlight).toBe(0);
    } finally {
      await one.stop();
    }
  });

  it("keeps answering lookups while MAX_STREAMS_IN_FLIGHT uploads trickle, sheds one more, and times idle ones out with 408", async () => {
    // MAX_IN_FLIGHT as small as the stream bound: were uploads counted with lookups, none would be answered.
    const s = await startService({ ADMIN_TOKENS: `${ADMIN}=*`, MAX_IN_FLIGHT: "8" }, engine);
    try {
      const head =
        "POST /v1/admin/memberships?format=ndjson HTTP/1.1\r\nHost: x\r\n" +
        `Authorization: Bearer ${ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      const row = `${JSON.stringify({ type: "bu", id: "trickle", segment: "1001" })}\n`;
      const uploads = Array.from({ length: 8 }, () => rawClient(s.server.port, head));
      const sentAt = performance.now();
      for (const u of uploads) u.sock.write(`${row.length.toString(16)}\r\n${row}\r\n`);
      await new Promise((r) => setTimeout(r, 200));
      expect(s.service.admission.streamsInFlight).toBe(8);

      for (let i = 0; i < 10; i++) {
        const { status } = await postJson(`${s.base}/v1/lookup`, { ids: [{ type: "bu", id: `u${i}` }] });
        expect(status).toBe(200);
      }
      const ninth = rawClient(s.server.port, head);
      expect(await ninth.until(/\r\n\r\n\{.*\}$/s)).toMatch(/^HTTP\/1\.1 503 /);

      // STREAM_IDLE_TIMEOUT_MS (5 s as shipped) after their last chunk, each upload gets 408 and is closed.
      const answers = await Promise.all(uploads.map((u) => u.closed.then(() => u.got())));
      const waited = performance.now() - sentAt;
      for (const a of answers) {
        expect(a).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
        expect(bodyOf(a).error.code).toBe("AUD_ERR_REQUEST_TIMEOUT");
      }
      expect(waited).toBeGreaterThanOrEqual(4_900);
      // The timer is checked at most once per timeout: the answer comes within two of them.
      expect(waited).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(s.service.admission.streamsInFlight).toBe(0);
    } finally {
      await s.stop();
    }
  }, 20_000);

  const FRAMING = {
    code: "AUD_ERR_BAD_FIELD",
    message: "Transfer-Encoding must be chunked alone, and never sent with Content-Length",
    field: "transfer-encoding",
  };
  const lookupWith = (headers: string) =>
    rawClient(port, `POST /v1/lookup HTTP/1.1\r\nHost: x\r\n${headers}\r\n5\r\nhello\r\n0\r\n\r\n`);

  it.each(["gzip, chunked", "chunked, gzip", "gzip"])(
    "refuses Transfer-Encoding: %s with 400 naming the header, and closes the connection",
    async (te) => {
      const c = lookupWith(`Transfer-Encoding: ${te}\r\n`);
      await c.closed;
      const answer = c.got();
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer.toLowerCase()).toContain("connection: close");
      expect(bodyOf(answer).error).toEqual(FRAMING);
    },
  );

  it("refuses Content-Length with Transfer-Encoding, closing the connection", async () => {
    const c = lookupWith("Content-Length: 10\r\nTransfer-Encoding: chunked\r\n");
    await c.closed;
    if (engine === "uws") {
      // The uWS parser drops such a request before any route sees it: no answer, the connection closed.
      expect(c.got()).toBe("");
    } else {
      expect(c.got()).toMatch(/^HTTP\/1\.1 400 /);
      expect(bodyOf(c.got()).error).toEqual(FRAMING);
    }
  });

  it("still takes plain chunked bodies, whatever the case and surrounding spaces", async () => {
    const body = JSON.stringify({ ids: [{ type: "bu", id: "chunked" }] });
    const c = rawClient(
      port,
      "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding:  Chunked \r\n\r\n" +
        `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(await c.until(/"segments"/)).toMatch(/^HTTP\/1\.1 200 /);
    c.sock.destroy();
  });
});
