/**
 * ---- Section - Asking the provider (reconciliation) ----
 * A send call is 'unknown' when it may have been sent: finish recorded a provider
 * timeout or a connection lost after the request went out, or the reconciler of the tool
 * call reliability section closed it because no outcome was recorded before the deadline
 * (quota kept either way). SQL cannot call providers. Where a provider can be asked what
 * became of a call, the provider's function asks it and records the answer here:
 *   private.provider_reconcile_grace      how long after the deadline "no record" is conclusive
 *   private.operations_to_reconcile       the unknown calls of one provider to ask about
 *   private.record_provider_reconciliation  records one answer (found / not found / no answer)
 *   private.invoke_provider_reconciler    what the pg_cron job runs: pg_net POST to the function
 * Today only ClickSend can be asked: its message history lists every message it
 * accepted with our operation id (custom_string). SendGrid and SMTP cannot be asked by
 * operation id cheaply; their lost calls stay 'unknown' (docs/operations.md).
 */

/**
 * How long after a call's pending deadline a provider search that finds nothing counts
 * as "the provider has no record". Set per database:
 * `alter database postgres set switchboard.provider_reconcile_grace = '15 minutes'`.
 * Default 10 minutes; never less than 2 minutes (the search window reaches 1 minute past
 * the deadline for clock differences). A malformed setting falls back to the default.
 */
create function private.provider_reconcile_grace() returns interval
language plpgsql stable
set search_path = ''
as $$
begin
    return greatest(coalesce(nullif(current_setting('switchboard.provider_reconcile_grace', true), '')::interval,
                             interval '10 minutes'),
                    interval '2 minutes');
exception when others then
    return interval '10 minutes';
end
$$;

-- The unknown set is small; the listing below must not scan every operation ever made.
create index operations_unknown_created_at_idx on public.operations (created_at) where status = 'unknown';

/**
 * The calls of one provider to ask about, for the service only: send calls that are
 * 'unknown' (a provider timeout or lost connection recorded by finish, or no outcome
 * recorded before the deadline), on a connection that still exists, made in the last 24 hours, at most p_limit (1-200) of them. Calls never
 * asked come first (oldest first), then the ones asked longest ago, so a call the
 * provider keeps failing to answer about cannot starve the others.
 * Each item: operation_id, capability_key, recipients, recipient_count, created_at,
 * window_from / window_to (when the provider can have accepted it: from 1 minute before
 * the call to 1 minute after its deadline), conclusive_after (from when a search of the
 * whole window that finds nothing proves it was not sent; null for a scheduled send,
 * whose provider time is not the call's), and the connection's config and decrypted
 * credentials (the same rule as private.connection_for_test: service_role only).
 */
create function private.operations_to_reconcile(p_provider text, p_limit integer default 50) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_deadline interval := private.pending_deadline();
    v_grace interval := private.provider_reconcile_grace();
