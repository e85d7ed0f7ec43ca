/**
 * The Node side of the local platform: everything on the API port that is not an
 * edge function (the Deno functions host proxies it here).
 *
 *   GET  /auth/v1/.well-known/jwks.json   public JWKS of the local issuer
 *   POST /rest/v1/rpc/<fn>                 PostgREST stand-in: call public.<fn>
 *   GET  /rest/v1/<table>                  PostgREST stand-in: read a table or view
 *
 * ============================  LOCAL STAND-IN  ============================
 * PostgREST cannot be installed here, so `/rest/v1` is a deliberately small
 * imitation that follows PostgREST's documented transaction semantics and
 * nothing more (docs.postgrest.org: references/transactions, references/errors):
 * one transaction per request, `set local role` from the JWT's role claim,
 * `request.jwt.claims` / `request.method` / `request.path` / `request.headers` /
 * `request.cookies` as transaction-local settings, named RPC arguments, JSON
 * results, PostgREST's error JSON and status mapping. Anything outside that
 * subset answers 501 so nobody builds on behaviour production would not have.
 * Every response carries `x-switchboard-standin: postgrest`.
 * ==========================================================================
 */
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { JSONValue, PendingQuery, Row, Sql, TransactionSql } from "postgres";
import { verifyToken, type JwtIssuer, type SupabaseClaims } from "./jwt.ts";

export interface PlatformOptions {
  sql: Sql;
  issuer: JwtIssuer;
  host: string;
  port: number;
  /** Supabase's `[api] max_rows` (PostgREST db-max-rows) for table reads. Default 1000. */
  maxRows?: number;
  /** Where 5xx details go (they never go to the client). Default: stderr. */
  log?: (line: string) => void;
}

export interface PlatformServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

type Fragment = PendingQuery<Row[]>;

/** The roles `authenticator` may switch to on Supabase. */
const API_ROLES = new Set(["anon", "authenticated", "service_role"]);
/** Supabase's PostgREST: db-extra-search-path = public, extensions. */
const SEARCH_PATH = "public, extensions";
const MAX_BODY = 16 << 20;
const TEXT_OID = 25;
const STANDIN_HEADERS = {
  "x-switchboard-standin": "postgrest",
  "access-control-allow-origin": "*",
};
const CORS_PREFLIGHT = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, HEAD, POST, OPTIONS",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type, accept, accept-profile, content-profile, prefer, range",
  "access-control-max-age": "86400",
};

interface PgrstBody {
  code: string | null;
  message: string;
  details: string | null;
  hint: string | null;
}

