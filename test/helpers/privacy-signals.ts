// The privacy signals of a request that sends none: what readPrivacySignals reads from `{ id }`, and the
// base the gate's tests add their signals to.
import type { PrivacySignals } from "../../src/privacy/privacy-signals.ts";

export const NO_SIGNALS: PrivacySignals = Object.freeze({
  coppa: false,
  gdpr: undefined,
  tcString: undefined,
  usPrivacy: undefined,
  gpp: undefined,
  gppSid: undefined,
  lmt: false,
  atts: undefined,
  ifa: false,
});
