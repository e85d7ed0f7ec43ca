/**
 * The mcp function on MCP revision 2026-07-28 (stateless: no initialize, every request
 * carries its protocol version and client capabilities in `params._meta`), next to the
 * 2025 lane that tests/e2e/mcp.test.ts drives with a 2025-era client. A 2026 client (the
 * SDK's v2 client, pinned and in 'auto' negotiation) lists the tools and sends an SMS;
 * raw requests check the wire: server/discover, resultType, cache hints, the required
 * headers, and the errors a modern server answers with.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, connectedUser, type Connected } from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

const MODERN = "2026-07-28";
const mcpUrl = () => `${status().FUNCTIONS_URL}/mcp`;
const clients: Client[] = [];

async function connect(key: string, versionNegotiation: "auto" | { pin: string }): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl()), { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  const client = new Client({ name: "switchboard-e2e-2026", version: "1.0.0" }, { versionNegotiation: { mode: versionNegotiation } });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const meta = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "raw-e2e", version: "1" },
};

/** One raw 2026-07-28 request: the `_meta` envelope and the headers the transport requires. */
async function modern(key: string, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const name: Record<string, string> = typeof params.name === "string" ? { "Mcp-Name": params.name } : {};
  const res = await fetch(mcpUrl(), {
    method: "POST",
    headers: {
      Authorization: `Bearer ${key}`,
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": MODERN,
      "Mcp-Method": method,
      ...name,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method, params: { ...params, _meta: meta } }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(closeAdminSql);

describe("MCP 2026-07-28 (stateless) on the same endpoint", () => {
  let c: Connected;
  let key: string;
  let agentId: string;

  beforeAll(async () => {
    c = await connectedUser();
    const made = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "balance"], dailySendLimit: 10 },
    ], "mcp 2026 agent");
    key = made.key;
    agentId = made.agent.id;
  });

  it("a client pinned to 2026-07-28 connects without initialize, lists the tools and sends an SMS", async () => {
    const client = await connect(key, { pin: MODERN });
    expect(client.getProtocolEra()).toBe("modern");
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["sms_send", "clicksend_get_balance", "message_status"]);
    const result: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000201"], body: "from a 2026 client" } });
    expect(result.isError ?? false).toBe(false);
    expect(result.structuredContent).toMatchObject({ status: "succeeded", sent: 1, provider: "clicksend_sms" });
    const [row] = await adminSql()`select status, agent_id from public.operations where id = ${result.structuredContent.operation_id}`;
    expect(row).toMatchObject({ status: "succeeded", agent_id: agentId });
  });

  it("a client in 'auto' negotiation finds the modern revision through server/discover", async () => {
    const client = await connect(key, "auto");
    expect(client.getProtocolEra()).toBe("modern");
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(client.getServerVersion()).toMatchObject({ name: "switchboard" });
  });

  it("server/discover names the supported revisions, the tools capability and the server", async () => {
    const { status: code, body } = await modern(key, "server/discover");
    expect(code).toBe(200);
    expect(body.result).toMatchObject({
      resultType: "complete",
      supportedVersions: expect.arrayContaining([MODERN]),
      capabilities: { tools: {} },
      cacheScope: "private",
      _meta: { "io.modelcontextprotocol/serverInfo": { name: "switchboard" } },
    });
  });

  it("tools/list is complete, private to the caller and never cached stale (ttlMs 0), in a deterministic order", async () => {
    const first = await modern(key, "tools/list");
    const second = await modern(key, "tools/list");
    expect(first.status).toBe(200);
    expect(first.body.result).toMatchObject({ resultType: "complete", ttlMs: 0, cacheScope: "private" });
    expect(first.body.result.tools.map((t: any) => t.name)).toEqual(second.body.result.tools.map((t: any) => t.name));
    for (const tool of first.body.result.tools) expect(tool.name).toMatch(/^[A-Za-z0-9_./-]{1,64}$/);
  });

  it("an unknown tool is -32602; a refusal is a tool error with our code", async () => {
    const unknown = await modern(key, "tools/call", { name: "no_such_tool", arguments: {} });
    expect(unknown.body.error).toMatchObject({ code: -32602, message: expect.stringContaining("no_such_tool") });
    const refused = await modern(key, "tools/call", { name: "sms_send", arguments: { to: [], body: "" } });
    expect(refused.status).toBe(200);
    expect(refused.body.result).toMatchObject({ isError: true, resultType: "complete", structuredContent: { error: { code: "invalid_request" } } });
  });

  it("answers what a modern server must: 404/-32601 for removed methods, 400/-32020 for a header that disagrees, 400/-32022 for an unknown revision", async () => {
    const ping = await modern(key, "ping");
    expect(ping.status).toBe(404);
    expect(ping.body.error.code).toBe(-32601);

    const mismatch = await modern(key, "tools/list", {}, { "Mcp-Method": "tools/call" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe(-32020);

    const future = await modern(key, "tools/list", {}, { "MCP-Protocol-Version": "2099-01-01" });
    expect(future.status).toBe(400);
    expect(future.body.error.code).toBe(-32020); // the header no longer matches the envelope
    const res = await fetch(mcpUrl(), {
      method: "POST",
      headers: {
        Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream",
        "MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/list", params: { _meta: { ...meta, "io.modelcontextprotocol/protocolVersion": "2099-01-01" } } }),
    });
    expect(res.status).toBe(400);
    const unsupported = await res.json() as any;
    expect(unsupported.error).toMatchObject({ code: -32022, data: { supported: expect.arrayContaining([MODERN]), requested: "2099-01-01" } });
  });

  it("authentication and scope refusals come before the protocol, as on the 2025 lane", async () => {
    const anonymous = await fetch(mcpUrl(), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: meta } }),
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain("resource_metadata=");
    const email = await modern(key, "tools/call", { name: "email_send", arguments: { to: ["a@example.com"], subject: "s", text: "t" } });
    expect(email.status).toBe(403);
    expect(email.headers.get("www-authenticate")).toContain('error="insufficient_scope", scope="email"');
  });
});
