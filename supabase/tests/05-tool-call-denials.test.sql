/**
 * private.begin_tool_call (as service_role, the only role that may call it) refuses
 * every call the rules forbid, with the documented error code, and records each
 * refusal as an operation row (status 'denied', same error_code) in the user's log —
 * except when there is no user to attribute it to (unknown key, no identity).
 * Each case uses its own agent so that only one rule can be the reason.
 */
begin;
set local search_path = extensions, public;
select plan(65);

select from tests.seed_world();

-- ---- Scenario set-up, as user A through the RPCs ---------------------------------------------
select tests.authenticate_as('user_a');
select tests.remember('key_revoked', public.issue_agent_key(tests.world('a_agent')::uuid, 'to revoke'));
select public.revoke_agent_key((tests.recall('key_revoked') ->> 'id')::uuid);
select tests.remember('key_expired', public.issue_agent_key(tests.world('a_agent')::uuid, 'to expire', now() + interval '1 hour'));

select tests.remember(name, public.create_agent(name))
from unnest(array['ag_disabled', 'ag_revoked', 'ag_expired', 'ag_rules', 'ag_mail', 'ag_conn_off', 'ag_empty']) name;
select public.grant_agent_permission((tests.recall(name) ->> 'id')::uuid, tests.world('a_clicksend')::uuid, '{sms}')
from unnest(array['ag_disabled', 'ag_revoked', 'ag_expired']) name;
select tests.remember('ag_disabled_key', public.issue_agent_key((tests.recall('ag_disabled') ->> 'id')::uuid));
update public.agents set is_active = false where id = (tests.recall('ag_disabled') ->> 'id')::uuid;
select public.revoke_agent_permission(id) from public.agent_permissions where agent_id = (tests.recall('ag_revoked') ->> 'id')::uuid;
select public.update_agent_permission(id, '{"expires_at": "2000-01-01T00:00:00Z"}')
from public.agent_permissions where agent_id = (tests.recall('ag_expired') ->> 'id')::uuid;
select public.grant_agent_permission((tests.recall('ag_rules') ->> 'id')::uuid, tests.world('a_clicksend')::uuid, '{sms}',
    p_max_recipients_per_message => 2, p_allowed_recipients => '{+61}', p_blocked_recipients => '{+6149}');
select public.grant_agent_permission((tests.recall('ag_mail') ->> 'id')::uuid, tests.world('a_smtp')::uuid, '{email}',
    p_max_recipients_per_message => 5, p_allowed_recipients => '{example.com,*.corp.example}',
    p_blocked_recipients => '{ceo@example.com}');
select tests.remember('conn_off', public.create_connection('clicksend_sms', 'A to disable', '{"username":"u","api_key":"k"}'));
select public.grant_agent_permission((tests.recall('ag_conn_off') ->> 'id')::uuid, (tests.recall('conn_off') ->> 'id')::uuid, '{sms}');
select public.update_connection((tests.recall('conn_off') ->> 'id')::uuid, '{"status": "disabled"}');
select tests.remember('sms_only', public.create_connection('clicksend_sms', 'A sms only', '{"username":"u","api_key":"k"}', p_scopes => '{sms}'));

-- The expired key: issue_agent_key refuses a past expiry, so age it as the owner role.
select tests.reset_authentication();
update public.agent_keys set expires_at = now() - interval '1 second' where id = (tests.recall('key_expired') ->> 'id')::uuid;

-- ---- The calls, as service_role --------------------------------------------------------------
select tests.authenticate_as_service_role();

create temporary table calls (
    name text primary key, expect_code text, expect_reason text, expect_agent text,
    result jsonb
) on commit drop;

-- name, expected error code, expected details.reason, the agent the log row must name, the result
insert into calls (name, expect_code, expect_reason, expect_agent, result) values
('unknown key', 'unauthorized', null, null,
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256('swb_agent_not-a-real-key'::bytea), 'hex'),
                            p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('no identity', 'unauthorized', null, null,
    private.begin_tool_call('clicksend_send_sms', p_recipients => '{+61411111111}')),
