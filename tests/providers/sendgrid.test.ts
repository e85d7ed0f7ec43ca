/**
 * SendGrid: the adapter against the fake (every success and error path), the fake's own
 * SendGrid behaviour (providers.md §6 checklist), Event Webhook signatures and parsing,
 * and the sendgrid_send_email schema.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { redirectToCanary } from "../support/redirect-canary.ts";
import { z } from "zod";
import { startSendGridFake, type SendGridFake } from "../../packages/devstack/src/fakes/sendgrid.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import {
  allRecipients,
  base64DecodedSize,
  MAX_ATTACHMENT_BYTES,
} from "../../supabase/functions/_shared/providers/email.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import {
  createSendGridClient,
  derToRawSignature,
  parseSendGridEvents,
  type SendGridConfig,
  type SendGridCredentials,
  verifyEventWebhookSignature,
} from "../../supabase/functions/_shared/providers/sendgrid.ts";
import { ProviderError } from "../../supabase/functions/_shared/providers/types.ts";
import { sendgridSendEmail, sendgridSendEmailSchema, sendgridTools } from "../../supabase/functions/_shared/tools/sendgrid.ts";
import type { ToolContext } from "../../supabase/functions/_shared/tools/types.ts";

const DEMO = { api_key: "SG.demo-key" };
const TEMPLATE = "d-0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------
// A webhook receiver that keeps the raw bytes (signatures cover them exactly)
// ---------------------------------------------------------------------------

interface Post {
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
}

async function startReceiver() {
  const posts: Post[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      posts.push({ headers: req.headers, raw: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  return { url, posts, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function waitFor<T>(fn: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function expectProviderError(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ProviderError);
    return e as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

const verifyPost = (fake: SendGridFake, post: Post, extra: { now?: number } = {}) =>
  verifyEventWebhookSignature({
    publicKey: fake.publicKey,
    signature: post.headers["x-twilio-email-event-webhook-signature"] as string,
    timestamp: post.headers["x-twilio-email-event-webhook-timestamp"] as string,
    rawBody: new Uint8Array(post.raw),
    ...extra,
  });

let fake: SendGridFake;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let config: SendGridConfig;

/** The local stack's policy: the fake is on loopback, at a custom base_url. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
/** A hosted deployment's policy. */
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };

/** A client for a connection, built the only way there is: with a network policy. */
const sg = (credentials: SendGridCredentials, cfg: SendGridConfig, network = local) =>
  createSendGridClient({ credentials, config: cfg, network });

beforeAll(async () => {
  [fake, receiver] = await Promise.all([startSendGridFake({ port: 0, webhookDelayMs: 5 }), startReceiver()]);
  config = { base_url: fake.url, from_email: "agent@example.com", from_name: "Agent" };
});
afterAll(async () => {
  await Promise.all([fake.close(), receiver.close()]);
});
beforeEach(() => {
  fake.reset();
  receiver.posts.length = 0;
});

/** Raw call to the fake, for checks below the adapter. */
async function api(method: string, path: string, body?: unknown, key: string | null = "SG.demo-key") {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}
const control = (path: string, body?: unknown) => api("POST", `/__fake/${path}`, body ?? {}, null);

// ---------------------------------------------------------------------------
// Adapter: success paths
// ---------------------------------------------------------------------------

describe("sendMail against the fake", () => {
  it("sends content with cc/bcc, reply_to, attachments, categories, send_at and our operation id", async () => {
    const sendAt = new Date(Date.now() + 3_600_000).toISOString();
    const result = await sg(DEMO, config).sendMail({
      to: ["a@example.com", "b@example.com"],
      cc: ["c@example.com"],
      bcc: ["d@example.com"],
      subject: "Hello",
      text: "plain",
      html: "<p>html</p>",
      reply_to: "reply@example.com",
      attachments: [{ filename: "a.txt", content: btoa("hello"), content_type: "text/plain" }],
      categories: ["agents", "test"],
      send_at: sendAt,
    }, { operationId: "op-123" });

    expect(result.sentCount).toBe(4);
    expect(result.providerMessageIds).toHaveLength(1);
    const id = result.providerMessageIds[0];
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(result.recipients.every((r) => r.ok && r.message_id === id)).toBe(true);

    expect(fake.messages).toHaveLength(1);
    const msg = fake.messages[0];
    expect(msg.message_id).toBe(id);
    expect(msg.from).toEqual({ email: "agent@example.com", name: "Agent" });
    expect(msg.reply_to).toEqual({ email: "reply@example.com" });
    expect(msg.content).toEqual([{ type: "text/plain", value: "plain" }, { type: "text/html", value: "<p>html</p>" }]);
    expect(msg.personalizations).toEqual([{
      to: [{ email: "a@example.com" }, { email: "b@example.com" }],
      cc: [{ email: "c@example.com" }],
      bcc: [{ email: "d@example.com" }],
    }]);
    expect(msg.attachments).toEqual([{ filename: "a.txt", type: "text/plain", size: 5 }]);
    expect(msg.categories).toEqual(["agents", "test"]);
    expect(msg.custom_args).toEqual({ switchboard_operation_id: "op-123" });
    expect(msg.send_at).toBe(Math.floor(Date.parse(sendAt) / 1000));
  });

  it("sends a dynamic template with its data", async () => {
    const result = await sg(DEMO, { ...config, from_name: undefined }).sendMail({
      to: ["a@example.com"],
      template_id: TEMPLATE,
      dynamic_template_data: { name: "Ada" },
    });
    expect(result.sentCount).toBe(1);
    const msg = fake.messages[0];
    expect(msg.template_id).toBe(TEMPLATE);
    expect(msg.from).toEqual({ email: "agent@example.com" });
    expect(msg.personalizations[0].dynamic_template_data).toEqual({ name: "Ada" });
    expect(msg.content).toBeUndefined();
  });

  it("asks for a fresh connection per call (Deno's fetch re-sends on a dropped reused connection)", async () => {
    const seen: Headers[] = [];
    const spy: typeof fetch = (url, init) => {
      seen.push(new Headers(init?.headers));
      return fetch(url, init);
    };
    await sg(DEMO, config).sendMail({ to: ["a@example.com"], subject: "s", text: "t" }, { fetch: spy });
    await sg(DEMO, config).testConnection({ fetch: spy });
    expect(seen.map((h) => h.get("connection"))).toEqual(["close", "close"]);
  });

  it("treats a sandbox-mode 200 as validated but not sent", async () => {
    // Injected fetch turns sandbox mode on: the adapter never does so itself.
    const sandboxFetch: typeof fetch = (url, init) => {
      const body = JSON.parse(String(init?.body));
      body.mail_settings = { sandbox_mode: { enable: true } };
      return fetch(url, { ...init, body: JSON.stringify(body) });
    };
    const result = await sg(DEMO, config).sendMail({ to: ["a@example.com"], subject: "s", text: "t" }, { fetch: sandboxFetch });
    expect(result.sentCount).toBe(0);
    expect(result.providerMessageIds).toEqual([]);
    expect(result.data.status).toBe("sandbox");
  });
});

