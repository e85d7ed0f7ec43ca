/**
 * ==== Discovery cache ====
 * An agent lists its tools far more often than anything in the list changes: every turn
 * of a conversation may ask again, while grants, permissions and connections change when
 * a person changes them. The service path (agent key; service key naming user and agent)
 * therefore keeps each agent's last listing and serves it again while nothing it was built
 * from has changed:
 *   - a per-workspace version, bumped at the commit of any change to the rows a listing
 *     reads (agents, grants, connections, members, member permissions, routes), and in
 *     every workspace at once when providers or capabilities change;
 *   - the usage counters the listing's texts show (today's and this month's use of every
 *     limited right), compared with the counters as they are now: a send that moved one
 *     makes the next listing a fresh one;
 *   - the earliest expiry among the rights listed: from then on, a fresh one.
 * A cached listing is only ever served when a fresh one would be identical to it. Calls
 * are never decided by the cache: begin_tool_call reads the rights itself.
 * The cache is an unlogged table (a cache needs no WAL; a crash empties it).
 */

-- ---- Section - Versions ----

/** One row per workspace: bumped by every change to what its agents' tool lists are built from. */
create table private.tool_listing_versions (
    workspace_id uuid primary key references public.workspaces (id) on delete cascade,
    version bigint not null default 1
);
comment on table private.tool_listing_versions is
    'Per workspace, the version of everything its agents'' tool listings are built from.';
alter table private.tool_listing_versions enable row level security;
revoke all on private.tool_listing_versions from public, anon, authenticated, service_role;

insert into private.tool_listing_versions (workspace_id) select id from public.workspaces;

/** Gives a new workspace its listing version. */
create function private.add_tool_listing_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into private.tool_listing_versions (workspace_id) values (new.id);
    return null;
end
$$;

create trigger workspaces_add_tool_listing_version
    after insert on public.workspaces
    for each row execute function private.add_tool_listing_version();

/**
 * Bumps the listing version of the workspace(s) a changed row belongs to (old and new, so
 * a row moved between workspaces invalidates both). A workspace being deleted has no
 * version row any more, and nothing to bump.
 */
create function private.bump_tool_listing_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update private.tool_listing_versions v set version = v.version + 1
    where v.workspace_id in (
        case when tg_op <> 'INSERT' then old.workspace_id end,
        case when tg_op <> 'DELETE' then new.workspace_id end);
    return null;
end
$$;

/** Bumps every workspace's listing version: providers and capabilities are everyone's. */
create function private.bump_all_tool_listing_versions() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update private.tool_listing_versions v set version = v.version + 1;
    return null;
end
$$;

revoke execute on function private.add_tool_listing_version(), private.bump_tool_listing_version(),
    private.bump_all_tool_listing_versions() from public, anon, authenticated, service_role;

-- Every table a listing reads, by the workspace its rows belong to. Deferred to commit: the
-- version row is then the last lock a change takes, so two changes of one workspace that
-- lock each other's rows in opposite orders never deadlock over it as well.
do $$
declare
    v_table text;
begin
    foreach v_table in array array['agents', 'agent_permissions', 'connections', 'workspace_members',
                                   'member_permissions', 'routes', 'route_connections'] loop
        execute format('create constraint trigger %I after insert or update or delete on public.%I '
                       'deferrable initially deferred '
                       'for each row execute function private.bump_tool_listing_version()',
                       v_table || '_bump_tool_listing_version', v_table);
    end loop;
end
$$;

-- Providers and capabilities (changed by migrations) are in every workspace's listings.
create trigger service_providers_bump_tool_listing_versions
    after insert or update or delete or truncate on public.service_providers
    for each statement execute function private.bump_all_tool_listing_versions();
create trigger integration_capabilities_bump_tool_listing_versions
    after insert or update or delete or truncate on public.integration_capabilities
    for each statement execute function private.bump_all_tool_listing_versions();

-- ---- Section - Cached listings ----

/**
 * An agent's last tool listing (as entries, with or without limits objects), with what
 * it was built from: its workspace's listing version, the counters its texts show and
 * their values then, and the earliest expiry among its rights.
 */
create unlogged table private.tool_listings (
    -- No foreign key: its check would lock the agent's row, a WAL record that every
    -- listing built afresh would then wait to flush at commit. A trigger below forgets
    -- the listings of a deleted agent instead.
    agent_id uuid not null,
    with_limits boolean not null,
    workspace_id uuid not null,
    version bigint not null,
    counter_subjects uuid[] not null,
    counters_used integer[] not null,
    valid_until timestamptz,
    entries json not null,
    built_at timestamptz not null default now(),
    primary key (agent_id, with_limits)
);
comment on table private.tool_listings is
    'Each agent''s last tool listing, served again while nothing it was built from has changed (a cache).';
alter table private.tool_listings enable row level security;
revoke all on private.tool_listings from public, anon, authenticated, service_role;

/** Forgets a deleted agent's cached listings. */
create function private.forget_tool_listings() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    delete from private.tool_listings where agent_id = old.id;
    return null;
end
$$;

revoke execute on function private.forget_tool_listings() from public, anon, authenticated, service_role;

create trigger agents_forget_tool_listings
    after delete on public.agents
    for each row execute function private.forget_tool_listings();

/**
 * Today's and this month's use of each subject's counters, in order (day, month, day,
 * month, …; 0 for a counter not yet used): what a tool listing's texts show of them.
 */
