/**
 * ClickSend REST v3 adapter (SMS, MMS, account, history, webhooks).
 *
 * Wire facts this relies on (reference/providers.md §1):
 *  - HTTP Basic auth (username : api_key); JSON envelope {http_code, response_code,
 *    response_msg, data} on every response.
 *  - /sms/send and /mms/send answer HTTP 200 even when individual messages fail; the
 *    per-message `status` is the truth ("SUCCESS" or an application code).
 *  - At most 1000 messages per request. No idempotency: a send that timed out, was cut
 *    off or got a 5xx may have gone out, so it is reported maybeSent and never retried.
 *  - GET /account returns `_subaccount.api_key`, a live credential: only allow-listed
 *    fields leave this module.
 *
 * Knows nothing about Supabase; runs unchanged in Deno and Node.
 */
import { ApiError } from "../errors.ts";
import { countSmsSegments } from "./sms-segments.ts";
import {
  type CallOptions,
  ProviderError,
  type ProviderErrorKind,
  type ReadResult,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

export const CLICKSEND_DEFAULT_BASE_URL = "https://rest.clicksend.com/v3";
/** ClickSend accepts up to 1000 messages per send request. */
export const CLICKSEND_MAX_MESSAGES_PER_REQUEST = 1000;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_CONCURRENCY = 3;

export interface ClickSendCredentials {
  username: string;
  api_key: string;
}

export interface ClickSendConfig {
  /** Defaults to https://rest.clicksend.com/v3 (the devstack points it at the fake). */
  base_url?: string;
  /** Default sender id used when a message has no `from`. */
  sender_id?: string;
}

export interface SmsMessage {
  to: string;
  body: string;
  from?: string;
  /** Unix seconds; omit to send now. */
  schedule?: number;
  /** Echoed in receipts and replies: we put our operation id here. */
  custom_string?: string;
}

export interface MmsMessage extends SmsMessage {
  /** Required by ClickSend, at most 20 characters. */
  subject: string;
}

export interface MmsSend {
  /** Public URL of the media file (one per request, top level). */
  media_file: string;
  messages: MmsMessage[];
}

export interface SendOptions extends CallOptions {
  /** Provider requests in flight at once for bulk sends (default 3). */
  concurrency?: number;
}

export interface HistoryQuery {
  page?: number;
  /** 15..100 (ClickSend's bounds). */
  limit?: number;
  /** Unix seconds. */
  date_from?: number;
  /** Unix seconds. */
  date_to?: number;
}

interface Envelope {
  http_code?: number;
  response_code?: string;
  response_msg?: string;
  data?: unknown;
}

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Credentials and config
// ---------------------------------------------------------------------------

/** Picks {username, api_key} out of a stored credential record; missing → auth error. */
export function clickSendCredentials(record: Record<string, string | undefined>): ClickSendCredentials {
  const username = record.username?.trim();
  const api_key = record.api_key?.trim();
  if (!username || !api_key) {
    throw new ProviderError("auth", "ClickSend credentials are incomplete (username and api_key are required).", {
      provider: "clicksend",
    });
  }
  return { username, api_key };
}

/** Reads the non-secret connection config, ignoring unknown keys. */
export function clickSendConfig(record: Record<string, unknown>): ClickSendConfig {
  const config: ClickSendConfig = {};
  if (typeof record.base_url === "string" && record.base_url) config.base_url = record.base_url;
  if (typeof record.sender_id === "string" && record.sender_id) config.sender_id = record.sender_id;
  return config;
}

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

/**
 * Sends SMS, split into requests of at most 1000 messages with small bounded
 * concurrency. Per-message statuses become per-recipient results.
 *
 * Partial failure: if one request fails after others succeeded, no new requests are
 * started and the result keeps what was sent; the recipients of the failed request are
 * reported with status "MAYBE_SENT" (the request may have gone out: do not resend) or
 * "NOT_SENT" (it certainly did not), and those of unstarted requests as "NOT_SENT".
 * `data.maybe_sent_count` tells the caller how many to still count against quota, and
 * `data.incomplete` carries the error. If no request succeeded, the error is thrown.
 */
export function sendSms(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  messages: SmsMessage[],
  options: SendOptions = {},
): Promise<SendResult> {
  const wire = messages.map((m) => toWireMessage(m, config));
  return sendChunked(credentials, config, "/sms/send", wire, (chunk) => ({ messages: chunk }), options);
}

/** Sends one MMS (one media file) to many recipients; same partial-failure rules as sendSms. */
export function sendMms(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  mms: MmsSend,
  options: SendOptions = {},
): Promise<SendResult> {
  const wire = mms.messages.map((m) => ({ ...toWireMessage(m, config), subject: m.subject }));
  return sendChunked(
    credentials,
    config,
    "/mms/send",
    wire,
    (chunk) => ({ media_file: mms.media_file, messages: chunk }),
    options,
  );
}

function toWireMessage(m: SmsMessage, config: ClickSendConfig): Json {
  const wire: Json = { to: m.to, body: m.body, source: "switchboard" };
  const from = m.from ?? config.sender_id;
  if (from) wire.from = from;
  if (m.schedule !== undefined) wire.schedule = m.schedule;
  if (m.custom_string !== undefined) wire.custom_string = m.custom_string;
  return wire;
}

type ChunkOutcome = { ok: true; data: Json } | { ok: false; error: ProviderError } | undefined;

async function sendChunked(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  path: string,
  wire: Json[],
  envelopeFor: (chunk: Json[]) => Json,
  options: SendOptions,
): Promise<SendResult> {
  if (wire.length === 0) {
    throw new ApiError("invalid_request", "At least one message is required.");
  }
  const chunks: Json[][] = [];
  for (let i = 0; i < wire.length; i += CLICKSEND_MAX_MESSAGES_PER_REQUEST) {
    chunks.push(wire.slice(i, i + CLICKSEND_MAX_MESSAGES_PER_REQUEST));
  }
  const outcomes: ChunkOutcome[] = new Array(chunks.length).fill(undefined);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < chunks.length) {
      const index = next++;
      try {
        const envelope = await request(credentials, config, "POST", path, { body: envelopeFor(chunks[index]) }, {
          ...options,
          isSend: true,
        });
        outcomes[index] = { ok: true, data: asObject(envelope.data) };
      } catch (error) {
        failed = true; // stop starting new requests: never fan out into a failing provider
        outcomes[index] = { ok: false, error: asProviderError(error) };
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, chunks.length));
  await Promise.all(Array.from({ length: concurrency }, worker));

  if (!outcomes.some((o) => o?.ok)) {
    const first = outcomes.find((o) => o && !o.ok);
    if (first && !first.ok) throw first.error; // nothing went through: plain error
  }
  return mergeChunks(chunks, outcomes);
}

