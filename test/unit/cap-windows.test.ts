import { describe, expect, it } from "vitest";
import type { CapRule, CapWindow } from "../../src/capping/cap-rule.ts";
import {
  counterWrite,
  countInWindow,
  errorBoundSec,
  evaluateCampaigns,
  evaluateRule,
  evaluateScopes,
  granularityFor,
} from "../../src/capping/cap-windows.ts";
import { fieldsFor, impressionScopes } from "../../src/capping/counters.ts";

const MIN = 60;
const HOUR = 3_600;
const DAY = 86_400;
/** Midnight UTC, so a multiple of every granularity: edges below are placed relative to bucket starts. */
const DAY0 = 19_676 * DAY;
const NOW = DAY0 + 10 * DAY;

type Impression = readonly [
  tsSec: number,
  campaign: string,
  lineItem?: string | null,
  creative?: string | null,
];

/** Counters as a store would hold them after these impressions, written through fieldsFor. */
function countersFrom(impressions: readonly Impression[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const [ts, campaign, lineItem = null, creative = null] of impressions) {
    for (const scope of impressionScopes(campaign, lineItem, creative)) {
      for (const f of fieldsFor(scope, ts)) m.set(f, (m.get(f) ?? 0) + 1);
    }
  }
  return m;
}

const C1 = "c1||";
const at = (...ts: number[]) => countersFrom(ts.map((t) => [t, "c1"] as const));
const rule = (
  windows: CapWindow[],
  lineItem: string | null = null,
  creative: string | null = null,
): CapRule => ({
  campaign: "c1",
  lineItem,
  creative,
  windows,
});

describe("granularityFor", () => {
  it.each([
    [MIN, 60],
    [30 * MIN, 60],
    [HOUR, 60],
    [DAY - 1, 60],
    [DAY, 3_600],
    [7 * DAY, 3_600],
    [24 * DAY - 1, 3_600],
    [24 * DAY, 86_400],
    [30 * DAY, 86_400],
    [90 * DAY, 86_400],
  ])("window %i s -> buckets of %i s, which is also the error bound", (windowSec, g) => {
    expect(granularityFor(windowSec)).toBe(g);
    expect(errorBoundSec(windowSec)).toBe(g);
  });
});

