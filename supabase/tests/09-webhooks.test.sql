/**
 * Provider webhooks (service only): private.record_message_events stores events for the
 * connection an unguessable token addresses, deduplicates them by provider_event_id,
 * links them to the operation (our operation id, else the provider message id, else —
 * for an inbound reply — the last message sent to its author), never across workspaces,
 * files each event in the connection's workspace, attributes it to the member its
 * operation was for (no one when it is linked to nothing), and refuses unknown tokens.
 * The fixture's seed_activity() already sent one SMS per user (provider id '<u>-msg-1',
 * to +61400000001) and recorded its delivery receipt '<u>-msg-1:delivered', and one
 * e-mail per user's team member ('<u>-mail-1', event '<u>-mail-1:delivered').
 */
begin;
set local search_path = extensions, public;
select plan(27);

select from tests.seed_world();
select from tests.seed_activity();
select tests.authenticate_as_service_role();

/** The message_events rows of a connection, for comparisons. */
create temporary view ev as
    select e.connection_id, e.provider_event_id, e.operation_id, e.user_id, e.workspace_id, e.event_type, e.status
    from public.message_events e;

-- ---- Dedupe -------------------------------------------------------------------------------------------
select is((select count(*)::int from ev where provider_event_id = 'a-msg-1:delivered'), 1, 'the fixture receipt was stored once');
select is(private.record_message_events(tests.world('a_webhook_token'), 'clicksend_sms', jsonb_build_array(
              jsonb_build_object('provider_event_id', 'a-msg-1:delivered', 'event_type', 'delivery_receipt', 'status', 'delivered',
                                 'provider_message_id', 'a-msg-1'))),
    '{"ok": true, "inserted": 0, "duplicates": 1}'::jsonb, 'a redelivered receipt is reported as a duplicate');
select is((select count(*)::int from ev where provider_event_id = 'a-msg-1:delivered'), 1, '... and not stored twice');
select is(private.record_message_events(tests.world('a_webhook_token'), 'clicksend_sms', jsonb_build_array(
              jsonb_build_object('provider_event_id', 'a-ev-2', 'event_type', 'delivery_receipt', 'status', 'failed'),
              jsonb_build_object('provider_event_id', 'a-ev-2', 'event_type', 'delivery_receipt', 'status', 'failed'))),
    '{"ok": true, "inserted": 1, "duplicates": 1}'::jsonb, 'the same event twice in one batch is stored once');
select is(private.record_message_events(tests.world('b_webhook_token'), 'clicksend_sms', jsonb_build_array(
              jsonb_build_object('provider_event_id', 'a-ev-2', 'event_type', 'delivery_receipt', 'status', 'failed'))),
    '{"ok": true, "inserted": 1, "duplicates": 0}'::jsonb, 'dedupe is per connection: B''s connection may have an event with the same id');

-- ---- Linking --------------------------------------------------------------------------------------------
select results_eq($$ select operation_id, user_id, workspace_id from ev where provider_event_id = 'a-msg-1:delivered' $$,
    format('values (%L::uuid, %L::uuid, %L::uuid)', tests.world('a_operation'), tests.world('a_uid'), tests.world('a_workspace')),
    'a receipt is linked by provider message id to A''s operation, in A''s workspace, attributed to A');
select results_eq($$ select operation_id, user_id, workspace_id from ev where provider_event_id = 'a-mail-1:delivered' $$,
    format('values (%L::uuid, %L::uuid, %L::uuid)', tests.world('a_member_operation'), tests.world('a_member_uid'), tests.world('a_team')),
    'a team''s mail event is linked to the member''s operation, in the team, attributed to that member');
select private.record_message_events(tests.world('a_webhook_token'), 'clicksend_sms', jsonb_build_array(
    jsonb_build_object('provider_event_id', 'a-by-op', 'event_type', 'delivery_receipt', 'status', 'delivered',
                       'operation_id', tests.world('a_operation'), 'provider_message_id', 'unknown-id'),
    jsonb_build_object('provider_event_id', 'a-by-original', 'event_type', 'inbound_message', 'recipient', '+61499999999',
                       'original_message_id', 'a-msg-1'),
    jsonb_build_object('provider_event_id', 'a-by-author', 'event_type', 'inbound_message', 'recipient', '+61400000001'),
    jsonb_build_object('provider_event_id', 'a-stranger', 'event_type', 'inbound_message', 'recipient', '+61488888888'),
    jsonb_build_object('provider_event_id', 'a-bad-op', 'event_type', 'delivery_receipt', 'operation_id', 'not-a-uuid')));
select is((select operation_id from ev where provider_event_id = 'a-by-op'), tests.world('a_operation')::uuid,
    'an event echoing our operation id is linked to that operation');
select is((select operation_id from ev where provider_event_id = 'a-by-original'), tests.world('a_operation')::uuid,
    'an inbound reply quoting the original message id is linked to it');
