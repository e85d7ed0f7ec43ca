import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** The default order, except that a project's `after-suite.test.ts` runs after its other files. */
class AfterSuiteLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const last = (file: TestSpecification) => file.moduleId.endsWith("/after-suite.test.ts");
    return [...sorted.filter((file) => !last(file)), ...sorted.filter(last)];
  }
}

export default defineConfig({
  test: {
    sequence: { sequencer: AfterSuiteLast },
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
          // The dashboard in Debian's Chromium (playwright-core), against a stack of its own
          // that serves the built dashboard. npm test runs it as its own step.
          name: "dashboard",
          sequence: { groupOrder: 3 },
          include: ["tests/dashboard/**/*.test.ts"],
          globalSetup: ["tests/dashboard/global-setup.ts"],
          testTimeout: 90_000,
          hookTimeout: 180_000,
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
      {
        test: {
          // The official MCP conformance suite against the real mcp function, per protocol
          // revision, on a stack of its own. npm test runs it as its own step.
          name: "conformance",
          sequence: { groupOrder: 3 },
          include: ["tests/conformance/**/*.test.ts"],
          globalSetup: ["tests/conformance/global-setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // Part of the e2e suite again, with the functions behind PgBouncer in transaction
          // mode (a transaction pooler, as Supavisor is) as switchboard_functions, plus the
          // pooler's own checks. npm test runs it as its own step.
          name: "pooled",
          sequence: { groupOrder: 3 },
          include: [
            "tests/pooled/**/*.test.ts",
            "tests/e2e/agent-tools.test.ts",
            "tests/e2e/sdk.test.ts",
            "tests/e2e/providers-clicksend.test.ts",
            "tests/e2e/idempotency-argument.test.ts",
            "tests/e2e/routes.test.ts",
          ],
          globalSetup: ["tests/pooled/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
