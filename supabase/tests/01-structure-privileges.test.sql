/**
 * Structure and privileges (README, "Security model"): RLS everywhere, explicit grants, SECURITY
 * DEFINER only in `private` with an empty search_path, nothing for anon, Vault sealed.
 * Catalog checks name the offending objects in their diagnostics.
 */
begin;
set local search_path = extensions, public;
select plan(30);

-- ---- Tables and RLS -------------------------------------------------------------
select tables_are('public', array[
    'service_providers', 'integration_capabilities', 'agents', 'connections', 'agent_permissions',
    'agent_keys', 'operations', 'message_events', 'usage_counters'
], 'public holds exactly the tables this suite covers (a new table needs RLS tests here)');

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
$$, $$ values ('create_agent'), ('create_connection'), ('delete_connection'), ('get_agent_tools'), ('get_smtp_tools'),
              ('grant_agent_permission'), ('issue_agent_key'), ('revoke_agent_key'), ('revoke_agent_permission'),
              ('rotate_connection_credentials'), ('update_agent_permission'), ('update_connection'),
              ('validate_agent_clicksend_permissions'), ('validate_agent_smtp_permissions') $$,
    'authenticated can execute exactly the user-facing RPCs in public (not log_smtp_operation)');

select results_eq($$
    select p.proname::text collate "default" from pg_proc p
    where p.pronamespace = 'private'::regnamespace and has_function_privilege('authenticated', p.oid, 'EXECUTE')
    order by 1
$$, $$ values ('create_connection'), ('delete_connection'), ('get_agent_tools'), ('get_smtp_tools'),
              ('grant_agent_permission'), ('issue_agent_key'), ('revoke_agent_key'), ('revoke_agent_permission'),
              ('rotate_connection_credentials'), ('update_agent_permission'), ('update_connection'),
              ('validate_agent_clicksend_permissions'), ('validate_agent_smtp_permissions') $$,
    'authenticated can execute exactly the self-checking private bodies of those RPCs, nothing service-only');

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
              ('connections', 'SELECT'), ('integration_capabilities', 'SELECT'), ('message_events', 'SELECT'),
              ('operations', 'SELECT'), ('service_providers', 'SELECT'), ('usage_counters', 'SELECT') $$,
    'authenticated: read-only tables except agents (writes go through the RPCs)');

select results_eq($$
    select c.relname::text collate "default", a.attname::text collate "default", priv from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    cross join unnest(array['INSERT', 'UPDATE', 'REFERENCES']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and has_column_privilege('authenticated', c.oid, a.attnum, priv)
    order by 1, 2, 3
$$, $$ values ('agents', 'description', 'INSERT'), ('agents', 'description', 'UPDATE'),
              ('agents', 'is_active', 'INSERT'), ('agents', 'is_active', 'UPDATE'),
              ('agents', 'name', 'INSERT'), ('agents', 'name', 'UPDATE') $$,
    'authenticated writes only agents.name/description/is_active (never user_id or id)');

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
