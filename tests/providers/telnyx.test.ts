/**
 * Telnyx: the MessagingAdapter against the Telnyx fake, through real HTTP and the shared
 * transport: sends (SMS, MMS, number pool, alphanumeric sender), per-recipient refusals
 * and partial success, every account-level error path with its sent/not-sent verdict and
 * failover rule, reads (credentials test, balance, message lookup, number lists with
 * paging), and webhooks: Ed25519 verification of the fake's signed pushes (cross-checked
 * with the official `telnyx` SDK on the same bytes), parsing, dedupe keys and statuses.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Telnyx from "telnyx";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type SignatureFault,
  startTelnyxFake,
  TELNYX_FAKE_API_KEY,
  TELNYX_FAKE_NUMBERS as N,
  TELNYX_FAKE_PROFILE_ID,
  TELNYX_FAKE_REVOKED_API_KEY,
  type TelnyxFake,
  type TelnyxFakeNumber,
} from "../../packages/devstack/src/fakes/telnyx.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import type {
  AdapterContext,
  DeliveryEvent,
  InboundEvent,
  OutboundMessage,
  WebhookRequest,
} from "../../supabase/functions/_shared/providers/adapter.ts";
import {
  TELNYX_DEFAULT_BASE_URL,
  telnyxAdapter,
  telnyxConfigSchema,
  telnyxCredentialsSchema,
  verifyTelnyxSignature,
} from "../../supabase/functions/_shared/providers/telnyx.ts";
import { canFailOver } from "../../supabase/functions/_shared/providers/transport.ts";
import { ProviderError } from "../../supabase/functions/_shared/providers/types.ts";

type Json = Record<string, any>;

const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };

const US_A = "+13125551234";
const US_B = "+13125554321";
const US_C = "+13125551235";
const AU = "+61412345678"; // outside the profile's whitelisted destinations (US, CA, GB)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let fake: TelnyxFake;
let base: string;
let sdk: Telnyx;

/** Everything the adapter returned or threw in this file, checked for the API key at the end. */
const seen: string[] = [];
function remember(value: unknown) {
  if (value instanceof Error) {
    seen.push(`${value.message} ${JSON.stringify(value)} ${JSON.stringify((value as { details?: unknown }).details ?? null)}`);
  } else {
    seen.push(JSON.stringify(value));
  }
  return value;
}

function ctx(over: { credentials?: Record<string, string>; config?: Record<string, unknown>; network?: NetworkPolicy; timeoutMs?: number } = {}): AdapterContext {
  return {
    credentials: over.credentials ?? { api_key: TELNYX_FAKE_API_KEY },
    config: { base_url: fake.url, messaging_profile_id: TELNYX_FAKE_PROFILE_ID, webhook_public_key: fake.publicKey, ...over.config },
    network: over.network ?? local,
    options: { timeoutMs: over.timeoutMs ?? 5_000 },
  };
}

const msg = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
  channel: "sms",
  to: [US_A],
  from: N.primary,
  body: "Hello from Switchboard",
  operationId: "op-1",
  ...over,
});

async function send(message: OutboundMessage, c = ctx()) {
  return remember(await telnyxAdapter.send(c, message)) as Awaited<ReturnType<typeof telnyxAdapter.send>>;
}

async function caught(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    remember(error);
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

async function apiError(promise: Promise<unknown> | (() => unknown)): Promise<ApiError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    remember(error);
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("expected an ApiError");
}

async function control(method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}/__fake/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Json };
}
const config = (p: Json) => control("POST", "config", p);
const fault = (f: Json) => control("POST", "faults", f);
const sends = () => fake.requestCounts()["POST /v2/messages"] ?? 0;

