/**
 * Switchboard SDK, on supabase-js. Two faces:
 *  - Switchboard: for an app's signed-in user — connections, agents, grants, keys,
 *    the activity log (RPCs and RLS-guarded tables).
 *  - SwitchboardAgent: for an agent runtime — listTools(format) and callTool(name, args)
 *    with an agent key (or the user's session plus an agent id).
 * Works in Node and the browser (no Node built-ins).
 */
import { createClient, FunctionsHttpError, type SupabaseClient, type SupabaseClientOptions } from "@supabase/supabase-js";
import type { Database, Json } from "./database.types.ts";

export type { Database, Json };
type Tables = Database["public"]["Tables"];
export type Agent = Tables["agents"]["Row"];
export type Operation = Tables["operations"]["Row"];
export type AgentPermission = Tables["agent_permissions"]["Row"];
export type AgentKeyRow = Tables["agent_keys"]["Row"];
export type MessageEvent = Tables["message_events"]["Row"];
export type ProviderName = "clicksend_sms" | "smtp" | "sendgrid";
export type ToolFormat = "raw" | "openai" | "anthropic" | "mcp";

/** A connection as its owner sees it (never credentials). */
export interface Connection {
  id: string;
  user_id: string;
  provider: ProviderName;
  name: string;
  config: Record<string, unknown>;
  granted_scopes: string[];
  status: "active" | "disabled" | "error";
  has_credentials: boolean;
  last_tested_at: string | null;
  last_test_ok: boolean | null;
  last_test_message: string | null;
  webhook_token: string;
  credentials_rotated_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface IssuedAgentKey {
  id: string;
  agent_id: string;
  name: string | null;
  /** Shown once: store it now. */
  key: string;
  key_prefix: string;
  expires_at: string | null;
  created_at: string;
}

export interface GrantOptions {
  agentId: string;
  connectionId: string;
  scopes: string[];
  /** Messages per UTC day; null for no daily limit. Default 100. */
  dailySendLimit?: number | null;
  /** Default 10. */
  maxRecipientsPerMessage?: number;
  /** E.164 prefixes ('+61') and e-mail patterns ('a@x.com', 'x.com', '*.x.com'). */
  allowedRecipients?: string[];
  blockedRecipients?: string[];
  expiresAt?: string | Date | null;
}

/** Every Switchboard failure, in the documented envelope's terms. */
export class SwitchboardError extends Error {
  constructor(readonly code: string, message: string, readonly status?: number, readonly details?: unknown) {
    super(message);
    this.name = "SwitchboardError";
  }
}

const SQLSTATE_CODES: Record<string, string> = {
  PT401: "unauthorized", PT404: "not_found", PT409: "conflict", "42501": "permission_denied",
  "22023": "invalid_request", "22P02": "invalid_request", "23514": "invalid_request", P0002: "not_found",
};

function rpcError(error: { code?: string; message: string; details?: unknown }): SwitchboardError {
  return new SwitchboardError(SQLSTATE_CODES[error.code ?? ""] ?? "internal_error", error.message, undefined, error.details);
}

async function functionError(error: unknown): Promise<SwitchboardError> {
  if (error instanceof FunctionsHttpError) {
    const response = error.context as Response;
    try {
      const body = await response.json();
      if (body?.error?.code) return new SwitchboardError(body.error.code, body.error.message, response.status, body.error.details);
    } catch { /* not our envelope */ }
    return new SwitchboardError("internal_error", `function answered ${response.status}`, response.status);
  }
  return new SwitchboardError("provider_unavailable", error instanceof Error ? error.message : String(error));
}

function iso(value: string | Date | null | undefined): string | null {
  return value instanceof Date ? value.toISOString() : value ?? null;
}

/** For an app's signed-in user. */
export class Switchboard {
  constructor(readonly supabase: SupabaseClient<Database>) {}

  private async rpc<T>(fn: keyof Database["public"]["Functions"], args: Record<string, unknown>): Promise<T> {
    const { data, error } = await this.supabase.rpc(fn as never, args as never);
    if (error) throw rpcError(error);
    return data as T;
  }

