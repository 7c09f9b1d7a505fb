// Latency histogram of the load test: whole microseconds, exact below 256 µs, within 1/128 above.

/** Values below this are counted in a bucket of their own. */
const EXACT_BELOW = 256;
/** Buckets per power of two above EXACT_BELOW: the relative width of a bucket is at most 1 / SUB. */
const SUB = 128;
const SUB_BITS = 7;
/** Longest latency told apart: about 71 minutes in µs (2^32); anything slower lands in the last bucket. */
const MAX_US = 2 ** 32 - 1;
const BUCKETS = EXACT_BELOW + (32 - SUB_BITS - 1) * SUB;

/** The bucket of a latency in whole µs. */
export function bucketOf(us: number): number {
  if (us < EXACT_BELOW) return Math.max(0, us);
  const v = Math.min(us, MAX_US);
  // v >> e keeps the top 8 bits of v (128..255); e counts the powers of two above 2^8.
  const e = 31 - Math.clz32(v) - SUB_BITS;
  return EXACT_BELOW + (e - 1) * SUB + (Math.floor(v / 2 ** e) - SUB);
}

/** The highest latency (µs) counted in a bucket: a percentile never reads lower than what was measured. */
export function highestOf(bucket: number): number {
  if (bucket < EXACT_BELOW) return bucket;
  const e = Math.floor((bucket - EXACT_BELOW) / SUB) + 1;
  const m = ((bucket - EXACT_BELOW) % SUB) + SUB;
  return (m + 1) * 2 ** e - 1;
}

/** The lowest latency (µs) counted in a bucket. */
export function lowestOf(bucket: number): number {
  if (bucket < EXACT_BELOW) return bucket;
  const e = Math.floor((bucket - EXACT_BELOW) / SUB) + 1;
  const m = ((bucket - EXACT_BELOW) % SUB) + SUB;
  return m * 2 ** e;
}

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  maxUs = 0;

  /** Records one latency given in milliseconds, rounded to the microsecond. */
  recordMs(ms: number): void {
    const us = Math.max(0, Math.round(ms * 1000));
    const b = bucketOf(us);
    this.counts[b] = (this.counts[b] as number) + 1;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  /**
   * The latency (µs) at or below which a share q of the values lie: nearest rank (the ceil(q * n)-th smallest),
   * read as the highest value of its bucket, and never above the largest value recorded.
   */
  percentileUs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b] as number;
      if (seen >= rank) return Math.min(highestOf(b), this.maxUs);
    }
    return this.maxUs;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxUs = 0;
  }

  /** Non-empty buckets, lowest first, as [lowest µs, highest µs, count]. */
  *buckets(): Generator<[number, number, number]> {
    for (let b = 0; b < BUCKETS; b++) {
      const n = this.counts[b] as number;
      if (n > 0) yield [lowestOf(b), highestOf(b), n];
    }
  }
}
