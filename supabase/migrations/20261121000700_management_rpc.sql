/**
 * ---- Section - Management RPCs ----
 * What an app's signed-in user calls through supabase-js:
 *   supabase.rpc('create_connection', {...}) etc.
 * Each public function is a SECURITY INVOKER wrapper over a SECURITY DEFINER function
 * in `private` that checks auth.uid() itself. Errors use PostgREST-friendly codes:
 * PT401/PT404/PT409 map to those HTTP statuses, 42501 to 403, 22023 to 400.
 */

/** The signed-in user, or an error for anon and role-less callers. */
create function private.require_user() returns uuid
language plpgsql stable
set search_path = ''
as $$
declare
    v_uid uuid := auth.uid();
begin
    if v_uid is null then
        raise exception 'sign in required' using errcode = 'PT401';
    end if;
    return v_uid;
end
$$;

/** A connection as its owner may see it: never the Vault secret id. */
create function private.connection_json(c public.connections) returns jsonb
language sql stable
set search_path = ''
as $$
    select jsonb_build_object(
        'id', c.id, 'user_id', c.user_id,
        'provider', (select p.name from public.service_providers p where p.id = c.provider_id),
        'name', c.name, 'config', c.config, 'granted_scopes', to_jsonb(c.granted_scopes),
        'status', c.status, 'has_credentials', c.secret_id is not null,
        'last_tested_at', c.last_tested_at, 'last_test_ok', c.last_test_ok, 'last_test_message', c.last_test_message,
        'webhook_token', c.webhook_token, 'credentials_rotated_at', c.credentials_rotated_at,
        'created_at', c.created_at, 'updated_at', c.updated_at
    )
$$;

/** Checks a credentials object has exactly the provider's secret fields, as non-empty strings. */
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
    end loop;
end
$$;

/** Checks non-secret config: required fields present, nothing that looks like a secret. */
create function private.validate_config(p_provider public.service_providers, p_config jsonb) returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    v_key text;
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
        if jsonb_typeof(p_config -> 'port') <> 'number' or (p_config ->> 'port')::numeric not between 1 and 65535 then
            raise exception 'config.port must be a TCP port number' using errcode = '22023';
        end if;
        if p_config ->> 'security' not in ('tls', 'starttls') then
            raise exception 'config.security must be "tls" (implicit TLS) or "starttls"; plain SMTP is not supported'
                using errcode = '22023';
        end if;
    end if;
end
$$;

/** A live connection of the signed-in user, or not found. */
create function private.owned_connection(p_connection_id uuid) returns public.connections
language plpgsql stable
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_connection public.connections;
begin
    select * into v_connection from public.connections
    where id = p_connection_id and user_id = v_uid and deleted_at is null;
    if not found then
        raise exception 'connection not found' using errcode = 'PT404';
    end if;
    return v_connection;
end
$$;

/**
 * Connects a provider account. Credentials go to Vault (vault.create_secret); the row
 * keeps only the secret id. Scopes default to everything the provider supports.
 */
