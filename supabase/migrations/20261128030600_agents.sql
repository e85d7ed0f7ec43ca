/**
 * ==== Agents ====
 * An agent belongs to a workspace and acts for one member of it, its principal. An
 * agent grant gives it scopes on one of the workspace's connections, with limits. What
 * an agent may do is always its grant ∩ its principal's access to the connection:
 *   scopes       grant ∩ connection ∩ the member permission's scopes
 *   sending      needs the member's can_send
 *   limits       the grant's daily and monthly limits and the member permission's, each
 *                counted on its own counter (the ledger reserves them all atomically)
 *   recipients   the grant's allowed/blocked lists and the member permission's
 *   expiry       the earlier of the grant's and the member permission's
 * Owners and admins hold everything, so their agents are bounded by their grants alone.
 * A member can never grant more than they hold (checked when granting), and because
 * the intersection is taken again on every call, a member who is removed or loses a
 * permission takes their agents' rights with them at once.
 */

-- ---- Section - Tables ----
create table public.agents (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null default private.personal_workspace_id() references public.workspaces (id) on delete cascade,
    /* the principal: the member this agent acts for */
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    name text not null check (length(btrim(name)) between 1 and 100),
    description text check (length(description) <= 2000),
    is_active boolean not null default true,
    /* who disabled it: an agent an admin disabled is enabled again only by an admin */
    disabled_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, workspace_id)
);
comment on table public.agents is 'AI agents. Each acts for one member of its workspace (user_id) and never exceeds what that member holds.';
create index agents_user_id_idx on public.agents (user_id);
create index agents_workspace_id_idx on public.agents (workspace_id, user_id);
create index agents_disabled_by_idx on public.agents (disabled_by);

create table public.agent_permissions (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    agent_id uuid not null,
    connection_id uuid not null,
    allowed_scopes text[] not null check (cardinality(allowed_scopes) > 0),
    /* messages (recipients) per UTC day / calendar month; null = no limit of the grant's own */
    daily_send_limit integer check (daily_send_limit >= 0),
    monthly_send_limit integer check (monthly_send_limit >= 0),
    max_recipients_per_message integer not null default 10 check (max_recipients_per_message between 1 and 10000),
    /* E.164 prefixes ('+61', '+1415') and e-mail patterns ('a@x.com', 'x.com', '*.x.com') */
    allowed_recipients text[] not null default '{}',
    blocked_recipients text[] not null default '{}',
    expires_at timestamptz,
    is_active boolean not null default true,
    granted_by uuid references auth.users (id) on delete set null,
    granted_at timestamptz not null default now(),
    revoked_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (agent_id, connection_id),
    foreign key (agent_id, workspace_id) references public.agents (id, workspace_id) on delete cascade,
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade,
    constraint agent_permissions_allowed_recipients_check check (private.valid_recipient_patterns(allowed_recipients)),
    constraint agent_permissions_blocked_recipients_check check (private.valid_recipient_patterns(blocked_recipients))
);
comment on table public.agent_permissions is 'Agent grants: what an agent may do with one connection, within which limits.';
create index agent_permissions_workspace_id_idx on public.agent_permissions (workspace_id);
create index agent_permissions_connection_id_idx on public.agent_permissions (connection_id);
create index agent_permissions_granted_by_idx on public.agent_permissions (granted_by);

create table public.agent_keys (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    agent_id uuid not null,
    name text,
    /* first characters of the key, to recognise it in a list */
    key_prefix text not null,
    /* hex SHA-256 of the key; the key itself is shown once and never stored */
    key_hash text not null unique,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    foreign key (agent_id, workspace_id) references public.agents (id, workspace_id) on delete cascade
);
comment on table public.agent_keys is 'Opaque agent keys, stored hashed. Shown once at issue; revocable; optionally expiring.';
create index agent_keys_agent_id_idx on public.agent_keys (agent_id);
create index agent_keys_workspace_id_idx on public.agent_keys (workspace_id);
create index agent_keys_created_by_idx on public.agent_keys (created_by);

