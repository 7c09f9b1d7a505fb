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
  /**
   * Requests per second to send at (the fixed-rate run), instead of as fast as the server answers; the
   * `connections` are the most requests in flight. Latency counts from the send: a request that came due while
   * every connection was busy waits unmeasured (the rate achieved then falls short, and the report shows it).
   */
  readonly ratePerS?: number;
  /** A response header (lower case) whose responses are counted in `LoadStats.flagged`, e.g. x-audience-degraded. */
  readonly flagHeader?: string;
}

/**
 * How often a fixed-rate run hands out the requests that have come due. autocannon's own `overallRate` gives
 * each connection a quota per whole second, starts every connection's second at the same moment and sends the
 * quota back to back: at 80% of the flat-out rate that is flat-out load (every connection busy) for 0.8 s of
 * each second, then silence, so the latency it measures is the flat-out latency. A pacer that every
 * millisecond lets idle connections send what the rate has made due since the start sends the same rate as a
 * nearly even stream.
 */
const PACE_TICK_MS = 1;

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
  /** Responses that carried the run's `flagHeader`. */
  flagged = 0;
  /**
   * Whether a fixed-rate run was paced evenly (PACE_TICK_MS); false: autocannon's internals differed and it
   * sent each connection's quota of every second back to back (the latency is then the flat-out one).
   */
  evenPace = true;

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

/** The part of autocannon's client (lib/httpClient.js, v8) that its per-second rate limit works with. */
interface RateLimitedClient {
  rate: number;
  rateInterval: NodeJS.Timeout;
  reqsMadeThisSecond: number;
  paused: boolean;
  destroyed: boolean;
  _doRequest: () => void;
}

/**
 * Paces rate-limited connections (a quota of one request each) to `ratePerS` overall: every PACE_TICK_MS it
 * lets idle connections, in turn, send the requests that have come due since the start. Each client is added
 * once built (autocannon sets its one-second window timer after `setupClient`), and that timer is stopped.
 * Where autocannon's internals differ, the connection keeps the one-second window with its share of the rate
 * as its quota, and `add` returns false.
 */
class Pacer {
  readonly #clients: RateLimitedClient[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #started = performance.now();
  /** Requests sent or handed out so far; each connection's first goes at once. */
  #released = 0;
  #next = 0;

  constructor(private readonly ratePerS: number) {
    this.#timer = setInterval(() => this.#tick(), PACE_TICK_MS);
  }

  add(client: autocannon.Client, fallbackQuota: number): boolean {
    const c = client as unknown as Partial<RateLimitedClient>;
    if (typeof c._doRequest !== "function" || c.rateInterval === undefined || typeof c.rate !== "number") {
      (c as { rate: number }).rate = fallbackQuota;
      return false;
    }
    clearInterval(c.rateInterval);
    this.#clients.push(c as RateLimitedClient);
    this.#released++;
    return true;
  }

  #tick(): void {
    const n = this.#clients.length;
    let due = Math.floor(((performance.now() - this.#started) * this.ratePerS) / 1000) - this.#released;
    // One pass at most: what finds no idle connection stays due for the next tick.
    for (let k = 0; k < n && due > 0; k++) {
      const c = this.#clients[this.#next] as RateLimitedClient;
      this.#next = (this.#next + 1) % n;
      if (!c.paused || c.destroyed) continue;
      c.reqsMadeThisSecond = 0;
      c.paused = false;
      c._doRequest();
      this.#released++;
      due--;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Whether an HTTP parser's flat [name, value, ...] header list holds `name` (lower case). */
function hasHeader(headers: readonly string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]?.toLowerCase() === name) return true;
  return false;
}

/** One autocannon run through `run.feed`; its responses, latencies and errors are added to `into`. */
export function runLoad(run: LoadRun, into: LoadStats = new LoadStats()): Promise<LoadStats> {
  const { feed } = run;
  const take = (): PrebuiltRequest => feed.take();
  const first = feed.requests[0] as PrebuiltRequest;
  let fed = 0;
  const rate = run.ratePerS;
  const connections = run.connections;
  const pacer = rate === undefined ? null : new Pacer(rate);
  const flag = run.flagHeader;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: run.url,
        connections,
        pipelining: 1,
        ...(run.amount !== undefined ? { amount: run.amount } : { duration: run.durationS ?? 10 }),
        // Turns autocannon's rate limit on at one request per connection; the pacer hands out the rest.
        ...(rate !== undefined ? { overallRate: connections } : {}),
        timeout: 10,
        setupClient: (client) => {
          if (feedRaw(client, take)) fed++;
          if (flag !== undefined) {
            // autocannon v8 emits http-parser-js's header info ({headers: [name, value, ...]}), not its typed object.
            (client as unknown as NodeJS.EventEmitter).on("headers", (h: { headers?: string[] }) => {
              if (Array.isArray(h.headers) && hasHeader(h.headers, flag)) into.flagged++;
            });
          }
          if (pacer !== null && rate !== undefined) {
            const quota = Math.max(1, Math.round(rate / connections));
            queueMicrotask(() => {
              if (!pacer.add(client, quota)) into.evenPace = false;
            });
          }
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
        pacer?.stop();
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
