// Who a lookup is about, whatever form the request came in.
import type { ReadWarning } from "../openrtb/read-warnings.ts";

export interface LookupSubject {
  readonly requestId: string | null;
  /** Distinct typed-ID keys, in the order found. */
  readonly keys: string[];
  /** Reason codes for IDs or data withheld by the privacy gate (e.g. "lmt", "gdpr_no_consent"). */
  readonly withheld: string[];
  /** Second- and third-party segments may be returned (false after a US opt-out of sale or sharing). */
  readonly thirdParties: boolean;
  /** Caps state keyed on the person may be read and handed out (false under COPPA or without GDPR consent). */
  readonly useCaps: boolean;
  /** Parts of a bid request skipped as malformed (lenient reading); null when none (and for compact forms). */
  readonly warnings: readonly ReadWarning[] | null;
}
