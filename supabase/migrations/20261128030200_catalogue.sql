/**
 * ==== Catalogue ====
 * Providers and their capabilities (one capability per agent tool), and the rules a
 * connection's config and credentials must pass when they are stored. Tool definitions
 * are data: the input JSON Schemas are generated from the functions' zod schemas (the
 * capability_input_schemas migrations) and checked for drift in CI.
 */

-- ---- Section - Providers and capabilities ----
create table public.service_providers (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (name ~ '^[a-z][a-z0-9_]{1,62}$'),
    display_name text not null,
    auth_type text not null check (auth_type in ('basic_auth', 'api_key', 'smtp_password')),
    /* what the provider carries: sms, mms, whatsapp, voice, email */
    channels text[] not null default '{}' check (channels <@ array['sms', 'mms', 'whatsapp', 'voice', 'email']),
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
    /* the schemas also as json (kept in step by Postgres): tool lists are built as json,
       which embeds them verbatim instead of re-encoding hundreds of kB of jsonb per call */
    input_schema_json json generated always as (input_schema::json) stored,
    strict_input_schema_json json generated always as (strict_input_schema::json) stored,
    is_read_only boolean not null default false,
    is_destructive boolean not null default false,
    /* true when each recipient counts against the send limits */
    sends_messages boolean not null default false,
    display_order integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table public.integration_capabilities is 'One row per agent tool: scope it needs, input schema, annotations.';
create index integration_capabilities_provider_id_idx on public.integration_capabilities (provider_id);

create trigger service_providers_touch before update on public.service_providers
    for each row execute function private.touch_updated_at();
create trigger integration_capabilities_touch before update on public.integration_capabilities
    for each row execute function private.touch_updated_at();

alter table public.service_providers enable row level security;
alter table public.integration_capabilities enable row level security;
grant select on public.service_providers, public.integration_capabilities to authenticated;
grant select, insert, update, delete on public.service_providers, public.integration_capabilities to service_role;

create policy service_providers_select_policy on public.service_providers
    for select to authenticated
    using (true);

create policy integration_capabilities_select_policy on public.integration_capabilities
    for select to authenticated
    using (true);

-- ---- Section - Reference data ----
-- Input schemas are set by the generated capability_input_schemas migration.
insert into public.service_providers (name, display_name, auth_type, channels, scopes_supported, credential_fields,
                                      required_config_fields, configuration_metadata)
values
    ('clicksend_sms', 'ClickSend SMS/MMS', 'basic_auth', array['sms', 'mms'], array['sms', 'mms', 'balance', 'history'],
     array['username', 'api_key'], array[]::text[],
     '{"api_base_url": "https://rest.clicksend.com/v3", "auth_header_format": "Basic base64(username:api_key)",
       "config_fields": {"base_url": "API base URL (default https://rest.clicksend.com/v3)", "sender_id": "default sender id or number"},
       "max_recipients_per_request": 1000, "delivery_receipts": true, "inbound_messages": true}'),
    ('smtp', 'SMTP mail', 'smtp_password', array['email'], array['email'],
     array['username', 'password'], array['host', 'port', 'security', 'from_email'],
     '{"config_fields": {"host": "SMTP server host", "port": "465 (implicit TLS) or 2525; 25 and 587 are blocked on hosted Supabase",
       "security": "tls (implicit) or starttls (required)", "from_email": "sender address", "from_name": "sender name",
       "tls_ca": "extra CA certificate (PEM) for self-hosted relays"}}'),
    ('sendgrid', 'SendGrid mail', 'api_key', array['email'], array['email'],
     array['api_key'], array['from_email'],
     '{"api_base_url": "https://api.sendgrid.com", "auth_header_format": "Bearer api_key",
       "config_fields": {"base_url": "https://api.sendgrid.com or https://api.eu.sendgrid.com", "from_email": "verified sender",
       "from_name": "sender name", "webhook_public_key": "Event Webhook verification key (base64 SPKI)"}, "event_webhook": true}');

insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope,
                                             is_read_only, is_destructive, sends_messages, display_order)
select p.id, c.capability_key, c.display_label, c.description, c.required_scope, c.is_read_only, c.is_destructive,
       c.sends_messages, c.display_order
from (values
    ('clicksend_sms', 'clicksend_send_sms', 'Send SMS',
     'Send an SMS text message to one or more phone numbers (international format, e.g. +61411111111).',
     'sms', false, false, true, 1),
    ('clicksend_sms', 'clicksend_send_mms', 'Send MMS',
     'Send an MMS (image plus text, subject up to 20 characters) to one or more phone numbers.',
     'mms', false, false, true, 2),
    ('clicksend_sms', 'clicksend_get_balance', 'Check balance',
     'Get the SMS account balance and currency.',
     'balance', true, false, false, 3),
    ('clicksend_sms', 'clicksend_get_sms_history', 'SMS history',
     'List sent and received SMS messages, newest first, page by page.',
     'history', true, false, false, 4),
    ('clicksend_sms', 'clicksend_get_mms_history', 'MMS history',
     'List sent MMS messages page by page.',
     'history', true, false, false, 5),
    ('smtp', 'smtp_send_email', 'Send e-mail (SMTP)',
     'Send an e-mail (text and/or HTML, cc, bcc, attachments) from the connected mailbox.',
     'email', false, false, true, 1),
    ('sendgrid', 'sendgrid_send_email', 'Send e-mail (SendGrid)',
     'Send an e-mail through SendGrid, with content or a dynamic template.',
     'email', false, false, true, 1)
) as c (provider, capability_key, display_label, description, required_scope, is_read_only, is_destructive,
        sends_messages, display_order)
