// Reads one impression event, from a pixel's query string or one NDJSON line: both use the same field names.
import { ApiError, badField, missingField } from "../errors.ts";
import { normaliseType, toTypedId } from "../identity/typed-id.ts";
import { CAP_ID_RE, MAX_WINDOW_SEC } from "./cap-rule.ts";
import type { NoticeGrant, NoticeTokens } from "./notice-token.ts";

export interface ImpressionEvent {
  /** The typed key of the person who saw the impression ("ifa:…", "hem:…"). */
  readonly personKey: string;
  readonly campaign: string;
  readonly lineItem: string | null;
  readonly creative: string | null;
  /** The exchange's impression (or auction) id: what makes a repeated event recognisable as a repeat. */
  readonly imp: string;
  /** When the impression happened, in whole epoch seconds. */
  readonly tsSec: number;
  /** The notice token the event came with (its uses are spent when counted); null for type and id. */
  readonly notice: NoticeGrant | null;
}

/** How events may name their person. */
export interface EventReading {
  readonly tokens: NoticeTokens;
  /**
   * `type` and `id` accepted: on the credentialed POST /v1/events, and everywhere with EVENTS_OPEN=true.
   * Otherwise only a notice token names the person.
   */
  readonly idsAllowed: boolean;
}

/** What exchanges' ${AUCTION_IMP_ID} / ${AUCTION_ID} macros expand to: URL-safe without escaping. */
export const IMP_ID_RE = /^[A-Za-z0-9._:~-]{1,128}$/;
/** A `ts` this far ahead of our clock is allowed: exchanges' and pixels' clocks drift a little. */
export const MAX_FUTURE_SEC = 300;
/** Older events count toward no sliding window; a replay of logs that old is most likely a mistake. */
export const MAX_EVENT_AGE_SEC = MAX_WINDOW_SEC;
/** A `ts` at or above this is in milliseconds: as seconds it would be more than 30,000 years away. */
const MS_THRESHOLD = 1e12;
const TS_DIGITS_RE = /^\d{1,16}$/;

const CAP_ID_TEXT = "1-64 letters, digits, '.', '_', ':' or '-'";
const IMP_TEXT = "1-128 letters, digits, '.', '_', ':', '~' or '-'";
const TS_TEXT = "whole epoch seconds or milliseconds";

/** Absent, null and "" all mean "not given": a pixel template leaves optional parameters empty. */
function given(v: unknown): boolean {
  return v !== undefined && v !== null && v !== "";
}

/** A field that must be text (type, id, token); undefined when not given. */
function textField(fields: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = fields[name];
  if (!given(v)) return undefined;
  if (typeof v !== "string") throw badField(name, "a string");
  return v;
}

/**
 * Campaign, line item, creative and imp ids: strings, trimmed as the rule file trims them. A JSON number
 * is taken as its digits only when it is a safe integer: JSON.parse has already rounded a larger one, and a
 * fraction's digits are not what the sender wrote, so either would count toward the wrong id.
 */
function idField(
  fields: Readonly<Record<string, unknown>>,
  name: string,
  re: RegExp,
  text: string,
): string | undefined {
  const v = fields[name];
  if (!given(v)) return undefined;
  let s: string;
  if (typeof v === "string") s = v.trim();
  else if (typeof v === "number" && Number.isSafeInteger(v)) s = String(v);
  else throw badField(name, `a string of ${text}`);
  if (re.test(s)) return s;
  // The usual cause is a pixel URL whose macro the exchange did not fill in; say so.
  throw badField(name, s.includes("${") ? `${text}, not an unexpanded \${…} macro` : text);
}

