// Reads membership files (CSV or NDJSON) as a stream of validated rows, each bad row reported with its line.
import { createReadStream } from "node:fs";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { parse as parseCsv } from "csv-parse";
import { toTypedId } from "../identity/typed-id.ts";
import type { MembershipOp } from "../profiles/profile-codec.ts";

export type FileFormat = "csv" | "ndjson";

/** One line of input: a change to apply, or why it was rejected. */
export type RowResult = { line: number; op: MembershipOp } | { line: number; error: string };

const SEGMENT_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_TTL_S = 10 * 365 * 86_400;
export const CSV_REQUIRED = ["type", "id", "segment"] as const;
const CSV_KNOWN = new Set(["type", "id", "segment", "ttl", "op", "expires_at", "source"]);

export class IngestFileError extends Error {
  readonly code = "AUD_ERR_INGEST_FILE";
}

export function formatOf(path: string): FileFormat | null {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".ndjson" || ext === ".jsonl") return "ndjson";
  return null;
}

/** Validates one row's fields (strings or numbers as read) into an op. */
export function toOp(row: Readonly<Record<string, unknown>>, nowSec: number): MembershipOp | string {
  const type = row.type;
  const id = row.id;
  const segment = row.segment;
  if (typeof type !== "string" || type === "") return "missing type";
  if (typeof id !== "string" && typeof id !== "number") return "missing id";
  const typed = toTypedId(type, String(id));
  if (!typed.ok) return typed.reason;
  const seg = typeof segment === "number" ? String(segment) : segment;
  if (typeof seg !== "string" || !SEGMENT_RE.test(seg)) {
    return "segment must be 1-64 letters, digits, '.', '_', ':' or '-'";
  }
  const op = row.op === undefined || row.op === "" || row.op === null ? "add" : row.op;
  if (op !== "add" && op !== "remove") return `op must be add or remove, got '${String(op).slice(0, 20)}'`;

  let expiresAt = 0;
  const ttl = blankToUndefined(row.ttl);
  const at = blankToUndefined(row.expires_at);
  if (ttl !== undefined && at !== undefined) return "give ttl or expires_at, not both";
  if (ttl !== undefined) {
    const n = Number(ttl);
    if (!Number.isInteger(n) || n <= 0 || n > MAX_TTL_S)
      return `ttl must be whole seconds from 1 to ${MAX_TTL_S}`;
    expiresAt = nowSec + n;
  } else if (at !== undefined) {
    const n =
      typeof at === "number" ? at : /^\d+$/.test(String(at)) ? Number(at) : Date.parse(String(at)) / 1000;
    if (!Number.isFinite(n) || n <= 0) return "expires_at must be epoch seconds or an ISO-8601 time";
    expiresAt = Math.floor(n);
  }
  const source = row.source === undefined || row.source === null ? "" : String(row.source).slice(0, 64);
  return { key: typed.key, op, segment: seg, expiresAt, source };
}

function blankToUndefined(v: unknown): unknown {
  return v === undefined || v === null || v === "" ? undefined : v;
}

/** Streams rows from a file; throws IngestFileError when the file itself is unusable. */
export async function* readMembershipRows(
  input: Readable,
  format: FileFormat,
  nowSec: number,
): AsyncGenerator<RowResult> {
  if (format === "ndjson") yield* readNdjson(input, nowSec);
  else yield* readCsv(input, nowSec);
}

async function* readNdjson(input: Readable, nowSec: number): AsyncGenerator<RowResult> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      yield { line, error: "not a JSON object" };
      continue;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      yield { line, error: "not a JSON object" };
      continue;
    }
    const r = toOp(v as Record<string, unknown>, nowSec);
    yield typeof r === "string" ? { line, error: r } : { line, op: r };
  }
}

async function* readCsv(input: Readable, nowSec: number): AsyncGenerator<RowResult> {
  const skipped: RowResult[] = [];
  const parser = parseCsv({
    columns: (header: string[]) => {
      const cols = header.map((h) => h.trim().toLowerCase());
      const missing = CSV_REQUIRED.filter((c) => !cols.includes(c));
      if (missing.length > 0) {
        throw new IngestFileError(
          `CSV header must name ${CSV_REQUIRED.join(",")}; missing ${missing.join(",")}`,
        );
      }
      const unknown = cols.filter((c) => !CSV_KNOWN.has(c));
      if (unknown.length > 0)
        throw new IngestFileError(`CSV header has unknown column(s): ${unknown.join(",")}`);
      return cols;
    },
    info: true,
    trim: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
  });
  parser.on("skip", (err: Error & { lines?: number }) => {
    skipped.push({ line: err.lines ?? 0, error: `malformed CSV row: ${err.message}` });
  });
  input.on("error", (err) => parser.destroy(err));
  input.pipe(parser);
  try {
    for await (const rec of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      // csv-parse reports a skipped row as soon as it parses its chunk, before the records ahead of it are
      // read here: hold each until the records before it have been yielded, so rows come out in file order.
      while (skipped.length > 0 && (skipped[0] as RowResult).line < rec.info.lines) {
        yield skipped.shift() as RowResult;
      }
      const r = toOp(rec.record, nowSec);
      yield typeof r === "string" ? { line: rec.info.lines, error: r } : { line: rec.info.lines, op: r };
    }
  } catch (err) {
    if (err instanceof IngestFileError) throw err;
    throw new IngestFileError(`not a readable CSV file: ${(err as Error).message}`);
  }
  while (skipped.length > 0) yield skipped.shift() as RowResult;
}

export function openInput(path: string): Readable {
  return createReadStream(path);
}
