/**
 * ClickSend tools: one ToolDefinition per capability. The zod schemas are the single
 * source of truth for tool input (the stored JSON Schema is generated from them with
 * z.toJSONSchema(schema, { io: "input" })), so keep them representable: transforms and
 * refinements are fine, z.function / z.date are not.
 */
import { z } from "zod";
import { type ClickSendClient, createClickSendClient, SENDER_ID_PATTERN } from "../providers/clicksend.ts";
import { phoneNumber, summarizeSms } from "./messaging.ts";
import { count, readResult, sendOutput, sendResult } from "./results.ts";
import type { ToolContext, ToolDefinition } from "./types.ts";

// ---------------------------------------------------------------------------
// Shared field schemas
// ---------------------------------------------------------------------------

/** Recipient list: validated, normalised, then de-duplicated (first occurrence wins). */
const recipients = (max: number) =>
  z
    .array(phoneNumber)
    .min(1)
    .max(max)
    .transform((numbers) => [...new Set(numbers)])
    .describe(
      `Recipient mobile numbers in international format with country code, e.g. "+61412345678" (1-${max}). Duplicates are sent once.`,
    );

const senderId = z
  .string()
  .regex(SENDER_ID_PATTERN, "Sender id must be an E.164 number or 3-11 letters/digits without spaces.")
  .describe(
    "Optional sender id: a dedicated number in E.164 or an alphanumeric tag of 3-11 letters/digits (recipients cannot reply to a tag). Must be a number you may use when the account has registered numbers; omit to send from your default number (or the account's).",
  );

/** ISO-8601 instant in the future → unix seconds. */
const scheduleAt = z
  .iso.datetime({ offset: true })
  .transform((value, ctx) => {
    const seconds = Math.floor(Date.parse(value) / 1000);
    if (seconds <= Math.floor(Date.now() / 1000)) {
      ctx.issues.push({ code: "custom", message: "schedule_at must be in the future.", input: value });
      return z.NEVER;
    }
    return seconds;
  })
  .describe("Optional send time, ISO-8601 with timezone, e.g. \"2030-01-31T09:00:00+10:00\". Must be in the future. Omit to send now.");

const notBlank = (text: string) => text.trim().length > 0;

const isoInstant = (what: string) =>
  z.iso.datetime({ offset: true }).transform((v) => Math.floor(Date.parse(v) / 1000)).describe(
    `${what}, ISO-8601 with timezone, e.g. "2030-01-31T00:00:00Z".`,
  );

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

export const sendSmsSchema = z.strictObject({
  to: recipients(10_000),
  body: z
    .string()
    .min(1)
    .max(1600)
    .refine(notBlank, "body must not be blank.")
    .describe("Message text (1-1600 characters). Over 160 GSM characters (70 with emoji/non-Latin) is billed as several parts."),
  from: senderId.optional(),
  schedule_at: scheduleAt.optional(),
});

export const sendMmsSchema = z.strictObject({
  to: recipients(1000),
  body: z
    .string()
    .min(1)
    .max(1500)
    .refine(notBlank, "body must not be blank.")
    .describe("Message text (1-1500 characters; ClickSend truncates non-Latin text beyond 500)."),
  subject: z.string().min(1).max(20).describe("MMS subject line, 1-20 characters."),
  media_url: z
    .url({ protocol: /^https$/ })
    .max(2000)
    .describe("Public https URL of the image to attach: .jpg or .gif, at most 250 kB."),
  from: senderId.optional(),
  schedule_at: scheduleAt.optional(),
});

export const getBalanceSchema = z.strictObject({});

export const historySchema = z
  .strictObject({
    page: z.int().min(1).max(1_000_000).optional().describe("Page number, starting at 1 (default 1)."),
    limit: z.int().min(15).max(100).optional().describe("Records per page, 15-100 (default 15)."),
    date_from: isoInstant("Only messages on or after this time").optional(),
    date_to: isoInstant("Only messages on or before this time").optional(),
  })
  .refine((q) => q.date_from === undefined || q.date_to === undefined || q.date_from <= q.date_to, {
    message: "date_from must not be after date_to.",
    path: ["date_from"],
  });

// ---------------------------------------------------------------------------
// Results (the tools' output schemas; ./results.ts adds Switchboard's fields)
// ---------------------------------------------------------------------------

/** ClickSend's totals over the requests of one send (SMS and MMS alike). */
const clicksendSendData = {
  total_price: z.number().describe("What ClickSend charged for the send, in the account's currency."),
  queued_count: count(),
  blocked_count: count(),
  sent_count: count(),
  failed_count: count(),
  requests: count().describe("Requests made to ClickSend (1000 messages each)."),
  currency: z.string().optional().describe("The account's currency, e.g. AUD."),
};

