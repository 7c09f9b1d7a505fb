// The data-management operations, one implementation behind both the `audience` command and the admin API:
// taxonomy changes, membership loads (plain or atomic replace), opt-out and erasure, reading one ID.
import type { Readable } from "node:stream";
import type { CapRule } from "../capping/cap-rule.ts";
import { IdentityGraph, type LinkOp, type LinkOutcome } from "../identity/identity-graph.ts";
import type { InvalidationBus } from "../profiles/invalidation-bus.ts";
import type { LinkedMember, Membership } from "../profiles/profile-codec.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { DealRuleDef } from "../segments/deal-rule.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import type { SegmentDef } from "../segments/segment-def.ts";
import { readLinkRows } from "./link-rows.ts";
import {
  type IngestSummary,
  loadMemberships,
  type RejectedRow,
  type ReplaceTarget,
} from "./load-memberships.ts";
import { DEFAULT_MAX_LINE_BYTES, type FileFormat } from "./record-reader.ts";

/** A request the data cannot satisfy (unknown provider, nothing to replace): the caller's mistake. */
export class DataRequestError extends Error {
  readonly code = "AUD_ERR_DATA_REQUEST";
}

export interface LoadRequest {
  readonly format: FileFormat;
  readonly strict?: boolean;
  /** Make the file the complete membership of this segment… */
  readonly replaceSegment?: string;
  /** …or of every segment of this provider. */
  readonly replaceProvider?: string;
  readonly onRejected?: (row: RejectedRow) => void;
  readonly onProgress?: (rowsRead: number) => void;
  /** Rows held back to be merged with later rows of their IDs (load-memberships.ts DEFAULT_WINDOW_ROWS). */
  readonly windowRows?: number;
}

export interface LoadResult extends IngestSummary {
  /** The generation made live by a replace, or null for a plain load. */
  activatedGeneration: number | null;
}

export interface UserData {
  readonly key: string;
  readonly optedOut: boolean;
  /** Every stored membership, with whether a bid-time answer would use it now. */
  readonly memberships: (Membership & { readonly active: boolean })[];
  /** The other IDs of this ID's person, with their confidence and memberships (empty when not linked). */
  readonly person: { key: string; confidence: number; segments: string[] }[];
}

export interface LinkLoadRequest {
  readonly format: FileFormat;
  /** A row rejected (bad) or refused (the person would grow too large), with its line and reason. */
  readonly onRejected?: (row: { line: number; reason: string }) => void;
  readonly onProgress?: (rowsRead: number) => void;
}

export interface LinkSummary {
  read: number;
  linked: number;
  unlinked: number;
  unchanged: number;
  /** Links refused, each reported with its line: by the giant-person guard, or naming an opted-out ID. */
  refused: number;
  /** Removals of links that did not exist. */
  skipped: number;
  rejected: number;
  elapsedMs: number;
  readonly errors: { line: number; reason: string }[];
}

/** The cache of the process running the operation, changed at once rather than when the bus message arrives. */
export interface LocalCache {
  invalidate(keys: Iterable<string>): void;
}

/** What data management works on: the bulk store, the catalog, the bus to other instances, this one's cache. */
export interface SegmentDataDeps {
  readonly store: ProfileStore;
  readonly catalog: LiveCatalog;
  readonly bus: InvalidationBus;
  /** null in the command-line tool, which has no cache of its own. */
  readonly cache: LocalCache | null;
  /** Clock in epoch milliseconds. */
  readonly now?: () => number;
  /** Largest person the identity graph lets a link make (MAX_PERSON_IDS). */
  readonly maxPersonIds?: number;
  /** Longest line of a loaded file (INGEST_MAX_LINE_BYTES); 1 MiB when not given. */
  readonly maxLineBytes?: number;
}

export class SegmentData {
  readonly store: ProfileStore;
  readonly catalog: LiveCatalog;
  readonly bus: InvalidationBus;
  readonly cache: LocalCache | null;
  readonly now: () => number;
  /** Longest line of a loaded file: every reader of an upload or file is given it. */
  readonly maxLineBytes: number;

