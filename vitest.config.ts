import { configDefaults, defineConfig } from "vitest/config";

/**
 * Tests that hold the service to its deadlines while faults are injected (15 ms budget, 25 ms Redis
 * command timeout, as shipped). They run after the rest of the suite, one file at a time. Measured on this
 * 2-core machine: with other test processes busy beside them, the fault tests saw answers of 100-500 ms
 * and degraded answers on a healthy Redis; alone, a median of 2 ms and at most about 65 ms (the service's
 * own garbage collection, see test/integration/faults.test.ts). Beside another file the deadlines would
 * measure the neighbour, not the service.
 */
const TIMED = [
  "test/integration/faults.test.ts",
  "test/cluster/cluster-failover.test.ts",
  "test/cluster/impression-durability.test.ts",
];

export default defineConfig({
  test: {
    // Integration suites start their own redis-server processes; keep the pool small on 2 cores.
    pool: "forks",
    testTimeout: 20_000,
    // Every answer of the service a test receives is held to /openapi.json (test/helpers/openapi-check.ts).
    setupFiles: ["./test/helpers/openapi-setup.ts"],
    hookTimeout: 30_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...TIMED],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: "timed", include: TIMED, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
