/**
 * The one database helper. Functions reach Postgres through one pool per isolate, either
 * directly (SUPABASE_DB_URL) or through a transaction pooler such as Supavisor's
 * transaction mode (SWITCHBOARD_DB_URL, which wins when set), with the `postgres`
 * driver, and never run a statement as the login role:
 *  - asService: the service-only steps (begin/finish, webhooks), as service_role;
 *  - asUser: a user's own request, as authenticated with request.jwt.claims set, exactly
 *    as PostgREST does it.
 * Nothing lives on the session. Every step is its own transaction that first sets the
 * role (and the claims, and statement_timeout) transaction-locally, so a pooler that drops
 * startup parameters and hands the server connection to another client after each
 * transaction changes nothing. The one exception needs no session state either: when the
 * login role itself starts every session as service_role with a statement_timeout within
 * the step deadline (the functions' own login role, `alter role … set role`; those
 * settings are the server's, applied to every server connection a pooler opens), a
 * service step is its statement alone, in its own implicit transaction. The pool checks
 * this once, and otherwise wraps service steps like the others.
 *
 * A step is written in one go on a reserved connection (begin, the settings, the
 * statement, commit), which the driver pipelines. On a direct connection statements are
 * prepared, and a step is one round trip. Behind a pooler they are not (`prepare: false`:
 * a transaction pooler cannot keep them from one transaction to the next, and postgres.js
 * 3.4.9 corrupts parameters when it retries after a prepared statement went missing), and
 * postgres.js then asks the server for a statement's parameter types before it sends them:
 * a step with parameters is three round trips, a user's step five.
 * SWITCHBOARD_DB_PREPARE=true|false overrides the choice.
 *
 * Every step runs against a deadline (connect timeout, statement_timeout, and a
 * client-side timer): during a database outage a request gets its 503 within the deadline
 * instead of waiting it out and then acting after its caller gave up. A step still
 * waiting for a connection when its deadline passes never runs.
 */
