/**
 * The MCP endpoint's side of OAuth 2.0 bearer auth (RFC 6750) and Protected Resource
 * Metadata (RFC 9728), as the MCP authorization spec asks of a remote server:
 *
 * - 401 carries `WWW-Authenticate: Bearer resource_metadata="…"`, plus
 *   `error="invalid_token"` and a plain `error_description` when a credential was sent
 *   and refused, so a client can tell "no key" from "this key is no good".
 * - 403 `insufficient_scope` names the scope a tools/call needs that the caller's key
 *   does not hold, in one challenge.
 * - The metadata document lives at `<endpoint>/oauth-protected-resource` (a path the
 *   function itself serves, on hosted Supabase too) and is named by every challenge.
 *
 * Agent keys stay the credential: they are opaque bearer tokens, which MCP allows. The
 * document names Supabase Auth as the authorization server because the endpoint also
 * takes a Supabase Auth access token with `agent_id` (docs/agents.md, "Authorization").
 */
import { env, functionsBaseUrl } from "./env.ts";
import { ApiError } from "./errors.ts";
import { errorResponse } from "./http.ts";
import { capabilityScopes } from "./tool-listing.ts";

/** The sub-path of the MCP function that serves its Protected Resource Metadata. */
export const RESOURCE_METADATA_PATH = "oauth-protected-resource";

/** The MCP endpoint's canonical URL (the RFC 8707 resource): no trailing slash. */
export function mcpResourceUrl(req: Request): string {
  const base = functionsBaseUrl();
  if (base) return `${base}/mcp`;
  // No configured public URL (a bare `deno serve`): the request's own origin.
  return `${new URL(req.url).origin}/functions/v1/mcp`;
}

export function resourceMetadataUrl(req: Request): string {
  return `${mcpResourceUrl(req)}/${RESOURCE_METADATA_PATH}`;
}

/** A quoted-string for an auth-param (RFC 9110 §5.6.4): no quotes, backslashes or controls inside. */
function quoted(value: string): string {
  return `"${value.replace(/[\u0000-\u001f\u007f"\\]/g, " ").slice(0, 300)}"`;
}

function challenge(params: Record<string, string | undefined>): string {
  const parts = Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${quoted(v!)}`);
  return `Bearer ${parts.join(", ")}`;
}

/**
 * The 401 for a request without a usable credential, in the error envelope every
 * function uses, with the challenge MCP clients read.
 */
export function unauthorizedResponse(req: Request, error: ApiError): Response {
  const response = errorResponse(error);
  const sentCredential = req.headers.has("authorization") || req.headers.has("apikey");
  response.headers.set("WWW-Authenticate", challenge({
    resource_metadata: resourceMetadataUrl(req),
    ...(sentCredential ? { error: "invalid_token", error_description: error.message } : {}),
  }));
  return response;
}

/** The 403 for a tools/call whose tool needs a scope the caller's key does not hold. */
export function insufficientScopeResponse(req: Request, tool: string, scope: string): Response {
  const response = errorResponse(new ApiError(
    "permission_denied",
    `${tool} needs the "${scope}" scope, which no grant of this agent holds`,
    { tool, required_scope: scope },
  ));
  response.headers.set("WWW-Authenticate", challenge({
    error: "insufficient_scope",
    scope,
    resource_metadata: resourceMetadataUrl(req),
    error_description: `${tool} needs the "${scope}" scope`,
  }));
  return response;
}

/** RFC 9728 Protected Resource Metadata for the MCP endpoint. */
export async function resourceMetadataResponse(req: Request): Promise<Response> {
  const project = (env("SUPABASE_URL") ?? new URL(req.url).origin).replace(/\/+$/, "");
  const scopes = [...new Set((await capabilityScopes()).values())].sort();
  return new Response(JSON.stringify({
    resource: mcpResourceUrl(req),
    authorization_servers: [`${project}/auth/v1`],
    scopes_supported: scopes,
    bearer_methods_supported: ["header"],
    resource_name: "Switchboard",
  }), {
    headers: { "Content-Type": "application/json", "Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*" },
  });
}
