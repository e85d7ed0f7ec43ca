/**
 * Connection config is input, and destinations are judged, end to end through the real
 * Deno functions:
 *  - a stored config that breaks the rules (CR/LF in SendGrid's or SMTP's from_name or in
 *    ClickSend's sender_id, written straight into the row as an older row or a direct write
 *    could be) answers 400 invalid_request naming the field, on the send and the test
 *    route, and the provider fake receives nothing;
 *  - a provider answering with a redirect gets a 502 and the redirect target never hears
 *    of it (Deno's fetch, not Node's);
 *  - SMTP in Deno verifies the server's certificate against tls_servername when the socket
 *    goes to an IP address (what the network guard's pinning relies on).
 * The e2e stack allows private networks and custom provider hosts (its fakes are on
 * loopback), so the guard's address checks are exercised by the netns suite instead.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callFunction, clicksendFake, connectedUser, type Connected, sendgridFake, smtpAccount, smtpFake } from "./fixtures.ts";
import { adminSql, closeAdminSql } from "./helpers.ts";

let owner: Connected;

beforeAll(async () => {
  owner = await connectedUser();
});
afterAll(() => closeAdminSql());

/** Writes config fields straight into the row, bypassing create/update_connection's rules. */
async function storeRaw(connectionId: string, change: Record<string, unknown>) {
  await adminSql()`update public.connections set config = config || ${adminSql().json(change as never)}::jsonb where id = ${connectionId}`;
}

/** Puts a config back, and the status a failed connection test sets ('error') too. */
async function restore(connectionId: string, config: Record<string, unknown>) {
  await adminSql()`
    update public.connections set config = ${adminSql().json(config as never)}::jsonb, status = 'active' where id = ${connectionId}`;
}

async function configOf(connectionId: string): Promise<Record<string, unknown>> {
  const [row] = await adminSql()`select config from public.connections where id = ${connectionId}`;
  return row.config;
}

const mail = { to: ["alice@example.org"], subject: "Hello", text: "Hi" };
const sendgridRequests = async () => (await sendgridFake.requests()).length;
const smtpMessages = async () => (await smtpFake.messages()).length;

describe("a stored config that breaks the rules is a 400, and nothing is forwarded", () => {
  const cases = [
    {
      name: "SendGrid from_name with CR/LF",
      connection: () => owner.sendgrid.id,
      change: { from_name: "Agent\r\nBcc: evil@attacker.test" },
      field: "from_name",
      routes: [["sendgrid/send", mail], ["sendgrid/test", {}]],
      received: sendgridRequests,
    },
    {
      name: "SMTP from_name with CR/LF",
      connection: () => owner.smtp.id,
      change: { from_name: "Agent\r\nBcc: evil@attacker.test" },
      field: "from_name",
      routes: [["smtp/send", mail], ["smtp/test", {}]],
      received: smtpMessages,
    },
    {
      name: "ClickSend sender_id with CR/LF",
      connection: () => owner.clicksend.id,
      change: { sender_id: "Acme\r\nX-Evil: 1" },
      field: "sender_id",
      routes: [["clicksend/sms/send", { to: ["+61411111111"], body: "Hello" }], ["clicksend/balance", {}], ["clicksend/test", {}]],
      received: () => clicksendFake.requestTotal(),
    },
  ] as const;

  for (const c of cases) {
    it(`${c.name}: every route answers 400 invalid_request naming the field`, async () => {
      const original = await configOf(c.connection());
      await storeRaw(c.connection(), c.change);
      try {
        const before = await c.received();
        for (const [route, body] of c.routes) {
          const res = await callFunction(route, owner.user.token, { body: { ...body, connection_id: c.connection() } });
          expect(res.status, `${route}: ${JSON.stringify(res.body)}`).toBe(400);
          expect(res.body.error).toMatchObject({ code: "invalid_request", details: { field: c.field, source: "connection_config" } });
          expect(JSON.stringify(res.body)).not.toContain("evil@attacker.test");
        }
        expect(await c.received()).toBe(before);
      } finally {
        await restore(c.connection(), original);
      }
    });
  }

  it("the refused test is recorded on the connection, so its owner sees why", async () => {
    const original = await configOf(owner.sendgrid.id);
    await storeRaw(owner.sendgrid.id, { from_name: "Agent\nX: 1" });
    try {
      await callFunction("sendgrid/test", owner.user.token, { body: { connection_id: owner.sendgrid.id } });
      const [row] = await adminSql()`select last_test_ok, last_test_message from public.connections where id = ${owner.sendgrid.id}`;
      expect(row).toMatchObject({ last_test_ok: false, last_test_message: expect.stringMatching(/from_name/) });
    } finally {
      await restore(owner.sendgrid.id, original);
    }
  });
});

