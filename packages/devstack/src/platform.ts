/**
 * The Node side of the local platform: everything on the API port that is not an
 * edge function (the Deno functions host proxies it here).
 *
 *   /auth/v1/…                             the Auth stand-in (auth-standin.ts): the JWKS,
 *                                          email + password sign-up, sign-in, sessions
 *   /rest/v1/…                             the PostgREST stand-in (rest-standin.ts): RPCs,
 *                                          table reads, inserts, updates and deletes
 *
 * The PostgREST stand-in is a labelled LOCAL STAND-IN: its banner in rest-standin.ts
 * lists what it covers and what it deliberately answers with 501. Every response it
 * sends carries `x-switchboard-standin: postgrest`.
 */
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Sql } from "postgres";
import { createAuthStandin, isAuthPath } from "./auth-standin.ts";
import type { JwtIssuer } from "./jwt.ts";
import { startRestStandin } from "./rest-standin.ts";

export interface PlatformOptions {
  sql: Sql;
  issuer: JwtIssuer;
  host: string;
  port: number;
  /** Supabase's `[api] max_rows` (PostgREST db-max-rows) for table reads. Default 1000. */
  maxRows?: number;
  /** Where 5xx details go (they never go to the client). Default: stderr. */
  log?: (line: string) => void;
  /** The project's new-format API keys, which the Auth stand-in accepts as `apikey`. */
  apiKeys?: { publishable: string[]; secret: string[] };
}

export interface PlatformServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const STANDIN_HEADERS = {
  "x-switchboard-standin": "postgrest",
  "access-control-allow-origin": "*",
};
const CORS_PREFLIGHT = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, HEAD, POST, PATCH, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type, accept, accept-profile, content-profile, prefer, range",
  "access-control-max-age": "86400",
};

function send(res: ServerResponse, status: number, body: string | undefined, headers: OutgoingHttpHeaders = {}, head = false): void {
  const all: OutgoingHttpHeaders = { ...STANDIN_HEADERS, ...headers };
  if (body !== undefined) all["content-type"] ??= "application/json; charset=utf-8";
  res.writeHead(status, all);
  res.end(head ? undefined : body);
}

/** Starts the platform server; resolves once it listens. */
export async function startPlatform(opts: PlatformOptions): Promise<PlatformServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const auth = createAuthStandin({ sql: opts.sql, issuer: opts.issuer, apiKeys: opts.apiKeys, log });
  const rest = await startRestStandin({ sql: opts.sql, issuer: opts.issuer, maxRows: opts.maxRows, log });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://platform.local");
    try {
      // The Auth stand-in answers all of /auth/v1 itself, CORS preflights included.
      if (isAuthPath(url.pathname)) return await auth(req, res, url);
      if (req.method === "OPTIONS") return send(res, 204, undefined, CORS_PREFLIGHT);
      if (url.pathname === "/_devstack/platform/health") return send(res, 200, '{"status":"ok"}');
      if (url.pathname === "/rest/v1" || url.pathname.startsWith("/rest/v1/")) return await rest.serve(req, res, url);
      return send(res, 404, JSON.stringify({ message: "no Route matched with those values" }), { "x-switchboard-standin": "gateway" });
    } catch (error) {
      log(`[platform] ${req.method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
      return send(res, 500, JSON.stringify({ code: null, message: "Internal error in the local platform server (see the devstack log)", details: null, hint: null }));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rest.close();
    },
  };
}
