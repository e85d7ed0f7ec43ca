/**
 * ==== Workspaces ====
 * Every resource belongs to a workspace. Every user gets a personal workspace when they
 * sign up (only they are in it), so one person alone uses the same model as a team. A
 * team workspace has exactly one owner, any number of admins and members:
 *   owner    everything; the only one who changes roles and transfers ownership
 *   admin    manages connections, numbers, identities, members' permissions and
 *            invitations; removes members; reads the audit trail
 *   member   sees the connections they may view, creates agents and grants them part of
 *            what they hold, reads their own agents' activity
 * private.has_role_on_workspace is the one role helper every policy and RPC uses.
 * Membership changes are audited (the audit migration defines private.audit).
 */

-- ---- Section - Tables ----
create table public.workspaces (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(btrim(name)) between 1 and 100),
    /* a personal workspace belongs to one user and never has other members */
    personal boolean not null default false,
    /* the owner; a workspace always has exactly one (transfer_workspace_ownership moves it) */
    primary_owner_user_id uuid not null references auth.users (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.workspaces is 'A person''s personal workspace or a team. Every connection, agent and operation belongs to one.';
create unique index workspaces_personal_owner_key on public.workspaces (primary_owner_user_id) where personal;
create index workspaces_primary_owner_user_id_idx on public.workspaces (primary_owner_user_id);

create table public.workspace_members (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role text not null check (role in ('owner', 'admin', 'member')),
    invited_by uuid references auth.users (id) on delete set null,
    joined_at timestamptz not null default now(),
    primary key (workspace_id, user_id)
);
comment on table public.workspace_members is 'Who belongs to a workspace, with which role (owner, admin, member).';
create index workspace_members_user_id_idx on public.workspace_members (user_id);
create index workspace_members_invited_by_idx on public.workspace_members (invited_by);
create unique index workspace_members_one_owner_key on public.workspace_members (workspace_id) where role = 'owner';

create table public.workspace_invitations (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    /* lower-case; only the user signed in with this address can accept */
    email text not null check (email = lower(email) and private.is_email_address(email)),
    role text not null check (role in ('admin', 'member')),
    /* hex SHA-256 of the token; the token is shown once, to the inviter */
    token_hash text not null unique,
    invited_by uuid references auth.users (id) on delete set null,
    status text not null default 'pending' check (status in ('pending', 'accepted', 'declined', 'revoked')),
    expires_at timestamptz not null,
    responded_at timestamptz,
    created_at timestamptz not null default now()
);
comment on table public.workspace_invitations is 'Invitations by e-mail with a token, a role and an expiry.';
create index workspace_invitations_workspace_id_idx on public.workspace_invitations (workspace_id, created_at desc);
create index workspace_invitations_email_idx on public.workspace_invitations (email) where status = 'pending';
create index workspace_invitations_invited_by_idx on public.workspace_invitations (invited_by);
create unique index workspace_invitations_pending_key on public.workspace_invitations (workspace_id, email) where status = 'pending';

create trigger workspaces_touch before update on public.workspaces
    for each row execute function private.touch_updated_at();

-- ---- Section - Role helper ----

/** Rank of a role: member 1, admin 2, owner 3 (0 for anything else). */
create function private.role_rank(p_role text) returns integer
language plpgsql immutable
set search_path = ''
as $$
begin
    return (select case p_role when 'owner' then 3 when 'admin' then 2 when 'member' then 1 else 0 end);
end
$$;

/**
 * The role p_user_id holds in a workspace, or null when they are not a member.
 * SECURITY DEFINER so policies on workspace_members itself can use it.
 */
create function private.workspace_role(p_workspace_id uuid, p_user_id uuid) returns text
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select m.role from public.workspace_members m
        where m.workspace_id = p_workspace_id and m.user_id = p_user_id);
end
$$;

/**
 * Does the signed-in user hold at least p_role ('member', 'admin' or 'owner') in the
 * workspace? With p_role null: are they a member at all? (basejump's
 * has_role_on_account.) Every policy and RPC asks this question through here.
 */
create function private.has_role_on_workspace(p_workspace_id uuid, p_role text default null) returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select coalesce(private.role_rank(private.workspace_role(p_workspace_id, (select auth.uid())))
                        >= private.role_rank(coalesce(p_role, 'member')), false));
end
$$;

