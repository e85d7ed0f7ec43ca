/**
 * Workspaces and membership, as the people using them would check:
 *   - every user gets exactly one personal workspace at sign-up, with only them in it
 *   - anyone creates a team workspace and owns it
 *   - invitations: admins and the owner invite (members do not; personal workspaces
 *     cannot), role admin or member only, expiry in the future and at most 30 days, a
 *     new invitation to the same address replaces the pending one
 *   - only the user signed in with the invited address accepts; an unknown, expired,
 *     revoked, declined or someone else's token is refused without naming the workspace
 *   - leave (not the owner), remove (admins remove members; the owner removes admins
 *     too), change role (owner only), transfer ownership (always one owner; the old
 *     owner becomes an admin; the new owner's member permissions go)
 *   - delete a workspace (owner only): Vault secrets gone, audit rows kept
 *   - deleting a user deletes their personal workspace, and is refused while they own a team
 */
begin;
set local search_path = extensions, public;
select plan(85);

select from tests.seed_team();


-- =============================================================================================
-- Personal workspaces
-- =============================================================================================
select tests.create_supabase_user('ws_new', 'Fresh.Person@example.test');
select results_eq(
    format($$ select w.name, w.personal, m.role, (select count(*)::int from public.workspace_members x where x.workspace_id = w.id)
              from public.workspaces w join public.workspace_members m on m.workspace_id = w.id and m.user_id = w.primary_owner_user_id
              where w.primary_owner_user_id = %L $$, tests.get_supabase_uid('ws_new')),
    $$ values ('Fresh.Person'::text, true, 'owner'::text, 1) $$,
    'signing up creates one personal workspace, named after the e-mail, owned by the new user, with only them in it');
select is((select array_agg(x.n order by u.ord)
           from unnest(array['team_owner', 'team_admin', 'team_sender', 'team_viewer', 'team_nobody', 'team_removed', 'team_invitee', 'other_admin'])
                with ordinality u (identifier, ord),
                lateral (select count(*)::int n from public.workspaces w
                         where w.personal and w.primary_owner_user_id = tests.get_supabase_uid(u.identifier)) x),
          array_fill(1, array[8]), 'each of the 8 fixture users has exactly one personal workspace');
select tests.reset_authentication();
insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-4000-8000-0000000000aa', 'authenticated', 'authenticated', 'named@example.test',
        '{"name": "  Ada Lovelace  ", "test_identifier": "ws_named"}', now(), now());
select is((select name from public.workspaces where personal and primary_owner_user_id = '00000000-0000-4000-8000-0000000000aa'), 'Ada Lovelace',
    'a user with a name in their metadata gets a personal workspace named after them (trimmed)');
select throws_ok(format($$ insert into public.workspaces (name, personal, primary_owner_user_id) values ('Second', true, %L) $$, tests.get_supabase_uid('ws_new')),
    '23505', null, 'a second personal workspace for the same user is refused (23505)');
select tests.authenticate_as('ws_new');
select is((select count(*)::int from public.workspaces), 1, 'the new user sees exactly their personal workspace');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'friend@example.test')$$,
                                    (select id from public.workspaces where personal))), '^22023: ',
    'inviting into a personal workspace is refused (22023)');
select matches(tests.try_sql(format($$select public.leave_workspace(%L)$$, (select id from public.workspaces where personal))), '^22023: ',
    'leaving one''s personal workspace is refused (22023)');
select matches(tests.try_sql(format($$select public.delete_workspace(%L)$$, (select id from public.workspaces where personal))), '^22023: ',
    'deleting one''s personal workspace through the RPC is refused (22023)');

-- =============================================================================================
-- Creating a team
-- =============================================================================================
select tests.remember('team', public.create_workspace('  Rocket Co  '));
select results_eq($$ select tests.recall('team') ->> 'name', (tests.recall('team') ->> 'personal')::boolean, tests.recall('team') ->> 'role' $$,
    $$ values ('Rocket Co'::text, false, 'owner'::text) $$, 'create_workspace: a team named as given (trimmed), the caller its owner');
