/**
 * Exotel adapter (SMS, WhatsApp, click-to-call, ExoPhones) on the one provider interface
 * (./adapter.ts); every request goes through the shared transport (./transport.ts).
 *
 * Wire facts this relies on (Exotel's classic API docs, developer.exotel.com/api/…):
 *  - An account lives in one cluster: Singapore (https://api.exotel.com, region "sg") or
 *    Mumbai (https://api.in.exotel.com, region "in"); the other cluster answers its
 *    credentials with 401, so a 401 names the region as a likely cause.
 *  - HTTP Basic auth with API key : API token; the account SID is in the path.
 *  - v1 (SMS, calls, balance) takes form-encoded input; we always call the `.json` form,
 *    whose errors are {"RestException": {Status, Message, Code?}}. v2 (WhatsApp) and
 *    v2_beta (ExoPhones) are JSON. No idempotency key anywhere: `CustomField` /
 *    `custom_data` (our operation id) are echo fields only.
 *  - Exotel's advice is to branch on the HTTP status, not the message. Codes used here:
 *    403/40001 insufficient balance → insufficient_funds (a 402 from WhatsApp too);
 *    403/40002 inactive → forbidden; 429/40402 → rate_limited. Every other status is the
 *    transport's `classify`: 4xx not sent, 408/5xx/timeouts/resets "may have been sent".
 *    Exotel documents 503/40405 "throttled" only as a 5xx ("5xx and timeouts are unknown"),
 *    so a throttled send stays maybe-sent and is never failed over (the transport lets an
 *    adapter refine only <500 answers, and Exotel gives no ground to do more).
 *
 * Decisions:
 *  - SMS to one number: POST /v1/Accounts/{sid}/Sms/send.json. To several: the classic
 *    dynamic-bulk form POST …/Sms/bulksend.json, ≤100 messages a request, every field
 *    written into each `Messages[i][…]` item (top-level defaults are not documented),
 *    requests one after another (Exotel allows 200 POSTs a minute; a request per number
 *    would use that up). Exotel does not pin down bulksend's answer, so it is read
 *    tolerantly (SMSMessages / SMSMessage list, matched by position, else by To); a
 *    number the answer does not account for is "UNCONFIRMED" and counted as maybe sent.
 *  - A validation refusal (HTTP 400/422) refuses that request's numbers, not the account:
 *    they become failed recipients and the next request still goes. Any other failure
 *    stops the send: thrown when nothing has gone out, otherwise reported in `data`
 *    (`incomplete`, `maybe_sent_count`; recipients "MAYBE_SENT" / "NOT_SENT").
 *  - WhatsApp: POST /v2/accounts/{sid}/messages with the classic {whatsapp:{messages:[…]}}
 *    wrapper, ≤100 messages a request; the 202 answer's per-message codes are
 *    per-recipient results (a failure, e.g. outside Meta's 24 h window, is a failed
 *    recipient). Text, a template (variables "1", "2"… positional, other names as named
 *    parameters), or one media file (its body as the caption).
 *  - Click-to-call: POST …/Calls/connect.json (Exotel rings From, then To), CallType
 *    "trans", the classic terminal callback (no StatusCallbackEvents). A refusal is thrown.
 *  - ExoPhones: GET /v2_beta/Accounts/{sid}/IncomingPhoneNumbers, 100 a page, at most 20
 *    pages; a longer list is refused (too_large) rather than returned cut short, since
 *    number sync would take missing numbers as released. Exotel lists WhatsApp numbers
 *    nowhere: only the configured `whatsapp_from` is marked whatsapp-capable. Indian
 *    numbers in national form ("0XXXXXXXXXX") are read as +91.
 *  - Balance: GET /v1/Accounts/{sid}/Balance.json is in Exotel's newer docs only; a 404 is
 *    a not_found saying the account has no balance endpoint.
 *  - testCredentials: the first ExoPhone page (read-only, needs valid credentials).
 *  - No verifyWebhook: Exotel signs no callback (SMS, call or WhatsApp). The webhook URL's
 *    per-connection secret token authenticates the request; the database ignores ids it
 *    did not issue.
 *
 * Statuses (mapDeliveryStatus; SMS provider_status is "Status/DetailedStatusCode"):
 *  - SMS queued / sending / submitted → queued. "sent" means delivered to the handset
 *    (DateSent is the delivery time) → delivered, except 20006 DELIVERED_TO_OPERATOR → sent.
 *  - failed_dnd (or failed-dnd), DLT rejections (23080-23084), invalid number, spam,
 *    blacklist, sender, operator and platform rejections never left → failed; handset
 *    failures after an attempt (23035 subscriber unavailable, 23040 unknown, 23050
 *    expired) → undelivered; a bare "failed" → failed.
 *  - Calls: queued/ringing → queued, in-progress → sent, completed → delivered,
 *    busy/no-answer → undelivered, failed/canceled → failed.
 *  - WhatsApp exo_status_code: 30001 → sent, 30002 → delivered, 30003 → read,
 *    30004-30099 → failed.
 *  - Exotel's callback dates ("YYYY-MM-DD HH:mm:ss") carry no zone: read as IST (+05:30),
 *    the account-local time of Exotel's Indian accounts.
 *
 * Credentials never leave this module: not in errors (provider messages are scrubbed of
 * them), not in data. Knows nothing about Supabase; runs unchanged in Deno and Node.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { guardUrl } from "../net/guard.ts";
import type {
  AdapterContext,
  CallRequest,
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
import { countSmsSegments } from "./sms-segments.ts";
import {
  basicAuth,
  type ErrorDescription,
  providerFetch,
  type ProviderEndpoint,
  type ProviderRequest,
  type ProviderResponse,
} from "./transport.ts";
import {
  type CallOptions,
  ProviderError,
  type ReadResult,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

export type ExotelRegion = "sg" | "in";

/** The API host of each cluster. */
export const EXOTEL_BASE_URLS: Readonly<Record<ExotelRegion, string>> = {
  sg: "https://api.exotel.com",
  in: "https://api.in.exotel.com",
};
/** The official hosts: any other base_url needs a deployment that allows custom provider hosts. */
export const EXOTEL_OFFICIAL_BASE_URLS: readonly string[] = [EXOTEL_BASE_URLS.sg, EXOTEL_BASE_URLS.in];
/** Messages per SMS bulksend or WhatsApp request (Exotel's limit). */
export const EXOTEL_MAX_MESSAGES_PER_REQUEST = 100;
/** ExoPhone pages read at most by listNumbers. */
export const EXOTEL_MAX_NUMBER_PAGES = 20;
export const EXOTEL_NUMBERS_PAGE_SIZE = 100;
const MAX_SMS_CHARS = 2000;
const MAX_WHATSAPP_TEXT = 4096;
const MAX_CALL_SECONDS = 14_400;
const MAX_WEBHOOK_EVENTS = 1000;

