/**
 * ClickSend's history search for the reconciler (findByCustomString) against the fake:
 * it finds a call's messages by custom_string inside a window, says "complete" only when
 * the whole window was read (or every recipient found), and never takes a malformed or
 * failed page for "no such message".
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ClickSendFake, startClickSendFake } from "../../packages/devstack/src/fakes/clicksend.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import { createClickSendClient } from "../../supabase/functions/_shared/providers/clicksend.ts";
import { ProviderError } from "../../supabase/functions/_shared/providers/types.ts";

const DEMO = { username: "demo", api_key: "demo-key" };
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
const mobiles = (n: number, offset: number) => Array.from({ length: n }, (_, i) => `+614${20_000_000 + offset + i}`);

let fake: ClickSendFake;
const client = () => createClickSendClient({ credentials: DEMO, config: { base_url: fake.url }, network: local });
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  fake = await startClickSendFake({ port: 0, receiptDelayMs: 10 });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset({ rules: true }));

/** 230 other messages, then 3 for operation "op-target" (the last page of 100). */
async function busyAccount() {
  await client().sendSms(mobiles(230, 0).map((to) => ({ to, body: "other", custom_string: "op-other" })));
  const sent = await client().sendSms(mobiles(3, 500).map((to) => ({ to, body: "target", custom_string: "op-target" })));
  return sent.providerMessageIds;
}

describe("findByCustomString", () => {
  it("pages through the window and finds every message of the call", async () => {
    const ids = await busyAccount();
    const result = await client().findByCustomString("op-target", { kind: "sms", from: now() - 60, to: now() + 60 });
    expect(result.complete).toBe(true);
    expect(result.pages).toBe(3);
    expect(result.messages.map((m) => m.message_id).sort()).toEqual([...ids].sort());
    expect(result.messages.map((m) => m.to).sort()).toEqual(mobiles(3, 500));
  });

  it("stops as soon as every recipient is found", async () => {
    await client().sendSms([{ to: mobiles(1, 900)[0], body: "first", custom_string: "op-first" }]);
    await client().sendSms(mobiles(150, 0).map((to) => ({ to, body: "later", custom_string: "op-later" })));
    const result = await client().findByCustomString("op-first", { kind: "sms", from: now() - 60, to: now() + 60, expected: 1 });
    expect(result).toMatchObject({ complete: true, pages: 1 });
    expect(result.messages).toHaveLength(1);
  });

  it("is complete and empty for a window that holds nothing of the call (a whole-window search)", async () => {
    await busyAccount();
    const nothing = await client().findByCustomString("op-missing", { kind: "sms", from: now() - 60, to: now() + 60 });
    expect(nothing).toMatchObject({ messages: [], complete: true, pages: 3 });
    const before = await client().findByCustomString("op-target", { kind: "sms", from: now() - 3600, to: now() - 1800 });
    expect(before).toMatchObject({ messages: [], complete: true });
  });

  it("is incomplete when the page bound stops it before the end of the window", async () => {
    await busyAccount();
    const result = await client().findByCustomString("op-target", { kind: "sms", from: now() - 60, to: now() + 60, maxPages: 2 });
    expect(result).toMatchObject({ messages: [], complete: false, pages: 2 });
  });

  it("is incomplete when the time budget runs out between pages", async () => {
    await busyAccount();
    const result = await client().findByCustomString("op-target", { kind: "sms", from: now() - 60, to: now() + 60, deadline: Date.now() });
    expect(result).toMatchObject({ complete: false, pages: 1 });
  });

  it("searches MMS history for MMS", async () => {
    await client().sendSms([{ to: mobiles(1, 700)[0], body: "sms", custom_string: "op-sms" }]);
    const mms = await client().findByCustomString("op-sms", { kind: "mms", from: now() - 60, to: now() + 60 });
    expect(mms).toMatchObject({ messages: [], complete: true });
  });

  it("never takes a failed or malformed page for 'no such message'", async () => {
    const r = await fetch(`${fake.url.replace(/\/v3$/, "")}/__fake/faults`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ mode: "http500", path: "/sms/history" }),
    });
    expect(r.status).toBe(200);
    const failed = await client().findByCustomString("op-x", { kind: "sms", from: now() - 60, to: now() + 60 }).catch((e) => e);
    expect(failed).toBeInstanceOf(ProviderError);
    expect(failed).toMatchObject({ kind: "transient", maybeSent: false }); // HTTP 500 on a read

    // A 200 without a page of records (a proxy's page, a changed API): an error, not "empty".
    for (const data of [{}, { data: [] }, { data: [], last_page: null }, { last_page: 0 }]) {
      const malformed = (async () =>
        new Response(JSON.stringify({ http_code: 200, response_code: "SUCCESS", data }), { status: 200 })) as unknown as typeof fetch;
      const error = await client()
        .findByCustomString("op-x", { kind: "sms", from: now() - 60, to: now() + 60 }, { fetch: malformed })
        .catch((e) => e);
      expect(error, JSON.stringify(data)).toBeInstanceOf(ProviderError);
    }
  });
});
