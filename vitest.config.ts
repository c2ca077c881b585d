import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One temporary folder for the run; the teardown fails the run if a test left anything in it.
    globalSetup: ['test/support/temp-root.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
          exclude: ['packages/*/src/**/*.integration.test.ts'],
          environment: 'node',
          // A hang guard, not a speed check: vitest's default (5 s) failed property tests on a
          // loaded machine (1,500 random requests took 5.4 s at a load average of 11).
          testTimeout: 60_000,
        },
      },
      {
        // Real dockerd + ip + nsenter; run by test/unionize-docker.test.ts inside a lab namespace.
        test: {
          name: 'integration',
          include: ['packages/*/src/**/*.integration.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: ['**/node_modules/**'],
          environment: 'node',
          // The lab is one set of namespaces, bridges and daemons: run e2e files one at a time.
          fileParallelism: false,
          setupFiles: ['test/support/lab-logs-on-failure.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
