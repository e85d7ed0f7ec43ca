/**
 * The provider reconciler end to end: POST /clicksend/reconcile (service key only) asks
 * the ClickSend fake's message history about send calls that are `unknown` (no outcome
 * recorded before the deadline, or a connection lost after the request went out), and
 * settles them: found → succeeded with the
 * provider's message id and the quota kept; nothing in a window that closed longer than
 * the grace period ago → failed with the quota given back; ClickSend unavailable → still
 * unknown, asked again next run.
 *
 * How a lost call is made here: a call is sent normally (the fake accepts the message),
 * then its row is put back to `pending` and closed by private.mark_operation_unknown,
 * exactly what the database holds after the functions host died between the provider
 * call and finish (the reservation still held, no outcome, then the reconciler's unknown).
 * Nothing the reconciler reads differs from that case, which tests/faults produces for
 * real with a SIGKILLed host. A call that never reached ClickSend is a begun call (quota
 * reserved) that never sent anything, aged past deadline + grace.
 *
 * The e2e database is shared with the other suites, whose unknown ClickSend calls are
 * listed too: counts are asserted as lower bounds, this suite's own rows exactly.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentWithKey, callFunction, clicksendFake, connectedUser, type Connected, loseOutcome, operationRow, usedToday,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

let owner: Connected;
let agent: Awaited<ReturnType<typeof agentWithKey>>;
let permissionId: string;

const reconcile = (token: string, init: { method?: string; headers?: Record<string, string> } = {}) =>
  callFunction("clicksend/reconcile", token, { method: init.method ?? "POST", body: init.method === "GET" ? undefined : {}, headers: init.headers });
const asService = () => reconcile(status().SECRET_KEY, { headers: { apikey: status().SECRET_KEY } });

/** A call of the agent that reserved quota and never reached ClickSend, begun `age` ago, closed as unknown. */
async function neverSent(age: string): Promise<string> {
  const [{ result }] = await adminSql()`
    select private.begin_tool_call('clicksend_send_sms', p_user_id => ${owner.user.id}::uuid, p_agent_id => ${agent.agent.id}::uuid,
                                   p_recipients => array['+61412555999'], p_auth_mode => 'agent_key') as result`;
  expect(result.ok).toBe(true);
  await adminSql()`update public.operations set created_at = now() - ${age}::interval where id = ${result.operation_id}`;
  await adminSql()`select private.mark_operation_unknown(${result.operation_id}::uuid, 'no_outcome_recorded_before_deadline')`;
  return result.operation_id;
}

let sentKey: string;
let sentBody: string;
let sent: { operation_id: string; provider_message_ids: string[] };
let gone: string;

