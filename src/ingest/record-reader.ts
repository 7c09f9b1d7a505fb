// Reads CSV (with a header) or NDJSON as a stream of records, each with its line number; a bad line is
// reported and reading goes on. Shared by every bulk file: memberships, opt-outs.
//
// Records come out in batches, one per input chunk: a bulk load handles millions of rows, and one trip
// through an async iterator per row cost more than parsing the row. CSV is split here rather than by a
// general CSV library for the same reason; quoted fields ("a,b" and "" escapes) are supported, a field
// spanning lines is not (no membership or opt-out column holds a newline): such a row is reported as
// malformed.

import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
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

/** Batches of records in file order (a batch may be empty). */
export async function* readRecordBatches(
  input: Readable,
  format: FileFormat,
  shape: RecordShape,
): AsyncGenerator<RecordResult[]> {
  const parse = format === "csv" ? csvParser(shape) : ndjsonLine;
  const decoder = new StringDecoder("utf8");
  let carry = "";
  let line = 0;
  const take = (text: string, out: RecordResult[]): void => {
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      line++;
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      const r = parse(text.slice(start, end), line);
      if (r !== null) out.push(r);
      start = nl + 1;
    }
    carry = text.slice(start);
  };
  try {
    for await (const chunk of input) {
      const out: RecordResult[] = [];
      take(carry + (typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer)), out);
      yield out;
    }
  } catch (err) {
    if (err instanceof IngestFileError) throw err;
    throw new IngestFileError((err as Error).message);
  }
  const out: RecordResult[] = [];
  take(`${carry}${decoder.end()}\n`, out);
  yield out;
}

/** One record at a time, for callers that are not on a hot loop. */
export async function* readRecords(
  input: Readable,
  format: FileFormat,
  shape: RecordShape,
): AsyncGenerator<RecordResult> {
  for await (const batch of readRecordBatches(input, format, shape)) yield* batch;
}

function ndjsonLine(text: string, line: number): RecordResult | null {
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

/** A CSV line parser bound to the file's header, which it reads from the first non-empty line. */
function csvParser(shape: RecordShape): (text: string, line: number) => RecordResult | null {
  let columns: string[] | null = null;
  return (text, line) => {
    if (text.trim() === "") return null;
    const fields = splitCsvLine(text);
    if (columns === null) {
      if (fields === null)
        throw new IngestFileError("not a readable CSV file: the header has an unbalanced quote");
      columns = checkHeader(
        fields.map((h) =>
          h
            .trim()
            .toLowerCase()
            .replace(/^\ufeff/, ""),
        ),
        shape,
      );
      return null;
    }
    if (fields === null) return { line, error: "malformed CSV row: unbalanced quote" };
    if (fields.length !== columns.length) {
      return {
        line,
        error: `malformed CSV row: ${fields.length} fields where the header has ${columns.length}`,
      };
    }
    const record: Record<string, string> = {};
    for (let i = 0; i < columns.length; i++) record[columns[i] as string] = (fields[i] as string).trim();
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
