/**
 * The Twilio messaging adapter against the Twilio fake, through real HTTP and the shared
 * transport: sends (per-recipient results, partial success, every refusal code the fake
 * has, account-level failures and faults with their sent/not-sent verdict and failover
 * rule, never a retry), MMS, WhatsApp templates, status callbacks, reads (balance,
 * history filters, number paging), credential checks, and signed webhooks (every
 * signature fault mode of the fake, cross-checked with the official `twilio` library),
 * their parsing, dedupe and TwiML replies. After every test, nothing returned or thrown
 * may contain a credential.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import twilio from "twilio";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  startTwilioFake,
  type TwilioFake,
  TWILIO_FAKE_ACCOUNT,
  TWILIO_FAKE_API_KEY,
  TWILIO_FAKE_API_SECRET,
  TWILIO_FAKE_AUTH_TOKEN,
  TWILIO_FAKE_LANDLINES,
  TWILIO_FAKE_NUMBERS,
  TWILIO_FAKE_OTHER_ACCOUNT,
  TWILIO_FAKE_OTHER_AUTH_TOKEN,
  TWILIO_FAKE_OTHER_NUMBER,
  TWILIO_FAKE_OTHER_VERIFIED,
  TWILIO_FAKE_SERVICE,
  TWILIO_FAKE_STOPPED_NUMBER,
  twilioSignature,
  type TwilioPushRecord,
} from "../../packages/devstack/src/fakes/twilio.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import type {
  AdapterContext,
  DeliveryEvent,
  InboundEvent,
  OutboundMessage,
  WebhookEvent,
  WebhookRequest,
} from "../../supabase/functions/_shared/providers/adapter.ts";
import { canFailOver } from "../../supabase/functions/_shared/providers/transport.ts";
import {
  signedUrlCandidates,
  TWILIO_EMPTY_TWIML,
  twilioAdapter,
  twilioConfigSchema,
  twilioCredentialsSchema,
} from "../../supabase/functions/_shared/providers/twilio.ts";
import { type CallOptions, ProviderError, type SendResult } from "../../supabase/functions/_shared/providers/types.ts";

const adapter = twilioAdapter;
const USER = "+14155550177";
const USER2 = "+14155550178";
const USER3 = "+14155550179";
const N = TWILIO_FAKE_NUMBERS;
const HX = `HX${"ab".repeat(16)}`;
const SM = /^SM[0-9a-f]{32}$/;
const PUBLIC = "https://hooks.example.test";

/** The local stack's policy: the fake is on loopback, at a custom base_url. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };

const MAIN = { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN };
const KEYED = { ...MAIN, api_key_sid: TWILIO_FAKE_API_KEY, api_key_secret: TWILIO_FAKE_API_SECRET };
const TRIAL = { account_sid: TWILIO_FAKE_OTHER_ACCOUNT, auth_token: TWILIO_FAKE_OTHER_AUTH_TOKEN };
/** Every credential value in play: none may appear in anything the adapter returns or throws. */
const SECRETS = [
  TWILIO_FAKE_AUTH_TOKEN,
  TWILIO_FAKE_API_SECRET,
  TWILIO_FAKE_OTHER_AUTH_TOKEN,
  TWILIO_FAKE_ACCOUNT,
  TWILIO_FAKE_API_KEY,
  TWILIO_FAKE_OTHER_ACCOUNT,
];

let fake: TwilioFake;
/** Everything the adapter returned or threw in the current test. */
const outputs: unknown[] = [];

function serialise(value: unknown): string {
  if (value instanceof Error) {
    return JSON.stringify({ ...value, message: value.message });
  }
  return JSON.stringify(value) ?? "";
}

function ctx(over: { credentials?: Record<string, string>; config?: Record<string, unknown>; network?: NetworkPolicy; options?: CallOptions } = {}): AdapterContext {
  return {
    credentials: over.credentials ?? MAIN,
    config: { base_url: fake.url, ...over.config },
    network: over.network ?? local,
    options: over.options,
  };
}

/** Runs an adapter call, keeping its outcome for the credential check. */
async function track<T>(promise: Promise<T>): Promise<T> {
  try {
    const value = await promise;
    outputs.push(value);
    return value;
  } catch (error) {
    outputs.push(error);
    throw error;
  }
}

async function caught(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await track(promise);
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

async function caughtApi(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await track(promise);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("expected an ApiError");
}

const msg = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
  channel: "sms",
  to: [USER],
  from: N.primary,
  body: "Hello from Switchboard",
  operationId: "op-1",
  ...over,
});

const send = (message: OutboundMessage, c: AdapterContext = ctx()) => track(adapter.send(c, message));
const posts = () => fake.requestCounts()[`POST /2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages.json`] ?? 0;
const apiRequests = () => Object.entries(fake.requestCounts()).filter(([k]) => !k.includes("/__fake/")).length;
const lastParams = () => fake.messages[fake.messages.length - 1].request!.params;

