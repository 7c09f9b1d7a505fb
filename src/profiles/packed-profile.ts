// A profile as the cache keeps it: numbers in one string, not an object per membership. A cached 10-segment
// profile held ten membership objects with two strings each (about 700 B of heap); packed it is one string of
// about 60 B. Bid time reads it directly (live-segments.ts); the Profile objects are only made again on request.
import type { LinkedMember, Membership, Profile } from "./profile-codec.ts";

/**
 * Each distinct (segment, source, generation) seen, as a small integer: a packed membership names its kind.
 * Kinds are only added, so a process that sees ever new generations (a replace bumps one) or stray segments
 * would grow it forever: its owner starts a new table (and drops what referred to the old one) at MAX_KINDS.
 */
export class MembershipKinds {
  readonly segment: string[] = [];
  readonly source: string[] = [];
  readonly generation: number[] = [];
  /** Kinds of each segment: almost always one (one source, generation 0), so a short scan beats a key string. */
  readonly #bySegment = new Map<string, number[]>();

  get size(): number {
    return this.segment.length;
  }

  kindOf(segment: string, source: string, generation: number): number {
    const list = this.#bySegment.get(segment);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const k = list[i] as number;
        if (this.source[k] === source && this.generation[k] === generation) return k;
      }
    }
    const k = this.segment.length;
    // Own copies: a decoded string may be a slice of a larger one, which it would keep alive.
    this.segment.push(flatCopy(segment));
    this.source.push(flatCopy(source));
    this.generation.push(generation);
    if (list !== undefined) list.push(k);
    else this.#bySegment.set(segment, [k]);
    return k;
  }
}

/** Kinds one table holds before its owner starts afresh (a 1,000-segment taxonomy with every source and a
 * thousand replaces still fits). Past 2^15 a kind takes two chars instead of one. */
export const MAX_KINDS = 1 << 20;

/**
 * One ID's memberships, packed: per membership its kind (one char below 0x8000; else two, 0x8000 | high 15
 * bits then the low 15) and its expiry in epoch seconds (two chars, high 16 bits then low; 0 = never).
 */
export type PackedMemberships = string;

/** A linked ID's profile in the cache: its own memberships and its person's copies, packed. */
export interface PackedLinked {
  readonly own: PackedMemberships;
  readonly version: number;
  readonly members: readonly PackedMember[];
}

export interface PackedMember {
  readonly key: string;
  readonly confidence: number;
  readonly version: number;
  readonly packed: PackedMemberships;
}

/** What the cache holds for an ID with a profile: the packed string itself when it is not linked (most IDs). */
export type CachedProfile = PackedMemberships | PackedLinked;

/** Epoch seconds as a packed expiry: whole seconds (a fraction never changes `e <= nowSec` for whole nowSec). */
const MAX_EXPIRY = 0xffff_ffff;

let scratch: number[] = new Array<number>(64);

export function packMemberships(memberships: readonly Membership[], kinds: MembershipKinds): string {
  const n = memberships.length;
  if (n === 0) return "";
  if (scratch.length < n * 4) scratch = new Array<number>(n * 4);
  const codes = scratch;
  let c = 0;
  for (let i = 0; i < n; i++) {
    const m = memberships[i] as Membership;
    const k = kinds.kindOf(m.segment, m.source, m.generation);
    if (k < 0x8000) codes[c++] = k;
    else {
      codes[c++] = 0x8000 | (k >>> 15);
      codes[c++] = k & 0x7fff;
    }
    // Past 2106 (never stored in practice) reads as 2106: still later than any bid.
    const e = m.expiresAt >= MAX_EXPIRY ? MAX_EXPIRY : Math.floor(m.expiresAt);
    codes[c++] = e >>> 16;
    codes[c++] = e & 0xffff;
  }
  // One flat string of exactly c chars (no cons string: those keep a second object after flattening).
  return String.fromCharCode.apply(null, c === codes.length ? codes : codes.slice(0, c));
}

export function packProfile(p: Profile, kinds: MembershipKinds): CachedProfile {
  const own = packMemberships(p.memberships, kinds);
  if (p.link === undefined) return own;
  return {
    own,
    version: p.link.version,
    members: p.link.members.map((e) => ({
      key: flatCopy(e.key),
      confidence: e.confidence,
      version: e.version,
      packed: packMemberships(e.memberships, kinds),
    })),
  };
}

/** The memberships again as objects (admin views and tests; bid time never needs them). */
export function unpackMemberships(packed: PackedMemberships, kinds: MembershipKinds): Membership[] {
  const out: Membership[] = [];
  for (let i = 0; i < packed.length; ) {
    let k = packed.charCodeAt(i++);
    if (k >= 0x8000) k = ((k & 0x7fff) << 15) | packed.charCodeAt(i++);
    const expiresAt = packed.charCodeAt(i) * 0x1_0000 + packed.charCodeAt(i + 1);
    i += 2;
    out.push({
      segment: kinds.segment[k] as string,
      expiresAt,
      source: kinds.source[k] as string,
      generation: kinds.generation[k] as number,
    });
  }
  return out;
}

export function unpackProfile(p: CachedProfile, kinds: MembershipKinds): Profile {
  if (typeof p === "string") return { memberships: unpackMemberships(p, kinds) };
  const members: LinkedMember[] = p.members.map((e) => ({
    key: e.key,
    confidence: e.confidence,
    version: e.version,
    memberships: unpackMemberships(e.packed, kinds),
  }));
  return { memberships: unpackMemberships(p.own, kinds), link: { version: p.version, members } };
}

/**
 * An ASCII string as its own flat copy. Decoded strings may be slices of a larger string (msgpackr reads
 * short strings that way) and keys are built by concatenation (a cons string, kept beside its flattened
 * copy as a Map key): either holds more than the characters. Other strings (rare) are returned as they are,
 * since a byte round trip could change them.
 */
export function flatCopy(s: string): string {
  return Buffer.byteLength(s) === s.length ? Buffer.from(s, "latin1").toString("latin1") : s;
}

/** Heap bytes of a flat string: V8's 16-byte header, then one byte per char when all are below 256, else two. */
export function stringBytes(s: string): number {
  let wide = false;
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) > 0xff) {
      wide = true;
      break;
    }
  return 16 + ((((wide ? 2 : 1) * s.length + 7) >>> 3) << 3);
}

/** Heap bytes of what the cache holds for one profile (the value only; the cache adds key and bookkeeping). */
export function cachedBytes(p: CachedProfile): number {
  if (typeof p === "string") return stringBytes(p);
  // The object, its members array (32 and its store, 16 and 8 a member), and per member an object with its
  // key and packed string.
  let bytes = 48 + stringBytes(p.own) + 48 + 8 * p.members.length;
  for (const e of p.members) bytes += 56 + stringBytes(e.key) + stringBytes(e.packed);
  return bytes;
}
