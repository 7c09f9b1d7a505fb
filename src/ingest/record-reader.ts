// Reads CSV (with a header) or NDJSON as a stream of records, each with its line number; a bad line is
// reported and reading goes on. Shared by every bulk file (memberships, opt-outs, links, cap and deal rules)
// and by POST /v1/events. Every line is bounded (ReadOptions.maxLineBytes): a longer one is a row error.
//
// Records come out in batches, one per input chunk: a bulk load handles millions of rows, and one trip
// through an async iterator per row cost more than parsing the row. CSV is split here rather than by a
// general CSV library for the same reason; quoted fields ("a,b" and "" escapes) are supported, a field
// spanning lines is not (no membership or opt-out column holds a newline): such a row is reported as
// malformed.

import type { Readable } from "node:stream";
import { shownInput } from "../privacy/log-redaction.ts";

export type FileFormat = "csv" | "ndjson";

export type RecordResult =
  | { readonly line: number; readonly record: Readonly<Record<string, unknown>> }
  | { readonly line: number; readonly error: string };

/** The columns (CSV) or keys (NDJSON) a file kind has. */
export interface RecordShape {
  readonly required: readonly string[];
  readonly known: ReadonlySet<string>;
}

/** The file as a whole is unusable (bad header, not CSV, truncated gzip): nothing more can be read. */
export class IngestFileError extends Error {
  readonly code = "AUD_ERR_INGEST_FILE";
}

/** Longest line of an admin or CLI load unless told otherwise (INGEST_MAX_LINE_BYTES's default). */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** Longest line of POST /v1/events: an event is a few hundred bytes, and the route is open to the network. */
export const EVENT_MAX_LINE_BYTES = 64 * 1024;

export interface ReadOptions {
  /** Longest line in bytes (its final newline not counted); a longer one is a row error. Default 1 MiB. */
  readonly maxLineBytes?: number;
}

const NL = 10;
const CR = 13;
const BOM = 0xfeff;

/**
 * Cuts bytes into lines: a newline is searched for only in new data, and the unfinished line is kept as
 * the parts it arrived in, so that the work is linear in the input however it is chunked. A line that
 * grows past the maximum is reported at once and its remaining bytes are skipped unread up to its newline,
 * so that memory stays bounded by one line whatever the file holds.
 *
 * Lines are measured in bytes, before decoding. A byte-order mark at the very start is dropped: a file
 * saved by a spreadsheet or an editor would otherwise lose its first row. Lines are split on the byte 0x0A,
 * which UTF-8 never uses inside a multi-byte character, so each line decodes on its own.
 */
export class LineSplitter {
  /** Bytes searched, decoded and split so far: a few times the input whatever its chunking, never its square. */
  scannedBytes = 0;
  #parts: Buffer[] = [];
  #partBytes = 0;
  /** Inside a line already reported as too long: its bytes are dropped until its newline. */
  #skipping = false;
  #line = 0;

  /** Bytes of the unfinished line held: never more than the maximum. */
  get bufferedBytes(): number {
    return this.#partBytes;
  }

  constructor(
    readonly maxLineBytes: number,
    /** A line's text (line ending removed) and its 1-based number. */
    private readonly onLine: (text: string, line: number) => void,
    /** A line longer than the maximum, reported once with its number. */
    private readonly onTooLong: (line: number) => void,
  ) {}

