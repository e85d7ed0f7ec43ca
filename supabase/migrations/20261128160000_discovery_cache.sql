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
 * A cached listing is only ever served when a fresh one would be identical to it, or, for
 * a caller that needs only which tools are listed (MCP authenticating a key and checking a
 * tools/call's scope: p_current_counts false), when it would list the same tools: the
 * tools never depend on the counters (a right used up is still listed, saying 0 left), so
 * counters that moved since do not matter there. Calls are never decided by the cache:
 * begin_tool_call reads the rights itself.
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
 * The subjects (agent grants, member permissions) of the live rights that have a daily or
 * monthly limit, in one fixed order: the counters a tool listing's texts show.
 */
create function private.limited_subjects(p_rights private.effective_right[]) returns uuid[]
language plpgsql immutable
set search_path = ''
as $$
begin
    -- PL/pgSQL, not SQL: a SQL function with its own search_path is planned on every call.
    return array(
        select distinct s.id
        from unnest(p_rights) r
        cross join lateral unnest(array[r.grant_id, r.member_permission_id]) s (id)
        where r.dead_reason is null and s.id is not null
          and coalesce(r.grant_daily_limit, r.grant_monthly_limit, r.member_daily_limit, r.member_monthly_limit) is not null
        order by s.id);
end
$$;

revoke execute on function private.limited_subjects(private.effective_right[]) from public, anon, authenticated, service_role;

/**
 * The tools an agent with these rights may call now, as entries without their schemas:
 * what private.agent_tool_entries answers (see there), built from the live rights given
 * (private.agent_rights) and from what their limited subjects have used today and this
 * month (p_subject_ids with p_counters_used, as private.limited_subjects and
 * private.counters_used give them), so a caller that keeps the listing knows exactly
 * which counter values it shows.
 */
create function private.tool_entries_of(
    p_agent_id uuid, p_rights private.effective_right[], p_subject_ids uuid[], p_counters_used integer[], p_limits boolean
) returns table (
    name text, capability text, title text, description text, provider text, connection_id uuid, connection_name text,
    read_only boolean, destructive boolean, limits json
)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return query
    with live as (
        select r.*
        from unnest(p_rights) r
        join public.service_providers sp on sp.id = r.provider_id and sp.is_enabled
        where r.dead_reason is null
    ),
    -- Today's and this month's use of the limited rights' counters, as given (a counter
    -- not given counts as unused; an unlimited right shows no use).
    used as (
        select s.id as subject_id, p_counters_used[2 * s.n - 1] as day, p_counters_used[2 * s.n] as month
        from unnest(p_subject_ids) with ordinality s (id, n)
    ),
    rights as (
        select l.*,
               -- least() skips nulls: the tighter of the limits that exist
               least(l.grant_daily_limit, l.member_daily_limit) as daily_limit,
               least(l.grant_monthly_limit, l.member_monthly_limit) as monthly_limit,
               case when coalesce(l.grant_daily_limit, l.member_daily_limit) is not null then
                   greatest(least(l.grant_daily_limit - coalesce(g.day, 0), l.member_daily_limit - coalesce(m.day, 0)), 0)
               end as remaining_today,
               case when coalesce(l.grant_monthly_limit, l.member_monthly_limit) is not null then
                   greatest(least(l.grant_monthly_limit - coalesce(g.month, 0), l.member_monthly_limit - coalesce(m.month, 0)), 0)
               end as remaining_month
        from live l
        left join used g on g.subject_id = l.grant_id
        left join used m on m.subject_id = l.member_permission_id
    ),
    described as materialized (
        -- Once per right, not per tool: the limits sentence and the limits object, for
        -- sending tools and (expiry only) for the others.
        select r.*,
               nullif(concat_ws(' ',
                   format('Max %s recipients per message.', r.max_recipients_per_message),
                   case when r.daily_limit is not null
                        then format('%s of %s messages left today (UTC).', r.remaining_today, r.daily_limit) end,
                   case when r.monthly_limit is not null
                        then format('%s of %s messages left this month (UTC).', r.remaining_month, r.monthly_limit) end,
                   case when cardinality(r.allowed_recipients || r.member_allowed_recipients) > 0
                        then format('Only to: %s.', array_to_string(r.allowed_recipients || r.member_allowed_recipients, ', ')) end,
                   case when cardinality(r.blocked_recipients || r.member_blocked_recipients) > 0
                        then format('Never to: %s.', array_to_string(r.blocked_recipients || r.member_blocked_recipients, ', ')) end,
                   x.expiry), '') as send_limits,
               x.expiry as read_limits,
               case when p_limits then json_build_object(
                   'max_recipients_per_message', r.max_recipients_per_message, 'daily_send_limit', r.daily_limit,
                   'remaining_today', r.remaining_today, 'monthly_send_limit', r.monthly_limit,
                   'remaining_this_month', r.remaining_month, 'allowed_recipients', r.allowed_recipients,
                   'blocked_recipients', r.blocked_recipients, 'member_allowed_recipients', r.member_allowed_recipients,
                   'member_blocked_recipients', r.member_blocked_recipients, 'expires_at', r.expires_at) end as send_limits_json,
               case when p_limits then json_build_object(
                   'max_recipients_per_message', null, 'daily_send_limit', null, 'remaining_today', null,
                   'monthly_send_limit', null, 'remaining_this_month', null, 'allowed_recipients', r.allowed_recipients,
                   'blocked_recipients', r.blocked_recipients, 'member_allowed_recipients', r.member_allowed_recipients,
                   'member_blocked_recipients', r.member_blocked_recipients, 'expires_at', r.expires_at) end as read_limits_json
        from rights r
        cross join lateral (select case when r.expires_at is not null
            then format('Access expires %s.', to_char(r.expires_at at time zone 'utc', 'YYYY-MM-DD HH24:MI "UTC"')) end
            as expiry) x
    ),
    -- The caller's route per channel: their member's own, else the workspace's.
    route_order as (
        select distinct on (r.channel) r.channel, r.id as route_id
        from public.routes r
        join public.agents a on a.id = p_agent_id and r.workspace_id = a.workspace_id
                             and (r.user_id = a.user_id or r.user_id is null)
        order by r.channel, r.user_id is null
    ),
    usable as (
        select cap.capability_key, cap.display_label, cap.description as cap_description, cap.is_read_only,
               cap.is_destructive, cap.display_order, cap.channel, sp.name as provider, g.connection_id,
               g.connection_name, g.connection_created_at, rc.position as route_position,
               case when cap.sends_messages then g.send_limits else g.read_limits end as limits_text,
               case when cap.sends_messages then g.send_limits_json else g.read_limits_json end as limits_json
        from described g
        join public.service_providers sp on sp.id = g.provider_id
        join public.integration_capabilities cap
          on case when cap.channel is not null then cap.channel = any (sp.channels)
                  -- a provider's own send tools are its REST routes; agents send by channel
                  else cap.provider_id = g.provider_id
                       and not (cap.sends_messages and cap.required_scope in ('sms', 'mms', 'whatsapp', 'email')) end
        left join route_order ro on ro.channel = cap.channel
        left join public.route_connections rc on rc.route_id = ro.route_id and rc.connection_id = g.connection_id
        where cap.required_scope = any (g.scopes) and (g.can_send or not cap.sends_messages)
    ),
    tools as (
        select u.capability_key,
               concat_ws(' ', min(u.cap_description),
                   case when count(*) = 1 then min(u.limits_text)
                        else format('Accounts (pass account to choose one): %s.%s',
                                    string_agg(concat(u.connection_name, ' = ', u.connection_id, ' (' || u.limits_text || ')'), '; '
                                               order by u.route_position nulls last, u.connection_created_at, u.connection_id),
                                    case when bool_or(u.route_position is not null)
                                         then format(' Without account, your route tries %s, in this order, while a provider refuses.',
                                                     string_agg(u.connection_name, ', ' order by u.route_position)
                                                         filter (where u.route_position is not null)) end)
                   end) as description,
               min(u.display_label) as display_label, bool_and(u.is_read_only) as is_read_only,
               bool_or(u.is_destructive) as is_destructive, min(u.display_order) as display_order,
               min(u.channel) as channel,
               case when count(distinct u.provider) = 1 then min(u.provider) end as provider,
               case when count(*) = 1 then (array_agg(u.connection_id))[1] end as connection_id,
               case when count(*) = 1 then min(u.connection_name) end as connection_name,
               -- Aggregates run whatever the CASE picks: the filters skip building the
               -- limits objects for the formats that leave them out.
               case when not p_limits then null
                    when count(*) = 1 then (array_agg(u.limits_json) filter (where p_limits))[1]
                    else json_build_object('accounts', json_agg(json_build_object(
                             'connection_id', u.connection_id, 'connection_name', u.connection_name, 'limits', u.limits_json)
                             order by u.route_position nulls last, u.connection_created_at, u.connection_id)
                             filter (where p_limits)) end as limits
        from usable u
        group by u.capability_key
        union all
        -- Every agent with a live right may read what became of its own sends.
        select cap.capability_key, cap.description, cap.display_label, cap.is_read_only, cap.is_destructive,
               cap.display_order, null, null, null, null, null
        from public.integration_capabilities cap
        where cap.capability_key = 'message_status' and exists (select 1 from live)
    )
    select t.capability_key, t.capability_key, t.display_label, t.description, t.provider, t.connection_id, t.connection_name,
           t.is_read_only, t.is_destructive, t.limits
    from tools t
    order by t.channel is null, t.provider nulls last, t.display_order, t.capability_key;
