/**
 * Tool discovery for a caller, in one round trip: as the signed-in user through the
 * RLS-checked RPC (user JWT + agent_id), or on the service path (agent key; service
 * key naming user and agent).
 */
import type { Caller } from "./auth.ts";
import { asService, asUser } from "./db.ts";
import { ApiError } from "./errors.ts";

export const TOOL_FORMATS = ["raw", "openai", "anthropic", "mcp"] as const;
export type ToolFormat = typeof TOOL_FORMATS[number];

export function toolFormat(value: unknown): ToolFormat {
  const format = value ?? "openai";
  if (!TOOL_FORMATS.includes(format as ToolFormat)) {
    throw new ApiError("invalid_request", `format must be one of ${TOOL_FORMATS.join(", ")}`);
  }
  return format as ToolFormat;
}

/**
 * The caller's tools as JSON text, exactly as the database built it (no re-encoding:
 * a tool list carries every tool's schemas and is large).
 */
export async function listToolsJson(caller: Caller, format: ToolFormat): Promise<string> {
  try {
    if (caller.mode === "user_agent") {
      const [{ tools }] = await asUser(caller.claims, (sql) =>
        sql<[{ tools: string }]>`select public.get_agent_tools(${caller.agentId}::uuid, ${format})::text as tools`);
      return tools;
    }
    if (caller.mode === "user") throw new ApiError("invalid_request", "agent_id is required");
    const [{ tools }] = await asService()<[{ tools: string }]>`
      select private.list_tools_for_caller(
        ${caller.mode === "service" ? caller.userId : null}::uuid,
        ${caller.mode === "service" ? caller.agentId : null}::uuid,
        ${caller.mode === "agent_key" ? caller.agentKeyHash : null},
        ${format})::text as tools`;
    return tools;
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === "PT401") throw new ApiError("unauthorized", message ?? "unauthorized");
    if (code === "PT404") throw new ApiError("not_found", message ?? "agent not found");
    throw error;
  }
}

/** The caller's tools as objects (MCP needs them parsed). */
export async function listTools(caller: Caller, format: ToolFormat): Promise<unknown[]> {
  return JSON.parse(await listToolsJson(caller, format));
}

/** "clicksend_send_sms__1a2b3c4d" → capability and connection-id prefix. */
export function parseToolName(name: unknown): { capability: string; connectionRef: string | null } {
  const match = typeof name === "string" ? /^([a-z][a-z0-9_]*?)(?:__([0-9a-f]{8}))?$/.exec(name) : null;
  if (!match) throw new ApiError("invalid_request", "name must be a tool name from the tool list");
  return { capability: match[1], connectionRef: match[2] ?? null };
}
