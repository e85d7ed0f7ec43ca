/**
 * A faithful ClickSend REST v3 fake (its documented wire format, error paths, rate limits and webhooks).
 *
 * Plain node:http, in-memory, no per-request logging: it is used in benchmarks.
 * Everything lives under /v3 like the real API; test control lives under /__fake:
 *
 *   GET  /__fake/messages            accepted messages (to, body, from, custom_string, ...)
 *   GET  /__fake/requests            request counts per "METHOD /path" (proves no retries)
 *   GET  /__fake/pushes              webhook pushes made (last 1000) and their outcome
 *   POST /__fake/reset               {rules?: true} clears state (rules only if asked)
 *   POST /__fake/faults              {mode: "http500"|"timeout"|"drop"|"slow", path?, count?, after?, delay_ms?}
 *   DELETE /__fake/faults            clears faults
 *   POST /__fake/receipts            {message_id, status_code?, duplicate?, url?, webhook_type?}
 *   POST /__fake/inbound             {from, to, body, original_message_id?, url?, webhook_type?}
 *   POST /__fake/accounts            {username, balance?, countries?, state?} adjusts an account
 *   POST /__fake/config              {receipt_delay_ms?, throttle_window_ms?, rate_limits?}
 *
 * SMS part counting is implemented here independently of the adapter's
 * sms-segments.ts on purpose, so a test comparing the two can catch a bug in either.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type FakeAccountState = "active" | "notactive" | "banned";

export interface FakeAccount {
  username: string;
  api_key: string;
  /** notactive → 401 (like ClickSend's test account), banned → 403. */
  state: FakeAccountState;
  balance: number;
  /** ISO-2 countries this account may send to; others get COUNTRY_NOT_ENABLED. */
  countries: string[];
  user_id: number;
  subaccount_id: number;
}

export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

export interface ClickSendFakeOptions {
  port?: number;
  host?: string;
  /** Replaces the default accounts (demo, nocredit, notactive, banned). */
  accounts?: Array<Partial<FakeAccount> & { username: string; api_key: string }>;
  /** Price per SMS part (default 0.0050, so demo's 100.00 covers 20 000 parts). */
  smsPrice?: number;
  /** Price per MMS (default 0.0500). */
  mmsPrice?: number;
  /** Account setting setting_sms_message_char_limit: parts before truncation (default 6). */
  maxParts?: number;
  /** Same body to same recipient within this window → THROTTLED (default 60 000; 0 disables). */
  throttleWindowMs?: number;
  /** Delay before the automatic delivery receipt after a send (default 50 ms). */
  receiptDelayMs?: number;
  /** Automatic 201 receipts after successful sends when a receipt rule exists (default true). */
  autoReceipts?: boolean;
  /** Per-endpoint fixed-window limits: `account` is GET /account, `default` every other endpoint. */
  rateLimits?: { account?: RateLimit; default?: RateLimit };
}

export interface FakeMessage {
  kind: "sms" | "mms";
  username: string;
  message_id: string;
  to: string;
  body: string;
  from: string | null;
  custom_string: string;
  /** Unix seconds, or null when sent immediately. */
  schedule: number | null;
  media_file: string | null;
  subject: string | null;
  date: number;
  country: string;
  message_parts: number;
  message_price: string;
  /** One of ClickSend's documented test numbers: accepted, not charged, no receipt. */
  test_number: boolean;
  /** History status: Scheduled, Sent, Completed or Failed. */
  status: string;
  status_code: string | null;
  status_text: string | null;
}

export interface FakeFault {
  /** "slow" handles the request normally (a send is accepted) and answers after delay_ms. */
  mode: "http500" | "timeout" | "drop" | "slow";
  /** For "slow": how long to hold the answer (default 1000 ms). */
  delay_ms?: number;
  /** Path with or without the /v3 prefix, e.g. "/sms/send"; omitted → every /v3 path. */
  path?: string;
  /** How many matching requests to fail (default 1). */
  count?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
}

export interface PushRecord {
  kind: "delivery_receipt" | "inbound";
  url: string;
  webhook_type: WebhookType;
  message_id: string;
  status?: number;
  error?: string;
  at: number;
}

export interface ClickSendFake {
  /** Base URL including /v3, e.g. http://127.0.0.1:54321/v3 */
  url: string;
  port: number;
  /** Accepted messages (same objects as GET /__fake/messages). */
  received: FakeMessage[];
  pushes: PushRecord[];
  /** Request counts per "METHOD /v3/path". */
  requestCounts(): Record<string, number>;
  addFault(fault: FakeFault): void;
  /** Clears messages, counters, faults, throttling and balances; rules too if asked. */
  reset(options?: { rules?: boolean }): void;
  close(): Promise<void>;
}

type WebhookType = "post" | "json" | "get";

interface Rule {
  id: number;
  username: string;
  rule_name: string;
  action: string;
  action_address: string;
  enabled: number;
  webhook_type: WebhookType;
  match_type?: number;
  dedicated_number?: string;
  message_search_type?: number;
  message_search_term?: string;
}

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const TEST_KEY = "D83DED51-9E35-4D42-9BB9-0E34B7CA85AE";
const DEFAULT_COUNTRIES = ["AU", "NZ", "US", "CA", "GB"];
/** Documented test numbers: not sent, not charged, no receipt (providers.md §1.2). */
const TEST_NUMBERS = new Set([
  "+61411111111",
  "+61422222222",
  "+61433333333",
  "+61444444444",
  "+14055555555",
  "+14055555666",
  "+447777777777",
  "+8615555555555",
]);
const SHARED_NUMBER = "+61481070000";
const CURRENCY = {
  currency_name_short: "AUD",
  currency_prefix_d: "$",
  currency_prefix_c: "c",
  currency_name_long: "Australian Dollars",
};
const CARRIERS: Record<string, string> = { AU: "Telstra", NZ: "Spark", US: "AT&T", CA: "Rogers", GB: "EE" };
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_PUSH_LOG = 1000;
const PUSH_CONCURRENCY = 16;

