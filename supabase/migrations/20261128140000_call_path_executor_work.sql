/**
 * ==== Call path: less executor work per tool call ====
 * The same rules and answers, with less for PostgreSQL to redo on every call:
 *   - the ledger's and the usage counters' value rules are domains instead of table CHECK
 *     constraints. A table's CHECK constraints are read back from their stored text and
 *     planned again by every INSERT and UPDATE that touches the table; a domain's rules are
 *     planned once per session (the type cache). Every value is checked as before, with
 *     the same SQLSTATE (23514, check_violation);
 *   - begin_tool_call and finish_tool_call run their statements with generic plans: every
 *     statement on the call path is a lookup by key, and a plan made for the call's own
 *     values (PostgreSQL's choice for some of them) was planned again on every call;
 *   - discovery reads today's and this month's counter of each right by the counter's
 *     whole key. It used to find them among all of the subject's counters, one row per
 *     day of use, so a grant's tool list grew slower with every day it had been used.
 * `npm run bench` measures the effect (docs/benchmarks.md).
 */

-- ---- Section - Value rules as domains ----

/** What became of a tool call: pending until finished; denied when refused at begin. */
create domain public.operation_status as text
    check (value in ('pending', 'succeeded', 'partial', 'failed', 'unknown', 'denied'));

/** How the caller of a tool call authenticated. */
create domain public.operation_auth_mode as text
    check (value in ('user', 'user_agent', 'agent_key', 'service'));

/** A caller's idempotency key: 1 to 255 characters. */
create domain public.idempotency_key as text
    check (length(value) between 1 and 255);

/** What a usage counter counts for: an agent grant or a member permission. */
create domain public.usage_subject as text
    check (value in ('grant', 'member'));

/** The period of a usage counter: a UTC day or a UTC month. */
create domain public.usage_period as text
    check (value in ('day', 'month'));

/** Messages counted: never below zero. */
create domain public.usage_count as integer
    check (value >= 0);

alter table public.operations
    drop constraint operations_status_check,
    drop constraint operations_auth_mode_check,
    drop constraint operations_idempotency_key_check,
    alter column status type public.operation_status,
    alter column auth_mode type public.operation_auth_mode,
    alter column idempotency_key type public.idempotency_key;

alter table public.usage_counters
    drop constraint usage_counters_subject_check,
    drop constraint usage_counters_period_check,
    drop constraint usage_counters_used_check,
    alter column subject type public.usage_subject,
    alter column period type public.usage_period,
    alter column used type public.usage_count;

-- ---- Section - Begin and finish ----

-- Generic plans for every statement of the call path (see the top).
alter function private.begin_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)
    set plan_cache_mode = force_generic_plan;
alter function private.finish_tool_call(uuid, text, integer, text[], jsonb, text, text, jsonb, integer)
    set plan_cache_mode = force_generic_plan;

-- ---- Section - Discovery ----

/**
 * The tools an agent may call now, as entries without their input schemas (the rest is
 * per capability): one per capability, whatever the number of accounts. Sends are the
 * channel tools (sms_send, mms_send, whatsapp_send, email_send) on every account whose
 * provider carries the channel; a provider's own tools are listed only where they add
 * something (balance, history, click-to-call), and message_status (what became of the
 * agent's own sends) for every agent with a live right. With one account the entry names it
 * (connection_id, provider) and its description tells the limits and what is left of
 * them; with several the description lists each account (name, id, limits), in the
 * order of the caller's route for a channel tool, and the tool's `account` argument picks
 * one. limits: the account's limits object, or {"accounts": [{connection_id,
 * connection_name, limits}]} (only the raw format shows them; p_limits false leaves them
 * out). private.agent_tools renders the entries in a runtime format; the functions
 * render them with the schemas they cache (the same ones, from integration_capabilities).
 */
