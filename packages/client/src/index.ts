/**
 * Switchboard SDK, on supabase-js. Two faces:
 *  - Switchboard: for an app's signed-in user — workspaces and their members, connections,
 *    member permissions, phone numbers, sender identities, agents, grants, keys, the
 *    activity log and the audit trail (RPCs and RLS-guarded tables).
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
export type WorkspaceMember = Tables["workspace_members"]["Row"];
/** An invitation as the workspace's admins (or its addressee) see it: the token only as its hash. */
export type WorkspaceInvitation = Tables["workspace_invitations"]["Row"];
export type MemberPermission = Tables["member_permissions"]["Row"];
export type PhoneNumber = Tables["phone_numbers"]["Row"];
export type MemberDefaultNumber = Tables["member_default_numbers"]["Row"];
export type SenderIdentity = Tables["sender_identities"]["Row"];
export type AuditEvent = Tables["audit_events"]["Row"];
export type UsageCounter = Tables["usage_counters"]["Row"];
export type ProviderName = "clicksend_sms" | "smtp" | "sendgrid" | "twilio" | "telnyx" | "exotel";
export type Channel = "sms" | "mms" | "whatsapp" | "email";
export type ToolFormat = "raw" | "openai" | "anthropic" | "mcp";
export type WorkspaceRole = "owner" | "admin" | "member";

/** A workspace (the user's personal one, or a team) with the signed-in user's role in it. */
export interface Workspace {
  id: string;
  name: string;
  personal: boolean;
  primary_owner_user_id: string;
  role: WorkspaceRole;
  created_at: string;
  updated_at: string;
}

/** An invitation just created: the token is shown this once (only its hash is stored). */
export interface IssuedInvitation {
  id: string;
  workspace_id: string;
  workspace_name: string;
  email: string;
  role: "admin" | "member";
  /** swb_invite_…: hand it to the invitee; they accept it signed in with this e-mail address. */
  token: string;
  expires_at: string;
  created_at: string;
}

/** A connection as a member of its workspace sees it (never credentials). */
export interface Connection {
  id: string;
  workspace_id: string;
  provider: ProviderName;
  name: string;
  config: Record<string, unknown>;
  granted_scopes: string[];
  status: "active" | "disabled" | "error";
  has_credentials: boolean;
  /** The workspace's mail connection used when a mail send names none. */
  is_default_mail: boolean;
  last_tested_at: string | null;
  last_test_ok: boolean | null;
  last_test_message: string | null;
  /** Addresses the provider webhooks; the workspace's owner and admins only (null for members). */
  webhook_token: string | null;
  credentials_rotated_at: string | null;
  created_by: string | null;
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
  /** Messages per calendar month (UTC); null (default) for no monthly limit of the grant's own. */
  monthlySendLimit?: number | null;
  /** Default 10. */
  maxRecipientsPerMessage?: number;
  /** E.164 prefixes ('+61') and e-mail patterns ('a@x.com', 'x.com', '*.x.com'). */
  allowedRecipients?: string[];
  blockedRecipients?: string[];
  expiresAt?: string | Date | null;
}

/**
 * What a member may do with one connection (set by the workspace's owner or admins;
 * they themselves hold everything). An agent acting for the member never gets more.
 */
export interface MemberPermissionOptions {
  connectionId: string;
  userId: string;
  /** Default true: without it the connection is invisible to the member. */
  canView?: boolean;
  /** Default false. */
  canSend?: boolean;
  /** Rename the connection, change its config, test it. Default false. */
  canConfigure?: boolean;
  /** Default: every scope of the connection when canSend, else none. */
  scopes?: string[] | null;
  /** Messages per UTC day / calendar month; null (default) for no limit. */
  dailySendLimit?: number | null;
  monthlySendLimit?: number | null;
  expiresAt?: string | Date | null;
  /** E.164 prefixes ('+61') and e-mail patterns ('a@x.com', 'x.com', '*.x.com'). */
  allowedRecipients?: string[];
  blockedRecipients?: string[];
}

export interface PhoneNumberOptions {
  connectionId: string;
  /** E.164, e.g. +61400000000. */
  e164: string;
  friendlyName?: string | null;
  /** Default ["sms"]. */
  capabilities?: ("sms" | "mms" | "voice" | "whatsapp")[];
  /** The member the number belongs to; null (default) puts it in the workspace's pool. */
  assignedTo?: string | null;
  /** The connection's default sender; default: only when it has none yet. */
  isDefault?: boolean | null;
}

