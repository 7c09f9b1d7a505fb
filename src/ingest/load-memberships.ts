// Applies a membership file to a store in batches, counting what got in, what was rejected and why, and
// what was skipped because the ID opted out.
import type { Readable } from "node:stream";
import type { MembershipOp } from "../profiles/profile-codec.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import {
  type FileFormat,
  IngestFileError,
  type MembershipRow,
  readMembershipRowsInto,
} from "./membership-rows.ts";
import { MembershipWindow } from "./membership-window.ts";

export interface RejectedRow {
  readonly line: number;
  readonly reason: string;
}

export interface IngestSummary {
  read: number;
  loaded: number;
  rejected: number;
  /** Rows naming a segment the taxonomy does not have (loaded unless strict). */
  warnings: number;
  /** Rows for IDs that opted out: never written. */
  skipped: number;
  elapsedMs: number;
  rowsPerSec: number;
  /** The first rejected rows (all are passed to onRejected). */
  readonly errors: RejectedRow[];
}

/** A replace load: rows go to a new generation of these segments, made live only when the load completes. */
export interface ReplaceTarget {
  readonly segments: ReadonlySet<string>;
  readonly generation: number;
  /** How the command named it, for messages ("segment 1001", "provider acme"). */
  readonly label: string;
}

export interface LoadOptions {
  readonly nowSec: number;
  /** Taxonomy and active generations, as of the start of the load. */
  readonly catalog: CatalogSnapshot;
  /** Reject rows naming segments absent from the taxonomy (otherwise: loaded, counted as warnings). */
  readonly strict?: boolean;
  readonly replace?: ReplaceTarget;
  /** Rows per store call (each ID's rows whole, so a call may hold a few more). */
  readonly batchSize?: number;
  /**
   * Rows held back to be merged with later rows of their IDs (MembershipWindow); 1 writes each batch as
   * soon as it is full. Bounds memory whatever the file size, as batchSize does.
   */
  readonly windowRows?: number;
  readonly onRejected?: (row: RejectedRow) => void;
  /** Keys written by each applied batch (to invalidate caches). */
  readonly onApplied?: (keys: readonly string[]) => void | Promise<void>;
  /** Keys of a batch that are linked to other IDs, once written: their person's copies are to follow. */
  readonly onLinked?: (keys: readonly string[]) => Promise<void>;
  /** Rows read so far, after each chunk of input. */
  readonly onProgress?: (rowsRead: number) => void;
  /** Longest line (INGEST_MAX_LINE_BYTES); a longer one is a rejected row. */
  readonly maxLineBytes?: number;
}

const KEPT_ERRORS = 100;
/**
 * Batches written while the next ones are read. Every script call of a batch is sent at once, so this bounds
 * the calls in flight (a batch of 5,000 rows is 100 calls of 50 IDs at most) and the memory they hold.
 * 8 rather than 4: with 4 the command and Redis waited on each other (neither busy all the time); 8 loaded
 * 2M adjacent rows at 333–342k rows/s against 296–327k, and shuffled ones at 167k against 164k (four runs
 * each, alternating, on 2 cores).
 */
const MAX_BATCHES_IN_FLIGHT = 8;
const DEFAULT_BATCH_ROWS = 5_000;
/**
 * Rows held back for later rows of their IDs (MembershipWindow) unless the caller says otherwise: a few MiB,
 * as an admin upload runs inside a serving process. The command, alone in its process, holds far more
 * (cli.ts). A file whose rows of an ID lie far apart gains in proportion to the window's share of it; a
 * file sorted by ID gains nothing and loses nothing but the memory.
 */
export const DEFAULT_WINDOW_ROWS = 50_000;