  push(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.#skipping) {
        const nl = chunk.indexOf(NL, pos);
        this.scannedBytes += (nl < 0 ? len : nl + 1) - pos;
        if (nl < 0) return;
        this.#skipping = false;
        pos = nl + 1;
      } else if (this.#partBytes > 0) {
        // The unfinished line ends at the first newline of the new data, if there is one.
        const nl = chunk.indexOf(NL, pos);
        const end = nl < 0 ? len : nl;
        this.scannedBytes += end - pos;
        if (this.#partBytes + (end - pos) > this.maxLineBytes) {
          this.#tooLong();
          this.#skipping = nl < 0;
          pos = nl < 0 ? len : nl + 1;
          continue;
        }
        this.#parts.push(chunk.subarray(pos, end));
        this.#partBytes += end - pos;
        if (nl < 0) return;
        const whole = Buffer.concat(this.#parts, this.#partBytes);
        this.#parts = [];
        this.#partBytes = 0;
        this.#emit(whole, 0, whole.length);
        pos = nl + 1;
      } else {
        // Whole lines straight from the chunk. pos - 1 is a newline (or pos is 0), so the backward search
        // never goes further back than this chunk's unread part.
        const last = chunk.lastIndexOf(NL);
        this.scannedBytes += len - Math.max(last, pos);
        if (last < pos) {
          this.#keep(chunk.subarray(pos));
          return;
        }
        if (last - pos <= this.maxLineBytes) {
          // No line here can be too long: one decode for all of them (the common case of file loads).
          this.#emitAll(chunk.toString("utf8", pos, last));
        } else {
          for (let nl = chunk.indexOf(NL, pos); nl >= 0 && nl <= last; nl = chunk.indexOf(NL, pos)) {
            this.scannedBytes += nl + 1 - pos;
            if (nl - pos > this.maxLineBytes) this.#tooLong();
            else this.#emit(chunk, pos, nl);
            pos = nl + 1;
          }
        }
        pos = last + 1;
        this.#keep(chunk.subarray(pos));
        return;
      }
    }
  }

  /** The input ended: a last line without a newline still counts. */
  end(): void {
    if (this.#skipping || this.#partBytes === 0) return;
    const whole = Buffer.concat(this.#parts, this.#partBytes);
    this.#parts = [];
    this.#partBytes = 0;
    this.#emit(whole, 0, whole.length);
  }

  /** The start of an unfinished line, kept unless it is already too long. */
  #keep(part: Buffer): void {
    if (part.length > this.maxLineBytes) {
      this.#tooLong();
      this.#skipping = true;
      return;
    }
    if (part.length === 0) return;
    this.#parts.push(part);
    this.#partBytes = part.length;
  }

  #tooLong(): void {
    this.#parts = [];
    this.#partBytes = 0;
    this.onTooLong(++this.#line);
  }

  #emit(buf: Buffer, start: number, end: number): void {
    this.scannedBytes += end - start;
    this.#emitText(buf.toString("utf8", start, end));
  }

  /** Complete lines, newline-separated, without the last newline. */
  #emitAll(text: string): void {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      this.#emitText(text.slice(start, nl));
      start = nl + 1;
    }
    this.#emitText(start === 0 ? text : text.slice(start));
    this.scannedBytes += 2 * text.length;
  }

  #emitText(raw: string): void {
    this.#line++;
    let text = raw;
    if (text.charCodeAt(text.length - 1) === CR) text = text.slice(0, -1);
    if (this.#line === 1 && text.charCodeAt(0) === BOM) text = text.slice(1);
    this.onLine(text, this.#line);
  }
}

/** Batches of records in file order (a batch may be empty). */
export async function* readRecordBatches(
  input: Readable,
  format: FileFormat,
  shape: RecordShape,
  opts: ReadOptions = {},
): AsyncGenerator<RecordResult[]> {
  const parse = format === "csv" ? csvParser(shape) : ndjsonLine;
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const tooLong = tooLongReason(maxLineBytes);
  let out: RecordResult[] = [];
  const lines = new LineSplitter(
    maxLineBytes,
    (text, line) => {
      const r = parse(text, line);
      if (r !== null) out.push(r);
    },
    (line) => out.push({ line, error: tooLong }),
  );
  try {
    for await (const chunk of input) {
      lines.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
      const batch = out;
      out = [];
      yield batch;
    }
  } catch (err) {
    throw asFileError(err);
  }
  lines.end();
  yield out;
}

/** The row error of a line longer than the maximum. */
export const tooLongReason = (maxLineBytes: number): string => `line longer than ${maxLineBytes} bytes`;

function asFileError(err: unknown): IngestFileError {
  return err instanceof IngestFileError ? err : new IngestFileError((err as Error).message);
}

/**
 * Feeds the input to `lines` chunk by chunk, then ends it. After each chunk (and after the end) it awaits
 * `afterChunk`, where the caller hands on what the chunk's lines gave: a reader that pushes rows to its
 * caller as they are parsed, with no batch of results per chunk. A failure of the input is an
 * IngestFileError; a failure of `afterChunk` is the caller's own and passes as it is.
 */
export async function pumpLines(
  input: Readable,
  lines: LineSplitter,
  afterChunk: () => void | Promise<void>,
): Promise<void> {
  const chunks = input[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await chunks.next();
      } catch (err) {
        done = true;
        throw asFileError(err);
      }
      if (next.done) {
        done = true;
        break;
      }
      const chunk = next.value;
      lines.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
      await afterChunk();
    }
  } finally {
    // Stopping early (a bad header, the caller failing) must still release the input.
    if (!done) await chunks.return?.();
  }
  lines.end();
  await afterChunk();
}

