// The bench's verdicts (loadtest/report.ts): too many degraded answers fail a scenario, and every target of the
// bid-path speed work is printed with the median of its per-round ratios and a verdict, and each size target of
// the stored format with its measured mean.
import { describe, expect, it } from "vitest";
import type { LoadResult } from "../../loadtest/cannon.ts";
import { type IngestFigures, ingestLines } from "../../loadtest/ingest-bench.ts";
import {
  clean,
  type FixedRate,
  median,
  ratioLines,
  roundRatios,
  type ScenarioKey,
  type ScenarioRow,
  TARGETS,
  targetLines,
  textTable,
  tooDegraded,
} from "../../loadtest/report.ts";
import { type SizingClass, sizingLines, sizingTargetLines } from "../../loadtest/sizing.ts";

function load(rps: number): LoadResult {
  return {
    rps,
    responses: rps * 10,
    p50: 1,
    p975: 2,
    p99: 3,
    non2xx: 0,
    statuses: new Map([[200, rps * 10]]),
    errors: 0,
    timeouts: 0,
    seconds: 10,
    prebuilt: true,
  };
}

/** A clean scenario row with the given per-round req/s and server µs/request. */
function row(
  key: ScenarioKey,
  rounds: { rps: number[]; cpuUs: number[] },
  extra: Partial<Pick<ScenarioRow, "degraded" | "fixedRate">> = {},
): ScenarioRow {
  return {
    key,
    label: `scenario ${key}`,
    load: load(median(rounds.rps) as number),
    roundRps: rounds.rps,
    hitRatio: null,
    storeErrors: 0,
    cpu: { server: 50, client: 50, redis: null, machine: 100 },
    verified: "60/60",
    roundCpuUs: rounds.cpuUs,
    degraded: key === "a" ? null : { answers: 100_000, degraded: 0 },
    fixedRate: null,
    ...extra,
  };
}

const fixed = (p99: number[], rps = 16_000): FixedRate => ({
  targetRps: 16_000,
  roundRps: p99.map(() => rps),
  roundP99: p99,
  evenPace: true,
});

/** The line of the target about `about`. */
const lineOf = (lines: readonly string[], about: string): string => {
  const l = lines.find((x) => x.startsWith(`${about}:`));
  if (l === undefined) throw new Error(`no line for ${about}`);
  return l;
};

describe("degraded answers", () => {
  it("a scenario with more than 0.1% degraded answers is not clean, and its row and a line say so", () => {
    const ok = row("c", { rps: [10], cpuUs: [40] }, { degraded: { answers: 100_000, degraded: 100 } });
    const bad = row("c", { rps: [10], cpuUs: [40] }, { degraded: { answers: 100_000, degraded: 101 } });
    expect(tooDegraded(ok)).toBe(false);
    expect(clean(ok)).toBe(true);
    expect(tooDegraded(bad)).toBe(true);
    expect(clean(bad)).toBe(false);
    expect(textTable([bad])).toContain("101 (0.10%) !!");
    expect(ratioLines([bad])).toContain(
      "(c) FAILED: 0.10% of its answers degraded, more than 0.1% against a healthy Redis",
    );
    expect(ratioLines([ok]).some((l) => l.includes("FAILED"))).toBe(false);
  });

  it("scenarios without answers that can be degraded (bare, events) are not held to it", () => {
    const bare = row("a", { rps: [10], cpuUs: [20] });
    expect(bare.degraded).toBeNull();
    expect(tooDegraded(bare)).toBe(false);
    expect(clean(bare)).toBe(true);
    expect(textTable([bare])).toMatch(/\bn\/a\b/);
  });
});

