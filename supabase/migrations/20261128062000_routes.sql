/**
 * ==== Routes and channel tools ====
 * Agents send by channel (sms_send, mms_send, whatsapp_send, email_send) instead of one
 * tool per provider account. A route orders a workspace's accounts of one channel (and a
 * member may have a route of their own); a channel send goes to the first usable account
 * and fails over to the next only when the provider proved the message was not accepted.
 * One operation, one idempotency key, quota counted once (the reservation moves with the
 * send), every failed attempt recorded.
 *   channel tools          integration_capabilities rows without a provider
 *   routes                 routes, route_connections; set_route (admins; an empty list deletes)
 *   candidates             private.channel_candidates: the accounts a channel send may use, in order
 *   failover               private.fail_over_tool_call: records the attempt, moves the send
 *                          and its reservation to the next account
 *   attempts               operation_attempts
 * begin_tool_call also tells a send where its provider reports its status, for providers
 * that take a callback URL on each send (service_providers.status_callback_kind): the
 * path of the connection's own webhook, so delivery reports need no account setup.
 */

-- ---- Section - Channel tools ----
alter table public.integration_capabilities
    alter column provider_id drop not null,
    /* for a channel tool (no provider): the channel it sends on */
    add column channel text check (channel in ('sms', 'mms', 'whatsapp', 'email')),
    /* a provider's tool, a channel tool, or (neither) one the database answers alone */
    add constraint integration_capabilities_provider_or_channel check (provider_id is null or channel is null);

insert into public.integration_capabilities (provider_id, channel, capability_key, display_label, description, required_scope,
                                             is_read_only, is_destructive, sends_messages, display_order)
values
    (null, 'sms', 'sms_send', 'Send SMS',
     'Send an SMS to one or more phone numbers (international format, e.g. +14155550123) through your SMS account, '
     'or your route''s accounts in order.', 'sms', false, false, true, 1),
    (null, 'mms', 'mms_send', 'Send MMS',
     'Send an MMS (text plus media files) to one or more phone numbers through your MMS account or route.',
     'mms', false, false, true, 2),
    (null, 'whatsapp', 'whatsapp_send', 'Send WhatsApp',
     'Send a WhatsApp message: free-form text within 24 hours of the person''s last message, else an approved template.',
     'whatsapp', false, false, true, 3),
    (null, 'email', 'email_send', 'Send e-mail',
     'Send an e-mail (text and/or HTML, cc, bcc) through your mail account or route.', 'email', false, false, true, 4);

-- ---- Section - Routes ----
create table public.routes (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    channel text not null check (channel in ('sms', 'mms', 'whatsapp', 'email')),
    /* the member this route is for; null: the workspace's route for the channel */
    user_id uuid references auth.users (id) on delete cascade,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique nulls not distinct (workspace_id, channel, user_id),
    unique (id, workspace_id)
);
comment on table public.routes is 'The order in which a channel send tries a workspace''s accounts (optionally for one member).';
create index routes_user_id_idx on public.routes (user_id);
create index routes_created_by_idx on public.routes (created_by);

create table public.route_connections (
    route_id uuid not null,
    workspace_id uuid not null,
    position integer not null check (position between 1 and 10),
    connection_id uuid not null,
    primary key (route_id, position),
    unique (route_id, connection_id),
    foreign key (route_id, workspace_id) references public.routes (id, workspace_id) on delete cascade,
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade
);
comment on table public.route_connections is 'The accounts of a route, in the order a send tries them.';
create index route_connections_connection_idx on public.route_connections (connection_id, workspace_id);
create index route_connections_route_workspace_idx on public.route_connections (route_id, workspace_id);

create trigger routes_touch before update on public.routes
    for each row execute function private.touch_updated_at();

alter table public.routes enable row level security;
alter table public.route_connections enable row level security;
grant select on public.routes, public.route_connections to authenticated;
grant select, insert, update, delete on public.routes, public.route_connections to service_role;

-- The workspace's routes are every member's to read; a member's own route is theirs and the admins'.
create policy routes_select_policy on public.routes
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id,
                                         case when user_id is null or user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy route_connections_select_policy on public.route_connections
    for select to authenticated
    using (exists (select 1 from public.routes r where r.id = route_id));

