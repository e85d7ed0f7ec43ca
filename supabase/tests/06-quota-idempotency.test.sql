/**
 * Daily and monthly send limits are counted per recipient, each on its own counter
 * (usage_counters: subject grant, period day / month), reserved at begin and settled at finish:
 * exactly at the limit is allowed, one more is quota_exceeded; a call that sent
 * nothing gives its reservation back, 'unknown' keeps it, a partial send keeps only
 * what went out; a call is settled once. Idempotency keys replay the first result
 * without a second reservation (and without credentials), and conflict on a different
 * request or while the first is still running.
 * (Real concurrency is in tests/db/concurrency.test.ts.)
 */
begin;
set local search_path = extensions, public;
select plan(51);

select from tests.seed_world();
select tests.authenticate_as('user_a');
select tests.remember('ag', public.create_agent('quota agent'));
select tests.remember('grant', public.grant_agent_permission((tests.recall('ag') ->> 'id')::uuid, tests.world('a_clicksend')::uuid,
    '{sms,balance}', p_daily_send_limit => 5, p_max_recipients_per_message => 10));
select tests.remember('ag0', public.create_agent('zero agent'));
select public.grant_agent_permission((tests.recall('ag0') ->> 'id')::uuid, tests.world('a_clicksend')::uuid, '{sms}', p_daily_send_limit => 0);

select tests.authenticate_as_service_role();

/** usage_counters.used today for the quota grant (0 when no row yet). */
create temporary view used_today as
    select coalesce((select used from public.usage_counters
                     where subject_id = (tests.recall('grant') ->> 'id')::uuid and subject = 'grant'
                       and period = 'day' and period_start = (now() at time zone 'utc')::date), 0) as used;
/** usage_counters.used this month for the quota grant. */
create temporary view used_this_month as
    select coalesce((select used from public.usage_counters
                     where subject_id = (tests.recall('grant') ->> 'id')::uuid and subject = 'grant'
                       and period = 'month' and period_start = date_trunc('month', (now() at time zone 'utc')::date)::date), 0) as used;

-- ---- Exactly at the limit ----------------------------------------------------------------------
select tests.remember('s3', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}', p_auth_mode => 'user_agent'));
select is(tests.recall('s3') -> 'ok', 'true'::jsonb, 'limit 5: a send to 3 recipients is allowed');
select is((select used from used_today), 3, '... and reserves 3');
select is((select used from used_this_month), 3, '... on the month''s counter too (the grant has no monthly limit, it still counts)');
select tests.remember('s2', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000004,+61400000005}', p_auth_mode => 'user_agent'));
select is(tests.recall('s2') -> 'ok', 'true'::jsonb, 'then a send to 2 (exactly reaching 5) is allowed');
select is((select used from used_today), 5, '... and the counter is at 5');
select tests.remember('s1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000006}', p_auth_mode => 'user_agent'));
select is(tests.recall('s1') #>> '{error,code}', 'quota_exceeded', 'then a send to 1 more is quota_exceeded');
select is((tests.recall('s1') #> '{error,details}') - 'resets_at',
    '{"limit": "agent_daily", "limit_value": 5, "used": 5, "requested": 1, "daily_send_limit": 5, "used_today": 5}'::jsonb,
    '... with the limit, today''s use and the request in details');
select ok((tests.recall('s1') #>> '{error,details,resets_at}')::timestamptz = ((now() at time zone 'utc')::date + 1)::timestamp at time zone 'utc',
    '... and when the limit resets (next UTC midnight)');
select results_eq(format('select status::text, error_code, quota_reserved from public.operations where id = %L', tests.recall('s1') ->> 'operation_id'),
    $$ values ('denied'::text, 'quota_exceeded'::text, 0) $$, '... logged as a denied operation holding no quota');
select is((select used from used_today), 5, '... and the refused call reserved nothing');
select is(private.begin_tool_call('clicksend_get_balance', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_auth_mode => 'user_agent') -> 'ok',
    'true'::jsonb, 'a read-only tool (balance) still works with the send quota used up');
select is((select used from used_today), 5, '... and does not count against it');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003,+61400000004,+61400000005,+61400000006}',
    p_auth_mode => 'user_agent') #>> '{error,code}',
    'quota_exceeded', 'a single request larger than the whole limit is quota_exceeded');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag0') ->> 'id')::uuid, p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') #>> '{error,code}',
    'quota_exceeded', 'daily_send_limit 0 allows no send at all');

