/**
 * Secrets and logs, from the log reader's side. A throwaway cluster (never the machine's
 * shared server) logs everything a deployment could turn on: every statement
 * (log_statement = 'all'), every duration (log_min_duration_statement = 0) and the
 * parameters of failing statements (log_parameter_max_length_on_error = -1). Through
 * the real paths — supabase-js rpc to the PostgREST stand-in, PostgREST's own login
 * role, and a send through the functions (private.begin_tool_call returns the
 * credentials) — distinctive random credentials must appear nowhere in the server log
 * while the settings of the setup migration's credential logging section are in place, and must
 * appear once they are reset, so the check can fail. Every address is loopback.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { configureJwt, createLocalUser, type LocalUser } from "../../packages/devstack/src/jwt.ts";
import { type StackHandle, startStack } from "../../packages/devstack/src/stack.ts";
import { createThrowawayCluster, type ThrowawayCluster } from "./cluster.ts";

const DATABASE = "switchboard_credlog";
/** The setup migration's credential logging section (the DO block that sets the limits), on its own. */
const SETUP_MIGRATION = join(REPO_ROOT, "supabase/migrations/20261128030100_setup.sql");
function credentialLoggingSection(): string {
  const text = readFileSync(SETUP_MIGRATION, "utf8");
  const start = text.lastIndexOf("/**", text.indexOf("---- Section - Credential logging ----"));
  if (start < 0) throw new Error(`no credential logging section in ${SETUP_MIGRATION}`);
  return text.slice(start);
}
const SETTINGS = ["log_parameter_max_length", "log_parameter_max_length_on_error"];
const stateDir = join(REPO_ROOT, ".devstack", "faults-credlog");

let cluster: ThrowawayCluster;
let stack: StackHandle;
let admin: Sql;
let user: LocalUser;
let supabase: SupabaseClient;

/** A credential value no log line could contain by accident. */
const secret = (label: string) => `swbcred-${label}-${randomBytes(12).toString("hex")}`;

function logSize(): number {
  return statSync(cluster.logFile).size;
}

