/**
 * The dashboard on the local stack: a Vite build of packages/dashboard, made once and
 * again only when its sources change, served by a tiny static server on its own
 * loopback port with a runtime `config.json` that points it at the stack's API URL and
 * publishable key (the same build serves a hosted project with that project's values).
 *
 *   SWITCHBOARD_DASHBOARD_PORT   its port (default 54324; 0 = any free port, as does
 *                                SWITCHBOARD_EPHEMERAL_PORTS=1)
 *
 * ============================  LOCAL STATIC SERVER  ============================
 * Only GET/HEAD of the files in dist/, `config.json`, and index.html for any other
 * path without a file extension (client-side routes). It is the devstack's, not part
 * of a deployment: any static host serves dist/ the same way.
 * ===============================================================================
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, relative, sep } from "node:path";
import { REPO_ROOT } from "./config.ts";

export const DASHBOARD_DIR = join(REPO_ROOT, "packages/dashboard");
export const DASHBOARD_DIST = join(DASHBOARD_DIR, "dist");
export const DEFAULT_DASHBOARD_PORT = 54324;
const HASH_FILE = ".switchboard-build-hash";
/** What the build reads: a change to any of these rebuilds it. */
const SOURCES = ["src", "public", "index.html", "vite.config.ts", "package.json", "tsconfig.json"];

/** The dashboard's port: SWITCHBOARD_DASHBOARD_PORT, else 0 with ephemeral ports, else 54324. */
export function dashboardPort(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SWITCHBOARD_DASHBOARD_PORT;
  if (raw !== undefined && raw !== "") {
    const port = Number(raw);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`SWITCHBOARD_DASHBOARD_PORT must be a port number (0 = any free port), got ${JSON.stringify(raw)}`);
    }
    return port;
  }
  return ["1", "true"].includes(env.SWITCHBOARD_EPHEMERAL_PORTS ?? "") ? 0 : DEFAULT_DASHBOARD_PORT;
}

async function files(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => null);
  if (!info) return [];
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const nested = await Promise.all(
    entries.filter((e) => !(e.name === "config.json" && path.endsWith(`${sep}public`))).map((e) => files(join(path, e.name))),
  );
  return nested.flat().sort();
}

/** A hash of the dashboard's sources (and the vite version that builds them). */
export async function dashboardSourceHash(dir = DASHBOARD_DIR): Promise<string> {
  const hash = createHash("sha256");
  for (const file of (await Promise.all(SOURCES.map((s) => files(join(dir, s))))).flat()) {
    hash.update(relative(dir, file)).update("\0").update(await readFile(file)).update("\0");
  }
  const vite = await readFile(join(REPO_ROOT, "node_modules/vite/package.json"), "utf8").catch(() => "");
  hash.update(vite);
  return hash.digest("hex");
}

/**
 * Builds the dashboard into dist/ unless dist/ already holds a build of these sources.
 * The build goes to a scratch folder first and replaces dist/ whole, so a server reading
 * dist/ (another stack, the e2e suite) never sees half a build.
 */
export async function buildDashboard(opts: { log?: (line: string) => void; force?: boolean } = {}): Promise<{ dist: string; built: boolean }> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const hash = await dashboardSourceHash();
  const recorded = await readFile(join(DASHBOARD_DIST, HASH_FILE), "utf8").catch(() => "");
  if (!opts.force && recorded.trim() === hash && existsSync(join(DASHBOARD_DIST, "index.html"))) return { dist: DASHBOARD_DIST, built: false };

  const started = Date.now();
  log("Building the dashboard (vite build; cached in packages/dashboard/dist until its sources change)…");
  const scratch = join(DASHBOARD_DIR, `.build-${process.pid}-${Date.now()}`);
  const vite = join(REPO_ROOT, "node_modules/vite/bin/vite.js");
  const child = spawn(process.execPath, [vite, "build", "--outDir", scratch, "--emptyOutDir", "--logLevel", "warn"], {
    cwd: DASHBOARD_DIR,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_ENV: "production" },
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) {
    await rm(scratch, { recursive: true, force: true });
    throw new Error(`The dashboard build failed (vite build exited ${code}):\n${output.trim()}`);
  }
  await writeFile(join(scratch, HASH_FILE), `${hash}\n`);
  await rm(DASHBOARD_DIST, { recursive: true, force: true });
  await rename(scratch, DASHBOARD_DIST);
  log(`Dashboard built in ${((Date.now() - started) / 1000).toFixed(1)}s.`);
  return { dist: DASHBOARD_DIST, built: true };
}

