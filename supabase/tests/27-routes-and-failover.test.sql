/**
 * Routes and channel failover, from the attacker's and the fault's side:
 *   - set_route: owners and admins order a channel's accounts for the workspace or for one
 *     member; members and outsiders are refused; an account of another workspace, of a
 *     provider without the channel, a deleted one, duplicates, more than 10 and nulls are
 *     refused (22023); an empty list deletes; every change is audited; members read the
 *     workspace's route and their own, admins every route;
 *   - a channel send (sms_send) starts on the first usable account of the member's route,
 *     else the workspace's; accounts the agent holds no grant on, or whose member
 *     permission lacks can_send, are skipped; several accounts without a route, or none,
 *     are refused;
 *   - private.fail_over_tool_call (service_role only) records the failed attempt and moves
 *     the send and its reservation to the next account: quota counted once, never lost or
 *     doubled; accounts whose rules refuse the send are recorded as skipped (and leave no
 *     ledger row of their own); a disabled provider's accounts are never candidates; a
 *     send that named its account or its `from`, a provider tool's call and a finished
 *     call never move;
 *   - operation_attempts are read by whoever reads their operation.
 * Accounts (all in Acme): A = Acme ClickSend (the fixture's, with numbers), B = Acme Twilio
 * (no numbers), C = a second ClickSend (no numbers). team_sender's agent holds grants on A
 * (the fixture's t_grant: 3/day, 10/month), on B (5/day, 20/month) and, later, on C.
 */
begin;
set local search_path = extensions, public;
select plan(116);

select from tests.seed_team();

-- ---- Helpers (created before any role switch, granted to the roles that call them) ----------

/** A channel send (default sms_send) by team_sender's agent, as the functions begin one. */
create function tests.m27_begin(
    p_recipients text[] default '{+61499000001}', p_connection_id uuid default null, p_summary jsonb default '{}',
    p_sender text default null, p_capability text default 'sms_send'
) returns jsonb
language sql
as $$
    select private.begin_tool_call(p_capability, p_user_id => tests.world('t_sender')::uuid,
        p_agent_id => tests.world('t_agent')::uuid, p_connection_id => p_connection_id, p_recipients => p_recipients,
        p_request_summary => p_summary, p_auth_mode => 'user_agent', p_sender => p_sender)
$$;

/** Where a send would start: begins it and, when it began, finishes it as failed (nothing stays reserved). */
create function tests.m27_pick(p_connection_id uuid default null) returns jsonb
language plpgsql
as $$
declare
    v_begin jsonb := tests.m27_begin(p_connection_id => p_connection_id);
begin
    if (v_begin ->> 'ok')::boolean then
        perform private.finish_tool_call((v_begin ->> 'operation_id')::uuid, 'failed', 0);
    end if;
    return v_begin;
end
$$;

/** Today's and this month's messages used on each counter named (tests.world keys), in order. */
create function tests.m27_counters(p_keys text[]) returns integer[]
language sql stable
as $$
    select array_agg(tests.counter_used(tests.world(k)::uuid, p.period, p.start) order by k.n, p.n)
    from unnest(p_keys) with ordinality k (k, n)
    cross join (values (1, 'day', (now() at time zone 'utc')::date),
                       (2, 'month', date_trunc('month', now() at time zone 'utc')::date)) p (n, period, start)
$$;

/** A fail over with a provider's refusal. */
create function tests.m27_fail_over(p_operation jsonb, p_message text default 'The number is not a valid mobile number')
returns jsonb
language sql
as $$
    select private.fail_over_tool_call((p_operation ->> 'operation_id')::uuid, 'provider_error', p_message, 400, '21211', 42)
$$;

/** The attempts of an operation, as comparable rows. */
create function tests.m27_attempts(p_operation jsonb)
returns table (attempt integer, connection_id uuid, provider text, outcome text, error_code text, error_message text)
language sql stable
security definer
set search_path = ''
as $$
    select a.attempt, a.connection_id, a.provider, a.outcome, a.error_code, a.error_message
    from public.operation_attempts a where a.operation_id = (p_operation ->> 'operation_id')::uuid order by a.attempt
$$;

/** An operation's account and reservation. */
create function tests.m27_operation(p_operation jsonb)
returns table (status text, connection_id uuid, permission_id uuid, member_permission_id uuid, quota_reserved integer,
               quota_used integer)
language sql stable
security definer
set search_path = ''
as $$
    select o.status, o.connection_id, o.permission_id, o.member_permission_id, o.quota_reserved, o.quota_used
    from public.operations o where o.id = (p_operation ->> 'operation_id')::uuid
$$;
grant execute on function tests.m27_begin(text[], uuid, jsonb, text, text), tests.m27_pick(uuid), tests.m27_counters(text[]),
    tests.m27_fail_over(jsonb, text), tests.m27_attempts(jsonb), tests.m27_operation(jsonb) to authenticated, service_role;

