/**
 * Agent keys are `swb_agent_` + 43 url-safe characters: never in Supabase's `sb_`
 * namespace, whose API gateway replaces any `Authorization: Bearer sb_…` before a
 * function sees it. Only the SHA-256 is stored, with the first 16 characters for lists,
 * and no live key is left with the old `sb_agent_` prefix.
 */
begin;
set local search_path = extensions, public;
select plan(5);

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

select * from finish();
rollback;
