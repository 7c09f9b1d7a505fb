// The compact lookup form, for bidders that have already extracted IDs: no OpenRTB parsing.
import { ApiError, badField, missingField } from "../errors.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { isObject, type Json, optString } from "../json-fields.ts";
import type { LookupSubject } from "./lookup-subject.ts";

/** Compact form: `{"id"?: "...", "ids": [{"type": "ifa", "id": "..."}]}`. Bad entries are 400s here. */
export function readCompact(body: Json, place: string, maxIds: number): LookupSubject {
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
    if (!seen.has(r.key)) {
      seen.add(r.key);
      keys.push(r.key);
    }
  }
  // The compact form carries no consent signals: a caller that uses it has applied them already.
  return {
    requestId: typeof reqId === "string" ? reqId : null,
    keys,
    withheld: [],
    thirdParties: true,
    useCaps: true,
  };
}
