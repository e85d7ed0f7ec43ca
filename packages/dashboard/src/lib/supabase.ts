/** The one supabase-js client of the app, typed with the generated Database types. */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { createContext, useContext } from "react";
import type { Database, Json } from "../../../client/src/database.types.ts";
import type { DashboardConfig } from "./config.ts";

export type { Database, Json };
export type Tables = Database["public"]["Tables"];
export type Row<T extends keyof Tables> = Tables[T]["Row"];
export type Db = SupabaseClient<Database>;

/** The browser session lives under this localStorage key (one per project URL). */
export function storageKey(supabaseUrl: string): string {
  return `switchboard-dashboard:${supabaseUrl}`;
}

export function createDashboardClient(config: DashboardConfig): Db {
  return createClient<Database>(config.supabaseUrl, config.supabaseAnonKey, {
    auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: true, storageKey: storageKey(config.supabaseUrl) },
  });
}

export interface AppContextValue {
  supabase: Db;
  config: DashboardConfig;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error("useApp outside <AppContext.Provider>");
  return value;
}

export const useSupabase = (): Db => useApp().supabase;