create trigger agents_touch before update on public.agents
    for each row execute function private.touch_updated_at();
create trigger agent_permissions_touch before update on public.agent_permissions
    for each row execute function private.touch_updated_at();

-- ---- Section - Table rules ----

/** An agent's principal must be a member of the agent's workspace. */
create function private.check_agent_principal() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.workspace_id is null or private.workspace_role(new.workspace_id, new.user_id) is null then
        raise exception 'an agent acts for a member of its workspace' using errcode = '42501';
    end if;
    return new;
end
$$;
revoke all on function private.check_agent_principal() from public;

create trigger agents_check_principal before insert or update of workspace_id, user_id on public.agents
    for each row execute function private.check_agent_principal();

/**
 * Remembers who disabled an agent; a member cannot enable again an agent someone else
 * (an admin, or the removal of its principal) disabled: only an admin can.
 */
create function private.check_agent_enabling() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.is_active and not old.is_active and old.disabled_by is distinct from auth.uid() and auth.uid() is not null
       and not private.has_role_on_workspace(new.workspace_id, 'admin') then
        raise exception 'this agent was disabled by an admin; only an admin can enable it again' using errcode = '42501';
    end if;
    new.disabled_by := case when new.is_active then null
                            when not old.is_active then old.disabled_by
                            else auth.uid() end;
    return new;
end
$$;
revoke all on function private.check_agent_enabling() from public;

create trigger agents_check_enabling before update of is_active on public.agents
    for each row execute function private.check_agent_enabling();

/**
 * A grant's scopes must be ones its connection grants, and the connection must be live
 * (checked on the columns that define the grant only: an in-flight call's bookkeeping
 * must still work after the connection is deleted).
 */
create function private.check_agent_permission() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections;
begin
    select * into v_connection from public.connections where id = new.connection_id;
    if v_connection.deleted_at is not null then
        raise exception 'connection % has been deleted', new.connection_id using errcode = 'P0002';
    end if;
    if not (new.allowed_scopes <@ v_connection.granted_scopes) then
        raise exception 'scopes % are not granted by the connection (it grants %)',
            (select array_agg(s) from unnest(new.allowed_scopes) s where s <> all (v_connection.granted_scopes)),
            v_connection.granted_scopes
            using errcode = '42501';
    end if;
    return new;
end
$$;
revoke all on function private.check_agent_permission() from public;

create trigger agent_permissions_check
    before insert or update of agent_id, connection_id, allowed_scopes, is_active on public.agent_permissions
    for each row execute function private.check_agent_permission();

-- ---- Section - Recipient rules ----

/**
 * Does a recipient (E.164 number or lower-case e-mail address) match a pattern?
 *  '+61', '+1415'        E.164 prefix
 *  'bob@example.com'     exact address
 *  'example.com', '@example.com'   that domain
 *  '*.example.com'       any subdomain of example.com
 */
create function private.recipient_matches(p_recipient text, p_pattern text) returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
    -- Defence in depth: the functions already lower-case addresses, but the rule must
    -- not depend on it. The domain is what follows the LAST '@'.
    return (with r as (select lower(p_recipient) as address,
                          substring(lower(p_recipient) from '@([^@]*)$') as domain,
                          lower(p_pattern) as pattern)
        select case
            when r.pattern like '+%' then starts_with(r.address, r.pattern)
            when r.domain is null then false
            when r.pattern like '*.%' then r.domain like '%.' || substr(r.pattern, 3)
            when r.pattern like '@%' then r.domain = substr(r.pattern, 2)
            when position('@' in r.pattern) > 0 then r.address = r.pattern
            else r.domain = r.pattern
        end
        from r);
end
$$;

/** The first recipient that the allowed/blocked lists refuse, or null when all pass. */
create function private.first_refused_recipient(p_recipients text[], p_allowed text[], p_blocked text[])
returns text
language plpgsql immutable
set search_path = ''
as $$
begin
    return (select r
        from unnest(p_recipients) as r
        where exists (select 1 from unnest(p_blocked) b where private.recipient_matches(r, b))
           or (cardinality(p_allowed) > 0
               and not exists (select 1 from unnest(p_allowed) a where private.recipient_matches(r, a)))
        limit 1);
