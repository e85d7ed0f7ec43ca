-- Local development only: the demo user. Connections, agents, grants and keys are
-- created by the demo (`npm start`) through the real RPCs, so they exercise Vault.
insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-4000-8000-00000000d3e0', 'authenticated', 'authenticated', 'demo@switchboard.local', now(),
        '{"provider": "email", "providers": ["email"]}', '{"name": "Demo User"}', now(), now())
on conflict (id) do nothing;
