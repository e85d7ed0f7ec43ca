/**
 * Isolation matrix for the RPCs: every RPC in public called by anon (no EXECUTE: 42501)
 * and every user-facing RPC called by user B on user A's workspaces, members,
 * invitations, connections, permissions, numbers, identities, routes, agents, grants and keys
 * (PT404 "not found", never a hint that the object exists; 42501 for the seed validators
 * that take a p_user_id). B also tries to pull A into B's own workspace's objects (a
 * number, a permission, a role, ownership), which the RPCs refuse because A is not a
 * member. Then A checks that none of B's attempts changed anything or left a trace in
 * A's audit trail. Finally every service-only function is refused to authenticated and
 * anon, and the helpers a signed-in user can execute in private must not answer for
 * other workspaces.
 */
begin;
set local search_path = extensions, public;
select plan(191);

select from tests.seed_world();
select from tests.seed_activity();

-- ---- anon: no RPC is executable (every function in public, found in the catalog) ---------------
select tests.clear_authentication();
select throws_ok(format('select public.%I(%s)', p.proname,
                        (select string_agg('null::' || format_type(t, null), ', ' order by n)
                         from unnest(p.proargtypes::oid[]) with ordinality a (t, n))),
    '42501', null, 'anon cannot call ' || p.proname)
from pg_proc p where p.pronamespace = 'public'::regnamespace order by p.proname;

