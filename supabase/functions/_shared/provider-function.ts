/**
 * The shared shape of a provider function (clicksend, smtp, sendgrid, twilio, telnyx,
 * exotel): a route table from sub-paths to tools, a connection test, webhook receivers,
 * and number sync where the provider lists numbers. Each index.ts is only this wiring.
 */
import { z } from "zod";
import { authenticate, type Caller } from "./auth.ts";
import { asService } from "./db.ts";
import { ApiError } from "./errors.ts";
import { parseIdempotencyKey } from "./idempotency.ts";
import { assertStorableJson, json, methodNotAllowed, readJsonObject, requestClient, serveJson, subPath } from "./http.ts";
import type { ProviderNumber } from "./providers/adapter.ts";
import { ProviderError, type TestConnectionResult } from "./providers/types.ts";
import { handleReconcile, type ProviderAsker } from "./reconcile.ts";
import { networkPolicy, providerFailure, runTool } from "./tool-call.ts";
import { toolFor } from "./tools/index.ts";
import type { NetworkPolicy, ProviderName } from "./tools/types.ts";

/** Request fields that steer the call rather than being tool arguments. */
export const CONTROL_FIELDS = ["agent_id", "user_id", "connection_id", "idempotency_key"] as const;

export function splitControlFields(body: Record<string, unknown>) {
  const control: Record<string, unknown> = {};
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if ((CONTROL_FIELDS as readonly string[]).includes(key)) control[key] = value;
    else args[key] = value;
  }
  return { control, args };
}

/** The request's idempotency key: the Idempotency-Key header, else the body field. */
export function idempotencyKey(req: Request, control: Record<string, unknown>): string | null {
  return parseIdempotencyKey(req.headers.get("idempotency-key") ?? control.idempotency_key);
}

export function optionalConnectionId(value: unknown): string | null {
  if (value === undefined || value === null || value === "") return null;
  // Any 8-4-4-4-12 hex string: a looser pattern would reach the database's uuid cast.
  if (typeof value !== "string" || !z.guid().safeParse(value).success) {
    throw new ApiError("invalid_request", "connection_id must be a UUID");
  }
  return value;
}

/** Reads a tool request: JSON body for POST, query string for GET (read-only tools). */
async function readRequest(req: Request): Promise<Record<string, unknown>> {
  if (req.method === "GET") {
    const params = Object.fromEntries(new URL(req.url).searchParams);
    assertStorableJson(params, "query");
    // Query values are strings; numeric tool fields (page, limit) are coerced here.
    return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v]));
  }
  if (req.method === "POST") return await readJsonObject(req);
  throw methodNotAllowed(req.method, ["GET", "POST"]);
}

/** Handles one tool request end to end. Exported for agent-tools and mcp. */
export async function handleToolRequest(req: Request, capability: string, body: Record<string, unknown>): Promise<Response> {
  const tool = toolFor(capability);
  if (!tool) throw new ApiError("not_found", `unknown tool "${capability}"`);
  const { control, args } = splitControlFields(body);
  const caller = await authenticate(req, control);
  const result = await runTool(caller, tool, args, {
    connectionId: optionalConnectionId(control.connection_id),
    idempotencyKey: idempotencyKey(req, control),
  });
  return json(result);
}

/**
 * Runs a provider's credential check on a stored connection. It gets the connection and
 * the deployment's network policy together, and builds its adapter from them, so the
 * test route passes the same config rules and network guard as every other route.
 */
export type ConnectionTester = (connection: {
  credentials: Record<string, string>;
  config: Record<string, unknown>;
  network: NetworkPolicy;
}) => Promise<TestConnectionResult>;

/**
 * Tests a connection the caller may configure (a workspace owner or admin, or a member
 * with can_configure) and records the result on it and in the audit trail.
 */
