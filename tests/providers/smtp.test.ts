/**
 * The SMTP adapter and the smtp_send_email tool against the real SMTP fake (real sockets,
 * real TLS with a generated CA, real AUTH).
 */
import net from "node:net";
import tls from "node:tls";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type SmtpFake, startSmtpFake } from "../../packages/devstack/src/fakes/smtp.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import {
  createSmtpClient,
  OPERATION_ID_HEADER,
  type SmtpConfig,
  type SmtpCredentials,
  type SmtpMail,
} from "../../supabase/functions/_shared/providers/smtp.ts";
import { ProviderError } from "../../supabase/functions/_shared/providers/types.ts";
import { smtpSendEmail, smtpSendEmailSchema, smtpTools } from "../../supabase/functions/_shared/tools/smtp.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/tools/types.ts";

const creds = { username: "demo", password: "demo-pass" };
/** The local stack's policy: private hosts allowed, hosted Supabase's blocked ports kept. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [25, 587] };
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };

/** A client for a connection, built the only way there is: with a network policy. */
const smtp = (credentials: SmtpCredentials, config: SmtpConfig, network: NetworkPolicy) =>
  createSmtpClient({ credentials, config, network });

let fake: SmtpFake;
let small: SmtpFake; // SIZE 20 kB, for the 552 path

beforeAll(async () => {
  [fake, small] = await Promise.all([startSmtpFake({ httpPort: 0 }), startSmtpFake({ maxSize: 20_000 })]);
});
afterAll(async () => {
  await Promise.all([fake?.close(), small?.close()]);
});
beforeEach(() => {
  fake.reset();
  small.reset();
});

const tlsConfig = (over: Partial<SmtpConfig> = {}): SmtpConfig => ({
  host: fake.host,
  port: fake.implicitTlsPort,
  security: "tls",
  from_email: "agent@example.com",
  from_name: "Agent Smith",
  tls_ca: fake.caPem,
  ...over,
});
const starttlsConfig = (over: Partial<SmtpConfig> = {}) =>
  tlsConfig({ port: fake.starttlsPort, security: "starttls", ...over });
const mail = (over: Partial<SmtpMail> = {}): SmtpMail => ({
  to: ["alice@example.org"],
  subject: "Hello",
  text: "Hi there",
  ...over,
});

/** Runs `fn`, expecting it to reject with `type`; returns the error for further checks. */
async function rejection<T extends Error>(fn: () => Promise<unknown>, type: new (...a: never[]) => T): Promise<T> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as T;
  }
  throw new Error("expected a rejection");
}

/** Nothing reached the server: no message, and (optionally) not even a TCP connection. */
function expectNothingSent(f: SmtpFake = fake, { noConnection = false } = {}) {
  expect(f.received).toHaveLength(0);
  expect(f.stats.dataTransfers).toBe(0);
  if (noConnection) expect(f.stats.connections).toBe(0);
}

