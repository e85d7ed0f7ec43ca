/** The provider catalogue and a workspace's connections, as the signed-in user may see them. */
import { must } from "./errors.ts";
import { useSupabase, type Row } from "./supabase.ts";
import { useLoad } from "./useLoad.ts";

export type Provider = Row<"service_providers">;
/** Every column but secret_id (a Vault reference the dashboard has no use for). */
const CONNECTION_COLUMNS =
  "id, workspace_id, provider_id, name, config, granted_scopes, status, is_default_mail, last_tested_at, last_test_ok, last_test_message, credentials_rotated_at, created_by, created_at, updated_at, deleted_at";
export type ConnectionRow = Omit<Row<"connections">, "secret_id"> & { provider: Provider | undefined };

export function useProviders() {
  const supabase = useSupabase();
  return useLoad(async () => must(await supabase.from("service_providers").select("*").eq("is_enabled", true).order("display_name")), [supabase]);
}

/** Live connections of the workspace the caller may view (RLS), with their provider. */
export function useConnections(workspaceId: string) {
  const supabase = useSupabase();
  return useLoad(async () => {
    const [connections, providers] = await Promise.all([
      supabase.from("connections").select(CONNECTION_COLUMNS).eq("workspace_id", workspaceId).order("created_at"),
      supabase.from("service_providers").select("*"),
    ]);
    const byId = new Map(must(providers).map((p) => [p.id, p]));
    return must(connections).map((c) => ({ ...c, provider: byId.get(c.provider_id) }));
  }, [supabase, workspaceId]);
}

export const MESSAGING_CHANNELS = ["sms", "mms", "whatsapp", "voice"];
export const ROUTE_CHANNELS = ["sms", "mms", "whatsapp", "email"] as const;

export const isMail = (c: ConnectionRow) => !!c.provider?.channels.includes("email");
export const hasNumbers = (c: ConnectionRow) => !!c.provider?.channels.some((ch) => MESSAGING_CHANNELS.includes(ch));
export const connectionLabel = (c: ConnectionRow) => `${c.name} (${c.provider?.display_name ?? "?"})`;
