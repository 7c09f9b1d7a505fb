// Deal rules: a private-marketplace deal and the segments that unlock it, as the data team writes them
// (one NDJSON line each), validated and compiled once when loaded.
import { quotedInput } from "../privacy/log-redaction.ts";
import { type CompiledExpression, compileDealExpression, DealExpressionError } from "./deal-expression.ts";

export type ImpFormat = "banner" | "video" | "native" | "audio";
const FORMATS: readonly ImpFormat[] = ["banner", "video", "native", "audio"];

/** A rule as stored (JSON in Redis) and as written in a rules file. */
export interface DealRuleDef {
  readonly id: string;
  /** Boolean expression over segment ids: `1001 AND (1002 OR NOT 1003)`. */
  readonly when: string;
  readonly bidfloor: number;
  readonly bidfloorcur: string;
  /** Auction type of the deal (OpenRTB Deal.at): 1 first price, 2 second price plus, 3 the floor is the price. */
  readonly at: number;
  readonly wseat: readonly string[] | null;
  readonly wadomain: readonly string[] | null;
  /** Only impressions offering one of these formats; null: any. */
  readonly formats: readonly ImpFormat[] | null;
  /** Only impressions of one of these sizes ("300x250"); null: any. */
  readonly sizes: readonly string[] | null;
}

/** A rule ready for matching. */
export interface DealRule {
  readonly def: DealRuleDef;
  readonly expr: CompiledExpression;
}

export const DEAL_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const SIZE_RE = /^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const KNOWN_KEYS = new Set([
  "id",
  "when",
  "bidfloor",
  "bidfloorcur",
  "at",
  "wseat",
  "wadomain",
  "formats",
  "sizes",
]);

/** A rule that cannot be loaded: the field, and for an expression the column, of the problem. */
export class DealRuleError extends Error {
  readonly code = "AUD_ERR_BAD_DEAL_RULE";
  constructor(
    readonly field: string,
    reason: string,
    readonly column: number | null = null,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Validates and compiles one rule from its JSON form; throws DealRuleError. */
export function toDealRule(record: Readonly<Record<string, unknown>>): DealRule {
  for (const k of Object.keys(record)) if (!KNOWN_KEYS.has(k)) throw new DealRuleError(k, "unknown key");
  const id = record.id;
  if (typeof id !== "string" || !DEAL_ID_RE.test(id)) {
    throw new DealRuleError("id", "must be 1-128 letters, digits, '.', '_', ':' or '-'");
  }
  const when = record.when;
  if (typeof when !== "string") throw new DealRuleError("when", "must be an expression string");
  let expr: CompiledExpression;
  try {
    expr = compileDealExpression(when);
  } catch (err) {
    if (err instanceof DealExpressionError) throw new DealRuleError("when", err.message, err.column);
    throw err;
  }
  const bidfloor = record.bidfloor ?? 0;
  if (typeof bidfloor !== "number" || !Number.isFinite(bidfloor) || bidfloor < 0) {
    throw new DealRuleError("bidfloor", "must be a number of at least 0");
  }
  const bidfloorcur = record.bidfloorcur ?? "USD";
  if (typeof bidfloorcur !== "string" || !CURRENCY_RE.test(bidfloorcur)) {
    throw new DealRuleError("bidfloorcur", "must be an ISO-4217 code such as USD");
  }
  const at = record.at ?? 1;
  if (at !== 1 && at !== 2 && at !== 3) throw new DealRuleError("at", "must be 1, 2 or 3");
  const def: DealRuleDef = {
    id,
    when,
    bidfloor,
    bidfloorcur,
    at,
    wseat: stringList(record, "wseat", (s) => s.length > 0 && s.length <= 64),
    wadomain: stringList(record, "wadomain", (s) => /^[a-z0-9.-]{1,253}$/i.test(s)),
    formats: stringList(record, "formats", (s) => (FORMATS as readonly string[]).includes(s)) as
      | ImpFormat[]
      | null,
    sizes: stringList(record, "sizes", (s) => SIZE_RE.test(s)),
  };
  return { def, expr };
}

/** A mistyped seat, domain, format or size is quoted as it is; anything else may be an ID or an e-mail. */
const LIST_ENTRY_SHAPE = /^[A-Za-z0-9._:/ -]{1,40}$/;

function stringList(
  record: Readonly<Record<string, unknown>>,
  key: string,
  valid: (s: string) => boolean,
): string[] | null {
  const v = record[key];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length === 0) throw new DealRuleError(key, "must be a non-empty array");
  for (let i = 0; i < v.length; i++) {
    const s = v[i];
    if (typeof s !== "string" || !valid(s))
      throw new DealRuleError(
        `${key}[${i}]`,
        `${quotedInput(String(s), LIST_ENTRY_SHAPE)} is not valid here`,
      );
  }
  return v as string[];
}