join public.service_providers p on p.name = c.provider;


-- ---- Section - Connection config and credential rules ----
/*
 * Values stored on a connection are input like any agent-supplied field. These are the
 * rules the functions apply again before every use (the adapters' config schemas), so a
 * value either passes both or is refused here, when it is stored (22023, a 400):
 *   private.is_host_name        a DNS name (letters, digits, hyphens) whose last label is
 *                               not a number: `0x7f.1`, `2130706433`, `012.0.0.1` are IPv4
 *                               spellings that resolvers read differently, never names
 *   private.is_ipv6_address     an IPv6 address, no brackets, prefix or zone
 *   private.is_host_or_ip       a host name, a dotted-decimal IPv4 address or an IPv6 address
 *   private.is_base_url         scheme://host[:port][/path]: http(s), such a host, no
 *                               credentials, query or fragment. Whether http or a host other
 *                               than the provider's own may be used is the deployment's call,
 *                               made by the functions' network guard at use time.
 *   private.is_email_address    the e-mail rule the functions use
 *   private.validate_config     required fields, nothing that looks like a secret, nothing
 *                               that becomes a header or an SMTP command carries CR or LF,
 *                               addresses are addresses, ClickSend sender ids are E.164
 *                               numbers or 3-11 letters/digits
 *   private.validate_credentials  exactly the provider's secret fields; no CR/LF in a value
 *                               that becomes a header or a command (the SMTP password is
 *                               sent base64-encoded, so it is exempt)
 */

/** A DNS host name: labels of 1-63 letters, digits and inner hyphens, at most 253 characters, not ending in a numeric label. */
create function private.is_host_name(p_host text) returns boolean
language sql immutable
set search_path = ''
as $$
    select coalesce(
        length(p_host) <= 253
        and p_host ~ '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$'
        -- A numeric last label makes URL parsers and getaddrinfo read the host as IPv4.
        and substring(p_host from '[^.]*$') !~* '^([0-9]+|0x[0-9a-f]*)$',
        false)
$$;

/** An IPv6 address as written in a host field: no brackets, prefix length or zone id. */
create function private.is_ipv6_address(p_host text) returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
    return coalesce(p_host ~ '^[0-9A-Fa-f:.]+$' and strpos(p_host, ':') > 0
                    and family(p_host::inet) = 6 and masklen(p_host::inet) = 128, false);
exception
    when invalid_text_representation then
        return false;
end
$$;

