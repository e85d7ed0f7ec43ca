/**
 * ==== Ledger ====
 * The tool-call path. Every tool call is exactly two round trips:
 *   private.begin_tool_call   one transaction, composed of small named steps:
 *       resolve_caller        who is calling (agent key, or user + agent) and for whom
 *       resolve_right         which connection, and what may be done with it: the
 *                             agent's grant ∩ its principal's member permission
 *       check_call_rules      scope, sending, expiry, recipients per message, recipient rules
 *       resolve_sender        the number a send goes out from
 *       replay_keyed_call     a repeated idempotency key replays the recorded outcome
 *       record_operation      the ledger row (before any counter is locked)
 *       reserve_quota         daily and monthly, agent and member, atomically, last
 *     and returns the decrypted credentials: the one route to them, for a call just
 *     authorized, for service_role only.
 *   private.finish_tool_call  records the outcome; gives back unused quota.
 * Denials are recorded too (private.deny). A reconciler closes calls left pending past a
 * deadline; another asks the provider where it can (ClickSend).
 */

-- ---- Section - Tables ----
create table public.operations (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    /* The ledger keeps what it recorded when the things it names go: the ids below are
       plain references, without foreign keys (also sparing every call five key checks
       and their row locks on the busiest rows: the agent, its grant, the member). */
    /* the member the call was made for: the agent's principal, or the member acting directly */
    user_id uuid not null,
    agent_id uuid,
    connection_id uuid,
    /* the agent grant and the member permission the call was counted against */
    permission_id uuid,
    member_permission_id uuid,
    capability_key text not null,
    /* how the caller authenticated: user, user_agent (JWT + agent_id), agent_key, service */
    auth_mode text not null check (auth_mode in ('user', 'user_agent', 'agent_key', 'service')),
    status text not null check (status in ('pending', 'succeeded', 'partial', 'failed', 'unknown', 'denied')),
    recipients text[] not null default '{}',
    recipient_count integer not null default 0,
    /* the number the message went out from, when a number was chosen */
    sender text,
    /* quota reserved at begin and kept at finish (recipients the provider accepted) */
    quota_reserved integer not null default 0,
    quota_used integer not null default 0,
    quota_date date,
    request_summary jsonb not null default '{}',
    request_hash text,
    /* caller-facing result, replayed for a repeated idempotency key; never secrets */
    response jsonb,
    provider_message_ids text[] not null default '{}',
    error_code text,
    error_message text,
    error_details jsonb,
    idempotency_key text check (length(idempotency_key) between 1 and 255),
    duration_ms integer,
    created_at timestamptz not null default now(),
    finished_at timestamptz
);
comment on table public.operations is 'The ledger: one row per attempted tool call, allowed or denied.';
create index operations_workspace_id_created_at_idx on public.operations (workspace_id, created_at desc);
create index operations_user_id_created_at_idx on public.operations (user_id, created_at desc);
create index operations_agent_id_idx on public.operations (agent_id, created_at desc);
create index operations_connection_id_idx on public.operations (connection_id, created_at desc);
create index operations_provider_message_ids_idx on public.operations using gin (provider_message_ids);
create unique index operations_idempotency_key_idx on public.operations (user_id, agent_id, idempotency_key) nulls not distinct
    where idempotency_key is not null;
create index operations_pending_created_at_idx on public.operations (created_at) where status = 'pending';
create index operations_unknown_created_at_idx on public.operations (created_at) where status = 'unknown';

create table public.usage_counters (
    /* an agent grant (agent_permissions.id) or a member permission (member_permissions.id) */
    subject_id uuid not null,
    subject text not null check (subject in ('grant', 'member')),
    period text not null check (period in ('day', 'month')),
    /* the UTC day, or the first day of the UTC month */
    period_start date not null,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    /* the member whose sends these are (the grant's agent's principal, or the member) */
    user_id uuid not null references auth.users (id) on delete cascade,
    used integer not null default 0 check (used >= 0),
    primary key (subject_id, period, period_start)
);
comment on table public.usage_counters is
    'Messages sent per agent grant and per member permission, per UTC day and month: reserved by private.reserve_quota, unused reservations given back by private.give_back_quota.';
create index usage_counters_workspace_id_idx on public.usage_counters (workspace_id);
create index usage_counters_user_id_idx on public.usage_counters (user_id);

