/**
 * The attacker's side of the team model. Each section is something a user might try to
 * get more than they were given, and what they must get instead:
 *   1. a member grants their agent more than they hold (scopes, sending without
 *      can_send, a limit above theirs or none where they have one, an expiry after
 *      theirs) → 42501 naming the excess; admins granting a member's agent are held to
 *      the member too
 *   2. Globex's admin acts on Acme (connections, members, numbers, grants, keys, audit,
 *      the tool-call path) → refused, and nothing changed
 *   3. a member with can_send but not can_configure edits, re-scopes, disables,
 *      rotates, deletes a connection → 42501
 *   4. a member with can_configure renames and re-configures, but does not re-scope,
 *      disable, rotate or delete
 *   5. a removed member's agent key is refused by begin_tool_call and lists no tools;
 *      the removed member cannot mint keys or re-arm the agent
 *   6. members read no audit trail
 *   7. taking a member's permission away (remove, narrower scopes, no can_send, expiry)
 *      refuses their agent's next call and its tools vanish from private.agent_tools
 */
begin;
set local search_path = extensions, public;
select plan(105);

select from tests.seed_team();


-- Hashes of the fixture's agent keys (authenticated/service_role cannot call private.sha256_hex).
select tests.remember('h_key', to_jsonb(encode(extensions.digest(tests.world('t_key'), 'sha256'), 'hex')));
select tests.remember('h_removed_key', to_jsonb(encode(extensions.digest(tests.world('t_removed_key'), 'sha256'), 'hex')));

-- =============================================================================================
-- 1. A member grants their agent more than they hold
-- team_sender holds on Acme ClickSend: can_view, can_send, scopes sms + balance, 5/day, 20/month.
-- =============================================================================================
select tests.authenticate_as('team_sender');
select tests.remember('agent2', public.create_agent('Greedy agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');

select matches(tests.try_sql(format(q, tests.world('agent2'), tests.world('t_clicksend'))), '^42501: .*' || pat,
               'team_sender grants their agent ' || what || ' → 42501 naming it')
from (values
    ('a scope they do not hold (mms)',
        $$select public.grant_agent_permission(%L, %L, '{sms,mms}', p_daily_send_limit => 1, p_monthly_send_limit => 1)$$, 'scopes'),
    ('a daily limit above theirs (6 > 5)',
        $$select public.grant_agent_permission(%L, %L, '{sms}', p_daily_send_limit => 6, p_monthly_send_limit => 1)$$, 'daily limit of 6'),
    ('no daily limit while they have one',
        $$select public.grant_agent_permission(%L, %L, '{sms}', p_daily_send_limit => null, p_monthly_send_limit => 1)$$, 'daily limit of none'),
    ('a monthly limit above theirs (21 > 20)',
        $$select public.grant_agent_permission(%L, %L, '{sms}', p_daily_send_limit => 1, p_monthly_send_limit => 21)$$, 'monthly limit of 21'),
    ('no monthly limit while they have one (the default)',
        $$select public.grant_agent_permission(%L, %L, '{sms}', p_daily_send_limit => 1)$$, 'monthly limit of none')
) as v (what, q, pat);

select is(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{sms}', p_daily_send_limit => 5, p_monthly_send_limit => 20)$$,
                               tests.world('agent2'), tests.world('t_clicksend'))), 'ok',
    'team_sender grants their agent exactly what they hold (sms, 5/day, 20/month): allowed (the refusals are not blanket)');

-- Raising the existing grant past the member through update_agent_permission.
select matches(tests.try_sql(format($$select public.update_agent_permission(%L, %L)$$, tests.world('t_grant'), c)), '^42501: ',
               'team_sender updates their agent''s grant to ' || what || ' → 42501')