class RestError extends Error {
  constructor(
    readonly status: number,
    readonly body: PgrstBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

const restError = (status: number, code: string | null, message: string, details: string | null = null, hint: string | null = null) =>
  new RestError(status, { code, message, details, hint });

const notSupported = (what: string) =>
  restError(
    501,
    "SBSTANDIN",
    `${what} is not supported by the local PostgREST stand-in`,
    "The devstack only implements POST /rest/v1/rpc/<fn> and simple GET /rest/v1/<table> reads.",
    "Use an RPC, or test this against a real Supabase project.",
  );

// ---- schema cache -------------------------------------------------------------
// Like PostgREST's schema cache: catalog lookups are cached, cleared by
// `NOTIFY pgrst, 'reload schema'`, and re-read once on a miss (a local stack sees
// migrations and tests create objects while it runs).

interface FnArg {
  name: string;
  /** format_type() of the argument: catalog text, never user input. */
  type: string;
}

interface FnOverload {
  name: string;
  inputs: FnArg[];
  required: number;
  returnsSet: boolean;
  returnsVoid: boolean;
  /** VOLATILE functions get a READ WRITE transaction on POST, others READ ONLY. */
  volatile: boolean;
  /** The function's own `SET statement_timeout`, applied to the whole transaction. */
  statementTimeout: string | null;
}

interface Setting {
  name: string;
  value: string;
}

interface Relation {
  name: string;
  /** Column name → format_type() (catalog text, never user input). */
  columns: Map<string, string>;
}

class SchemaCache {
  private functions = new Map<string, Promise<FnOverload[]>>();
  private relations = new Map<string, Promise<Relation | null>>();
  private roles = new Map<string, Promise<Setting[]>>();

  constructor(private readonly sql: Sql) {}

  clear(): void {
    this.functions.clear();
    this.relations.clear();
    this.roles.clear();
  }

  /** The impersonated role's user-settable settings (ALTER ROLE … SET), database-specific ones last. */
  roleSettings(role: string): Promise<Setting[]> {
    let entry = this.roles.get(role);
    if (!entry) {
      entry = this.sql<Setting[]>`
        select split_part(c.cfg, '=', 1) as name, substr(c.cfg, strpos(c.cfg, '=') + 1) as value
        from pg_catalog.pg_db_role_setting s
        join pg_catalog.pg_roles r on r.oid = s.setrole
        cross join lateral unnest(s.setconfig) as c(cfg)
        where r.rolname = ${role}
          and s.setdatabase in (0, (select oid from pg_catalog.pg_database where datname = current_database()))
          and exists (select 1 from pg_catalog.pg_settings ps where ps.name = split_part(c.cfg, '=', 1) and ps.context = 'user')
        order by s.setdatabase`.then((rows) => rows.map(({ name, value }) => ({ name, value })));
      this.roles.set(role, entry);
      entry.catch(() => this.roles.delete(role));
    }
    return entry;
  }

  async fn(name: string, fresh = false): Promise<FnOverload[]> {
    if (fresh) this.functions.delete(name);
    let entry = this.functions.get(name);
    if (!entry) {
      entry = this.loadFunctions(name);
      this.functions.set(name, entry);
      entry.catch(() => this.functions.delete(name));
    }
    return entry;
  }

  async relation(name: string, fresh = false): Promise<Relation | null> {
    if (fresh) this.relations.delete(name);
    let entry = this.relations.get(name);
    if (!entry) {
      entry = this.loadRelation(name);
      this.relations.set(name, entry);
      entry.catch(() => this.relations.delete(name));
    }
    return entry;
  }

  private async loadFunctions(name: string): Promise<FnOverload[]> {
    // Input arguments are the IN/INOUT/VARIADIC entries of proargnames, in
    // proargtypes order; OUT/TABLE columns only shape the result.
    const rows = await this.sql<{
      names: string[]; types: string[]; nargdefaults: number; retset: boolean; retvoid: boolean; volatile: boolean; timeout: string | null;
    }[]>`
      select
        coalesce(array(
          select coalesce(p.proargnames[a.ord], '')
          from generate_subscripts(coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])), 1) as a(ord)
          where coalesce(p.proargmodes[a.ord], 'i') in ('i', 'b', 'v')
          order by a.ord
        ), '{}') as names,
        array(select format_type(t.oid, null) from unnest(p.proargtypes) with ordinality as t(oid, ord) order by t.ord) as types,
        p.pronargdefaults as nargdefaults,
        p.proretset as retset,
        p.prorettype = 'void'::regtype as retvoid,
        p.provolatile = 'v' as volatile,
        (select substr(c, length('statement_timeout=') + 1) from unnest(p.proconfig) as c
          where c like 'statement_timeout=%') as timeout
      from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.proname = ${name} and p.prokind = 'f'`;
    return rows.map((r) => ({
      name,
      inputs: r.types.map((type, i) => ({ name: r.names[i] ?? "", type })),
      required: r.types.length - r.nargdefaults,
      returnsSet: r.retset,
      returnsVoid: r.retvoid,
      volatile: r.volatile,
      statementTimeout: r.timeout,
    }));
  }

  private async loadRelation(name: string): Promise<Relation | null> {
    const rows = await this.sql<{ columns: string[]; types: string[] }[]>`
      select
        array(select a.attname::text from pg_catalog.pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
        array(select format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as types
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relname = ${name} and c.relkind in ('r', 'v', 'm', 'p', 'f')`;
    const row = rows[0];
    return row ? { name, columns: new Map(row.columns.map((col, i) => [col, row.types[i]!])) } : null;
  }
}

// ---- request context -------------------------------------------------------------

interface RequestContext {
  role: string;
  claims: SupabaseClaims;
  method: string;
  /** Path as PostgREST sees it (the gateway strips /rest/v1). */
  path: string;
  headers: Record<string, string>;
  cookies: Record<string, string>;
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/**
 * The gateway wants an API key; PostgREST takes the bearer token, and supabase-js
 * sends the anon key as both. A bearer token wins over `apikey`, like on Supabase.
 */
async function authenticate(req: IncomingMessage, issuer: JwtIssuer, restPath: string): Promise<RequestContext> {
  const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
  const apikey = typeof req.headers.apikey === "string" ? req.headers.apikey : undefined;
  const token = bearer ?? apikey;
  if (!token) {
    throw new RestError(401, {
      code: null,
      message: "No API key found in request",
      details: null,
      hint: "No `apikey` request header or url param was found.",
    });
  }
  let claims: SupabaseClaims;
  try {
    claims = await verifyToken(token, { issuer });
  } catch (error) {
    const message = (error as Error).name === "JWTExpired" ? "JWT expired" : `JWT is invalid: ${(error as Error).message}`;
    throw new RestError(401, { code: "PGRST301", message, details: null, hint: null }, {
      "www-authenticate": `Bearer error="invalid_token", error_description="${message.replace(/"/g, "'")}"`,
    });
  }
  const role = typeof claims.role === "string" && claims.role !== "" ? claims.role : "anon";
  if (!API_ROLES.has(role)) {
    // What Postgres answers when authenticator is not a member of the role.
    throw restError(403, "42501", `permission denied to set role "${role}"`);
  }
  const headers = flatHeaders(req);
  // "The role in request.jwt.claims defaults to the value of db-anon-role."
  return { role, claims: { ...claims, role }, method: req.method ?? "GET", path: restPath, headers, cookies: parseCookies(headers.cookie) };
}

/**
 * One transaction per request, as PostgREST runs it: access mode, the impersonated
 * role's settings (plus extra, e.g. a function's statement_timeout), role and
 * transaction-scoped request settings, then the main query.
 */
async function inRequestTransaction<T>(
  sql: Sql,
  cache: SchemaCache,
  ctx: RequestContext,
  access: "read only" | "read write",
  extra: Setting[],
  work: (tx: TransactionSql) => Promise<T>,
): Promise<T> {
  const settings = [...(await cache.roleSettings(ctx.role)), ...extra];
  return sql.begin(access, async (tx) => {
    await tx`
      select
        (select count(set_config(s.name, s.value, true)) from jsonb_to_recordset(${sql.json(settings as unknown as JSONValue)}) as s(name text, value text)),
        set_config('role', ${ctx.role}, true),
        set_config('request.jwt.claims', ${JSON.stringify(ctx.claims)}, true),
        set_config('request.method', ${ctx.method}, true),
        set_config('request.path', ${ctx.path}, true),
        set_config('request.headers', ${JSON.stringify(ctx.headers)}, true),
        set_config('request.cookies', ${JSON.stringify(ctx.cookies)}, true),
        set_config('search_path', ${SEARCH_PATH}, true)`;
    return work(tx);
  }) as Promise<T>;
}

// ---- errors ------------------------------------------------------------------------

/** PostgREST's SQLSTATE → HTTP status table (references/errors.rst). */
export function statusForSqlState(code: string, role: string): number {
  if (/^PT\d{3}$/.test(code)) return Number(code.slice(2));
  if (code === "42501") return role === "anon" ? 401 : 403;
  const exact: Record<string, number> = {
    "23503": 409, "23505": 409, "25006": 405, "53400": 500, P0001: 400, "42883": 404, "42P01": 404, "42P17": 500,
  };
  if (code in exact) return exact[code]!;
  const byClass: Record<string, number> = {
    "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
    "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, F0: 500, HV: 500, P0: 500, XX: 500,
  };
  return byClass[code.slice(0, 2)] ?? 400;
}

interface PgError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

const isPgError = (error: unknown): error is PgError =>
  typeof error === "object" && error !== null && (error as { name?: string }).name === "PostgresError";

function fromPgError(error: PgError, role: string): RestError {
  const status = statusForSqlState(error.code, role);
  if (status >= 500) {
    // Server-side failures keep their internals in the log, not in the response.
    return restError(status, error.code, "Internal error in the local PostgREST stand-in (see the devstack log)");
  }
  return restError(status, error.code, error.message, error.detail ?? null, error.hint ?? null);
}

// ---- RPC -----------------------------------------------------------------------------

function comma(sql: Sql, parts: Fragment[]): Fragment[] {
  return parts.flatMap((part, i) => (i ? [sql`, `, part] : [part]));
}

function pickOverload(candidates: FnOverload[], keys: string[]): FnOverload[] {
  return candidates.filter((fn) => {
    const names = fn.inputs.map((a) => a.name);
    return keys.every((k) => names.includes(k)) && names.slice(0, fn.required).every((n) => keys.includes(n));
  });
}

async function callRpc(sql: Sql, cache: SchemaCache, ctx: RequestContext, fnName: string, body: string): Promise<Reply> {
  let args: unknown = {};
  if (body.trim() !== "") {
    try {
      args = JSON.parse(body);
    } catch {
      throw restError(400, "PGRST102", "Empty or invalid json");
    }
  }
  if (Array.isArray(args)) throw notSupported("Calling a function with a JSON array body (bulk call)");
  if (typeof args !== "object" || args === null) throw restError(400, "PGRST102", "Empty or invalid json");
  const keys = Object.keys(args);

  let matches = pickOverload(await cache.fn(fnName), keys);
  if (matches.length === 0) matches = pickOverload(await cache.fn(fnName, true), keys);
  if (matches.length === 0) {
    const list = [...keys].sort().join(", ");
    throw restError(
      404,
      "PGRST202",
      `Could not find the function public.${fnName}(${list}) in the schema cache`,
      `Searched for the function public.${fnName} with parameter${keys.length === 1 ? "" : "s"} ${list || "(none)"}, but no matches were found in the schema cache.`,
      null,
    );
  }
  if (matches.length > 1) {
    throw restError(300, "PGRST203", `Could not choose the best candidate function between several overloads of public.${fnName}`);
  }
  const fn = matches[0]!;
  const given = fn.inputs.filter((a) => keys.includes(a.name));

  // Arguments travel as one JSON parameter and are converted by jsonb_to_record with
  // the catalog's types, which is how PostgREST turns a JSON body into named args.
  // (An empty list must be an empty fragment: postgres.js reads [] as a parameter.)
  const named = given.length ? comma(sql, given.map((a) => sql`${sql(a.name)} => _a.${sql(a.name)}`)) : sql``;
  const call = sql`public.${sql(fn.name)}(${named})`;
  const from = given.length
    ? sql`from jsonb_to_record(${sql.json(args as JSONValue)}) as _a(${comma(sql, given.map((a) => sql`${sql(a.name)} ${sql.unsafe(a.type)}`))})`
    : sql``;

  // PostgREST's access mode for POST: READ WRITE only for VOLATILE functions.
  const access = fn.volatile ? "read write" : "read only";
  const extra = fn.statementTimeout ? [{ name: "statement_timeout", value: fn.statementTimeout }] : [];
  // response.status / response.headers, read in the same statement after the call.
  const response = sql`current_setting('response.status', true) as resp_status, current_setting('response.headers', true) as resp_headers`;
  type Out = { body?: string | null; resp_status: string | null; resp_headers: string | null };
  const row = await inRequestTransaction(sql, cache, ctx, access, extra, async (tx): Promise<Out> => {
    if (fn.returnsVoid) return (await tx<Out[]>`select ${call} as _void, ${response} ${from}`)[0]!;
    if (fn.returnsSet) {
      const source = given.length ? sql`${from} cross join lateral ${call} as _r` : sql`from ${call} as _r`;
      return (await tx<Out[]>`select coalesce(json_agg(_r), '[]')::text as body, ${response} ${source}`)[0]!;
    }
    return (await tx<Out[]>`select to_json(${call})::text as body, ${response} ${from}`)[0]!;
  });
  const reply: Reply = fn.returnsVoid
    ? { status: 204 }
    : { status: 200, body: row.body ?? "null", array: fn.returnsSet };
  return withResponseSettings(reply, row.resp_status, row.resp_headers);
}

/** Applies `response.status` / `response.headers` set by the function (references/transactions). */
function withResponseSettings(reply: Reply, status: string | null, headers: string | null): Reply {
  const out: Reply = { ...reply, headers: { ...reply.headers } };
  if (status) {
    if (!/^\d{3}$/.test(status)) throw restError(500, "PGRST112", "response.status guc must be a valid status code");
    out.status = Number(status);
  }
  if (headers) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(headers);
    } catch {
      parsed = undefined;
    }
    const valid = Array.isArray(parsed) && parsed.every((h) => h && typeof h === "object" && Object.keys(h).length === 1 && typeof Object.values(h)[0] === "string");
    if (!valid) throw restError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects with a single key and a string value");
    for (const h of parsed as Record<string, string>[]) {
      const [name, value] = Object.entries(h)[0]!;
      const key = name.toLowerCase();
      const prev = out.headers![key];
      out.headers![key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [String(prev)]), value];
    }
  }
  return out;
}

