/**
 * Twilio Programmable Messaging adapter (REST API 2010-04-01): SMS, MMS and WhatsApp
 * sends, account checks, balance, message history, number sync, and signed webhooks
 * (status callbacks and inbound messages), on the one provider interface (./adapter.ts)
 * and the one HTTP transport (./transport.ts).
 *
 * Wire facts this relies on (Twilio's REST API and webhook security documentation):
 *  - HTTP Basic auth: `AccountSid:AuthToken`, or `ApiKeySid:ApiKeySecret` (SK…) with the
 *    account SID still in the path. Form-encoded bodies; `.json` paths answer JSON.
 *  - One `To` per Messages create: a send to n recipients is n requests, made one after
 *    another. No idempotency key exists for creates, so a create that timed out, was cut
 *    off or got a 5xx may have gone out: it is never retried (the transport decides
 *    "maybe sent"), and a bulk send stops there.
 *  - Error bodies are `{code, message, more_info, status}`; a 400 names what is wrong with
 *    this one message (21211 invalid To, 21610 opted out, 21614 landline, 21408 region…),
 *    and is a failed recipient, not a failed send.
 *  - Webhooks are signed: X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + sorted
 *    name+value POST parameters)); JSON bodies carry bodySHA256 in the URL instead. The
 *    auth token signs even when the API is called with an API key.
 *  - GET /Accounts/{sid}.json returns the account's auth_token: only allow-listed fields
 *    leave this module, and every error and result is scrubbed of the credentials.
 *
 * Knows nothing about Supabase. Runtime-neutral (Deno and Node): fetch through the
 * transport, crypto.subtle, TextEncoder and btoa only.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import type {
  AdapterContext,
  Channel,
  DeliveryEvent,
  DeliveryStatus,
  InboundEvent,
  MessagingAdapter,
  OutboundMessage,
  ProviderNumber,
  WebhookEvent,
  WebhookRequest,
} from "./adapter.ts";
import { baseUrlField, optional, parseStoredConfig } from "./connection-config.ts";
import { providerBaseUrl } from "./http.ts";
import { normalizePhoneNumber } from "./phone.ts";
import { countSmsSegments } from "./sms-segments.ts";
import { basicAuth, type ErrorDescription, type ProviderEndpoint, providerFetch, type ProviderResponse } from "./transport.ts";
import {
  type CallOptions,
  ProviderError,
  type ProviderErrorKind,
  type ReadResult,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

export const TWILIO_DEFAULT_BASE_URL = "https://api.twilio.com";
/** The only host a production connection may send its credentials to. */
export const TWILIO_OFFICIAL_BASE_URLS = [TWILIO_DEFAULT_BASE_URL] as const;
export const TWILIO_API_VERSION = "2010-04-01";
export const TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature";
/** Empty TwiML: the answer to an inbound message (anything else makes Twilio log 11200/12300). */
export const TWILIO_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
/** Pages of IncomingPhoneNumbers read at most by listNumbers (1000 numbers each). */
export const TWILIO_MAX_NUMBER_PAGES = 20;
const NUMBERS_PAGE_SIZE = 1000;
/** MediaUrl{i} read at most from an inbound webhook (Twilio sends up to 10). */
const MAX_INBOUND_MEDIA = 20;

const ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;
const API_KEY_SID = /^SK[0-9a-fA-F]{32}$/;
const SERVICE_SID = /^MG[0-9a-fA-F]{32}$/;
/** Printable ASCII without spaces: what Twilio secrets are made of (and nothing that breaks a header). */
const SECRET = /^[\x21-\x7e]{1,256}$/;

// ---------------------------------------------------------------------------
// Credentials and config
// ---------------------------------------------------------------------------

/**
 * The stored credentials. The auth token is always required: it is what Twilio signs
 * webhooks with. With api_key_sid + api_key_secret the API is called with the key
 * (revocable, and not the account's master secret) instead of the token.
 */
export const twilioCredentialsSchema = z.object({
  account_sid: z.string().trim().regex(ACCOUNT_SID, { message: "must be AC followed by 32 hexadecimal digits" }),
  auth_token: z.string().trim().regex(SECRET, { message: "must be the account's auth token (printable characters, no spaces)" }),
  api_key_sid: optional(z.string().trim().regex(API_KEY_SID, { message: "must be SK followed by 32 hexadecimal digits" })),
  api_key_secret: optional(z.string().trim().regex(SECRET, { message: "must be the API key's secret (printable characters, no spaces)" })),
}).refine((c) => (c.api_key_sid === undefined) === (c.api_key_secret === undefined), {
  message: "api_key_sid and api_key_secret go together: set both or neither",
  path: ["api_key_secret"],
});

export type TwilioCredentials = z.output<typeof twilioCredentialsSchema>;

/** An absolute http(s) URL Twilio posts to (query and #connection-overrides allowed, no credentials). */
const callbackUrlField = z.string().max(4000).refine((text) => {
  if (/[\u0000-\u0020\u007f]/.test(text)) return false;
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && !url.username && !url.password &&
      url.hostname !== "" && !url.hostname.includes("_");
  } catch {
    return false;
  }
}, { message: "must be an absolute http(s) URL without credentials (and no '_' in the host, which Twilio refuses)" });

