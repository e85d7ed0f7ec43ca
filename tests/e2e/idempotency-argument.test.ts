/**
 * Agents that cannot set headers retry safely: every send tool (the channel tools
 * agents are given, and the provider tools callable by name) takes an optional
 * `idempotency_key` argument, in its OpenAI, Anthropic and MCP schemas alike, treated
 * exactly like the Idempotency-Key header. A retry with the same key replays the first
 * outcome and sends nothing; a key that is not a key, or one that disagrees with the
 * header, is refused before anything is sent; read-only tools do not take it.
 */
import { randomUUID } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, callFunction, clicksendFake, connectedUser, type Connected, usedToday } from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

/** The send tools listed to agents: one per channel (the provider send tools are not listed). */
const SEND_TOOLS = ["email_send", "mms_send", "sms_send"];
/** The provider send tools: callable by name (agent-tools, MCP) and the providers' REST routes. */
const PROVIDER_SEND_TOOLS = ["clicksend_send_mms", "clicksend_send_sms", "sendgrid_send_email", "smtp_send_email"];
const READ_TOOLS = ["clicksend_get_balance", "clicksend_get_mms_history", "clicksend_get_sms_history", "message_status"];
/** The read-only tool the database answers alone: it takes no account either. */
const STATUS_TOOL = "message_status";

let world: Connected;
let key: string;
let smsGrantId: string;

const sms = (text: string, extra: Record<string, unknown> = {}) => ({ to: ["+61411111111"], body: text, ...extra });
const sentWith = async (text: string) => (await clicksendFake.messages()).filter((m) => m.body === text).length;
const callTool = (name: string, args: unknown, headers: Record<string, string> = {}) =>
  callFunction("agent-tools", key, { body: { name, arguments: args }, headers });

beforeAll(async () => {
  world = await connectedUser();
  const made = await agentWithKey(world.user, [
    { connectionId: world.clicksend.id, scopes: ["sms", "mms", "balance", "history"] },
    { connectionId: world.sendgrid.id, scopes: ["email"] },
    { connectionId: world.smtp.id, scopes: ["email"] },
  ]);
  key = made.key;
  smsGrantId = made.permissions[0].id;
});

afterAll(closeAdminSql);

