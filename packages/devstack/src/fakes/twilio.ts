/**
 * A faithful Twilio Programmable Messaging fake (REST API 2010-04-01): its documented
 * wire format, error bodies and codes, paging, status callbacks, inbound webhooks and the
 * X-Twilio-Signature scheme (https://www.twilio.com/docs/usage/webhooks/webhooks-security).
 *
 * Plain node:http, in-memory, no per-request logging: it is used in benchmarks.
 * The API lives under /2010-04-01/Accounts/{AccountSid}/… like the real one (base URL:
 * `fake.url`, the stand-in for https://api.twilio.com). Test control lives under /__fake:
 *
 *   GET  /__fake/messages            every message (API sends, inbound, TwiML replies): the Message resource plus
 *                                     `fake` (exact raw request with headers and parsed params, encoding, pending failure)
 *   GET  /__fake/requests            request counts per "METHOD /path" (proves retries or their absence)
 *   GET  /__fake/pushes              webhook deliveries made (last 1000): url, signed url, headers, body, outcome
 *   POST /__fake/reset               {} clears messages, pushes, counters, faults, opt-outs, windows; restores accounts and config
 *   POST /__fake/faults              {mode: "latency"|"slow"|"timeout"|"drop"|"reset"|"http500"|"http503"|"http429",
 *                                     path?, method?, count?, after?, delay_ms?, commit?}
 *   GET  /__fake/faults              queued faults
 *   DELETE /__fake/faults            clears faults
 *   POST /__fake/advance             {sid?|sids?, to?, error_code?, order?: "forward"|"reverse", duplicate?,
 *                                     signature?, format?: "form"|"json", url?} moves messages on, posting status callbacks
 *   POST /__fake/inbound             {from, to, body?, media?, profile_name?, url?, method?, signature?, format?,
 *                                     duplicate?, received_at?} posts an inbound SMS/WhatsApp webhook, records the TwiML reply
 *   POST /__fake/redeliver           {push_id} posts a recorded webhook again, byte for byte (same idempotency token)
 *   POST /__fake/accounts            {sid, balance?, status?, type?, verified_numbers?, stop_list?, disabled_prefixes?}
 *   POST /__fake/numbers             {phone_number, sms_url?, sms_method?, status_callback?, friendly_name?, capabilities?, whatsapp?}
 *   POST /__fake/services            {sid, status_callback?, inbound_request_url?, inbound_method?, senders?}
 *   POST /__fake/config              {max_concurrent?, rate_limit?, landlines?, price_per_segment?, extra_params?,
 *                                     webhook_routes?, schedule_min_seconds?}
 *
 * Choices where Twilio's behaviour is not documented (adapters must not depend on them):
 * - A path without the `.json` suffix answers 404 with Twilio's XML error envelope (code 20404);
 *   the fake renders no XML resources.
 * - Webhooks are only made on /__fake/advance and /__fake/inbound, never on timers. Cancelling a
 *   scheduled message posts no callback. The initial status (queued/accepted/scheduled) never does.
 * - The Messages list filters `DateSent`, `DateSent<` and `DateSent>` use `date_sent`, or
 *   `date_created` while a message has no `date_sent` yet, so a just-created send can be found.
 *   A date-only value means midnight UTC of that day (`DateSent<` = on or before that instant,
 *   `DateSent>` = on or after it; plain `DateSent` = the whole UTC day of its value, as the
 *   official SDK sends date-times there too).
 * - Status callbacks carry an extra parameter (`extra_params`, default `FakeFutureParam`) to
 *   stand for the parameters Twilio adds without notice.
 * - Delivery retries follow the URL-fragment connection overrides (#rc=, #rp=, #ct=, #rt=, #tt=);
 *   defaults: one retry on connection failure only. The fragment is not part of the signed URL.
 *
 * SMS segment counting is implemented here independently of any adapter code on purpose, so a
 * test comparing the two can catch a bug in either.
 */
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

// ---------------------------------------------------------------------------
// Public constants: the default seeded accounts
// ---------------------------------------------------------------------------

/** Deterministic SID: prefix + 32 hex digits derived from a seed. */
const seededSid = (prefix: string, seed: string) =>
  prefix + createHash("sha256").update(seed).digest("hex").slice(0, 32);

/** The main account (a full, paid account). */
export const TWILIO_FAKE_ACCOUNT = "AC5f3a0c9e2b7d41e8a6c0f4b19d2e7a31";
export const TWILIO_FAKE_AUTH_TOKEN = "9c1e7b4a2f6d8035e1a4c7b92d0f6e38";
/** An API key of the main account: Basic auth `SK…:secret`, with the account SID in the path. */
export const TWILIO_FAKE_API_KEY = "SK2e8b61d0f7a94c35b8e2076fd1a9c4e5";
export const TWILIO_FAKE_API_SECRET = "fakeSecretK3yQ9v2Lm8Xr4Tz7Wb1Nc6Hd";
/** The main account's Messaging Service (sender pool: primary, secondary, whatsapp). */
export const TWILIO_FAKE_SERVICE = "MG7d2c94e0b15a46f8a3c2e9d07b6f1a48";

/** A second account, for cross-account 404s: a trial account with one number and one verified number. */
export const TWILIO_FAKE_OTHER_ACCOUNT = "AC0b7e2f94c61d48a5b3e9f07a2c6d1e84";
export const TWILIO_FAKE_OTHER_AUTH_TOKEN = "4d8a0e6c2b9f7135a0c8e4d6b2f9a173";

/** The main account's numbers. */
export const TWILIO_FAKE_NUMBERS = {
  /** SMS, MMS, voice; in the Messaging Service. */
  primary: "+14155550100",
  /** SMS, MMS, voice; in the Messaging Service. */
  secondary: "+14155550101",
  /** Voice only: sending from it gives 21606. */
  voiceOnly: "+14155550102",
  /** UK mobile: SMS and voice, no MMS. */
  uk: "+447400123456",
  /** SMS, MMS, voice and an enabled WhatsApp sender; in the Messaging Service. */
  whatsapp: "+14155238886",
} as const;
export const TWILIO_FAKE_OTHER_NUMBER = "+12025550143";
export const TWILIO_FAKE_OTHER_VERIFIED = "+12025550188";

/** Default per-account opt-out (STOP) list: sending to it gives 21610. */
export const TWILIO_FAKE_STOPPED_NUMBER = "+14155550166";
/** Default landline list: sending to these gives 21614. */
export const TWILIO_FAKE_LANDLINES = ["+14155550111", "+442071838750"];
/** Default disabled Geo Permissions prefixes: sending there gives 21408. */
export const TWILIO_FAKE_DISABLED_PREFIXES = ["+86", "+234"];

const API_VERSION = "2010-04-01";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type TwilioMessageStatus =
  | "queued"
  | "sending"
  | "sent"
  | "failed"
  | "delivered"
  | "undelivered"
  | "receiving"
  | "received"
  | "accepted"
  | "scheduled"
  | "read"
  | "partially_delivered"
  | "canceled";

export interface TwilioFakeCapabilities {
  voice: boolean;
  sms: boolean;
  mms: boolean;
  fax: boolean;
}

export interface TwilioFakeNumber {
  sid: string;
  phone_number: string;
  friendly_name: string;
  capabilities: TwilioFakeCapabilities;
  /** An enabled WhatsApp sender (Twilio does not show this in `capabilities`). */
  whatsapp: boolean;
  sms_url: string;
  sms_method: "GET" | "POST";
  sms_fallback_url: string;
  status_callback: string;
  voice_url: string;
  origin: "twilio" | "hosted";
  beta: boolean;
}

export interface TwilioFakeService {
  sid: string;
  friendly_name: string;
  /** E.164 numbers of the sender pool (they must be numbers of the account). */
  senders: string[];
  status_callback: string;
  inbound_request_url: string;
  inbound_method: "GET" | "POST";
}

export interface TwilioFakeAccount {
  sid: string;
  auth_token: string;
  friendly_name: string;
  /** "suspended": sends are accepted, then fail with 30002 on /__fake/advance. */
  status: "active" | "suspended";
  /** "Trial": only `verified_numbers` may be sent to (else 21608). */
  type: "Full" | "Trial";
  api_keys: Array<{ sid: string; secret: string }>;
  /** Decimal string, e.g. "25.00". Sends are charged when they reach `sent`. */
  balance: string;
  currency: string;
  numbers: TwilioFakeNumber[];
  services: TwilioFakeService[];
  verified_numbers: string[];
  /** Numbers that replied STOP to every sender of the account (21610). */
  stop_list: string[];
  /** `To` prefixes outside the Geo Permissions (21408), e.g. "+86". */
  disabled_prefixes: string[];
}

export type TwilioFakeAccountInput =
  & Partial<Omit<TwilioFakeAccount, "numbers" | "services">>
  & {
    sid: string;
    auth_token: string;
    numbers?: Array<Partial<TwilioFakeNumber> & { phone_number: string }>;
    services?: Array<Partial<TwilioFakeService> & { sid: string }>;
  };

export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

export interface TwilioFakeOptions {
  port?: number;
  host?: string;
  /** Replaces the default accounts (TWILIO_FAKE_ACCOUNT and TWILIO_FAKE_OTHER_ACCOUNT). */
  accounts?: TwilioFakeAccountInput[];
  /** USD per SMS segment, charged at `sent` (default "0.0079"). */
  pricePerSegment?: string;
  /** In-flight API requests allowed per account before 429/20429 (default 100). */
  maxConcurrent?: number;
  /** Optional fixed-window limit per account (default none: Twilio publishes no per-endpoint limit). */
  rateLimit?: RateLimit | null;
  /** Numbers that are landlines (21614). */
  landlines?: string[];
  /** SendAt must be more than this many seconds ahead (default 300; older docs said 900). */
  scheduleMinSeconds?: number;
  /** Parameters added to every webhook, standing for ones Twilio adds without notice. */
  extraParams?: Record<string, string>;
  /**
   * Public origin → local origin, like a TLS-terminating proxy: a webhook to
   * https://hooks.example.test/x is signed for that URL but delivered to the local origin with
   * `Host: hooks.example.test` and `X-Forwarded-Proto: https`.
   */
  webhookRoutes?: Record<string, string>;
}

/** How a webhook is signed: correctly, or one of the fault modes. */
export type SignatureMode =
  | "valid"
  /** HMAC keyed with a token that is not the account's. */
  | "wrong_token"
  /** Signs the URL with http:// and https:// swapped (Twilio called https, the app behind a proxy sees http). */
  | "swap_scheme"
  /** Signs the URL with the scheme's default port (:443/:80) added; the URL must have no port. */
  | "add_port"
  /** JSON format only: the bodySHA256 in the URL is not the hash of the body posted. */
  | "body_mismatch"
  /** No X-Twilio-Signature header. */
  | "missing";

