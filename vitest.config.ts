import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration suites start their own redis-server processes; keep the pool small on 2 cores.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 20_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    // Every answer of the service a test receives is held to /openapi.json (test/helpers/openapi-check.ts).
    setupFiles: ["./test/helpers/openapi-setup.ts"],
    hookTimeout: 30_000,
  },
});
