// `npm run bench`: own Redis, seeded users, four server scenarios under autocannon, table, ratios, RESULTS.md.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { detectUwsBackend } from "../src/http/uws-server.ts";
import { freePort, type RedisServer, startRedis } from "../test/helpers/redis-server.ts";
import { type Body, buildPool, expectedSegments, loadTemplates } from "./bodies.ts";
import { LoadStats, runLoad } from "./cannon.ts";
import {
  cpuSeconds,
  killAllNow,
  machineBusySeconds,
  type ServerChild,
  startServer,
  stopAll,
} from "./children.ts";
import { type IngestFigures, ingestLines, runIngestBench } from "./ingest-bench.ts";
import {
  clean,
  machineLines,
  ratioLines,
  type ScenarioKey,
  type ScenarioRow,
  textTable,
  writeResults,
} from "./report.ts";
import { redisPid, seedUsers } from "./seed.ts";

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
const INGEST_ROWS = intEnv("BENCH_INGEST_ROWS", 5_000_000, 0, 100_000_000);
const INGEST_ORDER = process.env.BENCH_INGEST_ORDER === "random" ? "random" : "grouped";

/** Hot set of the cache-hit scenarios, and the unknown IDs mixed into it (remembered as absent). */
const HOT_USERS = Math.min(USERS, 20_000);
const HOT_UNKNOWN = 2_000;
const HIT_POOL = 20_000;
const MISS_POOL = 40_000;
const UNKNOWN_SHARE = 0.1;
/** Bodies per scenario whose answers are checked before the load. */
const VERIFY = 60;
/** Long enough that nothing cached expires during a run: (b) and (d) measure pure cache hits. */
const LONG_TTL_MS = "3600000";

interface Scenario {
  readonly key: ScenarioKey;
  readonly label: string;
  /** Service env on top of REDIS_URL/PORT/HOST/LOG_LEVEL; null for the bare uWS server. */
  readonly env: Record<string, string> | null;
  readonly pool: readonly Body[];
  readonly warmCache: boolean;
}

/** A scenario whose server is up, with what its measured rounds have added up so far. */
interface Running {
  readonly s: Scenario;
  readonly server: ServerChild;
  readonly bodies: Buffer[];
  readonly verified: string;
  readonly stats: LoadStats;
  /** req/s of each measured round. */
  readonly rounds: number[];
  hits: number;
  misses: number;
  storeErrors: number;
  cpu: { server: number | null; client: number; redis: number | null; machine: number | null };
  error?: string;
}

let redis: RedisServer | null = null;
let redisProcessId: number | null = null;
let cleaned = false;
/** Set when the bare server reports that the package fell back to its JS implementation. */
let bareFallback = false;