-- ---- Section - Attempts ----
create table public.operation_attempts (
    id bigint generated always as identity primary key,
    operation_id uuid not null references public.operations (id) on delete cascade,
    workspace_id uuid not null,
    /* 1 for the first account tried */
    attempt integer not null check (attempt >= 1),
    connection_id uuid,
    provider text not null,
    /* failed: the provider proved it did not take the message; skipped: the account's rules refused the send */
    outcome text not null check (outcome in ('failed', 'skipped')),
    error_code text,
    error_message text check (length(error_message) <= 1000),
    /* the provider's status and code, when it answered */
    provider_status integer,
    provider_code text check (length(provider_code) <= 100),
    duration_ms integer,
    created_at timestamptz not null default now(),
    unique (operation_id, attempt)
);
comment on table public.operation_attempts is
    'The accounts a channel send tried before the one its operation ended on (which the operation row records).';
create index operation_attempts_workspace_id_idx on public.operation_attempts (workspace_id, created_at desc);

alter table public.operation_attempts enable row level security;
grant select on public.operation_attempts to authenticated;
grant select, insert, update, delete on public.operation_attempts to service_role;

-- Whoever may read the operation may read its attempts.
create policy operation_attempts_select_policy on public.operation_attempts
    for select to authenticated
    using (exists (select 1 from public.operations o where o.id = operation_id));

-- ---- Section - Route RPCs ----

/**
 * Sets the route of a channel in a workspace (p_user_id: for one member of it; null: the
 * workspace's) to the accounts p_connection_ids, in that order: 1 to 10 distinct live
 * connections of the workspace whose provider carries the channel. An empty list deletes
 * the route. Owners and admins only; audited as route.set / route.deleted.
 */