-- ---- Settling reservations ------------------------------------------------------------------------
select is(private.finish_tool_call((tests.recall('s2') ->> 'operation_id')::uuid, 'failed', 0, p_error_code => 'provider_error') -> 'quota_used',
    '0'::jsonb, 'finish with sent_count 0 keeps nothing');
select is((select used from used_today), 3, '... and gives the 2 back (5 → 3)');
select is((select used from used_this_month), 3, '... on the month''s counter too');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}', p_auth_mode => 'user_agent') #>> '{error,code}',
    'quota_exceeded', 'with 3 used, a send to 3 is still refused');
select tests.remember('s2b', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000007,+61400000008}', p_auth_mode => 'user_agent'));
select is(tests.recall('s2b') -> 'ok', 'true'::jsonb, '... but a send to 2 (the returned quota) is allowed again');
select is(private.finish_tool_call((tests.recall('s2b') ->> 'operation_id')::uuid, 'unknown', 0, p_error_code => 'provider_unavailable') -> 'quota_used',
    '2'::jsonb, 'finish with status unknown (it may have gone out) keeps the whole reservation');
select is((select used from used_today), 5, '... so the counter stays at 5');
select is(private.finish_tool_call((tests.recall('s3') ->> 'operation_id')::uuid, 'partial', 1, array['msg-1']) -> 'quota_used',
    '1'::jsonb, 'a partial send of 1 of 3 keeps 1');
select is((select used from used_today), 3, '... and gives 2 back (5 → 3)');
select results_eq(format('select status::text, quota_reserved, quota_used, provider_message_ids from public.operations where id = %L', tests.recall('s3') ->> 'operation_id'),
    $$ values ('partial'::text, 3, 1, '{msg-1}'::text[]) $$, 'the operation records status, reservation, use and provider ids');
select is(private.finish_tool_call((tests.recall('s3') ->> 'operation_id')::uuid, 'failed', 0),
    '{"ok": false, "status": "partial"}'::jsonb, 'a call is settled only once (a second finish is refused)');
select is((select used from used_today), 3, '... and cannot refund the quota twice');

select tests.remember('s2c', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_recipients => '{+61400000009,+61400000010}', p_auth_mode => 'user_agent'));
select is(private.finish_tool_call((tests.recall('s2c') ->> 'operation_id')::uuid, 'succeeded', 50) -> 'quota_used',
    '2'::jsonb, 'a sent_count above the reservation is capped at the reservation');
select is((select used from used_today), 5, '... and the counter is exactly at the limit again');
select hasnt_column('public', 'agent_permissions', 'usage_count',
    'no running total on the grant row: finish never waits on a second hot row (the total is the sum of usage_counters)');
select throws_ok(format('select private.finish_tool_call(%L, %L)', tests.recall('s2c') ->> 'operation_id', 'pending'),
    '22023', null, 'finish refuses a non-final status');

