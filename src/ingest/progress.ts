// Reports the progress of a long load on stderr: a live line on a terminal, a plain line now and then in logs.

export interface ProgressOptions {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Input size in bytes, when known: gives the percentage and the ETA. */
  readonly totalBytes: number | null;
  /** Bytes of input consumed so far (read from disk, so compressed bytes for gzip, like totalBytes). */
  readonly bytesDone: () => number;
  readonly label: string;
  readonly now?: () => number;
  /** Gap between plain lines when out is not a terminal. */
  readonly intervalMs?: number;
}

export interface Progress {
  /** Called for every row: cheap unless a report is due. */
  update(rows: number): void;
  /** Ends the live line on a terminal so what follows starts on its own line. */
  finish(rows: number): void;
}

/** update() reads the clock only once in this many calls: the rows in between cost a counter increment. */
export const PROGRESS_CHECK_EVERY = 64;
const TTY_REDRAW_MS = 100;
const DEFAULT_INTERVAL_MS = 5_000;
const BAR_WIDTH = 20;

export function createProgress(opts: ProgressOptions): Progress {
  const now = opts.now ?? Date.now;
  const tty = opts.out.isTTY === true;
  const gapMs = tty ? TTY_REDRAW_MS : (opts.intervalMs ?? DEFAULT_INTERVAL_MS);
  const started = now();
  let lastReport = started;
  let calls = 0;
  let drawn = false;

  const report = (rows: number, t: number): void => {
    const elapsedS = Math.max(t - started, 1) / 1000;
    const rate = Math.round(rows / elapsedS);
    const done = opts.bytesDone();
    const total = opts.totalBytes;
    const known = total !== null && total > 0;
    const fraction = known ? Math.min(done / total, 1) : 0;
    const pct = Math.floor(fraction * 100);
    // ETA from bytes, not rows: the row count of the whole file is unknown until the end.
    const byteRate = done / elapsedS;
    const eta = known && byteRate > 0 ? Math.ceil((total - Math.min(done, total)) / byteRate) : null;
    const counts = `${rows} rows, ${rate} rows/s`;
    const tail = known ? `, ${pct}%${eta === null ? "" : `, ETA ${eta} s`}` : "";
    if (!tty) {
      opts.out.write(`${opts.label}: ${counts}${tail}\n`);
      return;
    }
    const filled = Math.floor(fraction * BAR_WIDTH);
    const bar = known ? ` [${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}]` : "";
    let line = `${opts.label}${bar} ${counts}${tail}`;
    // A line that wraps can no longer be redrawn in place with \r.
    const width = opts.out.columns;
    if (width !== undefined && width > 1 && line.length >= width) line = line.slice(0, width - 1);
    opts.out.write(`\r${line}\x1b[K`);
    drawn = true;
  };

  return {
    update(rows: number): void {
      if (++calls < PROGRESS_CHECK_EVERY) return;
      calls = 0;
      const t = now();
      if (t - lastReport < gapMs) return;
      lastReport = t;
      report(rows, t);
    },
    finish(rows: number): void {
      // Only a drawn live line needs closing (with its final numbers); a quick load stays silent.
      if (!tty || !drawn) return;
      report(rows, now());
      opts.out.write("\n");
      drawn = false;
    },
  };
}
