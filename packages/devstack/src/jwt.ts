/**
 * Local JWT issuer, shaped like Supabase Auth with asymmetric signing keys.
 *
 * One ES256 key pair per state dir (`.devstack/keys.json`, private JWK, created on
 * first use) signs the anon and service_role API keys and user access tokens. The
 * public half is served as JWKS at `/auth/v1/.well-known/jwks.json` and handed to
 * functions as SUPABASE_JWKS, so functions verify tokens exactly as they would
 * against a hosted project. Sign-up and sign-in go through the Auth stand-in
 * (auth-standin.ts), which signs its access tokens with this issuer; `createLocalUser`
 * is the tests' shortcut around it (a row in auth.users plus a signed access token,
 * with no session behind it).
 *
 * The same state dir also yields the new-format API keys (`sb_publishable_…`,
 * `sb_secret_…`, see `createOpaqueApiKeys`), which the gateway in the functions host
 * translates into the anon and service_role JWTs, as Supabase's gateway does.
 */
import { createHmac, randomUUID } from "node:crypto";
import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
} from "jose";
import type { JSONValue, Sql } from "postgres";
import { DEFAULT_PORTS, keysPath, loadConfig } from "./config.ts";

const ALG = "ES256";
const TEN_YEARS = 10 * 365 * 24 * 3600;
/** Supabase's default `jwt_expiry`. */
const ACCESS_TOKEN_TTL = 3600;

export type ApiRole = "anon" | "service_role";

export interface JwtIssuer {
  /** `iss` claim: `<API_URL>/auth/v1`, as Supabase Auth sets it. */
  issuer: string;
  kid: string;
  privateKey: CryptoKey;
  jwks: { keys: JWK[] };
}

/** The claims Supabase Auth puts into a user's access token. */
export interface SupabaseClaims extends JWTPayload {
  role?: string;
  email?: string;
  phone?: string;
  aal?: string;
  amr?: { method: string; timestamp: number }[];
  session_id?: string;
  is_anonymous?: boolean;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
}

/** The stored key; `null` when the file is missing, `undefined` when it is unusable. */
async function readPrivateJwk(path: string): Promise<JWK | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const jwk = JSON.parse(text) as JWK;
    return jwk.kty === "EC" && jwk.crv === "P-256" && jwk.d && jwk.kid ? jwk : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns the key pair in `<stateDir>/keys.json`, generating it when missing (or
 * replacing it when unusable). A missing file is created with link(), which fails
 * if another process got there first, so two stacks starting at once share a key.
 */
