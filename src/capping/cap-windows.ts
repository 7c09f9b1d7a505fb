// Window arithmetic over a person's counters: how many impressions fall in a rule's windows, whether the rule
// caps, and what an impression writes and prunes (counterWrite). Pure: the clock is passed in as `nowSec`.
import { type CapRule, scopeKey } from "./cap-rule.ts";
import {
  type Counters,
  FUTURE_SLACK_SEC,
  GRANULARITIES_SEC,
  type Granularity,
  SWEEP_SLACK_BUCKETS,
} from "./counters.ts";

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
  // The count can change only when one of the two bucket numbers does: nowSec reaching the next bucket, or
  // the old edge leaving one.
  windowClock.changesAt = Math.min(windowClock.changesAt, (last + 1) * g, (edge + 1) * g + windowSec);
  let sum = 0;
  for (let i = 0; i < buckets.length; i += 2) {
    const b = buckets[i] as number;
    if (b > edge && b <= last) sum += buckets[i + 1] as number;
  }
  return sum;
}

/**
 * The earliest second at which a count taken since it was last reset may differ (countInWindow lowers it):
 * the same counters give the same counts until then.
 */
export const windowClock = { changesAt: Number.POSITIVE_INFINITY };

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

/** One (scope, granularity) of a write: its bucket, and the first bucket still read (older ones go). */
export interface BucketWrite {
  /** `<scope>|<g>|`: the bucket's field is prefix + bucket number, the mark's prefix + MARK_SUFFIX. */
  readonly prefix: string;
  /** floor(ts / g); written only when at or above lo and the stored mark. */
  readonly bucket: number;
  /**
   * The first bucket the scope's longest window of g can still read at `nowSec`, less one bucket of margin
   * for clocks of other instances a little behind: floor((nowSec - window) / g).
   */
  readonly lo: number;
  /**
   * How many buckets a (scope, g) spans at most: its window and the future slack in buckets, plus slack. A hash
   * without a mark may hold buckets this far below lo; a new mark's hi starts this far above it.
   */
  readonly span: number;
}

/** What one impression writes to its person's counter hash; null when it writes nothing at all. */
export interface CounterWrite {
  /** `<scope>|L` of the scopes with a lifetime window. */
  readonly lifetime: readonly string[];
  readonly buckets: readonly BucketWrite[];
}

/**
 * The counter writes of an impression at `tsSec` (seen at `nowSec`) under the rules `rulesOf` gives per
 * scope key: null when none of its scopes has a rule, or when every bucket it would write is already past
 * its retention and no lifetime window counts it (such an impression changes no cap).
 */
export function counterWrite(
  scopes: readonly string[],
  rulesOf: (scope: string) => readonly CapRule[],
  tsSec: number,
  nowSec: number,
): CounterWrite | null {
  const lifetime: string[] = [];
  const buckets: BucketWrite[] = [];
  let live = false;
  for (const scope of scopes) {
    const longest = new Map<Granularity, number>();
    let hasLifetime = false;
    for (const rule of rulesOf(scope)) {
      for (const w of rule.windows) {
        if (w.windowSec === null) hasLifetime = true;
        else {
          const g = granularityFor(w.windowSec);
          longest.set(g, Math.max(longest.get(g) ?? 0, w.windowSec));
        }
      }
    }
    if (hasLifetime) {
      lifetime.push(`${scope}|L`);
      live = true;
    }
    for (const [g, windowSec] of longest) {
      const lo = Math.floor((nowSec - windowSec) / g);
      const bucket = Math.floor(tsSec / g);
      if (bucket >= lo) live = true;
      buckets.push({
        prefix: `${scope}|${g}|`,
        bucket,
        lo,
        span: Math.ceil((windowSec + FUTURE_SLACK_SEC) / g) + SWEEP_SLACK_BUCKETS,
      });
    }
  }
  return live ? { lifetime, buckets } : null;
}
