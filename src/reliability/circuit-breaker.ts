// A circuit breaker around the store's bid-time reads. After `failures` failures in a row it opens: reads
// are not attempted (the caller answers from cache, degraded) until `openMs` have passed; then one read is
// let through as a probe, and its outcome closes the breaker or opens it again. A dead or paused Redis then
// costs each request nothing, instead of a command timeout each.

export const BREAKER_STATES = ["closed", "open", "half-open"] as const;

export type BreakerState = (typeof BREAKER_STATES)[number];

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failures: number;
  /**
   * ...and how long they must span, from the first of them, in ms (default 0). A stall of this process's
   * event loop (a garbage collection, a slot-map refresh) fires the timers of every command in flight at
   * once, replies waiting unread in the socket: a burst of timeouts within a millisecond that says nothing
   * of the store. A store that is down keeps failing for as long as it is down.
   */
  readonly spanMs?: number;
  /** How long it stays open before a probe. */
  readonly openMs: number;
  readonly now?: () => number;
  /**
   * Which failures count towards opening: those that cost the caller time (timeouts). Default: all. A
   * refused command (connection down) costs nothing, and on a Cluster counting them would let one dead
   * node's refusals degrade the answers every other node could give.
   */
  readonly costly?: (err: unknown) => boolean;
}

export class CircuitBreaker {
  #state: BreakerState = "closed";
  #failures = 0;
  /** When the current run of failures began. */
  #firstFailureAt = 0;
  #openUntil = 0;
  #probing = false;
  readonly #opts: BreakerOptions;
  readonly #now: () => number;
  /** Lifetime counts, for /healthz. */
  readonly stats = { opened: 0, rejected: 0 };

  constructor(opts: BreakerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.#state === "open" && this.#now() >= this.#openUntil) return "half-open";
    return this.#state;
  }

  /** Whether a read may go to the store now. In half-open state only one read (the probe) at a time. */
  allow(): boolean {
    if (this.#state === "closed") return true;
    if (this.#state === "open" && this.#now() < this.#openUntil) {
      this.stats.rejected++;
      return false;
    }
    if (this.#probing) {
      this.stats.rejected++;
      return false;
    }
    this.#state = "half-open";
    this.#probing = true;
    return true;
  }

  /** A read that allow() let through failed with `err`. */
  recordError(err: unknown): void {
    if (this.#opts.costly === undefined || this.#opts.costly(err)) this.record(false);
    // Not counted; a probe that was refused frees the slot for the next one.
    else this.#probing = false;
  }

  /** The outcome of a read that allow() let through. */
  record(ok: boolean): void {
    if (ok) {
      this.#failures = 0;
      this.#probing = false;
      this.#state = "closed";
      return;
    }
    const now = this.#now();
    if (this.#failures++ === 0) this.#firstFailureAt = now;
    if (
      this.#state === "half-open" ||
      (this.#failures >= this.#opts.failures && now - this.#firstFailureAt >= (this.#opts.spanMs ?? 0))
    ) {
      if (this.#state !== "open") this.stats.opened++;
      this.#state = "open";
      this.#probing = false;
      this.#openUntil = now + this.#opts.openMs;
    }
  }
}

/** A breaker that never opens: for the in-process store, which cannot fail. */
export const NEVER_OPEN = new CircuitBreaker({ failures: Number.POSITIVE_INFINITY, openMs: 0 });
