/**
 * The steps of private.begin_tool_call, one by one (called as the owner role: they are
 * granted to nobody), so a regression points at the step that broke:
 *   agent_rights / member_rights   the intersection: grant ∩ connection ∩ member permission
 *   resolve_caller     key / user / user + agent → principal, agent, workspace, or a refusal
 *   resolve_right      which connection: one live right; dead ones never make a live one
 *                      ambiguous; several live → the default mail connection, else name one
 *   check_call_rules   dead right, scope, can_send, recipients per message, grant and member
 *                      recipient rules
 *   resolve_sender     `from` only for sends on connections with numbers
 *   replay_keyed_call  replay, conflict, in flight, presumed lost
 *   record_operation   PT409 for a key that won a race
 *   reserve_quota      all four counters or none
 *   give_back_quota    to the op's day and month, never below 0
 */
begin;
set local search_path = extensions, public;
select plan(82);

select from tests.seed_team();

/** A fresh call context: capability, caller, agent, recipients. */
create function tests.m24_ctx(p_capability text, p_user uuid, p_agent uuid default null, p_recipients text[] default '{}')
returns private.call_context
language sql
as $$ select row(p_capability, 'service', p_user, p_agent, null, null, null, null, p_recipients, '{}'::jsonb, null, null, null)::private.call_context $$;
create function tests.m24_provider(p_name text) returns public.service_providers
language sql as $$ select p from public.service_providers p where p.name = p_name $$;
create function tests.m24_capability(p_key text) returns public.integration_capabilities
language sql as $$ select c from public.integration_capabilities c where c.capability_key = p_key $$;
/** The right resolve_right picks for an agent (after resolve_caller), or its denial. */
create function tests.m24_resolve(p_capability text, p_user uuid, p_agent uuid, p_provider text, p_connection uuid default null, p_ref text default null)
returns private.call_context
language sql
as $$ select private.resolve_right(private.resolve_caller(tests.m24_ctx(p_capability, p_user, p_agent), null),
                                   tests.m24_provider(p_provider), p_connection, p_ref) $$;
/** One effective right of an agent on a connection. */
create function tests.m24_right(p_agent uuid, p_connection uuid) returns private.effective_right
language sql as $$ select r from private.agent_rights(p_agent) r where r.connection_id = p_connection $$;

select tests.remember('h_key', to_jsonb(encode(extensions.digest(tests.world('t_key'), 'sha256'), 'hex')));

-- =============================================================================================
-- agent_rights / member_rights: the intersection
-- =============================================================================================
select results_eq(format($$ select scopes, can_send, grant_daily_limit, grant_monthly_limit, member_daily_limit, member_monthly_limit,
                                  max_recipients_per_message, principal_role, member_permission_id, dead_reason
                           from private.agent_rights(%L) $$, tests.world('t_agent')),
    format($$ values ('{sms,balance}'::text[], true, 3, 10, 5, 20, 10, 'member'::text, %L::uuid, null::text) $$, tests.world('t_sender_permission')),
    'agent_rights(the sender''s agent): scopes sms+balance, can_send, grant 3/10 and member 5/20 limits, live');
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_send => false, p_scopes => '{balance,history}',
    p_daily_send_limit => 7, p_expires_at => now() + interval '2 days', p_allowed_recipients => '{+61}', p_blocked_recipients => '{+6149}');
select tests.reset_authentication();
update public.agent_permissions set expires_at = now() + interval '1 day', allowed_recipients = '{+614}' where id = tests.world('t_grant')::uuid;
select results_eq(format($$ select scopes, can_send, member_daily_limit, member_monthly_limit, expires_at = now() + interval '1 day',
                                  allowed_recipients, member_allowed_recipients, member_blocked_recipients
                           from private.agent_rights(%L) $$, tests.world('t_agent')),
    $$ values ('{balance}'::text[], false, 7, null::integer, true, '{+614}'::text[], '{+61}'::text[], '{+6149}'::text[]) $$,
    'after the member''s permission narrows: scopes = grant {sms,balance} ∩ member {balance,history} = {balance}, no sending, the member''s new limits, the earlier expiry (the grant''s), both recipient lists');
