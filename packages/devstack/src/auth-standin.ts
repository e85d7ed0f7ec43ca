/**
 * The Auth part of the local platform: `/auth/v1` on the API port (the Deno functions
 * host applies the gateway's key rule and proxies it to the platform server, which
 * hands it here).
 *
 *   GET  /auth/v1/.well-known/jwks.json            public JWKS of the local issuer
 *   POST /auth/v1/signup                           email + password sign-up (auto-confirmed)
 *   POST /auth/v1/token?grant_type=password        sign in
 *   POST /auth/v1/token?grant_type=refresh_token   a new session from a refresh token (rotated)
 *   GET  /auth/v1/user                             the signed-in user
 *   PUT  /auth/v1/user                             change the password or user metadata
 *   POST /auth/v1/logout?scope=global|local|others sign out, revoking refresh tokens
 *   POST /auth/v1/admin/users                      create a user (service role only)
 *
 * ============================  LOCAL STAND-IN  ============================
 * Supabase Auth (GoTrue) cannot run here, so `/auth/v1` is a deliberately small
 * imitation of the email + password subset supabase-js v2 uses. It follows GoTrue's own
 * handlers (supabase/auth: internal/api signup.go, token.go, user.go, logout.go, admin.go,
 * errors.go, password.go; internal/tokens/service.go) for request fields, the session and
 * user objects, status codes, error codes and messages, so supabase-js raises the same
 * AuthApiError / AuthWeakPasswordError / AuthSessionMissingError it would against a
 * Supabase project. Errors use the `{code, message}` body and echo
 * `X-Supabase-Api-Version: 2024-01-01` when the request names that version (supabase-js
 * always does), else GoTrue's legacy `{code, error_code, msg}`; both set `x-sb-error-code`
 * where GoTrue does. Access tokens are signed by the devstack's ES256 issuer (jwt.ts) with
 * the claims Supabase Auth puts in them. Users, sessions, refresh tokens and identities
 * live in Supabase's own tables (auth.users, auth.sessions, auth.refresh_tokens,
 * auth.identities; see sql/bootstrap.sql), passwords as bcrypt hashes made by pgcrypto.
 * Like the hosted gateway, every route but the JWKS wants an `apikey` of this project.
 *
 * Settings are supabase/config.toml's [auth] (AUTH_SETTINGS; a unit test keeps them in
 * step): sign-ups on and AUTO-CONFIRMED (`enable_confirmations = false`, the local
 * default, so no confirmation e-mail exists), passwords of at least 6 characters,
 * 1-hour access tokens, refresh tokens rotated on every use with a 10 s reuse interval.
 *
 * Deliberately NOT here, answering 501 with a message: OAuth, SSO and SAML providers,
 * magic links and OTP (/otp, /verify, /magiclink, /recover, /resend, /reauthenticate),
 * phone sign-up and sign-in (`[auth.sms] enabled = false` refuses them as GoTrue does),
 * anonymous sign-ins, MFA (/factors), the PKCE code exchange, identity linking, e-mail
 * and phone changes (they need confirmation mail or SMS), the admin API beyond creating
 * a user, /settings, the OAuth 2.1 server. Not implemented at all: RATE LIMITS, CAPTCHA,
 * auth hooks, leaked-password checks, the audit log, session timeboxes and inactivity
 * timeouts, cookies, the hosted gateway's refusal of a secret key sent from a browser.
 * Every response carries `x-switchboard-standin: auth`.
 * ==========================================================================
 */
import { randomInt, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWTPayload } from "jose";
import type { JSONValue, Sql, TransactionSql } from "postgres";
import { readBody } from "./http-body.ts";
import { createUserToken, verifyToken, type JwtIssuer } from "./jwt.ts";

/** supabase/config.toml [auth], as the stand-in applies it (tests/unit/auth-standin.test.ts checks the file). */
export const AUTH_SETTINGS = {
  /** [auth] jwt_expiry, seconds. */
  jwtExpiry: 3600,
  /** [auth] enable_signup. */
  enableSignup: true,
  /** [auth.email] enable_confirmations: false means sign-ups are confirmed at once. */
  enableConfirmations: false,
  /** [auth] minimum_password_length. */
  minimumPasswordLength: 6,
  /** [auth] password_requirements ("" = none). */
  passwordRequirements: "",
  /** [auth] enable_refresh_token_rotation. */
  enableRefreshTokenRotation: true,
  /** [auth] refresh_token_reuse_interval, seconds. */
  refreshTokenReuseInterval: 10,
  /** [auth.email] enabled. */
  emailEnabled: true,
  /** [auth.sms] enabled. */
  smsEnabled: false,
} as const;

export interface AuthStandinOptions {
  sql: Sql;
  issuer: JwtIssuer;
  /** The project's new-format API keys, accepted as `apikey` besides the legacy JWT keys. */
  apiKeys?: { publishable: string[]; secret: string[] };
  /** Where 5xx details go (never to the client). */
  log?: (line: string) => void;
}

