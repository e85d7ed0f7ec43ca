/**
 * ---- Section - Tool call path (service only) ----
 * Every tool call is exactly two round trips:
 *   private.begin_tool_call  authenticate the agent key, authorize the agent, check
 *                            scope, expiry, recipient rules and the per-message limit,
 *                            reserve quota atomically, honour the idempotency key and
 *                            return the decrypted credentials: one transaction.
 *   private.finish_tool_call record the outcome, provider ids and duration; give back
 *                            the reserved quota that was not used.
 * Denials are recorded as operations too. Only service_role may execute these: they
 * are the one route to a decrypted credential, and only for a call just authorized.
 */

/** Records a denied call (when the user is known) and returns the denial. */
create function private.deny(
    p_code text, p_message text, p_details jsonb,
    p_user_id uuid, p_agent_id uuid, p_connection_id uuid, p_permission_id uuid,
    p_capability text, p_auth_mode text, p_recipients text[], p_summary jsonb
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_operation_id uuid;
begin
    if p_user_id is not null then
        insert into public.operations (user_id, agent_id, connection_id, permission_id, capability_key, auth_mode,
                                       status, recipients, recipient_count, request_summary, error_code, error_message,
                                       error_details, finished_at, duration_ms)
        values (p_user_id, p_agent_id, p_connection_id, p_permission_id, p_capability, p_auth_mode,
                'denied', coalesce(p_recipients, '{}'), coalesce(cardinality(p_recipients), 0), coalesce(p_summary, '{}'),
                p_code, p_message, p_details, now(), 0)
        returning id into v_operation_id;
    end if;
    return jsonb_build_object('ok', false, 'operation_id', v_operation_id,
                              'error', jsonb_build_object('code', p_code, 'message', p_message, 'details', p_details));
end
$$;

/**
 * Authorizes one tool call and reserves what it needs. Identify the caller either by
 * p_agent_key_hash (hex SHA-256 of an agent key) or by p_user_id (+ p_agent_id when an
 * agent acts; null when the user acts directly on their own account).
 * p_connection_id, or p_connection_ref (a prefix of the id, used in tool-name suffixes),
 * picks the account when there is more than one of the provider.
 * Returns {ok:true, operation_id, credentials, config, ...}, {ok:true, replay:true, ...}
 * for a repeated idempotency key, or {ok:false, error:{code, message, details}}.
 */
create function private.begin_tool_call(
    p_capability text,
    p_user_id uuid default null,
    p_agent_id uuid default null,
    p_agent_key_hash text default null,
    p_connection_id uuid default null,
    p_connection_ref text default null,
    p_recipients text[] default '{}',
    p_idempotency_key text default null,
    p_request_hash text default null,
    p_request_summary jsonb default '{}',
    p_auth_mode text default 'service'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_user_id uuid := p_user_id;
    v_agent_id uuid := p_agent_id;
    v_key public.agent_keys;
    v_agent public.agents;
    v_capability public.integration_capabilities;
    v_provider public.service_providers;
    v_connection public.connections;
    v_permission public.agent_permissions;
    v_recipients text[] := coalesce(array(select distinct r from unnest(p_recipients) r order by r), '{}');
    v_count integer;
    v_candidates integer;
    v_live integer;
    v_refused text;
    v_used integer;
    v_existing public.operations;
    v_operation_id uuid;
    v_today date := private.utc_today();
    v_credentials jsonb;
begin
    -- 1. Who is calling.
    if p_agent_key_hash is not null then
        select * into v_key from public.agent_keys where key_hash = p_agent_key_hash;
        if not found then
            return private.deny('unauthorized', 'invalid agent key', null, null, null, null, null, p_capability, 'agent_key', null, null);
        end if;
        v_user_id := v_key.user_id;
        v_agent_id := v_key.agent_id;
        if v_key.revoked_at is not null or (v_key.expires_at is not null and v_key.expires_at <= now()) then
            return private.deny('unauthorized', case when v_key.revoked_at is not null then 'agent key revoked' else 'agent key expired' end,
                                null, v_user_id, v_agent_id, null, null, p_capability, 'agent_key', v_recipients, p_request_summary);
        end if;
        update public.agent_keys set last_used_at = now()
        where id = v_key.id and (last_used_at is null or last_used_at < now() - interval '1 minute');
    elsif v_user_id is null then
        return private.deny('unauthorized', 'no caller identity', null, null, null, null, null, p_capability, p_auth_mode, null, null);
    end if;

    -- 2. What is being called.
    select * into v_capability from public.integration_capabilities where capability_key = p_capability;
    if not found then
        return private.deny('not_found', format('unknown tool "%s"', p_capability), null,
                            v_user_id, v_agent_id, null, null, p_capability, p_auth_mode, v_recipients, p_request_summary);
    end if;
    select * into v_provider from public.service_providers where id = v_capability.provider_id;

    if v_agent_id is not null then
        select * into v_agent from public.agents where id = v_agent_id and user_id = v_user_id;
        if not found then
            -- Never reveal another user's agent: the same answer as a missing one.
            return private.deny('not_found', 'agent not found', null, v_user_id, null, null, null,
                                p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
        if not v_agent.is_active then
            return private.deny('permission_denied', 'agent is disabled', null, v_user_id, v_agent_id, null, null,
                                p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
    end if;
    if not v_provider.is_enabled then
        return private.deny('permission_denied', format('provider %s is disabled', v_provider.name), null,
                            v_user_id, v_agent_id, null, null, p_capability, p_auth_mode, v_recipients, p_request_summary);
    end if;

    -- 3. Which account: the one named, or the only one of this provider.
    if v_agent_id is not null then
        -- A dead grant (revoked, expired, inactive connection) never makes a live one
        -- ambiguous: discovery does not list it either.
        select count(*),
               count(*) filter (where p.is_active and p.revoked_at is null
                                  and (p.expires_at is null or p.expires_at > now()) and c.status = 'active')
        into v_candidates, v_live
        from public.agent_permissions p
        join public.connections c on c.id = p.connection_id
        where p.agent_id = v_agent_id and c.provider_id = v_provider.id and c.deleted_at is null
          and (p_connection_id is null or c.id = p_connection_id)
          and (p_connection_ref is null or starts_with(c.id::text, lower(p_connection_ref)));
        if v_candidates > 1 and v_live = 1 then
            v_candidates := 1;
        end if;
        if v_candidates = 1 then
            select p.* into v_permission
            from public.agent_permissions p
            join public.connections c on c.id = p.connection_id
            where p.agent_id = v_agent_id and c.provider_id = v_provider.id and c.deleted_at is null
              and (p_connection_id is null or c.id = p_connection_id)
              and (p_connection_ref is null or starts_with(c.id::text, lower(p_connection_ref)))
            order by (p.is_active and p.revoked_at is null and (p.expires_at is null or p.expires_at > now())
                      and c.status = 'active') desc
            limit 1;
            select * into v_connection from public.connections where id = v_permission.connection_id;
        end if;
    else
        select count(*) into v_candidates
        from public.connections c
        where c.user_id = v_user_id and c.provider_id = v_provider.id and c.deleted_at is null
          and (p_connection_id is null or c.id = p_connection_id)
          and (p_connection_ref is null or starts_with(c.id::text, lower(p_connection_ref)));
        if v_candidates = 1 then
            select c.* into v_connection
            from public.connections c
            where c.user_id = v_user_id and c.provider_id = v_provider.id and c.deleted_at is null
              and (p_connection_id is null or c.id = p_connection_id)
              and (p_connection_ref is null or starts_with(c.id::text, lower(p_connection_ref)));
        end if;
    end if;
    if v_candidates = 0 then
        return private.deny('permission_denied',
                            case when v_agent_id is null then format('no %s connection', v_provider.display_name)
                                 else format('agent has no grant on a %s connection', v_provider.display_name) end,
                            jsonb_build_object('reason', 'no_grant'),
                            v_user_id, v_agent_id, p_connection_id, null, p_capability, p_auth_mode, v_recipients, p_request_summary);
    elsif v_candidates > 1 then
        return private.deny('invalid_request',
                            format('%s %s connections are available; name one with connection_id', v_candidates, v_provider.display_name),
                            jsonb_build_object('reason', 'ambiguous_connection'),
                            v_user_id, v_agent_id, null, null, p_capability, p_auth_mode, v_recipients, p_request_summary);
    end if;

    -- 4. The rules.
    if v_connection.status <> 'active' then
        return private.deny('permission_denied', format('connection is %s', v_connection.status), jsonb_build_object('reason', 'connection_inactive'),
                            v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
    end if;
    if v_capability.required_scope <> all (v_connection.granted_scopes) then
        return private.deny('permission_denied', format('connection does not grant scope "%s"', v_capability.required_scope),
                            jsonb_build_object('reason', 'scope', 'required_scope', v_capability.required_scope),
                            v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
    end if;
    v_count := cardinality(v_recipients);
    if v_agent_id is not null then
        if not v_permission.is_active or v_permission.revoked_at is not null then
            return private.deny('permission_denied', 'grant revoked', jsonb_build_object('reason', 'revoked'),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
        if v_permission.expires_at is not null and v_permission.expires_at <= now() then
            return private.deny('permission_denied', 'grant expired', jsonb_build_object('reason', 'expired', 'expired_at', v_permission.expires_at),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
        if v_capability.required_scope <> all (v_permission.allowed_scopes) then
            return private.deny('permission_denied', format('agent lacks scope "%s"', v_capability.required_scope),
                                jsonb_build_object('reason', 'scope', 'required_scope', v_capability.required_scope),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
        if v_count > v_permission.max_recipients_per_message then
            return private.deny('permission_denied',
                                format('%s recipients; this agent may address at most %s per message', v_count, v_permission.max_recipients_per_message),
                                jsonb_build_object('reason', 'recipient_limit', 'max_recipients_per_message', v_permission.max_recipients_per_message),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
        if cardinality(v_permission.allowed_recipients) > 0 or cardinality(v_permission.blocked_recipients) > 0 then
            v_refused := private.first_refused_recipient(v_recipients, v_permission.allowed_recipients, v_permission.blocked_recipients);
        end if;
        if v_refused is not null then
            return private.deny('permission_denied', format('recipient %s is not allowed for this agent', v_refused),
                                jsonb_build_object('reason', 'recipient_not_allowed', 'recipient', v_refused),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
    end if;

    -- 5. Idempotency: the same key returns the first call's result.
    if p_idempotency_key is not null then
        select * into v_existing from public.operations
        where user_id = v_user_id and agent_id is not distinct from v_agent_id and idempotency_key = p_idempotency_key;
        if found then
            if v_existing.request_hash is distinct from p_request_hash or v_existing.capability_key <> p_capability then
                return jsonb_build_object('ok', false, 'operation_id', v_existing.id, 'error', jsonb_build_object(
                    'code', 'conflict', 'message', 'idempotency key was used with a different request', 'details', null));
            elsif v_existing.status = 'pending' then
                return jsonb_build_object('ok', false, 'operation_id', v_existing.id, 'error', jsonb_build_object(
                    'code', 'conflict', 'message', 'a call with this idempotency key is still in progress', 'details', null));
            end if;
            return jsonb_build_object('ok', true, 'replay', true, 'operation_id', v_existing.id, 'status', v_existing.status,
                                      'response', v_existing.response,
                                      'error', case when v_existing.error_code is null then null else jsonb_build_object(
                                          'code', v_existing.error_code, 'message', v_existing.error_message, 'details', v_existing.error_details) end);
        end if;
    end if;

    -- 6. Quota: reserve every recipient now, atomically (the row lock of the upsert
    --    serializes concurrent calls, so a limit can never be overshot).
    if v_agent_id is not null and v_capability.sends_messages then
        if v_permission.daily_send_limit is not null and v_count > v_permission.daily_send_limit then
            v_used := null;
        else
            insert into public.usage_counters as u (permission_id, usage_date, user_id, used)
            values (v_permission.id, v_today, v_user_id, v_count)
            on conflict (permission_id, usage_date) do update set used = u.used + excluded.used
            where v_permission.daily_send_limit is null or u.used + excluded.used <= v_permission.daily_send_limit
            returning used into v_used;
        end if;
        if v_used is null then
            select used into v_used from public.usage_counters where permission_id = v_permission.id and usage_date = v_today;
            return private.deny('quota_exceeded',
                                format('daily send limit reached: %s of %s used today, %s requested',
                                       coalesce(v_used, 0), v_permission.daily_send_limit, v_count),
                                jsonb_build_object('daily_send_limit', v_permission.daily_send_limit, 'used_today', coalesce(v_used, 0),
                                                   'requested', v_count, 'resets_at', (v_today + 1)::timestamp at time zone 'utc'),
                                v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, v_recipients, p_request_summary);
        end if;
    end if;

    -- 7. Record the call and hand over the credentials.
    begin
        insert into public.operations (user_id, agent_id, connection_id, permission_id, capability_key, auth_mode, status,
                                       recipients, recipient_count, quota_reserved, quota_date, request_summary,
                                       request_hash, idempotency_key)
        values (v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, 'pending',
                v_recipients, v_count,
                case when v_agent_id is not null and v_capability.sends_messages then v_count else 0 end,
                v_today, coalesce(p_request_summary, '{}'), p_request_hash, p_idempotency_key)
        returning id into v_operation_id;
    exception when unique_violation then
        -- A concurrent call with the same idempotency key won the race.
        raise exception 'a call with this idempotency key is already in progress' using errcode = 'PT409';
    end;

    select decrypted_secret::jsonb into v_credentials from vault.decrypted_secrets where id = v_connection.secret_id;
    if v_credentials is null then
        raise exception 'connection % has no credentials', v_connection.id using errcode = 'P0002';
    end if;

    return jsonb_build_object(
        'ok', true,
        'operation_id', v_operation_id,
        'user_id', v_user_id,
        'agent_id', v_agent_id,
        'connection_id', v_connection.id,
        'permission_id', v_permission.id,
        'provider', v_provider.name,
        'config', v_connection.config,
        'credentials', v_credentials
    );
end
$$;

/**
 * Records a call's outcome. p_sent_count is how many recipients the provider accepted;
 * the rest of the reservation is given back, except for status 'unknown' (the send may
 * have gone out: a timeout or a connection dropped after the request), which keeps it.
 */
create function private.finish_tool_call(
    p_operation_id uuid,
    p_status text,
    p_sent_count integer default 0,
    p_provider_message_ids text[] default '{}',
    p_response jsonb default null,
    p_error_code text default null,
    p_error_message text default null,
    p_error_details jsonb default null,
    p_duration_ms integer default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_operation public.operations;
    v_used integer;
begin
    if p_status not in ('succeeded', 'partial', 'failed', 'unknown') then
        raise exception 'invalid status %', p_status using errcode = '22023';
    end if;
    -- Recording an outcome need not wait for the WAL flush: if a crash lost this commit,
    -- the operation would stay 'pending' with its quota still reserved, the safe side.
    -- (begin_tool_call stays synchronous: its reservation must be durable before a send.)
    perform set_config('synchronous_commit', 'off', true);
    select * into v_operation from public.operations where id = p_operation_id for update;
    if not found then
        raise exception 'operation % not found', p_operation_id using errcode = 'P0002';
    end if;
    if v_operation.status <> 'pending' then
        return jsonb_build_object('ok', false, 'status', v_operation.status);
    end if;

    v_used := case when p_status = 'unknown' then v_operation.quota_reserved
                   else least(greatest(coalesce(p_sent_count, 0), 0), v_operation.quota_reserved) end;
    if v_operation.quota_reserved > v_used then
        update public.usage_counters
        set used = greatest(used - (v_operation.quota_reserved - v_used), 0)
        where permission_id = v_operation.permission_id and usage_date = v_operation.quota_date;
    end if;
    if v_operation.permission_id is not null then
        update public.agent_permissions
        set usage_count = usage_count + case when p_status = 'unknown' then 0 else v_used end,
            last_used_at = now()
        where id = v_operation.permission_id;
    end if;

    update public.operations set
        status = p_status,
        quota_used = v_used,
        provider_message_ids = coalesce(p_provider_message_ids, '{}'),
        response = p_response,
        error_code = p_error_code,
        error_message = p_error_message,
        error_details = p_error_details,
        duration_ms = p_duration_ms,
        finished_at = now()
    where id = p_operation_id;
    return jsonb_build_object('ok', true, 'status', p_status, 'quota_used', v_used);
end
$$;

/** The connection a webhook token addresses (for signature checks before recording). */
create function private.webhook_connection(p_webhook_token text, p_provider text) returns jsonb
language sql stable
security definer
set search_path = ''
as $$
    select jsonb_build_object('connection_id', c.id, 'user_id', c.user_id, 'config', c.config)
    from public.connections c
    join public.service_providers p on p.id = c.provider_id
    where c.webhook_token = p_webhook_token and p.name = p_provider and c.deleted_at is null
$$;

/**
 * Stores provider webhook events for the connection the token addresses, deduplicated
 * by (connection, provider_event_id) and linked to operations: by our operation id
 * when the provider echoed it, else by provider message id; an inbound reply without
 * either is linked to the latest operation that sent to its author.
 * Each event: {provider_event_id, event_type, status, provider_message_id,
 * operation_id, recipient, original_message_id, occurred_at, payload}.
 */
create function private.record_message_events(p_webhook_token text, p_provider text, p_events jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections;
    v_event jsonb;
    v_operation_id uuid;
    v_inserted integer := 0;
    v_duplicates integer := 0;
    v_row_count integer;
begin
    select c.* into v_connection
    from public.connections c join public.service_providers p on p.id = c.provider_id
    where c.webhook_token = p_webhook_token and p.name = p_provider and c.deleted_at is null;
    if not found then
        return jsonb_build_object('ok', false);
    end if;

    for v_event in select * from jsonb_array_elements(p_events) loop
        v_operation_id := null;
        if coalesce(v_event ->> 'operation_id', '') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            select id into v_operation_id from public.operations
            where id = (v_event ->> 'operation_id')::uuid and connection_id = v_connection.id;
        end if;
        if v_operation_id is null and coalesce(v_event ->> 'provider_message_id', v_event ->> 'original_message_id') is not null then
            select id into v_operation_id from public.operations
            where connection_id = v_connection.id
              and provider_message_ids && array_remove(array[v_event ->> 'provider_message_id', v_event ->> 'original_message_id'], null)
            order by created_at desc limit 1;
        end if;
        if v_operation_id is null and v_event ->> 'event_type' = 'inbound_message' and v_event ->> 'recipient' is not null then
            select id into v_operation_id from public.operations
            where connection_id = v_connection.id and status in ('succeeded', 'partial', 'unknown')
              and recipients @> array[v_event ->> 'recipient']
            order by created_at desc limit 1;
        end if;

        insert into public.message_events (user_id, connection_id, operation_id, event_type, status, provider_event_id,
                                           provider_message_id, recipient, payload, occurred_at)
        values (v_connection.user_id, v_connection.id, v_operation_id, v_event ->> 'event_type', v_event ->> 'status',
                v_event ->> 'provider_event_id', v_event ->> 'provider_message_id', v_event ->> 'recipient',
                coalesce(v_event -> 'payload', '{}'), (v_event ->> 'occurred_at')::timestamptz)
        on conflict (connection_id, provider_event_id) do nothing;
        get diagnostics v_row_count = row_count;
        v_inserted := v_inserted + v_row_count;
        v_duplicates := v_duplicates + 1 - v_row_count;
    end loop;
    return jsonb_build_object('ok', true, 'inserted', v_inserted, 'duplicates', v_duplicates);
end
$$;

/** Records the result of a connection test run by a function for the owner. */
create function private.record_connection_test(p_connection_id uuid, p_ok boolean, p_message text) returns void
language sql
security definer
set search_path = ''
as $$
    update public.connections
    set last_tested_at = now(), last_test_ok = p_ok, last_test_message = left(p_message, 500),
        status = case when status = 'disabled' then status when p_ok then 'active' else 'error' end
    where id = p_connection_id
$$;

/**
 * Credentials for testing a connection the given user owns (the user's own action,
 * no agent): service only, and only for the owner.
 */
create function private.connection_for_test(p_user_id uuid, p_connection_id uuid, p_provider text) returns jsonb
language sql stable
security definer
set search_path = ''
as $$
    select jsonb_build_object('connection_id', c.id, 'config', c.config,
                              'credentials', (select s.decrypted_secret::jsonb from vault.decrypted_secrets s where s.id = c.secret_id))
    from public.connections c
    join public.service_providers p on p.id = c.provider_id
    where c.id = p_connection_id and c.user_id = p_user_id and p.name = p_provider and c.deleted_at is null
$$;

grant execute on function
    private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text),
    private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer),
    private.webhook_connection(text, text),
    private.record_message_events(text, text, jsonb),
    private.record_connection_test(uuid, boolean, text),
    private.connection_for_test(uuid, uuid, text)
to service_role;