/** A webhook receiver on 127.0.0.1 that keeps every request; `failFirst` answers 500 that many times per path. */
interface Hit {
  path: string;
  headers: Record<string, string>;
  body: string;
}
async function startReceiver() {
  const hits: Hit[] = [];
  const failures = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const path = req.url ?? "/";
      hits.push({ path, headers, body });
      const left = failures.get(path) ?? 0;
      if (left > 0) failures.set(path, left - 1);
      res.statusCode = left > 0 ? 500 : 200;
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (path: string) => `${origin}${path}`,
    hits,
    failFirst: (path: string, n: number) => failures.set(path, n),
    clear() {
      hits.length = 0;
      failures.clear();
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
let rx: Awaited<ReturnType<typeof startReceiver>>;

const asRequest = (hit: Hit): WebhookRequest => ({
  method: "POST",
  url: `https://switchboard.example/hooks/telnyx${hit.path}`,
  headers: new Headers(hit.headers),
  rawBody: hit.body,
});

/** The official SDK's verdict on the same bytes and headers. */
async function sdkAccepts(hit: Hit): Promise<boolean> {
  try {
    await sdk.webhooks.unwrap(hit.body, { headers: hit.headers });
    return true;
  } catch (error) {
    expect((error as Error).name).toBe("TelnyxWebhookVerificationError");
    return false;
  }
}

beforeAll(async () => {
  fake = await startTelnyxFake({ port: 0, host: "127.0.0.1", webhookTimeoutMs: 500, webhookRetryDelayMs: 5 });
  base = fake.url.replace(/\/v2$/, "");
  rx = await startReceiver();
  sdk = new Telnyx({ apiKey: TELNYX_FAKE_API_KEY, publicKey: fake.publicKey, baseURL: fake.url, maxRetries: 0 });
});
afterAll(async () => {
  await fake.close();
  await rx.close();
});
beforeEach(() => {
  fake.reset();
  rx.clear();
});

// ---------------------------------------------------------------------------
// Config and credentials
// ---------------------------------------------------------------------------

describe("config and credentials", () => {
  it("the schemas: defaults, optional fields, refusals", () => {
    expect(telnyxCredentialsSchema.parse({ api_key: ` ${TELNYX_FAKE_API_KEY} ` }).api_key).toBe(TELNYX_FAKE_API_KEY);
    expect(telnyxCredentialsSchema.safeParse({}).success).toBe(false);
    expect(telnyxConfigSchema.parse({ base_url: "", messaging_profile_id: null, webhook_public_key: "", webhook_url: null })).toEqual({});
    expect(telnyxConfigSchema.parse({ webhook_public_key: fake.publicKey }).webhook_public_key).toBe(fake.publicKey);
    expect(telnyxConfigSchema.safeParse({ messaging_profile_id: "profile-1" }).success).toBe(false);
    expect(telnyxConfigSchema.safeParse({ webhook_public_key: "AAAA" }).success).toBe(false); // 3 bytes
    expect(telnyxConfigSchema.safeParse({ webhook_public_key: fake.publicKey.slice(0, -1) }).success).toBe(false);
    expect(telnyxConfigSchema.safeParse({ webhook_url: "https://user:pw@example.com/h" }).success).toBe(false);
    expect(telnyxConfigSchema.safeParse({ webhook_url: "ftp://example.com/h" }).success).toBe(false);
    expect(telnyxConfigSchema.safeParse({ webhook_url: "https://example.com/h?token=abc" }).success).toBe(true);
    expect(telnyxConfigSchema.safeParse({ base_url: "https://user:pw@api.telnyx.com/v2" }).success).toBe(false);
    expect(TELNYX_DEFAULT_BASE_URL).toBe("https://api.telnyx.com/v2");
  });

  it("a custom base_url is refused where custom provider hosts are not allowed, before any request", async () => {
    const e = await apiError(telnyxAdapter.send(ctx({ network: hosted }), msg()));
    expect(e.code).toBe("invalid_request");
    expect(e.details).toMatchObject({ field: "base_url", allowed: ["https://api.telnyx.com/v2"] });
    await apiError(telnyxAdapter.testCredentials(ctx({ network: hosted })));
    await apiError(telnyxAdapter.balance!(ctx({ network: hosted })));
    await apiError(telnyxAdapter.listNumbers!(ctx({ network: hosted })));
    expect(fake.requestCounts()).toEqual({});
  });

  it("a config that breaks the rules is a 400 naming the field", async () => {
    const e = await apiError(telnyxAdapter.balance!(ctx({ config: { messaging_profile_id: "nope" } })));
    expect(e.details).toMatchObject({ field: "messaging_profile_id", source: "connection_config" });
  });

  it("a missing API key is an auth error; a key with a line break is refused without being shown", async () => {
    const missing = await caught(telnyxAdapter.send(ctx({ credentials: {} }), msg()));
    expect(missing.kind).toBe("auth");
    const broken = await apiError(telnyxAdapter.send(ctx({ credentials: { api_key: "KEYabc\r\nX-Evil: 1" } }), msg()));
    expect(broken.message).not.toContain("KEYabc");
    expect(fake.requestCounts()).toEqual({});
  });
});

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

describe("send", () => {
  it("an SMS: one POST /messages with Bearer auth and the wire fields, per-recipient result", async () => {
    const r = await send(msg({ to: ["+1 (312) 555-1234"], statusCallbackUrl: "https://switchboard.example/hooks/telnyx?t=x" }));
    expect(r.sentCount).toBe(1);
    expect(r.providerMessageIds).toHaveLength(1);
    expect(r.providerMessageIds[0]).toMatch(UUID);
    expect(r.recipients).toEqual([
      { to: US_A, ok: true, status: "queued", message_id: r.providerMessageIds[0], segments: 1, price: "0.0040" },
    ]);
    expect(r.data).toMatchObject({ sent_count: 1, failed_count: 0, requests: 1, total_cost: "0.0040", currency: "USD" });
    expect(fake.received).toHaveLength(1);
    const request = fake.received[0].request!;
    expect(request.headers.authorization).toBe(`Bearer ${TELNYX_FAKE_API_KEY}`);
    expect(request.headers["idempotency-key"]).toBeUndefined();
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.params).toEqual({
      from: N.primary,
      to: US_A,
      text: "Hello from Switchboard",
      webhook_url: "https://switchboard.example/hooks/telnyx?t=x",
    });
  });

  it("the config's webhook_url is used when the message names no callback", async () => {
    await send(msg(), ctx({ config: { webhook_url: "https://switchboard.example/hooks/default" } }));
    expect(fake.received[0].request!.params.webhook_url).toBe("https://switchboard.example/hooks/default");
  });

  it("segments come from Telnyx's parts", async () => {
    const r = await send(msg({ body: "a".repeat(161) }));
    expect(r.recipients[0]).toMatchObject({ ok: true, segments: 2, price: "0.0080" });
  });

  it("no from: the messaging profile's number pool; an alphanumeric sender carries the profile too", async () => {
    const pooled = await send(msg({ from: null }));
    expect(pooled.sentCount).toBe(1);
    expect(fake.received[0].request!.params).toMatchObject({ messaging_profile_id: TELNYX_FAKE_PROFILE_ID });
    expect(fake.received[0].request!.params.from).toBeUndefined();
    const alpha = await send(msg({ from: "Switchboard" }));
    expect(alpha.sentCount).toBe(1);
    expect(fake.received[1].request!.params).toMatchObject({ from: "Switchboard", messaging_profile_id: TELNYX_FAKE_PROFILE_ID });
    expect(fake.received[1].data.from).toMatchObject({ phone_number: "Switchboard" });
    // A number brings its own profile: none is sent.
    await send(msg());
    expect(fake.received[2].request!.params.messaging_profile_id).toBeUndefined();
  });

  it("no from and no messaging profile, or an alphanumeric sender without one, is refused before any request", async () => {
    const noProfile = ctx({ config: { messaging_profile_id: null } });
    expect((await apiError(telnyxAdapter.send(noProfile, msg({ from: null })))).details).toMatchObject({ field: "from" });
    await apiError(telnyxAdapter.send(noProfile, msg({ from: "Switchboard" })));
    await apiError(telnyxAdapter.send(ctx(), msg({ from: "not a sender!" })));
    expect(sends()).toBe(0);
  });

  it("an MMS: type MMS, media_urls and subject; one request per recipient", async () => {
    const r = await send(msg({
      channel: "mms",
      to: [US_A, US_B],
      body: "Look",
      mediaUrls: ["https://cdn.example.com/cat.jpg", "https://cdn.example.com/dog.png"],
      subject: "Pets",
    }));
    expect(r.sentCount).toBe(2);
    expect(r.recipients.map((x) => [x.to, x.ok, x.segments, x.price])).toEqual([[US_A, true, 1, "0.0150"], [US_B, true, 1, "0.0150"]]);
    expect(sends()).toBe(2);
    expect(fake.received.map((m) => m.request!.params.to)).toEqual([US_A, US_B]);
    expect(fake.received[0].request!.params).toMatchObject({
      type: "MMS",
      media_urls: ["https://cdn.example.com/cat.jpg", "https://cdn.example.com/dog.png"],
      subject: "Pets",
      text: "Look",
    });
    expect(fake.received[0].data).toMatchObject({ type: "MMS", subject: "Pets" });
    expect(r.data).toMatchObject({ total_cost: "0.0300", currency: "USD" });
  });

  it("channels: sms and mms only; media only as MMS, at most 10; a body or media is required", async () => {
    await apiError(telnyxAdapter.send(ctx(), msg({ channel: "whatsapp" })));
    await apiError(telnyxAdapter.send(ctx(), msg({ mediaUrls: ["https://cdn.example.com/a.jpg"] })));
    const eleven = Array.from({ length: 11 }, (_, i) => `https://cdn.example.com/${i}.jpg`);
    await apiError(telnyxAdapter.send(ctx(), msg({ channel: "mms", mediaUrls: eleven })));
    await apiError(telnyxAdapter.send(ctx(), msg({ body: "" })));
    await apiError(telnyxAdapter.send(ctx(), msg({ to: [] })));
    expect(sends()).toBe(0);
  });
});

describe("per-recipient refusals and partial success", () => {
  it("STOP (40300), invalid to (10016), region (40309) fail their recipient; the others are sent", async () => {
    await config({ stop_list: [US_B] });
    const r = await send(msg({ to: [US_A, US_B, "0412 345 678", AU, US_C] }));
    expect(r.sentCount).toBe(2);
    expect(r.recipients.map((x) => [x.to, x.ok, x.status])).toEqual([
      [US_A, true, "queued"],
      [US_B, false, "40300"],
      ["0412 345 678", false, "10016"],
      [AU, false, "40309"],
      [US_C, true, "queued"],
    ]);
    expect(r.recipients[1].error).toMatch(/STOP/);
    expect(r.providerMessageIds).toHaveLength(2);
    expect(r.data).toMatchObject({ sent_count: 2, failed_count: 3, requests: 5 });
    expect(r.data.incomplete).toBeUndefined();
    expect(fake.received.map((m) => m.request!.params.to)).toEqual([US_A, US_C]);
  });

  it("40310 (invalid to) and a 40300 answered with 403 are still recipient failures, never a failover", async () => {
    await config({ invalid_to_code: "40310", stop_list: [US_B], error_statuses: { "40300": 403 } });
    const r = await send(msg({ to: [US_B, "13125551234", US_A] }));
    expect(r.recipients.map((x) => [x.ok, x.status])).toEqual([[false, "40300"], [false, "40310"], [true, "queued"]]);
    // Alone, a STOP refusal is a result with the failed recipient, not an error.
    const alone = await send(msg({ to: [US_B] }));
    expect(alone.sentCount).toBe(0);
    expect(alone.recipients[0]).toMatchObject({ ok: false, status: "40300" });
  });

  it("a refusal of the message itself (40305 from not on the account) fails every recipient with one request", async () => {
    const r = await send(msg({ from: "+13125559999", to: [US_A, US_B, US_C] }));
    expect(r.sentCount).toBe(0);
    expect(r.recipients.map((x) => x.status)).toEqual(["40305", "40305", "40305"]);
    expect(r.recipients[0].error).toMatch(/Invalid 'from' address/);
    expect(r.recipients[1].error).toMatch(/^Not sent: /);
    expect(sends()).toBe(1);
    expect(fake.received).toHaveLength(0);
  });

  it("a number without messaging (40100) and a bad media URL (10003) are message refusals too", async () => {
    const noMessaging = await send(msg({ from: N.voiceOnly, to: [US_A, US_B] }));
    expect(noMessaging.recipients.map((x) => x.status)).toEqual(["40100", "40100"]);
    const badMedia = await send(msg({ channel: "mms", mediaUrls: ["https://cdn.example.com/a.jpg", "ftp://x/b.jpg"], to: [US_A, US_B] }));
    expect(badMedia.recipients.map((x) => x.status)).toEqual(["10003", "10003"]);
    expect(sends()).toBe(2);
  });

  it("an account-level failure after an accepted recipient stops the loop: 429 → not sent, reported in data", async () => {
    await fault({ mode: "http429", path: "/messages", method: "POST", after: 1 });
    const r = await send(msg({ to: [US_A, US_B, US_C] }));
    expect(r.sentCount).toBe(1);
    expect(r.recipients.map((x) => [x.to, x.status])).toEqual([[US_A, "queued"], [US_B, "NOT_SENT"], [US_C, "NOT_SENT"]]);
    expect(r.data).toMatchObject({
      sent_count: 1,
      failed_count: 2,
      requests: 2,
      maybe_sent_count: 0,
      incomplete: { recipient_index: 1, to: US_B, kind: "rate_limited", maybe_sent: false, provider_code: "10011" },
    });
    expect(sends()).toBe(2);
  });

  it("a 500 after an accepted recipient may have been sent: MAYBE_SENT, maybe_sent_count 1, never retried", async () => {
    await fault({ mode: "http500", path: "/messages", method: "POST", after: 1, process: true });
    const r = await send(msg({ to: [US_A, US_B, US_C] }));
    expect(r.recipients.map((x) => x.status)).toEqual(["queued", "MAYBE_SENT", "NOT_SENT"]);
    expect(r.recipients[1].error).toMatch(/^May have been sent; do not resend/);
    expect(r.data).toMatchObject({ maybe_sent_count: 1, incomplete: { kind: "transient", maybe_sent: true } });
    expect(fake.received).toHaveLength(2); // the 500 came after Telnyx took the message
    expect(sends()).toBe(2);
  });

  it("a timeout after an accepted recipient: MAYBE_SENT", async () => {
    await fault({ mode: "timeout", path: "/messages", after: 1 });
    const r = await send(msg({ to: [US_A, US_B] }), ctx({ timeoutMs: 300 }));
    expect(r.recipients.map((x) => x.status)).toEqual(["queued", "MAYBE_SENT"]);
    expect(r.data).toMatchObject({ maybe_sent_count: 1, incomplete: { kind: "timeout", maybe_sent: true } });
  });

  it("insufficient funds after an accepted recipient: insufficient_funds, not sent", async () => {
    await control("POST", "account", { balance: 0.005 }); // one SMS
    const r = await send(msg({ to: [US_A, US_B, US_C] }));
    expect(r.recipients.map((x) => x.status)).toEqual(["queued", "NOT_SENT", "NOT_SENT"]);
    expect(r.data).toMatchObject({ maybe_sent_count: 0, incomplete: { kind: "insufficient_funds", provider_code: "20100" } });
  });

  it("refused recipients before an account-level failure travel with the thrown error", async () => {
    await config({ stop_list: [US_A] });
    await fault({ mode: "http429", path: "/messages", after: 1 });
    const e = await caught(send(msg({ to: [US_A, US_B] })));
    expect(e.kind).toBe("rate_limited");
    expect(canFailOver(e)).toBe(true);
    expect(e.details.refused_recipients).toEqual([{ to: US_A, status: "40300", error: expect.stringMatching(/STOP/) }]);
  });
});

describe("account-level failures of the first recipient are thrown (transport verdicts)", () => {
  const expectThrown = async (
    c: AdapterContext,
    expected: { kind: string; maybeSent: boolean; failover: boolean; code?: string; status?: number },
  ) => {
    const e = await caught(send(msg({ to: [US_A, US_B] }), c));
    expect(e.kind).toBe(expected.kind);
    expect(e.maybeSent).toBe(expected.maybeSent);
    expect(canFailOver(e)).toBe(expected.failover);
    expect(e.details.provider).toBe("telnyx");
    if (expected.code) expect(e.details.provider_code).toBe(expected.code);
    if (expected.status) expect(e.details.status).toBe(expected.status);
    return e;
  };

  it("401 / 10009 wrong key: auth, not sent, failover", async () => {
    const e = await expectThrown(ctx({ credentials: { api_key: "KEYnot-the-right-key-at-all" } }), {
      kind: "auth",
      maybeSent: false,
      failover: true,
      code: "10009",
      status: 401,
    });
    expect(e.message).toMatch(/Authentication failed/);
    expect(e.details.errors).toEqual([expect.objectContaining({ code: "10009", title: "Authentication failed" })]);
    expect(e.message).not.toContain("KEYnot-the-right-key-at-all");
    expect(sends()).toBe(1);
  });

  it("401 / 20002 revoked key: auth, not sent, failover", async () => {
    await expectThrown(ctx({ credentials: { api_key: TELNYX_FAKE_REVOKED_API_KEY } }), {
      kind: "auth",
      maybeSent: false,
      failover: true,
      code: "20002",
    });
  });

  it("20100 answered with 403 still reads as insufficient funds", async () => {
    await control("POST", "account", { balance: 0 });
    await config({ error_statuses: { "20100": 403 } });
    await expectThrown(ctx(), { kind: "insufficient_funds", maybeSent: false, failover: true, code: "20100", status: 403 });
  });

  it("402 / 20100 insufficient funds: insufficient_funds, not sent, failover", async () => {
    await control("POST", "account", { balance: 0 });
    await expectThrown(ctx(), { kind: "insufficient_funds", maybeSent: false, failover: true, code: "20100", status: 402 });
    expect(fake.received).toHaveLength(0);
  });

  it("429 / 10011: rate_limited, not sent, failover, retry_after from x-ratelimit-reset", async () => {
    await fault({ mode: "http429", path: "/messages" });
    const e = await expectThrown(ctx(), { kind: "rate_limited", maybeSent: false, failover: true, code: "10011", status: 429 });
    expect(e.details.retry_after).toBeGreaterThan(0);
    expect(sends()).toBe(1);
  });

  it("500 / 10007: may have been sent, no failover, no retry", async () => {
    await fault({ mode: "http500", path: "/messages" });
    await expectThrown(ctx(), { kind: "transient", maybeSent: true, failover: false, code: "10007", status: 500 });
    expect(sends()).toBe(1);
  });

  it("503: unavailable, may have been sent, no failover", async () => {
    await fault({ mode: "http503", path: "/messages" });
    await expectThrown(ctx(), { kind: "unavailable", maybeSent: true, failover: false, status: 503 });
    expect(sends()).toBe(1);
  });

  it("a timeout: may have been sent, no failover", async () => {
    await fault({ mode: "latency", path: "/messages", delay_ms: 2_000 });
    await expectThrown(ctx({ timeoutMs: 300 }), { kind: "timeout", maybeSent: true, failover: false });
    expect(fake.received).toHaveLength(1); // Telnyx took it; the answer came too late
    expect(sends()).toBe(1);
  });

  it("a connection reset after Telnyx recorded the message: may have been sent", async () => {
    await fault({ mode: "reset", path: "/messages", method: "POST" });
    await expectThrown(ctx(), { kind: "unavailable", maybeSent: true, failover: false });
    expect(fake.received).toHaveLength(1);
    expect(sends()).toBe(1);
  });

  it("a closed port: could not connect, not sent, failover", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const e = await expectThrown(ctx({ config: { base_url: `http://127.0.0.1:${port}/v2` } }), {
      kind: "unavailable",
      maybeSent: false,
      failover: true,
    });
    expect(e.message).toMatch(/Could not connect to Telnyx/);
  });

  it("a disabled messaging profile (40312) is account-level: forbidden, failover", async () => {
    await control("POST", "profile", { enabled: false });
    await expectThrown(ctx(), { kind: "forbidden", maybeSent: false, failover: true, code: "40312" });
  });
});

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

