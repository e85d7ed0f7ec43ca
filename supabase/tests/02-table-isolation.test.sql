/**
 * Isolation matrix for tables: users A and B, anon and service_role against every
 * table, for select / insert / update / delete — what each would observe through
 * supabase.from(...) (PostgREST runs the same statements under the same role/claims).
 *
 *                    agents  connections  agent_permissions  agent_keys  operations  message_events  usage_counters  providers/capabilities
 *   B select A's     none    none         none               none        none        none            none            (reference: readable)
 *   B insert/upd/del refused (RLS: 0 rows; column grants: 42501) — 42501 on every other table
 *   A (owner) writes agents only; the other tables are read-only even to their owner (42501)
 *   anon             42501 on every action on every table
 *   service_role     sees every user's rows; writes allowed (trusted backend)
 */
begin;
set local search_path = extensions, public;
select plan(98);

select from tests.seed_world();
select from tests.seed_activity();

-- ---- B reads: every row B can see is B's own (and there are some) ------------------------
select tests.authenticate_as('user_b');

select results_eq(
    format('select distinct user_id from public.%I', t),
    format('values (%L::uuid)', tests.world('b_uid')),
    format('B sees only its own rows in %s (and sees them)', t))
from unnest(array['agents', 'connections', 'agent_permissions', 'agent_keys', 'operations',
                  'message_events', 'usage_counters']) t;

select is_empty(format('select 1 from public.%I where user_id = %L', t, tests.world('a_uid')),
    format('B filtering on A''s user_id in %s gets nothing', t))
from unnest(array['agents', 'connections', 'agent_permissions', 'agent_keys', 'operations',
                  'message_events', 'usage_counters']) t;

select is_empty(format('select 1 from public.%I where id = %L', t, tests.world(k)),
    format('B selecting A''s %s by id gets nothing', t))
from (values ('agents', 'a_agent'), ('connections', 'a_clicksend'), ('agent_permissions', 'a_grant'),
             ('agent_keys', 'a_key_id'), ('operations', 'a_operation')) v (t, k);

select is((select count(*)::int from public.service_providers), 3, 'B (any signed-in user) can read the provider list');
select cmp_ok((select count(*)::int from public.integration_capabilities), '>=', 7, 'B can read the capability list');

-- ---- B writes to A's agent: no effect --------------------------------------------------------
select is_empty(format('update public.agents set name = %L, is_active = false where id = %L returning id', 'pwned', tests.world('a_agent')),
    'B updating A''s agent touches no row');
select is_empty(format('delete from public.agents where id = %L returning id', tests.world('a_agent')),
    'B deleting A''s agent touches no row');
select throws_ok(format('insert into public.agents (user_id, name) values (%L, %L)', tests.world('a_uid'), 'planted'),
    '42501', null, 'B cannot create an agent owned by A (no privilege on agents.user_id)');
select throws_ok(format('update public.agents set user_id = %L where id = %L', tests.world('a_uid'), tests.world('b_agent')),
    '42501', null, 'B cannot hand its agent to A (no privilege on agents.user_id)');

-- Positive controls: the same statements do work on B's own rows.
select results_eq($$ select (public.create_agent('B second agent') ->> 'user_id')::uuid $$,
    format('values (%L::uuid)', tests.world('b_uid')), 'B creating an agent gets one owned by B');
select isnt_empty(format('update public.agents set name = %L where id = %L returning id', 'B agent renamed', tests.world('b_agent')),
    'B can rename its own agent (the refusals above are not vacuous)');
select isnt_empty($$ delete from public.agents where name = 'B second agent' returning id $$,
    'B can delete its own agent');

-- ---- B writes to the RPC-only tables: refused outright --------------------------------------
select throws_ok(format('insert into public.%I (user_id) values (%L)', t, tests.world('a_uid')),
    '42501', null, format('B cannot insert into %s', t))
from unnest(array['connections', 'agent_permissions', 'agent_keys', 'operations', 'message_events', 'usage_counters']) t;

select throws_ok(format('update public.%I set user_id = %L where user_id = %L', t, tests.world('b_uid'), tests.world('a_uid')),
    '42501', null, format('B cannot update A''s rows in %s', t))
