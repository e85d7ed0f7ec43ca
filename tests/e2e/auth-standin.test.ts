/**
 * The devstack's Auth stand-in through real supabase-js, as an app uses Supabase Auth
 * with email and password: sign-up (auto-confirmed) and sign-in; Supabase's errors as
 * supabase-js reports them (exact message, status and code); sessions whose access tokens
 * verify against the JWKS and act as the user under RLS and in functions; refresh-token
 * rotation and reuse detection; sign-out scopes; password change; the admin create-user
 * call, service role only; and the gateway's `apikey` rule with legacy and new keys.
 */
import { randomUUID } from "node:crypto";
import { AuthApiError, createClient, type Session, type SupabaseClient } from "@supabase/supabase-js";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { DEMO_USER_EMAIL, DEMO_USER_ID, DEMO_USER_PASSWORD } from "../../packages/devstack/src/demo.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

afterAll(closeAdminSql);

const PASSWORD = "correct horse battery";

/** supabase-js as an app creates it (Node 20 has no global WebSocket: one is passed). */
function client(key = status().ANON_KEY): SupabaseClient {
  return createClient(status().API_URL, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as never },
  });
}

const newEmail = () => `auth-${randomUUID()}@example.test`;

/** What a caller sees of an auth error. */
function seen(error: unknown): Record<string, unknown> | null {
  if (!error) return null;
  const e = error as { name: string; message: string; status?: number; code?: string };
  return { name: e.name, message: e.message, status: e.status, code: e.code };
}

/** A fresh user signed up through the stand-in, with a client signed in as them. */
async function signedUp(key?: string): Promise<{ supabase: SupabaseClient; email: string; session: Session }> {
  const supabase = client(key);
  const email = newEmail();
  const { data, error } = await supabase.auth.signUp({ email, password: PASSWORD });
  if (error || !data.session) throw new Error(`sign-up failed: ${error?.message}`);
  return { supabase, email, session: data.session };
}

/** A raw request to /auth/v1, as the gateway sees it. */
function auth(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  return fetch(`${status().API_URL}/auth/v1${path}`, init);
}

