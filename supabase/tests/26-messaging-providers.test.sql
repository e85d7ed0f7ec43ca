/**
 * Twilio, Telnyx and Exotel in the catalogue, and what came with them:
 *   - a connection's config is checked against its provider's config schema;
 *   - number sync adds, updates and deactivates numbers, never dropping an assignment,
 *     for admins and the service only;
 *   - the service reads a connection's secret for a webhook signature by token only;
 *   - webhook events carry a normalised delivery status, and an inbound message belongs
 *     to the member its number is assigned to.
 */
begin;
set local search_path = extensions, public;
select plan(51);

select from tests.seed_team();

/** Syncs Acme ClickSend's numbers as p_user with p_numbers. */
create function tests.m26_sync(p_user uuid, p_numbers jsonb) returns jsonb
language sql
as $$ select private.sync_phone_numbers(p_user, tests.world('t_clicksend')::uuid, p_numbers, '{"ip": "198.51.100.7", "user_agent": "sync-test"}') $$;
grant execute on function tests.m26_sync(uuid, jsonb) to service_role;

-- =============================================================================================
-- Catalogue
-- =============================================================================================
select results_eq($$ select name, function_name, webhook_kinds from public.service_providers where name in ('twilio', 'telnyx', 'exotel') order by name $$,
    $$ values ('exotel'::text, 'exotel'::text, array['status', 'whatsapp']), ('telnyx', 'telnyx', array['events']),
              ('twilio', 'twilio', array['status', 'inbound']) $$,
    'the three providers are in the catalogue with their functions and webhook kinds');
select results_eq($$ select p.name, array_agg(c.capability_key order by c.display_order) from public.integration_capabilities c
                     join public.service_providers p on p.id = c.provider_id where p.name in ('twilio', 'telnyx', 'exotel')
                     group by p.name order by p.name $$,
    $$ values ('exotel'::text, array['exotel_send_sms', 'exotel_send_whatsapp', 'exotel_click_to_call']),
              ('telnyx', array['telnyx_send_sms', 'telnyx_send_mms', 'telnyx_get_balance']),
              ('twilio', array['twilio_send_sms', 'twilio_send_mms', 'twilio_send_whatsapp', 'twilio_get_balance']) $$,
    'each provider has its tools');
select is((select required_scope from public.integration_capabilities where capability_key = 'exotel_click_to_call'), 'voice',
    'click-to-call needs the voice scope');

-- =============================================================================================
-- Config against the provider's schema
-- =============================================================================================
create temporary table m26_schema as select '{"type": "object", "additionalProperties": false, "required": ["account_sid"],
    "properties": {"account_sid": {"type": "string", "pattern": "^[a-z0-9]{3,40}$", "description": "the account sid"},
                   "region": {"type": "string", "enum": ["sg", "in"]},
                   "ttl": {"type": "integer", "minimum": 1, "maximum": 60},
                   "label": {"type": "string", "maxLength": 5},
                   "on": {"type": "boolean"}}}'::jsonb as s;
select is(tests.try_sql(format('select private.validate_config_schema(%L, %L, %L)', 'p', (select s from m26_schema), c)), expect, what)
from (values
    ('a complete config passes', '{"account_sid": "abc123", "region": "in", "ttl": 5, "label": "x", "on": true}', 'ok'),
    ('null and "" mean not set', '{"account_sid": "abc", "region": null, "label": ""}', 'ok'),
    ('an unknown field is refused', '{"account_sid": "abc", "surprise": 1}', '22023: unknown config field "surprise" for p; expected one of account_sid, label, on, region, ttl'),
    ('a missing required field is refused', '{"region": "sg"}', '22023: config field "account_sid" is required for p'),
    ('an empty required field is refused', '{"account_sid": ""}', '22023: config field "account_sid" is required for p'),
    ('a value outside the enum is refused', '{"account_sid": "abc", "region": "us"}', '22023: config.region must be one of sg, in'),
    ('a string where an integer belongs is refused', '{"account_sid": "abc", "ttl": "5"}', '22023: config.ttl must be an integer'),
    ('a fraction where an integer belongs is refused', '{"account_sid": "abc", "ttl": 1.5}', '22023: config.ttl must be an integer'),
    ('a number out of range is refused', '{"account_sid": "abc", "ttl": 61}', '22023: config.ttl is out of range'),
    ('a string over maxLength is refused', '{"account_sid": "abc", "label": "toolong"}', '22023: config.label must be 0 to 5 characters'),
    ('a string not matching the pattern is refused', '{"account_sid": "ABC!"}', '22023: config.account_sid is not in the expected form: the account sid'),
    ('a number where a boolean belongs is refused', '{"account_sid": "abc", "on": 1}', '22023: config.on must be a boolean')
) as v (what, c, expect);
select is(tests.try_sql(format('select private.validate_config_schema(%L, %L, %L)', 'p', '{"type": "object", "properties": {}}', '{"anything": 1}')),
    'ok', 'a schema without additionalProperties false lets other fields through');
