/**
 * Who a message goes out from.
 *   Numbers: a send's `from` must be a number of the connection the principal may use
 *   (assigned to them or in the pool; owners and admins any active number); without
 *   one: the member's default → the connection's default → the first usable number;
 *   inactive numbers are never chosen; a connection without numbers passes `from`
 *   through. One default number per connection; reassigning a number drops the old
 *   member's default; an assignee must be a member.
 *   Mail: sender identities only on mail connections, one default per connection; a
 *   workspace with mail connections has exactly one default mail connection (the first
 *   one; set_default_mail_connection switches; deleting it promotes the oldest
 *   remaining; a direct update leaving zero or two fails by commit), and a mail send
 *   that names no connection uses it when several are granted.
 * Fixture numbers on Acme ClickSend: +61400000100 team_sender's (their default),
 * +61400000200 pool (the connection's default), +61400000300 team_admin's.
 */
begin;
set local search_path = extensions, public;
select plan(61);

select from tests.seed_team();

/** An SMS through Acme ClickSend as p_user (with p_agent, or directly), from p_from. */
create function tests.m22_sms(p_user uuid, p_agent uuid, p_from text default null, p_connection uuid default null) returns jsonb
language sql
as $$
    select private.begin_tool_call('clicksend_send_sms', p_user_id => p_user, p_agent_id => p_agent, p_connection_id => p_connection,
        p_recipients => '{+61499999999}', p_auth_mode => case when p_agent is null then 'user' else 'user_agent' end, p_sender => p_from)
$$;
/** 'ok' or the SQLSTATE the statement raised. */
create function tests.m22_try(p_sql text) returns text
language plpgsql
as $$
begin
    execute p_sql;
    return 'ok';
exception when others then
    return sqlstate;
end
$$;
grant execute on function tests.m22_sms(uuid, uuid, text, uuid), tests.m22_try(text) to authenticated, service_role;
-- Sends here are about numbers, not quota: lift the fixture's send limits.
update public.agent_permissions set daily_send_limit = null, monthly_send_limit = null where id = tests.world('t_grant')::uuid;
update public.member_permissions set daily_send_limit = null, monthly_send_limit = null where id = tests.world('t_sender_permission')::uuid;

-- =============================================================================================
-- A named `from`
-- =============================================================================================
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, f) ->> code_or_sender, expect,
          'team_sender''s agent sending from ' || what)
from (values
    ('their own number → sent from it', '+61400000100', 'sender', '+61400000100'),
    ('the pool number → sent from it', '+61400000200', 'sender', '+61400000200'),
    ('team_admin''s number → refused', '+61400000300', 'ok', 'false'),
    ('a number not on the connection → refused', '+61400000999', 'ok', 'false'),
    ('an alphanumeric tag on a connection with numbers → refused', 'AcmeSMS', 'ok', 'false')
) as v (what, f, code_or_sender, expect);
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, '+61400000300') -> 'error',
    '{"code": "permission_denied", "message": "+61400000300 is not a number this agent may send from", "details": {"reason": "sender_not_allowed", "from": "+61400000300"}}'::jsonb,
    'the refusal says sender_not_allowed and names the number');
select is(tests.m22_sms(tests.world('t_sender')::uuid, null, '+61400000300') #>> '{error,details,reason}', 'sender_not_allowed',
    'team_sender sending directly from team_admin''s number → sender_not_allowed');
select is(tests.m22_sms(tests.world('t_admin')::uuid, null, '+61400000100') ->> 'sender', '+61400000100',
    'team_admin may send from team_sender''s number (admins use any active number)');
select is(tests.m22_sms(tests.world('t_owner')::uuid, null, '+61400000300') ->> 'sender', '+61400000300',
    'the owner may send from team_admin''s number');
select is(tests.m22_sms(tests.world('t_owner')::uuid, null, 'AcmeSMS') #>> '{error,details,reason}', 'sender_not_allowed',
    '... but not from an alphanumeric tag on a connection with numbers');

-- =============================================================================================
-- No `from`: member default → connection default → first usable; inactive never
-- =============================================================================================
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid) ->> 'sender', '+61400000100',
    'no from: team_sender''s agent sends from team_sender''s member default (their number)');
