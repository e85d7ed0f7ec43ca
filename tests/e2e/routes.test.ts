/**
 * Channel tools over a route, end to end: an agent calls `sms_send` (agent-tools), the
 * route's first account (Twilio) refuses the message in a way that proves it was not taken
 * and the send moves to the next (Telnyx) — one operation, one idempotency key, quota
 * counted once, the failed attempt recorded — while a failure that may have sent (a 5xx,
 * a timeout) never moves. Plus the account argument, the ambiguous case without a route,
 * the failover matrix (429, 401 and connection refused move on; a 500 after recording, a
 * 503 and a reset after recording never do; quota counted once either way), and bulk
 * sends across providers (a whole send moves; a send a provider took in part does not);
 * whatsapp_send (a Twilio template) and mms_send through ClickSend.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TELNYX_FAKE_API_KEY, TELNYX_FAKE_NUMBERS } from "../../packages/devstack/src/fakes/telnyx.ts";
import { TWILIO_FAKE_ACCOUNT, TWILIO_FAKE_AUTH_TOKEN, TWILIO_FAKE_NUMBERS } from "../../packages/devstack/src/fakes/twilio.ts";
import { agentWithKey, callFunction } from "./fixtures.ts";
import { adminSql, closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

async function rpc<T = any>(user: TestUser, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await user.client.rpc(fn, args);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

async function fake(base: string, path: string, body?: unknown, method?: string): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const twilio = () => status().TWILIO_FAKE_URL;
const telnyx = () => status().TELNYX_FAKE_URL.replace(/\/v2\/?$/, "");
const sentTo = async (base: string, to: string) =>
  (await fake(base, "/__fake/messages")).messages.filter((m: any) => JSON.stringify(m).includes(to)).length;

let owner: TestUser;
let workspaceId: string;
let twilioAccount: { id: string };
let telnyxAccount: { id: string };
let agent: { key: string; permissions: Array<{ id: string }>; agent: { id: string } };

/** What an agent does: call the sms_send channel tool. */
const smsSend = (args: Record<string, unknown>, key = agent.key, headers: Record<string, string> = {}) =>
  callFunction("agent-tools", key, { body: { name: "sms_send", arguments: args }, headers });

async function usedToday(permissionId: string): Promise<number> {
  const [row] = await adminSql()`select coalesce(sum(used), 0)::int as used from public.usage_counters
                                 where subject_id = ${permissionId} and period = 'day'`;
  return row.used;
}

beforeAll(async () => {
  owner = await newUser();
  const { data: workspaces } = await owner.client.from("workspaces").select("id").eq("personal", true);
  workspaceId = workspaces![0].id;
  twilioAccount = await rpc(owner, "create_connection", {
    p_provider: "twilio", p_name: "Twilio",
    p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN }, p_config: { base_url: twilio() },
  });
  telnyxAccount = await rpc(owner, "create_connection", {
    p_provider: "telnyx", p_name: "Telnyx", p_credentials: { api_key: TELNYX_FAKE_API_KEY },
    p_config: { base_url: status().TELNYX_FAKE_URL },
  });
  // Each account sends from its own numbers (the pool's default when the agent names none).
  for (const [fn, connection] of [["twilio", twilioAccount], ["telnyx", telnyxAccount]] as const) {
    const sync = await callFunction(`${fn}/numbers/sync`, owner.token, { body: { connection_id: connection.id } });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
  }
  agent = await agentWithKey(owner, [
    { connectionId: twilioAccount.id, scopes: ["sms"], dailySendLimit: 100 },
    { connectionId: telnyxAccount.id, scopes: ["sms"], dailySendLimit: 100 },
  ], "router");
});

afterAll(async () => {
  await closeAdminSql();
});

beforeEach(async () => {
  await fake(twilio(), "/__fake/faults", undefined, "DELETE");
  await fake(telnyx(), "/__fake/faults", undefined, "DELETE");
});

describe("without a route", () => {
  it("two usable accounts are for the agent to choose: 400 naming them", async () => {
    const res = await smsSend({ to: ["+14155550123"], body: "which one?" });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "invalid_request", details: { reason: "ambiguous_connection" } });
    expect(res.body.error.details.accounts.sort()).toEqual([twilioAccount.id, telnyxAccount.id].sort());
  });

  it("the account argument picks one", async () => {
    const res = await smsSend({ to: ["+14155550124"], body: "via Telnyx", account: telnyxAccount.id, from: TELNYX_FAKE_NUMBERS.primary });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "telnyx" });
    expect(res.body.failed_over).toBeUndefined();
  });
});