-- ---- The accounts ---------------------------------------------------------------------------
select tests.authenticate_as('team_owner');
select tests.remember('m27_b', public.create_connection('twilio', 'Acme Twilio',
    '{"account_sid": "AC5f3a0c9e2b7d41e8a6c0f4b19d2e7a31", "auth_token": "x"}', '{}',
    p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('m27_c', public.create_connection('clicksend_sms', 'Acme ClickSend 2',
    '{"username": "acme-2", "api_key": "acme-clicksend-2-secret"}', '{}',
    p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.authenticate_as('team_admin');
select tests.remember('m27_perm_b', public.set_member_permission(tests.world('m27_b')::uuid, tests.world('t_sender')::uuid,
    p_can_view => true, p_can_send => true, p_scopes => array['sms'], p_daily_send_limit => 10, p_monthly_send_limit => 50) -> 'id');
select tests.remember('m27_perm_c', public.set_member_permission(tests.world('m27_c')::uuid, tests.world('t_sender')::uuid,
    p_can_view => true, p_can_send => true, p_scopes => array['sms']) -> 'id');
select tests.authenticate_as('team_sender');
select tests.remember('m27_grant_b', public.grant_agent_permission(tests.world('t_agent')::uuid, tests.world('m27_b')::uuid,
    array['sms'], p_daily_send_limit => 5, p_monthly_send_limit => 20) -> 'id');

-- =============================================================================================
-- Without a route
-- =============================================================================================
select tests.authenticate_as_service_role();
select tests.remember('m27_r', tests.m27_pick());
select is(jsonb_build_object('code', tests.recall('m27_r') #>> '{error,code}', 'reason', tests.recall('m27_r') #>> '{error,details,reason}'),
    '{"code": "invalid_request", "reason": "ambiguous_connection"}'::jsonb,
    'two usable SMS accounts and no route: begin refuses and asks for an account');
select is((select array_agg(x order by x) from jsonb_array_elements_text(tests.recall('m27_r') #> '{error,details,accounts}') x),
    (select array_agg(x order by x) from unnest(array[tests.world('t_clicksend'), tests.world('m27_b')]) x),
    '... naming the two accounts the agent may send on (not C, which it holds no grant on)');
select is((select jsonb_build_object('ok', r -> 'ok', 'connection_id', r -> 'connection_id', 'provider', r -> 'provider')
           from tests.m27_pick(tests.world('m27_b')::uuid) r),
    jsonb_build_object('ok', true, 'connection_id', tests.world('m27_b'), 'provider', 'twilio'),
    'naming an account (p_connection_id) sends on it');
select is((select jsonb_build_object('code', r #>> '{error,code}', 'reason', r #>> '{error,details,reason}')
           from tests.m27_pick(tests.world('m27_c')::uuid) r),
    '{"code": "permission_denied", "reason": "no_usable_account"}'::jsonb,
    'naming an account the agent holds no grant on is refused');
select is((select jsonb_build_object('code', r #>> '{error,code}', 'reason', r #>> '{error,details,reason}')
           from tests.m27_begin(p_capability => 'whatsapp_send') r),
    '{"code": "permission_denied", "reason": "no_usable_account"}'::jsonb,
    'a channel the agent may send on nowhere (whatsapp) is refused: no usable account');

-- =============================================================================================
-- set_route
-- =============================================================================================
select tests.authenticate_as('team_admin');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend'), tests.world('m27_b')]::uuid[]) - 'id',
    jsonb_build_object('workspace_id', tests.world('t_workspace'), 'channel', 'sms', 'user_id', null,
                       'connection_ids', jsonb_build_array(tests.world('t_clicksend'), tests.world('m27_b'))),
    'an admin sets the workspace''s SMS route: A, then B');
select tests.remember('m27_route', (select to_jsonb(id) from public.routes where workspace_id = tests.world('t_workspace')::uuid
                                                                               and channel = 'sms' and user_id is null));
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('m27_b')]::uuid[], tests.world('t_sender')::uuid) - 'id',
    jsonb_build_object('workspace_id', tests.world('t_workspace'), 'channel', 'sms', 'user_id', tests.world('t_sender'),
                       'connection_ids', jsonb_build_array(tests.world('m27_b'))),
    'an admin sets team_sender''s own SMS route: B only');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend')]::uuid[], tests.world('t_viewer')::uuid) ->> 'user_id',
    tests.world('t_viewer'), 'and team_viewer''s: A only');
select tests.reset_authentication();
select results_eq(
    format($$ select r.user_id, rc.position, rc.connection_id from public.routes r join public.route_connections rc on rc.route_id = r.id
              where r.workspace_id = %L order by r.user_id is not null, r.user_id = %L desc, rc.position $$,
           tests.world('t_workspace'), tests.world('t_sender')),
    format($$ values (null::uuid, 1, %L::uuid), (null, 2, %L), (%L, 1, %L), (%L, 1, %L) $$,
           tests.world('t_clicksend'), tests.world('m27_b'), tests.world('t_sender'), tests.world('m27_b'),
           tests.world('t_viewer'), tests.world('t_clicksend')),
    'the routes hold their accounts in order');

select tests.authenticate_as('team_sender');
select throws_ok(format('select public.set_route(%L, %L, %L)', tests.world('t_workspace'), 'sms', format('{%s}', tests.world('m27_c'))),
    '42501', null, 'a member (not an admin) cannot set the workspace''s route');
select throws_ok(format('select public.set_route(%L, %L, %L, %L)', tests.world('t_workspace'), 'sms', format('{%s}', tests.world('t_clicksend')),
                        tests.world('t_sender')),
    '42501', null, 'nor their own');
select throws_ok(format('select private.set_route(%L, %L, %L)', tests.world('t_workspace'), 'sms', '{}'),
    '42501', null, 'nor delete a route through the private body');
select tests.authenticate_as('other_admin');
select throws_ok(format('select public.set_route(%L, %L, %L)', tests.world('t_workspace'), 'sms', format('{%s}', tests.world('o_clicksend'))),
    'PT404', 'workspace not found', 'another workspace''s admin cannot set Acme''s route (not found)');
select throws_ok(format('select public.set_route(%L, %L, %L)', tests.world('o_workspace'), 'sms', format('{%s}', tests.world('t_clicksend'))),
    '22023', format('connection %s is not a sms account of this workspace', tests.world('t_clicksend')),
    'nor route its own workspace''s SMS through Acme''s account');
select tests.clear_authentication();
select throws_ok(format('select public.set_route(%L, %L, %L)', tests.world('t_workspace'), 'sms', '{}'),
    '42501', null, 'anon cannot call set_route');

select tests.authenticate_as('team_admin');
select tests.remember('m27_deleted', public.create_connection('clicksend_sms', 'Acme ClickSend (gone)',
    '{"username": "gone", "api_key": "gone-secret"}', '{}', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select from public.delete_connection(tests.world('m27_deleted')::uuid);
select is(tests.try_sql(format('select public.set_route(%L, %L, %L::uuid[], %L)', tests.world('t_workspace'), ch, ids, u)), expect, 'set_route refuses ' || what)
from (values
    ('an account of another workspace', 'sms', format('{%s,%s}', tests.world('t_clicksend'), tests.world('o_clicksend')), null,
        format('22023: connection %s is not a sms account of this workspace', tests.world('o_clicksend'))),
    ('an account whose provider lacks the channel (SMTP for SMS)', 'sms', format('{%s}', tests.world('t_smtp')), null,
        format('22023: connection %s is not a sms account of this workspace', tests.world('t_smtp'))),
    ('an account whose provider lacks the channel (ClickSend for WhatsApp)', 'whatsapp', format('{%s}', tests.world('t_clicksend')), null,
        format('22023: connection %s is not a whatsapp account of this workspace', tests.world('t_clicksend'))),
    ('a deleted account', 'sms', format('{%s,%s}', tests.world('t_clicksend'), tests.world('m27_deleted')), null,
        format('22023: connection %s is not a sms account of this workspace', tests.world('m27_deleted'))),
    ('an unknown account', 'sms', format('{%s}', '00000000-0000-4000-8000-000000000000'), null,
        '22023: connection 00000000-0000-4000-8000-000000000000 is not a sms account of this workspace'),
    ('the same account twice', 'sms', format('{%s,%s}', tests.world('t_clicksend'), tests.world('t_clicksend')), null,
        '22023: a route is 1 to 10 distinct accounts'),
    ('more than 10 accounts', 'sms', (select '{' || string_agg(gen_random_uuid()::text, ',') || '}' from generate_series(1, 11)), null,
        '22023: a route is 1 to 10 distinct accounts'),
    ('a null account', 'sms', format('{%s,NULL}', tests.world('t_clicksend')), null,
        '22023: a route is 1 to 10 distinct accounts'),
    ('a null channel', null, format('{%s}', tests.world('t_clicksend')), null,
        '22023: channel must be sms, mms, whatsapp or email'),
    ('an unknown channel', 'fax', format('{%s}', tests.world('t_clicksend')), null,
        '22023: channel must be sms, mms, whatsapp or email'),
    ('a member route for a removed member', 'sms', format('{%s}', tests.world('t_clicksend')), tests.world('t_removed'),
        '22023: a route can only be for a member of the workspace'),
    ('a member route for another workspace''s admin', 'sms', format('{%s}', tests.world('t_clicksend')), tests.world('o_admin'),
        '22023: a route can only be for a member of the workspace'),
    ('a member route for an invitee who has not joined', 'sms', format('{%s}', tests.world('t_clicksend')), tests.world('t_invitee'),
        '22023: a route can only be for a member of the workspace')
) as v (what, ch, ids, u, expect);
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend')]::uuid[]) -> 'connection_ids',
    jsonb_build_array(tests.world('t_clicksend')), 'one account is a route (the refusals above are not blanket) ...');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend'), tests.world('m27_b')]::uuid[]) ->> 'id',
    tests.world('m27_route'), '... and setting it again keeps the route''s id (one route per channel and member)');
select results_eq(format($$ select rc.connection_id from public.route_connections rc where rc.route_id = %L order by rc.position $$, tests.world('m27_route')),
    format($$ values (%L::uuid), (%L::uuid) $$, tests.world('t_clicksend'), tests.world('m27_b')),
    'after the refusals the workspace route is A, B');

select is(public.set_route(tests.world('t_workspace')::uuid, 'mms', array[tests.world('m27_c')]::uuid[]) ->> 'channel', 'mms',
    'an admin sets an MMS route ...');
select is(public.set_route(tests.world('t_workspace')::uuid, 'mms', '{}'), '{"deleted": true}'::jsonb, '... an empty list deletes it ...');
select is(public.set_route(tests.world('t_workspace')::uuid, 'mms', '{}'), '{"deleted": false}'::jsonb, '... and deleting it again deletes nothing');
select tests.reset_authentication();
select is((select count(*)::int from public.routes where channel = 'mms'), 0, 'no MMS route is left, and no connection of it');
select results_eq(
    format($$ select action, actor_user_id, details ->> 'channel', details ->> 'user_id', details -> 'connection_ids', target_id is not null
              from public.audit_events where workspace_id = %L and action like 'route.%%' order by id $$, tests.world('t_workspace')),
    format($$ values ('route.set'::text, %1$L::uuid, 'sms'::text, null::text, %3$L::jsonb, true),
                     ('route.set', %1$L, 'sms', %2$L, %4$L, true),
                     ('route.set', %1$L, 'sms', %5$L, %6$L, true),
                     ('route.set', %1$L, 'sms', null, %6$L, true),
                     ('route.set', %1$L, 'sms', null, %3$L, true),
                     ('route.set', %1$L, 'mms', null, %7$L, true),
                     ('route.deleted', %1$L, 'mms', null, null, true) $$,
           tests.world('t_admin'), tests.world('t_sender'),
           jsonb_build_array(tests.world('t_clicksend'), tests.world('m27_b')), jsonb_build_array(tests.world('m27_b')),
           tests.world('t_viewer'), jsonb_build_array(tests.world('t_clicksend')), jsonb_build_array(tests.world('m27_c'))),
    'every route change is audited (route.set with its accounts, route.deleted once), refusals never');

-- ---- Who reads routes ---------------------------------------------------------------------------
select tests.authenticate_as('team_sender');
select results_eq($$ select user_id from public.routes order by user_id nulls first $$,
    format($$ values (null::uuid), (%L::uuid) $$, tests.world('t_sender')),
    'a member reads the workspace''s route and their own, not team_viewer''s');
select results_eq($$ select connection_id, position from public.route_connections order by route_id = tests.world('m27_route')::uuid desc, position $$,
    format($$ values (%L::uuid, 1), (%L::uuid, 2), (%L::uuid, 1) $$, tests.world('t_clicksend'), tests.world('m27_b'), tests.world('m27_b')),
    '... and those routes'' accounts only');
select tests.authenticate_as('team_viewer');
select results_eq($$ select user_id from public.routes order by user_id nulls first $$,
    format($$ values (null::uuid), (%L::uuid) $$, tests.world('t_viewer')),
    'team_viewer reads the workspace''s route and their own, not team_sender''s');
select tests.authenticate_as('team_nobody');
select results_eq($$ select user_id, (select count(*)::int from public.route_connections) from public.routes $$,
    $$ values (null::uuid, 2) $$, 'a member without a route of their own reads only the workspace''s (and its 2 accounts)');
select tests.authenticate_as('team_admin');
select is((select count(*)::int from public.routes), 3, 'an admin reads every route of the workspace');
select is((select count(*)::int from public.route_connections), 4, '... and every route''s accounts');
select tests.authenticate_as('team_owner');
select is((select count(*)::int from public.routes), 3, 'so does the owner');
select tests.authenticate_as('team_removed');
select is((select count(*)::int from public.routes) + (select count(*)::int from public.route_connections), 0, 'a removed member reads none');
select tests.authenticate_as('other_admin');
select is((select count(*)::int from public.routes) + (select count(*)::int from public.route_connections), 0,
    'another workspace''s admin reads none');
select is_empty(format('select 1 from public.routes where id = %L', tests.world('m27_route')),
    '... not even by the route''s id');

-- =============================================================================================
-- Where a channel send starts
-- =============================================================================================
select tests.authenticate_as_service_role();
select is(tests.m27_pick() ->> 'connection_id', tests.world('m27_b'),
    'team_sender''s own route (B) overrides the workspace''s (A, B)');
select tests.authenticate_as('team_admin');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', '{}', tests.world('t_sender')::uuid), '{"deleted": true}'::jsonb,
    'the admin deletes team_sender''s route');
select tests.authenticate_as_service_role();
select is((select jsonb_build_object('ok', r -> 'ok', 'connection_id', r -> 'connection_id', 'provider', r -> 'provider',
                                     'permission_id', r -> 'permission_id', 'member_permission_id', r -> 'member_permission_id',
                                     'sender', r -> 'sender') from tests.m27_pick() r),
    jsonb_build_object('ok', true, 'connection_id', tests.world('t_clicksend'), 'provider', 'clicksend_sms',
                       'permission_id', tests.world('t_grant'), 'member_permission_id', tests.world('t_sender_permission'),
                       'sender', '+61400000100'),
    'with the workspace route (A, B) the send starts on A, with the agent''s grant, the member''s permission and number there');
select tests.reset_authentication();
select is(private.channel_candidates(
        row('sms_send', 'user_agent', tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, tests.world('t_workspace')::uuid,
            null, null, null, '{}', '{}', null, null, null)::private.call_context,
        (select c from public.integration_capabilities c where c.capability_key = 'sms_send'), null),
    array[tests.world('t_clicksend'), tests.world('m27_b')]::uuid[],
    'private.channel_candidates lists the route''s accounts in order');
select tests.authenticate_as_service_role();
select is(tests.m27_pick(tests.world('m27_b')::uuid) ->> 'connection_id', tests.world('m27_b'),
    'naming an account still sends on it, route or not');

select tests.authenticate_as('team_admin');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('m27_c'), tests.world('t_clicksend'), tests.world('m27_b')]::uuid[]) ->> 'id',
    tests.world('m27_route'), 'the admin puts C first: C, A, B');
