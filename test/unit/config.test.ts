import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, workerPlan } from "../../src/config.ts";

/** Runs loadConfig expecting a ConfigError and returns it. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("loadConfig defaults", () => {
  it("gives every documented default for an empty environment", () => {
    expect(loadConfig({})).toEqual({
      port: 8080,
      host: "0.0.0.0",
      httpServer: "uws",
      redisUrl: undefined,
      redisClusterNodes: [],
      workers: undefined,
      impressionReplicas: 0,
      impressionWaitMs: 100,
      redisCommandTimeoutMs: 25,
      redisConnectTimeoutMs: 2000,
      bodyLimitBytes: 65536,
      batchLimit: 500,
      idsPerRequestLimit: 64,
      cacheMaxEntries: 1_000_000,
      cacheMaxBytes: 268_435_456,
      cacheTtlMs: 30_000,
      cacheNegativeTtlMs: 5_000,
      defaultExchange: "",
      capCountersCacheMs: 30_000,
      maxPersonIds: 32,
      lookupBudgetMs: 15,
      tmaxMarginMs: 20,
      breakerFailures: 5,
      breakerOpenMs: 1_000,
      maxInFlight: 2_000,
      maxStreamsInFlight: 8,
      shedStatus: 503,
      bodyTimeoutMs: 5_000,
      streamIdleTimeoutMs: 5_000,
      shutdownDrainMs: 2_000,
      shutdownGraceMs: 10_000,
      eventTokenSecret: undefined,
      noticeTokenTtlSec: 3_600,
      eventsOpen: false,
      catalogReloadMs: 30_000,
      seedDemoData: true,
      metricsEnabled: true,
      logLevel: "info",
      adminBodyLimitBytes: 1_073_741_824,
      eventsBodyLimitBytes: 1_048_576,
      ingestMaxLineBytes: 1_048_576,
      adminTokens: new Map(),
      enrichCallers: new Map(),
      lookupCallers: new Map(),
      // The embedded demo (no REDIS_URL, demo data) answers the GDPR samples as the vendor they name.
      tcfVendorId: 1001,
      tcfRequiredPurposes: [1, 3, 4],
      tcfAllowLegitimateInterest: false,
      firstPartyOnOptOut: true,
      gppStates: {},
    });
  });

  it("reads Cluster seed nodes, refusing a bad entry and REDIS_URL beside them", () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b:7001" }).redisClusterNodes).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "host-without-port" })).toThrow(
      /REDIS_CLUSTER_NODES entry 'host-without-port' must be host:port/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:1", REDIS_URL: "redis://b:2" })).toThrow(/both set/);
    expect(loadConfig({ REDIS_CLUSTER_NODES: "a:1" }).tcfVendorId).toBeUndefined();
  });

  it("reads a redis-cluster:// URL as the Cluster's seed nodes", () => {
    const c = loadConfig({ REDIS_URL: "redis-cluster://10.0.0.1:7000,redis-b:7001" });
    expect(c.redisUrl).toBeUndefined();
    expect(c.redisClusterNodes).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
    ]);
    expect(() => loadConfig({ REDIS_URL: "redis-cluster://" })).toThrow(
      /REDIS_URL names no host:port after redis-cluster:\/\//,
    );
    expect(() => loadConfig({ REDIS_URL: "redis-cluster://a:1,b" })).toThrow(
      /REDIS_URL entry 'b' must be host:port/,
    );
    expect(() => loadConfig({ REDIS_URL: "redis-cluster://a:1", REDIS_CLUSTER_NODES: "b:2" })).toThrow(
      /both name a Cluster/,
    );
  });

  it("confirms impressions on one replica on a Cluster and on none on a single Redis, unless told", () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: "a:1" }).impressionReplicas).toBe(1);
    expect(loadConfig({ REDIS_URL: "redis://a:1" }).impressionReplicas).toBe(0);
    expect(loadConfig({ REDIS_URL: "redis://a:1", IMPRESSION_REPLICAS: "2" }).impressionReplicas).toBe(2);
    expect(loadConfig({ REDIS_CLUSTER_NODES: "a:1", IMPRESSION_REPLICAS: "0" }).impressionReplicas).toBe(0);
    expect(() => loadConfig({ IMPRESSION_REPLICAS: "17" })).toThrow(/IMPRESSION_REPLICAS must be at most 16/);
  });

  it("runs a worker per core on Redis unless WORKERS says otherwise, and one on the embedded store", () => {
    const redis = { REDIS_URL: "redis://a:1" };
    expect(workerPlan(loadConfig(redis))).toEqual({ count: availableParallelism(), forcedBy: null });
    expect(workerPlan(loadConfig({ ...redis, WORKERS: "3" }))).toEqual({ count: 3, forcedBy: null });
    expect(workerPlan(loadConfig({ REDIS_CLUSTER_NODES: "a:1", WORKERS: "4" }))).toEqual({
      count: 4,
      forcedBy: null,
    });
    expect(workerPlan(loadConfig({ WORKERS: "3" }))).toEqual({ count: 1, forcedBy: "the embedded store" });
    expect(workerPlan(loadConfig({ ...redis, WORKERS: "3", HTTP_SERVER: "node" }))).toEqual({
      count: 1,
      forcedBy: "HTTP_SERVER=node",
    });
    expect(() => loadConfig({ WORKERS: "0" })).toThrow(/WORKERS must be at least 1, got '0'/);
  });

  it("uses the demo TCF vendor only for the embedded demo, never with real data", () => {
    expect(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379" }).tcfVendorId).toBeUndefined();
    expect(loadConfig({ SEED_DEMO_DATA: "false" }).tcfVendorId).toBeUndefined();
    expect(loadConfig({ TCF_VENDOR_ID: "77" }).tcfVendorId).toBe(77);
    expect(() => loadConfig({ TCF_VENDOR_ID: "0", GPP_STATES: "usxx=ignore" })).toThrow(
      /TCF_VENDOR_ID must be at least 1, got '0'\n.*GPP_STATES unknown GPP section 'usxx'/s,
    );
  });

  it("returns a frozen object", () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it("treats an empty string as unset for variables with a default", () => {
    const c = loadConfig({ PORT: "", CACHE_TTL_MS: "", LOG_LEVEL: "", SEED_DEMO_DATA: "", REDIS_URL: "" });
    expect(c.port).toBe(8080);
    expect(c.cacheTtlMs).toBe(30_000);
    expect(c.logLevel).toBe("info");
    expect(c.seedDemoData).toBe(true);
    expect(c.redisUrl).toBeUndefined();
  });

  it("ignores variables it does not know", () => {
    expect(loadConfig({ SOMETHING_ELSE: "x" }).port).toBe(8080);
  });
});

describe("loadConfig parses each variable", () => {
  it("PORT", () => {
    expect(loadConfig({ PORT: "9090" }).port).toBe(9090);
    expect(loadConfig({ PORT: "0" }).port).toBe(0);
    expect(loadConfig({ PORT: "65535" }).port).toBe(65535);
  });

  it("BODY_LIMIT_BYTES", () => {
    expect(loadConfig({ BODY_LIMIT_BYTES: "1024" }).bodyLimitBytes).toBe(1024);
    expect(loadConfig({ BODY_LIMIT_BYTES: "256" }).bodyLimitBytes).toBe(256);
    expect(loadConfig({ BODY_LIMIT_BYTES: String(16 * 1024 * 1024) }).bodyLimitBytes).toBe(16 * 1024 * 1024);
  });

  it("CACHE_TTL_MS, including 0 (cache disabled)", () => {
    expect(loadConfig({ CACHE_TTL_MS: "1500" }).cacheTtlMs).toBe(1500);
    expect(loadConfig({ CACHE_TTL_MS: "0" }).cacheTtlMs).toBe(0);
    expect(loadConfig({ CACHE_TTL_MS: "86400000" }).cacheTtlMs).toBe(86_400_000);
  });

  it.each([
    ["true", true],
    ["1", true],
    ["yes", true],
    ["false", false],
    ["0", false],
    ["no", false],
  ])("SEED_DEMO_DATA=%s -> %s", (raw, expected) => {
    expect(loadConfig({ SEED_DEMO_DATA: raw }).seedDemoData).toBe(expected);
  });

  it("HTTP_SERVER", () => {
    expect(loadConfig({ HTTP_SERVER: "node" }).httpServer).toBe("node");
    expect(loadConfig({ HTTP_SERVER: "uws" }).httpServer).toBe("uws");
  });

  it.each(["fatal", "error", "warn", "info", "debug", "trace", "silent"])("LOG_LEVEL=%s", (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it("REDIS_URL redis:// and rediss://, trimmed", () => {
    expect(loadConfig({ REDIS_URL: "redis://localhost:6379" }).redisUrl).toBe("redis://localhost:6379");
    expect(loadConfig({ REDIS_URL: "rediss://cache.example.com:6380/2" }).redisUrl).toBe(
      "rediss://cache.example.com:6380/2",
    );
    expect(loadConfig({ REDIS_URL: "  redis://10.0.0.5:6379/1  " }).redisUrl).toBe("redis://10.0.0.5:6379/1");
  });

  it("HOST and DEFAULT_EXCHANGE", () => {
    const c = loadConfig({ HOST: "127.0.0.1", DEFAULT_EXCHANGE: "ssp-1.example" });
    expect(c.host).toBe("127.0.0.1");
    expect(c.defaultExchange).toBe("ssp-1.example");
  });
});

describe("loadConfig rejects wrong values", () => {
  it("names every wrong variable at once, each message starting with its name and holding the bad value", () => {
    const err = configError({
      PORT: "70000",
      CACHE_TTL_MS: "abc",
      REDIS_URL: "localhost",
      LOG_LEVEL: "loud",
      BODY_LIMIT_BYTES: "1024",
    });
    expect(err.code).toBe("AUD_ERR_CONFIG");
    expect(err.problems).toHaveLength(4);
    const byVar = new Map(err.problems.map((p) => [p.split(" ")[0], p]));
    expect([...byVar.keys()].sort()).toEqual(["CACHE_TTL_MS", "LOG_LEVEL", "PORT", "REDIS_URL"]);
    expect(byVar.get("PORT")).toBe("PORT must be at most 65535, got '70000'");
    expect(byVar.get("CACHE_TTL_MS")).toBe("CACHE_TTL_MS must be a number, got 'abc'");
    expect(byVar.get("REDIS_URL")).toBe(
      "REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'localhost'",
    );
    expect(byVar.get("LOG_LEVEL")).toMatch(/^LOG_LEVEL .*'loud'/);
    for (const p of err.problems) expect(err.message).toContain(p);
  });

  it.each([
    ["PORT", "abc", "PORT must be a number, got 'abc'"],
    ["PORT", "70000", "PORT must be at most 65535, got '70000'"],
    ["PORT", "-1", "PORT must be at least 0, got '-1'"],
    ["PORT", "80.5", "PORT must be a whole number, got '80.5'"],
    ["BODY_LIMIT_BYTES", "100", "BODY_LIMIT_BYTES must be at least 256, got '100'"],
    ["CACHE_TTL_MS", "86400001", "CACHE_TTL_MS must be at most 86400000, got '86400001'"],
    ["SEED_DEMO_DATA", "maybe", "SEED_DEMO_DATA must be true or false, got 'maybe'"],
    ["SEED_DEMO_DATA", "TRUE", "SEED_DEMO_DATA must be true or false, got 'TRUE'"],
    [
      "REDIS_URL",
      "http://localhost:6379",
      "REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'http://localhost:6379'",
    ],
    [
      "REDIS_URL",
      "redis://",
      "REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'redis://'",
    ],
  ])("%s=%s", (name, raw, message) => {
    expect(configError({ [name]: raw }).problems).toEqual([message]);
  });

  it("HTTP_SERVER outside uws|node", () => {
    const { problems } = configError({ HTTP_SERVER: "express" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^HTTP_SERVER /);
    expect(problems[0]).toContain("'express'");
  });

  it("LOG_LEVEL outside the pino levels", () => {
    const { problems } = configError({ LOG_LEVEL: "loud" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^LOG_LEVEL /);
    expect(problems[0]).toContain("'loud'");
  });

  it("puts every problem in the error message", () => {
    const err = configError({ PORT: "abc", SEED_DEMO_DATA: "maybe" });
    expect(err.message).toBe(
      "invalid configuration:\n  PORT must be a number, got 'abc'\n  SEED_DEMO_DATA must be true or false, got 'maybe'",
    );
  });
});

describe("configSummary", () => {
  it("shows every setting for the start-up log, never a secret", async () => {
    const { configSummary } = await import("../../src/config.ts");
    const secret = "a-very-secret-admin-token-123456";
    const summary = configSummary(
      loadConfig({ ADMIN_TOKENS: `${secret}=*`, EVENT_TOKEN_SECRET: "s".repeat(40), PORT: "9000" }),
    );
    expect(summary.port).toBe(9000);
    expect(summary.adminTokens).toBe("1 set");
    expect(summary.eventTokenSecret).toBe("set");
    expect(summary.enrichCallers).toBe("0 set");
    expect(JSON.stringify(summary)).not.toContain(secret);
    expect(JSON.stringify(summary)).not.toContain("s".repeat(40));
  });
});

describe("secrets never appear in configuration errors or the start-up summary", () => {
  const PASSWORD = "pa55-w0rd-secret";

  it.each([
    ["redis://app:pa55-w0rd-secret@db.internal:6379/0", "redis://app:***@db.internal:6379/0"],
    ["rediss://:pa55-w0rd-secret@db.internal:6380", "rediss://:***@db.internal:6380"],
    ["redis://pa55-w0rd-secret@db.internal:6379", "redis://***@db.internal:6379"],
    ["redis://db.internal:6379/2", "redis://db.internal:6379/2"],
  ])("summarises REDIS_URL=%s as %s", async (url, shown) => {
    const { configSummary } = await import("../../src/config.ts");
    const config = loadConfig({ REDIS_URL: url });
    // The service still connects with the password: only what is shown is redacted.
    expect(config.redisUrl).toBe(url);
    const summary = configSummary(config);
    expect(summary.redisUrl).toBe(shown);
    expect(JSON.stringify(summary)).not.toContain(PASSWORD);
  });

  it.each([
    [
      "REDIS_URL",
      "http://app:pa55-w0rd-secret@db.internal:6379",
      "REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'http://app:***@db.internal:6379'",
    ],
    [
      "REDIS_URL",
      "redis://app:pa55-w0rd-secret@db internal:6379",
      "REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'redis://app:***@db internal:6379'",
    ],
    [
      "REDIS_URL",
      "redis-cluster://app:pa55-w0rd-secret@db1:7000",
      "REDIS_URL entry 'app:***@db1:7000' must be host:port; names no host:port after redis-cluster://, got 'redis-cluster://app:***@db1:7000'",
    ],
    [
      "REDIS_CLUSTER_NODES",
      "db1:7000,:pa55-w0rd-secret@db2:7000",
      "REDIS_CLUSTER_NODES entry ':***@db2:7000' must be host:port, got 'db1:***@db2:7000'",
    ],
  ])("%s=%s is refused without its password", (name, raw, message) => {
    const err = configError({ [name]: raw });
    expect(err.problems).toEqual([message]);
    expect(err.message).not.toContain(PASSWORD);
  });

  it.each([
    ["ADMIN_TOKENS", "pa55-w0rd-secret-token"],
    ["ADMIN_TOKENS", "pa55-w0rd-secret-token=users:read|pa55-w0rd-secret-tok2"],
    ["ADMIN_TOKENS", "pa55-w0rd-secret-token=*,pa55-w0rd-secret-token=*"],
    ["ADMIN_TOKENS", "short=*,pa55 w0rd secret token=*"],
    ["ENRICH_CALLERS", "pa55-w0rd-secret-token"],
    ["ENRICH_CALLERS", "pa55-w0rd-secret-key!=dsp"],
    ["ENRICH_CALLERS", "abcdefghijklmnop1234=dsp:acme|pa55-w0rd-secret/key+2"],
    ["ENRICH_CALLERS", "abcdefghijklmnop1234=pa55-w0rd-secret/key+2:acme"],
    ["EVENT_TOKEN_SECRET", "pa55-w0rd-secret"],
  ])("%s=%s is refused without echoing a secret", (name, raw) => {
    const err = configError({ [name]: raw });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${name} `));
    expect(err.message).not.toContain(PASSWORD);
  });
});
