/**
 * The agent-tools function end to end: tool discovery in every
 * format from live grants only (one tool per capability: the channel tools for sends, a
 * provider's other tools once), calling a tool by name with each kind of credential, the
 * `account` argument for several accounts of one channel, limits in descriptions, and
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

/**
 * One tool per capability: sends are the channel tools, a provider's own tools only where
 * they add something, and message_status (every agent with a live right has it), listed last.
 */
const ALL_TOOLS = [
  "sms_send", "mms_send", "email_send", "clicksend_get_balance", "clicksend_get_sms_history", "clicksend_get_mms_history",
  "message_status",
];
/** The tool the database answers alone: no account to choose, not a send (no idempotency_key, no dry_run). */
const STATUS_TOOL = "message_status";
/** message_status's own arguments, and nothing else. */
const STATUS_PROPERTIES = ["limit", "operation_ids"];
/** A provider's own send tools: callable by name, never listed to agents. */
const PROVIDER_SEND_TOOLS = ["clicksend_send_sms", "clicksend_send_mms", "smtp_send_email", "sendgrid_send_email"];
/** The account argument every tool takes (tool-schemas.ts). */
const ACCOUNT_PROPERTY = { type: "string", format: "uuid", description: expect.stringMatching(/connection id/) };

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

  /** The two mail accounts in the order discovery lists them without a route: oldest first. */
  const mailAccountsInOrder = async () => (await adminSql()`
    select id from public.connections where id in ${adminSql()([c.smtp.id, c.sendgrid.id])} order by created_at, id`).map((r) => r.id as string);

  it("every tool takes an optional account argument (a connection id), in every format; message_status takes none", async () => {
    for (const format of ["raw", "openai", "anthropic", "mcp"]) {
      const res = await listTools(key, format);
      expect(res.status).toBe(200);
      expect((res.body.tools as Schema[]).length, format).toBe(ALL_TOOLS.length);
      // message_status is listed last, after the channel tools and the provider's tools.
      expect((res.body.tools as Schema[]).map((t) => t.name ?? t.function.name).at(-1), format).toBe(STATUS_TOOL);
      for (const tool of res.body.tools as Schema[]) {
        const name = tool.name ?? tool.function.name;
        const schemas: [string, Schema, boolean][] = format === "raw"
          ? [["input", tool.input_schema, false], ["strict", tool.strict_input_schema, true]]
          : [[format, tool.input_schema ?? tool.inputSchema ?? tool.function.parameters, format === "openai"]];
        for (const [label, schema, strict] of schemas) {
          const where = `${format} ${label} ${name}`;
          if (name === STATUS_TOOL) {
            // No account (the database answers it alone), no send arguments: exactly its own two.
            expect(Object.keys(schema.properties).sort(), where).toEqual(STATUS_PROPERTIES);
            expect(schema.properties.account, where).toBeUndefined();
            // Strict mode: both required (and nullable); otherwise both optional.
            expect([...(schema.required ?? [])].sort(), where).toEqual(strict ? STATUS_PROPERTIES : []);
            continue;
          }
          if (strict) {
            // Strict mode: every property required, the optional ones nullable.
            expect(schema.properties.account, where).toMatchObject({ ...ACCOUNT_PROPERTY, type: ["string", "null"] });
            expect(schema.required, where).toContain("account");
          } else {
            expect(schema.properties.account, where).toMatchObject(ACCOUNT_PROPERTY);
            expect(schema.required ?? [], where).not.toContain("account");
          }
        }
      }
    }
  });

  it("openai: every tool is a strict function whose parameters follow OpenAI strict rules and JSON Schema 2020-12", async () => {
    const res = await listTools(key, "openai");
    expect(res.status).toBe(200);
    expect(res.body.format).toBe("openai");
    const tools = res.body.tools as Schema[];
    expect(tools.map((t) => t.function.name).sort()).toEqual([...ALL_TOOLS].sort());
    // No provider send tool and no account suffix is listed.
    expect(tools.map((t) => t.function.name).filter((n: string) => PROVIDER_SEND_TOOLS.includes(n) || n.includes("__"))).toEqual([]);
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
    // message_status in strict form: both of its arguments required and nullable, nothing else.
    const status = tools.find((t) => t.function.name === STATUS_TOOL)!.function.parameters;
    expect(status).toMatchObject({ type: "object", additionalProperties: false });
    expect([...status.required].sort()).toEqual(STATUS_PROPERTIES);
    expect(status.properties.operation_ids).toMatchObject({ type: ["array", "null"], items: { type: "string", format: "uuid" }, minItems: 1, maxItems: 50 });
    expect(status.properties.limit).toMatchObject({ type: ["integer", "null"], minimum: 1, maximum: 50 });
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

  it("mcp: {name, title, description, inputSchema, outputSchema, annotations{readOnlyHint, destructiveHint}}", async () => {
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
        outputSchema: { type: "object" },
        annotations: { readOnlyHint: expect.any(Boolean), destructiveHint: expect.any(Boolean) },
      });
      expectValidSchema(tool.inputSchema, tool.name);
      expectValidSchema(tool.outputSchema, tool.name);
      const readOnly = tool.name.includes("_get_") || tool.name === STATUS_TOOL;
      expect(tool.annotations.readOnlyHint, tool.name).toBe(readOnly);
      expect(tool.annotations.destructiveHint, tool.name).toBe(false);
    }
  });

  it("raw carries the limits as data and an unknown format is a 400", async () => {
    const res = await listTools(key, "raw");
    expect(res.status).toBe(200);
    // One account: the entry names it and its limits are that account's object.
    const sms = (res.body.tools as Schema[]).find((t) => t.name === "sms_send")!;
    expect(sms).toMatchObject({
      capability: "sms_send",
      provider: "clicksend_sms",
      connection_id: c.clicksend.id,
      connection_name: "ClickSend",
      read_only: false,
      limits: { max_recipients_per_message: 3, daily_send_limit: 5, remaining_today: 5 },
    });
    expect(sms.limits.accounts).toBeUndefined();
    const balance = (res.body.tools as Schema[]).find((t) => t.name === "clicksend_get_balance")!;
    expect(balance).toMatchObject({ capability: "clicksend_get_balance", provider: "clicksend_sms", connection_id: c.clicksend.id });
    expect(balance.limits).toMatchObject({ max_recipients_per_message: null, daily_send_limit: null });
    // message_status: no provider, no account, no limits; read-only.
    const statusTool = (res.body.tools as Schema[]).find((t) => t.name === STATUS_TOOL)!;
    expect(statusTool).toEqual({
      name: STATUS_TOOL, capability: STATUS_TOOL, title: "Message status", description: expect.stringContaining("your own recent sends"),
      provider: null, connection_id: null, connection_name: null, input_schema: expect.any(Object),
      strict_input_schema: expect.any(Object), output_schema: expect.objectContaining({ type: "object" }), read_only: true,
      destructive: false, limits: null,
    });
    // Two accounts (SMTP and SendGrid) behind one email_send: no single account or provider,
    // and the limits per account, in the order the description lists them.
    const email = (res.body.tools as Schema[]).find((t) => t.name === "email_send")!;
    expect(email).toMatchObject({ capability: "email_send", provider: null, connection_id: null, connection_name: null, read_only: false });
    expect(Object.keys(email.limits)).toEqual(["accounts"]);
    expect(email.limits.accounts.map((a: Schema) => a.connection_id)).toEqual(await mailAccountsInOrder());
    expect(email.limits.accounts).toEqual(expect.arrayContaining([
      { connection_id: c.smtp.id, connection_name: "Mailbox", limits: expect.objectContaining({
        max_recipients_per_message: 10, daily_send_limit: 100, remaining_today: 100, allowed_recipients: ["example.com"], blocked_recipients: [] }) },
      { connection_id: c.sendgrid.id, connection_name: "SendGrid", limits: expect.objectContaining({
        max_recipients_per_message: 10, daily_send_limit: 100, remaining_today: 100, allowed_recipients: [], blocked_recipients: ["blocked.example"] }) },
    ]));

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
    expect(before.sms_send).toContain("Max 3 recipients per message.");
    expect(before.sms_send).toContain("5 of 5 messages left today (UTC).");
    expect(before.sms_send).not.toContain("Accounts");
    // Two mail accounts: each listed with its id and its own limits and recipient rules.
    const mail = {
      [c.smtp.id]: `Mailbox = ${c.smtp.id} (Max 10 recipients per message. 100 of 100 messages left today (UTC). Only to: example.com.)`,
      [c.sendgrid.id]: `SendGrid = ${c.sendgrid.id} (Max 10 recipients per message. 100 of 100 messages left today (UTC). Never to: blocked.example.)`,
    };
    expect(before.email_send).toContain(
      `Accounts (pass account to choose one): ${(await mailAccountsInOrder()).map((id) => mail[id]).join("; ")}.`);
    expect(before.email_send).not.toContain("Without account, your route tries");
    // Read-only tools carry no sending limits.
    expect(before.clicksend_get_balance).not.toMatch(/recipients per message|left today/);

    const sent = await callTool(key, "sms_send", { to: ["+61412000001", "+61412000002"], body: body() });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: "succeeded", sent: 2, provider: "clicksend_sms" });

    const after = await descriptions();
    expect(after.sms_send).toContain("3 of 5 messages left today (UTC).");
    // MMS shares the grant, so it shares the quota.
    expect(after.mms_send).toContain("3 of 5 messages left today (UTC).");
    const raw = await listTools(key, "raw");
    expect((raw.body.tools as Schema[]).find((t) => t.name === "sms_send")!.limits.remaining_today).toBe(3);
  });
});