/** GoTrue's JWT.AdminRoles as Supabase configures them. */
const ADMIN_ROLES = new Set(["service_role", "supabase_admin"]);
/** bcrypt reads at most 72 bytes (password.go MaxPasswordLength). */
const MAX_PASSWORD_BYTES = 72;
/** GoTrue's bcrypt cost (bcrypt.DefaultCost). */
const BCRYPT_COST = 10;
const MAX_BODY = 1 << 20;
const API_VERSION = "2024-01-01";
const NIL_UUID = "00000000-0000-0000-0000-000000000000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** checkmail.ValidateFormat, which GoTrue's validateEmail uses. */
const EMAIL_FORMAT = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
/** GoTrue's bearerRegexp. */
const BEARER = /^(?:B|b)earer (\S+$)/;
const BASE_HEADERS = {
  "x-switchboard-standin": "auth",
  "access-control-allow-origin": "*",
  // supabase-js in a browser reads the error code only if it can read the version header.
  "access-control-expose-headers": "x-supabase-api-version, x-sb-error-code",
};
const CORS_PREFLIGHT = {
  ...BASE_HEADERS,
  "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type, x-supabase-api-version, x-jwt-aud",
  "access-control-max-age": "86400",
};

// ---- errors ----------------------------------------------------------------------------

/** GoTrue's HTTPError: a status, an error code and a message. */
class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Set for weak_password: the reasons (GoTrue's WeakPasswordError). */
    readonly reasons?: string[],
  ) {
    super(message);
  }
}

/** GoTrue's OAuthError: `{error, error_description}`, always 400. */
class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string) {
    super(description);
  }
}

/** Refused before GoTrue, by the API gateway (Kong's key-auth body). */
class GatewayError extends Error {
  constructor(readonly status: number, readonly body: { message: string; hint?: string }) {
    super(body.message);
  }
}

const validationFailed = (message: string) => new AuthError(400, "validation_failed", message);
const invalidCredentials = () => new AuthError(400, "invalid_credentials", "Invalid login credentials");
const notImplemented = (what: string) =>
  new AuthError(
    501,
    "not_implemented",
    `${what} is not implemented by the local Supabase Auth stand-in, which serves email + password only ` +
      "(signup, token?grant_type=password|refresh_token, user, logout, admin/users; see docs/devstack.md). " +
      "Test this against a Supabase project.",
  );

/** Does the request name API version 2024-01-01 or later (apiversions.go DetermineClosestAPIVersion)? */
function namesApi2024(header: string | undefined): boolean {
  if (!header || !/^\d{4}-\d{2}-\d{2}$/.test(header)) return false;
  const time = Date.parse(`${header}T00:00:00Z`);
  return Number.isFinite(time) && time >= Date.parse(`${API_VERSION}T00:00:00Z`);
}

function writeJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}, head = false): void {
  const all: OutgoingHttpHeaders = { ...BASE_HEADERS, ...headers };
  if (body !== undefined) all["content-type"] = "application/json";
  res.writeHead(status, all);
  res.end(body === undefined || head ? undefined : JSON.stringify(body));
}

/** errors.go HandleResponseError: the body and headers of one error. */
function writeError(res: ServerResponse, error: AuthError | OAuthError | GatewayError, api2024: boolean): void {
  if (error instanceof GatewayError) return writeJson(res, error.status, error.body);
  const headers: OutgoingHttpHeaders = api2024 ? { "x-supabase-api-version": API_VERSION } : {};
  if (error instanceof OAuthError) return writeJson(res, 400, { error: error.error, error_description: error.description }, headers);
  if (error.reasons) {
    // A weak password carries its reasons; only the legacy body also sets x-sb-error-code.
    if (api2024) return writeJson(res, 422, { code: error.code, message: error.message, weak_password: { reasons: error.reasons } }, headers);
    return writeJson(res, 422, { code: 422, error_code: error.code, msg: error.message, weak_password: { reasons: error.reasons } }, {
      ...headers, "x-sb-error-code": error.code,
    });
  }
  headers["x-sb-error-code"] = error.code;
  if (api2024) return writeJson(res, error.status, { code: error.code, message: error.message }, headers);
  return writeJson(res, error.status, {
    code: error.status, error_code: error.code, msg: error.message, ...(error.status >= 500 ? { error_id: randomUUID() } : {}),
  }, headers);
}

// ---- request parsing -------------------------------------------------------------------

/** The request body, at most MAX_BODY bytes. */
const readRequestBody = (req: IncomingMessage) => readBody(req, MAX_BODY, () => validationFailed("Request body too large for the local Auth stand-in"));

type Kind = "string" | "bool" | "object";
const GO_TYPE: Record<Kind, string> = { string: "string", bool: "bool", object: "map[string]interface {}" };

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value;
}

/**
 * retrieveRequestParams: the body as GoTrue's json.Unmarshal into `struct` reads it. Unknown
 * fields are ignored, null leaves the zero value, a wrong type is 400 bad_json.
 */