-- ---- B on A's objects: not found ----------------------------------------------------------------
select tests.authenticate_as('user_b');
select throws_ok(format(q, variadic args), code, null, 'B: ' || what)
from (values
    -- workspaces, members, invitations
    ('rename_workspace on A''s team → not found', 'PT404', 'select public.rename_workspace(%L, %L)',
        array[tests.world('a_team'), 'B was here']),
    ('rename_workspace on A''s personal workspace → not found', 'PT404', 'select public.rename_workspace(%L, %L)',
        array[tests.world('a_workspace'), 'B was here']),
    ('delete_workspace on A''s team → not found', 'PT404', 'select public.delete_workspace(%L)',
        array[tests.world('a_team')]),
    ('delete_workspace on A''s personal workspace → not found', 'PT404', 'select public.delete_workspace(%L)',
        array[tests.world('a_workspace')]),
    ('invite_workspace_member inviting B into A''s team as admin → not found', 'PT404',
        'select public.invite_workspace_member(%L, %L, %L)', array[tests.world('a_team'), 'user_b@example.test', 'admin']),
    ('revoke_workspace_invitation on A''s invitation → not found', 'PT404', 'select public.revoke_workspace_invitation(%L)',
        array[tests.world('a_invitation')]),
    ('accept_workspace_invitation with A''s token (addressed to someone else) → not found', 'PT404',
        'select public.accept_workspace_invitation(%L)', array[tests.world('a_invitation_token')]),
    ('decline_workspace_invitation with A''s token → not found', 'PT404', 'select public.decline_workspace_invitation(%L)',
        array[tests.world('a_invitation_token')]),
    ('leave_workspace on A''s team (not a member) → not found', 'PT404', 'select public.leave_workspace(%L)',
        array[tests.world('a_team')]),
    ('remove_workspace_member removing A''s member → not found', 'PT404', 'select public.remove_workspace_member(%L, %L)',
        array[tests.world('a_team'), tests.world('a_member_uid')]),
    ('change_workspace_member_role promoting A''s member → not found', 'PT404',
        'select public.change_workspace_member_role(%L, %L, %L)', array[tests.world('a_team'), tests.world('a_member_uid'), 'admin']),
    ('change_workspace_member_role making B an admin of A''s team → not found', 'PT404',
        'select public.change_workspace_member_role(%L, %L, %L)', array[tests.world('a_team'), tests.world('b_uid'), 'admin']),
    ('transfer_workspace_ownership of A''s team to B → not found', 'PT404', 'select public.transfer_workspace_ownership(%L, %L)',
        array[tests.world('a_team'), tests.world('b_uid')]),
    -- connections
    ('create_connection in A''s personal workspace → not found', 'PT404',
        'select public.create_connection(%L, %L, %L, p_workspace_id => %L)',
        array['clicksend_sms', 'planted', '{"username":"u","api_key":"k"}', tests.world('a_workspace')]),
    ('create_connection in A''s team → not found', 'PT404', 'select public.create_connection(%L, %L, %L, %L, p_workspace_id => %L)',
        array['sendgrid', 'planted', '{"api_key":"SG.k"}', '{"from_email":"b@example.test"}', tests.world('a_team')]),
    ('update_connection on A''s connection → not found', 'PT404', 'select public.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"name":"B was here","status":"disabled"}']),
    ('update_connection narrowing A''s scopes → not found', 'PT404', 'select public.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"scopes":[]}']),
    ('update_connection pointing A''s team mail at B''s server → not found', 'PT404', 'select public.update_connection(%L, %L)',
        array[tests.world('a_team_mail'), '{"config":{"from_email":"b@example.test","base_url":"https://b.example.test"}}']),
    ('rotate_connection_credentials on A''s connection → not found', 'PT404', 'select public.rotate_connection_credentials(%L, %L)',
        array[tests.world('a_clicksend'), '{"username":"b","api_key":"attacker-key"}']),
    ('delete_connection on A''s connection → not found', 'PT404', 'select public.delete_connection(%L)',
        array[tests.world('a_clicksend')]),
    ('set_default_mail_connection on A''s SMTP → not found', 'PT404', 'select public.set_default_mail_connection(%L)',
        array[tests.world('a_smtp')]),
    ('set_default_mail_connection on A''s team mail → not found', 'PT404', 'select public.set_default_mail_connection(%L)',
        array[tests.world('a_team_mail')]),
    -- routes
    ('set_route on A''s team (routing A''s mail) → not found', 'PT404', 'select public.set_route(%L, %L, %L)',
        array[tests.world('a_team'), 'email', format('{%s}', tests.world('a_team_mail'))]),
    ('set_route deleting a route of A''s personal workspace → not found', 'PT404', 'select public.set_route(%L, %L, %L)',
        array[tests.world('a_workspace'), 'sms', '{}']),
    -- member permissions
    ('set_member_permission lifting A''s member''s limits → not found', 'PT404',
        'select public.set_member_permission(%L, %L, p_can_send => true, p_can_configure => true)',
        array[tests.world('a_team_mail'), tests.world('a_member_uid')]),
    ('set_member_permission giving B a permission on A''s team mail → not found', 'PT404',
        'select public.set_member_permission(%L, %L, p_can_send => true)', array[tests.world('a_team_mail'), tests.world('b_uid')]),
    ('remove_member_permission on A''s member → not found', 'PT404', 'select public.remove_member_permission(%L, %L)',
        array[tests.world('a_team_mail'), tests.world('a_member_uid')]),
    -- phone numbers and sender identities
    ('add_phone_number on A''s connection → not found', 'PT404', 'select public.add_phone_number(%L, %L)',
        array[tests.world('a_clicksend'), '+61499999999']),
    ('update_phone_number assigning A''s number to B → not found', 'PT404', 'select public.update_phone_number(%L, %L)',
        array[tests.world('a_number'), format('{"assigned_to":"%s"}', tests.world('b_uid'))]),
    ('delete_phone_number on A''s number → not found', 'PT404', 'select public.delete_phone_number(%L)',
        array[tests.world('a_number')]),
    ('set_member_default_number making A''s number B''s default → not found', 'PT404', 'select public.set_member_default_number(%L)',
        array[tests.world('a_number')]),
    ('set_member_default_number on A''s number for A → not found', 'PT404', 'select public.set_member_default_number(%L, %L)',
        array[tests.world('a_number'), tests.world('a_uid')]),
    ('add_sender_identity on A''s SMTP → not found', 'PT404', 'select public.add_sender_identity(%L, %L, p_verified => true, p_is_default => true)',
        array[tests.world('a_smtp'), 'ceo@bank.example']),
    ('update_sender_identity on A''s identity → not found', 'PT404', 'select public.update_sender_identity(%L, %L)',
        array[tests.world('a_identity'), '{"name":"B","verified":false}']),
    ('delete_sender_identity on A''s identity → not found', 'PT404', 'select public.delete_sender_identity(%L)',
        array[tests.world('a_identity')]),
    -- agents, grants, keys
    ('grant A''s agent on A''s connection → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_clicksend'), '{sms,mms}']),
    ('grant A''s agent on B''s connection (mixed workspaces) → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('b_clicksend'), '{sms}']),
    ('grant B''s agent on A''s connection (mixed workspaces) → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('b_agent'), tests.world('a_clicksend'), '{sms}']),
    ('grant B''s agent on A''s team mail (mixed workspaces) → not found', 'PT404', 'select public.grant_agent_permission(%L, %L, %L)',
        array[tests.world('b_agent'), tests.world('a_team_mail'), '{email}']),
    ('update_agent_permission on A''s grant → not found', 'PT404', 'select public.update_agent_permission(%L, %L)',
        array[tests.world('a_grant'), '{"daily_send_limit":null,"max_recipients_per_message":10000}']),
    ('revoke_agent_permission on A''s grant → not found', 'PT404', 'select public.revoke_agent_permission(%L)',
        array[tests.world('a_grant')]),
    ('issue_agent_key for A''s agent → not found', 'PT404', 'select public.issue_agent_key(%L)',
        array[tests.world('a_agent')]),
    ('revoke_agent_key on A''s key → not found', 'PT404', 'select public.revoke_agent_key(%L)',
        array[tests.world('a_key_id')]),
    ('get_agent_tools of A''s agent → not found', 'PT404', 'select public.get_agent_tools(%L)',
        array[tests.world('a_agent')]),
    ('get_agent_tools of A''s agent, mcp format → not found', 'PT404', 'select public.get_agent_tools(%L, %L)',
        array[tests.world('a_agent'), 'mcp']),
    ('validate_agent_clicksend_permissions(A''s agent, p_user_id => A) → 42501', '42501',
        'select public.validate_agent_clicksend_permissions(%L, p_user_id => %L, p_required_scopes => %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), '{sms}']),
    ('validate_agent_clicksend_permissions with p_user_id null → 42501', '42501',
        'select public.validate_agent_clicksend_permissions(%L, null, %L)',
        array[tests.world('a_agent'), '{sms}']),
    ('validate_agent_smtp_permissions(A''s agent, A, A''s smtp) → 42501', '42501',
        'select public.validate_agent_smtp_permissions(%L, %L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid'), tests.world('a_smtp')]),
    ('get_smtp_tools(A''s agent, A) → 42501', '42501', 'select public.get_smtp_tools(%L, %L)',
        array[tests.world('a_agent'), tests.world('a_uid')]),
    ('log_smtp_operation (service only) → 42501', '42501', 'select public.log_smtp_operation(%L, %L, %L, %L)',
        array[tests.world('b_agent'), tests.world('b_uid'), tests.world('b_smtp'), 'send_email']),
    -- the SECURITY DEFINER bodies, called directly, check the caller themselves
    ('private.update_connection called directly on A''s connection → not found', 'PT404', 'select private.update_connection(%L, %L)',
        array[tests.world('a_clicksend'), '{"status":"disabled"}']),
    ('private.transfer_workspace_ownership called directly on A''s team → not found', 'PT404',
        'select private.transfer_workspace_ownership(%L, %L)', array[tests.world('a_team'), tests.world('b_uid')]),
    ('private.set_member_permission called directly on A''s team mail → not found', 'PT404',
        'select private.set_member_permission(%L, %L, true, true, true, null, null, null, null, %L, %L)',
        array[tests.world('a_team_mail'), tests.world('b_uid'), '{}', '{}']),
    ('private.set_route called directly on A''s team, for A''s member → not found', 'PT404',
        'select private.set_route(%L, %L, %L, %L)',
        array[tests.world('a_team'), 'sms', format('{%s}', tests.world('a_clicksend')), tests.world('a_member_uid')])
) as v (what, code, q, args);

