// Everything that knows uWebSockets.js: routing, body reading, aborted requests, corked writes.
// The rules that keep uWS safe: attach onAborted before returning, copy onData chunks (their memory is
// reused after the callback), read req before any await (it is stack-allocated), cork writes after async work.
// Admission comes first: a request refused a slot is answered before any of its body is read or allocated.

import uWS from "uWebSockets.js";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ApiError } from "../errors.ts";
import { BodyDeadlines, type BodyWait } from "./body-deadlines.ts";
import { BodyStream } from "./body-stream.ts";
import type { HttpAnswer, HttpRequestData, Route, RouteAdmission } from "./http-types.ts";
import { answerForError, errorAnswer, STATUS_LINES } from "./responses.ts";
import { buildRouteTable, decodeParams, matchRoute, methodError, NO_PARAMS } from "./route-table.ts";

/** Which HTTP engine runs: the native uWS addon, or the package's slow JS fallback on an unsupported Node. */
export interface HttpBackendInfo {
  readonly name: "uWebSockets.js";
  readonly native: boolean;
  readonly detail: string;
}

/** Decided once at start-up: the package silently swaps in a JS server when no binary fits this Node ABI. */
export function detectUwsBackend(): HttpBackendInfo {
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  if (/^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? "")) {
    return { name: "uWebSockets.js", native: false, detail: "UWS_USE_FALLBACK is set: JS fallback server" };
  }
  const pkgDir = dirname(createRequire(import.meta.url).resolve("uWebSockets.js/package.json"));
  return existsSync(join(pkgDir, "binaries", binary))
    ? { name: "uWebSockets.js", native: true, detail: `native addon ${binary}` }
    : {
        name: "uWebSockets.js",
        native: false,
        detail: `no native addon for Node ABI ${process.versions.modules} (${binary}): slow JS fallback; use Node 20`,
      };
}

export interface UwsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Bound of "buffered" bodies (BODY_LIMIT_BYTES). */
  readonly bodyLimitBytes: number;
  /** Bound of "stream" bodies (ADMIN_BODY_LIMIT_BYTES); 1 GiB, that variable's default, when not given. */
  readonly streamBodyLimitBytes?: number;
  readonly routes: readonly Route[];
  /** Called for errors that are not the caller's fault (500s). */
  readonly onInternalError: (err: unknown, path: string) => void;
  /**
   * A buffered body must arrive within this (BODY_TIMEOUT_MS), or 408 and the connection closed: checked by a
   * sweep every tenth of it (10 to 250 ms), so the 408 comes at most two sweep periods after the timeout.
   */
  readonly bodyTimeoutMs?: number;
  /** A streamed body that sends nothing for this long (STREAM_IDLE_TIMEOUT_MS) gets 408, connection closed. */
  readonly streamIdleTimeoutMs?: number;
  /** True while shutting down: every answer closes its connection, so no client reuses it. */
  readonly draining?: () => boolean;
}

export interface RunningServer {
  readonly port: number;
  /** Stops accepting connections. */
  close(): void;
  /** Closes every connection still open (idle keep-alive ones): the last step of a graceful stop. */
  closeConnections(): void;
}

export const DEFAULT_STREAM_BODY_LIMIT_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_BODY_TIMEOUT_MS = 5_000;
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 5_000;

const NOT_FOUND = errorAnswer(new ApiError("AUD_ERR_NOT_FOUND"));
const EMPTY = Buffer.alloc(0);

export function startUwsServer(opts: UwsServerOptions): Promise<RunningServer> {
  const app = uWS.App();
  const table = buildRouteTable(opts.routes);
  // A client trickling its body cannot hold the request (and its memory) for longer than the timeout.
  const deadlines = new BodyDeadlines<Exchange>(opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS, (ex) => {
    if (ex.aborted || ex.done || ex.res === null) return;
    ex.done = true;
    release(ex);
    const res = ex.res;
    const answer = errorAnswer(new ApiError("AUD_ERR_REQUEST_TIMEOUT"));
    res.cork(() => write(res, answer, true));
  });

  for (const group of table.groups) {
    const byMethod = new Map(group.routes.map((r) => [r.method.toLowerCase(), r]));
    const paramCount = group.paramCount;
    app.any(group.pattern, (res, req) => {
      const route = byMethod.get(req.getMethod());
      if (route === undefined) {
        // Another pattern may still match with this method ("/things/:type/:id" after "/things/special/:id");
        // uWS then tries it, and the catch-all below tells 405 from 404.
        req.setYield(true);
        return;
      }
      serve(res, req, route, paramCount, opts, deadlines);
    });
  }
  // Off the hot path: unknown paths and wrong methods only.
  app.any("/*", (res, req) => {
    const framing = framingError(req.getHeader("transfer-encoding"), req.getHeader("content-length"));
    if (framing !== null) {
      res.cork(() => write(res, framing, true));
      return;
    }
    const m = matchRoute(table, req.getMethod().toUpperCase(), req.getUrl());
    const answer: HttpAnswer =
      m.kind === "method"
        ? { ...errorAnswer(methodError(m.pattern, m.allow)), headers: [["allow", m.allow]] }
        : NOT_FOUND;
    res.cork(() => write(res, answer));
  });

  return new Promise((resolve, reject) => {
    app.listen(opts.host, opts.port, (socket) => {
      if (socket === false) {
        deadlines.stop();
        reject(
          new Error(
            `cannot listen on ${opts.host}:${opts.port} (address in use or not permitted); set PORT/HOST`,
          ),
        );
        return;
      }
      deadlines.start();
      resolve({
        port: uWS.us_socket_local_port(socket),
        close: () => uWS.us_listen_socket_close(socket),
        // A worker thread cannot end while uWS holds a socket open. (close() is in the build, not its typings.)
        closeConnections: () => {
          deadlines.stop();
          (app as uWS.TemplatedApp & { close(): void }).close();
        },
      });
    });
  });
}

