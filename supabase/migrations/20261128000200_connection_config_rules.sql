/**
 * ---- Section - Connection config rules ----
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
 *   private.validate_config     (replaced) adds the per-field rules: nothing that becomes a
 *                               header or an SMTP command carries CR or LF (NUL cannot be
 *                               stored in jsonb at all), addresses are addresses, ClickSend
 *                               sender ids are E.164 numbers or 3-11 letters/digits
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
