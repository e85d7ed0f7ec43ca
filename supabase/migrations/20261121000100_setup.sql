/**
 * ---- Section - Setup ----
 * Privileges first (basejump style): no function is executable by PUBLIC unless a
 * migration grants it, and new tables get no Data API grants implicitly (matching
 * Supabase's 2026 default). `private` holds SECURITY DEFINER code and is never
 * exposed through the Data API.
 */
alter default privileges in schema public revoke execute on functions from public;
alter default privileges revoke execute on functions from public;

create schema if not exists private;
comment on schema private is 'Switchboard internals: SECURITY DEFINER validators and helpers. Never exposed through the Data API.';
revoke all on schema private from public;
-- The public RPC wrappers run as the caller and call into private; only the
-- functions granted below are executable.
grant usage on schema private to authenticated, service_role;
alter default privileges in schema private revoke execute on functions from public;
