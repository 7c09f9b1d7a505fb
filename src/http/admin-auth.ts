// Bearer tokens with scopes for the admin API: the ADMIN_TOKENS format, and requireScope, the guard each
// admin route is wrapped in. No token is ever echoed in full: not in a config error, not by toString.
import { ApiError } from "../errors.ts";
import { keyMatcher } from "../key-match.ts";
import type { Logger } from "../logger.ts";
import { idHashPrefix } from "../privacy/log-redaction.ts";
import type { HttpAnswer, HttpRequestData, RouteHandler } from "./http-types.ts";
import { errorAnswer } from "./responses.ts";

/** Every scope a token may carry; "*" means all of them. */
export const ADMIN_SCOPES = [
  "taxonomy:read",
  "taxonomy:write",
  "memberships:write",
  "users:read",
  "users:write",
  "caps:read",
  "caps:write",
  "links:write",
  "deals:read",
  "deals:write",
  // POST /v1/events: callers that report impressions in batches, not an admin (no other route takes it).
  "events",
  "*",
] as const;

export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** token -> its scopes. */
export type AdminTokenScopes = ReadonlyMap<string, ReadonlySet<string>>;

const TOKEN = /^[A-Za-z0-9._~+/-]{16,}$/;
/** What a scope looks like; anything else in a scope's place is shown redacted, as it may be a misplaced token. */
const SCOPE_SHAPE = /^[a-z]{1,20}(:[a-z]{1,20})?$/;
const KNOWN_SCOPES: ReadonlySet<string> = new Set(ADMIN_SCOPES);

/** At most the first 4 characters, and never more than half: enough to tell which entry is meant. */
export function redactToken(token: string): string {
  return `${token.slice(0, Math.min(4, Math.floor(token.length / 2)))}...`;
}

/**
 * Gives the parsed map the text form of the variable with every token redacted ("" when empty), for
 * String() and JSON (logs, the configuration reference). A plain Map otherwise: these two are
 * non-enumerable own properties, so it still equals any Map with the same entries.
 */
function withRedactedText(tokens: Map<string, ReadonlySet<string>>): AdminTokenScopes {
  const text = (): string =>
    [...tokens].map(([token, scopes]) => `${redactToken(token)}=${[...scopes].join("|")}`).join(",");
  return Object.defineProperties(tokens, { toString: { value: text }, toJSON: { value: text } });
}

/**
 * Parses `<token>=<scope>[|<scope>...]` entries separated by commas (blank entries are skipped).
 * Problems name the entry by its position and a redacted token, never the token itself.
 */
export function parseAdminTokens(raw: string): { tokens: AdminTokenScopes; problems: string[] } {
  const tokens = new Map<string, ReadonlySet<string>>();
  const entryOf = new Map<string, number>();
  const problems: string[] = [];
  raw.split(",").forEach((part, i) => {
    const entry = part.trim();
    if (entry === "") return;
    const n = i + 1;
    // Tokens cannot hold "=", so the last one separates; a base64 token with padding then fails as a token.
    const eq = entry.lastIndexOf("=");
    if (eq < 0) {
      problems.push(`entry ${n} ('${redactToken(entry)}') is not <token>=<scope>[|<scope>...]`);
      return;
    }
    const token = entry.slice(0, eq).trim();
    if (!TOKEN.test(token)) {
      problems.push(
        `entry ${n}: token '${redactToken(token)}' must be at least 16 characters of A-Z a-z 0-9 . _ ~ + / -`,
      );
      return;
    }
    const scopes = new Set<string>();
    for (const part of entry.slice(eq + 1).split("|")) {
      const s = part.trim();
      if (KNOWN_SCOPES.has(s)) scopes.add(s);
      else if (s === "") problems.push(`entry ${n} ('${redactToken(token)}') has an empty scope`);
      else {
        const shown = SCOPE_SHAPE.test(s) ? s : redactToken(s);
        problems.push(
          `entry ${n} ('${redactToken(token)}') has unknown scope '${shown}' (known: ${ADMIN_SCOPES.join(", ")})`,
        );
      }
    }
    const first = entryOf.get(token);
    if (first !== undefined) {
      problems.push(`entry ${n} repeats the token of entry ${first} ('${redactToken(token)}')`);
      return;
    }
    entryOf.set(token, n);
    tokens.set(token, scopes);
  });
  return { tokens: withRedactedText(tokens), problems };
}

