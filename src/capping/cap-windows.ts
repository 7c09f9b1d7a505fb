// Window arithmetic over a person's counters: how many impressions fall in a rule's windows, whether the rule
// caps, and which counter fields a store may delete. Pure: the clock is passed in as `nowSec`.
import { CAP_ID_RE, type CapRule, scopeKey } from "./cap-rule.ts";
import { type Counters, GRANULARITIES_SEC, type Granularity, RETENTION_SEC } from "./counters.ts";

/**
 * The bucket size a window of `windowSec` sums: the largest of GRANULARITIES_SEC that is at most 1/24 of the
 * window, and never below the smallest (60 s). 30m and 1h -> 60, 24h and 7d -> 3600, 30d and 90d -> 86400.
 * At most 1/24 keeps the error at the window's old edge (one bucket) small next to the window, while long
 * windows sum few buckets.
 */
export function granularityFor(windowSec: number): Granularity {
  // GRANULARITIES_SEC is ascending, so the last size that fits is the largest.
  let g: Granularity = GRANULARITIES_SEC[0];
  for (const size of GRANULARITIES_SEC) if (size <= windowSec / 24) g = size;
  return g;
}

/** The most a window of `windowSec` can be cut short at its old edge, in seconds (see countInWindow). */
export function errorBoundSec(windowSec: number): number {
  return granularityFor(windowSec);
}

/**
 * Impressions in one scope's window ending at `nowSec`: the lifetime count when `windowSec` is null, else the
 * sum of the buckets of g = granularityFor(windowSec) numbered floor((nowSec - windowSec) / g) + 1 through
 * floor(nowSec / g).
 *
 * The window is (nowSec - windowSec, nowSec]. Buckets cannot be split, so the bucket holding the old edge
 * nowSec - windowSec is left out whole: an impression at t (t <= nowSec) is counted iff
 * floor(t / g) > floor((nowSec - windowSec) / g), i.e. iff t >= s with s = g * (floor((nowSec - windowSec) / g) + 1)
 * and nowSec - windowSec < s <= nowSec - windowSec + g. Hence:
 * - no impression at or before nowSec - windowSec is ever counted (the count never exceeds the true count);
 * - every impression in [nowSec - windowSec + g, nowSec] is counted;
 * - impressions in (nowSec - windowSec, s) are missed: a band shorter than g seconds (at most g - 1 whole
 *   seconds), i.e. under 1/24 of the window for windows of 24 min and longer.
 * So the count may be low, never high, by at most the impressions in that band: a cap errs toward allowing,
 * and is exact for [s, nowSec], which spans at least windowSec - g seconds (errorBoundSec). Buckets after
 * nowSec's are not read, so an impression stamped ahead of the clock counts once it is in nowSec's bucket.
 */
export function countInWindow(
  counters: Counters | CounterIndex,
  scope: string,
  windowSec: number | null,
  nowSec: number,
): number {
  const counts = indexOf(counters).byScope.get(scope);
  if (counts === undefined) return 0;
  if (windowSec === null) return counts.lifetime;
  const g = granularityFor(windowSec);
  const buckets = counts.buckets.get(g);
  if (buckets === undefined) return 0;
  const edge = Math.floor((nowSec - windowSec) / g);
  const last = Math.floor(nowSec / g);
  let sum = 0;
  for (let i = 0; i < buckets.length; i += 2) {
    const b = buckets[i] as number;
    if (b > edge && b <= last) sum += buckets[i + 1] as number;
  }
  return sum;
}

/** One scope's counts: its lifetime total and, per granularity, flat [bucket, count, bucket, count, ...]. */
interface ScopeCounts {
  lifetime: number;
  readonly buckets: Map<number, number[]>;
}

/**
 * Counters indexed by scope: built once per evaluation (or per cached read), a window is then a pass over the
 * few buckets the person has, not a probe for every bucket the window spans.
 */
export class CounterIndex {
  readonly byScope = new Map<string, ScopeCounts>();

  constructor(counters: Counters) {
    for (const [field, count] of counters) {
      const last = field.lastIndexOf("|");
      const tail = field.slice(last + 1);
      if (tail === "L") {
        scopeOf(this.byScope, field.slice(0, last)).lifetime = count;
        continue;
      }
      const mid = field.lastIndexOf("|", last - 1);
      if (mid < 0) continue;
      const g = Number(field.slice(mid + 1, last));
      const b = Number(tail);
      if (!Number.isInteger(g) || !Number.isInteger(b)) continue;
      const counts = scopeOf(this.byScope, field.slice(0, mid));
      const list = counts.buckets.get(g);
      if (list === undefined) counts.buckets.set(g, [b, count]);
      else list.push(b, count);
    }
  }

