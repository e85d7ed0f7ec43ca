/**
 * Agent keys are `swb_agent_` + 43 url-safe characters: never in Supabase's `sb_`
 * namespace, whose API gateway replaces any `Authorization: Bearer sb_…` before a
 * function sees it. Only the SHA-256 is stored, with the first 16 characters for lists,
 * filed under the agent's workspace with who issued it, and no live key is left with
 * the old `sb_agent_` prefix. The audit trail names a key by its prefix only.
 */
begin;
set local search_path = extensions, public;
select plan(7);

select from tests.seed_world();

select tests.authenticate_as('user_a');
select tests.remember('issued', public.issue_agent_key(tests.world('a_agent')::uuid, 'format check'));
select tests.reset_authentication();

select matches(tests.recall('issued') ->> 'key', '^swb_agent_[A-Za-z0-9_-]{43}$', 'a new key is swb_agent_ + 43 url-safe characters');
select ok(not starts_with(tests.recall('issued') ->> 'key', 'sb_'), 'a new key does not start with sb_');
select is(tests.recall('issued') ->> 'key_prefix', left(tests.recall('issued') ->> 'key', 16), 'key_prefix is the first 16 characters');
select is(
    (select key_hash from public.agent_keys where id = (tests.recall('issued') ->> 'id')::uuid),
    encode(sha256(convert_to(tests.recall('issued') ->> 'key', 'utf8')), 'hex'),
    'only the SHA-256 of the key is stored');
select is(
    (select count(*)::int from public.agent_keys where key_prefix like 'sb\_agent\_%' and revoked_at is null),
    0, 'no live key has the old sb_agent_ prefix');
select results_eq(format('select workspace_id, created_by from public.agent_keys where id = %L', tests.recall('issued') ->> 'id'),
    format('values (%L::uuid, %L::uuid)', tests.world('a_workspace'), tests.world('a_uid')),
    'the key is filed under its agent''s workspace, with who issued it');
select results_eq(format($$select actor_user_id, details ->> 'key_prefix', strpos(e::text, %L) from public.audit_events e
                           where action = 'key.issued' and target_id = %L$$, tests.recall('issued') ->> 'key', tests.recall('issued') ->> 'id'),
    format('values (%L::uuid, %L, 0)', tests.world('a_uid'), tests.recall('issued') ->> 'key_prefix'),
    'the audit trail records who issued the key and its prefix, never the key');

select * from finish();
rollback;