describe("sign-up and sign-in with email and password", () => {
  it("signUp answers a session at once (auto-confirmed); signInWithPassword signs in again", async () => {
    const supabase = client();
    const email = newEmail();
    const { data, error } = await supabase.auth.signUp({ email, password: PASSWORD, options: { data: { name: "Ada" } } });
    expect(error).toBeNull();
    const user = data.user!;
    expect(user).toMatchObject({
      email, aud: "authenticated", role: "authenticated", phone: "", is_anonymous: false,
      app_metadata: { provider: "email", providers: ["email"] },
      user_metadata: { name: "Ada", email_verified: true },
    });
    expect(user.email_confirmed_at).toEqual(expect.any(String));
    expect(user.identities).toEqual([expect.objectContaining({
      id: user.id, user_id: user.id, provider: "email", email,
      identity_data: { sub: user.id, email, email_verified: false, phone_verified: false, name: "Ada" },
    })]);
    const session = data.session!;
    expect(session).toMatchObject({ token_type: "bearer", expires_in: 3600 });
    expect(session.refresh_token).toMatch(/^[a-z0-9]{12}$/);
    expect(Math.abs(session.expires_at! - (Math.floor(Date.now() / 1000) + 3600))).toBeLessThan(10);

    const again = client();
    const signedIn = await again.auth.signInWithPassword({ email, password: PASSWORD });
    expect(signedIn.error).toBeNull();
    expect(signedIn.data.user!.id).toBe(user.id);
    expect(signedIn.data.user!.last_sign_in_at).toEqual(expect.any(String));
    // A new session each time.
    expect(decodeJwt(signedIn.data.session!.access_token).session_id).not.toBe(decodeJwt(session.access_token).session_id);

    // Stored as Supabase Auth stores it: a bcrypt hash, never the password.
    const [row] = await adminSql()`select encrypted_password from auth.users where id = ${user.id}`;
    expect(row!.encrypted_password).toMatch(/^\$2a\$10\$.{53}$/);
  });

  it("a wrong password is AuthApiError 'Invalid login credentials', 400, invalid_credentials", async () => {
    const { email } = await signedUp();
    const { data, error } = await client().auth.signInWithPassword({ email, password: "not the password" });
    expect(error).toBeInstanceOf(AuthApiError);
    expect(seen(error)).toEqual({ name: "AuthApiError", message: "Invalid login credentials", status: 400, code: "invalid_credentials" });
    expect(data.session).toBeNull();
  });

  it("an unknown e-mail address gets exactly the same error (no user enumeration)", async () => {
    const { error } = await client().auth.signInWithPassword({ email: newEmail(), password: PASSWORD });
    expect(error).toBeInstanceOf(AuthApiError);
    expect(seen(error)).toEqual({ name: "AuthApiError", message: "Invalid login credentials", status: 400, code: "invalid_credentials" });
  });

  it("a password under 6 characters is AuthWeakPasswordError, 422, weak_password, reason length; no user is created", async () => {
    const email = newEmail();
    const { data, error } = await client().auth.signUp({ email, password: "12345" });
    expect(seen(error)).toEqual({ name: "AuthWeakPasswordError", message: "Password should be at least 6 characters.", status: 422, code: "weak_password" });
    expect((error as unknown as { reasons: string[] }).reasons).toEqual(["length"]);
    expect(data.session).toBeNull();
    expect(await adminSql()`select 1 from auth.users where email = ${email}`).toHaveLength(0);
  });

  it("signing up again is AuthApiError 'User already registered', 422, user_already_exists (any letter case)", async () => {
    const { email } = await signedUp();
    for (const address of [email, email.toUpperCase()]) {
      const { data, error } = await client().auth.signUp({ email: address, password: "another password" });
      expect(error).toBeInstanceOf(AuthApiError);
      expect(seen(error)).toEqual({ name: "AuthApiError", message: "User already registered", status: 422, code: "user_already_exists" });
      expect(data.session).toBeNull();
    }
    // The first password still signs in; the second never took.
    expect((await client().auth.signInWithPassword({ email, password: PASSWORD })).error).toBeNull();
    expect(seen((await client().auth.signInWithPassword({ email, password: "another password" })).error)?.code).toBe("invalid_credentials");
  });

  it("a malformed e-mail address is 400 validation_failed", async () => {
    const { error } = await client().auth.signUp({ email: "not-an-address", password: PASSWORD });
    expect(seen(error)).toEqual({ name: "AuthApiError", message: "Unable to validate email address: invalid format", status: 400, code: "validation_failed" });
  });

  it("the demo owner signs in with DEMO_USER_EMAIL and DEMO_USER_PASSWORD (supabase/seed.sql)", async () => {
    const { data, error } = await client(status().PUBLISHABLE_KEY).auth.signInWithPassword({ email: DEMO_USER_EMAIL, password: DEMO_USER_PASSWORD });
    expect(error).toBeNull();
    expect(data.user!.id).toBe(DEMO_USER_ID);
  });
});

