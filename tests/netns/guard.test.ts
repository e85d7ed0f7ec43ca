/**
 * The network guard from the attacker's side, end to end through the real Deno functions
 * of a stack that disallows private networks (as a hosted project does), inside a network
 * namespace with only loopback (tests/netns/run.sh): a bypass cannot reach anything off
 * the machine, and a canary listening on 127.0.0.1 and ::1 counts every connection made.
 *
 * For every hostile spelling × every route that contacts a user-influenced destination
 * (ClickSend sms/send, mms/send via base_url and via media_url, balance, sms/history,
 * test; SendGrid send, test; SMTP send, test), the connection's stored config is pointed
 * at the canary (written straight into the row: the point is the use-time guard, not the
 * store-time rules) and the route must answer a 4xx envelope while the canary counts
 * zero connections: a refusal counts only if nothing was connected to.
 *
 * Controls show the refusals are the guard's doing, and pin its other promises:
 *  - a public destination (PUBLIC_ADDRESS, on this namespace's loopback only) is reached;
 *  - its 302 to the canary is not followed;
 *  - DNS rebinding cannot move an SMTP connection (pinned to the judged address), and
 *    moves an HTTPS one at most to a TLS handshake: the canary never sees a request;
 *  - SMTP in Deno, connecting to the pinned address, verifies TLS against the name.
 */
import https from "node:https";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type SmtpFake, startSmtpFake } from "../../packages/devstack/src/fakes/smtp.ts";
import { callFunction, connectedUser, type Connected } from "../e2e/fixtures.ts";
import { adminSql, closeAdminSql } from "../e2e/helpers.ts";
import { PUBLIC_ADDRESS } from "./global-setup.ts";

// Every spelling of a loopback, private or link-local destination a URL parser or
// getaddrinfo accepts, plus names that resolve to one (hosts file, DNS). Written as in a URL.
const HOSTILE = [
  "127.0.0.1",
  "127.1",
  "0177.0.0.1",
  "0x7f.0.0.1",
  "0x7f000001",
  "2130706433",
  "017700000001",
  "127.0.0.1.",
  "0",
  "0.0.0.0",
  "localhost",
  "localhost.",
  "LOCALHOST",
  "canary.switchboard.test", // hosts file → 127.0.0.1
  "canary6.switchboard.test", // hosts file → ::1
  "loopback.dns.switchboard.test", // DNS → 127.0.0.1
  "loopback6.dns.switchboard.test", // DNS → ::1
  "mixed.dns.switchboard.test", // DNS → a public A and a loopback AAAA
  "metadata.dns.switchboard.test", // DNS → 169.254.169.254
  "169.254.169.254",
  "[::1]",
  "[::ffff:127.0.0.1]",
  "[0:0:0:0:0:ffff:7f00:1]",
  "[::127.0.0.1]",
  "[64:ff9b::7f00:1]",
  "[fe80::1]",
  "[fd00::1]",
];

const netnsContext = inject("netns");

interface Listener {
  connections: number;
  /** The first bytes each connection sent. */
  firstBytes: Buffer[];
}

