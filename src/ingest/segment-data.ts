// The data-management operations, one implementation behind both the `audience` command and the admin API:
// taxonomy changes, membership loads (plain or atomic replace), opt-out and erasure, reading one ID.
import type { Readable } from "node:stream";
import type { CapRule } from "../capping/cap-rule.ts";
import type { InvalidationBus } from "../profiles/invalidation-bus.ts";
import type { Membership } from "../profiles/profile-codec.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import type { SegmentDef } from "../segments/segment-def.ts";
import {
  type IngestSummary,
  loadMemberships,
  type RejectedRow,
  type ReplaceTarget,
} from "./load-memberships.ts";
import type { FileFormat } from "./record-reader.ts";

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
}

/** The cache of the process running the operation, changed at once rather than when the bus message arrives. */
export interface LocalCache {
  invalidate(keys: Iterable<string>): void;
}

export class SegmentData {
  constructor(
    readonly store: ProfileStore,
    readonly catalog: LiveCatalog,
    readonly bus: InvalidationBus,
    /** null in the command-line tool, which has no cache of its own. */
    readonly cache: LocalCache | null,
    readonly now: () => number = Date.now,
  ) {}

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
      ...(replace === undefined ? {} : { replace }),
      onApplied: (keys) => this.#keysChanged(keys),
      ...(req.onRejected === undefined ? {} : { onRejected: req.onRejected }),
      ...(req.onProgress === undefined ? {} : { onProgress: req.onProgress }),
    });
    // A replace with rejected rows would make an incomplete membership live: it stays unpublished instead.
    if (replace === undefined || summary.rejected > 0) return { ...summary, activatedGeneration: null };
    const live = new Map([...replace.segments].map((s) => [s, replace.generation]));
    await this.catalog.store.activateGenerations(live);
    await this.#catalogChanged();
    return { ...summary, activatedGeneration: replace.generation };
  }

  /** Erases these IDs everywhere and records their opt-out; caches drop them at once. */
  async optOut(keys: readonly string[]): Promise<number> {
    const erased = await this.store.optOut(keys, Math.floor(this.now() / 1000));
    await this.#keysChanged(keys);
    return erased;
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
    return { key, optedOut, memberships };
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
