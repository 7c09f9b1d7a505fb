// Builds the service from a config: stores, catalog, cache, invalidation, handlers, routes.
// main.ts and the tests both start here.
import { fileURLToPath } from "node:url";
import { adminRoutes } from "./admin/admin-routes.ts";
import { afterMissedMessages, dropChanged, type InvalidationTargets } from "./cache-invalidation.ts";
import { CounterCache } from "./capping/counter-cache.ts";
import { CounterChanges, throttledWarning } from "./capping/counter-changes.ts";
import { type EventStats, eventRoutes } from "./capping/event-routes.ts";
import { ephemeralSecret, NoticeTokens } from "./capping/notice-token.ts";
import { type Config, redisTarget, usesRedis } from "./config.ts";
import { createEnrichHandler } from "./enrich/enrich-handler.ts";
import { authFailureLog } from "./http/admin-auth.ts";
import type { Route } from "./http/http-types.ts";
import { operatorRoutes } from "./http/operator-routes.ts";
import { buildRoutes } from "./http/routes.ts";
import type { HttpBackendInfo } from "./http/uws-server.ts";
import { readDealRules } from "./ingest/deal-rules-file.ts";
import { openFileInput } from "./ingest/open-input.ts";
import { SegmentData } from "./ingest/segment-data.ts";
import { readTaxonomy } from "./ingest/taxonomy-file.ts";
import type { Logger } from "./logger.ts";
import { createLookupHandler } from "./lookup/lookup-handler.ts";
import { Metrics } from "./metrics.ts";
import { createConsentDecoder } from "./privacy/consent-decoder.ts";
import { privacyPolicyFromConfig } from "./privacy/privacy-config.ts";
import {
  type InvalidationBus,
  LocalInvalidationBus,
  RedisInvalidationBus,
} from "./profiles/invalidation-bus.ts";
import { MemoryProfileStore } from "./profiles/memory-profile-store.ts";
import { ProfileCache } from "./profiles/profile-cache.ts";
import type { ProfileStore } from "./profiles/profile-store.ts";
import { isCommandTimeout, RedisProfileStore } from "./profiles/redis-profile-store.ts";
import { Admission } from "./reliability/admission.ts";
import { CircuitBreaker } from "./reliability/circuit-breaker.ts";
import { type CatalogStore, MemoryCatalogStore, RedisCatalogStore } from "./segments/catalog-store.ts";
import { LiveCatalog } from "./segments/live-catalog.ts";
import { WorkerMetrics } from "./worker-metrics.ts";

/** The demo dataset that makes every file in openrtb-samples/ match, for the embedded default. */
export const DEMO_DATA_PATH = fileURLToPath(new URL("../data/demo-memberships.ndjson", import.meta.url));
export const DEMO_TAXONOMY_PATH = fileURLToPath(new URL("../data/demo-taxonomy.csv", import.meta.url));
export const DEMO_DEALS_PATH = fileURLToPath(new URL("../data/demo-deals.ndjson", import.meta.url));

/**
 * How often a failing Cluster master's breaker lets a probe through, at most. A probe refreshes the slot
 * map: a connection, CLUSTER SLOTS and a loop over 16,384 slots, 1-16 ms of CPU (about 4 ms as a rule) in a
 * CPU profile of a failover. Five a second per client is a few per cent of a core, and only while a master
 * is failing.
 */
const NODE_PROBE_MS = 200;
/** Bulk work (loads, erasure, catalog) may take far longer than a bid-time read. */
const BULK_COMMAND_TIMEOUT_MS = 30_000;
/** At most one warning this often about counter changes that could not be announced (Redis away). */
const ANNOUNCE_WARNING_INTERVAL_MS = 10_000;

