// Applies a membership file to a store in batches, counting what got in, what was rejected and why, and
// what was skipped because the ID opted out.
import type { Readable } from "node:stream";
import type { MembershipOp } from "../profiles/profile-codec.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import { type FileFormat, type MembershipRow, readMembershipRowBatches } from "./membership-rows.ts";

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
  /** Ops per store call; bounds memory whatever the file size. */
  readonly batchSize?: number;
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
const MAX_BATCHES_IN_FLIGHT = 4;

export async function loadMemberships(
  store: ProfileStore,
  input: Readable,
  format: FileFormat,
  opts: LoadOptions,
): Promise<IngestSummary> {
  const started = performance.now();
  const batchSize = opts.batchSize ?? 5_000;
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
  let batch: MembershipOp[] = [];
  // Up to this many batches are written while the next ones are parsed. They go out in order on one
  // connection, so a later batch's change to an ID still lands after an earlier one's.
  const inFlight: Promise<void>[] = [];
  const apply = async (ops: MembershipOp[]): Promise<void> => {
    const { skippedKeys, linkedKeys } = await store.applyMemberships(ops, opts.nowSec);
    if (linkedKeys.length > 0) await opts.onLinked?.(linkedKeys);
    let skipped = 0;
    if (skippedKeys.length > 0) {
      const optedOut = new Set(skippedKeys);
      for (const op of ops) if (optedOut.has(op.key)) skipped++;
    }
    summary.skipped += skipped;
    summary.loaded += ops.length - skipped;
    await opts.onApplied?.([...new Set(ops.map((o) => o.key))]);
  };
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    inFlight.push(apply(batch));
    batch = [];
    if (inFlight.length >= MAX_BATCHES_IN_FLIGHT) await inFlight.shift();
  };
  for await (const results of readMembershipRowBatches(input, format, opts.nowSec, {
    ...(opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes }),
  })) {
    for (const result of results) {
      summary.read++;
      if ("error" in result) {
        reject(result.line, result.error);
        continue;
      }
      const op = toStoreOp(result.row, opts, summary);
      if (typeof op === "string") {
        reject(result.line, op);
        continue;
      }
      batch.push(op);
      if (batch.length >= batchSize) await flush();
    }
    opts.onProgress?.(summary.read);
  }
  await flush();
  // Settle every write before answering, and let the first failure (if any) surface.
  const results = await Promise.allSettled(inFlight);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
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
