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
  /** The ID's own memberships. */
  readonly memberships: readonly Membership[];
  /** Only for an ID linked to others (identity graph): the person it belongs to, denormalised here. */
  readonly link?: ProfileLink;
}

/**
 * What one ID carries of its person, written at link and load time so that a bid-time read is one hop:
 * every other ID of the person with its confidence and a copy of that ID's own memberships.
 */
export interface ProfileLink {
  /** Bumped on every change of this ID's own memberships: copies elsewhere are replaced only by newer ones. */
  readonly version: number;
  readonly members: readonly LinkedMember[];
}

export interface LinkedMember {
  readonly key: string;
  /** Confidence of the link from this ID to that one: the weakest edge on the strongest path (1 = deterministic). */
  readonly confidence: number;
  /** The version of that ID's own memberships copied here. */
  readonly version: number;
  readonly memberships: readonly Membership[];
}

/**
 * Version 1 on the wire: `[1, [[segment, expiresAt, source, generation], ...]]`; a row without the
 * fourth element has generation 0. Version 2, for linked IDs only:
 * `[2, rows, ownVersion, [[memberKey, confidence, memberVersion, rows], ...]]`. Unlinked IDs stay on
 * version 1, so the identity graph costs them nothing. A reader meeting a higher version refuses it.
 */
export const PROFILE_FORMAT_VERSION = 1;
export const LINKED_FORMAT_VERSION = 2;

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export class CodecError extends Error {
  readonly code = "AUD_ERR_CODEC";
}

type Row = [string, number, string, number];

function toRows(memberships: readonly Membership[]): Row[] {
  const rows = new Array<Row>(memberships.length);
  for (let i = 0; i < memberships.length; i++) {
    const m = memberships[i] as Membership;
    rows[i] = [m.segment, m.expiresAt, m.source, m.generation];
  }
  return rows;
}

export function encodeProfile(memberships: readonly Membership[], link?: ProfileLink): Buffer {
  if (link === undefined || link.members.length === 0) {
    return packr.pack([PROFILE_FORMAT_VERSION, toRows(memberships)]);
  }
  return packr.pack([
    LINKED_FORMAT_VERSION,
    toRows(memberships),
    link.version,
    encodeMembersArray(link.members),
  ]);
}

/** Linked members as the wire (and the Lua scripts) hold them: `[[key, confidence, version, rows], ...]`. */
export function encodeMembersArray(members: readonly LinkedMember[]): unknown[] {
  return members.map((e) => [e.key, e.confidence, e.version, toRows(e.memberships)]);
}

export function encodeMembers(members: readonly LinkedMember[]): Buffer {
  return packr.pack(encodeMembersArray(members));
}

export function encodeMemberships(memberships: readonly Membership[]): Buffer {
  return packr.pack(toRows(memberships));
}

/** Decodes a stored profile, dropping memberships expired at `nowSec`. */
export function decodeProfile(buf: Uint8Array, nowSec: number): Profile {
  let v: unknown;
  try {
    v = packr.unpack(buf);
  } catch (err) {
    throw new CodecError(`profile is not msgpack: ${(err as Error).message}`);
  }
  const version = Array.isArray(v) ? v[0] : undefined;
  if (
    !Array.isArray(v) ||
    (version !== PROFILE_FORMAT_VERSION && version !== LINKED_FORMAT_VERSION) ||
    !Array.isArray(v[1])
  ) {
    throw new CodecError(`unsupported profile format (version ${Array.isArray(v) ? String(v[0]) : "?"})`);
  }
  const memberships = decodeRows(v[1] as unknown[], nowSec, "profile");
  if (version === PROFILE_FORMAT_VERSION) return { memberships };
  const ownVersion = v[2];
  const raw = v[3];
  if (typeof ownVersion !== "number" || !Array.isArray(raw))
    throw new CodecError("linked profile is malformed");
  const members = new Array<LinkedMember>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i];
    if (
      !Array.isArray(e) ||
      typeof e[0] !== "string" ||
      typeof e[1] !== "number" ||
      typeof e[2] !== "number" ||
      !Array.isArray(e[3])
    ) {
      throw new CodecError(`linked member ${i} is malformed`);
    }
    members[i] = {
      key: e[0],
      confidence: e[1],
      version: e[2],
      memberships: decodeRows(e[3], nowSec, `linked member ${i}`),
    };
  }
  return { memberships, link: { version: ownVersion, members } };
}