end
$$;

revoke execute on function private.tool_entries_of(uuid, private.effective_right[], uuid[], integer[], boolean)
    from public, anon, authenticated, service_role;

/**
 * The tools an agent may call now, as entries without their input schemas (the rest is
 * per capability): one per capability, whatever the number of accounts. Sends are the
 * channel tools (sms_send, mms_send, whatsapp_send, email_send) on every account whose
 * provider carries the channel; a provider's own tools are listed only where they add
 * something (balance, history, click-to-call), and message_status (what became of the
 * agent's own sends) for every agent with a live right. With one account the entry names it
 * (connection_id, provider) and its description tells the limits and what is left of
 * them; with several the description lists each account (name, id, limits), in the
 * order of the caller's route for a channel tool, and the tool's `account` argument picks
 * one. limits: the account's limits object, or {"accounts": [{connection_id,
 * connection_name, limits}]} (only the raw format shows them; p_limits false leaves them
 * out). private.agent_tools renders the entries in a runtime format; the functions
 * render them with the schemas they cache (the same ones, from integration_capabilities).
 */
create or replace function private.agent_tool_entries(p_agent_id uuid, p_limits boolean default true) returns table (
    name text, capability text, title text, description text, provider text, connection_id uuid, connection_name text,
    read_only boolean, destructive boolean, limits json
)
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_rights private.effective_right[] := array(select r from private.agent_rights(p_agent_id) r where r.dead_reason is null);
    v_subjects uuid[] := private.limited_subjects(v_rights);
