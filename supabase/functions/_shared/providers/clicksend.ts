/**
 * ClickSend REST v3 adapter (SMS, MMS, account, history, webhooks).
 *
 * Wire facts this relies on (ClickSend's REST v3 documentation):
 *  - HTTP Basic auth (username : api_key); JSON envelope {http_code, response_code,
 *    response_msg, data} on every response.
 *  - /sms/send and /mms/send answer HTTP 200 even when individual messages fail; the
 *    per-message `status` is the truth ("SUCCESS" or an application code).
 *  - At most 1000 messages per request. No idempotency: a send that timed out, was cut
 *    off or got a 5xx may have gone out, so it is reported maybeSent and never retried.
 *  - GET /account returns `_subaccount.api_key`, a live credential: only allow-listed
 *    fields leave this module.
 *
 * A client is built from {credentials, config, network policy} (createClickSendClient),
 * so no call can skip the stored-config rules or the network guard: every request,
 * test included, goes through the shared HTTP transport (providers/transport.ts: guard,
 * no redirects, timeouts, and the one "may this have been sent?" rule), and the MMS
 * media URL is judged before it is handed to ClickSend.
 *
 * Knows nothing about Supabase; runs unchanged in Deno and Node.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { guardUrl, type NetworkPolicy } from "../net/guard.ts";
import { assertHeaderSafeCredentials, baseUrlField, optional, parseStoredConfig } from "./connection-config.ts";
import { providerBaseUrl } from "./http.ts";
import type { AdapterContext, DeliveryStatus, MessagingAdapter, OutboundMessage, WebhookEvent } from "./adapter.ts";
import { normalizePhoneNumber } from "./phone.ts";
import { countSmsSegments } from "./sms-segments.ts";
import { basicAuth, type ErrorDescription, providerFetch, type ProviderResponse } from "./transport.ts";
import {
  type CallOptions,
  ProviderError,
  type ReadResult,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

export const CLICKSEND_DEFAULT_BASE_URL = "https://rest.clicksend.com/v3";
/** ClickSend accepts up to 1000 messages per send request. */
export const CLICKSEND_MAX_MESSAGES_PER_REQUEST = 1000;
/** A sender id ClickSend accepts: a number in E.164, or an alphanumeric tag of 3-11 characters. */
export const SENDER_ID_PATTERN = /^(\+[1-9][0-9]{1,14}|[A-Za-z0-9]{3,11})$/;
const DEFAULT_CONCURRENCY = 3;

export interface ClickSendCredentials {
  username: string;
  api_key: string;
}

/** The stored connection config; unknown keys are ignored. */
export const clickSendConfigSchema = z.object({
  /** Defaults to https://rest.clicksend.com/v3; another host only where the policy allows custom provider hosts. */
  base_url: optional(baseUrlField),
  /** Default sender id used when a message has no `from`. */
  sender_id: optional(z.string().regex(SENDER_ID_PATTERN, {
    message: "must be an E.164 number or 3-11 letters/digits without spaces",
  })),
});

export type ClickSendConfig = z.output<typeof clickSendConfigSchema>;

