/**
 * Twilio, Telnyx and Exotel end to end, through the public surface against their fakes:
 * connect an account (credentials to Vault), sync its numbers, send as an agent (from the
 * synced number, with the connection's own status-callback URL), receive the signed
 * delivery report as a normalised event linked to the operation, refuse forged webhooks,
 * attribute an inbound message to the member its number is assigned to, give quota back
 * for a send the provider refused at the account level, and place an Exotel click-to-call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXOTEL_FAKE_ACCOUNT } from "../../packages/devstack/src/fakes/exotel.ts";
import { TELNYX_FAKE_API_KEY, TELNYX_FAKE_NUMBERS } from "../../packages/devstack/src/fakes/telnyx.ts";
import { TWILIO_FAKE_ACCOUNT, TWILIO_FAKE_AUTH_TOKEN, TWILIO_FAKE_NUMBERS, twilioSignature } from "../../packages/devstack/src/fakes/twilio.ts";
import { agentWithKey, callFunction, eventually } from "./fixtures.ts";
import { adminSql, closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

async function rpc<T = any>(user: TestUser, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await user.client.rpc(fn, args);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

async function fake(base: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const twilioBase = () => status().TWILIO_FAKE_URL;
const telnyxBase = () => status().TELNYX_FAKE_URL.replace(/\/v2\/?$/, "");
const exotelBase = () => status().EXOTEL_FAKE_URL;

/** The events recorded for an operation, as its owner reads them (RLS). */
async function eventsOf(user: TestUser, operationId: string) {
  const { data, error } = await user.client.from("message_events")
    .select("event_type, status, delivery_status, channel, provider_message_id").eq("operation_id", operationId);
  if (error) throw new Error(error.message);
  return data ?? [];
}

async function operation(id: string) {
  const [row] = await adminSql()`select status, quota_reserved, quota_used, sender, provider_message_ids from public.operations where id = ${id}`;
  return row;
}

let owner: TestUser;
afterAll(async () => {
  await closeAdminSql();
});
beforeAll(async () => {
  owner = await newUser();
});

