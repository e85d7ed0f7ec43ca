-- =============================================================================
-- Switchboard devstack: platform bootstrap
--
-- Creates ONLY what a real Supabase database already has, and only where it is
-- missing: the API roles, the `auth` schema (users, sessions, refresh_tokens and
-- identities tables, and auth.uid()/role()/email()/jwt() as Supabase defines them),
-- the `extensions` schema, and a Vault stand-in with Vault's exact interface and
-- grants. Nothing here belongs in supabase/migrations: on a hosted project all of
-- it exists already.
--
-- Sources: supabase/postgres init scripts (roles), supabase/auth migrations
-- (auth functions), supabase/vault 0.3.x (vault interface and grants).
-- Idempotent: safe to run against a database that has some or all of it.
-- =============================================================================

-- ---- Roles -------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin nologin superuser createdb createrole replication bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit createrole;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'dashboard_user') then
    create role dashboard_user nologin createdb createrole replication;
  end if;
end
$$;

-- 20230529180330_alter_api_roles_for_inherit
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

-- The edge functions' own login role, as docs/operations.md ("Pooled connections") has a
-- project create it: like authenticator, it can only become service_role or authenticated
-- (NOINHERIT: nothing of theirs without SET ROLE) and owns nothing. No password: the local
-- server trusts loopback.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'switchboard_functions') then
    create role switchboard_functions login noinherit;
  end if;
end
$$;
grant authenticated, service_role to switchboard_functions;
-- Its sessions start as service_role with a statement timeout (the server applies these to
-- every connection it opens, pooled or not), so a service step is its statement alone;
-- a user's step still sets role authenticated and the claims inside its transaction.
alter role switchboard_functions set role = 'service_role';
alter role switchboard_functions set statement_timeout = '5s';
-- Bind parameters stay out of its sessions' log lines, as the credential-logging migration
-- has them for the other API login roles.
alter role switchboard_functions set log_parameter_max_length = 0;
alter role switchboard_functions set log_parameter_max_length_on_error = 0;

-- ---- Schemas and extensions --------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

grant usage on schema public to postgres, anon, authenticated, service_role;

-- ---- auth schema -------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role;
grant all on schema auth to postgres;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
grant select on auth.users to postgres with grant option;
grant all on auth.users to postgres;

-- Sessions, refresh tokens and identities as Supabase Auth keeps them (names, types and
-- cascades of supabase/auth's migrations), with only the columns the devstack's Auth
-- stand-in (packages/devstack/src/auth-standin.ts) reads or writes.
create table if not exists auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz,
  updated_at timestamptz,
  refreshed_at timestamp,
  user_agent text
);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