/** A TCP listener on `host:port` that counts connections and keeps the first bytes of each. */
async function listen(server: net.Server, host: string, port: number, record: Listener): Promise<void> {
  server.on("connection", (socket) => {
    record.connections++;
    socket.once("data", (data) => record.firstBytes.push(Buffer.from(data.subarray(0, 8))));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
}

describe.skipIf(!netnsContext)("the network guard against hostile destinations (network namespace, private networks disallowed)", () => {
  let owner: Connected;
  let port: number;
  const canary: Listener = { connections: 0, firstBytes: [] };
  const publicServer: Listener = { connections: 0, firstBytes: [] };
  const servers: net.Server[] = [];
  let smtpPublic: SmtpFake;

  beforeAll(async () => {
    // The canary: raw TCP on 127.0.0.1 and ::1. It never answers; it hangs up on the first byte.
    const rawCanary = () =>
      net.createServer((socket) => {
        socket.once("data", () => socket.destroy());
        socket.setTimeout(1_000, () => socket.destroy());
      });
    const v4 = rawCanary();
    await listen(v4, "127.0.0.1", 0, canary);
    port = (v4.address() as net.AddressInfo).port;
    const v6 = rawCanary();
    await listen(v6, "::1", port, canary);
    // The public server, on the same port: every request is redirected to the canary.
    const redirector = https.createServer({ key: netnsContext!.key, cert: netnsContext!.cert }, (_req, res) => {
      res.writeHead(302, { location: `https://127.0.0.1:${port}/collect` }).end();
    });
    await listen(redirector, PUBLIC_ADDRESS, port, publicServer);
    servers.push(v4, v6, redirector);
    smtpPublic = await startSmtpFake({ host: PUBLIC_ADDRESS });
    owner = await connectedUser();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await smtpPublic?.close();
    await closeAdminSql();
  });

  /** Replaces config fields straight in the row (no store-time rules), and keeps the connection active. */
  async function store(connectionId: string, change: Record<string, unknown>) {
    await adminSql()`
      update public.connections set config = config || ${adminSql().json(change as never)}::jsonb, status = 'active'
      where id = ${connectionId}`;
  }

  const sms = { to: ["+61411111111"], body: "Hello" };
  const mms = (media: string) => ({ ...sms, subject: "Photo", media_url: media });
  const mail = { to: ["alice@example.org"], subject: "Hello", text: "Hi" };

  /** Calls a route as the connection's owner. */
  const call = (route: string, connectionId: string, body: Record<string, unknown> = {}) =>
    callFunction(route, owner.user.token, { body: { ...body, connection_id: connectionId } });

  /** Each call against `host`: the route and what to store first. */
  function attacks(host: string): [string, () => Promise<{ status: number; body: any }>][] {
    const bare = host.replace(/^\[(.*)\]$/, "$1");
    const url = `https://${host}:${port}`;
    const { clicksend, sendgrid, smtp } = {
      clicksend: owner.clicksend.id,
      sendgrid: owner.sendgrid.id,
      smtp: owner.smtp.id,
    };
    const viaClickSend = (route: string, body: Record<string, unknown> = {}) => async () => {
      await store(clicksend, { base_url: `${url}/v3` });
      return call(route, clicksend, body);
    };
    return [
      ["clicksend/sms/send", viaClickSend("clicksend/sms/send", sms)],
      ["clicksend/mms/send (base_url)", viaClickSend("clicksend/mms/send", mms(`https://${PUBLIC_ADDRESS}:${port}/a.jpg`))],
      ["clicksend/balance", viaClickSend("clicksend/balance")],
      ["clicksend/sms/history", viaClickSend("clicksend/sms/history")],
      ["clicksend/test", viaClickSend("clicksend/test")],
      ["clicksend/mms/send (media_url)", async () => {
        // ClickSend itself (here: the public server) would be reached only if the media URL passed.
        await store(clicksend, { base_url: `https://${PUBLIC_ADDRESS}:${port}/v3` });
        return call("clicksend/mms/send", clicksend, mms(`${url}/a.jpg`));
      }],
      ["sendgrid/send", async () => (await store(sendgrid, { base_url: url }), call("sendgrid/send", sendgrid, mail))],
      ["sendgrid/test", async () => (await store(sendgrid, { base_url: url }), call("sendgrid/test", sendgrid))],
      ["smtp/send", async () => (await store(smtp, { host: bare, port }), call("smtp/send", smtp, mail))],
      ["smtp/test", async () => (await store(smtp, { host: bare, port }), call("smtp/test", smtp))],
    ];
  }

  it.each(HOSTILE)("%s: every route answers 4xx and nothing is connected to", async (host) => {
    const failures: string[] = [];
    for (const [route, attack] of attacks(host)) {
      const before = { canary: canary.connections, public: publicServer.connections };
      const res = await attack();
      const connected = canary.connections - before.canary + publicServer.connections - before.public;
      if (res.status < 400 || res.status >= 500 || res.body?.error?.code !== "invalid_request" || connected > 0) {
        failures.push(`${route} → ${res.status}, ${connected} connection(s): ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  describe("controls", () => {
    it("a public destination is reached, and its redirect to the canary is not followed", async () => {
      const before = publicServer.connections;
      await store(owner.clicksend.id, { base_url: `https://${PUBLIC_ADDRESS}:${port}/v3` });
      await store(owner.sendgrid.id, { base_url: `https://public.switchboard.test:${port}` });
      for (const [route, id, body] of [
        ["clicksend/sms/send", owner.clicksend.id, sms],
        ["clicksend/balance", owner.clicksend.id, {}],
        ["sendgrid/send", owner.sendgrid.id, mail],
      ] as const) {
        const res = await call(route, id, body);
        expect(res.status, route).toBe(502);
        expect(res.body.error).toMatchObject({ code: "provider_error", details: { status: 302 } });
      }
      const test = await call("clicksend/test", owner.clicksend.id);
      expect(test.body).toMatchObject({ ok: false, details: { status: 302 } });
      expect(publicServer.connections - before).toBeGreaterThanOrEqual(4);
      expect(canary.connections).toBe(0);
    });

    it("SMTP connects to the judged address and verifies TLS against the name, not the address", async () => {
      const base = {
        port: smtpPublic.implicitTlsPort,
        security: "tls",
        tls_ca: smtpPublic.caPem,
        from_email: "agent@example.com",
      };
      // mail.switchboard.test is PUBLIC_ADDRESS (hosts file); the certificate names localhost only.
      await store(owner.smtp.id, { ...base, host: "mail.switchboard.test", tls_servername: "localhost" });
      expect((await call("smtp/test", owner.smtp.id)).body).toMatchObject({ ok: true });
      const sent = await call("smtp/send", owner.smtp.id, mail);
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      expect(smtpPublic.received).toHaveLength(1);

      // Without tls_servername the name checked is mail.switchboard.test: refused.
      await adminSql()`update public.connections set config = config - 'tls_servername' where id = ${owner.smtp.id}`;
      await store(owner.smtp.id, { ...base, host: "mail.switchboard.test" });
      const wrongName = await call("smtp/test", owner.smtp.id);
      expect(wrongName.body).toMatchObject({ ok: false, details: { kind: "unavailable" } });
      expect(wrongName.body.message).toMatch(/TLS|certificate/i);
      // Nor does the address itself pass for the certificate's name.
      await store(owner.smtp.id, { ...base, host: PUBLIC_ADDRESS });
      expect((await call("smtp/test", owner.smtp.id)).body).toMatchObject({ ok: false, details: { kind: "unavailable" } });
      expect(canary.connections).toBe(0);
    });

    it("DNS rebinding cannot move an SMTP connection: it goes to the address the guard judged", async () => {
      const before = publicServer.connections;
      // First answer PUBLIC_ADDRESS (judged), every later one 127.0.0.1 (the canary's port too).
      await store(owner.smtp.id, { host: "rebind-smtp.switchboard.test", port, tls_ca: null, tls_servername: null });
      const res = await call("smtp/test", owner.smtp.id);
      expect(res.body).toMatchObject({ ok: false });
      expect(publicServer.connections - before).toBe(1);
      expect(canary.connections).toBe(0);
    });

    it("DNS rebinding moves an HTTPS request at most to a TLS handshake: no request reaches the internal host", async () => {
      await store(owner.clicksend.id, { base_url: `https://rebind-http.switchboard.test:${port}/v3` });
      const res = await call("clicksend/balance", owner.clicksend.id);
      expect(res.status).toBeGreaterThanOrEqual(400);
      // The documented residual window: fetch resolves again and may connect to the
      // rebound address, but only ever sends a TLS ClientHello (0x16), never a request.
      for (const bytes of canary.firstBytes) expect(bytes[0], bytes.toString("latin1")).toBe(0x16);
      expect(canary.firstBytes.map((b) => b.toString("latin1")).join()).not.toMatch(/GET|POST|Authorization/);
      canary.connections = 0; // accounted for: later tests start from zero again
      canary.firstBytes.length = 0;
    });
  });
});
