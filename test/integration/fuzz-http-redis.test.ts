// Hostile input over real HTTP to the service as it ships: its own process (src/main.ts, one worker thread per
// core), on a real redis-server, at the shipped deadlines. 10,000 generated bodies and more (fast-check:
// invalid UTF-8, huge numbers, deep nesting, duplicate keys, escapes and look-alikes in keys, truncated JSON,
// wrong types in every field the bid-time routes read) on keep-alive connections, a dozen at a time. Every
// answer is a 2xx or a 4xx with the documented error body, never a 5xx, a dropped connection or a hang; the
// process is alive afterwards, and every worker answers the known ID with exactly its segments, not degraded.
// FUZZ_SEED replays a run (a failure names its seed); FUZZ_RUNS multiplies the bodies.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERRORS } from "../../src/errors.ts";
import { bidTimeBodies, body, eventBatches, hostileQuery } from "../helpers/fuzz-bodies.ts";
import { type MainProcess, startSourceService } from "../helpers/main-process.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ADMIN = "fuzz-http-admin-token-0001";
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SCALE = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1));
/** The shipped BODY_LIMIT_BYTES: bid-time bodies stay within it (a larger one is cut to it). */
const BODY_LIMIT = 64 * 1024;
/** Connections sending at once. */
const CONCURRENCY = 12;
/**
 * Streamed requests (admin uploads, POST /v1/events) sent at once: the shipped MAX_STREAMS_IN_FLIGHT, past
 * which the service sheds them with a 503 by design.
 */
const STREAMS = 8;

/** In many fuzzed bodies, so that answers carry its segments and enrich writes them into hostile bodies. */
const KNOWN = "fuzz-known-buyer-1";
const KNOWN_SEGMENTS = ["fz-101", "fz-102", "fz-103"];

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** One request on `agent`'s keep-alive connections; rejects on a connection error or no answer in 10 s. */
function send(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  payload: Buffer | null,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers["content-type"] ?? ""),
          body: Buffer.concat(chunks),
        }),
      );
    });
    req.setTimeout(10_000, () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(payload ?? undefined);
  });
}

/** What is wrong with an answer, or null: a 5xx, a 4xx without the documented error body, a 2xx not JSON. */
function problem(a: Answer): string | null {
  if (a.status < 200 || a.status >= 500) return `status ${a.status}`;
  const json = a.contentType.startsWith("application/json");
  let parsed: unknown;
  if (json || a.status >= 400) {
    try {
      parsed = JSON.parse(a.body.toString("utf8"));
    } catch {
      return `status ${a.status} with a body that is not JSON (${a.contentType})`;
    }
  }
  if (a.status < 400) return null;
  if (!json) return `status ${a.status} as ${a.contentType}`;
  const err = (parsed as { error?: Record<string, unknown> }).error;
  // The one documented addition: the rejected rows of an all-or-nothing upload.
  const rows = err?.code === "AUD_ERR_BAD_ROWS" && Array.isArray((parsed as { rows?: unknown }).rows);
  if (
    Object.keys(parsed as object).join() !== (rows ? "error,rows" : "error") ||
    typeof err !== "object" ||
    err === null ||
    Object.keys(err).join() !== "code,message,field" ||
    typeof err.message !== "string" ||
    err.message === "" ||
    !(typeof err.field === "string" || err.field === null) ||
    ERRORS[err.code as keyof typeof ERRORS]?.status !== a.status
  )
    return `status ${a.status} with an error body not of the documented shape`;
  return null;
}

interface FuzzRoute {
  readonly method: string;
  readonly path: string;
  readonly runs: number;
  readonly body: fc.Arbitrary<Buffer> | null;
  readonly query: fc.Arbitrary<string>;
  /** A streamed body: counted against STREAMS. */
  readonly stream: boolean;
  readonly headers: fc.Arbitrary<Record<string, string>>;
}

const noHeaders = fc.constant<Record<string, string>>({});
const adminHeaders = fc
  .constantFrom("", "text/csv", "application/x-ndjson", "application/json", "text/plain; charset=latin1")
  .map((type) => ({
    authorization: `Bearer ${ADMIN}`,
    ...(type === "" ? {} : { "content-type": type }),
  }));
const bidQuery = fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: hostileQuery });
const bid = bidTimeBodies(KNOWN, BODY_LIMIT);
const events = eventBatches(KNOWN, BODY_LIMIT);
const adminBody = fc.oneof(body, bid, events);

