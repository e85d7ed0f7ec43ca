/**
 * Telnyx Messaging API v2 adapter (SMS, MMS, balance, message lookup, numbers, signed
 * webhooks) on the one provider interface (./adapter.ts) and the one HTTP transport
 * (./transport.ts).
 *
 * Wire facts this relies on (Telnyx's v2 API reference and the official `telnyx` SDK):
 *  - `Authorization: Bearer <API key>`; JSON both ways; answers are {data} (lists add
 *    {meta: {page_number, page_size, total_pages, total_results}}); errors are
 *    {errors: [{code, title, detail, source: {pointer | parameter}}]} with `code` a string.
 *    Which HTTP status a validation error uses (400, 403 or 422) is not documented, so the
 *    kind is decided by `errors[0].code` wherever Telnyx has a code for it.
 *  - POST /messages sends to ONE recipient (`to` is a string): a message to n numbers is n
 *    requests, made one after another. The answer's `to[0].status` ("queued") is the
 *    recipient's state; `parts` are the SMS segments; `cost` may be null at send time.
 *  - No idempotency for sends: the platform Idempotency-Key header is not declared for
 *    /messages (treated as ignored), so none is sent, a send is never retried, and a
 *    timeout, a dropped connection or a 5xx is "may have been sent" (the transport's rule).
 *  - Telnyx has no free-form correlation field on a message: the operation is matched to
 *    its webhooks through the returned message ids (SendResult.providerMessageIds).
 *  - Webhooks are Ed25519-signed over `${telnyx-timestamp}|${raw body}` with the account's
 *    public key (base64 of the raw 32 bytes, from Mission Control), and retries of one
 *    event carry the same `data.id`.
 *
 * The API key never leaves this module: not in errors (the transport never echoes
 * headers, and provider text is scrubbed of the key), not in returned data. Message
 * records have their webhook URLs removed (they carry our webhook URL token).
 *
 * Knows nothing about Supabase; runs unchanged in Deno and Node.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import type {
  AdapterContext,
  DeliveryEvent,
  DeliveryStatus,
  InboundEvent,
  MessagingAdapter,
  OutboundMessage,
  ProviderNumber,
  WebhookEvent,
  WebhookRequest,
} from "./adapter.ts";
import { assertHeaderSafeCredentials, baseUrlField, optional, parseStoredConfig } from "./connection-config.ts";
import { providerBaseUrl } from "./http.ts";
import { normalizePhoneNumber } from "./phone.ts";
import { canFailOver, type ErrorDescription, providerFetch, type ProviderEndpoint, type ProviderResponse } from "./transport.ts";
import {
  type CallOptions,
  ProviderError,
  type ProviderErrorKind,
  type ReadResult,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

export const TELNYX_DEFAULT_BASE_URL = "https://api.telnyx.com/v2";
/** The only base URLs a deployment that does not allow custom provider hosts accepts. */
export const TELNYX_OFFICIAL_BASE_URLS: readonly string[] = [TELNYX_DEFAULT_BASE_URL];
/** What a Telnyx connection carries (WhatsApp is not offered through this adapter). */
export const TELNYX_CHANNELS = ["sms", "mms"] as const;
/** A webhook whose telnyx-timestamp is further than this from now (either way) is refused (the SDK's rule). */
export const TELNYX_WEBHOOK_TOLERANCE_SECONDS = 300;
/** listNumbers reads at most this many pages of each list. */
export const TELNYX_MAX_NUMBER_PAGES = 20;
/** Telnyx's largest page for the phone-number lists. */
export const TELNYX_NUMBERS_PAGE_SIZE = 250;
/** Telnyx refuses more than 10 media URLs on one message (40317). */
export const TELNYX_MAX_MEDIA_URLS = 10;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An alphanumeric sender id: 1-11 letters, digits or spaces, at least one letter. */
const ALPHA_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;
/** A short code used as a sender. */
const SHORT_CODE = /^\d{3,8}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Stored credentials and config
// ---------------------------------------------------------------------------

export const telnyxCredentialsSchema = z.object({
  /** A V2 API key (KEY…), sent as a Bearer token. */
  api_key: z.string().trim().min(1, { message: "is required" }).max(1000),
});

export type TelnyxCredentials = z.output<typeof telnyxCredentialsSchema>;

/** True for the base64 (standard alphabet, padded) of exactly 32 bytes: a raw Ed25519 public key. */
export function isEd25519PublicKey(value: string): boolean {
  const bytes = decodeBase64(value);
  return bytes !== null && bytes.length === 32;
}

/** An absolute http(s) URL without credentials (a query, e.g. a URL token, is allowed); Telnyx's limit is 2000 characters. */
function isWebhookUrl(value: string): boolean {
  if (/[\u0000-\u0020\u007f]/.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.username === "" && url.password === "" && url.hash === "";
  } catch {
    return false;
  }
}

