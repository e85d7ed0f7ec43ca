/**
 * Which account a call uses, and which tools an agent sees.
 *  - A user acting directly (no agent) may use the connections of the workspaces they
 *    belong to (an owner or admin: all of them; a member: those they hold a permission
 *    on), never another workspace's; an owner's own call reserves no quota.
 *  - An agent holding two connections of one provider must name one (p_connection_id,
 *    or p_connection_ref = the tool-name suffix), else invalid_request; for mail, the
 *    workspace's default mail connection is used when the call names none, and a caller
 *    with a default in two workspaces must name one.
 *  - get_agent_tools lists live grants only, suffixes tool names when two connections
 *    of one provider are granted, and every suffixed name resolves back to its account;
 *    formats openai / anthropic / mcp have their runtimes' shapes.
 */
begin;
set local search_path = extensions, public;
select plan(45);

select from tests.seed_world();

-- ---- The user acting directly -------------------------------------------------------------------
select tests.authenticate_as_service_role();
select tests.remember('direct', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_recipients => '{+14155550100,+61400000001}', p_auth_mode => 'user'));
select is(tests.recall('direct') ->> 'connection_id', tests.world('a_clicksend'),
    'A acting directly (no agent, no grant) may use A''s only ClickSend connection');
select results_eq(format('select agent_id, permission_id, member_permission_id, quota_reserved, auth_mode::text, workspace_id from public.operations where id = %L',
                         tests.recall('direct') ->> 'operation_id'),
    format('values (null::uuid, null::uuid, null::uuid, 0, %L::text, %L::uuid)', 'user', tests.world('a_workspace')),
    '... logged in A''s workspace with no agent, no grant, no member permission (A owns it), no quota reserved');
select is(private.begin_tool_call('sendgrid_send_email', p_user_id => tests.world('a_uid')::uuid,
    p_recipients => '{x@example.test}', p_auth_mode => 'user') ->> 'connection_id', tests.world('a_team_mail'),
    'A acting directly may use its team''s SendGrid connection too (A owns the team)');
select is(private.begin_tool_call('sendgrid_send_email', p_user_id => tests.world('a_uid')::uuid, p_connection_id => tests.world('b_team_mail')::uuid,
    p_recipients => '{x@example.test}', p_auth_mode => 'user') #>> '{error,details,reason}',
    'no_grant', '... but never B''s team''s');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_connection_id => tests.world('b_clicksend')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user') #>> '{error,details,reason}',
    'no_grant', 'A acting directly cannot use B''s connection (as if it did not exist)');
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_connection_ref => left(tests.world('b_smtp'), 8),
    p_recipients => '{x@example.com}', p_auth_mode => 'user') #>> '{error,details,reason}',
    'no_grant', '... nor name it by reference');

-- ---- Two connections of one provider ---------------------------------------------------------------
select tests.authenticate_as('user_a');
select tests.remember('cs2', public.create_connection('clicksend_sms', 'A ClickSend two', '{"username":"a-two","api_key":"a-two-key"}'));
select public.grant_agent_permission(tests.world('a_agent')::uuid, (tests.recall('cs2') ->> 'id')::uuid, '{sms}');
select tests.remember('tools2', public.get_agent_tools(tests.world('a_agent')::uuid));
select results_eq($$ select t ->> 'name' from jsonb_array_elements(tests.recall('tools2')) t order by 1 $$,
    $$ values ('clicksend_get_balance'), ('email_send'), ('message_status'), ('sms_send') $$,
    'with two ClickSend grants the agent still sees one tool per capability: sends by channel, the balance tool once');
