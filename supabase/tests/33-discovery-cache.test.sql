/**
 * The discovery cache (migration discovery_cache): an agent's tool listing on the service
 * path is served again only while a fresh one would be identical to it. After every kind
 * of change a listing is built from (a send moving a counter, quota given back, a grant
 * revoked or changed, a connection renamed, an agent disabled, a member's permission
 * narrowed, a member removed, a route, a capability, expiry), the next listing equals a
 * freshly built one and differs from the one before; a change in another workspace leaves
 * the cached listing in place. A listing asked for a scope check only (p_current_counts false)
 * may be one whose counts of what is left moved since, never one whose tools changed. Nobody
 * but the owner reads or calls the cache.
 */
begin;
set local search_path = extensions, public;
select plan(60);

select from tests.seed_world();
select from tests.seed_team();
-- The bumps are deferred to commit, and a test is one transaction that never commits: from
-- here on they fire at the end of each statement instead, as at the commit of a request.
set constraints public.agents_bump_tool_listing_version, public.agent_permissions_bump_tool_listing_version,
    public.connections_bump_tool_listing_version, public.workspace_members_bump_tool_listing_version,
    public.member_permissions_bump_tool_listing_version, public.routes_bump_tool_listing_version,
    public.route_connections_bump_tool_listing_version immediate;
select tests.remember('h_a_key', to_jsonb(encode(extensions.digest(tests.world('a_key'), 'sha256'), 'hex')));
select tests.remember('h_t_key', to_jsonb(encode(extensions.digest(tests.world('t_key'), 'sha256'), 'hex')));

/** The listing an agent key gets on the service path (raw format: entries with limits objects). */
create function pg_temp.listing(p_key text) returns jsonb
language sql as $$
    select private.list_tools_for_caller(p_agent_key_hash => tests.world(p_key), p_format => 'raw', p_entries => true)::jsonb
$$;
/** A listing built afresh, without the cache. */
create function pg_temp.fresh(p_agent text) returns jsonb
language sql as $$
    select coalesce(json_agg(e), '[]')::jsonb from private.agent_tool_entries(tests.world(p_agent)::uuid, true) e
$$;
/** Where the agent's cached raw listing is stored: changes whenever the listing is built again. */
create function pg_temp.cached_at(p_agent text) returns tid
language sql security definer as $$
    select c.ctid from private.tool_listings c where c.agent_id = tests.world(p_agent)::uuid and c.with_limits
$$;
/** The listing for a scope check (p_current_counts false). */
create function pg_temp.scope_listing(p_key text) returns jsonb
language sql as $$
    select private.list_tools_for_caller(p_agent_key_hash => tests.world(p_key), p_format => 'raw', p_entries => true,
                                         p_current_counts => false)::jsonb
$$;
/** One tool's description in a listing. */
create function pg_temp.description(p_listing jsonb, p_tool text) returns text
language sql as $$
    select e ->> 'description' from jsonb_array_elements(p_listing) e where e ->> 'name' = p_tool
$$;
/** Lists for p_key, remembering the listing and where it is cached under p_label. */
create function pg_temp.list_and_remember(p_key text, p_agent text, p_label text) returns jsonb
language plpgsql as $$
declare
    v_listing jsonb := pg_temp.listing(p_key);
begin
    perform tests.remember(p_label, v_listing);
    perform tests.remember(p_label || '_at', to_jsonb(pg_temp.cached_at(p_agent)::text));
    return v_listing;
end
$$;

-- The helpers run as service_role (which lists) and as the users too.
do $$ begin
    execute format('grant execute on all functions in schema %I to authenticated, service_role', pg_my_temp_schema()::regnamespace);
end $$;

-- ---- Structure and privileges --------------------------------------------------------------------
select has_table('private', 'tool_listings', 'the cached listings table exists');
select is((select relpersistence::text from pg_catalog.pg_class where oid = 'private.tool_listings'::regclass), 'u',
    '... unlogged (a cache writes no WAL; a crash empties it)');
select has_table('private', 'tool_listing_versions', 'the per-workspace listing versions table exists');
select tests.rls_enabled('private');
select is_empty($$ select w.id from public.workspaces w
                   where not exists (select 1 from private.tool_listing_versions v where v.workspace_id = w.id) $$,
    'every workspace has its listing version (new ones get theirs from a trigger)');
