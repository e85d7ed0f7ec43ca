/**
 * ClickSend: the adapter against the fake (every success and error path of the
 * providers.md §6 checklist, fault injection proving sends are never retried), the
 * fake's own wire behaviour, webhook pushes and parsing, SMS segment counting, phone
 * normalisation, the private-network guard and the clicksend_* tool schemas.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { redirectToCanary } from "../support/redirect-canary.ts";
import { z } from "zod";
import { type ClickSendFake, startClickSendFake } from "../../packages/devstack/src/fakes/clicksend.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import type { AdapterContext, OutboundMessage } from "../../supabase/functions/_shared/providers/adapter.ts";
import {
  type ClickSendConfig,
  type ClickSendCredentials,
  clicksendAdapter,
  createClickSendClient,
  parseClickSendWebhook,
  type SmsMessage,
} from "../../supabase/functions/_shared/providers/clicksend.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import { normalizePhoneNumber } from "../../supabase/functions/_shared/providers/phone.ts";
import { countSmsSegments } from "../../supabase/functions/_shared/providers/sms-segments.ts";
import { canFailOver } from "../../supabase/functions/_shared/providers/transport.ts";
import { ProviderError, type SendResult } from "../../supabase/functions/_shared/providers/types.ts";
import {
  clicksendGetBalance,
  clicksendSendMms,
  clicksendSendSms,
  clicksendTools,
  historySchema,
  sendMmsSchema,
  sendSmsSchema,
} from "../../supabase/functions/_shared/tools/clicksend.ts";
import type { ToolContext } from "../../supabase/functions/_shared/tools/types.ts";

const DEMO = { username: "demo", api_key: "demo-key" };
const TEST_KEY = "D83DED51-9E35-4D42-9BB9-0E34B7CA85AE";
const UUID_UPPER = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

let fake: ClickSendFake;
let config: ClickSendConfig;

/** The local stack's policy: the fake is on loopback, at a custom base_url. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
/** A hosted deployment's policy. */
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };

/** A client for a connection, built the only way there is: with a network policy. */
const cs = (credentials: ClickSendCredentials, cfg: ClickSendConfig, network = local) =>
  createClickSendClient({ credentials, config: cfg, network });

/** n distinct valid Australian mobile numbers. */
const auMobiles = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => `+614${10_000_000 + offset + i}`);

async function caught(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

/** Raw call to the fake, for wire-level assertions the adapter hides. */
async function raw(method: string, path: string, body?: unknown, auth: { username: string; api_key: string } | null = DEMO) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.api_key}`).toString("base64")}`;
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const json = (r: { text: string }) => JSON.parse(r.text);
const sendCount = () => fake.requestCounts()["POST /v3/sms/send"] ?? 0;

beforeAll(async () => {
  fake = await startClickSendFake({ port: 0, receiptDelayMs: 10 });
  config = { base_url: fake.url };
});
afterAll(() => fake.close());
beforeEach(() => fake.reset({ rules: true }));

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