/** One record at a time, for callers that are not on a hot loop. */
export async function* readRecords(
  input: Readable,
  format: FileFormat,
  shape: RecordShape,
  opts: ReadOptions = {},
): AsyncGenerator<RecordResult> {
  for await (const batch of readRecordBatches(input, format, shape, opts)) yield* batch;
}

/** One NDJSON line as a record; null for a blank line. */
export function ndjsonLine(text: string, line: number): RecordResult | null {
  if (text.trim() === "") return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { line, error: "not a JSON object" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { line, error: "not a JSON object" };
  return { line, record: v as Record<string, unknown> };
}

/**
 * The lines of a CSV file against its header, which it reads from the first non-empty line. A data line
 * gives its fields, trimmed, in the header's order: no record object per row, for readers on a hot loop
 * that look fields up by column number.
 */
export class CsvLines {
  #columns: string[] | null = null;

  constructor(private readonly shape: RecordShape) {}

  /** The header's column names (trimmed, lower-cased), once it has been read. */
  get columns(): readonly string[] | null {
    return this.#columns;
  }

  /**
   * A data line's fields, or the reason it cannot be read (a string); null for the header and blank lines.
   * Throws IngestFileError when the header is unusable.
   */
  fields(text: string): string[] | string | null {
    if (text.trim() === "") return null;
    const fields = splitCsvLine(text);
    const columns = this.#columns;
    if (columns === null) {
      if (fields === null)
        throw new IngestFileError("not a readable CSV file: the header has an unbalanced quote");
      this.#columns = checkHeader(
        fields.map((h) =>
          h
            .trim()
            .toLowerCase()
            .replace(/^\ufeff/, ""),
        ),
        this.shape,
      );
      return null;
    }
    if (fields === null) return "malformed CSV row: unbalanced quote";
    if (fields.length !== columns.length) {
      return `malformed CSV row: ${fields.length} fields where the header has ${columns.length}`;
    }
    for (let i = 0; i < fields.length; i++) fields[i] = (fields[i] as string).trim();
    return fields;
  }
}

/** A CSV line parser bound to the file's header, which it reads from the first non-empty line. */
function csvParser(shape: RecordShape): (text: string, line: number) => RecordResult | null {
  const csv = new CsvLines(shape);
  return (text, line) => {
    const fields = csv.fields(text);
    if (fields === null) return null;
    if (typeof fields === "string") return { line, error: fields };
    const columns = csv.columns as readonly string[];
    const record: Record<string, string> = {};
    for (let i = 0; i < columns.length; i++) record[columns[i] as string] = fields[i] as string;
    return { line, record };
  };
}

/** What a misspelt column name looks like; anything else is not quoted as it is (see shownInput). */
export const COLUMN_SHAPE = /^[a-z][a-z0-9_ -]{0,31}$/i;

function checkHeader(cols: string[], shape: RecordShape): string[] {
  const missing = shape.required.filter((c) => !cols.includes(c));
  if (missing.length > 0) {
    throw new IngestFileError(
      `CSV header must name ${shape.required.join(",")}; missing ${missing.join(",")}`,
    );
  }
  const unknown = cols.filter((c) => !shape.known.has(c));
  if (unknown.length > 0) {
    // A file without a header has its first row read as one: its values may be IDs or e-mails.
    const shown = unknown.map((c) => shownInput(c, COLUMN_SHAPE)).join(",");
    throw new IngestFileError(`CSV header has unknown column(s): ${shown}`);
  }
  return cols;
}

/** Splits one CSV line (RFC 4180 quoting within the line); null when a quote is left open. */
export function splitCsvLine(text: string): string[] | null {
  if (!text.includes('"')) return text.split(",");
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    // Leading spaces before an opening quote are allowed (fields are trimmed anyway).
    let j = i;
    while (text.charCodeAt(j) === 32) j++;
    if (text.charCodeAt(j) === 34) {
      let value = "";
      let k = j + 1;
      for (;;) {
        const q = text.indexOf('"', k);
        if (q < 0) return null;
        value += text.slice(k, q);
        if (text.charCodeAt(q + 1) === 34) {
          value += '"';
          k = q + 2;
          continue;
        }
        k = q + 1;
        break;
      }
      const comma = text.indexOf(",", k);
      const rest = comma < 0 ? text.slice(k) : text.slice(k, comma);
      if (rest.trim() !== "") return null;
      fields.push(value);
      if (comma < 0) return fields;
      i = comma + 1;
    } else {
      const comma = text.indexOf(",", i);
      const raw = comma < 0 ? text.slice(i) : text.slice(i, comma);
      if (raw.includes('"')) return null;
      fields.push(raw);
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}