select is((select array_agg(c.relname::text order by c.relname) from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid
           where t.tgname like '%bump_tool_listing_version%' and not t.tgisinternal),
    array['agent_permissions', 'agents', 'connections', 'integration_capabilities', 'member_permissions', 'route_connections', 'routes',
          'service_providers', 'workspace_members'],
    'every table a listing is built from bumps the version when it changes');
select is((select bool_and(t.tgdeferrable and t.tginitdeferred) from pg_catalog.pg_trigger t
           where t.tgname like '%\_bump\_tool\_listing\_version' and not t.tgisinternal), true,
    '... at commit (deferred), so the version row is the last lock a change takes');

select tests.authenticate_as('user_a');
select matches(tests.try_sql('select * from private.tool_listings'), '^42501: ', 'a signed-in user cannot read the cache (42501)');
select matches(tests.try_sql(format('select private.cached_agent_tool_entries(%L, true)', tests.world('a_agent'))), '^42501: ',
    '... nor call it');
select matches(tests.try_sql('update private.tool_listing_versions set version = 1'), '^42501: ', '... nor touch the versions');
select tests.authenticate_as_service_role();
select matches(tests.try_sql('select * from private.tool_listings'), '^42501: ',
    'service_role cannot read the cache directly either (it lists through list_tools_for_caller)');

-- ---- A listing is cached, and served again while nothing changed ---------------------------------
select is(pg_temp.list_and_remember('h_a_key', 'a_agent', 'l0'), pg_temp.fresh('a_agent'), 'the first listing is the fresh one');
select isnt(tests.recall('l0_at'), 'null'::jsonb, '... and is kept in the cache');
select is(pg_temp.listing('h_a_key'), tests.recall('l0'), 'listing again gives the same tools');
select is(pg_temp.cached_at('a_agent')::text, tests.world('l0_at'), '... served from the cache (not built again)');
select is(private.list_tools_for_caller(p_agent_key_hash => tests.world('h_a_key'), p_format => 'openai', p_entries => true)::jsonb,
    (select coalesce(json_agg(e), '[]')::jsonb from private.agent_tool_entries(tests.world('a_agent')::uuid, false) e),
    'the formats without limits objects are cached apart, and equal their fresh listing too');
select matches(pg_temp.description(tests.recall('l0'), 'sms_send'), '100 of 100 messages left today', 'before any send: 100 of 100 left today');

-- ---- A send moves a counter: the next listing is a fresh one -------------------------------------
select tests.remember('call', private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => tests.world('h_a_key'),
    p_recipients => '{+61400000001}', p_auth_mode => 'agent_key'));
select is(pg_temp.list_and_remember('h_a_key', 'a_agent', 'l1'), pg_temp.fresh('a_agent'), 'after a send: the listing equals a fresh one');
select matches(pg_temp.description(tests.recall('l1'), 'sms_send'), '99 of 100 messages left today', '... which says 99 of 100 left today');
select isnt(tests.world('l1_at'), tests.world('l0_at'), '... built again, not served from the cache');
select lives_ok(format($$ select private.finish_tool_call(%L, 'failed', 0, '{}', '{}') $$, tests.recall('call') ->> 'operation_id'),
    'the send fails at the provider (its quota is given back)');
select matches(pg_temp.description(pg_temp.listing('h_a_key'), 'sms_send'), '100 of 100 messages left today',
    'the quota given back shows at once: 100 of 100 left today');
select is(pg_temp.listing('h_a_key'), pg_temp.fresh('a_agent'), '... equal to a fresh listing');

-- ---- For a scope check (p_current_counts false), counts that moved do not matter ------------------
select from pg_temp.list_and_remember('h_a_key', 'a_agent', 's0');
select tests.remember('call', private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => tests.world('h_a_key'),
    p_recipients => '{+61400000002}', p_auth_mode => 'agent_key'));
select is(pg_temp.scope_listing('h_a_key'), tests.recall('s0'), 'for a scope check, the listing kept before a send is served after it');
select is(pg_temp.cached_at('a_agent')::text, tests.world('s0_at'), '... from the cache, not built again');
select is(array(select e ->> 'name' from jsonb_array_elements(tests.recall('s0')) e order by 1),
          array(select e ->> 'name' from jsonb_array_elements(pg_temp.fresh('a_agent')) e order by 1),
    '... listing exactly the tools a fresh listing lists');
select matches(pg_temp.description(pg_temp.listing('h_a_key'), 'sms_send'), '99 of 100 messages left today',
    'a listing that is shown is still built with current counts: 99 of 100 left today');
