/**
 * A faithful SendGrid v3 fake for the local stack, tests and benchmarks.
 *
 * Behaves like the real API where our code can tell the difference (providers.md §2 and
 * the "SendGrid fake" checklist in §6): Bearer keys with scopes, verified senders,
 * 400s with SendGrid's errors[] and dotted field paths, 413 over 30 MB, 202 + X-Message-Id
 * (200 in sandbox mode), X-RateLimit-* on every /v3 response and 429, Event Webhook
 * settings and ECDSA-signed event posts.
 *
 * Deliberately independent of supabase/functions/_shared: the adapter is tested
 * against this fake, so sharing code (e.g. the DER converter) would hide bugs.
 *
 * Control surface (not SendGrid's) under /__fake:
 *   GET  /__fake/messages            accepted mails, newest last   ({messages:[…]})
 *   GET  /__fake/requests            every /v3 request seen        ({requests:[…]})
 *   POST /__fake/reset               forget messages, requests, faults, rate counters
 *   POST /__fake/faults              {mode:"http500"|"timeout"|"drop", count?=1}
 *   POST /__fake/config              {rate_limit?:{limit,window_seconds}, verified_senders?, webhook_delay_ms?}
 *   POST /__fake/events              {message_id, events:[…], email?, url?, duplicate?, tamper?}
 *
 * No per-request logging: benchmarks drive thousands of requests through it.
 */
import { randomBytes, webcrypto } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

const subtle = webcrypto.subtle;

export const SENDGRID_FAKE_KEYS: Record<string, string[]> = {
  "SG.demo-key": [
    "mail.send",
    "scopes.read",
    "user.webhooks.event.settings.read",
    "user.webhooks.event.settings.update",
    "user.webhooks.event.test.create",
  ],
  // A valid key that cannot send: tests the 403 path and testConnection's scope check.
  "SG.no-send-scope": ["scopes.read", "user.webhooks.event.settings.read"],
};

export const SENDGRID_FAKE_VERIFIED_SENDERS = ["agent@example.com", "demo@switchboard.local"];

const MAX_BODY_BYTES = 30 * 1024 * 1024;
const MAX_RECIPIENTS = 1000;
const MAX_SCHEDULE_AHEAD_S = 72 * 3600;
const CUSTOM_ARGS_MAX_BYTES = 10_000;
/** Bound memory in long benchmark runs: older entries are dropped beyond this. */
const MAX_STORED = 10_000;
const HELP_URL = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html";
// Simple, WHATWG-like address check (SendGrid's own is stricter than RFC 5322).
const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
// A flat class plus a length check: a `(?:…{4})*` group overflows V8's regex stack on MB-sized input.
const isBase64 = (s: string) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);

export type FaultMode = "http500" | "timeout" | "drop";
export type Tamper = "bad_signature" | "stale" | "mutate_body";

export interface SendGridFakeOptions {
  port?: number;
  host?: string;
  /** API key → scopes. Default {@link SENDGRID_FAKE_KEYS}. */
  keys?: Record<string, string[]>;
  /** Default {@link SENDGRID_FAKE_VERIFIED_SENDERS}; compared case-insensitively. */
  verifiedSenders?: string[];
  /** Requests per key per window. Default high enough never to bother a benchmark. */
  rateLimit?: { limit: number; windowSeconds: number };
  /** Delay before `processed` and again before `delivered` (default 50 ms). */
  webhookDelayMs?: number;
  /** Event webhook preset, as if PATCHed. */
  webhook?: { url: string; enabled?: boolean; signed?: boolean };
}

export interface FakeRequestRecord {
  method: string;
  path: string;
  /** HTTP status answered, or null when a fault swallowed the request. */
  status: number | null;
  fault?: FaultMode;
  at: number;
}

export interface FakeMessage {
  message_id: string;
  received_at: number;
  sandbox: boolean;
  api_key_suffix: string;
  from: { email: string; name?: string };
  reply_to?: { email: string; name?: string };
  subject?: string;
  content?: { type: string; value: string }[];
  template_id?: string;
  personalizations: Record<string, unknown>[];
  attachments?: { filename: string; type?: string; size: number }[];
  categories?: string[];
  custom_args?: Record<string, string>;
  send_at?: number;
  /** Every distinct recipient (to, cc, bcc) in lower case. */
  recipients: string[];
}