/** An SMS sender: an ExoPhone (digits, optionally +) or a sender id / DLT header (3-11 letters and digits). */
const SENDER = /^(\+?[0-9]{3,15}|[A-Za-z0-9]{3,11})$/;
const senderField = z.string().trim().regex(SENDER, {
  message: "must be an ExoPhone number or a sender id of 3-11 letters/digits without spaces",
});
const dltIdField = z.string().trim().regex(/^[0-9]{1,30}$/, { message: "must be the DLT id's digits" });
/** A phone number in international form, stored as E.164. */
const phoneField = z.string().max(40).transform((value, ctx) => {
  try {
    return normalizePhoneNumber(value);
  } catch (error) {
    ctx.issues.push({ code: "custom", message: (error as Error).message, input: value });
    return z.NEVER;
  }
});

/** The stored credentials (Exotel's dashboard, API settings). */
export const exotelCredentialsSchema = z.object({
  api_key: z.string().trim().min(1).max(500),
  api_token: z.string().trim().min(1).max(500),
});

/** The stored connection config; unknown keys are ignored. */
export const exotelConfigSchema = z.object({
  /** The account SID (in every API path). */
  account_sid: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    message: "must be the Exotel account SID (letters, digits, - and _)",
  }),
  /** The cluster the account lives in: "sg" (api.exotel.com, default) or "in" (api.in.exotel.com). */
  region: optional(z.enum(["sg", "in"])).transform((region): ExotelRegion => region ?? "sg"),
  /** Overrides the region's host; another host only where the policy allows custom provider hosts. */
  base_url: optional(baseUrlField),
  /** Default SMS sender: an ExoPhone or a sender id linked to one. */
  sender_id: optional(senderField),
  /** India DLT principal entity id, sent as DltEntityId (mandatory for SMS to Indian numbers). */
  dlt_entity_id: optional(dltIdField),
  /** India DLT template id, sent as DltTemplateId. */
  dlt_template_id: optional(dltIdField),
  /** Default WhatsApp Business number to send from (E.164). */
  whatsapp_from: optional(phoneField),
  /** Default ExoPhone shown to both parties of a click-to-call (E.164). */
  caller_id: optional(phoneField),
});

export type ExotelConfig = z.output<typeof exotelConfigSchema>;
export type ExotelCredentials = z.output<typeof exotelCredentialsSchema>;

type Json = Record<string, unknown>;

/** A parsed, policy-checked connection: what every call below works from. */
interface Account {
  config: ExotelConfig;
  baseUrl: string;
  authorization: string;
  endpoint: ProviderEndpoint;
  /** Values to scrub from anything the provider says back. */
  secrets: string[];
}

