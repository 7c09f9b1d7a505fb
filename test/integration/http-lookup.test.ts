// The service as a bidder sees it, on the embedded default (in-memory store seeded with the demo data),
// on both HTTP engines: every sample answers, every kind of bad request gets its 4xx, the process keeps serving.
import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { unpack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJson, type HttpEngine, postJson, startService, type TestService } from "../helpers/service.ts";

const samplesDir = new URL("../../openrtb-samples/", import.meta.url);
const samples = readdirSync(samplesDir)
  .filter((f) => f.endsWith(".json"))
  .map((f) => ({ file: f, body: JSON.parse(readFileSync(new URL(f, samplesDir), "utf8")) }));
const sample = (name: string) => structuredClone(samples.find((s) => s.file === name)?.body);

/** Sends raw bytes over a socket and returns what came back before the server closed or `waitMs` passed. */
function rawExchange(port: number, payload: string, waitMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let got = "";
    sock.on("data", (d) => {
      got += d.toString();
    });
    sock.on("error", reject);
    sock.on("close", () => resolve(got));
    sock.write(payload);
    setTimeout(() => {
      sock.destroy();
      resolve(got);
    }, waitMs);
  });
}

describe.each<HttpEngine>(["uws", "node"])("POST /v1/lookup over %s", (engine) => {
  let svc: TestService;
  let url: string;

  beforeAll(async () => {
    svc = await startService({ BODY_LIMIT_BYTES: "4096", BATCH_LIMIT: "3" }, engine);
    url = `${svc.base}/v1/lookup`;
  });
  afterAll(() => svc.stop());

  it.each(samples.filter((s) => s.file !== "coppa.json").map((s) => [s.file, s.body]))(
    "answers %s with 200 and segments",
    async (_file, body) => {
      const { status, json } = await postJson(url, body, { "x-exchange": "demo-exchange" });
      expect(status).toBe(200);
      expect(json.id).toBe(body.id);
      expect(json.segments.length).toBeGreaterThan(0);
      expect(new Set(json.segments).size).toBe(json.segments.length);
      expect(json.capped).toEqual([]);
      expect(json.degraded).toBe(false);
      expect(json.matched.length).toBeGreaterThan(0);
    },
  );

  it("answers coppa.json with 200 and nothing personal, by law", async () => {
    const { status, json } = await postJson(url, sample("coppa.json"), { "x-exchange": "demo-exchange" });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      segments: [],
      capped: [],
      matched: [],
      withheld: ["coppa"],
      degraded: false,
    });
  });

  it("takes the union of all matched IDs' segments", async () => {
    const { json } = await postJson(url, sample("eids-uid2-id5-rampid.json"));
    expect(json.matched).toEqual(["eid:uidapi.com", "eid:id5-sync.com", "eid:liveramp.com"]);
    // 4001 and 4003 are the travel partner's second-party segments: an open lookup (no LOOKUP_CALLERS)
    // never hands them out.
    expect(json.segments).toEqual(["2002", "2003", "3001", "7001"]);
  });

  it("ignores device.ifa under device.lmt = 1 and says so", async () => {
    const { json } = await postJson(url, sample("lmt-device.json"));
    expect(json.matched).toEqual(["bu"]);
    expect(json.withheld).toEqual(["lmt"]);
    // The dataset gives the withheld IFA segments 4002 and 7002; they must not leak.
    expect(json.segments).toEqual(["1003", "6003"]);
  });

  it("namespaces user.id by the exchange from the header or the query, and ignores it without one", async () => {
    const body = { id: "r1", imp: [{ id: "1" }], user: { id: "dx-7c1e9a4b52f8406d" } };
    const viaHeader = await postJson(url, body, { "x-exchange": "Demo-Exchange" });
    expect(viaHeader.json.matched).toEqual(["xu:demo-exchange"]);
    expect(viaHeader.json.segments).toEqual(["1001", "3001"]);
    const viaQuery = await postJson(`${url}?exchange=demo-exchange`, body);
    expect(viaQuery.json.segments).toEqual(["1001", "3001"]);
    const none = await postJson(url, body);
    expect(none.json).toMatchObject({ segments: [], matched: [] });
    const other = await postJson(url, body, { "x-exchange": "other-exchange" });
    expect(other.json.segments).toEqual([]);
  });

  it("answers the compact form and the batch form", async () => {
    const compact = await postJson(url, { ids: [{ type: "bu", id: "k-41c7e2a9f05b4d83" }] });
    expect(compact.status).toBe(200);
    expect(compact.json).toMatchObject({ id: null, segments: ["5003", "6002"], matched: ["bu"] });
    const batch = await postJson(url, {
      batch: [
        { id: "u1", ids: [{ type: "bu", id: "k-41c7e2a9f05b4d83" }] },
        { id: "u2", ids: [{ type: "ifa", id: "nobody" }] },
        { id: "u3", ids: [{ type: "xu:demo-exchange", id: "dx-7c1e9a4b52f8406d" }] },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.json.degraded).toBe(false);
    expect(batch.json.results.map((r: { id: string; segments: string[] }) => [r.id, r.segments])).toEqual([
      ["u1", ["5003", "6002"]],
      ["u2", []],
      ["u3", ["1001", "3001"]],
    ]);
  });

  it("refuses an ID holding a brace or a control character in the compact form, and skips it in a bid request", async () => {
    for (const id of ["k-41c7e2a9f05b4d83}", "{k-41c7e2a9f05b4d83", "k-41c7\u0000e2a9", "k-41c7\ne2a9"]) {
      const { status, json } = await postJson(url, { ids: [{ type: "bu", id }] });
      expect(status).toBe(400);
      expect(json.error).toEqual({
        code: "AUD_ERR_BAD_FIELD",
        message: "ids[0]: id holds '{', '}' or a control character",
        field: "ids[0].id",
      });
    }
    // In a bid request an unusable ID is noise: the bid keeps its other IDs.
    const body = {
      id: "r",
      user: { buyeruid: "x}:y", eids: [{ source: "uidapi.com", uids: [{ id: "u}" }] }] },
    };
    const { status, json } = await postJson(url, body);
    expect(status).toBe(200);
    expect(json.matched).toEqual([]);
  });

  it("answers in msgpack when asked", async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { accept: "application/msgpack" },
      body: JSON.stringify(sample("web-banner.json")),
    });
    expect(res.headers.get("content-type")).toBe("application/msgpack");
    const decoded = unpack(Buffer.from(await res.arrayBuffer()));
    expect(decoded).toMatchObject({ segments: ["1001", "1002", "1003"], degraded: false });
  });

  it.each([
    ["malformed JSON", "{not json", "AUD_ERR_BAD_JSON", ""],
    ["a JSON array", "[1,2]", "AUD_ERR_BAD_FIELD", "body"],
    ["id of the wrong type", JSON.stringify({ id: 7, imp: [] }), "AUD_ERR_BAD_FIELD", "id"],
    ["no id", JSON.stringify({ imp: [] }), "AUD_ERR_MISSING_FIELD", "id"],
    [
      "unknown compact type",
      JSON.stringify({ ids: [{ type: "cookie", id: "1" }] }),
      "AUD_ERR_BAD_FIELD",
      "ids[0].type",
    ],
    ["batch not an array", JSON.stringify({ batch: {} }), "AUD_ERR_BAD_FIELD", "batch"],
  ])("400 for %s, naming the field", async (_what, body, code, field) => {
    const { status, json } = await postJson(url, body);
    expect(status).toBe(400);
    expect(json).toEqual({ error: { code, message: expect.any(String), field } });
  });

  it.each<[string, unknown, { field: string; code: string }[]]>([
    ["user as a string", { id: "a", user: "u" }, [{ field: "user", code: "AUD_ERR_BAD_FIELD" }]],
    [
      "an eid uid of the wrong type",
      { id: "a", user: { eids: [{ source: "x.com", uids: [{ id: "ok" }, { id: 5 }] }] } },
      [{ field: "user.eids[0].uids[1].id", code: "AUD_ERR_BAD_FIELD" }],
    ],
    [
      "2.5 ext.eids not an array",
      { id: "a", user: { ext: { eids: {} } } },
      [{ field: "user.ext.eids", code: "AUD_ERR_BAD_FIELD" }],
    ],
    [
      "device.lmt out of range",
      { id: "a", device: { lmt: 2 } },
      [{ field: "device.lmt", code: "AUD_ERR_BAD_FIELD" }],
    ],
  ])("200 with warnings for %s: the part is skipped, never the bid", async (_what, body, warnings) => {
    const { status, json } = await postJson(url, body);
    expect(status).toBe(200);
    expect(json).toEqual({
      id: "a",
      segments: [],
      capped: [],
      degraded: false,
      matched: [],
      withheld: [],
      warnings,
    });
  });

  it("keeps a known buyeruid's segments when an EID has no source (as prebid-server accepts it)", async () => {
    const body = sample("web-banner.json");
    const user = (body.user ?? {}) as Record<string, unknown>;
    body.user = { ...user, eids: [{ uids: [{ id: "x" }] }, { source: 7 }] };
    const { status, json } = await postJson(url, body);
    expect(status).toBe(200);
    expect(json).toMatchObject({ segments: ["1001", "1002", "1003"], degraded: false });
    expect(json.warnings).toEqual([
      { field: "user.eids[0].source", code: "AUD_ERR_MISSING_FIELD" },
      { field: "user.eids[1].source", code: "AUD_ERR_BAD_FIELD" },
    ]);
    // A clean request carries no warnings member at all.
    expect((await postJson(url, sample("web-banner.json"))).json).not.toHaveProperty("warnings");
  });

  it("400 for an exchange name that is not a name", async () => {
    const { status, json } = await postJson(url, sample("web-banner.json"), { "x-exchange": "a b/c" });
    expect(status).toBe(400);
    expect(json.error.field).toBe("x-exchange");
  });

  it("400 for a batch over the limit", async () => {
    const batch = Array.from({ length: 4 }, (_, i) => ({ id: String(i), ids: [] }));
    const { status, json } = await postJson(url, { batch });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code: "AUD_ERR_TOO_MANY", field: "batch" });
    const atLimit = await postJson(url, { batch: batch.slice(0, 3) });
    expect(atLimit.status).toBe(200);
  });

  it("413 for a body over the limit, declared or streamed, and keeps serving", async () => {
    const big = JSON.stringify({ id: "x", pad: "y".repeat(5000) });
    const declared = await postJson(url, big);
    expect(declared.status).toBe(413);
    expect(declared.json.error.code).toBe("AUD_ERR_BODY_TOO_LARGE");
    const streamed = await fetch(url, {
      method: "POST",
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    const after = await postJson(url, sample("web-banner.json"));
    expect(after.status).toBe(200);
  });

  it("404 for an unknown route and 405 with Allow for a wrong method", async () => {
    const missing = await getJson(`${svc.base}/v1/nope`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("AUD_ERR_NOT_FOUND");
    const wrong = await getJson(url);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect(wrong.json.error.code).toBe("AUD_ERR_METHOD");
  });

  it("survives clients that abort mid-body or send nothing, and keeps answering", async () => {
    const port = Number(new URL(svc.base).port);
    for (let i = 0; i < 20; i++) {
      await rawExchange(
        port,
        `POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{"id":"abort`,
        5,
      );
    }
    const partial = await rawExchange(
      port,
      "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    expect(partial).toMatch(/^HTTP\/1\.1 400/);
    const after = await postJson(url, sample("web-banner.json"));
    expect(after.status).toBe(200);
  });

  it("/healthz says which HTTP engine runs; /readyz says the store answers", async () => {
    const health = (await getJson(`${svc.base}/healthz`)).json;
    expect(health).toMatchObject({
      status: "ok",
      store: "memory",
      http: { name: "uWebSockets.js", native: true },
    });
    expect(health.cache.hits + health.cache.misses).toBeGreaterThan(0);
    const ready = await fetch(`${svc.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, store: "memory" });
  });
});
