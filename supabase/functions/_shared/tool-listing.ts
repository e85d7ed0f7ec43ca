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

/** A tool the caller may use now, without its schemas (private.agent_tool_entries). */
interface ToolEntry {
  name: string;
  capability: string;
  title: string;
  description: string;
  provider: string;
  connection_id: string;
  connection_name: string;
  read_only: boolean;
  destructive: boolean;
  limits: Record<string, unknown>;
}

/** A capability's schemas as JSON text, exactly as integration_capabilities stores them. */
interface CapabilitySchemas {
  input: string;
  strict: string;
  output: string;
}

/** What an isolate keeps of integration_capabilities: each capability's schemas and scope. */
interface CapabilityRow extends CapabilitySchemas {
  /** The scope a grant must hold for the tool (required_scope). */
  scope: string;
}

/** How long an isolate keeps the capabilities before reading them again. */
const CAPABILITY_CACHE_MS = 60_000;
let capabilityCache: { at: number; byCapability: Map<string, CapabilityRow> } | undefined;

/**
 * Every capability's schemas and scope, from the database (the one source of tool
 * definitions), kept for a minute per isolate: they change only with a migration, and
 * re-reading ~100 kB of schemas on every listing would cost more than building it.
 * Read again early when a capability asked for is not in the cache.
 */
async function capabilities(wanted: string[] = []): Promise<Map<string, CapabilityRow>> {
  const fresh = capabilityCache && Date.now() - capabilityCache.at < CAPABILITY_CACHE_MS &&
    wanted.every((c) => capabilityCache!.byCapability.has(c));
  if (!fresh) {
    const rows = await asService()<({ capability_key: string } & CapabilityRow)[]>`
      select capability_key, input_schema_json::text as input, strict_input_schema_json::text as strict,
             output_schema_json::text as output, required_scope as scope
      from public.integration_capabilities`;
    capabilityCache = { at: Date.now(), byCapability: new Map(rows.map(({ capability_key, ...row }) => [capability_key, row])) };
  }
  return capabilityCache!.byCapability;
}

/** The scope each capability needs (integration_capabilities.required_scope), from the same cache. */
export async function capabilityScopes(): Promise<ReadonlyMap<string, string>> {
  return new Map([...(await capabilities()).entries()].map(([capability, row]) => [capability, row.scope]));
}

/**
 * One tool in a runtime format, as JSON text: the same shapes private.agent_tools builds
 * (a test holds the two equal), with the schema text spliced in rather than re-encoded.
 */
function renderTool(entry: ToolEntry, schemas: CapabilitySchemas, format: ToolFormat): string {
  const name = JSON.stringify(entry.name);
  const description = JSON.stringify(entry.description);
  switch (format) {
    case "openai":
      return `{"type":"function","function":{"name":${name},"description":${description},"parameters":${schemas.strict},"strict":true}}`;
    case "anthropic":
      return `{"name":${name},"description":${description},"input_schema":${schemas.input}}`;
    case "mcp": {
      const title = JSON.stringify(entry.title);
      const annotations = JSON.stringify({
        title: entry.title, readOnlyHint: entry.read_only, destructiveHint: entry.destructive,
        idempotentHint: entry.read_only, openWorldHint: true,
      });
      return `{"name":${name},"title":${title},"description":${description},"inputSchema":${schemas.input},` +
        `"outputSchema":${schemas.output},"annotations":${annotations}}`;
    }
    default: {
      const { limits, ...rest } = entry;
      const head = JSON.stringify(rest);
      return `${head.slice(0, -1)},"input_schema":${schemas.input},"strict_input_schema":${schemas.strict},` +
        `"output_schema":${schemas.output},"limits":${JSON.stringify(limits)}}`;
    }
  }
}

/** How a listing is wanted. */
export interface ListingOptions {
  /**
   * False when only which tools are listed matters, not their texts (a scope check): on the
   * service path a kept listing then serves even after a send moved the counts of what is
   * left that it shows (the tools are the same). Default true.
   */
  currentCounts?: boolean;
}

/**
 * The caller's tools as JSON text. The user path (JWT + agent_id) gets them rendered by
 * the RLS-checked RPC; the service path (agent key; service key naming user and agent)
 * gets the entries in one round trip and renders them here with the cached schemas.
 */
export async function listToolsJson(caller: Caller, format: ToolFormat, { currentCounts = true }: ListingOptions = {}): Promise<string> {
  try {
    if (caller.mode === "user_agent") {
      const [{ tools }] = await asUser(caller.claims, (sql) =>
        sql<[{ tools: string }]>`select public.get_agent_tools(${caller.agentId}::uuid, ${format})::text as tools`);
      return tools;
    }
    if (caller.mode === "user") throw new ApiError("invalid_request", "agent_id is required");
    const [{ entries }] = await asService()<[{ entries: ToolEntry[] }]>`
      select private.list_tools_for_caller(
        ${caller.mode === "service" ? caller.userId : null}::uuid,
        ${caller.mode === "service" ? caller.agentId : null}::uuid,
        ${caller.mode === "agent_key" ? caller.agentKeyHash : null},
        ${format}, p_entries => true, p_current_counts => ${currentCounts}) as entries`;
    const schemas = await capabilities([...new Set(entries.map((e) => e.capability))]);
    return `[${entries.map((e) => renderTool(e, schemas.get(e.capability)!, format)).join(",")}]`;
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === "PT401") throw new ApiError("unauthorized", message ?? "unauthorized");
    if (code === "PT404") throw new ApiError("not_found", message ?? "agent not found");
    throw error;
  }
}

/** How many callers' last parsed lists an isolate keeps (each a few tens of kB). */
const PARSED_LISTS_KEPT = 32;
/** Per caller and format, the last list text and its parse, frozen: it is handed to every request that gets the same text. */
const parsedLists = new Map<string, { json: string; tools: readonly unknown[] }>();

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function callerKey(caller: Caller, format: ToolFormat): string {
  switch (caller.mode) {
    case "agent_key":
      return `key:${caller.agentKeyHash}:${format}`;
    case "service":
      return `service:${caller.userId}:${caller.agentId}:${format}`;
    default:
      return `user:${caller.userId}:${"agentId" in caller ? caller.agentId : ""}:${format}`;
  }
}

/**
 * The caller's tools as objects (MCP needs them parsed), read-only. While the list's text
 * is the same as last time (the database served it from its cache), the last parse is
 * handed out again: parsing tens of kB of schemas was a good part of an MCP tools/list.
 */
export async function listTools(caller: Caller, format: ToolFormat, options: ListingOptions = {}): Promise<readonly unknown[]> {
  const json = await listToolsJson(caller, format, options);
  const key = callerKey(caller, format);
  const last = parsedLists.get(key);
  const tools = last?.json === json ? last.tools : deepFreeze(JSON.parse(json) as unknown[]);
  // Re-inserted, so the least recently listed caller is the one let go.
  parsedLists.delete(key);
  parsedLists.set(key, { json, tools });
  if (parsedLists.size > PARSED_LISTS_KEPT) parsedLists.delete(parsedLists.keys().next().value!);
  return tools;
}

/** "clicksend_send_sms__1a2b3c4d" → capability and connection-id prefix. */
export function parseToolName(name: unknown): { capability: string; connectionRef: string | null } {
  const match = typeof name === "string" ? /^([a-z][a-z0-9_]*?)(?:__([0-9a-f]{8}))?$/.exec(name) : null;
  if (!match) throw new ApiError("invalid_request", "name must be a tool name from the tool list");
  return { capability: match[1], connectionRef: match[2] ?? null };
}
