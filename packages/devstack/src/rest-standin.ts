/**
 * ============================  LOCAL STAND-IN  ============================
 * PostgREST cannot be installed here, so `/rest/v1` is answered by this deliberately
 * small imitation of PostgREST (docs.postgrest.org: references/api/tables_views,
 * references/api/preferences, references/transactions, references/errors). It covers
 * what supabase-js does for Switchboard's own clients (the SDK, the demo, the README
 * and docs, the dashboard) and nothing more.
 *
 * Every request is one transaction: READ ONLY for reads and for STABLE/IMMUTABLE
 * functions, READ WRITE for writes and VOLATILE functions; the impersonated role's
 * settings, then `role` from the JWT's role claim (anon without one), and
 * `request.jwt.claims`, `request.method`, `request.path`, `request.headers`
 * (lower-cased), `request.cookies` and `search_path` as transaction-local settings. So
 * RLS, column grants and triggers decide exactly as under PostgREST, and a failed
 * statement leaves nothing written.
 *
 * Covered:
 *   POST   /rpc/<fn>      named arguments from a JSON object; scalar, SETOF, composite
 *                         and void results; `response.status` / `response.headers`
 *   GET    /<table>       (and HEAD) `select=` with columns, `alias:col`, `*` and
 *                         to-one embedding along one foreign key (`alias:table(cols)`,
 *                         nested); filters eq, neq, gt, gte, lt, lte, like, ilike
 *                         (`*` for `%`), is (null, not_null, true, false, unknown), in,
 *                         cs, cd, each negatable with `not.`; `or=(…)`, `and=(…)`,
 *                         `not.or=(…)`, `not.and=(…)`, nested; `order=a.desc.nullslast,b`;
 *                         `limit`, `offset`, the `Range` header (GET only), the
 *                         `max_rows` cap; `Prefer: count=exact`; Content-Range, 206, 416
 *   POST   /<table>       insert one object or an array (bulk, `columns=`);
 *                         `Prefer: return=minimal|representation|headers-only` (201;
 *                         Location for headers-only), `missing=default`, `count=exact`
 *   PATCH  /<table>?…     update the filtered rows (204, or 200 with the rows)
 *   DELETE /<table>?…     delete the filtered rows (204, or 200 with the rows)
 *                         (a write's `select=` and `order=` shape the rows it returns)
 *   `Accept: application/vnd.pgrst.object+json` (`.single()`): 406 PGRST116 unless
 *   exactly one row, and a write is then rolled back; Content-Range,
 *   Preference-Applied and Content-Profile as PostgREST sends them; PostgREST's error
 *   JSON and its SQLSTATE → HTTP status table (42501 is 401 for anon, 403 otherwise).
 *
 * Deliberately not covered (answered with 501 SBSTANDIN, so nobody builds on
 * behaviour production would not have): upsert (`resolution=`, `on_conflict`, PUT),
 * to-many, one-to-one-from-the-other-side, many-to-many, ambiguous and hinted
 * (`!inner`, `!fk`) embedding, spreads, embedding by column name, embedded filters
 * and ordering, casts, JSON paths, aggregates; the operators match, imatch,
 * isdistinct, fts/plfts/phfts/wfts, ov, sl, sr, nxl, nxr, adj and `(any)`/`(all)`;
 * `count=planned|estimated`, `tx=`, `handling=strict`, `max-affected`, `timezone=`;
 * limit/offset on writes (PostgREST's limited update/delete); filters on POST; CSV,
 * GeoJSON, explain plans and `nulls=stripped`; bulk RPC calls and GET/HEAD on
 * functions; a table trigger's `response.status`/`response.headers`; schemas other
 * than `public`.
 * Every response carries `x-switchboard-standin: postgrest`.
 * ==========================================================================
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { JSONValue, PendingQuery, Row, Sql, TransactionSql } from "postgres";
import { readBody } from "./http-body.ts";
import { verifyToken, type JwtIssuer, type SupabaseClaims } from "./jwt.ts";

export interface RestStandinOptions {
  sql: Sql;
  issuer: JwtIssuer;
  /** Supabase's `[api] max_rows` (PostgREST db-max-rows) for table reads. Default 1000. */
  maxRows?: number;
  /** Where 5xx details go (they never go to the client). */
  log: (line: string) => void;
}

export interface RestStandin {
  /** Answers one request under /rest/v1. */
  serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
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
  // PostgREST's CORS middleware exposes these, so a browser client can read counts.
  "access-control-expose-headers": "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit",
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
    "The devstack implements RPCs, table reads (filters, select with to-one embedding, order, limit/offset/Range, count=exact) and insert/update/delete; see packages/devstack/src/rest-standin.ts.",
    "Use what the stand-in covers, or test this against a real Supabase project.",
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

interface Column {
  /** format_type() of the column: catalog text, never user input. */
  type: string;
  /** pg_get_expr() of the column default (catalog text), null without one. */
  default: string | null;
}

interface Relation {
  name: string;
  /** pg_class.oid, as text. */
  oid: string;
  /** pg_class.relkind: r (table), p (partitioned), v (view), m (materialized view), f (foreign). */
  kind: string;
  columns: Map<string, Column>;
  /** Primary key columns, in key order. */
  pk: string[];
}

/** A foreign-key path between two relations, as PostgREST's schema cache sees it. */
interface Relationship {
  /** many-to-one (the base table's FK), one-to-many (the target's FK), many-to-many (a junction). */
  kind: "m2o" | "o2m" | "m2m";
  constraint: string;
  /** m2o: the base table's FK columns and the target's referenced columns. */
  columns: string[];
  refColumns: string[];
}

class SchemaCache {
  private functions = new Map<string, Promise<FnOverload[]>>();
  private relations = new Map<string, Promise<Relation | null>>();
  private relationships = new Map<string, Promise<Relationship[]>>();
  private roles = new Map<string, Promise<Setting[]>>();