export interface Service {
  readonly routes: Route[];
  /** The store bid-time reads go to (short command timeout). */
  readonly store: ProfileStore;
  readonly cache: ProfileCache;
  readonly catalog: LiveCatalog;
  /** Data management (taxonomy, loads, opt-outs), on a connection with a bulk-sized timeout. */
  readonly data: SegmentData;
  /** Requests in flight, load shedding, and the draining flag graceful shutdown sets. */
  readonly admission: Admission;
  readonly breaker: CircuitBreaker;
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly backend: HttpBackendInfo;
  /** Clock in epoch milliseconds. */
  readonly now?: () => number;
  /** This instance's place among the worker threads of the process (worker-pool.ts); alone by default. */
  readonly worker?: { readonly index: number; readonly count: number };
  /**
   * The secret the process made when EVENT_TOKEN_SECRET is unset (main.ts), shared by its worker threads;
   * without either, this instance makes its own.
   */
  readonly noticeSecret?: string;
}

/** What a deployment mode provides: embedded (memory) or Redis. */
interface Backing {
  readonly store: ProfileStore;
  readonly bulkStore: ProfileStore;
  readonly catalogStore: CatalogStore;
  readonly bus: InvalidationBus;
  close(): Promise<void>;
}

export async function createService(config: Config, log: Logger, opts: ServiceOptions): Promise<Service> {
  const now = opts.now ?? Date.now;
  const backing = usesRedis(config) ? await redisBacked(config, log) : embedded();
  // One breaker for every bid-time read of the store: profiles and counters fail together. On a Cluster
  // each master has its own (node-gate.ts) and this one never opens: it would let one master's timeouts
  // degrade the answers every other master gives (measured in a failover: 219 of 800 answers for another
  // master's user, while its own breaker was closed).
  const cluster = config.redisClusterNodes.length > 0;
  const breaker = new CircuitBreaker({
    failures: config.breakerFailures,
    openMs: config.breakerOpenMs,
    now,
    ...(usesRedis(config)
      ? { costly: cluster ? () => false : isCommandTimeout, spanMs: config.redisCommandTimeoutMs }
      : {}),
  });
  const answerStats = { degraded: 0, capped: 0 };
  const ingestStats = { loaded: 0, rejected: 0 };
  const eventStats: EventStats = { counted: 0, duplicates: 0, ignored: 0, rejected: 0, refused: 0 };
  const withheldStats: Record<string, number> = {};
  let admission: Admission | null = null;
  let cache: ProfileCache | null = null;
  const metrics = new Metrics(
    {
      cache: () => {
        const c = cache as ProfileCache;
        return { ...c.stats, entries: c.size, bytes: c.bytes };
      },
      breaker: () => ({ state: breaker.state, ...breaker.stats }),
      events: () => eventStats,
      // Read only when scraped, after start-up has defined it.
      counters: () => counterFigures(),
      withheld: () => withheldStats,
      load: () => ({ inFlight: admission?.inFlight ?? 0, shed: admission?.shed ?? 0 }),
      answers: () => answerStats,
      ingest: () => ingestStats,
    },
    now,
  );
  const live = config.metricsEnabled ? metrics.live : null;
  const worker = opts.worker ?? { index: 0, count: 1 };
  const across = worker.count > 1 ? new WorkerMetrics(metrics.registry, worker) : null;
  cache = new ProfileCache(backing.store, {
    maxEntries: config.cacheMaxEntries,
    maxBytes: config.cacheMaxBytes,
    ttlMs: config.cacheTtlMs,
    negativeTtlMs: config.cacheNegativeTtlMs,
    now,
    breaker,
    ...(config.metricsEnabled ? { onStoreRead: (s: number, ok: boolean) => metrics.storeRead(s, ok) } : {}),
  });
  const counters = new CounterCache(backing.store, {
    breaker,
    ttlMs: config.capCountersCacheMs,
    maxEntries: Math.max(1_000, Math.floor(config.cacheMaxEntries / 4)),
    now,
  });
  const catalog = new LiveCatalog(backing.catalogStore, () => cache.clear());
  const reloadCatalog = (): void => {
    catalog.reload().catch((err) => log.error({ err: (err as Error).message }, "catalog reload failed"));
  };
  const targets: InvalidationTargets = { profiles: cache, counters, reloadCatalog };
  // A change made here drops this instance's entries at once, as one from elsewhere would.
  const invalidate = (keys: Iterable<string>): void => dropChanged(targets, { t: "keys", keys: [...keys] });
  const data = new SegmentData({
    store: backing.bulkStore,
    catalog,
    bus: backing.bus,
    cache: { invalidate },
    now,
    maxPersonIds: config.maxPersonIds,
    maxLineBytes: config.ingestMaxLineBytes,
  });

  await backing.bus.subscribe(
    (msg) => dropChanged(targets, msg),
    () => {
      log.info("invalidation subscriber back: counter cache emptied");
      afterMissedMessages(targets);
    },
  );
  // Impressions recorded here, announced to the other instances (and this process's other workers).
  const counterChanges = new CounterChanges(backing.bus, {
    onError: throttledWarning(
      (fields) =>
        log.warn(
          fields,
          "counter changes not announced: other instances see them within CAP_COUNTERS_CACHE_MS",
        ),
      ANNOUNCE_WARNING_INTERVAL_MS,
      now,
    ),
  });
  const counterFigures = () => ({
    entries: counters.size,
    ...counters.stats,
    announced: counterChanges.stats.published,
    announceFailed: counterChanges.stats.failed,
  });
  try {
    await catalog.reload();
  } catch (err) {
    log.error({ err: (err as Error).message }, "catalog not loaded at start-up; retrying in the background");
  }
  // A safety net for a missed invalidation message (e.g. while the subscriber reconnected).
  const timer = setInterval(reloadCatalog, config.catalogReloadMs);
  timer.unref();

  if (!usesRedis(config) && config.seedDemoData) await seedDemo(data, log);

  const tokens = new NoticeTokens(
    config.eventTokenSecret ?? opts.noticeSecret ?? ephemeralSecret(),
    config.noticeTokenTtlSec,
  );
  const consent = createConsentDecoder();
  const privacy = privacyPolicyFromConfig(config);
  const lookup = createLookupHandler({
    cache,
    callers: config.lookupCallers,
    counters,
    tokens,
    catalog,
    defaultExchange: config.defaultExchange,
    idsPerRequestLimit: config.idsPerRequestLimit,
    batchLimit: config.batchLimit,
    now,
    privacy,
    consent,
    withheldStats,
    budgetMs: config.lookupBudgetMs,
    tmaxMarginMs: config.tmaxMarginMs,
    observe: (hits, lookups, degraded, capped) => {
      if (degraded) answerStats.degraded++;
      answerStats.capped += capped;
      if (live !== null) {
        live.cache(hits, lookups);
        if (degraded) live.degraded();
      }
    },
  });
  const enrich = createEnrichHandler({
    cache,
    catalog,
    callers: config.enrichCallers,
    defaultExchange: config.defaultExchange,
    idsPerRequestLimit: config.idsPerRequestLimit,
    privacy,
    consent,
    now,
    budgetMs: config.lookupBudgetMs,
    tmaxMarginMs: config.tmaxMarginMs,
  });
  admission = new Admission(
    {
      maxInFlight: config.maxInFlight,
      maxStreamsInFlight: config.maxStreamsInFlight,
      shedStatus: config.shedStatus,
    },
    () => live?.shed(),
  );
  const allRoutes = [
    ...buildRoutes({
      lookup,
      store: backing.store,
      ready: async () => {
        const [bid, bulk] = await Promise.all([backing.store.ping(), backing.bulkStore.ping()]);
        return bid && bulk;
      },
      cache,
      backend: opts.backend,
      startedAtMs: now(),
      events: eventStats,
      withheld: withheldStats,
      counters: counterFigures,
      admission,
      breaker,
      worker,
    }),
    { method: "POST", path: "/v1/enrich", body: "buffered", handler: enrich } as Route,
    // An event batch is small: its streamed body gets its own limit, far below the admin uploads'.
    ...eventRoutes(
      {
        store: backing.bulkStore,
        catalog,
        counters,
        counterChanges,
        tokens,
        now,
        adminTokens: config.adminTokens,
        open: config.eventsOpen,
        authFailures: authFailureLog(log),
      },
      eventStats,
    ).map((r) => (r.body === "stream" ? { ...r, bodyLimitBytes: config.eventsBodyLimitBytes } : r)),
    ...adminRoutes({ data, tokens: config.adminTokens, log, ingest: ingestStats }),
    ...operatorRoutes({
      metrics,
      store: backing.store,
      breaker,
      scrape: across === null ? () => metrics.registry.metrics() : () => across.text(),
    }),
  ];
  // Health routes answer whatever the load: a load balancer must still see the instance.
  const exempt = new Set(["/healthz", "/readyz", "/metrics", "/status", "/status.json", "/openapi.json"]);
  const guarded = admission.guard(allRoutes, exempt);
  // Requests are counted and timed where they are answered, shed ones included.
  const routes = config.metricsEnabled ? metrics.instrument(guarded) : guarded;
  return {
    routes,
    admission,
    breaker,
    store: backing.store,
    cache,
    catalog,
    data,
    close: async () => {
      clearInterval(timer);
      across?.close();
      await counterChanges.close();
      await backing.bus.close();
      await backing.close();
    },
  };
}

