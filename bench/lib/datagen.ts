/**
 * Bulk filler data, generated in SQL with generate_series so 1 M rows take seconds: a
 * multi-tenant world with the workspace rules in force.
 *
 *   users          ~10 000 in auth.users, each with a personal workspace and its owner
 *                  membership (the auth.users trigger that creates them does not fire
 *                  here, see below, so they are written explicitly)
 *   teams          every 50 filler users form a team workspace: 1 owner, 2 admins, 47
 *                  members (~200 teams); the fixture's team workspace (if any) is filled
 *                  up to 50 members with filler users too
 *   connections    100 000 in all: 10 per team (6 ClickSend, 2 SMTP, 2 SendGrid; the
 *                  ClickSend ones with a pool number and one assigned to a member, the
 *                  mail ones with a default sender identity), the rest spread over the
 *                  personal workspaces; exactly one default mail connection in every
 *                  workspace with live mail connections
 *   member permissions  each team member holds a permission on 6 of the team's
 *                  connections (can_view), can_send on 4 of them, with scopes,
 *                  daily/monthly limits, a few with expiry or recipient rules (~60 000)
 *   agents         two per personal workspace (grants on the user's own connections);
 *                  one per team membership: members' agents hold grants on the
 *                  connections they may send on, within what they hold (scopes, limits,
 *                  expiry), owners' and admins' agents on three team connections; one key
 *                  per agent
 *   operations     1 000 000 spread over every grant (personal and team, the fixture's
 *                  included) across 90 days with a realistic status mix, with the
 *                  grant's workspace, the principal and, for members, the member
 *                  permission they were counted against
 *   usage counters the past two days and this month, per grant and per member
 *                  permission that may send; for the fixture's grants and the member
 *                  permissions they count against, every one of the past 90 days and
 *                  the three months before this one (never today: the bench counts today's)
 *   audit events   one per connection created, member joined, permission set, grant
 *                  set and key issued
 *
 * The operations table's secondary indexes are dropped for the bulk insert and built
 * again right after it, in the same transaction (maintaining ten indexes row by row over
 * random keys took most of a minute); they start as compact as after a REINDEX.
 *
 * Filler connections have no Vault secret (nothing ever sends through them). The load
 * runs with session_replication_role = replica, which skips FK checks and every trigger
 * (the personal-workspace trigger, the grant and principal checks, the deferred
 * default-mail rule, the workspace's tool listing version), so the rows are made
 * consistent by construction: every composite FK points into the same workspace, member
 * permissions to existing memberships, an agent's principal is a member of its workspace,
 * a member's grant never exceeds what they hold, grants on deleted connections are
 * revoked (as delete_connection leaves them), every workspace has its listing version.
 * CHECK constraints and unique indexes are enforced as usual. VACUUM ANALYZE afterwards
 * leaves the tables in the steady state autovacuum would.
 */
import type { Sql } from "postgres";
import { nowMs, round } from "./stats.ts";

export interface DataSpec {
  users: number;
  connections: number;
  operations: number;
  /** Members per team workspace (owner and two admins included). */
  teamSize?: number;
  /** Connections per team workspace. */
  teamConnections?: number;
  /** A team workspace created by the fixture, filled up to `teamSize` members with filler users. */
  fillWorkspaceId?: string;
}

export const DEFAULT_SPEC: DataSpec = { users: 10_000, connections: 100_000, operations: 1_000_000 };

export interface DataReport {
  counts: Record<string, number>;
  seconds: Record<string, number>;
  /** What checkData verified, when it ran. */
  checks?: string[];
}