select is((select jsonb_agg(a ->> 'connection_id' order by a ->> 'connection_id') from jsonb_array_elements(tests.recall('tools2')) t,
                  jsonb_array_elements(t #> '{limits,accounts}') a where t ->> 'name' = 'sms_send'),
          (select jsonb_agg(c order by c) from unnest(array[tests.world('a_clicksend'), tests.recall('cs2') ->> 'id']) c),
    'sms_send lists both accounts in its limits ...');
select ok((select t ->> 'description' from jsonb_array_elements(tests.recall('tools2')) t where t ->> 'name' = 'sms_send')
          like '%Accounts (pass account to choose one): A ClickSend%= ' || tests.world('a_clicksend') || '%',
    '... and in its description, with their ids for the account argument');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') -> 'error',
    jsonb_build_object('code', 'invalid_request', 'message', '2 ClickSend SMS/MMS connections are available; name one with connection_id',
                       'details', jsonb_build_object('reason', 'ambiguous_connection')),
    'an agent with two ClickSend grants must say which account: invalid_request');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_connection_id => (tests.recall('cs2') ->> 'id')::uuid, p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') #>> '{credentials,api_key}',
    'a-two-key', 'p_connection_id picks the second account (and its credentials)');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_connection_ref => upper(left(tests.world('a_clicksend'), 8)), p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') ->> 'connection_id',
    tests.world('a_clicksend'), 'p_connection_ref (the tool-name suffix, any case) picks the first account');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_connection_ref => left(tests.world('b_clicksend'), 8), p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') #>> '{error,details,reason}',
    'no_grant', 'a reference to B''s account resolves to nothing');
select is(private.begin_tool_call('sms_send', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_connection_id => (a ->> 'connection_id')::uuid, p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') ->> 'connection_id',
    a ->> 'connection_id', 'sms_send with account ' || (a ->> 'connection_name') || ' sends on that account')
from jsonb_array_elements(tests.recall('tools2')) t, jsonb_array_elements(t #> '{limits,accounts}') a where t ->> 'name' = 'sms_send';
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user') #>> '{error,details,reason}',
    'ambiguous_connection', 'A acting directly with two ClickSend accounts must also name one');

-- Revoking one of the two grants: get_agent_tools drops the suffix, so the unsuffixed name must work.
select tests.authenticate_as('user_a');
select public.revoke_agent_permission(id) from public.agent_permissions
where agent_id = tests.world('a_agent')::uuid and connection_id = (tests.recall('cs2') ->> 'id')::uuid;
select results_eq($$ select t ->> 'name' from jsonb_array_elements(public.get_agent_tools(tests.world('a_agent')::uuid)) t order by 1 $$,
    $$ values ('clicksend_get_balance'), ('email_send'), ('message_status'), ('sms_send') $$,
    'after revoking one ClickSend grant the same tools are listed (now with one account each)');
select tests.authenticate_as_service_role();
-- Fails today: begin_tool_call counts the revoked grant as a candidate and answers ambiguous_connection.
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') ->> 'connection_id',
    tests.world('a_clicksend'), 'the unsuffixed clicksend_send_sms the agent was just shown resolves to its one live grant');

-- ---- get_agent_tools lists live grants only ------------------------------------------------------------
select tests.authenticate_as('user_a');
select tests.remember(name, public.create_agent(name))
from unnest(array['t_live', 't_revoked', 't_expired', 't_future', 't_disabled', 't_conn_off', 't_conn_gone', 't_balance']) name;
select tests.remember('c_off', public.create_connection('clicksend_sms', 'A off', '{"username":"u","api_key":"k"}'));
select tests.remember('c_gone', public.create_connection('clicksend_sms', 'A gone', '{"username":"u","api_key":"k"}'));
select public.grant_agent_permission((tests.recall(a) ->> 'id')::uuid,
                                     case when c is null then tests.world('a_clicksend')::uuid else (tests.recall(c) ->> 'id')::uuid end,
                                     '{sms,balance}', p_expires_at => case when a = 't_future' then now() + interval '2 days' end)
from (values ('t_live', null), ('t_revoked', null), ('t_expired', null), ('t_future', null), ('t_disabled', null),
             ('t_conn_off', 'c_off'), ('t_conn_gone', 'c_gone')) v (a, c);
select public.grant_agent_permission((tests.recall('t_balance') ->> 'id')::uuid, tests.world('a_clicksend')::uuid, '{balance}');
select public.revoke_agent_permission(id) from public.agent_permissions where agent_id = (tests.recall('t_revoked') ->> 'id')::uuid;
select public.update_agent_permission(id, '{"expires_at": "2001-01-01T00:00:00Z"}') from public.agent_permissions
where agent_id = (tests.recall('t_expired') ->> 'id')::uuid;
update public.agents set is_active = false where id = (tests.recall('t_disabled') ->> 'id')::uuid;
select public.update_connection((tests.recall('c_off') ->> 'id')::uuid, '{"status": "disabled"}');
select public.delete_connection((tests.recall('c_gone') ->> 'id')::uuid);