select is(tests.m22_sms(tests.world('t_admin')::uuid, null) ->> 'sender', '+61400000200',
    'no from: team_admin (no member default) sends from the connection''s default (pool)');
select tests.authenticate_as('team_admin');
select public.set_member_default_number(tests.world('t_number_admin')::uuid);
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_admin')::uuid, null) ->> 'sender', '+61400000300',
    'after team_admin sets their own default, they send from it (member default before connection default)');
select tests.reset_authentication();
delete from public.member_default_numbers where user_id = tests.world('t_sender')::uuid;
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid) ->> 'sender', '+61400000200',
    'without a member default, team_sender''s agent sends from the connection''s default (pool)');

select tests.authenticate_as('team_admin');
select public.update_phone_number(tests.world('t_number_pool')::uuid, '{"status": "inactive"}');
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid) ->> 'sender', '+61400000100',
    'with the (default) pool number inactive, team_sender''s agent sends from the first number they may use (their own)');
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, '+61400000200') #>> '{error,details,reason}', 'sender_not_allowed',
    'naming the inactive pool number is refused');
select is(tests.m22_sms(tests.world('t_owner')::uuid, null, '+61400000200') #>> '{error,details,reason}', 'sender_not_allowed',
    '... even for the owner');
select ok(tests.m22_sms(tests.world('t_owner')::uuid, null) ->> 'sender' in ('+61400000100', '+61400000300'),
    'the owner (no default, connection default inactive) sends from an active number, never the inactive default');

select tests.authenticate_as('team_admin');
select public.update_phone_number(tests.world('t_number_sender')::uuid, '{"status": "inactive"}');
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid) #>> '{error,details,reason}', 'no_sender_number',
    'with the pool and their own number inactive, team_sender has no number to send from (never an inactive one, never the admin''s)');
select tests.authenticate_as('team_admin');
select public.update_phone_number(id, '{"status": "active"}') from public.phone_numbers where workspace_id = tests.world('t_workspace')::uuid;

-- The member default goes when its number can no longer be used.
select tests.authenticate_as('team_sender');
select public.set_member_default_number(tests.world('t_number_sender')::uuid);
select tests.authenticate_as('team_admin');
select public.update_phone_number(tests.world('t_number_sender')::uuid, '{"status": "inactive"}');
select is((select count(*)::int from public.member_default_numbers where user_id = tests.world('t_sender')::uuid), 0,
    'a number made inactive stops being anyone''s member default');
select public.update_phone_number(tests.world('t_number_sender')::uuid, '{"status": "active"}');
select tests.authenticate_as('team_sender');
select public.set_member_default_number(tests.world('t_number_sender')::uuid);
select tests.authenticate_as('team_admin');
select public.update_phone_number(tests.world('t_number_sender')::uuid, jsonb_build_object('assigned_to', tests.world('t_viewer')));
select is((select count(*)::int from public.member_default_numbers where user_id = tests.world('t_sender')::uuid), 0,
    'reassigning team_sender''s number to team_viewer drops team_sender''s default on it');
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_sender')::uuid, tests.world('t_agent')::uuid, '+61400000100') #>> '{error,details,reason}', 'sender_not_allowed',
    '... and team_sender''s agent may no longer send from it');

-- Setting a member default: only a number the member may send from.
select tests.authenticate_as('team_sender');
select is(tests.m22_try(format('select public.set_member_default_number(%L)', tests.world('t_number_admin'))), '42501',
    'team_sender cannot make team_admin''s number their default (42501)');
select is(tests.m22_try(format('select public.set_member_default_number(%L, %L)', tests.world('t_number_pool'), tests.world('t_viewer'))), '42501',
    'team_sender cannot set team_viewer''s default (admins only)');
select tests.authenticate_as('team_viewer');
select is(tests.m22_try(format('select public.set_member_default_number(%L)', tests.world('t_number_pool'))), '42501',
    'team_viewer (no can_send) cannot set a default number (42501)');

-- Assignees are members.
select tests.authenticate_as('team_admin');
select is(tests.m22_try(format($$select public.update_phone_number(%L, jsonb_build_object('assigned_to', %L))$$, tests.world('t_number_pool'), tests.world(who))), '22023',
          'assigning a number to ' || what || ' is refused (22023)')
