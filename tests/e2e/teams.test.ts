/**
 * A team, end to end, the way its people would use it: supabase-js as each signed-in
 * user (RPCs and RLS reads through the PostgREST stand-in) and the edge functions over
 * HTTP (an agent key, a member's own JWT). The ClickSend fake is the provider.
 *
 *   owner   creates the team, invites an admin and two members by e-mail
 *   admin   connects ClickSend in the team, gives the member can_send (3 a day) and a
 *           number, gives the bystander a permission without can_view, tests the connection
 *   member  creates an agent, cannot grant it more than they hold, grants within; the
 *           agent sends from the member's number, is held to the member's limit, which
 *           the member's own sends share
 *   later   the member is removed: their agent key is refused at once; the audit trail
 *           shows every action with the client's IP and user agent, to admins only
 *
 * Each person's client sends its own X-Forwarded-For and User-Agent, as a browser behind
 * the platform's gateway would; the audit trail must carry them.
 */
import { randomUUID } from "node:crypto";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { callFunction, clicksendAccount, clicksendFake } from "./fixtures.ts";
import { closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

interface Person extends TestUser {
  /** supabase-js as this user, from their own address and browser. */
  sb: SupabaseClient;
  ip: string;
  userAgent: string;
}

async function person(label: string, ip: string): Promise<Person> {
  const user = await newUser(`${label}-${randomUUID().slice(0, 8)}@team.example.test`);
  const userAgent = `SwitchboardTeamsE2E/1.0 (${label})`;
  const sb = createClient(status().API_URL, status().ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${user.token}`, "X-Forwarded-For": `${ip}, 10.0.0.1`, "User-Agent": userAgent } },
    realtime: { transport: WebSocket as never },
  });
  return { ...user, sb, ip, userAgent };
}

/** An RPC that must succeed. */
async function rpc<T = any>(p: Person, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await p.sb.rpc(fn, args);
  if (error) throw new Error(`${fn} as ${p.email}: ${error.code} ${error.message}`);
  return data as T;
}

/** An RPC that must fail: its supabase-js error and HTTP status. */
async function refused(p: Person, fn: string, args: Record<string, unknown>) {
  const { data, error, status: httpStatus } = await p.sb.rpc(fn, args);
  expect(error, `${fn} should have been refused, got ${JSON.stringify(data)}`).not.toBeNull();
  return { code: error!.code, message: error!.message, status: httpStatus };
}

/** A table read through RLS as this person. */
async function read<T = any>(p: Person, table: string, filter?: [string, string]): Promise<T[]> {
  let query = p.sb.from(table).select("*");
  if (filter) query = query.eq(filter[0], filter[1]);
  const { data, error } = await query;
  if (error) throw new Error(`reading ${table} as ${p.email}: ${error.message}`);
  return data as T[];
}

const sms = (what: string) => `${what} ${randomUUID().slice(0, 8)}`;

afterAll(closeAdminSql);

describe("a team workspace, end to end", () => {
  let owner: Person;
  let admin: Person;
  let member: Person;
  let bystander: Person;
  let stranger: Person;
  let teamId: string;
  let memberToken: string;
  let connection: any;
  const numbers = { pool: "+61400100000", member: "+61400100001", bystander: "+61400100002" };
  const numberIds: Record<string, string> = {};
  let agentId: string;
  let grantId: string;
  let agentKey: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    [owner, admin, member, bystander, stranger] = await Promise.all([
      person("owner", "203.0.113.10"),
      person("admin", "203.0.113.20"),
      person("member", "203.0.113.30"),
      person("bystander", "203.0.113.40"),
      person("stranger", "203.0.113.50"),
    ]);
    secrets.push(owner.token, admin.token, member.token, bystander.token, stranger.token);
  });

  it("the owner creates a team and invites an admin and members by e-mail; only the addressee can use a token", async () => {
    const team = await rpc(owner, "create_workspace", { p_name: `Team ${randomUUID().slice(0, 6)}` });
    expect(team).toMatchObject({ personal: false, role: "owner", primary_owner_user_id: owner.id });
    teamId = team.id;

    const invite = (p: Person, role: string) =>
      rpc(owner, "invite_workspace_member", { p_workspace_id: teamId, p_email: p.email.toUpperCase(), p_role: role });
    const [forAdmin, forMember, forBystander] = [await invite(admin, "admin"), await invite(member, "member"), await invite(bystander, "member")];
    for (const [invitation, p] of [[forAdmin, admin], [forMember, member], [forBystander, bystander]] as const) {
      expect(invitation).toMatchObject({ workspace_id: teamId, email: p.email.toLowerCase(), token: expect.stringMatching(/^swb_invite_[A-Za-z0-9_-]{43}$/) });
      secrets.push(invitation.token);
    }
    memberToken = forMember.token;
    // Only the token's hash is stored.
    const stored = await read(owner, "workspace_invitations", ["workspace_id", teamId]);
    expect(stored).toHaveLength(3);
    expect(JSON.stringify(stored)).not.toContain(memberToken);

    // Another signed-in user holding the token gets nothing, not even the workspace's existence.
    const stolen = await refused(stranger, "accept_workspace_invitation", { p_token: memberToken });
    expect([stolen.code, stolen.status, stolen.message]).toEqual(["PT404", 404, "invitation not found"]);
    expect((await refused(stranger, "decline_workspace_invitation", { p_token: memberToken })).code).toBe("PT404");
    expect(await read(stranger, "workspaces", ["id", teamId])).toEqual([]);
    // The invitee sees the invitation addressed to them, and nobody else's.
    expect((await read(member, "workspace_invitations")).map((i) => i.email)).toEqual([member.email.toLowerCase()]);

    expect(await rpc(admin, "accept_workspace_invitation", { p_token: forAdmin.token })).toMatchObject({ id: teamId, role: "admin" });
    expect(await rpc(member, "accept_workspace_invitation", { p_token: memberToken })).toMatchObject({ id: teamId, role: "member" });
    expect(await rpc(bystander, "accept_workspace_invitation", { p_token: forBystander.token })).toMatchObject({ role: "member" });
    // A token works once.
    expect((await refused(member, "accept_workspace_invitation", { p_token: memberToken })).code).toBe("PT404");

    const roles = Object.fromEntries((await read(member, "workspace_members", ["workspace_id", teamId])).map((m) => [m.user_id, m.role]));
    expect(roles).toEqual({ [owner.id]: "owner", [admin.id]: "admin", [member.id]: "member", [bystander.id]: "member" });
    // A member may not invite.
    expect((await refused(member, "invite_workspace_member", { p_workspace_id: teamId, p_email: "x@team.example.test" })).code).toBe("42501");
  });

  it("the admin connects ClickSend (the fake) in the team; members see nothing of it yet", async () => {
    const account = clicksendAccount();
    connection = await rpc(admin, "create_connection", {
      p_provider: "clicksend_sms", p_name: "Team SMS", p_credentials: account.credentials, p_config: account.config, p_workspace_id: teamId,
    });
    expect(connection).toMatchObject({
      workspace_id: teamId, provider: "clicksend_sms", created_by: admin.id, is_default_mail: false, has_credentials: true,
      webhook_token: expect.stringMatching(/^[0-9a-f]{48}$/),
    });
    expect(connection).not.toHaveProperty("user_id");
    expect(JSON.stringify(connection)).not.toContain(account.credentials.api_key);
    secrets.push(connection.webhook_token);

    // Members are not owners or admins: they may not create connections in the team.
    const denied = await refused(member, "create_connection", {
      p_provider: "clicksend_sms", p_name: "Mine", p_credentials: account.credentials, p_config: account.config, p_workspace_id: teamId,
    });
    expect([denied.code, denied.status]).toEqual(["42501", 403]);
    // Without a permission the connection is invisible to a member; the owner sees it.
    expect(await read(member, "connections", ["id", connection.id])).toEqual([]);
    expect((await read(owner, "connections", ["id", connection.id])).map((c) => c.name)).toEqual(["Team SMS"]);

    // The admin tests it through the function, from their own address.
    const tested = await callFunction("clicksend/test", admin.token, {
      body: { connection_id: connection.id }, headers: { "X-Forwarded-For": admin.ip, "User-Agent": admin.userAgent },
    });
    expect([tested.status, tested.body.ok]).toEqual([200, true]);
  });

  it("the admin gives the member can_send with a daily limit of 3 and assigns them a number", async () => {
    const permission = await rpc(admin, "set_member_permission", {
      p_connection_id: connection.id, p_user_id: member.id, p_can_view: true, p_can_send: true, p_daily_send_limit: 3,
    });
    expect(permission).toMatchObject({ workspace_id: teamId, user_id: member.id, can_send: true, daily_send_limit: 3, granted_by: admin.id });
    expect(permission.scopes.sort()).toEqual(["balance", "history", "mms", "sms"]);
    // The bystander holds a permission that does not let them view.
    await rpc(admin, "set_member_permission", { p_connection_id: connection.id, p_user_id: bystander.id, p_can_view: false });

    // The pool number comes first and so is the connection's default.
    const pool = await rpc(admin, "add_phone_number", { p_connection_id: connection.id, p_e164: numbers.pool, p_friendly_name: "Front desk" });
    expect(pool).toMatchObject({ is_default: true, assigned_to: null });
    const mine = await rpc(admin, "add_phone_number", {
      p_connection_id: connection.id, p_e164: numbers.member, p_friendly_name: "Member line", p_assigned_to: member.id,
    });
    expect(mine).toMatchObject({ is_default: false, assigned_to: member.id });
    const theirs = await rpc(admin, "add_phone_number", {
      p_connection_id: connection.id, p_e164: numbers.bystander, p_assigned_to: bystander.id,
    });
    Object.assign(numberIds, { pool: pool.id, member: mine.id, bystander: theirs.id });

    // A member may not add numbers, nor make someone else's number their default.
    expect((await refused(member, "add_phone_number", { p_connection_id: connection.id, p_e164: "+61400100009" })).code).toBe("42501");
    const notMine = await refused(member, "set_member_default_number", { p_phone_number_id: theirs.id });
    expect([notMine.code, notMine.status]).toEqual(["42501", 403]);
    // The member makes their assigned number their default (without it the connection's default would win).
    expect(await rpc(member, "set_member_default_number", { p_phone_number_id: mine.id }))
      .toMatchObject({ user_id: member.id, phone_number_id: mine.id, e164: numbers.member });

    // What the member sees now: the connection (no webhook token for a member), its numbers, their permission.
    const [seen] = await read(member, "connections", ["id", connection.id]);
    expect(seen).toMatchObject({ name: "Team SMS", workspace_id: teamId });
    expect((await read(member, "phone_numbers", ["connection_id", connection.id])).map((n) => n.e164).sort())
      .toEqual(Object.values(numbers).sort());
    expect((await read(member, "member_permissions")).map((p) => p.user_id)).toEqual([member.id]);
  });

  it("the member creates an agent; a grant above what they hold is refused (42501 → 403), one within is accepted", async () => {
    const agent = await rpc(member, "create_agent", { p_name: "Member's assistant", p_workspace_id: teamId });
    expect(agent).toMatchObject({ workspace_id: teamId, user_id: member.id, is_active: true });
    agentId = agent.id;

    const grant = (daily: number | null, scopes = ["sms"]) => ({
      p_agent_id: agentId, p_connection_id: connection.id, p_scopes: scopes, p_daily_send_limit: daily,
      p_max_recipients_per_message: 1, p_monthly_send_limit: 60,
    });
    const tooMuch = await refused(member, "grant_agent_permission", grant(10));
    expect([tooMuch.code, tooMuch.status]).toEqual(["42501", 403]);
    expect(tooMuch.message).toMatch(/more than they hold: a daily limit of 10 \(theirs is 3\)/);
    // No limit at all is more than 3 a day, too.
    expect((await refused(member, "grant_agent_permission", grant(null))).message).toContain("a daily limit of none (theirs is 3)");

    const granted = await rpc(member, "grant_agent_permission", grant(3));
    expect(granted).toMatchObject({ agent_id: agentId, daily_send_limit: 3, monthly_send_limit: 60, granted_by: member.id });
    grantId = granted.id;
    const key = await rpc(member, "issue_agent_key", { p_agent_id: agentId, p_name: "teams e2e" });
    agentKey = key.key;
    secrets.push(agentKey);

    // The bystander cannot use the member's agent (another member's agent is "not found").
    expect((await refused(bystander, "issue_agent_key", { p_agent_id: agentId })).code).toBe("PT404");
  });

  it("the member's agent sends from the member's number; another member's number is refused and nothing is sent", async () => {
    const listed = await callFunction("agent-tools?format=raw", agentKey);
    expect(listed.status).toBe(200);
    expect(listed.body.tools.map((t: any) => t.name)).toEqual(["sms_send", "message_status"]);
    const send = listed.body.tools.find((t: any) => t.name === "sms_send");
    expect(send).toMatchObject({ provider: "clicksend_sms", connection_id: connection.id, connection_name: "Team SMS" });
    expect(send.limits).toMatchObject({ daily_send_limit: 3, remaining_today: 3, monthly_send_limit: 60 });

    const viaTools = await callFunction("agent-tools", agentKey, {
      body: { name: "sms_send", arguments: { to: ["+61412000301"], body: sms("via agent-tools") } },
    });
    expect(viaTools.status, JSON.stringify(viaTools.body)).toBe(200);
    expect(viaTools.body).toMatchObject({ status: "succeeded", provider: "clicksend_sms" });
    // Naming their own number explicitly is fine too.
    const viaRoute = await callFunction("clicksend/sms/send", agentKey, {
      body: { to: ["+61412000302"], body: sms("via the route"), from: numbers.member },
    });
    expect(viaRoute.status, JSON.stringify(viaRoute.body)).toBe(200);

    const inbox = await clicksendFake.messages();
    for (const sent of [viaTools, viaRoute]) {
      expect(inbox.find((m) => m.custom_string === sent.body.operation_id)).toMatchObject({ from: numbers.member });
    }

    const before = await clicksendFake.requestTotal();
    const body = sms("from someone else's number");
    const spoofed = await callFunction("clicksend/sms/send", agentKey, { body: { to: ["+61412000303"], body, from: numbers.bystander } });
    expect(spoofed.status).toBe(403);
    expect(spoofed.body.error).toMatchObject({ code: "permission_denied", details: { reason: "sender_not_allowed", from: numbers.bystander } });
    expect(await clicksendFake.requestTotal()).toBe(before);
    expect((await clicksendFake.messages()).some((m) => m.body === body)).toBe(false);
  });

  it("the member's limit holds for their agent and their own sends alike: the next send is 429 naming the member's limit", async () => {
    // Third of three: the member sends themselves, with their own JWT.
    const own = await callFunction("clicksend/sms/send", member.token, { body: { to: ["+61412000304"], body: sms("member's own") } });
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    expect((await clicksendFake.messages()).find((m) => m.custom_string === own.body.operation_id)).toMatchObject({ from: numbers.member });

    const before = await clicksendFake.requestTotal();
    const over = await callFunction("agent-tools", agentKey, {
      body: { name: "sms_send", arguments: { to: ["+61412000305"], body: sms("over") } },
    });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("quota_exceeded");
    expect(over.body.error.message).toContain("the member's daily send limit reached: 3 of 3 used today");
    expect(over.body.error.details).toMatchObject({ limit: "member_daily", limit_value: 3, used: 3, requested: 1 });
    const ownOver = await callFunction("clicksend/sms/send", member.token, { body: { to: ["+61412000306"], body: sms("own over") } });
    expect([ownOver.status, ownOver.body.error.details.limit]).toEqual([429, "member_daily"]);
    expect(await clicksendFake.requestTotal()).toBe(before);

    // The counters, as the member reads them: 3 on their permission, 2 on the agent's grant.
    const counters = await read(member, "usage_counters");
    const day = (subject: string) => counters.find((c) => c.subject === subject && c.period === "day");
    expect(day("member")).toMatchObject({ used: 3, user_id: member.id, workspace_id: teamId });
    expect(day("grant")).toMatchObject({ subject_id: grantId, used: 2 });
    // The admin sees the team's operations, the bystander none of them.
    expect((await read(admin, "operations", ["workspace_id", teamId])).length).toBeGreaterThanOrEqual(6);
    expect(await read(bystander, "operations", ["workspace_id", teamId])).toEqual([]);
  });

  it("a member without can_view does not see the connection and cannot reach it through any RPC or function", async () => {
    expect(await read(bystander, "connections")).toEqual([]);
    expect(await read(bystander, "phone_numbers")).toEqual([]);
    expect(await read(bystander, "sender_identities")).toEqual([]);
    // Their own (view-less) permission is theirs to read; it grants nothing.
    expect((await read(bystander, "member_permissions")).map((p) => p.can_view)).toEqual([false]);

    const agent = await rpc(bystander, "create_agent", { p_name: "Bystander's agent", p_workspace_id: teamId });
    const attempts: [string, Record<string, unknown>][] = [
      ["update_connection", { p_connection_id: connection.id, p_changes: { name: "Mine now" } }],
      ["rotate_connection_credentials", { p_connection_id: connection.id, p_credentials: clicksendAccount().credentials }],
      ["delete_connection", { p_connection_id: connection.id }],
      ["set_default_mail_connection", { p_connection_id: connection.id }],
      ["set_member_permission", { p_connection_id: connection.id, p_user_id: bystander.id, p_can_send: true }],
      ["remove_member_permission", { p_connection_id: connection.id, p_user_id: member.id }],
      ["add_phone_number", { p_connection_id: connection.id, p_e164: "+61400100008" }],
      ["update_phone_number", { p_phone_number_id: numberIds.bystander, p_changes: { friendly_name: "x" } }],
      ["delete_phone_number", { p_phone_number_id: numberIds.pool }],
      ["set_member_default_number", { p_phone_number_id: numberIds.bystander }],
      ["add_sender_identity", { p_connection_id: connection.id, p_email: "me@team.example.test" }],
      ["grant_agent_permission", { p_agent_id: agent.id, p_connection_id: connection.id, p_scopes: ["balance"], p_daily_send_limit: null }],
    ];
    for (const [fn, args] of attempts) {
      const result = await refused(bystander, fn, args);
      expect([fn, result.code, result.status]).toEqual([fn, "PT404", 404]);
    }

    const test = await callFunction("clicksend/test", bystander.token, { body: { connection_id: connection.id } });
    expect([test.status, test.body.error.code]).toEqual([404, "not_found"]);
    const send = await callFunction("clicksend/sms/send", bystander.token, {
      body: { to: ["+61412000307"], body: "x", connection_id: connection.id },
    });
    expect([send.status, send.body.error.code]).toEqual([403, "permission_denied"]);
    const balance = await callFunction("clicksend/balance", bystander.token, { method: "POST", body: {} });
    expect(balance.status).toBe(403);
  });

  it("a removed member's agent key is refused at once", async () => {
    expect((await callFunction("agent-tools?format=raw", agentKey)).body.tools.length).toBeGreaterThan(0);
    expect(await rpc(admin, "remove_workspace_member", { p_workspace_id: teamId, p_user_id: member.id }))
      .toEqual({ workspace_id: teamId, user_id: member.id, removed: true });

    const before = await clicksendFake.requestTotal();
    // The key is still valid, but the agent lists nothing and every call is refused.
    const listed = await callFunction("agent-tools?format=openai", agentKey);
    expect([listed.status, listed.body.tools]).toEqual([200, []]);
    const viaTools = await callFunction("agent-tools", agentKey, { body: { name: "clicksend_get_balance", arguments: {} } });
    expect([viaTools.status, viaTools.body.error.code]).toEqual([403, "permission_denied"]);
    const viaRoute = await callFunction("clicksend/sms/send", agentKey, { body: { to: ["+61412000308"], body: sms("after removal") } });
    expect([viaRoute.status, viaRoute.body.error.code]).toEqual([403, "permission_denied"]);
    expect(viaRoute.body.error.details.reason).toMatch(/^(agent_disabled|principal_not_member)$/);
    // Their own JWT reaches the team's connection no longer.
    const own = await callFunction("clicksend/sms/send", member.token, { body: { to: ["+61412000309"], body: sms("own after removal") } });
    expect(own.status).toBe(403);
    expect(await clicksendFake.requestTotal()).toBe(before);

    // What they held went with the membership: the team, its connection, their permission, the number.
    expect(await read(member, "workspaces", ["id", teamId])).toEqual([]);
    expect(await read(member, "connections", ["id", connection.id])).toEqual([]);
    expect(await read(admin, "member_permissions", ["user_id", member.id])).toEqual([]);
    expect((await read(admin, "phone_numbers", ["id", numberIds.member]))[0].assigned_to).toBeNull();
    expect((await read(admin, "agents", ["id", agentId]))[0].is_active).toBe(false);
  });

  it("the audit trail: every action with the client's IP and user agent for admins, nothing for members, no credential anywhere", async () => {
    const { data: trail, error } = await admin.sb.from("audit_events").select("*").eq("workspace_id", teamId).order("id");
    expect(error).toBeNull();
    const actions = trail!.map((e) => e.action);
    for (const action of [
      "workspace.created", "member.invited", "member.joined", "credentials.created", "credentials.tested", "permission.set",
      "number.added", "number.member_default_set", "grant.set", "key.issued", "member.removed",
    ]) expect(actions, action).toContain(action);
    expect(actions.filter((a) => a === "member.invited")).toHaveLength(3);

    const by = (p: Person) => trail!.filter((e) => e.actor_user_id === p.id);
    const expectClient = (rows: any[], p: Person) => {
      expect(rows.length, p.email).toBeGreaterThan(0);
      for (const row of rows) expect([row.action, row.ip, row.user_agent]).toEqual([row.action, p.ip, p.userAgent]);
    };
    expectClient(by(owner), owner);
    expectClient(by(admin), admin);
    expectClient(by(member), member);
    expect(by(owner).map((e) => e.action)).toEqual(["workspace.created", "member.invited", "member.invited", "member.invited"]);
    expect(by(admin).map((e) => e.action)).toEqual(expect.arrayContaining(["credentials.created", "credentials.tested", "permission.set", "number.added", "member.removed"]));
    expect(by(member).map((e) => e.action)).toEqual(["member.joined", "number.member_default_set", "grant.set", "key.issued"]);
    expect(trail!.find((e) => e.action === "member.removed")).toMatchObject({ target_type: "member", target_id: member.id, actor_role: "authenticated" });
    expect(trail!.find((e) => e.action === "credentials.created")!.details.credential_fields.sort()).toEqual(["api_key", "username"]);

    // Members read none of it, the owner all of it.
    expect(await read(bystander, "audit_events")).toEqual([]);
    expect((await read(owner, "audit_events", ["workspace_id", teamId])).length).toBe(trail!.length);

    // No secret in any row: provider credentials, invitation tokens, the agent key, access tokens, the webhook token.
    const text = JSON.stringify(trail);
    for (const secret of [...secrets, clicksendAccount().credentials.api_key]) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/swb_agent_[A-Za-z0-9_-]{20}|swb_invite_|eyJ/);
  });
});