from (values
    ('daily 6 (above their 5)', '{"daily_send_limit": 6}'),
    ('no daily limit', '{"daily_send_limit": null}'),
    ('monthly 50 (above their 20)', '{"monthly_send_limit": 50}'),
    ('scopes sms + history (history not held)', '{"scopes": ["sms", "history"]}')
) as v (what, c);
select tests.reset_authentication();
select results_eq(format('select allowed_scopes, daily_send_limit, monthly_send_limit from public.agent_permissions where id = %L', tests.world('t_grant')),
    $$ values ('{sms,balance}'::text[], 3, 10) $$, '... and the grant is unchanged (sms + balance, 3/day, 10/month)');

-- An expiry after theirs: the admin gives team_sender's permission an end date.
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20, p_expires_at => now() + interval '1 day');
select tests.authenticate_as('team_sender');
select matches(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{balance}', p_daily_send_limit => 1, p_monthly_send_limit => 1, p_expires_at => %s)$$,
                                    tests.world('agent2'), tests.world('t_clicksend'), e)), '^42501: .*access until',
               'with their permission ending in 1 day, team_sender grants ' || what || ' → 42501')
from (values ('access with no expiry', 'null'), ('access for 2 days', 'now() + interval ''2 days''')) as v (what, e);
select is(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{balance}', p_daily_send_limit => 1, p_monthly_send_limit => 1, p_expires_at => now() + interval '12 hours')$$,
                               tests.world('agent2'), tests.world('t_clicksend'))), 'ok',
    '... but access for 12 hours (before theirs ends) is allowed');

-- Sending without can_send: team_viewer holds sms in scopes, but may not send.
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_viewer')::uuid, p_can_view => true, p_can_send => false,
    p_scopes => '{sms,balance}');
select tests.authenticate_as('team_viewer');
select tests.remember('viewer_agent', public.create_agent('Viewer agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select matches(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{sms}')$$, tests.world('viewer_agent'), tests.world('t_clicksend'))),
    '^42501: .*can_send', 'team_viewer (sms in scope, no can_send) grants their agent sms → 42501 (sending needs can_send)');
select is(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{balance}')$$, tests.world('viewer_agent'), tests.world('t_clicksend'))),
    'ok', '... while a read-only scope (balance) is allowed');
select matches(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{email}')$$, tests.world('viewer_agent'), tests.world('t_smtp'))),
    '^PT404: ', 'team_viewer grants their agent a connection they cannot see (Acme SMTP) → PT404');