from (values ('o_admin', 'Globex''s admin'), ('t_removed', 'the removed member'), ('t_invitee', 'the invitee who has not joined')) as v (who, what);
select is(tests.m22_try(format($$select public.add_phone_number(%L, '+61400000444', p_assigned_to => %L)$$, tests.world('t_clicksend'), tests.world('o_admin'))), '22023',
    'adding a number assigned to Globex''s admin is refused (22023)');
select is(tests.m22_try(format($$select public.add_phone_number(%L, '+61400000444', p_assigned_to => %L)$$, tests.world('t_clicksend'), tests.world('t_nobody'))), 'ok',
    '... while assigning it to a member of Acme works');

select is(tests.m22_try(format($$select public.add_phone_number(%L, '+61400000445')$$, tests.world('t_smtp'))), '22023',
    'a phone number on a mail (SMTP) connection is refused (22023)');

-- One default number per connection.
select tests.remember('n5', public.add_phone_number(tests.world('t_clicksend')::uuid, '+61400000555', p_is_default => true));
select results_eq(format('select e164 from public.phone_numbers where connection_id = %L and is_default', tests.world('t_clicksend')),
    $$ values ('+61400000555'::text) $$, 'adding a number as the default makes it the only default of the connection');
select public.update_phone_number(tests.world('t_number_pool')::uuid, '{"is_default": true}');
select results_eq(format('select e164 from public.phone_numbers where connection_id = %L and is_default', tests.world('t_clicksend')),
    $$ values ('+61400000200'::text) $$, 'update_phone_number is_default moves the default back (still one)');
select tests.reset_authentication();
select throws_ok(format('update public.phone_numbers set is_default = true where id = %L', tests.recall('n5') ->> 'id'), '23505', null,
    'a second default number on one connection is refused even to the table owner (23505)');

