/**
 * The devstack's gateway rewrites `Authorization` exactly as the Supabase CLI's API
 * gateway does, so a token the real gateway would replace is replaced here too:
 *   1. present and not `Bearer sb_…` → passed through;
 *   2. else `apikey` is a secret key → `Bearer <service_role JWT>`;
 *   3. else `apikey` is a publishable key → `Bearer <anon JWT>`;
 *   4. else the raw `apikey` value, and nothing without one.
 * The echo fixture function shows what arrived. Agent keys (`swb_agent_…`) pass
 * untouched and work end to end; an `sb_agent_…`-style token never arrives as sent.
 */
import { createClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SwitchboardAgent, type AgentOptions } from "../../packages/client/src/index.ts";
import { createApiKey } from "../../packages/devstack/src/jwt.ts";
import { agentWithKey, clicksendFake, connectedUser, type Connected } from "./fixtures.ts";
import { closeAdminSql, status } from "./helpers.ts";

afterAll(closeAdminSql);

/** What the echo function received for these request headers. */
async function forwarded(headers: Record<string, string>): Promise<{ authorization: string | null; apikey: string | null }> {
  const res = await fetch(`${status().FUNCTIONS_URL}/echo/headers`, { headers });
  expect(res.status).toBe(200);
  const { authorization, apikey } = (await res.json()) as { authorization: string | null; apikey: string | null };
  return { authorization, apikey };
}

describe("API keys of the local stack", () => {
  it("has new-format publishable and secret keys besides the legacy JWT keys", () => {
    expect(status().PUBLISHABLE_KEY).toMatch(/^sb_publishable_[A-Za-z0-9_-]+$/);
    expect(status().SECRET_KEY).toMatch(/^sb_secret_[A-Za-z0-9_-]+$/);
    expect(status().ANON_KEY.split(".")).toHaveLength(3);
  });
});

