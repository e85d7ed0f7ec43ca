/**
 * THE team isolation matrix: every actor of tests.seed_team() against every table and
 * every RPC in `public`, as supabase-js would reach them (PostgREST runs the same
 * statements under the same role and claims).
 *
 * Actors (columns of every row below, in this order):
 *   owner     team_owner     owner of Acme
 *   admin     team_admin     admin of Acme
 *   sender    team_sender    member, can_view + can_send on Acme ClickSend, has an agent
 *   viewer    team_viewer    member, can_view only
 *   nobody    team_nobody    member without any permission
 *   removed   team_removed   joined, had an agent, was removed
 *   invitee   team_invitee   invited, has not answered
 *   other     other_admin    owner/admin of Globex, not in Acme
 *   anon      the anon key, no user
 *   service   service_role (the functions' key)
 *
 * Tables: how many of Acme's rows each actor selects, and whether an insert / update /
 * delete of Acme's rows is refused (a SQLSTATE) or how many rows it touched. Writes are
 * made inside a subtransaction that is always rolled back (tests.m19_try), so a row
 * count of a legitimate write does not disturb the next cell.
 * RPCs: 'ok', or the SQLSTATE of the refusal: PT404 for what the actor may not see (never
 * confirming it exists), 42501 for a role that is too low (and for anon and
 * service_role, which have no EXECUTE on user RPCs: PostgREST answers anon's 42501 with
 * 401), 22023 for a rule (the owner cannot leave).
 * 'all' means every Acme row as the table owner counts them.
 */
begin;
set local search_path = extensions, public;
select plan(1218);

select from tests.seed_team();

-- ---- Activity so every ledger table has Acme rows ------------------------------------------
-- A sender identity on Acme SMTP (admin), an SMS by the sender's agent with its receipt,
-- a direct send by the admin, and a direct send the viewer is refused (recorded as denied).
-- Routes: the admin routes Acme's SMS to Acme ClickSend, and team_sender's own SMS too (a
-- member route); the sender's agent's sms_send then fails over once, finds no other
-- account and finishes as failed (one operation_attempts row).
select tests.authenticate_as('team_admin');
select tests.remember('m_identity', public.add_sender_identity(tests.world('t_smtp')::uuid, 'team@acme.test', 'Acme team') -> 'id');
select tests.authenticate_as_service_role();
select tests.remember('m_op_agent', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_sender')::uuid,
    p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61400000001}', p_auth_mode => 'user_agent'));
select tests.remember('m_op_admin', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_admin')::uuid,
    p_recipients => '{+61400000002}', p_auth_mode => 'user'));
select tests.remember('m_op_viewer', private.begin_tool_call('clicksend_send_sms', p_user_id => tests.world('t_viewer')::uuid,
    p_recipients => '{+61400000003}', p_auth_mode => 'user'));
select private.finish_tool_call((tests.recall('m_op_agent') ->> 'operation_id')::uuid, 'succeeded', 1, '{m19-msg-1}');
select private.finish_tool_call((tests.recall('m_op_admin') ->> 'operation_id')::uuid, 'succeeded', 1, '{m19-msg-2}');
select private.record_message_events(tests.world('t_webhook_token'), 'clicksend_sms', jsonb_build_array(jsonb_build_object(
    'provider_event_id', 'm19-msg-1:delivered', 'event_type', 'delivery_receipt', 'status', 'delivered',
    'provider_message_id', 'm19-msg-1', 'recipient', '+61400000001')));
