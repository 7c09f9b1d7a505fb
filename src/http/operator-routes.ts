// What operators read: /metrics (Prometheus), /status (the live page) and its /status.json, /openapi.json.
import type { Metrics } from "../metrics.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { CircuitBreaker } from "../reliability/circuit-breaker.ts";
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML } from "../status/status-page.ts";
import { jsonAnswer, type Route } from "./http-types.ts";
import { OPENAPI } from "./openapi.ts";

export interface OperatorDeps {
  readonly metrics: Metrics;
  readonly store: ProfileStore;
  readonly breaker: CircuitBreaker;
  /** The Prometheus text: this instance's registry, or every worker's summed (worker-metrics.ts). */
  readonly scrape: () => Promise<string>;
}

const NO_STORE: readonly (readonly [string, string])[] = [["cache-control", "no-store"]];
/** JSON the page reads: never taken for another type (nosniff), so it cannot be rendered as HTML. */
const STATUS_JSON_HEADERS: readonly (readonly [string, string])[] = [
  ...NO_STORE,
  ["x-content-type-options", "nosniff"],
];
const OPENAPI_JSON = JSON.stringify(OPENAPI);

export function operatorRoutes({ metrics, store, breaker, scrape }: OperatorDeps): Route[] {
  return [
    {
      method: "GET",
      path: "/metrics",
      body: "none",
      handler: async () => ({
        status: 200,
        contentType: metrics.registry.contentType,
        body: await scrape(),
        headers: NO_STORE,
      }),
    },
    {
      method: "GET",
      path: "/status",
      body: "none",
      handler: () => ({
        status: 200,
        contentType: "text/html; charset=utf-8",
        body: STATUS_PAGE_HTML,
        headers: STATUS_PAGE_HEADERS,
      }),
    },
    {
      method: "GET",
      path: "/status.json",
      body: "none",
      handler: async () => ({
        ...jsonAnswer(200, {
          now: Date.now(),
          requests: metrics.live.total,
          live: metrics.live.snapshot(120),
          store: { kind: store.kind, ready: await store.ping() },
          breaker: { state: breaker.state, ...breaker.stats },
        }),
        headers: STATUS_JSON_HEADERS,
      }),
    },
    {
      method: "GET",
      path: "/openapi.json",
      body: "none",
      handler: () => ({ status: 200, contentType: "application/json", body: OPENAPI_JSON }),
    },
  ];
}
