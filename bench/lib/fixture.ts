/**
 * The benchmarked user and agents, created through the public surface exactly as an
 * app would: the RPCs run as `authenticated` with `request.jwt.claims` set
 * transaction-locally (what PostgREST does), so connections get real Vault secrets.
 *
 *   send       1 ClickSend grant, no daily limit           (DB work, edge path, throughput)
 *   bulk       1 ClickSend grant, 10 000/message, 10 000/day (bulk)
 *   quota      1 ClickSend grant, daily limit 50           (concurrency safety)
 *   discovery  20 grants on 20 ClickSend/SMTP/SendGrid connections (tool discovery)
 *
 * createSmsAgents adds agents with one ClickSend grant each on the same connection,
 * only for the measurement that needs them (hot rows: one grant vs 64 grants).
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
  user: LocalUser;
  clicksendConnectionId: string;
  discoveryConnectionIds: string[];
  agents: { send: BenchAgent; bulk: BenchAgent; quota: BenchAgent; discovery: BenchAgent };
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

export async function createFixture(sql: Sql, status: StackStatus): Promise<BenchFixture> {
  const user = await createLocalUser(sql, `bench-owner-${Date.now()}@example.test`);
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

  return asUser(sql, user, async (tx) => {
    const connect = async (provider: string, name: string, account: { credentials: object; config: object }) =>
      (await rpc(tx, "create_connection", {
        p_provider: provider,
        p_name: name,
        p_credentials: account.credentials,
        p_config: account.config,
      })).id as string;

    const clicksendConnectionId = await connect("clicksend_sms", "ClickSend main", clicksend);
    const discoveryConnections: Array<{ id: string; scopes: string[] }> = [];
    for (let i = 1; i <= 8; i++) {
      discoveryConnections.push({ id: await connect("clicksend_sms", `ClickSend ${i}`, clicksend), scopes: ["sms", "mms", "balance", "history"] });
    }
    for (let i = 1; i <= 6; i++) discoveryConnections.push({ id: await connect("smtp", `Mailbox ${i}`, smtp), scopes: ["email"] });
    for (let i = 1; i <= 6; i++) discoveryConnections.push({ id: await connect("sendgrid", `SendGrid ${i}`, sendgrid), scopes: ["email"] });

    const agent = async (
      name: string,
      grants: Array<{ connectionId: string; scopes: string[]; daily: number | null; maxRecipients: number }>,
    ): Promise<BenchAgent> => {
      const created = await rpc(tx, "create_agent", { p_name: name });
      const permissionIds: string[] = [];
      for (const g of grants) {
        const p = await rpc(tx, "grant_agent_permission", {
          p_agent_id: created.id,
          p_connection_id: g.connectionId,
          p_scopes: g.scopes,
          p_daily_send_limit: g.daily,
          p_max_recipients_per_message: g.maxRecipients,
        });
        permissionIds.push(p.id);
      }
      const key = await rpc(tx, "issue_agent_key", { p_agent_id: created.id, p_name: "bench" });
      const [{ hash }] = await tx`select encode(sha256(convert_to(${key.key as string}, 'utf8')), 'hex') as hash`;
      return { id: created.id, key: key.key, keyHash: hash, permissionIds };
    };

    const sms = (daily: number | null, maxRecipients: number) => [{ connectionId: clicksendConnectionId, scopes: ["sms"], daily, maxRecipients }];
    return {
      user,
      clicksendConnectionId,
      discoveryConnectionIds: discoveryConnections.map((c) => c.id),
      agents: {
        send: await agent("bench sender", sms(null, 10)),
        bulk: await agent("bench bulk sender", sms(10_000, 10_000)),
        quota: await agent("bench quota-limited sender", sms(50, 10)),
        discovery: await agent(
          "bench discovery",
          discoveryConnections.map((c) => ({ connectionId: c.id, scopes: c.scopes, daily: 1000, maxRecipients: 10 })),
        ),
      },
    };
  });
}

/**
 * `count` agents, each with its own key and one ClickSend grant (scope sms, at most 10
 * recipients per message, `daily` messages a day) on the fixture's ClickSend connection,
 * created through the same RPCs as the fixture.
 */
export async function createSmsAgents(sql: Sql, fx: BenchFixture, name: string, count: number, daily: number | null): Promise<BenchAgent[]> {
  return asUser(sql, fx.user, async (tx) => {
    const agents: BenchAgent[] = [];
    for (let i = 1; i <= count; i++) {
      const created = await rpc(tx, "create_agent", { p_name: count === 1 ? name : `${name} ${i}` });
      const p = await rpc(tx, "grant_agent_permission", {
        p_agent_id: created.id,
        p_connection_id: fx.clicksendConnectionId,
        p_scopes: ["sms"],
        p_daily_send_limit: daily,
        p_max_recipients_per_message: 10,
      });
      const key = await rpc(tx, "issue_agent_key", { p_agent_id: created.id, p_name: "bench" });
      const [{ hash }] = await tx`select encode(sha256(convert_to(${key.key as string}, 'utf8')), 'hex') as hash`;
      agents.push({ id: created.id, key: key.key, keyHash: hash, permissionIds: [p.id] });
    }
    return agents;
  });
}
