// Writes an enrichment into OpenRTB: the person's segments as user.data[] (OpenRTB 2.6 §3.2.21 Data,
// §3.2.22 Segment, with the Segment Taxonomy extension `ext.segtax`) and unlocked deals in imp[].pmp.deals
// (§3.2.11 Pmp, §3.2.12 Deal). Three forms: the whole request, the ORTB2 fragment to merge, and the IAB
// Agentic RTB Framework's mutations. Everything the caller sent is kept.
import { isAscii, isUtf8 } from "node:buffer";
import type { Data, Deal, Segment } from "iab-openrtb/v26";
import { isObject, type Json } from "../json-fields.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import type { DealRuleDef } from "../segments/deal-rule.ts";

/** What to add: user.data entries (or segments to add to an entry the caller sent), deals per imp index. */
export interface Enrichment {
  /** One entry per provider and taxonomy; `existing` is the index of the caller's own entry it extends. */
  readonly data: { readonly entry: Data; readonly existing: number | null }[];
  /** Deals to add to each imp (by index in imp[]), none already there. */
  readonly deals: readonly Deal[][];
}

/**
 * Groups the segments by provider and taxonomy: `name` is the provider, `ext.segtax` the taxonomy number
 * (4 = IAB Audience Taxonomy 1.1, or the provider's own registered one) with the segment's id in it; a
 * segment without a taxonomy mapping goes out under its own id and no segtax.
 */
export function userDataOf(segments: Iterable<string>, snapshot: CatalogSnapshot): Data[] {
  const groups = new Map<string, Data>();
  for (const id of segments) {
    const def = snapshot.get(id);
    const name = def?.provider ?? "audience";
    const segtax = def?.segtax ?? null;
    const key = `${name}\n${segtax ?? ""}`;
    let d = groups.get(key);
    if (d === undefined) {
      d = segtax === null ? { name, segment: [] } : { name, segment: [], ext: { segtax } };
      groups.set(key, d);
    }
    const segmentId = segtax !== null && def?.segtaxId != null ? def.segtaxId : id;
    (d.segment as Segment[]).push({ id: segmentId });
  }
  for (const d of groups.values())
    (d.segment as Segment[]).sort((a, b) => ((a.id ?? "") < (b.id ?? "") ? -1 : 1));
  // By provider, then taxonomy (none first): the same answer whatever order the memberships came in.
  const segtaxOf = (d: Data): number => (d.ext as { segtax?: number } | undefined)?.segtax ?? -1;
  return [...groups.values()].sort((a, b) =>
    a.name === b.name ? segtaxOf(a) - segtaxOf(b) : (a.name ?? "") < (b.name ?? "") ? -1 : 1,
  );
}

/** What to add to the request, leaving out what the caller already sent (no duplicate entry or deal). */
export function planEnrichment(
  body: Json,
  data: readonly Data[],
  dealsPerImp: readonly (readonly DealRuleDef[])[],
): Enrichment {
  const user = isObject(body.user) ? body.user : null;
  const theirs = user !== null && Array.isArray(user.data) ? (user.data as unknown[]) : [];
  const planned: { entry: Data; existing: number | null }[] = [];
  for (const d of data) {
    const segtax = (d.ext as { segtax?: number } | undefined)?.segtax ?? null;
    // Only an entry whose `segment` is absent or a list is extended: one of another type (a noisy request) is
    // left as sent, and ours goes beside it.
    const at = theirs.findIndex(
      (t) =>
        isObject(t) &&
        t.name === d.name &&
        ((isObject(t.ext) ? t.ext.segtax : undefined) ?? null) === segtax &&
        (t.segment === undefined || t.segment === null || Array.isArray(t.segment)),
    );
    if (at < 0) {
      planned.push({ entry: d, existing: null });
      continue;
    }
    const have = new Set(
      (Array.isArray((theirs[at] as Json).segment) ? ((theirs[at] as Json).segment as unknown[]) : [])
        .map((s) => (isObject(s) ? s.id : undefined))
        .filter((id) => typeof id === "string"),
    );
    const missing = (d.segment ?? []).filter((s) => !have.has(s.id ?? ""));
    if (missing.length > 0) planned.push({ entry: { ...d, segment: missing }, existing: at });
  }
  const imps = Array.isArray(body.imp) ? (body.imp as Json[]) : [];
  const deals = imps.map((imp, i) => {
    // Entries of any shape may be here (lenient reading): only an object's pmp is read.
    const pmp = isObject(imp) && isObject(imp.pmp) ? imp.pmp : null;
    const held = new Set(
      (pmp !== null && Array.isArray(pmp.deals) ? (pmp.deals as unknown[]) : [])
        .map((d) => (isObject(d) ? d.id : undefined))
        .filter((id) => typeof id === "string"),
    );
    return (dealsPerImp[i] ?? []).filter((r) => !held.has(r.id)).map(toDeal);
  });
  return { data: planned, deals };
}