async function control(path: string, body: unknown) {
  const response = await fetch(`${fake.url}/__fake/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as any };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------
// A webhook receiver that runs the adapter's verify → parse → reply, like the function
// ---------------------------------------------------------------------------

interface Hit {
  request: WebhookRequest;
  verified: boolean;
  events: WebhookEvent[];
  error?: string;
  reply: { status: number; contentType: string; body: string };
}

let rx: { base: string; hits: Hit[]; context: () => AdapterContext; close(): Promise<void> };

async function startReceiver() {
  const hits: Hit[] = [];
  const state = { context: () => ctx() };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      const proto = String(req.headers["x-forwarded-proto"] ?? "http");
      const request: WebhookRequest = {
        method: req.method ?? "POST",
        url: `${proto}://${req.headers.host}${req.url}`,
        headers,
        rawBody: Buffer.concat(chunks).toString("utf8"),
      };
      const hit: Hit = { request, verified: false, events: [], reply: { status: 403, contentType: "text/plain", body: "bad signature" } };
      try {
        hit.verified = await adapter.verifyWebhook!(rx.context(), request);
        if (hit.verified) {
          hit.events = adapter.parseWebhook!(request);
          hit.reply = adapter.webhookReply!(hit.events);
        }
      } catch (error) {
        hit.error = (error as Error).message;
        hit.reply = { status: 400, contentType: "text/plain", body: "bad request" };
      }
      hits.push(hit);
      res.writeHead(hit.reply.status, { "content-type": hit.reply.contentType });
      res.end(hit.reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    get context() {
      return state.context;
    },
    set context(value: () => AdapterContext) {
      state.context = value;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A push as the function would receive it at the public URL Twilio called. */
const fromPush = (p: TwilioPushRecord, url = p.url): WebhookRequest => ({
  method: p.method,
  url,
  headers: new Headers(p.headers),
  rawBody: p.body,
});

/** The official library's verdict on a push, for the URL given. */
function officialVerdict(p: TwilioPushRecord, url = p.url): boolean {
  const signature = p.headers["x-twilio-signature"] ?? "";
  if (p.format === "json") return twilio.validateRequestWithBody(TWILIO_FAKE_AUTH_TOKEN, signature, url, p.body);
  const params = p.method === "GET" ? {} : Object.fromEntries(new URLSearchParams(p.body));
  return twilio.validateRequest(TWILIO_FAKE_AUTH_TOKEN, signature, url, params);
}

/** Sends one SMS with a status callback to `url` and returns its SID. */
async function sentWithCallback(url: string, over: Partial<OutboundMessage> = {}, c = ctx()): Promise<string> {
  const result = await send(msg({ statusCallbackUrl: url, ...over }), c);
  expect(result.sentCount, JSON.stringify(result)).toBe(1);
  return result.providerMessageIds[0];
}

beforeAll(async () => {
  fake = await startTwilioFake({ port: 0, host: "127.0.0.1" });
  rx = await startReceiver();
});
afterAll(async () => {
  await fake?.close();
  await rx?.close();
});
beforeEach(() => {
  fake.reset();
  rx.hits.length = 0;
  rx.context = () => ctx();
  outputs.length = 0;
});
afterEach(() => {
  for (const hit of rx.hits) outputs.push(hit.events, hit.reply);
  for (const output of outputs) {
    const text = serialise(output);
    for (const secret of SECRETS) expect(text, "a credential leaked into a result or error").not.toContain(secret);
  }
});

// ---------------------------------------------------------------------------
// Schemas and connection rules
// ---------------------------------------------------------------------------

describe("credentials and config", () => {
  it("twilioCredentialsSchema: AC SID + token, optionally an SK key with its secret (both or neither)", () => {
    expect(twilioCredentialsSchema.safeParse(MAIN).success).toBe(true);
    expect(twilioCredentialsSchema.safeParse(KEYED).success).toBe(true);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, api_key_sid: "", api_key_secret: "" }).success).toBe(true);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, account_sid: "AC123" }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, account_sid: TWILIO_FAKE_API_KEY }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ account_sid: TWILIO_FAKE_ACCOUNT }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, api_key_sid: TWILIO_FAKE_API_KEY }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, api_key_secret: "x".repeat(32) }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, api_key_sid: TWILIO_FAKE_ACCOUNT, api_key_secret: "x" }).success).toBe(false);
    expect(twilioCredentialsSchema.safeParse({ ...MAIN, auth_token: "abc\r\nX-Evil: 1" }).success).toBe(false);
  });

  it("twilioConfigSchema: base_url, MG service SID, callback and webhook URLs", () => {
    const ok = twilioConfigSchema.parse({
      messaging_service_sid: TWILIO_FAKE_SERVICE,
      status_callback_url: "https://hooks.example.test/status?x=1#rc=3",
      webhook_url: "https://hooks.example.test/functions/v1",
    });
    expect(ok.base_url).toBeUndefined();
    expect(twilioConfigSchema.parse({ base_url: "", messaging_service_sid: null }).messaging_service_sid).toBeUndefined();
    for (const bad of [
      { messaging_service_sid: "MG123" },
      { base_url: "https://user:pw@api.twilio.com" },
      { status_callback_url: "ftp://example.com/x" },
      { status_callback_url: "https://bad_host.example/x" },
      { webhook_url: "https://hooks.example.test/x?token=1" },
    ]) {
      expect(twilioConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("a base_url other than https://api.twilio.com is refused where custom provider hosts are not allowed, before any request", async () => {
    const strict: NetworkPolicy = { ...local, allowCustomProviderHosts: false };
    const e = await caughtApi(adapter.send(ctx({ network: strict }), msg()));
    expect(e.code).toBe("invalid_request");
    expect(e.details).toMatchObject({ field: "base_url", allowed: ["https://api.twilio.com"] });
    await caughtApi(adapter.testCredentials(ctx({ network: strict })));
    await caughtApi(adapter.balance!(ctx({ network: strict })));
    await caughtApi(adapter.listNumbers!(ctx({ network: strict })));
    expect(apiRequests()).toBe(0);
  });

  it("a malformed stored config is a 400 naming the field; unusable credentials are an auth error naming the field, never the value", async () => {
    const e = await caughtApi(adapter.send(ctx({ config: { messaging_service_sid: "MGnope" } }), msg()));
    expect(e.details).toMatchObject({ field: "messaging_service_sid", source: "connection_config" });
    const leaky = "0123456789abcdef-not-a-sid";
    const p = await caught(adapter.send(ctx({ credentials: { account_sid: leaky, auth_token: TWILIO_FAKE_AUTH_TOKEN } }), msg()));
    expect(p.kind).toBe("auth");
    expect(p.details.field).toBe("account_sid");
    expect(p.message).not.toContain(leaky);
    expect(canFailOver(p)).toBe(true);
    const missing = await caught(adapter.send(ctx({ credentials: { account_sid: TWILIO_FAKE_ACCOUNT } }), msg()));
    expect(missing.message).toMatch(/auth_token is required/);
    expect(apiRequests()).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

describe("send", () => {
  it("sends an SMS: one form-encoded POST with Basic auth of the account, per-recipient result with the SID and segments", async () => {
    const result = await send(msg({ body: "x".repeat(200) }));
    expect(result.sentCount).toBe(1);
    expect(result.recipients).toEqual([{ to: USER, ok: true, status: "queued", message_id: expect.stringMatching(SM), segments: 2 }]);
    expect(result.providerMessageIds).toEqual([result.recipients[0].message_id]);
    expect(result.data).toMatchObject({ sent_count: 1, failed_count: 0, requests: 1, channel: "sms" });
    const m = fake.messages[0];
    expect(m.sid).toBe(result.providerMessageIds[0]);
    expect(m.request!.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);
    expect(m.request!.headers.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_FAKE_ACCOUNT}:${TWILIO_FAKE_AUTH_TOKEN}`).toString("base64")}`);
    expect(m.request!.params).toEqual({ To: USER, From: N.primary, Body: "x".repeat(200) });
  });

  it("with an API key, authenticates as SK…:secret with the account SID in the path", async () => {
    const result = await send(msg(), ctx({ credentials: KEYED }));
    expect(result.sentCount).toBe(1);
    const auth = fake.messages[0].request!.headers.authorization as string;
    expect(Buffer.from(auth.slice(6), "base64").toString()).toBe(`${TWILIO_FAKE_API_KEY}:${TWILIO_FAKE_API_SECRET}`);
    expect(fake.messages[0].request!.path).toBe(`/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages.json`);
  });

  it("normalises recipients to E.164 and makes one request per recipient", async () => {
    const result = await send(msg({ to: ["+1 (415) 555-0177", USER2, USER3] }));
    expect(result.recipients.map((r) => r.to)).toEqual([USER, USER2, USER3]);
    expect(fake.messages.map((m) => m.to)).toEqual([USER, USER2, USER3]);
    expect(posts()).toBe(3);
    expect(new Set(result.providerMessageIds).size).toBe(3);
  });

  it("partial success is real: refused recipients fail with their Twilio code, the others go out", async () => {
    const to = [USER, TWILIO_FAKE_STOPPED_NUMBER, TWILIO_FAKE_LANDLINES[0], "+8613812345678", "+1415555", USER2];
    const result = await send(msg({ to }));
    expect(result.sentCount).toBe(2);
    expect(result.recipients.map((r) => [r.ok, r.status])).toEqual([
      [true, "queued"],
      [false, "21610"],
      [false, "21614"],
      [false, "21408"],
      [false, "21211"],
      [true, "queued"],
    ]);
    expect(result.recipients[1].error).toMatch(/opted out.*21610/);
    expect(result.providerMessageIds).toHaveLength(2);
    expect(result.data).toMatchObject({ sent_count: 2, failed_count: 4, requests: 6 });
    expect(result.data.incomplete).toBeUndefined();
    expect(fake.messages.map((m) => m.to)).toEqual([USER, USER2]);
  });

  const refusals: Array<{ code: string; level: "recipient" | "message"; message: Partial<OutboundMessage>; credentials?: Record<string, string> }> = [
    { code: "21211", level: "recipient", message: { to: ["+1415555"] } },
    { code: "21408", level: "recipient", message: { to: ["+2348031234567"] } },
    { code: "21610", level: "recipient", message: { to: [TWILIO_FAKE_STOPPED_NUMBER] } },
    { code: "21614", level: "recipient", message: { to: [TWILIO_FAKE_LANDLINES[1]] } },
    { code: "21608", level: "recipient", message: { to: [USER], from: TWILIO_FAKE_OTHER_NUMBER }, credentials: TRIAL },
    { code: "21606", level: "message", message: { from: N.voiceOnly } },
    { code: "21602", level: "message", message: { body: undefined } },
    { code: "21617", level: "message", message: { body: "y".repeat(1601) } },
    { code: "21620", level: "message", message: { channel: "mms", mediaUrls: ["ftp://example.com/a.jpg"] } },
    { code: "21623", level: "message", message: { channel: "mms", mediaUrls: Array.from({ length: 11 }, (_, i) => `https://example.com/${i}.jpg`) } },
    { code: "21609", level: "message", message: { statusCallbackUrl: "https://bad_host.example/cb" } },
    { code: "21655", level: "message", message: { channel: "whatsapp", from: N.whatsapp, template: { id: "HXnope" } } },
    { code: "21701", level: "message", message: { from: `MG${"0".repeat(32)}` } },
    { code: "63007", level: "message", message: { channel: "whatsapp", from: N.primary } },
  ];

  it.each(refusals)("Twilio $code is a failed recipient with its code ($level level), not a thrown error", async ({ code, level, message, credentials }) => {
    const trial = credentials === TRIAL;
    const path = `POST /2010-04-01/Accounts/${trial ? TWILIO_FAKE_OTHER_ACCOUNT : TWILIO_FAKE_ACCOUNT}/Messages.json`;
    if (level === "message") {
      const result = await send(msg({ to: [USER, USER2], ...message }), ctx({ credentials }));
      // The same answer for every recipient: the rest are not tried.
      expect(result.recipients.map((r) => [r.to, r.ok, r.status])).toEqual([[USER, false, code], [USER2, false, code]]);
      expect(result.sentCount).toBe(0);
      expect(fake.messages).toHaveLength(0);
      expect(fake.requestCounts()[path]).toBe(1);
      expect(result.recipients[0].error).toContain(code);
    } else {
      // A refused recipient, then one that goes out.
      const good = trial ? TWILIO_FAKE_OTHER_VERIFIED : USER2;
      const result = await send(msg({ ...message, to: [...message.to!, good] }), ctx({ credentials }));
      expect(result.recipients.map((r) => [r.ok, r.status])).toEqual([[false, code], [true, "queued"]]);
      expect(result.recipients[0].error).toContain(code);
      expect(result.sentCount).toBe(1);
      expect(fake.messages.map((m) => m.to)).toEqual([good]);
      expect(fake.requestCounts()[path]).toBe(2);
    }
  });

  it("a trial account sends to its verified number", async () => {
    const result = await send(msg({ to: [TWILIO_FAKE_OTHER_VERIFIED], from: TWILIO_FAKE_OTHER_NUMBER }), ctx({ credentials: TRIAL }));
    expect(result.sentCount).toBe(1);
  });

  it("MMS: MediaUrl repeated, one per media file", async () => {
    const media = ["https://example.com/a.jpg", "https://example.com/b.png"];
    const result = await send(msg({ channel: "mms", mediaUrls: media, body: "pics" }));
    expect(result.recipients[0]).toMatchObject({ ok: true, segments: 1 });
    expect(lastParams()).toEqual({ To: USER, From: N.primary, Body: "pics", MediaUrl: media });
    expect(fake.messages[0].num_media).toBe("2");
  });

  it("media on channel sms is refused before any request", async () => {
    await caughtApi(adapter.send(ctx(), msg({ mediaUrls: ["https://example.com/a.jpg"] })));
    expect(apiRequests()).toBe(0);
  });

  it("WhatsApp template: whatsapp: on To and From, ContentSid + ContentVariables as a JSON string, no Body", async () => {
    const result = await send(msg({
      channel: "whatsapp",
      from: N.whatsapp,
      to: [USER],
      body: "ignored with a template",
      template: { id: HX, language: "en", variables: { "1": "Alice", "2": "Tuesday" } },
    }));
    expect(result.recipients[0]).toMatchObject({ to: USER, ok: true, message_id: expect.stringMatching(SM) });
    expect(lastParams()).toEqual({
      To: `whatsapp:${USER}`,
      From: `whatsapp:${N.whatsapp}`,
      ContentSid: HX,
      ContentVariables: '{"1":"Alice","2":"Tuesday"}',
    });
    expect(fake.messages[0].channel).toBe("whatsapp");
  });

  it("WhatsApp free-form outside the 24 h window is accepted, then fails 63016 in its status callback", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`, { channel: "whatsapp", from: N.whatsapp, body: "hi" });
    expect(lastParams()).toMatchObject({ To: `whatsapp:${USER}`, From: `whatsapp:${N.whatsapp}`, Body: "hi" });
    await fake.advance({ sid });
    const events = rx.hits.flatMap((h) => h.events) as DeliveryEvent[];
    expect(events.at(-1)).toMatchObject({ kind: "status", status: "failed", error_code: "63016", channel: "whatsapp", recipient: USER });
  });

  it("StatusCallback: the message's URL, else the connection's status_callback_url", async () => {
    await send(msg({ statusCallbackUrl: `${rx.base}/status?op=1` }));
    expect(lastParams().StatusCallback).toBe(`${rx.base}/status?op=1`);
    await send(msg(), ctx({ config: { status_callback_url: `${rx.base}/default` } }));
    expect(lastParams().StatusCallback).toBe(`${rx.base}/default`);
    await send(msg());
    expect(lastParams().StatusCallback).toBeUndefined();
  });

  it("MessagingServiceSid when configured and the message has no from (accepted; segments estimated while Twilio shows 0)", async () => {
    const result = await send(msg({ from: null }), ctx({ config: { messaging_service_sid: TWILIO_FAKE_SERVICE } }));
    expect(lastParams()).toEqual({ To: USER, MessagingServiceSid: TWILIO_FAKE_SERVICE, Body: "Hello from Switchboard" });
    expect(result.recipients[0]).toMatchObject({ ok: true, status: "accepted", segments: 1 });
    // A from wins over the service; an MG SID as from is the service.
    await send(msg(), ctx({ config: { messaging_service_sid: TWILIO_FAKE_SERVICE } }));
    expect(lastParams()).toEqual({ To: USER, From: N.primary, Body: "Hello from Switchboard" });
    await send(msg({ from: TWILIO_FAKE_SERVICE }));
    expect(lastParams()).toMatchObject({ MessagingServiceSid: TWILIO_FAKE_SERVICE });
  });

  it("no from and no messaging_service_sid, or no recipients, is refused before any request", async () => {
    expect((await caughtApi(adapter.send(ctx(), msg({ from: null })))).details).toMatchObject({ field: "from" });
    expect((await caughtApi(adapter.send(ctx(), msg({ to: [] })))).details).toMatchObject({ field: "to" });
    expect(apiRequests()).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Account-level failures and faults: sent/not-sent and failover
// ---------------------------------------------------------------------------

describe("send failures", () => {
  it("20003 bad credentials: auth, not sent, may fail over", async () => {
    const e = await caught(adapter.send(ctx({ credentials: { ...MAIN, auth_token: "f".repeat(32) } }), msg({ to: [USER, USER2] })));
    expect(e).toMatchObject({ kind: "auth", maybeSent: false });
    expect(e.details).toMatchObject({ provider: "twilio", status: 401, provider_code: "20003" });
    expect(canFailOver(e)).toBe(true);
    expect(posts()).toBe(1);
  });

  it("20003 with a wrong API key secret", async () => {
    const e = await caught(adapter.send(ctx({ credentials: { ...KEYED, api_key_secret: "wrong-secret-value" } }), msg()));
    expect(e.details.provider_code).toBe("20003");
  });

  it("20404 wrong account (an API key of another account): auth, not sent, may fail over; the SID is not echoed", async () => {
    const c = ctx({ credentials: { ...KEYED, account_sid: TWILIO_FAKE_OTHER_ACCOUNT } });
    const e = await caught(adapter.send(c, msg()));
    expect(e).toMatchObject({ kind: "auth", maybeSent: false });
    expect(e.details).toMatchObject({ status: 404, provider_code: "20404" });
    expect(e.message).toMatch(/no such account/);
    expect(canFailOver(e)).toBe(true);
  });

  it("429/20429: rate_limited, not sent, may fail over; nothing recorded", async () => {
    fake.addFault({ mode: "http429", path: "/Messages.json" });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
    expect(e.details.provider_code).toBe("20429");
    expect(canFailOver(e)).toBe(true);
    expect(fake.messages).toHaveLength(0);
    expect(posts()).toBe(1); // never retried
  });

  it("the fake's concurrency limit is the same 429", async () => {
    await control("config", { max_concurrent: 0 });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
  });

  it("500: may have been sent (even when Twilio acted), never failed over or retried", async () => {
    fake.addFault({ mode: "http500", path: "/Messages.json", commit: true });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e).toMatchObject({ kind: "transient", maybeSent: true });
    expect(e.details.provider_code).toBe("20500");
    expect(canFailOver(e)).toBe(false);
    expect(fake.messages).toHaveLength(1); // it did go out
    expect(posts()).toBe(1);
  });

  it("503: unavailable, may have been sent, no failover", async () => {
    fake.addFault({ mode: "http503", path: "/Messages.json" });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
    expect(posts()).toBe(1);
  });

  it("timeout: may have been sent", async () => {
    fake.addFault({ mode: "timeout", path: "/Messages.json" });
    const e = await caught(adapter.send(ctx({ options: { timeoutMs: 300 } }), msg()));
    expect(e).toMatchObject({ kind: "timeout", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
    expect(posts()).toBe(1);
  });

  it("connection reset after Twilio recorded the message: may have been sent (and it was)", async () => {
    fake.addFault({ mode: "reset", path: "/Messages.json" });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
    expect(fake.messages).toHaveLength(1);
    expect(posts()).toBe(1);
  });

  it("connection dropped mid-request: cannot be told from a reset, so may have been sent", async () => {
    fake.addFault({ mode: "drop", path: "/Messages.json" });
    const e = await caught(adapter.send(ctx(), msg()));
    expect(e.maybeSent).toBe(true);
    expect(posts()).toBe(1);
  });

  it("connection refused (closed port): not sent, may fail over", async () => {
    const port = await closedPort();
    const e = await caught(adapter.send(ctx({ config: { base_url: `http://127.0.0.1:${port}` } }), msg()));
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: false });
    expect(e.message).toMatch(/Could not connect/);
    expect(canFailOver(e)).toBe(true);
  });

  it("an account-level failure after an accepted recipient stops the loop: MAYBE_SENT, the rest NOT_SENT, in data.incomplete", async () => {
    fake.addFault({ mode: "http500", path: "/Messages.json", after: 1 });
    const result = await send(msg({ to: [USER, USER2, USER3] }));
    expect(result.sentCount).toBe(1);
    expect(result.recipients.map((r) => [r.to, r.ok, r.status])).toEqual([
      [USER, true, "queued"],
      [USER2, false, "MAYBE_SENT"],
      [USER3, false, "NOT_SENT"],
    ]);
    expect(result.recipients[1].error).toMatch(/do not resend/);
    expect(result.data).toMatchObject({
      requests: 2,
      maybe_sent_count: 1,
      incomplete: { recipient_index: 1, kind: "transient", maybe_sent: true, provider_code: "20500" },
    });
    expect(posts()).toBe(2);
  });

  it("a 429 after an accepted recipient: NOT_SENT, maybe_sent_count 0", async () => {
    fake.addFault({ mode: "http429", path: "/Messages.json", after: 1 });
    const result = await send(msg({ to: [USER, USER2, USER3] }));
    expect(result.recipients.map((r) => r.status)).toEqual(["queued", "NOT_SENT", "NOT_SENT"]);
    expect(result.data).toMatchObject({ maybe_sent_count: 0, incomplete: { kind: "rate_limited", maybe_sent: false } });
  });

  it("an account-level failure before anything was accepted is thrown, even after refused recipients", async () => {
    fake.addFault({ mode: "http429", path: "/Messages.json", after: 1 });
    const e = await caught(adapter.send(ctx(), msg({ to: ["+1415555", USER, USER2] })));
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
    expect(posts()).toBe(2);
  });

  it("a suspended account: Twilio accepts, then the status callback fails with 30002", async () => {
    await control("accounts", { sid: TWILIO_FAKE_ACCOUNT, status: "suspended" });
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid });
    const last = rx.hits.at(-1)!.events[0] as DeliveryEvent;
    expect(last).toMatchObject({ status: "failed", error_code: "30002", provider_message_id: sid });
  });
});

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