function parseParams(body: string, struct: string, fields: Record<string, Kind>): Record<string, unknown> {
  const fail = (detail: string) => new AuthError(400, "bad_json", `Could not parse request body as JSON: ${detail}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw fail(body.trim() === "" ? "unexpected end of JSON input" : "invalid JSON");
  }
  if (parsed === null) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw fail(`json: cannot unmarshal ${jsonKind(parsed)} into Go value of type api.${struct}`);
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(fields)) {
    const value = (parsed as Record<string, unknown>)[name];
    if (value === undefined || value === null) continue;
    const ok = kind === "object" ? typeof value === "object" && !Array.isArray(value) : jsonKind(value) === kind;
    if (!ok) throw fail(`json: cannot unmarshal ${jsonKind(value) === "object" ? "object" : jsonKind(value)} into Go struct field ${struct}.${name} of type ${GO_TYPE[kind]}`);
    out[name] = value;
  }
  return out;
}

const str = (value: unknown) => (typeof value === "string" ? value : "");
const obj = (value: unknown) => (value && typeof value === "object" ? (value as Record<string, unknown>) : undefined);

/** validateEmail: required, at most 255 characters, checkmail's format; lower-cased. */
function validateEmail(email: string): string {
  if (email === "") throw validationFailed("An email address is required");
  if (email.length > 255) throw validationFailed("An email address is too long");
  if (!EMAIL_FORMAT.test(email)) throw validationFailed("Unable to validate email address: invalid format");
  return email.toLowerCase();
}

/** checkPasswordStrength: at most 72 bytes (400), then the configured minimum length (422). */
function passwordStrength(password: string): AuthError | undefined {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return validationFailed(`Password cannot be longer than ${MAX_PASSWORD_BYTES} characters`);
  if (password.length < AUTH_SETTINGS.minimumPasswordLength) {
    return new AuthError(422, "weak_password", `Password should be at least ${AUTH_SETTINGS.minimumPasswordLength} characters.`, ["length"]);
  }
  // Postgres text cannot hold NUL, and the hash is made by pgcrypto: a limit of this stand-in.
  if (password.includes("\u0000")) return validationFailed("Password cannot contain NUL characters (a limit of the local Auth stand-in)");
  return undefined;
}

/** The `aud` of users this request deals with (GoTrue's requestAud: X-JWT-AUD, else the default). */
function requestAud(req: IncomingMessage): string {
  const header = req.headers["x-jwt-aud"];
  return typeof header === "string" && header !== "" ? header : "authenticated";
}

// ---- users and identities ----------------------------------------------------------------

interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  invited_at: Date | null;
  phone_confirmed_at: Date | null;
  confirmation_sent_at: Date | null;
  confirmed_at: Date | null;
  recovery_sent_at: Date | null;
  email_change: string | null;
  email_change_sent_at: Date | null;
  phone_change: string | null;
  phone_change_sent_at: Date | null;
  reauthentication_sent_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date | null;
  updated_at: Date | null;
  banned_until: Date | null;
  deleted_at: Date | null;
  is_anonymous: boolean;
}

interface IdentityRow {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown> | null;
  provider: string;
  last_sign_in_at: Date | null;
  created_at: Date | null;
  updated_at: Date | null;
  email: string | null;
}

type Db = Sql | TransactionSql;

const USER_COLUMNS = `
  u.id, u.aud, u.role, u.email, u.phone, u.email_confirmed_at, u.invited_at, u.phone_confirmed_at,
  u.confirmation_sent_at, u.confirmed_at, u.recovery_sent_at, u.email_change, u.email_change_sent_at,
  u.phone_change, u.phone_change_sent_at, u.reauthentication_sent_at, u.last_sign_in_at,
  u.raw_app_meta_data, u.raw_user_meta_data, u.created_at, u.updated_at, u.banned_until, u.deleted_at,
  u.is_anonymous`;

async function userById(db: Db, id: string, lock = false): Promise<UserRow | undefined> {
  const [row] = await db<UserRow[]>`
    select ${db.unsafe(USER_COLUMNS)} from auth.users u where u.id = ${id} ${lock ? db`for update` : db``}`;
  return row;
}

async function identitiesOf(db: Db, userId: string): Promise<IdentityRow[]> {
  return db<IdentityRow[]>`
    select id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email
    from auth.identities where user_id = ${userId} order by created_at, id`;
}

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : undefined);

/** models.Identity as JSON (omitempty fields left out when empty). */
function identityJson(i: IdentityRow): Record<string, unknown> {
  const out: Record<string, unknown> = { identity_id: i.id, id: i.provider_id, user_id: i.user_id };
  if (i.identity_data && Object.keys(i.identity_data).length) out.identity_data = i.identity_data;
  out.provider = i.provider;
  if (i.last_sign_in_at) out.last_sign_in_at = iso(i.last_sign_in_at);
  out.created_at = iso(i.created_at);
  out.updated_at = iso(i.updated_at);
  if (i.email) out.email = i.email;
  return out;
}

/** models.User as JSON, in its field order, with its omitempty fields left out when unset. */
function userJson(u: UserRow, identities: IdentityRow[]): Record<string, unknown> {
  const out: Record<string, unknown> = { id: u.id, aud: u.aud ?? "", role: u.role ?? "", email: u.email ?? "" };
  const optional = (key: string, value: unknown) => {
    if (value !== null && value !== undefined && value !== "") out[key] = value instanceof Date ? iso(value) : value;
  };
  optional("email_confirmed_at", u.email_confirmed_at);
  optional("invited_at", u.invited_at);
  out.phone = u.phone ?? "";
  optional("phone_confirmed_at", u.phone_confirmed_at);
  optional("confirmation_sent_at", u.confirmation_sent_at);
  optional("confirmed_at", u.confirmed_at);
  optional("recovery_sent_at", u.recovery_sent_at);
  optional("new_email", u.email_change);
  optional("email_change_sent_at", u.email_change_sent_at);
  optional("new_phone", u.phone_change);
  optional("phone_change_sent_at", u.phone_change_sent_at);
  optional("reauthentication_sent_at", u.reauthentication_sent_at);
  optional("last_sign_in_at", u.last_sign_in_at);
  out.app_metadata = u.raw_app_meta_data ?? {};
  out.user_metadata = u.raw_user_meta_data ?? {};
  out.identities = identities.map(identityJson);
  out.created_at = iso(u.created_at);
  out.updated_at = iso(u.updated_at);
  optional("banned_until", u.banned_until);
  optional("deleted_at", u.deleted_at);
  out.is_anonymous = u.is_anonymous;
  return out;
}

/** UpdateUserMetaData / UpdateAppMetaData: keys are set, a null value removes its key. */
function mergeMetadata(current: Record<string, unknown> | null, updates: Record<string, unknown>): Record<string, unknown> {
  const out = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(updates)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

const isBanned = (u: UserRow) => u.banned_until !== null && u.banned_until.getTime() > Date.now();

// ---- sessions and tokens -----------------------------------------------------------------

interface SessionRow {
  id: string;
  user_id: string;
  created_at: Date;
}

interface RefreshTokenRow {
  id: string;
  token: string;
  user_id: string;
  revoked: boolean | null;
  updated_at: Date | null;
  parent: string | null;
  session_id: string | null;
}

const REFRESH_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A refresh token as GoTrue's v1 tokens look: 12 random lower-case letters and digits. */
function newRefreshToken(): string {
  let token = "";
  for (let i = 0; i < 12; i++) token += REFRESH_ALPHABET[randomInt(REFRESH_ALPHABET.length)];
  return token;
}

async function insertRefreshToken(db: Db, userId: string, sessionId: string, parent: string | null): Promise<string> {
  const token = newRefreshToken();
  await db`
    insert into auth.refresh_tokens (token, user_id, revoked, created_at, updated_at, parent, session_id)
    values (${token}, ${userId}, false, now(), now(), ${parent}, ${sessionId})`;
  return token;
}

/**
 * An access token as GoTrue's GenerateAccessToken makes it: the user's claims, the
 * session's id, and the session's sign-in (a password: the only method here) in `amr`.
 */
export async function issueAccessToken(
  issuer: JwtIssuer,
  user: Pick<UserRow, "id" | "email" | "phone" | "raw_app_meta_data" | "raw_user_meta_data" | "is_anonymous">,
  session: Pick<SessionRow, "id" | "created_at">,
): Promise<{ token: string; expiresAt: number }> {
  const token = await createUserToken(user.id, user.email ?? "", {
    issuer,
    expiresInSeconds: AUTH_SETTINGS.jwtExpiry,
    sessionId: session.id,
    phone: user.phone ?? "",
    appMetadata: user.raw_app_meta_data ?? {},
    userMetadata: user.raw_user_meta_data ?? {},
    isAnonymous: user.is_anonymous,
    amr: [{ method: "password", timestamp: Math.floor(session.created_at.getTime() / 1000) }],
  });
  return { token, expiresAt: decodeJwt(token).exp! };
}

/** AccessTokenResponse: the session supabase-js stores. */
async function sessionJson(
  db: Db,
  issuer: JwtIssuer,
  user: UserRow,
  session: SessionRow,
  refreshToken: string,
  weakPassword?: AuthError,
): Promise<Record<string, unknown>> {
  const { token, expiresAt } = await issueAccessToken(issuer, user, session);
  return {
    access_token: token,
    token_type: "bearer",
    expires_in: AUTH_SETTINGS.jwtExpiry,
    expires_at: expiresAt,
    refresh_token: refreshToken,
    user: userJson(user, await identitiesOf(db, user.id)),
    ...(weakPassword ? { weak_password: { message: weakPassword.message, reasons: weakPassword.reasons } } : {}),
  };
}

/** IssueRefreshToken: a new session with its first refresh token, and the sign-in recorded on the user. */
async function signIn(tx: TransactionSql, issuer: JwtIssuer, userId: string, userAgent: string | null, weakPassword?: AuthError) {
  await tx`update auth.users set last_sign_in_at = now() where id = ${userId}`;
  const [session] = await tx<SessionRow[]>`
    insert into auth.sessions (id, user_id, created_at, updated_at, user_agent)
    values (${randomUUID()}, ${userId}, now(), now(), ${userAgent})
    returning id, user_id, created_at`;
  const refreshToken = await insertRefreshToken(tx, userId, session!.id, null);
  return sessionJson(tx, issuer, (await userById(tx, userId))!, session!, refreshToken, weakPassword);
}

// ---- authentication of the caller (requireAuthentication, requireAdmin) ----------------

interface Caller {
  claims: JWTPayload & { role?: string; session_id?: string };
}

function bearer(req: IncomingMessage): string {
  const match = BEARER.exec(req.headers.authorization ?? "");
  if (!match) throw new AuthError(401, "no_authorization", "This endpoint requires a Bearer token");
  return match[1]!;
}

const keySets = new WeakMap<JwtIssuer, ReturnType<typeof createLocalJWKSet>>();

/** parseJWTClaims: a token signed by this project's key and current, whatever its claims. */
async function parseJwt(token: string, issuer: JwtIssuer): Promise<Caller> {
  let keys = keySets.get(issuer);
  if (!keys) keySets.set(issuer, (keys = createLocalJWKSet(issuer.jwks)));
  try {
    const { payload } = await jwtVerify(token, keys, { algorithms: ["ES256"] });
    return { claims: payload as Caller["claims"] };
  } catch (error) {
    const code = (error as { code?: string }).code;
    // The golang-jwt wording GoTrue passes on, for the failures that matter here.
    const reason =
      code === "ERR_JWT_EXPIRED" ? "token has invalid claims: token is expired"
      : code === "ERR_JWT_CLAIM_VALIDATION_FAILED" ? `token has invalid claims: ${(error as Error).message}`
      : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" ? "token signature is invalid: crypto/ecdsa: verification error"
      : code === "ERR_JWKS_NO_MATCHING_KEY" || code === "ERR_JOSE_ALG_NOT_ALLOWED" ? `token is unverifiable: ${(error as Error).message}`
      : `token is malformed: ${(error as Error).message}`;
    throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${reason}`);
  }
}

