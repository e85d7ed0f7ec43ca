/**
 * The demo scenario, step by step, through the public surface only: supabase-js RPCs
 * and table reads as the demo user (through the local PostgREST stand-in), the edge
 * functions over HTTP as the demo agent, and the provider fakes' own APIs (webhook
 * configuration, inboxes). Nothing here writes to the database directly.
 *
 *   - `npm start` runs it as the stack's seedDemo hook (cli.ts) and puts DEMO_USER_ID,
 *     DEMO_USER_JWT, DEMO_AGENT_ID and DEMO_AGENT_KEY into the status;
 *   - `npm run demo` (tsx packages/devstack/src/demo.ts) runs it again against the
 *     running stack (.devstack/state.json) and updates those keys there.
 *
 * Re-runnable: it first deletes the demo connections, ClickSend rules and keys of an
 * earlier run of itself (again through the public surface).
 */
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import { loadConfig, statePath } from "./config.ts";
import { configureJwt, createUserToken, type JwtIssuer } from "./jwt.ts";
import { readRunningState, type SeedDemoContext, type StackStatus } from "./stack.ts";

/** Created by supabase/seed.sql. */
export const DEMO_USER_ID = "00000000-0000-4000-8000-00000000d3e0";
export const DEMO_USER_EMAIL = "demo@switchboard.local";
/** The demo user's access token lives a week: it is printed for local experiments. */
const DEMO_JWT_TTL_SECONDS = 7 * 24 * 3600;
const NAMES = { clicksend: "Demo ClickSend", smtp: "Demo Mailbox", sendgrid: "Demo SendGrid" } as const;
const RULE_PREFIX = "Switchboard demo";
const KEY_NAME = "demo";
const CLICKSEND_AUTH = `Basic ${Buffer.from("demo:demo-key").toString("base64")}`;

export interface DemoOptions {
  /** Signs the demo user's token; default: the issuer of the stack's state dir. */
  issuer?: JwtIssuer;
  /** Where the transcript goes (default console.log). */
  log?: (line: string) => void;
}

type Json = Record<string, any>;

class DemoError extends Error {}

/**
 * Runs the demo against a running stack. Accepts the stack's status, or the seedDemo
 * hook's context (so `seedDemo: runDemo` works as is).
 */