describe("with a route Twilio → Telnyx", () => {
  beforeAll(async () => {
    await rpc(owner, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [twilioAccount.id, telnyxAccount.id] });
  });

  it("goes to the first account when it takes the message", async () => {
    const res = await smsSend({ to: ["+14155550125"], body: "first try" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "twilio", sent: 1 });
    expect(await sentTo(telnyx(), "+14155550125")).toBe(0);
  });

  it("fails over when Twilio rate-limits (proof it was not taken): one operation, quota counted once, the attempt recorded", async () => {
    const [twilioGrant, telnyxGrant] = agent.permissions.map((p) => p.id);
    const before = { twilio: await usedToday(twilioGrant), telnyx: await usedToday(telnyxGrant) };
    await fake(twilio(), "/__fake/faults", { mode: "http429", count: 1 });
    const res = await smsSend({ to: ["+14155550126"], body: "fail over" }, agent.key, { "Idempotency-Key": "route-429" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "telnyx", sent: 1, failed_over: [{ provider: "twilio", error_code: "rate_limited" }] });
    expect(await sentTo(twilio(), "+14155550126")).toBe(0);
    expect(await sentTo(telnyx(), "+14155550126")).toBe(1);
    expect({ twilio: await usedToday(twilioGrant), telnyx: await usedToday(telnyxGrant) }).toEqual({ twilio: before.twilio, telnyx: before.telnyx + 1 });

    const [operation] = await adminSql()`select status, connection_id, quota_used from public.operations where id = ${res.body.operation_id}`;
    expect(operation).toEqual({ status: "succeeded", connection_id: telnyxAccount.id, quota_used: 1 });
    const { data: attempts } = await owner.client.from("operation_attempts")
      .select("attempt, provider, outcome, error_code, provider_status").eq("operation_id", res.body.operation_id);
    expect(attempts).toEqual([{ attempt: 1, provider: "twilio", outcome: "failed", error_code: "rate_limited", provider_status: 429 }]);

    // The same key replays the outcome: nothing is sent again anywhere.
    const again = await smsSend({ to: ["+14155550126"], body: "fail over" }, agent.key, { "Idempotency-Key": "route-429" });
    expect(again.body).toMatchObject({ replayed: true, provider: "telnyx" });
    expect(await sentTo(telnyx(), "+14155550126")).toBe(1);
  });

  it("never fails over when Twilio may have sent it (a 500): 503, 'unknown', quota kept, Telnyx untouched", async () => {
    await fake(twilio(), "/__fake/faults", { mode: "http500", count: 1, commit: true });
    const res = await smsSend({ to: ["+14155550127"], body: "maybe sent" });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "provider_unavailable", details: { provider: "twilio", status: 500 } });
    expect(await sentTo(telnyx(), "+14155550127")).toBe(0);
    const [operation] = await adminSql()`select status, quota_used from public.operations where id = ${res.body.error.details.operation_id}`;
    expect(operation).toEqual({ status: "unknown", quota_used: 1 });
  });

  it("when every account refuses, the send fails with the last refusal and consumes no quota", async () => {
    const [twilioGrant, telnyxGrant] = agent.permissions.map((p) => p.id);
    const before = { twilio: await usedToday(twilioGrant), telnyx: await usedToday(telnyxGrant) };
    await fake(twilio(), "/__fake/faults", { mode: "http429", count: 1 });
    await fake(telnyx(), "/__fake/faults", { mode: "http429", count: 1 });
    const res = await smsSend({ to: ["+14155550128"], body: "nobody" });
    expect(res.status).toBe(503);
    expect(res.body.error.details).toMatchObject({ provider: "telnyx", status: 429 });
    const [operation] = await adminSql()`select status, quota_used, quota_reserved from public.operations where id = ${res.body.error.details.operation_id}`;
    expect(operation).toEqual({ status: "failed", quota_used: 0, quota_reserved: 0 });
    expect({ twilio: await usedToday(twilioGrant), telnyx: await usedToday(telnyxGrant) }).toEqual(before);
  });

  it("a member's own route wins over the workspace's", async () => {
    await rpc(owner, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [telnyxAccount.id], p_user_id: owner.id });
    try {
      const res = await smsSend({ to: ["+14155550129"], body: "my route" });
      expect(res.body).toMatchObject({ status: "succeeded", provider: "telnyx" });
    } finally {
      await rpc(owner, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [], p_user_id: owner.id });
    }
  });
});

