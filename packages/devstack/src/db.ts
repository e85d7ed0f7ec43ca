/**
 * Database side of the devstack: find (or start) PostgreSQL, create the project
 * database, apply the platform bootstrap, run the migrations with the real
 * Supabase CLI, then the seed.
 *
 * We do not use `supabase db reset --db-url` on a plain PostgreSQL: it drops the
 * `auth` schema. A reset here is: recreate the database,
 * bootstrap, `supabase migration up`.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import postgres from "postgres";

const execFileAsync = promisify(execFile);
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BOOTSTRAP_SQL = join(REPO_ROOT, "packages/devstack/sql/bootstrap.sql");
const SEED_SQL = join(REPO_ROOT, "supabase/seed.sql");
const LOCAL_SERVER = "postgres://postgres@127.0.0.1:5432/postgres";

/** Replaces the database name in a connection URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
}

/**
 * The database `npm test` recreates: the one DATABASE_URL names (as everywhere else), or
 * `switchboard_test` on the local server. The suites that run a stack of their own use
 * databases named after it (`testDatabaseName("e2e")` → `<name>_e2e`), so the defaults are
 * `switchboard_test`, `switchboard_e2e`, `switchboard_e2e_pooled`, … as before.
 */
export function testDatabaseName(suite?: "e2e" | "netns"): string {
  const named = process.env.DATABASE_URL ? databaseName(process.env.DATABASE_URL) : "";
  if (!suite) return named || "switchboard_test";
  return named ? `${named}_${suite}` : `switchboard_${suite}`;
}

async function canConnect(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Starts the machine's PostgreSQL cluster when it is installed but down (Debian layout). */
function startLocalCluster(): boolean {
  if (!existsSync("/etc/postgresql")) return false;
  try {
    for (const version of execFileSync("ls", ["/etc/postgresql"]).toString().trim().split(/\s+/)) {
      execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"], { stdio: "ignore" });
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The URL of the project database `name` on the server we use: `DATABASE_URL` when set
 * (its database name wins), else the local server (started if it is installed but down).
 * Creates the database when it does not exist.
 */
export async function resolveDatabaseUrl(name = "switchboard"): Promise<string> {
  const target = process.env.DATABASE_URL ?? withDatabase(LOCAL_SERVER, name);
  const maintenance = withDatabase(target, "postgres");
  if (!(await canConnect(maintenance))) {
    if (process.env.DATABASE_URL || !startLocalCluster() || !(await waitForServer(maintenance))) {
      throw new Error(
        `Cannot reach PostgreSQL at ${redact(maintenance)}. Set DATABASE_URL, or install PostgreSQL 15 (see README).`,
      );
    }
  }
  await ensureDatabase(maintenance, databaseName(target));
  return target;
}

async function waitForServer(url: string): Promise<boolean> {
  for (let i = 0; i < 30; i++) {
    if (await canConnect(url)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

async function ensureDatabase(maintenanceUrl: string, name: string): Promise<void> {
  const sql = postgres(maintenanceUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`select 1 as found from pg_database where datname = ${name}`;
    if (!row) await sql.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Hides a password in a connection URL for messages. */
export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

/** Applies the platform bootstrap (idempotent). */
export async function applyBootstrap(dbUrl: string): Promise<void> {
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(readFileSync(BOOTSTRAP_SQL, "utf8"));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Runs `supabase migration up` with the real CLI against `dbUrl`. */
export async function migrateUp(dbUrl: string): Promise<string> {
  const bin = join(REPO_ROOT, "node_modules/.bin/supabase");
  const { stdout, stderr } = await execFileAsync(
    bin,
    ["migration", "up", `--remote=${dbUrl}`, "--yes", "--workdir", REPO_ROOT],
    { cwd: REPO_ROOT, env: { ...process.env, SUPABASE_YES: "1", DO_NOT_TRACK: "1" }, maxBuffer: 16 << 20 },
  );
  return `${stdout}${stderr}`;
}

/** Loads supabase/seed.sql (demo reference data for local development only). */
export async function applySeed(dbUrl: string): Promise<void> {
  if (!existsSync(SEED_SQL)) return;
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(readFileSync(SEED_SQL, "utf8"));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Drops and recreates the database, then bootstrap, migrations and seed. */
export async function resetDatabase(dbUrl: string, opts: { seed?: boolean } = {}): Promise<void> {
  const name = databaseName(dbUrl);
  const admin = postgres(withDatabase(dbUrl, "postgres"), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${quoteIdent(name)} with (force)`);
    await admin.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  await applyBootstrap(dbUrl);
  await migrateUp(dbUrl);
  if (opts.seed !== false) await applySeed(dbUrl);
}

/**
 * The same database as the functions' own login role, switchboard_functions (created by
 * the bootstrap: it starts as service_role and owns nothing).
 */
export function functionsLoginUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.username = "switchboard_functions";
  url.password = "";
  return url.toString();
}