/** The stored connection config; unknown keys are ignored. */
export const telnyxConfigSchema = z.object({
  /** Defaults to https://api.telnyx.com/v2; another host only where the policy allows custom provider hosts. */
  base_url: optional(baseUrlField),
  /** The messaging profile for sends without a `from` (number pool) and for alphanumeric senders. */
  messaging_profile_id: optional(z.string().trim().regex(UUID, { message: "must be a Telnyx messaging profile id (a UUID)" })),
  /** The account's Ed25519 public key, base64 of the raw 32 bytes: verifies webhooks. Without it no webhook is accepted. */
  webhook_public_key: optional(
    z.string().trim().refine(isEd25519PublicKey, { message: "must be the base64 of a raw 32-byte Ed25519 public key" }),
  ),
  /** Where Telnyx posts a message's events when the send names no status callback URL. */
  webhook_url: optional(
    z.string().trim().max(2000).refine(isWebhookUrl, { message: "must be an absolute http(s) URL without credentials or fragment" }),
  ),
});

export type TelnyxConfig = z.output<typeof telnyxConfigSchema>;

/** A parsed, policy-checked connection: what every call below works from. */
interface Account {
  apiKey: string;
  baseUrl: string;
  config: TelnyxConfig;
  endpoint: ProviderEndpoint;
  options: CallOptions;
}

/**
 * Parses a connection. Throws ApiError (400) for a stored config that breaks the rules, a
 * base_url the policy does not allow or a credential with a line break; ProviderError
 * "auth" for a missing API key.
 */
function openAccount(ctx: AdapterContext): Account {
  const config = parseStoredConfig(telnyxConfigSchema, ctx.config);
  const baseUrl = providerBaseUrl(config.base_url, TELNYX_OFFICIAL_BASE_URLS, ctx.network);
  const parsed = telnyxCredentialsSchema.safeParse(ctx.credentials ?? {});
  if (!parsed.success) {
    throw new ProviderError("auth", "Telnyx credentials are incomplete (api_key is required).", { provider: "telnyx" });
  }
  assertHeaderSafeCredentials({ api_key: parsed.data.api_key });
  return {
    apiKey: parsed.data.api_key,
    baseUrl,
    config,
    endpoint: { provider: "telnyx", displayName: "Telnyx", network: ctx.network },
    options: ctx.options ?? {},
  };
}

// ---------------------------------------------------------------------------
// HTTP and errors
// ---------------------------------------------------------------------------

/**
 * Kinds named by Telnyx error codes, stronger than the HTTP status (which Telnyx does not
 * document for most codes; the transport never applies them to a 5xx or 408).
 *  - account-level (the request was refused because of the account, not the message;
 *    another account may be tried): auth, forbidden, insufficient_funds, rate_limited;
 *  - the message or recipient (another account would refuse it too): invalid, permanent.
 */
const CODE_KINDS: Record<string, ProviderErrorKind> = {
  "10009": "auth", // authentication failed
  "20002": "auth", // API key revoked
  "10010": "forbidden", // authorization failed
  "20012": "forbidden", // account inactive
  "20013": "forbidden", // account blocked
  "40312": "forbidden", // messaging profile disabled
  "40314": "forbidden", // messaging disabled on the account
  "20100": "insufficient_funds",
  "10011": "rate_limited",
  "40318": "rate_limited", // message queue full
  "10005": "not_found",
  "40300": "permanent", // the recipient replied STOP (whatever status Telnyx answers it with)
  "40309": "permanent", // destination region not whitelisted on the profile
  "40321": "permanent", // no usable number in the pool
  "40322": "permanent", // blocked content
  "40329": "permanent", // toll-free number not verified
  "10001": "invalid", // inactive from number
  "10002": "invalid", // invalid phone number
  "10003": "invalid", // invalid URL
  "10004": "invalid", // missing parameter
  "10006": "invalid", // invalid id
  "10015": "invalid", // bad request
  "10016": "invalid", // to must be +E.164
  "40100": "invalid", // from not enabled for messaging
  "40305": "invalid", // from not on the account
  "40306": "invalid", // alphanumeric sender not configured
  "40310": "invalid", // invalid to
  "40316": "invalid", // no content
  "40317": "invalid", // invalid MMS content
};

/** Codes that concern one recipient: the same message may still go to the others. */
const RECIPIENT_CODES = new Set(["10002", "10016", "40300", "40309", "40310"]);