export interface SendGridFake {
  /** Base URL without /v3, e.g. http://127.0.0.1:54321. */
  url: string;
  port: number;
  /** Base64 DER SPKI of the event-webhook signing key (what SendGrid's API returns). */
  publicKey: string;
  /** Every /v3 request seen (including faulted ones). */
  received: FakeRequestRecord[];
  /** Accepted mails. */
  messages: FakeMessage[];
  reset(): void;
  close(): Promise<void>;
}

interface SgError {
  message: string;
  field: string | null;
  help: string | null;
}

interface WebhookSettings {
  enabled: boolean;
  url: string;
  signed: boolean;
}

// ---------------------------------------------------------------------------
// Crypto helpers (raw r‖s → DER, as SendGrid's signatures are DER)
// ---------------------------------------------------------------------------

function derInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let value = Buffer.from(bytes.subarray(start));
  // DER integers are signed: a set high bit needs a 0x00 in front to stay positive.
  if (value[0] & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return Buffer.concat([Buffer.from([0x02, value.length]), value]);
}

function rawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** SendGrid-like 22-character ids (base64url of 16 random bytes), e.g. euo2iKxdSayPF4YE4--I7A. */
const newId = () => randomBytes(16).toString("base64url");

// ---------------------------------------------------------------------------
// Mail Send validation: returns SendGrid's errors[] (all of them, like SendGrid)
// ---------------------------------------------------------------------------

const err = (message: string, field: string | null, help: string | null = null): SgError => ({ message, field, help });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function validateAddress(value: unknown, path: string, errors: SgError[], kind: string): string | null {
  if (!isObject(value) || typeof value.email !== "string" || value.email === "") {
    errors.push(err(`The ${kind} email address is required.`, `${path}.email`, `${HELP_URL}#message.personalizations`));
    return null;
  }
  if (!EMAIL_RE.test(value.email) || value.email.length > 254) {
    errors.push(err("Does not contain a valid address.", `${path}.email`, `${HELP_URL}#message.personalizations`));
  }
  if (value.name !== undefined && (typeof value.name !== "string" || /[;,]/.test(value.name))) {
    errors.push(err(`The ${kind}.name cannot contain either ; or , characters.`, `${path}.name`, null));
  }
  return value.email.toLowerCase();
}

function customArgsErrors(args: unknown, path: string, errors: SgError[]): number {
  if (args === undefined) return 0;
  if (!isObject(args)) {
    errors.push(err("custom_args must be an object of string values.", path, null));
    return 0;
  }
  for (const [k, v] of Object.entries(args)) {
    if (typeof v !== "string") errors.push(err("Custom arguments values must be strings.", `${path}.${k}`, null));
  }
  return Buffer.byteLength(JSON.stringify(args));
}

