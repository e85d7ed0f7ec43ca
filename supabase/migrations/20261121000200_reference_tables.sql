/**
 * ---- Section - Reference tables ----
 * Providers and their capabilities (one capability per agent tool). Tool definitions
 * are data: the input JSON Schema is generated from the functions' zod schemas
 * (see 20261121001200_capability_input_schemas.sql) and checked for drift in CI.
 */
create table public.service_providers (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (name ~ '^[a-z][a-z0-9_]{1,62}$'),
    display_name text not null,
    auth_type text not null check (auth_type in ('basic_auth', 'api_key', 'smtp_password')),
    scopes_supported text[] not null default '{}',
    /* secret fields a connection must supply; stored only in Vault */
    credential_fields text[] not null default '{}',
    /* non-secret config fields a connection must supply */
    required_config_fields text[] not null default '{}',
    configuration_metadata jsonb not null default '{}',
    is_enabled boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.service_providers is 'Messaging providers Switchboard can connect to (reference data).';

create table public.integration_capabilities (
    id uuid primary key default gen_random_uuid(),
    provider_id uuid not null references public.service_providers (id) on delete cascade,
    capability_key text not null unique check (capability_key ~ '^[a-z][a-z0-9_]{1,50}$'),
    display_label text not null,
    description text not null,
    required_scope text not null,
    input_schema jsonb not null default '{"type":"object","properties":{},"additionalProperties":false}',
    /* the same schema in OpenAI strict-mode form (every property required, optional ones nullable) */
    strict_input_schema jsonb not null default '{"type":"object","properties":{},"required":[],"additionalProperties":false}',
    is_read_only boolean not null default false,
    is_destructive boolean not null default false,
    /* true when each recipient counts against the daily send limit */
    sends_messages boolean not null default false,
    display_order integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.integration_capabilities is 'One row per agent tool: scope it needs, input schema, annotations.';
create index integration_capabilities_provider_id_idx on public.integration_capabilities (provider_id);