function embedded(): Backing {
  const store = new MemoryProfileStore();
  return {
    store,
    bulkStore: store,
    catalogStore: new MemoryCatalogStore(),
    bus: new LocalInvalidationBus(),
    close: () => store.close(),
  };
}

async function redisBacked(config: Config, log: Logger): Promise<Backing> {
  const target = redisTarget(config);
  // The caches' breaker, per Cluster master (node-gate.ts), probing more often: a probe is what finds the
  // promoted replica, so the master's users wait up to one probe interval past the promotion.
  const nodeBreaker = {
    failures: config.breakerFailures,
    openMs: Math.min(config.breakerOpenMs, NODE_PROBE_MS),
    spanMs: config.redisCommandTimeoutMs,
  };
  const store = new RedisProfileStore({
    ...target,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    connectionName: "audience-bid",
    nodeBreaker,
    noDelayedRetries: true,
  });
  const bulkStore = new RedisProfileStore({
    ...target,
    commandTimeoutMs: BULK_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    connectionName: "audience-bulk",
    // Impressions to a failing master are refused at once (503, the caller retries), not sent and retried.
    nodeBreaker,
  });
  try {
    await Promise.all([store.connect(), bulkStore.connect()]);
    log.info({ store: store.kind }, "connected to Redis");
    const short = await bulkStore.replicaShortfall();
    if (short.length > 0)
      log.warn(
        { impressionReplicas: config.impressionReplicas, masters: short },
        "masters with fewer replicas than IMPRESSION_REPLICAS: impressions on them are refused (503) until replicas join",
      );
  } catch (err) {
    // Start anyway: /readyz reports not ready, lookups answer degraded, and ioredis keeps reconnecting.
    log.error(
      { err: (err as Error).message },
      "Redis not reachable at start-up; answering degraded until it is",
    );
  }
  return {
    store,
    bulkStore,
    catalogStore: new RedisCatalogStore(bulkStore.redis),
    bus: new RedisInvalidationBus(bulkStore.redis),
    close: async () => {
      await Promise.all([store.close(), bulkStore.close()]);
    },
  };
}

async function seedDemo(data: SegmentData, log: Logger): Promise<void> {
  const taxonomy = await readTaxonomy(openFileInput(DEMO_TAXONOMY_PATH).stream, "csv");
  if (taxonomy.errors.length > 0)
    throw new Error(`demo taxonomy is invalid: ${JSON.stringify(taxonomy.errors)}`);
  await data.putSegments(taxonomy.segments);
  const deals = await readDealRules(openFileInput(DEMO_DEALS_PATH).stream);
  if (deals.errors.length > 0)
    throw new Error(`demo deal rules are invalid: ${JSON.stringify(deals.errors)}`);
  await data.putDealRules(deals.rules);
  const summary = await data.loadMemberships(openFileInput(DEMO_DATA_PATH).stream, { format: "ndjson" });
  log.info(
    { store: "memory", segments: taxonomy.segments.length, demoRows: summary.loaded },
    "embedded store seeded with demo data",
  );
}