function mergeChunks(chunks: Json[][], outcomes: ChunkOutcome[]): SendResult {
  const recipients: RecipientResult[] = [];
  const providerMessageIds: string[] = [];
  let totalPrice = 0;
  let queued = 0;
  let blocked = 0;
  let maybeSent = 0;
  let currency: string | undefined;
  let incomplete: Json | undefined;

  chunks.forEach((chunk, index) => {
    const outcome = outcomes[index];
    if (outcome?.ok) {
      const data = outcome.data;
      totalPrice += toNumber(data.total_price);
      queued += toNumber(data.queued_count);
      blocked += toNumber(data.blocked_count);
      currency ??= stringOrUndefined(asObject(data._currency).currency_name_short);
      const results = Array.isArray(data.messages) ? data.messages : [];
      chunk.forEach((sent, i) => {
        const r = recipientResult(asObject(results[i]), sent);
        recipients.push(r);
        if (r.ok && r.message_id) providerMessageIds.push(r.message_id);
      });
      return;
    }
    const error = outcome?.error;
    const status = error?.maybeSent ? "MAYBE_SENT" : "NOT_SENT";
    if (error?.maybeSent) maybeSent += chunk.length;
    if (error && !incomplete) {
      incomplete = { request_index: index, kind: error.kind, message: error.message, maybe_sent: error.maybeSent };
    }
    const reason = error
      ? `${status === "MAYBE_SENT" ? "May have been sent; do not resend" : "Not sent"}: ${error.message}`
      : "Not sent: an earlier request in this bulk send failed.";
    for (const sent of chunk) recipients.push({ to: String(sent.to), ok: false, status: error ? status : "NOT_SENT", error: reason });
  });

  const sentCount = recipients.filter((r) => r.ok).length;
  const data: Json = {
    total_price: round(totalPrice),
    queued_count: queued,
    blocked_count: blocked,
    sent_count: sentCount,
    failed_count: recipients.length - sentCount,
    requests: outcomes.filter((o) => o !== undefined).length, // made, not planned
  };
  if (currency) data.currency = currency;
  if (incomplete) Object.assign(data, { incomplete, maybe_sent_count: maybeSent });
  return { sentCount, providerMessageIds, recipients, data };
}