const BODY_401 = { http_code: 401, response_code: "UNAUTHORIZED", response_msg: "Authorization failed.", data: null };
const BODY_403 = {
  http_code: 403,
  response_code: "FORBIDDEN",
  response_msg: "Your account is suspended. Please contact support.",
  data: null,
};
const BODY_404 = { http_code: 404, response_code: "NOT_FOUND", response_msg: "Invalid endpoint. Please try again.", data: null };
const BODY_429 = { http_code: 429, response_code: "HTTP_TOO_MANY_REQUESTS", response_msg: "Too many attempts.", data: null };
const BODY_500 = {
  http_code: 500,
  response_code: "INTERNAL_SERVER_ERROR",
  response_msg: "Something went wrong. Please try again.",
  data: null,
};

function defaultAccounts(): FakeAccount[] {
  const base = { countries: DEFAULT_COUNTRIES };
  return [
    { ...base, username: "demo", api_key: "demo-key", state: "active", balance: 100, user_id: 101, subaccount_id: 201 },
    { ...base, username: "nocredit", api_key: TEST_KEY, state: "active", balance: 0, user_id: 102, subaccount_id: 202 },
    { ...base, username: "notactive", api_key: TEST_KEY, state: "notactive", balance: 0, user_id: 103, subaccount_id: 203 },
    { ...base, username: "banned", api_key: TEST_KEY, state: "banned", balance: 0, user_id: 104, subaccount_id: 204 },
  ];
}

// ---------------------------------------------------------------------------
// SMS part counting (independent of the adapter's implementation)
// ---------------------------------------------------------------------------

// GSM 03.38 default alphabet in table order (0x0A LF and 0x0D CR counted as breaks).
const GSM_TABLE =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_ESCAPED = "\f^{}\\[~]|€";

interface Parts {
  unicode: boolean;
  parts: number;
  body: string;
}

/** Cost of each character in units; ClickSend counts a line break as 2. */
function unitCosts(text: string, unicode: boolean): number[] {
  const costs: number[] = [];
  for (const ch of text) {
    if (ch === "\n") costs.push(2);
    else if (unicode) costs.push(ch.length);
    else costs.push(GSM_ESCAPED.includes(ch) ? 2 : 1);
  }
  return costs;
}

/** message_parts for an SMS and the body after truncation at maxParts. */
function smsParts(rawBody: string, maxParts: number): Parts {
  const body = rawBody.replace(/\r\n?/g, "\n");
  let unicode = false;
  for (const ch of body) {
    if (!GSM_TABLE.includes(ch) && !GSM_ESCAPED.includes(ch)) {
      unicode = true;
      break;
    }
  }
  const [single, multi] = unicode ? [70, 67] : [160, 153];
  const costs = unitCosts(body, unicode);
  const units = costs.reduce((a, b) => a + b, 0);
  const capacity = maxParts <= 1 ? single : maxParts * multi;
  if (units <= capacity) {
    return { unicode, body, parts: units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi) };
  }
  // Longer than the account allows: truncated, not rejected (ClickSend help centre).
  const chars = Array.from(body);
  let used = 0;
  let keep = 0;
  while (keep < chars.length && used + costs[keep] <= capacity) used += costs[keep++];
  return { unicode, body: chars.slice(0, keep).join(""), parts: maxParts };
}

