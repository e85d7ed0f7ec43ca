/**
 * ==== Discovery ====
 * The tools an agent may call right now, derived from its live effective rights only
 * (private.agent_rights: grant ∩ principal's permission, agent active, connection
 * active, not expired), one tool per capability whose scope the right holds; sending
 * tools only where the member may send. Formats: raw, openai (Chat Completions
 * function tools, strict mode), anthropic, mcp. Each description tells the model its
 * limits and what is left of them.
 */

-- ---- Section - Tool lists ----

/**
 * The tools an agent may call now, as entries without their input schemas (the rest is
 * per capability): name, capability, title, description (with the limits and what is
 * left of them), provider, connection, annotations and limits, in display order. Two
 * connections of one provider get `__<first 8 characters of the connection id>` name
 * suffixes. private.agent_tools renders them in a runtime format; the functions render
 * them with the schemas they cache (the same ones, from integration_capabilities).
 * p_limits false leaves the limits objects out (only the raw format shows them).
 */
create function private.agent_tool_entries(p_agent_id uuid, p_limits boolean default true) returns table (
    name text, capability text, title text, description text, provider text, connection_id uuid, connection_name text,
    read_only boolean, destructive boolean, limits json
)
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_today date := private.utc_today();
    v_month date := date_trunc('month', private.utc_today())::date;
begin
    return query
    with live as (
        select r.*, count(*) over (partition by r.provider_id) as same_provider
        from private.agent_rights(p_agent_id) r
        join public.service_providers sp on sp.id = r.provider_id and sp.is_enabled
        where r.dead_reason is null
    ),
    -- Today's and this month's use of every counter of these rights, in one index scan each.
    used as (
        select u.subject_id,
               coalesce(sum(u.used) filter (where u.period = 'day'), 0)::integer as day,
               coalesce(sum(u.used) filter (where u.period = 'month'), 0)::integer as month
        from public.usage_counters u
        where u.subject_id in (select l.grant_id from live l union select l.member_permission_id from live l)
          and ((u.period = 'day' and u.period_start = v_today) or (u.period = 'month' and u.period_start = v_month))
        group by u.subject_id
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
    tools as (
        select case when g.same_provider > 1 then cap.capability_key || '__' || left(g.connection_id::text, 8)
                    else cap.capability_key end as name,
               concat_ws(' ', cap.description,
                         case when g.same_provider > 1 then format('Account: %s.', g.connection_name) end,
                         case when cap.sends_messages then g.send_limits else g.read_limits end) as description,
               cap.capability_key, cap.display_label, cap.is_read_only, cap.is_destructive, cap.display_order,
               sp.name as provider, g.connection_id, g.connection_name,
               case when cap.sends_messages then g.send_limits_json else g.read_limits_json end as limits
        from described g
        join public.service_providers sp on sp.id = g.provider_id
        join public.integration_capabilities cap on cap.provider_id = g.provider_id
        where cap.required_scope = any (g.scopes) and (g.can_send or not cap.sends_messages)
    )
    select t.name, t.capability_key, t.display_label, t.description, t.provider, t.connection_id, t.connection_name,
           t.is_read_only, t.is_destructive, t.limits
    from tools t
    order by t.provider, t.connection_name, t.display_order;
end
$$;

/**
 * The tools an agent may call now, in one of the runtime formats: raw, openai (Chat
 * Completions function tools, strict), anthropic, mcp (private.agent_tool_entries with
 * each capability's schemas).
 */
create function private.agent_tools(p_agent_id uuid, p_format text default 'raw') returns json
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    if coalesce(p_format, 'raw') not in ('raw', 'openai', 'anthropic', 'mcp') then
        raise exception 'unknown tool format "%" (raw, openai, anthropic, mcp)', p_format using errcode = '22023';
    end if;
    return (
        select coalesce(json_agg(case coalesce(p_format, 'raw')
            when 'openai' then json_build_object('type', 'function', 'function', json_build_object(
                'name', e.name, 'description', e.description, 'parameters', cap.strict_input_schema_json, 'strict', true))
            when 'anthropic' then json_build_object('name', e.name, 'description', e.description,
                'input_schema', cap.input_schema_json)
            when 'mcp' then json_build_object('name', e.name, 'title', e.title, 'description', e.description,
                'inputSchema', cap.input_schema_json,
                'annotations', json_build_object('title', e.title, 'readOnlyHint', e.read_only,
                    'destructiveHint', e.destructive, 'idempotentHint', e.read_only, 'openWorldHint', true))
            else json_build_object(
                'name', e.name, 'capability', e.capability, 'title', e.title, 'description', e.description,
                'provider', e.provider, 'connection_id', e.connection_id, 'connection_name', e.connection_name,
                'input_schema', cap.input_schema_json, 'strict_input_schema', cap.strict_input_schema_json,
                'read_only', e.read_only, 'destructive', e.destructive, 'limits', e.limits)
            end order by e.position), '[]'::json)
        from private.agent_tool_entries(p_agent_id, coalesce(p_format, 'raw') = 'raw') with ordinality as e (name, capability, title, description, provider,
             connection_id, connection_name, read_only, destructive, limits, position)
        join public.integration_capabilities cap on cap.capability_key = e.capability);
end
$$;

/** Tools of an agent the signed-in user may manage (its principal, or an admin of its workspace). */
create function private.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns json
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.managed_agent(p_agent_id);
    return private.agent_tools(p_agent_id, p_format);
end
$$;

/** supabase.rpc('get_agent_tools', {p_agent_id, p_format}): raw | openai | anthropic | mcp. */
create function public.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns jsonb
language sql stable security invoker set search_path = ''
as $$ select private.get_agent_tools(p_agent_id, p_format)::jsonb $$;

grant execute on function private.get_agent_tools(uuid, text), public.get_agent_tools(uuid, text) to authenticated;
grant execute on function private.agent_tools(uuid, text), private.agent_tool_entries(uuid, boolean) to service_role;

/**
 * Tool listing for the service path (agent key, or service key naming a member and their
 * agent): authenticates the key and lists in one round trip, in a runtime format or, with
 * p_entries, as the entries for it (private.agent_tool_entries, which the functions render
 * with cached schemas). Refusals are raised: PT401
 * for an unknown, revoked or expired key, PT404 for an agent that does not act for the
 * named user.
 */
create function private.list_tools_for_caller(
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
        return coalesce((select json_agg(e) from private.agent_tool_entries(v_agent_id, p_format = 'raw') e), '[]'::json);
    end if;
    return private.agent_tools(v_agent_id, p_format);
end
$$;

grant execute on function private.list_tools_for_caller(uuid, uuid, text, text, boolean) to service_role;