describe("testCredentials", () => {
  it("accepts the auth token and an API key, returning no secrets", async () => {
    for (const credentials of [MAIN, KEYED]) {
      const r = await track(adapter.testCredentials(ctx({ credentials })));
      expect(r).toEqual({ ok: true, message: expect.any(String), details: { friendly_name: expect.any(String), status: "active", type: "Full" } });
    }
    expect(fake.requestCounts()[`GET /2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}.json`]).toBe(2);
  });

  it("bad token, wrong account, suspended account, unusable credentials, outage: ok false", async () => {
    const bad = await track(adapter.testCredentials(ctx({ credentials: { ...MAIN, auth_token: "0".repeat(32) } })));
    expect(bad).toMatchObject({ ok: false, details: { kind: "auth", status: 401, provider_code: "20003" } });
    const wrong = await track(adapter.testCredentials(ctx({ credentials: { ...KEYED, account_sid: TWILIO_FAKE_OTHER_ACCOUNT } })));
    expect(wrong).toMatchObject({ ok: false, details: { kind: "auth", status: 404, provider_code: "20404" } });
    expect(wrong.message).toMatch(/no such account/);
    const unusable = await track(adapter.testCredentials(ctx({ credentials: { account_sid: "AC1", auth_token: "x" } })));
    expect(unusable).toMatchObject({ ok: false, details: { kind: "auth", field: "account_sid" } });
    fake.addFault({ mode: "http503" });
    const down = await track(adapter.testCredentials(ctx()));
    expect(down).toMatchObject({ ok: false, details: { kind: "unavailable", status: 503 } });
    await control("accounts", { sid: TWILIO_FAKE_ACCOUNT, status: "suspended" });
    const suspended = await track(adapter.testCredentials(ctx()));
    expect(suspended).toMatchObject({ ok: false, message: expect.stringMatching(/suspended/), details: { kind: "forbidden", status: "suspended" } });
  });
});