describe("per-round ratios", () => {
  it("pairs round i with round i and takes the median, not the ratio of the totals", () => {
    // Round 2 is a slow round for both: the ratio of sums would be pulled towards it, the median is not.
    expect(roundRatios([30, 60, 30], [20, 20, 20])).toEqual([1.5, 3, 1.5]);
    expect(median(roundRatios([30, 60, 30], [20, 20, 20]))).toBe(1.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    // A round whose CPU time could not be read, or a scenario that ran fewer rounds, drops out.
    expect(roundRatios([30, null, 30], [20, 20])).toEqual([1.5]);
  });
});

describe("the targets", () => {
  const healthy = [
    row("a", { rps: [40_000, 30_000, 40_000], cpuUs: [20, 30, 20] }),
    row("b", { rps: [36_000, 20_000, 36_000], cpuUs: [24, 60, 24] }, { fixedRate: fixed([1.5, 1.9, 2.5]) }),
    row("c", { rps: [26_000, 26_000, 26_000], cpuUs: [36, 36, 36] }, { fixedRate: fixed([4.5, 5, 3]) }),
    row("d", { rps: [15_000, 15_000, 15_000], cpuUs: [60, 60, 60] }),
    row("e", { rps: [30_000, 30_000, 30_000], cpuUs: [26, 26, 26] }),
    row("h", { rps: [36_000, 36_000, 36_000], cpuUs: [25, 25, 25] }),
    row("i", { rps: [20_000, 20_000, 20_000], cpuUs: [40, 40, 40] }),
    row("j", { rps: [36_000, 36_000, 36_000], cpuUs: [23.5, 23.5, 23.5] }),
  ];
  const lines = targetLines(healthy);

  it("prints one line per target of the issue's table, each with its target and verdict", () => {
    expect(lines).toHaveLength(TARGETS.length);
    for (const about of [
      "cache-hit lookup, server CPU/request vs bare",
      "Redis-read lookup, server CPU/request vs bare",
      "5 capped candidate campaigns vs the same lookup without caps, CPU/request",
      "metrics on vs off (METRICS_ENABLED=false), CPU/request",
      "TCF-consented request (regs.gdpr=1, a TC string) vs the same without, CPU/request",
      "enrich with 1,000 deal rules vs lookup, CPU/request",
      "throughput flat out: cache hits vs bare",
      "throughput flat out: Redis reads vs bare",
      "throughput flat out: cache hits on uWS vs on node:http",
      "p99 at 80% of the max rate, fixed-rate run: cache hits",
      "p99 at 80% of the max rate, fixed-rate run: Redis reads",
    ]) {
      expect(lineOf(lines, about)).toMatch(/target (<=|>=) .*: (met|MISSED|n\/a)/);
    }
  });

  it("judges CPU ratios against their limits, the stretch one included", () => {
    // b/a per round: 1.2, 2.0, 1.2: median 1.2 <= 1.25, stretch 1.0 missed.
    expect(lineOf(lines, "cache-hit lookup, server CPU/request vs bare")).toBe(
      "cache-hit lookup, server CPU/request vs bare: (b)/(a) server CPU/request = 1.20x (median of 3 rounds, 1.20x to 2.00x), target <= 1.25x (stretch <= 1.00x): met",
    );
    // c/a: 1.8, 1.2, 1.8: median 1.8 > 1.6.
    expect(lineOf(lines, "Redis-read lookup, server CPU/request vs bare")).toMatch(/= 1\.80x .*: MISSED$/);
    // e/b: 26/24, 26/60, 26/24: median +8.3% <= +10%.
    expect(
      lineOf(lines, "5 capped candidate campaigns vs the same lookup without caps, CPU/request"),
    ).toMatch(/= \+8\.3% .*target <= \+10\.0%: met$/);
    // b/j: 24/23.5 = +2.1% <= +3%.
    expect(lineOf(lines, "metrics on vs off (METRICS_ENABLED=false), CPU/request")).toMatch(
      /= \+2\.1% .*: met$/,
    );
    // h/b: 25/24 = +4.2% <= +5%.
    expect(
      lineOf(lines, "TCF-consented request (regs.gdpr=1, a TC string) vs the same without, CPU/request"),
    ).toMatch(/= \+4\.2% .*: met$/);
    // i/b: 40/24 = 1.67x > 1.6x.
    expect(lineOf(lines, "enrich with 1,000 deal rules vs lookup, CPU/request")).toMatch(
      /= 1\.67x .*: MISSED$/,
    );
  });

  it("a CPU ratio at or under the stretch limit says so", () => {
    const cheap = targetLines([row("a", { rps: [1], cpuUs: [20] }), row("b", { rps: [1], cpuUs: [19] })]);
    expect(lineOf(cheap, "cache-hit lookup, server CPU/request vs bare")).toMatch(
      /= 0\.95x \(1 round\), .*: met, stretch met too$/,
    );
  });

  it("judges throughput ratios, which must reach their limits", () => {
    // b/a: 0.9, 0.667, 0.9: median 0.9 >= 0.85.
    expect(lineOf(lines, "throughput flat out: cache hits vs bare")).toMatch(
      /= 0\.90x .*target >= 0\.85x: met$/,
    );
    // c/a: 0.65, 0.867, 0.65: median 0.65 >= 0.6.
    expect(lineOf(lines, "throughput flat out: Redis reads vs bare")).toMatch(/= 0\.65x .*: met$/);
    // b/d: 2.4, 1.33, 2.4: median 2.4 >= 2.
    expect(lineOf(lines, "throughput flat out: cache hits on uWS vs on node:http")).toMatch(
      /= 2\.40x .*: met$/,
    );
  });

  it("judges the fixed-rate p99 by the median of its rounds, and flags a rate the load fell short of", () => {
    expect(lineOf(lines, "p99 at 80% of the max rate, fixed-rate run: cache hits")).toBe(
      "p99 at 80% of the max rate, fixed-rate run: cache hits: (b) p99 = 1.90 ms (median of 3 round(s), 1.50 to 2.50 ms; 16,000 req/s answered of 16,000 asked), target <= 2 ms: met",
    );
    expect(lineOf(lines, "p99 at 80% of the max rate, fixed-rate run: Redis reads")).toMatch(
      /\(c\) p99 = 4\.50 ms .*target <= 4 ms: MISSED$/,
    );
    const short = targetLines([row("b", { rps: [1], cpuUs: [1] }, { fixedRate: fixed([1], 12_000) })]);
    expect(lineOf(short, "p99 at 80% of the max rate, fixed-rate run: cache hits")).toMatch(
      /12,000 req\/s answered of 16,000 asked, SHORT of the rate\), target <= 2 ms: met at a lower rate than asked$/,
    );
  });

  it("reads n/a, never met, for a target whose scenarios did not run", () => {
    const none = targetLines([row("a", { rps: [1], cpuUs: [1] })]);
    expect(none).toHaveLength(TARGETS.length);
    for (const l of none) expect(l).toMatch(/: n\/a$/);
  });
});