-- team_nobody (no permission at all) grants their agent anything → refused.
select tests.authenticate_as('team_nobody');
select tests.remember('nobody_agent', public.create_agent('Nobody agent', p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select matches(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{balance}')$$, tests.world('nobody_agent'), tests.world('t_clicksend'))),
    '^PT404: ', 'team_nobody grants their agent Acme ClickSend (which they cannot see) → PT404');

-- An admin granting a member's agent is held to the member, too.
select tests.authenticate_as('team_admin');
select matches(tests.try_sql(format($$select public.grant_agent_permission(%L, %L, '{sms,mms,balance,history}', p_daily_send_limit => 100)$$,
                                    tests.world('t_agent'), tests.world('t_clicksend'))),
    '^42501: ', 'team_admin granting team_sender''s agent more than team_sender holds → 42501');
select matches(tests.try_sql(format($$select public.update_agent_permission(%L, '{"daily_send_limit": null, "monthly_send_limit": null}')$$, tests.world('t_grant'))),
    '^42501: ', 'team_admin lifting the limits of team_sender''s agent beyond team_sender''s → 42501');

-- =============================================================================================
-- 2. Globex's admin acts on Acme
-- =============================================================================================
select tests.authenticate_as('other_admin');
select tests.remember('o_agent', public.create_agent('Globex agent', p_workspace_id => tests.world('o_workspace')::uuid) -> 'id');
select matches(tests.try_sql(format(q, variadic args)), '^' || code || ': ', 'other_admin: ' || what || ' → ' || code)
from (values
    ('renames Acme ClickSend', 'PT404', $$select public.update_connection(%L, '{"name":"pwned"}')$$, array[tests.world('t_clicksend')]),
    ('widens Acme ClickSend''s scopes', 'PT404', $$select public.update_connection(%L, '{"scopes":["sms","mms","balance","history"]}')$$, array[tests.world('t_clicksend')]),
    ('rotates Acme ClickSend''s credentials to its own', 'PT404', $$select public.rotate_connection_credentials(%L, '{"username":"x","api_key":"attacker"}')$$, array[tests.world('t_clicksend')]),
    ('deletes Acme SMTP', 'PT404', $$select public.delete_connection(%L)$$, array[tests.world('t_smtp')]),
    ('creates a connection in Acme', 'PT404', $$select public.create_connection('clicksend_sms', 'Planted', '{"username":"x","api_key":"y"}', p_workspace_id => %L)$$, array[tests.world('t_workspace')]),
    ('removes team_sender from Acme', 'PT404', $$select public.remove_workspace_member(%L, %L)$$, array[tests.world('t_workspace'), tests.world('t_sender')]),
    ('invites itself into Acme as an admin', 'PT404', $$select public.invite_workspace_member(%L, 'other_admin@example.test', 'admin')$$, array[tests.world('t_workspace')]),
    ('changes team_admin''s role in Acme', 'PT404', $$select public.change_workspace_member_role(%L, %L, 'member')$$, array[tests.world('t_workspace'), tests.world('t_admin')]),
    ('sets team_sender''s member permission', 'PT404', $$select public.set_member_permission(%L, %L, true, true, true)$$, array[tests.world('t_clicksend'), tests.world('t_sender')]),
    ('adds a number to Acme ClickSend', 'PT404', $$select public.add_phone_number(%L, '+61400000666')$$, array[tests.world('t_clicksend')]),
    ('re-assigns Acme''s pool number', 'PT404', $$select public.update_phone_number(%L, jsonb_build_object('assigned_to', %L))$$, array[tests.world('t_number_pool'), tests.world('o_admin')]),
    ('deletes team_sender''s number', 'PT404', $$select public.delete_phone_number(%L)$$, array[tests.world('t_number_sender')]),
    ('sets Acme''s pool number as its own default', 'PT404', $$select public.set_member_default_number(%L)$$, array[tests.world('t_number_pool')]),
    ('grants its Globex agent on Acme ClickSend', 'PT404', $$select public.grant_agent_permission(%L, %L, '{sms}')$$, array[tests.world('o_agent'), tests.world('t_clicksend')]),
    ('grants Acme''s agent on Globex ClickSend', 'PT404', $$select public.grant_agent_permission(%L, %L, '{sms}')$$, array[tests.world('t_agent'), tests.world('o_clicksend')]),
    ('lifts the limits of Acme''s grant', 'PT404', $$select public.update_agent_permission(%L, '{"daily_send_limit": null}')$$, array[tests.world('t_grant')]),
    ('revokes Acme''s grant', 'PT404', $$select public.revoke_agent_permission(%L)$$, array[tests.world('t_grant')]),
    ('issues a key for Acme''s agent', 'PT404', $$select public.issue_agent_key(%L)$$, array[tests.world('t_agent')]),
    ('creates an agent in Acme', '42501', $$select public.create_agent('Planted', p_workspace_id => %L)$$, array[tests.world('t_workspace')])
) as v (what, code, q, args);
select tests.reset_authentication();
select tests.remember('t_key_id', to_jsonb((select id from public.agent_keys where agent_id = tests.world('t_agent')::uuid)));
select tests.authenticate_as('other_admin');
select matches(tests.try_sql(format($$select public.revoke_agent_key(%L)$$, tests.world('t_key_id'))), '^PT404: ',
    'other_admin: revokes Acme''s agent key → PT404');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'other_admin: reads none of Acme''s audit trail');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('o_admin')::uuid, p_connection_id => tests.world('t_clicksend')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user') #>> '{error,details,reason}', 'no_grant',
    'other_admin sending directly through Acme ClickSend (named by id) → no_grant, as if it did not exist');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('o_admin')::uuid, p_agent_id => tests.world('t_agent')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user_agent') -> 'error',
    '{"code": "not_found", "message": "agent not found", "details": null}'::jsonb,
    'other_admin driving Acme''s agent with its own user id → agent not found');