describe("sendSms against the fake", () => {
  it("sends one SMS and reports ids, parts and price per recipient", async () => {
    const result = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "Hello from Switchboard", custom_string: "op-1" }]);
    expect(result.sentCount).toBe(1);
    expect(result.providerMessageIds).toHaveLength(1);
    expect(result.providerMessageIds[0]).toMatch(UUID_UPPER);
    expect(result.recipients[0]).toMatchObject({ to: "+61412345678", ok: true, status: "SUCCESS", segments: 1, price: "0.0050" });
    expect(result.data).toMatchObject({ total_price: 0.005, queued_count: 1, blocked_count: 0, currency: "AUD", requests: 1 });
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0]).toMatchObject({ to: "+61412345678", body: "Hello from Switchboard", custom_string: "op-1" });
    expect(fake.received[0].message_id).toBe(result.providerMessageIds[0]);
  });

  it("returns the provider's wire types: upper-case id, string message_price, numeric total_price", async () => {
    const r = await raw("POST", "/sms/send", { messages: [{ to: "+61412345678", body: "x" }] });
    const body = json(r);
    expect(r.status).toBe(200);
    expect(body).toMatchObject({ http_code: 200, response_code: "SUCCESS" });
    expect(typeof body.data.total_price).toBe("number");
    expect(typeof body.data.messages[0].message_price).toBe("string");
    expect(body.data.messages[0].message_id).toMatch(UUID_UPPER);
  });

  it("uses the connection's default sender id and passes a schedule through", async () => {
    const schedule = Math.floor(Date.now() / 1000) + 3600;
    await cs(DEMO, { ...config, sender_id: "Acme" }).sendSms([{ to: "+61412345678", body: "Later", schedule }]);
    expect(fake.received[0]).toMatchObject({ from: "Acme", schedule, status: "Scheduled" });
  });

  it("reports a mixed batch per recipient inside HTTP 200", async () => {
    const messages: SmsMessage[] = [
      { to: "+61412345678", body: "ok" },
      { to: "0412345678", body: "not E.164" },
      { to: "+8615555555555", body: "China is not enabled for demo" },
      { to: "+61412345679", body: "bad sender", from: "Not A Valid Sender" },
      { to: "+61412345680", body: "   " },
      { to: "+61412345681", body: "bad schedule", schedule: -5 },
      { to: "+61412345682", body: "fine too" },
    ];
    const result = await cs(DEMO, config).sendSms(messages);
    expect(result.recipients.map((r) => r.status)).toEqual([
      "SUCCESS",
      "INVALID_RECIPIENT",
      "COUNTRY_NOT_ENABLED",
      "INVALID_SENDER_ID",
      "EMPTY_MESSAGE",
      "INVALID_SCHEDULE",
      "SUCCESS",
    ]);
    expect(result.sentCount).toBe(2);
    expect(result.providerMessageIds).toHaveLength(2);
    expect(result.data).toMatchObject({ blocked_count: 1, queued_count: 2, failed_count: 5 });
    expect(result.recipients[1].error).toMatch(/not a valid mobile number/);
    expect(result.recipients[2]).toMatchObject({ segments: 0, price: "0.0000" });
    expect(fake.received.map((m) => m.to)).toEqual(["+61412345678", "+61412345682"]);
  });

  it("returns the minimal object for INVALID_RECIPIENT (wire level)", async () => {
    const body = json(await raw("POST", "/sms/send", { messages: [{ to: "12345", body: "x", custom_string: "c" }] }));
    expect(Object.keys(body.data.messages[0]).sort()).toEqual(
      ["body", "custom_string", "from", "is_shared_system_number", "message_id", "schedule", "status", "to"].sort(),
    );
    expect(body.data.messages[0]).toMatchObject({ status: "INVALID_RECIPIENT", schedule: "", custom_string: "c" });
    expect(body.response_code).toBe("SUCCESS");
  });

  it("INSUFFICIENT_CREDIT for an account without balance; test numbers are free", async () => {
    const nocredit = { username: "nocredit", api_key: TEST_KEY };
    const result = await cs(nocredit, config).sendSms([
      { to: "+61412345678", body: "costs money" },
      { to: "+61411111111", body: "documented test number" },
    ]);
    expect(result.recipients.map((r) => r.status)).toEqual(["INSUFFICIENT_CREDIT", "SUCCESS"]);
    expect(result.recipients[0].error).toMatch(/insufficient credit/);
  });

  it("runs out of credit part-way through a batch", async () => {
    const small = await startClickSendFake({ accounts: [{ ...DEMO, balance: 0.012 }] });
    try {
      const result = await cs(DEMO, { base_url: small.url }).sendSms(auMobiles(4).map((to) => ({ to, body: "x" })));
      expect(result.recipients.map((r) => r.status)).toEqual(["SUCCESS", "SUCCESS", "INSUFFICIENT_CREDIT", "INSUFFICIENT_CREDIT"]);
    } finally {
      await small.close();
    }
  });

  it("THROTTLED: the same body to the same recipient within the window", async () => {
    const first = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "Same text" }]);
    const again = await cs(DEMO, config).sendSms([
      { to: "+61412345678", body: "Same text" },
      { to: "+61412345678", body: "Different text" },
    ]);
    expect(first.recipients[0].status).toBe("SUCCESS");
    expect(again.recipients.map((r) => r.status)).toEqual(["THROTTLED", "SUCCESS"]);
  });

  it("splits 2500 messages into 3 requests of at most 1000 and merges the results in order", async () => {
    const numbers = auMobiles(2500);
    const result = await cs(DEMO, config).sendSms(numbers.map((to) => ({ to, body: "bulk" })));
    expect(sendCount()).toBe(3);
    expect(result.sentCount).toBe(2500);
    expect(result.recipients.map((r) => r.to)).toEqual(numbers);
    expect(new Set(result.providerMessageIds).size).toBe(2500);
    expect(result.data).toMatchObject({ requests: 3, queued_count: 2500, total_price: 12.5 });
  });

  it("the fake refuses more than 1000 messages in one request", async () => {
    const messages = auMobiles(1001).map((to) => ({ to, body: "x" }));
    const r = await raw("POST", "/sms/send", { messages });
    expect(r.status).toBe(400);
    expect(json(r)).toMatchObject({ response_code: "TOO_MANY_RECIPIENTS", data: null });
    expect(fake.received).toHaveLength(0);
  });

  it("bulk partial failure: keeps what was sent, marks the failed request MAYBE_SENT and the rest NOT_SENT", async () => {
    fake.addFault({ mode: "http500", path: "/sms/send", after: 1, count: 1 });
    const numbers = auMobiles(2500);
    const result = await cs(DEMO, config).sendSms(numbers.map((to) => ({ to, body: "bulk" })), { concurrency: 1 });
    expect(sendCount()).toBe(2); // the third request was never started
    expect(result.sentCount).toBe(1000);
    expect(fake.received).toHaveLength(1000);
    expect(result.recipients).toHaveLength(2500);
    expect(result.recipients.slice(0, 1000).every((r) => r.ok)).toBe(true);
    expect(new Set(result.recipients.slice(1000, 2000).map((r) => r.status))).toEqual(new Set(["MAYBE_SENT"]));
    expect(new Set(result.recipients.slice(2000).map((r) => r.status))).toEqual(new Set(["NOT_SENT"]));
    expect(result.data).toMatchObject({
      requests: 2,
      maybe_sent_count: 1000,
      incomplete: { request_index: 1, kind: "transient", maybe_sent: true }, // HTTP 500: the shared rule's kind
    });
  });

  it("bulk partial failure with concurrent requests still accounts for every recipient exactly once", async () => {
    fake.addFault({ mode: "drop", path: "/sms/send", after: 1, count: 1 });
    const numbers = auMobiles(5000);
    const result = await cs(DEMO, config).sendSms(numbers.map((to) => ({ to, body: "bulk" })));
    expect(sendCount()).toBeLessThanOrEqual(4); // in-flight requests finish, no new ones start
    expect(result.recipients.map((r) => r.to)).toEqual(numbers);
    const by = (status: string) => result.recipients.filter((r) => r.status === status).length;
    expect(by("SUCCESS")).toBe(result.sentCount);
    expect(by("MAYBE_SENT")).toBe(1000);
    expect(by("SUCCESS") + by("MAYBE_SENT") + by("NOT_SENT")).toBe(5000);
    expect(fake.received).toHaveLength(result.sentCount);
    expect(result.data.maybe_sent_count).toBe(1000);
  });

  it("asks for Connection: close on every request (Deno re-sends POSTs on reused pooled connections)", async () => {
    const seen: Array<string | null> = [];
    const spy: typeof fetch = (input, init) => {
      seen.push(new Headers(init?.headers).get("connection"));
      return fetch(input, init);
    };
    await cs(DEMO, config).getBalance({ fetch: spy });
    await cs(DEMO, config).sendSms(auMobiles(1500).map((to) => ({ to, body: "x" })), { fetch: spy });
    await cs(DEMO, config).getSmsHistory({}, { fetch: spy });
    expect(seen).toEqual(["close", "close", "close", "close"]);
  });

  it("a failure before anything was sent is thrown, not reported as a partial result", async () => {
    fake.addFault({ mode: "http500", path: "/sms/send" });
    const error = await caught(cs(DEMO, config).sendSms(auMobiles(1500).map((to) => ({ to, body: "x" })), { concurrency: 1 }));
    expect(error.kind).toBe("transient"); // HTTP 500 (503 would be "unavailable")
    expect(error.maybeSent).toBe(true); // a 5xx on a send may still have been acted on
    expect(sendCount()).toBe(1);
  });
});

describe("message_parts and segment counting", () => {
  const bodies = [
    "a".repeat(160),
    "a".repeat(161),
    "a".repeat(306),
    "a".repeat(307),
    "€".repeat(80),
    "€".repeat(81),
    "line1\nline2",
    "a".repeat(159) + "\n",
    "ж".repeat(70),
    "ж".repeat(71),
    "Hi 😀",
    "😀".repeat(35),
    "😀".repeat(36),
  ];

  it("the adapter's counter agrees with the fake's message_parts", async () => {
    const result = await cs(DEMO, config).sendSms(bodies.map((body, i) => ({ to: auMobiles(1, i)[0], body })));
    const parts = result.recipients.map((r) => r.segments);
    expect(parts).toEqual([1, 2, 2, 3, 1, 2, 1, 2, 1, 2, 1, 1, 2]);
    expect(parts).toEqual(bodies.map((b) => countSmsSegments(b).segments));
  });

  it("truncates after 6 parts (the provider's message_parts wins over our count)", async () => {
    const body = "a".repeat(153 * 6 + 10);
    const result = await cs(DEMO, config).sendSms([{ to: "+61412345678", body }]);
    expect(countSmsSegments(body).segments).toBe(7);
    expect(result.recipients[0].segments).toBe(6);
    expect(fake.received[0].body).toHaveLength(153 * 6);
  });

  it("counts GSM, extension characters, UCS-2 and line breaks", () => {
    expect(countSmsSegments("")).toMatchObject({ segments: 0, units: 0 });
    expect(countSmsSegments("a".repeat(160))).toMatchObject({ encoding: "GSM-7", segments: 1, perSegment: 160 });
    expect(countSmsSegments("a".repeat(161))).toMatchObject({ segments: 2, perSegment: 153 });
    expect(countSmsSegments("a".repeat(459)).segments).toBe(3);
    expect(countSmsSegments("a".repeat(460)).segments).toBe(4);
    expect(countSmsSegments("{}").units).toBe(4);
    expect(countSmsSegments("a\nb")).toMatchObject({ units: 4, encoding: "GSM-7" });
    expect(countSmsSegments("a\r\nb").units).toBe(4);
    expect(countSmsSegments("ж".repeat(70))).toMatchObject({ encoding: "UCS-2", segments: 1 });
    expect(countSmsSegments("ж".repeat(71)).segments).toBe(2);
    expect(countSmsSegments("ж".repeat(134)).segments).toBe(2);
    expect(countSmsSegments("ж".repeat(135)).segments).toBe(3);
    expect(countSmsSegments("a".repeat(159) + "ж")).toMatchObject({ encoding: "UCS-2", segments: 3 });
    expect(countSmsSegments("😀").units).toBe(2);
  });

  it("property: never throws, empty iff 0 segments, appending never lowers the count", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), fc.string({ unit: "binary", minLength: 1, maxLength: 5 }), (s, t) => {
        const a = countSmsSegments(s);
        const b = countSmsSegments(s + t);
        expect(a.segments === 0).toBe(s.length === 0);
        expect(b.segments).toBeGreaterThanOrEqual(a.segments);
        expect(b.units).toBeGreaterThan(a.units);
        expect(a.segments).toBe(a.units === 0 ? 0 : Math.ceil(a.units / a.perSegment));
      }),
    );
  });

  it("property: agrees with the fake on random bodies (one batch)", async () => {
    const chars = fc.constantFrom(..."aZ09 .,!?\n€{}[]~^|éüñß@£$¥жΩ😀中");
    const sample = fc.sample(fc.string({ unit: chars, minLength: 1, maxLength: 150 }), { numRuns: 60, seed: 42 });
    const bodies = sample.filter((b) => b.trim());
    const result = await cs(DEMO, config).sendSms(bodies.map((body, i) => ({ to: auMobiles(1, i)[0], body })));
    expect(result.recipients.map((r) => r.segments)).toEqual(bodies.map((b) => countSmsSegments(b).segments));
  });
});

