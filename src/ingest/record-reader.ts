// Reads CSV (with a header) or NDJSON as a stream of records, each with its line number; a bad line is
// reported and reading goes on. Shared by every bulk file: memberships, opt-outs.

import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { parse as parseCsv } from "csv-parse";

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

export async function* readRecords(
  input: Readable,
  format: FileFormat,
  shape: RecordShape,
): AsyncGenerator<RecordResult> {
  if (format === "ndjson") yield* readNdjson(input);
  else yield* readCsv(input, shape);
}

async function* readNdjson(input: Readable): AsyncGenerator<RecordResult> {
  let inputError: Error | null = null;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  // readline ends quietly when its input fails; remember why, so a truncated file is an error, not a short load.
  input.once("error", (err) => {
    inputError = err;
    lines.close();
  });
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
    yield { line, record: v as Record<string, unknown> };
  }
  if (inputError !== null) throw new IngestFileError((inputError as Error).message);
}

async function* readCsv(input: Readable, shape: RecordShape): AsyncGenerator<RecordResult> {
  const skipped: RecordResult[] = [];
  const parser = parseCsv({
    columns: (header: string[]) => {
      const cols = header.map((h) => h.trim().toLowerCase());
      const missing = shape.required.filter((c) => !cols.includes(c));
      if (missing.length > 0) {
        throw new IngestFileError(
          `CSV header must name ${shape.required.join(",")}; missing ${missing.join(",")}`,
        );
      }
      const unknown = cols.filter((c) => !shape.known.has(c));
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
  let inputError: Error | null = null;
  input.on("error", (err) => {
    inputError = err;
    parser.destroy(err);
  });
  input.pipe(parser);
  try {
    for await (const rec of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      // csv-parse reports a skipped row as soon as it parses its chunk, before the records ahead of it are
      // read here: hold each until the records before it have been yielded, so rows come out in file order.
      while (skipped.length > 0 && (skipped[0] as RecordResult).line < rec.info.lines) {
        yield skipped.shift() as RecordResult;
      }
      yield { line: rec.info.lines, record: rec.record };
    }
  } catch (err) {
    if (err instanceof IngestFileError) throw err;
    if (inputError !== null) throw new IngestFileError((inputError as Error).message);
    throw new IngestFileError(`not a readable CSV file: ${(err as Error).message}`);
  }
  while (skipped.length > 0) yield skipped.shift() as RecordResult;
}
