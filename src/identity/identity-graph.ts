// The identity graph: links between typed IDs, persons as their connected components, and the denormalised
// copy of a person kept under each of its IDs so that a bid-time lookup stays one read per ID. The rules live
// here once; the stores only hold edges, profiles and counters (profile-store.ts).
//
// Counters follow the person the same way: every ID of a person holds the person's impression counts (an
// impression is counted under each ID, each with its own set-once marker), so the bid path reads the
// counters of any one ID it was given. Linking two persons adds each side's counts to the other side's IDs.
// Unlinking leaves the counts with the larger side; the smaller side starts again from zero, which keeps a
// later relink from counting the same impressions twice.
import type { LinkedMember, Profile } from "../profiles/profile-codec.ts";
import type { LinkEdge, ProfileStore } from "../profiles/profile-store.ts";

/** One line of a links file, or one admin call: link two IDs, or remove their link. */
export interface LinkOp {
  readonly op: "add" | "remove";
  readonly a: string;
  readonly b: string;
  readonly confidence: number;
  readonly source: string;
}

export type LinkOutcome =
  /** The link is in place (new, or its confidence or source changed). */
  | "linked"
  /** The link was removed. */
  | "unlinked"
  /** Nothing to do: already linked alike, or an ID linked to itself. */
  | "unchanged"
  /** No such link to remove. */
  | "absent"
  /** One of the IDs opted out: never linked again. */
  | "opted_out"
  /** The person would grow past the configured maximum: refused, nothing written. */
  | "too_large";

export interface LinkResult {
  readonly outcome: LinkOutcome;
  /** IDs whose stored profile changed (to drop from caches). */
  readonly changedKeys: readonly string[];
  /** Size of the person after the change (for a refusal: the size it would have had). */
  readonly personSize: number;
}

const OPTED_OUT: LinkResult = { outcome: "opted_out", changedKeys: [], personSize: 0 };

/** A person's IDs with the edges between them. */
type Component = Map<string, Map<string, LinkEdge>>;

export class IdentityGraph {
  constructor(
    readonly store: ProfileStore,
    /** Largest person allowed: a shared device or a family tablet must not merge half the population. */
    readonly maxPersonIds: number,
    readonly now: () => number = Date.now,
  ) {}

  async apply(op: LinkOp): Promise<LinkResult> {
    return op.op === "add" ? this.link(op.a, op.b, op.confidence, op.source) : this.unlink(op.a, op.b);
  }

