/**
 * Reliability from the fault's side, on a throwaway cluster (never the machine's shared
 * server) with the whole local stack on top of it:
 *  - the database backend is terminated between the provider call and finish;
 *  - PostgreSQL crashes right after finish answered (and empties the unlogged discovery
 *    cache);
 *  - the database stops between the provider call and finish and stays down;
 *  - the database stops under load, then comes back;
 *  - the functions host is SIGKILLed between the provider call and finish.
 * What must hold: no bare 500 and no hang (503 within the deadline), nothing sent
 * twice, quota right, no operation left pending past its deadline (pg_cron's
 * reconciler closes it as unknown), keyed retries replay, recovery without a restart.
 * Every loop is bounded in count and time; every address is loopback.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { configureJwt, createLocalUser } from "../../packages/devstack/src/jwt.ts";
import { type StackHandle, startStack } from "../../packages/devstack/src/stack.ts";
import { createThrowawayCluster, type ThrowawayCluster, waitUntilReady } from "./cluster.ts";

const DATABASE = "switchboard_faults";
/** The stack's per-request database deadline: connect (1 s) + statement (2 s). */
const FUNCTIONS_ENV = { SWITCHBOARD_DB_CONNECT_TIMEOUT_S: "1", SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS: "2000" };
/** Longest a request may take while the database is down: the deadline plus finish retries and slack. */
const OUTAGE_ANSWER_BOUND_MS = 8_000;

let cluster: ThrowawayCluster;
let stack: StackHandle;
let admin: Sql;
let agentKey: string;
let permissionId: string;

const stateDir = (suffix: string) => join(REPO_ROOT, ".devstack", `faults-${suffix}`);

async function boot(suffix: string, reset: boolean): Promise<StackHandle> {
  return startStack({
    databaseUrl: cluster.url,
    reset,
    config: { ephemeralPorts: true, stateDir: stateDir(suffix) },
    functionsEnv: FUNCTIONS_ENV,
    functionsLog: join(stateDir(suffix), "functions.log"),
    writeState: false,
    log: () => {},
  });
}

/** Runs statements as a signed-in user, the way PostgREST would. */
async function asUser<T>(userId: string, work: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return (await admin.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: "authenticated" })}, true),
                    set_config('role', 'authenticated', true)`;
    return work(tx);
  })) as T;
}

const fakeBase = () => stack.status.CLICKSEND_FAKE_URL.replace(/\/v3\/?$/, "");

async function fake(path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${fakeBase()}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}

/** Messages the ClickSend fake accepted whose body is `text`. */
async function delivered(text: string): Promise<number> {
  const { messages } = await fake("/__fake/messages");
  return (messages as Array<{ body: string }>).filter((m) => m.body === text).length;
}

async function send(text: string, opts: { key?: string; functionsUrl?: string } = {}) {
  const started = Date.now();
  const res = await fetch(`${opts.functionsUrl ?? stack.status.FUNCTIONS_URL}/clicksend/sms/send`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${agentKey}`,
      "Content-Type": "application/json",
      ...(opts.key ? { "Idempotency-Key": opts.key } : {}),
    },
    body: JSON.stringify({ to: ["+61411111111"], body: text }),
    signal: AbortSignal.timeout(30_000),
  });
  const raw = await res.text();
  let body: any = raw;
  try { body = JSON.parse(raw); } catch { /* kept as text */ }
  return { status: res.status, body, headers: res.headers, ms: Date.now() - started };
}