-- ---- B pulling A into B's own workspaces: A is not a member there ---------------------------------
select throws_ok(format(q, variadic args), code, msg, 'B: ' || what)
from (values
    ('set_member_permission for A on B''s team mail → not a member', 'PT404', 'that user is not a member of this workspace',
        'select public.set_member_permission(%L, %L, p_can_send => true)', array[tests.world('b_team_mail'), tests.world('a_uid')]),
    ('change_workspace_member_role of A in B''s team → member not found', 'PT404', 'member not found',
        'select public.change_workspace_member_role(%L, %L, %L)', array[tests.world('b_team'), tests.world('a_uid'), 'admin']),
    ('remove_workspace_member A from B''s team → member not found', 'PT404', 'member not found',
        'select public.remove_workspace_member(%L, %L)', array[tests.world('b_team'), tests.world('a_uid')]),
    ('transfer_workspace_ownership of B''s team to A, who never joined → refused', 'PT404', 'the new owner must already be a member',
        'select public.transfer_workspace_ownership(%L, %L)', array[tests.world('b_team'), tests.world('a_uid')]),
    ('add_phone_number on B''s connection assigned to A → refused', '22023', 'a number can only be assigned to a member of its workspace',
        'select public.add_phone_number(%L, %L, p_assigned_to => %L)', array[tests.world('b_clicksend'), '+61499999998', tests.world('a_uid')]),
    ('update_phone_number assigning B''s number to A → refused', '22023', 'a number can only be assigned to a member of its workspace',
        'select public.update_phone_number(%L, %L)', array[tests.world('b_number'), format('{"assigned_to":"%s"}', tests.world('a_uid'))]),
    ('set_route routing B''s SMS through A''s ClickSend → refused', '22023',
        format('connection %s is not a sms account of this workspace', tests.world('a_clicksend')),
        'select public.set_route(%L, %L, %L)', array[tests.world('b_workspace'), 'sms', format('{%s,%s}', tests.world('b_clicksend'), tests.world('a_clicksend'))]),
    ('set_route giving A a member route in B''s team → refused', '22023', 'a route can only be for a member of the workspace',
        'select public.set_route(%L, %L, %L, %L)', array[tests.world('b_team'), 'email', format('{%s}', tests.world('b_team_mail')), tests.world('a_uid')])
) as v (what, code, msg, q, args);
-- Fails today: set_member_default_number checks `connection_access(...) not in (...)`, which is
-- null (so not refused) for a user without access; only the membership foreign key stops
-- it (23503). Inside a workspace the same gap lets an admin set a default for a member
-- who holds no permission on the connection (below).
select throws_ok(format('select public.set_member_default_number(%L, %L)', tests.world('b_number'), tests.world('a_uid')),
    '42501', null, 'B: set_member_default_number making B''s number the default of A (no access to it) → refused');