// ---------------------------------------------------------------------------
// Adapter: error paths
// ---------------------------------------------------------------------------

describe("sendMail error mapping", () => {
  const mail = { to: ["a@example.com"], subject: "s", text: "t" };

  it("400 → invalid, keeping SendGrid's errors[]", async () => {
    const e = await expectProviderError(sg(DEMO, config).sendMail({ to: ["a@example.com", "a@example.com"], text: "t" }));
    expect(e.kind).toBe("invalid");
    expect(e.maybeSent).toBe(false);
    expect(e.details.status).toBe(400);
    const fields = (e.details.errors as { field: string }[]).map((x) => x.field);
    expect(fields).toEqual(["personalizations.0", "subject"]);
  });

  it("401 → auth", async () => {
    const e = await expectProviderError(sg({ api_key: "SG.wrong" }, config).sendMail(mail));
    expect(e.kind).toBe("auth");
    expect(e.details.errors).toEqual([{ message: "Permission denied, wrong credentials", field: null, help: null }]);
  });

  it("403 → forbidden for a key without mail.send", async () => {
    const e = await expectProviderError(sg({ api_key: "SG.no-send-scope" }, config).sendMail(mail));
    expect(e.kind).toBe("forbidden");
    expect(e.message).toContain("access forbidden");
  });

  it("403 → forbidden with field 'from' for an unverified sender", async () => {
    const e = await expectProviderError(sg(DEMO, { ...config, from_email: "nobody@example.com" }).sendMail(mail));
    expect(e.kind).toBe("forbidden");
    expect(e.details.field).toBe("from");
    expect(e.message).toContain("verified Sender Identity");
  });

  it("413 → too_large above 30 MB", async () => {
    const big = "A".repeat(31 * 1024 * 1024); // valid base64, ~23 MB decoded, >30 MB request
    const e = await expectProviderError(
      sg(DEMO, config).sendMail({ ...mail, attachments: [{ filename: "big.bin", content: big }] }),
    );
    expect(e.kind).toBe("too_large");
    expect(e.details.status).toBe(413);
    expect(fake.messages).toHaveLength(0);
  });

  it("accepts a large (20 MB) attachment below the 30 MB request limit", async () => {
    const content = "QUJD".repeat(5 * 1024 * 1024); // 20 MiB of base64, 15 MiB decoded
    const result = await sg(DEMO, config).sendMail({ ...mail, attachments: [{ filename: "big.bin", content }] });
    expect(result.sentCount).toBe(1);
    expect(fake.messages[0].attachments?.[0].size).toBe(15 * 1024 * 1024);
  });

  it("429 → rate_limited with retry_after from X-RateLimit-Reset (epoch seconds)", async () => {
    await control("config", { rate_limit: { limit: 2, window_seconds: 60 } });
    try {
      await sg(DEMO, config).sendMail(mail);
      await sg(DEMO, config).sendMail(mail);
      const before = Math.floor(Date.now() / 1000);
      const e = await expectProviderError(sg(DEMO, config).sendMail(mail));
      expect(e.kind).toBe("rate_limited");
      const reset = e.details.rate_limit_reset as number;
      expect(reset).toBeGreaterThan(before);
      expect(reset).toBeLessThanOrEqual(before + 61);
      expect(e.details.retry_after).toBeGreaterThan(0);
      expect(e.details.retry_after).toBeLessThanOrEqual(61);
      expect(e.details.errors).toEqual([{ message: "too many requests", field: null, help: null }]);
    } finally {
      await control("config", { rate_limit: { limit: 1_000_000, window_seconds: 60 } });
    }
  });

  it("5xx on a send → transient and maybe-sent (the shared rule: SendGrid may have acted), one request", async () => {
    await control("faults", { mode: "http500" });
    const e = await expectProviderError(sg(DEMO, config).sendMail(mail));
    expect(e.kind).toBe("transient");
    expect(e.details.status).toBe(500);
    expect(e.details.errors).toEqual([{ message: "internal server error", field: null, help: null }]);
    expect(e.maybeSent).toBe(true);
    expect(fake.received.filter((r) => r.path === "/v3/mail/send")).toHaveLength(1);
  });

  it("timeout → timeout, maybe-sent, exactly one request (no blind retry)", async () => {
    await control("faults", { mode: "timeout" });
    const e = await expectProviderError(sg(DEMO, config).sendMail(mail, { timeoutMs: 200 }));
    expect(e.kind).toBe("timeout");
    expect(e.maybeSent).toBe(true);
    expect(fake.received.filter((r) => r.path === "/v3/mail/send")).toHaveLength(1);
    expect(fake.received[0].fault).toBe("timeout");
  });

  it("connection dropped after the request was sent → unavailable, maybe-sent, one request", async () => {
    await control("faults", { mode: "drop" });
    const e = await expectProviderError(sg(DEMO, config).sendMail(mail));
    expect(e.kind).toBe("unavailable");
    expect(e.maybeSent).toBe(true);
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0].fault).toBe("drop");
  });

  it("connection refused → unavailable, known not sent", async () => {
    const gone = await startSendGridFake({ port: 0 });
    await gone.close();
    const e = await expectProviderError(sg(DEMO, { ...config, base_url: gone.url }).sendMail(mail));
    expect(e.kind).toBe("unavailable");
    expect(e.maybeSent).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// testConnection
// ---------------------------------------------------------------------------

describe("redirects are never followed", () => {
  it("a 3xx on a send or a test is a not-sent provider error, and the target never hears of it", async () => {
    const r = await redirectToCanary("/v3/mail/send");
    try {
      const client = sg(DEMO, { ...config, base_url: r.url });
      const send = await expectProviderError(client.sendMail({ to: ["a@example.com"], subject: "s", text: "t" }));
      expect(send).toMatchObject({ kind: "permanent", maybeSent: false, details: { provider: "sendgrid", status: 302 } });
      expect(send.message).toMatch(/redirect/);
      expect(await expectProviderError(client.testConnection())).toMatchObject({ kind: "permanent", details: { status: 302 } });
      expect(r.canaryConnections()).toBe(0);
    } finally {
      await r.close();
    }
  });
});

describe("testConnection", () => {
  it("ok when the key has mail.send", async () => {
    const r = await sg(DEMO, config).testConnection();
    expect(r.ok).toBe(true);
  });
  it("names the missing scope", async () => {
    const r = await sg({ api_key: "SG.no-send-scope" }, config).testConnection();
    expect(r).toMatchObject({ ok: false, details: { missing_scopes: ["mail.send"] } });
    expect(r.message).toContain("mail.send");
  });
  it("fails (without throwing) for a bad key", async () => {
    const r = await sg({ api_key: "SG.bad" }, config).testConnection();
    expect(r.ok).toBe(false);
    expect(r.details?.status).toBe(401);
  });
  it("throws when SendGrid is unavailable", async () => {
    await control("faults", { mode: "http500" });
    const e = await expectProviderError(sg(DEMO, config).testConnection());
    expect(e).toMatchObject({ kind: "transient", maybeSent: false }); // a 5xx on a read sent nothing
  });
});

// ---------------------------------------------------------------------------
// The fake itself: SendGrid behaviours from the checklist
// ---------------------------------------------------------------------------

describe("SendGrid fake", () => {
  const valid = () => ({
    personalizations: [{ to: [{ email: "a@example.com" }] }],
    from: { email: "agent@example.com" },
    subject: "s",
    content: [{ type: "text/plain", value: "t" }],
  });

  it("401 with errors[] for a missing key; X-RateLimit-* on every /v3 response", async () => {
    const r = await api("POST", "/v3/mail/send", valid(), null);
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ errors: [{ message: "authorization required", field: null, help: null }] });
    for (const res of [r, await api("GET", "/v3/scopes"), await api("POST", "/v3/mail/send", valid())]) {
      expect(res.headers.get("x-ratelimit-limit")).toMatch(/^\d+$/);
      expect(res.headers.get("x-ratelimit-remaining")).toMatch(/^\d+$/);
      expect(Number(res.headers.get("x-ratelimit-reset"))).toBeGreaterThan(1_600_000_000);
    }
  });

  it("GET /v3/scopes returns the key's scopes", async () => {
    expect((await api("GET", "/v3/scopes")).body.scopes).toContain("mail.send");
    expect((await api("GET", "/v3/scopes", undefined, "SG.no-send-scope")).body.scopes).not.toContain("mail.send");
    expect((await api("GET", "/v3/scopes", undefined, "SG.nope")).status).toBe(401);
  });

  it("202 with an empty body and X-Message-Id; 200 in sandbox mode", async () => {
    const r = await api("POST", "/v3/mail/send", valid());
    expect(r.status).toBe(202);
    expect(r.body).toBeNull();
    expect(r.headers.get("x-message-id")).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const s = await api("POST", "/v3/mail/send", { ...valid(), mail_settings: { sandbox_mode: { enable: true } } });
    expect(s.status).toBe(200);
    expect(s.body).toBeNull();
  });

  it("unknown paths 404 and wrong methods 405, in the errors[] shape", async () => {
    expect((await api("GET", "/v3/nope")).status).toBe(404);
    const r = await api("GET", "/v3/mail/send");
    expect(r.status).toBe(405);
    expect(r.body.errors[0].field).toBeNull();
  });

  const many = (n: number, prefix = "r") => Array.from({ length: n }, (_, i) => ({ email: `${prefix}${i}@example.com` }));
  const cases: [string, (b: ReturnType<typeof valid>) => Record<string, unknown>, string][] = [
    ["no personalizations", (b) => ({ ...b, personalizations: [] }), "personalizations"],
    ["missing personalizations", ({ personalizations: _, ...b }) => b, "personalizations"],
    ["> 1000 personalizations", (b) => ({ ...b, personalizations: many(1001).map((a) => ({ to: [a] })) }), "personalizations"],
    ["> 1000 recipients", (b) => ({ ...b, personalizations: [{ to: many(600), cc: many(401, "c") }] }), "personalizations"],
    ["empty to", (b) => ({ ...b, personalizations: [{ to: [] }] }), "personalizations.0.to"],
    ["invalid address", (b) => ({ ...b, personalizations: [{ to: [{ email: "nope" }] }] }), "personalizations.0.to.0.email"],
    ["duplicate across to/bcc", (b) => ({
      ...b,
      personalizations: [{ to: [{ email: "a@example.com" }], bcc: [{ email: "A@example.com" }] }],
    }), "personalizations.0"],
    ["';' in a name", (b) => ({ ...b, personalizations: [{ to: [{ email: "a@example.com", name: "Doe; Jane" }] }] }), "personalizations.0.to.0.name"],
    ["',' in a cc name", (b) => ({
      ...b,
      personalizations: [{ to: [{ email: "a@example.com" }], cc: [{ email: "c@example.com", name: "Doe, J" }] }],
    }), "personalizations.0.cc.0.name"],
    ["missing from", ({ from: _, ...b }) => b, "from"],
    ["empty subject", (b) => ({ ...b, subject: "" }), "subject"],
    ["no subject", ({ subject: _, ...b }) => b, "subject"],
    ["no content", ({ content: _, ...b }) => b, "content"],
    ["empty content value", (b) => ({ ...b, content: [{ type: "text/plain", value: "" }] }), "content.0.value"],
    ["html before text", (b) => ({
      ...b,
      content: [{ type: "text/html", value: "<p>x</p>" }, { type: "text/plain", value: "x" }],
    }), "content"],
    ["reply_to with reply_to_list", (b) => ({
      ...b,
      reply_to: { email: "r@example.com" },
      reply_to_list: [{ email: "r2@example.com" }],
    }), "reply_to"],
    ["> 10 categories", (b) => ({ ...b, categories: Array.from({ length: 11 }, (_, i) => `c${i}`) }), "categories"],
    ["duplicate categories", (b) => ({ ...b, categories: ["a", "a"] }), "categories"],
    ["category > 255", (b) => ({ ...b, categories: ["x".repeat(256)] }), "categories.0"],
    ["send_at > 72 h", (b) => ({ ...b, send_at: Math.floor(Date.now() / 1000) + 73 * 3600 }), "send_at"],
    ["custom_args ≥ 10 000 bytes", (b) => ({ ...b, custom_args: { big: "x".repeat(10_000) } }), "custom_args"],
    ["attachment without content", (b) => ({ ...b, attachments: [{ filename: "a.txt" }] }), "attachments.0.content"],
    ["attachment without filename", (b) => ({ ...b, attachments: [{ content: "QQ==" }] }), "attachments.0.filename"],
    ["attachment not base64", (b) => ({ ...b, attachments: [{ filename: "a", content: "QQ=" }] }), "attachments.0.content"],
  ];
  it.each(cases)("400 for %s with field %s", async (_name, mutate, field) => {
    const r = await api("POST", "/v3/mail/send", mutate(valid()));
    expect(r.status).toBe(400);
    for (const e of r.body.errors) expect(Object.keys(e).sort()).toEqual(["field", "help", "message"]);
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(fake.messages).toHaveLength(0);
  });

  it("a template_id makes subject and content optional", async () => {
    const { subject: _s, content: _c, ...b } = valid();
    expect((await api("POST", "/v3/mail/send", { ...b, template_id: TEMPLATE })).status).toBe(202);
  });

  it("400 'Bad Request' for a body that is not JSON", async () => {
    const r = await api("POST", "/v3/mail/send", "{not json");
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBeNull();
  });

  it("event webhook settings and the signed-webhook public key", async () => {
    const patched = await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: true, url: receiver.url });
    expect(patched.body).toMatchObject({ enabled: true, url: receiver.url, delivered: true });
    expect((await api("GET", "/v3/user/webhooks/event/settings")).body.url).toBe(receiver.url);
    expect((await api("GET", "/v3/user/webhooks/event/settings/signed")).body).toEqual({ public_key: fake.publicKey });
    expect(fake.publicKey.startsWith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")).toBe(true);
    expect((await api("PATCH", "/v3/user/webhooks/event/settings/signed", { enabled: true })).body.public_key).toBe(fake.publicKey);
    expect((await api("GET", "/v3/user/webhooks/event/settings", undefined, "SG.no-send-scope")).status).toBe(200);
    expect((await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: true }, "SG.no-send-scope")).status).toBe(403);
  });
});