async function cleanup(): Promise<void> {
  await stopAll();
  if (redis !== null) {
    const r = redis;
    redis = null;
    await r.close();
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
  if (!cleaned && redisProcessId !== null) {
    try {
      process.kill(redisProcessId, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function cacheStats(baseUrl: string): Promise<{ hits: number; misses: number; storeErrors: number }> {
  const r = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  const body = (await r.json()) as { cache?: Record<string, unknown> };
  const c = body.cache ?? {};
  return {
    hits: Number(c.hits ?? 0),
    misses: Number(c.misses ?? 0),
    storeErrors: Number(c.storeErrors ?? 0),
  };
}

/** Posts the first bodies one by one and checks the answers: segments for the service, status for bare uWS. */
async function verify(server: ServerChild, pool: readonly Body[], service: boolean): Promise<string> {
  const n = Math.min(VERIFY, pool.length);
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const body = pool[i] as Body;
    const r = await fetch(`${server.baseUrl}/v1/lookup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body.bytes,
      signal: AbortSignal.timeout(5000),
    });
    const answer = (await r.json()) as { segments?: string[]; degraded?: boolean };
    const want = expectedSegments(body).join();
    if (r.status === 200 && (!service || (answer.degraded === false && answer.segments?.join() === want)))
      ok++;
    else if (ok === i) {
      log(`    mismatch on body ${i}: status ${r.status}, got ${JSON.stringify(answer)}, expected [${want}]`);
    }
  }
  return `${ok}/${n}`;
}

/** Starts the scenario's server, checks some answers, warms the cache (if any) and the JIT. */
async function prepare(s: Scenario, redisUrl: string): Promise<Running> {
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
          script: "src/main.ts",
          env: { REDIS_URL: redisUrl, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", ...s.env },
          port,
          readyPath: "/readyz",
        });
  const url = server.baseUrl;
  const bodies = s.pool.map((b) => b.bytes);
  const verified = await verify(server, s.pool, s.env !== null);
  if (s.warmCache) await runLoad({ url, bodies, connections: CONNECTIONS, amount: bodies.length });
  if (WARMUP_S > 0) await runLoad({ url, bodies, connections: CONNECTIONS, durationS: WARMUP_S });
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
    bodies,
    verified,
    stats: new LoadStats(),
    rounds: [],
    hits: 0,
    misses: 0,
    storeErrors: 0,
    cpu: { server: 0, client: 0, redis: 0, machine: 0 },
  };
}

const add = (sum: number | null, a: number | null, b: number | null): number | null =>
  sum === null || a === null || b === null ? null : sum + (b - a);

/** One measured window of `seconds` against a running scenario; adds to its totals. */
async function measure(run: Running, seconds: number): Promise<void> {
  const service = run.s.env !== null;
  const url = run.server.baseUrl;
  const before = service ? await cacheStats(url) : null;
  const server0 = cpuSeconds(run.server.pid);
  const redis0 = cpuSeconds(redisProcessId);
  const machine0 = machineBusySeconds();
  const client0 = process.cpuUsage();
  const responses0 = run.stats.responses;
  const seconds0 = run.stats.seconds;
  await runLoad({ url, bodies: run.bodies, connections: CONNECTIONS, durationS: seconds }, run.stats);
  const client1 = process.cpuUsage(client0);
  run.cpu.client += (client1.user + client1.system) / 1e6;
  run.cpu.server = add(run.cpu.server, server0, cpuSeconds(run.server.pid));
  run.cpu.redis = add(run.cpu.redis, redis0, cpuSeconds(redisProcessId));
  run.cpu.machine = add(run.cpu.machine, machine0, machineBusySeconds());
  if (run.server.exited()) {
    throw new Error(`${run.server.name} exited during the run:\n${run.server.output()}`);
  }
  if (before !== null) {
    const after = await cacheStats(url);
    run.hits += after.hits - before.hits;
    run.misses += after.misses - before.misses;
    run.storeErrors += after.storeErrors - before.storeErrors;
  }
  const took = run.stats.seconds - seconds0;
  const rps = (run.stats.responses - responses0) / took;
  run.rounds.push(rps);
  log(`    (${run.s.key}) ${Math.round(rps)} req/s over ${took.toFixed(1)} s`);
}

function rowOf(run: Running): ScenarioRow {
  const load = run.stats.summary();
  const service = run.s.env !== null;
  const share = (v: number | null): number | null => (v === null ? null : (v / load.seconds) * 100);
  return {
    key: run.s.key,
    label: run.s.label,
    load,
    roundRps: run.rounds,
    hitRatio: !service || run.hits + run.misses === 0 ? null : run.hits / (run.hits + run.misses),
    storeErrors: service ? run.storeErrors : null,
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
    hitRatio: null,
    storeErrors: null,
    cpu: { server: null, client: null, redis: null, machine: null },
    verified: "-",
    error,
  };
}

async function main(): Promise<number> {
  const backend = detectUwsBackend();
  log(
    `load test: ${USERS.toLocaleString("en-US")} users, ${CONNECTIONS} connections, ` +
      `${DURATION_S} s measured per scenario in ${ROUNDS} interleaved round(s), ${WARMUP_S} s warm-up`,
  );
  for (const l of machineLines(backend.detail)) log(`  ${l}`);

  redis = await startRedis();
  redisProcessId = await redisPid(redis.url);
  const seeded = await seedUsers(redis.url, USERS);
  log(
    `seeded ${USERS.toLocaleString("en-US")} users in ${(seeded.ms / 1000).toFixed(1)} s ` +
      `(${(seeded.usedMemoryBytes / 2 ** 20).toFixed(0)} MiB in Redis)`,
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
  log(
    `built ${HIT_POOL + MISS_POOL} bodies from ${templates.length} samples in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  const hitEnv = { CACHE_TTL_MS: LONG_TTL_MS, CACHE_NEGATIVE_TTL_MS: LONG_TTL_MS };
  const scenarios: Scenario[] = [
    { key: "a", label: "bare uWS ceiling", env: null, pool: hitPool, warmCache: false },
    {
      key: "b",
      label: "lookup, cache hits",
      env: { HTTP_SERVER: "uws", ...hitEnv },
      pool: hitPool,
      warmCache: true,
    },
    {
      key: "c",
      label: "lookup, Redis misses",
      env: { HTTP_SERVER: "uws", CACHE_TTL_MS: "0" },
      pool: missPool,
      warmCache: false,
    },
    {
      key: "d",
      label: "lookup, node:http",
      env: { HTTP_SERVER: "node", ...hitEnv },
      pool: hitPool,
      warmCache: true,
    },
  ];

  // All servers stay up (idle ones cost nothing) so that the rounds can interleave them: a drift in the
  // machine's speed during the run then spreads over every scenario instead of biasing the ratios.
  const failed = new Map<ScenarioKey, string>();
  const running: Running[] = [];
  for (const s of scenarios) {
    try {
      running.push(await prepare(s, redis.url));
    } catch (err) {
      const message = (err as Error).message;
      log(`(${s.key}) ${s.label}: FAILED: ${message}`);
      failed.set(s.key, message.split("\n")[0] ?? message);
    }
  }
  // autocannon stops on its 1 s sampling tick, so rounds last whole seconds.
  const perRound = Math.max(1, Math.round(DURATION_S / ROUNDS));
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1}/${ROUNDS}`);
    for (let k = 0; k < running.length; k++) {
      const run = running[(k + round) % running.length] as Running;
      if (run.error !== undefined) continue;
      try {
        await measure(run, perRound);
      } catch (err) {
        const message = (err as Error).message;
        log(`    (${run.s.key}) FAILED: ${message}`);
        run.error = message.split("\n")[0] ?? message;
      }
    }
  }
  await Promise.all(running.map((r) => r.server.stop()));

  let ingest: IngestFigures | null = null;
  if (INGEST_ROWS > 0) {
    log(
      `\ningest: loading ${INGEST_ROWS.toLocaleString("en-US")} generated rows with \`audience ingest memberships\``,
    );
    ingest = await runIngestBench(redis.url, INGEST_ROWS, INGEST_ORDER, log);
  }

  const rows = scenarios.map((s) => {
    const run = running.find((r) => r.s === s);
    return run !== undefined ? rowOf(run) : failedRow(s, failed.get(s.key) ?? "not run");
  });
  log("");
  log(textTable(rows));
  log("");
  for (const l of ratioLines(rows)) log(l);
  const ingestReport = ingest === null ? [] : ingestLines(ingest);
  if (ingestReport.length > 0) log("");
  for (const l of ingestReport) log(l);
  writeResults(
    RESULTS_PATH,
    {
      users: USERS,
      connections: CONNECTIONS,
      durationS: perRound * ROUNDS,
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
          s.env === null
            ? "bare server"
            : Object.entries(s.env)
                .map(([k, v]) => `${k}=${v}`)
                .join(" "),
        ]),
      ),
    },
    rows,
    ingestReport,
  );
  log(`\nwrote ${join("loadtest", "RESULTS.md")}`);
  const allClean = rows.every(clean) && (ingest === null || ingest.exitCode === 0);
  if (!allClean) log("some scenario failed or had non-2xx answers / errors: exit code 1");
  return allClean ? 0 : 1;
}

// Hard stop: the whole run is bounded even if a server hangs.
const budgetS =
  120 + Math.ceil(USERS / 50_000) + 4 * (DURATION_S + WARMUP_S + 45) + Math.ceil(INGEST_ROWS / 20_000);
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