/** What a Telnyx error body says (errors[0] decides; every error is passed on with its source). */
function describer(apiKey: string) {
  return (response: ProviderResponse): ErrorDescription => {
    const list = Array.isArray(asObject(response.json).errors) ? (asObject(response.json).errors as unknown[]) : [];
    const errors = list.slice(0, 20).map((raw) => {
      const e = asObject(raw);
      const source = asObject(e.source);
      const out: Json = {};
      for (const key of ["code", "title", "detail"] as const) {
        const value = stringOrUndefined(e[key]);
        if (value !== undefined) out[key] = redact(value, apiKey).slice(0, 500);
      }
      const where: Json = {};
      for (const key of ["pointer", "parameter"] as const) {
        const value = stringOrUndefined(source[key]);
        if (value !== undefined) where[key] = redact(value, apiKey).slice(0, 200);
      }
      if (Object.keys(where).length) out.source = where;
      return out;
    });
    const first = errors[0] ?? {};
    const code = stringOrUndefined(first.code);
    const title = stringOrUndefined(first.title);
    const detail = stringOrUndefined(first.detail);
    const message = title && detail && detail !== title ? `${title}: ${detail}` : title ?? detail;
    const kind = code !== undefined ? CODE_KINDS[code] : undefined;
    return {
      ...(code !== undefined ? { code } : {}),
      ...(message !== undefined ? { message } : {}),
      ...(errors.length ? { errors } : {}),
      ...(kind !== undefined ? { kind } : {}),
    };
  };
}

interface RequestParts {
  query?: Record<string, string>;
  body?: Json;
  /** True when the call can send a message. */
  acts?: boolean;
}