select is((select operation_id from ev where provider_event_id = 'a-by-author'), tests.world('a_operation')::uuid,
    'an inbound reply from a number A''s agent texted is linked to that send');
select is((select operation_id from ev where provider_event_id = 'a-stranger'), null::uuid,
    'an inbound message from a stranger is stored unlinked');
select is((select count(*)::int from ev where provider_event_id = 'a-bad-op' and operation_id is null), 1,
    'a malformed operation id is ignored (stored unlinked, no error)');

-- ---- Never across tenants -----------------------------------------------------------------------------------
select private.record_message_events(tests.world('b_webhook_token'), 'clicksend_sms', jsonb_build_array(
    jsonb_build_object('provider_event_id', 'b-claims-a-op', 'event_type', 'delivery_receipt', 'operation_id', tests.world('a_operation')),
    jsonb_build_object('provider_event_id', 'b-claims-a-msg', 'event_type', 'delivery_receipt', 'provider_message_id', 'a-msg-1'),
    jsonb_build_object('provider_event_id', 'b-reply-to-a', 'event_type', 'inbound_message', 'recipient', '+61400000001',
                       'original_message_id', 'a-msg-1')));
select results_eq($$ select provider_event_id, workspace_id, operation_id, user_id from ev
                     where provider_event_id in ('b-claims-a-op', 'b-claims-a-msg') order by 1 $$,
    format('values (%L, %L::uuid, null::uuid, null::uuid), (%L, %L::uuid, null::uuid, null::uuid)',
           'b-claims-a-msg', tests.world('b_workspace'), 'b-claims-a-op', tests.world('b_workspace')),
    'events through B''s token naming A''s operation or A''s message id stay in B''s workspace, link to nothing of A''s and are attributed to no one');
select is((select operation_id from ev where provider_event_id = 'b-reply-to-a'), tests.world('b_operation')::uuid,
    'an inbound reply through B''s token links only within B''s own sends');
select tests.authenticate_as('user_a');
select is((select count(*)::int from public.message_events where user_id = tests.world('b_uid')::uuid or provider_event_id like 'b-%'
                                                               or workspace_id in (tests.world('b_workspace')::uuid, tests.world('b_team')::uuid)), 0,
    'A sees none of the events recorded through B''s tokens');
select is((select count(*)::int from public.message_events where operation_id = tests.world('a_operation')::uuid), 4,
    'A sees the four events linked to its operation');
select ok(exists (select 1 from public.message_events where provider_event_id = 'a-mail-1:delivered'),
    'A (the team''s owner) sees its member''s mail event');
select tests.authenticate_as('user_a_member');
select results_eq($$ select provider_event_id from public.message_events $$, $$ values ('a-mail-1:delivered') $$,
    'A''s member sees the event of its own send, and none of A''s personal events');
select tests.authenticate_as_service_role();

-- ---- Unknown and stale tokens -------------------------------------------------------------------------------
select is(private.record_message_events('not-a-token', 'clicksend_sms', '[{"provider_event_id": "x", "event_type": "delivery_receipt"}]'),
    '{"ok": false}'::jsonb, 'an unknown token is rejected');
select is(private.record_message_events('', 'clicksend_sms', '[{"provider_event_id": "x", "event_type": "delivery_receipt"}]'),
    '{"ok": false}'::jsonb, 'an empty token is rejected');
select is(private.record_message_events(tests.world('a_webhook_token'), 'sendgrid', '[{"provider_event_id": "x", "event_type": "email_event"}]'),
    '{"ok": false}'::jsonb, 'a real token with the wrong provider is rejected');
select is((select count(*)::int from ev where provider_event_id = 'x'), 0, '... and none of the rejected events was stored');
select is(private.webhook_connection('not-a-token', 'clicksend_sms'), null, 'webhook_connection: an unknown token addresses nothing');
select is(private.webhook_connection(tests.world('a_webhook_token'), 'clicksend_sms') ->> 'connection_id', tests.world('a_clicksend'),
    'webhook_connection: A''s token addresses A''s connection');
select is(private.webhook_connection(tests.world('a_webhook_token'), 'clicksend_sms') ? 'credentials', false,
    '... and returns no credentials');
select tests.authenticate_as('user_a');
select public.delete_connection(tests.world('a_clicksend')::uuid);
select tests.authenticate_as_service_role();
select is(private.record_message_events(tests.world('a_webhook_token'), 'clicksend_sms', '[{"provider_event_id": "late", "event_type": "delivery_receipt"}]'),
    '{"ok": false}'::jsonb, 'a deleted connection''s token is rejected');
select is(private.webhook_connection(tests.world('a_webhook_token'), 'clicksend_sms'), null,
    'webhook_connection: a deleted connection''s token addresses nothing');

select * from finish();
rollback;
