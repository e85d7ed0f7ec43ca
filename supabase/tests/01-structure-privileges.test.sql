/**
 * Structure and privileges (README, "Security model"): RLS everywhere, explicit grants, SECURITY
 * DEFINER only in `private` with an empty search_path, nothing for anon, Vault sealed, every
 * tenant row tagged with its workspace. Catalog checks name the offending objects in their
 * diagnostics. The lists here are exact on purpose: a new table, RPC or grant fails this file
 * until it is added here and covered by 02-table-isolation / 03-rpc-isolation.
 */
begin;
set local search_path = extensions, public;
select plan(34);

-- ---- Tables and RLS -------------------------------------------------------------
select tables_are('public', array[
    'service_providers', 'integration_capabilities',
    'workspaces', 'workspace_members', 'workspace_invitations', 'audit_events',
    'connections', 'connection_webhooks', 'member_permissions', 'phone_numbers', 'member_default_numbers', 'sender_identities',
    'agents', 'agent_permissions', 'agent_keys', 'operations', 'usage_counters', 'message_events',
    'routes', 'route_connections', 'operation_attempts'
], 'public holds exactly the tables this suite covers (a new table needs RLS tests in 02-table-isolation)');

select is_empty($$
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and c.relname not in ('service_providers', 'integration_capabilities', 'workspaces')
      and not exists (select 1 from pg_attribute a
                      where a.attrelid = c.oid and a.attname = 'workspace_id' and a.attnotnull and not a.attisdropped)
$$, 'every tenant table carries the workspace its row belongs to (workspace_id not null): the isolation key of 02');

select tests.rls_enabled('public');

select is_empty($$
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm', 'f')
$$, 'public exposes no views, materialized views or foreign tables (they would bypass RLS)');

select is_empty($$
    select policyname from pg_policies
    where schemaname = 'public' and roles <> '{authenticated}'
$$, 'every policy in public is scoped TO authenticated');

select is_empty($$
    select policyname from pg_policies
    where schemaname = 'public'
      and replace(coalesce(qual, '') || coalesce(with_check, ''), 'SELECT auth.uid() AS uid', '') ~ 'auth\.uid\(\)'
$$, 'every policy calls auth.uid() in the initPlan form (select auth.uid())');

select is_empty($$
    select policyname from pg_policies
    where schemaname = 'public' and policyname <> tablename || '_' || lower(cmd) || '_policy'
$$, 'policies are named <table>_<action>_policy');

-- ---- Functions -------------------------------------------------------------------
select cmp_ok((select count(*)::int from pg_proc where pronamespace = 'private'::regnamespace and prosecdef), '>=', 20,
    'the SECURITY DEFINER checks below have something to check (>= 20 definer functions in private)');