// ---------------------------------------------------------------------------
// Errors, faults, rate limits
// ---------------------------------------------------------------------------

describe("error mapping", () => {
  it("401 for a wrong key and for the notactive account, with the exact body and no WWW-Authenticate", async () => {
    for (const creds of [{ username: "demo", api_key: "wrong" }, { username: "notactive", api_key: TEST_KEY }, null]) {
      const r = await raw("GET", "/account", undefined, creds);
      expect(r.status).toBe(401);
      expect(r.text).toBe('{"http_code":401,"response_code":"UNAUTHORIZED","response_msg":"Authorization failed.","data":null}');
      expect(r.headers.get("www-authenticate")).toBeNull();
    }
    const error = await caught(cs({ username: "demo", api_key: "wrong" }, config).getBalance());
    expect(error).toMatchObject({ kind: "auth", maybeSent: false, details: { status: 401, provider_code: "UNAUTHORIZED" } });
    expect(error.message).not.toContain("wrong");
  });

  it("403 for a suspended account", async () => {
    const error = await caught(cs({ username: "banned", api_key: TEST_KEY }, config).sendSms([{ to: "+61412345678", body: "x" }]));
    expect(error).toMatchObject({ kind: "forbidden", maybeSent: false, details: { status: 403, provider_code: "FORBIDDEN" } });
    expect(error.message).toMatch(/suspended/);
  });

  it("404 'Invalid endpoint' for an unknown path or method", async () => {
    const unknown = await raw("GET", "/nope");
    const wrongMethod = await raw("GET", "/sms/send");
    for (const r of [unknown, wrongMethod]) {
      expect(r.status).toBe(404);
      expect(json(r)).toMatchObject({ http_code: 404, response_msg: "Invalid endpoint. Please try again.", data: null });
    }
    const error = await caught(cs(DEMO, { base_url: `${fake.url}/missing` }).getBalance());
    expect(error).toMatchObject({ kind: "not_found", details: { status: 404 } });
  });

  it("400 keeps ClickSend's field errors and response_code", async () => {
    // The guard refuses an empty media URL before ClickSend could; drop it on the wire instead.
    const withoutMedia: typeof fetch = (url, init) => {
      const { media_file: _, ...body } = JSON.parse(String(init?.body));
      return fetch(url, { ...init, body: JSON.stringify(body) });
    };
    const mms = { media_file: "https://cdn.example.com/a.jpg", messages: [{ to: "+61412345678", body: "x", subject: "s" }] };
    const error = await caught(cs(DEMO, config).sendMms(mms, { fetch: withoutMedia }));
    expect(error).toMatchObject({
      kind: "invalid",
      maybeSent: false,
      details: { status: 400, provider_code: "BAD_REQUEST", errors: { media_file: expect.stringMatching(/required/) } },
    });
  });

  it("429 with Retry-After after the /account limit; headers on every response", async () => {
    const limited = await startClickSendFake({ rateLimits: { account: { limit: 3, windowSeconds: 60 } } });
    try {
      const cfg = { base_url: limited.url };
      for (let i = 0; i < 3; i++) await cs(DEMO, cfg).getBalance();
      const error = await caught(cs(DEMO, cfg).getBalance());
      expect(error).toMatchObject({ kind: "rate_limited", details: { status: 429, provider_code: "HTTP_TOO_MANY_REQUESTS" } });
      expect(error.details.retry_after).toBeGreaterThan(0);
      expect(error.details.retry_after).toBeLessThanOrEqual(60);
      const r = await fetch(`${limited.url}/account`);
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe(r.headers.get("ratelimit-reset"));
      expect(await r.json()).toEqual({ http_code: 429, response_code: "HTTP_TOO_MANY_REQUESTS", response_msg: "Too many attempts.", data: null });
      // Other endpoints have their own allowance.
      await expect(cs(DEMO, cfg).getSmsHistory()).resolves.toBeDefined();
    } finally {
      await limited.close();
    }
    for (const r of [await raw("GET", "/account"), await raw("GET", "/nope"), await raw("GET", "/account", undefined, null)]) {
      expect(r.headers.get("x-ratelimit-limit")).toMatch(/^\d+$/);
      expect(r.headers.get("x-ratelimit-remaining")).toMatch(/^\d+$/);
      expect(r.headers.get("ratelimit-reset")).toMatch(/^\d+$/);
    }
  });

  it("an HTTP-level insufficient-credit answer is insufficient_funds, not sent, and may fail over; a 5xx saying so stays maybe-sent", async () => {
    const answer = (status: number, response_code: string): typeof fetch => async () =>
      new Response(JSON.stringify({ http_code: status, response_code, response_msg: "Not enough credit.", data: null }), { status });
    for (const [status, code] of [[400, "INSUFFICIENT_CREDIT"], [402, "PAYMENT_REQUIRED"], [403, "INSUFFICIENT_CREDIT"]] as const) {
      const error = await caught(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }], { fetch: answer(status, code) }));
      expect(error).toMatchObject({ kind: "insufficient_funds", maybeSent: false, details: { status, provider_code: code } });
      expect(error.message).toContain("Not enough credit.");
      expect(canFailOver(error)).toBe(true);
    }
    const late = await caught(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }], { fetch: answer(500, "INSUFFICIENT_CREDIT") }));
    expect(late).toMatchObject({ kind: "transient", maybeSent: true });
    expect(canFailOver(late)).toBe(false);
  });

  it("5xx on a read is transient and not maybeSent", async () => {
    fake.addFault({ mode: "http500", path: "/account" });
    const error = await caught(cs(DEMO, config).getBalance());
    expect(error).toMatchObject({ kind: "transient", maybeSent: false, details: { status: 500 } });
  });
});

