/**
 * Grant rules: a grant's scopes are always a subset of its connection's (enforced by a
 * trigger, so no RPC can get it wrong), narrowing a connection narrows or removes its
 * grants, agent, connection and grant always share a workspace (composite foreign keys,
 * so not even the service can store a grant across workspaces), limits and recipient
 * patterns are validated, and a grant cannot be moved to another agent or connection.
 */
begin;
set local search_path = extensions, public;
select plan(36);

select from tests.seed_world();
select tests.authenticate_as('user_a');
select tests.remember('sms_only', public.create_connection('clicksend_sms', 'A sms-only', '{"username":"a2","api_key":"k2"}',
                                                           p_scopes => '{sms}'));
select tests.remember('agent2', public.create_agent('A second agent'));

-- ---- Scope escalation ------------------------------------------------------------------------
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.recall('sms_only') ->> 'id', '{sms,mms}'),
    '42501', 'scopes {mms} are not granted by the connection (it grants {sms})',
    'granting mms on an sms-only connection is refused by the trigger (42501)');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.recall('sms_only') ->> 'id', '{admin}'),
    '42501', null, 'granting a scope no provider has is refused');
select lives_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.recall('sms_only') ->> 'id', '{sms}'),
    'granting sms on the sms-only connection works');
select throws_ok(format('select public.update_agent_permission(id, %L) from public.agent_permissions where connection_id = %L',
                        '{"scopes":["sms","mms"]}', tests.recall('sms_only') ->> 'id'),
    '42501', 'scopes {mms} are not granted by the connection (it grants {sms})',
    'update_agent_permission adding mms beyond the connection is refused');
select results_eq(format('select allowed_scopes from public.agent_permissions where connection_id = %L', tests.recall('sms_only') ->> 'id'),
    $$ values ('{sms}'::text[]) $$, 'the refused update left the grant at {sms}');
select lives_ok(format('select public.update_agent_permission(%L, %L)', tests.world('a_grant'), '{"scopes":["sms","balance","history"]}'),
    'adding a scope the connection does grant (history) works');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.world('a_clicksend'), '{}'),
    '22023', null, 'a grant needs at least one scope');
select throws_ok($$ select public.create_connection('clicksend_sms', 'A weird', '{"username":"u","api_key":"k"}', p_scopes => '{sms,email}') $$,
    '22023', null, 'a connection cannot claim a scope its provider does not support');

-- ---- Narrowing a connection narrows (or removes) its grants ----------------------------------
select lives_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.recall('agent2') ->> 'id', tests.world('a_clicksend'), '{sms}'),
    'second agent granted sms only on A''s ClickSend');
select lives_ok(format('select public.update_connection(%L, %L)', tests.world('a_clicksend'), '{"scopes":["balance","mms"]}'),
    'A narrows the connection to balance + mms');
select results_eq(format('select allowed_scopes from public.agent_permissions where id = %L', tests.world('a_grant')),
    $$ values ('{balance}'::text[]) $$, 'the {sms,balance,history} grant is narrowed to {balance}');
select is_empty(format('select 1 from public.agent_permissions where agent_id = %L and connection_id = %L',
                       tests.recall('agent2') ->> 'id', tests.world('a_clicksend')),
    'the {sms}-only grant is removed (no scope left)');
select results_eq(format($q$select t ->> 'capability' from jsonb_array_elements(public.get_agent_tools(%L)) t
                            where t ->> 'connection_id' = %L order by 1$q$, tests.world('a_agent'), tests.world('a_clicksend')),
    $$ values ('clicksend_get_balance') $$,
    'on that connection the agent now has only the balance tool (send_sms is gone)');
select is(public.validate_agent_clicksend_permissions((tests.recall('agent2') ->> 'id')::uuid, tests.world('a_uid')::uuid, '{sms}'), false,
    'the second agent no longer validates for sms');
select lives_ok(format('select public.update_connection(%L, %L)', tests.world('a_clicksend'), '{"scopes":["sms","mms","balance","history"]}'),
    'A widens the connection again');
select results_eq(format('select allowed_scopes from public.agent_permissions where id = %L', tests.world('a_grant')),
    $$ values ('{balance}'::text[]) $$, 'widening the connection does not widen the grant');
select lives_ok(format('select public.update_connection(%L, %L)', tests.world('a_clicksend'), '{"scopes":[]}'),
    'A removes every scope from the connection');
select is_empty(format('select 1 from public.agent_permissions where connection_id = %L', tests.world('a_clicksend')),
    'a connection with no scopes has no grants left');

-- ---- Workspaces ------------------------------------------------------------------------------
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.world('b_clicksend'), '{sms}'),
    'PT404', null, 'A cannot grant its agent on B''s connection (not found)');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('b_agent'), tests.world('a_smtp'), '{email}'),
    'PT404', 'agent not found', 'A cannot grant B''s agent on A''s connection (not found)');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L)', tests.world('a_agent'), tests.world('a_team_mail'), '{email}'),
    'PT404', 'connection not found', 'A cannot grant its personal agent on its own team''s connection: agent and connection share a workspace');
