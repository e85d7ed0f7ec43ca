/**
 * SendGrid v3 adapter: Mail Send, a key check, and the signed Event Webhook.
 *
 * A client is built from {credentials, config, network policy} (createSendGridClient):
 * the stored config is parsed by the connection-config rules (a CR/LF in from_name is a
 * 400, never forwarded), the API key only goes to SendGrid's own hosts unless the policy
 * allows custom provider hosts, and every request goes through the shared HTTP transport
 * (providers/transport.ts): network guard first, redirects never followed, and the one
 * "may this have been sent?" rule (a 5xx or a cut-off on a send: maybe sent).
 *
 * Knows SendGrid's wire format and nothing about Supabase. Runtime-neutral (Deno and
 * Node): fetch, crypto.subtle, TextEncoder and atob only.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import type { NetworkPolicy } from "../net/guard.ts";
import {
  assertHeaderSafeCredentials,
  baseUrlField,
  optional,
  parseStoredConfig,
  storedDisplayName,
  storedEmail,
} from "./connection-config.ts";
import type { MailMessage } from "./email.ts";
import { providerBaseUrl } from "./http.ts";
import { type ErrorDescription, providerFetch, type ProviderResponse } from "./transport.ts";
import { type CallOptions, ProviderError, type SendResult, type TestConnectionResult } from "./types.ts";

export const SENDGRID_BASE_URL = "https://api.sendgrid.com";
export const SENDGRID_EU_BASE_URL = "https://api.eu.sendgrid.com";
/** The only hosts a production connection may send its API key to. */
export const SENDGRID_OFFICIAL_BASE_URLS = [SENDGRID_BASE_URL, SENDGRID_EU_BASE_URL] as const;

export const EVENT_WEBHOOK_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature";
export const EVENT_WEBHOOK_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp";
/** custom_args key carrying our operation id; SendGrid echoes it on every event. */
export const OPERATION_ID_ARG = "switchboard_operation_id";

export interface SendGridCredentials {
  api_key: string;
}

/** The stored connection config; unknown keys (webhook_public_key, …) are ignored here. */
export const sendGridConfigSchema = z.object({
  /** Default https://api.sendgrid.com; EU regional subusers use https://api.eu.sendgrid.com. */
  base_url: optional(baseUrlField),
  /** Must be a verified Sender Identity, or SendGrid answers 403. */
  from_email: storedEmail,
  from_name: optional(storedDisplayName),
});

export type SendGridConfig = z.output<typeof sendGridConfigSchema>;

/** What a SendGrid client is built from: the connection as stored, and the deployment's network policy. */
export interface SendGridConnection {
  credentials: Readonly<Record<string, unknown>> | SendGridCredentials;
  config: Readonly<Record<string, unknown>> | SendGridConfig;
  network: NetworkPolicy;
}

/** A validated mail, as the sendgrid_send_email tool's schema outputs it. */
export interface SendGridMail extends MailMessage {
  /** Dynamic template id (`d-…`); content then comes from the template. */
  template_id?: string;
  dynamic_template_data?: Record<string, unknown>;
  categories?: string[];
  /** ISO 8601 date-time; SendGrid takes Unix seconds. */
  send_at?: string;
}

