// The privacy decision for one bid request: what of the person's data may be used. A pure function of the
// request's signals and the policy; it never throws, whatever the strings hold.
//
// Rules, each adding its reason (in this order, each at most once):
//  - coppa: regs.coppa = 1. Nothing personal, no IFA, no frequency caps.
//  - gdpr_bad_consent / gdpr_no_consent: GDPR applies (regs.gdpr = 1, or gpp_sid lists 2, the TCF EU
//    section) and the TC string is missing or undecodable (bad), or it does not give every required
//    purpose a legal basis with our vendor (no). The TC string is user.consent, or the GPP string's tcfeuv2
//    section when user.consent is absent and gpp_sid lists 2. A purpose has a basis when it has purpose
//    consent and we have vendor consent; or, with allowLegitimateInterest, when it has purpose LI and we
//    have vendor LI, except for purposes 1 and 3 to 6, which TCF v2.2 allows on consent only. With no
//    vendorId configured there is never consent. Publisher restrictions in the TC string are not read.
//    Nothing personal, no IFA, no frequency caps (the counters are personal data too).
//  - usp_optout / usp_bad_string: the US Privacy string (version 1) says opt-out of sale ('Y' second of
//    the three flags). A malformed string (not 4 characters of '1' then Y, N or '-' each, upper case only,
//    as IAB's specification writes it) is reported (bad) and then read as no signal, as IAB's reference
//    code and prebid-server do; so is '-' (not applicable), unreported. An empty string is no signal.
//  - gpp_bad_string / gpp_optout: gpp_sid lists sections and regs.gpp cannot be decoded (bad: treated as
//    an opt-out), or a listed US section (uspv1, usnat, a state) says opt-out of sale, sharing or targeted
//    advertising, unless policy.gppStates sets that section to ignore. Without gpp_sid nothing of the GPP
//    string applies and it is not decoded. GPC and the sensitive-data fields are not read.
//    An opt-out (USP or GPP): no second- or third-party segments; with firstPartyOnOptOut false, nothing
//    personal either. IFA and frequency caps stay allowed.
//  - lmt: device.lmt = 1, or device.ext.atts present and not 3 (authorized). The IFA is not used (and the
//    reason is given only when the request sent one).
// thirdParties is never true when personal is false.
import { type ConsentDecoder, createConsentDecoder, hasVendor, type TcfConsent } from "./consent-decoder.ts";
import { GPP_TCFEUV2_ID, GPP_US_SECTION_NAME_BY_ID } from "./gpp-sections.ts";
import type { PrivacyPolicy } from "./privacy-config.ts";
import type { PrivacySignals } from "./privacy-signals.ts";

/** Every reason an answer may give for what it withheld (its `withheld`, and /healthz's counts). */
export const PRIVACY_REASONS = [
  "coppa",
  "gdpr_bad_consent",
  "gdpr_no_consent",
  "usp_optout",
  "usp_bad_string",
  "gpp_bad_string",
  "gpp_optout",
  "lmt",
] as const;

export type PrivacyReason = (typeof PRIVACY_REASONS)[number];

export interface PrivacyDecision {
  /** Person-keyed data may be used at all (first-party segments). */
  readonly personal: boolean;
  /** Second- and third-party segments may be used. */
  readonly thirdParties: boolean;
  /** The device IFA may be used as an ID. */
  readonly useIfa: boolean;
  /** Per-person frequency-capping counters may be read and written. */
  readonly useCaps: boolean;
  /** Why anything was withheld; empty when nothing was. */
  readonly reasons: PrivacyReason[];
}

/** Everything allowed, nothing withheld: a request that carries no privacy signal at all. */
export const FULL_ACCESS: PrivacyDecision = Object.freeze({
  personal: true,
  thirdParties: true,
  useIfa: true,
  useCaps: true,
  reasons: Object.freeze([]) as unknown as PrivacyReason[],
});

/** Purposes that may rest on legitimate interest under TCF v2.2: not 1, 3, 4, 5 or 6. */
const LI_ELIGIBLE_MASK = ~(0b111101 as number);

/** Used when decideAccess is given no decoder. */
const defaultDecoder: ConsentDecoder = createConsentDecoder();