create function private.create_connection(
    p_provider text, p_name text, p_credentials jsonb, p_config jsonb default '{}', p_scopes text[] default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_provider public.service_providers;
    v_connection public.connections;
begin
    select * into v_provider from public.service_providers where name = p_provider and is_enabled;
    if not found then
        raise exception 'unknown provider "%"', p_provider using errcode = '22023';
    end if;
    perform private.validate_credentials(v_provider, p_credentials);
    perform private.validate_config(v_provider, coalesce(p_config, '{}'));

    insert into public.connections (user_id, provider_id, name, config, granted_scopes)
    values (v_uid, v_provider.id, btrim(p_name), coalesce(p_config, '{}'), coalesce(p_scopes, v_provider.scopes_supported))
    returning * into v_connection;

    update public.connections
    set secret_id = vault.create_secret(p_credentials::text, 'switchboard.connection.' || v_connection.id,
                                        'Credentials of Switchboard connection ' || v_connection.id)
    where id = v_connection.id
    returning * into v_connection;
    return private.connection_json(v_connection);
exception
    when unique_violation then
        raise exception 'you already have a connection named "%"', p_name using errcode = 'PT409';
end
$$;

/**
 * Changes a connection: keys present in p_changes are applied (name, config, scopes,
 * status 'active'|'disabled'). Narrowing scopes also narrows every grant on it; a
 * grant left with no scope is removed.
 */
create function private.update_connection(p_connection_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.owned_connection(p_connection_id);
    v_provider public.service_providers;
    v_key text;
begin
    if p_changes is null or jsonb_typeof(p_changes) <> 'object' then
        raise exception 'changes must be an object' using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(p_changes) loop
        if v_key not in ('name', 'config', 'scopes', 'status') then
            raise exception 'cannot change "%" (allowed: name, config, scopes, status)', v_key using errcode = '22023';
        end if;
    end loop;
    select * into v_provider from public.service_providers where id = v_connection.provider_id;
    if p_changes ? 'config' then
        perform private.validate_config(v_provider, p_changes -> 'config');
    end if;
    if p_changes ? 'status' and p_changes ->> 'status' not in ('active', 'disabled') then
        raise exception 'status must be active or disabled' using errcode = '22023';
    end if;
    if p_changes ? 'scopes' and jsonb_typeof(p_changes -> 'scopes') <> 'array' then
        raise exception 'scopes must be an array' using errcode = '22023';
    end if;

    update public.connections c set
        name = coalesce(btrim(p_changes ->> 'name'), c.name),
        config = coalesce(p_changes -> 'config', c.config),
        granted_scopes = case when p_changes ? 'scopes'
            then array(select jsonb_array_elements_text(p_changes -> 'scopes')) else c.granted_scopes end,
        status = coalesce(p_changes ->> 'status', c.status)
    where c.id = v_connection.id
    returning * into v_connection;

    if p_changes ? 'scopes' then
        delete from public.agent_permissions
        where connection_id = v_connection.id and not (allowed_scopes && v_connection.granted_scopes);
        update public.agent_permissions p
        set allowed_scopes = array(select s from unnest(p.allowed_scopes) s where s = any (v_connection.granted_scopes))
        where p.connection_id = v_connection.id and not (p.allowed_scopes <@ v_connection.granted_scopes);
    end if;
    return private.connection_json(v_connection);
exception
    when unique_violation then
        raise exception 'you already have a connection named "%"', p_changes ->> 'name' using errcode = 'PT409';
end
$$;

/** Replaces a connection's credentials in Vault (vault.update_secret). */
create function private.rotate_connection_credentials(p_connection_id uuid, p_credentials jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.owned_connection(p_connection_id);
    v_provider public.service_providers;
begin
    select * into v_provider from public.service_providers where id = v_connection.provider_id;
    perform private.validate_credentials(v_provider, p_credentials);
    perform vault.update_secret(v_connection.secret_id, p_credentials::text);
    update public.connections
    set credentials_rotated_at = now(), last_test_ok = null, last_test_message = null, last_tested_at = null,
        status = case when status = 'error' then 'active' else status end
    where id = v_connection.id
    returning * into v_connection;
    return private.connection_json(v_connection);
end
$$;

/**
 * Deletes a connection: its Vault secret is deleted, the row is soft-deleted (the
 * operation log keeps pointing at it) and every grant on it is revoked.
 */
create function private.delete_connection(p_connection_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.owned_connection(p_connection_id);
begin
    delete from vault.secrets where id = v_connection.secret_id;
    update public.agent_permissions set is_active = false, revoked_at = coalesce(revoked_at, now())
    where connection_id = v_connection.id;
    update public.connections set deleted_at = now(), status = 'disabled', secret_id = null
    where id = v_connection.id;
    return jsonb_build_object('id', v_connection.id, 'deleted', true);
end
$$;

/** Checks a grant's limits before they are stored. */
create function private.validate_limits(p_daily_send_limit integer, p_max_recipients integer)
returns void
language plpgsql immutable
set search_path = ''
as $$
begin
    if p_daily_send_limit < 0 then
        raise exception 'daily_send_limit must be 0 or more (null for no daily limit)' using errcode = '22023';
    end if;
    if p_max_recipients not between 1 and 10000 then
        raise exception 'max_recipients_per_message must be between 1 and 10000' using errcode = '22023';
    end if;
end
$$;

/** A permission row as JSON. */
create function private.permission_json(p public.agent_permissions) returns jsonb
language sql stable
set search_path = ''
as $$
    select to_jsonb(p)
$$;

/**
 * Grants an agent scopes on a connection with limits (or replaces an existing grant
 * for the same pair, reactivating it). The agent and connection must be the caller's;
 * the scopes must be a subset of the connection's (enforced by trigger).
 */
create function private.grant_agent_permission(
    p_agent_id uuid,
    p_connection_id uuid,
    p_scopes text[],
    p_daily_send_limit integer default 100,
    p_max_recipients_per_message integer default 10,
    p_allowed_recipients text[] default '{}',
    p_blocked_recipients text[] default '{}',
    p_expires_at timestamptz default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_connection public.connections := private.owned_connection(p_connection_id);
    v_permission public.agent_permissions;
begin
    if not exists (select 1 from public.agents where id = p_agent_id and user_id = v_uid) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    if p_scopes is null or cardinality(p_scopes) = 0 then
        raise exception 'at least one scope is required' using errcode = '22023';
    end if;
    perform private.validate_limits(p_daily_send_limit, p_max_recipients_per_message);

    insert into public.agent_permissions as p (
        user_id, agent_id, connection_id, allowed_scopes, daily_send_limit, max_recipients_per_message,
        allowed_recipients, blocked_recipients, expires_at, granted_by
    ) values (
        v_uid, p_agent_id, v_connection.id, p_scopes, p_daily_send_limit, p_max_recipients_per_message,
        coalesce(p_allowed_recipients, '{}'), coalesce(p_blocked_recipients, '{}'), p_expires_at, v_uid
    )
    on conflict (agent_id, connection_id) do update set
        allowed_scopes = excluded.allowed_scopes,
        daily_send_limit = excluded.daily_send_limit,
        max_recipients_per_message = excluded.max_recipients_per_message,
        allowed_recipients = excluded.allowed_recipients,
        blocked_recipients = excluded.blocked_recipients,
        expires_at = excluded.expires_at,
        granted_by = excluded.granted_by,
        granted_at = now(),
        is_active = true,
        revoked_at = null
    returning * into v_permission;
    return private.permission_json(v_permission);
exception
    when check_violation then
        raise exception 'invalid recipient pattern: use E.164 prefixes (+61) or e-mail patterns (a@x.com, x.com, *.x.com)'
            using errcode = '22023';
end
$$;

/**
 * Changes a grant: keys present in p_changes are applied (scopes, daily_send_limit,
 * max_recipients_per_message, allowed_recipients, blocked_recipients, expires_at,
 * is_active). A JSON null clears daily_send_limit / expires_at.
 */
create function private.update_agent_permission(p_permission_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_permission public.agent_permissions;
    v_key text;
begin
    select * into v_permission from public.agent_permissions where id = p_permission_id and user_id = v_uid;
    if not found then
        raise exception 'permission not found' using errcode = 'PT404';
    end if;
    if p_changes is null or jsonb_typeof(p_changes) <> 'object' then
        raise exception 'changes must be an object' using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(p_changes) loop
        if v_key not in ('scopes', 'daily_send_limit', 'max_recipients_per_message', 'allowed_recipients',
                         'blocked_recipients', 'expires_at', 'is_active') then
            raise exception 'cannot change "%"', v_key using errcode = '22023';
        end if;
    end loop;

    update public.agent_permissions p set
        allowed_scopes = case when p_changes ? 'scopes'
            then array(select jsonb_array_elements_text(p_changes -> 'scopes')) else p.allowed_scopes end,
        daily_send_limit = case when p_changes ? 'daily_send_limit'
            then (p_changes ->> 'daily_send_limit')::integer else p.daily_send_limit end,
        max_recipients_per_message = coalesce((p_changes ->> 'max_recipients_per_message')::integer, p.max_recipients_per_message),
        allowed_recipients = case when p_changes ? 'allowed_recipients'
            then array(select jsonb_array_elements_text(p_changes -> 'allowed_recipients')) else p.allowed_recipients end,
        blocked_recipients = case when p_changes ? 'blocked_recipients'
            then array(select jsonb_array_elements_text(p_changes -> 'blocked_recipients')) else p.blocked_recipients end,
        expires_at = case when p_changes ? 'expires_at'
            then (p_changes ->> 'expires_at')::timestamptz else p.expires_at end,
        is_active = coalesce((p_changes ->> 'is_active')::boolean, p.is_active),
        revoked_at = case when (p_changes ->> 'is_active')::boolean is true then null
                          when (p_changes ->> 'is_active')::boolean is false then coalesce(p.revoked_at, now())
                          else p.revoked_at end
    where p.id = v_permission.id
    returning * into v_permission;
    perform private.validate_limits(v_permission.daily_send_limit, v_permission.max_recipients_per_message);
    return private.permission_json(v_permission);
exception
    when check_violation then
        raise exception 'invalid limits or recipient patterns' using errcode = '22023';
    when invalid_text_representation or datetime_field_overflow or invalid_datetime_format then
        raise exception 'invalid value in changes: %', sqlerrm using errcode = '22023';
end
$$;

/** Revokes a grant at once; the agent loses its tools and calls are refused. */
create function private.revoke_agent_permission(p_permission_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_permission public.agent_permissions;
begin
    update public.agent_permissions
    set is_active = false, revoked_at = coalesce(revoked_at, now())
    where id = p_permission_id and user_id = v_uid
    returning * into v_permission;
    if not found then
        raise exception 'permission not found' using errcode = 'PT404';
    end if;
    return private.permission_json(v_permission);
end
$$;

/**
 * Issues an agent key. The key is returned once; only its SHA-256 is stored.
 * Format: sb_agent_<43 url-safe chars> (256 bits of randomness).
 */
create function private.issue_agent_key(p_agent_id uuid, p_name text default null, p_expires_at timestamptz default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_key text;
    v_row public.agent_keys;
begin
    if not exists (select 1 from public.agents where id = p_agent_id and user_id = v_uid) then
        raise exception 'agent not found' using errcode = 'PT404';
    end if;
    if p_expires_at is not null and p_expires_at <= now() then
        raise exception 'expires_at must be in the future' using errcode = '22023';
    end if;
    v_key := 'sb_agent_' || rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');
    insert into public.agent_keys (user_id, agent_id, name, key_prefix, key_hash, expires_at)
    values (v_uid, p_agent_id, p_name, left(v_key, 16), private.sha256_hex(v_key), p_expires_at)
    returning * into v_row;
    return jsonb_build_object('id', v_row.id, 'agent_id', v_row.agent_id, 'name', v_row.name, 'key', v_key,
                              'key_prefix', v_row.key_prefix, 'expires_at', v_row.expires_at, 'created_at', v_row.created_at);
end
$$;

/** Revokes an agent key; it is refused everywhere from the next request on. */
create function private.revoke_agent_key(p_key_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_row public.agent_keys;
begin
    update public.agent_keys set revoked_at = coalesce(revoked_at, now())
    where id = p_key_id and user_id = v_uid
    returning * into v_row;
    if not found then
        raise exception 'agent key not found' using errcode = 'PT404';
    end if;
    return jsonb_build_object('id', v_row.id, 'agent_id', v_row.agent_id, 'revoked_at', v_row.revoked_at);
end
$$;

/** Creates an agent for the signed-in user (the same as inserting into agents under RLS). */
create function public.create_agent(p_name text, p_description text default null) returns jsonb
language sql
security invoker
set search_path = ''
as $$
    insert into public.agents (name, description) values (p_name, p_description)
    returning to_jsonb(agents.*)
$$;

-- ---- Public wrappers (SECURITY INVOKER; the private function checks the caller) ----

/** Connect a provider account: supabase.rpc('create_connection', {p_provider, p_name, p_credentials, p_config, p_scopes}). */
create function public.create_connection(
    p_provider text, p_name text, p_credentials jsonb, p_config jsonb default '{}', p_scopes text[] default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.create_connection(p_provider, p_name, p_credentials, p_config, p_scopes) $$;

/** Change a connection's name, config, scopes or status. */
create function public.update_connection(p_connection_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_connection(p_connection_id, p_changes) $$;

/** Replace a connection's credentials (stored in Vault). */
create function public.rotate_connection_credentials(p_connection_id uuid, p_credentials jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.rotate_connection_credentials(p_connection_id, p_credentials) $$;

/** Delete a connection and its credentials; revokes every grant on it. */
create function public.delete_connection(p_connection_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.delete_connection(p_connection_id) $$;

/** Grant an agent scopes on a connection, with limits. */
create function public.grant_agent_permission(
    p_agent_id uuid, p_connection_id uuid, p_scopes text[],
    p_daily_send_limit integer default 100, p_max_recipients_per_message integer default 10,
    p_allowed_recipients text[] default '{}', p_blocked_recipients text[] default '{}',
    p_expires_at timestamptz default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.grant_agent_permission(p_agent_id, p_connection_id, p_scopes, p_daily_send_limit,
    p_max_recipients_per_message, p_allowed_recipients, p_blocked_recipients, p_expires_at) $$;

/** Change a grant's scopes or limits. */
create function public.update_agent_permission(p_permission_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_agent_permission(p_permission_id, p_changes) $$;

/** Revoke a grant. */
create function public.revoke_agent_permission(p_permission_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.revoke_agent_permission(p_permission_id) $$;

/** Issue an agent key (returned once). */
create function public.issue_agent_key(p_agent_id uuid, p_name text default null, p_expires_at timestamptz default null)
returns jsonb
language sql security invoker set search_path = ''
as $$ select private.issue_agent_key(p_agent_id, p_name, p_expires_at) $$;

/** Revoke an agent key. */
create function public.revoke_agent_key(p_key_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.revoke_agent_key(p_key_id) $$;

-- ---- Grants: signed-in users only ----
grant execute on function
    private.create_connection(text, text, jsonb, jsonb, text[]),
    private.update_connection(uuid, jsonb),
    private.rotate_connection_credentials(uuid, jsonb),
    private.delete_connection(uuid),
    private.grant_agent_permission(uuid, uuid, text[], integer, integer, text[], text[], timestamptz),
    private.update_agent_permission(uuid, jsonb),
    private.revoke_agent_permission(uuid),
    private.issue_agent_key(uuid, text, timestamptz),
    private.revoke_agent_key(uuid)
to authenticated;

grant execute on function
    public.create_agent(text, text),
    public.create_connection(text, text, jsonb, jsonb, text[]),
    public.update_connection(uuid, jsonb),
    public.rotate_connection_credentials(uuid, jsonb),
    public.delete_connection(uuid),
    public.grant_agent_permission(uuid, uuid, text[], integer, integer, text[], text[], timestamptz),
    public.update_agent_permission(uuid, jsonb),
    public.revoke_agent_permission(uuid),
    public.issue_agent_key(uuid, text, timestamptz),
    public.revoke_agent_key(uuid)
to authenticated;
