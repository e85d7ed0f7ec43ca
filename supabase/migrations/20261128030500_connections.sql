/**
 * ==== Connections ====
 * A connection is a provider account of a workspace. Only the workspace's owner and
 * admins create, rotate, delete and re-scope connections; a member with can_configure
 * may rename one, change its config and test it. Credentials live only in Vault (the row
 * keeps the secret id) and nobody reads them back: decrypted credentials reach only
 * service_role, inside a call just authorized.
 *   member permissions  what a member may do with a connection: can_view, can_send,
 *                       can_configure, scopes, daily and monthly limits, recipient rules,
 *                       expiry. Owners and admins hold everything without one.
 *   phone numbers       E.164 numbers of a connection, one default per connection,
 *                       assigned to a member or in the pool; a member's default per connection
 *   sender identities   from addresses of a mail connection, one default per connection
 *   default mail connection   exactly one per workspace that has mail connections
 */

-- ---- Section - Tables ----
create table public.connections (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    provider_id uuid not null references public.service_providers (id),
    name text not null check (length(btrim(name)) between 1 and 100),
    /* non-secret configuration: from address, SMTP host/port, sender id, base_url ... */
    config jsonb not null default '{}' check (jsonb_typeof(config) = 'object'),
    /* the credentials, only as a reference into vault.secrets; null once deleted */
    secret_id uuid,
    granted_scopes text[] not null default '{}',
    status text not null default 'active' check (status in ('active', 'disabled', 'error')),
    /* the workspace's mail connection used when a mail send names none (one per workspace) */
    is_default_mail boolean not null default false,
    last_tested_at timestamptz,
    last_test_ok boolean,
    last_test_message text,
    credentials_rotated_at timestamptz,
    created_by uuid references auth.users (id) on delete set null,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, workspace_id)
);
comment on table public.connections is 'A provider account of a workspace. Credentials are in Vault, referenced by secret_id.';
create index connections_workspace_id_idx on public.connections (workspace_id) where deleted_at is null;
create index connections_workspace_id_all_idx on public.connections (workspace_id);
create index connections_provider_id_idx on public.connections (provider_id);
create index connections_created_by_idx on public.connections (created_by);
create unique index connections_workspace_name_key on public.connections (workspace_id, lower(name)) where deleted_at is null;
create unique index connections_one_default_mail_key on public.connections (workspace_id)
    where is_default_mail and deleted_at is null;

/* Apart from the connection so that only admins can read it: whoever holds it can post
   events in the provider's name (ClickSend signs nothing). */
create table public.connection_webhooks (
    connection_id uuid primary key,
    workspace_id uuid not null,
    /* unguessable token addressing this connection's provider webhooks */
    webhook_token text not null unique default encode(extensions.gen_random_bytes(24), 'hex'),
    created_at timestamptz not null default now(),
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade
);
comment on table public.connection_webhooks is 'The webhook token of each connection: readable by the workspace''s admins only.';
create index connection_webhooks_connection_workspace_idx on public.connection_webhooks (connection_id, workspace_id);

create table public.member_permissions (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    connection_id uuid not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    can_view boolean not null default true,
    can_send boolean not null default false,
    can_configure boolean not null default false,
    scopes text[] not null default '{}',
    /* messages (recipients) per UTC day / calendar month; null = no limit */
    daily_send_limit integer check (daily_send_limit >= 0),
    monthly_send_limit integer check (monthly_send_limit >= 0),
    /* E.164 prefixes ('+61') and e-mail patterns ('a@x.com', 'x.com', '*.x.com') */
    allowed_recipients text[] not null default '{}',
    blocked_recipients text[] not null default '{}',
    expires_at timestamptz,
    granted_by uuid references auth.users (id) on delete set null,
    granted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (connection_id, user_id),
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade,
    /* a permission ends with the membership */
    foreign key (workspace_id, user_id) references public.workspace_members (workspace_id, user_id) on delete cascade,
    check (can_view or not (can_send or can_configure))
);
comment on table public.member_permissions is 'What a member may do with a connection. Owners and admins hold everything without a row.';
create index member_permissions_workspace_user_idx on public.member_permissions (workspace_id, user_id);
create index member_permissions_user_id_idx on public.member_permissions (user_id);
create index member_permissions_granted_by_idx on public.member_permissions (granted_by);

create table public.phone_numbers (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    connection_id uuid not null,
    e164 text not null check (e164 ~ '^\+[1-9][0-9]{1,14}$'),
    friendly_name text check (length(friendly_name) <= 100),
    capabilities text[] not null default array['sms'] check (cardinality(capabilities) > 0
                                                              and capabilities <@ array['sms', 'mms', 'voice', 'whatsapp']),
    status text not null default 'active' check (status in ('active', 'inactive')),
    /* the connection's default sender */
    is_default boolean not null default false,
    /* the member this number belongs to; null = the workspace's pool */
    assigned_to uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (connection_id, e164),
    unique (id, connection_id),
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade
);
comment on table public.phone_numbers is 'Numbers of a connection: assigned to a member or in the pool, one default per connection.';
create index phone_numbers_workspace_id_idx on public.phone_numbers (workspace_id);
create index phone_numbers_assigned_to_idx on public.phone_numbers (assigned_to);
create unique index phone_numbers_one_default_key on public.phone_numbers (connection_id) where is_default;

