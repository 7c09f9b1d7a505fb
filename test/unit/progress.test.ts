import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createProgress, PROGRESS_CHECK_EVERY, type Progress } from "../../src/ingest/progress.ts";

/** Records each write, optionally posing as a terminal; writes land synchronously as done() is called at once. */
class FakeOut extends Writable {
  readonly writes: string[] = [];
  isTTY?: boolean;
  columns?: number;
  constructor(tty: boolean, columns?: number) {
    super({ decodeStrings: false });
    if (tty) this.isTTY = true;
    if (columns !== undefined) this.columns = columns;
  }
  override _write(chunk: unknown, _enc: BufferEncoding, done: () => void): void {
    this.writes.push(String(chunk));
    done();
  }
}

const fakeOut = (tty: boolean, columns?: number): FakeOut => new FakeOut(tty, columns);

/** One clock check: update() looks at the clock once per PROGRESS_CHECK_EVERY calls. */
function tick(p: Progress, rows: number): void {
  for (let i = 0; i < PROGRESS_CHECK_EVERY; i++) p.update(rows);
}

const clock = (start = 1_000_000) => {
  const c = { t: start, now: () => c.t };
  return c;
};

describe("progress on a terminal", () => {
  it("redraws one line in place with a bar, rate and ETA", () => {
    const out = fakeOut(true);
    const c = clock();
    let bytes = 0;
    const p = createProgress({ out, totalBytes: 1_000, bytesDone: () => bytes, label: "load", now: c.now });

    c.t += 2_000;
    bytes = 250;
    tick(p, 10_000);
    expect(out.writes).toEqual(["\rload [#####...............] 10000 rows, 5000 rows/s, 25%, ETA 6 s\x1b[K"]);

    c.t += 2_000;
    bytes = 500;
    tick(p, 20_000);
    expect(out.writes[1]).toBe("\rload [##########..........] 20000 rows, 5000 rows/s, 50%, ETA 4 s\x1b[K");
    expect(out.writes.join("")).not.toContain("\n");
  });

  it("redraws at most every 100 ms", () => {
    const out = fakeOut(true);
    const c = clock();
    const p = createProgress({ out, totalBytes: null, bytesDone: () => 0, label: "load", now: c.now });
    c.t += 99;
    tick(p, 1);
    expect(out.writes).toEqual([]);
    c.t += 1;
    tick(p, 2);
    expect(out.writes).toEqual(["\rload 2 rows, 20 rows/s\x1b[K"]);
    c.t += 50;
    tick(p, 3);
    expect(out.writes).toHaveLength(1);
    c.t += 50;
    tick(p, 4);
    expect(out.writes).toHaveLength(2);
  });

  it("reads the clock only once per PROGRESS_CHECK_EVERY updates", () => {
    const out = fakeOut(true);
    let reads = 0;
    let t = 0;
    const now = (): number => {
      reads++;
      return t;
    };
    const p = createProgress({ out, totalBytes: null, bytesDone: () => 0, label: "x", now });
    expect(reads).toBe(1);
    t = 10_000;
    for (let i = 0; i < PROGRESS_CHECK_EVERY - 1; i++) p.update(i);
    expect(reads).toBe(1);
    expect(out.writes).toEqual([]);
    p.update(PROGRESS_CHECK_EVERY);
    expect(reads).toBe(2);
    expect(out.writes).toHaveLength(1);
    expect(PROGRESS_CHECK_EVERY).toBeGreaterThan(1);
  });

  it("shows rows and rate only when the size is unknown", () => {
    const out = fakeOut(true);
    const c = clock();
    const p = createProgress({ out, totalBytes: null, bytesDone: () => 500, label: "stdin", now: c.now });
    c.t += 4_000;
    tick(p, 1_000);
    expect(out.writes).toEqual(["\rstdin 1000 rows, 250 rows/s\x1b[K"]);
  });

  it("cuts the line to the terminal width so it never wraps", () => {
    const out = fakeOut(true, 20);
    const c = clock();
    const p = createProgress({ out, totalBytes: 100, bytesDone: () => 50, label: "load", now: c.now });
    c.t += 1_000;
    tick(p, 7);
    expect(out.writes).toEqual(["\rload [##########...\x1b[K"]);
    expect("load [##########...".length).toBe(19);
  });

  it.each([
    [22, "x 100 rows, 100 rows/"],
    [23, "x 100 rows, 100 rows/s"],
  ])("on a %i-column terminal writes %j", (columns, line) => {
    const out = fakeOut(true, columns);
    const c = clock();
    const p = createProgress({ out, totalBytes: null, bytesDone: () => 0, label: "x", now: c.now });
    c.t += 1_000;
    tick(p, 100);
    expect(out.writes).toEqual([`\r${line}\x1b[K`]);
  });

  it("finish redraws the final numbers and ends the line", () => {
    const out = fakeOut(true);
    const c = clock();
    let bytes = 400;
    const p = createProgress({ out, totalBytes: 800, bytesDone: () => bytes, label: "load", now: c.now });
    c.t += 1_000;
    tick(p, 100);
    c.t += 1_000;
    bytes = 800;
    p.finish(300);
    expect(out.writes).toEqual([
      "\rload [##########..........] 100 rows, 100 rows/s, 50%, ETA 1 s\x1b[K",
      "\rload [####################] 300 rows, 150 rows/s, 100%, ETA 0 s\x1b[K",
      "\n",
    ]);
  });

  it("finish writes nothing when no line was drawn", () => {
    const out = fakeOut(true);
    const c = clock();
    const p = createProgress({ out, totalBytes: 10, bytesDone: () => 10, label: "load", now: c.now });
    tick(p, 5);
    c.t += 50;
    p.finish(5);
    expect(out.writes).toEqual([]);
  });
});

describe("progress in a log (not a terminal)", () => {
  it("writes plain lines every intervalMs, with no control characters", () => {
    const out = fakeOut(false);
    const c = clock();
    let bytes = 0;
    const p = createProgress({
      out,
      totalBytes: 10_000,
      bytesDone: () => bytes,
      label: "members.csv",
      now: c.now,
      intervalMs: 1_000,
    });
    c.t += 999;
    tick(p, 10);
    expect(out.writes).toEqual([]);
    c.t += 1;
    bytes = 1_000;
    tick(p, 300);
    c.t += 500;
    tick(p, 400);
    c.t += 500;
    bytes = 2_500;
    tick(p, 500);
    expect(out.writes).toEqual([
      "members.csv: 300 rows, 300 rows/s, 10%, ETA 9 s\n",
      "members.csv: 500 rows, 250 rows/s, 25%, ETA 6 s\n",
    ]);
    p.finish(600);
    expect(out.writes).toHaveLength(2);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking that none are written
    expect(out.writes.join("")).not.toMatch(/[\r\x1b]/);
  });

  it("defaults to a line every 5 s", () => {
    const out = fakeOut(false);
    const c = clock();
    const p = createProgress({ out, totalBytes: null, bytesDone: () => 0, label: "load", now: c.now });
    c.t += 4_999;
    tick(p, 1);
    expect(out.writes).toEqual([]);
    c.t += 1;
    tick(p, 10_000);
    expect(out.writes).toEqual(["load: 10000 rows, 2000 rows/s\n"]);
  });

  it("ignores intervalMs on a terminal", () => {
    const out = fakeOut(true);
    const c = clock();
    const p = createProgress({
      out,
      totalBytes: null,
      bytesDone: () => 0,
      label: "load",
      now: c.now,
      intervalMs: 60_000,
    });
    c.t += 100;
    tick(p, 1);
    expect(out.writes).toHaveLength(1);
  });
});