begin
    return query
    select * from private.tool_entries_of(p_agent_id, v_rights, v_subjects, private.counters_used(v_subjects), p_limits);
end
$$;

/**
 * The agent's tool entries (private.agent_tool_entries), from its cached listing when
 * nothing that listing was built from has changed, else built afresh and kept. With
 * p_current_counts false, a cached listing whose counters moved since it was built is
 * served too (the same tools; its texts may show an older count of what is left).
 */
create function private.cached_agent_tool_entries(p_agent_id uuid, p_limits boolean, p_current_counts boolean default true)
returns json
language plpgsql
set search_path = ''
as $$
declare
    v_entries json;
    v_rights private.effective_right[];
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
    -- The counters only for a listing that is current otherwise, and only when asked.
    if found and (not p_current_counts or v_used = private.counters_used(v_subjects)) then
        return v_entries;
    end if;

    -- The version first: a change committed after this read makes the listing kept below
    -- out of date at once (its version is older), never one that looks current.
    select v.workspace_id, v.version into v_workspace_id, v_version
    from public.agents a
    join private.tool_listing_versions v on v.workspace_id = a.workspace_id
    where a.id = p_agent_id;

    -- The rights, the counters their texts show, and the entries built from exactly those
    -- counter values: what the listing is kept with is what it shows.
    v_rights := array(select r from private.agent_rights(p_agent_id) r where r.dead_reason is null);
    v_subjects := private.limited_subjects(v_rights);
    v_used := private.counters_used(v_subjects);
    v_entries := coalesce((select json_agg(e) from private.tool_entries_of(p_agent_id, v_rights, v_subjects, v_used, p_limits) e),
                          '[]'::json);
    v_valid_until := (select min(r.expires_at) from unnest(v_rights) r);

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

revoke execute on function private.cached_agent_tool_entries(uuid, boolean, boolean) from public, anon, authenticated, service_role;

-- ---- Section - Listing for the service path ----

-- The signature grows (p_current_counts), so the function of migration discovery is replaced.
drop function private.list_tools_for_caller(uuid, uuid, text, text, boolean);

/**
 * Tool listing for the service path (agent key, or service key naming a member and their
 * agent): authenticates the key and lists in one round trip, in a runtime format or, with
 * p_entries, as the entries for it (private.cached_agent_tool_entries, which the functions
 * render with cached schemas; p_current_counts false for a caller that needs which tools
 * are listed, not their texts). Refusals are raised: PT401 for an unknown, revoked or
 * expired key, PT404 for an agent that does not act for the named user.
 */
create function private.list_tools_for_caller(
    p_user_id uuid default null, p_agent_id uuid default null, p_agent_key_hash text default null, p_format text default 'raw',
    p_entries boolean default false, p_current_counts boolean default true
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
        return private.cached_agent_tool_entries(v_agent_id, p_format = 'raw', p_current_counts);
    end if;
    return private.agent_tools(v_agent_id, p_format);
end
$$;

revoke execute on function private.list_tools_for_caller(uuid, uuid, text, text, boolean, boolean) from public, anon, authenticated;
grant execute on function private.list_tools_for_caller(uuid, uuid, text, text, boolean, boolean) to service_role;
