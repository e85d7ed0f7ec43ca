/**
 * Real concurrency against PostgreSQL: 100 separate connections call
 * private.begin_tool_call at the same moment (as service_role, as the edge functions do).
 *  - A grant with daily_send_limit 10: exactly 10 calls are authorized, 90 get
 *    quota_exceeded, the counter ends at exactly 10 and every call is logged.
 *  - One idempotency key used by all 100 at once: exactly one reservation.
 *  - Two agents of one team member, 50 calls each at once, against the member's daily
 *    limit (their grants allow more): exactly the member's limit is authorized across
 *    both agents, and the member's counter ends at exactly the limit.
 *
 * The database: SWITCHBOARD_TEST_DB_URL (a migrated database provided by the `db` vitest
 * project), else the pgTAP database. Everything this file creates is committed (the
 * parallel connections must see it) and removed again in afterAll.
 *
 * The server must accept 100 client connections at once. The admin connection is closed
 * during each burst, and a momentarily full server is waited for (up to a minute), so a
 * stock max_connections = 100 suffices when the suite has the server to itself.
 */
import { randomUUID } from "node:crypto";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const DB_URL = process.env.SWITCHBOARD_TEST_DB_URL ?? "postgres://postgres@127.0.0.1:5432/switchboard_pgtap";
const PARALLEL = 100;
const DAILY_LIMIT = 10;

interface BeginResult {
  ok: boolean;
  replay?: boolean;
  operation_id?: string | null;
  error?: { code: string; message: string; details: unknown } | null;
}

interface Outcome {
  pid: number;
  result?: BeginResult;
  error?: { code?: string; message: string };
}

const userId = randomUUID();
const teamOwnerId = randomUUID();
const teamMemberId = randomUUID();
const MEMBER_DAILY_LIMIT = 40;
let teamAgentIds: string[] = [];
let teamMemberPermissionId = "";
let teamConnectionId = "";
let quotaAgentId = "";
let quotaPermissionId = "";
let idemAgentId = "";
let idemPermissionId = "";
let connectionId = "";

function adminSql(): Sql {
  return postgres(DB_URL, { max: 1, onnotice: () => {} });
}

/** Runs `work` as a user (the fixture user by default), exactly as PostgREST would (role + claims, transaction-local). */
async function asUser<T>(sql: Sql, work: (tx: postgres.TransactionSql) => Promise<T>, sub = userId): Promise<T> {
  return (await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify({ sub, role: "authenticated", aud: "authenticated" })}, true)`;
    return work(tx);
  })) as T;
}

/** A confirmed e-mail user (the sign-up trigger gives them a personal workspace). */
async function createUser(sql: Sql, id: string, label: string) {
  await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values (${id}, 'authenticated', 'authenticated', ${`concurrency-${label}-${id}@example.test`}, now(),
                    '{"provider": "email"}', '{}', now(), now())`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One dedicated connection, opened now. A server that is momentarily full ("too many
 * clients", 53300: other suites share it) is retried for up to CONNECT_PATIENCE_MS.
 */
async function openConnection(deadline: number): Promise<Sql> {
  for (;;) {
    const sql = postgres(DB_URL, { max: 1, idle_timeout: 0, connect_timeout: 30, onnotice: () => {} });
    try {
      await sql`select 1`;
      return sql;
    } catch (error) {
      await sql.end({ timeout: 1 });
      if ((error as { code?: string }).code !== "53300" || Date.now() > deadline) {
        throw new Error(`could not open ${PARALLEL} connections at once: ${(error as Error).message} ` +
          "(the server's max_connections must leave room for them)");
      }
      await sleep(50 + Math.random() * 200);
    }
  }
}

const CONNECT_PATIENCE_MS = 60_000;

/**
 * Opens PARALLEL dedicated connections, starts a transaction as service_role on each,
 * waits until every one is ready, then lets all of them run `call` at the same moment.
 * Each transaction commits on its own, as an edge function's single statement would.
 */
async function burst(call: (tx: postgres.TransactionSql, index: number) => Promise<BeginResult>): Promise<Outcome[]> {
  const deadline = Date.now() + CONNECT_PATIENCE_MS;
  const opened = await Promise.allSettled(Array.from({ length: PARALLEL }, () => openConnection(deadline)));
  const connections = opened.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
  try {
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed) throw failed.reason;

    let ready = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runs = connections.map(async (sql, index): Promise<Outcome> => {
      let pid = -1;
      try {
        return await sql.begin(async (tx) => {
          await tx`set local role service_role`;
          [{ pid }] = await tx<[{ pid: number }]>`select pg_backend_pid() as pid`;
          if (++ready === PARALLEL) release();
          await gate;
          return { pid, result: await call(tx, index) };
        });
      } catch (error) {
        const e = error as { code?: string; message: string };
        return { pid, error: { code: e.code, message: e.message } };
      }
    });
    return await Promise.all(runs);
  } finally {
    await Promise.all(connections.map((sql) => sql.end({ timeout: 5 })));
  }
}

