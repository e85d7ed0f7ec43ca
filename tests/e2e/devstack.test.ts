/**
 * The devstack reproduces the platform faithfully enough to test against:
 * JWT issuer + JWKS, the PostgREST stand-in (role, claims, RLS, errors), and the
 * Deno functions host (unchanged function modules, URL rewriting, error envelope).
 *
 * Probe objects (zz_devstack_*) are created in the e2e database through the admin
 * connection and dropped afterwards; nothing here is a migration.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { createUserToken } from "../../packages/devstack/src/jwt.ts";
import { adminSql, anonClient, closeAdminSql, newUser, serviceClient, status, type TestUser } from "./helpers.ts";

const run = promisify(execFile);

function rest(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  headers.set("apikey", status().ANON_KEY);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body) headers.set("content-type", "application/json");
  return fetch(`${status().REST_URL}${path}`, { ...init, headers });
}

function tamper(token: string, changes: Record<string, unknown>): string {
  const [header, payload, signature] = token.split(".");
  const claims = { ...JSON.parse(Buffer.from(payload!, "base64url").toString()), ...changes };
  return [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
}

describe("JWT issuer", () => {
  it("serves the public JWKS (ES256, kid, no private part)", async () => {
    const res = await fetch(status().JWKS_URL);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(keys[0]!.kid).toEqual(expect.any(String));
    expect(keys[0]).not.toHaveProperty("d");
  });

  it("issues user tokens with Supabase's claim set that verify against the JWKS", async () => {
    const user = await newUser();
    const { payload, protectedHeader } = await jwtVerify(user.token, createRemoteJWKSet(new URL(status().JWKS_URL)), {
      issuer: `${status().API_URL}/auth/v1`,
      audience: "authenticated",
    });
    expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "JWT" });
    expect(payload).toMatchObject({
      sub: user.id,
      role: "authenticated",
      aud: "authenticated",
      email: user.email,
      aal: "aal1",
      is_anonymous: false,
      app_metadata: { provider: "email" },
      user_metadata: {},
    });
    expect(payload.session_id).toEqual(expect.any(String));
    expect(payload.exp! - payload.iat!).toBe(3600);
    const [row] = await adminSql()`select email, aud, role, raw_app_meta_data from auth.users where id = ${user.id}`;
    expect(row).toMatchObject({ email: user.email, aud: "authenticated", role: "authenticated", raw_app_meta_data: { provider: "email" } });
  });

  it("mints anon and service_role API keys", async () => {
    const jwks = createRemoteJWKSet(new URL(status().JWKS_URL));
    for (const [key, role] of [[status().ANON_KEY, "anon"], [status().SERVICE_ROLE_KEY, "service_role"]] as const) {
      expect(decodeJwt(key).role).toBe(role);
      const { payload } = await jwtVerify(key, jwks);
      expect(payload.iss).toBe(`${status().API_URL}/auth/v1`);
      expect(payload.exp! - payload.iat!).toBeGreaterThan(5 * 365 * 24 * 3600);
    }
  });
});

describe("PostgREST stand-in", () => {
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    [alice, bob] = await Promise.all([newUser(), newUser()]);
    const sql = adminSql();
    await sql.begin(async (tx) => {
      await tx`
        create function public.zz_devstack_probe(p_text text, p_n integer default 7) returns jsonb
        language sql stable as $$
          select jsonb_build_object(
            'current_user', current_user,
            'uid', auth.uid(),
            'jwt_role', auth.jwt() ->> 'role',
            'method', current_setting('request.method', true),
            'path', current_setting('request.path', true),
            'probe_header', current_setting('request.headers', true)::jsonb ->> 'x-probe',
            'text', p_text,
            'n', p_n)
        $$`;
      await tx`create function public.zz_devstack_series(p_n integer) returns setof integer language sql as $$ select generate_series(1, p_n) $$`;
      await tx`create function public.zz_devstack_void() returns void language sql as $$ select $$`;
      await tx`create function public.zz_devstack_secret() returns text language sql as $$ select 'only for service_role'::text $$`;
      await tx`
        create function public.zz_devstack_fail(p_state text) returns void language plpgsql as $$
        begin
          raise exception using errcode = p_state, message = 'failed on purpose', detail = 'probe detail';
        end $$`;
      await tx`create sequence public.zz_devstack_seq`;
      await tx`grant usage on sequence public.zz_devstack_seq to authenticated`;
      await tx`create function public.zz_devstack_next_stable() returns bigint language plpgsql stable as $$
        begin return nextval('public.zz_devstack_seq'); end $$`;
      await tx`create function public.zz_devstack_next() returns bigint language plpgsql as $$
        begin return nextval('public.zz_devstack_seq'); end $$`;
      await tx`create function public.zz_devstack_teapot() returns json language plpgsql as $$
        begin
          perform set_config('response.status', '418', true);
          perform set_config('response.headers', '[{"X-Teapot": "short"}, {"X-Teapot": "stout"}]', true);
          return json_build_object('app', current_setting('application_name'));
        end $$`;
      await tx`revoke all on function public.zz_devstack_probe(text, integer), public.zz_devstack_series(integer),
        public.zz_devstack_void(), public.zz_devstack_secret(), public.zz_devstack_fail(text),
        public.zz_devstack_next_stable(), public.zz_devstack_next(), public.zz_devstack_teapot() from public`;
      await tx`grant execute on function public.zz_devstack_probe(text, integer), public.zz_devstack_series(integer),
        public.zz_devstack_void(), public.zz_devstack_fail(text), public.zz_devstack_next_stable(), public.zz_devstack_next(),
        public.zz_devstack_teapot() to anon, authenticated, service_role`;
      await tx`grant execute on function public.zz_devstack_secret() to service_role`;

      await tx`create table public.zz_devstack_notes (
        id integer primary key, owner uuid not null, body text, rank integer not null, pinned boolean not null default false)`;
      await tx`alter table public.zz_devstack_notes enable row level security`;
      await tx`create policy zz_devstack_notes_select_policy on public.zz_devstack_notes for select to authenticated
        using ((select auth.uid()) = owner)`;
      await tx`grant select on public.zz_devstack_notes to anon, authenticated, service_role`;
      await tx`insert into public.zz_devstack_notes values
        (1, ${alice.id}, 'a-one', 1, false), (2, ${alice.id}, 'a-two', 2, true), (3, ${alice.id}, 'a-three, with comma', 3, false),
        (4, ${bob.id}, 'b-one', 1, false)`;
    });
  });

  afterAll(async () => {
    await adminSql()`drop table if exists public.zz_devstack_notes`;
    await adminSql()`drop function if exists public.zz_devstack_probe, public.zz_devstack_series, public.zz_devstack_void,
      public.zz_devstack_secret, public.zz_devstack_fail, public.zz_devstack_next_stable, public.zz_devstack_next,
      public.zz_devstack_teapot`;
    await adminSql()`drop sequence if exists public.zz_devstack_seq`;
    await closeAdminSql();
  });

  it("runs an RPC as the JWT's role with PostgREST's request settings and named arguments", async () => {
    const res = await rest("/rpc/zz_devstack_probe", {
      method: "POST",
      token: alice.token,
      headers: { "X-Probe": "hello" },
      body: JSON.stringify({ p_text: "hi" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchboard-standin")).toBe("postgrest");
    expect(await res.json()).toEqual({
      current_user: "authenticated",
      uid: alice.id,
      jwt_role: "authenticated",
      method: "POST",
      path: "/rpc/zz_devstack_probe",
      probe_header: "hello",
      text: "hi",
      n: 7,
    });
  });

  it("works through supabase-js for anon, user and service_role", async () => {
    const asAnon = await anonClient().rpc("zz_devstack_probe", { p_text: "x", p_n: 2 });
    expect(asAnon.error).toBeNull();
    expect(asAnon.data).toMatchObject({ current_user: "anon", uid: null, jwt_role: "anon", n: 2 });

    const asBob = await bob.client.rpc("zz_devstack_probe", { p_text: "x" });
    expect(asBob.data).toMatchObject({ current_user: "authenticated", uid: bob.id });

    const asService = await serviceClient().rpc("zz_devstack_probe", { p_text: "x" });
    expect(asService.data).toMatchObject({ current_user: "service_role", jwt_role: "service_role" });
  });

  it("returns arrays for setof functions and 204 for void", async () => {
    expect((await alice.client.rpc("zz_devstack_series", { p_n: 3 })).data).toEqual([1, 2, 3]);
    const voidCall = await alice.client.rpc("zz_devstack_void");
    expect(voidCall).toMatchObject({ status: 204, data: null, error: null });
  });

  it("uses PostgREST's access modes: READ ONLY for stable functions, READ WRITE for volatile ones", async () => {
    const stable = await alice.client.rpc("zz_devstack_next_stable");
    expect(stable.status).toBe(405);
    expect(stable.error).toMatchObject({ code: "25006" });
    expect((await alice.client.rpc("zz_devstack_next")).data).toBe(1);
  });

  it("applies the impersonated role's settings and the function's response.status/headers", async () => {
    const db = new URL(status().DB_URL).pathname.slice(1);
    const sql = adminSql();
    await sql`alter role authenticated in database ${sql(db)} set application_name = 'zz_devstack_role_setting'`;
    await sql`notify pgrst, 'reload schema'`;
    try {
      // The stand-in's LISTEN connection clears its cache asynchronously.
      let res: Response, body: unknown;
      for (let attempt = 0; ; attempt++) {
        res = await rest("/rpc/zz_devstack_teapot", { method: "POST", token: alice.token, body: "{}" });
        body = await res.json();
        if ((body as { app?: string }).app === "zz_devstack_role_setting" || attempt === 40) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(res.status).toBe(418);
      expect(res.headers.get("x-teapot")).toBe("short, stout");
      expect(body).toEqual({ app: "zz_devstack_role_setting" });
    } finally {
      await sql`alter role authenticated in database ${sql(db)} reset application_name`;
      await sql`notify pgrst, 'reload schema'`;
    }
  });

  it("refuses tampered, expired and missing credentials with 401", async () => {
    const forged = await rest("/rpc/zz_devstack_probe", {
      method: "POST",
      token: tamper(alice.token, { role: "service_role" }),
      body: JSON.stringify({ p_text: "x" }),
    });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ code: "PGRST301" });

    const expired = await createUserToken(alice.id, alice.email, { expiresInSeconds: -60 });
    const late = await rest("/rpc/zz_devstack_probe", { method: "POST", token: expired, body: JSON.stringify({ p_text: "x" }) });
    expect(late.status).toBe(401);
    expect(await late.json()).toMatchObject({ code: "PGRST301", message: "JWT expired" });

    const bare = await fetch(`${status().REST_URL}/rpc/zz_devstack_probe`, { method: "POST", body: "{}" });
    expect(bare.status).toBe(401);
  });

  it("maps privileges to 401 for anon and 403 for users, as PostgREST does", async () => {
    expect((await anonClient().rpc("zz_devstack_secret")).error).toMatchObject({ code: "42501" });
    expect((await anonClient().rpc("zz_devstack_secret")).status).toBe(401);
    expect((await alice.client.rpc("zz_devstack_secret")).status).toBe(403);
    expect((await serviceClient().rpc("zz_devstack_secret")).data).toBe("only for service_role");
  });

  it("maps Postgres errors to PostgREST's error JSON and statuses", async () => {
    const cases: [string, number][] = [["P0001", 400], ["23505", 409], ["23503", 409], ["22023", 400], ["PT402", 402], ["42501", 403]];
    for (const [state, httpStatus] of cases) {
      const { status: got, error } = await alice.client.rpc("zz_devstack_fail", { p_state: state });
      expect({ state, got }).toEqual({ state, got: httpStatus });
      expect(error).toMatchObject({ code: state, message: "failed on purpose", details: "probe detail", hint: null });
    }
    const internal = await alice.client.rpc("zz_devstack_fail", { p_state: "XX000" });
    expect(internal.status).toBe(500);
    expect(internal.error?.message).not.toContain("failed on purpose");
  });

  it("answers 404 PGRST202 for unknown functions or argument names", async () => {
    const unknown = await alice.client.rpc("zz_devstack_no_such_function", { a: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.error).toMatchObject({ code: "PGRST202" });
    const wrongArgs = await alice.client.rpc("zz_devstack_probe", { p_nope: "x" });
    expect(wrongArgs.error).toMatchObject({ code: "PGRST202" });
  });

  it("reads tables under the caller's role and claims, so RLS applies", async () => {
    const mine = await alice.client.from("zz_devstack_notes").select("id, body").order("rank", { ascending: false }).limit(2);
    expect(mine.error).toBeNull();
    expect(mine.data).toEqual([{ id: 3, body: "a-three, with comma" }, { id: 2, body: "a-two" }]);

    expect((await bob.client.from("zz_devstack_notes").select()).data).toEqual([{ id: 4, owner: bob.id, body: "b-one", rank: 1, pinned: false }]);
    expect((await anonClient().from("zz_devstack_notes").select("id")).data).toEqual([]);
    expect((await serviceClient().from("zz_devstack_notes").select("id").order("id")).data).toHaveLength(4);
  });

  it("supports eq/neq/gt/gte/lt/lte/is/in filters, offset, single and exact count", async () => {
    const notes = () => alice.client.from("zz_devstack_notes");
    const ids = (rows: { id: number }[] | null) => rows?.map((r) => r.id);
    expect(ids((await notes().select("id").eq("id", 2)).data)).toEqual([2]);
    expect(ids((await notes().select("id").neq("id", 2).order("id")).data)).toEqual([1, 3]);
    expect(ids((await notes().select("id").gt("rank", 1).lte("rank", 3).order("id")).data)).toEqual([2, 3]);
    expect(ids((await notes().select("id").gte("rank", 2).lt("rank", 3)).data)).toEqual([2]);
    expect(ids((await notes().select("id").in("body", ["a-one", "a-three, with comma"]).order("id")).data)).toEqual([1, 3]);
    expect(ids((await notes().select("id").is("body", null)).data)).toEqual([]);
    // Same statement twice: values must keep their meaning once the driver knows the column types.
    for (let i = 0; i < 2; i++) expect(ids((await notes().select("id").eq("pinned", true)).data)).toEqual([2]);
    expect(ids((await notes().select("id").order("id").range(1, 2)).data)).toEqual([2, 3]);

    expect((await notes().select("body").eq("id", 1).single()).data).toEqual({ body: "a-one" });
    const notSingle = await notes().select("id").single();
    expect(notSingle.status).toBe(406);
    expect(notSingle.error).toMatchObject({ code: "PGRST116" });

    const counted = await notes().select("*", { count: "exact", head: true });
    expect(counted).toMatchObject({ count: 3, error: null });
    const countedPage = await notes().select("id", { count: "exact" }).gte("rank", 2).order("id").limit(1);
    expect(countedPage).toMatchObject({ count: 2, data: [{ id: 2 }], error: null });
  });

  it("reports unknown tables/columns like PostgREST and refuses what it does not implement with 501", async () => {
    const noTable = await alice.client.from("zz_devstack_missing").select();
    expect(noTable.status).toBe(404);
    expect(noTable.error).toMatchObject({ code: "PGRST205" });

    const noColumn = await alice.client.from("zz_devstack_notes").select("nope");
    expect(noColumn.status).toBe(400);
    expect(noColumn.error).toMatchObject({ code: "42703" });

    // Writes are Postgres' to allow: the probe table grants authenticated no INSERT.
    const write = await alice.client.from("zz_devstack_notes").insert({ id: 9, owner: alice.id, body: "x", rank: 1 });
    expect(write.status).toBe(403);
    expect(write.error).toMatchObject({ code: "42501", message: "permission denied for table zz_devstack_notes" });

    const embed = await alice.client.from("zz_devstack_notes").select("id, owner(*)");
    expect(embed.status).toBe(501);
    expect(embed.error?.message).toMatch(/local PostgREST stand-in/);
    const upsert = await alice.client.from("zz_devstack_notes").upsert({ id: 1, owner: alice.id, body: "x", rank: 1 });
    expect(upsert.status).toBe(501);
    const cast = await alice.client.from("zz_devstack_notes").select("id::text");
    expect(cast.status).toBe(501);
  });
});

describe("functions host", () => {
  const fn = (path: string, init?: RequestInit) => fetch(`${status().FUNCTIONS_URL}/${path}`, init);

  it("serves an unchanged function module with the hosted URL shape and env", async () => {
    const res = await fn("echo/a/b?x=1&y=2", { method: "PUT", body: "payload" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      method: "PUT",
      pathname: "/echo/a/b",
      search: "?x=1&y=2",
      body: "payload",
      env: {
        SUPABASE_URL: true,
        SUPABASE_DB_URL: true,
        SUPABASE_ANON_KEY: true,
        SUPABASE_SERVICE_ROLE_KEY: true,
        SUPABASE_JWKS: true,
        SWITCHBOARD_ALLOW_PRIVATE_NETWORKS: true,
        SWITCHBOARD_FUNCTIONS_URL: true,
      },
      allowPrivate: "true",
      functionsUrl: status().FUNCTIONS_URL,
    });
  });

  it("is reachable with supabase-js functions.invoke, and functions can verify JWTs and reach the database", async () => {
    const user = await newUser();
    const echoed = await user.client.functions.invoke("echo", { body: { hello: "world" } });
    expect(echoed.error).toBeNull();
    expect(echoed.data).toMatchObject({ method: "POST", pathname: "/echo", body: '{"hello":"world"}' });

    const whoami = await fn("echo/whoami", { headers: { authorization: `Bearer ${user.token}` } });
    expect(await whoami.json()).toEqual({ sub: user.id, role: "authenticated", db: new URL(status().DB_URL).pathname.slice(1) });
  });

  it("leaves CORS preflight to the function", async () => {
    const res = await fn("echo", { method: "OPTIONS", headers: { origin: "http://example.test", "access-control-request-method": "POST" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-echo-preflight")).toBe("1");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("turns a throw or a missing Response into a 500 envelope without internals", async () => {
    for (const path of ["echo/throw", "echo/no-response"]) {
      const res = await fn(path);
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
      expect(body).toEqual({ error: { code: "internal_error", message: expect.any(String), details: null } });
      expect(JSON.stringify(body)).not.toMatch(/boom|at |index\.ts/);
    }
  });

  it("answers 404 not_found for unknown functions and underscore folders", async () => {
    for (const path of ["no-such-function", "_shared", ""]) {
      const res = await fn(path);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: { code: "not_found", message: expect.any(String), details: null } });
    }
  });

  it("reports health with the loaded functions", async () => {
    const res = await fetch(`${status().API_URL}/_devstack/health`);
    expect(await res.json()).toMatchObject({ status: "ok", functions: expect.arrayContaining(["echo"]) });
  });
});

describe("cli status", () => {
  const tsx = join(REPO_ROOT, "node_modules/.bin/tsx");
  const cli = join(REPO_ROOT, "packages/devstack/src/cli.ts");

  it("prints the running stack as one flat JSON object", async () => {
    const { stdout } = await run(tsx, [cli, "status"], {
      env: { ...process.env, SWITCHBOARD_STATE_DIR: inject("devstackStateDir") },
    });
    const printed = JSON.parse(stdout) as Record<string, unknown>;
    expect(printed).toEqual(status());
    expect(Object.values(printed).every((v) => typeof v === "string")).toBe(true);
  });

  it("exits 1 with a clear message when no stack is running", async () => {
    const failed = await run(tsx, [cli, "status"], {
      env: { ...process.env, SWITCHBOARD_STATE_DIR: join(REPO_ROOT, ".devstack/e2e-nothing-here") },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringMatching(/not running/) });
  });
});