  // ---- agents ----
  createAgent(name: string, description?: string): Promise<Agent> {
    return this.rpc("create_agent", { p_name: name, p_description: description ?? null });
  }
  async listAgents(): Promise<Agent[]> {
    const { data, error } = await this.supabase.from("agents").select("*").order("created_at");
    if (error) throw rpcError(error);
    return data;
  }
  async setAgentActive(agentId: string, isActive: boolean): Promise<void> {
    const { error } = await this.supabase.from("agents").update({ is_active: isActive }).eq("id", agentId);
    if (error) throw rpcError(error);
  }

  // ---- connections ----
  createConnection(input: {
    provider: ProviderName;
    name: string;
    credentials: Record<string, string>;
    config?: Record<string, unknown>;
    scopes?: string[];
  }): Promise<Connection> {
    return this.rpc("create_connection", {
      p_provider: input.provider, p_name: input.name, p_credentials: input.credentials,
      p_config: input.config ?? {}, p_scopes: input.scopes ?? null,
    });
  }
  updateConnection(connectionId: string, changes: { name?: string; config?: Record<string, unknown>; scopes?: string[]; status?: "active" | "disabled" }): Promise<Connection> {
    return this.rpc("update_connection", { p_connection_id: connectionId, p_changes: changes });
  }
  rotateCredentials(connectionId: string, credentials: Record<string, string>): Promise<Connection> {
    return this.rpc("rotate_connection_credentials", { p_connection_id: connectionId, p_credentials: credentials });
  }
  deleteConnection(connectionId: string): Promise<{ id: string; deleted: true }> {
    return this.rpc("delete_connection", { p_connection_id: connectionId });
  }
  /** The user's connections, in the same shape the connection RPCs return (no Vault reference). */
  async listConnections(): Promise<Connection[]> {
    const [connections, providers] = await Promise.all([
      this.supabase.from("connections").select("*").order("created_at"),
      this.supabase.from("service_providers").select("id,name"),
    ]);
    if (connections.error) throw rpcError(connections.error);
    if (providers.error) throw rpcError(providers.error);
    const names = new Map(providers.data.map((p) => [p.id, p.name]));
    return connections.data.map(({ secret_id, deleted_at: _deleted, provider_id, ...row }) => ({
      ...row,
      provider: names.get(provider_id) as ProviderName,
      has_credentials: secret_id !== null,
    })) as Connection[];
  }
  /** Runs the provider's credential check (e.g. SendGrid /v3/scopes) and records the result. */
  async testConnection(provider: ProviderName, connectionId: string): Promise<{ ok: boolean; message: string }> {
    const fn = provider === "clicksend_sms" ? "clicksend" : provider;
    const { data, error } = await this.supabase.functions.invoke(`${fn}/test`, { body: { connection_id: connectionId } });
    if (error) throw await functionError(error);
    return data;
  }

  // ---- grants ----
  grant(options: GrantOptions): Promise<AgentPermission> {
    return this.rpc("grant_agent_permission", {
      p_agent_id: options.agentId, p_connection_id: options.connectionId, p_scopes: options.scopes,
      p_daily_send_limit: options.dailySendLimit === undefined ? 100 : options.dailySendLimit,
      p_max_recipients_per_message: options.maxRecipientsPerMessage ?? 10,
      p_allowed_recipients: options.allowedRecipients ?? [], p_blocked_recipients: options.blockedRecipients ?? [],
      p_expires_at: iso(options.expiresAt),
    });
  }
  updateGrant(permissionId: string, changes: Partial<{
    scopes: string[]; daily_send_limit: number | null; max_recipients_per_message: number;
    allowed_recipients: string[]; blocked_recipients: string[]; expires_at: string | null; is_active: boolean;
  }>): Promise<AgentPermission> {
    return this.rpc("update_agent_permission", { p_permission_id: permissionId, p_changes: changes });
  }
  revokeGrant(permissionId: string): Promise<AgentPermission> {
    return this.rpc("revoke_agent_permission", { p_permission_id: permissionId });
  }

