/**
 * Channel tools: one tool per channel (sms_send, mms_send, whatsapp_send, email_send)
 * whatever the account. The database picks the account (the one named by `account`, or
 * the caller's route in order) and answers with its provider; the send then runs as that
 * provider's own tool would, from the same validated arguments. A send the provider
 * proved it did not take moves to the route's next account (tool-call.ts).
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import type { Channel } from "../providers/adapter.ts";
import {
  bodyOrTemplate, mmsSendSchema, smsSendSchema, summarizeMms, summarizeSms, summarizeWhatsApp, whatsappSendShape,
} from "./messaging.ts";
import { channelSendResult, sendOutput } from "./results.ts";
import { refineSmtpMail, smtpSendEmailShape } from "./smtp.ts";
import type { ProviderName, ToolContext, ToolDefinition } from "./types.ts";
import { allRecipients, summarizeMail } from "../providers/email.ts";

// The account (and the idempotency key) every tool takes is added by tool-schemas.ts.
export const smsChannelSchema = smsSendSchema;
export const mmsChannelSchema = mmsSendSchema;
export const whatsappChannelSchema = z.strictObject(whatsappSendShape).superRefine(bodyOrTemplate);
export const emailChannelSchema = z.strictObject(smtpSendEmailShape).superRefine(refineSmtpMail);

/**
 * What a channel send answers: Switchboard's send fields, the provider it went through and
 * the accounts it failed over from; the provider's own data fields vary with the account.
 */
export const channelSendOutput = sendOutput(channelSendResult({}));

/** How a channel send runs once the database chose its account: as that provider's tool. */
type Runner = (ctx: ToolContext, args: never) => ReturnType<ToolDefinition["execute"]>;
/** The provider tools, by capability key. */
type ToolLookup = (capability: string) => ToolDefinition | undefined;

/** Runs the account's provider tool for this channel (by its capability key) with the channel's arguments. */
function viaProviderTool(lookup: ToolLookup, capability: (provider: ProviderName) => string): Runner {
  return (ctx, args) => {
    const tool = ctx.provider ? lookup(capability(ctx.provider)) : undefined;
    if (!tool) throw new ApiError("invalid_request", "this account's provider cannot send on this channel");
    return tool.execute(ctx, args);
  };
}

function channelTool<S extends z.ZodType>(
  capability: string,
  channel: Channel,
  schema: S,
  spec: {
    recipients: (args: z.output<S>) => string[];
    summarize: (args: z.output<S>) => Record<string, unknown>;
    sender?: (args: z.output<S>) => string | undefined;
    run: Runner;
  },
): ToolDefinition<S> {
  return {
    capability,
    channel,
    sendsMessages: true,
    schema,
    output: channelSendOutput,
    recipients: spec.recipients,
    sender: spec.sender,
    summarize: spec.summarize,
    execute: (ctx, args) => spec.run(ctx, args as never),
  };
}

type Sms = z.output<typeof smsChannelSchema>;
type Mms = z.output<typeof mmsChannelSchema>;
type WhatsApp = z.output<typeof whatsappChannelSchema>;
type Mail = z.output<typeof emailChannelSchema>;

/** The channel tools, in display order, running as the provider tools `lookup` finds. */
export function channelTools(lookup: ToolLookup): ToolDefinition[] {
  const smsSend = channelTool("sms_send", "sms", smsChannelSchema, {
    recipients: (args: Sms) => args.to,
    sender: (args: Sms) => args.from,
    summarize: summarizeSms,
    run: viaProviderTool(lookup, (provider) => provider === "clicksend_sms" ? "clicksend_send_sms" : `${provider}_send_sms`),
  });

  const mmsSend = channelTool("mms_send", "mms", mmsChannelSchema, {
    recipients: (args: Mms) => args.to,
    sender: (args: Mms) => args.from,
    summarize: summarizeMms,
    run: async (ctx, args: Mms) => {
      if (ctx.provider !== "clicksend_sms") return viaProviderTool(lookup, (provider) => `${provider}_send_mms`)(ctx, args as never);
      // ClickSend's MMS carries one media file, a subject and a body.
      if (args.media_urls.length > 1) throw new ApiError("invalid_request", "this account's provider (ClickSend) takes one media file per MMS");
      const clicksendMms = lookup("clicksend_send_mms")!;
      return clicksendMms.execute(ctx, {
        to: args.to, body: args.body ?? " ", subject: args.subject?.slice(0, 20) ?? "MMS", media_url: args.media_urls[0], from: args.from,
      } as never);
    },
  });

  const whatsappSend = channelTool("whatsapp_send", "whatsapp", whatsappChannelSchema, {
    recipients: (args: WhatsApp) => args.to,
    sender: (args: WhatsApp) => args.from,
    summarize: summarizeWhatsApp,
    run: viaProviderTool(lookup, (provider) => `${provider}_send_whatsapp`),
  });

  const emailSend = channelTool("email_send", "email", emailChannelSchema, {
    recipients: (args: Mail) => allRecipients(args),
    summarize: (args: Mail) => summarizeMail(args),
    run: viaProviderTool(lookup, (provider) => `${provider}_send_email`),
  });

  return [smsSend, mmsSend, whatsappSend, emailSend] as ToolDefinition[];
}
