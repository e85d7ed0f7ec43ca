/**
 * Isolation matrix for the RPCs: every user-facing RPC called by anon (no EXECUTE:
 * 42501) and by user B on user A's agent / connection / grant / key (PT404 "not found",
 * never a hint that the object exists; 42501 for the seed validators that take a
 * p_user_id). Then A checks that none of B's attempts changed anything. Finally the
 * service-only functions are refused to authenticated and anon.
 */
begin;
set local search_path = extensions, public;
select plan(65);

select from tests.seed_world();
select from tests.seed_activity();

-- ---- anon: no RPC is executable ---------------------------------------------------------------
select tests.clear_authentication();
select throws_ok(format(q, variadic args), '42501', null, 'anon cannot call ' || rpc)
from (values
    ('create_agent', 'select public.create_agent(%L)', array['x']),
    ('create_connection', 'select public.create_connection(%L, %L, %L)', array['clicksend_sms', 'x', '{"username":"u","api_key":"k"}']),
    ('update_connection', 'select public.update_connection(%L, %L)', array[tests.world('a_clicksend'), '{"name":"x"}']),
    ('rotate_connection_credentials', 'select public.rotate_connection_credentials(%L, %L)', array[tests.world('a_clicksend'), '{"username":"u","api_key":"k"}']),
    ('delete_connection', 'select public.delete_connection(%L)', array[tests.world('a_clicksend')]),
    ('grant_agent_permission', 'select public.grant_agent_permission(%L, %L, %L)', array[tests.world('a_agent'), tests.world('a_clicksend'), '{sms}']),
    ('update_agent_permission', 'select public.update_agent_permission(%L, %L)', array[tests.world('a_grant'), '{"daily_send_limit":null}']),
    ('revoke_agent_permission', 'select public.revoke_agent_permission(%L)', array[tests.world('a_grant')]),
    ('issue_agent_key', 'select public.issue_agent_key(%L)', array[tests.world('a_agent')]),
    ('revoke_agent_key', 'select public.revoke_agent_key(%L)', array[tests.world('a_key_id')]),
    ('get_agent_tools', 'select public.get_agent_tools(%L)', array[tests.world('a_agent')]),
    ('validate_agent_clicksend_permissions', 'select public.validate_agent_clicksend_permissions(%L, %L, %L)', array[tests.world('a_agent'), tests.world('a_uid'), '{sms}']),
    ('validate_agent_smtp_permissions', 'select public.validate_agent_smtp_permissions(%L, %L, %L)', array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp')]),
    ('get_smtp_tools', 'select public.get_smtp_tools(%L, %L)', array[tests.world('a_agent'), tests.world('a_uid')]),
    ('log_smtp_operation', 'select public.log_smtp_operation(%L, %L, %L, %L)', array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp'), 'send_email'])
) as v (rpc, q, args);

-- ---- B on A's objects: not found ----------------------------------------------------------------
select tests.authenticate_as('user_b');
select throws_ok(format(q, variadic args), code, null, 'B: ' || what)
from (values
    ('update_connection on A''s connection → not found', 'PT404', 'select public.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"name":"B was here","status":"disabled"}']),
    ('update_connection narrowing A''s scopes → not found', 'PT404', 'select public.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"scopes":[]}']),
    ('rotate_connection_credentials on A''s connection → not found', 'PT404', 'select public.rotate_connection_credentials(%L, %L)',
        array[tests.world('a_clicksend'), '{"username":"b","api_key":"attacker-key"}']),
    ('delete_connection on A''s connection → not found', 'PT404', 'select public.delete_connection(%L)',
        array[tests.world('a_clicksend')]),
    ('grant A''s agent on A''s connection → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_clicksend'), '{sms,mms}']),
    ('grant A''s agent on B''s connection (mixed owners) → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('b_clicksend'), '{sms}']),
    ('grant B''s agent on A''s connection (mixed owners) → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('b_agent'), tests.world('a_clicksend'), '{sms}']),
    ('update_agent_permission on A''s grant → not found', 'PT404', 'select public.update_agent_permission(%L, %L)',
        array[tests.world('a_grant'), '{"daily_send_limit":null,"max_recipients_per_message":10000}']),
    ('revoke_agent_permission on A''s grant → not found', 'PT404', 'select public.revoke_agent_permission(%L)',
        array[tests.world('a_grant')]),
    ('issue_agent_key for A''s agent → not found', 'PT404', 'select public.issue_agent_key(%L)',
        array[tests.world('a_agent')]),
    ('revoke_agent_key on A''s key → not found', 'PT404', 'select public.revoke_agent_key(%L)',
        array[tests.world('a_key_id')]),
    ('get_agent_tools of A''s agent → not found', 'PT404', 'select public.get_agent_tools(%L)',
        array[tests.world('a_agent')]),
    ('get_agent_tools of A''s agent, mcp format → not found', 'PT404', 'select public.get_agent_tools(%L, %L)',
        array[tests.world('a_agent'), 'mcp']),
    ('validate_agent_clicksend_permissions(A''s agent, p_user_id => A) → 42501', '42501',
        'select public.validate_agent_clicksend_permissions(%L, p_user_id => %L, p_required_scopes => %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), '{sms}']),
    ('validate_agent_clicksend_permissions with p_user_id null → 42501', '42501',
        'select public.validate_agent_clicksend_permissions(%L, null, %L)',
        array[tests.world('a_agent'), '{sms}']),
    ('validate_agent_smtp_permissions(A''s agent, A, A''s smtp) → 42501', '42501',
        'select public.validate_agent_smtp_permissions(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp')]),
    ('get_smtp_tools(A''s agent, A) → 42501', '42501', 'select public.get_smtp_tools(%L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid')]),
    ('log_smtp_operation (service only) → 42501', '42501', 'select public.log_smtp_operation(%L, %L, %L, %L)',
        array[tests.world('b_agent'), tests.world('b_uid'), tests.world('b_smtp'), 'send_email']),
    ('private.update_connection called directly on A''s connection → not found', 'PT404', 'select private.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"status":"disabled"}'])
) as v (what, code, q, args);

