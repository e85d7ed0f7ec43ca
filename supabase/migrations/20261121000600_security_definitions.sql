/**
 * ---- Section - Security definitions ----
 * RLS on every table, explicit grants (nothing is granted implicitly), policies in the
 * initPlan form `(select auth.uid())`, scoped `to authenticated`, named
 * <table>_<action>_policy. Writes other than agents go through the RPCs.
 */
alter table public.service_providers enable row level security;
alter table public.integration_capabilities enable row level security;
alter table public.agents enable row level security;
alter table public.connections enable row level security;
alter table public.agent_permissions enable row level security;
alter table public.agent_keys enable row level security;
alter table public.operations enable row level security;
alter table public.message_events enable row level security;
alter table public.usage_counters enable row level security;

-- service_role bypasses RLS; it still needs table privileges.
grant select, insert, update, delete on all tables in schema public to service_role;

-- ---- Reference data: readable by signed-in users ----
grant select on public.service_providers, public.integration_capabilities to authenticated;

create policy service_providers_select_policy on public.service_providers
    for select to authenticated
    using (true);

create policy integration_capabilities_select_policy on public.integration_capabilities
    for select to authenticated
    using (true);

-- ---- Agents: owners manage them directly ----
grant select, delete on public.agents to authenticated;
grant insert (name, description, is_active) on public.agents to authenticated;
grant update (name, description, is_active) on public.agents to authenticated;

create policy agents_select_policy on public.agents
    for select to authenticated
    using ((select auth.uid()) = user_id);

create policy agents_insert_policy on public.agents
    for insert to authenticated
    with check ((select auth.uid()) = user_id);

create policy agents_update_policy on public.agents
    for update to authenticated
    using ((select auth.uid()) = user_id)
    with check ((select auth.uid()) = user_id);

create policy agents_delete_policy on public.agents
    for delete to authenticated
    using ((select auth.uid()) = user_id);

-- ---- Read-only to owners (writes through RPCs) ----
grant select on public.connections, public.agent_permissions, public.agent_keys,
    public.operations, public.message_events, public.usage_counters to authenticated;

create policy connections_select_policy on public.connections
    for select to authenticated
    using ((select auth.uid()) = user_id and deleted_at is null);

create policy agent_permissions_select_policy on public.agent_permissions
    for select to authenticated
    using ((select auth.uid()) = user_id);

create policy agent_keys_select_policy on public.agent_keys
    for select to authenticated
    using ((select auth.uid()) = user_id);

create policy operations_select_policy on public.operations
    for select to authenticated
    using ((select auth.uid()) = user_id);

create policy message_events_select_policy on public.message_events
    for select to authenticated
    using ((select auth.uid()) = user_id);

create policy usage_counters_select_policy on public.usage_counters
    for select to authenticated
    using ((select auth.uid()) = user_id);
