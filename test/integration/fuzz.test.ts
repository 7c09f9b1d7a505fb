// Hostile input, generated (fast-check): random JSON, deep nesting, huge arrays, wrong types in every field
// the service reads, invalid UTF-8, truncated bodies. Every public and admin route answers a 2xx or 4xx,
// never a 5xx, never a hang, never a crash. In-process through the route handlers (fast: 10,000 bodies and
// more), and a share over real HTTP through uWebSockets.js. FUZZ_RUNS raises the count for a longer run.
import { readdirSync, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpAnswer, HttpRequestData, Route } from "../../src/http/http-types.ts";
import { startService, type TestService } from "../helpers/service.ts";

const ADMIN = "fuzz-admin-token-00000001";
const SCALE = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1));
const SAMPLES_DIR = new URL("../../openrtb-samples/", import.meta.url);
const samples = readdirSync(SAMPLES_DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => readFileSync(new URL(f, SAMPLES_DIR), "utf8"));

let svc: TestService;
const handlers = new Map<string, Route>();

beforeAll(async () => {
  // EVENTS_OPEN: the event routes read every field a fuzzed request sends, not only the key.
  svc = await startService({ ADMIN_TOKENS: `${ADMIN}=*`, EVENTS_OPEN: "true" });
  for (const r of svc.service.routes) handlers.set(`${r.method} ${r.path}`, r);
});
afterAll(() => svc?.stop());

function request(route: Route, body: Buffer, query = "", params: string[] = []): HttpRequestData {
  return {
    method: route.method,
    path: route.path,
    params,
    query,
    exchange: "",
    accept: "",
    contentType: "",
    contentEncoding: "",
    authorization: `Bearer ${ADMIN}`,
    body: route.body === "buffered" ? body : Buffer.alloc(0),
    stream: route.body === "stream" ? Readable.from([body]) : null,
  };
}

/**
 * Runs a handler as a server would: a thrown ApiError is a 4xx; anything else, or no answer in 2 s, fails.
 * `refused`: a 4xx, or a batch summary (events, uploads) that rejected lines.
 */
async function answer(route: Route, req: HttpRequestData): Promise<{ status: number; refused: boolean }> {
  let a: HttpAnswer;
  try {
    const r = route.handler(req);
    a = r instanceof Promise ? await Promise.race([r, hang()]) : r;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (typeof status !== "number") throw err;
    return { status, refused: true };
  }
  const summary =
    a.status === 200 && a.contentType === "application/json" ? JSON.parse(String(a.body)) : null;
  return { status: a.status, refused: a.status >= 400 || (summary?.rejected ?? 0) > 0 };
}

const hang = (): Promise<never> =>
  new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 2 s")), 2_000).unref());

// --- generators ---------------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 6 });
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.constant("x".repeat(2_000)),
  fc.constant(Number.MAX_SAFE_INTEGER),
);

/** A sample with one field (at any depth) replaced by a value of another type, or removed. */
const mutatedSample = fc
  .tuple(
    fc.constantFrom(...samples),
    fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
    wrongValue,
    fc.boolean(),
  )
  .map(([text, path, value, remove]) => {
    const root = JSON.parse(text) as Record<string, unknown>;
    let node: unknown = root;
    for (let i = 0; i < path.length; i++) {
      if (typeof node !== "object" || node === null) break;
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[(path[i] as number) % keys.length] as string;
      const last = i === path.length - 1 || typeof (node as Record<string, unknown>)[key] !== "object";
      if (last) {
        if (remove) delete (node as Record<string, unknown>)[key];
        else (node as Record<string, unknown>)[key] = value;
        break;
      }
      node = (node as Record<string, unknown>)[key];
    }
    return Buffer.from(JSON.stringify(root));
  });

const deepNesting = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom("[", '{"a":'))
  .map(([n, open]) => Buffer.from(open.repeat(n)));
const hugeArray = fc
  .tuple(fc.integer({ min: 1_000, max: 15_000 }), fc.constantFrom("ids", "batch", "imp", "campaigns"))
  .map(([n, key]) =>
    Buffer.from(
      JSON.stringify({
        id: "r",
        [key]: Array.from({ length: n }, (_, i) => ({ type: "bu", id: String(i) })),
      }),
    ),
  );
const invalidUtf8 = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b));
const truncated = fc
  .tuple(fc.constantFrom(...samples), fc.double({ min: 0, max: 1, noNaN: true }))
  .map(([t, f]) => Buffer.from(t.slice(0, Math.floor(t.length * f))));
const jsonBody = anyJson.map((v) => Buffer.from(JSON.stringify(v)));
const compactish = fc
  .record(
    {
      ids: fc.oneof(wrongValue, fc.array(fc.record({ type: wrongValue, id: wrongValue }), { maxLength: 5 })),
    },
    { requiredKeys: [] },
  )
  .map((v) => Buffer.from(JSON.stringify(v)));

const body = fc.oneof(
  { weight: 4, arbitrary: mutatedSample },
  { weight: 2, arbitrary: jsonBody },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: hugeArray },
  { weight: 1, arbitrary: invalidUtf8 },
  { weight: 1, arbitrary: truncated },
  { weight: 1, arbitrary: compactish },
);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        "type",
        "id",
        "campaign",
        "imp",
        "ts",
        "token",
        "format",
        "expand",
        "min_confidence",
        "campaigns",
        "exchange",
        "strict",
        "replace_segment",
      ),
      fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("bu", "ifa", "1", "gif", "%ZZ", "-1", "1e999")),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&"));

// --- properties ---------------------------------------------------------------------------------------

const ROUTES: [string, number][] = [
  ["POST /v1/lookup", 4_000],
  ["POST /v1/enrich", 3_000],
  ["GET /v1/events/imp", 1_200],
  ["POST /v1/events", 800],
  ["POST /v1/admin/memberships", 300],
  ["POST /v1/admin/links", 250],
  ["PUT /v1/admin/deals", 250],
  ["PUT /v1/admin/caps", 200],
  ["PUT /v1/admin/taxonomy", 200],
];

describe("generated hostile input, through every route's handler", () => {
  it("covers 10,000 bodies in all", () => {
    expect(ROUTES.reduce((n, [, runs]) => n + runs, 0)).toBeGreaterThanOrEqual(10_000);
  });

  it.each(ROUTES)(
    "%s answers only 2xx or 4xx (%i bodies)",
    async (name, runs) => {
      const route = handlers.get(name);
      expect(route).toBeDefined();
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(body, query, async (b, q) => {
          const a = await answer(route as Route, request(route as Route, b, q));
          if (a.refused) refused++;
          return a.status >= 200 && a.status < 500;
        }),
        { numRuns: runs * SCALE },
      );
      // The generators reach the validation: a good share of the bodies is refused.
      expect(refused).toBeGreaterThan(runs / 10);
    },
    120_000,
  );
});

describe("generated hostile input over HTTP (uWebSockets.js)", () => {
  it("answers 2xx or 4xx to raw bodies, keeps answering, and bounds what it reads", async () => {
    const paths = ["/v1/lookup", "/v1/enrich", "/v1/events", "/v1/nope"];
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom(...paths), async (b, path) => {
        const r = await fetch(`${svc.base}${path}`, { method: "POST", body: b });
        await r.arrayBuffer();
        return r.status >= 200 && r.status < 500;
      }),
      { numRuns: 400 * SCALE },
    );
    const ok = await fetch(`${svc.base}/v1/lookup`, { method: "POST", body: samples[0] });
    expect(ok.status).toBe(200);
  }, 120_000);
});