create or replace function private.agent_tool_entries(p_agent_id uuid, p_limits boolean default true) returns table (
    name text, capability text, title text, description text, provider text, connection_id uuid, connection_name text,
    read_only boolean, destructive boolean, limits json
)
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    v_today date := private.utc_today();
    v_month date := date_trunc('month', private.utc_today())::date;
begin
    return query
    with live as (
        select r.*
        from private.agent_rights(p_agent_id) r
        join public.service_providers sp on sp.id = r.provider_id and sp.is_enabled
        where r.dead_reason is null
    ),
    -- Today's and this month's use of every counter of these rights: one lookup by the
    -- counter's whole key each, however many days and months of use the counters keep.
    used as (
        select s.subject_id,
               coalesce((select u.used from public.usage_counters u
                         where u.subject_id = s.subject_id and u.period = 'day' and u.period_start = v_today), 0)::integer as day,
               coalesce((select u.used from public.usage_counters u
                         where u.subject_id = s.subject_id and u.period = 'month' and u.period_start = v_month), 0)::integer as month
        from (select l.grant_id from live l union select l.member_permission_id from live l) s (subject_id)
        where s.subject_id is not null
    ),
    rights as (
        select l.*,
               -- least() skips nulls: the tighter of the limits that exist
               least(l.grant_daily_limit, l.member_daily_limit) as daily_limit,
               least(l.grant_monthly_limit, l.member_monthly_limit) as monthly_limit,
               case when coalesce(l.grant_daily_limit, l.member_daily_limit) is not null then
                   greatest(least(l.grant_daily_limit - coalesce(g.day, 0), l.member_daily_limit - coalesce(m.day, 0)), 0)
               end as remaining_today,
               case when coalesce(l.grant_monthly_limit, l.member_monthly_limit) is not null then
                   greatest(least(l.grant_monthly_limit - coalesce(g.month, 0), l.member_monthly_limit - coalesce(m.month, 0)), 0)
               end as remaining_month
        from live l
        left join used g on g.subject_id = l.grant_id
        left join used m on m.subject_id = l.member_permission_id
    ),
    described as materialized (
        -- Once per right, not per tool: the limits sentence and the limits object, for
        -- sending tools and (expiry only) for the others.
        select r.*,
               nullif(concat_ws(' ',
                   format('Max %s recipients per message.', r.max_recipients_per_message),
                   case when r.daily_limit is not null
                        then format('%s of %s messages left today (UTC).', r.remaining_today, r.daily_limit) end,
                   case when r.monthly_limit is not null
                        then format('%s of %s messages left this month (UTC).', r.remaining_month, r.monthly_limit) end,
                   case when cardinality(r.allowed_recipients || r.member_allowed_recipients) > 0
                        then format('Only to: %s.', array_to_string(r.allowed_recipients || r.member_allowed_recipients, ', ')) end,
                   case when cardinality(r.blocked_recipients || r.member_blocked_recipients) > 0
                        then format('Never to: %s.', array_to_string(r.blocked_recipients || r.member_blocked_recipients, ', ')) end,
                   x.expiry), '') as send_limits,
               x.expiry as read_limits,
               case when p_limits then json_build_object(
                   'max_recipients_per_message', r.max_recipients_per_message, 'daily_send_limit', r.daily_limit,
                   'remaining_today', r.remaining_today, 'monthly_send_limit', r.monthly_limit,
                   'remaining_this_month', r.remaining_month, 'allowed_recipients', r.allowed_recipients,
                   'blocked_recipients', r.blocked_recipients, 'member_allowed_recipients', r.member_allowed_recipients,
                   'member_blocked_recipients', r.member_blocked_recipients, 'expires_at', r.expires_at) end as send_limits_json,
               case when p_limits then json_build_object(
                   'max_recipients_per_message', null, 'daily_send_limit', null, 'remaining_today', null,
                   'monthly_send_limit', null, 'remaining_this_month', null, 'allowed_recipients', r.allowed_recipients,
                   'blocked_recipients', r.blocked_recipients, 'member_allowed_recipients', r.member_allowed_recipients,
                   'member_blocked_recipients', r.member_blocked_recipients, 'expires_at', r.expires_at) end as read_limits_json
        from rights r
        cross join lateral (select case when r.expires_at is not null
            then format('Access expires %s.', to_char(r.expires_at at time zone 'utc', 'YYYY-MM-DD HH24:MI "UTC"')) end
            as expiry) x
    ),
    -- The caller's route per channel: their member's own, else the workspace's.
    route_order as (
        select distinct on (r.channel) r.channel, r.id as route_id
        from public.routes r
        join public.agents a on a.id = p_agent_id and r.workspace_id = a.workspace_id
                             and (r.user_id = a.user_id or r.user_id is null)
        order by r.channel, r.user_id is null
    ),
    usable as (
        select cap.capability_key, cap.display_label, cap.description as cap_description, cap.is_read_only,
               cap.is_destructive, cap.display_order, cap.channel, sp.name as provider, g.connection_id,
               g.connection_name, g.connection_created_at, rc.position as route_position,
               case when cap.sends_messages then g.send_limits else g.read_limits end as limits_text,
               case when cap.sends_messages then g.send_limits_json else g.read_limits_json end as limits_json
        from described g
        join public.service_providers sp on sp.id = g.provider_id
        join public.integration_capabilities cap
          on case when cap.channel is not null then cap.channel = any (sp.channels)
                  -- a provider's own send tools are its REST routes; agents send by channel
                  else cap.provider_id = g.provider_id
                       and not (cap.sends_messages and cap.required_scope in ('sms', 'mms', 'whatsapp', 'email')) end
        left join route_order ro on ro.channel = cap.channel
        left join public.route_connections rc on rc.route_id = ro.route_id and rc.connection_id = g.connection_id
        where cap.required_scope = any (g.scopes) and (g.can_send or not cap.sends_messages)
    ),
    tools as (
        select u.capability_key,
               concat_ws(' ', min(u.cap_description),
                   case when count(*) = 1 then min(u.limits_text)
                        else format('Accounts (pass account to choose one): %s.%s',
                                    string_agg(concat(u.connection_name, ' = ', u.connection_id, ' (' || u.limits_text || ')'), '; '
                                               order by u.route_position nulls last, u.connection_created_at, u.connection_id),
                                    case when bool_or(u.route_position is not null)
                                         then format(' Without account, your route tries %s, in this order, while a provider refuses.',
                                                     string_agg(u.connection_name, ', ' order by u.route_position)
                                                         filter (where u.route_position is not null)) end)
                   end) as description,
               min(u.display_label) as display_label, bool_and(u.is_read_only) as is_read_only,
               bool_or(u.is_destructive) as is_destructive, min(u.display_order) as display_order,
               min(u.channel) as channel,
               case when count(distinct u.provider) = 1 then min(u.provider) end as provider,
               case when count(*) = 1 then (array_agg(u.connection_id))[1] end as connection_id,
               case when count(*) = 1 then min(u.connection_name) end as connection_name,
               case when not p_limits then null
                    when count(*) = 1 then (array_agg(u.limits_json))[1]
                    else json_build_object('accounts', json_agg(json_build_object(
                             'connection_id', u.connection_id, 'connection_name', u.connection_name, 'limits', u.limits_json)
                             order by u.route_position nulls last, u.connection_created_at, u.connection_id)) end as limits
        from usable u
        group by u.capability_key
        union all
        -- Every agent with a live right may read what became of its own sends.
        select cap.capability_key, cap.description, cap.display_label, cap.is_read_only, cap.is_destructive,
               cap.display_order, null, null, null, null, null
        from public.integration_capabilities cap
        where cap.capability_key = 'message_status' and exists (select 1 from live)
    )
    select t.capability_key, t.capability_key, t.display_label, t.description, t.provider, t.connection_id, t.connection_name,
           t.is_read_only, t.is_destructive, t.limits
    from tools t
    order by t.channel is null, t.provider nulls last, t.display_order, t.capability_key;
end
$$;