  constructor(deps: SegmentDataDeps) {
    this.store = deps.store;
    this.catalog = deps.catalog;
    this.bus = deps.bus;
    this.cache = deps.cache;
    this.now = deps.now ?? Date.now;
    this.maxLineBytes = deps.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.graph = new IdentityGraph(deps.store, deps.maxPersonIds ?? 32, this.now);
  }

  readonly graph: IdentityGraph;

  /** Inserts or replaces segment definitions (already validated); every instance reloads its catalog. */
  async putSegments(defs: readonly SegmentDef[]): Promise<void> {
    await this.catalog.store.putSegments(defs);
    await this.#catalogChanged();
  }

  /** Inserts or replaces frequency-cap rules; every instance applies them without a restart. */
  async putCapRules(rules: readonly CapRule[]): Promise<void> {
    await this.catalog.store.putCapRules(rules);
    await this.#catalogChanged();
  }

  /** Inserts or replaces deal rules (already validated); every instance recompiles them without a restart. */
  async putDealRules(rules: readonly DealRuleDef[]): Promise<void> {
    await this.catalog.store.putDealRules(rules);
    await this.#catalogChanged();
  }

  async deleteDealRule(id: string): Promise<boolean> {
    const deleted = await this.catalog.store.deleteDealRule(id);
    if (deleted) await this.#catalogChanged();
    return deleted;
  }

  async deleteCapRules(campaign: string): Promise<number> {
    const deleted = await this.catalog.store.deleteCapRules(campaign);
    if (deleted > 0) await this.#catalogChanged();
    return deleted;
  }

  async deleteSegment(id: string): Promise<boolean> {
    const deleted = await this.catalog.store.deleteSegment(id);
    if (deleted) await this.#catalogChanged();
    return deleted;
  }

  /**
   * Loads memberships. A replace writes the rows under a new generation of its segments and makes that
   * generation live in one step when the whole input has been read: readers see the old membership or the
   * new one, never a mix, and a load that fails part-way changes nothing they see.
   */
  async loadMemberships(input: Readable, req: LoadRequest): Promise<LoadResult> {
    const nowSec = Math.floor(this.now() / 1000);
    const catalog = await this.catalog.reload();
    const replace = await this.#replaceTarget(req);
    const summary = await loadMemberships(this.store, input, req.format, {
      nowSec,
      catalog,
      strict: req.strict ?? false,
      maxLineBytes: this.maxLineBytes,
      ...(replace === undefined ? {} : { replace }),
      onApplied: (keys) => this.#keysChanged(keys),
      onLinked: async (keys) => this.#keysChanged(await this.graph.propagate(keys)),
      ...(req.onRejected === undefined ? {} : { onRejected: req.onRejected }),
      ...(req.onProgress === undefined ? {} : { onProgress: req.onProgress }),
      ...(req.windowRows === undefined ? {} : { windowRows: req.windowRows }),
    });
    // A replace with rejected rows would make an incomplete membership live: it stays unpublished instead.
    if (replace === undefined || summary.rejected > 0) return { ...summary, activatedGeneration: null };
    const live = new Map([...replace.segments].map((s) => [s, replace.generation]));
    await this.catalog.store.activateGenerations(live);
    await this.#catalogChanged();
    return { ...summary, activatedGeneration: replace.generation };
  }

  /**
   * Erases these IDs everywhere (their data, their links, their memberships copied to the rest of their
   * person) and records their opt-out; caches drop them at once.
   */
  async optOut(keys: readonly string[]): Promise<number> {
    const changed: string[] = [];
    for (const key of keys) changed.push(...(await this.graph.detach(key)));
    const erased = await this.store.optOut(keys, Math.floor(this.now() / 1000));
    await this.#keysChanged([...new Set([...keys, ...changed])]);
    return erased;
  }