describe("sending", () => {
  it("delivers a full mail over implicit TLS: text, html, cc, bcc, reply-to, attachments, operation id", async () => {
    const binary = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
    const text = "Line one\n.leading dot line\n.\n..two dots\nlast line";
    const result = await smtp(creds, tlsConfig(), local).sendMail({
        to: ["alice@example.org", "bob@example.org"],
        cc: ["carol@example.org"],
        bcc: ["dave@example.org"],
        reply_to: "replies@example.com",
        subject: "Quarterly report – ünïcødé",
        text,
        html: "<p>Hello <b>there</b></p>",
        attachments: [
          { filename: "notes.txt", content: Buffer.from("hello file").toString("base64"), content_type: "text/plain" },
          { filename: "data.bin", content: binary.toString("base64") },
        ],
      }, { operationId: "op-1234" });

    expect(result.sentCount).toBe(4);
    expect(result.providerMessageIds).toHaveLength(1);
    expect(result.recipients.map((r) => [r.to, r.ok, r.status])).toEqual([
      ["alice@example.org", true, "250"],
      ["bob@example.org", true, "250"],
      ["carol@example.org", true, "250"],
      ["dave@example.org", true, "250"],
    ]);
    expect(result.data.response).toMatch(/^250 /);

    expect(fake.received).toHaveLength(1);
    const m = fake.received[0];
    expect(m).toMatchObject({ listener: "implicit_tls", secure: true, user: "demo", outcome: "accepted" });
    expect(m.envelope).toEqual({
      mailFrom: "agent@example.com",
      rcptTo: ["alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"],
    });
    const p = m.parsed;
    expect(p.messageId).toBe(result.providerMessageIds[0]);
    expect(p.from).toEqual([{ address: "agent@example.com", name: "Agent Smith" }]);
    expect(p.to.map((a) => a.address)).toEqual(["alice@example.org", "bob@example.org"]);
    expect(p.cc.map((a) => a.address)).toEqual(["carol@example.org"]);
    expect(p.replyTo.map((a) => a.address)).toEqual(["replies@example.com"]);
    expect(p.subject).toBe("Quarterly report – ünïcødé");
    expect(p.text?.replace(/\r\n/g, "\n").trimEnd()).toBe(text);
    expect(p.html).toContain("<p>Hello <b>there</b></p>");
    expect(p.headers[OPERATION_ID_HEADER.toLowerCase()]).toBe("op-1234");
    expect(p.attachments).toEqual([
      expect.objectContaining({ filename: "notes.txt", contentType: "text/plain", size: 10 }),
      expect.objectContaining({ filename: "data.bin", size: 3000 }),
    ]);

    // Bcc: in the envelope only, never in a header.
    expect(p.bcc).toEqual([]);
    expect(p.headers.bcc).toBeUndefined();
    expect(m.raw).not.toContain("dave@example.org");
    // Dot-stuffing: the server undoes it, so lines that start with "." arrive intact and a
    // lone "." did not end the message early.
    expect(m.raw).toContain("\r\n.leading dot line\r\n.\r\n..two dots\r\nlast line");
  });

  it("delivers over STARTTLS with AUTH (html only)", async () => {
    const result = await smtp(creds, starttlsConfig(), local).sendMail(mail({ text: undefined, html: "<h1>Hi</h1>" }));
    expect(result.sentCount).toBe(1);
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0]).toMatchObject({ listener: "starttls", secure: true, user: "demo" });
    expect(fake.received[0].parsed.html).toContain("<h1>Hi</h1>");
  });

  it("verifies the certificate against tls_servername when connecting by IP", async () => {
    await smtp(creds, tlsConfig({ host: "127.0.0.1", tls_servername: "localhost" }), local).sendMail(mail());
    const err = await rejection(
      () => smtp(creds, tlsConfig({ host: "127.0.0.1", tls_servername: "mail.example.com" }), local).sendMail(mail()),
      ProviderError,
    );
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/TLS/);
    expect(fake.received).toHaveLength(1); // only the first one
  });

  it("reports a partial recipient rejection as failed recipients, not as an error", async () => {
    const result = await smtp(creds, tlsConfig(), local).sendMail(mail({ to: ["alice@example.org", "ghost@unknown.test"], cc: ["unknown@example.org"] }));
    expect(result.sentCount).toBe(1);
    expect(result.recipients).toEqual([
      expect.objectContaining({ to: "alice@example.org", ok: true }),
      expect.objectContaining({ to: "ghost@unknown.test", ok: false, status: "550", error: expect.stringContaining("5.1.1") }),
      expect.objectContaining({ to: "unknown@example.org", ok: false, status: "550" }),
    ]);
    expect(result.data.rejected).toEqual(["ghost@unknown.test", "unknown@example.org"]);
    expect(fake.received[0].envelope.rcptTo).toEqual(["alice@example.org"]);
  });
});

