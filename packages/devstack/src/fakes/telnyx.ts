/**
 * A faithful Telnyx Messaging API v2 fake (its documented wire format, error codes, rate
 * limits and Ed25519-signed webhooks), modelled on https://developers.telnyx.com and the
 * official `telnyx` SDK's types and webhook verifier.
 *
 * Plain node:http, in-memory, no per-request logging: it is used in benchmarks.
 * Everything lives under /v2 like the real API; test control lives under /__fake:
 *
 *   GET  /__fake/messages            every accepted message: {id, direction, request:{method, path,
 *                                    headers, raw_body, params} (null for inbound), data, send_at}
 *   GET  /__fake/requests            request counts per "METHOD /v2/path" (proves no retries)
 *   GET  /__fake/pushes              webhook attempts made (last 1000) and their outcome
 *   GET  /__fake/public-key          {public_key}: base64 of the raw 32-byte Ed25519 key
 *   POST /__fake/reset               clears messages, pushes, counters, faults, clock; restores
 *                                    balance, profile, stop list and config to the start options
 *   POST /__fake/faults              {mode: "latency"|"reset"|"timeout"|"http500"|"http503"|"http429",
 *                                    path?, method?, count?=1, after?=0, delay_ms?=1000, process?}
 *   GET|DELETE /__fake/faults        lists / clears queued faults
 *   POST /__fake/advance             {message_id, status?="delivered", error_code?, duplicate?,
 *                                    order?: "reverse", signature?, wait?=true}: drives a message
 *                                    and pushes message.sent / message.finalized
 *   POST /__fake/inbound             {from, to, text?, media_urls?, subject?, duplicate?, signature?,
 *                                    wait?=true}: pushes message.received to the number's profile
 *   POST /__fake/account             {balance?, credit_limit?, pending?} (USD numbers)
 *   POST /__fake/profile             {webhook_url?, webhook_failover_url?, whitelisted_destinations?,
 *                                    enabled?, alpha_sender?, name?}
 *   POST /__fake/config              {rate_limit?: {limit, window_seconds}, idempotency_replay?,
 *                                    invalid_to_code?: "10016"|"40310", error_statuses?: {code: http},
 *                                    stop_list?, webhook_timeout_ms?, webhook_retry_delay_ms?,
 *                                    webhook_attempts?, auto_advance_ms?, cost_at_send?, validity_seconds?}
 *   POST /__fake/clock               {advance_ms?} or {offset_ms?}: moves the fake's clock (scheduling,
 *                                    cancel window, idempotency expiry, timestamps in payloads).
 *                                    Webhook signature timestamps always use the real clock.
 *
 * `signature` (advance/inbound) is one of "stale" (timestamp 360 s old), "future" (360 s ahead),
 * "reserialized" (the body is sent pretty-printed but the compact re-serialisation was signed),
 * "truncated" (48-byte signature), "wrong_key", "tampered" (body changed after signing) or
 * "missing" (no signature headers). Every one of them must be rejected by a correct verifier.
 *
 * Choices where Telnyx's behaviour is not documented (adapters must not depend on them):
 * HTTP statuses of most 4xxxx validation errors (400; override with error_statuses), 20100 → 402,
 * the codes for bad send_at / undeliverable gsm7 text / >10 parts (10015), prices, the validity
 * window (4 h), per-URL restart of meta.attempt on the failover URL, and Idempotency-Key being
 * ignored unless idempotency_replay is on. DELETE /v2/messages/{id} answers with the bare message
 * object (no {data} envelope), as the SDK's type for it declares.
 *
 * SMS part counting is implemented here independently of the adapter's code on purpose,
 * so a test comparing the two can catch a bug in either.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomUUID, sign as signBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export interface TelnyxFakeNumber {
  /** Telnyx phone-number ids are numeric strings. */
  id: string;
  phone_number: string;
  status: string;
  phone_number_type: "local" | "toll_free" | "mobile" | "national" | "shortcode";
  /** Messaging `type` on /v2/phone_numbers/messaging. */
  messaging_type: "long-code" | "toll-free" | "short-code";
  messaging_profile_id: string | null;
  connection_id: string | null;
  tags: string[];
  /** false → features.sms is null (not messaging-capable). */
  sms: boolean;
  /** false → features.mms is null. */
  mms: boolean;
  purchased_at: string;
}

export interface TelnyxFakeProfile {
  id: string;
  name: string;
  enabled: boolean;
  webhook_url: string | null;
  webhook_failover_url: string | null;
  /** ISO-2 destination countries this profile may send to; "*" allows all (others get 40309). */
  whitelisted_destinations: string[];
  /** The alphanumeric sender id registered on the profile, if any. */
  alpha_sender: string | null;
}

export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

export interface TelnyxFakeOptions {
  port?: number;
  host?: string;
  /** Valid API keys (default [TELNYX_FAKE_API_KEY]). */
  apiKeys?: string[];
  /** Keys that answer 401 / 20002 (default [TELNYX_FAKE_REVOKED_API_KEY]). */
  revokedKeys?: string[];
  /** Overrides fields of the default messaging profile (its id stays TELNYX_FAKE_PROFILE_ID unless given). */
  profile?: Partial<TelnyxFakeProfile>;
  /** Replaces the default numbers. */
  numbers?: TelnyxFakeNumber[];
  /** USD (default 25). */
  balance?: number;
  /** USD (default 0): sends are refused with 20100 when cost > balance + credit_limit. */
  creditLimit?: number;
  /** USD shown as `pending` on /v2/balance (default 0). */
  pending?: number;
  /** Per SMS part (default 0.0040). */
  smsPrice?: number;
  /** Per MMS (default 0.0150). */
  mmsPrice?: number;
  /** Return cost in the send response (default true); false returns cost: null until the message is sent. */
  costAtSend?: boolean;
  /** valid_until = received_at (or send_at) + this (default 14 400 s). */
  validitySeconds?: number;
  /** Code for a non-E.164 `to` (default "10016", HTTP 422; "40310" answers 400). */
  invalidToCode?: "10016" | "40310";
  /** HTTP status per error code, e.g. {"40300": 403}. */
  errorStatuses?: Record<string, number>;
  /** Recipients that sent STOP (40300). Inbound STOP/START keywords edit this list too. */
  stopList?: string[];
  /** Fixed window per API key over every /v2 endpoint (default 6000 per 60 s). */
  rateLimit?: RateLimit;
  /** Replay successful POST /v2/messages* answers per Idempotency-Key for 24 h (default false: ignored). */
  idempotencyReplay?: boolean;
  /** A webhook answer slower than this is a failed attempt (default 2000 ms). */
  webhookTimeoutMs?: number;
  /** Pause between webhook attempts (default 1000 ms). */
  webhookRetryDelayMs?: number;
  /** Attempts per URL before moving to the next URL (default 3). */
  webhookAttempts?: number;
  /** When set, each accepted unscheduled send is advanced to "delivered" after this many ms. */
  autoAdvanceMs?: number | null;
}

export type TelnyxFaultMode = "latency" | "reset" | "timeout" | "http500" | "http503" | "http429";

export interface TelnyxFakeFault {
  /**
   * latency: answer after delay_ms; reset: destroy the connection without answering;
   * timeout: never answer; http500/http503: 5xx with a 10007 body; http429: 429 / 10011.
   */
  mode: TelnyxFaultMode;
  /** Path with or without the /v2 prefix, e.g. "/messages"; omitted → every /v2 path. */
  path?: string;
  /** Only requests with this method (default any). */
  method?: string;
  /** How many matching requests to affect (default 1). */
  count?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
  /** For latency (default 1000 ms). */
  delay_ms?: number;
  /**
   * Handle the request (a send is accepted and recorded) before the fault hits.
   * Default true for latency and reset, false for the others; ignored for http429.
   */
  process?: boolean;
}

export type SignatureFault = "stale" | "future" | "reserialized" | "truncated" | "wrong_key" | "tampered" | "missing";
export type FinalStatus = "delivered" | "delivery_failed" | "sending_failed" | "delivery_unconfirmed" | "expired";

export interface AdvanceOptions {
  /** "sent" only pushes message.sent; a final status pushes message.sent (if not yet) then message.finalized. */
  status?: "sent" | FinalStatus;
  /** Overrides the error code of a failure (defaults: delivery_failed 40008, sending_failed 40014, expired 40005). */
  error_code?: string;
  /** Push every event this many extra times (same data.id). */
  duplicate?: number;
  /** "reverse" pushes message.finalized before message.sent. */
  order?: "normal" | "reverse";
  signature?: SignatureFault;
}

