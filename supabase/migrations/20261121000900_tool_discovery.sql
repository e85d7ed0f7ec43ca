/**
 * ---- Section - Tool discovery ----
 * The tools an agent may call right now, derived from live grants only: agent active,
 * grant active and unexpired, connection active and not deleted, provider enabled,
 * scope held by both the grant and the connection. Formats: raw, openai (Chat
 * Completions function tools, strict mode), anthropic, mcp.
 */

/** One line telling the model its limits on a grant. */
create function private.limits_text(
    p_max_recipients integer, p_daily_send_limit integer, p_allowed text[], p_blocked text[],
    p_expires_at timestamptz, p_used_today integer, p_sends_messages boolean
) returns text
language sql stable
set search_path = ''
as $$
    select concat_ws(' ',
        case when p_sends_messages then format('Max %s recipients per message.', p_max_recipients) end,
        case when p_sends_messages and p_daily_send_limit is not null
             then format('%s of %s messages left today (UTC).', greatest(p_daily_send_limit - p_used_today, 0), p_daily_send_limit) end,
        case when p_sends_messages and cardinality(p_allowed) > 0
             then format('Only to: %s.', array_to_string(p_allowed, ', ')) end,
        case when p_sends_messages and cardinality(p_blocked) > 0
             then format('Never to: %s.', array_to_string(p_blocked, ', ')) end,
        case when p_expires_at is not null then format('Access expires %s.', to_char(p_expires_at at time zone 'utc', 'YYYY-MM-DD HH24:MI "UTC"')) end
    )
$$;

/*
 * The schemas also as `json` (kept in step by Postgres): tool lists are built as json,
 * which embeds them verbatim instead of re-encoding hundreds of kB of jsonb per call.
 */
alter table public.integration_capabilities
    add column input_schema_json json generated always as (input_schema::json) stored,
    add column strict_input_schema_json json generated always as (strict_input_schema::json) stored;

/**
 * The tools an agent of a user may call now, in one of the runtime formats: raw,
 * openai (Chat Completions function tools, strict), anthropic, mcp.
 */
create function private.agent_tools(p_user_id uuid, p_agent_id uuid, p_format text default 'raw') returns json
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_tools json;
begin
    if coalesce(p_format, 'raw') not in ('raw', 'openai', 'anthropic', 'mcp') then
        raise exception 'unknown tool format "%" (raw, openai, anthropic, mcp)', p_format using errcode = '22023';
    end if;
    with grants as (
        select p.*, c.name as connection_name, c.provider_id, c.granted_scopes,
               count(*) over (partition by c.provider_id) as same_provider,
               coalesce((select u.used from public.usage_counters u
                         where u.permission_id = p.id and u.usage_date = private.utc_today()), 0) as used_today
        from public.agent_permissions p
        join public.agents a on a.id = p.agent_id
        join public.connections c on c.id = p.connection_id
        join public.service_providers sp on sp.id = c.provider_id
        where p.agent_id = p_agent_id and a.user_id = p_user_id and a.is_active
          and p.is_active and p.revoked_at is null and (p.expires_at is null or p.expires_at > now())
          and c.deleted_at is null and c.status = 'active' and sp.is_enabled
    ),
    tools as (
        select case when g.same_provider > 1 then cap.capability_key || '__' || left(g.connection_id::text, 8)
                    else cap.capability_key end as name,
               concat_ws(' ', cap.description,
                         case when g.same_provider > 1 then format('Account: %s.', g.connection_name) end,
                         nullif(private.limits_text(g.max_recipients_per_message, g.daily_send_limit, g.allowed_recipients,
                                                    g.blocked_recipients, g.expires_at, g.used_today::integer,
                                                    cap.sends_messages), '')) as description,
               cap.capability_key, cap.display_label, cap.input_schema_json, cap.strict_input_schema_json,
               cap.is_read_only, cap.is_destructive, cap.sends_messages, cap.display_order,
               sp.name as provider, g.connection_id, g.connection_name, g.max_recipients_per_message,
               g.daily_send_limit, g.used_today, g.allowed_recipients, g.blocked_recipients, g.expires_at
        from grants g
        join public.service_providers sp on sp.id = g.provider_id
        join public.integration_capabilities cap on cap.provider_id = g.provider_id
        where cap.required_scope = any (g.allowed_scopes) and cap.required_scope = any (g.granted_scopes)
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
                'daily_send_limit', case when t.sends_messages then t.daily_send_limit end,
                'remaining_today', case when t.sends_messages and t.daily_send_limit is not null
                                        then greatest(t.daily_send_limit - t.used_today, 0) end,
                'allowed_recipients', t.allowed_recipients,
                'blocked_recipients', t.blocked_recipients,
                'expires_at', t.expires_at))
        end order by t.provider, t.connection_name, t.display_order), '[]'::json)
    into v_tools
    from tools t;
    return v_tools;
end
$$;

/** Tools of one of the signed-in user's agents. */
create function private.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns json
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
begin
    if not exists (select 1 from public.agents where id = p_agent_id and user_id = v_uid) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    return private.agent_tools(v_uid, p_agent_id, p_format);
end
$$;

/** supabase.rpc('get_agent_tools', {p_agent_id, p_format}): raw | openai | anthropic | mcp. */
create function public.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns jsonb
language sql stable security invoker set search_path = ''
as $$ select private.get_agent_tools(p_agent_id, p_format)::jsonb $$;

grant execute on function private.get_agent_tools(uuid, text) to authenticated;
grant execute on function public.get_agent_tools(uuid, text) to authenticated;
grant execute on function private.agent_tools(uuid, uuid, text) to service_role;

/**
 * Tool listing for the service path (agent key, or service key naming user and
 * agent): authenticates the key and lists in one round trip. Refusals are raised:
 * PT401 for an unknown, revoked or expired key, PT404 for an agent that is not the user's.
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
    v_user_id uuid := p_user_id;
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
        v_user_id := v_key.user_id;
        v_agent_id := v_key.agent_id;
        update public.agent_keys set last_used_at = now()
        where id = v_key.id and (last_used_at is null or last_used_at < now() - interval '1 minute');
    elsif not exists (select 1 from public.agents where id = v_agent_id and user_id = v_user_id) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    return private.agent_tools(v_user_id, v_agent_id, p_format);
end
$$;

grant execute on function private.list_tools_for_caller(uuid, uuid, text, text) to service_role;