describe("email_send with two mail accounts and no route", () => {
  it("goes to the workspace's default mail connection without account; account picks the other", async () => {
    const c = await connectedUser();
    const { key } = await agentWithKey(c.user, [
      { connectionId: c.smtp.id, scopes: ["email"] }, { connectionId: c.sendgrid.id, scopes: ["email"] },
    ], "two mailboxes");
    const [byDefault] = await adminSql()`select id from public.connections where id in ${adminSql()([c.smtp.id, c.sendgrid.id])} and is_default_mail`;
    expect(byDefault, "one of them is the default mail connection").toBeDefined();
    const other = byDefault.id === c.smtp.id ? c.sendgrid.id : c.smtp.id;
    const provider = (id: string) => (id === c.smtp.id ? "smtp" : "sendgrid");
    const mail = { to: ["ada@example.com"], subject: "Which account?", text: body("mail") };

    const plain = await callTool(key, "email_send", mail);
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
    expect(plain.body).toMatchObject({ status: "succeeded", provider: provider(byDefault.id) });
    expect((await operation(plain.body.operation_id)).connection_id).toBe(byDefault.id);

    const named = await callTool(key, "email_send", { ...mail, account: other });
    expect(named.status, JSON.stringify(named.body)).toBe(200);
    expect(named.body).toMatchObject({ status: "succeeded", provider: provider(other) });
    expect((await operation(named.body.operation_id)).connection_id).toBe(other);
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

  /**
   * The SMS account is refused both ways: by the provider's own tool (with the reason its
   * grant is dead) and by the sms_send channel tool (no usable account is left).
   */
  async function expectRefusedSms(key: string, reason?: string) {
    const res = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.body.error.code).toBe("permission_denied");
    if (reason) expect(res.body.error.details.reason).toBe(reason);
    const row = await operation(res.body.error.details.operation_id);
    expect(row).toMatchObject({ status: "denied", error_code: "permission_denied", capability_key: "clicksend_send_sms" });

    const channel = await callTool(key, "sms_send", { to: ["+61411111111"], body: body() });
    expect(channel.status, JSON.stringify(channel.body)).toBe(403);
    expect(channel.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account", channel: "sms" } });
    expect(await operation(channel.body.error.details.operation_id))
      .toMatchObject({ status: "denied", error_code: "permission_denied", capability_key: "sms_send" });
    return res;
  }

  it("a fresh agent sees exactly what it was granted", async () => {
    const { key } = await freshAgent();
    expect(await toolNames(key)).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
  });

  it("a revoked grant's tools vanish at once and calls are refused", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "revoke_agent_permission", { p_permission_id: clicksendGrant.id });
    expect(await toolNames(key)).toEqual(["email_send", "message_status"]);
    await expectRefusedSms(key, "revoked");
    // With no live right left, nothing is listed: not message_status either.
    const smtpGrant = permissions.find((p: any) => p.connection_id === c.smtp.id);
    await rpc(c.user, "revoke_agent_permission", { p_permission_id: smtpGrant.id });
    expect(await toolNames(key)).toEqual([]);
  });

  it("an expired grant's tools vanish and calls are refused", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "update_agent_permission", {
      p_permission_id: clicksendGrant.id,
      p_changes: { expires_at: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(await toolNames(key)).toEqual(["email_send", "message_status"]);
    await expectRefusedSms(key, "expired");
  });

  // With two SMS accounts, a dead one leaves sms_send's account list and the other remains,
  // as the tool's only account.
  for (const how of ["revoked", "expired", "disabled", "deleted"] as const) {
    it(`a ${how} account of two vanishes from sms_send's accounts; sms_send keeps the other`, async () => {
      const [doomed, kept] = await Promise.all(["doomed", "kept"].map((label) => rpc(c.user, "create_connection", {
        p_provider: "clicksend_sms", p_name: `${label} ${how} ${randomUUID().slice(0, 6)}`, ...Object.fromEntries(
          Object.entries(clicksendAccount()).map(([k, v]) => [`p_${k}`, v])),
      })));
      const { key, permissions } = await agentWithKey(c.user, [
        { connectionId: doomed.id, scopes: ["sms"] }, { connectionId: kept.id, scopes: ["sms"] },
      ], `two-${how}`);
      const smsTool = async () => {
        const res = await listTools(key, "raw");
        expect(res.status).toBe(200);
        expect((res.body.tools as Schema[]).map((t) => t.name)).toEqual(["sms_send", "message_status"]);
        return res.body.tools[0] as Schema;
      };
      const before = await smsTool();
      expect(before.connection_id).toBeNull();
      expect(before.limits.accounts.map((a: Schema) => a.connection_id).sort()).toEqual([doomed.id, kept.id].sort());
      expect(before.description).toContain(`${doomed.name} = ${doomed.id} (`);
      expect(before.description).toContain(`${kept.name} = ${kept.id} (`);

      const grant = permissions.find((p: any) => p.connection_id === doomed.id);
      if (how === "revoked") await rpc(c.user, "revoke_agent_permission", { p_permission_id: grant.id });
      if (how === "expired") {
        await rpc(c.user, "update_agent_permission", {
          p_permission_id: grant.id, p_changes: { expires_at: new Date(Date.now() - 60_000).toISOString() },
        });
      }
      if (how === "disabled") await rpc(c.user, "update_connection", { p_connection_id: doomed.id, p_changes: { status: "disabled" } });
      if (how === "deleted") await rpc(c.user, "delete_connection", { p_connection_id: doomed.id });

      const after = await smsTool();
      expect(after).toMatchObject({ provider: "clicksend_sms", connection_id: kept.id, connection_name: kept.name });
      expect(after.limits).toMatchObject({ daily_send_limit: 100, remaining_today: 100 });
      expect(after.limits.accounts).toBeUndefined();
      expect(after.description).not.toContain(doomed.id);
      expect(after.description).not.toContain("Accounts");

      // Without account it now goes to the one left; naming the dead one is refused.
      const sent = await callTool(key, "sms_send", { to: ["+61412000031"], body: body(how) });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      expect(sent.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
      expect((await operation(sent.body.operation_id)).connection_id).toBe(kept.id);
      const named = await callTool(key, "sms_send", { to: ["+61412000031"], body: body(how), account: doomed.id });
      expect(named.status, JSON.stringify(named.body)).toBe(403);
      expect(named.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account" } });
    });
  }

  it("a grant that expires later is listed with its expiry in the description", async () => {
    const { key, permissions } = await freshAgent();
    const clicksendGrant = permissions.find((p: any) => p.connection_id === c.clicksend.id);
    await rpc(c.user, "update_agent_permission", {
      p_permission_id: clicksendGrant.id, p_changes: { expires_at: "2099-01-02T03:04:00Z" },
    });
    const res = await listTools(key, "openai");
    const sms = (res.body.tools as Schema[]).find((t) => t.function.name === "sms_send")!;
    expect(sms.function.description).toContain("Access expires 2099-01-02 03:04 UTC.");
    const balance = (res.body.tools as Schema[]).find((t) => t.function.name === "clicksend_get_balance")!;
    expect(balance.function.description).toContain("Access expires 2099-01-02 03:04 UTC.");
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
    expect(await toolNames(key)).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
  });

  it("a disabled connection's tools vanish, calls are refused, and re-enabling brings them back", async () => {
    const other = await connectedUser();
    const { key } = await agentWithKey(other.user, [
      { connectionId: other.clicksend.id, scopes: ["sms"] },
      { connectionId: other.sendgrid.id, scopes: ["email"] },
    ]);
    await rpc(other.user, "update_connection", { p_connection_id: other.clicksend.id, p_changes: { status: "disabled" } });
    expect(await toolNames(key)).toEqual(["email_send", "message_status"]);
    const res = await expectRefusedSms(key, "connection_inactive");
    expect(res.body.error.message).toBe("connection is disabled");

    await rpc(other.user, "update_connection", { p_connection_id: other.clicksend.id, p_changes: { status: "active" } });
    expect(await toolNames(key)).toEqual(["email_send", "message_status", "sms_send"]);
    const sent = await callTool(key, "sms_send", { to: ["+61412000030"], body: body("re-enabled") });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
  });

  it("a deleted connection's tools vanish, its grants are revoked and calls are refused", async () => {
    const other = await connectedUser();
    const { key, permissions } = await agentWithKey(other.user, [
      { connectionId: other.clicksend.id, scopes: ["sms"] },
      { connectionId: other.smtp.id, scopes: ["email"] },
    ]);
    await rpc(other.user, "delete_connection", { p_connection_id: other.clicksend.id });
    expect(await toolNames(key)).toEqual(["email_send", "message_status"]);
    const [grant] = await adminSql()`select is_active, revoked_at from public.agent_permissions where id = ${permissions[0].id}`;
    expect(grant.is_active).toBe(false);
    expect(grant.revoked_at).not.toBeNull();
    const res = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe("no_grant");
    const channel = await callTool(key, "sms_send", { to: ["+61411111111"], body: body() });
    expect(channel.status).toBe(403);
    expect(channel.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account" } });
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

  /** The tool-name suffix (still accepted, no longer listed): the first 8 hex digits of the connection id. */
  const suffix = (id: string) => id.slice(0, 8);
  const fakeMessages = async () => {
    const res = await fetch(`${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/messages`);
    return ((await res.json()) as { messages: any[] }).messages;
  };

  it("one sms_send lists both accounts with their ids (no suffixed names); the provider's other tools once", async () => {
    expect(await toolNames(key)).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
    for (const format of ["openai", "anthropic", "mcp"]) {
      const res = await listTools(key, format);
      const names = (res.body.tools as Schema[]).map((t) => t.name ?? t.function.name);
      expect(names.filter((n: string) => n === "sms_send"), format).toHaveLength(1);
      expect(names.every((n: string) => /^[a-zA-Z0-9_-]{1,64}$/.test(n) && !n.includes("__")), format).toBe(true);
    }
    const anthropic = await listTools(key, "anthropic");
    const byName = Object.fromEntries((anthropic.body.tools as Schema[]).map((t) => [t.name, t.description as string]));
    // Oldest account first (no route).
    const limits = "(Max 10 recipients per message. 100 of 100 messages left today (UTC).)";
    expect(byName.sms_send).toContain(
      `Accounts (pass account to choose one): ClickSend = ${c.clicksend.id} ${limits}; Second SMS = ${second.id} ${limits}.`);
    expect(byName.sms_send).not.toContain("Without account, your route tries");
    // One account for balance (only the first grant has that scope) and for mail: described as before.
    expect(byName.clicksend_get_balance).not.toContain("Accounts");
    expect(byName.email_send).not.toContain("Accounts");

    const raw = await listTools(key, "raw");
    const sms = (raw.body.tools as Schema[]).find((t) => t.name === "sms_send")!;
    expect(sms).toMatchObject({ capability: "sms_send", provider: "clicksend_sms", connection_id: null, connection_name: null });
    expect(sms.limits).toEqual({
      accounts: [
        { connection_id: c.clicksend.id, connection_name: "ClickSend", limits: expect.objectContaining({ daily_send_limit: 100, remaining_today: 100 }) },
        { connection_id: second.id, connection_name: "Second SMS", limits: expect.objectContaining({ daily_send_limit: 100, remaining_today: 100 }) },
      ],
    });
    const balance = (raw.body.tools as Schema[]).find((t) => t.name === "clicksend_get_balance")!;
    expect(balance).toMatchObject({ connection_id: c.clicksend.id, connection_name: "ClickSend", provider: "clicksend_sms" });
  });

  it("sms_send with account sends through that account (and the old suffixed provider names still do)", async () => {
    for (const [connectionId, username] of [[c.clicksend.id, "demo"], [second.id, "nocredit"]] as const) {
      const text = body(`via ${username}`);
      const res = await callTool(key, "sms_send", { to: ["+61412000003"], body: text, account: connectionId });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
      expect(res.body.failed_over).toBeUndefined();
      const row = await operation(res.body.operation_id);
      expect(row).toMatchObject({ connection_id: connectionId, status: "succeeded", capability_key: "sms_send" });
      const received = (await fakeMessages()).find((m) => m.custom_string === res.body.operation_id);
      expect(received, "the fake received the message").toBeDefined();
      expect(received).toMatchObject({ username, body: text, to: "+61412000003" });

      const legacy = await callTool(key, `clicksend_send_sms__${suffix(connectionId)}`, { to: ["+61412000003"], body: body(`legacy ${username}`) });
      expect(legacy.status, JSON.stringify(legacy.body)).toBe(200);
      expect(await operation(legacy.body.operation_id)).toMatchObject({ connection_id: connectionId, capability_key: "clicksend_send_sms" });
      expect((await fakeMessages()).find((m) => m.custom_string === legacy.body.operation_id)).toMatchObject({ username });
    }
  });

  it("without account (and no route) the choice is ambiguous (400 naming both); account or connection_id picks one", async () => {
    const before = (await fakeMessages()).length;
    for (const args of [{}, { account: null }]) {
      const bare = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), ...args });
      expect(bare.status, JSON.stringify(bare.body)).toBe(400);
      expect(bare.body.error).toMatchObject({ code: "invalid_request", details: { reason: "ambiguous_connection" } });
      expect([...bare.body.error.details.accounts].sort()).toEqual([c.clicksend.id, second.id].sort());
    }
    // The provider's own tool by name is just as ambiguous.
    const bareProvider = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() });
    expect(bareProvider.status).toBe(400);
    expect(bareProvider.body.error).toMatchObject({ code: "invalid_request", details: { reason: "ambiguous_connection" } });
    expect((await fakeMessages()).length).toBe(before);

    const picked = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: second.id });
    expect(picked.status, JSON.stringify(picked.body)).toBe(200);
    expect((await operation(picked.body.operation_id)).connection_id).toBe(second.id);
    const viaField = await callTool(key, "sms_send", { to: ["+61411111111"], body: body() }, { connection_id: second.id });
    expect(viaField.status, JSON.stringify(viaField.body)).toBe(200);
    expect((await operation(viaField.body.operation_id)).connection_id).toBe(second.id);
    const agreeing = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: second.id }, { connection_id: second.id });
    expect(agreeing.status, JSON.stringify(agreeing.body)).toBe(200);
    const providerPicked = await callTool(key, "clicksend_send_sms", { to: ["+61411111111"], body: body() }, { connection_id: second.id });
    expect(providerPicked.status, JSON.stringify(providerPicked.body)).toBe(200);
    expect((await operation(providerPicked.body.operation_id)).connection_id).toBe(second.id);
  });

  it("an account argument that is not a uuid, that contradicts connection_id, or names no granted account is refused", async () => {
    const before = (await fakeMessages()).length;
    for (const bad of ["not-a-uuid", 42, suffix(second.id)]) {
      const res = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error).toMatchObject({ code: "invalid_request", details: { field: "account" } });
    }
    const contradicts = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: c.clicksend.id },
      { connection_id: second.id });
    expect(contradicts.status).toBe(400);
    expect(contradicts.body.error.code).toBe("invalid_request");
    expect(contradicts.body.error.message).toMatch(/differ/);

    const foreign = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: randomUUID() });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account" } });
    // The mail account is not an SMS account.
    const wrongChannel = await callTool(key, "sms_send", { to: ["+61411111111"], body: body(), account: c.smtp.id });
    expect(wrongChannel.status).toBe(403);
    expect(wrongChannel.body.error.details.reason).toBe("no_usable_account");
    // A provider tool takes account too: balance on the account without the balance scope is refused.
    const balance = await callTool(key, "clicksend_get_balance", { account: c.clicksend.id });
    expect(balance.status, JSON.stringify(balance.body)).toBe(200);
    expect((await operation(balance.body.operation_id)).connection_id).toBe(c.clicksend.id);
    const noScope = await callTool(key, "clicksend_get_balance", { account: second.id });
    expect(noScope.status).toBe(403);
    expect(noScope.body.error.details).toMatchObject({ reason: "scope", required_scope: "balance" });
    expect((await fakeMessages()).length).toBe(before);
  });

  it("a suffix that names no granted account is refused", async () => {
    const res = await callTool(key, "clicksend_send_sms__00000000", { to: ["+61411111111"], body: body() });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe("no_grant");
  });

  it("a channel tool takes no name suffix: 400, nothing sent (the account argument picks the account)", async () => {
    const before = (await fakeMessages()).length;
    for (const name of ["sms_send__00000000", `sms_send__${second.id.slice(0, 8)}`]) {
      const res = await callTool(key, name, { to: ["+61411111111"], body: body() });
      expect(res.status, name).toBe(400);
      expect(res.body.error).toMatchObject({ code: "invalid_request", message: "sms_send takes the account argument, not a name suffix" });
    }
    expect((await fakeMessages()).length).toBe(before);
  });

  it("with a route, the description lists the accounts in the route's order and sms_send follows it without account", async () => {
    const workspaceId = (await adminSql()`select workspace_id from public.connections where id = ${second.id}`)[0].workspace_id;
    await rpc(c.user, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [second.id, c.clicksend.id] });
    try {
      const raw = await listTools(key, "raw");
      const sms = (raw.body.tools as Schema[]).find((t) => t.name === "sms_send")!;
      expect(sms.limits.accounts.map((a: Schema) => a.connection_id)).toEqual([second.id, c.clicksend.id]);
      expect(sms.description).toMatch(new RegExp(
        `Accounts \\(pass account to choose one\\): Second SMS = ${second.id} \\(.*\\); ClickSend = ${c.clicksend.id} \\(.*\\)\\. ` +
        `Without account, your route tries Second SMS, ClickSend, in this order, while a provider refuses\\.`));

      const res = await callTool(key, "sms_send", { to: ["+61412000004"], body: body("routed") });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
      expect((await operation(res.body.operation_id)).connection_id).toBe(second.id);
      // account still wins over the route.
      const named = await callTool(key, "sms_send", { to: ["+61412000004"], body: body("named"), account: c.clicksend.id });
      expect((await operation(named.body.operation_id)).connection_id).toBe(c.clicksend.id);
    } finally {
      await rpc(c.user, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [] });
    }
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

    // The listed channel tool sends through the agent's one SMS account and says which provider took it.
    const text = body("channel");
    const channel = await callTool(key, "sms_send", { to: ["+61412000012"], body: text });
    expect(channel.status, JSON.stringify(channel.body)).toBe(200);
    expect(channel.body).toMatchObject({ status: "succeeded", sent: 1, failed: 0, provider: "clicksend_sms" });
    expect(channel.body.failed_over).toBeUndefined();
    expect(channel.body.provider_message_ids).toHaveLength(1);
    expect(await operation(channel.body.operation_id)).toMatchObject({
      auth_mode: "agent_key", agent_id: agentId, user_id: c.user.id, connection_id: c.clicksend.id, status: "succeeded",
      capability_key: "sms_send",
    });
    const fake = await (await fetch(`${status().CLICKSEND_FAKE_URL.replace(/\/v3$/, "")}/__fake/messages`)).json() as { messages: any[] };
    expect(fake.messages.find((m) => m.custom_string === channel.body.operation_id)).toMatchObject({ username: "demo", body: text, to: "+61412000012" });
  });

  it("works with the user's JWT plus agent_id (GET and POST)", async () => {
    expect(await toolNames(c.user.token, { agent_id: agentId })).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
    const res = await callTool(c.user.token, "email_send", { to: ["ada@example.com"], subject: "JWT", text: body() }, { agent_id: agentId });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "smtp" });
    expect(await operation(res.body.operation_id)).toMatchObject({
      auth_mode: "user_agent", agent_id: agentId, status: "succeeded", connection_id: c.smtp.id, capability_key: "email_send",
    });
  });

  it("works with the service key plus user_id and agent_id (GET and POST)", async () => {
    const ids = { user_id: c.user.id, agent_id: agentId };
    expect(await toolNames(status().SERVICE_ROLE_KEY, ids)).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
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

  it("accepts OpenAI strict-mode calls: null for every optional argument (account, idempotency_key and dry_run included)", async () => {
    const res = await listTools(key, "openai");
    const given: Record<string, Record<string, unknown>> = {
      sms_send: { to: ["+61412000011"], body: body("strict") },
      clicksend_get_balance: {},
      email_send: { to: ["grace@example.com"], subject: "Strict", text: body("strict") },
      message_status: {},
    };
    expect((res.body.tools as Schema[]).map((t) => t.function.name).sort()).toEqual(Object.keys(given).sort());
    const made: string[] = [];
    for (const tool of res.body.tools as Schema[]) {
      const name = tool.function.name as string;
      const props = Object.keys(tool.function.parameters.properties);
      const sends = name.endsWith("_send");
      if (name === "message_status") {
        expect(props.sort(), name).toEqual(["limit", "operation_ids"]);
      } else {
        expect(props, name).toContain("account");
      }
      for (const sendArgument of ["idempotency_key", "dry_run"]) {
        if (sends) expect(props, name).toContain(sendArgument);
        else expect(props, name).not.toContain(sendArgument);
      }
      const args = Object.fromEntries(props.map((p) => [p, given[name]![p] ?? null]));
      if (name !== "message_status") expect(args.account, name).toBeNull();
      expect(ajv.validate(tool.function.parameters, args), `${name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
      const call = await callTool(key, name, args);
      expect(call.status, `${name}: ${JSON.stringify(call.body)}`).toBe(200);
      if (name === "message_status") {
        // Listed last: the agent's own operations, newest first, include the calls this loop made.
        expect(made).toHaveLength(3);
        expect(call.body.operations.map((o: Schema) => o.operation_id), JSON.stringify(call.body)).toEqual(expect.arrayContaining(made));
      } else {
        expect(call.body.status).toBe("succeeded");
        made.push(call.body.operation_id);
      }
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
    // The channel tool validates the same way, before it picks an account.
    const channel = await callTool(key, "sms_send", { to: [], body: "", surprise: 1 });
    expect(channel.status).toBe(400);
    expect(channel.body.error.code).toBe("invalid_request");
    expect((channel.body.error.details.issues as { path: string }[]).map((i) => i.path)).toEqual(expect.arrayContaining(["to", "body"]));
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
    // mms_send is not listed, and has no account to send on.
    const mmsChannel = await callTool(key, "mms_send", { to: ["+61411111111"], body: "pic", media_urls: ["https://example.com/a.jpg"] });
    expect(mmsChannel.status).toBe(403);
    expect(mmsChannel.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_usable_account", channel: "mms" } });
    expect(await operation(mmsChannel.body.error.details.operation_id)).toMatchObject({ status: "denied", capability_key: "mms_send" });
  });

  it("recipient rules and per-message limits are 403s with the reason", async () => {
    // The same rules hold through the provider's tool and through the channel tool.
    for (const [sms, mail] of [["clicksend_send_sms", "smtp_send_email"], ["sms_send", "email_send"]]) {
      const blocked = await callTool(key, sms, { to: ["+61491570006"], body: body() });
      expect(blocked.status, sms).toBe(403);
      expect(blocked.body.error.details).toMatchObject({ reason: "recipient_not_allowed", recipient: "+61491570006" });
      const outside = await callTool(key, mail, { to: ["eve@evil.test"], subject: "x", text: body() });
      expect(outside.status, mail).toBe(403);
      expect(outside.body.error.details.reason).toBe("recipient_not_allowed");
      const many = await callTool(key, sms, { to: ["+61412000021", "+61412000022", "+61412000023", "+61412000024"], body: body() });
      expect(many.status, sms).toBe(403);
      expect(many.body.error.details).toMatchObject({ reason: "recipient_limit", max_recipients_per_message: 3 });
    }
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