describe("sessions", () => {
  it("issues ES256 access tokens that verify against the JWKS, with exactly Supabase's claims", async () => {
    const { supabase, email, session } = await signedUp();
    const { payload, protectedHeader } = await jwtVerify(session.access_token, createRemoteJWKSet(new URL(status().JWKS_URL)), {
      issuer: `${status().API_URL}/auth/v1`, audience: "authenticated", algorithms: ["ES256"],
    });
    const [key] = ((await (await fetch(status().JWKS_URL)).json()) as { keys: { kid: string }[] }).keys;
    expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "JWT", kid: key!.kid });
    expect(Object.keys(payload).sort()).toEqual([
      "aal", "amr", "app_metadata", "aud", "email", "exp", "iat", "is_anonymous", "iss", "phone", "role", "session_id", "sub", "user_metadata",
    ]);
    const [row] = await adminSql()`select id, created_at from auth.sessions where id = ${payload.session_id as string}`;
    expect(payload).toMatchObject({
      sub: session.user.id, aud: "authenticated", role: "authenticated", email, phone: "", aal: "aal1", is_anonymous: false,
      app_metadata: { provider: "email", providers: ["email"] }, user_metadata: { email_verified: true },
      amr: [{ method: "password", timestamp: Math.floor(row!.created_at.getTime() / 1000) }],
    });
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(payload.exp).toBe(session.expires_at);
    // supabase-js verifies it the same way (getClaims fetches the JWKS).
    const claims = await supabase.auth.getClaims();
    expect(claims.error).toBeNull();
    expect(claims.data?.claims.sub).toBe(session.user.id);
  });

  it("getUser answers the signed-in user, by the session or by an access token", async () => {
    const { supabase, email, session } = await signedUp();
    const mine = await supabase.auth.getUser();
    expect(mine.error).toBeNull();
    expect(mine.data.user).toMatchObject({ id: session.user.id, email, aud: "authenticated", identities: [expect.objectContaining({ provider: "email" })] });
    const byToken = await client().auth.getUser(session.access_token);
    expect(byToken.data.user?.id).toBe(session.user.id);

    const forged = `${session.access_token.slice(0, -4)}AAAA`;
    const refused = await client().auth.getUser(forged);
    expect(seen(refused.error)).toMatchObject({ name: "AuthApiError", status: 403, code: "bad_jwt" });
  });

  it("the access token acts as the user under RLS (create_agent) and in a function (agent-tools)", async () => {
    const [alice, bob] = await Promise.all([signedUp(), signedUp()]);
    const created = await alice.supabase.rpc("create_agent", { p_name: "Signed-in agent" });
    expect(created.error).toBeNull();
    const agentId = (created.data as { id: string }).id;
    const mine = await alice.supabase.from("agents").select("id,name,user_id");
    expect(mine.data).toEqual([{ id: agentId, name: "Signed-in agent", user_id: alice.session.user.id }]);
    // RLS: another signed-in user does not see it; without a session the RPC is refused.
    expect((await bob.supabase.from("agents").select("id")).data).toEqual([]);
    expect((await client().rpc("create_agent", { p_name: "anonymous" })).status).toBe(401);

    const listed = await alice.supabase.functions.invoke(`agent-tools?format=openai&agent_id=${agentId}`, { method: "GET" });
    expect(listed.error).toBeNull();
    expect(listed.data).toEqual({ format: "openai", tools: [] });
    // The other user's token may not act as alice's agent.
    const foreign = await fetch(`${status().FUNCTIONS_URL}/agent-tools?format=openai&agent_id=${agentId}`, {
      headers: { Authorization: `Bearer ${bob.session.access_token}`, apikey: status().ANON_KEY },
    });
    expect(foreign.status).not.toBe(200);
  });

  it("refreshSession rotates the refresh token; a token used too late is refused as already used", async () => {
    const { supabase, session: first } = await signedUp();
    const sessionId = decodeJwt(first.access_token).session_id;

    const refreshed = await supabase.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    const second = refreshed.data.session!;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect(decodeJwt(second.access_token).session_id).toBe(sessionId);

    // A client that lost the answer may repeat the refresh: it gets the current token back.
    const repeated = await client().auth.refreshSession({ refresh_token: first.refresh_token });
    expect(repeated.error).toBeNull();
    expect(repeated.data.session!.refresh_token).toBe(second.refresh_token);

    const third = (await client().auth.refreshSession({ refresh_token: second.refresh_token })).data.session!;
    expect(third.refresh_token).not.toBe(second.refresh_token);

    // Past the 10 s reuse interval (config.toml refresh_token_reuse_interval) the first
    // token is refused. Its revocation is moved back in time rather than waited for.
    await adminSql()`update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds'
                     where session_id = ${sessionId as string} and revoked`;
    const reused = await client().auth.refreshSession({ refresh_token: first.refresh_token });
    expect(reused.error).toBeInstanceOf(AuthApiError);
    expect(seen(reused.error)).toEqual({ name: "AuthApiError", message: "Invalid Refresh Token: Already Used", status: 400, code: "refresh_token_already_used" });
    expect(reused.data.session).toBeNull();

    const unknown = await client().auth.refreshSession({ refresh_token: "nosuchtoken0" });
    expect(seen(unknown.error)).toEqual({ name: "AuthApiError", message: "Invalid Refresh Token: Refresh Token Not Found", status: 400, code: "refresh_token_not_found" });
  });

  it("signOut revokes refresh tokens: local ends this session, others the rest, global all of them", async () => {
    const { email } = await signedUp();
    const signIn = async () => {
      const supabase = client();
      const { data, error } = await supabase.auth.signInWithPassword({ email, password: PASSWORD });
      if (error) throw error;
      return { supabase, session: data.session! };
    };
    const refreshes = async (refreshToken: string) => (await client().auth.refreshSession({ refresh_token: refreshToken })).error === null;
    const [a, b, c] = [await signIn(), await signIn(), await signIn()];

    expect((await a.supabase.auth.signOut({ scope: "local" })).error).toBeNull();
    expect(await refreshes(a.session.refresh_token)).toBe(false);
    // Its access token no longer finds its session: supabase-js reports the session missing.
    const gone = await client().auth.getUser(a.session.access_token);
    expect(gone.error?.name).toBe("AuthSessionMissingError");
    expect(await refreshes(b.session.refresh_token)).toBe(true);

    const b2 = (await client().auth.refreshSession({ refresh_token: b.session.refresh_token })).data.session!;
    const bClient = client();
    await bClient.auth.setSession({ access_token: b2.access_token, refresh_token: b2.refresh_token });
    expect((await bClient.auth.signOut({ scope: "others" })).error).toBeNull();
    expect(await refreshes(c.session.refresh_token)).toBe(false);
    const stillB = (await client().auth.getUser(b2.access_token)).data.user;
    expect(stillB?.email).toBe(email);

    const d = await signIn();
    expect((await d.supabase.auth.signOut()).error).toBeNull();
    const refused = await client().auth.refreshSession({ refresh_token: d.session.refresh_token });
    expect(seen(refused.error)).toEqual({ name: "AuthApiError", message: "Invalid Refresh Token: Refresh Token Not Found", status: 400, code: "refresh_token_not_found" });
    // Global: b's session went too.
    expect((await client().auth.getUser(b2.access_token)).error?.name).toBe("AuthSessionMissingError");
    expect(await adminSql()`select 1 from auth.sessions s join auth.users u on u.id = s.user_id where u.email = ${email}`).toHaveLength(0);
  });

  it("updateUser changes the password (other sessions end) and the user metadata", async () => {
    const { supabase, email, session } = await signedUp();
    const other = client();
    const otherSession = (await other.auth.signInWithPassword({ email, password: PASSWORD })).data.session!;

    const same = await supabase.auth.updateUser({ password: PASSWORD });
    expect(seen(same.error)).toEqual({ name: "AuthApiError", message: "New password should be different from the old password.", status: 422, code: "same_password" });
    const weak = await supabase.auth.updateUser({ password: "123" });
    expect(seen(weak.error)).toMatchObject({ name: "AuthWeakPasswordError", status: 422, code: "weak_password" });

    const changed = await supabase.auth.updateUser({ password: "a brand new password", data: { name: "Grace" } });
    expect(changed.error).toBeNull();
    expect(changed.data.user?.user_metadata).toMatchObject({ name: "Grace", email_verified: true });
    expect(seen((await client().auth.signInWithPassword({ email, password: PASSWORD })).error)?.code).toBe("invalid_credentials");
    expect((await client().auth.signInWithPassword({ email, password: "a brand new password" })).error).toBeNull();
    // This session lives on; the other one ended.
    expect((await client().auth.getUser(session.access_token)).error).toBeNull();
    expect((await client().auth.refreshSession({ refresh_token: otherSession.refresh_token })).error?.code).toBe("refresh_token_not_found");

    const emailChange = await supabase.auth.updateUser({ email: newEmail() });
    expect(emailChange.error?.status).toBe(501);
  });
});

