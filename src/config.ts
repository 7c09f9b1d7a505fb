// Configuration from environment variables, validated once at start-up; every problem reported together.
import { availableParallelism } from "node:os";
import { z } from "zod";
import { boolFlag, intIn, parseVars, spec, type VarSpec } from "./config-spec.ts";
import { type EnrichCallers, parseEnrichCallers } from "./enrich/enrich-callers.ts";
import { type AdminTokenScopes, parseAdminTokens } from "./http/admin-auth.ts";
import { PRIVACY_CONFIG_SPEC } from "./privacy/privacy-config.ts";

/**
 * A Redis address fit for a log or an error: the password of its userinfo replaced by `***`
 * (`redis://user:***@host:6379/0`, `rediss://:***@host`); userinfo without a colon is hidden whole, as it
 * may be a password put where the user name goes. Works on malformed values too: everything between the
 * scheme and the last `@` counts as userinfo, so a password holding `@` or `/` is hidden whole.
 */
export function redactUserinfo(value: string): string {
  const scheme = value.indexOf("://");
  const start = scheme < 0 ? 0 : scheme + 3;
  const at = value.lastIndexOf("@");
  if (at < start) return value;
  const colon = value.indexOf(":", start);
  const user = colon >= 0 && colon < at ? value.slice(start, colon + 1) : "";
  return `${value.slice(0, start)}${user}***${value.slice(at)}`;
}

/** `host:port,host:port`, each entry checked; for REDIS_CLUSTER_NODES and a redis-cluster:// URL. */
function readNodes(raw: string, ctx: z.RefinementCtx): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const entry of raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65535) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `entry '${redactUserinfo(entry)}' must be host:port`,
      });
    } else out.push({ host: m[1] as string, port });
  }
  return out;
}

/** REDIS_URL: a single Redis, or `redis-cluster://host:port,host:port` (the Cluster's seed nodes). */
const redisUrl = z
  .string()
  .trim()
  .transform((v, ctx): string | { host: string; port: number }[] => {
    if (v.startsWith("redis-cluster://")) {
      const nodes = readNodes(v.slice("redis-cluster://".length), ctx);
      if (nodes.length === 0)
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: "names no host:port after redis-cluster://" });
      return nodes;
    }
    if (!/^rediss?:\/\/[^\s]+$/.test(v))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message:
          "must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...]",
      });
    return v;
  })
  .optional();

/** REDIS_CLUSTER_NODES: `host:port,host:port` to seed nodes. */
const clusterNodes = z.string().default("").transform(readNodes);

/** ADMIN_TOKENS: parsed to token -> scopes; each problem names its entry with the token redacted. */
const adminTokens = z
  .string()
  .default("")
  .transform((raw, ctx): AdminTokenScopes => {
    const { tokens, problems } = parseAdminTokens(raw);
    for (const message of problems) ctx.addIssue({ code: z.ZodIssueCode.custom, message });
    return tokens;
  });

/** ENRICH_CALLERS: parsed to key -> caller; each problem names its entry with the key redacted. */
const enrichCallers = z
  .string()
  .default("")
  .transform((raw, ctx): EnrichCallers => {
    const { callers, problems } = parseEnrichCallers(raw);
    for (const message of problems) ctx.addIssue({ code: z.ZodIssueCode.custom, message });
    return callers;
  });