function sendSms(agentId: string, idempotencyKey: string | null = null, principal = userId) {
  return async (tx: postgres.TransactionSql): Promise<BeginResult> => {
    const [{ result }] = await tx<[{ result: BeginResult }]>`
      select private.begin_tool_call('clicksend_send_sms',
        p_user_id => ${principal}::uuid,
        p_agent_id => ${agentId}::uuid,
        p_recipients => array['+61411111111'],
        p_idempotency_key => ${idempotencyKey},
        p_request_hash => ${idempotencyKey ? "same-request" : null},
        p_auth_mode => 'user_agent') as result`;
    return result;
  };
}

beforeAll(async () => {
  const sql = adminSql();
  try {
    await sql`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
              values (${userId}, 'authenticated', 'authenticated', ${`concurrency-${userId}@example.test`}, now(),
                      '{"provider": "email"}', '{}', now(), now())`;
    await asUser(sql, async (tx) => {
      const [{ agent: quotaAgent }] = await tx`select public.create_agent('concurrency: quota') ->> 'id' as agent`;
      const [{ agent: idemAgent }] = await tx`select public.create_agent('concurrency: idempotency') ->> 'id' as agent`;
      const [{ connection }] = await tx`
        select public.create_connection('clicksend_sms', 'concurrency ClickSend',
          ${sql.json({ username: "concurrency", api_key: "concurrency-secret" })}::jsonb) ->> 'id' as connection`;
      const [{ permission: quotaPermission }] = await tx`
        select public.grant_agent_permission(${quotaAgent}::uuid, ${connection}::uuid, array['sms'],
          p_daily_send_limit => ${DAILY_LIMIT}, p_max_recipients_per_message => 1) ->> 'id' as permission`;
      const [{ permission: idemPermission }] = await tx`
        select public.grant_agent_permission(${idemAgent}::uuid, ${connection}::uuid, array['sms'],
          p_daily_send_limit => 1000) ->> 'id' as permission`;
      quotaAgentId = quotaAgent;
      idemAgentId = idemAgent;
      connectionId = connection;
      quotaPermissionId = quotaPermission;
      idemPermissionId = idemPermission;
    });

    // A team: the owner connects an account and gives the member a daily limit; the
    // member's two agents are each granted that much (never more than the member holds).
    await createUser(sql, teamOwnerId, "owner");
    await createUser(sql, teamMemberId, "member");
    const token = await asUser(sql, async (tx) => {
      const [{ workspace }] = await tx`select public.create_workspace('concurrency team') ->> 'id' as workspace`;
      const [{ connection }] = await tx`
        select public.create_connection('clicksend_sms', 'team ClickSend',
          ${sql.json({ username: "team", api_key: "team-secret" })}::jsonb, p_workspace_id => ${workspace}::uuid) ->> 'id' as connection`;
      teamConnectionId = connection;
      const [{ token }] = await tx`
        select public.invite_workspace_member(${workspace}::uuid, ${`concurrency-member-${teamMemberId}@example.test`}) ->> 'token' as token`;
      return token as string;
    }, teamOwnerId);
    await asUser(sql, (tx) => tx`select public.accept_workspace_invitation(${token})`, teamMemberId);
    await asUser(sql, async (tx) => {
      const [{ permission }] = await tx`
        select public.set_member_permission(${teamConnectionId}::uuid, ${teamMemberId}::uuid, p_can_send => true,
          p_scopes => array['sms'], p_daily_send_limit => ${MEMBER_DAILY_LIMIT}) ->> 'id' as permission`;
      teamMemberPermissionId = permission;
    }, teamOwnerId);
    teamAgentIds = await asUser(sql, async (tx) => {
      const ids: string[] = [];
      for (const name of ["first", "second"]) {
        const [{ workspace }] = await tx`select workspace_id as workspace from public.connections where id = ${teamConnectionId}`;
        const [{ agent }] = await tx`select public.create_agent(${`concurrency team agent ${name}`}, p_workspace_id => ${workspace}::uuid) ->> 'id' as agent`;
        await tx`select public.grant_agent_permission(${agent}::uuid, ${teamConnectionId}::uuid, array['sms'],
          p_daily_send_limit => ${MEMBER_DAILY_LIMIT}, p_max_recipients_per_message => 1)`;
        ids.push(agent);
      }
      return ids;
    }, teamMemberId);
  } finally {
    await sql.end({ timeout: 2 });
  }
}, 60_000);