// ---------------------------------------------------------------------------
// Events: emitted by the fake, verified and parsed by the adapter
// ---------------------------------------------------------------------------

describe("Event Webhook", () => {
  beforeAll(async () => {
    await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: true, url: receiver.url });
  });
  afterAll(async () => {
    await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: false, url: "" });
  });

  it("posts signed processed then delivered events after an accepted send", async () => {
    const result = await sg(DEMO, config).sendMail({
      to: ["a@example.com"],
      cc: ["c@example.com"],
      subject: "s",
      text: "t",
      categories: ["one"],
    }, { operationId: "op-evt" });
    const id = result.providerMessageIds[0];
    await waitFor(() => (receiver.posts.length >= 2 ? true : undefined));

    const [first, second] = receiver.posts;
    for (const post of [first, second]) {
      expect(post.headers["content-type"]).toBe("application/json");
      expect(await verifyPost(fake, post)).toBe(true);
    }
    const processed = parseSendGridEvents(new Uint8Array(first.raw));
    const delivered = parseSendGridEvents(second.raw.toString("utf8"));
    expect(processed.map((e) => e.event)).toEqual(["processed", "processed"]);
    expect(delivered.map((e) => [e.event, e.email])).toEqual([["delivered", "a@example.com"], ["delivered", "c@example.com"]]);
    for (const e of [...processed, ...delivered]) {
      expect(e.message_id).toBe(id);
      expect(e.sg_message_id?.startsWith(`${id}.filter`)).toBe(true);
      expect(e.operation_id).toBe("op-evt");
      expect(e.category).toEqual(["one"]); // sent as a string by SendGrid for a single category
      expect(typeof e.raw.category).toBe("string");
    }
    expect(new Set([...processed, ...delivered].map((e) => e.sg_event_id)).size).toBe(4);
  });

  it("pushes every event type on demand, with duplicates sharing sg_event_id", async () => {
    const { providerMessageIds: [id] } = await sg(DEMO, config).sendMail({
      to: ["a@example.com"],
      subject: "s",
      text: "t",
      categories: ["x", "y"],
    }, { operationId: "op-push" });
    await waitFor(() => (receiver.posts.length >= 2 ? true : undefined)); // lifecycle done
    receiver.posts.length = 0;

    const types = ["deferred", "bounce", "blocked", "dropped", "open", "click", "spamreport", "unsubscribe", "group_unsubscribe"];
    const r = await control("events", { message_id: id, events: types, duplicate: 2 });
    expect(r.status).toBe(200);
    expect(r.body.statuses).toEqual([200, 200, 200]);
    expect(receiver.posts).toHaveLength(3);
    expect(receiver.posts[0].raw.equals(receiver.posts[2].raw)).toBe(true);

    for (const post of receiver.posts) expect(await verifyPost(fake, post)).toBe(true);
    const events = parseSendGridEvents(receiver.posts[0].raw.toString("utf8"));
    expect(events.map((e) => e.event)).toEqual([
      "deferred", "bounce", "bounce", "dropped", "open", "click", "spamreport", "unsubscribe", "group_unsubscribe",
    ]);
    const [, bounce, blocked, dropped] = events;
    expect(bounce).toMatchObject({ type: "bounce", status: "5.1.1" });
    expect(blocked.type).toBe("blocked");
    expect(blocked.status).toBeUndefined();
    expect(blocked.reason).toBeTruthy();
    expect(dropped.reason).toBe("Bounced Address");
    for (const e of events) {
      expect(e.category).toEqual(["x", "y"]);
      expect(e.operation_id).toBe("op-push");
      expect(e.message_id).toBe(id);
    }
    const again = parseSendGridEvents(receiver.posts[1].raw.toString("utf8"));
    expect(again.map((e) => e.sg_event_id)).toEqual(events.map((e) => e.sg_event_id));
  });

  it.each(["bad_signature", "stale", "mutate_body"] as const)("refuses a %s post", async (tamper) => {
    await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: false });
    try {
      const { providerMessageIds: [id] } = await sg(DEMO, config).sendMail({ to: ["a@example.com"], subject: "s", text: "t" });
      const r = await control("events", { message_id: id, events: ["delivered"], tamper });
      expect(r.status).toBe(200);
      expect(receiver.posts).toHaveLength(1);
      expect(await verifyPost(fake, receiver.posts[0])).toBe(false);
    } finally {
      await api("PATCH", "/v3/user/webhooks/event/settings", { enabled: true });
    }
  });

  it("the control endpoint refuses unknown messages and bad input", async () => {
    expect((await control("events", { message_id: "nope", events: ["delivered"] })).status).toBe(404);
    const { providerMessageIds: [id] } = await sg(DEMO, config).sendMail({ to: ["a@example.com"], subject: "s", text: "t" });
    expect((await control("events", { message_id: id, events: [] })).status).toBe(400);
    expect((await control("events", { message_id: id, events: ["delivered"], tamper: "nope" })).status).toBe(400);
    expect((await control("faults", { mode: "explode" })).status).toBe(400);
  });
});

