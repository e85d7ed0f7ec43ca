/**
 * SendGrid end to end: the real `sendgrid` edge function (Deno) against the SendGrid
 * fake, through supabase-js `functions.invoke` and plain fetch: what SendGrid received,
 * how its refusals reach the caller (the envelope, with SendGrid's own errors kept),
 * the activity log, the usage counter, and the signed Event Webhook.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  agentClient,
  agentWithKey,
  callFunction,
  connectedUser,
  type Connected,
  eventsForOperation,
  eventually,
  operationRow,
  routeSendGridEvents,
  sendgridAccount,
  sendgridFake,
  usedToday,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, newUser, serviceClient, status } from "./helpers.ts";

const TEMPLATE_ID = `d-${"0123456789abcdef".repeat(2)}`;
let counter = 0;
const uniqueSubject = (text: string) => `${text} (ref ${Date.now().toString(36)}-${++counter})`;

/** The mail SendGrid accepted for one of our operations (we send our id in custom_args). */
async function accepted(operationId: string) {
  return (await sendgridFake.messages()).filter((m) => m.custom_args?.switchboard_operation_id === operationId);
}

/** POST /v3/mail/send requests SendGrid has seen (faulted ones included). */
async function sendRequests(): Promise<number> {
  return (await sendgridFake.requests()).filter((r) => r.method === "POST" && r.path === "/v3/mail/send").length;
}

/** A separate user whose SendGrid connection differs from the working one, with an agent on it. */
async function agentOnAccount(change: { credentials?: object; config?: object }) {
  const user = await newUser();
  const account = sendgridAccount();
  const { data: connection, error } = await user.client.rpc("create_connection", {
    p_provider: "sendgrid", p_name: "SendGrid",
    p_credentials: { ...account.credentials, ...change.credentials }, p_config: { ...account.config, ...change.config },
  });
  if (error) throw new Error(error.message);
  const agent = await agentWithKey(user, [{ connectionId: connection.id, scopes: ["email"] }]);
  return { user, connection, ...agent, permissionId: agent.permissions[0].id as string };
}

let owner: Connected;
let agent: Awaited<ReturnType<typeof agentWithKey>>;
let permissionId: string;

beforeAll(async () => {
  await sendgridFake.reset();
  owner = await connectedUser();
  agent = await agentWithKey(owner.user, [{ connectionId: owner.sendgrid.id, scopes: ["email"], dailySendLimit: 100, maxRecipientsPerMessage: 10 }]);
  permissionId = agent.permissions[0].id;
});

afterAll(async () => {
  await sendgridFake.reset();
  await closeAdminSql();
});

