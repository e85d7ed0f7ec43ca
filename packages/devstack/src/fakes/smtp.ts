/**
 * A real SMTP server standing in for a user's mail relay, for tests and the local stack.
 *
 * Three listeners share one state so every error path of the SMTP adapter can be
 * exercised over real sockets and real TLS (what SMTP relays really do: implicit TLS, STARTTLS, AUTH):
 *  - implicit TLS (465-style): TLS from the first byte, then AUTH PLAIN/LOGIN;
 *  - STARTTLS (587/2525-style): advertises STARTTLS and SIZE, AUTH only after the upgrade;
 *  - plain: offers no TLS at all and accepts mail without AUTH (an open relay), so a test
 *    can prove that it is the *client* that refuses to talk in cleartext.
 *
 * Rules: accounts `demo`/`demo-pass` (+ opts.accounts), 535 5.7.8 on bad credentials,
 * 552 over the advertised SIZE, 553 5.7.1 for a sender that is not verified, 550 5.1.1 for
 * recipients at `unknown.test` or with local part `unknown`. Faults on demand: 421, 450,
 * 451, 452, a dropped connection after the message was received, and a DATA that is never
 * answered. Every message that reached the end of DATA is captured raw and parsed.
 *
 * The certificate is generated at start with the `openssl` CLI (a throwaway CA plus a leaf
 * for `localhost`/`127.0.0.1`/`::1`): a separate CA rather than one self-signed leaf, because
 * rustls (Deno's TLS) refuses a CA certificate used as an end-entity certificate.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type AddressObject, simpleParser } from "mailparser";
import {
  SMTPServer,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from "smtp-server";

const run = promisify(execFile);

export type SmtpFaultMode = "421" | "450" | "451" | "452" | "drop_after_data" | "timeout";
export const SMTP_FAULT_MODES: readonly SmtpFaultMode[] = [
  "421",
  "450",
  "451",
  "452",
  "drop_after_data",
  "timeout",
];

export interface SmtpFakeOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Ports; 0 or omitted = an ephemeral port. */
  implicitTlsPort?: number;
  starttlsPort?: number;
  plainPort?: number;
  /** Start the HTTP inspection server on this port (0 = ephemeral); omitted = no HTTP server. */
  httpPort?: number;
  /** Extra accounts, username -> password (demo/demo-pass always exists). */
  accounts?: Record<string, string>;
  /** Senders the relay accepts (default agent@example.com, demo@switchboard.local). */
  verifiedSenders?: string[];
  /** Advertised SIZE limit in bytes (default 10 MB). */
  maxSize?: number;
}

export interface FakeAddress {
  address: string;
  name: string;
}

export interface FakeAttachment {
  filename?: string;
  contentType: string;
  size: number;
  checksum: string;
}

export interface ReceivedSmtpMessage {
  id: string;
  receivedAt: string;
  listener: "implicit_tls" | "starttls" | "plain";
  /** Whether the session was encrypted when DATA arrived. */
  secure: boolean;
  /** Authenticated username, if any. */
  user: string | null;
  /** What the client put on the wire: MAIL FROM and every RCPT TO (so bcc is visible here). */
  envelope: { mailFrom: string; rcptTo: string[] };
  /** The message exactly as received after the end of DATA (dot-stuffing already undone). */
  raw: string;
  size: number;
  /** What the server did with it: queued (250), answered with a 4xx, dropped, or never answered. */
  outcome: "accepted" | "rejected" | "dropped" | "unanswered";
  parsed: {
    messageId?: string;
    subject?: string;
    from: FakeAddress[];
    to: FakeAddress[];
    cc: FakeAddress[];
    bcc: FakeAddress[];
    replyTo: FakeAddress[];
    text?: string;
    html?: string;
    /** Lower-case header name -> unfolded raw value (repeated headers joined by "\n"). */
    headers: Record<string, string>;
    attachments: FakeAttachment[];
  };
}

