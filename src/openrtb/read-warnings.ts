// What lenient reading skipped. Exchanges send noisy bid requests: a malformed optional part is skipped and
// named here, with the code an error about it would carry, and the bid goes on. Only a body that is not a JSON
// object, or has no string `id`, is refused.
import type { ErrorCode } from "../errors.ts";
import type { Json } from "../json-fields.ts";

export interface ReadWarning {
  /** The part skipped, as an error would name it: "user.eids[0].source". */
  readonly field: string;
  readonly code: ErrorCode;
}

/** Warnings of one request; the list is made on the first, so that a clean request allocates no list. */
export class ReadWarnings {
  list: ReadWarning[] | null = null;

  bad(field: string): void {
    this.#add({ field, code: "AUD_ERR_BAD_FIELD" });
  }

  missing(field: string): void {
    this.#add({ field, code: "AUD_ERR_MISSING_FIELD" });
  }

  tooMany(field: string): void {
    this.#add({ field, code: "AUD_ERR_TOO_MANY" });
  }

  #add(w: ReadWarning): void {
    if (this.list === null) this.list = [w];
    else if (!this.list.some((x) => x.field === w.field)) this.list.push(w);
  }
}

/** An optional string member: the string, or undefined when absent, null or not a string (warned). */
export function laxString(
  parent: Json,
  key: string,
  field: string,
  warnings: ReadWarnings,
): string | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  warnings.bad(field);
  return undefined;
}