describe("countInWindow", () => {
  // Each probe is one impression `offset` seconds after the window's old edge (nowSec - windowSec).
  it.each([
    ["1h", HOUR, 60],
    ["24h", DAY, 3_600],
    ["7d", 7 * DAY, 3_600],
  ])("%s window, old edge on a bucket start: nothing at the edge, everything from edge + g", (_, w, g) => {
    const edge = NOW - w;
    const probes = [-1, 0, 1, g - 1, g, g + 1, w - 1, w];
    expect(probes.map((o) => countInWindow(at(edge + o), C1, w, NOW))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it.each([
    ["1h", HOUR, 60],
    ["24h", DAY, 3_600],
    ["7d", 7 * DAY, 3_600],
  ])("%s window, old edge mid-bucket: the band up to the next bucket start is missed", (_, w, g) => {
    const now = NOW + g / 2;
    const edge = now - w; // next bucket starts at edge + g/2
    const probes = [0, 1, g / 2 - 1, g / 2, g, g + 1];
    expect(probes.map((o) => countInWindow(at(edge + o), C1, w, now))).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it("sums several impressions across buckets of the window's granularity", () => {
    const c = at(NOW - 3_599, NOW - 3_540, NOW - 1_800, NOW - 1_800, NOW, NOW - 3_600, NOW - 7_200);
    expect(countInWindow(c, C1, HOUR, NOW)).toBe(4); // NOW - 3_599 falls in the edge bucket
    expect(countInWindow(c, C1, DAY, NOW)).toBe(7);
  });

  it("never counts an impression at or before nowSec - windowSec; counts all from nowSec - windowSec + g", () => {
    // Pseudo-random impressions and clocks: the count lies between the two bounds of the doc comment.
    let seed = 12_345;
    const rand = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    for (const w of [HOUR, DAY, 7 * DAY, 30 * DAY]) {
      const g = granularityFor(w);
      for (let i = 0; i < 50; i++) {
        const now = NOW + rand(DAY);
        const ts = Array.from({ length: 40 }, () => now - rand(w + 2 * g));
        const count = countInWindow(at(...ts), C1, w, now);
        expect(count).toBeLessThanOrEqual(ts.filter((t) => t > now - w).length);
        expect(count).toBeGreaterThanOrEqual(ts.filter((t) => t >= now - w + g).length);
        const s = g * (Math.floor((now - w) / g) + 1);
        expect(count).toBe(ts.filter((t) => t >= s).length);
      }
    }
  });

  it("does not read buckets after nowSec's", () => {
    expect(countInWindow(at(NOW + 59, NOW + 60), C1, HOUR, NOW)).toBe(1);
  });

  it("lifetime counts every impression of the scope, however old", () => {
    const c = countersFrom([
      [NOW - 200 * DAY, "c1"],
      [NOW - 91 * DAY, "c1"],
      [NOW - 1, "c1"],
      [NOW, "c1", "li-1"],
      [NOW, "c2"],
    ]);
    expect(countInWindow(c, C1, null, NOW)).toBe(4);
    expect(countInWindow(c, "c1|li-1|", null, NOW)).toBe(1);
    expect(countInWindow(c, "c3||", null, NOW)).toBe(0);
  });
});

describe("evaluateRule", () => {
  const threePerHour = rule([{ windowSec: HOUR, max: 3 }]);

  it("caps at max impressions in the window", () => {
    expect(evaluateRule(threePerHour, at(NOW - 3_000, NOW - 100, NOW), NOW)).toEqual({
      capped: true,
      remaining: 0,
    });
    expect(evaluateRule(threePerHour, at(NOW - 3_000, NOW), NOW)).toEqual({ capped: false, remaining: 1 });
    expect(evaluateRule(threePerHour, new Map(), NOW)).toEqual({ capped: false, remaining: 3 });
  });

  it("floors remaining at 0 when the count is over max", () => {
    expect(evaluateRule(threePerHour, at(NOW - 4, NOW - 3, NOW - 2, NOW - 1, NOW), NOW)).toEqual({
      capped: true,
      remaining: 0,
    });
  });

  it("takes the tightest window", () => {
    const r = rule([
      { windowSec: HOUR, max: 3 },
      { windowSec: DAY, max: 5 },
      { windowSec: 7 * DAY, max: 20 },
      { windowSec: null, max: 100 },
    ]);
    const earlierToday = [NOW - 20 * HOUR, NOW - 10 * HOUR, NOW - 5 * HOUR];
    // 1 in the last hour, 4 in 24 h: 1h leaves 2, 24h leaves 1.
    expect(evaluateRule(r, at(NOW - 60, ...earlierToday), NOW)).toEqual({ capped: false, remaining: 1 });
    // 5 in 24 h: the 24h window caps though the 1h window has room.
    expect(evaluateRule(r, at(NOW - 60, NOW - 2 * HOUR, ...earlierToday), NOW)).toEqual({
      capped: true,
      remaining: 0,
    });
    // 98 long ago: lifetime leaves 1 (98 + 1 in the last hour), tighter than 1h's 2.
    const old = Array.from({ length: 98 }, (_, i) => NOW - 100 * DAY - i);
    expect(evaluateRule(r, at(NOW - 60, ...old), NOW)).toEqual({ capped: false, remaining: 1 });
  });

  it("uncaps as impressions leave the window while the clock advances", () => {
    const c = at(NOW - 3_000, NOW - 2_000, NOW - 1_000);
    const rules = [rule([{ windowSec: HOUR, max: 3 }])];
    expect(evaluateCampaigns(rules, c, NOW).get("c1")).toEqual({ capped: true, remaining: 0 });
    // NOW - 3_000 is then 3_599 s old and in the bucket after the edge's: still counted.
    expect(evaluateCampaigns(rules, c, NOW + 599).get("c1")).toEqual({ capped: true, remaining: 0 });
    // Exactly 1 h old: out.
    expect(evaluateCampaigns(rules, c, NOW + 600).get("c1")).toEqual({ capped: false, remaining: 1 });
    expect(evaluateCampaigns(rules, c, NOW + 1_600).get("c1")).toEqual({ capped: false, remaining: 2 });
    expect(evaluateCampaigns(rules, c, NOW + 2_600).get("c1")).toEqual({ capped: false, remaining: 3 });
  });
});

describe("evaluateCampaigns and evaluateScopes", () => {
  const rules: CapRule[] = [
    rule([{ windowSec: DAY, max: 10 }]),
    rule([{ windowSec: HOUR, max: 1 }], "li-1"),
    rule([{ windowSec: HOUR, max: 2 }], "li-1", "cr-1"),
    { campaign: "c2", lineItem: "li-2", creative: null, windows: [{ windowSec: DAY, max: 4 }] },
  ];
  const c = countersFrom([
    [NOW - 100, "c1", "li-1", "cr-1"],
    [NOW - 2 * HOUR, "c1", "li-3"],
  ]);

  it("a capped line item does not cap its campaign; campaigns without a campaign rule are absent", () => {
    expect(evaluateCampaigns(rules, c, NOW)).toEqual(new Map([["c1", { capped: false, remaining: 8 }]]));
  });

  it("states every rule by scope", () => {
    expect(evaluateScopes(rules, c, NOW)).toEqual(
      new Map([
        ["c1||", { capped: false, remaining: 8 }],
        ["c1|li-1|", { capped: true, remaining: 0 }],
        ["c1|li-1|cr-1", { capped: false, remaining: 1 }],
        ["c2|li-2|", { capped: false, remaining: 4 }],
      ]),
    );
  });

  it("caps the campaign when its own rule caps", () => {
    const ten = countersFrom(
      Array.from({ length: 10 }, (_, i) => [NOW - i * HOUR, "c1", `li-${i}`] as const),
    );
    expect(evaluateCampaigns(rules, ten, NOW).get("c1")).toEqual({ capped: true, remaining: 0 });
  });

  it("keeps the tighter state when two rules share a scope", () => {
    const twice = [rule([{ windowSec: DAY, max: 10 }]), rule([{ windowSec: DAY, max: 3 }])];
    const expected = { capped: false, remaining: 1 };
    expect(evaluateCampaigns(twice, c, NOW).get("c1")).toEqual(expected);
    expect(evaluateCampaigns([...twice].reverse(), c, NOW).get("c1")).toEqual(expected);
    expect(evaluateScopes(twice, c, NOW).get("c1||")).toEqual(expected);
  });
});

describe("counterWrite", () => {
  /** A rule of c1 with these window lengths (max 5 each): counterWrite reads only the lengths. */
  const windowsRule = (
    windows: (number | null)[],
    lineItem: string | null = null,
    creative: string | null = null,
  ): CapRule =>
    rule(
      windows.map((windowSec) => ({ windowSec, max: 5 })),
      lineItem,
      creative,
    );
  const rulesOf = (rules: CapRule[]) => (scope: string) =>
    rules.filter((r) => `${r.campaign}|${r.lineItem ?? ""}|${r.creative ?? ""}` === scope);

  it("writes nothing for scopes without a rule", () => {
    expect(
      counterWrite(impressionScopes("c2", "li", "cr"), rulesOf([windowsRule([HOUR])]), NOW, NOW),
    ).toBeNull();
  });

  it("writes only what the rules read: lifetime when asked, one bucket per granularity used", () => {
    const rules = [windowsRule([HOUR, 2 * HOUR, 7 * DAY]), windowsRule([null], "li")];
    const w = counterWrite(impressionScopes("c1", "li", null), rulesOf(rules), NOW - 30, NOW);
    expect(w).toEqual({
      lifetime: ["c1|li||L"],
      buckets: [
        // The longest window of each granularity sets the first bucket kept (one bucket of margin).
        { prefix: "c1|||60|", bucket: (NOW - 60) / 60, lo: (NOW - 2 * HOUR) / 60, span: 132 },
        { prefix: "c1|||3600|", bucket: NOW / 3_600 - 1, lo: (NOW - 7 * DAY) / 3_600, span: 171 },
      ],
    });
  });

  it("is null when every bucket is past its retention and no lifetime window counts", () => {
    const rules = [windowsRule([HOUR, 24 * HOUR])];
    expect(counterWrite(["c1||"], rulesOf(rules), NOW - 25 * HOUR, NOW)).toBeNull();
    expect(
      counterWrite(["c1||"], rulesOf(rules), NOW - 23 * HOUR, NOW)?.buckets.map((b) => b.prefix),
    ).toEqual(["c1|||60|", "c1|||3600|"]);
  });

  it("never puts lo past a bucket the longest window of its granularity reads", () => {
    for (const w of [HOUR, DAY - MIN, DAY, 24 * DAY - HOUR, 24 * DAY, 90 * DAY]) {
      for (const now of [NOW, NOW + 59, NOW + 3_599, NOW + 12_345]) {
        const write = counterWrite(["c1||"], rulesOf([windowsRule([w])]), now, now);
        const b = write?.buckets[0];
        // countInWindow reads the buckets after floor((now - w) / g): lo keeps one more, as margin.
        expect(b?.lo).toBe(Math.floor((now - w) / granularityFor(w)));
      }
    }
  });
});
