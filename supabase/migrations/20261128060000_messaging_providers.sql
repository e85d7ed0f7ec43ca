/**
 * ==== Messaging providers: Twilio, Telnyx, Exotel ====
 * Three more providers on the one adapter interface, and what they bring:
 *   catalogue      each provider's config schema as data (generated from the adapters'
 *                  zod schemas by `npm run gen:schemas`), its webhook kinds and function
 *   config rules   private.validate_config also checks a connection's config against
 *                  its provider's schema when it is stored
 *   number sync    private.sync_phone_numbers: the numbers a provider lists become the
 *                  connection's, without ever dropping a member's assignment
 *   delivery       message events carry one normalised delivery status; inbound messages
 *                  are attributed to the member the receiving number is assigned to
 */

-- ---- Section - Catalogue ----
alter table public.service_providers
    /* JSON Schema of a connection's config (generated; validated when a connection is stored) */
    add column config_schema jsonb not null default '{"type": "object", "properties": {}}',
    /* the edge function serving the provider: /<function_name>/… and its webhooks */
    add column function_name text check (function_name ~ '^[a-z][a-z0-9-]{1,40}$'),
    /* webhook kinds the provider posts to: /<function_name>/webhooks/<token>/<kind> */
    add column webhook_kinds text[] not null default '{}',
    /* for providers that take a status callback URL on each send: the kind it names */
    add column status_callback_kind text,
    add constraint service_providers_status_callback_kind_check
        check (status_callback_kind is null or status_callback_kind = any (webhook_kinds));

update public.service_providers set function_name = 'clicksend', webhook_kinds = array['receipts', 'inbound'] where name = 'clicksend_sms';
update public.service_providers set function_name = 'sendgrid', webhook_kinds = array['events'] where name = 'sendgrid';
update public.service_providers set function_name = 'smtp' where name = 'smtp';

insert into public.service_providers (name, display_name, auth_type, channels, scopes_supported, credential_fields,
                                      required_config_fields, configuration_metadata, function_name, webhook_kinds,
                                      status_callback_kind)
values
    ('twilio', 'Twilio', 'basic_auth', array['sms', 'mms', 'whatsapp'], array['sms', 'mms', 'whatsapp', 'balance', 'numbers'],
     array['account_sid', 'auth_token'], array[]::text[],
     '{"api_base_url": "https://api.twilio.com", "auth_header_format": "Basic base64(account_sid:auth_token)",
       "webhook_signature": "X-Twilio-Signature (HMAC-SHA1 with the auth token)", "delivery_receipts": true,
       "inbound_messages": true, "lists_numbers": true}',
     'twilio', array['status', 'inbound'], 'status'),
    ('telnyx', 'Telnyx', 'api_key', array['sms', 'mms'], array['sms', 'mms', 'balance', 'numbers'],
     array['api_key'], array[]::text[],
     '{"api_base_url": "https://api.telnyx.com/v2", "auth_header_format": "Bearer api_key",
       "webhook_signature": "telnyx-signature-ed25519 over timestamp|body (the account public key in config.webhook_public_key)",
       "delivery_receipts": true, "inbound_messages": true, "lists_numbers": true}',
     'telnyx', array['events'], 'events'),
    ('exotel', 'Exotel', 'basic_auth', array['sms', 'whatsapp', 'voice'], array['sms', 'whatsapp', 'voice', 'balance', 'numbers'],
     array['api_key', 'api_token'], array['account_sid'],
     '{"api_base_url": "https://api.exotel.com (Singapore) or https://api.in.exotel.com (Mumbai)",
       "auth_header_format": "Basic base64(api_key:api_token)",
       "webhook_signature": "none: Exotel does not sign callbacks; the URL token authenticates them",
       "delivery_receipts": true, "inbound_messages": true, "click_to_call": true, "lists_numbers": true}',
     'exotel', array['status', 'whatsapp'], 'status');

-- The provider-specific tools behind each provider function's routes. Agents' channel
-- tools send through these providers too. Input schemas: the generated schemas migration.
insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope,
                                             is_read_only, is_destructive, sends_messages, display_order)
select p.id, c.capability_key, c.display_label, c.description, c.required_scope, c.is_read_only, c.is_destructive,
       c.sends_messages, c.display_order