export async function generateData(sql: Sql, spec: DataSpec, log: (line: string) => void): Promise<DataReport> {
  const seconds: Record<string, number> = {};
  const step = async (name: string, query: string) => {
    const t = nowMs();
    await sql.unsafe(query);
    seconds[name] = round((nowMs() - t) / 1000, 2);
    log(`  ${name}: ${seconds[name]} s`);
  };

  // The benchmarked users already exist; filler users make up the rest.
  const [{ existing_users, existing_connections }] = await sql`
    select (select count(*) from auth.users)::int as existing_users,
           (select count(*) from public.connections)::int as existing_connections`;
  const teamSize = spec.teamSize ?? 50;
  const teamConnections = spec.teamConnections ?? 10;
  const fillerUsers = Math.max(teamSize, spec.users - existing_users);
  const teams = Math.floor(fillerUsers / teamSize);
  const fillerConnections = Math.max(1, spec.connections - existing_connections);
  const teamConnectionCount = Math.min(teams * teamConnections, Math.floor(fillerConnections / 2));
  const personalConnections = fillerConnections - teamConnectionCount;
  let fillMembers = 0;
  if (spec.fillWorkspaceId) {
    const [{ n }] = await sql`select count(*)::int as n from public.workspace_members where workspace_id = ${spec.fillWorkspaceId}`;
    fillMembers = Math.max(0, Math.min(fillerUsers, teamSize - n));
  }
  const fillWs = spec.fillWorkspaceId ? `'${spec.fillWorkspaceId}'::uuid` : "null::uuid";

  await sql.begin(async (tx) => {
    await tx.unsafe(`set local session_replication_role = replica; set local synchronous_commit = off;
                     set local work_mem = '64MB'; set local maintenance_work_mem = '256MB'`);
    const run = async (name: string, query: string) => {
      const t = nowMs();
      await tx.unsafe(query);
      seconds[name] = round((nowMs() - t) / 1000, 2);
      log(`  ${name}: ${seconds[name]} s`);
    };

    // What existed before (the fixture's rows): operations are generated on its grants
    // too, usage counters are not (the bench counts its own).
    await run("snapshot", `
      create temp table bench_fixture_grants on commit drop as select id from public.agent_permissions;`);

    await run("users, workspaces, memberships", `
      -- team: the team of 50 a filler user belongs to; team_rank 0 owner, 1-2 admins, 3.. members
      create temp table bench_u on commit drop as
        select i as n, gen_random_uuid() as id, gen_random_uuid() as personal_ws,
               now() - (i % 400) * interval '1 day' as created,
               case when i <= ${teams * teamSize} then (i - 1) / ${teamSize} + 1 end as team,
               case when i <= ${teams * teamSize} then (i - 1) % ${teamSize} end as team_rank
        from generate_series(1, ${fillerUsers}) i;
      insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                              raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at)
      select '00000000-0000-0000-0000-000000000000', id, 'authenticated', 'authenticated',
             'filler-' || n || '@example.test', '', now(),
             '{"provider": "email", "providers": ["email"]}', '{}', false, created, now()
      from bench_u;

      create temp table bench_t on commit drop as
        select k as team, gen_random_uuid() as id, u.id as owner_id, u.created as created
        from generate_series(1, ${teams}) k
        join bench_u u on u.team = k and u.team_rank = 0;
      insert into public.workspaces (id, name, personal, primary_owner_user_id, created_at, updated_at)
      select personal_ws, 'filler-' || n, true, id, created, created from bench_u
      union all
      select id, 'Team ' || team, false, owner_id, created + interval '1 day', created + interval '1 day' from bench_t;
      -- What the workspaces' insert trigger gives each one: its tool listing version.
      insert into private.tool_listing_versions (workspace_id)
      select personal_ws from bench_u union all select id from bench_t;

      -- Team memberships (the fixture's team included): workspace, user, role, rank, owner.
      create temp table bench_m on commit drop as
        select t.id as workspace_id, u.id as user_id, u.team_rank as rank, t.owner_id,
               case when u.team_rank = 0 then 'owner' when u.team_rank <= 2 then 'admin' else 'member' end as role,
               t.created + interval '2 days' as joined
        from bench_u u join bench_t t on t.team = u.team
        union all
        select w.id, u.id, u.n, w.primary_owner_user_id, case when u.n <= 2 then 'admin' else 'member' end,
               now() - interval '20 days'
        from bench_u u join public.workspaces w on w.id = ${fillWs}
        where u.n <= ${fillMembers};
      insert into public.workspace_members (workspace_id, user_id, role, invited_by, joined_at)
      select personal_ws, id, 'owner', null, created from bench_u
      union all
      select workspace_id, user_id, role, case when role <> 'owner' then owner_id end, joined from bench_m;`);

    await run("connections, numbers, identities", `
      create temp table bench_c on commit drop as
        select j as n, gen_random_uuid() as id, u.personal_ws as workspace_id, u.id as created_by,
               ((j - 1) / ${fillerUsers}) + 1 as rank_in_ws, false as team,
               case when j % 10 < 6 then 'clicksend_sms' when j % 10 < 8 then 'smtp' else 'sendgrid' end as provider
        from generate_series(1, ${personalConnections}) j
        join bench_u u on u.n = ((j - 1) % ${fillerUsers}) + 1
        union all
        select ${personalConnections} + j, gen_random_uuid(), t.id,
               m.user_id, -- the owner or one of the two admins connected it
               ((j - 1) % ${teamConnections}) + 1, true,
               case when (j - 1) % ${teamConnections} < 6 then 'clicksend_sms'
                    when (j - 1) % ${teamConnections} < 8 then 'smtp' else 'sendgrid' end
        from generate_series(1, ${teamConnectionCount}) j
        join bench_t t on t.team = (j - 1) / ${teamConnections} + 1
        join bench_m m on m.workspace_id = t.id and m.rank = (j - 1) % 3;
      alter table bench_c add column deleted boolean, add column is_default_mail boolean;
      update bench_c set deleted = (n % 33 = 0);
      -- The workspace's first live mail connection is its default (the deferred rule).
      update bench_c c set is_default_mail = coalesce(d.first, false)
      from (select id, row_number() over (partition by workspace_id order by rank_in_ws, n) = 1 as first
            from bench_c where provider <> 'clicksend_sms' and not deleted) d
      where d.id = c.id;
      update bench_c set is_default_mail = false where is_default_mail is null;
      insert into public.connections (id, workspace_id, provider_id, name, config, secret_id, granted_scopes, status,
                                      is_default_mail, created_by, deleted_at, created_at, updated_at)
      select c.id, c.workspace_id, p.id, 'conn-' || c.n,
             case c.provider
               when 'clicksend_sms' then jsonb_build_object('base_url', 'https://rest.clicksend.com/v3', 'sender_id', 'Shop' || (c.n % 1000))
               when 'smtp' then jsonb_build_object('host', 'smtp' || (c.n % 50) || '.example.net', 'port', 465, 'security', 'tls',
                                                   'from_email', 'noreply' || c.n || '@example.net')
               else jsonb_build_object('from_email', 'hello' || c.n || '@example.org') end,
             null, p.scopes_supported,
             case when c.deleted or c.n % 97 = 0 then 'disabled' when c.n % 50 = 0 then 'error' else 'active' end,
             c.is_default_mail, c.created_by,
             case when c.deleted then now() - interval '10 days' end,
             now() - (c.n % 300) * interval '1 day', now()
      from bench_c c join public.service_providers p on p.name = c.provider;
      -- Every connection has its webhook token (create_connection adds it).
      insert into public.connection_webhooks (connection_id, workspace_id, created_at)
      select id, workspace_id, now() - (n % 300) * interval '1 day' from bench_c;

      -- Every live team connection, the fixture team's included, ranked within its workspace.
      create temp table bench_wc on commit drop as
        select id, workspace_id, rank_in_ws as rank, provider from bench_c where team and not deleted
        union all
        select c.id, c.workspace_id, row_number() over (order by c.created_at, c.id), p.name
        from public.connections c join public.service_providers p on p.id = c.provider_id
        where c.workspace_id = ${fillWs} and c.deleted_at is null;

      -- Filler teams' ClickSend accounts have registered numbers: a pool default and one
      -- assigned to a member (the fixture's connections keep the numbers it added).
      insert into public.phone_numbers (workspace_id, connection_id, e164, friendly_name, capabilities, is_default,
                                        assigned_to)
      select c.workspace_id, c.id, '+6140' || lpad((c.n * 2 + k)::text, 7, '0'),
             case k when 0 then 'Team line' else 'Direct line' end, array['sms', 'mms'], k = 0,
             case k when 1 then m.user_id end
      from bench_c c cross join generate_series(0, 1) k
      join bench_m m on m.workspace_id = c.workspace_id and m.rank = 3 + c.rank_in_ws
      where c.team and c.provider = 'clicksend_sms' and not c.deleted;
      insert into public.sender_identities (workspace_id, connection_id, email, name, verified, is_default)
      select c.workspace_id, c.id, 'team' || c.n || '@example.net', 'Team ' || c.n, true, true
      from bench_c c
      where c.team and c.provider <> 'clicksend_sms' and not c.deleted;`);

    await run("member permissions", `
      -- Each member: a permission on 6 of the team's connections, can_send on 4 of them.
      create temp table bench_mp on commit drop as
        select gen_random_uuid() as id, m.workspace_id, m.user_id, m.owner_id, m.rank, c.id as connection_id,
               c.provider, c.rank as connection_rank, ((m.rank + c.rank) % 10 < 4) as can_send,
               ((m.rank + c.rank) % 10 = 0 and m.rank % 7 = 0) as can_configure
        from bench_m m
        join bench_wc c on c.workspace_id = m.workspace_id
        where m.role = 'member' and (m.rank + c.rank) % 10 < 6;
      alter table bench_mp add column scopes text[], add column daily integer, add column monthly integer,
                           add column expires_at timestamptz, add column allowed text[];
      update bench_mp set
        scopes = case when can_send then (select p.scopes_supported from public.service_providers p where p.name = provider)
                      when provider = 'clicksend_sms' and rank % 3 = 0 then array['balance', 'history']
                      else '{}' end,
        daily = case rank % 3 when 0 then 200 when 1 then 1000 end,
        monthly = case when rank % 4 = 0 then 5000 end,
        expires_at = case when (rank + connection_rank) % 97 = 0 then now() - interval '1 day'
                          when (rank + connection_rank) % 40 = 0 then now() + interval '60 days' end,
        allowed = case when (rank + connection_rank) % 15 = 0
                       then case when provider = 'clicksend_sms' then array['+61'] else array['example.com'] end
                       else '{}' end;
      insert into public.member_permissions (id, workspace_id, connection_id, user_id, can_view, can_send, can_configure,
                                             scopes, daily_send_limit, monthly_send_limit, allowed_recipients,
                                             blocked_recipients, expires_at, granted_by, granted_at, updated_at)
      select id, workspace_id, connection_id, user_id, true, can_send, can_configure,
             scopes, daily, monthly, allowed, '{}', expires_at, owner_id,
             now() - interval '15 days', now() - interval '15 days'
      from bench_mp;`);

    await run("agents, grants, keys", `
      create temp table bench_a on commit drop as
        select u.personal_ws as workspace_id, u.id as user_id, 'owner' as role, null::bigint as rank, k as slot,
               gen_random_uuid() as id
        from bench_u u cross join generate_series(1, 2) k
        union all
        select m.workspace_id, m.user_id, m.role, m.rank, 1, gen_random_uuid() from bench_m m;
      alter table bench_a add column active boolean;
      update bench_a set active = (slot = 1 or random() > 0.1);
      -- A disabled agent was disabled by its principal (agents_check_enabling records who).
      insert into public.agents (id, workspace_id, user_id, name, description, is_active, disabled_by, created_at, updated_at)
      select id, workspace_id, user_id, 'agent ' || slot, 'filler agent', active, case when not active then user_id end,
             now() - interval '30 days', now()
      from bench_a;

      -- A grant's running total and last use are derived from usage_counters and
      -- operations, not stored on the grant.
      insert into public.agent_permissions (workspace_id, agent_id, connection_id, allowed_scopes, daily_send_limit,
                                            monthly_send_limit, max_recipients_per_message, allowed_recipients,
                                            expires_at, is_active, revoked_at, granted_by, granted_at)
      -- personal: agent 1 on the user's 1st and 2nd connection, agent 2 on the 3rd and 4th
      select c.workspace_id, a.id, c.id, p.scopes_supported,
             case c.n % 3 when 0 then 100 when 1 then 1000 end,
             case when c.n % 5 = 0 then 20000 end,
             case c.n % 4 when 0 then 1 when 1 then 10 when 2 then 100 else 1000 end,
             '{}', case when c.n % 20 = 0 then now() + interval '30 days' end,
             c.n % 25 <> 0 and not c.deleted,
             case when c.deleted then now() - interval '10 days' when c.n % 25 = 0 then now() - interval '5 days' end,
             c.created_by, now() - interval '20 days'
      from bench_c c
      join public.service_providers p on p.name = c.provider
      join bench_a a on a.workspace_id = c.workspace_id and a.slot = (c.rank_in_ws + 1) / 2
      where not c.team and c.rank_in_ws <= 4
      union all
      -- members: on what they may send on, within what they hold
      select mp.workspace_id, a.id, mp.connection_id, mp.scopes,
             mp.daily / 2, mp.monthly / 2, 10, mp.allowed, mp.expires_at, true, null, mp.user_id,
             now() - interval '10 days'
      from bench_mp mp
      join bench_a a on a.workspace_id = mp.workspace_id and a.user_id = mp.user_id
      where mp.can_send
      union all
      -- owners and admins hold everything: their agents on three of the team's connections
      select a.workspace_id, a.id, c.id, p.scopes_supported, 1000, null, 100, '{}', null, true, null, a.user_id,
             now() - interval '10 days'
      from bench_a a
      join bench_wc c on c.workspace_id = a.workspace_id and (c.rank + a.rank) % 10 < 3
      join public.service_providers p on p.name = c.provider
      where a.rank is not null and a.role in ('owner', 'admin');

      insert into public.agent_keys (workspace_id, agent_id, name, key_prefix, key_hash, created_by, created_at, last_used_at)
      select workspace_id, id, 'key', 'swb_agent_' || left(md5(id::text), 6),
             encode(sha256(convert_to(id::text || 'filler', 'utf8')), 'hex'), user_id,
             now() - interval '30 days', now() - interval '1 day'
      from bench_a;`);

    await run("operations", `
      -- Every grant with its principal, and the member permission a member's call counts against.
      create temp table bench_p on commit drop as
        select row_number() over (order by g.id) as n, g.id, g.workspace_id, a.user_id, g.agent_id, g.connection_id,
               mp.id as member_permission_id, sp.name as provider, g.id in (select id from bench_fixture_grants) as fixture,
               (select pn.e164 from public.phone_numbers pn where pn.connection_id = g.connection_id and pn.is_default) as sender
        from public.agent_permissions g
        join public.agents a on a.id = g.agent_id
        join public.workspace_members m on m.workspace_id = g.workspace_id and m.user_id = a.user_id
        left join public.member_permissions mp on m.role = 'member' and mp.connection_id = g.connection_id
                                              and mp.user_id = a.user_id
        join public.connections c on c.id = g.connection_id
        join public.service_providers sp on sp.id = c.provider_id;
      -- Maintaining ten secondary indexes row by row over random keys is most of the load's
      -- time; they are built again once the rows are in (same transaction).
      create temp table bench_op_indexes on commit drop as
        select indexname, indexdef from pg_indexes
        where schemaname = 'public' and tablename = 'operations' and indexname <> 'operations_pkey';
      do $$ declare r record; begin
        for r in select indexname from bench_op_indexes loop execute format('drop index public.%I', r.indexname); end loop;
      end $$;
      insert into public.operations (workspace_id, user_id, agent_id, connection_id, permission_id, member_permission_id,
                                     capability_key, auth_mode, status, recipients, recipient_count, sender,
                                     quota_reserved, quota_used, quota_date, request_summary,
                                     request_hash, response, provider_message_ids, error_code, error_message,
                                     idempotency_key, duration_ms, created_at, finished_at)
      select p.workspace_id, p.user_id, p.agent_id, p.connection_id, p.id, p.member_permission_id,
             case p.provider when 'clicksend_sms' then (case when o.i % 10 = 0 then 'clicksend_get_balance' else 'clicksend_send_sms' end)
                             when 'smtp' then 'smtp_send_email' else 'sendgrid_send_email' end,
             case when o.i % 10 < 7 then 'agent_key' when o.i % 10 < 9 then 'user_agent' else 'service' end,
             o.status, array[o.recipient], 1,
             case when p.provider = 'clicksend_sms' and o.i % 10 <> 0 and o.status <> 'denied' then p.sender end,
             o.reserved, case when o.status in ('succeeded', 'partial', 'unknown') then o.reserved else 0 end,
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

    await run("operations indexes", `
      do $$ declare r record; begin
        for r in select indexdef from bench_op_indexes loop execute r.indexdef; end loop;
      end $$;`);

    await run("usage counters", `
      -- The past two days and this month: per filler grant, and per member permission that may send.
      insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id, used)
      select s.id, s.subject, d.period, d.period_start, s.workspace_id, s.user_id,
             case d.period when 'day' then (s.k + d.k) % 90 else 200 + s.k % 1500 end
      from (select p.id, 'grant' as subject, p.workspace_id, p.user_id, p.n as k from bench_p p where not p.fixture
            union all
            select mp.id, 'member', mp.workspace_id, mp.user_id, mp.rank + mp.connection_rank from bench_mp mp where mp.can_send) s
      cross join (values (1, 'day', private.utc_today() - 1), (2, 'day', private.utc_today() - 2),
                         (3, 'month', date_trunc('month', private.utc_today())::date)) d (k, period, period_start);
      -- The fixture's grants, and the member permissions they count against, have been in use
      -- as long as their operations say (90 days): a counter for each of those days and for
      -- the three months before this one, so that reading a grant's counters finds them among
      -- its history, as it would in production. Never today or this month: the rows count
      -- their own.
      insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id, used)
      select s.id, s.subject, d.period, d.period_start, s.workspace_id, s.user_id, 1 + (s.k + d.k) % 20
      from (select p.id, 'grant' as subject, p.workspace_id, p.user_id, p.n as k from bench_p p where p.fixture
            union
            select p.member_permission_id, 'member', p.workspace_id, p.user_id, 0 from bench_p p
            where p.fixture and p.member_permission_id is not null) s
      cross join (select g.k, 'day', private.utc_today() - g.k from generate_series(1, 90) g (k)
                  union all
                  select 100 + g.k, 'month', (date_trunc('month', private.utc_today()) - g.k * interval '1 month')::date
                  from generate_series(1, 3) g (k)) d (k, period, period_start)
      on conflict (subject_id, period, period_start) do nothing;`);

    await run("audit events", `
      insert into public.audit_events (workspace_id, actor_user_id, actor_role, action, target_type, target_id, details, created_at)
      select c.workspace_id, c.created_by, 'authenticated', 'credentials.created', 'connection', c.id::text,
             jsonb_build_object('provider', c.provider, 'name', 'conn-' || c.n, 'credential_fields', '["username", "api_key"]'::jsonb),
             now() - (c.n % 300) * interval '1 day'
      from bench_c c
      union all
      select m.workspace_id, m.user_id, 'authenticated', 'member.joined', 'member', m.user_id::text,
             jsonb_build_object('role', m.role), m.joined
      from bench_m m where m.role <> 'owner'
      union all
      select mp.workspace_id, mp.owner_id, 'authenticated', 'permission.set', 'member_permission', mp.id::text,
             jsonb_build_object('connection_id', mp.connection_id, 'user_id', mp.user_id, 'can_send', mp.can_send,
                                'scopes', mp.scopes, 'daily_send_limit', mp.daily),
             now() - interval '15 days'
      from bench_mp mp
      union all
      select g.workspace_id, g.granted_by, 'authenticated', 'grant.set', 'agent_grant', g.id::text,
             jsonb_build_object('agent_id', g.agent_id, 'connection_id', g.connection_id, 'scopes', g.allowed_scopes),
             g.granted_at
      from public.agent_permissions g where g.id not in (select id from bench_fixture_grants)
      union all
      select a.workspace_id, a.user_id, 'authenticated', 'key.issued', 'agent_key', a.id::text,
             jsonb_build_object('agent_id', a.id), now() - interval '30 days'
      from bench_a a;`);
  });

  // Steady state: visibility map set and statistics current, as autovacuum would leave them.
  await step("vacuum analyze", `vacuum (analyze) auth.users, public.workspaces, public.workspace_members, public.connections,
                                public.member_permissions, public.phone_numbers, public.sender_identities, public.connection_webhooks, public.agents,
                                public.agent_permissions, public.agent_keys, public.operations, public.usage_counters,
                                public.audit_events, public.message_events`);

  const [counts] = await sql`
    select (select count(*) from auth.users)::int as users,
           (select count(*) from public.workspaces)::int as workspaces,
           (select count(*) from public.workspaces where not personal)::int as team_workspaces,
           (select count(*) from public.workspace_members)::int as workspace_members,
           (select count(*) from public.connections)::int as connections,
           (select count(*) from public.connections c join public.workspaces w on w.id = c.workspace_id and not w.personal)::int as team_connections,
           (select count(*) from public.member_permissions)::int as member_permissions,
           (select count(*) from public.phone_numbers)::int as phone_numbers,
           (select count(*) from public.agents)::int as agents,
           (select count(*) from public.agent_permissions)::int as agent_permissions,
           (select count(*) from public.agent_keys)::int as agent_keys,
           (select count(*) from public.operations)::int as operations,
           (select count(*) from public.operations where member_permission_id is not null)::int as member_operations,
           (select count(*) from public.usage_counters)::int as usage_counters,
           (select count(*) from public.audit_events)::int as audit_events`;
  return { counts: { ...counts }, seconds };
}

/**
 * Proves the generated world obeys the rules the load skipped (BENCH_CHECK_DATA=1): in
 * one transaction that is rolled back, every foreign key of the public schema is dropped
 * and added again (which validates every row), the row triggers that guard the workspace
 * rules are fired on every row (agent principal, grant scopes on a live connection,
 * connection scopes, phone number assignee, the default mail connection rule), every
 * active grant of a member's agent is checked against what the member holds
 * (private.assert_grant_within_principal), and the membership invariants are queried.
 * Throws on the first violation; returns what it checked. The tables it touched are
 * vacuumed afterwards.
 */
export async function checkData(sql: Sql, log: (line: string) => void): Promise<string[]> {
  const checked: string[] = [];
  const rollback = new Error("rollback");
  try {
    await sql.begin(async (tx) => {
      const t = nowMs();
      const fks = await tx<Array<{ tbl: string; name: string; def: string }>>`
        select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
        from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace order by 1, 2`;
      for (const fk of fks) {
        await tx.unsafe(`alter table ${fk.tbl} drop constraint "${fk.name}"`);
        await tx.unsafe(`alter table ${fk.tbl} add constraint "${fk.name}" ${fk.def}`);
      }
      checked.push(`${fks.length} foreign keys re-validated`);
      await tx.unsafe(`set constraints all immediate`);
      await tx.unsafe(`update public.agents set user_id = user_id`);
      checked.push("agents: principal is a member of the agent's workspace (trigger)");
      await tx.unsafe(`update public.agent_permissions g set allowed_scopes = allowed_scopes
                       from public.connections c where c.id = g.connection_id and c.deleted_at is null`);
      const [{ n: onDeleted }] = await tx`
        select count(*)::int as n from public.agent_permissions g join public.connections c on c.id = g.connection_id
        where c.deleted_at is not null and (g.is_active or g.revoked_at is null)`;
      if (onDeleted) throw new Error(`${onDeleted} live grants on deleted connections`);
      checked.push("grants: scopes within the live connection's (trigger); grants on deleted connections revoked");
      await tx.unsafe(`update public.connections set granted_scopes = granted_scopes, is_default_mail = is_default_mail`);
      checked.push("connections: scopes supported by the provider; exactly one default mail connection per workspace with mail (triggers)");
      await tx.unsafe(`update public.phone_numbers set assigned_to = assigned_to`);
      checked.push("phone numbers: assignee is a member (trigger)");
      const [{ n: grants }] = await tx`
        select count(*)::int as n from (
          select private.assert_grant_within_principal(a, g)
          from public.agent_permissions g join public.agents a on a.id = g.agent_id
          where g.is_active and g.revoked_at is null) x`;
      checked.push(`${grants} active grants within what their principal holds (assert_grant_within_principal)`);
      const invariants: Array<[string, string]> = [
        ["users without exactly one personal workspace", `select count(*) from auth.users u
           where (select count(*) from public.workspaces w where w.personal and w.primary_owner_user_id = u.id) <> 1`],
        ["personal workspaces whose only member is not their owner", `select count(*) from public.workspaces w
           where w.personal and (select array_agg(m.user_id::text || m.role) from public.workspace_members m where m.workspace_id = w.id)
                 is distinct from array[w.primary_owner_user_id::text || 'owner']`],
        ["workspaces whose owner membership is not the primary owner", `select count(*) from public.workspaces w
           where not exists (select 1 from public.workspace_members m where m.workspace_id = w.id and m.role = 'owner'
                             and m.user_id = w.primary_owner_user_id)`],
        ["member permissions of owners or admins", `select count(*) from public.member_permissions mp
           join public.workspace_members m on m.workspace_id = mp.workspace_id and m.user_id = mp.user_id where m.role <> 'member'`],
        ["operations whose member permission is not the principal's on the connection", `select count(*) from public.operations o
           join public.member_permissions mp on mp.id = o.member_permission_id
           where mp.user_id <> o.user_id or mp.connection_id <> o.connection_id or mp.workspace_id <> o.workspace_id`],
        ["operations of a member's agent grant without the member permission", `select count(*) from public.operations o
           join public.workspace_members m on m.workspace_id = o.workspace_id and m.user_id = o.user_id and m.role = 'member'
           where o.permission_id is not null and o.member_permission_id is null
             and exists (select 1 from public.member_permissions mp where mp.connection_id = o.connection_id and mp.user_id = o.user_id)`],
        ["operations outside their grant's workspace or principal", `select count(*) from public.operations o
           join public.agent_permissions g on g.id = o.permission_id join public.agents a on a.id = g.agent_id
           where g.workspace_id <> o.workspace_id or a.user_id <> o.user_id or g.connection_id <> o.connection_id`],
        ["usage counters whose subject, workspace or member does not match", `select count(*) from public.usage_counters u
           where not exists (select 1 from public.agent_permissions g join public.agents a on a.id = g.agent_id
                             where u.subject = 'grant' and g.id = u.subject_id and g.workspace_id = u.workspace_id and a.user_id = u.user_id)
             and not exists (select 1 from public.member_permissions mp
                             where u.subject = 'member' and mp.id = u.subject_id and mp.workspace_id = u.workspace_id and mp.user_id = u.user_id)`],
        // Run right after the generation, before any measurement has sent anything.
        ["usage counters for today (the bench counts its own)", `select count(*) from public.usage_counters u
           where u.period = 'day' and u.period_start = private.utc_today()`],
        ["agent keys outside their agent's workspace or not created by its principal", `select count(*) from public.agent_keys k
           join public.agents a on a.id = k.agent_id where k.workspace_id <> a.workspace_id or k.created_by is distinct from a.user_id`],
        ["connections without their webhook token in the same workspace", `select count(*) from public.connections c
           where not exists (select 1 from public.connection_webhooks w where w.connection_id = c.id and w.workspace_id = c.workspace_id)`],
        ["workspaces without their tool listing version", `select count(*) from public.workspaces w
           where not exists (select 1 from private.tool_listing_versions v where v.workspace_id = w.id)`],
        ["connections not created by an owner or admin of their workspace", `select count(*) from public.connections c
           where not exists (select 1 from public.workspace_members m where m.workspace_id = c.workspace_id
                             and m.user_id = c.created_by and m.role in ('owner', 'admin'))`],
      ];
      for (const [what, query] of invariants) {
        const [{ count }] = await tx.unsafe(query);
        if (Number(count) !== 0) throw new Error(`data check: ${count} ${what}`);
        checked.push(`0 ${what}`);
      }
      log(`  data check: ${checked.length} checks passed in ${round((nowMs() - t) / 1000, 1)} s`);
      throw rollback;
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  // The rolled-back updates left a dead version of every row they touched: back to the
  // steady state the generation left.
  await sql.unsafe(`vacuum (analyze) public.agents, public.agent_permissions, public.connections, public.phone_numbers,
                    public.member_permissions, public.workspace_members, public.workspaces`);
  return checked;
}