  #campaigns: Set<string> | null = null;

  /** Campaign ids the person has any count for: only their rules can cap. */
  campaigns(): ReadonlySet<string> {
    if (this.#campaigns === null) {
      this.#campaigns = new Set();
      for (const scope of this.byScope.keys()) this.#campaigns.add(scope.slice(0, scope.indexOf("|")));
    }
    return this.#campaigns;
  }
}

export function indexOf(counters: Counters | CounterIndex): CounterIndex {
  return counters instanceof CounterIndex ? counters : new CounterIndex(counters);
}

function scopeOf(index: Map<string, ScopeCounts>, scope: string): ScopeCounts {
  let counts = index.get(scope);
  if (counts === undefined) {
    counts = { lifetime: 0, buckets: new Map() };
    index.set(scope, counts);
  }
  return counts;
}

export interface CapState {
  /** True when no impression is left in some window of the rule. */
  readonly capped: boolean;
  /** Impressions still allowed: the least, over the rule's windows, of max minus the count, at least 0. */
  readonly remaining: number;
}

/** Whether one rule caps, given the person's counters. The tightest window binds. */
export function evaluateRule(rule: CapRule, counters: Counters | CounterIndex, nowSec: number): CapState {
  const index = indexOf(counters);
  const scope = scopeKey(rule);
  let remaining = Number.POSITIVE_INFINITY;
  for (const w of rule.windows) {
    remaining = Math.min(remaining, w.max - countInWindow(index, scope, w.windowSec, nowSec));
  }
  remaining = Math.max(0, remaining);
  return { capped: remaining === 0, remaining };
}

/** Two states for the same key (rules should be one per scope): the tighter one wins. */
function tighter(a: CapState | undefined, b: CapState): CapState {
  return a === undefined || b.remaining < a.remaining ? b : a;
}

/**
 * Every rule's state, keyed by scopeKey. Line-item and creative rules cap only their line item or creative,
 * so a bidder looks up the scopes of what it is about to serve.
 */
export function evaluateScopes(
  rules: readonly CapRule[],
  counters: Counters | CounterIndex,
  nowSec: number,
): Map<string, CapState> {
  const index = indexOf(counters);
  const out = new Map<string, CapState>();
  for (const rule of rules) {
    const key = scopeKey(rule);
    out.set(key, tighter(out.get(key), evaluateRule(rule, index, nowSec)));
  }
  return out;
}

/**
 * Campaign-level states by campaign id. Only a rule without line item and creative caps a whole campaign;
 * a capped line item or creative leaves the campaign's other line items and creatives servable, so those rules
 * are not folded in here (see evaluateScopes). Campaigns without a campaign-level rule are absent.
 */
export function evaluateCampaigns(
  rules: readonly CapRule[],
  counters: Counters | CounterIndex,
  nowSec: number,
): Map<string, CapState> {
  const index = indexOf(counters);
  const out = new Map<string, CapState>();
  for (const rule of rules) {
    if (rule.lineItem !== null || rule.creative !== null) continue;
    out.set(rule.campaign, tighter(out.get(rule.campaign), evaluateRule(rule, index, nowSec)));
  }
  return out;
}

const BUCKET_RE = /^(?:0|[1-9]\d*)$/;

/** True for `campaign|lineItem|creative` the way impressionScopes writes it. */
function isScope(campaign: string, lineItem: string, creative: string): boolean {
  return (
    CAP_ID_RE.test(campaign) &&
    (lineItem === "" || CAP_ID_RE.test(lineItem)) &&
    (creative === "" || CAP_ID_RE.test(creative))
  );
}

/**
 * The fields a store should delete at `nowSec`: buckets that ended at least their granularity's RETENTION_SEC
 * ago (bucket end <= nowSec - retention), and fields not in the counters.ts format, which no read would ever
 * sum. Lifetime fields are kept. Retention outlasts every window that reads a granularity (see RETENTION_SEC),
 * so no bucket countInWindow reads is returned.
 */
export function pruneFields(fields: Iterable<string>, nowSec: number): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const [campaign = "", lineItem = "", creative = "", kind = "", bucket, ...rest] = field.split("|");
    if (rest.length > 0 || !isScope(campaign, lineItem, creative)) {
      out.push(field);
      continue;
    }
    if (bucket === undefined) {
      if (kind !== "L") out.push(field);
      continue;
    }
    const g = GRANULARITIES_SEC.find((size) => String(size) === kind);
    const b = Number(bucket);
    if (g === undefined || !BUCKET_RE.test(bucket) || !Number.isSafeInteger(b)) {
      out.push(field);
      continue;
    }
    if ((b + 1) * g <= nowSec - RETENTION_SEC[g]) out.push(field);
  }
  return out;
}
