// Reads the user IDs and device signals out of an OpenRTB 2.5/2.6 BidRequest, validating only what it reads.
// Field places: OpenRTB 2.6 §3.2.20 (User: buyeruid, id, eids), §3.2.18 (Device: ifa, lmt), and the 2.5
// convention of user.ext.eids (Prebid / EID extension) for exchanges that have not moved to 2.6.
import type { BidRequest as BidRequest25 } from "iab-openrtb/v25";
import type { BidRequest as BidRequest26 } from "iab-openrtb/v26";
import { badField, missingField } from "../errors.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { isObject, type Json } from "../json-fields.ts";
import type { LookupSubject } from "../lookup/lookup-subject.ts";
import type { PrivacyDecision } from "../privacy/privacy-gate.ts";
import { laxString, type ReadWarnings } from "./read-warnings.ts";

/** The bid request shapes accepted at the edge. */
export type IncomingBidRequest = BidRequest26 | BidRequest25;

/** Collects distinct keys up to a limit; IDs past the limit are ignored rather than refused. */
class KeyCollector {
  readonly keys: string[] = [];
  readonly #seen = new Set<string>();
  constructor(readonly limit: number) {}

  add(type: string, id: string | undefined): void {
    if (id === undefined || this.keys.length >= this.limit) return;
    const r = toTypedId(type, id);
    // An empty, zeroed or oversized ID in a bid request is common noise: skip it, never fail the bid.
    if (!r.ok || this.#seen.has(r.key)) return;
    this.#seen.add(r.key);
    this.keys.push(r.key);
  }
}

/** Every ID of an `eids` array; a malformed EID, UID or ID is skipped and warned, the others are taken. */
function readEids(user: Json, key: string, place: string, out: KeyCollector, warnings: ReadWarnings): void {
  const eids = user[key];
  if (eids === undefined || eids === null) return;
  if (!Array.isArray(eids)) {
    warnings.bad(place);
    return;
  }
  for (let i = 0; i < eids.length; i++) {
    const eid = eids[i];
    const f = `${place}[${i}]`;
    if (!isObject(eid)) {
      warnings.bad(f);
      continue;
    }
    const source = eid.source;
    if (source === undefined || source === null) {
      warnings.missing(`${f}.source`);
      continue;
    }
    if (typeof source !== "string") {
      warnings.bad(`${f}.source`);
      continue;
    }
    const uids = eid.uids;
    if (uids === undefined || uids === null) continue;
    if (!Array.isArray(uids)) {
      warnings.bad(`${f}.uids`);
      continue;
    }
    for (let j = 0; j < uids.length; j++) {
      const uid = uids[j];
      if (!isObject(uid)) {
        warnings.bad(`${f}.uids[${j}]`);
        continue;
      }
      out.add(`eid:${source.toLowerCase()}`, laxString(uid, "id", `${f}.uids[${j}].id`, warnings));
    }
  }
}

/**
 * @param exchange namespace for user.id ("" when the caller named none: user.id is then ignored)
 * @param maxIds most typed IDs taken from one request
 * @param access the privacy gate's decision: with nothing personal allowed no ID is taken at all, and
 *   device.ifa only when the device signals allow it
 * @param warnings where skipped parts are named. Read leniently: only a missing or non-string `id` is refused.
 *   A `user`, `user.ext` or `device` that is not an object, and a `device.ifa` that is not a string, are
 *   skipped here and warned by readPrivacySignals, which reads them first.
 */
export function readBidRequest(
  body: Json,
  exchange: string,
  maxIds: number,
  access: PrivacyDecision,
  warnings: ReadWarnings,
): LookupSubject {
  const id = body.id;
  if (id === undefined || id === null) throw missingField("id");
  if (typeof id !== "string") throw badField("id", "a string");

  // Fields are read (and so warned about) whatever the decision.
  const out = new KeyCollector(access.personal ? maxIds : 0);

  const user = body.user;
  if (isObject(user)) {
    out.add("bu", laxString(user, "buyeruid", "user.buyeruid", warnings));
    const xuid = laxString(user, "id", "user.id", warnings);
    if (exchange !== "") out.add(`xu:${exchange}`, xuid);
    readEids(user, "eids", "user.eids", out, warnings);
    const ext = user.ext;
    if (isObject(ext)) readEids(ext, "eids", "user.ext.eids", out, warnings);
  }

  const device = body.device;
  if (isObject(device) && access.useIfa) {
    const ifa = device.ifa;
    if (typeof ifa === "string") out.add("ifa", ifa);
  }

  return {
    requestId: id,
    keys: out.keys,
    withheld: access.reasons,
    thirdParties: access.thirdParties,
    // With nothing personal there is no person whose caps state could be handed out.
    useCaps: access.useCaps && access.personal,
    warnings: warnings.list,
  };
}