describe("balance", () => {
  it("returns {balance, currency}, charged once a message is sent", async () => {
    expect(await track(adapter.balance!(ctx()))).toEqual({ data: { balance: 25, currency: "USD" } });
    const sid = (await send(msg())).providerMessageIds[0];
    await fake.advance({ sid, to: "sent" });
    expect((await track(adapter.balance!(ctx({ credentials: KEYED })))).data).toEqual({ balance: 24.9921, currency: "USD" });
  });

  it("errors are ProviderErrors of reads (never maybeSent)", async () => {
    fake.addFault({ mode: "http500", path: "/Balance.json" });
    const e = await caught(adapter.balance!(ctx()));
    expect(e).toMatchObject({ kind: "transient", maybeSent: false });
  });
});

describe("history", () => {
  beforeEach(async () => {
    await send(msg({ to: [USER, USER2] }));
    await send(msg({ to: [USER], from: N.secondary, body: "second" }));
    await send(msg({ to: [USER3], body: "third" }));
  });

  it("filters by To and From, newest first, without account SIDs or URIs", async () => {
    const byTo = (await track(adapter.history!(ctx(), { to: USER }))).data;
    expect((byTo.messages as any[]).map((m) => [m.to, m.from])).toEqual([[USER, N.secondary], [USER, N.primary]]);
    const both = (await track(adapter.history!(ctx(), { to: "+1 415 555 0177", from: N.secondary }))).data;
    expect(both.messages).toHaveLength(1);
    const record = (both.messages as any[])[0];
    expect(record).toMatchObject({ sid: expect.stringMatching(SM), body: "second", status: "queued", delivery_status: "queued", direction: "outbound-api", num_segments: 1 });
    expect(record.date_created).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(Object.keys(record)).not.toContain("account_sid");
    expect(Object.keys(record)).not.toContain("uri");
  });

  it("filters by DateSent (day, before, after)", async () => {
    const today = new Date().toISOString().slice(0, 10);
    expect((await track(adapter.history!(ctx(), { date_sent: today }))).data.messages).toHaveLength(4);
    expect((await track(adapter.history!(ctx(), { date_sent_before: "2000-01-01" }))).data.messages).toHaveLength(0);
    expect((await track(adapter.history!(ctx(), { date_sent_after: "2000-01-01T00:00:00Z" }))).data.messages).toHaveLength(4);
  });

  it("pages with page_size and next_page", async () => {
    const first = (await track(adapter.history!(ctx(), { page_size: 3 }))).data;
    expect(first.messages).toHaveLength(3);
    expect(first.next_page).toEqual({ page: 1, page_token: expect.stringMatching(/^PA/) });
    const second = (await track(adapter.history!(ctx(), { page_size: 3, ...(first.next_page as object) }))).data;
    expect(second.messages).toHaveLength(1);
    expect(second.next_page).toBeNull();
  });

  it("refuses bad filters before any request", async () => {
    const before = apiRequests();
    for (const query of [{ date_sent: "yesterday" }, { page_size: 5000 }, { to: "not a number" }, { page_token: "x y" }]) {
      const e = await caughtApi(adapter.history!(ctx(), query));
      expect(e.code).toBe("invalid_request");
    }
    expect(apiRequests()).toBe(before);
  });
});

