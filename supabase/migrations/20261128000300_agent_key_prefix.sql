/**
 * ---- Section - Agent key prefix ----
 * Agent keys move out of Supabase's `sb_` namespace. Supabase's API gateway takes any
 * `Authorization: Bearer sb_…` for one of its own API keys (sb_publishable_…,
 * sb_secret_…) and replaces the header before the function runs, so an `sb_agent_…`
 * key never reached a function behind it. New keys are `swb_agent_…`; the functions
 * accept no other prefix, so keys issued with the old one are revoked here rather
 * than left looking usable in the user's key list.
 */

/**
 * Issues an agent key. The key is returned once; only its SHA-256 is stored.
 * Format: swb_agent_<43 url-safe chars> (256 bits of randomness); key_prefix keeps
 * its first 16 characters so the user can recognise it in a list.
 */
create or replace function private.issue_agent_key(p_agent_id uuid, p_name text default null, p_expires_at timestamptz default null)
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
    v_key := 'swb_agent_' || rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');
    insert into public.agent_keys (user_id, agent_id, name, key_prefix, key_hash, expires_at)
    values (v_uid, p_agent_id, p_name, left(v_key, 16), private.sha256_hex(v_key), p_expires_at)
    returning * into v_row;
    return jsonb_build_object('id', v_row.id, 'agent_id', v_row.agent_id, 'name', v_row.name, 'key', v_key,
                              'key_prefix', v_row.key_prefix, 'expires_at', v_row.expires_at, 'created_at', v_row.created_at);
end
$$;

update public.agent_keys
set revoked_at = now()
where key_prefix like 'sb\_agent\_%' and revoked_at is null;