// ---------------------------------------------------------------------------
// Signature verification details
// ---------------------------------------------------------------------------

describe("verifyEventWebhookSignature", () => {
  // Official test vector: sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js
  const PUBLIC_KEY =
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
  const SIGNATURE = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
  const TIMESTAMP = "1588788367";
  const PAYLOAD = JSON.stringify({ category: "example_payload", event: "test_event", message_id: "message_id" });
  const base = { publicKey: PUBLIC_KEY, signature: SIGNATURE, timestamp: TIMESTAMP, rawBody: PAYLOAD, now: 1588788367 };

  it("accepts the official SendGrid test vector", async () => {
    expect(await verifyEventWebhookSignature(base)).toBe(true);
    expect(await verifyEventWebhookSignature({ ...base, rawBody: new TextEncoder().encode(PAYLOAD) })).toBe(true);
  });
  it("refuses the vector's negative cases (other key, payload, signature, timestamp)", async () => {
    const otherKey =
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==";
    expect(await verifyEventWebhookSignature({ ...base, publicKey: otherKey })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, rawBody: "payload" })).toBe(false);
    expect(await verifyEventWebhookSignature({
      ...base,
      signature: "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=",
    })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, timestamp: "timestamp" })).toBe(false);
  });
  it("refuses stale and future timestamps beyond the tolerance", async () => {
    expect(await verifyEventWebhookSignature({ ...base, now: 1588788367 + 301 })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, now: 1588788367 - 301 })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, now: 1588788367 + 299 })).toBe(true);
    expect(await verifyEventWebhookSignature({ ...base, now: 1588788367 + 1000, toleranceSeconds: 1000 })).toBe(true);
    expect(await verifyEventWebhookSignature({ ...base, now: undefined })).toBe(false); // years old
  });
  it("refuses missing headers, garbage signatures and garbage keys without throwing", async () => {
    expect(await verifyEventWebhookSignature({ ...base, signature: null })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, timestamp: undefined })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, signature: "%%%" })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, signature: btoa("x".repeat(64)) })).toBe(false);
    expect(await verifyEventWebhookSignature({ ...base, publicKey: "bm90IGEga2V5" })).toBe(false);
  });
});