describe("the failover matrix: each failure class of the route's first account", () => {
  /** A fresh route first → Telnyx for the agent, run one send, and report where it went and what was counted. */
  async function attempt(first: { id: string }, fault: Record<string, unknown> | null, to: string) {
    await rpc(owner, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [first.id, telnyxAccount.id] });
    if (fault) await fake(twilio(), "/__fake/faults", fault);
    const twilioBefore = await sentTo(twilio(), to);
    const res = await smsSend({ to: [to], body: `matrix ${to}` });
    const operationId = res.body.operation_id ?? res.body.error?.details?.operation_id;
    const [operation] = await adminSql()`select status, quota_used, connection_id from public.operations where id = ${operationId}`;
    const [{ attempts }] = await adminSql()`select count(*)::int as attempts from public.operation_attempts where operation_id = ${operationId}`;
    const [{ counted }] = await adminSql()`select coalesce(sum(u.used), 0)::int as counted from public.usage_counters u
      where u.period = 'day' and u.subject_id in (select id from public.agent_permissions where agent_id = ${agent.agent.id}::uuid)`;
    return { res, operation, attempts, counted, twilio: (await sentTo(twilio(), to)) - twilioBefore, telnyx: await sentTo(telnyx(), to) };
  }

  let badToken: { id: string };
  let closedPort: { id: string };
  beforeAll(async () => {
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve)); // nothing listens there any more
    badToken = await rpc(owner, "create_connection", {
      p_provider: "twilio", p_name: "Twilio (wrong token)",
      p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: "not-the-token" }, p_config: { base_url: twilio() },
    });
    closedPort = await rpc(owner, "create_connection", {
      p_provider: "twilio", p_name: "Twilio (down)",
      p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN }, p_config: { base_url: `http://127.0.0.1:${port}` },
    });
    for (const account of [badToken, closedPort]) {
      await rpc(owner, "add_phone_number", { p_connection_id: account.id, p_e164: TWILIO_FAKE_NUMBERS.primary, p_capabilities: ["sms"] });
      await rpc(owner, "grant_agent_permission", {
        p_agent_id: agent.agent.id, p_connection_id: account.id, p_scopes: ["sms"], p_daily_send_limit: 100,
        p_max_recipients_per_message: 10, p_allowed_recipients: [], p_blocked_recipients: [], p_expires_at: null,
      });
    }
  });
  afterAll(async () => {
    await rpc(owner, "set_route", { p_workspace_id: workspaceId, p_channel: "sms", p_connection_ids: [twilioAccount.id, telnyxAccount.id] });
  });

  // Proof it was not taken → the next account; anything that may have been sent → never.
  const cases: Array<[string, () => { id: string }, Record<string, unknown> | null, boolean, string]> = [
    ["rate limited (429)", () => twilioAccount, { mode: "http429", count: 1 }, true, "rate_limited"],
    ["credentials refused (401)", () => badToken, null, true, "auth"],
    ["connection refused", () => closedPort, null, true, "unavailable"],
    ["server error (500) after recording", () => twilioAccount, { mode: "http500", count: 1, commit: true }, false, "unknown"],
    ["unavailable (503)", () => twilioAccount, { mode: "http503", count: 1 }, false, "unknown"],
    ["connection reset after recording", () => twilioAccount, { mode: "reset", count: 1 }, false, "unknown"],
  ];
  cases.forEach(([what, first, fault, movesOn, outcome], i) => {
    it(`${what}: ${movesOn ? "fails over to Telnyx" : "stays, 'unknown', never sent twice"}`, async () => {
      const to = `+1415555${String(3000 + i).padStart(4, "0")}`;
      const before = await adminSql()`select coalesce(sum(u.used), 0)::int as counted from public.usage_counters u
        where u.period = 'day' and u.subject_id in (select id from public.agent_permissions where agent_id = ${agent.agent.id}::uuid)`;
      const r = await attempt(first(), fault, to);
      if (movesOn) {
        expect(r.res.status, JSON.stringify(r.res.body)).toBe(200);
        expect(r.res.body).toMatchObject({ provider: "telnyx", failed_over: [{ provider: "twilio", error_code: outcome }] });
        expect(r.telnyx).toBe(1);
        expect(r.operation).toMatchObject({ status: "succeeded", quota_used: 1, connection_id: telnyxAccount.id });
        expect(r.attempts).toBe(1);
      } else {
        expect(r.res.status).toBeGreaterThanOrEqual(503);
        expect(r.telnyx).toBe(0);
        expect(r.operation).toMatchObject({ status: outcome, quota_used: 1 });
        expect(r.attempts).toBe(0);
      }
      // Quota is counted once, whichever account took it (or may have).
      expect(r.counted - before[0].counted).toBe(1);
    });
  });
});