describe("listNumbers", () => {
  /** Rewrites PageSize so the fake's five numbers span pages; records every URL requested. */
  function paging(size: number, seen: string[]): typeof fetch {
    return (input, init) => {
      const url = new URL(String(input));
      if (url.searchParams.get("PageSize") === "1000") url.searchParams.set("PageSize", String(size));
      seen.push(url.toString());
      return fetch(url, init);
    };
  }

  it("maps numbers and capabilities (whatsapp false: Twilio's resource does not show it)", async () => {
    const numbers = await track(adapter.listNumbers!(ctx()));
    expect(numbers.map((n) => n.phone_number)).toEqual([N.primary, N.secondary, N.voiceOnly, N.uk, N.whatsapp]);
    expect(numbers[0]).toEqual({
      phone_number: N.primary,
      friendly_name: "(415) 555-0100",
      capabilities: { sms: true, mms: true, voice: true, whatsapp: false },
      provider_number_id: expect.stringMatching(/^PN[0-9a-f]{32}$/),
    });
    expect(numbers[2].capabilities).toEqual({ sms: false, mms: false, voice: true, whatsapp: false });
    expect(numbers[3].capabilities).toEqual({ sms: true, mms: false, voice: true, whatsapp: false });
  });

  it("follows next_page_uri to the last page", async () => {
    const seen: string[] = [];
    const numbers = await track(adapter.listNumbers!(ctx({ options: { fetch: paging(2, seen) } })));
    expect(numbers).toHaveLength(5);
    expect(seen).toHaveLength(3);
    expect(seen.every((u) => u.startsWith(`${fake.url}/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/IncomingPhoneNumbers.json?`))).toBe(true);
  });

  it("reads at most 20 pages, and then fails rather than return a partial list", async () => {
    const many = await startTwilioFake({
      port: 0,
      host: "127.0.0.1",
      accounts: [{
        sid: TWILIO_FAKE_ACCOUNT,
        auth_token: TWILIO_FAKE_AUTH_TOKEN,
        numbers: Array.from({ length: 25 }, (_, i) => ({ phone_number: `+1415555${String(1000 + i)}` })),
      }],
    });
    try {
      const seen: string[] = [];
      const e = await caught(adapter.listNumbers!({ ...ctx({ options: { fetch: paging(1, seen) } }), config: { base_url: many.url } }));
      expect(e.kind).toBe("too_large");
      expect(seen).toHaveLength(20);
    } finally {
      await many.close();
    }
  });

  it("never follows a next_page_uri to another host or another list", async () => {
    const seen: string[] = [];
    const foreign: typeof fetch = async (input, init) => {
      seen.push(String(input));
      if (seen.length === 1) {
        return new Response(JSON.stringify({
          incoming_phone_numbers: [{ sid: "PN1", phone_number: N.primary, capabilities: { sms: true } }],
          next_page_uri: `https://evil.example/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/IncomingPhoneNumbers.json?PageSize=1000&Page=1&PageToken=PAx`,
        }), { status: 200, headers: { "content-type": "application/json" } });
      }
      if (seen.length === 2) {
        return new Response(JSON.stringify({
          incoming_phone_numbers: [],
          next_page_uri: `/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages.json?Page=2`,
        }), { status: 200, headers: { "content-type": "application/json" } });
      }
      return fetch(input, init);
    };
    const e = await caught(adapter.listNumbers!(ctx({ options: { fetch: foreign } })));
    expect(e.kind).toBe("unavailable");
    expect(seen).toHaveLength(2);
    expect(seen[1].startsWith(`${fake.url}/2010-04-01/`)).toBe(true); // the host came from base_url, not the answer
  });
});

