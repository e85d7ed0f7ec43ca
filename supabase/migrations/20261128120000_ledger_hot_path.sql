/**
 * ==== Ledger hot path ====
 * Less work on every tool call, for the same answers:
 *   - operation ids are time-ordered (UUID version 7), so the ledger's primary key grows
 *     at its right edge instead of touching a random leaf of a large index on every call
 *     (each such leaf is read in and, first after a checkpoint, written whole to the WAL);
 *   - begin runs fewer statements: the capability and its provider in one read (without
 *     the tool's schemas), the connection's config, credentials and status webhook in
 *     another; resolve_right counts the live candidates as it collects them; reserve_quota
 *     walks its four counters without a query; utc_today is a plain expression;
 *   - finish gives back quota only when some is left to give back, and its commit waits
 *     for the disk again: the outcome a caller is told survives a crash of PostgreSQL.
 * `npm run bench` reports the WAL written per tool call (docs/benchmarks.md).
 */

-- ---- Section - Time-ordered ids ----

/**
 * A UUID version 7 (RFC 9562): the Unix time in milliseconds in the first 48 bits, then
 * the version, then random bits (from gen_random_uuid, whose variant bits it keeps).
 * Ids made later sort after earlier ones (within one millisecond, in any order), so an
 * index on them fills at one end. Volatile: every call is a new id.
 */
create function private.uuid_v7() returns uuid
language plpgsql volatile
set search_path = ''
as $$
begin
    -- bytes 0-5: milliseconds since the epoch; byte 6's high nibble 0100 (v4) becomes 0111 (v7)
    return encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                  from 1 for 6), 52, 1), 53, 1), 'hex')::uuid;
end
$$;

revoke execute on function private.uuid_v7() from public, anon, authenticated;
grant execute on function private.uuid_v7() to service_role;

alter table public.operations alter column id set default private.uuid_v7();

-- ---- Section - Steps ----

/** The current UTC day, the unit of daily send limits. */
create or replace function private.utc_today() returns date
language plpgsql stable
set search_path = ''
as $$
begin
    -- A plain expression (no subquery): PL/pgSQL evaluates it without running a statement.
    return (now() at time zone 'utc')::date;
end
$$;

/**
 * Which connection, and what may be done with it. The candidates are the agent's grants
 * (or the member's own access) on connections of the capability's provider, narrowed by
 * p_connection_id or p_connection_ref (a prefix of the id, from a tool-name suffix). A
 * dead right never makes a live one ambiguous; among several live ones the workspace's
 * default mail connection is chosen, else the caller must name one; a single candidate is
 * resolved even when dead (check_call_rules then says why); several dead ones are refused.
 */
create or replace function private.resolve_right(
    p_ctx private.call_context, p_provider public.service_providers, p_connection_id uuid, p_connection_ref text
) returns private.call_context
language plpgsql
set search_path = ''
as $$
declare
    v_candidates private.effective_right[];
    v_live_count integer;
    v_live private.effective_right[];
    v_right private.effective_right;
begin
    if p_ctx.agent_id is not null then
        select coalesce(array_agg(r order by r.connection_created_at, r.connection_id), '{}'),
               count(*) filter (where r.dead_reason is null)
        into v_candidates, v_live_count
        from private.agent_rights(p_ctx.agent_id, p_provider.id) r
        where (p_connection_id is null or r.connection_id = p_connection_id)
          and (p_connection_ref is null or starts_with(r.connection_id::text, lower(p_connection_ref)));
    else
        select coalesce(array_agg(r order by r.connection_created_at, r.connection_id), '{}'),
               count(*) filter (where r.dead_reason is null)
        into v_candidates, v_live_count
        from private.member_rights(p_ctx.user_id, p_provider.id) r
        where (p_connection_id is null or r.connection_id = p_connection_id)
          and (p_connection_ref is null or starts_with(r.connection_id::text, lower(p_connection_ref)));
    end if;
    -- Usually every candidate is live: then there is nothing to filter.
    v_live := case when v_live_count = cardinality(v_candidates) then v_candidates
                   else array(select c from unnest(v_candidates) c where c.dead_reason is null) end;

    if cardinality(v_live) = 1 then
        v_right := v_live[1];
    elsif cardinality(v_live) > 1 and p_connection_id is null and p_connection_ref is null
          and (select count(*) from unnest(v_live) c
               join public.connections d on d.id = c.connection_id and d.is_default_mail) = 1 then
        v_right := (select c from unnest(v_live) c join public.connections d on d.id = c.connection_id and d.is_default_mail);
    elsif cardinality(v_candidates) = 1 then
        v_right := v_candidates[1];
    elsif cardinality(v_candidates) > 1 and cardinality(v_live) = 0 then
        -- Never ask the caller to choose between connections none of which it may use.
        p_ctx.denial := private.deny(p_ctx, 'permission_denied',
                               format('none of the %s %s connections is usable now (revoked, expired or inactive)',
                                      cardinality(v_candidates), p_provider.display_name),
                               jsonb_build_object('reason', 'no_live_grant'));
        return p_ctx;
    elsif cardinality(v_candidates) = 0 then
        p_ctx.denial := private.deny(p_ctx, 'permission_denied',
                               case when p_ctx.agent_id is null then format('no %s connection', p_provider.display_name)
                                    else format('agent has no grant on a %s connection', p_provider.display_name) end,
                               jsonb_build_object('reason', 'no_grant'));
        return p_ctx;
    else
        p_ctx.denial := private.deny(p_ctx, 'invalid_request',
                               format('%s %s connections are available; name one with connection_id',
                                      cardinality(v_live), p_provider.display_name),
                               jsonb_build_object('reason', 'ambiguous_connection'));
        return p_ctx;
    end if;
    p_ctx.effective := v_right;
    p_ctx.connection_id := v_right.connection_id;
    p_ctx.workspace_id := v_right.workspace_id;
    p_ctx.grant_id := v_right.grant_id;
    p_ctx.member_permission_id := v_right.member_permission_id;
    return p_ctx;