/** Every variable the service reads. Units are in the names. */
export const CONFIG_SPEC = {
  port: spec("PORT", intIn(0, 65535, 8080), "TCP port of the HTTP server (0 picks a free one).", "8080"),
  host: spec("HOST", z.string().min(1).default("0.0.0.0"), "Address the HTTP server binds.", "0.0.0.0"),
  httpServer: spec(
    "HTTP_SERVER",
    z.enum(["uws", "node"]).default("uws"),
    "HTTP engine: uws (uWebSockets.js, the production server) or node (node:http, the benchmark baseline).",
    "uws",
  ),
  workers: spec(
    "WORKERS",
    intIn(1, 1_024, 1).optional(),
    "HTTP workers: threads each running the server on PORT (the kernel spreads connections over them), each with its own LRU cache, kept coherent through Redis pub/sub. Unset: one per core. Always 1 with the embedded store (its data lives in one thread) and with HTTP_SERVER=node.",
  ),
  redisUrl: {
    ...spec(
      "REDIS_URL",
      redisUrl,
      "Redis holding the profiles: `redis://[user:password@]host:port[/db]` (or `rediss://`), or `redis-cluster://host:port[,host:port...]` for a Redis Cluster (the same as REDIS_CLUSTER_NODES). Unset: the embedded in-memory store, seeded with the demo data. A password is never logged or echoed in an error (shown as `***`).",
    ),
    redact: redactUserinfo,
  },
  redisClusterNodes: {
    ...spec(
      "REDIS_CLUSTER_NODES",
      clusterNodes,
      "Seed nodes of a Redis Cluster holding the profiles, comma-separated `host:port` (one is enough; more survive a node being down). Set instead of REDIS_URL.",
      "",
    ),
    // Entries carry no password, but one written as user:password@host:port must not be echoed.
    redact: redactUserinfo,
  },
  redisCommandTimeoutMs: spec(
    "REDIS_COMMAND_TIMEOUT_MS",
    intIn(1, 60_000, 25),
    "A Redis command not answered within this is failed; the lookup answers from cache with degraded=true.",
    "25",
  ),
  redisConnectTimeoutMs: spec(
    "REDIS_CONNECT_TIMEOUT_MS",
    intIn(1, 60_000, 2_000),
    "Time allowed for one connection attempt to Redis.",
    "2000",
  ),
  impressionReplicas: spec(
    "IMPRESSION_REPLICAS",
    intIn(0, 16, 0).optional(),
    "Replicas that must confirm a counted impression (Redis WAIT) before it is acknowledged; one that is not confirmed within IMPRESSION_WAIT_MS is answered 503 and the caller's retry is counted once. Without it a master that fails right after counting loses the impression in the failover (Redis replicates asynchronously). Unset: 1 on a Cluster, 0 on a single Redis. Every master must have at least this many replicas.",
  ),
  impressionWaitMs: spec(
    "IMPRESSION_WAIT_MS",
    intIn(1, 10_000, 100),
    "Longest an impression waits for IMPRESSION_REPLICAS to confirm it.",
    "100",
  ),
  lookupBudgetMs: spec(
    "LOOKUP_BUDGET_MS",
    intIn(1, 10_000, 15),
    "Longest a bid-time answer (/v1/lookup, /v1/enrich) waits for the store; what it has not answered by then is answered from cache with degraded=true. Less when the request's tmax, minus TMAX_MARGIN_MS, leaves less.",
    "15",
  ),
  tmaxMarginMs: spec(
    "TMAX_MARGIN_MS",
    intIn(0, 10_000, 20),
    "Kept back from a bid request's tmax for the rest of the bid: the store is waited for at most tmax minus this (and never more than LOOKUP_BUDGET_MS).",
    "20",
  ),
  breakerFailures: spec(
    "BREAKER_FAILURES",
    intIn(1, 10_000, 5),
    "Store reads timing out in a row (REDIS_COMMAND_TIMEOUT_MS), over at least REDIS_COMMAND_TIMEOUT_MS, that open the circuit breaker: reads are then not attempted and answers are degraded at once. A read refused at once (connection down) is not counted: it costs nothing. On a Cluster each master has a breaker of its own instead, which counts its refusals too.",
    "5",
  ),
  breakerOpenMs: spec(
    "BREAKER_OPEN_MS",
    intIn(10, 600_000, 1_000),
    "How long the circuit breaker stays open before one read probes the store; the probe's success closes it. A Cluster master's breaker probes after at most 200 ms: its probe is what finds a promoted replica.",
    "1000",
  ),
  maxInFlight: spec(
    "MAX_IN_FLIGHT",
    intIn(1, 1_000_000, 2_000),
    "Requests worked on at once; more are shed at once (SHED_STATUS) instead of queueing. /healthz and /readyz are never shed.",
    "2000",
  ),
  maxStreamsInFlight: spec(
    "MAX_STREAMS_IN_FLIGHT",
    intIn(1, 10_000, 8),
    "Streamed requests (admin uploads, POST /v1/events) worked on at once, counted apart from MAX_IN_FLIGHT so that slow uploads never take the bid path's slots; more are shed at once (SHED_STATUS).",
    "8",
  ),
  shedStatus: spec(
    "SHED_STATUS",
    z
      .enum(["503", "204"])
      .default("503")
      .transform((v) => (v === "204" ? 204 : 503) as 204 | 503),
    "Answer of a shed request: 503 with Retry-After (callers retry), or 204 no content (a bidder simply does not bid).",
    "503",
  ),
  bodyTimeoutMs: spec(
    "BODY_TIMEOUT_MS",
    intIn(100, 600_000, 5_000),
    "A bid-time request body not fully received within this is answered 408 and its connection closed: a slow client cannot hold the server.",
    "5000",
  ),
  streamIdleTimeoutMs: spec(
    "STREAM_IDLE_TIMEOUT_MS",
    intIn(100, 600_000, 5_000),
    "A streamed request body (admin uploads, POST /v1/events) that sends nothing for this long is answered 408 and its connection closed: a trickling client cannot hold a stream slot.",
    "5000",
  ),
  shutdownDrainMs: spec(
    "SHUTDOWN_DRAIN_MS",
    intIn(0, 600_000, 2_000),
    "On SIGTERM, how long /readyz answers 503 while requests are still served, so that a load balancer stops sending new ones.",
    "2000",
  ),
  shutdownGraceMs: spec(
    "SHUTDOWN_GRACE_MS",
    intIn(0, 600_000, 10_000),
    "On SIGTERM, after the drain: how long requests in flight may take to finish before the process exits anyway.",
    "10000",
  ),
  bodyLimitBytes: spec(
    "BODY_LIMIT_BYTES",
    intIn(256, 16 * 1024 * 1024, 64 * 1024),
    "Largest request body accepted; larger ones get 413.",
    "65536",
  ),
  adminBodyLimitBytes: spec(
    "ADMIN_BODY_LIMIT_BYTES",
    intIn(1024, 64 * 1024 * 1024 * 1024, 1024 * 1024 * 1024),
    "Largest body of an admin upload (read as a stream, never held whole in memory); larger ones get 413.",
    "1073741824",
  ),
  eventsBodyLimitBytes: spec(
    "EVENTS_BODY_LIMIT_BYTES",
    intIn(1024, 1024 * 1024 * 1024, 1024 * 1024),
    "Largest body of POST /v1/events (a batch of impression events, read as a stream); larger ones get 413.",
    "1048576",
  ),
  ingestMaxLineBytes: spec(
    "INGEST_MAX_LINE_BYTES",
    intIn(1024, 1024 * 1024 * 1024, 1024 * 1024),
    "Longest line of a bulk file (admin uploads and the CLI: memberships, links, opt-outs, cap and deal rules, taxonomy CSV); a longer line is rejected with its line number and reading goes on. POST /v1/events lines are limited to 64 KiB.",
    "1048576",
  ),
  adminTokens: spec(
    "ADMIN_TOKENS",
    adminTokens,
    "Bearer tokens of the admin API: comma-separated `<token>=<scope>[\\|<scope>...]`, scopes `taxonomy:read`, `taxonomy:write`, `memberships:write`, `users:read`, `users:write`, `caps:read`, `caps:write`, `links:write`, `deals:read`, `deals:write`, `events` (POST /v1/events), `*` (all); a token is at least 16 of `A-Z a-z 0-9 . _ ~ + / -`. Empty: the admin API is off (every admin route answers 401).",
    "",
    true,
  ),
  enrichCallers: spec(
    "ENRICH_CALLERS",
    enrichCallers,
    "Callers of /v1/enrich: comma-separated `<key>=<caller>:<provider>[\\|<provider>...]`, each caller receiving the segments of the providers it names (second-party data only so) and, with `*`, of every first- and third-party provider; the key is sent as `Authorization: Bearer <key>` (at least 16 of `A-Z a-z 0-9 . _ ~ + / -`). Empty: /v1/enrich is open and gives first- and third-party data only.",
    "",
    true,
  ),
  lookupCallers: spec(
    "LOOKUP_CALLERS",
    enrichCallers,
    "Callers of /v1/lookup, in the form of ENRICH_CALLERS: `<key>=<caller>:<provider>[\\|<provider>...]`, sent as `Authorization: Bearer <key>`; each caller receives second-party segments only of the providers it names, and first- and third-party ones with `*`. A request without a known key gets 401. Empty: /v1/lookup is open and gives first- and third-party data only.",
    "",
    true,
  ),
  batchLimit: spec(
    "BATCH_LIMIT",
    intIn(1, 10_000, 500),
    "Most users in one batch lookup; larger batches get 400.",
    "500",
  ),
  idsPerRequestLimit: spec(
    "IDS_PER_REQUEST_LIMIT",
    intIn(1, 1_000, 64),
    "Most typed IDs read from one bid request (the rest are ignored) or one compact entry (more is a 400).",
    "64",
  ),
  cacheMaxEntries: spec(
    "CACHE_MAX_ENTRIES",
    intIn(1, 100_000_000, 1_000_000),
    "Most profiles (and known-absent IDs) held in the in-process LRU cache.",
    "1000000",
  ),
  cacheMaxBytes: spec(
    "CACHE_MAX_BYTES",
    intIn(1024, 64 * 1024 * 1024 * 1024, 256 * 1024 * 1024),
    "Upper bound on the estimated bytes held by the LRU cache.",
    "268435456",
  ),
  cacheTtlMs: spec(
    "CACHE_TTL_MS",
    intIn(0, 86_400_000, 30_000),
    "How long a profile read from the store is served from cache: a change in the store shows within this. 0 disables the cache.",
    "30000",
  ),
  cacheNegativeTtlMs: spec(
    "CACHE_NEGATIVE_TTL_MS",
    intIn(0, 86_400_000, 5_000),
    "How long an ID absent from the store is remembered as absent: a new ID shows within this.",
    "5000",
  ),
  defaultExchange: spec(
    "DEFAULT_EXCHANGE",
    z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,64}$/, "must be letters, digits, '.', '_' or '-' (at most 64)")
      .default(""),
    "Exchange used to namespace user.id when the request names none (x-exchange header or ?exchange=). Empty: user.id is ignored then.",
    "",
  ),
  capCountersCacheMs: spec(
    "CAP_COUNTERS_CACHE_MS",
    intIn(0, 3_600_000, 30_000),
    "How long a person's impression counters may be served from cache at bid time (at most 1 h). Impressions recorded through other instances drop the cached counters over Redis pub/sub within milliseconds (this instance's own at once), and the cache is emptied when the subscriber reconnects, so this only bounds how stale `capped` and `remaining` can be when a message is lost all the same or while this instance's subscriber is disconnected. 0 reads them every time.",
    "30000",
  ),
  maxPersonIds: spec(
    "MAX_PERSON_IDS",
    intIn(2, 10_000, 32),
    "Most typed IDs one person of the identity graph may hold: a link that would make a larger person (a shared device, a family tablet) is refused and reported.",
    "32",
  ),
  eventTokenSecret: spec(
    "EVENT_TOKEN_SECRET",
    z.string().min(32, "must be at least 32 characters (e.g. openssl rand -hex 32)").optional(),
    "Secret (at least 32 characters) keying the notice `token` a lookup answer carries, which the impression pixel requires. Set the same one on every instance. Unset: each start makes a random one, shared by its worker threads, so tokens do not survive a restart or reach another instance.",
    undefined,
    true,
  ),
  noticeTokenTtlSec: spec(
    "NOTICE_TOKEN_TTL_SEC",
    intIn(60, 7 * 86_400, 3_600),
    "How long a notice token is honoured after the lookup issued it: a pixel that fires later is refused (403).",
    "3600",
  ),
  eventsOpen: spec(
    "EVENTS_OPEN",
    boolFlag(false),
    "true: POST /v1/events needs no key and the impression pixel takes `type` and `id` without a token, as before tokens existed. Only for a closed network: anyone who reaches the service can then count impressions for any ID (and so cap anyone's campaigns). Logged as a warning at start-up.",
    "false",
  ),
  catalogReloadMs: spec(
    "CATALOG_RELOAD_MS",
    intIn(1_000, 3_600_000, 30_000),
    "How often each instance re-reads taxonomy and segment generations, as a safety net: changes normally arrive at once over Redis pub/sub.",
    "30000",
  ),
  seedDemoData: spec(
    "SEED_DEMO_DATA",
    boolFlag(true),
    "Load data/demo-memberships.ndjson into the embedded store at start-up (ignored with REDIS_URL).",
    "true",
  ),
  metricsEnabled: spec(
    "METRICS_ENABLED",
    boolFlag(true),
    "Count and time every request for /metrics and /status. false: only the figures read at scrape time (cache, breaker, events, withheld) remain.",
    "true",
  ),
  logLevel: spec(
    "LOG_LEVEL",
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    "Log level (pino).",
    "info",
  ),
  ...PRIVACY_CONFIG_SPEC,
} as const;