from unnest(array['connections', 'agent_permissions', 'agent_keys', 'operations', 'message_events', 'usage_counters']) t;

select throws_ok(format('delete from public.%I where user_id = %L', t, tests.world('a_uid')),
    '42501', null, format('B cannot delete A''s rows in %s', t))
from unnest(array['connections', 'agent_permissions', 'agent_keys', 'operations', 'message_events', 'usage_counters']) t;

-- ---- A, the owner, cannot bypass the RPCs either -----------------------------------------------
select tests.authenticate_as('user_a');
select results_eq(format('select name, is_active from public.agents where id = %L', tests.world('a_agent')),
    $$ values ('A agent'::text, true) $$, 'A''s agent is unchanged after B''s attempts');
select throws_ok(format('update public.usage_counters set used = 0 where permission_id = %L', tests.world('a_grant')),
    '42501', null, 'A cannot reset its own usage counter (quota bypass)');
select throws_ok(format('update public.agent_permissions set daily_send_limit = null, allowed_scopes = %L where id = %L',
                        '{sms,mms,balance,history}', tests.world('a_grant')),
    '42501', null, 'A cannot edit its grant directly (the RPC and its checks are the only way)');
select throws_ok(format('update public.connections set secret_id = (select secret_id from public.connections where id = %L) where id = %L',
                        tests.world('b_clicksend'), tests.world('a_clicksend')),
    '42501', null, 'A cannot repoint its connection at another Vault secret');
select throws_ok(format('update public.operations set status = %L where id = %L', 'failed', tests.world('a_operation')),
    '42501', null, 'A cannot rewrite its audit log');
select throws_ok($$ update public.service_providers set is_enabled = false $$,
    '42501', null, 'A cannot change provider reference data');
select throws_ok($$ insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope)
                    select id, 'evil_tool', 'x', 'x', 'sms' from public.service_providers limit 1 $$,
    '42501', null, 'A cannot add a capability (tool)');

-- ---- anon: every action on every table is refused ----------------------------------------------
select tests.clear_authentication();
select throws_ok(format('select 1 from public.%I', t), '42501', null, format('anon cannot select from %s', t))
from unnest(array['service_providers', 'integration_capabilities', 'agents', 'connections', 'agent_permissions',
                  'agent_keys', 'operations', 'message_events', 'usage_counters']) t;
select throws_ok(format('insert into public.%I default values', t), '42501', null, format('anon cannot insert into %s', t))
from unnest(array['service_providers', 'integration_capabilities', 'agents', 'connections', 'agent_permissions',
                  'agent_keys', 'operations', 'message_events', 'usage_counters']) t;
select throws_ok(format('update public.%I set user_id = null', t), '42501', null, format('anon cannot update %s', t))
from unnest(array['agents', 'connections', 'agent_permissions', 'agent_keys', 'operations', 'message_events', 'usage_counters']) t;
select throws_ok(format('update public.%I set updated_at = now()', t), '42501', null, format('anon cannot update %s', t))
from unnest(array['service_providers', 'integration_capabilities']) t;
select throws_ok(format('delete from public.%I', t), '42501', null, format('anon cannot delete from %s', t))
from unnest(array['service_providers', 'integration_capabilities', 'agents', 'connections', 'agent_permissions',
                  'agent_keys', 'operations', 'message_events', 'usage_counters']) t;

-- ---- service_role (trusted backend): sees every user, may write ---------------------------------
select tests.authenticate_as_service_role();
select results_eq(format('select count(distinct user_id)::int from public.%I', t), $$ values (2) $$,
    format('service_role sees both users'' rows in %s', t))
from unnest(array['agents', 'connections', 'agent_permissions', 'agent_keys', 'operations',
                  'message_events', 'usage_counters']) t;
select lives_ok(format('update public.agents set is_active = false where id = %L', tests.world('a_agent')),
    'service_role can disable any user''s agent');
-- A trusted backend (service key) pausing a grant directly. Fails today: the table's CHECK
-- constraints call private.valid_recipient_patterns(), which service_role cannot execute.
select lives_ok(format('update public.agent_permissions set is_active = false, revoked_at = now() where id = %L', tests.world('a_grant')),
    'service_role can revoke any user''s grant directly (table grant is usable)');

select * from finish();
rollback;
