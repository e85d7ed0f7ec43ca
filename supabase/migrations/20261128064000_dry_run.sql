/**
 * ==== Ledger: dry runs ====
 * A send tool called with `dry_run` runs every check a real call runs — the caller, the
 * account and the rights on it, the rules, the sender, the idempotency key, the quota —
 * and then undoes all of it: nothing is recorded, reserved or sent. The answer says
 * whether the call would be allowed, why not (the refusal a real call would get), and the
 * quota that would be left after it.
 */

-- ---- Section - Dry run ----

/**
 * begin_tool_call's verdict on a call, with none of its effects: begin runs in a
 * subtransaction that is rolled back (its operation row, quota reservation, denial rows
 * and key use all undone). Returns {dry_run: true, allowed, error?: {code, message,
 * details}, connection_id?, provider?, sender?, remaining_today?, remaining_this_month?}:
 * the remaining quota is what would be left after this call on the tightest of the
 * account's limits (the grant's and the member's; null without a limit). Never returns
 * credentials.
 */
create function private.dry_run_tool_call(
    p_capability text,
    p_user_id uuid default null,
    p_agent_id uuid default null,
    p_agent_key_hash text default null,
    p_connection_id uuid default null,
    p_connection_ref text default null,
    p_recipients text[] default '{}',
    p_idempotency_key text default null,
    p_request_hash text default null,
    p_request_summary jsonb default '{}',
    p_auth_mode text default 'service',
    p_sender text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_verdict jsonb;
    v_begin jsonb;
    v_today date := private.utc_today();
begin
    begin
        v_begin := private.begin_tool_call(p_capability, p_user_id, p_agent_id, p_agent_key_hash, p_connection_id,
                                           p_connection_ref, p_recipients, p_idempotency_key, p_request_hash,
                                           p_request_summary, p_auth_mode, p_sender);
        if (v_begin ->> 'ok')::boolean and not coalesce((v_begin ->> 'replay')::boolean, false) then
            -- What would be left once this call's reservation counts, on the tighter limit.
            v_verdict := jsonb_build_object(
                'dry_run', true, 'allowed', true,
                'connection_id', v_begin -> 'connection_id', 'provider', v_begin -> 'provider', 'sender', v_begin -> 'sender',
                'remaining_today', (
                    select min(l.limit_value - coalesce(u.used, 0))
                    from (select g.id, g.daily_send_limit from public.agent_permissions g where g.id = (v_begin ->> 'permission_id')::uuid
                          union all
                          select m.id, m.daily_send_limit from public.member_permissions m where m.id = (v_begin ->> 'member_permission_id')::uuid
                         ) l (subject_id, limit_value)
                    left join public.usage_counters u on u.subject_id = l.subject_id and u.period = 'day' and u.period_start = v_today
                    where l.limit_value is not null),
                'remaining_this_month', (
                    select min(l.limit_value - coalesce(u.used, 0))
                    from (select g.id, g.monthly_send_limit from public.agent_permissions g where g.id = (v_begin ->> 'permission_id')::uuid
                          union all
                          select m.id, m.monthly_send_limit from public.member_permissions m where m.id = (v_begin ->> 'member_permission_id')::uuid
                         ) l (subject_id, limit_value)
                    left join public.usage_counters u on u.subject_id = l.subject_id and u.period = 'month'
                                                     and u.period_start = date_trunc('month', v_today)::date
                    where l.limit_value is not null));
        elsif (v_begin ->> 'ok')::boolean then
            -- A repeated idempotency key: a real call would replay the recorded outcome.
            v_verdict := jsonb_build_object('dry_run', true, 'allowed', false,
                'error', jsonb_build_object('code', 'conflict', 'message', 'this idempotency key was already used: a real call would replay its outcome',
                                            'details', jsonb_build_object('reason', 'idempotency_key_used')));
        else
            v_verdict := jsonb_build_object('dry_run', true, 'allowed', false,
                'error', (v_begin -> 'error') || jsonb_build_object('details',
                    coalesce(nullif(v_begin #> '{error,details}', 'null'::jsonb), '{}') - 'operation_id'));
        end if;
        -- Undo everything begin did.
        raise exception using errcode = 'SBDRY';
    exception
        when sqlstate 'SBDRY' then
            null;
        when sqlstate 'PT409' then
            v_verdict := jsonb_build_object('dry_run', true, 'allowed', false,
                'error', jsonb_build_object('code', 'conflict', 'message', 'a call with this idempotency key is in flight',
                                            'details', jsonb_build_object('reason', 'idempotency_key_in_flight')));
    end;
    return v_verdict;
end
$$;

revoke execute on function private.dry_run_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)
from public, anon, authenticated;
grant execute on function private.dry_run_tool_call(text, uuid, uuid, text, uuid, text, text[], text, text, jsonb, text, text)
to service_role;