create function private.counters_used(p_subject_ids uuid[]) returns integer[]
language plpgsql stable
set search_path = ''
as $$
declare
    v_today date := private.utc_today();
    v_month date := date_trunc('month', private.utc_today())::date;
begin
    -- Scalar subqueries: each one lookup by the counter's whole key.
    return array(
        select coalesce((select u.used from public.usage_counters u
                         where u.subject_id = s.id and u.period = p.period
                           and u.period_start = case p.period when 'day' then v_today else v_month end), 0)
        from unnest(p_subject_ids) with ordinality s (id, n)
        cross join (values (1, 'day'), (2, 'month')) p (n, period)
        order by s.n, p.n);
end
$$;

revoke execute on function private.counters_used(uuid[]) from public, anon, authenticated, service_role;

/**
 * The agent's tool entries (private.agent_tool_entries), from its cached listing when
 * nothing that listing was built from has changed, else built afresh and kept.
 */
create function private.cached_agent_tool_entries(p_agent_id uuid, p_limits boolean) returns json
language plpgsql
set search_path = ''
as $$
declare
    v_entries json;
    v_workspace_id uuid;
    v_version bigint;
    v_subjects uuid[];
    v_used integer[];
    v_valid_until timestamptz;
begin
    select c.entries, c.counter_subjects, c.counters_used into v_entries, v_subjects, v_used
    from private.tool_listings c
    join private.tool_listing_versions v on v.workspace_id = c.workspace_id and v.version = c.version
    where c.agent_id = p_agent_id and c.with_limits = p_limits
      and (c.valid_until is null or c.valid_until > now());
    -- The counters only for a listing that is current otherwise.
    if found and v_used = private.counters_used(v_subjects) then
        return v_entries;
    end if;

    -- The version first: a change committed after this read makes the listing kept below
    -- out of date at once (its version is older), never one that looks current.
    select v.workspace_id, v.version into v_workspace_id, v_version
    from public.agents a
    join private.tool_listing_versions v on v.workspace_id = a.workspace_id
    where a.id = p_agent_id;

    -- The entries and what they show of the counters, in one statement (one snapshot).
    with live as (
        select r.grant_id, r.member_permission_id, r.expires_at,
               coalesce(r.grant_daily_limit, r.grant_monthly_limit, r.member_daily_limit, r.member_monthly_limit) is not null
                   as limited
        from private.agent_rights(p_agent_id) r
        where r.dead_reason is null
    ),
    subjects as (
        select coalesce(array_agg(distinct s.id order by s.id), '{}') as ids
        from live l
        cross join lateral unnest(array[l.grant_id, l.member_permission_id]) s (id)
        where l.limited and s.id is not null
    )
    select coalesce((select json_agg(e) from private.agent_tool_entries(p_agent_id, p_limits) e), '[]'::json),
           s.ids, private.counters_used(s.ids), (select min(l.expires_at) from live l)
    into v_entries, v_subjects, v_used, v_valid_until
    from subjects s;

    if v_version is not null then
        insert into private.tool_listings as c
            (agent_id, with_limits, workspace_id, version, counter_subjects, counters_used, valid_until, entries)
        values (p_agent_id, p_limits, v_workspace_id, v_version, v_subjects, v_used, v_valid_until, v_entries)
        on conflict (agent_id, with_limits) do update set
            workspace_id = excluded.workspace_id, version = excluded.version,
            counter_subjects = excluded.counter_subjects, counters_used = excluded.counters_used,
            valid_until = excluded.valid_until, entries = excluded.entries, built_at = now();
    end if;
    return v_entries;
end
$$;

revoke execute on function private.cached_agent_tool_entries(uuid, boolean) from public, anon, authenticated, service_role;

-- ---- Section - Listing for the service path ----

/**
 * Tool listing for the service path (agent key, or service key naming a member and their
 * agent): authenticates the key and lists in one round trip, in a runtime format or, with
 * p_entries, as the entries for it (private.cached_agent_tool_entries, which the functions
 * render with cached schemas). Refusals are raised: PT401 for an unknown, revoked or
 * expired key, PT404 for an agent that does not act for the named user.
 */
create or replace function private.list_tools_for_caller(
    p_user_id uuid default null, p_agent_id uuid default null, p_agent_key_hash text default null, p_format text default 'raw',
    p_entries boolean default false
) returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_key public.agent_keys;
    v_agent_id uuid := p_agent_id;
begin
    if p_agent_key_hash is not null then
        select * into v_key from public.agent_keys where key_hash = p_agent_key_hash;
        if not found then
            raise exception 'invalid agent key' using errcode = 'PT401';
        elsif v_key.revoked_at is not null then
            raise exception 'agent key revoked' using errcode = 'PT401';
        elsif v_key.expires_at is not null and v_key.expires_at <= now() then
            raise exception 'agent key expired' using errcode = 'PT401';
        end if;
        v_agent_id := v_key.agent_id;
        update public.agent_keys set last_used_at = now()
        where id = v_key.id and (last_used_at is null or last_used_at < now() - interval '1 minute');
    elsif not exists (select 1 from public.agents where id = v_agent_id and user_id = p_user_id) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    if p_entries then
        return private.cached_agent_tool_entries(v_agent_id, p_format = 'raw');
    end if;
    return private.agent_tools(v_agent_id, p_format);
end
$$;