describe("testCredentials", () => {
  it("ok with the fake's key: GET /balance and the profile, nothing sent", async () => {
    const r = remember(await telnyxAdapter.testCredentials(ctx()));
    expect(r).toEqual({ ok: true, message: "Telnyx accepted the API key." });
    expect(fake.requestCounts()).toEqual({ "GET /v2/balance": 1, [`GET /v2/messaging_profiles/${TELNYX_FAKE_PROFILE_ID}`]: 1 });
  });

  it("a wrong key and a revoked key are ok:false with the code", async () => {
    const bad = remember(await telnyxAdapter.testCredentials(ctx({ credentials: { api_key: "KEYwrong-key-for-test" } })));
    expect(bad).toMatchObject({ ok: false, message: "Telnyx rejected the API key.", details: { kind: "auth", status: 401, provider_code: "10009" } });
    const revoked = remember(await telnyxAdapter.testCredentials(ctx({ credentials: { api_key: TELNYX_FAKE_REVOKED_API_KEY } })));
    expect(revoked).toMatchObject({ ok: false, message: "The Telnyx API key has been revoked.", details: { provider_code: "20002" } });
  });

  it("an unknown messaging profile is ok:false naming the field", async () => {
    const r = await telnyxAdapter.testCredentials(ctx({ config: { messaging_profile_id: "00000000-0000-4000-8000-000000000000" } }));
    expect(r).toMatchObject({ ok: false, details: { kind: "not_found", field: "messaging_profile_id" } });
  });

  it("provider trouble is ok:false too", async () => {
    await fault({ mode: "http503", path: "/balance" });
    const r = await telnyxAdapter.testCredentials(ctx());
    expect(r).toMatchObject({ ok: false, details: { kind: "unavailable", status: 503 } });
  });
});

