/**
 * ---- Test helpers (runs first; NOT rolled back) ----
 * In the style of usebasejump/supabase-test-helpers 0.0.6, adapted to this project:
 *
 *   tests.create_supabase_user(identifier, email)  insert into auth.users, returns the id
 *   tests.get_supabase_uid(identifier)             the id of a test user
 *   tests.authenticate_as(identifier)              role authenticated + request.jwt.claims,
 *                                                  transaction-local, as PostgREST sets them
 *   tests.authenticate_as_service_role()           role service_role + {"role":"service_role"}
 *   tests.clear_authentication()                   role anon + {"role":"anon"}
 *   tests.reset_authentication()                   back to the session user (postgres), no claims
 *   tests.rls_enabled(schema)                      pgTAP test: every table in schema has RLS on
 *   tests.try_sql(sql)                             'ok', or 'SQLSTATE: message' of the error it raised
 *   tests.counter_used(subject, period, start)     messages used on one usage counter (0 without one)
 *
 * Fixtures:
 *   tests.seed_world()   users user_a and user_b, each with a personal workspace holding an
 *                        agent, a ClickSend and an SMTP connection created through the real
 *                        RPC (credentials go to Vault), grants on both, an agent key, a phone
 *                        number and a sender identity; and a team workspace with a member
 *                        (user_<u>_member), a SendGrid connection, the member's permission on
 *                        it and a pending invitation. Ids go into tests.world(key).
 *   tests.seed_team()    a team workspace with an owner, an admin, members with and without
 *                        permissions, a removed member, an invitee, numbers, mail connections,
 *                        a member's agent and another team's admin (see its docblock)
 *   tests.seed_activity()  one SMS per user's agent and one e-mail per user's team member
 *                        through begin/finish_tool_call (as service_role), and their delivery
 *                        events through the webhook recorder: operations, usage_counters
 *                        (grant and member) and message_events rows in both users' workspaces
 *   tests.world(key)     a value the fixture (or a test) remembered, as text
 *   tests.remember(key, value) / tests.recall(key)   keep a JSON result between statements
 *                        (the row a SECURITY DEFINER call inserts is not visible to the
 *                        statement that made the call, so results are checked in the next one)
 *
 * Every test file wraps itself in begin ... rollback, so the fixture's rows never persist;
 * only this schema does. pgTAP lives in `extensions`, as `supabase test db` installs it.
 */
set client_min_messages = warning;
create extension if not exists pgtap with schema extensions;
set search_path = extensions, public;

drop schema if exists tests cascade;
create schema tests;
comment on schema tests is 'pgTAP helpers (test databases only).';
-- Tests switch role mid-transaction and still call these helpers.
grant usage on schema tests to anon, authenticated, service_role;
alter default privileges in schema tests revoke execute on functions from public;

/** Scratch space for the fixture and for results kept between statements (rolled back per file). */
create table tests.memory (
    key text primary key,
    value jsonb
);
revoke all on tests.memory from public;

-- ---- Users -------------------------------------------------------------------

/** Creates a user in auth.users; the identifier is kept in raw_user_meta_data.test_identifier. */
create function tests.create_supabase_user(identifier text, email text default null) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid := gen_random_uuid();
begin
    insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                            created_at, updated_at)
    values (v_id, 'authenticated', 'authenticated', coalesce(email, v_id || '@test.com'), now(),
            '{"provider": "email", "providers": ["email"]}',
            jsonb_build_object('test_identifier', identifier), now(), now());
    return v_id;
end
$$;

/** The auth.users row of a test user, as JSON (null when unknown). */
create function tests.get_supabase_user(identifier text) returns jsonb
language sql stable
security definer
set search_path = ''
as $$
    select jsonb_build_object('id', u.id, 'email', u.email, 'phone', u.phone,
                              'raw_user_meta_data', u.raw_user_meta_data, 'raw_app_meta_data', u.raw_app_meta_data)
    from auth.users u
    where u.raw_user_meta_data ->> 'test_identifier' = identifier
    limit 1
