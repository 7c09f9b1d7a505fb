// In-process store: the embedded default (no Redis needed) and the store for pure-logic tests.
// Keeps the encoded bytes, like Redis, so both go through the same codec.
import {
  type Counters,
  MARK_SUFFIX,
  MAX_COUNTER_FIELDS,
  MAX_MARKERS,
  MAX_NOTICE_TOKENS,
} from "../capping/counters.ts";
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
  type CounterState,
  groupByKey,
  type ImpressionOutcome,
  type ImpressionWrite,
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

/** A bucket field `<scope>|<g>|<bucket>`: its prefix (up to the last '|') and its number. */
const BUCKET_FIELD_RE = /^(.*\|)(\d+)$/;

export class MemoryProfileStore implements ProfileStore {
  readonly kind = "memory";
  readonly #data = new Map<string, Stored>();
  readonly #optedOut = new Set<string>();
  readonly #counters = new Map<string, Map<string, number>>();
  /** Per person, the prune mark of each (scope, granularity): mark field -> [lo, hi] (counters.ts). */
  readonly #marks = new Map<string, Map<string, [number, number]>>();
  /**
   * Per person, impression id -> epoch seconds when its dedup marker lapses, oldest first (as Redis keeps
   * them in one sorted set per person): an event looks at its own person's markers only.
   */
  readonly #seen = new Map<string, Map<string, number>>();
  /** Per person, notice-token nonce -> its expiry and the impression ids it counted. */
  readonly #notices = new Map<string, Map<string, { expiresAtSec: number; imps: string[] }>>();
  readonly #links = new Map<string, Map<string, LinkEdge>>();