export async function runDemo(input: StackStatus | SeedDemoContext, opts: DemoOptions = {}): Promise<Record<string, string>> {
  const ctx = "status" in input && typeof input.status === "object" ? (input as SeedDemoContext) : undefined;
  const s: StackStatus = ctx ? ctx.status : (input as StackStatus);
  const issuer = opts.issuer ?? ctx?.issuer;
  const out = opts.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  let step = 0;
  const say = (text: string) => out(`${String(++step).padStart(2)}. ${text}`);
  const detail = (text: string) => out(`      ${text}`);
  const banner = (text: string) => out(`\n── ${text} ${"─".repeat(Math.max(4, 74 - text.length))}`);
  const short = (id: string) => `${id.slice(0, 8)}…`;
  const stamp = new Date().toISOString().slice(11, 19);

  // ---- as the user ---------------------------------------------------------------
  banner("Switchboard demo: the user sets things up (supabase-js as the demo user)");
  const jwt = await createUserToken(DEMO_USER_ID, DEMO_USER_EMAIL, { issuer, expiresInSeconds: DEMO_JWT_TTL_SECONDS });
  const supabase = createClient(s.API_URL, s.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${jwt}` } },
    realtime: { transport: WebSocket as never }, // Node 20 has no global WebSocket
  });
  say(`Demo user ${DEMO_USER_EMAIL} (${DEMO_USER_ID}) signs in: access token from the local issuer (${s.JWKS_URL}).`);

  await cleanUpEarlierRun(supabase, s);

  const smtpCa = s.SMTP_FAKE_CA_PEM_PATH ? await readFile(s.SMTP_FAKE_CA_PEM_PATH, "utf8") : undefined;
  const [clicksend, smtp, sendgrid] = await Promise.all([
    rpc(supabase, "create_connection", {
      p_provider: "clicksend_sms", p_name: NAMES.clicksend,
      p_credentials: { username: "demo", api_key: "demo-key" },
      p_config: { base_url: s.CLICKSEND_FAKE_URL },
    }),
    rpc(supabase, "create_connection", {
      p_provider: "smtp", p_name: NAMES.smtp,
      p_credentials: { username: "demo", password: "demo-pass" },
      p_config: {
        host: s.SMTP_FAKE_HOST, port: Number(s.SMTP_FAKE_PORT), security: "tls",
        from_email: DEMO_USER_EMAIL, from_name: "Demo Assistant", ...(smtpCa ? { tls_ca: smtpCa } : {}),
      },
    }),
    rpc(supabase, "create_connection", {
      p_provider: "sendgrid", p_name: NAMES.sendgrid,
      p_credentials: { api_key: "SG.demo-key" },
      p_config: { base_url: s.SENDGRID_FAKE_URL, from_email: DEMO_USER_EMAIL, webhook_public_key: s.SENDGRID_FAKE_PUBLIC_KEY },
    }),
  ]);
  say("The user connects three provider accounts: rpc('create_connection'); the credentials go to Vault, never to the row.");
  detail(`ClickSend SMS  "${NAMES.clicksend}"  ${short(clicksend.id)}  → ClickSend fake ${s.CLICKSEND_FAKE_URL}`);
  detail(`SMTP mail      "${NAMES.smtp}"    ${short(smtp.id)}  → SMTP fake ${s.SMTP_FAKE_HOST}:${s.SMTP_FAKE_PORT} (implicit TLS)`);
  detail(`SendGrid mail  "${NAMES.sendgrid}"   ${short(sendgrid.id)}  → SendGrid fake ${s.SENDGRID_FAKE_URL}`);

  const hooks = `${s.FUNCTIONS_URL}/clicksend/webhooks/${clicksend.webhook_token}`;
  await Promise.all([
    clicksendApi(s, "POST", "/automations/sms/receipts", {
      rule_name: `${RULE_PREFIX} receipts`, match_type: 0, action: "URL", action_address: `${hooks}/receipts`, enabled: 1, webhook_type: "json",
    }),
    clicksendApi(s, "POST", "/automations/sms/inbound", {
      rule_name: `${RULE_PREFIX} inbound`, dedicated_number: "*", action: "URL", action_address: `${hooks}/inbound`, enabled: 1, webhook_type: "json",
    }),
    http("PATCH", `${s.SENDGRID_FAKE_URL}/v3/user/webhooks/event/settings`, "Bearer SG.demo-key", {
      enabled: true, url: `${s.FUNCTIONS_URL}/sendgrid/webhooks/${sendgrid.webhook_token}/events`,
    }),
  ]);
  say("The user points the providers' webhooks at the functions (with the providers' own APIs, as in their dashboards):");
  detail(`ClickSend receipts + inbound SMS → ${s.FUNCTIONS_URL}/clicksend/webhooks/<token>/{receipts,inbound}`);
  detail(`SendGrid signed Event Webhook    → ${s.FUNCTIONS_URL}/sendgrid/webhooks/<token>/events`);

  const agent = await rpc(supabase, "create_agent", { p_name: "Demo assistant", p_description: "The agent of the npm start demo." });
  const smsGrant = await rpc(supabase, "grant_agent_permission", {
    p_agent_id: agent.id, p_connection_id: clicksend.id, p_scopes: ["sms", "balance"],
    p_daily_send_limit: 5, p_max_recipients_per_message: 3, p_allowed_recipients: [], p_blocked_recipients: [], p_expires_at: null,
  });
  await rpc(supabase, "grant_agent_permission", {
    p_agent_id: agent.id, p_connection_id: smtp.id, p_scopes: ["email"],
    p_daily_send_limit: 100, p_max_recipients_per_message: 10, p_allowed_recipients: ["example.com"], p_blocked_recipients: [], p_expires_at: null,
  });
  await rpc(supabase, "grant_agent_permission", {
    p_agent_id: agent.id, p_connection_id: sendgrid.id, p_scopes: ["email"],
    p_daily_send_limit: 100, p_max_recipients_per_message: 10, p_allowed_recipients: ["example.com"], p_blocked_recipients: [], p_expires_at: null,
  });
  say(`The user creates the agent "Demo assistant" (${agent.id}) and grants it (rpc('grant_agent_permission')):`);
  detail("SMS   (ClickSend): send + balance; at most 3 recipients per message, 5 messages a day");
  detail("Mail  (SMTP):      send; only to addresses at example.com");
  detail("Mail  (SendGrid):  send; only to addresses at example.com");

  const issued = await rpc(supabase, "issue_agent_key", { p_agent_id: agent.id, p_name: KEY_NAME, p_expires_at: null });
  say(`The user issues the agent a key (rpc('issue_agent_key'); shown once, stored hashed): ${issued.key_prefix}…`);

  // ---- as the agent -----------------------------------------------------------------
  banner(`now AS THE AGENT: Authorization: Bearer ${issued.key_prefix}… (no credentials, no user token)`);
  const asAgent = (method: string, path: string, body?: unknown) => http(method, `${s.FUNCTIONS_URL}/${path}`, `Bearer ${issued.key}`, body);
  const call = (name: string, args: Json) => asAgent("POST", "agent-tools", { name, arguments: args });

  const listed = await asAgent("GET", "agent-tools?format=openai");
  const tools = listed.body.tools as Json[];
  say(`GET /agent-tools?format=openai → ${listed.status}, ${tools.length} tools (OpenAI strict function tools):`);
  for (const t of tools) detail(`${t.function.name}: ${t.function.description}`);

  const smsText = `Hi! Your table for two is booked for 7pm. (demo ${stamp})`;
  const sms = await call("clicksend_send_sms", { to: ["+61412345678", "+61412345679"], body: smsText });
  say(`POST /agent-tools clicksend_send_sms to +61412345678, +61412345679 → ${sms.status} ${summary(sms.body)}`);
  expectStatus(sms, 200);

  const mail = await call("smtp_send_email", {
    to: ["ada@example.com"], subject: "Your booking", text: `Table for two at 7pm is confirmed. (demo ${stamp})`,
  });
  say(`POST /agent-tools smtp_send_email to ada@example.com → ${mail.status} ${summary(mail.body)}`);
  expectStatus(mail, 200);
  const mail2 = await call("sendgrid_send_email", {
    to: ["grace@example.com"], subject: "Your receipt", text: `Thanks for dining with us. (demo ${stamp})`, categories: ["demo"],
  });
  say(`POST /agent-tools sendgrid_send_email to grace@example.com → ${mail2.status} ${summary(mail2.body)}`);
  expectStatus(mail2, 200);

  const refused = await call("smtp_send_email", { to: ["someone@gmail.com"], subject: "Hello", text: "Can I write to anyone?" });
  say(`POST /agent-tools smtp_send_email to someone@gmail.com (not example.com) → ${refused.status}`);
  detail(JSON.stringify(refused.body));
  expectStatus(refused, 403);

  const fill = await call("clicksend_send_sms", { to: ["+61412345670", "+61412345671", "+61412345672"], body: `Reminder: 7pm tonight. (demo ${stamp})` });
  say(`POST /agent-tools clicksend_send_sms to 3 more numbers → ${fill.status} ${summary(fill.body)}  (5 of 5 used today)`);
  expectStatus(fill, 200);
  const over = await call("clicksend_send_sms", { to: ["+61412345673"], body: `One more? (demo ${stamp})` });
  say(`POST /agent-tools clicksend_send_sms to one more number → ${over.status}`);
  detail(JSON.stringify(over.body));
  expectStatus(over, 429);

  // ---- as the user again -----------------------------------------------------------------
  banner("back AS THE USER: what happened (read through RLS)");
  const mine = new Set([sms, mail, mail2, fill].map((r) => r.body.operation_id as string));
  const events = await waitForEvents(supabase, mine, 5 + 2, 5_000); // 5 SMS receipts; SendGrid: processed + delivered
  const { data: operations, error: opsError } = await supabase.from("operations")
    .select("id,created_at,capability_key,status,recipient_count,auth_mode,error_code")
    .eq("agent_id", agent.id).order("created_at");
  if (opsError) throw new DemoError(`reading operations: ${opsError.message}`);
  say(`Operation log: supabase.from('operations') as the demo user (RLS; the devstack's PostgREST stand-in answers the read):`);
  for (const o of operations ?? []) {
    detail(`${o.created_at.slice(11, 19)}  ${o.capability_key.padEnd(19)} ${o.status.padEnd(9)} ${String(o.recipient_count).padStart(2)} recipient(s)  ${o.auth_mode}${o.error_code ? `  ${o.error_code}` : ""}  ${short(o.id)}`);
  }

  say(`Delivery events the fakes pushed to the webhooks: supabase.from('message_events') (${events.length}):`);
  for (const e of events) {
    // ClickSend receipts carry the message id, not the number (like the real API).
    const about = e.recipient ?? `message ${String(e.provider_message_id).slice(0, 8)}…`;
    detail(`${e.event_type.padEnd(16)} ${String(e.status).padEnd(9)} ${String(about).padEnd(20)} operation ${e.operation_id ? short(e.operation_id) : "-"}`);
  }

  const since = started - 1000;
  const [csInbox, smtpInbox, sgInbox] = await Promise.all([
    http("GET", `${fakeRoot(s.CLICKSEND_FAKE_URL)}/__fake/messages`),
    s.SMTP_FAKE_INSPECT_URL ? http("GET", `${s.SMTP_FAKE_INSPECT_URL}/__fake/messages`) : Promise.resolve({ status: 0, body: { messages: [] } }),
    http("GET", `${s.SENDGRID_FAKE_URL}/__fake/messages`),
  ]);
  say("The fakes' inboxes (what the providers received):");
  for (const m of (csInbox.body.messages as Json[]).filter((m) => mine.has(m.custom_string))) {
    detail(`ClickSend  SMS   to ${m.to}  "${m.body}"  ${m.status}${m.status_code ? ` (${m.status_code})` : ""}`);
  }
  for (const m of (smtpInbox.body.messages as Json[]).filter((m) => Date.parse(m.receivedAt) >= since)) {
    detail(`SMTP       mail  ${m.envelope.mailFrom} → ${m.envelope.rcptTo.join(", ")}  "${m.parsed.subject}"  (${m.secure ? "TLS" : "plain"}, AUTH ${m.user})`);
  }
  for (const m of (sgInbox.body.messages as Json[]).filter((m) => m.received_at >= since)) {
    detail(`SendGrid   mail  ${m.from.email} → ${m.recipients.join(", ")}  "${m.subject}"  (${m.message_id})`);
  }

  const raised = await rpc(supabase, "update_agent_permission", { p_permission_id: smsGrant.id, p_changes: { daily_send_limit: 100 } });
  say(`The user raises the SMS daily limit to ${raised.daily_send_limit} (rpc('update_agent_permission')) so DEMO_AGENT_KEY keeps working for you.`);
  out(`\nDemo done in ${((Date.now() - started) / 1000).toFixed(1)}s. Try: curl "$FUNCTIONS_URL/agent-tools?format=anthropic" -H "Authorization: Bearer $DEMO_AGENT_KEY"\n`);

  return { DEMO_USER_ID, DEMO_USER_JWT: jwt, DEMO_AGENT_ID: agent.id, DEMO_AGENT_KEY: issued.key };
}

// ---- helpers --------------------------------------------------------------------------

async function rpc(supabase: SupabaseClient, fn: string, args: Json): Promise<Json> {
  const { data, error } = await supabase.rpc(fn, args);
  if (error) throw new DemoError(`rpc ${fn}: ${error.message}`);
  return data as Json;
}

async function http(method: string, url: string, authorization?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(authorization ? { Authorization: authorization } : {}),
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

const fakeRoot = (url: string) => url.replace(/\/v3\/?$/, "");

async function clicksendApi(s: StackStatus, method: string, path: string, body?: unknown) {
  const res = await http(method, `${s.CLICKSEND_FAKE_URL}${path}`, CLICKSEND_AUTH, body);
  if (res.status !== 200) throw new DemoError(`ClickSend ${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

function expectStatus(res: { status: number; body: unknown }, expected: number): void {
  if (res.status !== expected) throw new DemoError(`expected HTTP ${expected}, got ${res.status}: ${JSON.stringify(res.body)}`);
}

function summary(body: Json): string {
  if (body?.error) return `${body.error.code}: ${body.error.message}`;
  return `${body.status}, sent ${body.sent}, provider ids ${(body.provider_message_ids ?? []).join(", ")} (operation ${String(body.operation_id).slice(0, 8)}…)`;
}

/** Removes what an earlier run of the demo left behind, through the same public surface. */
async function cleanUpEarlierRun(supabase: SupabaseClient, s: StackStatus): Promise<void> {
  const { data: connections, error } = await supabase.from("connections").select("id,name");
  if (error) throw new DemoError(`reading connections: ${error.message}`);
  const old = (connections ?? []).filter((c) => (Object.values(NAMES) as string[]).includes(c.name));
  for (const c of old) await rpc(supabase, "delete_connection", { p_connection_id: c.id });
  const { data: keys } = await supabase.from("agent_keys").select("id,name,revoked_at").eq("name", KEY_NAME).is("revoked_at", null);
  for (const k of keys ?? []) await rpc(supabase, "revoke_agent_key", { p_key_id: k.id });
  for (const kind of ["receipts", "inbound"]) {
    const rules = await clicksendApi(s, "GET", `/automations/sms/${kind}`);
    for (const rule of (rules?.data?.data ?? []) as Json[]) {
      if (String(rule.rule_name).startsWith(RULE_PREFIX)) await clicksendApi(s, "DELETE", `/automations/sms/${kind}/${rule[kind === "receipts" ? "receipt_rule_id" : "inbound_rule_id"]}`);
    }
  }
}

/** Polls the user's message events (webhooks arrive asynchronously) until `count` arrived for our operations. */
async function waitForEvents(supabase: SupabaseClient, operations: Set<string>, count: number, timeoutMs: number): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { data, error } = await supabase.from("message_events")
      .select("event_type,status,recipient,provider_message_id,operation_id,received_at").order("received_at");
    if (error) throw new DemoError(`reading message_events: ${error.message}`);
    const ours = (data ?? []).filter((e) => operations.has(e.operation_id));
    if (ours.length >= count || Date.now() > deadline) return ours;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- `npm run demo` ---------------------------------------------------------------------

async function main(): Promise<void> {
  const config = loadConfig();
  const state = await readRunningState(config);
  configureJwt({ stateDir: config.stateDir, apiUrl: state.API_URL });
  const demo = await runDemo(state);
  const file = statePath(config);
  // The earlier demo key was revoked: keep `npm run status` truthful.
  await writeFile(file, `${JSON.stringify({ ...state, ...demo }, null, 2)}\n`, { mode: 0o600 });
  console.log(`Updated ${file}: DEMO_AGENT_ID=${demo.DEMO_AGENT_ID}, DEMO_AGENT_KEY=${demo.DEMO_AGENT_KEY.slice(0, 16)}…`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    console.error(`demo failed: ${error.message}`);
    process.exit(1);
  });
}
