// The fixed-rate schedule of `audience loadtest --rate N`, and the latency measured against it.

/**
 * Request k of a fixed-rate run is due at `startMs + k * 1000 / rate`, whether or not a connection is free then.
 * Its latency counts from that due time, not from when it actually left: when the service stalls and every
 * connection waits on it, the requests that came due meanwhile leave late, and that wait is part of what a caller
 * sending at this rate sees. Counting from the actual send (coordinated omission) hides it: the generator
 * politely stops sending while the service is stuck, and a stall of a second shows as one slow request.
 */
export class FixedRateSchedule {
  /** Requests handed out so far: the next one is request `released`. */
  released = 0;

  constructor(
    readonly ratePerS: number,
    readonly startMs: number,
  ) {}

  /** When request k is due. */
  dueMs(k: number): number {
    return this.startMs + (k * 1000) / this.ratePerS;
  }

  /** Requests due by `nowMs` and not handed out yet. */
  dueAt(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    // Request k is due once k * 1000 / rate <= elapsed: requests 0 .. floor(elapsed * rate / 1000).
    const due = Math.floor(((nowMs - this.startMs) * this.ratePerS) / 1000) + 1;
    return Math.max(0, due - this.released);
  }

  /** Hands out the next request: when it was due. */
  next(): number {
    return this.dueMs(this.released++);
  }
}

/** One request of a fixed-rate run, by the clock of the load generator (ms). */
export interface ScheduledTimes {
  /** When the schedule made it due. */
  readonly dueMs: number;
  /** Since when the connection it left on had been free (its previous answer, or its connection). */
  readonly freeSinceMs: number;
  /** When it was written to the connection. */
  readonly sentMs: number;
  readonly answeredMs: number;
}

/**
 * Its latency against the schedule: the wait for a free connection, from its due time (none when a connection was
 * already free), plus its time on the wire. The generator hands due requests to the connection free the longest,
 * so `freeSinceMs` is when a perfectly punctual generator would have sent it, had it been later than its due
 * time. What the generator itself adds (it looks for due requests every millisecond, and at once after each
 * answer) is not counted: at a low rate that would be about half a millisecond on every request, which is not
 * the service's.
 */
export function latencyOnSchedule(t: ScheduledTimes): number {
  return t.answeredMs - t.sentMs + Math.max(0, t.freeSinceMs - t.dueMs);
}

/** How late the generator sent it: from when it could have left (due, and a connection free) to when it did. */
export function sendLagMs(t: ScheduledTimes): number {
  return Math.max(0, t.sentMs - Math.max(t.dueMs, t.freeSinceMs));
}
