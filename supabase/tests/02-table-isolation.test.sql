/**
 * Isolation matrix for tables: users A and B, anon and service_role against every
 * table, for select / insert / update / delete — what each would observe through
 * supabase.from(...) (PostgREST runs the same statements under the same role/claims).
 * The tenant boundary is the workspace: every tenant row carries its workspace_id (01
 * checks that), and each fixture user owns two workspaces (tests.seed_world: a personal
 * one with an agent, connections, a number and a sender identity; a team with a member,
 * a SendGrid connection, the member's permission and a pending invitation), so "B's rows"
 * are the rows of B's two workspaces.
 *
 *   tenant tables      workspaces, workspace_members, workspace_invitations, audit_events,
 *                      connections, connection_webhooks, member_permissions, phone_numbers, member_default_numbers,
 *                      sender_identities, agents, agent_permissions, agent_keys, operations,
 *                      usage_counters, message_events, routes, route_connections, operation_attempts
 *                      (each user also sets an SMS route in their personal workspace and a
 *                      member's mail route in their team, and their agent's sms_send fails over
 *                      once with no other account: one operation_attempts row)
 *   B select A's       none (by workspace, by user id, by row id), while B sees its own
 *   B insert/upd/del   agents: RLS (0 rows), the principal trigger and column grants (42501);
 *                      every other table: 42501
 *   A (owner)          writes agents only; every other table is read-only even in its own
 *                      workspaces (42501): members, roles, invitations, permissions, numbers,
 *                      identities and the audit trail change only through the RPCs
 *   an invitee         sees the invitation addressed to it, nothing else of that workspace
 *   anon               42501 on every action on every table
 *   service_role       sees every workspace's rows; writes allowed (trusted backend), except
 *                      the audit trail: append-only for every role, the table owner included
 */
begin;
set local search_path = extensions, public;
select plan(271);

select from tests.seed_world();
select from tests.seed_activity();

/**
 * Routes and an attempt in both users' workspaces: user_<u> routes SMS in their personal
 * workspace to <u>_clicksend (<u>_route) and their member's mail in <u>_team to
 * <u>_team_mail (<u>_member_route); their agent's sms_send fails over once and finds no
 * other account (<u>_channel_operation, one failed attempt), then finishes as failed.
 */
create function tests.m02_routes() returns void
language plpgsql
as $$
declare
    v_u text;
    v_begin jsonb;
begin
    foreach v_u in array array['a', 'b'] loop
        perform tests.authenticate_as('user_' || v_u);
        perform tests.remember(v_u || '_route', public.set_route(tests.world(v_u || '_workspace')::uuid, 'sms',
            array[tests.world(v_u || '_clicksend')::uuid]) -> 'id');
        perform tests.remember(v_u || '_member_route', public.set_route(tests.world(v_u || '_team')::uuid, 'email',
            array[tests.world(v_u || '_team_mail')::uuid], tests.world(v_u || '_member_uid')::uuid) -> 'id');
        perform tests.authenticate_as_service_role();
        v_begin := private.begin_tool_call('sms_send', p_user_id => tests.world(v_u || '_uid')::uuid,
            p_agent_id => tests.world(v_u || '_agent')::uuid, p_recipients => array['+61400000009'], p_auth_mode => 'user_agent');
        if not (v_begin ->> 'ok')::boolean then
            raise exception 'tests: m02_routes could not begin a channel send: %', v_begin;
        end if;
        perform private.fail_over_tool_call((v_begin ->> 'operation_id')::uuid, 'provider_error', 'rejected', 400, '21211', 5);
        perform private.finish_tool_call((v_begin ->> 'operation_id')::uuid, 'failed', 0);
        perform tests.remember(v_u || '_channel_operation', v_begin -> 'operation_id');
        perform tests.reset_authentication();
    end loop;
end
$$;
select tests.m02_routes();
select results_eq($$ select (select count(*)::int from public.routes), (select count(*)::int from public.route_connections),
                            (select count(*)::int from public.operation_attempts where outcome = 'failed') $$,
    $$ values (4, 4, 2) $$, 'fixture: each user has a workspace route and a member route, and one failed attempt');