end
$$;

-- ---- Section - Effective rights ----

/**
 * What someone may do with one connection right now, already intersected: for an agent,
 * its grant ∩ its principal's access; for a member acting directly, their access alone.
 * dead_reason says why nothing may be done at all (null when the right is live);
 * capability-specific rules (scope, can_send) are checked per call.
 */
create type private.effective_right as (
    connection_id uuid,
    workspace_id uuid,
    provider_id uuid,
    connection_name text,
    connection_created_at timestamptz,
    principal_id uuid,
    principal_role text,
    grant_id uuid,
    member_permission_id uuid,
    /* connection ∩ grant ∩ member permission (owners and admins: no member part) */
    scopes text[],
    can_send boolean,
    grant_daily_limit integer,
    grant_monthly_limit integer,
    member_daily_limit integer,
    member_monthly_limit integer,
    max_recipients_per_message integer,
    allowed_recipients text[],
    blocked_recipients text[],
    member_allowed_recipients text[],
    member_blocked_recipients text[],
    /* the earlier of the grant's and the member permission's expiry */
    expires_at timestamptz,
    dead_reason text
);

/**
 * Why a principal's access to a connection is dead, or null: the membership, the
 * member permission and the connection, in the order a user would fix them. The one
 * place these rules are written; agent_rights and member_rights both use it.
 */
create function private.access_dead_reason(
    p_role text, p_permission_id uuid, p_can_view boolean, p_permission_expires_at timestamptz, p_connection_status text
) returns text
language plpgsql stable
set search_path = ''
as $$
begin
    return case
        when p_role is null then 'principal_not_member'
        when p_role = 'member' and (p_permission_id is null or not p_can_view) then 'no_member_permission'
        when p_role = 'member' and p_permission_expires_at <= now() then 'member_permission_expired'
        when p_connection_status <> 'active' then 'connection_inactive'
    end;
end
$$;

/**
 * Every grant of an agent on a live (not deleted) connection (of one provider, when
 * p_provider_id is given), as effective rights: grant ∩ the principal's membership and
 * member permission. Dead ones are included
 * with their reason, so a refusal can say exactly why.
 */
create function private.agent_rights(p_agent_id uuid, p_provider_id uuid default null) returns setof private.effective_right
language plpgsql stable
set search_path = ''
as $$
begin
    return query
    select c.id, c.workspace_id, c.provider_id, c.name, c.created_at, a.user_id, m.role, g.id, mp.id,
           array(select s from unnest(g.allowed_scopes) s
                 where s = any (c.granted_scopes) and (m.role <> 'member' or s = any (mp.scopes))),
           m.role in ('owner', 'admin') or coalesce(mp.can_send, false),
           g.daily_send_limit, g.monthly_send_limit,
           case when m.role = 'member' then mp.daily_send_limit end,
           case when m.role = 'member' then mp.monthly_send_limit end,
           g.max_recipients_per_message, g.allowed_recipients, g.blocked_recipients,
           coalesce(mp.allowed_recipients, '{}'), coalesce(mp.blocked_recipients, '{}'),
           least(g.expires_at, case when m.role = 'member' then mp.expires_at end),
           case
               when not a.is_active then 'agent_disabled'
               when not g.is_active or g.revoked_at is not null then 'revoked'
               when g.expires_at <= now() then 'expired'
               else private.access_dead_reason(m.role, mp.id, mp.can_view, mp.expires_at, c.status)
           end
    from public.agent_permissions g
    join public.agents a on a.id = g.agent_id
    join public.connections c on c.id = g.connection_id and c.deleted_at is null
    left join public.workspace_members m on m.workspace_id = a.workspace_id and m.user_id = a.user_id
    left join public.member_permissions mp on mp.connection_id = g.connection_id and mp.user_id = a.user_id
    where g.agent_id = p_agent_id and (p_provider_id is null or c.provider_id = p_provider_id);