select tests.authenticate_as_service_role();
select is(tests.m27_pick() ->> 'connection_id', tests.world('t_clicksend'), 'C, which the agent holds no grant on, is skipped: A');
select tests.authenticate_as('team_sender');
select tests.remember('m27_grant_c', public.grant_agent_permission(tests.world('t_agent')::uuid, tests.world('m27_c')::uuid, array['sms']) -> 'id');
select tests.authenticate_as_service_role();
select is(tests.m27_pick() ->> 'connection_id', tests.world('m27_c'), 'once granted C, the agent starts on C');
select tests.authenticate_as('team_admin');
select is(public.set_member_permission(tests.world('m27_c')::uuid, tests.world('t_sender')::uuid, p_can_view => true,
                                       p_can_send => false, p_scopes => array['sms']) -> 'can_send',
    'false'::jsonb, 'the admin takes can_send on C from team_sender');
select tests.authenticate_as_service_role();
select is(tests.m27_pick() ->> 'connection_id', tests.world('t_clicksend'),
    'C, where the agent''s member may not send, is skipped: A (the grant on C stays, unusable)');
select tests.authenticate_as('team_admin');
select is(public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('m27_c')]::uuid[], tests.world('t_sender')::uuid) -> 'connection_ids',
    jsonb_build_array(tests.world('m27_c')), 'the admin routes team_sender''s SMS to C alone');