function account(ctx: AdapterContext): Account {
  const config = parseStoredConfig(exotelConfigSchema, ctx.config);
  const parsed = exotelCredentialsSchema.safeParse(ctx.credentials ?? {});
  if (!parsed.success) {
    throw new ProviderError("auth", "Exotel credentials are incomplete (api_key and api_token are required).", {
      provider: "exotel",
    });
  }
  const { api_key, api_token } = parsed.data;
  assertHeaderSafeCredentials({ api_key, api_token });
  const authorization = basicAuth(api_key, api_token);
  return {
    config,
    baseUrl: providerBaseUrl(config.base_url ?? EXOTEL_BASE_URLS[config.region], EXOTEL_OFFICIAL_BASE_URLS, ctx.network),
    authorization,
    endpoint: { provider: "exotel", displayName: "Exotel", network: ctx.network },
    secrets: [api_key, api_token, authorization.slice("Basic ".length)],
  };
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

interface ExotelRequest {
  method: ProviderRequest["method"];
  path: string;
  query?: Record<string, string>;
  form?: URLSearchParams;
  json?: unknown;
  acts: boolean;
}

function exotelFetch(acct: Account, request: ExotelRequest, options: CallOptions = {}): Promise<ProviderResponse> {
  const url = new URL(`${acct.baseUrl}${request.path}`);
  for (const [k, v] of Object.entries(request.query ?? {})) url.searchParams.set(k, v);
  const headers: Record<string, string> = { Authorization: acct.authorization };
  let body: string | URLSearchParams | undefined;
  if (request.form) body = request.form; // fetch sets application/x-www-form-urlencoded;charset=UTF-8
  if (request.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(request.json);
  }
  return providerFetch(acct.endpoint, { method: request.method, url, headers, body, acts: request.acts }, (r) => describe(acct, r), options);
}

const sidPath = (acct: Account) => `/v1/Accounts/${encodeURIComponent(acct.config.account_sid)}`;

/** What an Exotel error body says: v1 RestException (JSON, or XML from a proxy path) or the v2 envelope. */
function describe(acct: Account, response: ProviderResponse): ErrorDescription {
  const body = asObject(response.json);
  const rest = asObject(body.RestException);
  const v2 = asObject(asObject(body.response).error_data);
  const xml = (tag: string) => new RegExp(`<${tag}>([^<]{1,500})</${tag}>`).exec(response.text)?.[1];
  const code = text(rest.Code) ?? text(v2.code) ?? xml("Code");
  const rawMessage = text(rest.Message) ?? text(v2.description) ?? text(v2.message) ?? xml("Message");
  const message = rawMessage === undefined ? undefined : scrub(acct, rawMessage);
  const said: ErrorDescription = { ...(code !== undefined ? { code } : {}), ...(message !== undefined ? { message } : {}) };
  if (response.status === 403 && (code === "40001" || (code === undefined && /balance|credit/i.test(message ?? "")))) {
    said.kind = "insufficient_funds";
  }
  if (response.status === 401) {
    said.details = {
      region: acct.config.region,
      hint: "An Exotel account lives in one cluster (sg: api.exotel.com, in: api.in.exotel.com) and the other answers " +
        "its credentials with 401: check the API key and token, the account SID and the connection's region.",
    };
  }
  return said;
}

/** Removes the credentials from a provider's text (defence in depth: Exotel echoes input in messages). */
function scrub(acct: Account, value: string): string {
  let out = value;
  for (const secret of acct.secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  return out;
}

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

/** One provider request of a send and the recipients it carries. */
interface Batch {
  recipients: string[];
  request: ExotelRequest;
  /** Per-recipient results of a 2xx answer, in `recipients` order. */
  read(response: ProviderResponse): RecipientResult[];
}

/**
 * Runs a send's requests one after another. A validation refusal (400/422) fails that
 * request's recipients and the send goes on; any other failure stops it: thrown when
 * nothing can have gone out yet, otherwise reported in the result.
 */
async function sendBatches(acct: Account, channel: "sms" | "whatsapp", batches: Batch[], options: CallOptions): Promise<SendResult> {
  const recipients: RecipientResult[] = [];
  const refused: Json[] = [];
  let incomplete: Json | undefined;
  let maybeSent = 0;
  let requests = 0;
  const wentOut = () => recipients.some((r) => r.ok || r.status === "UNCONFIRMED");

  for (let index = 0; index < batches.length; index++) {
    const batch = batches[index];
    requests++;
    try {
      const response = await exotelFetch(acct, batch.request, options);
      recipients.push(...batch.read(response));
      continue;
    } catch (error) {
      if (error instanceof ProviderError && error.kind === "invalid" && !error.maybeSent) {
        refused.push({ request_index: index, status: error.details.status, provider_code: error.details.provider_code, message: error.message });
        for (const to of batch.recipients) recipients.push({ to, ok: false, status: "REJECTED", error: error.message });
        continue;
      }
      if (!wentOut()) throw error; // nothing can have been sent: the error as it was raised
      const e = error instanceof ProviderError
        ? error
        : new ProviderError("unavailable", "Unexpected error calling Exotel.", { provider: "exotel" });
      incomplete = { request_index: index, kind: e.kind, message: e.message, maybe_sent: e.maybeSent };
      const status = e.maybeSent ? "MAYBE_SENT" : "NOT_SENT";
      const reason = `${e.maybeSent ? "May have been sent; do not resend" : "Not sent"}: ${e.message}`;
      for (const to of batch.recipients) recipients.push({ to, ok: false, status, error: reason });
      if (e.maybeSent) maybeSent += batch.recipients.length;
      for (const rest of batches.slice(index + 1)) {
        for (const to of rest.recipients) {
          recipients.push({ to, ok: false, status: "NOT_SENT", error: "Not sent: an earlier request in this send failed." });
        }
      }
      break;
    }
  }

  const unconfirmed = recipients.filter((r) => r.status === "UNCONFIRMED").length;
  const providerMessageIds = recipients.filter((r) => r.ok && r.message_id).map((r) => r.message_id!);
  const sentCount = recipients.filter((r) => r.ok).length;
  const data: Json = {
    channel,
    sent_count: sentCount,
    failed_count: recipients.length - sentCount,
    requests,
  };
  if (refused.length) data.refused = refused;
  if (unconfirmed) data.unconfirmed_count = unconfirmed;
  if (incomplete) data.incomplete = incomplete;
  if (incomplete || unconfirmed) data.maybe_sent_count = maybeSent + unconfirmed;
  return { sentCount, providerMessageIds, recipients, data };
}

function chunk<T>(items: T[], size = EXOTEL_MAX_MESSAGES_PER_REQUEST): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Our E.164 recipients (already normalised by the caller; checked again, never guessed). */
function recipientsOf(to: string[]): string[] {
  if (!Array.isArray(to) || to.length === 0) throw new ApiError("invalid_request", "At least one recipient is required.", { field: "to" });
  return to.map((number) => e164(number, "to"));
}

function e164(value: string, field: string): string {
  try {
    return normalizePhoneNumber(String(value));
  } catch (error) {
    throw new ApiError("invalid_request", `${field}: ${(error as Error).message}`, { field });
  }
}

// --- SMS ---------------------------------------------------------------------

function sendSms(acct: Account, message: OutboundMessage, options: CallOptions): Promise<SendResult> {
  if (message.channel === "mms" || message.mediaUrls?.length) {
    throw new ApiError("invalid_request", "Exotel sends text-only SMS: it has no MMS.", { field: "media_urls" });
  }
  const body = message.body ?? "";
  if (!body.trim()) throw new ApiError("invalid_request", "The SMS body is empty.", { field: "body" });
  if (Array.from(body).length > MAX_SMS_CHARS) {
    throw new ApiError("invalid_request", `Exotel accepts SMS bodies of up to ${MAX_SMS_CHARS} characters.`, { field: "body" });
  }
  const from = (message.from ?? acct.config.sender_id ?? "").trim();
  if (!from) {
    throw new ApiError("invalid_request", "Exotel needs a sender: set sender_id on the connection or send from one of its numbers.", {
      field: "from",
    });
  }
  if (!SENDER.test(from)) {
    throw new ApiError("invalid_request", "from must be an ExoPhone number or a sender id of 3-11 letters/digits.", { field: "from" });
  }
  const to = recipientsOf(message.to);
  const fields: Array<[string, string]> = [["From", from], ["Body", body], ["CustomField", message.operationId]];
  if (message.statusCallbackUrl) fields.push(["StatusCallback", message.statusCallbackUrl]);
  if (acct.config.dlt_entity_id) fields.push(["DltEntityId", acct.config.dlt_entity_id]);
  if (acct.config.dlt_template_id) fields.push(["DltTemplateId", acct.config.dlt_template_id]);
  const segments = countSmsSegments(body).segments;

  const batches: Batch[] = to.length === 1
    ? [{
      recipients: to,
      request: { method: "POST", path: `${sidPath(acct)}/Sms/send.json`, form: new URLSearchParams([["To", to[0]], ...fields]), acts: true },
      read: (response) => readSms(response, to, segments),
    }]
    : chunk(to).map((numbers) => {
      const form = new URLSearchParams();
      numbers.forEach((number, i) => {
        form.append(`Messages[${i}][To]`, number);
        for (const [k, v] of fields) form.append(`Messages[${i}][${k}]`, v);
      });
      return {
        recipients: numbers,
        request: { method: "POST", path: `${sidPath(acct)}/Sms/bulksend.json`, form, acts: true },
        read: (response: ProviderResponse) => readSms(response, numbers, segments),
      };
    });
  return sendBatches(acct, "sms", batches, options);
}

/** Per-recipient results of an accepted SMS request (send: {SMSMessage}, bulksend: a list; shape read tolerantly). */
function readSms(response: ProviderResponse, numbers: string[], segments: number): RecipientResult[] {
  const body = asObject(response.json);
  const list = [body.SMSMessages, body.SMSMessage, body.Messages].find((v) => v !== undefined);
  const entries = (Array.isArray(list) ? list : list && typeof list === "object" ? [list] : []).map(asObject);
  return pairEntries(entries, numbers, (entry) => text(entry.To)).map(([to, entry]) => {
    if (!entry) {
      return { to, ok: false, status: "UNCONFIRMED", error: "Exotel accepted the request but its answer does not account for this number: it may have been sent." };
    }
    const rest = asObject(entry.RestException);
    const sid = text(entry.Sid);
    if (sid && entry.RestException === undefined) {
      return { to, ok: true, status: text(entry.Status) ?? "queued", message_id: sid, segments: toNumber(entry.SmsUnits) || segments };
    }
    if (entry.RestException !== undefined || /fail/i.test(text(entry.Status) ?? "")) {
      const code = text(rest.Code);
      return {
        to,
        ok: false,
        status: text(entry.Status) ?? "failed",
        error: `Exotel rejected this message${code ? ` (${code})` : ""}: ${text(rest.Message) ?? "no reason given"}`,
      };
    }
    return { to, ok: false, status: "UNCONFIRMED", error: "Exotel's answer for this number has no message id: it may have been sent." };
  });
}

/** Pairs answer entries with our recipients: by position when the counts match, else by number. */
function pairEntries(entries: Json[], numbers: string[], numberOf: (entry: Json) => string | undefined): Array<[string, Json | undefined]> {
  if (entries.length === numbers.length) return numbers.map((to, i) => [to, entries[i]]);
  const unused = new Set(entries.map((_, i) => i));
  return numbers.map((to) => {
    for (const i of unused) {
      if (sameNumber(numberOf(entries[i]), to)) {
        unused.delete(i);
        return [to, entries[i]];
      }
    }
    return [to, undefined];
  });
}

/** True when an answer's To (as Exotel wrote it: E.164, digits, or Indian national form) is our number. */
function sameNumber(written: string | undefined, e164Number: string): boolean {
  if (!written) return false;
  const digits = written.replace(/[^\d]/g, "");
  const ours = e164Number.slice(1);
  return digits === ours || (/^0\d{10}$/.test(digits) && `91${digits.slice(1)}` === ours) ||
    (digits.length === 10 && `91${digits}` === ours);
}

// --- WhatsApp ----------------------------------------------------------------

async function sendWhatsApp(acct: Account, message: OutboundMessage, network: AdapterContext["network"], options: CallOptions): Promise<SendResult> {
  const fromRaw = message.from ?? acct.config.whatsapp_from;
  if (!fromRaw) {
    throw new ApiError("invalid_request", "Exotel WhatsApp needs a sender: set whatsapp_from on the connection or send from its WhatsApp number.", {
      field: "from",
    });
  }
  const from = e164(fromRaw, "from");
  const content = await whatsappContent(message, network);
  const to = recipientsOf(message.to);
  const batches: Batch[] = chunk(to).map((numbers) => ({
    recipients: numbers,
    request: {
      method: "POST",
      path: `/v2/accounts/${encodeURIComponent(acct.config.account_sid)}/messages`,
      json: {
        whatsapp: {
          messages: numbers.map((number) => ({
            from,
            to: number,
            content,
            custom_data: message.operationId,
            ...(message.statusCallbackUrl ? { status_callback: message.statusCallbackUrl } : {}),
          })),
        },
      },
      acts: true,
    },
    read: (response: ProviderResponse) => readWhatsApp(response, numbers),
  }));
  return sendBatches(acct, "whatsapp", batches, options);
}

async function whatsappContent(message: OutboundMessage, network: AdapterContext["network"]): Promise<Json> {
  const media = message.mediaUrls ?? [];
  if (message.template) {
    if (media.length) throw new ApiError("invalid_request", "Send a WhatsApp template without media_urls.", { field: "media_urls" });
    const { id, language, variables } = message.template;
    const entries = Object.entries(variables ?? {});
    const positional = entries.every(([k]) => /^\d+$/.test(k));
    const parameters = positional
      ? entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, value]) => ({ type: "text", text: value }))
      : entries.map(([name, value]) => ({ type: "text", parameter_name: name, text: value }));
    return {
      type: "template",
      template: {
        name: id,
        language: { policy: "deterministic", code: language ?? "en" },
        ...(parameters.length ? { components: [{ type: "body", parameters }] } : {}),
      },
    };
  }
  const body = message.body ?? "";
  if (body.length > MAX_WHATSAPP_TEXT) {
    throw new ApiError("invalid_request", `WhatsApp text is limited to ${MAX_WHATSAPP_TEXT} characters.`, { field: "body" });
  }
  if (media.length > 1) throw new ApiError("invalid_request", "Exotel WhatsApp carries one media file per message.", { field: "media_urls" });
  if (media.length === 1) {
    // Exotel (and WhatsApp) fetch the file: judge it like any destination the caller names.
    const url = await guardUrl(media[0], network, { field: "media_urls", source: "arguments", httpsOnly: true });
    const type = mediaType(url);
    if (type === "audio" && body.trim()) throw new ApiError("invalid_request", "A WhatsApp audio message cannot carry text.", { field: "body" });
    const file: Json = { link: url.href };
    if (body.trim() && type !== "audio") file.caption = body;
    if (type === "document") file.filename = decodeURIComponent(url.pathname.split("/").pop() || "document");
    return { type, [type]: file };
  }
  if (!body.trim()) throw new ApiError("invalid_request", "Give a body, a template or a media file.", { field: "body" });
  return { recipient_type: "individual", type: "text", text: { preview_url: false, body } };
}

