/**
 * The Exotel adapter (supabase/functions/_shared/providers/exotel.ts) against the Exotel
 * fake over real HTTP: config and credential rules, the region's host and the custom-host
 * policy, SMS (single, bulk chunking, DLT, validation refusals as failed recipients),
 * every account-level refusal and fault with its sent/not-sent verdict and failover
 * rule, partial sends, WhatsApp (text, template, media, partial failure, the 24 h
 * window), click-to-call, ExoPhone paging, balance, credential tests, webhook parsing of
 * the fake's real callbacks (duplicates and unknown sids included) and status mapping,
 * and that no credential ever shows in an error or a result.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  EXOTEL_FAKE_ACCOUNT as SG,
  EXOTEL_FAKE_ACCOUNT_IN as IN,
  EXOTEL_REGION_HOSTS,
  type ExotelExoPhone,
  type ExotelFake,
  startExotelFake,
} from "../../packages/devstack/src/fakes/exotel.ts";
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
import {
  EXOTEL_BASE_URLS,
  EXOTEL_MAX_NUMBER_PAGES,
  exotelAdapter,
  exotelConfigSchema,
  exotelCredentialsSchema,
} from "../../supabase/functions/_shared/providers/exotel.ts";
import { canFailOver } from "../../supabase/functions/_shared/providers/transport.ts";
import { ProviderError, type SendResult } from "../../supabase/functions/_shared/providers/types.ts";

type Json = Record<string, any>;

/** The local stack's policy: the fake is on loopback, at a custom base_url. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
/** Private networks allowed (no DNS needed) but only Exotel's own hosts. */
const officialOnly: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: false, blockedSmtpPorts: [] };
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };

const DLT_BODY = "Your Switchboard code is 123456. It expires in 10 minutes.";
const CUSTOMER = "+919876543210";
const AU_MOBILE = "+61412345678";
const OP = "9a4f0c52-8f3e-4c7e-9d55-0c1f2b3a4d5e";
const HEX32 = /^[0-9a-f]{32}$/;

const b64 = (s: string) => Buffer.from(s).toString("base64");
const SECRETS = [SG.apiKey, SG.apiToken, IN.apiKey, IN.apiToken, b64(`${SG.apiKey}:${SG.apiToken}`), b64(`${IN.apiKey}:${IN.apiToken}`)];

let fake: ExotelFake;

// --- a webhook receiver: what the fake's callbacks look like on arrival --------------

interface Receiver {
  url: string;
  hits: WebhookRequest[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const hits: WebhookRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      hits.push({ method: req.method ?? "POST", url: `http://${req.headers.host}${req.url}`, headers, rawBody: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let receiver: Receiver;
const hookUrl = () => `${receiver.url}/webhooks/exotel/s3cr3t-url-token`;

// --- helpers -------------------------------------------------------------------------

const sgCredentials = () => ({ api_key: SG.apiKey, api_token: SG.apiToken });
const sgConfig = (extra: Json = {}): Json => ({
  account_sid: SG.sid,
  region: "sg",
  base_url: fake.urls.sg,
  sender_id: SG.senderId,
  dlt_entity_id: SG.dltEntityId,
  dlt_template_id: SG.dltTemplateId,
  whatsapp_from: SG.whatsappNumber,
  caller_id: SG.voiceExoPhone,
  ...extra,
});
const inConfig = (extra: Json = {}): Json => ({
  account_sid: IN.sid,
  region: "in",
  base_url: fake.urls.in,
  sender_id: IN.senderId,
  dlt_entity_id: IN.dltEntityId,
  dlt_template_id: IN.dltTemplateId,
  whatsapp_from: IN.whatsappNumber,
  ...extra,
});

function ctx(over: Partial<AdapterContext> = {}): AdapterContext {
  return { credentials: sgCredentials(), config: sgConfig(), network: local, ...over };
}

const sms = (to: string[], extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  channel: "sms",
  to,
  body: DLT_BODY,
  operationId: OP,
  statusCallbackUrl: hookUrl(),
  ...extra,
});

const whatsapp = (to: string[], extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  channel: "whatsapp",
  to,
  body: "Your order has shipped.",
  operationId: OP,
  statusCallbackUrl: hookUrl(),
  ...extra,
});

/** n distinct valid Indian mobile numbers. */
const inMobiles = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => `+9198765${String(offset + i).padStart(5, "0")}`);
/** n distinct valid Australian mobile numbers. */
const auMobiles = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => `+614${10_000_000 + offset + i}`);

async function caught<T extends Error = ProviderError>(promise: Promise<unknown>, type: new (...args: any[]) => T = ProviderError as any): Promise<T> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  throw new Error(`expected a ${type.name}`);
}

/** Everything an error or result shows, for the no-credentials check. */
function shown(value: unknown): string {
  if (value instanceof Error) {
    const e = value as Error & { details?: unknown };
    return `${e.message} ${JSON.stringify(e.details ?? null)} ${JSON.stringify(e)}`;
  }
  return JSON.stringify(value);
}