  async link(a: string, b: string, confidence: number, source: string): Promise<LinkResult> {
    if (a === b) return { outcome: "unchanged", changedKeys: [], personSize: 1 };
    // A cheap early answer; the store's write checks again, atomically (writeLinks).
    const [outA, outB] = await Promise.all([this.store.isOptedOut(a), this.store.isOptedOut(b)]);
    if (outA || outB) return OPTED_OUT;
    const ca = await this.component(a, this.maxPersonIds);
    const edge: LinkEdge = { confidence, source };
    if (ca.has(b)) {
      const held = ca.get(a)?.get(b);
      if (held !== undefined && held.confidence === confidence && held.source === source) {
        return { outcome: "unchanged", changedKeys: [], personSize: ca.size };
      }
      if ((await this.store.writeLinks([{ a, b, edge }])).length > 0) return OPTED_OUT;
      setEdge(ca, a, b, edge);
      return { outcome: "linked", changedKeys: await this.#refresh(ca), personSize: ca.size };
    }
    const cb = await this.component(b, this.maxPersonIds);
    const size = ca.size + cb.size;
    if (size > this.maxPersonIds) return { outcome: "too_large", changedKeys: [], personSize: size };
    // The edge first: the store refuses it, atomically with each side's write, when either ID opted out since
    // the check above; then nothing else is written either.
    if ((await this.store.writeLinks([{ a, b, edge }])).length > 0) return OPTED_OUT;
    // Each side gains the other's impression counts (every ID of a person holds the person's counts).
    const nowSec = this.#nowSec();
    const [ta, tb] = await Promise.all([
      this.store.readCounters(a, nowSec),
      this.store.readCounters(b, nowSec),
    ]);
    await Promise.all([
      this.store.addCounters([...ca.keys()], tb),
      this.store.addCounters([...cb.keys()], ta),
    ]);
    const merged: Component = new Map([...ca, ...cb]);
    setEdge(merged, a, b, edge);
    return { outcome: "linked", changedKeys: await this.#refresh(merged), personSize: merged.size };
  }

  async unlink(a: string, b: string): Promise<LinkResult> {
    const links = await this.store.readLinks([a]);
    if (!links.get(a)?.has(b)) return { outcome: "absent", changedKeys: [], personSize: 0 };
    await this.store.writeLinks([{ a, b, edge: null }]);
    // No size bound here: the components were within it before the edge went.
    const ca = await this.component(a, Number.POSITIVE_INFINITY);
    if (ca.has(b)) return { outcome: "unlinked", changedKeys: await this.#refresh(ca), personSize: ca.size };
    const cb = await this.component(b, Number.POSITIVE_INFINITY);
    const smaller = cb.size <= ca.size ? cb : ca;
    await this.store.deleteCounters([...smaller.keys()]);
    const changed = [...(await this.#refresh(ca)), ...(await this.#refresh(cb))];
    return { outcome: "unlinked", changedKeys: changed, personSize: ca.size };
  }

  /**
   * Takes an ID out of its person ahead of its erasure: every link of it goes, and the IDs left behind
   * (perhaps now several persons) forget its memberships. Resolves the keys changed.
   */
  async detach(key: string): Promise<string[]> {
    const edges = (await this.store.readLinks([key])).get(key) ?? new Map<string, LinkEdge>();
    if (edges.size === 0) return [];
    await this.store.writeLinks([...edges.keys()].map((b) => ({ a: key, b, edge: null })));
    const changed: string[] = [];
    const done = new Set<string>();
    for (const neighbour of edges.keys()) {
      if (done.has(neighbour)) continue;
      const c = await this.component(neighbour, Number.POSITIVE_INFINITY);
      for (const k of c.keys()) done.add(k);
      changed.push(...(await this.#refresh(c)));
    }
    return changed;
  }

  /**
   * After a load changed these IDs' own memberships: copies them to every other ID of their person.
   * Resolves the keys changed.
   */
  async propagate(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const nowSec = this.#nowSec();
    const profiles = await this.store.readProfiles(keys, nowSec);
    const updates = [];
    const changed = new Set<string>();
    for (let i = 0; i < keys.length; i++) {
      const link = profiles[i]?.link;
      if (link === undefined) continue;
      const origin = keys[i] as string;
      const memberships = (profiles[i] as Profile).memberships;
      for (const m of link.members) {
        updates.push({ target: m.key, origin, version: link.version, memberships });
        changed.add(m.key);
      }
    }
    await this.store.putOrigins(updates, nowSec);
    return [...changed];
  }

  /** The IDs linked to `key`, breadth first, one store round trip per hop; stops once past `limit` IDs. */
  async component(key: string, limit: number): Promise<Component> {
    const seen: Component = new Map();
    let frontier = [key];
    while (frontier.length > 0 && seen.size <= limit) {
      const links = await this.store.readLinks(frontier);
      const next: string[] = [];
      for (const k of frontier) {
        const edges = links.get(k) ?? new Map<string, LinkEdge>();
        seen.set(k, edges);
        for (const other of edges.keys()) if (!seen.has(other) && !next.includes(other)) next.push(other);
      }
      frontier = next.filter((k) => !seen.has(k));
    }
    // Past the limit: the caller refuses; the IDs not reached still count toward the size it reports.
    for (const k of frontier) if (!seen.has(k)) seen.set(k, new Map());
    return seen;
  }

  /** Rewrites the person held under each ID of a component from a fresh read of their own memberships. */
  async #refresh(c: Component): Promise<string[]> {
    const keys = [...c.keys()];
    const nowSec = this.#nowSec();
    const profiles = await this.store.readProfiles(keys, nowSec);
    const own = new Map<string, { version: number; profile: Profile | null }>();
    for (let i = 0; i < keys.length; i++) {
      const p = profiles[i] ?? null;
      own.set(keys[i] as string, { version: p?.link?.version ?? 0, profile: p });
    }
    const views = keys.map((key) => {
      const confidence = widestPaths(c, key);
      const members: LinkedMember[] = [];
      for (const [other, conf] of confidence) {
        if (other === key) continue;
        const o = own.get(other);
        members.push({
          key: other,
          confidence: conf,
          version: o?.version ?? 0,
          memberships: o?.profile?.memberships ?? [],
        });
      }
      return { key, members };
    });
    await this.store.setMembers(views, nowSec);
    return keys;
  }

  #nowSec(): number {
    return Math.floor(this.now() / 1000);
  }
}

function setEdge(c: Component, a: string, b: string, edge: LinkEdge): void {
  c.get(a)?.set(b, edge);
  c.get(b)?.set(a, edge);
}

/**
 * Confidence from `from` to every ID of its component: the strongest path, a path being as strong as its
 * weakest link (a probabilistic hop weakens everything behind it). A person is small, so a plain
 * Dijkstra on "max of min" is plenty.
 */
export function widestPaths(c: Component, from: string): Map<string, number> {
  const best = new Map<string, number>([[from, 1]]);
  const done = new Set<string>();
  for (;;) {
    let cur: string | null = null;
    let curConf = -1;
    for (const [k, v] of best) {
      if (!done.has(k) && v > curConf) {
        cur = k;
        curConf = v;
      }
    }
    if (cur === null) return best;
    done.add(cur);
    for (const [other, edge] of c.get(cur) ?? []) {
      const via = Math.min(curConf, edge.confidence);
      if (via > (best.get(other) ?? -1)) best.set(other, via);
    }
  }
}