-- Asking about A's agent as themselves tells B nothing either.
select is(public.validate_agent_clicksend_permissions(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid, '{sms}'), false,
    'B asking about A''s agent under B''s own id: false');
select is(public.validate_agent_smtp_permissions(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid, tests.world('a_smtp')::uuid), false,
    'B asking whether A''s agent may use A''s SMTP under B''s own id: false');
select is(public.get_smtp_tools(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid), '[]'::jsonb,
    'B listing SMTP tools of A''s agent under B''s own id: none');
select is((public.create_connection('clicksend_sms', 'B second', '{"username":"b","api_key":"k2"}') ->> 'user_id')::uuid,
    tests.world('b_uid')::uuid, 'create_connection always creates a connection for the caller (B)');
select is(public.validate_agent_clicksend_permissions(tests.world('b_agent')::uuid, tests.world('b_uid')::uuid, '{sms}'), true,
    'B asking about its own agent gets a real answer (true)');

-- ---- A: nothing B tried had an effect --------------------------------------------------------------
select tests.authenticate_as('user_a');
select results_eq(format('select name, status, granted_scopes from public.connections where id = %L', tests.world('a_clicksend')),
    $$ values ('A ClickSend'::text, 'active'::text, '{sms,mms,balance,history}'::text[]) $$,
    'A''s connection still exists, unrenamed, active, with all its scopes');
select results_eq(format('select allowed_scopes, daily_send_limit, max_recipients_per_message, is_active, revoked_at is null from public.agent_permissions where id = %L', tests.world('a_grant')),
    $$ values ('{sms,balance}'::text[], 100, 10, true, true) $$,
    'A''s grant is unchanged and active');
select results_eq(format('select count(*)::int, count(revoked_at)::int from public.agent_keys where agent_id = %L', tests.world('a_agent')),
    $$ values (1, 0) $$, 'A''s agent still has exactly one key, not revoked (B neither issued nor revoked one)');
select is((select count(*)::int from public.agent_permissions where agent_id = tests.world('a_agent')::uuid), 2,
    'A''s agent has only its two fixture grants (B created none)');
select is(public.validate_agent_clicksend_permissions(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid, '{sms}'), true,
    'A asking about its own agent: true (the 42501 for B is not a blanket refusal)');
