/**
 * SMTP adapter on nodemailer (>= 9.0.1 for the CRLF fixes).
 *
 * Knows SMTP and nothing about Supabase. Runs unchanged in Deno (npm:nodemailer, which
 * needs raw TCP/TLS: fine in Supabase's runtime) and Node.
 *
 * Rules this file enforces, each for a reason:
 *  - TLS is mandatory: "tls" is implicit TLS (port 465 style), "starttls" sets requireTLS
 *    so a server that does not offer STARTTLS (or a stripped offer) fails instead of
 *    silently carrying AUTH and the message in cleartext (RFC 8314). Certificates are
 *    always verified; `tls_ca` adds a trust anchor for self-hosted relays and the local stack.
 *  - Ports hosted Supabase blocks (25, 587) are refused up front with a useful message
 *    rather than left to hang until a timeout.
 *  - The host passes the network guard, which resolves it once and judges every address;
 *    the socket is then opened to that judged IP address (pinned), with the configured
 *    name kept as the TLS server name (SNI and certificate check), so a later DNS answer
 *    can never redirect the connection. nodemailer therefore never resolves anything.
 *  - CR/LF/NUL never reach a header, address, name or file name. The stored config is
 *    parsed by the connection-config rules (400 naming the field); the mail itself was
 *    validated by the tool schema and is checked again because the client can be used
 *    directly.
 *  - No automatic retries. A send that failed after the whole message was handed to the
 *    server is reported with maybeSent = true, so nobody resends it blindly.
 *  - The password never appears in an error message or its details.
 */
import nodemailer from "nodemailer";
import type { SendMailOptions, SMTPTransportOptions } from "nodemailer";
import { rootCertificates } from "node:tls";
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { guardHost, type NetworkPolicy, type PinnedHost, UnresolvableHostError } from "../net/guard.ts";
import {
  assertHeaderSafeCredentials,
  hostField,
  optional,
  parseStoredConfig,
  serverNameField,
  storedDisplayName,
  storedEmail,
} from "./connection-config.ts";
import { allRecipients, emailAddress, type MailMessage } from "./email.ts";
import {
  type CallOptions,
  ProviderError,
  type ProviderErrorDetails,
  type ProviderErrorKind,
  type RecipientResult,
  type SendResult,
  type TestConnectionResult,
} from "./types.ts";

/** Header that carries our operation id, for correlating a mail with its operation row. */
export const OPERATION_ID_HEADER = "X-Switchboard-Operation-Id";

/** Default timeouts (ms); short because an edge function has a wall-clock budget. */
export const SMTP_TIMEOUTS = { connection: 10_000, greeting: 10_000, socket: 20_000 } as const;

export interface SmtpCredentials {
  username: string;
  password: string;
}

/** The stored connection config; unknown keys are ignored. */
export const smtpConfigSchema = z.object({
  host: hostField,
  port: z.int({ message: "must be a TCP port number" }).min(1).max(65535),
  /** "tls" = implicit TLS (465); "starttls" = upgrade required (587, 2525). Never plain. */
  security: z.enum(["tls", "starttls"], {
    message: 'must be "tls" (implicit TLS, port 465) or "starttls"; plain SMTP is not supported',
  }),
  from_email: storedEmail,
  from_name: optional(storedDisplayName),
  /** Extra CA certificate (PEM) to trust, for self-hosted relays and the local stack. */
  tls_ca: optional(z.string().max(65_536).regex(/-----BEGIN CERTIFICATE-----/, {
    message: "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
  })),
  /** Name to expect on the certificate (and send as SNI) when `host` is an IP address. */
  tls_servername: optional(serverNameField),
});

export type SmtpConfig = z.output<typeof smtpConfigSchema>;
export type SmtpSecurity = SmtpConfig["security"];

/** What an SMTP client is built from: the connection as stored, and the deployment's network policy. */
export interface SmtpConnection {
  credentials: Readonly<Record<string, unknown>> | SmtpCredentials;
  config: Readonly<Record<string, unknown>> | SmtpConfig;
  network: NetworkPolicy;
}

