/** Environment access that works in Deno (edge functions) and Node (tests). */
type DenoLike = { env: { get(key: string): string | undefined } };

export function env(key: string): string | undefined {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno) return deno.env.get(key);
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[key];
}

export function requireEnv(key: string): string {
  const value = env(key);
  if (!value) throw new Error(`${key} is not set`);
  return value;
}

/** True on hosted Supabase (the platform sets SB_REGION), where ports 25 and 587 are blocked. */
export function isHostedSupabase(): boolean {
  return Boolean(env("SB_REGION"));
}

/**
 * The functions' public base URL (what providers post webhooks to):
 * SWITCHBOARD_FUNCTIONS_URL, else the project's SUPABASE_URL + /functions/v1.
 */
export function functionsBaseUrl(): string | undefined {
  const configured = env("SWITCHBOARD_FUNCTIONS_URL");
  if (configured) return configured.replace(/\/+$/, "");
  const project = env("SUPABASE_URL");
  return project ? `${project.replace(/\/+$/, "")}/functions/v1` : undefined;
}