function mediaType(url: URL): "image" | "video" | "audio" | "document" {
  const ext = /\.([a-z0-9]{1,5})$/i.exec(url.pathname)?.[1]?.toLowerCase() ?? "";
  if (["jpg", "jpeg", "png"].includes(ext)) return "image";
  if (["mp4", "3gp"].includes(ext)) return "video";
  if (["mp3", "ogg", "aac", "amr", "m4a", "opus"].includes(ext)) return "audio";
  return "document";
}

/** Per-recipient results of a 202: response.whatsapp.messages[], in request order. */
function readWhatsApp(response: ProviderResponse, numbers: string[]): RecipientResult[] {
  const body = asObject(response.json);
  const list = asObject(asObject(body.response).whatsapp).messages;
  const entries = (Array.isArray(list) ? list : []).map(asObject);
  return numbers.map((to, i) => {
    const entry = entries.length === numbers.length ? entries[i] : undefined;
    if (!entry) {
      return { to, ok: false, status: "UNCONFIRMED", error: "Exotel accepted the request but its answer does not account for this number: it may have been sent." };
    }
    const sid = text(asObject(entry.data).sid);
    const code = toNumber(entry.code);
    if (sid && (code === 200 || code === 202 || entry.status === "success")) return { to, ok: true, status: "accepted", message_id: sid };
    if (!sid && entry.status !== "failure" && !(code >= 400)) {
      return { to, ok: false, status: "UNCONFIRMED", error: "Exotel's answer for this number has no message id: it may have been sent." };
    }
    const err = asObject(entry.error_data);
    const errCode = text(err.code) ?? text(entry.code) ?? "failure";
    return {
      to,
      ok: false,
      status: errCode,
      error: `Exotel refused this WhatsApp message (${errCode}): ${text(err.description) ?? text(err.message) ?? "no reason given"}`,
    };
  });
}

