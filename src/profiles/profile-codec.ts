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
 * The stored format, version 3, written by every writer (this codec and the Redis scripts):
 *
 *   unlinked: `[3, base, sources, rows]`
 *   linked:   `[3, base, sources, rows, ownVersion, [[memberKey, confidence, memberVersion, rows], ...]]`
 *
 * - `sources`: the distinct source strings of the whole profile (own rows first, then each member's), in
 *   the order first met; rows name a source by its 0-based index.
 * - `base`: the smallest non-zero expiresAt of the whole profile (own and members' rows), 0 if none.
 * - `rows`: one flat array of runs, each `count, expiry, sourceIndex, generation, segment × count`: the
 *   memberships in their order, consecutive ones sharing expiry, source and generation written once. `expiry`
 *   is -1 for a membership that never expires (expiresAt 0), else expiresAt - base (>= 0). A `segment` is
 *   a msgpack integer when its id is a canonical decimal integer of at most 9 digits ("0", "1001"; never
 *   "007"), read back as its decimal string; else the string.
 *
 * Runs rather than a row per membership: the memberships of one load share expiry, source and generation,
 * so 10 segments loaded at once take 47 bytes, where a row of 4 items per membership would take 75 (and
 * format 1 takes 163).
 *
 * Read, never written: version 1, `[1, [[segment, expiresAt, source, generation], ...]]` (a row without the
 * fourth element has generation 0), and version 2 for linked IDs,
 * `[2, rows, ownVersion, [[memberKey, confidence, memberVersion, rows], ...]]` with rows as in version 1.
 * A stored profile of an earlier version is rewritten as version 3 by its next write. A reader meeting a
 * higher version refuses it.
 */
export const STORED_FORMAT_VERSION = 3;
/** Earlier stored versions, still read: unlinked (1) and linked (2) profiles. */
export const PROFILE_FORMAT_VERSION = 1;
export const LINKED_FORMAT_VERSION = 2;

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export class CodecError extends Error {
  readonly code = "AUD_ERR_CODEC";
}

/** Segment ids written as msgpack integers: at most 9 digits (a uint32), no leading zero but "0" itself. */
const INTEGER_SEGMENT = /^(?:0|[1-9][0-9]{0,8})$/;

/** The smallest non-zero expiry of a profile, own memberships and members' copies. */
function baseOf(memberships: readonly Membership[], members: readonly LinkedMember[]): number {
  let base = 0;
  const lower = (ms: readonly Membership[]): void => {
    for (const m of ms) if (m.expiresAt !== 0 && (base === 0 || m.expiresAt < base)) base = m.expiresAt;
  };
  lower(memberships);
  for (const e of members) lower(e.memberships);
  return base;
}

/** Writes the runs of one membership list, naming sources in the profile's shared list. */
class RunWriter {
  readonly sources: string[] = [];
  readonly #index = new Map<string, number>();
  constructor(readonly base: number) {}

  runs(memberships: readonly Membership[]): (string | number)[] {
    const out: (string | number)[] = [];
    let head = -1;
    for (const m of memberships) {
      let source = this.#index.get(m.source);
      if (source === undefined) {
        source = this.sources.length;
        this.sources.push(m.source);
        this.#index.set(m.source, source);
      }
      const expiry = m.expiresAt === 0 ? -1 : m.expiresAt - this.base;
      if (head >= 0 && out[head + 1] === expiry && out[head + 2] === source && out[head + 3] === m.generation)
        (out[head] as number)++;
      else {
        head = out.length;
        out.push(1, expiry, source, m.generation);
      }
      out.push(INTEGER_SEGMENT.test(m.segment) ? Number(m.segment) : m.segment);
    }
    return out;
  }
}

/** A profile in the stored format (version 3). */
export function encodeProfile(memberships: readonly Membership[], link?: ProfileLink): Buffer {
  const members = link?.members ?? [];
  const w = new RunWriter(baseOf(memberships, members));
  const own = w.runs(memberships);
  if (link === undefined || members.length === 0)
    return packr.pack([STORED_FORMAT_VERSION, w.base, w.sources, own]);
  const held = members.map((e) => [e.key, e.confidence, e.version, w.runs(e.memberships)]);
  return packr.pack([STORED_FORMAT_VERSION, w.base, w.sources, own, link.version, held]);
}

// What the store hands its Redis scripts (never stored): memberships as plain rows, as ops are, which the
// scripts fold into the stored format with the rest of the profile.
type Row = [string, number, string, number];

function toRows(memberships: readonly Membership[]): Row[] {
  const rows = new Array<Row>(memberships.length);
  for (let i = 0; i < memberships.length; i++) {
    const m = memberships[i] as Membership;
    rows[i] = [m.segment, m.expiresAt, m.source, m.generation];
  }
  return rows;
}

/** Linked members as the Redis scripts take them: `[[key, confidence, version, [[segment, expiresAt, source, generation], ...]], ...]`. */
export function encodeMembersArray(members: readonly LinkedMember[]): unknown[] {
  return members.map((e) => [e.key, e.confidence, e.version, toRows(e.memberships)]);
}

export function encodeMembers(members: readonly LinkedMember[]): Buffer {
  return packr.pack(encodeMembersArray(members));
}

/** Memberships as the Redis scripts take them: `[[segment, expiresAt, source, generation], ...]`. */
export function encodeMemberships(memberships: readonly Membership[]): Buffer {
  return packr.pack(toRows(memberships));
}

/** Decodes a stored profile (version 1, 2 or 3), dropping memberships expired at `nowSec`. */
export function decodeProfile(buf: Uint8Array, nowSec: number): Profile {
  let v: unknown;
  try {
    v = packr.unpack(buf);
  } catch (err) {
    throw new CodecError(`profile is not msgpack: ${(err as Error).message}`);
  }
  if (!Array.isArray(v)) throw new CodecError("unsupported profile format (version ?)");
  const version = v[0];
  // Where the own rows sit, and how a list of rows is read, per version.
  let at: number;
  let read: (rows: unknown[], what: string) => Membership[];
  if (version === STORED_FORMAT_VERSION && isStoredHead(v)) {
    const base = v[1] as number;
    const sources = v[2] as string[];
    at = 3;
    read = (rows, what) => decodeRuns(rows, base, sources, nowSec, what);
  } else if (
    (version === PROFILE_FORMAT_VERSION || version === LINKED_FORMAT_VERSION) &&
    Array.isArray(v[1])
  ) {
    at = 1;
    read = (rows, what) => decodeRows(rows, nowSec, what);
  } else throw new CodecError(`unsupported profile format (version ${String(version)})`);
  const memberships = read(v[at] as unknown[], "profile");
  if (version === PROFILE_FORMAT_VERSION || (version === STORED_FORMAT_VERSION && v.length <= 4))
    return { memberships };
  const ownVersion = v[at + 1];
  const raw = v[at + 2];
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
      memberships: read(e[3], `linked member ${i}`),
    };
  }
  return { memberships, link: { version: ownVersion, members } };
}

