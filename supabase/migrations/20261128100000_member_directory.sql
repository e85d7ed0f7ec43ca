/**
 * ==== Member directory ====
 * Who a workspace's members are, by e-mail address. `workspace_members` holds user ids
 * only, and `auth.users` is not readable by clients, so the people of a team could not
 * tell each other apart (the dashboard showed "Member 1a2b…"). The directory answers
 * the members of a workspace, and only to its own members.
 */

-- ---- Section - Directory ----

/**
 * The members of a workspace: user id, e-mail address, role, who invited them and when
 * they joined, owner first, then admins, then members, each by joining time. Every member
 * of the workspace may read it (they work with these people); anyone else gets no rows,
 * whether the workspace exists or not.
 */
create function private.workspace_member_directory(p_workspace_id uuid)
returns table (user_id uuid, email text, role text, invited_by uuid, joined_at timestamptz)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    if not private.has_role_on_workspace(p_workspace_id) then
        return;
    end if;
    return query
    select m.user_id, u.email::text, m.role, m.invited_by, m.joined_at
    from public.workspace_members m
    join auth.users u on u.id = m.user_id
    where m.workspace_id = p_workspace_id
    order by private.role_rank(m.role) desc, m.joined_at, m.user_id;
end
$$;

/** The members of a workspace you belong to, with their e-mail addresses (see private.workspace_member_directory). */
create function public.workspace_member_directory(p_workspace_id uuid)
returns table (user_id uuid, email text, role text, invited_by uuid, joined_at timestamptz)
language sql stable security invoker set search_path = ''
as $$ select * from private.workspace_member_directory(p_workspace_id) $$;

revoke all on function private.workspace_member_directory(uuid) from public, anon;
revoke all on function public.workspace_member_directory(uuid) from public, anon;
grant execute on function private.workspace_member_directory(uuid), public.workspace_member_directory(uuid) to authenticated;