export interface SmtpFakeStats {
  /** TCP connections accepted on any listener. */
  connections: number;
  /** Messages that reached the end of DATA (including oversize ones). */
  dataTransfers: number;
  authFailures: number;
}

export interface SmtpFake {
  host: string;
  implicitTlsPort: number;
  starttlsPort: number;
  plainPort: number;
  /** PEM of the CA that signed the server certificate (use as the adapter's tls_ca). */
  caPem: string;
  /** Base URL of the HTTP inspection server, when opts.httpPort was given. */
  inspectUrl?: string;
  received: ReceivedSmtpMessage[];
  stats: SmtpFakeStats;
  /** Forget received messages, stats and faults. */
  reset(): void;
  /** Apply `mode` to the next `count` mail transactions (default 1); null clears. */
  setFault(mode: SmtpFaultMode | null, count?: number): void;
  close(): Promise<void>;
}

const DEFAULT_SENDERS = ["agent@example.com", "demo@switchboard.local"];
const DEFAULT_MAX_SIZE = 10 * 1024 * 1024;

/** An error whose message becomes the SMTP reply text, with its reply code. */
function reply(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

/** Throwaway CA + server certificate for localhost, via the openssl CLI. */
async function generateCertificates(): Promise<{ caPem: string; key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), "switchboard-smtp-fake-"));
  const p = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    await run("openssl", [
      "req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30",
      "-subj", "/CN=Switchboard SMTP fake CA",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await run("openssl", [
      "req", ...ec, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=localhost",
    ]);
    await writeFile(
      p("leaf.ext"),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      ].join("\n"),
    );
    await run("openssl", [
      "x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
      "-CAcreateserial", "-out", p("leaf.pem"), "-days", "30", "-extfile", p("leaf.ext"),
    ]);
    const [caPem, key, cert] = await Promise.all(
      ["ca.pem", "leaf.key", "leaf.pem"].map((f) => readFile(p(f), "utf8")),
    );
    return { caPem, key, cert };
  } catch (err) {
    throw new Error(
      `SMTP fake: could not generate a TLS certificate with the openssl CLI (${(err as Error).message})`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function addresses(obj: AddressObject | AddressObject[] | undefined): FakeAddress[] {
  const list = obj === undefined ? [] : Array.isArray(obj) ? obj : [obj];
  return list.flatMap((o) => o.value).map((a) => ({ address: a.address ?? "", name: a.name }));
}

/** Raw header lines, unfolded, keyed by lower-case name: what an injection test must inspect. */
function rawHeaders(lines: readonly { key: string; line: string }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, line } of lines) {
    const value = line.slice(line.indexOf(":") + 1).replace(/\r?\n[ \t]/g, " ").trim();
    out[key] = key in out ? `${out[key]}\n${value}` : value;
  }
  return out;
}

async function parseMessage(raw: Buffer): Promise<ReceivedSmtpMessage["parsed"]> {
  const m = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
  return {
    messageId: m.messageId,
    subject: m.subject,
    from: addresses(m.from),
    to: addresses(m.to),
    cc: addresses(m.cc),
    bcc: addresses(m.bcc),
    replyTo: addresses(m.replyTo),
    text: m.text,
    html: m.html === false ? undefined : m.html,
    headers: rawHeaders(m.headerLines),
    attachments: m.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      size: a.size,
      checksum: a.checksum,
    })),
  };
}