/** The stored connection config; unknown keys are ignored. */
export const twilioConfigSchema = z.object({
  /** Defaults to https://api.twilio.com; another host only where the policy allows custom provider hosts. */
  base_url: optional(baseUrlField),
  /** Sends without a `from` go through this Messaging Service (Twilio picks the sender). */
  messaging_service_sid: optional(z.string().trim().regex(SERVICE_SID, { message: "must be MG followed by 32 hexadecimal digits" })),
  /** StatusCallback for sends whose message names none. */
  status_callback_url: optional(callbackUrlField),
  /**
   * Our public webhook base URL (scheme://host[/path]) as Twilio calls it. When the
   * function sees another URL (behind a proxy), signatures are checked over this base
   * plus the request's path and query.
   */
  webhook_url: optional(baseUrlField),
});

export type TwilioConfig = z.output<typeof twilioConfigSchema>;

/** A parsed, policy-checked connection: what every call below works from. */
interface Account {
  sid: string;
  authToken: string;
  /** The Basic auth header value (API key when configured, else the auth token). */
  authorization: string;
  baseUrl: string;
  config: TwilioConfig;
  endpoint: ProviderEndpoint;
  /** Credential values to scrub from anything leaving this module. */
  secrets: string[];
}

/** Picks the credentials out of a stored record; missing or malformed → ProviderError "auth" naming the field (never the value). */
export function parseTwilioCredentials(record: Readonly<Record<string, unknown>>): TwilioCredentials {
  const result = twilioCredentialsSchema.safeParse(record ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join(".") || "credentials";
  const value = record?.[field];
  const missing = issue.code !== "custom" && (value === undefined || value === null || value === "");
  throw new ProviderError(
    "auth",
    `The Twilio credentials are not usable: ${field} ${missing ? "is required" : issue.message}.`,
    { provider: "twilio", field },
  );
}

function credentialSecrets(record: Readonly<Record<string, unknown>> | undefined): string[] {
  const values = ["auth_token", "api_key_secret", "account_sid", "api_key_sid"]
    .map((k) => record?.[k])
    .filter((v): v is string => typeof v === "string")
    .flatMap((v) => [v, v.trim()]);
  return [...new Set(values.filter((v) => v.length >= 8))];
}

/** Builds the account a call works from: config rules (ApiError 400), credentials (ProviderError auth), base URL policy. */
function accountOf(ctx: AdapterContext): Account {
  const secrets = credentialSecrets(ctx.credentials);
  try {
    const config = parseStoredConfig(twilioConfigSchema, ctx.config);
    const credentials = parseTwilioCredentials(ctx.credentials);
    const baseUrl = providerBaseUrl(config.base_url, TWILIO_OFFICIAL_BASE_URLS, ctx.network);
    const authorization = credentials.api_key_sid && credentials.api_key_secret
      ? basicAuth(credentials.api_key_sid, credentials.api_key_secret)
      : basicAuth(credentials.account_sid, credentials.auth_token);
    return {
      sid: credentials.account_sid,
      authToken: credentials.auth_token,
      authorization,
      baseUrl,
      config,
      endpoint: { provider: "twilio", displayName: "Twilio", network: ctx.network },
      secrets,
    };
  } catch (error) {
    throw scrubError(error, secrets);
  }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

function accountPath(account: Account, resource: string): string {
  return `/${TWILIO_API_VERSION}/Accounts/${account.sid}${resource}`;
}

/** One Twilio call through the shared transport. `acts`: the request can send a message. */
async function call(
  account: Account,
  method: "GET" | "POST",
  pathAndQuery: string,
  options: CallOptions | undefined,
  body?: URLSearchParams,
): Promise<Json> {
  const headers: Record<string, string> = { Authorization: account.authorization };
  if (body) headers["Content-Type"] = "application/x-www-form-urlencoded";
  const response = await providerFetch(
    account.endpoint,
    { method, url: `${account.baseUrl}${pathAndQuery}`, headers, body: body?.toString(), acts: method === "POST" },
    (r) => describeTwilioError(r, account),
    options,
  );
  return asObject(response.json);
}

/** Twilio error codes whose meaning is sharper than the HTTP status. */
const CODE_KINDS: Record<string, ProviderErrorKind> = {
  "20003": "auth", // authentication failed
  // A fixed, account-scoped path that Twilio does not find: the credentials do not reach
  // that account SID (an API key of another account, a mistyped SID).
  "20404": "auth",
  "20005": "forbidden", // account not active (out of funds, trial not activated)
  "10001": "forbidden", // account not active
  "30002": "forbidden", // account suspended
  "20429": "rate_limited",
  "21606": "invalid", // From is not an SMS-capable number of the account
  "21212": "invalid", // invalid From
};

/** What a Twilio error body says (JSON, or the XML envelope of a path without .json). */
function describeTwilioError(response: ProviderResponse, account: Account): ErrorDescription {
  const body = asObject(response.json);
  let code = typeof body.code === "number" || (typeof body.code === "string" && body.code !== "") ? String(body.code) : undefined;
  let message = typeof body.message === "string" ? body.message : undefined;
  if (code === undefined && response.text.includes("<RestException>")) {
    code = /<Code>(\d{1,6})<\/Code>/.exec(response.text)?.[1];
    message = /<Message>([^<]{0,500})<\/Message>/.exec(response.text)?.[1];
  }
  const description: ErrorDescription = {};
  if (code !== undefined) description.code = code.slice(0, 12);
  if (message !== undefined) description.message = scrubText(message, account.secrets).slice(0, 300);
  const kind = code !== undefined ? CODE_KINDS[code] : undefined;
  if (kind) description.kind = kind;
  if (code === "20404") {
    description.message = "no such account for these credentials (check account_sid, and that the API key belongs to it)";
  }
  return description;
}

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

/**
 * 400 codes that are about the message or the sender, not the recipient: every
 * recipient would get the same answer, so the rest are not tried.
 */
const MESSAGE_LEVEL_CODES = new Set([
  "21602", // body, media or content required
  "21603", // From required
  "21606", // From not an SMS-capable number of the account
  "21212", // invalid From
  "21617", // body over 1600 characters
  "21620", // invalid media URL
  "21623", // too many media
  "21609", // invalid StatusCallback
  "21624", // invalid validity period
  "21655", // invalid ContentSid
  "21656", // invalid ContentVariables
  "21701", // unknown Messaging Service
  "21703", // Messaging Service has no sender for this
  "21705", // invalid Messaging Service SID
  "63007", // From is not a WhatsApp sender
]);

/** Short explanations of the per-recipient codes, for people and agents. */
const CODE_EXPLANATIONS: Record<string, string> = {
  "21211": "The recipient is not a valid phone number.",
  "21408": "Sending to this region is not enabled in the Twilio account's Geo Permissions.",
  "21608": "Trial accounts can only send to verified numbers.",
  "21610": "The recipient has opted out (replied STOP) of messages from this sender.",
  "21612": "This recipient cannot be reached from this sender on this channel.",
  "21614": "The recipient is not a mobile number (landline or unreachable).",
  "21635": "The recipient is a landline.",
  "21602": "A message body, media or a template is required.",
  "21603": "A sender (from) is required.",
  "21606": "The sender is not an SMS-capable number of this Twilio account.",
  "21212": "The sender is not a valid phone number or sender id.",
  "21617": "The message body exceeds 1600 characters.",
  "21620": "A media URL is not a valid http(s) URL.",
  "21623": "Too many media files (at most 10).",
  "21609": "The status callback URL is not valid.",
  "21655": "The template (ContentSid) is not valid.",
  "21656": "The template variables are not valid.",
  "21701": "The Messaging Service does not exist on this account.",
  "21703": "The Messaging Service has no sender able to send this message.",
  "21705": "The Messaging Service SID is not valid.",
  "63007": "The sender is not a WhatsApp sender of this Twilio account.",
};

/** True for a refusal of this one message (a 400 that is not about the account). */
function isMessageRefusal(error: ProviderError): boolean {
  const code = error.details.provider_code;
  return error.details.status === 400 && !error.maybeSent && (code === undefined || !(code in CODE_KINDS) || CODE_KINDS[code] === "invalid");
}

function toAddress(value: string, channel: OutboundMessage["channel"]): string {
  const bare = value.trim().replace(/^whatsapp:/i, "");
  let e164 = bare;
  if (/^\+?[\d\s\-().]+$/.test(bare)) {
    try {
      e164 = normalizePhoneNumber(bare);
    } catch {
      e164 = bare; // Twilio judges it (21211): a failed recipient, not a failed send
    }
  }
  return channel === "whatsapp" ? `whatsapp:${e164}` : e164;
}

/** The form parameters every recipient shares. Throws ApiError for a message that cannot be sent as asked. */
function commonParams(account: Account, message: OutboundMessage): URLSearchParams {
  if (!["sms", "mms", "whatsapp"].includes(message.channel)) {
    throw new ApiError("invalid_request", "Twilio sends channel sms, mms or whatsapp.", { field: "channel" });
  }
  const params = new URLSearchParams();
  const from = message.from?.trim();
  if (from && SERVICE_SID.test(from)) params.set("MessagingServiceSid", from);
  else if (from) params.set("From", toAddress(from, message.channel));
  else if (account.config.messaging_service_sid) params.set("MessagingServiceSid", account.config.messaging_service_sid);
  else {
    throw new ApiError(
      "invalid_request",
      "A Twilio send needs a sender: a from number, or the connection's messaging_service_sid.",
      { field: "from" },
    );
  }
  const media = message.mediaUrls ?? [];
  if (media.length > 0 && message.channel === "sms") {
    throw new ApiError("invalid_request", "Media can only be sent on channel mms or whatsapp.", { field: "mediaUrls" });
  }
  if (message.template) {
    params.set("ContentSid", message.template.id);
    if (message.template.variables !== undefined) params.set("ContentVariables", JSON.stringify(message.template.variables));
  } else if (message.body !== undefined && message.body !== "") {
    params.set("Body", message.body);
  }
  for (const url of media) params.append("MediaUrl", url);
  const callback = message.statusCallbackUrl ?? account.config.status_callback_url;
  if (callback) params.set("StatusCallback", callback);
  return params;
}

function segmentsOf(resource: Json, message: OutboundMessage): number {
  const reported = Number(resource.num_segments);
  if (Number.isFinite(reported) && reported > 0) return reported;
  // "0" while a Messaging Service holds the message: estimate what it will be.
  if (message.channel !== "sms" || message.template || (message.mediaUrls?.length ?? 0) > 0) return 1;
  return Math.max(1, countSmsSegments(message.body ?? "").segments);
}

async function send(ctx: AdapterContext, message: OutboundMessage): Promise<SendResult> {
  const account = accountOf(ctx);
  try {
    return await sendAll(account, message, ctx.options);
  } catch (error) {
    throw scrubError(error, account.secrets);
  }
}

async function sendAll(account: Account, message: OutboundMessage, options: CallOptions | undefined): Promise<SendResult> {
  const recipients = (message.to ?? []).map((t) => String(t).trim()).filter((t) => t !== "");
  if (recipients.length === 0) throw new ApiError("invalid_request", "At least one recipient is required.", { field: "to" });
  const common = commonParams(account, message);
  const path = accountPath(account, "/Messages.json");

  const results: RecipientResult[] = [];
  const providerMessageIds: string[] = [];
  let requests = 0;
  let incomplete: Json | undefined;
  let maybeSentCount = 0;

  for (let index = 0; index < recipients.length; index++) {
    const to = recipients[index];
    const address = toAddress(to, message.channel);
    const shown = address.replace(/^whatsapp:/, "");
    const params = new URLSearchParams(common);
    params.set("To", address);
    requests++;
    try {
      const resource = await call(account, "POST", path, options, params);
      const sid = typeof resource.sid === "string" ? resource.sid : undefined;
      const r: RecipientResult = { to: shown, ok: true, status: stringOr(resource.status, "queued") };
      if (sid) {
        r.message_id = sid;
        providerMessageIds.push(sid);
      }
      r.segments = segmentsOf(resource, message);
      if (typeof resource.price === "string" && resource.price !== "") r.price = resource.price;
      results.push(r);
      continue;
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error; // a policy refusal (ApiError): nothing was sent
      if (isMessageRefusal(error)) {
        const code = error.details.provider_code;
        const failed = refusedRecipient(shown, error);
        results.push(failed);
        if (code !== undefined && MESSAGE_LEVEL_CODES.has(code)) {
          // Every other recipient would be refused the same way: not tried.
          for (const rest of recipients.slice(index + 1)) {
            results.push({ ...failed, to: toAddress(rest, message.channel).replace(/^whatsapp:/, "") });
          }
          break;
        }
        continue;
      }
      // An account-level failure (auth, rate limit, funds, outage, timeout, cut-off).
      // Nothing accepted yet: the error as the transport raised it, so the caller can
      // decide on failover. Otherwise keep what went out and stop here.
      if (!results.some((r) => r.ok)) throw error;
      const status = error.maybeSent ? "MAYBE_SENT" : "NOT_SENT";
      if (error.maybeSent) maybeSentCount++;
      incomplete = {
        recipient_index: index,
        kind: error.kind,
        message: error.message,
        maybe_sent: error.maybeSent,
        ...(error.details.provider_code !== undefined ? { provider_code: error.details.provider_code } : {}),
      };
      results.push({
        to: shown,
        ok: false,
        status,
        error: `${error.maybeSent ? "May have been sent; do not resend" : "Not sent"}: ${error.message}`,
      });
      for (const rest of recipients.slice(index + 1)) {
        results.push({
          to: toAddress(rest, message.channel).replace(/^whatsapp:/, ""),
          ok: false,
          status: "NOT_SENT",
          error: "Not sent: an earlier request in this send failed.",
        });
      }
      break;
    }
  }

  const sentCount = results.filter((r) => r.ok).length;
  const data: Json = {
    channel: message.channel,
    sent_count: sentCount,
    failed_count: results.length - sentCount,
    requests,
  };
  if (incomplete) Object.assign(data, { incomplete, maybe_sent_count: maybeSentCount });
  return { sentCount, providerMessageIds, recipients: results, data };
}

function refusedRecipient(to: string, error: ProviderError): RecipientResult {
  const code = error.details.provider_code;
  const explanation = code !== undefined ? CODE_EXPLANATIONS[code] : undefined;
  return {
    to,
    ok: false,
    status: code ?? String(error.details.status ?? "REFUSED"),
    error: explanation ? `${explanation} (Twilio ${code})` : error.message,
  };
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

async function testCredentials(ctx: AdapterContext): Promise<TestConnectionResult> {
  let account: Account;
  try {
    account = accountOf(ctx);
  } catch (error) {
    // Unusable credentials are the test's answer; a refused config or base_url is the caller's 4xx.
    if (!(error instanceof ProviderError)) throw error;
    return { ok: false, message: error.message, details: { kind: error.kind, ...(error.details.field ? { field: error.details.field } : {}) } };
  }
  try {
    const resource = await call(account, "GET", accountPath(account, ".json"), ctx.options);
    const status = typeof resource.status === "string" ? resource.status : undefined;
    const details: Json = {};
    for (const key of ["friendly_name", "status", "type"]) if (typeof resource[key] === "string") details[key] = resource[key];
    if (status && status !== "active") {
      return { ok: false, message: `The Twilio account is ${status}.`, details: scrubDeep({ kind: "forbidden", ...details }, account.secrets) as Json };
    }
    return { ok: true, message: "Twilio accepted the credentials.", details: scrubDeep(details, account.secrets) as Json };
  } catch (error) {
    if (error instanceof ApiError) throw scrubError(error, account.secrets); // refused by policy: the caller's 4xx
    if (!(error instanceof ProviderError)) throw error;
    const e = scrubError(error, account.secrets) as ProviderError;
    const message = e.kind === "auth" && e.details.provider_code === "20404"
      ? "Twilio has no such account for these credentials (check account_sid, and that the API key belongs to it)."
      : e.kind === "auth"
      ? "Twilio rejected the account SID and auth token (or API key)."
      : e.kind === "forbidden"
      ? "The Twilio account is not active or not allowed to use the API."
      : `Could not verify the credentials: ${e.message}`;
    return { ok: false, message, details: { kind: e.kind, status: e.details.status, provider_code: e.details.provider_code } };
  }
}

async function balance(ctx: AdapterContext): Promise<ReadResult> {
  const account = accountOf(ctx);
  try {
    const resource = await call(account, "GET", accountPath(account, "/Balance.json"), ctx.options);
    const amount = Number(resource.balance);
    if (resource.balance === null || resource.balance === undefined || resource.balance === "" || !Number.isFinite(amount)) {
      throw new ProviderError("unavailable", "Twilio answered the balance request without a balance.", { provider: "twilio" });
    }
    return { data: { balance: amount, currency: stringOr(resource.currency, "") } };
  } catch (error) {
    throw scrubError(error, account.secrets);
  }
}

const DATE_FILTER = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const dateFilter = z.string().trim().refine((v) => DATE_FILTER.test(v) && !Number.isNaN(Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v)), {
  message: "must be a date (YYYY-MM-DD) or an ISO-8601 date-time",
});

/** history() arguments: Twilio's own list filters, in snake case. */
export const twilioHistoryQuerySchema = z.object({
  /** Recipient (E.164, or whatsapp:+E164). */
  to: optional(z.string().trim().max(64)),
  /** Sender (E.164, whatsapp:+E164 or an alphanumeric sender id). */
  from: optional(z.string().trim().max(64)),
  /** Sent on this UTC day (DateSent). */
  date_sent: optional(dateFilter),
  /** Sent on or before (DateSent<). */
  date_sent_before: optional(dateFilter),
  /** Sent on or after (DateSent>). */
  date_sent_after: optional(dateFilter),
  /** 1..1000, default 50. */
  page_size: optional(z.coerce.number().int().min(1).max(1000)),
  /** From a previous answer's next_page. */
  page: optional(z.coerce.number().int().min(0).max(1_000_000)),
  page_token: optional(z.string().trim().regex(/^P[AB][A-Za-z0-9]{1,64}$/, { message: "must be a page_token from a previous answer" })),
});

function historyAddress(value: string, field: string): string {
  const wa = /^whatsapp:/i.test(value);
  const bare = value.replace(/^whatsapp:/i, "");
  if (field === "from" && !wa && /^[A-Za-z0-9 ]{1,11}$/.test(bare) && /[A-Za-z]/.test(bare)) return bare; // alphanumeric sender id
  try {
    const e164 = normalizePhoneNumber(bare);
    return wa ? `whatsapp:${e164}` : e164;
  } catch (error) {
    throw new ApiError("invalid_request", `${field}: ${(error as Error).message}`, { field });
  }
}

async function history(ctx: AdapterContext, query: Record<string, unknown>): Promise<ReadResult> {
  const account = accountOf(ctx);
  const parsed = twilioHistoryQuerySchema.safeParse(query ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join(".") || "query";
    throw new ApiError("invalid_request", `Invalid history query: ${field} ${issue.message}`, { field });
  }
  const q = parsed.data;
  const search = new URLSearchParams();
  if (q.to) search.set("To", historyAddress(q.to, "to"));
  if (q.from) search.set("From", historyAddress(q.from, "from"));
  if (q.date_sent) search.set("DateSent", q.date_sent);
  if (q.date_sent_before) search.set("DateSent<", q.date_sent_before);
  if (q.date_sent_after) search.set("DateSent>", q.date_sent_after);
  search.set("PageSize", String(q.page_size ?? 50));
  if (q.page !== undefined) search.set("Page", String(q.page));
  if (q.page_token) search.set("PageToken", q.page_token);
  try {
    const page = await call(account, "GET", `${accountPath(account, "/Messages.json")}?${search}`, ctx.options);
    const list = Array.isArray(page.messages) ? page.messages : [];
    const data: Json = {
      messages: list.map((m) => messageRecord(asObject(m))),
      page: toNumber(page.page),
      page_size: toNumber(page.page_size),
      next_page: nextPage(page.next_page_uri),
    };
    return { data: scrubDeep(data, account.secrets) as Json };
  } catch (error) {
    throw scrubError(error, account.secrets);
  }
}

/** A Message resource without its account SID and URIs. */
function messageRecord(m: Json): Json {
  const status = typeof m.status === "string" ? m.status : null;
  return {
    sid: m.sid ?? null,
    direction: m.direction ?? null,
    from: m.from ?? null,
    to: m.to ?? null,
    body: m.body ?? null,
    status,
    delivery_status: status ? mapDeliveryStatus(status) : null,
    num_segments: m.num_segments === undefined || m.num_segments === null ? null : toNumber(m.num_segments),
    num_media: m.num_media === undefined || m.num_media === null ? null : toNumber(m.num_media),
    price: m.price ?? null,
    price_unit: m.price_unit ?? null,
    error_code: m.error_code ?? null,
    error_message: m.error_message ?? null,
    messaging_service_sid: m.messaging_service_sid ?? null,
    date_created: isoDate(m.date_created),
    date_sent: isoDate(m.date_sent),
    date_updated: isoDate(m.date_updated),
  };
}

/** {page, page_token} of the next page, from Twilio's relative next_page_uri. */
function nextPage(uri: unknown): Json | null {
  if (typeof uri !== "string" || uri === "") return null;
  const params = new URL(uri, "https://api.twilio.com").searchParams;
  const page = Number(params.get("Page"));
  const token = params.get("PageToken");
  if (!token || !Number.isFinite(page)) return null;
  return { page, page_token: token };
}

async function listNumbers(ctx: AdapterContext): Promise<ProviderNumber[]> {
  const account = accountOf(ctx);
  const firstPath = accountPath(account, "/IncomingPhoneNumbers.json");
  const numbers: ProviderNumber[] = [];
  let path: string | null = `${firstPath}?PageSize=${NUMBERS_PAGE_SIZE}`;
  try {
    for (let pages = 0; path !== null; pages++) {
      if (pages >= TWILIO_MAX_NUMBER_PAGES) {
        // A partial list would make number sync drop numbers the account still holds.
        throw new ProviderError(
          "too_large",
          `The Twilio account has more numbers than ${TWILIO_MAX_NUMBER_PAGES} pages hold; nothing was synced.`,
          { provider: "twilio", pages },
        );
      }
      const page: Json = await call(account, "GET", path, ctx.options);
      const items = page.incoming_phone_numbers;
      if (!Array.isArray(items)) {
        throw new ProviderError("unavailable", "Twilio answered the numbers request without a list of numbers.", { provider: "twilio" });
      }
      for (const raw of items) {
        const n = providerNumber(asObject(raw));
        if (n) numbers.push(n);
      }
      path = nextNumbersPath(page.next_page_uri, firstPath);
    }
  } catch (error) {
    throw scrubError(error, account.secrets);
  }
  return numbers;
}

/** The next page's path, only if it is the same list of the same account (never another host). */
function nextNumbersPath(uri: unknown, firstPath: string): string | null {
  if (uri === null || uri === undefined || uri === "") return null;
  if (typeof uri !== "string") {
    throw new ProviderError("unavailable", "Twilio answered with an unreadable next_page_uri.", { provider: "twilio" });
  }
  const relative = uri.replace(/^https?:\/\/[^/?#]+/i, "");
  if (!relative.startsWith(`${firstPath}?`) || /[\s#]/.test(relative)) {
    throw new ProviderError("unavailable", "Twilio answered with a next_page_uri outside the numbers list; paging stopped.", {
      provider: "twilio",
    });
  }
  return relative;
}

function providerNumber(item: Json): ProviderNumber | null {
  const phone = typeof item.phone_number === "string" ? item.phone_number : "";
  if (!phone) return null;
  const caps = asObject(item.capabilities);
  const flag = (name: string) => caps[name] === true || caps[name.toUpperCase()] === true || caps[name] === "true";
  return {
    phone_number: phone,
    friendly_name: typeof item.friendly_name === "string" ? item.friendly_name : null,
    capabilities: { sms: flag("sms"), mms: flag("mms"), voice: flag("voice"), whatsapp: flag("whatsapp") || item.whatsapp === true },
    provider_number_id: typeof item.sid === "string" ? item.sid : null,
  };
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/**
 * Checks X-Twilio-Signature the way Twilio's own validator does: over the URL as
 * received, without its port and with the scheme's default port; with `webhook_url`
 * configured, also over that public base plus the request's path and query. Form bodies
 * are signed with their sorted parameters; a URL carrying bodySHA256 (JSON bodies) is
 * signed alone and the body must hash to it. Constant-time comparisons throughout.
 */
async function verifyWebhook(ctx: AdapterContext, request: WebhookRequest): Promise<boolean> {
  const secrets = credentialSecrets(ctx.credentials);
  let config: TwilioConfig;
  let credentials: TwilioCredentials;
  try {
    config = parseStoredConfig(twilioConfigSchema, ctx.config);
    credentials = parseTwilioCredentials(ctx.credentials);
  } catch (error) {
    throw scrubError(error, secrets);
  }
  const signature = request.headers.get(TWILIO_SIGNATURE_HEADER) ?? "";
  if (signature === "") return false;
  const received = request.url.split("#")[0];
  let parsed: URL;
  try {
    parsed = new URL(received);
  } catch {
    return false;
  }
  const encoder = new TextEncoder();
  let signedParams = "";
  const bodyHash = parsed.searchParams.get("bodySHA256");
  if (bodyHash !== null) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(request.rawBody));
    if (!timingSafeEqual(hex(new Uint8Array(digest)), bodyHash)) return false;
  } else if (/json/i.test(request.headers.get("content-type") ?? "")) {
    return false; // a JSON body without bodySHA256 is not covered by any signature
  } else if (request.method.toUpperCase() !== "GET" && request.rawBody !== "") {
    signedParams = sortedParams(request.rawBody);
  }
  const key = await crypto.subtle.importKey("raw", encoder.encode(credentials.auth_token), { name: "HMAC", hash: "SHA-1" }, false, [
    "sign",
  ]);
  for (const url of signedUrlCandidates(received, config.webhook_url)) {
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(url + signedParams));
    if (timingSafeEqual(base64(new Uint8Array(mac)), signature)) return true;
  }
  return false;
}

/** name+value of every form parameter, names sorted by code unit, a repeated name's values sorted. */
function sortedParams(rawBody: string): string {
  const byName = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(rawBody)) byName.set(name, [...(byName.get(name) ?? []), value]);
  let data = "";
  for (const name of [...byName.keys()].sort()) {
    for (const value of byName.get(name)!.sort()) data += name + value;
  }
  return data;
}

const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/i;

/** The URLs a signature may cover: as received and rebased on webhook_url, each with and without its port. */
export function signedUrlCandidates(received: string, webhookUrl?: string): string[] {
  const bases: string[] = [];
  if (webhookUrl) {
    const rebased = rebase(received, webhookUrl);
    if (rebased) bases.push(rebased);
  }
  bases.push(received);
  const out = new Set<string>();
  for (const url of bases) {
    const forms = [url];
    try {
      forms.push(new URL(url).href);
    } catch {
      // the form as received only
    }
    for (const form of forms) {
      out.add(form);
      out.add(removePort(form));
      out.add(addPort(form));
    }
  }
  return [...out];
}

/** The public URL for a request the function saw at another origin: webhook_url's origin and path, then the request's path and query. */
function rebase(received: string, webhookUrl: string): string | null {
  const request = URL_PARTS.exec(received);
  const base = URL_PARTS.exec(webhookUrl.replace(/\/+$/, ""));
  if (!request || !base) return null;
  const origin = base[1] + base[2];
  const basePath = base[3];
  const rest = request[3] === "" ? "/" : request[3];
  if (basePath === "" || rest === basePath || rest.startsWith(`${basePath}/`) || rest.startsWith(`${basePath}?`)) return origin + rest;
  return origin + basePath + rest;
}

function splitAuthority(url: string) {
  const match = URL_PARTS.exec(url);
  if (!match) return null;
  const authority = match[2];
  const at = authority.lastIndexOf("@");
  const hostPort = authority.slice(at + 1);
  const colon = hostPort.indexOf(":", hostPort.lastIndexOf("]") + 1);
  return {
    scheme: match[1],
    userInfo: authority.slice(0, at + 1),
    host: colon < 0 ? hostPort : hostPort.slice(0, colon),
    port: colon < 0 ? "" : hostPort.slice(colon),
    rest: match[3],
  };
}

function removePort(url: string): string {
  const p = splitAuthority(url);
  return p ? p.scheme + p.userInfo + p.host + p.rest : url;
}

function addPort(url: string): string {
  const p = splitAuthority(url);
  if (!p || p.port) return url;
  return p.scheme + p.userInfo + p.host + (p.scheme.toLowerCase() === "https://" ? ":443" : ":80") + p.rest;
}

/** The webhook's parameters: a JSON object, a form body, or (GET) the query string. */
function webhookParams(request: WebhookRequest): Record<string, string> {
  let url: URL | undefined;
  try {
    url = new URL(request.url);
  } catch {
    url = undefined;
  }
  const type = request.headers.get("content-type") ?? "";
  const body = request.rawBody.trim();
  if (/json/i.test(type) || url?.searchParams.has("bodySHA256") || (body.startsWith("{") && !/form/i.test(type))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new ApiError("invalid_request", "The Twilio webhook body is not valid JSON.");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ApiError("invalid_request", "The Twilio webhook JSON must be an object.");
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (v === null || v === undefined) continue;
      out[k] = typeof v === "object" ? JSON.stringify(v) : String(v);
    }
    return out;
  }
  const source = body !== "" ? new URLSearchParams(body) : url?.searchParams ?? new URLSearchParams();
  const out: Record<string, string> = {};
  for (const [k, v] of source) if (!(k in out)) out[k] = v;
  return out;
}

/** Twilio's status words this adapter knows; the ones mapping to null are not recorded. */
const STATUS_MAP: Record<string, DeliveryStatus | null> = {
  accepted: "queued",
  scheduled: "queued",
  queued: "queued",
  sending: "queued",
  sent: "sent",
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
  canceled: "failed",
  read: "read",
  receiving: null,
  received: null,
  partially_delivered: null,
};

export function mapDeliveryStatus(providerStatus: string): DeliveryStatus | null {
  return STATUS_MAP[providerStatus.trim().toLowerCase()] ?? null;
}

/** E.164 when the address is a phone number (whatsapp: prefix dropped), else as Twilio wrote it (short code, sender id). */
function bareAddress(value: string): string {
  const bare = value.trim().replace(/^whatsapp:/i, "");
  try {
    return normalizePhoneNumber(bare);
  } catch {
    return bare;
  }
}

function parseWebhook(request: WebhookRequest): WebhookEvent[] {
  const p = webhookParams(request);
  const pick = (...names: string[]) => {
    for (const name of names) if (typeof p[name] === "string" && p[name] !== "") return p[name];
    return undefined;
  };
  const sid = pick("MessageSid", "SmsMessageSid", "SmsSid");
  const messageStatus = pick("MessageStatus");
  const smsStatus = pick("SmsStatus");
  const from = pick("From");
  const to = pick("To");
  if (!sid || !/^[A-Z]{2}[0-9a-fA-F]{32}$/.test(sid)) {
    throw new ApiError("invalid_request", "The Twilio webhook has no valid MessageSid.");
  }
  // Inbound: SmsStatus (or MessageStatus) "received", or a Body with no status at all.
  const inbound = (messageStatus ?? smsStatus)?.toLowerCase() === "received" ||
    (messageStatus === undefined && smsStatus === undefined && p.Body !== undefined);
  if (inbound) {
    if (!from || !to) throw new ApiError("invalid_request", "The Twilio inbound webhook has no From or To.");
    const whatsapp = /^whatsapp:/i.test(from) || /^whatsapp:/i.test(to);
    const count = Math.min(MAX_INBOUND_MEDIA, Math.max(0, Math.floor(toNumber(p.NumMedia))));
    const media: string[] = [];
    for (let i = 0; i < (p.NumMedia === undefined ? MAX_INBOUND_MEDIA : count); i++) {
      const url = p[`MediaUrl${i}`];
      if (typeof url !== "string" || url === "") {
        if (p.NumMedia === undefined) break;
        continue;
      }
      media.push(url);
    }
    const event: InboundEvent = {
      kind: "inbound",
      provider_message_id: sid,
      channel: whatsapp ? "whatsapp" : media.length > 0 ? "mms" : "sms",
      from: bareAddress(from),
      to: bareAddress(to),
      body: p.Body ?? "",
      media_urls: media,
      occurred_at: null,
      // The signed MessageSid, not the (unsigned) idempotency header: a replayed request
      // with a fresh header must not become a second message.
      dedupe_key: sid,
    };
    return [event];
  }
  const providerStatus = messageStatus ?? smsStatus;
  const word = providerStatus?.toLowerCase();
  if (providerStatus === undefined || word === undefined) throw new ApiError("invalid_request", "The Twilio webhook is neither a status callback nor an inbound message.");
  if (!(word in STATUS_MAP)) {
    throw new ApiError("invalid_request", `Unknown Twilio message status ${JSON.stringify(word.slice(0, 40))}.`);
  }
  const status = STATUS_MAP[word];
  if (status === null) return []; // a status we do not record (receiving, received, partially_delivered)
  const channel: Channel | undefined = /^whatsapp:/i.test(to ?? "") || p.ChannelPrefix === "whatsapp" ? "whatsapp" : undefined;
  const event: DeliveryEvent = {
    kind: "status",
    provider_message_id: sid,
    status,
    provider_status: providerStatus,
    error_code: pick("ErrorCode") ?? null,
    recipient: to ? bareAddress(to) : null,
    occurred_at: null,
    // One event per message and status at Twilio; its retries and redeliveries carry the same pair.
    dedupe_key: `${sid}:${word}`,
  };
  if (channel) event.channel = channel;
  return [event];
}

function webhookReply(events: WebhookEvent[]): { status: number; contentType: string; body: string } {
  if (events.some((e) => e.kind === "inbound")) {
    return { status: 200, contentType: "text/xml; charset=utf-8", body: TWILIO_EMPTY_TWIML };
  }
  return { status: 200, contentType: "text/plain; charset=utf-8", body: "" };
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const twilioAdapter: MessagingAdapter = {
  provider: "twilio",
  send,
  testCredentials,
  balance,
  history,
  listNumbers,
  verifyWebhook,
  parseWebhook,
  mapDeliveryStatus,
  webhookReply,
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

function stringOr(value: unknown, fallback: string): string {
  return typeof value === "string" && value !== "" ? value : fallback;
}

/** RFC 2822 (Twilio's dates) → ISO 8601; null when absent or unreadable. */
function isoDate(value: unknown): string | null {
  if (typeof value !== "string" || value === "") return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  // The expected length is fixed by the algorithm and not secret.
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function scrubText(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join("[redacted]");
  return out;
}

/** Replaces credential values anywhere in a value (defence in depth for caller-facing data). */
function scrubDeep(value: unknown, secrets: string[]): unknown {
  if (typeof value === "string") return scrubText(value, secrets);
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets));
  if (!value || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v, secrets);
  return out;
}

/** The same error with every credential value taken out of its message and details. */
function scrubError(error: unknown, secrets: string[]): unknown {
  if (secrets.length === 0) return error;
  if (error instanceof ProviderError) {
    const message = scrubText(error.message, secrets);
    const details = scrubDeep(error.details, secrets) as ProviderError["details"];
    if (message === error.message && JSON.stringify(details) === JSON.stringify(error.details)) return error;
    return new ProviderError(error.kind, message, details, error.maybeSent);
  }
  if (error instanceof ApiError) {
    const message = scrubText(error.message, secrets);
    const details = scrubDeep(error.details, secrets);
    if (message === error.message && JSON.stringify(details) === JSON.stringify(error.details)) return error;
    return new ApiError(error.code, message, details, error.status);
  }
  return error;
}
