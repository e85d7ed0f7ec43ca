/**
 * The functions' database helper (supabase/functions/_shared/db.ts) called directly,
 * through the lane's PgBouncer in transaction mode as switchboard_functions:
 *  - every statement runs as service_role or authenticated, never as the tables' owner;
 *    switchboard_functions starts its sessions as service_role, so a service step within
 *    the role's statement_timeout is its statement alone (one implicit transaction), and
 *    any other login role gets the wrapped step;
 *  - values survive the trip without prepared statements (porsager/postgres#1197: a
 *    retried prepared statement stored jsonb as a string and turned true into false);
 *  - nothing a step sets is left on the server connection for the next one;
 *  - statement_timeout holds behind the pooler; the pool recovers from lost connections;
 *  - a step takes one round trip, two more for each statement with parameters (a user's
 *    claims are one).
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";

type Db = typeof import("../../supabase/functions/_shared/db.ts");

const ctx = inject("pooled");
const admin = postgres(inject("devstack").DB_URL, { max: 2, onnotice: () => {} });
let db: Db;

/** Points the helper's pool at `url` (the helper reads SWITCHBOARD_DB_URL when it opens its pool). */
async function useDatabase(url: string): Promise<void> {
  await db.closePools();
  process.env.SWITCHBOARD_DB_URL = url;
}

beforeAll(async () => {
  process.env.SWITCHBOARD_DB_URL = ctx.functionsDbUrl;
  // Short, so the timeout test is quick; every other step here takes milliseconds.
  process.env.SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS = "3000";
  db = await import("../../supabase/functions/_shared/db.ts");
});

afterAll(async () => {
  await db.closePools();
  await admin.end({ timeout: 2 });
});

const claimsOf = (sub: string) => ({ sub, role: "authenticated", email: `ünï'cödé+${sub.slice(0, 4)}@example.test`, aal: "aal1" });

describe("roles", () => {
  it("runs service steps as service_role and user steps as authenticated with their claims", async () => {
    await useDatabase(ctx.functionsDbUrl);
    const [service] = await db.asService()`select current_user as role, session_user as login, current_setting('application_name') as app`;
    expect(service).toEqual({ role: "service_role", login: "switchboard_functions", app: "switchboard-functions:pool" });

    const claims = claimsOf(randomUUID());
    const [user] = await db.asUser(claims, (sql) =>
      sql`select current_user as role, session_user as login, auth.uid()::text as uid, auth.jwt() as jwt, ${"x"}::text as param`);
    expect(user).toEqual({ role: "authenticated", login: "switchboard_functions", uid: claims.sub, jwt: claims, param: "x" });
  });

  it("a dropped role startup parameter leaves the login role's own setting: service_role, never the owner", async () => {
    const raw = postgres(ctx.functionsDbUrl, { max: 1, prepare: false, onnotice: () => {}, connection: { role: "authenticated" } as Record<string, string> });
    try {
      const [row] = await raw`select current_user as role, session_user as login, current_setting('statement_timeout') as timeout`;
      expect(row).toEqual({ role: "service_role", login: "switchboard_functions", timeout: "5s" });
    } finally {
      await raw.end({ timeout: 1 });
    }
  });

  it("without its service_role setting the login role could do nothing at all (NOINHERIT)", async () => {
    const raw = postgres(ctx.functionsDbUrl, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const [row] = await raw.begin((tx) => [tx`set local role none`, tx`select current_user as role`]).then((r) => r[1]);
      expect(row.role).toBe("switchboard_functions");
      await expect(raw.begin((tx) => [tx`set local role none`, tx`select count(*) from public.operations`]))
        .rejects.toMatchObject({ code: "42501" });
    } finally {
      await raw.end({ timeout: 1 });
    }
  });
});

