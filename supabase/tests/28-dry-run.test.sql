/**
 * Dry runs (private.dry_run_tool_call): the verdict a real call would get, with none of
 * its effects — no operation row (allowed or denied), no reservation on any counter, no
 * key use recorded — and the quota that would be left. Never credentials. Service only.
 */
begin;
set local search_path = extensions, public;
select plan(17);

select from tests.seed_team();

/** A dry run of an SMS by team_sender's agent (the fixture's grant: 3 a day, 10 a month, 10 per message; the member: 5 a day, 20 a month). */
create function tests.m28_dry(p_recipients text[] default '{+61499000001}', p_sender text default null,
                              p_capability text default 'clicksend_send_sms', p_key text default null) returns jsonb
language sql
as $$
    select private.dry_run_tool_call(p_capability, p_user_id => tests.world('t_sender')::uuid,
        p_agent_id => tests.world('t_agent')::uuid, p_recipients => p_recipients, p_auth_mode => 'user_agent',
        p_sender => p_sender, p_idempotency_key => p_key, p_request_hash => case when p_key is not null then 'h' end)
$$;
/** Rows a dry run must not leave: operations, counters' total, and the agent keys' last use. */
create function tests.m28_state() returns jsonb
language sql stable
as $$
    select jsonb_build_object(
        'operations', (select count(*) from public.operations),
        'used', (select coalesce(sum(used), 0) from public.usage_counters),
        'last_used', (select jsonb_agg(last_used_at order by id) from public.agent_keys))
$$;
grant execute on function tests.m28_dry(text[], text, text, text), tests.m28_state() to service_role;

select tests.authenticate_as_service_role();
select tests.remember('m28_before', tests.m28_state());

select is(tests.m28_dry() - 'connection_id',
    jsonb_build_object('dry_run', true, 'allowed', true, 'provider', 'clicksend_sms', 'sender', '+61400000100',
                       'remaining_today', 2, 'remaining_this_month', 9),
    'an allowed SMS: the account, the number it would go out from, and what would be left on the tighter limits (3/day − 1; 10/month − 1)');
select is(tests.m28_dry() ->> 'connection_id', tests.world('t_clicksend'), '... on Acme ClickSend');
select ok(not (tests.m28_dry() ?| array['credentials', 'config', 'operation_id']), 'a dry run never returns credentials, config or an operation');
select is(tests.m28_dry('{+61499000001,+61499000002}') ->> 'remaining_today', '1', 'two recipients would leave 1');
select is(tests.m28_state(), tests.recall('m28_before'), 'allowed dry runs left no operation, no reservation, no key use');

-- Refusals: the same error a real call gets, without its denied row.
select is(tests.m28_dry(array(select '+614990001' || lpad(i::text, 2, '0') from generate_series(1, 11) i)) #>> '{error,details,reason}',
    'recipient_limit', 'more recipients than the grant allows per message (10): refused, reason recipient_limit');
select is(tests.m28_dry(p_sender => '+61400000300') -> 'error',
    jsonb_build_object('code', 'permission_denied', 'message', '+61400000300 is not a number this agent may send from',
                       'details', jsonb_build_object('reason', 'sender_not_allowed', 'from', '+61400000300')),
    'a number that is not the member''s: the real refusal, without an operation id');
select is(tests.m28_dry(p_capability => 'clicksend_send_mms') #>> '{error,details,reason}', 'scope',
    'a tool whose scope the agent lacks: reason scope');
select is(tests.m28_dry(p_capability => 'no_such_tool') #>> '{error,code}', 'not_found', 'an unknown tool: not_found');
select is(tests.m28_state(), tests.recall('m28_before'), 'refused dry runs recorded no denied operations');

-- Quota: a dry run at the limit says so, and never takes it.
select from private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_sender')::uuid, p_agent_id => tests.world('t_agent')::uuid,
    p_recipients => '{+61499000001,+61499000002,+61499000003}', p_auth_mode => 'user_agent');
select tests.remember('m28_full', tests.m28_state());
select is(tests.m28_dry() #>> '{error,code}', 'quota_exceeded', 'with 3 of 3 used today, a dry run is refused: quota_exceeded');
select is(tests.m28_dry() #>> '{error,details,limit}', 'agent_daily', '... naming the limit');
select is(tests.m28_state(), tests.recall('m28_full'), '... and changes nothing');

-- Idempotency keys: a used key would replay; a dry run does not claim a key.
select is(tests.m28_dry(p_key => 'k-28') #>> '{error,code}', 'quota_exceeded', 'a new key does not change the verdict');
select is((select count(*)::int from public.operations where idempotency_key = 'k-28'), 0, 'and is not taken by the dry run');

-- Who may call it.
select tests.authenticate_as('team_sender');
select throws_ok('select tests.m28_dry()', '42501', null, 'a signed-in user cannot call it (only the functions, as the service)');
select tests.clear_authentication();
select throws_ok('select tests.m28_dry()', '42501', null, 'nor anon');

select * from finish();
rollback;