select tests.reset_authentication();
select results_eq(format($$ select (select name || '/' || status || '/' || array_to_string(granted_scopes, ',') from public.connections where id = %L),
                                  (select count(*)::int from public.connections where workspace_id = %L and deleted_at is null),
                                  (select role from public.workspace_members where workspace_id = %L and user_id = %L),
                                  (select count(*)::int from public.phone_numbers where workspace_id = %L),
                                  (select count(*)::int from public.agent_keys where agent_id = %L and revoked_at is null),
                                  (select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets
                                   where id = (select secret_id from public.connections where id = %L)) $$,
                           tests.world('t_clicksend'), tests.world('t_workspace'), tests.world('t_workspace'), tests.world('t_admin'),
                           tests.world('t_workspace'), tests.world('t_agent'), tests.world('t_clicksend')),
    $$ values ('Acme ClickSend/active/sms,mms,balance,history'::text, 3, 'admin'::text, 3, 1, 'acme-clicksend-secret'::text) $$,
    'after Globex''s attempts Acme''s connection, members, numbers, keys and Vault secret are unchanged');

-- =============================================================================================
-- 3. A member with can_send but not can_configure
-- =============================================================================================
select tests.authenticate_as('team_sender');
select matches(tests.try_sql(format(q, tests.world('t_clicksend'))), '^42501: ', 'team_sender (can_send, no can_configure): ' || what || ' → 42501')
from (values
    ('renames Acme ClickSend', $$select public.update_connection(%L, '{"name":"Mine now"}')$$),
    ('changes its config (base_url)', $$select public.update_connection(%L, '{"config":{"base_url":"https://evil.example.com"}}')$$),
    ('widens its scopes', $$select public.update_connection(%L, '{"scopes":["sms","mms","balance","history"]}')$$),
    ('disables it', $$select public.update_connection(%L, '{"status":"disabled"}')$$),
    ('rotates its credentials', $$select public.rotate_connection_credentials(%L, '{"username":"x","api_key":"attacker"}')$$),
    ('deletes it', $$select public.delete_connection(%L)$$),
    ('adds a number to it', $$select public.add_phone_number(%L, '+61400000777')$$),
    ('raises its own permission', $$select public.set_member_permission(%L, auth.uid(), true, true, true)$$)
) as v (what, q);

-- =============================================================================================
-- 4. A member with can_configure
-- =============================================================================================
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_nobody')::uuid, p_can_view => true, p_can_send => false,
    p_can_configure => true, p_scopes => '{balance}');
select tests.authenticate_as('team_nobody');
select is(tests.try_sql(format($$select public.update_connection(%L, '{"name":"Acme SMS"}')$$, tests.world('t_clicksend'))), 'ok',
    'team_nobody with can_configure renames Acme ClickSend: allowed');
select is(tests.try_sql(format($$select public.update_connection(%L, '{"config":{"sender_id":"AcmeSMS"}}')$$, tests.world('t_clicksend'))), 'ok',
    'team_nobody with can_configure changes its config: allowed');