/** The workspaces the signed-in user belongs to (for policies over many rows). */
create function private.my_workspace_ids() returns setof uuid
language sql stable
security definer
set search_path = ''
as $$
    select m.workspace_id from public.workspace_members m where m.user_id = (select auth.uid())
$$;

/**
 * Raises unless the signed-in user holds at least p_role in the workspace: PT404 when
 * they are not a member at all (the workspace is never confirmed to exist), 42501 when
 * their role is too low. Returns the caller's id.
 */
create function private.require_role(p_workspace_id uuid, p_role text default 'member') returns uuid
language plpgsql stable
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_role text := private.workspace_role(p_workspace_id, v_uid);
begin
    if v_role is null then
        raise exception 'workspace not found' using errcode = 'PT404';
    end if;
    if private.role_rank(v_role) < private.role_rank(p_role) then
        raise exception 'this needs the % role in the workspace (you are %)', p_role, v_role using errcode = '42501';
    end if;
    return v_uid;
end
$$;

/** A user's personal workspace (definer code only: it answers about anyone). */
create function private.personal_workspace_of(p_user_id uuid) returns uuid
language plpgsql stable
set search_path = ''
as $$
begin
    return (select w.id from public.workspaces w where w.personal and w.primary_owner_user_id = p_user_id);
end
$$;

/** The signed-in user's personal workspace (the default when a call names none). */
create function private.personal_workspace_id() returns uuid
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return private.personal_workspace_of(auth.uid());
end
$$;

/** p_workspace_id, or the caller's personal workspace when it is null. */
create function private.workspace_or_personal(p_workspace_id uuid) returns uuid
language plpgsql stable
set search_path = ''
as $$
begin
    return (select coalesce(p_workspace_id, private.personal_workspace_id()));
end
$$;

-- workspace_role answers about any user: it stays with the definer functions.
grant execute on function
    private.role_rank(text),
    private.has_role_on_workspace(uuid, text),
    private.my_workspace_ids(),
    private.personal_workspace_id(),
    private.workspace_or_personal(uuid)
to authenticated, service_role;

-- ---- Section - Personal workspaces ----

/** Creates the personal workspace of a new user, named after them. */
create function private.create_personal_workspace() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace_id uuid;
begin
    insert into public.workspaces (name, personal, primary_owner_user_id)
    values (left(coalesce(nullif(btrim(new.raw_user_meta_data ->> 'name'), ''), split_part(new.email, '@', 1),
                          'Personal'), 100), true, new.id)
    returning id into v_workspace_id;
    insert into public.workspace_members (workspace_id, user_id, role) values (v_workspace_id, new.id, 'owner');
    return new;
end
$$;
revoke all on function private.create_personal_workspace() from public;

create trigger on_auth_user_created_workspace after insert on auth.users
    for each row execute function private.create_personal_workspace();

/**
 * Deletes a user's personal workspace (and so everything in it) before the user goes.
 * A user who still owns a team workspace cannot be deleted: ownership is transferred first.
 */
create function private.delete_personal_workspace() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform private.delete_workspace_secrets(w.id) from public.workspaces w
    where w.personal and w.primary_owner_user_id = old.id;
    delete from public.workspaces where personal and primary_owner_user_id = old.id;
    return old;
end
$$;
revoke all on function private.delete_personal_workspace() from public;

create trigger on_auth_user_deleted_workspace before delete on auth.users
    for each row execute function private.delete_personal_workspace();

-- Users who signed up before this migration get theirs now.
with created as (
    insert into public.workspaces (name, personal, primary_owner_user_id)
    select left(coalesce(nullif(btrim(u.raw_user_meta_data ->> 'name'), ''), split_part(u.email, '@', 1), 'Personal'), 100),
           true, u.id
    from auth.users u
    returning id, primary_owner_user_id
)
insert into public.workspace_members (workspace_id, user_id, role)
select id, primary_owner_user_id, 'owner' from created;

-- ---- Section - Row level security ----
alter table public.workspaces enable row level security;
alter table public.workspace_members enable row level security;
alter table public.workspace_invitations enable row level security;

grant select on public.workspaces, public.workspace_members, public.workspace_invitations to authenticated;
grant select, insert, update, delete on public.workspaces, public.workspace_members, public.workspace_invitations to service_role;

create policy workspaces_select_policy on public.workspaces
    for select to authenticated
    using (private.has_role_on_workspace(id));

create policy workspace_members_select_policy on public.workspace_members
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id));