select lives_ok(format($$ select private.finish_tool_call(%L, 'failed', 0, '{}', '{}') $$, tests.recall('call') ->> 'operation_id'),
    'that send fails too (its quota is given back)');
select from pg_temp.list_and_remember('h_a_key', 'a_agent', 's1');
select tests.authenticate_as('user_a');
select from public.update_connection(tests.world('a_clicksend')::uuid, '{"name": "A scope line"}');
select tests.authenticate_as_service_role();
select is(pg_temp.scope_listing('h_a_key'), pg_temp.fresh('a_agent'),
    'for a scope check too, a change in the workspace (a connection renamed) gives a fresh listing');
select isnt(pg_temp.cached_at('a_agent')::text, tests.world('s1_at'), '... built again, not served from the cache');
select throws_ok(format($$ select private.list_tools_for_caller(p_agent_key_hash => %L, p_entries => true, p_current_counts => false) $$,
                        'no-such-key-hash'), 'PT401', 'invalid agent key', '... and an unknown key is refused (PT401) as on every listing');

-- ---- Changes in the workspace --------------------------------------------------------------------
select from pg_temp.list_and_remember('h_a_key', 'a_agent', 'l2');
select tests.authenticate_as('user_b');
select from public.update_connection(tests.world('b_clicksend')::uuid, '{"name": "B renamed"}');
select tests.authenticate_as_service_role();
select is(pg_temp.listing('h_a_key'), tests.recall('l2'), 'a change in another workspace (B renames a connection) changes nothing for A');
select is(pg_temp.cached_at('a_agent')::text, tests.world('l2_at'), '... and A''s listing stays cached');

select tests.authenticate_as('user_a');
select from public.update_connection(tests.world('a_clicksend')::uuid, '{"name": "A main line"}');
select tests.authenticate_as_service_role();
select is(pg_temp.list_and_remember('h_a_key', 'a_agent', 'l3'), pg_temp.fresh('a_agent'), 'A renames its connection: the listing equals a fresh one');
select isnt(tests.recall('l3'), tests.recall('l2'), '... and differs from the one before');

select tests.authenticate_as('user_a');
select from public.update_agent_permission(tests.world('a_grant')::uuid, '{"daily_send_limit": 40}');
select tests.authenticate_as_service_role();
select matches(pg_temp.description(pg_temp.list_and_remember('h_a_key', 'a_agent', 'l4'), 'sms_send'), '40 of 40 messages left today',
    'the grant''s daily limit changes to 40: the listing says 40 of 40');
select is(tests.recall('l4'), pg_temp.fresh('a_agent'), '... equal to a fresh listing');

select tests.authenticate_as('user_a');
select from public.revoke_agent_permission(tests.world('a_smtp_grant')::uuid);
select tests.authenticate_as_service_role();
select is(pg_temp.list_and_remember('h_a_key', 'a_agent', 'l5'), pg_temp.fresh('a_agent'), 'the mail grant is revoked: the listing equals a fresh one');
select ok(not tests.recall('l5') @> '[{"name": "email_send"}]' and tests.recall('l4') @> '[{"name": "email_send"}]',
    '... and email_send is gone from it');

select tests.authenticate_as('user_a');
update public.agents set is_active = false where id = tests.world('a_agent')::uuid;
select tests.authenticate_as_service_role();
select is(pg_temp.listing('h_a_key'), '[]'::jsonb, 'the agent is disabled: it lists no tools');
select tests.authenticate_as('user_a');
update public.agents set is_active = true where id = tests.world('a_agent')::uuid;
select tests.authenticate_as_service_role();
select is(pg_temp.listing('h_a_key'), tests.recall('l5'), '... enabled again: the tools are back');

-- ---- A member's agent: the member's permission and membership ------------------------------------
select is(pg_temp.list_and_remember('h_t_key', 't_agent', 't0'), pg_temp.fresh('t_agent'), 'a member''s agent: the first listing is the fresh one');
select ok(tests.recall('t0') @> '[{"name": "sms_send"}]', '... with sms_send');
select matches(pg_temp.description(tests.recall('t0'), 'sms_send'), '3 of 3 messages left today',
    '... 3 of 3 left today (the grant''s 3 a day, tighter than the member''s 5)');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_sender')::uuid,
    p_recipients => '{+61400000001,+61400000002,+61400000003}', p_auth_mode => 'user') -> 'ok', 'true'::jsonb,
    'the member sends 3 messages themselves (counted on their permission, not on the agent''s grant)');
