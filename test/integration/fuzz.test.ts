// Hostile input, generated (fast-check): random JSON, deep nesting, huge arrays, wrong types in every field
// the service reads, invalid UTF-8, truncated bodies. Every public and admin route answers a 2xx or 4xx,
// never a 5xx, never a hang, never a crash. In-process through the route handlers (fast: 10,000 bodies and
// more), and a share over real HTTP through uWebSockets.js (fuzz-http-redis.test.ts sends 10,000 over HTTP to
// the service in its own process on Redis). FUZZ_RUNS raises the count for a longer run.
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpAnswer, HttpRequestData, Route } from "../../src/http/http-types.ts";
import { body, query, samples } from "../helpers/fuzz-bodies.ts";
import { startService, type TestService } from "../helpers/service.ts";

const ADMIN = "fuzz-admin-token-00000001";
const SCALE = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1));

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
