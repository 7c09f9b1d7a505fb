// One run of `audience loadtest`: autocannon's connections, fed request by request, flat out or on a fixed schedule.
import autocannon from "autocannon";
import { type AnswerHeaders, AnswerTally } from "./answers.ts";
import type { BodyFactory } from "./bodies.ts";
import { LatencyHistogram } from "./histogram.ts";
import { FixedRateSchedule, latencyOnSchedule, sendLagMs } from "./schedule.ts";

export interface RunSettings {
  /** The target's origin: http(s)://host:port. */
  readonly origin: string;
  /** Path and query string of every request. */
  readonly path: string;
  readonly durationS: number;
  readonly connections: number;
  /** Requests per second on a fixed schedule; null: flat out, each connection sending as soon as answered. */
  readonly ratePerS: number | null;
  /** Extra request headers, e.g. an Authorization of a known caller. */
  readonly headers: readonly (readonly [string, string])[];
}

/** One second of the run (the last may be shorter), for the report's figures over time. */
export interface SecondSample {
  /** Seconds since the start at the end of this sample. */
  readonly atS: number;
  /** Seconds it covers. */
  readonly spanS: number;
  readonly answers: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Non-2xx answers and errors in this second. */
  readonly errors: number;
}

export interface LiveFigures {
  readonly elapsedS: number;
  /** Answers in the last second. */
  readonly perS: number;
  /** p99 of the run so far (µs), of the latency the run reports (from the schedule at a fixed rate). */
  readonly p99Us: number;
  /** Non-2xx answers and errors so far. */
  readonly errors: number;
}

export interface RunResult {
  readonly elapsedS: number;
  /** Requests written to a connection. */
  readonly sent: number;
  readonly tally: AnswerTally;
  /** Latency from when each request left. */
  readonly fromSend: LatencyHistogram;
  /** Latency against the fixed schedule (latencyOnSchedule); null when flat out. */
  readonly fromSchedule: LatencyHistogram | null;
  /** Fixed rate: how late the generator sent requests that could have left (not counted in the latency). */
  readonly sendLag: LatencyHistogram | null;
  readonly seconds: readonly SecondSample[];
  /** Connection errors and timeouts (autocannon's count; a timeout is also an error). */
  readonly errors: number;
  readonly timeouts: number;
  /** Requests whose connection the server closed before answering (also in `errors`). */
  readonly closed: number;
  /** Fixed rate: requests that came due while every connection was busy and were never sent before the end. */
  readonly notSent: number;
}

/** The parts of autocannon's per-connection client (lib/httpClient.js, 8.x) that the run drives. */
interface ClientInternals {
  requestIterator: { currentRequest: unknown; nextRequest: () => unknown; resetted: boolean };
  rate?: number;
  rateInterval?: NodeJS.Timeout;
  reqsMadeThisSecond: number;
  paused?: boolean;
  destroyed: boolean;
  pipelinedRequests: { size: () => number; clear: () => void };
  _doRequest: () => void;
  _connect: () => void;
}

function internalsOf(client: autocannon.Client, paced: boolean): ClientInternals {
  const c = client as unknown as Partial<ClientInternals>;
  const it = c.requestIterator;
  const ok =
    it !== undefined &&
    typeof it.nextRequest === "function" &&
    typeof c._doRequest === "function" &&
    typeof c._connect === "function" &&
    typeof c.pipelinedRequests?.size === "function" &&
    (!paced || typeof c.rate === "number");
  if (!ok) {
    throw new Error(
      "the installed autocannon is not the 8.x this command drives (its client's request iterator differs)",
    );
  }
  return c as ClientInternals;
}

/** How often a fixed-rate run looks for requests that came due while no connection was free. */
const PACE_TICK_MS = 1;
const SECOND_MS = 1000;

/** A connection of a fixed-rate run, and since when it has been free. */
interface Paced {
  readonly c: ClientInternals;
  freeSinceMs: number;
  /** In the queue of free connections. */
  queued: boolean;
}

