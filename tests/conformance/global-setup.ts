/**
 * vitest globalSetup for the MCP conformance lane: a devstack of its own (database
 * `<e2e database>_conformance`) with an agent that holds an SMS grant and a key, and a
 * loopback proxy in front of it that adds that key as `Authorization: Bearer …`.
 *
 * Why a proxy: the official conformance suite cannot send an Authorization header, and
 * an MCP endpoint without a key answers 401 to everything. The proxy forwards every
 * request unchanged otherwise (method, path, body, and the Host and Origin headers the
 * suite's DNS-rebinding scenario forges), so the suite talks to the real, deployed mcp
 * function: the same guards, the same authentication, the same tools. It only ever
 * listens on 127.0.0.1. The stack is told that the proxy's own origin is an allowed
 * Origin (SWITCHBOARD_MCP_ALLOWED_ORIGINS, the deployment setting for browser clients),
 * as the suite sends its URL's origin with the requests it expects to succeed.
 */
import { request as httpRequest, createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createClient } from "@supabase/supabase-js";
import postgres from "postgres";
import WebSocket from "ws";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { resolveDatabaseUrl, testDatabaseName, withDatabase } from "../../packages/devstack/src/db.ts";
import { createLocalUser } from "../../packages/devstack/src/jwt.ts";
import { startStack } from "../../packages/devstack/src/stack.ts";

export interface ConformanceContext {
  /** The MCP endpoint as the suite sees it: through the key-adding proxy. */
  mcpUrl: string;
  /** The agent's id (the tools it lists: sms_send, clicksend_get_balance, message_status). */
  agentId: string;
  dbUrl: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    conformance: ConformanceContext;
  }
}

const DATABASE = `${process.env.SWITCHBOARD_E2E_DATABASE || testDatabaseName("e2e")}_conformance`;
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"]);

/** A loopback HTTP proxy to `upstream` that adds `Authorization: Bearer <key>` when a request has none. */
async function startKeyProxy(): Promise<{ port: number; configure(upstream: URL, key: string): void; close(): Promise<void> }> {
  let target: { upstream: URL; key: string } | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!target) {
      res.writeHead(503).end();
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    headers.authorization ??= `Bearer ${target.key}`;
    // Host travels as sent (a forged one must reach the function's own check).
    const upstream = httpRequest({
      host: target.upstream.hostname,
      port: target.upstream.port,
      method: req.method,
      path: req.url,
      headers,
      setHost: false,
    }, (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    upstream.setTimeout(30_000, () => upstream.destroy(new Error("upstream timeout")));
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    configure(upstream, key) {
      target = { upstream, key };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export default async function setup(project: TestProject) {
  const databaseUrl = process.env.DATABASE_URL
    ? withDatabase(process.env.DATABASE_URL, DATABASE)
    : await resolveDatabaseUrl(DATABASE);
  const stateDir = join(REPO_ROOT, ".devstack", DATABASE);
  const proxy = await startKeyProxy();
  let stack;
  try {
    stack = await startStack({
      databaseUrl,
      reset: true,
      config: { ephemeralPorts: true, stateDir },
      functionsEnv: { SWITCHBOARD_MCP_ALLOWED_ORIGINS: `http://127.0.0.1:${proxy.port}` },
      functionsLog: join(stateDir, "functions.log"),
      log: (line) => console.error(`[devstack] ${line}`),
    });
  } catch (error) {
    await proxy.close();
    throw error;
  }
  const s = stack.status;

  // The agent the suite acts as: a user, a ClickSend account (the fake), an SMS grant, a key.
  const sql = postgres(s.DB_URL, { max: 1, onnotice: () => {} });
  let key: string;
  let agentId: string;
  try {
    const user = await createLocalUser(sql, `conformance-${Date.now()}@example.test`);
    const client = createClient(s.API_URL, s.ANON_KEY, {
      global: { headers: { Authorization: `Bearer ${user.token}` } },
      auth: { persistSession: false, autoRefreshToken: false },
      // supabase-js on Node 20 needs a WebSocket implementation for realtime.
      realtime: { transport: WebSocket as never },
    });
    const rpc = async (fn: string, args: Record<string, unknown>) => {
      const { data, error } = await client.rpc(fn, args);
      if (error) throw new Error(`${fn}: ${error.message}`);
      return data;
    };
    const connection = await rpc("create_connection", {
      p_provider: "clicksend_sms", p_name: "ClickSend",
      p_credentials: { username: "demo", api_key: "demo-key" }, p_config: { base_url: s.CLICKSEND_FAKE_URL },
    });
    const agent = await rpc("create_agent", { p_name: "conformance agent" });
    await rpc("grant_agent_permission", {
      p_agent_id: agent.id, p_connection_id: connection.id, p_scopes: ["sms", "balance"], p_daily_send_limit: 10,
    });
    key = (await rpc("issue_agent_key", { p_agent_id: agent.id, p_name: "conformance" })).key;
    agentId = agent.id;
  } catch (error) {
    await Promise.allSettled([sql.end(), stack.stop(), proxy.close()]);
    throw error;
  }
  await sql.end();
  proxy.configure(new URL(s.API_URL), key);

  project.provide("conformance", { mcpUrl: `http://127.0.0.1:${proxy.port}/functions/v1/mcp`, agentId, dbUrl: s.DB_URL });
  return async () => {
    await proxy.close();
    await stack.stop();
  };
}
