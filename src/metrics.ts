// Prometheus metrics (prom-client) and the live figures of the status page. Per request only two things are
// recorded, into typed arrays that the scrape reads: the route's answers by status and latency, and the
// status page's current second. Histogram buckets are found by a table lookup, and a request reads the clock
// twice (its start and end) and the wall clock once. Everything else (cache, breaker, events, withheld, shed)
// is read from the counters the service keeps anyway, when Prometheus scrapes.
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { HttpAnswer, HttpRequestData, Route, RouteHandler } from "./http/http-types.ts";

/** Seconds; fine below 5 ms, where a bid-time answer should be. */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
  0.25, 0.5, 1, 2.5,
];

/**
 * Finds the first bound >= value among ascending `bounds` (bounds.length when above them all) without a search:
 * `table[floor(value / step)]` is the first bound >= the start of the step before value's (a step early, so
 * that rounding in value / step never skips a bound), and the comparisons after it step over the bounds
 * inside those two steps (none or one for these bounds). Values past the table are searched.
 */
export class BucketFinder {
  readonly #table: Uint8Array;
  constructor(
    readonly bounds: readonly number[],
    readonly step: number,
    readonly limit: number,
  ) {
    this.#table = new Uint8Array(Math.floor(limit / step) + 1);
    for (let i = 0, b = 0; i < this.#table.length; i++) {
      while (b < bounds.length && (bounds[b] as number) < (i - 1) * step) b++;
      this.#table[i] = b;
    }
  }

  find(value: number): number {
    const bounds = this.bounds;
    let b = value >= 0 && value < this.limit ? (this.#table[Math.floor(value / this.step)] as number) : 0;
    while (b < bounds.length && value > (bounds[b] as number)) b++;
    return b;
  }
}

/** The Prometheus latency buckets, in seconds, by steps of 50 µs up to 10 ms (where bid-time answers are). */
const LATENCY_FINDER = new BucketFinder(LATENCY_BUCKETS, 0.00005, 0.01);

/** What the scrape reads from the rest of the service. */
/** The counter cache's figures in /healthz and /metrics: its entries, hits, store reads, clears, and the
 * counter changes announced to other instances (and those that could not be). */
export interface CounterFigures {
  entries: number;
  hits: number;
  reads: number;
  clears: number;
  announced: number;
  announceFailed: number;
}

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
  readonly counters: () => CounterFigures;
  readonly events: () => {
    counted: number;
    duplicates: number;
    ignored: number;
    rejected: number;
    refused: number;
  };
  readonly withheld: () => Readonly<Record<string, number>>;
  readonly load: () => { inFlight: number; shed: number };
  readonly answers: () => { degraded: number; capped: number };
  readonly ingest: () => { loaded: number; rejected: number };
}

/** Bucket upper bounds in ms of the live figures: log-spaced from 0.05 ms to 5 s. */
const LIVE_BOUNDS = Array.from({ length: 40 }, (_, i) => 0.05 * 1.35 ** i);

/** The last minutes, second by second, for /status: requests, latency histogram, degraded, shed. */
export class LiveFigures {
  static readonly SECONDS = 300;
  static readonly BOUNDS = LIVE_BOUNDS;
  /**
   * Log-spaced bounds: found by steps of 10 µs up to 20 ms, instead of a logarithm per request. Built from the
   * module's constant, not LiveFigures.BOUNDS: the compiled class cannot name itself in a static initializer.
   */
  static readonly FINDER = new BucketFinder(LIVE_BOUNDS, 0.01, 20);
  readonly #requests = new Uint32Array(LiveFigures.SECONDS);
  readonly #degraded = new Uint32Array(LiveFigures.SECONDS);
  readonly #shed = new Uint32Array(LiveFigures.SECONDS);
  readonly #hits = new Uint32Array(LiveFigures.SECONDS);
  readonly #lookups = new Uint32Array(LiveFigures.SECONDS);
  readonly #latency = new Uint32Array(LiveFigures.SECONDS * LiveFigures.BOUNDS.length);
  readonly #stamp = new Float64Array(LiveFigures.SECONDS);
  /** Requests answered since start-up. */
  total = 0;
  // What the answer being given has reported (cache hits, degraded, shed): added to the second of its
  // request(), which every answer ends with in the same tick, so that an answer reads the wall clock once.
  #pendingHits = 0;
  #pendingLookups = 0;
  #pendingDegraded = 0;
  #pendingShed = 0;

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
    if (this.#pendingLookups !== 0 || this.#pendingDegraded !== 0 || this.#pendingShed !== 0) this.#flush(i);
    const nb = LiveFigures.BOUNDS.length;
    // Anything slower than the last bound counts in the last bucket.
    const b = Math.min(nb - 1, LiveFigures.FINDER.find(ms));
    const k = i * nb + b;
    this.#latency[k] = (this.#latency[k] as number) + 1;
  }