/** Every tenant table, and the column naming the workspace its row belongs to. */
create function pg_temp.tenant_tables() returns table (t text, ws text)
language sql immutable
as $$
    values ('workspaces', 'id'), ('workspace_members', 'workspace_id'), ('workspace_invitations', 'workspace_id'),
           ('audit_events', 'workspace_id'), ('connections', 'workspace_id'), ('connection_webhooks', 'workspace_id'),
           ('member_permissions', 'workspace_id'),
           ('phone_numbers', 'workspace_id'), ('member_default_numbers', 'workspace_id'),
           ('sender_identities', 'workspace_id'), ('agents', 'workspace_id'), ('agent_permissions', 'workspace_id'),
           ('agent_keys', 'workspace_id'), ('operations', 'workspace_id'), ('usage_counters', 'workspace_id'),
           ('message_events', 'workspace_id'), ('routes', 'workspace_id'), ('route_connections', 'workspace_id'),
           ('operation_attempts', 'workspace_id')
$$;

/** The two workspaces of fixture user u ('a' or 'b'): personal and team. */
create function pg_temp.spaces(u text) returns uuid[]
language sql stable
as $$
    select array[tests.world(u || '_workspace')::uuid, tests.world(u || '_team')::uuid]
$$;
grant execute on function pg_temp.tenant_tables(), pg_temp.spaces(text) to authenticated, anon, service_role;

-- ---- B reads: every row B can see is in B's workspaces (and there are some) -----------------
select tests.authenticate_as('user_b');

select results_eq(
    format('select count(*) > 0, count(*) filter (where %I <> all (pg_temp.spaces(%L))) from public.%I', ws, 'b', t),
    $$ values (true, 0::bigint) $$,
    format('B sees rows of its own workspaces in %s, and none of anyone else''s', t))
from pg_temp.tenant_tables();

select is_empty(format('select 1 from public.%I where %I = any (pg_temp.spaces(%L))', t, ws, 'a'),
    format('B filtering on A''s workspace ids in %s gets nothing', t))
from pg_temp.tenant_tables();

select is_empty(format('select 1 from public.%I where %I in (%L, %L)', t, c, tests.world('a_uid'), tests.world('a_member_uid')),
    format('B filtering on A''s (or A''s member''s) user id in %s.%s gets nothing', t, c))
from (values ('workspaces', 'primary_owner_user_id'), ('workspace_members', 'user_id'), ('workspace_invitations', 'invited_by'),
             ('audit_events', 'actor_user_id'), ('connections', 'created_by'), ('member_permissions', 'user_id'),
             ('member_default_numbers', 'user_id'), ('agents', 'user_id'), ('agent_permissions', 'granted_by'),
             ('agent_keys', 'created_by'), ('operations', 'user_id'), ('usage_counters', 'user_id'),
             ('message_events', 'user_id'), ('routes', 'user_id'), ('routes', 'created_by')) v (t, c);

select is_empty(format('select 1 from public.%I where id = %L', t, tests.world(k)),
    format('B selecting A''s %s by id (%s) gets nothing', t, k))
from (values ('workspaces', 'a_team'), ('workspace_invitations', 'a_invitation'), ('connections', 'a_clicksend'),
             ('connections', 'a_team_mail'), ('member_permissions', 'a_member_permission'), ('phone_numbers', 'a_number'),
             ('sender_identities', 'a_identity'), ('agents', 'a_agent'), ('agent_permissions', 'a_grant'),
             ('agent_keys', 'a_key_id'), ('operations', 'a_operation'), ('operations', 'a_member_operation'),
             ('routes', 'a_route'), ('routes', 'a_member_route'), ('operations', 'a_channel_operation')) v (t, k);

select is_empty(format('select 1 from public.%I where %I = %L', t, c, tests.world(k)),
    format('B selecting A''s %s by %s (%s) gets nothing', t, c, k))
