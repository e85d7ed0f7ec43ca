/**
 * message_status (private.agent_message_status): an agent reads what became of its own
 * sends — outcome, delivery reports, replies — and never another agent's, named or not.
 * Refused callers get the refusal; it is for agents only; service only.
 */
begin;
set local search_path = extensions, public;
select plan(11);

select from tests.seed_team();

/** The status as team_sender's agent sees it, by its key. */
create function tests.m29_status(p_ids uuid[] default null, p_limit integer default 20) returns jsonb
language sql
as $$ select private.agent_message_status(p_agent_key_hash => encode(extensions.digest(tests.world('t_key'), 'sha256'), 'hex'),
                                          p_operation_ids => p_ids, p_limit => p_limit) $$;
grant execute on function tests.m29_status(uuid[], integer) to service_role;

select tests.authenticate_as_service_role();
-- team_sender's agent sends twice; the second is delivered and answered.
select tests.remember('m29_a', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_sender')::uuid,
    p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61499000001}', p_auth_mode => 'user_agent') -> 'operation_id');
select private.finish_tool_call((tests.recall('m29_a') #>> '{}')::uuid, 'succeeded', 1, '{MSG-29A}');
-- (One test transaction stamps every row alike: the first send is made a minute older.)
update public.operations set created_at = created_at - interval '1 minute' where id = (tests.recall('m29_a') #>> '{}')::uuid;
select tests.remember('m29_b', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_sender')::uuid,
    p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61499000002}', p_auth_mode => 'user_agent') -> 'operation_id');
select private.finish_tool_call((tests.recall('m29_b') #>> '{}')::uuid, 'succeeded', 1, '{MSG-29B}');
select private.record_message_events(tests.world('t_webhook_token'), 'clicksend_sms', '[
    {"provider_event_id": "r29", "event_type": "delivery_receipt", "status": "201", "delivery_status": "delivered",
     "provider_message_id": "MSG-29B", "recipient": "+61499000002", "occurred_at": "2026-11-28T10:00:00Z", "payload": {}},
    {"provider_event_id": "i29", "event_type": "inbound_message", "status": "received", "channel": "sms",
     "provider_message_id": "IN-29", "original_message_id": "MSG-29B", "recipient": "+61499000002",
     "occurred_at": "2026-11-28T10:05:00Z", "payload": {"body": "See you then"}}]');
-- team_admin's own agent sends too: never team_sender's agent's to see.
select tests.authenticate_as('team_admin');
select tests.remember('m29_admin_agent', public.create_agent('admin agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select public.grant_agent_permission((tests.recall('m29_admin_agent') #>> '{}')::uuid, tests.world('t_clicksend')::uuid, '{sms}');
select tests.authenticate_as_service_role();
select tests.remember('m29_other', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.get_supabase_uid('team_admin'),
    p_agent_id => (tests.recall('m29_admin_agent') #>> '{}')::uuid, p_recipients => '{+61499000003}', p_auth_mode => 'user_agent') -> 'operation_id');

select is(jsonb_path_query_array(tests.m29_status(), '$.operations[*].operation_id'),
    jsonb_build_array(tests.recall('m29_b'), tests.recall('m29_a')), 'the agent sees its own sends, newest first, and no one else''s');
select is(tests.m29_status() #> '{operations,0,events}', '[
    {"type": "delivery", "delivery_status": "delivered", "provider_status": "201", "channel": "sms", "recipient": "+61499000002",
     "provider_message_id": "MSG-29B", "occurred_at": "2026-11-28T10:00:00+00:00"},
    {"type": "reply", "provider_status": "received", "channel": "sms", "recipient": "+61499000002",
     "provider_message_id": "IN-29", "body": "See you then", "occurred_at": "2026-11-28T10:05:00+00:00"}]'::jsonb,
    'with its delivery report and the reply to it, in order');
select is(tests.m29_status() #>> '{operations,0,status}', 'succeeded', '... and its outcome');
select is(jsonb_array_length(tests.m29_status(p_limit => 1) -> 'operations'), 1, 'limit narrows to the newest');
select is(jsonb_path_query_array(tests.m29_status(array[(tests.recall('m29_a') #>> '{}')::uuid]), '$.operations[*].operation_id'),
    jsonb_build_array(tests.recall('m29_a')), 'operation_ids names its own sends');
select is(tests.m29_status(array[(tests.recall('m29_other') #>> '{}')::uuid]) -> 'operations', '[]'::jsonb,
    'another agent''s send, named by its id, is never shown');

update public.agent_keys set revoked_at = now() where agent_id = tests.world('t_agent')::uuid;
select is(tests.m29_status() #>> '{error,code}', 'unauthorized', 'a revoked key is refused');
select is(private.agent_message_status(p_user_id => tests.world('t_sender')::uuid) #>> '{error,code}', 'invalid_request',
    'a member without an agent is told it is for agents');
select is(jsonb_path_query_array(private.agent_message_status(p_user_id => tests.get_supabase_uid('team_admin'),
        p_agent_id => (tests.recall('m29_admin_agent') #>> '{}')::uuid), '$.operations[*].operation_id'),
    jsonb_build_array(tests.recall('m29_other')), 'the admin''s agent sees only its own');

select tests.authenticate_as('team_sender');
select throws_ok('select tests.m29_status()', '42501', null, 'a signed-in user cannot call it directly');
select tests.clear_authentication();
select throws_ok('select tests.m29_status()', '42501', null, 'nor anon');

select * from finish();
rollback;