select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and p.prosecdef and not ('search_path=""' = any (coalesce(p.proconfig, '{}')))
$$, 'every SECURITY DEFINER function in public/private has search_path='''' set');

select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) s where s like 'search_path=%')
$$, 'every function in public/private pins its search_path (splinter 0011)');

select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'public'::regnamespace and p.prosecdef
$$, 'no function in public (the exposed schema) is SECURITY DEFINER');

select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.prosecdef and has_function_privilege('anon', p.oid, 'EXECUTE')
      and p.pronamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'tests'::regnamespace)
$$, 'anon can execute no SECURITY DEFINER function in any schema');

select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and has_function_privilege('anon', p.oid, 'EXECUTE')
$$, 'anon can execute nothing at all in public or private');

select ok(not has_schema_privilege('anon', 'private', 'USAGE'), 'anon has no USAGE on schema private');

select results_eq($$
    select p.proname::text collate "default" from pg_proc p
    where p.pronamespace = 'public'::regnamespace and has_function_privilege('authenticated', p.oid, 'EXECUTE')
    order by 1
$$, $$ values ('accept_workspace_invitation'), ('add_phone_number'), ('add_sender_identity'),
              ('change_workspace_member_role'), ('create_agent'), ('create_connection'), ('create_workspace'),
              ('decline_workspace_invitation'), ('delete_connection'), ('delete_phone_number'), ('delete_sender_identity'),
              ('delete_workspace'), ('get_agent_tools'), ('get_smtp_tools'), ('grant_agent_permission'),
              ('invite_workspace_member'), ('issue_agent_key'), ('leave_workspace'), ('remove_member_permission'),
              ('remove_workspace_member'), ('rename_workspace'), ('revoke_agent_key'), ('revoke_agent_permission'),
              ('revoke_workspace_invitation'), ('rotate_connection_credentials'), ('set_default_mail_connection'),
              ('set_member_default_number'), ('set_member_permission'), ('set_route'), ('transfer_workspace_ownership'),
              ('update_agent_permission'), ('update_connection'), ('update_phone_number'), ('update_sender_identity'),
              ('validate_agent_clicksend_permissions'), ('validate_agent_smtp_permissions'), ('workspace_member_directory') $$,
    'authenticated can execute exactly the user-facing RPCs in public (not log_smtp_operation); 03-rpc-isolation calls each');

select results_eq($$
    select p.proname::text collate "default" from pg_proc p
    where p.pronamespace = 'private'::regnamespace and has_function_privilege('authenticated', p.oid, 'EXECUTE')
      and p.proname in (select q.proname from pg_proc q where q.pronamespace = 'public'::regnamespace)
    order by 1
$$, $$ select p.proname::text collate "default" from pg_proc p
       where p.pronamespace = 'public'::regnamespace and has_function_privilege('authenticated', p.oid, 'EXECUTE')
         and p.proname <> 'create_agent'
       order by 1 $$,
    'authenticated can execute the private body of every public RPC (create_agent has none: it is a plain insert under RLS)');

-- The helpers the policies and the SECURITY INVOKER wrappers call as the signed-in user:
-- each asks only about the caller. workspace_role, connection_access and
-- live_member_permission take any user id, so only definer code may call them.
select results_eq($$
    select p.oid::regprocedure::text collate "default" from pg_proc p
    where p.pronamespace = 'private'::regnamespace and has_function_privilege('authenticated', p.oid, 'EXECUTE')
      and p.proname not in (select q.proname from pg_proc q where q.pronamespace = 'public'::regnamespace)
    order by 1
$$, $$ values ('private.can_view_connection(uuid)'),
              ('private.has_role_on_workspace(uuid,text)'), ('private.is_mail_provider(uuid)'),
              ('private.my_workspace_ids()'),
              ('private.personal_workspace_id()'), ('private.role_rank(text)'),
              ('private.workspace_or_personal(uuid)') $$,
    'besides those bodies, authenticated can execute exactly the policy helpers in private, nothing service-only');

select results_eq($$
    select p.oid::regprocedure::text collate "default" from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and has_function_privilege('service_role', p.oid, 'EXECUTE') and not has_function_privilege('authenticated', p.oid, 'EXECUTE')
    order by 1
$$, $$ values ('log_smtp_operation(uuid,uuid,uuid,text,jsonb,jsonb,text,text,integer,integer)'),
              ('private.agent_message_status(uuid,uuid,text,uuid[],integer)'), ('private.agent_tool_entries(uuid,boolean)'), ('private.agent_tools(uuid,text)'),
              ('private.begin_tool_call(text,uuid,uuid,text,uuid,text,text[],text,text,jsonb,text,text)'),
              ('private.connection_for_admin(uuid,uuid,text)'), ('private.connection_for_test(uuid,uuid,text)'),
              ('private.dry_run_tool_call(text,uuid,uuid,text,uuid,text,text[],text,text,jsonb,text,text)'),
              ('private.fail_over_tool_call(uuid,text,text,integer,text,integer)'),
              ('private.finish_tool_call(uuid,text,integer,text[],jsonb,text,text,jsonb,integer)'),
              ('private.is_email_address(text)'),
              ('private.list_tools_for_caller(uuid,uuid,text,text,boolean,boolean)'),
              ('private.log_smtp_operation(uuid,uuid,uuid,text,jsonb,jsonb,text,text,integer,integer)'),
              ('private.operations_to_reconcile(text,integer)'), ('private.reconcile_pending_operations()'),
              ('private.record_connection_test(uuid,boolean,text,uuid,jsonb)'),
              ('private.record_message_events(text,text,jsonb)'),
              ('private.record_provider_reconciliation(uuid,text,text,jsonb,text)'),
              ('private.sync_phone_numbers(uuid,uuid,jsonb,jsonb)'), ('private.uuid_v7()'),
              ('private.valid_recipient_patterns(text[])'), ('private.webhook_connection(text,text)'),
              ('private.webhook_connection_secrets(text,text)') $$,
    'the service-only functions (service_role, never authenticated) are exactly these; 03-rpc-isolation refuses each to users');

-- ---- Table privileges ----------------------------------------------------------------
select is_empty($$
    select c.relname || ':' || priv from pg_class c
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and (has_table_privilege('anon', c.oid, priv)
           or (priv in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') and has_any_column_privilege('anon', c.oid, priv)))
$$, 'no table (or column) in public grants anything to anon');

select results_eq($$
    select c.relname::text collate "default", priv from pg_class c
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and has_table_privilege('authenticated', c.oid, priv)
    order by 1, 2
$$, $$ values ('agent_keys', 'SELECT'), ('agent_permissions', 'SELECT'), ('agents', 'DELETE'), ('agents', 'SELECT'),
              ('audit_events', 'SELECT'), ('connection_webhooks', 'SELECT'), ('connections', 'SELECT'),
              ('integration_capabilities', 'SELECT'),
              ('member_default_numbers', 'SELECT'), ('member_permissions', 'SELECT'), ('message_events', 'SELECT'),
              ('operation_attempts', 'SELECT'), ('operations', 'SELECT'), ('phone_numbers', 'SELECT'),
              ('route_connections', 'SELECT'), ('routes', 'SELECT'), ('sender_identities', 'SELECT'),
              ('service_providers', 'SELECT'), ('usage_counters', 'SELECT'), ('workspace_invitations', 'SELECT'),
              ('workspace_members', 'SELECT'), ('workspaces', 'SELECT') $$,
    'authenticated: read-only tables except agents (writes go through the RPCs)');

select is_empty($$
    select c.relname || ':' || priv from pg_class c
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and has_table_privilege('service_role', c.oid, priv)
          <> (priv in ('SELECT', 'INSERT', 'UPDATE', 'DELETE') and (c.relname <> 'audit_events' or priv = 'SELECT'))
$$, 'service_role: select, insert, update and delete on every table, except the audit trail (select only), and nothing else');

select results_eq($$
    select c.relname::text collate "default", a.attname::text collate "default", priv from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    cross join unnest(array['INSERT', 'UPDATE', 'REFERENCES']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and has_column_privilege('authenticated', c.oid, a.attnum, priv)
    order by 1, 2, 3
$$, $$ values ('agents', 'description', 'INSERT'), ('agents', 'description', 'UPDATE'),
              ('agents', 'is_active', 'INSERT'), ('agents', 'is_active', 'UPDATE'),
              ('agents', 'name', 'INSERT'), ('agents', 'name', 'UPDATE'),
              ('agents', 'workspace_id', 'INSERT') $$,
    'authenticated writes only agents.name/description/is_active, and picks workspace_id on insert (never user_id or id, never moves an agent)');

-- ---- Behaviour as anon ------------------------------------------------------------------
select tests.clear_authentication();
select throws_ok($$ select private.require_user() $$, '42501', null, 'anon cannot use schema private at all');
select throws_ok($$ select * from vault.decrypted_secrets $$, '42501', null, 'anon cannot read vault.decrypted_secrets');
select throws_ok($$ select * from vault.secrets $$, '42501', null, 'anon cannot read vault.secrets');
select throws_ok($$ select * from vault_root_key.key $$, '42501', null, 'anon cannot read vault_root_key.key');
select throws_ok($$ select vault.create_secret('x') $$, '42501', null, 'anon cannot call vault.create_secret');

-- ---- Behaviour as a signed-in user ---------------------------------------------------------
select tests.reset_authentication();
select from tests.seed_world();
select tests.authenticate_as('user_a');
select throws_ok($$ select * from vault.decrypted_secrets $$, '42501', null, 'authenticated cannot read vault.decrypted_secrets');
select throws_ok($$ select * from vault.secrets $$, '42501', null, 'authenticated cannot read vault.secrets');
select throws_ok($$ select * from vault_root_key.key $$, '42501', null, 'authenticated cannot read vault_root_key.key');
select throws_ok(format('select vault._crypto_aead_det_decrypt(decode(s, ''base64''), null, 0) from (select %L::text s) x', 'AAAA'),
    '42501', null, 'authenticated cannot call the Vault decrypt primitive');
select throws_ok(format('select vault.update_secret(%L::uuid, %L)', gen_random_uuid(), 'x'),
    '42501', null, 'authenticated cannot call vault.update_secret');

select tests.reset_authentication();
select is_empty($$
    select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace in ('vault'::regnamespace, 'vault_root_key'::regnamespace)
      and (has_function_privilege('anon', p.oid, 'EXECUTE') or has_function_privilege('authenticated', p.oid, 'EXECUTE'))
$$, 'no Vault function is executable by anon or authenticated');

select ok(not has_schema_privilege('authenticated', 'vault', 'USAGE') and not has_schema_privilege('anon', 'vault', 'USAGE')
          and not has_schema_privilege('authenticated', 'vault_root_key', 'USAGE')
          and not has_schema_privilege('anon', 'vault_root_key', 'USAGE'),
    'neither anon nor authenticated may use schemas vault or vault_root_key');

select * from finish();
rollback;
