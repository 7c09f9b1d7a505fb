// Reads cap rules from CSV (`campaign,window,max[,line_item,creative]`) or NDJSON lines with the same keys.
// Rows with the same campaign / line item / creative build one rule; every bad row is reported by line.
import type { Readable } from "node:stream";
import { type FileFormat, type ReadOptions, readRecords } from "../ingest/record-reader.ts";
import {
  CAP_ID_RE,
  type CapRule,
  type CapWindow,
  formatWindow,
  MAX_CAP,
  parseWindow,
  scopeKey,
  sortWindows,
} from "./cap-rule.ts";

export interface CapRulesResult {
  readonly rules: CapRule[];
  readonly errors: { line: number; reason: string }[];
}

const SHAPE = {
  required: ["campaign", "window", "max"],
  known: new Set(["campaign", "window", "max", "line_item", "creative"]),
} as const;

function optionalId(v: unknown, name: string): string | null | { error: string } {
  if (v === undefined || v === null || v === "") return null;
  const s = String(v).trim();
  return CAP_ID_RE.test(s) ? s : { error: `${name} must be 1-64 letters, digits, '.', '_', ':' or '-'` };
}

export async function readCapRules(
  input: Readable,
  format: FileFormat,
  opts: ReadOptions = {},
): Promise<CapRulesResult> {
  const byScope = new Map<
    string,
    { rule: Omit<CapRule, "windows">; windows: CapWindow[]; lines: number[] }
  >();
  const errors: { line: number; reason: string }[] = [];
  for await (const r of readRecords(input, format, SHAPE, opts)) {
    if ("error" in r) {
      errors.push({ line: r.line, reason: r.error });
      continue;
    }
    const campaign = String(r.record.campaign ?? "").trim();
    if (!CAP_ID_RE.test(campaign)) {
      errors.push({ line: r.line, reason: "campaign must be 1-64 letters, digits, '.', '_', ':' or '-'" });
      continue;
    }
    const lineItem = optionalId(r.record.line_item, "line_item");
    const creative = optionalId(r.record.creative, "creative");
    if (lineItem !== null && typeof lineItem === "object") {
      errors.push({ line: r.line, reason: lineItem.error });
      continue;
    }
    if (creative !== null && typeof creative === "object") {
      errors.push({ line: r.line, reason: creative.error });
      continue;
    }
    const windowSec = parseWindow(String(r.record.window ?? ""));
    if (typeof windowSec === "string") {
      errors.push({ line: r.line, reason: windowSec });
      continue;
    }
    const max = Number(r.record.max);
    if (!Number.isInteger(max) || max < 1 || max > MAX_CAP) {
      errors.push({ line: r.line, reason: `max must be a whole number from 1 to ${MAX_CAP}` });
      continue;
    }
    const head = { campaign, lineItem, creative };
    const key = scopeKey(head);
    const entry = byScope.get(key) ?? { rule: head, windows: [], lines: [] };
    const dup = entry.windows.findIndex((w) => w.windowSec === windowSec);
    if (dup >= 0) {
      errors.push({
        line: r.line,
        reason: `window ${formatWindow(windowSec)} given twice for this campaign (first at line ${entry.lines[dup]})`,
      });
      continue;
    }
    entry.windows.push({ windowSec, max });
    entry.lines.push(r.line);
    byScope.set(key, entry);
  }
  const rules = [...byScope.values()].map((e) => ({ ...e.rule, windows: sortWindows(e.windows) }));
  return { rules, errors: errors.sort((a, b) => a.line - b.line) };
}
