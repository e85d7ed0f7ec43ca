/**
 * The mcp function with the MCP SDK's own client (Streamable HTTP): initialize,
 * tools/list from live grants (one tool per capability: sms_send, not the provider's
 * send tool), tools/call sending a real SMS through the fake, and
 * refusals as MCP tool errors carrying our error envelope. Revoked keys must be
 * refused at the HTTP layer (401), like every other function.
 */
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, connectedUser, type Connected } from "./fixtures.ts";
import { adminSql, closeAdminSql, status, type TestUser } from "./helpers.ts";

const clients: Client[] = [];

/** Connects the SDK client with a bearer token (agent key, or user JWT with ?agent_id=), and any extra headers. */
async function connect(token: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Client> {
  const url = new URL(`${status().FUNCTIONS_URL}/mcp`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}`, ...headers } } });
  const client = new Client({ name: "switchboard-e2e", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function rpc<T = any>(user: TestUser, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await user.client.rpc(fn, args);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

const fakeMessages = async () => {
  const res = await fetch(`${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/messages`);
  return ((await res.json()) as { messages: any[] }).messages;
};

/** How a request ended, compactly: "accepted" or the HTTP status the SDK's transport reported. */
async function outcome(promise: Promise<unknown>): Promise<"accepted" | { code: unknown; message?: string }> {
  try {
    await promise;
    return "accepted";
  } catch (error) {
    return { code: (error as { code?: unknown }).code };
  }
}

const mcpUrl = () => `${status().FUNCTIONS_URL}/mcp`;
const text = (result: any) => (result.content as { type: string; text: string }[]).find((c) => c.type === "text")!.text;

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(closeAdminSql);

describe("MCP over Streamable HTTP", () => {
  let c: Connected;
  let key: string;
  let keyId: string;
  let agentId: string;
  let grants: any[];

  beforeAll(async () => {
    c = await connectedUser();
    const made = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "balance"], maxRecipientsPerMessage: 3, dailySendLimit: 4, blockedRecipients: ["+6149"] },
      { connectionId: c.sendgrid.id, scopes: ["email"] },
    ], "mcp agent");
    ({ key, keyId } = made);
    agentId = made.agent.id;
    grants = made.permissions;
  });

  it("initializes: server info and the tools capability", async () => {
    const client = await connect(key);
    expect(client.getServerVersion()).toMatchObject({ name: "switchboard", version: expect.any(String) });
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    await expect(client.ping()).resolves.toBeDefined();
  });

  it("tools/list matches the agent's grants, in MCP's shape", async () => {
    const client = await connect(key);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
    // message_status last; read-only, and without an account argument (the database answers it alone).
    expect(tools.at(-1)!.name).toBe("message_status");
    const statusTool = tools.find((t) => t.name === "message_status")!;
    expect(statusTool).toMatchObject({
      title: "Message status",
      description: expect.any(String),
      inputSchema: { type: "object" },
      annotations: { readOnlyHint: true, destructiveHint: false },
    });
    expect(Object.keys(statusTool.inputSchema.properties ?? {}).sort()).toEqual(["limit", "operation_ids"]);
    expect((statusTool.inputSchema as { required?: string[] }).required ?? []).toEqual([]);
    for (const tool of tools.filter((t) => t !== statusTool)) {
      expect(tool).toMatchObject({
        title: expect.any(String),
        description: expect.any(String),
        inputSchema: { type: "object", properties: { account: { type: "string", format: "uuid" } } },
        annotations: { readOnlyHint: tool.name === "clicksend_get_balance", destructiveHint: false },
      });
      expect((tool.inputSchema as { required?: string[] }).required ?? [], tool.name).not.toContain("account");
    }
    expect(tools.find((t) => t.name === "sms_send")!.description).toContain("Max 3 recipients per message.");
    expect(tools.find((t) => t.name === "sms_send")!.description).not.toContain("Accounts");

    // The same list the HTTP discovery gives.
    const res = await fetch(`${status().FUNCTIONS_URL}/agent-tools?format=mcp`, { headers: { Authorization: `Bearer ${key}` } });
    const http = (await res.json()) as { tools: any[] };
    expect(tools.map((t) => t.name)).toEqual(http.tools.map((t) => t.name));
  });

  it("works with the user's JWT and ?agent_id= too", async () => {
    const client = await connect(c.user.token, { agent_id: agentId });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
  });

  it("tools/call sends an SMS: the fake received it and the operation row records it", async () => {
    const client = await connect(key);
    const body = `MCP hello ${randomUUID().slice(0, 8)}`;
    const result: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000100"], body } });
    expect(result.isError ?? false).toBe(false);
    expect(result.structuredContent).toMatchObject({ status: "succeeded", sent: 1, provider: "clicksend_sms" });
    expect(JSON.parse(text(result))).toEqual(result.structuredContent);
    const operationId = result.structuredContent.operation_id as string;

    const received = (await fakeMessages()).find((m) => m.custom_string === operationId);
    expect(received).toMatchObject({ to: "+61412000100", body, username: "demo" });
    const [row] = await adminSql()`select * from public.operations where id = ${operationId}`;
    expect(row).toMatchObject({
      status: "succeeded", auth_mode: "agent_key", agent_id: agentId, connection_id: c.clicksend.id,
      capability_key: "sms_send", recipients: ["+61412000100"],
    });
    expect(row.provider_message_ids).toEqual([received.message_id]);
  });

  it("tools/call takes the account argument: the agent's account, or a refusal for one it may not use", async () => {
    const client = await connect(key);
    const named: any = await client.callTool({
      name: "sms_send", arguments: { to: ["+61412000106"], body: `MCP named ${randomUUID().slice(0, 8)}`, account: c.clicksend.id },
    });
    expect(named.isError ?? false, text(named)).toBe(false);
    expect(named.structuredContent).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
    const [row] = await adminSql()`select connection_id from public.operations where id = ${named.structuredContent.operation_id}`;
    expect(row.connection_id).toBe(c.clicksend.id);

    const foreign: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000107"], body: "no", account: randomUUID() } });
    expect(foreign.isError).toBe(true);
    expect(foreign.structuredContent.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account" } });
    const malformed: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000107"], body: "no", account: "nope" } });
    expect(malformed.isError).toBe(true);
    expect(malformed.structuredContent.error).toMatchObject({ code: "invalid_request", details: { field: "account" } });
  });

  it("a read-only tool answers with structured content", async () => {
    const client = await connect(key);
    const result: any = await client.callTool({ name: "clicksend_get_balance", arguments: {} });
    expect(result.isError ?? false).toBe(false);
    expect(result.structuredContent).toMatchObject({ status: "succeeded" });
  });

  it("a tools/call after a send checks scopes on the kept listing; tools/list then counts the send", async () => {
    const { agent, key: own } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms", "balance"], dailySendLimit: 10 }], "mcp scope agent");
    const client = await connect(own);
    const smsDescription = async () => (await client.listTools()).tools.find((t) => t.name === "sms_send")!.description;
    /** When the agent's MCP listing (no limits objects) was last built. */
    const builtAt = async () => (await adminSql()`
      select built_at from private.tool_listings where agent_id = ${agent.id} and not with_limits`)[0]?.built_at as Date | undefined;
    expect(await smsDescription()).toContain("10 of 10 messages left today");
    const sent: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000108"], body: `MCP scope ${randomUUID().slice(0, 8)}` } });
    expect(sent.isError ?? false, text(sent)).toBe(false);
    const before = await builtAt();
    expect(before).toBeInstanceOf(Date);
    // The send moved the grant's counter: the scope check still takes the kept listing (same tools).
    const balance: any = await client.callTool({ name: "clicksend_get_balance", arguments: {} });
    expect(balance.isError ?? false, text(balance)).toBe(false);
    expect(await builtAt()).toEqual(before);
    // A listing that is shown is built again, with the send counted.
    expect(await smsDescription()).toContain("9 of 10 messages left today");
    expect((await builtAt())!.getTime()).toBeGreaterThan(before!.getTime());
  });

  it("a blocked recipient is an MCP tool error carrying permission_denied", async () => {
    const client = await connect(key);
    const result: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61491570006"], body: "no" } });
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({
      error: { code: "permission_denied", details: { reason: "recipient_not_allowed", recipient: "+61491570006" } },
    });
    expect(text(result)).toContain("permission_denied");
    const [row] = await adminSql()`select status, error_code from public.operations where id = ${result.structuredContent.error.details.operation_id}`;
    expect(row).toEqual({ status: "denied", error_code: "permission_denied" });
  });

  it("over the daily limit is an MCP tool error carrying quota_exceeded", async () => {
    const client = await connect(key);
    // 2 used by the earlier sends; 2 more fill the limit of 4.
    const fill: any = await client.callTool({
      name: "sms_send", arguments: { to: ["+61412000101", "+61412000102"], body: `fill ${randomUUID()}` },
    });
    expect(fill.isError ?? false, text(fill)).toBe(false);
    const over: any = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000104"], body: `over ${randomUUID()}` } });
    expect(over.isError).toBe(true);
    expect(over.structuredContent.error).toMatchObject({
      code: "quota_exceeded", details: { daily_send_limit: 4, used_today: 4, requested: 1 },
    });
    expect(text(over)).toContain("quota_exceeded");
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === "sms_send")!.description).toContain("0 of 4 messages left today (UTC).");
    // The provider's own tool, called by name, shares the grant and so the limit.
    const byName: any = await client.callTool({ name: "clicksend_send_sms", arguments: { to: ["+61412000104"], body: `over ${randomUUID()}` } });
    expect(byName.structuredContent.error).toMatchObject({ code: "quota_exceeded", details: { daily_send_limit: 4, used_today: 4 } });
  });

  it("invalid arguments and unknown tools are tool errors too", async () => {
    const client = await connect(key);
    for (const name of ["sms_send", "clicksend_send_sms"]) {
      const invalid: any = await client.callTool({ name, arguments: { to: [], body: "" } });
      expect(invalid.isError, name).toBe(true);
      expect(invalid.structuredContent.error.code).toBe("invalid_request");
    }
    // A name that is no tool at all is a protocol error, as the spec says (-32602).
    await expect(client.callTool({ name: "nope_tool", arguments: {} })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining("Unknown tool: nope_tool") });
  });

  it("a tools/call whose name is not a string is -32602 (invalid params) inside HTTP 200, not a server error", async () => {
    const res = await fetch(mcpUrl(), {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: 5, arguments: {} } }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).error.code).toBe(-32602);
  });

  it("an expired grant's tools disappear from tools/list and tools/call is refused", async () => {
    const client = await connect(key);
    const sendgridGrant = grants.find((g) => g.connection_id === c.sendgrid.id);
    await rpc(c.user, "update_agent_permission", {
      p_permission_id: sendgridGrant.id, p_changes: { expires_at: new Date(Date.now() - 1000).toISOString() },
    });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["clicksend_get_balance", "message_status", "sms_send"]);
    // No live grant of this key holds "email" any more: 403 insufficient_scope at the HTTP
    // layer (RFC 6750), naming the scope, before any JSON-RPC is served; nothing is recorded.
    for (const name of ["sendgrid_send_email", "email_send"]) {
      const res = await fetch(mcpUrl(), {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: { to: ["a@example.com"], subject: "late", text: "too late" } } }),
      });
      expect(res.status, name).toBe(403);
      const challenge = res.headers.get("www-authenticate") ?? "";
      expect(challenge).toMatch(/^Bearer /);
      expect(challenge).toContain('error="insufficient_scope"');
      expect(challenge).toContain('scope="email"');
      expect(challenge).toContain(`resource_metadata="${mcpUrl()}/oauth-protected-resource"`);
      expect((await res.json()).error).toMatchObject({ code: "permission_denied", details: { tool: name, required_scope: "email" } });
    }
    const [{ n }] = await adminSql()`select count(*)::int as n from public.operations where agent_id = ${agentId} and capability_key in ('sendgrid_send_email', 'email_send') and request_summary->>'subject' = 'late'`;
    expect(n).toBe(0);
  });

  it("a revoked key: tools/call is refused at once", async () => {
    const { key: doomed, keyId: doomedId } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms"] }], "doomed mcp");
    const client = await connect(doomed);
    await rpc(c.user, "revoke_agent_key", { p_key_id: doomedId });
    // Whatever the transport does, nothing is sent.
    const outcome = await client.callTool({ name: "sms_send", arguments: { to: ["+61412000105"], body: "revoked" } })
      .then((r: any) => r, (e: any) => e);
    if (outcome instanceof Error) {
      expect((outcome as any).code).toBe(401);
    } else {
      expect(outcome.isError).toBe(true);
      expect(outcome.structuredContent.error).toMatchObject({ code: "unauthorized", message: "agent key revoked" });
    }
    expect((await fakeMessages()).some((m) => m.body === "revoked")).toBe(false);
  });

  it("a revoked key: the HTTP request is refused with 401 (initialize and tools/list)", async () => {
    const { key: doomed, keyId: doomedId } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms"] }], "doomed mcp 2");
    const live = await connect(doomed);
    await rpc(c.user, "revoke_agent_key", { p_key_id: doomedId });

    // A new session cannot even initialize.
    expect(await outcome(connect(doomed))).toEqual({ code: 401 });
    // An open client's next request is refused by HTTP status, not as a JSON-RPC error in a 200.
    expect(await outcome(live.listTools())).toEqual({ code: 401 });
    // Raw request: the documented envelope.
    const res = await fetch(`${status().FUNCTIONS_URL}/mcp`, {
      method: "POST",
      headers: { Authorization: `Bearer ${doomed}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    });
    expect(res.status).toBe(401);
    // RFC 6750: a credential was sent and refused, so the challenge says invalid_token and why.
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer resource_metadata="${mcpUrl()}/oauth-protected-resource", error="invalid_token", error_description="agent key revoked"`,
    );
    expect(((await res.json()) as any).error).toMatchObject({ code: "unauthorized", message: "agent key revoked" });
    // The user's other key is unaffected.
    expect(keyId).not.toBe(doomedId);
    await expect((await connect(key)).listTools()).resolves.toBeDefined();
  });

  it("an unknown agent key is refused with 401", async () => {
    expect(await outcome(connect(`swb_agent_${"z".repeat(43)}`))).toEqual({ code: 401 });
  });

  it("a missing or invalid bearer is refused with 401", async () => {
    const res = await fetch(`${status().FUNCTIONS_URL}/mcp`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    });
    expect(res.status).toBe(401);
    // No credential at all: the bare challenge, pointing at the metadata (no error code).
    expect(res.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${mcpUrl()}/oauth-protected-resource"`);
    expect(await outcome(connect("not-a-token"))).toEqual({ code: 401 });
  });

  it("serves RFC 9728 Protected Resource Metadata for the endpoint, at the URL its challenges name and at the path-inserted well-known URL", async () => {
    const expected = {
      resource: mcpUrl(),
      authorization_servers: [`${status().API_URL}/auth/v1`],
      bearer_methods_supported: ["header"],
      scopes_supported: ["balance", "email", "history", "mms", "sms", "status", "voice", "whatsapp"],
    };
    const own = await fetch(`${mcpUrl()}/oauth-protected-resource`);
    expect(own.status).toBe(200);
    expect(own.headers.get("content-type")).toContain("application/json");
    expect(await own.json()).toMatchObject(expected);
    // RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    const api = new URL(status().API_URL);
    const wellKnown = await fetch(`${api.origin}/.well-known/oauth-protected-resource${new URL(mcpUrl()).pathname}`);
    expect(wellKnown.status).toBe(200);
    expect(await wellKnown.json()).toMatchObject(expected);
    // Metadata is public; it never needs (or reveals anything for) a key.
    const text = JSON.stringify(expected);
    expect(text).not.toMatch(/swb_agent_|secret|password/i);
  });
});

