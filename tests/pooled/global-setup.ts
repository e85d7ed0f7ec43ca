/**
 * vitest globalSetup for the pooled lane: the e2e stack again, on a database of its own
 * (`<e2e database>_pooled`), with the edge functions behind PgBouncer in transaction mode
 * (the local stand-in for Supavisor, packages/devstack/src/pgbouncer.ts), logged in as
 * switchboard_functions. Their SUPABASE_DB_URL points at a closed port, so a statement
 * that went around SWITCHBOARD_DB_URL would fail the lane.
 *
 * Provides what the e2e helpers read (`devstack`, `devstackStateDir`) and `pooled`.
 * PgBouncer's log is kept in the state folder (.devstack/<database>/pgbouncer.log).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { resolveDatabaseUrl, testDatabaseName, withDatabase } from "../../packages/devstack/src/db.ts";
import { startPgBouncer } from "../../packages/devstack/src/pgbouncer.ts";
import { startStack } from "../../packages/devstack/src/stack.ts";

export interface PooledContext {
  /** The lane's database (and PgBouncer's name for it). */
  database: string;
  /** PgBouncer's name for the same database with a single server connection. */
  singleServerDatabase: string;
  /** What the functions' SWITCHBOARD_DB_URL is. */
  functionsDbUrl: string;
  /** The same database with one server connection, as switchboard_functions. */
  singleServerUrl: string;
  /** PgBouncer's admin console, as postgres. */
  adminConsoleUrl: string;
  pgbouncerPid: number;
  pgbouncerLog: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    pooled: PooledContext;
  }
}

export const FUNCTIONS_ROLE = "switchboard_functions";
const DATABASE = `${process.env.SWITCHBOARD_E2E_DATABASE || testDatabaseName("e2e")}_pooled`;

export default async function setup(project: TestProject) {
  const databaseUrl = process.env.DATABASE_URL
    ? withDatabase(process.env.DATABASE_URL, DATABASE)
    : await resolveDatabaseUrl(DATABASE);
  const stateDir = join(REPO_ROOT, ".devstack", DATABASE);
  const single = `${DATABASE}_single`;

  await mkdir(stateDir, { recursive: true });
  const pgbouncer = await startPgBouncer({
    serverUrl: databaseUrl,
    databases: { [DATABASE]: { dbname: DATABASE }, [single]: { dbname: DATABASE, poolSize: 1 } },
    users: [FUNCTIONS_ROLE],
    // Fewer server connections than the functions' pool has clients: they take turns.
    defaultPoolSize: 3,
    keepLogAt: join(stateDir, "pgbouncer.log"),
  });
  const functionsDbUrl = pgbouncer.url(FUNCTIONS_ROLE, DATABASE);
  let stack;
  try {
    stack = await startStack({
      databaseUrl,
      reset: process.env.SWITCHBOARD_E2E_RESET !== "0",
      config: {
        ephemeralPorts: true,
        stateDir,
        functionsDirs: [join(REPO_ROOT, "supabase/functions"), join(REPO_ROOT, "tests/e2e/fixtures/functions")],
      },
      // No prepared statements behind a transaction pooler (the stack's direct default prepares).
      functionsEnv: { SWITCHBOARD_DB_URL: functionsDbUrl, SWITCHBOARD_DB_PREPARE: "false", SUPABASE_DB_URL: "postgres://nobody@127.0.0.1:1/unreachable" },
      functionsLog: join(stateDir, "functions.log"),
      log: (line) => console.error(`[devstack pooled] ${line}`),
    });
  } catch (error) {
    await pgbouncer.stop();
    throw error;
  }

  project.provide("devstack", stack.status);
  project.provide("devstackStateDir", stateDir);
  project.provide("pooled", {
    database: DATABASE,
    singleServerDatabase: single,
    functionsDbUrl,
    singleServerUrl: pgbouncer.url(FUNCTIONS_ROLE, single),
    adminConsoleUrl: pgbouncer.url("postgres", "pgbouncer"),
    pgbouncerPid: pgbouncer.pid,
    pgbouncerLog: pgbouncer.logFile,
  });
  return async () => {
    await stack.stop();
    await pgbouncer.stop();
  };
}