type Spec = typeof CONFIG_SPEC;
type Parsed = { readonly [K in keyof Spec]: Spec[K] extends VarSpec<infer T> ? T : never };
/** As parsed, with what loadConfig resolves: a redis-cluster:// URL moved to the nodes, replicas defaulted. */
export type Config = Omit<Parsed, "redisUrl" | "impressionReplicas"> & {
  readonly redisUrl: string | undefined;
  readonly impressionReplicas: number;
};

export class ConfigError extends Error {
  readonly code = "AUD_ERR_CONFIG";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Reads and validates every variable; throws ConfigError listing all problems at once. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const { values, problems } = parseVars(CONFIG_SPEC, env);
  if (Array.isArray(values.redisUrl)) {
    if ((values.redisClusterNodes as unknown[] | undefined)?.length) {
      problems.push("REDIS_URL and REDIS_CLUSTER_NODES both name a Cluster: set one");
    }
    values.redisClusterNodes = values.redisUrl;
    values.redisUrl = undefined;
  } else if (values.redisUrl !== undefined && (values.redisClusterNodes as unknown[] | undefined)?.length) {
    problems.push("REDIS_URL and REDIS_CLUSTER_NODES are both set: set one (a single Redis, or a Cluster)");
  }
  values.impressionReplicas ??= (values.redisClusterNodes as unknown[] | undefined)?.length ? 1 : 0;
  if (problems.length > 0) throw new ConfigError(problems);
  // The embedded demo answers the GDPR samples as a consenting vendor would: their TC strings name this
  // vendor. Only with demo data and no Redis, so that real data never rests on a vendor nobody configured.
  const embedded = values.redisUrl === undefined && (values.redisClusterNodes as unknown[]).length === 0;
  if (embedded && values.seedDemoData === true && values.tcfVendorId === undefined) {
    values.tcfVendorId = DEMO_TCF_VENDOR_ID;
  }
  return Object.freeze(values) as Config;
}

