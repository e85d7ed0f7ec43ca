/**
 * ==== Discovery ====
 * The tools an agent may call right now, derived from its live effective rights only
 * (private.agent_rights: grant ∩ principal's permission, agent active, connection
 * active, not expired), one tool per capability whose scope the right holds; sending
 * tools only where the member may send. Formats: raw, openai (Chat Completions
 * function tools, strict mode), anthropic, mcp. Each description tells the model its
 * limits and what is left of them.
 */

-- ---- Section - Descriptions ----

/** The sentence telling the model its limits on one connection. */
create function private.limits_text(
    p_max_recipients integer, p_daily_limit integer, p_remaining_today integer, p_monthly_limit integer,
    p_remaining_month integer, p_allowed text[], p_blocked text[], p_expires_at timestamptz, p_sends_messages boolean
) returns text
language plpgsql immutable
set search_path = ''
as $$
begin
    return (select concat_ws(' ',
            case when p_sends_messages then format('Max %s recipients per message.', p_max_recipients) end,
            case when p_sends_messages and p_daily_limit is not null
                 then format('%s of %s messages left today (UTC).', p_remaining_today, p_daily_limit) end,
            case when p_sends_messages and p_monthly_limit is not null
                 then format('%s of %s messages left this month (UTC).', p_remaining_month, p_monthly_limit) end,
            case when p_sends_messages and cardinality(p_allowed) > 0
                 then format('Only to: %s.', array_to_string(p_allowed, ', ')) end,
            case when p_sends_messages and cardinality(p_blocked) > 0
                 then format('Never to: %s.', array_to_string(p_blocked, ', ')) end,
            case when p_expires_at is not null
                 then format('Access expires %s.', to_char(p_expires_at at time zone 'utc', 'YYYY-MM-DD HH24:MI "UTC"')) end
        ));
end
$$;

/** Messages used on one counter (0 when it has none yet). */
create function private.counter_used(p_subject_id uuid, p_period text, p_period_start date) returns integer
language plpgsql stable
set search_path = ''
as $$
begin
    return (select coalesce((select u.used from public.usage_counters u
                         where u.subject_id = p_subject_id and u.period = p_period and u.period_start = p_period_start), 0));
end
$$;

-- ---- Section - Tool lists ----

/**
 * The tools an agent may call now, in one of the runtime formats: raw, openai (Chat
 * Completions function tools, strict), anthropic, mcp. Two connections of one provider
 * get `__<first 8 characters of the connection id>` name suffixes.
 */
create function private.agent_tools(p_agent_id uuid, p_format text default 'raw') returns json
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_tools json;
    v_today date := private.utc_today();
    v_month date := date_trunc('month', private.utc_today())::date;