describe("Twilio", () => {
  let connection: { id: string; webhook_token: string };
  let agentKey: string;

  beforeAll(async () => {
    await fake(twilioBase(), "/__fake/reset", {});
    connection = await rpc(owner, "create_connection", {
      p_provider: "twilio", p_name: "Twilio",
      p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN },
      p_config: { base_url: twilioBase() },
    });
    ({ key: agentKey } = await agentWithKey(owner, [{ connectionId: connection.id, scopes: ["sms", "mms", "whatsapp", "balance"] }]));
  });

  it("rejects a config field of the wrong form when the connection is stored (the provider's config schema)", async () => {
    const { error } = await owner.client.rpc("create_connection", {
      p_provider: "twilio", p_name: "Bad", p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: "x" },
      p_config: { messaging_service_sid: "not-a-service" },
    });
    expect(error?.message).toContain("config.messaging_service_sid is not in the expected form");
  });

  it("syncs the account's numbers into the workspace's pool (admins only)", async () => {
    const member = await newUser();
    const forbidden = await callFunction("twilio/numbers/sync", member.token, { body: { connection_id: connection.id } });
    expect(forbidden.status).toBe(404);
    const res = await callFunction("twilio/numbers/sync", owner.token, { body: { connection_id: connection.id } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connection_id: connection.id, added: expect.any(Number), deactivated: 0 });
    expect(res.body.added).toBeGreaterThanOrEqual(3);
    const { data } = await owner.client.from("phone_numbers").select("e164, capabilities, status, is_default")
      .eq("connection_id", connection.id).order("e164");
    expect(data).toContainEqual({ e164: TWILIO_FAKE_NUMBERS.primary, capabilities: ["sms", "mms", "voice"], status: "active", is_default: expect.any(Boolean) });
    const again = await callFunction("twilio/numbers/sync", owner.token, { body: { connection_id: connection.id } });
    expect(again.body).toMatchObject({ added: 0, updated: 0, deactivated: 0, unchanged: res.body.added });
  });

  it("sends an SMS from a synced number and records the signed delivery report as 'delivered'", async () => {
    const res = await callFunction("twilio/sms/send", agentKey, {
      body: { to: ["+14155550123"], body: "Hello from Twilio", from: TWILIO_FAKE_NUMBERS.primary },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", sent: 1 });
    const sid = res.body.provider_message_ids[0];
    expect(sid).toMatch(/^SM[0-9a-f]{32}$/);
    const { messages } = await fake(twilioBase(), "/__fake/messages");
    const sent = messages.find((m: any) => m.sid === sid);
    expect(sent.from).toBe(TWILIO_FAKE_NUMBERS.primary);
    // The send named the connection's own webhook as its status callback.
    expect(sent.fake.request.params.StatusCallback).toBe(`${status().FUNCTIONS_URL}/twilio/webhooks/${connection.webhook_token}/status`);

    await fake(twilioBase(), "/__fake/advance", { sid, to: "delivered" });
    const events = await eventually(async () => {
      const rows = await eventsOf(owner, res.body.operation_id);
      return rows.some((e) => e.delivery_status === "delivered") && rows;
    });
    expect(events).toContainEqual({ event_type: "delivery_receipt", status: expect.stringMatching(/^delivered/), delivery_status: "delivered", channel: "sms", provider_message_id: sid });
    expect(await operation(res.body.operation_id)).toMatchObject({ status: "succeeded", quota_used: 1, sender: TWILIO_FAKE_NUMBERS.primary });
  });

  it("refuses a status callback with a forged or missing signature and stores nothing", async () => {
    const url = `${status().FUNCTIONS_URL}/twilio/webhooks/${connection.webhook_token}/status`;
    const params = { MessageSid: `SM${"0".repeat(32)}`, MessageStatus: "delivered", To: "+14155550123", AccountSid: TWILIO_FAKE_ACCOUNT };
    for (const signature of [twilioSignature("wrong-token", url, params), undefined]) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...(signature ? { "X-Twilio-Signature": signature } : {}) },
        body: new URLSearchParams(params).toString(),
      });
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toBe("unauthorized");
    }
    // Signed with the right token, it is taken.
    const good = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": twilioSignature(TWILIO_FAKE_AUTH_TOKEN, url, params) },
      body: new URLSearchParams(params).toString(),
    });
    expect(good.status).toBe(200);
    const [{ n }] = await adminSql()`select count(*)::int as n from public.message_events
                                     where connection_id = ${connection.id} and provider_message_id = ${params.MessageSid}`;
    expect(n).toBe(1);
  });

  it("attributes an inbound SMS to the member the receiving number is assigned to, and answers Twilio with TwiML", async () => {
    const { data: [number] } = await owner.client.from("phone_numbers").select("id").eq("connection_id", connection.id)
      .eq("e164", TWILIO_FAKE_NUMBERS.secondary) as any;
    await rpc(owner, "update_phone_number", { p_phone_number_id: number.id, p_changes: { assigned_to: owner.id } });
    const inboundUrl = `${status().FUNCTIONS_URL}/twilio/webhooks/${connection.webhook_token}/inbound`;
    await fake(twilioBase(), "/__fake/numbers", { phone_number: TWILIO_FAKE_NUMBERS.secondary, sms_url: inboundUrl });
    await fake(twilioBase(), "/__fake/inbound", { from: "+14155550199", to: TWILIO_FAKE_NUMBERS.secondary, body: "Hi back" });
    const event = await eventually(async () => {
      const [row] = await adminSql()`select user_id, channel, our_number, recipient from public.message_events
                                     where connection_id = ${connection.id} and event_type = 'inbound_message'`;
      return row;
    });
    expect(event).toEqual({ user_id: owner.id, channel: "sms", our_number: TWILIO_FAKE_NUMBERS.secondary, recipient: "+14155550199" });
    const { messages } = await fake(twilioBase(), "/__fake/messages");
    const inbound = messages.filter((m: any) => m.direction === "inbound").at(-1);
    // The fake flags a non-TwiML reply as error 11200, as Twilio's debugger would.
    expect(JSON.stringify(inbound)).not.toContain("11200");
  });

  it("a send the account refuses (rate limited) is a 503 that consumed no quota", async () => {
    await fake(twilioBase(), "/__fake/faults", { mode: "http429", count: 1 });
    const res = await callFunction("twilio/sms/send", agentKey, { body: { to: ["+14155550124"], body: "limited" } });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "provider_unavailable", details: { provider: "twilio", status: 429 } });
    expect(await operation(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
  });

  it("checks the balance", async () => {
    const res = await callFunction("twilio/balance", agentKey);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", currency: "USD" });
  });
});