/** The agent's tool list (raw: entries with their limits objects), as the agent lists it. */
async function listedTools() {
  const res = await fetch(`${stack.status.FUNCTIONS_URL}/agent-tools?format=raw`, {
    headers: { Authorization: `Bearer ${agentKey}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as { tools: Array<{ name: string; limits: Record<string, unknown> }> } };
}

/** An RPC as an app's anon client makes it, through the gateway and the PostgREST stand-in. */
async function restCall(): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${stack.status.REST_URL}/rpc/get_agent_tools`, {
    method: "POST",
    headers: { apikey: stack.status.ANON_KEY, Authorization: `Bearer ${stack.status.ANON_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ p_agent_id: randomUUID() }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, code: body?.code };
}

/** Polls `check` every 100 ms until it is truthy (bounded). */
async function until<T>(check: () => Promise<T | undefined | null | false | 0>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function operation(id: string) {
  const [row] = await admin`select status, quota_reserved, quota_used, error_code, error_details
                            from public.operations where id = ${id}`;
  return row;
}

async function usedToday(): Promise<number> {
  const [row] = await admin`select coalesce(sum(used), 0)::int as used from public.usage_counters where subject_id = ${permissionId} and period = 'day'`;
  return row.used;
}

async function terminateFunctionConnections() {
  await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'switchboard-functions:%'`;
}

beforeAll(async () => {
  cluster = await createThrowawayCluster(DATABASE);
  stack = await boot("a", true);
  admin = postgres(cluster.url, { max: 2, onnotice: () => {}, connect_timeout: 2 });
  // A short deadline so lost calls are closed within the test (new sessions pick it up).
  await admin.unsafe(`alter database ${DATABASE} set switchboard.pending_deadline = '3 seconds'`);

  configureJwt({ stateDir: stateDir("a"), apiUrl: stack.status.API_URL });
  const user = await createLocalUser(admin, `faults-${randomUUID()}@example.test`);
  const seeded = await asUser(user.id, async (tx) => {
    const [{ c }] = await tx`select public.create_connection('clicksend_sms', 'faults',
      ${tx.json({ username: "demo", api_key: "demo-key" })}, ${tx.json({ base_url: stack.status.CLICKSEND_FAKE_URL })}) as c`;
    const [{ a }] = await tx`select public.create_agent('fault agent') as a`;
    const [{ g }] = await tx`select public.grant_agent_permission(${a.id}::uuid, ${c.id}::uuid, '{sms}',
      p_daily_send_limit => 1000, p_max_recipients_per_message => 10) as g`;
    const [{ k }] = await tx`select public.issue_agent_key(${a.id}::uuid) as k`;
    return { key: k.key as string, grant: g.id as string };
  });
  agentKey = seeded.key;
  permissionId = seeded.grant;

  const warm = await send("warm-up");
  expect(warm.status).toBe(200);
}, 240_000);

afterAll(async () => {
  await admin?.end({ timeout: 1 }).catch(() => {});
  await stack?.stop();
  cluster?.drop();
});

describe("faults between the provider call and finish", () => {
  it("the database backend is terminated: finish is retried on a new connection and the caller gets the real outcome", async () => {
    const text = `terminated-${randomUUID()}`;
    const before = await usedToday();
    await fake("/__fake/faults", { mode: "slow", path: "/sms/send", delay_ms: 1500 });
    const pending = send(text);
    await until(() => delivered(text), 10_000, "the provider to accept the message");
    await terminateFunctionConnections();
    const res = await pending;

    expect(res.status).toBe(200);
    expect(res.body.status).toBe("succeeded");
    expect((await operation(res.body.operation_id)).status).toBe("succeeded");
    expect(await usedToday()).toBe(before + 1);
    expect(await delivered(text)).toBe(1);
  });

  it("PostgreSQL crashes right after finish answered: the recorded outcome survives (finish's commit is on disk before the answer), and the emptied discovery cache builds the same list again", async () => {
    // The WAL writer would flush a commit that did not wait for the disk within its delay;
    // at its longest (10 s), only a commit that waited survives the crash below.
    await admin.unsafe("alter system set wal_writer_delay = '10s'");
    await admin`select pg_reload_conf()`;
    try {
      const text = `crash-${randomUUID()}`;
      const before = await usedToday();
      const res = await send(text);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe("succeeded");
      const listed = await listedTools();
      expect(listed.status).toBe(200);
      const [{ cached }] = await admin`select count(*)::int as cached from private.tool_listings`;
      expect(cached, "the listing is kept in the discovery cache").toBeGreaterThan(0);
      await admin.end({ timeout: 1 });
      cluster.crash();
      cluster.start();
      await waitUntilReady(cluster.url);
      admin = postgres(cluster.url, { max: 2, onnotice: () => {}, connect_timeout: 2 });

      const [row] = await admin`select status, quota_used, provider_message_ids from public.operations where id = ${res.body.operation_id}`;
      expect(row).toMatchObject({ status: "succeeded", quota_used: 1 });
      expect(row.provider_message_ids).toEqual(res.body.provider_message_ids);
      expect(await usedToday()).toBe(before + 1);
      expect(await delivered(text)).toBe(1);

      // The cache is unlogged: recovery empties it, and the next listing is built afresh,
      // the same as before the crash (the counters it shows were on disk).
      const [{ kept }] = await admin`select count(*)::int as kept from private.tool_listings`;
      expect(kept).toBe(0);
      const again = await until(async () => {
        const answer = await listedTools();
        return answer.status === 200 && answer;
      }, 10_000, "a tool list after the crash");
      expect(again.body).toEqual(listed.body);
      const sms = again.body.tools.find((t) => t.name === "sms_send");
      expect(sms?.limits.remaining_today).toBe(1000 - (before + 1));
    } finally {
      // Best effort: a failure above may have left no connection to reset it with.
      await admin.unsafe("alter system reset wal_writer_delay").then(() => admin`select pg_reload_conf()`).catch(() => {});
    }
  });

  it("the database stops and stays down: 503 naming the operation and what the provider said; after recovery the lost call is closed as unknown with its quota, and a keyed retry replays it", async () => {
    const text = `outage-${randomUUID()}`;
    const key = `outage-${randomUUID()}`;
    const before = await usedToday();
    await fake("/__fake/faults", { mode: "slow", path: "/sms/send", delay_ms: 1500 });
    const pending = send(text, { key });
    await until(() => delivered(text), 10_000, "the provider to accept the message");
    await admin.end({ timeout: 1 });
    cluster.stop();
    const res = await pending;
    cluster.start();
    await waitUntilReady(cluster.url);
    admin = postgres(cluster.url, { max: 2, onnotice: () => {}, connect_timeout: 2 });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("service_unavailable");
    expect(res.body.error.details).toMatchObject({ outcome: "not_recorded", may_have_been_sent: true, provider_status: "succeeded" });
    expect(res.body.error.message).toMatch(/accepted the message/);
    expect(res.headers.get("retry-after")).toBeNull(); // no invitation to a blind retry
    expect(JSON.stringify(res.body)).not.toMatch(/demo-key|stack|at \w+ \(/);
    const operationId = res.body.error.details.operation_id as string;
    // The call is on the ledger and was never closed as a success or a failure: pending, or
    // already unknown when pg_cron's minutely reconciler ran after a slow restart (> 3 s).
    expect(["pending", "unknown"]).toContain((await operation(operationId)).status);

    // Past the deadline the reconciler closes it; the quota stays spent (it was sent).
    await new Promise((resolve) => setTimeout(resolve, 3_100));
    await admin`select private.reconcile_pending_operations()`;
    expect(await operation(operationId)).toMatchObject({ status: "unknown", quota_reserved: 1, quota_used: 1 });
    expect(await usedToday()).toBe(before + 1);

    const retry = await send(text, { key });
    expect(retry.status).toBe(503);
    expect(retry.body.error.details).toMatchObject({ operation_id: operationId, may_have_been_sent: true, replayed: true });
    expect(await delivered(text)).toBe(1);
    expect(await usedToday()).toBe(before + 1);
  });
});

describe("database outage under load", () => {
  it("answers 503 with Retry-After within the deadline, sends nothing while down, and recovers without a restart", async () => {
    const tag = `load-${randomUUID()}`;
    const outcomes: Array<{ status: number; code?: string; ms: number; phase: string; retryAfter: string | null; notRecorded: boolean }> = [];
    let phase = "up";
    let stopAt = Date.now() + 60_000;
    const worker = async (w: number) => {
      for (let i = 0; i < 200 && Date.now() < stopAt; i++) {
        const current = phase;
        const res = await send(`${tag}-${w}-${i}`);
        outcomes.push({
          status: res.status, code: res.body?.error?.code, ms: res.ms, phase: current,
          retryAfter: res.headers.get("retry-after"), notRecorded: res.body?.error?.details?.outcome === "not_recorded",
        });
        if (res.status === 503) expect(res.body.error.code).toBe("service_unavailable");
      }
    };
    const workers = Promise.all([0, 1, 2, 3].map(worker));

    await until(async () => outcomes.filter((o) => o.status === 200).length >= 8, 20_000, "sends before the outage");
    await admin.end({ timeout: 1 });
    cluster.stop();
    phase = "down";
    const { messages: atStop } = await fake("/__fake/messages");
    // An app's supabase-js call meanwhile: the PostgREST stand-in answers as PostgREST does.
    const restDown = await restCall();
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const { messages: atEnd } = await fake("/__fake/messages");
    cluster.start();
    phase = "recovering";
    await waitUntilReady(cluster.url);
    admin = postgres(cluster.url, { max: 2, onnotice: () => {}, connect_timeout: 2 });
    await until(async () => outcomes.some((o) => o.phase === "recovering" && o.status === 200), 20_000, "a send after recovery");
    stopAt = 0;
    await workers;
    expect(restDown).toMatchObject({ status: 503, code: "PGRST001" });
    expect((await until(async () => { const r = await restCall(); return r.status < 500 ? r : undefined; }, 10_000, "REST after recovery")).status)
      .toBeLessThan(500);

    const down = outcomes.filter((o) => o.phase === "down");
    expect(down.length).toBeGreaterThan(4);
    // Requests started while the database is down never reach a provider: begin cannot run.
    const sentWhileDown = (atEnd as Array<{ body: string }>).length - (atStop as Array<{ body: string }>).length;
    expect(sentWhileDown).toBeLessThanOrEqual(4); // at most the calls already past begin when it stopped
    for (const o of down) {
      expect(o.status === 503 || o.status === 200, `status ${o.status}`).toBe(true);
      expect(o.ms).toBeLessThan(OUTAGE_ANSWER_BOUND_MS);
      // "Try again shortly" — except for a call whose message went out but could not be recorded.
      if (o.status === 503 && !o.notRecorded) expect(o.retryAfter).toBe("2");
    }
    expect(outcomes.every((o) => o.status === 200 || o.status === 503), JSON.stringify(outcomes.filter((o) => o.status !== 200 && o.status !== 503))).toBe(true);
  });
});

describe("the functions host is killed", () => {
  it("SIGKILL between the provider call and finish: pg_cron's reconciler closes the call as unknown, and a keyed retry through a new host replays it without sending again", async () => {
    const text = `killed-${randomUUID()}`;
    const key = `killed-${randomUUID()}`;
    const before = await usedToday();
    await fake("/__fake/faults", { mode: "slow", path: "/sms/send", delay_ms: 3000 });
    const pending = send(text, { key }).catch((error: Error) => ({ dropped: error.name }));
    await until(() => delivered(text), 10_000, "the provider to accept the message");
    process.kill(stack.functionsPid, "SIGKILL");
    expect(await pending).toMatchObject({ dropped: expect.any(String) }); // the caller saw the connection drop

    const [op] = await admin`select id, status from public.operations where idempotency_key = ${key}`;
    expect(op.status).toBe("pending");
    // Supabase Cron runs the reconciler every minute; it closes the call once past its deadline.
    const closed = await until(async () => {
      const row = await operation(op.id);
      return row.status === "unknown" ? row : undefined;
    }, 75_000, "pg_cron to reconcile the lost call");
    expect(closed).toMatchObject({ quota_reserved: 1, quota_used: 1 });
    expect(closed.error_details).toMatchObject({ reason: "no_outcome_recorded_before_deadline" });
    // pg_cron marks its run succeeded just after the command's commit: give it a moment.
    await until(async () => {
      const [job] = await admin`select count(*)::int as runs from cron.job_run_details d join cron.job j using (jobid)
                                where j.jobname = 'switchboard-reconcile' and d.status = 'succeeded'`;
      return job.runs > 0;
    }, 10_000, "pg_cron to record a succeeded run of switchboard-reconcile");

    const second = await boot("b", false);
    try {
      const retry = await send(text, { key, functionsUrl: second.status.FUNCTIONS_URL });
      expect(retry.status).toBe(503);
      expect(retry.body.error.details).toMatchObject({ operation_id: op.id, may_have_been_sent: true, replayed: true });
    } finally {
      await second.stop();
    }
    expect(await delivered(text)).toBe(1);
    expect(await usedToday()).toBe(before + 1);
    const [{ stale }] = await admin`select count(*)::int as stale from public.operations
                                    where status = 'pending' and created_at < now() - interval '1 minute'`;
    expect(stale).toBe(0);
  }, 150_000);
});
