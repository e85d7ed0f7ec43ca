/**
 * The pooled lane's last file (vitest.config.ts runs it after the others): the whole
 * run, seen from PgBouncer and from PostgreSQL. Every login the functions made was
 * switchboard_functions, their traffic went through PgBouncer, and the tables' owner
 * never held a connection in their name.
 */
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { agentWithKey, callFunction, connectedUser } from "../e2e/fixtures.ts";
import { adminSql, closeAdminSql } from "../e2e/helpers.ts";

const ctx = inject("pooled");
const databases = [ctx.database, ctx.singleServerDatabase];
let pgbouncer: postgres.Sql;

/** Transactions PgBouncer has pooled for the lane's database so far. */
async function transactions(): Promise<number> {
  const [stats] = (await pgbouncer.unsafe("show stats")).filter((s) => s.database === ctx.database);
  return Number(stats.total_xact_count);
}

let before = 0;
let after = 0;

beforeAll(async () => {
  // PgBouncer's admin console speaks only the simple protocol.
  pgbouncer = postgres(ctx.adminConsoleUrl, { max: 1, fetch_types: false, prepare: false, onnotice: () => {} });
  const c = await connectedUser();
  const { agent, key } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms", "balance"] }]);
  // A user's step and two service steps through the functions now, so their pool is connected.
  before = await transactions();
  const asUser = await callFunction(`agent-tools?format=openai&agent_id=${agent.id}`, c.user.token);
  expect(asUser.status).toBe(200);
  const send = await callFunction("clicksend/sms/send", key, { body: { to: ["+61411111111"], body: "after the suite" } });
  expect(send.status).toBe(200);
  after = await transactions();
});

afterAll(async () => {
  await pgbouncer.end({ timeout: 1 });
  await closeAdminSql();
});

describe("after the pooled suite", () => {
  it("every client and server connection PgBouncer holds for the lane's databases is switchboard_functions", async () => {
    const clients = (await pgbouncer.unsafe("show clients")).filter((c) => databases.includes(c.database));
    const servers = (await pgbouncer.unsafe("show servers")).filter((s) => databases.includes(s.database));
    expect(clients.some((c) => c.application_name === "switchboard-functions:pool")).toBe(true);
    expect(servers.length).toBeGreaterThan(0);
    expect(clients.filter((c) => c.user !== "switchboard_functions")).toEqual([]);
    expect(servers.filter((s) => s.user !== "switchboard_functions")).toEqual([]);
  });

  it("every login PgBouncer logged for them, over the whole run, was switchboard_functions", () => {
    const logins = [...readFileSync(ctx.pgbouncerLog, "utf8").matchAll(/login attempt: db=(\S+) user=(\S+)/g)]
      .filter(([, db]) => databases.includes(db));
    expect(logins.length).toBeGreaterThan(0);
    expect(logins.filter(([, , user]) => user !== "switchboard_functions").map(([line]) => line)).toEqual([]);
  });

  it("the functions' steps went through PgBouncer: the run's and the three just made", async () => {
    expect(before).toBeGreaterThan(100);
    expect(after - before).toBeGreaterThanOrEqual(3);
  });

  it("PostgreSQL: the functions' sessions log in as switchboard_functions, never as the tables' owner", async () => {
    const sql = adminSql();
    const [{ owner }] = await sql`select tableowner as owner from pg_tables where schemaname = 'public' and tablename = 'operations'`;
    const sessions = await sql`select usename, application_name from pg_stat_activity
                               where datname = ${ctx.database} and application_name like 'switchboard-functions:%'`;
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions.filter((s) => s.usename !== "switchboard_functions")).toEqual([]);
    const [{ n }] = await sql`select count(*)::int as n from pg_stat_activity
                              where datname = ${ctx.database} and usename = ${owner} and application_name like 'switchboard-functions:%'`;
    expect(n).toBe(0);
  });
});