from (values ('route_connections', 'route_id', 'a_route'), ('route_connections', 'connection_id', 'a_team_mail'),
             ('operation_attempts', 'operation_id', 'a_channel_operation')) v (t, c, k);

select is((select count(*)::int from public.service_providers), 6, 'B (any signed-in user) can read the provider list');
select cmp_ok((select count(*)::int from public.integration_capabilities), '>=', 7, 'B can read the capability list');

-- ---- B writes to A's agent: no effect --------------------------------------------------------
select is_empty(format('update public.agents set name = %L, is_active = false where id = %L returning id', 'pwned', tests.world('a_agent')),
    'B updating A''s agent touches no row');
select is_empty(format('delete from public.agents where id = %L returning id', tests.world('a_agent')),
    'B deleting A''s agent touches no row');
select throws_ok(format('insert into public.agents (user_id, name) values (%L, %L)', tests.world('a_uid'), 'planted'),
    '42501', null, 'B cannot create an agent acting for A (no privilege on agents.user_id)');
select throws_ok(format('update public.agents set user_id = %L where id = %L', tests.world('a_uid'), tests.world('b_agent')),
    '42501', null, 'B cannot hand its agent to A (no privilege on agents.user_id)');
select throws_ok(format('insert into public.agents (workspace_id, name) values (%L, %L)', tests.world('a_workspace'), 'planted'),
    '42501', 'an agent acts for a member of its workspace', 'B cannot create an agent in A''s personal workspace');
select throws_ok(format('select public.create_agent(%L, p_workspace_id => %L)', 'planted', tests.world('a_team')),
    '42501', 'an agent acts for a member of its workspace', 'B cannot create an agent in A''s team (create_agent is the same insert)');
select throws_ok(format('update public.agents set workspace_id = %L where id = %L', tests.world('a_team'), tests.world('b_agent')),
    '42501', null, 'B cannot move its agent into A''s team (no privilege on agents.workspace_id for update)');

-- Positive controls: the same statements do work on B's own rows.
select results_eq($$ select (a ->> 'user_id')::uuid, (a ->> 'workspace_id')::uuid from public.create_agent('B second agent') a $$,
    format('values (%L::uuid, %L::uuid)', tests.world('b_uid'), tests.world('b_workspace')),
    'B creating an agent gets one acting for B, in B''s personal workspace');
select results_eq(format($$ select (a ->> 'workspace_id')::uuid from public.create_agent('B team agent', p_workspace_id => %L) a $$, tests.world('b_team')),
    format('values (%L::uuid)', tests.world('b_team')), 'B can create an agent in its own team');
select isnt_empty(format('update public.agents set name = %L where id = %L returning id', 'B agent renamed', tests.world('b_agent')),
    'B can rename its own agent (the refusals above are not vacuous)');
select isnt_empty($$ delete from public.agents where name in ('B second agent', 'B team agent') returning id $$,
    'B can delete its own agents');

-- ---- B writes to the RPC-only tables: refused outright --------------------------------------
select throws_ok(format('insert into public.%I (%I) values (%L)', t, ws, tests.world('a_team')),
    '42501', null, format('B cannot insert into %s', t))
from pg_temp.tenant_tables() where t <> 'agents';

select throws_ok(format('update public.%I set %I = %L where %I = %L', t, ws, tests.world('b_team'), ws, tests.world('a_team')),
    '42501', null, format('B cannot update A''s rows in %s', t))
from pg_temp.tenant_tables() where t <> 'agents';

select throws_ok(format('delete from public.%I where %I = any (pg_temp.spaces(%L))', t, ws, 'a'),
    '42501', null, format('B cannot delete A''s rows in %s', t))
from pg_temp.tenant_tables() where t <> 'agents';

-- ---- A, the owner, cannot bypass the RPCs either -----------------------------------------------
select tests.authenticate_as('user_a');
select results_eq(format('select name, is_active from public.agents where id = %L', tests.world('a_agent')),
    $$ values ('A agent'::text, true) $$, 'A''s agent is unchanged after B''s attempts');