/**
 * Per-request state: whether the client went away, whether we already answered, the slot it holds; and, while
 * a buffered body is arriving, its place in the body deadlines' list. Every field set at creation (one shape).
 */
interface Exchange extends BodyWait {
  aborted: boolean;
  done: boolean;
  draining: (() => boolean) | undefined;
  /** The admission slot taken on arrival, null once given back (or when the route has none). */
  slot: RouteAdmission | null;
  /** The response, for the body timeout's 408; null for streamed bodies, which time out on their own. */
  res: uWS.HttpResponse | null;
}

function newExchange(res: uWS.HttpResponse | null, draining: (() => boolean) | undefined): Exchange {
  return { aborted: false, done: false, draining, slot: null, res, since: -1, prev: null, next: null };
}

/** Gives the request's slot back, once: when it is answered or its client went away, whichever is first. */
function release(ex: Exchange): void {
  const slot = ex.slot;
  if (slot === null) return;
  ex.slot = null;
  slot.leave();
}

/**
 * The request's body framing, when it is one this server refuses: any Transfer-Encoding but plain chunked
 * (this uWS build would take "gzip, chunked" as chunked: a proxy in front may frame it otherwise, the start
 * of request smuggling), and Transfer-Encoding with Content-Length (RFC 9112 §6.1 lets a server refuse it;
 * the uWS parser already drops such a connection without an answer, node:http's answers 400 through
 * clientError).
 */
export function framingError(transferEncoding: string, contentLength: string): HttpAnswer | null {
  if (transferEncoding === "") return null;
  return contentLength === "" && CHUNKED.test(transferEncoding) ? null : FRAMING_REFUSED;
}

const CHUNKED = /^[ \t]*chunked[ \t]*$/i;
/** One answer for every framing refused: node:http's parser refuses some itself and cannot say which. */
export const FRAMING_REFUSED = errorAnswer(
  new ApiError(
    "AUD_ERR_BAD_FIELD",
    "Transfer-Encoding must be chunked alone, and never sent with Content-Length",
    "transfer-encoding",
  ),
);
/** What the metrics wrapper of a shed answer is given: the request's body was never read. */
export const UNREAD_REQUEST: HttpRequestData = Object.freeze({
  method: "",
  path: "",
  params: NO_PARAMS,
  query: "",
  exchange: "",
  accept: "",
  contentType: "",
  contentEncoding: "",
  authorization: "",
  body: EMPTY,
  stream: null,
});

/**
 * Admission and framing, decided from the headers alone; true when the request was answered here (refused),
 * with its connection closed when it may carry a body that is left unread.
 */
function refused(res: uWS.HttpResponse, req: uWS.HttpRequest, route: Route, ex: Exchange): boolean {
  const framing = framingError(req.getHeader("transfer-encoding"), req.getHeader("content-length"));
  if (framing !== null) {
    ex.done = true;
    res.cork(() => write(res, framing, true));
    return true;
  }
  const gate = route.admission;
  if (gate === undefined) return false;
  if (gate.enter()) {
    ex.slot = gate;
    return false;
  }
  ex.done = true;
  const answer = gate.shed(UNREAD_REQUEST) as HttpAnswer;
  res.cork(() => write(res, answer, route.body !== "none"));
  return true;
}

/** The request's parameters, %-decoded; read now, as req is invalid once the route callback returns. */
function readParams(req: uWS.HttpRequest, count: number): readonly string[] {
  const raw: string[] = [];
  for (let i = 0; i < count; i++) raw.push(req.getParameter(i));
  return decodeParams(raw);
}