-- Admins see their workspace's invitations; an invitee sees the ones addressed to them.
create policy workspace_invitations_select_policy on public.workspace_invitations
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, 'admin')
           or (status = 'pending' and email = lower((select auth.jwt()) ->> 'email')));

-- ---- Section - Workspace RPCs ----
-- supabase.rpc('create_workspace', {p_name}) etc. Each public function is a SECURITY
-- INVOKER wrapper over a SECURITY DEFINER function in `private` that checks the caller's
-- role itself. Errors: PT401/PT404/PT409 map to those HTTP statuses, 42501 to 403,
-- 22023 to 400.

/** A workspace as its members see it, with the caller's role. */
create function private.workspace_json(p_workspace public.workspaces) returns jsonb
language sql stable
set search_path = ''
as $$
    select jsonb_build_object('id', p_workspace.id, 'name', p_workspace.name, 'personal', p_workspace.personal,
                              'primary_owner_user_id', p_workspace.primary_owner_user_id,
                              'role', private.workspace_role(p_workspace.id, (select auth.uid())),
                              'created_at', p_workspace.created_at, 'updated_at', p_workspace.updated_at)
$$;

/** A team workspace the caller may manage with p_role; personal ones are refused (22023). */
create function private.team_workspace(p_workspace_id uuid, p_role text) returns public.workspaces
language plpgsql stable
set search_path = ''
as $$
declare
    v_workspace public.workspaces;
begin
    perform private.require_role(p_workspace_id, p_role);
    select * into v_workspace from public.workspaces where id = p_workspace_id;
    if v_workspace.personal then
        raise exception 'a personal workspace has no other members; create a team workspace' using errcode = '22023';
    end if;
    return v_workspace;
end
$$;

