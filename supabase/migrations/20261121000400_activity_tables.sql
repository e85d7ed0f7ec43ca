/**
 * ---- Section - Activity tables ----
 * Operations (one row per attempted tool call, allowed or denied), provider message
 * events (receipts, inbound replies, mail events) and per-day usage counters.
 */
create table public.operations (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    agent_id uuid references public.agents (id) on delete set null,
    connection_id uuid references public.connections (id) on delete set null,
    permission_id uuid references public.agent_permissions (id) on delete set null,
    capability_key text not null,
    /* how the caller authenticated: user, user_agent (JWT + agent_id), agent_key, service */
    auth_mode text not null check (auth_mode in ('user', 'user_agent', 'agent_key', 'service')),
    status text not null check (status in ('pending', 'succeeded', 'partial', 'failed', 'unknown', 'denied')),
    recipients text[] not null default '{}',
    recipient_count integer not null default 0,
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
comment on table public.operations is 'Audit log: one row per attempted tool call, allowed or denied.';
create index operations_user_id_created_at_idx on public.operations (user_id, created_at desc);
create index operations_agent_id_idx on public.operations (agent_id);
create index operations_connection_id_idx on public.operations (connection_id, created_at desc);
create index operations_permission_id_idx on public.operations (permission_id);
create index operations_provider_message_ids_idx on public.operations using gin (provider_message_ids);
create unique index operations_idempotency_key_idx on public.operations (user_id, agent_id, idempotency_key) nulls not distinct
    where idempotency_key is not null;

create table public.message_events (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    connection_id uuid not null references public.connections (id) on delete cascade,
    operation_id uuid references public.operations (id) on delete set null,
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
create index message_events_user_id_received_at_idx on public.message_events (user_id, received_at desc);
create index message_events_operation_id_idx on public.message_events (operation_id);

create table public.usage_counters (
    permission_id uuid not null references public.agent_permissions (id) on delete cascade,
    usage_date date not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    used integer not null default 0 check (used >= 0),
    primary key (permission_id, usage_date)
);
comment on table public.usage_counters is 'Messages sent per grant per UTC day. Updated atomically by private.begin_tool_call.';
create index usage_counters_user_id_idx on public.usage_counters (user_id);