// --- Click-to-call -----------------------------------------------------------

async function placeCall(acct: Account, call: CallRequest, options: CallOptions): Promise<SendResult> {
  const from = e164(call.from, "from");
  const to = e164(call.to, "to");
  const callerRaw = call.callerId || acct.config.caller_id;
  if (!callerRaw) {
    throw new ApiError("invalid_request", "Click-to-call needs a caller id: an ExoPhone of the account (set caller_id on the connection).", {
      field: "caller_id",
    });
  }
  const callerId = e164(callerRaw, "caller_id");
  const form = new URLSearchParams([["From", from], ["To", to], ["CallerId", callerId], ["CallType", "trans"]]);
  if (call.timeLimitSeconds !== undefined) {
    const limit = call.timeLimitSeconds;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CALL_SECONDS) {
      throw new ApiError("invalid_request", `time_limit_seconds must be a whole number from 1 to ${MAX_CALL_SECONDS}.`, {
        field: "time_limit_seconds",
      });
    }
    form.set("TimeLimit", String(limit));
  }
  if (call.statusCallbackUrl) form.set("StatusCallback", call.statusCallbackUrl);
  form.set("CustomField", call.operationId);
  const response = await exotelFetch(acct, { method: "POST", path: `${sidPath(acct)}/Calls/connect.json`, form, acts: true }, options);
  const record = asObject(asObject(response.json).Call);
  const sid = text(record.Sid);
  if (!sid) {
    throw new ProviderError(
      "permanent",
      "Exotel accepted the call but its answer has no Call.Sid: the call may have been placed; do not retry.",
      { provider: "exotel", status: response.status },
      true,
    );
  }
  const status = text(record.Status) ?? "in-progress";
  return {
    sentCount: 1,
    providerMessageIds: [sid],
    recipients: [{ to, ok: true, status, message_id: sid }],
    data: { channel: "voice", call_sid: sid, status, from, to, caller_id: callerId },
  };
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

