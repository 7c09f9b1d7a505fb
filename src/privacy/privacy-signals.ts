// Reads the privacy signals of an OpenRTB 2.5/2.6 BidRequest, validating only what it reads.
// Places: OpenRTB 2.6 §3.2.3 (Regs: coppa, gdpr, us_privacy, gpp, gpp_sid), §3.2.20 (User: consent),
// §3.2.18 (Device: lmt); the 2.5 extension places regs.ext.gdpr, regs.ext.us_privacy and user.ext.consent
// (IAB GDPR / CCPA OpenRTB extensions); device.ext.atts is the Apple ATT status (the Prebid / IAB convention).
// The 2.6 place wins when both are present. Nothing is decoded here (consent strings are decoded, with a
// cache, by the privacy gate).
// A bid request is read leniently, and fails closed: a malformed signal is warned and read as the strictest
// value it could have meant (readPrivacySignals says which). The compact form, our own API, is read strictly:
// a wrong JSON type is a 400 naming the field.
import { badField } from "../errors.ts";
import { isObject, type Json, optString } from "../json-fields.ts";
import type { ReadWarnings } from "../openrtb/read-warnings.ts";

/** Apple App Tracking Transparency status: 0 not determined, 1 restricted, 2 denied, 3 authorized. */
export type AttStatus = 0 | 1 | 2 | 3;

export interface PrivacySignals {
  /** regs.coppa = 1. */
  readonly coppa: boolean;
  /** regs.gdpr (2.6) or regs.ext.gdpr (2.5); undefined when absent (unknown). */
  readonly gdpr: 0 | 1 | undefined;
  /** user.consent (2.6) or user.ext.consent (2.5): the TCF v2 TC string, as sent. */
  readonly tcString: string | undefined;
  /** regs.us_privacy (2.6) or regs.ext.us_privacy (2.5): the IAB US Privacy string, as sent. */
  readonly usPrivacy: string | undefined;
  /** regs.gpp: the GPP string, as sent. */
  readonly gpp: string | undefined;
  /** regs.gpp_sid: the GPP sections that apply to this request (the request's own array, not a copy). */
  readonly gppSid: readonly number[] | undefined;
  /** device.lmt = 1. */
  readonly lmt: boolean;
  /** device.ext.atts; undefined when absent. */
  readonly atts: AttStatus | undefined;
  /** Whether device.ifa was sent: lmt and ATT withhold it, and only a sent one can be reported withheld. */
  readonly ifa: boolean;
}

function optZeroOne(parent: Json, key: string, field: string): 0 | 1 | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (v !== 0 && v !== 1) throw badField(field, "0 or 1");
  return v;
}

function optGppSid(parent: Json, field: string): readonly number[] | undefined {
  const v = parent.gpp_sid;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badField(field, "an array of integers");
  for (let i = 0; i < v.length; i++) {
    const sid: unknown = v[i];
    // Any integer: an ID of no known section is simply not acted on.
    if (!Number.isInteger(sid)) throw badField(`${field}[${i}]`, "an integer");
  }
  return v as readonly number[];
}

/**
 * Stands for a consent string sent with the wrong JSON type: never decodable, so it is judged as a malformed
 * string is (a TC string: gdpr_bad_consent where GDPR applies; a US Privacy string: usp_bad_string; a GPP
 * string whose sections apply: gpp_bad_string, an opt-out).
 */
export const MALFORMED_STRING = "\u0000";

/** What a member holds: absent (undefined or null), the value, or malformed (there, of the wrong type). */
const MALFORMED = Symbol("malformed");

function zeroOne(parent: Json, key: string): 0 | 1 | undefined | typeof MALFORMED {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  return v === 0 || v === 1 ? v : MALFORMED;
}

function str(parent: Json, key: string): string | undefined | typeof MALFORMED {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  return typeof v === "string" ? v : MALFORMED;
}

function obj(parent: Json, key: string): Json | undefined | typeof MALFORMED {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  return isObject(v) ? v : MALFORMED;
}

/**
 * The privacy signals of a bid request body (already known to be an object), read leniently. Each malformed
 * signal is warned and fails closed:
 *  - `regs` not an object: COPPA, and GDPR applies (neither can be read);
 *  - `regs.coppa` not 0 or 1: COPPA; `regs.gdpr` (or, without it, `regs.ext.gdpr`, or a malformed `regs.ext`)
 *    not 0 or 1: GDPR applies, and the consent is judged as sent;
 *  - a consent string (`user.consent`, `regs.us_privacy`, `regs.gpp`, or their 2.5 places) of the wrong type:
 *    judged as an undecodable string (MALFORMED_STRING);
 *  - `regs.gpp_sid` not an array of integers: the GPP string is judged undecodable for a section that
 *    applies (gpp_bad_string, an opt-out);
 *  - `device` not an object, or `device.lmt` not 0 or 1: limit ad tracking; `device.ext` not an object, or
 *    `device.ext.atts` not 0 to 3: ATT not authorised. Either way the IFA is not used.
 * A `user` or `user.ext` that is not an object is warned and carries no consent (where GDPR applies: bad).
 */