select matches(pg_temp.description(pg_temp.listing('h_t_key'), 'sms_send'), '2 of 3 messages left today',
    '... and their agent''s listing says 2 of 3 left today at once (the member has 2 of 5 left)');
select is(pg_temp.listing('h_t_key'), pg_temp.fresh('t_agent'), '... equal to a fresh listing');
select tests.authenticate_as('team_admin');
select from public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid,
    p_can_view => true, p_can_send => false, p_scopes => array['sms', 'balance']);
select tests.authenticate_as_service_role();
select is(pg_temp.list_and_remember('h_t_key', 't_agent', 't1'), pg_temp.fresh('t_agent'),
    'the admin takes can_send from the member: the agent''s listing equals a fresh one');
select ok(not tests.recall('t1') @> '[{"name": "sms_send"}]', '... without sms_send');
select tests.authenticate_as('team_owner');
select from public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_sender')::uuid);
select tests.authenticate_as_service_role();
select is(pg_temp.listing('h_t_key'), '[]'::jsonb, 'the member is removed: their agent lists no tools');

-- ---- Routes, capabilities, versions, expiry ------------------------------------------------------
select from pg_temp.list_and_remember('h_a_key', 'a_agent', 'l6');
select tests.authenticate_as('user_a');
select from public.set_route(tests.world('a_workspace')::uuid, 'sms', array[tests.world('a_clicksend')::uuid]);
select tests.authenticate_as_service_role();
select is(pg_temp.listing('h_a_key'), pg_temp.fresh('a_agent'), 'a route is set: the listing equals a fresh one');
select isnt(pg_temp.cached_at('a_agent')::text, tests.world('l6_at'), '... built again, not served from the cache');

select from pg_temp.list_and_remember('h_a_key', 'a_agent', 'l7');
select tests.reset_authentication();
update public.integration_capabilities set description = description || ' (Cached listings test.)' where capability_key = 'sms_send';
select matches(pg_temp.description(pg_temp.listing('h_a_key'), 'sms_send'), '\(Cached listings test\.\)',
    'a capability''s description changes (a migration): every listing shows the new one');

select from pg_temp.list_and_remember('h_a_key', 'a_agent', 'l8');
select tests.reset_authentication();
update private.tool_listing_versions set version = version + 1 where workspace_id = tests.world('a_workspace')::uuid;
select tests.authenticate_as_service_role();
select from pg_temp.listing('h_a_key');
select isnt(pg_temp.cached_at('a_agent')::text, tests.world('l8_at'), 'a listing kept under an older version of its workspace is never served');

select tests.authenticate_as('user_a');
select from public.update_agent_permission(tests.world('a_grant')::uuid, jsonb_build_object('expires_at', now() + interval '1 hour'));
select tests.authenticate_as_service_role();
select from pg_temp.list_and_remember('h_a_key', 'a_agent', 'l9');
select tests.reset_authentication();
select is((select valid_until from private.tool_listings where agent_id = tests.world('a_agent')::uuid and with_limits), now() + interval '1 hour',
    'a grant expiring in an hour: the listing is kept until then');
-- The clock cannot move inside a test's transaction: the kept time moves back instead.
update private.tool_listings set valid_until = now() - interval '1 second' where agent_id = tests.world('a_agent')::uuid and with_limits;
select tests.remember('l9_moved_at', to_jsonb(pg_temp.cached_at('a_agent')::text));
select tests.authenticate_as_service_role();
select from pg_temp.listing('h_a_key');
select isnt(pg_temp.cached_at('a_agent')::text, tests.world('l9_moved_at'), '... and once that time has passed, it is built again');

-- ---- Deletions -----------------------------------------------------------------------------------
select tests.reset_authentication();
select lives_ok(format('delete from public.workspaces where id = %L', tests.world('b_team')),
    'a workspace is deleted (its members, connections and permissions with it): no trigger stands in the way');
select is_empty(format('select 1 from private.tool_listing_versions where workspace_id = %L', tests.world('b_team')),
    '... and its listing version goes with it');
select lives_ok(format('delete from public.agents where id = %L', tests.world('a_agent')), 'an agent is deleted');
select is_empty(format('select 1 from private.tool_listings where agent_id = %L', tests.world('a_agent')),
    '... and its cached listings go with it');

select * from finish();
rollback;
