// Reads the user IDs and device signals out of an OpenRTB 2.5/2.6 BidRequest, validating only what it reads.
// Field places: OpenRTB 2.6 §3.2.20 (User: buyeruid, id, eids), §3.2.18 (Device: ifa, lmt), and the 2.5
// convention of user.ext.eids (Prebid / EID extension) for exchanges that have not moved to 2.6.
import type { BidRequest as BidRequest25 } from "iab-openrtb/v25";
import type { BidRequest as BidRequest26 } from "iab-openrtb/v26";
import { badField, missingField } from "../errors.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { isObject, type Json, optObject, optString } from "../json-fields.ts";
import type { LookupSubject } from "../lookup/lookup-subject.ts";
import type { PrivacyDecision } from "../privacy/privacy-gate.ts";

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

function readEids(user: Json, key: string, place: string, out: KeyCollector): void {
  const eids = user[key];
  if (eids === undefined || eids === null) return;
  if (!Array.isArray(eids)) throw badField(place, "an array of EID objects");
  for (let i = 0; i < eids.length; i++) {
    const eid = eids[i];
    const f = `${place}[${i}]`;
    if (!isObject(eid)) throw badField(f, "an EID object");
    const source = optString(eid, "source", `${f}.source`);
    if (source === undefined) throw missingField(`${f}.source`);
    const uids = eid.uids;
    if (uids === undefined || uids === null) continue;
    if (!Array.isArray(uids)) throw badField(`${f}.uids`, "an array of UID objects");
    for (let j = 0; j < uids.length; j++) {
      const uid = uids[j];
      if (!isObject(uid)) throw badField(`${f}.uids[${j}]`, "a UID object");
      out.add(`eid:${source.toLowerCase()}`, optString(uid, "id", `${f}.uids[${j}].id`));
    }
  }
}

/**
 * @param exchange namespace for user.id ("" when the caller named none: user.id is then ignored)
 * @param maxIds most typed IDs taken from one request
 * @param access the privacy gate's decision: with nothing personal allowed no ID is taken at all, and
 *   device.ifa only when the device signals allow it
 */
export function readBidRequest(
  body: Json,
  exchange: string,
  maxIds: number,
  access: PrivacyDecision,
): LookupSubject {
  const id = body.id;
  if (id === undefined || id === null) throw missingField("id");
  if (typeof id !== "string") throw badField("id", "a string");

  // Fields are read (and so validated) whatever the decision: a malformed request is a 400 either way.
  const out = new KeyCollector(access.personal ? maxIds : 0);

  const user = optObject(body, "user", "user");
  if (user !== undefined) {
    out.add("bu", optString(user, "buyeruid", "user.buyeruid"));
    const xuid = optString(user, "id", "user.id");
    if (exchange !== "") out.add(`xu:${exchange}`, xuid);
    readEids(user, "eids", "user.eids", out);
    const ext = optObject(user, "ext", "user.ext");
    if (ext !== undefined) readEids(ext, "eids", "user.ext.eids", out);
  }

  const device = optObject(body, "device", "device");
  if (device !== undefined) {
    const ifa = optString(device, "ifa", "device.ifa");
    if (access.useIfa) out.add("ifa", ifa);
  }

  return {
    requestId: id,
    keys: out.keys,
    withheld: access.reasons,
    thirdParties: access.thirdParties,
    // With nothing personal there is no person whose caps state could be handed out.
    useCaps: access.useCaps && access.personal,
  };
}
