import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          sequence: { groupOrder: 1 },
          include: ["tests/unit/**/*.test.ts", "tests/providers/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "db",
          include: ["tests/db/**/*.test.ts"],
          // Runs before the other projects: its concurrency test needs 100 connections.
          sequence: { groupOrder: 0 },
          testTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "e2e",
          sequence: { groupOrder: 1 },
          include: ["tests/e2e/**/*.test.ts"],
          globalSetup: ["tests/e2e/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // The network guard against hostile destinations, in a network namespace with
          // only loopback: run it with tests/netns/run.sh (npm test does). Anywhere else its
          // global setup starts nothing and the tests are skipped.
          name: "netns",
          sequence: { groupOrder: 2 },
          include: ["tests/netns/**/*.test.ts"],
          globalSetup: ["tests/netns/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // Fault tests: a throwaway PostgreSQL cluster they stop and restart, killed
          // processes. Last, after everything else has finished.
          name: "faults",
          sequence: { groupOrder: 2 },
          include: ["tests/faults/**/*.test.ts"],
          testTimeout: 90_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
