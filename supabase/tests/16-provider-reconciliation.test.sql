/**
 * Asking the provider about lost calls: the service lists the unknown send calls of one
 * provider (no outcome recorded before the deadline, or a timeout finish recorded) with
 * what it needs to ask, and records the answer. Found → succeeded with the quota kept; a search
 * that finds nothing once the grace period is over → failed with the quota given back,
 * exactly once; anything earlier or any provider trouble → still unknown. A row that
 * changed state meanwhile is left alone. (The same through the clicksend function and
 * the ClickSend fake is tests/e2e/provider-reconciliation.test.ts.)
 */
begin;
set local search_path = extensions, public;
select plan(35);

select from tests.seed_world();

/** usage today on A's fixture grant (limit 100). */
create temporary view fixture_used as
    select coalesce((select used from public.usage_counters
                     where subject_id = tests.world('a_grant')::uuid and period = 'day'
                       and period_start = (now() at time zone 'utc')::date), 0) as used;
grant select on fixture_used to service_role, authenticated;
/** this month's use on A's fixture grant. */
create temporary view fixture_used_month as
    select coalesce((select used from public.usage_counters
                     where subject_id = tests.world('a_grant')::uuid and period = 'month'
                       and period_start = date_trunc('month', (now() at time zone 'utc')::date)::date), 0) as used;
/** the day's and the month's use on A's member's permission (user_a_member on A's team mail). */
create temporary view member_used as
    select period::text, used::integer from public.usage_counters where subject_id = tests.world('a_member_permission')::uuid and subject = 'member';
grant select on fixture_used_month, member_used to service_role;

/** The ids private.operations_to_reconcile lists, in its order. */
create function pg_temp.listed(p_provider text, p_limit integer default 50) returns uuid[]
language sql as $$
    select coalesce(array_agg((item ->> 'operation_id')::uuid order by n), '{}')
    from jsonb_array_elements(private.operations_to_reconcile(p_provider, p_limit)) with ordinality as t(item, n)
$$;
grant execute on function pg_temp.listed(text, integer) to service_role;

/** One of A's agent's SMS calls to p_recipients: begun, then lost (closed unknown by the reconciler). */
create function pg_temp.lost_sms(p_name text, p_recipients text[], p_age interval) returns uuid
language plpgsql as $$
declare
    v_id uuid;
begin
    v_id := (private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
        p_agent_id => tests.world('a_agent')::uuid, p_recipients => p_recipients,
        p_idempotency_key => p_name, p_request_hash => 'h-' || p_name, p_auth_mode => 'user_agent') ->> 'operation_id')::uuid;
    update public.operations set created_at = now() - p_age where id = v_id;
    perform tests.remember(p_name, to_jsonb(v_id));
    return v_id;
end
$$;
grant execute on function pg_temp.lost_sms(text, text[], interval) to service_role;

select tests.authenticate_as_service_role();

-- ---- What is listed --------------------------------------------------------------------------
select pg_temp.lost_sms('found', '{+61400000011,+61400000012}', interval '6 minutes');   -- reserves 2
select pg_temp.lost_sms('gone', '{+61400000013}', interval '30 minutes');               -- reserves 1
select pg_temp.lost_sms('young', '{+61400000014}', interval '5 minutes 30 seconds');    -- reserves 1
select pg_temp.lost_sms('fresh', '{+61400000015}', interval '0 minutes');               -- stays pending
select pg_temp.lost_sms('ancient', '{+61400000016}', interval '25 hours');              -- reserves 1
select is((select used from fixture_used), 6, 'five calls reserve 6');
select is(private.reconcile_pending_operations(), 4, 'the reconciler closes the four past the deadline as unknown');
-- Unknown because the send timed out (recorded by finish): it may have been sent, so it is asked about too.
select tests.remember('timeout', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000017}', p_auth_mode => 'user_agent') -> 'operation_id');
select private.finish_tool_call(tests.world('timeout')::uuid, 'unknown', 0, p_error_code => 'provider_unavailable',
                                p_error_details => '{"kind": "timeout"}');
update public.operations set created_at = now() - interval '29 minutes' where id = tests.world('timeout')::uuid;
-- B's lost call is listed too (the reconciler serves every user), an SMTP one is not.
select tests.remember('b_lost', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('b_uid')::uuid,
    p_agent_id => tests.world('b_agent')::uuid, p_recipients => '{+61400000018}', p_auth_mode => 'user_agent') -> 'operation_id');