interface Authenticated {
  claims: Caller["claims"];
  user: UserRow;
  /** The session the token belongs to; null when the token names none. */
  session: SessionRow | null;
}

/** requireAuthentication: a bearer JWT of this project, its user, and its session when it names one. */
async function authenticateUser(req: IncomingMessage, db: Db, issuer: JwtIssuer): Promise<Authenticated> {
  const { claims } = await parseJwt(bearer(req), issuer);
  if (!claims.sub) throw new AuthError(403, "bad_jwt", "invalid claim: missing sub claim");
  if (!UUID.test(claims.sub)) throw new AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID");
  const user = await userById(db, claims.sub);
  if (!user) throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
  let session: SessionRow | null = null;
  const sid = claims.session_id;
  if (typeof sid === "string" && sid !== "" && sid !== NIL_UUID) {
    if (!UUID.test(sid)) throw new AuthError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID");
    [session = null] = await db<SessionRow[]>`select id, user_id, created_at from auth.sessions where id = ${sid}`;
    if (!session) throw new AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist");
  }
  return { claims, user, session };
}

/** requireAdminCredentials: a bearer JWT of this project whose role is an admin role (service_role). */
async function authenticateAdmin(req: IncomingMessage, issuer: JwtIssuer): Promise<void> {
  const { claims } = await parseJwt(bearer(req), issuer);
  if (!ADMIN_ROLES.has(String(claims.role ?? ""))) throw new AuthError(403, "not_admin", "User not allowed");
}

