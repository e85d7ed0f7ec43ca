/**
 * ==== Webhooks ====
 * Provider events: delivery receipts, inbound replies and mail events, stored per
 * connection, deduplicated, linked to the operation they are about and so to the member
 * and agent that sent. The provider functions check each webhook's URL token and
 * signature before anything is recorded here.
 */

-- ---- Section - Table ----
create table public.message_events (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    connection_id uuid not null references public.connections (id) on delete cascade,
    operation_id uuid references public.operations (id) on delete set null,
    /* the member the event is attributed to: the one the linked operation was for */
    user_id uuid references auth.users (id) on delete set null,
    event_type text not null check (event_type in ('delivery_receipt', 'inbound_message', 'email_event')),
    /* provider's event name: delivered, bounce, 201, ... */
    status text,
    /* dedupe key: ClickSend message_id(+status), SendGrid sg_event_id */
    provider_event_id text not null,
    provider_message_id text,
    recipient text,
    payload jsonb not null default '{}',
    occurred_at timestamptz,
    received_at timestamptz not null default now(),
    unique (connection_id, provider_event_id)
);
comment on table public.message_events is 'Delivery receipts, inbound replies and mail events from provider webhooks.';
create index message_events_workspace_id_received_at_idx on public.message_events (workspace_id, received_at desc);
create index message_events_user_id_received_at_idx on public.message_events (user_id, received_at desc);
create index message_events_operation_id_idx on public.message_events (operation_id);

alter table public.message_events enable row level security;
grant select on public.message_events to authenticated;
grant select, insert, update, delete on public.message_events to service_role;

-- A member sees the events of the calls made for them; admins see the workspace's.
create policy message_events_select_policy on public.message_events
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

-- ---- Section - Recording ----

/**
 * Stores provider webhook events for the connection the token addresses, deduplicated
 * by (connection, provider_event_id) and linked to operations: by our operation id
 * when the provider echoed it, else by provider message id; an inbound reply without
 * either is linked to the latest operation that sent to its author. Each event is
 * attributed to the member its operation was for.
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
    join public.connection_webhooks w on w.connection_id = c.id
    where w.webhook_token = p_webhook_token and p.name = p_provider and c.deleted_at is null;
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

        insert into public.message_events (workspace_id, user_id, connection_id, operation_id, event_type, status,
                                           provider_event_id, provider_message_id, recipient, payload, occurred_at)
        values (v_connection.workspace_id, (select o.user_id from public.operations o where o.id = v_operation_id),
                v_connection.id, v_operation_id, v_event ->> 'event_type', v_event ->> 'status',
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

grant execute on function private.record_message_events(text, text, jsonb) to service_role;