// ---- table reads --------------------------------------------------------------------

const RESERVED_PARAMS = new Set(["select", "order", "limit", "offset"]);
const UNSUPPORTED_PARAMS = new Set(["and", "or", "not", "columns", "on_conflict"]);
const COMPARISONS: Record<string, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=" };

function column(rel: Relation, name: string): string {
  if (rel.columns.has(name)) return name;
  if (/[():!*]|->|\./.test(name)) throw notSupported(`The select/order/filter expression "${name}" (embedding, aliases, casts, JSON paths)`);
  throw restError(400, "42703", `column ${rel.name}.${name} does not exist`);
}

/** Parses PostgREST's `in.(a,b,"c,d")` list (double quotes protect commas). */
function parseInList(raw: string): string[] {
  const fail = () => restError(400, "PGRST100", `failed to parse filter (in.${raw})`);
  if (!raw.startsWith("(") || !raw.endsWith(")")) throw fail();
  const s = raw.slice(1, -1);
  if (s.trim() === "") return [];
  const values: string[] = [];
  let i = 0;
  for (;;) {
    while (s[i] === " ") i++;
    let value = "";
    if (s[i] === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) value += s[i] === "\\" && i + 1 < s.length ? s[++i] : s[i];
      if (s[i++] !== '"') throw fail();
      while (s[i] === " ") i++;
    } else {
      while (i < s.length && s[i] !== ",") value += s[i++];
      value = value.trim();
    }
    values.push(value);
    if (i >= s.length) return values;
    if (s[i++] !== ",") throw fail();
  }
}