  constructor(private readonly sql: Sql) {}

  clear(): void {
    this.functions.clear();
    this.relations.clear();
    this.relationships.clear();
    this.roles.clear();
  }

  private cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>, fresh = false): Promise<T> {
    if (fresh) map.delete(key);
    let entry = map.get(key);
    if (!entry) {
      entry = load();
      map.set(key, entry);
      entry.catch(() => map.delete(key));
    }
    return entry;
  }

  /** The impersonated role's user-settable settings (ALTER ROLE … SET), database-specific ones last. */
  roleSettings(role: string): Promise<Setting[]> {
    return this.cached(this.roles, role, () =>
      this.sql<Setting[]>`
        select split_part(c.cfg, '=', 1) as name, substr(c.cfg, strpos(c.cfg, '=') + 1) as value
        from pg_catalog.pg_db_role_setting s
        join pg_catalog.pg_roles r on r.oid = s.setrole
        cross join lateral unnest(s.setconfig) as c(cfg)
        where r.rolname = ${role}
          and s.setdatabase in (0, (select oid from pg_catalog.pg_database where datname = current_database()))
          and exists (select 1 from pg_catalog.pg_settings ps where ps.name = split_part(c.cfg, '=', 1) and ps.context = 'user')
        order by s.setdatabase`.then((rows) => rows.map(({ name, value }) => ({ name, value }))));
  }

  fn(name: string, fresh = false): Promise<FnOverload[]> {
    return this.cached(this.functions, name, () => this.loadFunctions(name), fresh);
  }

  relation(name: string, fresh = false): Promise<Relation | null> {
    return this.cached(this.relations, name, () => this.loadRelation(name), fresh);
  }

  /** The relationships between two relations, in both directions and through junctions. */
  relationshipsBetween(base: Relation, target: Relation): Promise<Relationship[]> {
    return this.cached(this.relationships, `${base.oid}:${target.oid}`, () => this.loadRelationships(base.oid, target.oid));
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
    const rows = await this.sql<{ oid: string; kind: string; columns: string[]; types: string[]; defaults: string[]; pk: string[] }[]>`
      select
        c.oid::text as oid,
        c.relkind::text as kind,
        array(select a.attname::text from pg_catalog.pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
        array(select format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as types,
        array(select case when a.attgenerated = '' then coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') else '' end
              from pg_catalog.pg_attribute a
              left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as defaults,
        array(select a.attname::text
              from pg_catalog.pg_index i
              cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
              join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = c.oid and i.indisprimary order by k.ord) as pk
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relname = ${name} and c.relkind in ('r', 'v', 'm', 'p', 'f')`;
    const row = rows[0];
    if (!row) return null;
    const columns = new Map(row.columns.map((col, i) => [col, { type: row.types[i]!, default: row.defaults[i] || null }]));
    return { name, oid: row.oid, kind: row.kind, columns, pk: row.pk };
  }

