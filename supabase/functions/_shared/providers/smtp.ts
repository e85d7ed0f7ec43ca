/**
 * SMTP adapter on nodemailer (>= 9.0.1 for the CRLF fixes; reference/providers.md §3).
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
 *    rather than left to hang until a timeout, and the host must be public unless the
 *    deployment allows private networks (no SSRF into the project's network).
 *  - CR/LF/NUL never reach a header, address, name or file name. The tool schema already
 *    refuses them; the adapter checks again because it can be called directly.
 *  - No automatic retries. A send that failed after the whole message was handed to the
 *    server is reported with maybeSent = true, so nobody resends it blindly.
 *  - The password never appears in an error message or its details.
 */
import nodemailer from "nodemailer";
import type { SendMailOptions } from "nodemailer";
import { rootCertificates } from "node:tls";
import { ApiError } from "../errors.ts";
import type { NetworkPolicy } from "../tools/types.ts";
import { allRecipients, emailAddress, type MailMessage } from "./email.ts";
import { assertPublicHost } from "./network.ts";
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

export type SmtpSecurity = "tls" | "starttls";

export interface SmtpConfig {
  host: string;
  port: number;
  /** "tls" = implicit TLS (465); "starttls" = upgrade required (587, 2525). Never plain. */
  security: SmtpSecurity;
  from_email: string;
  from_name?: string;
  /** Extra CA certificate (PEM) to trust, for self-hosted relays and the local stack. */
  tls_ca?: string;
  /** Name to expect on the certificate (and send as SNI) when `host` is an IP address. */
  tls_servername?: string;
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

function invalidConfig(message: string): ProviderError {
  return new ProviderError("invalid", message, { provider: "smtp" });
}

/** Reads a connection's stored credentials; missing ones are a connection problem. */
export function toSmtpCredentials(raw: Record<string, unknown>): SmtpCredentials {
  if (typeof raw.username !== "string" || raw.username === "" || typeof raw.password !== "string" || raw.password === "") {
    throw new ProviderError("auth", "The SMTP connection has no username or password", { provider: "smtp" });
  }
  return { username: raw.username, password: raw.password };
}

/** Reads a connection's non-secret config into an SmtpConfig (shape only; see checkConfig). */
export function toSmtpConfig(raw: Record<string, unknown>): SmtpConfig {
  const str = (key: string) => (typeof raw[key] === "string" && raw[key] !== "" ? (raw[key] as string) : undefined);
  const port = typeof raw.port === "string" ? Number(raw.port) : raw.port;
  const config = {
    host: str("host") ?? "",
    port: typeof port === "number" ? port : NaN,
    security: raw.security as SmtpSecurity,
    from_email: str("from_email") ?? "",
    from_name: str("from_name"),
    tls_ca: str("tls_ca"),
    tls_servername: str("tls_servername"),
  };
  checkConfig(config);
  return config;
}

/** Structural checks on a config, also applied when the adapter is called directly. */
function checkConfig(config: SmtpConfig): void {
  if (typeof config.host !== "string" || !/^[^\s\u0000]{1,253}$/.test(config.host)) {
    throw invalidConfig("The SMTP connection needs a host name or IP address (no spaces or line breaks)");
  }
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65535) {
    throw invalidConfig("The SMTP connection needs a port between 1 and 65535");
  }
  if (config.security !== "tls" && config.security !== "starttls") {
    throw invalidConfig('security must be "tls" (implicit TLS, port 465) or "starttls"; plain SMTP is not supported');
  }
  if (typeof config.from_email !== "string" || !emailAddress.safeParse(config.from_email).success) {
    throw invalidConfig("The SMTP connection needs a valid from_email");
  }
  if (config.tls_ca !== undefined && !/-----BEGIN CERTIFICATE-----/.test(config.tls_ca)) {
    throw invalidConfig("tls_ca must be a PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
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
 * The defensive header check for what comes from the connection: every value that ends up
 * in a header line, the envelope or an SMTP command is refused if it carries CR, LF or NUL.
 */
function checkConnectionSafety(creds: SmtpCredentials, config: SmtpConfig, operationId?: string): void {
  checkText("username", creds.username);
  checkText("host", config.host);
  checkText("tls_servername", config.tls_servername);
  checkText("from_name", config.from_name);
  checkAddress("from_email", config.from_email);
  checkText("operation id", operationId);
}

/** The same for the mail itself; addresses must also be addresses. */
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

/** Refuses what the deployment forbids, before any socket is opened. */
async function checkNetwork(config: SmtpConfig, policy: NetworkPolicy): Promise<void> {
  if (policy.blockedSmtpPorts.includes(config.port)) {
    throw new ApiError(
      "invalid_request",
      `SMTP port ${config.port} is blocked here: hosted Supabase Edge Functions cannot open outgoing ` +
        `connections to ports ${policy.blockedSmtpPorts.join(" and ")}. Use port 465 (security "tls") ` +
        `or 2525 (security "starttls") if your provider offers it.`,
      { field: "port", port: config.port, blocked_ports: policy.blockedSmtpPorts },
    );
  }
  await assertPublicHost(config.host, policy);
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

function createTransport(
  creds: SmtpCredentials,
  config: SmtpConfig,
  options: CallOptions,
  logger: ReturnType<typeof transmissionProbe>["logger"],
) {
  const t = options.timeoutMs;
  return nodemailer.createTransport({
    host: config.host,
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
      ...(config.tls_servername ? { servername: config.tls_servername } : {}),
    },
    connectionTimeout: t ?? SMTP_TIMEOUTS.connection,
    greetingTimeout: t ?? SMTP_TIMEOUTS.greeting,
    socketTimeout: t ?? SMTP_TIMEOUTS.socket,
    // Attachments are base64 content only; never let an input make nodemailer read files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger,
  });
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
// Public API
// ---------------------------------------------------------------------------

/**
 * Sends one mail. Resolves with per-recipient results (recipients the server refused at
 * RCPT are failed results: partial success); throws ApiError for refused input or policy
 * and ProviderError for anything the server or the network did.
 */
export async function sendMail(
  creds: SmtpCredentials,
  config: SmtpConfig,
  mail: SmtpMail,
  policy: NetworkPolicy,
  options: SmtpSendOptions = {},
): Promise<SendResult> {
  // Injection checks first, so a CR/LF anywhere is always reported as invalid_request.
  checkConnectionSafety(creds, config, options.operationId);
  checkMailSafety(mail);
  checkConfig(config);
  await checkNetwork(config, policy);

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
  const transport = createTransport(creds, config, options, probe.logger);
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

/**
 * Connects, negotiates TLS and authenticates (nodemailer's verify()), then quits without
 * sending. Every server or network failure is a negative result the user can act on;
 * refused input or policy still throws ApiError.
 */
export async function testConnection(
  creds: SmtpCredentials,
  config: SmtpConfig,
  policy: NetworkPolicy,
  options: CallOptions = {},
): Promise<TestConnectionResult> {
  checkConnectionSafety(creds, config);
  checkConfig(config);
  await checkNetwork(config, policy);
  const probe = transmissionProbe();
  const transport = createTransport(creds, config, options, probe.logger);
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