beforeAll(async () => {
  await clicksendFake.reset(true);
  owner = await connectedUser();
  agent = await agentWithKey(owner.user, [{ connectionId: owner.clicksend.id, scopes: ["sms"], dailySendLimit: 100 }]);
  permissionId = agent.permissions[0].id;

  sentKey = randomUUID();
  sentBody = `reconcile me ${randomUUID().slice(0, 8)}`;
  const res = await callFunction("clicksend/sms/send", agent.key, {
    body: { to: ["+61412555001"], body: sentBody }, headers: { "Idempotency-Key": sentKey },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  sent = res.body;
  await loseOutcome(sent.operation_id);
  gone = await neverSent("30 minutes");
});

afterAll(async () => {
  await clicksendFake.clearFaults();
  await closeAdminSql();
});

describe("POST /clicksend/reconcile", () => {
  it("is for the service key only", async () => {
    const agentCall = await reconcile(agent.key);
    expect(agentCall.status, JSON.stringify(agentCall.body)).toBe(403);
    expect(agentCall.body.error.code).toBe("permission_denied");
    const userCall = await reconcile(owner.user.token);
    expect(userCall.status, JSON.stringify(userCall.body)).toBe(403);
    const anonCall = await reconcile(status().ANON_KEY, { headers: { apikey: status().ANON_KEY } });
    expect(anonCall.status, JSON.stringify(anonCall.body)).toBe(403);
    const get = await reconcile(status().SECRET_KEY, { method: "GET", headers: { apikey: status().SECRET_KEY } });
    expect(get.status).toBe(405);
    // None of that asked anything or settled anything.
    expect((await operationRow(sent.operation_id)).status).toBe("unknown");
    expect((await operationRow(gone)).status).toBe("unknown");
  });

  it("leaves both unknown while ClickSend's history is unavailable", async () => {
    const used = await usedToday(permissionId);
    await clicksendFake.fault({ mode: "http500", path: "/v3/sms/history", count: 100 });
    const res = await asService();
    await clicksendFake.clearFaults();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ found: 0, not_found: 0 });
    expect(res.body.still_unknown).toBeGreaterThanOrEqual(2);
    for (const id of [sent.operation_id, gone]) {
      const row = await operationRow(id);
      expect(row.status).toBe("unknown");
      expect(row.error_details).toMatchObject({
        reason: "no_outcome_recorded_before_deadline",
        reconciliation: { attempts: 1, last_answer: "unavailable" },
      });
      expect(row.error_details.reconciliation.note).toMatch(/ClickSend/);
    }
    expect(await usedToday(permissionId)).toBe(used);
  });

  it("settles the call ClickSend has as succeeded (quota kept) and the one it has not as failed (quota back)", async () => {
    const used = await usedToday(permissionId);
    expect(used).toBe(2); // one kept by the lost send, one held by the call that never went out
    const [message] = (await clicksendFake.messages()).filter((m) => m.custom_string === sent.operation_id);
    expect(message).toBeDefined();

    const res = await asService();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.found).toBeGreaterThanOrEqual(1);
    expect(res.body.not_found).toBeGreaterThanOrEqual(1);
    expect(res.body.checked).toBeGreaterThanOrEqual(2);

    const found = await operationRow(sent.operation_id);
    expect(found).toMatchObject({ status: "succeeded", quota_used: 1, error_code: null, error_details: null });
    expect(found.provider_message_ids).toEqual([message.message_id]);
    expect(found.response).toMatchObject({
      operation_id: sent.operation_id, status: "succeeded", sent: 1, provider_message_ids: [message.message_id],
      reconciled: { by: "provider_history", provider: "clicksend_sms" },
    });

    const missing = await operationRow(gone);
    expect(missing).toMatchObject({ status: "failed", quota_used: 0, error_code: "provider_error" });
    expect(missing.error_details).toMatchObject({ reason: "provider_has_no_record", may_have_been_sent: false });
    expect(await usedToday(permissionId)).toBe(1);

    // A second run leaves settled calls alone and gives nothing back twice.
    const again = await asService();
    expect(again.status).toBe(200);
    expect((await operationRow(sent.operation_id)).status).toBe("succeeded");
    expect((await operationRow(gone)).status).toBe("failed");
    expect(await usedToday(permissionId)).toBe(1);
  });

  it("settles a send whose connection dropped after the request went out: ClickSend never accepted it, so failed, quota back", async () => {
    const before = await usedToday(permissionId);
    await clicksendFake.fault({ mode: "drop", path: "/v3/sms/send", count: 1 });
    const res = await callFunction("clicksend/sms/send", agent.key, { body: { to: ["+61412555002"], body: `dropped ${randomUUID()}` } });
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    const operationId = res.body.error.details.operation_id as string;
    expect(await operationRow(operationId)).toMatchObject({ status: "unknown", quota_used: 1 }); // may have been sent: kept
    expect(await usedToday(permissionId)).toBe(before + 1);

    // Still inside the grace period: nothing found yet is no proof.
    await asService();
    expect((await operationRow(operationId)).status).toBe("unknown");
    // Past deadline + grace, with the whole window read and nothing found: it was not sent.
    await adminSql()`update public.operations set created_at = now() - interval '30 minutes' where id = ${operationId}`;
    await asService();
    const row = await operationRow(operationId);
    expect(row).toMatchObject({ status: "failed", quota_used: 0, error_code: "provider_error" });
    expect(row.error_details).toMatchObject({ reason: "provider_has_no_record", may_have_been_sent: false });
    expect(await usedToday(permissionId)).toBe(before);
  });

  it("replays succeeded to a keyed retry of the settled call, sending nothing", async () => {
    const before = (await clicksendFake.messages()).length;
    const retry = await callFunction("clicksend/sms/send", agent.key, {
      body: { to: ["+61412555001"], body: sentBody }, headers: { "Idempotency-Key": sentKey },
    });
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body).toMatchObject({ replayed: true, status: "succeeded", operation_id: sent.operation_id, provider_message_ids: sent.provider_message_ids });
    expect((await clicksendFake.messages()).length).toBe(before);
  });
});
