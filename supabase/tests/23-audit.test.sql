/**
 * The audit trail of administrative actions.
 *   - every administrative RPC appends one row: action, actor (and their role), target,
 *     workspace, time, and the client's IP and user agent from `request.headers`
 *     (the first X-Forwarded-For address; a malformed one is dropped, never stored)
 *   - no row holds a secret: credentials, rotated credentials, invitation tokens and
 *     agent keys appear nowhere in it
 *   - append-only for every role: update, delete and truncate are refused to the table
 *     owner (postgres) and service_role; nobody inserts directly
 *   - admins and the owner read their workspace's rows; members and other workspaces'
 *     admins read none; the rows outlive a deleted workspace
 */
begin;
set local search_path = extensions, public;
select plan(68);

select from tests.seed_team();
select tests.create_supabase_user(u, u || '@example.test') from unnest(array['audit_newbie', 'audit_decliner']) u;
select tests.remember('newbie', to_jsonb(tests.get_supabase_uid('audit_newbie')));
select tests.remember('decliner', to_jsonb(tests.get_supabase_uid('audit_decliner')));
select tests.remember('audit_start', to_jsonb((select max(id) from public.audit_events)));
select set_config('request.headers', '{"x-forwarded-for": "203.0.113.7, 10.0.0.1", "user-agent": "pgtap"}', true);

-- ---- The actions, each as the one who may take it ------------------------------------------------
select tests.authenticate_as('team_owner');
select tests.remember('ws2', public.create_workspace('Audit team') -> 'id');
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme Corp');
select tests.remember('inv_newbie', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'audit_newbie@example.test'));
select tests.remember('inv_decliner', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'audit_decliner@example.test', 'admin'));
select tests.remember('inv_revoked', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'nobody-yet@example.test'));
select public.revoke_workspace_invitation((tests.recall('inv_revoked') ->> 'id')::uuid);
select tests.authenticate_as('audit_newbie');
select public.accept_workspace_invitation(tests.recall('inv_newbie') ->> 'token');
select tests.authenticate_as('audit_decliner');
select public.decline_workspace_invitation(tests.recall('inv_decliner') ->> 'token');
select tests.authenticate_as('team_owner');
select public.change_workspace_member_role(tests.world('t_workspace')::uuid, tests.world('newbie')::uuid, 'admin');
select tests.authenticate_as('audit_newbie');
select public.leave_workspace(tests.world('t_workspace')::uuid);
select tests.authenticate_as('team_admin');
select public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_nobody')::uuid);