  /** A degraded answer; counted in the second of the request() that follows. */
  degraded(): void {
    this.#pendingDegraded++;
  }

  /** A shed request; counted in the second of the request() that follows (its answer's). */
  shed(): void {
    this.#pendingShed++;
  }

  /** An answer's cache hits and IDs looked up; counted in the second of the request() that follows. */
  cache(hits: number, lookups: number): void {
    this.#pendingHits += hits;
    this.#pendingLookups += lookups;
  }

  #flush(i: number): void {
    this.#degraded[i] = (this.#degraded[i] as number) + this.#pendingDegraded;
    this.#shed[i] = (this.#shed[i] as number) + this.#pendingShed;
    this.#hits[i] = (this.#hits[i] as number) + this.#pendingHits;
    this.#lookups[i] = (this.#lookups[i] as number) + this.#pendingLookups;
    this.#pendingHits = 0;
    this.#pendingLookups = 0;
    this.#pendingDegraded = 0;
    this.#pendingShed = 0;
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
  /** Store round trips by outcome, in the order first seen (as prom-client lists a histogram's label sets). */
  readonly #storeReads = new Map<"ok" | "error", LatencyFigures>();
  /** Per route: answers by status and the latency histogram, in plain arrays read at scrape time. */
  readonly #routes = new Map<string, RouteFigures>();

  constructor(sources: MetricSources, now: () => number = Date.now) {
    this.live = new LiveFigures(now);
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: "audience_" });
    // The per-request figures are plain counters bumped on the hot path (prom-client's labelled series hash
    // their labels on every call); these two collectors turn them into Prometheus series when scraped.
    const routes = this.#routes;
    r.registerMetric(
      collector(
        "audience_http_requests_total",
        "HTTP requests answered, by route and status.",
        "counter",
        () =>
          [...routes].flatMap(([route, f]) =>
            f.statuses.map(([status, n]) => ({ labels: { route, status: String(status) }, value: n })),
          ),
      ),
    );
    r.registerMetric(
      collector(
        "audience_http_request_duration_seconds",
        "Time from the request's body read to its answer, by route.",
        "histogram",
        () =>
          [...routes].flatMap(([route, f]) =>
            f.latency.series("audience_http_request_duration_seconds", { route }),
          ),
      ),
    );
    // Once per store round trip (every lookup of a cache miss): the same plain arrays, read when scraped.
    const storeReads = this.#storeReads;
    r.registerMetric(
      collector(
        "audience_store_read_duration_seconds",
        "Bid-time store round trips (profile and counter reads), by outcome.",
        "histogram",
        () =>
          [...storeReads].flatMap(([outcome, f]) =>
            f.series("audience_store_read_duration_seconds", { outcome }),
          ),
      ),
    );
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
      "audience_counter_cache_hits_total",
      "Bid-time impression counter reads answered from the counter cache.",
      () => sources.counters().hits,
    );
    counterFrom(
      "audience_counter_reads_total",
      "Impression counter reads sent to the store (counter cache misses).",
      () => sources.counters().reads,
    );
    gauge(
      "audience_counter_cache_entries",
      "Entries in the counter cache.",
      () => sources.counters().entries,
    );
    counterFrom(
      "audience_counter_cache_clears_total",
      "Times the counter cache was emptied because invalidation messages may have been missed.",
      () => sources.counters().clears,
    );
    counterFrom(
      "audience_counter_announcements_failed_total",
      "Messages naming changed impression counters that could not be published.",
      () => sources.counters().announceFailed,
    );
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
      help: "Impression events by outcome: counted, duplicate (dropped), ignored (no cap rule, opted out, counters full), rejected (bad or refused token), refused (store away).",
      labelNames: ["outcome"],
      registers: [r],
      collect() {
        this.reset();
        const e = sources.events();
        this.labels("counted").inc(e.counted);
        this.labels("duplicate").inc(e.duplicates);
        this.labels("ignored").inc(e.ignored);
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
    const outcome = ok ? "ok" : "error";
    let f = this.#storeReads.get(outcome);
    if (f === undefined) {
      f = new LatencyFigures();
      this.#storeReads.set(outcome, f);
    }
    f.record(seconds);
  }

  /** Wraps each route's handler to count and time it. */
  instrument(routes: readonly Route[]): Route[] {
    return routes.map((r) => {
      const inner = r.handler;
      let figures = this.#routes.get(r.path);
      if (figures === undefined) {
        figures = new RouteFigures();
        this.#routes.set(r.path, figures);
      }
      const f = figures;
      const live = this.live;
      const settle = (t0: number, status: number): void => {
        const ms = performance.now() - t0;
        f.record(ms / 1000, status);
        live.request(ms);
      };
      // The status a request ended with (a thrown error's own, else 500), told once whether it answered at once
      // or later, with no closure made per request when the answer is known at once.
      const timed =
        (h: RouteHandler) =>
        (req: HttpRequestData): HttpAnswer | Promise<HttpAnswer> => {
          const t0 = performance.now();
          let answer: HttpAnswer | Promise<HttpAnswer>;
          try {
            answer = h(req);
          } catch (err) {
            settle(t0, statusOf(err));
            throw err;
          }
          if (!(answer instanceof Promise)) {
            settle(t0, answer.status);
            return answer;
          }
          return answer.then(
            (a) => {
              settle(t0, a.status);
              return a;
            },
            (err) => {
              settle(t0, statusOf(err));
              throw err;
            },
          );
        };
      // Shed requests are answered by the server without the handler: they are counted through their own.
      const admission =
        r.admission === undefined ? {} : { admission: { ...r.admission, shed: timed(r.admission.shed) } };
      return { ...r, handler: timed(inner), ...admission };
    });
  }
}