function readPerson(
  fields: Readonly<Record<string, unknown>>,
  nowSec: number,
  reading: EventReading,
): { personKey: string; notice: NoticeGrant | null } {
  const token = textField(fields, "token");
  const type = textField(fields, "type");
  const id = textField(fields, "id");
  if (token !== undefined) {
    // Both forms at once could name two people; counting either would be a guess.
    if (type !== undefined || id !== undefined)
      throw badField("token", "given instead of type and id, not with them");
    const grant = reading.tokens.read(token, nowSec);
    if (grant === "forged") throw badField("token", "a token issued by this service, unaltered");
    if (grant === "expired")
      throw new ApiError(
        "AUD_ERR_NOTICE_REFUSED",
        "token has expired: use the one the latest lookup issued",
        "token",
      );
    return { personKey: grant.personKey, notice: grant };
  }
  if (!reading.idsAllowed) {
    // Anyone can write a URL with a type and an id; only a lookup answer hands out a token.
    if (type !== undefined || id !== undefined)
      throw badField(
        type !== undefined ? "type" : "id",
        "absent: this route names the person by the token a lookup issued (type and id need EVENTS_OPEN=true)",
      );
    throw missingField("token");
  }
  if (id === undefined) throw missingField("id");
  if (type === undefined) throw missingField("type");
  const t = normaliseType(type);
  // A raw e-mail has no place in an event (a URL or a log line): the hashed form is `hem`.
  if (t === null || t === "email") throw badField("type", "bu, ifa, hem, xu:<exchange> or eid:<source>");
  const r = toTypedId(type, id);
  if (!r.ok) throw new ApiError("AUD_ERR_BAD_FIELD", `id: ${r.reason}`, "id");
  return { personKey: r.key, notice: null };
}

/** Epoch seconds of the impression: `ts` in seconds or milliseconds (string or number), else now. */
function readTs(v: unknown, nowSec: number): number {
  if (!given(v)) return Math.floor(nowSec);
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && TS_DIGITS_RE.test(v)) n = Number(v);
  else throw badField("ts", TS_TEXT);
  if (!Number.isSafeInteger(n) || n < 0) throw badField("ts", TS_TEXT);
  const sec = n >= MS_THRESHOLD ? Math.floor(n / 1000) : n;
  if (sec > nowSec + MAX_FUTURE_SEC)
    throw badField("ts", `at most ${MAX_FUTURE_SEC} s ahead of the server clock`);
  if (sec < nowSec - MAX_EVENT_AGE_SEC)
    throw badField("ts", `within the last ${MAX_EVENT_AGE_SEC / 86_400} days`);
  return sec;
}

/**
 * One event from its fields (query parameters or a parsed NDJSON line); fields not listed are ignored
 * (pixels carry cache busters). The person is `token`, or `type` and `id` where `reading` allows them (never
 * `email`). A problem is an ApiError naming the field: 400, or 403 (AUD_ERR_NOTICE_REFUSED) for an expired
 * token or a campaign the token was not issued for.
 */
export function readImpressionEvent(
  fields: Readonly<Record<string, unknown>>,
  nowSec: number,
  reading: EventReading,
): ImpressionEvent {
  const { personKey, notice } = readPerson(fields, nowSec, reading);
  const campaign = idField(fields, "campaign", CAP_ID_RE, CAP_ID_TEXT);
  if (campaign === undefined) throw missingField("campaign");
  if (notice?.campaigns != null && !notice.campaigns.includes(campaign))
    throw new ApiError(
      "AUD_ERR_NOTICE_REFUSED",
      "campaign is not one the lookup that issued the token named as a candidate",
      "campaign",
    );
  const lineItem = idField(fields, "line_item", CAP_ID_RE, CAP_ID_TEXT) ?? null;
  const creative = idField(fields, "creative", CAP_ID_RE, CAP_ID_TEXT) ?? null;
  const imp = idField(fields, "imp", IMP_ID_RE, IMP_TEXT);
  if (imp === undefined) throw missingField("imp");
  const tsSec = readTs(fields.ts, nowSec);
  return { personKey, campaign, lineItem, creative, imp, tsSec, notice };
}

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    // A bad escape, or one that decodes to invalid UTF-8: the whole query is suspect, not one field.
    throw badField("query", "URL-encoded (a %-escape is malformed)");
  }
}

/**
 * A raw query string (no leading "?") as fields: keys and values URL-decoded, "+" as space, the first
 * value of a repeated key kept. Every part is decoded, so a malformed escape is refused wherever it is.
 */
export function queryFields(query: string): Record<string, string> {
  // No prototype: a key such as "__proto__" or "constructor" is just a key.
  const out: Record<string, string> = Object.create(null);
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = decodeQueryPart(eq < 0 ? part : part.slice(0, eq));
    const value = decodeQueryPart(eq < 0 ? "" : part.slice(eq + 1));
    if (key !== "" && !(key in out)) out[key] = value;
  }
  return out;
}
