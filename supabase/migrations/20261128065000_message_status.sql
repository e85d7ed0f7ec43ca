/**
 * ==== Ledger: message status for agents ====
 * An agent can ask what became of its own sends: each operation's outcome with the
 * delivery reports and replies linked to it. Only the agent's own operations, ever: the
 * caller is resolved like any tool call (agent key, or a member's agent), and the answer
 * is filtered by that agent.
 */

-- ---- Section - The tool ----
insert into public.integration_capabilities (provider_id, channel, capability_key, display_label, description, required_scope,
                                             is_read_only, is_destructive, sends_messages, display_order)
values (null, null, 'message_status', 'Message status',
        'What became of your own recent sends: each one''s outcome, the delivery reports the providers sent '
        '(queued, sent, delivered, undelivered, failed, read) and the replies people sent back. Newest first; '
        'pass operation_ids to ask about particular sends.',
        'status', true, false, false, 90);

/**
 * The agent's own recent operations (newest first; p_operation_ids narrows them; at most
 * p_limit, 1-50), each with its message events: delivery reports and inbound replies.
 * The caller is resolved as for a tool call (p_agent_key_hash, or p_user_id + p_agent_id);
 * a refused caller gets the refusal ({ok:false, error}). Another agent's operations never
 * appear, named or not.
 */
create function private.agent_message_status(
    p_user_id uuid default null, p_agent_id uuid default null, p_agent_key_hash text default null,
    p_operation_ids uuid[] default null, p_limit integer default 20
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ctx private.call_context := row('message_status', case when p_agent_key_hash is not null then 'agent_key' else 'user_agent' end,
        p_user_id, p_agent_id, null, null, null, null, '{}'::text[], '{}'::jsonb, null, null, null);
begin
    v_ctx := private.resolve_caller(v_ctx, p_agent_key_hash);
    if v_ctx.denial is not null then
        return v_ctx.denial;
    end if;
    if v_ctx.agent_id is null then
        return private.refusal(null, 'invalid_request', 'message_status is for agents: name the agent', null);
    end if;
    return jsonb_build_object('ok', true, 'operations', coalesce((
        select jsonb_agg(o.item order by o.created_at desc, o.id)
        from (
            select op.id, op.created_at, jsonb_build_object(
                'operation_id', op.id, 'tool', op.capability_key, 'status', op.status, 'created_at', op.created_at,
                'recipient_count', op.recipient_count, 'sender', op.sender, 'provider_message_ids', to_jsonb(op.provider_message_ids),
                'error_code', op.error_code,
                'events', coalesce((
                    select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                               'type', case e.event_type when 'inbound_message' then 'reply' else 'delivery' end,
                               'delivery_status', e.delivery_status, 'provider_status', e.status, 'channel', e.channel,
                               'recipient', e.recipient, 'provider_message_id', e.provider_message_id,
                               'body', case when e.event_type = 'inbound_message' then e.payload ->> 'body' end,
                               'occurred_at', coalesce(e.occurred_at, e.received_at)))
                           order by coalesce(e.occurred_at, e.received_at), e.id)
                    from public.message_events e where e.operation_id = op.id), '[]'::jsonb)) as item
            from public.operations op
            where op.agent_id = v_ctx.agent_id and op.status <> 'denied'
              and (p_operation_ids is null or op.id = any (p_operation_ids))
            order by op.created_at desc, op.id
            limit least(greatest(coalesce(p_limit, 20), 1), 50)
        ) o), '[]'::jsonb));
end
$$;

revoke execute on function private.agent_message_status(uuid, uuid, text, uuid[], integer) from public, anon, authenticated;
grant execute on function private.agent_message_status(uuid, uuid, text, uuid[], integer) to service_role;