/** Maps one per-message result (possibly the minimal rejected object) to our shape. */
function recipientResult(result: Json, sent: Json): RecipientResult {
  const status = stringOrUndefined(result.status) ?? "UNKNOWN";
  const ok = status === "SUCCESS";
  const r: RecipientResult = { to: stringOrUndefined(result.to) ?? String(sent.to), ok, status };
  const messageId = stringOrUndefined(result.message_id);
  if (messageId) r.message_id = messageId;
  const parts = result.message_parts;
  if (parts !== undefined && parts !== null && parts !== "") r.segments = toNumber(parts);
  else if (ok && !("subject" in sent)) r.segments = countSmsSegments(String(sent.body)).segments;
  const price = stringOrUndefined(result.message_price);
  if (price !== undefined) r.price = price;
  if (!ok) r.error = STATUS_EXPLANATIONS[status] ?? `ClickSend rejected this message (${status}).`;
  return r;
}

/** Short explanations of ClickSend per-message statuses, for people and agents. */
const STATUS_EXPLANATIONS: Record<string, string> = {
  INVALID_RECIPIENT: "The recipient is not a valid mobile number.",
  COUNTRY_NOT_ENABLED: "Sending to this country is not enabled on the ClickSend account.",
  INSUFFICIENT_CREDIT: "The ClickSend account has insufficient credit.",
  INVALID_SENDER_ID: "The sender id is not valid (alphanumeric ids: 3-11 letters/digits, no spaces).",
  THROTTLED: "The same message was sent to this recipient very recently.",
  EMPTY_MESSAGE: "The message body is empty.",
  INVALID_SCHEDULE: "The schedule time is not valid.",
  TOO_MANY_RECIPIENTS: "Too many recipients in one request.",
  SUBJECT_REQUIRED: "An MMS subject is required.",
  INVALID_MEDIA_FILE: "The media file is not an accepted type or size.",
  MISSING_REQUIRED_FIELDS: "A required field is missing.",
};

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

// Account fields that are safe to return: no `_subaccount` (it holds a live api_key),
// no username/e-mail (half of the credential / personal data).
const ACCOUNT_FIELDS = [
  "user_id",
  "balance",
  "balance_commission",
  "active",
  "banned",
  "on_trial",
  "default_country_sms",
  "setting_unicode_sms",
  "setting_sms_message_char_limit",
] as const;
const CURRENCY_FIELDS = ["currency_name_short", "currency_prefix_d", "currency_prefix_c", "currency_name_long"];

/** GET /account → balance and account settings, with secrets stripped (allow-list). */
export async function getBalance(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  options: CallOptions = {},
): Promise<ReadResult> {
  const account = asObject((await request(credentials, config, "GET", "/account", {}, options)).data);
  const data: Json = {};
  for (const key of ACCOUNT_FIELDS) if (account[key] !== undefined) data[key] = account[key];
  const currency = asObject(account._currency);
  const picked = Object.fromEntries(CURRENCY_FIELDS.filter((k) => currency[k] !== undefined).map((k) => [k, currency[k]]));
  if (Object.keys(picked).length) data.currency = picked;
  return { data };
}

/** GET /sms/history → Laravel paginator passed through as {total, per_page, ..., records}. */
export function getSmsHistory(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  query: HistoryQuery = {},
  options: CallOptions = {},
): Promise<ReadResult> {
  return getHistory(credentials, config, "/sms/history", query, options);
}

