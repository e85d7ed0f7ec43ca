/**
 * ClickSend end to end: the real `clicksend` edge function (Deno) against the ClickSend
 * fake, through supabase-js `functions.invoke` and plain fetch. Every assertion is
 * something the account owner could check: what the provider received, what the
 * function answered, the activity log (public.operations), today's usage counter and
 * the delivery events (public.message_events).
 *
 * The fake serves one ClickSend account ("demo") to every connection in this file, so
 * tests identify their messages by our operation id (custom_string) and use a unique
 * body each (ClickSend throttles the same body to the same number within a minute).
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  agentClient,
  agentWithKey,
  callFunction,
  clicksendFake,
  connectedUser,
  type Connected,
  eventsForOperation,
  eventually,
  invokeError,
  operationRow,
  routeClickSendWebhooks,
  usedToday,
} from "./fixtures.ts";
import { adminSql, anonClient, closeAdminSql, newUser, serviceClient, status } from "./helpers.ts";

const ALL_SCOPES = ["sms", "mms", "balance", "history"];
let counter = 0;
/** A body no other test sends (the fake would answer THROTTLED for a repeat). */
const uniqueBody = (text = "Hello from Switchboard") => `${text} (ref ${Date.now().toString(36)}-${++counter})`;

/** Messages the fake accepted for one of our operations (we send our operation id as custom_string). */
async function fakeMessagesFor(operationId: string) {
  return (await clicksendFake.messages()).filter((m) => m.custom_string === operationId);
}

/** POST /v3/sms/send and /v3/mms/send requests the fake has seen. */
async function sendRequests(): Promise<number> {
  const counts = await clicksendFake.requests();
  return (counts["POST /v3/sms/send"] ?? 0) + (counts["POST /v3/mms/send"] ?? 0);
}

async function operationsOfAgent(agentId: string): Promise<number> {
  const [{ count }] = await adminSql()`select count(*)::int as count from public.operations where agent_id = ${agentId}`;
  return count;
}

let owner: Connected;
let agent: Awaited<ReturnType<typeof agentWithKey>>;
let permissionId: string;

beforeAll(async () => {
  await clicksendFake.reset(true);
  owner = await connectedUser();
  agent = await agentWithKey(owner.user, [{ connectionId: owner.clicksend.id, scopes: ALL_SCOPES, dailySendLimit: 100, maxRecipientsPerMessage: 10 }]);
  permissionId = agent.permissions[0].id;
});

afterAll(async () => {
  await clicksendFake.clearFaults();
  await closeAdminSql();
});

