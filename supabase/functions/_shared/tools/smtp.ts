/**
 * The smtp_send_email tool: schema (source of the capability's JSON Schema), recipient
 * extraction, redacted summary and the call into the SMTP adapter.
 */
import { z } from "zod";
import { allRecipients, mailInputShape, checkRecipientLists, summarizeMail } from "../providers/email.ts";
import { createSmtpClient } from "../providers/smtp.ts";
import { sendOutput, sendResult } from "./results.ts";
import type { ToolDefinition } from "./types.ts";

/**
 * Recipients per SMTP message (to + cc + bcc). Lower than SendGrid's 1000: relays commonly
 * cap RCPT TO at about 100 per transaction, and one mail to more people is a mailing list.
 */
export const SMTP_MAX_RECIPIENTS = 100;

const shared = mailInputShape();
const limited = (list: typeof shared.to, description: string) =>
  list.max(SMTP_MAX_RECIPIENTS).describe(description);

/** The SMTP mail fields (also the e-mail channel tool's, which adds `account`). */
export const smtpSendEmailShape = {
  ...shared,
  // The shared texts quote SendGrid's 1000; SMTP relays allow far fewer per message.
  to: limited(
    shared.to,
    `Recipient addresses (at least 1). to, cc and bcc together hold at most ${SMTP_MAX_RECIPIENTS} ` +
      "distinct addresses, and all To recipients see each other.",
  ),
  cc: limited(shared.cc.unwrap(), "Carbon-copy addresses, visible to all recipients").optional(),
  bcc: limited(shared.bcc.unwrap(), "Blind-copy addresses, hidden from every other recipient").optional(),
  // Required here (not only in a refinement) so the JSON Schema tells the agent up front.
  subject: shared.subject.unwrap().describe("Subject line: one line of text, no line breaks"),
};

/** A body is required, and the recipient lists within SMTP's limit. */
export function refineSmtpMail(mail: { text?: string; html?: string } & Parameters<typeof checkRecipientLists>[0], ctx: z.RefinementCtx) {
  // Refinements may run on partly invalid input, so test types before relying on them.
  if (mail.text === undefined && mail.html === undefined) {
    ctx.addIssue({ code: "custom", path: ["text"], message: "text or html (or both) is required" });
  }
  checkRecipientLists(mail, ctx, SMTP_MAX_RECIPIENTS);
}

export const smtpSendEmailSchema = z
  .strictObject(smtpSendEmailShape)
  .superRefine(refineSmtpMail)
  .describe(
    "Send one e-mail from the user's own mailbox through their SMTP server. The sender address is fixed " +
      "by the connection. Give a subject and a text and/or html body; to, cc and bcc together hold at most " +
      `${SMTP_MAX_RECIPIENTS} distinct addresses. Bcc recipients are not shown to anyone. Attachments are ` +
      "base64-encoded files. The mail is sent once and never retried automatically.",
  );

/** What the SMTP server answered, on top of Switchboard's send fields. */
export const smtpSendEmailOutput = sendOutput(sendResult({
  message_id: z.string().describe("The mail's Message-ID."),
  response: z.string().optional().describe("The server's final reply."),
  accepted: z.array(z.string()).describe("Addresses the server accepted."),
  rejected: z.array(z.string()).describe("Addresses the server refused."),
}));

export type SmtpSendEmailInput = z.output<typeof smtpSendEmailSchema>;

export const smtpSendEmail: ToolDefinition<typeof smtpSendEmailSchema> = {
  capability: "smtp_send_email",
  sendsMessages: true,
  provider: "smtp",
  schema: smtpSendEmailSchema,
  output: smtpSendEmailOutput,

  recipients: (args) => allRecipients(args),

  /** Counts and metadata only: never bodies, addresses or attachment content. */
  summarize: (args) => summarizeMail(args),

  // async so that a refused config rejects instead of throwing synchronously.
  async execute(ctx, args) {
    const client = createSmtpClient({ credentials: ctx.credentials, config: ctx.config, network: ctx.network });
    return client.sendMail(args, { ...ctx.options, operationId: ctx.operationId });
  },
};

export const smtpTools: ToolDefinition[] = [smtpSendEmail];