describe("bulk across providers", () => {
  it("a 20-recipient send Twilio refuses up front goes whole to Telnyx, quota counted once", async () => {
    const to = Array.from({ length: 20 }, (_, i) => `+1415555${String(4000 + i)}`);
    await fake(twilio(), "/__fake/faults", { mode: "http429", count: 1 });
    const bulk = await agentWithKey(owner, [
      { connectionId: twilioAccount.id, scopes: ["sms"], dailySendLimit: 100, maxRecipientsPerMessage: 50 },
      { connectionId: telnyxAccount.id, scopes: ["sms"], dailySendLimit: 100, maxRecipientsPerMessage: 50 },
    ], "bulk router");
    const res = await smsSend({ to, body: "bulk failover" }, bulk.key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ provider: "telnyx", sent: 20, status: "succeeded" });
    expect(await Promise.all(to.map((n) => sentTo(telnyx(), n)))).toEqual(to.map(() => 1));
    expect(await usedToday(bulk.permissions[0].id)).toBe(0);
    expect(await usedToday(bulk.permissions[1].id)).toBe(20);
  });

  it("a send Twilio took in part is not moved: the rest is reported not sent, nothing goes out twice", async () => {
    const to = Array.from({ length: 3 }, (_, i) => `+1415555${String(5000 + i)}`);
    await fake(twilio(), "/__fake/faults", { mode: "http429", count: 1, after: 1 });
    const res = await smsSend({ to, body: "partly" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ provider: "twilio", status: "partial", sent: 1 });
    expect(res.body.failed_over).toBeUndefined();
    expect(await Promise.all(to.map((n) => sentTo(telnyx(), n)))).toEqual([0, 0, 0]);
    const [operation] = await adminSql()`select status, quota_used from public.operations where id = ${res.body.operation_id}`;
    expect(operation).toEqual({ status: "partial", quota_used: 1 });
  });
});


describe("the other channel tools", () => {
  it("whatsapp_send sends a template through Twilio's WhatsApp sender", async () => {
    const wa = await agentWithKey(owner, [{ connectionId: twilioAccount.id, scopes: ["whatsapp"], dailySendLimit: 10 }], "whatsapp");
    const res = await callFunction("agent-tools", wa.key, {
      body: { name: "whatsapp_send", arguments: { to: ["+14155550191"], template: { id: "HX0123456789abcdef0123456789abcdef", variables: ["Ada"] }, from: TWILIO_FAKE_NUMBERS.whatsapp } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ provider: "twilio", status: "succeeded", sent: 1 });
    const { messages } = await fake(twilio(), "/__fake/messages");
    const sent = messages.find((m: any) => m.sid === res.body.provider_message_ids[0]);
    expect(sent.fake.request.params).toMatchObject({ To: "whatsapp:+14155550191", From: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`, ContentSid: "HX0123456789abcdef0123456789abcdef" });
    expect(JSON.parse(sent.fake.request.params.ContentVariables)).toEqual({ "1": "Ada" });
  });

  it("mms_send through ClickSend takes its one media file, with a subject", async () => {
    const { data: clicksend, error } = await owner.client.rpc("create_connection", {
      p_provider: "clicksend_sms", p_name: "ClickSend MMS", p_credentials: { username: "demo", api_key: "demo-key" },
      p_config: { base_url: status().CLICKSEND_FAKE_URL },
    });
    expect(error).toBeNull();
    const mms = await agentWithKey(owner, [{ connectionId: clicksend.id, scopes: ["mms"], dailySendLimit: 10 }], "mms");
    const ok = await callFunction("agent-tools", mms.key, {
      body: { name: "mms_send", arguments: { to: ["+61411111999"], body: "Look", media_urls: ["https://cdn.example.com/a.jpg"] } },
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ provider: "clicksend_sms", status: "succeeded" });
    const two = await callFunction("agent-tools", mms.key, {
      body: { name: "mms_send", arguments: { to: ["+61411111998"], media_urls: ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg"] } },
    });
    expect(two.status).toBe(400);
    expect(two.body.error.message).toContain("takes one media file per MMS");
  });
});
