/**
 * Output schemas end to end: every tool an agent lists over MCP declares an `outputSchema`,
 * and what the tools really answer conforms to it — a send through each provider (ClickSend,
 * SMTP, SendGrid, Twilio, Telnyx with a failover, Exotel), a partial send, replays (one of a
 * send whose outcome was lost, then settled by the provider reconciler), dry runs allowed and
 * refused, reads (balances, history) and message_status with a delivery report. The calls go through POST /agent-tools, the runTool the MCP server answers with; the MCP
 * SDK's client, which checks `structuredContent` against the listed `outputSchema` itself,
 * then calls some of them over MCP, and still hands over a refusal as a tool error (its
 * envelope fits the schema too, as that client checks error results as well). Deliberately
 * wrong results are refused, so no schema is vacuous.
 */
import Ajv2020 from "ajv/dist/2020.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXOTEL_FAKE_ACCOUNT } from "../../packages/devstack/src/fakes/exotel.ts";
import { TELNYX_FAKE_API_KEY } from "../../packages/devstack/src/fakes/telnyx.ts";
import { TWILIO_FAKE_ACCOUNT, TWILIO_FAKE_AUTH_TOKEN, TWILIO_FAKE_NUMBERS } from "../../packages/devstack/src/fakes/twilio.ts";
import {
  agentWithKey, callFunction, connectedUser, type Connected, eventually, loseOutcome, routeClickSendWebhooks, rpc,
} from "./fixtures.ts";
import { closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

type Json = Record<string, any>;

const ajv = new Ajv2020({ strict: false, allErrors: true });
// The two formats the output schemas use, checked as an MCP client checks them.
ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);