update public.agent_permissions set expires_at = now() + interval '3 days' where id = tests.world('t_grant')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).expires_at, now() + interval '2 days',
    '... and when the member''s expiry is the earlier one, it is the right''s expiry');

select tests.authenticate_as('team_owner');
select tests.remember('owner_agent', public.create_agent('Owner agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('owner_grant', public.grant_agent_permission(tests.world('owner_agent')::uuid, tests.world('t_clicksend')::uuid, '{sms,history}',
    p_daily_send_limit => null) -> 'id');
select tests.reset_authentication();
select results_eq(format($$ select scopes, can_send, member_permission_id, member_daily_limit, principal_role, dead_reason from private.agent_rights(%L) $$, tests.world('owner_agent')),
    $$ values ('{sms,history}'::text[], true, null::uuid, null::integer, 'owner'::text, null::text) $$,
    'agent_rights(the owner''s agent): its grant alone (no member part), may send');

select results_eq(format($$ select scopes, can_send, member_daily_limit, grant_id, max_recipients_per_message, dead_reason
                           from private.member_rights(%L, %L) $$, tests.world('t_viewer'), (tests.m24_provider('clicksend_sms')).id),
    $$ values ('{balance}'::text[], false, null::integer, null::uuid, 10000, null::text) $$,
    'member_rights(team_viewer, ClickSend): their member scopes, no sending, no grant');
select is((select count(*)::int from private.member_rights(tests.world('t_nobody')::uuid, (tests.m24_provider('clicksend_sms')).id)), 0,
    'member_rights(team_nobody): no permission, no right at all');
select results_eq(format($$ select scopes, can_send, member_daily_limit from private.member_rights(%L, %L) $$, tests.world('t_admin'), (tests.m24_provider('clicksend_sms')).id),
    $$ values ('{sms,mms,balance,history}'::text[], true, null::integer) $$, 'member_rights(team_admin): everything the connection grants, no limits');
select is((select count(*)::int from private.member_rights(tests.world('t_removed')::uuid, (tests.m24_provider('clicksend_sms')).id)), 0,
    'member_rights(the removed member): nothing');

-- Dead reasons, in the order a user would fix them.
update public.member_permissions set expires_at = now() - interval '1 second' where id = tests.world('t_sender_permission')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'member_permission_expired',
    'dead reason: the member''s permission expired');
update public.member_permissions set expires_at = null, can_view = false, can_send = false, can_configure = false where id = tests.world('t_sender_permission')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'no_member_permission',
    'dead reason: the member may not even view the connection');
update public.member_permissions set can_view = true where id = tests.world('t_sender_permission')::uuid;
update public.connections set status = 'disabled' where id = tests.world('t_clicksend')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'connection_inactive',
    'dead reason: the connection is disabled');
update public.agent_permissions set expires_at = now() - interval '1 second' where id = tests.world('t_grant')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'expired',
    'dead reason: the grant expired (before the connection)');
