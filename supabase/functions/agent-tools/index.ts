// Agents' tools over plain HTTP.
//   GET  /agent-tools?format=openai|anthropic|mcp|raw   the caller's tools, from live grants
//   POST /agent-tools {"name", "arguments"}             call one (same path as the provider functions)
// Authentication: agent key; or user JWT + agent_id; or service key + user_id + agent_id.
import { authenticate } from "../_shared/auth.ts";
import { ApiError } from "../_shared/errors.ts";
import { assertStorableJson, corsHeaders, json, methodNotAllowed, readJsonObject, serveJson } from "../_shared/http.ts";
import { idempotencyKey, optionalConnectionId } from "../_shared/provider-function.ts";
import { listToolsJson, parseToolName, toolFormat } from "../_shared/tool-listing.ts";
import { dropNulls } from "../_shared/tool-schemas.ts";
import { runTool } from "../_shared/tool-call.ts";
import { toolFor } from "../_shared/tools/index.ts";

Deno.serve(serveJson(async (req) => {
  if (req.method === "GET") {
    const query = Object.fromEntries(new URL(req.url).searchParams);
    assertStorableJson(query, "query");
    const caller = await authenticate(req, query, { requireAgent: true });
    const format = toolFormat(query.format);
    // The list is spliced in as the database built it: parsing and re-encoding it would
    // cost more than building it.
    const tools = await listToolsJson(caller, format);
    return new Response(`{"format":${JSON.stringify(format)},"tools":${tools}}`, {
      headers: { ...corsHeaders, "Content-Type": "application/json" },
    });
  }
  if (req.method !== "POST") throw methodNotAllowed(req.method, ["GET", "POST"]);

  const body = await readJsonObject(req);
  const caller = await authenticate(req, body, { requireAgent: true });
  const { capability, connectionRef } = parseToolName(body.name);
  const tool = toolFor(capability);
  if (!tool) throw new ApiError("not_found", `unknown tool "${String(body.name)}"`);
  const args = body.arguments ?? {};
  if (typeof args !== "object" || Array.isArray(args)) throw new ApiError("invalid_request", "arguments must be an object");
  // OpenAI strict mode sends null for every optional argument it leaves out.
  const result = await runTool(caller, tool, dropNulls(args), {
    connectionRef,
    connectionId: optionalConnectionId(body.connection_id),
    idempotencyKey: idempotencyKey(req, body),
  });
  return json(result);
}));

/* To invoke locally:
  curl "$FUNCTIONS_URL/agent-tools?format=anthropic" -H "Authorization: Bearer $DEMO_AGENT_KEY"
  curl -X POST "$FUNCTIONS_URL/agent-tools" -H "Authorization: Bearer $DEMO_AGENT_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"clicksend_send_sms","arguments":{"to":["+61411111111"],"body":"Hi"}}'
*/
