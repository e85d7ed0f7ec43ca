/**
 * The demo scenario, step by step, through the public surface only: supabase-js RPCs
 * and table reads as the demo users (through the local PostgREST stand-in), the edge
 * functions over HTTP as the member's agent and as the member, and the provider fakes'
 * own APIs (webhook configuration, inboxes). Nothing here writes to the database
 * directly.
 *
 * The story is a team: the demo user (the owner) signs in with their password (through the
 * devstack's Auth stand-in) and creates the workspace "Demo Team",
 * invites the seeded member, who accepts with the invitation's token; the owner connects
 * the three providers in the team and gives the member permission to send (5 SMS a day)
 * and a number of their own; the member creates an agent and grants it part of what
 * they hold; the agent sends from the member's number until the member's limit stops it.
 * Then the owner adds Twilio and Telnyx with an SMS route, and an `sms_send` fails over
 * from Twilio (rate-limited) to Telnyx.
 *
 *   - `npm start` runs it as the stack's seedDemo hook (cli.ts) and puts DEMO_USER_ID,
 *     DEMO_USER_EMAIL, DEMO_USER_PASSWORD, DEMO_USER_JWT (the owner), DEMO_WORKSPACE_ID,
 *     DEMO_MEMBER_ID, DEMO_MEMBER_EMAIL, DEMO_MEMBER_JWT, DEMO_AGENT_ID and DEMO_AGENT_KEY
 *     (the member's agent) into the status;
 *   - `npm run demo` (tsx packages/devstack/src/demo.ts) runs it again against the
 *     running stack (.devstack/state.json) and updates those keys there.
 *
 * Re-runnable: it reuses "Demo Team" by name and first removes what an earlier run of
 * itself left there (its connections, ClickSend rules and keys, and the member, who is
 * invited again), again through the public surface.
 */
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import { loadConfig, statePath } from "./config.ts";
import { configureJwt, createUserToken, type JwtIssuer } from "./jwt.ts";
import { readRunningState, type SeedDemoContext, type StackStatus } from "./stack.ts";
import { TELNYX_FAKE_API_KEY } from "./fakes/telnyx.ts";
import { TWILIO_FAKE_ACCOUNT, TWILIO_FAKE_AUTH_TOKEN } from "./fakes/twilio.ts";

/** Created by supabase/seed.sql: the owner of the demo team. */
export const DEMO_USER_ID = "00000000-0000-4000-8000-00000000d3e0";
export const DEMO_USER_EMAIL = "demo@switchboard.local";
/**
 * The owner's password, set by supabase/seed.sql (a bcrypt hash, local only): sign in
 * with supabase.auth.signInWithPassword() against the local stack.
 */
export const DEMO_USER_PASSWORD = "switchboard-demo";
/** Created by supabase/seed.sql: the member the owner invites. */
export const DEMO_MEMBER_ID = "00000000-0000-4000-8000-00000000d3e1";
export const DEMO_MEMBER_EMAIL = "member@switchboard.local";
export const DEMO_WORKSPACE_NAME = "Demo Team";
/** The printed DEMO_*_JWT access tokens live a week, for local experiments (no session behind them). */
const DEMO_JWT_TTL_SECONDS = 7 * 24 * 3600;
const NAMES = { clicksend: "Demo ClickSend", smtp: "Demo Mailbox", sendgrid: "Demo SendGrid", twilio: "Demo Twilio", telnyx: "Demo Telnyx" } as const;
const NUMBERS = { desk: "+61480000000", member: "+61480000001" } as const;
/** The member's SMS limit while the demo runs (raised at the end). */
const MEMBER_DAILY_LIMIT = 5;
const RAISED_DAILY_LIMIT = 100;
const RULE_PREFIX = "Switchboard demo";
const KEY_NAME = "demo";
const CLICKSEND_AUTH = `Basic ${Buffer.from("demo:demo-key").toString("base64")}`;

export interface DemoOptions {
  /** Signs the demo users' tokens; default: the issuer of the stack's state dir. */
  issuer?: JwtIssuer;
  /** Where the transcript goes (default console.log). */
  log?: (line: string) => void;
}

type Json = Record<string, any>;

class DemoError extends Error {}

