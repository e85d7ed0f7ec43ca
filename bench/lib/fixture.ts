/**
 * The benchmarked users, workspaces and agents, created through the public surface
 * exactly as an app would: the RPCs run as `authenticated` with `request.jwt.claims`
 * set transaction-locally (what PostgREST does), so connections get real Vault secrets.
 *
 * The owner's personal workspace:
 *   send       1 ClickSend grant, no daily limit           (DB work, edge path, throughput)
 *   bulk       1 ClickSend grant, 10 000/message, 10 000/day (bulk)
 *   quota      1 ClickSend grant, daily limit 50           (concurrency safety)
 *   discovery  20 grants on 20 ClickSend/SMTP/SendGrid connections (tool discovery)
 *
 * A team workspace the owner creates (create_workspace) and a member joins by
 * invitation (invite_workspace_member / accept_workspace_invitation); the data
 * generator fills it up to 50 members. The owner connects 22 team accounts and sets the
 * member's permissions (set_member_permission); the member creates their own agents
 * and grants them part of what they hold:
 *   memberSend       1 grant on "Team ClickSend main" (member: can_send, 1 000 000/day;
 *                    grant: the same), the connection has a pool number (DB work of a
 *                    member's call: grant ∩ member permission, four counters)
 *   memberDiscovery  20 grants on 20 team connections the member may send on (member:
 *                    1 000/day, 20 000/month; grants: 500/day, 10 000/month)
 *
 * createSmsAgents / createMemberSmsAgents add agents only for the measurement that
 * needs them (hot rows: one grant vs 64 grants).
 */
import { readFileSync } from "node:fs";
import type { Sql, TransactionSql } from "postgres";
import { createLocalUser, type LocalUser } from "../../packages/devstack/src/jwt.ts";
import type { StackStatus } from "../../packages/devstack/src/stack.ts";

export interface BenchAgent {
  id: string;
  key: string;
  keyHash: string;
  permissionIds: string[];
}

export interface BenchFixture {
  /** Owner of the personal workspace's agents and of the team workspace. */
  user: LocalUser;
  /** A member (role 'member') of the team workspace. */
  member: LocalUser;
  teamWorkspaceId: string;
  clicksendConnectionId: string;
  discoveryConnectionIds: string[];
  /** Team connections: the member's DB-work sends, the member's hot-row sends, and the 20 listed by memberDiscovery. */
  teamClicksendConnectionId: string;
  teamHotConnectionId: string;
  teamDiscoveryConnectionIds: string[];
  /** The member's permission on each team connection, by connection id. */
  memberPermissionIds: Record<string, string>;
  agents: {
    send: BenchAgent;
    bulk: BenchAgent;
    quota: BenchAgent;
    discovery: BenchAgent;
    memberSend: BenchAgent;
    memberDiscovery: BenchAgent;
  };
}

