/**
 * vitest globalSetup for the netns project: a devstack whose functions run with
 * private networks DISALLOWED (SWITCHBOARD_ALLOW_PRIVATE_NETWORKS=false), as on a hosted
 * project, but custom provider hosts allowed, so hostile base URLs reach the guard.
 *
 * It only runs inside the namespace tests/netns/run.sh builds (`unshare --net --mount`:
 * loopback only, plus PUBLIC_ADDRESS on lo, and its own /etc/hosts and /etc/resolv.conf),
 * so a guard bypass can never send anything off the machine. Anywhere else the suite is
 * skipped (a plain `npx vitest run` lists it as skipped); if run.sh says it is isolated but
 * the machine disagrees, setup fails instead of running.
 *
 * PostgreSQL listens on 127.0.0.1 of the host's namespace, which this one cannot reach:
 * the database is reached through its Unix socket, relayed onto a loopback port here, so
 * postgres.js, the Supabase CLI (migrations) and the Deno functions use it unchanged.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { testDatabaseName } from "../../packages/devstack/src/db.ts";
import { startStack, type StackStatus } from "../../packages/devstack/src/stack.ts";
import { startDnsServer } from "./dns.ts";

/** A public address that exists only on this namespace's loopback interface (run.sh adds it). */
export const PUBLIC_ADDRESS = "93.184.216.34";

export interface NetnsContext {
  /** PEM of the CA that signed `cert` (trusted by the functions through DENO_CERT). */
  caPem: string;
  /** Certificate and key for PUBLIC_ADDRESS and public.switchboard.test. */
  cert: string;
  key: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    devstack: StackStatus;
    devstackStateDir: string;
    /** null outside the namespace: the suite is skipped. */
    netns: NetnsContext | null;
  }
}

const DATABASE = process.env.SWITCHBOARD_NETNS_DATABASE || testDatabaseName("netns");
const PG_SOCKET = process.env.SWITCHBOARD_NETNS_PG_SOCKET || "/var/run/postgresql/.s.PGSQL.5432";

/** The names the suite's DNS server answers (the hosts file has the static ones). */
const ZONE = {
  "loopback.dns.switchboard.test": { A: [["127.0.0.1"]] },
  "loopback6.dns.switchboard.test": { AAAA: [["::1"]] },
  "metadata.dns.switchboard.test": { A: [["169.254.169.254"]] },
  // A public A answer next to a loopback AAAA: the guard must judge every address.
  "mixed.dns.switchboard.test": { A: [[PUBLIC_ADDRESS]], AAAA: [["::1"]] },
  // DNS rebinding: public on the first query, loopback on every later one.
  "rebind-http.switchboard.test": { A: [[PUBLIC_ADDRESS], ["127.0.0.1"]] },
  "rebind-smtp.switchboard.test": { A: [[PUBLIC_ADDRESS], ["127.0.0.1"]] },
};

function assertIsolated(): void {
  const interfaces = networkInterfaces();
  const names = Object.keys(interfaces);
  const addresses = (interfaces.lo ?? []).map((i) => i.address);
  if (names.length !== 1 || names[0] !== "lo" || !addresses.includes(PUBLIC_ADDRESS)) {
    throw new Error(
      `netns suite: refusing to run outside its network namespace (interfaces: ${names.join(", ")}; ` +
        `lo: ${addresses.join(", ")}). Run it with tests/netns/run.sh.`,
    );
  }
}

/** A loopback TCP port that forwards to PostgreSQL's Unix socket. */
async function startSocketRelay(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(PG_SOCKET);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (s === client ? upstream : client).destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A throwaway CA and a server certificate for PUBLIC_ADDRESS, via the openssl CLI. */
async function certificates(): Promise<NetnsContext> {
  const run = promisify(execFile);
  const dir = await mkdtemp(join(tmpdir(), "switchboard-netns-"));
  const p = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    await run("openssl", ["req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
      "-subj", "/CN=Switchboard netns CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    await run("openssl", ["req", ...ec, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=public.switchboard.test"]);
    await writeFile(p("leaf.ext"), `subjectAltName=DNS:public.switchboard.test,IP:${PUBLIC_ADDRESS}\nextendedKeyUsage=serverAuth\n`);
    await run("openssl", ["x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
      "-out", p("leaf.pem"), "-days", "2", "-extfile", p("leaf.ext")]);
    const [caPem, key, cert] = await Promise.all(["ca.pem", "leaf.key", "leaf.pem"].map((f) => readFile(p(f), "utf8")));
    return { caPem, key, cert };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export default async function setup(project: TestProject) {
  if (process.env.SWITCHBOARD_NETNS_ISOLATED !== "1") {
    project.provide("netns", null);
    return;
  }
  assertIsolated();
  const stateDir = join(REPO_ROOT, ".devstack", "netns");
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const relay = await startSocketRelay();
    cleanups.push(() => relay.close());
    const dns = await startDnsServer(ZONE);
    cleanups.push(() => dns.close());
    const tls = await certificates();
    const caPath = join(tmpdir(), `switchboard-netns-ca-${process.pid}.pem`);
    await writeFile(caPath, tls.caPem);
    cleanups.push(() => rm(caPath, { force: true }));

    const stack = await startStack({
      databaseUrl: `postgres://postgres@127.0.0.1:${relay.port}/${DATABASE}`,
      reset: true,
      config: { ephemeralPorts: true, stateDir },
      functionsEnv: {
        SWITCHBOARD_ALLOW_PRIVATE_NETWORKS: "false",
        SWITCHBOARD_ALLOW_CUSTOM_PROVIDER_HOSTS: "true",
        // The functions trust this suite's CA, as hosted ones trust the public CAs.
        DENO_CERT: caPath,
      },
      functionsLog: join(stateDir, "functions.log"),
      writeState: false,
      log: (line) => console.error(`[netns devstack] ${line}`),
    });
    cleanups.push(() => stack.stop());

    project.provide("devstack", stack.status);
    project.provide("devstackStateDir", stateDir);
    project.provide("netns", tls);
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    throw error;
  }
  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
}
