-- Local development only: the demo users. Each gets a personal workspace (the trigger
-- on auth.users). The team, its connections, the member's agent, grants and keys are
-- created by the demo (`npm start`) through the real RPCs, so they exercise Vault.
--   demo@switchboard.local     the owner of the demo team; password "switchboard-demo"
--                              (a bcrypt hash, as Supabase Auth stores it; DEMO_USER_PASSWORD)
--   member@switchboard.local   the member the owner invites (the demo accepts for them)
insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-4000-8000-00000000d3e0', 'authenticated', 'authenticated', 'demo@switchboard.local',
        extensions.crypt('switchboard-demo', extensions.gen_salt('bf')), now(),
        '{"provider": "email", "providers": ["email"]}', '{"name": "Demo User"}', now(), now()),
       ('00000000-0000-4000-8000-00000000d3e1', 'authenticated', 'authenticated', 'member@switchboard.local', null, now(),
        '{"provider": "email", "providers": ["email"]}', '{"name": "Demo Member"}', now(), now())
on conflict (id) do nothing;