describe("fault injection: a send that may have gone out is reported, never retried", () => {
  it("timeout → kind timeout, maybeSent, exactly one request", async () => {
    fake.addFault({ mode: "timeout", path: "/sms/send" });
    const started = Date.now();
    const error = await caught(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }], { timeoutMs: 300 }));
    expect(error).toMatchObject({ kind: "timeout", maybeSent: true });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(sendCount()).toBe(1);
  });

  it("connection dropped after the request was read → unavailable, maybeSent, exactly one request", async () => {
    fake.addFault({ mode: "drop", path: "/sms/send" });
    const error = await caught(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }]));
    expect(error).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(sendCount()).toBe(1);
    // The fault is used up: the next call (a new, explicit send) goes through.
    await expect(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }])).resolves.toMatchObject({ sentCount: 1 });
  });

  it("a dropped read is not maybeSent", async () => {
    fake.addFault({ mode: "drop", path: "/account" });
    expect(await caught(cs(DEMO, config).getBalance())).toMatchObject({ kind: "unavailable", maybeSent: false });
  });

  it("connection refused → unavailable, not maybeSent (nothing left the building)", async () => {
    const gone = await startClickSendFake();
    const url = gone.url;
    await gone.close();
    const error = await caught(cs(DEMO, { base_url: url }).sendSms([{ to: "+61412345678", body: "x" }]));
    expect(error).toMatchObject({ kind: "unavailable", maybeSent: false });
  });

  it("the fault control endpoint works over HTTP too", async () => {
    const r = await fetch(`${fake.url.replace(/\/v3$/, "")}/__fake/faults`, {
      method: "POST",
      body: JSON.stringify({ mode: "http500", path: "/v3/sms/send", count: 2 }),
    });
    expect(r.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect(await caught(cs(DEMO, config).sendSms([{ to: "+61412345678", body: `x${i}` }]))).toMatchObject({ details: { status: 500 } });
    }
    await expect(cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }])).resolves.toMatchObject({ sentCount: 1 });
  });
});

// ---------------------------------------------------------------------------
// MMS, price, account, history, test connection
// ---------------------------------------------------------------------------

describe("sendMms", () => {
  const mms = (media_file: string, subject = "Photo", body = "Look at this") => ({
    media_file,
    messages: [{ to: "+61412345678", body, subject, custom_string: "op-m" }],
  });

  it("sends a .jpg with subject and records the media URL", async () => {
    const result = await cs(DEMO, config).sendMms(mms("https://cdn.example.com/cat.jpg"));
    expect(result.recipients[0]).toMatchObject({ ok: true, status: "SUCCESS", price: "0.0500" });
    expect(result.recipients[0].segments).toBe(1);
    expect(fake.received[0]).toMatchObject({
      kind: "mms",
      media_file: "https://cdn.example.com/cat.jpg",
      subject: "Photo",
      custom_string: "op-m",
    });
    const history = await cs(DEMO, config).getMmsHistory();
    expect(history.data).toMatchObject({ total: 1 });
    expect((history.data.records as Array<Record<string, unknown>>)[0]).toMatchObject({
      subject: "Photo",
      _media_file_url: "https://cdn.example.com/cat.jpg",
    });
  });

  it("INVALID_MEDIA_FILE for an unsupported type, SUBJECT_REQUIRED without a subject", async () => {
    expect((await cs(DEMO, config).sendMms(mms("https://cdn.example.com/run.exe"))).recipients[0].status).toBe("INVALID_MEDIA_FILE");
    expect((await cs(DEMO, config).sendMms(mms("https://cdn.example.com/a.png"))).recipients[0].status).toBe("INVALID_MEDIA_FILE");
    expect((await cs(DEMO, config).sendMms(mms("https://cdn.example.com/a.gif", ""))).recipients[0].status).toBe("SUBJECT_REQUIRED");
    expect(fake.received).toHaveLength(0);
  });

  it("truncates MMS bodies at 1500 GSM / 500 Unicode characters and subjects at 20", async () => {
    const r = json(
      await raw("POST", "/mms/send", {
        media_file: "https://cdn.example.com/a.gif",
        messages: [
          { to: "+61412345678", subject: "s".repeat(25), body: "a".repeat(2000) },
          { to: "+61412345679", subject: "s", body: "ж".repeat(600) },
        ],
      }),
    );
    expect(r.data.messages[0].body).toHaveLength(1500);
    expect(r.data.messages[0].subject).toHaveLength(20);
    expect(r.data.messages[1].body).toHaveLength(500);
    expect(r.data.messages[0]._media_file_url).toBe("https://cdn.example.com/a.gif");
  });
});

describe("/sms/price", () => {
  it("validates like send but has no side effects", async () => {
    const before = await cs(DEMO, config).getBalance();
    const r = json(
      await raw("POST", "/sms/price", {
        messages: [{ to: "+61412345678", body: "a".repeat(200) }, { to: "bad", body: "x" }, { to: "+8615555555555", body: "x" }],
      }),
    );
    expect(r.data.messages.map((m: { status: string }) => m.status)).toEqual(["SUCCESS", "INVALID_RECIPIENT", "COUNTRY_NOT_ENABLED"]);
    expect(r.data.messages[0].message_parts).toBe(2);
    expect(r.data).toMatchObject({ total_price: 0.01, blocked_count: 1, _summary: { countries: { AU: { count: 1 } } } });
    expect(fake.received).toHaveLength(0);
    expect((await cs(DEMO, config).getBalance()).data.balance).toBe(before.data.balance);
    // Not recorded for throttling either: the real send right after succeeds.
    const sent = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "a".repeat(200) }]);
    expect(sent.recipients[0].status).toBe("SUCCESS");
  });
});

describe("getBalance", () => {
  it("returns the string balance and currency but never _subaccount, api keys or the username", async () => {
    const wire = json(await raw("GET", "/account"));
    expect(wire.data._subaccount.api_key).toBeTruthy(); // the fake does leak it, like ClickSend
    const result = await cs(DEMO, config).getBalance();
    expect(result.data).toMatchObject({ balance: "100.000000", currency: { currency_name_short: "AUD" } });
    const text = JSON.stringify(result);
    expect(text).not.toContain(wire.data._subaccount.api_key);
    expect(text).not.toContain("_subaccount");
    expect(text).not.toMatch(/api_key|demo-key|"username"/);
  });

  it("reflects what was spent", async () => {
    await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "a".repeat(161) }]);
    expect((await cs(DEMO, config).getBalance()).data.balance).toBe("99.990000");
  });
});

describe("history", () => {
  it("passes the paginator through: total, per_page, current_page, last_page, records", async () => {
    await cs(DEMO, config).sendSms(auMobiles(20).map((to, i) => ({ to, body: `msg ${i}`, custom_string: "op-h" })));
    const page2 = await cs(DEMO, config).getSmsHistory({ page: 2, limit: 15 });
    expect(page2.data).toMatchObject({ total: 20, per_page: 15, current_page: 2, last_page: 2 });
    const records = page2.data.records as Array<Record<string, unknown>>;
    expect(records).toHaveLength(5);
    expect(records[0]).toMatchObject({ body: "msg 15", custom_string: "op-h", status: "Sent" });
    expect(JSON.stringify(page2)).not.toMatch(/api_key/);
  });

  it("empty history is total 0, last_page 0", async () => {
    const result = await cs(DEMO, config).getSmsHistory();
    expect(result.data).toEqual({ total: 0, per_page: 15, current_page: 1, last_page: 0, records: [] });
  });

  it("filters by date range, q and order_by; clamps limit to 15..100 (wire level)", async () => {
    await cs(DEMO, config).sendSms(auMobiles(3).map((to) => ({ to, body: "hi" })));
    const future = Math.floor(Date.now() / 1000) + 3600;
    expect((await cs(DEMO, config).getSmsHistory({ date_from: future })).data.total).toBe(0);
    expect((await cs(DEMO, config).getSmsHistory({ date_to: future })).data.total).toBe(3);
    const byTo = json(await raw("GET", `/sms/history?q=${encodeURIComponent(`to:${auMobiles(1, 1)[0]}`)}`));
    expect(byTo.data.total).toBe(1);
    expect(byTo.data.data[0].to).toBe(auMobiles(1, 1)[0]);
    const desc = json(await raw("GET", "/sms/history?order_by=to:desc&limit=5"));
    expect(desc.data.per_page).toBe(15);
    expect(desc.data.data.map((r: { to: string }) => r.to)).toEqual(auMobiles(3).reverse());
  });
});