alter table public.operations enable row level security;
alter table public.usage_counters enable row level security;
grant select on public.operations, public.usage_counters to authenticated;
grant select, insert, update, delete on public.operations, public.usage_counters to service_role;

-- A member sees the calls made for them (by them or their agents); admins see the workspace's.
create policy operations_select_policy on public.operations
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy usage_counters_select_policy on public.usage_counters
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

-- ---- Section - Call context and denials ----

/** What one call is about, carried from step to step of begin_tool_call. */
create type private.call_context as (
    capability text,
    auth_mode text,
    user_id uuid,
    agent_id uuid,
    workspace_id uuid,
    connection_id uuid,
    grant_id uuid,
    member_permission_id uuid,
    recipients text[],
    summary jsonb,
    /* filled by the steps: the right the call runs on, the number it sends from, a refusal */
    effective private.effective_right,
    sender text,
    denial jsonb
);

/** A refusal in the begin result's shape: {ok:false, operation_id, error:{code, message, details}}. */
create function private.refusal(p_operation_id uuid, p_code text, p_message text, p_details jsonb) returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object('ok', false, 'operation_id', p_operation_id,
                              'error', jsonb_build_object('code', p_code, 'message', p_message, 'details', p_details))
$$;

/**
 * Records a denied call (when the caller and workspace are known: an unknown agent key
 * has no one to record it for) and returns the refusal.
 */
create function private.deny(p_ctx private.call_context, p_code text, p_message text, p_details jsonb default null)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_operation_id uuid;
begin
    if p_ctx.user_id is not null and p_ctx.workspace_id is not null then
        insert into public.operations (workspace_id, user_id, agent_id, connection_id, permission_id, member_permission_id,
                                       capability_key, auth_mode, status, recipients, recipient_count, request_summary,
                                       error_code, error_message, error_details, finished_at, duration_ms)
        values (p_ctx.workspace_id, p_ctx.user_id, p_ctx.agent_id, p_ctx.connection_id, p_ctx.grant_id,
                p_ctx.member_permission_id, p_ctx.capability, p_ctx.auth_mode, 'denied', coalesce(p_ctx.recipients, '{}'),
                coalesce(cardinality(p_ctx.recipients), 0), coalesce(p_ctx.summary, '{}'), p_code, p_message, p_details,
                now(), 0)
        returning id into v_operation_id;
    end if;
    return private.refusal(v_operation_id, p_code, p_message, p_details);
end
$$;

-- ---- Section - The steps of begin ----

/**
 * Who is calling, and for whom. By agent key (p_agent_key_hash): the key's agent, acting
 * for its principal. Otherwise p_ctx.user_id, with p_ctx.agent_id when one of their agents
 * acts. Fills user_id (the principal), agent_id and workspace_id (the agent's, or the
 * member's personal workspace until a connection is chosen), or returns a denial.
 */
create function private.resolve_caller(p_ctx private.call_context, p_agent_key_hash text) returns private.call_context
language plpgsql
set search_path = ''
as $$
declare
    v_key_id uuid;
    v_key_revoked_at timestamptz;
    v_key_expires_at timestamptz;
    v_key_last_used_at timestamptz;
    v_agent_id uuid;
    v_agent_user uuid;
    v_agent_workspace uuid;
    v_agent_active boolean;
    v_principal_role text;
