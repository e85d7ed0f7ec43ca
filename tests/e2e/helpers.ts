/**
 * Helpers for e2e tests against the devstack started by global-setup.ts.
 * Everything goes through the real HTTP surface (supabase-js, fetch); the admin
 * connection is only for arranging data and asserting on it.
 */
import { randomUUID } from "node:crypto";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import postgres, { type Sql } from "postgres";
import { inject } from "vitest";
import WebSocket from "ws";
import { configureJwt, createLocalUser, type LocalUser } from "../../packages/devstack/src/jwt.ts";
import type { StackStatus } from "../../packages/devstack/src/stack.ts";

/** The running stack's flat status (API_URL, ANON_KEY, …). */
export function status(): StackStatus {
  return inject("devstack");
}

let admin: Sql | undefined;

/** Superuser connection to the e2e database, shared by the tests of a file. */
export function adminSql(): Sql {
  admin ??= postgres(status().DB_URL, { max: 4, idle_timeout: 5, onnotice: () => {} });
  return admin;
}

/** Closes the shared admin connection (call from afterAll). */
export async function closeAdminSql(): Promise<void> {
  await admin?.end({ timeout: 2 });
  admin = undefined;
}

function client(key: string, token?: string): SupabaseClient {
  return createClient(status().API_URL, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    // supabase-js on Node 20 needs a WebSocket implementation for realtime.
    realtime: { transport: WebSocket as never },
  });
}

/** A client that only has the anon key. */
export function anonClient(): SupabaseClient {
  return client(status().ANON_KEY);
}

/** A client that uses the service-role key. */
export function serviceClient(): SupabaseClient {
  return client(status().SERVICE_ROLE_KEY);
}

export interface TestUser extends LocalUser {
  client: SupabaseClient;
}

/** Signs up a fresh user (auth.users row + access token) and returns a client acting as them. */
export async function newUser(email = `user-${randomUUID()}@example.test`): Promise<TestUser> {
  configureJwt({ stateDir: inject("devstackStateDir"), apiUrl: status().API_URL });
  const user = await createLocalUser(adminSql(), email);
  return { ...user, client: client(status().ANON_KEY, user.token) };
}