select throws_ok(format('update public.usage_counters set used = 0 where subject_id = %L', tests.world('a_grant')),
    '42501', null, 'A cannot reset its own usage counter (quota bypass)');
select throws_ok(format('update public.usage_counters set used = 0 where subject_id = %L', tests.world('a_member_permission')),
    '42501', null, 'A cannot reset its member''s usage counter either');
select throws_ok(format('update public.agent_permissions set daily_send_limit = null, allowed_scopes = %L where id = %L',
                        '{sms,mms,balance,history}', tests.world('a_grant')),
    '42501', null, 'A cannot edit its grant directly (the RPC and its checks are the only way)');
select throws_ok(format('update public.connections set secret_id = (select secret_id from public.connections where id = %L) where id = %L',
                        tests.world('b_clicksend'), tests.world('a_clicksend')),
    '42501', null, 'A cannot repoint its connection at another Vault secret');
select throws_ok(format('update public.operations set status = %L where id = %L', 'failed', tests.world('a_operation')),
    '42501', null, 'A cannot rewrite its ledger');
select throws_ok(format('delete from public.audit_events where workspace_id = %L', tests.world('a_team')),
    '42501', null, 'A cannot erase its own audit trail');
select throws_ok(format('update public.workspaces set personal = true, primary_owner_user_id = %L where id = %L',
                        tests.world('a_member_uid'), tests.world('a_team')),
    '42501', null, 'A cannot change its team''s owner or kind directly (transfer_workspace_ownership is the way)');
select throws_ok(format('insert into public.workspace_members (workspace_id, user_id, role) values (%L, %L, %L)',
                        tests.world('a_team'), tests.world('b_uid'), 'admin'),
    '42501', null, 'A cannot add someone to its team without an invitation they accept');
select throws_ok(format('update public.workspace_members set role = %L where workspace_id = %L and user_id = %L',
                        'admin', tests.world('a_team'), tests.world('a_member_uid')),
    '42501', null, 'A cannot change its member''s role directly (unaudited)');
select throws_ok(format('update public.workspace_invitations set status = %L, role = %L where id = %L', 'accepted', 'admin', tests.world('a_invitation')),
    '42501', null, 'A cannot accept or upgrade an invitation on the invitee''s behalf');
select throws_ok(format('update public.member_permissions set daily_send_limit = null, monthly_send_limit = null, allowed_recipients = %L where id = %L',
                        '{}', tests.world('a_member_permission')),
    '42501', null, 'A cannot lift its member''s limits directly (unaudited)');
select throws_ok(format('update public.phone_numbers set assigned_to = %L where id = %L', tests.world('b_uid'), tests.world('a_number')),
    '42501', null, 'A cannot assign its number directly');
select throws_ok(format('update public.sender_identities set email = %L, verified = true where id = %L', 'ceo@bank.example', tests.world('a_identity')),
    '42501', null, 'A cannot rewrite a sender identity directly (an unverified address marked verified)');
select throws_ok(format('delete from public.member_default_numbers where user_id = %L', tests.world('a_uid')),
    '42501', null, 'A cannot change default numbers directly');
select throws_ok($$ update public.service_providers set is_enabled = false $$,
    '42501', null, 'A cannot change provider reference data');
select throws_ok($$ insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope)
                    select id, 'evil_tool', 'x', 'x', 'sms' from public.service_providers limit 1 $$,
    '42501', null, 'A cannot add a capability (tool)');

-- ---- An invitee sees the invitation, nothing else of the workspace ------------------------------
select from public.invite_workspace_member(tests.world('a_team')::uuid, 'user_b@example.test');
select tests.authenticate_as('user_b');
select results_eq(format('select email, role, status from public.workspace_invitations where workspace_id = %L', tests.world('a_team')),
    $$ values ('user_b@example.test'::text, 'member'::text, 'pending'::text) $$,
    'once A invites B, B sees that invitation (to answer it) and not A''s other pending invitation');