-- What the agent is told.
select tests.authenticate_as('user_a');
select is((public.get_agent_tools((tests.recall('ag') ->> 'id')::uuid) #> '{0,limits}') - 'expires_at' - 'allowed_recipients' - 'blocked_recipients'
           - 'member_allowed_recipients' - 'member_blocked_recipients',
    '{"daily_send_limit": 5, "remaining_today": 0, "max_recipients_per_message": 10, "monthly_send_limit": null, "remaining_this_month": null}'::jsonb,
    'get_agent_tools shows the limit and 0 remaining for the send tool (and no monthly limit)');
select tests.remember('agm', public.create_agent('monthly agent'));
select tests.remember('grant_m', public.grant_agent_permission((tests.recall('agm') ->> 'id')::uuid, tests.world('a_clicksend')::uuid,
    '{sms}', p_daily_send_limit => null, p_monthly_send_limit => 3));
select tests.authenticate_as_service_role();

-- ---- A monthly limit ---------------------------------------------------------------------------------
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('agm') ->> 'id')::uuid, p_recipients => '{+61400000001,+61400000002,+61400000003}', p_auth_mode => 'user_agent') -> 'ok',
    'true'::jsonb, 'monthly limit 3, no daily limit: a send to 3 is allowed');
select tests.remember('m1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('agm') ->> 'id')::uuid, p_recipients => '{+61400000004}', p_auth_mode => 'user_agent'));
select is(jsonb_build_object('code', tests.recall('m1') #> '{error,code}', 'message', tests.recall('m1') #> '{error,message}',
                             'limit', tests.recall('m1') #> '{error,details,limit}',
                             'resets_at', (tests.recall('m1') #>> '{error,details,resets_at}')::timestamptz
                                          = (date_trunc('month', (now() at time zone 'utc')::date) + interval '1 month')::timestamp at time zone 'utc'),
    '{"code": "quota_exceeded", "message": "monthly send limit reached: 3 of 3 used this month, 1 requested", "limit": "agent_monthly", "resets_at": true}'::jsonb,
    'then one more is quota_exceeded on the monthly limit, which resets on the 1st of next month (UTC)');
select is((select used::integer from public.usage_counters where subject_id = (tests.recall('grant_m') ->> 'id')::uuid and period = 'day'), 3,
    '... and what the refused call had already reserved on the day''s counter is taken back (3, not 4)');
select tests.authenticate_as('user_a');
select is(public.get_agent_tools((tests.recall('agm') ->> 'id')::uuid) #> '{0,limits,remaining_this_month}', '0'::jsonb,
    'get_agent_tools shows 0 left this month');
select tests.authenticate_as_service_role();

-- ---- Idempotency ------------------------------------------------------------------------------------
/** usage today on A's fixture grant (limit 100). */
create temporary view fixture_used as
    select coalesce((select used from public.usage_counters
                     where subject_id = tests.world('a_grant')::uuid and period = 'day'
                       and period_start = (now() at time zone 'utc')::date), 0) as used;

select tests.remember('i1', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002}',
    p_idempotency_key => 'order-42', p_request_hash => 'hash-1', p_auth_mode => 'user_agent'));
select is(tests.recall('i1') -> 'ok', 'true'::jsonb, 'first call with idempotency key order-42 is authorized');
select is((select used from fixture_used), 2, '... reserving 2');
select tests.remember('i1_pending', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002}',
    p_idempotency_key => 'order-42', p_request_hash => 'hash-1', p_auth_mode => 'user_agent'));
select is(jsonb_build_object('code', tests.recall('i1_pending') #> '{error,code}', 'op', tests.recall('i1_pending') -> 'operation_id'),
    jsonb_build_object('code', 'conflict', 'op', tests.recall('i1') -> 'operation_id'),
    'the same key while the first call is pending: conflict, naming the first operation');
select ok(not (tests.recall('i1_pending') ? 'credentials'), '... and no credentials');
select private.finish_tool_call((tests.recall('i1') ->> 'operation_id')::uuid, 'succeeded', 2, array['m-1', 'm-2'],
                                '{"messages": [{"id": "m-1"}, {"id": "m-2"}]}');
select tests.remember('i1_replay', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000001,+61400000002}',
    p_idempotency_key => 'order-42', p_request_hash => 'hash-1', p_auth_mode => 'user_agent'));
