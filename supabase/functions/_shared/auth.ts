/**
 * The one auth path. Every function verifies tokens itself (verify_jwt = false):
 *  - user JWTs: signature against the project's JWKS (SUPABASE_JWKS, else
 *    <SUPABASE_URL>/auth/v1/.well-known/jwks.json; ES256/RS256), or, for legacy HS256
 *    tokens, against SUPABASE_JWT_SECRET when it is set; then the claims Supabase Auth
 *    sets: `exp` (required) and `nbf`, `iss` = <SUPABASE_URL>/auth/v1 and
 *    `aud` = "authenticated", whatever the key type;
 *  - agent keys (swb_agent_…) by hash, inside the begin round trip;
 *  - the service key by constant-time comparison: SUPABASE_SERVICE_ROLE_KEY (legacy JWT)
 *    or any value of SUPABASE_SECRET_KEYS (new sb_secret_… keys) as the bearer token,
 *    or a secret key in `apikey`.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyOptions } from "jose";
import { ApiError } from "./errors.ts";
import { env } from "./env.ts";

/**
 * Agent keys live outside Supabase's `sb_` namespace: its API gateway treats any
 * `Authorization: Bearer sb_…` as one of its own API keys and rewrites it, so an
 * `sb_`-prefixed key would never reach a function.
 */
export const AGENT_KEY_PREFIX = "swb_agent_";

/** The audience Supabase Auth gives signed-in users' access tokens. */
const USER_AUDIENCE = "authenticated";
/** Asymmetric signing keys Supabase Auth offers; HS256 only through the legacy secret. */
const JWKS_ALGORITHMS = ["ES256", "RS256"];
/** Clock difference tolerated on `exp`/`nbf` between Supabase Auth and the function (PostgREST allows 30 s too). */
const CLOCK_SKEW_SECONDS = 30;

export type Caller =
  | { mode: "user"; userId: string; claims: JWTPayload }
  | { mode: "user_agent"; userId: string; agentId: string; claims: JWTPayload }
  | { mode: "agent_key"; agentKeyHash: string }
  | { mode: "service"; userId: string; agentId: string | null };

/** Who the request names: from the body or the query string. */
export interface NamedIds {
  agent_id?: unknown;
  user_id?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let keySet: ReturnType<typeof createLocalJWKSet> | ReturnType<typeof createRemoteJWKSet> | undefined;
function jwks() {
  if (!keySet) {
    const local = env("SUPABASE_JWKS");
    const url = env("SUPABASE_URL");
    if (local) {
      const parsed = JSON.parse(local);
      // The platform passes {"keys":[…]}; a bare array is accepted as well, as @supabase/server does.
      keySet = createLocalJWKSet(Array.isArray(parsed) ? { keys: parsed } : parsed);
    } else if (url) {
      keySet = createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", url));
    } else {
      throw new Error("neither SUPABASE_JWKS nor SUPABASE_URL is set");
    }
  }
  return keySet;
}

/**
 * The `iss` of this project's user tokens: <SUPABASE_URL>/auth/v1, as Supabase Auth sets
 * it. SWITCHBOARD_JWT_ISSUER overrides it where functions see an internal SUPABASE_URL
 * (the CLI's local stack gives them http://kong:8000).
 */
function userTokenIssuer(): string {
  const configured = env("SWITCHBOARD_JWT_ISSUER");
  if (configured) return configured;
  const url = env("SUPABASE_URL");
  if (!url) throw new Error("SUPABASE_URL is not set");
  return `${url.replace(/\/+$/, "")}/auth/v1`;
}

export async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i % x.length] ?? 0) ^ (y[i % y.length] ?? 0);
  return diff === 0;
}

/** The project's new-format secret keys (sb_secret_…), by value. */
function secretKeys(): string[] {
  // SUPABASE_SECRET_KEY (singular) is the fallback @supabase/server reads as {default: value}.
  const keys = [env("SUPABASE_SECRET_KEY")];
  const named = env("SUPABASE_SECRET_KEYS");
  if (named) {
    try {
      keys.push(...Object.values(JSON.parse(named) as Record<string, string>));
    } catch { /* malformed platform variable: ignore it rather than fail every request */ }
  }
  return keys.filter((k): k is string => typeof k === "string" && k !== "");
}