-- A connection without numbers passes `from` through.
select tests.authenticate_as('team_admin');
select tests.remember('cs2', public.create_connection('clicksend_sms', 'Acme ClickSend no numbers', '{"username":"n","api_key":"no-numbers-secret"}',
    p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.authenticate_as_service_role();
select is(tests.m22_sms(tests.world('t_admin')::uuid, null, 'AcmeTag', tests.world('cs2')::uuid) ->> 'sender', 'AcmeTag',
    'on a connection without numbers the send''s from (an alpha tag) passes through');
select is(tests.m22_sms(tests.world('t_admin')::uuid, null, null, tests.world('cs2')::uuid) ->> 'sender', null,
    '... and without from none is chosen (the provider''s default applies)');

-- =============================================================================================
-- Sender identities
-- =============================================================================================
select tests.authenticate_as('team_admin');
select is(tests.m22_try(format($$select public.add_sender_identity(%L, 'sms@acme.test')$$, tests.world('t_clicksend'))), '22023',
    'a sender identity on a ClickSend (non-mail) connection is refused (22023)');
select tests.remember('id1', public.add_sender_identity(tests.world('t_smtp')::uuid, 'team@acme.test', 'Acme'));
select tests.remember('id2', public.add_sender_identity(tests.world('t_smtp')::uuid, 'Sales@Acme.test', 'Sales'));
select is((tests.recall('id1') ->> 'is_default')::boolean, true, 'the first identity of Acme SMTP becomes its default');
select results_eq($$ select (tests.recall('id2') ->> 'is_default')::boolean, tests.recall('id2') ->> 'email' $$,
    $$ values (false, 'sales@acme.test'::text) $$, 'the second is not the default (and its address is stored lower-case)');
select public.update_sender_identity((tests.recall('id2') ->> 'id')::uuid, '{"is_default": true}');
select results_eq(format('select email from public.sender_identities where connection_id = %L and is_default', tests.world('t_smtp')),
    $$ values ('sales@acme.test'::text) $$, 'update_sender_identity is_default switches it: one default');
select public.add_sender_identity(tests.world('t_smtp')::uuid, 'support@acme.test', p_is_default => true);
select results_eq(format('select email from public.sender_identities where connection_id = %L and is_default', tests.world('t_smtp')),
    $$ values ('support@acme.test'::text) $$, 'adding one as default switches it: still one');
select is(tests.m22_try(format($$select public.add_sender_identity(%L, 'sales@acme.test')$$, tests.world('t_smtp'))), 'PT409',
    'the same address twice on one connection is refused (PT409)');
select tests.reset_authentication();
select throws_ok(format('update public.sender_identities set is_default = true where id = %L', tests.recall('id1') ->> 'id'), '23505', null,
    'a second default identity on one connection is refused even to the table owner (23505)');

-- =============================================================================================
-- The default mail connection
-- =============================================================================================
select results_eq(format('select id from public.connections where workspace_id = %L and is_default_mail and deleted_at is null', tests.world('t_workspace')),
    format('values (%L::uuid)', tests.world('t_smtp')), 'Acme''s first mail connection (SMTP) became its default mail connection');
select tests.authenticate_as('other_admin');
select tests.remember('g_mail1', public.create_connection('sendgrid', 'Globex SendGrid', '{"api_key":"SG.globex"}', '{"from_email":"a@globex.test"}',
    p_workspace_id => tests.world('o_workspace')::uuid));
select tests.remember('g_mail2', public.create_connection('smtp', 'Globex SMTP', '{"username":"g","password":"globex-smtp"}',
    '{"host":"smtp.globex.test","port":465,"security":"tls","from_email":"a@globex.test"}', p_workspace_id => tests.world('o_workspace')::uuid));
select results_eq($$ select (tests.recall('g_mail1') ->> 'is_default_mail')::boolean, (tests.recall('g_mail2') ->> 'is_default_mail')::boolean $$,
    $$ values (true, false) $$, 'in Globex too the first mail connection is the default and the second is not');
select results_eq(format('select is_default_mail from public.connections where id = %L', tests.world('o_clicksend')),
    $$ values (false) $$, '... and a ClickSend connection is never the default mail connection');

select tests.authenticate_as('team_admin');
select tests.remember('smtp2', public.create_connection('smtp', 'Acme SMTP two', '{"username":"two","password":"acme-smtp-two"}',
    '{"host":"smtp2.example.test","port":465,"security":"tls","from_email":"two@acme.test"}', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select public.set_default_mail_connection(tests.world('t_sendgrid')::uuid);
select results_eq(format('select id from public.connections where workspace_id = %L and is_default_mail and deleted_at is null', tests.world('t_workspace')),
    format('values (%L::uuid)', tests.world('t_sendgrid')), 'set_default_mail_connection(Acme SendGrid) makes it the one default');
select is(tests.m22_try(format('select public.set_default_mail_connection(%L)', tests.world('t_clicksend'))), '22023',
    'set_default_mail_connection on a ClickSend connection is refused (22023)');
select public.set_default_mail_connection(tests.world('smtp2')::uuid);
-- Everything here is created in one transaction (one now()): age them so "oldest" is real.
select tests.reset_authentication();
update public.connections set created_at = now() - interval '3 days' where id = tests.world('t_smtp')::uuid;
update public.connections set created_at = now() - interval '2 days' where id = tests.world('t_sendgrid')::uuid;
update public.connections set created_at = now() - interval '1 day' where id = tests.world('smtp2')::uuid;
select tests.authenticate_as('team_admin');
select public.delete_connection(tests.world('smtp2')::uuid);
select results_eq(format('select id from public.connections where workspace_id = %L and is_default_mail and deleted_at is null', tests.world('t_workspace')),
    format('values (%L::uuid)', tests.world('t_smtp')), 'deleting the default (the newest, SMTP two) promotes the oldest remaining mail connection (Acme SMTP)');

-- Direct updates, as the table owner: the rule holds by commit.
select tests.reset_authentication();
create function tests.m22_deferred(p_sql text) returns text
language plpgsql
as $$
begin
    execute p_sql;
    set constraints all immediate;
    set constraints all deferred;
    return 'ok';
exception when others then
    return sqlstate || ': ' || sqlerrm;
end
$$;
select matches(tests.m22_deferred(format('update public.connections set is_default_mail = false where id = %L', tests.world('t_smtp'))),
    '^23514: .*exactly one default mail connection \(it has 0\)', 'a direct update leaving Acme with no default mail connection fails at commit (23514)');
select matches(tests.m22_deferred(format('update public.connections set is_default_mail = true where id = %L', tests.world('t_sendgrid'))),
    '^23505: ', 'a direct update making a second default mail connection fails (23505, the unique index)');
select matches(tests.m22_deferred(format('update public.connections set is_default_mail = false where id = %L', tests.world('t_smtp'))
                                  || '; ' || format('update public.connections set is_default_mail = true where id = %L', tests.world('t_clicksend'))),
    '^23514: .*only a mail connection', 'a direct update making ClickSend the default mail connection fails at commit (23514)');
select is(tests.m22_deferred(format('update public.connections set is_default_mail = false where id = %L', tests.world('t_smtp'))
                             || '; ' || format('update public.connections set is_default_mail = true where id = %L', tests.world('t_sendgrid'))),
    'ok', 'a switch in two statements (none for a moment, then SendGrid) passes: the rule is checked at commit, not per statement');
select is(tests.m22_deferred(format('update public.connections set is_default_mail = false where id = %L', tests.world('t_sendgrid'))
                             || '; ' || format('update public.connections set is_default_mail = true where id = %L', tests.world('t_smtp'))),
    'ok', '... and back (SendGrid off, SMTP on)');
select results_eq(format('select id from public.connections where workspace_id = %L and is_default_mail and deleted_at is null', tests.world('t_workspace')),
    format('values (%L::uuid)', tests.world('t_smtp')), '... and Acme is left with exactly one default (Acme SMTP)');
select matches(tests.m22_deferred(format('update public.connections set deleted_at = now() where id = %L', tests.world('t_smtp'))),
    '^23514: ', 'soft-deleting the default directly (without promoting another) fails at commit (23514)');

-- =============================================================================================
-- A mail send that names no connection
-- =============================================================================================
select tests.authenticate_as('team_admin');
select tests.remember('smtp3', public.create_connection('smtp', 'Acme SMTP three', '{"username":"three","password":"acme-smtp-three"}',
    '{"host":"smtp3.example.test","port":465,"security":"tls","from_email":"three@acme.test"}', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.authenticate_as('team_owner');
select tests.remember('mail_agent', public.create_agent('Mail agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select public.grant_agent_permission(tests.world('mail_agent')::uuid, c, '{email}') from unnest(array[tests.world('t_smtp')::uuid, tests.world('smtp3')::uuid]) c;

select tests.reset_authentication();
create function tests.m22_mail(p_connection uuid default null) returns jsonb
language sql
as $$ select private.begin_tool_call('smtp_send_email', p_user_id => tests.world('t_owner')::uuid, p_agent_id => tests.world('mail_agent')::uuid,
                                     p_connection_id => p_connection, p_recipients => '{x@example.com}', p_auth_mode => 'user_agent') $$;
grant execute on function tests.m22_mail(uuid) to service_role;
select tests.authenticate_as_service_role();
select is(tests.m22_mail() ->> 'connection_id', tests.world('t_smtp'),
    'an agent granted two SMTP connections, sending without naming one, uses the default mail connection (Acme SMTP)');
select is(tests.m22_mail() #>> '{credentials,password}', 'acme-smtp-secret', '... with its credentials');
select tests.authenticate_as('team_admin');
select public.set_default_mail_connection(tests.world('smtp3')::uuid);
select tests.authenticate_as_service_role();
select is(tests.m22_mail() ->> 'connection_id', tests.world('smtp3'), 'after the default moves to SMTP three, the same send uses SMTP three');
select is(tests.m22_mail(tests.world('t_smtp')::uuid) ->> 'connection_id', tests.world('t_smtp'), 'naming a connection still wins over the default');
select tests.authenticate_as('team_admin');
select public.set_default_mail_connection(tests.world('t_sendgrid')::uuid);
select tests.authenticate_as_service_role();
select is(tests.m22_mail() #>> '{error,details,reason}', 'ambiguous_connection',
    'with the default on a connection the agent is not granted (SendGrid), two SMTP grants are ambiguous');

select * from finish();
rollback;