export async function loadMemberships(
  store: ProfileStore,
  input: Readable,
  format: FileFormat,
  opts: LoadOptions,
): Promise<IngestSummary> {
  const started = performance.now();
  const batchRows = opts.batchSize ?? DEFAULT_BATCH_ROWS;
  const window = new MembershipWindow(Math.max(opts.windowRows ?? DEFAULT_WINDOW_ROWS, batchRows));
  const summary: IngestSummary = {
    read: 0,
    loaded: 0,
    rejected: 0,
    warnings: 0,
    skipped: 0,
    elapsedMs: 0,
    rowsPerSec: 0,
    errors: [],
  };
  const reject = (line: number, reason: string): void => {
    summary.rejected++;
    const rejected = { line, reason };
    if (summary.errors.length < KEPT_ERRORS) summary.errors.push(rejected);
    opts.onRejected?.(rejected);
  };
  // Batches are handed to the store in the order their IDs came in, and it applies them in that order, so
  // a later batch's change to an ID lands after an earlier one's even while both are in flight.
  const inFlight: Promise<void>[] = [];
  const apply = async (groups: Map<string, MembershipOp[]>, rows: number): Promise<void> => {
    const { skippedKeys, linkedKeys } = await store.applyMembershipGroups(groups, opts.nowSec);
    if (linkedKeys.length > 0) await opts.onLinked?.(linkedKeys);
    let skipped = 0;
    for (const key of skippedKeys) skipped += (groups.get(key) as MembershipOp[]).length;
    summary.skipped += skipped;
    summary.loaded += rows - skipped;
    await opts.onApplied?.([...groups.keys()]);
  };
  const send = (): void => {
    const { groups, rows } = window.take(batchRows);
    const applied = apply(groups, rows);
    // Awaited in turn (settle); until then a failure must not count as unhandled.
    applied.catch(() => {});
    inFlight.push(applied);
  };
  const settle = async (max: number): Promise<void> => {
    while (inFlight.length > max) await inFlight.shift();
  };
  const rowSink = {
    row(row: MembershipRow, line: number): void {
      summary.read++;
      const op = toStoreOp(row, opts, summary);
      if (typeof op === "string") {
        reject(line, op);
        return;
      }
      // A full window sends its oldest IDs first; the batches sent within one chunk of input are few.
      while (!window.push(op)) {
        if (window.ids === 0) throw new Error(`a key of ${op.key.length} characters does not fit the window`);
        send();
      }
    },
    rejected(line: number, reason: string): void {
      summary.read++;
      reject(line, reason);
    },
  };
  let fileError: IngestFileError | null = null;
  try {
    await readMembershipRowsInto(input, format, opts.nowSec, rowSink, {
      ...(opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes }),
      afterChunk: async () => {
        opts.onProgress?.(summary.read);
        await settle(MAX_BATCHES_IN_FLIGHT - 1);
      },
    });
  } catch (err) {
    // An unusable file (a bad header, truncated gzip) still has its rows before that point loaded, as the
    // command says; any other failure (the store's) stops here.
    if (!(err instanceof IngestFileError)) throw err;
    fileError = err;
  }
  while (window.rows > 0) {
    send();
    await settle(MAX_BATCHES_IN_FLIGHT - 1);
  }
  // Settle every write before answering, and let the first failure (if any) surface.
  const results = await Promise.allSettled(inFlight);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  if (fileError !== null) throw fileError;
  summary.elapsedMs = Math.round(performance.now() - started);
  summary.rowsPerSec =
    summary.elapsedMs > 0 ? Math.round((summary.read * 1000) / summary.elapsedMs) : summary.read;
  return summary;
}

/** Resolves a row against the catalog: its expiry (the segment's default TTL), its generation. */
function toStoreOp(row: MembershipRow, opts: LoadOptions, summary: IngestSummary): MembershipOp | string {
  const def = opts.catalog.get(row.segment);
  if (def === undefined) {
    if (opts.strict) return `unknown segment '${row.segment}' (not in the taxonomy)`;
    summary.warnings++;
  }
  const active = opts.catalog.activeGeneration(row.segment);
  let generation = active;
  if (opts.replace !== undefined) {
    if (!opts.replace.segments.has(row.segment)) {
      return `segment '${row.segment}' is not part of the replace of ${opts.replace.label}`;
    }
    if (row.op === "remove") return "op=remove has no meaning in a replace: leave the row out instead";
    generation = opts.replace.generation;
  }
  const ttl = def?.ttlSec ?? null;
  const expiresAt = row.expiresAt ?? (ttl === null ? 0 : opts.nowSec + ttl);
  return {
    key: row.key,
    op: row.op,
    segment: row.segment,
    expiresAt,
    source: row.source,
    generation,
    minGeneration: active,
  };
}
