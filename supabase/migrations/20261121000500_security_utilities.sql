/**
 * ---- Section - Security utilities ----
 * Small helpers the rules are built from. All live in `private`.
 */

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

create trigger service_providers_touch before update on public.service_providers
    for each row execute function private.touch_updated_at();
create trigger integration_capabilities_touch before update on public.integration_capabilities
    for each row execute function private.touch_updated_at();
create trigger agents_touch before update on public.agents
    for each row execute function private.touch_updated_at();
create trigger connections_touch before update on public.connections
    for each row execute function private.touch_updated_at();
create trigger agent_permissions_touch before update on public.agent_permissions
    for each row execute function private.touch_updated_at();

/**
 * Does a recipient (E.164 number or lower-case e-mail address) match a pattern?
 *  '+61', '+1415'        E.164 prefix
 *  'bob@example.com'     exact address
 *  'example.com', '@example.com'   that domain
 *  '*.example.com'       any subdomain of example.com
 */
create function private.recipient_matches(p_recipient text, p_pattern text) returns boolean
language sql immutable
set search_path = ''
as $$
    -- Defence in depth: the functions already lower-case addresses, but the rule must
    -- not depend on it. The domain is what follows the LAST '@'.
    with r as (select lower(p_recipient) as address,
                      substring(lower(p_recipient) from '@([^@]*)$') as domain,
                      lower(p_pattern) as pattern)
    select case
        when r.pattern like '+%' then starts_with(r.address, r.pattern)
        when r.domain is null then false
        when r.pattern like '*.%' then r.domain like '%.' || substr(r.pattern, 3)
        when r.pattern like '@%' then r.domain = substr(r.pattern, 2)
        when position('@' in r.pattern) > 0 then r.address = r.pattern
        else r.domain = r.pattern
    end
    from r
$$;

/** The first recipient that the allowed/blocked lists refuse, or null when all pass. */
create function private.first_refused_recipient(p_recipients text[], p_allowed text[], p_blocked text[])
returns text
language sql immutable
set search_path = ''
as $$
    select r
    from unnest(p_recipients) as r
    where exists (select 1 from unnest(p_blocked) b where private.recipient_matches(r, b))
       or (cardinality(p_allowed) > 0
           and not exists (select 1 from unnest(p_allowed) a where private.recipient_matches(r, a)))
    limit 1
$$;

/** Recipient patterns must be E.164 prefixes or e-mail/domain patterns. */
create function private.valid_recipient_patterns(p_patterns text[]) returns boolean
language sql immutable
set search_path = ''
as $$
    select coalesce(bool_and(
        p ~ '^\+[1-9][0-9]{0,14}$'
        or p ~* '^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}$'
        or p ~* '^(@|\*\.)?[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$'
    ), true)
    from unnest(p_patterns) as p
$$;

alter table public.agent_permissions
    add constraint agent_permissions_allowed_recipients_check check (private.valid_recipient_patterns(allowed_recipients)),
    add constraint agent_permissions_blocked_recipients_check check (private.valid_recipient_patterns(blocked_recipients));
-- CHECK constraints run as the writer: service_role writes grants too.
grant execute on function private.valid_recipient_patterns(text[]) to service_role;

/**
 * Grants are enforced by the database, not the caller: the agent and the connection
 * must belong to the grant's user, the connection must be live, and the allowed
 * scopes must be a subset of what the connection grants.
 */
create function private.check_agent_permission() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections;
    v_agent_user uuid;
begin
    select * into v_connection from public.connections where id = new.connection_id;
    select user_id into v_agent_user from public.agents where id = new.agent_id;
    if v_connection.user_id is distinct from new.user_id or v_agent_user is distinct from new.user_id then
        raise exception 'agent and connection must belong to the same user'
            using errcode = '42501';
    end if;
    if v_connection.deleted_at is not null then
        raise exception 'connection % has been deleted', new.connection_id using errcode = 'P0002';
    end if;
    if not (new.allowed_scopes <@ v_connection.granted_scopes) then
        raise exception 'scopes % are not granted by the connection (it grants %)',
            (select array_agg(s) from unnest(new.allowed_scopes) s where s <> all (v_connection.granted_scopes)),
            v_connection.granted_scopes
            using errcode = '42501';
    end if;
    return new;
end
$$;
revoke all on function private.check_agent_permission() from public;

-- Only on the columns it checks: usage bookkeeping must work even after the
-- connection is deleted (an in-flight call still has to be finished).
create trigger agent_permissions_check
    before insert or update of user_id, agent_id, connection_id, allowed_scopes, is_active on public.agent_permissions
    for each row execute function private.check_agent_permission();

/** Connection scopes must be ones the provider supports. */
create function private.check_connection_scopes() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_supported text[];
begin
    select scopes_supported into v_supported from public.service_providers where id = new.provider_id;
    if not (new.granted_scopes <@ v_supported) then
        raise exception 'scopes % are not supported by this provider (it supports %)', new.granted_scopes, v_supported
            using errcode = '22023';
    end if;
    return new;
end
$$;
revoke all on function private.check_connection_scopes() from public;

create trigger connections_check_scopes before insert or update of granted_scopes, provider_id on public.connections
    for each row execute function private.check_connection_scopes();

/** Hex SHA-256, the form agent keys are stored in. */
create function private.sha256_hex(p_value text) returns text
language sql immutable
set search_path = ''
as $$
    select encode(extensions.digest(convert_to(p_value, 'utf8'), 'sha256'), 'hex')
$$;

/** The current UTC day, the unit of daily send limits. */
create function private.utc_today() returns date
language sql stable
set search_path = ''
as $$
    select (now() at time zone 'utc')::date
$$;