function expectNoSecrets(value: unknown) {
  const text = shown(value);
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

async function control(path: string, body?: unknown, method = "POST") {
  const r = await fetch(`${fake.url}/__fake/${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Json };
}

const posts = (path: string, sid: string = SG.sid) => fake.requestCounts()[`POST /v1/Accounts/${sid}${path}`] ?? 0;
const apiRequests = () => Object.values(fake.requestCounts()).reduce((a, b) => a + b, 0);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const parse = (hit: WebhookRequest) => exotelAdapter.parseWebhook!(hit);
const form = (fields: Record<string, string>): WebhookRequest => ({
  method: "POST",
  url: hookUrl(),
  headers: new Headers({ "content-type": "application/x-www-form-urlencoded" }),
  rawBody: new URLSearchParams(fields).toString(),
});
const jsonHook = (body: unknown): WebhookRequest => ({
  method: "POST",
  url: hookUrl(),
  headers: new Headers({ "content-type": "application/json" }),
  rawBody: JSON.stringify(body),
});

beforeAll(async () => {
  fake = await startExotelFake({ port: 0, inPort: 0 });
  receiver = await startReceiver();
});

afterAll(async () => {
  await fake?.close();
  await receiver?.close();
});

beforeEach(() => {
  fake.reset();
  receiver.hits.length = 0;
});

// ---------------------------------------------------------------------------
// Config, credentials and hosts
// ---------------------------------------------------------------------------

describe("config and credentials", () => {
  it("defaults the region to sg and reads optional fields as unset when empty", () => {
    const parsed = exotelConfigSchema.parse({ account_sid: "acme1", sender_id: "", dlt_entity_id: null });
    expect(parsed.region).toBe("sg");
    expect(parsed.sender_id).toBeUndefined();
    expect(parsed.dlt_entity_id).toBeUndefined();
    expect(exotelConfigSchema.parse({ account_sid: "acme1", region: "in" }).region).toBe("in");
    expect(exotelConfigSchema.parse({ account_sid: "acme1", caller_id: "+91 80 4711 2244" }).caller_id).toBe("+918047112244");
  });

  it("refuses bad values", () => {
    for (const bad of [
      {},
      { account_sid: "acme/../x" },
      { account_sid: "acme1", region: "us" },
      { account_sid: "acme1", base_url: "ftp://api.exotel.com" },
      { account_sid: "acme1", sender_id: "TOO LONG SENDER" },
      { account_sid: "acme1", dlt_entity_id: "12ab" },
      { account_sid: "acme1", whatsapp_from: "08047112255" },
      { account_sid: "acme1", caller_id: "not a number" },
    ]) {
      expect(exotelConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(exotelCredentialsSchema.safeParse({ api_key: "k", api_token: "" }).success).toBe(false);
    expect(exotelCredentialsSchema.safeParse({ api_key: "k", api_token: "t" }).success).toBe(true);
  });

  it("a stored config that breaks the rules is a 400 naming the field, before any request", async () => {
    const e = await caught(exotelAdapter.send(ctx({ config: sgConfig({ region: "eu" }) }), sms([CUSTOMER])), ApiError);
    expect(e.code).toBe("invalid_request");
    expect(e.details).toMatchObject({ field: "region", source: "connection_config" });
    expect(apiRequests()).toBe(0);
  });

  it("missing credentials are an auth error that names no value", async () => {
    const e = await caught(exotelAdapter.send(ctx({ credentials: { api_key: SG.apiKey } }), sms([CUSTOMER])));
    expect(e.kind).toBe("auth");
    expect(e.maybeSent).toBe(false);
    expectNoSecrets(e);
    expect(apiRequests()).toBe(0);
  });

  it("the region picks Exotel's host; a base_url outside the official list is refused unless custom hosts are allowed", async () => {
    expect(EXOTEL_BASE_URLS).toEqual({ sg: `https://${EXOTEL_REGION_HOSTS.sg}`, in: `https://${EXOTEL_REGION_HOSTS.in}` });
    const seen: Array<{ url: string; auth: string | null }> = [];
    const stub = (async (input: URL | RequestInfo, init?: RequestInit) => {
      seen.push({ url: String(input), auth: new Headers(init?.headers).get("authorization") });
      return new Response(JSON.stringify({ incoming_phone_numbers: [], next_page_uri: null }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }) as typeof fetch;
    const config = (extra: Json) => ({ account_sid: "acme1", ...extra });
    for (const [extra, host] of [
      [{}, "api.exotel.com"],
      [{ region: "in" }, "api.in.exotel.com"],
      [{ region: "sg", base_url: "https://api.in.exotel.com/" }, "api.in.exotel.com"],
    ] as const) {
      await exotelAdapter.listNumbers!({ credentials: sgCredentials(), config: config(extra), network: officialOnly, options: { fetch: stub } });
      expect(new URL(seen.at(-1)!.url).host).toBe(host);
      expect(new URL(seen.at(-1)!.url).pathname).toBe("/v2_beta/Accounts/acme1/IncomingPhoneNumbers");
    }
    expect(seen[0].auth).toBe(`Basic ${b64(`${SG.apiKey}:${SG.apiToken}`)}`);

    for (const network of [officialOnly, hosted]) {
      const e = await caught(exotelAdapter.send(ctx({ network }), sms([CUSTOMER])), ApiError);
      expect(e.code).toBe("invalid_request");
      expect(e.details).toMatchObject({ field: "base_url", source: "connection_config" });
      expectNoSecrets(e);
    }
    expect(apiRequests()).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// SMS
// ---------------------------------------------------------------------------

describe("SMS", () => {
  it("sends one message with Sms/send: From, To, Body, StatusCallback, CustomField and the DLT ids", async () => {
    const result = await exotelAdapter.send(ctx(), sms([CUSTOMER]));
    expect(result.sentCount).toBe(1);
    expect(result.providerMessageIds).toHaveLength(1);
    expect(result.providerMessageIds[0]).toMatch(HEX32);
    expect(result.recipients).toEqual([
      { to: CUSTOMER, ok: true, status: "queued", message_id: result.providerMessageIds[0], segments: 1 },
    ]);
    expect(result.data).toMatchObject({ channel: "sms", sent_count: 1, failed_count: 0, requests: 1 });
    expect(posts("/Sms/send.json")).toBe(1);
    const [m] = fake.sms;
    expect(m).toMatchObject({
      sid: result.providerMessageIds[0],
      kind: "single",
      from: SG.senderId,
      to: CUSTOMER,
      body: DLT_BODY,
      dlt_entity_id: SG.dltEntityId,
      dlt_template_id: SG.dltTemplateId,
      status_callback: hookUrl(),
      custom_field: OP,
    });
    expect(m.request.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);
    expect(m.request.headers.connection).toBe("close");
    expectNoSecrets(result);
  });

  it("leaves the DLT parameters out when none are configured, and uses the message's from over sender_id", async () => {
    const result = await exotelAdapter.send(
      ctx({ config: sgConfig({ dlt_entity_id: "", dlt_template_id: null }) }),
      sms([AU_MOBILE], { from: SG.smsExoPhone }),
    );
    expect(result.sentCount).toBe(1);
    const params = fake.sms[0].request.params as Json;
    expect(params).not.toHaveProperty("DltEntityId");
    expect(params).not.toHaveProperty("DltTemplateId");
    expect(params.From).toBe(SG.smsExoPhone);
  });

  it("a DLT mismatch is accepted and fails later with the operator's scrubbing code", async () => {
    const result = await exotelAdapter.send(ctx(), sms([CUSTOMER], { body: "Not the registered template" }));
    expect(result.sentCount).toBe(1);
    await fake.advance({ sid: result.providerMessageIds[0] });
    const [event] = parse(receiver.hits[0]) as DeliveryEvent[];
    expect(event).toMatchObject({ status: "failed", provider_status: "failed/23082", error_code: "23082", channel: "sms" });
  });

  it("validation 400s are failed recipients, not thrown: nothing was sent", async () => {
    // An Indian number without DltEntityId is refused (400) by Exotel.
    const noDlt = ctx({ config: sgConfig({ dlt_entity_id: null, dlt_template_id: null }) });
    const single = await exotelAdapter.send(noDlt, sms([CUSTOMER]));
    expect(single.sentCount).toBe(0);
    expect(single.providerMessageIds).toEqual([]);
    expect(single.recipients).toEqual([
      { to: CUSTOMER, ok: false, status: "REJECTED", error: expect.stringMatching(/HTTP 400.*DltEntityId is mandatory/) },
    ]);
    expect(single.data).toMatchObject({ sent_count: 0, failed_count: 1, refused: [{ request_index: 0, status: 400, provider_code: "34001" }] });

    // A sender not linked to the account (40300).
    const badSender = await exotelAdapter.send(ctx(), sms([CUSTOMER], { from: "NOTLNK" }));
    expect(badSender.recipients[0]).toMatchObject({ ok: false, status: "REJECTED" });
    expect(badSender.data.refused).toEqual([expect.objectContaining({ provider_code: "40300" })]);
    expect(fake.sms).toHaveLength(0);
  });

  it("several numbers go through bulksend in requests of at most 100, one after another, each item complete", async () => {
    const to = inMobiles(250);
    const result = await exotelAdapter.send(ctx(), sms(to));
    expect(posts("/Sms/bulksend.json")).toBe(3);
    expect(posts("/Sms/send.json")).toBe(0);
    expect(result.sentCount).toBe(250);
    expect(new Set(result.providerMessageIds).size).toBe(250);
    expect(result.recipients.map((r) => r.to)).toEqual(to);
    expect(result.recipients.every((r) => r.ok && r.status === "queued" && r.segments === 1)).toBe(true);
    expect(result.data).toMatchObject({ sent_count: 250, failed_count: 0, requests: 3 });
    expect(fake.sms.map((m) => m.to)).toEqual(to);
    const sizes = [...new Set(fake.sms.map((m) => m.request))].map((r) => Object.keys(r.params as Json).filter((k) => k.endsWith("[To]")).length);
    expect(sizes).toEqual([100, 100, 50]);
    for (const m of fake.sms) {
      expect(m).toMatchObject({
        kind: "dynamic_bulk",
        from: SG.senderId,
        dlt_entity_id: SG.dltEntityId,
        dlt_template_id: SG.dltTemplateId,
        custom_field: OP,
        status_callback: hookUrl(),
      });
    }
  });

  it("per-item refusals inside a bulk request are per-recipient failures", async () => {
    const noDlt = ctx({ config: sgConfig({ dlt_entity_id: null, dlt_template_id: null }) });
    const result = await exotelAdapter.send(noDlt, sms([CUSTOMER, AU_MOBILE, "+919876543211"]));
    expect(result.sentCount).toBe(1);
    expect(result.recipients.map((r) => [r.to, r.ok])).toEqual([[CUSTOMER, false], [AU_MOBILE, true], ["+919876543211", false]]);
    expect(result.recipients[0]).toMatchObject({ status: "failed", error: expect.stringMatching(/\(34001\).*DltEntityId/) });
    expect(result.providerMessageIds).toEqual([result.recipients[1].message_id]);
  });

  it("a bulk request refused whole (400) fails its numbers and the next request still goes", async () => {
    const noDlt = ctx({ config: sgConfig({ dlt_entity_id: null, dlt_template_id: null }) });
    const to = [...inMobiles(100), ...auMobiles(50)];
    const result = await exotelAdapter.send(noDlt, sms(to));
    expect(posts("/Sms/bulksend.json")).toBe(2);
    expect(result.sentCount).toBe(50);
    expect(result.recipients.slice(0, 100).every((r) => !r.ok && r.status === "REJECTED")).toBe(true);
    expect(result.recipients.slice(100).every((r) => r.ok)).toBe(true);
    expect(result.data).toMatchObject({ sent_count: 50, failed_count: 100, refused: [expect.objectContaining({ request_index: 0 })] });
    expect(result.data).not.toHaveProperty("incomplete");
  });

  it("refuses MMS, empty or oversized bodies, a missing sender and invalid numbers before any request", async () => {
    const cases: Array<[AdapterContext, OutboundMessage]> = [
      [ctx(), sms([CUSTOMER], { channel: "mms", mediaUrls: ["https://example.com/a.png"] })],
      [ctx(), sms([CUSTOMER], { body: "   " })],
      [ctx(), sms([CUSTOMER], { body: "x".repeat(2001) })],
      [ctx({ config: sgConfig({ sender_id: null }) }), sms([CUSTOMER])],
      [ctx(), sms(["0412 345 678"])],
      [ctx(), sms([])],
    ];
    for (const [c, m] of cases) {
      const e = await caught(exotelAdapter.send(c, m), ApiError);
      expect(e.code).toBe("invalid_request");
    }
    expect(apiRequests()).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Errors: kind, maybeSent, failover
// ---------------------------------------------------------------------------

describe("errors", () => {
  async function firstRequestFails(c: AdapterContext = ctx(), message = sms([CUSTOMER])) {
    const e = await caught(exotelAdapter.send(c, message));
    expectNoSecrets(e);
    return e;
  }

  it("401 bad credentials: auth, not sent, failover allowed", async () => {
    const e = await firstRequestFails(ctx({ credentials: { api_key: SG.apiKey, api_token: "wrong-token" } }));
    expect(e).toMatchObject({ kind: "auth", maybeSent: false });
    expect(e.details).toMatchObject({ provider: "exotel", status: 401, provider_code: "34010", region: "sg" });
    expect(canFailOver(e)).toBe(true);
    expect(e.message).not.toContain("wrong-token");
    expect(posts("/Sms/send.json")).toBe(1);
  });

  it("401 from the wrong region names the region as the likely cause", async () => {
    // The Mumbai account's credentials, sent to the Singapore cluster.
    const e = await firstRequestFails(ctx({
      credentials: { api_key: IN.apiKey, api_token: IN.apiToken },
      config: inConfig({ region: "in", base_url: fake.urls.sg }),
    }));
    expect(e).toMatchObject({ kind: "auth", maybeSent: false });
    expect(e.details).toMatchObject({ status: 401, region: "in", hint: expect.stringMatching(/cluster.*region/) });
    // The same account on its own cluster works.
    const ok = await exotelAdapter.send(ctx({ credentials: { api_key: IN.apiKey, api_token: IN.apiToken }, config: inConfig() }), sms([CUSTOMER], {
      body: "Hello Asha, your Switchboard order 42 has shipped.",
    }));
    expect(ok.sentCount).toBe(1);
    expect(fake.sms[0]).toMatchObject({ region: "in", account_sid: IN.sid, dlt_entity_id: IN.dltEntityId });
  });

  it("403/40001 zero balance: insufficient_funds, not sent, failover allowed", async () => {
    fake.accounts().find((a) => a.sid === SG.sid)!.balance = 0;
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "insufficient_funds", maybeSent: false });
    expect(e.details).toMatchObject({ status: 403, provider_code: "40001" });
    expect(canFailOver(e)).toBe(true);
  });

  it("403/40002 inactive account: forbidden, not sent, failover allowed", async () => {
    fake.accounts().find((a) => a.sid === SG.sid)!.state = "inactive";
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "forbidden", maybeSent: false });
    expect(e.details).toMatchObject({ status: 403, provider_code: "40002" });
    expect(canFailOver(e)).toBe(true);
  });

  it("429/40402: rate_limited, not sent, failover allowed, no retry", async () => {
    fake.addFault({ mode: "http429", path: "/Sms/send" });
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
    expect(e.details).toMatchObject({ status: 429, provider_code: "40402" });
    expect(canFailOver(e)).toBe(true);
    expect(posts("/Sms/send.json")).toBe(1);
  });

  it("the real rate limit (200 POSTs a minute) is the same rate_limited", async () => {
    await control("config", { rate_limits: { post: { limit: 0, windowSeconds: 60 } } });
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
  });

  it("503/40405 throttle: unavailable and maybe sent (the shared rule for a 5xx), so never failed over", async () => {
    await control("config", { throttle: true });
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(e.details).toMatchObject({ status: 503, provider_code: "40405" });
    expect(canFailOver(e)).toBe(false);
  });

  it("500: transient and maybe sent, not failed over", async () => {
    fake.addFault({ mode: "http500", path: "/Sms/send" });
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "transient", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
    expect(posts("/Sms/send.json")).toBe(1);
  });

  it("a 5xx on a read is not 'maybe sent'", async () => {
    fake.addFault({ mode: "http500", path: "/IncomingPhoneNumbers" });
    const e = await caught(exotelAdapter.listNumbers!(ctx()));
    expect(e).toMatchObject({ kind: "transient", maybeSent: false });
  });

  it("timeout: maybe sent (the request may have been acted on), not failed over", async () => {
    fake.addFault({ mode: "timeout", path: "/Sms/send" });
    const e = await firstRequestFails(ctx({ options: { timeoutMs: 300 } }));
    expect(e).toMatchObject({ kind: "timeout", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
  });

  it("a late answer after Exotel recorded the SMS: timeout, maybe sent, and indeed recorded", async () => {
    fake.addFault({ mode: "latency", path: "/Sms/send", delay_ms: 5_000 });
    const e = await firstRequestFails(ctx({ options: { timeoutMs: 300 } }));
    expect(e).toMatchObject({ kind: "timeout", maybeSent: true });
    expect(fake.sms).toHaveLength(1);
  });

  it("connection reset after recording: unavailable, maybe sent, not retried", async () => {
    fake.addFault({ mode: "reset", path: "/Sms/send" });
    const e = await firstRequestFails();
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(canFailOver(e)).toBe(false);
    expect(fake.sms).toHaveLength(1);
    expect(posts("/Sms/send.json")).toBe(1);
  });

  it("closed port: not sent, failover allowed", async () => {
    const port = await closedPort();
    const e = await firstRequestFails(ctx({ config: sgConfig({ base_url: `http://127.0.0.1:${port}` }) }));
    expect(e).toMatchObject({ kind: "unavailable", maybeSent: false });
    expect(canFailOver(e)).toBe(true);
  });

  it("a later request's failure is reported in data once some numbers were accepted", async () => {
    fake.addFault({ mode: "http500", path: "/Sms/bulksend", after: 1 });
    const result = await exotelAdapter.send(ctx(), sms(inMobiles(250)));
    expect(posts("/Sms/bulksend.json")).toBe(2); // stops: never fans out into a failing provider
    expect(result.sentCount).toBe(100);
    expect(result.providerMessageIds).toHaveLength(100);
    expect(result.recipients.slice(100, 200).every((r) => r.status === "MAYBE_SENT" && /do not resend/.test(r.error!))).toBe(true);
    expect(result.recipients.slice(200).every((r) => r.status === "NOT_SENT")).toBe(true);
    expect(result.data).toMatchObject({
      sent_count: 100,
      failed_count: 150,
      requests: 2,
      maybe_sent_count: 100,
      incomplete: { request_index: 1, kind: "transient", maybe_sent: true },
    });
    expectNoSecrets(result);
  });

  it("a later rate limit leaves the rest not sent", async () => {
    fake.addFault({ mode: "http429", path: "/Sms/bulksend", after: 1 });
    const result = await exotelAdapter.send(ctx(), sms(inMobiles(150)));
    expect(result.sentCount).toBe(100);
    expect(result.recipients.slice(100).every((r) => r.status === "NOT_SENT")).toBe(true);
    expect(result.data).toMatchObject({ maybe_sent_count: 0, incomplete: { kind: "rate_limited", maybe_sent: false } });
  });

  it("an account-level refusal after only validation refusals is still thrown: nothing went out", async () => {
    fake.addFault({ mode: "http429", path: "/Sms/bulksend", after: 1 });
    const noDlt = ctx({ config: sgConfig({ dlt_entity_id: null, dlt_template_id: null }) });
    const e = await caught(exotelAdapter.send(noDlt, sms([...inMobiles(100), ...auMobiles(5)])));
    expect(e).toMatchObject({ kind: "rate_limited", maybeSent: false });
  });

  it("provider messages are scrubbed of the credentials", async () => {
    const stub = (async () =>
      new Response(JSON.stringify({ RestException: { Status: 400, Message: `Bad key ${SG.apiKey} / ${SG.apiToken}`, Code: 34001 } }), {
        status: 400,
        headers: { "content-type": "application/json" },
      })) as typeof fetch;
    const result = await exotelAdapter.send(ctx({ options: { fetch: stub } }), sms([CUSTOMER]));
    expect(result.recipients[0].error).toContain("[redacted]");
    expectNoSecrets(result);
    const e = await caught(exotelAdapter.call!(ctx({ options: { fetch: stub } }), {
      from: "+919876500001",
      to: CUSTOMER,
      callerId: SG.voiceExoPhone,
      operationId: OP,
    }));
    expect(e.kind).toBe("invalid");
    expectNoSecrets(e);
  });
});

// ---------------------------------------------------------------------------
// WhatsApp
// ---------------------------------------------------------------------------

describe("WhatsApp", () => {
  const openWindow = (from: string) => control("inbound-whatsapp", { from, to: SG.whatsappNumber, body: "hi" });

  it("sends text inside the 24 h window with the classic wrapper, custom_data and status_callback", async () => {
    await openWindow(CUSTOMER);
    const result = await exotelAdapter.send(ctx(), whatsapp([CUSTOMER]));
    expect(result.sentCount).toBe(1);
    expect(result.recipients).toEqual([{ to: CUSTOMER, ok: true, status: "accepted", message_id: result.providerMessageIds[0] }]);
    const [w] = fake.whatsapp;
    expect(w).toMatchObject({ from: SG.whatsappNumber, to: CUSTOMER, custom_data: OP, status_callback: hookUrl() });
    expect(w.content).toEqual({ recipient_type: "individual", type: "text", text: { preview_url: false, body: "Your order has shipped." } });
    expect(w.request.headers["content-type"]).toBe("application/json");
    expect(result.data).toMatchObject({ channel: "whatsapp", sent_count: 1 });
  });

  it("a template goes out without a window, its variables in order", async () => {
    const result = await exotelAdapter.send(ctx(), whatsapp([CUSTOMER], {
      body: undefined,
      template: { id: "order_update", language: "en_US", variables: { "2": "42", "1": "Asha" } },
    }));
    expect(result.sentCount).toBe(1);
    expect(fake.whatsapp[0].content).toEqual({
      type: "template",
      template: {
        name: "order_update",
        language: { policy: "deterministic", code: "en_US" },
        components: [{ type: "body", parameters: [{ type: "text", text: "Asha" }, { type: "text", text: "42" }] }],
      },
    });
    await exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { template: { id: "welcome", variables: { name: "Asha" } } }));
    expect((fake.whatsapp[1].content as Json).template).toEqual({
      name: "welcome",
      language: { policy: "deterministic", code: "en" },
      components: [{ type: "body", parameters: [{ type: "text", parameter_name: "name", text: "Asha" }] }],
    });
  });

  it("partial failure: a number outside the window fails, the others go (per-message codes)", async () => {
    const inWindow = "+919876500001";
    await openWindow(inWindow);
    const result = await exotelAdapter.send(ctx(), whatsapp([inWindow, CUSTOMER]));
    expect(result.sentCount).toBe(1);
    expect(result.recipients[0]).toMatchObject({ to: inWindow, ok: true });
    expect(result.recipients[1]).toMatchObject({ to: CUSTOMER, ok: false, status: "30007", error: expect.stringMatching(/24 hour window/) });
    expect(result.providerMessageIds).toEqual([result.recipients[0].message_id]);
    expect(result.data).toMatchObject({ sent_count: 1, failed_count: 1 });
  });

  it("window failure reported later as a dlr: accepted now, failed by the callback", async () => {
    await control("config", { whatsapp_window_failure: { mode: "dlr", code: 30007 } });
    const result = await exotelAdapter.send(ctx(), whatsapp([CUSTOMER]));
    expect(result.sentCount).toBe(1);
    await fake.advance({ sid: result.providerMessageIds[0] });
    const events = parse(receiver.hits[0]);
    expect(events).toEqual([expect.objectContaining({
      kind: "status",
      provider_message_id: result.providerMessageIds[0],
      status: "failed",
      error_code: "30007",
      channel: "whatsapp",
      recipient: CUSTOMER,
    })]);
  });

  it("a sender that is not the account's WhatsApp number fails every recipient", async () => {
    const result = await exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { template: { id: "t1" }, from: SG.smsExoPhone }));
    expect(result.sentCount).toBe(0);
    expect(result.recipients[0]).toMatchObject({ ok: false, status: "34009" });
  });

  it("sends one media file with the body as caption, judged https-only", async () => {
    await openWindow(CUSTOMER);
    await exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { mediaUrls: ["https://cdn.example.com/receipt.png"], body: "Receipt" }));
    expect(fake.whatsapp[0].content).toEqual({ type: "image", image: { link: "https://cdn.example.com/receipt.png", caption: "Receipt" } });
    const e = await caught(exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { mediaUrls: ["http://cdn.example.com/a.pdf"] })), ApiError);
    expect(e.details).toMatchObject({ field: "media_urls" });
    await caught(exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { mediaUrls: ["https://a.example/1.png", "https://a.example/2.png"] })), ApiError);
  });

  it("more than 100 numbers are split into requests of 100", async () => {
    const result = await exotelAdapter.send(ctx(), whatsapp(inMobiles(120), { template: { id: "t1" } }));
    expect(result.sentCount).toBe(120);
    expect(fake.requestCounts()[`POST /v2/accounts/${SG.sid}/messages`]).toBe(2);
  });

  it("zero balance is a 402 insufficient_funds; inactive is forbidden; both not sent", async () => {
    const acct = fake.accounts().find((a) => a.sid === SG.sid)!;
    acct.balance = 0;
    const e = await caught(exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { template: { id: "t1" } })));
    expect(e).toMatchObject({ kind: "insufficient_funds", maybeSent: false });
    expect(e.details).toMatchObject({ status: 402, provider_code: "40001" });
    acct.balance = 100;
    acct.state = "inactive";
    const f = await caught(exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { template: { id: "t1" } })));
    expect(f).toMatchObject({ kind: "forbidden", maybeSent: false });
  });

  it("needs a sender", async () => {
    const e = await caught(exotelAdapter.send(ctx({ config: sgConfig({ whatsapp_from: null }) }), whatsapp([CUSTOMER])), ApiError);
    expect(e.details).toMatchObject({ field: "from" });
  });
});