/**
 * Whether the request carries the service key: the legacy service_role JWT or a secret
 * key as the bearer token, or a secret key in `apikey`. The platform's gateway turns a
 * secret `apikey` into a service_role JWT of its own in Authorization and passes
 * `apikey` on unchanged, so there the `apikey` is what identifies the caller (as
 * @supabase/server's "secret" mode checks it).
 */
function isServiceKey(token: string | null, apikey: string | null): boolean {
  const secrets = secretKeys();
  const legacy = env("SUPABASE_SERVICE_ROLE_KEY");
  const bearerKeys = legacy ? [legacy, ...secrets] : secrets;
  return (token !== null && bearerKeys.some((key) => constantTimeEqual(key, token))) ||
    (apikey !== null && secrets.some((key) => constantTimeEqual(key, apikey)));
}

/**
 * Whether the request carries the service key itself, by the same rules as
 * authenticate: for service-only routes (the provider reconciler), which act for no user.
 */
export function isServiceRequest(req: Request): boolean {
  return isServiceKey(bearer(req), req.headers.get("apikey"));
}

/**
 * Verifies a user JWT and returns its claims, or throws unauthorized. A valid signature
 * is not enough: a token of another project (`iss`), one not meant for signed-in users
 * (`aud`), or one outside its validity window (`exp`, `nbf`) is refused too.
 */
export async function verifyUserJwt(token: string): Promise<JWTPayload> {
  try {
    const claims: JWTVerifyOptions = {
      issuer: userTokenIssuer(),
      audience: USER_AUDIENCE,
      requiredClaims: ["exp"],
      clockTolerance: CLOCK_SKEW_SECONDS,
    };
    // The key type follows the header, but each path pins its own algorithms, so a
    // token cannot pick how it is checked (no `none`, no HS256 keyed with a public key).
    const secret = env("SUPABASE_JWT_SECRET");
    const { payload } = decodeProtectedHeader(token).alg === "HS256" && secret
      ? await jwtVerify(token, new TextEncoder().encode(secret), { ...claims, algorithms: ["HS256"] })
      : await jwtVerify(token, jwks(), { ...claims, algorithms: JWKS_ALGORITHMS });
    return payload;
  } catch {
    throw new ApiError("unauthorized", "invalid or expired token");
  }
}

function bearer(req: Request): string | null {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1] ?? null;
}

function optionalUuid(value: unknown, name: string): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string" || !UUID.test(value)) throw new ApiError("invalid_request", `${name} must be a UUID`);
  return value.toLowerCase();
}

/**
 * Authenticates the caller. `requireAgent` is for agent-only surfaces (tool discovery);
 * provider functions also accept a user acting directly on their own account.
 *
 * The service key always names a user (`user_id`). With an `agent_id` it acts as that
 * user's agent, under the agent's grants. Without one it is the trusted backend acting
 * as the user directly: exactly what the user's own token may do (their own
 * connections, no agent limits), recorded with auth_mode "service" and no agent.
 */
export async function authenticate(req: Request, ids: NamedIds, opts: { requireAgent?: boolean } = {}): Promise<Caller> {
  const token = bearer(req);
  const agentId = optionalUuid(ids.agent_id, "agent_id");

  if (token?.startsWith(AGENT_KEY_PREFIX)) {
    return { mode: "agent_key", agentKeyHash: await sha256Hex(token) };
  }
  if (isServiceKey(token, req.headers.get("apikey"))) {
    const userId = optionalUuid(ids.user_id, "user_id");
    if (!userId) throw new ApiError("invalid_request", "user_id is required with the service key");
    if (!agentId && opts.requireAgent) throw new ApiError("invalid_request", "agent_id is required");
    return { mode: "service", userId, agentId };
  }
  if (token === null) throw new ApiError("unauthorized", "missing Authorization: Bearer <token>");
  const claims = await verifyUserJwt(token);
  if (claims.role !== "authenticated" || typeof claims.sub !== "string" || !UUID.test(claims.sub)) {
    throw new ApiError("unauthorized", "a signed-in user's token, an agent key or the service key is required");
  }
  if (agentId) return { mode: "user_agent", userId: claims.sub, agentId, claims };
  if (opts.requireAgent) throw new ApiError("invalid_request", "agent_id is required with a user token");
  return { mode: "user", userId: claims.sub, claims };
}