function statusOf(err: unknown): number {
  const s = (err as { status?: unknown }).status;
  return typeof s === "number" ? s : 500;
}

/** A latency histogram over LATENCY_BUCKETS, per bucket (not cumulative) until scraped. */
class LatencyFigures {
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  sum = 0;
  count = 0;

  record(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const b = LATENCY_FINDER.find(seconds);
    if (b < LATENCY_BUCKETS.length) this.buckets[b] = (this.buckets[b] as number) + 1;
  }

  /** The Prometheus series of a histogram `name` with `labels`, laid out as prom-client's Histogram does. */
  series(name: string, labels: Record<string, string>): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
      cumulative += this.buckets[b] as number;
      out.push({
        metricName: `${name}_bucket`,
        labels: { le: LATENCY_BUCKETS[b] as number, ...labels },
        value: cumulative,
      });
    }
    out.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", ...labels }, value: this.count });
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
    return out;
  }
}

/** One route's answers by status and its latency histogram. */
class RouteFigures {
  /** Answers per HTTP status (100 to 599), and the statuses in the order first seen (the series' order). */
  readonly #byStatus = new Float64Array(600);
  readonly #seen: number[] = [];
  readonly latency = new LatencyFigures();

  /** [status, answers] in the order first seen. */
  get statuses(): [number, number][] {
    return this.#seen.map((s) => [s, this.#byStatus[s] as number]);
  }

  record(seconds: number, status: number): void {
    // A status outside 100-599 is none a handler gives; it is counted as a 500 rather than lost.
    const s = status >= 100 && status < 600 ? status : 500;
    if (this.#byStatus[s] === 0) this.#seen.push(s);
    this.#byStatus[s] = (this.#byStatus[s] as number) + 1;
    this.latency.record(seconds);
  }
}

interface MetricValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

/** A metric whose series are computed when scraped, in the shape prom-client's registry formats. */
function collector(name: string, help: string, type: "counter" | "histogram", values: () => MetricValue[]) {
  const get = async () => ({ name, help, type, aggregator: "sum" as const, values: values() });
  return { name, help, type, aggregator: "sum", get, reset: () => {} } as unknown as Counter;
}