update public.agent_permissions set is_active = false where id = tests.world('t_grant')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'revoked', 'dead reason: the grant is revoked');
update public.agents set is_active = false where id = tests.world('t_agent')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'agent_disabled', 'dead reason: the agent is disabled (first)');
select is((tests.m24_right(tests.world('t_removed_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'agent_disabled',
    'the removed member''s agent: disabled by the removal');
update public.agents set is_active = true where id = tests.world('t_removed_agent')::uuid;
select is((tests.m24_right(tests.world('t_removed_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, 'principal_not_member',
    '... and re-enabled, still dead: principal_not_member');
-- Restore the fixture.
update public.agents set is_active = true where id = tests.world('t_agent')::uuid;
update public.agent_permissions set is_active = true, revoked_at = null, expires_at = null, allowed_recipients = '{}' where id = tests.world('t_grant')::uuid;
update public.connections set status = 'active' where id = tests.world('t_clicksend')::uuid;
update public.member_permissions set can_send = true, scopes = '{sms,balance}', daily_send_limit = 5, monthly_send_limit = 20, expires_at = null,
    allowed_recipients = '{}', blocked_recipients = '{}' where id = tests.world('t_sender_permission')::uuid;
update public.connections set deleted_at = now() where id = tests.world('o_clicksend')::uuid;
select is((tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)).dead_reason, null, 'restored: the sender''s agent''s right is live again');

-- =============================================================================================
-- resolve_caller
-- =============================================================================================
select is((private.resolve_caller(tests.m24_ctx('clicksend_send_sms', null), encode(extensions.digest('swb_agent_nope', 'sha256'), 'hex'))).denial,
    '{"ok": false, "operation_id": null, "error": {"code": "unauthorized", "message": "invalid agent key", "details": null}}'::jsonb,
    'resolve_caller: an unknown key → unauthorized, nothing recorded (no one to record it for)');
select is((private.resolve_caller(tests.m24_ctx('clicksend_send_sms', null), null)).denial #>> '{error,message}', 'no caller identity',
    'resolve_caller: neither key nor user → unauthorized "no caller identity"');
select tests.remember('rc_key', to_jsonb(private.resolve_caller(tests.m24_ctx('clicksend_send_sms', null), tests.world('h_key'))));
select results_eq($$ select r ->> 'user_id', r ->> 'agent_id', r ->> 'workspace_id', r ->> 'denial' from (select tests.recall('rc_key') r) x $$,
    format($$ values (%L, %L, %L, null::text) $$, tests.world('t_sender'), tests.world('t_agent'), tests.world('t_workspace')),
    'resolve_caller: the sender''s agent key → principal team_sender, the agent, workspace Acme');
select isnt((select last_used_at from public.agent_keys where agent_id = tests.world('t_agent')::uuid), null, '... and the key''s last use is recorded');
select results_eq(format($$ select (c).user_id::text, (c).workspace_id::text, (c).denial #>> '{error,code}' from (select private.resolve_caller(tests.m24_ctx('x', %L), null) c) x $$, tests.world('t_admin')),
    format($$ select %L, (select id::text from public.workspaces where personal and primary_owner_user_id = %L), null::text $$, tests.world('t_admin'), tests.world('t_admin')),
    'resolve_caller: a user acting directly → themselves, in their personal workspace until a connection is chosen');
select results_eq(format($$ select (c).agent_id, (c).workspace_id, (c).denial #>> '{error,code}' from (select private.resolve_caller(tests.m24_ctx('x', %L, %L), null) c) x $$,
                         tests.world('t_viewer'), tests.world('t_agent')),
    format($$ select null::uuid, (select id from public.workspaces where personal and primary_owner_user_id = %L), 'not_found'::text $$, tests.world('t_viewer')),
    'resolve_caller: a user naming another member''s agent → not_found (agent dropped, recorded in their own personal workspace)');
select is((select count(*)::int from public.operations where user_id = tests.world('t_viewer')::uuid and error_code = 'not_found'
              and workspace_id <> tests.world('t_workspace')::uuid), 1, '... the denial is recorded for the caller, not in Acme');
update public.agent_keys set revoked_at = now() where agent_id = tests.world('t_agent')::uuid;
select is((private.resolve_caller(tests.m24_ctx('x', null), tests.world('h_key'))).denial #>> '{error,message}', 'agent key revoked', 'resolve_caller: a revoked key');
update public.agent_keys set revoked_at = null, expires_at = now() - interval '1 second' where agent_id = tests.world('t_agent')::uuid;
select is((private.resolve_caller(tests.m24_ctx('x', null), tests.world('h_key'))).denial #>> '{error,message}', 'agent key expired', 'resolve_caller: an expired key');
update public.agent_keys set expires_at = null where agent_id = tests.world('t_agent')::uuid;
update public.agents set is_active = false where id = tests.world('t_agent')::uuid;
select is((private.resolve_caller(tests.m24_ctx('x', null), tests.world('h_key'))).denial #>> '{error,details,reason}', 'agent_disabled', 'resolve_caller: a disabled agent');
update public.agents set is_active = true where id = tests.world('t_agent')::uuid;
select is((private.resolve_caller(tests.m24_ctx('x', tests.world('t_removed')::uuid, tests.world('t_removed_agent')::uuid), null)).denial #>> '{error,details,reason}',
    'principal_not_member', 'resolve_caller: the removed member driving their (re-enabled) agent → principal_not_member');

-- =============================================================================================
-- resolve_right
-- =============================================================================================
select results_eq(format($$ select (c).connection_id, (c).grant_id, (c).member_permission_id, (c).workspace_id, (c).denial
                           from (select tests.m24_resolve('clicksend_send_sms', %L, %L, 'clicksend_sms') c) x $$, tests.world('t_sender'), tests.world('t_agent')),
    format($$ values (%L::uuid, %L::uuid, %L::uuid, %L::uuid, null::jsonb) $$, tests.world('t_clicksend'), tests.world('t_grant'), tests.world('t_sender_permission'), tests.world('t_workspace')),
    'resolve_right: one grant → its connection, grant, member permission and workspace');
select is((tests.m24_resolve('smtp_send_email', tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, 'smtp')).denial #>> '{error,details,reason}', 'no_grant',
    'resolve_right: no grant on a provider → no_grant');

select tests.authenticate_as('team_owner');
select tests.remember('cs2', public.create_connection('clicksend_sms', 'Acme ClickSend two', '{"username":"two","api_key":"acme-two-secret"}',
    p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('smtp2', public.create_connection('smtp', 'Acme SMTP two', '{"username":"two","password":"acme-smtp-two"}',
    '{"host":"smtp2.example.test","port":465,"security":"tls","from_email":"two@acme.test"}', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.remember('owner_grant2', public.grant_agent_permission(tests.world('owner_agent')::uuid, tests.world('cs2')::uuid, '{sms}') -> 'id');
select public.grant_agent_permission(tests.world('owner_agent')::uuid, c, '{email}') from unnest(array[tests.world('t_smtp')::uuid, tests.world('smtp2')::uuid]) c;
select tests.reset_authentication();

select is((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms')).denial -> 'error',
    '{"code": "invalid_request", "message": "2 ClickSend SMS/MMS connections are available; name one with connection_id", "details": {"reason": "ambiguous_connection"}}'::jsonb,
    'resolve_right: two live ClickSend grants, none named → ambiguous_connection');
select is((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms', tests.world('cs2')::uuid)).connection_id::text,
    tests.world('cs2'), '... naming one by id picks it');
select is((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms', null, upper(left(tests.world('cs2'), 8)))).connection_id::text,
    tests.world('cs2'), '... naming one by its id prefix (any case) picks it');
select is((tests.m24_resolve('smtp_send_email', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'smtp')).connection_id::text,
    tests.world('t_smtp'), 'resolve_right: two live SMTP grants, none named → the workspace''s default mail connection');
update public.agent_permissions set is_active = false where id = tests.world('owner_grant2')::uuid;
select is((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms')).connection_id::text,
    tests.world('t_clicksend'), 'resolve_right: a revoked grant does not make the live one ambiguous');
select is(((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms', tests.world('cs2')::uuid)).effective).dead_reason,
    'revoked', '... and naming the revoked one resolves to it, dead (check_call_rules refuses it with its reason)');
update public.agent_permissions set is_active = false where id = tests.world('owner_grant')::uuid;
select is((tests.m24_resolve('clicksend_send_sms', tests.world('t_owner')::uuid, tests.world('owner_agent')::uuid, 'clicksend_sms')).denial #>> '{error,code}',
    'permission_denied', 'resolve_right: with both ClickSend grants revoked, the caller is refused (not asked to pick one of two dead connections)');

-- A member acting directly with mail connections in two workspaces, each its workspace's default.
select tests.authenticate_as('team_admin');
select tests.remember('admin_personal_smtp', public.create_connection('smtp', 'Admin personal SMTP', '{"username":"p","password":"admin-personal-smtp"}',
    '{"host":"smtp.example.test","port":465,"security":"tls","from_email":"admin@example.test"}') -> 'id');
select tests.reset_authentication();
create function tests.m24_try_resolve(p_capability text, p_user uuid, p_provider text) returns jsonb
language plpgsql as $$
begin
    return to_jsonb(tests.m24_resolve(p_capability, p_user, null, p_provider));
exception when others then
    return jsonb_build_object('sqlstate', sqlstate, 'message', sqlerrm);
end $$;
select is(tests.m24_try_resolve('smtp_send_email', tests.world('t_admin')::uuid, 'smtp') -> 'sqlstate', null,
    'resolve_right: team_admin acting directly, with a default SMTP connection in Acme and in their personal workspace, gets an answer (no internal error)');
select is(tests.m24_try_resolve('smtp_send_email', tests.world('t_admin')::uuid, 'smtp') #>> '{denial,error,details,reason}', 'ambiguous_connection',
    '... which is ambiguous_connection: two workspaces, two defaults');
select is((tests.m24_resolve('smtp_send_email', tests.world('t_admin')::uuid, null, 'smtp', tests.world('admin_personal_smtp')::uuid)).workspace_id,
    (select id from public.workspaces where personal and primary_owner_user_id = tests.world('t_admin')::uuid),
    '... and naming the personal one resolves to the personal workspace');

-- =============================================================================================
-- check_call_rules
-- =============================================================================================
create function tests.m24_rules(p_right private.effective_right, p_capability text, p_recipients text[] default '{+61400000001}', p_agent uuid default null)
returns jsonb
language sql
as $$ select private.check_call_rules(tests.m24_ctx(p_capability, null, coalesce(p_agent, tests.world('t_agent')::uuid), p_recipients), p_right,
                                      tests.m24_capability(p_capability)) $$;
create function tests.m24_with(p_right private.effective_right, p_changes jsonb) returns private.effective_right
language sql as $$ select jsonb_populate_record(p_right, p_changes) $$;
select tests.remember('right', to_jsonb(tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid)));

select is(tests.m24_rules(jsonb_populate_record(null::private.effective_right, tests.recall('right')), 'clicksend_send_sms'), null,
    'check_call_rules: the live right, a held scope, can_send, one allowed recipient → no refusal');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')),
                                         jsonb_build_object('dead_reason', 'member_permission_expired', 'expires_at', '2020-01-01T00:00:00Z')), 'clicksend_send_sms') -> 'error',
    '{"code": "permission_denied", "message": "the member''s permission on this connection expired", "details": {"reason": "member_permission_expired", "expired_at": "2020-01-01T00:00:00+00:00"}}'::jsonb,
    'check_call_rules: a dead right → its reason (and when it expired)');
select is(tests.m24_rules(jsonb_populate_record(null::private.effective_right, tests.recall('right')), 'clicksend_send_mms') #> '{error,details}',
    '{"reason": "scope", "required_scope": "mms"}'::jsonb, 'check_call_rules: a scope the right lacks (mms) → scope');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"can_send": false}'), 'clicksend_send_sms') #>> '{error,details,reason}',
    'member_cannot_send', 'check_call_rules: a send when the member may not send → member_cannot_send');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"can_send": false}'), 'clicksend_get_balance'),
    null, '... while a read-only tool passes without can_send');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"max_recipients_per_message": 2}'), 'clicksend_send_sms',
                          '{+61400000001,+61400000002,+61400000003}') #> '{error,details}',
    '{"reason": "recipient_limit", "max_recipients_per_message": 2}'::jsonb, 'check_call_rules: 3 recipients over a maximum of 2 → recipient_limit');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"allowed_recipients": ["+614"]}'), 'clicksend_send_sms',
                          '{+61400000001,+15550100}') #> '{error,details}',
    '{"reason": "recipient_not_allowed", "recipient": "+15550100"}'::jsonb, 'check_call_rules: a recipient outside the grant''s allowed list → recipient_not_allowed, naming it');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"blocked_recipients": ["+6140000000"]}'), 'clicksend_send_sms') #>> '{error,details,recipient}',
    '+61400000001', 'check_call_rules: a recipient on the grant''s blocked list → refused');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')), '{"member_allowed_recipients": ["+1"]}'), 'clicksend_send_sms') #>> '{error,details,reason}',
    'recipient_not_allowed', 'check_call_rules: a recipient outside the member''s allowed list → refused (the grant''s lists being empty)');
select is(tests.m24_rules(tests.m24_with(jsonb_populate_record(null::private.effective_right, tests.recall('right')),
                                         '{"allowed_recipients": ["+61"], "member_blocked_recipients": ["+614000"]}'), 'clicksend_send_sms') #>> '{error,details,reason}',
    'recipient_not_allowed', 'check_call_rules: allowed by the grant but blocked by the member → refused (both lists apply)');
select is(private.check_call_rules(jsonb_populate_record(tests.m24_ctx('clicksend_send_mms', tests.world('t_sender')::uuid, tests.world('t_agent')::uuid), jsonb_build_object('workspace_id', tests.world('t_workspace'))),
                                   jsonb_populate_record(null::private.effective_right, tests.recall('right')), tests.m24_capability('clicksend_send_mms')) ->> 'operation_id' is not null,
    true, 'check_call_rules: with a known caller and workspace the refusal is recorded as a denied operation');

-- =============================================================================================
-- resolve_sender
-- =============================================================================================
create function tests.m24_sender(p_capability text, p_user uuid, p_connection uuid, p_from text) returns private.call_context
language sql as $$ select private.resolve_sender(jsonb_populate_record(tests.m24_ctx(p_capability, p_user), jsonb_build_object('connection_id', p_connection)),
                                                 tests.m24_capability(p_capability), p_from) $$;
select is((tests.m24_sender('clicksend_get_balance', tests.world('t_sender')::uuid, tests.world('t_clicksend')::uuid, 'Anything')).sender, 'Anything',
    'resolve_sender: a tool that does not send takes no number (the value passes untouched, no refusal)');
select is((tests.m24_sender('clicksend_send_sms', tests.world('t_sender')::uuid, tests.world('t_clicksend')::uuid, '+61400000300')).denial #>> '{error,details,reason}',
    'sender_not_allowed', 'resolve_sender: a member naming another member''s number → sender_not_allowed');
select is((tests.m24_sender('clicksend_send_sms', tests.world('t_sender')::uuid, tests.world('t_clicksend')::uuid, null)).sender, '+61400000100',
    'resolve_sender: no from → the member''s default');
select is((tests.m24_sender('clicksend_send_sms', tests.world('t_admin')::uuid, tests.world('cs2')::uuid, 'AcmeTag')).sender, 'AcmeTag',
    'resolve_sender: a connection without numbers passes from through');

-- =============================================================================================
-- record_operation and replay_keyed_call
-- =============================================================================================
create function tests.m24_keyed(p_capability text default 'clicksend_send_sms') returns private.call_context
language sql as $$ select jsonb_populate_record(tests.m24_ctx(p_capability, tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, '{+61400000001}'),
                                              jsonb_build_object('workspace_id', tests.world('t_workspace'), 'connection_id', tests.world('t_clicksend'),
                                                                 'grant_id', tests.world('t_grant'), 'member_permission_id', tests.world('t_sender_permission'))) $$;
select is(private.replay_keyed_call(tests.m24_keyed(), null, 'h1'), null, 'replay_keyed_call: no key → nothing to replay');
select is(private.replay_keyed_call(tests.m24_keyed(), 'key-1', 'h1'), null, 'replay_keyed_call: a new key → nothing to replay');
select tests.remember('op1', to_jsonb(private.record_operation(tests.m24_keyed(), 1, '+61400000100', 'key-1', 'h1')));
select results_eq(format($$ select status::text, quota_reserved, sender, idempotency_key::text, user_id, agent_id from public.operations where id = %L $$, tests.world('op1')),
    format($$ values ('pending'::text, 1, '+61400000100'::text, 'key-1'::text, %L::uuid, %L::uuid) $$, tests.world('t_sender'), tests.world('t_agent')),
    'record_operation: a pending row with its reservation, sender and key, for the principal and agent');
select throws_ok($$ select private.record_operation(tests.m24_keyed(), 1, null, 'key-1', 'h1') $$, 'PT409', 'a call with this idempotency key is already in progress',
    'record_operation: the same key again (a race it lost) → PT409');
select is(private.replay_keyed_call(tests.m24_keyed(), 'key-1', 'h1') #>> '{error,code}', 'conflict', 'replay_keyed_call: the same key while in flight → conflict');
select ok((private.replay_keyed_call(tests.m24_keyed(), 'key-1', 'h1') #>> '{error,details,retry_after}')::integer between 1 and 5, '... with retry_after 1-5 s');
select is(private.replay_keyed_call(tests.m24_keyed(), 'key-1', 'h2') #>> '{error,message}', 'idempotency key was used with a different request',
    'replay_keyed_call: the key with a different request → conflict');
select is(private.replay_keyed_call(tests.m24_keyed('clicksend_send_mms'), 'key-1', 'h1') #>> '{error,code}', 'conflict',
    'replay_keyed_call: the key for another tool → conflict');
select private.finish_tool_call(tests.world('op1')::uuid, 'succeeded', 1, '{msg-1}', '{"sent": 1}');
select is(private.replay_keyed_call(tests.m24_keyed(), 'key-1', 'h1') - 'operation_id',
    '{"ok": true, "replay": true, "status": "succeeded", "response": {"sent": 1}, "error": null}'::jsonb,
    'replay_keyed_call: the key of a finished call → its recorded outcome, replayed');
select tests.remember('op2', to_jsonb(private.record_operation(tests.m24_keyed(), 1, null, 'key-2', 'h1')));
update public.operations set created_at = now() - interval '1 hour' where id = tests.world('op2')::uuid;
select is(private.replay_keyed_call(tests.m24_keyed(), 'key-2', 'h1') ->> 'status', 'unknown',
    'replay_keyed_call: a keyed call pending past the deadline is presumed lost: closed as unknown and replayed');
select is((select quota_used from public.operations where id = tests.world('op2')::uuid), 1, '... keeping its quota');

-- =============================================================================================
-- reserve_quota and give_back_quota
-- =============================================================================================
create function tests.m24_counters() returns integer[]
language sql as $$
    select array[tests.counter_used(tests.world('t_grant')::uuid, 'day', (now() at time zone 'utc')::date), tests.counter_used(tests.world('t_grant')::uuid, 'month', date_trunc('month', (now() at time zone 'utc')::date)::date),
                 tests.counter_used(tests.world('t_sender_permission')::uuid, 'day', (now() at time zone 'utc')::date), tests.counter_used(tests.world('t_sender_permission')::uuid, 'month', date_trunc('month', (now() at time zone 'utc')::date)::date)] $$;
select tests.remember('before', to_jsonb(tests.m24_counters()));
select is(private.reserve_quota(tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid), 2, (now() at time zone 'utc')::date), null,
    'reserve_quota: 2 within every limit → reserved');
select is(tests.m24_counters(), array(select (jsonb_array_elements_text(tests.recall('before')))::integer + 2), '... on all four counters');
select tests.reset_authentication();
update public.usage_counters set used = 0 where subject_id = tests.world('t_grant')::uuid and period = 'day';
update public.usage_counters set used = 19 where subject_id = tests.world('t_sender_permission')::uuid and period = 'month';
select tests.remember('before2', to_jsonb(tests.m24_counters()));
select is(private.reserve_quota(tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid), 1, (now() at time zone 'utc')::date) - 'resets_at',
    null::jsonb, 'reserve_quota: 1 more with the member at 19 of 20 this month → reserved');
select is(private.reserve_quota(tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid), 1, (now() at time zone 'utc')::date) - 'resets_at',
    '{"limit": "member_monthly", "limit_value": 20, "used": 20, "requested": 1}'::jsonb,
    'reserve_quota: the next one → refused by member_monthly (the last counter), with the numbers');
select is(tests.m24_counters(), array(select (jsonb_array_elements_text(tests.recall('before2')))::integer + 1),
    '... and the three counters it had taken first are given back (only the allowed one counted)');
select is(private.reserve_quota(tests.m24_right(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid), 4, (now() at time zone 'utc')::date) ->> 'limit', 'agent_daily',
    'reserve_quota: a request larger than the agent''s daily room → agent_daily (checked first)');
select is(private.reserve_quota(tests.m24_right(tests.world('owner_agent')::uuid, tests.world('t_clicksend')::uuid), 50, (now() at time zone 'utc')::date),
    null, 'reserve_quota: the owner''s agent without limits and without a member permission → reserved on its grant only');
select is((select count(*)::int from public.usage_counters where user_id = tests.world('t_owner')::uuid and subject = 'member'), 0, '... no member counter for the owner');

select tests.remember('gb_op', to_jsonb(private.record_operation(tests.m24_keyed(), 3, null, null, null)));
update public.usage_counters set used = 1 where subject_id in (tests.world('t_grant')::uuid, tests.world('t_sender_permission')::uuid);
insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id, used)
values (tests.world('t_grant')::uuid, 'grant', 'day', (now() at time zone 'utc')::date - 1, tests.world('t_workspace')::uuid, tests.world('t_sender')::uuid, 7);
select private.give_back_quota(o, 3) from public.operations o where o.id = tests.world('gb_op')::uuid;
select is(tests.m24_counters(), '{0,0,0,0}'::integer[], 'give_back_quota: giving back 3 to counters at 1 stops at 0 (never negative)');
select is(tests.counter_used(tests.world('t_grant')::uuid, 'day', (now() at time zone 'utc')::date - 1), 7, '... and another day''s counter is untouched');

-- ---- Time-ordered operation ids ----
select is(get_byte(uuid_send(private.uuid_v7()), 6) >> 4, 7, 'uuid_v7: the version nibble is 7');
select is(get_byte(uuid_send(private.uuid_v7()), 8) >> 6, 2, 'uuid_v7: the variant bits are 10 (RFC 9562)');
select ok(abs(('x' || substr(replace(private.uuid_v7()::text, '-', ''), 1, 12))::bit(48)::bigint
              - floor(extract(epoch from clock_timestamp()) * 1000)::bigint) < 1000,
          'uuid_v7: the first 48 bits are the current Unix time in milliseconds');
select tests.remember('v7_first', to_jsonb(private.uuid_v7()));
select pg_sleep(0.002);
select ok(private.uuid_v7() > tests.world('v7_first')::uuid, 'uuid_v7: an id made a millisecond later sorts after an earlier one');
select is((select count(distinct id)::int from (select private.uuid_v7() as id from generate_series(1, 5000)) ids), 5000,
          'uuid_v7: 5 000 ids made in a row are all distinct');
select is(get_byte(uuid_send(private.record_operation(tests.m24_keyed(), 1, null, null, null)), 6) >> 4, 7,
          'record_operation: the ledger''s ids are time-ordered (version 7)');

select * from finish();
rollback;