select results_eq(format('select user_id, role from public.workspace_members where workspace_id = %L', tests.recall('team') ->> 'id'),
    format($$ values (%L::uuid, 'owner'::text) $$, tests.get_supabase_uid('ws_new')), '... with the caller as its one member, the owner');
select matches(tests.try_sql($$select public.create_workspace('   ')$$), '^22023: ', 'a blank team name is refused (22023)');
select matches(tests.try_sql(format($$select public.create_workspace(%L)$$, repeat('x', 101))), '^22023: ', 'a 101-character name is refused (22023)');
select tests.clear_authentication();
select throws_ok($$ select public.create_workspace('Anon team') $$, '42501', null, 'anon cannot create a workspace');

-- =============================================================================================
-- Invitations
-- =============================================================================================
select tests.create_supabase_user(u, u || '@example.test') from unnest(array['ws_guest', 'ws_other']) u;
select tests.create_supabase_user('ws_mixed', 'mixed.case@example.test');

select tests.authenticate_as('team_sender');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'ws_guest@example.test')$$, tests.world('t_workspace'))), '^42501: ',
    'a member cannot invite (42501)');
select tests.authenticate_as('other_admin');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'ws_guest@example.test')$$, tests.world('t_workspace'))), '^PT404: ',
    'another workspace''s admin cannot invite into Acme (PT404)');
select tests.authenticate_as('team_admin');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'ws_guest@example.test', %L)$$, tests.world('t_workspace'), r)), '^22023: ',
               format('an invitation with role %s is refused (22023)', coalesce(r, 'null')))
from unnest(array['owner', 'superadmin', null]) r;
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'ws_guest@example.test', 'member', %s)$$, tests.world('t_workspace'), e)), '^22023: ',
               'an invitation expiring ' || what || ' is refused (22023)')
from (values ('in the past', 'now() - interval ''1 minute'''), ('now', 'now()'), ('in 31 days', 'now() + interval ''31 days''')) as v (what, e);
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'not an address')$$, tests.world('t_workspace'))), '^22023: ',
    'an invitation to something that is not an e-mail address is refused (22023)');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'TEAM_SENDER@example.test')$$, tests.world('t_workspace'))), '^PT409: ',
    'inviting someone already in the workspace (any case) is a conflict (PT409)');
select matches(tests.try_sql(format($$select public.invite_workspace_member(%L, 'ws_guest@example.test', 'admin')$$, tests.world('t_workspace'))), '^42501: ',
    'an admin cannot invite an admin: only the owner makes admins (42501)');
select tests.authenticate_as('team_owner');
select tests.remember('inv1', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'ws_guest@example.test', 'admin', now() + interval '30 days' - interval '1 minute'));
select tests.authenticate_as('team_admin');
select results_eq($$ select tests.recall('inv1') ->> 'role', tests.recall('inv1') ->> 'workspace_name', tests.recall('inv1') ->> 'token' like 'swb_invite_%' $$,
    $$ values ('admin'::text, 'Acme'::text, true) $$, 'the owner invites as admin, for just under 30 days: the token is returned once');
select is((select token_hash from public.workspace_invitations where id = (tests.recall('inv1') ->> 'id')::uuid),
    encode(extensions.digest(tests.recall('inv1') ->> 'token', 'sha256'), 'hex'), '... and only its SHA-256 is stored');
select tests.remember('inv2', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'WS_Guest@Example.test'));
select results_eq(format($$ select id::text, status, role from public.workspace_invitations where workspace_id = %L and email = 'ws_guest@example.test' order by status desc $$,
                         tests.world('t_workspace')),
    format($$ values (%L, 'revoked'::text, 'admin'::text), (%L, 'pending', 'member') $$, tests.recall('inv1') ->> 'id', tests.recall('inv2') ->> 'id'),
    'a second invitation to the same address (any case) replaces the pending one: the first is revoked, one is pending');

-- ---- Accepting ----
select tests.authenticate_as('ws_guest');
select is((select count(*)::int from public.workspace_invitations), 1, 'the invitee sees the one pending invitation addressed to them');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv1') ->> 'token')), '^PT404: invitation not found$',
    'the replaced (revoked) invitation''s token is refused as not found');
