/**
 * The SDK (packages/client) against the devstack: the user face (Switchboard, on the
 * user's supabase-js client: RPCs through the PostgREST stand-in, functions over HTTP)
 * and the agent face (SwitchboardAgent with an agent key, or the user's session plus
 * an agent id). Errors surface as SwitchboardError with the documented code and status.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  type AgentOptions,
  type Connection,
  Switchboard,
  SwitchboardAgent,
  SwitchboardError,
} from "../../packages/client/src/index.ts";
import { clicksendAccount, sendgridAccount, smtpAccount } from "./fixtures.ts";
import { adminSql, closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

type Schema = Record<string, any>;

/**
 * SwitchboardAgent with an agent key, as a runtime would build it. supabase-js on Node 20
 * needs a WebSocket implementation; until SwitchboardAgent forwards a `realtime` option
 * (see "constructs on Node 20" below) a global one is lent for the construction only.
 */
function agentWithKey(agentKey: string): SwitchboardAgent {
  const options = { supabaseUrl: status().API_URL, anonKey: status().ANON_KEY, agentKey, realtime: { transport: WebSocket } };
  const g = globalThis as { WebSocket?: unknown };
  const lent = g.WebSocket === undefined;
  if (lent) g.WebSocket = WebSocket;
  try {
    return new SwitchboardAgent(options as AgentOptions);
  } finally {
    if (lent) delete g.WebSocket;
  }
}

/** Resolves to the SwitchboardError a call failed with (fails the test if it succeeded). */
async function failure(promise: Promise<unknown>): Promise<SwitchboardError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error, "the call should have failed").toBeInstanceOf(SwitchboardError);
  return error as SwitchboardError;
}

const fakeRoot = (url: string) => url.replace(/\/v3$/, "");
const smsBody = (what = "sdk") => `${what} ${randomUUID().slice(0, 8)}`;

afterAll(closeAdminSql);

describe("SwitchboardAgent on Node 20", () => {
  it("constructs with an agent key when given a WebSocket transport (realtime option), without a global WebSocket", () => {
    expect((globalThis as { WebSocket?: unknown }).WebSocket, "precondition: no global WebSocket (Node 20)").toBeUndefined();
    const options = { supabaseUrl: status().API_URL, anonKey: status().ANON_KEY, agentKey: "swb_agent_x", realtime: { transport: WebSocket } };
    // supabase-js refuses to construct on Node < 22 without a transport; the SDK must let one through.
    expect(() => new SwitchboardAgent(options as AgentOptions)).not.toThrow();
  });
});