begin
    if coalesce(p_format, 'raw') not in ('raw', 'openai', 'anthropic', 'mcp') then
        raise exception 'unknown tool format "%" (raw, openai, anthropic, mcp)', p_format using errcode = '22023';
    end if;
    with rights as (
        select r.*, count(*) over (partition by r.provider_id) as same_provider,
               least(r.grant_daily_limit, r.member_daily_limit) as daily_limit,
               least(r.grant_monthly_limit, r.member_monthly_limit) as monthly_limit,
               -- least() skips nulls: the tighter of the limits that exist
               case when coalesce(r.grant_daily_limit, r.member_daily_limit) is not null then
                   greatest(least(r.grant_daily_limit - private.counter_used(r.grant_id, 'day', v_today),
                                  r.member_daily_limit - private.counter_used(r.member_permission_id, 'day', v_today)), 0)
               end as remaining_today,
               case when coalesce(r.grant_monthly_limit, r.member_monthly_limit) is not null then
                   greatest(least(r.grant_monthly_limit - private.counter_used(r.grant_id, 'month', v_month),
                                  r.member_monthly_limit - private.counter_used(r.member_permission_id, 'month', v_month)), 0)
               end as remaining_month
        from private.agent_rights(p_agent_id) r
        join public.service_providers sp on sp.id = r.provider_id and sp.is_enabled
        where r.dead_reason is null
    ),
    tools as (
        select case when g.same_provider > 1 then cap.capability_key || '__' || left(g.connection_id::text, 8)
                    else cap.capability_key end as name,
               concat_ws(' ', cap.description,
                         case when g.same_provider > 1 then format('Account: %s.', g.connection_name) end,
                         nullif(private.limits_text(g.max_recipients_per_message, g.daily_limit, g.remaining_today,
                                                    g.monthly_limit, g.remaining_month,
                                                    g.allowed_recipients || g.member_allowed_recipients,
                                                    g.blocked_recipients || g.member_blocked_recipients,
                                                    g.expires_at, cap.sends_messages), '')) as description,
               cap.capability_key, cap.display_label, cap.input_schema_json, cap.strict_input_schema_json,
               cap.is_read_only, cap.is_destructive, cap.sends_messages, cap.display_order,
               sp.name as provider, g.connection_id, g.connection_name, g.max_recipients_per_message,
               g.daily_limit, g.remaining_today, g.monthly_limit, g.remaining_month,
               g.allowed_recipients, g.blocked_recipients, g.member_allowed_recipients, g.member_blocked_recipients,
               g.expires_at
        from rights g
        join public.service_providers sp on sp.id = g.provider_id
        join public.integration_capabilities cap on cap.provider_id = g.provider_id
        where cap.required_scope = any (g.scopes) and (g.can_send or not cap.sends_messages)
    )
    select coalesce(json_agg(case coalesce(p_format, 'raw')
        when 'openai' then json_build_object('type', 'function', 'function', json_build_object(
            'name', t.name, 'description', t.description, 'parameters', t.strict_input_schema_json, 'strict', true))
        when 'anthropic' then json_build_object('name', t.name, 'description', t.description, 'input_schema', t.input_schema_json)
        when 'mcp' then json_build_object('name', t.name, 'title', t.display_label, 'description', t.description,
            'inputSchema', t.input_schema_json,
            'annotations', json_build_object('title', t.display_label, 'readOnlyHint', t.is_read_only,
                'destructiveHint', t.is_destructive, 'idempotentHint', t.is_read_only, 'openWorldHint', true))
        else json_build_object(
            'name', t.name, 'capability', t.capability_key, 'title', t.display_label, 'description', t.description,
            'provider', t.provider, 'connection_id', t.connection_id, 'connection_name', t.connection_name,
            'input_schema', t.input_schema_json, 'strict_input_schema', t.strict_input_schema_json,
            'read_only', t.is_read_only, 'destructive', t.is_destructive,
            'limits', json_build_object(
                'max_recipients_per_message', case when t.sends_messages then t.max_recipients_per_message end,
                'daily_send_limit', case when t.sends_messages then t.daily_limit end,
                'remaining_today', case when t.sends_messages then t.remaining_today end,
                'monthly_send_limit', case when t.sends_messages then t.monthly_limit end,
                'remaining_this_month', case when t.sends_messages then t.remaining_month end,
                'allowed_recipients', t.allowed_recipients,
                'blocked_recipients', t.blocked_recipients,
                'member_allowed_recipients', t.member_allowed_recipients,
                'member_blocked_recipients', t.member_blocked_recipients,
                'expires_at', t.expires_at))
        end order by t.provider, t.connection_name, t.display_order), '[]'::json)
    into v_tools
    from tools t;
    return v_tools;
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
grant execute on function private.agent_tools(uuid, text) to service_role;

/**
 * Tool listing for the service path (agent key, or service key naming a member and their
 * agent): authenticates the key and lists in one round trip. Refusals are raised: PT401
 * for an unknown, revoked or expired key, PT404 for an agent that does not act for the
 * named user.
 */
create function private.list_tools_for_caller(
    p_user_id uuid default null, p_agent_id uuid default null, p_agent_key_hash text default null, p_format text default 'raw'
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
    return private.agent_tools(v_agent_id, p_format);
end
$$;

grant execute on function private.list_tools_for_caller(uuid, uuid, text, text) to service_role;