/** What a ClickSend client is built from: the connection as stored, and the deployment's network policy. */
export interface ClickSendConnection {
  credentials: Readonly<Record<string, unknown>> | ClickSendCredentials;
  config: Readonly<Record<string, unknown>> | ClickSendConfig;
  network: NetworkPolicy;
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
  /** Public URL of the media file (one per request, top level). ClickSend fetches it. */
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

/** A search of the account's history for the messages of one call (see findByCustomString). */
export interface HistorySearch {
  kind: "sms" | "mms";
  /** Window, Unix seconds, inclusive: when ClickSend can have accepted the messages. */
  from: number;
  to: number;
  /** Stop once this many messages are found (the call's recipient count). */
  expected?: number;
  /** Pages of 100 records to read at most (default 10): a busier window is not read to the end. */
  maxPages?: number;
  /** Epoch milliseconds after which no new page is requested. */
  deadline?: number;
}

export interface HistorySearchResult {
  /** The messages carrying the custom_string, one per message id. */
  messages: Array<{ message_id: string; to: string; status?: string }>;
  /**
   * True when the answer is whole: every page of the window was read, or `expected`
   * messages were found. Only a complete search that found nothing means ClickSend has
   * no such message; an incomplete one proves nothing.
   */
  complete: boolean;
  pages: number;
}

interface Envelope {
  http_code?: number;
  response_code?: string;
  response_msg?: string;
  data?: unknown;
}

type Json = Record<string, unknown>;

/** A parsed, policy-checked connection: what every call below works from. */
interface Account {
  credentials: ClickSendCredentials;
  baseUrl: string;
  senderId?: string;
  network: NetworkPolicy;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export interface ClickSendClient {
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
  sendSms(messages: SmsMessage[], options?: SendOptions): Promise<SendResult>;
  /** Sends one MMS (one media file, judged by the network guard) to many recipients; same rules as sendSms. */
  sendMms(mms: MmsSend, options?: SendOptions): Promise<SendResult>;
  /** GET /account: balance and account settings, with secrets stripped (allow-list). */
  getBalance(options?: CallOptions): Promise<ReadResult>;
  /** GET /sms/history: the Laravel paginator passed through as {total, per_page, ..., records}. */
  getSmsHistory(query?: HistoryQuery, options?: CallOptions): Promise<ReadResult>;
  /** GET /mms/history, same shape as getSmsHistory. */
  getMmsHistory(query?: HistoryQuery, options?: CallOptions): Promise<ReadResult>;
  /**
   * The messages ClickSend accepted with this custom_string (we send our operation id
   * there) inside a time window, paging through /sms/history or /mms/history (100 per
   * page, bounded in pages and time). ClickSend has no lookup by custom_string, so the
   * window is read page by page. Provider trouble throws ProviderError.
   */
  findByCustomString(customString: string, search: HistorySearch, options?: CallOptions): Promise<HistorySearchResult>;
  /** Checks the credentials; a refusal is ok:false, a refused config or destination throws ApiError. */
  testConnection(options?: CallOptions): Promise<TestConnectionResult>;
}

/**
 * Builds a client from a connection and the network policy. Throws ApiError (400) for a
 * stored config that breaks the rules or a base_url the policy does not allow, and
 * ProviderError "auth" for missing credentials; every request then goes through the
 * network guard.
 */
export function createClickSendClient(connection: ClickSendConnection): ClickSendClient {
  const config = parseStoredConfig(clickSendConfigSchema, connection.config);
  const account: Account = {
    credentials: clickSendCredentials(connection.credentials as Record<string, unknown>),
    baseUrl: providerBaseUrl(config.base_url, [CLICKSEND_DEFAULT_BASE_URL], connection.network),
    senderId: config.sender_id,
    network: connection.network,
  };
  return {
    sendSms: (messages, options = {}) => sendSms(account, messages, options),
    sendMms: (mms, options = {}) => sendMms(account, mms, options),
    getBalance: (options = {}) => getBalance(account, options),
    getSmsHistory: (query = {}, options = {}) => getHistory(account, "/sms/history", query, options),
    getMmsHistory: (query = {}, options = {}) => getHistory(account, "/mms/history", query, options),
    findByCustomString: (customString, search, options = {}) => findByCustomString(account, customString, search, options),
    testConnection: (options = {}) => testConnection(account, options),
  };
}

/** Picks {username, api_key} out of a stored credential record; missing → auth error. */
function clickSendCredentials(record: Record<string, unknown>): ClickSendCredentials {
  const username = typeof record.username === "string" ? record.username.trim() : "";
  const api_key = typeof record.api_key === "string" ? record.api_key.trim() : "";
  if (!username || !api_key) {
    throw new ProviderError("auth", "ClickSend credentials are incomplete (username and api_key are required).", {
      provider: "clicksend",
    });
  }
  assertHeaderSafeCredentials({ username, api_key });
  return { username, api_key };
}

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

function sendSms(account: Account, messages: SmsMessage[], options: SendOptions): Promise<SendResult> {
  const wire = messages.map((m) => toWireMessage(m, account));
  return sendChunked(account, "/sms/send", wire, (chunk) => ({ messages: chunk }), options);
}

async function sendMms(account: Account, mms: MmsSend, options: SendOptions): Promise<SendResult> {
  // ClickSend fetches the media itself, but the URL is the agent's: judge it like our own
  // destinations so a connection cannot be used to probe private networks.
  await guardUrl(mms.media_file, account.network, { field: "media_url", source: "arguments", httpsOnly: true });
  const wire = mms.messages.map((m) => ({ ...toWireMessage(m, account), subject: m.subject }));
  return sendChunked(account, "/mms/send", wire, (chunk) => ({ media_file: mms.media_file, messages: chunk }), options);
}

function toWireMessage(m: SmsMessage, account: Account): Json {
  const wire: Json = { to: m.to, body: m.body, source: "switchboard" };
  const from = m.from ?? account.senderId;
  if (from) wire.from = from;
  if (m.schedule !== undefined) wire.schedule = m.schedule;
  if (m.custom_string !== undefined) wire.custom_string = m.custom_string;
  return wire;
}

/** `cause` is what was thrown: a refusal (ApiError) is rethrown as such when nothing went out. */
type ChunkOutcome = { ok: true; data: Json } | { ok: false; error: ProviderError; cause: unknown } | undefined;

async function sendChunked(
  account: Account,
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
        const envelope = await request(account, "POST", path, { body: envelopeFor(chunks[index]) }, { ...options, acts: true });
        outcomes[index] = { ok: true, data: asObject(envelope.data) };
      } catch (error) {
        failed = true; // stop starting new requests: never fan out into a failing provider
        outcomes[index] = { ok: false, error: asProviderError(error), cause: error };
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, chunks.length));
  await Promise.all(Array.from({ length: concurrency }, worker));