export interface TwilioFakeMessage {
  sid: string;
  account_sid: string;
  messaging_service_sid: string | null;
  /** Null while a Messaging Service has not picked the sender yet (status accepted). */
  from: string | null;
  to: string;
  body: string;
  status: TwilioMessageStatus;
  direction: "outbound-api" | "outbound-reply" | "inbound";
  channel: "sms" | "whatsapp";
  /** Real segment count (the resource shows "0" while a Messaging Service holds it). */
  segments: number;
  encoding: "GSM-7" | "UCS-2";
  num_segments: string;
  num_media: string;
  media_urls: string[];
  content_sid: string | null;
  content_variables: string | null;
  status_callback: string | null;
  validity_period: number | null;
  send_at: number | null;
  price: string | null;
  price_unit: string;
  error_code: number | null;
  error_message: string | null;
  /** Epoch ms. */
  date_created: number;
  date_updated: number;
  date_sent: number | null;
  /** The failure /__fake/advance will end in (63016 outside the WhatsApp window, 30002 suspended). */
  pending_failure: { code: number; message: string } | null;
  /** For API sends: the request exactly as received. */
  request: {
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
    raw_body: string;
    params: Record<string, string | string[]>;
  } | null;
}

export interface TwilioFakeFault {
  /**
   * latency/slow: handled normally (a send is recorded), answered after delay_ms.
   * timeout: never answered, not handled. drop: connection closed, not handled.
   * reset: handled (a send is recorded), then the connection is reset without an answer.
   * http500/http503: error body; with commit the request is handled first. http429: 429/20429.
   */
  mode: "latency" | "slow" | "timeout" | "drop" | "reset" | "http500" | "http503" | "http429";
  /** Full path, or a suffix such as "/Messages.json"; omitted → every API path. */
  path?: string;
  method?: string;
  /** How many matching requests to hit (default 1). */
  count?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
  delay_ms?: number;
  commit?: boolean;
}

export interface TwilioPushRecord {
  id: number;
  kind: "status" | "inbound";
  message_sid: string;
  /** MessageStatus of a status callback. */
  event?: string;
  /** The URL requested (with bodySHA256 for JSON, with the query for GET). */
  url: string;
  /** Where the request actually went (after webhook_routes). */
  delivered_to: string;
  /** The URL the signature was computed over (differs from `url` only in fault modes). */
  signed_url: string;
  method: "GET" | "POST";
  format: "form" | "json";
  signature_mode: SignatureMode;
  headers: Record<string, string>;
  body: string;
  params: Record<string, string>;
  idempotency_token: string;
  /** 1 for the first try; 2+ for retries under the #rc/#rp connection overrides. */
  attempt: number;
  duplicate: boolean;
  redelivery: boolean;
  response_status?: number;
  response_content_type?: string;
  response_body?: string;
  error?: string;
  /** Inbound only: whether the answer was TwiML (Twilio's debugger logs 11200 otherwise). */
  twiml?: { valid: boolean; error_code: number | null; detail: string | null; messages: string[]; reply_sids: string[] };
  at: number;
}

export interface AdvanceRequest {
  sid?: string;
  sids?: string[];
  to?: TwilioMessageStatus;
  error_code?: number;
  order?: "forward" | "reverse";
  duplicate?: number;
  signature?: SignatureMode;
  format?: "form" | "json";
  url?: string;
}

export interface InboundRequest {
  from: string;
  to: string;
  body?: string;
  media?: Array<string | { url: string; content_type?: string }>;
  profile_name?: string;
  url?: string;
  method?: "GET" | "POST";
  signature?: SignatureMode;
  format?: "form" | "json";
  duplicate?: number;
  /** Epoch ms or ISO string: backdates the message (and the WhatsApp window). */
  received_at?: number | string;
}

type Json = Record<string, unknown>;
type Result = { status: number; body: unknown; headers?: Record<string, string> };

export interface TwilioFake {
  /** Origin standing for https://api.twilio.com, e.g. http://127.0.0.1:54321 */
  url: string;
  /** `${url}/2010-04-01` */
  apiBase: string;
  port: number;
  /** Every message, in creation order (same objects as GET /__fake/messages). */
  messages: TwilioFakeMessage[];
  pushes: TwilioPushRecord[];
  requestCounts(): Record<string, number>;
  addFault(fault: TwilioFakeFault): void;
  advance(request: AdvanceRequest): Promise<Result>;
  inbound(request: InboundRequest): Promise<Result>;
  /** A snapshot of an account's state (balance included). */
  account(sid: string): TwilioFakeAccount | undefined;
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Signatures (pure helpers)
// ---------------------------------------------------------------------------

/**
 * X-Twilio-Signature: Base64(HMAC-SHA1(authToken, url + concatenated sorted name+value pairs)).
 * Names are sorted by code unit; a repeated name contributes each of its values, sorted.
 * For a JSON-body webhook pass the URL carrying bodySHA256 and no params.
 */
export function twilioSignature(authToken: string, url: string, params: Record<string, string | string[]> = {}): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    for (const v of Array.isArray(value) ? [...value].sort() : [value]) data += name + v;
  }
  return createHmac("sha1", authToken).update(Buffer.from(data, "utf8")).digest("base64");
}

/** Hex SHA-256 of a raw body, as carried in the bodySHA256 query parameter. */
export function twilioBodySha256(body: string): string {
  return createHash("sha256").update(Buffer.from(body, "utf8")).digest("hex");
}

// ---------------------------------------------------------------------------
// SMS segments (GSM-7 160/153, UCS-2 70/67; a character is never split across segments)
// ---------------------------------------------------------------------------

const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED = "\f^{}\\[~]|€";
const GSM_BASIC_SET = new Set(Array.from(GSM_BASIC));
const GSM_EXTENDED_SET = new Set(Array.from(GSM_EXTENDED));

export function twilioSegments(body: string): { encoding: "GSM-7" | "UCS-2"; segments: number; units: number } {
  const chars = Array.from(body);
  const gsm = chars.every((c) => GSM_BASIC_SET.has(c) || GSM_EXTENDED_SET.has(c));
  const cost = (c: string) => (gsm ? (GSM_EXTENDED_SET.has(c) ? 2 : 1) : c.length);
  const units = chars.reduce((sum, c) => sum + cost(c), 0);
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  if (units === 0) return { encoding: gsm ? "GSM-7" : "UCS-2", segments: 0, units };
  if (units <= single) return { encoding: gsm ? "GSM-7" : "UCS-2", segments: 1, units };
  let segments = 1;
  let used = 0;
  for (const c of chars) {
    const n = cost(c);
    if (used + n > multi) {
      segments++;
      used = 0;
    }
    used += n;
  }
  return { encoding: gsm ? "GSM-7" : "UCS-2", segments, units };
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_PUSH_LOG = 1000;
const PUSH_CONCURRENCY = 16;
const MAX_RESPONSE_CAPTURE = 64 * 1024;
const DAY_MS = 86_400_000;
const WHATSAPP_WINDOW_MS = DAY_MS;
const MONEY_SCALE = 100_000; // prices have 5 decimals
const OPT_OUT = new Set(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]);
const OPT_IN = new Set(["START", "YES", "UNSTOP"]);
const FINAL: ReadonlySet<string> = new Set(["undelivered", "failed", "canceled", "read", "received"]);
const CHAIN: TwilioMessageStatus[] = ["accepted", "queued", "sending", "sent", "delivered", "read"];

const ERROR_TEXT: Record<number, string> = {
  30001: "Queue overflow",
  30002: "Account suspended",
  30003: "Unreachable destination handset",
  30004: "Message blocked",
  30005: "Unknown destination handset",
  30006: "Landline or unreachable carrier",
  30007: "Message filtered",
  30008: "Unknown error",
  30034: "Message from an unregistered number",
  63016:
    "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.",
};

const moreInfo = (code: number) => `https://www.twilio.com/docs/errors/${code}`;
const twilioError = (status: number, code: number, message: string): Result => ({
  status,
  body: { code, message, more_info: moreInfo(code), status },
});
const BODY_429 = twilioError(429, 20429, "Too Many Requests");

/** RFC 2822 in GMT, as the 2010 API writes dates: "Thu, 24 Aug 2023 05:01:45 +0000". */
const rfc2822 = (ms: number) => new Date(ms).toUTCString().replace("GMT", "+0000");

const toUnits = (amount: string | number) => Math.round(Number(amount) * MONEY_SCALE);
function formatMoney(units: number): string {
  const fixed = (units / MONEY_SCALE).toFixed(5);
  return fixed.replace(/(\.\d\d\d*?)0+$/, "$1");
}

function xmlEscape(s: string) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
function xmlUnescape(s: string) {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&amp;/g, "&");
}

