// The timing loop of the micro-benchmarks: a batch of work run over and over for about `ms`, timed by the
// monotonic clock around whole batches (a clock read per item would weigh on items of a microsecond).

/** Nanoseconds per item: `batch` does some items and says how many, and runs until `ms` have passed. */
export function nsPerItem(ms: number, batch: () => number): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(Math.round(ms * 1e6));
  let t = t0;
  while (t < until) {
    n += batch();
    t = process.hrtime.bigint();
  }
  return Number(t - t0) / n;
}

/** The value at fraction `f` (0 = least, 0.5 = median, 1 = most) of the figures of the rounds. */
export function quantile(xs: readonly number[], f: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(f * (sorted.length - 1))] as number;
}