-- Signing out deletes sessions; their refresh tokens go with them.
create table if not exists auth.refresh_tokens (
  id bigserial primary key,
  token varchar(255) constraint refresh_tokens_token_unique unique,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index if not exists refresh_tokens_parent_idx on auth.refresh_tokens (parent);

create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid primary key default gen_random_uuid(),
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index if not exists identities_user_id_idx on auth.identities (user_id);

alter table auth.sessions owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter table auth.identities owner to supabase_auth_admin;
alter table auth.sessions enable row level security;
alter table auth.refresh_tokens enable row level security;
alter table auth.identities enable row level security;
grant all on auth.sessions, auth.refresh_tokens, auth.identities to postgres;
grant all on sequence auth.refresh_tokens_id_seq to postgres;

-- auth.uid/role/email/jwt exactly as supabase/auth defines them: the legacy
-- per-claim setting first, then the JSON `request.jwt.claims` that PostgREST sets.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to postgres, anon, authenticated, service_role;

-- ---- Vault stand-in ----------------------------------------------------------
-- Used only when the real supabase_vault extension is not installed. Same table,
-- view, function signatures and grants as supabase_vault 0.3.x. Encryption:
-- AES-256-CBC with a per-row nonce as IV and an HMAC-SHA256 tag over
-- ciphertext || associated data (the row id) || nonce, keys derived from a root
-- key that lives in a schema no API role (and no migration) can read.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'supabase_vault') then
    raise notice 'supabase_vault is installed; skipping the Vault stand-in';
    return;
  end if;

  execute 'create schema if not exists vault';
  execute 'create schema if not exists vault_root_key';
  execute 'revoke all on schema vault_root_key from public';

  execute $sql$
    create table if not exists vault_root_key.key (
      id boolean primary key default true check (id),
      root_key bytea not null
    )
  $sql$;
  execute 'revoke all on vault_root_key.key from public';
  if not exists (select 1 from vault_root_key.key) then
    insert into vault_root_key.key (root_key) values (extensions.gen_random_bytes(32));
  end if;

  execute $sql$
    create or replace function vault._crypto_aead_det_noncegen() returns bytea
    language sql volatile
    set search_path = ''
    as $f$ select extensions.gen_random_bytes(16) $f$
  $sql$;

  -- Derives the encryption and MAC keys for a context from the root key.
  execute $sql$
    create or replace function vault_root_key.derive(context bytea, purpose text) returns bytea
    language plpgsql stable security definer
    set search_path = ''
    as $f$
    begin
      -- PL/pgSQL keeps the plan for the session (a SQL function would plan on every call).
      return (select extensions.hmac(convert_to(purpose, 'utf8') || context, k.root_key, 'sha256')
              from vault_root_key.key k);
    end
    $f$
  $sql$;
  execute 'revoke all on function vault_root_key.derive(bytea, text) from public';

  execute $sql$
    create or replace function vault._crypto_aead_det_encrypt(
      message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null
    ) returns bytea
    language plpgsql volatile security definer
    set search_path = ''
    as $f$
    declare
      v_nonce bytea := coalesce(nonce, vault._crypto_aead_det_noncegen());
      v_cipher bytea;
    begin
      v_cipher := extensions.encrypt_iv(message, vault_root_key.derive(context, 'enc'), v_nonce, 'aes-cbc/pad:pkcs');
      return v_cipher || extensions.hmac(v_cipher || additional || v_nonce, vault_root_key.derive(context, 'mac'), 'sha256');
    end
    $f$
  $sql$;

  execute $sql$
    create or replace function vault._crypto_aead_det_decrypt(
      message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null
    ) returns bytea
    language plpgsql stable security definer
    set search_path = ''
    as $f$
    declare
      v_cipher bytea := substring(message from 1 for length(message) - 32);
      v_tag bytea := substring(message from length(message) - 31);
      v_mac_key bytea;
      v_enc_key bytea;
    begin
      -- Both keys in one read of the root key (this runs for every credential a call decrypts).
      select extensions.hmac(convert_to('mac', 'utf8') || context, k.root_key, 'sha256'),
             extensions.hmac(convert_to('enc', 'utf8') || context, k.root_key, 'sha256')
      into v_mac_key, v_enc_key
      from vault_root_key.key k;
      if extensions.hmac(v_cipher || additional || nonce, v_mac_key, 'sha256') <> v_tag then
        raise exception 'invalid ciphertext';
      end if;
      return extensions.decrypt_iv(v_cipher, v_enc_key, nonce, 'aes-cbc/pad:pkcs');
    end
    $f$
  $sql$;

  execute $sql$
    create table if not exists vault.secrets (
      id uuid primary key default gen_random_uuid(),
      name text,
      description text not null default '',
      secret text not null,
      key_id uuid,
      nonce bytea default vault._crypto_aead_det_noncegen(),
      created_at timestamptz not null default current_timestamp,
      updated_at timestamptz not null default current_timestamp
    )
  $sql$;
  execute 'create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null';

  execute $sql$
    create or replace view vault.decrypted_secrets as
    select s.id, s.name, s.description, s.secret,
           convert_from(
             vault._crypto_aead_det_decrypt(decode(s.secret, 'base64'), convert_to(s.id::text, 'utf8'), 0, 'pgsodium', s.nonce),
             'utf8'
           ) as decrypted_secret,
           s.key_id, s.nonce, s.created_at, s.updated_at
    from vault.secrets s
  $sql$;

  execute $sql$
    create or replace function vault.create_secret(
      new_secret text, new_name text = null, new_description text = '', new_key_id uuid = null
    ) returns uuid
    language plpgsql security definer
    set search_path = ''
    as $f$
    declare
      v_id uuid := gen_random_uuid();
      v_nonce bytea := vault._crypto_aead_det_noncegen();
    begin
      insert into vault.secrets (id, name, description, secret, nonce)
      values (
        v_id, new_name, coalesce(new_description, ''),
        encode(vault._crypto_aead_det_encrypt(convert_to(new_secret, 'utf8'), convert_to(v_id::text, 'utf8'), 0, 'pgsodium', v_nonce), 'base64'),
        v_nonce
      );
      return v_id;
    end
    $f$
  $sql$;

  execute $sql$
    create or replace function vault.update_secret(
      secret_id uuid, new_secret text = null, new_name text = null, new_description text = null, new_key_id uuid = null
    ) returns void
    language plpgsql security definer
    set search_path = ''
    as $f$
    declare
      v_nonce bytea := vault._crypto_aead_det_noncegen();
    begin
      update vault.secrets s set
        secret = case when new_secret is null then s.secret else encode(
          vault._crypto_aead_det_encrypt(convert_to(new_secret, 'utf8'), convert_to(s.id::text, 'utf8'), 0, 'pgsodium', v_nonce), 'base64') end,
        nonce = case when new_secret is null then s.nonce else v_nonce end,
        name = coalesce(new_name, s.name),
        description = coalesce(new_description, s.description),
        updated_at = now()
      where s.id = secret_id;
    end
    $f$
  $sql$;

  -- Extension defaults: nothing for PUBLIC. Platform grants (after-create.sql):
  -- postgres and service_role only; anon and authenticated get nothing.
  execute 'revoke all on schema vault from public';
  execute 'revoke all on all tables in schema vault from public';
  execute 'revoke all on function vault._crypto_aead_det_encrypt(bytea, bytea, bigint, bytea, bytea), vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea), vault._crypto_aead_det_noncegen(), vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid) from public';
  execute 'grant usage on schema vault to postgres with grant option';
  execute 'grant usage on schema vault to service_role';
  execute 'grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option';
  execute 'grant select, delete on vault.secrets, vault.decrypted_secrets to service_role';
  execute 'grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid), vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea) to postgres with grant option';
  execute 'grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid), vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea) to service_role';
  execute 'grant execute on function vault._crypto_aead_det_noncegen() to postgres, service_role';
end
$$;

-- ---- PostgREST exposure, for the advisors -----------------------------------
-- splinter reads pgrst.db_schemas to know which schemas the Data API exposes.
do $$
begin
  execute format('alter database %I set pgrst.db_schemas = %L', current_database(), 'public,graphql_public');
end
$$;

-- pgTAP lives in `extensions`, as `supabase test db` installs it (tests only).
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pgtap') then
    create extension if not exists pgtap with schema extensions;
  end if;
end
$$;
