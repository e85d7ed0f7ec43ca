/**
 * The sendgrid_send_email tool: schema (source of the capability's JSON Schema),
 * recipient extraction, redacted summary and the call into the SendGrid adapter.
 */
import { z } from "zod";
import { allRecipients, mailInputShape, MAX_RECIPIENTS, checkRecipientLists, summarizeMail } from "../providers/email.ts";
import { createSendGridClient } from "../providers/sendgrid.ts";
import { count, sendOutput, sendResult } from "./results.ts";
import type { ToolDefinition } from "./types.ts";

/** SendGrid refuses send_at further ahead than this. */
export const MAX_SCHEDULE_AHEAD_MS = 72 * 60 * 60 * 1000;

const category = z
  .string()
  .min(1)
  .max(255)
  // Categories travel in an SMTP header (X-SMTPAPI) downstream.
  .regex(/^[^\r\n\u0000]*$/, { message: "must not contain line breaks or NUL" });

const templateData = z.record(z.string(), z.unknown());
/**
 * The same data as a JSON-encoded object: OpenAI strict mode cannot describe a free-form
 * object, so its tool schema asks for this form (see tool-schemas.ts).
 */
const templateDataJson = z.string().max(100_000).transform((text, ctx) => {
  try {
    return templateData.parse(JSON.parse(text));
  } catch {
    ctx.addIssue({ code: "custom", message: "must be a JSON object (or a JSON-encoded object)" });
    return z.NEVER;
  }
});

export const sendgridSendEmailSchema = z
  .strictObject({
    ...mailInputShape(),
    template_id: z
      .string()
      .regex(/^d-[0-9a-f]{32}$/, { message: "must be a dynamic template id: d- followed by 32 hex digits" })
      .optional()
      .describe("SendGrid dynamic template id (d-…); replaces subject/text/html"),
    dynamic_template_data: z
      .union([templateData, templateDataJson])
      .optional()
      .describe("Values for the template's {{handlebars}}; only with template_id"),
    categories: z
      .array(category)
      .max(10)
      .refine((list) => new Set(list).size === list.length, { message: "categories must be unique" })
      .optional()
      .describe("Up to 10 unique tags for SendGrid statistics"),
    send_at: z
      .iso.datetime({ offset: true })
      .refine((value) => Date.parse(value) - Date.now() <= MAX_SCHEDULE_AHEAD_MS, {
        message: "send_at may be at most 72 hours ahead",
      })
      .optional()
      .describe("Schedule delivery (ISO 8601 with timezone, at most 72 h ahead); omit to send now"),
  })
  .superRefine((mail, ctx) => {
    // Refinements may run on partly invalid input (e.g. a bad address kept its case),
    // so only rely on what the checks below test themselves.
    if (mail.template_id === undefined) {
      if (mail.subject === undefined) {
        ctx.addIssue({ code: "custom", path: ["subject"], message: "subject is required unless template_id is set" });
      }
      if (mail.text === undefined && mail.html === undefined) {
        ctx.addIssue({ code: "custom", path: ["text"], message: "text or html is required unless template_id is set" });
      }
      if (mail.dynamic_template_data !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["dynamic_template_data"],
          message: "dynamic_template_data requires template_id",
        });
      }
    }

    checkRecipientLists(mail, ctx, MAX_RECIPIENTS);
  })
  .describe("Send an e-mail through SendGrid, with your own subject and text/html or a dynamic template.");

/** What SendGrid answered, on top of Switchboard's send fields. */
export const sendgridSendEmailOutput = sendOutput(sendResult({
  message_id: z.string().nullable().describe("SendGrid's X-Message-Id (its events carry it)."),
  recipient_count: count(),
  send_at: z.string().optional().describe("When SendGrid will deliver a scheduled mail."),
}));

export type SendgridSendEmailInput = z.output<typeof sendgridSendEmailSchema>;

export const sendgridSendEmail: ToolDefinition<typeof sendgridSendEmailSchema> = {
  capability: "sendgrid_send_email",
  sendsMessages: true,
  provider: "sendgrid",
  schema: sendgridSendEmailSchema,
  output: sendgridSendEmailOutput,

  recipients: (args) => allRecipients(args),

  /** Counts and metadata only: never bodies, addresses or attachment content. */
  summarize: (args) => ({
    ...summarizeMail(args),
    template_id: args.template_id ?? null,
    categories: args.categories ?? [],
    send_at: args.send_at ?? null,
  }),

  // async so that a refused config rejects instead of throwing synchronously.
  async execute(ctx, args) {
    const client = createSendGridClient({ credentials: ctx.credentials, config: ctx.config, network: ctx.network });
    return client.sendMail(args, { ...ctx.options, operationId: ctx.operationId });
  },
};

export const sendgridTools: ToolDefinition[] = [sendgridSendEmail];
