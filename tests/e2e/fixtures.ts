/**
 * Arrangements shared by the e2e suites, all through the public surface (RPCs via
 * supabase-js as the user): connect the three fake provider accounts, create an agent
 * with grants and a key, point the fakes' webhooks at our functions.
 */
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { newUser, status, type TestUser } from "./helpers.ts";

export interface Connected {
  user: TestUser;
  clicksend: { id: string; webhook_token: string };
  smtp: { id: string; webhook_token: string };
  sendgrid: { id: string; webhook_token: string };
}

/** Calls an RPC as the user (supabase-js); throws on an error. */
export async function rpc<T = any>(user: TestUser, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await user.client.rpc(fn, args);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

export function clicksendAccount() {
  return { credentials: { username: "demo", api_key: "demo-key" }, config: { base_url: status().CLICKSEND_FAKE_URL } };
}

export function smtpAccount(security: "tls" | "starttls" = "tls") {
  const s = status();
  return {
    credentials: { username: "demo", password: "demo-pass" },
    config: {
      host: s.SMTP_FAKE_HOST,
      port: Number(security === "tls" ? s.SMTP_FAKE_PORT : s.SMTP_FAKE_STARTTLS_PORT),
      security,
      from_email: "agent@example.com",
      from_name: "Switchboard Agent",
      tls_ca: readFileSync(s.SMTP_FAKE_CA_PEM_PATH, "utf8"),
    },
  };
}

export function sendgridAccount() {
  const s = status();
  return {
    credentials: { api_key: "SG.demo-key" },
    config: { base_url: s.SENDGRID_FAKE_URL, from_email: "agent@example.com", webhook_public_key: s.SENDGRID_FAKE_PUBLIC_KEY },
  };
}

/** A new user with one connection per provider (credentials go to Vault through the RPC). */
export async function connectedUser(): Promise<Connected> {
  const user = await newUser();
  const make = (provider: string, name: string, account: { credentials: object; config: object }) =>
    rpc(user, "create_connection", { p_provider: provider, p_name: name, p_credentials: account.credentials, p_config: account.config });
  const [clicksend, smtp, sendgrid] = await Promise.all([
    make("clicksend_sms", "ClickSend", clicksendAccount()),
    make("smtp", "Mailbox", smtpAccount()),
    make("sendgrid", "SendGrid", sendgridAccount()),
  ]);
  return { user, clicksend, smtp, sendgrid };
}

export interface GrantSpec {
  connectionId: string;
  scopes: string[];
  dailySendLimit?: number | null;
  maxRecipientsPerMessage?: number;
  allowedRecipients?: string[];
  blockedRecipients?: string[];
  expiresAt?: string | null;
}

/** Creates an agent for the user, grants it, and issues a key. */
export async function agentWithKey(user: TestUser, grants: GrantSpec[], name = "test agent") {
  const agent = await rpc(user, "create_agent", { p_name: name });
  const permissions = [];
  for (const g of grants) {
    permissions.push(await rpc(user, "grant_agent_permission", {
      p_agent_id: agent.id, p_connection_id: g.connectionId, p_scopes: g.scopes,
      p_daily_send_limit: g.dailySendLimit === undefined ? 100 : g.dailySendLimit,
      p_max_recipients_per_message: g.maxRecipientsPerMessage ?? 10,
      p_allowed_recipients: g.allowedRecipients ?? [], p_blocked_recipients: g.blockedRecipients ?? [],
      p_expires_at: g.expiresAt ?? null,
    }));
  }
  const key = await rpc(user, "issue_agent_key", { p_agent_id: agent.id, p_name: "e2e" });
  expect(key.key).toMatch(/^swb_agent_/);
  return { agent, permissions, key: key.key as string, keyId: key.id as string };
}

/** Calls a function over HTTP with a bearer token; returns status and parsed body. */
export async function callFunction(path: string, token: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${status().FUNCTIONS_URL}/${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...init.headers },
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
  const text = await response.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, body, headers: response.headers };
}

/** Points the ClickSend fake's receipt and inbound rules at our webhook for a connection. */
export async function routeClickSendWebhooks(webhookToken: string, type: "post" | "json" = "post") {
  const base = `${status().FUNCTIONS_URL}/clicksend/webhooks/${webhookToken}`;
  const auth = `Basic ${Buffer.from("demo:demo-key").toString("base64")}`;
  for (const [kind, extra] of [["receipts", { match_type: 0 }], ["inbound", { dedicated_number: "*", webhook_type: type }]] as const) {
    const res = await fetch(`${status().CLICKSEND_FAKE_URL}/automations/sms/${kind}`, {
      method: "POST",
      headers: { Authorization: auth, "Content-Type": "application/json" },
      body: JSON.stringify({ rule_name: `e2e ${kind}`, action: "URL", action_address: `${base}/${kind}`, enabled: 1, webhook_type: type, ...extra }),
    });
    expect(res.status).toBe(200);
  }
}

/** Points the SendGrid fake's signed Event Webhook at our function for a connection. */
export async function routeSendGridEvents(webhookToken: string) {
  const res = await fetch(`${status().SENDGRID_FAKE_URL}/v3/user/webhooks/event/settings`, {
    method: "PATCH",
    headers: { Authorization: "Bearer SG.demo-key", "Content-Type": "application/json" },
    body: JSON.stringify({ enabled: true, url: `${status().FUNCTIONS_URL}/sendgrid/webhooks/${webhookToken}/events` }),
  });
  expect(res.status).toBe(200);
}

