import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration suites start their own redis-server processes; keep the pool small on 2 cores.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 20_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    hookTimeout: 30_000,
  },
});