select is(jsonb_array_length(public.get_agent_tools((tests.recall(a) ->> 'id')::uuid)), n, a || ': ' || why)
from (values ('t_live', 3, 'a live sms+balance grant lists sms_send, get_balance and message_status'),
             ('t_future', 3, 'a grant expiring later is still listed'),
             ('t_revoked', 0, 'a revoked grant lists nothing'),
             ('t_expired', 0, 'an expired grant lists nothing'),
             ('t_disabled', 0, 'a disabled agent has no tools'),
             ('t_conn_off', 0, 'a grant on a disabled connection lists nothing'),
             ('t_conn_gone', 0, 'a grant on a deleted connection lists nothing')) v (a, n, why);
select results_eq(format($q$ select t ->> 'name' from jsonb_array_elements(public.get_agent_tools(%L)) t $q$, tests.recall('t_balance') ->> 'id'),
    $$ values ('clicksend_get_balance'), ('message_status') $$, 'a balance-only grant lists the balance tool (and message_status)');
select ok(public.get_agent_tools((tests.recall('t_future') ->> 'id')::uuid) #>> '{0,description}' like '%Access expires%',
    'the description tells the model when access expires');
select ok(public.get_agent_tools((tests.recall('t_live') ->> 'id')::uuid) #>> '{0,description}' like '%Max 10 recipients per message.%100 of 100 messages left today%',
    'the send tool''s description states its limits');

-- ---- Formats ------------------------------------------------------------------------------------------
select tests.remember('raw', public.get_agent_tools((tests.recall('t_live') ->> 'id')::uuid));
select tests.remember('openai', public.get_agent_tools((tests.recall('t_live') ->> 'id')::uuid, 'openai'));
select tests.remember('anthropic', public.get_agent_tools((tests.recall('t_live') ->> 'id')::uuid, 'anthropic'));
select tests.remember('mcp', public.get_agent_tools((tests.recall('t_live') ->> 'id')::uuid, 'mcp'));

select is(jsonb_array_length(tests.recall(f)), 3, f || ': one entry per tool') from unnest(array['openai', 'anthropic', 'mcp']) f;
select results_eq(format($q$ select t ->> 'name' from jsonb_array_elements(tests.recall(%L)) t order by 1 $q$, f),
                  $$ select t ->> 'name' from jsonb_array_elements(tests.recall('raw')) t order by 1 $$,
                  f || ': same tool names as raw')