describe("redirects are never followed", () => {
  it("a 3xx on a send, a read or a test is a not-sent provider error, and the target never hears of it", async () => {
    const r = await redirectToCanary("/v3/sms/send", "/v3");
    try {
      const client = cs(DEMO, { base_url: r.url });
      const send = await caught(client.sendSms([{ to: "+61412345678", body: "x" }]));
      expect(send).toMatchObject({ kind: "permanent", maybeSent: false, details: { provider: "clicksend", status: 302 } });
      expect(send.message).toMatch(/redirect/);
      expect(await caught(client.getBalance())).toMatchObject({ kind: "permanent", details: { status: 302 } });
      expect(await client.testConnection()).toMatchObject({ ok: false, details: { kind: "permanent", status: 302 } });
      expect(r.canaryConnections()).toBe(0);
    } finally {
      await r.close();
    }
  });
});

describe("testConnection", () => {
  it("uses /account/usage/{year}/{month}/subaccount, not /account", async () => {
    const result = await cs(DEMO, config).testConnection();
    expect(result.ok).toBe(true);
    const now = new Date();
    const counts = fake.requestCounts();
    expect(counts[`GET /v3/account/usage/${now.getUTCFullYear()}/${now.getUTCMonth() + 1}/subaccount`]).toBe(1);
    expect(counts["GET /v3/account"]).toBeUndefined();
  });

  it("reports bad and suspended credentials without throwing", async () => {
    expect(await cs({ username: "demo", api_key: "nope" }, config).testConnection()).toMatchObject({ ok: false, details: { kind: "auth" } });
    expect(await cs({ username: "banned", api_key: TEST_KEY }, config).testConnection()).toMatchObject({
      ok: false,
      details: { kind: "forbidden" },
    });
  });

  it("the fake only accepts the literal 'subaccount'", async () => {
    expect((await raw("GET", "/account/usage/2026/1/other")).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------
// Webhooks: pushes from the fake, parsing
// ---------------------------------------------------------------------------

interface Captured {
  method: string;
  url: string;
  contentType: string;
  body: string;
}

async function startReceiver() {
  const requests: Captured[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, contentType: req.headers["content-type"] ?? "", body });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    requests,
    async waitFor(n: number) {
      const deadline = Date.now() + 5000;
      while (requests.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(requests.length).toBeGreaterThanOrEqual(n);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Parses a captured push exactly as the edge function would receive it. */
function parseCaptured(c: Captured) {
  const u = new URL(c.url, "http://x");
  return parseClickSendWebhook(c.contentType, c.body, u.searchParams);
}

const control = (path: string, body: unknown) =>
  fetch(`${fake.url.replace(/\/v3$/, "")}/__fake/${path}`, { method: "POST", body: JSON.stringify(body) });

describe("webhook pushes from the fake", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());
  beforeEach(() => {
    receiver.requests.length = 0;
  });

  const receiptRule = (extra: Record<string, unknown> = {}) =>
    raw("POST", "/automations/sms/receipts", {
      rule_name: "switchboard",
      match_type: 0,
      action: "URL",
      action_address: receiver.url,
      enabled: 1,
      ...extra,
    });

  it("pushes a form-encoded 201 receipt automatically after a send", async () => {
    const rule = json(await receiptRule());
    expect(rule.data).toMatchObject({ action_address: receiver.url, receipt_rule_id: expect.any(Number) });
    const result = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "receipt me", custom_string: "op-r" }]);
    await receiver.waitFor(1);
    const push = receiver.requests[0];
    expect(push.contentType).toBe("application/x-www-form-urlencoded");
    const [event] = parseCaptured(push);
    expect(event).toMatchObject({
      kind: "delivery_receipt",
      message_id: result.providerMessageIds[0],
      status_code: "201",
      custom_string: "op-r",
    });
    const history = await cs(DEMO, config).getSmsHistory();
    expect((history.data.records as Array<Record<string, unknown>>)[0]).toMatchObject({ status_code: "201" });
  });

  it("the adapter turns the fake's real receipt pushes (post and json rules) into delivery events", async () => {
    await receiptRule();
    await receiptRule({ rule_name: "json", webhook_type: "json" });
    const result = await clicksendAdapter.send(
      { credentials: { ...DEMO }, config, network: local },
      { channel: "sms", to: ["+61412345678"], body: "adapter receipt", operationId: "op-adapter-r" },
    );
    await receiver.waitFor(2);
    for (const push of receiver.requests) {
      const events = clicksendAdapter.parseWebhook!({
        method: push.method,
        url: new URL(push.url, "https://fn.example.com").toString(),
        headers: new Headers({ "content-type": push.contentType }),
        rawBody: push.body,
      });
      expect(events).toEqual([expect.objectContaining({
        kind: "status",
        provider_message_id: result.providerMessageIds[0],
        status: "delivered",
        provider_status: "201",
        occurred_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        dedupe_key: `receipt:${result.providerMessageIds[0]}:201`,
        channel: "sms",
      })]);
    }
  });

  it("JSON rules get JSON receipts; test numbers get none", async () => {
    await receiptRule({ webhook_type: "json" });
    const result = await cs(DEMO, config).sendSms([
      { to: "+61412345678", body: "json receipt" },
      { to: "+61411111111", body: "test number" },
    ]);
    await receiver.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].contentType).toBe("application/json");
    expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ status_code: "201", message_type: "sms" });
    expect(parseCaptured(receiver.requests[0])[0].message_id).toBe(result.providerMessageIds[0]);
  });

  it("drives 200 / 301 receipts and duplicates on demand", async () => {
    await receiptRule();
    fake.reset(); // keeps rules
    const { providerMessageIds } = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }]);
    await receiver.waitFor(1);
    receiver.requests.length = 0;
    const r = await control("receipts", { message_id: providerMessageIds[0], status_code: "301", duplicate: 2 });
    expect(r.status).toBe(200);
    expect(receiver.requests).toHaveLength(3);
    const events = receiver.requests.map((c) => parseCaptured(c)[0]);
    expect(new Set(events.map((e) => e.message_id))).toEqual(new Set(providerMessageIds));
    expect(events[0]).toMatchObject({ status_code: "301", error_code: "301" });
    const interim = await control("receipts", { message_id: providerMessageIds[0], status_code: "200" });
    expect((await interim.json()).pushes[0].status).toBe(200);
    expect(parseCaptured(receiver.requests[3])[0]).toMatchObject({ status_code: "200" });
  });

  it("inbound replies via a GET rule carry the original message id and custom_string", async () => {
    const missing = await raw("POST", "/automations/sms/inbound", {
      rule_name: "in",
      dedicated_number: "*",
      action: "URL",
      action_address: receiver.url,
    });
    expect(missing.status).toBe(400);
    expect(json(missing).data.webhook_type).toBeTruthy();
    const rule = await raw("POST", "/automations/sms/inbound", {
      rule_name: "in",
      dedicated_number: "*",
      message_search_type: 0,
      action: "URL",
      action_address: receiver.url,
      webhook_type: "get",
      enabled: 1,
    });
    expect(rule.status).toBe(200);
    const sent = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "Reply YES", custom_string: "op-in" }]);
    const r = await control("inbound", { from: "+61412345678", to: "+61481070000", body: "YES please" });
    expect(r.status).toBe(200);
    const get = receiver.requests.find((c) => c.method === "GET")!;
    const [event] = parseCaptured(get);
    expect(event).toMatchObject({
      kind: "inbound",
      from: "+61412345678",
      to: "+61481070000",
      body: "YES please",
      original_message_id: sent.providerMessageIds[0],
      custom_string: "op-in",
    });
    expect(event.message_id).toMatch(UUID_UPPER);
  });

  it("without a rule, on-demand pushes are refused", async () => {
    const { providerMessageIds } = await cs(DEMO, config).sendSms([{ to: "+61412345678", body: "x" }]);
    expect((await control("receipts", { message_id: providerMessageIds[0] })).status).toBe(409);
  });
});

