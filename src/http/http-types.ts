// Transport-neutral request and answer: route handlers see these, never uWebSockets.js or node:http objects.

/** What a handler may read of a request; copied out of the transport before any await. */
export interface HttpRequestData {
  readonly method: string;
  readonly path: string;
  /** Raw query string without "?". */
  readonly query: string;
  /** The few headers handlers read, lower-case names; "" when absent. */
  readonly exchange: string;
  readonly accept: string;
  readonly contentType: string;
  /** The whole body (already bounded by the size limit); empty for GET. */
  readonly body: Buffer;
}

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Buffer;
  /** Extra headers, e.g. Allow on 405. */
  readonly headers?: readonly (readonly [string, string])[];
}

export type RouteHandler = (req: HttpRequestData) => HttpAnswer | Promise<HttpAnswer>;

export interface Route {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly handler: RouteHandler;
  /** Whether the route reads a body (POST); bodies of other routes are not read. */
  readonly readsBody: boolean;
}

export const JSON_TYPE = "application/json";
export const MSGPACK_TYPE = "application/msgpack";

export function jsonAnswer(status: number, value: unknown): HttpAnswer {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(value) };
}

/** Value of one query parameter ("" when absent); the query strings here are short. */
export function queryParam(query: string, name: string): string {
  if (query === "") return "";
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