function filterFragment(sql: Sql, rel: Relation, col: string, expr: string): Fragment {
  const ident = sql(column(rel, col));
  // Values go as text parameters cast by the server to the column's type, like
  // PostgREST's untyped literals (postgres.js would otherwise serialize by type).
  const literal = (v: string) => sql`${sql.typed(v, TEXT_OID)}::${sql.unsafe(rel.columns.get(col)!)}`;
  const dot = expr.indexOf(".");
  if (dot < 0) throw restError(400, "PGRST100", `failed to parse filter (${expr})`);
  const op = expr.slice(0, dot);
  const value = expr.slice(dot + 1);
  if (op === "not") throw notSupported(`The negated filter "not.${value}"`);
  if (op in COMPARISONS) return sql`${ident} ${sql.unsafe(COMPARISONS[op]!)} ${literal(value)}`;
  if (op === "is") {
    const is: Record<string, Fragment> = { null: sql`is null`, true: sql`is true`, false: sql`is false`, unknown: sql`is unknown` };
    const fragment = is[value.toLowerCase()];
    if (!fragment) throw restError(400, "PGRST100", `failed to parse filter (is.${value})`);
    return sql`${ident} ${fragment}`;
  }
  if (op === "in") {
    const values = parseInList(value);
    return values.length ? sql`${ident} in (${comma(sql, values.map(literal))})` : sql`false`;
  }
  throw notSupported(`The filter operator "${op}"`);
}