export function readPrivacySignals(body: Json, warnings: ReadWarnings): PrivacySignals {
  let coppa = false;
  let gdpr: 0 | 1 | undefined;
  let usPrivacy: string | undefined;
  let gpp: string | undefined;
  let gppSid: readonly number[] | undefined;
  const regs = obj(body, "regs");
  if (regs === MALFORMED) {
    warnings.bad("regs");
    coppa = true;
    gdpr = 1;
  } else if (regs !== undefined) {
    const c = zeroOne(regs, "coppa");
    if (c === MALFORMED) warnings.bad("regs.coppa");
    coppa = c === 1 || c === MALFORMED;
    const g = zeroOne(regs, "gdpr");
    if (g === MALFORMED) warnings.bad("regs.gdpr");
    gdpr = g === MALFORMED ? 1 : g;
    usPrivacy = signalString(regs, "us_privacy", "regs.us_privacy", warnings);
    gpp = signalString(regs, "gpp", "regs.gpp", warnings);
    const sid = regs.gpp_sid;
    if (sid !== undefined && sid !== null) {
      if (Array.isArray(sid) && sid.every((x) => Number.isInteger(x))) gppSid = sid as readonly number[];
      else {
        warnings.bad("regs.gpp_sid");
        // Which sections apply is unknown: as if one did and the string could not be read.
        gppSid = UNKNOWN_SECTIONS;
        gpp = MALFORMED_STRING;
      }
    }
    const ext = obj(regs, "ext");
    if (ext === MALFORMED) {
      warnings.bad("regs.ext");
      gdpr ??= 1;
      usPrivacy ??= MALFORMED_STRING;
    } else if (ext !== undefined) {
      const eg = zeroOne(ext, "gdpr");
      if (eg === MALFORMED) warnings.bad("regs.ext.gdpr");
      gdpr ??= eg === MALFORMED ? 1 : eg;
      usPrivacy ??= signalString(ext, "us_privacy", "regs.ext.us_privacy", warnings);
    }
  }

  let tcString: string | undefined;
  const user = obj(body, "user");
  if (user === MALFORMED) warnings.bad("user");
  else if (user !== undefined) {
    tcString = signalString(user, "consent", "user.consent", warnings);
    const ext = obj(user, "ext");
    if (ext === MALFORMED) warnings.bad("user.ext");
    else if (ext !== undefined) tcString ??= signalString(ext, "consent", "user.ext.consent", warnings);
  }

  let lmt = false;
  let atts: AttStatus | undefined;
  let ifa = false;
  const device = obj(body, "device");
  if (device === MALFORMED) {
    warnings.bad("device");
    lmt = true;
  } else if (device !== undefined) {
    const l = zeroOne(device, "lmt");
    if (l === MALFORMED) warnings.bad("device.lmt");
    lmt = l === 1 || l === MALFORMED;
    const ext = obj(device, "ext");
    if (ext === MALFORMED) {
      warnings.bad("device.ext");
      atts = 0;
    } else if (ext !== undefined) {
      const a = ext.atts;
      if (a === 0 || a === 1 || a === 2 || a === 3) atts = a;
      else if (a !== undefined && a !== null) {
        warnings.bad("device.ext.atts");
        atts = 0;
      }
    }
    const i = str(device, "ifa");
    if (i === MALFORMED) warnings.bad("device.ifa");
    ifa = typeof i === "string";
  }

  return { coppa, gdpr, tcString, usPrivacy, gpp, gppSid, lmt, atts, ifa };
}

/** A section ID no GPP string holds: listed, it makes GPP apply, and an undecodable string an opt-out. */
const UNKNOWN_SECTIONS: readonly number[] = Object.freeze([0]);

/** A consent string member: the string, undefined when absent, MALFORMED_STRING (warned) when not a string. */
function signalString(parent: Json, key: string, field: string, warnings: ReadWarnings): string | undefined {
  const v = str(parent, key);
  if (v !== MALFORMED) return v;
  warnings.bad(field);
  return MALFORMED_STRING;
}

/** The privacy fields of the compact lookup form, flat where a bid request nests them in regs, user and device. */
export const COMPACT_SIGNAL_FIELDS = [
  "coppa",
  "gdpr",
  "consent",
  "us_privacy",
  "gpp",
  "gpp_sid",
  "lmt",
] as const;

/**
 * The privacy signals of one compact lookup (the body, or one batch entry, `place` prefixing field names):
 * `coppa`, `gdpr`, `lmt` (0 or 1), `consent` (TC string), `us_privacy`, `gpp` and `gpp_sid`, with the meaning
 * and validation of their bid-request places. `ifa` says whether the entry names an IFA. Null when the entry
 * carries none of them: the caller sent no signal, and the gate would allow everything.
 */
export function readCompactSignals(entry: Json, place: string, ifa: boolean): PrivacySignals | null {
  if (
    entry.coppa === undefined &&
    entry.gdpr === undefined &&
    entry.consent === undefined &&
    entry.us_privacy === undefined &&
    entry.gpp === undefined &&
    entry.gpp_sid === undefined &&
    entry.lmt === undefined
  )
    return null;
  return {
    coppa: optZeroOne(entry, "coppa", `${place}coppa`) === 1,
    gdpr: optZeroOne(entry, "gdpr", `${place}gdpr`),
    tcString: optString(entry, "consent", `${place}consent`),
    usPrivacy: optString(entry, "us_privacy", `${place}us_privacy`),
    gpp: optString(entry, "gpp", `${place}gpp`),
    gppSid: optGppSid(entry, `${place}gpp_sid`),
    lmt: optZeroOne(entry, "lmt", `${place}lmt`) === 1,
    atts: undefined,
    ifa,
  };
}
