// How many requests are being worked on, and whether the instance is draining: the bound that sheds load
// instead of queueing it, and the state graceful shutdown and /readyz read. Transport-neutral: it wraps the
// route handlers, so uWebSockets.js and node:http shed alike.
import { ApiError } from "../errors.ts";
import { type HttpAnswer, type HttpRequestData, type Route, runAndSettle } from "../http/http-types.ts";
import { errorAnswer } from "../http/responses.ts";

export interface AdmissionOptions {
  /** Requests worked on at once; beyond it, answered at once with `shedStatus`. */
  readonly maxInFlight: number;
  /** 204 (no content: a bidder simply does not bid) or 503 with Retry-After (others retry). */
  readonly shedStatus: 204 | 503;
}

export class Admission {
  inFlight = 0;
  /** Set by graceful shutdown: /readyz answers 503 so that a load balancer drains the instance. */
  draining = false;
  /** Lifetime count of shed requests (for /healthz). */
  shed = 0;
  readonly #idle: (() => void)[] = [];

  constructor(
    readonly opts: AdmissionOptions,
    /** Told of each shed request (the status page counts them per second). */
    readonly onShed: () => void = () => {},
  ) {}

  /** Wraps the handlers of `routes` (but not those named in `exempt`, such as the health routes). */
  guard(routes: readonly Route[], exempt: ReadonlySet<string>): Route[] {
    const shedAnswer: HttpAnswer =
      this.opts.shedStatus === 204
        ? { status: 204, contentType: "text/plain", body: "" }
        : errorAnswer(new ApiError("AUD_ERR_OVERLOADED"));
    return routes.map((r) => {
      if (exempt.has(r.path)) return r;
      const inner = r.handler;
      const handler = (req: HttpRequestData): HttpAnswer | Promise<HttpAnswer> => {
        if (this.inFlight >= this.opts.maxInFlight) {
          this.shed++;
          this.onShed();
          return shedAnswer;
        }
        this.inFlight++;
        return runAndSettle(inner, req, this.#doneOne);
      };
      return { ...r, handler };
    });
  }

  /** Resolves once nothing is in flight, or after `ms`, whichever comes first; true when drained. */
  idle(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  readonly #doneOne = (): void => this.#done();

  #done(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const f of this.#idle.splice(0)) f();
  }
}