/** GET /mms/history, same shape as getSmsHistory. */
export function getMmsHistory(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  query: HistoryQuery = {},
  options: CallOptions = {},
): Promise<ReadResult> {
  return getHistory(credentials, config, "/mms/history", query, options);
}

async function getHistory(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  path: string,
  query: HistoryQuery,
  options: CallOptions,
): Promise<ReadResult> {
  const params: Record<string, string> = {};
  for (const key of ["page", "limit", "date_from", "date_to"] as const) {
    if (query[key] !== undefined) params[key] = String(query[key]);
  }
  const page = asObject((await request(credentials, config, "GET", path, { query: params }, options)).data);
  const records = Array.isArray(page.data) ? page.data.map((r) => scrubSecrets(r)) : [];
  return {
    data: {
      total: toNumber(page.total),
      per_page: toNumber(page.per_page),
      current_page: toNumber(page.current_page),
      last_page: toNumber(page.last_page),
      records,
    },
  };
}

/**
 * Checks the credentials with GET /account/usage/{year}/{month}/subaccount: it needs
 * valid auth, returns no secrets and is not on /account's tight rate limit
 * (/countries answers 200 without any credentials, so it proves nothing).
 */
export async function testConnection(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  options: CallOptions = {},
): Promise<TestConnectionResult> {
  const now = new Date();
  const path = `/account/usage/${now.getUTCFullYear()}/${now.getUTCMonth() + 1}/subaccount`;
  try {
    await request(credentials, config, "GET", path, {}, options);
    return { ok: true, message: "ClickSend accepted the credentials." };
  } catch (error) {
    const e = asProviderError(error);
    const message = e.kind === "auth"
      ? "ClickSend rejected the username or API key."
      : e.kind === "forbidden"
      ? "The ClickSend account is suspended or not allowed to use the API."
      : `Could not verify the credentials: ${e.message}`;
    return {
      ok: false,
      message,
      details: { kind: e.kind, status: e.details.status, provider_code: e.details.provider_code },
    };
  }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

interface RequestParts {
  body?: unknown;
  query?: Record<string, string>;
}

/** One ClickSend call: Basic auth, timeout, envelope parsing and error mapping. */
async function request(
  credentials: ClickSendCredentials,
  config: ClickSendConfig,
  method: "GET" | "POST",
  path: string,
  parts: RequestParts,
  options: CallOptions & { isSend?: boolean },
): Promise<Envelope> {
  const url = new URL(`${(config.base_url ?? CLICKSEND_DEFAULT_BASE_URL).replace(/\/+$/, "")}${path}`);
  for (const [k, v] of Object.entries(parts.query ?? {})) url.searchParams.set(k, v);
  const headers: Record<string, string> = {
    Authorization: `Basic ${base64(`${credentials.username}:${credentials.api_key}`)}`,
    Accept: "application/json",
    // Never leave an idle pooled connection to ClickSend: Deno's fetch (2.9, hyper)
    // silently re-sends a POST when a *reused* keep-alive connection is dropped after
    // the request was written, i.e. a possible duplicate SMS. Verified against the
    // fake's "drop" fault; costs one handshake per call, which sends can afford.
    Connection: "close",
  };
  if (parts.body !== undefined) headers["Content-Type"] = "application/json";

  const doFetch = options.fetch ?? globalThis.fetch;
  const isSend = options.isSend === true;
  let status: number;
  let responseHeaders: Headers;
  let text: string;
  try {
    const response = await doFetch(url, {
      method,
      headers,
      body: parts.body === undefined ? undefined : JSON.stringify(parts.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      redirect: "error", // never forward Basic credentials to another host
    });
    status = response.status;
    responseHeaders = response.headers;
    text = await response.text();
  } catch (error) {
    throw networkError(error, isSend);
  }
  const envelope = parseEnvelope(text);
  if (status >= 200 && status < 300) return envelope;
  throw httpError(status, envelope, responseHeaders, isSend);
}

function parseEnvelope(text: string): Envelope {
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === "object" ? parsed as Envelope : {};
  } catch {
    return {}; // e.g. an HTML error page from a proxy
  }
}

/** Maps a non-2xx ClickSend response to a ProviderError. */
function httpError(status: number, envelope: Envelope, headers: Headers, isSend: boolean): ProviderError {
  const details = {
    provider: "clicksend" as const,
    status,
    ...(envelope.response_code ? { provider_code: envelope.response_code } : {}),
  };
  const said = envelope.response_msg ? `: ${envelope.response_msg}` : "";
  const fail = (kind: ProviderErrorKind, message: string, extra: Json = {}, maybeSent = false) =>
    new ProviderError(kind, `${message} (HTTP ${status}${said})`, { ...details, ...extra }, maybeSent);

  if (status === 401) return fail("auth", "ClickSend rejected the credentials");
  if (status === 403) return fail("forbidden", "ClickSend refused access");
  if (status === 404) return fail("not_found", "ClickSend endpoint or resource not found");
  if (status === 429) {
    const retryAfter = retryAfterSeconds(headers);
    return fail("rate_limited", "ClickSend rate limit reached", retryAfter === undefined ? {} : { retry_after: retryAfter });
  }
  if (status === 413) return fail("too_large", "Request too large for ClickSend");
  if (status >= 500) {
    // ClickSend has no idempotency: a 5xx on a send may still have been acted on.
    return fail("unavailable", "ClickSend is unavailable", {}, isSend);
  }
  const errors = envelope.data && typeof envelope.data === "object" ? { errors: envelope.data } : {};
  return fail(status === 400 || status === 422 ? "invalid" : "permanent", "ClickSend rejected the request", errors);
}

function retryAfterSeconds(headers: Headers): number | undefined {
  for (const name of ["retry-after", "ratelimit-reset"]) {
    const value = headers.get(name);
    if (value === null) continue;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
    const date = Date.parse(value); // Retry-After may be an HTTP date
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000));
  }
  return undefined;
}

