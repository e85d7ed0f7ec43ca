/**
 * The seed-compatible wrappers, with the original argument lists, answer within the
 * caller's workspaces from the agent's effective rights (grant ∩ member permission):
 *   validate_agent_clicksend_permissions(p_agent_id, p_user_id, p_required_scopes)
 *   validate_agent_smtp_permissions(p_agent_id, p_user_id, p_smtp_config_id)
 *   get_smtp_tools(p_agent_id, p_user_id)
 *   log_smtp_operation(p_agent_id, p_user_id, p_smtp_config_id, p_operation_type, ...)
 * A member asks about their own agent; an admin about any agent of their workspace;
 * another workspace's admin is refused (42501); anon has no EXECUTE (42501);
 * service_role asks about anyone. log_smtp_operation is for the service only and
 * records in the connection's workspace.
 */
begin;
set local search_path = extensions, public;
select plan(45);

select from tests.seed_team();

-- team_sender may send mail through Acme SMTP, and grants their agent that too.
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_smtp')::uuid, tests.world('t_sender')::uuid, p_can_send => true, p_scopes => '{email}');
select tests.authenticate_as('team_sender');
select public.grant_agent_permission(tests.world('t_agent')::uuid, tests.world('t_smtp')::uuid, '{email}', p_daily_send_limit => null);