select tests.authenticate_as('ws_other');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv2') ->> 'token')), '^PT404: invitation not found$',
    'someone else signed in with another address cannot accept the guest''s token (not found, no workspace named)');
select matches(tests.try_sql(format($$select public.decline_workspace_invitation(%L)$$, tests.recall('inv2') ->> 'token')), '^PT404: invitation not found$',
    '... nor decline it');
select matches(tests.try_sql($$select public.accept_workspace_invitation('swb_invite_not-a-real-token')$$), '^PT404: invitation not found$',
    'an unknown token is refused as not found');
select tests.clear_authentication();
select throws_ok(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv2') ->> 'token'), '42501', null,
    'anon cannot accept an invitation');
select tests.authenticate_as('ws_guest');
select tests.remember('joined', public.accept_workspace_invitation(tests.recall('inv2') ->> 'token'));
select results_eq($$ select tests.recall('joined') ->> 'id', tests.recall('joined') ->> 'role' $$,
    format($$ values (%L, 'member'::text) $$, tests.world('t_workspace')), 'the guest accepts their invitation and joins Acme with its role (member)');
select tests.reset_authentication();
select results_eq(format($$ select status, responded_at is not null from public.workspace_invitations where id = %L $$, tests.recall('inv2') ->> 'id'),
    $$ values ('accepted'::text, true) $$, '... the invitation is accepted');
select tests.authenticate_as('ws_guest');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv2') ->> 'token')), '^PT404: ',
    'an accepted token cannot be used again (PT404)');

select tests.authenticate_as('team_admin');
select tests.remember('inv_mixed', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'Mixed.Case@EXAMPLE.test'));
select tests.authenticate_as('ws_mixed');
select is(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv_mixed') ->> 'token')), 'ok',
    'an invitation to Mixed.Case@EXAMPLE.test is accepted by the user signed in as mixed.case@example.test');

-- ---- An address nobody has confirmed ----
select tests.authenticate_as('team_admin');
select tests.remember('inv_unconfirmed', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'unconfirmed@example.test'));
select tests.reset_authentication();
select tests.create_supabase_user('ws_unconfirmed', 'unconfirmed@example.test');
update auth.users set email_confirmed_at = null where id = tests.get_supabase_uid('ws_unconfirmed');
select tests.authenticate_as('ws_unconfirmed');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv_unconfirmed') ->> 'token')), '^PT404: invitation not found$',
    'a user who signed up with the invited address but never confirmed it cannot accept (not found)');

-- ---- Expired, revoked, declined ----
select tests.authenticate_as('team_admin');
select tests.remember('inv_exp', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'ws_other@example.test'));
select tests.reset_authentication();
update public.workspace_invitations set expires_at = now() - interval '1 second' where id = (tests.recall('inv_exp') ->> 'id')::uuid;
select tests.authenticate_as('ws_other');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv_exp') ->> 'token')), '^22023: .*expired',
    'an expired invitation is refused (22023, "expired")');
select doesnt_match(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv_exp') ->> 'token')), 'Acme',
    '... without naming the workspace');
select tests.authenticate_as('team_admin');
select tests.remember('inv_rev', public.invite_workspace_member(tests.world('t_workspace')::uuid, 'ws_other@example.test'));
select public.revoke_workspace_invitation((tests.recall('inv_rev') ->> 'id')::uuid);
select matches(tests.try_sql(format($$select public.revoke_workspace_invitation(%L)$$, tests.recall('inv_rev') ->> 'id')), '^PT409: ',
    'revoking an invitation twice is a conflict (PT409)');
select tests.authenticate_as('ws_other');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.recall('inv_rev') ->> 'token')), '^PT404: invitation not found$',
    'a revoked invitation is refused as not found');
select tests.authenticate_as('team_sender');
select matches(tests.try_sql(format($$select public.revoke_workspace_invitation(%L)$$, tests.recall('inv_mixed') ->> 'id')), '^PT404: ',
    'a member cannot revoke invitations (PT404: they do not see them)');

