/**
 * The dashboard tests' helpers: Debian's Chromium through playwright-core, users, and
 * signing a browser in.
 *
 * Signing in: when the devstack's Auth stand-in answers (POST /auth/v1/signup), users
 * sign up through it and the browser signs in through the dashboard's own form. Where
 * it answers 501 (no Auth server), users are created with createLocalUser and the
 * browser starts with the session supabase-js would have stored after signing in (its
 * localStorage entry, access token minted by the devstack's issuer): supabase-js's
 * setSession() would need GET /auth/v1/user, which a stack without Auth cannot answer.
 */
import { existsSync } from "node:fs";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import postgres from "postgres";
import WebSocket from "ws";
import { createJwtIssuer, createLocalUser } from "../../packages/devstack/src/jwt.ts";
import type { StackStatus } from "../../packages/devstack/src/stack.ts";
import type { Database } from "../../packages/client/src/database.types.ts";

export const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM || "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set SWITCHBOARD_CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
}

export type AuthMode = "auth-standin" | "stored-session";

/** Does the stack answer sign-ups (the Auth stand-in), or 501? */
export async function detectAuthMode(s: StackStatus): Promise<AuthMode> {
  // SWITCHBOARD_DASHBOARD_AUTH=stored-session forces the fallback (to test it where Auth answers).
  const forced = process.env.SWITCHBOARD_DASHBOARD_AUTH;
  if (forced === "stored-session" || forced === "auth-standin") return forced;
  const probe = await fetch(`${s.API_URL}/auth/v1/signup`, {
    method: "POST",
    headers: { apikey: s.PUBLISHABLE_KEY, "content-type": "application/json" },
    body: JSON.stringify({}),
  });
  await probe.body?.cancel();
  return probe.status === 501 || probe.status === 404 ? "stored-session" : "auth-standin";
}

let counter = 0;
export async function createUser(s: StackStatus, mode: AuthMode, label: string): Promise<TestUser> {
  const email = `${label}-${Date.now().toString(36)}-${++counter}@example.com`;
  const password = `pw-${Math.random().toString(36).slice(2)}-X9`;
  if (mode === "auth-standin") {
    const client = createClient(s.API_URL, s.PUBLISHABLE_KEY, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: WebSocket as never },
    });
    const { data, error } = await client.auth.signUp({ email, password });
    if (error || !data.session || !data.user) throw new Error(`sign-up failed: ${error?.message ?? "no session"}`);
    return { id: data.user.id, email, password, token: data.session.access_token };
  }
  const sql = postgres(s.DB_URL, { max: 1, onnotice: () => {} });
  try {
    const issuer = await createJwtIssuer({ stateDir: s.DEVSTACK_STATE_DIR!, apiUrl: s.API_URL });
    const user = await createLocalUser(sql, email, { issuer, expiresInSeconds: 3600 });
    return { ...user, password };
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** supabase-js in Node as a user (to set up what a test needs). */
export function userClient(s: StackStatus, user: TestUser): SupabaseClient<Database> {
  return createClient<Database>(s.API_URL, s.PUBLISHABLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${user.token}` } },
    // Node 20 has no global WebSocket.
    realtime: { transport: WebSocket as never },
  });
}

export async function rpc<T = Record<string, unknown>>(client: SupabaseClient<Database>, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await client.rpc(fn as never, args as never);
  if (error) throw new Error(`${fn}: ${error.message}`);
  return data as T;
}

/** A browser context signed in as `user`, at the dashboard's home. */
export async function signedIn(browser: Browser, s: StackStatus, mode: AuthMode, user: TestUser, viewport = { width: 1280, height: 860 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, baseURL: s.DASHBOARD_URL });
  const page = await context.newPage();
  if (process.env.SWITCHBOARD_DASHBOARD_DEBUG) {
    page.on("console", (m) => console.error(`[browser ${m.type()}] ${m.text()}`));
    page.on("requestfailed", (r) => console.error(`[browser] ${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`));
    page.on("response", (r) => r.request().method() !== "GET" && console.error(`[browser] ${r.request().method()} ${r.url()} → ${r.status()}`));
  }
  if (mode === "auth-standin") {
    await page.goto("/sign-in");
    await page.getByRole("textbox", { name: "E-mail", exact: true }).fill(user.email);
    await page.getByRole("textbox", { name: "Password", exact: true }).fill(user.password);
    await page.getByRole("textbox", { name: "Password", exact: true }).press("Enter");
  } else {
    const now = Math.floor(Date.now() / 1000);
    const session = {
      access_token: user.token,
      refresh_token: `local-${user.id}`,
      token_type: "bearer",
      expires_in: 3600,
      expires_at: now + 3600,
      user: {
        id: user.id,
        aud: "authenticated",
        role: "authenticated",
        email: user.email,
        app_metadata: { provider: "email", providers: ["email"] },
        user_metadata: {},
        created_at: new Date().toISOString(),
      },
    };
    await context.addInitScript(
      ([key, value]) => {
        if (!window.localStorage.getItem(key!)) window.localStorage.setItem(key!, value!);
      },
      [`switchboard-dashboard:${s.API_URL}`, JSON.stringify(session)],
    );
    await page.goto("/");
  }
  await page.waitForURL(/\/w\/[0-9a-f-]+\/overview$/, { timeout: 20_000 });
  return { context, page };
}

/** Picks an option of a Mantine Select / MultiSelect by its label. */
export async function choose(page: Page, label: string | RegExp, option: string | RegExp): Promise<void> {
  const exact = typeof label === "string";
  await page
    .getByRole("textbox", { name: label, exact })
    .or(page.getByRole("combobox", { name: label, exact }))
    .first()
    .click();
  await page.getByRole("option", { name: option }).first().click();
}
