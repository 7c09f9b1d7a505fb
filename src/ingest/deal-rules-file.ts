// Reads deal-rule files (NDJSON, one rule a line) whole: every rule valid and compiled, or the bad lines
// named with the field and, for an expression, the column.
import type { Readable } from "node:stream";
import { type DealRuleDef, DealRuleError, toDealRule } from "../segments/deal-rule.ts";
import { type ReadOptions, readRecords } from "./record-reader.ts";

export interface DealRulesResult {
  readonly rules: DealRuleDef[];
  readonly errors: { line: number; reason: string; field?: string; column?: number }[];
}

const SHAPE = { required: [], known: new Set<string>() } as const;

export async function readDealRules(input: Readable, opts: ReadOptions = {}): Promise<DealRulesResult> {
  const rules: DealRuleDef[] = [];
  const errors: DealRulesResult["errors"] = [];
  const seen = new Map<string, number>();
  for await (const r of readRecords(input, "ndjson", SHAPE, opts)) {
    if ("error" in r) {
      errors.push({ line: r.line, reason: r.error });
      continue;
    }
    try {
      const { def } = toDealRule(r.record);
      const first = seen.get(def.id);
      if (first !== undefined) {
        errors.push({
          line: r.line,
          reason: `deal '${def.id}' is already defined on line ${first}`,
          field: "id",
        });
        continue;
      }
      seen.set(def.id, r.line);
      rules.push(def);
    } catch (err) {
      if (!(err instanceof DealRuleError)) throw err;
      errors.push({
        line: r.line,
        reason: err.message,
        field: err.field,
        ...(err.column === null ? {} : { column: err.column }),
      });
    }
  }
  return { rules, errors };
}