function validateMail(body: Record<string, unknown>, nowS: number): SgError[] {
  const errors: SgError[] = [];
  const hasTemplate = typeof body.template_id === "string" && body.template_id !== "";
  let customArgsBytes = customArgsErrors(body.custom_args, "custom_args", errors);

  // personalizations
  const ps = body.personalizations;
  if (!Array.isArray(ps) || ps.length === 0) {
    errors.push(err(
      "The personalizations field is required and must have at least one personalization.",
      "personalizations",
      `${HELP_URL}#-Personalizations-Errors`,
    ));
  } else if (ps.length > MAX_RECIPIENTS) {
    errors.push(err(
      "You may not have more than 1000 personalizations per API request. You may need to batch your request.",
      "personalizations",
      `${HELP_URL}#-Personalizations-Errors`,
    ));
  } else {
    let total = 0;
    ps.forEach((p, i) => {
      const path = `personalizations.${i}`;
      if (!isObject(p)) {
        errors.push(err("Each personalization must be an object.", path, null));
        return;
      }
      if (!Array.isArray(p.to) || p.to.length === 0) {
        errors.push(err(
          "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
          `${path}.to`,
          `${HELP_URL}#message.personalizations.to`,
        ));
      }
      const seen = new Map<string, string>();
      for (const kind of ["to", "cc", "bcc"] as const) {
        const list = p[kind];
        if (list === undefined) continue;
        if (!Array.isArray(list)) {
          errors.push(err(`The ${kind} field must be an array of email objects.`, `${path}.${kind}`, null));
          continue;
        }
        list.forEach((addr, j) => {
          total++;
          const email = validateAddress(addr, `${path}.${kind}.${j}`, errors, kind);
          if (email === null) return;
          if (seen.has(email)) {
            errors.push(err(
              `Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [${email}] in the ${path}.${kind} field.`,
              path,
              `${HELP_URL}#message.recipient-errors`,
            ));
          }
          seen.set(email, kind);
        });
      }
      if (p.subject !== undefined && (typeof p.subject !== "string" || p.subject === "")) {
        errors.push(err("The subject must be a string at least one character in length.", `${path}.subject`, null));
      }
      if (p.send_at !== undefined) sendAtErrors(p.send_at, `${path}.send_at`, nowS, errors);
      customArgsBytes += customArgsErrors(p.custom_args, `${path}.custom_args`, errors);
    });
    if (total > MAX_RECIPIENTS) {
      errors.push(err(
        "The total number of recipients (to, cc and bcc) must be less than or equal to 1000.",
        "personalizations",
        `${HELP_URL}#message.recipient-errors`,
      ));
    }
  }

  // from / reply_to
  if (body.from === undefined) {
    errors.push(err(
      "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.",
      "from",
      `${HELP_URL}#message.from`,
    ));
  } else {
    validateAddress(body.from, "from", errors, "from");
  }
  if (body.reply_to !== undefined && body.reply_to_list !== undefined) {
    errors.push(err("The reply_to and reply_to_list properties are mutually exclusive.", "reply_to", null));
  } else if (body.reply_to !== undefined) {
    validateAddress(body.reply_to, "reply_to", errors, "reply_to");
  } else if (body.reply_to_list !== undefined) {
    if (!Array.isArray(body.reply_to_list) || body.reply_to_list.length === 0) {
      errors.push(err("reply_to_list must be a non-empty array.", "reply_to_list", null));
    } else {
      body.reply_to_list.forEach((a, i) => validateAddress(a, `reply_to_list.${i}`, errors, "reply_to"));
    }
  }

  // subject: top level, or on every personalization, or from a template
  if (body.subject !== undefined && (typeof body.subject !== "string" || body.subject === "")) {
    errors.push(err("The subject must be a string at least one character in length.", "subject", `${HELP_URL}#message.subject`));
  } else if (body.subject === undefined && !hasTemplate) {
    const everyHasSubject = Array.isArray(ps) && ps.length > 0 &&
      ps.every((p) => isObject(p) && typeof p.subject === "string" && p.subject !== "");
    if (!everyHasSubject) {
      errors.push(err(
        "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
        "subject",
        `${HELP_URL}#message.subject`,
      ));
    }
  }

  // content
  if (body.content === undefined || (Array.isArray(body.content) && body.content.length === 0)) {
    if (!hasTemplate) {
      errors.push(err(
        "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.",
        "content",
        `${HELP_URL}#message.content`,
      ));
    }
  } else if (!Array.isArray(body.content)) {
    errors.push(err("The content parameter must be an array of content objects.", "content", null));
  } else {
    const types: string[] = [];
    body.content.forEach((c, i) => {
      if (!isObject(c) || typeof c.type !== "string" || c.type === "") {
        errors.push(err("The content type must be a string at least one character in length.", `content.${i}.type`, null));
      } else {
        types.push(c.type.toLowerCase());
      }
      if (!isObject(c) || typeof c.value !== "string" || c.value === "") {
        errors.push(err("The content value must be a string at least one character in length.", `content.${i}.value`, `${HELP_URL}#message.content.value`));
      }
    });
    // text/plain first, then text/html, then anything else; each at most once.
    const plain = types.indexOf("text/plain");
    const html = types.indexOf("text/html");
    const once = (t: string) => types.filter((x) => x === t).length <= 1;
    const ordered = plain <= 0 && (html < 0 || html === (plain === 0 ? 1 : 0));
    if (!ordered || !once("text/plain") || !once("text/html")) {
      errors.push(err(
        "If present, text/plain and text/html may only be provided once, text/plain must be first, followed by text/html, followed by any other content.",
        "content",
        `${HELP_URL}#message.content`,
      ));
    }
  }

  // attachments
  if (body.attachments !== undefined) {
    if (!Array.isArray(body.attachments)) {
      errors.push(err("The attachments parameter must be an array.", "attachments", null));
    } else {
      body.attachments.forEach((a, i) => {
        const path = `attachments.${i}`;
        if (!isObject(a) || typeof a.content !== "string" || a.content === "") {
          errors.push(err("The attachment content is required.", `${path}.content`, `${HELP_URL}#message.attachments.content`));
        } else if (!isBase64(a.content)) {
          errors.push(err("The attachment content must be base64 encoded.", `${path}.content`, `${HELP_URL}#message.attachments.content`));
        }
        if (!isObject(a) || typeof a.filename !== "string" || a.filename === "") {
          errors.push(err("The attachment filename parameter is required.", `${path}.filename`, `${HELP_URL}#message.attachments.filename`));
        }
        if (isObject(a) && a.disposition !== undefined && a.disposition !== "attachment" && a.disposition !== "inline") {
          errors.push(err("The disposition must be either attachment or inline.", `${path}.disposition`, null));
        }
      });
    }
  }

  // categories
  if (body.categories !== undefined) {
    const cats = body.categories;
    if (!Array.isArray(cats)) {
      errors.push(err("The categories parameter must be an array of strings.", "categories", null));
    } else {
      if (cats.length > 10) {
        errors.push(err("You cannot have more than 10 categories associated with an email.", "categories", `${HELP_URL}#message.categories`));
      }
      if (new Set(cats).size !== cats.length) {
        errors.push(err("The categories must be unique.", "categories", `${HELP_URL}#message.categories`));
      }
      cats.forEach((c, i) => {
        if (typeof c !== "string" || c.length > 255) {
          errors.push(err("A category cannot be longer than 255 characters.", `categories.${i}`, `${HELP_URL}#message.categories`));
        }
      });
    }
  }

  if (body.send_at !== undefined) sendAtErrors(body.send_at, "send_at", nowS, errors);
  if (customArgsBytes >= CUSTOM_ARGS_MAX_BYTES) {
    errors.push(err("The custom_args parameter must be less than 10000 bytes in total.", "custom_args", `${HELP_URL}#message.custom_args`));
  }
  if (body.template_id !== undefined && typeof body.template_id !== "string") {
    errors.push(err("The template_id must be a string.", "template_id", null));
  }
  return errors;
}

