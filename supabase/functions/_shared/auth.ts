/**
 * The one auth path. Every function verifies tokens itself (verify_jwt = false):
 *  - user JWTs against the project's JWKS (SUPABASE_JWKS, else <SUPABASE_URL>/auth/v1/.well-known/jwks.json)
 *    or the legacy HS256 secret (SUPABASE_JWT_SECRET);
 *  - agent keys (sb_agent_…) by hash, inside the begin round trip;
 *  - the service key by constant-time comparison (SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEYS).
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import { ApiError } from "./errors.ts";
import { env } from "./env.ts";

export const AGENT_KEY_PREFIX = "sb_agent_";

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
    if (local) keySet = createLocalJWKSet(JSON.parse(local));
    else if (env("SUPABASE_URL")) keySet = createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", env("SUPABASE_URL")));
  }
  return keySet;
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

function serviceKeys(): string[] {
  const keys = [env("SUPABASE_SERVICE_ROLE_KEY")];
  const secretKeys = env("SUPABASE_SECRET_KEYS");
  if (secretKeys) {
    try {
      keys.push(...Object.values(JSON.parse(secretKeys) as Record<string, string>));
    } catch { /* malformed platform variable: ignore it rather than fail every request */ }
  }
  return keys.filter((k): k is string => Boolean(k));
}

/** Verifies a user JWT and returns its claims, or throws unauthorized. */
export async function verifyUserJwt(token: string): Promise<JWTPayload> {
  try {
    const secret = env("SUPABASE_JWT_SECRET");
    const keys = jwks();
    const { payload } = keys
      ? await jwtVerify(token, keys)
      : secret
      ? await jwtVerify(token, new TextEncoder().encode(secret))
      : (() => { throw new Error("no verification key configured"); })();
    return payload;
  } catch {
    throw new ApiError("unauthorized", "invalid or expired token");
  }
}

function bearer(req: Request): string {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new ApiError("unauthorized", "missing Authorization: Bearer <token>");
  return match[1];
}

function optionalUuid(value: unknown, name: string): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string" || !UUID.test(value)) throw new ApiError("invalid_request", `${name} must be a UUID`);
  return value.toLowerCase();
}

/**
 * Authenticates the caller. `requireAgent` is for agent-only surfaces (tool discovery);
 * provider functions also accept a user acting directly on their own account.
 */
export async function authenticate(req: Request, ids: NamedIds, opts: { requireAgent?: boolean } = {}): Promise<Caller> {
  const token = bearer(req);
  const agentId = optionalUuid(ids.agent_id, "agent_id");

  if (token.startsWith(AGENT_KEY_PREFIX)) {
    return { mode: "agent_key", agentKeyHash: await sha256Hex(token) };
  }
  if (serviceKeys().some((key) => constantTimeEqual(key, token))) {
    const userId = optionalUuid(ids.user_id, "user_id");
    if (!userId) throw new ApiError("invalid_request", "user_id is required with the service key");
    if (!agentId && opts.requireAgent) throw new ApiError("invalid_request", "agent_id is required");
    return { mode: "service", userId, agentId };
  }
  const claims = await verifyUserJwt(token);
  if (claims.role !== "authenticated" || typeof claims.sub !== "string" || !UUID.test(claims.sub)) {
    throw new ApiError("unauthorized", "a signed-in user's token, an agent key or the service key is required");
  }
  if (agentId) return { mode: "user_agent", userId: claims.sub, agentId, claims };
  if (opts.requireAgent) throw new ApiError("invalid_request", "agent_id is required with a user token");
  return { mode: "user", userId: claims.sub, claims };
}