/** Creates a team workspace; the caller becomes its owner. */
create function private.create_workspace(p_name text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_workspace public.workspaces;
begin
    insert into public.workspaces (name, primary_owner_user_id) values (btrim(p_name), v_uid)
    returning * into v_workspace;
    insert into public.workspace_members (workspace_id, user_id, role) values (v_workspace.id, v_uid, 'owner');
    perform private.audit(v_workspace.id, 'workspace.created', 'workspace', v_workspace.id::text,
                          jsonb_build_object('name', v_workspace.name));
    return private.workspace_json(v_workspace);
exception
    when check_violation or not_null_violation then
        raise exception 'a workspace name is 1-100 characters' using errcode = '22023';
end
$$;

/** Renames a workspace (admins and the owner). */
create function private.rename_workspace(p_workspace_id uuid, p_name text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace public.workspaces;
begin
    perform private.require_role(p_workspace_id, 'admin');
    update public.workspaces set name = btrim(p_name) where id = p_workspace_id returning * into v_workspace;
    perform private.audit(p_workspace_id, 'workspace.renamed', 'workspace', p_workspace_id::text,
                          jsonb_build_object('name', v_workspace.name));
    return private.workspace_json(v_workspace);
exception
    when check_violation or not_null_violation then
        raise exception 'a workspace name is 1-100 characters' using errcode = '22023';
end
$$;

/**
 * Deletes a team workspace and everything in it (owner only); its connections'
 * credentials are deleted from Vault. The audit trail keeps its rows.
 */
create function private.delete_workspace(p_workspace_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace public.workspaces := private.team_workspace(p_workspace_id, 'owner');
begin
    perform private.audit(p_workspace_id, 'workspace.deleted', 'workspace', p_workspace_id::text,
                          jsonb_build_object('name', v_workspace.name));
    perform private.delete_workspace_secrets(p_workspace_id);
    delete from public.workspaces where id = p_workspace_id;
    return jsonb_build_object('id', p_workspace_id, 'deleted', true);
end
$$;

/**
 * Invites someone by e-mail (admins and the owner; only the owner invites admins), as 'member' or 'admin', until
 * p_expires_at (default 7 days, at most 30). Returns the invitation with its token,
 * shown this once: only its hash is stored. A pending invitation to the same address is
 * replaced.
 */
create function private.invite_workspace_member(
    p_workspace_id uuid, p_email text, p_role text default 'member', p_expires_at timestamptz default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace public.workspaces := private.team_workspace(p_workspace_id, 'admin');
    v_uid uuid := auth.uid();
    v_email text := lower(btrim(p_email));
    v_expires timestamptz := coalesce(p_expires_at, now() + interval '7 days');
    v_token text := private.random_token('swb_invite_');
    v_row public.workspace_invitations;
begin
    if p_role is null or p_role not in ('admin', 'member') then
        raise exception 'an invitation''s role is admin or member (ownership is transferred, not invited)' using errcode = '22023';
    end if;
    if p_role = 'admin' then
        -- Only the owner makes admins (change_workspace_member_role), by invitation too.
        perform private.require_role(p_workspace_id, 'owner');
    end if;
    if not coalesce(private.is_email_address(v_email), false) then
        raise exception 'invalid e-mail address' using errcode = '22023';
    end if;
    if v_expires <= now() or v_expires > now() + interval '30 days' then
        raise exception 'expires_at must be in the future and at most 30 days away' using errcode = '22023';
    end if;
    if exists (select 1 from public.workspace_members m join auth.users u on u.id = m.user_id
               where m.workspace_id = p_workspace_id and lower(u.email) = v_email) then
        raise exception '% is already a member', v_email using errcode = 'PT409';
    end if;
    update public.workspace_invitations set status = 'revoked', responded_at = now()
    where workspace_id = p_workspace_id and email = v_email and status = 'pending';
    insert into public.workspace_invitations (workspace_id, email, role, token_hash, invited_by, expires_at)
    values (p_workspace_id, v_email, p_role, private.sha256_hex(v_token), v_uid, v_expires)
    returning * into v_row;
    perform private.audit(p_workspace_id, 'member.invited', 'invitation', v_row.id::text,
                          jsonb_build_object('email', v_email, 'role', p_role, 'expires_at', v_expires));
    return jsonb_build_object('id', v_row.id, 'workspace_id', v_row.workspace_id, 'workspace_name', v_workspace.name,
                              'email', v_row.email, 'role', v_row.role, 'token', v_token, 'expires_at', v_row.expires_at,
                              'created_at', v_row.created_at);
end
$$;

/** Withdraws a pending invitation (admins and the owner). */
create function private.revoke_workspace_invitation(p_invitation_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.workspace_invitations;
begin
    select * into v_row from public.workspace_invitations where id = p_invitation_id;
    if not found or not private.has_role_on_workspace(v_row.workspace_id, 'admin') then
        raise exception 'invitation not found' using errcode = 'PT404';
    end if;
    update public.workspace_invitations set status = 'revoked', responded_at = now()
    where id = p_invitation_id and status = 'pending'
    returning * into v_row;
    if not found then
        raise exception 'the invitation is no longer pending' using errcode = 'PT409';
    end if;
    perform private.audit(v_row.workspace_id, 'invitation.revoked', 'invitation', v_row.id::text,
                          jsonb_build_object('email', v_row.email));
    return jsonb_build_object('id', v_row.id, 'status', v_row.status);
end
$$;

/**
 * The pending, unexpired invitation a token names, addressed to the signed-in user's
 * confirmed e-mail address, locked. Anything else is 'invitation not found' (PT404): a token never
 * reveals a workspace to someone it was not sent to.
 */
create function private.invitation_for_caller(p_token text) returns public.workspace_invitations
language plpgsql
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_row public.workspace_invitations;
begin
    select i.* into v_row from public.workspace_invitations i
    where i.token_hash = private.sha256_hex(coalesce(p_token, ''))
      and i.email = (select lower(u.email) from auth.users u where u.id = v_uid and u.email_confirmed_at is not null)
    for update;
    if not found or v_row.status <> 'pending' then
        raise exception 'invitation not found' using errcode = 'PT404';
    end if;
    if v_row.expires_at <= now() then
        raise exception 'this invitation expired at %; ask for a new one', v_row.expires_at using errcode = '22023';
    end if;
    return v_row;
end
$$;

/** Accepts an invitation addressed to the signed-in user: they join with its role. */
create function private.accept_workspace_invitation(p_token text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.workspace_invitations := private.invitation_for_caller(p_token);
    v_uid uuid := auth.uid();
    v_workspace public.workspaces;
begin
    if private.workspace_role(v_row.workspace_id, v_uid) is not null then
        raise exception 'you are already a member of this workspace' using errcode = 'PT409';
    end if;
    update public.workspace_invitations set status = 'accepted', responded_at = now() where id = v_row.id;
    insert into public.workspace_members (workspace_id, user_id, role, invited_by)
    values (v_row.workspace_id, v_uid, v_row.role, v_row.invited_by);
    perform private.audit(v_row.workspace_id, 'member.joined', 'member', v_uid::text,
                          jsonb_build_object('role', v_row.role, 'invitation_id', v_row.id));
    select * into v_workspace from public.workspaces where id = v_row.workspace_id;
    return private.workspace_json(v_workspace);
end
$$;

/** Declines an invitation addressed to the signed-in user. */
create function private.decline_workspace_invitation(p_token text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.workspace_invitations := private.invitation_for_caller(p_token);
begin
    update public.workspace_invitations set status = 'declined', responded_at = now() where id = v_row.id;
    perform private.audit(v_row.workspace_id, 'invitation.declined', 'invitation', v_row.id::text,
                          jsonb_build_object('email', v_row.email));
    return jsonb_build_object('id', v_row.id, 'status', 'declined');
end
$$;

/**
 * Ends a membership: what the member held in the workspace goes with it. Their member
 * permissions are deleted, their agents there disabled (and refused from the next call,
 * which checks membership anyway), their numbers return to the pool.
 */
create function private.end_membership(p_workspace_id uuid, p_user_id uuid, p_action text) returns void
language plpgsql
set search_path = ''
as $$
begin
    delete from public.workspace_members where workspace_id = p_workspace_id and user_id = p_user_id;
    delete from public.member_permissions where workspace_id = p_workspace_id and user_id = p_user_id;
    update public.agents set is_active = false where workspace_id = p_workspace_id and user_id = p_user_id and is_active;
    update public.phone_numbers set assigned_to = null where workspace_id = p_workspace_id and assigned_to = p_user_id;
    perform private.audit(p_workspace_id, p_action, 'member', p_user_id::text, '{}');
end
$$;

/** Leaves a team workspace. The owner transfers ownership first. */
create function private.leave_workspace(p_workspace_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace public.workspaces := private.team_workspace(p_workspace_id, 'member');
begin
    if v_workspace.primary_owner_user_id = auth.uid() then
        raise exception 'the owner cannot leave; transfer ownership first' using errcode = '22023';
    end if;
    perform private.end_membership(p_workspace_id, auth.uid(), 'member.left');
    return jsonb_build_object('workspace_id', p_workspace_id, 'left', true);
end
$$;

/** Removes a member: the owner removes anyone else, an admin removes members. */
create function private.remove_workspace_member(p_workspace_id uuid, p_user_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace public.workspaces := private.team_workspace(p_workspace_id, 'admin');
    v_target_role text := private.workspace_role(p_workspace_id, p_user_id);
begin
    if v_target_role is null then
        raise exception 'member not found' using errcode = 'PT404';
    end if;
    if p_user_id = auth.uid() then
        raise exception 'use leave_workspace to leave' using errcode = '22023';
    end if;
    if private.role_rank(v_target_role) >= private.role_rank(private.workspace_role(p_workspace_id, auth.uid())) then
        raise exception 'you cannot remove a member with the % role', v_target_role using errcode = '42501';
    end if;
    perform private.end_membership(v_workspace.id, p_user_id, 'member.removed');
    return jsonb_build_object('workspace_id', p_workspace_id, 'user_id', p_user_id, 'removed', true);
end
$$;

/** Makes a member an admin or an admin a member (the owner only). */
create function private.change_workspace_member_role(p_workspace_id uuid, p_user_id uuid, p_role text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_old text;
begin
    perform private.team_workspace(p_workspace_id, 'owner');
    if p_role is null or p_role not in ('admin', 'member') then
        raise exception 'role must be admin or member (ownership is transferred with transfer_workspace_ownership)'
            using errcode = '22023';
    end if;
    v_old := private.workspace_role(p_workspace_id, p_user_id);
    if v_old is null then
        raise exception 'member not found' using errcode = 'PT404';
    elsif v_old = 'owner' then
        raise exception 'the owner''s role changes only by transferring ownership' using errcode = '22023';
    end if;
    update public.workspace_members set role = p_role where workspace_id = p_workspace_id and user_id = p_user_id;
    perform private.audit(p_workspace_id, 'member.role_changed', 'member', p_user_id::text,
                          jsonb_build_object('from', v_old, 'to', p_role));
    return jsonb_build_object('workspace_id', p_workspace_id, 'user_id', p_user_id, 'role', p_role);
end
$$;

/** Hands the workspace to another member (the owner only); the old owner stays as an admin. */
create function private.transfer_workspace_ownership(p_workspace_id uuid, p_new_owner_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := auth.uid();
begin
    perform private.team_workspace(p_workspace_id, 'owner');
    if private.workspace_role(p_workspace_id, p_new_owner_id) is null then
        raise exception 'the new owner must already be a member' using errcode = 'PT404';
    end if;
    if p_new_owner_id = v_uid then
        raise exception 'you already own this workspace' using errcode = '22023';
    end if;
    -- The old owner steps down first: one owner per workspace, always.
    update public.workspace_members set role = 'admin' where workspace_id = p_workspace_id and user_id = v_uid;
    update public.workspace_members set role = 'owner' where workspace_id = p_workspace_id and user_id = p_new_owner_id;
    update public.workspaces set primary_owner_user_id = p_new_owner_id where id = p_workspace_id;
    -- The new owner holds everything: member limits no longer apply to them.
    delete from public.member_permissions where workspace_id = p_workspace_id and user_id = p_new_owner_id;
    perform private.audit(p_workspace_id, 'workspace.ownership_transferred', 'member', p_new_owner_id::text,
                          jsonb_build_object('from', v_uid, 'to', p_new_owner_id));
    return jsonb_build_object('workspace_id', p_workspace_id, 'owner', p_new_owner_id);
end
$$;

-- ---- Public wrappers (SECURITY INVOKER; the private function checks the caller) ----

/** supabase.rpc('create_workspace', {p_name}): a team workspace the caller owns. */
create function public.create_workspace(p_name text) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.create_workspace(p_name) $$;

/** Rename a workspace (admin). */
create function public.rename_workspace(p_workspace_id uuid, p_name text) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.rename_workspace(p_workspace_id, p_name) $$;

/** Delete a team workspace and everything in it (owner). */
create function public.delete_workspace(p_workspace_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.delete_workspace(p_workspace_id) $$;

/** Invite someone by e-mail (admin); the returned token is shown once. */
create function public.invite_workspace_member(
    p_workspace_id uuid, p_email text, p_role text default 'member', p_expires_at timestamptz default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.invite_workspace_member(p_workspace_id, p_email, p_role, p_expires_at) $$;

/** Withdraw a pending invitation (admin). */
create function public.revoke_workspace_invitation(p_invitation_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.revoke_workspace_invitation(p_invitation_id) $$;

/** Accept an invitation sent to your e-mail address. */
create function public.accept_workspace_invitation(p_token text) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.accept_workspace_invitation(p_token) $$;

/** Decline an invitation sent to your e-mail address. */
create function public.decline_workspace_invitation(p_token text) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.decline_workspace_invitation(p_token) $$;

/** Leave a team workspace. */
create function public.leave_workspace(p_workspace_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.leave_workspace(p_workspace_id) $$;

/** Remove a member (admin: members; owner: anyone else). */
create function public.remove_workspace_member(p_workspace_id uuid, p_user_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.remove_workspace_member(p_workspace_id, p_user_id) $$;

/** Make a member an admin or an admin a member (owner). */
create function public.change_workspace_member_role(p_workspace_id uuid, p_user_id uuid, p_role text) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.change_workspace_member_role(p_workspace_id, p_user_id, p_role) $$;

/** Hand the workspace to another member (owner). */
create function public.transfer_workspace_ownership(p_workspace_id uuid, p_new_owner_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.transfer_workspace_ownership(p_workspace_id, p_new_owner_id) $$;

grant execute on function
    private.create_workspace(text),
    private.rename_workspace(uuid, text),
    private.delete_workspace(uuid),
    private.invite_workspace_member(uuid, text, text, timestamptz),
    private.revoke_workspace_invitation(uuid),
    private.accept_workspace_invitation(text),
    private.decline_workspace_invitation(text),
    private.leave_workspace(uuid),
    private.remove_workspace_member(uuid, uuid),
    private.change_workspace_member_role(uuid, uuid, text),
    private.transfer_workspace_ownership(uuid, uuid),
    public.create_workspace(text),
    public.rename_workspace(uuid, text),
    public.delete_workspace(uuid),
    public.invite_workspace_member(uuid, text, text, timestamptz),
    public.revoke_workspace_invitation(uuid),
    public.accept_workspace_invitation(text),
    public.decline_workspace_invitation(text),
    public.leave_workspace(uuid),
    public.remove_workspace_member(uuid, uuid),
    public.change_workspace_member_role(uuid, uuid, text),
    public.transfer_workspace_ownership(uuid, uuid)
to authenticated;
