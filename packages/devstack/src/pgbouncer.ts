/**
 * PgBouncer in transaction mode in front of the local PostgreSQL: the local stand-in for
 * Supabase's transaction pooler (Supavisor, port 6543), set up like it where it matters:
 * a server connection per transaction, no prepared statements kept across transactions,
 * and the startup parameters it cannot carry over (role, options, statement_timeout…)
 * dropped. The pooled test lane runs the edge functions through it.
 *
 * The binary is SWITCHBOARD_PGBOUNCER_BIN (default: pgbouncerBin()); it needs PgBouncer
 * 1.21 or later (max_prepared_statements) and libevent. PgBouncer refuses to run as root:
 * as root it runs as `postgres`, from a temporary folder that user owns.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { REPO_ROOT } from "./config.ts";
import { freePort } from "./stack.ts";

export interface PgBouncerOptions {
  /** The PostgreSQL server to pool (host and port of this URL). */
  serverUrl: string;
  /** Databases clients may name: alias → the server's database and, optionally, its own pool size. */
  databases: Record<string, { dbname: string; poolSize?: number }>;
  /** Users that may log in (trust, as the local server does). */
  users: string[];
  /** Server connections per database and user (default 4). */
  defaultPoolSize?: number;
  /** Where the log is copied when PgBouncer stops. */
  keepLogAt?: string;
}

export interface PgBouncerHandle {
  port: number;
  /** Process id of PgBouncer itself (from its pid file). */
  pid: number;
  logFile: string;
  /** A client URL for `user` and the database alias `database`. */
  url(user: string, database: string): string;
  /** Stops this PgBouncer (by its pid) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * The PgBouncer binary: SWITCHBOARD_PGBOUNCER_BIN, else `shared/tools/pgbouncer/pgbouncer`
 * beside the checkout or beside one of its parent folders (a CI clone may sit deeper).
 */
export function pgbouncerBin(): string {
  if (process.env.SWITCHBOARD_PGBOUNCER_BIN) return process.env.SWITCHBOARD_PGBOUNCER_BIN;
  const relative = join("shared", "tools", "pgbouncer", "pgbouncer");
  for (let dir = resolve(REPO_ROOT, ".."), depth = 0; depth < 6; dir = dirname(dir), depth++) {
    if (existsSync(join(dir, relative))) return join(dir, relative);
    if (dirname(dir) === dir) break;
  }
  return resolve(REPO_ROOT, "..", relative);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`PgBouncer: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncerHandle> {
  const bin = pgbouncerBin();
  if (!existsSync(bin)) throw new Error(`PgBouncer not found at ${bin}: set SWITCHBOARD_PGBOUNCER_BIN`);
  const server = new URL(opts.serverUrl);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "switchboard-pgbouncer-"));
  // A copy the `postgres` user can run whatever the permissions of the folders above the original.
  const exe = join(dir, "pgbouncer");
  copyFileSync(bin, exe);
  const port = await freePort();
  const file = (name: string) => join(dir, name);
  const ini = [
    "[databases]",
    ...Object.entries(opts.databases).map(([alias, db]) =>
      `${alias} = host=${server.hostname || "127.0.0.1"} port=${server.port || 5432} dbname=${db.dbname}` +
      (db.poolSize ? ` pool_size=${db.poolSize}` : "")),
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    `unix_socket_dir = ${dir}`,
    "auth_type = trust",
    `auth_file = ${file("userlist.txt")}`,
    "admin_users = postgres",
    // As Supavisor's transaction mode: a server connection per transaction, no prepared
    // statements across transactions, startup parameters it cannot carry over dropped.
    "pool_mode = transaction",
    "max_prepared_statements = 0",
    "ignore_startup_parameters = role,extra_float_digits,options,statement_timeout",
    `default_pool_size = ${opts.defaultPoolSize ?? 4}`,
    "max_client_conn = 200",
    `logfile = ${file("pgbouncer.log")}`,
    `pidfile = ${file("pgbouncer.pid")}`,
    "",
  ].join("\n");
  writeFileSync(file("pgbouncer.ini"), ini);
  writeFileSync(file("userlist.txt"), [...new Set(["postgres", ...opts.users])].map((u) => `"${u}" ""`).join("\n") + "\n");
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    for (const path of [dir, exe, file("pgbouncer.ini"), file("userlist.txt")]) chownSync(path, uid, gid);
  }

  const child = asRoot
    ? spawn("runuser", ["-u", "postgres", "--", exe, file("pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(exe, [file("pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit");
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  let pid = 0;
  try {
    await until(() => {
      if (child.exitCode !== null) {
        const log = existsSync(file("pgbouncer.log")) ? readFileSync(file("pgbouncer.log"), "utf8") : "";
        throw new Error(`PgBouncer exited at startup: ${stderr}${log}`.trim());
      }
      return existsSync(file("pgbouncer.pid")) && accepts(port);
    }, 10_000, "it to listen");
    pid = Number(readFileSync(file("pgbouncer.pid"), "utf8").trim());
  } catch (error) {
    if (child.exitCode === null) child.kill("SIGKILL");
    cleanup();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    pid,
    logFile: file("pgbouncer.log"),
    url: (user, database) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: () => (stopping ??= (async () => {
      // SIGINT: PgBouncer's safe shutdown (waits for server connections in use); then SIGKILL.
      if (alive(pid)) process.kill(pid, "SIGINT");
      await until(() => !alive(pid), 5_000, "it to stop").catch(() => alive(pid) && process.kill(pid, "SIGKILL"));
      if (child.exitCode === null && child.signalCode === null) await exited;
      if (opts.keepLogAt && existsSync(file("pgbouncer.log"))) copyFileSync(file("pgbouncer.log"), opts.keepLogAt);
      cleanup();
    })()),
  };
}