select tests.authenticate_as('team_invitee');
select is((public.decline_workspace_invitation(tests.world('t_invitation_token')) ->> 'status'), 'declined', 'team_invitee declines their invitation');
select matches(tests.try_sql(format($$select public.accept_workspace_invitation(%L)$$, tests.world('t_invitation_token'))), '^PT404: invitation not found$',
    '... and can no longer accept it (not found)');
select is((select count(*)::int from public.workspaces where id = tests.world('t_workspace')::uuid), 0, '... and does not see Acme');

-- =============================================================================================
-- Leave, remove, change role
-- =============================================================================================
select tests.authenticate_as('team_owner');
select matches(tests.try_sql(format($$select public.leave_workspace(%L)$$, tests.world('t_workspace'))), '^22023: ',
    'the owner cannot leave (22023: transfer ownership first)');
select public.change_workspace_member_role(tests.world('t_workspace')::uuid, tests.world('t_nobody')::uuid, 'admin');
select results_eq(format($$ select role from public.workspace_members where workspace_id = %L and user_id = %L $$, tests.world('t_workspace'), tests.world('t_nobody')),
    $$ values ('admin'::text) $$, 'the owner makes team_nobody an admin');
select tests.authenticate_as('team_admin');
select matches(tests.try_sql(format($$select public.change_workspace_member_role(%L, %L, 'admin')$$, tests.world('t_workspace'), tests.world('t_viewer'))), '^42501: ',
    'an admin cannot change roles (42501)');
select matches(tests.try_sql(format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('t_nobody'))), '^42501: ',
    'an admin cannot remove another admin (42501)');
select matches(tests.try_sql(format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('t_owner'))), '^42501: ',
    'an admin cannot remove the owner (42501)');
select matches(tests.try_sql(format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('t_admin'))), '^22023: ',
    'an admin cannot remove themselves (22023: use leave_workspace)');
select matches(tests.try_sql(format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('o_admin'))), '^PT404: ',
    'removing someone who is not a member is not found (PT404)');
select tests.authenticate_as('team_viewer');
select matches(tests.try_sql(format($$select public.remove_workspace_member(%L, %L)$$, tests.world('t_workspace'), tests.world('t_sender'))), '^42501: ',
    'a member cannot remove another member (42501)');

-- The admin removes team_sender: what they held goes with them.
select tests.authenticate_as('team_admin');
select is(public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_sender')::uuid) -> 'removed', 'true'::jsonb,
    'an admin removes a member (team_sender)');
select tests.reset_authentication();
select results_eq(format($$ select (select count(*)::int from public.workspace_members where workspace_id = %1$L and user_id = %2$L),
                                  (select count(*)::int from public.member_permissions where workspace_id = %1$L and user_id = %2$L),
                                  (select count(*)::int from public.member_default_numbers where workspace_id = %1$L and user_id = %2$L),
                                  (select bool_or(is_active) from public.agents where workspace_id = %1$L and user_id = %2$L),
                                  (select assigned_to from public.phone_numbers where id = %3$L) $$,
                           tests.world('t_workspace'), tests.world('t_sender'), tests.world('t_number_sender')),
    $$ values (0, 0, 0, false, null::uuid) $$,
    '... their membership, member permissions and default number are gone, their agents disabled, their number back in the pool');
select tests.authenticate_as('team_sender');
select is((select count(*)::int from public.workspaces where id = tests.world('t_workspace')::uuid), 0, '... and they no longer see Acme');

select tests.authenticate_as('team_viewer');
select is(public.leave_workspace(tests.world('t_workspace')::uuid) -> 'left', 'true'::jsonb, 'a member (team_viewer) leaves');
select tests.reset_authentication();
select results_eq(format($$ select (select count(*)::int from public.workspace_members where workspace_id = %1$L and user_id = %2$L),
                                  (select count(*)::int from public.member_permissions where workspace_id = %1$L and user_id = %2$L) $$,
                           tests.world('t_workspace'), tests.world('t_viewer')),
    $$ values (0, 0) $$, '... their membership and member permission are gone');