// Errors that prove the request never left: nothing can have been sent.
// Node/undici puts the code in `cause`; Deno says "tcp connect error" / "dns error".
const NOT_CONNECTED =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|UND_ERR_CONNECT_TIMEOUT|connection refused|tcp connect error|dns error|failed to lookup|are blocked|invalid url/i;

/** Maps a fetch rejection (timeout, reset, refused) to a ProviderError. */
function networkError(error: unknown, isSend: boolean): ProviderError {
  const name = (error as { name?: string })?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return new ProviderError("timeout", "ClickSend did not answer in time.", { provider: "clicksend" }, isSend);
  }
  const description = describeError(error);
  const neverConnected = NOT_CONNECTED.test(description);
  return new ProviderError(
    "unavailable",
    neverConnected ? "Could not connect to ClickSend." : "The connection to ClickSend failed mid-request.",
    { provider: "clicksend", cause: description.slice(0, 200) },
    isSend && !neverConnected,
  );
}

/** Message and cause chain (undici hides the socket error code in `cause`). */
function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const e = current as { message?: string; code?: string; cause?: unknown };
    parts.push([e.code, e.message].filter(Boolean).join(" "));
    current = e.cause;
  }
  return parts.join(" <- ");
}

function asProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  return new ProviderError("unavailable", "Unexpected error calling ClickSend.", { provider: "clicksend" });
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

export interface ClickSendWebhookEvent {
  kind: "delivery_receipt" | "inbound";
  /** The outbound message id (receipt) or the inbound message's own id (reply). */
  message_id: string;
  status_code?: string;
  status_text?: string;
  error_code?: string;
  error_text?: string;
  custom_string?: string;
  from?: string;
  to?: string;
  body?: string;
  /** For replies: the id of the outbound message being answered. */
  original_message_id?: string;
  /** Unix seconds. */
  timestamp?: number;
  /** The fields exactly as received (untrusted). */
  raw: Record<string, unknown>;
}

/**
 * Parses a ClickSend delivery-receipt or inbound-SMS push. Rules configured with
 * webhook_type "post" send form-urlencoded bodies, "json" JSON bodies and "get" the
 * fields in the query string. Legacy duplicate names (originalsenderid, message, sms,
 * originalmessageid, customstring, originalmessage) are accepted. There is no
 * signature: the caller authenticates the URL token and dedupes on message_id.
 * Throws ApiError('invalid_request') when the payload is not a ClickSend event.
 */
