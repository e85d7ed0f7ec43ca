/**
 * HTTP plumbing shared by every function: CORS, JSON responses, body parsing and the
 * one error envelope. A handler wrapped with `serveJson` can throw ApiError (or a
 * ZodError) and the caller gets the documented envelope; anything else becomes a
 * bare 500 with no stack and no message from inside.
 */
import { z } from "zod";
import { databaseUnavailable, errorCode, isDatabaseUnavailable } from "./db.ts";
import { ApiError } from "./errors.ts";

export const corsHeaders: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type, idempotency-key, mcp-session-id, mcp-protocol-version",
  "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
};

/** Largest JSON body a function accepts (attachments are base64 inside it). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, "Content-Type": "application/json", ...headers },
  });
}

export function errorResponse(error: ApiError): Response {
  const headers: Record<string, string> = {};
  const retryAfter = (error.details as { retry_after?: number } | undefined)?.retry_after;
  if (typeof retryAfter === "number") headers["Retry-After"] = String(Math.ceil(retryAfter));
  return json(error.toJSON(), error.status, headers);
}

/** Turns zod issues into the `details` of an invalid_request: every issue, with its path. */
export function zodIssues(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(root)",
    message: issue.message,
  }));
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof z.ZodError) {
    return new ApiError("invalid_request", "invalid request", { issues: zodIssues(error) });
  }
  if (isDatabaseUnavailable(error)) return databaseUnavailable();
  return new ApiError("internal_error", "internal error");
}

/** Webhook URLs carry their secret token in the path: never log it. */
function routeOf(req: Request): string {
  return new URL(req.url).pathname.replace(/\/webhooks\/[^/]+/, "/webhooks/:token");
}

/**
 * One structured line per failed request (5xx): route, error class, SQLSTATE or
 * driver code, operation id. Never a message from inside, a body, a header or a
 * credential: those can carry secrets.
 */
export function logFailure(route: string, error: unknown, apiError: ApiError): void {
  if (apiError.status < 500) return;
  const operationId = (apiError.details as { operation_id?: unknown } | null | undefined)?.operation_id;
  const code = error instanceof ApiError ? undefined : errorCode(error);
  console.error(JSON.stringify({
    level: "error",
    event: "request_failed",
    route,
    status: apiError.status,
    code: apiError.code,
    error_class: error instanceof ApiError ? "api_error" : error instanceof Error ? error.name : typeof error,
    ...(code && /^[0-9A-Z]{5}$/.test(code) ? { sqlstate: code } : code ? { driver_code: code.slice(0, 40) } : {}),
    ...(typeof operationId === "string" ? { operation_id: operationId } : {}),
  }));
}

/** Reads the raw body with a size cap. */
export async function readBody(req: Request, maxBytes = MAX_BODY_BYTES): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes`);
  const buffer = new Uint8Array(await req.arrayBuffer());
  if (buffer.byteLength > maxBytes) throw new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes`);
  return buffer;
}

/** Parses a JSON object body; an empty body is `{}`. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const raw = new TextDecoder().decode(await readBody(req));
  if (raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ApiError("invalid_request", "body is not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ApiError("invalid_request", "body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** Wraps a handler: CORS preflight, and every failure as the documented envelope. */
export function serveJson(handler: (req: Request) => Promise<Response>): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method === "OPTIONS") return new Response("ok", { headers: corsHeaders });
    try {
      return await handler(req);
    } catch (error) {
      const apiError = toApiError(error);
      logFailure(routeOf(req), error, apiError);
      return errorResponse(apiError);
    }
  };
}

/** The path after the function name: "/clicksend/sms/send" -> "sms/send". */
export function subPath(req: Request, functionName: string): string {
  const path = new URL(req.url).pathname.replace(/\/+$/, "");
  const marker = `/${functionName}`;
  const at = path.indexOf(marker);
  return at === -1 ? "" : path.slice(at + marker.length).replace(/^\/+/, "");
}
