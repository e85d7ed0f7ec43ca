/**
 * vitest globalSetup for the e2e project: one devstack for the whole run, on free
 * ports and its own database (`switchboard_e2e`), so it never disturbs a developer's
 * `npm start`. Tests read its status with `inject("devstack")` (see helpers.ts).
 *
 * Functions served: the real ones (supabase/functions) plus test fixtures
 * (tests/e2e/fixtures/functions); Deno's output goes to .devstack/e2e/functions.log.
 */
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { resolveDatabaseUrl, testDatabaseName, withDatabase } from "../../packages/devstack/src/db.ts";
import { startStack, type StackStatus } from "../../packages/devstack/src/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    devstack: StackStatus;
    /** State dir of the e2e stack (its signing key lives there). */
    devstackStateDir: string;
  }
}

// Overridable so two checkouts on one server do not reset each other's database.
const E2E_DATABASE = process.env.SWITCHBOARD_E2E_DATABASE || testDatabaseName("e2e");

export default async function setup(project: TestProject) {
  // DATABASE_URL names the server; the e2e suite always uses its own database on it.
  const databaseUrl = process.env.DATABASE_URL
    ? withDatabase(process.env.DATABASE_URL, E2E_DATABASE)
    : await resolveDatabaseUrl(E2E_DATABASE);
  const stateDir = join(REPO_ROOT, ".devstack", E2E_DATABASE === "switchboard_e2e" ? "e2e" : E2E_DATABASE);

  const stack = await startStack({
    databaseUrl,
    // SWITCHBOARD_E2E_RESET=0 reuses the database as it is (faster local iterations).
    reset: process.env.SWITCHBOARD_E2E_RESET !== "0",
    config: {
      ephemeralPorts: true,
      stateDir,
      functionsDirs: [join(REPO_ROOT, "supabase/functions"), join(REPO_ROOT, "tests/e2e/fixtures/functions")],
    },
    functionsLog: join(stateDir, "functions.log"),
    log: (line) => console.error(`[devstack] ${line}`),
  });

  project.provide("devstack", stack.status);
  project.provide("devstackStateDir", stateDir);
  return () => stack.stop();
}