describe("redirects are never followed (Deno's fetch)", () => {
  let canaryConnections = 0;
  let servers: http.Server[] = [];
  let redirectUrl = "";

  beforeAll(async () => {
    const canary = http.createServer((_req, res) => res.end("{}"));
    canary.on("connection", () => canaryConnections++);
    await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
    const target = `http://127.0.0.1:${(canary.address() as AddressInfo).port}/collect`;
    const redirector = http.createServer((_req, res) => res.writeHead(302, { location: target }).end());
    await new Promise<void>((r) => redirector.listen(0, "127.0.0.1", r));
    redirectUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    servers = [canary, redirector];
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

  it.each([
    ["clicksend/sms/send", "clicksend", "/v3", { to: ["+61411111111"], body: "Hello" }],
    ["clicksend/balance", "clicksend", "/v3", {}],
    ["sendgrid/send", "sendgrid", "", mail],
  ] as const)("%s: 502, not sent, and the redirect target gets no connection", async (route, provider, path, body) => {
    const id = provider === "clicksend" ? owner.clicksend.id : owner.sendgrid.id;
    const original = await configOf(id);
    await storeRaw(id, { base_url: `${redirectUrl}${path}` });
    try {
      const res = await callFunction(route, owner.user.token, { body: { ...body, connection_id: id } });
      expect(res.status).toBe(502);
      expect(res.body.error).toMatchObject({ code: "provider_error", details: { status: 302 } });
      expect(res.body.error.message).toMatch(/redirect/);
      expect(canaryConnections).toBe(0);
    } finally {
      await restore(id, original);
    }
  });

  it("the connection test reports the redirect as a failed test, still without following it", async () => {
    const original = await configOf(owner.clicksend.id);
    await storeRaw(owner.clicksend.id, { base_url: `${redirectUrl}/v3` });
    try {
      const res = await callFunction("clicksend/test", owner.user.token, { body: { connection_id: owner.clicksend.id } });
      expect(res.body).toMatchObject({ ok: false, details: { kind: "permanent", status: 302 } });
      expect(canaryConnections).toBe(0);
    } finally {
      await restore(owner.clicksend.id, original);
    }
  });
});

describe("SMTP in Deno verifies TLS against tls_servername when connecting to an IP address", () => {
  it("passes with the certificate's name and fails with another, the socket going to 127.0.0.1 both times", async () => {
    const original = await configOf(owner.smtp.id);
    const { config } = smtpAccount("tls");
    try {
      await restore(owner.smtp.id, { ...config, host: "127.0.0.1", tls_servername: "localhost" });
      const good = await callFunction("smtp/test", owner.user.token, { body: { connection_id: owner.smtp.id } });
      expect(good.body).toMatchObject({ ok: true });

      await restore(owner.smtp.id, { ...config, host: "127.0.0.1", tls_servername: "mail.example.com" });
      const bad = await callFunction("smtp/test", owner.user.token, { body: { connection_id: owner.smtp.id } });
      expect(bad.body).toMatchObject({ ok: false, details: { kind: "unavailable" } });
      expect(bad.body.message).toMatch(/TLS|certificate/i);
    } finally {
      await restore(owner.smtp.id, original);
    }
  });
});