describe("the idempotency_key argument", () => {
  it("is in every send tool's schema, in every format, optional, and in no read-only tool", async () => {
    for (const format of ["openai", "anthropic", "mcp", "raw"]) {
      const res = await callFunction(`agent-tools?format=${format}`, key);
      expect(res.status).toBe(200);
      expect((res.body.tools as any[]).map((t) => t.name ?? t.function?.name).sort(), format).toEqual([...SEND_TOOLS, ...READ_TOOLS].sort());
      for (const tool of res.body.tools as any[]) {
        const name: string = tool.name ?? tool.function?.name;
        const schema = tool.input_schema ?? tool.inputSchema ?? tool.function?.parameters ?? tool.parameters;
        const property = schema.properties.idempotency_key;
        if (SEND_TOOLS.includes(name)) {
          // OpenAI strict mode has no maxLength: the pattern and the description carry the rule there.
          if (format !== "openai") expect(property, `${format} ${name}`).toMatchObject({ maxLength: 255 });
          expect(property.pattern, `${format} ${name}`).toBeTypeOf("string");
          expect(property.description, `${format} ${name}`).toMatch(/retry/i);
          if (format === "openai") expect(property.type, name).toEqual(["string", "null"]); // strict: nullable, required
          else expect(schema.required ?? [], `${format} ${name}`).not.toContain("idempotency_key");
          // Every send tool also takes the optional dry_run argument.
          expect(schema.properties.dry_run, `${format} ${name}`).toMatchObject({ type: format === "openai" ? ["boolean", "null"] : "boolean" });
          if (format !== "openai") expect(schema.required ?? [], `${format} ${name}`).not.toContain("dry_run");
        } else {
          expect(READ_TOOLS, `${format} ${name}`).toContain(name);
          expect(property, `${format} ${name}`).toBeUndefined();
          expect(schema.properties.dry_run, `${format} ${name}`).toBeUndefined();
        }
        if (name === STATUS_TOOL) {
          // message_status has no account to choose: its own two arguments only.
          expect(Object.keys(schema.properties).sort(), `${format} ${name}`).toEqual(["limit", "operation_ids"]);
          continue;
        }
        // Every other tool, send or not, takes the optional account argument.
        expect(schema.properties.account, `${format} ${name}`).toMatchObject({ format: "uuid" });
        if (format === "openai") expect(schema.properties.account.type, name).toEqual(["string", "null"]);
        else expect(schema.required ?? [], `${format} ${name}`).not.toContain("account");
      }
    }
  });

  it("is in the schemas of the provider send tools too (callable by name, not listed)", async () => {
    const rows = await adminSql()`
      select capability_key, input_schema, strict_input_schema from public.integration_capabilities
      where capability_key in ${adminSql()(PROVIDER_SEND_TOOLS)} order by capability_key`;
    expect(rows.map((r) => r.capability_key)).toEqual([...PROVIDER_SEND_TOOLS].sort());
    for (const row of rows) {
      expect(row.input_schema.properties.idempotency_key, row.capability_key).toMatchObject({ maxLength: 255, pattern: expect.any(String) });
      expect(row.input_schema.required ?? [], row.capability_key).not.toContain("idempotency_key");
      expect(row.strict_input_schema.properties.idempotency_key.type, row.capability_key).toEqual(["string", "null"]);
      expect(row.input_schema.properties.account, row.capability_key).toMatchObject({ type: "string", format: "uuid" });
      expect(row.input_schema.properties.dry_run, row.capability_key).toMatchObject({ type: "boolean" });
      expect(row.strict_input_schema.properties.dry_run.type, row.capability_key).toEqual(["boolean", "null"]);
    }
  });

  it("over agent-tools: a retry with the same key replays the first outcome and sends nothing", async () => {
    const text = `arg-${randomUUID()}`;
    const idempotencyKey = `order-${randomUUID()}`;
    const before = await usedToday(smsGrantId);
    const first = await callTool("sms_send", sms(text, { idempotency_key: idempotencyKey }));
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
    const again = await callTool("sms_send", sms(text, { idempotency_key: idempotencyKey }));
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true, provider: "clicksend_sms" });
    // The header and the argument are one key: the same request either way.
    const viaHeader = await callTool("sms_send", sms(text), { "Idempotency-Key": idempotencyKey });
    expect(viaHeader.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true });
    // OpenAI strict mode: null for the optional arguments it leaves out (account, from) is the same request.
    const strictNulls = await callTool("sms_send", sms(text, { idempotency_key: idempotencyKey, account: null, from: null }));
    expect(strictNulls.status, JSON.stringify(strictNulls.body)).toBe(200);
    expect(strictNulls.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true });

    expect(await sentWith(text)).toBe(1);
    expect(await usedToday(smsGrantId)).toBe(before + 1);
    const [row] = await adminSql()`select idempotency_key, request_summary from public.operations where id = ${first.body.operation_id}`;
    expect(row.idempotency_key).toBe(idempotencyKey);
    expect(JSON.stringify(row.request_summary)).not.toContain(idempotencyKey); // steers the call, not part of it
  });

  it("over MCP: tools/call with the same key replays", async () => {
    const text = `mcp-${randomUUID()}`;
    const idempotencyKey = `mcp-${randomUUID()}`;
    const transport = new StreamableHTTPClientTransport(new URL(`${status().FUNCTIONS_URL}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    const client = new Client({ name: "idempotency-e2e", version: "1.0.0" });
    await client.connect(transport);
    try {
      const call = () => client.callTool({ name: "sms_send", arguments: sms(text, { idempotency_key: idempotencyKey }) });
      const first = await call();
      expect(first.isError, JSON.stringify(first)).toBeFalsy();
      const second = await call();
      expect(second.structuredContent).toMatchObject({
        operation_id: (first.structuredContent as any).operation_id,
        replayed: true,
      });
    } finally {
      await client.close();
    }
    expect(await sentWith(text)).toBe(1);
  });

  it("refuses a key that is not a key, or one the header contradicts, before anything is sent", async () => {
    const text = `bad-${randomUUID()}`;
    for (const name of ["sms_send", "clicksend_send_sms"]) {
      for (const bad of ["", "x".repeat(256), "line\nbreak", 42, { a: 1 }]) {
        const res = await callTool(name, sms(text, { idempotency_key: bad }));
        expect(res.status, `${name} ${JSON.stringify(bad)}`).toBe(400);
        expect(res.body.error.code).toBe("invalid_request");
      }
      const mismatch = await callTool(name, sms(text, { idempotency_key: "one" }), { "Idempotency-Key": "two" });
      expect(mismatch.status, name).toBe(400);
      expect(mismatch.body.error.message).toMatch(/differ/);
    }
    expect(await sentWith(text)).toBe(0);
  });

  it("is not an argument of read-only tools (their strict schemas refuse it)", async () => {
    for (const [name, value] of [["clicksend_get_balance", "balance-1"], [STATUS_TOOL, "status-1"]]) {
      const res = await callTool(name!, { idempotency_key: value });
      expect(res.status, name).toBe(400);
      expect(JSON.stringify(res.body.error.details), name).toMatch(/idempotency_key/);
    }
  });
});