/** The agent's tools as MCP lists them: name → outputSchema (every one valid 2020-12, an object at the root). */
async function outputSchemas(key: string): Promise<Map<string, Json>> {
  const res = await callFunction("agent-tools?format=mcp", key);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const schemas = new Map<string, Json>();
  for (const tool of res.body.tools as Json[]) {
    expect(tool.outputSchema?.type, tool.name).toBe("object");
    expect(ajv.validateSchema(tool.outputSchema), `${tool.name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
    schemas.set(tool.name, tool.outputSchema);
  }
  return schemas;
}

/** The schema's verdict on a value: null when it conforms, else what is wrong. */
function violations(schema: Json, value: unknown): string | null {
  return ajv.validate(schema, value) ? null : ajv.errorsText(ajv.errors);
}

/**
 * Calls a tool through POST /agent-tools; a 200 answer must conform to the tool's listed
 * output schema. Returns the answer.
 */
async function call(schemas: Map<string, Json>, key: string, name: string, args: Json): Promise<Json> {
  const res = await callFunction("agent-tools", key, { body: { name, arguments: args } });
  expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(200);
  expect(schemas.has(name), `${name} is listed`).toBe(true);
  expect(violations(schemas.get(name)!, res.body), `${name}: ${JSON.stringify(res.body)}`).toBeNull();
  return res.body;
}

async function fake(base: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

/** A fresh body (the ClickSend fake throttles a repeated body to one number). */
const body = (what: string) => `${what} ${randomUUID().slice(0, 8)}`;

afterAll(closeAdminSql);

describe("ClickSend, SMTP and SendGrid: what the tools answer conforms to their output schemas", () => {
  let c: Connected;
  let key: string;
  let schemas: Map<string, Json>;
  /** A real sms_send result, the base of the deliberately wrong ones. */
  let sent: Json;

  beforeAll(async () => {
    c = await connectedUser();
    await routeClickSendWebhooks(c.clicksend.webhook_token, "json");
    ({ key } = await agentWithKey(c.user, [
      { connectionId: c.clicksend.id, scopes: ["sms", "mms", "balance", "history"], blockedRecipients: ["+61499"] },
      { connectionId: c.smtp.id, scopes: ["email"] },
      { connectionId: c.sendgrid.id, scopes: ["email"] },
    ], "schema checker"));
    schemas = await outputSchemas(key);
    sent = await call(schemas, key, "sms_send", { to: ["+61411120001"], body: body("hello") });
  });

  it("every listed tool declares one", () => {
    expect([...schemas.keys()].sort()).toEqual([
      "clicksend_get_balance", "clicksend_get_mms_history", "clicksend_get_sms_history", "email_send", "message_status",
      "mms_send", "sms_send",
    ]);
  });

  it("a send: succeeded, through its provider", () => {
    expect(sent).toMatchObject({ status: "succeeded", provider: "clicksend_sms", sent: 1, failed: 0 });
  });

  it("a partial send: one recipient refused by the provider", async () => {
    // China is not enabled on the fake's account: ClickSend refuses that one message inside a 200.
    const partial = await call(schemas, key, "sms_send", { to: ["+61411120002", "+8615555555555"], body: body("some") });
    expect(partial).toMatchObject({ status: "partial", sent: 1, failed: 1 });
  });

  it("a replay of the same idempotency key", async () => {
    const args = { to: ["+61411120003"], body: body("once"), idempotency_key: `schema-${randomUUID()}` };
    const first = await call(schemas, key, "sms_send", args);
    const again = await call(schemas, key, "sms_send", args);
    expect(again).toMatchObject({ operation_id: first.operation_id, replayed: true });
  });

  it("a replay of a send whose outcome was lost, then settled from the provider's history", async () => {
    const args = { to: ["+61411120008"], body: body("lost"), idempotency_key: `schema-${randomUUID()}` };
    const first = await call(schemas, key, "sms_send", args);
    await loseOutcome(first.operation_id);
    const settled = await callFunction("clicksend/reconcile", status().SECRET_KEY, { body: {}, headers: { apikey: status().SECRET_KEY } });
    expect(settled.status, JSON.stringify(settled.body)).toBe(200);
    const again = await call(schemas, key, "sms_send", args);
    expect(again).toMatchObject({ operation_id: first.operation_id, replayed: true, reconciled: { by: "provider_history" } });
  });

  it("an MMS", async () => {
    const mms = await call(schemas, key, "mms_send", { to: ["+61411120004"], body: "Look", media_urls: ["https://cdn.example.com/a.jpg"] });
    expect(mms).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
  });

  it("mail through SMTP and through SendGrid", async () => {
    for (const account of [c.smtp.id, c.sendgrid.id]) {
      const mail = await call(schemas, key, "email_send", { to: ["ada@example.com"], subject: "Hi", text: "Hello", account });
      expect(mail).toMatchObject({ status: "succeeded", sent: 1 });
    }
  });

  it("dry runs, allowed and refused", async () => {
    const allowed = await call(schemas, key, "sms_send", { to: ["+61411120005"], body: "maybe", dry_run: true });
    expect(allowed).toMatchObject({ dry_run: true, allowed: true, connection_id: c.clicksend.id });
    const refused = await call(schemas, key, "sms_send", { to: ["+61499000000"], body: "blocked", dry_run: true });
    expect(refused).toMatchObject({ dry_run: true, allowed: false, reason: "recipient_not_allowed", hint: expect.any(String) });
    const mail = await call(schemas, key, "email_send", { to: ["ada@example.com"], subject: "Hi", text: "Hello", account: c.smtp.id, dry_run: true });
    expect(mail).toMatchObject({ dry_run: true, allowed: true });
  });

  it("reads: the balance and a page of history", async () => {
    expect(await call(schemas, key, "clicksend_get_balance", {})).toMatchObject({ status: "succeeded" });
    expect(await call(schemas, key, "clicksend_get_sms_history", { limit: 15 })).toMatchObject({ records: expect.any(Array) });
  });

  it("message_status, with the provider's delivery report", async () => {
    const answer = await eventually(async () => {
      const status = await call(schemas, key, "message_status", { operation_ids: [sent.operation_id] });
      return status.operations[0]?.events?.length > 0 && status;
    });
    expect(answer.operations[0]).toMatchObject({ operation_id: sent.operation_id, status: "succeeded", events: [{ type: "delivery" }] });
    // Every send so far, denied ones aside.
    expect(await call(schemas, key, "message_status", { limit: 50 })).toMatchObject({ operations: expect.any(Array) });
  });

  it("refuses deliberately wrong results: the schemas are not vacuous", async () => {
    const sms = schemas.get("sms_send")!;
    const { operation_id: _, ...withoutId } = sent;
    const wrong: Array<[string, Json, unknown]> = [
      ["a send none accepted (an error, never a result)", sms, { ...sent, status: "failed" }],
      ["a send without its operation id", sms, withoutId],
      ["a channel send without its provider", sms, { ...sent, provider: undefined }],
      ["a recipient whose ok is not a boolean", sms, { ...sent, recipients: [{ ...sent.recipients[0], ok: "yes" }] }],
      ["a verdict with allowed as a string", sms, { dry_run: true, allowed: "yes" }],
      ["an allowed verdict with an unknown field", sms, {
        dry_run: true, allowed: true, connection_id: null, provider: null, sender: null, remaining_today: null,
        remaining_this_month: null, surprise: 1,
      }],
      ["a refused verdict without its reason", sms, { dry_run: true, allowed: false, error: { code: "x", message: "y", details: {} } }],
      ["a read that did not succeed", schemas.get("clicksend_get_balance")!, { operation_id: sent.operation_id, status: "partial" }],
      ["an operation with a denied status", schemas.get("message_status")!, {
        operations: [{ operation_id: sent.operation_id, tool: "sms_send", status: "denied", created_at: "2026-11-28T10:00:00Z",
          recipient_count: 1, sender: null, provider_message_ids: [], error_code: "permission_denied", events: [] }],
      }],
      ["an error envelope with a code that is not ours", sms, { error: { code: "teapot", message: "?", details: null } }],
      ["an array", sms, []],
    ];
    for (const [what, schema, value] of wrong) {
      expect(violations(schema, JSON.parse(JSON.stringify(value))), what).not.toBeNull();
    }
  });

  it("over MCP, the SDK's client checks structuredContent against outputSchema itself, and still hands over a refusal", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${status().FUNCTIONS_URL}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    const client = new Client({ name: "switchboard-e2e-output-schemas", version: "1.0.0" });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.every((t) => t.outputSchema?.type === "object")).toBe(true);
      for (const [name, args] of [
        ["sms_send", { to: ["+61411120006"], body: body("mcp") }],
        ["sms_send", { to: ["+61411120007"], body: "maybe", dry_run: true }],
        ["clicksend_get_balance", {}],
        ["message_status", { limit: 5 }],
      ] as const) {
        const result = await client.callTool({ name, arguments: args });
        expect(result.isError, `${name}: ${JSON.stringify(result.structuredContent)}`).toBeFalsy();
        expect(result.structuredContent).toBeDefined();
      }
      const refused = await client.callTool({ name: "sms_send", arguments: { to: ["+61499000001"], body: "blocked" } });
      expect(refused.isError).toBe(true);
      expect(refused.structuredContent).toMatchObject({ error: { code: "permission_denied" } });
    } finally {
      await client.close();
    }
  });
});

describe("Twilio, Telnyx and Exotel: what the tools answer conforms to their output schemas", () => {
  let owner: TestUser;
  let key: string;
  let schemas: Map<string, Json>;
  const twilio = () => status().TWILIO_FAKE_URL;

  beforeAll(async () => {
    owner = await newUser();
    const { data: workspaces } = await owner.client.from("workspaces").select("id").eq("personal", true);
    const connect = (provider: string, credentials: Json, config: Json) =>
      rpc<{ id: string }>(owner, "create_connection", { p_provider: provider, p_name: provider, p_credentials: credentials, p_config: config });
    const twilioAccount = await connect("twilio", { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN }, { base_url: twilio() });
    const telnyxAccount = await connect("telnyx", { api_key: TELNYX_FAKE_API_KEY }, { base_url: status().TELNYX_FAKE_URL });
    const exotelAccount = await connect("exotel", { api_key: EXOTEL_FAKE_ACCOUNT.apiKey, api_token: EXOTEL_FAKE_ACCOUNT.apiToken },
      { account_sid: EXOTEL_FAKE_ACCOUNT.sid, base_url: status().EXOTEL_FAKE_URL });
    for (const [fn, account] of [["twilio", twilioAccount], ["telnyx", telnyxAccount], ["exotel", exotelAccount]] as const) {
      const sync = await callFunction(`${fn}/numbers/sync`, owner.token, { body: { connection_id: account.id } });
      expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    }
    await rpc(owner, "set_route", { p_workspace_id: workspaces![0].id, p_channel: "sms", p_connection_ids: [twilioAccount.id, telnyxAccount.id] });
    ({ key } = await agentWithKey(owner, [
      { connectionId: twilioAccount.id, scopes: ["sms", "whatsapp", "balance"] },
      { connectionId: telnyxAccount.id, scopes: ["sms", "balance"] },
      { connectionId: exotelAccount.id, scopes: ["voice"] },
    ], "schema checker (messaging)"));
    schemas = await outputSchemas(key);
  });

  it("an SMS down the route, and one that fails over from Twilio to Telnyx", async () => {
    expect(await call(schemas, key, "sms_send", { to: ["+14155550171"], body: "first" })).toMatchObject({ provider: "twilio" });
    await fake(twilio(), "/__fake/faults", { mode: "http429", count: 1 });
    const moved = await call(schemas, key, "sms_send", { to: ["+14155550172"], body: "moved" });
    expect(moved).toMatchObject({ provider: "telnyx", failed_over: [{ provider: "twilio", error_code: "rate_limited" }] });
  });

  it("a WhatsApp template through Twilio", async () => {
    const wa = await call(schemas, key, "whatsapp_send", {
      to: ["+14155550173"], template: { id: "HX0123456789abcdef0123456789abcdef", variables: ["Ada"] }, from: TWILIO_FAKE_NUMBERS.whatsapp,
    });
    expect(wa).toMatchObject({ provider: "twilio", status: "succeeded" });
  });

  it("the balances", async () => {
    expect(await call(schemas, key, "twilio_get_balance", {})).toMatchObject({ balance: expect.any(Number) });
    expect(await call(schemas, key, "telnyx_get_balance", {})).toMatchObject({ status: "succeeded" });
  });

  it("an Exotel click-to-call, and its dry run", async () => {
    const callArgs = { from_phone: "+919900000001", to: "+919900000002" };
    expect(await call(schemas, key, "exotel_click_to_call", callArgs)).toMatchObject({ channel: "voice", sent: 1 });
    expect(await call(schemas, key, "exotel_click_to_call", { ...callArgs, dry_run: true })).toMatchObject({ allowed: true });
  });
});
