/**
 * Credentials live only in Vault, encrypted. No route gives a signed-in user (the owner
 * included) or anon a decrypted credential: not a table, not a view, not an RPC return
 * value, not the audit trail (which names credential fields, never values). Rotation
 * replaces the encrypted value; deleting a connection removes it and revokes grants;
 * deleting a workspace removes its connections' secrets.
 */
begin;
set local search_path = extensions, public;
select plan(66);

select from tests.seed_world();
select from tests.seed_activity();

-- ---- At rest: encrypted in vault.secrets ---------------------------------------------------------------
select tests.remember('a_secret_id', to_jsonb((select secret_id from public.connections where id = tests.world('a_clicksend')::uuid)));
select isnt(tests.world('a_secret_id'), null, 'A''s connection references a Vault secret');
select is((select count(*)::int from vault.secrets where id = tests.world('a_secret_id')::uuid), 1, '... which exists in vault.secrets');
select ok((select strpos(secret, tests.world('a_clicksend_secret')) = 0
                  and position(convert_to(tests.world('a_clicksend_secret'), 'utf8') in decode(secret, 'base64')) = 0
           from vault.secrets where id = tests.world('a_secret_id')::uuid),
    'vault.secrets.secret holds ciphertext: neither it nor its base64-decoded bytes contain the api_key');
select ok(not exists (select 1 from vault.secrets s
                      where s.secret like '%' || tests.world('a_clicksend_secret') || '%'
                         or s.secret like '%' || tests.world('a_smtp_secret') || '%'
                         or s.description like '%' || tests.world('a_clicksend_secret') || '%'),
    'no vault.secrets column of any row carries a plaintext credential');
select is((select decrypted_secret::jsonb from vault.decrypted_secrets where id = tests.world('a_secret_id')::uuid),
    jsonb_build_object('username', 'a-user', 'api_key', tests.world('a_clicksend_secret')),
    'as postgres, vault.decrypted_secrets returns exactly the credentials A supplied');

-- ---- Nothing a signed-in user can read carries a credential --------------------------------------------
select tests.authenticate_as('user_a');
select is((select count(*)::int from public.connections), 3,
    'A sees its 3 connections, personal and team (the scans below have rows to look at)');
-- Every row of every table A can read, as text, scanned for A's plaintext credentials.
select is((xpath('/row/c/text()', query_to_xml(format(
              'select count(*) as c from public.%I r where r::text like %L or r::text like %L or r::text like %L', t,
              '%' || tests.world('a_clicksend_secret') || '%', '%' || tests.world('a_smtp_secret') || '%', '%a-team-secret%'),
           false, true, '')))[1]::text::int,
    0, 'no row A can read in ' || t || ' contains A''s credentials')
from unnest(array['service_providers', 'integration_capabilities', 'workspaces', 'workspace_members', 'workspace_invitations',
                  'audit_events', 'connections', 'member_permissions', 'phone_numbers', 'member_default_numbers',
                  'sender_identities', 'agents', 'agent_permissions', 'agent_keys', 'operations', 'usage_counters',
                  'message_events']) t;
select results_eq(format($$select action, details from public.audit_events where target_id = %L order by id$$, tests.world('a_clicksend')),
    $$ values ('credentials.created'::text, '{"name": "A ClickSend", "provider": "clicksend_sms", "credential_fields": ["api_key", "username"]}'::jsonb) $$,
    'the audit trail records that credentials were stored, naming their fields, never their values');
select throws_ok(format('select decrypted_secret from vault.decrypted_secrets where id = %L', tests.world('a_secret_id')),
    '42501', null, 'A cannot read its own decrypted secret, even knowing its id');
select throws_ok(format('select private.begin_tool_call(%L, p_user_id => %L, p_auth_mode => %L)', 'clicksend_get_balance', tests.world('a_uid'), 'user'),
    '42501', null, 'A cannot call begin_tool_call (the one route to decrypted credentials)');
