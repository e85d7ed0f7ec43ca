/**
 * The ledger's and the usage counters' value rules are domains (migration
 * call_path_executor_work): every value outside them is refused with 23514 as the table
 * CHECK constraints refused it, on insert and on update, and no table CHECK constraint
 * is left on either table to be planned again by every write. A workspace's counters are
 * indexed by period start (migration usage_by_period). Begin and finish run with generic
 * plans. Discovery reads today's and this month's counter of a right among a long
 * history of counters, and reports what is left from those two only.
 */
begin;
set local search_path = extensions, public;
select plan(38);

-- ---- The rules are domains, not table constraints -----------------------------------------------
select domain_type_is('public', 'operation_status', 'text', 'operation_status is a domain over text');
select domain_type_is('public', 'operation_auth_mode', 'text', 'operation_auth_mode is a domain over text');
select domain_type_is('public', 'idempotency_key', 'text', 'idempotency_key is a domain over text');
select domain_type_is('public', 'usage_subject', 'text', 'usage_subject is a domain over text');
select domain_type_is('public', 'usage_period', 'text', 'usage_period is a domain over text');
select domain_type_is('public', 'usage_count', 'integer', 'usage_count is a domain over integer');
select col_type_is('public', 'operations', 'status', 'operation_status', 'operations.status is an operation_status');
select col_type_is('public', 'operations', 'auth_mode', 'operation_auth_mode', 'operations.auth_mode is an operation_auth_mode');
select col_type_is('public', 'operations', 'idempotency_key', 'idempotency_key', 'operations.idempotency_key is an idempotency_key');
select col_type_is('public', 'usage_counters', 'subject', 'usage_subject', 'usage_counters.subject is a usage_subject');
select col_type_is('public', 'usage_counters', 'period', 'usage_period', 'usage_counters.period is a usage_period');
select col_type_is('public', 'usage_counters', 'used', 'usage_count', 'usage_counters.used is a usage_count');
select is_empty($$ select conname from pg_catalog.pg_constraint
                   where contype = 'c' and conrelid in ('public.operations'::regclass, 'public.usage_counters'::regclass) $$,
    'no table CHECK constraint is left on operations or usage_counters');

-- ---- A workspace's counters by period ----------------------------------------------------------
select has_index('public', 'usage_counters', 'usage_counters_workspace_id_period_start_idx', array['workspace_id', 'period_start'],
    'a workspace''s counters are indexed by period start (the usage page reads one month, not all history)');
select hasnt_index('public', 'usage_counters', 'usage_counters_workspace_id_idx', '... which replaces the index on workspace_id alone');

-- ---- Every value outside a rule is refused (23514), on insert and on update ---------------------
select from tests.seed_world();

/** One ledger row of user A's workspace with the given status, auth mode and key (as the service does). */
create function pg_temp.insert_operation(p_status text, p_auth_mode text, p_key text) returns text
language sql as $$
    select tests.try_sql(format(
        'insert into public.operations (workspace_id, user_id, capability_key, auth_mode, status, idempotency_key) values (%L, %L, %L, %L, %L, %L)',
        tests.world('a_workspace'), tests.world('a_uid'), 'clicksend_send_sms', p_auth_mode, p_status, p_key))
$$;
/** One usage counter of user A with the given subject, period and count. */
create function pg_temp.insert_counter(p_subject text, p_period text, p_used integer) returns text
language sql as $$
    select tests.try_sql(format(
        'insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id, used) values (%L, %L, %L, %L, %L, %L, %s)',
        gen_random_uuid(), p_subject, p_period, '2026-01-01', tests.world('a_workspace'), tests.world('a_uid'), p_used))
$$;

select is(pg_temp.insert_operation('pending', 'agent_key', 'k-1'), 'ok', 'a pending operation with a key is accepted');
select is(pg_temp.insert_operation('denied', 'service', null), 'ok', 'a denied service operation without a key is accepted');
select matches(pg_temp.insert_operation('exploded', 'service', null), '^23514: value for domain operation_status',
    'an unknown status is refused (23514)');
select matches(pg_temp.insert_operation('PENDING', 'service', null), '^23514: ', 'statuses are lower case (23514)');
select matches(pg_temp.insert_operation('pending', 'root', null), '^23514: value for domain operation_auth_mode',
    'an unknown auth mode is refused (23514)');
select matches(pg_temp.insert_operation('pending', 'service', ''), '^23514: value for domain idempotency_key',
    'an empty idempotency key is refused (23514)');
