// The closing summary line counts a suite whose setup failed as failed, not as skipped: vitest itself is run
// on fixtures where one suite's beforeAll throws, beside a passing test and one skipped on purpose.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const CONFIG = fileURLToPath(new URL("../fixtures/summary/vitest.config.ts", import.meta.url));
const VITEST = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));

it("prints 2 failed for the two tests of a failed setup, and exits 1", async () => {
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [VITEST, "run", "--config", CONFIG],
      { timeout: 60_000 },
      (_, out) => resolve({ code: child.exitCode, stdout: out }),
    );
  });
  expect(stdout.trim().split("\n").at(-1)).toBe("tests: 1 passed, 2 failed, 1 skipped");
  expect(code).toBe(1);
}, 60_000);
