// What a reader of only some members (openrtb/bid-request-scan.ts) can see of a body, worked out from the
// whole parse: the members `spec` names, nested ones picked the same way, of a "length" member that is an
// array only its length, of an `each` array each element picked. Compared with the reduced read.
import { isObject, type Json } from "../../src/json-fields.ts";
import { Each, type MemberSpec } from "../../src/openrtb/bid-request-scan.ts";

export function visibleMembers(value: unknown, spec: MemberSpec): unknown {
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [k, kind] of Object.entries(spec)) {
    if (!Object.hasOwn(value, k)) continue;
    const v = value[k];
    if (kind === "length") out[k] = Array.isArray(v) ? { arrayOfLength: v.length } : v;
    else if (kind instanceof Each) out[k] = Array.isArray(v) ? v.map((e) => visibleMembers(e, kind.spec)) : v;
    else out[k] = kind === true ? v : visibleMembers(v, kind);
  }
  return out;
}
