// Pieces of reading a bid-time request that /v1/lookup and /v1/enrich share.
import { ApiError, badField } from "../errors.ts";
import { type HttpRequestData, queryParam } from "../http/http-types.ts";
import { normaliseType } from "../identity/typed-id.ts";
import { isObject, type Json } from "../json-fields.ts";
import {
  createObjectReader,
  createPositionedReader,
  each,
  type MemberSpec,
  type PositionedRead,
} from "../openrtb/bid-request-scan.ts";
import { COMPACT_SIGNAL_FIELDS } from "../privacy/privacy-signals.ts";

/**
 * The body as a JSON object; 400 naming the problem otherwise. Depth is not checked here: JSON.parse is not
 * recursive (a million nested arrays parse), and the lookup reads a few named fields and never walks the
 * body, so a deep `ext` costs it nothing. What writes a request back out (enrich) refuses deep bodies first
 * (json-nesting.ts): that scan costs about 3 µs per 2 KB request, too much for a path that needs none.
 */
export function parseJsonObject(bytes: Buffer): Json {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ApiError("AUD_ERR_BAD_JSON", `body is not valid JSON: ${(err as Error).message}`, "");
  }
  if (!isObject(v)) throw badField("body", "a JSON object");
  return v;
}

/**
 * Every member of the body /v1/lookup reads: the bid request's (read-bid-request.ts, privacy-signals.ts,
 * deadline.ts), those of the compact and batch forms (read-compact.ts), and of `imp` only its length (the
 * notice token's uses; its presence picks the form). A member the lookup starts reading must be added here,
 * or it reads as absent: the differential test (lookup-body.test.ts) compares exactly these members.
 */
export const LOOKUP_MEMBERS: MemberSpec = {
  id: true,
  tmax: true,
  imp: "length",
  // OpenRTB 2.6 §3.2.20, and the 2.5 places in user.ext.
  user: { id: true, buyeruid: true, eids: true, consent: true, ext: { eids: true, consent: true } },
  // §3.2.18; device.ext.atts is Apple's ATT status.
  device: { ifa: true, lmt: true, ext: { atts: true } },
  // §3.2.3, and the 2.5 places in regs.ext.
  regs: {
    coppa: true,
    gdpr: true,
    us_privacy: true,
    gpp: true,
    gpp_sid: true,
    ext: { gdpr: true, us_privacy: true },
  },
  ids: true,
  batch: true,
  campaigns: true,
  expand: true,
  min_confidence: true,
  ...Object.fromEntries(COMPACT_SIGNAL_FIELDS.map((f) => [f, true] as const)),
};

const readLookupMembers = createObjectReader(LOOKUP_MEMBERS);

/**
 * The body as parseJsonObject reads it, reduced to LOOKUP_MEMBERS: the others (imp's contents, site, app,
 * source, ext, user.data, device.ua, ...) are validated but never built. Same answer, same 400: whenever the
 * reduced read could differ, or the body is not valid JSON, the whole body is parsed instead.
 */
export function readLookupBody(bytes: Buffer): Json {
  return readLookupMembers(bytes) ?? parseJsonObject(bytes);
}

/**
 * Every member of the body /v1/enrich reads: the lookup's, user.data (the caller's own entries, extended
 * rather than repeated), and of each imp what deals depend on (id, formats and sizes, the deals already in
 * pmp). Everything else is left where it is in the bytes: the enriched request is written by inserting
 * into them (write-enrichment.ts splicedRequest), not by writing the whole request again.
 */
export const ENRICH_MEMBERS: MemberSpec = {
  ...LOOKUP_MEMBERS,
  imp: each({
    id: true,
    pmp: { deals: true },
    banner: { w: true, h: true, format: true },
    video: { w: true, h: true },
    native: {},
    audio: {},
  }),
  user: { ...(LOOKUP_MEMBERS.user as MemberSpec), data: true },
};

const readEnrichMembers = createPositionedReader(ENRICH_MEMBERS);

/**
 * The body as parseJsonObject reads it, reduced to ENRICH_MEMBERS, with where each object and array built
 * closes; or, whenever the reduced read could differ, the whole body parsed and no positions (`ends` null).
 */
export function readEnrichBody(bytes: Buffer): { body: Json; ends: PositionedRead["ends"] | null } {
  return readEnrichMembers(bytes) ?? { body: parseJsonObject(bytes), ends: null };
}

/** `Authorization: Bearer <key>` (a caller key of LOOKUP_CALLERS or ENRICH_CALLERS): the key, or "" for none. */
export function bearerKey(authorization: string): string {
  return authorization.startsWith("Bearer ") ? authorization.slice(7).trim() : "";
}

/** The exchange that namespaces user.id: x-exchange header, else ?exchange=, else the configured default. */
export function exchangeOf(req: HttpRequestData, dflt: string): string {
  const named = req.exchange !== "" ? req.exchange : queryParam(req.query, "exchange");
  if (named === "") return dflt;
  const ex = named.toLowerCase();
  if (normaliseType(`xu:${ex}`) === null) {
    throw badField(
      req.exchange !== "" ? "x-exchange" : "exchange",
      "an exchange name of letters, digits, '.', '_' or '-'",
    );
  }
  return ex;
}

/** `?min_confidence=0.8` on any form, or `"min_confidence": 0.8` in the compact and batch forms. */
export function readMinConfidence(req: HttpRequestData, body: Json): number {
  const q = queryParam(req.query, "min_confidence");
  let v: unknown;
  if (q !== "") v = Number(q);
  else if (body.min_confidence !== undefined && body.min_confidence !== null && body.imp === undefined) {
    v = body.min_confidence;
  } else return 0;
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw badField("min_confidence", "a number from 0 to 1");
  return v;
}

/** `?expand=1` on any form, or `"expand": true` in the compact and batch forms. */
export function wantsExpansion(req: HttpRequestData, body: Json): boolean {
  const q = queryParam(req.query, "expand");
  if (q === "1" || q === "true") return true;
  const e = body.expand;
  if (e === undefined || e === null || body.imp !== undefined) return false;
  if (typeof e !== "boolean") throw badField("expand", "a boolean");
  return e;
}