begin
    if p_agent_key_hash is null and p_ctx.user_id is null then
        p_ctx.denial := private.refusal(null, 'unauthorized', 'no caller identity', null);
        return p_ctx;
    end if;
    -- The key (when one is given), its agent (or the one named) and the agent's principal's
    -- role in its workspace, in one statement.
    select k.id, k.revoked_at, k.expires_at, k.last_used_at, a.id, a.user_id, a.workspace_id, a.is_active, m.role
    into v_key_id, v_key_revoked_at, v_key_expires_at, v_key_last_used_at,
         v_agent_id, v_agent_user, v_agent_workspace, v_agent_active, v_principal_role
    from (select 1) as one
    left join public.agent_keys k on p_agent_key_hash is not null and k.key_hash = p_agent_key_hash
    left join public.agents a on a.id = case when p_agent_key_hash is not null then k.agent_id else p_ctx.agent_id end
    left join public.workspace_members m on m.workspace_id = a.workspace_id and m.user_id = a.user_id;
    if p_agent_key_hash is not null and v_key_id is null then
        p_ctx.denial := private.refusal(null, 'unauthorized', 'invalid agent key', null);
        return p_ctx;
    end if;

    if v_key_id is not null or p_ctx.agent_id is not null then
        -- Never reveal another member's agent: the same answer as a missing one.
        if v_agent_id is null or (v_key_id is null and v_agent_user <> p_ctx.user_id) then
            p_ctx.agent_id := null;
            p_ctx.workspace_id := private.personal_workspace_of(p_ctx.user_id);
            p_ctx.denial := private.deny(p_ctx, 'not_found', 'agent not found');
            return p_ctx;
        end if;
        p_ctx.agent_id := v_agent_id;
        p_ctx.user_id := v_agent_user;
        p_ctx.workspace_id := v_agent_workspace;
    else
        p_ctx.workspace_id := private.personal_workspace_of(p_ctx.user_id);
    end if;

    if v_key_id is not null then
        if v_key_revoked_at is not null or (v_key_expires_at is not null and v_key_expires_at <= now()) then
            p_ctx.denial := private.deny(p_ctx, 'unauthorized',
                                   case when v_key_revoked_at is not null then 'agent key revoked' else 'agent key expired' end);
            return p_ctx;
        end if;
        if v_key_last_used_at is null or v_key_last_used_at < now() - interval '1 minute' then
            update public.agent_keys set last_used_at = now() where id = v_key_id;
        end if;
    end if;
    if v_agent_id is not null and not v_agent_active then
        p_ctx.denial := private.deny(p_ctx, 'permission_denied', 'agent is disabled', jsonb_build_object('reason', 'agent_disabled'));
    elsif v_agent_id is not null and v_principal_role is null then
        p_ctx.denial := private.deny(p_ctx, 'permission_denied', 'the member this agent acts for is no longer in its workspace',
                               jsonb_build_object('reason', 'principal_not_member'));
    end if;
    return p_ctx;
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
create function private.resolve_right(
    p_ctx private.call_context, p_provider public.service_providers, p_connection_id uuid, p_connection_ref text
) returns private.call_context
language plpgsql
set search_path = ''
as $$
declare
    v_candidates private.effective_right[];
    v_live private.effective_right[];
    v_right private.effective_right;
begin
    if p_ctx.agent_id is not null then
        select coalesce(array_agg(r order by r.connection_created_at, r.connection_id), '{}') into v_candidates
        from private.agent_rights(p_ctx.agent_id, p_provider.id) r
        where (p_connection_id is null or r.connection_id = p_connection_id)
          and (p_connection_ref is null or starts_with(r.connection_id::text, lower(p_connection_ref)));
    else
        select coalesce(array_agg(r order by r.connection_created_at, r.connection_id), '{}') into v_candidates
        from private.member_rights(p_ctx.user_id, p_provider.id) r
        where (p_connection_id is null or r.connection_id = p_connection_id)
          and (p_connection_ref is null or starts_with(r.connection_id::text, lower(p_connection_ref)));
    end if;
    v_live := array(select c from unnest(v_candidates) c where c.dead_reason is null);

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

/** The message of a dead right, by its reason. */
create function private.dead_right_message(p_reason text) returns text
language sql immutable
set search_path = ''
as $$
    select case p_reason
        when 'agent_disabled' then 'agent is disabled'
        when 'revoked' then 'grant revoked'
        when 'expired' then 'grant expired'
        when 'principal_not_member' then 'the member this call is for is no longer in the workspace'
        when 'no_member_permission' then 'the member this call is for holds no permission on this connection'
        when 'member_permission_expired' then 'the member''s permission on this connection expired'
        when 'connection_inactive' then 'connection is not active'
        else p_reason end
$$;

/**
 * The rules of one call on a resolved right: the right is live, the capability's scope
 * is held, sending needs can_send, the recipients per message and the recipient rules
 * of both the grant and the member permission. Returns the refusal or null.
 */