('revoked key', 'unauthorized', null, 'a_agent',
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256(convert_to(tests.recall('key_revoked') ->> 'key', 'utf8')), 'hex'),
                            p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('expired key', 'unauthorized', null, 'a_agent',
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256(convert_to(tests.recall('key_expired') ->> 'key', 'utf8')), 'hex'),
                            p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('disabled agent (by key)', 'permission_denied', 'agent_disabled', 'ag_disabled',
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256(convert_to(tests.recall('ag_disabled_key') ->> 'key', 'utf8')), 'hex'),
                            p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('disabled agent (user + agent_id)', 'permission_denied', 'agent_disabled', 'ag_disabled',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_disabled') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('revoked grant', 'permission_denied', 'revoked', 'ag_revoked',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_revoked') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('expired grant', 'permission_denied', 'expired', 'ag_expired',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_expired') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('missing scope (mms not granted)', 'permission_denied', 'scope', 'a_agent',
    private.begin_tool_call('clicksend_send_mms', p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
                            p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('connection disabled', 'permission_denied', 'connection_inactive', 'ag_conn_off',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_conn_off') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('no grant at all', 'permission_denied', 'no_grant', 'ag_empty',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_empty') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('A''s key naming B''s connection', 'permission_denied', 'no_grant', 'a_agent',
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
                            p_connection_id => tests.world('b_clicksend')::uuid, p_recipients => '{+61411111111}', p_auth_mode => 'agent_key')),
('A''s key sending from B''s number', 'permission_denied', 'sender_not_allowed', 'a_agent',
    private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
                            p_recipients => '{+61411111111}', p_sender => '+61400000121', p_auth_mode => 'agent_key')),
('A''s key naming A''s team connection (no grant there)', 'permission_denied', 'no_grant', 'a_agent',
    private.begin_tool_call('sendgrid_send_email', p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
                            p_connection_id => tests.world('a_team_mail')::uuid, p_recipients => '{x@example.test}', p_auth_mode => 'agent_key')),
('unknown tool', 'not_found', null, 'a_agent',
    private.begin_tool_call('clicksend_delete_account', p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
                            p_auth_mode => 'agent_key')),
('too many recipients (3 > 2)', 'permission_denied', 'recipient_limit', 'ag_rules',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_rules') ->> 'id')::uuid,
                            p_recipients => '{+61411111111,+61411111112,+61411111113}', p_auth_mode => 'user_agent')),
('blocked E.164 prefix', 'permission_denied', 'recipient_not_allowed', 'ag_rules',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_rules') ->> 'id')::uuid,
                            p_recipients => '{+61491570006}', p_auth_mode => 'user_agent')),
('outside allowed E.164 prefix', 'permission_denied', 'recipient_not_allowed', 'ag_rules',
    private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_rules') ->> 'id')::uuid,
                            p_recipients => '{+61411111111,+14155550100}', p_auth_mode => 'user_agent')),
