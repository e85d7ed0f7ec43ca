// The agent's tools over MCP Streamable HTTP, one endpoint for both protocol eras, on the
// official SDK v2: 2026-07-28 requests (the per-request `_meta` envelope, server/discover)
// through its createMcpHandler, and 2025-era clients (initialize, then plain JSON-RPC)
// through a stateless transport that answers JSON.
// POST only; GET/DELETE → 405. Requests from a browser must come from an allowed Origin
// (SWITCHBOARD_MCP_ALLOWED_ORIGINS, default the project's own origin), see mcp-transport.ts.
// Authentication: agent key as bearer token, or user JWT + agent_id (query), or
// service key + user_id + agent_id; refusals as RFC 6750 challenges (mcp-auth.ts), with
// the Protected Resource Metadata at /mcp/oauth-protected-resource. Denials, quota and
// provider errors come back as MCP tool errors carrying our error code.
import {
  type AuthInfo,
  createMcpHandler,
  isLegacyRequest,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { authenticate, type Caller } from "../_shared/auth.ts";
import { ApiError } from "../_shared/errors.ts";
import { logFailure, readJson, serveJson, toApiError } from "../_shared/http.ts";
import {
  insufficientScopeResponse,
  RESOURCE_METADATA_PATH,
  resourceMetadataResponse,
  unauthorizedResponse,
} from "../_shared/mcp-auth.ts";
import { mcpTransportRefusal } from "../_shared/mcp-transport.ts";
import { capabilityScopes, listTools, parseToolName } from "../_shared/tool-listing.ts";
import { runTool } from "../_shared/tool-call.ts";
import { toolFor } from "../_shared/tools/index.ts";

type McpTool = { name: string; inputSchema: { type: "object" } };

/** What the HTTP layer learnt about the caller, handed to the per-request server. */
interface CallerContext {
  caller: Caller;
  /** The caller's tools, when this request already read them. */
  listed?: McpTool[];
}

function toolError(error: ApiError) {
  const body = error.toJSON();
  return { isError: true, content: [{ type: "text" as const, text: JSON.stringify(body) }], structuredContent: body };
}

/** A tool name that names no tool at all is a protocol error (-32602), as the spec says. */
function unknownTool(name: unknown): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${String(name)}`);
}

function mcpServer({ caller, listed }: CallerContext): Server {
  const server = new Server({ name: "switchboard", version: "0.1.0" }, {
    capabilities: { tools: {} },
    // The list is the caller's own (grants, limits left today): never shared, never stale.
    cacheHints: { "tools/list": { ttlMs: 0, cacheScope: "private" } },
  });
  server.setRequestHandler("tools/list", async () => ({ tools: listed ?? await listTools(caller, "mcp") as McpTool[] }));
  server.setRequestHandler("tools/call", async (request) => {
    let target;
    try {
      target = parseToolName(request.params.name);
    } catch {
      throw unknownTool(request.params.name);
    }
    const tool = toolFor(target.capability);
    if (!tool) throw unknownTool(request.params.name);
    try {
      const result = await runTool(caller, tool, request.params.arguments ?? {}, { connectionRef: target.connectionRef });
      return { content: [{ type: "text" as const, text: JSON.stringify(result) }], structuredContent: result };
    } catch (error) {
      const apiError = toApiError(error);
      logFailure("/mcp tools/call", error, apiError);
      return toolError(apiError);
    }
  });
  return server;
}

// One JSON answer per request on both lanes: no tool here emits progress or log notifications.
const modern = createMcpHandler(({ authInfo }) => mcpServer(authInfo!.extra as unknown as CallerContext), {
  legacy: "reject",
  responseMode: "json",
  onerror: (error) => logFailure("/mcp", error, toApiError(error)),
});

/**
 * A 2025-era request (no `_meta` envelope: initialize, then plain JSON-RPC), served
 * statelessly by a server of its own, answered as JSON. The SDK's built-in legacy lane
 * would answer with an SSE stream, which costs more and which some 2025 clients parse
 * less happily than a plain JSON body; the spec lets a server choose either.
 */
async function serveLegacy(req: Request, context: CallerContext, parsedBody: unknown, authInfo: AuthInfo): Promise<Response> {
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await mcpServer(context).connect(transport);
  return await transport.handleRequest(req, { parsedBody, authInfo });
}

/**
 * Whether answering this body may show the tool list (tools/list, or anything but a single
 * request). Other requests read the list only to authenticate and to check scopes, for
 * which a kept listing whose counts of what is left have moved since will do.
 */
function showsToolList(body: unknown): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return true;
  return (body as { method?: unknown }).method === "tools/list";
}

/** The tools/call this body makes, if it is one (a single JSON-RPC request). */
function calledTool(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const { method, params } = body as { method?: unknown; params?: { name?: unknown } };
  return method === "tools/call" && typeof params?.name === "string" ? params.name : undefined;
}

/**
 * The scope a tools/call needs that the caller's live grants do not give (403
 * insufficient_scope), or undefined. Names that are no tool go on to the handler, which
 * answers -32602; whether the call is allowed on this account is begin_tool_call's to say.
 */
async function missingScope(name: string, listed: McpTool[]): Promise<string | undefined> {
  let capability: string;
  try {
    capability = parseToolName(name).capability;
  } catch {
    return undefined;
  }
  if (!toolFor(capability)) return undefined;
  const scopes = await capabilityScopes();
  const needed = scopes.get(capability);
  const held = new Set(listed.map((t) => scopes.get(parseToolName(t.name).capability)));
  return needed !== undefined && !held.has(needed) ? needed : undefined;
}

Deno.serve(serveJson(async (req) => {
  const path = new URL(req.url).pathname;
  if (path.endsWith(`/${RESOURCE_METADATA_PATH}`) && (req.method === "GET" || req.method === "HEAD")) {
    return await resourceMetadataResponse(req);
  }
  // Origin/Host (DNS rebinding) and method come before authentication: a page on a
  // foreign origin is refused whatever it holds, and GET never opens a stream.
  const refusal = mcpTransportRefusal(req);
  if (refusal) return refusal;
  const query = Object.fromEntries(new URL(req.url).searchParams);
  // Parsed here rather than by the SDK, so JSON-RPC bodies get the checks every body gets
  // (no NUL, bounded nesting): hostile tool arguments never reach runTool. Read before the
  // key is checked (the listing needs to know whether it will be shown), refused after it.
  const body = await readJson(req).then((value) => ({ value }), (error: unknown) => ({ error }));
  const listing = { currentCounts: "error" in body || showsToolList(body.value) };
  let caller: Caller;
  let listed: McpTool[] | undefined;
  try {
    caller = await authenticate(req, query, { requireAgent: true });
    // MCP reports request failures inside a 200 (JSON-RPC errors), so an unknown, revoked
    // or expired agent key is refused here, at the HTTP layer (401), like every other
    // function. The same round trip reads the tool list, which tools/list then reuses.
    if (caller.mode === "agent_key") listed = await listTools(caller, "mcp", listing) as McpTool[];
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return unauthorizedResponse(req, error);
    throw error;
  }
  if ("error" in body) throw body.error;
  const parsedBody = body.value;
  const tool = calledTool(parsedBody);
  if (tool !== undefined) {
    listed ??= await listTools(caller, "mcp", listing) as McpTool[];
    const scope = await missingScope(tool, listed);
    if (scope !== undefined) return insufficientScopeResponse(req, tool, scope);
  }
  // tools/list reuses only a listing read with current counts.
  const context: CallerContext = { caller, listed: listing.currentCounts ? listed : undefined };
  const authInfo: AuthInfo = { token: "", clientId: "switchboard-agent", scopes: [], extra: context as unknown as Record<string, unknown> };
  if (await isLegacyRequest(req, parsedBody)) return await serveLegacy(req, context, parsedBody, authInfo);
  return await modern.fetch(req, { parsedBody, authInfo });
}));

/* To use locally: point an MCP client at "$FUNCTIONS_URL/mcp" with
   Authorization: Bearer $DEMO_AGENT_KEY (Streamable HTTP transport). */