describe("MCP transport: methods and DNS-rebinding protection", () => {
  let key: string;
  const initialize = JSON.stringify({
    jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "transport-e2e", version: "1" } },
  });
  /** A raw POST initialize; a hang fails the test instead of stalling it. */
  const post = (headers: Record<string, string> = {}) => fetch(mcpUrl(), {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers },
    body: initialize,
    signal: AbortSignal.timeout(5_000),
  });

  beforeAll(async () => {
    const c = await connectedUser();
    ({ key } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms"] }], "transport agent"));
  });

  it("GET (and DELETE) answer 405 with Allow: POST at once, in the error envelope, instead of opening a stream", async () => {
    for (const method of ["GET", "DELETE"]) {
      const started = Date.now();
      const res = await fetch(mcpUrl(), {
        method,
        headers: { Authorization: `Bearer ${key}`, Accept: "text/event-stream" },
        signal: AbortSignal.timeout(5_000),
      });
      const body = await res.text(); // a stream that never ends would time out here
      expect(res.status, `${method}: ${body}`).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(JSON.parse(body)).toMatchObject({ error: { code: "invalid_request", details: null } });
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it("a request from a foreign Origin is refused with 403, before anything else", async () => {
    for (const origin of ["http://evil.example", "null", `http://evil.example:${new URL(status().API_URL).port}`]) {
      const res = await post({ Origin: origin });
      expect(res.status, origin).toBe(403);
      expect(((await res.json()) as any).error).toMatchObject({ code: "permission_denied", details: { origin } });
    }
    // Even without a key, and even for GET: the origin is judged first.
    const anonymous = await fetch(mcpUrl(), { headers: { Origin: "http://evil.example" }, signal: AbortSignal.timeout(5_000) });
    expect(anonymous.status).toBe(403);
    expect(await outcome(connect(key, {}, { Origin: "http://evil.example" }))).toEqual({ code: 403 });
  });

  it("a rebound DNS name (foreign Host on the loopback stack) is refused with 403", async () => {
    const url = new URL(mcpUrl());
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: url.hostname, port: url.port, path: url.pathname, method: "POST", timeout: 5_000,
        headers: {
          Host: `rebound.evil.example:${url.port}`, Authorization: `Bearer ${key}`,
          "Content-Type": "application/json", Accept: "application/json, text/event-stream",
        },
      }, (response) => {
        let body = "";
        response.setEncoding("utf8").on("data", (chunk) => (body += chunk)).on("end", () => resolve({ status: response.statusCode!, body }));
      });
      req.on("timeout", () => req.destroy(new Error("timed out"))).on("error", reject);
      req.end(initialize);
    });
    expect(res.status, res.body).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe("permission_denied");
  });

  it("without Origin (agents outside a browser) and from the project's own origin, it works", async () => {
    const plain = await post();
    expect(plain.status, await plain.clone().text()).toBe(200);
    const own = await post({ Origin: new URL(status().API_URL).origin });
    expect(own.status, await own.clone().text()).toBe(200);
    const client = await connect(key, {}, { Origin: new URL(status().API_URL).origin });
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["sms_send", "message_status"]);
  });
});