select throws_like(format('select private.validate_config_schema(%L, %L, %L)', 'p', (select s from m26_schema), '{"account_sid": "abc", "region": "us"}'),
    '%config.region must be one of sg, in%', 'the message names the field and the allowed values, not the value');

-- =============================================================================================
-- Secrets for webhook signatures, and connections for admins
-- =============================================================================================
select tests.authenticate_as('team_owner');
select tests.remember('m26_twilio', public.create_connection('twilio', 'Acme Twilio',
    '{"account_sid": "AC5f3a0c9e2b7d41e8a6c0f4b19d2e7a31", "auth_token": "acme-twilio-token"}', '{}',
    p_workspace_id => tests.world('t_workspace')::uuid) -> 'id');
select tests.authenticate_as_service_role();
select is(private.webhook_connection_secrets(w.webhook_token, 'twilio') -> 'credentials' ->> 'auth_token', 'acme-twilio-token',
    'the service reads the auth token of the connection a webhook token addresses')
from public.connection_webhooks w where w.connection_id = (tests.recall('m26_twilio') #>> '{}')::uuid;
select is(private.webhook_connection_secrets(w.webhook_token, 'telnyx'), null, 'not under another provider''s name')
from public.connection_webhooks w where w.connection_id = (tests.recall('m26_twilio') #>> '{}')::uuid;
select is(private.webhook_connection_secrets('0123456789abcdef0123456789abcdef', 'twilio'), null, 'not for an unknown token');

select is(private.begin_tool_call('twilio_send_sms', p_user_id => tests.get_supabase_uid('team_owner'),
        p_connection_id => (tests.recall('m26_twilio') #>> '{}')::uuid, p_recipients => '{+14155550123}', p_auth_mode => 'user') ->> 'status_callback',
    (select 'twilio/webhooks/' || w.webhook_token || '/status' from public.connection_webhooks w
     where w.connection_id = (tests.recall('m26_twilio') #>> '{}')::uuid),
    'a Twilio send is told to report its status to the connection''s own webhook');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.get_supabase_uid('team_owner'),
        p_connection_id => tests.world('t_clicksend')::uuid, p_recipients => '{+61499999999}', p_auth_mode => 'user') -> 'status_callback',
    'null'::jsonb, 'a ClickSend send is not (its receipts are set up on the account)');
select isnt(private.connection_for_admin(tests.get_supabase_uid('team_admin'), (tests.recall('m26_twilio') #>> '{}')::uuid, 'twilio'), null,
    'an admin of the workspace gets the connection for a sync');
select is(private.connection_for_admin(tests.get_supabase_uid('team_sender'), (tests.recall('m26_twilio') #>> '{}')::uuid, 'twilio'), null,
    'a member does not');
select is(private.connection_for_admin(tests.get_supabase_uid('other_admin'), (tests.recall('m26_twilio') #>> '{}')::uuid, 'twilio'), null,
    'another workspace''s admin does not');
select isnt(private.connection_for_admin(null, (tests.recall('m26_twilio') #>> '{}')::uuid, 'twilio'), null,
    'the service itself does');
select is(private.connection_for_admin(tests.get_supabase_uid('team_owner'), (tests.recall('m26_twilio') #>> '{}')::uuid, 'telnyx'), null,
    'not under another provider''s name');

-- =============================================================================================
-- Number sync
-- =============================================================================================

select tests.remember('m26_defaults', (select coalesce(jsonb_agg(d.phone_number_id), '[]') from public.member_default_numbers d
    join public.phone_numbers n on n.id = d.phone_number_id where n.connection_id = tests.world('t_clicksend')::uuid));
select isnt(jsonb_array_length(tests.recall('m26_defaults')), 0, 'the fixture has member default numbers');
select is(tests.m26_sync(tests.get_supabase_uid('team_admin'), '[
    {"phone_number": "+61400000100", "friendly_name": "Sender''s line", "capabilities": {"sms": true, "mms": true, "voice": false, "whatsapp": false}},
    {"phone_number": "+61400000200", "friendly_name": "Pool", "capabilities": {"sms": true, "mms": true}},
    {"phone_number": "+61400000400", "friendly_name": "New line", "capabilities": {"sms": true, "voice": true}},
    {"phone_number": "+61400000500", "capabilities": {"sms": false, "voice": false}},
    {"phone_number": "not a number", "capabilities": {"sms": true}}]'),
    '{"added": 1, "updated": 1, "unchanged": 1, "skipped": 2, "deactivated": 1}'::jsonb,
    'a sync adds the new number, updates a changed one, skips numbers without capabilities or form, deactivates the missing one');
select results_eq($$ select e164, status, capabilities, assigned_to from public.phone_numbers
                     where connection_id = tests.world('t_clicksend')::uuid order by e164 $$,
    $$ values ('+61400000100'::text, 'active'::text, array['sms', 'mms'], tests.get_supabase_uid('team_sender')),
              ('+61400000200', 'active', array['sms', 'mms'], null::uuid),
              ('+61400000300', 'inactive', array['sms'], tests.get_supabase_uid('team_admin')),
              ('+61400000400', 'active', array['sms', 'voice'], null) $$,
    'the provider''s capabilities win, the new number joins the pool, the unlisted one is inactive and keeps its member');
select is((select is_default from public.phone_numbers where e164 = '+61400000400'), false,
    'a new number does not take the default from the connection''s existing one');
select is(tests.m26_sync(tests.get_supabase_uid('team_admin'), '[]'),
    '{"added": 0, "updated": 0, "unchanged": 0, "skipped": 0, "deactivated": 3}'::jsonb,
    'a provider listing nothing deactivates every number ...');
select is((select count(*)::int from public.phone_numbers where connection_id = tests.world('t_clicksend')::uuid), 4,
    '... and deletes none');
select is((select count(*)::int from public.member_default_numbers d
           join public.phone_numbers n on n.id = d.phone_number_id where n.connection_id = tests.world('t_clicksend')::uuid), 0,
    'a member''s default moves off an inactive number, as when an admin deactivates one (the assignment stays)');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.get_supabase_uid('team_sender'),
        p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61499999999}', p_auth_mode => 'user_agent',
        p_sender => '+61400000100') -> 'error' ->> 'code', 'permission_denied',
    'an inactive number is never sent from');
select is(tests.m26_sync(tests.get_supabase_uid('team_owner'), '[
    {"phone_number": "+61400000100", "capabilities": {"sms": true, "mms": true}},
    {"phone_number": "+61400000300", "capabilities": {"sms": true}}]'),
    '{"added": 0, "updated": 2, "unchanged": 0, "skipped": 0, "deactivated": 0}'::jsonb,
    'listed again, numbers come back active');
select results_eq($$ select e164, assigned_to, friendly_name from public.phone_numbers
                     where e164 in ('+61400000100', '+61400000300') order by e164 $$,
    $$ values ('+61400000100'::text, tests.get_supabase_uid('team_sender'), 'Sender''s line'::text),
              ('+61400000300', tests.get_supabase_uid('team_admin'), 'Admin''s line') $$,
    'with their members and names (a listing without a name keeps ours)');
select is(private.begin_tool_call('clicksend_send_sms', p_user_id => tests.get_supabase_uid('team_sender'),
        p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61499999999}', p_auth_mode => 'user_agent',
        p_sender => '+61400000100') ->> 'sender', '+61400000100',
    'and the member sends from their number again');
select results_eq($$ select action, actor_user_id, details ->> 'added', host(ip), user_agent from public.audit_events
                     where action = 'numbers.synced' order by id $$,
    $$ values ('numbers.synced'::text, tests.get_supabase_uid('team_admin'), '1'::text, '198.51.100.7'::text, 'sync-test'::text),
              ('numbers.synced', tests.get_supabase_uid('team_admin'), '0', '198.51.100.7', 'sync-test'),
              ('numbers.synced', tests.get_supabase_uid('team_owner'), '0', '198.51.100.7', 'sync-test') $$,
    'every sync is audited with its actor and client');
select throws_ok(format('select tests.m26_sync(%L, %L)', tests.get_supabase_uid('team_sender'), '[]'), 'PT404', 'connection not found',
    'a member cannot sync numbers');
select throws_ok(format('select tests.m26_sync(%L, %L)', tests.get_supabase_uid('other_admin'), '[]'), 'PT404', 'connection not found',
    'another workspace''s admin cannot');
select throws_ok(format('select tests.m26_sync(%L, %L)', tests.get_supabase_uid('team_admin'), '{"not": "an array"}'), '22023', null,
    'numbers must be a list');
select is(private.sync_phone_numbers(null, tests.world('t_clicksend')::uuid, '[{"phone_number": "+61400000100", "capabilities": {"sms": true, "mms": true}}, {"phone_number": "+61400000300", "capabilities": {"sms": true}}]') ->> 'unchanged',
    '2', 'the service may sync (scheduled syncs)');

select tests.authenticate_as('team_admin');
select throws_ok(format('select private.sync_phone_numbers(null, %L, %L)', tests.world('t_clicksend'), '[]'), '42501', null,
    'a signed-in user cannot call the sync itself (only through the function, which checks the admin)');
select tests.clear_authentication();
select throws_ok(format('select private.sync_phone_numbers(null, %L, %L)', tests.world('t_clicksend'), '[]'), '42501', null,
    'nor can anon');

-- =============================================================================================
-- Normalised delivery and inbound attribution
-- =============================================================================================
select tests.authenticate_as_service_role();
select tests.remember('m26_op', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.get_supabase_uid('team_sender'),
    p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61499999999}', p_auth_mode => 'user_agent') -> 'operation_id');
select private.finish_tool_call((tests.recall('m26_op') #>> '{}')::uuid, 'succeeded', 1, '{MSG-26}');
select is(private.record_message_events(tests.world('t_webhook_token'), 'clicksend_sms', '[
    {"provider_event_id": "r1", "event_type": "delivery_receipt", "status": "201", "delivery_status": "delivered",
     "provider_message_id": "MSG-26", "recipient": "+61499999999", "payload": {}},
    {"provider_event_id": "i1", "event_type": "inbound_message", "status": "received", "channel": "sms",
     "provider_message_id": "IN-1", "recipient": "+61488888888", "our_number": "+61400000300", "payload": {}},
    {"provider_event_id": "i2", "event_type": "inbound_message", "status": "received", "channel": "sms",
     "provider_message_id": "IN-2", "recipient": "+61499999999", "our_number": "+61400000200", "payload": {}},
    {"provider_event_id": "i3", "event_type": "inbound_message", "status": "received", "channel": "sms",
     "provider_message_id": "IN-3", "recipient": "+61477777777", "our_number": "+61400000200", "payload": {}}]') ->> 'inserted',
    '4', 'four events recorded');
select results_eq($$ select provider_event_id, delivery_status, channel, user_id, operation_id is not null
                     from public.message_events where connection_id = tests.world('t_clicksend')::uuid order by provider_event_id $$,
    $$ values ('i1'::text, null::text, 'sms'::text, tests.get_supabase_uid('team_admin'), false),
              ('i2', null, 'sms', tests.get_supabase_uid('team_sender'), true),
              ('i3', null, 'sms', null::uuid, false),
              ('r1', 'delivered', 'sms', tests.get_supabase_uid('team_sender'), true) $$,
    'a receipt keeps its normalised status, its operation''s member and channel; an inbound message goes to its number''s member, '
    'else the member who last texted its author, else nobody (admins see it)');
select is(tests.try_sql(format('select private.record_message_events(%L, %L, %L)', tests.world('t_webhook_token'), 'clicksend_sms',
    '[{"provider_event_id": "bad", "event_type": "delivery_receipt", "delivery_status": "exploded", "payload": {}}]')) like '23514:%', true,
    'a status outside the normalised set is refused');

select tests.authenticate_as('team_admin');
select is((select count(*)::int from public.message_events where provider_event_id like 'i%'), 3, 'the admin sees every inbound message');
select tests.authenticate_as('team_sender');
select results_eq($$ select provider_event_id from public.message_events order by 1 $$, $$ values ('i2'::text), ('r1') $$,
    'the sender sees what belongs to them only');
select tests.authenticate_as('team_viewer');
select is((select count(*)::int from public.message_events), 0, 'a viewer sees none of it');

select * from finish();
rollback;