/** One Telnyx call through the shared transport: Bearer auth, JSON body, error description. */
async function call(account: Account, method: "GET" | "POST", path: string, parts: RequestParts = {}): Promise<ProviderResponse> {
  const url = new URL(`${account.baseUrl}${path}`);
  for (const [k, v] of Object.entries(parts.query ?? {})) url.searchParams.set(k, v);
  return await providerFetch(
    account.endpoint,
    {
      method,
      url,
      headers: {
        Authorization: `Bearer ${account.apiKey}`,
        ...(parts.body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: parts.body === undefined ? undefined : JSON.stringify(parts.body),
      acts: parts.acts === true,
    },
    describer(account.apiKey),
    account.options,
  );
}

/** The `data` object of a 2xx answer; a 2xx without one is a provider fault (nothing to read). */
function dataOf(response: ProviderResponse, what: string): Json {
  const data = asObject(response.json).data;
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new ProviderError("unavailable", `Telnyx answered the ${what} request without a data object.`, {
      provider: "telnyx",
      status: response.status,
    });
  }
  return data as Json;
}

// ---------------------------------------------------------------------------
// Send
// ---------------------------------------------------------------------------

/** The sender of a message: a number (E.164), a short code, or an alphanumeric sender id. */
function senderOf(from: string | null | undefined): { from?: string; alphanumeric: boolean } {
  const value = (from ?? "").trim();
  if (!value) return { alphanumeric: false };
  if (SHORT_CODE.test(value)) return { from: value, alphanumeric: false };
  if (/^[+\d\s\-().]+$/.test(value)) {
    try {
      return { from: normalizePhoneNumber(value), alphanumeric: false };
    } catch (error) {
      throw new ApiError("invalid_request", (error as Error).message, { field: "from" });
    }
  }
  if (ALPHA_SENDER.test(value)) return { from: value, alphanumeric: true };
  throw new ApiError("invalid_request", "from must be a phone number in international format, a short code or an alphanumeric sender id (1-11 letters, digits or spaces).", { field: "from" });
}

/** E.164 when the number parses; otherwise as given, for Telnyx to judge (short codes, or a refusal for that recipient). */
function recipientOf(to: string): string {
  const value = String(to ?? "").trim();
  try {
    return normalizePhoneNumber(value);
  } catch {
    return value;
  }
}

/** The request body every recipient shares (`to` is added per request). */
function messageBody(account: Account, message: OutboundMessage): Json {
  if (!(TELNYX_CHANNELS as readonly string[]).includes(message.channel)) {
    throw new ApiError("invalid_request", `Telnyx connections send ${TELNYX_CHANNELS.join(" and ")}, not ${String(message.channel)}.`, {
      field: "channel",
      allowed: TELNYX_CHANNELS,
    });
  }
  const media = message.mediaUrls ?? [];
  if (media.length > 0 && message.channel !== "mms") {
    throw new ApiError("invalid_request", "Media can only be sent as an MMS (channel mms).", { field: "media_urls" });
  }
  if (media.length > TELNYX_MAX_MEDIA_URLS) {
    throw new ApiError("invalid_request", `Telnyx accepts at most ${TELNYX_MAX_MEDIA_URLS} media URLs per message.`, { field: "media_urls" });
  }
  const text = message.body ?? "";
  if (text === "" && media.length === 0) {
    throw new ApiError("invalid_request", "A message needs a body or media.", { field: "body" });
  }
  if (!Array.isArray(message.to) || message.to.length === 0) {
    throw new ApiError("invalid_request", "At least one recipient is required.", { field: "to" });
  }
  const sender = senderOf(message.from);
  const profile = account.config.messaging_profile_id;
  if (!sender.from && !profile) {
    throw new ApiError(
      "invalid_request",
      "Telnyx needs a from number, or a messaging_profile_id in the connection's config to send from its number pool.",
      { field: "from" },
    );
  }
  if (sender.alphanumeric && !profile) {
    throw new ApiError("invalid_request", "An alphanumeric sender id needs a messaging_profile_id in the connection's config.", {
      field: "from",
    });
  }
  const body: Json = {};
  if (sender.from) body.from = sender.from;
  if (text !== "") body.text = text;
  if (message.channel === "mms") {
    body.type = "MMS";
    if (media.length) body.media_urls = media;
    if (message.subject) body.subject = message.subject;
  }
  // Number pool (no from) and alphanumeric senders need the profile; a number brings its own.
  if (!sender.from || sender.alphanumeric) body.messaging_profile_id = profile;
  const webhookUrl = message.statusCallbackUrl ?? account.config.webhook_url;
  if (webhookUrl) body.webhook_url = webhookUrl;
  return body;
}

/** A failure of the account or the connection, not of one message: it ends the send. */
function isAccountLevel(error: ProviderError): boolean {
  return error.maybeSent || canFailOver(error);
}

/** The pointer of a Telnyx error's first source, when it gave one. */
function pointerOf(error: ProviderError): string | undefined {
  const errors = error.details.errors;
  const first = Array.isArray(errors) ? asObject(errors[0]) : {};
  return stringOrUndefined(asObject(first.source).pointer);
}

/** A refusal of this recipient only (STOP, invalid or unreachable number), not of the message as a whole. */
function isRecipientRefusal(error: ProviderError): boolean {
  const code = error.details.provider_code;
  if (typeof code === "string" && RECIPIENT_CODES.has(code)) return true;
  const pointer = pointerOf(error);
  return pointer === "/to" || pointer?.startsWith("/to/") === true;
}

/**
 * Sends a message, one request per recipient, one after another, never retried.
 *
 *  - A recipient Telnyx refuses (40300 STOP, 10016/40310 invalid number, 40309 region…)
 *    is a failed recipient (status = the Telnyx code) and the others still go.
 *  - A refusal of the message itself (40305 from not on the account, 10003 bad media URL…)
 *    would be the same for every recipient: the remaining ones are failed with the same
 *    error without asking again.
 *  - An account-level failure (auth, revoked key, rate limit, insufficient funds, 5xx,
 *    timeout, connection refused or dropped) before any recipient was accepted is thrown,
 *    as the transport raised it (the caller may fail over when canFailOver says so); once
 *    a recipient was accepted it stops the loop and is reported in data.incomplete, with
 *    data.maybe_sent_count when the failed request may have gone out.
 */
async function send(ctx: AdapterContext, message: OutboundMessage): Promise<SendResult> {
  const account = openAccount(ctx);
  const shared = messageBody(account, message);
  const recipients: RecipientResult[] = [];
  const providerMessageIds: string[] = [];
  let requests = 0;
  let maybeSent = 0;
  let incomplete: Json | undefined;
  let messageRefusal: { status: string; error: string } | undefined;
  const costs: Array<{ amount: number; currency?: string } | null> = [];

  for (let index = 0; index < message.to.length; index++) {
    const to = recipientOf(message.to[index]);
    if (incomplete) {
      recipients.push({ to, ok: false, status: "NOT_SENT", error: "Not sent: an earlier request of this send failed." });
      continue;
    }
    if (messageRefusal) {
      recipients.push({ to, ok: false, status: messageRefusal.status, error: `Not sent: ${messageRefusal.error}` });
      continue;
    }
    requests++;
    let response: ProviderResponse;
    try {
      response = await call(account, "POST", "/messages", { body: { ...shared, to }, acts: true });
    } catch (error) {
      if (!(error instanceof ProviderError)) {
        // A policy refusal (ApiError) comes before any connection: the same for every request.
        if (recipients.some((r) => r.ok)) {
          incomplete = { recipient_index: index, to, kind: "invalid", message: (error as Error).message, maybe_sent: false };
          recipients.push({ to, ok: false, status: "NOT_SENT", error: `Not sent: ${(error as Error).message}` });
          continue;
        }
        throw error;
      }
      if (isAccountLevel(error)) {
        if (!recipients.some((r) => r.ok)) throw withRefusals(error, recipients);
        const status = error.maybeSent ? "MAYBE_SENT" : "NOT_SENT";
        if (error.maybeSent) maybeSent++;
        incomplete = {
          recipient_index: index,
          to,
          kind: error.kind,
          message: error.message,
          maybe_sent: error.maybeSent,
          ...(error.details.provider_code !== undefined ? { provider_code: error.details.provider_code } : {}),
          ...(error.details.retry_after !== undefined ? { retry_after: error.details.retry_after } : {}),
        };
        recipients.push({
          to,
          ok: false,
          status,
          error: `${error.maybeSent ? "May have been sent; do not resend" : "Not sent"}: ${error.message}`,
        });
        continue;
      }
      const status = error.details.provider_code ?? error.kind.toUpperCase();
      recipients.push({ to, ok: false, status, error: error.message });
      if (!isRecipientRefusal(error)) messageRefusal = { status, error: error.message };
      continue;
    }
    const data = asObject(asObject(response.json).data);
    const first = asObject(Array.isArray(data.to) ? data.to[0] : undefined);
    const r: RecipientResult = { to: stringOrUndefined(first.phone_number) ?? to, ok: true, status: stringOrUndefined(first.status) ?? "queued" };
    const id = stringOrUndefined(data.id);
    if (id) {
      r.message_id = id;
      providerMessageIds.push(id);
    }
    if (typeof data.parts === "number" && Number.isFinite(data.parts)) r.segments = data.parts;
    const cost = asObject(data.cost);
    const amount = stringOrUndefined(cost.amount);
    if (amount !== undefined) r.price = amount;
    costs.push(amount !== undefined && Number.isFinite(Number(amount)) ? { amount: Number(amount), currency: stringOrUndefined(cost.currency) } : null);
    recipients.push(r);
  }

  const sentCount = recipients.filter((r) => r.ok).length;
  const result: Json = {
    sent_count: sentCount,
    failed_count: recipients.length - sentCount,
    requests,
  };
  // The total only when Telnyx priced every accepted message in one currency.
  const currencies = new Set(costs.map((c) => c?.currency));
  if (costs.length > 0 && costs.every((c) => c !== null) && currencies.size === 1) {
    result.total_cost = (Math.round(costs.reduce((sum, c) => sum + c!.amount, 0) * 1e6) / 1e6).toFixed(4);
    const currency = [...currencies][0];
    if (currency) result.currency = currency;
  }
  if (incomplete) Object.assign(result, { incomplete, maybe_sent_count: maybeSent });
  return { sentCount, providerMessageIds, recipients, data: result };
}

/** The error as raised, with the recipients Telnyx refused before it (so a failover can leave them out). */
function withRefusals(error: ProviderError, recipients: RecipientResult[]): ProviderError {
  if (recipients.length === 0) return error;
  return new ProviderError(
    error.kind,
    error.message,
    { ...error.details, refused_recipients: recipients.map((r) => ({ to: r.to, status: r.status, error: r.error })) },
    error.maybeSent,
  );
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

/** Checks the API key with GET /balance (read-only), and the configured messaging profile when there is one. */
async function testCredentials(ctx: AdapterContext): Promise<TestConnectionResult> {
  const account = openAccount(ctx);
  try {
    await call(account, "GET", "/balance");
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error; // refused by policy: the caller's 4xx, not a test result
    const code = error.details.provider_code;
    const message = code === "20002"
      ? "The Telnyx API key has been revoked."
      : error.kind === "auth"
      ? "Telnyx rejected the API key."
      : error.kind === "forbidden"
      ? "The Telnyx account is not allowed to use the API (inactive or blocked)."
      : `Could not verify the credentials: ${error.message}`;
    return { ok: false, message, details: testDetails(error) };
  }
  const profile = account.config.messaging_profile_id;
  if (profile) {
    try {
      await call(account, "GET", `/messaging_profiles/${encodeURIComponent(profile)}`);
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      const message = error.kind === "not_found"
        ? "Telnyx accepted the API key, but the configured messaging_profile_id does not exist on the account."
        : `Telnyx accepted the API key, but the messaging profile could not be read: ${error.message}`;
      return { ok: false, message, details: { ...testDetails(error), field: "messaging_profile_id" } };
    }
  }
  return { ok: true, message: "Telnyx accepted the API key." };
}

function testDetails(error: ProviderError): Record<string, unknown> {
  return {
    kind: error.kind,
    ...(error.details.status !== undefined ? { status: error.details.status } : {}),
    ...(error.details.provider_code !== undefined ? { provider_code: error.details.provider_code } : {}),
  };
}

const BALANCE_FIELDS = ["balance", "currency", "credit_limit", "available_credit", "pending"] as const;

/** GET /balance: {balance, currency, credit_limit, available_credit, pending}, money as Telnyx's decimal strings. */
async function balance(ctx: AdapterContext): Promise<ReadResult> {
  const account = openAccount(ctx);
  const record = dataOf(await call(account, "GET", "/balance"), "balance");
  const data: Json = {};
  for (const key of BALANCE_FIELDS) if (record[key] !== undefined) data[key] = record[key];
  return { data };
}

/**
 * GET /messages/{id}: one message's record (query {message_id}), with its normalised
 * status. Telnyx keeps messages retrievable for a limited time (about 10 days).
 */
async function history(ctx: AdapterContext, query: Record<string, unknown>): Promise<ReadResult> {
  const account = openAccount(ctx);
  const id = typeof query?.message_id === "string" ? query.message_id.trim() : "";
  if (!id) throw new ApiError("invalid_request", "Telnyx history needs a message_id.", { field: "message_id" });
  if (!UUID.test(id)) throw new ApiError("invalid_request", "message_id must be a Telnyx message id (a UUID).", { field: "message_id" });
  const record = dataOf(await call(account, "GET", `/messages/${encodeURIComponent(id)}`), "message");
  const first = asObject(Array.isArray(record.to) ? record.to[0] : undefined);
  const providerStatus = stringOrUndefined(first.status);
  return {
    data: {
      message: scrubRecord(record),
      status: providerStatus ? mapDeliveryStatus(providerStatus) : null,
      provider_status: providerStatus ?? null,
    },
  };
}

/** Pages through a phone-number list; more than TELNYX_MAX_NUMBER_PAGES pages is refused rather than cut short. */
async function readPages(account: Account, path: string): Promise<Json[]> {
  const items: Json[] = [];
  for (let page = 1; page <= TELNYX_MAX_NUMBER_PAGES; page++) {
    const response = await call(account, "GET", path, {
      query: { "page[number]": String(page), "page[size]": String(TELNYX_NUMBERS_PAGE_SIZE) },
    });
    const body = asObject(response.json);
    if (!Array.isArray(body.data)) {
      throw new ProviderError("unavailable", "Telnyx answered the number list without a page of numbers.", { provider: "telnyx", status: response.status });
    }
    for (const item of body.data) items.push(asObject(item));
    const totalPages = Number(asObject(body.meta).total_pages);
    const last = Number.isFinite(totalPages) ? page >= totalPages : body.data.length < TELNYX_NUMBERS_PAGE_SIZE;
    if (last || body.data.length === 0) return items;
  }
  // A partial list would make number sync drop the numbers it did not see.
  throw new ProviderError(
    "too_large",
    `The Telnyx account has more numbers than ${TELNYX_MAX_NUMBER_PAGES} pages of ${TELNYX_NUMBERS_PAGE_SIZE}; the list was not read to the end.`,
    { provider: "telnyx", max_pages: TELNYX_MAX_NUMBER_PAGES, page_size: TELNYX_NUMBERS_PAGE_SIZE },
  );
}

/**
 * The account's numbers: GET /phone_numbers/messaging (messaging settings) merged with
 * GET /phone_numbers (the account's numbers).
 *  - sms / mms: `features.sms` / `features.mms` present (null → false) AND the number on a
 *    messaging profile: Telnyx refuses to send from a number without one (40100).
 *  - voice: the number is on /phone_numbers (every number Telnyx sells is a voice DID;
 *    whether a voice connection is assigned is not checked). If the key may not read that
 *    list (403/404), voice is reported true: it is not knowable.
 *  - whatsapp: false (not offered through this adapter).
 *  - provider_number_id: Telnyx's numeric phone-number id.
 */
async function listNumbers(ctx: AdapterContext): Promise<ProviderNumber[]> {
  const account = openAccount(ctx);
  const messaging = await readPages(account, "/phone_numbers/messaging");
  let owned: Json[] | null;
  try {
    owned = await readPages(account, "/phone_numbers");
  } catch (error) {
    if (error instanceof ProviderError && (error.kind === "forbidden" || error.kind === "not_found")) owned = null;
    else throw error;
  }
  const ownedByNumber = new Map<string, Json>();
  for (const n of owned ?? []) {
    const number = stringOrUndefined(n.phone_number);
    if (number && n.status !== "deleted") ownedByNumber.set(number, n);
  }
  const out = new Map<string, ProviderNumber>();
  for (const m of messaging) {
    const number = stringOrUndefined(m.phone_number);
    if (!number || out.has(number)) continue;
    const features = asObject(m.features);
    const onProfile = typeof m.messaging_profile_id === "string" && m.messaging_profile_id !== "";
    const sms = onProfile && features.sms !== null && typeof features.sms === "object";
    const mms = sms && features.mms !== null && typeof features.mms === "object";
    const record = ownedByNumber.get(number);
    out.set(number, {
      phone_number: listedNumber(number),
      friendly_name: friendlyName(record ?? m),
      capabilities: { sms, mms, voice: owned === null ? true : record !== undefined, whatsapp: false },
      provider_number_id: stringOrUndefined(m.id) ?? stringOrUndefined(record?.id) ?? null,
    });
  }
  for (const [number, record] of ownedByNumber) {
    if (out.has(number)) continue;
    out.set(number, {
      phone_number: listedNumber(number),
      friendly_name: friendlyName(record),
      capabilities: { sms: false, mms: false, voice: true, whatsapp: false },
      provider_number_id: stringOrUndefined(record.id) ?? null,
    });
  }
  return [...out.values()];
}

function listedNumber(number: string): string {
  try {
    return normalizePhoneNumber(number);
  } catch {
    return number; // a short code, kept as Telnyx lists it
  }
}

/** Telnyx has no display name for a number: its customer reference, else its tags. */
function friendlyName(record: Json): string | null {
  const reference = stringOrUndefined(record.customer_reference);
  if (reference) return reference;
  const tags = Array.isArray(record.tags) ? record.tags.filter((t): t is string => typeof t === "string" && t !== "") : [];
  return tags.length ? tags.join(", ") : null;
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/**
 * True when `rawBody` was signed by the holder of `publicKey` (base64 of the raw 32-byte
 * Ed25519 key): `telnyx-signature-ed25519` (base64 of 64 bytes) over
 * `${telnyx-timestamp}|${rawBody}`, with a timestamp (Unix seconds) at most 300 s from
 * `nowMs` in either direction. Any missing or malformed part is false, never an error.
 */
export async function verifyTelnyxSignature(publicKey: string, headers: Headers, rawBody: string, nowMs = Date.now()): Promise<boolean> {
  const key = decodeBase64(publicKey.trim());
  if (!key || key.length !== 32) return false;
  const signatureHeader = headers.get("telnyx-signature-ed25519");
  const timestamp = headers.get("telnyx-timestamp");
  if (!signatureHeader || !timestamp) return false;
  if (!/^\d{1,15}$/.test(timestamp)) return false;
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) > TELNYX_WEBHOOK_TOLERANCE_SECONDS) return false;
  const signature = decodeBase64(signatureHeader.trim());
  if (!signature || signature.length !== 64) return false;
  const signed = new TextEncoder().encode(`${timestamp}|${rawBody}`);
  try {
    const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, signature, signed);
  } catch {
    return false;
  }
}

