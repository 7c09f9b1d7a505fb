// Who a lookup is about, whatever form the request came in.

export interface LookupSubject {
  readonly requestId: string | null;
  /** Distinct typed-ID keys, in the order found. */
  readonly keys: string[];
  /** Reason codes for IDs or data withheld (e.g. "lmt"). */
  readonly withheld: string[];
}