end
$$;

/**
 * A member's own rights on the live connections of one provider in every workspace they
 * belong to (for calls a member makes without an agent). Connections they may not even
 * see are left out.
 */
create function private.member_rights(p_user_id uuid, p_provider_id uuid) returns setof private.effective_right
language plpgsql stable
set search_path = ''
as $$
begin
    return query
    select c.id, c.workspace_id, c.provider_id, c.name, c.created_at, m.user_id, m.role, null::uuid, mp.id,
           case when m.role = 'member' then array(select s from unnest(mp.scopes) s where s = any (c.granted_scopes))
                else c.granted_scopes end,
           m.role in ('owner', 'admin') or coalesce(mp.can_send, false),
           null::integer, null::integer,
           case when m.role = 'member' then mp.daily_send_limit end,
           case when m.role = 'member' then mp.monthly_send_limit end,
           10000, '{}'::text[], '{}'::text[],
           coalesce(mp.allowed_recipients, '{}'), coalesce(mp.blocked_recipients, '{}'),
           case when m.role = 'member' then mp.expires_at end,
           private.access_dead_reason(m.role, mp.id, mp.can_view, mp.expires_at, c.status)
    from public.workspace_members m
    join public.connections c on c.workspace_id = m.workspace_id and c.provider_id = p_provider_id and c.deleted_at is null
    left join public.member_permissions mp on mp.connection_id = c.id and mp.user_id = m.user_id
    where m.user_id = p_user_id
      and (m.role in ('owner', 'admin') or mp.can_view);
end
$$;

-- ---- Section - Row level security ----
alter table public.agents enable row level security;
alter table public.agent_permissions enable row level security;
alter table public.agent_keys enable row level security;

-- Members manage their own agents directly (insert, rename, disable, delete); admins
-- manage every agent of the workspace. Grants and keys are written through the RPCs.
grant select, delete on public.agents to authenticated;
grant insert (workspace_id, name, description, is_active) on public.agents to authenticated;
grant update (name, description, is_active) on public.agents to authenticated;
grant select on public.agent_permissions, public.agent_keys to authenticated;
grant select, insert, update, delete on public.agents, public.agent_permissions, public.agent_keys to service_role;

-- A member's own agents are theirs while they are in the workspace; admins see them all.
create policy agents_select_policy on public.agents
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy agents_insert_policy on public.agents
    for insert to authenticated
    with check (user_id = (select auth.uid()) and private.has_role_on_workspace(workspace_id));

create policy agents_update_policy on public.agents
    for update to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end))
    with check (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy agents_delete_policy on public.agents
    for delete to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy agent_permissions_select_policy on public.agent_permissions
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when exists (
               select 1 from public.agents a where a.id = agent_id and a.user_id = (select auth.uid())) then 'member' else 'admin' end));

create policy agent_keys_select_policy on public.agent_keys
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when exists (
               select 1 from public.agents a where a.id = agent_id and a.user_id = (select auth.uid())) then 'member' else 'admin' end));

-- ---- Section - Agent RPCs ----

/**
 * An agent the signed-in user may manage: its principal while a member of its workspace,
 * or an admin of it.
 * Anything else is 'agent not found' (PT404): another workspace's agent is never confirmed.
 */
create function private.managed_agent(p_agent_id uuid) returns public.agents
language plpgsql stable
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_agent public.agents;
begin
    select * into v_agent from public.agents where id = p_agent_id;
    if not found or not private.has_role_on_workspace(v_agent.workspace_id,
                                                      case when v_agent.user_id = v_uid then 'member' else 'admin' end) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    return v_agent;
end
$$;

/** A grant of an agent the signed-in user may manage (private.managed_agent), or 'permission not found' (PT404). */
create function private.managed_grant(p_permission_id uuid) returns public.agent_permissions
language plpgsql stable
set search_path = ''
as $$
declare
    v_grant public.agent_permissions;
