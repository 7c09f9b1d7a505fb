// A person's caps answer is kept beside the counters' index until a window's edge moves: for any counters,
// rules and clock, it must equal the answer worked out afresh.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CapRule } from "../../src/capping/cap-rule.ts";
import { CounterIndex } from "../../src/capping/cap-windows.ts";
import { capsFor } from "../../src/capping/caps-at-bid.ts";
import { fieldsFor, impressionScopes } from "../../src/capping/counters.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";

const T = 1_750_000_000;
const CAMPAIGNS = ["c1", "c2", "c3"];
// Windows of every granularity, and some that are not a whole number of their buckets (100 s, 45 min + 7 s).
const WINDOWS = [100, 1_800, 2_707, 3_600, 86_400, 7 * 86_400, null];

describe("capsFor, held beside the counters' index", () => {
  it("answers as a fresh evaluation does, at every second of any clock", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            c: fc.constantFrom(...CAMPAIGNS),
            // Most near the short windows' edges, where counts change as the clock moves; some far back.
            t: fc.oneof(
              fc.integer({ min: T - 4_000, max: T + 600 }),
              fc.integer({ min: T - 8 * 86_400, max: T }),
            ),
          }),
          {
            maxLength: 30,
          },
        ),
        fc.array(
          fc.record({
            c: fc.constantFrom(...CAMPAIGNS),
            windows: fc.uniqueArray(fc.constantFrom(...WINDOWS), { minLength: 1, maxLength: 3 }),
            max: fc.integer({ min: 1, max: 6 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(
          fc.oneof(
            // Second by second (a stale answer shows at the very second an edge moves), small jumps, large ones.
            { weight: 6, arbitrary: fc.integer({ min: 1, max: 2 }) },
            { weight: 2, arbitrary: fc.integer({ min: 0, max: 90 }) },
            { weight: 1, arbitrary: fc.integer({ min: -200, max: 4_000 }) },
          ),
          { minLength: 1, maxLength: 150 },
        ),
        (impressions, ruleSpecs, steps) => {
          const counters = new Map<string, number>();
          for (const { c, t } of impressions)
            for (const scope of impressionScopes(c, null, null))
              for (const f of fieldsFor(scope, t)) counters.set(f, (counters.get(f) ?? 0) + 1);
          const rules: CapRule[] = ruleSpecs.map((r) => ({
            campaign: r.c,
            lineItem: null,
            creative: null,
            windows: r.windows.map((windowSec) => ({ windowSec, max: r.max })),
          }));
          const snapshot = new CatalogSnapshot([], new Map(), rules);
          const index = new CounterIndex(counters);
          const candidates = ["c1", "c2", "c3"];
          let now = T;
          for (const step of steps) {
            // Forward, sometimes back (another worker's clock).
            now += step;
            expect(capsFor(snapshot, index, candidates, now)).toEqual(
              capsFor(snapshot, counters, candidates, now),
            );
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