select matches(pg_temp.insert_operation('pending', 'service', repeat('k', 256)), '^23514: ', 'a 256-character idempotency key is refused (23514)');
select is(pg_temp.insert_operation('pending', 'service', repeat('k', 255)), 'ok', 'a 255-character idempotency key is accepted');
select matches(tests.try_sql(format('update public.operations set status = %L where idempotency_key = %L', 'gone', 'k-1')),
    '^23514: ', 'an update to an unknown status is refused (23514)');
select is((select status::text from public.operations where idempotency_key = 'k-1'), 'pending', '... and the row keeps its status');

select is(pg_temp.insert_counter('grant', 'day', 0), 'ok', 'a grant''s daily counter at 0 is accepted');
select is(pg_temp.insert_counter('member', 'month', 7), 'ok', 'a member''s monthly counter is accepted');
select matches(pg_temp.insert_counter('agent', 'day', 1), '^23514: value for domain usage_subject', 'an unknown subject is refused (23514)');
select matches(pg_temp.insert_counter('grant', 'week', 1), '^23514: value for domain usage_period', 'an unknown period is refused (23514)');
select matches(pg_temp.insert_counter('grant', 'day', -1), '^23514: value for domain usage_count', 'a negative count is refused (23514)');
select matches(tests.try_sql($$ update public.usage_counters set used = used - 1 where subject = 'grant' and used = 0 $$),
    '^23514: ', 'an update taking a counter below zero is refused (23514)');

-- ---- Begin and finish plan once per session ----------------------------------------------------
select ok((select 'plan_cache_mode=force_generic_plan' = any (p.proconfig) from pg_catalog.pg_proc p where p.oid = 'private.begin_tool_call'::regproc),
    'begin_tool_call runs its statements with generic plans');
select ok((select 'plan_cache_mode=force_generic_plan' = any (p.proconfig) from pg_catalog.pg_proc p where p.oid = 'private.finish_tool_call'::regproc),
    'finish_tool_call runs its statements with generic plans');
select ok((select 'search_path=""' = any (p.proconfig) from pg_catalog.pg_proc p where p.oid = 'private.begin_tool_call'::regproc),
    '... and keep their empty search_path');

-- ---- Discovery among a long history of counters ------------------------------------------------
select tests.authenticate_as('user_a');
select tests.remember('hist', public.create_agent('history agent'));
select tests.remember('hist_grant', public.grant_agent_permission((tests.recall('hist') ->> 'id')::uuid, tests.world('a_clicksend')::uuid,
    '{sms}', p_daily_send_limit => 10, p_monthly_send_limit => 100, p_max_recipients_per_message => 10));
select tests.authenticate_as_service_role();
-- 400 days of use before today (7 a day) and 13 months before this one (90 a month), then
-- 3 today and 40 this month.
insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id, used)
select (tests.recall('hist_grant') ->> 'id')::uuid, 'grant', 'day', (now() at time zone 'utc')::date - d, tests.world('a_workspace')::uuid,
       tests.world('a_uid')::uuid, 7
from generate_series(1, 400) d
union all
select (tests.recall('hist_grant') ->> 'id')::uuid, 'grant', 'month', (date_trunc('month', (now() at time zone 'utc')::date) - m * interval '1 month')::date,
       tests.world('a_workspace')::uuid, tests.world('a_uid')::uuid, 90
from generate_series(1, 13) m
union all
select (tests.recall('hist_grant') ->> 'id')::uuid, 'grant', 'day', (now() at time zone 'utc')::date, tests.world('a_workspace')::uuid,
       tests.world('a_uid')::uuid, 3
union all
select (tests.recall('hist_grant') ->> 'id')::uuid, 'grant', 'month', date_trunc('month', (now() at time zone 'utc')::date)::date,
       tests.world('a_workspace')::uuid, tests.world('a_uid')::uuid, 40;

select is((select count(*)::integer from public.usage_counters where subject_id = (tests.recall('hist_grant') ->> 'id')::uuid), 415,
    'the grant has 415 counters: 401 days and 14 months');
select is((select e.limits ->> 'remaining_today' from private.agent_tool_entries((tests.recall('hist') ->> 'id')::uuid) e where e.name = 'sms_send'),
    '7', 'discovery: 7 of 10 left today, from today''s counter alone');
select is((select e.limits ->> 'remaining_this_month' from private.agent_tool_entries((tests.recall('hist') ->> 'id')::uuid) e where e.name = 'sms_send'),
    '60', '... and 60 of 100 left this month, from this month''s counter alone');
select matches((select e.description from private.agent_tool_entries((tests.recall('hist') ->> 'id')::uuid) e where e.name = 'sms_send'),
    '7 of 10 messages left today \(UTC\)\. 60 of 100 messages left this month \(UTC\)\.', '... which the tool''s description says');

select * from finish();
rollback;
