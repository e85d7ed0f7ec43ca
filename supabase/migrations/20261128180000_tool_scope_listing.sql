/**
 * ==== Tool listing for a scope check ====
 * MCP reads the caller's tool list on every request: to authenticate the key in the same
 * round trip, and before a tools/call to answer a scope the caller does not hold with
 * 403 insufficient_scope. Those requests need which tools are listed, not what their
 * texts say is left of each limit, and the tools listed do not depend on the counters
 * (a right used up is still listed, saying 0 left). Yet a send moves the counters of a
 * limited right, so every tools/call after a send built the listing again.
 * p_current_counts => false now takes a kept listing whose counters have moved since: its
 * version and expiry are checked as always, so it lists exactly the tools a fresh one
 * would. tools/list and GET /agent-tools keep asking for current counts.
 */

-- ---- Section - Cached entries ----

drop function private.list_tools_for_caller(uuid, uuid, text, text, boolean);
drop function private.cached_agent_tool_entries(uuid, boolean);

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
