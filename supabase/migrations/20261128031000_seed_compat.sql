/**
 * ==== Seed-compatible wrappers ====
 * The validators and helpers the original designs named, with their argument lists, as
 * thin wrappers over the workspace model: p_user_id is the member the agent acts for,
 * and every answer is the agent's effective rights (grant ∩ member permission). A
 * signed-in caller may ask about their own agents, or as an admin about the agents of
 * their workspace; anything else is refused (42501). service_role may ask about anyone.
 */

-- ---- Section - Helpers ----

/**
 * Refuses to answer about an agent the caller may not see: the session must run as
 * service_role (or the owner), or the caller must be p_user_id or an admin of the
 * agent's workspace.
 */
create function private.assert_may_ask_about(p_agent_id uuid, p_user_id uuid) returns void
language plpgsql stable
set search_path = ''
as $$
begin
    -- current_setting('role') is the session's SET ROLE, unchanged inside SECURITY DEFINER.
    if current_setting('role') in ('service_role', 'none') or p_user_id = auth.uid() then
        return;
    end if;
    if exists (select 1 from public.agents a where a.id = p_agent_id and a.user_id = p_user_id
               and private.has_role_on_workspace(a.workspace_id, 'admin')) then
        return;
    end if;
    raise exception 'you may only check your own agents, or as an admin those of your workspace' using errcode = '42501';
end
$$;

/** The live effective rights of an agent acting for p_user_id, on connections of one provider. */
create function private.live_rights(p_agent_id uuid, p_user_id uuid, p_provider text)
returns setof private.effective_right
language sql stable
set search_path = ''
as $$
    select r.*
    from private.agent_rights(p_agent_id) r
    join public.service_providers sp on sp.id = r.provider_id and sp.is_enabled and sp.name = p_provider
    where r.principal_id = p_user_id and r.dead_reason is null
$$;

-- ---- Section - Wrappers ----

/**
 * Does the agent hold all p_required_scopes on an active ClickSend connection, within
 * what its member holds (sending scopes need the member's can_send)?
 */
create function private.validate_agent_clicksend_permissions(p_agent_id uuid, p_user_id uuid, p_required_scopes text[])
returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.assert_may_ask_about(p_agent_id, p_user_id);
    return exists (
        select 1 from private.live_rights(p_agent_id, p_user_id, 'clicksend_sms') r
        where coalesce(p_required_scopes, '{}') <@ r.scopes
          and (r.can_send or not (coalesce(p_required_scopes, '{}') && array['sms', 'mms']))
    );
end
$$;

/** May the agent send mail through this SMTP connection (p_smtp_config_id)? */
create function private.validate_agent_smtp_permissions(p_agent_id uuid, p_user_id uuid, p_smtp_config_id uuid)
returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform private.assert_may_ask_about(p_agent_id, p_user_id);
    return exists (
        select 1 from private.live_rights(p_agent_id, p_user_id, 'smtp') r
        where r.connection_id = p_smtp_config_id and 'email' = any (r.scopes) and r.can_send
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
    perform private.assert_may_ask_about(p_agent_id, p_user_id);
    if not exists (select 1 from public.agents a where a.id = p_agent_id and a.user_id = p_user_id) then
        return '[]'::jsonb;
    end if;
    return coalesce((select jsonb_agg(t) from jsonb_array_elements(private.agent_tools(p_agent_id, 'raw')::jsonb) t
                     where t ->> 'provider' = 'smtp'), '[]');
end
$$;

/**
 * Logs an SMTP operation the seeds' way (service only), in the workspace of the
 * connection (or of the agent): the connection must be an SMTP one, and the agent in the
 * same workspace. Returns the operation id.
 */
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
    v_workspace_id uuid := coalesce((select c.workspace_id from public.connections c where c.id = p_smtp_config_id),
                                    (select a.workspace_id from public.agents a where a.id = p_agent_id));
    v_id uuid;
begin
    if v_workspace_id is null then
        raise exception 'unknown connection and agent' using errcode = 'P0002';
    end if;
    if p_smtp_config_id is not null and not exists (
           select 1 from public.connections c join public.service_providers p on p.id = c.provider_id
           where c.id = p_smtp_config_id and p.name = 'smtp') then
        raise exception 'connection % is not an SMTP connection', p_smtp_config_id using errcode = '22023';
    end if;
    if p_agent_id is not null and not exists (
           select 1 from public.agents a where a.id = p_agent_id and a.workspace_id = v_workspace_id) then
        raise exception 'the agent and the connection belong to different workspaces' using errcode = '42501';
    end if;
    insert into public.operations (workspace_id, user_id, agent_id, connection_id, capability_key, auth_mode, status,
                                   recipient_count, request_summary, response, error_message, duration_ms, finished_at)
    values (v_workspace_id, p_user_id, p_agent_id, p_smtp_config_id,
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
