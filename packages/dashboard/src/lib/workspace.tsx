/**
 * The workspaces the signed-in user belongs to (personal first), the selected one (from
 * the URL: /w/<workspace id>/…), the caller's role in it, and a directory of its members.
 *
 * Members' e-mail addresses: auth.users is not exposed, so the dashboard names a member
 * by what RLS lets the caller read: themselves (the session), and, for admins, the
 * invitation a member accepted (audit `member.joined` → invitation e-mail) and the
 * workspace's creator. Anyone else is shown by a short id.
 */
import { createContext, useContext, useMemo, type ReactNode } from "react";
import { useMe } from "./auth.tsx";
import { must } from "./errors.ts";
import { shortId } from "./format.ts";
import { useSupabase, type Row } from "./supabase.ts";
import { useLoad, type Loaded } from "./useLoad.ts";

export type Role = "owner" | "admin" | "member";

export interface WorkspaceInfo {
  id: string;
  name: string;
  personal: boolean;
  primary_owner_user_id: string;
  role: Role;
}

export interface Member extends Row<"workspace_members"> {
  /** e-mail where known, else a short id; "(you)" added for the caller. */
  label: string;
  email: string | null;
}

interface WorkspaceValue {
  workspaces: Loaded<WorkspaceInfo[]>;
}

const WorkspacesContext = createContext<WorkspaceValue | null>(null);

export function WorkspacesProvider({ children }: { children: ReactNode }) {
  const supabase = useSupabase();
  const me = useMe();
  const workspaces = useLoad(async () => {
    const [ws, mine] = await Promise.all([
      supabase.from("workspaces").select("id, name, personal, primary_owner_user_id").order("created_at"),
      supabase.from("workspace_members").select("workspace_id, role").eq("user_id", me.id),
    ]);
    const roles = new Map(must(mine).map((m) => [m.workspace_id, m.role as Role]));
    return must(ws)
      .filter((w) => roles.has(w.id))
      .map((w) => ({ ...w, role: roles.get(w.id)! }))
      .sort((a, b) => Number(b.personal) - Number(a.personal) || a.name.localeCompare(b.name));
  }, [supabase, me.id]);
  return <WorkspacesContext.Provider value={{ workspaces }}>{children}</WorkspacesContext.Provider>;
}

export function useWorkspaces(): Loaded<WorkspaceInfo[]> {
  const value = useContext(WorkspacesContext);
  if (!value) throw new Error("useWorkspaces outside <WorkspacesProvider>");
  return value.workspaces;
}

interface CurrentValue {
  workspace: WorkspaceInfo;
  isAdmin: boolean;
  isOwner: boolean;
  members: Loaded<Member[]>;
  memberLabel: (userId: string | null | undefined) => string;
}

const CurrentContext = createContext<CurrentValue | null>(null);

export function CurrentWorkspaceProvider({ workspace, children }: { workspace: WorkspaceInfo; children: ReactNode }) {
  const supabase = useSupabase();
  const me = useMe();
  const isAdmin = workspace.role === "owner" || workspace.role === "admin";
  const members = useLoad(async () => {
    const rows = must(await supabase.from("workspace_members").select("*").eq("workspace_id", workspace.id).order("joined_at"));
    const emails = new Map<string, string>([[me.id, me.email]]);
    if (isAdmin) {
      const [invitations, joined] = await Promise.all([
        supabase.from("workspace_invitations").select("id, email").eq("workspace_id", workspace.id).eq("status", "accepted"),
        supabase.from("audit_events").select("target_id, details").eq("workspace_id", workspace.id).eq("action", "member.joined"),
      ]);
      const byInvitation = new Map((invitations.data ?? []).map((i) => [i.id, i.email]));
      for (const event of joined.data ?? []) {
        const invitationId = (event.details as { invitation_id?: string } | null)?.invitation_id;
        const email = invitationId ? byInvitation.get(invitationId) : undefined;
        if (event.target_id && email) emails.set(event.target_id, email);
      }
    }
    return rows.map((m) => {
      const email = emails.get(m.user_id) ?? null;
      const base = email ?? `Member ${shortId(m.user_id)}`;
      return { ...m, email, label: m.user_id === me.id ? `${base} (you)` : base };
    });
  }, [supabase, workspace.id, isAdmin, me.id]);

  const value = useMemo<CurrentValue>(() => {
    const byId = new Map((members.data ?? []).map((m) => [m.user_id, m.label]));
    return {
      workspace,
      isAdmin,
      isOwner: workspace.role === "owner",
      members,
      memberLabel: (userId) => (userId ? (byId.get(userId) ?? (userId === me.id ? `${me.email} (you)` : `User ${shortId(userId)}`)) : "—"),
    };
  }, [workspace, isAdmin, members, me.id, me.email]);
  return <CurrentContext.Provider value={value}>{children}</CurrentContext.Provider>;
}

export function useCurrent(): CurrentValue {
  const value = useContext(CurrentContext);
  if (!value) throw new Error("useCurrent outside <CurrentWorkspaceProvider>");
  return value;
}