describe("TLS is mandatory", () => {
  it("refuses a server that does not offer STARTTLS in starttls mode, sending nothing", async () => {
    const err = await rejection(
      () => smtp(creds, starttlsConfig({ port: fake.plainPort }), local).sendMail(mail()),
      ProviderError,
    );
    expect(err.kind).toBe("unavailable");
    expect(err.maybeSent).toBe(false);
    expect(err.message).toMatch(/STARTTLS/);
    expectNothingSent();
  });

  it("refuses a plaintext server in implicit-TLS mode", async () => {
    const err = await rejection(
      () => smtp(creds, tlsConfig({ port: fake.starttlsPort }), local).sendMail(mail()),
      ProviderError,
    );
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/TLS/);
    expectNothingSent();
  });

  it("refuses an untrusted certificate unless tls_ca trusts it", async () => {
    for (const config of [tlsConfig({ tls_ca: undefined }), starttlsConfig({ tls_ca: undefined })]) {
      const err = await rejection(() => smtp(creds, config, local).sendMail(mail()), ProviderError);
      expect(err.kind).toBe("unavailable");
      expect(err.maybeSent).toBe(false);
      expect(err.message).toMatch(/TLS negotiation .* failed/);
      expect(err.message).toMatch(/tls_ca/);
    }
    expectNothingSent();
    expect(fake.stats.authFailures).toBe(0);
  });
});

describe("server refusals", () => {
  it("maps bad credentials (535) to auth and never reveals the password", async () => {
    const password = "Sup3r-Secret-Pw!";
    const err = await rejection(
      () => smtp({ username: "demo", password }, tlsConfig(), local).sendMail(mail()),
      ProviderError,
    );
    expect(err.kind).toBe("auth");
    expect(err.details).toMatchObject({ provider: "smtp", status: 535, provider_code: "5.7.8" });
    const everything = JSON.stringify({ message: err.message, details: err.details, stack: err.stack });
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(Buffer.from(password).toString("base64"));
    expect(fake.stats.authFailures).toBe(1);
    expectNothingSent();
  });

  it.each([
    ["421", 421, "4.3.2"],
    ["450", 450, "4.2.1"],
    ["451", 451, "4.3.0"],
    ["452", 452, "4.3.1"],
  ] as const)("maps a %s reply to transient, without retrying", async (mode, status, enhanced) => {
    fake.setFault(mode);
    const err = await rejection(() => smtp(creds, tlsConfig(), local).sendMail(mail()), ProviderError);
    expect(err.kind).toBe("transient");
    expect(err.maybeSent).toBe(false);
    expect(err.details).toMatchObject({ status, provider_code: enhanced });
    // One attempt only: 451 is answered after DATA (one message seen), the others before it.
    expect(fake.received.filter((m) => m.outcome === "accepted")).toHaveLength(0);
    expect(fake.stats.dataTransfers).toBe(mode === "451" ? 1 : 0);
    // The fault was one-shot: the next send goes through.
    await expect(smtp(creds, tlsConfig(), local).sendMail(mail())).resolves.toMatchObject({ sentCount: 1 });
  });

  it("maps an unknown recipient (550 5.1.1) to permanent", async () => {
    const err = await rejection(
      () => smtp(creds, tlsConfig(), local).sendMail(mail({ to: ["nobody@unknown.test"] })),
      ProviderError,
    );
    expect(err.kind).toBe("permanent");
    expect(err.details).toMatchObject({ status: 550, provider_code: "5.1.1" });
    expect(err.details.errors).toEqual([expect.objectContaining({ recipient: "nobody@unknown.test", status: 550 })]);
    expectNothingSent();
  });

  it("maps an unverified sender (553 5.7.1) to permanent", async () => {
    const err = await rejection(
      () => smtp(creds, tlsConfig({ from_email: "stranger@example.com" }), local).sendMail(mail()),
      ProviderError,
    );
    expect(err.kind).toBe("permanent");
    expect(err.details).toMatchObject({ status: 553, provider_code: "5.7.1" });
    expectNothingSent();
  });

  it("maps an oversize message (552) to too_large", async () => {
    const big = Buffer.alloc(30_000, 7).toString("base64");
    const err = await rejection(
      () =>
        smtp(creds, tlsConfig({ port: small.implicitTlsPort, tls_ca: small.caPem }), local).sendMail(mail({ attachments: [{ filename: "big.bin", content: big }] })),
      ProviderError,
    );
    expect(err.kind).toBe("too_large");
    expect(err.details).toMatchObject({ status: 552 });
    expect(err.maybeSent).toBe(false);
    // The server read the DATA (that is how it knows the size) and kept nothing.
    expect(small.stats.dataTransfers).toBe(1);
    expect(small.received).toHaveLength(0);
  });
});