select tests.authenticate_as_service_role();
select is((select jsonb_build_object('code', r #>> '{error,code}', 'reason', r #>> '{error,details,reason}', 'channel', r #>> '{error,details,channel}')
           from tests.m27_pick() r),
    '{"code": "permission_denied", "reason": "no_usable_account", "channel": "sms"}'::jsonb,
    'a route with no usable account refuses the send: no usable account (the workspace route is not a fallback)');
select tests.authenticate_as('team_admin');
select from public.set_route(tests.world('t_workspace')::uuid, 'sms', '{}', tests.world('t_sender')::uuid);
select from public.set_member_permission(tests.world('m27_c')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
                                    p_scopes => array['sms']);
select from public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend'), tests.world('m27_b')]::uuid[]);

-- =============================================================================================
-- Failover: the reservation moves with the send
-- =============================================================================================
-- Counters: [A grant day, month, A member day, month, B grant day, month, B member day, month]
select tests.authenticate_as_service_role();
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{0,0,0,0,0,0,0,0}',
    'before: nothing is reserved on A or B (every send above was finished as failed)');
select tests.remember('m27_op1', tests.m27_begin());
select is(tests.recall('m27_op1') ->> 'connection_id', tests.world('t_clicksend'), 'a send to one recipient begins on A');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{1,1,1,1,0,0,0,0}',
    'A''s grant and member counters hold its reservation');
