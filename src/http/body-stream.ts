// The body of a "stream" route as a Readable, fed by either server: bounded by a byte limit, and with
// backpressure, so that a slow handler pauses the client's socket instead of buffering the upload in memory;
// and with an idle timeout, so that a client trickling its body cannot hold a stream slot for long.
import { Readable } from "node:stream";
import { ApiError } from "../errors.ts";

/** Pausing and resuming the transport's reads; both are called only while it may still be read. */
export interface BodySource {
  pause(): void;
  resume(): void;
  /** The client sent nothing for the idle time (the stream is already destroyed): answer 408 and close. */
  idle?(): void;
}

/**
 * What the stream buffers before it pauses the socket: a few uWS receive buffers (512 KiB each), so that
 * a handler keeping up never causes a pause/resume pair per chunk.
 */
const HIGH_WATER_MARK = 1024 * 1024;

export class BodyStream extends Readable {
  #received = 0;
  #complete = false;
  #paused = false;
  #abortError: Error | null = null;
  /** When data last arrived, or the socket was last resumed: waiting on a slow handler is not idling. */
  #lastActive = Date.now();
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limit: number,
    private readonly source: BodySource,
    /** Longest wait for the next chunk (STREAM_IDLE_TIMEOUT_MS); 0: none. */
    private readonly idleMs = 0,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
    // One timer per stream, re-armed when it fires, rather than one per chunk.
    if (idleMs > 0) this.#idleTimer = setTimeout(this.#checkIdle, idleMs);
  }

  readonly #checkIdle = (): void => {
    this.#idleTimer = null;
    if (this.#complete || this.destroyed) return;
    const quiet = this.#paused ? 0 : Date.now() - this.#lastActive;
    if (quiet < this.idleMs) {
      this.#idleTimer = setTimeout(this.#checkIdle, this.idleMs - quiet);
      return;
    }
    this.destroy(new ApiError("AUD_ERR_REQUEST_TIMEOUT", `no request body data for ${this.idleMs} ms`));
    this.source.idle?.();
  };

  #stopIdleTimer(): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** One chunk, owned by the stream from now on; false when it crosses the limit (the stream is then destroyed). */
  feed(chunk: Buffer): boolean {
    if (this.destroyed) return true;
    this.#lastActive = Date.now();
    this.#received += chunk.length;
    if (this.#received > this.limit) {
      this.destroy(new ApiError("AUD_ERR_BODY_TOO_LARGE", `request body exceeds ${this.limit} bytes`));
      return false;
    }
    if (!this.push(chunk) && !this.#paused) {
      this.#paused = true;
      this.source.pause();
    }
    return true;
  }

  /** The last chunk was fed. */
  receivedAll(): void {
    this.#complete = true;
    this.#stopIdleTimer();
    if (!this.destroyed) this.push(null);
    // An ended stream never calls _read again: a pause from the last chunk would stall the connection's
    // next request.
    this.release();
  }

  /** Resumes the transport if backpressure paused it: the handler reads on, or the stream is done with it. */
  release(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#lastActive = Date.now();
    this.source.resume();
  }

  /** The client went away mid-body: whoever reads gets an error rather than a silently short body. */
  abort(): void {
    if (this.#complete || this.destroyed) return;
    this.#abortError = new Error("the client closed the connection before the whole body arrived");
    this.destroy(this.#abortError);
  }

  /** Whether the last chunk arrived: an answer given before that closes the connection (the rest is unread). */
  get complete(): boolean {
    return this.#complete;
  }

  /** Whether `err` is the one abort() destroyed the stream with: a handler rejecting with it is no bug. */
  isAbort(err: unknown): boolean {
    return err !== null && err === this.#abortError;
  }

  override _read(): void {
    this.release();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#stopIdleTimer();
    cb(err);
  }
}