/** True when the TC string gives every required purpose a legal basis with our vendor. */
export function tcfAllows(c: TcfConsent, policy: PrivacyPolicy): boolean {
  const vendor = policy.vendorId;
  if (vendor === undefined) return false;
  const vendorConsent = hasVendor(c.vendorConsents, vendor);
  const vendorLi = policy.allowLegitimateInterest && hasVendor(c.vendorLegitimateInterests, vendor);
  const liMask = vendorLi ? c.purposeLegitimateInterests & LI_ELIGIBLE_MASK : 0;
  const consentMask = vendorConsent ? c.purposeConsents : 0;
  const purposes = policy.requiredPurposes;
  for (let i = 0; i < purposes.length; i++) {
    const bit = 1 << ((purposes[i] as number) - 1);
    if ((consentMask & bit) === 0 && (liMask & bit) === 0) return false;
  }
  return true;
}

/** What a US Privacy string says: opt-out of sale, no opt-out (or not applicable), or malformed. */
export type UspReading = "optout" | "none" | "bad";

/** Reads a version-1 US Privacy string by IAB's specification: "1", then Y, N or "-" three times. */
export function readUsp(usp: string): UspReading {
  // Exactly 4 characters: any other length, however long, is malformed before a character of it is read.
  if (usp.length !== 4 || usp.charCodeAt(0) !== 0x31 /* 1 */) return "bad";
  let optOut = false;
  for (let i = 1; i < 4; i++) {
    const c = usp.charCodeAt(i);
    if (c !== 0x59 /* Y */ && c !== 0x4e /* N */ && c !== 0x2d /* - */) return "bad";
    if (i === 2) optOut = c === 0x59;
  }
  return optOut ? "optout" : "none";
}

function listed(sids: readonly number[] | undefined, id: number): boolean {
  return sids?.includes(id) === true;
}

export function decideAccess(
  signals: PrivacySignals,
  policy: PrivacyPolicy,
  decoder: ConsentDecoder = defaultDecoder,
): PrivacyDecision {
  let personal = true;
  let thirdParties = true;
  let useIfa = true;
  let useCaps = true;
  const reasons: PrivacyReason[] = [];

  if (signals.coppa) {
    personal = useIfa = useCaps = false;
    reasons.push("coppa");
  }

  const sids = signals.gppSid;
  const gppString = signals.gpp;
  const gppApplies = gppString !== undefined && gppString !== "" && sids !== undefined && sids.length > 0;
  const gpp = gppApplies ? decoder.gpp(gppString) : undefined;

  if (signals.gdpr === 1 || listed(sids, GPP_TCFEUV2_ID)) {
    let tc = signals.tcString;
    if ((tc === undefined || tc === "") && listed(sids, GPP_TCFEUV2_ID)) tc = gpp?.tcfEuV2;
    const consent = tc === undefined || tc === "" ? undefined : decoder.tcf(tc);
    if (consent === undefined || !tcfAllows(consent, policy)) {
      personal = useIfa = useCaps = false;
      reasons.push(consent === undefined ? "gdpr_bad_consent" : "gdpr_no_consent");
    }
  }

  let optOut = false;
  if (signals.usPrivacy !== undefined && signals.usPrivacy !== "") {
    const usp = readUsp(signals.usPrivacy);
    if (usp === "optout") {
      optOut = true;
      reasons.push("usp_optout");
    } else if (usp === "bad") reasons.push("usp_bad_string");
  }

  if (gppApplies && gpp === undefined) {
    optOut = true;
    reasons.push("gpp_bad_string");
  } else if (gpp !== undefined && sids !== undefined) {
    const out = gpp.optedOut;
    for (let i = 0; i < out.length; i++) {
      const id = out[i] as number;
      if (!sids.includes(id)) continue;
      const name = GPP_US_SECTION_NAME_BY_ID[id];
      if (name !== undefined && policy.gppStates[name] === "ignore") continue;
      optOut = true;
      reasons.push("gpp_optout");
      break;
    }
  }

  if (optOut) {
    thirdParties = false;
    if (!policy.firstPartyOnOptOut) personal = false;
  }

  if (signals.lmt || (signals.atts !== undefined && signals.atts !== 3)) {
    useIfa = false;
    // Reported only when an IFA was sent: a request without one had nothing withheld.
    if (signals.ifa) reasons.push("lmt");
  }

  return { personal, thirdParties: thirdParties && personal, useIfa, useCaps, reasons };
}
