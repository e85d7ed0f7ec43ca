/**
 * ---- Section - Core tables ----
 * Agents, connections (provider accounts), agent permissions (grants) and agent keys.
 * Every row belongs to a user; credentials never live here, only a Vault secret id.
 */
create table public.agents (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    name text not null check (length(btrim(name)) between 1 and 100),
    description text check (length(description) <= 2000),
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.agents is 'AI agents a user owns. A disabled agent can do nothing.';
create index agents_user_id_idx on public.agents (user_id);

create table public.connections (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    provider_id uuid not null references public.service_providers (id),
    name text not null check (length(btrim(name)) between 1 and 100),
    /* non-secret configuration: from address, SMTP host/port, sender id, base_url ... */
    config jsonb not null default '{}' check (jsonb_typeof(config) = 'object'),
    /* the credentials, only as a reference into vault.secrets; null once deleted */
    secret_id uuid,
    granted_scopes text[] not null default '{}',
    status text not null default 'active' check (status in ('active', 'disabled', 'error')),
    last_tested_at timestamptz,
    last_test_ok boolean,
    last_test_message text,
    /* unguessable token addressing this connection's provider webhooks */
    webhook_token text not null unique default encode(extensions.gen_random_bytes(24), 'hex'),
    credentials_rotated_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.connections is 'A provider account owned by a user. Credentials are in Vault, referenced by secret_id.';
create index connections_user_id_idx on public.connections (user_id) where deleted_at is null;
create index connections_user_id_all_idx on public.connections (user_id);
create index connections_provider_id_idx on public.connections (provider_id);
create unique index connections_user_name_key on public.connections (user_id, lower(name)) where deleted_at is null;

create table public.agent_permissions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    agent_id uuid not null references public.agents (id) on delete cascade,
    connection_id uuid not null references public.connections (id) on delete cascade,
    allowed_scopes text[] not null check (cardinality(allowed_scopes) > 0),
    /* messages (recipients) per UTC day; null = no daily limit */
    daily_send_limit integer check (daily_send_limit >= 0),
    max_recipients_per_message integer not null default 10 check (max_recipients_per_message between 1 and 10000),
    /* E.164 prefixes ('+61', '+1415') and e-mail patterns ('a@x.com', 'x.com', '*.x.com') */
    allowed_recipients text[] not null default '{}',
    blocked_recipients text[] not null default '{}',
    expires_at timestamptz,
    is_active boolean not null default true,
    granted_by uuid references auth.users (id) on delete set null,
    granted_at timestamptz not null default now(),
    revoked_at timestamptz,
    usage_count bigint not null default 0,
    last_used_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (agent_id, connection_id)
);
comment on table public.agent_permissions is 'What an agent may do with one connection, and within which limits.';
create index agent_permissions_user_id_idx on public.agent_permissions (user_id);
create index agent_permissions_connection_id_idx on public.agent_permissions (connection_id);
create index agent_permissions_granted_by_idx on public.agent_permissions (granted_by);

create table public.agent_keys (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    agent_id uuid not null references public.agents (id) on delete cascade,
    name text,
    /* first characters of the key, to recognise it in a list */
    key_prefix text not null,
    /* hex SHA-256 of the key; the key itself is shown once and never stored */
    key_hash text not null unique,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz not null default now()
);
comment on table public.agent_keys is 'Opaque agent keys, stored hashed. Shown once at issue; revocable; optionally expiring.';
create index agent_keys_user_id_idx on public.agent_keys (user_id);
create index agent_keys_agent_id_idx on public.agent_keys (agent_id);
