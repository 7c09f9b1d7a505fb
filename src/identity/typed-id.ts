// Typed IDs: every user ID becomes "<type>:<id>", the key under which its profile is stored.
import { createHash } from "node:crypto";
import { quotedInput } from "../privacy/log-redaction.ts";

/**
 * Types, as written in ingest files and in the compact lookup form:
 * - `bu`            user.buyeruid (the bidder's own cookie/user ID)
 * - `xu:<exchange>` user.id, namespaced by the exchange that assigned it
 * - `ifa`           device.ifa, lower-cased
 * - `eid:<source>`  user.eids[].uids[].id, namespaced by the eid source (lower-cased domain)
 * - `hem`           SHA-256 hex of a normalised e-mail address
 * - `email`         accepted on input only: normalised and hashed to `hem`, never stored raw
 */
export type IdType = string;

/** Longest ID accepted; longer ones are almost always garbage or an attack on memory. */
export const MAX_ID_LENGTH = 256;

const NAMESPACE_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ZERO_IFA_RE = /^[0-]+$/;
const HEM_RE = /^[0-9a-f]{64}$/;
/**
 * Characters no ID may hold. Braces would move the Redis Cluster hash tag of the ID's keys (`p:{<id>}`: a
 * `}` inside the ID ends the tag early, so two IDs could share keys' slots and one ID's key could spell the
 * start of another's); control characters (C0, DEL, C1) break log lines and have no place in any real ID.
 */
function hasForbiddenChar(id: string): boolean {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x7b /* { */ || c === 0x7d /* } */) return true;
  }
  return false;
}
/** What a mistyped type name looks like ("cookie", "xu:Bad Exchange" does not): quoted as it is in a reason. */
const TYPE_NAME_SHAPE = /^[a-z]{1,12}(:[a-z0-9._-]{0,64})?$/i;

export type TypedIdResult = { ok: true; key: string; type: string } | { ok: false; reason: string };

/** Normalises a type name; returns null when it is not one of the known forms. */
export function normaliseType(type: string): string | null {
  const t = type.trim().toLowerCase();
  if (t === "bu" || t === "ifa" || t === "hem" || t === "email") return t;
  const colon = t.indexOf(":");
  if (colon < 0) return null;
  const family = t.slice(0, colon);
  const ns = t.slice(colon + 1);
  if ((family === "xu" || family === "eid") && NAMESPACE_RE.test(ns)) return t;
  return null;
}

export function hashEmail(email: string): string {
  return createHash("sha256").update(email.trim().toLowerCase()).digest("hex");
}

/** Builds the stored key for an ID of the given type, normalising as the type requires. */
export function toTypedId(type: string, id: string): TypedIdResult {
  const t = normaliseType(type);
  if (t === null)
    return { ok: false, reason: `unknown id type ${quotedInput(type.trim(), TYPE_NAME_SHAPE)}` };
  const raw = id.trim();
  if (raw.length === 0) return { ok: false, reason: "empty id" };
  if (raw.length > MAX_ID_LENGTH) return { ok: false, reason: `id longer than ${MAX_ID_LENGTH} characters` };
  if (hasForbiddenChar(raw)) return { ok: false, reason: "id holds '{', '}' or a control character" };
  switch (t) {
    case "ifa": {
      if (ZERO_IFA_RE.test(raw)) return { ok: false, reason: "all-zero ifa" };
      return { ok: true, key: `ifa:${raw.toLowerCase()}`, type: t };
    }
    case "email": {
      if (!raw.includes("@")) return { ok: false, reason: "email without '@'" };
      return { ok: true, key: `hem:${hashEmail(raw)}`, type: "hem" };
    }
    case "hem": {
      const h = raw.toLowerCase();
      if (!HEM_RE.test(h)) return { ok: false, reason: "hem must be 64 hex characters (SHA-256)" };
      return { ok: true, key: `hem:${h}`, type: t };
    }
    default:
      return { ok: true, key: `${t}:${raw}`, type: t };
  }
}

/** The type part of a stored key ("eid:uidapi.com:abc" -> "eid:uidapi.com"). */
export function typeOfKey(key: string): string {
  const first = key.indexOf(":");
  const family = key.slice(0, first);
  if (family === "xu" || family === "eid") return key.slice(0, key.indexOf(":", first + 1));
  return family;
}