begin
    return coalesce((
        with candidates as (
            select o.id, o.capability_key, o.recipients, o.recipient_count, o.created_at,
                   o.request_summary ? 'schedule_at' as scheduled,
                   (o.error_details #>> '{reconciliation,asked_at}')::timestamptz as asked_at,
                   c.id as connection_id, c.config, c.secret_id
            from public.operations o
            join public.integration_capabilities cap on cap.capability_key = o.capability_key and cap.sends_messages
            join public.connections c on c.id = o.connection_id and c.deleted_at is null
            join public.service_providers p on p.id = c.provider_id and p.name = p_provider
            where o.status = 'unknown'
              and o.created_at > now() - interval '24 hours'
            order by asked_at nulls first, o.created_at
            limit least(greatest(coalesce(p_limit, 50), 1), 200)
        )
        select jsonb_agg(jsonb_build_object(
                   'operation_id', k.id,
                   'capability_key', k.capability_key,
                   'recipients', to_jsonb(k.recipients),
                   'recipient_count', k.recipient_count,
                   'created_at', k.created_at,
                   'window_from', k.created_at - interval '1 minute',
                   'window_to', k.created_at + v_deadline + interval '1 minute',
                   'conclusive_after', case when k.scheduled then null else k.created_at + v_deadline + v_grace end,
                   'connection_id', k.connection_id,
                   'config', k.config,
                   'credentials', (select s.decrypted_secret::jsonb from vault.decrypted_secrets s where s.id = k.secret_id))
                 order by k.asked_at nulls first, k.created_at)
        from candidates k
    ), '[]'::jsonb);
end
$$;

/**
 * Records what the provider said about one call listed by private.operations_to_reconcile.
 * p_answer:
 *   'found'       the provider has messages for the call; p_messages = [{message_id, to}].
 *                 All recipients found → 'succeeded' (quota stays used). Some found, once
 *                 the answer is conclusive → 'partial', the rest of the reservation given
 *                 back; before that → stays 'unknown'.
 *   'not_found'   the whole search window was read and holds nothing for the call. Once
 *                 conclusive (now ≥ conclusive_after; never for a scheduled send) →
 *                 'failed' with reason 'provider_has_no_record' and the reservation given
 *                 back to the day it was reserved for; before that → stays 'unknown'.
 *   'unavailable' the provider could not be asked (p_note says why) → stays 'unknown'.
 * A call still 'unknown' gets error_details.reconciliation {attempts, asked_at,
 * last_answer, note} and is asked again later. Acts only on a row still in the state it
 * was listed in (locked, so two reconcilers never both give quota back): anything else
 * returns {ok:false, status} and changes nothing. Returns {ok:true, status}.
 */
create function private.record_provider_reconciliation(
    p_operation_id uuid,
    p_provider text,
    p_answer text,
    p_messages jsonb default '[]',
    p_note text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_operation public.operations;
    v_provider text;
    v_sends boolean;
    v_conclusive boolean;
    v_ids text[];
    v_found integer;
    v_status text;
    v_used integer;
    v_reconciled jsonb;
    v_note text := left(p_note, 500);
begin
    if p_answer is null or p_answer not in ('found', 'not_found', 'unavailable') then
        raise exception 'invalid answer %', p_answer using errcode = '22023';
    end if;
    if p_messages is null or jsonb_typeof(p_messages) <> 'array' then
        raise exception 'p_messages must be a JSON array' using errcode = '22023';
    end if;

    select * into v_operation from public.operations where id = p_operation_id for update;
    if not found then
        return jsonb_build_object('ok', false, 'status', null);
    end if;
    select p.name, cap.sends_messages into v_provider, v_sends
    from public.connections c
    join public.service_providers p on p.id = c.provider_id
    join public.integration_capabilities cap on cap.capability_key = v_operation.capability_key
    where c.id = v_operation.connection_id;
    if v_operation.status <> 'unknown'
       or v_provider is distinct from p_provider or v_sends is not true then
        return jsonb_build_object('ok', false, 'status', v_operation.status);
    end if;

    v_conclusive := not (v_operation.request_summary ? 'schedule_at')
                    and now() >= v_operation.created_at + private.pending_deadline() + private.provider_reconcile_grace();
    select coalesce(array_agg(distinct m ->> 'message_id' order by m ->> 'message_id'), '{}')
    into v_ids
    from jsonb_array_elements(case when p_answer = 'found' then p_messages else '[]' end) m
    where coalesce(m ->> 'message_id', '') <> '';
    v_found := least(cardinality(v_ids), v_operation.recipient_count);

    v_status := case
        when p_answer = 'found' and v_found > 0 and v_found >= v_operation.recipient_count then 'succeeded'
        when p_answer = 'found' and v_found > 0 and v_conclusive then 'partial'
        when p_answer = 'not_found' and v_conclusive then 'failed'
        else 'unknown' end;

    if v_status = 'unknown' then
        update public.operations set error_details = error_details || jsonb_build_object('reconciliation', jsonb_build_object(
            'attempts', coalesce((error_details #>> '{reconciliation,attempts}')::integer, 0) + 1,
            'asked_at', now(),
            'last_answer', p_answer,
            'found', v_found,
            'note', v_note))
        where id = p_operation_id;
        return jsonb_build_object('ok', true, 'status', 'unknown');
    end if;

    v_reconciled := jsonb_build_object(
        'by', 'provider_history',
        'provider', p_provider,
        'at', now(),
        'attempts', coalesce((v_operation.error_details #>> '{reconciliation,attempts}')::integer, 0) + 1,
        'note', case v_status
            when 'failed' then 'The call''s outcome was unknown; the provider has no record of its message, so it was not sent.'
            when 'partial' then 'The call''s outcome was unknown; the provider''s history shows only some recipients'' messages.'
            else 'The call''s outcome was unknown; the provider''s history shows its messages were accepted.' end);

    -- Quota: what the provider accepted stays used; the rest goes back to the day it was
    -- reserved for, never below 0, once (the row is locked and no longer 'unknown' after).
    v_used := case when v_status = 'failed' then 0 else least(v_found, v_operation.quota_reserved) end;
    perform private.give_back_quota(v_operation, v_operation.quota_used - v_used);

    if v_status = 'failed' then
        update public.operations set
            status = 'failed',
            quota_used = 0,
            error_code = 'provider_error',
            error_message = 'The provider has no record of this message: it was not sent, and its quota was given back. '
                            'It is safe to send it again with a new idempotency key.',
            error_details = jsonb_build_object('reason', 'provider_has_no_record', 'may_have_been_sent', false,
                                               'operation_id', v_operation.id, 'reconciled', v_reconciled)
        where id = p_operation_id;
    else
        update public.operations set
            status = v_status,
            quota_used = v_used,
            provider_message_ids = v_ids,
            response = jsonb_build_object(
                'operation_id', v_operation.id,
                'status', v_status,
                'sent', v_found,
                'failed', v_operation.recipient_count - v_found,
                'provider_message_ids', to_jsonb(v_ids),
                'reconciled', v_reconciled),
            error_code = null,
            error_message = null,
            error_details = null
        where id = p_operation_id;
    end if;
    return jsonb_build_object('ok', true, 'status', v_status, 'quota_used', v_used);
end
$$;

grant execute on function
    private.operations_to_reconcile(text, integer),
    private.record_provider_reconciliation(uuid, text, text, jsonb, text)
to service_role;

/**
 * What the pg_cron job runs: POSTs to <project_url>/functions/v1/<p_function>/reconcile
 * through pg_net, with the service key, both read from Vault at run time (Supabase's
 * "Scheduling Edge Functions" recipe): the secrets `project_url`
 * (https://<ref>.supabase.co) and `service_role_key` (a secret key sb_secret_… or the
 * legacy service_role JWT). Without them it warns and does nothing. Returns pg_net's
 * request id. Owner only: it reads Vault and calls out.
 */
create function private.invoke_provider_reconciler(p_function text) returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_url text;
    v_key text;
    v_request bigint;
begin
    if p_function !~ '^[a-z][a-z0-9-]*$' then
        raise exception 'invalid function name %', p_function using errcode = '22023';
    end if;
    select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
    select decrypted_secret into v_key from vault.decrypted_secrets where name = 'service_role_key';
    if v_url is null or v_key is null then
        raise warning 'switchboard: Vault secrets project_url and service_role_key are required to call /%/reconcile; not called', p_function;
        return null;
    end if;
    -- Dynamic (schema named at run time) so the function exists and lints where pg_net is not installed.
    execute format('select %I.http_post(url := $1, body := ''{}''::jsonb, headers := $2, timeout_milliseconds := 60000)', 'net')
        into v_request
        using rtrim(v_url, '/') || '/functions/v1/' || p_function || '/reconcile',
              jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key, 'apikey', v_key);
    return v_request;
end
$$;
revoke execute on function private.invoke_provider_reconciler(text) from public;

/**
 * ---- Section - Provider reconciler schedule (Supabase Cron + pg_net) ----
 * Where pg_cron is enabled in this database (the reconciler section enables it when it
 * can) and pg_net is available, the job `switchboard-reconcile-providers` asks ClickSend
 * every 5 minutes. Elsewhere the migration says how to schedule or run it.
 */
do $$
begin
    if exists (select 1 from pg_extension where extname = 'pg_cron')
       and exists (select 1 from pg_available_extensions where name = 'pg_net') then
        create extension if not exists pg_net with schema extensions;
        perform cron.schedule('switchboard-reconcile-providers', '*/5 * * * *',
                              $job$select private.invoke_provider_reconciler('clicksend')$job$);
    else
        raise notice 'pg_cron or pg_net is not available in database %: to ask ClickSend about lost calls, POST to <functions url>/clicksend/reconcile with the service key every 5 minutes (with both extensions: select cron.schedule(''switchboard-reconcile-providers'', ''*/5 * * * *'', $q$select private.invoke_provider_reconciler(''clicksend'')$q$) after storing the Vault secrets project_url and service_role_key)', current_database();
    end if;
end
$$;