describe("sending SMS", () => {
  it("sends one SMS with an agent key through supabase-js and logs it with the quota counted", async () => {
    const usedBefore = await usedToday(permissionId);
    const body = uniqueBody();

    const { data, error } = await agentClient(agent.key).functions.invoke("clicksend/sms/send", {
      body: { to: ["+61412345678"], body },
    });

    expect(error).toBeNull();
    expect(data).toMatchObject({ status: "succeeded", sent: 1, failed: 0 });
    expect(data.provider_message_ids).toHaveLength(1);
    const delivered = await fakeMessagesFor(data.operation_id);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ to: "+61412345678", body, message_id: data.provider_message_ids[0] });

    const row = await operationRow(data.operation_id);
    expect(row).toMatchObject({
      status: "succeeded",
      auth_mode: "agent_key",
      agent_id: agent.agent.id,
      connection_id: owner.clicksend.id,
      capability_key: "clicksend_send_sms",
      recipients: ["+61412345678"],
      quota_reserved: 1,
      quota_used: 1,
      provider_message_ids: data.provider_message_ids,
      error_code: null,
    });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("sends to several recipients in one call, each number once", async () => {
    const usedBefore = await usedToday(permissionId);
    const res = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412345601", "+61412345602", "+61 412 345 601"], body: uniqueBody() },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", sent: 2, failed: 0 });
    const delivered = await fakeMessagesFor(res.body.operation_id);
    expect(delivered.map((m) => m.to).sort()).toEqual(["+61412345601", "+61412345602"]);
    expect(await operationRow(res.body.operation_id)).toMatchObject({ status: "succeeded", recipient_count: 2, quota_used: 2 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 2);
  });

  it("sends 2 500 recipients in 3 provider requests, all delivered, quota counted exactly", async () => {
    const bulk = await agentWithKey(owner.user, [
      { connectionId: owner.clicksend.id, scopes: ["sms"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    ], "bulk agent");
    const numbers = Array.from({ length: 2500 }, (_, i) => `+61412${String(i).padStart(6, "0")}`);
    const requestsBefore = (await clicksendFake.requests())["POST /v3/sms/send"] ?? 0;

    const res = await callFunction("clicksend/sms/send", bulk.key, { body: { to: numbers, body: uniqueBody("Bulk notice") } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", sent: 2500, failed: 0, requests: 3 });
    expect((await clicksendFake.requests())["POST /v3/sms/send"]).toBe(requestsBefore + 3);
    const delivered = await fakeMessagesFor(res.body.operation_id);
    expect(new Set(delivered.map((m) => m.to))).toEqual(new Set(numbers));
    expect(await operationRow(res.body.operation_id)).toMatchObject({
      status: "succeeded", recipient_count: 2500, quota_reserved: 2500, quota_used: 2500,
    });
    expect((await operationRow(res.body.operation_id)).provider_message_ids).toHaveLength(2500);
    expect(await usedToday(bulk.permissions[0].id)).toBe(2500);
  });

  it("passes schedule_at to ClickSend as a unix schedule", async () => {
    const at = new Date(Date.now() + 24 * 3600 * 1000);
    at.setUTCMilliseconds(0);
    const res = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412345603"], body: uniqueBody("Reminder"), schedule_at: at.toISOString() },
    });

    expect(res.status).toBe(200);
    const [message] = await fakeMessagesFor(res.body.operation_id);
    expect(message).toMatchObject({ schedule: at.getTime() / 1000, status: "Scheduled" });
    expect((await operationRow(res.body.operation_id)).request_summary).toMatchObject({ schedule_at: at.toISOString() });
  });

  it("returns and logs segment counts (161 GSM characters = 2 parts, 71 with an emoji = 2 parts)", async () => {
    const gsm = uniqueBody("Long notice").padEnd(161, "."); // 161 GSM-7 characters
    const emoji = `😀 ${uniqueBody("Party")}`.padEnd(71, "!"); // 71 UTF-16 units: UCS-2, over 70
    expect([gsm.length, emoji.length]).toEqual([161, 71]);
    const first = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412345604"], body: gsm } });
    const second = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412345605"], body: emoji } });

    expect(first.body.recipients[0]).toMatchObject({ to: "+61412345604", ok: true, segments: 2 });
    expect(second.body.recipients[0]).toMatchObject({ to: "+61412345605", ok: true, segments: 2 });
    expect((await fakeMessagesFor(first.body.operation_id))[0].message_parts).toBe(2);
    expect((await fakeMessagesFor(second.body.operation_id))[0].message_parts).toBe(2);
    expect((await operationRow(first.body.operation_id)).request_summary).toMatchObject({ segments: 2, encoding: "GSM-7" });
    expect((await operationRow(second.body.operation_id)).request_summary).toMatchObject({ segments: 2, encoding: "UCS-2" });
  });

  it("reports per-recipient failures: a partial send counts only what went out", async () => {
    // +8615555555555 is one of ClickSend's documented test numbers; China is not enabled
    // on the demo account, so ClickSend refuses that one message inside an HTTP 200.
    // (An INVALID_RECIPIENT cannot reach ClickSend: our schema validates numbers with the
    // same libphonenumber metadata and answers 400 first.)
    const usedBefore = await usedToday(permissionId);
    const res = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412345606", "+8615555555555", "+61412345607"], body: uniqueBody() },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "partial", sent: 2, failed: 1 });
    expect(res.body.recipients.find((r: any) => r.to === "+8615555555555")).toMatchObject({ ok: false, status: "COUNTRY_NOT_ENABLED" });
    expect((await fakeMessagesFor(res.body.operation_id)).map((m) => m.to).sort()).toEqual(["+61412345606", "+61412345607"]);
    const row = await operationRow(res.body.operation_id);
    expect(row).toMatchObject({ status: "partial", quota_reserved: 3, quota_used: 2 });
    expect(row.provider_message_ids).toHaveLength(2);
    expect(await usedToday(permissionId)).toBe(usedBefore + 2);
  });

  it("refuses an invalid number with 400 before anything is logged or sent", async () => {
    const before = { ops: await operationsOfAgent(agent.agent.id), sends: await sendRequests() };
    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["0412 345 678"], body: uniqueBody() } });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.details.issues[0].path).toBe("to.0");
    expect(await operationsOfAgent(agent.agent.id)).toBe(before.ops);
    expect(await sendRequests()).toBe(before.sends);
  });
});