describe("the stored format's size targets", () => {
  const cls = (segments: number, person: number, redisBytes: number, lruHeapBytes = 0): SizingClass => ({
    segments,
    person,
    redisBytes,
    lruHeapBytes,
    lruEstimateBytes: 0,
    viewHeapBytes: 0,
  });

  it("prints each with its mean, its target and a verdict: at the limit is met, above it MISSED", () => {
    expect(
      sizingTargetLines({
        classes: [cls(4, 1, 90), cls(10, 1, 160.04, 300.04), cls(20, 4, 900.1)],
        usedPerKey: 0,
      }),
    ).toEqual([
      "cache heap per cached 10-segment profile, key and LRU bookkeeping included = 300 B (heap growth after GC, mean), target <= 300 B: met",
      "Redis bytes per 10-segment profile (30-day TTLs) = 160 B (MEMORY USAGE, mean), target <= 160 B: met",
      "Redis bytes per ID, linked person of 4 IDs x 20 segments = 900.1 B (MEMORY USAGE, mean), target <= 900 B: MISSED",
    ]);
    expect(
      sizingTargetLines({ classes: [cls(10, 1, 216, 300.1), cls(20, 4, 642.5)], usedPerKey: 0 }),
    ).toEqual([
      "cache heap per cached 10-segment profile, key and LRU bookkeeping included = 300.1 B (heap growth after GC, mean), target <= 300 B: MISSED",
      "Redis bytes per 10-segment profile (30-day TTLs) = 216 B (MEMORY USAGE, mean), target <= 160 B: MISSED",
      "Redis bytes per ID, linked person of 4 IDs x 20 segments = 642.5 B (MEMORY USAGE, mean), target <= 900 B: met",
    ]);
  });

  it("says n/a for a class not measured, and leads the Sizing section", () => {
    const figures = { classes: [cls(20, 1, 300), cls(4, 1, 90)], usedPerKey: 100 };
    const lines = sizingLines(figures);
    expect(lines.slice(0, 3)).toEqual([
      "cache heap per cached 10-segment profile, key and LRU bookkeeping included = n/a (not measured), target <= 300 B: n/a",
      "Redis bytes per 10-segment profile (30-day TTLs) = n/a (not measured), target <= 160 B: n/a",
      "Redis bytes per ID, linked person of 4 IDs x 20 segments = n/a (not measured), target <= 900 B: n/a",
    ]);
    // Then the server figure and the classes, smallest first.
    expect(lines).toHaveLength(6);
    expect(lines[4]).toMatch(/^4 segments per ID .*Redis 90 B per profile/);
    expect(lines[5]).toMatch(/^20 segments per ID .*Redis 300 B per profile/);
  });
});