export const sendOutputSchema = sendOutput(sendResult(clicksendSendData));

export const balanceOutputSchema = readResult({
  balance: z.union([z.number(), z.string()]).optional().describe("The account balance."),
  currency: z.looseObject({ currency_name_short: z.string().optional() }).optional().describe("The account's currency."),
});

export const historyOutputSchema = readResult({
  total: z.number(),
  per_page: z.number(),
  current_page: z.number(),
  last_page: z.number(),
  records: z.array(z.record(z.string(), z.unknown())).describe("ClickSend's message records, newest first."),
});

export type SendSmsArgs = z.output<typeof sendSmsSchema>;
export type SendMmsArgs = z.output<typeof sendMmsSchema>;
export type HistoryArgs = z.output<typeof historySchema>;

// ---------------------------------------------------------------------------
// Execution helpers
// ---------------------------------------------------------------------------

/**
 * The ClickSend client for a call, built from the connection and the deployment's network
 * policy: the stored config is checked, and every request (and the MMS media URL) goes
 * through the network guard.
 */
function client(ctx: ToolContext): ClickSendClient {
  return createClickSendClient({ credentials: ctx.credentials, config: ctx.config, network: ctx.network });
}

function scheduleSummary(schedule?: number) {
  return schedule === undefined ? {} : { schedule_at: new Date(schedule * 1000).toISOString() };
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

export const clicksendSendSms: ToolDefinition<typeof sendSmsSchema> = {
  capability: "clicksend_send_sms",
  sendsMessages: true,
  provider: "clicksend_sms",
  schema: sendSmsSchema,
  output: sendOutputSchema,
  recipients: (args) => args.to,
  sender: (args) => args.from,
  summarize: (args) => ({ ...summarizeSms(args), ...scheduleSummary(args.schedule_at) }),
  async execute(ctx, args) {
    const messages = args.to.map((to) => ({
      to,
      body: args.body,
      from: ctx.sender ?? undefined,
      schedule: args.schedule_at,
      custom_string: ctx.operationId,
    }));
    return client(ctx).sendSms(messages, ctx.options);
  },
};

export const clicksendSendMms: ToolDefinition<typeof sendMmsSchema> = {
  capability: "clicksend_send_mms",
  sendsMessages: true,
  provider: "clicksend_sms",
  schema: sendMmsSchema,
  output: sendOutputSchema,
  recipients: (args) => args.to,
  sender: (args) => args.from,
  summarize(args) {
    return {
      recipient_count: args.to.length,
      body_length: args.body.length,
      subject: args.subject,
      media_host: new URL(args.media_url).hostname,
      ...(args.from ? { from: args.from } : {}),
      ...scheduleSummary(args.schedule_at),
    };
  },
  async execute(ctx, args) {
    const messages = args.to.map((to) => ({
      to,
      body: args.body,
      subject: args.subject,
      from: ctx.sender ?? undefined,
      schedule: args.schedule_at,
      custom_string: ctx.operationId,
    }));
    // The adapter judges media_url with the network guard before ClickSend sees it.
    return client(ctx).sendMms({ media_file: args.media_url, messages }, ctx.options);
  },
};

export const clicksendGetBalance: ToolDefinition<typeof getBalanceSchema> = {
  capability: "clicksend_get_balance",
  sendsMessages: false,
  provider: "clicksend_sms",
  schema: getBalanceSchema,
  output: balanceOutputSchema,
  recipients: () => [],
  summarize: () => ({}),
  async execute(ctx) {
    return client(ctx).getBalance(ctx.options);
  },
};

function historyTool(
  capability: "clicksend_get_sms_history" | "clicksend_get_mms_history",
  read: "getSmsHistory" | "getMmsHistory",
): ToolDefinition<typeof historySchema> {
  return {
    capability,
    provider: "clicksend_sms",
    sendsMessages: false,
    schema: historySchema,
    output: historyOutputSchema,
    recipients: () => [],
    summarize: (args) => ({ ...args }),
    async execute(ctx, args) {
      return client(ctx)[read](args, ctx.options);
    },
  };
}

export const clicksendGetSmsHistory = historyTool("clicksend_get_sms_history", "getSmsHistory");
export const clicksendGetMmsHistory = historyTool("clicksend_get_mms_history", "getMmsHistory");

/** All ClickSend tools, in display order. */
export const clicksendTools: ToolDefinition[] = [
  clicksendSendSms,
  clicksendSendMms,
  clicksendGetBalance,
  clicksendGetSmsHistory,
  clicksendGetMmsHistory,
];