select tests.remember('conn', public.create_connection('clicksend_sms', 'Audit ClickSend',
    '{"username": "audit-user", "api_key": "audit-created-secret-7Qx"}', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select public.update_connection(tests.world('conn')::uuid, '{"name": "Audit ClickSend renamed", "config": {"sender_id": "Audit"}}');
select public.rotate_connection_credentials(tests.world('conn')::uuid, '{"username": "audit-user", "api_key": "audit-rotated-secret-9Zk"}');
select tests.remember('perm', public.set_member_permission(tests.world('conn')::uuid, tests.world('t_viewer')::uuid, p_can_send => true,
    p_scopes => '{sms}', p_daily_send_limit => 1, p_monthly_send_limit => 1) -> 'id');
select public.remove_member_permission(tests.world('conn')::uuid, tests.world('t_viewer')::uuid);
select tests.remember('num', public.add_phone_number(tests.world('conn')::uuid, '+61400000888', 'Audit line') -> 'id');
select public.update_phone_number(tests.world('num')::uuid, '{"friendly_name": "Audit line 2", "capabilities": ["sms", "mms"]}');
select public.set_member_default_number(tests.world('num')::uuid);
select public.delete_phone_number(tests.world('num')::uuid);
select tests.remember('ident', public.add_sender_identity(tests.world('t_smtp')::uuid, 'audit@acme.test', 'Audit') -> 'id');
select public.update_sender_identity(tests.world('ident')::uuid, '{"verified": true}');
select public.delete_sender_identity(tests.world('ident')::uuid);
select public.set_default_mail_connection(tests.world('t_sendgrid')::uuid);

select tests.authenticate_as('team_sender');
select tests.remember('grant', public.grant_agent_permission(tests.world('t_agent')::uuid, tests.world('t_clicksend')::uuid, '{sms}',
    p_daily_send_limit => 1, p_monthly_send_limit => 1) -> 'id');
select public.update_agent_permission(tests.world('grant')::uuid, '{"daily_send_limit": 2}');
select public.revoke_agent_permission(tests.world('grant')::uuid);
select tests.remember('key', public.issue_agent_key(tests.world('t_agent')::uuid, 'audit key'));
select public.revoke_agent_key((tests.recall('key') ->> 'id')::uuid);

-- A connection test, recorded by the service for team_admin with the client it saw.
select tests.authenticate_as_service_role();
select private.record_connection_test(tests.world('conn')::uuid, true, 'OK', tests.world('t_admin')::uuid,
    '{"ip": "198.51.100.9", "user_agent": "edge-function"}');
select set_config('request.headers', '{"x-forwarded-for": "203.0.113.7, 10.0.0.1", "user-agent": "pgtap"}', true);

select tests.authenticate_as('team_admin');
select public.delete_connection(tests.world('conn')::uuid);
select tests.authenticate_as('team_owner');
select public.transfer_workspace_ownership(tests.world('t_workspace')::uuid, tests.world('t_admin')::uuid);
select public.delete_workspace(tests.world('ws2')::uuid);
select tests.reset_authentication();

-- ---- One row per action, with its actor, target, workspace, time and client ---------------------------
create temporary table expected_audit (action text, actor text, target_type text, target_id text, workspace text) on commit drop;
insert into expected_audit values
    ('workspace.created', 't_owner', 'workspace', tests.world('ws2'), tests.world('ws2')),
    ('workspace.renamed', 't_owner', 'workspace', tests.world('t_workspace'), tests.world('t_workspace')),
    ('member.invited', 't_owner', 'invitation', tests.recall('inv_newbie') ->> 'id', tests.world('t_workspace')),
    ('invitation.revoked', 't_owner', 'invitation', tests.recall('inv_revoked') ->> 'id', tests.world('t_workspace')),
    ('member.joined', 'newbie', 'member', tests.world('newbie'), tests.world('t_workspace')),
    ('invitation.declined', 'decliner', 'invitation', tests.recall('inv_decliner') ->> 'id', tests.world('t_workspace')),
    ('member.role_changed', 't_owner', 'member', tests.world('newbie'), tests.world('t_workspace')),
    ('member.left', 'newbie', 'member', tests.world('newbie'), tests.world('t_workspace')),
    ('member.removed', 't_admin', 'member', tests.world('t_nobody'), tests.world('t_workspace')),
    ('credentials.created', 't_admin', 'connection', tests.world('conn'), tests.world('t_workspace')),
    ('connection.updated', 't_admin', 'connection', tests.world('conn'), tests.world('t_workspace')),
    ('credentials.rotated', 't_admin', 'connection', tests.world('conn'), tests.world('t_workspace')),
    ('permission.set', 't_admin', 'member_permission', tests.world('perm'), tests.world('t_workspace')),
    ('permission.removed', 't_admin', 'member_permission', tests.world('perm'), tests.world('t_workspace')),
    ('number.added', 't_admin', 'phone_number', tests.world('num'), tests.world('t_workspace')),
    ('number.updated', 't_admin', 'phone_number', tests.world('num'), tests.world('t_workspace')),
    ('number.member_default_set', 't_admin', 'phone_number', tests.world('num'), tests.world('t_workspace')),
    ('number.deleted', 't_admin', 'phone_number', tests.world('num'), tests.world('t_workspace')),
    ('identity.added', 't_admin', 'sender_identity', tests.world('ident'), tests.world('t_workspace')),
    ('identity.updated', 't_admin', 'sender_identity', tests.world('ident'), tests.world('t_workspace')),
    ('identity.deleted', 't_admin', 'sender_identity', tests.world('ident'), tests.world('t_workspace')),
    ('connection.default_mail_set', 't_admin', 'connection', tests.world('t_sendgrid'), tests.world('t_workspace')),
    ('grant.set', 't_sender', 'agent_grant', tests.world('grant'), tests.world('t_workspace')),
    ('grant.updated', 't_sender', 'agent_grant', tests.world('grant'), tests.world('t_workspace')),
    ('grant.revoked', 't_sender', 'agent_grant', tests.world('grant'), tests.world('t_workspace')),
    ('key.issued', 't_sender', 'agent_key', tests.recall('key') ->> 'id', tests.world('t_workspace')),
    ('key.revoked', 't_sender', 'agent_key', tests.recall('key') ->> 'id', tests.world('t_workspace')),
    ('credentials.deleted', 't_admin', 'connection', tests.world('conn'), tests.world('t_workspace')),
    ('workspace.ownership_transferred', 't_owner', 'member', tests.world('t_admin'), tests.world('t_workspace')),
    ('workspace.deleted', 't_owner', 'workspace', tests.world('ws2'), tests.world('ws2'));

select is(
    (select count(*)::int from public.audit_events a
     where a.id > tests.world('audit_start')::bigint and a.action = e.action and a.actor_user_id = tests.world(e.actor)::uuid and a.actor_role = 'authenticated'
       and a.target_type = e.target_type and a.target_id = e.target_id and a.workspace_id = e.workspace::uuid
       and a.created_at = now() and a.ip = '203.0.113.7'::inet and a.user_agent = 'pgtap'),
    1, format('%s: one row with actor %s, target %s %s, workspace, time, IP 203.0.113.7 and user agent', e.action, e.actor, e.target_type,
              left(e.target_id, 8)))
from expected_audit e;

select results_eq(
    format($$ select actor_user_id, actor_role, target_id, details, host(ip), user_agent from public.audit_events
              where action = 'credentials.tested' and target_id = %L $$, tests.world('conn')),
    format($$ values (%L::uuid, 'service_role'::text, %L::text, '{"ok": true}'::jsonb, '198.51.100.9'::text, 'edge-function'::text) $$,
           tests.world('t_admin'), tests.world('conn')),
    'credentials.tested (record_connection_test): the user the service acted for, role service_role, and the client the service saw');
select is((select count(*)::int from public.audit_events where id > tests.world('audit_start')::bigint and action <> 'credentials.tested'
              and (ip is distinct from '203.0.113.7'::inet or user_agent is distinct from 'pgtap')), 0,
    'every other row of this request has the IP and user agent from request.headers');
select results_eq(format($$ select details from public.audit_events where action = 'member.role_changed' and target_id = %L $$, tests.world('newbie')),
    $$ values ('{"from": "member", "to": "admin"}'::jsonb) $$, 'member.role_changed records the old and the new role');
select results_eq(format($$ select details ->> 'from', details ->> 'to' from public.audit_events where action = 'workspace.ownership_transferred' and workspace_id = %L $$, tests.world('t_workspace')),
    format($$ values (%L, %L) $$, tests.world('t_owner'), tests.world('t_admin')), 'ownership_transferred records from whom to whom');
select results_eq(format($$ select details -> 'credential_fields' from public.audit_events where action in ('credentials.created', 'credentials.rotated') and target_id = %L order by id $$, tests.world('conn')),
    $$ values ('["api_key", "username"]'::jsonb), ('["api_key", "username"]'::jsonb) $$,
    'credential events name the fields that changed, never their values');
select is((select count(*)::int from public.audit_events where id > tests.world('audit_start')::bigint), 33,
    'exactly 33 rows for the 33 actions (no action writes twice, none is missed)');

-- ---- The client: malformed, missing, truncated ----------------------------------------------------
select tests.authenticate_as('team_admin');
select set_config('request.headers', '{"x-forwarded-for": "not-an-ip, 10.0.0.1", "user-agent": "pgtap-bad-ip"}', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme bad ip');
select set_config('request.headers', '{"x-forwarded-for": "2001:db8::1", "user-agent": "' || repeat('x', 600) || '"}', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme v6');
select set_config('request.headers', 'this is not json', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme no headers');
select set_config('request.headers', '', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme empty headers');
select set_config('request.headers', '{"x-real-ip": "192.0.2.44"}', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme real ip');
select set_config('request.headers', '{"cf-connecting-ip": "198.51.100.77", "x-real-ip": "192.0.2.45", "x-forwarded-for": "203.0.113.99"}', true);
select public.rename_workspace(tests.world('t_workspace')::uuid, 'Acme edge ip');
select tests.reset_authentication();
select results_eq(format($$ select details ->> 'name', ip, user_agent, length(user_agent) from public.audit_events
                           where action = 'workspace.renamed' and workspace_id = %L and details ->> 'name' <> 'Acme Corp' order by id $$,
                         tests.world('t_workspace')),
    $$ values ('Acme bad ip'::text, null::inet, 'pgtap-bad-ip'::text, 12),
              ('Acme v6', '2001:db8::1'::inet, repeat('x', 512), 512),
              ('Acme no headers', null, null, null),
              ('Acme empty headers', null, null, null),
              ('Acme real ip', '192.0.2.44'::inet, null, null),
              ('Acme edge ip', '198.51.100.77'::inet, null, null) $$,
    'a malformed X-Forwarded-For is dropped (the user agent kept); IPv6 is kept; a long user agent is cut to 512; headers that are not JSON or empty record no client but the action is still audited; X-Real-IP is used; the edge''s CF-Connecting-IP wins over X-Real-IP and X-Forwarded-For');

-- ---- No secret anywhere in the trail --------------------------------------------------------------
select is((select count(*)::int from public.audit_events a where to_jsonb(a)::text like '%' || s || '%'), 0,
          'no audit row contains ' || what)
from (values
    ('acme-clicksend-secret', 'Acme ClickSend''s api_key'),
    ('acme-smtp-secret', 'Acme SMTP''s password'),
    ('SG.acme-secret', 'Acme SendGrid''s api key'),
    ('globex-secret', 'Globex''s api key'),
    ('audit-created-secret-7Qx', 'the created connection''s api_key'),
    ('audit-rotated-secret-9Zk', 'the rotated api_key'),
    (tests.world('t_invitation_token'), 'the fixture''s invitation token'),
    (tests.recall('inv_newbie') ->> 'token', 'an accepted invitation''s token'),
    (tests.recall('key') ->> 'key', 'an issued agent key'),
    (tests.world('t_key'), 'the fixture''s agent key'),
    (tests.world('t_webhook_token'), 'a webhook token')
) as v (s, what);

-- ---- Append-only for every role ------------------------------------------------------------------------
select throws_ok('update public.audit_events set action = ''tampered.event''', '42501', 'the audit trail is append-only',
    'the table owner (postgres) cannot update audit rows');
select throws_ok('delete from public.audit_events', '42501', 'the audit trail is append-only',
    'the table owner (postgres) cannot delete audit rows');
select throws_ok('truncate public.audit_events', '42501', 'the audit trail is append-only',
    'the table owner (postgres) cannot truncate the audit trail');
select tests.authenticate_as_service_role();
select throws_ok('update public.audit_events set action = ''tampered.event''', '42501', null, 'service_role cannot update audit rows');
select throws_ok('delete from public.audit_events', '42501', null, 'service_role cannot delete audit rows');
select throws_ok('truncate public.audit_events', '42501', null, 'service_role cannot truncate the audit trail');
select throws_ok(format($$ insert into public.audit_events (workspace_id, actor_role, action, target_type) values (%L, 'service_role', 'forged.event', 'workspace') $$,
                        tests.world('t_workspace')), '42501', null, 'service_role cannot forge an audit row');
select tests.authenticate_as('team_admin');
select throws_ok('delete from public.audit_events', '42501', null, 'an admin cannot delete audit rows');
select tests.reset_authentication();
select is((select count(*)::int from public.audit_events where action = 'tampered.event' or action = 'forged.event'), 0, '... and no row was changed or forged');

-- ---- Who reads it ----------------------------------------------------------------------------------------
select tests.reset_authentication();
select tests.remember('acme_rows', to_jsonb((select count(*) from public.audit_events where workspace_id = tests.world('t_workspace')::uuid)));
select tests.authenticate_as('team_admin');
select is((select count(*) from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), tests.world('acme_rows')::bigint,
    'team_admin (now Acme''s owner) reads every Acme row');
select tests.authenticate_as('team_owner');
select is((select count(*) from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), tests.world('acme_rows')::bigint,
    'team_owner (now an admin) reads every Acme row');
select tests.authenticate_as('team_sender');
select is((select count(*)::int from public.audit_events), 0, 'team_sender (member) reads no audit row at all, not even of their own grant changes');
select tests.authenticate_as('team_viewer');
select is((select count(*)::int from public.audit_events), 0, 'team_viewer (member) reads no audit row');
select tests.authenticate_as('team_nobody');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_nobody (removed during this test) reads no Acme row');
select tests.authenticate_as('other_admin');
select is((select count(*)::int from public.audit_events where workspace_id <> tests.world('o_workspace')::uuid
              and workspace_id not in (select id from public.workspaces where personal)), 0,
    'other_admin reads no row of Acme or any workspace but their own');
select cmp_ok((select count(*)::int from public.audit_events where workspace_id = tests.world('o_workspace')::uuid), '>', 0,
    '... and does read Globex''s (the zero is not vacuous)');
select tests.authenticate_as('audit_newbie');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'audit_newbie, who joined as admin and left, reads no Acme row any more');
select tests.clear_authentication();
select throws_ok('select count(*) from public.audit_events', '42501', null, 'anon cannot read the audit trail');

-- ---- The trail outlives its workspace ----------------------------------------------------------------------
select tests.reset_authentication();
select results_eq(format($$ select array_agg(action order by id) from public.audit_events where workspace_id = %L $$, tests.world('ws2')),
    $$ values ('{workspace.created,workspace.deleted}'::text[]) $$,
    'the deleted workspace "Audit team" is gone but its audit rows stay');
select is((select count(*)::int from public.workspaces where id = tests.world('ws2')::uuid), 0, '... (the workspace itself is deleted)');

select * from finish();
rollback;