select tests.remember('b_clicksend_team', public.create_connection('clicksend_sms', 'B team ClickSend', '{"username":"bt","api_key":"k"}',
                                                                   p_workspace_id => tests.world('b_team')::uuid));
select tests.remember('b_team_number', public.add_phone_number((tests.recall('b_clicksend_team') ->> 'id')::uuid, '+61400000299'));
-- Fails today (same cause): B's member holds no permission on this connection, so the number is not one they may send from.
select throws_ok(format('select public.set_member_default_number(%L, %L)', tests.recall('b_team_number') ->> 'id', tests.world('b_member_uid')),
    '42501', null, 'set_member_default_number refuses a number on a connection the member holds no permission on');

-- ---- What the helpers a signed-in user can execute tell B about A's team ---------------------------
-- The policies need private.has_role_on_workspace / can_view_connection, which only ask about
-- auth.uid(). These three are SECURITY DEFINER, executable by authenticated and answer for
-- any user: B learns who is in A's team, with which role, and A's member's whole permission.
-- Fails today: see the report (revoke them from authenticated; make can_view_connection the definer).
select throws_ok(format('select private.workspace_role(%L, %L)', tests.world('a_team'), tests.world('a_member_uid')),
    '42501', null, 'B cannot ask private.workspace_role who is in A''s team');
select throws_ok(format('select private.connection_access(%L, %L)', tests.world('a_team_mail'), tests.world('a_member_uid')),
    '42501', null, 'B cannot ask private.connection_access what A''s member may do with A''s connection');
select throws_ok(format('select private.live_member_permission(%L, %L)', tests.world('a_team_mail'), tests.world('a_member_uid')),
    '42501', null, 'B cannot read A''s member''s permission through private.live_member_permission');
select is(private.has_role_on_workspace(tests.world('a_team')::uuid), false,
    'private.has_role_on_workspace answers only for the caller: B is not in A''s team');