/** `[3, base, sources, rows, ...]` with a numeric base, string sources and an array of rows. */
function isStoredHead(v: unknown[]): boolean {
  const sources = v[2];
  return (
    typeof v[1] === "number" &&
    Array.isArray(sources) &&
    sources.every((s) => typeof s === "string") &&
    Array.isArray(v[3])
  );
}

/** The runs of version 3 (`count, expiry, sourceIndex, generation, segment × count`, ...) as memberships. */
function decodeRuns(
  runs: unknown[],
  base: number,
  sources: readonly string[],
  nowSec: number,
  what: string,
): Membership[] {
  const memberships: Membership[] = [];
  let row = 0;
  let i = 0;
  while (i < runs.length) {
    const count = runs[i];
    const expiry = runs[i + 1];
    const index = runs[i + 2];
    const generation = runs[i + 3];
    const source = typeof index === "number" ? sources[index] : undefined;
    if (
      typeof count !== "number" ||
      !Number.isInteger(count) ||
      count < 1 ||
      i + 4 + count > runs.length ||
      typeof expiry !== "number" ||
      (expiry < 0 && expiry !== -1) ||
      source === undefined ||
      typeof generation !== "number"
    ) {
      throw new CodecError(`${what} row ${row} is malformed`);
    }
    const expiresAt = expiry === -1 ? 0 : base + expiry;
    const live = expiresAt === 0 || expiresAt > nowSec;
    const end = i + 4 + count;
    for (let j = i + 4; j < end; j++, row++) {
      const seg = runs[j];
      let segment: string;
      if (typeof seg === "string") segment = seg;
      else if (typeof seg === "number" && Number.isSafeInteger(seg) && seg >= 0) segment = String(seg);
      else throw new CodecError(`${what} row ${row} is malformed`);
      if (live) memberships.push({ segment, expiresAt, source, generation });
    }
    i = end;
  }
  return memberships;
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