  /** Applies one link change and drops the changed IDs from every cache. */
  async applyLink(op: LinkOp): Promise<{ outcome: LinkOutcome; personSize: number }> {
    const r = await this.graph.apply(op);
    if (r.changedKeys.length > 0) await this.#keysChanged(r.changedKeys);
    return { outcome: r.outcome, personSize: r.personSize };
  }

  /** Loads a links file one link at a time (each may merge or split persons), reporting every refusal. */
  async loadLinks(input: Readable, req: LinkLoadRequest): Promise<LinkSummary> {
    const started = performance.now();
    const s: LinkSummary = {
      read: 0,
      linked: 0,
      unlinked: 0,
      unchanged: 0,
      refused: 0,
      skipped: 0,
      rejected: 0,
      elapsedMs: 0,
      errors: [],
    };
    const report = (line: number, reason: string): void => {
      if (s.errors.length < 100) s.errors.push({ line, reason });
      req.onRejected?.({ line, reason });
    };
    for await (const r of readLinkRows(input, req.format, { maxLineBytes: this.maxLineBytes })) {
      s.read++;
      if ("error" in r) {
        s.rejected++;
        report(r.line, r.error);
        continue;
      }
      for (const op of r.ops) {
        const { outcome, personSize } = await this.applyLink(op);
        if (outcome === "linked") s.linked++;
        else if (outcome === "unlinked") s.unlinked++;
        else if (outcome === "unchanged") s.unchanged++;
        else if (outcome === "too_large") {
          s.refused++;
          report(
            r.line,
            `refused: the person would have ${personSize} IDs, more than the ${this.graph.maxPersonIds} allowed (MAX_PERSON_IDS)`,
          );
        } else if (outcome === "opted_out") {
          s.refused++;
          report(r.line, "refused: an ID of this link opted out, so it is never linked again");
        } else s.skipped++;
      }
      if (s.read % 1_000 === 0) req.onProgress?.(s.read);
    }
    req.onProgress?.(s.read);
    s.elapsedMs = Math.round(performance.now() - started);
    return s;
  }

  async readUser(key: string): Promise<UserData> {
    const nowSec = Math.floor(this.now() / 1000);
    const catalog = this.catalog.current;
    const [[profile], optedOut] = await Promise.all([
      this.store.readProfiles([key], nowSec),
      this.store.isOptedOut(key),
    ]);
    const memberships = (profile?.memberships ?? []).map((m) => ({
      ...m,
      active: m.generation === catalog.activeGeneration(m.segment) && !catalog.isSensitive(m.segment),
    }));
    const person = (profile?.link?.members ?? []).map((m: LinkedMember) => ({
      key: m.key,
      confidence: m.confidence,
      segments: m.memberships.map((x) => x.segment),
    }));
    return { key, optedOut, memberships, person };
  }

  async #replaceTarget(req: LoadRequest): Promise<ReplaceTarget | undefined> {
    if (req.replaceSegment !== undefined && req.replaceProvider !== undefined) {
      throw new DataRequestError("replace one segment or one provider, not both");
    }
    let segments: string[];
    let label: string;
    if (req.replaceSegment !== undefined) {
      segments = [req.replaceSegment];
      label = `segment ${req.replaceSegment}`;
    } else if (req.replaceProvider !== undefined) {
      segments = this.catalog.current.segmentsOf(req.replaceProvider);
      label = `provider ${req.replaceProvider}`;
      if (segments.length === 0) {
        throw new DataRequestError(`provider '${req.replaceProvider}' has no segments in the taxonomy`);
      }
    } else {
      return undefined;
    }
    return { segments: new Set(segments), generation: await this.catalog.store.nextGeneration(), label };
  }

  async #keysChanged(keys: readonly string[]): Promise<void> {
    this.cache?.invalidate(keys);
    await this.bus.publish({ t: "keys", keys });
  }

  /** Reloads here at once (LiveCatalog clears the cache first when generations moved), then everywhere. */
  async #catalogChanged(): Promise<void> {
    await this.catalog.reload();
    await this.bus.publish({ t: "catalog" });
  }
}