select tests.remember('m27_fo1', tests.m27_fail_over(tests.recall('m27_op1')));
select is(tests.recall('m27_fo1'),
    jsonb_build_object('ok', true, 'operation_id', tests.recall('m27_op1') -> 'operation_id', 'attempt', 2,
                       'connection_id', tests.world('m27_b'), 'provider', 'twilio', 'sender', null,
                       'status_callback', (select 'twilio/webhooks/' || w.webhook_token || '/status' from public.connection_webhooks w
                                           where w.connection_id = tests.world('m27_b')::uuid),
                       'config', '{}'::jsonb,
                       'credentials', '{"account_sid": "AC5f3a0c9e2b7d41e8a6c0f4b19d2e7a31", "auth_token": "x"}'::jsonb),
    'A failed: fail over moves the send to B and answers with B''s credentials, config and status callback');
select results_eq($$ select * from tests.m27_operation(tests.recall('m27_op1')) $$,
    format($$ values ('pending'::text, %L::uuid, %L::uuid, %L::uuid, 1, 0) $$,
           tests.world('m27_b'), tests.world('m27_grant_b'), tests.world('m27_perm_b')),
    'the operation is on B, under the agent''s grant and the member''s permission there, still reserving 1');
select results_eq($$ select * from tests.m27_attempts(tests.recall('m27_op1')) $$,
    format($$ values (1, %L::uuid, 'clicksend_sms'::text, 'failed'::text, 'provider_error'::text,
                      'The number is not a valid mobile number'::text) $$, tests.world('t_clicksend')),
    'attempt 1 (A) is recorded as failed, with the provider''s error');