export interface SenderIdentityOptions {
  connectionId: string;
  email: string;
  name?: string | null;
  verified?: boolean;
  /** The connection's from address; default: only when it has none yet. */
  isDefault?: boolean | null;
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

function rpcError(error: { code?: string; message: string; details?: unknown }, status?: number): SwitchboardError {
  return new SwitchboardError(SQLSTATE_CODES[error.code ?? ""] ?? "internal_error", error.message, status || undefined, error.details);
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

/** The columns of `connections` a member reads: never the Vault reference. */
const CONNECTION_COLUMNS = "id,workspace_id,provider_id,name,config,granted_scopes,status,is_default_mail,last_tested_at," +
  "last_test_ok,last_test_message,credentials_rotated_at,created_by,created_at,updated_at";

/** For an app's signed-in user. */
export class Switchboard {
  constructor(readonly supabase: SupabaseClient<Database>) {}

  private async rpc<T>(fn: keyof Database["public"]["Functions"], args: Record<string, unknown>): Promise<T> {
    const { data, error, status } = await this.supabase.rpc(fn as never, args as never);
    if (error) throw rpcError(error, status);
    return data as T;
  }

  /**
   * The signed-in user's workspaces and role in each, read through RLS. The user's id is
   * their personal workspace's owner: a personal workspace is visible to its owner only.
   */
  private async memberships(): Promise<{ userId: string | undefined; roles: Map<string, WorkspaceRole>; workspaces: Tables["workspaces"]["Row"][] }> {
    const [workspaces, members] = await Promise.all([
      this.supabase.from("workspaces").select("*").order("created_at"),
      this.supabase.from("workspace_members").select("workspace_id,user_id,role"),
    ]);
    if (workspaces.error) throw rpcError(workspaces.error, workspaces.status);
    if (members.error) throw rpcError(members.error, members.status);
    const userId = workspaces.data.find((w) => w.personal)?.primary_owner_user_id;
    const roles = new Map(members.data.filter((m) => m.user_id === userId).map((m) => [m.workspace_id, m.role as WorkspaceRole]));
    return { userId, roles, workspaces: workspaces.data };
  }

  // ---- workspaces ----
  /** The workspaces the user belongs to (their personal one first), with their role in each. */
  async listWorkspaces(): Promise<Workspace[]> {
    const { roles, workspaces } = await this.memberships();
    return workspaces
      .filter((w) => roles.has(w.id))
      .sort((a, b) => Number(b.personal) - Number(a.personal))
      .map((w) => ({ ...w, role: roles.get(w.id)! }));
  }
  /** A team workspace; the user becomes its owner. */
  createWorkspace(name: string): Promise<Workspace> {
    return this.rpc("create_workspace", { p_name: name });
  }
  renameWorkspace(workspaceId: string, name: string): Promise<Workspace> {
    return this.rpc("rename_workspace", { p_workspace_id: workspaceId, p_name: name });
  }
  /** Deletes a team workspace and everything in it, credentials included (owner only). */
  deleteWorkspace(workspaceId: string): Promise<{ id: string; deleted: true }> {
    return this.rpc("delete_workspace", { p_workspace_id: workspaceId });
  }

  // ---- members and invitations ----
  async listMembers(workspaceId: string): Promise<WorkspaceMember[]> {
    const { data, error, status } = await this.supabase.from("workspace_members").select("*").eq("workspace_id", workspaceId).order("joined_at");
    if (error) throw rpcError(error, status);
    return data;
  }
  /** Invites an e-mail address (admins). The returned token is shown once: hand it to the invitee. */
  inviteMember(workspaceId: string, email: string, options: { role?: "admin" | "member"; expiresAt?: string | Date } = {}): Promise<IssuedInvitation> {
    return this.rpc("invite_workspace_member", {
      p_workspace_id: workspaceId, p_email: email, p_role: options.role ?? "member", p_expires_at: iso(options.expiresAt),
    });
  }
  /** A workspace's invitations (admins), or every pending one addressed to the user. */
  async listInvitations(options: { workspaceId?: string; status?: WorkspaceInvitation["status"] } = {}): Promise<WorkspaceInvitation[]> {
    let query = this.supabase.from("workspace_invitations").select("*").order("created_at", { ascending: false });
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    if (options.status) query = query.eq("status", options.status);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }
  revokeInvitation(invitationId: string): Promise<{ id: string; status: "revoked" }> {
    return this.rpc("revoke_workspace_invitation", { p_invitation_id: invitationId });
  }
  /** Accepts an invitation sent to the signed-in user's e-mail address. */
  acceptInvitation(token: string): Promise<Workspace> {
    return this.rpc("accept_workspace_invitation", { p_token: token });
  }
  declineInvitation(token: string): Promise<{ id: string; status: "declined" }> {
    return this.rpc("decline_workspace_invitation", { p_token: token });
  }
  /** Leaves a team workspace: the user's permissions there go, their agents there are disabled. */
  leaveWorkspace(workspaceId: string): Promise<{ workspace_id: string; left: true }> {
    return this.rpc("leave_workspace", { p_workspace_id: workspaceId });
  }
  /** Removes a member (admins remove members; the owner anyone else); their agents there stop at once. */
  removeMember(workspaceId: string, userId: string): Promise<{ workspace_id: string; user_id: string; removed: true }> {
    return this.rpc("remove_workspace_member", { p_workspace_id: workspaceId, p_user_id: userId });
  }
  /** Makes a member an admin or an admin a member (owner only). */
  changeMemberRole(workspaceId: string, userId: string, role: "admin" | "member"): Promise<{ workspace_id: string; user_id: string; role: "admin" | "member" }> {
    return this.rpc("change_workspace_member_role", { p_workspace_id: workspaceId, p_user_id: userId, p_role: role });
  }
  /** Hands the workspace to another member (owner only); the old owner stays as an admin. */
  transferOwnership(workspaceId: string, newOwnerId: string): Promise<{ workspace_id: string; owner: string }> {
    return this.rpc("transfer_workspace_ownership", { p_workspace_id: workspaceId, p_new_owner_id: newOwnerId });
  }

  // ---- member permissions ----
  /** Sets (replaces) what a member may do with a connection (admins). */
  setMemberPermission(options: MemberPermissionOptions): Promise<MemberPermission> {
    return this.rpc("set_member_permission", {
      p_connection_id: options.connectionId, p_user_id: options.userId,
      p_can_view: options.canView ?? true, p_can_send: options.canSend ?? false, p_can_configure: options.canConfigure ?? false,
      p_scopes: options.scopes ?? null,
      p_daily_send_limit: options.dailySendLimit ?? null, p_monthly_send_limit: options.monthlySendLimit ?? null,
      p_expires_at: iso(options.expiresAt),
      p_allowed_recipients: options.allowedRecipients ?? [], p_blocked_recipients: options.blockedRecipients ?? [],
    });
  }
  /** Takes a member's permission on a connection away (admins): they no longer see it. */
  removeMemberPermission(connectionId: string, userId: string): Promise<{ id: string; removed: true }> {
    return this.rpc("remove_member_permission", { p_connection_id: connectionId, p_user_id: userId });
  }
  /** Admins see every member's permissions in their workspaces; a member sees their own. */
  async listMemberPermissions(options: { workspaceId?: string; connectionId?: string; userId?: string } = {}): Promise<MemberPermission[]> {
    let query = this.supabase.from("member_permissions").select("*").order("granted_at");
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    if (options.connectionId) query = query.eq("connection_id", options.connectionId);
    if (options.userId) query = query.eq("user_id", options.userId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }

  // ---- routes ----
  /**
   * Orders a channel's accounts for the workspace's channel tools (admins): a send tries
   * them in this order, moving on only when a provider proved it did not take the message.
   * With `userId` the route is that member's own; an empty list deletes the route.
   */
  setRoute(options: { workspaceId: string; channel: Channel; connectionIds: string[]; userId?: string }): Promise<{
    id?: string; channel: Channel; connection_ids?: string[]; deleted?: boolean;
  }> {
    return this.rpc("set_route", {
      p_workspace_id: options.workspaceId, p_channel: options.channel, p_connection_ids: options.connectionIds,
      p_user_id: options.userId ?? null,
    });
  }

  // ---- phone numbers ----
  /**
   * Fills a connection's numbers from its provider's list (owners and admins; Twilio,
   * Telnyx, Exotel): new numbers join the pool, missing ones become inactive, assignments stay.
   */
  async syncNumbers(provider: "twilio" | "telnyx" | "exotel", connectionId: string): Promise<{
    connection_id: string; listed: number; added: number; updated: number; deactivated: number; unchanged: number; skipped: number;
  }> {
    const { data, error } = await this.supabase.functions.invoke(`${provider}/numbers/sync`, { body: { connection_id: connectionId } });
    if (error) throw await functionError(error);
    return data;
  }
  /** Adds a number to a connection (admins), assigned to a member or in the pool. */
  addPhoneNumber(options: PhoneNumberOptions): Promise<PhoneNumber> {
    return this.rpc("add_phone_number", {
      p_connection_id: options.connectionId, p_e164: options.e164, p_friendly_name: options.friendlyName ?? null,
      p_capabilities: options.capabilities ?? ["sms"], p_assigned_to: options.assignedTo ?? null, p_is_default: options.isDefault ?? null,
    });
  }
  /** Changes a number (admins); assigned_to null returns it to the pool. */
  updatePhoneNumber(phoneNumberId: string, changes: Partial<{
    friendly_name: string | null; capabilities: ("sms" | "mms" | "voice" | "whatsapp")[]; status: "active" | "inactive";
    assigned_to: string | null; is_default: boolean;
  }>): Promise<PhoneNumber> {
    return this.rpc("update_phone_number", { p_phone_number_id: phoneNumberId, p_changes: changes });
  }
  deletePhoneNumber(phoneNumberId: string): Promise<{ id: string; deleted: true }> {
    return this.rpc("delete_phone_number", { p_phone_number_id: phoneNumberId });
  }
  /** The numbers of the connections the user may see. */
  async listPhoneNumbers(options: { connectionId?: string; workspaceId?: string } = {}): Promise<PhoneNumber[]> {
    let query = this.supabase.from("phone_numbers").select("*").order("created_at");
    if (options.connectionId) query = query.eq("connection_id", options.connectionId);
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }
  /**
   * The number a member sends from on its connection when a send names none: the user's
   * own without userId, anyone's as an admin. It must be a number they may use.
   */
  setMemberDefaultNumber(phoneNumberId: string, userId?: string): Promise<{ user_id: string; connection_id: string; phone_number_id: string; e164: string }> {
    return this.rpc("set_member_default_number", { p_phone_number_id: phoneNumberId, p_user_id: userId ?? null });
  }
  /** The user's default numbers (an admin: every member's in their workspaces). */
  async listDefaultNumbers(): Promise<MemberDefaultNumber[]> {
    const { data, error, status } = await this.supabase.from("member_default_numbers").select("*");
    if (error) throw rpcError(error, status);
    return data;
  }

  // ---- sender identities (mail connections) ----
  addSenderIdentity(options: SenderIdentityOptions): Promise<SenderIdentity> {
    return this.rpc("add_sender_identity", {
      p_connection_id: options.connectionId, p_email: options.email, p_name: options.name ?? null,
      p_verified: options.verified ?? false, p_is_default: options.isDefault ?? null,
    });
  }
  updateSenderIdentity(identityId: string, changes: Partial<{ name: string | null; verified: boolean; is_default: boolean }>): Promise<SenderIdentity> {
    return this.rpc("update_sender_identity", { p_identity_id: identityId, p_changes: changes });
  }
  deleteSenderIdentity(identityId: string): Promise<{ id: string; deleted: true }> {
    return this.rpc("delete_sender_identity", { p_identity_id: identityId });
  }
  async listSenderIdentities(options: { connectionId?: string } = {}): Promise<SenderIdentity[]> {
    let query = this.supabase.from("sender_identities").select("*").order("created_at");
    if (options.connectionId) query = query.eq("connection_id", options.connectionId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }

  // ---- audit trail ----
  /** The administrative actions of the workspaces the user administers, newest first (members see none). */
  async listAuditEvents(options: { workspaceId?: string; action?: string; limit?: number } = {}): Promise<AuditEvent[]> {
    let query = this.supabase.from("audit_events").select("*").order("id", { ascending: false }).limit(options.limit ?? 100);
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    if (options.action) query = query.eq("action", options.action);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }

  // ---- agents ----
  /** An agent acting for the user, in a workspace they belong to (default: their personal one). */
  createAgent(name: string, description?: string | null, options: { workspaceId?: string } = {}): Promise<Agent> {
    return this.rpc("create_agent", { p_name: name, p_description: description ?? null, p_workspace_id: options.workspaceId ?? null });
  }
  /** The user's own agents (an admin: every agent of their workspaces). */
  async listAgents(options: { workspaceId?: string } = {}): Promise<Agent[]> {
    let query = this.supabase.from("agents").select("*").order("created_at");
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }
  async setAgentActive(agentId: string, isActive: boolean): Promise<void> {
    const { error, status } = await this.supabase.from("agents").update({ is_active: isActive }).eq("id", agentId);
    if (error) throw rpcError(error, status);
  }

  // ---- connections ----
  /** Connects a provider account (owners and admins) in a workspace (default: the personal one). */
  createConnection(input: {
    provider: ProviderName;
    name: string;
    credentials: Record<string, string>;
    config?: Record<string, unknown>;
    scopes?: string[];
    workspaceId?: string;
  }): Promise<Connection> {
    return this.rpc("create_connection", {
      p_provider: input.provider, p_name: input.name, p_credentials: input.credentials,
      p_config: input.config ?? {}, p_scopes: input.scopes ?? null, p_workspace_id: input.workspaceId ?? null,
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
  /** Makes a mail connection the workspace's default mail connection (admins). */
  setDefaultMailConnection(connectionId: string): Promise<Connection> {
    return this.rpc("set_default_mail_connection", { p_connection_id: connectionId });
  }
  /**
   * The connections the user may view (in every workspace, or one), in the same shape the
   * connection RPCs return: no Vault reference, the webhook token for owners and admins only.
   */
  async listConnections(options: { workspaceId?: string } = {}): Promise<Connection[]> {
    let query = this.supabase.from("connections").select(CONNECTION_COLUMNS).order("created_at");
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    const [connections, providers, webhooks] = await Promise.all([
      query,
      this.supabase.from("service_providers").select("id,name"),
      // Readable by owners and admins only (RLS): a member gets no rows, so no tokens.
      this.supabase.from("connection_webhooks").select("connection_id,webhook_token"),
    ]);
    if (connections.error) throw rpcError(connections.error, connections.status);
    if (providers.error) throw rpcError(providers.error, providers.status);
    if (webhooks.error) throw rpcError(webhooks.error, webhooks.status);
    const names = new Map(providers.data.map((p) => [p.id, p.name]));
    const tokens = new Map(webhooks.data.map((w) => [w.connection_id, w.webhook_token]));
    const rows = connections.data as unknown as (Omit<Connection, "provider" | "has_credentials" | "webhook_token"> & { provider_id: string })[];
    return rows.map(({ provider_id, ...row }) => ({
      ...row,
      provider: names.get(provider_id) as ProviderName,
      // Only live connections are visible, and a live connection always has its credentials in Vault.
      has_credentials: true,
      webhook_token: tokens.get(row.id) ?? null,
    }));
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
      p_expires_at: iso(options.expiresAt), p_monthly_send_limit: options.monthlySendLimit ?? null,
    });
  }
  updateGrant(permissionId: string, changes: Partial<{
    scopes: string[]; daily_send_limit: number | null; monthly_send_limit: number | null; max_recipients_per_message: number;
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
  /** The calls made for the user (by them or their agents); an admin: every call of their workspaces. */
  async listOperations(options: { agentId?: string; workspaceId?: string; limit?: number } = {}): Promise<Operation[]> {
    let query = this.supabase.from("operations").select("*").order("created_at", { ascending: false }).limit(options.limit ?? 50);
    if (options.agentId) query = query.eq("agent_id", options.agentId);
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }
  /**
   * Messages counted per agent grant and per member permission, per UTC day and month
   * (what the send limits are checked against).
   */
  async listUsage(options: { subjectId?: string; workspaceId?: string } = {}): Promise<UsageCounter[]> {
    let query = this.supabase.from("usage_counters").select("*").order("period_start", { ascending: false });
    if (options.subjectId) query = query.eq("subject_id", options.subjectId);
    if (options.workspaceId) query = query.eq("workspace_id", options.workspaceId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
    return data;
  }
  async listMessageEvents(options: { operationId?: string; limit?: number } = {}): Promise<MessageEvent[]> {
    let query = this.supabase.from("message_events").select("*").order("received_at", { ascending: false }).limit(options.limit ?? 50);
    if (options.operationId) query = query.eq("operation_id", options.operationId);
    const { data, error, status } = await query;
    if (error) throw rpcError(error, status);
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