describe("parseClickSendWebhook", () => {
  it("parses a form-encoded receipt", () => {
    const body = "timestamp_send=1700000000&timestamp=1700000005&message_id=ABC-1&status_code=201&status_text=Delivered&error_code=&error_text=&custom_string=op-9&message_type=sms";
    expect(parseClickSendWebhook("application/x-www-form-urlencoded; charset=utf-8", body)).toEqual([
      expect.objectContaining({
        kind: "delivery_receipt",
        message_id: "ABC-1",
        status_code: "201",
        status_text: "Delivered",
        custom_string: "op-9",
        timestamp: 1700000005,
      }),
    ]);
  });

  it("parses a JSON receipt with a numeric status_code as a string", () => {
    const [event] = parseClickSendWebhook("application/json", JSON.stringify({ message_id: "M1", status_code: 301, error_text: "x" }));
    expect(event).toMatchObject({ kind: "delivery_receipt", status_code: "301", error_text: "x" });
    expect(event.raw.status_code).toBe(301);
  });

  it("parses legacy inbound field names; original_body is not the reply", () => {
    const body = new URLSearchParams({
      message_id: "IN-1",
      originalsenderid: "+61412345678",
      message: "Yes",
      originalmessageid: "OUT-1",
      customstring: "op-7",
      originalmessage: "Reply YES",
      to: "+61481070000",
    }).toString();
    const [event] = parseClickSendWebhook("application/x-www-form-urlencoded", body);
    expect(event).toMatchObject({
      kind: "inbound",
      message_id: "IN-1",
      from: "+61412345678",
      body: "Yes",
      original_message_id: "OUT-1",
      custom_string: "op-7",
      to: "+61481070000",
    });
  });

  it("parses GET query deliveries and JSON arrays", () => {
    expect(parseClickSendWebhook(null, "", "message_id=Q1&status_code=200")[0]).toMatchObject({ kind: "delivery_receipt", status_code: "200" });
    expect(parseClickSendWebhook("application/json", '[{"message_id":"a","status_code":"201"},{"message_id":"b","from":"+61412345678","body":"hi"}]').map((e) => e.kind))
      .toEqual(["delivery_receipt", "inbound"]);
  });

  it("rejects what is not a ClickSend event", () => {
    for (const [type, body] of [
      ["application/json", "{not json"],
      ["application/json", '{"status_code":"201"}'],
      ["application/x-www-form-urlencoded", "hello=world&message_id=X"],
      ["application/json", "[1,2]"],
      [null, ""],
    ] as const) {
      expect(() => parseClickSendWebhook(type, body)).toThrow(ApiError);
    }
  });
});

// ---------------------------------------------------------------------------
// clicksendAdapter: the MessagingAdapter over the client
// ---------------------------------------------------------------------------