end
$$;

/**
 * Reserves p_count messages on every counter that applies to the right, atomically:
 * the agent grant's day and month, the member permission's day and month (the member's
 * counters are shared by all their agents and their own sends). Each upsert adds only
 * while the limit holds, and its row lock serializes concurrent calls of that counter,
 * so no limit is ever overshot. Counters are taken in one fixed order (grant before
 * member, day before month), so two calls never wait on each other in a cycle. When
 * one limit refuses, what this call already added is taken back (the rows are still
 * ours, locked). Returns null when reserved, else {limit, limit_value, used, requested,
 * resets_at}.
 */
create or replace function private.reserve_quota(p_right private.effective_right, p_count integer, p_today date) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_month date := date_trunc('month', p_today)::date;
    -- The four counters, in the order they are taken; a counter without a subject is skipped.
    v_names text[] := array['agent_daily', 'agent_monthly', 'member_daily', 'member_monthly'];
    v_subject_ids uuid[] := array[p_right.grant_id, p_right.grant_id, p_right.member_permission_id, p_right.member_permission_id];
    v_subjects text[] := array['grant', 'grant', 'member', 'member'];
    v_periods text[] := array['day', 'month', 'day', 'month'];
    v_starts date[] := array[p_today, v_month, p_today, v_month];
    v_limits integer[] := array[p_right.grant_daily_limit, p_right.grant_monthly_limit,
                                p_right.member_daily_limit, p_right.member_monthly_limit];
    v_used integer;
begin
    for i in 1..4 loop
        continue when v_subject_ids[i] is null;
        v_used := null;
        if v_limits[i] is null or p_count <= v_limits[i] then
            insert into public.usage_counters as u (subject_id, subject, period, period_start, workspace_id, user_id, used)
            values (v_subject_ids[i], v_subjects[i], v_periods[i], v_starts[i], p_right.workspace_id, p_right.principal_id, p_count)
            on conflict (subject_id, period, period_start) do update set used = u.used + excluded.used
            where v_limits[i] is null or u.used + excluded.used <= v_limits[i]
            returning used into v_used;
        end if;
        if v_used is null then
            -- Take back what this call added to the counters before this one.
            update public.usage_counters u set used = u.used - p_count
            from unnest(v_subject_ids[1:i - 1], v_periods[1:i - 1], v_starts[1:i - 1]) as d (subject_id, period, period_start)
            where u.subject_id = d.subject_id and u.period = d.period and u.period_start = d.period_start;
            select u.used into v_used from public.usage_counters u
            where u.subject_id = v_subject_ids[i] and u.period = v_periods[i] and u.period_start = v_starts[i];
            return jsonb_build_object(
                'limit', v_names[i], 'limit_value', v_limits[i], 'used', coalesce(v_used, 0),
                'requested', p_count,
                'resets_at', case when v_periods[i] = 'day' then (p_today + 1)::timestamp at time zone 'utc'
                                  else (v_month + interval '1 month')::timestamp at time zone 'utc' end);
        end if;
    end loop;
    return null;
end
$$;

