// Prints one plain closing line, "tests: N passed, N failed[, N skipped]", after vitest's own summary.
// A test that was meant to run but did not, because its suite's setup (beforeAll, a failed import, a
// redis-server that would not start) failed, counts as failed: vitest reports it as skipped, and a line
// saying "0 failed" under a run that exits 1 would hide the failure. Only tests skipped on purpose
// (it.skip, it.todo, a name filter) are counted as skipped.
import type { Reporter, TestModule } from "vitest/node";

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

function tally(modules: readonly TestModule[]): Tally {
  const t: Tally = { passed: 0, failed: 0, skipped: 0 };
  for (const m of modules) {
    let failedHere = 0;
    for (const test of m.children.allTests()) {
      const state = test.result().state;
      if (state === "passed") t.passed++;
      else if (state === "failed" || test.options.mode === "run" || test.options.mode === "only")
        failedHere++;
      else t.skipped++;
    }
    // A module that failed with no test to blame (an import error, a throw at the top level).
    if (m.state() === "failed" && failedHere === 0) failedHere = 1;
    t.failed += failedHere;
  }
  return t;
}

function summaryLine({ passed, failed, skipped }: Tally): string {
  return `tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: readonly TestModule[]): void {
    process.stdout.write(`\n${summaryLine(tally(modules))}\n`);
  }
}