function sendAtErrors(value: unknown, field: string, nowS: number, errors: SgError[]) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    errors.push(err("The send_at parameter must be a Unix timestamp (integer seconds).", field, `${HELP_URL}#message.send_at`));
  } else if (value - nowS > MAX_SCHEDULE_AHEAD_S) {
    errors.push(err("The send_at parameter can't be scheduled more than 72 hours in advance.", field, `${HELP_URL}#message.send_at`));
  }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

type EventSpec = string | ({ event: string } & Record<string, unknown>);

/** Extra fields per event type, as SendGrid sends them (providers.md §2.3). */
function eventFields(name: string): Record<string, unknown> {
  switch (name) {
    case "deferred":
      return { event: "deferred", response: "400 4.2.2 Mailbox full, try again later", attempt: "1" };
    case "delivered":
      return { event: "delivered", response: "250 2.0.0 OK", ip: "167.89.0.1", tls: 1 };
    case "bounce":
      return {
        event: "bounce",
        type: "bounce",
        status: "5.1.1",
        reason: "550 5.1.1 The email account that you tried to reach does not exist.",
        bounce_classification: "Invalid Address",
        ip: "167.89.0.1",
        tls: 1,
      };
    case "blocked": // a bounce of type "blocked": SendGrid often sends no status
      return {
        event: "bounce",
        type: "blocked",
        reason: "550 Message rejected due to local policy",
        bounce_classification: "Reputation",
        ip: "167.89.0.1",
        tls: 1,
      };
    case "dropped":
      return { event: "dropped", reason: "Bounced Address", status: "5.0.0" };
    case "open":
      return { event: "open", useragent: "Mozilla/5.0", ip: "203.0.113.7", sg_machine_open: false };
    case "click":
      return { event: "click", url: "https://example.com/", url_offset: { index: 0, type: "html" }, useragent: "Mozilla/5.0", ip: "203.0.113.7" };
    case "group_unsubscribe":
    case "group_resubscribe":
      return { event: name, asm_group_id: 1, useragent: "Mozilla/5.0", ip: "203.0.113.7" };
    default: // processed, spamreport, unsubscribe, …
      return { event: name };
  }
}

