/**
 * Runtime configuration: one build serves any Supabase project. At start the app reads
 * `config.json` beside index.html ({ supabaseUrl, supabaseAnonKey }); the devstack writes
 * it for the local stack, a deployment writes its own. Without one, the build-time Vite
 * variables VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY are used.
 */
export interface DashboardConfig {
  /** The project URL, e.g. https://xyz.supabase.co (or http://127.0.0.1:54321 locally). */
  supabaseUrl: string;
  /** The publishable key (sb_publishable_…) or the legacy anon key. */
  supabaseAnonKey: string;
}

function valid(value: unknown): value is DashboardConfig {
  const v = value as Partial<DashboardConfig> | null;
  return !!v && typeof v.supabaseUrl === "string" && v.supabaseUrl !== "" && typeof v.supabaseAnonKey === "string" && v.supabaseAnonKey !== "";
}

export async function loadConfig(): Promise<DashboardConfig> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
    if (res.ok) {
      const body: unknown = await res.json();
      if (valid(body)) return { supabaseUrl: body.supabaseUrl.replace(/\/+$/, ""), supabaseAnonKey: body.supabaseAnonKey };
    }
  } catch {
    // no runtime config: fall back to the build's variables
  }
  const fromEnv = {
    supabaseUrl: (import.meta.env.VITE_SUPABASE_URL as string | undefined) ?? "",
    supabaseAnonKey: (import.meta.env.VITE_SUPABASE_ANON_KEY as string | undefined) ?? "",
  };
  if (valid(fromEnv)) return { ...fromEnv, supabaseUrl: fromEnv.supabaseUrl.replace(/\/+$/, "") };
  throw new Error(
    "No Supabase project configured: serve a config.json with supabaseUrl and supabaseAnonKey beside index.html, or build with VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY.",
  );
}
