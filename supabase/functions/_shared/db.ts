/**
 * The one database helper. Functions reach Postgres directly (SUPABASE_DB_URL, the
 * `postgres` driver) and never run a statement as the connection's owner role:
 *  - asService: the service-only steps (begin/finish, webhooks), as service_role;
 *  - asUser: a user's own request, as authenticated with request.jwt.claims set
 *    transaction-locally, exactly as PostgREST does it.
 * The role is a startup parameter of each pool, so a service call is one statement,
 * one round trip.
 */
import postgres from "postgres";
import { requireEnv } from "./env.ts";

type Sql = postgres.Sql;
const pools = new Map<string, Sql>();

function pool(role: "service_role" | "authenticated"): Sql {
  let sql = pools.get(role);
  if (!sql) {
    sql = postgres(requireEnv("SUPABASE_DB_URL"), {
      max: 10,
      idle_timeout: 30,
      prepare: true,
      onnotice: () => {},
      connection: { role, application_name: `switchboard-functions:${role}` } as Record<string, string>,
    });
    pools.set(role, sql);
  }
  return sql;
}

/** Runs one statement as service_role. */
export function asService(): Sql {
  return pool("service_role");
}

/**
 * Runs one statement as the signed-in user: role authenticated, claims set for this
 * transaction only. The two statements are pipelined (one network round trip).
 */
export async function asUser<T extends readonly postgres.Row[]>(
  claims: Record<string, unknown>,
  query: (sql: postgres.TransactionSql) => postgres.PendingQuery<T>,
): Promise<T> {
  const results = await pool("authenticated").begin((sql) => [
    sql`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`,
    query(sql),
  ]);
  return results[1] as unknown as T;
}

/** Closes the pools (tests). */
export async function closePools(): Promise<void> {
  await Promise.all([...pools.values()].map((sql) => sql.end({ timeout: 1 })));
  pools.clear();
}