async function loadOrCreatePrivateJwk(stateDir: string): Promise<JWK> {
  const path = keysPath(stateDir);
  const existing = await readPrivateJwk(path);
  if (existing) return existing;

  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: ALG, use: "sig", key_ops: ["sign"] };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
  try {
    if (existing === null) await link(tmp, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
    else await rename(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const stored = await readPrivateJwk(path);
  if (!stored) throw new Error(`Could not create a signing key in ${path}`);
  return stored;
}

/** Loads (or creates) the signing key of `stateDir` for tokens issued by `apiUrl`. */
export async function createJwtIssuer(opts: { stateDir: string; apiUrl: string }): Promise<JwtIssuer> {
  const jwk = await loadOrCreatePrivateJwk(opts.stateDir);
  const { d: _private, key_ops: _ops, ...publicJwk } = jwk;
  return {
    issuer: `${opts.apiUrl.replace(/\/+$/, "")}/auth/v1`,
    kid: jwk.kid!,
    privateKey: (await importJWK(jwk, ALG)) as CryptoKey,
    jwks: { keys: [{ ...publicJwk, key_ops: ["verify"] }] },
  };
}

// The module-level issuer lets tests and scripts call createUserToken(userId, email)
// without threading an issuer through; startStack and the e2e helpers configure it.
let defaults = { stateDir: "", apiUrl: "" };
let defaultIssuer: Promise<JwtIssuer> | undefined;

/** Sets the state dir and API URL used when no issuer is passed explicitly. */
export function configureJwt(opts: { stateDir?: string; apiUrl?: string }): void {
  defaults = { stateDir: opts.stateDir ?? defaults.stateDir, apiUrl: opts.apiUrl ?? defaults.apiUrl };
  defaultIssuer = undefined;
}

export function getDefaultIssuer(): Promise<JwtIssuer> {
  if (!defaultIssuer) {
    const config = loadConfig();
    defaultIssuer = createJwtIssuer({
      stateDir: defaults.stateDir || config.stateDir,
      apiUrl: defaults.apiUrl || `http://${config.host}:${config.ports.api || DEFAULT_PORTS.api}`,
    });
  }
  return defaultIssuer;
}

async function sign(claims: SupabaseClaims, issuer: JwtIssuer, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALG, kid: issuer.kid, typ: "JWT" })
    .setIssuer(issuer.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(issuer.privateKey);
}

/** The legacy-style API keys (SUPABASE_ANON_KEY / SUPABASE_SERVICE_ROLE_KEY): a role claim, long expiry. */
export async function createApiKey(role: ApiRole, opts: { issuer?: JwtIssuer } = {}): Promise<string> {
  return sign({ role }, opts.issuer ?? (await getDefaultIssuer()), TEN_YEARS);
}

/** The new-format API keys: opaque strings, not JWTs. */
export interface OpaqueApiKeys {
  publishable: string;
  secret: string;
}

/**
 * The `sb_publishable_…` and `sb_secret_…` keys of `stateDir`. They are derived from the
 * signing key (HMAC, one way) so they stay the same across restarts, like the CLI's
 * fixed local keys, without another file to keep.
 */
export async function createOpaqueApiKeys(opts: { stateDir: string }): Promise<OpaqueApiKeys> {
  const { d } = await loadOrCreatePrivateJwk(opts.stateDir);
  const derive = (kind: string) => createHmac("sha256", d!).update(`switchboard-devstack ${kind} key`).digest("base64url").slice(0, 32);
  return { publishable: `sb_publishable_${derive("publishable")}`, secret: `sb_secret_${derive("secret")}` };
}

export interface UserTokenOptions {
  issuer?: JwtIssuer;
  expiresInSeconds?: number;
  sessionId?: string;
  aal?: "aal1" | "aal2";
  isAnonymous?: boolean;
  phone?: string;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
  /** How the session signed in; default: a password sign-in now. */
  amr?: { method: string; timestamp: number }[];
}

/** A user access token with Supabase Auth's claim set. */
export async function createUserToken(userId: string, email: string, opts: UserTokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign(
    {
      sub: userId,
      aud: "authenticated",
      role: "authenticated",
      email,
      phone: opts.phone ?? "",
      app_metadata: opts.appMetadata ?? { provider: "email", providers: ["email"] },
      user_metadata: opts.userMetadata ?? {},
      aal: opts.aal ?? "aal1",
      amr: opts.amr ?? [{ method: "password", timestamp: now }],
      session_id: opts.sessionId ?? randomUUID(),
      is_anonymous: opts.isAnonymous ?? false,
    },
    opts.issuer ?? (await getDefaultIssuer()),
    opts.expiresInSeconds ?? ACCESS_TOKEN_TTL,
  );
}

/**
 * Verifies signature (ES256, key chosen by `kid` from the JWKS), `exp` and `nbf`.
 * Like PostgREST, it does not require a particular `iss` or `aud`. Throws on failure.
 */
export async function verifyToken(token: string, opts: { issuer?: JwtIssuer } = {}): Promise<SupabaseClaims> {
  const issuer = opts.issuer ?? (await getDefaultIssuer());
  const { payload } = await jwtVerify(token, createLocalJWKSet(issuer.jwks), { algorithms: [ALG] });
  return payload as SupabaseClaims;
}

export interface LocalUser {
  id: string;
  email: string;
  token: string;
}

/**
 * Stand-in for sign-up: inserts a confirmed email user into auth.users (the columns
 * GoTrue fills) and returns it with a fresh access token.
 */
export async function createLocalUser(sql: Sql, email: string, opts: UserTokenOptions = {}): Promise<LocalUser> {
  const id = randomUUID();
  const appMetadata = opts.appMetadata ?? { provider: "email", providers: ["email"] };
  const userMetadata = opts.userMetadata ?? {};
  await sql`
    insert into auth.users (
      instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
      raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at
    ) values (
      '00000000-0000-0000-0000-000000000000', ${id}, 'authenticated', 'authenticated', ${email}, '', now(),
      ${sql.json(appMetadata as JSONValue)}, ${sql.json(userMetadata as JSONValue)},
      ${opts.isAnonymous ?? false}, now(), now()
    )`;
  const token = await createUserToken(id, email, { ...opts, appMetadata, userMetadata });
  return { id, email, token };
}
