/**
 * Text-message tools of the providers on the one adapter interface (Twilio, Telnyx,
 * Exotel): one schema per channel (SMS, MMS, WhatsApp), shared by every provider, plus
 * the provider's balance and click-to-call where it has them. The zod schemas are the
 * single source of truth for tool input (see ./clicksend.ts for the rules they follow).
 */
import { z } from "zod";
import type { MessagingAdapter, OutboundMessage } from "../providers/adapter.ts";
import { ApiError } from "../errors.ts";
import { guardUrl } from "../net/guard.ts";
import { normalizePhoneNumber } from "../providers/phone.ts";
import { countSmsSegments } from "../providers/sms-segments.ts";
import { count, readResult, sendOutput, sendResult } from "./results.ts";
import type { ProviderName, ToolContext, ToolDefinition } from "./types.ts";

/** Recipients per call: these providers take one recipient per request. */
export const MAX_RECIPIENTS_PER_CALL = 100;

/** One phone number, normalised to E.164; invalid numbers become a validation issue. */
export const phoneNumber = z
  .string()
  .max(40)
  .transform((value, ctx) => {
    try {
      return normalizePhoneNumber(value);
    } catch (error) {
      ctx.issues.push({ code: "custom", message: (error as Error).message, input: value });
      return z.NEVER;
    }
  });

const recipients = z
  .array(phoneNumber)
  .min(1)
  .max(MAX_RECIPIENTS_PER_CALL)
  .transform((numbers) => [...new Set(numbers)])
  .describe(
    `Recipient numbers in international format with country code, e.g. "+14155550123" (1-${MAX_RECIPIENTS_PER_CALL}). Duplicates are sent once.`,
  );

const from = phoneNumber.describe(
  "Optional number to send from, E.164. Must be a number you may use; omit to send from your default number (or the account's).",
);

const notBlank = (text: string) => text.trim().length > 0;

const body = (max: number) =>
  z.string().min(1).max(max).refine(notBlank, "body must not be blank.");

const mediaUrls = z
  .array(z.url({ protocol: /^https$/ }).max(2000))
  .min(1)
  .max(10)
  .describe("Public https URLs of the media to attach (1-10); the provider fetches them.");

export const smsSendSchema = z.strictObject({
  to: recipients,
  body: body(1600).describe(
    "Message text (1-1600 characters). Over 160 GSM characters (70 with emoji/non-Latin) is billed as several parts.",
  ),
  from: from.optional(),
});

export const mmsSendSchema = z.strictObject({
  to: recipients,
  body: body(1600).optional().describe("Message text (up to 1600 characters)."),
  media_urls: mediaUrls,
  subject: z.string().min(1).max(40).optional().describe("MMS subject, where the carrier shows one (1-40 characters)."),
  from: from.optional(),
});

/** The WhatsApp fields (also the channel tool's, which adds `account`). */
export const whatsappSendShape = {
  to: recipients,
  body: body(4096).optional().describe(
    "Message text (up to 4096 characters). Free-form text reaches only people who wrote to you in the last 24 hours; otherwise use a template.",
  ),
  template: z
    .strictObject({
      id: z.string().min(1).max(200).describe("The approved template's id (Twilio Content SID, Exotel template name)."),
      language: z.string().regex(/^[a-z]{2,3}(?:_[A-Z]{2})?$/).optional().describe("Template language, e.g. \"en\" or \"en_US\"."),
      variables: z.array(z.string().max(1000)).max(20).optional()
        .describe("Values for the template's numbered placeholders, in order: {{1}}, {{2}}, …"),
    })
    .optional()
    .describe("A pre-approved template, for people outside the 24-hour window."),
  media_urls: mediaUrls.optional(),
  from: from.optional(),
};

/** A WhatsApp message is text or a template. */
export function bodyOrTemplate(message: { body?: string; template?: unknown }, ctx: z.RefinementCtx) {
  if (message.body === undefined && message.template === undefined) {
    ctx.addIssue({ code: "custom", path: ["body"], message: "give body or template." });
  }
}

export const whatsappSendSchema = z.strictObject(whatsappSendShape).superRefine(bodyOrTemplate);

export const balanceSchema = z.strictObject({});

