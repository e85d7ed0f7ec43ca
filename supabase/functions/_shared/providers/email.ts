/**
 * E-mail input rules shared by every mail tool (SendGrid, SMTP).
 *
 * The schemas here are the single source of truth for what an agent may put into a
 * mail: they are turned into the tools' JSON Schemas, so prefer declarative checks
 * (regex, min/max) that survive `z.toJSONSchema`; refinements are used only for rules
 * JSON Schema cannot express (total attachment size).
 *
 * Runtime-neutral: zod plus web-standard APIs only (runs in Deno and Node).
 */
import { z } from "zod";

/** RFC 5321 caps a forward path at 256 octets including the angle brackets: 254 usable. */
export const MAX_EMAIL_LENGTH = 254;
/** Recipients per message across to+cc+bcc (SendGrid's limit; also a sane SMTP cap). */
export const MAX_RECIPIENTS = 1000;
/** RFC 5322 line-length limit; a longer subject could not be written without folding. */
export const MAX_SUBJECT_LENGTH = 998;
export const MAX_ATTACHMENTS = 10;
/** Total decoded attachment size per message (10 MiB). */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;
/** Base64 length of MAX_ATTACHMENT_BYTES: bounds a single attachment before decoding. */
const MAX_ATTACHMENT_BASE64_LENGTH = Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4;

// CR/LF would let a value start a new header (header injection); NUL truncates in
// some MTAs. `\u0000` rather than `\0` keeps the generated JSON Schema pattern portable.
const HEADER_SAFE = /^[^\r\n\u0000]*$/;
// SendGrid refuses `;` and `,` in names; both also split address lists in raw headers.
const DISPLAY_NAME_SAFE = /^[^\r\n\u0000;,]*$/;
// Strict base64 (standard alphabet, no whitespace) as a flat character class plus a
// length check: the usual `(?:[A-Za-z0-9+/]{4})*` group (also zod's z.base64()) overflows
// V8's regex stack on attachments of a few MB.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
// type/subtype with optional parameters, e.g. "text/csv; charset=utf-8".
const MIME_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(?:\s*;[^\r\n\u0000]*)?$/;

/**
 * One e-mail address, normalised to lower case so that permission patterns, the
 * duplicate check and usage logs compare addresses reliably.
 */
export const emailAddress = z
  .email({ message: "must be a valid e-mail address" })
  .max(MAX_EMAIL_LENGTH)
  .transform((address) => address.toLowerCase());

/** Text that goes into a mail header (e.g. the subject): no line breaks, no NUL. */
export const headerSafeText = z
  .string()
  .regex(HEADER_SAFE, { message: "must not contain line breaks (CR/LF) or NUL characters" });

/** A display name for an address header ("Jane Doe" in `Jane Doe <jane@example.com>`). */
export const displayName = z
  .string()
  .min(1)
  .max(256)
  .regex(DISPLAY_NAME_SAFE, { message: "must not contain line breaks, NUL, ';' or ','" });

/** Number of bytes a (padded, whitespace-free) base64 string decodes to, without decoding it. */
export function base64DecodedSize(b64: string): number {
  let padding = 0;
  if (b64.endsWith("==")) padding = 2;
  else if (b64.endsWith("=")) padding = 1;
  return Math.floor(((b64.length - padding) * 3) / 4);
}

export const attachment = z
  .strictObject({
    filename: headerSafeText.min(1).max(255).describe("File name shown to the recipient, e.g. report.pdf"),
    content: z
      .string()
      .min(1)
      .max(MAX_ATTACHMENT_BASE64_LENGTH)
      .regex(BASE64_CHARS, { message: "must be base64 (standard alphabet, padded, no line breaks)" })
      .refine((b64) => b64.length % 4 === 0, { message: "must be padded base64 (length a multiple of 4)" })
      .describe("File content, base64-encoded"),
    content_type: z
      .string()
      .max(255)
      .regex(MIME_TYPE, { message: "must be a MIME type such as application/pdf" })
      .optional()
      .describe("MIME type, e.g. application/pdf; guessed from the file name if omitted"),
  });

export type Attachment = z.output<typeof attachment>;