  // ---- agent keys ----
  issueAgentKey(agentId: string, options: { name?: string; expiresAt?: string | Date } = {}): Promise<IssuedAgentKey> {
    return this.rpc("issue_agent_key", { p_agent_id: agentId, p_name: options.name ?? null, p_expires_at: iso(options.expiresAt) });
  }
  revokeAgentKey(keyId: string): Promise<{ id: string; revoked_at: string }> {
    return this.rpc("revoke_agent_key", { p_key_id: keyId });
  }

  // ---- tools and activity ----
  getAgentTools(agentId: string, format: ToolFormat = "raw"): Promise<unknown[]> {
    return this.rpc("get_agent_tools", { p_agent_id: agentId, p_format: format });
  }
  async listOperations(options: { agentId?: string; limit?: number } = {}): Promise<Operation[]> {
    let query = this.supabase.from("operations").select("*").order("created_at", { ascending: false }).limit(options.limit ?? 50);
    if (options.agentId) query = query.eq("agent_id", options.agentId);
    const { data, error } = await query;
    if (error) throw rpcError(error);
    return data;
  }
  async listMessageEvents(options: { operationId?: string; limit?: number } = {}): Promise<MessageEvent[]> {
    let query = this.supabase.from("message_events").select("*").order("received_at", { ascending: false }).limit(options.limit ?? 50);
    if (options.operationId) query = query.eq("operation_id", options.operationId);
    const { data, error } = await query;
    if (error) throw rpcError(error);
    return data;
  }

  /** An agent runtime acting as one of this user's agents with the user's session. */
  agent(agentId: string): SwitchboardAgent {
    return new SwitchboardAgent({ supabase: this.supabase, agentId });
  }
}

export type AgentOptions =
  | {
    supabaseUrl: string;
    agentKey: string;
    anonKey?: string;
    fetch?: typeof fetch;
    /** supabase-js realtime options; on Node 20 pass `{ transport: WebSocket }` from the "ws" package. */
    realtime?: SupabaseClientOptions<"public">["realtime"];
  }
  | { supabase: SupabaseClient; agentId: string };

/** For an agent runtime: its tools, and calling them. */
export class SwitchboardAgent {
  private readonly supabase: SupabaseClient;
  private readonly agentId: string | null;

  constructor(options: AgentOptions) {
    if ("agentKey" in options) {
      // The agent key is the bearer token; the anon key (if any) only fills supabase-js's apikey slot.
      this.supabase = createClient(options.supabaseUrl, options.anonKey ?? options.agentKey, {
        global: { headers: { Authorization: `Bearer ${options.agentKey}` }, fetch: options.fetch },
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
        realtime: options.realtime,
      });
      this.agentId = null;
    } else {
      this.supabase = options.supabase;
      this.agentId = options.agentId;
    }
  }

  /** The agent's tools right now (live grants only), in the runtime's format. */
  async listTools<T = unknown>(format: ToolFormat = "openai"): Promise<T[]> {
    const query = new URLSearchParams({ format, ...(this.agentId ? { agent_id: this.agentId } : {}) });
    const { data, error } = await this.supabase.functions.invoke(`agent-tools?${query}`, { method: "GET" });
    if (error) throw await functionError(error);
    return data.tools;
  }

  /** Calls a tool by the name listTools gave it. Throws SwitchboardError (code, status, details). */
  async callTool<T = Record<string, unknown>>(name: string, args: unknown, options: { idempotencyKey?: string } = {}): Promise<T> {
    const { data, error } = await this.supabase.functions.invoke("agent-tools", {
      body: { name, arguments: args ?? {}, ...(this.agentId ? { agent_id: this.agentId } : {}) },
      headers: options.idempotencyKey ? { "Idempotency-Key": options.idempotencyKey } : undefined,
    });
    if (error) throw await functionError(error);
    return data as T;
  }
}