/** Verifies a webhook with the connection's webhook_public_key; no key configured → false (nothing is trusted). */
async function verifyWebhook(ctx: AdapterContext, request: WebhookRequest): Promise<boolean> {
  const config = parseStoredConfig(telnyxConfigSchema, ctx.config);
  if (!config.webhook_public_key) return false;
  return await verifyTelnyxSignature(config.webhook_public_key, request.headers, request.rawBody);
}

const DELIVERY_EVENTS = new Set(["message.sent", "message.finalized"]);

/**
 * The events of a Telnyx webhook {data: {event_type, id, occurred_at, payload}}:
 *  - message.sent / message.finalized → one DeliveryEvent per payload.to[] entry, status
 *    from to[].status (entries whose status is not a delivery status are skipped);
 *  - message.received → one InboundEvent;
 *  - any other event type → none.
 * dedupe_key is the event's data.id (Telnyx resends an event with the same id); should a
 * payload name several recipients, `:${recipient}` is appended so each stays distinct.
 * A body that is not such an envelope is ApiError invalid_request.
 */
function parseWebhook(request: WebhookRequest): WebhookEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.rawBody);
  } catch {
    throw malformed("the body is not valid JSON");
  }
  const envelope = asObject(asObject(parsed).data);
  const eventType = envelope.event_type;
  const eventId = envelope.id;
  if (typeof eventType !== "string" || eventType === "") throw malformed("data.event_type is missing");
  if (typeof eventId !== "string" || eventId === "") throw malformed("data.id is missing");
  if (!DELIVERY_EVENTS.has(eventType) && eventType !== "message.received") return [];

  const payload = envelope.payload;
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) throw malformed("data.payload is missing");
  const message = payload as Json;
  const messageId = message.id;
  if (typeof messageId !== "string" || messageId === "") throw malformed("data.payload.id is missing");
  if (!Array.isArray(message.to) || message.to.length === 0) throw malformed("data.payload.to is missing");
  const to = message.to.map((entry) => asObject(entry));
  const occurredAt = stringOrUndefined(envelope.occurred_at) ?? null;
  const channel = String(message.type ?? "").toUpperCase() === "MMS" ? "mms" as const : "sms" as const;

  if (eventType === "message.received") {
    const from = stringOrUndefined(asObject(message.from).phone_number);
    const ours = stringOrUndefined(to[0].phone_number);
    if (!from) throw malformed("data.payload.from.phone_number is missing");
    if (!ours) throw malformed("data.payload.to[0].phone_number is missing");
    if (message.text !== undefined && message.text !== null && typeof message.text !== "string") throw malformed("data.payload.text is not text");
    const media = Array.isArray(message.media) ? message.media : [];
    const mediaUrls = media.map((m) => stringOrUndefined(asObject(m).url)).filter((u): u is string => u !== undefined);
    const inbound: InboundEvent = {
      kind: "inbound",
      provider_message_id: messageId,
      channel: channel === "mms" || mediaUrls.length > 0 ? "mms" : "sms",
      from: listedNumber(from),
      to: listedNumber(ours),
      body: typeof message.text === "string" ? message.text : "",
      media_urls: mediaUrls,
      occurred_at: occurredAt ?? stringOrUndefined(message.received_at) ?? null,
      dedupe_key: eventId,
    };
    return [inbound];
  }

  const errors = Array.isArray(message.errors) ? message.errors : [];
  const errorCode = stringOrUndefined(asObject(errors[0]).code) ?? null;
  const events: DeliveryEvent[] = [];
  for (const entry of to) {
    const providerStatus = stringOrUndefined(entry.status);
    if (providerStatus === undefined) throw malformed("data.payload.to[].status is missing");
    const status = mapDeliveryStatus(providerStatus);
    if (status === null) continue;
    const recipient = stringOrUndefined(entry.phone_number) ?? null;
    events.push({
      kind: "status",
      provider_message_id: messageId,
      status,
      provider_status: providerStatus,
      error_code: errorCode,
      recipient,
      occurred_at: occurredAt,
      dedupe_key: to.length > 1 ? `${eventId}:${recipient ?? events.length}` : eventId,
      channel,
    });
  }
  return events;
}