describe("Telnyx", () => {
  let connection: { id: string; webhook_token: string };
  let agentKey: string;

  beforeAll(async () => {
    await fake(telnyxBase(), "/__fake/reset", {});
    connection = await rpc(owner, "create_connection", {
      p_provider: "telnyx", p_name: "Telnyx", p_credentials: { api_key: TELNYX_FAKE_API_KEY },
      p_config: { base_url: status().TELNYX_FAKE_URL, webhook_public_key: status().TELNYX_FAKE_PUBLIC_KEY },
    });
    ({ key: agentKey } = await agentWithKey(owner, [{ connectionId: connection.id, scopes: ["sms", "mms", "balance"] }]));
    const sync = await callFunction("telnyx/numbers/sync", owner.token, { body: { connection_id: connection.id } });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
  });

  it("sends from the synced number and stores the Ed25519-signed report, normalised", async () => {
    const res = await callFunction("telnyx/sms/send", agentKey, {
      body: { to: ["+13125550177"], body: "Hello from Telnyx", from: TELNYX_FAKE_NUMBERS.primary },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = res.body.provider_message_ids[0];
    const { messages } = await fake(telnyxBase(), "/__fake/messages");
    expect(messages.find((m: any) => m.id === id).request.params.webhook_url)
      .toBe(`${status().FUNCTIONS_URL}/telnyx/webhooks/${connection.webhook_token}/events`);
    await fake(telnyxBase(), "/__fake/advance", { message_id: id, status: "delivered", wait: true });
    const events = await eventually(async () => {
      const rows = await eventsOf(owner, res.body.operation_id);
      return rows.some((e) => e.delivery_status === "delivered") && rows;
    });
    expect(events.map((e) => e.delivery_status).sort()).toContain("delivered");
  });

  it("refuses a webhook with a stale, future or forged signature, and stores nothing", async () => {
    await fake(telnyxBase(), "/__fake/config", { webhook_retry_delay_ms: 10 });
    for (const signature of ["stale", "future", "wrong_key", "tampered", "reserialized", "truncated", "missing"]) {
      const res = await callFunction("telnyx/sms/send", agentKey, { body: { to: ["+13125550178"], body: `Again ${signature}`, from: TELNYX_FAKE_NUMBERS.primary } });
      const id = res.body.provider_message_ids[0];
      await fake(telnyxBase(), "/__fake/advance", { message_id: id, status: "delivered", signature, wait: true });
      const { pushes } = await fake(telnyxBase(), "/__fake/pushes");
      const attempts = pushes.filter((p: any) => p.message_id === id);
      expect(attempts.length, signature).toBeGreaterThan(0);
      expect(attempts.map((p: any) => p.status), signature).toEqual(attempts.map(() => 401));
      expect(await eventsOf(owner, res.body.operation_id), signature).toEqual([]);
    }
  });
});

describe("Exotel", () => {
  let connection: { id: string; webhook_token: string };
  let agentKey: string;

  beforeAll(async () => {
    await fake(exotelBase(), "/__fake/reset", {});
    connection = await rpc(owner, "create_connection", {
      p_provider: "exotel", p_name: "Exotel",
      p_credentials: { api_key: EXOTEL_FAKE_ACCOUNT.apiKey, api_token: EXOTEL_FAKE_ACCOUNT.apiToken },
      p_config: { account_sid: EXOTEL_FAKE_ACCOUNT.sid, base_url: exotelBase() },
    });
    ({ key: agentKey } = await agentWithKey(owner, [{ connectionId: connection.id, scopes: ["sms", "voice"] }]));
    const sync = await callFunction("exotel/numbers/sync", owner.token, { body: { connection_id: connection.id } });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
  });

  it("needs the account sid in config", async () => {
    const { error } = await owner.client.rpc("create_connection", {
      p_provider: "exotel", p_name: "No sid", p_credentials: { api_key: "k", api_token: "t" }, p_config: {},
    });
    expect(error?.message).toContain('config field "account_sid" is required');
  });

  it("sends an SMS and records its (unsigned, token-authenticated) status callback", async () => {
    const res = await callFunction("exotel/sms/send", agentKey, { body: { to: ["+6591234567"], body: "Hello from Exotel" } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const sid = res.body.provider_message_ids[0];
    await fake(exotelBase(), "/__fake/advance", { sid, status: "sent" });
    const events = await eventually(async () => {
      const rows = await eventsOf(owner, res.body.operation_id);
      return rows.length > 0 && rows;
    });
    expect(events[0]).toMatchObject({ event_type: "delivery_receipt", delivery_status: "delivered", provider_message_id: sid });
  });

  it("places a click-to-call from the account's number", async () => {
    const res = await callFunction("exotel/calls/connect", agentKey, { body: { from_phone: "+919900000001", to: "+919900000002" } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const { calls } = await fake(exotelBase(), "/__fake/calls");
    expect(calls.at(-1).params ?? calls.at(-1).request?.params).toMatchObject({ From: "+919900000001", To: "+919900000002" });
    expect(await operation(res.body.operation_id)).toMatchObject({ status: "succeeded", quota_used: 1 });
  });

  it("an agent without the voice scope cannot place calls", async () => {
    const { key } = await agentWithKey(owner, [{ connectionId: connection.id, scopes: ["sms"] }], "sms only");
    const res = await callFunction("exotel/calls/connect", key, { body: { from_phone: "+919900000001", to: "+919900000002" } });
    expect(res.status).toBe(403);
  });
});