select tests.authenticate_as('team_owner');
select is(public.remove_workspace_member(tests.world('t_workspace')::uuid, tests.world('t_nobody')::uuid) -> 'removed', 'true'::jsonb,
    'the owner removes an admin (team_nobody)');
select matches(tests.try_sql(format($$select public.change_workspace_member_role(%L, %L, 'owner')$$, tests.world('t_workspace'), tests.world('t_admin'))), '^22023: ',
    'change_workspace_member_role cannot make an owner (22023: ownership is transferred)');
select matches(tests.try_sql(format($$select public.change_workspace_member_role(%L, %L, 'member')$$, tests.world('t_workspace'), tests.world('t_owner'))), '^22023: ',
    'the owner''s own role does not change by change_workspace_member_role (22023)');
select matches(tests.try_sql(format($$select public.change_workspace_member_role(%L, %L, 'admin')$$, tests.world('t_workspace'), tests.world('t_removed'))), '^PT404: ',
    'changing the role of someone not in the workspace is not found (PT404)');

-- =============================================================================================
-- Transfer ownership
-- =============================================================================================
select tests.authenticate_as('team_admin');
select public.set_member_permission(tests.world('t_clicksend')::uuid, tests.get_supabase_uid('ws_guest'), p_can_send => true, p_scopes => '{sms}');
select tests.authenticate_as('team_admin');
select matches(tests.try_sql(format($$select public.transfer_workspace_ownership(%L, %L)$$, tests.world('t_workspace'), tests.world('t_admin'))), '^42501: ',
    'an admin cannot take ownership (42501)');
select tests.authenticate_as('team_owner');
select matches(tests.try_sql(format($$select public.transfer_workspace_ownership(%L, %L)$$, tests.world('t_workspace'), tests.world('o_admin'))), '^PT404: ',
    'ownership cannot go to someone outside the workspace (PT404)');
select matches(tests.try_sql(format($$select public.transfer_workspace_ownership(%L, %L)$$, tests.world('t_workspace'), tests.world('t_owner'))), '^22023: ',
    'the owner cannot transfer to themselves (22023)');
select is(public.transfer_workspace_ownership(tests.world('t_workspace')::uuid, tests.get_supabase_uid('ws_guest')) ->> 'owner',
    tests.get_supabase_uid('ws_guest')::text, 'the owner transfers Acme to a member (ws_guest)');
select tests.reset_authentication();
select results_eq(format($$ select user_id, role from public.workspace_members where workspace_id = %L and role in ('owner', 'admin') order by role, user_id $$, tests.world('t_workspace')),
    format($$ select * from (values (%L::uuid, 'admin'::text), (%L::uuid, 'admin'::text), (%L::uuid, 'owner'::text)) v order by 2, 1 $$,
           tests.world('t_admin'), tests.world('t_owner'), tests.get_supabase_uid('ws_guest')),
    '... one owner (ws_guest); the old owner is now an admin next to team_admin');
select is((select primary_owner_user_id from public.workspaces where id = tests.world('t_workspace')::uuid), tests.get_supabase_uid('ws_guest'),
    '... the workspace''s primary owner is the new owner');
select is((select count(*)::int from public.member_permissions where workspace_id = tests.world('t_workspace')::uuid and user_id = tests.get_supabase_uid('ws_guest')), 0,
    '... and the new owner''s member permissions are dropped (an owner holds everything)');
select throws_ok(format($$ update public.workspace_members set role = 'owner' where workspace_id = %L and user_id = %L $$, tests.world('t_workspace'), tests.world('t_admin')),
    '23505', null, 'a second owner is refused even to the table owner (23505)');
select tests.authenticate_as('team_owner');
select matches(tests.try_sql(format($$select public.transfer_workspace_ownership(%L, %L)$$, tests.world('t_workspace'), tests.world('t_owner'))), '^42501: ',
    'the old owner can no longer transfer (42501)');
select matches(tests.try_sql(format($$select public.delete_workspace(%L)$$, tests.world('t_workspace'))), '^42501: ',
    '... nor delete the workspace (42501)');