  async readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]> {
    const out = new Array<Profile | null>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const s = this.#live(keys[i] as string, nowSec);
      out[i] = s === undefined ? null : liveOrNull(decodeProfile(s.bytes, nowSec));
    }
    return out;
  }

  applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult> {
    return this.applyMembershipGroups(groupByKey(ops), nowSec);
  }

  async applyMembershipGroups(
    groups: ReadonlyMap<string, readonly MembershipOp[]>,
    nowSec: number,
  ): Promise<ApplyResult> {
    const skippedKeys: string[] = [];
    const linkedKeys: string[] = [];
    for (const [key, keyOps] of groups) {
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

  async writeLinks(changes: readonly LinkChange[]): Promise<LinkChange[]> {
    const refused: LinkChange[] = [];
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
      if (c.edge !== null && (this.#optedOut.has(c.a) || this.#optedOut.has(c.b))) {
        refused.push(c);
        continue;
      }
      side(c.a, c.b, c.edge);
      side(c.b, c.a, c.edge);
    }
    return refused;
  }

  async addCounters(keys: readonly string[], delta: Counters): Promise<void> {
    if (delta.size === 0) return;
    for (const k of keys) {
      if (this.#optedOut.has(k)) continue;
      const counters = this.#countersOf(k);
      const marks = this.#marks.get(k);
      for (const [f, n] of delta) {
        const bucket = BUCKET_FIELD_RE.exec(f);
        const mark = bucket === null ? undefined : marks?.get(`${bucket[1]}${MARK_SUFFIX}`);
        if (mark !== undefined) {
          const b = Number(bucket?.[2]);
          if (b < mark[0]) continue;
          if (b > mark[1]) mark[1] = b;
        }
        counters.set(f, (counters.get(f) ?? 0) + n);
      }
    }
  }

  async deleteCounters(keys: readonly string[]): Promise<void> {
    for (const k of keys) {
      this.#counters.delete(k);
      this.#marks.delete(k);
    }
  }

  #countersOf(key: string): Map<string, number> {
    let counters = this.#counters.get(key);
    if (counters === undefined) {
      counters = new Map();
      this.#counters.set(key, counters);
    }
    return counters;
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
      this.#marks.delete(key);
      this.#links.delete(key);
      this.#seen.delete(key);
      this.#notices.delete(key);
      this.#optedOut.add(key);
    }
    return erased;
  }

  async isOptedOut(key: string): Promise<boolean> {
    return this.#optedOut.has(key);
  }

  /** The same steps, in the same order, as the Redis store's Lua (redis-profile-store.ts RECORD_IMPRESSION_LUA). */
  async recordImpression(personKey: string, w: ImpressionWrite, nowSec: number): Promise<ImpressionOutcome> {
    if (this.#optedOut.has(personKey)) return "opted_out";
    const seen = this.#seen.get(personKey);
    const until = seen?.get(w.imp);
    if (until !== undefined && until > nowSec) return "duplicate";
    // The token: an impression id it counted already costs nothing; a new one needs a use left.
    let notices = this.#notices.get(personKey);
    let spend: { expiresAtSec: number; imps: string[] } | null = null;
    if (w.notice !== null) {
      const held = notices?.get(w.notice.nonce);
      if (held === undefined && notices !== undefined && notices.size >= MAX_NOTICE_TOKENS) {
        for (const [nonce, n] of notices) if (n.expiresAtSec <= nowSec) notices.delete(nonce);
        if (notices.size >= MAX_NOTICE_TOKENS) return "replayed";
      }
      const imps = held?.imps ?? [];
      if (!imps.includes(w.imp)) {
        if (imps.length >= w.notice.uses) return "replayed";
        spend = { expiresAtSec: held?.expiresAtSec ?? w.notice.expiresAtSec, imps: [...imps, w.imp] };
      }
    }
    // The bound: what this write would add, before anything is written.
    const counters = this.#counters.get(personKey);
    const marks = this.#marks.get(personKey);
    const held = (counters?.size ?? 0) + (marks?.size ?? 0);
    let adds = 0;
    for (const f of w.counters.lifetime) if (!counters?.has(f)) adds++;
    const plans = w.counters.buckets.map((b) => {
      const mark = marks?.get(`${b.prefix}${MARK_SUFFIX}`);
      if (mark === undefined) adds++;
      const write = b.bucket >= Math.max(b.lo, mark?.[0] ?? b.lo);
      if (write && !counters?.has(`${b.prefix}${b.bucket}`)) adds++;
      return { b, mark, write };
    });
    if (held + adds > MAX_COUNTER_FIELDS) return "full";
    // Writes: the token's use, the marker, the counters.
    if (spend !== null && w.notice !== null) {
      if (notices === undefined) {
        notices = new Map();
        this.#notices.set(personKey, notices);
      }
      notices.set(w.notice.nonce, spend);
    }
    let markers = seen;
    if (markers === undefined) {
      markers = new Map();
      this.#seen.set(personKey, markers);
    }
    // Lapsed markers go as the next one is written; they are oldest first, so the sweep stops at a live one.
    for (const [imp, t] of markers) {
      if (t > nowSec) break;
      markers.delete(imp);
    }
    markers.delete(w.imp);
    markers.set(w.imp, nowSec + w.dedupTtlSec);
    if (markers.size > MAX_MARKERS) markers.delete(markers.keys().next().value as string);
    const out = this.#countersOf(personKey);
    let ownMarks = marks;
    if (ownMarks === undefined) {
      ownMarks = new Map();
      this.#marks.set(personKey, ownMarks);
    }
    for (const f of w.counters.lifetime) out.set(f, (out.get(f) ?? 0) + 1);
    for (const { b, mark, write } of plans) {
      let lo: number;
      let hi: number;
      if (mark === undefined) {
        // No mark yet: buckets merged from a linked ID may lie anywhere within a span of lo.
        if (held > 0) for (let x = b.lo - b.span; x < b.lo; x++) out.delete(`${b.prefix}${x}`);
        lo = b.lo;
        hi = held > 0 ? b.lo + b.span : b.lo - 1;
      } else {
        [lo, hi] = mark;
        if (b.lo > lo) {
          const to = Math.min(b.lo - 1, hi);
          for (let x = lo; x <= to; x++) out.delete(`${b.prefix}${x}`);
          lo = b.lo;
        }
      }
      if (write) {
        const f = `${b.prefix}${b.bucket}`;
        out.set(f, (out.get(f) ?? 0) + 1);
        if (b.bucket > hi) hi = b.bucket;
      }
      ownMarks.set(`${b.prefix}${MARK_SUFFIX}`, [lo, hi]);
    }
    return "counted";
  }

  async readCounterState(personKey: string, nowSec: number): Promise<CounterState> {
    return { counters: await this.readCounters(personKey, nowSec), optedOut: this.#optedOut.has(personKey) };
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
    this.#marks.clear();
    this.#seen.clear();
    this.#notices.clear();
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