  private async loadRelationships(base: string, target: string): Promise<Relationship[]> {
    // PostgREST's relationships: the base table's FKs to the target (many-to-one), the
    // target's FKs to the base (one-to-many or one-to-one), and junction tables holding
    // an FK to each whose columns are part of the junction's primary key (many-to-many).
    return this.sql<Relationship[]>`
      with fk as (
        select c.conname::text as name, c.conrelid, c.confrelid, c.conkey,
          array(select a.attname::text from unnest(c.conkey) with ordinality as k(attnum, ord)
                join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum order by k.ord) as cols,
          array(select a.attname::text from unnest(c.confkey) with ordinality as k(attnum, ord)
                join pg_catalog.pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum order by k.ord) as refcols
        from pg_catalog.pg_constraint c
        where c.contype = 'f'
      )
      select 'm2o' as kind, name as constraint, cols as columns, refcols as "refColumns"
      from fk where conrelid = ${base}::oid and confrelid = ${target}::oid
      union all
      select 'o2m', name, cols, refcols
      from fk where conrelid = ${target}::oid and confrelid = ${base}::oid
      union all
      select 'm2m', f1.name || ', ' || f2.name, f1.cols, f2.cols
      from fk f1
      join fk f2 on f2.conrelid = f1.conrelid and f2.name <> f1.name
      join pg_catalog.pg_index i on i.indrelid = f1.conrelid and i.indisprimary
      where f1.confrelid = ${base}::oid and f2.confrelid = ${target}::oid
        and f1.conkey <@ (i.indkey::int2[]) and f2.conkey <@ (i.indkey::int2[])`.then((rows) => [...rows]);
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
 * transaction-scoped request settings, then the main query. Anything `work` throws
 * rolls the transaction back.
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
  // PostgREST challenges a 401 from the database with `WWW-Authenticate: Bearer`.
  return new RestError(status, { code: error.code, message: error.message, details: error.detail ?? null, hint: error.hint ?? null },
    status === 401 ? { "www-authenticate": "Bearer" } : {});
}

// ---- shared helpers --------------------------------------------------------------------

function comma(sql: Sql, parts: Fragment[]): Fragment[] {
  return parts.flatMap((part, i) => (i ? [sql`, `, part] : [part]));
}

function joined(sql: Sql, parts: Fragment[], separator: string): Fragment {
  return sql`${parts.flatMap((part, i) => (i ? [sql.unsafe(separator), part] : [part]))}`;
}

interface Reply {
  status: number;
  body?: string;
  /** The body is a JSON array, so a singular Accept can be honoured. */
  array?: boolean;
  headers?: OutgoingHttpHeaders;
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

// ---- Prefer ----------------------------------------------------------------------------

interface Preferences {
  return?: "representation" | "minimal" | "headers-only";
  count?: "exact" | "planned" | "estimated";
  missing?: "default" | "null";
  resolution?: string;
  tx?: string;
  handling?: "strict" | "lenient";
  maxAffected?: string;
  timezone?: string;
}

/** RFC 7240 as PostgREST reads it: comma-separated, across headers; the first of each kind wins. */
function parsePrefer(header: string | string[] | undefined): Preferences {
  const prefs: Preferences = {};
  const tokens = (Array.isArray(header) ? header.join(",") : header ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  const known: Record<string, (value: string) => void> = {
    return: (v) => { if (["representation", "minimal", "headers-only"].includes(v)) prefs.return ??= v as Preferences["return"]; },
    count: (v) => { if (["exact", "planned", "estimated"].includes(v)) prefs.count ??= v as Preferences["count"]; },
    missing: (v) => { if (v === "default" || v === "null") prefs.missing ??= v; },
    resolution: (v) => { if (v === "merge-duplicates" || v === "ignore-duplicates") prefs.resolution ??= v; },
    tx: (v) => { if (v === "commit" || v === "rollback") prefs.tx ??= v; },
    handling: (v) => { if (v === "strict" || v === "lenient") prefs.handling ??= v; },
    "max-affected": (v) => { prefs.maxAffected ??= v; },
    timezone: (v) => { prefs.timezone ??= v; },
  };
  for (const token of tokens) {
    const eq = token.indexOf("=");
    if (eq > 0) known[token.slice(0, eq)]?.(token.slice(eq + 1));
  }
  return prefs;
}

/** What the stand-in does not do with Prefer answers 501; unknown preferences are ignored (handling=lenient). */
function refuseUnsupportedPreferences(prefs: Preferences): void {
  if (prefs.count && prefs.count !== "exact") throw notSupported(`Prefer: count=${prefs.count}`);
  if (prefs.tx) throw notSupported(`Prefer: tx=${prefs.tx}`);
  if (prefs.handling === "strict" || prefs.maxAffected !== undefined) throw notSupported("Prefer: handling=strict / max-affected");
  if (prefs.timezone !== undefined) throw notSupported("Prefer: timezone");
}

/** Preference-Applied in PostgREST's order: resolution, missing, return, count, handling. */
function preferenceApplied(prefs: Preferences, applies: { missing?: boolean; return?: boolean; count?: boolean }): Record<string, string> {
  const values = [
    applies.missing && prefs.missing ? `missing=${prefs.missing}` : null,
    applies.return && prefs.return ? `return=${prefs.return}` : null,
    applies.count && prefs.count ? `count=${prefs.count}` : null,
    prefs.handling === "lenient" ? "handling=lenient" : null,
  ].filter((v): v is string => v !== null);
  return values.length ? { "preference-applied": values.join(", ") } : {};
}

/** PostgREST's Content-Range: `lower-upper/total`, `*` for an empty window or an unknown total. */
function contentRange(lower: number, upper: number, total: number | undefined): string {
  const range = total !== 0 && lower <= upper ? `${lower}-${upper}` : "*";
  return `${range}/${total ?? "*"}`;
}

// ---- RPC -----------------------------------------------------------------------------

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

// ---- select, filters, order ------------------------------------------------------------

/** One `select=` item. */
type SelectItem =
  | { kind: "star" }
  | { kind: "column"; name: string; alias?: string }
  | { kind: "embed"; target: string; alias?: string; items: SelectItem[] };

/** Splits at top-level commas: outside parentheses and double quotes. */
function splitTopLevel(s: string, fail: () => RestError): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === "\\" && i + 1 < s.length) {
        current += c + s[++i];
        continue;
      }
      if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "(") depth++;
    else if (c === ")") {
      if (--depth < 0) throw fail();
    } else if (c === "," && depth === 0) {
      parts.push(current);
      current = "";
      continue;
    }
    current += c;
  }
  if (depth !== 0 || quoted) throw fail();
  parts.push(current);
  return parts;
}

const unquote = (name: string) => (/^".*"$/.test(name) ? name.slice(1, -1) : name);

function parseSelect(raw: string, top = true): SelectItem[] {
  const fail = () => restError(400, "PGRST100", `failed to parse select parameter (${raw})`);
  if (top && raw.trim() === "") return [{ kind: "star" }];
  return splitTopLevel(raw, fail).map((part): SelectItem => {
    const item = part.trim();
    if (item === "") throw fail();
    if (item === "*") return { kind: "star" };
    if (item.startsWith("...")) throw notSupported(`The spread "${item}"`);
    const paren = item.indexOf("(");
    if (paren >= 0) {
      if (!item.endsWith(")")) throw fail();
      const head = item.slice(0, paren).trim();
      const inner = item.slice(paren + 1, -1);
      if (head.includes("!")) throw notSupported(`The embedding hint or join type "${head}"`);
      const colon = head.indexOf(":");
      const alias = colon >= 0 ? unquote(head.slice(0, colon).trim()) : undefined;
      const target = unquote((colon >= 0 ? head.slice(colon + 1) : head).trim());
      if (target === "" || /[.:>-]/.test(target)) throw notSupported(`The select expression "${item}" (aggregates, casts, JSON paths)`);
      if (inner.trim() === "") throw notSupported(`The embedding "${item}" with an empty select (filter-only embedding)`);
      return { kind: "embed", target, alias, items: parseSelect(inner, false) };
    }
    if (item.includes("::")) throw notSupported(`The cast "${item}"`);
    const colon = item.indexOf(":");
    const alias = colon >= 0 ? unquote(item.slice(0, colon).trim()) : undefined;
    const name = unquote((colon >= 0 ? item.slice(colon + 1) : item).trim());
    if (name === "" || alias === "") throw fail();
    if (/->|[.:*]/.test(name)) throw notSupported(`The select expression "${item}" (aggregates, casts, JSON paths)`);
    return { kind: "column", name, alias };
  });
}