afterAll(async () => {
  const sql = adminSql();
  try {
    // The Vault secret is not owned by the user row; remove it first, then the user (cascades).
    await sql`delete from vault.secrets where id in (select secret_id from public.connections
                                                     where id in (${connectionId || null}::uuid, ${teamConnectionId || null}::uuid))`;
    await sql`delete from public.workspaces where primary_owner_user_id = ${teamOwnerId} and not personal`;
    await sql`delete from auth.users where id in (${userId}, ${teamMemberId}, ${teamOwnerId})`;
  } finally {
    await sql.end({ timeout: 2 });
  }
}, 60_000);

describe("private.begin_tool_call under real concurrency", () => {
  it(`authorizes exactly ${DAILY_LIMIT} of ${PARALLEL} simultaneous sends against a daily limit of ${DAILY_LIMIT}`, async () => {
    const outcomes = await burst(sendSms(quotaAgentId));

    expect(new Set(outcomes.map((o) => o.pid)).size, "each call ran on its own connection").toBe(PARALLEL);
    expect(outcomes.filter((o) => o.error), "no call failed with an error").toEqual([]);
    const ok = outcomes.filter((o) => o.result?.ok === true);
    const exceeded = outcomes.filter((o) => o.result?.ok === false && o.result.error?.code === "quota_exceeded");
    expect(ok).toHaveLength(DAILY_LIMIT);
    expect(exceeded).toHaveLength(PARALLEL - DAILY_LIMIT);

    const sql = adminSql();
    try {
      const [counter] = await sql`select used from public.usage_counters where subject_id = ${quotaPermissionId} and period = 'day'`;
      expect(counter.used, "usage_counters.used is exactly the limit").toBe(DAILY_LIMIT);
      const rows = await sql`
        select status, error_code, count(*)::int as n, sum(quota_reserved)::int as reserved
        from public.operations where agent_id = ${quotaAgentId}
        group by status, error_code order by status`;
      expect(rows.map((r) => ({ ...r }))).toEqual([
        { status: "denied", error_code: "quota_exceeded", n: PARALLEL - DAILY_LIMIT, reserved: 0 },
        { status: "pending", error_code: null, n: DAILY_LIMIT, reserved: DAILY_LIMIT },
      ]);
      const authorizedIds = ok.map((o) => o.result!.operation_id).sort();
      const pendingIds = (await sql`select id from public.operations where agent_id = ${quotaAgentId} and status = 'pending'`)
        .map((r) => r.id as string)
        .sort();
      expect(pendingIds, "the pending rows are exactly the authorized calls").toEqual(authorizedIds);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 120_000);

  it(`reserves exactly once when ${PARALLEL} calls race with the same idempotency key`, async () => {
    const key = `race-${randomUUID()}`;
    const outcomes = await burst(sendSms(idemAgentId, key));

    expect(new Set(outcomes.map((o) => o.pid)).size, "each call ran on its own connection").toBe(PARALLEL);
    const winners = outcomes.filter((o) => o.result?.ok === true);
    expect(winners, "exactly one call is authorized").toHaveLength(1);
    expect(winners[0].result!.replay, "the winner is a real call, not a replay").toBeUndefined();
    // The losers either saw the winner's pending row (conflict) or collided with its
    // insert (PT409, the whole transaction rolled back): both are a 409 to the caller.
    const losers = outcomes.filter((o) => o !== winners[0]);
    const outcomeKinds = losers.map((o) => (o.error ? `error:${o.error.code}` : `result:${o.result?.error?.code}`));
    expect(new Set(outcomeKinds).size > 0 && outcomeKinds.every((k) => k === "error:PT409" || k === "result:conflict"),
      `every other call is refused as a conflict (got ${[...new Set(outcomeKinds)].join(", ")})`).toBe(true);

    const sql = adminSql();
    try {
      const [counter] = await sql`select used from public.usage_counters where subject_id = ${idemPermissionId} and period = 'day'`;
      expect(counter.used, "one recipient reserved, once").toBe(1);
      const rows = await sql`select id, status, quota_reserved from public.operations where agent_id = ${idemAgentId}`;
      expect(rows.map((r) => ({ ...r }))).toEqual([
        { id: winners[0].result!.operation_id, status: "pending", quota_reserved: 1 },
      ]);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 120_000);

  it(`authorizes exactly the member's daily limit (${MEMBER_DAILY_LIMIT}) across two of their agents, ${PARALLEL} simultaneous sends`, async () => {
    const outcomes = await burst((tx, index) => sendSms(teamAgentIds[index % 2], null, teamMemberId)(tx));

    expect(new Set(outcomes.map((o) => o.pid)).size, "each call ran on its own connection").toBe(PARALLEL);
    expect(outcomes.filter((o) => o.error), "no call failed with an error").toEqual([]);
    const ok = outcomes.filter((o) => o.result?.ok === true);
    const refused = outcomes.filter((o) => o.result?.ok === false);
    expect(ok).toHaveLength(MEMBER_DAILY_LIMIT);
    expect(refused.map((o) => (o.result!.error!.details as { limit?: string }).limit),
      "every refusal names the member's daily limit").toEqual(Array(PARALLEL - MEMBER_DAILY_LIMIT).fill("member_daily"));

    const sql = adminSql();
    try {
      const [member] = await sql`select used from public.usage_counters
                                 where subject_id = ${teamMemberPermissionId} and period = 'day'`;
      expect(member.used, "the member's counter is exactly the limit").toBe(MEMBER_DAILY_LIMIT);
      const [grants] = await sql`select sum(u.used)::int as used from public.usage_counters u
                                 join public.agent_permissions g on g.id = u.subject_id
                                 where g.agent_id in ${sql(teamAgentIds)} and u.period = 'day'`;
      expect(grants.used, "the two grants' counters add up to the same").toBe(MEMBER_DAILY_LIMIT);
      const [ops] = await sql`select count(*) filter (where status = 'pending')::int as pending,
                                     count(*) filter (where status = 'denied')::int as denied
                              from public.operations where agent_id in ${sql(teamAgentIds)}`;
      expect({ ...ops }).toEqual({ pending: MEMBER_DAILY_LIMIT, denied: PARALLEL - MEMBER_DAILY_LIMIT });
    } finally {
      await sql.end({ timeout: 2 });
    }
  }, 120_000);
});
