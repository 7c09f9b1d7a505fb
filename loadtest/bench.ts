// `npm run bench`: own Redis, seeded users, six server scenarios under autocannon, table, ratios, RESULTS.md.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { detectUwsBackend } from "../src/http/uws-server.ts";
import type { Json } from "../src/json-fields.ts";
import { startRedisCluster } from "../test/helpers/redis-cluster.ts";
import { freePort, startRedis } from "../test/helpers/redis-server.ts";
import {
  BENCH_TCF_VENDOR_ID,
  type Body,
  buildPool,
  expectedSegments,
  loadTemplates,
  withConsent,
} from "./bodies.ts";
import { getRequests, type LoadRun, LoadStats, postRequests, RequestFeed, runLoad } from "./cannon.ts";
import {
  CAP_CAMPAIGNS,
  CAP_WINDOWS,
  CAPS_LOOKUP_PATH,
  cappedProblem,
  IMPRESSIONS_TO_CAP,
  personOfBody,
  putCapRules,
  type RecordedImpressions,
  recordCappingImpressions,
} from "./caps.ts";
import {
  buildService,
  cpuSeconds,
  killAllNow,
  machineBusySeconds,
  SERVICE_ENTRY,
  type ServerChild,
  startServer,
  stopAll,
} from "./children.ts";
import { DEAL_RULES, enrichProblem, putDealRules } from "./deals.ts";
import {
  fetchNoticeTokens,
  pixelPlans,
  TOKENS_PER_LOOKUP,
  type TokenFetch,
  verifyPixelEvents,
} from "./events.ts";
import { runFaultBench } from "./fault.ts";
import {
  DEFAULT_INGEST_ROWS,
  type IngestFigures,
  ingestLines,
  ingestOrders,
  runIngestBench,
} from "./ingest-bench.ts";
import {
  clean,
  DEGRADED_MAX_SHARE,
  FIXED_RATE_SHARE,
  type FixedRate,
  machineLines,
  median,
  ratioLines,
  type ScenarioKey,
  type ScenarioRow,
  type Section,
  statusText,
  textTable,
  tooDegraded,
  writeResults,
} from "./report.ts";
import { redisPid, seedCluster, seedUsers } from "./seed.ts";
import { measureSizing, sizingLines } from "./sizing.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS_PATH = join(ROOT, "loadtest", "RESULTS.md");

function intEnv(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return v;
}

const USERS = intEnv("BENCH_USERS", 1_000_000, 1_000, 50_000_000);
const DURATION_S = intEnv("BENCH_DURATION_S", 10, 1, 600);
const CONNECTIONS = intEnv("BENCH_CONNECTIONS", 64, 1, 1_000);
const WARMUP_S = intEnv("BENCH_WARMUP_S", 3, 0, 60);
const ROUNDS = intEnv("BENCH_ROUNDS", 5, 1, 20);
const INGEST_ROWS = intEnv("BENCH_INGEST_ROWS", DEFAULT_INGEST_ROWS, 0, 100_000_000);
/** Both orders unless BENCH_INGEST_ORDER names one. */
const INGEST_ORDERS = ingestOrders(process.env.BENCH_INGEST_ORDER);
/** BENCH_ONLY=c,m: run only these scenarios (the ratios of the others read n/a). */
const ONLY =
  process.env.BENCH_ONLY === undefined || process.env.BENCH_ONLY === ""
    ? null
    : new Set(process.env.BENCH_ONLY.split(",").map((k) => k.trim()));

/** Hot set of the cache-hit scenarios, and the unknown IDs mixed into it (remembered as absent). */
const HOT_USERS = Math.min(USERS, 20_000);
const HOT_UNKNOWN = 2_000;
const HIT_POOL = 20_000;
const MISS_POOL = 40_000;
const UNKNOWN_SHARE = 0.1;
/** Bodies (or events) per scenario whose answers are checked before the load. */
const VERIFY = 60;
/**
 * Long enough that nothing cached expires during a run: (b), (d) and (e) measure pure cache hits, profiles
 * and (e)'s counters alike (CAP_COUNTERS_CACHE_MS, at its longest).
 */
const LONG_TTL_MS = "3600000";
/** autocannon stops on its 1 s sampling tick, so rounds last whole seconds. */
const PER_ROUND_S = Math.max(1, Math.round(DURATION_S / ROUNDS));
/**
 * (f): the people pixel events name (user numbers from 2 x BENCH_USERS on: never seeded, and in no body), and
 * the event rate the pool of unique impression ids is sized for; a faster run repeats ids and says so.
 */
const EVENT_PEOPLE = 100_000;
const EVENTS_MAX_RATE = 40_000;
const EVENT_POOL = EVENTS_MAX_RATE * (WARMUP_S + PER_ROUND_S * ROUNDS) + VERIFY;
/**
 * (h): real TCF v2.2 TC strings (made with IAB Tech Lab's encoder, test/fixtures/consent/corpus.json) that
 * give purposes 1, 3 and 4 and vendor BENCH_TCF_VENDOR_ID consent.
 */
const TC_STRINGS = [
  "CQLS0dAQLS0dAEsACBENBQFgALAAAAAAAAYgPpQAgH0gfSAAAAAA.IAAA.YAAAAAAAAAAA",
  "CQLS0dAQLS0dAEsACBENBQFgAP_gAEPgAAYgPpQAgH0gfSB9KAEA-kD6QAAA.IAAA.YAAAAAAAAAAA",
];
/** NOTICE_TOKEN_TTL_SEC's default: how long a notice token is honoured. */
const NOTICE_TOKEN_DEFAULT_S = 3_600;
/** The admin token of this run's (e), (f) and (i) services (never written out); (f) has it for cap rules only. */
const ADMIN_TOKEN = `bench-${randomBytes(16).toString("hex")}`;
/** (e): the key its impressions are reported with, an ADMIN_TOKENS entry with the `events` scope only. */
const EVENTS_KEY = `bench-events-${randomBytes(16).toString("hex")}`;

type Kind = "bare" | "lookup" | "events";

