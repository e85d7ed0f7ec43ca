/** Every tool, by capability key. The database's capability rows mirror this list. */
import { clicksendTools } from "./clicksend.ts";
import { sendgridTools } from "./sendgrid.ts";
import { smtpTools } from "./smtp.ts";
import type { ToolDefinition } from "./types.ts";

export const allTools: ToolDefinition[] = [...clicksendTools, ...smtpTools, ...sendgridTools] as ToolDefinition[];

export const toolsByCapability: ReadonlyMap<string, ToolDefinition> = new Map(allTools.map((t) => [t.capability, t]));

export function toolFor(capability: string): ToolDefinition | undefined {
  return toolsByCapability.get(capability);
}