async function testCredentials(ctx: AdapterContext): Promise<TestConnectionResult> {
  let region: ExotelRegion | undefined;
  try {
    const acct = account(ctx);
    region = acct.config.region;
    await exotelFetch(acct, {
      method: "GET",
      path: `/v2_beta/Accounts/${encodeURIComponent(acct.config.account_sid)}/IncomingPhoneNumbers`,
      query: { Page: "0", PageSize: "1" },
      acts: false,
    }, ctx.options);
    return { ok: true, message: "Exotel accepted the credentials.", details: { region } };
  } catch (error) {
    if (error instanceof ApiError) throw error; // refused config or destination: the caller's 4xx, not a test result
    const e = error instanceof ProviderError ? error : new ProviderError("unavailable", "Unexpected error calling Exotel.", { provider: "exotel" });
    const message = e.kind === "auth"
      ? `Exotel rejected the API key and token for this account${region ? ` in region "${region}"` : ""}: check them, the account SID and the region (an account answers only in its own cluster).`
      : e.kind === "forbidden"
      ? "The Exotel account is inactive or not allowed to use the API."
      : `Could not verify the credentials: ${e.message}`;
    return { ok: false, message, details: { kind: e.kind, status: e.details.status, provider_code: e.details.provider_code, region } };
  }
}

async function balance(ctx: AdapterContext): Promise<ReadResult> {
  const acct = account(ctx);
  let response: ProviderResponse;
  try {
    response = await exotelFetch(acct, { method: "GET", path: `${sidPath(acct)}/Balance.json`, acts: false }, ctx.options);
  } catch (error) {
    if (error instanceof ProviderError && error.kind === "not_found") {
      throw new ProviderError(
        "not_found",
        "Exotel has no balance endpoint for this account (Balance.json answered 404): see the balance in the Exotel dashboard.",
        { ...error.details, endpoint: "Balance.json" },
      );
    }
    throw error;
  }
  const record = asObject(asObject(response.json).Account);
  const data = asObject(record.BalanceData);
  const amount = Number(data.Balance);
  return {
    data: {
      account_sid: text(record.AccountSid) ?? acct.config.account_sid,
      balance: Number.isFinite(amount) && text(data.Balance) !== undefined ? amount : text(data.Balance) ?? null,
      currency: text(data.Currency) ?? null,
      pricing_plan: text(data.PricingPlan) ?? null,
      date_updated: text(data.DateUpdated) ?? null,
    },
  };
}

