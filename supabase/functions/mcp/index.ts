// The agent's tools over MCP Streamable HTTP (stateless: POST only, GET/DELETE → 405),
// with the official SDK. Requests from a browser must come from an allowed Origin
// (SWITCHBOARD_MCP_ALLOWED_ORIGINS, default the project's own origin), see mcp-transport.ts.
// Authentication: agent key as bearer token, or user JWT + agent_id (query), or
// service key + user_id + agent_id. Denials, quota and provider errors come back as
// MCP tool errors carrying our error code.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { type CallToolRequest, CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { authenticate, type Caller } from "../_shared/auth.ts";
import { ApiError } from "../_shared/errors.ts";
import { listTools, parseToolName } from "../_shared/tool-listing.ts";
import { runTool } from "../_shared/tool-call.ts";
import { toolFor } from "../_shared/tools/index.ts";
import { logFailure, readJson, serveJson, toApiError } from "../_shared/http.ts";
import { mcpTransportRefusal } from "../_shared/mcp-transport.ts";

type McpTool = { name: string; title?: string; description?: string; inputSchema: { type: "object" } };

function toolError(error: ApiError) {
  const body = error.toJSON();
  return { isError: true, content: [{ type: "text" as const, text: JSON.stringify(body) }], structuredContent: body };
}

function mcpServer(caller: Caller, listed?: unknown[]): Server {
  const server = new Server({ name: "switchboard", version: "0.1.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (listed ?? await listTools(caller, "mcp")) as McpTool[] }));
  server.setRequestHandler(CallToolRequestSchema, async (request: CallToolRequest) => {
    try {
      const { capability, connectionRef } = parseToolName(request.params.name);
      const tool = toolFor(capability);
      if (!tool) throw new ApiError("not_found", `unknown tool "${request.params.name}"`);
      const result = await runTool(caller, tool, request.params.arguments ?? {}, { connectionRef });
      return { content: [{ type: "text" as const, text: JSON.stringify(result) }], structuredContent: result };
    } catch (error) {
      const apiError = toApiError(error);
      logFailure("/mcp tools/call", error, apiError);
      return toolError(apiError);
    }
  });
  return server;
}

Deno.serve(serveJson(async (req) => {
  // Origin/Host (DNS rebinding) and method come before authentication: a page on a
  // foreign origin is refused whatever it holds, and GET never opens a stream.
  const refusal = mcpTransportRefusal(req);
  if (refusal) return refusal;
  const query = Object.fromEntries(new URL(req.url).searchParams);
  const caller = await authenticate(req, query, { requireAgent: true });
  // MCP reports request failures inside a 200 (JSON-RPC errors), so an unknown, revoked or
  // expired agent key is refused here, at the HTTP layer (401), like every other function.
  // The same round trip reads the tool list, which tools/list then reuses.
  const listed = caller.mode === "agent_key" ? await listTools(caller, "mcp") : undefined;
  // Parsed here rather than by the SDK, so JSON-RPC bodies get the checks every body gets
  // (no NUL, bounded nesting): hostile tool arguments never reach runTool.
  const parsedBody = req.method === "POST" ? await readJson(req) : undefined;
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await mcpServer(caller, listed).connect(transport);
  return await transport.handleRequest(req, { parsedBody });
}));

/* To use locally: point an MCP client at "$FUNCTIONS_URL/mcp" with
   Authorization: Bearer $DEMO_AGENT_KEY (Streamable HTTP transport). */