interface Scenario {
  readonly key: ScenarioKey;
  readonly label: string;
  readonly kind: Kind;
  /** Service env on top of REDIS_URL/PORT/HOST/LOG_LEVEL; null for the bare uWS server. */
  readonly env: Record<string, string> | null;
  /**
   * The Redis the service uses: the main one, the one with cap rules and counters ((e) and (f)), or the one
   * whose users are linked into persons ((g)).
   */
  readonly redis: "main" | "caps" | "linked" | "cluster";
  /** WORKERS of the service (1 unless said): /healthz is then per worker, so no hit ratio is read. */
  readonly workers?: number;
  /** Lookup bodies (bare and lookup scenarios; empty for events). */
  readonly pool: readonly Body[];
  /** Path the bodies are posted to. */
  readonly path: string;
  readonly warmCache: boolean;
  /** Before the load: cap rules loaded and every campaign capped for everyone in the pool; answers checked. */
  readonly capped: boolean;
  /** (i): 1,000 deal rules loaded before the load; answers are enriched bid requests. */
  readonly deals?: boolean;
}

/** A redis-server (or a Cluster's first master) of the bench, with a client for INFO. */
interface BenchRedis {
  readonly server: { readonly url: string; close(): Promise<void> };
  /** Its redis-server processes (a Cluster's masters), for their CPU time; empty where unknown. */
  readonly pids: readonly number[];
  readonly client: Redis;
}

/** Impression event counts of the service's /healthz. */
interface EventCounts {
  counted: number;
  duplicates: number;
  rejected: number;
  refused: number;
}

/** A scenario whose server is up, with what its measured rounds have added up so far. */
interface Running {
  readonly s: Scenario;
  readonly server: ServerChild;
  readonly redis: BenchRedis;
  readonly feed: RequestFeed;
  readonly verified: string;
  readonly stats: LoadStats;
  /** req/s of each measured round. */
  readonly rounds: number[];
  /** Server CPU µs per answered request of each measured round. */
  readonly roundCpuUs: (number | null)[];
  /** Degraded answers among the 2xx ones over the measured rounds; null where answers cannot be degraded. */
  readonly degraded: { answers: number; degraded: number } | null;
  /** The fixed-rate run of (b) and (c), after the flat-out rounds. */
  fixedRate: FixedRate | null;
  hits: number;
  misses: number;
  storeErrors: number;
  /** Counter reads (HGETALL) its Redis served during the measured rounds. */
  counterReads: number;
  /** Event counts of /healthz over the measured rounds; null where the service does not report them. */
  events: EventCounts | null;
  cpu: { server: number | null; client: number; redis: number | null; machine: number | null };
  error?: string;
}

const redises: BenchRedis[] = [];
let cleaned = false;
/** Set when the bare server reports that the package fell back to its JS implementation. */
let bareFallback = false;
/** What the set-up of (e) did, for the report. */
let capsSetup: { rules: number; recorded: RecordedImpressions } | null = null;
/** How (f)'s notice tokens were fetched before its load, for the report. */
let tokenSetup: TokenFetch | null = null;

async function cleanup(): Promise<void> {
  await stopAll();
  while (redises.length > 0) {
    const r = redises.pop() as BenchRedis;
    r.client.disconnect();
    await r.server.close();
  }
  cleaned = true;
}

function onSignal(signal: NodeJS.Signals, code: number): void {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping servers and redis-server\n`);
    void cleanup().finally(() => process.exit(code));
  });
}
onSignal("SIGINT", 130);
onSignal("SIGTERM", 143);
process.on("exit", () => {
  // Normal paths have cleaned up already; this catches an unexpected process.exit.
  killAllNow();
  if (cleaned) return;
  for (const r of redises) {
    for (const pid of r.pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
});

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function startBenchRedis(): Promise<BenchRedis> {
  const server = await startRedis();
  const entry: BenchRedis = {
    server,
    pids: [await redisPid(server.url)].filter((p): p is number => p !== null),
    client: new Redis(server.url, { maxRetriesPerRequest: 1 }),
  };
  redises.push(entry);
  return entry;
}

/** CPU seconds of all of a bench Redis's processes; null if any cannot be read. */
function redisCpu(r: BenchRedis): number | null {
  let sum = 0;
  for (const pid of r.pids) {
    const s = cpuSeconds(pid);
    if (s === null) return null;
    sum += s;
  }
  return r.pids.length === 0 ? null : sum;
}

/**
 * How a scenario's degraded answers are counted: the service's own count of degraded lookup answers in
 * /metrics (every lookup answer with `"degraded": true`; a pool of workers sums its workers'), or, for enrich,
 * whose answer is a bid request, the responses carrying `x-audience-degraded`, counted by the load generator.
 * Neither reads the bodies, which would cost the load generator more than the server's own JSON.
 */
function degradedSource(s: Scenario): "metrics" | "header" | null {
  if (s.kind !== "lookup" || s.env === null) return null;
  return s.deals === true ? "header" : "metrics";
}

const DEGRADED_HEADER = "x-audience-degraded";

/** Degraded answers counted so far for a scenario (see degradedSource); 0 where they are not counted. */
function degradedSoFar(run: Running, stats: LoadStats): Promise<number> | number {
  const source = degradedSource(run.s);
  if (source === "header") return stats.flagged;
  return source === null ? 0 : metricsDegraded(run.server.baseUrl);
}

/** The service's count of degraded lookup answers so far (`audience_degraded_answers_total` of /metrics). */
async function metricsDegraded(baseUrl: string): Promise<number> {
  const r = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  const m = /^audience_degraded_answers_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  if (m === null)
    throw new Error("/metrics has no audience_degraded_answers_total: degraded answers cannot be counted");
  return Number(m[1]);
}

/** HGETALL calls a Redis has served so far: the service's counter reads. */
async function counterReadCalls(r: BenchRedis): Promise<number> {
  const info = await r.client.info("commandstats");
  return Number(/cmdstat_hgetall:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

async function health(
  baseUrl: string,
): Promise<{ hits: number; misses: number; storeErrors: number; events: EventCounts | null }> {
  const r = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  const body = (await r.json()) as { cache?: Record<string, unknown>; events?: Record<string, unknown> };
  const c = body.cache ?? {};
  const e = body.events;
  return {
    hits: Number(c.hits ?? 0),
    misses: Number(c.misses ?? 0),
    storeErrors: Number(c.storeErrors ?? 0),
    events:
      e === undefined
        ? null
        : {
            counted: Number(e.counted ?? 0),
            duplicates: Number(e.duplicates ?? 0),
            rejected: Number(e.rejected ?? 0),
            refused: Number(e.refused ?? 0),
          },
  };
}

/**
 * Posts the first bodies one by one and checks the answers: segments for the service (and, in (e), every cap
 * campaign capped with nothing left), status for bare uWS.
 */
async function verifyLookups(server: ServerChild, s: Scenario): Promise<string> {
  const n = Math.min(VERIFY, s.pool.length);
  const service = s.env !== null;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const body = s.pool[i] as Body;
    const r = await fetch(`${server.baseUrl}${s.path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body.bytes,
      signal: AbortSignal.timeout(5000),
    });
    const answer = (await r.json()) as {
      segments?: string[];
      degraded?: boolean;
      capped?: string[];
      remaining?: Record<string, number | null>;
    };
    const want = expectedSegments(body, s.redis === "linked").join();
    let problem: string | null = null;
    if (r.status !== 200) problem = `status ${r.status}`;
    else if (s.deals === true) problem = enrichProblem(body.bytes, answer as Json, expectedSegments(body));
    else if (service && (answer.degraded !== false || answer.segments?.join() !== want))
      problem = `segments: expected [${want}]`;
    else if (s.capped && body.capsAllowed) problem = cappedProblem(answer);
    else if (s.capped && (answer.capped?.length !== 0 || answer.remaining !== undefined))
      problem = "caps state handed out where the privacy gate withholds it";
    if (problem === null) ok++;
    else if (ok === i) log(`    mismatch on body ${i}: ${problem}; got ${JSON.stringify(answer)}`);
  }
  return `${ok}/${n}`;
}

