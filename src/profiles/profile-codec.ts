// The stored profile format, fixed here and versioned. Any process (or the Redis Lua script) can read it:
// plain msgpack arrays, no msgpackr record extensions, no per-process structures.
import { Packr } from "msgpackr";

/**
 * One segment membership. `expiresAt` is epoch seconds; 0 means it does not expire.
 * `generation` ties it to one load of its segment: a bid-time answer uses only the memberships of the
 * segment's active generation, which is how a bulk replace of a segment swaps in one step (see catalog.ts).
 */
export interface Membership {
  readonly segment: string;
  readonly expiresAt: number;
  readonly source: string;
  readonly generation: number;
}

export interface Profile {
  readonly memberships: readonly Membership[];
}

/**
 * Version 1 on the wire: `[1, [[segment, expiresAt, source, generation], ...]]`; a row without the
 * fourth element has generation 0. A reader meeting a higher version refuses it (CodecError).
 */
export const PROFILE_FORMAT_VERSION = 1;

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export class CodecError extends Error {
  readonly code = "AUD_ERR_CODEC";
}

export function encodeProfile(memberships: readonly Membership[]): Buffer {
  const rows = new Array<[string, number, string, number]>(memberships.length);
  for (let i = 0; i < memberships.length; i++) {
    const m = memberships[i] as Membership;
    rows[i] = [m.segment, m.expiresAt, m.source, m.generation];
  }
  return packr.pack([PROFILE_FORMAT_VERSION, rows]);
}

/** Decodes a stored profile, dropping memberships expired at `nowSec`. */
export function decodeProfile(buf: Uint8Array, nowSec: number): Profile {
  let v: unknown;
  try {
    v = packr.unpack(buf);
  } catch (err) {
    throw new CodecError(`profile is not msgpack: ${(err as Error).message}`);
  }
  if (!Array.isArray(v) || v[0] !== PROFILE_FORMAT_VERSION || !Array.isArray(v[1])) {
    throw new CodecError(`unsupported profile format (version ${Array.isArray(v) ? String(v[0]) : "?"})`);
  }
  const rows = v[1] as unknown[];
  const memberships: Membership[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Array.isArray(r) || typeof r[0] !== "string" || typeof r[1] !== "number") {
      throw new CodecError(`profile row ${i} is malformed`);
    }
    const expiresAt = r[1];
    if (expiresAt !== 0 && expiresAt <= nowSec) continue;
    memberships.push({
      segment: r[0],
      expiresAt,
      source: typeof r[2] === "string" ? r[2] : "",
      generation: typeof r[3] === "number" ? r[3] : 0,
    });
  }
  return { memberships };
}

/** A profile whose memberships have all expired reads as no profile at all, in every store. */
export function liveOrNull(p: Profile): Profile | null {
  return p.memberships.length === 0 ? null : p;
}

/** A change to one ID's memberships, as the ingest path produces it. */
export interface MembershipOp {
  /** Typed ID key, e.g. "ifa:6d9…". */
  readonly key: string;
  readonly op: "add" | "remove";
  readonly segment: string;
  /** Epoch seconds; 0 = never. An add whose expiry has passed acts as a remove. */
  readonly expiresAt: number;
  readonly source: string;
  /** Generation the membership is written under (the segment's active one, or a replace's new one). */
  readonly generation: number;
  /** Rows of this segment under an older generation than this are garbage and dropped. */
  readonly minGeneration: number;
}

/**
 * Applies ops to a membership list: live memberships kept; for each op's segment, rows older than its
 * minGeneration dropped; an add replaces the row of the same segment and generation; a remove drops every
 * row of the segment. The Redis store runs the same rules in Lua (redis-profile-store.ts); the contract
 * tests hold them equal.
 */
export function applyOps(
  current: readonly Membership[],
  ops: readonly MembershipOp[],
  nowSec: number,
): Membership[] {
  let rows = current.filter((m) => m.expiresAt === 0 || m.expiresAt > nowSec);
  for (const o of ops) {
    rows = rows.filter(
      (m) =>
        m.segment !== o.segment ||
        (o.op === "add" && m.generation >= o.minGeneration && m.generation !== o.generation),
    );
    if (o.op === "add" && (o.expiresAt === 0 || o.expiresAt > nowSec)) {
      rows.push({ segment: o.segment, expiresAt: o.expiresAt, source: o.source, generation: o.generation });
    }
  }
  return rows;
}

const opRow = (o: MembershipOp): [number, string, number, string, number, number] => [
  o.op === "add" ? 1 : 0,
  o.segment,
  o.expiresAt,
  o.source,
  o.generation,
  o.minGeneration,
];

/** One ID's op list as the Redis Lua merge reads it: `[[op (1 add, 0 remove), segment, expiresAt, source, gen, minGen], ...]`. */
export function encodeOps(ops: readonly MembershipOp[]): Buffer {
  return packr.pack(ops.map(opRow));
}

/** The op lists of several IDs in one buffer (one script call merges many IDs): `[[ops of ID 1], ...]`. */
export function encodeOpsByKey(opsByKey: readonly (readonly MembershipOp[])[]): Buffer {
  return packr.pack(opsByKey.map((ops) => ops.map(opRow)));
}

/** When the key holding these memberships may be dropped: the latest expiry, or 0 when one never expires. */
export function keyExpiry(memberships: readonly Membership[]): number {
  let latest = 0;
  for (const m of memberships) {
    if (m.expiresAt === 0) return 0;
    if (m.expiresAt > latest) latest = m.expiresAt;
  }
  return latest;
}