/**
 * Drives one run. Every request is built when it leaves (a fresh body from the factory, so random IDs never
 * repeat) and carries its own times; autocannon hands each answer back to the request it answers
 * (`onResponse`, with status, body and headers), where its latency is counted and its body read.
 *
 * Fixed rate: autocannon's `overallRate` alone gives each connection a quota per whole second and sends the
 * quota back to back at the start of every second (flat-out bursts, then silence), and its own correction for
 * coordinated omission back-fills its histogram with an expected interval of ceil(1 / per-connection rate)
 * milliseconds, which is not the schedule. So the run asks for `overallRate` of one request per connection,
 * which turns autocannon's rate limit on, stops its per-second refill, and keeps the schedule itself
 * (FixedRateSchedule): every millisecond, and right after each answer, it hands the requests that have come due,
 * oldest first, to the connections free the longest, each request stamped with its due time and since when its
 * connection was free. Its latency is then counted against the schedule (latencyOnSchedule): a request that came
 * due while every connection was busy waiting on the service counts that wait, so a stall of the service shows
 * in every request it delayed, not in one.
 */
export function runLoad(
  settings: RunSettings,
  factory: BodyFactory,
  onSecond: (live: LiveFigures) => void,
): Promise<RunResult> {
  const url = new URL(settings.origin);
  const extra = settings.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const head = `POST ${settings.path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n${extra}content-type: application/json\r\n`;
  const rate = settings.ratePerS;
  const tally = new AnswerTally();
  const fromSend = new LatencyHistogram();
  const fromSchedule = rate === null ? null : new LatencyHistogram();
  const lag = rate === null ? null : new LatencyHistogram();
  const reported = fromSchedule ?? fromSend;
  const thisSecond = new LatencyHistogram();
  const seconds: SecondSample[] = [];
  let sent = 0;
  /** Connection errors, timeouts and requests lost to a closed connection, as they happen. */
  let errors = 0;
  let closed = 0;
  let secondErrors = 0;
  let lastErrorTotal = 0;
  const schedule = rate === null ? null : new FixedRateSchedule(rate, performance.now());
  /** Free connections of a fixed-rate run, the longest free first. */
  const free: Paced[] = [];
  const markFree = (p: Paced, now: number): void => {
    p.freeSinceMs = now;
    if (!p.queued) {
      p.queued = true;
      free.push(p);
    }
  };

  /** One request on the wire: its bytes and times; its answer comes back here. */
  class Outgoing {
    readonly requestBuffer: Buffer;
    constructor(
      readonly sentMs: number,
      readonly dueMs: number,
      readonly freeSinceMs: number,
      readonly paced: Paced | null,
    ) {
      const b = factory.next();
      const exchange = b.exchange === null ? "" : `x-exchange: ${b.exchange}\r\n`;
      const length = Buffer.byteLength(b.body);
      this.requestBuffer = Buffer.from(`${head}${exchange}content-length: ${length}\r\n\r\n${b.body}`);
      sent++;
    }

    /** Called by autocannon's request iterator (recordBody) when this request's answer is complete. */
    onResponse(status: number, body: string, _context: unknown, headers: AnswerHeaders): void {
      const now = performance.now();
      const wire = now - this.sentMs;
      fromSend.recordMs(wire);
      if (fromSchedule !== null && lag !== null && schedule !== null && this.paced !== null) {
        const times = {
          dueMs: this.dueMs,
          freeSinceMs: this.freeSinceMs,
          sentMs: this.sentMs,
          answeredMs: now,
        };
        const corrected = latencyOnSchedule(times);
        fromSchedule.recordMs(corrected);
        lag.recordMs(sendLagMs(times));
        thisSecond.recordMs(corrected);
        markFree(this.paced, now);
        // autocannon marks the connection paused right after this returns: give it what is due then.
        if (schedule.dueAt(now) > 0) queueMicrotask(tick);
      } else {
        thisSecond.recordMs(wire);
      }
      tally.record(status, body, headers);
      if (status < 200 || status > 299) secondErrors++;
    }
  }

  /** Hands due requests to free connections, oldest request to the longest free; what finds none stays due. */
  function tick(): void {
    if (schedule === null) return;
    const now = performance.now();
    let due = schedule.dueAt(now);
    while (due > 0 && free.length > 0) {
      const p = free.shift() as Paced;
      p.queued = false;
      const c = p.c;
      // autocannon marks a connection paused once its quota (one) is used and its answer is in.
      if (c.paused !== true || c.destroyed) continue;
      c.requestIterator.currentRequest = new Outgoing(now, schedule.next(), p.freeSinceMs, p);
      c.reqsMadeThisSecond = 0;
      c.paused = false;
      c._doRequest();
      due--;
    }
  }
  const pacer = schedule === null ? null : setInterval(tick, PACE_TICK_MS);

  const started = performance.now();
  /** Fixed rate: requests due with no connection free when autocannon last ticked, just before it stopped. */
  let backlog = 0;
  return new Promise<RunResult>((resolve, reject) => {
    let sampledAt = started;
    const sample = (now: number): SecondSample => {
      const errs = secondErrors + (errors - lastErrorTotal);
      lastErrorTotal = errors;
      secondErrors = 0;
      const s = {
        atS: Math.round((now - started) / 100) / 10,
        spanS: (now - sampledAt) / SECOND_MS,
        answers: thisSecond.count,
        p50Us: thisSecond.percentileUs(0.5),
        p99Us: thisSecond.percentileUs(0.99),
        errors: errs,
      };
      thisSecond.reset();
      sampledAt = now;
      return s;
    };
    const sampleTimer = setInterval(() => {
      const s = sample(performance.now());
      seconds.push(s);
      onSecond({
        elapsedS: Math.round(s.atS),
        perS: s.answers,
        p99Us: reported.percentileUs(0.99),
        errors: tally.non2xx + errors,
      });
    }, SECOND_MS);
    const finish = (): void => {
      clearInterval(sampleTimer);
      if (pacer !== null) clearInterval(pacer);
    };
    let instance: autocannon.Instance;
    try {
      instance = autocannon(
        {
          url: settings.origin,
          connections: settings.connections,
          pipelining: 1,
          duration: settings.durationS,
          timeout: 10,
          // One request per connection: turns autocannon's rate limit on; the schedule above does the rest.
          ...(rate === null ? {} : { overallRate: settings.connections }),
          // Built by autocannon once per connection and never sent: every request sent is an Outgoing.
          requests: [{ method: "POST", path: settings.path, body: "{}" }],
          setupClient: (client) => {
            const c = internalsOf(client, rate !== null);
            const it = c.requestIterator;
            const p: Paced | null = schedule === null ? null : { c, freeSinceMs: 0, queued: false };
            // autocannon reconnects when the server closes the connection, keeping the requests that were
            // waiting for an answer on it: the next answer would be matched to the lost request, and every
            // later one to the request before it. They are dropped here and counted as errors (an error or a
            // timeout is counted by autocannon already, and a timeout has dropped them itself). A connection
            // made again has nothing in flight: at a fixed rate it is free.
            let failed = false;
            (client as unknown as NodeJS.EventEmitter).on("connError", () => {
              failed = true;
            });
            const connect = c._connect;
            c._connect = () => {
              const lost = c.pipelinedRequests.size();
              if (lost > 0) {
                c.pipelinedRequests.clear();
                if (!failed) {
                  closed += lost;
                  errors += lost;
                }
              }
              failed = false;
              connect.call(c);
              if (p !== null) markFree(p, performance.now());
            };
            if (p === null) {
              const now = performance.now();
              it.currentRequest = new Outgoing(now, now, now, null);
              it.nextRequest = () => {
                it.resetted = false;
                const t = performance.now();
                it.currentRequest = new Outgoing(t, t, t, null);
                return it.currentRequest;
              };
              return;
            }
            // The connection's first send (at connect, right after this) finds its quota used and waits for
            // the schedule; every later one is handed its request by tick() before it is let go.
            c.reqsMadeThisSecond = c.rate ?? 1;
            it.nextRequest = () => {
              it.resetted = false;
              return it.currentRequest;
            };
            // Set once the constructor has run: its refill of the quota every second would send off-schedule.
            queueMicrotask(() => clearInterval(c.rateInterval));
          },
        },
        (err, result) => {
          finish();
          if (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
            return;
          }
          const end = performance.now();
          // A last piece of a second too short to say much is left out of the figures over time only.
          if (end - sampledAt >= SECOND_MS / 2) seconds.push(sample(end));
          resolve({
            elapsedS: (end - started) / SECOND_MS,
            sent,
            tally,
            fromSend,
            fromSchedule,
            sendLag: lag,
            seconds,
            errors: result.errors + closed,
            timeouts: result.timeouts,
            closed,
            notSent: backlog,
          });
        },
      );
    } catch (err) {
      finish();
      reject(err);
      return;
    }
    instance.on("reqError", () => {
      errors++;
    });
    instance.on("tick", () => {
      // Due requests that a free connection would take at the next tick are late, not blocked.
      if (schedule !== null) {
        const ready = free.filter((p) => p.c.paused === true && !p.c.destroyed).length;
        backlog = Math.max(0, schedule.dueAt(performance.now()) - ready);
      }
    });
  });
}