select throws_ok(format('select private.connection_for_test(%L, %L, %L)', tests.world('a_uid'), tests.world('a_clicksend'), 'clicksend_sms'),
    '42501', null, 'A cannot call connection_for_test');

-- RPC return values.
select tests.remember('created', public.create_connection('clicksend_sms', 'A fresh', '{"username":"fresh-user","api_key":"fresh-plaintext-9f2c"}'));
select ok(tests.recall('created')::text not like '%fresh-plaintext-9f2c%' and not tests.recall('created') ? 'secret_id'
          and (tests.recall('created') ->> 'has_credentials')::boolean,
    'create_connection returns neither the credentials nor the Vault secret id (only has_credentials)');
select tests.remember('rotated', public.rotate_connection_credentials(tests.world('a_clicksend')::uuid,
    '{"username":"a-user","api_key":"rotated-plaintext-77aa"}'));
select ok(tests.recall('rotated')::text not like '%rotated-plaintext-77aa%' and tests.recall('rotated')::text not like '%' || tests.world('a_clicksend_secret') || '%'
          and not tests.recall('rotated') ? 'secret_id',
    'rotate_connection_credentials returns neither the old nor the new credentials');
select ok(public.update_connection(tests.world('a_smtp')::uuid, '{"name":"A SMTP renamed"}')::text not like '%' || tests.world('a_smtp_secret') || '%',
    'update_connection returns no credentials');
select ok(string_agg(public.get_agent_tools(tests.world('a_agent')::uuid, f)::text, '') not like '%' || tests.world('a_smtp_secret') || '%'
          and string_agg(public.get_agent_tools(tests.world('a_agent')::uuid, f)::text, '') not like '%rotated-plaintext-77aa%',
    'get_agent_tools (every format) returns no credentials')
from unnest(array['raw', 'openai', 'anthropic', 'mcp']) f;
select ok(public.grant_agent_permission(tests.world('a_agent')::uuid, tests.world('a_smtp')::uuid, '{email}')::text
          not like '%' || tests.world('a_smtp_secret') || '%', 'grant_agent_permission returns no credentials');

-- Secrets cannot be smuggled into the readable config, and credentials are checked.
select throws_ok($$ select public.create_connection('clicksend_sms', 'A leaky', '{"username":"u","api_key":"k"}', '{"api_key":"k"}') $$,
    '22023', null, 'a secret-looking config key (api_key) is refused: config is readable, credentials go to Vault');
select throws_ok(format('select public.update_connection(%L, %L)', tests.world('a_smtp'),
                        '{"config":{"host":"h","port":465,"security":"tls","from_email":"a@example.test","smtp_password":"p"}}'),
    '22023', null, 'update_connection refuses a password in config');
select throws_ok($$ select public.create_connection('clicksend_sms', 'A partial', '{"username":"u"}') $$,
    '22023', null, 'credentials missing a required field are refused');
select throws_ok($$ select public.create_connection('clicksend_sms', 'A extra', '{"username":"u","api_key":"k","password":"p"}') $$,
    '22023', null, 'credentials with an unknown field are refused');
select throws_ok($$ select public.create_connection('smtp', 'A plain', '{"username":"u","password":"p"}',
                    '{"host":"h","port":25,"security":"none","from_email":"a@example.test"}') $$,
    '22023', null, 'plain-text SMTP (credentials in the clear on the wire) is refused');

-- ---- Rotation ----------------------------------------------------------------------------------------------
select tests.reset_authentication();
select is((select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets where id = tests.world('a_secret_id')::uuid),
    'rotated-plaintext-77aa', 'after rotation Vault decrypts to the new api_key');
select is((select secret_id from public.connections where id = tests.world('a_clicksend')::uuid), tests.world('a_secret_id')::uuid,
    '... in the same Vault secret (the connection still points at it)');
select ok((select credentials_rotated_at is not null from public.connections where id = tests.world('a_clicksend')::uuid),
    '... and the connection records when it was rotated');