select matches(tests.try_sql(format(q, tests.world('t_clicksend'))), '^42501: ', 'team_nobody with can_configure: ' || what || ' → 42501')
from (values
    ('narrows its scopes', $$select public.update_connection(%L, '{"scopes":["balance"]}')$$),
    ('renames it and narrows its scopes in one change', $$select public.update_connection(%L, '{"name":"Sneaky","scopes":["sms"]}')$$),
    ('disables it', $$select public.update_connection(%L, '{"status":"disabled"}')$$),
    ('rotates its credentials', $$select public.rotate_connection_credentials(%L, '{"username":"x","api_key":"attacker"}')$$),
    ('deletes it', $$select public.delete_connection(%L)$$),
    ('gives itself can_send', $$select public.set_member_permission(%L, auth.uid(), true, true, true)$$)
) as v (what, q);
-- Where the credentials are sent is not "configuration": pointing Acme SMTP at another
-- server would hand it the SMTP password (AUTH) at the next send or test.
select matches(tests.try_sql(format($$select public.update_connection(%L, '{"config":{"sender_id":"AcmeSMS","base_url":"https://clicksend.attacker.example/v3"}}')$$,
                                    tests.world('t_clicksend'))), '^42501: ',
    'team_nobody with can_configure cannot point Acme ClickSend''s base_url at their own server (the Basic auth header would go there) → 42501');
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_smtp')::uuid, tests.world('t_nobody')::uuid, p_can_view => true, p_can_configure => true, p_scopes => '{}');
select tests.authenticate_as('team_nobody');
select matches(tests.try_sql(format($$select public.update_connection(%L, '{"config": {"host": "smtp.attacker.example", "port": 465, "security": "tls", "from_email": "team@acme.test"}}')$$,
                                    tests.world('t_smtp'))), '^42501: ',
    'team_nobody with can_configure on Acme SMTP cannot point its host at their own server (it would receive the SMTP password) → 42501');
select tests.reset_authentication();
select results_eq(format('select name, config, status, granted_scopes, deleted_at is null from public.connections where id = %L', tests.world('t_clicksend')),
    $$ values ('Acme SMS'::text, '{"sender_id": "AcmeSMS"}'::jsonb, 'active'::text, '{sms,mms,balance,history}'::text[], true) $$,
    '... Acme ClickSend has the new name and config, and its scopes, status and existence are untouched');
select is((select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets
           where id = (select secret_id from public.connections where id = tests.world('t_clicksend')::uuid)),
    'acme-clicksend-secret', '... and its Vault secret is the one the owner stored');

-- The webhook token is the only proof a ClickSend webhook carries: members never read it.
select tests.authenticate_as('team_viewer');
select is((select count(*)::int from public.connection_webhooks), 0,
    'team_viewer (can_view on Acme ClickSend) reads no webhook token');
select tests.authenticate_as('team_sender');
select is((select count(*)::int from public.connection_webhooks), 0,
    'team_sender (can_send on Acme ClickSend) reads no webhook token');
select is(tests.try_sql('select webhook_token from public.connections limit 1') like '42%', true,
    '... and the connections table has no webhook_token column to read it from');
select tests.authenticate_as('team_admin');
select is((select webhook_token from public.connection_webhooks where connection_id = tests.world('t_clicksend')::uuid), tests.world('t_webhook_token'),
    'team_admin reads Acme ClickSend''s webhook token (the zeros above are not vacuous)');

-- =============================================================================================
-- 5. A removed member's agent
-- =============================================================================================
select tests.authenticate_as_service_role();
select ok(private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => tests.world('h_removed_key'),
    p_recipients => '{+61400000001}', p_auth_mode => 'agent_key') #>> '{error,details,reason}' in ('principal_not_member', 'agent_disabled'),
    'a removed member''s agent key: begin_tool_call refuses (agent_disabled / principal_not_member)');
select is(private.begin_tool_call('clicksend_get_balance', p_agent_key_hash => tests.world('h_removed_key'), p_auth_mode => 'agent_key') -> 'ok',
    'false'::jsonb, '... for a read-only tool too');
select ok(coalesce(tests.try_sql(format($$select private.list_tools_for_caller(p_agent_key_hash => %L)$$, tests.world('h_removed_key'))) <> 'ok'
              or private.list_tools_for_caller(p_agent_key_hash => tests.world('h_removed_key'))::jsonb = '[]'::jsonb, false),
    'a removed member''s agent key lists no tools (or is refused)');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_removed')::uuid, p_connection_id => tests.world('t_clicksend')::uuid,
    p_recipients => '{+61400000001}', p_auth_mode => 'user') #>> '{error,details,reason}', 'no_grant',
    'the removed member sending directly through Acme ClickSend → no_grant');

