/**
 * Lock contention of the functions' database pool, sampled from pg_stat_activity.
 *
 * Every `intervalMs` (default 20 ms) one query on a connection of its own counts the
 * backends of the bench database whose application_name starts with
 * `switchboard-functions:` (the Deno host's pools, supabase/functions/_shared/db.ts)
 * and how many of them wait on a heavyweight lock (`wait_event_type = 'Lock'`: a row
 * lock shows as `transactionid` or `tuple`), and which function the waiting statement
 * calls (`begin_tool_call`, `finish_tool_call`, …). The sampler runs in the bench's
 * Node process next to the load generator, so on a busy machine samples come late:
 * the report gives the real number of samples and their mean interval.
 */
import postgres from "postgres";
import { nowMs, round } from "./stats.ts";

export interface LockReport {
  samples: number;
  mean_interval_ms: number;
  /** Functions backends connected (db.ts opens up to SWITCHBOARD_DB_POOL_SIZE per isolate). */
  backends_mean: number;
  backends_max: number;
  /** Backends running a statement (not idle). */
  active_mean: number;
  /** Backends waiting on a heavyweight lock. */
  lock_waiting_mean: number;
  lock_waiting_max: number;
  /** Share of samples with at least one lock waiter. */
  samples_with_waiters_pct: number;
  /** Mean number of lock waiters per sample by the function their statement calls. */
  lock_waiting_by_statement: Record<string, number>;
  /** Mean number of active backends per sample in each wait state ("CPU" = no wait event). */
  active_by_wait_event: Record<string, number>;
}

export interface LockSampler {
  stop(): Promise<LockReport>;
}

export async function startLockSampler(dbUrl: string, database: string, intervalMs = 20): Promise<LockSampler> {
  const sql = postgres(dbUrl, { max: 1, prepare: true, onnotice: () => {}, connection: { application_name: "switchboard-bench:locks" } });
  await sql`select 1`;
  const rows: Array<{ backends: number; active: number; waiting: number; events: Record<string, number>; statements: Record<string, number> }> = [];
  const times: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = nowMs();
      const [row] = await sql`
        select count(*)::int as backends,
               count(*) filter (where state <> 'idle')::int as active,
               count(*) filter (where wait_event_type = 'Lock')::int as waiting,
               coalesce((select jsonb_object_agg(ev, n) from (
                   select coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') as ev, count(*) as n
                   from pg_stat_activity a
                   where a.datname = ${database} and a.application_name like 'switchboard-functions:%' and a.state <> 'idle'
                   group by 1) e), '{}'::jsonb) as events,
               coalesce((select jsonb_object_agg(st, n) from (
                   select coalesce(substring(a.query from 'private[.]([a-z_]+)'), 'other') as st, count(*) as n
                   from pg_stat_activity a
                   where a.datname = ${database} and a.application_name like 'switchboard-functions:%' and a.wait_event_type = 'Lock'
                   group by 1) w), '{}'::jsonb) as statements
        from pg_stat_activity
        where datname = ${database} and application_name like 'switchboard-functions:%'`;
      rows.push(row as never);
      times.push(t);
      const wait = intervalMs - (nowMs() - t);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await sql.end({ timeout: 2 });
      const n = rows.length;
      const mean = (f: (r: (typeof rows)[number]) => number) => (n ? rows.reduce((a, r) => a + f(r), 0) / n : Number.NaN);
      const events: Record<string, number> = {};
      for (const r of rows) for (const [k, v] of Object.entries(r.events)) events[k] = (events[k] ?? 0) + Number(v);
      const statements: Record<string, number> = {};
      for (const r of rows) for (const [k, v] of Object.entries(r.statements)) statements[k] = (statements[k] ?? 0) + Number(v);
      const perSample = (m: Record<string, number>) =>
        Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v / Math.max(1, n), 2)]));
      return {
        samples: n,
        mean_interval_ms: n > 1 ? round((times[n - 1] - times[0]) / (n - 1), 1) : Number.NaN,
        backends_mean: round(mean((r) => r.backends), 2),
        backends_max: Math.max(0, ...rows.map((r) => r.backends)),
        active_mean: round(mean((r) => r.active), 2),
        lock_waiting_mean: round(mean((r) => r.waiting), 2),
        lock_waiting_max: Math.max(0, ...rows.map((r) => r.waiting)),
        samples_with_waiters_pct: round((100 * rows.filter((r) => r.waiting > 0).length) / Math.max(1, n), 1),
        lock_waiting_by_statement: perSample(statements),
        active_by_wait_event: perSample(events),
      };
    },
  };
}