/** One event per recipient of the message, with SendGrid's correlation fields. */
function buildEvents(msg: FakeMessage, spec: EventSpec, only?: string): Record<string, unknown>[] {
  const { event: name, ...overrides } = typeof spec === "string" ? { event: spec } : spec;
  const nowS = Math.floor(Date.now() / 1000);
  const out: Record<string, unknown>[] = [];
  for (const p of msg.personalizations) {
    // Personalization-level custom_args override the top-level ones.
    const customArgs = { ...msg.custom_args, ...(isObject(p.custom_args) ? p.custom_args : {}) };
    for (const kind of ["to", "cc", "bcc"]) {
      const list = Array.isArray(p[kind]) ? (p[kind] as { email: string }[]) : [];
      for (const { email } of list) {
        if (only && email.toLowerCase() !== only.toLowerCase()) continue;
        out.push({
          ...customArgs,
          email,
          timestamp: nowS,
          "smtp-id": `<${msg.message_id}@geopod-ismtpd-1>`,
          ...eventFields(name),
          sg_event_id: newId(),
          sg_message_id: `${msg.message_id}.filterdrecv-fake-${randomBytes(4).toString("hex")}-1-0`,
          // SendGrid sends one category as a string, several as an array.
          ...(msg.categories?.length ? { category: msg.categories.length === 1 ? msg.categories[0] : msg.categories } : {}),
          ...(msg.template_id ? { sg_template_id: msg.template_id } : {}),
          ...overrides,
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

export async function startSendGridFake(opts: SendGridFakeOptions = {}): Promise<SendGridFake> {
  const keys = opts.keys ?? SENDGRID_FAKE_KEYS;
  let verifiedSenders = new Set((opts.verifiedSenders ?? SENDGRID_FAKE_VERIFIED_SENDERS).map((s) => s.toLowerCase()));
  let rateLimit = opts.rateLimit ?? { limit: 1_000_000, windowSeconds: 60 };
  let webhookDelayMs = opts.webhookDelayMs ?? 50;
  const webhook: WebhookSettings = {
    enabled: opts.webhook ? opts.webhook.enabled ?? true : false,
    url: opts.webhook?.url ?? "",
    // Real accounts start unsigned; the fake signs by default because Switchboard
    // requires signed webhooks. PATCH …/signed {enabled:false} turns it off.
    signed: opts.webhook?.signed ?? true,
  };

  const keyPair = (await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = Buffer.from(await subtle.exportKey("spki", keyPair.publicKey)).toString("base64");

  const received: FakeRequestRecord[] = [];
  const messages: FakeMessage[] = [];
  let faults: { mode: FaultMode; remaining: number }[] = [];
  let buckets = new Map<string, { windowStart: number; count: number }>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<http.ServerResponse>();
  let closed = false;

  const remember = <T>(list: T[], item: T) => {
    list.push(item);
    if (list.length > MAX_STORED * 2) list.splice(0, list.length - MAX_STORED);
  };

  // --- signing and posting events -------------------------------------------

  async function sign(timestamp: string, body: string): Promise<string> {
    const data = Buffer.concat([Buffer.from(timestamp, "utf8"), Buffer.from(body, "utf8")]);
    const raw = new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keyPair.privateKey, data));
    return rawToDer(raw).toString("base64");
  }

  async function postEvents(url: string, events: Record<string, unknown>[], tamper?: Tamper): Promise<number | string> {
    let body = JSON.stringify(events);
    const nowS = Math.floor(Date.now() / 1000);
    const timestamp = String(tamper === "stale" ? nowS - 3600 : nowS);
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "SendGrid Event API" };
    if (webhook.signed) {
      let signature = await sign(timestamp, body);
      if (tamper === "bad_signature") {
        const der = Buffer.from(signature, "base64");
        der[der.length - 1] ^= 0x01; // still well-formed DER, wrong s
        signature = der.toString("base64");
      }
      headers["x-twilio-email-event-webhook-signature"] = signature;
      headers["x-twilio-email-event-webhook-timestamp"] = timestamp;
    }
    if (tamper === "mutate_body") body = body.replace(/"email":"/, '"email":"x');
    try {
      const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      return res.status;
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  }

  function later(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  /** processed, then delivered, to the configured webhook (fire and forget). */
  function scheduleLifecycle(msg: FakeMessage) {
    if (!webhook.enabled || !webhook.url) return;
    const url = webhook.url;
    void (async () => {
      await later(webhookDelayMs);
      if (closed) return;
      await postEvents(url, buildEvents(msg, "processed"));
      await later(webhookDelayMs);
      if (closed) return;
      await postEvents(url, buildEvents(msg, "delivered"));
    })();
  }

  // --- helpers ----------------------------------------------------------------

  function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      ...(text ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) } : { "content-length": "0" }),
    });
    res.end(text);
  }

  const sgErrors = (errors: SgError[]) => ({ errors });

  /** Reads the body; null when it exceeded the 30 MB limit (the rest is drained). */
  function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on("end", () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
      req.on("error", reject);
    });
  }

  function rateHeaders(key: string, nowS: number): { headers: Record<string, string>; limited: boolean } {
    let bucket = buckets.get(key);
    if (!bucket || nowS >= bucket.windowStart + rateLimit.windowSeconds) {
      bucket = { windowStart: nowS, count: 0 };
      buckets.set(key, bucket);
    }
    const limited = bucket.count >= rateLimit.limit;
    if (!limited) bucket.count++;
    return {
      limited,
      headers: {
        "x-ratelimit-limit": String(rateLimit.limit),
        "x-ratelimit-remaining": String(Math.max(0, rateLimit.limit - bucket.count)),
        "x-ratelimit-reset": String(bucket.windowStart + rateLimit.windowSeconds),
      },
    };
  }

  // --- /v3 --------------------------------------------------------------------

  async function handleV3(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer | null) {
    const record: FakeRequestRecord = { method: req.method ?? "", path, status: null, at: Date.now() };
    remember(received, record);
    let rateLimitHeaders: Record<string, string> = {};
    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      sendJson(res, status, payload, { ...rateLimitHeaders, ...headers });
    };

    // Injected faults come first: they model the network and SendGrid's edge, not the API.
    const fault = faults[0];
    if (fault) {
      if (--fault.remaining <= 0) faults.shift();
      record.fault = fault.mode;
      if (fault.mode === "http500") {
        record.status = 500;
        return sendJson(res, 500, sgErrors([err("internal server error", null)]));
      }
      if (fault.mode === "drop") return void req.socket.destroy();
      // timeout: never answer; the socket is released when the client gives up or on close().
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }

    const auth = req.headers.authorization ?? "";
    const apiKey = auth.startsWith("Bearer ") ? auth.slice(7).trim() : "";
    const nowS = Math.floor(Date.now() / 1000);
    const rate = rateHeaders(apiKey, nowS);
    rateLimitHeaders = rate.headers;
    if (!auth) return reply(401, sgErrors([err("authorization required", null)]));
    const scopes = keys[apiKey];
    if (!scopes) return reply(401, sgErrors([err("Permission denied, wrong credentials", null)]));
    if (rate.limited) return reply(429, sgErrors([err("too many requests", null)]));

    const need = (scope: string) => {
      if (scopes.includes(scope)) return true;
      reply(403, sgErrors([err("access forbidden", null)]));
      return false;
    };
    const json = (): Record<string, unknown> | undefined => {
      try {
        const parsed = body && body.length ? JSON.parse(body.toString("utf8")) : {};
        if (isObject(parsed)) return parsed;
      } catch {
        // fall through
      }
      reply(400, sgErrors([err("Bad Request", null, null)]));
      return undefined;
    };

    const route = `${req.method} ${path}`;
    switch (route) {
      case "GET /v3/scopes":
        return reply(200, { scopes });

      case "POST /v3/mail/send": {
        if (!need("mail.send")) return;
        if (body === null) {
          return reply(413, sgErrors([err("The size of your request exceeds the 30 MB limit.", null)]));
        }
        const mail = json();
        if (!mail) return;
        const errors = validateMail(mail, nowS);
        if (errors.length) return reply(400, sgErrors(errors));
        const from = mail.from as { email: string; name?: string };
        if (!verifiedSenders.has(from.email.toLowerCase())) {
          return reply(403, sgErrors([err(
            "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender Identity requirements",
            "from",
          )]));
        }
        const sandbox = isObject(mail.mail_settings) && isObject(mail.mail_settings.sandbox_mode) &&
          mail.mail_settings.sandbox_mode.enable === true;
        const msg = toMessage(mail, apiKey, sandbox);
        remember(messages, msg);
        if (sandbox) return reply(200, undefined);
        reply(202, undefined, { "x-message-id": msg.message_id });
        scheduleLifecycle(msg);
        return;
      }

      case "GET /v3/user/webhooks/event/settings":
        if (!need("user.webhooks.event.settings.read")) return;
        return reply(200, webhookSettingsBody());
      case "PATCH /v3/user/webhooks/event/settings": {
        if (!need("user.webhooks.event.settings.update")) return;
        const patch = json();
        if (!patch) return;
        if (patch.url !== undefined) {
          if (typeof patch.url !== "string" || (patch.url !== "" && !/^https?:\/\//.test(patch.url))) {
            return reply(400, sgErrors([err("url must be a valid URL", "url")]));
          }
          webhook.url = patch.url;
        }
        if (typeof patch.enabled === "boolean") webhook.enabled = patch.enabled;
        return reply(200, webhookSettingsBody());
      }
      case "GET /v3/user/webhooks/event/settings/signed":
        if (!need("user.webhooks.event.settings.read")) return;
        return reply(200, { public_key: webhook.signed ? publicKey : "" });
      case "PATCH /v3/user/webhooks/event/settings/signed": {
        if (!need("user.webhooks.event.settings.update")) return;
        const patch = json();
        if (!patch) return;
        if (typeof patch.enabled !== "boolean") return reply(400, sgErrors([err("enabled must be a boolean", "enabled")]));
        webhook.signed = patch.enabled;
        return reply(200, { public_key: webhook.signed ? publicKey : "" });
      }
      default: {
        const known = ["/v3/scopes", "/v3/mail/send", "/v3/user/webhooks/event/settings", "/v3/user/webhooks/event/settings/signed"];
        if (known.includes(path)) return reply(405, sgErrors([err("method not allowed", null)]));
        return reply(404, sgErrors([err("resource not found", null)]));
      }
    }
  }

  function webhookSettingsBody() {
    const on = webhook.enabled;
    return {
      enabled: on,
      url: webhook.url,
      processed: on,
      delivered: on,
      deferred: on,
      bounce: on,
      dropped: on,
      open: on,
      click: on,
      spam_report: on,
      unsubscribe: on,
      group_unsubscribe: on,
      group_resubscribe: on,
    };
  }

  function toMessage(mail: Record<string, unknown>, apiKey: string, sandbox: boolean): FakeMessage {
    const personalizations = mail.personalizations as Record<string, unknown>[];
    const recipients = new Set<string>();
    for (const p of personalizations) {
      for (const kind of ["to", "cc", "bcc"]) {
        for (const a of (p[kind] as { email: string }[] | undefined) ?? []) recipients.add(a.email.toLowerCase());
      }
    }
    const attachments = mail.attachments as { filename: string; type?: string; content: string }[] | undefined;
    return {
      message_id: newId(),
      received_at: Date.now(),
      sandbox,
      api_key_suffix: apiKey.slice(-4),
      from: mail.from as FakeMessage["from"],
      reply_to: mail.reply_to as FakeMessage["reply_to"],
      subject: mail.subject as string | undefined,
      content: mail.content as FakeMessage["content"],
      template_id: mail.template_id as string | undefined,
      personalizations,
      // Sizes, not content: keeps memory flat and the inspection output readable.
      attachments: attachments?.map((a) => ({
        filename: a.filename,
        type: a.type,
        size: Buffer.from(a.content, "base64").length,
      })),
      categories: mail.categories as string[] | undefined,
      custom_args: mail.custom_args as Record<string, string> | undefined,
      send_at: mail.send_at as number | undefined,
      recipients: [...recipients],
    };
  }

  // --- /__fake ----------------------------------------------------------------

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer | null) {
    let input: Record<string, unknown> = {};
    if (req.method === "POST" && body?.length) {
      try {
        const parsed = JSON.parse(body.toString("utf8"));
        if (isObject(parsed)) input = parsed;
      } catch {
        return sendJson(res, 400, { error: "body must be a JSON object" });
      }
    }
    const route = `${req.method} ${path}`;
    switch (route) {
      case "GET /__fake/messages":
        return sendJson(res, 200, { messages });
      case "GET /__fake/requests":
        return sendJson(res, 200, { requests: received });
      case "POST /__fake/reset":
        resetState();
        return sendJson(res, 200, { ok: true });
      case "POST /__fake/faults": {
        const mode = input.mode;
        if (mode !== "http500" && mode !== "timeout" && mode !== "drop") {
          return sendJson(res, 400, { error: 'mode must be "http500", "timeout" or "drop"' });
        }
        const count = input.count === undefined ? 1 : Number(input.count);
        if (!Number.isInteger(count) || count < 1) return sendJson(res, 400, { error: "count must be a positive integer" });
        faults.push({ mode, remaining: count });
        return sendJson(res, 200, { ok: true, pending: faults });
      }
      case "POST /__fake/config": {
        const rl = input.rate_limit;
        if (isObject(rl)) {
          rateLimit = { limit: Number(rl.limit ?? rateLimit.limit), windowSeconds: Number(rl.window_seconds ?? rateLimit.windowSeconds) };
          buckets = new Map();
        }
        if (Array.isArray(input.verified_senders)) {
          verifiedSenders = new Set(input.verified_senders.map((s) => String(s).toLowerCase()));
        }
        if (typeof input.webhook_delay_ms === "number") webhookDelayMs = input.webhook_delay_ms;
        return sendJson(res, 200, {
          rate_limit: { limit: rateLimit.limit, window_seconds: rateLimit.windowSeconds },
          verified_senders: [...verifiedSenders],
          webhook_delay_ms: webhookDelayMs,
          webhook,
        });
      }
      case "POST /__fake/events":
        return pushEvents(input, res);
      default:
        return sendJson(res, 404, { error: "unknown fake control endpoint" });
    }
  }

  /** On-demand events for an accepted message, posted synchronously; answers with the webhook's statuses. */
  async function pushEvents(input: Record<string, unknown>, res: http.ServerResponse) {
    const msg = messages.find((m) => m.message_id === input.message_id);
    if (!msg) return sendJson(res, 404, { error: "no accepted message with that message_id" });
    const url = typeof input.url === "string" ? input.url : webhook.url;
    if (!url) return sendJson(res, 409, { error: "no webhook url: PATCH /v3/user/webhooks/event/settings or pass url" });
    const specs = input.events;
    if (!Array.isArray(specs) || specs.length === 0 ||
      !specs.every((s) => typeof s === "string" || (isObject(s) && typeof s.event === "string"))) {
      return sendJson(res, 400, { error: "events must be a non-empty array of event names or {event, …} objects" });
    }
    const tamper = input.tamper as Tamper | undefined;
    if (tamper !== undefined && !["bad_signature", "stale", "mutate_body"].includes(tamper)) {
      return sendJson(res, 400, { error: 'tamper must be "bad_signature", "stale" or "mutate_body"' });
    }
    const events = (specs as EventSpec[]).flatMap((s) => buildEvents(msg, s, typeof input.email === "string" ? input.email : undefined));
    // `duplicate: n` re-posts the identical events n more times (same sg_event_id), as SendGrid does.
    const copies = 1 + (Number.isInteger(input.duplicate) ? Math.max(0, input.duplicate as number) : 0);
    const statuses: (number | string)[] = [];
    for (let i = 0; i < copies; i++) statuses.push(await postEvents(url, events, tamper));
    return sendJson(res, 200, { posted: copies, statuses, events });
  }

  function resetState() {
    received.length = 0;
    messages.length = 0;
    faults = [];
    buckets = new Map();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const r of hanging) r.destroy();
    hanging.clear();
  }

  // --- wiring -----------------------------------------------------------------

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    readBody(req).then(
      (body) => {
        const handler = path.startsWith("/__fake/") ? handleControl : path.startsWith("/v3/") ? handleV3 : null;
        if (!handler) return sendJson(res, 404, sgErrors([err("resource not found", null)]));
        return handler(req, res, path, body);
      },
    ).catch(() => {
      if (!res.headersSent) sendJson(res, 500, sgErrors([err("internal server error", null)]));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host ?? "127.0.0.1";
  const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    publicKey,
    received,
    messages,
    reset: resetState,
    close() {
      closed = true;
      resetState();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
