/**
 * vitest globalSetup for the dashboard's browser tests: one devstack on free ports and
 * its own database, plus the dashboard (built when its sources changed) served by the
 * devstack's static server with a runtime config pointing at that stack. Tests read
 * both with `inject("dashboardStack")`.
 *
 * Database: SWITCHBOARD_E2E_DATABASE when set, else `<test database>_e2e_dashboard`
 * (switchboard_e2e_dashboard), so it never resets the e2e suite's database.
 */
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { startDashboard } from "../../packages/devstack/src/dashboard.ts";
import { resolveDatabaseUrl, testDatabaseName, withDatabase } from "../../packages/devstack/src/db.ts";
import { startStack, type StackStatus } from "../../packages/devstack/src/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The dashboard suite's stack, with DASHBOARD_URL. */
    dashboardStack: StackStatus;
  }
}

const DATABASE = process.env.SWITCHBOARD_E2E_DATABASE || `${testDatabaseName("e2e")}_dashboard`;

export default async function setup(project: TestProject) {
  const databaseUrl = process.env.DATABASE_URL ? withDatabase(process.env.DATABASE_URL, DATABASE) : await resolveDatabaseUrl(DATABASE);
  const stateDir = join(REPO_ROOT, ".devstack", DATABASE);
  const log = (line: string) => console.error(`[devstack] ${line}`);
  const stack = await startStack({
    databaseUrl,
    reset: process.env.SWITCHBOARD_E2E_RESET !== "0",
    config: { ephemeralPorts: true, stateDir, functionsDirs: [join(REPO_ROOT, "supabase/functions")] },
    functionsLog: join(stateDir, "functions.log"),
    writeState: false,
    log,
  });
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard({ apiUrl: stack.status.API_URL, publishableKey: stack.status.PUBLISHABLE_KEY, host: stack.config.host, port: 0, log });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  // DEVSTACK_STATE_DIR: its signing key, for tokens minted with createLocalUser.
  project.provide("dashboardStack", { ...stack.status, DASHBOARD_URL: dashboard.url, DEVSTACK_STATE_DIR: stateDir });
  return async () => {
    await dashboard.close();
    await stack.stop();
  };
}