select results_eq(format($$ select workspace_id, provider_status, provider_code, duration_ms from public.operation_attempts
                            where operation_id = %L $$, tests.recall('m27_op1') ->> 'operation_id'),
    format($$ values (%L::uuid, 400, '21211'::text, 42) $$, tests.world('t_workspace')),
    '... in Acme, with the provider''s status, code and duration');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{0,0,0,0,1,1,1,1}',
    'A''s reservation is given back and B''s counters hold it: counted once');

select tests.remember('m27_fo2', tests.m27_fail_over(tests.recall('m27_op1'), 'Twilio refused it too'));
select is(tests.recall('m27_fo2'), '{"ok": false, "reason": "no_other_account", "attempts": 2}'::jsonb,
    'B failed too: no other account takes the send');
select results_eq($$ select * from tests.m27_operation(tests.recall('m27_op1')) $$,
    format($$ values ('pending'::text, %L::uuid, %L::uuid, %L::uuid, 0, 0) $$,
           tests.world('m27_b'), tests.world('m27_grant_b'), tests.world('m27_perm_b')),
    'the operation stays pending on B with nothing reserved');
select results_eq($$ select attempt, connection_id, provider, outcome, error_message from tests.m27_attempts(tests.recall('m27_op1')) $$,
    format($$ values (1, %L::uuid, 'clicksend_sms'::text, 'failed'::text, 'The number is not a valid mobile number'::text),
                     (2, %L::uuid, 'twilio', 'failed', 'Twilio refused it too') $$, tests.world('t_clicksend'), tests.world('m27_b')),
    'both attempts are recorded');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{0,0,0,0,0,0,0,0}',
    'every counter is back to where it started');
select is(private.finish_tool_call((tests.recall('m27_op1') ->> 'operation_id')::uuid, 'failed', 0, '{}', null, 'provider_error',
                                   'every account refused the message'),
    '{"ok": true, "status": "failed", "quota_used": 0}'::jsonb, 'finish records the failure');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{0,0,0,0,0,0,0,0}',
    '... and gives back nothing more: no counter goes below where it started');

select tests.remember('m27_op2', tests.m27_begin());
select is(tests.m27_fail_over(tests.recall('m27_op2')) ->> 'connection_id', tests.world('m27_b'), 'another send fails over from A to B ...');
select is(private.finish_tool_call((tests.recall('m27_op2') ->> 'operation_id')::uuid, 'succeeded', 1, '{SM-27-2}') ->> 'quota_used', '1',
    '... where the provider takes it');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b']), '{0,0,0,0,1,1,1,1}',
    'the message is counted once, on B, never also on A');

-- ---- Accounts whose rules refuse the send are skipped ----------------------------------------------
select tests.authenticate_as('team_sender');
select is(public.update_agent_permission(tests.world('m27_grant_b')::uuid, '{"daily_send_limit": 1}') -> 'daily_send_limit', '1'::jsonb,
    'team_sender lowers the agent''s daily limit on B to the 1 message it sent there today');
select tests.authenticate_as('team_admin');
select from public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend'), tests.world('m27_b'), tests.world('m27_c')]::uuid[]);
select tests.authenticate_as_service_role();
select tests.remember('m27_op3', tests.m27_begin());
select tests.remember('m27_fo3', tests.m27_fail_over(tests.recall('m27_op3')));
select is((select jsonb_build_object('ok', r -> 'ok', 'attempt', r -> 'attempt', 'connection_id', r -> 'connection_id',
                                     'credentials', r -> 'credentials') from tests.recall('m27_fo3') r),
    jsonb_build_object('ok', true, 'attempt', 3, 'connection_id', tests.world('m27_c'),
                       'credentials', '{"username": "acme-2", "api_key": "acme-clicksend-2-secret"}'::jsonb),
    'route A, B, C: A failed, B (daily limit reached) is passed over, the send moves to C');
select results_eq($$ select * from tests.m27_attempts(tests.recall('m27_op3')) $$,
    format($$ values (1, %L::uuid, 'clicksend_sms'::text, 'failed'::text, 'provider_error'::text, 'The number is not a valid mobile number'::text),
                     (2, %L::uuid, 'twilio', 'skipped', 'quota_exceeded', 'agent_daily limit reached on this account') $$,
           tests.world('t_clicksend'), tests.world('m27_b')),
    'B is recorded as skipped, with the limit that refused it');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b', 'm27_grant_c', 'm27_perm_c']),
    '{0,0,0,0,1,1,1,1,1,1,1,1}',
    'A gave its reservation back, B''s counters are untouched by the refused reservation, C holds it');