-- ---- Section - Begin and finish ----
/**
 * Authorizes one tool call and reserves what it needs, in one transaction (the steps
 * above, in order). Identify the caller by p_agent_key_hash, or by p_user_id (+
 * p_agent_id when an agent acts). p_sender is the send's `from`, when it names one.
 * The config returned is the connection's, with a mail connection's default sender
 * identity as its from_email / from_name. For providers that take a status callback URL
 * on each send, status_callback is its path under the functions' URL
 * (<function>/webhooks/<token>/<kind>). A channel tool (no provider) runs on the first
 * account private.resolve_channel_target picks; a failed send moves on with
 * private.fail_over_tool_call.
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
    v_webhook_token text;
    v_over jsonb;
    v_status_callback text;
begin
    v_ctx := private.resolve_caller(v_ctx, p_agent_key_hash);
    if v_ctx.denial is not null then
        return v_ctx.denial;
    end if;

    -- The capability and its provider in one read, of only the columns the steps use: the
    -- capability's row also holds the tool's schemas (tens of kB of JSON), which a whole-row
    -- read would fetch from TOAST and decompress on every call.
    select c.id, c.provider_id, c.capability_key, c.required_scope, c.sends_messages, c.channel,
           p.id, p.name, p.display_name, p.channels, p.is_enabled, p.function_name, p.status_callback_kind
    into v_capability.id, v_capability.provider_id, v_capability.capability_key, v_capability.required_scope,
         v_capability.sends_messages, v_capability.channel,
         v_provider.id, v_provider.name, v_provider.display_name, v_provider.channels, v_provider.is_enabled,
         v_provider.function_name, v_provider.status_callback_kind
    from public.integration_capabilities c
    left join public.service_providers p on p.id = c.provider_id
    where c.capability_key = p_capability;
    if not found then
        return private.deny(v_ctx, 'not_found', format('unknown tool "%s"', p_capability));
    end if;
    if v_capability.provider_id is null then
        -- A channel tool: the first account of the caller's route (or the one named).
        v_ctx := private.resolve_channel_target(v_ctx, v_capability, p_connection_id);
        if v_ctx.denial is not null then
            return v_ctx.denial;
        end if;
        select * into v_provider from public.service_providers where id = (v_ctx.effective).provider_id;
    else
        if not v_provider.is_enabled then
            return private.deny(v_ctx, 'permission_denied', format('provider %s is disabled', v_provider.name));
        end if;
        v_ctx := private.resolve_right(v_ctx, v_provider, p_connection_id, p_connection_ref);
        if v_ctx.denial is not null then
            return v_ctx.denial;
        end if;
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

    -- Credentials: read before any lock on shared rows is taken. The connection's config,
    -- its credentials (Vault) and its status webhook, in one read.
    select c.config, s.decrypted_secret::jsonb, w.webhook_token
    into v_config, v_credentials, v_webhook_token
    from public.connections c
    left join vault.decrypted_secrets s on s.id = c.secret_id
    left join public.connection_webhooks w on v_provider.status_callback_kind is not null and w.connection_id = c.id
    where c.id = v_ctx.connection_id;
    if v_credentials is null then
        raise exception 'connection % has no credentials', v_ctx.connection_id using errcode = 'P0002';
    end if;
    if 'email' = any (v_provider.channels) then
        -- A mail connection's default sender identity is its from address.
        v_config := v_config || coalesce((select jsonb_strip_nulls(jsonb_build_object('from_email', s.email, 'from_name', s.name))
                                          from public.sender_identities s
                                          where s.connection_id = v_ctx.connection_id and s.is_default), '{}');
    end if;
    if v_webhook_token is not null then
        -- The provider reports this send's status to the connection's own webhook.
        v_status_callback := format('%s/webhooks/%s/%s', v_provider.function_name, v_webhook_token, v_provider.status_callback_kind);
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

/**
 * Records a call's outcome. p_sent_count is how many recipients the provider accepted;
 * the rest of the reservation is given back, except for status 'unknown' (the send may
 * have gone out), which keeps it. Idempotent: a second finish of the same operation
 * (a retry after a lost answer) changes nothing and reports the recorded status.
 */
create or replace function private.finish_tool_call(
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
    -- The commit waits for the disk (the database's synchronous_commit, not turned off
    -- here): the outcome the caller is told must survive a crash of PostgreSQL.
    -- One statement records the outcome of a call still pending (its row lock makes a
    -- concurrent second finish wait, then find it no longer pending).
    update public.operations o set
        status = p_status,
        quota_used = case when p_status = 'unknown' then o.quota_reserved
                          else least(greatest(coalesce(p_sent_count, 0), 0), o.quota_reserved) end,
        provider_message_ids = coalesce(p_provider_message_ids, '{}'),
        response = p_response,
        error_code = p_error_code,
        error_message = p_error_message,
        error_details = p_error_details,
        duration_ms = p_duration_ms,
        finished_at = now()
    where o.id = p_operation_id and o.status = 'pending'
    returning o.* into v_operation;
    if not found then
        select * into v_operation from public.operations where id = p_operation_id;
        if not found then
            raise exception 'operation % not found', p_operation_id using errcode = 'P0002';
        end if;
        return jsonb_build_object('ok', false, 'status', v_operation.status);
    end if;
    v_used := v_operation.quota_used;
    if v_operation.quota_reserved > v_used then
        perform private.give_back_quota(v_operation, v_operation.quota_reserved - v_used);
    end if;
    return jsonb_build_object('ok', true, 'status', p_status, 'quota_used', v_used);
end
$$;