export async function startSmtpFake(opts: SmtpFakeOptions = {}): Promise<SmtpFake> {
  const host = opts.host ?? "127.0.0.1";
  const maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
  const accounts = new Map(Object.entries({ demo: "demo-pass", ...opts.accounts }));
  const senders = new Set((opts.verifiedSenders ?? DEFAULT_SENDERS).map((s) => s.toLowerCase()));
  const { caPem, key, cert } = await generateCertificates();

  const received: ReceivedSmtpMessage[] = [];
  const stats: SmtpFakeStats = { connections: 0, dataTransfers: 0, authFailures: 0 };
  let fault: { mode: SmtpFaultMode; remaining: number } | null = null;
  let seq = 0;
  /** Fault picked for the current transaction of each session (chosen at MAIL FROM). */
  const sessionFaults = new Map<string, SmtpFaultMode>();
  /** Sockets by session id, so a fault can cut a connection the way a crash would. */
  const sockets = new Map<string, net.Socket>();

  const takeFault = (): SmtpFaultMode | undefined => {
    if (!fault) return undefined;
    const { mode } = fault;
    if (--fault.remaining <= 0) fault = null;
    return mode;
  };

  const handlers = (listener: ReceivedSmtpMessage["listener"]): Partial<SMTPServerOptions> => ({
    onConnect(session, callback) {
      stats.connections++;
      callback();
    },
    onSecure(socket, session, callback) {
      sockets.set(session.id, socket);
      callback();
    },
    onClose(session) {
      sockets.delete(session.id);
      sessionFaults.delete(session.id);
    },
    onAuth(auth, _session, callback) {
      const ok =
        (auth.method === "PLAIN" || auth.method === "LOGIN") &&
        auth.username !== undefined &&
        accounts.has(auth.username) &&
        accounts.get(auth.username) === auth.password;
      if (ok) return callback(null, { user: auth.username });
      stats.authFailures++;
      callback(reply(535, "5.7.8 Authentication credentials invalid"));
    },
    onMailFrom(address, session, callback) {
      sessionFaults.delete(session.id);
      const mode = takeFault();
      if (mode) sessionFaults.set(session.id, mode);
      // A 421 ends the session: smtp-server closes the connection after sending it.
      if (mode === "421") {
        return callback(reply(421, "4.3.2 Service not available, closing transmission channel"));
      }
      if (!senders.has(address.address.toLowerCase())) {
        return callback(
          reply(553, `5.7.1 Sender address <${address.address}> is not a verified sender identity`),
        );
      }
      callback();
    },
    onRcptTo(address, session, callback) {
      const mode = sessionFaults.get(session.id);
      if (mode === "450") {
        return callback(reply(450, "4.2.1 Mailbox temporarily unavailable, try again later"));
      }
      if (mode === "452") {
        return callback(reply(452, "4.3.1 Insufficient system storage, try again later"));
      }
      const [local, domain = ""] = address.address.toLowerCase().split("@");
      if (domain === "unknown.test" || local === "unknown") {
        return callback(reply(550, `5.1.1 <${address.address}>: Recipient address rejected: User unknown`));
      }
      callback();
    },
    onData(stream, session, callback) {
      void receive(listener, stream, session, callback);
    },
  });

  async function receive(
    listener: ReceivedSmtpMessage["listener"],
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    stats.dataTransfers++;
    // rejectOversized makes smtp-server answer 552 itself; nothing to keep.
    if (stream.sizeExceeded) return callback();

    const mode = sessionFaults.get(session.id);
    sessionFaults.delete(session.id);
    const raw = Buffer.concat(chunks);
    const id = `fake-${++seq}`;
    const outcome: ReceivedSmtpMessage["outcome"] =
      mode === "451" ? "rejected"
      : mode === "drop_after_data" ? "dropped"
      : mode === "timeout" ? "unanswered"
      : "accepted";
    // Recorded before replying, so a client that sees the reply (or the drop) can already
    // find the message here.
    received.push({
      id,
      receivedAt: new Date().toISOString(),
      listener,
      secure: session.secure,
      user: typeof session.user === "string" ? session.user : null,
      envelope: {
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
      },
      raw: raw.toString("utf8"),
      size: raw.length,
      outcome,
      parsed: await parseMessage(raw),
    });

    switch (mode) {
      case "451":
        return callback(reply(451, "4.3.0 Local error in processing, try again later"));
      case "drop_after_data":
        // The message is in, the reply never leaves: the client cannot know if it was sent.
        destroySession(session.id);
        return;
      case "timeout":
        return; // never answer; the client's socket timeout has to fire
      default:
        return callback(null, `OK: queued as ${id}`);
    }
  }

  /** Cut a session's TCP connection without a reply, the way a crashed relay would. */
  function destroySession(id: string): void {
    const socket =
      sockets.get(id) ??
      servers.flatMap((s) => [...s.connections]).find((c) => c.id === id)?._socket;
    socket?.destroy();
  }

  const common: SMTPServerOptions = {
    name: "localhost",
    banner: "Switchboard SMTP fake",
    key,
    cert,
    size: maxSize,
    rejectOversized: true,
    authMethods: ["PLAIN", "LOGIN"],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 250,
  };

  const servers = [
    new SMTPServer({ ...common, ...handlers("implicit_tls"), secure: true }),
    new SMTPServer({ ...common, ...handlers("starttls") }),
    // No STARTTLS, no AUTH (AUTH needs TLS), and mail accepted anyway: a client that does
    // not insist on TLS would happily deliver here in cleartext.
    new SMTPServer({
      ...common,
      ...handlers("plain"),
      disabledCommands: ["STARTTLS", "AUTH"],
      authOptional: true,
    }),
  ];
  // Without an error handler smtp-server crashes the process on a failed TLS handshake
  // (which is exactly what the "untrusted certificate" test provokes).
  for (const s of servers) s.on("error", () => {});

  const listen = (server: SMTPServer, port = 0) =>
    new Promise<number>((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(port, host, () => {
        server.server.off("error", reject);
        resolve((server.server.address() as AddressInfo).port);
      });
    });
  const [implicitTlsPort, starttlsPort, plainPort] = await Promise.all([
    listen(servers[0], opts.implicitTlsPort),
    listen(servers[1], opts.starttlsPort),
    listen(servers[2], opts.plainPort),
  ]);

  const fake: SmtpFake = {
    host,
    implicitTlsPort,
    starttlsPort,
    plainPort,
    caPem,
    received,
    stats,
    reset() {
      received.length = 0;
      Object.assign(stats, { connections: 0, dataTransfers: 0, authFailures: 0 });
      fault = null;
    },
    setFault(mode, count = 1) {
      fault = mode && count > 0 ? { mode, remaining: count } : null;
    },
    async close() {
      await Promise.all([
        ...servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
        httpServer &&
          new Promise<void>((resolve) => {
            httpServer.close(() => resolve());
            httpServer.closeAllConnections();
          }),
      ]);
    },
  };

  const httpServer = opts.httpPort === undefined ? undefined : createInspector(fake);
  if (httpServer) {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(opts.httpPort, host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    fake.inspectUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  return fake;
}

/**
 * GET /__fake/messages -> {messages: ReceivedSmtpMessage[]} (envelope, parsed view, raw; no
 * attachment content), POST /__fake/reset, POST /__fake/faults {mode, count?}.
 */
function createInspector(fake: SmtpFake): http.Server {
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  return http.createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://fake").pathname;
    if (req.method === "GET" && path === "/__fake/messages") {
      return json(res, 200, { messages: fake.received });
    }
    if (req.method === "POST" && path === "/__fake/reset") {
      fake.reset();
      return json(res, 200, { ok: true });
    }
    if (req.method === "POST" && path === "/__fake/faults") {
      let body: { mode?: unknown; count?: unknown };
      try {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      } catch {
        return json(res, 400, { error: "body must be JSON" });
      }
      const { mode, count = 1 } = body ?? {};
      if (mode !== null && !SMTP_FAULT_MODES.includes(mode as SmtpFaultMode)) {
        return json(res, 400, { error: `mode must be one of ${SMTP_FAULT_MODES.join(", ")} or null` });
      }
      if (typeof count !== "number" || !Number.isInteger(count) || count < 1) {
        return json(res, 400, { error: "count must be a positive integer" });
      }
      fake.setFault(mode as SmtpFaultMode | null, count);
      return json(res, 200, { ok: true, mode, count });
    }
    json(res, 404, { error: "not found" });
  });
}