select tests.reset_authentication();
create table tests.m25_q (what, sql) as values
    ('clicksend {sms}', format($$select public.validate_agent_clicksend_permissions(%L, %L, '{sms}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    ('clicksend {sms,balance}', format($$select public.validate_agent_clicksend_permissions(%L, %L, '{sms,balance}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    ('clicksend {mms}', format($$select public.validate_agent_clicksend_permissions(%L, %L, '{mms}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    ('clicksend {history}', format($$select public.validate_agent_clicksend_permissions(%L, %L, '{history}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    ('smtp Acme SMTP', format($$select public.validate_agent_smtp_permissions(%L, %L, %L)::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_smtp'))),
    ('smtp Acme SendGrid', format($$select public.validate_agent_smtp_permissions(%L, %L, %L)::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_sendgrid'))),
    ('get_smtp_tools', format($$select (select string_agg(t ->> 'name', ',') from jsonb_array_elements(public.get_smtp_tools(%L, %L)) t)$$, tests.world('t_agent'), tests.world('t_sender')));
grant select on tests.m25_q to authenticated, service_role, anon;

/** The answer of one wrapper call, or 'SQLSTATE' when it is refused. */
create function tests.m25_ask(p_sql text) returns text
language plpgsql
as $$
declare
    v text;
begin
    execute p_sql into v;
    return coalesce(v, '');
exception when others then
    return sqlstate;
end
$$;
grant execute on function tests.m25_ask(text) to anon, authenticated, service_role;

-- ---- Who asks about team_sender's agent, and what they hear ----------------------------------------
select tests.authenticate_as('team_sender');
select is(tests.m25_ask(q.sql), x, 'team_sender about their own agent: ' || q.what || ' → ' || x)
from tests.m25_q q join (values ('clicksend {sms}', 'true'), ('clicksend {sms,balance}', 'true'), ('clicksend {mms}', 'false'), ('clicksend {history}', 'false'),
                    ('smtp Acme SMTP', 'true'), ('smtp Acme SendGrid', 'false'), ('get_smtp_tools', 'email_send')) e (what, x) using (what);

select tests.authenticate_as('team_admin');
select is(tests.m25_ask(q.sql), x, 'team_admin about a member''s agent: ' || q.what || ' → ' || x)
from tests.m25_q q join (values ('clicksend {sms}', 'true'), ('clicksend {mms}', 'false'), ('smtp Acme SMTP', 'true'), ('get_smtp_tools', 'email_send')) e (what, x) using (what);

select tests.authenticate_as('team_owner');
select is(tests.m25_ask(q.sql), 'true', 'the owner about a member''s agent: ' || q.what || ' → true') from tests.m25_q q where q.what = 'clicksend {sms,balance}';

select tests.authenticate_as('team_viewer');
select is(tests.m25_ask(q.sql), '42501', 'team_viewer (another member) about team_sender''s agent: ' || q.what || ' → 42501')
from tests.m25_q q where q.what in ('clicksend {sms}', 'smtp Acme SMTP', 'get_smtp_tools');
select is(tests.m25_ask(format($$select public.validate_agent_clicksend_permissions(%L, %L, '{balance}')::text$$, tests.world('t_agent'), tests.world('t_viewer'))),
    'false', 'team_viewer asking about team_sender''s agent under their own id: false (it does not act for them)');

select tests.authenticate_as('other_admin');
select is(tests.m25_ask(q.sql), '42501', 'Globex''s admin about Acme''s agent: ' || q.what || ' → 42501')
from tests.m25_q q where q.what in ('clicksend {sms}', 'smtp Acme SMTP', 'get_smtp_tools');

select tests.clear_authentication();
select is(tests.m25_ask(q.sql), '42501', 'anon: ' || q.what || ' → 42501')
from tests.m25_q q where q.what in ('clicksend {sms}', 'smtp Acme SMTP', 'get_smtp_tools');

select tests.authenticate_as_service_role();
select is(tests.m25_ask(q.sql), x, 'service_role about any agent: ' || q.what || ' → ' || x)
from tests.m25_q q join (values ('clicksend {sms}', 'true'), ('clicksend {mms}', 'false'), ('smtp Acme SMTP', 'true'), ('get_smtp_tools', 'email_send')) e (what, x) using (what);
select is(tests.m25_ask(format($$select public.validate_agent_clicksend_permissions(%L, %L, '{sms}')::text$$, tests.world('t_agent'), tests.world('t_admin'))),
    'false', 'service_role naming the wrong principal for the agent: false');
select is(tests.m25_ask(format($$select public.get_smtp_tools(%L, %L)::text$$, tests.world('t_agent'), tests.world('t_admin'))),
    '[]', 'service_role listing SMTP tools under the wrong principal: none');

-- ---- The answers follow the member's permission ------------------------------------------------------
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.world('t_sender')::uuid, p_can_send => false, p_scopes => '{sms,balance}',
    p_daily_send_limit => 5, p_monthly_send_limit => 20);
select public.set_member_permission(tests.world('t_smtp')::uuid, tests.world('t_sender')::uuid, p_can_send => false, p_scopes => '{email}');
select tests.authenticate_as('team_sender');
select is(tests.m25_ask(q.sql), x, 'after team_sender loses can_send: ' || q.what || ' → ' || x)
from tests.m25_q q join (values ('clicksend {sms}', 'false'), ('clicksend {sms,balance}', 'false'), ('smtp Acme SMTP', 'false'), ('get_smtp_tools', '')) e (what, x) using (what);
select is(tests.m25_ask(format($$select public.validate_agent_clicksend_permissions(%L, %L, '{balance}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    'true', '... while balance (not a sending scope) is still true');

select tests.authenticate_as('team_owner');
select public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_sender')::uuid);
select tests.authenticate_as('team_sender');
select is(tests.m25_ask(format($$select public.validate_agent_clicksend_permissions(%L, %L, '{balance}')::text$$, tests.world('t_agent'), tests.world('t_sender'))),
    'false', 'once team_sender is removed from Acme, their (former) agent validates for nothing');
select tests.authenticate_as('team_removed');
select is(tests.m25_ask(format($$select public.validate_agent_clicksend_permissions(%L, %L, '{sms}')::text$$, tests.world('t_removed_agent'), tests.world('t_removed'))),
    'false', 'the fixture''s removed member''s agent validates for nothing');

-- ---- log_smtp_operation: the service's, in the connection's workspace ----------------------------------------
select tests.authenticate_as('team_admin');
select is(tests.m25_ask(format($$select public.log_smtp_operation(%L, %L, %L, 'send_email')::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_smtp'))),
    '42501', 'team_admin cannot log an SMTP operation (service only)');
select tests.clear_authentication();
select is(tests.m25_ask(format($$select public.log_smtp_operation(%L, %L, %L, 'send_email')::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_smtp'))),
    '42501', 'anon cannot log an SMTP operation');
select tests.authenticate_as_service_role();
select tests.remember('logged', to_jsonb(public.log_smtp_operation(tests.world('t_agent')::uuid, tests.world('t_sender')::uuid, tests.world('t_smtp')::uuid,
    'send_email', '{"subject": "Hi"}', '{"message_id": "m-1"}', 'success', null, 3, 42)));
select tests.remember('logged_err', to_jsonb(public.log_smtp_operation(tests.world('t_agent')::uuid, tests.world('t_sender')::uuid, tests.world('t_smtp')::uuid,
    'smtp_send_email', p_status => 'error', p_error_message => 'relay refused')));
select tests.remember('logged_noconn', to_jsonb(public.log_smtp_operation(tests.world('t_agent')::uuid, tests.world('t_sender')::uuid, null, 'send_email')));
select results_eq(format($$ select workspace_id, user_id, agent_id, connection_id, capability_key, auth_mode::text, status::text, recipient_count,
                                  request_summary, response, duration_ms, finished_at is not null
                           from public.operations where id = %L $$, tests.world('logged')),
    format($$ values (%L::uuid, %L::uuid, %L::uuid, %L::uuid, 'smtp_send_email'::text, 'service'::text, 'succeeded'::text, 3,
                      '{"subject": "Hi"}'::jsonb, '{"message_id": "m-1"}'::jsonb, 42, true) $$,
           tests.world('t_workspace'), tests.world('t_sender'), tests.world('t_agent'), tests.world('t_smtp')),
    'service_role logs a successful send: recorded in the connection''s workspace (Acme), as smtp_send_email, succeeded');
select results_eq(format($$ select capability_key, status::text, error_message from public.operations where id = %L $$, tests.world('logged_err')),
    $$ values ('smtp_send_email'::text, 'failed'::text, 'relay refused'::text) $$,
    '... an operation type already prefixed is kept; an error status is recorded as failed with its message');
select is((select workspace_id from public.operations where id = tests.world('logged_noconn')::uuid), tests.world('t_workspace')::uuid,
    '... without a connection, the agent''s workspace');
select is(tests.m25_ask($$select public.log_smtp_operation(null, gen_random_uuid(), null, 'send_email')::text$$), 'P0002',
    '... and with neither a known connection nor agent it is refused (P0002)');
select matches(tests.m25_ask(format($$select public.log_smtp_operation(%L, %L, %L, 'send_email')::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('o_clicksend'))),
    '^[0-9A-Z]{5}$', '... and an agent of Acme logged against another workspace''s (non-SMTP) connection is refused with an error, not recorded across workspaces');
select tests.authenticate_as('other_admin');
select tests.remember('g_smtp', public.create_connection('smtp', 'Globex SMTP', '{"username":"g","password":"globex-smtp-secret"}',
    '{"host":"smtp.globex.test","port":465,"security":"tls","from_email":"it@globex.test"}', p_workspace_id => tests.world('o_workspace')::uuid) -> 'id');
select tests.authenticate_as_service_role();
select matches(tests.m25_ask(format($$select public.log_smtp_operation(%L, %L, %L, 'send_email')::text$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('g_smtp'))),
    '^[0-9A-Z]{5}$', '... and an agent of Acme logged against Globex''s SMTP connection is refused, not recorded across workspaces');
select tests.authenticate_as('team_admin');
select is((select count(*)::int from public.operations where id in (tests.world('logged')::uuid, tests.world('logged_err')::uuid)), 2,
    'Acme''s admin sees the logged operations in Acme''s ledger');
select tests.authenticate_as('other_admin');
select is((select count(*)::int from public.operations where id in (tests.world('logged')::uuid, tests.world('logged_err')::uuid)), 0,
    'Globex''s admin does not');

select * from finish();
rollback;
