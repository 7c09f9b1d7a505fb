// The per-request figures: buckets found by table equal those of a search, the status page's seconds, and the
// Prometheus series the scrape builds from them.
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { HttpAnswer, Route } from "../../src/http/http-types.ts";
import { BucketFinder, LiveFigures, type MetricSources, Metrics } from "../../src/metrics.ts";

/** The first bound >= value, by search: what the table must agree with. */
const search = (bounds: readonly number[], v: number) => {
  let b = 0;
  while (b < bounds.length && v > (bounds[b] as number)) b++;
  return b;
};

const SOURCES: MetricSources = {
  cache: () => ({ hits: 0, misses: 0, storeErrors: 0, deadlines: 0, evictions: 0, entries: 0, bytes: 0 }),
  breaker: () => ({ state: "closed", opened: 0, rejected: 0 }),
  counters: () => ({ entries: 0, hits: 0, reads: 0, clears: 0, announced: 0, announceFailed: 0 }),
  events: () => ({ counted: 0, duplicates: 0, ignored: 0, rejected: 0, refused: 0 }),
  withheld: () => ({}),
  load: () => ({ inFlight: 0, shed: 0 }),
  answers: () => ({ degraded: 0, capped: 0 }),
  ingest: () => ({ loaded: 0, rejected: 0 }),
};

describe("BucketFinder", () => {
  const latency = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5,
  ];
  const cases = [
    { name: "Prometheus latency buckets", bounds: latency, step: 0.00005, limit: 0.01, top: 4 },
    { name: "log-spaced status page bounds", bounds: LiveFigures.BOUNDS, step: 0.01, limit: 20, top: 6000 },
  ];
  for (const c of cases) {
    it(`agrees with a search: ${c.name}, on every bound, next to it and at random`, () => {
      const f = new BucketFinder(c.bounds, c.step, c.limit);
      const values = [0, -1, Number.NaN, c.limit, c.limit * 2, c.top * 10];
      for (const b of c.bounds)
        values.push(b, b * (1 - 1e-12), b * (1 + 1e-12), b - c.step / 2, b + c.step / 3);
      let seed = 7;
      for (let i = 0; i < 50_000; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const u = seed / 2 ** 31;
        // Half below the table's limit, where nearly all answers are; the rest up to past the last bound.
        values.push(i % 2 === 0 ? u * c.limit : u * c.top);
      }
      for (const v of values) expect(f.find(v), `value ${v}`).toBe(search(c.bounds, v));
    });
  }
});

describe("LiveFigures", () => {
  it("counts an answer's hits, degraded and shed in the second of its request, and its latency bucket", () => {
    let t = 1_000_000;
    const live = new LiveFigures(() => t);
    live.cache(2, 3);
    live.degraded();
    live.request(0.2);
    t += 1_000;
    live.shed();
    live.request(0.01);
    live.cache(1, 1);
    live.request(900);
    t += 1_000;
    const [first, second] = live.snapshot(2).seconds;
    expect(first).toMatchObject({ requests: 1, degraded: 1, shed: 0, hitRatio: 2 / 3 });
    expect(first?.p50).toBe(LiveFigures.BOUNDS[search(LiveFigures.BOUNDS, 0.2)]);
    expect(second).toMatchObject({ requests: 2, degraded: 0, shed: 1, hitRatio: 1 });
    expect(second?.p50).toBe(LiveFigures.BOUNDS[0]);
    // Slower than the last bound: counted in the last bucket.
    expect(second?.p99).toBe(LiveFigures.BOUNDS[search(LiveFigures.BOUNDS, 900)]);
    expect(live.total).toBe(3);
  });
});

describe("Metrics.instrument", () => {
  const answer = (status: number): HttpAnswer => ({ status, contentType: "text/plain", body: "" });
  const route = (handler: Route["handler"]): Route => ({
    method: "POST",
    path: "/r",
    body: "buffered",
    handler,
  });

  it("counts answers by status in the order first seen, thrown errors by their status, and every latency", async () => {
    const m = new Metrics(SOURCES);
    const statuses = [204, 200, 204, 503];
    let i = 0;
    const [r] = m.instrument([route(() => answer(statuses[i++] as number))]);
    for (let k = 0; k < statuses.length; k++) r?.handler({} as never);
    const [bad] = m.instrument([
      route(() => {
        throw Object.assign(new Error("bad"), { status: 400 });
      }),
    ]);
    expect(() => bad?.handler({} as never)).toThrow("bad");
    const [later] = m.instrument([route(() => Promise.resolve(answer(201)))]);
    await later?.handler({} as never);
    const text = await m.registry.metrics();
    const series = text.split("\n").filter((l) => l.startsWith("audience_http_requests_total{"));
    expect(series).toEqual([
      'audience_http_requests_total{route="/r",status="204"} 2',
      'audience_http_requests_total{route="/r",status="200"} 1',
      'audience_http_requests_total{route="/r",status="503"} 1',
      'audience_http_requests_total{route="/r",status="400"} 1',
      'audience_http_requests_total{route="/r",status="201"} 1',
    ]);
    expect(text).toContain('audience_http_request_duration_seconds_count{route="/r"} 6');
    expect(text).toContain('audience_http_request_duration_seconds_bucket{le="+Inf",route="/r"} 6');
    const buckets = text
      .split("\n")
      .filter((l) => l.startsWith("audience_http_request_duration_seconds_bucket"));
    expect(buckets).toHaveLength(20);
    expect(m.live.total).toBe(6);
  });
});

describe("Metrics.storeRead", () => {
  /** The lines of one metric in a registry's text. */
  const linesOf = async (registry: Registry, name: string) =>
    (await registry.metrics()).split("\n").filter((l) => l.includes(name));

  it("prints what a prom-client Histogram of the same observations prints", async () => {
    const m = new Metrics(SOURCES);
    const reference = new Registry();
    const h = new Histogram({
      name: "audience_store_read_duration_seconds",
      help: "Bid-time store round trips (profile and counter reads), by outcome.",
      labelNames: ["outcome"],
      buckets: [
        0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025,
        0.05, 0.1, 0.25, 0.5, 1, 2.5,
      ],
      registers: [reference],
    });
    const name = "audience_store_read_duration_seconds";
    expect(await linesOf(m.registry, name)).toEqual(await linesOf(reference, name));
    const reads: [number, boolean][] = [
      [0.0003, true],
      [0.00075, true],
      [0.03, false],
      [0.0011, true],
      [4, false],
      [0.00005, true],
    ];
    for (const [seconds, ok] of reads) {
      m.storeRead(seconds, ok);
      h.labels(ok ? "ok" : "error").observe(seconds);
    }
    const mine = await linesOf(m.registry, name);
    expect(mine).toEqual(await linesOf(reference, name));
    expect(mine).toContain('audience_store_read_duration_seconds_count{outcome="error"} 2');
  });
});