function serve(
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  route: Route,
  paramCount: number,
  opts: UwsServerOptions,
  deadlines: BodyDeadlines<Exchange>,
): void {
  if (route.body === "stream") {
    serveStream(res, req, route, paramCount, opts);
    return;
  }
  const ex = newExchange(res, opts.draining);
  if (refused(res, req, route, ex)) return;
  res.onAborted(() => {
    ex.aborted = true;
    deadlines.remove(ex);
    release(ex);
  });
  // Copied now: req is invalid once this function returns.
  const method = route.method;
  const path = route.path;
  let params = NO_PARAMS;
  if (paramCount > 0) {
    try {
      params = readParams(req, paramCount);
    } catch (err) {
      // The body, if any, is not read: the connection cannot be reused.
      const answer = answerForError(err, path, opts.onInternalError);
      ex.done = true;
      release(ex);
      res.cork(() => write(res, answer, route.body !== "none"));
      return;
    }
  }
  const query = req.getQuery() ?? "";
  const exchange = req.getHeader("x-exchange");
  const accept = req.getHeader("accept");
  const contentType = req.getHeader("content-type");
  const contentEncoding = req.getHeader("content-encoding");
  const authorization = req.getHeader("authorization");
  const make = (body: Buffer): HttpRequestData => ({
    method,
    path,
    params,
    query,
    exchange,
    accept,
    contentType,
    contentEncoding,
    authorization,
    body,
    stream: null,
  });

  if (route.body === "none") {
    run(res, ex, route, make(EMPTY), opts);
    return;
  }
  const declared = req.getHeader("content-length");
  const limit = route.bodyLimitBytes ?? opts.bodyLimitBytes;
  if (declared !== "" && Number(declared) > limit) {
    tooLarge(res, ex, limit);
    return;
  }
  // With a declared length the body is copied once into a buffer of its size; chunked bodies are gathered.
  const expected = declared === "" ? -1 : Number(declared);
  let buf: Buffer | null = expected >= 0 ? Buffer.allocUnsafe(expected) : null;
  let parts: Buffer[] | null = null;
  let received = 0;
  deadlines.add(ex);
  res.onData((chunk, isLast) => {
    if (ex.done) {
      deadlines.remove(ex);
      return;
    }
    const view = Buffer.from(chunk);
    if (received + view.length > limit || (buf !== null && received + view.length > buf.length)) {
      deadlines.remove(ex);
      tooLarge(res, ex, limit);
      return;
    }
    if (buf !== null) view.copy(buf, received);
    else {
      // Copy: the chunk's memory is reused once this callback returns.
      if (parts === null) parts = [];
      parts.push(Buffer.from(view));
    }
    received += view.length;
    if (!isLast) return;
    deadlines.remove(ex);
    const body =
      buf !== null ? buf.subarray(0, received) : parts === null ? EMPTY : Buffer.concat(parts, received);
    buf = null;
    parts = null;
    run(res, ex, route, make(body), opts);
  });
}

function run(
  res: uWS.HttpResponse,
  ex: Exchange,
  route: Route,
  data: HttpRequestData,
  opts: UwsServerOptions,
): void {
  let answer: HttpAnswer | Promise<HttpAnswer>;
  try {
    answer = route.handler(data);
  } catch (err) {
    answer = answerForError(err, data.path, opts.onInternalError);
  }
  if (answer instanceof Promise) {
    answer.then(
      (a) => finish(res, ex, a),
      (err) => finish(res, ex, answerForError(err, data.path, opts.onInternalError)),
    );
  } else {
    answerNow(res, ex, answer);
  }
}

/** The answer of async work: outside uWS's callbacks, so its writes are corked into one send. */
function finish(res: uWS.HttpResponse, ex: Exchange, answer: HttpAnswer): void {
  if (ex.aborted || ex.done) return;
  res.cork(() => answerNow(res, ex, answer));
}

/**
 * The answer given inside a uWS callback (the route handler or onData), or inside a cork: uWS has corked the
 * socket already, so a cork() of our own would only cost a native call and a closure (a cache hit's answer).
 */
function answerNow(res: uWS.HttpResponse, ex: Exchange, answer: HttpAnswer): void {
  if (ex.aborted || ex.done) return;
  ex.done = true;
  release(ex);
  write(res, answer, ex.draining?.() === true);
}

/**
 * A "stream" route: the handler runs at once with `stream`, which onData feeds as the body arrives.
 * When the stream is full, the socket is paused (uWS stops reading it) until the handler reads on.
 */