describe("ingest lines", () => {
  const figures = (order: "grouped" | "random", rowsPerS: number, rss: number[]): IngestFigures => ({
    rows: 2_000_000,
    rowsPerId: 4,
    order,
    fileBytes: 108 * 2 ** 20,
    elapsedS: 2_000_000 / rowsPerS,
    rowsPerS,
    peakRssMiB: Math.max(...rss),
    rssAtQuartersMiB: rss,
    commandCpuS: 4,
    redisCpuS: 3,
    cores: 2,
    exitCode: 0,
    summaryLine: "memberships.csv: read 2000000, loaded 2000000, rejected 0",
  });

  it("judges each order against its own target, at the boundary", () => {
    expect(ingestLines(figures("grouped", 300_000, [200, 200, 200, 200]))[0]).toBe(
      "ingest, 2M rows, 4 per ID, rows of an ID adjacent, whole command: 300,000 rows/s, target >= 300,000: met (6.7 s wall, 108 MiB CSV)",
    );
    expect(ingestLines(figures("grouped", 299_999, [200, 200, 200, 200]))[0]).toMatch(/: MISSED \(/);
    expect(ingestLines(figures("random", 150_000, [200, 200, 200, 200]))[0]).toBe(
      "ingest, 2M rows, 4 per ID, rows in random order, whole command: 150,000 rows/s, target >= 150,000: met (13.3 s wall, 108 MiB CSV)",
    );
    expect(ingestLines(figures("random", 149_999, [200, 200, 200, 200]))[0]).toMatch(/: MISSED \(/);
  });

  it("calls memory flat while RSS at 50, 75 and 100% stays within 32 MiB of RSS at 25%", () => {
    const flat = (rss: number[]) => ingestLines(figures("random", 200_000, rss))[1];
    expect(flat([200, 232, 180, 231])).toBe(
      "ingest, 2M rows, 4 per ID, rows in random order, memory flat (RSS at 50/75/100% within 32 MiB of RSS at 25%): met; RSS at 25/50/75/100% of the run: 200 / 232 / 180 / 231 MiB, peak 232 MiB",
    );
    expect(flat([200, 200, 233, 200])).toMatch(/: MISSED; /);
    expect(flat([0, 0, 0, 0])).toMatch(/: n\/a \(no RSS sample\); /);
  });

  it("says where the time went: the command's CPU, Redis', and the wall time", () => {
    expect(ingestLines(figures("grouped", 400_000, [200, 200, 200, 200]))[2]).toBe(
      "ingest, 2M rows, 4 per ID, rows of an ID adjacent, where the time went: command CPU 4.0 s, Redis CPU 3.0 s, of 5.0 s wall on 2 cores (140% of one core busy on average)",
    );
  });
});