create function private.check_call_rules(
    p_ctx private.call_context, p_right private.effective_right, p_capability public.integration_capabilities
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_count integer := cardinality(p_ctx.recipients);
    v_refused text;
begin
    if p_right.dead_reason is not null then
        return private.deny(p_ctx, 'permission_denied',
                            case when p_right.dead_reason = 'connection_inactive'
                                 then format('connection is %s', (select c.status from public.connections c
                                                                  where c.id = p_right.connection_id))
                                 else private.dead_right_message(p_right.dead_reason) end,
                            jsonb_strip_nulls(jsonb_build_object('reason', p_right.dead_reason,
                                'expired_at', case when p_right.dead_reason like '%expired' then p_right.expires_at end)));
    end if;
    if p_capability.required_scope <> all (p_right.scopes) then
        return private.deny(p_ctx, 'permission_denied',
                            format('%s scope "%s"', case when p_ctx.agent_id is null then 'you lack' else 'agent lacks' end,
                                   p_capability.required_scope),
                            jsonb_build_object('reason', 'scope', 'required_scope', p_capability.required_scope));
    end if;
    if p_capability.sends_messages and not p_right.can_send then
        return private.deny(p_ctx, 'permission_denied', 'the member this call is for may not send on this connection',
                            jsonb_build_object('reason', 'member_cannot_send'));
    end if;
    if p_capability.sends_messages and v_count > p_right.max_recipients_per_message then
        return private.deny(p_ctx, 'permission_denied',
                            format('%s recipients; this agent may address at most %s per message', v_count, p_right.max_recipients_per_message),
                            jsonb_build_object('reason', 'recipient_limit', 'max_recipients_per_message', p_right.max_recipients_per_message));
    end if;
    if cardinality(p_right.allowed_recipients) > 0 or cardinality(p_right.blocked_recipients) > 0 then
        v_refused := private.first_refused_recipient(p_ctx.recipients, p_right.allowed_recipients, p_right.blocked_recipients);
    end if;
    if v_refused is null and (cardinality(p_right.member_allowed_recipients) > 0 or cardinality(p_right.member_blocked_recipients) > 0) then
        v_refused := private.first_refused_recipient(p_ctx.recipients, p_right.member_allowed_recipients,
                                                     p_right.member_blocked_recipients);
    end if;
    if v_refused is not null then
        return private.deny(p_ctx, 'permission_denied',
                            format('recipient %s is not allowed for this %s', v_refused,
                                   case when p_ctx.agent_id is null then 'member' else 'agent' end),
                            jsonb_build_object('reason', 'recipient_not_allowed', 'recipient', v_refused));
    end if;
    return null;
end
$$;

/**
 * The number a send goes out from. On a connection without registered numbers the
 * caller's `from` passes through (the provider's own default applies without one).
 * With numbers: a named `from` must be a number the principal may use (assigned to
 * them or in the pool; any for owners and admins); without one, the member's default,
 * then the connection's default, then the first number they may use.
 */
create function private.resolve_sender(
    p_ctx private.call_context, p_capability public.integration_capabilities, p_from text
) returns private.call_context
language plpgsql
set search_path = ''
as $$
declare
    -- may_use_number's rule, with the principal's role already known from the right
    v_any boolean := coalesce((p_ctx.effective).principal_role in ('owner', 'admin'), false);
    v_number public.phone_numbers;
begin
    p_ctx.sender := p_from;
    if not p_capability.sends_messages then
        return p_ctx;
    end if;
    if p_from is not null then
        select n.* into v_number from public.phone_numbers n
        where n.connection_id = p_ctx.connection_id and n.e164 = p_from;
        if v_number.id is null and not exists (select 1 from public.phone_numbers n where n.connection_id = p_ctx.connection_id) then
            return p_ctx;
        end if;
        if v_number.id is null or v_number.status <> 'active'
           or not (v_any or v_number.assigned_to is null or v_number.assigned_to = p_ctx.user_id) then
            p_ctx.denial := private.deny(p_ctx, 'permission_denied',
                                   format('%s is not a number this %s may send from', p_from,
                                          case when p_ctx.agent_id is null then 'member' else 'agent' end),
                                   jsonb_build_object('reason', 'sender_not_allowed', 'from', p_from));
        end if;
        return p_ctx;
    end if;
    select n.* into v_number
    from public.phone_numbers n
    left join public.member_default_numbers d on d.phone_number_id = n.id and d.user_id = p_ctx.user_id
    where n.connection_id = p_ctx.connection_id and n.status = 'active'
      and (v_any or n.assigned_to is null or n.assigned_to = p_ctx.user_id)
    order by d.phone_number_id is null, not n.is_default, n.assigned_to is distinct from p_ctx.user_id, n.created_at, n.id
    limit 1;
    if v_number.id is not null then
        p_ctx.sender := v_number.e164;
    elsif exists (select 1 from public.phone_numbers n where n.connection_id = p_ctx.connection_id) then
        p_ctx.denial := private.deny(p_ctx, 'permission_denied', 'no number on this connection is one this member may send from',
                               jsonb_build_object('reason', 'no_sender_number'));
    end if;
    return p_ctx;
end
$$;

/**
 * A repeated idempotency key: the recorded outcome of a call that ended (unknown
 * included) is replayed; a different request under the key, or one genuinely in flight,
 * is a conflict. A call left pending past the deadline is presumed lost: closed as
 * unknown, then replayed. Null when the key is new.
 */
create function private.replay_keyed_call(p_ctx private.call_context, p_idempotency_key text, p_request_hash text)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_existing public.operations;
    v_deadline interval;
begin
    if p_idempotency_key is null then
        return null;
    end if;
    select * into v_existing from public.operations
    where user_id = p_ctx.user_id and agent_id is not distinct from p_ctx.agent_id and idempotency_key = p_idempotency_key;
    if not found then
        return null;
    end if;
    if v_existing.request_hash is distinct from p_request_hash or v_existing.capability_key <> p_ctx.capability then
        return private.refusal(v_existing.id, 'conflict', 'idempotency key was used with a different request', null);
    end if;
    if v_existing.status = 'pending' then
        v_deadline := private.pending_deadline();
        if v_existing.created_at >= now() - v_deadline then
            return private.refusal(v_existing.id, 'conflict',
                'a call with this idempotency key is still in progress; retry later with the same key',
                jsonb_build_object('retry_after',
                    least(5, greatest(1, ceil(extract(epoch from v_existing.created_at + v_deadline - now())))::integer)));
        end if;
        perform private.mark_operation_unknown(v_existing.id, 'no_outcome_recorded_before_deadline');
        select * into v_existing from public.operations where id = v_existing.id;
    end if;
    return jsonb_build_object('ok', true, 'replay', true, 'operation_id', v_existing.id, 'status', v_existing.status,
                              'response', v_existing.response,
                              'error', case when v_existing.error_code is null then null else jsonb_build_object(
                                  'code', v_existing.error_code, 'message', v_existing.error_message,
                                  'details', v_existing.error_details) end);
end
$$;

/**
 * Records an authorized call as 'pending' with the quota it will reserve. A concurrent
 * call with the same idempotency key that won the race is a conflict (PT409).
 */
create function private.record_operation(
    p_ctx private.call_context, p_reserve integer, p_sender text, p_idempotency_key text, p_request_hash text
) returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_operation_id uuid;
begin
    insert into public.operations (workspace_id, user_id, agent_id, connection_id, permission_id, member_permission_id,
                                   capability_key, auth_mode, status, recipients, recipient_count, sender, quota_reserved,
                                   quota_date, request_summary, request_hash, idempotency_key)
    values (p_ctx.workspace_id, p_ctx.user_id, p_ctx.agent_id, p_ctx.connection_id, p_ctx.grant_id,
            p_ctx.member_permission_id, p_ctx.capability, p_ctx.auth_mode, 'pending', p_ctx.recipients,
            cardinality(p_ctx.recipients), p_sender, p_reserve, private.utc_today(), coalesce(p_ctx.summary, '{}'),
            p_request_hash, p_idempotency_key)
    returning id into v_operation_id;
    return v_operation_id;
exception when unique_violation then
    raise exception 'a call with this idempotency key is already in progress' using errcode = 'PT409';
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
create function private.reserve_quota(p_right private.effective_right, p_count integer, p_today date) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_month date := date_trunc('month', p_today)::date;
    v_counter record;
    v_done_ids uuid[] := '{}'::uuid[];
    v_done_periods text[] := '{}'::text[];
    v_used integer;
begin
    for v_counter in
        select * from (values
            (1, 'agent_daily', p_right.grant_id, 'grant', 'day', p_today, p_right.grant_daily_limit),
            (2, 'agent_monthly', p_right.grant_id, 'grant', 'month', v_month, p_right.grant_monthly_limit),
            (3, 'member_daily', p_right.member_permission_id, 'member', 'day', p_today, p_right.member_daily_limit),
            (4, 'member_monthly', p_right.member_permission_id, 'member', 'month', v_month, p_right.member_monthly_limit)
        ) as c (position, name, subject_id, subject, period, period_start, limit_value)
        where c.subject_id is not null
        order by c.position
    loop
        v_used := null;
        if v_counter.limit_value is null or p_count <= v_counter.limit_value then
            insert into public.usage_counters as u (subject_id, subject, period, period_start, workspace_id, user_id, used)
            values (v_counter.subject_id, v_counter.subject, v_counter.period, v_counter.period_start,
                    p_right.workspace_id, p_right.principal_id, p_count)
            on conflict (subject_id, period, period_start) do update set used = u.used + excluded.used
            where v_counter.limit_value is null or u.used + excluded.used <= v_counter.limit_value
            returning used into v_used;
        end if;
        if v_used is null then
            update public.usage_counters u set used = u.used - p_count
            from unnest(v_done_ids, v_done_periods) as d (subject_id, period)
            where u.subject_id = d.subject_id and u.period = d.period
              and u.period_start = case when d.period = 'day' then p_today else v_month end;
            select u.used into v_used from public.usage_counters u
            where u.subject_id = v_counter.subject_id and u.period = v_counter.period and u.period_start = v_counter.period_start;
            return jsonb_build_object(
                'limit', v_counter.name, 'limit_value', v_counter.limit_value, 'used', coalesce(v_used, 0),
                'requested', p_count,
                'resets_at', case when v_counter.period = 'day' then (p_today + 1)::timestamp at time zone 'utc'
                                  else (v_month + interval '1 month')::timestamp at time zone 'utc' end);
        end if;
        v_done_ids := v_done_ids || v_counter.subject_id;
        v_done_periods := v_done_periods || v_counter.period;
    end loop;
    return null;
end
$$;

/**
 * Gives back p_amount of an operation's reserved quota, to the day and month it was
 * reserved for, on the grant's and the member's counters, never below 0. The one place
 * quota returns: finish (what the provider did not accept) and the provider reconciler
 * (what the provider has no record of).
 */
create function private.give_back_quota(p_operation public.operations, p_amount integer) returns void
language plpgsql
set search_path = ''
as $$
begin
    update public.usage_counters
        set used = greatest(used - p_amount, 0)
        where p_amount > 0
          and subject_id in (p_operation.permission_id, p_operation.member_permission_id)
          and ((period = 'day' and period_start = p_operation.quota_date)
               or (period = 'month' and period_start = date_trunc('month', p_operation.quota_date)::date));
end
$$;

-- ---- Section - Begin and finish ----

/**
 * Authorizes one tool call and reserves what it needs, in one transaction (the steps
 * above, in order). Identify the caller by p_agent_key_hash, or by p_user_id (+
 * p_agent_id when an agent acts). p_sender is the send's `from`, when it names one.
 * The config returned is the connection's, with a mail connection's default sender
 * identity as its from_email / from_name.
 * Returns {ok:true, operation_id, credentials, config, sender, ...}, {ok:true,
 * replay:true, ...} for a repeated idempotency key whose call ended, or {ok:false,
 * error:{code, message, details}}; a keyed call still in flight is a conflict with
 * details.retry_after.
 * Order matters for concurrency: every check, the Vault read and the operation insert
 * come first; the quota counters are the last statements, so their rows are locked for
 * the commit only.
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
    -- the operation would stay 'pending' with its quota reserved (the safe side) until
    -- the reconciler closes it as unknown.
    perform set_config('synchronous_commit', 'off', true);
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
    perform private.give_back_quota(v_operation, v_operation.quota_reserved - v_used);
    return jsonb_build_object('ok', true, 'status', p_status, 'quota_used', v_used);
end
$$;

grant execute on function
    private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text),
    private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer)
to service_role;

-- ---- Section - Calls left pending (reliability) ----
/*
 * No outcome is ever lost:
 *   private.pending_deadline          how long a call may stay 'pending' (configurable)
 *   private.mark_operation_unknown    the one way a stale 'pending' call is closed
 *   private.reconcile_pending_operations  the Supabase Cron job that closes them
 */

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
grant execute on function private.reconcile_pending_operations() to service_role;

/*
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