  if (!outcomes.some((o) => o?.ok)) {
    const first = outcomes.find((o) => o && !o.ok);
    if (first && !first.ok) throw first.cause; // nothing went through: the error as it was raised
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

async function getBalance(account: Account, options: CallOptions): Promise<ReadResult> {
  const record = asObject((await request(account, "GET", "/account", {}, options)).data);
  const data: Json = {};
  for (const key of ACCOUNT_FIELDS) if (record[key] !== undefined) data[key] = record[key];
  const currency = asObject(record._currency);
  const picked = Object.fromEntries(CURRENCY_FIELDS.filter((k) => currency[k] !== undefined).map((k) => [k, currency[k]]));
  if (Object.keys(picked).length) data.currency = picked;
  return { data };
}

async function getHistory(account: Account, path: string, query: HistoryQuery, options: CallOptions): Promise<ReadResult> {
  const params: Record<string, string> = {};
  for (const key of ["page", "limit", "date_from", "date_to"] as const) {
    if (query[key] !== undefined) params[key] = String(query[key]);
  }
  const page = asObject((await request(account, "GET", path, { query: params }, options)).data);
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

const HISTORY_PAGE_SIZE = 100; // ClickSend's largest page
const DEFAULT_HISTORY_PAGES = 10;

async function findByCustomString(
  account: Account,
  customString: string,
  search: HistorySearch,
  options: CallOptions,
): Promise<HistorySearchResult> {
  if (!customString) throw new ApiError("invalid_request", "custom_string is required");
  const path = search.kind === "mms" ? "/mms/history" : "/sms/history";
  const maxPages = Math.max(1, Math.min(search.maxPages ?? DEFAULT_HISTORY_PAGES, 100));
  const found = new Map<string, { message_id: string; to: string; status?: string }>();
  let pages = 0;
  for (let page = 1; page <= maxPages; page++) {
    if (search.deadline !== undefined && page > 1 && Date.now() >= search.deadline) break;
    const envelope = await request(account, "GET", path, {
      query: {
        page: String(page),
        limit: String(HISTORY_PAGE_SIZE),
        date_from: String(Math.floor(search.from)),
        date_to: String(Math.ceil(search.to)),
      },
    }, options);
    pages++;
    const data = asObject(envelope.data);
    const lastPage = Number(data.last_page);
    // An empty search is taken as "ClickSend has no such message": only a well-formed page may say so.
    if (!Array.isArray(data.data) || data.last_page === null || data.last_page === "" || !Number.isFinite(lastPage)) {
      throw new ProviderError("unavailable", "ClickSend answered the history request without a page of records.", { provider: "clicksend" });
    }
    const records: unknown[] = data.data;
    for (const raw of records) {
      const record = asObject(raw);
      const messageId = stringOrUndefined(record.message_id);
      if (record.custom_string !== customString || !messageId || found.has(messageId)) continue;
      const status = stringOrUndefined(record.status);
      found.set(messageId, { message_id: messageId, to: String(record.to ?? ""), ...(status ? { status } : {}) });
    }
    if (search.expected !== undefined && found.size >= search.expected) return { messages: [...found.values()], complete: true, pages };
    if (records.length === 0 || page >= lastPage) return { messages: [...found.values()], complete: true, pages };
  }
  return { messages: [...found.values()], complete: false, pages };
}

/**
 * Checks the credentials with GET /account/usage/{year}/{month}/subaccount: it needs
 * valid auth, returns no secrets and is not on /account's tight rate limit
 * (/countries answers 200 without any credentials, so it proves nothing).
 */
async function testConnection(account: Account, options: CallOptions): Promise<TestConnectionResult> {
  const now = new Date();
  const path = `/account/usage/${now.getUTCFullYear()}/${now.getUTCMonth() + 1}/subaccount`;
  try {
    await request(account, "GET", path, {}, options);
    return { ok: true, message: "ClickSend accepted the credentials." };
  } catch (error) {
    if (error instanceof ApiError) throw error; // refused by policy: the caller's 4xx, not a test result
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
// HTTP: every call goes through the shared transport (./transport.ts), which owns the
// network guard, redirects, timeouts and the one "may this have been sent?" rule.
// ---------------------------------------------------------------------------

interface RequestParts {
  body?: unknown;
  query?: Record<string, string>;
}

/** One ClickSend call: Basic auth, JSON in and out. `acts`: the call can send messages. */
async function request(
  account: Account,
  method: "GET" | "POST",
  path: string,
  parts: RequestParts,
  options: CallOptions & { acts?: boolean },
): Promise<Envelope> {
  const url = new URL(`${account.baseUrl}${path}`);
  for (const [k, v] of Object.entries(parts.query ?? {})) url.searchParams.set(k, v);
  const { username, api_key } = account.credentials;
  const response = await providerFetch(
    { provider: "clicksend", displayName: "ClickSend", network: account.network },
    {
      method,
      url,
      headers: {
        Authorization: basicAuth(username, api_key),
        ...(parts.body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: parts.body === undefined ? undefined : JSON.stringify(parts.body),
      acts: options.acts === true,
    },
    describeClickSendError,
    { fetch: options.fetch, timeoutMs: options.timeoutMs },
  );
  return asObject(response.json) as Envelope; // a non-JSON 2xx (a proxy's page) reads as an empty envelope
}

/**
 * What ClickSend's envelope {http_code, response_code, response_msg, data} says about a
 * failed call. Insufficient credit normally comes per message (INSUFFICIENT_CREDIT in a
 * 200); should ClickSend refuse a whole request for it, that is "insufficient_funds".
 */
function describeClickSendError(response: ProviderResponse): ErrorDescription {
  const envelope = asObject(response.json);
  const code = stringOrUndefined(envelope.response_code);
  const message = typeof envelope.response_msg === "string" && envelope.response_msg !== "" ? envelope.response_msg : undefined;
  const data = envelope.data;
  return {
    ...(code !== undefined ? { code } : {}),
    ...(message !== undefined ? { message } : {}),
    // Field errors of a 400/422 (e.g. {media_file: "required"}).
    ...(data && typeof data === "object" ? { errors: scrubSecrets(data) } : {}),
    ...(code && /^INSUFFICIENT_(CREDIT|FUNDS|BALANCE)$/i.test(code) ? { kind: "insufficient_funds" as const } : {}),
  };
}

function asProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  // A refusal by the guard or the config rules happens before anything is sent.
  if (error instanceof ApiError) return new ProviderError("invalid", error.message, { provider: "clicksend" });
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
// The MessagingAdapter (channels sms and mms)
// ---------------------------------------------------------------------------

/**
 * ClickSend's words for a message's state → the normalised status: delivery-receipt
 * codes (200 sent to the network, 201 on the handset, 3xx not delivered), history and
 * receipt statuses (Queued, Scheduled, Sent, Delivered/Completed, Undelivered, Failed…)
 * and the per-message answers of a send (SUCCESS, or an application code such as
 * INVALID_RECIPIENT: the message never left). Null for a word ClickSend does not use.
 */
export function mapClickSendStatus(providerStatus: string): DeliveryStatus | null {
  const word = providerStatus.trim().toUpperCase().replace(/[\s-]+/g, "_");
  if (word === "200" || word === "SENT") return "sent";
  if (word === "201" || word === "DELIVERED" || word === "COMPLETED") return "delivered";
  if (/^3\d\d$/.test(word) || ["UNDELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"].includes(word)) return "undelivered";
  if (["SUCCESS", "QUEUED", "SCHEDULED", "WAITAPPROVAL", "WAIT_APPROVAL", "PENDING"].includes(word)) return "queued";
  if (["FAILED", "CANCELLED", "CANCELED", "BLOCKED"].includes(word) || Object.hasOwn(STATUS_EXPLANATIONS, word)) return "failed";
  return null;
}

function adapterClient(ctx: AdapterContext): ClickSendClient {
  return createClickSendClient({ credentials: ctx.credentials, config: ctx.config, network: ctx.network });
}

function sendMessage(ctx: AdapterContext, message: OutboundMessage): Promise<SendResult> {
  if (message.channel !== "sms" && message.channel !== "mms") {
    throw new ApiError("invalid_request", `ClickSend sends SMS and MMS, not ${message.channel}.`, { field: "channel" });
  }
  if (message.template) {
    throw new ApiError("invalid_request", "ClickSend has no message templates: send a body.", { field: "template" });
  }
  const client = adapterClient(ctx);
  // The database resolved the sender; null/absent: the connection's sender_id, else ClickSend's default.
  const from = message.from ?? undefined;
  const base = (to: string): SmsMessage => ({
    to,
    body: message.body ?? "",
    custom_string: message.operationId,
    ...(from ? { from } : {}),
  });
  const media = message.mediaUrls ?? [];
  if (message.channel === "sms") {
    if (media.length > 0) {
      throw new ApiError("invalid_request", "An SMS carries no media: send it as MMS.", { field: "mediaUrls" });
    }
    return client.sendSms(message.to.map(base), ctx.options);
  }
  if (media.length !== 1) {
    throw new ApiError("invalid_request", "A ClickSend MMS carries exactly one media file.", { field: "mediaUrls" });
  }
  const subject = message.subject?.trim();
  if (!subject) throw new ApiError("invalid_request", "ClickSend requires an MMS subject.", { field: "subject" });
  return client.sendMms({ media_file: media[0], messages: message.to.map((to) => ({ ...base(to), subject })) }, ctx.options);
}

function readHistory(ctx: AdapterContext, query: Record<string, unknown>): Promise<ReadResult> {
  const channel = query.channel ?? query.kind ?? "sms";
  if (channel !== "sms" && channel !== "mms") {
    throw new ApiError("invalid_request", "ClickSend history is for channel sms or mms.", { field: "channel" });
  }
  const picked: HistoryQuery = {};
  for (const key of ["page", "limit", "date_from", "date_to"] as const) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw new ApiError("invalid_request", `${key} must be a non-negative integer.`, { field: key });
    }
    picked[key] = value;
  }
  const client = adapterClient(ctx);
  return channel === "mms" ? client.getMmsHistory(picked, ctx.options) : client.getSmsHistory(picked, ctx.options);
}

function phoneOrRaw(value: string | undefined): string | null {
  if (!value) return null;
  try {
    return normalizePhoneNumber(value);
  } catch {
    return value; // an alphanumeric sender id, or a number ClickSend wrote its own way
  }
}

const MEDIA_FIELDS = ["media_file", "_media_file_url", "media_url", "media"];

function toWebhookEvent(event: ClickSendWebhookEvent): WebhookEvent {
  const occurred_at = event.timestamp !== undefined && event.timestamp < 253_402_300_800
    ? new Date(event.timestamp * 1000).toISOString()
    : null;
  const raw = event.raw;
  if (event.kind === "delivery_receipt") {
    const word = stringOrUndefined(raw.status);
    const status = (event.status_code !== undefined ? mapClickSendStatus(event.status_code) : null) ??
      (word !== undefined ? mapClickSendStatus(word) : null) ??
      (/^\s*success/i.test(event.status_text ?? "") ? "sent" : /^\s*fail/i.test(event.status_text ?? "") ? "undelivered" : null);
    if (status === null) {
      throw new ApiError("invalid_request", "ClickSend delivery receipt with an unknown status.", {
        status_code: event.status_code?.slice(0, 64) ?? null,
      });
    }
    const providerStatus = (event.status_code ?? word ?? event.status_text ?? "").slice(0, 64);
    return {
      kind: "status",
      provider_message_id: event.message_id,
      status,
      provider_status: providerStatus,
      error_code: event.error_code ?? null,
      recipient: phoneOrRaw(event.to),
      occurred_at,
      // A message gets several receipts (interim 200, final 201): one event per status.
      dedupe_key: `receipt:${event.message_id}:${providerStatus}`,
      channel: raw.message_type === "mms" ? "mms" : "sms",
    };
  }
  const to = phoneOrRaw(event.to);
  if (!to || !event.from) throw new ApiError("invalid_request", "ClickSend inbound message without its from and to numbers.");
  const media_urls = MEDIA_FIELDS.map((name) => raw[name]).filter((v): v is string => typeof v === "string" && /^https?:\/\//i.test(v));
  return {
    kind: "inbound",
    provider_message_id: event.message_id,
    channel: media_urls.length > 0 || raw.message_type === "mms" ? "mms" : "sms",
    from: phoneOrRaw(event.from) ?? event.from,
    to,
    body: event.body ?? "",
    media_urls,
    occurred_at,
    dedupe_key: `inbound:${event.message_id}`,
  };
}

/** The request's query string (GET rules put the fields there); none when the URL does not parse. */
function webhookQuery(url: string): URLSearchParams | undefined {
  try {
    return new URL(url).searchParams;
  } catch {
    return undefined;
  }
}

/**
 * ClickSend as a MessagingAdapter for sms and mms: the client above, with the operation
 * id as custom_string (echoed in receipts, replies and history). No verifyWebhook:
 * ClickSend does not sign its pushes, the secret token in the webhook URL authenticates.
 */
export const clicksendAdapter: MessagingAdapter = {
  provider: "clicksend",
  send: sendMessage,
  testCredentials: (ctx) => adapterClient(ctx).testConnection(ctx.options),
  balance: (ctx) => adapterClient(ctx).getBalance(ctx.options),
  history: readHistory,
  parseWebhook: (request) =>
    parseClickSendWebhook(request.headers.get("content-type"), request.rawBody, webhookQuery(request.url)).map(toWebhookEvent),
  mapDeliveryStatus: mapClickSendStatus,
};

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