function toDeal(r: DealRuleDef): Deal {
  const d: Deal = { id: r.id, bidfloor: r.bidfloor, bidfloorcur: r.bidfloorcur, at: r.at };
  if (r.wseat !== null) d.wseat = [...r.wseat];
  if (r.wadomain !== null) d.wadomain = [...r.wadomain];
  return d;
}

/** The request with the enrichment merged in: new objects along the changed paths, the rest shared. */
export function enrichedRequest(body: Json, e: Enrichment): Json {
  const out: Json = { ...body };
  if (e.data.length > 0) {
    const user: Json = isObject(body.user) ? { ...body.user } : {};
    const data = Array.isArray(user.data) ? [...(user.data as unknown[])] : [];
    for (const p of e.data) {
      if (p.existing === null) data.push(p.entry);
      else {
        const t = data[p.existing] as Json;
        const segs = Array.isArray(t.segment) ? (t.segment as unknown[]) : [];
        data[p.existing] = { ...t, segment: [...segs, ...(p.entry.segment ?? [])] };
      }
    }
    user.data = data;
    out.user = user;
  }
  if (e.deals.some((d) => d.length > 0)) {
    out.imp = (body.imp as Json[]).map((imp, i) => {
      const add = e.deals[i] ?? [];
      if (add.length === 0) return imp;
      const pmp: Json = isObject(imp.pmp) ? { ...imp.pmp } : {};
      pmp.deals = [...(Array.isArray(pmp.deals) ? (pmp.deals as unknown[]) : []), ...add];
      return { ...imp, pmp };
    });
  }
  return out;
}

/** The request's impressions; deals are planned only for those that are objects (none otherwise). */
function impsOf(body: Json): Json[] {
  return Array.isArray(body.imp) ? (body.imp as Json[]) : [];
}

/** Only what to merge: `user.data` entries (new ones, or the added segments of the caller's) and each imp's new deals. */
export function enrichmentFragment(body: Json, e: Enrichment): Json {
  const imps = impsOf(body);
  return {
    user: { data: e.data.map((p) => p.entry) },
    imp: imps.flatMap((imp, i) =>
      (e.deals[i] ?? []).length > 0 ? [{ id: imp.id, pmp: { deals: e.deals[i] } }] : [],
    ),
  };
}

/**
 * The same as Agentic RTB Framework (ARTF v1.0) mutations of the bid request: one ACTIVATE_SEGMENTS per
 * user.data entry (path `/user/data/segment`, the segment ids as the IDs payload; the entry's name and
 * segtax alongside in `data`, which the IDs payload cannot carry), one ACTIVATE_DEALS per imp (path
 * `/imp/<imp id>`, the deal ids; the deals' terms alongside in `deals`).
 */