const ROUTES: readonly FuzzRoute[] = [
  {
    method: "POST",
    path: "/v1/lookup",
    runs: 4_200,
    body: bid,
    query: bidQuery,
    stream: false,
    headers: noHeaders,
  },
  {
    method: "POST",
    path: "/v1/enrich",
    runs: 3_100,
    body: bid,
    query: bidQuery,
    stream: false,
    headers: noHeaders,
  },
  {
    method: "POST",
    path: "/v1/events",
    runs: 800,
    body: events,
    query: fc.constant(""),
    stream: true,
    headers: fc.constant({ authorization: `Bearer ${ADMIN}` }),
  },
  {
    method: "GET",
    path: "/v1/events/imp",
    runs: 600,
    body: null,
    query: hostileQuery,
    stream: false,
    headers: noHeaders,
  },
  ...(
    [
      ["POST", "/v1/admin/memberships", 350],
      ["POST", "/v1/admin/links", 300],
      ["PUT", "/v1/admin/deals", 250],
      ["PUT", "/v1/admin/caps", 250],
      ["PUT", "/v1/admin/taxonomy", 250],
    ] as const
  ).map(([method, path, runs]) => ({
    method,
    path,
    runs,
    body: adminBody,
    query: hostileQuery,
    stream: true,
    headers: adminHeaders,
  })),
];

let redis: RedisServer;
let main: MainProcess;

/**
 * Runs `check` on a keep-alive connection to each worker thread in turn (the kernel spreads connections, so
 * new ones are opened until every worker /healthz names has been reached); resolves with the workers' count.
 */
async function eachWorker(check: (agent: Agent, worker: number) => Promise<void>): Promise<number> {
  const seen = new Set<number>();
  let count = 1;
  for (let i = 0; i < 60 && seen.size < count; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const health = await send(agent, main.port, "GET", "/healthz", null);
      const { worker } = JSON.parse(health.body.toString()) as { worker: { index: number; count: number } };
      count = worker.count;
      if (seen.has(worker.index)) continue;
      seen.add(worker.index);
      await check(agent, worker.index);
    } finally {
      agent.destroy();
    }
  }
  expect(seen.size).toBe(count);
  return count;
}

/** Sends `payload` as an admin; the answer must be a 200 with `expected` in its JSON. */
async function admin(method: string, path: string, payload: string, type: string, expected: object) {
  const agent = new Agent({ keepAlive: false });
  const a = await send(agent, main.port, method, path, Buffer.from(payload), {
    authorization: `Bearer ${ADMIN}`,
    "content-type": type,
  });
  expect({ status: a.status, ...JSON.parse(a.body.toString()) }).toMatchObject({ status: 200, ...expected });
}

beforeAll(async () => {
  redis = await startRedis();
  // Only what the test needs: the store, and a key for the admin API and POST /v1/events. Every deadline,
  // limit and the worker count are the shipped defaults (nothing is inherited from the shell either).
  main = await startSourceService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
  });
  // A worker whose first connection attempt timed out (a busy machine starting three threads) reconnects.
  await eachWorker(async (agent, worker) => {
    let ready = 0;
    for (let i = 0; i < 200 && ready !== 200; i++) {
      ready = (await send(agent, main.port, "GET", "/readyz", null)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ready, `worker ${worker} ready`).toBe(200);
  });
  // Taxonomy entries (one with a segtax) and a deal on the known segments: enrich writes both into bodies.
  await admin(
    "PUT",
    "/v1/admin/taxonomy",
    JSON.stringify([
      { id: "fz-101", name: "Fuzz 101", party: "first", provider: "fz-crm", segtax: 4, segtax_id: "239" },
      { id: "fz-102", name: "Fuzz 102", party: "third", provider: "fz-data" },
    ]),
    "application/json",
    { imported: 2 },
  );
  await admin(
    "PUT",
    "/v1/admin/deals",
    `${JSON.stringify({ id: "fz-deal", when: "fz-101 AND NOT fz-999", bidfloor: 2 })}\n`,
    "application/x-ndjson",
    { imported: 1 },
  );
  await admin(
    "POST",
    "/v1/admin/memberships",
    `type,id,segment\n${KNOWN_SEGMENTS.map((s) => `bu,${KNOWN},${s}`).join("\n")}\n`,
    "text/csv",
    { loaded: KNOWN_SEGMENTS.length, rejected: 0 },
  );
}, 60_000);

afterAll(async () => {
  main?.child.kill("SIGKILL");
  await redis?.close();
});

/** Every run of every route, interleaved, so that each kind of request is in flight beside every other. */
function schedule(routes: readonly FuzzRoute[], scale: number): number[] {
  const order: [number, number][] = [];
  routes.forEach((r, i) => {
    for (let k = 0; k < r.runs * scale; k++) order.push([(k + 0.5) / (r.runs * scale), i]);
  });
  return order.sort((a, b) => a[0] - b[0]).map(([, i]) => i);
}

type Generated = [Buffer | null, string, Record<string, string>];
/** Per route: answered 2xx, refused 4xx, and 200s carrying a known segment. */
type Count = { ok: number; refused: number; known: number };

/**
 * A route's generated requests, made a few at a time as they are needed (reproducible from the seed):
 * making thousands at once would hold this process, and every connection with it, for seconds.
 */
function generator(route: FuzzRoute, index: number): () => Generated {
  const arb = fc.tuple(route.body ?? fc.constant(null), route.query, route.headers);
  let batch: Generated[] = [];
  let made = 0;
  return () => {
    if (batch.length === 0) {
      batch = fc.sample(arb, { numRuns: 16, seed: SEED + index * 1_000_003 + made }).reverse();
      made += 16;
    }
    return batch.pop() as Generated;
  };
}