describe("Switchboard (user) and SwitchboardAgent against the devstack", () => {
  let user: TestUser;
  let sb: Switchboard;
  let clicksend: Connection;
  let smtp: Connection;
  let sendgrid: Connection;
  let agentId: string;
  let smsGrantId: string;
  let agentKey: string;
  let agentKeyId: string;
  let agent: SwitchboardAgent;

  beforeAll(async () => {
    user = await newUser();
    sb = new Switchboard(user.client as never);
  });

  it("createAgent (in the personal workspace by default)", async () => {
    const created = await sb.createAgent("SDK agent", "made by the SDK test");
    expect(created).toMatchObject({ name: "SDK agent", description: "made by the SDK test", is_active: true, user_id: user.id });
    const [personal] = await sb.listWorkspaces();
    expect(personal).toMatchObject({ personal: true, role: "owner", primary_owner_user_id: user.id });
    expect(created.workspace_id).toBe(personal.id);
    agentId = created.id;
  });

  it("createConnection for each provider, pointing at the fakes; secrets never come back", async () => {
    clicksend = await sb.createConnection({ provider: "clicksend_sms", name: "SMS", ...clicksendAccount() });
    smtp = await sb.createConnection({ provider: "smtp", name: "Mailbox", ...smtpAccount() });
    sendgrid = await sb.createConnection({ provider: "sendgrid", name: "SendGrid", ...sendgridAccount() });
    expect(clicksend).toMatchObject({ provider: "clicksend_sms", name: "SMS", status: "active", has_credentials: true });
    expect(clicksend.granted_scopes.sort()).toEqual(["balance", "history", "mms", "sms"]);
    expect(smtp).toMatchObject({ provider: "smtp", config: { host: status().SMTP_FAKE_HOST } });
    expect(sendgrid).toMatchObject({ provider: "sendgrid", config: { from_email: "agent@example.com" } });
    for (const c of [clicksend, smtp, sendgrid]) {
      expect(JSON.stringify(c)).not.toMatch(/demo-key|demo-pass|SG\.demo-key/);
      expect(c.webhook_token).toMatch(/^[0-9a-f]{48}$/);
    }
  });

  it("an RPC failure is a SwitchboardError with our code (conflict, not_found, invalid_request)", async () => {
    const dup = await failure(sb.createConnection({ provider: "clicksend_sms", name: "SMS", ...clicksendAccount() }));
    expect(dup.code).toBe("conflict");
    const missing = await failure(sb.grant({ agentId: randomUUID(), connectionId: clicksend.id, scopes: ["sms"] }));
    expect(missing.code).toBe("not_found");
    const bad = await failure(sb.createConnection({ provider: "twilio" as never, name: "X", credentials: {} }));
    expect(bad.code).toBe("invalid_request");
  });

  it("testConnection runs each provider's credential check and records it", async () => {
    for (const c of [clicksend, smtp, sendgrid]) {
      const result = await sb.testConnection(c.provider, c.id);
      expect(result, c.provider).toMatchObject({ ok: true, message: expect.any(String) });
    }
    const [row] = await adminSql()`select last_test_ok, last_tested_at from public.connections where id = ${sendgrid.id}`;
    expect(row.last_test_ok).toBe(true);
    expect(row.last_tested_at).not.toBeNull();
  });

  it("grant, issueAgentKey and getAgentTools", async () => {
    const smsGrant = await sb.grant({
      agentId, connectionId: clicksend.id, scopes: ["sms", "balance"], maxRecipientsPerMessage: 2, dailySendLimit: 3,
    });
    smsGrantId = smsGrant.id;
    expect(smsGrant).toMatchObject({ agent_id: agentId, connection_id: clicksend.id, max_recipients_per_message: 2, daily_send_limit: 3 });
    await sb.grant({ agentId, connectionId: smtp.id, scopes: ["email"], allowedRecipients: ["example.com"] });
    await sb.grant({ agentId, connectionId: sendgrid.id, scopes: ["email"], expiresAt: new Date(Date.now() + 86_400_000) });

    const issued = await sb.issueAgentKey(agentId, { name: "sdk" });
    expect(issued.key).toMatch(/^swb_agent_[A-Za-z0-9_-]{43}$/);
    expect(issued.key.startsWith(issued.key_prefix)).toBe(true);
    agentKey = issued.key;
    agentKeyId = issued.id;
    agent = agentWithKey(agentKey);

    const raw = (await sb.getAgentTools(agentId)) as Schema[];
    expect(raw.map((t) => t.name).sort()).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
    expect(raw.find((t) => t.name === "message_status")).toMatchObject({
      read_only: true, destructive: false, provider: null, connection_id: null, connection_name: null, limits: null,
    });
    // Two mail accounts behind one email_send: each with its id and limits.
    const email = raw.find((t) => t.name === "email_send")!;
    expect(email).toMatchObject({ provider: null, connection_id: null });
    expect(email.limits.accounts.map((a: Schema) => [a.connection_id, a.connection_name])).toEqual([[smtp.id, "Mailbox"], [sendgrid.id, "SendGrid"]]);
    expect(email.description).toContain(`Accounts (pass account to choose one): Mailbox = ${smtp.id} (`);
    expect(email.description).toContain(`; SendGrid = ${sendgrid.id} (`);
    expect(raw.find((t) => t.name === "sms_send")).toMatchObject({ provider: "clicksend_sms", connection_id: clicksend.id });
    const openai = (await sb.getAgentTools(agentId, "openai")) as Schema[];
    expect(openai.every((t) => t.type === "function" && t.function.strict === true)).toBe(true);
  });

  it("SwitchboardAgent.listTools('openai' | 'anthropic') with the agent key", async () => {
    const openai = await agent.listTools<Schema>("openai");
    expect(openai.map((t) => t.function.name).sort()).toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
    expect(openai.find((t) => t.function.name === "sms_send")!.function.description).toContain("Max 2 recipients per message.");
    const anthropic = await agent.listTools<Schema>("anthropic");
    expect(anthropic.every((t) => typeof t.name === "string" && t.input_schema?.type === "object")).toBe(true);
    // The default is OpenAI's shape.
    expect((await agent.listTools<Schema>())[0]).toHaveProperty("function");
  });

  it("SwitchboardAgent.callTool sends through the fake", async () => {
    const body = smsBody("callTool");
    const result = await agent.callTool<Schema>("sms_send", { to: ["+61412000200"], body, from: null, account: null });
    expect(result).toMatchObject({ status: "succeeded", sent: 1, provider: "clicksend_sms" });
    const messages = ((await (await fetch(`${fakeRoot(status().CLICKSEND_FAKE_URL)}/__fake/messages`)).json()) as any).messages as any[];
    expect(messages.find((m) => m.custom_string === result.operation_id)).toMatchObject({ to: "+61412000200", body });

    // Two mail accounts and no route: email_send goes to the default mail connection (the mailbox, created first).
    const mail = await agent.callTool<Schema>("email_send", { to: ["ada@example.com"], subject: "From the SDK", text: "Hi Ada" });
    expect(mail).toMatchObject({ status: "succeeded", sent: 1, provider: "smtp" });
    const [row] = await adminSql()`select connection_id, capability_key from public.operations where id = ${mail.operation_id}`;
    expect(row).toEqual({ connection_id: smtp.id, capability_key: "email_send" });
  });

  it("callTool with an idempotency key replays instead of sending twice", async () => {
    const key = randomUUID();
    const args = { to: ["+61411111111"], body: smsBody("idem") };
    const first = await agent.callTool<Schema>("sms_send", args, { idempotencyKey: key });
    const again = await agent.callTool<Schema>("sms_send", args, { idempotencyKey: key });
    expect(again).toMatchObject({ operation_id: first.operation_id, replayed: true, provider: "clicksend_sms" });
    const other = await failure(agent.callTool("sms_send", { ...args, body: "different" }, { idempotencyKey: key }));
    expect([other.code, other.status]).toEqual(["conflict", 409]);
  });

  it("errors surface as SwitchboardError: permission_denied 403, quota_exceeded 429, invalid_request 400, not_found 404", async () => {
    const denied = await failure(agent.callTool("smtp_send_email", { to: ["eve@evil.test"], subject: "x", text: "x" }));
    expect([denied.code, denied.status]).toEqual(["permission_denied", 403]);
    expect(denied.details).toMatchObject({ reason: "recipient_not_allowed", operation_id: expect.any(String) });
    const deniedChannel = await failure(agent.callTool("email_send", { to: ["eve@evil.test"], subject: "x", text: "x" }));
    expect([deniedChannel.code, deniedChannel.status]).toEqual(["permission_denied", 403]);
    expect(deniedChannel.details).toMatchObject({ reason: "recipient_not_allowed", operation_id: expect.any(String) });

    // 2 of 3 used today (callTool + idempotent send); 2 more recipients overshoot.
    const quota = await failure(agent.callTool("sms_send", { to: ["+61412000201", "+61412000202"], body: smsBody("quota") }));
    expect([quota.code, quota.status]).toEqual(["quota_exceeded", 429]);
    expect(quota.details).toMatchObject({ daily_send_limit: 3, used_today: 2, requested: 2 });

    const invalid = await failure(agent.callTool("sms_send", { to: ["not a number"], body: "x" }));
    expect([invalid.code, invalid.status]).toEqual(["invalid_request", 400]);
    const unknown = await failure(agent.callTool("nope_tool", {}));
    expect([unknown.code, unknown.status]).toEqual(["not_found", 404]);
  });

  it("updateGrant changes the limits the agent sees and is held to", async () => {
    const updated = await sb.updateGrant(smsGrantId, { daily_send_limit: 10, max_recipients_per_message: 1 });
    expect(updated).toMatchObject({ daily_send_limit: 10, max_recipients_per_message: 1 });
    const tools = await agent.listTools<Schema>("anthropic");
    const sms = tools.find((t) => t.name === "sms_send")!;
    expect(sms.description).toContain("Max 1 recipients per message.");
    expect(sms.description).toContain("8 of 10 messages left today (UTC).");
    const tooMany = await failure(agent.callTool("sms_send", { to: ["+61412000203", "+61412000204"], body: smsBody() }));
    expect(tooMany.details).toMatchObject({ reason: "recipient_limit", max_recipients_per_message: 1 });

    const bad = await failure(sb.updateGrant(smsGrantId, { surprise: 1 } as never));
    expect(bad.code).toBe("invalid_request");
  });

  it("the user's own session acts as the agent with Switchboard.agent(agentId)", async () => {
    const asUser = sb.agent(agentId);
    const tools = await asUser.listTools<Schema>("openai");
    expect(tools.map((t) => t.function.name)).toContain("sms_send");
    const result = await asUser.callTool<Schema>("clicksend_get_balance", {});
    expect(result.status).toBe("succeeded");
    const [row] = await adminSql()`select auth_mode, agent_id from public.operations where id = ${result.operation_id}`;
    expect(row).toEqual({ auth_mode: "user_agent", agent_id: agentId });
  });

  it("rotateCredentials: bad credentials fail the send and the test, good ones work again", async () => {
    const rotated = await sb.rotateCredentials(smtp.id, { username: "demo", password: "wrong" });
    expect(rotated.credentials_rotated_at).not.toBeNull();
    const refused = await failure(agent.callTool("smtp_send_email", { to: ["ada@example.com"], subject: "x", text: "x" }));
    expect([refused.code, refused.status]).toEqual(["provider_error", 502]);
    expect(JSON.stringify(refused.details)).not.toContain("wrong");

    // A failed test marks the connection as in error: its tools are withheld until fixed —
    // email_send stays (SendGrid) but no longer lists the mailbox.
    expect((await sb.testConnection("smtp", smtp.id)).ok).toBe(false);
    const withheld = ((await agent.listTools<Schema>("raw")) as Schema[]).find((t) => t.name === "email_send")!;
    expect(withheld).toMatchObject({ provider: "sendgrid", connection_id: sendgrid.id });
    expect(withheld.limits.accounts).toBeUndefined();
    expect(withheld.description).not.toContain(smtp.id);
    const notListed = await failure(agent.callTool("email_send", { to: ["ada@example.com"], subject: "x", text: "x", account: smtp.id }));
    expect([notListed.code, notListed.status]).toEqual(["permission_denied", 403]);

    const fixed = await sb.rotateCredentials(smtp.id, { username: "demo", password: "demo-pass" });
    expect(fixed.status).toBe("active");
    expect((await sb.testConnection("smtp", smtp.id)).ok).toBe(true);
    const sent = await agent.callTool<Schema>("smtp_send_email", { to: ["ada@example.com"], subject: "After rotation", text: "Hi" });
    expect(sent.status).toBe("succeeded");
    const listedAgain = ((await agent.listTools<Schema>("raw")) as Schema[]).find((t) => t.name === "email_send")!;
    expect(listedAgain.limits.accounts.map((a: Schema) => a.connection_id)).toEqual([smtp.id, sendgrid.id]);
  });

  it("listConnections reads the user's connections in the Connection shape", async () => {
    const connections = await sb.listConnections();
    expect(connections.map((c) => c.name).sort()).toEqual(["Mailbox", "SMS", "SendGrid"]);
    // Exactly what the RPCs return (connection_json): workspace, default mail, creator; no Vault reference.
    const created = { SMS: clicksend, Mailbox: smtp, SendGrid: sendgrid } as Record<string, Connection>;
    for (const c of connections) {
      const { updated_at: _u, last_tested_at: _t, last_test_ok: _o, last_test_message: _m, credentials_rotated_at: _r, status: _s, granted_scopes, ...rest } = created[c.name]!;
      expect(c).toMatchObject(rest);
      expect([...c.granted_scopes].sort()).toEqual([...granted_scopes].sort());
      expect(Object.keys(c).sort()).toEqual(Object.keys(created[c.name]!).sort());
    }
    expect(connections.find((c) => c.name === "Mailbox")).toMatchObject({ is_default_mail: true, created_by: user.id });
    // The same shape the RPCs return (provider name, has_credentials), so that e.g.
    // sb.testConnection(c.provider, c.id) works on a listed connection.
    expect(connections.map((c) => [c.name, c.provider, c.has_credentials]).sort()).toEqual([
      ["Mailbox", "smtp", true], ["SMS", "clicksend_sms", true], ["SendGrid", "sendgrid", true],
    ]);
  });

  it("listAgents, listOperations and listMessageEvents read through RLS", async () => {
    const agents = await sb.listAgents();
    expect(agents.map((a) => a.id)).toEqual([agentId]);

    const operations = await sb.listOperations({ agentId, limit: 100 });
    expect(operations.length).toBeGreaterThanOrEqual(8);
    expect(operations.every((o) => o.agent_id === agentId && o.user_id === user.id)).toBe(true);
    const times = operations.map((o) => Date.parse(o.created_at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(operations.map((o) => o.status)).toEqual(expect.arrayContaining(["succeeded", "denied"]));
    expect(await sb.listOperations({ limit: 2 })).toHaveLength(2);

    // Another user sees none of it.
    const stranger = new Switchboard((await newUser()).client as never);
    expect(await stranger.listOperations()).toEqual([]);
    expect(await stranger.listAgents()).toEqual([]);

    const events = await sb.listMessageEvents();
    expect(Array.isArray(events)).toBe(true);
  });

  it("setAgentActive (a PATCH through PostgREST)", async () => {
    const outcome = await sb.setAgentActive(agentId, false).then(() => null, (e: SwitchboardError) => e);
    expect(outcome).toBeNull();
    expect((await agent.listTools("raw"))).toEqual([]);
    await sb.setAgentActive(agentId, true);
  });

  it("revokeAgentKey: the agent is refused at once with unauthorized 401", async () => {
    const revoked = await sb.revokeAgentKey(agentKeyId);
    expect(revoked).toMatchObject({ id: agentKeyId, revoked_at: expect.any(String) });
    const listing = await failure(agent.listTools("openai"));
    expect([listing.code, listing.status]).toEqual(["unauthorized", 401]);
    const call = await failure(agent.callTool("clicksend_get_balance", {}));
    expect([call.code, call.status, call.message]).toEqual(["unauthorized", 401, "agent key revoked"]);

    // A new key works.
    const fresh = await sb.issueAgentKey(agentId);
    agent = agentWithKey(fresh.key);
    expect((await agent.listTools<Schema>("raw")).map((t) => t.name).sort())
      .toEqual(["clicksend_get_balance", "email_send", "message_status", "sms_send"]);
  });

  it("deleteConnection: its grants are revoked and its tools are gone", async () => {
    expect(await sb.deleteConnection(clicksend.id)).toEqual({ id: clicksend.id, deleted: true });
    const [grant] = await adminSql()`select is_active, revoked_at from public.agent_permissions where id = ${smsGrantId}`;
    expect(grant.is_active).toBe(false);
    expect(grant.revoked_at).not.toBeNull();
    const names = (await agent.listTools<Schema>("anthropic")).map((t) => t.name).sort();
    expect(names).toEqual(["email_send", "message_status"]);
    expect(((await sb.getAgentTools(agentId)) as Schema[]).some((t) => t.provider === "clicksend_sms")).toBe(false);
    const gone = await failure(agent.callTool("clicksend_send_sms", { to: ["+61411111111"], body: smsBody() }));
    expect([gone.code, gone.status]).toEqual(["permission_denied", 403]);
    const goneChannel = await failure(agent.callTool("sms_send", { to: ["+61411111111"], body: smsBody() }));
    expect([goneChannel.code, goneChannel.status]).toEqual(["permission_denied", 403]);
    expect(goneChannel.details).toMatchObject({ reason: "no_usable_account" });
    expect((await sb.listConnections()).map((c) => c.id)).not.toContain(clicksend.id);
    // The secret went with it.
    const [secret] = await adminSql()`select count(*)::int as n from vault.secrets where name = ${`switchboard.connection.${clicksend.id}`}`;
    expect(secret.n).toBe(0);
  });
});

describe("Switchboard: workspaces, members, permissions, numbers, identities and the audit trail", () => {
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let asOwner: Switchboard;
  let asAdmin: Switchboard;
  let asMember: Switchboard;
  let teamId: string;
  let sms: Connection;
  let smtp: Connection;
  let sendgrid: Connection;
  let permissionId: string;
  let memberNumber: string;
  let agentId: string;
  let grantId: string;
  let agentKey: string;

  beforeAll(async () => {
    [owner, admin, member] = await Promise.all([newUser(), newUser(), newUser()]);
    [asOwner, asAdmin, asMember] = [owner, admin, member].map((u) => new Switchboard(u.client as never));
  });

  it("listWorkspaces, createWorkspace, renameWorkspace", async () => {
    const [personal, ...others] = await asOwner.listWorkspaces();
    expect(others).toEqual([]);
    expect(personal).toMatchObject({ personal: true, role: "owner", primary_owner_user_id: owner.id });
    const team = await asOwner.createWorkspace("SDK team");
    expect(team).toMatchObject({ name: "SDK team", personal: false, role: "owner", primary_owner_user_id: owner.id });
    teamId = team.id;
    expect(await asOwner.renameWorkspace(teamId, "SDK team, renamed")).toMatchObject({ id: teamId, name: "SDK team, renamed" });
    expect((await asOwner.listWorkspaces()).map((w) => [w.name, w.role, w.personal])).toEqual([
      [personal.name, "owner", true], ["SDK team, renamed", "owner", false],
    ]);
    const empty = await failure(asOwner.createWorkspace("  "));
    expect([empty.code, empty.status]).toEqual(["invalid_request", 400]);
  });

  it("inviteMember → token; declineInvitation, acceptInvitation, revokeInvitation, listInvitations, listMembers", async () => {
    const first = await asOwner.inviteMember(teamId, member.email);
    expect(first).toMatchObject({ workspace_id: teamId, workspace_name: "SDK team, renamed", email: member.email, role: "member" });
    expect(first.token).toMatch(/^swb_invite_/);
    expect((await asMember.listInvitations()).map((i) => i.id)).toEqual([first.id]);
    expect(await asMember.declineInvitation(first.token)).toEqual({ id: first.id, status: "declined" });

    const again = await asOwner.inviteMember(teamId, member.email, { expiresAt: new Date(Date.now() + 3_600_000) });
    const forAdmin = await asOwner.inviteMember(teamId, admin.email, { role: "admin" });
    const stray = await asOwner.inviteMember(teamId, "nobody@example.test");
    expect(await asOwner.revokeInvitation(stray.id)).toEqual({ id: stray.id, status: "revoked" });
    const statuses = (await asOwner.listInvitations({ workspaceId: teamId })).map((i) => [i.email, i.status]);
    expect(statuses).toEqual(expect.arrayContaining([[member.email, "declined"], [member.email, "pending"], [admin.email, "pending"], ["nobody@example.test", "revoked"]]));
    expect((await asOwner.listInvitations({ workspaceId: teamId, status: "pending" })).length).toBe(2);

    // Someone else's token is "not found", as is a used one.
    const stolen = await failure(asAdmin.acceptInvitation(again.token));
    expect([stolen.code, stolen.status]).toEqual(["not_found", 404]);
    expect(await asMember.acceptInvitation(again.token)).toMatchObject({ id: teamId, role: "member", personal: false });
    expect(await asAdmin.acceptInvitation(forAdmin.token)).toMatchObject({ id: teamId, role: "admin" });
    expect((await failure(asMember.acceptInvitation(again.token))).code).toBe("not_found");

    const members = await asMember.listMembers(teamId);
    expect(Object.fromEntries(members.map((m) => [m.user_id, m.role]))).toEqual({ [owner.id]: "owner", [admin.id]: "admin", [member.id]: "member" });
    expect((await asMember.listWorkspaces()).find((w) => w.id === teamId)).toMatchObject({ role: "member" });
    const notAdmin = await failure(asMember.inviteMember(teamId, "x@example.test"));
    expect([notAdmin.code, notAdmin.status]).toEqual(["permission_denied", 403]);
  });

  it("changeMemberRole (owner only)", async () => {
    expect(await asOwner.changeMemberRole(teamId, member.id, "admin")).toEqual({ workspace_id: teamId, user_id: member.id, role: "admin" });
    expect(await asOwner.changeMemberRole(teamId, member.id, "member")).toMatchObject({ role: "member" });
    expect((await failure(asAdmin.changeMemberRole(teamId, member.id, "admin"))).code).toBe("permission_denied");
  });

  it("createConnection with workspaceId (admins); the Connection shape; setDefaultMailConnection", async () => {
    sms = await asAdmin.createConnection({ provider: "clicksend_sms", name: "Team SMS", workspaceId: teamId, ...clicksendAccount() });
    expect(sms).toMatchObject({ workspace_id: teamId, created_by: admin.id, is_default_mail: false, provider: "clicksend_sms", has_credentials: true });
    expect(sms).not.toHaveProperty("user_id");
    expect(sms.webhook_token).toMatch(/^[0-9a-f]{48}$/);
    smtp = await asAdmin.createConnection({ provider: "smtp", name: "Team mailbox", workspaceId: teamId, ...smtpAccount() });
    sendgrid = await asOwner.createConnection({ provider: "sendgrid", name: "Team SendGrid", workspaceId: teamId, ...sendgridAccount() });
    expect([smtp.is_default_mail, sendgrid.is_default_mail]).toEqual([true, false]);
    const denied = await failure(asMember.createConnection({ provider: "clicksend_sms", name: "Mine", workspaceId: teamId, ...clicksendAccount() }));
    expect([denied.code, denied.status]).toEqual(["permission_denied", 403]);

    expect(await asAdmin.setDefaultMailConnection(sendgrid.id)).toMatchObject({ id: sendgrid.id, is_default_mail: true });
    const listed = await asAdmin.listConnections({ workspaceId: teamId });
    expect(listed.map((c) => [c.name, c.is_default_mail])).toEqual([["Team SMS", false], ["Team mailbox", false], ["Team SendGrid", true]]);
    expect(listed.every((c) => /^[0-9a-f]{48}$/.test(c.webhook_token ?? ""))).toBe(true);
    expect((await failure(asAdmin.setDefaultMailConnection(sms.id))).code).toBe("invalid_request");
    // The member holds no permission yet: they see none of them.
    expect(await asMember.listConnections({ workspaceId: teamId })).toEqual([]);
  });

  it("setMemberPermission, listMemberPermissions, removeMemberPermission; members see what they may, without webhook tokens", async () => {
    const permission = await asAdmin.setMemberPermission({
      connectionId: sms.id, userId: member.id, canSend: true, scopes: ["sms", "balance"], dailySendLimit: 5, monthlySendLimit: 20,
      allowedRecipients: ["+61"],
    });
    expect(permission).toMatchObject({ connection_id: sms.id, user_id: member.id, can_view: true, can_send: true, can_configure: false,
      daily_send_limit: 5, monthly_send_limit: 20, allowed_recipients: ["+61"], granted_by: admin.id });
    permissionId = permission.id;
    await asAdmin.setMemberPermission({ connectionId: smtp.id, userId: member.id });
    expect((await asAdmin.listMemberPermissions({ workspaceId: teamId, userId: member.id })).map((p) => p.connection_id).sort())
      .toEqual([sms.id, smtp.id].sort());
    expect((await asMember.listMemberPermissions({ connectionId: sms.id })).map((p) => p.id)).toEqual([permissionId]);

    const seen = await asMember.listConnections({ workspaceId: teamId });
    expect(seen.map((c) => c.name)).toEqual(["Team SMS", "Team mailbox"]);
    expect(seen.map((c) => c.webhook_token)).toEqual([null, null]);

    expect(await asAdmin.removeMemberPermission(smtp.id, member.id)).toMatchObject({ removed: true });
    expect((await asMember.listConnections({ workspaceId: teamId })).map((c) => c.name)).toEqual(["Team SMS"]);
    expect((await failure(asAdmin.removeMemberPermission(smtp.id, member.id))).code).toBe("not_found");
    expect((await failure(asAdmin.setMemberPermission({ connectionId: sms.id, userId: admin.id }))).code).toBe("invalid_request");
    expect((await failure(asMember.setMemberPermission({ connectionId: sms.id, userId: member.id, dailySendLimit: 500 }))).code).toBe("permission_denied");
  });

  it("addPhoneNumber, updatePhoneNumber, deletePhoneNumber, listPhoneNumbers, setMemberDefaultNumber, listDefaultNumbers", async () => {
    const pool = await asAdmin.addPhoneNumber({ connectionId: sms.id, e164: "+61400200000", friendlyName: "Pool" });
    expect(pool).toMatchObject({ is_default: true, assigned_to: null, capabilities: ["sms"], status: "active" });
    const mine = await asAdmin.addPhoneNumber({ connectionId: sms.id, e164: "+61400200001", assignedTo: member.id, capabilities: ["sms", "mms"] });
    memberNumber = mine.e164;
    const spare = await asAdmin.addPhoneNumber({ connectionId: sms.id, e164: "+61400200002" });
    expect(await asAdmin.updatePhoneNumber(mine.id, { friendly_name: "Member line" })).toMatchObject({ friendly_name: "Member line", assigned_to: member.id });
    expect(await asAdmin.deletePhoneNumber(spare.id)).toEqual({ id: spare.id, deleted: true });
    expect((await asMember.listPhoneNumbers({ connectionId: sms.id })).map((n) => n.e164)).toEqual(["+61400200000", "+61400200001"]);
    expect((await failure(asAdmin.addPhoneNumber({ connectionId: sms.id, e164: "0400 200 003" }))).code).toBe("invalid_request");
    expect((await failure(asAdmin.addPhoneNumber({ connectionId: sms.id, e164: "+61400200000" }))).code).toBe("conflict");
    expect((await failure(asMember.updatePhoneNumber(pool.id, { assigned_to: member.id }))).code).toBe("permission_denied");

    expect(await asMember.setMemberDefaultNumber(mine.id)).toMatchObject({ user_id: member.id, phone_number_id: mine.id, e164: memberNumber });
    expect((await asMember.listDefaultNumbers()).map((d) => [d.user_id, d.phone_number_id])).toEqual([[member.id, mine.id]]);
    // An admin sets anyone's; the admin's own may be any number.
    expect(await asAdmin.setMemberDefaultNumber(pool.id, member.id)).toMatchObject({ user_id: member.id, phone_number_id: pool.id });
    expect(await asMember.setMemberDefaultNumber(mine.id)).toMatchObject({ phone_number_id: mine.id });
  });

  it("addSenderIdentity, updateSenderIdentity, deleteSenderIdentity, listSenderIdentities", async () => {
    const first = await asAdmin.addSenderIdentity({ connectionId: sendgrid.id, email: "Support@Example.com", name: "Support" });
    expect(first).toMatchObject({ email: "support@example.com", name: "Support", is_default: true, verified: false });
    const second = await asAdmin.addSenderIdentity({ connectionId: sendgrid.id, email: "sales@example.com", verified: true });
    expect(second.is_default).toBe(false);
    expect(await asAdmin.updateSenderIdentity(second.id, { is_default: true, name: "Sales" })).toMatchObject({ is_default: true, name: "Sales" });
    expect((await asAdmin.listSenderIdentities({ connectionId: sendgrid.id })).map((i) => [i.email, i.is_default]))
      .toEqual([["support@example.com", false], ["sales@example.com", true]]);
    expect(await asAdmin.deleteSenderIdentity(first.id)).toEqual({ id: first.id, deleted: true });
    expect((await failure(asAdmin.addSenderIdentity({ connectionId: sms.id, email: "a@example.com" }))).code).toBe("invalid_request");
    // The member may not view the SendGrid connection, so not its identities either.
    expect(await asMember.listSenderIdentities()).toEqual([]);
  });

  it("createAgent in the team; a grant within the member's permission (monthlySendLimit), never above it", async () => {
    const agent = await asMember.createAgent("Team agent", null, { workspaceId: teamId });
    expect(agent).toMatchObject({ workspace_id: teamId, user_id: member.id });
    agentId = agent.id;
    const above = await failure(asMember.grant({ agentId, connectionId: sms.id, scopes: ["sms"], dailySendLimit: 5 }));
    expect([above.code, above.status]).toEqual(["permission_denied", 403]);
    expect(above.message).toContain("a monthly limit of none (theirs is 20)");
    const grant = await asMember.grant({ agentId, connectionId: sms.id, scopes: ["sms", "balance"], dailySendLimit: 5, monthlySendLimit: 10 });
    expect(grant).toMatchObject({ daily_send_limit: 5, monthly_send_limit: 10 });
    grantId = grant.id;
    expect(await asMember.updateGrant(grantId, { monthly_send_limit: 8 })).toMatchObject({ monthly_send_limit: 8 });
    expect((await failure(asMember.updateGrant(grantId, { monthly_send_limit: 21 }))).code).toBe("permission_denied");
    agentKey = (await asMember.issueAgentKey(agentId)).key;

    expect((await asMember.listAgents({ workspaceId: teamId })).map((a) => a.id)).toEqual([agentId]);
    // Admins see every agent of the workspace; the owner's personal agents are elsewhere.
    expect((await asAdmin.listAgents({ workspaceId: teamId })).map((a) => a.id)).toEqual([agentId]);
  });

  it("the agent sends from the member's number; listUsage shows the grant's and the member's counters", async () => {
    const agent = agentWithKey(agentKey);
    const tools = await agent.listTools<Schema>("raw");
    expect(tools.find((t) => t.name === "sms_send")!).toMatchObject({
      connection_id: sms.id, limits: { daily_send_limit: 5, monthly_send_limit: 8 },
    });
    const sent = await agent.callTool<Schema>("sms_send", { to: ["+61412000400"], body: smsBody("team") });
    expect(sent.provider).toBe("clicksend_sms");
    const messages = ((await (await fetch(`${fakeRoot(status().CLICKSEND_FAKE_URL)}/__fake/messages`)).json()) as any).messages as any[];
    expect(messages.find((m) => m.custom_string === sent.operation_id)).toMatchObject({ from: memberNumber });
    const outside = await failure(agent.callTool("sms_send", { to: ["+14155550100"], body: smsBody() }));
    expect(outside.details).toMatchObject({ reason: "recipient_not_allowed" });

    const usage = await asMember.listUsage({ workspaceId: teamId });
    const used = (subject: string, period: string) => usage.find((u) => u.subject === subject && u.period === period)?.used;
    expect([used("grant", "day"), used("grant", "month"), used("member", "day"), used("member", "month")]).toEqual([1, 1, 1, 1]);
    expect((await asMember.listUsage({ subjectId: permissionId })).every((u) => u.subject === "member")).toBe(true);
    expect((await asAdmin.listOperations({ workspaceId: teamId })).map((o) => o.status).sort()).toEqual(["denied", "succeeded"]);
  });

  it("listAuditEvents: the workspace's actions for admins, nothing for members", async () => {
    const trail = await asAdmin.listAuditEvents({ workspaceId: teamId });
    const actions = trail.map((e) => e.action);
    for (const action of [
      "workspace.created", "workspace.renamed", "member.invited", "invitation.declined", "invitation.revoked", "member.joined",
      "member.role_changed", "credentials.created", "connection.default_mail_set", "permission.set", "permission.removed",
      "number.added", "number.updated", "number.deleted", "number.member_default_set", "identity.added", "identity.updated",
      "identity.deleted", "grant.set", "grant.updated", "key.issued",
    ]) expect(actions, action).toContain(action);
    expect(trail.map((e) => e.id)).toEqual([...trail.map((e) => e.id)].sort((a, b) => b - a));
    expect((await asAdmin.listAuditEvents({ workspaceId: teamId, action: "member.joined" })).map((e) => e.actor_user_id).sort())
      .toEqual([admin.id, member.id].sort());
    expect(await asAdmin.listAuditEvents({ workspaceId: teamId, limit: 3 })).toHaveLength(3);
    expect(await asMember.listAuditEvents({ workspaceId: teamId })).toEqual([]);
    expect(JSON.stringify(trail)).not.toMatch(/demo-key|demo-pass|SG\.demo-key|swb_invite_|swb_agent_[A-Za-z0-9_-]{20}/);
  });

  it("transferOwnership, leaveWorkspace, removeMember, deleteWorkspace", async () => {
    expect(await asOwner.transferOwnership(teamId, admin.id)).toEqual({ workspace_id: teamId, owner: admin.id });
    expect((await asAdmin.listWorkspaces()).find((w) => w.id === teamId)).toMatchObject({ role: "owner", primary_owner_user_id: admin.id });
    expect((await asOwner.listWorkspaces()).find((w) => w.id === teamId)).toMatchObject({ role: "admin" });
    expect((await failure(asOwner.deleteWorkspace(teamId))).code).toBe("permission_denied");
    expect((await failure(asAdmin.leaveWorkspace(teamId))).code).toBe("invalid_request");

    expect(await asMember.leaveWorkspace(teamId)).toEqual({ workspace_id: teamId, left: true });
    expect((await asMember.listWorkspaces()).map((w) => w.id)).not.toContain(teamId);
    // Their agent there stopped with the membership.
    expect(await agentWithKey(agentKey).listTools("raw")).toEqual([]);

    expect(await asAdmin.removeMember(teamId, owner.id)).toEqual({ workspace_id: teamId, user_id: owner.id, removed: true });
    expect((await failure(asAdmin.removeMember(teamId, owner.id))).code).toBe("not_found");
    expect(await asAdmin.deleteWorkspace(teamId)).toEqual({ id: teamId, deleted: true });
    expect((await asAdmin.listWorkspaces()).map((w) => w.personal)).toEqual([true]);
    const [secret] = await adminSql()`select count(*)::int as n from vault.secrets where name = ${`switchboard.connection.${sms.id}`}`;
    expect(secret.n).toBe(0);
  });
});
