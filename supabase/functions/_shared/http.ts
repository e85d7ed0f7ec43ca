/**
 * HTTP plumbing shared by every function: CORS, JSON responses, body parsing and the
 * one error envelope. A handler wrapped with `serveJson` can throw ApiError (or a
 * ZodError) and the caller gets the documented envelope; anything else becomes a
 * bare 500 with no stack and no message from inside.
 */
import { z } from "zod";
import { databaseUnavailable, errorCode, isDatabaseUnavailable } from "./db.ts";
import { classifyDbError } from "./db-errors.ts";
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
  // A 405 must say which methods the resource does allow (RFC 9110 §15.5.6).
  const allow = (error.details as { allow?: unknown } | undefined)?.allow;
  if (error.status === 405 && Array.isArray(allow)) headers.Allow = allow.join(", ");
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
  // A safety net for input PostgreSQL refused that no check above foresaw: still a 400.
  return classifyDbError(error) ?? new ApiError("internal_error", "internal error");
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

/**
 * Deepest nesting of arrays and objects accepted in any input. Requests and provider
 * webhooks use a few levels; the bound keeps every later walk over the value (schema
 * validation, String(), PostgreSQL's jsonb parser) far from a stack limit.
 */
export const MAX_JSON_DEPTH = 32;

/** An unpaired UTF-16 surrogate: not Unicode, so PostgreSQL refuses it in jsonb. */
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/** A path segment as shown in errors: escaped, and cut short (a hostile key can be huge). */
function pathSegment(key: string): string {
  const shown = JSON.stringify(key).slice(1, -1);
  return shown.length > 64 ? `${shown.slice(0, 64)}…` : shown;
}

function unstorable(where: string, path: string, problem: string): ApiError {
  return new ApiError("invalid_request", `invalid ${where}: ${path || "(root)"} ${problem}`, {
    issues: [{ path: path || "(root)", message: problem }],
  });
}

/**
 * Refuses input PostgreSQL cannot store or that nests absurdly deep: a string (key or
 * value) with U+0000 or an unpaired surrogate, or nesting deeper than MAX_JSON_DEPTH.
 * `where` names the input in the message ("body", "query"); details.issues holds the path.
 * Every JSON body, query string and webhook payload goes through this one check.
 */
export function assertStorableJson(value: unknown, where = "body"): void {
  const visit = (node: unknown, path: string, depth: number): void => {
    if (typeof node === "string") {
      if (node.includes("\u0000")) throw unstorable(where, path, "must not contain NUL characters (U+0000)");
      if (UNPAIRED_SURROGATE.test(node)) throw unstorable(where, path, "must be valid Unicode (unpaired surrogate)");
      return;
    }
    if (node === null || typeof node !== "object") return;
    if (depth > MAX_JSON_DEPTH) throw unstorable(where, path, `is nested deeper than ${MAX_JSON_DEPTH} levels`);
    for (const [key, child] of Object.entries(node)) {
      const childPath = path ? `${path}.${pathSegment(key)}` : pathSegment(key);
      visit(key, childPath, depth);
      visit(child, childPath, depth + 1);
    }
  };
  visit(value, "", 1);
}

/** Parses JSON text and checks it with assertStorableJson. */
export function parseJson(text: string, where = "body"): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_request", `${where} is not valid JSON`);
  }
  assertStorableJson(parsed, where);
  return parsed;
}

/** Reads a JSON body of any shape (checked, size-capped); an empty body is undefined. */
export async function readJson(req: Request): Promise<unknown> {
  const raw = new TextDecoder().decode(await readBody(req));
  return raw.trim() === "" ? undefined : parseJson(raw);
}

/** Parses a JSON object body; an empty body is `{}`. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const parsed = await readJson(req);
  if (parsed === undefined) return {};
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ApiError("invalid_request", "body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** 405 in the envelope; errorResponse turns `details.allow` into the Allow header. */
export function methodNotAllowed(method: string, allow: readonly string[]): ApiError {
  return new ApiError("invalid_request", `method ${method} not allowed; use ${allow.join(" or ")}`, { allow }, 405);
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

/**
 * The client a request came from, for the audit trail: the address the platform's edge
 * sets (CF-Connecting-IP, else X-Real-IP, else the first X-Forwarded-For entry) and the
 * User-Agent. The database checks the address again and drops anything that is not one.
 */
export function requestClient(req: Request): { ip?: string; user_agent?: string } {
  const ip = req.headers.get("cf-connecting-ip")?.trim() || req.headers.get("x-real-ip")?.trim() ||
    req.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  const userAgent = req.headers.get("user-agent")?.slice(0, 512);
  return { ...(ip ? { ip } : {}), ...(userAgent ? { user_agent: userAgent } : {}) };
}