export function parseClickSendWebhook(
  contentType: string | null | undefined,
  rawBody: string,
  query?: URLSearchParams | Record<string, string> | string,
): ClickSendWebhookEvent[] {
  const records = webhookRecords(contentType ?? "", rawBody, query);
  if (records.length === 0) throw new ApiError("invalid_request", "Empty ClickSend webhook.");
  if (records.length > 1000) throw new ApiError("invalid_request", "Too many events in one ClickSend webhook.");
  return records.map(normaliseEvent);
}

function webhookRecords(
  contentType: string,
  rawBody: string,
  query: URLSearchParams | Record<string, string> | string | undefined,
): Json[] {
  const type = contentType.toLowerCase();
  const body = rawBody.trim();
  if (!body) {
    const params = query === undefined ? new URLSearchParams() : new URLSearchParams(query);
    return [...params.keys()].length ? [Object.fromEntries(params)] : [];
  }
  if (type.includes("json") || (!type.includes("form") && /^[[{]/.test(body))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new ApiError("invalid_request", "ClickSend webhook body is not valid JSON.");
    }
    const list = Array.isArray(parsed) ? parsed : Array.isArray(asObject(parsed).data) ? asObject(parsed).data as unknown[] : [parsed];
    if (!list.every((r) => r && typeof r === "object" && !Array.isArray(r))) {
      throw new ApiError("invalid_request", "ClickSend webhook JSON must be an object or an array of objects.");
    }
    return list as Json[];
  }
  if (type.includes("multipart")) {
    throw new ApiError("invalid_request", "Unsupported ClickSend webhook encoding (use post, json or get).");
  }
  return [Object.fromEntries(new URLSearchParams(body))];
}

function normaliseEvent(raw: Json): ClickSendWebhookEvent {
  const pick = (...names: string[]) => {
    for (const name of names) {
      const v = raw[name];
      if (v !== undefined && v !== null && v !== "") return String(v);
    }
    return undefined;
  };
  // original_body / originalmessage are the text of the outbound message being
  // answered, not the reply, so they are not body fallbacks (they stay in raw).
  const body = pick("body", "message", "sms");
  const from = pick("from", "originalsenderid");
  const statusCode = pick("status_code");
  const isReceipt = statusCode !== undefined || pick("status_text") !== undefined ||
    (raw.message_type !== undefined && body === undefined);
  const messageId = pick("message_id", "messageid");
  if (!messageId) throw new ApiError("invalid_request", "ClickSend webhook is missing message_id.");
  if (!isReceipt && (body === undefined || from === undefined)) {
    throw new ApiError("invalid_request", "ClickSend webhook is neither a delivery receipt nor an inbound SMS.");
  }
  const timestamp = Number(pick("timestamp"));
  const event: ClickSendWebhookEvent = {
    kind: isReceipt ? "delivery_receipt" : "inbound",
    message_id: messageId,
    raw,
  };
  const fields: Record<string, string | undefined> = {
    status_code: statusCode,
    status_text: pick("status_text"),
    error_code: pick("error_code"),
    error_text: pick("error_text"),
    custom_string: pick("custom_string", "customstring"),
    from,
    to: pick("to"),
    body: isReceipt ? undefined : body,
    original_message_id: pick("original_message_id", "originalmessageid"),
  };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) (event as unknown as Json)[key] = value;
  }
  if (Number.isFinite(timestamp) && timestamp > 0) event.timestamp = timestamp;
  return event;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function asObject(value: unknown): Json {
  return value && typeof value === "object" && !Array.isArray(value) ? value as Json : {};
}

function toNumber(value: unknown): number {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : typeof value === "number" ? String(value) : undefined;
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/** Drops any key that looks like a secret, at any depth (defence in depth for records). */
function scrubSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (!value || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (/api_?key|password|secret|token|username|^_subaccount$/i.test(k)) continue;
    out[k] = scrubSecrets(v);
  }
  return out;
}

/** UTF-8 safe base64 (btoa alone throws on non-Latin-1 usernames). */
function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