('email outside allowed domains', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{bob@example.com,eve@evil.test}', p_auth_mode => 'user_agent')),
('blocked exact address inside an allowed domain', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{ceo@example.com}', p_auth_mode => 'user_agent')),
('*.corp.example does not cover corp.example itself', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{x@corp.example}', p_auth_mode => 'user_agent')),
('*.corp.example does not cover notcorp.example', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{x@notcorp.example}', p_auth_mode => 'user_agent')),
('example.com does not cover example.com.evil.test', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{x@example.com.evil.test}', p_auth_mode => 'user_agent')),
('phone number against an e-mail-only allow list', 'permission_denied', 'recipient_not_allowed', 'ag_mail',
    private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                            p_recipients => '{+61411111111}', p_auth_mode => 'user_agent')),
('user acting directly, connection lacks the scope', 'permission_denied', 'scope', null,
    private.begin_tool_call('clicksend_get_balance', p_user_id => tests.world('a_uid')::uuid,
                            p_connection_id => (tests.recall('sms_only') ->> 'id')::uuid, p_auth_mode => 'user'));

-- Each call is refused with the documented code (and reason)...
select is(jsonb_build_object('ok', result -> 'ok', 'code', result #> '{error,code}', 'reason', result #> '{error,details,reason}'),
          jsonb_build_object('ok', false, 'code', expect_code, 'reason', expect_reason),
          'denied: ' || name)
from calls order by name;

-- ... and recorded as a denied operation in A's log, attributed to the right agent.
select results_eq(
    format('select status::text, error_code, user_id, agent_id from public.operations where id = %L', result ->> 'operation_id'),
    format('values (%L, %L, %L::uuid, %L::uuid)', 'denied', expect_code, tests.world('a_uid'),
           case when expect_agent is null then null
                when expect_agent like 'a\_%' then tests.world(expect_agent)
                else tests.recall(expect_agent) ->> 'id' end),
    'logged as denied: ' || name)
from calls where name not in ('unknown key', 'no identity') order by name;

select ok(result -> 'operation_id' = 'null'::jsonb, 'nothing to log (no user known): ' || name)
from calls where name in ('unknown key', 'no identity') order by name;

select is(result #>> '{error,details,recipient}', expect, 'the refusal names the first refused recipient: ' || name)
from calls join (values ('blocked E.164 prefix', '+61491570006'), ('outside allowed E.164 prefix', '+14155550100'),
                        ('email outside allowed domains', 'eve@evil.test'), ('blocked exact address inside an allowed domain', 'ceo@example.com'))
     v (n, expect) on v.n = calls.name order by name;

select ok(not (result ? 'credentials'), 'no credentials in a refusal: ' || name) from calls where name = 'revoked grant';

-- ---- The same rules let good calls through (the refusals above are not blanket) ------------------
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_rules') ->> 'id')::uuid,
                                  p_recipients => '{+61411111111,+61411111112}', p_auth_mode => 'user_agent') -> 'ok',
    'true'::jsonb, 'two +61 recipients, none blocked, within the per-message limit: allowed');
select is(private.begin_tool_call('smtp_send_email', p_user_id => tests.world('a_uid')::uuid, p_agent_id => (tests.recall('ag_mail') ->> 'id')::uuid,
                                  p_recipients => '{bob@example.com,x@sub.corp.example,y@a.b.corp.example}', p_auth_mode => 'user_agent') -> 'ok',
    'true'::jsonb, 'allowed domain and *.corp.example subdomains (any depth): allowed');
select tests.remember('key_ok', private.begin_tool_call('clicksend_send_sms',
    p_agent_key_hash => encode(sha256(convert_to(tests.world('a_key'), 'utf8')), 'hex'),
    p_recipients => '{+61411111111}', p_auth_mode => 'agent_key'));
select is(tests.recall('key_ok') #>> '{credentials,api_key}', tests.world('a_clicksend_secret'),
    'a valid agent key gets the call authorized with A''s decrypted credentials (service path only)');
select is(tests.recall('key_ok') ->> 'sender', '+61400000111', '... sending from A''s default number (the call named none)');
select results_eq(format('select status::text, auth_mode::text, agent_id, workspace_id, sender from public.operations where id = %L', tests.recall('key_ok') ->> 'operation_id'),
    format('values (%L, %L, %L::uuid, %L::uuid, %L)', 'pending', 'agent_key', tests.world('a_agent'), tests.world('a_workspace'), '+61400000111'),
    'the authorized call is logged as pending, by agent key, for A''s agent, in A''s workspace, with its sender');
select isnt(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('b_agent')::uuid,
                                    p_recipients => '{+61411111111}', p_auth_mode => 'user_agent') #>> '{error,code}',
    null, 'service call naming A as user but B''s agent is refused');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('b_agent')::uuid,
                                  p_recipients => '{+61411111111}', p_auth_mode => 'user_agent') #>> '{error,message}',
    'agent not found', '... with the same answer as a missing agent (no probing)');

-- B's log shows nothing of A's refusals; A's shows all of them.
select tests.remember('logged_denials', to_jsonb(count(*) + 2)) from calls where name not in ('unknown key', 'no identity');
select tests.authenticate_as('user_b');
select is((select count(*)::int from public.operations), 0, 'B''s log is empty: none of A''s refusals leak into it');
select is((select count(*)::int from public.operations where workspace_id = tests.world('a_workspace')::uuid or user_id = tests.world('a_uid')::uuid), 0,
    '... not even when B filters on A''s workspace or A''s id');
select tests.authenticate_as('user_a');
select is((select count(*)::int from public.operations where status = 'denied'), tests.world('logged_denials')::int,
    'A sees its own refusals in its log (every logged one, plus the two agent-mismatch probes)');

select * from finish();
rollback;
