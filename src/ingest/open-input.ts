// Opens ingest inputs, plain or gzip-compressed, counting the bytes read from disk for progress reports.
import { createReadStream, statSync } from "node:fs";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { type FileFormat, formatOf } from "./membership-rows.ts";

export class IngestInputError extends Error {
  readonly code = "AUD_ERR_INGEST_INPUT";
}

export interface FileInput {
  /** The file's bytes, decompressed when they are gzip. */
  readonly stream: Readable;
  /** Size on disk (compressed size for gzip), to compare with bytesRead. */
  readonly sizeBytes: number;
  /** Bytes read from disk so far. */
  readonly bytesRead: () => number;
}

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

/** Membership format by extension, looking through a trailing ".gz" (members.csv.gz is CSV). */
export function membershipFormatOf(path: string): FileFormat | null {
  return formatOf(path.replace(/\.gz$/i, ""));
}

/**
 * Passes the bytes through, gunzipped when they start with the gzip magic number: decided by content, not
 * name, so a compressed file under any name loads. A truncated or corrupt gzip stream errors with
 * IngestInputError rather than ending early, which would silently load part of a file.
 */
export function decompressIfGzip(input: Readable): Readable {
  return Readable.from(sniff(input), { objectMode: false });
}

async function* sniff(input: Readable): AsyncGenerator<Buffer> {
  const chunks = input[Symbol.asyncIterator]();
  try {
    let head = Buffer.alloc(0);
    while (head.length < 2) {
      const next = await chunks.next();
      if (next.done) {
        if (head.length > 0) yield head;
        return;
      }
      head = Buffer.concat([head, toBuffer(next.value)]);
    }
    if (head[0] !== GZIP_MAGIC_0 || head[1] !== GZIP_MAGIC_1) {
      yield head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield toBuffer(next.value);
      return;
    }
    const gunzip = createGunzip();
    // Errors from either side end up on gunzip, where the loop below sees them.
    pipeline(Readable.from(rest(head, chunks), { objectMode: false }), gunzip, () => {});
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      throw isZlibError(err)
        ? new IngestInputError(`gzip data is truncated or corrupt: ${(err as Error).message}`, { cause: err })
        : err;
    }
  } finally {
    // Stopping early (a consumer that breaks out, or an error) must still release the file.
    await chunks.return?.();
  }
}

async function* rest(head: Buffer, chunks: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  yield head;
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield toBuffer(next.value);
}

function toBuffer(chunk: unknown): Buffer {
  return typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
}

function isZlibError(err: unknown): boolean {
  // zlib failures carry a Z_* code (Z_BUF_ERROR for a cut-off stream, Z_DATA_ERROR for bad data).
  return String((err as { code?: unknown } | null)?.code).startsWith("Z_");
}

/** Opens a membership file for loading; throws IngestInputError naming the path when it cannot be read. */
export function openFileInput(path: string): FileInput {
  let sizeBytes: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    sizeBytes = st.size;
  } catch (err) {
    throw cannotRead(path, err);
  }
  let read = 0;
  const raw = createReadStream(path);
  async function* counted(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of raw) {
        read += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    } catch (err) {
      // The file can still vanish or fail between the stat above and the read.
      throw cannotRead(path, err);
    }
  }
  return {
    stream: decompressIfGzip(Readable.from(counted(), { objectMode: false })),
    sizeBytes,
    bytesRead: () => read,
  };
}

function cannotRead(path: string, err: unknown): IngestInputError {
  const code = (err as { code?: unknown } | null)?.code;
  const why =
    code === "ENOENT"
      ? "no such file"
      : code === "EACCES"
        ? "permission denied"
        : code === "EISDIR"
          ? "is a directory"
          : (err as Error).message;
  return new IngestInputError(`cannot read ${path}: ${why}`, { cause: err });
}