from (values
    ('twilio', 'twilio_send_sms', 'Send SMS (Twilio)',
     'Send an SMS text message through Twilio to one or more phone numbers (international format, e.g. +14155550123).',
     'sms', false, false, true, 1),
    ('twilio', 'twilio_send_mms', 'Send MMS (Twilio)',
     'Send an MMS (text plus up to 10 media files) through Twilio.', 'mms', false, false, true, 2),
    ('twilio', 'twilio_send_whatsapp', 'Send WhatsApp (Twilio)',
     'Send a WhatsApp message through Twilio: free-form text within 24 hours of the person''s last message, else an approved template.',
     'whatsapp', false, false, true, 3),
    ('twilio', 'twilio_get_balance', 'Check balance (Twilio)', 'Get the Twilio account balance and currency.',
     'balance', true, false, false, 4),
    ('telnyx', 'telnyx_send_sms', 'Send SMS (Telnyx)',
     'Send an SMS text message through Telnyx to one or more phone numbers (international format).', 'sms', false, false, true, 1),
    ('telnyx', 'telnyx_send_mms', 'Send MMS (Telnyx)',
     'Send an MMS (text plus up to 10 media files) through Telnyx.', 'mms', false, false, true, 2),
    ('telnyx', 'telnyx_get_balance', 'Check balance (Telnyx)', 'Get the Telnyx account balance, credit limit and currency.',
     'balance', true, false, false, 3),
    ('exotel', 'exotel_send_sms', 'Send SMS (Exotel)',
     'Send an SMS through Exotel (India: the account''s DLT entity and template apply).', 'sms', false, false, true, 1),
    ('exotel', 'exotel_send_whatsapp', 'Send WhatsApp (Exotel)',
     'Send a WhatsApp message through Exotel: free-form text within 24 hours of the person''s last message, else an approved template.',
     'whatsapp', false, false, true, 2),
    ('exotel', 'exotel_click_to_call', 'Click-to-call (Exotel)',
     'Connect two phones: Exotel rings your phone first, then the number to call, showing the account''s number to both.',
     'voice', false, false, true, 3)
) as c (provider, capability_key, display_label, description, required_scope, is_read_only, is_destructive,
        sends_messages, display_order)
join public.service_providers p on p.name = c.provider;

-- ---- Section - Config rules ----

/**
 * Checks a config object against a provider's config schema (the subset of JSON Schema
 * the generator writes): known keys only when the schema says additionalProperties false;
 * per property its type, enum, length and range, and pattern; required properties
 * present. A null or "" value means "not set". Never echoes a value.
 */
create function private.validate_config_schema(p_provider_name text, p_schema jsonb, p_config jsonb) returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
    v_property jsonb;
    v_type text;