select tests.remember('smtp_lost', private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{x@example.test}', p_auth_mode => 'user_agent') -> 'operation_id');
update public.operations set created_at = now() - interval '7 minutes'
where id in (tests.world('b_lost')::uuid, tests.world('smtp_lost')::uuid);
select is(private.reconcile_pending_operations(), 2, 'B''s call and the SMTP call are closed as unknown too');

select is(pg_temp.listed('clicksend_sms'),
    array[tests.world('gone')::uuid, tests.world('timeout')::uuid, tests.world('b_lost')::uuid, tests.world('found')::uuid,
          tests.world('young')::uuid],
    'ClickSend: the unknown send calls of the last 24 hours (lost or timed out), never asked first, oldest first');
select is(pg_temp.listed('clicksend_sms', 2), array[tests.world('gone')::uuid, tests.world('timeout')::uuid],
    'the batch is bounded');
select is(pg_temp.listed('smtp'), array[tests.world('smtp_lost')::uuid], 'per provider: SMTP lists only its own');
select is((select jsonb_build_object('credentials', i -> 'credentials', 'config', i -> 'config', 'recipients', i -> 'recipients',
                                     'window', (i ->> 'window_to')::timestamptz - (i ->> 'window_from')::timestamptz,
                                     'conclusive_after', (i ->> 'conclusive_after')::timestamptz - (i ->> 'created_at')::timestamptz)
           from jsonb_array_elements(private.operations_to_reconcile('clicksend_sms')) i
           where i ->> 'operation_id' = tests.world('found')),
    jsonb_build_object('credentials', jsonb_build_object('username', 'a-user', 'api_key', tests.world('a_clicksend_secret')),
                       'config', '{"sender_id": "Switchboard"}'::jsonb, 'recipients', '["+61400000011", "+61400000012"]'::jsonb,
                       'window', interval '7 minutes', 'conclusive_after', interval '15 minutes'),
    'each item carries the connection''s credentials and config, and the window: call - 1 min to deadline + 1 min; conclusive after deadline + grace');

-- ---- Only the service -------------------------------------------------------------------------
select tests.authenticate_as('user_a');
select throws_ok($$ select private.operations_to_reconcile('clicksend_sms') $$, '42501', null,
    'a signed-in user cannot list (credentials of every user)');
select throws_ok(format($$ select private.record_provider_reconciliation(%L, 'clicksend_sms', 'not_found') $$, tests.world('gone')),
    '42501', null, '... nor record an answer');
select tests.clear_authentication();
select throws_ok($$ select private.operations_to_reconcile('clicksend_sms') $$, '42501', null, 'anon cannot list');
select tests.reset_authentication();
select is(array(select r::text from unnest(array['service_role', 'authenticated', 'anon']) r
                where has_function_privilege(r, 'private.invoke_provider_reconciler(text)', 'EXECUTE')), '{}',
    'the pg_net caller (reads Vault) is the owner''s alone');
select tests.authenticate_as_service_role();

-- ---- Found: succeeded, quota kept ----------------------------------------------------------
select is(private.record_provider_reconciliation(tests.world('found')::uuid, 'clicksend_sms', 'found',
          '[{"message_id": "M-1", "to": "+61400000011"}]'),
    '{"ok": true, "status": "unknown"}'::jsonb,
    'one of two messages found inside the grace period: still unknown (the other may show up)');
select is((select error_details -> 'reconciliation' ->> 'attempts' from public.operations where id = tests.world('found')::uuid),
    '1', '... the attempt is noted');
select is(private.record_provider_reconciliation(tests.world('found')::uuid, 'clicksend_sms', 'found',
          '[{"message_id": "M-1", "to": "+61400000011"}, {"message_id": "M-2", "to": "+61400000012"}]') ->> 'status',
    'succeeded', 'both found: succeeded');
select results_eq(format($$select status::text, quota_used, provider_message_ids, error_code, error_details,
                                  response ->> 'sent', response #>> '{reconciled,by}'
                           from public.operations where id = %L$$, tests.world('found')),
    $$ values ('succeeded'::text, 2, '{M-1,M-2}'::text[], null::text, null::jsonb, '2'::text, 'provider_history'::text) $$,
    '... with the provider''s message ids, its quota used, the error cleared and the reconciliation in the response');
select is((select used from fixture_used), 7, '... and no quota moves (6 for these calls, 1 kept by the timed-out one)');
select tests.remember('found_retry', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000011,+61400000012}',
    p_idempotency_key => 'found', p_request_hash => 'h-found', p_auth_mode => 'user_agent'));
