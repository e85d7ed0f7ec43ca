/**
 * A throwaway PostgreSQL cluster for fault tests (Debian's postgresql-common:
 * pg_createcluster / pg_ctlcluster / pg_dropcluster). Fault tests stop and restart
 * it; the machine's shared server is never touched. Configured like a Supabase
 * database where it matters here: pg_cron preloaded, running its jobs in this
 * cluster's one database.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import postgres from "postgres";
import { freePort } from "../../packages/devstack/src/stack.ts";

export interface ThrowawayCluster {
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  stop(): void;
  /** Stops it as a crash would: immediate shutdown, no checkpoint, WAL buffers not written. */
  crash(): void;
  start(): void;
  /** The server log (Debian's pg_ctlcluster sends the server's stderr here). */
  logFile: string;
  /** Stops and deletes the cluster and its data. */
  drop(): void;
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
}

/**
 * Creates and starts a cluster with one database name in mind (pg_cron's). `settings`
 * are extra postgresql.conf lines (values as written there, e.g. `"'all'"`); `name`
 * defaults to `swb_fault_<pid>`: give each test file that runs its own cluster its own.
 */
export async function createThrowawayCluster(
  database: string,
  settings: Record<string, string> = {},
  name = `swb_fault_${process.pid}`,
): Promise<ThrowawayCluster> {
  const version = readdirSync("/etc/postgresql").sort().at(-1)!;
  const port = await freePort();
  run("pg_createcluster", [version, name, "-p", String(port), "--start-conf=manual", "--", "--auth=trust", "--no-sync"]);
  const conf = {
    listen_addresses: "'127.0.0.1'",
    max_connections: "100",
    fsync: "off",
    shared_preload_libraries: "'pg_cron'",
    "cron.database_name": `'${database}'`,
    // Jobs run in background workers: no connection back to the server needed.
    "cron.use_background_workers": "on",
    max_worker_processes: "16",
    ...settings,
  };
  writeFileSync(
    `/etc/postgresql/${version}/${name}/conf.d/switchboard-faults.conf`,
    Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
  );
  const cluster: ThrowawayCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    logFile: `/var/log/postgresql/postgresql-${version}-${name}.log`,
    stop: () => run("pg_ctlcluster", [version, name, "stop", "-m", "fast"]),
    crash: () => run("pg_ctlcluster", [version, name, "stop", "-m", "immediate"]),
    start: () => run("pg_ctlcluster", [version, name, "start"]),
    drop: () => {
      try {
        run("pg_dropcluster", ["--stop", version, name]);
      } catch { /* already gone */ }
    },
  };
  try {
    cluster.start();
    await waitUntilReady(`postgres://postgres@127.0.0.1:${port}/postgres`);
  } catch (error) {
    cluster.drop();
    throw error;
  }
  return cluster;
}

/** Polls until the server accepts connections (bounded). */
export async function waitUntilReady(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}