select results_eq($$ select connection_id, permission_id, member_permission_id, quota_reserved from tests.m27_operation(tests.recall('m27_op3')) $$,
    format($$ values (%L::uuid, %L::uuid, %L::uuid, 1) $$, tests.world('m27_c'), tests.world('m27_grant_c'), tests.world('m27_perm_c')),
    'the operation is on C, under the grant and member permission there');
select is(tests.m27_fail_over(tests.recall('m27_op3'), 'C refused it'), '{"ok": false, "reason": "no_other_account", "attempts": 3}'::jsonb,
    'when C fails too, no account is left (B is not tried twice)');
select from private.finish_tool_call((tests.recall('m27_op3') ->> 'operation_id')::uuid, 'failed', 0);
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b', 'm27_grant_c', 'm27_perm_c']),
    '{0,0,0,0,1,1,1,1,0,0,0,0}', 'after finish only B''s earlier message is counted');

select tests.authenticate_as('team_sender');
select from public.update_agent_permission(tests.world('m27_grant_b')::uuid, '{"daily_send_limit": 5, "blocked_recipients": ["+61488"]}');
select tests.authenticate_as_service_role();
select tests.remember('m27_op4', tests.m27_begin('{+61488000003}'));
select is(tests.m27_fail_over(tests.recall('m27_op4')) ->> 'connection_id', tests.world('m27_c'),
    'a recipient the agent may not reach on B: B is passed over, the send moves to C');
select results_eq($$ select attempt, connection_id, outcome, error_code, error_message from tests.m27_attempts(tests.recall('m27_op4')) $$,
    format($$ values (1, %L::uuid, 'failed'::text, 'provider_error'::text, 'The number is not a valid mobile number'::text),
                     (2, %L::uuid, 'skipped', 'permission_denied', 'recipient +61488000003 is not allowed for this agent') $$,
           tests.world('t_clicksend'), tests.world('m27_b')),
    'B is recorded as skipped, with the rule that refused it');
select is((select count(*)::int from public.operations where agent_id = tests.world('t_agent')::uuid
           and recipients = '{+61488000003}'), 1,
    'the skipped account leaves no ledger row of its own: one send, one operation');
select from private.finish_tool_call((tests.recall('m27_op4') ->> 'operation_id')::uuid, 'failed', 0);
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b', 'm27_grant_c', 'm27_perm_c']),
    '{0,0,0,0,1,1,1,1,0,0,0,0}', 'and every reservation of that send is given back');

-- ---- A disabled provider is no candidate ---------------------------------------------------------
update public.service_providers set is_enabled = false where name = 'twilio';
select is(tests.m27_pick(tests.world('m27_b')::uuid) #>> '{error,details,reason}', 'no_usable_account',
    'naming an account of a disabled provider finds no usable account');
select tests.remember('m27_op4b', tests.m27_begin('{+61499000004}'));
select is(tests.m27_fail_over(tests.recall('m27_op4b')) ->> 'connection_id', tests.world('m27_c'),
    'a failover passes over the disabled provider''s account without trying it');
select is((select count(*)::int from tests.m27_attempts(tests.recall('m27_op4b')) where connection_id = tests.world('m27_b')::uuid), 0,
    '... not even as a skipped attempt');
select from private.finish_tool_call((tests.recall('m27_op4b') ->> 'operation_id')::uuid, 'failed', 0);
update public.service_providers set is_enabled = true where name = 'twilio';

-- ---- A send that named its account stays on it ------------------------------------------------
select tests.remember('m27_op4c', tests.m27_begin(p_connection_id => tests.world('t_clicksend')::uuid,
    p_summary => jsonb_build_object('recipient_count', 1, 'account', tests.world('t_clicksend'))));
select is(tests.m27_fail_over(tests.recall('m27_op4c')), '{"ok": false, "reason": "account_named"}'::jsonb,
    'a send that named its account never moves to another');
select is((select count(*)::int from tests.m27_attempts(tests.recall('m27_op4c'))), 0, '... and records no attempt (finish records its outcome)');
select from private.finish_tool_call((tests.recall('m27_op4c') ->> 'operation_id')::uuid, 'failed', 0);

-- ---- Sends that never move -----------------------------------------------------------------------
select tests.remember('m27_op5', tests.m27_begin(p_summary => '{"recipient_count": 1, "from": "+61400000100"}', p_sender => '+61400000100'));
select is(tests.recall('m27_op5') ->> 'sender', '+61400000100', 'a send naming its `from` begins on A, from that number');
select is(tests.m27_fail_over(tests.recall('m27_op5')), '{"ok": false, "reason": "sender_named"}'::jsonb,
    'it does not move: the number is A''s');
select results_eq($$ select status, connection_id, quota_reserved, (select count(*)::int from tests.m27_attempts(tests.recall('m27_op5')))
                     from tests.m27_operation(tests.recall('m27_op5')) $$,
    format($$ values ('pending'::text, %L::uuid, 1, 0) $$, tests.world('t_clicksend')),
    '... it stays on A with its reservation, and no attempt is recorded');
