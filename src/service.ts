// Builds the service from a config: store, cache, handlers, routes. main.ts and the tests both start here.
import { fileURLToPath } from "node:url";
import type { Config } from "./config.ts";
import type { Route } from "./http/http-types.ts";
import { buildRoutes } from "./http/routes.ts";
import type { HttpBackendInfo } from "./http/uws-server.ts";
import { loadMemberships } from "./ingest/load-memberships.ts";
import { openInput } from "./ingest/membership-rows.ts";
import type { Logger } from "./logger.ts";
import { createLookupHandler } from "./lookup/lookup-handler.ts";
import { MemoryProfileStore } from "./profiles/memory-profile-store.ts";
import { ProfileCache } from "./profiles/profile-cache.ts";
import type { ProfileStore } from "./profiles/profile-store.ts";
import { RedisProfileStore } from "./profiles/redis-profile-store.ts";

/** The demo dataset that makes every file in openrtb-samples/ match, for the embedded default. */
export const DEMO_DATA_PATH = fileURLToPath(new URL("../data/demo-memberships.ndjson", import.meta.url));

export interface Service {
  readonly routes: Route[];
  readonly store: ProfileStore;
  readonly cache: ProfileCache;
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly backend: HttpBackendInfo;
  /** Use this store instead of building one from the config (tests). */
  readonly store?: ProfileStore;
  /** Clock in epoch milliseconds. */
  readonly now?: () => number;
}

export async function createService(config: Config, log: Logger, opts: ServiceOptions): Promise<Service> {
  const now = opts.now ?? Date.now;
  const store = opts.store ?? (await openStore(config, log, now));
  const cache = new ProfileCache(store, {
    maxEntries: config.cacheMaxEntries,
    maxBytes: config.cacheMaxBytes,
    ttlMs: config.cacheTtlMs,
    negativeTtlMs: config.cacheNegativeTtlMs,
    now,
  });
  const lookup = createLookupHandler({
    cache,
    defaultExchange: config.defaultExchange,
    idsPerRequestLimit: config.idsPerRequestLimit,
    batchLimit: config.batchLimit,
    now,
  });
  const routes = buildRoutes({ lookup, store, cache, backend: opts.backend, startedAtMs: now() });
  return {
    routes,
    store,
    cache,
    close: () => store.close(),
  };
}

async function openStore(config: Config, log: Logger, now: () => number): Promise<ProfileStore> {
  if (config.redisUrl !== undefined) {
    const store = new RedisProfileStore({
      url: config.redisUrl,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      connectTimeoutMs: config.redisConnectTimeoutMs,
    });
    try {
      await store.connect();
      log.info({ store: "redis" }, "connected to Redis");
    } catch (err) {
      // Start anyway: /readyz reports not ready, lookups answer degraded, and ioredis keeps reconnecting.
      log.error(
        { err: (err as Error).message },
        "Redis not reachable at start-up; answering degraded until it is",
      );
    }
    return store;
  }
  const store = new MemoryProfileStore();
  if (config.seedDemoData) {
    const summary = await loadMemberships(store, openInput(DEMO_DATA_PATH), "ndjson", {
      nowSec: Math.floor(now() / 1000),
    });
    log.info(
      { store: "memory", demoRows: summary.loaded, ids: store.size },
      "embedded store seeded with demo data",
    );
  } else {
    log.info({ store: "memory" }, "embedded store, empty");
  }
  return store;
}
