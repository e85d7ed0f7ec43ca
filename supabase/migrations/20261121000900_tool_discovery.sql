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

/** The raw tool list for an agent of a user (service path and wrappers). */
create function private.agent_tools(p_user_id uuid, p_agent_id uuid) returns jsonb
language sql stable
security definer
set search_path = ''
as $$
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
    )
    select coalesce(jsonb_agg(jsonb_build_object(
               'name', case when g.same_provider > 1 then cap.capability_key || '__' || left(g.connection_id::text, 8)
                            else cap.capability_key end,
               'capability', cap.capability_key,
               'title', cap.display_label,
               'description', concat_ws(' ', cap.description,
                                        case when g.same_provider > 1 then format('Account: %s.', g.connection_name) end,
                                        nullif(private.limits_text(g.max_recipients_per_message, g.daily_send_limit, g.allowed_recipients,
                                            g.blocked_recipients, g.expires_at, g.used_today::integer, cap.sends_messages), '')),
               'provider', sp.name,
               'connection_id', g.connection_id,
               'connection_name', g.connection_name,
               'input_schema', cap.input_schema,
               'strict_input_schema', cap.strict_input_schema,
               'read_only', cap.is_read_only,
               'destructive', cap.is_destructive,
               'limits', jsonb_build_object(
                   'max_recipients_per_message', case when cap.sends_messages then g.max_recipients_per_message end,
                   'daily_send_limit', case when cap.sends_messages then g.daily_send_limit end,
                   'remaining_today', case when cap.sends_messages and g.daily_send_limit is not null
                                           then greatest(g.daily_send_limit - g.used_today, 0) end,
                   'allowed_recipients', to_jsonb(g.allowed_recipients),
                   'blocked_recipients', to_jsonb(g.blocked_recipients),
                   'expires_at', g.expires_at)
           ) order by sp.name, g.connection_name, cap.display_order), '[]'::jsonb)
    from grants g
    join public.service_providers sp on sp.id = g.provider_id
    join public.integration_capabilities cap on cap.provider_id = g.provider_id
    where cap.required_scope = any (g.allowed_scopes) and cap.required_scope = any (g.granted_scopes)
$$;

/** Converts the raw list to a runtime's tool format. */
create function private.format_tools(p_tools jsonb, p_format text) returns jsonb
language plpgsql immutable
set search_path = ''
as $$
begin
    case coalesce(p_format, 'raw')
    when 'raw' then
        return p_tools;
    when 'openai' then
        return coalesce((select jsonb_agg(jsonb_build_object('type', 'function', 'function', jsonb_build_object(
                    'name', t ->> 'name', 'description', t ->> 'description',
                    'parameters', t -> 'strict_input_schema', 'strict', true)))
                from jsonb_array_elements(p_tools) t), '[]');
    when 'anthropic' then
        return coalesce((select jsonb_agg(jsonb_build_object(
                    'name', t ->> 'name', 'description', t ->> 'description', 'input_schema', t -> 'input_schema'))
                from jsonb_array_elements(p_tools) t), '[]');
    when 'mcp' then
        return coalesce((select jsonb_agg(jsonb_build_object(
                    'name', t ->> 'name', 'title', t ->> 'title', 'description', t ->> 'description',
                    'inputSchema', t -> 'input_schema',
                    'annotations', jsonb_build_object('title', t ->> 'title',
                        'readOnlyHint', (t ->> 'read_only')::boolean,
                        'destructiveHint', (t ->> 'destructive')::boolean,
                        'idempotentHint', (t ->> 'read_only')::boolean,
                        'openWorldHint', true)))
                from jsonb_array_elements(p_tools) t), '[]');
    else
        raise exception 'unknown tool format "%" (raw, openai, anthropic, mcp)', p_format using errcode = '22023';
    end case;
end
$$;

/** Tools of one of the signed-in user's agents. */
create function private.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns jsonb
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
    return private.format_tools(private.agent_tools(v_uid, p_agent_id), p_format);
end
$$;

/** supabase.rpc('get_agent_tools', {p_agent_id, p_format}): raw | openai | anthropic | mcp. */
create function public.get_agent_tools(p_agent_id uuid, p_format text default 'raw') returns jsonb
language sql stable security invoker set search_path = ''
as $$ select private.get_agent_tools(p_agent_id, p_format) $$;

grant execute on function private.get_agent_tools(uuid, text) to authenticated;
grant execute on function public.get_agent_tools(uuid, text) to authenticated;
grant execute on function private.agent_tools(uuid, uuid), private.format_tools(jsonb, text) to service_role;

/**
 * Tool listing for the service path (agent key, or service key naming user and
 * agent): authenticates the key and lists in one round trip.
 * Returns {ok:true, user_id, agent_id, tools} or {ok:false, error:{code, message}}.
 */
create function private.list_tools_for_caller(
    p_user_id uuid default null, p_agent_id uuid default null, p_agent_key_hash text default null, p_format text default 'raw'
) returns jsonb
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
        if not found or v_key.revoked_at is not null or (v_key.expires_at is not null and v_key.expires_at <= now()) then
            return jsonb_build_object('ok', false, 'error', jsonb_build_object('code', 'unauthorized', 'message',
                case when not found then 'invalid agent key' when v_key.revoked_at is not null then 'agent key revoked'
                     else 'agent key expired' end));
        end if;
        v_user_id := v_key.user_id;
        v_agent_id := v_key.agent_id;
        update public.agent_keys set last_used_at = now()
        where id = v_key.id and (last_used_at is null or last_used_at < now() - interval '1 minute');
    elsif not exists (select 1 from public.agents where id = v_agent_id and user_id = v_user_id) then
        return jsonb_build_object('ok', false, 'error', jsonb_build_object('code', 'not_found', 'message', 'agent not found'));
    end if;
    return jsonb_build_object('ok', true, 'user_id', v_user_id, 'agent_id', v_agent_id,
                              'tools', private.format_tools(private.agent_tools(v_user_id, v_agent_id), p_format));
end
$$;

grant execute on function private.list_tools_for_caller(uuid, uuid, text, text) to service_role;