describe("lost replies", () => {
  it("drop after DATA: maybeSent, exactly one DATA received, no retry", async () => {
    fake.setFault("drop_after_data");
    const err = await rejection(() => smtp(creds, tlsConfig(), local).sendMail(mail()), ProviderError);
    expect(err.kind).toBe("unavailable");
    expect(err.maybeSent).toBe(true);
    expect(err.message).toMatch(/may have been delivered/);
    expect(fake.stats.dataTransfers).toBe(1);
    expect(fake.received.map((m) => m.outcome)).toEqual(["dropped"]);
  });

  it("DATA never answered: timeout with maybeSent", async () => {
    fake.setFault("timeout");
    const started = Date.now();
    const err = await rejection(
      () => smtp(creds, starttlsConfig(), local).sendMail(mail(), { timeoutMs: 1000 }),
      ProviderError,
    );
    expect(err.kind).toBe("timeout");
    expect(err.maybeSent).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(fake.received.map((m) => m.outcome)).toEqual(["unanswered"]);
  });

  it("connection refused: unavailable, not sent", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const err = await rejection(() => smtp(creds, tlsConfig({ port: closedPort }), local).sendMail(mail()), ProviderError);
    expect(err.kind).toBe("unavailable");
    expect(err.maybeSent).toBe(false);
  });
});

describe("refused before connecting", () => {
  it.each([25, 587])("refuses port %i (blocked on hosted Supabase)", async (port) => {
    const err = await rejection(() => smtp(creds, tlsConfig({ port }), local).sendMail(mail()), ApiError);
    expect(err.code).toBe("invalid_request");
    expect(err.message).toMatch(/465/);
    expect(err.message).toMatch(/2525/);
    expectNothingSent(fake, { noConnection: true });
  });

  it.each(["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254"])(
    "refuses private host %s when allowPrivateNetworks is false",
    async (host) => {
      const err = await rejection(() => smtp(creds, tlsConfig({ host }), hosted).sendMail(mail()), ApiError);
      expect(err.code).toBe("invalid_request");
      expectNothingSent(fake, { noConnection: true });
    },
  );

  const injections: [string, () => Promise<unknown>][] = [
    ["subject", () => smtp(creds, tlsConfig(), local).sendMail(mail({ subject: "Hi\r\nBcc: evil@attacker.test" }))],
    ["subject (LF only)", () => smtp(creds, tlsConfig(), local).sendMail(mail({ subject: "Hi\nX-Evil: 1" }))],
    ["subject (NUL)", () => smtp(creds, tlsConfig(), local).sendMail(mail({ subject: "Hi\u0000there" }))],
    ["from_name", () => smtp(creds, tlsConfig({ from_name: "Agent\r\nBcc: evil@attacker.test" }), local).sendMail(mail())],
    ["to address", () => smtp(creds, tlsConfig(), local).sendMail(mail({ to: ["a@example.org\r\nRCPT TO:<evil@attacker.test>"] }))],
    ["cc address", () => smtp(creds, tlsConfig(), local).sendMail(mail({ cc: ["a@example.org>\nX-Evil: 1"] }))],
    ["reply_to", () => smtp(creds, tlsConfig(), local).sendMail(mail({ reply_to: "r@example.org\r\nX-Evil: 1" }))],
    ["from_email", () => smtp(creds, tlsConfig({ from_email: "agent@example.com\r\nX-Evil: 1" }), local).sendMail(mail())],
    [
      "attachment filename",
      () =>
        smtp(creds, tlsConfig(), local).sendMail(mail({ attachments: [{ filename: "a.txt\r\nContent-Type: text/html", content: "aGk=" }] })),
    ],
    ["operation id", () => smtp(creds, tlsConfig(), local).sendMail(mail(), { operationId: "op\r\nX-Evil: 1" })],
  ];
  it.each(injections)("refuses CR/LF/NUL in the %s", async (_field, send) => {
    const err = await rejection(send, ApiError);
    expect(err.code).toBe("invalid_request");
    expectNothingSent(fake, { noConnection: true });
  });

  it("refuses from_name with CR or LF for any surrounding text (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.constantFrom("\r", "\n", "\r\n", "\u0000"), fc.string(), async (a, bad, b) => {
        const err = await rejection(
          () => smtp(creds, tlsConfig({ from_name: `${a}${bad}${b}` }), local).sendMail(mail()),
          ApiError,
        );
        expect(err.code).toBe("invalid_request");
      }),
      { numRuns: 100 },
    );
    expectNothingSent(fake, { noConnection: true });
  });
});