async function handleConnectionTest(req: Request, provider: ProviderName, tester: ConnectionTester): Promise<Response> {
  const body = await readJsonObject(req);
  const caller: Caller = await authenticate(req, body);
  if (caller.mode !== "user" && caller.mode !== "service") {
    throw new ApiError("permission_denied", "only a signed-in member who may configure the connection (or the service key) can test it");
  }
  const connectionId = optionalConnectionId(body.connection_id);
  if (!connectionId) throw new ApiError("invalid_request", "connection_id is required");
  const [{ found }] = await asService()<[{ found: { config: Record<string, unknown>; credentials: Record<string, string> } | null }]>`
    select private.connection_for_test(${caller.userId}::uuid, ${connectionId}::uuid, ${provider}) as found`;
  if (!found) throw new ApiError("not_found", "connection not found");
  let result: TestConnectionResult;
  try {
    result = await tester({ credentials: found.credentials, config: found.config, network: networkPolicy() });
  } catch (error) {
    result = { ok: false, message: error instanceof Error ? error.message : "connection test failed" };
    // A stored config or destination the rules refuse is the caller's 4xx (recorded on the
    // connection too, so the dashboard shows why); provider trouble is a failed test.
    if (error instanceof ApiError) {
      await recordTest(connectionId, false, result.message, caller.userId, req);
      throw error;
    }
  }
  await recordTest(connectionId, result.ok, result.message, caller.userId, req);
  return json({ connection_id: connectionId, ...result });
}

/** Records a test's result on the connection, and in the audit trail with who ran it and from where. */
async function recordTest(connectionId: string, ok: boolean, message: string, actor: string, req: Request) {
  const sql = asService();
  await sql`select private.record_connection_test(${connectionId}::uuid, ${ok}, ${message}, ${actor}::uuid,
    ${sql.json(requestClient(req) as never)}::jsonb)`;
}

/** Lists the numbers a stored connection's provider account holds (number sync). */
export type NumberLister = (connection: {
  credentials: Record<string, string>;
  config: Record<string, unknown>;
  network: NetworkPolicy;
}) => Promise<ProviderNumber[]>;

/**
 * Syncs a connection's numbers from its provider, for an owner or admin of its workspace
 * (or the service key): the provider's list goes to private.sync_phone_numbers, which
 * adds, updates and deactivates (never deletes) and audits the sync.
 */
async function handleNumberSync(req: Request, provider: ProviderName, lister: NumberLister): Promise<Response> {
  const body = await readJsonObject(req);
  const caller: Caller = await authenticate(req, body);
  if (caller.mode !== "user" && caller.mode !== "service") {
    throw new ApiError("permission_denied", "only an owner or admin of the workspace (or the service key) can sync numbers");
  }
  const connectionId = optionalConnectionId(body.connection_id);
  if (!connectionId) throw new ApiError("invalid_request", "connection_id is required");
  const userId = caller.mode === "user" ? caller.userId : null;
  const [{ found }] = await asService()<[{ found: { config: Record<string, unknown>; credentials: Record<string, string> } | null }]>`
    select private.connection_for_admin(${userId}::uuid, ${connectionId}::uuid, ${provider}) as found`;
  if (!found) throw new ApiError("not_found", "connection not found");
  const numbers = await lister({ credentials: found.credentials, config: found.config, network: networkPolicy() })
    .catch((error) => {
      throw error instanceof ProviderError ? providerFailure(error) : error;
    });
  const sql = asService();
  const [{ result }] = await sql<[{ result: Record<string, number> }]>`
    select private.sync_phone_numbers(${userId}::uuid, ${connectionId}::uuid, ${sql.json(numbers as never)}::jsonb,
                                      ${sql.json(requestClient(req) as never)}::jsonb) as result`;
  return json({ connection_id: connectionId, listed: numbers.length, ...result });
}