create table public.member_default_numbers (
    workspace_id uuid not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    connection_id uuid not null,
    phone_number_id uuid not null,
    primary key (user_id, connection_id),
    foreign key (phone_number_id, connection_id) references public.phone_numbers (id, connection_id) on delete cascade,
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade,
    foreign key (workspace_id, user_id) references public.workspace_members (workspace_id, user_id) on delete cascade
);
comment on table public.member_default_numbers is 'The number a member sends from on a connection when a send names none.';
create index member_default_numbers_workspace_user_idx on public.member_default_numbers (workspace_id, user_id);
create index member_default_numbers_connection_id_idx on public.member_default_numbers (connection_id);
create index member_default_numbers_phone_number_id_idx on public.member_default_numbers (phone_number_id, connection_id);
create index member_default_numbers_connection_workspace_idx on public.member_default_numbers (connection_id, workspace_id);

create table public.sender_identities (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    connection_id uuid not null,
    email text not null check (email = lower(email) and private.is_email_address(email)),
    name text check (length(name) <= 256 and name !~ '[;,\r\n]'),
    verified boolean not null default false,
    /* the from address of the connection's sends */
    is_default boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (connection_id, email),
    foreign key (connection_id, workspace_id) references public.connections (id, workspace_id) on delete cascade
);
comment on table public.sender_identities is 'From addresses of a mail connection, one default per connection.';
create index sender_identities_workspace_id_idx on public.sender_identities (workspace_id);
create unique index sender_identities_one_default_key on public.sender_identities (connection_id) where is_default;

create trigger connections_touch before update on public.connections
    for each row execute function private.touch_updated_at();
create trigger member_permissions_touch before update on public.member_permissions
    for each row execute function private.touch_updated_at();
create trigger phone_numbers_touch before update on public.phone_numbers
    for each row execute function private.touch_updated_at();
create trigger sender_identities_touch before update on public.sender_identities
    for each row execute function private.touch_updated_at();

-- ---- Section - Table rules ----

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
-- CHECK constraints run as the writer: service_role writes too.
grant execute on function private.valid_recipient_patterns(text[]) to service_role;

alter table public.member_permissions
    add constraint member_permissions_allowed_recipients_check check (private.valid_recipient_patterns(allowed_recipients)),
    add constraint member_permissions_blocked_recipients_check check (private.valid_recipient_patterns(blocked_recipients));

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

/** Is this provider a mail provider (its connections take part in the default mail rule)? */
create function private.is_mail_provider(p_provider_id uuid) returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    return (select coalesce((select 'email' = any (p.channels) from public.service_providers p where p.id = p_provider_id), false));
end
$$;

/**
 * The default mail connection rule, checked at commit: a workspace with live mail
 * connections has exactly one default among them, and the default is a live mail
 * connection. (At most one is also a unique index.)
 */
create function private.check_default_mail_connection() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace_id uuid := coalesce(new.workspace_id, old.workspace_id);
    v_mail integer;
    v_defaults integer;
    v_bad integer;
begin
    if not exists (select 1 from public.workspaces where id = v_workspace_id) then
        return null;
    end if;
    select count(*) filter (where private.is_mail_provider(c.provider_id)),
           count(*) filter (where c.is_default_mail),
           count(*) filter (where c.is_default_mail and not private.is_mail_provider(c.provider_id))
    into v_mail, v_defaults, v_bad
    from public.connections c
    where c.workspace_id = v_workspace_id and c.deleted_at is null;
    if v_bad > 0 then
        raise exception 'only a mail connection can be the default mail connection' using errcode = '23514';
    end if;
    if v_mail > 0 and v_defaults <> 1 then
        raise exception 'a workspace with mail connections has exactly one default mail connection (it has %)', v_defaults
            using errcode = '23514';
    end if;
    return null;
end
$$;
revoke all on function private.check_default_mail_connection() from public;

create constraint trigger connections_one_default_mail after insert or update of is_default_mail, deleted_at, workspace_id
    or delete on public.connections
    deferrable initially deferred
    for each row execute function private.check_default_mail_connection();

/** A phone number's assignee must be a member of its workspace. */
create function private.check_phone_number_assignee() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.assigned_to is not null and private.workspace_role(new.workspace_id, new.assigned_to) is null then
        raise exception 'a number can only be assigned to a member of its workspace' using errcode = '22023';
    end if;
    -- A member's default must stay a number they may use.
    delete from public.member_default_numbers d
    where d.phone_number_id = new.id and (new.status <> 'active'
          or (new.assigned_to is not null and d.user_id <> new.assigned_to));
    return new;
end
$$;
revoke all on function private.check_phone_number_assignee() from public;

create trigger phone_numbers_check_assignee before insert or update of assigned_to, status on public.phone_numbers
    for each row execute function private.check_phone_number_assignee();

-- ---- Section - Access helpers ----

/**
 * A member's permission on a connection as it applies now, or null when they hold none
 * that is live (not expired). Owners and admins hold everything: see private.connection_access.
 */
create function private.live_member_permission(p_connection_id uuid, p_user_id uuid) returns public.member_permissions
language sql stable
security definer
set search_path = ''
as $$
    select mp.* from public.member_permissions mp
    where mp.connection_id = p_connection_id and mp.user_id = p_user_id
      and (mp.expires_at is null or mp.expires_at > now())
$$;

/**
 * What p_user_id may do with a live connection: 'admin' (owner or admin: everything),
 * 'configure', 'send', 'view', or null (nothing; the connection is invisible to them).
 */
create function private.connection_access(p_connection_id uuid, p_user_id uuid) returns text
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_workspace_id uuid;
    v_role text;
    v_permission public.member_permissions;
begin
    select c.workspace_id into v_workspace_id from public.connections c
    where c.id = p_connection_id and c.deleted_at is null;
    v_role := private.workspace_role(v_workspace_id, p_user_id);
    if v_role is null then
        return null;
    elsif v_role in ('owner', 'admin') then
        return 'admin';
    end if;
    v_permission := private.live_member_permission(p_connection_id, p_user_id);
    return case when v_permission.can_configure then 'configure'
                when v_permission.can_send then 'send'
                when v_permission.can_view then 'view' end;