function decodeRows(rows: unknown[], nowSec: number, what: string): Membership[] {
  const memberships: Membership[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Array.isArray(r) || typeof r[0] !== "string" || typeof r[1] !== "number") {
      throw new CodecError(`${what} row ${i} is malformed`);
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
  return memberships;
}

/**
 * A profile with nothing live reads as no profile at all, in every store. A linked ID with no
 * memberships of its own or of its person still reads: the event path needs its person.
 */
export function liveOrNull(p: Profile): Profile | null {
  return p.memberships.length === 0 && p.link === undefined ? null : p;
}

/**
 * Replaces the copy of `origin`'s own memberships held in a linked profile, when the copy is older than
 * `version`. A profile not (or no longer) linked to `origin` is left as it is: links decide membership of a
 * person, propagation never adds a member. The Redis store runs the same rule in Lua.
 */
export function putOrigin(
  p: Profile,
  origin: string,
  version: number,
  memberships: readonly Membership[],
): Profile | null {
  const link = p.link;
  if (link === undefined) return null;
  const i = link.members.findIndex((e) => e.key === origin);
  if (i < 0 || (link.members[i] as LinkedMember).version >= version) return null;
  const members = link.members.slice();
  members[i] = { ...(link.members[i] as LinkedMember), version, memberships };
  return { memberships: p.memberships, link: { version: link.version, members } };
}

/**
 * Sets the person of a profile to `members` (from a fresh read of the graph), keeping, for a member whose
 * copy here is newer than the one given, the copy here: a load that ran meanwhile is not undone.
 */
export function setMembers(p: Profile | null, members: readonly LinkedMember[]): Profile {
  const own = p?.memberships ?? [];
  const ownVersion = p?.link?.version ?? 0;
  if (members.length === 0) return { memberships: own };
  const held = new Map((p?.link?.members ?? []).map((e) => [e.key, e]));
  const next = members.map((e) => {
    const h = held.get(e.key);
    return h !== undefined && h.version > e.version
      ? { ...e, version: h.version, memberships: h.memberships }
      : e;
  });
  return { memberships: own, link: { version: ownVersion, members: next } };
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

/**
 * The op lists of several IDs in one buffer (one script call merges many IDs), flat:
 * `[n1, op, segment, expiresAt, source, gen, minGen, ... (n1 ops), n2, ...]`. A table per ID and per op
 * cost the script more to unpack than merging the ops did.
 */
export function encodeOpsByKey(opsByKey: readonly (readonly MembershipOp[])[]): Buffer {
  let size = 0;
  for (const ops of opsByKey) size += 1 + ops.length * 6;
  const flat = new Array<string | number>(size);
  let i = 0;
  for (const ops of opsByKey) {
    flat[i++] = ops.length;
    for (const o of ops) {
      flat[i++] = o.op === "add" ? 1 : 0;
      flat[i++] = o.segment;
      flat[i++] = o.expiresAt;
      flat[i++] = o.source;
      flat[i++] = o.generation;
      flat[i++] = o.minGeneration;
    }
  }
  return packr.pack(flat);
}

/**
 * When the key holding these memberships may be dropped: the latest expiry, or 0 when one never expires.
 * A linked profile is kept as long as its links (0).
 */
export function keyExpiry(memberships: readonly Membership[], link?: ProfileLink): number {
  if (link !== undefined && link.members.length > 0) return 0;
  let latest = 0;
  for (const m of memberships) {
    if (m.expiresAt === 0) return 0;
    if (m.expiresAt > latest) latest = m.expiresAt;
  }
  return latest;
}
