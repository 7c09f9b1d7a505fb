// The answer deadline of one bid-time request: the configured budget, or less when the request's own tmax
// (OpenRTB 2.6 §3.2.1, the exchange's whole auction budget in ms) minus a margin for the rest of the bid
// leaves less.

/** Milliseconds the request may wait for the store. */
export function deadlineMs(tmax: unknown, budgetMs: number, marginMs: number): number {
  if (typeof tmax !== "number" || !Number.isFinite(tmax) || tmax <= 0) return budgetMs;
  return Math.max(1, Math.min(budgetMs, tmax - marginMs));
}

/**
 * Settles with `work`, or with `fallback()` once `ms` have passed, whichever comes first. The work goes on
 * either way (a late store answer still fills the cache).
 *
 * When the timer fires, the fallback waits for the end of that turn of the event loop (setImmediate): timers
 * run before the loop reads its sockets, so on a busy process a store answer that arrived in time can be
 * sitting unread when the timer fires. Read first, it settles `work` and the fallback is never used; an
 * answer only degrades when the store has not answered.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => resolve(fallback())), ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
