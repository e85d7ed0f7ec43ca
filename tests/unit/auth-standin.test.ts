/**
 * The Auth stand-in without a stack: the access tokens it issues verify against the
 * devstack issuer's JWKS with Supabase's claims, and the settings it applies are the ones
 * supabase/config.toml declares (so the stand-in cannot drift from the project's config).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_SETTINGS, issueAccessToken } from "../../packages/devstack/src/auth-standin.ts";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { createJwtIssuer, verifyToken, type JwtIssuer } from "../../packages/devstack/src/jwt.ts";

const API_URL = "http://127.0.0.1:54321";

describe("access tokens of the Auth stand-in", () => {
  let stateDir: string;
  let issuer: JwtIssuer;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "auth-standin-"));
    issuer = await createJwtIssuer({ stateDir, apiUrl: API_URL });
  });
  afterAll(() => rm(stateDir, { recursive: true, force: true }));

  const user = {
    id: "6f0c2b1e-3d4a-4b5c-8d9e-0f1a2b3c4d5e",
    email: "ada@example.test",
    phone: null,
    raw_app_meta_data: { provider: "email", providers: ["email"] },
    raw_user_meta_data: { name: "Ada", email_verified: true },
    is_anonymous: false,
  };
  const session = { id: "0b9d8c7e-6f5a-4e3d-9c2b-1a0f9e8d7c6b", created_at: new Date("2026-11-28T06:00:00Z") };

  it("verify against the issuer's JWKS (ES256, its kid) with iss <API_URL>/auth/v1 and aud authenticated", async () => {
    const { token, expiresAt } = await issueAccessToken(issuer, user, session);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(issuer.jwks), {
      issuer: `${API_URL}/auth/v1`, audience: "authenticated", algorithms: ["ES256"],
    });
    expect(protectedHeader).toEqual({ alg: "ES256", kid: issuer.jwks.keys[0]!.kid, typ: "JWT" });
    expect(payload.exp).toBe(expiresAt);
    expect(payload.exp! - payload.iat!).toBe(AUTH_SETTINGS.jwtExpiry);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    // The devstack's own verifier (the PostgREST stand-in's) accepts it too.
    expect((await verifyToken(token, { issuer })).sub).toBe(user.id);
  });

  it("carry exactly the claims Supabase Auth puts in a user's access token", async () => {
    const { token } = await issueAccessToken(issuer, user, session);
    const { payload } = await jwtVerify(token, createLocalJWKSet(issuer.jwks));
    const { iat: _iat, exp: _exp, ...rest } = payload;
    expect(rest).toEqual({
      iss: `${API_URL}/auth/v1`,
      sub: user.id,
      aud: "authenticated",
      role: "authenticated",
      email: "ada@example.test",
      phone: "",
      app_metadata: { provider: "email", providers: ["email"] },
      user_metadata: { name: "Ada", email_verified: true },
      aal: "aal1",
      // The sign-in that started the session, not the moment the token was issued.
      amr: [{ method: "password", timestamp: Date.parse("2026-11-28T06:00:00Z") / 1000 }],
      session_id: session.id,
      is_anonymous: false,
    });
  });

  it("are refused by a JWKS of another key", async () => {
    const otherDir = await mkdtemp(join(tmpdir(), "auth-standin-other-"));
    try {
      const other = await createJwtIssuer({ stateDir: otherDir, apiUrl: API_URL });
      const { token } = await issueAccessToken(issuer, user, session);
      await expect(jwtVerify(token, createLocalJWKSet(other.jwks))).rejects.toThrow();
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});

describe("settings of the Auth stand-in", () => {
  /** `key = value` lines of one [section] of a TOML file (enough for config.toml's scalars). */
  function section(toml: string, name: string): Record<string, string> {
    const out: Record<string, string> = {};
    let current = "";
    for (const raw of toml.split("\n")) {
      const line = raw.trim();
      const header = /^\[([^\]]+)\]$/.exec(line);
      if (header) current = header[1]!;
      else if (current === name && /^[a-z_]+\s*=/.test(line)) {
        const [key, value] = line.split(/\s*=\s*/, 2) as [string, string];
        out[key] = value.replace(/\s+#.*$/, "").replace(/^"(.*)"$/, "$1");
      }
    }
    return out;
  }

  it("are supabase/config.toml's [auth] settings", async () => {
    const toml = await readFile(join(REPO_ROOT, "supabase/config.toml"), "utf8");
    const auth = section(toml, "auth");
    const email = section(toml, "auth.email");
    const sms = section(toml, "auth.sms");
    expect({
      jwtExpiry: Number(auth.jwt_expiry),
      enableSignup: auth.enable_signup === "true",
      enableConfirmations: email.enable_confirmations === "true",
      minimumPasswordLength: Number(auth.minimum_password_length),
      passwordRequirements: auth.password_requirements,
      enableRefreshTokenRotation: auth.enable_refresh_token_rotation === "true",
      refreshTokenReuseInterval: Number(auth.refresh_token_reuse_interval),
      emailEnabled: email.enabled === "true",
      smsEnabled: sms.enabled === "true",
    }).toEqual(AUTH_SETTINGS);
  });
});