select is_empty(format($$ select 'workspace' from public.workspaces where id = %1$L
                          union all select 'member' from public.workspace_members where workspace_id = %1$L
                          union all select 'connection' from public.connections where workspace_id = %1$L
                          union all select 'audit' from public.audit_events where workspace_id = %1$L $$, tests.world('a_team')),
    '... and nothing else of A''s team until B accepts (not the team, its members, connections or audit trail)');

-- ---- anon: every action on every table is refused ----------------------------------------------
select tests.clear_authentication();
select throws_ok(format('select 1 from public.%I', t), '42501', null, format('anon cannot select from %s', t))
from (select 'service_providers' union all select 'integration_capabilities' union all select t from pg_temp.tenant_tables()) v (t);
select throws_ok(format('insert into public.%I default values', t), '42501', null, format('anon cannot insert into %s', t))
from (select 'service_providers' union all select 'integration_capabilities' union all select t from pg_temp.tenant_tables()) v (t);
select throws_ok(format('update public.%I set %I = %I', t, ws, ws), '42501', null, format('anon cannot update %s', t))
from pg_temp.tenant_tables();
select throws_ok(format('update public.%I set updated_at = now()', t), '42501', null, format('anon cannot update %s', t))
from unnest(array['service_providers', 'integration_capabilities']) t;
select throws_ok(format('delete from public.%I', t), '42501', null, format('anon cannot delete from %s', t))
from (select 'service_providers' union all select 'integration_capabilities' union all select t from pg_temp.tenant_tables()) v (t);

-- ---- service_role (trusted backend): sees every workspace, may write ---------------------------------
select tests.authenticate_as_service_role();
select results_eq(
    format('select bool_or(%1$I = any (pg_temp.spaces(%3$L))), bool_or(%1$I = any (pg_temp.spaces(%4$L))) from public.%2$I', ws, t, 'a', 'b'),
    $$ values (true, true) $$,
    format('service_role sees both users'' rows in %s', t))
from pg_temp.tenant_tables();
select lives_ok(format('update public.agents set is_active = false where id = %L', tests.world('a_agent')),
    'service_role can disable any user''s agent');
-- A trusted backend (service key) pausing a grant directly: the table's CHECK constraints
-- call private.valid_recipient_patterns(), which service_role may execute.
select lives_ok(format('update public.agent_permissions set is_active = false, revoked_at = now() where id = %L', tests.world('a_grant')),
    'service_role can revoke any user''s grant directly (table grant is usable)');

-- The audit trail is append-only for every role: no grant to change it, and a trigger for the owner.
select throws_ok(format('update public.audit_events set details = %L where workspace_id = %L', '{}', tests.world('a_team')),
    '42501', null, 'service_role cannot rewrite audit events');
select throws_ok(format('delete from public.audit_events where workspace_id = %L', tests.world('a_team')),
    '42501', null, 'service_role cannot delete audit events');
select throws_ok(format('insert into public.audit_events (workspace_id, actor_role, action, target_type) values (%L, %L, %L, %L)',
                        tests.world('a_team'), 'authenticated', 'member.removed', 'member'),
    '42501', null, 'service_role cannot forge audit events (only the SECURITY DEFINER RPCs append)');
select tests.reset_authentication();
select throws_ok(format('update public.audit_events set actor_user_id = null where workspace_id = %L', tests.world('a_team')),
    '42501', 'the audit trail is append-only', 'even the table owner cannot rewrite audit events');
select throws_ok(format('delete from public.audit_events where workspace_id = %L', tests.world('a_team')),
    '42501', 'the audit trail is append-only', 'even the table owner cannot delete audit events');
select throws_ok('truncate public.audit_events',
    '42501', 'the audit trail is append-only', 'even the table owner cannot truncate the audit trail');

-- ---- A member sees the connection they may use, never its webhook token -------------------
select tests.authenticate_as('user_a_member');
select isnt_empty(format('select 1 from public.connections where id = %L', tests.world('a_team_mail')),
    'A''s team member (can_view) sees the team''s mail connection');
select is_empty('select 1 from public.connection_webhooks',
    'A''s team member reads no webhook token (whoever holds one can post events in the provider''s name)');
select tests.reset_authentication();

select * from finish();
rollback;