select is(public.leave_workspace(tests.world('t_workspace')::uuid) -> 'left', 'true'::jsonb, '... but may now leave it');

-- =============================================================================================
-- Delete a workspace
-- =============================================================================================
select tests.reset_authentication();
select tests.remember('acme_secrets', to_jsonb(array(select secret_id from public.connections where workspace_id = tests.world('t_workspace')::uuid
                                                      and secret_id is not null)));
select is(jsonb_array_length(tests.recall('acme_secrets')), 3, 'Acme has 3 connections with Vault secrets');
select tests.remember('acme_audit', to_jsonb((select count(*) from public.audit_events where workspace_id = tests.world('t_workspace')::uuid)));
select tests.authenticate_as('team_admin');
select matches(tests.try_sql(format($$select public.delete_workspace(%L)$$, tests.world('t_workspace'))), '^42501: ',
    'an admin cannot delete the workspace (42501)');
select tests.authenticate_as('ws_guest');
select is(public.delete_workspace(tests.world('t_workspace')::uuid) -> 'deleted', 'true'::jsonb, 'the owner deletes Acme');
select tests.reset_authentication();
select results_eq(format($$ select (select count(*)::int from public.workspaces where id = %1$L),
                                  (select count(*)::int from public.connections where workspace_id = %1$L),
                                  (select count(*)::int from public.agents where workspace_id = %1$L),
                                  (select count(*)::int from public.workspace_members where workspace_id = %1$L) $$, tests.world('t_workspace')),
    $$ values (0, 0, 0, 0) $$, '... and everything in it: connections, agents, members');
select is((select count(*)::int from vault.secrets where id in (select jsonb_array_elements_text(tests.recall('acme_secrets'))::uuid)), 0,
    '... its connections'' credentials are deleted from Vault');
select cmp_ok((select count(*) from public.audit_events where workspace_id = tests.world('t_workspace')::uuid), '>', tests.world('acme_audit')::bigint,
    '... and its audit trail stays (with the deletion added)');

-- =============================================================================================
-- Deleting a user
-- =============================================================================================
select tests.authenticate_as('ws_other');
select tests.remember('personal_conn', public.create_connection('clicksend_sms', 'Mine', '{"username":"me","api_key":"personal-secret"}'));
select tests.reset_authentication();
select tests.remember('personal_ws', to_jsonb((select id from public.workspaces where personal and primary_owner_user_id = tests.get_supabase_uid('ws_other'))));
select tests.remember('personal_secret', to_jsonb((select secret_id from public.connections where id = (tests.recall('personal_conn') ->> 'id')::uuid)));
delete from auth.users where id = tests.get_supabase_uid('ws_other');
select results_eq(format($$ select (select count(*)::int from public.workspaces where id = %L),
                                  (select count(*)::int from public.connections where id = %L),
                                  (select count(*)::int from vault.secrets where id = %L) $$,
                         tests.world('personal_ws'), tests.recall('personal_conn') ->> 'id', tests.world('personal_secret')),
    $$ values (0, 0, 0) $$, 'deleting a user deletes their personal workspace, its connections and their Vault secrets');
select throws_ok(format($$ delete from auth.users where id = %L $$, tests.get_supabase_uid('ws_new')), '23503', null,
    'deleting a user who still owns a team (Rocket Co) is refused');
select is((select count(*)::int from public.workspaces where primary_owner_user_id = tests.get_supabase_uid('ws_new')), 2,
    '... and both their workspaces are still there');
select tests.authenticate_as('other_admin');
select is(tests.try_sql(format($$select public.delete_workspace(%L)$$, tests.world('o_workspace'))), 'ok',
    'once other_admin deletes their team (Globex) ...');
select tests.reset_authentication();
delete from auth.users where id = tests.world('o_admin')::uuid;
select is((select count(*)::int from public.workspaces where primary_owner_user_id = tests.world('o_admin')::uuid), 0,
    '... they can be deleted, and their personal workspace goes with them');

select * from finish();
rollback;
