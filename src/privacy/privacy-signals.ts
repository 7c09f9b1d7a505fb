// Reads the privacy signals of an OpenRTB 2.5/2.6 BidRequest, validating only what it reads.
// Places: OpenRTB 2.6 §3.2.3 (Regs: coppa, gdpr, us_privacy, gpp, gpp_sid), §3.2.20 (User: consent),
// §3.2.18 (Device: lmt); the 2.5 extension places regs.ext.gdpr, regs.ext.us_privacy and user.ext.consent
// (IAB GDPR / CCPA OpenRTB extensions); device.ext.atts is the Apple ATT status (the Prebid / IAB convention).
// The 2.6 place wins when both are present. A wrong JSON type is a 400 naming the field; nothing is decoded
// here (consent strings are decoded, with a cache, by the privacy gate).
import { badField } from "../errors.ts";
import { type Json, optObject, optString } from "../json-fields.ts";

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

function optAtts(ext: Json): AttStatus | undefined {
  const v = ext.atts;
  if (v === undefined || v === null) return undefined;
  if (v !== 0 && v !== 1 && v !== 2 && v !== 3) throw badField("device.ext.atts", "0, 1, 2 or 3");
  return v;
}

/** The privacy signals of a bid request body (already known to be an object). */
export function readPrivacySignals(body: Json): PrivacySignals {
  let coppa = false;
  let gdpr: 0 | 1 | undefined;
  let usPrivacy: string | undefined;
  let gpp: string | undefined;
  let gppSid: readonly number[] | undefined;
  const regs = optObject(body, "regs", "regs");
  if (regs !== undefined) {
    coppa = optZeroOne(regs, "coppa", "regs.coppa") === 1;
    gdpr = optZeroOne(regs, "gdpr", "regs.gdpr");
    usPrivacy = optString(regs, "us_privacy", "regs.us_privacy");
    gpp = optString(regs, "gpp", "regs.gpp");
    gppSid = optGppSid(regs, "regs.gpp_sid");
    const ext = optObject(regs, "ext", "regs.ext");
    if (ext !== undefined) {
      const extGdpr = optZeroOne(ext, "gdpr", "regs.ext.gdpr");
      if (gdpr === undefined) gdpr = extGdpr;
      const extUsp = optString(ext, "us_privacy", "regs.ext.us_privacy");
      if (usPrivacy === undefined) usPrivacy = extUsp;
    }
  }

  let tcString: string | undefined;
  const user = optObject(body, "user", "user");
  if (user !== undefined) {
    tcString = optString(user, "consent", "user.consent");
    const ext = optObject(user, "ext", "user.ext");
    if (ext !== undefined) {
      const extConsent = optString(ext, "consent", "user.ext.consent");
      if (tcString === undefined) tcString = extConsent;
    }
  }

  let lmt = false;
  let atts: AttStatus | undefined;
  let ifa = false;
  const device = optObject(body, "device", "device");
  if (device !== undefined) {
    lmt = optZeroOne(device, "lmt", "device.lmt") === 1;
    const ext = optObject(device, "ext", "device.ext");
    if (ext !== undefined) atts = optAtts(ext);
    ifa = optString(device, "ifa", "device.ifa") !== undefined;
  }

  return { coppa, gdpr, tcString, usPrivacy, gpp, gppSid, lmt, atts, ifa };
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