end
$$;

/** May the signed-in user see this connection (the policy helper; it asks only about the caller)? */
create function private.can_view_connection(p_connection_id uuid) returns boolean
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select private.connection_access(p_connection_id, (select auth.uid())) is not null);
end
$$;

-- Only the question about the caller is executable by API roles (the policies ask it);
-- the helpers that answer about any user stay with the definer functions.
grant execute on function
    private.can_view_connection(uuid),
    private.is_mail_provider(uuid)
to authenticated, service_role;

/**
 * A live connection the signed-in user may act on with at least p_access
 * ('view' < 'send' < 'configure' < 'admin'), or an error: PT404 when they may not even
 * see it (never confirming it exists), 42501 when they may see it but not do this.
 */
create function private.accessible_connection(p_connection_id uuid, p_access text) returns public.connections
language plpgsql stable
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_access text := private.connection_access(p_connection_id, v_uid);
    v_rank constant text[] := array['view', 'send', 'configure', 'admin'];
    v_connection public.connections;
begin
    if v_access is null then
        raise exception 'connection not found' using errcode = 'PT404';
    end if;
    if array_position(v_rank, v_access) < array_position(v_rank, p_access) then
        raise exception 'this needs % access to the connection (you have %)', p_access, v_access using errcode = '42501';
    end if;
    select * into v_connection from public.connections where id = p_connection_id;
    return v_connection;
end
$$;

/** Deletes the Vault secrets of a workspace's connections (before the workspace goes). */
create function private.delete_workspace_secrets(p_workspace_id uuid) returns void
language sql
set search_path = ''
as $$
    delete from vault.secrets s
    using public.connections c
    where c.workspace_id = p_workspace_id and s.id = c.secret_id
$$;

-- ---- Section - Row level security ----
alter table public.connections enable row level security;
alter table public.connection_webhooks enable row level security;
alter table public.member_permissions enable row level security;
alter table public.phone_numbers enable row level security;
alter table public.member_default_numbers enable row level security;
alter table public.sender_identities enable row level security;

-- Writes go through the RPCs, which check roles and audit.
grant select on public.connections, public.connection_webhooks, public.member_permissions, public.phone_numbers,
    public.member_default_numbers, public.sender_identities to authenticated;
grant select, insert, update, delete on public.connections, public.connection_webhooks, public.member_permissions,
    public.phone_numbers, public.member_default_numbers, public.sender_identities to service_role;

create policy connections_select_policy on public.connections
    for select to authenticated
    using (deleted_at is null and private.can_view_connection(id));

create policy connection_webhooks_select_policy on public.connection_webhooks
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, 'admin'));

-- Admins see every member's permissions; a member sees their own.
create policy member_permissions_select_policy on public.member_permissions
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy phone_numbers_select_policy on public.phone_numbers
    for select to authenticated
    using (private.can_view_connection(connection_id));

create policy member_default_numbers_select_policy on public.member_default_numbers
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, case when user_id = (select auth.uid()) then 'member' else 'admin' end));

create policy sender_identities_select_policy on public.sender_identities
    for select to authenticated
    using (private.can_view_connection(connection_id));

-- ---- Section - Connection RPCs ----

/** A connection as a member may see it: never the Vault secret id; the webhook token for admins only. */
create function private.connection_json(c public.connections) returns jsonb
language sql stable
set search_path = ''
as $$
    select jsonb_build_object(
        'id', c.id, 'workspace_id', c.workspace_id,
        'provider', (select p.name from public.service_providers p where p.id = c.provider_id),
        'name', c.name, 'config', c.config, 'granted_scopes', to_jsonb(c.granted_scopes),
        'status', c.status, 'has_credentials', c.secret_id is not null, 'is_default_mail', c.is_default_mail,
        'last_tested_at', c.last_tested_at, 'last_test_ok', c.last_test_ok, 'last_test_message', c.last_test_message,
        'webhook_token', case when private.has_role_on_workspace(c.workspace_id, 'admin')
                              then (select w.webhook_token from public.connection_webhooks w where w.connection_id = c.id) end,
        'credentials_rotated_at', c.credentials_rotated_at, 'created_by', c.created_by,
        'created_at', c.created_at, 'updated_at', c.updated_at
    )
$$;

/**
 * Connects a provider account to a workspace (owners and admins; the caller's personal
 * workspace when p_workspace_id is null). Credentials go to Vault (vault.create_secret);
 * the row keeps only the secret id. Scopes default to everything the provider supports.
 * A workspace's first mail connection becomes its default mail connection.
 */