// ---- the gateway's apikey check ------------------------------------------------------------

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The hosted gateway's key check: an `apikey` header (or query parameter) that is one of
 * this project's keys. Legacy keys are recognised as this project's anon or service_role
 * JWT (the devstack mints them afresh on every start, so any such JWT of its key counts).
 */
async function requireApiKey(req: IncomingMessage, url: URL, opts: AuthStandinOptions): Promise<void> {
  const header = req.headers.apikey;
  const apikey = (typeof header === "string" ? header : undefined) ?? url.searchParams.get("apikey") ?? "";
  if (apikey === "") {
    throw new GatewayError(401, { message: "No API key found in request", hint: "No `apikey` request header or url param was found." });
  }
  const keys = [...(opts.apiKeys?.publishable ?? []), ...(opts.apiKeys?.secret ?? [])];
  if (keys.some((key) => sameKey(key, apikey))) return;
  if (!apikey.startsWith("sb_")) {
    const claims = await verifyToken(apikey, { issuer: opts.issuer }).catch(() => undefined);
    if (claims && (claims.role === "anon" || claims.role === "service_role")) return;
  }
  throw new GatewayError(401, { message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." });
}

// ---- endpoints -------------------------------------------------------------------------------

interface Context {
  req: IncomingMessage;
  url: URL;
  opts: AuthStandinOptions;
  body: () => Promise<string>;
}

type Result = { status: number; body?: unknown };

/** POST /signup (signup.go) with auto-confirmation: 200 and a session. */
async function signup({ req, opts, body }: Context): Promise<Result> {
  if (!AUTH_SETTINGS.enableSignup) throw new AuthError(422, "signup_disabled", "Signups not allowed for this instance");
  const p = parseParams(await body(), "SignupParams", {
    email: "string", phone: "string", password: "string", data: "object", channel: "string",
    code_challenge_method: "string", code_challenge: "string",
  });
  const email = str(p.email);
  const phone = str(p.phone);
  const password = str(p.password);
  const data = obj(p.data) ?? {};
  if (password === "") throw validationFailed("Signup requires a valid password");
  const weak = passwordStrength(password);
  if (weak) throw weak;
  if (email !== "" && phone !== "") throw validationFailed("Only an email address or phone number should be provided on signup.");
  if (email === "") {
    if (phone !== "") throw new AuthError(400, "phone_provider_disabled", "Phone signups are disabled");
    throw validationFailed("Sign up only available with email provider");
  }
  const address = validateEmail(email);
  const aud = requestAud(req);
  const userAgent = req.headers["user-agent"] ?? null;

  const session = await opts.sql.begin(async (tx) => {
    // auth.users has no unique index on email here: serialise sign-ups of one address.
    await tx`select pg_advisory_xact_lock(hashtext(${`auth.users:${aud}:${address}`}))`;
    const [existing] = await tx`select 1 from auth.users where lower(email) = ${address} and aud = ${aud} and not is_sso_user limit 1`;
    // With auto-confirmation every e-mail user is confirmed; an unconfirmed one (an admin
    // created it without email_confirm) is refused too, where GoTrue would sign it in.
    if (existing) throw new AuthError(422, "user_already_exists", "User already registered");
    const id = randomUUID();
    // user.Confirm() records email_verified in the user's metadata.
    const userMetadata = mergeMetadata(data, { email_verified: true });
    await tx`
      insert into auth.users (
        instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, confirmation_token,
        raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at
      ) values (
        ${NIL_UUID}, ${id}, ${aud}, 'authenticated', ${address},
        extensions.crypt(${password}, extensions.gen_salt('bf', ${BCRYPT_COST})), now(), '',
        ${tx.json({ provider: "email", providers: ["email"] })}, ${tx.json(userMetadata as JSONValue)}, false, now(), now()
      )`;
    const identityData: Record<string, unknown> = { sub: id, email: address, email_verified: false, phone_verified: false };
    for (const [key, value] of Object.entries(data)) if (!(key in identityData)) identityData[key] = value;
    await tx`
      insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
      values (${id}, ${id}, ${tx.json(identityData as JSONValue)}, 'email', now(), now(), now())`;
    return signIn(tx, opts.issuer, id, userAgent);
  });
  return { status: 200, body: session };
}

/** POST /token?grant_type=password (token.go ResourceOwnerPasswordGrant). */
async function passwordGrant({ req, opts, body }: Context): Promise<Result> {
  const p = parseParams(await body(), "PasswordGrantParams", { email: "string", phone: "string", password: "string" });
  const email = str(p.email);
  const phone = str(p.phone);
  const password = str(p.password);
  if (email !== "" && phone !== "") throw validationFailed("Only an email address or phone number should be provided on login.");
  if (email === "") {
    if (phone !== "") throw new AuthError(422, "phone_provider_disabled", "Phone logins are disabled");
    throw validationFailed("missing email or phone");
  }
  const aud = requestAud(req);
  const [found] = await opts.sql<(UserRow & { has_password: boolean; password_ok: boolean })[]>`
    select ${opts.sql.unsafe(USER_COLUMNS)},
           coalesce(u.encrypted_password, '') <> '' as has_password,
           -- pgcrypto reads GoTrue's $2a$ bcrypt hashes; NUL cannot reach Postgres.
           coalesce(u.encrypted_password like '$2a$%' and ${!password.includes("\u0000")}
                    and u.encrypted_password = extensions.crypt(${password.replaceAll("\u0000", "")}, u.encrypted_password), false) as password_ok
    from auth.users u
    where lower(u.email) = lower(${email}) and u.aud = ${aud} and not u.is_sso_user
    order by u.created_at limit 1`;
  // An unknown address and a wrong password are the same answer: no user enumeration.
  if (!found || !found.has_password) throw invalidCredentials();
  if (isBanned(found)) throw new AuthError(400, "user_banned", "User is banned");
  if (!found.password_ok) throw invalidCredentials();
  // A password that no longer meets the policy still signs in, with a warning.
  const weak = passwordStrength(password);
  if (!found.email_confirmed_at) throw new AuthError(400, "email_not_confirmed", "Email not confirmed");
  const userAgent = req.headers["user-agent"] ?? null;
  const session = await opts.sql.begin((tx) => signIn(tx, opts.issuer, found.id, userAgent, weak?.reasons ? weak : undefined));
  return { status: 200, body: session };
}

/**
 * POST /token?grant_type=refresh_token (tokens/service.go RefreshTokenGrant, v1 tokens):
 * the token is swapped for a new one in the same session. A revoked token is still
 * honoured when it is the parent of the session's current token (the client lost the
 * answer: the current one is returned) or within the reuse interval of its revocation;
 * otherwise the session's tokens are all revoked and the reuse is refused.
 */
async function refreshGrant({ req, opts, body }: Context): Promise<Result> {
  const p = parseParams(await body(), "RefreshTokenGrantParams", { refresh_token: "string" });
  const presented = str(p.refresh_token);
  if (presented === "") throw new OAuthError("invalid_request", "refresh_token required");
  const userAgent = req.headers["user-agent"] ?? null;

  let refused: AuthError | undefined;
  const session = await opts.sql.begin(async (tx) => {
    const [token] = await tx<RefreshTokenRow[]>`
      select id, token, user_id, revoked, updated_at, parent, session_id
      from auth.refresh_tokens where token = ${presented} for update`;
    if (!token) throw new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    const user = UUID.test(token.user_id) ? await userById(tx, token.user_id) : undefined;
    if (!user) throw new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    if (isBanned(user)) throw new AuthError(400, "user_banned", "Invalid Refresh Token: User Banned");
    const [session] = token.session_id
      ? await tx<SessionRow[]>`select id, user_id, created_at from auth.sessions where id = ${token.session_id} for update`
      : [];
    if (!session) {
      await tx`delete from auth.refresh_tokens where id = ${token.id}`;
      throw new AuthError(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found");
    }

    let issued: string | undefined;
    if (token.revoked) {
      const [active] = await tx<{ token: string; parent: string | null }[]>`
        select token, parent from auth.refresh_tokens
        where session_id = ${session.id} and revoked = false order by id desc limit 1`;
      if (active && active.parent === token.token) {
        issued = active.token;
      } else {
        const reuseUntil = (token.updated_at?.getTime() ?? 0) + AUTH_SETTINGS.refreshTokenReuseInterval * 1000;
        if (Date.now() > reuseUntil) {
          if (AUTH_SETTINGS.enableRefreshTokenRotation) {
            await tx`update auth.refresh_tokens set revoked = true where session_id = ${session.id} and revoked = false`;
          }
          // Committed with the revocation, then refused (storage.NewCommitWithError).
          refused = new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
          return undefined;
        }
      }
    }
    if (!issued) {
      // The reuse interval counts from the first revocation, so reuses do not extend it.
      await tx`update auth.refresh_tokens set revoked = true, updated_at = case when revoked then updated_at else now() end
               where id = ${token.id}`;
      issued = await insertRefreshToken(tx, user.id, session.id, token.token);
    }
    await tx`update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now(), user_agent = ${userAgent} where id = ${session.id}`;
    return sessionJson(tx, opts.issuer, user, session, issued);
  });
  if (refused) throw refused;
  return { status: 200, body: session };
}

/** GET /user (user.go UserGet): the user of the token, if its session still exists. */
async function getUser({ req, opts }: Context): Promise<Result> {
  const { claims, user } = await authenticateUser(req, opts.sql, opts.issuer);
  const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
  if (!aud || aud !== requestAud(req)) throw validationFailed("Token audience doesn't match request audience");
  return { status: 200, body: userJson(user, await identitiesOf(opts.sql, user.id)) };
}

/**
 * PUT /user (user.go UserUpdate), for what needs no e-mail or SMS: a new password (the
 * user's other sessions end) and user metadata. An e-mail or phone change is 501.
 */
async function updateUser({ req, opts, body }: Context): Promise<Result> {
  const { user, session } = await authenticateUser(req, opts.sql, opts.issuer);
  const p = parseParams(await body(), "UserUpdateParams", {
    email: "string", password: "string", nonce: "string", data: "object", app_metadata: "object", phone: "string",
    channel: "string", code_challenge: "string", code_challenge_method: "string",
  });
  const email = str(p.email);
  if (email !== "") validateEmail(email);
  const password = typeof p.password === "string" ? p.password : undefined;
  if (password !== undefined) {
    const weak = passwordStrength(password);
    if (weak) throw weak;
  }
  if (p.app_metadata && !ADMIN_ROLES.has(user.role ?? "")) {
    throw new AuthError(403, "not_admin", "Updating app_metadata requires admin privileges");
  }
  if (email !== "" && email.toLowerCase() !== (user.email ?? "")) throw notImplemented("Changing the e-mail address (PUT /auth/v1/user with email)");
  if (str(p.phone) !== "" && str(p.phone) !== (user.phone ?? "")) throw notImplemented("Changing the phone number (PUT /auth/v1/user with phone)");

  const updated = await opts.sql.begin(async (tx) => {
    const current = (await userById(tx, user.id, true))!;
    if (password !== undefined) {
      const [same] = await tx<{ same: boolean }[]>`
        select coalesce(encrypted_password like '$2a$%' and encrypted_password = extensions.crypt(${password}, encrypted_password), false) as same
        from auth.users where id = ${user.id}`;
      if (same?.same) throw new AuthError(422, "same_password", "New password should be different from the old password.");
      await tx`
        update auth.users set encrypted_password = extensions.crypt(${password}, extensions.gen_salt('bf', ${BCRYPT_COST})),
          confirmation_token = '', confirmation_sent_at = null, recovery_token = '', recovery_sent_at = null,
          email_change_token_current = '', email_change_token_new = '', email_change_sent_at = null,
          phone_change_token = '', phone_change_sent_at = null, reauthentication_token = '', reauthentication_sent_at = null,
          updated_at = now()
        where id = ${user.id}`;
      // A new password signs the user out everywhere else (UpdatePassword → LogoutAllExceptMe).
      if (session) await tx`delete from auth.sessions where user_id = ${user.id} and id <> ${session.id}`;
      else await tx`delete from auth.sessions where user_id = ${user.id}`;
    }
    const data = obj(p.data);
    if (data) {
      await tx`update auth.users set raw_user_meta_data = ${tx.json(mergeMetadata(current.raw_user_meta_data, data) as JSONValue)}, updated_at = now()
               where id = ${user.id}`;
    }
    const appData = obj(p.app_metadata);
    if (appData) {
      await tx`update auth.users set raw_app_meta_data = ${tx.json(mergeMetadata(current.raw_app_meta_data, appData) as JSONValue)}, updated_at = now()
               where id = ${user.id}`;
    }
    return (await userById(tx, user.id))!;
  });
  return { status: 200, body: userJson(updated, await identitiesOf(opts.sql, user.id)) };
}

/** POST /logout (logout.go): 204; the sessions in scope are deleted, and their refresh tokens with them. */
async function logout({ req, url, opts }: Context): Promise<Result> {
  const { user, session } = await authenticateUser(req, opts.sql, opts.issuer);
  const scope = url.searchParams.get("scope") ?? "";
  if (!["", "global", "local", "others"].includes(scope)) throw validationFailed(`Unsupported logout scope ${JSON.stringify(scope)}`);
  await opts.sql.begin(async (tx) => {
    if (session && scope === "local") await tx`delete from auth.sessions where id = ${session.id}`;
    else if (session && scope === "others") await tx`delete from auth.sessions where user_id = ${user.id} and id <> ${session.id}`;
    else {
      await tx`delete from auth.sessions where user_id = ${user.id}`;
      await tx`delete from auth.refresh_tokens where user_id = ${user.id}`;
    }
  });
  return { status: 204 };
}

/** Fields of AdminUserParams the stand-in does not implement (phone users, imported hashes, roles, bans). */
const ADMIN_UNSUPPORTED = ["phone", "phone_confirm", "password_hash", "role", "aud", "ban_duration"] as const;

/** POST /admin/users (admin.go adminUserCreate), e-mail users only: 200 and the user. */
async function adminCreateUser({ req, opts, body }: Context): Promise<Result> {
  await authenticateAdmin(req, opts.issuer);
  const raw = await body();
  const p = parseParams(raw, "AdminUserParams", {
    id: "string", aud: "string", role: "string", email: "string", phone: "string", password: "string", password_hash: "string",
    email_confirm: "bool", phone_confirm: "bool", user_metadata: "object", app_metadata: "object", ban_duration: "string",
  });
  const unsupported = ADMIN_UNSUPPORTED.filter((field) => p[field] !== undefined && p[field] !== "" && p[field] !== false);
  if (unsupported.length) {
    throw notImplemented(`Creating a user with ${unsupported.join(", ")} (POST /auth/v1/admin/users takes email, password, email_confirm, user_metadata, app_metadata and id here)`);
  }
  const aud = requestAud(req);
  if (str(p.email) === "") throw validationFailed("Cannot create a user without either an email or phone");
  const address = validateEmail(str(p.email));
  let id: string = randomUUID();
  if (str(p.id) !== "") {
    if (!UUID.test(str(p.id))) throw validationFailed("ID must conform to the uuid v4 format");
    if (str(p.id) === NIL_UUID) throw validationFailed("ID cannot be a nil uuid");
    id = str(p.id).toLowerCase();
  }
  // Without a password GoTrue sets a random one (64 characters): the user cannot sign in with it.
  const password = typeof p.password === "string" && p.password !== "" ? p.password : randomPassword();
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw validationFailed("bcrypt: password length exceeds 72 bytes");
  if (password.includes("\u0000")) throw validationFailed("Password cannot contain NUL characters (a limit of the local Auth stand-in)");
  const confirm = p.email_confirm === true;
  const appMetadata = mergeMetadata({ provider: "email", providers: ["email"] }, obj(p.app_metadata) ?? {});
  const userMetadata = confirm ? mergeMetadata(obj(p.user_metadata) ?? {}, { email_verified: true }) : obj(p.user_metadata) ?? {};

  const created = await opts.sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`auth.users:${aud}:${address}`}))`;
    const [existing] = await tx`select 1 from auth.users where lower(email) = ${address} and aud = ${aud} and not is_sso_user limit 1`;
    if (existing) throw new AuthError(422, "email_exists", "A user with this email address has already been registered");
    const [taken] = await tx`select 1 from auth.users where id = ${id}`;
    // GoTrue fails the insert with a 500 here too.
    if (taken) throw new AuthError(500, "unexpected_failure", "Database error creating new user");
    await tx`
      insert into auth.users (
        instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, confirmation_token,
        raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at
      ) values (
        ${NIL_UUID}, ${id}, ${aud}, 'authenticated', ${address},
        extensions.crypt(${password}, extensions.gen_salt('bf', ${BCRYPT_COST})), ${confirm ? tx`now()` : null}, '',
        ${tx.json(appMetadata as JSONValue)}, ${tx.json(userMetadata as JSONValue)}, false, now(), now()
      )`;
    await tx`
      insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
      values (${id}, ${id}, ${tx.json({ sub: id, email: address, email_verified: false, phone_verified: false })}, 'email', now(), now(), now())`;
    return (await userById(tx, id))!;
  });
  return { status: 200, body: userJson(created, await identitiesOf(opts.sql, id)) };
}

function randomPassword(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let out = "";
  for (let i = 0; i < 64; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

// ---- routing ---------------------------------------------------------------------------------

const ROUTES: Record<string, Partial<Record<string, (ctx: Context) => Promise<Result>>>> = {
  "/signup": { POST: signup },
  "/token": {
    POST: (ctx) => {
      const grant = ctx.url.searchParams.get("grant_type") ?? "";
      if (grant === "password") return passwordGrant(ctx);
      if (grant === "refresh_token") return refreshGrant(ctx);
      if (["id_token", "pkce", "web3", "third_party"].includes(grant)) throw notImplemented(`POST /auth/v1/token?grant_type=${grant}`);
      throw new AuthError(400, "invalid_credentials", "unsupported_grant_type");
    },
  },
  "/user": { GET: getUser, PUT: updateUser },
  "/logout": { POST: logout },
  "/admin/users": { POST: adminCreateUser },
};

export function isAuthPath(pathname: string): boolean {
  return pathname === "/auth/v1" || pathname.startsWith("/auth/v1/");
}

/** Postgres data errors caused by what the client sent (e.g. \u0000 in metadata) are the client's. */
const isClientDataError = (error: unknown) =>
  (error as { name?: string }).name === "PostgresError" && /^22/.test(String((error as { code?: string }).code));

/** The handler for every `/auth/v1` request the platform server receives. */
export function createAuthStandin(opts: AuthStandinOptions): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  return async (req, res, url) => {
    const method = req.method ?? "GET";
    const path = url.pathname.slice("/auth/v1".length) || "/";
    const api2024 = namesApi2024(typeof req.headers["x-supabase-api-version"] === "string" ? req.headers["x-supabase-api-version"] : undefined);
    try {
      if (method === "OPTIONS") return writeJson(res, 204, undefined, CORS_PREFLIGHT);
      if (path === "/.well-known/jwks.json" && (method === "GET" || method === "HEAD")) {
        return writeJson(res, 200, opts.issuer.jwks, { "cache-control": "public, max-age=600" }, method === "HEAD");
      }
      await requireApiKey(req, url, opts);
      const handler = ROUTES[path]?.[method];
      if (!handler) throw notImplemented(`${method} /auth/v1${path}`);
      let body: Promise<string> | undefined;
      const result = await handler({ req, url, opts, body: () => (body ??= readRequestBody(req)) });
      return writeJson(res, result.status, result.body);
    } catch (error) {
      if (error instanceof AuthError || error instanceof OAuthError || error instanceof GatewayError) {
        if (error instanceof AuthError && error.status >= 500 && error.code !== "not_implemented") log(`[auth stand-in] ${method} ${url.pathname}: ${error.message}`);
        return writeError(res, error, api2024);
      }
      if (isClientDataError(error)) return writeError(res, validationFailed((error as Error).message), api2024);
      log(`[auth stand-in] ${method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
      return writeError(res, new AuthError(500, "unexpected_failure", "Unexpected failure, please check server logs for more information"), api2024);
    }
  };
}
