// Route paths with `:name` segments, parsed once and matched segment by segment the way uWebSockets.js does,
// so that both servers pick the same route and give the same 404 or 405.
import { ApiError } from "../errors.ts";
import type { Route } from "./http-types.ts";

export const NO_PARAMS: readonly string[] = Object.freeze([]);

/** Routes whose paths have one shape (parameter names aside): one uWS registration, one Allow header. */
export interface RouteGroup {
  /** The first route's path: what uWS registers and 405 messages name. */
  readonly pattern: string;
  /** Static segments as text, parameters as null. */
  readonly segments: readonly (string | null)[];
  readonly paramCount: number;
  readonly routes: readonly Route[];
  readonly byMethod: ReadonlyMap<string, Route>;
}

export interface RouteTable {
  /** Every group, in the order of the route list. */
  readonly groups: readonly RouteGroup[];
  /** Groups without parameters by path: the hot path's match is one Map lookup. */
  readonly statics: ReadonlyMap<string, RouteGroup>;
  /** Groups with parameters, most specific first: where two differ, a static segment beats a parameter. */
  readonly patterned: readonly RouteGroup[];
}

export type RouteMatch =
  | { readonly kind: "found"; readonly route: Route; readonly group: RouteGroup }
  /** The path matches some pattern, but none for this method. */
  | { readonly kind: "method"; readonly pattern: string; readonly allow: string }
  | { readonly kind: "none" };

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks every path and groups the routes; a malformed path or a repeated method+pattern is a bug: it throws. */
export function buildRouteTable(routes: readonly Route[]): RouteTable {
  const byShape = new Map<string, { pattern: string; segments: (string | null)[]; routes: Route[] }>();
  for (const r of routes) {
    if (!r.path.startsWith("/")) throw new Error(`route path must start with "/": ${r.path}`);
    const segments = r.path
      .slice(1)
      .split("/")
      .map((s) => {
        if (s.startsWith(":")) {
          if (!PARAM.test(s)) throw new Error(`bad parameter segment '${s}' in route path ${r.path}`);
          return null;
        }
        if (s.startsWith("*")) throw new Error(`wildcard segments are not supported: ${r.path}`);
        return s;
      });
    const shape = segments.map((s) => (s === null ? ":" : s)).join("/");
    const group = byShape.get(shape) ?? { pattern: r.path, segments, routes: [] };
    if (group.routes.some((g) => g.method === r.method)) {
      throw new Error(`two routes for ${r.method} ${r.path}`);
    }
    group.routes.push(r);
    byShape.set(shape, group);
  }
  const groups: RouteGroup[] = [...byShape.values()].map((g) => ({
    pattern: g.pattern,
    segments: g.segments,
    paramCount: g.segments.filter((s) => s === null).length,
    routes: g.routes,
    byMethod: new Map(g.routes.map((r) => [r.method, r])),
  }));
  return {
    groups,
    statics: new Map(groups.filter((g) => g.paramCount === 0).map((g) => [g.pattern, g])),
    patterned: groups.filter((g) => g.paramCount > 0).sort(bySpecificity),
  };
}

/** uWS's router order: segment by segment, static before parameter. Different lengths never both match. */
function bySpecificity(a: RouteGroup, b: RouteGroup): number {
  const n = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const sa = a.segments[i] === null;
    const sb = b.segments[i] === null;
    if (sa !== sb) return sa ? 1 : -1;
  }
  return a.segments.length - b.segments.length;
}

/** `path` is the raw request path (no query). `method` is upper-case. */
export function matchRoute(table: RouteTable, method: string, path: string): RouteMatch {
  const candidates: RouteGroup[] = [];
  const exact = table.statics.get(path);
  if (exact !== undefined) candidates.push(exact);
  if (table.patterned.length > 0) {
    const parts = path.slice(1).split("/");
    for (const g of table.patterned) if (segmentsMatch(g, parts)) candidates.push(g);
  }
  for (const g of candidates) {
    const route = g.byMethod.get(method);
    if (route !== undefined) return { kind: "found", route, group: g };
  }
  const first = candidates[0];
  if (first === undefined) return { kind: "none" };
  const allow = [...new Set(candidates.flatMap((g) => g.routes.map((r) => r.method)))].join(", ");
  return { kind: "method", pattern: first.pattern, allow };
}

function segmentsMatch(g: RouteGroup, parts: readonly string[]): boolean {
  if (parts.length !== g.segments.length) return false;
  for (let i = 0; i < parts.length; i++) {
    const s = g.segments[i];
    // A parameter takes one non-empty segment, as in uWS ("/things//b" matches no "/things/:a/:b").
    if (s === null ? parts[i] === "" : s !== parts[i]) return false;
  }
  return true;
}

/** The parameter values of a path that matched `g`, raw (still %-encoded), in pattern order. */
export function rawParams(g: RouteGroup, path: string): string[] {
  const parts = path.slice(1).split("/");
  return parts.filter((_, i) => g.segments[i] === null);
}

/** %-decodes parameter values; a malformed escape ("%zz") is the caller's fault: 400 naming the path. */
export function decodeParams(raw: readonly string[]): string[] {
  try {
    return raw.map((p) => (p.includes("%") ? decodeURIComponent(p) : p));
  } catch {
    throw new ApiError("AUD_ERR_BAD_FIELD", "the path has a malformed %-escape", "path");
  }
}

/** The 405 answer's error: which methods the matched pattern accepts. */
export function methodError(pattern: string, allow: string): ApiError {
  return new ApiError("AUD_ERR_METHOD", `${pattern} accepts ${allow}`);
}
