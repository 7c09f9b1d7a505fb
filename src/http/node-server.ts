// The same routes on node:http. Not the production server: it is the baseline the benchmark compares
// uWebSockets.js against, and a way to run where the uWS addon cannot load (HTTP_SERVER=node).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { ApiError } from "../errors.ts";
import { BodyStream } from "./body-stream.ts";
import type { HttpAnswer, HttpRequestData, Route } from "./http-types.ts";
import { answerForError, errorAnswer } from "./responses.ts";
import {
  buildRouteTable,
  decodeParams,
  matchRoute,
  methodError,
  NO_PARAMS,
  type RouteGroup,
  rawParams,
} from "./route-table.ts";
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_STREAM_BODY_LIMIT_BYTES,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  FRAMING_REFUSED,
  framingError,
  type RunningServer,
  UNREAD_REQUEST,
  type UwsServerOptions,
} from "./uws-server.ts";

const NOT_FOUND = errorAnswer(new ApiError("AUD_ERR_NOT_FOUND"));
const EMPTY = Buffer.alloc(0);

export function startNodeServer(opts: UwsServerOptions): Promise<RunningServer> {
  const table = buildRouteTable(opts.routes);

  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? "" : url.slice(q + 1);
    // Static paths first, in one lookup: the hot path never splits the path.
    const route = table.statics.get(path)?.byMethod.get(req.method ?? "");
    if (route !== undefined) return serve(req, res, route, null, path, query, opts);
    const m = matchRoute(table, req.method ?? "", path);
    if (m.kind === "none") return send(res, NOT_FOUND);
    if (m.kind === "method") {
      return send(res, { ...errorAnswer(methodError(m.pattern, m.allow)), headers: [["allow", m.allow]] });
    }
    serve(req, res, m.route, m.group, path, query, opts);
  });
  // node:http refuses some framings itself, before any route (Transfer-Encoding with Content-Length, a
  // malformed Transfer-Encoding): answered with the uWS server's JSON error naming the header. Any other
  // parse error gets node's own answer (431, 408 or 400), the connection closed.
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    const inProgress = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (socket.writable && inProgress !== true) {
      const framing =
        err.code === "HPE_UNEXPECTED_CONTENT_LENGTH" || err.code === "HPE_INVALID_TRANSFER_ENCODING"
          ? FRAMING_REFUSED
          : null;
      if (framing !== null) {
        const body = String(framing.body);
        socket.write(
          `HTTP/1.1 400 Bad Request\r\ncontent-type: ${framing.contentType}\r\nconnection: close\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      } else {
        const status =
          err.code === "HPE_HEADER_OVERFLOW"
            ? "431 Request Header Fields Too Large"
            : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
              ? "408 Request Timeout"
              : "400 Bad Request";
        socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
      }
    }
    socket.destroy(err);
  });
  server.keepAliveTimeout = 10_000;
  // A client trickling its request (headers or body) is answered 408 and dropped after this.
  server.requestTimeout = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  server.headersTimeout = server.requestTimeout;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => server.close(),
        closeConnections: () => server.closeAllConnections(),
      });
    });
  });
}

/** `group` is the matched pattern's group when it has parameters, else null. */
function serve(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  group: RouteGroup | null,
  path: string,
  query: string,
  opts: UwsServerOptions,
): void {
  // Framing and admission first, from the headers alone: a refused request's body is never read.
  const framing = framingError(header(req, "transfer-encoding"), header(req, "content-length"));
  if (framing !== null) {
    res.setHeader("connection", "close");
    send(res, framing);
    return;
  }
  const gate = route.admission;
  if (gate !== undefined) {
    if (!gate.enter()) {
      if (route.body !== "none") res.setHeader("connection", "close");
      Promise.resolve(gate.shed(UNREAD_REQUEST)).then((a) => send(res, a));
      return;
    }
    // "close" comes once the answer is sent or the connection is gone, whichever way the request ended.
    res.once("close", gate.leave);
  }
  let params = NO_PARAMS;
  if (group !== null && group.paramCount > 0) {
    try {
      params = decodeParams(rawParams(group, path));
    } catch (err) {
      // The body, if any, is not read: the connection cannot be reused.
      if (route.body !== "none") res.setHeader("connection", "close");
      send(res, answerForError(err, route.path, opts.onInternalError));
      return;
    }
  }
  const data = (body: Buffer, stream: BodyStream | null): HttpRequestData => ({
    method: route.method,
    path: route.path,
    params,
    query,
    exchange: header(req, "x-exchange"),
    accept: header(req, "accept"),
    contentType: header(req, "content-type"),
    contentEncoding: header(req, "content-encoding"),
    authorization: header(req, "authorization"),
    body,
    stream,
  });
  if (route.body === "none") run(res, route, data(EMPTY, null), opts);
  else if (route.body === "stream") serveStream(req, res, route, data, opts);
  else {
    const limit = route.bodyLimitBytes ?? opts.bodyLimitBytes;
    readBody(req, limit).then(
      (body) => run(res, route, data(body, null), opts),
      () => tooLarge(res, limit),
    );
  }
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return typeof v === "string" ? v : "";
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers["content-length"] ?? 0) > limit) return reject(new Error("too large"));
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        reject(new Error("too large"));
        return;
      }
      parts.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(parts, size)));
    req.on("error", reject);
  });
}

function run(res: ServerResponse, route: Route, data: HttpRequestData, opts: UwsServerOptions): void {
  Promise.resolve()
    .then(() => route.handler(data))
    .then(
      (a) => send(res, a),
      (err) => send(res, answerForError(err, data.path, opts.onInternalError)),
    );
}

/**
 * A "stream" route, as on uWS: the IncomingMessage feeds a BodyStream that pauses it when full, so the
 * limit and the end-of-body bookkeeping are the same on both servers.
 */
function serveStream(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  data: (body: Buffer, stream: BodyStream | null) => HttpRequestData,
  opts: UwsServerOptions,
): void {
  const limit = route.bodyLimitBytes ?? opts.streamBodyLimitBytes ?? DEFAULT_STREAM_BODY_LIMIT_BYTES;
  if (Number(req.headers["content-length"] ?? 0) > limit) {
    tooLarge(res, limit);
    return;
  }
  const stream = new BodyStream(
    limit,
    {
      pause: () => req.pause(),
      resume: () => req.resume(),
      // The rest of the body is not read: the connection closes with the answer.
      idle: () => {
        res.setHeader("connection", "close");
        send(res, errorAnswer(new ApiError("AUD_ERR_REQUEST_TIMEOUT")));
      },
    },
    opts.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  );
  const onData = (c: Buffer): void => {
    if (stream.feed(c)) return;
    req.off("data", onData);
    tooLarge(res, limit);
  };
  req.on("data", onData);
  req.on("end", () => stream.receivedAll());
  // A client that goes away mid-body: "error" (ECONNRESET) and/or "close" before the body completed.
  req.on("error", () => stream.abort());
  req.on("close", () => {
    if (!req.complete) stream.abort();
  });
  const d = data(EMPTY, stream);
  Promise.resolve()
    .then(() => route.handler(d))
    .then(
      (a) => finishStream(res, stream, a),
      (err) => {
        // The client going away is not a bug; nobody is left to answer either way.
        if (stream.isAbort(err)) return;
        finishStream(res, stream, answerForError(err, d.path, opts.onInternalError));
      },
    );
}

function finishStream(res: ServerResponse, body: BodyStream, answer: HttpAnswer): void {
  if (res.destroyed || res.writableEnded) return;
  // Answered before the whole body arrived: the rest is not read, so the connection cannot be reused.
  if (!body.complete) {
    body.destroy();
    res.setHeader("connection", "close");
  }
  send(res, answer);
}

function tooLarge(res: ServerResponse, limit: number): void {
  const answer = errorAnswer(new ApiError("AUD_ERR_BODY_TOO_LARGE", `request body exceeds ${limit} bytes`));
  res.setHeader("connection", "close");
  send(res, answer);
}

function send(res: ServerResponse, a: HttpAnswer): void {
  if (res.destroyed || res.writableEnded) return;
  res.statusCode = a.status;
  res.setHeader("content-type", a.contentType);
  if (a.headers !== undefined) for (const [k, v] of a.headers) res.setHeader(k, v);
  res.end(a.body);
}