export interface InboundOptions {
  from: string;
  to: string;
  text?: string;
  media_urls?: string[];
  subject?: string;
  duplicate?: number;
  signature?: SignatureFault;
}

export interface TelnyxPushRecord {
  event_type: string;
  event_id: string;
  message_id: string;
  url: string;
  attempt: number;
  signature: SignatureFault | null;
  status?: number;
  error?: string;
  duration_ms: number;
  at: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  raw_body: string;
  params: Json;
}

export interface TelnyxFakeMessage {
  id: string;
  direction: "outbound" | "inbound";
  /** The exact request that created it (null for simulated inbound messages). */
  request: RecordedRequest | null;
  /** The API object, as GET /v2/messages/{id} returns it (updated in place). */
  data: Json;
  send_at: string | null;
}

export interface TelnyxFake {
  /** Base URL including /v2, e.g. http://127.0.0.1:54321/v2 (usable as the SDK's baseURL). */
  url: string;
  port: number;
  /** Base64 of the raw 32-byte Ed25519 public key that verifies the webhooks. */
  publicKey: string;
  received: TelnyxFakeMessage[];
  pushes: TelnyxPushRecord[];
  requestCounts(): Record<string, number>;
  addFault(fault: TelnyxFakeFault): void;
  /** Same as POST /__fake/advance with wait:true; resolves to the attempts made. */
  advance(messageId: string, options?: AdvanceOptions): Promise<TelnyxPushRecord[]>;
  /** Same as POST /__fake/inbound with wait:true. */
  inbound(options: InboundOptions): Promise<{ message_id: string; pushes: TelnyxPushRecord[] }>;
  reset(): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/** V2 API keys start with KEY. */
export const TELNYX_FAKE_API_KEY = "KEY0193F1A2B3C4D5E6F708192A3B4C5D6E_SwitchboardTelnyxFakeKey1";
export const TELNYX_FAKE_REVOKED_API_KEY = "KEY0193F1A2B3C4D5E6F708192A3B4C5D6F_RevokedTelnyxFakeKey000";
export const TELNYX_FAKE_PROFILE_ID = "40017f8e-49bd-4f16-9e3d-ef103f916228";
export const TELNYX_FAKE_ORGANIZATION_ID = "9f3c2b1a-7d6e-4f50-8a9b-0c1d2e3f4a5b";
export const TELNYX_FAKE_NUMBERS = {
  /** Long code, SMS + MMS, on the profile. */
  primary: "+13125550101",
  /** Long code, SMS + MMS, on the profile. */
  secondary: "+13125550102",
  /** Toll-free, SMS + MMS, on the profile. */
  tollFree: "+18445550103",
  /** Voice-only: no messaging profile, features.sms and features.mms null. */
  voiceOnly: "+13125550104",
  /** SMS-capable but not assigned to a messaging profile. */
  noProfile: "+13125550105",
  /** Still being purchased (status purchase-pending), on the profile. */
  pending: "+13125550106",
} as const;

const DEFAULT_RATE_LIMIT: RateLimit = { limit: 6000, windowSeconds: 60 };
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_PUSH_LOG = 1000;
const MAX_STORED = 50_000;
const MIN_SCHEDULE_MS = 5 * 60_000;
const MAX_SCHEDULE_MS = 5 * 24 * 3600_000;
const CANCEL_CUTOFF_MS = 60_000;
const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
const RETRIEVABLE_MS = 10 * 24 * 3600_000;
const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_:-]{1,255}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An alphanumeric sender id: 1-11 letters, digits or spaces with at least one letter. */
const ALPHA_SENDER_RE = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;
const STOP_WORDS = new Set(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]);
const START_WORDS = new Set(["START", "UNSTOP", "YES"]);
const FINAL_STATUSES = new Set(["delivered", "delivery_failed", "sending_failed", "delivery_unconfirmed", "expired"]);
const CARRIERS: Record<string, string> = {
  US: "T-MOBILE USA, INC.",
  CA: "ROGERS COMMUNICATIONS",
  GB: "EE LIMITED",
  AU: "TELSTRA",
};

const ERROR_TEXT: Record<string, [title: string, detail: string]> = {
  "10001": ["Inactive phone number", "The phone number is not active on this account."],
  "10003": ["Invalid URL", "The URL is invalid; URLs must be http(s) and at most 2,000 characters."],
  "10004": ["Missing required parameter", "A required parameter is missing."],
  "10005": ["Resource not found", "The requested resource or URL could not be found."],
  "10006": ["Invalid ID", "The ID is not valid."],
  "10007": ["Unexpected error", "An unexpected error occurred."],
  "10009": ["Authentication failed", "The API key is missing or invalid. Send it as 'Authorization: Bearer <key>'."],
  "10011": ["Too many requests", "You have exceeded the maximum number of allowed requests."],
  "10015": ["Bad Request", "The request could not be understood."],
  "10016": ["Phone number must be in +E.164 format", "The phone number must be in +E.164 format, e.g. +13125550123."],
  "20002": ["API key revoked", "The API key used has been revoked."],
  "20100": ["Insufficient funds", "The account balance is too low to send this message."],
  "40005": ["Message expired during transmission", "The carrier did not deliver the message before it expired."],
  "40008": ["Undeliverable", "The message could not be delivered to the handset."],
  "40014": ["Message expired in queue", "The message was not sent before valid_until; it was not billed."],
  "40100": ["Number not enabled for messaging", "The sending number is not enabled for messaging or has no messaging profile."],
  "40300": ["Blocked due to STOP message", "The recipient replied STOP to this sender and has opted out."],
  "40305": ["Invalid 'from' address", "The 'from' address must be a number on this account, a short code or an alphanumeric sender ID."],
  "40306": ["Alphanumeric Sender ID not configured", "The messaging profile has no such alphanumeric sender ID."],
  "40309": ["Destination region not whitelisted", "The destination country is not whitelisted on the messaging profile."],
  "40310": ["Invalid 'to' address", "The 'to' address must be a valid +E.164 number or short code."],
  "40312": ["Messaging profile disabled", "The messaging profile is disabled."],
  "40316": ["No content provided", "Provide 'text' or 'media_urls'."],
  "40317": ["Invalid MMS content", "At most 10 media_urls are allowed."],
  "40321": ["No usable numbers in number pool", "The messaging profile has no number able to send this message."],
};

const DEFAULT_STATUS: Record<string, number> = {
  "10004": 422,
  "10005": 404,
  "10007": 500,
  "10009": 401,
  "10011": 429,
  "10016": 422,
  "20002": 401,
  "20100": 402,
};

function defaultProfile(): TelnyxFakeProfile {
  return {
    id: TELNYX_FAKE_PROFILE_ID,
    name: "Switchboard dev",
    enabled: true,
    webhook_url: null,
    webhook_failover_url: null,
    whitelisted_destinations: ["US", "CA", "GB"],
    alpha_sender: "Switchboard",
  };
}

function defaultNumbers(): TelnyxFakeNumber[] {
  const n = TELNYX_FAKE_NUMBERS;
  const base = { connection_id: "1494404757140276705", purchased_at: "2026-01-05T09:00:00.000+00:00" };
  const messaging = { messaging_profile_id: TELNYX_FAKE_PROFILE_ID, sms: true, mms: true };
  return [
    { ...base, ...messaging, id: "1293384261075731461", phone_number: n.primary, status: "active", phone_number_type: "local", messaging_type: "long-code", tags: ["primary"] },
    { ...base, ...messaging, id: "1293384261075731462", phone_number: n.secondary, status: "active", phone_number_type: "local", messaging_type: "long-code", tags: ["secondary"] },
    { ...base, ...messaging, id: "1293384261075731463", phone_number: n.tollFree, status: "active", phone_number_type: "toll_free", messaging_type: "toll-free", tags: ["support"] },
    { ...base, id: "1293384261075731464", phone_number: n.voiceOnly, status: "active", phone_number_type: "local", messaging_type: "long-code", tags: ["voice"], messaging_profile_id: null, sms: false, mms: false },
    { ...base, id: "1293384261075731465", phone_number: n.noProfile, status: "active", phone_number_type: "local", messaging_type: "long-code", tags: [], messaging_profile_id: null, sms: true, mms: true },
    { ...base, ...messaging, id: "1293384261075731466", phone_number: n.pending, status: "purchase-pending", phone_number_type: "local", messaging_type: "long-code", tags: [], connection_id: null },
  ];
}