async function listNumbers(ctx: AdapterContext): Promise<ProviderNumber[]> {
  const acct = account(ctx);
  const numbers: ProviderNumber[] = [];
  const seen = new Set<string>();
  const whatsapp = acct.config.whatsapp_from;
  for (let page = 0; page < EXOTEL_MAX_NUMBER_PAGES; page++) {
    const response = await exotelFetch(acct, {
      method: "GET",
      path: `/v2_beta/Accounts/${encodeURIComponent(acct.config.account_sid)}/IncomingPhoneNumbers`,
      query: { Page: String(page), PageSize: String(EXOTEL_NUMBERS_PAGE_SIZE) },
      acts: false,
    }, ctx.options);
    const body = asObject(response.json);
    if (!Array.isArray(body.incoming_phone_numbers)) {
      throw new ProviderError("unavailable", "Exotel answered the ExoPhone list without incoming_phone_numbers.", {
        provider: "exotel",
        status: response.status,
      });
    }
    for (const raw of body.incoming_phone_numbers) {
      const item = asObject(raw);
      const phone = exoPhoneNumber(text(item.phone_number));
      if (!phone || seen.has(phone)) continue; // not expressible in E.164: not a number we can use
      seen.add(phone);
      const caps = asObject(item.capabilities);
      numbers.push({
        phone_number: phone,
        friendly_name: text(item.friendly_name) ?? null,
        capabilities: { sms: caps.sms === true, mms: false, voice: caps.voice === true, whatsapp: phone === whatsapp },
        provider_number_id: text(item.sid) ?? null,
      });
    }
    if (!text(body.next_page_uri) || body.incoming_phone_numbers.length === 0) return numbers;
  }
  throw new ProviderError(
    "too_large",
    `The Exotel account has more than ${EXOTEL_MAX_NUMBER_PAGES * EXOTEL_NUMBERS_PAGE_SIZE} ExoPhones: the list was not read to the end, so it is not returned.`,
    { provider: "exotel", pages: EXOTEL_MAX_NUMBER_PAGES },
  );
}