function orderFragment(sql: Sql, rel: Relation, raw: string): Fragment[] {
  return comma(
    sql,
    raw.split(",").map((term) => {
      const [name = "", ...mods] = term.trim().split(".");
      const parts: Fragment[] = [sql`${sql(column(rel, name))}`];
      for (const mod of mods) {
        const known: Record<string, Fragment> = {
          asc: sql`asc`, desc: sql`desc`, nullsfirst: sql`nulls first`, nullslast: sql`nulls last`,
        };
        if (!known[mod]) throw restError(400, "PGRST100", `failed to parse order (${term})`);
        parts.push(known[mod]);
      }
      return sql`${parts.flatMap((p, i) => (i ? [sql` `, p] : [p]))}`;
    }),
  );
}

function nonNegative(name: string, raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d+$/.test(raw)) throw restError(400, "PGRST100", `failed to parse ${name} (${raw})`);
  return Number(raw);
}

async function readTable(
  sql: Sql,
  cache: SchemaCache,
  ctx: RequestContext,
  table: string,
  params: URLSearchParams,
  prefer: string,
  maxRows: number,
): Promise<Reply> {
  let rel = await cache.relation(table);
  if (!rel) rel = await cache.relation(table, true);
  if (!rel) throw restError(404, "PGRST205", `Could not find the table 'public.${table}' in the schema cache`);

  const selectRaw = params.get("select") ?? "*";
  const selected = selectRaw.split(",").map((s) => s.trim()).filter(Boolean);
  if (selected.length > 1 && selected.includes("*")) throw notSupported(`The select list "${selectRaw}" (mixing * with columns)`);
  const columns =
    selected.length === 0 || selected[0] === "*"
      ? sql`*`
      : sql`${comma(sql, selected.map((c) => sql`${sql(column(rel!, c))}`))}`;

  const filters: Fragment[] = [];
  for (const [key, value] of params) {
    if (RESERVED_PARAMS.has(key)) continue;
    if (UNSUPPORTED_PARAMS.has(key)) throw notSupported(`The "${key}" query parameter`);
    filters.push(filterFragment(sql, rel, key, value));
  }
  const where = filters.length ? sql`where ${filters.flatMap((f, i) => (i ? [sql` and `, f] : [f]))}` : sql``;
  const orderRaw = params.get("order");
  const order = orderRaw ? sql`order by ${orderFragment(sql, rel, orderRaw)}` : sql``;
  // Supabase caps every read at `[api] max_rows` (db-max-rows), 1000 by default.
  const limit = Math.min(nonNegative("limit", params.get("limit")) ?? maxRows, maxRows);
  const offset = nonNegative("offset", params.get("offset")) ?? 0;
  const countMode = /count=(exact|planned|estimated)/.exec(prefer)?.[1];
  if (countMode && countMode !== "exact") throw notSupported(`Prefer: count=${countMode}`);

  return inRequestTransaction(sql, cache, ctx, "read only", [], async (tx) => {
    const [row] = await tx<{ body: string; n: number }[]>`
      select coalesce(json_agg(_t), '[]')::text as body, count(*)::int as n
      from (select ${columns} from public.${sql(rel!.name)} ${where} ${order} limit ${limit} offset ${offset}) _t`;
    let total: number | undefined;
    if (countMode) {
      const [c] = await tx<{ n: number }[]>`select count(*)::int as n from public.${sql(rel!.name)} ${where}`;
      total = c!.n;
    }
    const n = row!.n;
    const range = `${n ? `${offset}-${offset + n - 1}` : "*"}/${total ?? "*"}`;
    return { status: 200, body: row!.body, array: true, headers: { "content-range": range } };
  });
}