describe("balance and history", () => {
  it("balance: the allow-listed fields as Telnyx's strings", async () => {
    await control("POST", "account", { balance: 12.5, credit_limit: 10, pending: 1 });
    const r = remember(await telnyxAdapter.balance!(ctx()));
    expect(r).toEqual({ data: { balance: "12.50", currency: "USD", credit_limit: "10.00", available_credit: "22.50", pending: "1.00" } });
  });

  it("balance with a bad key throws auth", async () => {
    const e = await caught(telnyxAdapter.balance!(ctx({ credentials: { api_key: "KEYwrong-key-for-test" } })));
    expect(e.kind).toBe("auth");
    expect(e.maybeSent).toBe(false);
  });

  it("history: GET /messages/{id}, normalised status, webhook URLs scrubbed", async () => {
    const sent = await send(msg({ statusCallbackUrl: `${rx.url("/h")}?token=secret-url-token` }));
    const id = sent.providerMessageIds[0];
    const before = await telnyxAdapter.history!(ctx(), { message_id: id });
    remember(before);
    expect(before.data).toMatchObject({ status: "queued", provider_status: "queued", message: { id, direction: "outbound", parts: 1 } });
    expect(JSON.stringify(before)).not.toContain("secret-url-token");
    await fake.advance(id, { status: "delivery_failed" });
    const after = await telnyxAdapter.history!(ctx(), { message_id: id });
    expect(after.data).toMatchObject({ status: "undelivered", provider_status: "delivery_failed", message: { errors: [{ code: "40008" }] } });
    expect(fake.requestCounts()[`GET /v2/messages/${id}`]).toBe(2);
  });

  it("history: an unknown id is not_found; a missing or malformed id is refused before any request", async () => {
    const e = await caught(telnyxAdapter.history!(ctx(), { message_id: "6b9c7a56-2a1e-4f0e-9a3c-2f1f0a7c9d11" }));
    expect(e).toMatchObject({ kind: "not_found", maybeSent: false });
    expect(e.details.provider_code).toBe("10005");
    await apiError(telnyxAdapter.history!(ctx(), {}));
    await apiError(telnyxAdapter.history!(ctx(), { message_id: "../balance" }));
    expect(Object.keys(fake.requestCounts())).toEqual(["GET /v2/messages/6b9c7a56-2a1e-4f0e-9a3c-2f1f0a7c9d11"]);
  });
});

