// The route table: which path and method run which handler. Shared by both HTTP servers.
import type { ProfileCache } from "../profiles/profile-cache.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { Admission } from "../reliability/admission.ts";
import type { CircuitBreaker } from "../reliability/circuit-breaker.ts";
import { jsonAnswer, type Route, type RouteHandler } from "./http-types.ts";
import type { HttpBackendInfo } from "./uws-server.ts";

export interface RouteDeps {
  readonly lookup: RouteHandler;
  readonly store: ProfileStore;
  /**
   * True when every store connection answers: the bid path's and the one events and admin writes go
   * through. They reconnect on their own schedules, so one answering says nothing of the other.
   */
  readonly ready: () => Promise<boolean>;
  readonly cache: ProfileCache;
  readonly backend: HttpBackendInfo;
  readonly startedAtMs: number;
  /** Impression event counters (counted, duplicates, rejected, refused), until Prometheus metrics exist. */
  readonly events: object;
  /** Answers per withheld reason (coppa, gdpr_no_consent, ...), until Prometheus metrics exist. */
  readonly withheld: object;
  /** The counter cache's figures (entries, hits, reads, clears, announcements published and failed). */
  readonly counters: () => object;
  readonly admission: Admission;
  readonly breaker: CircuitBreaker;
  /** Which worker thread answers (WORKERS), of how many: each has its own cache and counts. */
  readonly worker: { readonly index: number; readonly count: number };
}

export function buildRoutes(deps: RouteDeps): Route[] {
  return [
    { method: "POST", path: "/v1/lookup", body: "buffered", handler: deps.lookup },
    {
      method: "GET",
      path: "/healthz",
      body: "none",
      handler: () =>
        jsonAnswer(200, {
          status: "ok",
          http: deps.backend,
          worker: deps.worker,
          store: deps.store.kind,
          cache: { entries: deps.cache.size, bytes: deps.cache.bytes, ...deps.cache.stats },
          counters: deps.counters(),
          events: deps.events,
          withheld: deps.withheld,
          breaker: { state: deps.breaker.state, ...deps.breaker.stats },
          load: {
            inFlight: deps.admission.inFlight,
            streamsInFlight: deps.admission.streamsInFlight,
            shed: deps.admission.shed,
            draining: deps.admission.draining,
          },
          uptimeS: Math.round((Date.now() - deps.startedAtMs) / 1000),
        }),
    },
    {
      method: "GET",
      path: "/readyz",
      body: "none",
      handler: async () => {
        // Draining first: a load balancer stops sending requests before the instance stops answering.
        if (deps.admission.draining)
          return jsonAnswer(503, { ready: false, draining: true, store: deps.store.kind });
        const ready = await deps.ready();
        return jsonAnswer(ready ? 200 : 503, { ready, store: deps.store.kind });
      },
    },
  ];
}
