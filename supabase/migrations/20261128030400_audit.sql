/**
 * ==== Audit ====
 * The trail of administrative actions, separate from the tool-call ledger: credentials
 * created, rotated, tested and deleted; members invited, joined, removed, role changed;
 * permissions and grants changed; keys issued and revoked. Each row has the actor, the
 * target, the time, and the client's IP address and user agent when the request carried
 * them (PostgREST passes the request headers to SQL as `request.headers`).
 * Readable by the workspace's admins and owner; append-only for every role, the table
 * owner included; never holding a secret (details name fields, never values).
 */

-- ---- Section - Table ----
create table public.audit_events (
    id bigint generated always as identity primary key,
    /* no foreign key: the trail outlives a deleted workspace */
    workspace_id uuid not null,
    /* the signed-in user who acted; null when a service acted without naming one */
    actor_user_id uuid,
    /* the database role of the request: authenticated, service_role, ... */
    actor_role text not null,
    action text not null check (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type text not null,
    target_id text,
    details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
    ip inet,
    user_agent text check (length(user_agent) <= 512),
    created_at timestamptz not null default now()
);
comment on table public.audit_events is 'Administrative actions per workspace: append-only, readable by admins, never secrets.';
create index audit_events_workspace_id_created_at_idx on public.audit_events (workspace_id, created_at desc);

/** Refuses every change to an audit row: the trail is append-only for every role. */
create function private.audit_events_append_only() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'the audit trail is append-only' using errcode = '42501';
end
$$;

create trigger audit_events_no_update before update or delete on public.audit_events
    for each row execute function private.audit_events_append_only();
create trigger audit_events_no_truncate before truncate on public.audit_events
    for each statement execute function private.audit_events_append_only();

alter table public.audit_events enable row level security;
grant select on public.audit_events to authenticated, service_role;

create policy audit_events_select_policy on public.audit_events
    for select to authenticated
    using (private.has_role_on_workspace(workspace_id, 'admin'));

-- ---- Section - Recording ----

/**
 * The client of the current request, from the headers PostgREST (or the functions,
 * through `request.headers`) passed: {ip, user_agent}. The address the platform's edge
 * sets (CF-Connecting-IP on Supabase, else X-Real-IP) comes first; the first
 * X-Forwarded-For entry is the fallback, and is whatever the client's first proxy
 * reported. A value that is not an address is dropped rather than stored.
 */
create function private.request_client() returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_headers jsonb;
    v_ip text;
begin
    v_headers := nullif(current_setting('request.headers', true), '')::jsonb;
    if v_headers is null or jsonb_typeof(v_headers) <> 'object' then
        return '{}'::jsonb;
    end if;
    v_ip := btrim(split_part(coalesce(v_headers ->> 'cf-connecting-ip', v_headers ->> 'x-real-ip',
                                      v_headers ->> 'x-forwarded-for', ''), ',', 1));
    begin
        v_ip := host(v_ip::inet);
    exception when others then
        v_ip := null;
    end;
    return jsonb_strip_nulls(jsonb_build_object('ip', v_ip, 'user_agent', left(v_headers ->> 'user-agent', 512)));
exception when others then
    -- Malformed headers must never stop an administrative action.
    return '{}'::jsonb;
end
$$;

/** The address, or null when the text is not one. */
create function private.inet_or_null(p_text text) returns inet
language plpgsql immutable
set search_path = ''
as $$
begin
    return p_text::inet;
exception when others then
    return null;
end
$$;

/**
 * Appends one audit event for the current request: actor auth.uid() (or p_actor when a
 * service acts for a user), role, client IP and user agent (from the request, or p_client
 * {ip, user_agent} when a function passes them). p_details must name things, never carry
 * a secret.
 */
create function private.audit(
    p_workspace_id uuid, p_action text, p_target_type text, p_target_id text, p_details jsonb default '{}',
    p_actor uuid default null, p_client jsonb default null
) returns void
language plpgsql
set search_path = ''
as $$
declare
    v_client jsonb := coalesce(p_client, private.request_client());
begin
    insert into public.audit_events (workspace_id, actor_user_id, actor_role, action, target_type, target_id, details,
                                     ip, user_agent)
    values (p_workspace_id, coalesce(p_actor, auth.uid()), coalesce(nullif(current_setting('role', true), 'none'), current_user),
            p_action, p_target_type, p_target_id, coalesce(p_details, '{}'),
            private.inet_or_null(v_client ->> 'ip'), left(v_client ->> 'user_agent', 512));
end
$$;
