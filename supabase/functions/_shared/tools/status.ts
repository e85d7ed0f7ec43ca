/**
 * message_status: what became of the agent's own sends. Answered by the database alone
 * (private.agent_message_status): no provider is called and no operation is recorded.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { count } from "./results.ts";
import type { ToolDefinition } from "./types.ts";

export const messageStatusSchema = z.strictObject({
  operation_ids: z.array(z.guid()).min(1).max(50).optional()
    .describe("Operation ids of your own sends (each send's answer carries its operation_id); omit for your latest sends."),
  limit: z.int().min(1).max(50).optional().describe("How many sends, newest first (1-50, default 20)."),
});

/** One delivery report or reply linked to a send (private.agent_message_status drops the fields it lacks). */
const messageEvent = z.strictObject({
  type: z.enum(["delivery", "reply"]),
  delivery_status: z.enum(["queued", "sent", "delivered", "undelivered", "failed", "read"]).optional()
    .describe("The delivery report, normalised across providers."),
  provider_status: z.string().optional().describe("The provider's own status."),
  channel: z.string().optional(),
  recipient: z.string().optional(),
  provider_message_id: z.string().optional(),
  body: z.string().optional().describe("A reply's text."),
  occurred_at: z.iso.datetime({ offset: true }),
});

/** What message_status answers: the agent's own sends, newest first, each with its events. */
export const messageStatusOutput = z.strictObject({
  operations: z.array(z.strictObject({
    operation_id: z.uuid(),
    tool: z.string().describe("The tool that sent it, e.g. sms_send."),
    status: z.enum(["pending", "succeeded", "partial", "failed", "unknown"]),
    created_at: z.iso.datetime({ offset: true }),
    recipient_count: count(),
    sender: z.string().nullable().describe("The number it went out from, when one was chosen."),
    provider_message_ids: z.array(z.string()),
    error_code: z.string().nullable(),
    events: z.array(messageEvent),
  })),
});

export const messageStatus: ToolDefinition<typeof messageStatusSchema> = {
  capability: "message_status",
  sendsMessages: false,
  schema: messageStatusSchema,
  output: messageStatusOutput,
  recipients: () => [],
  summarize: (args) => ({ ...(args.operation_ids ? { operation_count: args.operation_ids.length } : {}), ...(args.limit ? { limit: args.limit } : {}) }),
  execute() {
    throw new Error("message_status is answered by the database (answer)");
  },
  async answer(caller, args, sql) {
    const [{ result }] = await sql<[{ result: { ok: boolean; operations?: unknown[]; error?: { code: string; message: string } } }]>`
      select private.agent_message_status(${caller.user}::uuid, ${caller.agent}::uuid, ${caller.keyHash},
        ${args.operation_ids ?? null}::uuid[], ${args.limit ?? 20}::integer) as result`;
    if (!result.ok) {
      const error = result.error!;
      throw new ApiError(error.code === "unauthorized" ? "unauthorized" : error.code === "invalid_request" ? "invalid_request" : "permission_denied",
        error.message);
    }
    return { operations: result.operations ?? [] };
  },
};