select tests.authenticate_as('team_removed');
select matches(tests.try_sql(format($$select public.issue_agent_key(%L)$$, tests.world('t_removed_agent'))), '^PT404: ',
    'the removed member cannot mint a new key for their old Acme agent (PT404)');
select from tests.try_sql(format($$update public.agents set is_active = true, name = 'Back again' where id = %L$$, tests.world('t_removed_agent')));
select tests.reset_authentication();
select results_eq(format('select is_active, name from public.agents where id = %L', tests.world('t_removed_agent')),
    $$ values (false, 'Removed agent'::text) $$, 'the removed member cannot re-enable or rename their old Acme agent');
select tests.authenticate_as_service_role();
select is(private.begin_tool_call('clicksend_send_sms', p_agent_key_hash => tests.world('h_removed_key'),
    p_recipients => '{+61400000001}', p_auth_mode => 'agent_key') -> 'ok', 'false'::jsonb,
    '... and after those attempts the old key is still refused');

-- =============================================================================================
-- 6. Members read no audit trail
-- =============================================================================================
select tests.authenticate_as('team_sender');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_sender (member, view+send) reads none of Acme''s audit trail');
select tests.authenticate_as('team_viewer');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_viewer (member, view only) reads none of Acme''s audit trail');
select tests.authenticate_as('team_nobody');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_nobody (member, can_configure) reads none of Acme''s audit trail');
select tests.authenticate_as('team_removed');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_removed (removed member) reads none of Acme''s audit trail');
select tests.authenticate_as('team_invitee');
select is((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), 0,
    'team_invitee (invited, not joined) reads none of Acme''s audit trail');
select tests.authenticate_as('team_admin');
select cmp_ok((select count(*)::int from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), '>', 10,
    'team_admin reads Acme''s audit trail (the zeros above are not vacuous)');

-- =============================================================================================
-- 7. Taking a member's permission away reaches their agent at once
-- =============================================================================================
select tests.reset_authentication();
create function tests.m20_tools() returns text[]
language sql
as $$ select coalesce(array_agg(t ->> 'name' order by t ->> 'name'), '{}')
      from json_array_elements(private.agent_tools(tests.world('t_agent')::uuid)) t $$;
grant execute on function tests.m20_tools() to service_role;
create function tests.m20_send(p_capability text default 'clicksend_send_sms') returns jsonb
language sql
as $$ select private.begin_tool_call(p_capability, p_agent_key_hash => tests.world('h_key'),
                                     p_recipients => case when p_capability like '%send%' then '{+61400000001}'::text[] else '{}' end,
                                     p_auth_mode => 'agent_key') $$;
grant execute on function tests.m20_send(text) to service_role;

-- Back to the fixture's permission for team_sender (section 1 gave it an expiry).
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select tests.authenticate_as_service_role();
select is(tests.m20_tools(), '{clicksend_get_balance,message_status,sms_send}'::text[], 'baseline: the sender''s agent has sms_send, get_balance and message_status');
select is(tests.m20_send() -> 'ok', 'true'::jsonb, 'baseline: the sender''s agent may send');