begin
    select * into v_grant from public.agent_permissions where id = p_permission_id;
    if found then
        begin
            perform private.managed_agent(v_grant.agent_id);
            return v_grant;
        exception when sqlstate 'PT404' then
            null;
        end;
    end if;
    raise exception 'permission not found' using errcode = 'PT404';
end
$$;

/** Checks a grant's limits before they are stored. */
create function private.validate_limits(p_daily_send_limit integer, p_monthly_send_limit integer, p_max_recipients integer)
returns void
language plpgsql immutable
set search_path = ''
as $$
begin
    if p_daily_send_limit < 0 or p_monthly_send_limit < 0 then
        raise exception 'daily_send_limit and monthly_send_limit must be 0 or more (null for no limit)' using errcode = '22023';
    end if;
    if p_max_recipients not between 1 and 10000 then
        raise exception 'max_recipients_per_message must be between 1 and 10000' using errcode = '22023';
    end if;
end
$$;

/**
 * Refuses (42501, with the details) a grant that gives an agent more than its principal
 * holds on the connection: scopes outside theirs, sending without can_send, a limit
 * missing or above theirs, an expiry after theirs. Owners and admins hold everything.
 */
create function private.assert_grant_within_principal(p_agent public.agents, p_grant public.agent_permissions)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
    v_role text := private.workspace_role(p_agent.workspace_id, p_agent.user_id);
    v_held public.member_permissions;
    v_excess text[] := '{}'::text[];
begin
    if v_role is null then
        raise exception 'the agent''s principal is no longer a member of the workspace' using errcode = '42501';
    elsif v_role in ('owner', 'admin') then
        return;
    end if;
    v_held := private.live_member_permission(p_grant.connection_id, p_agent.user_id);
    if v_held.id is null or not v_held.can_view then
        raise exception 'the agent''s principal holds no permission on this connection' using errcode = '42501';
    end if;
    if not (p_grant.allowed_scopes <@ v_held.scopes) then
        v_excess := v_excess || format('scopes %s (they hold %s)', p_grant.allowed_scopes, v_held.scopes);
    end if;
    if exists (select 1 from public.integration_capabilities cap
               where cap.sends_messages and cap.required_scope = any (p_grant.allowed_scopes)
                 and cap.provider_id = (select c.provider_id from public.connections c where c.id = p_grant.connection_id))
       and not v_held.can_send then
        v_excess := v_excess || 'sending (they lack can_send)'::text;
    end if;
    if v_held.daily_send_limit is not null and coalesce(p_grant.daily_send_limit > v_held.daily_send_limit, true) then
        v_excess := v_excess || format('a daily limit of %s (theirs is %s)', coalesce(p_grant.daily_send_limit::text, 'none'), v_held.daily_send_limit);
    end if;
    if v_held.monthly_send_limit is not null and coalesce(p_grant.monthly_send_limit > v_held.monthly_send_limit, true) then
        v_excess := v_excess || format('a monthly limit of %s (theirs is %s)', coalesce(p_grant.monthly_send_limit::text, 'none'), v_held.monthly_send_limit);
    end if;
    if v_held.expires_at is not null and coalesce(p_grant.expires_at > v_held.expires_at, true) then
        v_excess := v_excess || format('access until %s (theirs ends %s)', coalesce(p_grant.expires_at::text, 'forever'), v_held.expires_at);
    end if;
    if cardinality(v_excess) > 0 then
        raise exception 'a member cannot grant an agent more than they hold: %', array_to_string(v_excess, '; ')
            using errcode = '42501';
    end if;
end
$$;

/**
 * Grants an agent scopes on a connection of its workspace with limits (or replaces the
 * grant for the same pair, reactivating it). The caller is the agent's principal or an
 * admin; either way the grant must fit within what the principal holds.
 */