/** MMS bodies are truncated at 1500 GSM / 500 Unicode characters, never split. */
function mmsBody(body: string): string {
  const chars = Array.from(body);
  const unicode = chars.some((ch) => ch !== "\n" && !GSM_TABLE.includes(ch) && !GSM_ESCAPED.includes(ch));
  return chars.slice(0, unicode ? 500 : 1500).join("");
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

export async function startClickSendFake(options: ClickSendFakeOptions = {}): Promise<ClickSendFake> {
  const initialAccounts = (): FakeAccount[] =>
    options.accounts
      ? options.accounts.map((a, i) => ({
        state: "active" as const,
        balance: 100,
        countries: DEFAULT_COUNTRIES,
        user_id: 101 + i,
        subaccount_id: 201 + i,
        ...a,
      }))
      : defaultAccounts();

  const settings = {
    smsPrice: options.smsPrice ?? 0.005,
    mmsPrice: options.mmsPrice ?? 0.05,
    maxParts: options.maxParts ?? 6,
    throttleWindowMs: options.throttleWindowMs ?? 60_000,
    receiptDelayMs: options.receiptDelayMs ?? 50,
    autoReceipts: options.autoReceipts ?? true,
    rateLimits: {
      account: options.rateLimits?.account ?? { limit: 20, windowSeconds: 60 },
      default: options.rateLimits?.default ?? { limit: 6000, windowSeconds: 60 },
    },
  };

  // --- state ---------------------------------------------------------------
  let accounts = initialAccounts();
  const received: FakeMessage[] = [];
  const byId = new Map<string, FakeMessage>();
  const throttle = new Map<string, number>(); // username|to|body → last send ms
  const counts = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  let faults: Array<Required<Omit<FakeFault, "path" | "delay_ms">> & { path?: string; delay_ms: number }> = [];
  let receiptRules: Rule[] = [];
  let inboundRules: Rule[] = [];
  let nextRuleId = 1;
  const pushes: PushRecord[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<Socket>();
  const lifetime = new AbortController();

  function reset(opts: { rules?: boolean } = {}) {
    accounts = initialAccounts();
    received.length = 0;
    pushes.length = 0;
    byId.clear();
    throttle.clear();
    counts.clear();
    windows.clear();
    faults = [];
    for (const t of timers) clearTimeout(t);
    timers.clear();
    if (opts.rules) {
      receiptRules = [];
      inboundRules = [];
    }
  }

  const accountByName = (username: string) => accounts.find((a) => a.username === username);

  // --- HTTP plumbing -------------------------------------------------------
  function reply(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  const envelope = (data: unknown, msg = "Here are your data.") => ({
    http_code: 200,
    response_code: "SUCCESS",
    response_msg: msg,
    data,
  });

  const badRequest = (fields: Record<string, string>, msg = "Invalid input.") => ({
    http_code: 400,
    response_code: "BAD_REQUEST",
    response_msg: msg,
    data: fields,
  });

  /** Fixed-window rate limit per endpoint; returns headers and whether to refuse. */
  function rateLimit(key: string, limit: RateLimit): { headers: Record<string, string>; exceeded: boolean } {
    const now = Date.now();
    let w = windows.get(key);
    if (!w || now - w.start >= limit.windowSeconds * 1000) {
      w = { start: now, count: 0 };
      windows.set(key, w);
    }
    w.count++;
    const reset = Math.max(1, Math.ceil((w.start + limit.windowSeconds * 1000 - now) / 1000));
    const remaining = Math.max(0, limit.limit - w.count);
    const headers: Record<string, string> = {
      "x-ratelimit-limit": String(limit.limit),
      "x-ratelimit-remaining": String(remaining),
      "ratelimit-reset": String(reset),
    };
    if (w.count > limit.limit) return { headers: { ...headers, "retry-after": String(reset) }, exceeded: true };
    return { headers, exceeded: false };
  }

  function authenticate(header: string | undefined): FakeAccount | 401 | 403 {
    if (!header?.startsWith("Basic ")) return 401;
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return 401;
    const username = decoded.slice(0, colon);
    const key = decoded.slice(colon + 1);
    const account = accounts.find((a) => a.username === username && a.api_key === key);
    if (!account || account.state === "notactive") return 401;
    if (account.state === "banned") return 403;
    return account;
  }

  function takeFault(path: string) {
    const bare = path.replace(/^\/v3/, "");
    for (const fault of faults) {
      if (fault.path !== undefined && fault.path.replace(/^\/v3/, "") !== bare) continue;
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

  // --- sends ---------------------------------------------------------------
  interface Evaluation {
    result: Json;
    status: string;
    cost: number;
  }

  // Strict validation costs ~25 µs a number; benches reuse recipients, so memoise.
  const countryCache = new Map<string, string | null>();
  function recipientCountry(to: unknown): { e164: string; country: string } | null {
    if (typeof to !== "string" || !/^\+[1-9]\d{1,14}$/.test(to)) return null;
    let country = countryCache.get(to);
    if (country === undefined) {
      const parsed = parsePhoneNumberFromString(to);
      country = parsed && parsed.isValid() && parsed.number === to ? parsed.country ?? "" : null;
      if (countryCache.size > 200_000) countryCache.clear();
      countryCache.set(to, country);
    }
    return country === null ? null : { e164: to, country };
  }

  function validSender(from: unknown): boolean {
    if (from === undefined || from === null || from === "") return true;
    if (typeof from !== "string") return false;
    return /^\+?\d{3,15}$/.test(from) || /^[A-Za-z0-9]{3,11}$/.test(from);
  }

  function scheduleOf(value: unknown): number | null | "invalid" {
    if (value === undefined || value === null || value === "") return null;
    const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
    return Number.isInteger(n) && n > 0 ? n : "invalid";
  }

  /**
   * Evaluates one message in the order ClickSend's statuses imply. `budget` and
   * `seen` are the simulated balance and throttle keys, so /sms/price can run the
   * same checks without side effects.
   */
  function evaluate(
    kind: "sms" | "mms",
    account: FakeAccount,
    m: Json,
    media: { url: string; ok: boolean } | null,
    state: { budget: number; seen: Set<string> },
    now: number,
  ): Evaluation {
    const message_id = randomUUID().toUpperCase();
    const custom_string = typeof m.custom_string === "string" ? m.custom_string : "";
    const from = typeof m.from === "string" && m.from ? m.from : null;
    const recipient = recipientCountry(m.to);
    const minimal = (status: string): Evaluation => ({
      status,
      cost: 0,
      result: {
        to: m.to ?? null,
        body: m.body ?? null,
        from,
        schedule: "",
        message_id,
        custom_string,
        is_shared_system_number: from === null,
        status,
      },
    });
    if (!recipient) return minimal("INVALID_RECIPIENT");

    const rawBody = typeof m.body === "string" ? m.body : "";
    const sms = kind === "sms" ? smsParts(rawBody, settings.maxParts) : null;
    const body = sms ? sms.body : mmsBody(rawBody);
    const parts = sms ? sms.parts : 1;
    const schedule = scheduleOf(m.schedule);
    const isTest = TEST_NUMBERS.has(recipient.e164);
    const cost = isTest ? 0 : kind === "sms" ? parts * settings.smsPrice : settings.mmsPrice;
    const full = (status: string, billed: boolean): Evaluation => {
      const result: Json = {
        direction: "out",
        date: now,
        to: recipient.e164,
        body,
        from: from ?? SHARED_NUMBER,
        schedule: typeof schedule === "number" ? schedule : "",
        message_id,
        message_parts: billed ? parts : 0,
        message_price: (billed ? cost : 0).toFixed(4),
        from_email: null,
        list_id: null,
        custom_string,
        contact_id: null,
        user_id: account.user_id,
        subaccount_id: account.subaccount_id,
        is_shared_system_number: from === null,
        country: recipient.country,
        carrier: CARRIERS[recipient.country] ?? "Unknown",
        status,
      };
      if (kind === "mms") {
        result.subject = typeof m.subject === "string" ? m.subject.slice(0, 20) : null;
        result._media_file_url = media?.url ?? null;
      }
      return { status, cost: billed ? cost : 0, result };
    };

    if (!account.countries.includes(recipient.country)) return full("COUNTRY_NOT_ENABLED", false);
    if (!rawBody.trim()) return full("EMPTY_MESSAGE", false);
    if (kind === "mms" && !(typeof m.subject === "string" && m.subject.trim())) return full("SUBJECT_REQUIRED", false);
    if (kind === "mms" && !media?.ok) return full("INVALID_MEDIA_FILE", false);
    if (!validSender(m.from)) return full("INVALID_SENDER_ID", false);
    if (schedule === "invalid") return full("INVALID_SCHEDULE", false);
    const throttleKey = `${account.username}|${recipient.e164}|${rawBody}`;
    const last = throttle.get(throttleKey);
    if (
      settings.throttleWindowMs > 0 &&
      (state.seen.has(throttleKey) || (last !== undefined && Date.now() - last < settings.throttleWindowMs))
    ) {
      return full("THROTTLED", false);
    }
    if (cost > state.budget + 1e-9) return full("INSUFFICIENT_CREDIT", false);
    state.budget -= cost;
    state.seen.add(throttleKey);
    return full("SUCCESS", true);
  }

  function mediaCheck(url: unknown): { url: string; ok: boolean } {
    if (typeof url !== "string") return { url: "", ok: false };
    try {
      const parsed = new URL(url);
      // Type is decided by extension: jpg/gif go as-is; jpeg/png/bmp need /uploads?convert=mms.
      const ok = /^https?:$/.test(parsed.protocol) && /\.(jpg|gif)$/i.test(parsed.pathname);
      return { url, ok };
    } catch {
      return { url, ok: false };
    }
  }

  function handleSend(kind: "sms" | "mms", account: FakeAccount, payload: Json, commit: boolean) {
    const messages = payload.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return { status: 400, body: badRequest({ messages: "The messages field is required." }) };
    }
    if (messages.length > 1000) {
      return {
        status: 400,
        body: {
          http_code: 400,
          response_code: "TOO_MANY_RECIPIENTS",
          response_msg: "Too many recipients. You can send to at most 1000 recipients per request.",
          data: null,
        },
      };
    }
    let media: { url: string; ok: boolean } | null = null;
    if (kind === "mms") {
      if (payload.media_file === undefined || payload.media_file === "") {
        return { status: 400, body: badRequest({ media_file: "The media file field is required." }) };
      }
      media = mediaCheck(payload.media_file);
    }
    const now = Math.floor(Date.now() / 1000);
    const state = { budget: account.balance, seen: new Set<string>() };
    const results: Json[] = [];
    let total = 0;
    let queued = 0;
    let blocked = 0;
    for (const raw of messages) {
      const m = raw && typeof raw === "object" ? raw as Json : {};
      const ev = evaluate(kind, account, m, media, state, now);
      results.push(ev.result);
      total += ev.cost;
      if (ev.status === "SUCCESS") queued++;
      if (ev.status === "COUNTRY_NOT_ENABLED") blocked++;
      if (commit && ev.status === "SUCCESS") record(kind, account, ev.result, m, media, now);
    }
    if (commit) {
      account.balance = Math.max(0, state.budget);
      const sentAt = Date.now();
      for (const key of state.seen) throttle.set(key, sentAt);
    }
    if (commit && queued > 0) scheduleAutoReceipts(account, results);
    const data: Json = {
      total_price: Math.round(total * 10000) / 10000,
      total_count: messages.length,
      queued_count: queued,
      messages: results,
      _currency: CURRENCY,
      blocked_count: blocked,
    };
    if (!commit) data._summary = { countries: summaryByCountry(results) };
    return { status: 200, body: envelope(data, commit ? "Messages queued for delivery." : "Here are your data.") };
  }

  function summaryByCountry(results: Json[]) {
    const out: Record<string, { count: number; regulations: string }> = {};
    for (const r of results) {
      const c = typeof r.country === "string" && r.country ? r.country : "";
      if (!c) continue;
      out[c] ??= { count: 0, regulations: "No special regulations." };
      out[c].count++;
    }
    return out;
  }

  function record(kind: "sms" | "mms", account: FakeAccount, result: Json, m: Json, media: { url: string } | null, now: number) {
    const to = String(result.to);
    const schedule = typeof result.schedule === "number" ? result.schedule : null;
    const message: FakeMessage = {
      kind,
      username: account.username,
      message_id: String(result.message_id),
      to,
      body: String(result.body),
      from: typeof m.from === "string" && m.from ? m.from : null,
      custom_string: String(result.custom_string ?? ""),
      schedule,
      media_file: media?.url ?? null,
      subject: kind === "mms" ? String(result.subject ?? "") : null,
      date: now,
      country: String(result.country),
      message_parts: Number(result.message_parts),
      message_price: String(result.message_price),
      test_number: TEST_NUMBERS.has(to),
      status: schedule !== null && schedule > now ? "Scheduled" : "Sent",
      status_code: null,
      status_text: null,
    };
    received.push(message);
    byId.set(message.message_id, message);
  }

  // --- history -------------------------------------------------------------
  function historyRecord(m: FakeMessage): Json {
    const account = accountByName(m.username);
    const rec: Json = {
      direction: "out",
      date: m.date,
      to: m.to,
      body: m.body,
      from: m.from ?? SHARED_NUMBER,
      schedule: m.schedule ?? "",
      message_id: m.message_id,
      message_parts: m.message_parts,
      message_price: m.message_price,
      custom_string: m.custom_string,
      user_id: account?.user_id ?? null,
      subaccount_id: account?.subaccount_id ?? null,
      country: m.country,
      carrier: CARRIERS[m.country] ?? "Unknown",
      status: m.status,
      status_code: m.status_code,
      status_text: m.status_text,
      error_code: m.status_code === "301" ? "301" : null,
      error_text: m.status_code === "301" ? "Delivery failed." : null,
      _api_username: m.username,
    };
    if (m.kind === "mms") Object.assign(rec, { subject: m.subject, _media_file_url: m.media_file });
    return rec;
  }

  function handleHistory(kind: "sms" | "mms", account: FakeAccount, url: URL) {
    const q = url.searchParams;
    const page = Math.max(1, Number.parseInt(q.get("page") ?? "1", 10) || 1);
    // ClickSend documents limit 15..100 (default 15); out-of-range values are clamped.
    const limit = Math.min(100, Math.max(15, Number.parseInt(q.get("limit") ?? "15", 10) || 15));
    const from = q.get("date_from") ? Number(q.get("date_from")) : undefined;
    const to = q.get("date_to") ? Number(q.get("date_to")) : undefined;
    const filters = (q.get("q") ?? "")
      .split(",")
      .filter(Boolean)
      .map((term) => {
        const i = term.indexOf(":");
        return [term.slice(0, i), term.slice(i + 1)] as const;
      })
      .filter(([field]) => ["status", "to", "from", "subaccount_id", "message_id"].includes(field));
    let rows = received
      .filter((m) => m.kind === kind && m.username === account.username)
      .map(historyRecord)
      .filter((r) => (from === undefined || Number(r.date) >= from) && (to === undefined || Number(r.date) <= to))
      .filter((r) => filters.every(([field, value]) => String(r[field]).toLowerCase() === value.toLowerCase()));
    const [orderField, direction] = (q.get("order_by") ?? "date:asc").split(":");
    if (["date", "to", "from", "status", "message_id"].includes(orderField)) {
      const sign = direction === "desc" ? -1 : 1;
      rows = rows
        .map((r, i) => [r, i] as const)
        .sort(([a, i], [b, j]) => {
          const x = a[orderField] as string | number;
          const y = b[orderField] as string | number;
          return (x < y ? -1 : x > y ? 1 : i - j) * sign;
        })
        .map(([r]) => r);
    }
    const total = rows.length;
    const lastPage = Math.ceil(total / limit); // 0 when empty, as ClickSend answers
    const slice = rows.slice((page - 1) * limit, page * limit);
    const pageUrl = (p: number) => {
      const u = new URL(url);
      u.searchParams.set("page", String(p));
      return u.toString();
    };
    return envelope({
      total,
      per_page: limit,
      current_page: page,
      last_page: lastPage,
      next_page_url: page < lastPage ? pageUrl(page + 1) : null,
      prev_page_url: page > 1 ? pageUrl(page - 1) : null,
      from: slice.length ? (page - 1) * limit + 1 : null,
      to: slice.length ? (page - 1) * limit + slice.length : null,
      data: slice,
    });
  }

  // --- account -------------------------------------------------------------
  function accountBody(account: FakeAccount) {
    return envelope({
      user_id: account.user_id,
      username: account.username,
      user_email: `${account.username}@example.test`,
      user_phone: "+61400000000",
      user_first_name: "Demo",
      user_last_name: "User",
      active: 1,
      banned: 0,
      balance: account.balance.toFixed(6),
      balance_commission: "0.000000",
      default_country_sms: "AU",
      setting_unicode_sms: 0,
      setting_sms_message_char_limit: settings.maxParts,
      on_trial: 0,
      _currency: CURRENCY,
      // A live credential in the real API: present here so redaction can be tested.
      _subaccount: {
        subaccount_id: account.subaccount_id,
        api_username: account.username,
        email: `${account.username}@example.test`,
        api_key: `SUBACCOUNT-KEY-${account.username.toUpperCase()}-F4K3`,
        access_users: 1,
        access_billing: 1,
      },
    });
  }

  function usageBody(account: FakeAccount, year: number, month: number) {
    const inMonth = received.filter((m) => {
      const d = new Date(m.date * 1000);
      return m.username === account.username && d.getUTCFullYear() === year && d.getUTCMonth() + 1 === month;
    });
    const sum = (kind: string) => {
      const list = inMonth.filter((m) => m.kind === kind);
      return {
        count: list.length,
        price: list.reduce((a, m) => a + Number(m.message_price), 0).toFixed(4),
      };
    };
    return envelope([
      { subaccount_id: account.subaccount_id, first_name: "Demo", last_name: "User", sms: sum("sms"), mms: sum("mms") },
    ]);
  }

  // --- automation rules ----------------------------------------------------
  function createRule(kind: "receipts" | "inbound", account: FakeAccount, p: Json) {
    const errors: Record<string, string> = {};
    if (typeof p.rule_name !== "string" || !p.rule_name) errors.rule_name = "The rule name field is required.";
    const action = typeof p.action === "string" ? p.action : "";
    if (!["URL", "POLL", "EMAIL_USER", "EMAIL_FIXED", "NONE"].includes(action)) {
      errors.action = "The selected action is invalid.";
    }
    if (action === "URL") {
      try {
        const u = new URL(String(p.action_address));
        if (!/^https?:$/.test(u.protocol)) throw new Error();
      } catch {
        errors.action_address = "The action address must be a valid URL.";
      }
    }
    // Inbound URL rules require webhook_type; receipt rules default to a form POST.
    const webhookType = p.webhook_type ?? (kind === "receipts" ? "post" : undefined);
    if (action === "URL" && !["post", "json", "get"].includes(String(webhookType))) {
      errors.webhook_type = "The webhook type must be one of post, get, json.";
    }
    if (kind === "inbound" && (typeof p.dedicated_number !== "string" || !p.dedicated_number)) {
      errors.dedicated_number = "The dedicated number field is required.";
    }
    if (Object.keys(errors).length) return { status: 400, body: badRequest(errors) };
    const rule: Rule = {
      id: nextRuleId++,
      username: account.username,
      rule_name: String(p.rule_name),
      action,
      action_address: typeof p.action_address === "string" ? p.action_address : "",
      enabled: p.enabled === 0 || p.enabled === "0" || p.enabled === false ? 0 : 1,
      webhook_type: (webhookType ?? "post") as WebhookType,
    };
    if (kind === "receipts") {
      rule.match_type = Number(p.match_type ?? 0);
      receiptRules.push(rule);
    } else {
      rule.dedicated_number = String(p.dedicated_number);
      rule.message_search_type = Number(p.message_search_type ?? 0);
      rule.message_search_term = typeof p.message_search_term === "string" ? p.message_search_term : "";
      inboundRules.push(rule);
    }
    return { status: 200, body: envelope(ruleJson(kind, rule), "New rule has been saved.") };
  }

  function ruleJson(kind: "receipts" | "inbound", rule: Rule): Json {
    const { id, username: _owner, ...rest } = rule;
    return { [kind === "receipts" ? "receipt_rule_id" : "inbound_rule_id"]: id, ...rest };
  }

  function listRules(kind: "receipts" | "inbound", account: FakeAccount) {
    const rules = (kind === "receipts" ? receiptRules : inboundRules).filter((r) => r.username === account.username);
    return envelope({
      total: rules.length,
      per_page: 15,
      current_page: 1,
      last_page: rules.length ? 1 : 0,
      data: rules.map((r) => ruleJson(kind, r)),
    });
  }

  function deleteRule(kind: "receipts" | "inbound", account: FakeAccount, id: number) {
    const list = kind === "receipts" ? receiptRules : inboundRules;
    const index = list.findIndex((r) => r.id === id && r.username === account.username);
    if (index < 0) return { status: 404, body: { ...BODY_404, response_msg: "Resource not found." } };
    list.splice(index, 1);
    return { status: 200, body: envelope(true, "Rule has been deleted.") };
  }

  // --- pushes --------------------------------------------------------------
  async function push(
    kind: PushRecord["kind"],
    target: { url: string; webhook_type: WebhookType },
    fields: Record<string, string>,
  ): Promise<PushRecord> {
    const record: PushRecord = {
      kind,
      url: target.url,
      webhook_type: target.webhook_type,
      message_id: fields.message_id,
      at: Date.now(),
    };
    try {
      const signal = AbortSignal.any([lifetime.signal, AbortSignal.timeout(10_000)]);
      let response: Response;
      if (target.webhook_type === "get") {
        const u = new URL(target.url);
        for (const [k, v] of Object.entries(fields)) u.searchParams.set(k, v);
        response = await fetch(u, { method: "GET", signal });
      } else {
        const json = target.webhook_type === "json";
        response = await fetch(target.url, {
          method: "POST",
          headers: { "content-type": json ? "application/json" : "application/x-www-form-urlencoded" },
          body: json ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
          signal,
        });
      }
      await response.arrayBuffer();
      record.status = response.status;
    } catch (error) {
      record.error = (error as Error).message;
    }
    pushes.push(record);
    if (pushes.length > MAX_PUSH_LOG) pushes.splice(0, pushes.length - MAX_PUSH_LOG);
    return record;
  }

  const RECEIPT_TEXT: Record<string, { text: string; status: string; history: string }> = {
    "200": { text: "Success: Message sent to the network.", status: "Sent", history: "Sent" },
    "201": { text: "Success: Message received on handset.", status: "Delivered", history: "Completed" },
    "300": { text: "Failed: Message could not be delivered.", status: "Undelivered", history: "Failed" },
    "301": { text: "Failed: Message could not be delivered.", status: "Undelivered", history: "Failed" },
    "302": { text: "Failed: Temporary routing failure.", status: "Undelivered", history: "Failed" },
  };

  function receiptFields(m: FakeMessage, statusCode: string): Record<string, string> {
    const account = accountByName(m.username);
    const info = RECEIPT_TEXT[statusCode] ?? RECEIPT_TEXT["301"];
    const failed = info.status === "Undelivered";
    return {
      timestamp_send: String(m.date),
      timestamp: String(Math.floor(Date.now() / 1000)),
      message_id: m.message_id,
      status_code: statusCode,
      status_text: info.text,
      error_code: failed ? statusCode : "",
      error_text: failed ? info.text : "",
      custom_string: m.custom_string,
      subaccount_id: String(account?.subaccount_id ?? ""),
      user_id: String(account?.user_id ?? ""),
      message_type: m.kind,
      status: info.status,
    };
  }

  function applyReceipt(m: FakeMessage, statusCode: string) {
    m.status_code = statusCode;
    m.status_text = (RECEIPT_TEXT[statusCode] ?? RECEIPT_TEXT["301"]).text;
    m.status = (RECEIPT_TEXT[statusCode] ?? RECEIPT_TEXT["301"]).history;
  }

  const activeUrlRules = (rules: Rule[], username: string) =>
    rules.filter((r) => r.username === username && r.enabled && r.action === "URL");

  /** After a send: a 201 receipt per delivered (non-test, unscheduled) SMS, if a rule exists. */
  function scheduleAutoReceipts(account: FakeAccount, results: Json[]) {
    if (!settings.autoReceipts) return;
    const rules = activeUrlRules(receiptRules, account.username);
    if (rules.length === 0) return;
    const due = results
      .filter((r) => r.status === "SUCCESS" && r.schedule === "" && !("subject" in r))
      .map((r) => byId.get(String(r.message_id)))
      .filter((m): m is FakeMessage => !!m && !m.test_number);
    if (due.length === 0) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const jobs = due.flatMap((m) =>
        rules.map((rule) => () => {
          applyReceipt(m, "201");
          return push("delivery_receipt", { url: rule.action_address, webhook_type: rule.webhook_type }, receiptFields(m, "201"));
        })
      );
      void runLimited(jobs, PUSH_CONCURRENCY);
    }, settings.receiptDelayMs);
    timers.add(timer);
  }

  async function runLimited(jobs: Array<() => Promise<unknown>>, limit: number) {
    let next = 0;
    const worker = async () => {
      while (next < jobs.length && !lifetime.signal.aborted) await jobs[next++]();
    };
    await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  }

  function targetsFor(rules: Rule[], p: Json) {
    if (typeof p.url === "string") {
      const type = (p.webhook_type ?? "post") as WebhookType;
      return [{ url: p.url, webhook_type: type }];
    }
    return rules.map((r) => ({ url: r.action_address, webhook_type: r.webhook_type }));
  }

  async function controlReceipt(p: Json) {
    const m = byId.get(String(p.message_id ?? ""));
    if (!m) return { status: 404, body: { error: "unknown message_id" } };
    const statusCode = String(p.status_code ?? "201");
    if (!RECEIPT_TEXT[statusCode]) return { status: 400, body: { error: "status_code must be 200, 201, 300, 301 or 302" } };
    const targets = targetsFor(activeUrlRules(receiptRules, m.username), p);
    if (targets.length === 0) {
      return { status: 409, body: { error: "no receipt rule: POST /v3/automations/sms/receipts first, or pass url" } };
    }
    applyReceipt(m, statusCode);
    const copies = 1 + Math.max(0, Number(p.duplicate ?? 0) || 0);
    const records: PushRecord[] = [];
    for (let i = 0; i < copies; i++) {
      const fields = receiptFields(m, statusCode); // identical message_id: a true duplicate
      for (const t of targets) records.push(await push("delivery_receipt", t, fields));
    }
    return { status: 200, body: { pushes: records } };
  }

  function matchesInbound(rule: Rule, to: string, body: string) {
    if (rule.dedicated_number !== "*" && rule.dedicated_number !== to) return false;
    const term = (rule.message_search_term ?? "").toLowerCase();
    const text = body.toLowerCase();
    switch (rule.message_search_type) {
      case 1:
        return text.startsWith(term);
      case 2:
        return text.includes(term);
      case 3:
        return !text.includes(term);
      default:
        return true;
    }
  }

  async function controlInbound(p: Json) {
    const from = String(p.from ?? "");
    const to = String(p.to ?? "");
    const body = String(p.body ?? "");
    if (!from || !to || !body) return { status: 400, body: { error: "from, to and body are required" } };
    // A reply is matched to the latest message we sent to that number (or the given id).
    const original = typeof p.original_message_id === "string"
      ? byId.get(p.original_message_id)
      : [...received].reverse().find((m) => m.to === from && m.kind === "sms");
    const owner = original?.username ?? (typeof p.username === "string" ? p.username : undefined);
    const rules = inboundRules.filter((r) =>
      r.enabled && r.action === "URL" && (!owner || r.username === owner) && matchesInbound(r, to, body)
    );
    const targets = targetsFor(rules, p);
    if (targets.length === 0) {
      return { status: 409, body: { error: "no matching inbound rule: POST /v3/automations/sms/inbound first, or pass url" } };
    }
    const account = owner ? accountByName(owner) : undefined;
    const originalId = typeof p.original_message_id === "string" ? p.original_message_id : original?.message_id ?? "";
    const fields: Record<string, string> = {
      timestamp: String(Math.floor(Date.now() / 1000)),
      from,
      body,
      original_body: original?.body ?? "",
      original_message_id: originalId,
      to,
      custom_string: original?.custom_string ?? "",
      message_id: randomUUID().toUpperCase(),
      _keyword: body.trim().split(/\s+/)[0]?.toLowerCase() ?? "",
      user_id: String(account?.user_id ?? ""),
      subaccount_id: String(account?.subaccount_id ?? ""),
      // Legacy duplicates that older form handlers still read.
      originalsenderid: from,
      message: body,
      sms: body,
      originalmessageid: originalId,
      customstring: original?.custom_string ?? "",
      originalmessage: original?.body ?? "",
    };
    const copies = 1 + Math.max(0, Number(p.duplicate ?? 0) || 0);
    const records: PushRecord[] = [];
    for (let i = 0; i < copies; i++) for (const t of targets) records.push(await push("inbound", t, fields));
    return { status: 200, body: { message_id: fields.message_id, pushes: records } };
  }

  function controlAccount(p: Json) {
    const account = accountByName(String(p.username ?? ""));
    if (!account) return { status: 404, body: { error: "unknown account" } };
    if (typeof p.balance === "number") account.balance = p.balance;
    if (Array.isArray(p.countries)) account.countries = p.countries.map(String);
    if (p.state === "active" || p.state === "notactive" || p.state === "banned") account.state = p.state;
    return { status: 200, body: { ...account, balance: account.balance.toFixed(6) } };
  }

  function controlConfig(p: Json) {
    if (typeof p.receipt_delay_ms === "number") settings.receiptDelayMs = p.receipt_delay_ms;
    if (typeof p.throttle_window_ms === "number") settings.throttleWindowMs = p.throttle_window_ms;
    if (typeof p.auto_receipts === "boolean") settings.autoReceipts = p.auto_receipts;
    const limits = p.rate_limits as { account?: RateLimit; default?: RateLimit } | undefined;
    if (limits?.account) settings.rateLimits.account = limits.account;
    if (limits?.default) settings.rateLimits.default = limits.default;
    windows.clear();
    return { status: 200, body: { ...settings } };
  }

  function addFault(f: FakeFault) {
    if (!["http500", "timeout", "drop", "slow"].includes(f.mode)) throw new Error(`unknown fault mode ${f.mode}`);
    faults.push({ mode: f.mode, path: f.path, count: f.count ?? 1, after: f.after ?? 0, delay_ms: f.delay_ms ?? 1000 });
  }

  // --- routing -------------------------------------------------------------
  type Result = { status: number; body: unknown };
  type Handler = (account: FakeAccount, payload: Json, url: URL, match: RegExpMatchArray) => Result;
  const ok = (body: unknown): Result => ({ status: 200, body });
  const routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [
    { method: "POST", pattern: /^\/sms\/send$/, handler: (a, p) => handleSend("sms", a, p, true) },
    { method: "POST", pattern: /^\/sms\/price$/, handler: (a, p) => handleSend("sms", a, p, false) },
    { method: "POST", pattern: /^\/mms\/send$/, handler: (a, p) => handleSend("mms", a, p, true) },
    { method: "POST", pattern: /^\/mms\/price$/, handler: (a, p) => handleSend("mms", a, p, false) },
    { method: "GET", pattern: /^\/sms\/history$/, handler: (a, _p, u) => ok(handleHistory("sms", a, u)) },
    { method: "GET", pattern: /^\/mms\/history$/, handler: (a, _p, u) => ok(handleHistory("mms", a, u)) },
    { method: "GET", pattern: /^\/account$/, handler: (a) => ok(accountBody(a)) },
    {
      method: "GET",
      pattern: /^\/account\/usage\/(\d{4})\/(\d{1,2})\/subaccount$/,
      handler: (a, _p, _u, m) => {
        const month = Number(m[2]);
        if (month < 1 || month > 12) return { status: 400, body: badRequest({ month: "The month must be between 1 and 12." }) };
        return ok(usageBody(a, Number(m[1]), month));
      },
    },
    { method: "POST", pattern: /^\/automations\/sms\/receipts$/, handler: (a, p) => createRule("receipts", a, p) },
    { method: "GET", pattern: /^\/automations\/sms\/receipts$/, handler: (a) => ok(listRules("receipts", a)) },
    {
      method: "DELETE",
      pattern: /^\/automations\/sms\/receipts\/(\d+)$/,
      handler: (a, _p, _u, m) => deleteRule("receipts", a, Number(m[1])),
    },
    { method: "POST", pattern: /^\/automations\/sms\/inbound$/, handler: (a, p) => createRule("inbound", a, p) },
    { method: "GET", pattern: /^\/automations\/sms\/inbound$/, handler: (a) => ok(listRules("inbound", a)) },
    {
      method: "DELETE",
      pattern: /^\/automations\/sms\/inbound\/(\d+)$/,
      handler: (a, _p, _u, m) => deleteRule("inbound", a, Number(m[1])),
    },
  ];

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    let p: Json = {};
    try {
      p = raw ? JSON.parse(raw) : {};
    } catch {
      return reply(res, 400, { error: "invalid JSON" });
    }
    const route = `${req.method} ${url.pathname}`;
    let result: Result;
    switch (route) {
      case "GET /__fake/messages":
        result = ok({ messages: received });
        break;
      case "GET /__fake/requests":
        result = ok({ requests: Object.fromEntries(counts) });
        break;
      case "GET /__fake/pushes":
        result = ok({ pushes });
        break;
      case "POST /__fake/reset":
        reset({ rules: p.rules === true });
        result = ok({ ok: true });
        break;
      case "POST /__fake/faults":
        try {
          addFault(p as unknown as FakeFault);
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
      case "POST /__fake/receipts":
        result = await controlReceipt(p);
        break;
      case "POST /__fake/inbound":
        result = await controlInbound(p);
        break;
      case "POST /__fake/accounts":
        result = controlAccount(p);
        break;
      case "POST /__fake/config":
        result = controlConfig(p);
        break;
      default:
        result = { status: 404, body: { error: "unknown control endpoint" } };
    }
    reply(res, result.status, result.body);
  }

  function handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const path = url.pathname.replace(/^\/v3/, "").replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    const key = `${method} ${url.pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);

    const taken = takeFault(url.pathname);
    const fault = taken?.mode;
    if (fault === "drop") return void req.socket.destroy();
    if (fault === "timeout") {
      const socket = req.socket; // never answered; destroyed by the client or close()
      hanging.add(socket);
      socket.once("close", () => hanging.delete(socket));
      return;
    }

    const route = routes.find((r) => r.method === method && r.pattern.test(path));
    const isAccount = method === "GET" && path === "/account";
    const limitKey = route ? `${route.method} ${route.pattern.source}` : "unknown";
    const rl = rateLimit(limitKey, isAccount ? settings.rateLimits.account : settings.rateLimits.default);
    if (rl.exceeded) return reply(res, 429, BODY_429, rl.headers);
    if (fault === "http500") return reply(res, 500, BODY_500, rl.headers);
    if (!url.pathname.startsWith("/v3/") || !route) return reply(res, 404, BODY_404, rl.headers);

    const account = authenticate(req.headers.authorization);
    if (account === 401) return reply(res, 401, BODY_401, rl.headers);
    if (account === 403) return reply(res, 403, BODY_403, rl.headers);

    let payload: Json = {};
    if (raw) {
      try {
        const parsed = JSON.parse(raw);
        payload = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
      } catch {
        return reply(res, 400, badRequest({}, "Invalid JSON in request body."), rl.headers);
      }
    }
    const result = route.handler(account, payload, url, path.match(route.pattern)!);
    if (fault === "slow") {
      // The provider has acted (a send is accepted and recorded); only the answer is late.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) reply(res, result.status, result.body, rl.headers);
      }, taken!.delay_ms);
      timers.add(timer);
      return;
    }
    reply(res, result.status, result.body, rl.headers);
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
      if (tooLarge) {
        return reply(res, 413, { http_code: 413, response_code: "PAYLOAD_TOO_LARGE", response_msg: "Request too large.", data: null });
      }
      const raw = Buffer.concat(chunks).toString("utf8");
      if (url.pathname.startsWith("/__fake/")) {
        handleControl(req, res, url, raw).catch((error) => reply(res, 500, { error: String(error) }));
        return;
      }
      try {
        handleApi(req, res, url, raw);
      } catch {
        if (!res.headersSent) reply(res, 500, BODY_500);
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
    url: `http://${host}:${port}/v3`,
    port,
    received,
    pushes,
    requestCounts: () => Object.fromEntries(counts),
    addFault,
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