select is(jsonb_build_object('replay', tests.recall('found_retry') -> 'replay', 'status', tests.recall('found_retry') -> 'status',
                             'error', tests.recall('found_retry') -> 'error'),
    '{"replay": true, "status": "succeeded", "error": null}'::jsonb, 'a keyed retry replays succeeded');

-- ---- Not found: failed once past the grace, quota back exactly once -------------------------
select is(private.record_provider_reconciliation(tests.world('young')::uuid, 'clicksend_sms', 'not_found') ->> 'status',
    'unknown', 'nothing found inside the grace period: still unknown');
select is(private.record_provider_reconciliation(tests.world('gone')::uuid, 'clicksend_sms', 'unavailable', '[]', 'HTTP 500')
          ->> 'status', 'unknown', 'the provider could not be asked: still unknown');
select is((select used from fixture_used), 7, '... and no quota moves');
select is(pg_temp.listed('clicksend_sms'),
    array[tests.world('timeout')::uuid, tests.world('b_lost')::uuid, tests.world('gone')::uuid, tests.world('young')::uuid],
    'calls asked recently go to the back of the queue');
select is(private.record_provider_reconciliation(tests.world('gone')::uuid, 'clicksend_sms', 'not_found') ->> 'status',
    'failed', 'nothing found past deadline + grace: failed');
select results_eq(format($$select status::text, quota_used, error_code, error_details ->> 'reason', error_details ->> 'may_have_been_sent'
                           from public.operations where id = %L$$, tests.world('gone')),
    $$ values ('failed'::text, 0, 'provider_error'::text, 'provider_has_no_record'::text, 'false'::text) $$,
    '... with reason provider_has_no_record and no quota used');
select is((select used from fixture_used), 6, '... its reservation given back');
select is((select used from fixture_used_month), 6, '... to the month''s counter too');
select is(private.record_provider_reconciliation(tests.world('gone')::uuid, 'clicksend_sms', 'not_found'),
    '{"ok": false, "status": "failed"}'::jsonb, 'a second answer changes nothing');
select is((select used from fixture_used), 6, '... and gives nothing back twice');

-- ---- A row in another state is left alone ----------------------------------------------------
-- As if a keyed retry or another reconciler had settled it after it was listed.
update public.operations set status = 'succeeded', quota_used = 1 where id = tests.world('young')::uuid;
select is(private.record_provider_reconciliation(tests.world('young')::uuid, 'clicksend_sms', 'not_found'),
    '{"ok": false, "status": "succeeded"}'::jsonb, 'a row that changed state meanwhile is left alone');
select is(private.record_provider_reconciliation(tests.world('timeout')::uuid, 'clicksend_sms', 'found',
          '[{"message_id": "M-9", "to": "+61400000017"}]') ->> 'status',
    'succeeded', 'a send that timed out and that the provider has: succeeded, its quota kept');
select is(private.record_provider_reconciliation(tests.world('smtp_lost')::uuid, 'clicksend_sms', 'not_found'),
    '{"ok": false, "status": "unknown"}'::jsonb, 'an answer from another provider is refused');
select is((select used from fixture_used), 6, 'none of that moves quota');

-- ---- A member's call: the reservation goes back to the member's counters ------------------------
select tests.remember('member_lost', private.begin_tool_call('sendgrid_send_email', p_user_id => tests.world('a_member_uid')::uuid,
    p_recipients => '{x@example.test,y@example.test}', p_auth_mode => 'user') -> 'operation_id');
update public.operations set created_at = now() - interval '30 minutes' where id = tests.world('member_lost')::uuid;
select is(private.reconcile_pending_operations(), 1, 'a member''s call acting directly, lost, is closed as unknown');
select results_eq($$ select period, used from member_used order by period $$, $$ values ('day'::text, 2), ('month', 2) $$,
    '... holding its reservation on the member permission''s day and month counters');
select is(private.record_provider_reconciliation(tests.world('member_lost')::uuid, 'sendgrid', 'not_found') ->> 'status', 'failed',
    'the provider has no record of it: failed');
select results_eq($$ select period, used from member_used order by period $$, $$ values ('day'::text, 0), ('month', 0) $$,
    '... and the member gets the reservation back on both counters');

select * from finish();
rollback;
