// The bytes of an answer's head, read off the socket: one status line, one content type, and the extra headers
// of the answers that carry them, whichever way the server writes them (the uWS server writes the status line
// and the content type in one call, and answers from cache without a cork of its own).
import { connect } from "node:net";
import { encode } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkServiceAnswer } from "../helpers/openapi-check.ts";
import { type HttpEngine, startService, type TestService } from "../helpers/service.ts";

const LOOKUP = JSON.stringify({ ids: [{ type: "bu", id: "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35" }] });

/** Sends one raw request on its own connection and gives back the head's lines and the body. */
function exchange(port: number, request: string): Promise<{ lines: string[]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no whole answer; got ${JSON.stringify(got.toString("latin1").slice(0, 200))}`));
    }, 3_000);
    sock.on("error", () => {});
    sock.on("data", (d) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = got.subarray(0, end).toString("latin1").split("\r\n");
      const length = Number(/^content-length: *(\d+)$/im.exec(lines.join("\n"))?.[1] ?? 0);
      if (got.length < end + 4 + length) return;
      clearTimeout(timer);
      sock.destroy();
      const body = got.subarray(end + 4, end + 4 + length);
      // Held to /openapi.json as every fetched answer is (openapi-setup.ts).
      const [method = "", path = ""] = request.split(" ", 2);
      const headers = new Map(
        lines
          .slice(1)
          .map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const status = Number(lines[0]?.split(" ")[1]);
      checkServiceAnswer({ method, url: `http://127.0.0.1:${port}${path}`, status, headers, body });
      resolve({ lines, body });
    });
    sock.write(request);
  });
}

const post = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** The values of header `name` (case-insensitive), in order. */
const header = (lines: readonly string[], name: string) =>
  lines
    .slice(1)
    .filter((l) => l.toLowerCase().startsWith(`${name}:`))
    .map((l) => l.slice(name.length + 1).trim());

describe.each<HttpEngine>(["uws", "node"])("answer heads over %s", (engine) => {
  let svc: TestService;
  let port: number;
  beforeAll(async () => {
    svc = await startService({ CACHE_TTL_MS: "600000" }, engine);
    port = svc.server.port;
  });
  afterAll(() => svc?.stop());

  it("a lookup from cache: 200 OK, one JSON content type, the answer whole", async () => {
    await exchange(port, post("/v1/lookup", LOOKUP)); // fills the cache
    for (let i = 0; i < 3; i++) {
      const { lines, body } = await exchange(port, post("/v1/lookup", LOOKUP));
      expect(lines[0]).toBe("HTTP/1.1 200 OK");
      expect(header(lines, "content-type")).toEqual(["application/json"]);
      expect(JSON.parse(body.toString("utf8")).segments.length).toBeGreaterThan(0);
    }
  });

  it("a msgpack lookup: its own content type", async () => {
    const { lines, body } = await exchange(
      port,
      post("/v1/lookup", LOOKUP, "accept: application/msgpack\r\n"),
    );
    expect(lines[0]).toBe("HTTP/1.1 200 OK");
    expect(header(lines, "content-type")).toEqual(["application/msgpack"]);
    expect(body.length).toBeGreaterThan(0);
    expect(body[0]).toBe(encode({ id: null })[0]); // a msgpack map
  });

  it("errors: 400, 404, and 405 with its Allow header", async () => {
    const bad = await exchange(port, post("/v1/lookup", "{"));
    expect(bad.lines[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(header(bad.lines, "content-type")).toEqual(["application/json"]);
    const missing = await exchange(port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(missing.lines[0]).toBe("HTTP/1.1 404 Not Found");
    expect(header(missing.lines, "content-type")).toEqual(["application/json"]);
    const wrong = await exchange(port, "GET /v1/lookup HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(wrong.lines[0]).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(header(wrong.lines, "content-type")).toEqual(["application/json"]);
    expect(header(wrong.lines, "allow")).toEqual(["POST"]);
  });

  it("an answer of async work (the metrics scrape): status, its own content type", async () => {
    const { lines, body } = await exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(lines[0]).toBe("HTTP/1.1 200 OK");
    expect(header(lines, "content-type")).toHaveLength(1);
    expect(header(lines, "content-type")[0]).toMatch(/^text\/plain/);
    expect(body.toString("utf8")).toContain("audience_http_requests_total");
  });
});