/** The TCF vendor the demo samples' consent strings give consent to (README, Privacy). */
export const DEMO_TCF_VENDOR_ID = 1001;

/** The configuration reference as a Markdown table; README.md carries it between config markers. */
export function configReferenceMarkdown(): string {
  const rows = Object.values(CONFIG_SPEC).map((s: VarSpec<unknown>) => {
    const dflt =
      s.defaultText === undefined ? "unset" : s.defaultText === "" ? "empty" : `\`${s.defaultText}\``;
    return `| \`${s.env}\` | ${dflt} | ${s.doc} |`;
  });
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** The configuration for the start-up log: every value but the secrets (of those, only how many are set). */
export function configSummary(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(CONFIG_SPEC) as [string, VarSpec<unknown>][]) {
    const v = (config as unknown as Record<string, unknown>)[key];
    if (s.secret) out[key] = v instanceof Map ? `${v.size} set` : v === undefined ? "unset" : "set";
    else if (s.redact !== undefined && typeof v === "string") out[key] = s.redact(v);
    else out[key] = v instanceof Map ? Object.fromEntries(v) : v;
  }
  return out;
}

/**
 * How many worker threads serve, and why only one when WORKERS cannot be honoured: the embedded store's
 * data lives in one thread, and node:http cannot share a port between threads.
 */
export function workerPlan(config: Config): { count: number; forcedBy: string | null } {
  const forcedBy = !usesRedis(config)
    ? "the embedded store"
    : config.httpServer === "node"
      ? "HTTP_SERVER=node"
      : null;
  return { count: forcedBy === null ? (config.workers ?? availableParallelism()) : 1, forcedBy };
}

/** Whether the service runs on Redis (a single node or a Cluster) rather than the embedded store. */
export function usesRedis(config: Config): boolean {
  return config.redisUrl !== undefined || config.redisClusterNodes.length > 0;
}

/** Where the stores connect (the single Redis or the Cluster's seed nodes), and how writes are confirmed. */
export function redisTarget(config: Config): {
  url?: string;
  clusterNodes?: { host: string; port: number }[];
  impressionReplicas: number;
  impressionWaitMs: number;
} {
  const writes = { impressionReplicas: config.impressionReplicas, impressionWaitMs: config.impressionWaitMs };
  return config.redisClusterNodes.length > 0
    ? { clusterNodes: config.redisClusterNodes, ...writes }
    : { url: config.redisUrl as string, ...writes };
}
