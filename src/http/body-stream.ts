// The body of a "stream" route as a Readable, fed by either server: bounded by a byte limit, and with
// backpressure, so that a slow handler pauses the client's socket instead of buffering the upload in memory.
import { Readable } from "node:stream";
import { ApiError } from "../errors.ts";

/** Pausing and resuming the transport's reads; both are called only while it may still be read. */
export interface BodySource {
  pause(): void;
  resume(): void;
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

  constructor(
    private readonly limit: number,
    private readonly source: BodySource,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
  }

  /** One chunk, owned by the stream from now on; false when it crosses the limit (the stream is then destroyed). */
  feed(chunk: Buffer): boolean {
    if (this.destroyed) return true;
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
    if (!this.destroyed) this.push(null);
    // An ended stream never calls _read again: a pause from the last chunk would stall the connection's
    // next request.
    this.release();
  }

  /** Resumes the transport if backpressure paused it: the handler reads on, or the stream is done with it. */
  release(): void {
    if (!this.#paused) return;
    this.#paused = false;
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
}