describe("admin createUser: the service role only", () => {
  it("with the secret key (sb_secret_…) or the legacy service_role key it creates a user who can sign in", async () => {
    for (const key of [status().SECRET_KEY, status().SERVICE_ROLE_KEY]) {
      const email = newEmail();
      const { data, error } = await client(key).auth.admin.createUser({
        email, password: PASSWORD, email_confirm: true, user_metadata: { name: "Made by admin" },
      });
      expect(error).toBeNull();
      expect(data.user).toMatchObject({ email, user_metadata: { name: "Made by admin", email_verified: true }, app_metadata: { provider: "email" } });
      const signedIn = await client().auth.signInWithPassword({ email, password: PASSWORD });
      expect(signedIn.error).toBeNull();
      expect(signedIn.data.user!.id).toBe(data.user!.id);
    }
  });

  it("an unconfirmed user cannot sign in; a taken address is 422 email_exists", async () => {
    const admin = client(status().SECRET_KEY).auth.admin;
    const email = newEmail();
    expect((await admin.createUser({ email, password: PASSWORD })).error).toBeNull();
    const { error } = await client().auth.signInWithPassword({ email, password: PASSWORD });
    expect(seen(error)).toEqual({ name: "AuthApiError", message: "Email not confirmed", status: 400, code: "email_not_confirmed" });
    const again = await admin.createUser({ email, password: PASSWORD });
    expect(seen(again.error)).toEqual({
      name: "AuthApiError", message: "A user with this email address has already been registered", status: 422, code: "email_exists",
    });
  });

  it("the anon key, the publishable key and a user's token are refused: 403 not_admin, nothing created", async () => {
    const { session } = await signedUp();
    const asUser = createClient(status().API_URL, status().ANON_KEY, {
      auth: { persistSession: false, autoRefreshToken: false },
      global: { headers: { Authorization: `Bearer ${session.access_token}` } },
      realtime: { transport: WebSocket as never },
    });
    for (const admin of [client(status().ANON_KEY).auth.admin, client(status().PUBLISHABLE_KEY).auth.admin, asUser.auth.admin]) {
      const email = newEmail();
      const { data, error } = await admin.createUser({ email, password: PASSWORD, email_confirm: true });
      expect(error).toBeInstanceOf(AuthApiError);
      expect(seen(error)).toEqual({ name: "AuthApiError", message: "User not allowed", status: 403, code: "not_admin" });
      expect(data.user).toBeNull();
      expect(await adminSql()`select 1 from auth.users where email = ${email}`).toHaveLength(0);
    }
  });
});

