// The same routes on node:http. Not the production server: it is the baseline the benchmark compares
// uWebSockets.js against, and a way to run where the uWS addon cannot load (HTTP_SERVER=node).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "../errors.ts";
import type { HttpAnswer, HttpRequestData, Route } from "./http-types.ts";
import { answerForError, errorAnswer } from "./responses.ts";
import type { RunningServer, UwsServerOptions } from "./uws-server.ts";

const NOT_FOUND = errorAnswer(new ApiError("AUD_ERR_NOT_FOUND"));
const EMPTY = Buffer.alloc(0);

export function startNodeServer(opts: UwsServerOptions): Promise<RunningServer> {
  const byPath = new Map<string, Route[]>();
  for (const r of opts.routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);

  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const routes = byPath.get(path);
    if (routes === undefined) return send(res, NOT_FOUND);
    const route = routes.find((r) => r.method === req.method);
    if (route === undefined) {
      const allow = routes.map((r) => r.method).join(", ");
      return send(res, {
        ...errorAnswer(new ApiError("AUD_ERR_METHOD", `${path} accepts ${allow}`)),
        headers: [["allow", allow]],
      });
    }
    const data = (body: Buffer): HttpRequestData => ({
      method: route.method,
      path,
      query: q < 0 ? "" : url.slice(q + 1),
      exchange: header(req, "x-exchange"),
      accept: header(req, "accept"),
      contentType: header(req, "content-type"),
      body,
    });
    if (!route.readsBody) return run(res, route, data(EMPTY), opts);
    readBody(req, opts.bodyLimitBytes).then(
      (body) => run(res, route, data(body), opts),
      () => {
        const answer = errorAnswer(
          new ApiError("AUD_ERR_BODY_TOO_LARGE", `request body exceeds ${opts.bodyLimitBytes} bytes`),
        );
        res.setHeader("connection", "close");
        send(res, answer);
      },
    );
  });
  server.keepAliveTimeout = 10_000;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      resolve({ port: (server.address() as AddressInfo).port, close: () => server.close() });
    });
  });
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

function send(res: ServerResponse, a: HttpAnswer): void {
  if (res.destroyed || res.writableEnded) return;
  res.statusCode = a.status;
  res.setHeader("content-type", a.contentType);
  if (a.headers !== undefined) for (const [k, v] of a.headers) res.setHeader(k, v);
  res.end(a.body);
}