const attachments = z
  .array(attachment)
  .max(MAX_ATTACHMENTS)
  .superRefine((list, ctx) => {
    let total = 0;
    for (const item of list) {
      // Defensive: refinements can run even when an item failed its own checks.
      if (typeof item?.content === "string") total += base64DecodedSize(item.content);
    }
    if (total > MAX_ATTACHMENT_BYTES) {
      ctx.addIssue({
        code: "custom",
        message: `attachments total ${total} bytes after decoding; the limit is ${MAX_ATTACHMENT_BYTES} bytes (10 MB) per message`,
      });
    }
  });

const addressList = (what: string) =>
  z.array(emailAddress).max(MAX_RECIPIENTS).describe(what);

/**
 * The zod object fields every mail tool shares. A function (not a constant) so each
 * tool spreads its own copy into `z.strictObject({...mailInputShape(), ...})`.
 */
export function mailInputShape() {
  return {
    to: addressList("Recipient addresses (1-1000). All recipients see each other in To.").min(1),
    cc: addressList("Carbon-copy addresses").optional(),
    bcc: addressList("Blind-copy addresses (hidden from other recipients)").optional(),
    subject: headerSafeText.min(1).max(MAX_SUBJECT_LENGTH).optional().describe("Subject line, single line"),
    text: z.string().min(1).optional().describe("Plain-text body"),
    html: z.string().min(1).optional().describe("HTML body"),
    reply_to: emailAddress.optional().describe("Address replies should go to"),
    attachments: attachments
      .optional()
      .describe(`Up to ${MAX_ATTACHMENTS} files, at most 10 MB in total after decoding`),
  };
}

/** The parsed mail fields {@link allRecipients} needs. */
export interface MailRecipients {
  to: readonly string[];
  cc?: readonly string[];
  bcc?: readonly string[];
}

/** De-duplicated, lower-case to+cc+bcc in first-seen order (the recipients checked and counted). */
export function allRecipients(args: MailRecipients): string[] {
  const seen = new Set<string>();
  for (const list of [args.to, args.cc ?? [], args.bcc ?? []]) {
    for (const address of list) seen.add(address.toLowerCase());
  }
  return [...seen];
}

/** A validated mail, as the mail tools' schemas output it (SMTP and SendGrid alike). */
export interface MailMessage {
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  text?: string;
  html?: string;
  reply_to?: string;
  attachments?: Attachment[];
}

/** A mail's redacted summary for the operation log: counts and metadata, never bodies, addresses or attachment content. */
export function summarizeMail(args: MailMessage): Record<string, unknown> {
  return {
    to_count: args.to.length,
    cc_count: args.cc?.length ?? 0,
    bcc_count: args.bcc?.length ?? 0,
    recipient_count: allRecipients(args).length,
    subject_length: args.subject?.length ?? 0,
    has_text: args.text !== undefined,
    has_html: args.html !== undefined,
    has_reply_to: args.reply_to !== undefined,
    attachments: (args.attachments ?? []).map((a) => ({
      filename: a.filename,
      size: base64DecodedSize(a.content),
      ...(a.content_type ? { content_type: a.content_type } : {}),
    })),
  };
}

/**
 * Adds zod issues for an address listed more than once across to/cc/bcc and for more
 * than `limit` recipients in all. Refinements may run on partly invalid input, so
 * types are tested before use.
 */
export function checkRecipientLists(
  mail: { to?: unknown; cc?: unknown; bcc?: unknown },
  ctx: z.RefinementCtx,
  limit: number,
): void {
  const seen = new Set<string>();
  let total = 0;
  for (const field of ["to", "cc", "bcc"] as const) {
    const list = mail[field];
    if (!Array.isArray(list)) continue;
    list.forEach((address, index) => {
      total++;
      if (typeof address !== "string") return;
      const key = address.toLowerCase();
      if (seen.has(key)) {
        ctx.addIssue({
          code: "custom",
          path: [field, index],
          message: `${key} appears more than once across to, cc and bcc; list each address once`,
        });
      }
      seen.add(key);
    });
  }
  if (total > limit) {
    ctx.addIssue({
      code: "custom",
      path: ["to"],
      message: `to, cc and bcc together have ${total} recipients; the limit is ${limit} per message`,
    });
  }
}
