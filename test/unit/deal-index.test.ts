// The deal index's evaluator (postfix programs over numbered segments) must unlock exactly the rules the
// compiled expressions' own test() says, in id order, for any expressions and any person.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DealIndex } from "../../src/segments/deal-index.ts";
import type { DealRuleDef } from "../../src/segments/deal-rule.ts";
import { dealRule } from "../helpers/deal-rule.ts";

const SEGMENTS = ["a1", "b2", "c3", "d4", "e5", "f6"];

const expression: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(...SEGMENTS),
    tie("e").map((x) => `NOT ${x}`),
    fc.array(tie("e"), { minLength: 2, maxLength: 4 }).map((xs) => `(${xs.join(" AND ")})`),
    fc.array(tie("e"), { minLength: 2, maxLength: 4 }).map((xs) => `(${xs.join(" OR ")})`),
  ),
})).e;

const rule = (id: string, when: string): DealRuleDef => dealRule(id, when);

describe("DealIndex.matching", () => {
  it("unlocks what each expression's test() says, in id order", () => {
    fc.assert(
      fc.property(
        fc.array(expression, { minLength: 1, maxLength: 12 }),
        fc.array(fc.subarray([...SEGMENTS, "zz"]), { minLength: 1, maxLength: 5 }),
        (whens, persons) => {
          const index = new DealIndex(whens.map((w, i) => rule(`deal-${String(i).padStart(2, "0")}`, w)));
          for (const person of persons) {
            const set = new Set(person);
            const want = index.rules.filter((r) => r.expr.test(set)).map((r) => r.def.id);
            expect(index.matching(set).map((r) => r.def.id)).toEqual(want);
          }
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("answers each call on its own: nothing of one person's segments stays for the next", () => {
    const index = new DealIndex([rule("x", "a1 AND b2"), rule("y", "NOT a1"), rule("z", "c3 OR d4")]);
    expect(index.matching(new Set(["a1", "b2", "c3"])).map((r) => r.def.id)).toEqual(["x", "z"]);
    expect(index.matching(new Set([])).map((r) => r.def.id)).toEqual(["y"]);
    expect(index.matching(new Set(["b2"])).map((r) => r.def.id)).toEqual(["y"]);
    // A list as enrich passes it, a segment given twice among them.
    expect(index.matching(["a1", "b2", "b2", "c3"]).map((r) => r.def.id)).toEqual(["x", "z"]);
  });
});
