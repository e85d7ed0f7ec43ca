/**
 * Bulk filler data, generated in SQL with generate_series so 1 M rows take seconds:
 * ~10 000 users in auth.users, 100 000 connections spread over them, two agents per
 * user with grants on their own connections and one key each, 1 000 000 operations
 * with a realistic status mix over 90 days, and past usage counters.
 *
 * Filler connections have no Vault secret (nothing ever sends through them). Rows are
 * consistent by construction (every operation's agent, connection and grant belong to
 * its user), so the load runs with session_replication_role = replica to skip FK and
 * validation triggers; indexes are maintained as usual. VACUUM ANALYZE afterwards
 * leaves the tables in the steady state autovacuum would.
 */
import type { Sql } from "postgres";
import { nowMs, round } from "./stats.ts";

export interface DataSpec {
  users: number;
  connections: number;
  operations: number;
}

export const DEFAULT_SPEC: DataSpec = { users: 10_000, connections: 100_000, operations: 1_000_000 };

export interface DataReport {
  counts: Record<string, number>;
  seconds: Record<string, number>;
}

export async function generateData(sql: Sql, spec: DataSpec, log: (line: string) => void): Promise<DataReport> {
  const seconds: Record<string, number> = {};
  const step = async (name: string, query: string) => {
    const t = nowMs();
    await sql.unsafe(query);
    seconds[name] = round((nowMs() - t) / 1000, 2);
    log(`  ${name}: ${seconds[name]} s`);
  };

  // The benchmarked user already exists; filler users make up the rest.
  const [{ existing_users, existing_connections }] = await sql`
    select (select count(*) from auth.users)::int as existing_users,
           (select count(*) from public.connections)::int as existing_connections`;
  const fillerUsers = Math.max(1, spec.users - existing_users);
  const fillerConnections = Math.max(1, spec.connections - existing_connections);

  await sql.begin(async (tx) => {
    await tx.unsafe(`set local session_replication_role = replica; set local synchronous_commit = off;
                     set local work_mem = '64MB'; set local maintenance_work_mem = '256MB'`);
    const run = async (name: string, query: string) => {
      const t = nowMs();
      await tx.unsafe(query);
      seconds[name] = round((nowMs() - t) / 1000, 2);
      log(`  ${name}: ${seconds[name]} s`);
    };

    await run("users", `
      create temp table bench_u on commit drop as
        select i as n, gen_random_uuid() as id from generate_series(1, ${fillerUsers}) i;
      insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                              raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at)
      select '00000000-0000-0000-0000-000000000000', id, 'authenticated', 'authenticated',
             'filler-' || n || '@example.test', '', now(),
             '{"provider": "email", "providers": ["email"]}', '{}', false,
             now() - (n % 400) * interval '1 day', now()
      from bench_u;`);

    await run("connections", `
      create temp table bench_c on commit drop as
        select j as n, gen_random_uuid() as id,
               u.id as user_id,
               ((j - 1) / ${fillerUsers}) + 1 as rank_in_user,
               case when j % 10 < 6 then 'clicksend_sms' when j % 10 < 8 then 'smtp' else 'sendgrid' end as provider
        from generate_series(1, ${fillerConnections}) j
        join bench_u u on u.n = ((j - 1) % ${fillerUsers}) + 1;
      insert into public.connections (id, user_id, provider_id, name, config, secret_id, granted_scopes, status,
                                      deleted_at, created_at, updated_at)
      select c.id, c.user_id, p.id, 'conn-' || c.n,
             case c.provider
               when 'clicksend_sms' then jsonb_build_object('base_url', 'https://rest.clicksend.com/v3', 'sender_id', 'Shop' || (c.n % 1000))
               when 'smtp' then jsonb_build_object('host', 'smtp' || (c.n % 50) || '.example.net', 'port', 465, 'security', 'tls',
                                                   'from_email', 'noreply' || c.n || '@example.net')
               else jsonb_build_object('from_email', 'hello' || c.n || '@example.org') end,
             null, p.scopes_supported,
             case when c.n % 50 = 0 then 'error' when c.n % 97 = 0 then 'disabled' else 'active' end,
             case when c.n % 33 = 0 then now() - interval '10 days' end,
             now() - (c.n % 300) * interval '1 day', now()
      from bench_c c join public.service_providers p on p.name = c.provider;`);

    await run("agents, grants, keys", `
      create temp table bench_a on commit drop as
        select u.id as user_id, k as slot, gen_random_uuid() as id
        from bench_u u cross join generate_series(1, 2) k;
      insert into public.agents (id, user_id, name, description, is_active, created_at, updated_at)
      select id, user_id, 'agent ' || slot, 'filler agent', (slot = 1 or random() > 0.1), now() - interval '30 days', now()
      from bench_a;
      -- agent 1 gets the user's 1st and 2nd connection, agent 2 the 3rd and 4th
      -- (a grant's running total and last use are derived from usage_counters and
      --  operations, not stored on the grant)
      insert into public.agent_permissions (user_id, agent_id, connection_id, allowed_scopes, daily_send_limit,
                                            max_recipients_per_message, expires_at, is_active, granted_by)
      select c.user_id, a.id, c.id, p.scopes_supported,
             case c.n % 3 when 0 then 100 when 1 then 1000 else null end,
             case c.n % 4 when 0 then 1 when 1 then 10 when 2 then 100 else 1000 end,
             case when c.n % 20 = 0 then now() + interval '30 days' end,
             c.n % 25 <> 0, c.user_id
      from bench_c c
      join public.service_providers p on p.name = c.provider
      join bench_a a on a.user_id = c.user_id and a.slot = (c.rank_in_user + 1) / 2
      where c.rank_in_user <= 4;
      insert into public.agent_keys (user_id, agent_id, name, key_prefix, key_hash, created_at, last_used_at)
      select user_id, id, 'key', 'swb_agent_' || left(md5(id::text), 6),
             encode(sha256(convert_to(id::text || 'filler', 'utf8')), 'hex'),
             now() - interval '30 days', now() - interval '1 day'
      from bench_a;`);

    await run("operations", `
      create temp table bench_p on commit drop as
        select row_number() over (order by p.id) as n, p.id, p.user_id, p.agent_id, p.connection_id, sp.name as provider
        from public.agent_permissions p
        join public.connections c on c.id = p.connection_id
        join public.service_providers sp on sp.id = c.provider_id;
      insert into public.operations (user_id, agent_id, connection_id, permission_id, capability_key, auth_mode, status,
                                     recipients, recipient_count, quota_reserved, quota_used, quota_date, request_summary,
                                     request_hash, response, provider_message_ids, error_code, error_message,
                                     idempotency_key, duration_ms, created_at, finished_at)
      select p.user_id, p.agent_id, p.connection_id, p.id,
             case p.provider when 'clicksend_sms' then (case when o.i % 10 = 0 then 'clicksend_get_balance' else 'clicksend_send_sms' end)
                             when 'smtp' then 'smtp_send_email' else 'sendgrid_send_email' end,
             case when o.i % 10 < 7 then 'agent_key' when o.i % 10 < 9 then 'user_agent' else 'service' end,
             o.status, array[o.recipient], 1, o.reserved, case when o.status in ('succeeded', 'partial', 'unknown') then o.reserved else 0 end,
             o.created::date,
             jsonb_build_object('recipient_count', 1, 'body_length', 20 + o.i % 140, 'segments', 1, 'encoding', 'GSM-7'),
             case when o.i % 5 = 0 then md5(o.i::text) end,
             case when o.status in ('succeeded', 'partial') then jsonb_build_object('status', o.status, 'sent', 1, 'failed', 0) end,
             case when o.status in ('succeeded', 'partial', 'unknown') then array[upper(md5(o.i::text || 'msg'))] else '{}' end,
             case o.status when 'denied' then (case when o.i % 3 = 0 then 'quota_exceeded' else 'permission_denied' end)
                           when 'failed' then 'provider_error' when 'unknown' then 'provider_unavailable' end,
             case o.status when 'denied' then 'denied by a rule' when 'failed' then 'provider refused' when 'unknown' then 'timeout' end,
             case when o.i % 5 = 0 then 'idem-' || o.i end,
             case when o.status = 'denied' then 0 else 80 + o.i % 400 end,
             o.created, case when o.status <> 'pending' then o.created + interval '300 milliseconds' end
      from (
        select i,
               now() - random() * interval '90 days' as created,
               case when i % 1000 < 860 then 'succeeded' when i % 1000 < 920 then 'denied' when i % 1000 < 960 then 'failed'
                    when i % 1000 < 980 then 'partial' when i % 1000 < 995 then 'unknown' else 'pending' end as status,
               case when i % 1000 between 860 and 919 then 0 else 1 end as reserved,
               i % (select count(*) from bench_p) + 1 as pn,
               '+61412' || lpad((i % 1000000)::text, 6, '0') as recipient
        from generate_series(1, ${spec.operations}) i
      ) o
      join bench_p p on p.n = o.pn;`);

    await run("usage counters", `
      insert into public.usage_counters (permission_id, usage_date, user_id, used)
      select p.id, private.utc_today() - d, p.user_id, (p.n + d) % 90
      from bench_p p cross join generate_series(1, 2) d;`);
  });

  // Steady state: visibility map set and statistics current, as autovacuum would leave them.
  await step("vacuum analyze", `vacuum (analyze) auth.users, public.connections, public.agents, public.agent_permissions,
                                public.agent_keys, public.operations, public.usage_counters, public.message_events`);

  const [counts] = await sql`
    select (select count(*) from auth.users)::int as users,
           (select count(*) from public.connections)::int as connections,
           (select count(*) from public.agents)::int as agents,
           (select count(*) from public.agent_permissions)::int as agent_permissions,
           (select count(*) from public.agent_keys)::int as agent_keys,
           (select count(*) from public.operations)::int as operations,
           (select count(*) from public.usage_counters)::int as usage_counters`;
  return { counts: { ...counts }, seconds };
}
