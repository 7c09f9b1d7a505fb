// Prometheus metrics (prom-client) and the live figures of the status page. Per request only two things are
// recorded: the route's counter and latency (children bound once per route and status, no label lookup per
// request) and the status page's current second. Everything else (cache, breaker, events, withheld, shed)
// is read from the counters the service keeps anyway, when Prometheus scrapes.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { HttpAnswer, HttpRequestData, Route } from "./http/http-types.ts";

/** Seconds; fine below 5 ms, where a bid-time answer should be. */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
  0.25, 0.5, 1, 2.5,
];

/** What the scrape reads from the rest of the service. */
export interface MetricSources {
  readonly cache: () => {
    hits: number;
    misses: number;
    storeErrors: number;
    deadlines: number;
    evictions: number;
    entries: number;
    bytes: number;
  };
  readonly breaker: () => { state: string; opened: number; rejected: number };
  readonly events: () => { counted: number; duplicates: number; rejected: number; refused: number };
  readonly withheld: () => Readonly<Record<string, number>>;
  readonly load: () => { inFlight: number; shed: number };
  readonly answers: () => { degraded: number; capped: number };
  readonly ingest: () => { loaded: number; rejected: number };
}

/** The last minutes, second by second, for /status: requests, latency histogram, degraded, shed. */
export class LiveFigures {
  static readonly SECONDS = 300;
  /** Bucket upper bounds in ms: log-spaced from 0.05 ms to 5 s. */
  static readonly BOUNDS = Array.from({ length: 40 }, (_, i) => 0.05 * 1.35 ** i);
  readonly #requests = new Uint32Array(LiveFigures.SECONDS);
  readonly #degraded = new Uint32Array(LiveFigures.SECONDS);
  readonly #shed = new Uint32Array(LiveFigures.SECONDS);
  readonly #hits = new Uint32Array(LiveFigures.SECONDS);
  readonly #lookups = new Uint32Array(LiveFigures.SECONDS);
  readonly #latency = new Uint32Array(LiveFigures.SECONDS * LiveFigures.BOUNDS.length);
  readonly #stamp = new Float64Array(LiveFigures.SECONDS);
  /** Requests answered since start-up. */
  total = 0;

  constructor(readonly now: () => number = Date.now) {}