describe("Authorization as the gateway forwards it", () => {
  let c: Connected;
  let agentKey: string;

  beforeAll(async () => {
    c = await connectedUser();
    ({ key: agentKey } = await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms", "balance"] }], "gateway agent"));
  });

  it("rewrites a bearer sb_… token exactly per the rule, and leaves everything else alone", async () => {
    const s = status();
    const cases: [string, Record<string, string>, string | null][] = [
      ["1: a user JWT with the publishable key", { authorization: `Bearer ${c.user.token}`, apikey: s.PUBLISHABLE_KEY }, `Bearer ${c.user.token}`],
      ["1: the legacy service_role JWT", { authorization: `Bearer ${s.SERVICE_ROLE_KEY}` }, `Bearer ${s.SERVICE_ROLE_KEY}`],
      ["1: an agent key", { authorization: `Bearer ${agentKey}`, apikey: s.PUBLISHABLE_KEY }, `Bearer ${agentKey}`],
      ["1: not a bearer sb_ (Kong compares case-sensitively)", { authorization: "bearer sb_agent_x" }, "bearer sb_agent_x"],
      ["2: the secret key as bearer and apikey", { authorization: `Bearer ${s.SECRET_KEY}`, apikey: s.SECRET_KEY }, `Bearer ${s.SERVICE_ROLE_KEY}`],
      ["2: the secret key as apikey only", { apikey: s.SECRET_KEY }, `Bearer ${s.SERVICE_ROLE_KEY}`],
      ["2: any bearer sb_ with the secret apikey", { authorization: "Bearer sb_agent_x", apikey: s.SECRET_KEY }, `Bearer ${s.SERVICE_ROLE_KEY}`],
      ["3: the publishable key as bearer and apikey", { authorization: `Bearer ${s.PUBLISHABLE_KEY}`, apikey: s.PUBLISHABLE_KEY }, `Bearer ${s.ANON_KEY}`],
      ["3: an sb_agent_ key with the publishable apikey", { authorization: "Bearer sb_agent_x", apikey: s.PUBLISHABLE_KEY }, `Bearer ${s.ANON_KEY}`],
      ["4: an sb_agent_ key with a legacy JWT apikey", { authorization: "Bearer sb_agent_x", apikey: s.ANON_KEY }, s.ANON_KEY],
      ["4: an unknown sb_secret_ key", { authorization: "Bearer sb_secret_nope", apikey: "sb_secret_nope" }, "sb_secret_nope"],
      ["4: an sb_agent_ key alone", { authorization: "Bearer sb_agent_x" }, null],
      ["4: nothing", {}, null],
    ];
    const got: Record<string, unknown> = {};
    for (const [name, headers] of cases) {
      const arrived = await forwarded(headers);
      got[name] = arrived.authorization;
      expect(arrived.apikey, `${name}: apikey passes unchanged`).toBe(headers.apikey ?? null);
    }
    expect(got).toEqual(Object.fromEntries(cases.map(([name, , expected]) => [name, expected])));
  });

  it("applies the same rule on /rest/v1: the publishable key acts as anon, the secret key as service_role", async () => {
    const client = (key: string) => createClient(status().API_URL, key, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      realtime: { transport: WebSocket as never },
    });
    const asService = await client(status().SECRET_KEY).from("connections").select("id").eq("id", c.clicksend.id);
    expect(asService.error).toBeNull();
    expect(asService.data).toEqual([{ id: c.clicksend.id }]);
    const asAnon = await client(status().PUBLISHABLE_KEY).from("connections").select("id").eq("id", c.clicksend.id);
    expect(asAnon.status).toBe(401);
    expect(asAnon.error?.code).toBe("42501");
  });

  it("a swb_agent_ key arrives untouched and works end to end (fetch and the SDK with the publishable key)", async () => {
    // New keys stay out of the gateway's sb_ namespace.
    expect(agentKey).toMatch(/^swb_agent_/);
    expect(agentKey.startsWith("sb_")).toBe(false);
    const sendsBefore = (await clicksendFake.messages()).length;
    const res = await fetch(`${status().FUNCTIONS_URL}/clicksend/sms/send`, {
      method: "POST",
      headers: { Authorization: `Bearer ${agentKey}`, apikey: status().PUBLISHABLE_KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ to: ["+61412777001"], body: "through the gateway" }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ status: "succeeded", sent: 1 });
    expect((await clicksendFake.messages()).length).toBe(sendsBefore + 1);

    const agent = new SwitchboardAgent({
      supabaseUrl: status().API_URL, anonKey: status().PUBLISHABLE_KEY, agentKey, realtime: { transport: WebSocket },
    } as AgentOptions);
    expect((await agent.listTools<{ function: { name: string } }>("openai")).map((t) => t.function.name).sort())
      .toEqual(["clicksend_get_balance", "message_status", "sms_send"]);
  });

  it("an sb_agent_-style key does not reach the function as sent: refused, nothing sent", async () => {
    // The same key material under the old prefix, as today's keys looked.
    const oldStyle = `sb_agent_${agentKey.slice("swb_agent_".length)}`;
    expect((await forwarded({ authorization: `Bearer ${oldStyle}` })).authorization).toBeNull();
    expect((await forwarded({ authorization: `Bearer ${oldStyle}`, apikey: status().PUBLISHABLE_KEY })).authorization).toBe(`Bearer ${status().ANON_KEY}`);

    const sendsBefore = await clicksendFake.requestTotal();
    for (const apikey of [undefined, status().PUBLISHABLE_KEY, status().ANON_KEY]) {
      const res = await fetch(`${status().FUNCTIONS_URL}/clicksend/sms/send`, {
        method: "POST",
        headers: { Authorization: `Bearer ${oldStyle}`, "Content-Type": "application/json", ...(apikey ? { apikey } : {}) },
        body: JSON.stringify({ to: ["+61412777002"], body: "old prefix" }),
      });
      expect(res.status, `apikey ${apikey?.slice(0, 16)}`).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("unauthorized");
    }
    expect(await clicksendFake.requestTotal()).toBe(sendsBefore);
  });

  it("the secret key works as a trusted backend sends it: as apikey, as bearer with apikey, and the legacy JWT", async () => {
    const balance = (headers: Record<string, string>) =>
      fetch(`${status().FUNCTIONS_URL}/clicksend/balance?user_id=${c.user.id}`, { headers });
    const s = status();
    const ways: Record<string, string>[] = [
      { apikey: s.SECRET_KEY },
      { Authorization: `Bearer ${s.SECRET_KEY}`, apikey: s.SECRET_KEY },
      { Authorization: `Bearer ${s.SERVICE_ROLE_KEY}` },
      // The hosted gateway puts a short-lived service_role JWT of its own in Authorization
      // and passes apikey on: the secret apikey is what identifies the caller.
      { Authorization: `Bearer ${await createApiKey("service_role")}`, apikey: s.SECRET_KEY },
    ];
    for (const headers of ways) {
      const res = await balance(headers);
      expect(res.status, `${Object.keys(headers).join("+")}: ${await res.clone().text()}`).toBe(200);
    }
  });
});
