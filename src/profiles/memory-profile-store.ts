// In-process store: the embedded default (no Redis needed) and the store for pure-logic tests.
// Keeps the encoded bytes, like Redis, so both go through the same codec.
import { pruneFields } from "../capping/cap-windows.ts";
import type { Counters } from "../capping/counters.ts";
import {
  applyOps,
  decodeProfile,
  encodeProfile,
  keyExpiry,
  type LinkedMember,
  liveOrNull,
  type MembershipOp,
  type Profile,
  putOrigin,
  setMembers,
} from "./profile-codec.ts";
import {
  type ApplyResult,
  groupByKey,
  type LinkChange,
  type LinkEdge,
  type OriginUpdate,
  type ProfileStore,
} from "./profile-store.ts";

interface Stored {
  readonly bytes: Buffer;
  /** Epoch seconds after which the whole entry is gone; 0 = never (as a Redis key TTL). */
  readonly expiresAt: number;
}

export class MemoryProfileStore implements ProfileStore {
  readonly kind = "memory";
  readonly #data = new Map<string, Stored>();
  readonly #optedOut = new Set<string>();
  readonly #counters = new Map<string, Map<string, number>>();
  /** "<person>\n<imp>" -> epoch seconds when the dedup marker lapses. */
  readonly #seen = new Map<string, number>();
  readonly #links = new Map<string, Map<string, LinkEdge>>();

  async readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]> {
    const out = new Array<Profile | null>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const s = this.#live(keys[i] as string, nowSec);
      out[i] = s === undefined ? null : liveOrNull(decodeProfile(s.bytes, nowSec));
    }
    return out;
  }

  async applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult> {
    const skippedKeys: string[] = [];
    const linkedKeys: string[] = [];
    for (const [key, keyOps] of groupByKey(ops)) {
      if (this.#optedOut.has(key)) {
        skippedKeys.push(key);
        continue;
      }
      const s = this.#live(key, nowSec);
      const current = s === undefined ? null : decodeProfile(s.bytes, nowSec);
      const next = applyOps(current?.memberships ?? [], keyOps, nowSec);
      const link = current?.link;
      if (link !== undefined) {
        linkedKeys.push(key);
        this.#put(key, { memberships: next, link: { version: link.version + 1, members: link.members } });
      } else this.#put(key, { memberships: next });
    }
    return { skippedKeys, linkedKeys };
  }

  async putOrigins(updates: readonly OriginUpdate[], nowSec: number): Promise<void> {
    for (const u of updates) {
      if (this.#optedOut.has(u.target)) continue;
      const s = this.#live(u.target, nowSec);
      if (s === undefined) continue;
      const next = putOrigin(decodeProfile(s.bytes, nowSec), u.origin, u.version, u.memberships);
      if (next !== null) this.#put(u.target, next);
    }
  }

  async setMembers(
    views: readonly { key: string; members: readonly LinkedMember[] }[],
    nowSec: number,
  ): Promise<void> {
    for (const v of views) {
      if (this.#optedOut.has(v.key)) continue;
      const s = this.#live(v.key, nowSec);
      this.#put(v.key, setMembers(s === undefined ? null : decodeProfile(s.bytes, nowSec), v.members));
    }
  }

  async readLinks(keys: readonly string[]): Promise<Map<string, Map<string, LinkEdge>>> {
    const out = new Map<string, Map<string, LinkEdge>>();
    for (const k of keys) out.set(k, new Map(this.#links.get(k) ?? []));
    return out;
  }

  async writeLinks(changes: readonly LinkChange[]): Promise<void> {
    const side = (from: string, to: string, edge: LinkEdge | null): void => {
      let m = this.#links.get(from);
      if (edge === null) {
        m?.delete(to);
        if (m?.size === 0) this.#links.delete(from);
        return;
      }
      if (m === undefined) {
        m = new Map();
        this.#links.set(from, m);
      }
      m.set(to, edge);
    };
    for (const c of changes) {
      side(c.a, c.b, c.edge);
      side(c.b, c.a, c.edge);
    }
  }

  async addCounters(keys: readonly string[], delta: Counters): Promise<void> {
    if (delta.size === 0) return;
    for (const k of keys) {
      let counters = this.#counters.get(k);
      if (counters === undefined) {
        counters = new Map();
        this.#counters.set(k, counters);
      }
      for (const [f, n] of delta) counters.set(f, (counters.get(f) ?? 0) + n);
    }
  }

  async deleteCounters(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.#counters.delete(k);
  }

  #put(key: string, p: Profile): void {
    if (p.memberships.length === 0 && p.link === undefined) this.#data.delete(key);
    else
      this.#data.set(key, {
        bytes: encodeProfile(p.memberships, p.link),
        expiresAt: keyExpiry(p.memberships, p.link),
      });
  }

  async optOut(keys: readonly string[], nowSec: number): Promise<number> {
    let erased = 0;
    for (const key of keys) {
      if (this.#live(key, nowSec) !== undefined) erased++;
      this.#data.delete(key);
      this.#counters.delete(key);
      this.#links.delete(key);
      for (const m of this.#seen.keys()) if (m.startsWith(`${key}\n`)) this.#seen.delete(m);
      this.#optedOut.add(key);
    }
    return erased;
  }

  async isOptedOut(key: string): Promise<boolean> {
    return this.#optedOut.has(key);
  }

  async recordImpression(
    personKey: string,
    imp: string,
    fields: readonly string[],
    dedupTtlSec: number,
    nowSec: number,
  ): Promise<boolean> {
    const marker = `${personKey}\n${imp}`;
    const until = this.#seen.get(marker);
    if (until !== undefined && until > nowSec) return false;
    if (this.#seen.size >= 100_000) {
      // Lapsed markers are only found when looked at; sweep them so the map stays bounded.
      for (const [m, t] of this.#seen) if (t <= nowSec) this.#seen.delete(m);
    }
    this.#seen.set(marker, nowSec + dedupTtlSec);
    let counters = this.#counters.get(personKey);
    if (counters === undefined) {
      counters = new Map();
      this.#counters.set(personKey, counters);
    }
    for (const f of fields) counters.set(f, (counters.get(f) ?? 0) + 1);
    for (const f of pruneFields(counters.keys(), nowSec)) counters.delete(f);
    return true;
  }

  async readCounters(personKey: string, _nowSec: number): Promise<Counters> {
    return new Map(this.#counters.get(personKey) ?? []);
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#data.clear();
    this.#optedOut.clear();
    this.#counters.clear();
    this.#seen.clear();
    this.#links.clear();
  }

  /** Number of stored keys (for the start-up log and tests). */
  get size(): number {
    return this.#data.size;
  }

  #live(key: string, nowSec: number): Stored | undefined {
    const s = this.#data.get(key);
    if (s === undefined) return undefined;
    if (s.expiresAt !== 0 && s.expiresAt <= nowSec) {
      this.#data.delete(key);
      return undefined;
    }
    return s;
  }
}