describe("derToRawSignature", () => {
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
  const toHex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString("hex") : null);
  const r32 = "ff".repeat(32);

  it("strips the sign byte of 33-byte integers and left-pads short ones", () => {
    const der = hex(`3026` + `0221` + `00${r32}` + `0201` + `05`);
    expect(toHex(derToRawSignature(der))).toBe(r32 + "00".repeat(31) + "05");
  });
  it("strips redundant leading zeros", () => {
    const der = hex(`3008` + `0203` + `000001` + `0201` + `02`);
    expect(toHex(derToRawSignature(der))).toBe("00".repeat(31) + "01" + "00".repeat(31) + "02");
  });
  it("refuses malformed DER", () => {
    expect(derToRawSignature(hex("3106020101020101"))).toBeNull(); // not a SEQUENCE
    expect(derToRawSignature(hex("3007020101020101"))).toBeNull(); // length mismatch
    expect(derToRawSignature(hex("300602010102010100"))).toBeNull(); // trailing byte
    expect(derToRawSignature(hex("3006020181020101"))).toBeNull(); // negative integer
    expect(derToRawSignature(hex(`3026` + `0222` + `0000${r32}` + `0200`).subarray(0, 38))).toBeNull();
    expect(derToRawSignature(hex(`3027` + `0222` + `01${r32}` + `00` + `0201` + `01`))).toBeNull(); // > 32 bytes
    expect(derToRawSignature(new Uint8Array())).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// Event parsing
// ---------------------------------------------------------------------------

describe("parseSendGridEvents", () => {
  it("normalises SendGrid's shapes", () => {
    const body = JSON.stringify([
      {
        email: "A@Example.com",
        timestamp: 1700000000,
        event: "bounce",
        type: "blocked",
        reason: "blocked",
        sg_event_id: "e1",
        sg_message_id: "euo2iKxdSayPF4YE4--I7A.recvd-1-6.0",
        category: "solo",
        switchboard_operation_id: "op-1",
      },
      { email: "b@example.com", timestamp: "1700000001", event: "delivered", sg_event_id: "e2", category: ["a", 1, "b"] },
      { event: "open" }, // no sg_event_id: skipped
      "garbage",
      null,
    ]);
    const [blocked, delivered, ...rest] = parseSendGridEvents(body);
    expect(rest).toEqual([]);
    expect(blocked).toMatchObject({
      sg_event_id: "e1",
      event: "bounce",
      email: "a@example.com",
      timestamp: 1700000000,
      message_id: "euo2iKxdSayPF4YE4--I7A",
      operation_id: "op-1",
      type: "blocked",
      reason: "blocked",
      category: ["solo"],
    });
    expect("status" in blocked).toBe(false);
    expect(delivered).toMatchObject({ timestamp: 1700000001, sg_message_id: null, message_id: null, operation_id: null, category: ["a", "b"] });
    expect(delivered.raw.category).toEqual(["a", 1, "b"]);
  });
  it("refuses bodies that are not a JSON array", () => {
    expect(() => parseSendGridEvents("{")).toThrow(ApiError);
    expect(() => parseSendGridEvents('{"event":"x"}')).toThrow(/array/);
    expect(parseSendGridEvents("[]")).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The sendgrid_send_email tool
// ---------------------------------------------------------------------------

describe("sendgrid_send_email schema", () => {
  const ok = { to: ["A@Example.com"], subject: "Hi", text: "Hello" };
  const issues = (input: unknown) => {
    const r = sendgridSendEmailSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  const expectIssue = (input: unknown, path: string, text?: RegExp) => {
    const found = issues(input).filter((i) => i.startsWith(`${path}: `));
    expect(found, issues(input).join("\n")).not.toHaveLength(0);
    if (text) expect(found.join("\n")).toMatch(text);
  };

  it("accepts and normalises a plain mail", () => {
    expect(sendgridSendEmailSchema.parse(ok).to).toEqual(["a@example.com"]);
    expect(issues({ to: ["a@example.com"], template_id: TEMPLATE, dynamic_template_data: { a: 1 } })).toEqual([]);
    expect(issues({ ...ok, html: "<p>x</p>", text: undefined })).toEqual([]);
  });
  it("requires subject and text/html unless template_id is set", () => {
    expectIssue({ to: ["a@example.com"], text: "x" }, "subject", /template_id/);
    expectIssue({ to: ["a@example.com"], subject: "x" }, "text", /text or html/);
  });
  it("accepts only dynamic template ids, and template data only with one", () => {
    expectIssue({ to: ["a@example.com"], template_id: "d-XYZ" }, "template_id");
    expectIssue({ to: ["a@example.com"], template_id: "0123456789abcdef0123456789abcdef" }, "template_id");
    expectIssue({ ...ok, dynamic_template_data: { a: 1 } }, "dynamic_template_data", /requires template_id/);
  });
  it("refuses duplicates across to/cc/bcc, case-insensitively", () => {
    expectIssue({ ...ok, bcc: ["a@EXAMPLE.com"] }, "bcc.0", /more than once/);
    expectIssue({ ...ok, to: ["a@example.com", "a@example.com"] }, "to.1");
  });
  it("caps to+cc+bcc at 1000 recipients", () => {
    const list = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}@example.com`);
    expect(issues({ ...ok, to: list(500, "t"), cc: list(300, "c"), bcc: list(200, "b") })).toEqual([]);
    expectIssue({ ...ok, to: list(500, "t"), cc: list(300, "c"), bcc: list(201, "b") }, "to", /1000/);
    expectIssue({ ...ok, to: list(1001, "t") }, "to");
    expectIssue({ ...ok, to: [] }, "to");
  });
  it("validates addresses, subjects and names from the shared e-mail rules", () => {
    expectIssue({ ...ok, to: ["not-an-address"] }, "to.0");
    expectIssue({ ...ok, to: [`${"a".repeat(250)}@example.com`] }, "to.0");
    expectIssue({ ...ok, subject: "a\r\nBcc: x@evil.com" }, "subject", /line breaks/);
    expectIssue({ ...ok, subject: "" }, "subject");
    expectIssue({ ...ok, subject: "x".repeat(999) }, "subject");
    expectIssue({ ...ok, reply_to: "nope" }, "reply_to");
    expectIssue({ ...ok, extra: 1 }, "", /extra/i);
  });
  it("checks categories: ≤10, unique, ≤255, single line", () => {
    expectIssue({ ...ok, categories: Array.from({ length: 11 }, (_, i) => `c${i}`) }, "categories");
    expectIssue({ ...ok, categories: ["a", "a"] }, "categories", /unique/);
    expectIssue({ ...ok, categories: ["x".repeat(256)] }, "categories.0");
    expectIssue({ ...ok, categories: ["a\nb"] }, "categories.0");
  });
  it("checks send_at: ISO date-time with offset, at most 72 h ahead", () => {
    expect(issues({ ...ok, send_at: new Date(Date.now() + 71 * 3600_000).toISOString() })).toEqual([]);
    expectIssue({ ...ok, send_at: new Date(Date.now() + 73 * 3600_000).toISOString() }, "send_at", /72 hours/);
    expectIssue({ ...ok, send_at: "tomorrow" }, "send_at");
    expectIssue({ ...ok, send_at: "2030-01-01T10:00:00" }, "send_at"); // no timezone
  });
  it("checks attachments: base64, header-safe filename, MIME type, ≤10 files, ≤10 MB decoded", () => {
    const a = { filename: "a.txt", content: btoa("hi") };
    expect(issues({ ...ok, attachments: [{ ...a, content_type: "text/plain; charset=utf-8" }] })).toEqual([]);
    expectIssue({ ...ok, attachments: [{ ...a, content: "not base64!" }] }, "attachments.0.content", /base64/);
    expectIssue({ ...ok, attachments: [{ ...a, content: "QQ=" }] }, "attachments.0.content");
    expectIssue({ ...ok, attachments: [{ ...a, filename: "a\r\n.txt" }] }, "attachments.0.filename");
    expectIssue({ ...ok, attachments: [{ ...a, filename: "" }] }, "attachments.0.filename");
    expectIssue({ ...ok, attachments: [{ ...a, content_type: "text" }] }, "attachments.0.content_type");
    expectIssue({ ...ok, attachments: Array(11).fill(a) }, "attachments");
    const sixMb = "A".repeat(Math.ceil((6 * 1024 * 1024) / 3) * 4);
    expect(base64DecodedSize(sixMb)).toBeGreaterThan(6 * 1024 * 1024 - 3);
    expectIssue({ ...ok, attachments: [{ ...a, content: sixMb }, { ...a, content: sixMb }] }, "attachments", /10 MB/);
    expect(issues({ ...ok, attachments: [{ ...a, content: sixMb }] })).toEqual([]);
    expect(MAX_ATTACHMENT_BYTES).toBe(10 * 1024 * 1024);
  });
  it("base64DecodedSize counts padding", () => {
    expect([btoa(""), btoa("a"), btoa("ab"), btoa("abc"), btoa("abcd")].map(base64DecodedSize)).toEqual([0, 1, 2, 3, 4]);
  });

  it("never crashes on random input: it parses or returns zod issues", () => {
    const anyField = fc.oneof(
      fc.anything(),
      fc.array(fc.oneof(fc.emailAddress(), fc.string(), fc.anything()), { maxLength: 5 }),
      fc.emailAddress(),
    );
    const mailish = fc.record({
      to: anyField,
      cc: anyField,
      bcc: anyField,
      subject: anyField,
      text: anyField,
      html: anyField,
      reply_to: anyField,
      attachments: fc.oneof(anyField, fc.array(fc.record({ filename: fc.string(), content: fc.base64String() }), { maxLength: 3 })),
      template_id: fc.oneof(anyField, fc.constant(TEMPLATE)),
      dynamic_template_data: anyField,
      categories: anyField,
      send_at: fc.oneof(anyField, fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
    }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), mailish), (input) => {
        const r = sendgridSendEmailSchema.safeParse(input);
        if (!r.success) expect(r.error).toBeInstanceOf(z.ZodError);
      }),
      { numRuns: 500 },
    );
  });

  it("generates a representable JSON Schema", () => {
    const schema = z.toJSONSchema(sendgridSendEmailSchema, { io: "input" }) as {
      type: string;
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { description?: string }>;
    };
    expect(schema.type).toBe("object");
    expect(schema.required).toEqual(["to"]);
    expect(schema.additionalProperties).toBe(false);
    for (const key of ["to", "subject", "template_id", "categories", "send_at", "attachments"]) {
      expect(schema.properties[key].description, key).toBeTruthy();
    }
    expect(JSON.stringify(schema)).not.toMatch(/\\0/);
  });
});

describe("sendgrid_send_email tool", () => {
  const args = () => sendgridSendEmailSchema.parse({
    to: ["A@example.com", "b@example.com"],
    cc: ["c@example.com"],
    subject: "Secret subject",
    text: "secret body",
    attachments: [{ filename: "r.pdf", content: btoa("12345"), content_type: "application/pdf" }],
    categories: ["c1"],
  });
  const ctx = (over: Partial<ToolContext> = {}): ToolContext => ({
    credentials: { api_key: "SG.demo-key" },
    config: { base_url: fake.url, from_email: "agent@example.com" },
    operationId: "op-tool",
    network: local,
    ...over,
  });

  it("is exported as sendgridTools", () => {
    expect(sendgridTools.map((t) => [t.capability, t.provider])).toEqual([["sendgrid_send_email", "sendgrid"]]);
  });
  it("recipients() are lower-case and de-duplicated", () => {
    expect(sendgridSendEmail.recipients(args())).toEqual(["a@example.com", "b@example.com", "c@example.com"]);
    expect(allRecipients({ to: ["X@a.co"], bcc: ["x@A.co", "y@a.co"] })).toEqual(["x@a.co", "y@a.co"]);
  });
  it("summarize() keeps counts and metadata, never bodies or content", () => {
    const summary = sendgridSendEmail.summarize(args());
    expect(summary).toMatchObject({
      to_count: 2,
      cc_count: 1,
      bcc_count: 0,
      recipient_count: 3,
      subject_length: 14,
      attachments: [{ filename: "r.pdf", size: 5, content_type: "application/pdf" }],
      template_id: null,
      categories: ["c1"],
    });
    const text = JSON.stringify(summary);
    for (const secret of ["secret body", "Secret subject", btoa("12345"), "@example.com"]) expect(text).not.toContain(secret);
  });
  it("execute() sends with the connection's config and our operation id", async () => {
    const result = await sendgridSendEmail.execute(ctx(), args());
    expect("sentCount" in result && result.sentCount).toBe(3);
    expect(fake.messages[0].custom_args).toEqual({ switchboard_operation_id: "op-tool" });
  });
  it("execute() refuses a custom base_url unless the policy allows custom hosts, before any request", async () => {
    await expect(sendgridSendEmail.execute(ctx({ network: hosted }), args())).rejects.toMatchObject({
      code: "invalid_request",
      status: 400,
      details: { field: "base_url", source: "connection_config" },
    });
    // Custom hosts allowed, private networks not: the guard refuses the loopback fake.
    const https = { base_url: fake.url.replace("http:", "https:"), from_email: "agent@example.com" };
    await expect(
      sendgridSendEmail.execute(ctx({ network: { ...hosted, allowCustomProviderHosts: true }, config: https }), args()),
    ).rejects.toMatchObject({ code: "invalid_request", details: { field: "base_url", host: "127.0.0.1" } });
    expect(fake.received).toHaveLength(0);
  });
  it("execute() reports a connection without API key as auth, and a stored config without from_email as 400", async () => {
    expect((await expectProviderError(sendgridSendEmail.execute(ctx({ credentials: {} }), args()))).kind).toBe("auth");
    await expect(sendgridSendEmail.execute(ctx({ config: {} }), args())).rejects.toMatchObject({
      code: "invalid_request",
      details: { field: "from_email", source: "connection_config" },
    });
  });
  it.each([
    ["from_name", { from_name: "Agent\r\nBcc: evil@attacker.test" }],
    ["from_name", { from_name: "Agent\nX-Evil: 1" }],
    ["from_name", { from_name: "Doe, Jane" }],
    ["from_email", { from_email: "agent@example.com\r\nX-Evil: 1" }],
    ["from_email", { from_email: "not an address" }],
    ["base_url", { base_url: "https://api.sendgrid.com?x=1" }],
  ])("execute() refuses a stored %s that breaks the rules (400), and nothing reaches SendGrid", async (field, change) => {
    await expect(sendgridSendEmail.execute(ctx({ config: { ...ctx().config, ...change } }), args())).rejects.toMatchObject({
      code: "invalid_request",
      status: 400,
      details: { field, source: "connection_config" },
    });
    expect(fake.received).toHaveLength(0);
  });
});
