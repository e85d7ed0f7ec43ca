/**
 * What the MCP Streamable HTTP transport requires of a request before any JSON-RPC is
 * read: DNS-rebinding protection and the one method a stateless server serves.
 *
 * - `Origin`: a request that carries one (a browser page) must come from an allowed
 *   origin, else 403. Agents outside a browser send none and pass.
 *   SWITCHBOARD_MCP_ALLOWED_ORIGINS (comma-separated origins) sets the list; the
 *   default is the project's own origin (SUPABASE_URL).
 * - `Host`: when the project itself is on a loopback address (a local stack), the
 *   request must name a loopback host too. A rebound DNS name reaches the local port
 *   with its own name in `Host`. A hosted project is reached through Supabase's gateway,
 *   whose `Host` is not ours to predict, so there the Origin check stands alone.
 * - Methods: only POST. This server keeps no sessions, so there is no stream to open
 *   with GET and no session to end with DELETE: 405 with `Allow: POST`.
 *
 * The SDK transport's own `enableDnsRebindingProtection` is not used: it runs inside
 * handleRequest, after authentication, compares `Host` including the port, and answers
 * with a JSON-RPC body instead of the error envelope every function uses.
 */
import { env } from "./env.ts";
import { ApiError } from "./errors.ts";
import { errorResponse } from "./http.ts";

/** Loopback names as URL parsing normalises them (127.1 becomes 127.0.0.1, ::1 is bracketed). */
const LOOPBACK_HOSTNAME = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i;

/** The origin of a URL or origin string ("https://a.example:8443"), or null if it is not one. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : null;
  } catch {
    return null;
  }
}

function allowedOrigins(): Set<string> {
  const configured = env("SWITCHBOARD_MCP_ALLOWED_ORIGINS");
  const list = configured !== undefined ? configured.split(",") : [env("SUPABASE_URL") ?? ""];
  return new Set(list.map(originOf).filter((origin): origin is string => origin !== null));
}

/** Whether a URL's host is a loopback name; false for anything unparsable. */
function isLoopback(url: string): boolean {
  try {
    return LOOPBACK_HOSTNAME.test(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** The refusal for a request the transport must not serve, or null to go on. */
export function mcpTransportRefusal(req: Request): Response | null {
  const origin = req.headers.get("origin");
  if (origin !== null) {
    // "null" (sandboxed frames, file: pages) is never an allowed origin.
    const normalized = originOf(origin);
    if (normalized === null || !allowedOrigins().has(normalized)) {
      return errorResponse(new ApiError("permission_denied", "this Origin may not call the MCP endpoint", { origin }));
    }
  }
  if (isLoopback(env("SUPABASE_URL") ?? "")) {
    const host = req.headers.get("host") ?? new URL(req.url).host;
    if (!isLoopback(`http://${host}`)) {
      return errorResponse(new ApiError("permission_denied", "this Host may not call the MCP endpoint", { host }));
    }
  }
  if (req.method !== "POST") {
    const response = errorResponse(new ApiError("invalid_request", `${req.method} is not supported: this stateless MCP endpoint only takes POST`, undefined, 405));
    response.headers.set("Allow", "POST");
    return response;
  }
  return null;
}