  #slot(): number {
    const sec = Math.floor(this.now() / 1000);
    const i = sec % LiveFigures.SECONDS;
    if (this.#stamp[i] !== sec) {
      this.#stamp[i] = sec;
      this.#requests[i] = 0;
      this.#degraded[i] = 0;
      this.#shed[i] = 0;
      this.#hits[i] = 0;
      this.#lookups[i] = 0;
      this.#latency.fill(0, i * LiveFigures.BOUNDS.length, (i + 1) * LiveFigures.BOUNDS.length);
    }
    return i;
  }

  request(ms: number): void {
    this.total++;
    const i = this.#slot();
    this.#requests[i] = (this.#requests[i] as number) + 1;
    let b = 0;
    const bounds = LiveFigures.BOUNDS;
    while (b < bounds.length - 1 && ms > (bounds[b] as number)) b++;
    const k = i * bounds.length + b;
    this.#latency[k] = (this.#latency[k] as number) + 1;
  }

  degraded(): void {
    const i = this.#slot();
    this.#degraded[i] = (this.#degraded[i] as number) + 1;
  }

  shed(): void {
    const i = this.#slot();
    this.#shed[i] = (this.#shed[i] as number) + 1;
  }

  cache(hits: number, lookups: number): void {
    const i = this.#slot();
    this.#hits[i] = (this.#hits[i] as number) + hits;
    this.#lookups[i] = (this.#lookups[i] as number) + lookups;
  }

  /** The last `seconds` full seconds (oldest first), and p50/p99 over the last 10 of them. */
  snapshot(seconds = 120): {
    seconds: {
      t: number;
      requests: number;
      degraded: number;
      shed: number;
      hitRatio: number | null;
      p50: number | null;
      p99: number | null;
    }[];
  } {
    const nowSec = Math.floor(this.now() / 1000);
    const out = [];
    for (let s = nowSec - seconds; s < nowSec; s++) {
      const i = s % LiveFigures.SECONDS;
      const live = this.#stamp[i] === s;
      const n = live ? (this.#requests[i] as number) : 0;
      const lookups = live ? (this.#lookups[i] as number) : 0;
      out.push({
        t: s,
        requests: n,
        degraded: live ? (this.#degraded[i] as number) : 0,
        shed: live ? (this.#shed[i] as number) : 0,
        hitRatio: lookups > 0 ? (this.#hits[i] as number) / lookups : null,
        p50: live ? this.#quantile([i], 0.5) : null,
        p99: live ? this.#quantile([i], 0.99) : null,
      });
    }
    return { seconds: out };
  }

  #quantile(slots: number[], q: number): number | null {
    const nb = LiveFigures.BOUNDS.length;
    let total = 0;
    for (const i of slots) for (let b = 0; b < nb; b++) total += this.#latency[i * nb + b] as number;
    if (total === 0) return null;
    const rank = Math.ceil(total * q);
    let seen = 0;
    for (let b = 0; b < nb; b++) {
      for (const i of slots) seen += this.#latency[i * nb + b] as number;
      if (seen >= rank) return LiveFigures.BOUNDS[b] as number;
    }
    return LiveFigures.BOUNDS[nb - 1] as number;
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly live: LiveFigures;
  readonly #requests: Counter<"route" | "status">;
  readonly #duration: Histogram<"route">;
  readonly #storeRead: Histogram<"outcome">;
  /** route + status -> bound counter child; route -> bound histogram child. */
  readonly #requestChildren = new Map<string, { inc: () => void }>();
  readonly #durationChildren = new Map<string, { observe: (v: number) => void }>();

  constructor(sources: MetricSources, now: () => number = Date.now) {
    this.live = new LiveFigures(now);
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: "audience_" });
    this.#requests = new Counter({
      name: "audience_http_requests_total",
      help: "HTTP requests answered, by route and status.",
      labelNames: ["route", "status"],
      registers: [r],
    });
    this.#duration = new Histogram({
      name: "audience_http_request_duration_seconds",
      help: "Time from the request's body read to its answer, by route.",
      labelNames: ["route"],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.#storeRead = new Histogram({
      name: "audience_store_read_duration_seconds",
      help: "Bid-time store round trips (profile and counter reads), by outcome.",
      labelNames: ["outcome"],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    };
    const counterFrom = (name: string, help: string, read: () => number): void => {
      // Lifetime counts the service keeps anyway, exposed as counters at scrape time.
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    counterFrom(
      "audience_cache_hits_total",
      "Profile cache hits (per typed ID looked up).",
      () => sources.cache().hits,
    );
    counterFrom(
      "audience_cache_misses_total",
      "Profile cache misses (per typed ID looked up).",
      () => sources.cache().misses,
    );
    counterFrom(
      "audience_cache_evictions_total",
      "Profiles evicted from the LRU to stay within its bounds.",
      () => sources.cache().evictions,
    );
    gauge("audience_cache_entries", "Entries in the profile cache.", () => sources.cache().entries);
    gauge("audience_cache_bytes", "Estimated bytes held by the profile cache.", () => sources.cache().bytes);
    counterFrom(
      "audience_store_errors_total",
      "Bid-time store reads that failed (errors and command timeouts).",
      () => sources.cache().storeErrors,
    );
    counterFrom(
      "audience_store_deadline_misses_total",
      "Bid-time answers given at their deadline, before the store answered.",
      () => sources.cache().deadlines,
    );
    gauge("audience_breaker_open", "1 while the store circuit breaker is open or probing.", () =>
      sources.breaker().state === "closed" ? 0 : 1,
    );
    counterFrom(
      "audience_breaker_opened_total",
      "Times the store circuit breaker opened.",
      () => sources.breaker().opened,
    );
    counterFrom(
      "audience_breaker_rejected_total",
      "Store reads not attempted because the breaker was open.",
      () => sources.breaker().rejected,
    );
    counterFrom(
      "audience_degraded_answers_total",
      "Bid-time answers marked degraded.",
      () => sources.answers().degraded,
    );
    counterFrom(
      "audience_capped_campaigns_total",
      "Campaigns reported capped in bid-time answers.",
      () => sources.answers().capped,
    );
    counterFrom(
      "audience_shed_requests_total",
      "Requests shed past MAX_IN_FLIGHT.",
      () => sources.load().shed,
    );
    gauge("audience_requests_in_flight", "Requests being worked on.", () => sources.load().inFlight);
    new Counter({
      name: "audience_withheld_total",
      help: "Bid-time answers with data withheld, by reason code.",
      labelNames: ["reason"],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(sources.withheld())) this.labels(reason).inc(n);
      },
    });
    new Counter({
      name: "audience_impression_events_total",
      help: "Impression events by outcome: counted, duplicate (dropped), rejected (bad), refused (store away).",
      labelNames: ["outcome"],
      registers: [r],
      collect() {
        this.reset();
        const e = sources.events();
        this.labels("counted").inc(e.counted);
        this.labels("duplicate").inc(e.duplicates);
        this.labels("rejected").inc(e.rejected);
        this.labels("refused").inc(e.refused);
      },
    });
    new Counter({
      name: "audience_ingest_rows_total",
      help: "Membership rows loaded through this instance's admin API, by outcome.",
      labelNames: ["outcome"],
      registers: [r],
      collect() {
        this.reset();
        const i = sources.ingest();
        this.labels("loaded").inc(i.loaded);
        this.labels("rejected").inc(i.rejected);
      },
    });
  }

  /** A store round trip of the bid path. */
  storeRead(seconds: number, ok: boolean): void {
    this.#storeRead.labels(ok ? "ok" : "error").observe(seconds);
  }

  /** Wraps each route's handler to count and time it. */
  instrument(routes: readonly Route[]): Route[] {
    return routes.map((r) => {
      const inner = r.handler;
      const route = r.path;
      const duration = this.#durationChildren.get(route) ?? this.#duration.labels(route);
      this.#durationChildren.set(route, duration);
      const done = (t0: number, status: number): void => {
        const ms = performance.now() - t0;
        duration.observe(ms / 1000);
        this.#counter(route, status).inc();
        this.live.request(ms);
      };
      const handler = (req: HttpRequestData): HttpAnswer | Promise<HttpAnswer> => {
        const t0 = performance.now();
        let answer: HttpAnswer | Promise<HttpAnswer>;
        try {
          answer = inner(req);
        } catch (err) {
          done(t0, statusOf(err));
          throw err;
        }
        if (!(answer instanceof Promise)) {
          done(t0, answer.status);
          return answer;
        }
        return answer.then(
          (a) => {
            done(t0, a.status);
            return a;
          },
          (err) => {
            done(t0, statusOf(err));
            throw err;
          },
        );
      };
      return { ...r, handler };
    });
  }

  #counter(route: string, status: number): { inc: () => void } {
    const key = `${route} ${status}`;
    let c = this.#requestChildren.get(key);
    if (c === undefined) {
      c = this.#requests.labels(route, String(status));
      this.#requestChildren.set(key, c);
    }
    return c;
  }
}

function statusOf(err: unknown): number {
  const s = (err as { status?: unknown }).status;
  return typeof s === "number" ? s : 500;
}
