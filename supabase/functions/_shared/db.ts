/**
 * The one database helper. Functions reach Postgres directly (SUPABASE_DB_URL, the
 * `postgres` driver) and never run a statement as the connection's owner role:
 *  - asService: the service-only steps (begin/finish, webhooks), as service_role;
 *  - asUser: a user's own request, as authenticated with request.jwt.claims set
 *    transaction-locally, exactly as PostgREST does it.
 * The role is a startup parameter of each pool, so a service call is one statement,
 * one round trip.
 *
 * Every statement runs against a deadline (connect timeout, server statement_timeout,
 * and a client-side timer that cancels the query): during a database outage a request
 * fails fast with 503 instead of waiting it out and then acting after its caller gave
 * up. The client-side timer is what holds behind a transaction pooler, which drops
 * startup parameters such as statement_timeout.
 */
import postgres from "postgres";
import { env, requireEnv } from "./env.ts";
import { ApiError } from "./errors.ts";

type Sql = postgres.Sql;
const pools = new Map<string, Sql>();

/** Seconds to wait for a new database connection (SWITCHBOARD_DB_CONNECT_TIMEOUT_S, default 3). */
const CONNECT_TIMEOUT_S = positive(env("SWITCHBOARD_DB_CONNECT_TIMEOUT_S"), 3);
/** Milliseconds one statement may take, queueing included (SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS, default 5000). */
export const STATEMENT_DEADLINE_MS = positive(env("SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS"), 5_000);
/** What a client is told to wait before retrying when the database is unavailable. */
const RETRY_AFTER_S = 2;

function positive(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function pool(role: "service_role" | "authenticated"): Sql {
  let sql = pools.get(role);
  if (!sql) {
    sql = postgres(requireEnv("SUPABASE_DB_URL"), {
      max: 10,
      idle_timeout: 30,
      connect_timeout: CONNECT_TIMEOUT_S,
      prepare: true,
      onnotice: () => {},
      connection: {
        role,
        application_name: `switchboard-functions:${role}`,
        statement_timeout: String(STATEMENT_DEADLINE_MS),
      } as Record<string, string>,
    });
    pools.set(role, sql);
  }
  return sql;
}

/** Raised when a statement misses its deadline; classified as "database unavailable". */
class DeadlineExceeded extends Error {
  readonly code = "STATEMENT_DEADLINE";
  constructor() {
    super("database statement deadline exceeded");
    this.name = "DeadlineExceeded";
  }
}

/**
 * Awaits a query against the deadline. A query still waiting for a connection is taken
 * out of the queue, so it can never run after its caller was answered; one already on
 * the wire is bounded by the server's statement_timeout (postgres.js's cancel of an
 * active query opens a connection whose failure it does not let us handle).
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
 * Runs one statement as service_role, against the deadline:
 * `await asService()\`select …\``. Helpers such as `asService().json(v)` pass through.
 */
export function asService(): Sql {
  const sql = pool("service_role");
  return new Proxy(sql, {
    apply: (target, thisArg, args) =>
      withDeadline(Reflect.apply(target, thisArg, args) as postgres.PendingQuery<postgres.Row[]>),
  });
}

/**
 * Runs one statement as the signed-in user: role authenticated, claims set for this
 * transaction only. The two statements are pipelined (one network round trip).
 */
export async function asUser<T extends readonly postgres.Row[]>(
  claims: Record<string, unknown>,
  query: (sql: postgres.TransactionSql) => postgres.PendingQuery<T>,
): Promise<T> {
  const results = await withDeadline(pool("authenticated").begin((sql) => [
    sql`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`,
    query(sql),
  ]));
  return results[1] as unknown as T;
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

/** Closes the pools (tests). */
export async function closePools(): Promise<void> {
  await Promise.all([...pools.values()].map((sql) => sql.end({ timeout: 1 })));
  pools.clear();
}