/** (e): cap rules through the admin API, then every campaign capped for each person of the pool. */
async function setUpCaps(server: ServerChild, s: Scenario): Promise<void> {
  const rules = await putCapRules(server.baseUrl, ADMIN_TOKEN);
  const people = new Set<string>();
  for (const b of s.pool) {
    const person = personOfBody(b.bytes);
    if (person !== null) people.add(person);
  }
  const recorded = await recordCappingImpressions(server.baseUrl, EVENTS_KEY, [...people]);
  capsSetup = { rules, recorded };
  log(
    `(${s.key}) ${rules} cap rules loaded; ${recorded.events.toLocaleString("en-US")} impressions recorded for ` +
      `${recorded.people.toLocaleString("en-US")} people in ${(recorded.ms / 1000).toFixed(1)} s`,
  );
}

/** Starts the scenario's server, sets up and checks it, warms the cache (if any) and the JIT. */
async function prepare(s: Scenario, redis: BenchRedis): Promise<Running> {
  const started = performance.now();
  const port = await freePort();
  const server =
    s.env === null
      ? await startServer({
          name: "bare uWS server",
          cwd: ROOT,
          script: "loadtest/bare-uws-server.ts",
          env: {},
          port: "stdout",
          readyPath: "/readyz",
        })
      : await startServer({
          name: "lookup service",
          cwd: ROOT,
          script: SERVICE_ENTRY,
          env: {
            REDIS_URL: redis.server.url,
            PORT: String(port),
            HOST: "127.0.0.1",
            LOG_LEVEL: "warn",
            TCF_VENDOR_ID: BENCH_TCF_VENDOR_ID,
            WORKERS: String(s.workers ?? 1),
            ...s.env,
          },
          port,
          readyPath: "/readyz",
        });
  const url = server.baseUrl;
  if (s.capped) await setUpCaps(server, s);
  if (s.deals === true) {
    const n = await putDealRules(server.baseUrl, ADMIN_TOKEN);
    // The upload's own change message comes back over pub/sub and recompiles the rules once more: let that
    // pass before answers are checked.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    log(`(${s.key}) ${n.toLocaleString("en-US")} deal rules loaded`);
  }
  let feed: RequestFeed;
  let verified: string;
  if (s.kind === "events") {
    // The rules of (e) again (the same rules, so nothing changes when (e) ran), so that (f) also runs alone:
    // without a rule no token is issued and every event is ignored.
    await putCapRules(url, ADMIN_TOKEN);
    // Before any load, and outside the measured rounds: one notice token per pixel URL, from batch lookups.
    const { events, fetch } = await fetchNoticeTokens(url, pixelPlans(EVENT_POOL, 2 * USERS, EVENT_PEOPLE));
    tokenSetup = fetch;
    log(
      `(${s.key}) ${n0(fetch.tokens)} notice tokens from ${n0(fetch.lookups)} batch lookups in ${(fetch.ms / 1000).toFixed(1)} s` +
        (fetch.askedAgain > 0 ? ` (${n0(fetch.askedAgain)} asked again after a degraded answer)` : ""),
    );
    verified = await verifyPixelEvents(url, events.slice(0, VERIFY), log);
    feed = new RequestFeed(
      getRequests(
        url,
        events.slice(VERIFY).map((e) => e.path),
      ),
    );
  } else {
    verified = await verifyLookups(server, s);
    feed = new RequestFeed(
      postRequests(
        url,
        s.path,
        s.pool.map((b) => b.bytes),
      ),
    );
  }
  if (s.warmCache) await runLoad({ url, feed, connections: CONNECTIONS, amount: feed.requests.length });
  if (WARMUP_S > 0) await runLoad({ url, feed, connections: CONNECTIONS, durationS: WARMUP_S });
  // The /metrics counter must be there before any round relies on it.
  if (degradedSource(s) === "metrics") await metricsDegraded(server.baseUrl);
  if (server.announced.native === false) {
    log(`(${s.key}) WARNING: uWebSockets.js native addon not loaded: the bare server runs the JS fallback`);
    bareFallback = true;
  }
  log(
    `(${s.key}) ${s.label}: ready on ${url}, verified ${verified}, warmed in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return {
    s,
    server,
    redis,
    feed,
    verified,
    stats: new LoadStats(),
    rounds: [],
    roundCpuUs: [],
    degraded: degradedSource(s) === null ? null : { answers: 0, degraded: 0 },
    fixedRate: null,
    hits: 0,
    misses: 0,
    storeErrors: 0,
    counterReads: 0,
    events: null,
    cpu: { server: 0, client: 0, redis: 0, machine: 0 },
  };
}

const add = (sum: number | null, a: number | null, b: number | null): number | null =>
  sum === null || a === null || b === null ? null : sum + (b - a);

/** One measured window of `seconds` against a running scenario; adds to its totals. */
async function measure(run: Running, seconds: number): Promise<void> {
  const service = run.s.env !== null && (run.s.workers ?? 1) === 1;
  const url = run.server.baseUrl;
  const before = service ? await health(url) : null;
  const reads0 = service ? await counterReadCalls(run.redis) : 0;
  const server0 = cpuSeconds(run.server.pid);
  const redis0 = redisCpu(run.redis);
  const machine0 = machineBusySeconds();
  const client0 = process.cpuUsage();
  const responses0 = run.stats.responses;
  const non2xx0 = run.stats.non2xx;
  const seconds0 = run.stats.seconds;
  const degraded0 = await degradedSoFar(run, run.stats);
  await runLoad(loadRun(run, seconds), run.stats);
  const client1 = process.cpuUsage(client0);
  run.cpu.client += (client1.user + client1.system) / 1e6;
  const server1 = cpuSeconds(run.server.pid);
  run.cpu.server = add(run.cpu.server, server0, server1);
  run.cpu.redis = add(run.cpu.redis, redis0, redisCpu(run.redis));
  run.cpu.machine = add(run.cpu.machine, machine0, machineBusySeconds());
  if (run.server.exited()) {
    throw new Error(`${run.server.name} exited during the run:\n${run.server.output()}`);
  }
  if (before !== null) {
    run.counterReads += (await counterReadCalls(run.redis)) - reads0;
    const after = await health(url);
    run.hits += after.hits - before.hits;
    run.misses += after.misses - before.misses;
    run.storeErrors += after.storeErrors - before.storeErrors;
    if (before.events !== null && after.events !== null) {
      const e = run.events ?? { counted: 0, duplicates: 0, rejected: 0, refused: 0 };
      e.counted += after.events.counted - before.events.counted;
      e.duplicates += after.events.duplicates - before.events.duplicates;
      e.rejected += after.events.rejected - before.events.rejected;
      e.refused += after.events.refused - before.events.refused;
      run.events = e;
    }
  }
  const answered = run.stats.responses - responses0;
  countDegraded(run, answered - (run.stats.non2xx - non2xx0), degraded0, await degradedSoFar(run, run.stats));
  const took = run.stats.seconds - seconds0;
  const rps = answered / took;
  run.rounds.push(rps);
  run.roundCpuUs.push(
    server0 === null || server1 === null || answered === 0 ? null : ((server1 - server0) / answered) * 1e6,
  );
  log(`    (${run.s.key}) ${Math.round(rps)} req/s over ${took.toFixed(1)} s${degradedText(run)}`);
}

/** A measured load of `seconds` on a scenario; `ratePerS` paces it (the fixed-rate run). */
function loadRun(run: Running, seconds: number, ratePerS?: number): LoadRun {
  return {
    url: run.server.baseUrl,
    feed: run.feed,
    connections: CONNECTIONS,
    durationS: seconds,
    ...(ratePerS !== undefined ? { ratePerS } : {}),
    ...(degradedSource(run.s) === "header" ? { flagHeader: DEGRADED_HEADER } : {}),
  };
}

/** Adds a round's 2xx answers and the degraded ones among them (the counter's readings before and after). */
function countDegraded(run: Running, ok: number, before: number, after: number): void {
  if (run.degraded === null) return;
  run.degraded.answers += ok;
  run.degraded.degraded += after - before;
}

function degradedText(run: Running): string {
  const d = run.degraded;
  return d === null || d.degraded === 0 ? "" : `, ${d.degraded} degraded answers so far`;
}

/**
 * The fixed-rate latency run of (b) and (c): after the flat-out rounds, on the same server with the same
 * bodies, autocannon paced at FIXED_RATE_SHARE of the scenario's median flat-out req/s, in as many rounds of
 * the same length, interleaved. Its degraded answers count with the scenario's.
 */
async function measureFixedRate(runs: readonly Running[], rounds: number, seconds: number): Promise<void> {
  const plan = runs
    .filter((r) => r.error === undefined && r.rounds.length > 0)
    .map((run) => ({ run, rate: Math.round(FIXED_RATE_SHARE * (median(run.rounds) as number)) }));
  if (plan.length === 0) return;
  const fr = new Map(plan.map((p) => [p.run, { rps: [] as number[], p99: [] as number[], even: true }]));
  log(`fixed-rate runs at ${FIXED_RATE_SHARE * 100}% of the flat-out req/s`);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < plan.length; k++) {
      const { run, rate } = plan[(k + round) % plan.length] as (typeof plan)[number];
      if (run.error !== undefined) continue;
      const into = fr.get(run) as { rps: number[]; p99: number[]; even: boolean };
      try {
        const stats = new LoadStats();
        const degraded0 = await degradedSoFar(run, stats);
        await runLoad(loadRun(run, seconds, rate), stats);
        countDegraded(run, stats.responses - stats.non2xx, degraded0, await degradedSoFar(run, stats));
        const l = stats.summary();
        into.rps.push(l.rps);
        into.p99.push(l.p99);
        into.even &&= stats.evenPace;
        log(
          `    (${run.s.key}) ${Math.round(l.rps)} of ${rate} req/s asked, p99 ${l.p99.toFixed(2)} ms${degradedText(run)}`,
        );
      } catch (err) {
        const message = (err as Error).message;
        log(`    (${run.s.key}) fixed-rate run FAILED: ${message}`);
        run.error = message.split("\n")[0] ?? message;
      }
    }
  }
  for (const { run, rate } of plan) {
    const into = fr.get(run) as { rps: number[]; p99: number[]; even: boolean };
    if (into.p99.length > 0) {
      run.fixedRate = { targetRps: rate, roundRps: into.rps, roundP99: into.p99, evenPace: into.even };
    }
  }
}

function rowOf(run: Running): ScenarioRow {
  const load = run.stats.summary();
  const share = (v: number | null): number | null => (v === null ? null : (v / load.seconds) * 100);
  const kind = run.s.kind;
  return {
    key: run.s.key,
    label: run.s.label,
    load,
    roundRps: run.rounds,
    roundCpuUs: run.roundCpuUs,
    degraded: run.degraded,
    fixedRate: run.fixedRate,
    hitRatio: kind !== "lookup" || run.hits + run.misses === 0 ? null : run.hits / (run.hits + run.misses),
    storeErrors:
      kind === "lookup" ? run.storeErrors : kind === "events" ? (run.events?.refused ?? null) : null,
    cpu: {
      server: share(run.cpu.server),
      client: share(run.cpu.client),
      redis: share(run.cpu.redis),
      machine: share(run.cpu.machine),
    },
    verified: run.verified,
    ...(run.error !== undefined ? { error: run.error } : {}),
  };
}

function failedRow(s: Scenario, error: string): ScenarioRow {
  return {
    key: s.key,
    label: s.label,
    load: null,
    roundRps: [],
    roundCpuUs: [],
    degraded: null,
    fixedRate: null,
    hitRatio: null,
    storeErrors: null,
    cpu: { server: null, client: null, redis: null, machine: null },
    verified: "-",
    error,
  };
}

const n0 = (v: number): string => Math.round(v).toLocaleString("en-US");
const windowsText = CAP_WINDOWS.map((w) => `${w.window} max ${w.max}`).join(", ");

/** The Caps section: how (e) was set up and checked, and what its lookups read from Redis. */
function capsLines(e: Running | undefined, b: Running | undefined): string[] {
  if (e === undefined || capsSetup === null) return [];
  const r = capsSetup.recorded;
  const lines = [
    `Rules: ${CAP_CAMPAIGNS.join(", ")}, each ${windowsText}; loaded with PUT /v1/admin/caps (CSV), ${capsSetup.rules} rules served`,
    `Impressions: ${IMPRESSIONS_TO_CAP} per campaign for each of the ${n0(r.people)} people of the cache-hit bodies (each body's strongest ID, as the service picks it), ${n0(r.events)} events in ${r.batches} POST /v1/events NDJSON batches (with a key of the \`events\` scope) in ${(r.ms / 1000).toFixed(1)} s (${n0(r.events / (r.ms / 1000))} events/s), all counted`,
    `Checked before the load: ${e.verified} answers of (e) list all ${CAP_CAMPAIGNS.length} campaigns in \`capped\` with \`remaining\` 0 for each, and the expected segments`,
  ];
  const responses = e.stats.responses;
  if (responses > 0) {
    lines.push(
      `Counter cache: \`CAP_COUNTERS_CACHE_MS\` ${LONG_TTL_MS} ms, as the profiles' TTL; during the measured rounds of (e), ${(e.counterReads / responses).toFixed(2)} counter reads (HGETALL) per lookup went to Redis (${n0(e.counterReads / e.stats.seconds)}/s)`,
    );
  }
  const cost = (run: Running | undefined): number | null => {
    const l = run?.stats.summary();
    return l === undefined || run?.cpu.server == null || l.rps === 0
      ? null
      : (run.cpu.server / l.seconds / l.rps) * 1e6;
  };
  const ce = cost(e);
  const cb = cost(b);
  if (ce !== null && cb !== null) {
    lines.push(
      `Server CPU per lookup: ${ce.toFixed(1)} µs with caps, ${cb.toFixed(1)} µs without (${ce >= cb ? "+" : ""}${(ce - cb).toFixed(1)} µs, ${ce >= cb ? "+" : ""}${((ce / cb - 1) * 100).toFixed(0)}%)`,
    );
  }
  return lines;
}

/** The Impression events section: the figure of (f), its statuses and what the service counted. */
function eventLines(f: Running | undefined): string[] {
  if (f === undefined) return [];
  const l = f.stats.summary();
  const ok = l.statuses.get(204) ?? 0;
  const others = new Map([...l.statuses].filter(([status]) => status !== 204));
  const lines = [
    `(f) impression events: ${n0(l.rps)} events/s over ${l.seconds.toFixed(1)} s measured, p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms (GET /v1/events/imp, ${CONNECTIONS} connections, a unique impression id and notice token each)`,
    `Statuses: 204: ${n0(ok)}; other: ${n0(l.responses - ok)}${others.size > 0 ? ` (${statusText(others)})` : ""}; connection errors ${l.errors}, timeouts ${l.timeouts}`,
  ];
  if (f.events !== null) {
    const e = f.events;
    lines.push(
      `Counted by the service over the measured rounds (/healthz, which also counts the events still in flight when a round stops): ${n0(e.counted)} counted, ${n0(e.duplicates)} duplicates, ${n0(e.rejected)} rejected, ${n0(e.refused)} refused`,
    );
  }
  lines.push(
    `Impression ids: a pool of ${n0(f.feed.requests.length)} pixel URLs over ${n0(EVENT_PEOPLE)} people (never-seeded IDs, by turns \`ifa\`, \`bu\`, \`eid:uidapi.com\`) and campaigns ${CAP_CAMPAIGNS.join(", ")}; ${n0(f.feed.taken)} sent with the warm-up, ${f.feed.repeats === 0 ? "none twice" : `${n0(f.feed.repeats)} a second time (the pool was too small: those count as duplicates)`}`,
    `Checked before the load: ${f.verified} events answered 204 and then showed in a lookup's \`remaining\` on the same instance`,
  );
  if (tokenSetup !== null) {
    const t = tokenSetup;
    lines.push(
      `Notice tokens: one per pixel URL (each good for one impression), ${n0(t.tokens)} fetched before the load and outside the figures with ${n0(t.lookups)} batch lookups of up to ${TOKENS_PER_LOOKUP} people naming the URL's campaign as the only candidate, in ${(t.ms / 1000).toFixed(1)} s (${n0(t.tokens / (t.ms / 1000))} tokens/s${t.askedAgain > 0 ? `; ${n0(t.askedAgain)} asked again after an answer degraded by a read past the lookup budget` : ""}); each event's token is read (MAC checked, decrypted) and its use spent in the step that counts it`,
    );
  }
  return lines;
}

/** What one lookup reading Redis costs Redis, from (c) and (m): the figures masters-per-QPS rest on. */
function redisCostLines(runs: (Running | undefined)[]): string[] {
  return runs.flatMap((run) => {
    const l = run?.stats.summary();
    if (run === undefined || l === undefined || run.cpu.redis === null || l.rps === 0) return [];
    // CPU seconds over the measured seconds, per request answered in them.
    const us = (run.cpu.redis / l.seconds / l.rps) * 1e6;
    const how =
      run.s.redis === "cluster"
        ? "the request's 1–3 IDs as GETs in one pipeline per master per event-loop turn, the three masters' CPU together"
        : "the request's 1–3 IDs in one MGET per event-loop turn with the other requests'";
    return [
      `Redis CPU per lookup that reads Redis, (${run.s.key}): ${us.toFixed(1)} µs (${how}); one Redis core at 100% would serve about ${n0(1e6 / us)} such lookups/s`,
    ];
  });
}

/** ADMIN_TOKENS with each token shown as <random>: only the scopes are written out. */
function adminTokensText(value: string): string {
  return value
    .split(",")
    .map((entry) => `<random>=${entry.slice(entry.indexOf("=") + 1)}`)
    .join(",");
}

function envText(env: Record<string, string> | null): string {
  if (env === null) return "bare server";
  return Object.entries(env)
    .map(([k, v]) => `${k}=${k === "ADMIN_TOKENS" ? adminTokensText(v) : v}`)
    .join(" ");
}

async function main(): Promise<number> {
  const backend = detectUwsBackend();
  const buildMs = buildService(ROOT);
  log(
    `built the service in ${(buildMs / 1000).toFixed(1)} s: it runs compiled (node ${SERVICE_ENTRY}, and the ` +
      "ingest figure node dist/cli.js); the bare server of (a) runs under tsx",
  );
  if (process.argv.slice(2).includes("fault")) return runFaultBench(ROOT, log, backend.detail);
  log(
    `load test: ${USERS.toLocaleString("en-US")} users, ${CONNECTIONS} connections, ` +
      `${DURATION_S} s measured per scenario in ${ROUNDS} interleaved round(s), ${WARMUP_S} s warm-up`,
  );
  for (const l of machineLines(backend.detail)) log(`  ${l}`);

  const mainRedis = await startBenchRedis();
  const seeded = await seedUsers(mainRedis.server.url, USERS);
  log(
    `seeded ${USERS.toLocaleString("en-US")} users in ${(seeded.ms / 1000).toFixed(1)} s ` +
      `(${(seeded.usedMemoryBytes / 2 ** 20).toFixed(0)} MiB in Redis)`,
  );
  // Cap rules live in Redis with the catalog and apply to every instance using it: (e) and (f) get a Redis
  // of their own, so that (b), (c) and (d) run without caps. It holds the hot users, the rules and counters.
  const capsRedis = await startBenchRedis();
  const capsSeeded = await seedUsers(capsRedis.server.url, HOT_USERS);
  log(
    `caps Redis: seeded the ${HOT_USERS.toLocaleString("en-US")} hot users in ${(capsSeeded.ms / 1000).toFixed(1)} s`,
  );

  // (g): the same users, linked into persons of 4 IDs (as the identity graph stores them), in a Redis of their own.
  const linkedRedis = await startBenchRedis();
  const linkedSeeded = await seedUsers(linkedRedis.server.url, USERS, true);
  log(
    `linked Redis: seeded ${USERS.toLocaleString("en-US")} users as persons of 4 IDs in ${(linkedSeeded.ms / 1000).toFixed(1)} s ` +
      `(${(linkedSeeded.usedMemoryBytes / 2 ** 20).toFixed(0)} MiB in Redis)`,
  );

  // (m): the same users on a Redis Cluster of 3 masters (no replicas: the masters' work is what is measured).
  const cluster = await startRedisCluster(3, 0);
  const firstMaster = cluster.nodes[0] as { host: string; port: number };
  const clusterRedis: BenchRedis = {
    server: { url: `redis://${firstMaster.host}:${firstMaster.port}`, close: () => cluster.close() },
    pids: (await Promise.all(cluster.nodes.map((n) => redisPid(`redis://${n.host}:${n.port}`)))).filter(
      (p): p is number => p !== null,
    ),
    client: new Redis(firstMaster.port, firstMaster.host, { maxRetriesPerRequest: 1 }),
  };
  redises.push(clusterRedis);
  const clusterNodes = cluster.env;
  const clusterSeeded = await seedCluster(cluster.nodes, USERS);
  log(
    `Cluster (3 masters): seeded ${USERS.toLocaleString("en-US")} users in ${(clusterSeeded.ms / 1000).toFixed(1)} s ` +
      `(${(clusterSeeded.usedMemoryBytes / 2 ** 20).toFixed(0)} MiB over the masters)`,
  );

  const t = performance.now();
  const templates = loadTemplates(join(ROOT, "openrtb-samples"));
  const common = { users: USERS, unknownShare: UNKNOWN_SHARE };
  const hitPool = buildPool(templates, {
    ...common,
    size: HIT_POOL,
    knownUsers: HOT_USERS,
    unknownUsers: HOT_UNKNOWN,
    seed: 1,
  });
  const missPool = buildPool(templates, {
    ...common,
    size: MISS_POOL,
    knownUsers: USERS,
    unknownUsers: USERS,
    seed: 2,
  });
  // (h): the hot bodies again, each now a GDPR request with a TC string that gives the bench's vendor consent.
  const tcfPool = withConsent(hitPool, TC_STRINGS);
  log(
    `built ${HIT_POOL + MISS_POOL} bodies from ${templates.length} samples in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  const hitEnv = { CACHE_TTL_MS: LONG_TTL_MS, CACHE_NEGATIVE_TTL_MS: LONG_TTL_MS };
  // (f)'s tokens are fetched before its first round and must last until its last: only a run that may take
  // longer than a token's default life (NOTICE_TOKEN_TTL_SEC) gets tokens that live as long as the run may.
  const tokenTtlEnv =
    budgetS > NOTICE_TOKEN_DEFAULT_S
      ? { NOTICE_TOKEN_TTL_SEC: String(budgetS) }
      : ({} as Record<string, string>);
  const lookup = { kind: "lookup", redis: "main", path: "/v1/lookup", capped: false } as const;
  const allScenarios: Scenario[] = [
    {
      ...lookup,
      key: "a",
      label: "bare uWS ceiling",
      kind: "bare",
      env: null,
      pool: hitPool,
      warmCache: false,
    },
    {
      ...lookup,
      key: "b",
      label: "lookup, cache hits",
      env: { HTTP_SERVER: "uws", ...hitEnv },
      pool: hitPool,
      warmCache: true,
    },
    {
      ...lookup,
      key: "c",
      label: "lookup, Redis misses",
      env: { HTTP_SERVER: "uws", CACHE_TTL_MS: "0" },
      pool: missPool,
      warmCache: false,
    },
    {
      ...lookup,
      key: "d",
      label: "lookup, node:http",
      env: { HTTP_SERVER: "node", ...hitEnv },
      pool: hitPool,
      warmCache: true,
    },
    {
      key: "e",
      label: "lookup with caps",
      kind: "lookup",
      env: {
        HTTP_SERVER: "uws",
        ...hitEnv,
        CAP_COUNTERS_CACHE_MS: LONG_TTL_MS,
        ADMIN_TOKENS: `${ADMIN_TOKEN}=*,${EVENTS_KEY}=events`,
      },
      redis: "caps",
      pool: hitPool,
      path: CAPS_LOOKUP_PATH,
      warmCache: true,
      capped: true,
    },
    {
      key: "f",
      label: "impression events",
      kind: "events",
      env: { HTTP_SERVER: "uws", ADMIN_TOKENS: `${ADMIN_TOKEN}=caps:read|caps:write`, ...tokenTtlEnv },
      redis: "caps",
      pool: [],
      path: "/v1/events/imp",
      warmCache: false,
      capped: false,
    },
    {
      ...lookup,
      key: "h",
      label: "lookup, TCF consent",
      env: { HTTP_SERVER: "uws", ...hitEnv },
      pool: tcfPool,
      warmCache: true,
    },
    {
      ...lookup,
      key: "j",
      label: "lookup, metrics off",
      env: { HTTP_SERVER: "uws", ...hitEnv, METRICS_ENABLED: "false" },
      pool: hitPool,
      warmCache: true,
    },
    {
      ...lookup,
      key: "i",
      label: "enrich, 1,000 deal rules",
      env: { HTTP_SERVER: "uws", ...hitEnv, ADMIN_TOKENS: `${ADMIN_TOKEN}=*` },
      pool: hitPool,
      path: "/v1/enrich",
      warmCache: true,
      deals: true,
    },
    {
      ...lookup,
      key: "g",
      label: "lookup, linked persons",
      env: { HTTP_SERVER: "uws", CACHE_TTL_MS: "0" },
      redis: "linked",
      pool: missPool,
      warmCache: false,
    },
    {
      ...lookup,
      key: "k",
      label: "lookup, Redis misses, 2 workers",
      env: { HTTP_SERVER: "uws", CACHE_TTL_MS: "0" },
      workers: 2,
      pool: missPool,
      warmCache: false,
    },
    {
      ...lookup,
      key: "l",
      label: "lookup, cache hits, 2 workers",
      env: { HTTP_SERVER: "uws", ...hitEnv },
      workers: 2,
      pool: hitPool,
      warmCache: true,
    },
    {
      ...lookup,
      key: "m",
      label: "lookup, Redis misses, Cluster",
      // A blank REDIS_URL is unset: the service reads the Cluster's seed nodes instead.
      env: { HTTP_SERVER: "uws", CACHE_TTL_MS: "0", REDIS_URL: "", REDIS_CLUSTER_NODES: clusterNodes },
      redis: "cluster",
      pool: missPool,
      warmCache: false,
    },
  ];

  const scenarios = ONLY === null ? allScenarios : allScenarios.filter((sc) => ONLY.has(sc.key));
  // All servers stay up (idle ones cost nothing) so that the rounds can interleave them: a drift in the
  // machine's speed during the run then spreads over every scenario instead of biasing the ratios.
  const failed = new Map<ScenarioKey, string>();
  const running: Running[] = [];
  for (const s of scenarios) {
    try {
      const redis =
        s.redis === "caps"
          ? capsRedis
          : s.redis === "linked"
            ? linkedRedis
            : s.redis === "cluster"
              ? clusterRedis
              : mainRedis;
      running.push(await prepare(s, redis));
    } catch (err) {
      const message = (err as Error).message;
      log(`(${s.key}) ${s.label}: FAILED: ${message}`);
      failed.set(s.key, message.split("\n")[0] ?? message);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1}/${ROUNDS}`);
    for (let k = 0; k < running.length; k++) {
      const run = running[(k + round) % running.length] as Running;
      if (run.error !== undefined) continue;
      try {
        await measure(run, PER_ROUND_S);
      } catch (err) {
        const message = (err as Error).message;
        log(`    (${run.s.key}) FAILED: ${message}`);
        run.error = message.split("\n")[0] ?? message;
      }
    }
  }
  await measureFixedRate(
    running.filter((r) => r.s.key === "b" || r.s.key === "c"),
    ROUNDS,
    PER_ROUND_S,
  );
  await Promise.all(running.map((r) => r.server.stop()));

  log("\nsizing: bytes per profile in Redis and in the LRU cache");
  const sizing = await measureSizing(mainRedis.server.url);

  const ingest: IngestFigures[] = [];
  if (INGEST_ROWS > 0) {
    for (const order of INGEST_ORDERS) {
      log(
        `\ningest: loading ${INGEST_ROWS.toLocaleString("en-US")} generated rows (${order}) with \`audience ingest memberships\``,
      );
      ingest.push(await runIngestBench(mainRedis.server.url, INGEST_ROWS, order, log));
    }
  }

  const rows = scenarios.map((s) => {
    const run = running.find((r) => r.s === s);
    return run !== undefined ? rowOf(run) : failedRow(s, failed.get(s.key) ?? "not run");
  });
  const runOf = (k: ScenarioKey): Running | undefined => running.find((r) => r.s.key === k);
  const sections: Section[] = [
    { title: "Caps", lines: capsLines(runOf("e"), runOf("b")) },
    { title: "Impression events", lines: eventLines(runOf("f")) },
    { title: "Ingest", lines: ingest.flatMap(ingestLines) },
    { title: "Sizing", lines: [...sizingLines(sizing), ...redisCostLines([runOf("c"), runOf("m")])] },
  ];
  log("");
  log(textTable(rows));
  log("");
  for (const l of ratioLines(rows)) log(l);
  for (const sec of sections) {
    if (sec.lines.length === 0) continue;
    log(`\n${sec.title}:`);
    for (const l of sec.lines) log(`  ${l.replaceAll("`", "")}`);
  }
  writeResults(
    RESULTS_PATH,
    {
      users: USERS,
      connections: CONNECTIONS,
      durationS: PER_ROUND_S * ROUNDS,
      rounds: ROUNDS,
      warmupS: WARMUP_S,
      seedMs: seeded.ms,
      redisMemoryBytes: seeded.usedMemoryBytes,
      hitPool: `${HIT_POOL.toLocaleString("en-US")} bodies over ${HOT_USERS.toLocaleString("en-US")} known users, ${UNKNOWN_SHARE * 100}% unknown (from ${HOT_UNKNOWN.toLocaleString("en-US")} unknown IDs)`,
      missPool: `${MISS_POOL.toLocaleString("en-US")} bodies over all ${USERS.toLocaleString("en-US")} users, ${UNKNOWN_SHARE * 100}% unknown (never seeded)`,
      uwsBackend: `${backend.detail}${bareFallback ? " (but the bare server ran the JS fallback)" : ""}`,
      serviceEnv: Object.fromEntries(
        scenarios.map((s) => [
          s.key,
          envText(s.env === null ? null : { WORKERS: String(s.workers ?? 1), ...s.env }),
        ]),
      ),
      notes: [
        `every service ran compiled, as it ships (\`node ${SERVICE_ENTRY}\`, built at the start of the run), and so did the ingest figure's command (\`node dist/cli.js\`); the bare server of (a) ran under tsx`,
        `(e) posts the cache-hit bodies to \`${CAPS_LOOKUP_PATH}\`; \`CAP_COUNTERS_CACHE_MS\` is ${LONG_TTL_MS} ms, as the profiles' TTL: the caps are measured on the cached path, as the lookup without them is`,
        `(f) sends \`GET /v1/events/imp?token=&campaign=&imp=\`, a unique impression id and notice token each; the tokens come from batch lookups before the load (\`{"campaigns":[c],"batch":[…]}\`), outside the figures`,
        `(h) posts the bodies of (b), each with \`regs.gdpr = 1\` and one of ${TC_STRINGS.length} real TCF v2.2 TC strings in \`user.consent\` that give purposes 1, 3, 4 and vendor ${BENCH_TCF_VENDOR_ID} (\`TCF_VENDOR_ID\` of every service here) consent: each string is decoded once, then served from the decode cache`,
        `(i) posts the bodies of (b) to \`/v1/enrich\` with ${DEAL_RULES.toLocaleString("en-US")} deal rules loaded (each naming three segments in a nested AND / OR / NOT, a third with a format condition), on the main Redis; its answers (whole enriched requests) are checked for the expected user.data and deals`,
        `(g) posts the bodies of (c) to a third redis-server holding the same ${USERS.toLocaleString("en-US")} users linked into persons of 4 IDs (users 4k..4k+3), each ID's profile carrying its person as the identity graph writes it (${(linkedSeeded.usedMemoryBytes / 2 ** 20).toFixed(0)} MiB in Redis); its answers are checked against the union of the persons' segments`,
        `(k) and (l) run the service with WORKERS=2 (every other service has WORKERS=1): its CPU column is the whole process, both workers; /healthz answers per worker, so their hit ratio and store errors are not read`,
        `(m) posts the bodies of (c) to a service on a Redis Cluster of 3 masters without replicas (redis-server processes with cluster-enabled yes, joined with redis-cli --cluster create) holding the same ${USERS.toLocaleString("en-US")} users; its redis CPU column is the three masters' together`,
        `(e) and (f) use a second redis-server of their own (cap rules apply to every instance on a Redis, so on the main one they would reach (b), (c) and (d) too), holding the ${HOT_USERS.toLocaleString("en-US")} hot users, the cap rules and the counters; the redis CPU column of (e) and (f) is that server's`,
      ],
    },
    rows,
    sections,
  );
  log(`\nwrote ${join("loadtest", "RESULTS.md")}`);
  const allClean = rows.every(clean) && ingest.every((f) => f.exitCode === 0);
  const degradedKeys = rows.filter(tooDegraded).map((r) => `(${r.key})`);
  if (degradedKeys.length > 0) {
    log(
      `${degradedKeys.join(", ")} answered more than ${DEGRADED_MAX_SHARE * 100}% degraded against a healthy Redis: the run fails`,
    );
  }
  if (!allClean)
    log("some scenario failed, had non-2xx answers / errors or too many degraded answers: exit code 1");
  return allClean ? 0 : 1;
}

// Hard stop: the whole run is bounded even if a server hangs.
const budgetS =
  180 +
  Math.ceil(USERS / 50_000) +
  13 * (DURATION_S + WARMUP_S + 45) +
  2 * (DURATION_S + 5 * ROUNDS) +
  Math.ceil(USERS / 20_000) +
  Math.ceil((HOT_USERS * CAP_CAMPAIGNS.length * IMPRESSIONS_TO_CAP) / 3_000) +
  Math.ceil(EVENT_POOL / 10_000) +
  Math.ceil((INGEST_ROWS * INGEST_ORDERS.length) / 20_000);
const watchdog = setTimeout(() => {
  process.stderr.write(`load test exceeded ${budgetS} s: stopping\n`);
  void cleanup().finally(() => process.exit(1));
}, budgetS * 1000);
watchdog.unref();

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  process.stderr.write(`load test failed: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  await cleanup();
}
process.exit(exitCode);