$$;

/** The id of a test user; raises when there is none (a typo must not become a null uid). */
create function tests.get_supabase_uid(identifier text) returns uuid
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_id uuid := (tests.get_supabase_user(identifier) ->> 'id')::uuid;
begin
    if v_id is null then
        raise exception 'tests: no user with identifier %', identifier;
    end if;
    return v_id;
end
$$;

-- ---- Switching roles (no SECURITY DEFINER, no SET clause: the role change must outlive the call) ----

/**
 * Becomes the signed-in user `identifier` for the rest of the transaction, exactly as
 * PostgREST does for a request with that user's JWT: role authenticated and the JWT's
 * claims as request.jwt.claims (transaction-local).
 */
create function tests.authenticate_as(identifier text) returns void
language plpgsql
as $$
declare
    v_user jsonb := tests.get_supabase_user(identifier);
begin
    if v_user is null then
        raise exception 'tests: no user with identifier %', identifier;
    end if;
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims', jsonb_build_object(
        'iss', 'http://127.0.0.1:54321/auth/v1',
        'sub', v_user ->> 'id',
        'aud', 'authenticated',
        'exp', extract(epoch from now() + interval '1 hour')::bigint,
        'iat', extract(epoch from now())::bigint,
        'email', v_user ->> 'email',
        'phone', coalesce(v_user ->> 'phone', ''),
        'app_metadata', v_user -> 'raw_app_meta_data',
        'user_metadata', v_user -> 'raw_user_meta_data',
        'role', 'authenticated',
        'aal', 'aal1',
        'is_anonymous', false
    )::text, true);
end
$$;

/** Becomes service_role (the secret / service key) for the rest of the transaction. */
create function tests.authenticate_as_service_role() returns void
language plpgsql
as $$
begin
    perform set_config('role', 'service_role', true);
    perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
end
$$;

/** Becomes anon (a request with only the anon key) for the rest of the transaction. */
create function tests.clear_authentication() returns void
language plpgsql
as $$
begin
    perform set_config('role', 'anon', true);
    perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end
$$;

/** Back to the session user (postgres, the owner) with no claims. */
create function tests.reset_authentication() returns void
language plpgsql
as $$
begin
    perform set_config('role', 'none', true);
    perform set_config('request.jwt.claims', '', true);
end
$$;

-- ---- Assertions ---------------------------------------------------------------

/** pgTAP test: every table in the schema has row level security enabled (names the ones that do not). */
create function tests.rls_enabled(testing_schema text) returns text
language sql
as $$
    select extensions.is(
        (select coalesce(array_agg(c.relname::text order by c.relname), '{}')
         from pg_catalog.pg_class c
         where c.relnamespace = testing_schema::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity),
        '{}'::text[],
        format('every table in schema %s has row level security enabled', testing_schema))
$$;

/** pgTAP test: one table has row level security enabled. */
create function tests.rls_enabled(testing_schema text, testing_table text) returns text
language sql
as $$
    select extensions.ok(
        coalesce((select c.relrowsecurity from pg_catalog.pg_class c
                  where c.relnamespace = testing_schema::regnamespace and c.relname = testing_table), false),
        format('table %s.%s has row level security enabled', testing_schema, testing_table))
$$;

-- ---- Statements that may fail -----------------------------------------------------

/** 'ok', or 'SQLSTATE: message' of the error the statement raised (effects of a success stay). */
create function tests.try_sql(p_sql text) returns text
language plpgsql
as $$
begin
    execute p_sql;
    return 'ok';
exception when others then
    return sqlstate || ': ' || sqlerrm;
end
$$;

/** Messages used on one usage counter (0 when it has none yet). */
create function tests.counter_used(p_subject_id uuid, p_period text, p_period_start date) returns integer
language sql stable
security definer
set search_path = ''
as $$
    select coalesce((select u.used from public.usage_counters u
                     where u.subject_id = p_subject_id and u.period = p_period and u.period_start = p_period_start), 0)
$$;

