// The shape of a person's impression counters, shared by the stores (which write and read them) and the
// window arithmetic (which sums them). Counts live in time buckets of fixed sizes so that a sliding window
// is a sum of buckets, off by at most one bucket at its old edge.
//
// Only what a rule reads is written (cap-windows.ts counterWrite): an event for a scope without a cap rule writes nothing, a
// scope writes its lifetime field only when a rule has a lifetime window, and per granularity g it uses, only
// the bucket of g. Buckets are pruned as they are written, without reading the whole hash: per (scope, g)
// one mark field `<scope>|<g>|lo` holds "<lo> <hi>", every bucket below lo already deleted and none above
// hi ever written. A write whose first live bucket (`lo` below) moved past the mark deletes the bucket
// numbers from the old lo up to min(new lo - 1, hi), then moves the mark: each bucket number is passed over
// once in the life of the hash, and the span is at most the scope's longest window of g over g (+ a few
// buckets), so no write does more than that however hostile the events. Both stores implement these rules
// (the contract suite runs them alike).

/** Bucket sizes in seconds. A window uses the largest size that is at most 1/24 of it (see cap-windows.ts). */
export const GRANULARITIES_SEC = [60, 3_600, 86_400] as const;
export type Granularity = (typeof GRANULARITIES_SEC)[number];

/**
 * One person's counters, as read from the store: field -> count. Fields:
 * - `<scope>|L`              lifetime count
 * - `<scope>|<g>|<bucket>`   count in bucket number `bucket` (= floor(ts / g)) of granularity g
 * where `<scope>` is `campaign|lineItem|creative` (cap-rule.ts scopeKey), empty parts for absent ones.
 */
export type Counters = ReadonlyMap<string, number>;

/** Scopes an impression counts toward: the campaign, and its line item and creative when given. */
export function impressionScopes(
  campaign: string,
  lineItem: string | null,
  creative: string | null,
): string[] {
  const scopes = [`${campaign}||`];
  if (lineItem !== null) scopes.push(`${campaign}|${lineItem}|`);
  if (lineItem !== null && creative !== null) scopes.push(`${campaign}|${lineItem}|${creative}`);
  if (lineItem === null && creative !== null) scopes.push(`${campaign}||${creative}`);
  return scopes;
}

/**
 * Every counter field of one scope at `tsSec`, lifetime and each granularity's bucket, whatever the rules
 * read (test fixtures build counters with it; the stores write counterWrite's subset).
 */
export function fieldsFor(scope: string, tsSec: number): string[] {
  const out = [`${scope}|L`];
  for (const g of GRANULARITIES_SEC) out.push(`${scope}|${g}|${Math.floor(tsSec / g)}`);
  return out;
}

/** The mark field of one (scope, granularity): "<lo> <hi>" (see the top of this file); reads ignore it. */
export const MARK_SUFFIX = "lo";
/** Most fields one person's counter hash may hold: an event that would add more is not counted. */
export const MAX_COUNTER_FIELDS = 4_096;
/**
 * Most buckets a first write of a (scope, g) without a mark sweeps below its first live bucket: a hash
 * written before marks existed, or counters merged from a linked ID, may hold buckets there.
 */
export const SWEEP_SLACK_BUCKETS = 2;
/** More than an event's `ts` may be ahead of the clock (impression-event.ts MAX_FUTURE_SEC): buckets up to here exist. */
export const FUTURE_SLACK_SEC = 600;
/** Most impression ids remembered per person (dedup markers): past it, the oldest go. */
export const MAX_MARKERS = 10_000;
/** Most notice tokens with uses held per person at once; past it, lapsed ones are swept, then events refused. */
export const MAX_NOTICE_TOKENS = 1_024;
