// How many requests are being worked on, and whether the instance is draining: the bound that sheds load
// instead of queueing it, and the state graceful shutdown and /readyz read. Transport-neutral: it gives each
// route a RouteAdmission that both servers ask as a request arrives, before any body is read or allocated.
// Streamed routes (uploads, event batches) have their own, smaller bound: however slowly their clients send,
// they never take the bid path's slots.
import { ApiError } from "../errors.ts";
import type { HttpAnswer, HttpRequestData, Route, RouteAdmission } from "../http/http-types.ts";
import { errorAnswer } from "../http/responses.ts";

export interface AdmissionOptions {
  /** Requests worked on at once (streamed ones aside); beyond it, answered at once with `shedStatus`. */
  readonly maxInFlight: number;
  /** Streamed requests worked on at once (MAX_STREAMS_IN_FLIGHT); 8 when not given. */
  readonly maxStreamsInFlight?: number;
  /** 204 (no content: a bidder simply does not bid) or 503 with Retry-After (others retry). */
  readonly shedStatus: 204 | 503;
}

export class Admission {
  /** Requests of buffered and bodiless routes in flight. */
  inFlight = 0;
  /** Requests of "stream" routes in flight. */
  streamsInFlight = 0;
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

  /** Gives the routes their admission (but not those named in `exempt`, such as the health routes). */
  guard(routes: readonly Route[], exempt: ReadonlySet<string>): Route[] {
    const shedAnswer: HttpAnswer =
      this.opts.shedStatus === 204
        ? { status: 204, contentType: "text/plain", body: "" }
        : errorAnswer(new ApiError("AUD_ERR_OVERLOADED"));
    const shed = (_req: HttpRequestData): HttpAnswer => shedAnswer;
    const maxStreams = this.opts.maxStreamsInFlight ?? 8;
    // Plain objects of closures, built once: the servers and the metrics wrapper copy them freely.
    const requests: RouteAdmission = {
      enter: () => {
        if (this.inFlight >= this.opts.maxInFlight) return this.#refuse();
        this.inFlight++;
        return true;
      },
      leave: () => {
        this.inFlight--;
        this.#settled();
      },
      shed,
    };
    const streams: RouteAdmission = {
      enter: () => {
        if (this.streamsInFlight >= maxStreams) return this.#refuse();
        this.streamsInFlight++;
        return true;
      },
      leave: () => {
        this.streamsInFlight--;
        this.#settled();
      },
      shed,
    };
    return routes.map((r) =>
      exempt.has(r.path) ? r : { ...r, admission: r.body === "stream" ? streams : requests },
    );
  }

  /** Resolves once nothing is in flight, or after `ms`, whichever comes first; true when drained. */
  idle(ms: number): Promise<boolean> {
    if (this.inFlight === 0 && this.streamsInFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #refuse(): false {
    this.shed++;
    this.onShed();
    return false;
  }

  #settled(): void {
    if (this.inFlight === 0 && this.streamsInFlight === 0) for (const f of this.#idle.splice(0)) f();
  }
}