export const clickToCallSchema = z.strictObject({
  to: phoneNumber.describe("The number to call, E.164: rung once `from` answers."),
  from_phone: phoneNumber.describe("Your own phone, E.164: rung first."),
  caller_id: from.optional().describe("The account's number both parties see, E.164; omit for your default number."),
  time_limit_seconds: z.int().min(60).max(14_400).optional().describe("Longest call in seconds (60-14400)."),
});

/** The data Twilio, Telnyx and Exotel add to a send's result (each sets the counts; the rest where it has them). */
const messagingSendData = {
  sent_count: count(),
  failed_count: count(),
  requests: count().describe("Requests made to the provider."),
  channel: z.enum(["sms", "mms", "whatsapp"]).optional(),
  total_cost: z.string().optional().describe("Telnyx: the send's cost, when it priced every message in one currency."),
  currency: z.string().optional(),
  refused: z.array(z.looseObject({})).optional().describe("Exotel: requests it refused (their numbers are failed recipients)."),
  unconfirmed_count: count().optional().describe("Exotel: numbers its answer did not account for (counted as maybe sent)."),
};

const messagingSendOutput = sendOutput(sendResult(messagingSendData));

const balanceOutput = readResult({
  balance: z.union([z.number(), z.string()]).optional().describe("The account balance (Telnyx: a decimal string)."),
  currency: z.string().optional(),
});

const clickToCallOutput = sendOutput(sendResult({
  channel: z.literal("voice"),
  call_sid: z.string().describe("The provider's call id."),
  from: z.string().describe("Your phone, rung first."),
  to: z.string().describe("The number called once you answer."),
  caller_id: z.string().describe("The number both parties see."),
}));

/** What the ledger keeps of an SMS: counts and encoding, never the text. */
export function summarizeSms(args: { to: string[]; body: string; from?: string }): Record<string, unknown> {
  const { encoding, segments } = countSmsSegments(args.body);
  return { recipient_count: args.to.length, body_length: args.body.length, segments, encoding, ...(args.from ? { from: args.from } : {}) };
}

/** What the ledger keeps of an MMS: counts and media hosts, never the text or full URLs. */
export function summarizeMms(args: z.output<typeof mmsSendSchema>): Record<string, unknown> {
  return {
    recipient_count: args.to.length,
    body_length: args.body?.length ?? 0,
    media_count: args.media_urls.length,
    media_hosts: [...new Set(args.media_urls.map((u) => new URL(u).hostname))],
    ...(args.from ? { from: args.from } : {}),
  };
}

/** What the ledger keeps of a WhatsApp message: counts and the template id, never the text. */
export function summarizeWhatsApp(args: z.output<typeof whatsappSendSchema>): Record<string, unknown> {
  return {
    recipient_count: args.to.length,
    body_length: args.body?.length ?? 0,
    ...(args.template ? { template: args.template.id } : {}),
    media_count: args.media_urls?.length ?? 0,
    ...(args.from ? { from: args.from } : {}),
  };
}

/** Media URLs are the caller's: judged like every outbound destination before a provider sees them. */
async function judgeMedia(ctx: ToolContext, urls: string[] | undefined): Promise<void> {
  for (const url of urls ?? []) await guardUrl(url, ctx.network, { field: "media_urls", source: "arguments", httpsOnly: true });
}

function adapterContext(ctx: ToolContext) {
  return { credentials: ctx.credentials, config: ctx.config, network: ctx.network, options: ctx.options };
}

function message(ctx: ToolContext, fields: Omit<OutboundMessage, "operationId" | "from" | "statusCallbackUrl">): OutboundMessage {
  return { ...fields, from: ctx.sender ?? null, operationId: ctx.operationId, statusCallbackUrl: ctx.statusCallbackUrl };
}

export interface MessagingToolSpec {
  provider: ProviderName;
  /** Capability key prefix, e.g. "twilio". */
  prefix: string;
  adapter: MessagingAdapter;
  channels: ReadonlyArray<"sms" | "mms" | "whatsapp">;
}