describe("service steps as their statement alone (the login role starts as service_role)", () => {
  /** db.ts loaded afresh with the default 5 s deadline, which the role's 5 s timeout fits. */
  async function withDefaultDeadline(url: string): Promise<Db> {
    vi.resetModules();
    const saved = process.env.SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS;
    delete process.env.SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS;
    process.env.SWITCHBOARD_DB_URL = url;
    try {
      return await import("../../supabase/functions/_shared/db.ts");
    } finally {
      process.env.SWITCHBOARD_DB_STATEMENT_TIMEOUT_MS = saved;
    }
  }
  // Where the role and statement_timeout in force came from: the login role's own settings
  // ('user'), or the step's set_config (transaction-local: 'session').
  const probe = (sql: postgres.Sql) =>
    sql`select current_user as role, current_setting('statement_timeout') as timeout,
               (select source from pg_settings where name = 'statement_timeout') as set_by`;

  it("runs a service step alone, as service_role, under the role's statement_timeout", async () => {
    const bare = await withDefaultDeadline(ctx.functionsDbUrl);
    try {
      expect((await probe(bare.asService()))[0]).toEqual({ role: "service_role", timeout: "5s", set_by: "user" });
      // A user's step is still wrapped: role and claims inside its transaction.
      const claims = claimsOf(randomUUID());
      const [user] = await bare.asUser(claims, (sql) => sql`select current_user as role, auth.uid()::text as uid,
                                                                   (select source from pg_settings where name = 'statement_timeout') as set_by`);
      expect(user).toEqual({ role: "authenticated", uid: claims.sub, set_by: "session" });
      // And leaves nothing behind: the next service step on the pool is service_role without claims.
      const [after] = await bare.asService()`select current_user as role, coalesce(current_setting('request.jwt.claims', true), '') as claims`;
      expect(after).toEqual({ role: "service_role", claims: "" });
    } finally {
      await bare.closePools();
    }
  });

  it("wraps service steps for a login role that does not start as service_role (the owner, directly)", async () => {
    const direct = await withDefaultDeadline(inject("devstack").DB_URL);
    try {
      expect((await probe(direct.asService()))[0]).toEqual({ role: "service_role", timeout: "5s", set_by: "session" });
    } finally {
      await direct.closePools();
    }
  });

  it("wraps them when the step deadline is shorter than the role's statement_timeout", async () => {
    // This file's own helper runs with a 3 s deadline: the server must stop a statement at 3 s, not 5.
    await useDatabase(ctx.functionsDbUrl);
    expect((await probe(db.asService()))[0]).toEqual({ role: "service_role", timeout: "3s", set_by: "session" });
  });

  it("a service step with parameters is two round trips instead of three", async () => {
    const counter = await roundTripCounter(new URL(ctx.functionsDbUrl));
    const bare = await withDefaultDeadline(counter.url);
    try {
      await bare.asService()`select 1`; // opens the connection and asks how the login role starts
      counter.take();
      await bare.asService()`select current_user`;
      expect(counter.take()).toBe(1);
      await bare.asService()`select ${"x"}::text as x`;
      expect(counter.take()).toBe(2);
    } finally {
      await bare.closePools();
      await counter.close();
    }
  });
});

describe("values without prepared statements (porsager/postgres#1197)", () => {
  it("keeps jsonb, booleans, arrays and nulls intact over many pooled transactions", async () => {
    await useDatabase(ctx.functionsDbUrl);
    const value = { text: "é'\"\\ ✓ $1", n: 1.5, nested: [true, false, null, { k: "v" }] };
    // Many steps at once: the pool's connections take turns on PgBouncer's three server connections.
    const rows = await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      const sql = db.asService();
      const [row] = await sql`
        select ${sql.json(value)}::jsonb as j, jsonb_typeof(${sql.json(value)}::jsonb) as kind,
               ${true} as t, ${false} as f, ${i % 2 === 0} as even, ${["a", "b,c", '"q"', "{}"]}::text[] as arr,
               ${null}::text as nothing, ${i}::int as i`;
      return row;
    }));
    for (const [i, row] of rows.entries()) {
      expect(row).toEqual({ j: value, kind: "object", t: true, f: false, even: i % 2 === 0, arr: ["a", "b,c", '"q"', "{}"], nothing: null, i });
    }
  });
});