/** Polls until `check` returns a truthy value (webhooks arrive asynchronously). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------
// Provider suites (providers-*.test.ts, property.test.ts): fake control and
// inspection, an agent-key client, and the database rows a user would look at.
// ---------------------------------------------------------------------------
import { createClient as createSupabaseClient, type SupabaseClient as FixtureSupabaseClient } from "@supabase/supabase-js";
import FixtureWebSocket from "ws";
import { adminSql as fixtureAdminSql } from "./helpers.ts";

/** supabase-js as an agent runtime would use it: the agent key as the bearer token. */
export function agentClient(agentKey: string): FixtureSupabaseClient {
  return createSupabaseClient(status().API_URL, status().ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${agentKey}` } },
    realtime: { transport: FixtureWebSocket as never },
  });
}

/** HTTP status of a failed `functions.invoke` (FunctionsHttpError keeps the Response in `context`). */
export async function invokeError(error: unknown): Promise<{ status: number; body: any }> {
  const response = (error as { context?: Response } | null)?.context;
  if (!response || typeof response.status !== "number") throw new Error(`not an HTTP error: ${String(error)}`);
  const text = await response.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, body };
}

async function fakeJson(url: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: init.body === undefined ? {} : { "Content-Type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The ClickSend fake's /__fake control surface. */
export const clicksendFake = {
  base: () => status().CLICKSEND_FAKE_URL.replace(/\/v3\/?$/, ""),
  async messages(): Promise<any[]> {
    return (await fakeJson(`${clicksendFake.base()}/__fake/messages`)).messages;
  },
  /** Request counts per "METHOD /v3/path". */
  async requests(): Promise<Record<string, number>> {
    return (await fakeJson(`${clicksendFake.base()}/__fake/requests`)).requests;
  },
  /** Every /v3 request the fake has seen. */
  async requestTotal(): Promise<number> {
    return Object.values(await clicksendFake.requests()).reduce((a, b) => a + b, 0);
  },
  reset: (rules = false) => fakeJson(`${clicksendFake.base()}/__fake/reset`, { body: { rules } }),
  fault: (fault: { mode: "http500" | "timeout" | "drop"; path?: string; count?: number; after?: number }) =>
    fakeJson(`${clicksendFake.base()}/__fake/faults`, { body: fault }),
  clearFaults: () => fakeJson(`${clicksendFake.base()}/__fake/faults`, { method: "DELETE" }),
  config: (config: Record<string, unknown>) => fakeJson(`${clicksendFake.base()}/__fake/config`, { body: config }),
  /** Makes the fake push a delivery receipt for one of its messages. */
  receipt: (push: Record<string, unknown>) => fakeJson(`${clicksendFake.base()}/__fake/receipts`, { body: push }),
  /** Makes the fake push an inbound SMS (a reply). */
  inbound: (push: Record<string, unknown>) => fakeJson(`${clicksendFake.base()}/__fake/inbound`, { body: push }),
};

/** The SendGrid fake's /__fake control surface. */
export const sendgridFake = {
  async messages(): Promise<any[]> {
    return (await fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/messages`)).messages;
  },
  /** Every /v3 request seen, faulted ones included. */
  async requests(): Promise<any[]> {
    return (await fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/requests`)).requests;
  },
  reset: () => fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/reset`, { body: {} }),
  fault: (mode: "http500" | "timeout" | "drop", count = 1) =>
    fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/faults`, { body: { mode, count } }),
  config: (config: Record<string, unknown>) => fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/config`, { body: config }),
  /** Makes the fake post (signed) events for one of its messages to the configured webhook. */
  events: (push: Record<string, unknown>) => fakeJson(`${status().SENDGRID_FAKE_URL}/__fake/events`, { body: push }),
};

/** The SMTP fake's HTTP inspection surface. */
export const smtpFake = {
  async messages(): Promise<any[]> {
    return (await fakeJson(`${status().SMTP_FAKE_INSPECT_URL}/__fake/messages`)).messages;
  },
  reset: () => fakeJson(`${status().SMTP_FAKE_INSPECT_URL}/__fake/reset`, { body: {} }),
  fault: (mode: "421" | "450" | "451" | "452" | "drop_after_data" | "timeout" | null, count = 1) =>
    fakeJson(`${status().SMTP_FAKE_INSPECT_URL}/__fake/faults`, { body: { mode, count } }),
};

/** One public.operations row (as the owner would read it through RLS), or undefined. */
export async function operationRow(operationId: string): Promise<any> {
  const [row] = await fixtureAdminSql()`select * from public.operations where id = ${operationId}`;
  return row;
}

/** Puts a finished call back to what a killed host leaves, then closes it as the reconciler does. */
export async function loseOutcome(operationId: string) {
  await fixtureAdminSql()`
    update public.operations set status = 'pending', quota_used = 0, provider_message_ids = '{}', response = null,
           error_code = null, error_message = null, error_details = null, duration_ms = null, finished_at = null
    where id = ${operationId}`;
  const [{ closed }] = await fixtureAdminSql()`
    select private.mark_operation_unknown(${operationId}::uuid, 'no_outcome_recorded_before_deadline') as closed`;
  expect(closed).toBe(true);
}

/** Today's (UTC) usage counter of a grant: what the daily send limit is checked against. */
export async function usedToday(permissionId: string): Promise<number> {
  const [row] = await fixtureAdminSql()`
    select used from public.usage_counters
    where subject_id = ${permissionId} and period = 'day' and period_start = private.utc_today()`;
  return row?.used ?? 0;
}

/** The message_events rows linked to an operation, oldest first. */
export async function eventsForOperation(operationId: string): Promise<any[]> {
  return fixtureAdminSql()`select * from public.message_events where operation_id = ${operationId} order by received_at, id`;
}