-- can_send taken away
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => false,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select tests.authenticate_as_service_role();
select is(tests.m20_send() #>> '{error,details,reason}', 'member_cannot_send', 'after can_send is taken from team_sender, their agent''s send is refused (member_cannot_send)');
select is(tests.m20_tools(), '{clicksend_get_balance,message_status}'::text[], '... and sms_send vanishes from its tools (get_balance stays)');
select is(tests.m20_send('clicksend_get_balance') -> 'ok', 'true'::jsonb, '... while the balance still works');

-- scopes narrowed
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select tests.authenticate_as_service_role();
select is(tests.m20_send() #>> '{error,details,reason}', 'scope', 'after team_sender''s scopes are narrowed to balance, their agent''s send is refused (scope)');
select is(tests.m20_tools(), '{clicksend_get_balance,message_status}'::text[], '... and sms_send vanishes from its tools');

-- the connection's scopes narrowed by the admin
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select public.update_connection(tests.world('t_clicksend')::uuid, '{"scopes":["balance","history"]}');
select tests.authenticate_as_service_role();
select is(tests.m20_send() #>> '{error,details,reason}', 'scope', 'after the admin narrows the connection to balance + history, the agent''s send is refused (scope)');
select is(tests.m20_tools(), '{clicksend_get_balance,message_status}'::text[], '... and sms_send vanishes from its tools');
select tests.authenticate_as('team_admin');
select is((select allowed_scopes from public.agent_permissions where id = tests.world('t_grant')::uuid), '{balance}'::text[],
    '... the narrowing reached the grant itself (re-widening the connection does not give sms back)');
select public.update_connection(tests.world('t_clicksend')::uuid, '{"scopes":["sms","mms","balance","history"]}');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select public.update_agent_permission(tests.world('t_grant')::uuid, '{"scopes":["sms","balance"]}');

-- the member permission expired
select tests.reset_authentication();
update public.member_permissions set expires_at = now() - interval '1 second'
where id = tests.world('t_sender_permission')::uuid;
select tests.authenticate_as_service_role();
select is(tests.m20_send() #>> '{error,details,reason}', 'member_permission_expired', 'once team_sender''s permission has expired, their agent is refused (member_permission_expired)');
select is(tests.m20_tools(), '{}'::text[], '... and lists no tools');

-- the member permission removed
select tests.reset_authentication();
update public.member_permissions set expires_at = null where id = tests.world('t_sender_permission')::uuid;
select tests.authenticate_as_service_role();
select is(tests.m20_send() -> 'error', null, 'with the permission restored the agent may send again (the refusals above came from the permission)');
select tests.authenticate_as('team_admin');
select public.remove_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid);
select tests.authenticate_as_service_role();
select is(tests.m20_send() #>> '{error,details,reason}', 'no_member_permission', 'after remove_member_permission, the agent''s next send is refused (no_member_permission)');
select is(tests.m20_send('clicksend_get_balance') #>> '{error,details,reason}', 'no_member_permission', '... and so is its balance check');
select is(tests.m20_tools(), '{}'::text[], '... and all its tools vanish');
select is(private.list_tools_for_caller(p_agent_key_hash => tests.world('h_key'))::jsonb, '[]'::jsonb, '... including through its key');

-- an agent an admin disabled stays disabled for its member
select tests.authenticate_as('team_admin');
select isnt_empty(format('update public.agents set is_active = false where id = %L returning id', tests.world('t_agent')),
    'an admin disables a member''s agent');
select tests.authenticate_as('team_sender');
select throws_ok(format('update public.agents set is_active = true where id = %L', tests.world('t_agent')),
    '42501', 'this agent was disabled by an admin; only an admin can enable it again',
    '... and the member cannot enable it again');
select tests.authenticate_as('team_admin');
select isnt_empty(format('update public.agents set is_active = true where id = %L returning id', tests.world('t_agent')),
    '... an admin can');
select tests.authenticate_as('team_sender');
select isnt_empty(format('update public.agents set is_active = false where id = %L returning id', tests.world('t_agent')),
    'a member disables their own agent ...');
select isnt_empty(format('update public.agents set is_active = true where id = %L returning id', tests.world('t_agent')),
    '... and enables it again');

-- the member removed from the workspace
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_view => true, p_can_send => true,
    p_scopes => '{sms,balance}', p_daily_send_limit => 5, p_monthly_send_limit => 20);
select public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_sender')::uuid);
select tests.authenticate_as_service_role();
select is(tests.m20_send() -> 'ok', 'false'::jsonb, 'after team_sender is removed from Acme, their agent''s next call is refused');
select is(tests.m20_tools(), '{}'::text[], '... and it lists no tools');

select * from finish();
rollback;