/** The send tools of one provider, one per channel it carries, plus balance and click-to-call where it has them. */
export function messagingTools(spec: MessagingToolSpec): ToolDefinition[] {
  const { provider, prefix, adapter } = spec;
  const tools: ToolDefinition[] = [];
  if (spec.channels.includes("sms")) {
    tools.push({
      capability: `${prefix}_send_sms`,
      provider,
      sendsMessages: true,
      schema: smsSendSchema,
      output: messagingSendOutput,
      recipients: (args: z.output<typeof smsSendSchema>) => args.to,
      sender: (args: z.output<typeof smsSendSchema>) => args.from,
      summarize: summarizeSms,
      execute: (ctx: ToolContext, args: z.output<typeof smsSendSchema>) =>
        adapter.send(adapterContext(ctx), message(ctx, { channel: "sms", to: args.to, body: args.body })),
    } as ToolDefinition);
  }
  if (spec.channels.includes("mms")) {
    tools.push({
      capability: `${prefix}_send_mms`,
      provider,
      sendsMessages: true,
      schema: mmsSendSchema,
      output: messagingSendOutput,
      recipients: (args: z.output<typeof mmsSendSchema>) => args.to,
      sender: (args: z.output<typeof mmsSendSchema>) => args.from,
      summarize: summarizeMms,
      async execute(ctx: ToolContext, args: z.output<typeof mmsSendSchema>) {
        await judgeMedia(ctx, args.media_urls);
        return adapter.send(adapterContext(ctx), message(ctx, {
          channel: "mms", to: args.to, body: args.body, mediaUrls: args.media_urls, subject: args.subject,
        }));
      },
    } as ToolDefinition);
  }
  if (spec.channels.includes("whatsapp")) {
    tools.push({
      capability: `${prefix}_send_whatsapp`,
      provider,
      sendsMessages: true,
      schema: whatsappSendSchema,
      output: messagingSendOutput,
      recipients: (args: z.output<typeof whatsappSendSchema>) => args.to,
      sender: (args: z.output<typeof whatsappSendSchema>) => args.from,
      summarize: summarizeWhatsApp,
      async execute(ctx: ToolContext, args: z.output<typeof whatsappSendSchema>) {
        await judgeMedia(ctx, args.media_urls);
        const template = args.template && {
          id: args.template.id,
          language: args.template.language,
          variables: args.template.variables && Object.fromEntries(args.template.variables.map((value, i) => [String(i + 1), value])),
        };
        return adapter.send(adapterContext(ctx), message(ctx, {
          channel: "whatsapp", to: args.to, body: args.body, mediaUrls: args.media_urls, template,
        }));
      },
    } as ToolDefinition);
  }
  if (adapter.balance) {
    const balance = adapter.balance.bind(adapter);
    tools.push({
      capability: `${prefix}_get_balance`,
      provider,
      sendsMessages: false,
      schema: balanceSchema,
      output: balanceOutput,
      recipients: () => [],
      summarize: () => ({}),
      execute: (ctx: ToolContext) => balance(adapterContext(ctx)),
    } as ToolDefinition);
  }
  if (adapter.call) {
    const call = adapter.call.bind(adapter);
    tools.push({
      capability: `${prefix}_click_to_call`,
      provider,
      sendsMessages: true,
      schema: clickToCallSchema,
      output: clickToCallOutput,
      recipients: (args: z.output<typeof clickToCallSchema>) => [args.to],
      sender: (args: z.output<typeof clickToCallSchema>) => args.caller_id,
      summarize: (args: z.output<typeof clickToCallSchema>) => ({
        recipient_count: 1,
        ...(args.caller_id ? { from: args.caller_id } : {}),
        ...(args.time_limit_seconds ? { time_limit_seconds: args.time_limit_seconds } : {}),
      }),
      async execute(ctx: ToolContext, args: z.output<typeof clickToCallSchema>) {
        if (!ctx.sender) {
          throw new ApiError("invalid_request", "click-to-call needs a caller id: name caller_id, or add a number you may use to the account");
        }
        return call(adapterContext(ctx), {
          from: args.from_phone,
          to: args.to,
          callerId: ctx.sender,
          timeLimitSeconds: args.time_limit_seconds,
          operationId: ctx.operationId,
          statusCallbackUrl: ctx.statusCallbackUrl,
        });
      },
    } as ToolDefinition);
  }
  return tools;
}
