/**
 * No outcome is lost: a call left 'pending' past the deadline (the functions host died,
 * the database went away before finish) is closed as 'unknown' with its quota kept, by
 * the reconciler or by a keyed retry; a keyed retry of a call still in flight is a
 * conflict that says when to retry; one that ended replays. finish is idempotent. A
 * quota refusal is one 'denied' row that holds no reservation. The reconciler is
 * scheduled with pg_cron where pg_cron lives in this database.
 * (The same seen from the functions, with killed processes and a stopped database, is
 * in tests/faults.)
 */
begin;
set local search_path = extensions, public;
select plan(20);

select from tests.seed_world();

/** usage today on A's fixture grant (limit 100). */
create temporary view fixture_used as
    select coalesce((select used from public.usage_counters
                     where subject_id = tests.world('a_grant')::uuid and period = 'day'
                       and period_start = (now() at time zone 'utc')::date), 0) as used;
grant select on fixture_used to service_role, authenticated;

-- ---- The deadline is a setting --------------------------------------------------------------
select is(private.pending_deadline(), interval '5 minutes', 'the default pending deadline is 5 minutes');
set local switchboard.pending_deadline = '2 seconds';
select is(private.pending_deadline(), interval '2 seconds', 'switchboard.pending_deadline changes it');
set local switchboard.pending_deadline = 'not an interval';
select is(private.pending_deadline(), interval '5 minutes', 'a malformed setting falls back to the default instead of failing calls');
set local switchboard.pending_deadline = '1 minute';
select tests.authenticate_as_service_role();

-- ---- A keyed call in flight, then lost ---------------------------------------------------
select tests.remember('k1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}',
    p_idempotency_key => 'lost-1', p_request_hash => 'h', p_auth_mode => 'user_agent'));
select is((select used from fixture_used), 3, 'the call reserves 3');
select tests.remember('k1_busy', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}',
    p_idempotency_key => 'lost-1', p_request_hash => 'h', p_auth_mode => 'user_agent'));
select is(tests.recall('k1_busy') #>> '{error,code}', 'conflict', 'a keyed retry while it is in flight: conflict');
select ok((tests.recall('k1_busy') #>> '{error,details,retry_after}')::int between 1 and 5,
    '... with a retry_after of 1-5 seconds');

select is(private.reconcile_pending_operations(), 0, 'the reconciler leaves a call inside its deadline alone');

-- The host dies: nothing calls finish. Age the call past the deadline.
update public.operations set created_at = now() - interval '2 minutes' where id = (tests.recall('k1') ->> 'operation_id')::uuid;
select tests.remember('k1_retry', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}',
    p_idempotency_key => 'lost-1', p_request_hash => 'h', p_auth_mode => 'user_agent'));
select is(jsonb_build_object('replay', tests.recall('k1_retry') -> 'replay', 'status', tests.recall('k1_retry') -> 'status',
                             'code', tests.recall('k1_retry') #> '{error,code}',
                             'maybe', tests.recall('k1_retry') #> '{error,details,may_have_been_sent}'),
    '{"replay": true, "status": "unknown", "code": "service_unavailable", "maybe": true}'::jsonb,
    'a keyed retry past the deadline closes the lost call as unknown and replays that: may have been sent');
select ok(not (tests.recall('k1_retry') ? 'credentials'), '... without credentials: nothing can be sent twice');
select is((select used from fixture_used), 3, '... and the quota stays reserved (no refund, no second reservation)');
select results_eq(format('select status::text, quota_used, finished_at is not null from public.operations where id = %L',
                         tests.recall('k1') ->> 'operation_id'),
    $$ values ('unknown'::text, 3, true) $$, 'the operation is unknown with its quota used');
select is(private.finish_tool_call((tests.recall('k1') ->> 'operation_id')::uuid, 'succeeded', 3),
    '{"ok": false, "status": "unknown"}'::jsonb, 'a late finish cannot reopen it');

-- ---- The reconciler -----------------------------------------------------------------------
select tests.remember('u1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000004}', p_auth_mode => 'user_agent'));
select tests.remember('u2', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000005}', p_auth_mode => 'user_agent'));
update public.operations set created_at = now() - interval '10 minutes' where id = (tests.recall('u1') ->> 'operation_id')::uuid;
select is((select used from fixture_used), 5, 'two more calls reserve 1 each');
select is(private.reconcile_pending_operations(), 1, 'the reconciler closes exactly the call past its deadline');
select results_eq(format($$select status::text, error_details ->> 'reason', quota_used from public.operations where id in (%L, %L)
                         order by created_at$$, tests.recall('u1') ->> 'operation_id', tests.recall('u2') ->> 'operation_id'),
    $$ values ('unknown'::text, 'no_outcome_recorded_before_deadline'::text, 1), ('pending', null, 0) $$,
    '... as unknown with the reason and its quota kept; the fresh call stays pending');
select is((select used from fixture_used), 5, '... and no quota moves');
select is(private.finish_tool_call((tests.recall('u2') ->> 'operation_id')::uuid, 'failed', 0) -> 'ok', 'true'::jsonb,
    'the fresh call still finishes normally');
select is((select used from fixture_used), 4, '... giving back what it did not send');

-- ---- A quota refusal is one denied row without a reservation --------------------------------
select tests.authenticate_as('user_a');
select tests.remember('qa', public.create_agent('tight agent'));
select tests.remember('qg', public.grant_agent_permission((tests.recall('qa') ->> 'id')::uuid, tests.world('a_clicksend')::uuid,
    '{sms}', p_daily_send_limit => 1, p_max_recipients_per_message => 10));
select tests.authenticate_as_service_role();
select tests.remember('q1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('qa') ->> 'id')::uuid, p_recipients => '{+61400000006,+61400000007}',
    p_idempotency_key => 'too-many', p_request_hash => 'q', p_auth_mode => 'user_agent'));
select results_eq(format($$select status::text, error_code, quota_reserved, idempotency_key::text from public.operations
                         where agent_id = %L$$, tests.recall('qa') ->> 'id'),
    $$ values ('denied'::text, 'quota_exceeded'::text, 0, null::text) $$,
    'over the limit: one denied row, no reservation, and the key stays free for a retry once quota is back');

-- ---- The schedule ---------------------------------------------------------------------------
create function pg_temp.reconcile_job() returns text language plpgsql as $$
declare
    v_command text;
begin
    execute $q$select command from cron.job where jobname = 'switchboard-reconcile'$q$ into v_command;
    return v_command;
end
$$;
select tests.reset_authentication();
select case
    when exists (select 1 from pg_extension where extname = 'pg_cron')
    then is(pg_temp.reconcile_job(), 'select private.reconcile_pending_operations()',
            'pg_cron runs the reconciler (job switchboard-reconcile)')
    else skip('pg_cron is not enabled in this database (it lives in cron.database_name)', 1)
end;

select * from finish();
rollback;