// ---------------------------------------------------------------------------
// SMS part counting (independent of the adapter's implementation)
// ---------------------------------------------------------------------------

// GSM 03.38 default alphabet and its extension table (escaped characters cost 2 septets).
const GSM_TABLE =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_ESCAPED = "\f^{}\\[~]|€";

interface TextInfo {
  encoding: "GSM-7" | "UCS-2";
  parts: number;
  num_chars: number;
}

function isGsm(text: string): boolean {
  for (const ch of text) if (!GSM_TABLE.includes(ch) && !GSM_ESCAPED.includes(ch)) return false;
  return true;
}

function textInfo(text: string, encoding: "auto" | "gsm7" | "ucs2"): TextInfo | "not_gsm" {
  const gsm = isGsm(text);
  if (encoding === "gsm7" && !gsm) return "not_gsm";
  const ucs2 = encoding === "ucs2" || !gsm;
  let units = 0;
  if (ucs2) units = text.length; // UTF-16 code units
  else for (const ch of text) units += GSM_ESCAPED.includes(ch) ? 2 : 1;
  const [single, multi] = ucs2 ? [70, 67] : [160, 153];
  const parts = units <= single ? 1 : Math.ceil(units / multi);
  return { encoding: ucs2 ? "UCS-2" : "GSM-7", parts, num_chars: Array.from(text).length };
}

const iso = (ms: number) => new Date(ms).toISOString().replace("Z", "+00:00");
const money = (n: number, digits: number) => (Math.round(n * 10 ** digits) / 10 ** digits).toFixed(digits);

