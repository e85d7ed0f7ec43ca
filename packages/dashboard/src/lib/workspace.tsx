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
    // The directory gives every member's address to the workspace's own members.
    const rows = must(await supabase.rpc("workspace_member_directory", { p_workspace_id: workspace.id }));
    return rows.map((m) => {
      const base = m.email ?? `Member ${shortId(m.user_id)}`;
      return { ...m, workspace_id: workspace.id, label: m.user_id === me.id ? `${base} (you)` : base };
    });
  }, [supabase, workspace.id, me.id]);

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