// ---------------------------------------------------------------------------
// Webhooks: signatures
// ---------------------------------------------------------------------------

describe("verifyWebhook", () => {
  it("accepts the fake's signed status callbacks (form), like the official library", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid, to: "delivered" });
    expect(fake.pushes.map((p) => p.event)).toEqual(["sending", "sent", "delivered"]);
    expect(rx.hits.map((h) => h.verified)).toEqual([true, true, true]);
    for (const p of fake.pushes) {
      expect(p.params.FakeFutureParam).toBeDefined(); // parameters Twilio adds without notice are signed too
      expect(officialVerdict(p)).toBe(true);
      expect(await adapter.verifyWebhook!(ctx(), fromPush(p))).toBe(true);
    }
  });

  it("with an API key for the API, webhooks are still checked with the auth token", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`, {}, ctx({ credentials: KEYED }));
    rx.context = () => ctx({ credentials: KEYED });
    await fake.advance({ sid });
    expect(rx.hits.map((h) => h.verified)).toEqual([true]);
  });

  it("JSON bodies: bodySHA256 in the URL, and the body must match it", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid, format: "json" });
    const p = fake.pushes[0];
    expect(p.url).toMatch(/bodySHA256=[0-9a-f]{64}/);
    expect(officialVerdict(p)).toBe(true);
    expect(rx.hits[0].verified).toBe(true);
    expect(rx.hits[0].events[0]).toMatchObject({ kind: "status", provider_message_id: sid, status: "queued", provider_status: "sending" });
    const tampered = { ...fromPush(p), rawBody: p.body.replace('"sending"', '"delivered"') };
    expect(await adapter.verifyWebhook!(ctx(), tampered)).toBe(false);
    // A JSON body without bodySHA256 is covered by nothing.
    const unsigned = { ...fromPush(p), url: p.url.replace(/[?&]bodySHA256=[0-9a-f]+/, "") };
    expect(await adapter.verifyWebhook!(ctx(), unsigned)).toBe(false);
  });

  it("every bad-signature fault mode of the fake is rejected (wrong_token, swap_scheme, body_mismatch, missing), as by the official library", async () => {
    await control("config", { webhook_routes: { [PUBLIC]: rx.base } });
    const cases: Array<{ signature: "wrong_token" | "swap_scheme" | "body_mismatch" | "missing"; format?: "json"; url: string }> = [
      { signature: "wrong_token", url: `${rx.base}/status` },
      { signature: "swap_scheme", url: `${PUBLIC}/status` },
      { signature: "swap_scheme", url: `${rx.base}/status` },
      { signature: "body_mismatch", format: "json", url: `${rx.base}/status` },
      { signature: "missing", url: `${rx.base}/status` },
    ];
    for (const c of cases) {
      const sid = await sentWithCallback(c.url);
      const before = fake.pushes.length;
      await fake.advance({ sid, signature: c.signature, format: c.format });
      const p = fake.pushes[before];
      expect(p.signature_mode).toBe(c.signature);
      expect(officialVerdict(p), c.signature).toBe(false);
      expect(await adapter.verifyWebhook!(ctx(), fromPush(p)), c.signature).toBe(false);
      expect(rx.hits.at(-1)!.verified, c.signature).toBe(false);
      expect(rx.hits.at(-1)!.reply.status).toBe(403);
    }
  });

  it("add_port (signed with :443): accepted like the official library does, with and without the port in the URL", async () => {
    await control("config", { webhook_routes: { [PUBLIC]: rx.base } });
    const sid = await sentWithCallback(`${PUBLIC}/status?op=7`);
    await fake.advance({ sid, signature: "add_port" });
    const p = fake.pushes[0];
    expect(p.signed_url).toBe("https://hooks.example.test:443/status?op=7");
    expect(officialVerdict(p)).toBe(true);
    expect(rx.hits[0].request.url).toBe(`${PUBLIC}/status?op=7`); // as the receiver reconstructs it behind the proxy
    expect(rx.hits[0].verified).toBe(true);
    expect(await adapter.verifyWebhook!(ctx(), fromPush(p, p.signed_url))).toBe(true);
    // And a valid (portless) signature when the function sees the URL with :443.
    await fake.advance({ sid });
    expect(await adapter.verifyWebhook!(ctx(), fromPush(fake.pushes[1], "https://hooks.example.test:443/status?op=7"))).toBe(true);
  });

  it("webhook_url: a request seen at an internal URL is checked over the public base Twilio signed", async () => {
    await control("config", { webhook_routes: { [PUBLIC]: rx.base } });
    const sid = await sentWithCallback(`${PUBLIC}/functions/v1/twilio-webhook/abc?x=1`);
    await fake.advance({ sid });
    const p = fake.pushes[0];
    const internal = "http://edge-runtime:8081/twilio-webhook/abc?x=1";
    expect(await adapter.verifyWebhook!(ctx(), fromPush(p, internal))).toBe(false);
    const rebased = ctx({ config: { webhook_url: `${PUBLIC}/functions/v1` } });
    expect(await adapter.verifyWebhook!(rebased, fromPush(p, internal))).toBe(true);
    expect(await adapter.verifyWebhook!(rebased, fromPush(p, "http://edge-runtime:8081/functions/v1/twilio-webhook/abc?x=1"))).toBe(true);
    expect(await adapter.verifyWebhook!(rebased, fromPush(p, "http://edge-runtime:8081/twilio-webhook/other?x=1"))).toBe(false);
    expect(signedUrlCandidates(internal, `${PUBLIC}/functions/v1/`)).toContain(`${PUBLIC}/functions/v1/twilio-webhook/abc?x=1`);
  });

  it("rejects a changed parameter, a changed URL, another account's token, an empty signature", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid, to: "delivered" });
    const p = fake.pushes.at(-1)!;
    const good = fromPush(p);
    expect(await adapter.verifyWebhook!(ctx(), good)).toBe(true);
    expect(await adapter.verifyWebhook!(ctx(), { ...good, rawBody: good.rawBody.replace("delivered", "undelivered") })).toBe(false);
    expect(await adapter.verifyWebhook!(ctx(), { ...good, rawBody: `${good.rawBody}&Extra=1` })).toBe(false);
    expect(await adapter.verifyWebhook!(ctx(), { ...good, url: `${good.url}?x=1` })).toBe(false);
    expect(await adapter.verifyWebhook!(ctx({ credentials: TRIAL }), good)).toBe(false);
    const headers = new Headers(good.headers);
    headers.set("x-twilio-signature", "");
    expect(await adapter.verifyWebhook!(ctx(), { ...good, headers })).toBe(false);
  });

  it("reproduces Twilio's documented example and agrees with the official library on arbitrary requests", async () => {
    const params = { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" };
    const vector: WebhookRequest = {
      method: "POST",
      url: "https://mycompany.com/myapp.php?foo=1&bar=2",
      headers: new Headers({ "x-twilio-signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "content-type": "application/x-www-form-urlencoded" }),
      rawBody: new URLSearchParams(params).toString(),
    };
    const docs = ctx({ credentials: { ...MAIN, auth_token: "12345" } });
    expect(await adapter.verifyWebhook!(docs, vector)).toBe(true);

    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,11}$/);
    const value = fc.string({ maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.webUrl({ withQueryParameters: true }),
        fc.dictionary(name, fc.oneof(value, fc.uniqueArray(value, { minLength: 2, maxLength: 3 }))),
        async (token, url, form) => {
          const body = new URLSearchParams();
          for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
          const signature = twilio.getExpectedTwilioSignature(token, url, form);
          const request: WebhookRequest = {
            method: "POST",
            url,
            headers: new Headers({ "x-twilio-signature": signature, "content-type": "application/x-www-form-urlencoded" }),
            rawBody: body.toString(),
          };
          const c = ctx({ credentials: { ...MAIN, auth_token: token } });
          expect(await adapter.verifyWebhook!(c, request)).toBe(twilio.validateRequest(token, signature, url, form));
          expect(await adapter.verifyWebhook!(c, request)).toBe(true);
          expect(twilioSignature(token, url, form)).toBe(signature);
          const other = ctx({ credentials: { ...MAIN, auth_token: `${token.slice(1)}0` === token ? "f".repeat(32) : `${token.slice(1)}0` } });
          expect(await adapter.verifyWebhook!(other, request)).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------
// Webhooks: parsing, dedupe, replies
// ---------------------------------------------------------------------------

describe("parseWebhook and webhookReply", () => {
  it("status callbacks become DeliveryEvents; the reply is an empty 200", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid, to: "undelivered", error_code: 30005 });
    const events = rx.hits.flatMap((h) => h.events);
    expect(events).toEqual([
      { kind: "status", provider_message_id: sid, status: "queued", provider_status: "sending", error_code: null, recipient: USER, occurred_at: null, dedupe_key: `${sid}:sending` },
      { kind: "status", provider_message_id: sid, status: "sent", provider_status: "sent", error_code: null, recipient: USER, occurred_at: null, dedupe_key: `${sid}:sent` },
      { kind: "status", provider_message_id: sid, status: "undelivered", provider_status: "undelivered", error_code: "30005", recipient: USER, occurred_at: null, dedupe_key: `${sid}:undelivered` },
    ]);
    expect(rx.hits.map((h) => h.reply)).toEqual(Array(3).fill({ status: 200, contentType: "text/plain; charset=utf-8", body: "" }));
    expect(fake.pushes.every((p) => p.response_status === 200)).toBe(true);
  });

  it("WhatsApp statuses (delivered, read) carry the channel and the bare recipient", async () => {
    const result = await send(msg({ channel: "whatsapp", from: N.whatsapp, template: { id: HX }, statusCallbackUrl: `${rx.base}/status` }));
    const sid = result.providerMessageIds[0];
    await fake.advance({ sid, to: "read" });
    const events = rx.hits.flatMap((h) => h.events) as DeliveryEvent[];
    expect(events.map((e) => e.status)).toEqual(["queued", "sent", "delivered", "read"]);
    expect(events.every((e) => e.channel === "whatsapp" && e.recipient === USER)).toBe(true);
  });

  it("redelivered and duplicated callbacks carry the same dedupe_key", async () => {
    const sid = await sentWithCallback(`${rx.base}/status`);
    await fake.advance({ sid, to: "sent", duplicate: 2 });
    const sent = rx.hits.filter((h) => (h.events[0] as DeliveryEvent).provider_status === "sent");
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((h) => h.events[0].dedupe_key))).toEqual(new Set([`${sid}:sent`]));
    const push = fake.pushes.find((p) => p.event === "sent")!;
    const r = await control("redeliver", { push_id: push.id });
    expect(r.status).toBe(200);
    const redelivered = rx.hits.at(-1)!;
    expect(redelivered.request.headers.get("i-twilio-idempotency-token")).toBe(push.idempotency_token);
    expect(redelivered.verified).toBe(true);
    expect(redelivered.events[0].dedupe_key).toBe(`${sid}:sent`);
  });

  it("inbound SMS: an InboundEvent, answered with empty TwiML that Twilio accepts (no 11200)", async () => {
    const r = await fake.inbound({ from: USER, to: N.primary, body: "Hi there", url: `${rx.base}/inbound` });
    const push = (r.body as { pushes: TwilioPushRecord[] }).pushes[0];
    const hit = rx.hits[0];
    expect(hit.verified).toBe(true);
    expect(hit.events).toEqual([{
      kind: "inbound",
      provider_message_id: push.message_sid,
      channel: "sms",
      from: USER,
      to: N.primary,
      body: "Hi there",
      media_urls: [],
      occurred_at: null,
      dedupe_key: push.message_sid,
    } satisfies InboundEvent]);
    expect(hit.reply).toEqual({ status: 200, contentType: "text/xml; charset=utf-8", body: TWILIO_EMPTY_TWIML });
    expect(push.twiml).toMatchObject({ valid: true, error_code: null, messages: [] });
  });

  it("inbound MMS: media URLs in order, channel mms", async () => {
    const media = ["https://media.example.test/a.jpg", "https://media.example.test/b.png"];
    await fake.inbound({ from: USER, to: N.primary, body: "", media, url: `${rx.base}/inbound` });
    expect(rx.hits[0].events[0]).toMatchObject({ kind: "inbound", channel: "mms", body: "", media_urls: media });
  });

  it("inbound WhatsApp: channel whatsapp, bare numbers; GET webhooks and JSON bodies too", async () => {
    await fake.inbound({ from: `whatsapp:${USER}`, to: `whatsapp:${N.whatsapp}`, body: "hola", profile_name: "Ana", url: `${rx.base}/wa` });
    expect(rx.hits[0].events[0]).toMatchObject({ kind: "inbound", channel: "whatsapp", from: USER, to: N.whatsapp, body: "hola" });
    expect(fake.pushes[0].twiml?.valid).toBe(true);
    await fake.inbound({ from: USER, to: N.primary, body: "by GET", url: `${rx.base}/get?token=abc`, method: "GET" });
    expect(rx.hits[1]).toMatchObject({ verified: true, events: [{ kind: "inbound", body: "by GET" }] });
    expect(officialVerdict(fake.pushes[1])).toBe(true);
    await fake.inbound({ from: USER, to: N.primary, body: "as JSON", url: `${rx.base}/json`, format: "json" });
    expect(rx.hits[2]).toMatchObject({ verified: true, events: [{ kind: "inbound", body: "as JSON" }] });
  });

  it("duplicated inbound deliveries share the dedupe_key", async () => {
    await fake.inbound({ from: USER, to: N.primary, body: "once", url: `${rx.base}/inbound`, duplicate: 2 });
    expect(rx.hits).toHaveLength(3);
    expect(new Set(rx.hits.map((h) => h.events[0].dedupe_key)).size).toBe(1);
  });

  it("unknown shapes are a 400 (ApiError invalid_request); statuses we do not record give no events", () => {
    const form = (params: Record<string, string>, contentType = "application/x-www-form-urlencoded"): WebhookRequest => ({
      method: "POST",
      url: `${rx.base}/x`,
      headers: new Headers({ "content-type": contentType }),
      rawBody: contentType.includes("json") ? JSON.stringify(params) : new URLSearchParams(params).toString(),
    });
    const sid = `SM${"1".repeat(32)}`;
    for (const bad of [
      form({ foo: "bar" }),
      form({ MessageSid: sid }),
      form({ MessageSid: "nope", MessageStatus: "sent" }),
      form({ MessageSid: sid, MessageStatus: "teleported" }),
      form({ MessageSid: sid, SmsStatus: "received", To: N.primary }),
      { ...form({}), rawBody: "{not json", headers: new Headers({ "content-type": "application/json" }) },
    ]) {
      expect(() => adapter.parseWebhook!(bad), bad.rawBody).toThrow(ApiError);
      try {
        adapter.parseWebhook!(bad);
      } catch (error) {
        expect((error as ApiError).code).toBe("invalid_request");
      }
    }
    expect(adapter.parseWebhook!(form({ MessageSid: sid, MessageStatus: "receiving" }))).toEqual([]);
    expect(adapter.parseWebhook!(form({ MessageSid: sid, MessageStatus: "canceled", To: USER }))[0]).toMatchObject({ status: "failed" });
    expect(adapter.parseWebhook!(form({ MessageSid: sid, MessageStatus: "delivered", To: USER }, "application/json"))[0]).toMatchObject({ status: "delivered" });
    expect(adapter.webhookReply!([])).toEqual({ status: 200, contentType: "text/plain; charset=utf-8", body: "" });
  });

  it("mapDeliveryStatus", () => {
    const table: Record<string, string | null> = {
      queued: "queued",
      accepted: "queued",
      scheduled: "queued",
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
      something_new: null,
    };
    for (const [word, status] of Object.entries(table)) expect(adapter.mapDeliveryStatus!(word), word).toBe(status);
  });
});

describe("no credential leaks", () => {
  it("errors of every kind and every read carry no credential (checked after each test, here over a mixed batch)", async () => {
    const results: Array<SendResult | unknown> = [];
    results.push(await track(adapter.send(ctx({ credentials: KEYED }), msg({ to: [USER, "+1415555"] }))));
    await caught(adapter.send(ctx({ credentials: { ...KEYED, account_sid: TWILIO_FAKE_OTHER_ACCOUNT } }), msg()));
    await caught(adapter.send(ctx({ credentials: { ...MAIN, auth_token: "e".repeat(32) } }), msg()));
    fake.addFault({ mode: "timeout", path: "/Messages.json" });
    await caught(adapter.send(ctx({ credentials: KEYED, options: { timeoutMs: 200 } }), msg()));
    await track(adapter.testCredentials(ctx({ credentials: KEYED })));
    await track(adapter.balance!(ctx({ credentials: KEYED })));
    await track(adapter.history!(ctx({ credentials: KEYED }), {}));
    await track(adapter.listNumbers!(ctx({ credentials: KEYED })));
    expect(outputs.length).toBeGreaterThanOrEqual(8);
  });
});
