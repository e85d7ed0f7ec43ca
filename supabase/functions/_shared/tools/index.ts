/** Every tool, by capability key. The database's capability rows mirror this list. */
import { exotelAdapter } from "../providers/exotel.ts";
import { telnyxAdapter } from "../providers/telnyx.ts";
import { twilioAdapter } from "../providers/twilio.ts";
import { channelTools } from "./channels.ts";
import { clicksendTools } from "./clicksend.ts";
import { messagingTools } from "./messaging.ts";
import { sendgridTools } from "./sendgrid.ts";
import { smtpTools } from "./smtp.ts";
import { messageStatus } from "./status.ts";
import type { ToolDefinition } from "./types.ts";

export const twilioTools = messagingTools({ provider: "twilio", prefix: "twilio", adapter: twilioAdapter, channels: ["sms", "mms", "whatsapp"] });
export const telnyxTools = messagingTools({ provider: "telnyx", prefix: "telnyx", adapter: telnyxAdapter, channels: ["sms", "mms"] });
// Exotel's balance endpoint is not documented for every account: no balance tool.
export const exotelTools = messagingTools({
  provider: "exotel",
  prefix: "exotel",
  adapter: { ...exotelAdapter, balance: undefined },
  channels: ["sms", "whatsapp"],
});

const providerTools: ToolDefinition[] = [
  ...clicksendTools,
  ...smtpTools,
  ...sendgridTools,
  ...twilioTools,
  ...telnyxTools,
  ...exotelTools,
] as ToolDefinition[];
const providerToolsByCapability = new Map(providerTools.map((t) => [t.capability, t]));

/** Every tool: the channel tools (which send as the provider tools), each provider's own, and message_status. */
export const allTools: ToolDefinition[] = [
  ...channelTools((capability) => providerToolsByCapability.get(capability)),
  ...providerTools,
  messageStatus as ToolDefinition,
];

export const toolsByCapability: ReadonlyMap<string, ToolDefinition> = new Map(allTools.map((t) => [t.capability, t]));

export function toolFor(capability: string): ToolDefinition | undefined {
  return toolsByCapability.get(capability);
}