describe("listNumbers", () => {
  it("capabilities from features (null → false) and the messaging profile; voice from /phone_numbers", async () => {
    const numbers = remember(await telnyxAdapter.listNumbers!(ctx())) as Awaited<ReturnType<NonNullable<typeof telnyxAdapter.listNumbers>>>;
    const by = Object.fromEntries(numbers.map((n) => [n.phone_number, n]));
    expect(numbers).toHaveLength(6);
    expect(by[N.primary]).toEqual({
      phone_number: N.primary,
      friendly_name: "primary",
      capabilities: { sms: true, mms: true, voice: true, whatsapp: false },
      provider_number_id: "1293384261075731461",
    });
    expect(by[N.tollFree].capabilities).toEqual({ sms: true, mms: true, voice: true, whatsapp: false });
    expect(by[N.voiceOnly].capabilities).toEqual({ sms: false, mms: false, voice: true, whatsapp: false });
    // features.sms is set, but without a messaging profile Telnyx refuses to send (40100).
    expect(by[N.noProfile].capabilities).toEqual({ sms: false, mms: false, voice: true, whatsapp: false });
    expect(fake.requestCounts()).toEqual({ "GET /v2/phone_numbers/messaging": 1, "GET /v2/phone_numbers": 1 });
  });

  it("pages through both lists (page[number], page[size]=250, meta.total_pages)", async () => {
    const many: TelnyxFakeNumber[] = Array.from({ length: 600 }, (_, i) => ({
      id: String(1_300_000_000_000_000_000n + BigInt(i)),
      phone_number: `+1312555${String(1000 + i).padStart(4, "0")}`,
      status: "active",
      phone_number_type: "local",
      messaging_type: "long-code",
      messaging_profile_id: i % 2 === 0 ? TELNYX_FAKE_PROFILE_ID : null,
      connection_id: null,
      tags: [],
      sms: true,
      mms: i % 3 !== 0,
      purchased_at: "2026-01-05T09:00:00.000+00:00",
    }));
    const big = await startTelnyxFake({ port: 0, host: "127.0.0.1", numbers: many });
    try {
      const numbers = await telnyxAdapter.listNumbers!(ctx({ config: { base_url: big.url } }));
      expect(numbers).toHaveLength(600);
      expect(new Set(numbers.map((n) => n.phone_number)).size).toBe(600);
      expect(numbers.filter((n) => n.capabilities.sms)).toHaveLength(300);
      expect(numbers.filter((n) => n.capabilities.mms)).toHaveLength(200);
      expect(numbers.every((n) => n.capabilities.voice && !n.capabilities.whatsapp)).toBe(true);
      expect(big.requestCounts()).toEqual({ "GET /v2/phone_numbers/messaging": 3, "GET /v2/phone_numbers": 3 });
    } finally {
      await big.close();
    }
  });

  it("refuses to return a partial list past 20 pages", async () => {
    const many: TelnyxFakeNumber[] = Array.from({ length: 20 * 250 + 1 }, (_, i) => ({
      id: String(1_400_000_000_000_000_000n + BigInt(i)),
      phone_number: `+1312555${String(i).padStart(4, "0")}`,
      status: "active",
      phone_number_type: "local",
      messaging_type: "long-code",
      messaging_profile_id: TELNYX_FAKE_PROFILE_ID,
      connection_id: null,
      tags: [],
      sms: true,
      mms: true,
      purchased_at: "2026-01-05T09:00:00.000+00:00",
    }));
    const big = await startTelnyxFake({ port: 0, host: "127.0.0.1", numbers: many });
    try {
      const e = await caught(telnyxAdapter.listNumbers!(ctx({ config: { base_url: big.url } })));
      expect(e.kind).toBe("too_large");
      expect(big.requestCounts()).toEqual({ "GET /v2/phone_numbers/messaging": 20 });
    } finally {
      await big.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/** Sends one SMS with its webhooks to the receiver, drives it and returns the captured pushes. */
async function delivered(status: "sent" | "delivered" | "delivery_failed" | "sending_failed" | "delivery_unconfirmed" | "expired", extra: Json = {}) {
  const r = await send(msg({ statusCallbackUrl: rx.url("/status") }));
  const id = r.providerMessageIds[0];
  await fake.advance(id, { status, ...extra });
  return { id, hits: rx.hits.filter((h) => h.path === "/status") };
}

describe("verifyWebhook", () => {
  it("accepts the fake's signed pushes, exactly as the official SDK does", async () => {
    const { hits } = await delivered("delivered");
    expect(hits).toHaveLength(2);
    for (const hit of hits) {
      expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(hit))).toBe(true);
      expect(await sdkAccepts(hit)).toBe(true);
    }
    await control("POST", "profile", { webhook_url: rx.url("/inbound") });
    await fake.inbound({ from: US_A, to: N.primary, text: "hi" });
    const inbound = rx.hits.find((h) => h.path === "/inbound")!;
    expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(inbound))).toBe(true);
    expect(await sdkAccepts(inbound)).toBe(true);
  });

  const FAULTS: SignatureFault[] = ["stale", "future", "reserialized", "truncated", "wrong_key", "tampered", "missing"];
  for (const signature of FAULTS) {
    it(`refuses a "${signature}" signature, as the SDK does`, async () => {
      const { hits } = await delivered("delivered", { signature });
      expect(hits).toHaveLength(2);
      for (const hit of hits) {
        expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(hit))).toBe(false);
        expect(await sdkAccepts(hit)).toBe(false);
      }
    });
  }

  it("other faults: no key configured, a bad timestamp, bad base64, a swapped body, a header missing", async () => {
    const { hits } = await delivered("sent");
    const hit = hits[0];
    expect(await telnyxAdapter.verifyWebhook!(ctx({ config: { webhook_public_key: null } }), asRequest(hit))).toBe(false);
    const variants: Array<Record<string, string>> = [
      { ...hit.headers, "telnyx-timestamp": `${hit.headers["telnyx-timestamp"]}.0` },
      { ...hit.headers, "telnyx-timestamp": "-1" },
      { ...hit.headers, "telnyx-signature-ed25519": `${hit.headers["telnyx-signature-ed25519"]}!` },
      { ...hit.headers, "telnyx-signature-ed25519": hit.headers["telnyx-signature-ed25519"].slice(0, -4) },
      { ...hit.headers, "telnyx-signature-ed25519": "" },
    ];
    const { ["telnyx-timestamp"]: _, ...noTimestamp } = hit.headers;
    variants.push(noTimestamp);
    for (const headers of variants) {
      const variant = { ...hit, headers };
      expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(variant))).toBe(false);
      expect(await sdkAccepts(variant)).toBe(false);
    }
    const swapped = { ...hit, body: `${hit.body} ` };
    expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(swapped))).toBe(false);
    expect(await sdkAccepts(swapped)).toBe(false);
  });

  it("the 300 s window holds in both directions (at the edge and just past it)", async () => {
    const { hits } = await delivered("sent");
    const hit = hits[0];
    const ts = Number(hit.headers["telnyx-timestamp"]) * 1000;
    const verify = (now: number) => verifyTelnyxSignature(fake.publicKey, new Headers(hit.headers), hit.body, now);
    expect(await verify(ts + 300_000)).toBe(true);
    expect(await verify(ts - 300_000)).toBe(true);
    expect(await verify(ts + 301_000)).toBe(false);
    expect(await verify(ts - 301_000)).toBe(false);
  });
});

