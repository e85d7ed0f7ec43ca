/**
 * A faithful Exotel fake: SMS v1 (Sms/send, Sms/bulksend, SMS details), click-to-call
 * (Calls/connect, call details), WhatsApp v2 messages, the ExoPhone list (v2_beta
 * IncomingPhoneNumbers) and Balance.json, with Exotel's wire formats, error envelopes,
 * rate limits and callbacks (https://developer.exotel.com/api/sms,
 * https://developer.exotel.com/api-console/voice, https://developer.exotel.com/api/whatsapp).
 *
 * Plain node:http, in-memory, no per-request logging: it is used in benchmarks.
 *
 * Regions: an Exotel account lives in one cluster, Singapore (api.exotel.com) or Mumbai
 * (api.in.exotel.com), and the other cluster answers its credentials with 401. The fake
 * listens on two ports, one per cluster (`urls.sg`, `urls.in`); the port a request arrives
 * on decides its region (the Host header is ignored). Both ports share one state and serve
 * the same /__fake control endpoints.
 *
 * Formats: v1 takes form-encoded (or multipart) input and answers XML inside
 * <TwilioResponse> unless the path ends in ".json"; errors are RestException
 * {Status, Message, Code} in both. v2 (WhatsApp) is JSON with Exotel's v2 envelope;
 * v2_beta (ExoPhones) is JSON only.
 *
 * Nothing changes state on a timer: tests drive status transitions, and with them the
 * callbacks, through POST /__fake/advance. Callbacks are never signed (Exotel documents no
 * signature), so an adapter must rely on a secret in its callback URL.
 *
 * Control surface (not Exotel's), on either port:
 *   GET  /__fake/messages          SMS accepted (each with the raw request, headers and parsed params)
 *   GET  /__fake/calls             calls accepted
 *   GET  /__fake/whatsapp          WhatsApp messages accepted and inbound messages simulated
 *   GET  /__fake/requests          request counts per "METHOD /path" (proves no retries)
 *   GET  /__fake/pushes            callbacks made (last 1000): url, content type, raw body, outcome
 *   GET  /__fake/accounts          the accounts, balances and ExoPhones
 *   POST /__fake/reset             back to the start options: accounts, records, faults, config
 *   POST /__fake/faults            {mode, path?, count?, after?, delay_ms?}; GET lists, DELETE clears
 *                                  mode: latency | timeout | reset | drop | http500 | http503 | http429
 *   POST /__fake/advance           {sid, ...}: SMS   {status?|code?, duplicate?}
 *                                              call  {outcome?, duration?, order?: "reverse", duplicate?}
 *                                              WhatsApp {status?, code?, order?: "reverse", duplicate?}
 *   POST /__fake/unknown-callback  {kind: "sms"|"call"|"whatsapp", url, sid?} a callback for a sid never issued
 *   POST /__fake/inbound-whatsapp  {from, to?, body?|content?, profile_name?, url?, at?, duplicate?} an icm callback
 *   POST /__fake/accounts          {sid, balance?, state?, dlt_entity_id?, dlt_templates?, whatsapp_inbound_url?,
 *                                   whatsapp_status_callback?} adjusts an account
 *   POST /__fake/config            {rate_limits?: {post?, get?}, throttle?, balance_endpoint?, whatsapp_window_ms?,
 *                                   whatsapp_window_failure?: {mode: "sync"|"dlr", code?}, sms_price?}
 *
 * Shapes Exotel does not pin down, and what the fake chose (adapters must not depend on them):
 * a comma-separated To answers {"SMSMessage": [...]} (sibling <SMSMessage> elements in XML);
 * bulksend answers {"SMSMessages": [...]}; WhatsApp per-message failures carry
 * {code, status: "failure", error_data: {code, message, description}}; DetailedStatus texts
 * for codes the docs list without one; Exotel's unknown-SMS-sid lookup answers 404 here.
 *
 * SMS unit counting is implemented here independently of the adapter on purpose.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type ExotelRegion = "sg" | "in";

/** The real hosts of the two clusters, for documentation and adapters' region settings. */
export const EXOTEL_REGION_HOSTS: Record<ExotelRegion, string> = { sg: "api.exotel.com", in: "api.in.exotel.com" };

export interface ExotelExoPhone {
  sid: string;
  phone_number: string;
  friendly_name: string;
  capabilities: { voice: boolean; sms: boolean };
  /** Sender IDs (DLT headers) linked to this ExoPhone; only SMS-capable ExoPhones can send. */
  sender_ids: string[];
  country: string;
  region: string;
  voice_url: string | null;
  sms_url: string | null;
}

export interface ExotelDltTemplate {
  /** DltTemplateId */
  id: string;
  /** Registered text; each {#var#} stands for up to 30 characters. */
  body: string;
}

export interface ExotelFakeAccount {
  sid: string;
  apiKey: string;
  apiToken: string;
  region: ExotelRegion;
  /** inactive → 403 / 40002 on sends. */
  state: "active" | "inactive";
  /** Zero or less → 403 / 40001 on SMS and calls, 402 on WhatsApp. */
  balance: number;
  currency: string;
  pricingPlan: string;
  exophones: ExotelExoPhone[];
  /** WhatsApp Business numbers this account may send from. */
  whatsappNumbers: string[];
  /** Registered DLT principal entity; null skips the entity check. */
  dltEntityId: string | null;
  /** Registered DLT templates; empty skips the template check. */
  dltTemplates: ExotelDltTemplate[];
  /** An Indian business: SMS to +91 numbers needs DltEntityId (default true). */
  dltRequired: boolean;
  /** Where inbound WhatsApp (icm) callbacks go unless /__fake/inbound-whatsapp names a url. */
  whatsappInboundUrl: string | null;
  /** Account-level default WhatsApp status_callback. */
  whatsappStatusCallback: string | null;
  /** Account-local time for Exotel's "YYYY-MM-DD HH:mm:ss" dates (default IST, +330). */
  utcOffsetMinutes: number;
}

export type ExotelAccountInit = Partial<ExotelFakeAccount> & {
  sid: string;
  apiKey: string;
  apiToken: string;
  region: ExotelRegion;
};

export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

export interface ExotelWindowFailure {
  /** "sync": the message fails in the 202 answer; "dlr": accepted, then a failed dlr. */
  mode: "sync" | "dlr";
  /** exo_status_code of the failure (default 30007). */
  code: number;
}

export interface ExotelFakeOptions {
  host?: string;
  /** Singapore (api.exotel.com) port; 0 picks a free one. */
  port?: number;
  /** Mumbai (api.in.exotel.com) port; 0 picks a free one. */
  inPort?: number;
  /** Replaces the default accounts (EXOTEL_FAKE_ACCOUNT in sg, EXOTEL_FAKE_ACCOUNT_IN in in). */
  accounts?: ExotelAccountInit[];
  /** Fixed windows per account: POSTs (40402) and GETs (40403); default 200 a minute each. */
  rateLimits?: { post?: RateLimit; get?: RateLimit };
  /** Serve Balance.json (newer docs only); default false, so it is 404. */
  balanceEndpoint?: boolean;
  /** WhatsApp customer-service window after the user's last inbound message (default 24 h). */
  whatsappWindowMs?: number;
  whatsappWindowFailure?: Partial<ExotelWindowFailure>;
  /** Charged per SMS unit at acceptance (default 0.25). */
  smsPrice?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  region: ExotelRegion;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  params: unknown;
}

export interface ExotelSmsRecord {
  sid: string;
  account_sid: string;
  region: ExotelRegion;
  kind: "single" | "static_bulk" | "dynamic_bulk";
  from: string;
  /** As the client sent it. */
  to: string;
  /** Normalised E.164, or null when the number is not valid (it then fails with 23010). */
  to_e164: string | null;
  body: string;
  encoding: "plain" | "unicode";
  sms_units: number;
  sms_type: string | null;
  priority: string;
  dlt_entity_id: string | null;
  dlt_template_id: string | null;
  status_callback: string | null;
  custom_field: string | null;
  status: string;
  detailed_status_code: number;
  detailed_status: string;
  price: number;
  date_created: number;
  date_updated: number;
  date_sent: number | null;
  /** Failure that any terminal advance yields (DLT scrubbing, invalid number), decided at send. */
  forced_failure: { code: number; reason: string } | null;
  /** Callbacks pushed so far (1 normally; more only with duplicate). */
  callbacks: number;
  request: RecordedRequest;
}

export interface ExotelCallLeg {
  OnCallDuration: number;
  Status: string | null;
  AnsweredBy: string | null;
}

export interface ExotelCallRecord {
  sid: string;
  account_sid: string;
  region: ExotelRegion;
  from: string;
  to: string | null;
  /** Call-flow URL when Url was given instead of To. */
  flow_url: string | null;
  caller_id: string;
  status: string;
  call_type: string;
  time_limit: number | null;
  time_out: number | null;
  record: boolean;
  custom_field: string | null;
  status_callback: string | null;
  status_callback_events: Array<"terminal" | "answered">;
  status_callback_content_type: string | null;
  date_created: number;
  date_updated: number;
  start_time: number;
  end_time: number | null;
  duration: number | null;
  conversation_duration: number | null;
  legs: ExotelCallLeg[] | null;
  recording_url: string | null;
  callbacks: number;
  request: RecordedRequest;
}

export interface ExotelWhatsAppRecord {
  sid: string;
  account_sid: string;
  region: ExotelRegion;
  from: string;
  to: string;
  content: Record<string, unknown>;
  custom_data: string | null;
  status_callback: string | null;
  status: "accepted" | "sent" | "delivered" | "read" | "failed";
  exo_status_code: number | null;
  forced_failure: { code: number; detailed: string } | null;
  date_created: number;
  request: RecordedRequest;
}

