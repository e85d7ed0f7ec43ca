/**
 * The agent-tools function end to end: tool discovery in every
 * format from live grants only, calling a tool by name with each kind of credential,
 * account suffixes for two connections of one provider, limits in descriptions, and
 * the error envelope. Everything goes over HTTP to the real function; the admin
 * connection only arranges what no public surface offers and asserts on the log.
 */
import { randomUUID } from "node:crypto";
import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { strictViolations } from "../support/openai-strict.ts";
import {
  agentWithKey,
  callFunction,
  clicksendAccount,
  connectedUser,
  type Connected,
  eventually,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

type Schema = Record<string, any>;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });


/** A schema is valid JSON Schema 2020-12 (meta-schema) and compiles. */
function expectValidSchema(schema: Schema, label: string) {
  expect(ajv.validateSchema(schema), `${label}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
  expect(() => ajv.compile(schema), label).not.toThrow();
}

const ALL_TOOLS = [
  "clicksend_send_sms", "clicksend_send_mms", "clicksend_get_balance", "clicksend_get_sms_history",
  "clicksend_get_mms_history", "sendgrid_send_email", "smtp_send_email",
];

/** A fresh, unique message body (the ClickSend fake throttles a repeated body to one number). */
const body = (what = "hello") => `${what} ${randomUUID().slice(0, 8)}`;

const listTools = async (token: string, format?: string, query: Record<string, string> = {}) => {
  const params = new URLSearchParams({ ...(format ? { format } : {}), ...query });
  return callFunction(`agent-tools?${params}`, token);
};
const toolNames = async (token: string, query: Record<string, string> = {}) => {
  const res = await listTools(token, "raw", query);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.tools as { name: string }[]).map((t) => t.name).sort();
};
const callTool = (token: string, name: string, args: unknown, extra: Record<string, unknown> = {}) =>
  callFunction("agent-tools", token, { body: { name, arguments: args, ...extra } });

async function operation(id: string) {
  const [row] = await adminSql()`select * from public.operations where id = ${id}`;
  return row;
}

async function rpc<T = any>(user: TestUser, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await user.client.rpc(fn, args);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

afterAll(closeAdminSql);

describe("tool discovery formats", () => {
  let c: Connected;
  let key: string;
  let agentId: string;

  beforeAll(async () => {
    c = await connectedUser();
    let agent: { id: string };
    ({ key, agent } = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "mms", "balance", "history"], maxRecipientsPerMessage: 3, dailySendLimit: 5 },
      { connectionId: c.smtp.id, scopes: ["email"], allowedRecipients: ["example.com"] },
      { connectionId: c.sendgrid.id, scopes: ["email"], blockedRecipients: ["blocked.example"] },
    ]));
    agentId = agent.id;
  });

  it("openai: every tool is a strict function whose parameters follow OpenAI strict rules and JSON Schema 2020-12", async () => {
    const res = await listTools(key, "openai");
    expect(res.status).toBe(200);
    expect(res.body.format).toBe("openai");
    const tools = res.body.tools as Schema[];
    expect(tools.map((t) => t.function.name).sort()).toEqual([...ALL_TOOLS].sort());
    for (const tool of tools) {
      expect(Object.keys(tool).sort()).toEqual(["function", "type"]);
      expect(tool.type).toBe("function");
      expect(Object.keys(tool.function).sort()).toEqual(["description", "name", "parameters", "strict"]);
      expect(tool.function.strict).toBe(true);
      expect(tool.function.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      expect(tool.function.description.length).toBeGreaterThan(10);
      expect(tool.function.parameters.type).toBe("object");
      expect(strictViolations(tool.function.parameters), tool.function.name).toEqual([]);
      expectValidSchema(tool.function.parameters, tool.function.name);
    }
  });

  it("the functions render each format exactly as the database does (agent key vs supabase.rpc('get_agent_tools'))", async () => {
    for (const format of ["raw", "openai", "anthropic", "mcp"]) {
      const res = await listTools(key, format);
      expect(res.status).toBe(200);
      const { data, error } = await c.user.client.rpc("get_agent_tools", { p_agent_id: agentId, p_format: format });
      expect(error).toBeNull();
      expect(res.body.tools, format).toEqual(data);
      expect((data as unknown[]).length, format).toBe(ALL_TOOLS.length);
    }
  });

  it("openai is the default format", async () => {
    const res = await listTools(key);
    expect(res.status).toBe(200);
    expect(res.body.format).toBe("openai");
    expect(res.body.tools[0]).toMatchObject({ type: "function", function: { strict: true } });
  });

  it("anthropic: {name, description, input_schema} with valid 2020-12 schemas", async () => {
    const res = await listTools(key, "anthropic");
    expect(res.status).toBe(200);
    const tools = res.body.tools as Schema[];
    expect(tools.map((t) => t.name).sort()).toEqual([...ALL_TOOLS].sort());
    for (const tool of tools) {
      expect(Object.keys(tool).sort()).toEqual(["description", "input_schema", "name"]);
      expect(tool.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      expect(tool.input_schema.type).toBe("object");
      expect(tool.input_schema.additionalProperties).toBe(false);
      expectValidSchema(tool.input_schema, tool.name);
    }
  });

  it("mcp: {name, title, description, inputSchema, annotations{readOnlyHint, destructiveHint}}", async () => {
    const res = await listTools(key, "mcp");
    expect(res.status).toBe(200);
    const tools = res.body.tools as Schema[];
    expect(tools.map((t) => t.name).sort()).toEqual([...ALL_TOOLS].sort());
    for (const tool of tools) {
      expect(tool).toMatchObject({
        name: expect.any(String),
        title: expect.any(String),
        description: expect.any(String),
        inputSchema: { type: "object" },
        annotations: { readOnlyHint: expect.any(Boolean), destructiveHint: expect.any(Boolean) },
      });
      expectValidSchema(tool.inputSchema, tool.name);
      const readOnly = tool.name.includes("_get_");
      expect(tool.annotations.readOnlyHint, tool.name).toBe(readOnly);
      expect(tool.annotations.destructiveHint, tool.name).toBe(false);
    }
  });

  it("raw carries the limits as data and an unknown format is a 400", async () => {
    const res = await listTools(key, "raw");
    expect(res.status).toBe(200);
    const sms = (res.body.tools as Schema[]).find((t) => t.name === "clicksend_send_sms")!;
    expect(sms).toMatchObject({
      capability: "clicksend_send_sms",
      provider: "clicksend_sms",
      connection_id: c.clicksend.id,
      read_only: false,
      limits: { max_recipients_per_message: 3, daily_send_limit: 5, remaining_today: 5 },
    });
    const balance = (res.body.tools as Schema[]).find((t) => t.name === "clicksend_get_balance")!;
    expect(balance.limits).toMatchObject({ max_recipients_per_message: null, daily_send_limit: null });

    const bad = await listTools(key, "gemini");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
  });

  it("descriptions state recipients per message, remaining quota and recipient rules; the quota shown goes down after a send", async () => {
    const descriptions = async () => {
      const res = await listTools(key, "anthropic");
      return Object.fromEntries((res.body.tools as Schema[]).map((t) => [t.name, t.description as string]));
    };
    const before = await descriptions();
    expect(before.clicksend_send_sms).toContain("Max 3 recipients per message.");
    expect(before.clicksend_send_sms).toContain("5 of 5 messages left today (UTC).");
    expect(before.smtp_send_email).toContain("Only to: example.com.");
    expect(before.sendgrid_send_email).toContain("Never to: blocked.example.");
    // Read-only tools carry no sending limits.
    expect(before.clicksend_get_balance).not.toMatch(/recipients per message|left today/);

    const sent = await callTool(key, "clicksend_send_sms", { to: ["+61412000001", "+61412000002"], body: body() });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: "succeeded", sent: 2 });

    const after = await descriptions();
    expect(after.clicksend_send_sms).toContain("3 of 5 messages left today (UTC).");
    // MMS shares the grant, so it shares the quota.
    expect(after.clicksend_send_mms).toContain("3 of 5 messages left today (UTC).");
    const raw = await listTools(key, "raw");
    expect((raw.body.tools as Schema[]).find((t) => t.name === "clicksend_send_sms")!.limits.remaining_today).toBe(3);
  });
});

describe("only live grants count", () => {
  let c: Connected;

  beforeAll(async () => {
    c = await connectedUser();
  });

  /** A fresh agent with a key and one grant per provider (so each case starts from all tools). */
  async function freshAgent() {
    return agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "balance"] },
      { connectionId: c.smtp.id, scopes: ["email"] },
    ], `live-${randomUUID().slice(0, 6)}`);
  }

  async function expectRefusedSms(key: string, reason?: string) {
    const res = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.body.error.code).toBe("permission_denied");
    if (reason) expect(res.body.error.details.reason).toBe(reason);
    const row = await operation(res.body.error.details.operation_id);
    expect(row).toMatchObject({ status: "denied", error_code: "permission_denied", capability_key: "clicksend_send_sms" });
    return res;
  }

  it("a fresh agent sees exactly what it was granted", async () => {
    const { key } = await freshAgent();
    expect(await toolNames(key)).toEqual(["clicksend_get_balance", "clicksend_send_sms", "smtp_send_email"]);
  });

  it("a revoked grant's tools vanish at once and calls are refused", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "revoke_agent_permission", { p_permission_id: clicksendGrant.id });
    expect(await toolNames(key)).toEqual(["smtp_send_email"]);
    await expectRefusedSms(key, "revoked");
  });

  it("an expired grant's tools vanish and calls are refused", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "update_agent_permission", {
      p_permission_id: clicksendGrant.id,
      p_changes: { expires_at: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(await toolNames(key)).toEqual(["smtp_send_email"]);
    await expectRefusedSms(key, "expired");
  });

  it("a grant that expires later is listed with its expiry in the description", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "update_agent_permission", {
      p_permission_id: clicksendGrant.id, p_changes: { expires_at: "2099-01-02T03:04:00Z" },
    });
    const res = await listTools(key, "openai");
    const sms = (res.body.tools as Schema[]).find((t) => t.function.name === "clicksend_send_sms")!;
    expect(sms.function.description).toContain("Access expires 2099-01-02 03:04 UTC.");
  });

  it("a disabled agent has no tools and every call is refused", async () => {
    const { key, agent } = await freshAgent();
    // No public RPC toggles an agent and the PostgREST stand-in has no PATCH: the same
    // row update a user's `supabase.from('agents').update()` would make, via the admin connection.
    await adminSql()`update public.agents set is_active = false where id = ${agent.id}`;
    expect(await toolNames(key)).toEqual([]);
    const res = await callTool(key, "smtp_send_email", { to: ["a@example.com"], subject: "hi", text: body() });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "permission_denied", message: "agent is disabled" });
    expect(await operation(res.body.error.details.operation_id)).toMatchObject({ status: "denied", agent_id: agent.id });

    await adminSql()`update public.agents set is_active = true where id = ${agent.id}`;
    expect(await toolNames(key)).toHaveLength(3);
  });

  it("a disabled connection's tools vanish, calls are refused, and re-enabling brings them back", async () => {
    const other = await connectedUser();
    const { key } = await agentWithKey(other.user, [
      { connectionId: other.clicksend.id, scopes: ["sms"] },
      { connectionId: other.sendgrid.id, scopes: ["email"] },
    ]);
    await rpc(other.user, "update_connection", { p_connection_id: other.clicksend.id, p_changes: { status: "disabled" } });
    expect(await toolNames(key)).toEqual(["sendgrid_send_email"]);
    const res = await expectRefusedSms(key, "connection_inactive");
    expect(res.body.error.message).toBe("connection is disabled");

    await rpc(other.user, "update_connection", { p_connection_id: other.clicksend.id, p_changes: { status: "active" } });
    expect(await toolNames(key)).toEqual(["clicksend_send_sms", "sendgrid_send_email"]);
  });

  it("a deleted connection's tools vanish, its grants are revoked and calls are refused", async () => {
    const other = await connectedUser();
    const { key, permissions } = await agentWithKey(other.user, [
      { connectionId: other.clicksend.id, scopes: ["sms"] },
      { connectionId: other.smtp.id, scopes: ["email"] },
    ]);
    await rpc(other.user, "delete_connection", { p_connection_id: other.clicksend.id });
    expect(await toolNames(key)).toEqual(["smtp_send_email"]);
    const [grant] = await adminSql()`select is_active, revoked_at from public.agent_permissions where id = ${permissions[0].id}`;
    expect(grant.is_active).toBe(false);
    expect(grant.revoked_at).not.toBeNull();
    const res = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe("no_grant");
  });
});

describe("two connections of one provider", () => {
  let c: Connected;
  let second: { id: string };
  let key: string;

  beforeAll(async () => {
    c = await connectedUser();
    // A second ClickSend account on the fake ("nocredit", given credit for this suite).
    const credit = await fetch(`${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/accounts`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "nocredit", balance: 50 }),
    });
    expect(credit.status).toBe(200);
    second = await rpc(c.user, "create_connection", {
      p_provider: "clicksend_sms", p_name: "Second SMS",
      p_credentials: { username: "nocredit", api_key: "D83DED51-9E35-4D42-9BB9-0E34B7CA85AE" },
      p_config: clicksendAccount().config,
    });
    ({ key } = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "balance"] },
      { connectionId: second.id, scopes: ["sms"] },
      { connectionId: c.smtp.id, scopes: ["email"] },
    ]));
  });

  afterAll(async () => {
    await fetch(`${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/accounts`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "nocredit", balance: 0 }),
    });
  });

  /** The tool-name suffix: the first 8 hex digits of the connection id. */
  const suffix = (id: string) => id.slice(0, 8);

  it("tool names carry an account suffix for that provider only, and descriptions name the account", async () => {
    const a = suffix(c.clicksend.id);
    const b = suffix(second.id);
    expect(await toolNames(key)).toEqual([
      `clicksend_get_balance__${a}`, `clicksend_send_sms__${a}`, `clicksend_send_sms__${b}`, "smtp_send_email",
    ].sort());
    for (const format of ["openai", "anthropic", "mcp"]) {
      const res = await listTools(key, format);
      const names = (res.body.tools as Schema[]).map((t) => t.name ?? t.function.name);
      expect(names, format).toContain(`clicksend_send_sms__${b}`);
      expect(names.every((n: string) => /^[a-zA-Z0-9_-]{1,64}$/.test(n))).toBe(true);
    }
    const anthropic = await listTools(key, "anthropic");
    const byName = Object.fromEntries((anthropic.body.tools as Schema[]).map((t) => [t.name, t.description]));
    expect(byName[`clicksend_send_sms__${a}`]).toContain("Account: ClickSend.");
    expect(byName[`clicksend_send_sms__${b}`]).toContain("Account: Second SMS.");
    expect(byName.smtp_send_email).not.toContain("Account:");
  });

  it("each suffixed name sends through its own account", async () => {
    const fake = `${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/messages`;
    for (const [connectionId, username] of [[c.clicksend.id, "demo"], [second.id, "nocredit"]] as const) {
      const text = body(`via ${username}`);
      const res = await callTool(key, `clicksend_send_sms__${suffix(connectionId)}`, { to: ["+61412000003"], body: text });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const row = await operation(res.body.operation_id);
      expect(row).toMatchObject({ connection_id: connectionId, status: "succeeded", capability_key: "clicksend_send_sms" });
      const messages = (await (await fetch(fake)).json()) as { data?: any[]; messages?: any[] } | any[];
      const list: any[] = Array.isArray(messages) ? messages : (messages.messages ?? messages.data ?? []);
      const received = list.find((m) => m.custom_string === res.body.operation_id);
      expect(received, "the fake received the message").toBeDefined();
      expect(received).toMatchObject({ username, body: text, to: "+61412000003" });
    }
  });

  it("the bare name is ambiguous (400) unless connection_id picks the account", async () => {
    const bare = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(bare.status).toBe(400);
    expect(bare.body.error).toMatchObject({ code: "invalid_request", details: { reason: "ambiguous_connection" } });

    const picked = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() }, { connection_id: second.id });
    expect(picked.status, JSON.stringify(picked.body)).toBe(200);
    expect((await operation(picked.body.operation_id)).connection_id).toBe(second.id);
  });

  it("a suffix that names no granted account is refused", async () => {
    const res = await callTool(key, "clicksend_send_sms__00000000", { to: ["+61411111111"], body: body() });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe("no_grant");
  });
});

describe("calling a tool by name", () => {
  let c: Connected;
  let key: string;
  let agentId: string;
  let keyId: string;

  beforeAll(async () => {
    c = await connectedUser();
    const made = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "balance"], maxRecipientsPerMessage: 3, blockedRecipients: ["+6149"] },
      { connectionId: c.smtp.id, scopes: ["email"], allowedRecipients: ["example.com"] },
    ]);
    ({ key, keyId } = made);
    agentId = made.agent.id;
  });

  it("works with an agent key", async () => {
    const res = await callTool(key, "clicksend_send_sms", { to: ["+61412000010"], body: body() });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", sent: 1, failed: 0 });
    expect(res.body.provider_message_ids).toHaveLength(1);
    expect(await operation(res.body.operation_id)).toMatchObject({
      auth_mode: "agent_key", agent_id: agentId, user_id: c.user.id, connection_id: c.clicksend.id, status: "succeeded",
    });
  });

  it("works with the user's JWT plus agent_id (GET and POST)", async () => {
    expect(await toolNames(c.user.token, { agent_id: agentId })).toEqual(["clicksend_get_balance", "clicksend_send_sms", "smtp_send_email"]);
    const res = await callTool(c.user.token, "smtp_send_email", { to: ["ada@example.com"], subject: "JWT", text: body() }, { agent_id: agentId });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await operation(res.body.operation_id)).toMatchObject({ auth_mode: "user_agent", agent_id: agentId, status: "succeeded" });
  });

  it("works with the service key plus user_id and agent_id (GET and POST)", async () => {
    const ids = { user_id: c.user.id, agent_id: agentId };
    expect(await toolNames(status().SERVICE_ROLE_KEY, ids)).toEqual(["clicksend_get_balance", "clicksend_send_sms", "smtp_send_email"]);
    const res = await callTool(status().SERVICE_ROLE_KEY, "clicksend_get_balance", {}, ids);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded" });
    expect(await operation(res.body.operation_id)).toMatchObject({ auth_mode: "service", agent_id: agentId, user_id: c.user.id });
  });

  it("the user's JWT or the service key without the ids it needs is a 400; another user's agent is a 404", async () => {
    const noAgent = await listTools(c.user.token, "openai");
    expect(noAgent.status).toBe(400);
    expect(noAgent.body.error.code).toBe("invalid_request");
    const noUser = await callTool(status().SERVICE_ROLE_KEY, "clicksend_get_balance", {}, { agent_id: agentId });
    expect(noUser.status).toBe(400);

    const stranger = await newUser();
    const foreign = await listTools(stranger.token, "openai", { agent_id: agentId });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe("not_found");
    const foreignCall = await callTool(stranger.token, "clicksend_get_balance", {}, { agent_id: agentId });
    expect(foreignCall.status).toBe(404);
  });

  it("accepts OpenAI strict-mode calls: null for every optional argument", async () => {
    const res = await listTools(key, "openai");
    for (const tool of res.body.tools as Schema[]) {
      const name = tool.function.name as string;
      const given: Record<string, Record<string, unknown>> = {
        clicksend_send_sms: { to: ["+61412000011"], body: body("strict") },
        clicksend_get_balance: {},
        smtp_send_email: { to: ["grace@example.com"], subject: "Strict", text: body("strict") },
      };
      const props = Object.keys(tool.function.parameters.properties);
      const args = Object.fromEntries(props.map((p) => [p, given[name]![p] ?? null]));
      expect(ajv.validate(tool.function.parameters, args), `${name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
      const call = await callTool(key, name, args);
      expect(call.status, `${name}: ${JSON.stringify(call.body)}`).toBe(200);
      expect(call.body.status).toBe("succeeded");
    }
  });

  it("invalid arguments are a 400 listing every issue, before anything is authorized or logged", async () => {
    const count = async () => (await adminSql()`select count(*)::int as n from public.operations where user_id = ${c.user.id}`)[0].n;
    const before = await count();
    const res = await callTool(key, "clicksend_send_sms", { to: [], body: "", surprise: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    const paths = (res.body.error.details.issues as { path: string }[]).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["to", "body"]));
    const notObject = await callTool(key, "clicksend_send_sms", [1, 2]);
    expect(notObject.status).toBe(400);
    expect(await count()).toBe(before);
  });

  it("an unknown tool is a 404; a malformed name is a 400", async () => {
    const unknown = await callTool(key, "pigeon_send_sms", { to: ["+61411111111"], body: "x" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    const malformed = await callTool(key, "Send SMS!", {});
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("invalid_request");
  });

  it("a tool the agent holds no grant for is a 403 and a denied operation row", async () => {
    const res = await callTool(key, "sendgrid_send_email", { to: ["a@example.com"], subject: "x", text: body() });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_grant" } });
    const row = await operation(res.body.error.details.operation_id);
    expect(row).toMatchObject({
      status: "denied", error_code: "permission_denied", capability_key: "sendgrid_send_email",
      agent_id: agentId, user_id: c.user.id, auth_mode: "agent_key", recipients: ["a@example.com"],
    });

    // Granted connection, scope not granted (MMS needs "mms").
    const mms = await callTool(key, "clicksend_send_mms", {
      to: ["+61411111111"], body: "pic", subject: "Pic", media_url: "https://example.com/a.jpg",
    });
    expect(mms.status).toBe(403);
    expect(mms.body.error.details).toMatchObject({ reason: "scope", required_scope: "mms" });
    expect((await operation(mms.body.error.details.operation_id)).status).toBe("denied");
  });

  it("recipient rules and per-message limits are 403s with the reason", async () => {
    const blocked = await callTool(key, "clicksend_send_sms", { to: ["+61491570006"], body: body() });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.details).toMatchObject({ reason: "recipient_not_allowed", recipient: "+61491570006" });
    const outside = await callTool(key, "smtp_send_email", { to: ["eve@evil.test"], subject: "x", text: body() });
    expect(outside.status).toBe(403);
    expect(outside.body.error.details.reason).toBe("recipient_not_allowed");
    const many = await callTool(key, "clicksend_send_sms", { to: ["+61412000021", "+61412000022", "+61412000023", "+61412000024"], body: body() });
    expect(many.status).toBe(403);
    expect(many.body.error.details).toMatchObject({ reason: "recipient_limit", max_recipients_per_message: 3 });
  });

  it("GET/POST are the only methods", async () => {
    const res = await callFunction("agent-tools", key, { method: "PUT", body: {} });
    expect(res.status).toBe(405);
    expect(res.body.error.code).toBe("invalid_request");
  });

  it("a revoked key is a 401 everywhere at once (GET, POST, and the provider function)", async () => {
    const { key: doomed, keyId: doomedId } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms"] }], "doomed");
    expect((await listTools(doomed, "openai")).status).toBe(200);
    await rpc(c.user, "revoke_agent_key", { p_key_id: doomedId });

    // (MCP's answer to a revoked key is covered in mcp.test.ts.)
    const [get, post, direct] = await Promise.all([
      listTools(doomed, "openai"),
      callTool(doomed, "clicksend_send_sms", { to: ["+61411111111"], body: body() }),
      callFunction("clicksend/sms/send", doomed, { body: { to: ["+61411111111"], body: body() } }),
    ]);
    for (const [label, res] of [["GET", get], ["POST", post], ["clicksend", direct]] as const) {
      expect(res.status, `${label}: ${JSON.stringify(res.body)}`).toBe(401);
      expect(res.body.error, label).toMatchObject({ code: "unauthorized", message: "agent key revoked" });
    }
    // The refused call is in the log, attributed to the agent.
    await eventually(async () => {
      const rows = await adminSql()`select status, error_code, auth_mode from public.operations
        where user_id = ${c.user.id} and error_code = 'unauthorized'`;
      return rows.length >= 2 && rows.every((r) => r.status === "denied" && r.auth_mode === "agent_key");
    });
    // The other key of the same user is unaffected.
    expect((await listTools(key, "openai")).status).toBe(200);
    expect(keyId).not.toBe(doomedId);
  });

  it("an unknown key or a missing bearer is a 401", async () => {
    const unknown = await listTools(`swb_agent_${"x".repeat(43)}`, "openai");
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe("unauthorized");
    const res = await fetch(`${status().FUNCTIONS_URL}/agent-tools?format=openai`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe("unauthorized");
  });
});
