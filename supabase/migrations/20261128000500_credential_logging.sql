/**
 * ---- Section - Credential logging ----
 * Credentials reach the database only as the JSON argument of create_connection and
 * rotate_connection_credentials. Every path sends that JSON as a bind parameter (PostgREST
 * sends the request body as $1; the statement text never holds a value), and
 * PostgreSQL writes bind parameters to its log whenever it logs the statement:
 *   log_statement = 'all'                 "execute …" + "DETAIL: parameters: $1 = '{…}'"
 *   log_min_duration_statement >= 0       "duration: … execute …" + the same DETAIL
 *   an error, log_parameter_max_length_on_error <> 0
 *                                         "CONTEXT: unnamed portal with parameters: …"
 * The request headers PostgREST passes as a parameter (request.headers) carry the
 * caller's access token, so the same lines record that too.
 *
 * Both length limits at 0 keep every parameter out of those lines while statements,
 * durations and errors are still logged. They are set on the roles that log in for
 * API traffic, in this database only:
 *   authenticator   PostgREST's login role (supabase-js rpc calls)
 *   postgres        the role SUPABASE_DB_URL logs in as (edge functions)
 *   session_user    the role running this migration, when it is another one (the
 *                   devstack's PostgREST stand-in and functions log in as it)
 * A role's setting applies to its new sessions; SET ROLE does not change it.
 *
 * log_parameter_max_length is superuser-only. Where the migrating role may not set it
 * (Supabase: allowed only when supautils' privileged_role_allowed_configs lists it),
 * each setting it cannot apply is skipped with a NOTICE and nothing else changes; the
 * README ("Secrets and logs") says what a deployment must then keep.
 */
do $$
declare
    v_role text;
    v_setting text;
begin
    for v_role in
        select r.rolname::text
        from pg_catalog.pg_roles r
        where r.rolname in ('authenticator', 'postgres', session_user)
        order by r.rolname
    loop
        foreach v_setting in array array['log_parameter_max_length', 'log_parameter_max_length_on_error'] loop
            begin
                execute pg_catalog.format('alter role %I in database %I set %I = 0', v_role, pg_catalog.current_database(), v_setting);
            exception when insufficient_privilege then
                raise notice 'credential logging: % is not set for role % (%); bind parameters of its sessions may be logged, see README "Secrets and logs"',
                    v_setting, v_role, sqlerrm;
            end;
        end loop;
    end loop;
end
$$;