describe("API keys and the wire format", () => {
  it("the publishable key (sb_publishable_…) signs up and in, and its session works against /rest/v1", async () => {
    const { supabase, email } = await signedUp(status().PUBLISHABLE_KEY);
    const fresh = client(status().PUBLISHABLE_KEY);
    const { data, error } = await fresh.auth.signInWithPassword({ email, password: PASSWORD });
    expect(error).toBeNull();
    const created = await fresh.rpc("create_agent", { p_name: "Publishable agent" });
    expect(created.error).toBeNull();
    expect((created.data as { user_id: string }).user_id).toBe(data.user!.id);
    expect((await supabase.from("agents").select("name")).data).toEqual([{ name: "Publishable agent" }]);
  });

  it("wants a key of this project in `apikey`, as the gateway does", async () => {
    const body = JSON.stringify({ email: newEmail(), password: PASSWORD });
    const headers = { "Content-Type": "application/json" };
    const none = await auth("/token?grant_type=password", { method: "POST", headers, body });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ message: "No API key found in request", hint: "No `apikey` request header or url param was found." });
    expect(none.headers.get("x-switchboard-standin")).toBe("auth");
    for (const apikey of ["sb_publishable_not-this-project", "not a key", status().ANON_KEY.slice(0, -3) + "abc"]) {
      const wrong = await auth("/token?grant_type=password", { method: "POST", headers: { ...headers, apikey }, body });
      expect(wrong.status, apikey).toBe(401);
      expect(((await wrong.json()) as { message: string }).message).toBe("Invalid API key");
    }
    const ok = await auth("/token?grant_type=password", { method: "POST", headers: { ...headers, apikey: status().ANON_KEY }, body });
    expect(ok.status).toBe(400);
  });

  it("errors have GoTrue's shape: {code, message} with X-Supabase-Api-Version, else the legacy {code, error_code, msg}", async () => {
    const body = JSON.stringify({ email: newEmail(), password: PASSWORD });
    const headers = { "Content-Type": "application/json", apikey: status().PUBLISHABLE_KEY };
    const current = await auth("/token?grant_type=password", { method: "POST", headers: { ...headers, "X-Supabase-Api-Version": "2024-01-01" }, body });
    expect(current.status).toBe(400);
    expect(current.headers.get("x-supabase-api-version")).toBe("2024-01-01");
    expect(current.headers.get("x-sb-error-code")).toBe("invalid_credentials");
    expect(current.headers.get("x-switchboard-standin")).toBe("auth");
    // A browser's supabase-js can read the version header, so it takes the code from the body.
    expect(current.headers.get("access-control-allow-origin")).toBe("*");
    expect(current.headers.get("access-control-expose-headers")).toContain("x-supabase-api-version");
    expect(await current.json()).toEqual({ code: "invalid_credentials", message: "Invalid login credentials" });

    const legacy = await auth("/token?grant_type=password", { method: "POST", headers, body });
    expect(legacy.headers.get("x-supabase-api-version")).toBeNull();
    expect(legacy.headers.get("x-sb-error-code")).toBe("invalid_credentials");
    expect(await legacy.json()).toEqual({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" });

    const grant = await auth("/token?grant_type=nonsense", { method: "POST", headers, body });
    expect(await grant.json()).toEqual({ code: 400, error_code: "invalid_credentials", msg: "unsupported_grant_type" });
  });

  it("everything else under /auth/v1 answers 501 with a message saying what the stand-in serves", async () => {
    const headers = { "Content-Type": "application/json", apikey: status().ANON_KEY, "X-Supabase-Api-Version": "2024-01-01" };
    for (const [method, path] of [["POST", "/otp"], ["POST", "/recover"], ["GET", "/settings"], ["GET", "/authorize?provider=github"], ["POST", "/factors"], ["GET", "/admin/users"]] as const) {
      const res = await auth(path, { method, headers, ...(method === "POST" ? { body: "{}" } : {}) });
      expect(res.status, `${method} ${path}`).toBe(501);
      expect(res.headers.get("x-switchboard-standin")).toBe("auth");
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("not_implemented");
      expect(body.message).toContain("not implemented by the local Supabase Auth stand-in");
    }
    // The JWKS needs no key.
    const jwks = await fetch(status().JWKS_URL);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get("x-switchboard-standin")).toBe("auth");
  });
});

describe("a browser's preflight", () => {
  let res: Response;
  beforeAll(async () => {
    res = await auth("/user", {
      method: "OPTIONS",
      headers: { Origin: "http://localhost:3000", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "apikey, authorization, x-supabase-api-version" },
    });
  });

  it("allows the methods and headers supabase-js sends", () => {
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-methods")).toContain("PUT");
    expect(res.headers.get("access-control-allow-headers")).toContain("x-supabase-api-version");
  });
});
