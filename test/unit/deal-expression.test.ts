import { describe, expect, it } from "vitest";
import { compileDealExpression, DealExpressionError } from "../../src/segments/deal-expression.ts";
import { DealRuleError, toDealRule } from "../../src/segments/deal-rule.ts";

const has = (...ids: string[]) => new Set(ids);

function syntaxError(src: string): DealExpressionError {
  try {
    compileDealExpression(src);
  } catch (err) {
    expect(err).toBeInstanceOf(DealExpressionError);
    return err as DealExpressionError;
  }
  throw new Error(`'${src}' compiled`);
}

describe("deal expressions", () => {
  it("evaluates AND, OR, NOT and parentheses with NOT > AND > OR", () => {
    const e = compileDealExpression("1001 AND (1002 OR NOT 1003)");
    expect(e.test(has("1001"))).toBe(true);
    expect(e.test(has("1001", "1003"))).toBe(false);
    expect(e.test(has("1001", "1002", "1003"))).toBe(true);
    expect(e.test(has("1002"))).toBe(false);
    expect([...e.segments].sort()).toEqual(["1001", "1002", "1003"]);
    // a OR b AND c is a OR (b AND c)
    const p = compileDealExpression("a or b AND c");
    expect(p.test(has("a"))).toBe(true);
    expect(p.test(has("b"))).toBe(false);
    expect(p.test(has("b", "c"))).toBe(true);
    // NOT NOT and nesting
    const n = compileDealExpression("NOT (NOT x AND (y OR (z)))");
    expect(n.test(has())).toBe(true);
    expect(n.test(has("y"))).toBe(false);
    expect(n.test(has("x", "y"))).toBe(true);
    expect(compileDealExpression('"and" AND seg:1.a_b-c').test(has("and", "seg:1.a_b-c"))).toBe(true);
  });

  it("names the segments an expression cannot match without (the keys it is indexed under)", () => {
    expect(compileDealExpression("a AND (b OR c) AND NOT d AND (e AND f)").required).toEqual(["a", "e", "f"]);
    expect(compileDealExpression("a OR b").required).toEqual([]);
    expect(compileDealExpression("NOT a").required).toEqual([]);
    expect(compileDealExpression("x").required).toEqual(["x"]);
  });

  it("knows which expressions can match a person with none of their segments", () => {
    expect(compileDealExpression("a AND NOT b").matchesWithoutSegments).toBe(false);
    expect(compileDealExpression("NOT b").matchesWithoutSegments).toBe(true);
    expect(compileDealExpression("a OR NOT (b AND c)").matchesWithoutSegments).toBe(true);
  });

  it.each([
    ["", "empty expression", 1],
    ["1001 AND", "expected a segment id, NOT or '(', found end of expression", 9],
    ["(1001 OR 1002", "expected ')'", 14],
    ["1001 1002", "expected AND, OR or the end, found '1002'", 6],
    ["1001 AND OR 1002", "expected a segment id, NOT or '(', found 'OR'", 10],
    ["1001 & 1002", "unexpected character '&'", 6],
    ['"unclosed', "unclosed quote", 1],
    [")", "expected a segment id, NOT or '(', found ')'", 1],
  ])("rejects %j: %s at column %i", (src, reason, column) => {
    const err = syntaxError(src);
    expect(err.reason).toBe(reason);
    expect(err.column).toBe(column);
  });

  it("bounds nesting", () => {
    expect(syntaxError(`${"(".repeat(100)}a${")".repeat(100)}`).reason).toMatch(/nested deeper than 64/);
  });
});

describe("deal rules", () => {
  it("fills the defaults and keeps the terms", () => {
    const r = toDealRule({ id: "d1", when: "1001" });
    expect(r.def).toEqual({
      id: "d1",
      when: "1001",
      bidfloor: 0,
      bidfloorcur: "USD",
      at: 1,
      wseat: null,
      wadomain: null,
      formats: null,
      sizes: null,
    });
  });

  it.each([
    [{ when: "a" }, "id"],
    [{ id: "d", when: "a AND" }, "when"],
    [{ id: "d", when: "a", bidfloor: -1 }, "bidfloor"],
    [{ id: "d", when: "a", bidfloorcur: "usd" }, "bidfloorcur"],
    [{ id: "d", when: "a", at: 4 }, "at"],
    [{ id: "d", when: "a", formats: ["banner", "poster"] }, "formats[1]"],
    [{ id: "d", when: "a", sizes: ["300x"] }, "sizes[0]"],
    [{ id: "d", when: "a", wseat: [] }, "wseat"],
    [{ id: "d", when: "a", colour: "red" }, "colour"],
  ])("rejects %j naming %s", (record, field) => {
    try {
      toDealRule(record);
      throw new Error("accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(DealRuleError);
      expect((err as DealRuleError).field).toBe(field);
    }
  });

  it("reports the column of a bad expression", () => {
    try {
      toDealRule({ id: "d", when: "1001 AND (1002" });
      throw new Error("accepted");
    } catch (err) {
      expect((err as DealRuleError).column).toBe(15);
      expect((err as Error).message).toBe("when: expected ')' at column 15");
    }
  });
});

describe("deal index", () => {
  it("finds exactly the rules a brute-force evaluation finds, in id order", async () => {
    const { DealIndex } = await import("../../src/segments/deal-index.ts");
    const exprs = [
      "a AND b",
      "a OR NOT c",
      "NOT (a OR b)",
      "(a OR b) AND NOT c",
      "c AND (a OR d)",
      "d",
      "NOT d AND NOT a",
    ];
    const defs = exprs.map((when, i) => toDealRule({ id: `r${i}`, when }).def);
    const index = new DealIndex(defs);
    const all = ["a", "b", "c", "d"];
    for (let mask = 0; mask < 16; mask++) {
      const set = new Set(all.filter((_, i) => mask & (1 << i)));
      const brute = defs.filter((d) => compileDealExpression(d.when).test(set)).map((d) => d.id);
      expect(index.matching(set).map((r) => r.def.id)).toEqual(brute);
    }
  });
});