begin
    for v_key, v_value in select e.key, e.value from jsonb_each(p_config) e loop
        v_property := p_schema -> 'properties' -> v_key;
        if v_property is null then
            if p_schema -> 'additionalProperties' = 'false'::jsonb then
                raise exception 'unknown config field "%" for %; expected one of %', v_key, p_provider_name,
                    (select string_agg(k, ', ' order by k) from jsonb_object_keys(p_schema -> 'properties') k)
                    using errcode = '22023';
            end if;
            continue;
        end if;
        continue when jsonb_typeof(v_value) = 'null' or v_value = '""'::jsonb;
        v_type := coalesce(v_property ->> 'type',
                           (select t from jsonb_array_elements_text(v_property -> 'type') t where t <> 'null' limit 1));
        if (v_type = 'string' and jsonb_typeof(v_value) <> 'string')
           or (v_type in ('integer', 'number') and jsonb_typeof(v_value) <> 'number')
           or (v_type = 'integer' and jsonb_typeof(v_value) = 'number' and (v_value #>> '{}')::numeric <> trunc((v_value #>> '{}')::numeric))
           or (v_type = 'boolean' and jsonb_typeof(v_value) <> 'boolean') then
            raise exception 'config.% must be a%', v_key,
                case v_type when 'integer' then 'n integer' when 'boolean' then ' boolean' when 'number' then ' number' else ' string' end
                using errcode = '22023';
        end if;
        if v_property ? 'enum' and not (v_property -> 'enum') @> jsonb_build_array(v_value) then
            raise exception 'config.% must be one of %', v_key,
                (select string_agg(e, ', ') from jsonb_array_elements_text(v_property -> 'enum') e) using errcode = '22023';
        end if;
        if jsonb_typeof(v_value) = 'string' then
            if length(v_value #>> '{}') > coalesce((v_property ->> 'maxLength')::integer, 4096)
               or length(v_value #>> '{}') < coalesce((v_property ->> 'minLength')::integer, 0) then
                raise exception 'config.% must be % to % characters', v_key, coalesce(v_property ->> 'minLength', '0'),
                    coalesce(v_property ->> 'maxLength', '4096') using errcode = '22023';
            end if;
            if v_property ? 'pattern' and (v_value #>> '{}') !~ (v_property ->> 'pattern') then
                raise exception 'config.% is not in the expected form%', v_key,
                    coalesce(': ' || (v_property ->> 'description'), '') using errcode = '22023';
            end if;
        elsif jsonb_typeof(v_value) = 'number' then
            if (v_value #>> '{}')::numeric < coalesce((v_property ->> 'minimum')::numeric, '-Infinity'::numeric)
               or (v_value #>> '{}')::numeric > coalesce((v_property ->> 'maximum')::numeric, 'Infinity'::numeric) then
                raise exception 'config.% is out of range', v_key using errcode = '22023';
            end if;
        end if;
    end loop;
    for v_key in select jsonb_array_elements_text(coalesce(p_schema -> 'required', '[]')) loop
        if coalesce(p_config ->> v_key, '') = '' then
            raise exception 'config field "%" is required for %', v_key, p_provider_name using errcode = '22023';
        end if;
    end loop;
end
$$;

/**
 * Checks a config object when a connection is stored: the provider's config schema, then
 * the rules every provider shares (nothing that looks like a secret, no line breaks,
 * addresses, hosts and URLs in canonical form; see the catalogue migration).
 */
create or replace function private.validate_config(p_provider public.service_providers, p_config jsonb) returns void
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
        if v_key ~* '(password|secret|api_?key|token|credential)' and v_key <> 'webhook_public_key' then
            raise exception 'config field "%" looks like a secret; pass it in credentials so it is stored in Vault', v_key
                using errcode = '22023';
        end if;
    end loop;
    foreach v_key in array p_provider.required_config_fields loop
        if coalesce(p_config ->> v_key, '') = '' then
            raise exception 'config field "%" is required for %', v_key, p_provider.name using errcode = '22023';
        end if;
    end loop;
    perform private.validate_config_schema(p_provider.name, p_provider.config_schema, p_config);
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
                                 'tls_servername', 'tls_ca', 'status_callback_url'] loop
        if jsonb_typeof(p_config -> v_key) not in ('string', 'null') then
            raise exception 'config.% must be a string', v_key using errcode = '22023';
        end if;
        v_text := nullif(p_config ->> v_key, '');
        continue when v_text is null;
        if v_key in ('base_url', 'status_callback_url') and not private.is_base_url(v_text) then
            raise exception 'config.% must be an absolute http(s) URL (scheme://host[:port][/path]) with a canonical host and no credentials, query or fragment', v_key
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

-- ---- Section - Webhooks that need the connection's secret ----

/**
 * The connection a webhook token addresses with its credentials, for the service only:
 * Twilio signs with the account's auth token, so the signature is checked with it before
 * anything is recorded. Null when the token addresses no live connection of the provider.
 */
create function private.webhook_connection_secrets(p_webhook_token text, p_provider text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select jsonb_build_object('connection_id', c.id, 'workspace_id', c.workspace_id, 'config', c.config,
                                      'credentials', (select s.decrypted_secret::jsonb from vault.decrypted_secrets s where s.id = c.secret_id))
        from public.connections c
        join public.service_providers p on p.id = c.provider_id
        join public.connection_webhooks w on w.connection_id = c.id
        where w.webhook_token = p_webhook_token and p.name = p_provider and c.deleted_at is null);
end
$$;

-- ---- Section - Number sync ----

/**
 * Config and credentials of a connection for the service, when p_user_id administers it
 * (an owner or admin of its workspace; null p_user_id: the service itself); else null.
 */
create function private.connection_for_admin(p_user_id uuid, p_connection_id uuid, p_provider text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select jsonb_build_object('connection_id', c.id, 'workspace_id', c.workspace_id, 'config', c.config,
                                      'credentials', (select s.decrypted_secret::jsonb from vault.decrypted_secrets s where s.id = c.secret_id))
        from public.connections c
        join public.service_providers p on p.id = c.provider_id
        where c.id = p_connection_id and p.name = p_provider and c.deleted_at is null
          and (p_user_id is null or private.connection_access(c.id, p_user_id) = 'admin'));
end
$$;

/**
 * Brings a connection's numbers in line with what its provider lists, for p_user_id (an
 * owner or admin; null: the service). p_numbers: [{phone_number, friendly_name,
 * capabilities: {sms, mms, voice, whatsapp}}].
 *  - a listed number that is new joins the workspace's pool (the connection's first
 *    becomes its default);
 *  - a listed number already there takes the provider's capabilities and name and is
 *    active again; its assignment, default and member defaults stay;
 *  - a number the provider no longer lists is marked inactive, never deleted: a member's
 *    assignment survives a provider that briefly lists nothing, and inactive numbers are
 *    never sent from.
 * A number without any capability the provider reports is skipped.
 * Returns {added, updated, deactivated, unchanged, skipped}; audited as numbers.synced
 * with the client (p_client {ip, user_agent}) the function passes.
 */
create function private.sync_phone_numbers(p_user_id uuid, p_connection_id uuid, p_numbers jsonb, p_client jsonb default null) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections;
    v_listed jsonb := '[]'::jsonb;
    v_number jsonb;
    v_capabilities text[];
    v_e164 text;
    v_existing public.phone_numbers;
    v_added integer := 0;
    v_updated integer := 0;
    v_unchanged integer := 0;
    v_skipped integer := 0;
    v_deactivated integer;
begin
    select * into v_connection from public.connections where id = p_connection_id and deleted_at is null;
    if not found or (p_user_id is not null and private.connection_access(p_connection_id, p_user_id) is distinct from 'admin') then
        raise exception 'connection not found' using errcode = 'PT404';
    end if;
    if jsonb_typeof(p_numbers) is distinct from 'array' then
        raise exception 'numbers must be an array' using errcode = '22023';
    end if;
    -- Two syncs of one connection take turns.
    perform 1 from public.connections where id = p_connection_id for update;

    for v_number in select * from jsonb_array_elements(p_numbers) loop
        v_e164 := v_number ->> 'phone_number';
        v_capabilities := array(select c from unnest(array['sms', 'mms', 'voice', 'whatsapp']) c
                                where coalesce((v_number -> 'capabilities' ->> c)::boolean, false));
        if v_e164 is null or v_e164 !~ '^\+[1-9][0-9]{1,14}$' or cardinality(v_capabilities) = 0 then
            v_skipped := v_skipped + 1;
            continue;
        end if;
        v_listed := v_listed || to_jsonb(v_e164);
        select * into v_existing from public.phone_numbers where connection_id = p_connection_id and e164 = v_e164;
        if not found then
            insert into public.phone_numbers (workspace_id, connection_id, e164, friendly_name, capabilities, is_default)
            values (v_connection.workspace_id, p_connection_id, v_e164, left(v_number ->> 'friendly_name', 100), v_capabilities,
                    not exists (select 1 from public.phone_numbers n where n.connection_id = p_connection_id and n.is_default));
            v_added := v_added + 1;
        elsif v_existing.capabilities is distinct from v_capabilities or v_existing.status <> 'active'
              or (v_number ->> 'friendly_name' is not null and v_existing.friendly_name is distinct from left(v_number ->> 'friendly_name', 100)) then
            update public.phone_numbers set
                capabilities = v_capabilities, status = 'active',
                friendly_name = coalesce(left(v_number ->> 'friendly_name', 100), friendly_name),
                updated_at = now()
            where id = v_existing.id;
            v_updated := v_updated + 1;
        else
            v_unchanged := v_unchanged + 1;
        end if;
    end loop;

    update public.phone_numbers set status = 'inactive', updated_at = now()
    where connection_id = p_connection_id and status = 'active'
      and not (v_listed @> to_jsonb(e164));
    get diagnostics v_deactivated = row_count;

    perform private.audit(v_connection.workspace_id, 'numbers.synced', 'connection', p_connection_id::text,
                          jsonb_build_object('added', v_added, 'updated', v_updated, 'deactivated', v_deactivated,
                                             'unchanged', v_unchanged, 'skipped', v_skipped),
                          p_user_id, p_client);
    return jsonb_build_object('added', v_added, 'updated', v_updated, 'deactivated', v_deactivated,
                              'unchanged', v_unchanged, 'skipped', v_skipped);
end
$$;

-- ---- Section - Normalised delivery ----
alter table public.message_events
    /* one status set for every provider: queued, sent, delivered, undelivered, failed, read */
    add column delivery_status text check (delivery_status in ('queued', 'sent', 'delivered', 'undelivered', 'failed', 'read')),
    /* sms, mms, whatsapp, email, voice */
    add column channel text check (channel in ('sms', 'mms', 'whatsapp', 'email', 'voice')),
    /* for an inbound message: the account's number it was sent to */
    add column our_number text;
create index message_events_connection_id_idx on public.message_events (connection_id);

/**
 * Stores provider webhook events for the connection the token addresses, deduplicated
 * by (connection, provider_event_id) and linked to operations: by our operation id
 * when the provider echoed it, else by provider message id; an inbound reply without
 * either is linked to the latest operation that sent to its author. A delivery report is
 * attributed to the member its operation was for; an inbound message to the member the
 * receiving number is assigned to (else to the member of the linked operation). An event
 * that does not name its channel takes its operation's.
 * Each event: {provider_event_id, event_type, status, delivery_status, channel,
 * provider_message_id, operation_id, recipient, our_number, original_message_id,
 * occurred_at, payload}.
 */
create or replace function private.record_message_events(p_webhook_token text, p_provider text, p_events jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections;
    v_event jsonb;
    v_operation_id uuid;
    v_user_id uuid;
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
        v_user_id := null;
        if v_event ->> 'event_type' = 'inbound_message' and v_event ->> 'our_number' is not null then
            select n.assigned_to into v_user_id from public.phone_numbers n
            where n.connection_id = v_connection.id and n.e164 = v_event ->> 'our_number';
        end if;
        if v_user_id is null and v_operation_id is not null then
            select o.user_id into v_user_id from public.operations o where o.id = v_operation_id;
        end if;

        insert into public.message_events (workspace_id, user_id, connection_id, operation_id, event_type, status,
                                           delivery_status, channel, provider_event_id, provider_message_id, recipient,
                                           our_number, payload, occurred_at)
        values (v_connection.workspace_id, v_user_id, v_connection.id, v_operation_id, v_event ->> 'event_type',
                v_event ->> 'status', v_event ->> 'delivery_status',
                -- A report that does not say its channel has its send's (the tool's scope).
                coalesce(v_event ->> 'channel',
                         (select c.required_scope from public.operations o
                          join public.integration_capabilities c on c.capability_key = o.capability_key
                          where o.id = v_operation_id and c.required_scope in ('sms', 'mms', 'whatsapp', 'voice', 'email'))),
                v_event ->> 'provider_event_id', v_event ->> 'provider_message_id', v_event ->> 'recipient',
                v_event ->> 'our_number', coalesce(v_event -> 'payload', '{}'), (v_event ->> 'occurred_at')::timestamptz)
        on conflict (connection_id, provider_event_id) do nothing;
        get diagnostics v_row_count = row_count;
        v_inserted := v_inserted + v_row_count;
        v_duplicates := v_duplicates + 1 - v_row_count;
    end loop;
    return jsonb_build_object('ok', true, 'inserted', v_inserted, 'duplicates', v_duplicates);
end
$$;

-- ---- Section - Privileges ----
revoke execute on function
    private.validate_config_schema(text, jsonb, jsonb),
    private.webhook_connection_secrets(text, text),
    private.connection_for_admin(uuid, uuid, text),
    private.sync_phone_numbers(uuid, uuid, jsonb, jsonb)
from public, anon, authenticated;
grant execute on function
    private.webhook_connection_secrets(text, text),
    private.connection_for_admin(uuid, uuid, text),
    private.sync_phone_numbers(uuid, uuid, jsonb, jsonb)
to service_role;
