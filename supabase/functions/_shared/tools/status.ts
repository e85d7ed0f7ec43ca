/**
 * message_status: what became of the agent's own sends. Answered by the database alone
 * (private.agent_message_status): no provider is called and no operation is recorded.
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import type { ToolDefinition } from "./types.ts";

export const messageStatusSchema = z.strictObject({
  operation_ids: z.array(z.guid()).min(1).max(50).optional()
    .describe("Operation ids of your own sends (each send's answer carries its operation_id); omit for your latest sends."),
  limit: z.int().min(1).max(50).optional().describe("How many sends, newest first (1-50, default 20)."),
});

export const messageStatus: ToolDefinition<typeof messageStatusSchema> = {
  capability: "message_status",
  sendsMessages: false,
  schema: messageStatusSchema,
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
