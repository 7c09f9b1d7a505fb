// The body timeout of buffered requests (BODY_TIMEOUT_MS): one sweep timer per server over the requests still
// receiving their body, instead of a setTimeout set and cleared for every request (about 3% of the hot path's
// JavaScript time), and no clock read per request. A request joins the tail of a list unstamped; the next sweep
// stamps it with its own time, a bound its arrival is known to be before. So the list stays in arrival order,
// a late sweep (a busy event loop) can only make a timeout later, never earlier, and a sweep stops at the
// first request still in time.

/** A request waiting for its body: the list's links live on the request itself (no allocation per request). */
export interface BodyWait {
  /** A time it is known to have been waiting since; UNSTAMPED until the next sweep, -1 while not listed. */
  since: number;
  prev: BodyWait | null;
  next: BodyWait | null;
}

const UNSTAMPED = Number.POSITIVE_INFINITY;

/** Sweep period: a tenth of the timeout, between 10 ms and 250 ms. */
export function sweepPeriodMs(timeoutMs: number): number {
  return Math.min(250, Math.max(10, Math.floor(timeoutMs / 10)));
}

/**
 * Requests still receiving their body, oldest first. `expired` is called for each one whose body has not
 * arrived in time, after it has left the list. Guarantee: never before `timeoutMs` from the request's arrival,
 * and at most `timeoutMs` + 2 × the sweep period after it (it is stamped up to one period after it arrived, and
 * found expired up to one period late) while the timer fires on time.
 */
export class BodyDeadlines<T extends BodyWait> {
  readonly periodMs: number;
  #head: BodyWait | null = null;
  #tail: BodyWait | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly timeoutMs: number,
    readonly expired: (w: T) => void,
    readonly clock: () => number = () => performance.now(),
  ) {
    this.periodMs = sweepPeriodMs(timeoutMs);
  }

  /** Starts the sweep timer; it never keeps the process (or a worker thread) alive. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.sweep(), this.periodMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  add(w: T): void {
    w.since = UNSTAMPED;
    w.prev = this.#tail;
    w.next = null;
    if (this.#tail === null) this.#head = w;
    else this.#tail.next = w;
    this.#tail = w;
  }

  /** Takes a request off the list (its body arrived, it was answered, or its client went away); idempotent. */
  remove(w: T): void {
    if (w.since < 0) return;
    w.since = -1;
    if (w.prev === null) this.#head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this.#tail = w.prev;
    else w.next.prev = w.prev;
    w.prev = null;
    w.next = null;
  }

  /** Requests listed (for tests). */
  get size(): number {
    let n = 0;
    for (let w = this.#head; w !== null; w = w.next) n++;
    return n;
  }

  /**
   * Stamps the requests that joined since the last sweep (the tail of the list) with `now`, then expires every
   * request stamped at least the timeout ago: it arrived before its stamp, so it has waited at least that long.
   */
  sweep(now = this.clock()): void {
    for (let w = this.#tail; w !== null && w.since === UNSTAMPED; w = w.prev) w.since = now;
    const limit = now - this.timeoutMs;
    for (let w = this.#head; w !== null && w.since <= limit; w = this.#head) {
      this.remove(w as T);
      this.expired(w as T);
    }
  }
}
