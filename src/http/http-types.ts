// Transport-neutral request and answer: route handlers see these, never uWebSockets.js or node:http objects.
import type { Readable } from "node:stream";

/** What a handler may read of a request; copied out of the transport before any await. */
export interface HttpRequestData {
  readonly method: string;
  /** The route's path pattern (e.g. "/v1/admin/users/:type/:id"), not the request's: IDs stay out of logs. */
  readonly path: string;
  /** Values of the pattern's `:name` segments, URL-decoded, in pattern order; [] for static routes. */
  readonly params: readonly string[];
  /** Raw query string without "?". */
  readonly query: string;
  /** The few headers handlers read, lower-case names; "" when absent. */
  readonly exchange: string;
  readonly accept: string;
  readonly contentType: string;
  readonly contentEncoding: string;
  readonly authorization: string;
  /** The whole body of a "buffered" route (already bounded by the size limit); empty for the other kinds. */
  readonly body: Buffer;
  /** The body of a "stream" route, as it arrives (bounded, with backpressure); null for the other kinds. */
  readonly stream: Readable | null;
}

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Buffer;
  /** Extra headers, e.g. Allow on 405. */
  readonly headers?: readonly (readonly [string, string])[];
}

/** Handlers of "stream" routes return a promise: the body is still arriving when they are called. */
export type RouteHandler = (req: HttpRequestData) => HttpAnswer | Promise<HttpAnswer>;

/**
 * How a route takes its body. "none": never read. "buffered": read whole into `body`, bounded by
 * BODY_LIMIT_BYTES (the lookup hot path). "stream": handed over as `stream` while it arrives, bounded by
 * ADMIN_BODY_LIMIT_BYTES, for uploads too big to hold in memory.
 */
export type BodyKind = "none" | "buffered" | "stream";

export interface Route {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Static ("/v1/lookup") or with `:name` segments, each matching one non-empty path segment. */
  readonly path: string;
  readonly handler: RouteHandler;
  readonly body: BodyKind;
  /** This route's own body limit, in place of its kind's (e.g. EVENTS_BODY_LIMIT_BYTES for POST /v1/events). */
  readonly bodyLimitBytes?: number;
  /** Load shedding, asked by the server as the request arrives, before any of its body is read. */
  readonly admission?: RouteAdmission;
}

/**
 * A route's share of the in-flight bound (reliability/admission.ts). The server calls enter() first thing,
 * so that a refused request costs no buffer and no body read; every entered request calls leave() once,
 * when it has been answered or its client went away.
 */
export interface RouteAdmission {
  /** Takes a slot (a counter comparison); false when none is free. */
  readonly enter: () => boolean;
  readonly leave: () => void;
  /** The answer of a refused request (SHED_STATUS); it is given at once, the body unread. */
  readonly shed: RouteHandler;
}

export const JSON_TYPE = "application/json";
export const MSGPACK_TYPE = "application/msgpack";

export function jsonAnswer(status: number, value: unknown): HttpAnswer {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(value) };
}

/** Value of one query parameter ("" when absent); the query strings here are short. */
export function queryParam(query: string, name: string): string {
  // Keys are compared as sent (not decoded): a query without the name in it has no such key. The bid path
  // asks for several parameters of a query that holds one or none.
  if (query === "" || !query.includes(name)) return "";
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    if (k === name) {
      try {
        return decodeURIComponent((eq < 0 ? "" : part.slice(eq + 1)).replace(/\+/g, " "));
      } catch {
        return "";
      }
    }
  }
  return "";
}