/** The server log written since byte offset `from`. */
function logSince(from: number): string {
  const size = logSize();
  const buffer = Buffer.alloc(Math.max(0, size - from));
  const fd = openSync(cluster.logFile, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString("utf8");
}

/** Polls `check` every 50 ms until it returns a value (bounded). */
async function until<T>(check: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `work`, then waits (bounded) until the server has logged a marker statement sent
 * after it: the log under test is the right file, statement logging is on, and every
 * line about `work` (logged before its reply) is in.
 */
async function logged(work: () => Promise<void>): Promise<string> {
  const from = logSize();
  await work();
  const marker = `swb-credlog-marker-${randomUUID()}`;
  await admin.unsafe(`select '${marker}'`);
  return until(() => {
    const text = logSince(from);
    return text.includes(marker) ? text : undefined;
  });
}

interface Flow {
  /** Every credential value sent. */
  sent: string[];
  /** Credentials the send used (rotated ones), which only begin_tool_call's result carries. */
  rotated: string[];
  agentKey: string;
  /** The log of create, rotate and the failing create. */
  writeLog: string;
  /** The log of the send through the functions. */
  sendLog: string;
}

/** Creates, rotates, fails to create (duplicate name) and sends, as a signed-in user and an agent. */
async function flow(tag: string): Promise<Flow> {
  const created = { username: secret(`${tag}-user`), api_key: secret(`${tag}-key`) };
  const rotated = { username: secret(`${tag}-user2`), api_key: secret(`${tag}-key2`) };
  const duplicate = { username: secret(`${tag}-user3`), api_key: secret(`${tag}-key3`) };
  const config = { base_url: stack.status.CLICKSEND_FAKE_URL };
  let connectionId = "";
  const writeLog = await logged(async () => {
    const c = await supabase.rpc("create_connection", { p_provider: "clicksend_sms", p_name: tag, p_credentials: created, p_config: config });
    expect(c.error).toBeNull();
    connectionId = c.data.id;
    const r = await supabase.rpc("rotate_connection_credentials", { p_connection_id: connectionId, p_credentials: rotated });
    expect(r.error).toBeNull();
    const d = await supabase.rpc("create_connection", { p_provider: "clicksend_sms", p_name: tag, p_credentials: duplicate, p_config: config });
    expect(d.error?.code).toBe("PT409");
  });

  const agent = await supabase.rpc("create_agent", { p_name: `agent ${tag}` });
  const grant = await supabase.rpc("grant_agent_permission", { p_agent_id: agent.data.id, p_connection_id: connectionId, p_scopes: ["sms"] });
  const key = await supabase.rpc("issue_agent_key", { p_agent_id: agent.data.id });
  expect([agent.error, grant.error, key.error]).toEqual([null, null, null]);
  const agentKey = key.data.key as string;

  const sendLog = await logged(async () => {
    const res = await fetch(`${stack.status.FUNCTIONS_URL}/clicksend/sms/send`, {
      method: "POST",
      headers: { Authorization: `Bearer ${agentKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ to: ["+61411111111"], body: `credlog ${tag}` }),
      signal: AbortSignal.timeout(20_000),
    });
    const body = await res.json();
    // The fake knows none of these accounts: ClickSend's 401, after begin_tool_call
    // handed the rotated credentials to the adapter.
    expect(res.status).toBe(502);
    expect(body.error.details).toMatchObject({ status: 401, operation_id: expect.any(String) });
  });

  return {
    sent: [...Object.values(created), ...Object.values(rotated), ...Object.values(duplicate)],
    rotated: Object.values(rotated),
    agentKey,
    writeLog,
    sendLog,
  };
}

/** Runs PostgREST's RPC statement for create_connection the way PostgREST does: logged in as authenticator. */
async function asAuthenticator(credentials: Record<string, string>): Promise<string> {
  const pgrst = postgres(cluster.url.replace("//postgres@", "//authenticator@"), { max: 1, onnotice: () => {} });
  try {
    return await logged(async () => {
      await pgrst.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${JSON.stringify({ sub: user.id, role: "authenticated" })}, true)`;
        // PostgREST's shape: the body is $1, arguments come out of it by json_to_record.
        await tx`
          with pgrst_payload as (select ${tx.json({ p_provider: "clicksend_sms", p_name: `pgrst-${randomUUID()}`, p_credentials: credentials })}::json as json_data)
          select public.create_connection(p_provider => a.p_provider, p_name => a.p_name, p_credentials => a.p_credentials,
                                          p_config => ${tx.json({ base_url: stack.status.CLICKSEND_FAKE_URL })})
          from pgrst_payload, lateral json_to_record(pgrst_payload.json_data) as a(p_provider text, p_name text, p_credentials jsonb)`;
      });
    });
  } finally {
    await pgrst.end({ timeout: 1 });
  }
}

/**
 * Starts the stack (PostgREST stand-in and functions host) and signs a fresh user in
 * through supabase-js. Role settings apply to new sessions only, so a stack started
 * after a settings change runs under the new ones.
 */
async function boot(reset: boolean): Promise<void> {
  stack = await startStack({
    databaseUrl: cluster.url,
    reset,
    config: { ephemeralPorts: true, stateDir },
    functionsLog: join(stateDir, "functions.log"),
    writeState: false,
    log: () => {},
  });
  configureJwt({ stateDir, apiUrl: stack.status.API_URL });
  user = await createLocalUser(admin, `credlog-${randomUUID()}@example.test`);
  supabase = createClient(stack.status.API_URL, stack.status.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${user.token}` } },
    realtime: { transport: WebSocket as never },
  });
}

beforeAll(async () => {
  cluster = await createThrowawayCluster(
    DATABASE,
    { log_statement: "'all'", log_min_duration_statement: "0", log_parameter_max_length_on_error: "-1" },
    `swb_credlog_${process.pid}`,
  );
  admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  await boot(true);
}, 120_000);

afterAll(async () => {
  await admin?.end({ timeout: 1 }).catch(() => {});
  await stack?.stop();
  cluster?.drop();
});

describe("credentials never reach the server log", () => {
  it("the migration set both limits to 0 for PostgREST's login role and the functions' (here: the migrating role), in this database only", async () => {
    const rows = await admin`
      select r.rolname, s.setconfig
      from pg_db_role_setting s
      join pg_roles r on r.oid = s.setrole
      join pg_database d on d.oid = s.setdatabase
      where d.datname = ${DATABASE} and r.rolname in ('authenticator', 'postgres')`;
    const byRole = Object.fromEntries(rows.map((r) => [r.rolname, r.setconfig as string[]]));
    for (const role of ["authenticator", "postgres"]) {
      expect(byRole[role]).toEqual(expect.arrayContaining(SETTINGS.map((s) => `${s}=0`)));
    }
  });

  it("with every statement, duration and failing statement logged, create, rotate, a failing create and a send leave no credential, access token or agent key in the log", async () => {
    const run = await flow("on");
    // Statement logging is really on: the calls themselves are in the log, without values.
    expect(run.writeLog).toMatch(/execute [^:]*:.*public\."?create_connection/);
    expect(run.writeLog).toMatch(/duration: [\d.]+ ms {2}bind [^:]*:.*public\."?rotate_connection_credentials/);
    expect(run.writeLog).toMatch(/ERROR: {2}the workspace already has a connection named/);
    expect(run.sendLog).toMatch(/private\.begin_tool_call/);
    const all = run.writeLog + run.sendLog;
    for (const value of [...run.sent, user.token, run.agentKey]) expect(all).not.toContain(value);
    expect(all).not.toMatch(/DETAIL: {2}parameters:|with parameters:/);

    // The functions' own log: one structured line for the 502, nothing secret.
    const functionsLog = await until(() => {
      const text = readFileSync(join(stateDir, "functions.log"), "utf8");
      return text.includes('"status":502') ? text : undefined;
    });
    expect(functionsLog).toMatch(/\{"level":"error","event":"request_failed","route":"\/clicksend\/sms\/send","status":502,"code":"provider_error",[^\n]*"operation_id":/);
    for (const value of [...run.sent, user.token, run.agentKey]) expect(functionsLog).not.toContain(value);
    expect(functionsLog).not.toMatch(/rejected the credentials/);
  });

  it("PostgREST's own login role (authenticator, then SET ROLE) is covered too", async () => {
    const value = secret("pgrst");
    const log = await asAuthenticator({ username: secret("pgrst-user"), api_key: value });
    expect(log).toMatch(/authenticator@switchboard_credlog LOG: {2}execute/);
    expect(log).not.toContain(value);
  });

  it("with the limits reset, the same calls are logged in plaintext (this test can fail); results, such as begin_tool_call's credentials, never are", async () => {
    for (const role of ["authenticator", "postgres"]) {
      for (const setting of SETTINGS) await admin.unsafe(`alter role ${role} in database ${DATABASE} reset ${setting}`);
    }
    await stack.stop();
    await boot(false);

    const run = await flow("off");
    for (const value of run.sent) expect(run.writeLog).toContain(value);
    // The failing create's parameters are logged with its error as well.
    expect(run.writeLog).toMatch(/unnamed portal with parameters: .*swbcred-off-key3-/);
    // The send passed only the agent key's hash; the credentials came back as a result.
    for (const value of [...run.rotated, run.agentKey]) expect(run.sendLog).not.toContain(value);

    const value = secret("pgrst-off");
    expect(await asAuthenticator({ username: secret("pgrst-off-user"), api_key: value })).toContain(value);
  });

  it("where the migrating role may not set the superuser-only limit, the migration skips it with a NOTICE and fails nothing", async () => {
    const notices: string[] = [];
    const sql = postgres(cluster.url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
    try {
      await sql`create role swb_credlog_migrator nologin createrole`;
      await sql.begin(async (tx) => {
        await tx`set local role swb_credlog_migrator`;
        await tx.unsafe(credentialLoggingSection());
        throw new Error("rollback");
      }).catch((error: Error) => {
        if (error.message !== "rollback") throw error;
      });
      await sql`drop role swb_credlog_migrator`;
    } finally {
      await sql.end({ timeout: 1 });
    }
    expect(notices).toEqual(expect.arrayContaining([
      expect.stringMatching(/log_parameter_max_length is not set for role authenticator/),
      expect.stringMatching(/log_parameter_max_length is not set for role postgres/),
    ]));
  });
});