/** A host name, an IPv4 address in canonical dotted decimal (no leading zeros), or an IPv6 address. */
create function private.is_host_or_ip(p_host text) returns boolean
language sql immutable
set search_path = ''
as $$
    select private.is_host_name(p_host)
        or coalesce(p_host ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$', false)
        or private.is_ipv6_address(p_host)
$$;

/**
 * An API base URL: http(s)://host[:port][/path] with the host as written passing
 * is_host_or_ip (IPv6 in brackets), no credentials, query, fragment, spaces or control
 * characters, at most 2000 characters.
 */
create function private.is_base_url(p_url text) returns boolean
language plpgsql immutable
set search_path = ''
as $$
declare
    v_parts text[];
begin
    if p_url is null or length(p_url) > 2000 or p_url ~ '[[:cntrl:]]' then
        return false;
    end if;
    v_parts := regexp_match(p_url, '^https?://(\[[0-9a-f:.]+\]|[^][[:space:]/?#@:]+)(:([0-9]{1,5}))?(/[^[:space:]?#]*)?$', 'i');
    if v_parts is null or coalesce(v_parts[3]::integer, 1) > 65535 then
        return false;
    end if;
    return case when left(v_parts[1], 1) = '['
                then private.is_ipv6_address(substr(v_parts[1], 2, length(v_parts[1]) - 2))
                else private.is_host_or_ip(v_parts[1]) end;
end
$$;

/** An e-mail address by the rule the functions apply (zod's), at most 254 characters. */
create function private.is_email_address(p_address text) returns boolean
language sql immutable
set search_path = ''
as $$
    select coalesce(
        length(p_address) <= 254
        and p_address ~ '^([A-Za-z0-9_''+-]+\.)*[A-Za-z0-9_''+-]*[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$',
        false)
$$;

/**
 * Checks non-secret config: required fields present, nothing that looks like a secret,
 * and the per-field rules of the header above. Absent, null and "" all mean "not set".
 */
create function private.validate_config(p_provider public.service_providers, p_config jsonb) returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
    v_text text;
begin
    if p_config is null or jsonb_typeof(p_config) <> 'object' then
        raise exception 'config must be an object' using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(p_config) loop
        if v_key ~* '(password|secret|api_?key|token|credential)' then
            raise exception 'config field "%" looks like a secret; pass it in credentials so it is stored in Vault', v_key
                using errcode = '22023';
        end if;
    end loop;
    foreach v_key in array p_provider.required_config_fields loop
        if coalesce(p_config ->> v_key, '') = '' then
            raise exception 'config field "%" is required for %', v_key, p_provider.name using errcode = '22023';
        end if;
    end loop;
    if p_provider.name = 'smtp' then
        if jsonb_typeof(p_config -> 'port') <> 'number' or (p_config ->> 'port')::numeric not between 1 and 65535
           or (p_config ->> 'port')::numeric <> trunc((p_config ->> 'port')::numeric) then
            raise exception 'config.port must be a TCP port number' using errcode = '22023';
        end if;
        if p_config ->> 'security' not in ('tls', 'starttls') then
            raise exception 'config.security must be "tls" (implicit TLS) or "starttls"; plain SMTP is not supported'
                using errcode = '22023';
        end if;
    end if;

    -- No string may start a new header line; a PEM certificate's lines are its format.
    for v_key, v_value in select e.key, e.value from jsonb_each(p_config) e loop
        if v_key <> 'tls_ca' and jsonb_typeof(v_value) = 'string' and (v_value #>> '{}') ~ '[\r\n]' then
            raise exception 'config.% must not contain line breaks (CR/LF)', v_key using errcode = '22023';
        end if;
    end loop;

    foreach v_key in array array['base_url', 'sender_id', 'from_email', 'from_name', 'reply_to', 'host',
                                 'tls_servername', 'tls_ca'] loop
        if jsonb_typeof(p_config -> v_key) not in ('string', 'null') then
            raise exception 'config.% must be a string', v_key using errcode = '22023';
        end if;
        v_text := nullif(p_config ->> v_key, '');
        continue when v_text is null;
        if v_key = 'base_url' and not private.is_base_url(v_text) then
            raise exception 'config.base_url must be an absolute http(s) URL (scheme://host[:port][/path]) with a canonical host and no credentials, query or fragment'
                using errcode = '22023';
        elsif v_key in ('from_email', 'reply_to') and not private.is_email_address(v_text) then
            raise exception 'config.% must be a valid e-mail address', v_key using errcode = '22023';
        elsif v_key = 'from_name' and (length(v_text) > 256 or v_text ~ '[;,]') then
            raise exception 'config.from_name must be at most 256 characters without '';'' or '','''
                using errcode = '22023';
        elsif v_key = 'sender_id' and v_text !~ '^(\+[1-9][0-9]{1,14}|[A-Za-z0-9]{3,11})$' then
            raise exception 'config.sender_id must be an E.164 number or 3-11 letters/digits without spaces'
                using errcode = '22023';
        elsif v_key = 'host' and not private.is_host_or_ip(v_text) then
            raise exception 'config.host must be a host name or an IP address in canonical form (IPv4 as four decimal numbers)'
                using errcode = '22023';
        elsif v_key = 'tls_servername' and not private.is_host_name(v_text) then
            raise exception 'config.tls_servername must be a DNS host name' using errcode = '22023';
        elsif v_key = 'tls_ca' and (length(v_text) > 65536 or strpos(v_text, '-----BEGIN CERTIFICATE-----') = 0) then
            raise exception 'config.tls_ca must be a PEM certificate (-----BEGIN CERTIFICATE-----)' using errcode = '22023';
        end if;
    end loop;
end
$$;

/**
 * Checks a credentials object has exactly the provider's secret fields, as non-empty
 * strings of at most 4096 characters, and no line break in a field that becomes a header
 * or a command. Never echoes a value.
 */
create function private.validate_credentials(p_provider public.service_providers, p_credentials jsonb) returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    v_key text;
begin
    if p_credentials is null or jsonb_typeof(p_credentials) <> 'object' then
        raise exception 'credentials must be an object with %', p_provider.credential_fields using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(p_credentials) loop
        if v_key <> all (p_provider.credential_fields) then
            raise exception 'unknown credential field "%" for %; expected %', v_key, p_provider.name, p_provider.credential_fields
                using errcode = '22023';
        end if;
    end loop;
    foreach v_key in array p_provider.credential_fields loop
        if jsonb_typeof(p_credentials -> v_key) is distinct from 'string'
           or length(p_credentials ->> v_key) not between 1 and 4096 then
            raise exception 'credential field "%" is required (a non-empty string)', v_key using errcode = '22023';
        end if;
        if (p_credentials ->> v_key) ~ '[\r\n]' and not (p_provider.name = 'smtp' and v_key = 'password') then
            raise exception 'credential field "%" must not contain line breaks (CR/LF)', v_key using errcode = '22023';
        end if;
    end loop;
end
$$;

-- CHECK constraints run as the writer: service_role writes addresses too.
grant execute on function private.is_email_address(text) to service_role;