select results_eq(format($$select actor_user_id, details from public.audit_events where target_id = %L and action = 'credentials.rotated'$$,
                         tests.world('a_clicksend')),
    format('values (%L::uuid, %L::jsonb)', tests.world('a_uid'), '{"credential_fields": ["api_key", "username"]}'),
    '... and the audit trail records who rotated them, naming the fields only');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('clicksend_get_balance', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
                                  p_auth_mode => 'user_agent') #>> '{credentials,api_key}',
    'rotated-plaintext-77aa', 'the next authorized call gets the rotated credentials');
select tests.authenticate_as('user_a');
select throws_ok($$ select public.rotate_connection_credentials(gen_random_uuid(), '{"username":"u","api_key":"k"}') $$,
    'PT404', null, 'rotating an unknown connection: not found');

-- ---- Operations keep no credentials even after real calls ------------------------------------------------------
select tests.reset_authentication();
select is((select count(*)::int from public.operations o where o::text like '%' || tests.world('a_clicksend_secret') || '%'
                                                            or o::text like '%rotated-plaintext-77aa%'
                                                            or o::text like '%' || tests.world('b_clicksend_secret') || '%'
                                                            or o::text like '%-team-secret%'),
    0, 'no operation row (of anyone, members'' included) stores the credentials its call was given');
select is((select count(*)::int from public.audit_events e where e::text like '%' || tests.world('a_clicksend_secret') || '%'
                                                              or e::text like '%rotated-plaintext-77aa%'
                                                              or e::text like '%fresh-plaintext-9f2c%'
                                                              or e::text like '%-team-secret%' or e::text like '%-smtp-password-%'),
    0, 'no audit event (of anyone) carries a credential');

-- ---- Deletion ----------------------------------------------------------------------------------------------
-- A send is in flight (authorized, provider called) when A deletes the connection.
select tests.authenticate_as_service_role();
select tests.remember('in_flight', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid,
    p_agent_id => tests.world('a_agent')::uuid, p_recipients => '{+61400000002}', p_auth_mode => 'user_agent'));
select tests.authenticate_as('user_a');
select is(public.delete_connection(tests.world('a_clicksend')::uuid), jsonb_build_object('id', tests.world('a_clicksend'), 'deleted', true),
    'A deletes its ClickSend connection');
select is_empty(format('select 1 from public.connections where id = %L', tests.world('a_clicksend')), '... it disappears from A''s view');
select results_eq(format('select is_active, revoked_at is not null from public.agent_permissions where connection_id = %L', tests.world('a_clicksend')),
    $$ values (false, true) $$, '... and the grant on it is revoked');
select throws_ok(format('select public.delete_connection(%L)', tests.world('a_clicksend')), 'PT404', null, '... deleting it again: not found');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.world('a_clicksend'), '{sms}'),
    'PT404', null, '... and it cannot be granted again');
select tests.reset_authentication();
select is((select count(*)::int from vault.secrets where id = tests.world('a_secret_id')::uuid), 0, 'the Vault secret is gone');
select results_eq(format('select secret_id, status, deleted_at is not null from public.connections where id = %L', tests.world('a_clicksend')),
    $$ values (null::uuid, 'disabled'::text, true) $$, 'the row is kept for the audit log: soft-deleted, disabled, no secret id');
select is((select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets
           where id = (select secret_id from public.connections where id = tests.world('b_clicksend')::uuid)),
    tests.world('b_clicksend_secret'), 'B''s secret is untouched');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('a_uid')::uuid, p_agent_id => tests.world('a_agent')::uuid,
                                  p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') #>> '{error,details,reason}',
    'no_grant', 'an agent call after deletion finds no account');
-- Fails today: finish_tool_call's update of the grant's usage_count fires the grant trigger,
-- which raises "connection ... has been deleted" (P0002), so the outcome is never recorded.
select lives_ok(format('select private.finish_tool_call(%L, %L, 1, %L)', tests.recall('in_flight') ->> 'operation_id', 'succeeded', '{msg-in-flight}'),
    'the call that was in flight when the connection was deleted can still record its outcome');
