// The compact lookup form, for bidders that have already extracted IDs: no OpenRTB parsing.
import { ApiError, badField, missingField } from "../errors.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { isObject, type Json, optString } from "../json-fields.ts";
import type { PrivacyDecision } from "../privacy/privacy-gate.ts";
import { type PrivacySignals, readCompactSignals } from "../privacy/privacy-signals.ts";
import type { LookupSubject } from "./lookup-subject.ts";

/** The privacy gate as the compact reader uses it: signals in, decision out (privacy-gate.ts decideAccess). */
export type PrivacyGate = (signals: PrivacySignals) => PrivacyDecision;

/**
 * Compact form: `{"id"?: "...", "ids": [{"type": "ifa", "id": "..."}], "gdpr"?: 1, "consent"?: "...", ...}`.
 * Bad entries are 400s here. Privacy signals, when given, go through the same gate as a bid request's:
 * without them the caller is taken to have applied consent itself.
 */
export function readCompact(body: Json, place: string, maxIds: number, gate: PrivacyGate): LookupSubject {
  const reqId = body.id;
  if (reqId !== undefined && reqId !== null && typeof reqId !== "string")
    throw badField(`${place}id`, "a string");
  const ids = body.ids;
  if (!Array.isArray(ids)) throw badField(`${place}ids`, "an array of {type, id} objects");
  if (ids.length > maxIds) {
    throw new ApiError(
      "AUD_ERR_TOO_MANY",
      `${place}ids has ${ids.length} entries; at most ${maxIds}`,
      `${place}ids`,
    );
  }
  const keys: string[] = [];
  const seen = new Set<string>();
  let ifa = false;
  for (let i = 0; i < ids.length; i++) {
    const e = ids[i];
    const f = `${place}ids[${i}]`;
    if (!isObject(e)) throw badField(f, "an object {type, id}");
    const type = optString(e, "type", `${f}.type`);
    if (type === undefined) throw missingField(`${f}.type`);
    const idv = optString(e, "id", `${f}.id`);
    if (idv === undefined) throw missingField(`${f}.id`);
    const r = toTypedId(type, idv);
    if (!r.ok)
      throw new ApiError(
        "AUD_ERR_BAD_FIELD",
        `${f}: ${r.reason}`,
        r.reason.startsWith("unknown") ? `${f}.type` : `${f}.id`,
      );
    if (r.type === "ifa") ifa = true;
    if (!seen.has(r.key)) {
      seen.add(r.key);
      keys.push(r.key);
    }
  }
  const requestId = typeof reqId === "string" ? reqId : null;
  const signals = readCompactSignals(body, place, ifa);
  if (signals === null)
    return { requestId, keys, withheld: [], thirdParties: true, useCaps: true, warnings: null };
  const access = gate(signals);
  // As for a bid request (read-bid-request.ts): no ID at all without personal data, no IFA when withheld.
  const allowed = !access.personal ? [] : access.useIfa ? keys : keys.filter((k) => !k.startsWith("ifa:"));
  return {
    requestId,
    keys: allowed,
    withheld: access.reasons,
    thirdParties: access.thirdParties,
    useCaps: access.useCaps && access.personal,
    // The compact form is read strictly: a malformed part is a 400, never a warning.
    warnings: null,
  };
}