export function enrichmentMutations(body: Json, e: Enrichment): Json {
  const mutations: Json[] = [];
  for (const p of e.data) {
    mutations.push({
      intent: "ACTIVATE_SEGMENTS",
      op: "OPERATION_ADD",
      path: "/user/data/segment",
      ids: { id: (p.entry.segment ?? []).map((s) => s.id) },
      data: { name: p.entry.name, ...(p.entry.ext === undefined ? {} : { ext: p.entry.ext }) },
    });
  }
  const imps = impsOf(body);
  imps.forEach((imp, i) => {
    const deals = e.deals[i] ?? [];
    if (deals.length === 0) return;
    mutations.push({
      intent: "ACTIVATE_DEALS",
      op: "OPERATION_ADD",
      path: `/imp/${String(imp.id)}`,
      ids: { id: deals.map((d) => d.id) },
      deals,
    });
  });
  return { id: body.id, mutations };
}

/**
 * The enriched request written by inserting the enrichment into the request's own bytes, at the closing
 * brackets `ends` gives (the body from a positioned read, bid-request-scan.ts): the same JSON value as
 * enrichedRequest, without writing the whole request again, and with everything the caller sent exactly as
 * sent (number spellings, escapes, spacing). Null when it cannot be done that way and the caller must write
 * the whole request: a caller's user.data entry to extend, a null user, pmp or deals to replace, a body
 * that is not valid UTF-8 (the parsed path writes its replacement characters).
 */
export function splicedRequest(
  bytes: Buffer,
  body: Json,
  ends: ReadonlyMap<object, number>,
  e: Enrichment,
): Buffer | null {
  const inserts: { at: number; text: string }[] = [];
  const insert = (into: object, text: (empty: boolean) => string): boolean => {
    const at = ends.get(into);
    if (at === undefined) return false;
    inserts.push({ at, text: text(isEmptyAt(bytes, at)) });
    return true;
  };
  // `items` at the end of owner[key][list] (user.data, pmp.deals), what is absent created on the way; false
  // when a null is in the way (the whole-request writer replaces it) or a position is unknown.
  const append = (owner: Json, key: string, list: string, items: string): boolean => {
    const mid = owner[key];
    if (mid === undefined)
      return insert(owner, (empty) => `${empty ? "" : ","}"${key}":{"${list}":[${items}]}`);
    if (!isObject(mid)) return false;
    const arr = mid[list];
    if (arr === undefined) return insert(mid, (empty) => `${empty ? "" : ","}"${list}":[${items}]`);
    return Array.isArray(arr) && insert(arr, (empty) => `${empty ? "" : ","}${items}`);
  };
  if (e.data.length > 0) {
    let entries = "";
    for (const p of e.data) {
      if (p.existing !== null) return null;
      entries += entries === "" ? JSON.stringify(p.entry) : `,${JSON.stringify(p.entry)}`;
    }
    if (!append(body, "user", "data", entries)) return null;
  }
  const imps = Array.isArray(body.imp) ? (body.imp as Json[]) : [];
  for (let i = 0; i < imps.length; i++) {
    const add = e.deals[i] ?? [];
    if (add.length === 0) continue;
    const deals = add.map((d) => JSON.stringify(d)).join(",");
    if (!append(imps[i] as Json, "pmp", "deals", deals)) return null;
  }
  // Invalid UTF-8 would go out as sent; the whole-request writer sends its replacement characters instead.
  if (!isAscii(bytes) && !isUtf8(bytes)) return null;
  if (inserts.length === 0) return bytes;
  inserts.sort((a, b) => a.at - b.at);
  const parts: Buffer[] = [];
  let from = 0;
  for (const { at, text } of inserts) {
    parts.push(bytes.subarray(from, at), Buffer.from(text, "utf8"));
    from = at;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

/** Whether the object or array closing at `at` has no member: its opening bracket is the byte before, spaces aside. */
function isEmptyAt(bytes: Buffer, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i--;
  return bytes[i] === 0x7b || bytes[i] === 0x5b;
}