select is(private.can_view_connection(tests.world('a_team_mail')::uuid), false,
    'private.can_view_connection answers only for the caller: B cannot see A''s team mail');

-- ---- B's own answers ---------------------------------------------------------------------------------
-- Asking about A's agent as themselves tells B nothing either.
select is(public.validate_agent_clicksend_permissions(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid, '{sms}'), false,
    'B asking about A''s agent under B''s own id: false');
select is(public.validate_agent_smtp_permissions(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid, tests.world('a_smtp')::uuid), false,
    'B asking whether A''s agent may use A''s SMTP under B''s own id: false');
select is(public.get_smtp_tools(tests.world('a_agent')::uuid, tests.world('b_uid')::uuid), '[]'::jsonb,
    'B listing SMTP tools of A''s agent under B''s own id: none');
select is((select jsonb_build_object('workspace_id', c -> 'workspace_id', 'created_by', c -> 'created_by')
           from public.create_connection('clicksend_sms', 'B second', '{"username":"b","api_key":"k2"}') c),
    jsonb_build_object('workspace_id', tests.world('b_workspace'), 'created_by', tests.world('b_uid')),
    'create_connection without a workspace creates it in the caller''s (B''s) personal workspace, created by B');
select is(public.validate_agent_clicksend_permissions(tests.world('b_agent')::uuid, tests.world('b_uid')::uuid, '{sms}'), true,
    'B asking about its own agent gets a real answer (true)');
select is(public.rename_workspace(tests.world('b_team')::uuid, 'B renamed team') ->> 'name', 'B renamed team',
    'B can rename its own team (the refusals above are not blanket)');
select is(public.invite_workspace_member(tests.world('b_team')::uuid, 'someone@example.test') ->> 'role', 'member',
    'B can invite to its own team');
select is_empty(format('select * from public.workspace_member_directory(%L)', tests.world('a_team')),
    'B: workspace_member_directory of A''s team → no one (not an error: it answers only about your own workspaces)');
select isnt_empty(format('select * from public.workspace_member_directory(%L)', tests.world('b_team')),
    'B reads its own team''s directory');

-- ---- A: nothing B tried had an effect --------------------------------------------------------------
select tests.authenticate_as('user_a');
select results_eq(format('select name, personal, primary_owner_user_id from public.workspaces where id = %L', tests.world('a_team')),
    format('values (%L::text, false, %L::uuid)', 'A team', tests.world('a_uid')),
    'A''s team still exists, unrenamed, a team, owned by A');
select results_eq(format('select user_id, role from public.workspace_members where workspace_id = %L order by role desc', tests.world('a_team')),
    format('values (%L::uuid, %L::text), (%L::uuid, %L::text)', tests.world('a_uid'), 'owner', tests.world('a_member_uid'), 'member'),
    'A''s team has exactly its owner and its member, with their roles');
select results_eq(format('select email, status, id = %L from public.workspace_invitations where workspace_id = %L order by email',
                         tests.world('a_invitation'), tests.world('a_team')),
    $$ values ('a-invitee@example.test'::text, 'pending'::text, true), ('user_a_member@example.test', 'accepted', false) $$,
    'A''s invitation is still pending (B neither revoked, accepted nor declined it), and B sent none');