describe("sending mail", () => {
  it("sends content mail with our operation id in custom_args and stores X-Message-Id", async () => {
    const usedBefore = await usedToday(permissionId);
    const subject = uniqueSubject("Welcome");
    const { data, error } = await agentClient(agent.key).functions.invoke("sendgrid/send", {
      body: {
        to: ["Alice@Example.org"], cc: ["bob@example.org"], subject, text: "Hello Alice", html: "<p>Hello Alice</p>",
        reply_to: "help@example.org", categories: ["onboarding"],
      },
    });

    expect(error).toBeNull();
    expect(data).toMatchObject({ sent: 2, failed: 0 });
    const [mail] = await accepted(data.operation_id);
    expect(mail).toMatchObject({
      from: { email: "agent@example.com" }, subject, reply_to: { email: "help@example.org" }, categories: ["onboarding"],
      content: [{ type: "text/plain", value: "Hello Alice" }, { type: "text/html", value: "<p>Hello Alice</p>" }],
      personalizations: [{ to: [{ email: "alice@example.org" }], cc: [{ email: "bob@example.org" }] }],
    });
    expect(data.provider_message_ids).toEqual([mail.message_id]);
    expect(await operationRow(data.operation_id)).toMatchObject({
      status: "succeeded", auth_mode: "agent_key", capability_key: "sendgrid_send_email",
      provider_message_ids: [mail.message_id], quota_reserved: 2, quota_used: 2,
    });
    expect(await usedToday(permissionId)).toBe(usedBefore + 2);
    // The caller sees the operation's status, as for every other provider (not SendGrid's "queued").
    expect(data.status).toBe("succeeded");
  });

  it("sends a dynamic template with its data and no subject or content of ours", async () => {
    const { data, error } = await owner.user.client.functions.invoke("sendgrid/send", {
      body: { agent_id: agent.agent.id, to: ["carol@example.org"], template_id: TEMPLATE_ID, dynamic_template_data: { first_name: "Carol", items: [1, 2] } },
    });

    expect(error).toBeNull();
    const [mail] = await accepted(data.operation_id);
    expect(mail).toMatchObject({
      template_id: TEMPLATE_ID,
      personalizations: [{ to: [{ email: "carol@example.org" }], dynamic_template_data: { first_name: "Carol", items: [1, 2] } }],
    });
    expect(mail.subject).toBeUndefined();
    expect(mail.content).toBeUndefined();
    expect(await operationRow(data.operation_id)).toMatchObject({
      status: "succeeded", auth_mode: "user_agent", provider_message_ids: [mail.message_id],
      request_summary: { template_id: TEMPLATE_ID },
    });
  });

  it("accepts template data as a JSON-encoded string (the OpenAI strict-mode form) and sends it as an object", async () => {
    const res = await callFunction("sendgrid/send", agent.key, {
      body: { to: ["dan@example.org"], template_id: TEMPLATE_ID, dynamic_template_data: JSON.stringify({ code: "A-17" }) },
    });

    expect(res.status).toBe(200);
    expect((await accepted(res.body.operation_id))[0].personalizations[0].dynamic_template_data).toEqual({ code: "A-17" });
  });

  it("refuses template data without a template with 400 and sends nothing", async () => {
    const before = await sendRequests();
    const res = await callFunction("sendgrid/send", agent.key, {
      body: { to: ["dan@example.org"], subject: "x", text: "y", dynamic_template_data: { a: 1 } },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.details.issues.map((i: any) => i.path)).toContain("dynamic_template_data");
    expect(await sendRequests()).toBe(before);
  });
});

describe("the owner directly, and the service key", () => {
  it("a signed-in user sends from their own SendGrid account (no agent, no agent quota)", async () => {
    const { data, error } = await owner.user.client.functions.invoke("sendgrid/send", {
      body: { to: ["mia@example.org"], subject: uniqueSubject("Personal"), text: "hi" },
    });

    expect(error).toBeNull();
    expect(await accepted(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "user", agent_id: null, quota_reserved: 0, status: "succeeded" });
  });

  it("the service key with user_id and agent_id sends as that user's agent", async () => {
    const usedBefore = await usedToday(permissionId);
    const { data, error } = await serviceClient().functions.invoke("sendgrid/send", {
      body: { user_id: owner.user.id, agent_id: agent.agent.id, to: ["mia@example.org"], subject: uniqueSubject("From backend"), text: "hi" },
    });

    expect(error).toBeNull();
    expect(await accepted(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "service", agent_id: agent.agent.id, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("another user's JWT with my agent_id gets 404 and nothing is sent", async () => {
    const mallory = await newUser();
    const before = await sendRequests();

    const res = await callFunction("sendgrid/send", mallory.token, {
      body: { agent_id: agent.agent.id, to: ["mia@example.org"], subject: "Hi", text: "Hi" },
    });

    expect(res.status).toBe(404);
    expect(await sendRequests()).toBe(before);
  });
});

describe("SendGrid's refusals reach the caller in the envelope, with SendGrid's details", () => {
  afterEach(async () => {
    await sendgridFake.config({ rate_limit: { limit: 1_000_000, window_seconds: 60 } });
  });

  it("401 for a bad API key: provider_error, failed, quota given back", async () => {
    const bad = await agentOnAccount({ credentials: { api_key: "SG.revoked-key" } });

    const res = await callFunction("sendgrid/send", bad.key, { body: { to: ["erin@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({
      code: "provider_error",
      details: { provider: "sendgrid", status: 401, errors: [{ message: "Permission denied, wrong credentials" }] },
    });
    expect(JSON.stringify(res.body)).not.toContain("SG.revoked-key");
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_reserved: 1, quota_used: 0 });
    expect(await usedToday(bad.permissionId)).toBe(0);
  });

  it("403 for an unverified sender: provider_error naming the from field", async () => {
    const unverified = await agentOnAccount({ config: { from_email: "someone@unverified.test" } });

    const res = await callFunction("sendgrid/send", unverified.key, { body: { to: ["erin@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(502);
    expect(res.body.error.details).toMatchObject({ provider: "sendgrid", status: 403, field: "from" });
    expect(res.body.error.details.errors[0].message).toMatch(/verified Sender Identity/);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
    expect(await usedToday(unverified.permissionId)).toBe(0);
  });

  it("413 when SendGrid finds the mail too large: provider_error, failed, quota given back", async () => {
    // Our own 16 MB request cap is below SendGrid's 30 MB, so only a body that grows on
    // the way reaches SendGrid's limit: bytes that are not UTF-8 decode to U+FFFD,
    // three bytes each when the function re-encodes the mail for SendGrid.
    const usedBefore = await usedToday(permissionId);
    const prefix = Buffer.from(JSON.stringify({ to: ["frank@example.org"], subject: "Big", text: "" }).slice(0, -2));
    const body = Buffer.concat([prefix, Buffer.alloc(10_600_000, 0xff), Buffer.from('"}')]);

    const response = await fetch(`${status().FUNCTIONS_URL}/sendgrid/send`, {
      method: "POST", headers: { Authorization: `Bearer ${agent.key}`, "Content-Type": "application/json" }, body,
    });
    const res = { status: response.status, body: (await response.json()) as any };

    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: "provider_error", details: { provider: "sendgrid", status: 413 } });
    expect(res.body.error.details.errors[0].message).toMatch(/30 MB/);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
    expect(await usedToday(permissionId)).toBe(usedBefore);
  });

  it("429: provider_unavailable with Retry-After and SendGrid's errors, failed, quota given back", async () => {
    await sendgridFake.config({ rate_limit: { limit: 0, window_seconds: 60 } });
    const usedBefore = await usedToday(permissionId);

    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["grace@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({
      code: "provider_unavailable", details: { provider: "sendgrid", status: 429, errors: [{ message: "too many requests" }] },
    });
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.body.error.details.retry_after).toBe(retryAfter);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
    expect(await usedToday(permissionId)).toBe(usedBefore);
  });
});

describe("provider faults and idempotency", () => {
  // SendGrid has no idempotency key: a 5xx may come after it queued the mail (the one
  // rule every provider shares), so the send is 'unknown' and keeps its quota.
  it("a SendGrid 500: provider_unavailable, 'unknown' with the quota kept, exactly one request", async () => {
    await sendgridFake.fault("http500");
    const usedBefore = await usedToday(permissionId);
    const before = await sendRequests();

    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["heidi@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "provider_unavailable", details: { status: 500, errors: [{ message: "internal server error" }] } });
    expect(await sendRequests()).toBe(before + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("a send that times out: 504, 'unknown' with the quota kept, exactly one request", async () => {
    await sendgridFake.fault("timeout");
    const usedBefore = await usedToday(permissionId);
    const before = await sendRequests();

    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["ivan@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await sendRequests()).toBe(before + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  }, 40_000);

  it("a connection dropped after the request: 503, 'unknown' with the quota kept, exactly one request", async () => {
    await sendgridFake.fault("drop");
    const usedBefore = await usedToday(permissionId);
    const before = await sendRequests();

    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["judy@example.org"], subject: "Hi", text: "Hi" } });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await sendRequests()).toBe(before + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("a repeated idempotency key returns the first result without sending again", async () => {
    const key = `mail-${randomBytes(8).toString("hex")}`;
    const body = { to: ["ken@example.org"], subject: uniqueSubject("Receipt"), text: "Thanks", idempotency_key: key };
    const first = await callFunction("sendgrid/send", agent.key, { body });
    const sentAfterFirst = (await sendgridFake.messages()).length;

    const again = await callFunction("sendgrid/send", agent.key, { body });

    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true, provider_message_ids: first.body.provider_message_ids });
    expect((await sendgridFake.messages()).length).toBe(sentAfterFirst);
  });

  it("the same idempotency key with different arguments is a 409 and sends nothing", async () => {
    const key = `mail-${randomBytes(8).toString("hex")}`;
    await callFunction("sendgrid/send", agent.key, { body: { to: ["ken@example.org"], subject: "A", text: "A" }, headers: { "Idempotency-Key": key } });
    const before = await sendRequests();

    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["ken@example.org"], subject: "B", text: "B" }, headers: { "Idempotency-Key": key } });

    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("conflict");
    expect(await sendRequests()).toBe(before);
  });
});

describe("test connection", () => {
  it("checks the key's scopes and records the result on the connection", async () => {
    const { data, error } = await owner.user.client.functions.invoke("sendgrid/test", { body: { connection_id: owner.sendgrid.id } });

    expect(error).toBeNull();
    expect(data).toMatchObject({ connection_id: owner.sendgrid.id, ok: true });
    expect(JSON.stringify(data)).not.toContain("SG.demo-key");
    const [row] = await adminSql()`select last_test_ok, status from public.connections where id = ${owner.sendgrid.id}`;
    expect(row).toEqual({ last_test_ok: true, status: "active" });
  });

  it("reports a key without mail.send as ok:false naming the missing scope", async () => {
    const limited = await agentOnAccount({ credentials: { api_key: "SG.no-send-scope" } });

    const res = await callFunction("sendgrid/test", limited.user.token, { body: { connection_id: limited.connection.id } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, details: { missing_scopes: ["mail.send"] } });
    expect(JSON.stringify(res.body)).not.toContain("SG.no-send-scope");
    const [row] = await adminSql()`select last_test_ok from public.connections where id = ${limited.connection.id}`;
    expect(row.last_test_ok).toBe(false);
  });
});

describe("signed Event Webhook", () => {
  let sent: { operationId: string; messageId: string };

  /** Event rows of one type for the operation. */
  const rowsOf = async (event: string) => (await eventsForOperation(sent.operationId)).filter((e) => e.status === event);

  beforeAll(async () => {
    await routeSendGridEvents(owner.sendgrid.webhook_token);
    const res = await callFunction("sendgrid/send", agent.key, { body: { to: ["Lena@Example.org"], subject: uniqueSubject("Tracked"), text: "Hi" } });
    expect(res.status).toBe(200);
    sent = { operationId: res.body.operation_id, messageId: res.body.provider_message_ids[0] };
  });

  afterAll(async () => {
    const res = await fetch(`${status().SENDGRID_FAKE_URL}/v3/user/webhooks/event/settings`, {
      method: "PATCH", headers: { Authorization: "Bearer SG.demo-key", "Content-Type": "application/json" }, body: JSON.stringify({ enabled: false, url: "" }),
    });
    expect(res.status).toBe(200);
  });

  it("stores SendGrid's processed and delivered events, linked to the operation", async () => {
    const events = await eventually(async () => {
      const rows = await eventsForOperation(sent.operationId);
      return rows.length >= 2 ? rows : undefined;
    });

    expect(events.map((e) => e.status).sort()).toEqual(["delivered", "processed"]);
    for (const event of events) {
      expect(event).toMatchObject({
        event_type: "email_event", provider_message_id: sent.messageId, recipient: "lena@example.org",
        connection_id: owner.sendgrid.id, user_id: owner.user.id,
      });
    }
  });

  it("stores an event delivered three times (same sg_event_id) once", async () => {
    const { statuses, events } = await sendgridFake.events({ message_id: sent.messageId, events: ["open"], duplicate: 2 });

    expect(statuses).toEqual([200, 200, 200]);
    const rows = await rowsOf("open");
    expect(rows).toHaveLength(1);
    expect(rows[0].payload.sg_event_id).toBe(events[0].sg_event_id);
  });

  it("refuses a forged signature with 401 and stores nothing", async () => {
    const { statuses } = await sendgridFake.events({ message_id: sent.messageId, events: ["click"], tamper: "bad_signature" });

    expect(statuses).toEqual([401]);
    expect(await rowsOf("click")).toHaveLength(0);
  });

  it("refuses a stale timestamp (an old post replayed) with 401 and stores nothing", async () => {
    const { statuses } = await sendgridFake.events({ message_id: sent.messageId, events: ["spamreport"], tamper: "stale" });

    expect(statuses).toEqual([401]);
    expect(await rowsOf("spamreport")).toHaveLength(0);
  });

  it("refuses a body changed after signing with 401 and stores nothing", async () => {
    const { statuses } = await sendgridFake.events({ message_id: sent.messageId, events: ["unsubscribe"], tamper: "mutate_body" });

    expect(statuses).toEqual([401]);
    expect(await rowsOf("unsubscribe")).toHaveLength(0);
  });

  it("refuses an unsigned post with 401", async () => {
    const res = await fetch(`${status().FUNCTIONS_URL}/sendgrid/webhooks/${owner.sendgrid.webhook_token}/events`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify([{ event: "bounce", email: "lena@example.org", sg_event_id: "forged-1", sg_message_id: `${sent.messageId}.x`, timestamp: 1 }]),
    });

    expect(res.status).toBe(401);
    expect(await rowsOf("bounce")).toHaveLength(0);
  });

  it("answers 404 to an unknown webhook token", async () => {
    const res = await fetch(`${status().FUNCTIONS_URL}/sendgrid/webhooks/${randomBytes(24).toString("hex")}/events`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "[]",
    });

    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe("not_found");
  });
});