describe("clicksendAdapter", () => {
  const ctx = (overrides: Partial<AdapterContext> = {}): AdapterContext => ({
    credentials: { ...DEMO },
    config: { base_url: fake.url },
    network: local,
    ...overrides,
  });
  const message = (overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({
    channel: "sms",
    to: ["+61412345678", "+61412345679"],
    body: "From the adapter",
    operationId: "op-adapter-1",
    ...overrides,
  });
  const hook = (rawBody: string, contentType: string | null, url = "https://fn.example.com/clicksend/webhooks/tok/receipts") =>
    clicksendAdapter.parseWebhook!({
      method: rawBody ? "POST" : "GET",
      url,
      headers: new Headers(contentType ? { "content-type": contentType } : {}),
      rawBody,
    });
  const sends = () => (fake.requestCounts()["POST /v3/sms/send"] ?? 0) + (fake.requestCounts()["POST /v3/mms/send"] ?? 0);

  it("is the clicksend provider, with no verifyWebhook (ClickSend does not sign; the URL token authenticates)", () => {
    expect(clicksendAdapter.provider).toBe("clicksend");
    expect(clicksendAdapter.verifyWebhook).toBeUndefined();
    for (const method of ["send", "testCredentials", "balance", "history", "parseWebhook", "mapDeliveryStatus"] as const) {
      expect(typeof clicksendAdapter[method]).toBe("function");
    }
  });

  it("sends an SMS from `from` with the operation id as custom_string", async () => {
    const result = await clicksendAdapter.send(ctx(), message({ from: "+61481070000" }));
    expect(result.sentCount).toBe(2);
    expect(result.providerMessageIds).toHaveLength(2);
    expect(result.recipients.map((r) => r.status)).toEqual(["SUCCESS", "SUCCESS"]);
    expect(fake.received.map((m) => [m.to, m.from, m.custom_string, m.body])).toEqual([
      ["+61412345678", "+61481070000", "op-adapter-1", "From the adapter"],
      ["+61412345679", "+61481070000", "op-adapter-1", "From the adapter"],
    ]);
  });

  it("a null `from` falls back to the connection's sender_id", async () => {
    await clicksendAdapter.send(ctx({ config: { base_url: fake.url, sender_id: "Acme" } }), message({ from: null }));
    expect(fake.received.map((m) => m.from)).toEqual(["Acme", "Acme"]);
  });

  it("sends an MMS with its one media file and subject", async () => {
    const result = await clicksendAdapter.send(ctx(), message({
      channel: "mms",
      to: ["+61412345678"],
      subject: "Photo",
      mediaUrls: ["https://cdn.example.com/cat.jpg"],
    }));
    expect(result.recipients[0]).toMatchObject({ ok: true, status: "SUCCESS" });
    expect(fake.received[0]).toMatchObject({
      kind: "mms",
      media_file: "https://cdn.example.com/cat.jpg",
      subject: "Photo",
      custom_string: "op-adapter-1",
    });
  });

  it("refuses what ClickSend cannot send before any request", async () => {
    const refused: Array<[Partial<OutboundMessage>, string]> = [
      [{ channel: "whatsapp" }, "channel"],
      [{ template: { id: "t1" } }, "template"],
      [{ mediaUrls: ["https://cdn.example.com/a.jpg"] }, "mediaUrls"], // media on an SMS
      [{ channel: "mms", subject: "s" }, "mediaUrls"], // no media
      [{ channel: "mms", subject: "s", mediaUrls: ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg"] }, "mediaUrls"],
      [{ channel: "mms", mediaUrls: ["https://cdn.example.com/a.jpg"] }, "subject"],
    ];
    for (const [overrides, field] of refused) {
      const error = await Promise.resolve().then(() => clicksendAdapter.send(ctx(), message(overrides))).catch((e) => e);
      expect(error, field).toBeInstanceOf(ApiError);
      expect(error.details).toMatchObject({ field });
    }
    // MMS media on a private network is judged by the guard, as with the client.
    await expect(clicksendAdapter.send(
      ctx({ network: hosted, config: {} }),
      message({ channel: "mms", subject: "s", mediaUrls: ["https://127.0.0.1/a.jpg"] }),
    )).rejects.toMatchObject({ code: "invalid_request", details: { field: "media_url" } });
    expect(sends()).toBe(0);
  });

  it("keeps the client's failure rules: a 5xx on a send may have been sent and is not retried", async () => {
    fake.addFault({ mode: "http500", path: "/sms/send" });
    const error = await caught(clicksendAdapter.send(ctx(), message()));
    expect(error).toMatchObject({ kind: "transient", maybeSent: true, details: { provider: "clicksend", status: 500 } });
    expect(canFailOver(error)).toBe(false);
    expect(sends()).toBe(1);
  });

  it("testCredentials, balance and history go through the client", async () => {
    expect(await clicksendAdapter.testCredentials(ctx())).toMatchObject({ ok: true });
    expect(await clicksendAdapter.testCredentials(ctx({ credentials: { username: "demo", api_key: "nope" } }))).toMatchObject({
      ok: false,
      details: { kind: "auth" },
    });
    const balance = await clicksendAdapter.balance!(ctx());
    expect(balance.data).toMatchObject({ balance: "100.000000", currency: { currency_name_short: "AUD" } });
    expect(JSON.stringify(balance)).not.toMatch(/api_key|_subaccount|demo-key/);

    await clicksendAdapter.send(ctx(), message());
    const mms = await clicksendAdapter.send(ctx(), message({
      channel: "mms",
      to: ["+61412345670"],
      body: "An MMS",
      subject: "s",
      mediaUrls: ["https://cdn.example.com/a.jpg"],
    }));
    expect(mms.sentCount).toBe(1);
    expect((await clicksendAdapter.history!(ctx(), {})).data).toMatchObject({ total: 2 });
    expect((await clicksendAdapter.history!(ctx(), { channel: "mms" })).data).toMatchObject({ total: 1 });
    expect((await clicksendAdapter.history!(ctx(), { page: 2, limit: 15 })).data).toMatchObject({ current_page: 2, per_page: 15 });
    for (const query of [{ channel: "email" }, { page: "2" }, { limit: -1 }, { date_from: 1.5 }]) {
      await expect(Promise.resolve().then(() => clicksendAdapter.history!(ctx(), query))).rejects.toBeInstanceOf(ApiError);
    }
  });

  it.each([
    ["200", "sent"],
    ["201", "delivered"],
    ["300", "undelivered"],
    ["301", "undelivered"],
    ["302", "undelivered"],
    ["Sent", "sent"],
    ["Delivered", "delivered"],
    ["Completed", "delivered"],
    ["Undelivered", "undelivered"],
    ["Expired", "undelivered"],
    ["SUCCESS", "queued"],
    ["Queued", "queued"],
    ["Scheduled", "queued"],
    ["Wait Approval", "queued"],
    ["Failed", "failed"],
    ["Cancelled", "failed"],
    ["INVALID_RECIPIENT", "failed"],
    ["INSUFFICIENT_CREDIT", "failed"],
    ["received", null],
    ["", null],
    ["toString", null],
  ] as const)("mapDeliveryStatus(%j) → %s", (word, status) => {
    expect(clicksendAdapter.mapDeliveryStatus!(word)).toBe(status);
  });

  it("parses a form receipt into a normalised delivery event", () => {
    const body = "timestamp=1700000005&message_id=ABC-1&status_code=201&status_text=Success%3A+Message+received+on+handset.&error_code=&custom_string=op-9&message_type=sms&to=%2B61412345678";
    expect(hook(body, "application/x-www-form-urlencoded")).toEqual([{
      kind: "status",
      provider_message_id: "ABC-1",
      status: "delivered",
      provider_status: "201",
      error_code: null,
      recipient: "+61412345678",
      occurred_at: "2023-11-14T22:13:25.000Z",
      dedupe_key: "receipt:ABC-1:201",
      channel: "sms",
    }]);
  });

  it("receipts: one event per status; failures keep their error code; an MMS receipt is channel mms", () => {
    const events = hook(JSON.stringify([
      { message_id: "M1", status_code: "200", message_type: "sms" },
      { message_id: "M1", status_code: 301, error_code: "301", error_text: "Delivery failed.", message_type: "mms" },
      { message_id: "M2", status: "Delivered", message_type: "sms" },
    ]), "application/json");
    expect(events).toMatchObject([
      { kind: "status", status: "sent", dedupe_key: "receipt:M1:200" },
      { kind: "status", status: "undelivered", error_code: "301", dedupe_key: "receipt:M1:301", channel: "mms" },
      { kind: "status", status: "delivered", provider_status: "Delivered" },
    ]);
  });

  it("parses an inbound reply (GET rule: fields in the query string) into an inbound event", () => {
    const url = "https://fn.example.com/clicksend/webhooks/tok/inbound?message_id=IN-1&from=%2B61412345678&to=%2B61481070000&body=YES&timestamp=1700000000";
    expect(hook("", null, url)).toEqual([{
      kind: "inbound",
      provider_message_id: "IN-1",
      channel: "sms",
      from: "+61412345678",
      to: "+61481070000",
      body: "YES",
      media_urls: [],
      occurred_at: "2023-11-14T22:13:20.000Z",
      dedupe_key: "inbound:IN-1",
    }]);
  });

  it("an inbound MMS carries its media URL", () => {
    const [event] = hook(JSON.stringify({
      message_id: "IN-2",
      from: "+61412345678",
      to: "+61481070000",
      body: "pic",
      message_type: "mms",
      _media_file_url: "https://media.example.com/x.jpg",
    }), "application/json");
    expect(event).toMatchObject({ kind: "inbound", channel: "mms", media_urls: ["https://media.example.com/x.jpg"] });
  });

  it("refuses what it cannot normalise: not ClickSend, an unknown status, an inbound without `to`", () => {
    for (const [body, type] of [
      ["{not json", "application/json"],
      ['{"message_id":"M","status_code":"999"}', "application/json"],
      ['{"message_id":"M","from":"+61412345678","body":"hi"}', "application/json"],
    ] as const) {
      expect(() => hook(body, type), body).toThrow(ApiError);
    }
  });
});

// ---------------------------------------------------------------------------
// Phone numbers (the network guard has its own suite: tests/unit/network-guard.test.ts)
// ---------------------------------------------------------------------------

describe("normalizePhoneNumber", () => {
  it.each([
    ["+61 412 345 678", "+61412345678"],
    ["0061-412-345-678", "+61412345678"],
    ["+61 (0)4 1234 5678", "+61412345678"],
    ["(+44) 7777 777777", "+447777777777"],
    ["+1 (212) 555-0100", "+12125550100"],
    ["  +8615555555555 ", "+8615555555555"],
  ])("%s → %s", (input, expected) => {
    expect(normalizePhoneNumber(input)).toBe(expected);
  });

  it("rejects national numbers with a message saying numbers must be international", () => {
    expect(() => normalizePhoneNumber("0412 345 678")).toThrow(/international/);
  });

  it.each(["", "abc", "+61 4123", "+999 123 456", "+61412345678 ext. 5", "+1-800-FLOWERS", "+61+412345678"])(
    "rejects %j",
    (input) => {
      expect(() => normalizePhoneNumber(input)).toThrow(/Invalid phone number/);
    },
  );
});

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

describe("clicksend tools", () => {
  const ctx = (overrides: Partial<ToolContext> = {}): ToolContext => ({
    credentials: { ...DEMO },
    config: { base_url: fake.url },
    operationId: "op-tool-1",
    network: local,
    ...overrides,
  });

  it("exports the five capabilities with strict, generatable input schemas", () => {
    expect(clicksendTools.map((t) => t.capability)).toEqual([
      "clicksend_send_sms",
      "clicksend_send_mms",
      "clicksend_get_balance",
      "clicksend_get_sms_history",
      "clicksend_get_mms_history",
    ]);
    for (const tool of clicksendTools) {
      const schema = z.toJSONSchema(tool.schema, { io: "input" }) as Record<string, unknown>;
      expect(schema.type).toBe("object");
      expect(schema.additionalProperties).toBe(false);
      expect(tool.provider).toBe("clicksend_sms");
    }
  });

  it("send_sms normalises and de-duplicates recipients and converts schedule_at", () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const args = sendSmsSchema.parse({ to: ["+61 412 345 678", "0061412345678", "+447777777777"], body: "Hi", schedule_at: at });
    expect(args.to).toEqual(["+61412345678", "+447777777777"]);
    expect(args.schedule_at).toBe(Math.floor(Date.parse(at) / 1000));
    expect(clicksendSendSms.recipients(args)).toEqual(["+61412345678", "+447777777777"]);
  });

  it("send_sms lists every issue at once", () => {
    const result = sendSmsSchema.safeParse({
      to: ["0412345678", "+61412345678"],
      body: "",
      from: "has spaces",
      schedule_at: "2001-01-01T00:00:00Z",
      extra: 1,
    });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["to.0", "body", "from", "schedule_at", ""]));
    expect(result.error!.issues.find((i) => i.path.join(".") === "to.0")!.message).toMatch(/international/);
  });

  it("enforces the documented limits", () => {
    expect(sendSmsSchema.safeParse({ to: [], body: "x" }).success).toBe(false);
    expect(sendSmsSchema.safeParse({ to: ["+61412345678"], body: "x".repeat(1601) }).success).toBe(false);
    expect(sendSmsSchema.safeParse({ to: Array(10_001).fill("+61412345678"), body: "x" }).success).toBe(false);
    expect(sendSmsSchema.safeParse({ to: ["+61412345678"], body: "x", schedule_at: "tomorrow" }).success).toBe(false);
    const mms = { to: ["+61412345678"], body: "x", subject: "s", media_url: "https://cdn.example.com/a.jpg" };
    expect(sendMmsSchema.safeParse(mms).success).toBe(true);
    expect(sendMmsSchema.safeParse({ ...mms, subject: "s".repeat(21) }).success).toBe(false);
    expect(sendMmsSchema.safeParse({ ...mms, media_url: "http://cdn.example.com/a.jpg" }).success).toBe(false);
    expect(sendMmsSchema.safeParse({ ...mms, body: "x".repeat(1501) }).success).toBe(false);
    expect(sendMmsSchema.safeParse({ ...mms, to: Array(1001).fill("+61412345678") }).success).toBe(false);
    expect(historySchema.safeParse({ limit: 14 }).success).toBe(false);
    expect(historySchema.safeParse({ limit: 101 }).success).toBe(false);
    expect(historySchema.safeParse({ page: 0 }).success).toBe(false);
    expect(historySchema.safeParse({ date_from: "2030-01-02T00:00:00Z", date_to: "2030-01-01T00:00:00Z" }).success).toBe(false);
    expect(historySchema.parse({ date_from: "2030-01-01T00:00:00Z" })).toEqual({ date_from: 1893456000 });
  });

  it("summaries are redacted: no body text, media host only", () => {
    const sms = sendSmsSchema.parse({ to: ["+61412345678"], body: "secret code 123456" });
    const summary = clicksendSendSms.summarize(sms);
    expect(summary).toEqual({ recipient_count: 1, body_length: 18, segments: 1, encoding: "GSM-7" });
    const mms = sendMmsSchema.parse({
      to: ["+61412345678"],
      body: "private text",
      subject: "Hi",
      media_url: "https://cdn.example.com/private/path.jpg?token=abc",
    });
    const mmsSummary = clicksendSendMms.summarize(mms);
    expect(mmsSummary).toMatchObject({ media_host: "cdn.example.com", subject: "Hi", body_length: 12 });
    expect(JSON.stringify(mmsSummary)).not.toMatch(/private|token/);
  });

  it("execute sends through the adapter with the operation id as custom_string", async () => {
    const args = sendSmsSchema.parse({ to: ["+61412345678", "+61412345679"], body: "From the tool" });
    const result = (await clicksendSendSms.execute(ctx(), args)) as SendResult;
    expect(result.sentCount).toBe(2);
    expect(fake.received.map((m) => m.custom_string)).toEqual(["op-tool-1", "op-tool-1"]);
  });

  it("execute refuses MMS media on a private network before calling ClickSend", async () => {
    const args = sendMmsSchema.parse({ to: ["+61412345678"], body: "x", subject: "s", media_url: "https://127.0.0.1/a.jpg" });
    const strict = ctx({ network: hosted, config: {} });
    await expect(clicksendSendMms.execute(strict, args)).rejects.toMatchObject({
      code: "invalid_request",
      details: { field: "media_url", source: "arguments" },
    });
    expect(fake.requestCounts()["POST /v3/mms/send"]).toBeUndefined();
  });

  it("execute refuses a base_url other than ClickSend's own unless the policy allows custom hosts", async () => {
    await expect(clicksendGetBalance.execute(ctx({ network: hosted }), {})).rejects.toMatchObject({
      code: "invalid_request",
      details: { field: "base_url", source: "connection_config" },
    });
    expect(fake.requestCounts()["GET /v3/account"]).toBeUndefined();
  });

  it("execute refuses a private or plain-http base_url unless private networks are allowed", async () => {
    const customHosts = ctx({ network: { ...hosted, allowCustomProviderHosts: true } });
    await expect(clicksendGetBalance.execute(customHosts, {})).rejects.toMatchObject({ code: "invalid_request" });
    const https = ctx({ network: customHosts.network, config: { base_url: fake.url.replace("http:", "https:") } });
    await expect(clicksendGetBalance.execute(https, {})).rejects.toMatchObject({
      code: "invalid_request",
      details: { field: "base_url", host: "127.0.0.1" },
    });
    expect(fake.requestCounts()["GET /v3/account"]).toBeUndefined();
  });

  it("execute refuses a stored config that breaks the rules with 400 naming the field, before any request", async () => {
    for (const [field, config] of [
      ["sender_id", { base_url: fake.url, sender_id: "Acme\r\nX-Evil: 1" }],
      ["sender_id", { base_url: fake.url, sender_id: "has spaces" }],
      ["base_url", { base_url: "https://user:pw@rest.clicksend.com/v3" }],
      ["base_url", { base_url: "https://0x7f.1/v3" }],
    ] as const) {
      await expect(clicksendGetBalance.execute(ctx({ config }), {})).rejects.toMatchObject({
        code: "invalid_request",
        status: 400,
        details: { field, source: "connection_config" },
      });
    }
    expect(fake.requestCounts()["GET /v3/account"]).toBeUndefined();
  });

  it("execute with incomplete credentials is an auth error, and balance never leaks secrets", async () => {
    await expect(clicksendGetBalance.execute(ctx({ credentials: { username: "demo" } }), {})).rejects.toMatchObject({ kind: "auth" });
    const balance = await clicksendGetBalance.execute(ctx(), {});
    expect(JSON.stringify(balance)).not.toMatch(/api_key|_subaccount|demo-key/);
  });
});
