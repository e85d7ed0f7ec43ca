/**
 * Send limits in a team: every send counts on up to four counters, reserved together at
 * begin (private.reserve_quota) and settled at finish:
 *   agent_daily / agent_monthly     the agent grant's limits (per grant)
 *   member_daily / member_monthly   the member permission's limits, shared by the
 *                                   member's own sends and all their agents
 * Exactly at a limit is allowed, one more is refused with details.limit naming the limit
 * that refused (the tighter one wins); a refused call leaves all four counters as they
 * were; finish gives back what was not sent on all four; 'unknown' keeps the
 * reservation; owners and admins have no member counters.
 *
 * team_sender holds 5/day, 20/month; their agent A (t_agent) 3/day, 10/month; agent B
 * (created here) 5/day, 20/month. Counters are shown as {grant day, grant month, member
 * day, member month}. A new UTC day is simulated by moving the day counters to yesterday.
 */
begin;
set local search_path = extensions, public;
select plan(45);

select from tests.seed_team();

select tests.authenticate_as('team_sender');
select tests.remember('agent_b', public.create_agent('Agent B', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('grant_b', public.grant_agent_permission(tests.world('agent_b')::uuid, tests.world('t_clicksend')::uuid, '{sms}',
    p_daily_send_limit => 5, p_monthly_send_limit => 20) -> 'id');
select tests.reset_authentication();

/** A send of p_n distinct recipients as p_user, by p_agent (null: the member directly). */
create function tests.m21_send(p_agent uuid, p_n integer, p_user uuid default null) returns jsonb
language sql
as $$
    select private.begin_tool_call('clicksend_send_sms', p_user_id => coalesce(p_user, tests.world('t_sender')::uuid),
        p_agent_id => p_agent,
        p_recipients => array(select '+61410' || lpad(i::text, 6, '0') from generate_series(1, p_n) i),
        p_auth_mode => case when p_agent is null then 'user' else 'user_agent' end)
$$;

/** {grant day, grant month, member day, member month} of a grant and team_sender's member permission (0 for no row). */
create function tests.m21_counters(p_grant uuid) returns integer[]
language sql
security definer
set search_path = ''
as $$
    select array[tests.counter_used(p_grant, 'day', (now() at time zone 'utc')::date),
                 tests.counter_used(p_grant, 'month', date_trunc('month', (now() at time zone 'utc')::date)::date),
                 tests.counter_used(tests.world('t_sender_permission')::uuid, 'day', (now() at time zone 'utc')::date),
                 tests.counter_used(tests.world('t_sender_permission')::uuid, 'month', date_trunc('month', (now() at time zone 'utc')::date)::date)]
$$;

/** A new UTC day: today's day counters become yesterday's, older ones go (month counters carry on). */
create function tests.m21_new_day() returns void
language sql
as $$
    delete from public.usage_counters where period = 'day' and period_start < (now() at time zone 'utc')::date;
    update public.usage_counters set period_start = period_start - 1 where period = 'day';
$$;

/** Sets one month counter of the current month (the owner role only). */
create function tests.m21_set_month(p_subject uuid, p_used integer) returns void
language sql
as $$ update public.usage_counters set used = p_used
      where subject_id = p_subject and period = 'month' and period_start = date_trunc('month', (now() at time zone 'utc')::date)::date $$;

grant execute on function tests.m21_send(uuid, integer, uuid), tests.m21_counters(uuid) to service_role;

-- ---- Agent daily, exactly at the boundary --------------------------------------------------------
select tests.authenticate_as_service_role();
select tests.remember('a3', tests.m21_send(tests.world('t_agent')::uuid, 3));
select is(tests.recall('a3') -> 'ok', 'true'::jsonb, 'agent A (3/day): a send to 3 recipients, exactly its daily limit, is allowed');
select is(tests.m21_counters(tests.world('t_grant')::uuid), '{3,3,3,3}'::integer[], '... and counts 3 on all four counters');
select tests.remember('a1', tests.m21_send(tests.world('t_agent')::uuid, 1));
select is(tests.recall('a1') #>> '{error,code}', 'quota_exceeded', 'agent A: one more recipient is refused (quota_exceeded)');
select is((tests.recall('a1') #> '{error,details}') - 'resets_at',
    '{"limit": "agent_daily", "limit_value": 3, "used": 3, "requested": 1, "daily_send_limit": 3, "used_today": 3}'::jsonb,
    '... naming agent_daily, its value, the use and the request');
select is((tests.recall('a1') #>> '{error,details,resets_at}')::timestamptz, ((now() at time zone 'utc')::date + 1)::timestamp at time zone 'utc',
    '... resetting at the next UTC midnight');
select is(tests.m21_counters(tests.world('t_grant')::uuid), '{3,3,3,3}'::integer[], '... and the refused call reserved nothing on any counter');

-- ---- Member daily: the tighter limit wins, shared by every agent and the member ----------------------
select tests.remember('b2', tests.m21_send(tests.world('agent_b')::uuid, 2));
select is(tests.recall('b2') -> 'ok', 'true'::jsonb, 'agent B (5/day): 2 more recipients bring the member to exactly their 5/day: allowed');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{2,2,5,5}'::integer[], '... counted on B''s counters and the member''s (shared with A''s 3)');
select tests.remember('b1', tests.m21_send(tests.world('agent_b')::uuid, 1));
select is(tests.recall('b1') #>> '{error,details,limit}', 'member_daily',
    'agent B, 2 of its own 5 used, is refused one more: the member''s daily limit (tighter) wins');
select is(tests.recall('b1') #> '{error,details,limit_value}', '5'::jsonb, '... with the member''s limit value 5');
select matches(tests.recall('b1') #>> '{error,message}', 'member''s daily', '... and a message that names the member''s daily limit');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{2,2,5,5}'::integer[], '... reserving nothing (B''s counters and the member''s unchanged)');
select is(tests.m21_send(null, 1) #>> '{error,details,limit}', 'member_daily',
    'team_sender sending directly (no agent) is refused too: their agents used their day');

-- ---- Agent monthly, exactly at the boundary ----------------------------------------------------------
select tests.reset_authentication();
select tests.m21_new_day();
select tests.m21_set_month(tests.world('t_grant')::uuid, 8);
select tests.authenticate_as_service_role();
select is(tests.m21_counters(tests.world('t_grant')::uuid), '{0,8,0,5}'::integer[], 'a new day: agent A has 8 of its 10 this month, the member 5 of 20');
select is(tests.m21_send(tests.world('t_agent')::uuid, 2) -> 'ok', 'true'::jsonb, 'agent A: 2 recipients, exactly reaching its 10/month: allowed');
select tests.remember('am', tests.m21_send(tests.world('t_agent')::uuid, 1));
select is(tests.recall('am') #>> '{error,details,limit}', 'agent_monthly', 'agent A (2 of 3 today): one more is refused by agent_monthly');
select is((tests.recall('am') #>> '{error,details,resets_at}')::timestamptz,
    (date_trunc('month', (now() at time zone 'utc')::date) + interval '1 month')::timestamp at time zone 'utc', '... resetting on the 1st of next month (UTC)');
select is(tests.m21_counters(tests.world('t_grant')::uuid), '{2,10,2,7}'::integer[], '... and reserved nothing');

-- ---- Member monthly, and the atomic undo of the three counters already taken ----------------------------
select tests.reset_authentication();
select tests.m21_set_month(tests.world('t_sender_permission')::uuid, 18);
select tests.authenticate_as_service_role();
select is(tests.m21_send(tests.world('agent_b')::uuid, 2) -> 'ok', 'true'::jsonb, 'agent B: 2 recipients bring the member to exactly 20/month: allowed');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{2,4,4,20}'::integer[], '... on all four of B''s counters');
select tests.remember('mm', tests.m21_send(tests.world('agent_b')::uuid, 1));
select is(tests.recall('mm') #>> '{error,details,limit}', 'member_monthly',
    'agent B: one more is refused by member_monthly (the last of the four counters)');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{2,4,4,20}'::integer[],
    '... and the three counters taken before it (agent day, agent month, member day) were given back: all four unchanged');
select is(tests.m21_counters(tests.world('t_grant')::uuid), '{2,10,4,20}'::integer[], '... agent A''s counters untouched too');
select is(tests.m21_send(null, 1) #>> '{error,details,limit}', 'member_monthly', 'the member sending directly is refused by member_monthly');
select results_eq(format($$ select status::text, error_code, quota_reserved, idempotency_key::text from public.operations where id = %L $$, tests.recall('mm') ->> 'operation_id'),
    $$ values ('denied'::text, 'quota_exceeded'::text, 0, null::text) $$, 'the refused call is logged as denied, holding no quota');

-- ---- Finish gives back on all four counters; unknown keeps ---------------------------------------------
select tests.reset_authentication();
select tests.m21_new_day();
select tests.m21_set_month(tests.world('t_sender_permission')::uuid, 10);
select tests.authenticate_as_service_role();
select tests.remember('p3', tests.m21_send(tests.world('agent_b')::uuid, 3));
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{3,7,3,13}'::integer[], 'a new day: agent B sends to 3 → {3,7,3,13}');
select is(private.finish_tool_call((tests.recall('p3') ->> 'operation_id')::uuid, 'partial', 1, '{m21-1}') -> 'quota_used', '1'::jsonb,
    'finish: the provider accepted 1 of 3 → 1 used');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{1,5,1,11}'::integer[], '... and 2 go back to every counter (agent and member, day and month)');
select tests.remember('u2', tests.m21_send(tests.world('agent_b')::uuid, 2));
select is(private.finish_tool_call((tests.recall('u2') ->> 'operation_id')::uuid, 'unknown', 0) -> 'quota_used', '2'::jsonb,
    'finish unknown (it may have gone out) keeps both');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{3,7,3,13}'::integer[], '... on all four counters');
select tests.remember('f1', tests.m21_send(tests.world('agent_b')::uuid, 1));
select is(private.finish_tool_call((tests.recall('f1') ->> 'operation_id')::uuid, 'failed', 0) -> 'quota_used', '0'::jsonb, 'finish failed keeps nothing');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{3,7,3,13}'::integer[], '... giving its 1 back everywhere');
select is(private.finish_tool_call((tests.recall('p3') ->> 'operation_id')::uuid, 'failed', 0), '{"ok": false, "status": "partial"}'::jsonb,
    'a second finish of a settled call changes nothing ...');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{3,7,3,13}'::integer[], '... and gives nothing back twice');

-- ---- The member's own sends count on the member's counters only ------------------------------------------
select tests.remember('d1', tests.m21_send(null, 1));
select is(tests.recall('d1') -> 'ok', 'true'::jsonb, 'team_sender sends directly (no agent): allowed');
select is(tests.m21_counters(tests.world('grant_b')::uuid), '{3,7,4,14}'::integer[], '... counted on the member''s day and month, not on a grant''s');
select results_eq(format($$ select permission_id, member_permission_id, quota_reserved from public.operations where id = %L $$, tests.recall('d1') ->> 'operation_id'),
    format($$ values (null::uuid, %L::uuid, 1) $$, tests.world('t_sender_permission')), '... logged against the member permission, no grant');
select is(tests.m21_send(tests.world('agent_b')::uuid, 2) #>> '{error,details,limit}', 'member_daily',
    'so agent B (3 of 5 today) cannot send 2: the member''s own send used the shared day (4 of 5)');
select is(tests.m21_send(tests.world('agent_b')::uuid, 1) -> 'ok', 'true'::jsonb, '... but 1 is exactly what is left: allowed');

-- ---- Owners and admins have no member counters ----------------------------------------------------------
select tests.authenticate_as('team_owner');
select tests.remember('owner_agent', public.create_agent('Owner agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('owner_grant', public.grant_agent_permission(tests.world('owner_agent')::uuid, tests.world('t_clicksend')::uuid, '{sms}',
    p_daily_send_limit => 2) -> 'id');
select tests.authenticate_as_service_role();
select tests.remember('adm', tests.m21_send(null, 25, tests.world('t_admin')::uuid));
select is(tests.recall('adm') -> 'ok', 'true'::jsonb, 'team_admin sending directly to 25 recipients (no limit of theirs): allowed');
select is((tests.recall('adm') ->> 'member_permission_id'), null, '... on no member permission');
select is((select count(*)::int from public.usage_counters where user_id = tests.world('t_admin')::uuid), 0, '... and no counter at all');
select is(tests.m21_send(tests.world('owner_agent')::uuid, 2, tests.world('t_owner')::uuid) -> 'ok', 'true'::jsonb,
    'the owner''s agent (2/day) sends to 2: allowed');
select is((select array_agg(subject || ':' || period || ':' || used order by subject, period) from public.usage_counters where user_id = tests.world('t_owner')::uuid),
    '{grant:day:2,grant:month:2}'::text[], '... counted on its grant''s counters only: the owner has no member counters');
select is(tests.m21_send(tests.world('owner_agent')::uuid, 1, tests.world('t_owner')::uuid) #>> '{error,details,limit}', 'agent_daily',
    '... and a third recipient is refused by the grant''s own agent_daily');

select * from finish();
rollback;
