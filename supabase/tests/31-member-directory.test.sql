/**
 * The member directory (workspace_member_directory): the members of a workspace with their
 * e-mail addresses, for its own members only — not for a removed member, an invitee who
 * has not joined, another workspace's admin, or anon.
 */
begin;
set local search_path = extensions, public;
select plan(11);

select from tests.seed_team();
select tests.remember('m31_owner_email', to_jsonb((select email::text from auth.users where id = tests.world('t_owner')::uuid)));

select tests.authenticate_as('team_viewer');
select set_eq(
    format($q$ select role, user_id from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    format($q$ values ('owner', %L::uuid), ('admin', %L::uuid), ('member', %L::uuid), ('member', %L::uuid), ('member', %L::uuid) $q$,
           tests.world('t_owner'), tests.world('t_admin'), tests.world('t_sender'), tests.world('t_viewer'), tests.world('t_nobody')),
    'a member without any permission sees every member of the workspace, with their roles'
);
select results_eq(
    format($q$ select role from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    $q$ values ('owner'), ('admin'), ('member'), ('member'), ('member') $q$,
    'owner first, then admins, then members'
);
select is(
    (select email from public.workspace_member_directory(tests.world('t_workspace')::uuid) where user_id = tests.world('t_owner')::uuid),
    tests.recall('m31_owner_email') #>> '{}',
    'with their e-mail addresses'
);
select is(
    (select invited_by from public.workspace_member_directory(tests.world('t_workspace')::uuid) where user_id = tests.world('t_sender')::uuid),
    tests.world('t_owner')::uuid,
    'and who invited them'
);

select tests.authenticate_as('team_removed');
select is_empty(format($q$ select * from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    'a removed member sees nobody');

select tests.authenticate_as('team_invitee');
select is_empty(format($q$ select * from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    'an invitee who has not joined sees nobody');

select tests.authenticate_as('other_admin');
select is_empty(format($q$ select * from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    'another workspace''s admin sees nobody');
select is((select count(*)::integer from public.workspace_member_directory(tests.world('o_workspace')::uuid)), 1,
    'and sees their own workspace''s members');
select is_empty($q$ select * from public.workspace_member_directory(gen_random_uuid()) $q$,
    'a workspace that does not exist answers like one you are not in');

select tests.clear_authentication();
select throws_ok(format($q$ select * from public.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    '42501', null, 'anon may not call it');
select throws_ok(format($q$ select * from private.workspace_member_directory(%L) $q$, tests.world('t_workspace')),
    '42501', null, 'nor the private function behind it');

select * from finish();
rollback;