describe("no session state across pooled transactions (one server connection)", () => {
  /** The server connection's own state, outside any step, as the login role. */
  async function serverState(probe: postgres.Sql) {
    const [row] = await probe`select pg_backend_pid() as pid, current_user as role,
                                     coalesce(current_setting('request.jwt.claims', true), '') as claims,
                                     current_setting('statement_timeout') as timeout`;
    return row;
  }

  it("leaves no role, claims or timeout behind after a user's step, failed or not", async () => {
    await useDatabase(ctx.singleServerUrl);
    const probe = postgres(ctx.singleServerUrl, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const before = await serverState(probe);
      expect(before).toMatchObject({ role: "service_role", claims: "" });
      const a = claimsOf(randomUUID());
      const b = claimsOf(randomUUID());

      // A user's step that fails half-way, then a service step on the same server connection.
      await expect(db.asUser(a, (sql) => sql`select 1 / ${0} as boom`)).rejects.toMatchObject({ code: "22012" });
      const [service] = await db.asService()`select pg_backend_pid() as pid, current_user as role,
                                                   coalesce(current_setting('request.jwt.claims', true), '') as claims`;
      expect(service).toEqual({ pid: before.pid, role: "service_role", claims: "" });

      // One that fails before it runs (unknown function), then another user.
      await expect(db.asUser(a, (sql) => sql`select public.zz_no_such_function(${1})`)).rejects.toMatchObject({ code: "42883" });
      const [other] = await db.asUser(b, (sql) => sql`select pg_backend_pid() as pid, auth.uid()::text as uid`);
      expect(other).toEqual({ pid: before.pid, uid: b.sub });

      // One that succeeds; then the connection as the next client gets it.
      const [inside] = await db.asUser(a, (sql) => sql`select auth.uid()::text as uid, current_setting('statement_timeout') as timeout`);
      expect(inside).toEqual({ uid: a.sub, timeout: "3s" });
      expect(await serverState(probe)).toEqual(before);
    } finally {
      await probe.end({ timeout: 1 });
    }
  });

  it("cancels a statement on the server at statement_timeout, which travels inside the transaction", async () => {
    await useDatabase(ctx.singleServerUrl);
    const running = async () => {
      const [{ n }] = await admin`select count(*)::int as n from pg_stat_activity
                                  where state = 'active' and query like '%zz_timeout_probe%' and pid <> pg_backend_pid()`;
      return n;
    };
    const started = Date.now();
    const sleeping = db.asService()`select pg_sleep(${20}) as zz_timeout_probe`;
    sleeping.catch(() => {});
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await running()).toBe(1);
    await expect(sleeping).rejects.toMatchObject({ code: "STATEMENT_DEADLINE" });
    expect(Date.now() - started).toBeLessThan(4_000);
    // The server itself stops it (the client only stopped waiting): gone within a moment.
    const deadline = Date.now() + 3_000;
    while ((await running()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await running()).toBe(0);
    const [row] = await db.asService()`select current_user as role`;
    expect(row.role).toBe("service_role");
  });
});

describe("lost connections", () => {
  it("recovers every time a server connection is killed mid-step (more times than the pool has connections)", async () => {
    await useDatabase(ctx.functionsDbUrl);
    for (let round = 0; round < 7; round++) {
      const slow = db.asService()`select pg_sleep(${2}) as zz_kill_probe`;
      slow.catch(() => {});
      let killed = 0;
      for (let i = 0; i < 40 && killed === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        [{ killed }] = await admin`select count(pg_terminate_backend(pid))::int as killed from pg_stat_activity
                                   where state = 'active' and query like '%zz_kill_probe%' and pid <> pg_backend_pid()`;
      }
      expect(killed).toBe(1);
      await expect(slow).rejects.toSatisfy((error: unknown) => db.isDatabaseUnavailable(error));
      // The next step works at once (the driver replays the lost session's error on the
      // reconnect; the helper retries that on a new pool).
      const [row] = await db.asService()`select current_user as role`;
      expect(row.role, `round ${round}`).toBe("service_role");
    }
  });
});

/** A loopback proxy that counts round trips: client flights sent after the server last spoke. */
async function roundTripCounter(target: URL) {
  let trips = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    let ready = false;
    let serverSpoke = true;
    client.on("data", (chunk: Buffer) => {
      if (ready && serverSpoke) trips++;
      serverSpoke = false;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      // Counting starts after the handshake's ReadyForQuery ('Z', length 5).
      if (!ready && chunk.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) ready = true;
      serverSpoke = true;
      client.write(chunk);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => (client.destroy(), upstream.destroy()));
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = new URL(target);
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    /** Round trips since the last call. */
    take: () => {
      const n = trips;
      trips = 0;
      return n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("round trips", () => {
  it("pipelines begin, settings, statement and commit: one round trip, more for each statement with parameters", async () => {
    const counter = await roundTripCounter(new URL(ctx.functionsDbUrl));
    try {
      await useDatabase(counter.url);
      await db.asService()`select 1`; // opens the connection
      counter.take();
      await db.asService()`select current_user`;
      expect(counter.take()).toBe(1);
      // Without prepared statements the driver asks for a statement's parameter types
      // first, and holds back what follows until that statement is done.
      await db.asService()`select ${"x"}::text as x`;
      expect(counter.take()).toBe(3);
      // A user's claims are a parameter too; after them the driver sends one statement a round trip.
      await db.asUser(claimsOf(randomUUID()), (sql) => sql`select auth.uid()`);
      expect(counter.take()).toBe(4);
      await db.asUser(claimsOf(randomUUID()), (sql) => sql`select auth.uid() = ${randomUUID()}::uuid`);
      expect(counter.take()).toBe(5);
    } finally {
      await db.closePools();
      await counter.close();
    }
  });
});
