/**
 * The Telnyx Messaging v2 fake's own wire behaviour, through real HTTP: Bearer auth, send
 * validation (errors[] with source.pointer), the send/retrieve/cancel shapes, scheduling,
 * phone numbers and balance, rate limits, Idempotency-Key, fault injection, and webhooks
 * (events, URL priority, retries, Ed25519 signatures). The official `telnyx` SDK is used as
 * an independent client: it must parse the fake's answers, accept its webhook signatures
 * and reject every signature fault mode.
 */
import { createPublicKey, verify as verifyBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Telnyx, { AuthenticationError, RateLimitError } from "telnyx";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  startTelnyxFake,
  TELNYX_FAKE_API_KEY,
  TELNYX_FAKE_NUMBERS as N,
  TELNYX_FAKE_PROFILE_ID,
  TELNYX_FAKE_REVOKED_API_KEY,
  type TelnyxFake,
} from "../../packages/devstack/src/fakes/telnyx.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/;
const MONEY2 = /^\d+\.\d{2}$/;
const US_MOBILE = "+13125551234";

type Json = Record<string, any>;

let fake: TelnyxFake;
let base: string;
let client: Telnyx;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

interface Hit {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A webhook receiver on 127.0.0.1; per-path behaviour gets the 1-based hit number on that path. */
async function startReceiver() {
  const hits: Hit[] = [];
  const behaviours = new Map<string, (n: number) => { status?: number; delayMs?: number }>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const path = req.url ?? "/";
      hits.push({ path, headers, body });
      const n = hits.filter((h) => h.path === path).length;
      const b = behaviours.get(path)?.(n) ?? {};
      const answer = () => {
        if (res.destroyed) return;
        res.statusCode = b.status ?? 200;
        res.end("ok");
      };
      if (b.delayMs) setTimeout(answer, b.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (path: string) => `${origin}${path}`,
    hits,
    on(path: string, fn: (n: number) => { status?: number; delayMs?: number }) {
      behaviours.set(path, fn);
    },
    clear() {
      hits.length = 0;
      behaviours.clear();
    },
    async waitFor(n: number) {
      const deadline = Date.now() + 5000;
      while (hits.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(hits.length).toBeGreaterThanOrEqual(n);
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
let rx: Awaited<ReturnType<typeof startReceiver>>;

async function api(
  method: string,
  path: string,
  body?: unknown,
  opts: { key?: string | null; headers?: Record<string, string>; raw?: string; signal?: AbortSignal } = {},
) {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  const key = opts.key === undefined ? TELNYX_FAKE_API_KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers,
    body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    signal: opts.signal,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? (JSON.parse(text) as Json) : {} };
}

const send = (extra: Json = {}, opts: Parameters<typeof api>[3] = {}) =>
  api("POST", "/messages", { from: N.primary, to: US_MOBILE, text: "Hello from Switchboard", ...extra }, opts);

async function control(method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}/__fake/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Json };
}

const advance = (message_id: string, extra: Json = {}) => control("POST", "advance", { message_id, ...extra });
const setProfile = (p: Json) => control("POST", "profile", p);
const config = (p: Json) => control("POST", "config", p);

/** Verifies a captured webhook exactly as Switchboard would: the official SDK, the raw body. */
const unwrap = (hit: Hit) => client.webhooks.unwrap(hit.body, { headers: hit.headers });
const parsed = (hit: Hit) => JSON.parse(hit.body) as Json;

async function expectRejected(hit: Hit, message: RegExp) {
  await expect(unwrap(hit)).rejects.toMatchObject({ name: "TelnyxWebhookVerificationError", message: expect.stringMatching(message) });
}

/** Expects a Telnyx error envelope with one error. */
function expectError(r: { status: number; json: Json }, status: number, code: string, pointer?: string) {
  expect(r.status).toBe(status);
  expect(r.json.errors).toHaveLength(1);
  const e = r.json.errors[0];
  expect(e.code).toBe(code);
  expect(typeof e.title).toBe("string");
  expect(e.title.length).toBeGreaterThan(0);
  if (pointer === undefined) expect(e.source).toBeUndefined();
  else expect(e.source).toEqual({ pointer });
  return e;
}

beforeAll(async () => {
  fake = await startTelnyxFake({ port: 0, host: "127.0.0.1", webhookTimeoutMs: 300, webhookRetryDelayMs: 10 });
  base = fake.url.replace(/\/v2$/, "");
  rx = await startReceiver();
  client = new Telnyx({ apiKey: TELNYX_FAKE_API_KEY, publicKey: fake.publicKey, baseURL: fake.url, maxRetries: 0 });
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
// Auth
// ---------------------------------------------------------------------------

describe("Bearer auth", () => {
  it("exports a V2-style key and a distinct revoked key", () => {
    expect(TELNYX_FAKE_API_KEY.startsWith("KEY")).toBe(true);
    expect(TELNYX_FAKE_REVOKED_API_KEY.startsWith("KEY")).toBe(true);
    expect(TELNYX_FAKE_REVOKED_API_KEY).not.toBe(TELNYX_FAKE_API_KEY);
  });

  it("answers 401 / 10009 without a key, with a wrong key and with another scheme", async () => {
    for (const opts of [{ key: null }, { key: "KEYnot-a-real-key" }, { key: null, headers: { authorization: `Basic ${TELNYX_FAKE_API_KEY}` } }]) {
      const r = await api("GET", "/balance", undefined, opts);
      const e = expectError(r, 401, "10009");
      expect(e.title).toBe("Authentication failed");
      expect(typeof e.detail).toBe("string");
    }
    expect(fake.received).toHaveLength(0);
  });

  it("answers 401 / 20002 for a revoked key, and sends nothing", async () => {
    const r = await send({}, { key: TELNYX_FAKE_REVOKED_API_KEY });
    expectError(r, 401, "20002");
    expect(fake.received).toHaveLength(0);
  });

  it("the SDK maps a bad key to AuthenticationError", async () => {
    const bad = new Telnyx({ apiKey: "KEYwrong", baseURL: fake.url, maxRetries: 0 });
    await expect(bad.balance.retrieve()).rejects.toBeInstanceOf(AuthenticationError);
  });
});

// ---------------------------------------------------------------------------
// Send validation
// ---------------------------------------------------------------------------

describe("POST /v2/messages validation", () => {
  it("missing to → 422 / 10004 at /to", async () => {
    expectError(await send({ to: undefined }), 422, "10004", "/to");
  });

  it("non-E.164 to → 422 / 10016 by default, 400 / 40310 when configured", async () => {
    expectError(await send({ to: "0412 345 678" }), 422, "10016", "/to");
    expectError(await send({ to: "+1312555" }), 422, "10016", "/to");
    await config({ invalid_to_code: "40310" });
    expectError(await send({ to: "13125551234" }), 400, "40310", "/to");
  });

  it("no text and no media → 40316; more than 10 media_urls → 40317; a bad media URL → 10003", async () => {
    expectError(await send({ text: "" }), 400, "40316", "/text");
    const urls = Array.from({ length: 11 }, (_, i) => `https://cdn.example.com/${i}.jpg`);
    expectError(await send({ media_urls: urls }), 400, "40317", "/media_urls");
    expectError(await send({ media_urls: ["https://cdn.example.com/a.jpg", "ftp://x/b.jpg"] }), 400, "10003", "/media_urls/1");
  });

  it("a from that is not on the account → 40305; a number without messaging → 40100", async () => {
    expectError(await send({ from: "+13125559999" }), 400, "40305", "/from");
    expectError(await send({ from: N.noProfile }), 400, "40100", "/from");
    expectError(await send({ from: N.voiceOnly }), 400, "40100", "/from");
    expectError(await send({ from: N.pending }), 400, "10001", "/from");
  });

  it("a recipient on the STOP list → 40300 with a configurable HTTP status (default 400)", async () => {
    await config({ stop_list: [US_MOBILE] });
    expectError(await send(), 400, "40300", "/to");
    await config({ error_statuses: { "40300": 403 } });
    expectError(await send(), 403, "40300", "/to");
    expect((await send({ to: "+13125554321" })).status).toBe(200); // other recipients still get through
  });

  it("the 40300 status is also a start option", async () => {
    const other = await startTelnyxFake({ port: 0, host: "127.0.0.1", stopList: [US_MOBILE], errorStatuses: { "40300": 422 } });
    try {
      const r = await fetch(`${other.url}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${TELNYX_FAKE_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ from: N.primary, to: US_MOBILE, text: "x" }),
      });
      expect(r.status).toBe(422);
      expect((await r.json()).errors[0].code).toBe("40300");
    } finally {
      await other.close();
    }
  });

  it("a destination outside the profile's whitelist → 40309", async () => {
    expectError(await send({ to: "+61412345678" }), 400, "40309", "/to");
    await setProfile({ whitelisted_destinations: ["US", "AU"] });
    expect((await send({ to: "+61412345678" })).status).toBe(200);
  });

  it("insufficient funds → 402 / 20100 (no source), within balance + credit limit", async () => {
    await control("POST", "account", { balance: 0 });
    expectError(await send(), 402, "20100");
    await control("POST", "account", { balance: 0, credit_limit: 1 });
    expect((await send()).status).toBe(200);
  });

  it("other request errors: bad JSON, bad type, gsm7 text that needs UCS-2, a disabled profile", async () => {
    expectError(await api("POST", "/messages", undefined, { raw: "{not json" }), 400, "10015");
    expectError(await send({ type: "FAX" }), 400, "10015", "/type");
    expectError(await send({ text: "Hi 😀", encoding: "gsm7" }), 400, "10015", "/text");
    await setProfile({ enabled: false });
    expectError(await send(), 400, "40312");
  });

  it("records nothing for rejected sends", async () => {
    await send({ to: undefined });
    await send({ from: "+13125559999" });
    await send({ text: "" });
    expect(fake.received).toHaveLength(0);
    expect((await control("GET", "messages")).json.messages).toHaveLength(0);
  });

  it("number pool and alphanumeric senders need the messaging profile", async () => {
    const pooled = await send({ from: undefined, messaging_profile_id: TELNYX_FAKE_PROFILE_ID });
    expect(pooled.status).toBe(200);
    expect([N.primary, N.secondary, N.tollFree]).toContain(pooled.json.data.from.phone_number);
    expectError(await send({ from: undefined }), 422, "10004", "/from");
    expectError(await send({ from: undefined, messaging_profile_id: "00000000-0000-4000-8000-000000000000" }), 404, "10005", "/messaging_profile_id");
    expectError(await send({ from: "Switchboard" }), 422, "10004", "/messaging_profile_id");
    expect((await send({ from: "Switchboard", messaging_profile_id: TELNYX_FAKE_PROFILE_ID })).json.data.from.phone_number).toBe("Switchboard");
    expectError(await send({ from: "Acme", messaging_profile_id: TELNYX_FAKE_PROFILE_ID }), 400, "40306", "/from");
  });
});

// ---------------------------------------------------------------------------
// Send success, retrieve
// ---------------------------------------------------------------------------

describe("accepted sends", () => {
  it("answers 200 {data} with to[0].status queued, parts, encoding, cost, valid_until and messaging_profile_id", async () => {
    const r = await send();
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(["data"]);
    const d = r.json.data;
    expect(d.id).toMatch(UUID);
    expect(d).toMatchObject({
      record_type: "message",
      direction: "outbound",
      type: "SMS",
      text: "Hello from Switchboard",
      parts: 1,
      encoding: "GSM-7",
      num_chars: 22,
      cost: { amount: "0.0040", currency: "USD" },
      messaging_profile_id: TELNYX_FAKE_PROFILE_ID,
      errors: [],
      sent_at: null,
      completed_at: null,
    });
    expect(d.from).toMatchObject({ phone_number: N.primary });
    expect(d.to).toHaveLength(1);
    expect(d.to[0]).toMatchObject({ phone_number: US_MOBILE, status: "queued" });
    expect(d.received_at).toMatch(DATE);
    expect(d.valid_until).toMatch(DATE);
    expect(Date.parse(d.valid_until) - Date.parse(d.received_at)).toBe(4 * 3600_000);
  });

  it("counts GSM-7 and UCS-2 parts and prices per part", async () => {
    const long = await send({ text: "a".repeat(161) });
    expect(long.json.data).toMatchObject({ parts: 2, encoding: "GSM-7", cost: { amount: "0.0080" } });
    const escaped = await send({ text: "€".repeat(81) }); // escaped characters take two septets: 162 > 160
    expect(escaped.json.data).toMatchObject({ parts: 2, encoding: "GSM-7", num_chars: 81 });
    const emoji = await send({ text: "😀".repeat(35) }); // 70 UTF-16 units
    expect(emoji.json.data).toMatchObject({ parts: 1, encoding: "UCS-2", num_chars: 35 });
    const forced = await send({ text: "plain", encoding: "ucs2" });
    expect(forced.json.data.encoding).toBe("UCS-2");
    expectError(await send({ text: "a".repeat(1531) }), 400, "10015", "/text"); // 11 parts
  });

  it("media_urls make it an MMS", async () => {
    const r = await send({ media_urls: ["https://cdn.example.com/cat.jpg"], subject: "Cat" });
    expect(r.json.data).toMatchObject({ type: "MMS", parts: 1, subject: "Cat", cost: { amount: "0.0150" } });
    expect(r.json.data.media).toEqual([{ url: "https://cdn.example.com/cat.jpg", content_type: "image/jpeg", sha256: null, size: null }]);
  });

  it("cost can be null at send time (cost_at_send:false) and appears once sent", async () => {
    await config({ cost_at_send: false });
    const r = await send();
    expect(r.json.data.cost).toBeNull();
    await advance(r.json.data.id, { status: "sent" });
    expect((await api("GET", `/messages/${r.json.data.id}`)).json.data.cost).toEqual({ amount: "0.0040", currency: "USD" });
  });

  it("records the exact raw request, headers and parsed params under /__fake/messages", async () => {
    const raw = `{"to":"${US_MOBILE}",  "from":"${N.primary}","text":"raw"}`;
    const r = await api("POST", "/messages", undefined, { raw, headers: { "x-trace": "t1" } });
    const [m] = (await control("GET", "messages")).json.messages;
    expect(m.id).toBe(r.json.data.id);
    expect(m.direction).toBe("outbound");
    expect(m.request.raw_body).toBe(raw);
    expect(m.request.path).toBe("/v2/messages");
    expect(m.request.headers).toMatchObject({ authorization: `Bearer ${TELNYX_FAKE_API_KEY}`, "x-trace": "t1" });
    expect(m.request.params).toEqual({ to: US_MOBILE, from: N.primary, text: "raw" });
    expect((await control("GET", "requests")).json.requests["POST /v2/messages"]).toBe(1);
  });

  it("GET /v2/messages/{id}: the current message, 404 / 10005 when unknown, 400 / 10006 for a bad id", async () => {
    const id = (await send()).json.data.id;
    const r = await api("GET", `/messages/${id}`);
    expect(r.status).toBe(200);
    expect(r.json.data).toMatchObject({ id, to: [{ status: "queued" }] });
    expectError(await api("GET", "/messages/6b9c7a56-2a1e-4f0e-9a3c-2f1f0a7c9d11"), 404, "10005");
    const bad = await api("GET", "/messages/not-a-uuid");
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0]).toMatchObject({ code: "10006", source: { parameter: "id" } });
  });

  it("the official SDK sends and retrieves through the fake", async () => {
    const sent = await client.messages.send({ from: N.primary, to: US_MOBILE, text: "via sdk" });
    expect(sent.data?.to?.[0]?.status).toBe("queued");
    const got = await client.messages.retrieve(sent.data!.id!);
    expect(got.data?.id).toBe(sent.data!.id);
  });
});

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

describe("webhooks on /__fake/advance", () => {
  it("delivered: message.sent then message.finalized to the profile URL, both verified by the SDK", async () => {
    await setProfile({ webhook_url: rx.url("/profile") });
    const id = (await send()).json.data.id;
    const a = await advance(id);
    expect(a.status).toBe(200);
    expect(a.json.events).toEqual(["message.sent", "message.finalized"]);
    expect(rx.hits.map((h) => h.path)).toEqual(["/profile", "/profile"]);
    const [sent, final] = await Promise.all(rx.hits.map(unwrap)) as Json[];
    expect(sent.data).toMatchObject({ event_type: "message.sent", record_type: "event", payload: { id, to: [{ status: "sent" }] } });
    expect(sent.data.id).toMatch(UUID);
    expect(sent.data.occurred_at).toMatch(DATE);
    expect(sent.data.payload.sent_at).toMatch(DATE);
    expect(sent.data.payload.valid_until).toBeNull();
    expect(sent.meta).toEqual({ attempt: 1, delivered_to: rx.url("/profile") });
    expect(final.data).toMatchObject({ event_type: "message.finalized", payload: { id, to: [{ status: "delivered" }], errors: [] } });
    expect(final.data.payload.completed_at).toMatch(DATE);
    expect(final.data.id).not.toBe(sent.data.id);
    expect(rx.hits[0].headers["content-type"]).toBe("application/json");
    expect((await api("GET", `/messages/${id}`)).json.data.to[0].status).toBe("delivered");
    expect(fake.pushes.map((p) => [p.event_type, p.status])).toEqual([["message.sent", 200], ["message.finalized", 200]]);
  });

  it("delivery_failed carries error 40008 and keeps the cost", async () => {
    await setProfile({ webhook_url: rx.url("/p") });
    const id = (await send()).json.data.id;
    await advance(id, { status: "delivery_failed" });
    const final = parsed(rx.hits[1]);
    expect(final.data.payload.to[0].status).toBe("delivery_failed");
    expect(final.data.payload.errors).toHaveLength(1);
    expect(final.data.payload.errors[0]).toMatchObject({ code: "40008" });
    expect(final.data.payload.cost).toEqual({ amount: "0.0040", currency: "USD" });
  });

  it("sending_failed: only message.finalized, error 40014, cost null, and the charge is refunded", async () => {
    await setProfile({ webhook_url: rx.url("/p") });
    await control("POST", "account", { balance: 0.004 });
    const id = (await send()).json.data.id;
    expect((await api("GET", "/balance")).json.data.balance).toBe("0.00");
    expectError(await send(), 402, "20100");
    const a = await advance(id, { status: "sending_failed" });
    expect(a.json.events).toEqual(["message.finalized"]);
    const final = parsed(rx.hits[0]);
    expect(final.data.payload).toMatchObject({ to: [{ status: "sending_failed" }], cost: null, sent_at: null });
    expect(final.data.payload.errors[0].code).toBe("40014");
    expect((await send()).status).toBe(200); // the refund made room for another send
  });

  it("delivery_unconfirmed and expired are final statuses too; error_code overrides the default", async () => {
    await setProfile({ webhook_url: rx.url("/p") });
    const a = (await send()).json.data.id;
    await advance(a, { status: "delivery_unconfirmed" });
    expect(parsed(rx.hits[1]).data.payload.to[0].status).toBe("delivery_unconfirmed");
    const b = (await send()).json.data.id;
    await advance(b, { status: "delivery_failed", error_code: "40006" });
    expect(parsed(rx.hits[3]).data.payload.errors[0].code).toBe("40006");
    const c = (await send()).json.data.id;
    await advance(c, { status: "expired" });
    expect(parsed(rx.hits[5]).data.payload).toMatchObject({ to: [{ status: "expired" }], errors: [{ code: "40005" }] });
  });

  it("steps: sent first, then finalized; a finalized message cannot move again", async () => {
    await setProfile({ webhook_url: rx.url("/p") });
    const id = (await send()).json.data.id;
    expect((await advance(id, { status: "sent" })).json.events).toEqual(["message.sent"]);
    expect((await advance(id, { status: "sending_failed" })).status).toBe(409);
    expect((await advance(id)).json.events).toEqual(["message.finalized"]);
    expect((await advance(id)).status).toBe(409);
    expect((await advance("6b9c7a56-2a1e-4f0e-9a3c-2f1f0a7c9d11")).status).toBe(404);
    expect((await advance(id, { status: "bogus" })).status).toBe(400);
  });

  it("message.received for inbound goes to the receiving number's profile", async () => {
    await setProfile({ webhook_url: rx.url("/inbound") });
    const r = await control("POST", "inbound", { from: US_MOBILE, to: N.primary, text: "Hi there" });
    expect(r.status).toBe(200);
    expect(rx.hits).toHaveLength(1);
    const event = (await unwrap(rx.hits[0])) as Json;
    expect(event.data).toMatchObject({
      event_type: "message.received",
      record_type: "event",
      payload: {
        id: r.json.message_id,
        direction: "inbound",
        type: "SMS",
        text: "Hi there",
        from: { phone_number: US_MOBILE },
        to: [{ phone_number: N.primary }],
        messaging_profile_id: TELNYX_FAKE_PROFILE_ID,
      },
    });
    expect(event.data.payload.received_at).toMatch(DATE);
    expect((await api("GET", `/messages/${r.json.message_id}`)).json.data.direction).toBe("inbound");
  });

  it("an inbound MMS lists its media; STOP opts the sender out (40300) and START opts back in", async () => {
    await setProfile({ webhook_url: rx.url("/inbound") });
    await control("POST", "inbound", { from: US_MOBILE, to: N.primary, media_urls: ["https://m.example.com/p.png"] });
    expect(parsed(rx.hits[0]).data.payload).toMatchObject({ type: "MMS", media: [{ url: "https://m.example.com/p.png", content_type: "image/png" }] });
    await control("POST", "inbound", { from: US_MOBILE, to: N.primary, text: " stop " });
    expectError(await send(), 400, "40300", "/to");
    await control("POST", "inbound", { from: US_MOBILE, to: N.primary, text: "START" });
    expect((await send()).status).toBe(200);
    expect((await control("POST", "inbound", { from: US_MOBILE, to: "+13125550000", text: "x" })).status).toBe(404);
  });
});

describe("webhook URL priority and retries", () => {
  it("a per-message webhook_url wins over the profile's", async () => {
    await setProfile({ webhook_url: rx.url("/profile") });
    const id = (await send({ webhook_url: rx.url("/msg") })).json.data.id;
    await advance(id);
    expect(rx.hits.map((h) => h.path)).toEqual(["/msg", "/msg"]);
  });

  it("the send response shows the effective webhook URLs", async () => {
    await setProfile({ webhook_url: rx.url("/profile"), webhook_failover_url: rx.url("/profile-fo") });
    expect((await send()).json.data).toMatchObject({ webhook_url: rx.url("/profile"), webhook_failover_url: rx.url("/profile-fo") });
    expect((await send({ use_profile_webhooks: false })).json.data).toMatchObject({ webhook_url: null, webhook_failover_url: null });
  });

  it("a failing per-message URL gets 3 attempts (meta.attempt 1..3), then the per-message failover, same data.id", async () => {
    rx.on("/msg", () => ({ status: 500 }));
    const id = (await send({ webhook_url: rx.url("/msg"), webhook_failover_url: rx.url("/msg-fo") })).json.data.id;
    await advance(id, { status: "sent" });
    expect(rx.hits.map((h) => h.path)).toEqual(["/msg", "/msg", "/msg", "/msg-fo"]);
    const bodies = rx.hits.map(parsed);
    expect(bodies.map((b) => b.meta.attempt)).toEqual([1, 2, 3, 1]);
    expect(bodies.map((b) => b.meta.delivered_to)).toEqual([rx.url("/msg"), rx.url("/msg"), rx.url("/msg"), rx.url("/msg-fo")]);
    expect(new Set(bodies.map((b) => b.data.id)).size).toBe(1);
    for (const hit of rx.hits) await unwrap(hit); // every attempt is freshly signed
    expect(fake.pushes.map((p) => p.status)).toEqual([500, 500, 500, 200]);
  });

  it("without any per-message URL the profile URL is used, then the profile's failover", async () => {
    rx.on("/profile", () => ({ status: 503 }));
    await setProfile({ webhook_url: rx.url("/profile"), webhook_failover_url: rx.url("/profile-fo") });
    const id = (await send()).json.data.id;
    await advance(id, { status: "sent" });
    expect(rx.hits.map((h) => h.path)).toEqual(["/profile", "/profile", "/profile", "/profile-fo"]);
  });

  it("per-message URLs are tried first, then the profile's (use_profile_webhooks defaults to true)", async () => {
    rx.on("/msg", () => ({ status: 404 }));
    await setProfile({ webhook_url: rx.url("/profile") });
    const id = (await send({ webhook_url: rx.url("/msg") })).json.data.id;
    await advance(id, { status: "sent" });
    expect(rx.hits.map((h) => h.path)).toEqual(["/msg", "/msg", "/msg", "/profile"]);
  });

  it("use_profile_webhooks:false and no per-message URL → no webhooks at all", async () => {
    await setProfile({ webhook_url: rx.url("/profile") });
    const id = (await send({ use_profile_webhooks: false })).json.data.id;
    const a = await advance(id);
    expect(a.json.events).toEqual(["message.sent", "message.finalized"]);
    expect(a.json.pushes).toEqual([]);
    expect(rx.hits).toHaveLength(0);
  });

  it("recovers on the third attempt; a 2xx stops the retries", async () => {
    rx.on("/flaky", (n) => ({ status: n < 3 ? 500 : 204 }));
    const id = (await send({ webhook_url: rx.url("/flaky"), webhook_failover_url: rx.url("/fo") })).json.data.id;
    await advance(id, { status: "sent" });
    expect(rx.hits.map((h) => [h.path, parsed(h).meta.attempt])).toEqual([["/flaky", 1], ["/flaky", 2], ["/flaky", 3]]);
  });

  it("an answer slower than the timeout counts as a failed attempt", async () => {
    rx.on("/slow", () => ({ delayMs: 600 })); // the fake's timeout is 300 ms here (2 s by default)
    const id = (await send({ webhook_url: rx.url("/slow"), webhook_failover_url: rx.url("/fo") })).json.data.id;
    const a = await advance(id, { status: "sent" });
    expect(a.json.pushes.map((p: Json) => [p.url, p.attempt, p.status ?? p.error])).toEqual([
      [rx.url("/slow"), 1, "no answer within 300 ms"],
      [rx.url("/slow"), 2, "no answer within 300 ms"],
      [rx.url("/slow"), 3, "no answer within 300 ms"],
      [rx.url("/fo"), 1, 200],
    ]);
  });

  it("duplicate delivery repeats the same event id; order:reverse sends finalized before sent", async () => {
    const id = (await send({ webhook_url: rx.url("/d") })).json.data.id;
    await advance(id, { duplicate: 1 });
    const events = rx.hits.map(parsed).map((b) => [b.data.event_type, b.data.id]);
    expect(events.map((e) => e[0])).toEqual(["message.sent", "message.sent", "message.finalized", "message.finalized"]);
    expect(events[0][1]).toBe(events[1][1]);
    expect(events[2][1]).toBe(events[3][1]);
    rx.clear();
    const id2 = (await send({ webhook_url: rx.url("/r") })).json.data.id;
    await advance(id2, { order: "reverse" });
    expect(rx.hits.map((h) => parsed(h).data.event_type)).toEqual(["message.finalized", "message.sent"]);
  });

  it("wait:false answers 202 at once and delivers in the background", async () => {
    rx.on("/later", () => ({ delayMs: 150 }));
    const id = (await send({ webhook_url: rx.url("/later") })).json.data.id;
    const a = await advance(id, { wait: false });
    expect(a.status).toBe(202);
    await rx.waitFor(2);
  });

  it("auto_advance_ms delivers every send without /__fake/advance", async () => {
    await config({ auto_advance_ms: 10 });
    const id = (await send({ webhook_url: rx.url("/auto") })).json.data.id;
    await rx.waitFor(2);
    expect(parsed(rx.hits[1]).data.payload).toMatchObject({ id, to: [{ status: "delivered" }] });
  });
});

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

describe("Ed25519 webhook signatures", () => {
  async function oneHit(signature?: string) {
    const id = (await send({ webhook_url: rx.url("/sig") })).json.data.id;
    await advance(id, { status: "sent", ...(signature ? { signature } : {}) });
    expect(rx.hits).toHaveLength(1);
    return rx.hits[0];
  }

  it("publishes the raw 32-byte public key in base64 at /__fake/public-key", async () => {
    const r = await control("GET", "public-key");
    expect(r.json.public_key).toBe(fake.publicKey);
    expect(Buffer.from(r.json.public_key, "base64")).toHaveLength(32);
  });

  it("signs `${telnyx-timestamp}|${raw body}` (checked with node:crypto, independently of the SDK)", async () => {
    const hit = await oneHit();
    const timestamp = hit.headers["telnyx-timestamp"];
    expect(timestamp).toMatch(/^\d+$/);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    const signature = Buffer.from(hit.headers["telnyx-signature-ed25519"], "base64");
    expect(signature).toHaveLength(64);
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(fake.publicKey, "base64").toString("base64url") },
      format: "jwk",
    });
    expect(verifyBytes(null, Buffer.from(`${timestamp}|${hit.body}`), key, signature)).toBe(true);
    expect(verifyBytes(null, Buffer.from(`${timestamp}|${hit.body} `), key, signature)).toBe(false);
  });

  it("the official SDK accepts genuine webhooks (client public key or an explicit key)", async () => {
    const hit = await oneHit();
    await expect(unwrap(hit)).resolves.toMatchObject({ data: { event_type: "message.sent" } });
    const keyless = new Telnyx({ apiKey: TELNYX_FAKE_API_KEY, baseURL: fake.url, publicKey: null });
    await expect(keyless.webhooks.unwrap(hit.body, { headers: hit.headers, key: fake.publicKey })).resolves.toBeTruthy();
  });

  it("stale (-360 s) and future (+360 s) timestamps are rejected", async () => {
    const stale = await oneHit("stale");
    expect(Number(stale.headers["telnyx-timestamp"])).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) - 300);
    await expectRejected(stale, /too old or too new/);
    rx.clear();
    const future = await oneHit("future");
    expect(Number(future.headers["telnyx-timestamp"])).toBeGreaterThan(Math.floor(Date.now() / 1000) + 299);
    await expectRejected(future, /too old or too new/);
  });

  it("a signature over the re-serialised body is rejected on the raw body (and only matches a re-serialisation)", async () => {
    const hit = await oneHit("reserialized");
    await expectRejected(hit, /does not match/);
    const reserialised = JSON.stringify(JSON.parse(hit.body));
    expect(reserialised).not.toBe(hit.body);
    await expect(client.webhooks.unwrap(reserialised, { headers: hit.headers })).resolves.toBeTruthy();
  });

  it("a truncated signature, the wrong key, a tampered body and missing headers are rejected", async () => {
    const truncated = await oneHit("truncated");
    expect(Buffer.from(truncated.headers["telnyx-signature-ed25519"], "base64")).toHaveLength(48);
    await expectRejected(truncated, /Invalid signature format/);
    for (const [mode, message] of [["wrong_key", /does not match/], ["tampered", /does not match/], ["missing", /Missing required header/]] as const) {
      rx.clear();
      await expectRejected(await oneHit(mode), message);
    }
  });

  it("an unknown signature mode is refused by the control endpoint", async () => {
    const id = (await send()).json.data.id;
    expect((await advance(id, { signature: "nope" })).status).toBe(400);
  });
});

// ---------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------

describe("scheduled messages", () => {
  const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

  it("send_at must be 5 minutes to 5 days ahead", async () => {
    expectError(await send({ send_at: inMinutes(4) }), 400, "10015", "/send_at");
    expectError(await send({ send_at: inMinutes(5 * 24 * 60 + 1) }), 400, "10015", "/send_at");
    expectError(await send({ send_at: "tomorrow" }), 400, "10015", "/send_at");
    expect(fake.received).toHaveLength(0);
    const ok = await send({ send_at: inMinutes(10) });
    expect(ok.status).toBe(200);
    expect(ok.json.data.to[0].status).toBe("scheduled");
    expect((await send({ send_at: inMinutes(5 * 24 * 60 - 1) })).status).toBe(200);
  });

  it("POST /v2/messages/schedule requires send_at", async () => {
    const body = { from: N.primary, to: US_MOBILE, text: "later" };
    expectError(await api("POST", "/messages/schedule", body), 422, "10004", "/send_at");
    const r = await api("POST", "/messages/schedule", { ...body, send_at: inMinutes(30) });
    expect(r.json.data.to[0].status).toBe("scheduled");
  });

  it("DELETE cancels while scheduled and >1 min ahead (bare message object), refunds, and refuses twice", async () => {
    await control("POST", "account", { balance: 0.004 });
    const id = (await send({ send_at: inMinutes(10) })).json.data.id;
    expectError(await send({ send_at: inMinutes(10) }), 402, "20100");
    const r = await api("DELETE", `/messages/${id}`);
    expect(r.status).toBe(200);
    expect(r.json.data).toBeUndefined();
    expect(r.json).toMatchObject({ id, record_type: "message", to: [{ status: "cancelled" }] });
    expect((await api("GET", `/messages/${id}`)).json.data.to[0].status).toBe("cancelled");
    expect((await send({ send_at: inMinutes(10) })).status).toBe(200); // the refund made room
    const again = await api("DELETE", `/messages/${id}`);
    expect(again.status).toBe(400);
    expect(again.json.errors[0].code).toBe("10015");
  });

  it("DELETE is refused within a minute of send_at, for unscheduled messages and for unknown ids", async () => {
    const id = (await send({ send_at: inMinutes(6) })).json.data.id;
    await control("POST", "clock", { advance_ms: 5 * 60_000 + 5_000 }); // 55 s before send_at
    expect((await api("DELETE", `/messages/${id}`)).status).toBe(400);
    const queued = (await send()).json.data.id;
    expect((await api("DELETE", `/messages/${queued}`)).status).toBe(400);
    expectError(await api("DELETE", "/messages/6b9c7a56-2a1e-4f0e-9a3c-2f1f0a7c9d11"), 404, "10005");
  });

  it("advancing a scheduled message releases it and pushes the usual events", async () => {
    const id = (await send({ send_at: inMinutes(10), webhook_url: rx.url("/s") })).json.data.id;
    const a = await advance(id);
    expect(a.json.events).toEqual(["message.sent", "message.finalized"]);
    expect(parsed(rx.hits[1]).data.payload.to[0].status).toBe("delivered");
  });

  it("the SDK's schedule and cancelScheduled work against the fake", async () => {
    const s = await client.messages.schedule({ from: N.primary, to: US_MOBILE, text: "sdk later", send_at: inMinutes(20) });
    expect(s.data?.to?.[0]?.status).toBe("scheduled");
    const c = await client.messages.cancelScheduled(s.data!.id!);
    expect(c.id).toBe(s.data!.id);
    expect(c.to?.[0]?.status).toBe("cancelled");
  });
});

// ---------------------------------------------------------------------------
// Numbers and balance
// ---------------------------------------------------------------------------

describe("GET /v2/phone_numbers", () => {
  it("lists every number with the meta paging block (newest first by default)", async () => {
    const r = await api("GET", "/phone_numbers");
    expect(r.status).toBe(200);
    expect(r.json.meta).toEqual({ page_number: 1, page_size: 20, total_pages: 1, total_results: 6 });
    expect(r.json.data.map((n: Json) => n.phone_number)).toEqual([N.pending, N.noProfile, N.voiceOnly, N.tollFree, N.secondary, N.primary]);
    const primary = r.json.data.find((n: Json) => n.phone_number === N.primary);
    expect(primary).toMatchObject({ record_type: "phone_number", status: "active", phone_number_type: "local", messaging_profile_id: TELNYX_FAKE_PROFILE_ID, tags: ["primary"] });
    expect(primary.id).toMatch(/^\d+$/);
    expect(r.json.data.find((n: Json) => n.phone_number === N.voiceOnly).messaging_profile_id).toBeNull();
  });

  it("pages with page[number] and page[size]", async () => {
    const p2 = await api("GET", "/phone_numbers?page[number]=2&page[size]=4");
    expect(p2.json.data).toHaveLength(2);
    expect(p2.json.meta).toEqual({ page_number: 2, page_size: 4, total_pages: 2, total_results: 6 });
    const p3 = await api("GET", "/phone_numbers?page%5Bnumber%5D=3&page%5Bsize%5D=4");
    expect(p3.json.data).toEqual([]);
    expect(p3.json.meta.page_number).toBe(3);
    const bad = await api("GET", "/phone_numbers?page[size]=251");
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0]).toMatchObject({ code: "10015", source: { parameter: "page[size]" } });
  });

  it("filters by phone_number, status and tag", async () => {
    const byNumber = await api("GET", "/phone_numbers?filter[phone_number]=5550101");
    expect(byNumber.json.data.map((n: Json) => n.phone_number)).toEqual([N.primary]);
    expect(byNumber.json.meta.total_results).toBe(1);
    const pending = await api("GET", "/phone_numbers?filter[status]=purchase-pending");
    expect(pending.json.data.map((n: Json) => n.phone_number)).toEqual([N.pending]);
    const tagged = await api("GET", "/phone_numbers?filter[tag]=voice");
    expect(tagged.json.data.map((n: Json) => n.phone_number)).toEqual([N.voiceOnly]);
    const tollFree = await api("GET", "/phone_numbers?filter[number_type][eq]=toll_free");
    expect(tollFree.json.data.map((n: Json) => n.phone_number)).toEqual([N.tollFree]);
  });

  it("the SDK auto-pages through every number and sends its filters", async () => {
    const all: string[] = [];
    for await (const n of client.phoneNumbers.list({ "page[size]": 2 })) all.push(n.phone_number);
    expect(all).toHaveLength(6);
    expect(fake.requestCounts()["GET /v2/phone_numbers"]).toBe(3);
    const active: string[] = [];
    for await (const n of client.phoneNumbers.list({ filter: { status: "active" } })) active.push(n.phone_number);
    expect(active.sort()).toEqual([N.primary, N.secondary, N.tollFree, N.voiceOnly, N.noProfile].sort());
  });

  it("GET /v2/phone_numbers/messaging: features are null for voice-only numbers", async () => {
    const r = await api("GET", "/phone_numbers/messaging");
    expect(r.json.meta.total_results).toBe(6);
    const by = (num: string) => r.json.data.find((n: Json) => n.phone_number === num);
    const full = { domestic_two_way: true, international_inbound: true, international_outbound: true };
    expect(by(N.primary)).toMatchObject({ record_type: "messaging_phone_number", type: "long-code", messaging_profile_id: TELNYX_FAKE_PROFILE_ID, features: { sms: full, mms: full } });
    expect(by(N.voiceOnly).features).toEqual({ sms: null, mms: null });
    expect(by(N.noProfile)).toMatchObject({ messaging_profile_id: null, features: { sms: full } });
    expect(by(N.tollFree).type).toBe("toll-free");
    const one = await api("GET", `/phone_numbers/${by(N.voiceOnly).id}/messaging`);
    expect(one.json.data).toMatchObject({ phone_number: N.voiceOnly, features: { sms: null, mms: null } });
    expectError(await api("GET", "/phone_numbers/999/messaging"), 404, "10005");
    const filtered = await api("GET", `/phone_numbers/messaging?filter[type]=tollfree`);
    expect(filtered.json.data.map((n: Json) => n.phone_number)).toEqual([N.tollFree]);
  });
});

describe("GET /v2/balance", () => {
  it("money fields are strings", async () => {
    const r = await api("GET", "/balance");
    expect(r.json.data).toEqual({
      record_type: "balance",
      balance: "25.00",
      credit_limit: "0.00",
      available_credit: "25.00",
      pending: "0.00",
      currency: "USD",
    });
    await control("POST", "account", { balance: 300, credit_limit: 100, pending: 10 });
    const sdk = await client.balance.retrieve();
    expect(sdk.data).toMatchObject({ balance: "300.00", credit_limit: "100.00", available_credit: "400.00", pending: "10.00" });
    for (const field of ["balance", "credit_limit", "available_credit", "pending"] as const) expect(sdk.data?.[field]).toMatch(MONEY2);
  });

  it("sends are deducted from the balance until it runs out", async () => {
    await control("POST", "account", { balance: 0.01 });
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(200);
    expectError(await send(), 402, "20100"); // 0.002 left < 0.004
    expect(fake.received).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------
// Rate limits, idempotency
// ---------------------------------------------------------------------------

describe("rate limits", () => {
  it("x-ratelimit-* headers are on every response", async () => {
    const responses = [
      await api("GET", "/balance"),
      await send(),
      await send({ to: undefined }),
      await api("GET", "/balance", undefined, { key: null }),
      await api("GET", "/nope"),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 422, 401, 404]);
    for (const r of responses) {
      expect(r.headers.get("x-ratelimit-limit")).toBe("6000");
      expect(Number(r.headers.get("x-ratelimit-reset"))).toBeGreaterThan(0);
    }
    expect(responses.slice(0, 3).map((r) => r.headers.get("x-ratelimit-remaining"))).toEqual(["5999", "5998", "5997"]);
  });

  it("429 / 10011 once the window is exhausted, and nothing is recorded", async () => {
    await config({ rate_limit: { limit: 2, window_seconds: 60 } });
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(200);
    const r = await send();
    expect(r.status).toBe(429);
    expect(r.json).toEqual({
      errors: [expect.objectContaining({
        code: "10011",
        title: "Too many requests",
        detail: "You have exceeded the maximum number of allowed requests.",
      })],
    });
    expect(r.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(r.headers.get("x-ratelimit-reset"))).toBeGreaterThan(0);
    expect(fake.received).toHaveLength(2);
    await expect(client.balance.retrieve()).rejects.toBeInstanceOf(RateLimitError);
  });
});

describe("Idempotency-Key", () => {
  const withKey = (key: string, extra: Json = {}) => send(extra, { headers: { "idempotency-key": key } });

  it("is ignored by default: the same key sends twice", async () => {
    const a = await withKey("order-1");
    const b = await withKey("order-1");
    expect(a.json.data.id).not.toBe(b.json.data.id);
    expect(fake.received).toHaveLength(2);
  });

  it("with replay on: same key and body → the same answer for 24 h; another body → 422", async () => {
    await config({ idempotency_replay: true });
    const a = await withKey("order-1");
    const b = await withKey("order-1");
    expect(b.status).toBe(200);
    expect(b.json.data.id).toBe(a.json.data.id);
    expect(fake.received).toHaveLength(1);
    const conflict = await withKey("order-1", { text: "different" });
    expect(conflict.status).toBe(422);
    expect(conflict.json.errors[0].source).toEqual({ parameter: "Idempotency-Key" });
    expect((await withKey("order-2")).json.data.id).not.toBe(a.json.data.id);
    expect((await withKey("bad key!")).status).toBe(400);
    await control("POST", "clock", { advance_ms: 24 * 3600_000 + 1000 });
    expect((await withKey("order-1")).json.data.id).not.toBe(a.json.data.id);
    expect(fake.received).toHaveLength(3);
  });

  it("failed answers are not stored, so a corrected request with the same key goes through", async () => {
    await config({ idempotency_replay: true });
    expect((await withKey("k1", { to: undefined })).status).toBe(422);
    expect((await withKey("k1")).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

describe("fault injection", () => {
  const fault = (f: Json) => control("POST", "faults", f);

  it("latency: the send is accepted and the answer comes late", async () => {
    await fault({ mode: "latency", delay_ms: 400, path: "/messages" });
    const started = Date.now();
    const r = await send();
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(fake.received).toHaveLength(1);
    const quick = Date.now();
    await send();
    expect(Date.now() - quick).toBeLessThan(300);
  });

  it("latency long enough to trip a client timeout still records the message", async () => {
    await fault({ mode: "latency", delay_ms: 5_000 });
    await expect(send({}, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(fake.received).toHaveLength(1);
  });

  it("reset after recording: the client sees a connection error, but the message exists", async () => {
    await fault({ mode: "reset", path: "/v2/messages", method: "POST" });
    await expect(send()).rejects.toThrow();
    expect(fake.received).toHaveLength(1);
    const id = fake.received[0].id;
    expect((await api("GET", `/messages/${id}`)).json.data.to[0].status).toBe("queued");
  });

  it("reset before processing records nothing", async () => {
    await fault({ mode: "reset", process: false });
    await expect(send()).rejects.toThrow();
    expect(fake.received).toHaveLength(0);
  });

  it("500 and 503 answer 10007 without sending; process:true sends and still answers 500", async () => {
    await fault({ mode: "http500" });
    expectError(await send(), 500, "10007");
    await fault({ mode: "http503" });
    expectError(await send(), 503, "10007");
    expect(fake.received).toHaveLength(0);
    await fault({ mode: "http500", process: true });
    expectError(await send(), 500, "10007");
    expect(fake.received).toHaveLength(1);
  });

  it("429 for the next N requests, then normal", async () => {
    await fault({ mode: "http429", count: 2 });
    const statuses = [(await send()).status, (await send()).status, (await send()).status];
    expect(statuses).toEqual([429, 429, 200]);
    expect(fake.received).toHaveLength(1);
  });

  it("timeout: never answers and sends nothing", async () => {
    await fault({ mode: "timeout" });
    await expect(send({}, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(fake.received).toHaveLength(0);
  });

  it("faults honour path, after and count; DELETE clears them; bad modes are refused", async () => {
    await fault({ mode: "http500", path: "/balance", after: 1, count: 1 });
    expect((await send()).status).toBe(200);
    expect((await api("GET", "/balance")).status).toBe(200);
    expect((await api("GET", "/balance")).status).toBe(500);
    expect((await api("GET", "/balance")).status).toBe(200);
    await fault({ mode: "http500" });
    expect((await control("GET", "faults")).json.faults).toHaveLength(1);
    await control("DELETE", "faults");
    expect((await send()).status).toBe(200);
    expect((await fault({ mode: "explode" })).status).toBe(400);
    fake.addFault({ mode: "http503" });
    expect((await send()).status).toBe(503);
  });
});

describe("control surface", () => {
  it("reset clears messages, pushes, counters and config", async () => {
    await config({ invalid_to_code: "40310" });
    await send({ webhook_url: rx.url("/x") });
    await advance(fake.received[0].id);
    expect(fake.pushes.length).toBeGreaterThan(0);
    expect((await control("POST", "reset")).status).toBe(200);
    expect(fake.received).toHaveLength(0);
    expect(fake.pushes).toHaveLength(0);
    expect(fake.requestCounts()).toEqual({});
    expectError(await send({ to: "12" }), 422, "10016", "/to");
    expect((await control("GET", "nope")).status).toBe(404);
  });

  it("the programmatic advance and inbound match the control endpoints", async () => {
    await setProfile({ webhook_url: rx.url("/prog") });
    const id = (await send()).json.data.id;
    const pushes = await fake.advance(id, { status: "delivery_failed" });
    expect(pushes.map((p) => [p.event_type, p.attempt, p.status])).toEqual([["message.sent", 1, 200], ["message.finalized", 1, 200]]);
    const inbound = await fake.inbound({ from: US_MOBILE, to: N.secondary, text: "yo" });
    expect(inbound.pushes).toHaveLength(1);
    expect(inbound.message_id).toMatch(UUID);
    await expect(fake.advance(inbound.message_id)).rejects.toThrow(/inbound/);
  });
});