import postgres from "postgres";
import { env, requireEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { logFailure } from "./http.ts";

type Sql = postgres.Sql;
type Role = "service_role" | "authenticated";

/** Seconds to wait for a new database connection (SWITCHBOARD_DB_CONNECT_TIMEOUT_S, default 3). */
const CONNECT_TIMEOUT_S = positive(env("SWITCHBOARD_DB_CONNECT_TIMEOUT_S"), 3);
/** Milliseconds one step may take, waiting for a connection included (SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS, default 5000). */
export const STATEMENT_DEADLINE_MS = positive(env("SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS"), 5_000);
/** Connections per isolate (SWITCHBOARD_DB_POOL_SIZE, default 5). */
const POOL_SIZE = Math.ceil(positive(env("SWITCHBOARD_DB_POOL_SIZE"), 5));
/** What a client is told to wait before retrying when the database is unavailable. */
const RETRY_AFTER_S = 2;

function positive(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

let shared: Sql | undefined;

/**
 * Prepared statements: on a direct connection (SUPABASE_DB_URL), not behind the pooler
 * SWITCHBOARD_DB_URL names; SWITCHBOARD_DB_PREPARE=true|false decides otherwise.
 */
export function usePreparedStatements(): boolean {
  const configured = env("SWITCHBOARD_DB_PREPARE");
  if (configured === "true" || configured === "false") return configured === "true";
  return !env("SWITCHBOARD_DB_URL");
}

function pool(): Sql {
  shared ??= postgres(env("SWITCHBOARD_DB_URL") || requireEnv("SUPABASE_DB_URL"), {
    max: POOL_SIZE,
    idle_timeout: 30,
    connect_timeout: CONNECT_TIMEOUT_S,
    prepare: usePreparedStatements(),
    onnotice: () => {},
    connection: { application_name: "switchboard-functions:pool" },
  });
  return shared;
}

/** Per pool: does its login role start every session as service_role (see the top)? */
const serviceLogins = new WeakMap<Sql, Promise<boolean>>();

/**
 * True when `db`'s login role already runs as service_role with a statement_timeout no
 * longer than the step deadline: then a service step needs no opening. Asked once per pool
 * (a failed check is asked again); the answer holds for every connection of the pool,
 * pooled or not, because it comes from the role's own settings.
 */
function servesAsServiceRole(db: Sql, sql: postgres.ReservedSql): Promise<boolean> {
  let known = serviceLogins.get(db);
  if (!known) {
    known = sql`select current_user = 'service_role'
                   and extract(epoch from current_setting('statement_timeout')::interval) * 1000 between 1 and ${STATEMENT_DEADLINE_MS}
                   as preset`.then(([row]) => row.preset === true);
    serviceLogins.set(db, known);
    known.catch(() => serviceLogins.delete(db));
  }
  return known;
}

/** Consecutive pools that failed to connect, and when the next attempt may start. */
const backoff = { failures: 0, until: 0 };
/** Longest wait between attempts: well inside a step's deadline, so a step waits and then tries. */
const BACKOFF_CAP_MS = Math.min(2_000, STATEMENT_DEADLINE_MS / 2);

/**
 * Replaces the pool after a reservation failed to connect: postgres.js 3.4.9 leaves such a
 * reservation queued, where it later holds up a reconnect or takes a connection for good.
 * The old pool finishes what it runs, then closes. True when this call replaced it.
 */
function retire(sql: Sql): boolean {
  if (shared !== sql) return false;
  shared = undefined;
  sql.end({ timeout: Math.ceil(STATEMENT_DEADLINE_MS / 1000) + 1 }).catch(() => {});
  return true;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A reserved connection, before `deadline`. While the database refuses connections, new
 * attempts back off (as the driver's own reconnects do): a step waits, then tries once.
 */
async function reserve(deadline: Promise<never>, late: () => boolean): Promise<{ db: Sql; sql: postgres.ReservedSql }> {
  for (let attempt = 0; ; attempt++) {
    const wait = backoff.until - Date.now();
    if (wait > 0) await Promise.race([sleep(wait), deadline]);
    const db = pool();
    const reservation = db.reserve();
    try {
      const sql = await Promise.race([reservation, deadline]);
      backoff.failures = 0;
      return { db, sql };
    } catch (error) {
      // A connection that arrives after the deadline is given back unused.
      if (late()) {
        reservation.then((sql) => sql.release(), () => {});
        throw error;
      }
      const replaced = retire(db);
      // The server answered (the driver may replay the error that ended the connection's
      // previous session): one more try on the new pool.
      if (error instanceof postgres.PostgresError && attempt === 0) continue;
      if (replaced) {
        backoff.failures++;
        backoff.until = Date.now() + Math.min(50 * 3 ** (backoff.failures - 1), BACKOFF_CAP_MS);
      }
      throw error;
    }
  }
}

/** Raised when a step misses its deadline; classified as "database unavailable". */
class DeadlineExceeded extends Error {
  readonly code = "STATEMENT_DEADLINE";
  constructor() {
    super("database statement deadline exceeded");
    this.name = "DeadlineExceeded";
  }
}

/**
 * Awaits a query against the deadline (for a plain query; the helpers below keep their
 * own). A query still waiting for a connection is taken out of the queue, so it can never
 * run after its caller was answered; one already on the wire is bounded by the server's
 * statement_timeout.
 */
export async function withDeadline<T>(
  query: PromiseLike<T> & { cancel?: () => unknown; state?: unknown },
  ms = STATEMENT_DEADLINE_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (query.state === undefined) query.cancel?.();
      reject(new DeadlineExceeded());
    }, ms);
  });
  try {
    return await Promise.race([query, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What opens every step, as PostgREST opens every request: begin, then role,
 * statement_timeout and (for a user) the claims, for this transaction only. The claims
 * are a bind parameter, as every value is: statement text, which the server may log,
 * never holds one.
 */
function settings(sql: postgres.ReservedSql, role: Role, claims: Record<string, unknown> | null): postgres.PendingQuery<postgres.Row[]>[] {
  const set = `select set_config('role', '${role}', true), set_config('statement_timeout', '${Math.ceil(STATEMENT_DEADLINE_MS)}', true)`;
  // Without a value to bind, begin and the settings travel as one simple-protocol message.
  return claims
    ? [sql`begin`, sql.unsafe(`${set}, set_config('request.jwt.claims', $1, true)`, [JSON.stringify(claims)])]
    : [sql.unsafe(`begin; ${set}`)];
}

/**
 * The reserved connection as a tagged template that refuses undefined values up front:
 * the driver would find them only while writing the pipeline, and fail another statement.
 */
function guarded(sql: postgres.ReservedSql): postgres.ReservedSql {
  return new Proxy(sql, {
    apply: (target, thisArg, args: unknown[]) => {
      if (args.slice(1).includes(undefined)) throw new TypeError("undefined is not a database value (use null)");
      return Reflect.apply(target, thisArg, args);
    },
  });
}

/** The connection itself failed or is closing (as opposed to a statement on it). */
function connectionLost(error: unknown): boolean {
  if (error instanceof postgres.PostgresError) return error.severity === "FATAL" || error.severity === "PANIC";
  return isDatabaseUnavailable(error);
}

/**
 * Runs begin and the settings (the opening), the statement and commit on the reserved
 * connection, written without waiting in between; resolves with the statement's rows once
 * committed. Without an opening the statement runs alone, in its own implicit transaction.
 * The connection goes back to the pool only when no transaction is left open on it (commit
 * answers ROLLBACK after a failed statement; a failed commit is followed by a rollback);
 * a connection that was lost is left to the driver, which reconnects it.
 */
async function pipeline<T extends readonly postgres.MaybeRow[]>(
  sql: postgres.ReservedSql,
  opening: postgres.PendingQuery<postgres.Row[]>[] | null,
  statement: postgres.PendingQuery<T>,
): Promise<T> {
  const queries = (opening ? [...opening, statement, sql`commit`] : [statement]) as postgres.PendingQuery<postgres.Row[]>[];
  const statementAt = opening?.length ?? 0;
  for (const query of queries) {
    query.execute();
    // Each outcome is read below, in order; after a lost connection, not all of them.
    query.catch(() => {});
  }
  let failure: { error: unknown } | undefined;
  let rows: unknown;
  let ended = !opening;
  for (const [i, query] of queries.entries()) {
    try {
      const result = await query;
      if (i === statementAt) rows = result;
      if (i === statementAt + 1) ended = true;
    } catch (error) {
      failure ??= { error };
      // Statements queued behind a lost connection never settle: stop here.
      if (connectionLost(error)) throw failure.error;
    }
  }
  if (!ended) {
    try {
      await sql`rollback`;
    } catch (error) {
      if (connectionLost(error)) throw failure!.error;
      throw error;
    }
  }
  sql.release();
  if (failure) throw failure.error;
  return rows as T;
}

/** One step as `role`, against the deadline. */
async function step<T extends readonly postgres.MaybeRow[]>(
  role: Role,
  claims: Record<string, unknown> | null,
  build: (sql: postgres.ReservedSql) => postgres.PendingQuery<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new DeadlineExceeded());
    }, STATEMENT_DEADLINE_MS);
  });
  try {
    const { db, sql } = await reserve(deadline, () => late);
    let work: Promise<T>;
    try {
      const bare = role === "service_role" && await Promise.race([servesAsServiceRole(db, sql), deadline]);
      // Built before anything is sent, so a statement that cannot be built sends nothing.
      work = pipeline(sql, bare ? null : settings(sql, role, claims), build(guarded(sql)));
    } catch (error) {
      sql.release();
      throw error;
    }
    // Past the deadline the step goes on (bounded by statement_timeout), unseen by its caller.
    work.catch((error) => {
      if (late) logFailure("database step after its deadline", error, new ApiError("internal_error", "database step failed"));
    });
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pool's own ways to run statements, which would run them as the login role. */
const UNGUARDED = new Set<PropertyKey>(["unsafe", "file", "begin", "reserve", "listen", "notify", "subscribe", "largeObject", "end", "close"]);

/**
 * Runs one statement as service_role, against the deadline:
 * `await asService()\`select …\``. Helpers such as `asService().json(v)` pass through.
 */
export function asService(): Sql {
  return new Proxy(pool(), {
    apply: (_target, _thisArg, args: unknown[]) =>
      step("service_role", null, (sql) => Reflect.apply(sql, undefined, args) as postgres.PendingQuery<postgres.Row[]>),
    get: (target, prop) => {
      if (UNGUARDED.has(prop)) throw new TypeError(`asService().${String(prop)} is not available: use asService()\`…\``);
      return Reflect.get(target, prop);
    },
  });
}

/**
 * Runs one statement as the signed-in user: role authenticated, claims set for this
 * transaction only, against the deadline.
 */
export async function asUser<T extends readonly postgres.Row[]>(
  claims: Record<string, unknown>,
  query: (sql: postgres.TransactionSql) => postgres.PendingQuery<T>,
): Promise<T> {
  return await step("authenticated", claims, (sql) => query(sql as unknown as postgres.TransactionSql));
}

// Driver and network errors that mean "no usable connection": nothing was decided.
const CONNECTION_ERROR_CODES = new Set([
  "STATEMENT_DEADLINE", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED",
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN",
]);
// SQLSTATEs of a server that is going away, not accepting, overloaded or timed out.
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "53400", "57014", "25006", "40001", "40P01"]);

/** The driver's error code or SQLSTATE, when the error carries one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

/** True when the error says the database could not be reached or answer in time. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = errorCode(error);
  if (code && (CONNECTION_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08"))) return true;
  // Deno's node:net reports some socket failures by name and message only.
  const text = `${(error as Error)?.name ?? ""} ${(error as Error)?.message ?? ""}`;
  return /ConnectionRefused|ConnectionReset|BrokenPipe|connection (?:refused|reset)|write after end/i.test(text);
}

/** The envelope for a request the database could not serve: 503 with Retry-After. */
export function databaseUnavailable(details: Record<string, unknown> = {}): ApiError {
  return new ApiError("service_unavailable", "The database is unavailable; retry shortly.", {
    ...details,
    retry_after: RETRY_AFTER_S,
  });
}

/** Closes the pool (tests). */
export async function closePools(): Promise<void> {
  const sql = shared;
  shared = undefined;
  await sql?.end({ timeout: 1 });
}
