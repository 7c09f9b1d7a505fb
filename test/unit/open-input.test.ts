import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  decompressIfGzip,
  IngestInputError,
  membershipFormatOf,
  openFileInput,
} from "../../src/ingest/open-input.ts";

const dir = mkdtempSync(join(tmpdir(), "open-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Yields the buffer in pieces of `size` bytes, so the two magic bytes can arrive separately. */
const inPieces = (buf: Buffer, size: number): Readable =>
  Readable.from(
    Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size)),
  );

// Varied text so the compressed form is much shorter than the original but not trivially so.
const TEXT = Array.from({ length: 2_000 }, (_, i) => `bu,b${i},seg${i % 37},${i * 7}\n`).join("");

describe("membershipFormatOf", () => {
  it.each([
    ["m.csv", "csv"],
    ["m.csv.gz", "csv"],
    ["dir/M.CSV.GZ", "csv"],
    ["m.ndjson", "ndjson"],
    ["m.ndjson.gz", "ndjson"],
    ["m.jsonl", "ndjson"],
    ["m.jsonl.gz", "ndjson"],
    ["m.gz", null],
    ["m.json.gz", null],
    ["m.csv.gz.gz", null],
    ["m.tar.gz", null],
    ["m", null],
  ])("%s -> %s", (path, format) => {
    expect(membershipFormatOf(path)).toBe(format);
  });
});

describe("decompressIfGzip", () => {
  it("gunzips gzip input back to the original bytes", async () => {
    const gz = gzipSync(TEXT);
    expect(gz.length).toBeLessThan(TEXT.length);
    expect((await collect(decompressIfGzip(Readable.from([gz])))).toString()).toBe(TEXT);
  });

  it("recognises the magic number split across one-byte chunks", async () => {
    const gz = gzipSync("hello\n");
    expect((await collect(decompressIfGzip(inPieces(gz, 1)))).toString()).toBe("hello\n");
  });

  it("passes plain input through unchanged, first bytes included", async () => {
    const plain = Buffer.from(TEXT);
    expect((await collect(decompressIfGzip(inPieces(plain, 1_000)))).equals(plain)).toBe(true);
    expect((await collect(decompressIfGzip(inPieces(Buffer.from("ab"), 1)))).toString()).toBe("ab");
  });

  it("passes through input that starts with 0x1f but not the full magic number", async () => {
    const bytes = Buffer.from([0x1f, 0x00, 0x8b, 0x41]);
    expect((await collect(decompressIfGzip(Readable.from([bytes])))).equals(bytes)).toBe(true);
  });

  it("passes through empty and one-byte input", async () => {
    expect((await collect(decompressIfGzip(Readable.from([])))).length).toBe(0);
    expect(
      (await collect(decompressIfGzip(Readable.from([Buffer.from([0x1f])])))).equals(Buffer.from([0x1f])),
    ).toBe(true);
  });

  it("accepts string chunks", async () => {
    expect((await collect(decompressIfGzip(Readable.from(["a,b\n", "c,d\n"])))).toString()).toBe(
      "a,b\nc,d\n",
    );
  });

  it("errors with IngestInputError on truncated gzip instead of ending early", async () => {
    const gz = gzipSync(TEXT);
    const err = await collect(decompressIfGzip(Readable.from([gz.subarray(0, gz.length >> 1)]))).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IngestInputError);
    expect((err as IngestInputError).code).toBe("AUD_ERR_INGEST_INPUT");
    expect((err as Error).message).toBe("gzip data is truncated or corrupt: unexpected end of file");
  });

  it("errors with IngestInputError on corrupt gzip", async () => {
    const gz = Buffer.from(gzipSync(TEXT));
    gz.fill(0xff, 20, 60);
    const err = await collect(decompressIfGzip(Readable.from([gz]))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestInputError);
    expect((err as Error).message).toMatch(/^gzip data is truncated or corrupt: \w/);
  });

  it("passes an error of the input through as it is", async () => {
    const boom = new Error("disk on fire");
    const failing = new Readable({
      read() {
        this.destroy(boom);
      },
    });
    await expect(collect(decompressIfGzip(failing))).rejects.toBe(boom);
    const gzFailing = Readable.from(
      (async function* () {
        yield gzipSync(TEXT).subarray(0, 10);
        throw boom;
      })(),
    );
    await expect(collect(decompressIfGzip(gzFailing))).rejects.toBe(boom);
  });

  it.each([
    ["plain", Buffer.from(TEXT)],
    ["gzip", gzipSync(TEXT)],
  ])("destroys a %s input that has not ended when the reader stops early", async (_kind, first) => {
    // An input that never ends: only the reader giving up can release it.
    const source = Readable.from(
      (async function* () {
        yield first;
        for (;;) yield await new Promise<Buffer>((done) => setTimeout(() => done(Buffer.from("x")), 5));
      })(),
      { objectMode: false },
    );
    for await (const _ of decompressIfGzip(source)) break;
    await new Promise((done) => setTimeout(done, 20));
    expect(source.destroyed).toBe(true);
  });
});

describe("openFileInput", () => {
  it("reads a plain file, reporting its size and the bytes read", async () => {
    const path = join(dir, "plain.csv");
    writeFileSync(path, TEXT);
    const f = openFileInput(path);
    expect(f.sizeBytes).toBe(TEXT.length);
    expect(f.bytesRead()).toBe(0);
    expect((await collect(f.stream)).toString()).toBe(TEXT);
    expect(f.bytesRead()).toBe(TEXT.length);
  });

  it("gunzips a gzip file, counting compressed bytes against the compressed size", async () => {
    const path = join(dir, "members.csv.gz");
    const gz = gzipSync(TEXT);
    writeFileSync(path, gz);
    const f = openFileInput(path);
    expect(f.sizeBytes).toBe(gz.length);
    expect((await collect(f.stream)).toString()).toBe(TEXT);
    expect(f.bytesRead()).toBe(gz.length);
  });

  it("errors with IngestInputError on a truncated gzip file", async () => {
    const path = join(dir, "cut.csv.gz");
    const gz = gzipSync(TEXT);
    writeFileSync(path, gz.subarray(0, gz.length >> 1));
    await expect(collect(openFileInput(path).stream)).rejects.toThrow(
      new IngestInputError("gzip data is truncated or corrupt: unexpected end of file"),
    );
  });

  it("throws a clear error naming a missing file", () => {
    const path = join(dir, "nope.csv");
    let err: unknown;
    try {
      openFileInput(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IngestInputError);
    expect((err as IngestInputError).code).toBe("AUD_ERR_INGEST_INPUT");
    expect((err as Error).message).toBe(`cannot read ${path}: no such file`);
  });

  it("throws for a directory", () => {
    expect(() => openFileInput(dir)).toThrow(new IngestInputError(`cannot read ${dir}: is a directory`));
  });

  it("errors naming the path when the file goes away between open and read", async () => {
    const path = join(dir, "gone.csv");
    writeFileSync(path, TEXT);
    const f = openFileInput(path);
    rmSync(path);
    await expect(collect(f.stream)).rejects.toThrow(
      new IngestInputError(`cannot read ${path}: no such file`),
    );
  });
});