function columnName(rel: Relation, name: string): string {
  if (rel.columns.has(name)) return name;
  if (/[():!*"]|->|\./.test(name)) throw notSupported(`The expression "${name}" (embedded resources, casts, JSON paths)`);
  throw restError(400, "42703", `column ${rel.name}.${name} does not exist`);
}

/** Compiles select items against one relation under a table alias, for reads and for a write's representation. */
class QueryBuilder {
  private aliases = 0;

  constructor(
    readonly sql: Sql,
    private readonly cache: SchemaCache,
  ) {}

  ref(alias: string, col: string): Fragment {
    return this.sql`${this.sql(alias)}.${this.sql(col)}`;
  }

  /** Column items first, then embeds: PostgREST's output order. Also returns the base columns the items read. */
  async select(rel: Relation, items: SelectItem[], alias: string): Promise<{ list: Fragment; columns: Set<string>; star: boolean }> {
    const { sql } = this;
    const plain: Fragment[] = [];
    const embeds: Fragment[] = [];
    const columns = new Set<string>();
    let star = false;
    for (const item of items) {
      if (item.kind === "star") {
        star = true;
        plain.push(sql`${sql(alias)}.*`);
      } else if (item.kind === "column") {
        const col = columnName(rel, item.name);
        columns.add(col);
        plain.push(sql`${this.ref(alias, col)} as ${sql(item.alias ?? col)}`);
      } else {
        const { fragment, fkColumns } = await this.embed(rel, item, alias);
        fkColumns.forEach((c) => columns.add(c));
        embeds.push(fragment);
      }
    }
    return { list: sql`${comma(sql, [...plain, ...embeds])}`, columns, star };
  }

  /** A to-one embed along the base table's only foreign key to the target: an object or null. */
  private async embed(rel: Relation, item: Extract<SelectItem, { kind: "embed" }>, alias: string): Promise<{ fragment: Fragment; fkColumns: string[] }> {
    const { sql } = this;
    const noRelationship = () =>
      restError(
        400,
        "PGRST200",
        `Could not find a relationship between '${rel.name}' and '${item.target}' in the schema cache`,
        `Searched for a foreign key relationship between '${rel.name}' and '${item.target}' in the schema 'public', but no matches were found.`,
      );
    if (rel.columns.has(item.target)) throw notSupported(`Embedding by a column name ("${item.target}(…)")`);
    let target = await this.cache.relation(item.target);
    if (!target) target = await this.cache.relation(item.target, true);
    if (!target) throw noRelationship();
    if (!["r", "p"].includes(rel.kind) || !["r", "p"].includes(target.kind)) throw notSupported("Embedding through views");
    const relationships = await this.cache.relationshipsBetween(rel, target);
    if (relationships.length === 0) throw noRelationship();
    if (relationships.length > 1) throw notSupported(`Embedding "${item.target}", which '${rel.name}' reaches through several relationships`);
    const [relationship] = relationships as [Relationship];
    if (relationship.kind !== "m2o") throw notSupported(`Embedding "${item.target}" (a to-many or one-to-one-from-the-other-side relationship)`);
    const inner = `_e${++this.aliases}`;
    const row = `_j${this.aliases}`;
    const { list } = await this.select(target, item.items, inner);
    const on = joined(sql, relationship.columns.map((col, i) => sql`${this.ref(inner, relationship.refColumns[i]!)} = ${this.ref(alias, col)}`), " and ");
    const fragment = sql`(select row_to_json(${sql(row)}) from (select ${list} from public.${sql(target.name)} as ${sql(inner)} where ${on}) as ${sql(row)}) as ${sql(item.alias ?? item.target)}`;
    return { fragment, fkColumns: relationship.columns };
  }
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

const COMPARISONS: Record<string, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=", cs: "@>", cd: "<@" };
const UNSUPPORTED_OPERATORS = new Set(["match", "imatch", "isdistinct", "fts", "plfts", "phfts", "wfts", "ov", "sl", "sr", "nxl", "nxr", "adj"]);

/** One `col=[not.]op.value` filter on a column of `rel` under `alias`. */
function filterFragment(sql: Sql, rel: Relation, alias: string, col: string, expr: string, original = expr): Fragment {
  const name = columnName(rel, col);
  const ident = sql`${sql(alias)}.${sql(name)}`;
  // Values go as text parameters cast by the server to the column's type, like
  // PostgREST's untyped literals (postgres.js would otherwise serialize by type).
  const literal = (v: string) => sql`${sql.typed(v, TEXT_OID)}::${sql.unsafe(rel.columns.get(name)!.type)}`;
  const fail = () => restError(400, "PGRST100", `failed to parse filter (${original})`);
  const dot = expr.indexOf(".");
  if (dot < 0) throw fail();
  const op = expr.slice(0, dot);
  const value = expr.slice(dot + 1);
  if (op === "not") return sql`not (${filterFragment(sql, rel, alias, col, value, original)})`;
  if (op in COMPARISONS) return sql`${ident} ${sql.unsafe(COMPARISONS[op]!)} ${literal(value)}`;
  if (op === "like" || op === "ilike") {
    // `*` stands for `%` (it needs no URL escaping); the pattern is text, as PostgREST sends it.
    return sql`${ident} ${sql.unsafe(op === "like" ? "like" : "ilike")} ${sql.typed(value.replace(/\*/g, "%"), TEXT_OID)}`;
  }
  if (op === "is") {
    const is: Record<string, Fragment> = {
      null: sql`is null`, not_null: sql`is not null`, true: sql`is true`, false: sql`is false`, unknown: sql`is unknown`,
    };
    const fragment = is[value.toLowerCase()];
    if (!fragment) throw fail();
    return sql`${ident} ${fragment}`;
  }
  if (op === "in") {
    const values = parseInList(value);
    return values.length ? sql`${ident} in (${comma(sql, values.map(literal))})` : sql`false`;
  }
  if (UNSUPPORTED_OPERATORS.has(op) || /^\w+\((any|all)\)$/.test(op) || /^\w*fts\(/.test(op)) throw notSupported(`The filter operator "${op}"`);
  throw fail();
}

/** `or=(…)` / `and=(…)`: a logic tree of filters and nested `[not.]and(…)` / `[not.]or(…)`. */
function logicFragment(sql: Sql, rel: Relation, alias: string, operator: "and" | "or", raw: string, negated: boolean): Fragment {
  const fail = () => restError(400, "PGRST100", `failed to parse logic tree (${raw})`);
  if (!raw.startsWith("(") || !raw.endsWith(")")) throw fail();
  const items = splitTopLevel(raw.slice(1, -1), fail).map((part) => {
    const item = part.trim();
    const nested = /^(not\.)?(and|or)(\(.*\))$/s.exec(item);
    if (nested) return logicFragment(sql, rel, alias, nested[2] as "and" | "or", nested[3]!, Boolean(nested[1]));
    const dot = item.indexOf(".");
    if (dot <= 0) throw fail();
    const col = item.slice(0, dot);
    let expr = item.slice(dot + 1);
    // Inside a logic tree a value may be double-quoted to protect `,` `.` `(` `)`.
    const quoted = /^((?:not\.)?\w+\.)"((?:[^"\\]|\\.)*)"$/s.exec(expr);
    if (quoted) expr = quoted[1]! + quoted[2]!.replace(/\\(.)/g, "$1");
    return filterFragment(sql, rel, alias, col, expr, item);
  });
  if (items.length === 0) throw fail();
  const tree = sql`(${joined(sql, items, operator === "and" ? " and " : " or ")})`;
  return negated ? sql`not ${tree}` : tree;
}

const LOGIC_PARAMS: Record<string, { operator: "and" | "or"; negated: boolean }> = {
  or: { operator: "or", negated: false }, and: { operator: "and", negated: false },
  "not.or": { operator: "or", negated: true }, "not.and": { operator: "and", negated: true },
};

/** The WHERE conditions of the query string; `reserved` parameters are not filters. */
function whereFragment(sql: Sql, rel: Relation, alias: string, params: URLSearchParams, reserved: Set<string>): Fragment | null {
  const conditions: Fragment[] = [];
  for (const [key, value] of params) {
    if (reserved.has(key)) continue;
    const logic = LOGIC_PARAMS[key];
    if (logic) {
      conditions.push(logicFragment(sql, rel, alias, logic.operator, value, logic.negated));
      continue;
    }
    if (key.includes(".")) throw notSupported(`The query parameter "${key}" (filters, order or limits on embedded resources)`);
    conditions.push(filterFragment(sql, rel, alias, key, value, `${value}`));
  }
  return conditions.length ? joined(sql, conditions, " and ") : null;
}

function orderFragment(sql: Sql, rel: Relation, alias: string, raw: string): Fragment {
  return sql`${comma(
    sql,
    raw.split(",").map((term) => {
      const [name = "", ...mods] = term.trim().split(".");
      const parts: Fragment[] = [sql`${sql(alias)}.${sql(columnName(rel, name))}`];
      for (const mod of mods) {
        const known: Record<string, Fragment> = {
          asc: sql`asc`, desc: sql`desc`, nullsfirst: sql`nulls first`, nullslast: sql`nulls last`,
        };
        if (!known[mod]) throw restError(400, "PGRST100", `failed to parse order (${term})`);
        parts.push(known[mod]);
      }
      return joined(sql, parts, " ");
    }),
  )}`;
}

// ---- ranges ----------------------------------------------------------------------------

interface Window {
  offset: number;
  /** null: every row (up to max_rows). */
  limit: number | null;
}

function integerParam(name: string, raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (!/^-?\d+$/.test(raw)) throw restError(400, "PGRST100", `failed to parse ${name} (${raw})`);
  return Number(raw);
}

const rangeNotSatisfiable = (details: string, headers: Record<string, string> = {}) =>
  new RestError(416, { code: "PGRST103", message: "Requested range not satisfiable", details, hint: null }, headers);

/**
 * PostgREST's top-level range: `offset`/`limit` intersected with a `Range: a-b` header
 * (honoured on GET only, RFC 9110); an empty intersection is a 416 unless `limit=0`.
 */
function requestWindow(method: string, params: URLSearchParams, rangeHeader: string | undefined): Window {
  const offset = integerParam("offset", params.get("offset")) ?? 0;
  if (offset < 0) throw restError(400, "PGRST100", `failed to parse offset (${offset})`);
  const limit = integerParam("limit", params.get("limit"));
  if (limit === 0) return { offset, limit: 0 };
  let lower = offset;
  let upper = limit === undefined ? Infinity : offset + limit - 1;
  let headerEmpty = false;
  const header = method === "GET" ? /^(\d+)-(\d*)$/.exec(rangeHeader?.trim() ?? "") : null;
  if (header) {
    const from = Number(header[1]);
    const to = header[2] === "" ? Infinity : Number(header[2]);
    headerEmpty = from > to;
    lower = Math.max(lower, from);
    upper = Math.min(upper, to);
  }
  if (lower > upper) {
    throw rangeNotSatisfiable(headerEmpty
      ? "The lower boundary must be lower than or equal to the upper boundary in the Range header."
      : "Limit should be greater than or equal to zero.");
  }
  return { offset: lower, limit: upper === Infinity ? null : upper - lower + 1 };
}

// ---- tables --------------------------------------------------------------------------------

interface TableRequest {
  sql: Sql;
  cache: SchemaCache;
  ctx: RequestContext;
  rel: Relation;
  params: URLSearchParams;
  prefs: Preferences;
  singular: boolean;
  maxRows: number;
  req: IncomingMessage;
}

const SINGULAR = "application/vnd.pgrst.object+json";
const notSingle = (n: number) =>
  restError(406, "PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${n} rows`);

/** Parses the Accept header: plain JSON or the singular object; everything else is 501. */
function wantsSingular(accept: string): boolean {
  if (/text\/csv|vnd\.pgrst\.plan|nulls=stripped|application\/geo\+json/.test(accept)) throw notSupported(`The Accept type "${accept}"`);
  return accept.includes("application/vnd.pgrst.object");
}

async function findRelation(cache: SchemaCache, table: string): Promise<Relation> {
  const rel = (await cache.relation(table)) ?? (await cache.relation(table, true));
  if (!rel) throw restError(404, "PGRST205", `Could not find the table 'public.${table}' in the schema cache`);
  return rel;
}

const READ_PARAMS = new Set(["select", "order", "limit", "offset"]);

async function readTable(t: TableRequest): Promise<Reply> {
  const { sql, rel, params, prefs } = t;
  refuseUnsupportedPreferences(prefs);
  for (const key of ["columns", "on_conflict"]) if (params.has(key)) throw notSupported(`The "${key}" query parameter on a read`);
  const builder = new QueryBuilder(sql, t.cache);
  const { list } = await builder.select(rel, parseSelect(params.get("select") ?? "*"), "_src");
  const condition = whereFragment(sql, rel, "_src", params, READ_PARAMS);
  const where = condition ? sql`where ${condition}` : sql``;
  const orderRaw = params.get("order");
  const order = orderRaw ? sql`order by ${orderFragment(sql, rel, "_src", orderRaw)}` : sql``;
  const window = requestWindow(t.ctx.method, params, t.req.headers.range);
  // Supabase caps every read at `[api] max_rows` (db-max-rows), 1000 by default.
  const limit = Math.min(window.limit ?? t.maxRows, t.maxRows);
  const counting = prefs.count === "exact";

  return inRequestTransaction(sql, t.cache, t.ctx, "read only", [], async (tx) => {
    const [row] = await tx<{ body: string; n: number }[]>`
      select coalesce(json_agg(_t), '[]')::text as body, count(*)::int as n
      from (select ${list} from public.${sql(rel.name)} as _src ${where} ${order} limit ${limit} offset ${window.offset}) _t`;
    let total: number | undefined;
    if (counting) {
      const [c] = await tx<{ n: number }[]>`select count(*)::int as n from public.${sql(rel.name)} as _src ${where}`;
      total = c!.n;
    }
    const n = row!.n;
    const lower = window.offset;
    const upper = lower + n - 1;
    const headers: OutgoingHttpHeaders = { "content-range": contentRange(lower, upper, total), ...preferenceApplied(prefs, { count: true }) };
    if (total !== undefined && lower > total) {
      throw rangeNotSatisfiable(`An offset of ${lower} was requested, but there are only ${total} rows.`, headers as Record<string, string>);
    }
    const status = total !== undefined && n < total ? 206 : 200;
    return singularize({ status, body: row!.body, array: true, headers }, t.singular);
  });
}

/** The singular object for `.single()`: exactly one row, else 406 (thrown inside the transaction, so a write rolls back). */
function singularize(reply: Reply, singular: boolean, rows?: number): Reply {
  if (!singular) return reply;
  if (reply.body === undefined) {
    if (rows !== 1) throw notSingle(rows ?? 0);
    return reply;
  }
  const parsed = JSON.parse(reply.body) as unknown[];
  if (parsed.length !== 1) throw notSingle(parsed.length);
  return { ...reply, body: JSON.stringify(parsed[0]), array: false, headers: { ...reply.headers, "content-type": `${SINGULAR}; charset=utf-8` } };
}

/** The request body of a write: JSON only, an object (or for POST an array of objects). */
async function writePayload(t: TableRequest, allowArray: boolean): Promise<{ rows: Record<string, unknown>[]; keys: string[] }> {
  const type = String(t.req.headers["content-type"] ?? "application/json").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw notSupported(`The Content-Type "${type}" for a write`);
  const text = await readRequestBody(t.req);
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw restError(400, "PGRST102", "Empty or invalid json");
  }
  if (Array.isArray(payload) && !allowArray) throw notSupported("A JSON array body on PATCH");
  const columnsParam = t.params.get("columns");
  // Anything but an object or an array is taken as an empty array, as PostgREST does.
  const rows = Array.isArray(payload) ? payload : payload !== null && typeof payload === "object" ? [payload] : [];
  // Without `columns=` PostgREST checks the objects itself; with it, Postgres does.
  if (columnsParam === null && rows.some((r) => r === null || typeof r !== "object" || Array.isArray(r))) {
    throw restError(400, "PGRST102", "All object keys must match");
  }
  const objects = rows as Record<string, unknown>[];
  let keys: string[];
  if (columnsParam !== null) {
    keys = [...new Set(columnsParam.split(",").map((c) => unquote(c.trim())).filter(Boolean))];
  } else {
    // Without `columns=`, every object must have the first one's keys.
    keys = objects.length ? Object.keys(objects[0]!) : [];
    const canonical = [...keys].sort().join("\u0000");
    if (objects.some((o) => Object.keys(o).sort().join("\u0000") !== canonical)) throw restError(400, "PGRST102", "All object keys must match");
  }
  for (const key of keys) {
    if (!t.rel.columns.has(key)) throw restError(400, "PGRST204", `Could not find the '${key}' column of '${t.rel.name}' in the schema cache`);
  }
  return { rows: objects, keys };
}

/**
 * The payload as a record set, as PostgREST reads it: `json_to_recordset` with the
 * columns' types, and with `missing=default` each object laid over the columns' defaults.
 */
function payloadSource(t: TableRequest, rows: Record<string, unknown>[], keys: string[]): Fragment {
  const { sql, rel } = t;
  const typed = comma(sql, keys.map((k) => sql`${sql(k)} ${sql.unsafe(rel.columns.get(k)!.type)}`));
  const defaults = t.prefs.missing === "default" ? keys.filter((k) => rel.columns.get(k)!.default !== null) : [];
  if (defaults.length) {
    const defs = sql`jsonb_build_object(${comma(sql, defaults.map((k) => sql`${sql.typed(k, TEXT_OID)}::text, ${sql.unsafe(rel.columns.get(k)!.default!)}`))})`;
    const json = sql`${sql.typed(JSON.stringify(rows), TEXT_OID)}::jsonb`;
    return sql`jsonb_to_recordset((select coalesce(jsonb_agg(${defs} || _elem), '[]') from jsonb_array_elements(${json}) as _elem)) as _(${typed})`;
  }
  return sql`json_to_recordset(${sql.typed(JSON.stringify(rows), TEXT_OID)}::json) as _(${typed})`;
}

interface MutationShape {
  /** What RETURNING lists: the representation's columns, the primary key, or `1`. */
  returning: Fragment;
  /** The outer statement over `pgrst_source`. */
  result: Fragment;
}

/** RETURNING and the outer select for a write, by `Prefer: return=`. */
async function mutationShape(t: TableRequest): Promise<MutationShape> {
  const { sql, rel, prefs } = t;
  if (prefs.return === "representation") {
    const builder = new QueryBuilder(sql, t.cache);
    const { list, columns, star } = await builder.select(rel, parseSelect(t.params.get("select") ?? "*"), "pgrst_source");
    // `order=` orders the returned rows (a write's own limit/offset are not supported).
    const orderRaw = t.params.get("order");
    const order = orderRaw ? sql`order by ${orderFragment(sql, rel, "pgrst_source", orderRaw)}` : sql``;
    // Only the columns the representation reads (RETURNING needs SELECT on them and the row
    // must pass the SELECT policies), as PostgREST returns them.
    const returning = star ? sql`_src.*` : columns.size ? sql`${comma(sql, [...columns].map((c) => sql`_src.${sql(c)}`))}` : sql`1`;
    return {
      returning,
      result: sql`select count(*)::int as n, coalesce(json_agg(_t), '[]')::text as body, null::text as location
        from (select ${list} from pgrst_source ${order}) _t`,
    };
  }
  if (prefs.return === "headers-only" && t.ctx.method === "POST" && rel.pk.length) {
    return {
      returning: sql`${comma(sql, rel.pk.map((c) => sql`_src.${sql(c)}`))}`,
      result: sql`select (select count(*)::int from pgrst_source) as n, null::text as body,
        (select row_to_json(_l)::text from (select * from pgrst_source limit 1) _l) as location`,
    };
  }
  // "For mutation cases where there's no ?select, we return 1 to know how many rows were modified."
  return { returning: sql`1`, result: sql`select count(*)::int as n, null::text as body, null::text as location from pgrst_source` };
}

/** Runs a write's `with pgrst_source as (…) select …` and shapes the reply. */
async function runMutation(t: TableRequest, statement: (returning: Fragment) => Fragment, status: (rows: number) => number,
  applies: { missing: boolean }): Promise<Reply> {
  const { sql, prefs } = t;
  const shape = await mutationShape(t);
  return inRequestTransaction(sql, t.cache, t.ctx, "read write", [], async (tx) => {
    const [row] = await tx<{ n: number; body: string | null; location: string | null }[]>`
      with pgrst_source as (${statement(shape.returning)}) ${shape.result}`;
    const n = row!.n;
    const total = prefs.count === "exact" ? n : undefined;
    const headers: OutgoingHttpHeaders = {
      // POST and DELETE answer `*/…`; PATCH names the affected rows (PostgREST's Response.hs).
      "content-range": t.ctx.method === "PATCH" ? contentRange(0, n - 1, total) : contentRange(1, 0, total),
      ...preferenceApplied(prefs, { missing: applies.missing, return: true, count: true }),
    };
    if (row!.location) {
      const pk = JSON.parse(row!.location) as Record<string, unknown>;
      const query = t.rel.pk.map((c) => `${encodeURIComponent(c)}=${encodeURIComponent(`eq.${pk[c] === null ? "null" : String(pk[c])}`)}`).join("&");
      headers.location = `/${t.rel.name}?${query}`;
    }
    const reply: Reply = prefs.return === "representation"
      ? { status: status(n), body: row!.body ?? "[]", array: true, headers }
      : { status: status(n), headers };
    return singularize(reply, t.singular, n);
  });
}

const WRITE_PARAMS = new Set(["select", "columns", "order"]);

async function insertRows(t: TableRequest): Promise<Reply> {
  const { sql, rel, params, prefs } = t;
  refuseUnsupportedPreferences(prefs);
  if (prefs.resolution || params.has("on_conflict")) throw notSupported("Upsert (Prefer: resolution=…, on_conflict)");
  for (const key of params.keys()) if (!WRITE_PARAMS.has(key)) throw notSupported(`The query parameter "${key}" on an insert`);
  const { rows, keys } = await writePayload(t, true);
  const target = sql`public.${sql(rel.name)} as _src`;
  const statement = (returning: Fragment) => keys.length
    ? sql`insert into ${target} (${comma(sql, keys.map((k) => sql`${sql(k)}`))})
        select ${comma(sql, keys.map((k) => sql`_.${sql(k)}`))} from ${payloadSource(t, rows, keys)} returning ${returning}`
    // `{}` or `[{}, {}]`: one row of defaults per object.
    : sql`insert into ${target} select from json_array_elements(${sql.typed(JSON.stringify(rows), TEXT_OID)}::json) as _ returning ${returning}`;
  return runMutation(t, statement, () => 201, { missing: true });
}

async function updateRows(t: TableRequest): Promise<Reply> {
  const { sql, rel, params, prefs } = t;
  refuseUnsupportedPreferences(prefs);
  for (const key of ["limit", "offset", "on_conflict"]) if (params.has(key)) throw notSupported(`The "${key}" query parameter on an update`);
  const { rows, keys } = await writePayload(t, false);
  const condition = whereFragment(sql, rel, "_src", params, WRITE_PARAMS);
  const where = condition ? sql`where ${condition}` : sql``;
  const statement = (returning: Fragment) => keys.length
    ? sql`update public.${sql(rel.name)} as _src set ${comma(sql, keys.map((k) => sql`${sql(k)} = pgrst_body.${sql(k)}`))}
        from (select ${comma(sql, keys.map((k) => sql`_.${sql(k)}`))} from ${payloadSource(t, rows, keys)}) as pgrst_body
        ${where} returning ${returning}`
    // An empty object updates nothing: "selecting an empty resultset from mainQi gives us the column names".
    : sql`select ${returning} from public.${sql(rel.name)} as _src where false`;
  return runMutation(t, statement, () => (prefs.return === "representation" ? 200 : 204), { missing: true });
}

async function deleteRows(t: TableRequest): Promise<Reply> {
  const { sql, rel, params, prefs } = t;
  refuseUnsupportedPreferences(prefs);
  for (const key of ["limit", "offset", "on_conflict", "columns"]) if (params.has(key)) throw notSupported(`The "${key}" query parameter on a delete`);
  const condition = whereFragment(sql, rel, "_src", params, WRITE_PARAMS);
  const where = condition ? sql`where ${condition}` : sql``;
  const statement = (returning: Fragment) => sql`delete from public.${sql(rel.name)} as _src ${where} returning ${returning}`;
  return runMutation(t, statement, () => (prefs.return === "representation" ? 200 : 204), { missing: false });
}

// ---- HTTP ------------------------------------------------------------------------------

/** The request body, at most MAX_BODY bytes. */
const readRequestBody = (req: IncomingMessage) => readBody(req, MAX_BODY, () => restError(413, null, "Request body too large for the local PostgREST stand-in"));

function send(res: ServerResponse, status: number, body: string | undefined, headers: OutgoingHttpHeaders = {}, head = false): void {
  const all: OutgoingHttpHeaders = { ...STANDIN_HEADERS, ...headers };
  if (body !== undefined) all["content-type"] ??= "application/json; charset=utf-8";
  res.writeHead(status, all);
  res.end(head ? undefined : body);
}

async function handleRest(req: IncomingMessage, url: URL, opts: RestStandinOptions, cache: SchemaCache): Promise<Reply> {
  const restPath = url.pathname.slice("/rest/v1".length) || "/";
  const method = req.method ?? "GET";
  const ctx = await authenticate(req, opts.issuer, restPath);
  for (const profile of ["accept-profile", "content-profile"]) {
    const schema = req.headers[profile];
    if (schema !== undefined && schema !== "public") {
      throw restError(406, "PGRST106", "The schema must be one of the following: public", null, null);
    }
  }
  // A schema negotiated by profile header is named in the response (PostgREST's Content-Profile).
  const profiled = req.headers[method === "GET" || method === "HEAD" ? "accept-profile" : "content-profile"] !== undefined;
  const withProfile = (reply: Reply): Reply =>
    profiled && reply.body !== undefined ? { ...reply, headers: { ...reply.headers, "content-profile": "public" } } : reply;
  const accept = req.headers.accept ?? "";
  try {
    const rpc = /^\/rpc\/([^/]+)$/.exec(restPath);
    if (rpc) {
      if (method === "POST") {
        const singular = wantsSingular(accept);
        const reply = await callRpc(opts.sql, cache, ctx, decodeURIComponent(rpc[1]!), await readRequestBody(req));
        return withProfile(reply.array ? singularize(reply, singular) : reply);
      }
      if (method === "GET" || method === "HEAD") throw notSupported("Calling a function with GET/HEAD");
      throw restError(405, "PGRST101", "Only GET or POST requests are allowed for functions");
    }
    const table = /^\/([^/]+)$/.exec(restPath);
    if (!table) throw notSupported(`${method} ${url.pathname}`);
    if (!["GET", "HEAD", "POST", "PATCH", "DELETE"].includes(method)) throw notSupported(`${method} on a table (PUT upserts)`);
    const t: TableRequest = {
      sql: opts.sql,
      cache,
      ctx,
      rel: await findRelation(cache, decodeURIComponent(table[1]!)),
      params: url.searchParams,
      prefs: parsePrefer(req.headers.prefer),
      singular: wantsSingular(accept),
      maxRows: opts.maxRows ?? 1000,
      req,
    };
    if (method === "GET" || method === "HEAD") return withProfile(await readTable(t));
    if (method === "POST") return withProfile(await insertRows(t));
    if (method === "PATCH") return withProfile(await updateRows(t));
    return withProfile(await deleteRows(t));
  } catch (error) {
    if (isPgError(error)) {
      const mapped = fromPgError(error, ctx.role);
      if (mapped.status >= 500) opts.log(`[postgrest stand-in] ${method} ${url.pathname}: ${error.code} ${error.message}`);
      throw mapped;
    }
    if (isConnectionError(error)) {
      // PostgREST answers a lost or refused database connection with 503 PGRST001 and
      // reconnects; the driver's pool does the reconnecting here.
      opts.log(`[postgrest stand-in] ${method} ${url.pathname}: ${(error as { code?: string }).code}`);
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

/** Starts the stand-in: its schema cache and the `NOTIFY pgrst` listener that clears it. */
export async function startRestStandin(opts: RestStandinOptions): Promise<RestStandin> {
  const cache = new SchemaCache(opts.sql);
  const listener = await opts.sql.listen("pgrst", (payload) => {
    if (payload === "" || payload === "reload schema") cache.clear();
  });
  return {
    async serve(req, res, url) {
      const head = req.method === "HEAD";
      try {
        const reply = await handleRest(req, url, opts, cache);
        send(res, reply.status, reply.status === 204 || reply.body === undefined ? undefined : reply.body, reply.headers, head);
      } catch (error) {
        if (error instanceof RestError) return send(res, error.status, JSON.stringify(error.body), error.headers, head);
        opts.log(`[postgrest stand-in] ${req.method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
        send(res, 500, JSON.stringify({ code: null, message: "Internal error in the local PostgREST stand-in (see the devstack log)", details: null, hint: null }), {}, head);
      }
    },
    async close() {
      await listener.unlisten().catch(() => {});
    },
  };
}