select results_eq(format('select can_view, can_send, can_configure, scopes, daily_send_limit, monthly_send_limit, allowed_recipients
                          from public.member_permissions where id = %L', tests.world('a_member_permission')),
    $$ values (true, true, false, '{email}'::text[], 10, 100, '{example.test}'::text[]) $$,
    'A''s member''s permission is unchanged');
select is((select count(*)::int from public.member_permissions where workspace_id = any (array[tests.world('a_workspace'), tests.world('a_team')]::uuid[])), 1,
    'A''s workspaces hold only that one member permission');
select results_eq(format('select e164, assigned_to, is_default, status from public.phone_numbers where connection_id = %L', tests.world('a_clicksend')),
    format('values (%L::text, null::uuid, true, %L::text)', '+61400000111', 'active'),
    'A''s ClickSend still has only its number, unassigned, its default, active');
select results_eq(format('select user_id, phone_number_id from public.member_default_numbers where connection_id = %L', tests.world('a_clicksend')),
    format('values (%L::uuid, %L::uuid)', tests.world('a_uid'), tests.world('a_number')),
    'A''s default number is still A''s own choice, and nobody else''s');
select results_eq(format('select email, name, verified, is_default from public.sender_identities where connection_id = %L', tests.world('a_smtp')),
    $$ values ('a@example.test'::text, 'A sender'::text, true, true) $$,
    'A''s SMTP still has only its sender identity, unchanged');
select results_eq(format('select id, is_default_mail from public.connections where is_default_mail and workspace_id = any (%L::uuid[]) order by name',
                         array[tests.world('a_workspace'), tests.world('a_team')]),
    format('values (%L::uuid, true), (%L::uuid, true)', tests.world('a_smtp'), tests.world('a_team_mail')),
    'A''s default mail connections are unchanged (one per workspace)');
select results_eq(format('select name, status, granted_scopes from public.connections where id = %L', tests.world('a_clicksend')),
    $$ values ('A ClickSend'::text, 'active'::text, '{sms,mms,balance,history}'::text[]) $$,
    'A''s connection still exists, unrenamed, active, with all its scopes');
select is((select config from public.connections where id = tests.world('a_team_mail')::uuid), '{"from_email": "team@a.example.test"}'::jsonb,
    'A''s team mail config is unchanged');
select is((select count(*)::int from public.connections where workspace_id = any (array[tests.world('a_workspace'), tests.world('a_team')]::uuid[])), 3,
    'A''s workspaces hold only A''s three connections (B created none there)');
select results_eq(format('select allowed_scopes, daily_send_limit, max_recipients_per_message, is_active, revoked_at is null from public.agent_permissions where id = %L', tests.world('a_grant')),
    $$ values ('{sms,balance}'::text[], 100, 10, true, true) $$,
    'A''s grant is unchanged and active');
select results_eq(format('select count(*)::int, count(revoked_at)::int from public.agent_keys where agent_id = %L', tests.world('a_agent')),
    $$ values (1, 0) $$, 'A''s agent still has exactly one key, not revoked (B neither issued nor revoked one)');
select is((select count(*)::int from public.agent_permissions where agent_id = tests.world('a_agent')::uuid), 2,
    'A''s agent has only its two fixture grants (B created none)');
select is((select count(*)::int from public.routes r
           where r.workspace_id = any (array[tests.world('a_workspace'), tests.world('a_team')]::uuid[])), 0,
    'A''s workspaces hold no route (B set none there)');
select is((select count(*)::int from public.audit_events
           where workspace_id = any (array[tests.world('a_workspace'), tests.world('a_team')]::uuid[]) and actor_user_id <> tests.world('a_uid')::uuid
             and action <> 'member.joined'),
    0, 'A''s audit trail holds no action by anyone but A (and A''s member joining): none of B''s attempts did anything');
select is(public.validate_agent_clicksend_permissions(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid, '{sms}'), true,
    'A asking about its own agent: true (the 42501 for B is not a blanket refusal)');
select is(public.validate_agent_smtp_permissions(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid, tests.world('a_smtp')::uuid), true,
    'A: its agent may use its SMTP connection');
select is(public.get_smtp_tools(tests.world('a_agent')::uuid, tests.world('a_uid')::uuid) #>> '{0,name}', 'email_send',
    'A: get_smtp_tools lists email_send (the mail channel tool)');
select ok(jsonb_array_length(public.get_agent_tools(tests.world('a_agent')::uuid)) > 0, 'A: get_agent_tools lists A''s tools');
select tests.reset_authentication();
select is((select decrypted_secret::jsonb ->> 'api_key' from vault.decrypted_secrets
           where id = (select secret_id from public.connections where id = tests.world('a_clicksend')::uuid)),
    tests.world('a_clicksend_secret'), 'A''s Vault secret still holds A''s key (B''s rotate did nothing)');

-- ---- A signed-in role without a user (no sub claim) gets "sign in required" ---------------------------
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated"}', true);
select throws_ok(format('select public.get_agent_tools(%L)', tests.world('a_agent')), 'PT401', null,
    'authenticated without a sub claim: get_agent_tools refuses (PT401)');
select throws_ok($$ select public.create_connection('clicksend_sms', 'ghost', '{"username":"u","api_key":"k"}') $$, 'PT401', null,
    'authenticated without a sub claim: create_connection refuses (PT401)');
select throws_ok($$ select public.create_workspace('ghost') $$, 'PT401', null,
    'authenticated without a sub claim: create_workspace refuses (PT401)');
select throws_ok(format('select public.accept_workspace_invitation(%L)', tests.world('a_invitation_token')), 'PT401', null,
    'authenticated without a sub claim: accept_workspace_invitation refuses (PT401)');

-- ---- Service-only functions: refused to authenticated and anon ------------------------------------------
-- Every function 01-structure-privileges lists as service-only, called with null arguments
-- (EXECUTE is checked before anything runs).
create temporary table service_only on commit drop as
    select p.oid::regprocedure::text as fn,
           format('select %s(%s)', p.oid::regproc,
                  (select coalesce(string_agg('null::' || format_type(t, null), ', ' order by n), '')
                   from unnest(p.proargtypes::oid[]) with ordinality a (t, n))) as q
    from unnest(array[
        'public.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer)',
        'private.agent_message_status(uuid, uuid, text, uuid[], integer)',
        'private.agent_tool_entries(uuid, boolean)',
        'private.agent_tools(uuid, text)',
        'private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)',
        'private.connection_for_admin(uuid, uuid, text)',
        'private.connection_for_test(uuid, uuid, text)',
        'private.dry_run_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)',
        'private.fail_over_tool_call(uuid, text, text, integer, text, integer)',
        'private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer)',
        'private.is_email_address(text)',
        'private.list_tools_for_caller(uuid, uuid, text, text, boolean, boolean)',
        'private.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer)',
        'private.operations_to_reconcile(text, integer)',
        'private.reconcile_pending_operations()',
        'private.record_connection_test(uuid, boolean, text, uuid, jsonb)',
        'private.record_message_events(text, text, jsonb)',
        'private.record_provider_reconciliation(uuid, text, text, jsonb, text)',
        'private.sync_phone_numbers(uuid, uuid, jsonb, jsonb)',
        'private.uuid_v7()',
        'private.valid_recipient_patterns(text[])',
        'private.webhook_connection(text, text)',
        'private.webhook_connection_secrets(text, text)']::regprocedure[]) f
    join pg_proc p on p.oid = f;
grant select on service_only to authenticated, anon;

select tests.authenticate_as('user_a');
select throws_ok(q, '42501', null, 'authenticated (even the owner) cannot call ' || fn) from service_only order by fn;
select throws_ok(format('select private.begin_tool_call(%L, p_user_id => %L, p_agent_id => %L, p_auth_mode => %L)',
                        'clicksend_get_balance', tests.world('a_uid'), tests.world('a_agent'), 'user_agent'),
    '42501', null, 'authenticated cannot begin a call for its own agent (the route to decrypted credentials)');
select throws_ok(format('select private.connection_for_test(%L, %L, %L)', tests.world('a_uid'), tests.world('a_clicksend'), 'clicksend_sms'),
    '42501', null, 'authenticated cannot fetch its own connection''s credentials for a test');

select tests.clear_authentication();
select throws_ok(q, '42501', null, 'anon cannot call ' || fn) from service_only order by fn;

-- ... while service_role, whom they are for, can call them.
select tests.reset_authentication();
select ok(bool_and(has_function_privilege('service_role', f, 'EXECUTE')), 'service_role can execute every service-only function')
from unnest(array[
    'private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)',
    'private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer)',
    'private.fail_over_tool_call(uuid, text, text, integer, text, integer)',
    'private.record_message_events(text, text, jsonb)',
    'private.connection_for_test(uuid, uuid, text)',
    'private.connection_for_admin(uuid, uuid, text)',
    'private.sync_phone_numbers(uuid, uuid, jsonb, jsonb)',
    'private.webhook_connection_secrets(text, text)',
    'private.record_connection_test(uuid, boolean, text, uuid, jsonb)',
    'private.list_tools_for_caller(uuid, uuid, text, text, boolean, boolean)',
    'private.agent_tools(uuid, text)',
    'public.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer)']) f;

select * from finish();
rollback;