/** A validated mail, as the smtp_send_email tool's schema outputs it. */
export type SmtpMail = MailMessage;

export interface SmtpSendOptions extends CallOptions {
  /** Our operation id, sent as the X-Switchboard-Operation-Id header. */
  operationId?: string;
}

// ---------------------------------------------------------------------------
// Config and input checks
// ---------------------------------------------------------------------------

const UNSAFE = /[\r\n\u0000]/;

/** Reads a connection's stored credentials; missing ones are a connection problem. */
function toSmtpCredentials(raw: Record<string, unknown>): SmtpCredentials {
  if (typeof raw.username !== "string" || raw.username === "" || typeof raw.password !== "string" || raw.password === "") {
    throw new ProviderError("auth", "The SMTP connection has no username or password", { provider: "smtp" });
  }
  // The username goes into the AUTH command; the password only base64-encoded.
  assertHeaderSafeCredentials({ username: raw.username });
  return { username: raw.username, password: raw.password };
}

function refuse(field: string, what = "must not contain line breaks (CR/LF) or NUL characters"): never {
  throw new ApiError("invalid_request", `${field} ${what}`, { field });
}

function checkText(field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string") refuse(field, "must be a string");
  if (UNSAFE.test(value)) refuse(field);
}

function checkAddress(field: string, value: unknown): void {
  checkText(field, value);
  if (value !== undefined && !emailAddress.safeParse(value).success) refuse(field, "must be a valid e-mail address");
}

/**
 * The defensive check on the mail: every value that ends up in a header line, the
 * envelope or an SMTP command is refused if it carries CR, LF or NUL, and addresses
 * must be addresses.
 */
function checkMailSafety(mail: SmtpMail): void {
  if (!Array.isArray(mail.to) || mail.to.length === 0) refuse("to", "needs at least one recipient");
  for (const field of ["to", "cc", "bcc"] as const) {
    const list = mail[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) refuse(field, "must be a list of addresses");
    list.forEach((value, i) => checkAddress(`${field}[${i}]`, value));
  }
  checkAddress("reply_to", mail.reply_to);
  checkText("subject", mail.subject);
  (mail.attachments ?? []).forEach((a, i) => {
    checkText(`attachments[${i}].filename`, a.filename);
    checkText(`attachments[${i}].content_type`, a.content_type);
  });
  if (mail.text === undefined && mail.html === undefined) refuse("text", "or html is required");
}

/**
 * Refuses what the deployment forbids, before any socket is opened, and returns the
 * judged address to connect to.
 */