describe("parseWebhook", () => {
  const parse = (hit: Hit) => remember(telnyxAdapter.parseWebhook!(asRequest(hit))) as ReturnType<NonNullable<typeof telnyxAdapter.parseWebhook>>;

  it("message.sent and message.finalized become delivery events per recipient", async () => {
    const { id, hits } = await delivered("delivered");
    const [sent, finalized] = hits.map(parse);
    const sentEvent = JSON.parse(hits[0].body).data;
    expect(sent).toEqual([{
      kind: "status",
      provider_message_id: id,
      status: "sent",
      provider_status: "sent",
      error_code: null,
      recipient: US_A,
      occurred_at: sentEvent.occurred_at,
      dedupe_key: sentEvent.id,
      channel: "sms",
    }]);
    expect(finalized).toEqual([expect.objectContaining({ kind: "status", provider_message_id: id, status: "delivered", provider_status: "delivered" })]);
    expect((finalized[0] as DeliveryEvent).dedupe_key).not.toBe(sentEvent.id);
  });

  it("failures keep Telnyx's status word and error code", async () => {
    const cases: Array<[Parameters<typeof delivered>[0], string, string]> = [
      ["delivery_failed", "undelivered", "40008"],
      ["sending_failed", "failed", "40014"],
      ["expired", "failed", "40005"],
    ];
    for (const [status, normalised, code] of cases) {
      rx.clear();
      const { hits } = await delivered(status);
      const events = parse(hits[hits.length - 1]) as DeliveryEvent[];
      expect(events).toEqual([expect.objectContaining({ status: normalised, provider_status: status, error_code: code })]);
    }
    rx.clear();
    const { hits } = await delivered("delivery_unconfirmed");
    expect(parse(hits[1])).toEqual([expect.objectContaining({ status: "sent", provider_status: "delivery_unconfirmed" })]);
  });

  it("an MMS status event is on channel mms", async () => {
    const r = await send(msg({ channel: "mms", mediaUrls: ["https://cdn.example.com/a.jpg"], statusCallbackUrl: rx.url("/mms") }));
    await fake.advance(r.providerMessageIds[0], { status: "sent" });
    expect(parse(rx.hits[0])).toEqual([expect.objectContaining({ status: "sent", channel: "mms" })]);
  });

  it("message.received becomes an inbound event (SMS and MMS)", async () => {
    await control("POST", "profile", { webhook_url: rx.url("/inbound") });
    const sms = await fake.inbound({ from: US_A, to: N.secondary, text: "Hi there" });
    const event = JSON.parse(rx.hits[0].body).data;
    expect(parse(rx.hits[0])).toEqual([{
      kind: "inbound",
      provider_message_id: sms.message_id,
      channel: "sms",
      from: US_A,
      to: N.secondary,
      body: "Hi there",
      media_urls: [],
      occurred_at: event.occurred_at,
      dedupe_key: event.id,
    } satisfies InboundEvent]);
    const mms = await fake.inbound({ from: US_B, to: N.primary, media_urls: ["https://m.example.com/p.png", "https://m.example.com/q.jpg"] });
    expect(parse(rx.hits[1])).toEqual([expect.objectContaining({
      kind: "inbound",
      provider_message_id: mms.message_id,
      channel: "mms",
      from: US_B,
      to: N.primary,
      body: "",
      media_urls: ["https://m.example.com/p.png", "https://m.example.com/q.jpg"],
    })]);
  });

  it("retries and duplicates of one event share its dedupe key; the events of one message do not", async () => {
    rx.failFirst("/status", 2); // the first two attempts fail: Telnyx tries again
    const { hits } = await delivered("delivered", { duplicate: 1 });
    // message.sent: 2 failed attempts + 1 ok, then its duplicate; message.finalized and its duplicate.
    expect(hits).toHaveLength(6);
    const keys = hits.map((h) => (parse(h)[0] as DeliveryEvent).dedupe_key);
    expect(new Set(keys.slice(0, 4)).size).toBe(1);
    expect(new Set(keys.slice(4)).size).toBe(1);
    expect(keys[4]).not.toBe(keys[0]);
    expect(hits.map((h) => JSON.parse(h.body).meta.attempt)).toEqual([1, 2, 3, 1, 1, 1]);
    expect(hits.map((h) => (parse(h)[0] as DeliveryEvent).status)).toEqual(["sent", "sent", "sent", "sent", "delivered", "delivered"]);
    for (const hit of hits) expect(await telnyxAdapter.verifyWebhook!(ctx(), asRequest(hit))).toBe(true);

    await control("POST", "profile", { webhook_url: rx.url("/in") });
    await fake.inbound({ from: US_A, to: N.primary, text: "again", duplicate: 2 });
    const inbound = rx.hits.filter((h) => h.path === "/in").map((h) => (parse(h)[0] as InboundEvent).dedupe_key);
    expect(inbound).toHaveLength(3);
    expect(new Set(inbound).size).toBe(1);
  });

  it("several recipients in one payload get distinct keys", () => {
    const body = JSON.stringify({
      data: {
        event_type: "message.finalized",
        id: "e1",
        occurred_at: "2026-11-28T10:00:05.000+00:00",
        payload: { id: "m1", type: "MMS", to: [{ phone_number: US_A, status: "delivered" }, { phone_number: US_B, status: "delivery_failed" }], errors: [] },
      },
    });
    const events = telnyxAdapter.parseWebhook!({ method: "POST", url: "https://x/h", headers: new Headers(), rawBody: body }) as DeliveryEvent[];
    expect(events.map((e) => [e.recipient, e.status, e.dedupe_key])).toEqual([[US_A, "delivered", `e1:${US_A}`], [US_B, "undelivered", `e1:${US_B}`]]);
  });

  it("unknown event types are no events; malformed bodies are invalid_request", async () => {
    const req = (rawBody: string): WebhookRequest => ({ method: "POST", url: "https://x/h", headers: new Headers(), rawBody });
    expect(telnyxAdapter.parseWebhook!(req(JSON.stringify({ data: { event_type: "call.initiated", id: "e1", payload: {} } })))).toEqual([]);
    expect(telnyxAdapter.parseWebhook!(req(JSON.stringify({ data: { event_type: "message.sent", id: "e1", payload: { id: "m", to: [{ phone_number: US_A, status: "webhook_delivered" }] } } })))).toEqual([]);
    const bad = [
      "not json",
      "[]",
      JSON.stringify({ event_type: "message.sent" }),
      JSON.stringify({ data: { id: "e1", payload: {} } }),
      JSON.stringify({ data: { event_type: "message.sent", payload: { id: "m", to: [] } } }),
      JSON.stringify({ data: { event_type: "message.sent", id: "e1" } }),
      JSON.stringify({ data: { event_type: "message.finalized", id: "e1", payload: { to: [{ status: "delivered" }] } } }),
      JSON.stringify({ data: { event_type: "message.finalized", id: "e1", payload: { id: "m", to: "x" } } }),
      JSON.stringify({ data: { event_type: "message.finalized", id: "e1", payload: { id: "m", to: [{ phone_number: US_A }] } } }),
      JSON.stringify({ data: { event_type: "message.received", id: "e1", payload: { id: "m", to: [{ phone_number: N.primary }] } } }),
      JSON.stringify({ data: { event_type: "message.received", id: "e1", payload: { id: "m", from: { phone_number: US_A }, to: [{}] } } }),
    ];
    for (const body of bad) {
      const e = await apiError(() => telnyxAdapter.parseWebhook!(req(body)));
      expect(e.code).toBe("invalid_request");
    }
  });
});