select results_eq(format('select status::text, provider_message_ids from public.operations where id = %L', tests.recall('in_flight') ->> 'operation_id'),
    $$ values ('succeeded'::text, '{msg-in-flight}'::text[]) $$, '... so the audit log shows the message that went out');
select is(private.connection_for_test(tests.world('a_uid')::uuid, tests.world('a_clicksend')::uuid, 'clicksend_sms'), null,
    'connection_for_test has nothing to return for a deleted connection');
select is(private.connection_for_test(tests.world('b_uid')::uuid, tests.world('a_smtp')::uuid, 'smtp'), null,
    'connection_for_test returns nothing for a connection outside the named user''s workspaces');
select is(private.connection_for_test(tests.world('a_member_uid')::uuid, tests.world('a_team_mail')::uuid, 'sendgrid'), null,
    'connection_for_test returns nothing for a member who may send on the connection but not configure it');
select is(private.connection_for_test(tests.world('a_uid')::uuid, tests.world('a_team_mail')::uuid, 'sendgrid') #>> '{credentials,api_key}',
    'SG.a-team-secret', '... while the team''s owner gets its credentials to test it (service path only)');

-- ---- A member who may configure a connection does not get its credentials ------------------------------------
-- Credentials are the owner's and admins' business (create, rotate, delete). A member with
-- can_configure may rename a connection and adjust its config, but the fields that decide
-- where the stored credentials are sent (an SMTP server's host, port and TLS settings, a
-- base URL) would let them receive the credentials themselves on the next send or test.
select tests.authenticate_as('user_a');
select tests.remember('team_smtp', public.create_connection('smtp', 'A team SMTP', '{"username":"team","password":"a-team-smtp-password"}',
    '{"host": "smtp.example.test", "port": 465, "security": "tls", "from_email": "team@a.example.test"}',
    p_workspace_id => tests.world('a_team')::uuid));
select public.set_member_permission((tests.recall('team_smtp') ->> 'id')::uuid, tests.world('a_member_uid')::uuid,
    p_can_view => true, p_can_send => true, p_can_configure => true, p_scopes => '{email}');
select tests.authenticate_as('user_a_member');
select lives_ok(format('select public.update_connection(%L, %L)', tests.recall('team_smtp') ->> 'id', '{"name": "Team SMTP"}'),
    'a member with can_configure may rename the team''s SMTP connection');
select throws_ok(format('select public.rotate_connection_credentials(%L, %L)', tests.recall('team_smtp') ->> 'id',
                        '{"username": "team", "password": "member-chosen"}'),
    '42501', null, '... but not replace its credentials');
-- Fails today: update_connection lets can_configure change every config field.
select throws_ok(format('select public.update_connection(%L, %L)', tests.recall('team_smtp') ->> 'id',
                        '{"config": {"host": "mail.member-owned.example", "port": 465, "security": "tls", "from_email": "team@a.example.test"}}'),
    '42501', null, '... nor point it at another SMTP server, which would receive the stored password on the next send or test');

-- ---- Deleting a workspace ------------------------------------------------------------------------------------
select tests.remember('team_secret_id', to_jsonb((select secret_id from public.connections where id = tests.world('a_team_mail')::uuid)));
select tests.authenticate_as('user_a');
select is(public.delete_workspace(tests.world('a_team')::uuid) -> 'deleted', 'true'::jsonb, 'A deletes its team');
select tests.reset_authentication();
select is((select count(*)::int from vault.secrets where id = tests.world('team_secret_id')::uuid), 0,
    '... and the Vault secret of the team''s connection is gone with it');
select is((select decrypted_secret::jsonb ->> 'password' from vault.decrypted_secrets
           where id = (select secret_id from public.connections where id = tests.world('a_smtp')::uuid)),
    tests.world('a_smtp_secret'), '... while A''s personal connections keep theirs');

select * from finish();
rollback;