create function private.create_connection(
    p_provider text, p_name text, p_credentials jsonb, p_config jsonb default '{}', p_scopes text[] default null,
    p_workspace_id uuid default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace_id uuid := private.workspace_or_personal(p_workspace_id);
    v_uid uuid := private.require_role(v_workspace_id, 'admin');
    v_provider public.service_providers;
    v_connection public.connections;
begin
    select * into v_provider from public.service_providers where name = p_provider and is_enabled;
    if not found then
        raise exception 'unknown provider "%"', p_provider using errcode = '22023';
    end if;
    perform private.validate_credentials(v_provider, p_credentials);
    perform private.validate_config(v_provider, coalesce(p_config, '{}'));
    if 'email' = any (v_provider.channels) then
        -- Two mail connections created at once must not both become the default.
        perform 1 from public.workspaces where id = v_workspace_id for no key update;
    end if;

    insert into public.connections (workspace_id, provider_id, name, config, granted_scopes, created_by, is_default_mail)
    values (v_workspace_id, v_provider.id, btrim(p_name), coalesce(p_config, '{}'),
            coalesce(p_scopes, v_provider.scopes_supported), v_uid,
            'email' = any (v_provider.channels) and not exists (
                select 1 from public.connections c
                where c.workspace_id = v_workspace_id and c.is_default_mail and c.deleted_at is null))
    returning * into v_connection;

    update public.connections
    set secret_id = vault.create_secret(p_credentials::text, 'switchboard.connection.' || v_connection.id,
                                        'Credentials of Switchboard connection ' || v_connection.id)
    where id = v_connection.id
    returning * into v_connection;
    insert into public.connection_webhooks (connection_id, workspace_id) values (v_connection.id, v_workspace_id);
    perform private.audit(v_workspace_id, 'credentials.created', 'connection', v_connection.id::text,
                          jsonb_build_object('provider', p_provider, 'name', v_connection.name,
                                             'credential_fields', (select jsonb_agg(k) from jsonb_object_keys(p_credentials) k)));
    return private.connection_json(v_connection);
exception
    when unique_violation then
        raise exception 'the workspace already has a connection named "%"', btrim(p_name) using errcode = 'PT409';
end
$$;

/**
 * Changes a connection: keys present in p_changes are applied. name and config: admins
 * and members with can_configure, except where the credentials go (host, port, security,
 * TLS settings, base_url): admins; scopes and status ('active'|'disabled'): admins.
 * Narrowing scopes also narrows every grant and member permission on it; a grant left
 * with no scope is removed.
 */
create function private.update_connection(p_connection_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'configure');
    v_provider public.service_providers;
begin
    perform private.assert_change_keys(p_changes, array['name', 'config', 'scopes', 'status']);
    if (p_changes ? 'scopes' or p_changes ? 'status') then
        perform private.accessible_connection(p_connection_id, 'admin');
    end if;
    select * into v_provider from public.service_providers where id = v_connection.provider_id;
    if p_changes ? 'config' then
        perform private.validate_config(v_provider, p_changes -> 'config');
        -- Where the credentials are sent is an admin's decision: a member who may configure
        -- could otherwise point the SMTP host or an API base URL at a server of their own.
        if exists (select 1 from unnest(array['host', 'port', 'security', 'tls_servername', 'tls_ca', 'base_url']) k
                   where (p_changes -> 'config' -> k) is distinct from (v_connection.config -> k)) then
            perform private.accessible_connection(p_connection_id, 'admin');
        end if;
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
        update public.member_permissions p
        set scopes = array(select s from unnest(p.scopes) s where s = any (v_connection.granted_scopes))
        where p.connection_id = v_connection.id and not (p.scopes <@ v_connection.granted_scopes);
    end if;
    perform private.audit(v_connection.workspace_id, 'connection.updated', 'connection', v_connection.id::text,
                          jsonb_build_object('changed', (select jsonb_agg(k) from jsonb_object_keys(p_changes) k)));
    return private.connection_json(v_connection);
exception
    when unique_violation then
        raise exception 'the workspace already has a connection named "%"', p_changes ->> 'name' using errcode = 'PT409';
end
$$;

/** Replaces a connection's credentials in Vault (vault.update_secret); admins only. */
create function private.rotate_connection_credentials(p_connection_id uuid, p_credentials jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
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
    perform private.audit(v_connection.workspace_id, 'credentials.rotated', 'connection', v_connection.id::text,
                          jsonb_build_object('credential_fields', (select jsonb_agg(k) from jsonb_object_keys(p_credentials) k)));
    return private.connection_json(v_connection);
end
$$;

/**
 * Deletes a connection (admins): its Vault secret is deleted, the row is soft-deleted
 * (the ledger keeps pointing at it) and every grant on it is revoked. When it was the
 * default mail connection, the workspace's oldest other mail connection takes over.
 */
create function private.delete_connection(p_connection_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
begin
    delete from vault.secrets where id = v_connection.secret_id;
    update public.agent_permissions set is_active = false, revoked_at = coalesce(revoked_at, now())
    where connection_id = v_connection.id;
    update public.connections set deleted_at = now(), status = 'disabled', secret_id = null, is_default_mail = false
    where id = v_connection.id;
    if v_connection.is_default_mail then
        update public.connections set is_default_mail = true
        where id = (select c.id from public.connections c
                    where c.workspace_id = v_connection.workspace_id and c.deleted_at is null
                      and private.is_mail_provider(c.provider_id)
                    order by c.created_at, c.id limit 1);
    end if;
    perform private.audit(v_connection.workspace_id, 'credentials.deleted', 'connection', v_connection.id::text,
                          jsonb_build_object('name', v_connection.name));
    return jsonb_build_object('id', v_connection.id, 'deleted', true);
end
$$;

/** Makes a mail connection the workspace's default mail connection (admins). */
create function private.set_default_mail_connection(p_connection_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
begin
    if not private.is_mail_provider(v_connection.provider_id) then
        raise exception 'only a mail connection can be the default mail connection' using errcode = '22023';
    end if;
    update public.connections set is_default_mail = false
    where workspace_id = v_connection.workspace_id and is_default_mail and id <> v_connection.id;
    update public.connections set is_default_mail = true where id = v_connection.id returning * into v_connection;
    perform private.audit(v_connection.workspace_id, 'connection.default_mail_set', 'connection', v_connection.id::text, '{}');
    return private.connection_json(v_connection);
end
$$;

/**
 * Records the result of a connection test a function ran for p_actor (service only),
 * with the client the request came from ({ip, user_agent}), in the audit trail too.
 */
create function private.record_connection_test(
    p_connection_id uuid, p_ok boolean, p_message text, p_actor uuid default null, p_client jsonb default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_workspace_id uuid;
begin
    update public.connections
    set last_tested_at = now(), last_test_ok = p_ok, last_test_message = left(p_message, 500),
        status = case when status = 'disabled' then status when p_ok then 'active' else 'error' end
    where id = p_connection_id
    returning workspace_id into v_workspace_id;
    if found then
        perform private.audit(v_workspace_id, 'credentials.tested', 'connection', p_connection_id::text,
                              jsonb_build_object('ok', p_ok), p_actor,
                              case when jsonb_typeof(p_client) = 'object' then p_client end);
    end if;
end
$$;

/**
 * Config and credentials for testing a connection, for the service only, when p_user_id
 * may configure it (an owner, an admin or a member with can_configure); else null.
 */
create function private.connection_for_test(p_user_id uuid, p_connection_id uuid, p_provider text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select jsonb_build_object('connection_id', c.id, 'config', c.config,
                                  'credentials', (select s.decrypted_secret::jsonb from vault.decrypted_secrets s where s.id = c.secret_id))
        from public.connections c
        join public.service_providers p on p.id = c.provider_id
        where c.id = p_connection_id and p.name = p_provider and c.deleted_at is null
          and private.connection_access(c.id, p_user_id) in ('admin', 'configure'));
end
$$;

/** The connection a webhook token addresses (for signature checks before recording). */
create function private.webhook_connection(p_webhook_token text, p_provider text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    return (select jsonb_build_object('connection_id', c.id, 'workspace_id', c.workspace_id, 'config', c.config)
        from public.connections c
        join public.service_providers p on p.id = c.provider_id
        join public.connection_webhooks w on w.connection_id = c.id
        where w.webhook_token = p_webhook_token and p.name = p_provider and c.deleted_at is null);
end
$$;

-- ---- Section - Member permission RPCs ----

/** A member permission as JSON. */
create function private.member_permission_json(p public.member_permissions) returns jsonb
language sql stable
set search_path = ''
as $$
    select to_jsonb(p)
$$;

/**
 * Sets what a member may do with a connection (admins), replacing what they held.
 * Owners and admins hold everything and take no permission. can_send and
 * can_configure need can_view; scopes must be the connection's. The member's agents
 * are held to the new permission from their next call.
 */
create function private.set_member_permission(
    p_connection_id uuid,
    p_user_id uuid,
    p_can_view boolean default true,
    p_can_send boolean default false,
    p_can_configure boolean default false,
    p_scopes text[] default null,
    p_daily_send_limit integer default null,
    p_monthly_send_limit integer default null,
    p_expires_at timestamptz default null,
    p_allowed_recipients text[] default '{}',
    p_blocked_recipients text[] default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
    v_role text := private.workspace_role(v_connection.workspace_id, p_user_id);
    v_scopes text[] := coalesce(p_scopes, case when p_can_send then v_connection.granted_scopes else '{}' end);
    v_row public.member_permissions;
begin
    if v_role is null then
        raise exception 'that user is not a member of this workspace' using errcode = 'PT404';
    elsif v_role <> 'member' then
        raise exception 'owners and admins hold every permission; member permissions apply to members' using errcode = '22023';
    end if;
    if not (v_scopes <@ v_connection.granted_scopes) then
        raise exception 'scopes % are not granted by the connection (it grants %)', v_scopes, v_connection.granted_scopes
            using errcode = '22023';
    end if;
    if p_daily_send_limit < 0 or p_monthly_send_limit < 0 then
        raise exception 'limits must be 0 or more (null for no limit)' using errcode = '22023';
    end if;
    if not coalesce(p_can_view, false) and (coalesce(p_can_send, false) or coalesce(p_can_configure, false)) then
        raise exception 'can_send and can_configure need can_view' using errcode = '22023';
    end if;
    insert into public.member_permissions as mp (
        workspace_id, connection_id, user_id, can_view, can_send, can_configure, scopes, daily_send_limit,
        monthly_send_limit, expires_at, allowed_recipients, blocked_recipients, granted_by
    ) values (
        v_connection.workspace_id, v_connection.id, p_user_id, coalesce(p_can_view, false), coalesce(p_can_send, false),
        coalesce(p_can_configure, false), v_scopes, p_daily_send_limit, p_monthly_send_limit, p_expires_at,
        coalesce(p_allowed_recipients, '{}'), coalesce(p_blocked_recipients, '{}'), auth.uid()
    )
    on conflict (connection_id, user_id) do update set
        can_view = excluded.can_view, can_send = excluded.can_send, can_configure = excluded.can_configure,
        scopes = excluded.scopes, daily_send_limit = excluded.daily_send_limit,
        monthly_send_limit = excluded.monthly_send_limit, expires_at = excluded.expires_at,
        allowed_recipients = excluded.allowed_recipients, blocked_recipients = excluded.blocked_recipients,
        granted_by = excluded.granted_by, granted_at = now()
    returning * into v_row;
    perform private.audit(v_connection.workspace_id, 'permission.set', 'member_permission', v_row.id::text,
                          jsonb_build_object('connection_id', v_connection.id, 'user_id', p_user_id,
                                             'can_view', v_row.can_view, 'can_send', v_row.can_send,
                                             'can_configure', v_row.can_configure, 'scopes', v_row.scopes,
                                             'daily_send_limit', v_row.daily_send_limit,
                                             'monthly_send_limit', v_row.monthly_send_limit, 'expires_at', v_row.expires_at));
    return private.member_permission_json(v_row);
exception
    when check_violation then
        raise exception 'invalid recipient pattern: use E.164 prefixes (+61) or e-mail patterns (a@x.com, x.com, *.x.com)'
            using errcode = '22023';
end
$$;

/** Takes a member's permission on a connection away (admins): they no longer see it. */
create function private.remove_member_permission(p_connection_id uuid, p_user_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
    v_id uuid;
begin
    delete from public.member_permissions where connection_id = p_connection_id and user_id = p_user_id
    returning id into v_id;
    if v_id is null then
        raise exception 'permission not found' using errcode = 'PT404';
    end if;
    perform private.audit(v_connection.workspace_id, 'permission.removed', 'member_permission', v_id::text,
                          jsonb_build_object('connection_id', p_connection_id, 'user_id', p_user_id));
    return jsonb_build_object('id', v_id, 'removed', true);
end
$$;

-- ---- Section - Phone number RPCs ----

/**
 * A phone number the signed-in user administers: PT404 unless they may see its
 * connection, 42501 unless they are an owner or admin of its workspace.
 */
create function private.administered_number(p_phone_number_id uuid) returns public.phone_numbers
language plpgsql stable
set search_path = ''
as $$
declare
    v_row public.phone_numbers;
begin
    select * into v_row from public.phone_numbers where id = p_phone_number_id;
    if not found or not private.can_view_connection(v_row.connection_id) then
        raise exception 'phone number not found' using errcode = 'PT404';
    end if;
    perform private.require_role(v_row.workspace_id, 'admin');
    return v_row;
end
$$;

/** A phone number as JSON. */
create function private.phone_number_json(n public.phone_numbers) returns jsonb
language sql stable
set search_path = ''
as $$
    select to_jsonb(n)
$$;

/**
 * Adds a number to a connection (admins): E.164, capabilities, assigned to a member
 * (p_assigned_to) or in the pool. The connection's first number becomes its default.
 */
create function private.add_phone_number(
    p_connection_id uuid, p_e164 text, p_friendly_name text default null, p_capabilities text[] default array['sms'],
    p_assigned_to uuid default null, p_is_default boolean default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
    v_default boolean := coalesce(p_is_default,
        not exists (select 1 from public.phone_numbers n where n.connection_id = p_connection_id and n.is_default));
    v_row public.phone_numbers;
begin
    if not exists (select 1 from public.service_providers p
                   where p.id = v_connection.provider_id and p.channels && array['sms', 'mms', 'whatsapp', 'voice']) then
        raise exception 'phone numbers belong to SMS, MMS, WhatsApp or voice connections' using errcode = '22023';
    end if;
    if v_default then
        update public.phone_numbers set is_default = false where connection_id = p_connection_id and is_default;
    end if;
    insert into public.phone_numbers (workspace_id, connection_id, e164, friendly_name, capabilities, assigned_to, is_default)
    values (v_connection.workspace_id, p_connection_id, btrim(p_e164), p_friendly_name, p_capabilities, p_assigned_to, v_default)
    returning * into v_row;
    perform private.audit(v_connection.workspace_id, 'number.added', 'phone_number', v_row.id::text,
                          jsonb_build_object('e164', v_row.e164, 'connection_id', p_connection_id, 'assigned_to', p_assigned_to));
    return private.phone_number_json(v_row);
exception
    when unique_violation then
        raise exception '% is already on this connection', p_e164 using errcode = 'PT409';
    when check_violation or not_null_violation then
        raise exception 'a number is E.164 (+ and up to 15 digits) with capabilities among sms, mms, voice, whatsapp'
            using errcode = '22023';
end
$$;

/**
 * Changes a number (admins): keys present in p_changes are applied (friendly_name,
 * capabilities, status 'active'|'inactive', assigned_to (null = pool), is_default).
 */
create function private.update_phone_number(p_phone_number_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.phone_numbers := private.administered_number(p_phone_number_id);
begin
    perform private.assert_change_keys(p_changes, array['friendly_name', 'capabilities', 'status', 'assigned_to', 'is_default']);
    if (p_changes ->> 'is_default')::boolean then
        update public.phone_numbers set is_default = false
        where connection_id = v_row.connection_id and is_default and id <> v_row.id;
    end if;
    update public.phone_numbers n set
        friendly_name = case when p_changes ? 'friendly_name' then p_changes ->> 'friendly_name' else n.friendly_name end,
        capabilities = case when p_changes ? 'capabilities'
            then array(select jsonb_array_elements_text(p_changes -> 'capabilities')) else n.capabilities end,
        status = coalesce(p_changes ->> 'status', n.status),
        assigned_to = case when p_changes ? 'assigned_to' then (p_changes ->> 'assigned_to')::uuid else n.assigned_to end,
        is_default = coalesce((p_changes ->> 'is_default')::boolean, n.is_default)
    where n.id = v_row.id
    returning * into v_row;
    perform private.audit(v_row.workspace_id, 'number.updated', 'phone_number', v_row.id::text,
                          p_changes - array['friendly_name']);
    return private.phone_number_json(v_row);
exception
    when check_violation or not_null_violation or invalid_text_representation or cannot_coerce then
        raise exception 'invalid change: status is active or inactive, capabilities among sms, mms, voice, whatsapp, assigned_to a member id'
            using errcode = '22023';
end
$$;

/** Removes a number from a connection (admins). */
create function private.delete_phone_number(p_phone_number_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.phone_numbers := private.administered_number(p_phone_number_id);
begin
    delete from public.phone_numbers where id = p_phone_number_id;
    perform private.audit(v_row.workspace_id, 'number.deleted', 'phone_number', v_row.id::text,
                          jsonb_build_object('e164', v_row.e164));
    return jsonb_build_object('id', v_row.id, 'deleted', true);
end
$$;

/**
 * Can p_user_id send from this number? An active number of a connection they may send
 * on, assigned to them or in the pool; owners and admins may use any active number.
 */
create function private.may_use_number(p_number public.phone_numbers, p_user_id uuid) returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    return (select p_number.status = 'active'
           and (private.workspace_role(p_number.workspace_id, p_user_id) in ('owner', 'admin')
                or (p_number.assigned_to is null or p_number.assigned_to = p_user_id)));
end
$$;

/**
 * Sets the number a member sends from on its connection when a send names none. A
 * member sets their own (p_user_id null or theirs); admins set anyone's. The number must
 * be one the member may use.
 */
create function private.set_member_default_number(p_phone_number_id uuid, p_user_id uuid default null) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_uid uuid := private.require_user();
    v_user uuid := coalesce(p_user_id, v_uid);
    v_row public.phone_numbers;
begin
    select * into v_row from public.phone_numbers where id = p_phone_number_id;
    if not found or private.connection_access(v_row.connection_id, v_uid) is null then
        raise exception 'phone number not found' using errcode = 'PT404';
    end if;
    if v_user <> v_uid then
        perform private.require_role(v_row.workspace_id, 'admin');
    end if;
    if coalesce(private.connection_access(v_row.connection_id, v_user), 'none') not in ('admin', 'configure', 'send')
       or not private.may_use_number(v_row, v_user) then
        raise exception '% is not a number this member may send from', v_row.e164 using errcode = '42501';
    end if;
    insert into public.member_default_numbers (workspace_id, user_id, connection_id, phone_number_id)
    values (v_row.workspace_id, v_user, v_row.connection_id, v_row.id)
    on conflict (user_id, connection_id) do update set phone_number_id = excluded.phone_number_id;
    perform private.audit(v_row.workspace_id, 'number.member_default_set', 'phone_number', v_row.id::text,
                          jsonb_build_object('user_id', v_user));
    return jsonb_build_object('user_id', v_user, 'connection_id', v_row.connection_id, 'phone_number_id', v_row.id,
                              'e164', v_row.e164);
end
$$;

-- ---- Section - Sender identity RPCs ----

/** A sender identity of a workspace the signed-in user administers, or PT404. */
create function private.administered_identity(p_identity_id uuid) returns public.sender_identities
language plpgsql stable
set search_path = ''
as $$
declare
    v_row public.sender_identities;
begin
    select * into v_row from public.sender_identities where id = p_identity_id;
    if not found or not private.has_role_on_workspace(v_row.workspace_id, 'admin') then
        raise exception 'sender identity not found' using errcode = 'PT404';
    end if;
    return v_row;
end
$$;

/** Adds a from address to a mail connection (admins); the first one becomes its default. */
create function private.add_sender_identity(
    p_connection_id uuid, p_email text, p_name text default null, p_verified boolean default false,
    p_is_default boolean default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_connection public.connections := private.accessible_connection(p_connection_id, 'admin');
    v_default boolean := coalesce(p_is_default,
        not exists (select 1 from public.sender_identities s where s.connection_id = p_connection_id and s.is_default));
    v_row public.sender_identities;
begin
    if not private.is_mail_provider(v_connection.provider_id) then
        raise exception 'sender identities belong to mail connections' using errcode = '22023';
    end if;
    if v_default then
        update public.sender_identities set is_default = false where connection_id = p_connection_id and is_default;
    end if;
    insert into public.sender_identities (workspace_id, connection_id, email, name, verified, is_default)
    values (v_connection.workspace_id, p_connection_id, lower(btrim(p_email)), p_name, coalesce(p_verified, false), v_default)
    returning * into v_row;
    perform private.audit(v_connection.workspace_id, 'identity.added', 'sender_identity', v_row.id::text,
                          jsonb_build_object('email', v_row.email, 'connection_id', p_connection_id));
    return to_jsonb(v_row);
exception
    when unique_violation then
        raise exception '% is already an identity of this connection', p_email using errcode = 'PT409';
    when check_violation or not_null_violation then
        raise exception 'an identity is a valid e-mail address and a name of at most 256 characters without ; , or line breaks'
            using errcode = '22023';
end
$$;

/** Changes a sender identity (admins): name, verified, is_default. */
create function private.update_sender_identity(p_identity_id uuid, p_changes jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.sender_identities := private.administered_identity(p_identity_id);
begin
    perform private.assert_change_keys(p_changes, array['name', 'verified', 'is_default']);
    if (p_changes ->> 'is_default')::boolean then
        update public.sender_identities set is_default = false
        where connection_id = v_row.connection_id and is_default and id <> v_row.id;
    end if;
    update public.sender_identities s set
        name = case when p_changes ? 'name' then p_changes ->> 'name' else s.name end,
        verified = coalesce((p_changes ->> 'verified')::boolean, s.verified),
        is_default = coalesce((p_changes ->> 'is_default')::boolean, s.is_default)
    where s.id = v_row.id
    returning * into v_row;
    perform private.audit(v_row.workspace_id, 'identity.updated', 'sender_identity', v_row.id::text, p_changes - 'name');
    return to_jsonb(v_row);
exception
    when check_violation or invalid_text_representation then
        raise exception 'invalid change to a sender identity' using errcode = '22023';
end
$$;

/** Removes a sender identity (admins). */
create function private.delete_sender_identity(p_identity_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.sender_identities := private.administered_identity(p_identity_id);
begin
    delete from public.sender_identities where id = p_identity_id;
    perform private.audit(v_row.workspace_id, 'identity.deleted', 'sender_identity', v_row.id::text,
                          jsonb_build_object('email', v_row.email));
    return jsonb_build_object('id', v_row.id, 'deleted', true);
end
$$;

-- ---- Public wrappers (SECURITY INVOKER; the private function checks the caller) ----

/**
 * Connect a provider account (admin): supabase.rpc('create_connection', {p_provider,
 * p_name, p_credentials, p_config, p_scopes, p_workspace_id}); the personal workspace
 * when p_workspace_id is omitted.
 */
create function public.create_connection(
    p_provider text, p_name text, p_credentials jsonb, p_config jsonb default '{}', p_scopes text[] default null,
    p_workspace_id uuid default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.create_connection(p_provider, p_name, p_credentials, p_config, p_scopes, p_workspace_id) $$;

/** Change a connection's name or config (admin, can_configure), scopes or status (admin). */
create function public.update_connection(p_connection_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_connection(p_connection_id, p_changes) $$;

/** Replace a connection's credentials, stored in Vault (admin). */
create function public.rotate_connection_credentials(p_connection_id uuid, p_credentials jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.rotate_connection_credentials(p_connection_id, p_credentials) $$;

/** Delete a connection and its credentials; revokes every grant on it (admin). */
create function public.delete_connection(p_connection_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.delete_connection(p_connection_id) $$;

/** Make a mail connection the workspace's default (admin). */
create function public.set_default_mail_connection(p_connection_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.set_default_mail_connection(p_connection_id) $$;

/** Set what a member may do with a connection (admin). */
create function public.set_member_permission(
    p_connection_id uuid, p_user_id uuid, p_can_view boolean default true, p_can_send boolean default false,
    p_can_configure boolean default false, p_scopes text[] default null, p_daily_send_limit integer default null,
    p_monthly_send_limit integer default null, p_expires_at timestamptz default null,
    p_allowed_recipients text[] default '{}', p_blocked_recipients text[] default '{}'
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.set_member_permission(p_connection_id, p_user_id, p_can_view, p_can_send, p_can_configure, p_scopes,
    p_daily_send_limit, p_monthly_send_limit, p_expires_at, p_allowed_recipients, p_blocked_recipients) $$;

/** Take a member's permission on a connection away (admin). */
create function public.remove_member_permission(p_connection_id uuid, p_user_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.remove_member_permission(p_connection_id, p_user_id) $$;

/** Add a number to a connection (admin). */
create function public.add_phone_number(
    p_connection_id uuid, p_e164 text, p_friendly_name text default null, p_capabilities text[] default array['sms'],
    p_assigned_to uuid default null, p_is_default boolean default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.add_phone_number(p_connection_id, p_e164, p_friendly_name, p_capabilities, p_assigned_to, p_is_default) $$;

/** Change a number: name, capabilities, status, assignment, default (admin). */
create function public.update_phone_number(p_phone_number_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_phone_number(p_phone_number_id, p_changes) $$;

/** Remove a number (admin). */
create function public.delete_phone_number(p_phone_number_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.delete_phone_number(p_phone_number_id) $$;

/** Set a member's default number on its connection (yourself, or anyone as admin). */
create function public.set_member_default_number(p_phone_number_id uuid, p_user_id uuid default null) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.set_member_default_number(p_phone_number_id, p_user_id) $$;

/** Add a from address to a mail connection (admin). */
create function public.add_sender_identity(
    p_connection_id uuid, p_email text, p_name text default null, p_verified boolean default false,
    p_is_default boolean default null
) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.add_sender_identity(p_connection_id, p_email, p_name, p_verified, p_is_default) $$;

/** Change a sender identity (admin). */
create function public.update_sender_identity(p_identity_id uuid, p_changes jsonb) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.update_sender_identity(p_identity_id, p_changes) $$;

/** Remove a sender identity (admin). */
create function public.delete_sender_identity(p_identity_id uuid) returns jsonb
language sql security invoker set search_path = ''
as $$ select private.delete_sender_identity(p_identity_id) $$;

grant execute on function
    private.create_connection(text, text, jsonb, jsonb, text[], uuid),
    private.update_connection(uuid, jsonb),
    private.rotate_connection_credentials(uuid, jsonb),
    private.delete_connection(uuid),
    private.set_default_mail_connection(uuid),
    private.set_member_permission(uuid, uuid, boolean, boolean, boolean, text[], integer, integer, timestamptz, text[], text[]),
    private.remove_member_permission(uuid, uuid),
    private.add_phone_number(uuid, text, text, text[], uuid, boolean),
    private.update_phone_number(uuid, jsonb),
    private.delete_phone_number(uuid),
    private.set_member_default_number(uuid, uuid),
    private.add_sender_identity(uuid, text, text, boolean, boolean),
    private.update_sender_identity(uuid, jsonb),
    private.delete_sender_identity(uuid),
    public.create_connection(text, text, jsonb, jsonb, text[], uuid),
    public.update_connection(uuid, jsonb),
    public.rotate_connection_credentials(uuid, jsonb),
    public.delete_connection(uuid),
    public.set_default_mail_connection(uuid),
    public.set_member_permission(uuid, uuid, boolean, boolean, boolean, text[], integer, integer, timestamptz, text[], text[]),
    public.remove_member_permission(uuid, uuid),
    public.add_phone_number(uuid, text, text, text[], uuid, boolean),
    public.update_phone_number(uuid, jsonb),
    public.delete_phone_number(uuid),
    public.set_member_default_number(uuid, uuid),
    public.add_sender_identity(uuid, text, text, boolean, boolean),
    public.update_sender_identity(uuid, jsonb),
    public.delete_sender_identity(uuid)
to authenticated;

grant execute on function
    private.record_connection_test(uuid, boolean, text, uuid, jsonb),
    private.connection_for_test(uuid, uuid, text),
    private.webhook_connection(text, text)
to service_role;