select throws_ok(format('select public.update_agent_permission(%L, %L)', tests.world('a_smtp_grant'), jsonb_build_object('agent_id', tests.world('b_agent'))),
    '22023', null, 'a grant cannot be moved to another agent');
select throws_ok(format('select public.update_agent_permission(%L, %L)', tests.world('a_smtp_grant'), jsonb_build_object('connection_id', tests.world('b_smtp'))),
    '22023', null, 'a grant cannot be moved to another connection');

-- The composite foreign keys hold even for a caller who bypasses RLS and the RPCs (defence
-- in depth): a grant's workspace must be both its agent's and its connection's.
select tests.authenticate_as_service_role();
select throws_ok(format('insert into public.agent_permissions (workspace_id, agent_id, connection_id, allowed_scopes) values (%L, %L, %L, %L)',
                        tests.world('a_workspace'), tests.world('a_agent'), tests.world('b_smtp'), '{email}'),
    '23503', 'insert or update on table "agent_permissions" violates foreign key constraint "agent_permissions_connection_id_workspace_id_fkey"',
    'even service_role cannot store a grant of A''s agent on B''s connection (in A''s workspace)');
select throws_ok(format('insert into public.agent_permissions (workspace_id, agent_id, connection_id, allowed_scopes) values (%L, %L, %L, %L)',
                        tests.world('b_workspace'), tests.world('a_agent'), tests.world('b_smtp'), '{email}'),
    '23503', 'insert or update on table "agent_permissions" violates foreign key constraint "agent_permissions_agent_id_workspace_id_fkey"',
    'even service_role cannot store a grant of A''s agent under B''s workspace');
select throws_ok(format('update public.agent_permissions set connection_id = %L where id = %L', tests.world('b_smtp'), tests.world('a_smtp_grant')),
    '23503', 'insert or update on table "agent_permissions" violates foreign key constraint "agent_permissions_connection_id_workspace_id_fkey"',
    'even service_role cannot repoint A''s grant at B''s connection');
select throws_ok(format('insert into public.agent_keys (workspace_id, agent_id, key_prefix, key_hash) values (%L, %L, %L, %L)',
                        tests.world('b_workspace'), tests.world('a_agent'), 'swb_agent_forged', 'forged-hash'),
    '23503', 'insert or update on table "agent_keys" violates foreign key constraint "agent_keys_agent_id_workspace_id_fkey"',
    'even service_role cannot file a key for A''s agent under B''s workspace');

-- ---- Limits and recipient patterns --------------------------------------------------------------
select tests.authenticate_as('user_a');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L, p_daily_send_limit => -1)', tests.world('a_agent'), tests.world('a_smtp'), '{email}'),
    '22023', null, 'a negative daily limit is refused');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L, p_max_recipients_per_message => 0)', tests.world('a_agent'), tests.world('a_smtp'), '{email}'),
    '22023', null, 'max_recipients_per_message 0 is refused');
select throws_ok(format('select public.grant_agent_permission(%L, %L, %L, p_allowed_recipients => %L)', tests.world('a_agent'), tests.world('a_smtp'), '{email}', '{"%"}'),
    '22023', null, 'a wildcard-everything recipient pattern is refused');
select throws_ok(format('select public.update_agent_permission(%L, %L)', tests.world('a_smtp_grant'), '{"blocked_recipients":["not a pattern"]}'),
    '22023', null, 'update_agent_permission refuses an invalid recipient pattern');
select throws_ok(format('select public.update_agent_permission(%L, %L)', tests.world('a_smtp_grant'), '{"max_recipients_per_message":0}'),
    '22023', null, 'update_agent_permission refuses max_recipients_per_message 0');
select lives_ok(format('select public.grant_agent_permission(%L, %L, %L, p_allowed_recipients => %L, p_blocked_recipients => %L)',
                       tests.world('a_agent'), tests.world('a_smtp'), '{email}', '{+61,+1415,bob@example.com,example.org,@example.net,*.corp.example}', '{ceo@example.org}'),
    'E.164 prefixes, addresses, domains, @domains and *.subdomains are accepted');

-- ---- Revoke and re-grant -------------------------------------------------------------------------
select lives_ok(format('select public.revoke_agent_permission(%L)', tests.world('a_smtp_grant')), 'A revokes the SMTP grant');
select results_eq(format('select is_active, revoked_at is not null from public.agent_permissions where id = %L', tests.world('a_smtp_grant')),
    $$ values (false, true) $$, 'a revoked grant is inactive with revoked_at set');
select results_eq(format('select (public.grant_agent_permission(%L, %L, %L) ->> ''id'')::uuid', tests.world('a_agent'), tests.world('a_smtp'), '{email}'),
    format('values (%L::uuid)', tests.world('a_smtp_grant')),
    'granting the same pair again reactivates the same grant row');

select * from finish();
rollback;
