// The shape of a person's impression counters, shared by the stores (which write and read them) and the
// window arithmetic (which sums them). Counts live in time buckets of fixed sizes so that a sliding window
// is a sum of buckets, off by at most one bucket at its old edge.

/** Bucket sizes in seconds. A window uses the largest size that is at most 1/24 of it (see cap-windows.ts). */
export const GRANULARITIES_SEC = [60, 3_600, 86_400] as const;
export type Granularity = (typeof GRANULARITIES_SEC)[number];

/** How long buckets of each size are kept: long enough for the longest window that uses that size. */
export const RETENTION_SEC: Readonly<Record<Granularity, number>> = {
  60: 86_400, // windows under 24 h
  3600: 25 * 86_400, // windows from 24 h to 24 d
  86400: 91 * 86_400, // windows up to 90 d
};

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

/** The counter fields one impression at `tsSec` increments for one scope. */
export function fieldsFor(scope: string, tsSec: number): string[] {
  const out = [`${scope}|L`];
  for (const g of GRANULARITIES_SEC) out.push(`${scope}|${g}|${Math.floor(tsSec / g)}`);
  return out;
}
