/**
 * ==== Setup ====
 * Privileges first (basejump style): no function is executable by PUBLIC unless a
 * migration grants it, and new tables get no Data API grants implicitly (matching
 * Supabase's 2026 default). `private` holds SECURITY DEFINER code and the rules'
 * helpers; it is never exposed through the Data API.
 *
 * The migrations, one per domain, in order:
 *   setup          privileges, the private schema, small shared helpers, credential logging
 *   catalogue      providers and capabilities (reference data), config and credential rules
 *   workspaces     workspaces, members, roles, invitations; the role helper every policy uses
 *   audit          the append-only trail of administrative actions
 *   connections    provider accounts of a workspace, phone numbers, sender identities
 *   permissions    member permissions, agents, agent grants, agent keys, effective rights
 *   ledger         the tool-call path: operations, usage counters, begin/finish, reconcilers
 *   webhooks       provider events (receipts, inbound messages, mail events)
 *   discovery      the tools an agent may call, in every runtime format
 *   seed_compat    the original designs' functions, as thin wrappers
 *   capability_input_schemas   GENERATED from the functions' zod schemas
 * Once released, migrations are append-only: changes arrive as new migrations.
 */

-- ---- Section - Privileges ----
alter default privileges in schema public revoke execute on functions from public;
alter default privileges revoke execute on functions from public;

create schema if not exists private;
comment on schema private is 'Switchboard internals: SECURITY DEFINER functions and the rules'' helpers. Never exposed through the Data API.';
revoke all on schema private from public;
-- The public RPC wrappers run as the caller and call into private; only the
-- functions granted by a migration are executable.
grant usage on schema private to authenticated, service_role;
alter default privileges in schema private revoke execute on functions from public;

-- ---- Section - Shared helpers ----

/** Keeps updated_at current on every update. */
create function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

/** Hex SHA-256, the form agent keys and invitation tokens are stored in. */
create function private.sha256_hex(p_value text) returns text
language sql immutable
set search_path = ''
as $$
    select encode(extensions.digest(convert_to(p_value, 'utf8'), 'sha256'), 'hex')
$$;

/** A random opaque token: the prefix and 43 url-safe characters (256 bits). */
create function private.random_token(p_prefix text) returns text
language sql volatile
set search_path = ''
as $$
    select p_prefix || rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=')
$$;

/** The current UTC day, the unit of daily send limits. */
create function private.utc_today() returns date
language plpgsql stable
set search_path = ''
as $$
begin
    return (select (now() at time zone 'utc')::date);
end
$$;

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

/**
 * Raises 22023 (a 400) unless p_changes is an object whose keys are all in p_allowed:
 * the shared check of every update_* RPC's change set.
 */
create function private.assert_change_keys(p_changes jsonb, p_allowed text[]) returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    v_key text;
begin
    if p_changes is null or jsonb_typeof(p_changes) <> 'object' then
        raise exception 'changes must be an object' using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(p_changes) loop
        if v_key <> all (p_allowed) then
            raise exception 'cannot change "%" (allowed: %)', v_key, array_to_string(p_allowed, ', ') using errcode = '22023';
        end if;
    end loop;
end
$$;

/**
 * ---- Section - Credential logging ----
 * Credentials reach the database only as the JSON argument of create_connection and
 * rotate_connection_credentials. Every path sends that JSON as a bind parameter (PostgREST
 * sends the request body as $1; the statement text never holds a value), and
 * PostgreSQL writes bind parameters to its log whenever it logs the statement:
 *   log_statement = 'all'                 "execute …" + "DETAIL: parameters: $1 = '{…}'"
 *   log_min_duration_statement >= 0       "duration: … execute …" + the same DETAIL
 *   an error, log_parameter_max_length_on_error <> 0
 *                                         "CONTEXT: unnamed portal with parameters: …"
 * The request headers PostgREST passes as a parameter (request.headers) carry the
 * caller's access token, so the same lines record that too.
 *
 * Both length limits at 0 keep every parameter out of those lines while statements,
 * durations and errors are still logged. They are set on the roles that log in for
 * API traffic, in this database only:
 *   authenticator   PostgREST's login role (supabase-js rpc calls)
 *   postgres        the role SUPABASE_DB_URL logs in as (edge functions, direct)
 *   switchboard_functions   the functions' login role behind the pooler (SWITCHBOARD_DB_URL),
 *                   where it exists when this runs (docs/operations.md creates it)
 *   session_user    the role running this migration, when it is another one (the
 *                   devstack's PostgREST stand-in and functions log in as it)
 * A role's setting applies to its new sessions; SET ROLE does not change it.
 *
 * log_parameter_max_length is superuser-only. Where the migrating role may not set it
 * (Supabase: allowed only when supautils' privileged_role_allowed_configs lists it),
 * each setting it cannot apply is skipped with a NOTICE and nothing else changes; the
 * README ("Secrets and logs") says what a deployment must then keep.
 */
do $$
declare
    v_role text;
    v_setting text;
begin
    for v_role in
        select r.rolname::text
        from pg_catalog.pg_roles r
        where r.rolname in ('authenticator', 'postgres', 'switchboard_functions', session_user)
        order by r.rolname
    loop
        foreach v_setting in array array['log_parameter_max_length', 'log_parameter_max_length_on_error'] loop
            begin
                execute pg_catalog.format('alter role %I in database %I set %I = 0', v_role, pg_catalog.current_database(), v_setting);
            exception when insufficient_privilege then
                raise notice 'credential logging: % is not set for role % (%); bind parameters of its sessions may be logged, see README "Secrets and logs"',
                    v_setting, v_role, sqlerrm;
            end;
        end loop;
    end loop;
end
$$;