describe("testConnection", () => {
  it("succeeds over implicit TLS and STARTTLS without sending anything", async () => {
    await expect(smtp(creds, tlsConfig(), local).testConnection()).resolves.toMatchObject({ ok: true });
    await expect(smtp(creds, starttlsConfig(), local).testConnection()).resolves.toMatchObject({ ok: true });
    expectNothingSent();
  });

  it("reports bad credentials and TLS problems as ok: false", async () => {
    const bad = await smtp({ username: "demo", password: "wrong-password" }, tlsConfig(), local).testConnection();
    expect(bad).toMatchObject({ ok: false, details: { kind: "auth", status: 535 } });
    expect(JSON.stringify(bad)).not.toContain("wrong-password");
    const untrusted = await smtp(creds, tlsConfig({ tls_ca: undefined }), local).testConnection();
    expect(untrusted).toMatchObject({ ok: false, details: { kind: "unavailable" } });
  });

  it("throws for policy refusals", async () => {
    await expect(smtp(creds, tlsConfig({ port: 587 }), local).testConnection()).rejects.toBeInstanceOf(ApiError);
    await expect(smtp(creds, tlsConfig(), hosted).testConnection()).rejects.toBeInstanceOf(ApiError);
  });
});

describe("smtp_send_email tool", () => {
  const valid = { to: ["Alice@Example.org"], subject: "Hi", text: "Hello" };
  const issues = (input: unknown) => {
    const r = smtpSendEmailSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("accepts a valid mail and normalises addresses", () => {
    const parsed = smtpSendEmailSchema.parse(valid);
    expect(parsed.to).toEqual(["alice@example.org"]);
    expect(smtpSendEmail.recipients(parsed)).toEqual(["alice@example.org"]);
  });

  it("requires a subject and text or html", () => {
    expect(issues({ to: ["a@example.org"], text: "x" }).join()).toMatch(/^subject/);
    expect(issues({ to: ["a@example.org"], subject: "x" }).join()).toMatch(/text or html/);
    expect(issues({ to: ["a@example.org"], subject: "x", html: "<p>x</p>" })).toEqual([]);
  });

  it("allows an address only once across to, cc and bcc", () => {
    expect(issues({ ...valid, cc: ["ALICE@example.org"] }).join()).toMatch(/more than once/);
    expect(issues({ ...valid, bcc: ["alice@example.org"] }).join()).toMatch(/more than once/);
  });

  it("caps recipients at 100 in total", () => {
    const list = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}@example.org`);
    expect(issues({ ...valid, to: list("t", 50), cc: list("c", 50) })).toEqual([]);
    expect(issues({ ...valid, to: list("t", 50), cc: list("c", 50), bcc: ["x@example.org"] }).join()).toMatch(
      /limit is 100/,
    );
    expect(issues({ ...valid, to: list("t", 101) }).length).toBeGreaterThan(0);
  });

  it("refuses unknown fields, bad addresses and header injection", () => {
    expect(issues({ ...valid, from: "x@example.org" }).length).toBeGreaterThan(0);
    expect(issues({ ...valid, to: ["not-an-address"] }).length).toBeGreaterThan(0);
    expect(issues({ ...valid, reply_to: "x@example.org\r\nBcc: y@example.org" }).length).toBeGreaterThan(0);
    expect(issues({ ...valid, attachments: [{ filename: "a\nb", content: "aGk=" }] }).length).toBeGreaterThan(0);
  });

  it("refuses any subject or attachment name containing CR or LF (property)", () => {
    const withBreak = fc
      .tuple(fc.string(), fc.constantFrom("\r", "\n", "\r\n"), fc.string())
      .map(([a, br, b]) => `${a}${br}${b}`);
    fc.assert(
      fc.property(withBreak, (value) => {
        expect(smtpSendEmailSchema.safeParse({ ...valid, subject: value }).success).toBe(false);
        expect(
          smtpSendEmailSchema.safeParse({ ...valid, attachments: [{ filename: value, content: "aGk=" }] }).success,
        ).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("summarizes without bodies, addresses or attachment content", () => {
    const args = smtpSendEmailSchema.parse({
      ...valid,
      cc: ["c@example.org"],
      bcc: ["b@example.org"],
      html: "<p>secret body</p>",
      attachments: [{ filename: "report.pdf", content: Buffer.from("12345").toString("base64"), content_type: "application/pdf" }],
    });
    const summary = smtpSendEmail.summarize(args);
    expect(summary).toMatchObject({
      to_count: 1,
      cc_count: 1,
      bcc_count: 1,
      recipient_count: 3,
      subject_length: 2,
      attachments: [{ filename: "report.pdf", size: 5, content_type: "application/pdf" }],
    });
    const text = JSON.stringify(summary);
    for (const secret of ["secret body", "Hello", "example.org", Buffer.from("12345").toString("base64")]) {
      expect(text).not.toContain(secret);
    }
  });

  it("has a representable JSON Schema", () => {
    expect(smtpTools.map((t) => t.capability)).toEqual(["smtp_send_email"]);
    const schema = z.toJSONSchema(smtpSendEmailSchema, { io: "input" }) as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { maxItems?: number }>;
      description: string;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required.sort()).toEqual(["subject", "to"]);
    expect(schema.properties.to.maxItems).toBe(100);
    expect(schema.description).toMatch(/SMTP/);
  });

  it("execute() sends with the connection's stored credentials and config", async () => {
    const args = smtpSendEmailSchema.parse(valid);
    const result = await smtpSendEmail.execute(
      {
        credentials: { username: "demo", password: "demo-pass" },
        config: { host: fake.host, port: fake.starttlsPort, security: "starttls", from_email: "demo@switchboard.local", tls_ca: fake.caPem },
        operationId: "op-tool-1",
        network: local,
      },
      args,
    );
    expect(result).toMatchObject({ sentCount: 1 });
    expect(fake.received[0].parsed.headers[OPERATION_ID_HEADER.toLowerCase()]).toBe("op-tool-1");
    expect(fake.received[0].envelope.mailFrom).toBe("demo@switchboard.local");
  });

  it("a stored config that breaks the rules is a 400 naming the field (plain SMTP, malformed or injected values)", async () => {
    const base = { host: "smtp.example.com", port: 465, security: "tls", from_email: "a@example.com" };
    expect(() => createSmtpClient({ credentials: creds, config: base, network: hosted })).not.toThrow();
    const cases: [string, Record<string, unknown>][] = [
      ["security", { security: "none" }],
      ["port", { port: 0 }],
      ["port", { port: 465.5 }],
      ["port", { port: "465" }],
      ["host", { host: "" }],
      ["host", { host: "smtp.example.com\r\nX-Evil: 1" }],
      ["host", { host: "0x7f.1" }],
      ["host", { host: "2130706433" }],
      ["host", { host: "012.0.0.1" }],
      ["host", { host: "[::1]" }],
      ["host", { host: "smtp.example.com:465" }],
      ["from_email", { from_email: "nope" }],
      ["from_name", { from_name: "Agent\nBcc: evil@attacker.test" }],
      ["tls_ca", { tls_ca: "abc" }],
      ["tls_servername", { tls_servername: "mail.example.com\r\n" }],
      ["tls_servername", { tls_servername: "127.0.0.1" }],
    ];
    for (const [field, bad] of cases) {
      const err = await rejection(async () => smtp(creds, { ...base, ...bad } as SmtpConfig, hosted), ApiError);
      expect(err, JSON.stringify(bad)).toMatchObject({ code: "invalid_request", status: 400, details: { field, source: "connection_config" } });
    }
  });
});

/** Reads the greeting, sends EHLO and returns the EHLO reply, over plain TCP or implicit TLS. */
async function rawEhlo(port: number, secure = false): Promise<string> {
  const socket = secure
    ? tls.connect({ host: fake.host, port, ca: fake.caPem, servername: "localhost" })
    : net.connect(port, fake.host);
  let buf = "";
  const until = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => re.test(buf) && (socket.off("data", onData), resolve());
      const onData = (d: Buffer) => ((buf += d.toString("utf8")), check());
      socket.on("data", onData).once("error", reject);
      check();
    });
  try {
    await until(/^220 .*\r\n/m);
    buf = "";
    socket.write("EHLO client.test\r\n");
    await until(/^250 .*\r\n/m);
    return buf;
  } finally {
    socket.end("QUIT\r\n");
  }
}

describe("fake server behaviour", () => {
  it("advertises STARTTLS and SIZE before TLS, AUTH PLAIN LOGIN and SIZE over TLS, no STARTTLS on the plain port", async () => {
    const starttls = await rawEhlo(fake.starttlsPort);
    expect(starttls).toMatch(/^250[- ]STARTTLS/m);
    expect(starttls).toMatch(/^250[- ]SIZE 10485760/m);
    const implicit = await rawEhlo(fake.implicitTlsPort, true);
    expect(implicit).toMatch(/^250[- ]AUTH PLAIN LOGIN/m);
    expect(implicit).toMatch(/^250[- ]SIZE 10485760/m);
    const plain = await rawEhlo(fake.plainPort);
    expect(plain).not.toMatch(/STARTTLS|AUTH/);
  });
});

describe("fake inspection API", () => {
  it("lists messages, injects faults and resets over HTTP", async () => {
    const url = fake.inspectUrl!;
    await smtp(creds, tlsConfig(), local).sendMail(mail({ subject: "Over HTTP" }));
    const listed = (await (await fetch(`${url}/__fake/messages`)).json()) as {
      messages: { envelope: { rcptTo: string[] }; parsed: { subject: string } }[];
    };
    expect(listed.messages.map((m) => m.parsed.subject)).toEqual(["Over HTTP"]);

    const set = await fetch(`${url}/__fake/faults`, { method: "POST", body: JSON.stringify({ mode: "451", count: 2 }) });
    expect(set.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const err = await rejection(() => smtp(creds, tlsConfig(), local).sendMail(mail()), ProviderError);
      expect(err.details.status).toBe(451);
    }
    await smtp(creds, tlsConfig(), local).sendMail(mail());
    expect((await fetch(`${url}/__fake/faults`, { method: "POST", body: '{"mode":"999"}' })).status).toBe(400);

    expect((await fetch(`${url}/__fake/reset`, { method: "POST" })).status).toBe(200);
    expect(fake.received).toHaveLength(0);
  });
});