async function checkNetwork(config: SmtpConfig, policy: NetworkPolicy): Promise<PinnedHost> {
  if (policy.blockedSmtpPorts.includes(config.port)) {
    throw new ApiError(
      "invalid_request",
      `SMTP port ${config.port} is blocked here: hosted Supabase Edge Functions cannot open outgoing ` +
        `connections to ports ${policy.blockedSmtpPorts.join(" and ")}. Use port 465 (security "tls") ` +
        `or 2525 (security "starttls") if your provider offers it.`,
      { field: "port", source: "connection_config", port: config.port, blocked_ports: policy.blockedSmtpPorts },
    );
  }
  try {
    return await guardHost(config.host, policy, { field: "host", source: "connection_config" });
  } catch (error) {
    if (error instanceof UnresolvableHostError) {
      throw new ProviderError("unavailable", `Could not reach the SMTP server ${config.host}:${config.port} (${error.message})`, {
        provider: "smtp",
      });
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

/**
 * Tells whether the whole message reached the server. nodemailer reports that only
 * through its logger: the "<n bytes encoded mime message>" info entry is written when the
 * DATA stream (terminating "." included) has been handed to the socket. Before that moment
 * the server cannot have accepted the mail; after it, a lost reply means "maybe sent".
 */
function transmissionProbe() {
  const probe = {
    messageTransmitted: false,
    logger: {
      info(entry: unknown) {
        if (entry && typeof entry === "object" && (entry as { tnx?: unknown }).tnx === "message" && "outByteCount" in entry) {
          probe.messageTransmitted = true;
        }
      },
      trace() {},
      debug() {},
      warn() {},
      error() {},
      fatal() {},
    },
  };
  return probe;
}

/** nodemailer options: the socket goes to the judged address, TLS verifies the configured name. */
function transportOptions(
  creds: SmtpCredentials,
  config: SmtpConfig,
  target: PinnedHost,
  options: CallOptions,
  logger: ReturnType<typeof transmissionProbe>["logger"],
): SMTPTransportOptions {
  const t = options.timeoutMs;
  // The configured name (or tls_servername) is what TLS verifies, whatever address the
  // socket is opened to.
  const servername = config.tls_servername ?? target.servername;
  return {
    host: target.address,
    port: config.port,
    secure: config.security === "tls",
    requireTLS: config.security === "starttls",
    ignoreTLS: false,
    opportunisticTLS: false,
    auth: { user: creds.username, pass: creds.password },
    // Authenticate even if the server does not advertise AUTH: sending unauthenticated
    // through whatever relay answers is never what the user configured.
    forceAuth: true,
    // The EHLO name: the sender's domain, instead of the runtime's hostname.
    name: config.from_email.split("@")[1],
    tls: {
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      // Node's `ca` replaces the default roots, so keep them: tls_ca adds trust.
      ...(config.tls_ca ? { ca: [...rootCertificates, config.tls_ca] } : {}),
      ...(servername ? { servername } : {}),
    },
    connectionTimeout: t ?? SMTP_TIMEOUTS.connection,
    greetingTimeout: t ?? SMTP_TIMEOUTS.greeting,
    socketTimeout: t ?? SMTP_TIMEOUTS.socket,
    // Attachments are base64 content only; never let an input make nodemailer read files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger,
  };
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** The parts of a nodemailer error this adapter reads. */
interface SmtpClientError {
  code?: string;
  originalCode?: string;
  message?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  rejectedErrors?: SmtpClientError[];
  recipient?: string;
}

const AUTH_REPLY_CODES = new Set([530, 534, 535]);

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

/** Removes the password (and its AUTH PLAIN/LOGIN encodings) from any text we report. */
function scrubber(creds: SmtpCredentials): (text: string) => string {
  const secrets = [creds.password, base64(creds.password), base64(`\u0000${creds.username}\u0000${creds.password}`)]
    .filter((s) => s.length > 0);
  return (text) => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join("[redacted]");
    return out.length > 500 ? `${out.slice(0, 500)}…` : out;
  };
}

function enhancedCode(reply: string | undefined): string | undefined {
  return reply?.match(/^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/)?.[1];
}

function looksLikeTls(err: SmtpClientError): boolean {
  const text = `${err.originalCode ?? ""} ${err.message ?? ""}`;
  // A server reply (e.g. "530 Must issue STARTTLS first") is the server's verdict, not a handshake failure.
  if (err.code === "ETLS") return true;
  return err.responseCode === undefined &&
    /CERT|certificate|self[- ]signed|unable to verify|altname|UnknownIssuer|handshake|wrong version number|\bssl\b|\btls\b/i
      .test(text);
}

/** Maps a nodemailer failure to a ProviderError. `transmitted`: the whole message had been sent. */
function toProviderError(
  raw: unknown,
  config: SmtpConfig,
  scrub: (text: string) => string,
  transmitted: boolean,
): ProviderError {
  const err = (raw ?? {}) as SmtpClientError;
  const where = `${config.host}:${config.port}`;
  const status = err.responseCode;
  const reply = err.response ? scrub(err.response.replace(/\s+/g, " ").trim()) : undefined;
  // OpenSSL errors carry an internal prefix and source path; keep the human part.
  const message = err.message ?? String(raw);
  const reason = scrub(message.match(/SSL routines:[^:]*:([^:]+)/)?.[1] ?? message.replace(/\s+/g, " ").trim());
  const details: ProviderErrorDetails = {
    provider: "smtp",
    ...(status !== undefined ? { status } : {}),
    ...(enhancedCode(err.response) ? { provider_code: enhancedCode(err.response) } : {}),
    ...(err.command ? { command: err.command } : {}),
    ...(reply ? { response: reply } : {}),
    ...(err.code ? { error_code: err.code } : {}),
    ...(err.originalCode ? { cause_code: err.originalCode } : {}),
  };
  if (err.rejectedErrors?.length) {
    details.errors = err.rejectedErrors.map((r) => ({
      recipient: r.recipient,
      status: r.responseCode,
      response: r.response ? scrub(r.response) : undefined,
    }));
  }
  const fail = (kind: ProviderErrorKind, message: string, maybeSent = false) =>
    new ProviderError(kind, message, details, maybeSent);

  // TLS first: a plain server answers STARTTLS with a 5xx, which is not a mail rejection.
  // Never once the message is out: a lost reply must stay "maybe sent" whatever the socket said.
  if (!transmitted && looksLikeTls(err)) {
    const hint = err.command === "STARTTLS" || /STARTTLS/i.test(reason)
      ? `the server at ${where} does not offer STARTTLS, and mail is never sent unencrypted`
      : `check the certificate (add tls_ca for a self-signed or private CA, tls_servername when connecting by IP) ` +
        `and the security mode ("tls" for implicit TLS on 465, "starttls" for 587/2525)`;
    return fail("unavailable", `TLS negotiation with the SMTP server ${where} failed (${reason}): ${hint}`);
  }
  // 454 (temporary authentication failure) stays transient; other AUTH failures are auth.
  const authCommandFailed = (err.code === "EAUTH" || err.code === "ENOAUTH") && !(status !== undefined && status < 500);
  if (authCommandFailed || (status !== undefined && AUTH_REPLY_CODES.has(status))) {
    return fail("auth", `The SMTP server ${where} rejected the credentials${reply ? `: ${reply}` : ` (${reason})`}`);
  }
  if (status !== undefined && status >= 400 && status < 600) {
    if (status === 552) return fail("too_large", `The SMTP server refused the message as too large: ${reply}`);
    if (status >= 500) return fail("permanent", `The SMTP server rejected the message: ${reply}`);
    return fail("transient", `The SMTP server temporarily refused the message: ${reply}`);
  }
  if (err.code === "EMESSAGE" && /size/i.test(reason)) {
    return fail("too_large", `The message is larger than the SMTP server accepts (${reason})`);
  }
  if (err.code === "EENVELOPE" || err.code === "ECONFIG") {
    return fail("invalid", `The SMTP client refused the message: ${reason}`);
  }
  if (err.code === "ETIMEDOUT") {
    return transmitted
      ? fail("timeout", `The SMTP server ${where} did not confirm the message in time; it may have been delivered, so it is not retried`, true)
      : fail("timeout", `The SMTP server ${where} did not answer in time (${reason})`);
  }
  if (transmitted) {
    return fail(
      "unavailable",
      `The connection to ${where} was lost after the message was transmitted and before the server confirmed it; ` +
        `it may have been delivered, so it is not retried (${reason})`,
      true,
    );
  }
  return fail("unavailable", `Could not reach the SMTP server ${where} (${reason})`);
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export interface SmtpClient {
  /**
   * Sends one mail. Resolves with per-recipient results (recipients the server refused at
   * RCPT are failed results: partial success); throws ApiError for refused input or policy
   * and ProviderError for anything the server or the network did.
   */
  sendMail(mail: SmtpMail, options?: SmtpSendOptions): Promise<SendResult>;
  /**
   * Connects, negotiates TLS and authenticates (nodemailer's verify()), then quits without
   * sending. Every server or network failure is a negative result the user can act on;
   * refused config or policy still throws ApiError.
   */
  testConnection(options?: CallOptions): Promise<TestConnectionResult>;
}

/**
 * Builds a client. Throws ApiError (400) for a stored config that breaks the rules and
 * ProviderError "auth" for missing credentials.
 */
export function createSmtpClient(connection: SmtpConnection): SmtpClient {
  const config = parseStoredConfig(smtpConfigSchema, connection.config);
  const creds = toSmtpCredentials(connection.credentials as Record<string, unknown>);
  return {
    sendMail: (mail, options = {}) => sendMail(creds, config, connection.network, mail, options),
    testConnection: (options = {}) => testConnection(creds, config, connection.network, options),
  };
}

async function sendMail(
  creds: SmtpCredentials,
  config: SmtpConfig,
  policy: NetworkPolicy,
  mail: SmtpMail,
  options: SmtpSendOptions,
): Promise<SendResult> {
  // Injection checks first, so a CR/LF anywhere is always reported as invalid_request.
  checkText("operation id", options.operationId);
  checkMailSafety(mail);
  const target = await checkNetwork(config, policy);

  const message: SendMailOptions = {
    from: config.from_name ? { name: config.from_name, address: config.from_email } : config.from_email,
    to: mail.to,
    cc: mail.cc,
    bcc: mail.bcc,
    replyTo: mail.reply_to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    attachments: mail.attachments?.map((a) => ({
      filename: a.filename,
      content: a.content,
      encoding: "base64",
      ...(a.content_type ? { contentType: a.content_type } : {}),
    })),
    headers: options.operationId ? { [OPERATION_ID_HEADER]: options.operationId } : undefined,
  };

  const probe = transmissionProbe();
  const scrub = scrubber(creds);
  const transport = nodemailer.createTransport(transportOptions(creds, config, target, options, probe.logger));
  let info;
  try {
    info = await transport.sendMail(message);
  } catch (err) {
    throw toProviderError(err, config, scrub, probe.messageTransmitted);
  } finally {
    transport.close();
  }

  const lower = (a: unknown) => String(typeof a === "string" ? a : (a as { address?: string })?.address ?? "").toLowerCase();
  const accepted = new Set((info.accepted ?? []).map(lower));
  const rejections = new Map(
    ((info as { rejectedErrors?: SmtpClientError[] }).rejectedErrors ?? []).map((e) => [lower(e.recipient), e]),
  );
  const recipients: RecipientResult[] = allRecipients(mail).map((to) => {
    if (accepted.has(to)) return { to, ok: true, status: "250", message_id: info.messageId };
    const e = rejections.get(to);
    return {
      to,
      ok: false,
      status: e?.responseCode ? String(e.responseCode) : "rejected",
      error: e?.response ? scrub(e.response) : "The SMTP server did not accept this recipient",
    };
  });

  return {
    sentCount: recipients.filter((r) => r.ok).length,
    providerMessageIds: [info.messageId],
    recipients,
    data: {
      message_id: info.messageId,
      response: typeof info.response === "string" ? scrub(info.response) : undefined,
      accepted: recipients.filter((r) => r.ok).map((r) => r.to),
      rejected: recipients.filter((r) => !r.ok).map((r) => r.to),
    },
  };
}

async function testConnection(
  creds: SmtpCredentials,
  config: SmtpConfig,
  policy: NetworkPolicy,
  options: CallOptions,
): Promise<TestConnectionResult> {
  const target = await checkNetwork(config, policy);
  const probe = transmissionProbe();
  const transport = nodemailer.createTransport(transportOptions(creds, config, target, options, probe.logger));
  try {
    await transport.verify();
  } catch (err) {
    const e = toProviderError(err, config, scrubber(creds), false);
    return { ok: false, message: e.message, details: { kind: e.kind, ...e.details } };
  } finally {
    transport.close();
  }
  return {
    ok: true,
    message: `Connected to ${config.host}:${config.port} over ${config.security === "tls" ? "TLS" : "STARTTLS"} and authenticated`,
    details: { host: config.host, port: config.port, security: config.security },
  };
}