create function private.grant_agent_permission(
    p_agent_id uuid,
    p_connection_id uuid,
    p_scopes text[],
    p_daily_send_limit integer default 100,
    p_max_recipients_per_message integer default 10,
    p_allowed_recipients text[] default '{}',
    p_blocked_recipients text[] default '{}',
    p_expires_at timestamptz default null,
    p_monthly_send_limit integer default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_agent public.agents := private.managed_agent(p_agent_id);
    v_connection public.connections := private.accessible_connection(p_connection_id, 'view');
    v_grant public.agent_permissions;
begin
    if v_connection.workspace_id <> v_agent.workspace_id then
        raise exception 'connection not found' using errcode = 'PT404';
    end if;
    if p_scopes is null or cardinality(p_scopes) = 0 then
        raise exception 'at least one scope is required' using errcode = '22023';
    end if;
    perform private.validate_limits(p_daily_send_limit, p_monthly_send_limit, p_max_recipients_per_message);
    v_grant := row(null, v_agent.workspace_id, v_agent.id, v_connection.id, p_scopes, p_daily_send_limit, p_monthly_send_limit,
                   p_max_recipients_per_message, coalesce(p_allowed_recipients, '{}'), coalesce(p_blocked_recipients, '{}'),
                   p_expires_at, true, auth.uid(), now(), null, now(), now())::public.agent_permissions;
    perform private.assert_grant_within_principal(v_agent, v_grant);

    insert into public.agent_permissions as p (
        workspace_id, agent_id, connection_id, allowed_scopes, daily_send_limit, monthly_send_limit,
        max_recipients_per_message, allowed_recipients, blocked_recipients, expires_at, granted_by
    ) values (
        v_grant.workspace_id, v_grant.agent_id, v_grant.connection_id, v_grant.allowed_scopes, v_grant.daily_send_limit,
        v_grant.monthly_send_limit, v_grant.max_recipients_per_message, v_grant.allowed_recipients,
        v_grant.blocked_recipients, v_grant.expires_at, v_grant.granted_by
    )
    on conflict (agent_id, connection_id) do update set
        allowed_scopes = excluded.allowed_scopes,
        daily_send_limit = excluded.daily_send_limit,
        monthly_send_limit = excluded.monthly_send_limit,
        max_recipients_per_message = excluded.max_recipients_per_message,
        allowed_recipients = excluded.allowed_recipients,
        blocked_recipients = excluded.blocked_recipients,
        expires_at = excluded.expires_at,
        granted_by = excluded.granted_by,
        granted_at = now(),
        is_active = true,
        revoked_at = null
    returning * into v_grant;
    perform private.audit(v_agent.workspace_id, 'grant.set', 'agent_grant', v_grant.id::text,
                          jsonb_build_object('agent_id', v_agent.id, 'connection_id', v_connection.id,
                                             'scopes', v_grant.allowed_scopes, 'daily_send_limit', v_grant.daily_send_limit,
                                             'monthly_send_limit', v_grant.monthly_send_limit, 'expires_at', v_grant.expires_at));
    return to_jsonb(v_grant);
exception
    when check_violation then
        raise exception 'invalid recipient pattern: use E.164 prefixes (+61) or e-mail patterns (a@x.com, x.com, *.x.com)'
            using errcode = '22023';
end
$$;

/**
 * Changes a grant: keys present in p_changes are applied (scopes, daily_send_limit,
 * monthly_send_limit, max_recipients_per_message, allowed_recipients,
 * blocked_recipients, expires_at, is_active). A JSON null clears a limit or the expiry.
 * The result must still fit within what the principal holds.
 */
create function private.update_agent_permission(p_permission_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_grant public.agent_permissions := private.managed_grant(p_permission_id);
    v_agent public.agents;
begin
    select * into v_agent from public.agents where id = v_grant.agent_id;
    perform private.assert_change_keys(p_changes, array['scopes', 'daily_send_limit', 'monthly_send_limit',
        'max_recipients_per_message', 'allowed_recipients', 'blocked_recipients', 'expires_at', 'is_active']);

    update public.agent_permissions p set
        allowed_scopes = case when p_changes ? 'scopes'
            then array(select jsonb_array_elements_text(p_changes -> 'scopes')) else p.allowed_scopes end,
        daily_send_limit = case when p_changes ? 'daily_send_limit'
            then (p_changes ->> 'daily_send_limit')::integer else p.daily_send_limit end,
        monthly_send_limit = case when p_changes ? 'monthly_send_limit'
            then (p_changes ->> 'monthly_send_limit')::integer else p.monthly_send_limit end,
        max_recipients_per_message = coalesce((p_changes ->> 'max_recipients_per_message')::integer, p.max_recipients_per_message),
        allowed_recipients = case when p_changes ? 'allowed_recipients'
            then array(select jsonb_array_elements_text(p_changes -> 'allowed_recipients')) else p.allowed_recipients end,
        blocked_recipients = case when p_changes ? 'blocked_recipients'
            then array(select jsonb_array_elements_text(p_changes -> 'blocked_recipients')) else p.blocked_recipients end,
        expires_at = case when p_changes ? 'expires_at'
            then (p_changes ->> 'expires_at')::timestamptz else p.expires_at end,
        is_active = coalesce((p_changes ->> 'is_active')::boolean, p.is_active),
        revoked_at = case when (p_changes ->> 'is_active')::boolean is true then null
                          when (p_changes ->> 'is_active')::boolean is false then coalesce(p.revoked_at, now())
                          else p.revoked_at end
    where p.id = v_grant.id
    returning * into v_grant;
    perform private.validate_limits(v_grant.daily_send_limit, v_grant.monthly_send_limit, v_grant.max_recipients_per_message);
    if v_grant.is_active then
        perform private.assert_grant_within_principal(v_agent, v_grant);
    end if;
    perform private.audit(v_grant.workspace_id, 'grant.updated', 'agent_grant', v_grant.id::text,
                          jsonb_build_object('changes', p_changes));
    return to_jsonb(v_grant);
exception
    when check_violation then
        raise exception 'invalid limits or recipient patterns' using errcode = '22023';
    when invalid_text_representation or datetime_field_overflow or invalid_datetime_format or numeric_value_out_of_range then
        raise exception 'invalid value in changes: %', sqlerrm using errcode = '22023';
end
$$;

/** Revokes a grant at once; the agent loses its tools and calls are refused. */
create function private.revoke_agent_permission(p_permission_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_grant public.agent_permissions := private.managed_grant(p_permission_id);
begin
    update public.agent_permissions
    set is_active = false, revoked_at = coalesce(revoked_at, now())
    where id = p_permission_id
    returning * into v_grant;
    perform private.audit(v_grant.workspace_id, 'grant.revoked', 'agent_grant', v_grant.id::text,
                          jsonb_build_object('agent_id', v_grant.agent_id, 'connection_id', v_grant.connection_id));
    return to_jsonb(v_grant);
end
$$;

/**
 * Issues an agent key. The key is returned once; only its SHA-256 is stored.
 * Format: swb_agent_<43 url-safe chars> (256 bits of randomness): outside Supabase's
 * `sb_` namespace, which its API gateway takes for its own keys. key_prefix keeps the
 * first 16 characters so the user can recognise it in a list.
 */
create function private.issue_agent_key(p_agent_id uuid, p_name text default null, p_expires_at timestamptz default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_agent public.agents := private.managed_agent(p_agent_id);
    v_key text := private.random_token('swb_agent_');
    v_row public.agent_keys;
begin
    if p_expires_at is not null and p_expires_at <= now() then
        raise exception 'expires_at must be in the future' using errcode = '22023';
    end if;
    insert into public.agent_keys (workspace_id, agent_id, name, key_prefix, key_hash, expires_at, created_by)
    values (v_agent.workspace_id, v_agent.id, p_name, left(v_key, 16), private.sha256_hex(v_key), p_expires_at, auth.uid())
    returning * into v_row;
    perform private.audit(v_agent.workspace_id, 'key.issued', 'agent_key', v_row.id::text,
                          jsonb_build_object('agent_id', v_agent.id, 'key_prefix', v_row.key_prefix, 'expires_at', p_expires_at));
    return jsonb_build_object('id', v_row.id, 'agent_id', v_row.agent_id, 'name', v_row.name, 'key', v_key,
                              'key_prefix', v_row.key_prefix, 'expires_at', v_row.expires_at, 'created_at', v_row.created_at);
end
$$;

/** Revokes an agent key; it is refused everywhere from the next request on. */
create function private.revoke_agent_key(p_key_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.agent_keys;
begin
    select * into v_row from public.agent_keys where id = p_key_id;
    if not found then
        raise exception 'agent key not found' using errcode = 'PT404';
    end if;
    begin
        perform private.managed_agent(v_row.agent_id);
    exception when sqlstate 'PT404' then
        raise exception 'agent key not found' using errcode = 'PT404';
    end;
    update public.agent_keys set revoked_at = coalesce(revoked_at, now()) where id = p_key_id
    returning * into v_row;
    perform private.audit(v_row.workspace_id, 'key.revoked', 'agent_key', v_row.id::text,
                          jsonb_build_object('agent_id', v_row.agent_id, 'key_prefix', v_row.key_prefix));
    return jsonb_build_object('id', v_row.id, 'agent_id', v_row.agent_id, 'revoked_at', v_row.revoked_at);
end
$$;

/**
 * Creates an agent acting for the signed-in user, in p_workspace_id or their personal
 * workspace (the same as inserting into agents under RLS).
 */
create function public.create_agent(p_name text, p_description text default null, p_workspace_id uuid default null)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
    insert into public.agents (workspace_id, name, description)
    values (private.workspace_or_personal(p_workspace_id), p_name, p_description)
    returning to_jsonb(agents.*)
$$;

-- ---- Public wrappers (SECURITY INVOKER; the private function checks the caller) ----

/** Grant an agent scopes on a connection, with limits, within what its principal holds. */
create function public.grant_agent_permission(
    p_agent_id uuid, p_connection_id uuid, p_scopes text[],
    p_daily_send_limit integer default 100, p_max_recipients_per_message integer default 10,
    p_allowed_recipients text[] default '{}', p_blocked_recipients text[] default '{}',
    p_expires_at timestamptz default null, p_monthly_send_limit integer default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.grant_agent_permission(p_agent_id, p_connection_id, p_scopes, p_daily_send_limit,
    p_max_recipients_per_message, p_allowed_recipients, p_blocked_recipients, p_expires_at, p_monthly_send_limit) $$;

/** Change a grant's scopes or limits. */
create function public.update_agent_permission(p_permission_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_agent_permission(p_permission_id, p_changes) $$;

/** Revoke a grant. */
create function public.revoke_agent_permission(p_permission_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.revoke_agent_permission(p_permission_id) $$;

/** Issue an agent key (returned once). */
create function public.issue_agent_key(p_agent_id uuid, p_name text default null, p_expires_at timestamptz default null)
returns jsonb
language sql security invoker set search_path = ''
as $$ select private.issue_agent_key(p_agent_id, p_name, p_expires_at) $$;

/** Revoke an agent key. */
create function public.revoke_agent_key(p_key_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.revoke_agent_key(p_key_id) $$;

grant execute on function
    private.grant_agent_permission(uuid, uuid, text[], integer, integer, text[], text[], timestamptz, integer),
    private.update_agent_permission(uuid, jsonb),
    private.revoke_agent_permission(uuid),
    private.issue_agent_key(uuid, text, timestamptz),
    private.revoke_agent_key(uuid),
    public.create_agent(text, text, uuid),
    public.grant_agent_permission(uuid, uuid, text[], integer, integer, text[], text[], timestamptz, integer),
    public.update_agent_permission(uuid, jsonb),
    public.revoke_agent_permission(uuid),
    public.issue_agent_key(uuid, text, timestamptz),
    public.revoke_agent_key(uuid)
to authenticated;