/** What the dashboard reads at start (packages/dashboard/src/lib/config.ts). */
export interface DashboardRuntimeConfig {
  supabaseUrl: string;
  supabaseAnonKey: string;
}

export interface DashboardServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** Serves dist/ and the runtime config on host:port; a held port is named plainly. */
export async function startDashboardServer(opts: {
  host: string;
  port: number;
  dist?: string;
  config: DashboardRuntimeConfig;
}): Promise<DashboardServer> {
  const dist = opts.dist ?? DASHBOARD_DIST;
  const configBody = JSON.stringify(opts.config);
  const api = new URL(opts.config.supabaseUrl).origin;
  const headers = {
    "x-switchboard-standin": "dashboard-static",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": [
      "default-src 'self'",
      `connect-src 'self' ${api} ${api.replace(/^http/, "ws")}`,
      "img-src 'self' data:",
      "style-src 'self' 'unsafe-inline'",
      "script-src 'self'",
      "frame-ancestors 'none'",
      "base-uri 'self'",
      "form-action 'self'",
    ].join("; "),
  };

  const server: Server = createServer(async (req, res) => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.writeHead(405, { ...headers, allow: "GET, HEAD" }).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://dashboard.local");
    let pathname: string;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, headers).end();
      return;
    }
    if (pathname === "/config.json") {
      res.writeHead(200, { ...headers, "content-type": TYPES[".json"], "cache-control": "no-store" }).end(head ? undefined : configBody);
      return;
    }
    const file = normalize(join(dist, pathname));
    const inside = file === dist || file.startsWith(dist + sep);
    const info = inside ? await stat(file).catch(() => null) : null;
    let target: string | null = info?.isFile() ? file : null;
    if (!target && extname(pathname) === "") target = join(dist, "index.html");
    if (!target || !inside) {
      res.writeHead(404, { ...headers, "content-type": TYPES[".txt"] }).end(head ? undefined : "not found\n");
      return;
    }
    try {
      const body = await readFile(target);
      const immutable = target.startsWith(join(dist, "assets") + sep);
      res
        .writeHead(200, {
          ...headers,
          "content-type": TYPES[extname(target)] ?? "application/octet-stream",
          "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
        })
        .end(head ? undefined : body);
    } catch {
      res.writeHead(404, headers).end();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" || error.code === "EACCES") {
        reject(
          new Error(
            `Another process holds ${opts.host}:${opts.port}, the dashboard's port: the dashboard was not started there. ` +
              "Stop that process, or move the dashboard with SWITCHBOARD_DASHBOARD_PORT (0 = any free port).",
          ),
        );
      } else reject(error);
    });
    server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Builds (when needed) and serves the dashboard for a running stack. */
export async function startDashboard(opts: {
  apiUrl: string;
  publishableKey: string;
  host?: string;
  port?: number;
  log?: (line: string) => void;
  /** An already running or finished build (npm start builds while the stack starts). */
  build?: Promise<unknown>;
}): Promise<DashboardServer> {
  await (opts.build ?? buildDashboard({ log: opts.log }));
  await mkdir(DASHBOARD_DIST, { recursive: true });
  return startDashboardServer({
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? dashboardPort(),
    config: { supabaseUrl: opts.apiUrl, supabaseAnonKey: opts.publishableKey },
  });
}