// ---------------------------------------------------------------------------
// Click-to-call
// ---------------------------------------------------------------------------

describe("click-to-call", () => {
  const AGENT = "+919876500001";

  it("connects two numbers: From, To, CallerId, TimeLimit, StatusCallback, CustomField; the Call.Sid is the id", async () => {
    const result = await exotelAdapter.call!(ctx(), {
      from: AGENT,
      to: CUSTOMER,
      callerId: SG.voiceExoPhone,
      timeLimitSeconds: 600,
      operationId: OP,
      statusCallbackUrl: hookUrl(),
    });
    expect(result.sentCount).toBe(1);
    expect(result.providerMessageIds).toEqual([fake.calls[0].sid]);
    expect(result.recipients).toEqual([{ to: CUSTOMER, ok: true, status: "in-progress", message_id: fake.calls[0].sid }]);
    expect(fake.calls[0]).toMatchObject({
      from: AGENT,
      to: CUSTOMER,
      caller_id: SG.voiceExoPhone,
      call_type: "trans",
      time_limit: 600,
      custom_field: OP,
      status_callback: hookUrl(),
    });
    expectNoSecrets(result);
  });

  it("falls back to the configured caller_id", async () => {
    await exotelAdapter.call!(ctx(), { from: AGENT, to: CUSTOMER, callerId: "", operationId: OP });
    expect(fake.calls[0].caller_id).toBe(SG.voiceExoPhone);
  });

  it("a caller id that is not an ExoPhone of the account is refused by Exotel: invalid, not placed", async () => {
    const e = await caught(exotelAdapter.call!(ctx(), { from: AGENT, to: CUSTOMER, callerId: "+919876500099", operationId: OP }));
    expect(e).toMatchObject({ kind: "invalid", maybeSent: false });
    expect(e.message).toMatch(/CallerId .* not an ExoPhone/);
    expect(canFailOver(e)).toBe(false);
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a malformed caller id, numbers or time limit before any request", async () => {
    for (const call of [
      { from: AGENT, to: CUSTOMER, callerId: "EXOTEL", operationId: OP },
      { from: AGENT, to: CUSTOMER, callerId: "", operationId: OP },
      { from: "98765", to: CUSTOMER, callerId: SG.voiceExoPhone, operationId: OP },
      { from: AGENT, to: CUSTOMER, callerId: SG.voiceExoPhone, timeLimitSeconds: 14_401, operationId: OP },
      { from: AGENT, to: CUSTOMER, callerId: SG.voiceExoPhone, timeLimitSeconds: 1.5, operationId: OP },
    ]) {
      const c = call.callerId === "" ? ctx({ config: sgConfig({ caller_id: null }) }) : ctx();
      const e = await caught(exotelAdapter.call!(c, call), ApiError);
      expect(e.code).toBe("invalid_request");
    }
    expect(apiRequests()).toBe(0);
  });

  it("account-level refusals and faults follow the same rules as sends", async () => {
    fake.accounts().find((a) => a.sid === SG.sid)!.balance = 0;
    const e = await caught(exotelAdapter.call!(ctx(), { from: AGENT, to: CUSTOMER, callerId: SG.voiceExoPhone, operationId: OP }));
    expect(e).toMatchObject({ kind: "insufficient_funds", maybeSent: false });
    fake.reset();
    fake.addFault({ mode: "reset", path: "/Calls/connect" });
    const f = await caught(exotelAdapter.call!(ctx(), { from: AGENT, to: CUSTOMER, callerId: SG.voiceExoPhone, operationId: OP }));
    expect(f).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(fake.calls).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------
// ExoPhones, balance, credentials test
// ---------------------------------------------------------------------------

describe("listNumbers", () => {
  it("lists the ExoPhones with their capabilities (WhatsApp: the configured number only)", async () => {
    const numbers = await exotelAdapter.listNumbers!(ctx({ config: sgConfig({ whatsapp_from: SG.smsExoPhone }) }));
    expect(numbers).toEqual([
      {
        phone_number: SG.smsExoPhone,
        friendly_name: "Switchboard SMS",
        capabilities: { sms: true, mms: false, voice: true, whatsapp: true },
        provider_number_id: expect.stringMatching(/^PN/),
      },
      {
        phone_number: SG.voiceExoPhone,
        friendly_name: "Switchboard voice",
        capabilities: { sms: false, mms: false, voice: true, whatsapp: false },
        provider_number_id: expect.stringMatching(/^PN/),
      },
    ]);
  });

  const exophones = (n: number): ExotelExoPhone[] =>
    Array.from({ length: n }, (_, i) => ({
      sid: `PN${String(i).padStart(30, "0")}`,
      phone_number: i % 2 ? `+9180${47_000_000 + i}` : `080${47_000_000 + i}`, // Exotel may write national form
      friendly_name: `line ${i}`,
      capabilities: { voice: true, sms: i % 3 === 0 },
      sender_ids: [],
      country: "IN",
      region: "KA",
      voice_url: null,
      sms_url: null,
    }));

  async function withAccount(n: number, run: (f: ExotelFake, c: AdapterContext) => Promise<void>) {
    const big = await startExotelFake({
      port: 0,
      inPort: 0,
      accounts: [{ sid: "bignumbers", apiKey: "big-key", apiToken: "big-token", region: "sg", exophones: exophones(n) }],
    });
    try {
      await run(big, { credentials: { api_key: "big-key", api_token: "big-token" }, config: { account_sid: "bignumbers", base_url: big.urls.sg }, network: local });
    } finally {
      await big.close();
    }
  }

  it("pages through the list (100 a page)", async () => {
    await withAccount(250, async (big, c) => {
      const numbers = await exotelAdapter.listNumbers!(c);
      expect(numbers).toHaveLength(250);
      expect(new Set(numbers.map((n) => n.phone_number)).size).toBe(250);
      expect(numbers.every((n) => /^\+918047\d{6}$/.test(n.phone_number))).toBe(true);
      expect(numbers[0]).toMatchObject({ phone_number: "+918047000000", capabilities: { sms: true, voice: true } });
      expect(big.requestCounts()["GET /v2_beta/Accounts/bignumbers/IncomingPhoneNumbers"]).toBe(3);
    });
  });

  it("stops after 20 pages and refuses a list it could not read to the end", async () => {
    await withAccount(EXOTEL_MAX_NUMBER_PAGES * 100 + 1, async (big, c) => {
      const e = await caught(exotelAdapter.listNumbers!(c));
      expect(e).toMatchObject({ kind: "too_large", maybeSent: false });
      expect(big.requestCounts()["GET /v2_beta/Accounts/bignumbers/IncomingPhoneNumbers"]).toBe(EXOTEL_MAX_NUMBER_PAGES);
    });
  });
});

describe("balance", () => {
  it("404 (the default: the endpoint is unconfirmed) is a clear not_found", async () => {
    const e = await caught(exotelAdapter.balance!(ctx()));
    expect(e).toMatchObject({ kind: "not_found", maybeSent: false });
    expect(e.message).toMatch(/Exotel has no balance endpoint for this account/);
    expect(e.details).toMatchObject({ provider: "exotel", status: 404 });
    expect(canFailOver(e)).toBe(false);
    expectNoSecrets(e);
  });

  it("with the endpoint switched on, reads Balance.json", async () => {
    await control("config", { balance_endpoint: true });
    const result = await exotelAdapter.balance!(ctx());
    expect(result.data).toEqual({
      account_sid: SG.sid,
      balance: 500,
      currency: "INR",
      pricing_plan: "Pay As You Go",
      date_updated: expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/),
    });
    expectNoSecrets(result);
  });

  it("bad credentials are auth, not not_found", async () => {
    const e = await caught(exotelAdapter.balance!(ctx({ credentials: { api_key: "x", api_token: "y" } })));
    expect(e.kind).toBe("auth");
  });
});

describe("testCredentials", () => {
  it("accepts good credentials with a read-only call", async () => {
    const result = await exotelAdapter.testCredentials(ctx());
    expect(result).toMatchObject({ ok: true, details: { region: "sg" } });
    expect(fake.requestCounts()[`GET /v2_beta/Accounts/${SG.sid}/IncomingPhoneNumbers`]).toBe(1);
    expect(fake.sms.length + fake.calls.length + fake.whatsapp.length).toBe(0);
  });

  it("bad credentials and the wrong region are ok:false naming the region", async () => {
    const bad = await exotelAdapter.testCredentials(ctx({ credentials: { api_key: SG.apiKey, api_token: "nope" } }));
    expect(bad).toMatchObject({ ok: false, details: { kind: "auth", status: 401 } });
    const wrongRegion = await exotelAdapter.testCredentials(ctx({
      credentials: { api_key: IN.apiKey, api_token: IN.apiToken },
      config: inConfig({ base_url: fake.urls.sg }),
    }));
    expect(wrongRegion.ok).toBe(false);
    expect(wrongRegion.message).toMatch(/region "in"/);
    expectNoSecrets([bad, wrongRegion]);
    const missing = await exotelAdapter.testCredentials(ctx({ credentials: {} }));
    expect(missing).toMatchObject({ ok: false, details: { kind: "auth" } });
  });

  it("a rate-limited test is ok:false; a base_url the policy refuses is thrown", async () => {
    fake.addFault({ mode: "http429", path: "/IncomingPhoneNumbers" });
    const limited = await exotelAdapter.testCredentials(ctx());
    expect(limited).toMatchObject({ ok: false, details: { kind: "rate_limited", provider_code: "40403" } });
    await caught(exotelAdapter.testCredentials(ctx({ network: hosted })), ApiError);
  });
});

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

describe("parseWebhook", () => {
  it("has no verifyWebhook: Exotel signs nothing, the URL token authenticates", () => {
    expect(exotelAdapter.verifyWebhook).toBeUndefined();
  });

  it("SMS status callbacks (form), duplicates share a dedupe_key", async () => {
    const result = await exotelAdapter.send(ctx(), sms([CUSTOMER]));
    const sid = result.providerMessageIds[0];
    await fake.advance({ sid, status: "sent", duplicate: 1 });
    expect(receiver.hits).toHaveLength(2);
    expect(receiver.hits[0].url).toBe(hookUrl());
    const events = receiver.hits.flatMap(parse) as DeliveryEvent[];
    expect(events[0]).toEqual({
      kind: "status",
      provider_message_id: sid,
      status: "delivered",
      provider_status: "sent/20005",
      error_code: null,
      recipient: CUSTOMER,
      occurred_at: expect.stringMatching(/Z$/),
      dedupe_key: `${sid}:sent`,
      channel: "sms",
    });
    expect(events[1].dedupe_key).toBe(events[0].dedupe_key);
    // DateSent is IST wall-clock time: read back, it is within a minute of now.
    expect(Math.abs(Date.parse(events[0].occurred_at!) - Date.now())).toBeLessThan(60_000);
  });

  it("maps the SMS outcomes: DND and DLT never left (failed), handset failures undelivered, operator-only delivery sent", async () => {
    const cases: Array<[Json, string, string]> = [
      [{ status: "failed_dnd" }, "failed", "failed_dnd/23005"],
      [{ code: 23035 }, "undelivered", "failed/23035"],
      [{ code: 23050 }, "undelivered", "failed/23050"],
      [{ code: 23010 }, "failed", "failed/23010"],
      [{ code: 20006 }, "sent", "sent/20006"],
    ];
    const to = inMobiles(cases.length);
    const result = await exotelAdapter.send(ctx(), sms(to));
    for (const [i, [advance]] of cases.entries()) await fake.advance({ sid: result.providerMessageIds[i], ...advance });
    const events = receiver.hits.flatMap(parse) as DeliveryEvent[];
    expect(events.map((e) => [e.status, e.provider_status])).toEqual(cases.map(([, status, provider]) => [status, provider]));
    expect(events[0].dedupe_key).toBe(`${result.providerMessageIds[0]}:failed_dnd`);
    expect(events[1].error_code).toBe("23035");
    expect(events.map((e) => e.recipient)).toEqual(to);
  });

  it("a callback for an SMS we never sent still parses (the database ignores unknown ids)", async () => {
    const { body } = await control("unknown-callback", { kind: "sms", url: hookUrl(), sid: "f".repeat(32) });
    expect(body.sid).toBe("f".repeat(32));
    const [event] = parse(receiver.hits[0]) as DeliveryEvent[];
    expect(event).toMatchObject({ provider_message_id: "f".repeat(32), status: "delivered", channel: "sms" });
  });

  it("call status callbacks: classic form, multipart and JSON; channel voice", async () => {
    const placed = await exotelAdapter.call!(ctx(), {
      from: "+919876500001",
      to: CUSTOMER,
      callerId: SG.voiceExoPhone,
      operationId: OP,
      statusCallbackUrl: hookUrl(),
    });
    const sid = placed.providerMessageIds[0];
    await fake.advance({ sid, outcome: "no-answer", duplicate: 1 });
    const events = receiver.hits.flatMap(parse) as DeliveryEvent[];
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      kind: "status",
      provider_message_id: sid,
      status: "undelivered",
      provider_status: "no-answer",
      channel: "voice",
      dedupe_key: `${sid}:no-answer`,
    });
    expect(events[1].dedupe_key).toBe(events[0].dedupe_key);

    const boundary = "----x";
    const multipart = [["CallSid", "c".repeat(32)], ["Status", "completed"], ["EventType", "terminal"], ["Legs[0][Status]", "completed"], ["DateUpdated", "2026-11-28 15:30:00"]]
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join("") + `--${boundary}--\r\n`;
    const [m] = parse({ method: "POST", url: hookUrl(), headers: new Headers({ "content-type": `multipart/form-data; boundary=${boundary}` }), rawBody: multipart }) as DeliveryEvent[];
    expect(m).toMatchObject({ provider_message_id: "c".repeat(32), status: "delivered", occurred_at: "2026-11-28T10:00:00.000Z", channel: "voice" });
    const [j] = parse(jsonHook({ CallSid: "d".repeat(32), Status: "busy", EventType: "terminal" })) as DeliveryEvent[];
    expect(j).toMatchObject({ status: "undelivered", channel: "voice" });
    const [answered] = parse(form({ CallSid: "e".repeat(32), Status: "in-progress" })) as DeliveryEvent[];
    expect(answered).toMatchObject({ status: "sent", dedupe_key: `${"e".repeat(32)}:in-progress` });
  });

  it("WhatsApp dlr callbacks 30001 → 30002 → 30003 (sent, delivered, read), duplicates share keys", async () => {
    const result = await exotelAdapter.send(ctx(), whatsapp([CUSTOMER], { template: { id: "t1" } }));
    const sid = result.providerMessageIds[0];
    await fake.advance({ sid, status: "read", duplicate: 1 });
    const events = receiver.hits.flatMap(parse) as DeliveryEvent[];
    expect(events.map((e) => [e.status, e.dedupe_key])).toEqual([
      ["sent", `${sid}:30001`],
      ["sent", `${sid}:30001`],
      ["delivered", `${sid}:30002`],
      ["delivered", `${sid}:30002`],
      ["read", `${sid}:30003`],
      ["read", `${sid}:30003`],
    ]);
    expect(events[0]).toMatchObject({ channel: "whatsapp", recipient: CUSTOMER, provider_status: "30001", error_code: null });
    expect(events[0].occurred_at).toMatch(/Z$/);
  });

  it("WhatsApp icm: an inbound message to the account's number", async () => {
    await control("inbound-whatsapp", { from: CUSTOMER, to: SG.whatsappNumber, body: "Where is my order?", url: hookUrl(), duplicate: 1 });
    const events = receiver.hits.flatMap(parse) as InboundEvent[];
    expect(events).toHaveLength(2);
    expect(events[0]).toEqual({
      kind: "inbound",
      provider_message_id: expect.any(String),
      channel: "whatsapp",
      from: CUSTOMER,
      to: SG.whatsappNumber,
      body: "Where is my order?",
      media_urls: [],
      occurred_at: expect.stringMatching(/Z$/),
      dedupe_key: `${events[0].provider_message_id}:icm`,
    });
    expect(events[1].dedupe_key).toBe(events[0].dedupe_key);
    const [image] = parse(jsonHook({
      whatsapp: { messages: [{ callback_type: "icm", sid: "abc", from: "919876543210", to: SG.whatsappNumber, content: { type: "image", image: { link: "https://media.example/x.jpg", caption: "photo" } } }] },
    })) as InboundEvent[];
    expect(image).toMatchObject({ body: "photo", media_urls: ["https://media.example/x.jpg"], from: CUSTOMER });
  });

  it("an unknown WhatsApp sid still parses; unknown dlr codes are not recorded", async () => {
    await control("unknown-callback", { kind: "whatsapp", url: hookUrl(), sid: "zz1" });
    expect(parse(receiver.hits[0])).toEqual([expect.objectContaining({ provider_message_id: "zz1", status: "delivered" })]);
    const events: WebhookEvent[] = parse(jsonHook({ whatsapp: { messages: [{ callback_type: "dlr", sid: "zz2", exo_status_code: 29999 }] } }));
    expect(events).toEqual([]);
  });

  it("malformed callbacks are invalid_request", () => {
    const bad: WebhookRequest[] = [
      form({}),
      form({ Status: "sent" }),
      form({ SmsSid: "abc" }),
      form({ SmsSid: "abc", Status: "exploded" }),
      form({ CallSid: "abc", Status: "" }),
      jsonHook({ hello: "world" }),
      jsonHook({ whatsapp: { messages: [] } }),
      jsonHook({ whatsapp: { messages: [{ callback_type: "dlr" }] } }),
      jsonHook({ whatsapp: { messages: [{ callback_type: "dlr", sid: "a" }] } }),
      jsonHook({ whatsapp: { messages: [{ callback_type: "icm", sid: "a", content: { type: "text", text: { body: "x" } } }] } }),
      { method: "POST", url: hookUrl(), headers: new Headers({ "content-type": "application/json" }), rawBody: "{not json" },
      { method: "POST", url: hookUrl(), headers: new Headers({ "content-type": "multipart/form-data" }), rawBody: "x" },
    ];
    for (const request of bad) {
      let error: unknown;
      try {
        parse(request);
      } catch (e) {
        error = e;
      }
      expect(error, request.rawBody).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe("invalid_request");
    }
  });
});

describe("mapDeliveryStatus", () => {
  it("maps every provider word and code", () => {
    const map = exotelAdapter.mapDeliveryStatus!;
    const table: Array<[string, string | null]> = [
      ["queued", "queued"],
      ["sending", "queued"],
      ["submitted", "queued"],
      ["sent", "delivered"],
      ["sent/20005", "delivered"],
      ["sent/20006", "sent"],
      ["failed_dnd", "failed"],
      ["failed-dnd", "failed"],
      ["failed", "failed"],
      ["failed/23082", "failed"],
      ["failed/24010", "failed"],
      ["failed/23040", "undelivered"],
      ["in-progress", "sent"],
      ["completed", "delivered"],
      ["busy", "undelivered"],
      ["no-answer", "undelivered"],
      ["30001", "sent"],
      ["30002", "delivered"],
      ["30003", "read"],
      ["30013", "failed"],
      ["12345", null],
      ["whatever", null],
    ];
    for (const [word, status] of table) expect(map(word), word).toBe(status);
  });
});

describe("no credentials anywhere", () => {
  it("results and errors of every path carry neither key nor token", async () => {
    const outputs: unknown[] = [];
    const record = async (p: Promise<unknown>) => {
      try {
        outputs.push(await p);
      } catch (e) {
        outputs.push(e);
      }
    };
    await record(exotelAdapter.send(ctx(), sms(inMobiles(3))));
    await record(exotelAdapter.send(ctx({ credentials: { api_key: SG.apiKey, api_token: "bad" } }), sms([CUSTOMER])));
    await record(exotelAdapter.send(ctx(), whatsapp([CUSTOMER])));
    await record(exotelAdapter.call!(ctx(), { from: "+919876500001", to: CUSTOMER, callerId: SG.voiceExoPhone, operationId: OP }));
    await record(exotelAdapter.balance!(ctx()));
    await record(exotelAdapter.listNumbers!(ctx()));
    await record(exotelAdapter.testCredentials(ctx()));
    fake.addFault({ mode: "reset", path: "/Sms/send" });
    await record(exotelAdapter.send(ctx(), sms([CUSTOMER])));
    expect(outputs).toHaveLength(8);
    for (const output of outputs) expectNoSecrets(output);
    const sent = outputs[0] as SendResult;
    expect(sent.sentCount).toBe(3);
  });
});
