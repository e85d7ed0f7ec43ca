/**
 * ---- Section - Tool call reliability ----
 * No outcome is ever lost, and the per-call path holds as few locks as it can:
 *   private.pending_deadline          how long a call may stay 'pending' (configurable)
 *   private.mark_operation_unknown    the one way a stale 'pending' call is closed
 *   private.reconcile_pending_operations  the Supabase Cron job that closes them
 *   private.give_back_quota           the one way reserved quota returns
 *   private.begin_tool_call           (replaced) quota reserved by its last statement,
 *                                     so the counter's row lock is held for the commit
 *                                     only; stale keyed calls are closed and replayed
 *   private.finish_tool_call          (replaced) touches the operation and, only when
 *                                     quota is given back, the counter: no grant row
 * The per-grant running total and last-use time lived on agent_permissions, a second
 * hot row every call of a grant waited on; both are derivable (usage_counters,
 * operations) and are dropped.
 */

alter table public.agent_permissions drop column usage_count, drop column last_used_at;
comment on table public.usage_counters is
    'Messages sent per grant per UTC day: reserved by private.begin_tool_call, unused reservations given back by private.finish_tool_call. A grant''s total is the sum of its rows.';

/**
 * How long a call may stay 'pending' before it is presumed lost (the functions host
 * died or the database went away between the provider call and finish). Set per
 * database: `alter database postgres set switchboard.pending_deadline = '10 minutes'`.
 * Default 5 minutes: far above the longest provider timeout plus finish retries.
 */
create function private.pending_deadline() returns interval
language plpgsql stable
set search_path = ''
as $$
begin
    return coalesce(nullif(current_setting('switchboard.pending_deadline', true), '')::interval, interval '5 minutes');
exception when others then
    -- A malformed setting must not stop every call: fall back to the default.
    return interval '5 minutes';
end
$$;

/**
 * Closes one stale 'pending' operation as 'unknown': the message may have gone out,
 * so its reserved quota is kept and a keyed retry replays this outcome instead of
 * sending again. Returns false when the operation is no longer pending.
 */
create function private.mark_operation_unknown(p_operation_id uuid, p_reason text) returns boolean
language plpgsql
set search_path = ''
as $$
begin
    update public.operations set
        status = 'unknown',
        quota_used = quota_reserved,
        error_code = 'service_unavailable',
        error_message = 'No outcome was recorded for this call; the message may have been sent. '
                        'It is marked unknown and its quota is kept. Do not resend it without the same idempotency key.',
        error_details = jsonb_build_object('reason', p_reason, 'may_have_been_sent', true, 'operation_id', id),
        finished_at = now()
    where id = p_operation_id and status = 'pending';
    return found;
end
$$;

/**
 * The reconciler (scheduled every minute with Supabase Cron when pg_cron is
 * available): marks every operation still 'pending' past private.pending_deadline()
 * as 'unknown', keeping its quota. Rows a live finish is recording are skipped and
 * looked at again next run. Returns how many it closed.
 */
create function private.reconcile_pending_operations() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_closed integer := 0;
begin
    for v_id in
        select id from public.operations
        where status = 'pending' and created_at < now() - private.pending_deadline()
        order by created_at
        for update skip locked
    loop
        if private.mark_operation_unknown(v_id, 'no_outcome_recorded_before_deadline') then
            v_closed := v_closed + 1;
        end if;
    end loop;
    return v_closed;
end
$$;
comment on function private.reconcile_pending_operations() is
    'Closes operations left pending past private.pending_deadline() as unknown (quota kept). Run by the switchboard-reconcile cron job.';
create index operations_pending_created_at_idx on public.operations (created_at) where status = 'pending';