export interface ProviderFunctionSpec {
  /** Function (folder) name, e.g. "clicksend". */
  name: string;
  provider: ProviderName;
  /** Sub-path → capability key, e.g. {"sms/send": "clicksend_send_sms"}. */
  routes: Record<string, string>;
  testConnection: ConnectionTester;
  /** Webhook receivers by kind: /<name>/webhooks/<token>/<kind>. */
  webhooks?: Record<string, WebhookReceiver>;
  /** For providers that list their numbers: POST /<name>/numbers/sync {connection_id}. */
  listNumbers?: NumberLister;
  /**
   * For providers that can be asked what became of a call: POST /<name>/reconcile
   * (service key only) settles the calls closed as unknown for lack of an outcome.
   */
  reconcile?: ProviderAsker;
}

export interface WebhookReceiver {
  /** The HTTP methods the provider sends with; any other gets 405. */
  methods: readonly string[];
  /** Validates every event before it reaches SQL (see webhooks.ts). */
  receive: (req: Request, token: string) => Promise<Response>;
}

export function providerFunction(spec: ProviderFunctionSpec): (req: Request) => Promise<Response> {
  return serveJson(async (req) => {
    const path = subPath(req, spec.name);
    const webhook = /^webhooks\/([A-Za-z0-9]{16,128})\/([a-z-]+)$/.exec(path);
    if (webhook) {
      // Own properties only: "constructor" is a valid-looking kind too.
      const receiver = spec.webhooks && Object.hasOwn(spec.webhooks, webhook[2]) ? spec.webhooks[webhook[2]] : undefined;
      if (!receiver) throw new ApiError("not_found", `no ${webhook[2]} webhook`);
      if (!receiver.methods.includes(req.method)) throw methodNotAllowed(req.method, receiver.methods);
      return await receiver.receive(req, webhook[1]);
    }
    if (path === "test") {
      if (req.method !== "POST") throw methodNotAllowed(req.method, ["POST"]);
      return await handleConnectionTest(req, spec.provider, spec.testConnection);
    }
    if (path === "numbers/sync" && spec.listNumbers) {
      if (req.method !== "POST") throw methodNotAllowed(req.method, ["POST"]);
      return await handleNumberSync(req, spec.provider, spec.listNumbers);
    }
    if (path === "reconcile" && spec.reconcile) {
      return await handleReconcile(req, spec.name, spec.provider, spec.reconcile);
    }
    const capability = Object.hasOwn(spec.routes, path) ? spec.routes[path] : undefined;
    if (!capability) {
      throw new ApiError("not_found", `unknown route "/${spec.name}/${path}"`, { routes: [...Object.keys(spec.routes), "test"] });
    }
    return await handleToolRequest(req, capability, await readRequest(req));
  });
}

/** Stores webhook events for the connection the token addresses. */
export async function recordEvents(token: string, provider: ProviderName, events: unknown[]): Promise<{ inserted: number; duplicates: number }> {
  const [{ result }] = await asService()<[{ result: { ok: boolean; inserted?: number; duplicates?: number } }]>`
    select private.record_message_events(${token}, ${provider}, ${asService().json(events as never)}::jsonb) as result`;
  if (!result.ok) throw new ApiError("not_found", "unknown webhook");
  return { inserted: result.inserted ?? 0, duplicates: result.duplicates ?? 0 };
}

/** The connection a webhook token addresses with its credentials (signature checks), or not found. */
export async function webhookConnectionSecrets(token: string, provider: ProviderName): Promise<{
  connection_id: string;
  config: Record<string, unknown>;
  credentials: Record<string, string>;
}> {
  const [{ found }] = await asService()<[{ found: { connection_id: string; config: Record<string, unknown>; credentials: Record<string, string> } | null }]>`
    select private.webhook_connection_secrets(${token}, ${provider}) as found`;
  if (!found) throw new ApiError("not_found", "unknown webhook");
  return found;
}

/** The connection (id, user, config) a webhook token addresses, or not found. */
export async function webhookConnection(token: string, provider: ProviderName): Promise<{ connection_id: string; config: Record<string, unknown> }> {
  const [{ found }] = await asService()<[{ found: { connection_id: string; config: Record<string, unknown> } | null }]>`
    select private.webhook_connection(${token}, ${provider}) as found`;
  if (!found) throw new ApiError("not_found", "unknown webhook");
  return found;
}