function serveStream(
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  route: Route,
  paramCount: number,
  opts: UwsServerOptions,
): void {
  const ex = newExchange(null, undefined);
  if (refused(res, req, route, ex)) return;
  let body: BodyStream | null = null;
  res.onAborted(() => {
    ex.aborted = true;
    release(ex);
    body?.abort();
  });
  let params = NO_PARAMS;
  if (paramCount > 0) {
    try {
      params = readParams(req, paramCount);
    } catch (err) {
      finishStream(res, ex, null, answerForError(err, route.path, opts.onInternalError));
      return;
    }
  }
  const limit = route.bodyLimitBytes ?? opts.streamBodyLimitBytes ?? DEFAULT_STREAM_BODY_LIMIT_BYTES;
  const declared = req.getHeader("content-length");
  if (declared !== "" && Number(declared) > limit) {
    tooLarge(res, ex, limit);
    return;
  }
  // pause() and resume() are only valid while the response is: not after the answer or an abort.
  const stream = new BodyStream(
    limit,
    {
      pause: () => {
        if (!ex.aborted && !ex.done) res.pause();
      },
      resume: () => {
        if (!ex.aborted && !ex.done) res.resume();
      },
      // The rest of the body is not read: the connection closes with the answer.
      idle: () => finishStream(res, ex, null, errorAnswer(new ApiError("AUD_ERR_REQUEST_TIMEOUT"))),
    },
    opts.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  );
  body = stream;
  const data: HttpRequestData = {
    method: route.method,
    path: route.path,
    params,
    query: req.getQuery() ?? "",
    exchange: req.getHeader("x-exchange"),
    accept: req.getHeader("accept"),
    contentType: req.getHeader("content-type"),
    contentEncoding: req.getHeader("content-encoding"),
    authorization: req.getHeader("authorization"),
    body: EMPTY,
    stream,
  };
  res.onData((chunk, isLast) => {
    if (ex.done || ex.aborted) return;
    // Copy: the chunk's memory is reused once this callback returns, and the stream keeps it until read.
    if (chunk.byteLength > 0 && !stream.feed(Buffer.copyBytesFrom(new Uint8Array(chunk)))) {
      stream.release();
      tooLarge(res, ex, limit);
      return;
    }
    if (isLast) stream.receivedAll();
  });

  let answer: HttpAnswer | Promise<HttpAnswer>;
  try {
    answer = route.handler(data);
  } catch (err) {
    answer = answerForError(err, route.path, opts.onInternalError);
  }
  Promise.resolve(answer).then(
    (a) => finishStream(res, ex, stream, a),
    (err) => {
      // The client going away is not a bug; nobody is left to answer either way.
      if (stream.isAbort(err)) return;
      finishStream(res, ex, stream, answerForError(err, route.path, opts.onInternalError));
    },
  );
}

function finishStream(
  res: uWS.HttpResponse,
  ex: Exchange,
  body: BodyStream | null,
  answer: HttpAnswer,
): void {
  if (ex.aborted || ex.done) return;
  // Answered before the whole body arrived (or before reading it at all, body null): the rest is not read,
  // so the connection cannot be reused.
  const close = body === null || !body.complete;
  // A paused socket is resumed first (while the response is still valid), so that the answer can flush.
  body?.release();
  if (close) body?.destroy();
  ex.done = true;
  release(ex);
  res.cork(() => write(res, answer, close));
}

function tooLarge(res: uWS.HttpResponse, ex: Exchange, limit: number): void {
  if (ex.aborted || ex.done) return;
  ex.done = true;
  release(ex);
  const answer = errorAnswer(new ApiError("AUD_ERR_BODY_TOO_LARGE", `request body exceeds ${limit} bytes`));
  // The rest of the body is never read, so the connection cannot be reused: close it after the answer.
  res.cork(() => write(res, answer, true));
}

function write(res: uWS.HttpResponse, a: HttpAnswer, close = false): void {
  // Status line and content type in one native call: uWS writes "HTTP/1.1 " + this + "\r\n" (the bytes sent
  // are those of writeStatus and writeHeader in turn). The common answer needs no other write before end().
  res.writeStatus(headOf(a.status, a.contentType));
  if (a.headers !== undefined) for (const [k, v] of a.headers) res.writeHeader(k, v);
  res.end(a.body, close);
}

/** Status line + content type, built once per pair: the content types are the code's own few constants. */
const HEADS = new Map<number, Map<string, string>>();
const MAX_HEADS_PER_STATUS = 16;

function headOf(status: number, contentType: string): string {
  let byType = HEADS.get(status);
  if (byType === undefined) {
    byType = new Map();
    HEADS.set(status, byType);
  }
  const known = byType.get(contentType);
  if (known !== undefined) return known;
  const head = `${STATUS_LINES[status] ?? String(status)}\r\ncontent-type: ${contentType}`;
  if (byType.size < MAX_HEADS_PER_STATUS) byType.set(contentType, head);
  return head;
}