function defaultAccounts(): TwilioFakeAccountInput[] {
  const n = TWILIO_FAKE_NUMBERS;
  const all = { voice: true, sms: true, mms: true, fax: false };
  return [
    {
      sid: TWILIO_FAKE_ACCOUNT,
      auth_token: TWILIO_FAKE_AUTH_TOKEN,
      friendly_name: "Switchboard fake (main)",
      api_keys: [{ sid: TWILIO_FAKE_API_KEY, secret: TWILIO_FAKE_API_SECRET }],
      balance: "25.00",
      numbers: [
        { phone_number: n.primary, capabilities: all },
        { phone_number: n.secondary, capabilities: all },
        { phone_number: n.voiceOnly, capabilities: { voice: true, sms: false, mms: false, fax: false } },
        { phone_number: n.uk, capabilities: { voice: true, sms: true, mms: false, fax: false } },
        { phone_number: n.whatsapp, capabilities: all, whatsapp: true },
      ],
      services: [{ sid: TWILIO_FAKE_SERVICE, friendly_name: "Switchboard fake service", senders: [n.primary, n.secondary, n.whatsapp] }],
    },
    {
      sid: TWILIO_FAKE_OTHER_ACCOUNT,
      auth_token: TWILIO_FAKE_OTHER_AUTH_TOKEN,
      friendly_name: "Switchboard fake (trial)",
      type: "Trial",
      balance: "5.00",
      numbers: [{ phone_number: TWILIO_FAKE_OTHER_NUMBER, capabilities: all }],
      verified_numbers: [TWILIO_FAKE_OTHER_VERIFIED],
    },
  ];
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

interface AccountState extends Omit<TwilioFakeAccount, "balance"> {
  balanceUnits: number;
  date_created: number;
  /** "sender|user" pairs opted out by an inbound STOP (sender "*" = every sender). */
  optOuts: Set<string>;
  numberCreated: Map<string, number>;
}

interface Config {
  maxConcurrent: number;
  rateLimit: RateLimit | null;
  landlines: Set<string>;
  priceUnits: number;
  scheduleMinSeconds: number;
  extraParams: Record<string, string>;
  webhookRoutes: Record<string, string>;
}

interface QueuedFault extends TwilioFakeFault {
  count: number;
  after: number;
}

interface PushSpec {
  kind: "status" | "inbound";
  account: AccountState;
  message_sid: string;
  event?: string;
  url: string;
  method: "GET" | "POST";
  format: "form" | "json";
  signature: SignatureMode;
  params: Record<string, string>;
  token: string;
}

/** A prepared HTTP request, kept so it can be redelivered verbatim. */
interface Prepared {
  spec: PushSpec;
  requestUrl: string;
  signedUrl: string;
  deliverTo: string;
  headers: Record<string, string>;
  body: string;
  overrides: { rc: number; rp: Set<string>; ct: number; rt: number; tt: number };
}

export async function startTwilioFake(options: TwilioFakeOptions = {}): Promise<TwilioFake> {
  const initialConfig = (): Config => ({
    maxConcurrent: options.maxConcurrent ?? 100,
    rateLimit: options.rateLimit ?? null,
    landlines: new Set(options.landlines ?? TWILIO_FAKE_LANDLINES),
    priceUnits: toUnits(options.pricePerSegment ?? "0.0079"),
    scheduleMinSeconds: options.scheduleMinSeconds ?? 300,
    extraParams: { ...(options.extraParams ?? { FakeFutureParam: "added-without-notice" }) },
    webhookRoutes: { ...(options.webhookRoutes ?? {}) },
  });

  const buildAccount = (a: TwilioFakeAccountInput, index: number): AccountState => {
    const now = Date.now();
    const numbers: TwilioFakeNumber[] = (a.numbers ?? []).map((n) => ({
      sid: n.sid ?? seededSid("PN", `${a.sid}:${n.phone_number}`),
      phone_number: n.phone_number,
      friendly_name: n.friendly_name ?? friendlyName(n.phone_number),
      capabilities: { voice: true, sms: true, mms: true, fax: false, ...(n.capabilities ?? {}) },
      whatsapp: n.whatsapp ?? false,
      sms_url: n.sms_url ?? "",
      sms_method: n.sms_method ?? "POST",
      sms_fallback_url: n.sms_fallback_url ?? "",
      status_callback: n.status_callback ?? "",
      voice_url: n.voice_url ?? "",
      origin: n.origin ?? "twilio",
      beta: n.beta ?? false,
    }));
    const services: TwilioFakeService[] = (a.services ?? []).map((s) => ({
      sid: s.sid,
      friendly_name: s.friendly_name ?? "Messaging Service",
      senders: [...(s.senders ?? [])],
      status_callback: s.status_callback ?? "",
      inbound_request_url: s.inbound_request_url ?? "",
      inbound_method: s.inbound_method ?? "POST",
    }));
    return {
      sid: a.sid,
      auth_token: a.auth_token,
      friendly_name: a.friendly_name ?? `Account ${index + 1}`,
      status: a.status ?? "active",
      type: a.type ?? "Full",
      api_keys: [...(a.api_keys ?? [])],
      balanceUnits: toUnits(a.balance ?? "25.00"),
      currency: a.currency ?? "USD",
      numbers,
      services,
      verified_numbers: [...(a.verified_numbers ?? [])],
      stop_list: [...(a.stop_list ?? [TWILIO_FAKE_STOPPED_NUMBER])],
      disabled_prefixes: [...(a.disabled_prefixes ?? TWILIO_FAKE_DISABLED_PREFIXES)],
      date_created: now - 30 * DAY_MS,
      optOuts: new Set(),
      numberCreated: new Map(numbers.map((n, i) => [n.sid, now - 20 * DAY_MS + i * 1000])),
    };
  };
  const initialAccounts = () => (options.accounts ?? defaultAccounts()).map(buildAccount);

  // --- state ---------------------------------------------------------------
  let accounts = initialAccounts();
  let config = initialConfig();
  const messages: TwilioFakeMessage[] = [];
  const bySid = new Map<string, TwilioFakeMessage>();
  const pushes: TwilioPushRecord[] = [];
  const prepared = new Map<number, Prepared>();
  let nextPushId = 1;
  const counts = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  const inFlight = new Map<string, number>();
  /** "account|sender|user" → last inbound WhatsApp message (ms). */
  const waWindows = new Map<string, number>();
  let faults: QueuedFault[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<Socket>();
  const lifetime = new AbortController();

  function reset() {
    accounts = initialAccounts();
    config = initialConfig();
    messages.length = 0;
    bySid.clear();
    pushes.length = 0;
    prepared.clear();
    counts.clear();
    windows.clear();
    waWindows.clear();
    faults = [];
    for (const t of timers) clearTimeout(t);
    timers.clear();
  }

  const accountBySid = (sid: string) => accounts.find((a) => a.sid === sid);

  function friendlyName(e164: string) {
    const parsed = parsePhoneNumberFromString(e164);
    return parsed && parsed.countryCallingCode === "1" ? parsed.formatNational() : e164;
  }

  // --- HTTP plumbing -------------------------------------------------------
  function reply(res: http.ServerResponse, result: Result, xml = false) {
    if (res.destroyed || res.headersSent) return;
    const headers: Record<string, string> = { "twilio-request-id": `RQ${randomBytes(16).toString("hex")}`, ...result.headers };
    if (result.status === 204) {
      res.writeHead(204, headers);
      res.end();
      return;
    }
    let text: string;
    if (xml && result.body && typeof result.body === "object" && "code" in result.body) {
      const b = result.body as { code: number; message: string; more_info: string; status: number };
      text = `<?xml version='1.0' encoding='UTF-8'?>\n<TwilioResponse><RestException><Code>${b.code}</Code><Message>${
        xmlEscape(b.message)
      }</Message><MoreInfo>${b.more_info}</MoreInfo><Status>${b.status}</Status></RestException></TwilioResponse>`;
      headers["content-type"] = "application/xml";
    } else {
      text = JSON.stringify(result.body);
      headers["content-type"] = "application/json";
    }
    headers["content-length"] = String(Buffer.byteLength(text));
    res.writeHead(result.status, headers);
    res.end(text);
  }

  /** Fixed window per account; true when the request is over the limit. */
  function overRateLimit(key: string): boolean {
    const limit = config.rateLimit;
    if (!limit) return false;
    const now = Date.now();
    let w = windows.get(key);
    if (!w || now - w.start >= limit.windowSeconds * 1000) {
      w = { start: now, count: 0 };
      windows.set(key, w);
    }
    w.count++;
    return w.count > limit.limit;
  }

  function authenticate(header: string | undefined): AccountState | string {
    if (!header || !/^Basic /i.test(header)) return "Authentication Error - No credentials provided";
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return "Authentication Error - invalid username";
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const account = username.startsWith("SK")
      ? accounts.find((a) => a.api_keys.some((k) => k.sid === username && k.secret === password))
      : accounts.find((a) => a.sid === username && a.auth_token === password);
    return account ?? "Authentication Error - invalid username";
  }

  function takeFault(method: string, path: string): QueuedFault | undefined {
    for (const fault of faults) {
      if (fault.method && fault.method.toUpperCase() !== method) continue;
      if (fault.path && path !== fault.path && !path.endsWith(fault.path)) continue;
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

  function addFault(f: TwilioFakeFault) {
    const modes = ["latency", "slow", "timeout", "drop", "reset", "http500", "http503", "http429"];
    if (!modes.includes(f.mode)) throw new Error(`unknown fault mode ${String(f.mode)}`);
    faults.push({ ...f, count: f.count ?? 1, after: f.after ?? 0, delay_ms: f.delay_ms ?? 1000 });
  }

  // --- params --------------------------------------------------------------
  class Params {
    constructor(readonly map: Map<string, string[]>) {}
    static parse(text: string) {
      const map = new Map<string, string[]>();
      for (const [k, v] of new URLSearchParams(text)) map.set(k, [...(map.get(k) ?? []), v]);
      return new Params(map);
    }
    has(name: string) {
      return this.map.has(name);
    }
    get(name: string): string | undefined {
      return this.map.get(name)?.[0];
    }
    all(name: string): string[] {
      return this.map.get(name) ?? [];
    }
    toJson(): Record<string, string | string[]> {
      return Object.fromEntries([...this.map].map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
    }
  }

  // --- numbers -------------------------------------------------------------
  const countryCache = new Map<string, string | null>();
  /** ISO-2 country of a valid E.164 number, "" if valid but unassigned, null if invalid. */
  function e164Country(n: string): string | null {
    if (!/^\+[1-9]\d{1,14}$/.test(n)) return null;
    let country = countryCache.get(n);
    if (country === undefined) {
      const parsed = parsePhoneNumberFromString(n);
      country = parsed && parsed.isValid() && parsed.number === n ? parsed.country ?? "" : null;
      if (countryCache.size > 200_000) countryCache.clear();
      countryCache.set(n, country);
    }
    return country;
  }

  const stripWa = (address: string) => address.replace(/^whatsapp:/, "");
  const ownNumber = (account: AccountState, e164: string) => account.numbers.find((n) => n.phone_number === e164);

  function optedOut(account: AccountState, senders: string[], user: string) {
    if (account.stop_list.includes(user)) return true;
    if (account.optOuts.has(`*|${user}`)) return true;
    return senders.some((s) => account.optOuts.has(`${s}|${user}`));
  }

  /** A Messaging Service's sender for a channel. */
  function poolSender(account: AccountState, service: TwilioFakeService, channel: "sms" | "whatsapp") {
    for (const e164 of service.senders) {
      const n = ownNumber(account, e164);
      if (!n) continue;
      if (channel === "whatsapp" ? n.whatsapp : n.capabilities.sms) return n;
    }
    return undefined;
  }

  // --- resources -----------------------------------------------------------
  const accountPath = (sid: string) => `/${API_VERSION}/Accounts/${sid}`;

  function messageResource(m: TwilioFakeMessage): Json {
    const base = `${accountPath(m.account_sid)}/Messages/${m.sid}`;
    return {
      account_sid: m.account_sid,
      api_version: API_VERSION,
      body: m.body,
      date_created: rfc2822(m.date_created),
      date_sent: m.date_sent === null ? null : rfc2822(m.date_sent),
      date_updated: rfc2822(m.date_updated),
      direction: m.direction,
      error_code: m.error_code,
      error_message: m.error_message,
      from: m.from,
      messaging_service_sid: m.messaging_service_sid,
      num_media: m.num_media,
      num_segments: m.num_segments,
      price: m.price,
      price_unit: m.price_unit,
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `${base}/Media.json`, feedback: `${base}/Feedback.json` },
      to: m.to,
      uri: `${base}.json`,
    };
  }

  function numberResource(account: AccountState, n: TwilioFakeNumber): Json {
    const created = account.numberCreated.get(n.sid) ?? account.date_created;
    const uri = `${accountPath(account.sid)}/IncomingPhoneNumbers/${n.sid}.json`;
    return {
      account_sid: account.sid,
      address_requirements: "none",
      address_sid: null,
      api_version: API_VERSION,
      beta: n.beta,
      bundle_sid: null,
      capabilities: { ...n.capabilities },
      date_created: rfc2822(created),
      date_updated: rfc2822(created),
      emergency_address_sid: null,
      emergency_address_status: "unregistered",
      emergency_status: "Inactive",
      friendly_name: n.friendly_name,
      identity_sid: null,
      origin: n.origin,
      phone_number: n.phone_number,
      sid: n.sid,
      sms_application_sid: "",
      sms_fallback_method: "POST",
      sms_fallback_url: n.sms_fallback_url,
      sms_method: n.sms_method,
      sms_url: n.sms_url,
      status: "in-use",
      status_callback: n.status_callback,
      status_callback_method: "POST",
      subresource_uris: { assigned_add_ons: uri.replace(/\.json$/, "/AssignedAddOns.json") },
      trunk_sid: null,
      uri,
      voice_application_sid: "",
      voice_caller_id_lookup: false,
      voice_fallback_method: "POST",
      voice_fallback_url: "",
      voice_method: "POST",
      voice_receive_mode: "voice",
      voice_url: n.voice_url,
    };
  }

  function accountResource(a: AccountState): Json {
    const base = accountPath(a.sid);
    return {
      auth_token: a.auth_token,
      date_created: rfc2822(a.date_created),
      date_updated: rfc2822(a.date_created),
      friendly_name: a.friendly_name,
      owner_account_sid: a.sid,
      sid: a.sid,
      status: a.status,
      subresource_uris: {
        balance: `${base}/Balance.json`,
        incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json`,
        messages: `${base}/Messages.json`,
      },
      type: a.type,
      uri: `${base}.json`,
    };
  }

  function snapshot(a: AccountState): TwilioFakeAccount {
    const { balanceUnits, date_created: _c, optOuts: _o, numberCreated: _n, ...rest } = a;
    return structuredClone({ ...rest, balance: formatMoney(balanceUnits) });
  }

  /** The 2010 API page envelope; PageToken "PA<sid>" continues after that item. */
  function paginate<T extends { sid: string }>(items: T[], url: URL, key: string, render: (item: T) => Json): Json {
    const q = url.searchParams;
    const pageSize = Math.min(1000, Math.max(1, Number.parseInt(q.get("PageSize") ?? "50", 10) || 50));
    const page = Math.max(0, Number.parseInt(q.get("Page") ?? "0", 10) || 0);
    const token = q.get("PageToken") ?? "";
    let start = page * pageSize;
    if (/^PA/.test(token)) {
      const i = items.findIndex((it) => it.sid === token.slice(2));
      start = i < 0 ? items.length : i + 1;
    } else if (/^PB/.test(token)) {
      const i = items.findIndex((it) => it.sid === token.slice(2));
      start = Math.max(0, (i < 0 ? 0 : i) - pageSize);
    }
    const slice = items.slice(start, start + pageSize);
    const filters = new URLSearchParams();
    for (const [k, v] of q) if (!["Page", "PageSize", "PageToken"].includes(k)) filters.append(k, v);
    const pageUri = (p: number, tok?: string) => {
      const s = new URLSearchParams(filters);
      s.set("PageSize", String(pageSize));
      s.set("Page", String(p));
      if (tok) s.set("PageToken", tok);
      return `${url.pathname}?${s.toString()}`;
    };
    const hasNext = start + slice.length < items.length && slice.length > 0;
    return {
      [key]: slice.map(render),
      end: slice.length ? start + slice.length - 1 : start,
      first_page_uri: pageUri(0),
      next_page_uri: hasNext ? pageUri(page + 1, `PA${slice[slice.length - 1].sid}`) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 && slice.length ? pageUri(page - 1, `PB${slice[0].sid}`) : null,
      start,
      uri: pageUri(page, token || undefined),
    };
  }

  // --- sends ---------------------------------------------------------------
  function validUrl(value: string) {
    if (value.length > 4000) return false;
    try {
      const u = new URL(value);
      return /^https?:$/.test(u.protocol) && !u.hostname.includes("_") && u.hostname.length > 0;
    } catch {
      return false;
    }
  }

  function createMessage(account: AccountState, p: Params, req: http.IncomingMessage, raw: string, url: URL): Result {
    const bad = (code: number, message: string) => twilioError(400, code, message);
    const to = p.get("To") ?? "";
    const fromParam = p.get("From") ?? "";
    const serviceSid = p.get("MessagingServiceSid") || (fromParam.startsWith("MG") ? fromParam : "");
    const from = fromParam.startsWith("MG") ? "" : fromParam;
    const body = p.get("Body") ?? "";
    const media = p.all("MediaUrl").filter((m) => m !== "");
    const contentSid = p.get("ContentSid") ?? "";
    const contentVariables = p.get("ContentVariables") ?? "";
    const statusCallback = p.get("StatusCallback") ?? "";
    const validity = p.get("ValidityPeriod");
    const scheduleType = p.get("ScheduleType");
    const sendAtParam = p.get("SendAt");

    if (!to) return bad(21604, "A 'To' phone number is required.");
    if (!from && !serviceSid) return bad(21603, "A 'From' phone number is required.");
    if (!body && media.length === 0 && !contentSid) return bad(21602, "Message body is required.");
    if (Array.from(body).length > 1600) return bad(21617, "The concatenated message body exceeds the 1600 character limit.");
    if (media.length > 10) return bad(21623, "The number of media files exceeds the allowed limit of 10.");
    const badMedia = media.filter((m) => !validUrl(m));
    if (badMedia.length) return bad(21620, `Media urls: ${badMedia.join(",")} are invalid. Please use only valid http and https urls`);
    if (contentSid && !/^HX[0-9a-fA-F]{32}$/.test(contentSid)) return bad(21655, "The ContentSid is Invalid.");
    if (contentVariables) {
      let ok = false;
      try {
        const v = JSON.parse(contentVariables);
        ok = !!v && typeof v === "object" && !Array.isArray(v);
      } catch {
        ok = false;
      }
      if (!ok) return bad(21656, "The ContentVariables Parameter is invalid.");
    }
    let validityPeriod: number | null = null;
    if (validity !== undefined) {
      validityPeriod = /^\d+$/.test(validity) ? Number(validity) : NaN;
      if (!(validityPeriod >= 1 && validityPeriod <= 36_000)) {
        return bad(21624, "Validity period can only be set to integers between 1 and 36,000 seconds.");
      }
    }
    if (statusCallback && !validUrl(statusCallback)) return bad(21609, `The StatusCallback URL ${statusCallback} is not a valid URL.`);

    // Scheduling (a Messaging Service is required; SendAt without ScheduleType is ignored).
    const now = Date.now();
    let sendAt: number | null = null;
    if (scheduleType !== undefined) {
      if (scheduleType !== "fixed") return bad(35126, "The ScheduleType value provided is not supported.");
      if (!sendAtParam) return bad(35111, "SendAt timestamp is missing.");
      if (!serviceSid) return bad(35118, "MessagingServiceSid is required to schedule a message.");
      const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(sendAtParam);
      const t = iso ? Date.parse(sendAtParam) : NaN;
      if (Number.isNaN(t)) return bad(35114, "Scheduling does not support this timestamp.");
      if (t - now <= config.scheduleMinSeconds * 1000) {
        return bad(35114, `SendAt time must be more than ${config.scheduleMinSeconds} seconds in the future.`);
      }
      if (t - now > 35 * DAY_MS) return bad(35115, "SendAt time must be at most 35 days in the future.");
      sendAt = t;
    }

    // Addresses.
    const toWa = to.startsWith("whatsapp:");
    const toNumber = stripWa(to);
    const country = e164Country(toNumber);
    if (country === null) return bad(21211, `The 'To' number ${to} is not a valid phone number.`);
    const channel: "sms" | "whatsapp" = toWa ? "whatsapp" : "sms";
    let sender: TwilioFakeNumber | undefined;
    if (from) {
      if (from.startsWith("whatsapp:") !== toWa) {
        return bad(21612, `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number: ${from} via ${channel === "whatsapp" ? "WhatsApp" : "SMS"}.`);
      }
      sender = ownNumber(account, stripWa(from));
      if (toWa && !sender?.whatsapp) return bad(63007, "Twilio could not find a Channel with the specified From address");
      if (!toWa && !sender?.capabilities.sms) {
        return bad(21606, `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`);
      }
    }
    let service: TwilioFakeService | undefined;
    if (serviceSid) {
      if (!/^MG[0-9a-fA-F]{32}$/.test(serviceSid)) return bad(21705, "The Messaging Service Sid is invalid.");
      service = account.services.find((s) => s.sid === serviceSid);
      if (!service) return bad(21701, `The Messaging Service Sid ${serviceSid} is invalid.`);
      if (!sender) {
        sender = poolSender(account, service, channel);
        if (!sender) return bad(21703, "The Messaging Service contains no phone numbers able to send this message.");
      }
    }
    const senders = service && !from ? service.senders : [sender!.phone_number];
    if (!toWa && account.disabled_prefixes.some((prefix) => toNumber.startsWith(prefix))) {
      return bad(21408, `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${toNumber}.`);
    }
    if (account.type === "Trial" && !account.verified_numbers.includes(toNumber)) {
      return bad(21608, `The number ${toNumber} is unverified. Trial accounts cannot send messages to unverified numbers.`);
    }
    if (optedOut(account, senders, toNumber)) return bad(21610, "Attempt to send to unsubscribed recipient");
    if (!toWa && config.landlines.has(toNumber)) return bad(21614, `'To' number ${toNumber} is not a valid mobile number`);

    // Accepted.
    let pending: TwilioFakeMessage["pending_failure"] = null;
    if (account.status === "suspended") pending = { code: 30002, message: ERROR_TEXT[30002] };
    else if (toWa && !contentSid) {
      const last = waWindows.get(`${account.sid}|${sender!.phone_number}|${toNumber}`);
      if (last === undefined || now - last > WHATSAPP_WINDOW_MS) pending = { code: 63016, message: ERROR_TEXT[63016] };
    }
    const seg = twilioSegments(body);
    const segments = toWa || media.length ? 1 : Math.max(1, seg.segments);
    const status: TwilioMessageStatus = sendAt !== null ? "scheduled" : service ? "accepted" : "queued";
    const m: TwilioFakeMessage = {
      sid: `SM${randomBytes(16).toString("hex")}`,
      account_sid: account.sid,
      messaging_service_sid: service?.sid ?? null,
      from: from || null,
      to,
      body,
      status,
      direction: "outbound-api",
      channel,
      segments,
      encoding: seg.encoding,
      num_segments: service ? "0" : String(segments),
      num_media: String(media.length),
      media_urls: media,
      content_sid: contentSid || null,
      content_variables: contentVariables || null,
      status_callback: statusCallback || null,
      validity_period: validityPeriod,
      send_at: sendAt,
      price: null,
      price_unit: account.currency,
      error_code: null,
      error_message: null,
      date_created: now,
      date_updated: now,
      date_sent: null,
      pending_failure: pending,
      request: {
        method: req.method ?? "POST",
        path: url.pathname + url.search,
        headers: { ...req.headers },
        raw_body: raw,
        params: p.toJson(),
      },
    };
    messages.push(m);
    bySid.set(m.sid, m);
    return { status: 201, body: messageResource(m) };
  }

  function findMessage(account: AccountState, sid: string) {
    const m = bySid.get(sid);
    return m && m.account_sid === account.sid ? m : undefined;
  }

  function updateMessage(account: AccountState, sid: string, p: Params, path: string): Result {
    const m = findMessage(account, sid);
    if (!m) return notFound(path);
    const statusParam = p.get("Status");
    if (statusParam !== undefined) {
      if (statusParam !== "canceled") return twilioError(400, 20001, `Invalid Status: ${statusParam}`);
      if (m.status !== "scheduled") return twilioError(400, 30409, "This message cannot be canceled");
      m.status = "canceled";
      m.date_updated = Date.now();
    }
    if (p.has("Body")) {
      if (p.get("Body") !== "") return twilioError(400, 20001, "Body can only be updated to an empty string (redaction).");
      m.body = "";
      m.date_updated = Date.now();
    }
    return { status: 200, body: messageResource(m) };
  }

  // --- lists ---------------------------------------------------------------
  /** DateSent filter bound: a date-only value is midnight UTC of that day. */
  function parseDateFilter(value: string): number | null {
    const t = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : Date.parse(value);
    return Number.isNaN(t) ? null : t;
  }

  function listMessages(account: AccountState, url: URL): Result {
    const q = url.searchParams;
    const to = q.get("To");
    const from = q.get("From");
    const on = q.get("DateSent");
    const before = q.get("DateSent<");
    const after = q.get("DateSent>");
    const bounds = { on: on ? parseDateFilter(on) : null, before: before ? parseDateFilter(before) : null, after: after ? parseDateFilter(after) : null };
    if ((on && bounds.on === null) || (before && bounds.before === null) || (after && bounds.after === null)) {
      return twilioError(400, 20001, "Invalid DateSent filter: use YYYY-MM-DD or an ISO-8601 date-time.");
    }
    const rows = messages
      .map((m, i) => ({ m, i }))
      .filter(({ m }) => m.account_sid === account.sid)
      .filter(({ m }) => (to === null || m.to === to) && (from === null || m.from === from))
      .filter(({ m }) => {
        const t = m.date_sent ?? m.date_created;
        if (bounds.on !== null) {
          const dayStart = Math.floor(bounds.on / DAY_MS) * DAY_MS;
          if (t < dayStart || t >= dayStart + DAY_MS) return false;
        }
        if (bounds.before !== null && t > bounds.before) return false;
        if (bounds.after !== null && t < bounds.after) return false;
        return true;
      })
      .sort((a, b) => b.m.date_created - a.m.date_created || b.i - a.i)
      .map(({ m }) => m);
    return { status: 200, body: paginate(rows, url, "messages", messageResource) };
  }

  function listNumbers(account: AccountState, url: URL): Result {
    const q = url.searchParams;
    const pattern = q.get("PhoneNumber");
    const friendly = q.get("FriendlyName");
    const origin = q.get("Origin");
    const beta = q.get("Beta");
    let re: RegExp | null = null;
    if (pattern !== null) {
      const digits = pattern.replace(/[^\d*]/g, "");
      re = new RegExp(digits.replace(/\*/g, "\\d"));
    }
    const rows = account.numbers.filter((n) =>
      (re === null || re.test(n.phone_number.slice(1))) &&
      (friendly === null || n.friendly_name === friendly) &&
      (origin === null || n.origin === origin) &&
      (beta !== "false" || !n.beta)
    );
    return { status: 200, body: paginate(rows, url, "incoming_phone_numbers", (n) => numberResource(account, n)) };
  }

  function updateNumber(account: AccountState, sid: string, p: Params, path: string): Result {
    const n = account.numbers.find((x) => x.sid === sid);
    if (!n) return notFound(path);
    const urlField = (name: string): string | Result => {
      const v = p.get(name) ?? "";
      if (v && !validUrl(v)) return twilioError(400, 21502, `${name} is not valid.`);
      return v;
    };
    for (const [param, key] of [["SmsUrl", "sms_url"], ["SmsFallbackUrl", "sms_fallback_url"], ["StatusCallback", "status_callback"], [
      "VoiceUrl",
      "voice_url",
    ]] as const) {
      if (!p.has(param)) continue;
      const v = urlField(param);
      if (typeof v !== "string") return v;
      n[key] = v;
    }
    if (p.has("SmsMethod")) {
      const method = (p.get("SmsMethod") ?? "").toUpperCase();
      if (method !== "GET" && method !== "POST") return twilioError(400, 21502, "SmsMethod must be GET or POST.");
      n.sms_method = method;
    }
    if (p.has("FriendlyName")) n.friendly_name = p.get("FriendlyName") ?? "";
    return { status: 200, body: numberResource(account, n) };
  }

  const notFound = (path: string) => twilioError(404, 20404, `The requested resource ${path} was not found`);

  // --- webhooks ------------------------------------------------------------
  function parseOverrides(fragment: string) {
    const o = { rc: 1, rp: new Set(["ct"]), ct: 5000, rt: 15_000, tt: 15_000 };
    const f = new URLSearchParams(fragment);
    const int = (k: string, min: number, max: number) => {
      const v = Number.parseInt(f.get(k) ?? "", 10);
      return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : undefined;
    };
    o.rc = int("rc", 0, 5) ?? o.rc;
    o.ct = int("ct", 100, 10_000) ?? o.ct;
    o.rt = int("rt", 100, 15_000) ?? o.rt;
    o.tt = int("tt", 100, 15_000) ?? o.tt;
    if (f.get("rp")) o.rp = new Set((f.get("rp") ?? "").split(",").map((s) => s.trim()));
    return o;
  }

  function withScheme(u: string, scheme: "http:" | "https:") {
    return u.replace(/^https?:/i, scheme);
  }

  function prepare(spec: PushSpec): Prepared | string {
    const hash = spec.url.indexOf("#");
    const target = hash < 0 ? spec.url : spec.url.slice(0, hash);
    const overrides = parseOverrides(hash < 0 ? "" : spec.url.slice(hash + 1));
    let parsed: URL;
    try {
      parsed = new URL(target);
      if (!/^https?:$/.test(parsed.protocol)) throw new Error();
    } catch {
      return `invalid webhook URL ${spec.url}`;
    }
    const sep = target.includes("?") ? "&" : "?";
    let requestUrl = target;
    let body = "";
    let signedParams: Record<string, string> = {};
    let contentType: string | undefined;
    if (spec.method === "GET") {
      requestUrl = target + sep + new URLSearchParams(spec.params).toString();
    } else if (spec.format === "json") {
      body = JSON.stringify(spec.params);
      const hashed = spec.signature === "body_mismatch" ? twilioBodySha256(`${body} `) : twilioBodySha256(body);
      requestUrl = `${target}${sep}bodySHA256=${hashed}`;
      contentType = "application/json";
    } else {
      body = new URLSearchParams(spec.params).toString();
      signedParams = spec.params;
      contentType = "application/x-www-form-urlencoded";
    }
    if (spec.signature === "body_mismatch" && spec.format !== "json") return "signature body_mismatch needs format json";
    let signedUrl = requestUrl;
    if (spec.signature === "swap_scheme") signedUrl = withScheme(requestUrl, parsed.protocol === "https:" ? "http:" : "https:");
    if (spec.signature === "add_port") {
      if (parsed.port) return "signature add_port needs a webhook URL without an explicit port (see webhook_routes)";
      const port = parsed.protocol === "https:" ? ":443" : ":80";
      signedUrl = requestUrl.replace(/^(https?:\/\/[^/?#]+)/i, `$1${port}`);
    }
    const token = spec.signature === "wrong_token" ? createHash("md5").update(`not-${spec.account.auth_token}`).digest("hex") : spec.account.auth_token;
    const headers: Record<string, string> = {
      accept: "*/*",
      "user-agent": "TwilioProxy/1.1",
      "i-twilio-idempotency-token": spec.token,
      "x-home-region": "us1",
    };
    if (contentType) headers["content-type"] = contentType;
    if (spec.signature !== "missing") headers["x-twilio-signature"] = twilioSignature(token, signedUrl, signedParams);

    // A TLS-terminating proxy in front of the receiver: deliver locally, keep the public Host.
    let deliverTo = requestUrl;
    for (const [pub, local] of Object.entries(config.webhookRoutes)) {
      const publicOrigin = new URL(pub).origin;
      if (parsed.origin === publicOrigin) {
        deliverTo = new URL(local).origin + requestUrl.replace(/^https?:\/\/[^/?#]+/i, "");
        headers.host = parsed.host;
        headers["x-forwarded-proto"] = parsed.protocol.replace(":", "");
        break;
      }
    }
    return { spec, requestUrl, signedUrl, deliverTo, headers, body, overrides };
  }

  interface Outcome {
    status?: number;
    contentType?: string;
    body?: string;
    error?: string;
    failure?: "ct" | "rt";
  }

  function httpSend(p: Prepared): Promise<Outcome> {
    return new Promise((resolve) => {
      const target = new URL(p.deliverTo);
      const mod = target.protocol === "https:" ? https : http;
      const signal = AbortSignal.any([lifetime.signal, AbortSignal.timeout(p.overrides.tt)]);
      const headers: Record<string, string> = { ...p.headers };
      if (p.spec.method === "POST") headers["content-length"] = String(Buffer.byteLength(p.body));
      let connected = false;
      let settled = false;
      const done = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        resolve(o);
      };
      const req = mod.request(target, { method: p.spec.method, headers, agent: false, signal });
      const connectTimer = setTimeout(() => req.destroy(new Error("connect timeout")), p.overrides.ct);
      req.on("socket", (socket) => {
        const onConnect = () => {
          connected = true;
          clearTimeout(connectTimer);
          req.setTimeout(p.overrides.rt, () => req.destroy(new Error("read timeout")));
        };
        if (socket.connecting) socket.once("connect", onConnect);
        else onConnect();
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (size < MAX_RESPONSE_CAPTURE) chunks.push(c);
          size += c.length;
        });
        res.on("end", () =>
          done({
            status: res.statusCode,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString("utf8").slice(0, MAX_RESPONSE_CAPTURE),
          })
        );
        res.on("error", (e) => done({ status: res.statusCode, error: e.message, failure: "rt" }));
      });
      req.on("error", (e) => done({ error: e.message, failure: connected ? "rt" : "ct" }));
      req.end(p.spec.method === "POST" ? p.body : undefined);
    });
  }

  function retryable(o: Outcome, rp: Set<string>) {
    if (rp.has("all")) return o.failure !== undefined || (o.status ?? 0) >= 400;
    if (o.failure) return rp.has(o.failure);
    if (o.status && o.status >= 500) return rp.has("5xx");
    if (o.status && o.status >= 400) return rp.has("4xx");
    return false;
  }

  /** One delivery (with its retries); a record per attempt. */
  async function deliver(p: Prepared, flags: { duplicate: boolean; redelivery: boolean }): Promise<TwilioPushRecord[]> {
    const records: TwilioPushRecord[] = [];
    for (let attempt = 1; attempt <= 1 + p.overrides.rc && !lifetime.signal.aborted; attempt++) {
      const outcome = await httpSend(p);
      const record: TwilioPushRecord = {
        id: nextPushId++,
        kind: p.spec.kind,
        message_sid: p.spec.message_sid,
        ...(p.spec.event ? { event: p.spec.event } : {}),
        url: p.requestUrl,
        delivered_to: p.deliverTo,
        signed_url: p.signedUrl,
        method: p.spec.method,
        format: p.spec.format,
        signature_mode: p.spec.signature,
        headers: { ...p.headers },
        body: p.body,
        params: { ...p.spec.params },
        idempotency_token: p.spec.token,
        attempt,
        duplicate: flags.duplicate,
        redelivery: flags.redelivery,
        at: Date.now(),
      };
      if (outcome.status !== undefined) record.response_status = outcome.status;
      if (outcome.contentType !== undefined) record.response_content_type = outcome.contentType;
      if (outcome.body !== undefined) record.response_body = outcome.body;
      if (outcome.error !== undefined) record.error = outcome.error;
      prepared.set(record.id, p);
      records.push(record);
      pushes.push(record);
      if (pushes.length > MAX_PUSH_LOG) {
        for (const old of pushes.splice(0, pushes.length - MAX_PUSH_LOG)) prepared.delete(old.id);
      }
      if (!retryable(outcome, p.overrides.rp)) break;
    }
    return records;
  }

  // --- status progression --------------------------------------------------
  /** The statuses a message passes through to reach `target` (excluding its current one). */
  function pathTo(m: TwilioFakeMessage, target: TwilioMessageStatus | undefined, errorCode?: number) {
    const current = m.status;
    if (FINAL.has(current) || (current === "delivered" && m.channel !== "whatsapp")) {
      return `message ${m.sid} is already ${current}`;
    }
    const start = current === "scheduled" ? CHAIN.indexOf("accepted") : CHAIN.indexOf(current);
    if (start < 0) return `message ${m.sid} is ${current}; it cannot advance`;
    const before = (s: TwilioMessageStatus) => CHAIN.slice(start + 1, CHAIN.indexOf(s) + 1);
    const failure = m.pending_failure;
    if (failure) {
      // A doomed send (63016 outside the WhatsApp window, 30002 suspended) fails whatever was asked.
      const steps: TwilioMessageStatus[] = start < CHAIN.indexOf("queued") ? ["queued"] : [];
      return { steps: [...steps, "failed" as TwilioMessageStatus], code: errorCode ?? failure.code };
    }
    switch (target) {
      case undefined:
        return { steps: [CHAIN[start + 1]].filter((s) => s !== "read" || m.channel === "whatsapp") as TwilioMessageStatus[] };
      case "queued":
      case "sending":
      case "sent":
      case "delivered":
      case "read": {
        if (target === "read" && m.channel !== "whatsapp") return "read is a WhatsApp status";
        if (CHAIN.indexOf(target) <= start) return `message ${m.sid} is ${current}; it cannot move back to ${target}`;
        return { steps: before(target) };
      }
      case "undelivered": {
        if (CHAIN.indexOf(current) > CHAIN.indexOf("sent")) return `message ${m.sid} is ${current}`;
        return { steps: [...before("sent"), "undelivered" as TwilioMessageStatus], code: errorCode ?? 30003 };
      }
      case "failed": {
        if (CHAIN.indexOf(current) >= CHAIN.indexOf("sent")) return `message ${m.sid} is ${current}; only queued or sending messages fail`;
        const steps = start < CHAIN.indexOf("queued") ? (["queued"] as TwilioMessageStatus[]) : [];
        return { steps: [...steps, "failed" as TwilioMessageStatus], code: errorCode ?? 30001 };
      }
      case "canceled":
        return "cancel with POST /2010-04-01/Accounts/{sid}/Messages/{sid}.json Status=canceled";
      default:
        return `cannot advance to ${String(target)}`;
    }
  }

  function applyStatus(m: TwilioFakeMessage, status: TwilioMessageStatus, code: number | undefined) {
    const account = accountBySid(m.account_sid)!;
    const now = Date.now();
    m.status = status;
    m.date_updated = now;
    if (status === "queued" && m.messaging_service_sid) {
      const service = account.services.find((s) => s.sid === m.messaging_service_sid);
      if (!m.from && service) {
        const sender = poolSender(account, service, m.channel);
        if (sender) m.from = m.channel === "whatsapp" ? `whatsapp:${sender.phone_number}` : sender.phone_number;
      }
      m.num_segments = String(m.segments);
    }
    if (status === "sent") {
      m.date_sent = now;
      const cost = m.segments * config.priceUnits;
      m.price = `-${(cost / MONEY_SCALE).toFixed(5)}`;
      account.balanceUnits -= cost;
    }
    if ((status === "failed" || status === "undelivered") && code !== undefined) {
      m.error_code = code;
      m.error_message = ERROR_TEXT[code] ?? "Unknown error";
    }
  }

  function rawDlrDoneDate(ms: number) {
    const d = new Date(ms);
    const two = (n: number) => String(n).padStart(2, "0");
    return `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;
  }

  function statusParams(m: TwilioFakeMessage, status: TwilioMessageStatus): Record<string, string> {
    const p: Record<string, string> = {
      AccountSid: m.account_sid,
      ApiVersion: API_VERSION,
      From: m.from ?? "",
      MessageSid: m.sid,
      MessageStatus: status,
      SmsSid: m.sid,
      SmsStatus: status,
      To: m.to,
    };
    if (m.messaging_service_sid) p.MessagingServiceSid = m.messaging_service_sid;
    if ((status === "failed" || status === "undelivered") && m.error_code !== null) {
      p.ErrorCode = String(m.error_code);
      p.ErrorMessage = m.error_message ?? "";
    }
    if (m.channel === "sms" && (status === "delivered" || status === "undelivered")) p.RawDlrDoneDate = rawDlrDoneDate(Date.now());
    if (m.channel === "whatsapp") {
      p.ChannelInstallSid = seededSid("XE", m.account_sid);
      p.ChannelPrefix = "whatsapp";
      p.ChannelToAddress = stripWa(m.to);
      if (status === "read") p.EventType = "READ";
      if (status === "delivered") p.EventType = "DELIVERED";
      if (status === "failed" || status === "undelivered") p.ChannelStatusMessage = m.error_message ?? "";
    }
    return { ...p, ...config.extraParams };
  }

  const SIGNATURES: SignatureMode[] = ["valid", "wrong_token", "swap_scheme", "add_port", "body_mismatch", "missing"];

  async function advance(r: AdvanceRequest): Promise<Result> {
    if (r.signature !== undefined && !SIGNATURES.includes(r.signature)) return { status: 400, body: { error: `unknown signature mode ${r.signature}` } };
    if (r.format !== undefined && r.format !== "form" && r.format !== "json") return { status: 400, body: { error: "format must be form or json" } };
    const single = typeof r.sid === "string";
    const targets = single
      ? [bySid.get(r.sid!)]
      : Array.isArray(r.sids)
      ? r.sids.map((s) => bySid.get(String(s)))
      : messages.filter((m) => m.direction !== "inbound" && !FINAL.has(m.status) && m.status !== "scheduled");
    if (targets.some((m) => !m)) return { status: 404, body: { error: "unknown message sid" } };
    const plans: Array<{ m: TwilioFakeMessage; steps: TwilioMessageStatus[]; code?: number }> = [];
    for (const m of targets as TwilioFakeMessage[]) {
      const plan = pathTo(m, r.to, r.error_code);
      if (typeof plan === "string") {
        if (single || Array.isArray(r.sids)) return { status: 409, body: { error: plan } };
        continue;
      }
      plans.push({ m, ...plan });
    }
    // Validate a custom URL and signature mode before changing any state.
    for (const { m } of plans) {
      const url = r.url ?? callbackUrl(m);
      if (!url) continue;
      const check = prepare({
        kind: "status",
        account: accountBySid(m.account_sid)!,
        message_sid: m.sid,
        url,
        method: "POST",
        format: r.format ?? "form",
        signature: r.signature ?? "valid",
        params: {},
        token: "",
      });
      if (typeof check === "string") return { status: 400, body: { error: check } };
    }
    const duplicate = Math.max(0, Math.min(10, Number(r.duplicate ?? 0) || 0));
    const jobs = plans.map(({ m, steps, code }) => async () => {
      const events: Prepared[] = [];
      for (const status of steps) {
        applyStatus(m, status, code);
        const url = r.url ?? callbackUrl(m);
        if (!url) continue;
        const p = prepare({
          kind: "status",
          account: accountBySid(m.account_sid)!,
          message_sid: m.sid,
          event: status,
          url,
          method: "POST",
          format: r.format ?? "form",
          signature: r.signature ?? "valid",
          params: statusParams(m, status),
          token: randomUUID(),
        });
        if (typeof p !== "string") events.push(p);
      }
      if (r.order === "reverse") events.reverse();
      const out: TwilioPushRecord[] = [];
      for (const p of events) {
        for (let i = 0; i <= duplicate; i++) out.push(...await deliver(p, { duplicate: i > 0, redelivery: false }));
      }
      return out;
    });
    const results = await runLimited(jobs, PUSH_CONCURRENCY);
    return {
      status: 200,
      body: { messages: plans.map(({ m }) => messageResource(m)), pushes: results.flat() },
    };
  }

  function callbackUrl(m: TwilioFakeMessage): string | null {
    if (m.status_callback) return m.status_callback;
    if (!m.messaging_service_sid) return null;
    const service = accountBySid(m.account_sid)?.services.find((s) => s.sid === m.messaging_service_sid);
    return service?.status_callback || null;
  }

  async function runLimited<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
    const results: T[] = new Array(jobs.length);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length && !lifetime.signal.aborted) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
    return results.filter((x) => x !== undefined);
  }

  // --- inbound -------------------------------------------------------------
  function contentTypeOf(url: string) {
    const ext = /\.([a-z0-9]+)(?:$|[?#])/i.exec(url)?.[1]?.toLowerCase() ?? "";
    const types: Record<string, string> = {
      jpg: "image/jpeg",
      jpeg: "image/jpeg",
      png: "image/png",
      gif: "image/gif",
      mp4: "video/mp4",
      pdf: "application/pdf",
      vcf: "text/vcard",
    };
    return types[ext] ?? "image/jpeg";
  }

  /** Whether a webhook answer is TwiML, and the <Message> replies it asks for. */
  function checkTwiml(o: Outcome): NonNullable<TwilioPushRecord["twiml"]> {
    const fail = (detail: string) => ({ valid: false, error_code: 11200, detail, messages: [], reply_sids: [] });
    if (o.status === undefined) return fail(`HTTP retrieval failure: ${o.error ?? "no response"}`);
    if (o.status < 200 || o.status >= 300) return fail(`HTTP retrieval failure: status ${o.status}`);
    const type = (o.contentType ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "text/xml" && type !== "application/xml") {
      return fail(`Content-Type ${type || "(none)"} is not TwiML (Twilio would also log 12300 Invalid Content-Type)`);
    }
    const text = (o.body ?? "").trim();
    const doc = /^(<\?xml[^>]*\?>\s*)?<Response(\s[^>]*)?(\/>|>([\s\S]*)<\/Response>)$/.exec(text);
    if (!doc) return fail("The answer is not a <Response> document (Twilio would also log 12100 Document parse failure)");
    const inner = doc[4] ?? "";
    const replies: string[] = [];
    for (const match of inner.matchAll(/<Message(?:\s[^>]*)?>([\s\S]*?)<\/Message>/g)) {
      const bodyTag = /<Body>([\s\S]*?)<\/Body>/.exec(match[1]);
      replies.push(xmlUnescape((bodyTag ? bodyTag[1] : match[1].replace(/<Media>[\s\S]*?<\/Media>/g, "")).trim()));
    }
    return { valid: true, error_code: null, detail: null, messages: replies, reply_sids: [] };
  }

  async function inbound(r: InboundRequest): Promise<Result> {
    const from = String(r.from ?? "");
    const to = String(r.to ?? "");
    if (!from || !to) return { status: 400, body: { error: "from and to are required" } };
    if (r.signature !== undefined && !SIGNATURES.includes(r.signature)) return { status: 400, body: { error: `unknown signature mode ${r.signature}` } };
    const wa = to.startsWith("whatsapp:");
    if (wa !== from.startsWith("whatsapp:")) return { status: 400, body: { error: "from and to must both have the whatsapp: prefix, or neither" } };
    const toNumber = stripWa(to);
    const userNumber = stripWa(from);
    let account: AccountState | undefined;
    let number: TwilioFakeNumber | undefined;
    for (const a of accounts) {
      number = ownNumber(a, toNumber);
      if (number) {
        account = a;
        break;
      }
    }
    if (!account || !number) return { status: 404, body: { error: `no account owns ${toNumber}` } };
    if (wa && !number.whatsapp) return { status: 400, body: { error: `${toNumber} is not a WhatsApp sender` } };
    const fromCountry = e164Country(userNumber);
    if (fromCountry === null) return { status: 400, body: { error: `${userNumber} is not a valid E.164 number` } };
    const body = String(r.body ?? "");
    const media = (r.media ?? []).map((x) => typeof x === "string" ? { url: x, content_type: contentTypeOf(x) } : { url: x.url, content_type: x.content_type ?? contentTypeOf(x.url) });
    const at = r.received_at === undefined ? Date.now() : typeof r.received_at === "number" ? r.received_at : Date.parse(r.received_at);
    if (Number.isNaN(at)) return { status: 400, body: { error: "received_at must be epoch ms or an ISO date" } };
    const service = account.services.find((s) => s.senders.includes(toNumber));

    // Twilio's default opt-out handling (SMS): STOP blocks this sender → user, START lifts it.
    const keyword = body.trim().toUpperCase();
    if (!wa && OPT_OUT.has(keyword)) account.optOuts.add(`${toNumber}|${userNumber}`);
    if (!wa && OPT_IN.has(keyword)) {
      account.optOuts.delete(`${toNumber}|${userNumber}`);
      account.optOuts.delete(`*|${userNumber}`);
    }
    if (wa) {
      const key = `${account.sid}|${toNumber}|${userNumber}`;
      waWindows.set(key, Math.max(waWindows.get(key) ?? 0, at));
    }

    const seg = twilioSegments(body);
    const m: TwilioFakeMessage = {
      sid: `SM${randomBytes(16).toString("hex")}`,
      account_sid: account.sid,
      messaging_service_sid: service?.sid ?? null,
      from,
      to,
      body,
      status: "received",
      direction: "inbound",
      channel: wa ? "whatsapp" : "sms",
      segments: Math.max(1, seg.segments),
      encoding: seg.encoding,
      num_segments: String(Math.max(1, seg.segments)),
      num_media: String(media.length),
      media_urls: media.map((x) => x.url),
      content_sid: null,
      content_variables: null,
      status_callback: null,
      validity_period: null,
      send_at: null,
      price: null,
      price_unit: account.currency,
      error_code: null,
      error_message: null,
      date_created: at,
      date_updated: at,
      date_sent: at,
      pending_failure: null,
      request: null,
    };
    messages.push(m);
    bySid.set(m.sid, m);

    const target = r.url ?? (number.sms_url || service?.inbound_request_url || "");
    if (!target) return { status: 200, body: { message: messageResource(m), pushes: [] } };
    const method = r.method ?? (r.url ? "POST" : number.sms_url ? number.sms_method : service?.inbound_method ?? "POST");
    const toCountry = e164Country(toNumber) ?? "";
    const params: Record<string, string> = {
      ToCountry: toCountry,
      ToState: "",
      SmsMessageSid: m.sid,
      NumMedia: String(media.length),
      ToCity: "",
      FromZip: "",
      SmsSid: m.sid,
      FromState: "",
      SmsStatus: "received",
      FromCity: "",
      Body: body,
      FromCountry: fromCountry,
      To: to,
      ToZip: "",
      NumSegments: m.num_segments,
      MessageSid: m.sid,
      AccountSid: account.sid,
      From: from,
      ApiVersion: API_VERSION,
    };
    if (service) params.MessagingServiceSid = service.sid;
    media.forEach((x, i) => {
      params[`MediaUrl${i}`] = x.url;
      params[`MediaContentType${i}`] = x.content_type;
    });
    if (wa) {
      params.ProfileName = r.profile_name ?? "Fake User";
      params.WaId = userNumber.slice(1);
      params.MessageType = media.length ? (media[0].content_type.split("/")[0] ?? "image") : "text";
    }
    Object.assign(params, config.extraParams);
    const prep = prepare({
      kind: "inbound",
      account,
      message_sid: m.sid,
      url: target,
      method,
      format: r.format ?? "form",
      signature: r.signature ?? "valid",
      params,
      token: randomUUID(),
    });
    if (typeof prep === "string") return { status: 400, body: { error: prep } };
    const duplicate = Math.max(0, Math.min(10, Number(r.duplicate ?? 0) || 0));
    const records: TwilioPushRecord[] = [];
    for (let i = 0; i <= duplicate; i++) records.push(...await deliver(prep, { duplicate: i > 0, redelivery: false }));
    for (const record of records) recordTwiml(record, account, m);
    return { status: 200, body: { message: messageResource(m), pushes: records } };
  }

  /** Checks the answer to an inbound webhook and sends the <Message> replies it asks for. */
  function recordTwiml(record: TwilioPushRecord, account: AccountState, inboundMessage: TwilioFakeMessage) {
    const twiml = checkTwiml({
      status: record.response_status,
      contentType: record.response_content_type,
      body: record.response_body,
      error: record.error,
    });
    for (const text of twiml.messages) {
      const seg = twilioSegments(text);
      const now = Date.now();
      const reply: TwilioFakeMessage = {
        ...inboundMessage,
        sid: `SM${randomBytes(16).toString("hex")}`,
        from: inboundMessage.to,
        to: inboundMessage.from!,
        body: text,
        status: "queued",
        direction: "outbound-reply",
        segments: Math.max(1, seg.segments),
        encoding: seg.encoding,
        num_segments: String(Math.max(1, seg.segments)),
        num_media: "0",
        media_urls: [],
        price_unit: account.currency,
        date_created: now,
        date_updated: now,
        date_sent: null,
      };
      messages.push(reply);
      bySid.set(reply.sid, reply);
      twiml.reply_sids.push(reply.sid);
    }
    record.twiml = twiml;
  }

  async function redeliver(p: Json): Promise<Result> {
    const id = Number(p.push_id);
    const original = pushes.find((x) => x.id === id);
    const prep = prepared.get(id);
    if (!original || !prep) return { status: 404, body: { error: "unknown push_id" } };
    const records = await deliver(prep, { duplicate: true, redelivery: true });
    if (original.kind === "inbound") {
      const m = bySid.get(original.message_sid);
      const account = m && accountBySid(m.account_sid);
      if (m && account) for (const r of records) recordTwiml(r, account, m);
    }
    return { status: 200, body: { pushes: records } };
  }

  // --- control -------------------------------------------------------------
  function controlAccount(p: Json): Result {
    const account = accountBySid(String(p.sid ?? ""));
    if (!account) return { status: 404, body: { error: "unknown account sid" } };
    if (typeof p.balance === "string" || typeof p.balance === "number") {
      if (!Number.isFinite(Number(p.balance))) return { status: 400, body: { error: "balance must be a number" } };
      account.balanceUnits = toUnits(p.balance);
    }
    if (p.status === "active" || p.status === "suspended") account.status = p.status;
    if (p.type === "Full" || p.type === "Trial") account.type = p.type;
    if (Array.isArray(p.verified_numbers)) account.verified_numbers = p.verified_numbers.map(String);
    if (Array.isArray(p.stop_list)) account.stop_list = p.stop_list.map(String);
    if (Array.isArray(p.disabled_prefixes)) account.disabled_prefixes = p.disabled_prefixes.map(String);
    return { status: 200, body: snapshot(account) };
  }

  function controlNumber(p: Json): Result {
    const e164 = String(p.phone_number ?? "");
    for (const account of accounts) {
      const n = ownNumber(account, e164);
      if (!n) continue;
      for (const k of ["sms_url", "status_callback", "friendly_name", "voice_url", "sms_fallback_url"] as const) {
        if (typeof p[k] === "string") n[k] = p[k] as string;
      }
      if (p.sms_method === "GET" || p.sms_method === "POST") n.sms_method = p.sms_method;
      if (typeof p.whatsapp === "boolean") n.whatsapp = p.whatsapp;
      if (p.capabilities && typeof p.capabilities === "object") {
        for (const k of ["voice", "sms", "mms", "fax"] as const) {
          const v = (p.capabilities as Json)[k];
          if (typeof v === "boolean") n.capabilities[k] = v;
        }
      }
      return { status: 200, body: numberResource(account, n) };
    }
    return { status: 404, body: { error: "unknown phone_number" } };
  }

  function controlService(p: Json): Result {
    for (const account of accounts) {
      const s = account.services.find((x) => x.sid === p.sid);
      if (!s) continue;
      if (typeof p.status_callback === "string") s.status_callback = p.status_callback;
      if (typeof p.inbound_request_url === "string") s.inbound_request_url = p.inbound_request_url;
      if (p.inbound_method === "GET" || p.inbound_method === "POST") s.inbound_method = p.inbound_method;
      if (Array.isArray(p.senders)) s.senders = p.senders.map(String);
      return { status: 200, body: { ...s } };
    }
    return { status: 404, body: { error: "unknown service sid" } };
  }

  function controlConfig(p: Json): Result {
    if (typeof p.max_concurrent === "number") config.maxConcurrent = p.max_concurrent;
    if (p.rate_limit === null) config.rateLimit = null;
    else if (p.rate_limit && typeof p.rate_limit === "object") config.rateLimit = p.rate_limit as RateLimit;
    if (Array.isArray(p.landlines)) config.landlines = new Set(p.landlines.map(String));
    if (typeof p.price_per_segment === "string" || typeof p.price_per_segment === "number") config.priceUnits = toUnits(p.price_per_segment);
    if (p.extra_params && typeof p.extra_params === "object") config.extraParams = { ...(p.extra_params as Record<string, string>) };
    if (p.webhook_routes && typeof p.webhook_routes === "object") config.webhookRoutes = { ...(p.webhook_routes as Record<string, string>) };
    if (typeof p.schedule_min_seconds === "number") config.scheduleMinSeconds = p.schedule_min_seconds;
    windows.clear();
    return {
      status: 200,
      body: { ...config, landlines: [...config.landlines], price_per_segment: formatMoney(config.priceUnits) },
    };
  }

  function controlMessages(): Json[] {
    return messages.map((m) => ({ ...messageResource(m), fake: m }));
  }

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    let p: Json = {};
    try {
      const parsed = raw ? JSON.parse(raw) : {};
      p = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return reply(res, { status: 400, body: { error: "invalid JSON" } });
    }
    const ok = (body: unknown): Result => ({ status: 200, body });
    let result: Result;
    switch (`${req.method} ${url.pathname}`) {
      case "GET /__fake/messages":
        result = ok({ messages: controlMessages() });
        break;
      case "GET /__fake/requests":
        result = ok({ requests: Object.fromEntries(counts) });
        break;
      case "GET /__fake/pushes":
        result = ok({ pushes });
        break;
      case "POST /__fake/reset":
        reset();
        result = ok({ ok: true });
        break;
      case "POST /__fake/faults":
        try {
          addFault(p as unknown as TwilioFakeFault);
          result = ok({ faults });
        } catch (error) {
          result = { status: 400, body: { error: (error as Error).message } };
        }
        break;
      case "GET /__fake/faults":
        result = ok({ faults });
        break;
      case "DELETE /__fake/faults":
        faults = [];
        result = ok({ faults });
        break;
      case "POST /__fake/advance":
        result = await advance(p as AdvanceRequest);
        break;
      case "POST /__fake/inbound":
        result = await inbound(p as unknown as InboundRequest);
        break;
      case "POST /__fake/redeliver":
        result = await redeliver(p);
        break;
      case "POST /__fake/accounts":
        result = controlAccount(p);
        break;
      case "POST /__fake/numbers":
        result = controlNumber(p);
        break;
      case "POST /__fake/services":
        result = controlService(p);
        break;
      case "POST /__fake/config":
        result = controlConfig(p);
        break;
      default:
        result = { status: 404, body: { error: "unknown control endpoint" } };
    }
    reply(res, result);
  }

  // --- API routing ---------------------------------------------------------
  type Handler = (account: AccountState, ctx: { params: Params; url: URL; match: RegExpMatchArray; req: http.IncomingMessage; raw: string }) => Result;
  const routes: Array<{ pattern: RegExp; methods: Record<string, Handler> }> = [
    { pattern: /^\.json$/, methods: { GET: (a) => ({ status: 200, body: accountResource(a) }) } },
    {
      pattern: /^\/Messages\.json$/,
      methods: {
        POST: (a, c) => createMessage(a, c.params, c.req, c.raw, c.url),
        GET: (a, c) => listMessages(a, c.url),
      },
    },
    {
      pattern: /^\/Messages\/([^/]+)\.json$/,
      methods: {
        GET: (a, c) => {
          const m = findMessage(a, c.match[1]);
          return m ? { status: 200, body: messageResource(m) } : notFound(c.url.pathname);
        },
        POST: (a, c) => updateMessage(a, c.match[1], c.params, c.url.pathname),
        DELETE: (a, c) => {
          const m = findMessage(a, c.match[1]);
          if (!m) return notFound(c.url.pathname);
          messages.splice(messages.indexOf(m), 1);
          bySid.delete(m.sid);
          return { status: 204, body: null };
        },
      },
    },
    { pattern: /^\/IncomingPhoneNumbers\.json$/, methods: { GET: (a, c) => listNumbers(a, c.url) } },
    {
      pattern: /^\/IncomingPhoneNumbers\/([^/]+)\.json$/,
      methods: {
        GET: (a, c) => {
          const n = a.numbers.find((x) => x.sid === c.match[1]);
          return n ? { status: 200, body: numberResource(a, n) } : notFound(c.url.pathname);
        },
        POST: (a, c) => updateNumber(a, c.match[1], c.params, c.url.pathname),
      },
    },
    {
      pattern: /^\/Balance\.json$/,
      methods: {
        GET: (a) => ({ status: 200, body: { account_sid: a.sid, balance: formatMoney(a.balanceUnits), currency: a.currency } }),
      },
    },
  ];

  function handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const method = (req.method ?? "GET").toUpperCase();
    const pathname = url.pathname;
    counts.set(`${method} ${pathname}`, (counts.get(`${method} ${pathname}`) ?? 0) + 1);
    const xml = pathname.startsWith(`/${API_VERSION}/`) && !pathname.endsWith(".json");

    const fault = takeFault(method, pathname);
    if (fault?.mode === "drop") return void req.socket.destroy();
    const accountMatch = /^\/2010-04-01\/Accounts\/([^/.]+)(.*)$/.exec(pathname);
    const flightKey = accountMatch?.[1] ?? "-";
    inFlight.set(flightKey, (inFlight.get(flightKey) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight.set(flightKey, (inFlight.get(flightKey) ?? 1) - 1);
    };
    res.once("close", release);
    if (fault?.mode === "timeout") {
      const socket = req.socket; // never answered; destroyed by the client or close()
      hanging.add(socket);
      socket.once("close", () => hanging.delete(socket));
      return;
    }
    if ((inFlight.get(flightKey) ?? 0) > config.maxConcurrent) return reply(res, BODY_429, xml);
    if (overRateLimit(flightKey)) return reply(res, BODY_429, xml);
    if (fault?.mode === "http429") return reply(res, BODY_429, xml);
    const errorFault = fault?.mode === "http500"
      ? twilioError(500, 20500, "An internal server error has occurred")
      : fault?.mode === "http503"
      ? twilioError(503, 20503, "Service Unavailable")
      : null;
    if (errorFault && !fault?.commit) return reply(res, errorFault, xml);

    if (!accountMatch) return reply(res, notFound(pathname), xml);
    const principal = authenticate(req.headers.authorization);
    if (typeof principal === "string") {
      return reply(res, { ...twilioError(401, 20003, principal), headers: { "www-authenticate": 'Basic realm="Twilio API"' } }, xml);
    }
    if (principal.sid !== accountMatch[1]) return reply(res, notFound(pathname), xml);
    const rest = accountMatch[2];
    let result: Result;
    const route = routes.find((r) => r.pattern.test(rest));
    if (xml) {
      result = notFound(pathname);
    } else if (!route) {
      result = notFound(pathname);
    } else if (!route.methods[method]) {
      result = twilioError(405, 20004, "Method not allowed");
    } else {
      const form = /^application\/x-www-form-urlencoded/i.test(String(req.headers["content-type"] ?? ""));
      const params = method === "GET" || method === "DELETE" ? Params.parse(url.search) : Params.parse(form ? raw : "");
      result = route.methods[method](principal, { params, url, match: rest.match(route.pattern)!, req, raw });
    }
    if (errorFault) return reply(res, errorFault, xml); // handled (committed), then failed
    if (fault?.mode === "reset") return void req.socket.destroy();
    if (fault?.mode === "latency" || fault?.mode === "slow") {
      const timer = setTimeout(() => {
        timers.delete(timer);
        reply(res, result, xml);
      }, fault.delay_ms ?? 1000);
      timers.add(timer);
      return;
    }
    reply(res, result, xml);
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
      if (tooLarge) return reply(res, twilioError(413, 20413, "Request entity too large"));
      const raw = Buffer.concat(chunks).toString("utf8");
      if (url.pathname.startsWith("/__fake/")) {
        handleControl(req, res, url, raw).catch((error) => reply(res, { status: 500, body: { error: String(error) } }));
        return;
      }
      try {
        handleApi(req, res, url, raw);
      } catch {
        reply(res, twilioError(500, 20500, "An internal server error has occurred"));
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
  const origin = `http://${host}:${port}`;

  return {
    url: origin,
    apiBase: `${origin}/${API_VERSION}`,
    port,
    messages,
    pushes,
    requestCounts: () => Object.fromEntries(counts),
    addFault,
    advance,
    inbound,
    account: (sid) => {
      const a = accountBySid(sid);
      return a ? snapshot(a) : undefined;
    },
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