/** Runs `fn` as the signed-in user, in one transaction, the way PostgREST would. */
async function asUser<T>(sql: Sql, user: LocalUser, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email })}, true)`;
    return fn(tx);
  })) as T;
}

async function rpc<T = any>(tx: TransactionSql, fn: string, args: Record<string, unknown>): Promise<T> {
  const names = Object.keys(args);
  const params = names.map((name, i) => `${name} => $${i + 1}`).join(", ");
  // Parameter types come from the function signature (postgres.js describes first),
  // so objects are sent as jsonb and arrays as text[].
  const values = names.map((n) => args[n]);
  const [row] = await tx.unsafe(`select public.${fn}(${params}) as result`, values as never[]);
  return row.result as T;
}

interface GrantSpec {
  connectionId: string;
  scopes: string[];
  daily: number | null;
  monthly?: number | null;
  maxRecipients: number;
}

/** create_agent (in `workspaceId`, or the personal workspace), one grant per spec, issue_agent_key. */
async function makeAgent(tx: TransactionSql, name: string, grants: GrantSpec[], workspaceId: string | null = null): Promise<BenchAgent> {
  const created = await rpc(tx, "create_agent", { p_name: name, p_workspace_id: workspaceId });
  const permissionIds: string[] = [];
  for (const g of grants) {
    const p = await rpc(tx, "grant_agent_permission", {
      p_agent_id: created.id,
      p_connection_id: g.connectionId,
      p_scopes: g.scopes,
      p_daily_send_limit: g.daily,
      p_max_recipients_per_message: g.maxRecipients,
      p_monthly_send_limit: g.monthly ?? null,
    });
    permissionIds.push(p.id);
  }
  const key = await rpc(tx, "issue_agent_key", { p_agent_id: created.id, p_name: "bench" });
  const [{ hash }] = await tx`select encode(sha256(convert_to(${key.key as string}, 'utf8')), 'hex') as hash`;
  return { id: created.id, key: key.key, keyHash: hash, permissionIds };
}

interface MemberRight {
  connectionId: string;
  scopes: string[];
  daily: number | null;
  monthly: number | null;
}

/** set_member_permission as the workspace owner: can_view + can_send with scopes and limits. Returns the permission id. */
async function setMemberPermission(tx: TransactionSql, memberId: string, r: MemberRight): Promise<string> {
  const p = await rpc(tx, "set_member_permission", {
    p_connection_id: r.connectionId,
    p_user_id: memberId,
    p_can_view: true,
    p_can_send: true,
    p_can_configure: false,
    p_scopes: r.scopes,
    p_daily_send_limit: r.daily,
    p_monthly_send_limit: r.monthly,
  });
  return p.id as string;
}

export async function createFixture(sql: Sql, status: StackStatus): Promise<BenchFixture> {
  const stamp = Date.now();
  const user = await createLocalUser(sql, `bench-owner-${stamp}@example.test`);
  const member = await createLocalUser(sql, `bench-member-${stamp}@example.test`);
  const clicksend = { credentials: { username: "demo", api_key: "demo-key" }, config: { base_url: status.CLICKSEND_FAKE_URL } };
  const smtp = {
    credentials: { username: "demo", password: "demo-pass" },
    config: {
      host: status.SMTP_FAKE_HOST,
      port: Number(status.SMTP_FAKE_PORT),
      security: "tls",
      from_email: "agent@example.com",
      from_name: "Switchboard Agent",
      tls_ca: readFileSync(status.SMTP_FAKE_CA_PEM_PATH, "utf8"),
    },
  };
  const sendgrid = {
    credentials: { api_key: "SG.demo-key" },
    config: { base_url: status.SENDGRID_FAKE_URL, from_email: "agent@example.com", webhook_public_key: status.SENDGRID_FAKE_PUBLIC_KEY },
  };
  type Account = { credentials: object; config: object };
  const connect = async (tx: TransactionSql, provider: string, name: string, account: Account, workspaceId: string | null = null) =>
    (await rpc(tx, "create_connection", {
      p_provider: provider,
      p_name: name,
      p_credentials: account.credentials,
      p_config: account.config,
      p_workspace_id: workspaceId,
    })).id as string;
  /** 8 ClickSend + 6 SMTP + 6 SendGrid connections, with the scopes a grant on each takes. */
  const twenty = async (tx: TransactionSql, prefix: string, workspaceId: string | null) => {
    const out: Array<{ id: string; scopes: string[] }> = [];
    for (let i = 1; i <= 8; i++) out.push({ id: await connect(tx, "clicksend_sms", `${prefix}ClickSend ${i}`, clicksend, workspaceId), scopes: ["sms", "mms", "balance", "history"] });
    for (let i = 1; i <= 6; i++) out.push({ id: await connect(tx, "smtp", `${prefix}Mailbox ${i}`, smtp, workspaceId), scopes: ["email"] });
    for (let i = 1; i <= 6; i++) out.push({ id: await connect(tx, "sendgrid", `${prefix}SendGrid ${i}`, sendgrid, workspaceId), scopes: ["email"] });
    return out;
  };

  // The owner's personal workspace (created by the auth.users trigger).
  const personal = await asUser(sql, user, async (tx) => {
    const clicksendConnectionId = await connect(tx, "clicksend_sms", "ClickSend main", clicksend);
    const discoveryConnections = await twenty(tx, "", null);
    const sms = (daily: number | null, maxRecipients: number) => [{ connectionId: clicksendConnectionId, scopes: ["sms"], daily, maxRecipients }];
    return {
      clicksendConnectionId,
      discoveryConnectionIds: discoveryConnections.map((c) => c.id),
      agents: {
        send: await makeAgent(tx, "bench sender", sms(null, 10)),
        bulk: await makeAgent(tx, "bench bulk sender", sms(10_000, 10_000)),
        quota: await makeAgent(tx, "bench quota-limited sender", sms(50, 10)),
        discovery: await makeAgent(
          tx,
          "bench discovery",
          discoveryConnections.map((c) => ({ connectionId: c.id, scopes: c.scopes, daily: 1000, maxRecipients: 10 })),
        ),
      },
    };
  });

  // The team: the owner creates it, connects its accounts and invites the member.
  const team = await asUser(sql, user, async (tx) => {
    const workspace = await rpc(tx, "create_workspace", { p_name: "Bench team" });
    const teamClicksendConnectionId = await connect(tx, "clicksend_sms", "Team ClickSend main", clicksend, workspace.id);
    const teamHotConnectionId = await connect(tx, "clicksend_sms", "Team ClickSend hot", clicksend, workspace.id);
    for (const [i, id] of [teamClicksendConnectionId, teamHotConnectionId].entries()) {
      await rpc(tx, "add_phone_number", { p_connection_id: id, p_e164: `+6140000000${i}`, p_friendly_name: "Team line", p_capabilities: ["sms", "mms"] });
    }
    const discovery = await twenty(tx, "Team ", workspace.id);
    const invitation = await rpc(tx, "invite_workspace_member", { p_workspace_id: workspace.id, p_email: member.email, p_role: "member" });
    return { workspaceId: workspace.id as string, teamClicksendConnectionId, teamHotConnectionId, discovery, token: invitation.token as string };
  });
  await asUser(sql, member, (tx) => rpc(tx, "accept_workspace_invitation", { p_token: team.token }));

  // The owner sets what the member may do (the hot connection's permission is set by the hot-row measurement).
  const memberPermissionIds = await asUser(sql, user, async (tx) => {
    const ids: Record<string, string> = {};
    ids[team.teamClicksendConnectionId] = await setMemberPermission(tx, member.id, {
      connectionId: team.teamClicksendConnectionId, scopes: ["sms", "balance"], daily: 1_000_000, monthly: null,
    });
    for (const c of team.discovery) {
      ids[c.id] = await setMemberPermission(tx, member.id, { connectionId: c.id, scopes: c.scopes, daily: 1000, monthly: 20_000 });
    }
    return ids;
  });

  // The member's own agents, within what they hold.
  const memberAgents = await asUser(sql, member, async (tx) => ({
    memberSend: await makeAgent(
      tx,
      "bench member sender",
      [{ connectionId: team.teamClicksendConnectionId, scopes: ["sms"], daily: 1_000_000, maxRecipients: 10 }],
      team.workspaceId,
    ),
    memberDiscovery: await makeAgent(
      tx,
      "bench member discovery",
      team.discovery.map((c) => ({ connectionId: c.id, scopes: c.scopes, daily: 500, monthly: 10_000, maxRecipients: 10 })),
      team.workspaceId,
    ),
  }));

  return {
    user,
    member,
    teamWorkspaceId: team.workspaceId,
    clicksendConnectionId: personal.clicksendConnectionId,
    discoveryConnectionIds: personal.discoveryConnectionIds,
    teamClicksendConnectionId: team.teamClicksendConnectionId,
    teamHotConnectionId: team.teamHotConnectionId,
    teamDiscoveryConnectionIds: team.discovery.map((c) => c.id),
    memberPermissionIds,
    agents: { ...personal.agents, ...memberAgents },
  };
}

/**
 * `count` agents, each with its own key and one ClickSend grant (scope sms, at most 10
 * recipients per message, `daily` messages a day) on the fixture's personal ClickSend
 * connection, created through the same RPCs as the fixture.
 */
export async function createSmsAgents(sql: Sql, fx: BenchFixture, name: string, count: number, daily: number | null): Promise<BenchAgent[]> {
  return asUser(sql, fx.user, async (tx) => {
    const agents: BenchAgent[] = [];
    for (let i = 1; i <= count; i++) {
      agents.push(await makeAgent(tx, count === 1 ? name : `${name} ${i}`, [{ connectionId: fx.clicksendConnectionId, scopes: ["sms"], daily, maxRecipients: 10 }]));
    }
    return agents;
  });
}

/**
 * The member's right on the team's hot ClickSend connection: the owner sets the
 * member permission (can_send, scope sms, `memberDaily` messages a day), then the member
 * creates one agent per entry of `grantDaily`, each with one grant (scope sms, at most
 * 10 recipients, that daily limit) and a key. Returns the member permission id and the agents.
 */
export async function createMemberSmsAgents(
  sql: Sql,
  fx: BenchFixture,
  name: string,
  memberDaily: number,
  grantDaily: number[],
): Promise<{ memberPermissionId: string; agents: BenchAgent[] }> {
  const memberPermissionId = await asUser(sql, fx.user, (tx) =>
    setMemberPermission(tx, fx.member.id, { connectionId: fx.teamHotConnectionId, scopes: ["sms"], daily: memberDaily, monthly: null }));
  fx.memberPermissionIds[fx.teamHotConnectionId] = memberPermissionId;
  const agents = await asUser(sql, fx.member, async (tx) => {
    const out: BenchAgent[] = [];
    for (const [i, daily] of grantDaily.entries()) {
      out.push(await makeAgent(
        tx,
        grantDaily.length === 1 ? name : `${name} ${i + 1}`,
        [{ connectionId: fx.teamHotConnectionId, scopes: ["sms"], daily, maxRecipients: 10 }],
        fx.teamWorkspaceId,
      ));
    }
    return out;
  });
  return { memberPermissionId, agents };
}

/**
 * A routed SMS agent for the failover measurement: in the owner's personal workspace, a
 * Twilio and a Telnyx account (the fakes, one number each), the workspace's SMS route
 * Twilio → Telnyx, and an agent granted sms on both (no daily limit). Returns the agent.
 */
export async function createRoutedSmsAgent(
  sql: Sql,
  fx: BenchFixture,
  status: StackStatus,
  accounts: { twilio: { credentials: object; number: string }; telnyx: { credentials: object; number: string } },
): Promise<BenchAgent> {
  return asUser(sql, fx.user, async (tx) => {
    const twilio = await rpc(tx, "create_connection", {
      p_provider: "twilio", p_name: "Bench Twilio", p_credentials: accounts.twilio.credentials, p_config: { base_url: status.TWILIO_FAKE_URL },
    });
    const telnyx = await rpc(tx, "create_connection", {
      p_provider: "telnyx", p_name: "Bench Telnyx", p_credentials: accounts.telnyx.credentials, p_config: { base_url: status.TELNYX_FAKE_URL },
    });
    await rpc(tx, "add_phone_number", { p_connection_id: twilio.id, p_e164: accounts.twilio.number, p_capabilities: ["sms", "mms"] });
    await rpc(tx, "add_phone_number", { p_connection_id: telnyx.id, p_e164: accounts.telnyx.number, p_capabilities: ["sms", "mms"] });
    await rpc(tx, "set_route", { p_workspace_id: twilio.workspace_id, p_channel: "sms", p_connection_ids: [twilio.id, telnyx.id] });
    return makeAgent(tx, "bench routed sender", [
      { connectionId: twilio.id, scopes: ["sms"], daily: null, maxRecipients: 10 },
      { connectionId: telnyx.id, scopes: ["sms"], daily: null, maxRecipients: 10 },
    ]);
  });
}
