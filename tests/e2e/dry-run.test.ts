/**
 * Dry runs, end to end: every send tool takes `dry_run`; with it the call runs every
 * check and answers allowed or refused (the real refusal's code and reason, a hint, the
 * quota that would be left) while nothing reaches the provider, no operation is recorded
 * and no counter moves.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, callFunction, clicksendFake, connectedUser, type Connected } from "./fixtures.ts";
import { adminSql, closeAdminSql } from "./helpers.ts";

let c: Connected;
let key: string;
let grantId: string;

/** What a dry run must leave alone: the fake's inbox, the ledger, the counters. */
async function effects() {
  const [{ operations, used }] = await adminSql()`
    select (select count(*)::int from public.operations where user_id = ${c.user.id}) as operations,
           (select coalesce(sum(used), 0)::int from public.usage_counters where user_id = ${c.user.id}) as used`;
  return { operations, used, fake: (await clicksendFake.messages()).length };
}

const call = (name: string, args: Record<string, unknown>) => callFunction("agent-tools", key, { body: { name, arguments: args } });

beforeAll(async () => {
  c = await connectedUser();
  const agent = await agentWithKey(c.user, [
    { connectionId: c.clicksend.id, scopes: ["sms"], dailySendLimit: 5, blockedRecipients: ["+61499"] },
  ], "dry runner");
  key = agent.key;
  grantId = agent.permissions[0].id;
});

afterAll(async () => {
  await closeAdminSql();
});

describe("dry_run", () => {
  it("is an optional boolean of every send tool, and of no read-only tool", async () => {
    const res = await callFunction("agent-tools?format=raw", key);
    for (const tool of res.body.tools as Array<{ name: string; read_only: boolean; input_schema: any }>) {
      if (tool.read_only) expect(tool.input_schema.properties.dry_run, tool.name).toBeUndefined();
      else expect(tool.input_schema.properties.dry_run, tool.name).toMatchObject({ type: "boolean" });
      expect(tool.input_schema.required ?? [], tool.name).not.toContain("dry_run");
    }
  });

  it("an allowed send: allowed, the account, what would be left — and nothing happens", async () => {
    const before = await effects();
    for (const name of ["sms_send", "clicksend_send_sms"]) {
      const res = await call(name, { to: ["+61411111111"], body: "not really", dry_run: true });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toEqual({
        dry_run: true, allowed: true, provider: "clicksend_sms", connection_id: c.clicksend.id, sender: null,
        remaining_today: 4, remaining_this_month: null,
      });
    }
    expect(await effects()).toEqual(before);
  });

  it("a refused send: allowed false, the real refusal, a stable reason and a hint — and no denied row", async () => {
    const before = await effects();
    const res = await call("sms_send", { to: ["+61499000000"], body: "blocked", dry_run: true });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      dry_run: true, allowed: false, reason: "recipient_not_allowed",
      error: { code: "permission_denied", details: { reason: "recipient_not_allowed", recipient: "+61499000000" } },
      hint: expect.stringContaining("recipients this agent may reach"),
    });
    expect(res.body.error.details.operation_id).toBeUndefined();
    expect(await effects()).toEqual(before);
  });

  it("tells when the quota would not allow it", async () => {
    const fill = await call("sms_send", { to: ["+61411111112", "+61411111113", "+61411111114", "+61411111115", "+61411111116"], body: "fill" });
    expect(fill.status, JSON.stringify(fill.body)).toBe(200);
    const before = await effects();
    const res = await call("sms_send", { to: ["+61411111117"], body: "one more?", dry_run: true });
    expect(res.body).toMatchObject({ allowed: false, reason: "quota_exceeded", error: { code: "quota_exceeded", details: { limit: "agent_daily" } } });
    expect(res.body.hint).toContain("resets");
    expect(await effects()).toEqual(before);
    const [{ used }] = await adminSql()`select used from public.usage_counters where subject_id = ${grantId} and period = 'day'`;
    expect(used).toBe(5);
  });

  it("false (or null) sends for real; anything else is a 400", async () => {
    const bad = await call("sms_send", { to: ["+61411111118"], body: "x", dry_run: "yes" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_request", details: { field: "dry_run" } });
  });
});