export interface SendMailOptions extends CallOptions {
  /** Our operation id, echoed by SendGrid on every event as custom_args. */
  operationId?: string;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export interface SendGridClient {
  /**
   * Sends one mail. 202 → queued, with X-Message-Id as the id SendGrid's events carry
   * (as the prefix of sg_message_id). 200 only happens in sandbox mode (nothing sent).
   */
  sendMail(mail: SendGridMail, options?: SendMailOptions): Promise<SendResult>;
  /**
   * Checks the key with GET /v3/scopes (works for any valid key, unlike /v3/user/account).
   * A refused key or missing scope is a failed test, not an error; outages still throw.
   */
  testConnection(options?: CallOptions): Promise<TestConnectionResult>;
}

/** A parsed, policy-checked connection: what every call below works from. */
interface Account {
  apiKey: string;
  config: SendGridConfig;
  baseUrl: string;
  network: NetworkPolicy;
}

/**
 * Builds a client. Throws ApiError (400) for a stored config that breaks the rules or a
 * base_url the policy does not allow, ProviderError "auth" for a missing API key.
 */
export function createSendGridClient(connection: SendGridConnection): SendGridClient {
  const config = parseStoredConfig(sendGridConfigSchema, connection.config);
  const credentials = connection.credentials as Record<string, unknown>;
  if (typeof credentials.api_key !== "string" || credentials.api_key === "") {
    throw new ProviderError("auth", "The SendGrid connection has no API key", { provider: "sendgrid" });
  }
  assertHeaderSafeCredentials({ api_key: credentials.api_key });
  const account: Account = {
    apiKey: credentials.api_key,
    config,
    baseUrl: providerBaseUrl(config.base_url, SENDGRID_OFFICIAL_BASE_URLS, connection.network),
    network: connection.network,
  };
  return {
    sendMail: (mail, options = {}) => sendMail(account, mail, options),
    testConnection: (options = {}) => testConnection(account, options),
  };
}

// ---------------------------------------------------------------------------
// HTTP: every call goes through the shared transport (./transport.ts), which owns the
// network guard, redirects, timeouts and the one "may this have been sent?" rule.
// ---------------------------------------------------------------------------

/**
 * One SendGrid call. Never retried: a send that timed out, was cut off or got a 5xx
 * may have been accepted, and sending it twice is worse.
 */
function request(
  account: Account,
  method: "GET" | "POST",
  path: string,
  body: unknown,
  options: CallOptions,
  acts: boolean,
): Promise<ProviderResponse> {
  return providerFetch(
    { provider: "sendgrid", displayName: "SendGrid", network: account.network },
    {
      method,
      url: `${account.baseUrl}${path}`,
      headers: {
        Authorization: `Bearer ${account.apiKey}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      acts,
    },
    describeSendGridError,
    { fetch: options.fetch, timeoutMs: options.timeoutMs },
  );
}

/** What SendGrid's error body {errors: [{message, field, help}], id?} says, kept for the caller. */
function describeSendGridError(response: ProviderResponse): ErrorDescription {
  const body = (response.json && typeof response.json === "object" ? response.json : {}) as {
    errors?: unknown;
    id?: unknown;
  };
  const errors = Array.isArray(body.errors) ? body.errors : undefined;
  const first = (errors?.[0] ?? {}) as { message?: unknown; field?: unknown };
  const details: Record<string, unknown> = {};
  if (typeof first.field === "string") details.field = first.field; // e.g. "from": an unverified sender
  if (response.status === 429) {
    const reset = Number(response.headers.get("x-ratelimit-reset"));
    if (Number.isFinite(reset) && reset > 0) details.rate_limit_reset = reset; // Unix seconds
  }
  return {
    ...(typeof body.id === "string" ? { code: body.id } : {}),
    ...(typeof first.message === "string" && first.message !== "" ? { message: first.message } : {}),
    ...(errors ? { errors } : {}),
    details,
  };
}

// ---------------------------------------------------------------------------
// Mail Send
// ---------------------------------------------------------------------------

/** Builds the POST /v3/mail/send body: one personalization, so To recipients see each other. */
export function buildMailSendBody(config: SendGridConfig, mail: SendGridMail, operationId?: string) {
  const list = (addresses?: string[]) =>
    addresses && addresses.length > 0 ? addresses.map((email) => ({ email })) : undefined;
  const personalization: Record<string, unknown> = { to: list(mail.to) };
  if (mail.cc?.length) personalization.cc = list(mail.cc);
  if (mail.bcc?.length) personalization.bcc = list(mail.bcc);
  if (mail.dynamic_template_data) personalization.dynamic_template_data = mail.dynamic_template_data;

  const body: Record<string, unknown> = {
    personalizations: [personalization],
    from: config.from_name ? { email: config.from_email, name: config.from_name } : { email: config.from_email },
  };
  if (mail.subject !== undefined) body.subject = mail.subject;
  // SendGrid requires text/plain first, then text/html.
  const content = [];
  if (mail.text !== undefined) content.push({ type: "text/plain", value: mail.text });
  if (mail.html !== undefined) content.push({ type: "text/html", value: mail.html });
  if (content.length > 0) body.content = content;
  if (mail.template_id) body.template_id = mail.template_id;
  if (mail.reply_to) body.reply_to = { email: mail.reply_to };
  if (mail.attachments?.length) {
    body.attachments = mail.attachments.map((a) => ({
      content: a.content,
      filename: a.filename,
      ...(a.content_type ? { type: a.content_type } : {}),
      disposition: "attachment",
    }));
  }
  if (mail.categories?.length) body.categories = mail.categories;
  if (mail.send_at) body.send_at = Math.floor(Date.parse(mail.send_at) / 1000);
  if (operationId) body.custom_args = { [OPERATION_ID_ARG]: operationId };
  return body;
}

async function sendMail(account: Account, mail: SendGridMail, options: SendMailOptions): Promise<SendResult> {
  const body = buildMailSendBody(account.config, mail, options.operationId);
  // 202: queued. 200 only happens in sandbox mode: validated, nothing sent.
  const res = await request(account, "POST", "/v3/mail/send", body, options, true);

  const sandbox = res.status === 200;
  const messageId = res.headers.get("x-message-id") ?? undefined;
  const recipients = [...new Set([...mail.to, ...(mail.cc ?? []), ...(mail.bcc ?? [])])];
  return {
    sentCount: sandbox ? 0 : recipients.length,
    providerMessageIds: messageId ? [messageId] : [],
    recipients: recipients.map((to) => ({
      to,
      ok: true,
      status: sandbox ? "sandbox" : "queued",
      ...(messageId ? { message_id: messageId } : {}),
    })),
    data: {
      status: sandbox ? "sandbox" : "queued",
      message_id: messageId ?? null,
      recipient_count: recipients.length,
      ...(mail.send_at ? { send_at: mail.send_at } : {}),
    },
  };
}

async function testConnection(account: Account, options: CallOptions): Promise<TestConnectionResult> {
  let res: ProviderResponse;
  try {
    res = await request(account, "GET", "/v3/scopes", undefined, options, false);
  } catch (err) {
    // A refused key or account is the test's answer; outages and redirects still throw.
    if (err instanceof ProviderError && (err.kind === "auth" || err.kind === "forbidden")) {
      return { ok: false, message: err.message, details: { status: err.details.status, errors: err.details.errors } };
    }
    throw err;
  }
  const scopes = (res.json as { scopes?: unknown })?.scopes;
  const granted = Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === "string") : [];
  const missing = ["mail.send"].filter((scope) => !granted.includes(scope));
  if (missing.length > 0) {
    return {
      ok: false,
      message: `The API key is missing the scope(s): ${missing.join(", ")}`,
      details: { missing_scopes: missing, scope_count: granted.length },
    };
  }
  return {
    ok: true,
    message: `The API key can send mail (from ${account.config.from_email})`,
    details: { scope_count: granted.length },
  };
}

// ---------------------------------------------------------------------------
// Signed Event Webhook
// ---------------------------------------------------------------------------

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> | null {
  try {
    const bin = atob(b64.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/**
 * Converts an ASN.1 DER ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }, as SendGrid
 * sends it) to the raw 64-byte r‖s that WebCrypto verifies. DER integers are minimal
 * and signed, so a 32-byte value may carry a leading 0x00 (33 bytes) or be shorter than
 * 32 bytes; strip leading zeros, then left-pad to 32. Returns null on anything malformed.
 */
export function derToRawSignature(der: Uint8Array, size = 32): Uint8Array<ArrayBuffer> | null {
  let pos = 0;
  const readLength = (): number | null => {
    if (pos >= der.length) return null;
    const first = der[pos++];
    if (first < 0x80) return first;
    const octets = first & 0x7f;
    if (octets === 0 || octets > 2 || pos + octets > der.length) return null;
    let len = 0;
    for (let i = 0; i < octets; i++) len = (len << 8) | der[pos++];
    return len;
  };
  const readInteger = (): Uint8Array | null => {
    if (der[pos++] !== 0x02) return null;
    const len = readLength();
    if (len === null || len === 0 || pos + len > der.length) return null;
    let value = der.subarray(pos, pos + len);
    pos += len;
    if (value[0] & 0x80) return null; // negative: never a valid r or s
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start++;
    value = value.subarray(start);
    return value.length <= size ? value : null;
  };

  if (der[pos++] !== 0x30) return null;
  const seqLen = readLength();
  if (seqLen === null || pos + seqLen !== der.length) return null;
  const r = readInteger();
  const s = r && readInteger();
  if (!r || !s || pos !== der.length) return null;
  const raw = new Uint8Array(size * 2);
  raw.set(r, size - r.length);
  raw.set(s, size * 2 - s.length);
  return raw;
}

// Imported keys are cached: a webhook verifies many posts against the same key.
const keyCache = new Map<string, Promise<CryptoKey | null>>();

function importPublicKey(publicKey: string): Promise<CryptoKey | null> {
  let key = keyCache.get(publicKey);
  if (!key) {
    const der = base64ToBytes(publicKey);
    key = der
      ? crypto.subtle
        .importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"])
        .catch(() => null)
      : Promise.resolve(null);
    if (keyCache.size >= 100) keyCache.clear();
    keyCache.set(publicKey, key);
  }
  return key;
}

export interface VerifyEventWebhookInput {
  /** The webhook's verification key: base64 DER SubjectPublicKeyInfo, no PEM armour. */
  publicKey: string;
  /** X-Twilio-Email-Event-Webhook-Signature: base64 DER ECDSA signature. */
  signature: string | null | undefined;
  /** X-Twilio-Email-Event-Webhook-Timestamp: Unix seconds as sent. */
  timestamp: string | null | undefined;
  /** The request body exactly as received; never re-serialised JSON. */
  rawBody: Uint8Array | string;
  /** Current time in Unix **seconds** (default: the clock). */
  now?: number;
  /** Maximum age or future skew of the timestamp, in seconds (default 300). */
  toleranceSeconds?: number;
}

/**
 * Verifies a signed Event Webhook post: ECDSA P-256/SHA-256 over UTF8(timestamp) ‖ rawBody.
 * False for a missing/malformed header, a timestamp outside the tolerance (replays),
 * an unusable key or a wrong signature. Never throws.
 */
export async function verifyEventWebhookSignature(input: VerifyEventWebhookInput): Promise<boolean> {
  const { signature, timestamp, rawBody } = input;
  if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  const now = input.now ?? Date.now() / 1000;
  if (Math.abs(now - Number(timestamp)) > (input.toleranceSeconds ?? 300)) return false;

  const der = base64ToBytes(signature);
  const raw = der && derToRawSignature(der);
  if (!raw) return false;
  const key = await importPublicKey(input.publicKey);
  if (!key) return false;

  const encoder = new TextEncoder();
  const prefix = encoder.encode(timestamp);
  const body = typeof rawBody === "string" ? encoder.encode(rawBody) : rawBody;
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix, 0);
  signed.set(body, prefix.length);
  try {
    return await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, signed);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Event parsing
// ---------------------------------------------------------------------------

export interface SendGridEvent {
  /** SendGrid's event id: the same event is often delivered many times, dedupe on it. */
  sg_event_id: string;
  /** processed, delivered, deferred, bounce, dropped, open, click, spamreport, unsubscribe, … */
  event: string;
  email: string;
  /** Unix seconds. */
  timestamp: number;
  sg_message_id: string | null;
  /** The X-Message-Id we stored: sg_message_id before its first '.'. */
  message_id: string | null;
  /** Our operation id from custom_args (echoed as a top-level key). */
  operation_id: string | null;
  reason?: string;
  /** SMTP enhanced status, e.g. "5.1.1"; missing for `blocked` bounces. */
  status?: string;
  /** For bounces: "bounce" or "blocked". */
  type?: string;
  /** Always an array here (SendGrid sends a string or an array). */
  category?: string[];
  raw: Record<string, unknown>;
}

const optionalString = (value: unknown): string | undefined =>
  typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;

/**
 * Parses an Event Webhook body (a JSON array) into normalised events. Entries that are
 * not objects or lack `event`/`sg_event_id` are skipped: without an id they cannot be
 * stored idempotently. A body that is not a JSON array is a 400.
 */
export function parseSendGridEvents(rawBody: Uint8Array | string): SendGridEvent[] {
  const text = typeof rawBody === "string" ? rawBody : new TextDecoder().decode(rawBody);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_request", "The event webhook body is not valid JSON");
  }
  if (!Array.isArray(parsed)) {
    throw new ApiError("invalid_request", "The event webhook body must be a JSON array of events");
  }

  const events: SendGridEvent[] = [];
  for (const item of parsed) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) continue;
    const raw = item as Record<string, unknown>;
    if (typeof raw.event !== "string" || typeof raw.sg_event_id !== "string") continue;

    const sgMessageId = typeof raw.sg_message_id === "string" ? raw.sg_message_id : null;
    const category = typeof raw.category === "string"
      ? [raw.category]
      : Array.isArray(raw.category)
      ? raw.category.filter((c): c is string => typeof c === "string")
      : undefined;
    const timestamp = Number(raw.timestamp);
    const event: SendGridEvent = {
      sg_event_id: raw.sg_event_id,
      event: raw.event,
      email: typeof raw.email === "string" ? raw.email.toLowerCase() : "",
      timestamp: Number.isFinite(timestamp) ? timestamp : 0,
      sg_message_id: sgMessageId,
      message_id: sgMessageId ? sgMessageId.split(".", 1)[0] : null,
      operation_id: typeof raw[OPERATION_ID_ARG] === "string" ? raw[OPERATION_ID_ARG] as string : null,
      raw,
    };
    const reason = optionalString(raw.reason);
    const status = optionalString(raw.status);
    const type = optionalString(raw.type);
    if (reason !== undefined) event.reason = reason;
    if (status !== undefined) event.status = status;
    if (type !== undefined) event.type = type;
    if (category !== undefined) event.category = category;
    events.push(event);
  }
  return events;
}
