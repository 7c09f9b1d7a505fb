// A deal rule definition for tests: the given id and expression, the defaults' terms, no conditions.
import type { DealRuleDef } from "../../src/segments/deal-rule.ts";

export function dealRule(id: string, when = "x", extra: Partial<DealRuleDef> = {}): DealRuleDef {
  return {
    id,
    when,
    bidfloor: 1.5,
    bidfloorcur: "USD",
    at: 1,
    wseat: null,
    wadomain: null,
    formats: null,
    sizes: null,
    ...extra,
  };
}
