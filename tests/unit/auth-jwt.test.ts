/**
 * verifyUserJwt with both key types a project can have: the asymmetric signing key
 * (JWKS) and the legacy HS256 secret. The claim checks are the same for both; the e2e
 * suite (auth-tokens.test.ts) covers the JWKS path through every function, and the
 * devstack has no legacy secret, so the HS256 path is proven here.
 */
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyUserJwt } from "../../supabase/functions/_shared/auth.ts";

const PROJECT_URL = "https://abcdefghijklmnop.supabase.co";
const SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
const saved = { ...process.env };

let es256: CryptoKey;
const KID = "project-key";

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  es256 = pair.privateKey as CryptoKey;
  process.env.SUPABASE_URL = PROJECT_URL;
  process.env.SUPABASE_JWKS = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: "ES256" }] });
  process.env.SUPABASE_JWT_SECRET = SECRET;
  delete process.env.SWITCHBOARD_JWT_ISSUER;
});
afterAll(() => {
  process.env = saved;
});

function claims(changes: Record<string, unknown> = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const base: Record<string, unknown> = {
    sub: "7f0c7a52-2f39-4b7e-9b6e-2d3c1e0a9b11", role: "authenticated", aud: "authenticated",
    iss: `${PROJECT_URL}/auth/v1`, iat: now, exp: now + 3600,
  };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base as JWTPayload;
}

const hs256 = (payload: JWTPayload, secret = SECRET) =>
  new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));
const es = (payload: JWTPayload) => new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: KID, typ: "JWT" }).sign(es256);

const verdict = (token: Promise<string>) =>
  token.then(verifyUserJwt).then(() => "accepted", (error: { code?: string }) => error.code ?? "threw");

describe.each([["legacy HS256 secret", hs256], ["asymmetric key (JWKS)", es]] as const)("verifyUserJwt with the %s", (_, sign) => {
  it("accepts the project's current token, with 30 s of clock skew", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await verdict(sign(claims()))).toBe("accepted");
    expect(await verdict(sign(claims({ exp: now - 10, nbf: now + 10 })))).toBe("accepted");
    expect(await verdict(sign(claims({ aud: ["authenticated", "other"] })))).toBe("accepted");
  });

  it("refuses another project's, another audience's, and expired or early tokens", async () => {
    const now = Math.floor(Date.now() / 1000);
    const refused = {
      "wrong iss": claims({ iss: "https://otherproject.supabase.co/auth/v1" }),
      "no iss": claims({ iss: undefined }),
      "wrong aud": claims({ aud: "anon" }),
      "no aud": claims({ aud: undefined }),
      "no exp": claims({ exp: undefined }),
      "expired": claims({ exp: now - 120 }),
      "not yet valid": claims({ nbf: now + 600 }),
    };
    const verdicts = Object.fromEntries(await Promise.all(
      Object.entries(refused).map(async ([name, payload]) => [name, await verdict(sign(payload))] as const),
    ));
    expect(verdicts).toEqual(Object.fromEntries(Object.keys(refused).map((name) => [name, "unauthorized"])));
  });
});

describe("verifyUserJwt key selection", () => {
  it("refuses an HS256 token signed with another secret, and any HS256 token when no secret is configured", async () => {
    expect(await verdict(hs256(claims(), "another-secret-of-at-least-thirty-two-chars"))).toBe("unauthorized");
    delete process.env.SUPABASE_JWT_SECRET;
    try {
      expect(await verdict(hs256(claims()))).toBe("unauthorized");
      expect(await verdict(es(claims()))).toBe("accepted");
    } finally {
      process.env.SUPABASE_JWT_SECRET = SECRET;
    }
  });

  it("refuses an unsigned token", async () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    expect(await verdict(Promise.resolve(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`))).toBe("unauthorized");
  });

  it("pins iss to SWITCHBOARD_JWT_ISSUER when set", async () => {
    process.env.SWITCHBOARD_JWT_ISSUER = "http://127.0.0.1:54321/auth/v1";
    try {
      expect(await verdict(es(claims()))).toBe("unauthorized");
      expect(await verdict(es(claims({ iss: "http://127.0.0.1:54321/auth/v1" })))).toBe("accepted");
    } finally {
      delete process.env.SWITCHBOARD_JWT_ISSUER;
    }
  });
});