describe("recipient rules see E.164 numbers", () => {
  let ruled: Awaited<ReturnType<typeof agentWithKey>>;

  beforeAll(async () => {
    ruled = await agentWithKey(owner.user, [{
      connectionId: owner.clicksend.id, scopes: ["sms"], allowedRecipients: ["+61"], blockedRecipients: ["+61499"],
    }], "ruled agent");
  });

  it("allows a number written with spaces when its E.164 form matches the '+61' rule", async () => {
    const res = await callFunction("clicksend/sms/send", ruled.key, { body: { to: ["+61 412 345 608"], body: uniqueBody() } });

    expect(res.status).toBe(200);
    expect((await fakeMessagesFor(res.body.operation_id))[0].to).toBe("+61412345608");
    expect((await operationRow(res.body.operation_id)).recipients).toEqual(["+61412345608"]);
  });

  it("refuses a blocked prefix hidden by formatting with 403, logs the denial and sends nothing", async () => {
    const sendsBefore = await sendRequests();
    const res = await callFunction("clicksend/sms/send", ruled.key, { body: { to: ["+61 (499) 555-123"], body: uniqueBody() } });

    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "permission_denied", details: { reason: "recipient_not_allowed", recipient: "+61499555123" } });
    const row = await operationRow(res.body.error.details.operation_id);
    expect(row).toMatchObject({ status: "denied", error_code: "permission_denied", agent_id: ruled.agent.id, recipients: ["+61499555123"], quota_reserved: 0 });
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("refuses a number outside the allowed prefixes with 403 and sends nothing", async () => {
    const sendsBefore = await sendRequests();
    const res = await callFunction("clicksend/sms/send", ruled.key, { body: { to: ["+61412345609", "+64 21 123 4567"], body: uniqueBody() } });

    expect(res.status).toBe(403);
    expect(res.body.error.details).toMatchObject({ reason: "recipient_not_allowed", recipient: "+64211234567" });
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("refuses more recipients than the grant allows per message with 403", async () => {
    const sendsBefore = await sendRequests();
    const to = Array.from({ length: 11 }, (_, i) => `+61412345${String(700 + i)}`);
    const res = await callFunction("clicksend/sms/send", ruled.key, { body: { to, body: uniqueBody() } });

    expect(res.status).toBe(403);
    expect(res.body.error.details).toMatchObject({ reason: "recipient_limit", max_recipients_per_message: 10 });
    expect(await sendRequests()).toBe(sendsBefore);
  });
});

describe("MMS", () => {
  it("sends the media URL and subject, and logs the media host but not the URL path", async () => {
    const usedBefore = await usedToday(permissionId);
    const body = uniqueBody("Look at this");
    const res = await callFunction("clicksend/mms/send", agent.key, {
      body: { to: ["+61412345610"], body, subject: "Photo", media_url: "https://cdn.example.com/pics/cat.jpg" },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", sent: 1 });
    const [message] = await fakeMessagesFor(res.body.operation_id);
    expect(message).toMatchObject({ kind: "mms", to: "+61412345610", body, subject: "Photo", media_file: "https://cdn.example.com/pics/cat.jpg" });
    const row = await operationRow(res.body.operation_id);
    expect(row).toMatchObject({ capability_key: "clicksend_send_mms", status: "succeeded", quota_used: 1 });
    expect(row.request_summary).toMatchObject({ subject: "Photo", media_host: "cdn.example.com" });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("refuses a plain-http media URL with 400 and sends nothing", async () => {
    const sendsBefore = await sendRequests();
    const res = await callFunction("clicksend/mms/send", agent.key, {
      body: { to: ["+61412345611"], body: uniqueBody(), subject: "Photo", media_url: "http://cdn.example.com/cat.jpg" },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.details.issues.map((i: any) => i.path)).toContain("media_url");
    expect(await sendRequests()).toBe(sendsBefore);
  });
});

describe("balance and history", () => {
  beforeAll(async () => {
    // Enough history for a second page of 15, and one MMS, whatever ran before.
    const to = Array.from({ length: 16 }, (_, i) => `+614123459${String(i).padStart(2, "0")}`);
    const sms = await callFunction("clicksend/sms/send", owner.user.token, { body: { to, body: uniqueBody("History filler") } });
    const mms = await callFunction("clicksend/mms/send", owner.user.token, {
      body: { to: ["+61412345960"], body: uniqueBody("History filler"), subject: "Filler", media_url: "https://cdn.example.com/f.gif" },
    });
    expect([sms.status, mms.status]).toEqual([200, 200]);
  });

  it("returns the balance without the sub-account API key or username, in the response or the log", async () => {
    const { data, error } = await owner.user.client.functions.invoke("clicksend/balance", { body: { agent_id: agent.agent.id } });

    expect(error).toBeNull();
    expect(data).toMatchObject({ status: "succeeded", currency: { currency_name_short: "AUD" } });
    expect(Number(data.balance)).toBeGreaterThan(0);
    const row = await operationRow(data.operation_id);
    expect(row).toMatchObject({ capability_key: "clicksend_get_balance", status: "succeeded", quota_reserved: 0 });
    for (const text of [JSON.stringify(data), JSON.stringify(row)]) {
      expect(text).not.toContain("_subaccount");
      expect(text).not.toContain("api_key");
      expect(text).not.toContain("SUBACCOUNT-KEY");
      expect(text).not.toContain("demo-key");
      expect(text).not.toContain("demo@example.test");
    }
  });

  it("passes SMS history paging through (page 2 of 15) exactly as ClickSend pages it", async () => {
    const res = await callFunction("clicksend/sms/history", agent.key, { body: { page: 2, limit: 15 } });
    const direct = await fetch(`${status().CLICKSEND_FAKE_URL}/sms/history?page=2&limit=15`, {
      headers: { Authorization: `Basic ${Buffer.from("demo:demo-key").toString("base64")}` },
    }).then((r) => r.json() as Promise<any>);

    expect(res.status).toBe(200);
    expect(direct.data.total).toBeGreaterThan(15); // there is a second page to look at
    expect(res.body).toMatchObject({ current_page: 2, per_page: 15, total: direct.data.total, last_page: direct.data.last_page });
    expect(res.body.records.map((r: any) => r.message_id)).toEqual(direct.data.data.map((r: any) => r.message_id));
  });

  it("passes MMS history paging through, also as a GET with query parameters", async () => {
    const res = await callFunction("clicksend/mms/history?page=1&limit=20", agent.key);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ current_page: 1, per_page: 20 });
    expect(res.body.total).toBeGreaterThanOrEqual(1);
    expect(res.body.records.every((r: any) => typeof r.subject === "string")).toBe(true);
    expect((await operationRow(res.body.operation_id)).capability_key).toBe("clicksend_get_mms_history");
  });

  it("history records do not reveal the account's API username (half of the credential), nor does the log", async () => {
    // ClickSend's history records carry `_api_username`; the balance read already strips
    // the username for this reason, history must too.
    const res = await callFunction("clicksend/sms/history", agent.key, { body: { limit: 15 } });

    expect(res.status).toBe(200);
    expect(res.body.records.length).toBeGreaterThan(0);
    const row = await operationRow(res.body.operation_id);
    for (const text of [JSON.stringify(res.body), JSON.stringify(row)]) {
      expect(text).not.toContain("_api_username");
      expect(text).not.toContain('"demo"');
    }
  });

  it("refuses a history page size ClickSend does not support with 400", async () => {
    const res = await callFunction("clicksend/sms/history", agent.key, { body: { limit: 500 } });

    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe("limit");
  });
});

describe("every way to call", () => {
  it("a signed-in user sends from their own account directly (no agent, no agent quota)", async () => {
    const { data, error } = await owner.user.client.functions.invoke("clicksend/sms/send", {
      body: { to: ["+61412345620"], body: uniqueBody() },
    });

    expect(error).toBeNull();
    expect(data.status).toBe("succeeded");
    expect(await fakeMessagesFor(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({
      auth_mode: "user", user_id: owner.user.id, agent_id: null, permission_id: null, quota_reserved: 0, status: "succeeded",
    });
  });

  it("a user's JWT plus agent_id acts as that agent, within its grant", async () => {
    const usedBefore = await usedToday(permissionId);
    const { data, error } = await owner.user.client.functions.invoke("clicksend/sms/send", {
      body: { agent_id: agent.agent.id, to: ["+61412345621"], body: uniqueBody() },
    });

    expect(error).toBeNull();
    expect(await fakeMessagesFor(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "user_agent", agent_id: agent.agent.id, permission_id: permissionId, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("the service key with user_id and agent_id acts as that user's agent", async () => {
    const usedBefore = await usedToday(permissionId);
    const { data, error } = await serviceClient().functions.invoke("clicksend/sms/send", {
      body: { user_id: owner.user.id, agent_id: agent.agent.id, to: ["+61412345622"], body: uniqueBody() },
    });

    expect(error).toBeNull();
    expect(await fakeMessagesFor(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "service", user_id: owner.user.id, agent_id: agent.agent.id, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("the service key without user_id is refused with 400", async () => {
    const res = await callFunction("clicksend/sms/send", status().SERVICE_ROLE_KEY, {
      body: { agent_id: agent.agent.id, to: ["+61412345623"], body: uniqueBody() },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
  });
});

describe("what an attacker gets", () => {
  it("another user's JWT with my agent_id: 404, nothing sent, nothing in my log", async () => {
    const mallory = await newUser();
    const before = { ops: await operationsOfAgent(agent.agent.id), sends: await sendRequests() };

    const { error } = await mallory.client.functions.invoke("clicksend/sms/send", {
      body: { agent_id: agent.agent.id, to: ["+61412345630"], body: uniqueBody() },
    });

    const { status: code, body } = await invokeError(error);
    expect(code).toBe(404);
    expect(body.error.code).toBe("not_found");
    expect(await sendRequests()).toBe(before.sends);
    expect(await operationsOfAgent(agent.agent.id)).toBe(before.ops);
  });

  it("another user's JWT with my agent_id and their own ClickSend account: still 404", async () => {
    const mallory = await connectedUser();
    const sendsBefore = await sendRequests();
    const res = await callFunction("clicksend/sms/send", mallory.user.token, {
      body: { agent_id: agent.agent.id, to: ["+61412345631"], body: uniqueBody() },
    });

    expect(res.status).toBe(404);
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("another user cannot test my connection (404)", async () => {
    const mallory = await newUser();
    const res = await callFunction("clicksend/test", mallory.token, { body: { connection_id: owner.clicksend.id } });

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });

  it("the anon key alone: 401", async () => {
    const sendsBefore = await sendRequests();
    const { error } = await anonClient().functions.invoke("clicksend/sms/send", {
      body: { agent_id: agent.agent.id, to: ["+61412345632"], body: uniqueBody() },
    });

    const { status: code, body } = await invokeError(error);
    expect(code).toBe(401);
    expect(body.error.code).toBe("unauthorized");
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("no Authorization header: 401", async () => {
    const res = await fetch(`${status().FUNCTIONS_URL}/clicksend/sms/send`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to: ["+61412345633"], body: "x" }),
    });

    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe("unauthorized");
  });

  it("a forged agent key or a garbage token: 401 and nothing sent", async () => {
    const sendsBefore = await sendRequests();
    const forged = `swb_agent_${randomBytes(32).toString("base64url")}`;
    for (const token of [forged, "not-a-token", `${agent.key.slice(0, -2)}xx`]) {
      const res = await callFunction("clicksend/sms/send", token, { body: { to: ["+61412345634"], body: uniqueBody() } });
      expect(res.status, token).toBe(401);
      expect(res.body.error.code).toBe("unauthorized");
    }
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("a revoked agent key: 401, the attempt is in the owner's log, nothing sent", async () => {
    const revoked = await agentWithKey(owner.user, [{ connectionId: owner.clicksend.id, scopes: ["sms"] }], "revoked agent");
    const { error: revokeError } = await owner.user.client.rpc("revoke_agent_key", { p_key_id: revoked.keyId });
    expect(revokeError).toBeNull();
    const sendsBefore = await sendRequests();

    const { error } = await agentClient(revoked.key).functions.invoke("clicksend/sms/send", {
      body: { to: ["+61412345635"], body: uniqueBody() },
    });

    const { status: code, body } = await invokeError(error);
    expect(code).toBe(401);
    expect(body.error.message).toMatch(/revoked/);
    expect(await sendRequests()).toBe(sendsBefore);
    const [row] = await adminSql()`select * from public.operations where agent_id = ${revoked.agent.id}`;
    expect(row).toMatchObject({ status: "denied", error_code: "unauthorized", auth_mode: "agent_key" });
  });

  it("an expired grant: 403, logged as denied, nothing sent", async () => {
    const expired = await agentWithKey(owner.user, [{
      connectionId: owner.clicksend.id, scopes: ["sms"], expiresAt: new Date(Date.now() - 60_000).toISOString(),
    }], "expired agent");
    const sendsBefore = await sendRequests();

    const res = await callFunction("clicksend/sms/send", expired.key, { body: { to: ["+61412345636"], body: uniqueBody() } });

    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "permission_denied", details: { reason: "expired" } });
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "denied", agent_id: expired.agent.id });
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("an agent without the mms scope cannot send MMS (403)", async () => {
    const smsOnly = await agentWithKey(owner.user, [{ connectionId: owner.clicksend.id, scopes: ["sms"] }], "sms-only agent");
    const sendsBefore = await sendRequests();

    const res = await callFunction("clicksend/mms/send", smsOnly.key, {
      body: { to: ["+61412345637"], body: uniqueBody(), subject: "Hi", media_url: "https://cdn.example.com/a.jpg" },
    });

    expect(res.status).toBe(403);
    expect(res.body.error.details).toMatchObject({ reason: "scope", required_scope: "mms" });
    expect(await sendRequests()).toBe(sendsBefore);
  });

  it("an agent key cannot run the owner's connection test (403)", async () => {
    const res = await callFunction("clicksend/test", agent.key, { body: { connection_id: owner.clicksend.id } });

    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("permission_denied");
  });
});

describe("test connection", () => {
  it("checks the stored credentials with ClickSend and records the result on the connection", async () => {
    const { data, error } = await owner.user.client.functions.invoke("clicksend/test", { body: { connection_id: owner.clicksend.id } });

    expect(error).toBeNull();
    expect(data).toMatchObject({ connection_id: owner.clicksend.id, ok: true });
    expect(JSON.stringify(data)).not.toContain("demo-key");
    const [row] = await adminSql()`select status, last_test_ok, last_tested_at from public.connections where id = ${owner.clicksend.id}`;
    expect(row).toMatchObject({ status: "active", last_test_ok: true });
    expect(row.last_tested_at).not.toBeNull();
  });

  it("reports a rejected API key as ok:false without echoing it", async () => {
    const user = await newUser();
    const { data: connection } = await user.client.rpc("create_connection", {
      p_provider: "clicksend_sms", p_name: "Wrong key",
      p_credentials: { username: "demo", api_key: "wrong-key-S3CR3T" }, p_config: { base_url: status().CLICKSEND_FAKE_URL },
    });

    const res = await callFunction("clicksend/test", user.token, { body: { connection_id: connection.id } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, details: { kind: "auth", status: 401 } });
    expect(JSON.stringify(res.body)).not.toContain("S3CR3T");
    const [row] = await adminSql()`select to_jsonb(c) as c from public.connections c where id = ${connection.id}`;
    expect(row.c).toMatchObject({ last_test_ok: false, status: "error" });
    expect(JSON.stringify(row.c)).not.toContain("S3CR3T");
  });
});

describe("delivery receipts and replies (webhooks)", () => {
  let hook: string;

  beforeAll(async () => {
    await clicksendFake.reset(true);
    await routeClickSendWebhooks(owner.clicksend.webhook_token, "post");
    hook = `${status().FUNCTIONS_URL}/clicksend/webhooks/${owner.clicksend.webhook_token}`;
  });

  afterAll(async () => {
    await clicksendFake.reset(true); // no receipt rules left pointing at this connection
  });

  async function send(to: string) {
    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: [to], body: uniqueBody() } });
    expect(res.status).toBe(200);
    return { operationId: res.body.operation_id as string, messageId: res.body.provider_message_ids[0] as string };
  }

  it("stores ClickSend's own form-encoded receipt after a send, linked to the operation", async () => {
    const sent = await send("+61412345640");

    const events = await eventually(async () => {
      const rows = await eventsForOperation(sent.operationId);
      return rows.length > 0 ? rows : undefined;
    });

    expect(events[0]).toMatchObject({
      // ClickSend receipts carry no recipient number: the message id is the link.
      event_type: "delivery_receipt", status: "201", provider_message_id: sent.messageId,
      connection_id: owner.clicksend.id, user_id: owner.user.id,
    });
    const pushes = (await fetch(`${clicksendFake.base()}/__fake/pushes`).then((r) => r.json()) as any).pushes;
    expect(pushes.find((p: any) => p.message_id === sent.messageId)).toMatchObject({ webhook_type: "post", status: 200 });
  });

  it("stores a JSON receipt too", async () => {
    const sent = await send("+61412345641");

    const { pushes } = await clicksendFake.receipt({ message_id: sent.messageId, status_code: "200", url: `${hook}/receipts`, webhook_type: "json" });

    expect(pushes[0]).toMatchObject({ webhook_type: "json", status: 200 });
    const rows = await eventsForOperation(sent.operationId);
    expect(rows.filter((e) => e.status === "200")).toHaveLength(1);
    expect(rows.find((e) => e.status === "200")).toMatchObject({ event_type: "delivery_receipt", provider_message_id: sent.messageId });
  });

  it("stores a receipt pushed twice only once", async () => {
    const sent = await send("+61412345642");

    const { pushes } = await clicksendFake.receipt({ message_id: sent.messageId, status_code: "301", duplicate: 1 });

    expect(pushes.map((p: any) => p.status)).toEqual([200, 200]);
    const rows = await eventsForOperation(sent.operationId);
    expect(rows.filter((e) => e.status === "301")).toHaveLength(1);
  });

  it("answers 404 to an unknown webhook token and stores nothing", async () => {
    const sent = await send("+61412345643");
    await eventually(async () => (await eventsForOperation(sent.operationId)).length > 0); // the automatic receipt
    const before = (await eventsForOperation(sent.operationId)).length;

    const res = await fetch(`${status().FUNCTIONS_URL}/clicksend/webhooks/${randomBytes(24).toString("hex")}/receipts`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ message_id: sent.messageId, status_code: "300", custom_string: sent.operationId, timestamp: "1700000000" }),
    });

    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe("not_found");
    const [{ count }] = await adminSql()`select count(*)::int as count from public.message_events where provider_message_id = ${sent.messageId}`;
    expect(count).toBe(before);
  });

  it("links a reply to the operation that texted that number", async () => {
    await send("+61412345644");
    const latest = await send("+61412345644");

    const { message_id: replyId } = await clicksendFake.inbound({ from: "+61412345644", to: "+61481070000", body: "Yes please" });

    const [reply] = await adminSql()`select * from public.message_events where provider_message_id = ${replyId}`;
    expect(reply).toMatchObject({ event_type: "inbound_message", status: "received", recipient: "+61412345644", operation_id: latest.operationId });
    expect(reply.payload).toMatchObject({ body: "Yes please" });
  });

  it("links a text from a number we texted even without thread data (no custom_string or original id)", async () => {
    const sent = await send("+61412345645");
    const messageId = randomBytes(16).toString("hex").toUpperCase();

    const res = await fetch(`${hook}/inbound`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ timestamp: String(Math.floor(Date.now() / 1000)), from: "+61412345645", to: "+61481070000", body: "Who is this?", message_id: messageId }),
    });

    expect(res.status).toBe(200);
    const [event] = await adminSql()`select * from public.message_events where provider_message_id = ${messageId}`;
    expect(event).toMatchObject({ event_type: "inbound_message", operation_id: sent.operationId });
  });
});

describe("provider faults and idempotency", () => {
  afterEach(async () => {
    await clicksendFake.clearFaults();
  });

  it("a ClickSend 500 on a send: 503, exactly one request, kept as 'unknown' with the quota held", async () => {
    // ClickSend has no idempotency and a 5xx may come after the messages were queued
    // (ClickSend has no idempotency: never retry after a timeout or 5xx), so the call
    // counts as possibly sent: status unknown, quota kept, and no second request.
    await clicksendFake.fault({ mode: "http500", path: "/sms/send" });
    const usedBefore = await usedToday(permissionId);
    const sendsBefore = await sendRequests();

    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412345650"], body: uniqueBody() } });

    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "provider_unavailable", details: { provider: "clicksend", status: 500, provider_code: "INTERNAL_SERVER_ERROR" } });
    expect(await sendRequests()).toBe(sendsBefore + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1, error_code: "provider_unavailable" });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("a balance read that gets a 500 is 'failed' and nothing is counted", async () => {
    await clicksendFake.fault({ mode: "http500", path: "/account" });
    const before = (await clicksendFake.requests())["GET /v3/account"] ?? 0;

    const res = await callFunction("clicksend/balance", agent.key, { body: {} });

    expect(res.status).toBe(503);
    expect((await clicksendFake.requests())["GET /v3/account"]).toBe(before + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
  });

  it("a send that times out: 504, exactly one request, 'unknown' with the quota kept", async () => {
    await clicksendFake.fault({ mode: "timeout", path: "/sms/send" });
    const usedBefore = await usedToday(permissionId);
    const sendsBefore = await sendRequests();

    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412345651"], body: uniqueBody() } });

    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await sendRequests()).toBe(sendsBefore + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_reserved: 1, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  }, 40_000);

  it("a connection dropped after the request: 503, exactly one request, 'unknown' with the quota kept", async () => {
    await clicksendFake.fault({ mode: "drop", path: "/sms/send" });
    const usedBefore = await usedToday(permissionId);
    const sendsBefore = await sendRequests();

    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412345652"], body: uniqueBody() } });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await sendRequests()).toBe(sendsBefore + 1);
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("retrying a possibly-sent call with its idempotency key returns the first outcome, not a second send", async () => {
    await clicksendFake.fault({ mode: "drop", path: "/sms/send" });
    const key = `retry-${randomBytes(8).toString("hex")}`;
    const body = { to: ["+61412345653"], body: uniqueBody() };
    const first = await callFunction("clicksend/sms/send", agent.key, { body, headers: { "Idempotency-Key": key } });
    const sendsAfterFirst = await sendRequests();

    const retry = await callFunction("clicksend/sms/send", agent.key, { body, headers: { "Idempotency-Key": key } });

    expect(first.status).toBe(503);
    expect(retry.status).toBe(503);
    expect(retry.body.error.details).toMatchObject({ operation_id: first.body.error.details.operation_id, replayed: true });
    expect(await sendRequests()).toBe(sendsAfterFirst);
  });

  it("a repeated idempotency key returns the first result without sending again", async () => {
    const key = `order-${randomBytes(8).toString("hex")}`;
    const body = { to: ["+61412345654"], body: uniqueBody("Your order shipped"), idempotency_key: key };
    const first = await agentClient(agent.key).functions.invoke("clicksend/sms/send", { body });
    const sendsAfterFirst = await sendRequests();
    const usedAfterFirst = await usedToday(permissionId);

    const again = await agentClient(agent.key).functions.invoke("clicksend/sms/send", { body });

    expect(first.error).toBeNull();
    expect(again.error).toBeNull();
    expect(again.data).toMatchObject({ operation_id: first.data.operation_id, replayed: true, sent: 1 });
    expect(again.data.provider_message_ids).toEqual(first.data.provider_message_ids);
    expect(await sendRequests()).toBe(sendsAfterFirst);
    expect(await usedToday(permissionId)).toBe(usedAfterFirst);
    const [{ count }] = await adminSql()`select count(*)::int as count from public.operations where idempotency_key = ${key}`;
    expect(count).toBe(1);
  });

  it("the same idempotency key with different arguments is a 409 and sends nothing", async () => {
    const key = `order-${randomBytes(8).toString("hex")}`;
    const first = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412345655"], body: uniqueBody() }, headers: { "Idempotency-Key": key },
    });
    const sendsAfterFirst = await sendRequests();

    const other = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412345656"], body: uniqueBody() }, headers: { "Idempotency-Key": key },
    });

    expect(first.status).toBe(200);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("conflict");
    expect(await sendRequests()).toBe(sendsAfterFirst);
  });
});
