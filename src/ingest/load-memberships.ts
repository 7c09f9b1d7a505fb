// Applies a membership file to a store in batches, counting what got in and what was rejected and why.
import type { Readable } from "node:stream";
import type { MembershipOp } from "../profiles/profile-codec.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import { type FileFormat, readMembershipRows } from "./membership-rows.ts";

export interface RejectedRow {
  readonly line: number;
  readonly reason: string;
}

export interface IngestSummary {
  read: number;
  loaded: number;
  rejected: number;
  elapsedMs: number;
  rowsPerSec: number;
  /** The first rejected rows (all are passed to onRejected). */
  readonly errors: RejectedRow[];
}

export interface LoadOptions {
  readonly nowSec: number;
  /** Ops per store call; bounds memory whatever the file size. */
  readonly batchSize?: number;
  readonly onRejected?: (row: RejectedRow) => void;
  /** Keys written by each applied batch (to invalidate caches). */
  readonly onApplied?: (keys: readonly string[]) => void;
}

const KEPT_ERRORS = 100;

export async function loadMemberships(
  store: ProfileStore,
  input: Readable,
  format: FileFormat,
  opts: LoadOptions,
): Promise<IngestSummary> {
  const started = performance.now();
  const batchSize = opts.batchSize ?? 5_000;
  const summary: IngestSummary = { read: 0, loaded: 0, rejected: 0, elapsedMs: 0, rowsPerSec: 0, errors: [] };
  let batch: MembershipOp[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await store.applyMemberships(batch, opts.nowSec);
    summary.loaded += batch.length;
    opts.onApplied?.(batch.map((o) => o.key));
    batch = [];
  };
  for await (const row of readMembershipRows(input, format, opts.nowSec)) {
    summary.read++;
    if ("error" in row) {
      summary.rejected++;
      const rejected = { line: row.line, reason: row.error };
      if (summary.errors.length < KEPT_ERRORS) summary.errors.push(rejected);
      opts.onRejected?.(rejected);
      continue;
    }
    batch.push(row.op);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  summary.elapsedMs = Math.round(performance.now() - started);
  summary.rowsPerSec =
    summary.elapsedMs > 0 ? Math.round((summary.read * 1000) / summary.elapsedMs) : summary.read;
  return summary;
}
