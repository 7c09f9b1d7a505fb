// The known IDs of `audience loadtest --ids file.csv`: one `type,id` a line, types as the ingest files name them.
import { readFileSync } from "node:fs";
import { normaliseType, toTypedId } from "../identity/typed-id.ts";

export interface KnownId {
  /** Normalised type: bu, ifa, xu:<exchange>, eid:<source>, hem or email. */
  readonly type: string;
  /** The ID as the file gives it (trimmed): written into the bid request as a caller would send it. */
  readonly id: string;
  readonly line: number;
}

export interface IdsFileError {
  readonly line: number;
  readonly reason: string;
}

export interface IdsFile {
  readonly ids: KnownId[];
  readonly errors: IdsFileError[];
}

/**
 * Splits one CSV line into fields: commas separate, a field may be quoted ("a,b", "" for a quote inside).
 * Returns null when a quote is left open.
 */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return null;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Only a separator or the end may follow a closing quote.
      if (i < line.length && line[i] !== ",") return null;
      fields.push(value);
    } else {
      const comma = line.indexOf(",", i);
      const end = comma < 0 ? line.length : comma;
      fields.push(line.slice(i, end));
      i = end;
    }
    if (i >= line.length) return fields;
    i++; // the comma
    if (i === line.length) {
      fields.push("");
      return fields;
    }
  }
}

/**
 * Reads the text of an ids file. A first line `type,id` is a header; blank lines are skipped. Every line that is
 * not two fields naming a valid typed ID is an error with its (1-based) line number.
 */
export function parseIdsCsv(text: string): IdsFile {
  const ids: KnownId[] = [];
  const errors: IdsFileError[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n] as string;
    if (n === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") continue;
    const lineNo = n + 1;
    const fields = splitCsvLine(line);
    if (fields === null) {
      errors.push({ line: lineNo, reason: "unclosed quote" });
      continue;
    }
    if (n === 0 && fields.length === 2 && fields[0]?.trim() === "type" && fields[1]?.trim() === "id")
      continue;
    if (fields.length !== 2) {
      errors.push({ line: lineNo, reason: `expected 2 fields (type,id), got ${fields.length}` });
      continue;
    }
    const typed = toTypedId(fields[0] as string, fields[1] as string);
    if (!typed.ok) {
      errors.push({ line: lineNo, reason: typed.reason });
      continue;
    }
    ids.push({
      type: normaliseType(fields[0] as string) as string,
      id: (fields[1] as string).trim(),
      line: lineNo,
    });
  }
  return { ids, errors };
}

/** A file that cannot be read at all (missing, a directory, unreadable). */
export class IdsFileUnreadable extends Error {}

export function readIdsFile(path: string): IdsFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    throw new IdsFileUnreadable(`${path}: ${why}`);
  }
  return parseIdsCsv(text);
}