// ---- HTTP ------------------------------------------------------------------------------

interface Reply {
  status: number;
  body?: string;
  /** The body is a JSON array, so a singular Accept can be honoured. */
  array?: boolean;
  headers?: OutgoingHttpHeaders;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(restError(413, null, "Request body too large for the local PostgREST stand-in"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: string | undefined, headers: OutgoingHttpHeaders = {}, head = false): void {
  const all: OutgoingHttpHeaders = { ...STANDIN_HEADERS, ...headers };
  if (body !== undefined) all["content-type"] ??= "application/json; charset=utf-8";
  res.writeHead(status, all);
  res.end(head ? undefined : body);
}

/** Applies the Accept header: singular object (`.single()`), or plain JSON. */
function negotiate(reply: Reply, accept: string): Reply {
  if (/text\/csv|vnd\.pgrst\.plan|nulls=stripped|application\/geo\+json/.test(accept)) throw notSupported(`The Accept type "${accept}"`);
  if (!accept.includes("application/vnd.pgrst.object+json") || !reply.array) return reply;
  const rows = JSON.parse(reply.body ?? "[]") as unknown[];
  if (rows.length !== 1) {
    throw restError(406, "PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${rows.length} rows`);
  }
  return { ...reply, body: JSON.stringify(rows[0]), headers: { ...reply.headers, "content-type": "application/vnd.pgrst.object+json; charset=utf-8" } };
}

async function handleRest(req: IncomingMessage, url: URL, opts: PlatformOptions, cache: SchemaCache): Promise<Reply> {
  const restPath = url.pathname.slice("/rest/v1".length) || "/";
  const method = req.method ?? "GET";
  const ctx = await authenticate(req, opts.issuer, restPath);
  for (const profile of ["accept-profile", "content-profile"]) {
    const schema = req.headers[profile];
    if (schema !== undefined && schema !== "public") {
      throw restError(406, "PGRST106", "The schema must be one of the following: public", null, null);
    }
  }
  const accept = req.headers.accept ?? "";
  try {
    const rpc = /^\/rpc\/([^/]+)$/.exec(restPath);
    if (rpc) {
      if (method === "POST") return negotiate(await callRpc(opts.sql, cache, ctx, decodeURIComponent(rpc[1]!), await readBody(req)), accept);
      if (method === "GET" || method === "HEAD") throw notSupported("Calling a function with GET/HEAD");
      throw restError(405, "PGRST101", "Only GET or POST requests are allowed for functions");
    }
    const table = /^\/([^/]+)$/.exec(restPath);
    if (table && (method === "GET" || method === "HEAD")) {
      const prefer = String(req.headers.prefer ?? "");
      const reply = await readTable(opts.sql, cache, ctx, decodeURIComponent(table[1]!), url.searchParams, prefer, opts.maxRows ?? 1000);
      return negotiate(reply, accept);
    }
    if (table) throw notSupported(`${method} on a table (writes go through RPCs)`);
    throw notSupported(`${method} ${url.pathname}`);
  } catch (error) {
    if (isPgError(error)) {
      const mapped = fromPgError(error, ctx.role);
      if (mapped.status >= 500) opts.log?.(`[postgrest stand-in] ${method} ${url.pathname}: ${error.code} ${error.message}`);
      throw mapped;
    }
    if (isConnectionError(error)) {
      // PostgREST answers a lost or refused database connection with 503 PGRST001 and
      // reconnects; the driver's pool does the reconnecting here.
      opts.log?.(`[postgrest stand-in] ${method} ${url.pathname}: ${(error as { code?: string }).code}`);
      throw restError(503, "PGRST001", "Database client error. Retrying the connection.");
    }
    throw error;
  }
}

/** postgres.js and socket errors that mean "no usable database connection". */
const CONNECTION_ERROR_CODES = new Set([
  "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT",
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT",
]);
const isConnectionError = (error: unknown) => CONNECTION_ERROR_CODES.has(String((error as { code?: unknown })?.code));

/** Starts the platform server; resolves once it listens. */
export async function startPlatform(opts: PlatformOptions): Promise<PlatformServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const options = { ...opts, log };
  const cache = new SchemaCache(opts.sql);
  const listener = await opts.sql.listen("pgrst", (payload) => {
    if (payload === "" || payload === "reload schema") cache.clear();
  });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://platform.local");
    const head = req.method === "HEAD";
    try {
      if (req.method === "OPTIONS") return send(res, 204, undefined, CORS_PREFLIGHT);
      if (url.pathname === "/auth/v1/.well-known/jwks.json" && (req.method === "GET" || head)) {
        return send(res, 200, JSON.stringify(opts.issuer.jwks), { "cache-control": "public, max-age=600", "x-switchboard-standin": "auth" }, head);
      }
      if (url.pathname === "/_devstack/platform/health") return send(res, 200, '{"status":"ok"}');
      if (url.pathname.startsWith("/auth/v1/")) {
        return send(res, 501, JSON.stringify({
          code: 501,
          error_code: "not_implemented",
          msg: "The local devstack has no Supabase Auth server: only /auth/v1/.well-known/jwks.json is served. Create users with createLocalUser() from packages/devstack/src/jwt.ts.",
        }), { "x-switchboard-standin": "auth" });
      }
      if (url.pathname === "/rest/v1" || url.pathname.startsWith("/rest/v1/")) {
        const reply = await handleRest(req, url, options, cache);
        return send(res, reply.status, reply.status === 204 || reply.body === undefined ? undefined : reply.body, reply.headers, head);
      }
      return send(res, 404, JSON.stringify({ message: "no Route matched with those values" }), { "x-switchboard-standin": "gateway" });
    } catch (error) {
      if (error instanceof RestError) return send(res, error.status, JSON.stringify(error.body), error.headers, head);
      log(`[platform] ${req.method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
      return send(res, 500, JSON.stringify({ code: null, message: "Internal error in the local platform server (see the devstack log)", details: null, hint: null }));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await listener.unlisten().catch(() => {});
    },
  };
}