const UNAUTHORIZED: HttpAnswer = {
  ...errorAnswer(new ApiError("AUD_ERR_UNAUTHORIZED")),
  headers: [["www-authenticate", "Bearer"]],
};

/** Why an admin request was refused: no or a garbled bearer token, an unknown one (401), a missing scope (403). */
export type AuthRefusal = "no bearer token" | "unknown token" | "scope missing";

/** Where requireScope reports the requests it refuses. */
export interface AuthFailures {
  refused(req: HttpRequestData, reason: AuthRefusal, token: string | null, scope: string): void;
}

/** At most one warn line per reason in this many milliseconds. */
const AUTH_LOG_INTERVAL_MS = 1_000;

/**
 * Refused admin requests as warn lines: route (the pattern, never an ID), method, status, reason, the scope
 * asked for, and of the token at most its hash prefix (log-redaction.ts), never the token. At most one line
 * per reason per second, carrying how many of that reason were left out since the previous line: someone
 * guessing tokens sends thousands a second, and a line for each would flood the log (and cost more than
 * answering them). The count rides on the next line of the reason, so a burst that stops is counted late.
 */
export function authFailureLog(log: Logger, nowMs: () => number = Date.now): AuthFailures {
  const last = new Map<AuthRefusal, { atMs: number; suppressed: number }>();
  return {
    refused(req, reason, token, scope) {
      const now = nowMs();
      const prev = last.get(reason);
      if (prev !== undefined && now - prev.atMs < AUTH_LOG_INTERVAL_MS) {
        prev.suppressed++;
        return;
      }
      log.warn(
        {
          route: req.path,
          method: req.method,
          status: reason === "scope missing" ? 403 : 401,
          reason,
          scope,
          token: token === null ? null : idHashPrefix(token),
          suppressed: prev?.suppressed ?? 0,
        },
        "admin request refused",
      );
      last.set(reason, { atMs: now, suppressed: 0 });
    },
  };
}

/** RFC 6750's b64token after "Bearer" (scheme case-insensitive). */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Wraps an admin route's handler: no or a garbled `Authorization: Bearer <token>`, or an unknown token,
 * answers 401 (so does everything while `tokens` is empty: the admin API is off); a known token without
 * `scope` (or "*") answers 403. Each refusal is reported to `failures` (authFailureLog) when given.
 */
export function requireScope(
  tokens: AdminTokenScopes,
  scope: string,
  handler: RouteHandler,
  failures?: AuthFailures,
): RouteHandler {
  if (!KNOWN_SCOPES.has(scope)) throw new Error(`requireScope: unknown scope '${scope}'`);
  // Compared as HMACs, every configured token each time (key-match.ts): the timing tells nothing of them.
  const scopesOf = keyMatcher(tokens);
  const forbidden = errorAnswer(new ApiError("AUD_ERR_FORBIDDEN", `the token lacks the scope ${scope}`));
  const refused = failures === undefined ? () => {} : failures.refused;

  return (req) => {
    const presented = BEARER.exec(req.authorization)?.[1];
    if (presented === undefined) {
      refused(req, "no bearer token", null, scope);
      return UNAUTHORIZED;
    }
    const scopes = scopesOf(presented);
    if (scopes === null) {
      refused(req, "unknown token", presented, scope);
      return UNAUTHORIZED;
    }
    if (!scopes.has(scope) && !scopes.has("*")) {
      refused(req, "scope missing", presented, scope);
      return forbidden;
    }
    return handler(req);
  };
}
