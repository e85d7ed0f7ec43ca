/**
 * ==== Ledger: status callbacks on sends ====
 * begin_tool_call also returns where the provider should report a send's status, for the
 * providers that take a callback URL on each send (Twilio, Telnyx, Exotel): the path of
 * the connection's own webhook, so delivery reports arrive without any account-side
 * setup. Otherwise unchanged.
 */

-- ---- Section - Begin ----
/**
 * Authorizes one tool call and reserves what it needs, in one transaction (the steps
 * above, in order). Identify the caller by p_agent_key_hash, or by p_user_id (+
 * p_agent_id when an agent acts). p_sender is the send's `from`, when it names one.
 * The config returned is the connection's, with a mail connection's default sender
 * identity as its from_email / from_name. For providers that take a status callback URL
 * on each send, status_callback is its path under the functions' URL
 * (<function>/webhooks/<token>/<kind>).
 * Returns {ok:true, operation_id, credentials, config, sender, ...}, {ok:true,
 * replay:true, ...} for a repeated idempotency key whose call ended, or {ok:false,
 * error:{code, message, details}}; a keyed call still in flight is a conflict with
 * details.retry_after.
 * Order matters for concurrency: every check, the Vault read and the operation insert
 * come first; the quota counters are the last statements, so their rows are locked for
 * the commit only.
 */
create or replace function private.begin_tool_call(
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
    p_auth_mode text default 'service',
    p_sender text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ctx private.call_context := row(p_capability, case when p_agent_key_hash is not null then 'agent_key' else p_auth_mode end,
        p_user_id, p_agent_id, null, null, null, null,
        coalesce(array(select distinct r from unnest(p_recipients) r order by r), '{}'), p_request_summary, null, null, null);
    v_capability public.integration_capabilities;
    v_provider public.service_providers;
    v_right private.effective_right;
    v_denial jsonb;
    v_sender text;
    v_reserve integer;
    v_operation_id uuid;
    v_credentials jsonb;
    v_config jsonb;
    v_secret_id uuid;
    v_over jsonb;
    v_status_callback text;
begin
    v_ctx := private.resolve_caller(v_ctx, p_agent_key_hash);
    if v_ctx.denial is not null then
        return v_ctx.denial;
    end if;

    select * into v_capability from public.integration_capabilities where capability_key = p_capability;
    if not found then
        return private.deny(v_ctx, 'not_found', format('unknown tool "%s"', p_capability));
    end if;
    select * into v_provider from public.service_providers where id = v_capability.provider_id;
    if not v_provider.is_enabled then
        return private.deny(v_ctx, 'permission_denied', format('provider %s is disabled', v_provider.name));
    end if;

    v_ctx := private.resolve_right(v_ctx, v_provider, p_connection_id, p_connection_ref);
    if v_ctx.denial is not null then
        return v_ctx.denial;
    end if;
    v_right := v_ctx.effective;
    v_denial := private.check_call_rules(v_ctx, v_right, v_capability);
    if v_denial is not null then
        return v_denial;
    end if;
    if v_provider.channels && array['sms', 'mms', 'whatsapp', 'voice'] then
        v_ctx := private.resolve_sender(v_ctx, v_capability, p_sender);
        if v_ctx.denial is not null then
            return v_ctx.denial;
        end if;
        v_sender := v_ctx.sender;
    end if;

    v_denial := private.replay_keyed_call(v_ctx, p_idempotency_key, p_request_hash);
    if v_denial is not null then
        return v_denial;
    end if;

    -- Credentials: read before any lock on shared rows is taken.
    select c.config, c.secret_id into v_config, v_secret_id from public.connections c where c.id = v_ctx.connection_id;
    if 'email' = any (v_provider.channels) then
        -- A mail connection's default sender identity is its from address.
        v_config := v_config || coalesce((select jsonb_strip_nulls(jsonb_build_object('from_email', s.email, 'from_name', s.name))
                                          from public.sender_identities s
                                          where s.connection_id = v_ctx.connection_id and s.is_default), '{}');
    end if;
    select decrypted_secret::jsonb into v_credentials from vault.decrypted_secrets where id = v_secret_id;
    if v_provider.status_callback_kind is not null then
        -- The provider reports this send's status to the connection's own webhook.
        select format('%s/webhooks/%s/%s', v_provider.function_name, w.webhook_token, v_provider.status_callback_kind)
        into v_status_callback from public.connection_webhooks w where w.connection_id = v_ctx.connection_id;
    end if;
    if v_credentials is null then
        raise exception 'connection % has no credentials', v_ctx.connection_id using errcode = 'P0002';
    end if;

    v_reserve := case when v_capability.sends_messages and (v_ctx.grant_id is not null or v_ctx.member_permission_id is not null)
                      then cardinality(v_ctx.recipients) else 0 end;
    v_operation_id := private.record_operation(v_ctx, v_reserve, v_sender, p_idempotency_key, p_request_hash);

    if v_reserve > 0 then
        v_over := private.reserve_quota(v_right, v_reserve, private.utc_today());
        if v_over is not null then
            -- The call is refused: its row becomes the denial (no second row, no reservation),
            -- and its key is freed so a retry once quota is back is a new call.
            update public.operations set
                status = 'denied', quota_reserved = 0, error_code = 'quota_exceeded',
                error_message = format('%s send limit reached: %s of %s used %s, %s requested',
                    case v_over ->> 'limit' when 'agent_daily' then 'daily' when 'agent_monthly' then 'monthly'
                         when 'member_daily' then 'the member''s daily' else 'the member''s monthly' end,
                    v_over ->> 'used', v_over ->> 'limit_value',
                    case when v_over ->> 'limit' like '%daily' then 'today' else 'this month' end, v_over ->> 'requested'),
                error_details = v_over || case when v_over ->> 'limit' = 'agent_daily' then jsonb_build_object(
                    'daily_send_limit', (v_over ->> 'limit_value')::integer, 'used_today', (v_over ->> 'used')::integer)
                    else '{}' end,
                finished_at = now(), duration_ms = 0, idempotency_key = null
            where id = v_operation_id;
            return (select private.refusal(o.id, o.error_code, o.error_message, o.error_details)
                    from public.operations o where o.id = v_operation_id);
        end if;
    end if;

    return jsonb_build_object(
        'ok', true,
        'operation_id', v_operation_id,
        'user_id', v_ctx.user_id,
        'agent_id', v_ctx.agent_id,
        'workspace_id', v_ctx.workspace_id,
        'connection_id', v_ctx.connection_id,
        'permission_id', v_ctx.grant_id,
        'member_permission_id', v_ctx.member_permission_id,
        'provider', v_provider.name,
        'sender', v_sender,
        'status_callback', v_status_callback,
        'config', v_config,
        'credentials', v_credentials
    );
end
$$;