function guessContentType(url: string): string | null {
  const ext = /\.([a-z0-9]+)(?:$|[?#])/i.exec(url)?.[1]?.toLowerCase();
  const types: Record<string, string> = {
    jpg: "image/jpeg",
    jpeg: "image/jpeg",
    png: "image/png",
    gif: "image/gif",
    mp4: "video/mp4",
    mp3: "audio/mpeg",
    pdf: "application/pdf",
    vcf: "text/vcard",
  };
  return ext ? types[ext] ?? null : null;
}

function validHttpUrl(value: unknown): value is string {
  if (typeof value !== "string" || value.length > 2000) return false;
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

interface Stored {
  pub: TelnyxFakeMessage;
  /** Amount charged (refunded on sending_failed / cancel). */
  charged: number;
  cost: Json | null;
  costBreakdown: Json | null;
  sendAtMs: number | null;
  receivedMs: number;
  webhookUrl: string | null;
  failoverUrl: string | null;
  useProfile: boolean;
  profileId: string | null;
}

interface QueuedFault {
  mode: TelnyxFaultMode;
  path?: string;
  method?: string;
  count: number;
  after: number;
  delay_ms: number;
  process: boolean;
}

type Result = { status: number; body: unknown };

export async function startTelnyxFake(options: TelnyxFakeOptions = {}): Promise<TelnyxFake> {
  const initialSettings = () => ({
    smsPrice: options.smsPrice ?? 0.004,
    mmsPrice: options.mmsPrice ?? 0.015,
    costAtSend: options.costAtSend ?? true,
    validitySeconds: options.validitySeconds ?? 14_400,
    invalidToCode: options.invalidToCode ?? "10016",
    errorStatuses: { ...options.errorStatuses } as Record<string, number>,
    rateLimit: { ...(options.rateLimit ?? DEFAULT_RATE_LIMIT) },
    idempotencyReplay: options.idempotencyReplay ?? false,
    webhookTimeoutMs: options.webhookTimeoutMs ?? 2000,
    webhookRetryDelayMs: options.webhookRetryDelayMs ?? 1000,
    webhookAttempts: Math.max(1, options.webhookAttempts ?? 3),
    autoAdvanceMs: options.autoAdvanceMs ?? null,
  });
  const initialAccount = () => ({
    balance: options.balance ?? 25,
    creditLimit: options.creditLimit ?? 0,
    pending: options.pending ?? 0,
  });
  const initialProfile = (): TelnyxFakeProfile => ({ ...defaultProfile(), ...options.profile });
  const initialNumbers = () => (options.numbers ?? defaultNumbers()).map((n) => ({ ...n, tags: [...n.tags] }));

  const apiKeys = new Set(options.apiKeys ?? [TELNYX_FAKE_API_KEY]);
  const revokedKeys = new Set(options.revokedKeys ?? [TELNYX_FAKE_REVOKED_API_KEY]);

  // Signing keys live as long as the server, so the public key survives reset().
  const keys = generateKeyPairSync("ed25519");
  const otherKeys = generateKeyPairSync("ed25519");
  const publicKey = keys.publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64");

  // --- state ---------------------------------------------------------------
  let settings = initialSettings();
  let account = initialAccount();
  let profile = initialProfile();
  let numbers = initialNumbers();
  let stopList = new Set(options.stopList ?? []);
  let clockOffsetMs = 0;
  const received: TelnyxFakeMessage[] = [];
  const byId = new Map<string, Stored>();
  const counts = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  const idempotency = new Map<string, { hash: string; status: number; body: unknown; at: number }>();
  let faults: QueuedFault[] = [];
  const pushes: TelnyxPushRecord[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<Socket>();
  const lifetime = new AbortController();

  const now = () => Date.now() + clockOffsetMs;

  function reset() {
    settings = initialSettings();
    account = initialAccount();
    profile = initialProfile();
    numbers = initialNumbers();
    stopList = new Set(options.stopList ?? []);
    clockOffsetMs = 0;
    received.length = 0;
    byId.clear();
    counts.clear();
    windows.clear();
    idempotency.clear();
    faults = [];
    pushes.length = 0;
    for (const t of timers) clearTimeout(t);
    timers.clear();
  }

  const profileById = (id: string | null) => (id !== null && id === profile.id ? profile : undefined);

  // --- errors --------------------------------------------------------------
  function apiError(code: string, where: { pointer?: string; parameter?: string } = {}, detail?: string): Json {
    const [title, defaultDetail] = ERROR_TEXT[code] ?? ["Error", "The request failed."];
    const error: Json = { code, title, detail: detail ?? defaultDetail };
    if (where.pointer !== undefined || where.parameter !== undefined) error.source = { ...where };
    error.meta = { url: `https://developers.telnyx.com/docs/overview/errors/${code}` };
    return error;
  }
  const statusFor = (code: string) => settings.errorStatuses[code] ?? DEFAULT_STATUS[code] ?? 400;
  const fail = (code: string, pointer?: string, detail?: string): Result => ({
    status: statusFor(code),
    body: { errors: [apiError(code, pointer === undefined ? {} : { pointer }, detail)] },
  });
  const failParam = (code: string, parameter: string, detail?: string): Result => ({
    status: statusFor(code),
    body: { errors: [apiError(code, { parameter }, detail)] },
  });

  // --- HTTP plumbing -------------------------------------------------------
  function reply(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  /** Fixed window per API key; returns the x-ratelimit-* headers and whether to refuse. */
  function rateLimit(key: string): { headers: Record<string, string>; exceeded: boolean } {
    const limit = settings.rateLimit;
    const t = Date.now();
    let w = windows.get(key);
    if (!w || t - w.start >= limit.windowSeconds * 1000) {
      w = { start: t, count: 0 };
      windows.set(key, w);
    }
    w.count++;
    const resetIn = Math.max(1, Math.ceil((w.start + limit.windowSeconds * 1000 - t) / 1000));
    const headers = {
      "x-ratelimit-limit": String(limit.limit),
      "x-ratelimit-remaining": String(Math.max(0, limit.limit - w.count)),
      "x-ratelimit-reset": String(resetIn),
    };
    return { headers, exceeded: w.count > limit.limit };
  }

  function authenticate(header: string | undefined): "ok" | "10009" | "20002" {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!match) return "10009";
    if (revokedKeys.has(match[1])) return "20002";
    return apiKeys.has(match[1]) ? "ok" : "10009";
  }

  function takeFault(method: string, path: string): QueuedFault | undefined {
    const bare = path.replace(/^\/v2/, "");
    for (const fault of faults) {
      if (fault.path !== undefined && fault.path.replace(/^\/v2/, "").replace(/\/+$/, "") !== bare) continue;
      if (fault.method !== undefined && fault.method.toUpperCase() !== method) continue;
      if (fault.after > 0) {
        fault.after--;
        continue;
      }
      fault.count--;
      faults = faults.filter((f) => f.count > 0);
      return fault;
    }
    return undefined;
  }

  function addFault(f: TelnyxFakeFault) {
    const modes: TelnyxFaultMode[] = ["latency", "reset", "timeout", "http500", "http503", "http429"];
    if (!modes.includes(f.mode)) throw new Error(`unknown fault mode ${String(f.mode)}; use ${modes.join(", ")}`);
    faults.push({
      mode: f.mode,
      path: f.path,
      method: f.method,
      count: f.count ?? 1,
      after: f.after ?? 0,
      delay_ms: f.delay_ms ?? 1000,
      process: f.mode === "http429" ? false : f.process ?? (f.mode === "latency" || f.mode === "reset"),
    });
  }

  // --- recipients ----------------------------------------------------------
  const recipientCache = new Map<string, { country: string; lineType: string } | null>();
  function parseRecipient(to: unknown): { e164: string; country: string; lineType: string } | null {
    if (typeof to !== "string") return null;
    if (/^\d{5,6}$/.test(to)) return { e164: to, country: "US", lineType: "" }; // US short code
    if (!/^\+[1-9]\d{1,14}$/.test(to)) return null;
    let info = recipientCache.get(to);
    if (info === undefined) {
      const parsed = parsePhoneNumberFromString(to);
      if (parsed && parsed.isValid() && parsed.number === to) {
        const type = parsed.getType();
        const lineType = type === "FIXED_LINE" ? "Wireline" : type === "VOIP" ? "VoIP" : type === "MOBILE" || type === "FIXED_LINE_OR_MOBILE" ? "Wireless" : "";
        info = { country: parsed.country ?? "", lineType };
      } else {
        info = null;
      }
      if (recipientCache.size > 200_000) recipientCache.clear();
      recipientCache.set(to, info);
    }
    return info === null ? null : { e164: to, ...info };
  }

  const whitelisted = (p: TelnyxFakeProfile, country: string) =>
    p.whitelisted_destinations.includes("*") || p.whitelisted_destinations.includes(country);

  // --- sends ---------------------------------------------------------------
  type SendVariant = "default" | "long_code" | "number_pool" | "short_code" | "alphanumeric_sender_id" | "schedule";

  function handleSend(variant: SendVariant, p: Json, request: RecordedRequest): Result {
    const t = now();
    if (p.to === undefined || p.to === null || p.to === "") return fail("10004", "/to", "The 'to' parameter is required.");
    const recipient = parseRecipient(p.to);
    if (!recipient) return settings.invalidToCode === "40310" ? fail("40310", "/to") : fail("10016", "/to");

    if (p.text !== undefined && p.text !== null && typeof p.text !== "string") return fail("10015", "/text", "'text' must be a string.");
    const text = typeof p.text === "string" ? p.text : "";
    let mediaUrls: unknown[] = [];
    if (p.media_urls !== undefined && p.media_urls !== null) {
      if (!Array.isArray(p.media_urls)) return fail("10015", "/media_urls", "'media_urls' must be an array of URLs.");
      mediaUrls = p.media_urls;
    }
    if (!text && mediaUrls.length === 0) return fail("40316", "/text");
    if (mediaUrls.length > 10) return fail("40317", "/media_urls");
    for (let i = 0; i < mediaUrls.length; i++) if (!validHttpUrl(mediaUrls[i])) return fail("10003", `/media_urls/${i}`);
    if (p.type !== undefined && p.type !== "SMS" && p.type !== "MMS") return fail("10015", "/type", "'type' must be SMS or MMS.");
    const kind: "SMS" | "MMS" = mediaUrls.length > 0 || p.type === "MMS" ? "MMS" : "SMS";
    const encoding = p.encoding ?? "auto";
    if (encoding !== "auto" && encoding !== "gsm7" && encoding !== "ucs2") {
      return fail("10015", "/encoding", "'encoding' must be auto, gsm7 or ucs2.");
    }
    for (const field of ["webhook_url", "webhook_failover_url"] as const) {
      if (p[field] !== undefined && p[field] !== null && p[field] !== "" && !validHttpUrl(p[field])) return fail("10003", `/${field}`);
    }

    // Sender and messaging profile.
    let requestedProfile: TelnyxFakeProfile | undefined;
    const profileParam = p.messaging_profile_id;
    if (profileParam !== undefined && profileParam !== null && profileParam !== "") {
      if (typeof profileParam !== "string" || !UUID_RE.test(profileParam)) return fail("10006", "/messaging_profile_id");
      requestedProfile = profileById(profileParam);
      if (!requestedProfile) return fail("10005", "/messaging_profile_id", "Messaging profile not found.");
    } else if (variant === "number_pool" || variant === "alphanumeric_sender_id") {
      return fail("10004", "/messaging_profile_id", "The 'messaging_profile_id' parameter is required.");
    }
    let from: string;
    let sendingProfile: TelnyxFakeProfile | undefined;
    const fromParam = p.from;
    if (fromParam === undefined || fromParam === null || fromParam === "") {
      if (variant !== "default" && variant !== "number_pool" && variant !== "schedule") {
        return fail("10004", "/from", "The 'from' parameter is required.");
      }
      if (!requestedProfile) return fail("10004", "/from", "'from' is required unless 'messaging_profile_id' is given.");
      const pooled = numbers.find((n) =>
        n.messaging_profile_id === requestedProfile.id && n.status === "active" && n.sms && (kind === "SMS" || n.mms)
      );
      if (!pooled) return fail("40321", "/messaging_profile_id");
      from = pooled.phone_number;
      sendingProfile = requestedProfile;
    } else if (typeof fromParam === "string" && ALPHA_SENDER_RE.test(fromParam)) {
      if (!requestedProfile) return fail("10004", "/messaging_profile_id", "Alphanumeric senders need 'messaging_profile_id'.");
      if (requestedProfile.alpha_sender !== fromParam) return fail("40306", "/from");
      from = fromParam;
      sendingProfile = requestedProfile;
    } else {
      const number = typeof fromParam === "string"
        ? numbers.find((n) => n.phone_number === fromParam && n.status !== "deleted")
        : undefined;
      if (!number) return fail("40305", "/from");
      if (!number.messaging_profile_id || !number.sms || (kind === "MMS" && !number.mms)) return fail("40100", "/from");
      if (number.status !== "active") return fail("10001", "/from");
      from = number.phone_number;
      sendingProfile = profileById(number.messaging_profile_id);
      if (!sendingProfile) return fail("40100", "/from");
    }
    if (!sendingProfile.enabled) return fail("40312");

    // Recipient rules.
    if (stopList.has(recipient.e164)) return fail("40300", "/to");
    if (!whitelisted(sendingProfile, recipient.country)) return fail("40309", "/to");

    // Content.
    const info = textInfo(text, encoding);
    if (info === "not_gsm") return fail("10015", "/text", "The text contains characters that GSM-7 cannot encode.");
    const parts = kind === "MMS" ? 1 : info.parts;
    if (kind === "SMS" && parts > 10) return fail("10015", "/text", "The text needs more than 10 parts.");

    // Scheduling.
    let sendAtMs: number | null = null;
    if (p.send_at !== undefined && p.send_at !== null) {
      sendAtMs = typeof p.send_at === "string" ? Date.parse(p.send_at) : NaN;
      if (!Number.isFinite(sendAtMs)) return fail("10015", "/send_at", "'send_at' must be an ISO 8601 date-time.");
      if (sendAtMs - t < MIN_SCHEDULE_MS) return fail("10015", "/send_at", "'send_at' must be at least 5 minutes in the future.");
      if (sendAtMs - t > MAX_SCHEDULE_MS) return fail("10015", "/send_at", "'send_at' must be at most 5 days in the future.");
    } else if (variant === "schedule") {
      return fail("10004", "/send_at", "The 'send_at' parameter is required.");
    }

    // Funds.
    const cost = kind === "SMS" ? parts * settings.smsPrice : settings.mmsPrice;
    if (cost > account.balance + account.creditLimit + 1e-9) return fail("20100");
    account.balance = Math.round((account.balance - cost) * 1e6) / 1e6;

    const id = randomUUID();
    const useProfile = p.use_profile_webhooks !== false;
    const webhookUrl = typeof p.webhook_url === "string" && p.webhook_url ? p.webhook_url : null;
    const failoverUrl = typeof p.webhook_failover_url === "string" && p.webhook_failover_url ? p.webhook_failover_url : null;
    const costObj = { amount: money(cost, 4), currency: "USD" };
    const carrierFee = kind === "SMS" ? parts * 0.001 : 0.005;
    const costBreakdown = {
      carrier_fee: { amount: money(carrierFee, 4), currency: "USD" },
      rate: { amount: money(cost - carrierFee, 4), currency: "USD" },
    };
    const data: Json = {
      record_type: "message",
      direction: "outbound",
      id,
      type: kind,
      messaging_profile_id: sendingProfile.id,
      organization_id: TELNYX_FAKE_ORGANIZATION_ID,
      from: { phone_number: from, carrier: "Telnyx", line_type: "Wireless" },
      to: [{
        phone_number: recipient.e164,
        status: sendAtMs === null ? "queued" : "scheduled",
        carrier: CARRIERS[recipient.country] ?? "",
        line_type: recipient.lineType,
      }],
      cc: [],
      text,
      subject: typeof p.subject === "string" ? p.subject : null,
      media: mediaUrls.map((u) => ({ url: u, content_type: guessContentType(String(u)), sha256: null, size: null })),
      webhook_url: webhookUrl ?? (useProfile ? sendingProfile.webhook_url : null),
      webhook_failover_url: failoverUrl ?? (useProfile ? sendingProfile.webhook_failover_url : null),
      encoding: info.encoding,
      parts,
      num_chars: info.num_chars,
      smart_encoding_applied: false,
      tags: [],
      cost: settings.costAtSend ? costObj : null,
      cost_breakdown: settings.costAtSend ? costBreakdown : null,
      tcr_campaign_id: null,
      tcr_campaign_billable: false,
      tcr_campaign_registered: null,
      received_at: iso(t),
      sent_at: null,
      completed_at: null,
      valid_until: iso((sendAtMs ?? t) + settings.validitySeconds * 1000),
      wait_seconds: 0,
      errors: [],
    };
    const stored: Stored = {
      pub: { id, direction: "outbound", request, data, send_at: sendAtMs === null ? null : iso(sendAtMs) },
      charged: cost,
      cost: costObj,
      costBreakdown,
      sendAtMs,
      receivedMs: t,
      webhookUrl,
      failoverUrl,
      useProfile,
      profileId: sendingProfile.id,
    };
    store(stored);
    if (settings.autoAdvanceMs !== null && sendAtMs === null) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        advance(id, {}).catch(() => undefined);
      }, settings.autoAdvanceMs);
      timers.add(timer);
    }
    return { status: 200, body: { data } };
  }

  function store(s: Stored) {
    received.push(s.pub);
    byId.set(s.pub.id, s);
    if (received.length > MAX_STORED) {
      for (const old of received.splice(0, received.length - MAX_STORED)) byId.delete(old.id);
    }
  }

  const toOf = (s: Stored) => (s.pub.data.to as Json[])[0];

  function handleRetrieve(id: string): Result {
    if (!UUID_RE.test(id)) return failParam("10006", "id");
    const s = byId.get(id);
    if (!s || now() - s.receivedMs > RETRIEVABLE_MS) return fail("10005");
    return { status: 200, body: { data: s.pub.data } };
  }

  function handleCancel(id: string): Result {
    if (!UUID_RE.test(id)) return failParam("10006", "id");
    const s = byId.get(id);
    if (!s || s.pub.direction !== "outbound") return fail("10005");
    if (toOf(s).status !== "scheduled" || s.sendAtMs === null) {
      return failParam("10015", "id", "Only messages with status 'scheduled' can be cancelled.");
    }
    if (s.sendAtMs - now() <= CANCEL_CUTOFF_MS) {
      return failParam("10015", "id", "A scheduled message cannot be cancelled within a minute of its send_at.");
    }
    toOf(s).status = "cancelled";
    account.balance = Math.round((account.balance + s.charged) * 1e6) / 1e6;
    s.charged = 0;
    s.pub.data.valid_until = null;
    return { status: 200, body: s.pub.data };
  }

  // --- numbers, profiles, balance -------------------------------------------
  function pageParams(q: URLSearchParams): { page: number; size: number } | Result {
    const page = Number(q.get("page[number]") ?? "1");
    const size = Number(q.get("page[size]") ?? "20");
    if (!Number.isInteger(page) || page < 1) return failParam("10015", "page[number]", "page[number] must be a positive integer.");
    if (!Number.isInteger(size) || size < 1 || size > 250) return failParam("10015", "page[size]", "page[size] must be between 1 and 250.");
    return { page, size };
  }

  function paged(items: Json[], q: URLSearchParams): Result {
    const pp = pageParams(q);
    if ("status" in pp) return pp;
    const total = items.length;
    return {
      status: 200,
      body: {
        data: items.slice((pp.page - 1) * pp.size, pp.page * pp.size),
        meta: { page_number: pp.page, page_size: pp.size, total_pages: Math.ceil(total / pp.size), total_results: total },
      },
    };
  }

  const countryOf = (n: TelnyxFakeNumber) => parsePhoneNumberFromString(n.phone_number)?.country ?? "";
  const digitMatch = (n: TelnyxFakeNumber, filter: string) => /^\+?\d+$/.test(filter) && n.phone_number.includes(filter.replace(/^\+/, ""));

  function numberJson(n: TelnyxFakeNumber): Json {
    const p = profileById(n.messaging_profile_id);
    return {
      record_type: "phone_number",
      id: n.id,
      phone_number: n.phone_number,
      status: n.status,
      phone_number_type: n.phone_number_type,
      tags: n.tags,
      purchased_at: n.purchased_at,
      created_at: n.purchased_at,
      updated_at: n.purchased_at,
      connection_id: n.connection_id,
      connection_name: n.connection_id ? "Switchboard voice" : null,
      messaging_profile_id: n.messaging_profile_id,
      messaging_profile_name: p?.name ?? null,
      billing_group_id: null,
      customer_reference: null,
      external_pin: null,
      deletion_lock_enabled: false,
      emergency_enabled: false,
      emergency_address_id: null,
      call_forwarding_enabled: true,
      cnam_listing_enabled: false,
      caller_id_name_enabled: false,
      call_recording_enabled: false,
      t38_fax_gateway_enabled: false,
      source_type: "number_order",
    };
  }

  function handleListNumbers(q: URLSearchParams): Result {
    let list = [...numbers];
    const f = (name: string) => q.get(`filter[${name}]`);
    if (f("phone_number") !== null) list = list.filter((n) => digitMatch(n, f("phone_number")!));
    if (f("status") !== null) list = list.filter((n) => n.status === f("status"));
    if (f("tag") !== null) list = list.filter((n) => n.tags.includes(f("tag")!));
    if (f("connection_id") !== null) list = list.filter((n) => n.connection_id === f("connection_id"));
    if (f("country_iso_alpha2") !== null) {
      const countries = f("country_iso_alpha2")!.split(",").map((c) => c.trim().toUpperCase());
      list = list.filter((n) => countries.includes(countryOf(n)));
    }
    const numberType = f("number_type][eq") ?? f("number_type");
    if (numberType !== null) list = list.filter((n) => n.phone_number_type === numberType);
    const sort = q.get("sort");
    if (sort === "phone_number" || sort === "purchased_at") {
      list.sort((a, b) => (a[sort] < b[sort] ? -1 : a[sort] > b[sort] ? 1 : 0));
    } else {
      list.reverse(); // created_at descending: newest (last seeded) first
    }
    return paged(list.map(numberJson), q);
  }

  function messagingJson(n: TelnyxFakeNumber): Json {
    const feature = (on: boolean) => (on ? { domestic_two_way: true, international_inbound: true, international_outbound: true } : null);
    const outbound = received.filter((m) => m.direction === "outbound" && (m.data.from as Json).phone_number === n.phone_number).length;
    return {
      record_type: "messaging_phone_number",
      id: n.id,
      phone_number: n.phone_number,
      country_code: countryOf(n),
      type: n.messaging_type,
      messaging_profile_id: n.messaging_profile_id,
      messaging_product: n.sms ? "P2P" : null,
      eligible_messaging_products: n.sms ? ["P2P", "A2P"] : [],
      traffic_type: n.sms ? "P2P" : null,
      organization_id: TELNYX_FAKE_ORGANIZATION_ID,
      tags: n.tags,
      features: { sms: feature(n.sms), mms: feature(n.sms && n.mms) },
      health: { message_count: outbound, inbound_outbound_ratio: 0, spam_ratio: 0, success_ratio: 1 },
      created_at: n.purchased_at,
      updated_at: n.purchased_at,
    };
  }

  function handleListMessaging(q: URLSearchParams): Result {
    let list = [...numbers];
    const profileFilter = q.get("filter[messaging_profile_id]");
    if (profileFilter !== null) list = list.filter((n) => n.messaging_profile_id === profileFilter);
    const exact = q.get("filter[phone_number]");
    if (exact !== null) list = list.filter((n) => n.phone_number === exact);
    const contains = q.get("filter[phone_number][contains]");
    if (contains !== null) list = list.filter((n) => digitMatch(n, contains));
    const type = q.get("filter[type]");
    if (type !== null) list = list.filter((n) => n.messaging_type.replace("-", "") === type.replace("-", ""));
    const sort = q.get("sort[phone_number]");
    if (sort === "asc" || sort === "desc") {
      list.sort((a, b) => a.phone_number.localeCompare(b.phone_number) * (sort === "asc" ? 1 : -1));
    }
    return paged(list.map(messagingJson), q);
  }

  const numberByIdOrE164 = (id: string) => numbers.find((n) => n.id === id || n.phone_number === id);

  function profileJson(p: TelnyxFakeProfile): Json {
    return {
      record_type: "messaging_profile",
      id: p.id,
      name: p.name,
      enabled: p.enabled,
      webhook_url: p.webhook_url,
      webhook_failover_url: p.webhook_failover_url,
      webhook_api_version: "2",
      whitelisted_destinations: p.whitelisted_destinations,
      alpha_sender: p.alpha_sender,
      number_pool_settings: null,
      url_shortener_settings: null,
      organization_id: TELNYX_FAKE_ORGANIZATION_ID,
      created_at: "2026-01-05T09:00:00.000+00:00",
      updated_at: "2026-01-05T09:00:00.000+00:00",
    };
  }

  function balanceBody(): Json {
    return {
      data: {
        record_type: "balance",
        balance: money(account.balance, 2),
        credit_limit: money(account.creditLimit, 2),
        available_credit: money(account.balance + account.creditLimit, 2),
        pending: money(account.pending, 2),
        currency: "USD",
      },
    };
  }

  // --- webhooks --------------------------------------------------------------
  function signedDelivery(envelope: Json, fault: SignatureFault | null) {
    const signed = JSON.stringify(envelope);
    let body = signed;
    if (fault === "reserialized") body = JSON.stringify(envelope, null, 2); // the compact form was signed
    if (fault === "tampered") body = body.replace('"record_type":"event"', '"record_type":"event","tampered":true');
    // Well past the 300 s tolerance: a verifier a second or two later must still refuse it.
    const skew = fault === "stale" ? -360 : fault === "future" ? 360 : 0;
    const timestamp = String(Math.floor(Date.now() / 1000) + skew);
    const key: KeyObject = fault === "wrong_key" ? otherKeys.privateKey : keys.privateKey;
    let signature = signBytes(null, Buffer.from(`${timestamp}|${signed}`, "utf8"), key);
    if (fault === "truncated") signature = signature.subarray(0, 48);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (fault !== "missing") {
      headers["telnyx-signature-ed25519"] = signature.toString("base64");
      headers["telnyx-timestamp"] = timestamp;
    }
    return { body, headers };
  }

  async function postOnce(url: string, event: Json, attempt: number, fault: SignatureFault | null, messageId: string) {
    const { body, headers } = signedDelivery({ data: event, meta: { attempt, delivered_to: url } }, fault);
    const started = Date.now();
    const record: TelnyxPushRecord = {
      event_type: String(event.event_type),
      event_id: String(event.id),
      message_id: messageId,
      url,
      attempt,
      signature: fault,
      duration_ms: 0,
      at: started,
    };
    try {
      const signal = AbortSignal.any([lifetime.signal, AbortSignal.timeout(settings.webhookTimeoutMs)]);
      const response = await fetch(url, { method: "POST", headers, body, signal });
      await response.arrayBuffer();
      record.status = response.status;
    } catch (error) {
      const e = error as Error;
      record.error = e.name === "TimeoutError" ? `no answer within ${settings.webhookTimeoutMs} ms` : e.message;
    }
    record.duration_ms = Date.now() - started;
    pushes.push(record);
    if (pushes.length > MAX_PUSH_LOG) pushes.splice(0, pushes.length - MAX_PUSH_LOG);
    return record;
  }

  /** Up to webhookAttempts per URL, in chain order, until one answers 2xx in time. */
  async function deliver(event: Json, chain: string[], fault: SignatureFault | null, messageId: string) {
    const records: TelnyxPushRecord[] = [];
    for (let u = 0; u < chain.length; u++) {
      for (let attempt = 1; attempt <= settings.webhookAttempts; attempt++) {
        if (lifetime.signal.aborted) return records;
        const record = await postOnce(chain[u], event, attempt, fault, messageId);
        records.push(record);
        if (record.status !== undefined && record.status >= 200 && record.status < 300) return records;
        const last = u === chain.length - 1 && attempt === settings.webhookAttempts;
        if (!last && settings.webhookRetryDelayMs > 0) {
          try {
            await sleep(settings.webhookRetryDelayMs, undefined, { signal: lifetime.signal });
          } catch {
            return records;
          }
        }
      }
    }
    return records;
  }

  const unique = (urls: Array<string | null>) => [...new Set(urls.filter((u): u is string => !!u))];

  /** Per-message URLs first, then the profile's unless use_profile_webhooks was false. */
  function chainFor(s: Stored): string[] {
    const p = profileById(s.profileId);
    return unique([
      s.webhookUrl,
      s.failoverUrl,
      ...(s.useProfile && p ? [p.webhook_url, p.webhook_failover_url] : []),
    ]);
  }

  function event(type: string, s: Stored, t: number): Json {
    return {
      event_type: type,
      id: randomUUID(),
      occurred_at: iso(t),
      payload: structuredClone(s.pub.data),
      record_type: "event",
    };
  }

  async function pushEvents(s: Stored, events: Json[], chain: string[], o: { duplicate?: unknown; signature?: unknown }) {
    const copies = 1 + Math.max(0, Math.floor(Number(o.duplicate ?? 0)) || 0);
    const fault = (o.signature ?? null) as SignatureFault | null;
    const records: TelnyxPushRecord[] = [];
    for (const e of events) {
      for (let i = 0; i < copies; i++) records.push(...(await deliver(e, chain, fault, s.pub.id)));
    }
    return records;
  }

  const SIGNATURE_FAULTS = ["stale", "future", "reserialized", "truncated", "wrong_key", "tampered", "missing"];
  const ADVANCE_STATUSES = ["sent", ...FINAL_STATUSES];
  const DEFAULT_ERROR: Record<string, string> = { delivery_failed: "40008", sending_failed: "40014", expired: "40005" };

  class ControlError extends Error {
    constructor(readonly status: number, message: string) {
      super(message);
    }
  }

  /** Moves a message forward and returns the events to push, in order. */
  function transition(s: Stored, o: AdvanceOptions): Json[] {
    if (s.pub.direction !== "outbound") throw new ControlError(409, "inbound messages cannot be advanced");
    const target = o.status ?? "delivered";
    if (!ADVANCE_STATUSES.includes(target)) throw new ControlError(400, `status must be one of ${ADVANCE_STATUSES.join(", ")}`);
    if (o.signature !== undefined && !SIGNATURE_FAULTS.includes(o.signature)) {
      throw new ControlError(400, `signature must be one of ${SIGNATURE_FAULTS.join(", ")}`);
    }
    const to = toOf(s);
    const current = String(to.status);
    if (current === "cancelled" || FINAL_STATUSES.has(current)) throw new ControlError(409, `message is already ${current}`);
    if (current === "sent" && (target === "sent" || target === "sending_failed")) {
      throw new ControlError(409, `message is already sent; it cannot become ${target}`);
    }
    const t = now();
    const data = s.pub.data;
    const events: Json[] = [];
    const errorFor = (status: string) => {
      const code = o.error_code ?? DEFAULT_ERROR[status];
      return code ? [apiError(String(code))] : [];
    };
    if (current === "scheduled") to.status = "queued"; // released by the scheduler
    if (target === "sending_failed") {
      // Never left Telnyx: not billed.
      account.balance = Math.round((account.balance + s.charged) * 1e6) / 1e6;
      s.charged = 0;
      Object.assign(data, { cost: null, cost_breakdown: null, completed_at: iso(t), valid_until: null, errors: errorFor(target) });
      to.status = "sending_failed";
      events.push(event("message.finalized", s, t));
    } else {
      if (current !== "sent") {
        Object.assign(data, { sent_at: iso(t), valid_until: null, cost: s.cost, cost_breakdown: s.costBreakdown });
        to.status = "sent";
        events.push(event("message.sent", s, t));
      }
      if (target !== "sent") {
        Object.assign(data, { completed_at: iso(t), errors: errorFor(target) });
        to.status = target;
        events.push(event("message.finalized", s, t));
      }
    }
    if (o.order === "reverse") events.reverse();
    return events;
  }

  async function advance(messageId: string, o: AdvanceOptions = {}) {
    const s = byId.get(messageId);
    if (!s) throw new ControlError(404, "unknown message_id");
    const events = transition(s, o);
    return pushEvents(s, events, chainFor(s), o);
  }

  function receiveInbound(o: InboundOptions): { s: Stored; events: Json[]; chain: string[] } {
    const number = numbers.find((n) => n.phone_number === o.to);
    if (!number) throw new ControlError(404, "'to' is not a number on this account");
    if (typeof o.from !== "string" || !o.from) throw new ControlError(400, "'from' is required");
    if (o.signature !== undefined && !SIGNATURE_FAULTS.includes(o.signature)) {
      throw new ControlError(400, `signature must be one of ${SIGNATURE_FAULTS.join(", ")}`);
    }
    const text = typeof o.text === "string" ? o.text : "";
    const media = Array.isArray(o.media_urls) ? o.media_urls.map(String) : [];
    if (!text && media.length === 0) throw new ControlError(400, "text or media_urls is required");
    const t = now();
    const info = textInfo(text, "auto") as TextInfo;
    const keyword = text.trim().toUpperCase();
    let autoresponse: string | null = null;
    if (STOP_WORDS.has(keyword)) {
      stopList.add(o.from);
      autoresponse = "STOP";
    } else if (START_WORDS.has(keyword)) {
      stopList.delete(o.from);
      autoresponse = "START";
    }
    const p = profileById(number.messaging_profile_id);
    const sender = parseRecipient(o.from);
    const id = randomUUID();
    const data: Json = {
      record_type: "message",
      direction: "inbound",
      id,
      type: media.length ? "MMS" : "SMS",
      messaging_profile_id: number.messaging_profile_id,
      organization_id: TELNYX_FAKE_ORGANIZATION_ID,
      from: { phone_number: o.from, carrier: sender ? CARRIERS[sender.country] ?? "" : "", line_type: sender?.lineType ?? "" },
      to: [{ phone_number: number.phone_number, status: "webhook_delivered", carrier: "Telnyx", line_type: "Wireless" }],
      cc: [],
      text,
      subject: typeof o.subject === "string" ? o.subject : null,
      media: media.map((url) => ({ url, content_type: guessContentType(url), size: null, hash_sha256: null })),
      encoding: info.encoding,
      parts: media.length ? 1 : info.parts,
      num_chars: info.num_chars,
      cost: null,
      cost_breakdown: null,
      errors: [],
      tags: [],
      received_at: iso(t),
      sent_at: null,
      completed_at: null,
      valid_until: null,
      webhook_url: p?.webhook_url ?? null,
      webhook_failover_url: p?.webhook_failover_url ?? null,
      ...(autoresponse ? { autoresponse_type: autoresponse } : {}),
    };
    const s: Stored = {
      pub: { id, direction: "inbound", request: null, data, send_at: null },
      charged: 0,
      cost: null,
      costBreakdown: null,
      sendAtMs: null,
      receivedMs: t,
      webhookUrl: null,
      failoverUrl: null,
      useProfile: true,
      profileId: number.messaging_profile_id,
    };
    store(s);
    const chain = p ? unique([p.webhook_url, p.webhook_failover_url]) : [];
    return { s, events: [event("message.received", s, t)], chain };
  }

  async function inbound(o: InboundOptions) {
    const { s, events, chain } = receiveInbound(o);
    return { message_id: s.pub.id, pushes: await pushEvents(s, events, chain, o) };
  }

  // --- control endpoints ------------------------------------------------------
  function controlConfig(p: Json) {
    const limit = p.rate_limit as { limit?: number; window_seconds?: number } | undefined;
    if (limit && typeof limit.limit === "number") {
      settings.rateLimit = { limit: limit.limit, windowSeconds: limit.window_seconds ?? settings.rateLimit.windowSeconds };
      windows.clear();
    }
    if (typeof p.idempotency_replay === "boolean") settings.idempotencyReplay = p.idempotency_replay;
    if (p.invalid_to_code === "10016" || p.invalid_to_code === "40310") settings.invalidToCode = p.invalid_to_code;
    if (p.error_statuses && typeof p.error_statuses === "object") {
      settings.errorStatuses = { ...settings.errorStatuses, ...(p.error_statuses as Record<string, number>) };
    }
    if (Array.isArray(p.stop_list)) stopList = new Set(p.stop_list.map(String));
    if (typeof p.webhook_timeout_ms === "number") settings.webhookTimeoutMs = p.webhook_timeout_ms;
    if (typeof p.webhook_retry_delay_ms === "number") settings.webhookRetryDelayMs = p.webhook_retry_delay_ms;
    if (typeof p.webhook_attempts === "number") settings.webhookAttempts = Math.max(1, p.webhook_attempts);
    if (typeof p.auto_advance_ms === "number" || p.auto_advance_ms === null) settings.autoAdvanceMs = p.auto_advance_ms as number | null;
    if (typeof p.cost_at_send === "boolean") settings.costAtSend = p.cost_at_send;
    if (typeof p.validity_seconds === "number") settings.validitySeconds = p.validity_seconds;
    return { ...settings, stop_list: [...stopList] };
  }

  function controlProfile(p: Json) {
    for (const field of ["webhook_url", "webhook_failover_url", "alpha_sender"] as const) {
      if (typeof p[field] === "string" || p[field] === null) profile[field] = (p[field] as string | null) || null;
    }
    if (typeof p.name === "string") profile.name = p.name;
    if (typeof p.enabled === "boolean") profile.enabled = p.enabled;
    if (Array.isArray(p.whitelisted_destinations)) profile.whitelisted_destinations = p.whitelisted_destinations.map(String);
    return profileJson(profile);
  }

  function controlAccount(p: Json) {
    if (typeof p.balance === "number") account.balance = p.balance;
    if (typeof p.credit_limit === "number") account.creditLimit = p.credit_limit;
    if (typeof p.pending === "number") account.pending = p.pending;
    return balanceBody().data;
  }

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    let p: Json = {};
    try {
      const parsed = raw ? JSON.parse(raw) : {};
      p = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return reply(res, 400, { error: "invalid JSON" });
    }
    const ok = (body: unknown) => reply(res, 200, body);
    try {
      switch (`${req.method} ${url.pathname}`) {
        case "GET /__fake/messages":
          return ok({ messages: received });
        case "GET /__fake/requests":
          return ok({ requests: Object.fromEntries(counts) });
        case "GET /__fake/pushes":
          return ok({ pushes });
        case "GET /__fake/public-key":
          return ok({ public_key: publicKey });
        case "POST /__fake/reset":
          reset();
          return ok({ ok: true });
        case "POST /__fake/faults":
          try {
            addFault(p as unknown as TelnyxFakeFault);
          } catch (error) {
            return reply(res, 400, { error: (error as Error).message });
          }
          return ok({ faults });
        case "GET /__fake/faults":
          return ok({ faults });
        case "DELETE /__fake/faults":
          faults = [];
          return ok({ faults });
        case "POST /__fake/advance": {
          const s = byId.get(String(p.message_id ?? ""));
          if (!s) return reply(res, 404, { error: "unknown message_id" });
          const events = transition(s, p as AdvanceOptions);
          const work = pushEvents(s, events, chainFor(s), p);
          if (p.wait === false) {
            work.catch(() => undefined);
            return reply(res, 202, { message_id: s.pub.id, status: toOf(s).status, events: events.map((e) => e.event_type) });
          }
          return ok({ message_id: s.pub.id, status: toOf(s).status, events: events.map((e) => e.event_type), pushes: await work });
        }
        case "POST /__fake/inbound": {
          const { s, events, chain } = receiveInbound(p as unknown as InboundOptions);
          const work = pushEvents(s, events, chain, p);
          if (p.wait === false) {
            work.catch(() => undefined);
            return reply(res, 202, { message_id: s.pub.id, data: s.pub.data });
          }
          return ok({ message_id: s.pub.id, data: s.pub.data, pushes: await work });
        }
        case "POST /__fake/account":
          return ok(controlAccount(p));
        case "POST /__fake/profile":
          return ok(controlProfile(p));
        case "POST /__fake/config":
          return ok(controlConfig(p));
        case "POST /__fake/clock":
          if (typeof p.offset_ms === "number") clockOffsetMs = p.offset_ms;
          if (typeof p.advance_ms === "number") clockOffsetMs += p.advance_ms;
          return ok({ offset_ms: clockOffsetMs, now: iso(now()) });
        default:
          return reply(res, 404, { error: "unknown control endpoint" });
      }
    } catch (error) {
      if (error instanceof ControlError) return reply(res, error.status, { error: error.message });
      throw error;
    }
  }

  // --- routing ---------------------------------------------------------------
  type Handler = (ctx: { payload: Json; url: URL; match: RegExpMatchArray; request: RecordedRequest }) => Result;
  const ok = (body: unknown): Result => ({ status: 200, body });
  const routes: Array<{ method: string; pattern: RegExp; handler: Handler; idempotent?: boolean }> = [
    { method: "POST", pattern: /^\/v2\/messages$/, handler: (c) => handleSend("default", c.payload, c.request), idempotent: true },
    {
      method: "POST",
      pattern: /^\/v2\/messages\/(long_code|number_pool|short_code|alphanumeric_sender_id|schedule)$/,
      handler: (c) => handleSend(c.match[1] as SendVariant, c.payload, c.request),
      idempotent: true,
    },
    { method: "GET", pattern: /^\/v2\/messages\/([^/]+)$/, handler: (c) => handleRetrieve(c.match[1]) },
    { method: "DELETE", pattern: /^\/v2\/messages\/([^/]+)$/, handler: (c) => handleCancel(c.match[1]) },
    { method: "GET", pattern: /^\/v2\/phone_numbers$/, handler: (c) => handleListNumbers(c.url.searchParams) },
    { method: "GET", pattern: /^\/v2\/phone_numbers\/messaging$/, handler: (c) => handleListMessaging(c.url.searchParams) },
    {
      method: "GET",
      pattern: /^\/v2\/phone_numbers\/([^/]+)\/messaging$/,
      handler: (c) => {
        const n = numberByIdOrE164(decodeURIComponent(c.match[1]));
        return n ? ok({ data: messagingJson(n) }) : fail("10005");
      },
    },
    {
      method: "GET",
      pattern: /^\/v2\/phone_numbers\/([^/]+)$/,
      handler: (c) => {
        const n = numberByIdOrE164(decodeURIComponent(c.match[1]));
        return n ? ok({ data: numberJson(n) }) : fail("10005");
      },
    },
    { method: "GET", pattern: /^\/v2\/messaging_profiles$/, handler: (c) => paged([profileJson(profile)], c.url.searchParams) },
    {
      method: "GET",
      pattern: /^\/v2\/messaging_profiles\/([^/]+)$/,
      handler: (c) => (c.match[1] === profile.id ? ok({ data: profileJson(profile) }) : fail("10005")),
    },
    { method: "GET", pattern: /^\/v2\/balance$/, handler: () => ok(balanceBody()) },
  ];

  function hang(req: http.IncomingMessage) {
    const socket = req.socket; // never answered; destroyed by the client or close()
    hanging.add(socket);
    socket.once("close", () => hanging.delete(socket));
  }

  function handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const countKey = `${method} ${path}`;
    counts.set(countKey, (counts.get(countKey) ?? 0) + 1);

    const fault = takeFault(method, path);
    if (fault && !fault.process) {
      if (fault.mode === "reset") return void req.socket.destroy();
      if (fault.mode === "timeout") return hang(req);
    }
    const rl = rateLimit(req.headers.authorization ?? "");
    if (rl.exceeded || fault?.mode === "http429") {
      const headers = fault?.mode === "http429" ? { ...rl.headers, "x-ratelimit-remaining": "0" } : rl.headers;
      return reply(res, 429, { errors: [apiError("10011")] }, headers);
    }
    const serverError = (f: QueuedFault) =>
      reply(
        res,
        f.mode === "http503" ? 503 : 500,
        { errors: [apiError("10007", {}, f.mode === "http503" ? "The service is temporarily unavailable." : undefined)] },
        rl.headers,
      );
    if (fault && !fault.process && (fault.mode === "http500" || fault.mode === "http503")) return serverError(fault);

    const auth = authenticate(req.headers.authorization);
    if (auth !== "ok") {
      const r = fail(auth);
      return reply(res, r.status, r.body, rl.headers);
    }
    const route = routes.find((r) => r.method === method && r.pattern.test(path));
    if (!route) {
      const r = fail("10005");
      return reply(res, r.status, r.body, rl.headers);
    }

    let payload: Json = {};
    if (method === "POST" || method === "PATCH") {
      try {
        const parsed = raw ? JSON.parse(raw) : {};
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
        payload = parsed;
      } catch {
        const r = fail("10015", undefined, "The request body must be a JSON object.");
        return reply(res, r.status, r.body, rl.headers);
      }
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const request: RecordedRequest = { method, path, headers, raw_body: raw, params: payload };

    let result: Result | undefined;
    let storeIdempotent: ((r: Result) => void) | undefined;
    const idemKey = req.headers["idempotency-key"];
    if (settings.idempotencyReplay && route.idempotent && typeof idemKey === "string") {
      if (!IDEMPOTENCY_KEY_RE.test(idemKey)) {
        result = failParam("10015", "Idempotency-Key", "Idempotency-Key must match ^[A-Za-z0-9_:-]{1,255}$.");
      } else {
        const key = `${TELNYX_FAKE_ORGANIZATION_ID}|${method}|${path}|${idemKey}`;
        const hash = createHash("sha256").update(raw).digest("hex");
        const prior = idempotency.get(key);
        if (prior && now() - prior.at < IDEMPOTENCY_TTL_MS) {
          result = prior.hash === hash ? { status: prior.status, body: prior.body } : {
            status: 422,
            body: { errors: [apiError("10015", { parameter: "Idempotency-Key" }, "This Idempotency-Key was used with a different request body.")] },
          };
        } else {
          storeIdempotent = (r) => {
            if (r.status >= 200 && r.status < 300) idempotency.set(key, { hash, status: r.status, body: r.body, at: now() });
          };
        }
      }
    }
    if (!result) {
      result = route.handler({ payload, url, match: path.match(route.pattern)!, request });
      storeIdempotent?.(result);
    }

    if (fault?.mode === "reset") return void req.socket.destroy(); // handled, then the connection drops
    if (fault?.mode === "timeout") return hang(req);
    if (fault?.mode === "http500" || fault?.mode === "http503") return serverError(fault);
    const final = result;
    if (fault?.mode === "latency") {
      const timer = setTimeout(() => {
        timers.delete(timer);
        reply(res, final.status, final.body, rl.headers);
      }, fault.delay_ms);
      timers.add(timer);
      return;
    }
    reply(res, final.status, final.body, rl.headers);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake.local");
      if (tooLarge) return reply(res, 413, { errors: [apiError("10015", {}, "The request body is too large.")] });
      const raw = Buffer.concat(chunks).toString("utf8");
      if (url.pathname.startsWith("/__fake/")) {
        handleControl(req, res, url, raw).catch((error) => reply(res, 500, { error: String(error) }));
        return;
      }
      try {
        handleApi(req, res, url, raw);
      } catch {
        reply(res, 500, { errors: [apiError("10007")] });
      }
    });
  });
  server.keepAliveTimeout = 65_000; // outlive clients' idle sockets: avoids reuse races under load

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const port = address.port;

  return {
    url: `http://${host}:${port}/v2`,
    port,
    publicKey,
    received,
    pushes,
    requestCounts: () => Object.fromEntries(counts),
    addFault,
    advance,
    inbound,
    reset,
    async close() {
      lifetime.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const socket of hanging) socket.destroy();
      hanging.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