export interface ExotelInboundWhatsApp {
  sid: string;
  account_sid: string;
  from: string;
  to: string;
  profile_name: string;
  content: Record<string, unknown>;
  at: number;
}

export interface ExotelPushRecord {
  kind: "sms_status" | "call_status" | "whatsapp_dlr" | "whatsapp_icm";
  url: string;
  content_type: string;
  sid: string;
  /** Call EventType, WhatsApp exo_status_code or SMS Status. */
  event: string | null;
  /** The exact body sent. */
  body: string;
  status?: number;
  error?: string;
  at: number;
}

export interface ExotelFault {
  /**
   * latency: handled normally (a send is recorded), answered after delay_ms (default 30 000);
   * timeout: never answered; reset: handled and recorded, then the connection is reset;
   * drop: connection reset before anything is recorded; http500 / http503 (40405) /
   * http429 (40402 for POST, 40403 for GET): answered at once, nothing recorded.
   */
  mode: "latency" | "timeout" | "reset" | "drop" | "http500" | "http503" | "http429";
  /** Matches request paths ending with it, ".json" ignored, e.g. "/Sms/send"; omitted → every API path. */
  path?: string;
  /** How many matching requests to affect (default 1). */
  count?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
  delay_ms?: number;
}

export interface ExotelFake {
  /** Singapore base URL (same as urls.sg), e.g. http://127.0.0.1:54321 — paths start with /v1, /v2, /v2_beta. */
  url: string;
  urls: Record<ExotelRegion, string>;
  ports: Record<ExotelRegion, number>;
  sms: ExotelSmsRecord[];
  calls: ExotelCallRecord[];
  whatsapp: ExotelWhatsAppRecord[];
  whatsappInbound: ExotelInboundWhatsApp[];
  pushes: ExotelPushRecord[];
  /** The live account objects (changes take effect at once). */
  accounts(): ExotelFakeAccount[];
  requestCounts(): Record<string, number>;
  addFault(fault: ExotelFault): void;
  /** Same as POST /__fake/advance. */
  advance(input: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  reset(): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Default accounts
// ---------------------------------------------------------------------------

/** The seeded Singapore-cluster account. */
export const EXOTEL_FAKE_ACCOUNT = {
  region: "sg" as ExotelRegion,
  sid: "switchboard1",
  apiKey: "sbfake-sg-api-key",
  apiToken: "sbfake-sg-api-token",
  /** SMS- and voice-capable ExoPhone; SENDER_ID is linked to it. */
  smsExoPhone: "+918047112233",
  senderId: "SWBRDX",
  /** Voice-only ExoPhone: a valid CallerId, refused as an SMS From (40300). */
  voiceExoPhone: "+918047112244",
  whatsappNumber: "+918047112255",
  dltEntityId: "1101000000000000001",
  dltTemplateId: "1107000000000000001",
  dltTemplateBody: "Your Switchboard code is {#var#}. It expires in {#var#} minutes.",
  balance: 500,
  currency: "INR",
} as const;

/** The seeded Mumbai-cluster account. */
export const EXOTEL_FAKE_ACCOUNT_IN = {
  region: "in" as ExotelRegion,
  sid: "switchboardmumbai1",
  apiKey: "sbfake-in-api-key",
  apiToken: "sbfake-in-api-token",
  smsExoPhone: "+918047113300",
  senderId: "SWBRDM",
  voiceExoPhone: "+918047113311",
  whatsappNumber: "+918047113322",
  dltEntityId: "1101000000000000002",
  dltTemplateId: "1107000000000000002",
  dltTemplateBody: "Hello {#var#}, your Switchboard order {#var#} has shipped.",
  balance: 500,
  currency: "INR",
} as const;

function seededAccount(c: typeof EXOTEL_FAKE_ACCOUNT | typeof EXOTEL_FAKE_ACCOUNT_IN, firstSid: number): ExotelFakeAccount {
  const phone = (n: number, number: string, name: string, voice: boolean, sms: boolean, senders: string[]): ExotelExoPhone => ({
    sid: `PN${String(n).padStart(30, "0")}`,
    phone_number: number,
    friendly_name: name,
    capabilities: { voice, sms },
    sender_ids: senders,
    country: "IN",
    region: "KA",
    voice_url: null,
    sms_url: null,
  });
  return {
    sid: c.sid,
    apiKey: c.apiKey,
    apiToken: c.apiToken,
    region: c.region,
    state: "active",
    balance: c.balance,
    currency: c.currency,
    pricingPlan: "Pay As You Go",
    exophones: [
      phone(firstSid, c.smsExoPhone, "Switchboard SMS", true, true, [c.senderId]),
      phone(firstSid + 1, c.voiceExoPhone, "Switchboard voice", true, false, []),
    ],
    whatsappNumbers: [c.whatsappNumber],
    dltEntityId: c.dltEntityId,
    dltTemplates: [{ id: c.dltTemplateId, body: c.dltTemplateBody }],
    dltRequired: true,
    whatsappInboundUrl: null,
    whatsappStatusCallback: null,
    utcOffsetMinutes: 330,
  };
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_PUSH_LOG = 1000;
const MAX_SMS_CHARS = 2000;
const MAX_RECIPIENTS = 100;
const MAX_TIME_LIMIT = 14_400;
const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;

/** DetailedStatusCode → Status and DetailedStatus. */
const SMS_CODES: Record<number, { status: string; text: string }> = {
  21010: { status: "queued", text: "PENDING_TO_OPERATOR" },
  21015: { status: "sending", text: "SENDING_TO_OPERATOR" },
  21020: { status: "submitted", text: "PENDING_ON_OPERATOR" },
  20005: { status: "sent", text: "DELIVERED_TO_HANDSET" },
  20006: { status: "sent", text: "DELIVERED_TO_OPERATOR" },
  23005: { status: "failed_dnd", text: "FAILED_DND" },
  23010: { status: "failed", text: "FAILED_INVALID_NUMBER" },
  23015: { status: "failed", text: "FAILED_SPAM" },
  23020: { status: "failed", text: "FAILED_BLACKLISTED" },
  23030: { status: "failed", text: "FAILED_NO_ROUTE" },
  23035: { status: "failed", text: "FAILED_SUBSCRIBER_UNAVAILABLE" },
  23040: { status: "failed", text: "FAILED_UNKNOWN" },
  23050: { status: "failed", text: "FAILED_EXPIRED" },
  23060: { status: "failed", text: "FAILED_REJECTED_BY_OPERATOR" },
  23070: { status: "failed", text: "FAILED_INVALID_MESSAGE" },
  23072: { status: "failed", text: "FAILED_INVALID_SENDER" },
  23080: { status: "failed", text: "FAILED_DLT_SCRUBBING" },
  23081: { status: "failed", text: "FAILED_DLT_ENTITY" },
  23082: { status: "failed", text: "FAILED_DLT_TEMPLATE" },
  23083: { status: "failed", text: "FAILED_DLT_CONSENT" },
  24010: { status: "failed", text: "FAILED_SYSTEM_ERROR" },
};
const SMS_DEFAULT_CODE: Record<string, number> = {
  queued: 21010,
  sending: 21015,
  submitted: 21020,
  sent: 20005,
  failed_dnd: 23005,
  failed: 23035,
};
const SMS_FINAL = new Set(["sent", "failed", "failed_dnd"]);

const CALL_OUTCOMES = new Set(["completed", "no-answer", "busy", "failed"]);

const WA_STEPS = [
  { status: "sent", code: 30001, detailed: "EX_MESSAGE_SENT", description: "Message sent to WhatsApp" },
  { status: "delivered", code: 30002, detailed: "EX_MESSAGE_DELIVERED", description: "Message delivered" },
  { status: "read", code: 30003, detailed: "EX_MESSAGE_SEEN", description: "Message seen" },
] as const;
const WA_FAILURES: Record<number, string> = {
  30004: "Rate limit exceeded",
  30005: "Unknown error",
  30006: "Message expired",
  30007: "Message blocked by WhatsApp",
  30008: "Invalid phone number",
  30009: "Media download failed",
  30010: "Invalid template name",
  30011: "Template parameter mismatch",
  30012: "Template not approved",
  30013: "Recipient not on WhatsApp",
  30014: "Message too long",
  30020: "Account not registered for WhatsApp",
  30030: "Business account restricted",
  30040: "Recipient blocked the business number",
  30041: "Spam detected",
};
const WA_CONTENT_TYPES = new Set([
  "text",
  "template",
  "image",
  "video",
  "audio",
  "document",
  "sticker",
  "location",
  "contacts",
  "interactive",
]);

// GSM 03.38 default alphabet and its escape-table extension (2 septets each).
const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED = "\f^{}\\[~]|€";

function isGsm(text: string): boolean {
  for (const ch of text) if (!GSM_BASIC.includes(ch) && !GSM_EXTENDED.includes(ch)) return false;
  return true;
}

/** SMS units: GSM 160 / 153 septets per part, Unicode 70 / 67 UTF-16 units per part. */
function smsUnits(body: string, encoding: "plain" | "unicode"): number {
  let size = 0;
  if (encoding === "unicode") size = body.length;
  else for (const ch of body) size += GSM_EXTENDED.includes(ch) ? 2 : 1;
  const [single, multi] = encoding === "unicode" ? [70, 67] : [160, 153];
  if (size <= single) return 1;
  return Math.ceil(size / multi);
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const hex32 = () => randomBytes(16).toString("hex");
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const alnum = (n: number) => Array.from(randomBytes(n), (b) => ALNUM[b % ALNUM.length]).join("");

function pad(n: number, width = 2) {
  return String(n).padStart(width, "0");
}

/** Exotel's "YYYY-MM-DD HH:mm:ss" in account-local time. */
function exotelDate(ms: number, offsetMinutes: number): string {
  return new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19).replace("T", " ");
}

/** ISO 8601 with the account's offset, as WhatsApp callbacks carry it. */
function isoLocal(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

const singular = (name: string) => (name.endsWith("s") ? name.slice(0, -1) : name);

function xmlNode(name: string, value: unknown): string {
  if (value === null || value === undefined) return `<${name}/>`;
  if (Array.isArray(value)) return `<${name}>${value.map((v) => xmlNode(singular(name), v)).join("")}</${name}>`;
  if (typeof value === "object") {
    return `<${name}>${Object.entries(value as Json).map(([k, v]) => xmlNode(k, v)).join("")}</${name}>`;
  }
  return `<${name}>${xmlEscape(String(value))}</${name}>`;
}

/**
 * Exotel's v1 XML: everything inside <TwilioResponse>. A top-level list under a singular
 * name repeats its element (<SMSMessage/><SMSMessage/>); a plural name wraps its items.
 */
function toXml(body: Json): string {
  const inner = Object.entries(body)
    .map(([k, v]) => (Array.isArray(v) && !k.endsWith("s") ? v.map((item) => xmlNode(k, item)).join("") : xmlNode(k, v)))
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<TwilioResponse>${inner}</TwilioResponse>\n`;
}

/** Nested objects as bracketed form keys: Legs[0][Status]. null becomes "". */
function flatten(value: unknown, prefix: string, out: Array<[string, string]>) {
  if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value as Json)) flatten(v, prefix ? `${prefix}[${k}]` : k, out);
  } else out.push([prefix, value === null || value === undefined ? "" : String(value)]);
}

function multipart(fields: Array<[string, string]>): { body: string; contentType: string } {
  const boundary = `----ExotelFake${randomBytes(12).toString("hex")}`;
  let body = "";
  for (const [k, v] of fields) body += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  body += `--${boundary}--\r\n`;
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

function validHttpUrl(value: string): boolean {
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** A registered DLT template as a pattern: literal text, each {#var#} up to 30 characters. */
function templatePattern(body: string): RegExp {
  const parts = body.split(/\{#var#\}/i).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]{0,30}")}$`);
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

export async function startExotelFake(options: ExotelFakeOptions = {}): Promise<ExotelFake> {
  const initialAccounts = (): ExotelFakeAccount[] =>
    options.accounts
      ? options.accounts.map((a) => ({
        state: "active" as const,
        balance: 500,
        currency: "INR",
        pricingPlan: "Pay As You Go",
        exophones: [],
        whatsappNumbers: [],
        dltEntityId: null,
        dltTemplates: [],
        dltRequired: true,
        whatsappInboundUrl: null,
        whatsappStatusCallback: null,
        utcOffsetMinutes: 330,
        ...structuredClone(a),
      }))
      : [seededAccount(EXOTEL_FAKE_ACCOUNT, 1), seededAccount(EXOTEL_FAKE_ACCOUNT_IN, 11)];

  const initialSettings = () => ({
    rateLimits: {
      post: options.rateLimits?.post ?? { limit: 200, windowSeconds: 60 },
      get: options.rateLimits?.get ?? { limit: 200, windowSeconds: 60 },
    },
    throttle: false,
    balanceEndpoint: options.balanceEndpoint ?? false,
    whatsappWindowMs: options.whatsappWindowMs ?? DEFAULT_WINDOW_MS,
    whatsappWindowFailure: {
      mode: options.whatsappWindowFailure?.mode ?? "sync",
      code: options.whatsappWindowFailure?.code ?? 30007,
    } as ExotelWindowFailure,
    smsPrice: options.smsPrice ?? 0.25,
  });

  // --- state ---------------------------------------------------------------
  let accounts = initialAccounts();
  let settings = initialSettings();
  const sms: ExotelSmsRecord[] = [];
  const calls: ExotelCallRecord[] = [];
  const whatsapp: ExotelWhatsAppRecord[] = [];
  const whatsappInbound: ExotelInboundWhatsApp[] = [];
  const smsById = new Map<string, ExotelSmsRecord>();
  const callById = new Map<string, ExotelCallRecord>();
  const waById = new Map<string, ExotelWhatsAppRecord>();
  const lastInbound = new Map<string, number>(); // business number|customer → ms
  const counts = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  let faults: Array<Required<Omit<ExotelFault, "path">> & { path?: string }> = [];
  const pushes: ExotelPushRecord[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<Socket>();
  const lifetime = new AbortController();
  const baseUrls: Record<ExotelRegion, string> = { sg: "", in: "" };

  function reset() {
    accounts = initialAccounts();
    settings = initialSettings();
    sms.length = 0;
    calls.length = 0;
    whatsapp.length = 0;
    whatsappInbound.length = 0;
    pushes.length = 0;
    smsById.clear();
    callById.clear();
    waById.clear();
    lastInbound.clear();
    counts.clear();
    windows.clear();
    faults = [];
    for (const t of timers) clearTimeout(t);
    timers.clear();
  }

  // Strict validation costs ~25 µs a number; benches reuse recipients, so memoise.
  const numberCache = new Map<string, string | null>();
  /** E.164 for a valid number; without a "+" Exotel assumes India, as the fake does. */
  function normalizeNumber(raw: string): string | null {
    const s = raw.trim();
    let e164 = numberCache.get(s);
    if (e164 === undefined) {
      e164 = null;
      if (/^\+?[\d\s().-]{6,20}$/.test(s)) {
        const parsed = parsePhoneNumberFromString(s, "IN");
        if (parsed?.isValid()) e164 = parsed.number;
      }
      if (numberCache.size > 200_000) numberCache.clear();
      numberCache.set(s, e164);
    }
    return e164;
  }

  // --- HTTP plumbing -------------------------------------------------------
  type Family = "v1" | "v2" | "v2beta";
  interface ApiError {
    status: number;
    code: number;
    message: string;
  }
  type Result = { status: number; body: Json } | { status: number; error: ApiError };
  const err = (status: number, code: number, message: string): Result => ({ status, error: { status, code, message } });
  const ok = (body: Json, status = 200): Result => ({ status, body });

  function send(res: http.ServerResponse, status: number, text: string, contentType: string) {
    res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  function render(res: http.ServerResponse, family: Family, json: boolean, result: Result) {
    if ("error" in result) {
      const e = result.error;
      if (family === "v2") {
        return send(res, e.status, JSON.stringify({
          request_id: hex32(),
          method: res.req.method ?? "GET",
          http_code: e.status,
          response: {
            code: e.status,
            status: "failure",
            error_data: { code: e.code, message: httpReason(e.status), description: e.message },
          },
        }), "application/json; charset=utf-8");
      }
      const body = { RestException: { Status: e.status, Message: e.message, Code: e.code } };
      if (family === "v2beta" || json) return send(res, e.status, JSON.stringify(body), "application/json; charset=utf-8");
      return send(res, e.status, toXml(body), "application/xml; charset=utf-8");
    }
    if (family !== "v1" || json) return send(res, result.status, JSON.stringify(result.body), "application/json; charset=utf-8");
    return send(res, result.status, toXml(result.body), "application/xml; charset=utf-8");
  }

  function httpReason(status: number) {
    return http.STATUS_CODES[status] ?? "Error";
  }

  /** Fixed-window limit per account and method class. */
  function rateLimited(key: string, limit: RateLimit): boolean {
    const now = Date.now();
    let w = windows.get(key);
    if (!w || now - w.start >= limit.windowSeconds * 1000) {
      w = { start: now, count: 0 };
      windows.set(key, w);
    }
    w.count++;
    return w.count > limit.limit;
  }

  function authenticate(header: string | undefined, region: ExotelRegion): ExotelFakeAccount | null {
    if (!header?.startsWith("Basic ")) return null;
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    const key = decoded.slice(0, colon);
    const token = decoded.slice(colon + 1);
    // Credentials are only known to the cluster the account lives in.
    return accounts.find((a) => a.apiKey === key && a.apiToken === token && a.region === region) ?? null;
  }

  function takeFault(path: string) {
    const bare = path.replace(/\.json$/i, "").toLowerCase();
    for (const fault of faults) {
      if (fault.path !== undefined && !bare.endsWith(fault.path.replace(/\.json$/i, "").toLowerCase())) continue;
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

  async function parseForm(req: http.IncomingMessage, raw: Buffer): Promise<URLSearchParams> {
    const type = String(req.headers["content-type"] ?? "");
    if (/^multipart\/form-data/i.test(type)) {
      const form = await new Response(new Uint8Array(raw), { headers: { "content-type": type } }).formData();
      const out = new URLSearchParams();
      for (const [k, v] of form) if (typeof v === "string") out.append(k, v);
      return out;
    }
    return new URLSearchParams(raw.toString("utf8"));
  }

  function recorded(req: http.IncomingMessage, url: URL, region: ExotelRegion, raw: Buffer, params: unknown): RecordedRequest {
    return {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search,
      region,
      headers: { ...req.headers },
      raw: raw.toString("utf8"),
      params,
    };
  }

  const formObject = (p: URLSearchParams) => {
    const out: Record<string, string | string[]> = {};
    for (const key of new Set(p.keys())) {
      const all = p.getAll(key);
      out[key] = all.length === 1 ? all[0] : all;
    }
    return out;
  };

  function accountChecks(account: ExotelFakeAccount, balanceStatus = 403): Result | null {
    if (account.state !== "active") return err(403, 40002, "Account is not active");
    if (account.balance <= 0) return err(balanceStatus, 40001, "Insufficient balance");
    return null;
  }

  // --- SMS -----------------------------------------------------------------
  interface SmsInput {
    From?: string;
    To?: string;
    Body?: string;
    DltEntityId?: string;
    DltTemplateId?: string;
    EncodingType?: string;
    SmsType?: string;
    Priority?: string;
    StatusCallback?: string;
    CustomField?: string;
  }
  const SMS_FIELDS = [
    "From",
    "To",
    "Body",
    "DltEntityId",
    "DltTemplateId",
    "EncodingType",
    "SmsType",
    "Priority",
    "StatusCallback",
    "CustomField",
  ] as const;

  interface SmsPlan {
    input: SmsInput;
    recipients: Array<{ to: string; e164: string | null }>;
    encoding: "plain" | "unicode";
    units: number;
  }

  function senderLinked(account: ExotelFakeAccount, from: string): boolean {
    const upper = from.trim().toUpperCase();
    const e164 = /^\+?\d+$/.test(from.trim()) ? normalizeNumber(from) : null;
    return account.exophones.some((x) =>
      x.capabilities.sms &&
      ((e164 !== null && normalizeNumber(x.phone_number) === e164) || x.sender_ids.some((s) => s.toUpperCase() === upper))
    );
  }

  /** Validates one SMS request in the order a client would hit the errors. */
  function planSms(account: ExotelFakeAccount, input: SmsInput, allowList: boolean): SmsPlan | Result {
    const from = input.From?.trim() ?? "";
    const toRaw = input.To?.trim() ?? "";
    const body = input.Body ?? "";
    if (!from) return err(400, 40205, "Invalid Parameters: From is mandatory");
    if (!toRaw) return err(400, 34001, "Invalid Parameters: To is mandatory");
    if (!body.trim()) return err(400, 40200, "Invalid Parameters: Body is mandatory");
    if (Array.from(body).length > MAX_SMS_CHARS) return err(400, 34001, `Invalid Parameters: Body longer than ${MAX_SMS_CHARS} characters`);
    if (input.EncodingType !== undefined && !["plain", "unicode"].includes(input.EncodingType)) {
      return err(400, 40209, "Invalid Parameters: EncodingType must be plain or unicode");
    }
    if (input.SmsType !== undefined && !["transactional", "transactional_opt_in", "promotional"].includes(input.SmsType)) {
      return err(400, 40204, "Invalid Parameters: SmsType must be transactional, transactional_opt_in or promotional");
    }
    if (input.Priority !== undefined && !["normal", "high"].includes(input.Priority)) {
      return err(400, 34001, "Invalid Parameters: Priority must be normal or high");
    }
    if (input.StatusCallback !== undefined && input.StatusCallback !== "" && !validHttpUrl(input.StatusCallback)) {
      return err(400, 34001, "Invalid Parameters: StatusCallback is not a valid URL");
    }
    const list = toRaw.split(",").map((t) => t.trim()).filter(Boolean);
    if (!allowList && list.length > 1) return err(400, 34001, "Invalid Parameters: one To per message in bulksend");
    if (list.length > MAX_RECIPIENTS) return err(400, 40406, `Invalid Parameters: more than ${MAX_RECIPIENTS} numbers in To`);
    if (!senderLinked(account, from)) {
      return err(400, 40300, `Invalid Parameters: From ${from} is not a sender ID or ExoPhone linked to this account`);
    }
    const recipients = list.map((to) => ({ to, e164: normalizeNumber(to) }));
    if (recipients.every((r) => r.e164 === null)) return err(400, 40203, `Invalid Recipient: ${toRaw}`);
    if (account.dltRequired && !input.DltEntityId && recipients.some((r) => r.e164?.startsWith("+91"))) {
      return err(400, 34001, "Invalid Parameters: DltEntityId is mandatory for SMS to Indian numbers");
    }
    const encoding = input.EncodingType === "unicode" || (input.EncodingType === undefined && !isGsm(body)) ? "unicode" : "plain";
    return { input, recipients, encoding, units: smsUnits(body, encoding) };
  }

  /** The operator's DLT scrubbing, decided now and reported at the terminal state (Indian numbers only). */
  function dltScrub(account: ExotelFakeAccount, input: SmsInput): { code: number; reason: string } | null {
    if (account.dltEntityId !== null && input.DltEntityId !== account.dltEntityId) {
      return { code: 23081, reason: "DltEntityId is not the registered entity" };
    }
    if (account.dltTemplates.length === 0) return null;
    const candidates = input.DltTemplateId
      ? account.dltTemplates.filter((t) => t.id === input.DltTemplateId)
      : account.dltTemplates;
    const body = input.Body ?? "";
    if (!candidates.some((t) => templatePattern(t.body).test(body))) {
      return { code: 23082, reason: "Body does not match the registered DLT template" };
    }
    return null;
  }

  function acceptSms(
    account: ExotelFakeAccount,
    plan: SmsPlan,
    kind: ExotelSmsRecord["kind"],
    request: RecordedRequest,
  ): ExotelSmsRecord[] {
    const now = Date.now();
    const out: ExotelSmsRecord[] = [];
    for (const r of plan.recipients) {
      const forced = r.e164 === null
        ? { code: 23010, reason: "invalid destination number" }
        : r.e164.startsWith("+91")
        ? dltScrub(account, plan.input)
        : null;
      const price = plan.units * settings.smsPrice;
      const m: ExotelSmsRecord = {
        sid: hex32(),
        account_sid: account.sid,
        region: account.region,
        kind,
        from: plan.input.From!.trim(),
        to: r.to,
        to_e164: r.e164,
        body: plan.input.Body ?? "",
        encoding: plan.encoding,
        sms_units: plan.units,
        sms_type: plan.input.SmsType ?? null,
        priority: plan.input.Priority ?? "normal",
        dlt_entity_id: plan.input.DltEntityId ?? null,
        dlt_template_id: plan.input.DltTemplateId ?? null,
        status_callback: plan.input.StatusCallback || null,
        custom_field: plan.input.CustomField ?? null,
        status: "queued",
        detailed_status_code: 21010,
        detailed_status: SMS_CODES[21010].text,
        price,
        date_created: now,
        date_updated: now,
        date_sent: null,
        forced_failure: forced,
        callbacks: 0,
        request,
      };
      account.balance = Math.max(0, account.balance - price);
      sms.push(m);
      smsById.set(m.sid, m);
      out.push(m);
    }
    return out;
  }

  function smsJson(m: ExotelSmsRecord): Json {
    const account = accounts.find((a) => a.sid === m.account_sid);
    const offset = account?.utcOffsetMinutes ?? 330;
    const final = SMS_FINAL.has(m.status);
    return {
      Sid: m.sid,
      AccountSid: m.account_sid,
      From: m.from,
      To: m.to,
      DateCreated: exotelDate(m.date_created, offset),
      DateUpdated: exotelDate(m.date_updated, offset),
      DateSent: m.date_sent === null ? null : exotelDate(m.date_sent, offset),
      Body: m.body,
      Direction: "outbound-api",
      Uri: `/v1/Accounts/${m.account_sid}/SMS/Messages/${m.sid}.json`,
      ApiVersion: null,
      Price: final ? m.price.toFixed(4) : null,
      Status: m.status,
      DetailedStatusCode: m.detailed_status_code,
      DetailedStatus: m.detailed_status,
      SmsUnits: final ? m.sms_units : null,
    };
  }

  function smsInputFrom(get: (k: string) => string | undefined): SmsInput {
    const input: SmsInput = {};
    for (const k of SMS_FIELDS) {
      const v = get(k);
      if (v !== undefined) input[k] = v;
    }
    return input;
  }

  async function handleSmsSend(ctx: Ctx): Promise<Result> {
    const form = await parseForm(ctx.req, ctx.raw);
    ctx.request.params = formObject(form);
    const blocked = accountChecks(ctx.account);
    if (blocked) return blocked;
    const plan = planSms(ctx.account, smsInputFrom((k) => form.get(k) ?? undefined), true);
    if ("status" in plan) return plan;
    const records = acceptSms(ctx.account, plan, plan.recipients.length > 1 ? "static_bulk" : "single", ctx.request);
    return ok({ SMSMessage: records.length === 1 ? smsJson(records[0]) : records.map(smsJson) });
  }

  async function handleBulkSend(ctx: Ctx): Promise<Result> {
    const type = String(ctx.req.headers["content-type"] ?? "");
    let items: SmsInput[] = [];
    if (/json/i.test(type)) {
      // The newer docs' JSON variant: {"sms": [{From, To, Body, ...}, ...]}
      let parsed: unknown;
      try {
        parsed = JSON.parse(ctx.raw.toString("utf8") || "{}");
      } catch {
        return err(400, 34001, "Invalid Parameters: malformed JSON");
      }
      ctx.request.params = parsed;
      const list = (parsed as Json | null)?.sms;
      if (!Array.isArray(list)) return err(400, 34001, "Invalid Parameters: sms must be a list");
      items = list.map((item) => {
        const o = item && typeof item === "object" ? (item as Json) : {};
        return smsInputFrom((k) => (o[k] === undefined || o[k] === null ? undefined : String(o[k])));
      });
    } else {
      // The classic form: Messages[0][To]=…&Messages[0][Body]=…, top-level fields as defaults.
      const form = await parseForm(ctx.req, ctx.raw);
      ctx.request.params = formObject(form);
      const defaults = smsInputFrom((k) => form.get(k) ?? undefined);
      const byIndex = new Map<number, Record<string, string>>();
      for (const [key, value] of form) {
        const m = /^Messages\[(\d+)\]\[(\w+)\]$/.exec(key);
        if (!m) continue;
        const i = Number(m[1]);
        if (!byIndex.has(i)) byIndex.set(i, {});
        byIndex.get(i)![m[2]] = value;
      }
      items = [...byIndex.keys()].sort((a, b) => a - b).map((i) => ({
        ...defaults,
        ...smsInputFrom((k) => byIndex.get(i)![k]),
      }));
    }
    if (items.length === 0) return err(400, 34001, "Invalid Parameters: Messages is mandatory");
    if (items.length > MAX_RECIPIENTS) return err(400, 40400, `Invalid Parameters: more than ${MAX_RECIPIENTS} messages`);
    const blocked = accountChecks(ctx.account);
    if (blocked) return blocked;
    const plans = items.map((item) => planSms(ctx.account, item, false));
    const failures = plans.filter((p): p is Extract<Result, { error: ApiError }> => "error" in p);
    if (failures.length === plans.length) return failures[0];
    const entries = plans.map((plan, i) => {
      if ("status" in plan) {
        const e = (plan as Extract<Result, { error: ApiError }>).error;
        return { To: items[i].To ?? null, Status: "failed", RestException: { Status: e.status, Message: e.message, Code: e.code } };
      }
      return smsJson(acceptSms(ctx.account, plan, "dynamic_bulk", ctx.request)[0]);
    });
    return ok({ SMSMessages: entries });
  }

  function handleSmsDetails(ctx: Ctx): Result {
    const m = smsById.get(ctx.match[2]);
    if (!m || m.account_sid !== ctx.account.sid) return err(404, 34004, "No matching results");
    return ok({ SMSMessage: smsJson(m) });
  }

  // --- calls ---------------------------------------------------------------
  function callJson(c: ExotelCallRecord): Json {
    const account = accounts.find((a) => a.sid === c.account_sid);
    const offset = account?.utcOffsetMinutes ?? 330;
    const d = (ms: number | null) => (ms === null ? null : exotelDate(ms, offset));
    return {
      Sid: c.sid,
      ParentCallSid: null,
      DateCreated: d(c.date_created),
      DateUpdated: d(c.date_updated),
      AccountSid: c.account_sid,
      To: c.to,
      From: c.from,
      PhoneNumberSid: c.caller_id,
      Status: c.status,
      StartTime: d(c.start_time),
      EndTime: d(c.end_time),
      Duration: c.duration,
      Price: c.duration === null ? null : (Math.ceil(c.duration / 60) * 0.5).toFixed(3),
      Direction: "outbound-api",
      AnsweredBy: null,
      ForwardedFrom: null,
      CallerName: null,
      Uri: `/v1/Accounts/${c.account_sid}/Calls/${c.sid}.json`,
      RecordingUrl: c.recording_url,
    };
  }

  async function handleConnect(ctx: Ctx): Promise<Result> {
    const form = await parseForm(ctx.req, ctx.raw);
    ctx.request.params = formObject(form);
    const blocked = accountChecks(ctx.account);
    if (blocked) return blocked;
    const get = (k: string) => form.get(k)?.trim() || undefined;
    const from = get("From");
    const to = get("To");
    const flowUrl = get("Url");
    const callerId = get("CallerId");
    if (!from) return err(400, 34001, "Invalid Parameters: From is mandatory");
    if (!to && !flowUrl) return err(400, 34001, "Invalid Parameters: To is mandatory");
    if (!callerId) return err(400, 34001, "Invalid Parameters: CallerId is mandatory");
    if (!normalizeNumber(from)) return err(400, 34001, `Invalid Parameters: From ${from} is not a valid number`);
    if (to && !normalizeNumber(to)) return err(400, 34001, `Invalid Parameters: To ${to} is not a valid number`);
    if (flowUrl && !validHttpUrl(flowUrl)) return err(400, 34001, "Invalid Parameters: Url is not a valid URL");
    const callerE164 = normalizeNumber(callerId);
    const exophone = ctx.account.exophones.find((x) =>
      x.capabilities.voice && callerE164 !== null && normalizeNumber(x.phone_number) === callerE164
    );
    if (!exophone) return err(400, 34001, `Invalid Parameters: CallerId ${callerId} is not an ExoPhone of this account`);
    const callType = get("CallType") ?? "trans";
    if (callType !== "trans") return err(400, 34001, "Invalid Parameters: CallType must be trans (promo is no longer supported)");
    const intParam = (name: string, max: number): number | null | Result => {
      const v = get(name);
      if (v === undefined) return null;
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
        return err(400, 34001, `Invalid Parameters: ${name} must be a whole number of seconds from 1 to ${max}`);
      }
      return Number(v);
    };
    const timeLimit = intParam("TimeLimit", MAX_TIME_LIMIT);
    if (timeLimit !== null && typeof timeLimit === "object") return timeLimit;
    const timeOut = intParam("TimeOut", 3600);
    if (timeOut !== null && typeof timeOut === "object") return timeOut;
    const record = get("Record");
    if (record !== undefined && !["true", "false"].includes(record)) return err(400, 34001, "Invalid Parameters: Record must be true or false");
    const customField = form.get("CustomField") ?? null;
    if (customField !== null && customField.length > 128) return err(400, 34001, "Invalid Parameters: CustomField longer than 128 characters");
    const statusCallback = get("StatusCallback") ?? null;
    if (statusCallback !== null && !validHttpUrl(statusCallback)) {
      return err(400, 34001, "Invalid Parameters: StatusCallback is not a valid URL");
    }
    const events: string[] = [];
    for (const [key, value] of form) if (/^StatusCallbackEvents(\[\d*\])?$/.test(key)) events.push(...value.split(","));
    const cleanEvents = [...new Set(events.map((e) => e.trim()).filter(Boolean))];
    if (cleanEvents.some((e) => e !== "terminal" && e !== "answered")) {
      return err(400, 34001, "Invalid Parameters: StatusCallbackEvents must be terminal and/or answered");
    }
    const contentType = get("StatusCallbackContentType") ?? null;
    if (contentType !== null && !["multipart/form-data", "application/json"].includes(contentType)) {
      return err(400, 34001, "Invalid Parameters: StatusCallbackContentType must be multipart/form-data or application/json");
    }
    const now = Date.now();
    const c: ExotelCallRecord = {
      sid: hex32(),
      account_sid: ctx.account.sid,
      region: ctx.account.region,
      from,
      to: to ?? null,
      flow_url: flowUrl ?? null,
      caller_id: callerId,
      status: "in-progress",
      call_type: callType,
      time_limit: timeLimit,
      time_out: timeOut,
      record: record === "true",
      custom_field: customField,
      status_callback: statusCallback,
      status_callback_events: cleanEvents as Array<"terminal" | "answered">,
      status_callback_content_type: contentType,
      date_created: now,
      date_updated: now,
      start_time: now,
      end_time: null,
      duration: null,
      conversation_duration: null,
      legs: null,
      recording_url: null,
      callbacks: 0,
      request: ctx.request,
    };
    calls.push(c);
    callById.set(c.sid, c);
    return ok({ Call: callJson(c) });
  }

  function handleCallDetails(ctx: Ctx): Result {
    const c = callById.get(ctx.match[2]);
    if (!c || c.account_sid !== ctx.account.sid) return err(404, 34004, "No matching results");
    return ok({ Call: callJson(c) });
  }

  // --- WhatsApp --------------------------------------------------------------
  const windowKey = (business: string, customer: string) => `${business}|${customer}`;

  async function handleWhatsApp(ctx: Ctx): Promise<Result> {
    let payload: unknown;
    try {
      payload = JSON.parse(ctx.raw.toString("utf8") || "null");
    } catch {
      return err(400, 34001, "Malformed JSON body");
    }
    ctx.request.params = payload;
    const blocked = accountChecks(ctx.account, 402);
    if (blocked) return blocked;
    const top = payload && typeof payload === "object" ? (payload as Json) : {};
    const channel = top.whatsapp && typeof top.whatsapp === "object" ? (top.whatsapp as Json) : null;
    const list = channel?.messages;
    if (!Array.isArray(list) || list.length === 0) return err(400, 34001, "whatsapp.messages must be a non-empty list");
    if (list.length > MAX_RECIPIENTS) return err(400, 34001, `whatsapp.messages has more than ${MAX_RECIPIENTS} messages`);
    const str = (v: unknown) => (typeof v === "string" && v ? v : null);
    const now = Date.now();
    const results: Json[] = [];
    const failure = (code: number, errorCode: number, description: string): Json => ({
      code,
      status: "failure",
      error_data: { code: errorCode, message: httpReason(code), description },
    });
    for (const raw of list) {
      const m = raw && typeof raw === "object" ? (raw as Json) : {};
      const from = typeof m.from === "string" ? normalizeNumber(m.from) : null;
      const to = typeof m.to === "string" ? normalizeNumber(m.to) : null;
      const content = m.content && typeof m.content === "object" ? (m.content as Json) : null;
      if (!from) {
        results.push(failure(400, 34001, "from is missing or not a valid number"));
        continue;
      }
      if (!ctx.account.whatsappNumbers.some((n) => normalizeNumber(n) === from)) {
        results.push(failure(403, 34009, `from ${m.from} is not a WhatsApp sender of this account`));
        continue;
      }
      if (!to) {
        results.push(failure(400, 34001, "to is missing or not a valid number"));
        continue;
      }
      const type = content && typeof content.type === "string" ? content.type : "";
      if (!content || !WA_CONTENT_TYPES.has(type)) {
        results.push(failure(400, 34001, "content.type is missing or not supported"));
        continue;
      }
      if (type === "text") {
        const body = (content.text as Json | undefined)?.body;
        if (typeof body !== "string" || !body || body.length > 4096) {
          results.push(failure(400, 34001, "content.text.body is missing or longer than 4096 characters"));
          continue;
        }
      }
      if (type === "template") {
        const t = content.template as Json | undefined;
        const language = t?.language as Json | undefined;
        if (typeof t?.name !== "string" || !t.name || typeof language?.code !== "string") {
          results.push(failure(400, 34001, "content.template needs name and language.code"));
          continue;
        }
      }
      // Meta's customer-service window: free-form content only within it; templates always.
      let forced: ExotelWhatsAppRecord["forced_failure"] = null;
      if (type !== "template") {
        const last = lastInbound.get(windowKey(from, to));
        if (last === undefined || now - last > settings.whatsappWindowMs) {
          const code = settings.whatsappWindowFailure.code;
          if (settings.whatsappWindowFailure.mode === "sync") {
            results.push(failure(400, code, "Outside the 24 hour window: only template messages may be sent"));
            continue;
          }
          forced = { code, detailed: "EX_REENGAGEMENT_ERROR" };
        }
      }
      const w: ExotelWhatsAppRecord = {
        sid: alnum(32),
        account_sid: ctx.account.sid,
        region: ctx.account.region,
        from,
        to,
        content,
        custom_data: str(m.custom_data) ?? str(channel?.custom_data) ?? str(top.custom_data),
        status_callback: str(m.status_callback) ?? str(channel?.status_callback) ?? str(top.status_callback) ??
          ctx.account.whatsappStatusCallback,
        status: "accepted",
        exo_status_code: null,
        forced_failure: forced,
        date_created: now,
        request: ctx.request,
      };
      whatsapp.push(w);
      waById.set(w.sid, w);
      results.push({ code: 202, status: "success", data: { sid: w.sid } });
    }
    const success = results.filter((r) => r.code === 202).length;
    return ok({
      request_id: hex32(),
      method: "POST",
      http_code: 202,
      metadata: { total: results.length, success, failed: results.length - success },
      response: { whatsapp: { messages: results } },
    }, 202);
  }

  // --- ExoPhones and balance --------------------------------------------------
  function handleIncomingNumbers(ctx: Ctx): Result {
    const q = ctx.url.searchParams;
    const intOf = (name: string, fallback: number) => {
      const v = q.get(name);
      if (v === null) return fallback;
      return /^\d+$/.test(v) ? Number(v) : NaN;
    };
    const page = intOf("Page", 0);
    const pageSize = intOf("PageSize", 50);
    if (!Number.isFinite(page) || !Number.isFinite(pageSize) || pageSize < 1) {
      return err(400, 34001, "Invalid Parameters: Page and PageSize must be whole numbers");
    }
    const size = Math.min(pageSize, 1000);
    const all = ctx.account.exophones;
    const base = `/v2_beta/Accounts/${ctx.account.sid}/IncomingPhoneNumbers`;
    const uri = (p: number) => `${base}?Page=${p}&PageSize=${size}`;
    const lastPage = Math.max(0, Math.ceil(all.length / size) - 1);
    const offset = ctx.account.utcOffsetMinutes;
    const created = exotelDate(Date.UTC(2026, 0, 1), offset);
    return ok({
      page,
      page_size: size,
      uri: uri(page),
      first_page_uri: uri(0),
      next_page_uri: page < lastPage ? uri(page + 1) : null,
      previous_page_uri: page > 0 ? uri(Math.min(page - 1, lastPage)) : null,
      incoming_phone_numbers: all.slice(page * size, (page + 1) * size).map((x) => ({
        sid: x.sid,
        account_sid: ctx.account.sid,
        friendly_name: x.friendly_name,
        phone_number: x.phone_number,
        capabilities: { ...x.capabilities },
        country: x.country,
        region: x.region,
        voice_url: x.voice_url,
        sms_url: x.sms_url,
        date_created: created,
        date_updated: created,
        uri: `${base}/${x.sid}`,
      })),
    });
  }

  function handleBalance(ctx: Ctx): Result {
    if (!settings.balanceEndpoint) return err(404, 34004, "The requested resource was not found");
    return ok({
      Account: {
        AccountSid: ctx.account.sid,
        BalanceData: {
          Balance: ctx.account.balance.toFixed(2),
          Currency: ctx.account.currency,
          PricingPlan: ctx.account.pricingPlan,
          DateUpdated: exotelDate(Date.now(), ctx.account.utcOffsetMinutes),
        },
      },
    });
  }

  // --- callbacks -------------------------------------------------------------
  async function push(
    kind: ExotelPushRecord["kind"],
    url: string,
    sid: string,
    event: string | null,
    encoding: "form" | "multipart" | "json",
    payload: Json,
  ): Promise<ExotelPushRecord> {
    let body: string;
    let contentType: string;
    if (encoding === "json") {
      body = JSON.stringify(payload);
      contentType = "application/json";
    } else {
      const fields: Array<[string, string]> = [];
      flatten(payload, "", fields);
      if (encoding === "form") {
        body = new URLSearchParams(fields).toString();
        contentType = "application/x-www-form-urlencoded";
      } else ({ body, contentType } = multipart(fields));
    }
    const record: ExotelPushRecord = { kind, url, content_type: contentType, sid, event, body, at: Date.now() };
    try {
      const signal = AbortSignal.any([lifetime.signal, AbortSignal.timeout(15_000)]);
      const response = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body, signal });
      await response.arrayBuffer();
      record.status = response.status;
    } catch (error) {
      record.error = (error as Error).message;
    }
    pushes.push(record);
    if (pushes.length > MAX_PUSH_LOG) pushes.splice(0, pushes.length - MAX_PUSH_LOG);
    return record;
  }

  const copiesOf = (p: Json) => 1 + Math.min(10, Math.max(0, Math.floor(Number(p.duplicate ?? 0)) || 0));

  function smsCallbackFields(m: ExotelSmsRecord): Json {
    const offset = accounts.find((a) => a.sid === m.account_sid)?.utcOffsetMinutes ?? 330;
    const fields: Json = {
      SmsSid: m.sid,
      To: m.to,
      Status: m.status,
      SmsUnits: m.sms_units,
      DetailedStatus: m.detailed_status,
      DetailedStatusCode: m.detailed_status_code,
      DateSent: m.date_sent === null ? "" : exotelDate(m.date_sent, offset),
    };
    if (m.custom_field !== null) fields.CustomField = m.custom_field;
    return fields;
  }

  async function advanceSms(m: ExotelSmsRecord, p: Json): Promise<Result> {
    if (SMS_FINAL.has(m.status)) return err(409, 0, `SMS ${m.sid} is already ${m.status}; Exotel calls back once`);
    const wanted = typeof p.status === "string" ? p.status.replace("failed-dnd", "failed_dnd") : undefined;
    let code: number;
    if (p.code !== undefined) code = Number(p.code);
    else if (wanted !== undefined) code = SMS_DEFAULT_CODE[wanted] ?? NaN;
    else code = 20005;
    const info = SMS_CODES[code];
    if (!info) return err(400, 0, `unknown SMS status/code ${String(p.status ?? p.code)}`);
    if (wanted !== undefined && info.status !== wanted) return err(400, 0, `code ${code} is a ${info.status} code, not ${wanted}`);
    if (SMS_FINAL.has(info.status) && m.forced_failure) code = m.forced_failure.code;
    const final = SMS_CODES[code];
    const now = Date.now();
    m.status = final.status;
    m.detailed_status_code = code;
    m.detailed_status = final.text;
    m.date_updated = now;
    const records: ExotelPushRecord[] = [];
    if (SMS_FINAL.has(m.status)) {
      m.date_sent = now;
      if (m.status_callback) {
        const fields = smsCallbackFields(m);
        const copies = copiesOf(p);
        for (let i = 0; i < copies; i++) records.push(await push("sms_status", m.status_callback, m.sid, m.status, "form", fields));
        m.callbacks += copies;
      }
    }
    return ok({ sms: smsJson(m), pushes: records });
  }

  function callPayload(c: ExotelCallRecord, event: "answered" | "terminal" | null, at: number): Json {
    const offset = accounts.find((a) => a.sid === c.account_sid)?.utcOffsetMinutes ?? 330;
    const d = (ms: number | null) => (ms === null ? null : exotelDate(ms, offset));
    const base: Json = {
      CallSid: c.sid,
      Status: event === "answered" ? "in-progress" : c.status,
      RecordingUrl: event === "answered" ? null : c.recording_url,
      DateUpdated: d(at),
    };
    if (event === null) return base;
    const legs: ExotelCallLeg[] = event === "answered"
      ? [{ OnCallDuration: 0, Status: "in-progress", AnsweredBy: "NA" }, { OnCallDuration: 0, Status: null, AnsweredBy: null }]
      : c.legs ?? [];
    return {
      ...base,
      EventType: event,
      DateCreated: d(c.date_created),
      To: c.to,
      From: c.from,
      PhoneNumberSid: c.caller_id,
      StartTime: d(c.start_time),
      EndTime: event === "answered" ? null : d(c.end_time),
      ConversationDuration: event === "answered" ? 0 : c.conversation_duration ?? 0,
      Direction: "outbound-api",
      CustomField: c.custom_field,
      Legs: legs,
    };
  }

  async function advanceCall(c: ExotelCallRecord, p: Json): Promise<Result> {
    if (c.status !== "in-progress" && c.status !== "queued") {
      return err(409, 0, `call ${c.sid} is already ${c.status}; Exotel calls back once`);
    }
    const outcome = String(p.outcome ?? p.status ?? "completed");
    if (!CALL_OUTCOMES.has(outcome)) return err(400, 0, "outcome must be completed, no-answer, busy or failed");
    const talk = Math.max(0, Math.floor(Number(p.duration ?? 30)) || 0);
    const ring = 5;
    let legs: ExotelCallLeg[];
    let firstLegAnswered: boolean;
    switch (outcome) {
      case "completed":
        legs = [
          { OnCallDuration: talk + ring, Status: "completed", AnsweredBy: "NA" },
          { OnCallDuration: talk, Status: "completed", AnsweredBy: "Human" },
        ];
        firstLegAnswered = true;
        break;
      case "busy": // From answered; To was busy.
        legs = [{ OnCallDuration: ring, Status: "completed", AnsweredBy: "NA" }, { OnCallDuration: 0, Status: "busy", AnsweredBy: null }];
        firstLegAnswered = true;
        break;
      case "no-answer": // From never answered, so To was never dialled.
        legs = [{ OnCallDuration: 0, Status: "no-answer", AnsweredBy: "NA" }, { OnCallDuration: 0, Status: null, AnsweredBy: null }];
        firstLegAnswered = false;
        break;
      default:
        legs = [{ OnCallDuration: 0, Status: "failed", AnsweredBy: "NA" }, { OnCallDuration: 0, Status: null, AnsweredBy: null }];
        firstLegAnswered = false;
    }
    const now = Date.now();
    c.status = outcome;
    c.legs = legs;
    c.end_time = now;
    c.date_updated = now;
    c.duration = legs[0].OnCallDuration;
    c.conversation_duration = outcome === "completed" ? talk : 0;
    if (c.record && outcome === "completed") c.recording_url = `${baseUrls[c.region]}/__fake/recordings/${c.sid}.mp3`;
    const records: ExotelPushRecord[] = [];
    if (c.status_callback) {
      const jobs: Array<{ event: "answered" | "terminal" | null; encoding: "form" | "multipart" | "json" }> = [];
      const asType = (fallback: "form" | "multipart") =>
        c.status_callback_content_type === "application/json"
          ? "json"
          : c.status_callback_content_type === "multipart/form-data"
          ? "multipart"
          : fallback;
      if (c.status_callback_events.length === 0) jobs.push({ event: null, encoding: asType("form") });
      else {
        if (c.status_callback_events.includes("answered") && firstLegAnswered) jobs.push({ event: "answered", encoding: asType("multipart") });
        if (c.status_callback_events.includes("terminal")) jobs.push({ event: "terminal", encoding: asType("multipart") });
      }
      if (p.order === "reverse") jobs.reverse();
      const copies = copiesOf(p);
      for (const job of jobs) {
        const payload = callPayload(c, job.event, now);
        for (let i = 0; i < copies; i++) {
          records.push(await push("call_status", c.status_callback, c.sid, job.event ?? "terminal", job.encoding, payload));
          c.callbacks++;
        }
      }
    }
    return ok({ call: callJson(c), pushes: records });
  }

  function waDlr(w: ExotelWhatsAppRecord, code: number, detailed: string, description: string): Json {
    const offset = accounts.find((a) => a.sid === w.account_sid)?.utcOffsetMinutes ?? 330;
    const item: Json = {
      callback_type: "dlr",
      sid: w.sid,
      to: w.to.replace(/^\+/, ""),
      exo_status_code: code,
      exo_detailed_status: detailed,
      description,
      timestamp: isoLocal(Date.now(), offset),
    };
    if (w.custom_data !== null) item.custom_data = w.custom_data;
    return { whatsapp: { messages: [item] } };
  }

  async function advanceWhatsApp(w: ExotelWhatsAppRecord, p: Json): Promise<Result> {
    if (w.status === "read" || w.status === "failed") return err(409, 0, `WhatsApp message ${w.sid} is already ${w.status}`);
    const target = String(p.status ?? "read");
    const events: Json[] = [];
    let codes: number[] = [];
    if (w.forced_failure || target === "failed") {
      const code = w.forced_failure?.code ?? Number(p.code ?? 30005);
      if (!WA_FAILURES[code]) return err(400, 0, `unknown WhatsApp failure code ${code}`);
      events.push(waDlr(w, code, w.forced_failure?.detailed ?? "EX_MESSAGE_FAILED", WA_FAILURES[code]));
      codes = [code];
      w.status = "failed";
      w.exo_status_code = code;
    } else {
      const to = WA_STEPS.findIndex((s) => s.status === target);
      if (to < 0) return err(400, 0, "status must be sent, delivered, read or failed");
      const from = WA_STEPS.findIndex((s) => s.status === w.status);
      if (to <= from) return err(409, 0, `WhatsApp message ${w.sid} is already ${w.status}`);
      for (const step of WA_STEPS.slice(from + 1, to + 1)) {
        events.push(waDlr(w, step.code, step.detailed, step.description));
        codes.push(step.code);
      }
      w.status = WA_STEPS[to].status;
      w.exo_status_code = WA_STEPS[to].code;
    }
    if (p.order === "reverse") {
      events.reverse();
      codes.reverse();
    }
    const records: ExotelPushRecord[] = [];
    if (w.status_callback) {
      const copies = copiesOf(p);
      for (let i = 0; i < events.length; i++) {
        for (let j = 0; j < copies; j++) {
          records.push(await push("whatsapp_dlr", w.status_callback, w.sid, String(codes[i]), "json", events[i]));
        }
      }
    }
    return ok({ message: { ...w, request: undefined }, pushes: records });
  }

  async function controlAdvance(p: Json): Promise<Result> {
    const sid = String(p.sid ?? "");
    const m = smsById.get(sid);
    if (m) return advanceSms(m, p);
    const c = callById.get(sid);
    if (c) return advanceCall(c, p);
    const w = waById.get(sid);
    if (w) return advanceWhatsApp(w, p);
    return err(404, 0, `unknown sid ${sid}`);
  }

  async function controlUnknownCallback(p: Json): Promise<Result> {
    const url = String(p.url ?? "");
    if (!validHttpUrl(url)) return err(400, 0, "url is required");
    const sid = typeof p.sid === "string" && p.sid ? p.sid : hex32();
    if (smsById.has(sid) || callById.has(sid) || waById.has(sid)) return err(400, 0, "sid belongs to a real message");
    const now = exotelDate(Date.now(), 330);
    let record: ExotelPushRecord;
    switch (p.kind) {
      case "sms":
        record = await push("sms_status", url, sid, "sent", "form", {
          SmsSid: sid,
          To: "+919800000000",
          Status: "sent",
          SmsUnits: 1,
          DetailedStatus: "DELIVERED_TO_HANDSET",
          DetailedStatusCode: 20005,
          DateSent: now,
        });
        break;
      case "call":
        record = await push("call_status", url, sid, "terminal", "form", { CallSid: sid, Status: "completed", RecordingUrl: "", DateUpdated: now });
        break;
      case "whatsapp":
        record = await push("whatsapp_dlr", url, sid, "30002", "json", {
          whatsapp: {
            messages: [{
              callback_type: "dlr",
              sid,
              to: "919800000000",
              exo_status_code: 30002,
              exo_detailed_status: "EX_MESSAGE_DELIVERED",
              description: "Message delivered",
              timestamp: isoLocal(Date.now(), 330),
            }],
          },
        });
        break;
      default:
        return err(400, 0, "kind must be sms, call or whatsapp");
    }
    return ok({ sid, pushes: [record] });
  }

  async function controlInboundWhatsApp(p: Json): Promise<Result> {
    const from = typeof p.from === "string" ? normalizeNumber(p.from) : null;
    if (!from) return err(400, 0, "from must be a valid number");
    const toRaw = typeof p.to === "string" ? p.to : accounts[0]?.whatsappNumbers[0];
    const to = toRaw ? normalizeNumber(toRaw) : null;
    const account = to ? accounts.find((a) => a.whatsappNumbers.some((n) => normalizeNumber(n) === to)) : undefined;
    if (!to || !account) return err(404, 0, "to is not a WhatsApp number of any account");
    let content: Json;
    if (p.content && typeof p.content === "object") content = p.content as Json;
    else if (typeof p.body === "string" && p.body) content = { type: "text", text: { body: p.body } };
    else return err(400, 0, "body or content is required");
    const at = typeof p.at === "number" ? p.at : typeof p.at === "string" ? Date.parse(p.at) : Date.now();
    if (!Number.isFinite(at)) return err(400, 0, "at must be epoch milliseconds or an ISO date");
    const inbound: ExotelInboundWhatsApp = {
      sid: alnum(32),
      account_sid: account.sid,
      from,
      to,
      profile_name: typeof p.profile_name === "string" ? p.profile_name : "Test User",
      content,
      at,
    };
    whatsappInbound.push(inbound);
    const key = windowKey(to, from);
    lastInbound.set(key, Math.max(lastInbound.get(key) ?? 0, at));
    const url = typeof p.url === "string" ? p.url : account.whatsappInboundUrl;
    const records: ExotelPushRecord[] = [];
    if (url) {
      const payload = {
        whatsapp: {
          messages: [{
            callback_type: "icm",
            sid: inbound.sid,
            from: from.replace(/^\+/, ""),
            to,
            profile_name: inbound.profile_name,
            timestamp: isoLocal(at, account.utcOffsetMinutes),
            content,
          }],
        },
      };
      const copies = copiesOf(p);
      for (let i = 0; i < copies; i++) records.push(await push("whatsapp_icm", url, inbound.sid, "icm", "json", payload));
    }
    return ok({ sid: inbound.sid, pushes: records });
  }

  function controlAccount(p: Json): Result {
    const account = accounts.find((a) => a.sid === p.sid);
    if (!account) return err(404, 0, "unknown account sid");
    if (typeof p.balance === "number") account.balance = p.balance;
    if (p.state === "active" || p.state === "inactive") account.state = p.state;
    if (typeof p.dlt_entity_id === "string" || p.dlt_entity_id === null) account.dltEntityId = p.dlt_entity_id;
    if (Array.isArray(p.dlt_templates)) {
      account.dltTemplates = p.dlt_templates.map((t) => ({ id: String((t as Json).id), body: String((t as Json).body) }));
    }
    if (typeof p.dlt_required === "boolean") account.dltRequired = p.dlt_required;
    if (typeof p.whatsapp_inbound_url === "string" || p.whatsapp_inbound_url === null) account.whatsappInboundUrl = p.whatsapp_inbound_url;
    if (typeof p.whatsapp_status_callback === "string" || p.whatsapp_status_callback === null) {
      account.whatsappStatusCallback = p.whatsapp_status_callback;
    }
    return ok({ account });
  }

  function controlConfig(p: Json): Result {
    const limits = p.rate_limits as { post?: RateLimit; get?: RateLimit } | undefined;
    if (limits?.post) settings.rateLimits.post = limits.post;
    if (limits?.get) settings.rateLimits.get = limits.get;
    if (typeof p.throttle === "boolean") settings.throttle = p.throttle;
    if (typeof p.balance_endpoint === "boolean") settings.balanceEndpoint = p.balance_endpoint;
    if (typeof p.whatsapp_window_ms === "number") settings.whatsappWindowMs = p.whatsapp_window_ms;
    const wf = p.whatsapp_window_failure as Partial<ExotelWindowFailure> | undefined;
    if (wf?.mode === "sync" || wf?.mode === "dlr") settings.whatsappWindowFailure.mode = wf.mode;
    if (typeof wf?.code === "number") {
      if (!WA_FAILURES[wf.code]) return err(400, 0, `unknown WhatsApp failure code ${wf.code}`);
      settings.whatsappWindowFailure.code = wf.code;
    }
    if (typeof p.sms_price === "number") settings.smsPrice = p.sms_price;
    windows.clear();
    return ok({ config: settings });
  }

  const FAULT_MODES = new Set(["latency", "timeout", "reset", "drop", "http500", "http503", "http429"]);
  function addFault(f: ExotelFault) {
    if (!FAULT_MODES.has(f.mode)) throw new Error(`unknown fault mode ${f.mode}`);
    faults.push({
      mode: f.mode,
      path: f.path,
      count: f.count ?? 1,
      after: f.after ?? 0,
      delay_ms: f.delay_ms ?? 30_000,
    });
  }

  // --- routing -------------------------------------------------------------
  interface Ctx {
    req: http.IncomingMessage;
    url: URL;
    raw: Buffer;
    account: ExotelFakeAccount;
    match: RegExpMatchArray;
    request: RecordedRequest;
  }
  const routes: Array<{ method: string; family: Family; pattern: RegExp; handler: (ctx: Ctx) => Result | Promise<Result> }> = [
    { method: "POST", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/Sms\/send(\.json)?$/i, handler: handleSmsSend },
    { method: "POST", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/Sms\/bulksend(\.json)?$/i, handler: handleBulkSend },
    { method: "GET", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/SMS\/Messages\/([^/.]+)(\.json)?$/i, handler: handleSmsDetails },
    { method: "POST", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/Calls\/connect(\.json)?$/i, handler: handleConnect },
    { method: "GET", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/Calls\/((?!connect\b)[^/.]+)(\.json)?$/i, handler: handleCallDetails },
    { method: "GET", family: "v1", pattern: /^\/v1\/Accounts\/([^/]+)\/Balance(\.json)?$/i, handler: handleBalance },
    { method: "GET", family: "v2beta", pattern: /^\/v2_beta\/Accounts\/([^/]+)\/IncomingPhoneNumbers(\.json)?$/i, handler: handleIncomingNumbers },
    { method: "POST", family: "v2", pattern: /^\/v2\/accounts\/([^/]+)\/messages$/i, handler: handleWhatsApp },
  ];

  function familyOf(path: string): Family {
    if (path.startsWith("/v2_beta/")) return "v2beta";
    if (path.startsWith("/v2/")) return "v2";
    return "v1";
  }

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const reply = (status: number, body: unknown) => send(res, status, JSON.stringify(body), "application/json");
    if (req.method === "GET" && url.pathname.startsWith("/__fake/recordings/")) {
      return send(res, 200, "ID3", "audio/mpeg");
    }
    let p: Json = {};
    try {
      const parsed = raw ? JSON.parse(raw) : {};
      p = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return reply(400, { error: "invalid JSON" });
    }
    const asControl = (r: Result) => reply(r.status, "error" in r ? { error: r.error.message } : r.body);
    switch (`${req.method} ${url.pathname}`) {
      case "GET /__fake/messages":
        return reply(200, { messages: sms });
      case "GET /__fake/calls":
        return reply(200, { calls });
      case "GET /__fake/whatsapp":
        return reply(200, { messages: whatsapp, inbound: whatsappInbound });
      case "GET /__fake/requests":
        return reply(200, { requests: Object.fromEntries(counts) });
      case "GET /__fake/pushes":
        return reply(200, { pushes });
      case "GET /__fake/accounts":
        return reply(200, { accounts });
      case "POST /__fake/reset":
        reset();
        return reply(200, { ok: true });
      case "POST /__fake/faults":
        try {
          addFault(p as unknown as ExotelFault);
          return reply(200, { faults });
        } catch (error) {
          return reply(400, { error: (error as Error).message });
        }
      case "GET /__fake/faults":
        return reply(200, { faults });
      case "DELETE /__fake/faults":
        faults = [];
        return reply(200, { faults });
      case "POST /__fake/advance":
        return asControl(await controlAdvance(p));
      case "POST /__fake/unknown-callback":
        return asControl(await controlUnknownCallback(p));
      case "POST /__fake/inbound-whatsapp":
        return asControl(await controlInboundWhatsApp(p));
      case "POST /__fake/accounts":
        return asControl(controlAccount(p));
      case "POST /__fake/config":
        return asControl(controlConfig(p));
      default:
        return reply(404, { error: "unknown control endpoint" });
    }
  }

  async function handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer, region: ExotelRegion) {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const json = /\.json$/i.test(path);
    const family = familyOf(path);
    const key = `${method} ${url.pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const fail = (status: number, code: number, message: string) => render(res, family, json, err(status, code, message));

    const taken = takeFault(path);
    const fault = taken?.mode;
    if (fault === "drop") return void req.socket.destroy();
    if (fault === "timeout") {
      const socket = req.socket; // never answered; destroyed by the client or close()
      hanging.add(socket);
      socket.once("close", () => hanging.delete(socket));
      return;
    }
    const isPost = method === "POST";
    if (fault === "http429") return fail(429, isPost ? 40402 : 40403, "Too Many Requests");
    if (fault === "http500") return fail(500, 35000, "Internal Server Error");
    if (fault === "http503") return fail(503, 40405, "Service Unavailable: throttled");

    const sid = /\/accounts\/([^/]+)/i.exec(path)?.[1] ?? "-";
    const limit = isPost ? settings.rateLimits.post : settings.rateLimits.get;
    if (rateLimited(`${sid}|${isPost ? "POST" : "GET"}`, limit)) {
      return fail(429, isPost ? 40402 : 40403, "Too Many Requests");
    }
    if (isPost && settings.throttle) return fail(503, 40405, "Service Unavailable: throttled");

    const candidates = routes.filter((r) => r.pattern.test(path));
    if (candidates.length === 0) return fail(404, 34004, "The requested resource was not found");
    const route = candidates.find((r) => r.method === method);
    if (!route) return fail(405, 40502, "Method Not Allowed");

    const account = authenticate(req.headers.authorization, region);
    const match = path.match(route.pattern)!;
    // Credentials of another account (or cluster) fail the same way as bad ones.
    if (!account || account.sid !== match[1]) return fail(401, 34010, "Authentication failed");

    const ctx: Ctx = { req, url, raw, account, match, request: recorded(req, url, region, raw, null) };
    const result = await route.handler(ctx);
    if (fault === "reset") return void req.socket.destroy(); // recorded, then the connection drops
    if (fault === "latency") {
      // The provider has acted (a send is recorded); only the answer is late.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) render(res, route.family, json, result);
      }, taken!.delay_ms);
      timers.add(timer);
      return;
    }
    render(res, route.family, json, result);
  }

  function createServer(region: ExotelRegion) {
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
        if (tooLarge) return send(res, 413, JSON.stringify({ RestException: { Status: 413, Message: "Request too large" } }), "application/json");
        const raw = Buffer.concat(chunks);
        if (url.pathname.startsWith("/__fake/")) {
          handleControl(req, res, url, raw.toString("utf8")).catch((error) => {
            if (!res.headersSent) send(res, 500, JSON.stringify({ error: String(error) }), "application/json");
          });
          return;
        }
        handleApi(req, res, url, raw, region).catch(() => {
          if (!res.headersSent && !res.destroyed) {
            render(res, familyOf(url.pathname), /\.json$/i.test(url.pathname), err(500, 35000, "Internal Server Error"));
          }
        });
      });
    });
    server.keepAliveTimeout = 65_000; // outlive clients' idle sockets: avoids reuse races under load
    return server;
  }

  const servers: Record<ExotelRegion, http.Server> = { sg: createServer("sg"), in: createServer("in") };
  const host = options.host ?? "127.0.0.1";
  const ports: Record<ExotelRegion, number> = { sg: 0, in: 0 };
  try {
    for (const region of ["sg", "in"] as const) {
      const server = servers[region];
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(region === "sg" ? options.port ?? 0 : options.inPort ?? 0, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const h = address.family === "IPv6" ? `[${address.address}]` : address.address;
      ports[region] = address.port;
      baseUrls[region] = `http://${h}:${address.port}`;
    }
  } catch (error) {
    for (const server of Object.values(servers)) if (server.listening) server.close();
    throw error;
  }

  return {
    url: baseUrls.sg,
    urls: { ...baseUrls },
    ports,
    sms,
    calls,
    whatsapp,
    whatsappInbound,
    pushes,
    accounts: () => accounts,
    requestCounts: () => Object.fromEntries(counts),
    addFault,
    async advance(input) {
      const r = await controlAdvance(input);
      return { status: r.status, body: "error" in r ? { error: r.error.message } : r.body };
    },
    reset,
    async close() {
      lifetime.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const socket of hanging) socket.destroy();
      hanging.clear();
      await Promise.all(Object.values(servers).map((server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        })
      ));
    },
  };
}