/** supabase-js as one signed-in user (Node 20 has no global WebSocket: one is passed). */
function userClient(s: StackStatus, jwt: string): SupabaseClient {
  return createClient(s.API_URL, s.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${jwt}` } },
    realtime: { transport: WebSocket as never },
  });
}

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

  // ---- as the owner -----------------------------------------------------------------
  banner("Switchboard demo: the owner sets up a team (supabase-js as the demo user)");
  const jwt = await createUserToken(DEMO_USER_ID, DEMO_USER_EMAIL, { issuer, expiresInSeconds: DEMO_JWT_TTL_SECONDS });
  const memberJwt = await createUserToken(DEMO_MEMBER_ID, DEMO_MEMBER_EMAIL, { issuer, expiresInSeconds: DEMO_JWT_TTL_SECONDS });
  const supabase = createClient(s.API_URL, s.PUBLISHABLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as never },
  });
  const { data: signedIn, error: signInError } = await supabase.auth.signInWithPassword({ email: DEMO_USER_EMAIL, password: DEMO_USER_PASSWORD });
  if (signInError || !signedIn.session) throw new DemoError(`signing in as ${DEMO_USER_EMAIL}: ${signInError?.message ?? "no session"}`);
  const ownerToken = signedIn.session.access_token;
  const asMember = userClient(s, memberJwt);
  say(`Demo user ${DEMO_USER_EMAIL} (${DEMO_USER_ID}) signs in with their password: supabase.auth.signInWithPassword() → a session whose access token is from the local issuer (${s.JWKS_URL}).`);

  const { team, reused } = await demoTeam(supabase);
  await cleanUpEarlierRun(supabase, s, team.id);
  say(`${reused ? "The owner reuses" : "The owner creates"} the team workspace "${team.name}" (${team.id})${reused ? " from an earlier run" : ": rpc('create_workspace')"}; the demo user owns it.`);

  const invitation = await rpc(supabase, "invite_workspace_member", { p_workspace_id: team.id, p_email: DEMO_MEMBER_EMAIL, p_role: "member" });
  say(`The owner invites ${DEMO_MEMBER_EMAIL} as a member: rpc('invite_workspace_member') → token ${invitation.token.slice(0, 15)}… (shown once, stored hashed)`);
  const joined = await rpc(asMember, "accept_workspace_invitation", { p_token: invitation.token });
  say(`The member (${DEMO_MEMBER_ID}) signs in and accepts it: rpc('accept_workspace_invitation') → role "${joined.role}" in "${joined.name}".`);

  const smtpCa = s.SMTP_FAKE_CA_PEM_PATH ? await readFile(s.SMTP_FAKE_CA_PEM_PATH, "utf8") : undefined;
  const [clicksend, smtp, sendgrid] = await Promise.all([
    rpc(supabase, "create_connection", {
      p_provider: "clicksend_sms", p_name: NAMES.clicksend, p_workspace_id: team.id,
      p_credentials: { username: "demo", api_key: "demo-key" },
      p_config: { base_url: s.CLICKSEND_FAKE_URL },
    }),
    rpc(supabase, "create_connection", {
      p_provider: "smtp", p_name: NAMES.smtp, p_workspace_id: team.id,
      p_credentials: { username: "demo", password: "demo-pass" },
      p_config: {
        host: s.SMTP_FAKE_HOST, port: Number(s.SMTP_FAKE_PORT), security: "tls",
        from_email: DEMO_USER_EMAIL, from_name: "Demo Assistant", ...(smtpCa ? { tls_ca: smtpCa } : {}),
      },
    }),
    rpc(supabase, "create_connection", {
      p_provider: "sendgrid", p_name: NAMES.sendgrid, p_workspace_id: team.id,
      p_credentials: { api_key: "SG.demo-key" },
      p_config: { base_url: s.SENDGRID_FAKE_URL, from_email: DEMO_USER_EMAIL, webhook_public_key: s.SENDGRID_FAKE_PUBLIC_KEY },
    }),
  ]);
  say("The owner connects three provider accounts in the team: rpc('create_connection', {p_workspace_id}); the credentials go to Vault, never to the row.");
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
  say("The owner points the providers' webhooks at the functions (with the providers' own APIs, as in their dashboards):");
  detail(`ClickSend receipts + inbound SMS → ${s.FUNCTIONS_URL}/clicksend/webhooks/<token>/{receipts,inbound}`);
  detail(`SendGrid signed Event Webhook    → ${s.FUNCTIONS_URL}/sendgrid/webhooks/<token>/events`);

  const smsPermission = await memberMaySend(supabase, clicksend.id, MEMBER_DAILY_LIMIT);
  await memberMaySend(supabase, smtp.id, null);
  await memberMaySend(supabase, sendgrid.id, null);
  const desk = await rpc(supabase, "add_phone_number", { p_connection_id: clicksend.id, p_e164: NUMBERS.desk, p_friendly_name: "Front desk" });
  const line = await rpc(supabase, "add_phone_number", {
    p_connection_id: clicksend.id, p_e164: NUMBERS.member, p_friendly_name: "Member's line", p_assigned_to: DEMO_MEMBER_ID,
  });
  say("The owner decides what the member may do (rpc('set_member_permission')) and gives them a number (rpc('add_phone_number')):");
  detail(`SMS   (ClickSend): may send, at most ${smsPermission.daily_send_limit} messages a day (the member's own limit, shared by all their agents)`);
  detail("Mail  (SMTP, SendGrid): may send");
  detail(`Numbers: ${desk.e164} "Front desk" (the team's pool, the connection's default), ${line.e164} "Member's line" (assigned to the member)`);

  // ---- as the member ------------------------------------------------------------------
  banner(`now AS THE MEMBER: supabase-js as ${DEMO_MEMBER_EMAIL}`);
  await rpc(asMember, "set_member_default_number", { p_phone_number_id: line.id });
  say(`The member makes ${line.e164} their default number: rpc('set_member_default_number'). Their sends go out from it.`);

  const agent = await rpc(asMember, "create_agent", {
    p_name: "Demo assistant", p_description: "The member's agent in the npm start demo.", p_workspace_id: team.id,
  });
  const grantSms = (daily: number) => ({
    p_agent_id: agent.id, p_connection_id: clicksend.id, p_scopes: ["sms", "balance"],
    p_daily_send_limit: daily, p_max_recipients_per_message: 3, p_allowed_recipients: [], p_blocked_recipients: [], p_expires_at: null,
  });
  const tooMuch = await asMember.rpc("grant_agent_permission", grantSms(50));
  say(`The member creates the agent "Demo assistant" (${agent.id}) in the team and tries to grant it 50 SMS a day → ${tooMuch.status} ${tooMuch.error?.code}`);
  detail(tooMuch.error?.message ?? "(granted?)");
  if (tooMuch.status !== 403) throw new DemoError(`expected the over-grant to be refused with 403, got ${tooMuch.status}`);
  const smsGrant = await rpc(asMember, "grant_agent_permission", grantSms(MEMBER_DAILY_LIMIT));
  for (const c of [smtp, sendgrid]) {
    await rpc(asMember, "grant_agent_permission", {
      p_agent_id: agent.id, p_connection_id: c.id, p_scopes: ["email"],
      p_daily_send_limit: 100, p_max_recipients_per_message: 10, p_allowed_recipients: ["example.com"], p_blocked_recipients: [], p_expires_at: null,
    });
  }
  say("The member grants it what they hold, no more (rpc('grant_agent_permission')):");
  detail(`SMS   (ClickSend): send + balance; at most 3 recipients per message, ${MEMBER_DAILY_LIMIT} messages a day`);
  detail("Mail  (SMTP):      send; only to addresses at example.com");
  detail("Mail  (SendGrid):  send; only to addresses at example.com");

  const issued = await rpc(asMember, "issue_agent_key", { p_agent_id: agent.id, p_name: KEY_NAME, p_expires_at: null });
  say(`The member issues the agent a key (rpc('issue_agent_key'); shown once, stored hashed): ${issued.key_prefix}…`);

  // ---- as the agent -----------------------------------------------------------------
  banner(`now AS THE AGENT: Authorization: Bearer ${issued.key_prefix}… (no credentials, no user token)`);
  const asAgent = (method: string, path: string, body?: unknown) => http(method, `${s.FUNCTIONS_URL}/${path}`, `Bearer ${issued.key}`, body);
  const call = (name: string, args: Json) => asAgent("POST", "agent-tools", { name, arguments: args });

  const listed = await asAgent("GET", "agent-tools?format=openai");
  const tools = listed.body.tools as Json[];
  say(`GET /agent-tools?format=openai → ${listed.status}, ${tools.length} tools (OpenAI strict function tools):`);
  for (const t of tools) detail(`${t.function.name}: ${t.function.description}`);

  const smsText = `Hi! Your table for two is booked for 7pm. (demo ${stamp})`;
  const sms = await call("sms_send", { to: ["+61412345678", "+61412345679"], body: smsText });
  say(`POST /agent-tools sms_send to +61412345678, +61412345679 → ${sms.status} ${summary(sms.body)}`);
  expectStatus(sms, 200);

  const mail = await call("email_send", {
    to: ["ada@example.com"], subject: "Your booking", text: `Table for two at 7pm is confirmed. (demo ${stamp})`,
  });
  say(`POST /agent-tools email_send to ada@example.com (no account: the team's default mail account, SMTP) → ${mail.status} ${summary(mail.body)}`);
  expectStatus(mail, 200);
  const mail2 = await call("email_send", {
    to: ["grace@example.com"], subject: "Your receipt", text: `Thanks for dining with us. (demo ${stamp})`, account: sendgrid.id,
  });
  say(`POST /agent-tools email_send to grace@example.com, account: SendGrid → ${mail2.status} ${summary(mail2.body)}`);
  expectStatus(mail2, 200);

  const refused = await call("email_send", { to: ["someone@gmail.com"], subject: "Hello", text: "Can I write to anyone?" });
  say(`POST /agent-tools email_send to someone@gmail.com (not example.com) → ${refused.status}`);
  detail(JSON.stringify(refused.body));
  expectStatus(refused, 403);

  const spoofed = await call("sms_send", { to: ["+61412345677"], body: `From the desk? (demo ${stamp})`, from: "+61400000999" });
  say(`POST /agent-tools sms_send from +61400000999 (not a number the member may use) → ${spoofed.status} ${summary(spoofed.body)}`);
  expectStatus(spoofed, 403);

  const own = await http("POST", `${s.FUNCTIONS_URL}/clicksend/sms/send`, `Bearer ${memberJwt}`, {
    to: ["+61412345670"], body: `See you at 7pm. (demo ${stamp}, sent by the member)`,
  });
  say(`The member texts one number themselves (their JWT, POST /clicksend/sms/send) → ${own.status} ${summary(own.body)}`);
  detail(`3 of the member's ${MEMBER_DAILY_LIMIT} messages are used today: the member's own sends and their agents' share one counter.`);
  expectStatus(own, 200);

  const fill = await call("sms_send", { to: ["+61412345671", "+61412345672"], body: `Reminder: 7pm tonight. (demo ${stamp})` });
  say(`POST /agent-tools sms_send to 2 more numbers → ${fill.status} ${summary(fill.body)}  (${MEMBER_DAILY_LIMIT} of ${MEMBER_DAILY_LIMIT} used today)`);
  expectStatus(fill, 200);
  const over = await call("sms_send", { to: ["+61412345673"], body: `One more? (demo ${stamp})` });
  say(`POST /agent-tools sms_send to one more number → ${over.status} (the agent's own grant has 1 left: the member's limit refuses)`);
  detail(JSON.stringify(over.body));
  expectStatus(over, 429);

  // ---- a route with failover -------------------------------------------------------------
  banner("AS THE OWNER: two more SMS accounts and a route that fails over");
  const [twilioAccount, telnyxAccount] = await Promise.all([
    rpc(supabase, "create_connection", {
      p_provider: "twilio", p_name: NAMES.twilio, p_workspace_id: team.id,
      p_credentials: { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN }, p_config: { base_url: s.TWILIO_FAKE_URL },
    }),
    rpc(supabase, "create_connection", {
      p_provider: "telnyx", p_name: NAMES.telnyx, p_workspace_id: team.id,
      p_credentials: { api_key: TELNYX_FAKE_API_KEY }, p_config: { base_url: s.TELNYX_FAKE_URL, webhook_public_key: s.TELNYX_FAKE_PUBLIC_KEY },
    }),
  ]);
  for (const [fn, account] of [["twilio", twilioAccount], ["telnyx", telnyxAccount]] as const) {
    const synced = await http("POST", `${s.FUNCTIONS_URL}/${fn}/numbers/sync`, `Bearer ${ownerToken}`, { connection_id: account.id });
    expectStatus(synced, 200);
    detail(`${fn.padEnd(7)} ${short(account.id)}: POST /${fn}/numbers/sync → ${synced.body.added} numbers added to the team's pool`);
    await memberMaySend(supabase, account.id, RAISED_DAILY_LIMIT);
  }
  await rpc(supabase, "set_route", { p_workspace_id: team.id, p_channel: "sms", p_connection_ids: [twilioAccount.id, telnyxAccount.id] });
  say("The owner connects Twilio and Telnyx, syncs their numbers, lets the member send on both, and sets the team's SMS route: rpc('set_route', {p_channel: 'sms', [Twilio, Telnyx]}).");
  for (const account of [twilioAccount, telnyxAccount]) {
    await rpc(asMember, "grant_agent_permission", {
      p_agent_id: agent.id, p_connection_id: account.id, p_scopes: ["sms"], p_daily_send_limit: 20,
      p_max_recipients_per_message: 3, p_allowed_recipients: [], p_blocked_recipients: [], p_expires_at: null,
    });
  }
  say("The member grants the agent SMS on both (20 a day each).");
  const routed = await call("sms_send", { to: ["+14155550188"], body: `Your order shipped. (demo ${stamp})` });
  say(`POST /agent-tools sms_send (the channel tool: the route picks the account) → ${routed.status}, sent through ${routed.body.provider}`);
  expectStatus(routed, 200);
  await http("POST", `${s.TWILIO_FAKE_URL}/__fake/faults`, undefined, { mode: "http429", count: 1 });
  const failedOver = await call("sms_send", { to: ["+14155550189"], body: `Your order is out for delivery. (demo ${stamp})` });
  say(`Twilio starts rate-limiting (the fake answers 429). POST /agent-tools sms_send → ${failedOver.status}, sent through ${failedOver.body.provider}`);
  detail(`failed over: ${JSON.stringify(failedOver.body.failed_over)}: a 429 proves Twilio did not take it, so Telnyx may; one operation, quota counted once`);
  expectStatus(failedOver, 200);
  if (failedOver.body.provider !== "telnyx") throw new DemoError(`expected the send to fail over to Telnyx, got ${failedOver.body.provider}`);
  const { data: attempts } = await asMember.from("operation_attempts").select("attempt,provider,outcome,error_code,provider_status")
    .eq("operation_id", failedOver.body.operation_id);
  detail(`operation_attempts (the member reads their own): ${JSON.stringify(attempts)}`);

  // ---- as the owner again --------------------------------------------------------------
  banner("back AS THE OWNER: what happened in the team (read through RLS)");
  const mine = new Set([sms, mail, mail2, own, fill].map((r) => r.body.operation_id as string));
  const events = await waitForEvents(supabase, mine, 5 + 2, 5_000); // 5 SMS receipts; SendGrid: processed + delivered
  const { data: operations, error: opsError } = await supabase.from("operations")
    .select("id,created_at,capability_key,status,recipient_count,auth_mode,sender,error_code")
    .eq("workspace_id", team.id).order("created_at");
  if (opsError) throw new DemoError(`reading operations: ${opsError.message}`);
  const recent = (operations ?? []).filter((o) => Date.parse(o.created_at) >= started - 1000);
  say(`Operation log: supabase.from('operations') as the owner (an owner reads the team's; the devstack's PostgREST stand-in answers the read):`);
  for (const o of recent) {
    detail(`${o.created_at.slice(11, 19)}  ${o.capability_key.padEnd(19)} ${o.status.padEnd(9)} ${String(o.recipient_count).padStart(2)} recipient(s)  ${o.auth_mode.padEnd(9)} ${(o.sender ?? "").padEnd(12)}${o.error_code ? `  ${o.error_code}` : ""}  ${short(o.id)}`);
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
    detail(`ClickSend  SMS   ${m.from ?? "(shared)"} → ${m.to}  "${m.body}"  ${m.status}${m.status_code ? ` (${m.status_code})` : ""}`);
  }
  for (const m of (smtpInbox.body.messages as Json[]).filter((m) => Date.parse(m.receivedAt) >= since)) {
    detail(`SMTP       mail  ${m.envelope.mailFrom} → ${m.envelope.rcptTo.join(", ")}  "${m.parsed.subject}"  (${m.secure ? "TLS" : "plain"}, AUTH ${m.user})`);
  }
  for (const m of (sgInbox.body.messages as Json[]).filter((m) => m.received_at >= since)) {
    detail(`SendGrid   mail  ${m.from.email} → ${m.recipients.join(", ")}  "${m.subject}"  (${m.message_id})`);
  }

  const { data: audit, error: auditError } = await supabase.from("audit_events")
    .select("id,action,actor_user_id,created_at").eq("workspace_id", team.id).order("id");
  if (auditError) throw new DemoError(`reading audit_events: ${auditError.message}`);
  const who = (id: string | null) => (id === DEMO_USER_ID ? "owner" : id === DEMO_MEMBER_ID ? "member" : "other");
  const thisRun = (audit ?? []).filter((e) => Date.parse(e.created_at) >= started - 1000);
  const tally = new Map<string, number>();
  for (const e of thisRun) tally.set(`${e.action} (${who(e.actor_user_id)})`, (tally.get(`${e.action} (${who(e.actor_user_id)})`) ?? 0) + 1);
  say(`Audit trail: supabase.from('audit_events') as the owner (admins only; members read none), ${thisRun.length} events this run:`);
  detail([...tally].map(([k, n]) => (n > 1 ? `${k} ×${n}` : k)).join(", "));

  await memberMaySend(supabase, clicksend.id, RAISED_DAILY_LIMIT);
  const raised = await rpc(asMember, "update_agent_permission", { p_permission_id: smsGrant.id, p_changes: { daily_send_limit: RAISED_DAILY_LIMIT } });
  say(`The owner raises the member's SMS limit to ${RAISED_DAILY_LIMIT} a day and the member the agent's to ${raised.daily_send_limit}, so DEMO_AGENT_KEY keeps working for you.`);
  out(`\nDemo done in ${((Date.now() - started) / 1000).toFixed(1)}s. Try: curl "$FUNCTIONS_URL/agent-tools?format=anthropic" -H "Authorization: Bearer $DEMO_AGENT_KEY"\n`);

  return {
    DEMO_USER_ID, DEMO_USER_EMAIL, DEMO_USER_PASSWORD, DEMO_USER_JWT: jwt,
    DEMO_WORKSPACE_ID: team.id,
    DEMO_MEMBER_ID, DEMO_MEMBER_EMAIL, DEMO_MEMBER_JWT: memberJwt,
    DEMO_AGENT_ID: agent.id, DEMO_AGENT_KEY: issued.key,
  };
}

/** The member may view and send on a connection, with a daily limit (null: none). */
function memberMaySend(supabase: SupabaseClient, connectionId: string, dailyLimit: number | null): Promise<Json> {
  return rpc(supabase, "set_member_permission", {
    p_connection_id: connectionId, p_user_id: DEMO_MEMBER_ID, p_can_view: true, p_can_send: true, p_daily_send_limit: dailyLimit,
  });
}

/** The owner's "Demo Team", created on the first run and reused by name after. */
async function demoTeam(supabase: SupabaseClient): Promise<{ team: Json; reused: boolean }> {
  const { data, error } = await supabase.from("workspaces").select("id,name")
    .eq("name", DEMO_WORKSPACE_NAME).eq("primary_owner_user_id", DEMO_USER_ID).eq("personal", false).order("created_at").limit(1);
  if (error) throw new DemoError(`reading workspaces: ${error.message}`);
  if (data?.length) return { team: data[0]!, reused: true };
  return { team: await rpc(supabase, "create_workspace", { p_name: DEMO_WORKSPACE_NAME }), reused: false };
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

/**
 * Removes what an earlier run of the demo left behind, through the same public surface,
 * as the owner: its connections (their grants go with them) and keys, the member (who is
 * invited again; their agents there are disabled with the membership), the ClickSend rules.
 */
async function cleanUpEarlierRun(supabase: SupabaseClient, s: StackStatus, teamId: string): Promise<void> {
  const { data: connections, error } = await supabase.from("connections").select("id,name");
  if (error) throw new DemoError(`reading connections: ${error.message}`);
  const old = (connections ?? []).filter((c) => (Object.values(NAMES) as string[]).includes(c.name));
  for (const c of old) await rpc(supabase, "delete_connection", { p_connection_id: c.id });
  // An owner reads (and may revoke) every key of the team's agents.
  const { data: keys } = await supabase.from("agent_keys").select("id,name,revoked_at").eq("name", KEY_NAME).is("revoked_at", null);
  for (const k of keys ?? []) await rpc(supabase, "revoke_agent_key", { p_key_id: k.id });
  const { data: members } = await supabase.from("workspace_members").select("user_id").eq("workspace_id", teamId).eq("user_id", DEMO_MEMBER_ID);
  if (members?.length) await rpc(supabase, "remove_workspace_member", { p_workspace_id: teamId, p_user_id: DEMO_MEMBER_ID });
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
  console.log(`Updated ${file}: DEMO_WORKSPACE_ID=${demo.DEMO_WORKSPACE_ID}, DEMO_AGENT_ID=${demo.DEMO_AGENT_ID}, DEMO_AGENT_KEY=${demo.DEMO_AGENT_KEY!.slice(0, 16)}…`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    console.error(`demo failed: ${error.message}`);
    process.exit(1);
  });
}