function malformed(reason: string): ApiError {
  return new ApiError("invalid_request", `Not a Telnyx messaging webhook: ${reason}.`, { provider: "telnyx" });
}

/**
 * Telnyx's to[].status → the normalised status:
 *  queued, sending, scheduled → queued; sent → sent; delivered → delivered;
 *  delivery_failed (the carrier reported failure) → undelivered;
 *  delivery_unconfirmed → sent: the carrier took the message but no delivery receipt came
 *    back, which proves neither delivery nor failure (Twilio leaves such messages at "sent");
 *    provider_status keeps the word;
 *  sending_failed (never left Telnyx), expired, cancelled → failed.
 *  Anything else (webhook_delivered on inbound messages, unknown words) → null.
 */
function mapDeliveryStatus(providerStatus: string): DeliveryStatus | null {
  switch (providerStatus.trim().toLowerCase()) {
    case "queued":
    case "sending":
    case "scheduled":
      return "queued";
    case "sent":
    case "delivery_unconfirmed":
      return "sent";
    case "delivered":
      return "delivered";
    case "delivery_failed":
      return "undelivered";
    case "sending_failed":
    case "expired":
    case "cancelled":
    case "canceled":
      return "failed";
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const telnyxAdapter: MessagingAdapter = {
  provider: "telnyx",
  send,
  testCredentials,
  balance,
  history,
  listNumbers,
  verifyWebhook,
  parseWebhook,
  mapDeliveryStatus,
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function asObject(value: unknown): Json {
  return value && typeof value === "object" && !Array.isArray(value) ? value as Json : {};
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : undefined;
}

/** Strict padded base64 (standard alphabet) → bytes; null when it is not. */
function decodeBase64(value: string): Uint8Array<ArrayBuffer> | null {
  if (value.length === 0 || value.length % 4 !== 0 || !BASE64.test(value)) return null;
  let binary: string;
  try {
    binary = atob(value);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Removes the API key from provider text (defence in depth: Telnyx does not echo it). */
function redact(text: string, apiKey: string): string {
  return apiKey.length >= 8 ? text.split(apiKey).join("[redacted]") : text;
}

/**
 * A message record as returned: webhook URLs (ours, with their URL token) and anything
 * named like a secret are dropped, at any depth.
 */
function scrubRecord(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrubRecord);
  if (!value || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (/api_?key|password|secret|token|authorization|^webhook_(failover_)?url$/i.test(k)) continue;
    out[k] = scrubRecord(v);
  }
  return out;
}
