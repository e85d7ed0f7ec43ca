/**
 * ---- Section - Credential rules ----
 * Credentials are input too: a value that becomes an HTTP header or an SMTP command
 * (ClickSend's username and API key in Basic auth, SendGrid's key in a Bearer header,
 * the SMTP username in AUTH) must not carry a line break, or it could start a header or
 * a command of its own. The functions refuse such a value before use; this refuses it
 * when it is stored, by the same rule. The SMTP password is exempt: AUTH sends it
 * base64-encoded, so any character is safe there. (NUL cannot reach jsonb at all.)
 */

/**
 * Checks a credentials object has exactly the provider's secret fields, as non-empty
 * strings of at most 4096 characters, and no line break in a field that becomes a header
 * or a command. Never echoes a value.
 */
create or replace function private.validate_credentials(p_provider public.service_providers, p_credentials jsonb) returns void
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
