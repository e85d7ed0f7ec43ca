/**
 * ---- Section - Seed-compatible wrappers ----
 * The validators and helpers the original designs named, with their argument lists,
 * as thin wrappers over the unified model. A signed-in caller may only ask about
 * themselves: p_user_id must be auth.uid() unless the caller is service_role.
 */

/** Refuses to answer about another user unless the session runs as service_role (or the owner). */
create function private.assert_caller_is(p_user_id uuid) returns void
language plpgsql stable
set search_path = ''
as $$
begin
    -- current_setting('role') is the session's SET ROLE, unchanged inside SECURITY DEFINER.
    if current_setting('role') not in ('service_role', 'none') and p_user_id is distinct from auth.uid() then
        raise exception 'you may only check your own agents' using errcode = '42501';
    end if;
end
$$;

/** Live grants of an agent of a user, on active connections of one provider. */
create function private.live_grants(p_agent_id uuid, p_user_id uuid, p_provider text)
returns setof public.agent_permissions
language sql stable
set search_path = ''
as $$
    select p.*
    from public.agent_permissions p
    join public.agents a on a.id = p.agent_id and a.is_active and a.user_id = p_user_id
    join public.connections c on c.id = p.connection_id and c.deleted_at is null and c.status = 'active'
    join public.service_providers sp on sp.id = c.provider_id and sp.is_enabled and sp.name = p_provider
    where p.agent_id = p_agent_id and p.user_id = p_user_id
      and p.is_active and p.revoked_at is null and (p.expires_at is null or p.expires_at > now())
$$;

/** Does the agent hold all p_required_scopes on an active ClickSend connection of the user? */
create function private.validate_agent_clicksend_permissions(p_agent_id uuid, p_user_id uuid, p_required_scopes text[])
returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.assert_caller_is(p_user_id);
    return exists (
        select 1 from private.live_grants(p_agent_id, p_user_id, 'clicksend_sms') g
        join public.connections c on c.id = g.connection_id
        where coalesce(p_required_scopes, '{}') <@ g.allowed_scopes
          and coalesce(p_required_scopes, '{}') <@ c.granted_scopes
    );
end
$$;

/** May the agent send mail through this SMTP connection (p_smtp_config_id) of the user? */
create function private.validate_agent_smtp_permissions(p_agent_id uuid, p_user_id uuid, p_smtp_config_id uuid)
returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.assert_caller_is(p_user_id);
    return exists (
        select 1 from private.live_grants(p_agent_id, p_user_id, 'smtp') g
        join public.connections c on c.id = g.connection_id
        where g.connection_id = p_smtp_config_id and 'email' = any (g.allowed_scopes) and 'email' = any (c.granted_scopes)
    );
end
$$;

/** The agent's SMTP tools (raw format). */
create function private.get_smtp_tools(p_agent_id uuid, p_user_id uuid) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.assert_caller_is(p_user_id);
    return coalesce((select jsonb_agg(t) from jsonb_array_elements(private.agent_tools(p_user_id, p_agent_id, 'raw')::jsonb) t
                     where t ->> 'provider' = 'smtp'), '[]');
end
$$;

/** Logs an SMTP operation the seeds' way (service only). Returns the operation id. */
create function private.log_smtp_operation(
    p_agent_id uuid,
    p_user_id uuid,
    p_smtp_config_id uuid,
    p_operation_type text,
    p_operation_params jsonb default null,
    p_operation_result jsonb default null,
    p_status text default 'success',
    p_error_message text default null,
    p_recipients_count integer default 0,
    p_execution_time_ms integer default 0
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    insert into public.operations (user_id, agent_id, connection_id, capability_key, auth_mode, status, recipient_count,
                                   request_summary, response, error_message, duration_ms, finished_at)
    values (p_user_id, p_agent_id, p_smtp_config_id,
            case when p_operation_type like 'smtp\_%' then p_operation_type else 'smtp_' || p_operation_type end,
            'service',
            case p_status when 'success' then 'succeeded' when 'partial' then 'partial' when 'denied' then 'denied' else 'failed' end,
            coalesce(p_recipients_count, 0), coalesce(p_operation_params, '{}'), p_operation_result, p_error_message,
            p_execution_time_ms, now())
    returning id into v_id;
    return v_id;
end
$$;

create function public.validate_agent_clicksend_permissions(p_agent_id uuid, p_user_id uuid, p_required_scopes text[])
returns boolean
language sql stable security invoker set search_path = ''
as $$ select private.validate_agent_clicksend_permissions(p_agent_id, p_user_id, p_required_scopes) $$;

create function public.validate_agent_smtp_permissions(p_agent_id uuid, p_user_id uuid, p_smtp_config_id uuid)
returns boolean
language sql stable security invoker set search_path = ''
as $$ select private.validate_agent_smtp_permissions(p_agent_id, p_user_id, p_smtp_config_id) $$;

create function public.get_smtp_tools(p_agent_id uuid, p_user_id uuid) returns jsonb
language sql stable security invoker set search_path = ''
as $$ select private.get_smtp_tools(p_agent_id, p_user_id) $$;

create function public.log_smtp_operation(
    p_agent_id uuid, p_user_id uuid, p_smtp_config_id uuid, p_operation_type text,
    p_operation_params jsonb default null, p_operation_result jsonb default null, p_status text default 'success',
    p_error_message text default null, p_recipients_count integer default 0, p_execution_time_ms integer default 0
) returns uuid
language sql security invoker set search_path = ''
as $$ select private.log_smtp_operation(p_agent_id, p_user_id, p_smtp_config_id, p_operation_type, p_operation_params,
    p_operation_result, p_status, p_error_message, p_recipients_count, p_execution_time_ms) $$;

grant execute on function
    private.validate_agent_clicksend_permissions(uuid, uuid, text[]),
    private.validate_agent_smtp_permissions(uuid, uuid, uuid),
    private.get_smtp_tools(uuid, uuid),
    public.validate_agent_clicksend_permissions(uuid, uuid, text[]),
    public.validate_agent_smtp_permissions(uuid, uuid, uuid),
    public.get_smtp_tools(uuid, uuid)
to authenticated, service_role;

grant execute on function
    private.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer),
    public.log_smtp_operation(uuid, uuid, uuid, text, jsonb, jsonb, text, text, integer, integer)
to service_role;