-- ---- Memory ---------------------------------------------------------------------

/** Keeps a JSON value under a key (overwrites). */
create function tests.remember(p_key text, p_value jsonb) returns void
language sql
security definer
set search_path = ''
as $$
    insert into tests.memory (key, value) values (p_key, p_value)
    on conflict (key) do update set value = excluded.value
$$;

/** A kept JSON value; raises when the key is unknown (a typo must not become a null). */
create function tests.recall(p_key text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_value jsonb;
begin
    select value into v_value from tests.memory where key = p_key;
    if not found then
        raise exception 'tests: nothing remembered under %', p_key;
    end if;
    return v_value;
end
$$;

/** A kept value as text (ids, keys): tests.world('a_agent')::uuid. */
create function tests.world(p_key text) returns text
language sql stable
security definer
set search_path = ''
as $$
    select tests.recall(p_key) #>> '{}'
$$;

-- ---- Fixture ----------------------------------------------------------------------

/**
 * Two users with the same shape of account, built through the real user-facing RPCs
 * while signed in as each of them (so credentials really go through Vault). Everything
 * of user_<u> lives in their personal workspace, except their team's:
 *
 *   <u>_uid            user id                          (u = a | b)
 *   <u>_workspace      their personal workspace (created by the sign-up trigger)
 *   <u>_agent          agent "<U> agent" (personal workspace)
 *   <u>_clicksend      ClickSend connection, all scopes (sms, mms, balance, history),
 *                      credentials {"username": "<u>-user", "api_key": "<u>-clicksend-secret-…"}
 *   <u>_clicksend_secret   the plaintext api_key above
 *   <u>_webhook_token  the ClickSend connection's webhook token
 *   <u>_smtp           SMTP connection (scope email), password "<u>-smtp-password-…"; the
 *                      personal workspace's default mail connection
 *   <u>_smtp_secret    the plaintext password above
 *   <u>_grant          grant agent → clicksend: sms + balance, 100/day, 10 recipients/message
 *   <u>_smtp_grant     grant agent → smtp: email
 *   <u>_key_id, <u>_key   agent key id and the key itself (shown once)
 *   <u>_number         +614000001<n>1 (a: n=1, b: n=2) on <u>_clicksend, in the pool, the
 *                      connection's default and user_<u>'s member default number
 *   <u>_identity       sender identity <u>@example.test (verified, default) on <u>_smtp
 *   <u>_team           team workspace "<U> team", owned by user_<u>
 *   <u>_member_uid     user_<u>_member (user_<u>_member@example.test), invited by user_<u>
 *                      and joined <u>_team as a member
 *   <u>_team_mail      <u>_team's SendGrid connection (scope email), its default mail connection
 *   <u>_team_mail_webhook_token   its webhook token
 *   <u>_member_permission   user_<u>_member on <u>_team_mail: can_view + can_send, scope
 *                      email, 10/day, 100/month, only to example.test
 *   <u>_invitation, <u>_invitation_token   a pending invitation of <u>-invitee@example.test
 *                      (no such user) to <u>_team, and its token
 *
 * Returns everything as one JSON object; leaves the session as postgres with no claims.
 */
create function tests.seed_world() returns jsonb
language plpgsql
as $$
declare
    v_world jsonb := '{}';
    v_u text;
    v_n text;
    v_uid uuid;
    v_member uuid;
    v_agent uuid;
    v_clicksend uuid;
    v_smtp uuid;
    v_team uuid;
    v_key jsonb;
    v_connection jsonb;
    v_team_mail jsonb;
    v_invite jsonb;
    v_number jsonb;
    v_clicksend_secret text;
    v_smtp_secret text;
begin
    foreach v_u in array array['a', 'b'] loop
        v_n := case v_u when 'a' then '1' else '2' end;
        v_uid := tests.create_supabase_user('user_' || v_u, 'user_' || v_u || '@example.test');
        v_member := tests.create_supabase_user('user_' || v_u || '_member', 'user_' || v_u || '_member@example.test');
        v_clicksend_secret := v_u || '-clicksend-secret-' || encode(extensions.gen_random_bytes(8), 'hex');
        v_smtp_secret := v_u || '-smtp-password-' || encode(extensions.gen_random_bytes(8), 'hex');

        perform tests.authenticate_as('user_' || v_u);
        v_agent := (public.create_agent(upper(v_u) || ' agent', 'fixture agent') ->> 'id')::uuid;
        v_connection := public.create_connection(
            'clicksend_sms', upper(v_u) || ' ClickSend',
            jsonb_build_object('username', v_u || '-user', 'api_key', v_clicksend_secret),
            '{"sender_id": "Switchboard"}');
        v_clicksend := (v_connection ->> 'id')::uuid;
        v_smtp := (public.create_connection(
            'smtp', upper(v_u) || ' SMTP',
            jsonb_build_object('username', v_u || '@example.test', 'password', v_smtp_secret),
            jsonb_build_object('host', 'smtp.example.test', 'port', 465, 'security', 'tls',
                               'from_email', v_u || '@example.test')) ->> 'id')::uuid;
        v_number := public.add_phone_number(v_clicksend, '+614000001' || v_n || '1', upper(v_u) || ' line', array['sms', 'mms']);
        perform public.set_member_default_number((v_number ->> 'id')::uuid);
        v_world := v_world || jsonb_build_object(
            v_u || '_uid', v_uid,
            v_u || '_workspace', (v_connection ->> 'workspace_id')::uuid,
            v_u || '_agent', v_agent,
            v_u || '_clicksend', v_clicksend,
            v_u || '_webhook_token', v_connection -> 'webhook_token',
            v_u || '_clicksend_secret', v_clicksend_secret,
            v_u || '_smtp', v_smtp,
            v_u || '_smtp_secret', v_smtp_secret,
            v_u || '_number', v_number -> 'id',
            v_u || '_identity', public.add_sender_identity(v_smtp, v_u || '@example.test', upper(v_u) || ' sender',
                                                           p_verified => true) -> 'id',
            v_u || '_grant', public.grant_agent_permission(
                v_agent, v_clicksend, array['sms', 'balance'],
                p_daily_send_limit => 100, p_max_recipients_per_message => 10) -> 'id',
            v_u || '_smtp_grant', public.grant_agent_permission(v_agent, v_smtp, array['email']) -> 'id');
        v_key := public.issue_agent_key(v_agent, upper(v_u) || ' key');
        v_world := v_world || jsonb_build_object(v_u || '_key_id', v_key -> 'id', v_u || '_key', v_key -> 'key');

        -- The team: a member who joined by invitation, a mail connection they may send on,
        -- and an invitation nobody answered yet.
        v_team := (public.create_workspace(upper(v_u) || ' team') ->> 'id')::uuid;
        v_invite := public.invite_workspace_member(v_team, 'user_' || v_u || '_member@example.test');
        perform tests.authenticate_as('user_' || v_u || '_member');
        perform public.accept_workspace_invitation(v_invite ->> 'token');
        perform tests.authenticate_as('user_' || v_u);
        v_team_mail := public.create_connection('sendgrid', upper(v_u) || ' team SendGrid',
            jsonb_build_object('api_key', 'SG.' || v_u || '-team-secret'),
            jsonb_build_object('from_email', 'team@' || v_u || '.example.test'), p_workspace_id => v_team);
        v_invite := public.invite_workspace_member(v_team, v_u || '-invitee@example.test');
        v_world := v_world || jsonb_build_object(
            v_u || '_team', v_team,
            v_u || '_member_uid', v_member,
            v_u || '_team_mail', v_team_mail -> 'id',
            v_u || '_team_mail_webhook_token', v_team_mail -> 'webhook_token',
            v_u || '_member_permission', public.set_member_permission((v_team_mail ->> 'id')::uuid, v_member,
                p_can_view => true, p_can_send => true, p_scopes => array['email'], p_daily_send_limit => 10,
                p_monthly_send_limit => 100, p_allowed_recipients => array['example.test']) -> 'id',
            v_u || '_invitation', v_invite -> 'id',
            v_u || '_invitation_token', v_invite -> 'token');
        perform tests.reset_authentication();
    end loop;

    insert into tests.memory (key, value)
    select key, value from jsonb_each(v_world)
    on conflict (key) do update set value = excluded.value;
    return v_world;
end
$$;

/**
 * Activity for both fixture users, through the service-only tool-call path as
 * service_role: one SMS sent by each user's agent (begin + finish, provider message id
 * '<u>-msg-1'), and a delivery receipt for it through the webhook recorder; one e-mail
 * sent by user_<u>_member directly on <u>_team_mail (counted on their member permission,
 * provider message id '<u>-mail-1') and its SendGrid delivery event. Adds <u>_operation
 * and <u>_member_operation to tests.world. Needs tests.seed_world() first.
 */
create function tests.seed_activity() returns jsonb
language plpgsql
as $$
declare
    v_world jsonb := '{}';
    v_u text;
    v_begin jsonb;
    v_member_begin jsonb;
begin
    foreach v_u in array array['a', 'b'] loop
        perform tests.authenticate_as_service_role();
        v_begin := private.begin_tool_call('clicksend_send_sms',
            p_user_id => tests.world(v_u || '_uid')::uuid, p_agent_id => tests.world(v_u || '_agent')::uuid,
            p_recipients => array['+61400000001'], p_auth_mode => 'user_agent');
        if not (v_begin ->> 'ok')::boolean then
            raise exception 'tests: seed_activity could not begin a call: %', v_begin;
        end if;
        perform private.finish_tool_call((v_begin ->> 'operation_id')::uuid, 'succeeded', 1,
                                         array[v_u || '-msg-1'], '{"sent": 1}');
        perform private.record_message_events(tests.world(v_u || '_webhook_token'), 'clicksend_sms', jsonb_build_array(
            jsonb_build_object('provider_event_id', v_u || '-msg-1:delivered', 'event_type', 'delivery_receipt',
                               'status', 'delivered', 'provider_message_id', v_u || '-msg-1', 'recipient', '+61400000001')));

        v_member_begin := private.begin_tool_call('sendgrid_send_email',
            p_user_id => tests.world(v_u || '_member_uid')::uuid, p_recipients => array['someone@example.test'],
            p_auth_mode => 'user');
        if not (v_member_begin ->> 'ok')::boolean then
            raise exception 'tests: seed_activity could not begin the member''s call: %', v_member_begin;
        end if;
        perform private.finish_tool_call((v_member_begin ->> 'operation_id')::uuid, 'succeeded', 1,
                                         array[v_u || '-mail-1'], '{"sent": 1}');
        perform private.record_message_events(tests.world(v_u || '_team_mail_webhook_token'), 'sendgrid', jsonb_build_array(
            jsonb_build_object('provider_event_id', v_u || '-mail-1:delivered', 'event_type', 'email_event',
                               'status', 'delivered', 'provider_message_id', v_u || '-mail-1',
                               'recipient', 'someone@example.test')));
        perform tests.reset_authentication();
        v_world := v_world || jsonb_build_object(v_u || '_operation', v_begin -> 'operation_id',
                                                 v_u || '_member_operation', v_member_begin -> 'operation_id');
    end loop;
    insert into tests.memory (key, value)
    select key, value from jsonb_each(v_world)
    on conflict (key) do update set value = excluded.value;
    return v_world;
end
$$;

/**
 * A team, built through the real RPCs as each actor (invitations are sent and accepted
 * with their tokens). Keys in tests.world:
 *   t_owner, t_admin, t_sender, t_viewer, t_nobody, t_removed, t_invitee, o_admin   user ids
 *       (test identifiers team_owner, team_admin, team_sender, team_viewer, team_nobody,
 *        team_removed, team_invitee, other_admin)
 *   t_workspace        the team workspace "Acme" (owner team_owner; admin team_admin;
 *                      members team_sender, team_viewer, team_nobody; team_removed joined
 *                      and was removed; team_invitee is invited and has not answered)
 *   t_invitation_token the pending invitation's token (for team_invitee)
 *   t_clicksend        Acme's ClickSend connection (all scopes), created by the owner
 *   t_webhook_token    its webhook token
 *   t_smtp, t_sendgrid Acme's mail connections (t_smtp is the default mail connection)
 *   t_sender_permission  team_sender on t_clicksend: can_view + can_send, scopes sms +
 *                      balance, 5/day, 20/month
 *   t_viewer_permission  team_viewer on t_clicksend: can_view only, scope balance
 *   t_agent, t_grant, t_key   team_sender's agent, its grant on t_clicksend (sms +
 *                      balance, 3/day, 10/month, 10 recipients/message) and its key
 *   t_removed_agent, t_removed_key   team_removed's agent and key (granted before removal)
 *   t_number_sender    +61400000100 assigned to team_sender (their default)
 *   t_number_pool      +61400000200 in the pool (the connection's default)
 *   t_number_admin     +61400000300 assigned to team_admin
 *   o_workspace, o_clicksend   other_admin's own team workspace "Globex" and its connection
 * Leaves the session as postgres with no claims.
 */
create function tests.seed_team() returns jsonb
language plpgsql
as $$
declare
    v_world jsonb := '{}';
    v_workspace uuid;
    v_other uuid;
    v_clicksend uuid;
    v_invite jsonb;
    v_member text;
    v_agent uuid;
begin
    foreach v_member in array array['team_owner', 'team_admin', 'team_sender', 'team_viewer', 'team_nobody',
                                    'team_removed', 'team_invitee', 'other_admin'] loop
        perform tests.create_supabase_user(v_member, v_member || '@example.test');
    end loop;

    perform tests.authenticate_as('team_owner');
    v_workspace := (public.create_workspace('Acme') ->> 'id')::uuid;
    foreach v_member in array array['team_admin', 'team_sender', 'team_viewer', 'team_nobody', 'team_removed'] loop
        perform tests.authenticate_as('team_owner');
        v_invite := public.invite_workspace_member(v_workspace, v_member || '@example.test',
                                                   case when v_member = 'team_admin' then 'admin' else 'member' end);
        perform tests.authenticate_as(v_member);
        perform public.accept_workspace_invitation(v_invite ->> 'token');
    end loop;
    perform tests.authenticate_as('team_owner');
    v_invite := public.invite_workspace_member(v_workspace, 'team_invitee@example.test');
    v_clicksend := (public.create_connection('clicksend_sms', 'Acme ClickSend',
        '{"username": "acme-user", "api_key": "acme-clicksend-secret"}', '{"sender_id": "Acme"}',
        p_workspace_id => v_workspace) ->> 'id')::uuid;
    v_world := v_world || jsonb_build_object(
        't_workspace', v_workspace,
        't_invitation_token', v_invite ->> 'token',
        't_clicksend', v_clicksend,
        't_webhook_token', (select w.webhook_token from public.connection_webhooks w where w.connection_id = v_clicksend),
        't_smtp', public.create_connection('smtp', 'Acme SMTP', '{"username": "acme", "password": "acme-smtp-secret"}',
            '{"host": "smtp.example.test", "port": 465, "security": "tls", "from_email": "team@acme.test"}',
            p_workspace_id => v_workspace) -> 'id',
        't_sendgrid', public.create_connection('sendgrid', 'Acme SendGrid', '{"api_key": "SG.acme-secret"}',
            '{"from_email": "team@acme.test"}', p_workspace_id => v_workspace) -> 'id');

    -- The admin grants the members their permissions and numbers.
    perform tests.authenticate_as('team_admin');
    v_world := v_world || jsonb_build_object(
        't_sender_permission', public.set_member_permission(v_clicksend, tests.get_supabase_uid('team_sender'),
            p_can_view => true, p_can_send => true, p_scopes => array['sms', 'balance'],
            p_daily_send_limit => 5, p_monthly_send_limit => 20) -> 'id',
        't_viewer_permission', public.set_member_permission(v_clicksend, tests.get_supabase_uid('team_viewer'),
            p_can_view => true, p_can_send => false, p_scopes => array['balance']) -> 'id',
        't_number_pool', public.add_phone_number(v_clicksend, '+61400000200', 'Pool', array['sms', 'mms'],
            p_is_default => true) -> 'id',
        't_number_sender', public.add_phone_number(v_clicksend, '+61400000100', 'Sender''s line', array['sms'],
            p_assigned_to => tests.get_supabase_uid('team_sender'), p_is_default => false) -> 'id',
        't_number_admin', public.add_phone_number(v_clicksend, '+61400000300', 'Admin''s line', array['sms'],
            p_assigned_to => tests.get_supabase_uid('team_admin'), p_is_default => false) -> 'id');
    perform public.set_member_permission(v_clicksend, tests.get_supabase_uid('team_removed'),
        p_can_view => true, p_can_send => true, p_scopes => array['sms']);

    -- The sender's agent, granted part of what the sender holds.
    perform tests.authenticate_as('team_sender');
    perform public.set_member_default_number((v_world ->> 't_number_sender')::uuid);
    v_agent := (public.create_agent('Sender agent', p_workspace_id => v_workspace) ->> 'id')::uuid;
    v_world := v_world || jsonb_build_object(
        't_agent', v_agent,
        't_grant', public.grant_agent_permission(v_agent, v_clicksend, array['sms', 'balance'], p_daily_send_limit => 3,
            p_max_recipients_per_message => 10, p_monthly_send_limit => 10) -> 'id',
        't_key', public.issue_agent_key(v_agent, 'sender key') -> 'key');

    -- A member who had an agent, then was removed.
    perform tests.authenticate_as('team_removed');
    v_agent := (public.create_agent('Removed agent', p_workspace_id => v_workspace) ->> 'id')::uuid;
    perform public.grant_agent_permission(v_agent, v_clicksend, array['sms'], p_daily_send_limit => 5);
    v_world := v_world || jsonb_build_object('t_removed_agent', v_agent,
                                             't_removed_key', public.issue_agent_key(v_agent) -> 'key');
    perform tests.authenticate_as('team_owner');
    perform public.remove_workspace_member(v_workspace, tests.get_supabase_uid('team_removed'));

    -- Another team, administered by someone outside Acme.
    perform tests.authenticate_as('other_admin');
    v_other := (public.create_workspace('Globex') ->> 'id')::uuid;
    v_world := v_world || jsonb_build_object(
        'o_workspace', v_other,
        'o_clicksend', public.create_connection('clicksend_sms', 'Globex ClickSend',
            '{"username": "globex", "api_key": "globex-secret"}', '{}', p_workspace_id => v_other) -> 'id');
    perform tests.reset_authentication();

    v_world := v_world || jsonb_build_object(
        't_owner', tests.get_supabase_uid('team_owner'), 't_admin', tests.get_supabase_uid('team_admin'),
        't_sender', tests.get_supabase_uid('team_sender'), 't_viewer', tests.get_supabase_uid('team_viewer'),
        't_nobody', tests.get_supabase_uid('team_nobody'), 't_removed', tests.get_supabase_uid('team_removed'),
        't_invitee', tests.get_supabase_uid('team_invitee'), 'o_admin', tests.get_supabase_uid('other_admin'));
    insert into tests.memory (key, value)
    select key, value from jsonb_each(v_world)
    on conflict (key) do update set value = excluded.value;
    return v_world;
end
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

select plan(4);
select has_function('tests', 'seed_world', 'tests.seed_world() is installed');
select has_function('tests', 'seed_team', 'tests.seed_team() is installed');
select has_function('tests', 'authenticate_as', array['text'], 'tests.authenticate_as(identifier) is installed');
select has_function('tests', 'rls_enabled', array['text'], 'tests.rls_enabled(schema) is installed');
select * from finish();