/**
 * Authorizes one tool call and reserves what it needs (see the tool call path
 * section). Identify the caller by p_agent_key_hash, or by p_user_id (+ p_agent_id
 * when an agent acts). Returns {ok:true, operation_id, credentials, config, ...},
 * {ok:true, replay:true, ...} for a repeated idempotency key whose call ended, or
 * {ok:false, error:{code, message, details}}; a keyed call still in flight is a
 * conflict with details.retry_after.
 * Order matters for concurrency: every check, the Vault read and the operation
 * insert come first; the quota upsert is the last statement, so the counter row of
 * a busy grant is locked only for the commit.
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
    v_reserve integer;
    v_existing public.operations;
    v_operation_id uuid;
    v_today date := private.utc_today();
    v_credentials jsonb;
    v_deadline interval;
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

    -- 5. Idempotency: a key whose call ended replays its recorded outcome (unknown
    --    included); only a call genuinely in flight is a conflict. One left pending
    --    past the deadline is presumed lost: closed as unknown, then replayed.
    if p_idempotency_key is not null then
        select * into v_existing from public.operations
        where user_id = v_user_id and agent_id is not distinct from v_agent_id and idempotency_key = p_idempotency_key;
        if found then
            if v_existing.request_hash is distinct from p_request_hash or v_existing.capability_key <> p_capability then
                return jsonb_build_object('ok', false, 'operation_id', v_existing.id, 'error', jsonb_build_object(
                    'code', 'conflict', 'message', 'idempotency key was used with a different request', 'details', null));
            end if;
            if v_existing.status = 'pending' then
                v_deadline := private.pending_deadline();
                if v_existing.created_at >= now() - v_deadline then
                    return jsonb_build_object('ok', false, 'operation_id', v_existing.id, 'error', jsonb_build_object(
                        'code', 'conflict', 'message', 'a call with this idempotency key is still in progress; retry later with the same key',
                        'details', jsonb_build_object('retry_after',
                            least(5, greatest(1, ceil(extract(epoch from v_existing.created_at + v_deadline - now())))::integer))));
                end if;
                perform private.mark_operation_unknown(v_existing.id, 'no_outcome_recorded_before_deadline');
                select * into v_existing from public.operations where id = v_existing.id;
            end if;
            return jsonb_build_object('ok', true, 'replay', true, 'operation_id', v_existing.id, 'status', v_existing.status,
                                      'response', v_existing.response,
                                      'error', case when v_existing.error_code is null then null else jsonb_build_object(
                                          'code', v_existing.error_code, 'message', v_existing.error_message, 'details', v_existing.error_details) end);
        end if;
    end if;

    -- 6. Credentials: read before any lock on shared rows is taken.
    select decrypted_secret::jsonb into v_credentials from vault.decrypted_secrets where id = v_connection.secret_id;
    if v_credentials is null then
        raise exception 'connection % has no credentials', v_connection.id using errcode = 'P0002';
    end if;

    -- 7. Record the call.
    v_reserve := case when v_agent_id is not null and v_capability.sends_messages then v_count else 0 end;
    begin
        insert into public.operations (user_id, agent_id, connection_id, permission_id, capability_key, auth_mode, status,
                                       recipients, recipient_count, quota_reserved, quota_date, request_summary,
                                       request_hash, idempotency_key)
        values (v_user_id, v_agent_id, v_connection.id, v_permission.id, p_capability, p_auth_mode, 'pending',
                v_recipients, v_count, v_reserve, v_today, coalesce(p_request_summary, '{}'), p_request_hash, p_idempotency_key)
        returning id into v_operation_id;
    exception when unique_violation then
        -- A concurrent call with the same idempotency key won the race.
        raise exception 'a call with this idempotency key is already in progress' using errcode = 'PT409';
    end;

    -- 8. Quota, last: reserve every recipient atomically. The upsert's row lock
    --    serializes concurrent calls of one grant (no overshoot) and is held only
    --    until this transaction commits, right after.
    if v_reserve > 0 then
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
            -- The call is refused: its row becomes the denial (no second row, no reservation).
            update public.operations set
                status = 'denied', quota_reserved = 0, error_code = 'quota_exceeded',
                error_message = format('daily send limit reached: %s of %s used today, %s requested',
                                       coalesce(v_used, 0), v_permission.daily_send_limit, v_count),
                error_details = jsonb_build_object('daily_send_limit', v_permission.daily_send_limit, 'used_today', coalesce(v_used, 0),
                                                   'requested', v_count, 'resets_at', (v_today + 1)::timestamp at time zone 'utc'),
                finished_at = now(), duration_ms = 0,
                -- A refused call may be retried with its key once quota is back.
                idempotency_key = null
            where id = v_operation_id;
            return jsonb_build_object('ok', false, 'operation_id', v_operation_id, 'error',
                (select jsonb_build_object('code', o.error_code, 'message', o.error_message, 'details', o.error_details)
                 from public.operations o where o.id = v_operation_id));
        end if;
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
 * Gives back p_amount of an operation's reserved quota, to the day it was reserved for,
 * never below 0. The one place quota returns: finish (what the provider did not accept)
 * and the provider reconciler (what the provider has no record of).
 */
create function private.give_back_quota(p_operation public.operations, p_amount integer) returns void
language sql
set search_path = ''
as $$
    update public.usage_counters
    set used = greatest(used - p_amount, 0)
    where p_amount > 0 and permission_id = p_operation.permission_id and usage_date = p_operation.quota_date
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
    -- Recording an outcome need not wait for the WAL flush: if a crash lost this commit,
    -- the operation would stay 'pending' with its quota reserved (the safe side) until
    -- the reconciler closes it as unknown.
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
    perform private.give_back_quota(v_operation, v_operation.quota_reserved - v_used);

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

grant execute on function private.reconcile_pending_operations() to service_role;

/**
 * ---- Section - Reconciler schedule (Supabase Cron) ----
 * On Supabase, pg_cron lives in the `postgres` database. Where it can be enabled here
 * (the library is preloaded and this is cron.database_name) the job is scheduled;
 * elsewhere the migration says so and leaves scheduling to the operator (the function
 * is the whole job: `select private.reconcile_pending_operations()`).
 */
do $$
begin
    if exists (select 1 from pg_available_extensions where name = 'pg_cron')
       and current_setting('cron.database_name', true) = current_database() then
        create extension if not exists pg_cron;
        perform cron.schedule('switchboard-reconcile', '* * * * *', 'select private.reconcile_pending_operations()');
    else
        raise notice 'pg_cron is not available in database %; schedule "select private.reconcile_pending_operations()" every minute yourself', current_database();
    end if;
end
$$;
