// The answer's segments worked out once per cached profile: the view must always equal what merging the
// memberships afresh gives, and the answer's JSON must equal JSON.stringify of the answer.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ErrorCode } from "../../src/errors.ts";
import {
  addProfile,
  type LiveSegmentRules,
  type LiveView,
  liveView,
  type ViewHolder,
} from "../../src/lookup/live-segments.ts";
import { answerJson, type LookupAnswer, mergeSorted } from "../../src/lookup/lookup-handler.ts";
import { type CachedProfile, MembershipKinds, packMemberships } from "../../src/profiles/packed-profile.ts";
import type { Membership } from "../../src/profiles/profile-codec.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";
import type { SegmentDef } from "../../src/segments/segment-def.ts";
import { segmentDef } from "../helpers/segment-def.ts";

const def = (id: string, parent: string | null = null, sensitive = false): SegmentDef =>
  segmentDef(id, { parent, sensitive });

const snapshot = new CatalogSnapshot(
  [def("10"), def("11", "10"), def("12"), def("99", null, true)],
  new Map(),
);
const rules = (over: Partial<LiveSegmentRules> = {}): LiveSegmentRules => ({
  snapshot,
  nowSec: 1_000,
  expand: false,
  minConfidence: 0,
  scope: null,
  ...over,
});
const m = (segment: string, expiresAt = 0) => ({ segment, expiresAt, source: "", generation: 0 });

const kinds = new MembershipKinds();
const packed = (memberships: Membership[]): CachedProfile => packMemberships(memberships, kinds);

/** The cache's side of keeping views: one slot, holding a memo while it holds the same profile. */
class OneSlot implements ViewHolder {
  held: { p: CachedProfile; memo: unknown } | null = null;
  memo(_slot: number, p: CachedProfile, _kinds: MembershipKinds): unknown {
    return this.held?.p === p ? this.held.memo : undefined;
  }
  keepMemo(_slot: number, p: CachedProfile, _kinds: MembershipKinds, memo: unknown): void {
    this.held = { p, memo };
  }
}

/** The view of `p` as a cached profile (kept in `holder`). */
const view = (p: CachedProfile, r: LiveSegmentRules, thirdParties: boolean, holder: ViewHolder): LiveView =>
  liveView(p, kinds, r, thirdParties, holder, 0);

describe("liveView", () => {
  it("lists the usable segments sorted, with their JSON, and nothing sensitive", () => {
    const p = packed([m("12"), m("99"), m("11")]);
    const v = liveView(p, kinds, rules(), true);
    expect(v.segments).toEqual(["11", "12"]);
    expect(v.json).toBe('["11","12"]');
  });

  it("is reused while the rules are the same, and worked out again when they change", () => {
    const p = packed([m("11")]);
    const holder = new OneSlot();
    const first = view(p, rules(), true, holder);
    expect(view(p, rules({ nowSec: 5_000 }), true, holder)).toBe(first);
    expect(view(p, rules({ expand: true }), true, holder).segments).toEqual(["10", "11"]);
    // Another snapshot (a replace went live) is another answer: generation 1 of "11" is not the member's 0.
    const next = new CatalogSnapshot(snapshot.all(), new Map([["11", 1]]));
    expect(view(p, rules({ snapshot: next }), true, holder).segments).toEqual([]);
    // After a US opt-out only first-party data: "11" is third-party.
    expect(view(p, rules(), false, holder).segments).toEqual([]);
  });

  it("drops a membership from the second it expires, though the view was made before", () => {
    const p = packed([m("11", 1_500), m("12", 2_000)]);
    const holder = new OneSlot();
    expect(view(p, rules({ nowSec: 1_000 }), true, holder).segments).toEqual(["11", "12"]);
    expect(view(p, rules({ nowSec: 1_499 }), true, holder).segments).toEqual(["11", "12"]);
    expect(view(p, rules({ nowSec: 1_500 }), true, holder).segments).toEqual(["12"]);
    expect(view(p, rules({ nowSec: 2_000 }), true, holder).segments).toEqual([]);
  });

  it("equals a fresh merge for any profile and any sequence of times", () => {
    const segs = ["10", "11", "12", "99", "77"];
    fc.assert(
      fc.property(
        fc.array(fc.record({ s: fc.constantFrom(...segs), e: fc.constantFrom(0, 1_100, 1_200, 1_300) })),
        fc.array(fc.integer({ min: 1_000, max: 1_400 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (rows, times, expand) => {
          const p = packed(rows.map((r) => m(r.s, r.e)));
          const holder = new OneSlot();
          for (const nowSec of [...times].sort((a, b) => a - b)) {
            const r = rules({ nowSec, expand });
            const fresh = new Set<string>();
            addProfile(p, kinds, fresh, r, true);
            const want = [...fresh].sort();
            const v = view(p, r, true, holder);
            expect(v.segments).toEqual(want);
            expect(v.json).toBe(JSON.stringify(want));
            // Not kept (the cache is off): the same view.
            const once = liveView(p, kinds, r, true);
            expect(once.segments).toEqual(want);
            expect(once.json).toBe(JSON.stringify(want));
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("answerJson", () => {
  it("writes exactly what JSON.stringify writes for the answer", () => {
    const str = fc.string({ unit: "binary", maxLength: 12 });
    fc.assert(
      fc.property(
        fc.record({
          id: fc.option(str),
          segments: fc.array(str),
          capped: fc.array(str),
          degraded: fc.boolean(),
          matched: fc.array(str),
          withheld: fc.array(str),
          remaining: fc.option(fc.dictionary(str, fc.option(fc.nat())), { nil: undefined }),
          token: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), { nil: undefined }),
          warnings: fc.option(
            fc.array(
              fc.record({
                field: str,
                code: fc.constantFrom<ErrorCode>("AUD_ERR_BAD_FIELD", "AUD_ERR_MISSING_FIELD"),
              }),
              {
                minLength: 1,
              },
            ),
            { nil: undefined },
          ),
        }),
        (a) => {
          const answer: LookupAnswer = {
            id: a.id,
            segments: a.segments,
            capped: a.capped,
            degraded: a.degraded,
            matched: a.matched,
            withheld: a.withheld,
          };
          if (a.remaining !== undefined) answer.remaining = a.remaining;
          if (a.token !== undefined) answer.token = a.token;
          if (a.warnings !== undefined) answer.warnings = a.warnings;
          expect(answerJson(answer, JSON.stringify(a.segments))).toBe(JSON.stringify(answer));
        },
      ),
      { numRuns: 5_000 },
    );
  });
});

describe("mergeSorted", () => {
  it("gives what a Set and a sort give, for any two sorted lists without duplicates", () => {
    const list = fc.uniqueArray(fc.string({ unit: "binary", maxLength: 6 })).map((l) => l.sort());
    fc.assert(
      fc.property(list, list, (a, b) => {
        expect(mergeSorted(a, b)).toEqual([...new Set([...a, ...b])].sort());
      }),
      { numRuns: 5_000 },
    );
  });
});
