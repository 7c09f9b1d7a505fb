// Tells the other instances whose impression counters changed, so that their counter caches drop those people
// (invalidation-bus.ts, `counters`). Impressions arrive by the thousand per second: one message each would
// cost Redis a PUBLISH and every subscriber a parse per impression, so the people are collected and sent
// together, at most one message per COALESCE_MS unless MAX_WAITING people are waiting first.
import type { InvalidationBus } from "../profiles/invalidation-bus.ts";

/**
 * How long a changed person may wait to be announced. It adds to how stale another instance's `capped` can be
 * (on top of pub/sub's own sub-millisecond trip), and 25 ms is far below the time between an impression and
 * the same person's next bid; yet at 5,000 impressions a second it makes 40 messages a second of about 125
 * people each, instead of 5,000.
 */
export const COALESCE_MS = 25;
/** People per message at most (the bus's own split size): a full batch goes at once, without waiting. */
export const MAX_WAITING = 1_000;

export interface CounterChangeStats {
  /** Messages sent. */
  published: number;
  /** Messages the bus could not send: other instances then see those people after CAP_COUNTERS_CACHE_MS. */
  failed: number;
}

export class CounterChanges {
  readonly stats: CounterChangeStats = { published: 0, failed: 0 };
  readonly #bus: InvalidationBus;
  readonly #onError: (err: Error) => void;
  readonly #intervalMs: number;
  readonly #maxWaiting: number;
  /** A set: the same person's impressions within one interval make one entry. */
  #waiting = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  /** Sends not yet settled, so that close() can wait for them. */
  readonly #sending = new Set<Promise<void>>();

  constructor(
    bus: InvalidationBus,
    opts: { onError: (err: Error) => void; intervalMs?: number; maxWaiting?: number },
  ) {
    this.#bus = bus;
    this.#onError = opts.onError;
    this.#intervalMs = opts.intervalMs ?? COALESCE_MS;
    this.#maxWaiting = opts.maxWaiting ?? MAX_WAITING;
  }

  /** These people's counters changed: they are announced within the interval. Never throws. */
  add(keys: readonly string[]): void {
    for (const k of keys) this.#waiting.add(k);
    if (this.#waiting.size >= this.#maxWaiting) this.flush();
    else if (this.#timer === null && this.#waiting.size > 0) {
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      // Pending announcements never keep a stopping process alive: close() sends them.
      this.#timer.unref();
    }
  }

  /** Sends what is waiting now, as one message. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#waiting.size === 0) return;
    const keys = [...this.#waiting];
    this.#waiting = new Set();
    // The impressions are stored and acknowledged already: a failed send is counted and reported, not thrown.
    const sent = this.#bus.publish({ t: "counters", keys }).then(
      () => {
        this.stats.published++;
      },
      (err: unknown) => {
        this.stats.failed++;
        this.#onError(err instanceof Error ? err : new Error(String(err)));
      },
    );
    this.#sending.add(sent);
    void sent.finally(() => this.#sending.delete(sent));
  }

  /** Sends what is waiting and waits for every send: before the bus closes. */
  async close(): Promise<void> {
    this.flush();
    await Promise.all(this.#sending);
  }
}

/** A warning at most once per `intervalMs`, saying how many were left out since the last one. */
export function throttledWarning(
  warn: (fields: { err: string; suppressed: number }) => void,
  intervalMs: number,
  now: () => number,
): (err: Error) => void {
  let lastMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err) => {
    const t = now();
    if (t - lastMs < intervalMs) {
      suppressed++;
      return;
    }
    warn({ err: err.message, suppressed });
    lastMs = t;
    suppressed = 0;
  };
}
