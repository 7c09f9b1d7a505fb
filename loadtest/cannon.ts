// One autocannon run that rotates through pre-built requests and keeps its own sub-millisecond latency histogram.
import autocannon from "autocannon";

/** One request built once up front: its complete bytes, and its parts for autocannon's own (fallback) path. */
export interface PrebuiltRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly body: Buffer | null;
  readonly requestBuffer: Buffer;
}

/** `POST <path>` of each JSON body, with the headers a bidder sends. */
export function postRequests(url: string, path: string, bodies: readonly Buffer[]): PrebuiltRequest[] {
  const host = new URL(url).host;
  return bodies.map((body) => ({
    method: "POST",
    path,
    body,
    requestBuffer: Buffer.concat([
      Buffer.from(
        `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n` +
          `content-type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
      body,
    ]),
  }));
}

/** `GET <path>` of each path (query string included). */
export function getRequests(url: string, paths: readonly string[]): PrebuiltRequest[] {
  const host = new URL(url).host;
  return paths.map((path) => ({
    method: "GET",
    path,
    body: null,
    requestBuffer: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`),
  }));
}

/**
 * A pool of pre-built requests and the position of the next one to send. Successive runs against the same
 * feed go on where the previous one stopped, so a pool of unique requests (impression ids) is never sent
 * twice until it wraps around; `repeats` says how many were.
 */
export class RequestFeed {
  #next = 0;
  constructor(readonly requests: readonly PrebuiltRequest[]) {
    if (requests.length === 0) throw new Error("a request feed needs at least one request");
  }

  take(): PrebuiltRequest {
    return this.requests[this.#next++ % this.requests.length] as PrebuiltRequest;
  }

  /** Requests taken so far. */
  get taken(): number {
    return this.#next;
  }

  /** Requests taken beyond the end of the pool: sent a second time (or more). */
  get repeats(): number {
    return Math.max(0, this.#next - this.requests.length);
  }
}

export interface LoadRun {
  readonly url: string;
  readonly feed: RequestFeed;
  readonly connections: number;
  /** Seconds to run; ignored when `amount` is given. */
  readonly durationS?: number;
  /** Total requests to send (e.g. once through the bodies to warm a cache). */
  readonly amount?: number;
}

/** Width of a latency histogram bucket. */
const BUCKET_MS = 0.01;

/** What one or more runs against a server measured, added up (rounds of the same scenario merge here). */
export class LoadStats {
  /** Latency histogram: 10 µs buckets up to 5 s; anything slower lands in the last one. */
  readonly hist = new Uint32Array(500_000);
  responses = 0;
  non2xx = 0;
  /** Responses by HTTP status. */
  readonly statuses = new Map<number, number>();
  errors = 0;
  timeouts = 0;
  seconds = 0;
  /** Whether every connection sent the pre-built requests (false: autocannon rebuilt each one). */
  prebuilt = true;

  record(ms: number, status: number): void {
    const b = Math.min(this.hist.length - 1, Math.floor(ms / BUCKET_MS));
    this.hist[b] = (this.hist[b] as number) + 1;
    this.responses++;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  /** The latency (ms) below which a share q of the responses came. */
  percentile(q: number): number {
    if (this.responses === 0) return 0;
    const rank = Math.ceil(this.responses * q);
    let seen = 0;
    for (let b = 0; b < this.hist.length; b++) {
      seen += this.hist[b] as number;
      if (seen >= rank) return (b + 1) * BUCKET_MS;
    }
    return this.hist.length * BUCKET_MS;
  }

  summary(): LoadResult {
    return {
      rps: this.seconds > 0 ? this.responses / this.seconds : 0,
      responses: this.responses,
      p50: this.percentile(0.5),
      p975: this.percentile(0.975),
      p99: this.percentile(0.99),
      non2xx: this.non2xx,
      statuses: new Map(this.statuses),
      errors: this.errors,
      timeouts: this.timeouts,
      seconds: this.seconds,
      prebuilt: this.prebuilt,
    };
  }
}

export interface LoadResult {
  /** Responses per second of wall time. */
  readonly rps: number;
  readonly responses: number;
  readonly p50: number;
  readonly p975: number;
  readonly p99: number;
  readonly non2xx: number;
  /** Responses by HTTP status. */
  readonly statuses: ReadonlyMap<number, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly seconds: number;
  readonly prebuilt: boolean;
}

/** The part of autocannon's per-connection request iterator (lib/requestIterator.js, v8) used below. */
interface RequestIterator {
  currentRequest: { requestBuffer: Buffer };
  resetted: boolean;
  nextRequest: () => unknown;
}

/**
 * Makes a connection take the next complete HTTP request (headers and body, built once up front) from `take`.
 * autocannon's own per-request rebuild (setupRequest) costs about a third of the load generator's CPU, which on a
 * small machine caps the figures. Where its internals differ, the connection keeps the setupRequest path.
 */
function feedRaw(client: autocannon.Client, take: () => { requestBuffer: Buffer }): boolean {
  const it = (client as unknown as { requestIterator?: Partial<RequestIterator> }).requestIterator;
  if (it === undefined || typeof it.nextRequest !== "function" || typeof it.currentRequest !== "object") {
    return false;
  }
  const iterator = it as RequestIterator;
  iterator.currentRequest = take();
  iterator.nextRequest = () => {
    iterator.resetted = false;
    iterator.currentRequest = take();
    return iterator.currentRequest;
  };
  return true;
}

/** One autocannon run through `run.feed`; its responses, latencies and errors are added to `into`. */
export function runLoad(run: LoadRun, into: LoadStats = new LoadStats()): Promise<LoadStats> {
  const { feed } = run;
  const take = (): PrebuiltRequest => feed.take();
  const first = feed.requests[0] as PrebuiltRequest;
  let fed = 0;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: run.url,
        connections: run.connections,
        pipelining: 1,
        ...(run.amount !== undefined ? { amount: run.amount } : { duration: run.durationS ?? 10 }),
        timeout: 10,
        setupClient: (client) => {
          if (feedRaw(client, take)) fed++;
        },
        requests: [
          {
            method: first.method,
            path: first.path,
            // Used only where feedRaw could not take over; the same shared cursor through the pool.
            setupRequest: (req) => {
              const r = take();
              req.method = r.method;
              req.path = r.path;
              if (r.body !== null) {
                req.body = r.body;
                req.headers = { "content-type": "application/json" };
              }
              return req;
            },
          },
        ],
      },
      (err, result) => {
        if (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        into.seconds += (performance.now() - started) / 1000;
        into.non2xx += result.non2xx;
        into.errors += result.errors;
        into.timeouts += result.timeouts;
        if (fed !== run.connections) into.prebuilt = false;
        resolve(into);
      },
    );
    instance.on("response", (_client, status: number, _bytes, ms: number) => into.record(ms, status));
  });
}