from unnest(array['anthropic', 'mcp']) f;
select ok(bool_and(array(select jsonb_object_keys(t) order by 1) = '{function,type}' and t ->> 'type' = 'function'
                   and array(select jsonb_object_keys(t -> 'function') order by 1) = '{description,name,parameters,strict}'
                   and (t #>> '{function,strict}')::boolean
                   and t #>> '{function,parameters,type}' = 'object'
                   and t #> '{function,parameters,additionalProperties}' = 'false'
                   and (select coalesce(array_agg(k order by k), '{}') from jsonb_object_keys(t #> '{function,parameters,properties}') k)
                       = (select coalesce(array_agg(k order by k), '{}') from jsonb_array_elements_text(t #> '{function,parameters,required}') k)
                   and t #>> '{function,name}' ~ '^[a-zA-Z0-9_-]{1,64}$'),
          'openai: {type:"function", function:{name, description, parameters, strict:true}}, strict-mode parameters')
from jsonb_array_elements(tests.recall('openai')) t;
select results_eq($$ select t #>> '{function,name}' from jsonb_array_elements(tests.recall('openai')) t order by 1 $$,
                  $$ select t ->> 'name' from jsonb_array_elements(tests.recall('raw')) t order by 1 $$,
                  'openai: same tool names as raw');
select ok(bool_and(array(select jsonb_object_keys(t) order by 1) = '{description,input_schema,name}'
                   and t #>> '{input_schema,type}' = 'object'),
          'anthropic: {name, description, input_schema:{type:"object",…}}')
from jsonb_array_elements(tests.recall('anthropic')) t;
select ok(bool_and(array(select jsonb_object_keys(t) order by 1) = '{annotations,description,inputSchema,name,outputSchema,title}'
                   and t #>> '{inputSchema,type}' = 'object' and t #>> '{outputSchema,type}' = 'object'
                   and jsonb_typeof(t #> '{annotations,readOnlyHint}') = 'boolean'
                   and jsonb_typeof(t #> '{annotations,destructiveHint}') = 'boolean'),
          'mcp: {name, title, description, inputSchema, outputSchema, annotations:{readOnlyHint, destructiveHint, …}}')
from jsonb_array_elements(tests.recall('mcp')) t;
select results_eq($$ select t ->> 'name', (t #>> '{annotations,readOnlyHint}')::boolean from jsonb_array_elements(tests.recall('mcp')) t order by 1 $$,
    $$ values ('clicksend_get_balance', true), ('message_status', true), ('sms_send', false) $$,
    'mcp: the balance tool is read-only, the send tool is not');
select throws_ok(format('select public.get_agent_tools(%L, %L)', tests.recall('t_live') ->> 'id', 'langchain'),
    '22023', null, 'an unknown format is refused (22023)');

-- ---- Mail: the workspace's default mail connection ------------------------------------------------------
select tests.authenticate_as('user_a');
select tests.remember('smtp2', public.create_connection('smtp', 'A SMTP two', '{"username":"a2","password":"a-two-password"}',
    '{"host": "smtp.example.test", "port": 465, "security": "tls", "from_email": "a2@example.test"}'));
select is(tests.recall('smtp2') -> 'is_default_mail', 'false'::jsonb, 'a second SMTP connection does not take over as the default mail connection');
select public.grant_agent_permission(tests.world('a_agent')::uuid, (tests.recall('smtp2') ->> 'id')::uuid, '{email}');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_recipients => '{x@example.test}', p_auth_mode => 'user_agent') ->> 'connection_id', tests.world('a_smtp'),
    'an agent with grants on two SMTP connections that names none sends through the workspace''s default mail connection');
select tests.authenticate_as('user_a');
select public.set_default_mail_connection((tests.recall('smtp2') ->> 'id')::uuid);
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_recipients => '{x@example.test}', p_auth_mode => 'user_agent') #>> '{credentials,password}', 'a-two-password',
    '... and after set_default_mail_connection, through the new default');
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
    p_connection_id => tests.world('a_smtp')::uuid, p_recipients => '{x@example.test}', p_auth_mode => 'user_agent') ->> 'connection_id',
    tests.world('a_smtp'), 'a call that names a connection still gets that one');

-- Acting directly, A has a default SMTP connection in two workspaces: neither is "the" default.
select tests.authenticate_as('user_a');
select tests.remember('team2', public.create_workspace('A second team'));
select tests.remember('team2_smtp', public.create_connection('smtp', 'A second team SMTP', '{"username":"t2","password":"t2-password"}',
    '{"host": "smtp.example.test", "port": 465, "security": "tls", "from_email": "t2@example.test"}',
    p_workspace_id => (tests.recall('team2') ->> 'id')::uuid));
select tests.reset_authentication();
/** begin_tool_call's answer, or the error it raised as {error:{code: sqlstate, message}} (an error here is a 500). */
create function pg_temp.answer(p_sql text) returns jsonb
language plpgsql
as $$
declare
    v_result jsonb;
begin
    execute p_sql into v_result;
    return v_result;
exception when others then
    return jsonb_build_object('error', jsonb_build_object('code', sqlstate, 'message', sqlerrm));
end
$$;
grant execute on function pg_temp.answer(text) to service_role;
select tests.authenticate_as_service_role();
-- Fails today: resolve_right picks "the" default among the live rights with a scalar subquery,
-- which raises 21000 (more than one row) when each workspace has its default.
select is((select jsonb_build_object('code', r #> '{error,code}', 'reason', r #> '{error,details,reason}')
           from pg_temp.answer(format('select private.begin_tool_call(%L, p_user_id => %L, p_recipients => %L, p_auth_mode => %L)',
                                      'smtp_send_email', tests.world('a_uid'), '{x@example.test}', 'user')) r),
    '{"code": "invalid_request", "reason": "ambiguous_connection"}'::jsonb,
    'A acting directly with a default SMTP connection in each of two workspaces must name one (invalid_request, not an error)');
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid,
    p_connection_id => (tests.recall('team2_smtp') ->> 'id')::uuid, p_recipients => '{x@example.test}', p_auth_mode => 'user') ->> 'workspace_id',
    tests.recall('team2') ->> 'id', '... and naming one uses it, in its workspace');

select * from finish();
rollback;