describe("mapDeliveryStatus", () => {
  it("maps every Telnyx status word", () => {
    const map = telnyxAdapter.mapDeliveryStatus!;
    expect(Object.fromEntries(
      ["queued", "sending", "scheduled", "sent", "delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired", "cancelled", "webhook_delivered", "bogus"]
        .map((s) => [s, map(s)]),
    )).toEqual({
      queued: "queued",
      sending: "queued",
      scheduled: "queued",
      sent: "sent",
      delivered: "delivered",
      delivery_failed: "undelivered",
      delivery_unconfirmed: "sent",
      sending_failed: "failed",
      expired: "failed",
      cancelled: "failed",
      webhook_delivered: null,
      bogus: null,
    });
    expect(map(" DELIVERED ")).toBe("delivered");
  });
});

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

describe("credentials never leave the adapter", () => {
  it("no API key in anything returned or thrown in this file", () => {
    expect(seen.length).toBeGreaterThan(50);
    for (const text of seen) {
      expect(text).not.toContain(TELNYX_FAKE_API_KEY);
      expect(text).not.toContain(TELNYX_FAKE_REVOKED_API_KEY);
      expect(text).not.toContain("KEYwrong-key-for-test");
      expect(text).not.toContain("KEYnot-the-right-key-at-all");
    }
  });
});
