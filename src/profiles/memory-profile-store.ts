// In-process store: the embedded default (no Redis needed) and the store for pure-logic tests.
// Keeps the encoded bytes, like Redis, so both go through the same codec.
import { pruneFields } from "../capping/cap-windows.ts";
import type { Counters } from "../capping/counters.ts";
import {
  applyOps,
  decodeProfile,
  encodeProfile,
  keyExpiry,
  liveOrNull,
  type MembershipOp,
  type Profile,
} from "./profile-codec.ts";
import { type ApplyResult, groupByKey, type ProfileStore } from "./profile-store.ts";

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
    for (const [key, keyOps] of groupByKey(ops)) {
      if (this.#optedOut.has(key)) {
        skippedKeys.push(key);
        continue;
      }
      const s = this.#live(key, nowSec);
      const current = s === undefined ? [] : decodeProfile(s.bytes, nowSec).memberships;
      const next = applyOps(current, keyOps, nowSec);
      if (next.length === 0) this.#data.delete(key);
      else this.#data.set(key, { bytes: encodeProfile(next), expiresAt: keyExpiry(next) });
    }
    return { skippedKeys };
  }

  async optOut(keys: readonly string[], nowSec: number): Promise<number> {
    let erased = 0;
    for (const key of keys) {
      if (this.#live(key, nowSec) !== undefined) erased++;
      this.#data.delete(key);
      this.#counters.delete(key);
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