select is(public.validate_agent_smtp_permissions(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid, tests.world('a_smtp')::uuid), true,
    'A: its agent may use its SMTP connection');
select is(public.get_smtp_tools(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid) #>> '{0,name}', 'smtp_send_email',
    'A: get_smtp_tools lists smtp_send_email');
select ok(jsonb_array_length(public.get_agent_tools(tests.world('a_agent')::uuid)) > 0, 'A: get_agent_tools lists A''s tools');
select tests.reset_authentication();
select is((select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets
           where id = (select secret_id from public.connections where id = tests.world('a_clicksend')::uuid)),
    tests.world('a_clicksend_secret'), 'A''s Vault secret still holds A''s key (B''s rotate did nothing)');

-- ---- A signed-in role without a user (no sub claim) gets "sign in required" ---------------------------
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated"}', true);
select throws_ok(format('select public.get_agent_tools(%L)', tests.world('a_agent')), 'PT401', null,
    'authenticated without a sub claim: get_agent_tools refuses (PT401)');
select throws_ok($$ select public.create_connection('clicksend_sms', 'ghost', '{"username":"u","api_key":"k"}') $$, 'PT401', null,
    'authenticated without a sub claim: create_connection refuses (PT401)');

-- ---- Service-only functions: refused to authenticated and anon -------------------------------------------
select tests.authenticate_as('user_a');
select throws_ok(format(q, variadic args), '42501', null, 'authenticated (even the owner) cannot call ' || fn)
from (values
    ('private.begin_tool_call', 'select private.begin_tool_call(%L, p_user_id => %L, p_agent_id => %L, p_auth_mode => %L)',
        array['clicksend_get_balance', tests.world('a_uid'), tests.world('a_agent'), 'user_agent']),
    ('private.finish_tool_call', 'select private.finish_tool_call(%L, %L)', array[tests.world('a_operation'), 'failed']),
    ('private.record_message_events', 'select private.record_message_events(%L, %L, %L)',
        array[tests.world('a_webhook_token'), 'clicksend_sms', '[]']),
    ('private.connection_for_test', 'select private.connection_for_test(%L, %L, %L)',
        array[tests.world('a_uid'), tests.world('a_clicksend'), 'clicksend_sms']),
    ('private.log_smtp_operation', 'select private.log_smtp_operation(%L, %L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp'), 'send_email']),
    ('public.log_smtp_operation', 'select public.log_smtp_operation(%L, %L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp'), 'send_email']),
    ('private.webhook_connection', 'select private.webhook_connection(%L, %L)', array[tests.world('a_webhook_token'), 'clicksend_sms']),
    ('private.record_connection_test', 'select private.record_connection_test(%L, %L, %L)', array[tests.world('a_clicksend'), 'true', 'ok']),
    ('private.agent_tools', 'select private.agent_tools(%L, %L)', array[tests.world('a_uid'), tests.world('a_agent')])
) as v (fn, q, args);

select tests.clear_authentication();
select throws_ok(format(q, variadic args), '42501', null, 'anon cannot call ' || fn)
from (values
    ('private.begin_tool_call', 'select private.begin_tool_call(%L, p_agent_key_hash => %L)',
        array['clicksend_get_balance', encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex')]),
    ('private.finish_tool_call', 'select private.finish_tool_call(%L, %L)', array[tests.world('a_operation'), 'failed']),
    ('private.record_message_events', 'select private.record_message_events(%L, %L, %L)',
        array[tests.world('a_webhook_token'), 'clicksend_sms', '[]']),
    ('private.connection_for_test', 'select private.connection_for_test(%L, %L, %L)',
        array[tests.world('a_uid'), tests.world('a_clicksend'), 'clicksend_sms']),
    ('private.log_smtp_operation', 'select private.log_smtp_operation(%L, %L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp'), 'send_email'])
) as v (fn, q, args);

-- ... while service_role, whom they are for, can call them.
select tests.reset_authentication();
select ok(bool_and(has_function_privilege('service_role', f, 'EXECUTE')), 'service_role can execute every service-only function')
from unnest(array[
    'private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text)',
    'private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer)',
    'private.record_message_events(text, text, jsonb)',
    'private.connection_for_test(uuid, uuid, text)',
    'public.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer)']) f;

select * from finish();
rollback;