select is(tests.recall('i1_replay') - 'error',
    jsonb_build_object('ok', true, 'replay', true, 'operation_id', tests.recall('i1') -> 'operation_id', 'status', 'succeeded',
                       'response', '{"messages": [{"id": "m-1"}, {"id": "m-2"}]}'::jsonb),
    'the same key and request after it finished: a replay of the first result');
select ok(not (tests.recall('i1_replay') ? 'credentials'), '... without credentials (nothing is sent again)');
select is((select used from fixture_used), 2, '... and without a second reservation');
select is((select count(*)::int from public.operations where idempotency_key = 'order-42'), 1, '... or a second operation row');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000003}',
    p_idempotency_key => 'order-42', p_request_hash => 'hash-2', p_auth_mode => 'user_agent') #>> '{error,message}',
    'idempotency key was used with a different request', 'the same key with a different request hash: conflict');
select is(private.begin_tool_call('clicksend_get_balance', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_idempotency_key => 'order-42', p_request_hash => 'hash-1',
    p_auth_mode => 'user_agent') #>> '{error,code}',
    'conflict', 'the same key and hash for a different tool: conflict');
select is((select used from fixture_used), 2, 'conflicts reserve nothing');

-- A failed first call is replayed as failed (the caller decides whether to retry with a new key).
select tests.remember('i2', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000004}',
    p_idempotency_key => 'order-43', p_request_hash => 'h', p_auth_mode => 'user_agent'));
select private.finish_tool_call((tests.recall('i2') ->> 'operation_id')::uuid, 'failed', 0,
                                p_error_code => 'provider_error', p_error_message => 'insufficient credit');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000004}',
    p_idempotency_key => 'order-43', p_request_hash => 'h', p_auth_mode => 'user_agent') - 'response' - 'operation_id',
    '{"ok": true, "replay": true, "status": "failed", "error": {"code": "provider_error", "message": "insufficient credit", "details": null}}'::jsonb,
    'a failed first call replays as failed, with its error');

-- Keys are scoped to (user, agent): the same string elsewhere is a new call.
select ok(r -> 'ok' = 'true' and not r ? 'replay' and r ->> 'operation_id' <> tests.recall('i1') ->> 'operation_id',
    'the same key from another agent of A is a new call, not a replay of the first agent''s')
from private.begin_tool_call('clicksend_get_balance', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => (tests.recall('ag') ->> 'id')::uuid, p_idempotency_key => 'order-42', p_request_hash => 'hash-1',
    p_auth_mode => 'user_agent') r;
select is((select jsonb_build_object('ok', r -> 'ok', 'replay', r -> 'replay', 'user_id', r -> 'user_id', 'workspace_id', r -> 'workspace_id',
                                     'connection_id', r -> 'connection_id', 'api_key', r #> '{credentials,api_key}')
           from private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('b_uid')::uuid,
               p_agent_id => tests.world('b_agent')::uuid, p_recipients => '{+61400000001,+61400000002}',
               p_idempotency_key => 'order-42', p_request_hash => 'hash-1', p_auth_mode => 'user_agent') r),
    jsonb_build_object('ok', true, 'replay', null, 'user_id', tests.world('b_uid'), 'workspace_id', tests.world('b_workspace'),
                       'connection_id', tests.world('b_clicksend'), 'api_key', tests.world('b_clicksend_secret')),
    'B using the same key string gets its own call on its own account, not A''s result');
select ok(r -> 'ok' = 'true' and not r ? 'replay',
    'A acting directly (no agent) with the same key is a different call from the agent''s')
from private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_recipients => '{+61400000001}', p_idempotency_key => 'order-42', p_request_hash => 'hash-1', p_auth_mode => 'user') r;
select is((select count(*)::int from public.operations where idempotency_key = 'order-42'), 4,
    'four calls with the key order-42, one per (user, agent) scope');

select * from finish();
rollback;