select is(tests.m27_counters(array['t_grant', 't_sender_permission']), '{1,1,1,1}', '... A''s counters still hold it');
select from private.finish_tool_call((tests.recall('m27_op5') ->> 'operation_id')::uuid, 'failed', 0);

select tests.remember('m27_op6', tests.m27_begin(p_connection_id => tests.world('t_clicksend')::uuid, p_capability => 'clicksend_send_sms'));
select is(tests.m27_fail_over(tests.recall('m27_op6')), '{"ok": false, "reason": "not_a_channel_tool"}'::jsonb,
    'a provider tool''s send (clicksend_send_sms) does not move');
select results_eq($$ select status, connection_id, quota_reserved, (select count(*)::int from tests.m27_attempts(tests.recall('m27_op6')))
                     from tests.m27_operation(tests.recall('m27_op6')) $$,
    format($$ values ('pending'::text, %L::uuid, 1, 0) $$, tests.world('t_clicksend')),
    '... nothing of it changes');
select from private.finish_tool_call((tests.recall('m27_op6') ->> 'operation_id')::uuid, 'failed', 0);

select is(tests.m27_fail_over(tests.recall('m27_op2')), '{"ok": false, "reason": "not_pending"}'::jsonb,
    'a finished send (succeeded on B) does not move');
select is(tests.m27_fail_over(tests.recall('m27_op1')), '{"ok": false, "reason": "not_pending"}'::jsonb,
    'nor does a failed one');
select is((select count(*)::int from tests.m27_attempts(tests.recall('m27_op1'))), 2, '... and no attempt is added to it');
select throws_ok(format('select private.fail_over_tool_call(%L, %L)', gen_random_uuid(), 'provider_error'), 'P0002', null,
    'an unknown operation is not found');
select is(tests.m27_counters(array['t_grant', 't_sender_permission', 'm27_grant_b', 'm27_perm_b', 'm27_grant_c', 'm27_perm_c']),
    '{0,0,0,0,1,1,1,1,0,0,0,0}', 'in the end only the one message taken is counted, on the account that took it');

-- ---- Only the service fails over --------------------------------------------------------------------
select tests.remember('m27_op7', tests.m27_begin());
select tests.authenticate_as('team_sender');
select throws_ok(format('select private.fail_over_tool_call(%L, %L)', tests.recall('m27_op7') ->> 'operation_id', 'provider_error'),
    '42501', null, 'the agent''s own member cannot fail over their send');
select tests.authenticate_as('team_owner');
select throws_ok(format('select private.fail_over_tool_call(%L, %L)', tests.recall('m27_op7') ->> 'operation_id', 'provider_error'),
    '42501', null, 'nor can the workspace''s owner');
select tests.clear_authentication();
select throws_ok(format('select private.fail_over_tool_call(%L, %L)', tests.recall('m27_op7') ->> 'operation_id', 'provider_error'),
    '42501', null, 'nor anon');
select tests.reset_authentication();
select results_eq($$ select connection_id, quota_reserved, (select count(*)::int from tests.m27_attempts(tests.recall('m27_op7')))
                     from tests.m27_operation(tests.recall('m27_op7')) $$,
    format($$ values (%L::uuid, 1, 0) $$, tests.world('t_clicksend')),
    'their attempts changed nothing');

-- =============================================================================================
-- Who reads attempts
-- =============================================================================================
select is((select count(*)::int from public.operation_attempts where workspace_id = tests.world('t_workspace')::uuid), 9,
    'Acme holds 9 attempts (2 + 1 + 3 + 2 + 1)');
select tests.authenticate_as('team_sender');
select is((select count(*)::int from public.operation_attempts), 9, 'the agent''s member reads every attempt of their agent''s sends');
select is((select count(*)::int from public.operation_attempts where operation_id = (tests.recall('m27_op1') ->> 'operation_id')::uuid), 2,
    '... e.g. both of the first send''s');
select tests.authenticate_as('team_admin');
select is((select count(*)::int from public.operation_attempts), 9, 'an admin reads them all');
select tests.authenticate_as('team_viewer');
select is((select count(*)::int from public.operation_attempts), 0, 'another member reads none of them');
select tests.authenticate_as('team_removed');
select is((select count(*)::int from public.operation_attempts), 0, 'a removed member reads none');
select tests.authenticate_as('other_admin');
select is((select count(*)::int from public.operation_attempts), 0, 'another workspace''s admin reads none');
select is_empty(format('select 1 from public.operation_attempts where operation_id = %L', tests.recall('m27_op1') ->> 'operation_id'),
    '... not even by the operation''s id');
select throws_ok($$ insert into public.operation_attempts (operation_id, workspace_id, attempt, provider, outcome)
                    select id, workspace_id, 9, 'twilio', 'failed' from public.operations limit 1 $$,
    '42501', null, 'and no signed-in user may write an attempt');
select tests.clear_authentication();
select throws_ok('select 1 from public.operation_attempts', '42501', null, 'anon cannot read attempts');

select * from finish();
rollback;