create function private.set_route(p_workspace_id uuid, p_channel text, p_connection_ids uuid[], p_user_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_route public.routes;
    v_bad uuid;
begin
    perform private.require_role(p_workspace_id, 'admin');
    if p_channel is null or p_channel not in ('sms', 'mms', 'whatsapp', 'email') then
        raise exception 'channel must be sms, mms, whatsapp or email' using errcode = '22023';
    end if;
    if p_user_id is not null and private.workspace_role(p_workspace_id, p_user_id) is null then
        raise exception 'a route can only be for a member of the workspace' using errcode = '22023';
    end if;
    if coalesce(cardinality(p_connection_ids), 0) = 0 then
        delete from public.routes
        where workspace_id = p_workspace_id and channel = p_channel and user_id is not distinct from p_user_id
        returning * into v_route;
        if v_route.id is not null then
            perform private.audit(p_workspace_id, 'route.deleted', 'route', v_route.id::text,
                                  jsonb_build_object('channel', p_channel, 'user_id', p_user_id));
        end if;
        return jsonb_build_object('deleted', v_route.id is not null);
    end if;
    if cardinality(p_connection_ids) > 10 or array_position(p_connection_ids, null) is not null
       or (select count(distinct c) from unnest(p_connection_ids) c) <> cardinality(p_connection_ids) then
        raise exception 'a route is 1 to 10 distinct accounts' using errcode = '22023';
    end if;
    select c into v_bad from unnest(p_connection_ids) c
    where not exists (select 1 from public.connections n join public.service_providers p on p.id = n.provider_id
                      where n.id = c and n.workspace_id = p_workspace_id and n.deleted_at is null
                        and p_channel = any (p.channels))
    limit 1;
    if v_bad is not null then
        raise exception 'connection % is not a % account of this workspace', v_bad, p_channel using errcode = '22023';
    end if;

    insert into public.routes as r (workspace_id, channel, user_id, created_by)
    values (p_workspace_id, p_channel, p_user_id, auth.uid())
    on conflict (workspace_id, channel, user_id) do update set updated_at = now()
    returning * into v_route;
    delete from public.route_connections where route_id = v_route.id;
    insert into public.route_connections (route_id, workspace_id, position, connection_id)
    select v_route.id, p_workspace_id, i, p_connection_ids[i] from generate_subscripts(p_connection_ids, 1) i;
    perform private.audit(p_workspace_id, 'route.set', 'route', v_route.id::text,
                          jsonb_build_object('channel', p_channel, 'user_id', p_user_id, 'connection_ids', to_jsonb(p_connection_ids)));
    return jsonb_build_object('id', v_route.id, 'workspace_id', p_workspace_id, 'channel', p_channel, 'user_id', p_user_id,
                              'connection_ids', to_jsonb(p_connection_ids));
end
$$;

/**
 * Order a channel's accounts (admin): supabase.rpc('set_route', {p_workspace_id,
 * p_channel, p_connection_ids, p_user_id}); an empty list deletes the route.
 */
create function public.set_route(p_workspace_id uuid, p_channel text, p_connection_ids uuid[], p_user_id uuid default null)
returns jsonb
language sql security invoker set search_path = ''
as $$ select private.set_route(p_workspace_id, p_channel, p_connection_ids, p_user_id) $$;

grant execute on function
    private.set_route(uuid, text, uuid[], uuid),
    public.set_route(uuid, text, uuid[], uuid)
to authenticated;

-- ---- Section - Candidates ----

/**
 * The accounts a channel send may use, in the order it tries them: the caller's live
 * rights on connections whose (enabled) provider carries the channel, holding the
 * channel's scope, allowed to send. With p_connection_id only that account (when usable). Otherwise the
 * member's own route for the channel in the caller's workspace, else the workspace's;
 * without a route every usable account, the default mail connection first, then the
 * oldest (more than one without a route is for the caller to choose: see begin).
 */
create function private.channel_candidates(
    p_ctx private.call_context, p_capability public.integration_capabilities, p_connection_id uuid
) returns uuid[]
language plpgsql stable
set search_path = ''
as $$
declare
    v_route_id uuid;
begin
    if p_connection_id is null then
        select r.id into v_route_id from public.routes r
        where r.workspace_id = p_ctx.workspace_id and r.channel = p_capability.channel
          and (r.user_id = p_ctx.user_id or r.user_id is null)
        order by r.user_id is null
        limit 1;
    end if;
    return array(
        select r.connection_id
        from (
            select g.* from private.agent_rights(p_ctx.agent_id) g where p_ctx.agent_id is not null
            union all
            select m.* from public.service_providers sp, private.member_rights(p_ctx.user_id, sp.id) m
            where p_ctx.agent_id is null and p_capability.channel = any (sp.channels)
        ) r
        join public.connections c on c.id = r.connection_id
        join public.service_providers p on p.id = c.provider_id
        left join public.route_connections rc on rc.route_id = v_route_id and rc.connection_id = r.connection_id
        where p_capability.channel = any (p.channels) and p.is_enabled
          and r.dead_reason is null and r.can_send and p_capability.required_scope = any (r.scopes)
          and (p_connection_id is null or r.connection_id = p_connection_id)
          and (p_connection_id is not null or r.workspace_id = p_ctx.workspace_id)
          and (v_route_id is null or rc.connection_id is not null)
        order by rc.position, c.is_default_mail desc, r.connection_created_at, r.connection_id
    );
end
$$;

/**
 * The account a channel send starts on: the first of private.channel_candidates, resolved
 * as a right of its provider (private.resolve_right). Refused when there is none; with
 * several and no route the caller must name one (a mail send takes the workspace's
 * default mail connection).
 */
create function private.resolve_channel_target(
    p_ctx private.call_context, p_capability public.integration_capabilities, p_connection_id uuid
) returns private.call_context
language plpgsql
set search_path = ''
as $$
declare
    v_candidates uuid[] := private.channel_candidates(p_ctx, p_capability, p_connection_id);
    v_provider public.service_providers;
begin
    if cardinality(v_candidates) = 0 then
        p_ctx.denial := private.deny(p_ctx, 'permission_denied',
            case when p_connection_id is not null then format('that account is not one you may send %s on', p_capability.channel)
                 else format('no %s account you may send on', p_capability.channel) end,
            jsonb_build_object('reason', 'no_usable_account', 'channel', p_capability.channel));
        return p_ctx;
    end if;
    if cardinality(v_candidates) > 1 and p_connection_id is null
       and not exists (select 1 from public.routes r where r.workspace_id = p_ctx.workspace_id and r.channel = p_capability.channel
                                                     and (r.user_id = p_ctx.user_id or r.user_id is null)) then
        if p_capability.channel = 'email' and (select c.is_default_mail from public.connections c where c.id = v_candidates[1]) then
            v_candidates := v_candidates[1:1];
        else
            p_ctx.denial := private.deny(p_ctx, 'invalid_request',
                format('%s %s accounts are available and no route orders them; name one with account', cardinality(v_candidates),
                       p_capability.channel),
                jsonb_build_object('reason', 'ambiguous_connection', 'accounts', to_jsonb(v_candidates)));
            return p_ctx;
        end if;
    end if;
    select p.* into v_provider from public.connections c join public.service_providers p on p.id = c.provider_id
    where c.id = v_candidates[1];
    return private.resolve_right(p_ctx, v_provider, v_candidates[1], null);
end
$$;

-- ---- Section - Begin and failover ----
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
    if v_capability.provider_id is null then
        -- A channel tool: the first account of the caller's route (or the one named).
        v_ctx := private.resolve_channel_target(v_ctx, v_capability, p_connection_id);
        if v_ctx.denial is not null then
            return v_ctx.denial;
        end if;
        select * into v_provider from public.service_providers where id = (v_ctx.effective).provider_id;
    else
        select * into v_provider from public.service_providers where id = v_capability.provider_id;
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

/**
 * Moves a channel send whose provider proved it did not take the message to the next
 * account of its route. Records the failed attempt (provider, error, duration), gives
 * back its account's reservation, then tries the next accounts in order: each must pass
 * the rules of the caller's right on it and reserve the same quota (an account refused
 * is recorded as skipped). On the first that does, the operation moves to it and its
 * credentials, config, sender and status callback are returned: {ok:true, ...} as begin
 * answers. Otherwise {ok:false}: nothing stays reserved, and finish records the failure.
 * A send that named its account or its `from` number (a number is one account's) never
 * moves.
 * Only for an operation still pending; its row lock orders concurrent calls.
 */
create function private.fail_over_tool_call(
    p_operation_id uuid,
    p_error_code text,
    p_error_message text default null,
    p_provider_status integer default null,
    p_provider_code text default null,
    p_duration_ms integer default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_operation public.operations;
    v_capability public.integration_capabilities;
    v_ctx private.call_context;
    v_next_ctx private.call_context;
    v_provider public.service_providers;
    v_attempt integer;
    v_next uuid;
    v_tried uuid[];
    v_denial jsonb;
    v_over jsonb;
    v_config jsonb;
    v_secret_id uuid;
    v_credentials jsonb;
    v_status_callback text;
begin
    select * into v_operation from public.operations where id = p_operation_id for update;
    if not found then
        raise exception 'operation % not found', p_operation_id using errcode = 'P0002';
    end if;
    select * into v_capability from public.integration_capabilities where capability_key = v_operation.capability_key;
    if v_operation.status <> 'pending' or v_capability.provider_id is not null
       or v_operation.request_summary ?| array['from', 'account'] then
        return jsonb_build_object('ok', false, 'reason', case when v_operation.status <> 'pending' then 'not_pending'
                                                              when v_capability.provider_id is not null then 'not_a_channel_tool'
                                                              when v_operation.request_summary ? 'account' then 'account_named'
                                                              else 'sender_named' end);
    end if;

    v_attempt := 1 + (select count(*) from public.operation_attempts a where a.operation_id = p_operation_id);
    insert into public.operation_attempts (operation_id, workspace_id, attempt, connection_id, provider, outcome, error_code,
                                           error_message, provider_status, provider_code, duration_ms)
    select p_operation_id, v_operation.workspace_id, v_attempt, v_operation.connection_id, p.name, 'failed', p_error_code,
           left(p_error_message, 1000), p_provider_status, left(p_provider_code, 100), p_duration_ms
    from public.connections c join public.service_providers p on p.id = c.provider_id where c.id = v_operation.connection_id;
    perform private.give_back_quota(v_operation, v_operation.quota_reserved);

    v_ctx := row(v_operation.capability_key, v_operation.auth_mode, v_operation.user_id, v_operation.agent_id,
                 v_operation.workspace_id, null, null, null, v_operation.recipients, v_operation.request_summary, null, null, null);
    v_tried := array(select a.connection_id from public.operation_attempts a where a.operation_id = p_operation_id);
    foreach v_next in array private.channel_candidates(v_ctx, v_capability, null) loop
        continue when v_next = any (v_tried);
        select p.* into v_provider from public.connections c join public.service_providers p on p.id = c.provider_id
        where c.id = v_next;
        -- Without a workspace the steps' refusals are not recorded as operations of their
        -- own (private.deny): here a refused account is an attempt of this one.
        v_ctx.workspace_id := null;
        v_next_ctx := private.resolve_right(v_ctx, v_provider, v_next, null);
        v_next_ctx.workspace_id := null;
        v_denial := coalesce(v_next_ctx.denial, private.check_call_rules(v_next_ctx, v_next_ctx.effective, v_capability));
        if v_denial is null and v_provider.channels && array['sms', 'mms', 'whatsapp', 'voice'] then
            v_next_ctx := private.resolve_sender(v_next_ctx, v_capability, null);
            v_denial := v_next_ctx.denial;
        end if;
        if v_denial is null and v_operation.quota_reserved > 0 then
            v_over := private.reserve_quota(v_next_ctx.effective, v_operation.quota_reserved, v_operation.quota_date);
            if v_over is not null then
                v_denial := jsonb_build_object('error', jsonb_build_object(
                    'code', 'quota_exceeded', 'message', format('%s limit reached on this account', v_over ->> 'limit')));
            end if;
        end if;
        v_attempt := v_attempt + 1;
        if v_denial is not null then
            insert into public.operation_attempts (operation_id, workspace_id, attempt, connection_id, provider, outcome,
                                                   error_code, error_message, duration_ms)
            values (p_operation_id, v_operation.workspace_id, v_attempt, v_next, v_provider.name, 'skipped',
                    v_denial -> 'error' ->> 'code', left(v_denial -> 'error' ->> 'message', 1000), 0);
            continue;
        end if;

        update public.operations set
            connection_id = v_next, permission_id = v_next_ctx.grant_id,
            member_permission_id = v_next_ctx.member_permission_id, sender = v_next_ctx.sender
        where id = p_operation_id;
        select c.config, c.secret_id into v_config, v_secret_id from public.connections c where c.id = v_next;
        if 'email' = any (v_provider.channels) then
            v_config := v_config || coalesce((select jsonb_strip_nulls(jsonb_build_object('from_email', s.email, 'from_name', s.name))
                                              from public.sender_identities s where s.connection_id = v_next and s.is_default), '{}');
        end if;
        select decrypted_secret::jsonb into v_credentials from vault.decrypted_secrets where id = v_secret_id;
        if v_provider.status_callback_kind is not null then
            select format('%s/webhooks/%s/%s', v_provider.function_name, w.webhook_token, v_provider.status_callback_kind)
            into v_status_callback from public.connection_webhooks w where w.connection_id = v_next;
        end if;
        return jsonb_build_object('ok', true, 'operation_id', p_operation_id, 'attempt', v_attempt, 'connection_id', v_next,
                                  'provider', v_provider.name, 'sender', v_next_ctx.sender, 'status_callback', v_status_callback,
                                  'config', v_config, 'credentials', v_credentials);
    end loop;
    -- No other account took it: nothing stays reserved for finish to give back.
    update public.operations set quota_reserved = 0 where id = p_operation_id;
    return jsonb_build_object('ok', false, 'reason', 'no_other_account', 'attempts', v_attempt);
end
$$;

grant execute on function private.fail_over_tool_call(uuid, text, text, integer, text, integer) to service_role;
