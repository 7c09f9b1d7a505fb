// Everything that knows uWebSockets.js: routing, body reading, aborted requests, corked writes.
// The rules that keep uWS safe: attach onAborted before returning, copy onData chunks (their memory is
// reused after the callback), read req before any await (it is stack-allocated), cork writes after async work.

import uWS from "uWebSockets.js";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ApiError } from "../errors.ts";
import type { HttpAnswer, HttpRequestData, Route } from "./http-types.ts";
import { answerForError, errorAnswer, STATUS_LINES } from "./responses.ts";

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
  readonly bodyLimitBytes: number;
  readonly routes: readonly Route[];
  /** Called for errors that are not the caller's fault (500s). */
  readonly onInternalError: (err: unknown, path: string) => void;
}

export interface RunningServer {
  readonly port: number;
  /** Stops accepting connections. */
  close(): void;
}

const NOT_FOUND = errorAnswer(new ApiError("AUD_ERR_NOT_FOUND"));
const EMPTY = Buffer.alloc(0);

export function startUwsServer(opts: UwsServerOptions): Promise<RunningServer> {
  const app = uWS.App();
  const byPath = new Map<string, Route[]>();
  for (const r of opts.routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);

  for (const [path, routes] of byPath) {
    const allow = routes.map((r) => r.method).join(", ");
    const methodNotAllowed: HttpAnswer = {
      ...errorAnswer(new ApiError("AUD_ERR_METHOD", `${path} accepts ${allow}`)),
      headers: [["allow", allow]],
    };
    const byMethod = new Map(routes.map((r) => [r.method.toLowerCase(), r]));
    app.any(path, (res, req) => {
      const route = byMethod.get(req.getMethod());
      if (route === undefined) {
        res.cork(() => write(res, methodNotAllowed));
        return;
      }
      serve(res, req, route, opts);
    });
  }
  app.any("/*", (res) => {
    res.cork(() => write(res, NOT_FOUND));
  });

  return new Promise((resolve, reject) => {
    app.listen(opts.host, opts.port, (socket) => {
      if (socket === false) {
        reject(
          new Error(
            `cannot listen on ${opts.host}:${opts.port} (address in use or not permitted); set PORT/HOST`,
          ),
        );
        return;
      }
      resolve({ port: uWS.us_socket_local_port(socket), close: () => uWS.us_listen_socket_close(socket) });
    });
  });
}

/** Per-request state: whether the client went away, whether we already answered. */
interface Exchange {
  aborted: boolean;
  done: boolean;
}

function serve(res: uWS.HttpResponse, req: uWS.HttpRequest, route: Route, opts: UwsServerOptions): void {
  const ex: Exchange = { aborted: false, done: false };
  res.onAborted(() => {
    ex.aborted = true;
  });
  // Copied now: req is invalid once this function returns.
  const method = route.method;
  const path = route.path;
  const query = req.getQuery() ?? "";
  const exchange = req.getHeader("x-exchange");
  const accept = req.getHeader("accept");
  const contentType = req.getHeader("content-type");
  const make = (body: Buffer): HttpRequestData => ({
    method,
    path,
    query,
    exchange,
    accept,
    contentType,
    body,
  });

  if (!route.readsBody) {
    run(res, ex, route, make(EMPTY), opts);
    return;
  }
  const declared = req.getHeader("content-length");
  const limit = opts.bodyLimitBytes;
  if (declared !== "" && Number(declared) > limit) {
    tooLarge(res, ex, limit);
    return;
  }
  // With a declared length the body is copied once into a buffer of its size; chunked bodies are gathered.
  const expected = declared === "" ? -1 : Number(declared);
  let buf: Buffer | null = expected >= 0 ? Buffer.allocUnsafe(expected) : null;
  let parts: Buffer[] | null = null;
  let received = 0;
  res.onData((chunk, isLast) => {
    if (ex.done) return;
    const view = Buffer.from(chunk);
    if (received + view.length > limit || (buf !== null && received + view.length > buf.length)) {
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
    finish(res, ex, answer);
  }
}

function finish(res: uWS.HttpResponse, ex: Exchange, answer: HttpAnswer): void {
  if (ex.aborted || ex.done) return;
  ex.done = true;
  res.cork(() => write(res, answer));
}

function tooLarge(res: uWS.HttpResponse, ex: Exchange, limit: number): void {
  if (ex.aborted || ex.done) return;
  ex.done = true;
  const answer = errorAnswer(new ApiError("AUD_ERR_BODY_TOO_LARGE", `request body exceeds ${limit} bytes`));
  // The rest of the body is never read, so the connection cannot be reused: close it after the answer.
  res.cork(() => write(res, answer, true));
}

function write(res: uWS.HttpResponse, a: HttpAnswer, close = false): void {
  res.writeStatus(STATUS_LINES[a.status] ?? String(a.status));
  res.writeHeader("content-type", a.contentType);
  if (a.headers !== undefined) for (const [k, v] of a.headers) res.writeHeader(k, v);
  res.end(a.body, close);
}