select tests.authenticate_as('team_admin');
select tests.remember('m_route', public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend')::uuid]) -> 'id');
select tests.remember('m_member_route', public.set_route(tests.world('t_workspace')::uuid, 'sms', array[tests.world('t_clicksend')::uuid],
                                                         tests.world('t_sender')::uuid) -> 'id');
select tests.authenticate_as_service_role();
select tests.remember('m_op_channel', private.begin_tool_call('sms_send', p_user_id => tests.world('t_sender')::uuid,
    p_agent_id => tests.world('t_agent')::uuid, p_recipients => '{+61400000004}', p_auth_mode => 'user_agent'));
select tests.remember('m_fail_over', private.fail_over_tool_call((tests.recall('m_op_channel') ->> 'operation_id')::uuid,
    'provider_error', 'rejected', 400, '21211', 5));
select private.finish_tool_call((tests.recall('m_op_channel') ->> 'operation_id')::uuid, 'failed', 0);
select tests.reset_authentication();

select is(tests.recall('m_op_agent') -> 'ok', 'true'::jsonb, 'fixture: the sender''s agent sent an SMS');
select is(tests.recall('m_op_channel') ->> 'connection_id', tests.world('t_clicksend'),
    'fixture: the sender''s agent''s sms_send went out on Acme ClickSend (its route)');
select is(tests.recall('m_fail_over'), '{"ok": false, "reason": "no_other_account", "attempts": 1}'::jsonb,
    'fixture: its fail over recorded the attempt and found no other account');
select is(tests.recall('m_op_admin') -> 'ok', 'true'::jsonb, 'fixture: the admin sent an SMS directly');
select is(tests.recall('m_op_viewer') #>> '{error,code}', 'permission_denied', 'fixture: the viewer''s direct send was refused (a denied row)');

-- ---- The harness -----------------------------------------------------------------------------

/**
 * Runs one cell as the current role inside a subtransaction that is always rolled back.
 * kind 'count': the count the query returns; 'rows': the rows the statement touched;
 * 'call': 'ok'. Any error: its SQLSTATE.
 */
create function tests.m19_try(p_kind text, p_sql text) returns text
language plpgsql
as $$
declare
    v_n bigint;
    v_result text;
begin
    begin
        if p_kind = 'count' then
            execute p_sql into v_n;
            v_result := v_n::text;
        elsif p_kind = 'rows' then
            execute p_sql;
            get diagnostics v_n = row_count;
            v_result := v_n::text;
        else
            execute p_sql;
            v_result := 'ok';
        end if;
        raise exception using errcode = 'T1999', message = v_result;
    exception
        when sqlstate 'T1999' then
            return sqlerrm;
        when others then
            return sqlstate;
    end;
end
$$;
grant execute on function tests.m19_try(text, text) to anon, authenticated, service_role;

create table tests.m19_actor (ord integer, actor text primary key, identifier text, label text);
insert into tests.m19_actor values
    (1, 'owner', 'team_owner', 'team_owner (owner)'),
    (2, 'admin', 'team_admin', 'team_admin (admin)'),
    (3, 'sender', 'team_sender', 'team_sender (member, view+send)'),
    (4, 'viewer', 'team_viewer', 'team_viewer (member, view only)'),
    (5, 'nobody', 'team_nobody', 'team_nobody (member, no permission)'),
    (6, 'removed', 'team_removed', 'team_removed (removed member)'),
    (7, 'invitee', 'team_invitee', 'team_invitee (invited, not joined)'),
    (8, 'other', 'other_admin', 'other_admin (Globex admin)'),
    (9, 'anon', null, 'anon'),
    (10, 'service', null, 'service_role');

/** Every cell: actor, kind, what (the test name's middle), sql, expected. */
create table tests.m19 (ord serial, actor text, kind text, what text, sql text, expect text);
grant select on tests.m19, tests.m19_actor to anon, authenticated, service_role;

-- ---- Tables ------------------------------------------------------------------------------------
-- One row per table: the filter selecting Acme's rows, the column an update sets to
-- itself, an insert of a plausible Acme row, and the expected outcome per actor
-- (o a s v n r i x anon svc); null = not asked.
with w as (
    select tests.world('t_workspace') ws, tests.world('t_clicksend') cs, tests.world('t_smtp') smtp,
           tests.world('t_sendgrid') sg, tests.world('t_agent') ag, tests.world('t_sender') snd,
           tests.world('t_nobody') nob, tests.world('t_admin') adm, tests.world('t_invitee') inv,
           tests.world('t_number_admin') nadm, tests.world('m_route') rt,
           tests.recall('m_op_channel') ->> 'operation_id' opc,
           (select id from public.service_providers where name = 'clicksend_sms')::text prov
),
t (tbl, filter, upd_col, ins, sel, ins_x, upd_x, del_x) as (
    select v.* from w, lateral (values
    ('workspaces', format('id = %L', w.ws), 'name',
        format('insert into public.workspaces (name, primary_owner_user_id) values (%L, %L)', 'Matrix', w.inv),
        '{1,1,1,1,1,0,0,0,42501,1}'::text[], '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}'::text[],
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}'::text[], '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'::text[]),
    ('workspace_members', format('workspace_id = %L', w.ws), 'role',
        format('insert into public.workspace_members (workspace_id, user_id, role) values (%L, %L, %L)', w.ws, w.inv, 'admin'),
        '{5,5,5,5,5,0,0,0,42501,5}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,5}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('workspace_invitations', format('workspace_id = %L', w.ws), 'status',
        format('insert into public.workspace_invitations (workspace_id, email, role, token_hash, expires_at) values (%L, %L, %L, %L, now() + interval %L)',
               w.ws, 'matrix@example.test', 'admin', 'matrix-token-hash', '1 day'),
        '{6,6,0,0,0,0,1,0,42501,6}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,6}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('connections', format('workspace_id = %L and deleted_at is null', w.ws), 'name',
        format('insert into public.connections (workspace_id, provider_id, name) values (%L, %L, %L)', w.ws, w.prov, 'Matrix connection'),
        '{3,3,1,1,0,0,0,0,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    -- Whoever holds a webhook token can post provider events (ClickSend signs nothing): admins only.
    ('connection_webhooks', format('workspace_id = %L', w.ws), 'webhook_token',
        format('insert into public.connection_webhooks (connection_id, workspace_id) values (%L, %L)', w.cs, w.ws),
        '{3,3,0,0,0,0,0,0,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('member_permissions', format('workspace_id = %L', w.ws), 'can_send',
        format('insert into public.member_permissions (workspace_id, connection_id, user_id, can_view, can_send) values (%L, %L, %L, true, true)', w.ws, w.cs, w.nob),
        '{2,2,1,1,0,0,0,0,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('phone_numbers', format('workspace_id = %L', w.ws), 'status',
        format('insert into public.phone_numbers (workspace_id, connection_id, e164) values (%L, %L, %L)', w.ws, w.cs, '+61400000999'),
        '{3,3,3,3,0,0,0,0,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,3}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('member_default_numbers', format('workspace_id = %L', w.ws), 'phone_number_id',
        format('insert into public.member_default_numbers (workspace_id, user_id, connection_id, phone_number_id) values (%L, %L, %L, %L)', w.ws, w.adm, w.cs, w.nadm),
        '{1,1,1,0,0,0,0,0,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('sender_identities', format('workspace_id = %L', w.ws), 'name',
        format('insert into public.sender_identities (workspace_id, connection_id, email) values (%L, %L, %L)', w.ws, w.smtp, 'matrix@acme.test'),
        '{1,1,0,0,0,0,0,0,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    -- Members create, rename and delete their own agents; admins every agent of the workspace.
    ('agents', format('workspace_id = %L', w.ws), 'is_active',
        format('insert into public.agents (workspace_id, name) values (%L, %L)', w.ws, 'Matrix agent'),
        '{2,2,1,0,0,0,0,0,42501,2}', '{1,1,1,1,1,42501,42501,42501,42501,NULL}',
        '{2,2,1,0,0,0,0,0,42501,2}', '{2,2,1,0,0,0,0,0,42501,2}'),
    ('agent_permissions', format('workspace_id = %L', w.ws), 'is_active',
        format('insert into public.agent_permissions (workspace_id, agent_id, connection_id, allowed_scopes) values (%L, %L, %L, %L)', w.ws, w.ag, w.sg, '{email}'),
        '{2,2,1,0,0,0,0,0,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('agent_keys', format('workspace_id = %L', w.ws), 'revoked_at',
        format('insert into public.agent_keys (workspace_id, agent_id, key_prefix, key_hash) values (%L, %L, %L, %L)', w.ws, w.ag, 'swb_agent_matrix', 'matrix-key-hash'),
        '{2,2,1,0,0,0,0,0,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('operations', format('workspace_id = %L', w.ws), 'status',
        format('insert into public.operations (workspace_id, user_id, capability_key, auth_mode, status) values (%L, %L, %L, %L, %L)', w.ws, w.snd, 'clicksend_send_sms', 'service', 'succeeded'),
        '{4,4,2,1,0,0,0,0,42501,4}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,4}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('usage_counters', format('workspace_id = %L', w.ws), 'used',
        format('insert into public.usage_counters (subject_id, subject, period, period_start, workspace_id, user_id) values (gen_random_uuid(), %L, %L, current_date, %L, %L)', 'grant', 'day', w.ws, w.snd),
        '{4,4,4,0,0,0,0,0,42501,4}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,4}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('message_events', format('workspace_id = %L', w.ws), 'status',
        format('insert into public.message_events (workspace_id, connection_id, event_type, provider_event_id) values (%L, %L, %L, %L)', w.ws, w.cs, 'delivery_receipt', 'matrix-event'),
        '{1,1,1,0,0,0,0,0,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    -- Routes: every member reads the workspace's route and their own; admins every member's.
    -- Written through set_route only; the service may write them (and is asked to delete).
    ('routes', format('workspace_id = %L', w.ws), 'updated_at',
        format('insert into public.routes (workspace_id, channel, user_id) values (%L, %L, %L)', w.ws, 'sms', w.nob),
        '{2,2,2,1,1,0,0,0,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}'),
    ('route_connections', format('workspace_id = %L', w.ws), 'position',
        format('insert into public.route_connections (route_id, workspace_id, position, connection_id) values (%L, %L, 2, %L)', w.rt, w.ws, w.smtp),
        '{2,2,2,1,1,0,0,0,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,2}'),
    -- Attempts: whoever reads the operation (its member, admins); only the service writes them.
    ('operation_attempts', format('workspace_id = %L', w.ws), 'outcome',
        format('insert into public.operation_attempts (operation_id, workspace_id, attempt, provider, outcome) values (%L, %L, 2, %L, %L)', w.opc, w.ws, 'twilio', 'failed'),
        '{1,1,1,0,0,0,0,0,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}'),
    -- The trail: admins read it; nobody, service_role included, writes or rewrites it.
    ('audit_events', format('workspace_id = %L', w.ws), 'action',
        format('insert into public.audit_events (workspace_id, actor_role, action, target_type) values (%L, %L, %L, %L)', w.ws, 'authenticated', 'matrix.forged', 'workspace'),
        '{all,all,0,0,0,0,0,0,42501,all}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,42501}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,42501}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,42501}'),
    -- Reference data: every signed-in user reads all of it; only the service writes it.
    ('service_providers', 'true', 'is_enabled',
        format('insert into public.service_providers (name, display_name, auth_type) values (%L, %L, %L)', 'matrix_provider', 'Matrix', 'api_key'),
        '{all,all,all,all,all,all,all,all,42501,all}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,all}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}'),
    ('integration_capabilities', 'true', 'description',
        format('insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope) values (%L, %L, %L, %L, %L)', w.prov, 'matrix_cap', 'Matrix', 'Matrix', 'sms'),
        '{all,all,all,all,all,all,all,all,42501,all}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,1}',
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,all}', '{42501,42501,42501,42501,42501,42501,42501,42501,42501,NULL}')
    ) as v
),
cells as (
    select t.tbl, a.ord as aord, a.actor, op.n as opn, op.kind, op.verb, op.sql, op.expect
    from (select tbl, filter, upd_col, ins, sel, ins_x, upd_x, del_x from t) t
    cross join tests.m19_actor a
    cross join lateral (values
        (1, 'count', 'select', format('select count(*) from public.%I where %s', t.tbl, t.filter), t.sel[a.ord]),
        (2, 'rows', 'insert into', t.ins, t.ins_x[a.ord]),
        (3, 'rows', 'update', format('update public.%I set %I = %I where %s', t.tbl, t.upd_col, t.upd_col, t.filter), t.upd_x[a.ord]),
        (4, 'rows', 'delete from', format('delete from public.%I where %s', t.tbl, t.filter), t.del_x[a.ord])
    ) as op (n, kind, verb, sql, expect)
    where op.expect is not null
)
insert into tests.m19 (actor, kind, what, sql, expect)
select c.actor, c.kind,
       case when c.kind = 'count' then format('select Acme''s %s', c.tbl) else format('%s %s (Acme''s rows)', c.verb, c.tbl) end,
       c.sql,
       case when c.expect = 'all' then tests.m19_try('count', format('select count(*) from public.%I where %s', c.tbl,
                                                                      (select filter from t where t.tbl = c.tbl)))
            else c.expect end
from cells c
order by c.aord, c.tbl, c.opn;

-- ---- RPCs --------------------------------------------------------------------------------------
select tests.remember('m_invitation', to_jsonb((select id from public.workspace_invitations
    where workspace_id = tests.world('t_workspace')::uuid and status = 'pending')));
select tests.remember('m_key_id', to_jsonb((select id from public.agent_keys where agent_id = tests.world('t_agent')::uuid)));

with r (rpc, sql, x) as (values
    ('create_workspace', $$select public.create_workspace('Matrix team')$$,
        '{ok,ok,ok,ok,ok,ok,ok,ok,42501,42501}'::text[]),
    ('rename_workspace(Acme)', format($$select public.rename_workspace(%L, 'Renamed')$$, tests.world('t_workspace')),
        '{ok,ok,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('delete_workspace(Acme)', format($$select public.delete_workspace(%L)$$, tests.world('t_workspace')),
        '{ok,42501,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('invite_workspace_member(Acme)', format($$select public.invite_workspace_member(%L, 'matrix@example.test')$$, tests.world('t_workspace')),
        '{ok,ok,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('revoke_workspace_invitation(the pending one)', format($$select public.revoke_workspace_invitation(%L)$$, tests.world('m_invitation')),
        '{ok,ok,PT404,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('accept_workspace_invitation(team_invitee''s token)', format($$select public.accept_workspace_invitation(%L)$$, tests.world('t_invitation_token')),
        '{PT404,PT404,PT404,PT404,PT404,PT404,ok,PT404,42501,42501}'),
    ('decline_workspace_invitation(team_invitee''s token)', format($$select public.decline_workspace_invitation(%L)$$, tests.world('t_invitation_token')),
        '{PT404,PT404,PT404,PT404,PT404,PT404,ok,PT404,42501,42501}'),
    ('leave_workspace(Acme)', format($$select public.leave_workspace(%L)$$, tests.world('t_workspace')),
        '{22023,ok,ok,ok,ok,PT404,PT404,PT404,42501,42501}'),
    ('remove_workspace_member(Acme, team_nobody)', format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('t_nobody')),
        '{ok,ok,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('change_workspace_member_role(Acme, team_nobody → admin)', format($$select public.change_workspace_member_role(%L, %L, 'admin')$$, tests.world('t_workspace'), tests.world('t_nobody')),
        '{ok,42501,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('transfer_workspace_ownership(Acme → team_admin)', format($$select public.transfer_workspace_ownership(%L, %L)$$, tests.world('t_workspace'), tests.world('t_admin')),
        '{ok,42501,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('create_connection(in Acme)', format($$select public.create_connection('clicksend_sms', 'Matrix', '{"username":"m","api_key":"matrix-secret"}', p_workspace_id => %L)$$, tests.world('t_workspace')),
        '{ok,ok,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    ('update_connection(Acme ClickSend, name)', format($$select public.update_connection(%L, '{"name":"Renamed"}')$$, tests.world('t_clicksend')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('rotate_connection_credentials(Acme ClickSend)', format($$select public.rotate_connection_credentials(%L, '{"username":"m","api_key":"rotated-secret"}')$$, tests.world('t_clicksend')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('delete_connection(Acme ClickSend)', format($$select public.delete_connection(%L)$$, tests.world('t_clicksend')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('set_default_mail_connection(Acme SendGrid)', format($$select public.set_default_mail_connection(%L)$$, tests.world('t_sendgrid')),
        '{ok,ok,PT404,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('set_member_permission(Acme ClickSend, team_nobody)', format($$select public.set_member_permission(%L, %L)$$, tests.world('t_clicksend'), tests.world('t_nobody')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('remove_member_permission(Acme ClickSend, team_viewer)', format($$select public.remove_member_permission(%L, %L)$$, tests.world('t_clicksend'), tests.world('t_viewer')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('add_phone_number(Acme ClickSend)', format($$select public.add_phone_number(%L, '+61400000999')$$, tests.world('t_clicksend')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    -- Members who see the connection see its numbers: a refusal must be 42501, not "not found".
    ('update_phone_number(the pool number)', format($$select public.update_phone_number(%L, '{"friendly_name":"x"}')$$, tests.world('t_number_pool')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('delete_phone_number(the admin''s number)', format($$select public.delete_phone_number(%L)$$, tests.world('t_number_admin')),
        '{ok,ok,42501,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('set_member_default_number(the pool number, self)', format($$select public.set_member_default_number(%L)$$, tests.world('t_number_pool')),
        '{ok,ok,ok,42501,PT404,PT404,PT404,PT404,42501,42501}'),
    ('add_sender_identity(Acme SMTP)', format($$select public.add_sender_identity(%L, 'matrix@acme.test')$$, tests.world('t_smtp')),
        '{ok,ok,PT404,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('update_sender_identity(Acme SMTP''s identity)', format($$select public.update_sender_identity(%L, '{"verified":true}')$$, tests.world('m_identity')),
        '{ok,ok,PT404,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('delete_sender_identity(Acme SMTP''s identity)', format($$select public.delete_sender_identity(%L)$$, tests.world('m_identity')),
        '{ok,ok,PT404,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('create_agent(in Acme)', format($$select public.create_agent('Matrix agent', p_workspace_id => %L)$$, tests.world('t_workspace')),
        '{ok,ok,ok,ok,ok,42501,42501,42501,42501,42501}'),
    ('grant_agent_permission(the sender''s agent, balance)', format($$select public.grant_agent_permission(%L, %L, '{balance}', p_daily_send_limit => 1, p_monthly_send_limit => 1)$$, tests.world('t_agent'), tests.world('t_clicksend')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('update_agent_permission(the sender''s grant)', format($$select public.update_agent_permission(%L, '{"daily_send_limit":2}')$$, tests.world('t_grant')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('revoke_agent_permission(the sender''s grant)', format($$select public.revoke_agent_permission(%L)$$, tests.world('t_grant')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('issue_agent_key(the sender''s agent)', format($$select public.issue_agent_key(%L)$$, tests.world('t_agent')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('revoke_agent_key(the sender''s key)', format($$select public.revoke_agent_key(%L)$$, tests.world('m_key_id')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('get_agent_tools(the sender''s agent)', format($$select public.get_agent_tools(%L)$$, tests.world('t_agent')),
        '{ok,ok,ok,PT404,PT404,PT404,PT404,PT404,42501,42501}'),
    ('validate_agent_clicksend_permissions(the sender''s agent)', format($$select public.validate_agent_clicksend_permissions(%L, %L, '{sms}')$$, tests.world('t_agent'), tests.world('t_sender')),
        '{ok,ok,ok,42501,42501,42501,42501,42501,42501,ok}'),
    ('validate_agent_smtp_permissions(the sender''s agent)', format($$select public.validate_agent_smtp_permissions(%L, %L, %L)$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_smtp')),
        '{ok,ok,ok,42501,42501,42501,42501,42501,42501,ok}'),
    ('get_smtp_tools(the sender''s agent)', format($$select public.get_smtp_tools(%L, %L)$$, tests.world('t_agent'), tests.world('t_sender')),
        '{ok,ok,ok,42501,42501,42501,42501,42501,42501,ok}'),
    ('set_route(Acme, sms, [Acme ClickSend])', format($$select public.set_route(%L, 'sms', array[%L]::uuid[])$$, tests.world('t_workspace'), tests.world('t_clicksend')),
        '{ok,ok,42501,42501,42501,PT404,PT404,PT404,42501,42501}'),
    -- Outsiders get no rows rather than an error (31-member-directory checks what each sees).
    ('workspace_member_directory(Acme)', format($$select count(*) from public.workspace_member_directory(%L)$$, tests.world('t_workspace')),
        '{ok,ok,ok,ok,ok,ok,ok,ok,42501,42501}'),
    ('log_smtp_operation(in Acme)', format($$select public.log_smtp_operation(%L, %L, %L, 'send_email')$$, tests.world('t_agent'), tests.world('t_sender'), tests.world('t_smtp')),
        '{42501,42501,42501,42501,42501,42501,42501,42501,42501,ok}')
)
insert into tests.m19 (actor, kind, what, sql, expect)
select a.actor, 'call', r.rpc, r.sql, r.x[a.ord]
from r cross join tests.m19_actor a
order by a.ord, r.rpc;

select is((select count(*)::int from tests.m19 where kind <> 'call'), 21 * 4 * 10 - 18,
    'harness: 21 tables × 4 statements × 10 actors (less the 18 service_role writes not asked) are generated');
select is((select count(distinct what)::int from tests.m19 where kind = 'call'), 38,
    'the RPC matrix covers 38 calls');
select set_eq(
    $$ select p.proname::text from pg_proc p where p.pronamespace = 'public'::regnamespace $$,
    $$ select distinct split_part(split_part(sql, 'public.', 2), '(', 1) from tests.m19 where kind = 'call' $$,
    'the RPC matrix covers every function in schema public (a new RPC must be added here)');
select set_eq(
    $$ select c.relname::text from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') $$,
    $$ select distinct split_part(split_part(sql, 'public.', 2), ' ', 1) from tests.m19 where kind = 'count' $$,
    'the table matrix covers every table in schema public (a new table must be added here)');

-- ---- Run it, actor by actor ----------------------------------------------------------------------
select tests.authenticate_as('team_owner');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'owner' order by m.ord;

select tests.authenticate_as('team_admin');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'admin' order by m.ord;

select tests.authenticate_as('team_sender');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'sender' order by m.ord;

select tests.authenticate_as('team_viewer');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'viewer' order by m.ord;

select tests.authenticate_as('team_nobody');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'nobody' order by m.ord;

select tests.authenticate_as('team_removed');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'removed' order by m.ord;

select tests.authenticate_as('team_invitee');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'invitee' order by m.ord;

select tests.authenticate_as('other_admin');
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'other' order by m.ord;

select tests.clear_authentication();
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'anon' order by m.ord;

select tests.authenticate_as_service_role();
select is(tests.m19_try(m.kind, m.sql), m.expect,
          format('%s: %s → %s', (select label from tests.m19_actor where actor = m.actor), m.what,
                 case when m.expect = 'ok' then 'allowed' when length(m.expect) = 5 then 'refused ' || m.expect else m.expect || ' row(s)' end))
from tests.m19 m where m.actor = 'service' order by m.ord;

-- ---- "Not found" is not an oracle: an outsider gets the same answer for a random id ----------------
select tests.authenticate_as('other_admin');
select is(tests.m19_try('call', format(q, gen_random_uuid())), tests.m19_try('call', format(q, tests.world(k))),
          format('other_admin: %s answers a random id exactly as it answers Acme''s', rpc))
from (values
    ('update_connection', $$select public.update_connection(%L, '{"name":"x"}')$$, 't_clicksend'),
    ('rename_workspace', $$select public.rename_workspace(%L, 'x')$$, 't_workspace'),
    ('get_agent_tools', $$select public.get_agent_tools(%L)$$, 't_agent'),
    ('update_phone_number', $$select public.update_phone_number(%L, '{"friendly_name":"x"}')$$, 't_number_pool'),
    ('create_agent', $$select public.create_agent('x', p_workspace_id => %L)$$, 't_workspace'),
    ('set_route', $$select public.set_route(%L, 'sms', '{}')$$, 't_workspace')
) as v (rpc, q, k);

-- ---- Nothing the matrix tried stuck ----------------------------------------------------------------
select tests.reset_authentication();
select results_eq(
    format($$ select (select count(*)::int from public.workspace_members where workspace_id = %1$L),
                     (select count(*)::int from public.connections where workspace_id = %1$L and deleted_at is null),
                     (select count(*)::int from public.agents where workspace_id = %1$L),
                     (select name from public.workspaces where id = %1$L) $$, tests.world('t_workspace')),
    $$ values (5, 3, 2, 'Acme'::text) $$,
    'after the matrix Acme still has its 5 members, 3 connections, 2 agents and its name');

select * from finish();
rollback;