/** An ExoPhone as E.164: international as given, or Indian national form ("0XXXXXXXXXX") as +91. */
function exoPhoneNumber(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const attempts = [value];
  const digits = value.replace(/[\s\-().]/g, "");
  if (/^0\d{10}$/.test(digits)) attempts.push(`+91${digits.slice(1)}`);
  for (const attempt of attempts) {
    try {
      return normalizePhoneNumber(attempt);
    } catch {
      // next
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/** SMS DetailedStatusCodes of handset-side failures (attempted, not delivered); other failure codes never left. */
const HANDSET_FAILURES = new Set(["23035", "23040", "23050"]);

function mapDeliveryStatus(providerStatus: string): DeliveryStatus | null {
  const [wordRaw, codeRaw] = String(providerStatus).trim().toLowerCase().split("/", 2);
  const word = wordRaw.replace(/-/g, "_").trim();
  const code = codeRaw?.trim();
  if (/^\d+$/.test(word)) {
    const n = Number(word);
    if (n === 30001) return "sent";
    if (n === 30002) return "delivered";
    if (n === 30003) return "read";
    if (n >= 30004 && n <= 30099) return "failed";
    return null;
  }
  switch (word) {
    case "queued":
    case "sending":
    case "submitted":
    case "ringing":
      return "queued";
    case "sent":
      return code === "20006" ? "sent" : "delivered";
    case "failed_dnd":
      return "failed";
    case "failed":
      return code !== undefined && HANDSET_FAILURES.has(code) ? "undelivered" : "failed";
    case "in_progress":
      return "sent";
    case "completed":
      return "delivered";
    case "busy":
    case "no_answer":
      return "undelivered";
    case "canceled":
    case "cancelled":
      return "failed";
    default:
      return null;
  }
}

function parseWebhook(request: WebhookRequest): WebhookEvent[] {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  const raw = request.rawBody ?? "";
  const trimmed = raw.trim();
  if (type.includes("json") || (!type.includes("form") && /^[[{]/.test(trimmed))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new ApiError("invalid_request", "Exotel webhook body is not valid JSON.");
    }
    const body = asObject(parsed);
    const wa = asObject(body.whatsapp).messages;
    if (Array.isArray(wa)) return whatsappEvents(wa);
    return [fieldEvent(stringFields(body))];
  }
  let fields: Record<string, string>;
  if (type.includes("multipart/form-data")) fields = multipartFields(raw, type);
  else if (!trimmed) fields = Object.fromEntries(queryOf(request.url));
  else fields = Object.fromEntries(new URLSearchParams(trimmed));
  return [fieldEvent(fields)];
}

function queryOf(url: string): URLSearchParams {
  try {
    return new URL(url).searchParams;
  } catch {
    return new URLSearchParams();
  }
}

/** An SMS or call status callback (form, multipart or JSON fields). */
function fieldEvent(f: Record<string, string>): DeliveryEvent {
  const smsSid = f.SmsSid?.trim();
  const callSid = f.CallSid?.trim();
  if (smsSid) {
    const word = (f.Status ?? "").trim().toLowerCase().replace("failed-dnd", "failed_dnd");
    if (!word) throw new ApiError("invalid_request", "Exotel SMS callback is missing Status.");
    const code = f.DetailedStatusCode?.trim() || undefined;
    const providerStatus = code ? `${word}/${code}` : word;
    const status = mapDeliveryStatus(providerStatus);
    if (!status) throw new ApiError("invalid_request", "Exotel SMS callback has an unknown Status.");
    return {
      kind: "status",
      provider_message_id: smsSid,
      status,
      provider_status: providerStatus,
      error_code: status === "failed" || status === "undelivered" ? code ?? f.DetailedStatus ?? null : null,
      recipient: looseE164(f.To),
      occurred_at: exotelTime(f.DateSent) ?? exotelTime(f.DateUpdated),
      dedupe_key: `${smsSid}:${word}`,
      channel: "sms",
    };
  }
  if (callSid) {
    const word = (f.Status ?? "").trim().toLowerCase();
    const status = mapDeliveryStatus(word);
    if (!status) throw new ApiError("invalid_request", "Exotel call callback has a missing or unknown Status.");
    return {
      kind: "status",
      provider_message_id: callSid,
      status,
      provider_status: word,
      error_code: null,
      recipient: looseE164(f.To),
      occurred_at: exotelTime(f.DateUpdated) ?? exotelTime(f.EndTime),
      dedupe_key: `${callSid}:${word}`,
      channel: "voice",
    };
  }
  throw new ApiError("invalid_request", "Not an Exotel callback: no SmsSid, CallSid or whatsapp.messages.");
}

function whatsappEvents(list: unknown[]): WebhookEvent[] {
  if (list.length === 0) throw new ApiError("invalid_request", "Exotel WhatsApp callback has no messages.");
  if (list.length > MAX_WEBHOOK_EVENTS) throw new ApiError("invalid_request", "Too many events in one Exotel callback.");
  const events: WebhookEvent[] = [];
  for (const raw of list) {
    const item = asObject(raw);
    const sid = text(item.sid);
    if (!sid) throw new ApiError("invalid_request", "Exotel WhatsApp callback item is missing sid.");
    const kind = text(item.callback_type);
    if (kind === "dlr") {
      const code = text(item.exo_status_code);
      if (!code) throw new ApiError("invalid_request", "Exotel WhatsApp dlr is missing exo_status_code.");
      const status = mapDeliveryStatus(code);
      if (!status) continue; // not a status we record
      events.push({
        kind: "status",
        provider_message_id: sid,
        status,
        provider_status: code,
        error_code: status === "failed" ? code : null,
        recipient: looseE164(text(item.to)),
        occurred_at: exotelTime(text(item.timestamp)),
        dedupe_key: `${sid}:${code}`,
        channel: "whatsapp",
      });
    } else if (kind === "icm") {
      const from = looseE164(text(item.from));
      const to = looseE164(text(item.to));
      if (!from || !to) throw new ApiError("invalid_request", "Exotel WhatsApp inbound message is missing from or to.");
      const { body, media } = inboundContent(asObject(item.content));
      const event: InboundEvent = {
        kind: "inbound",
        provider_message_id: sid,
        channel: "whatsapp",
        from,
        to,
        body,
        media_urls: media,
        occurred_at: exotelTime(text(item.timestamp)),
        dedupe_key: `${sid}:icm`,
      };
      events.push(event);
    }
    // other callback types (e.g. future ones) are not events we record
  }
  return events;
}

function inboundContent(content: Json): { body: string; media: string[] } {
  const type = text(content.type) ?? "";
  const part = asObject(content[type]);
  if (type === "text") return { body: text(part.body) ?? "", media: [] };
  const link = text(part.link) ?? text(part.url);
  const media = link && /^https?:\/\//i.test(link) ? [link] : [];
  if (type === "location") {
    const lat = text(part.latitude);
    const long = text(part.longitude);
    return { body: lat && long ? `${lat},${long}` : "", media };
  }
  if (type === "interactive" || type === "button") {
    const reply = asObject(part.button_reply ?? part.list_reply);
    return { body: text(reply.title) ?? text(part.text) ?? "", media };
  }
  return { body: text(part.caption) ?? "", media };
}

/** A number as E.164 when it is one (Exotel drops the "+" in some callbacks), else as given. */
function looseE164(value: string | undefined): string | null {
  const v = value?.trim();
  if (!v) return null;
  for (const attempt of [v, /^\d{8,15}$/.test(v) ? `+${v}` : undefined]) {
    if (!attempt) continue;
    try {
      return normalizePhoneNumber(attempt);
    } catch {
      // next
    }
  }
  return /^\d{8,15}$/.test(v) ? `+${v}` : v.slice(0, 40);
}

/** ISO time of an Exotel date: ISO with an offset as is; "YYYY-MM-DD HH:mm:ss" as IST. */
function exotelTime(value: string | undefined): string | null {
  const v = value?.trim();
  if (!v) return null;
  const local = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})$/.exec(v);
  const ms = local ? Date.parse(`${local[1]}T${local[2]}+05:30`) : Date.parse(v);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** Fields of a multipart/form-data body (text parts only). */
function multipartFields(raw: string, contentType: string): Record<string, string> {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!match) throw new ApiError("invalid_request", "Exotel webhook multipart body has no boundary.");
  const boundary = `--${match[1] ?? match[2]}`;
  const out: Record<string, string> = {};
  for (const part of raw.split(boundary).slice(1)) {
    if (part.startsWith("--")) break;
    const split = part.indexOf("\r\n\r\n");
    if (split < 0) continue;
    const head = part.slice(0, split);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (!name || /filename=/i.test(head)) continue;
    out[name] = part.slice(split + 4).replace(/\r\n$/, "");
  }
  return out;
}

function stringFields(body: Json): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string" || typeof v === "number") out[k] = String(v);
  return out;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function asObject(value: unknown): Json {
  return value && typeof value === "object" && !Array.isArray(value) ? value as Json : {};
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : undefined;
}

function toNumber(value: unknown): number {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const exotelAdapter: MessagingAdapter = {
  provider: "exotel",

  send(ctx, message) {
    return (async () => {
      const acct = account(ctx);
      if (message.channel === "whatsapp") return sendWhatsApp(acct, message, ctx.network, ctx.options ?? {});
      return sendSms(acct, message, ctx.options ?? {});
    })();
  },

  testCredentials,
  balance,
  listNumbers,

  call(ctx, request) {
    return (async () => placeCall(account(ctx), request, ctx.options ?? {}))();
  },

  parseWebhook,
  mapDeliveryStatus,
};