/** A body as a failure shows it: its first 400 bytes (as latin1, so that every byte can be read back). */
const shown = (b: Buffer | null): string =>
  b === null
    ? ""
    : JSON.stringify(b.subarray(0, 400).toString("latin1")) + (b.length > 400 ? ` (${b.length} bytes)` : "");

/** Log lines at error level or above (pino: 50 error, 60 fatal). */
const errorLines = (lines: readonly string[]): string[] =>
  lines.filter((l) => !l.startsWith("{") || (JSON.parse(l) as { level: number }).level >= 50);

describe(`generated hostile input over HTTP to the service process on Redis (seed ${SEED})`, () => {
  let fuzzFrom = 0;

  it("covers 10,000 bodies in all", () => {
    expect(ROUTES.reduce((n, r) => n + r.runs, 0)).toBeGreaterThanOrEqual(10_000);
  });

  it("answers every request 2xx, or 4xx with the documented error body", async () => {
    fuzzFrom = main.logs.length;
    const plan = schedule(ROUTES, SCALE);
    const next = ROUTES.map(generator);
    const counts: Count[] = ROUTES.map(() => ({ ok: 0, refused: 0, known: 0 }));
    const failures: object[] = [];
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let streams = 0;
    const waiting: (() => void)[] = [];
    let cursor = 0;

    const lane = async (): Promise<void> => {
      while (cursor < plan.length && failures.length < 20) {
        const i = plan[cursor++] as number;
        const route = ROUTES[i] as FuzzRoute;
        const [payload, query, headers] = (next[i] as () => Generated)();
        if (route.stream) {
          while (streams >= STREAMS) await new Promise<void>((r) => waiting.push(r));
          streams++;
        }
        let a: Answer | null = null;
        let wrong: string | null;
        try {
          a = await send(
            agent,
            main.port,
            route.method,
            query === "" ? route.path : `${route.path}?${query}`,
            payload,
            headers,
          );
          wrong = problem(a);
        } catch (err) {
          wrong = (err as Error).message;
        } finally {
          if (route.stream) {
            streams--;
            waiting.shift()?.();
          }
        }
        if (wrong !== null || a === null) {
          failures.push({
            route: `${route.method} ${route.path}`,
            query,
            headers,
            body: shown(payload),
            problem: wrong,
            answer: shown(a?.body ?? null),
          });
          continue;
        }
        const c = counts[i] as Count;
        if (a.status >= 400) c.refused++;
        else c.ok++;
        if (a.status === 200 && a.body.includes(KNOWN_SEGMENTS[1] as string)) c.known++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    agent.destroy();

    expect(failures, `seed ${SEED}`).toEqual([]);
    const byRoute = new Map(ROUTES.map((r, i) => [r.path, counts[i] as Count]));
    // The bid-time generators reach past the parsers: a good share is answered, a good share refused.
    for (const path of ["/v1/lookup", "/v1/enrich"]) {
      const c = byRoute.get(path);
      expect(c?.ok, path).toBeGreaterThan(500 * SCALE);
      expect(c?.refused, path).toBeGreaterThan(500 * SCALE);
    }
    // Answers carried the known segments read from Redis, and enrich wrote them into hostile bodies (about
    // 440 and 140 of a run: enrich reads no compact or batch form).
    expect(byRoute.get("/v1/lookup")?.known).toBeGreaterThan(200 * SCALE);
    expect(byRoute.get("/v1/enrich")?.known).toBeGreaterThan(60 * SCALE);
  }, 120_000);

  it("is alive afterwards, logged no failure, and every worker answers the known ID exactly, not degraded", async () => {
    expect(main.child.exitCode).toBe(null);
    expect(main.child.signalCode).toBe(null);
    // A 500 is logged as "request failed"; a dying worker as "worker failed" before the process exits.
    expect(errorLines(main.logs.slice(fuzzFrom))).toEqual([]);

    // Each worker has the known ID in its cache (the fuzzed requests asked for it all along): the answer
    // does not depend on a store read making the shipped 15 ms on a busy machine.
    const banner = JSON.parse(readFileSync(join(ROOT, "openrtb-samples", "web-banner.json"), "utf8"));
    const requests = [
      { ids: [{ type: "bu", id: KNOWN }] },
      { ...banner, user: { ...banner.user, buyeruid: KNOWN } },
    ];
    const workers = await eachWorker(async (agent, worker) => {
      for (const r of requests) {
        const a = await send(agent, main.port, "POST", "/v1/lookup", Buffer.from(JSON.stringify(r)));
        expect(a.status, `worker ${worker}`).toBe(200);
        const json = JSON.parse(a.body.toString());
        expect(
          { segments: json.segments, degraded: json.degraded, matched: json.matched },
          `worker ${worker}`,
        ).toEqual({
          segments: KNOWN_SEGMENTS,
          degraded: false,
          matched: ["bu"],
        });
      }
    });
    expect(workers).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
