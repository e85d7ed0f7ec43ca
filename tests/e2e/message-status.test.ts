/**
 * message_status end to end: an agent sends, the provider's delivery report arrives by
 * webhook, and the agent reads its send's outcome and report through the tool (agent-tools
 * and MCP alike) — never another agent's, even by operation id.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, callFunction, connectedUser, type Connected, eventually, routeClickSendWebhooks } from "./fixtures.ts";
import { closeAdminSql } from "./helpers.ts";

let mine: Connected;
let myKey: string;
let theirKey: string;

const call = (key: string, name: string, args: Record<string, unknown>) =>
  callFunction("agent-tools", key, { body: { name, arguments: args } });

beforeAll(async () => {
  mine = await connectedUser();
  await routeClickSendWebhooks(mine.clicksend.webhook_token, "json");
  myKey = (await agentWithKey(mine.user, [{ connectionId: mine.clicksend.id, scopes: ["sms"] }], "status reader")).key;
  const theirs = await connectedUser();
  theirKey = (await agentWithKey(theirs.user, [{ connectionId: theirs.clicksend.id, scopes: ["sms"] }], "someone else")).key;
});

afterAll(async () => {
  await closeAdminSql();
});

describe("message_status", () => {
  it("is listed for every agent with a live grant, read-only, without an account argument", async () => {
    const res = await callFunction("agent-tools?format=raw", myKey);
    const tool = (res.body.tools as any[]).find((t) => t.name === "message_status");
    expect(tool).toMatchObject({ read_only: true, provider: null, connection_id: null });
    expect(Object.keys(tool.input_schema.properties).sort()).toEqual(["limit", "operation_ids"]);
  });

  it("shows the agent its send, its outcome and the provider's delivery report", async () => {
    const sent = await call(myKey, "sms_send", { to: ["+61411110001"], body: "Where is it?" });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    const status = await eventually(async () => {
      const res = await call(myKey, "message_status", { operation_ids: [sent.body.operation_id] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const [op] = res.body.operations;
      return op?.events?.some((e: any) => e.delivery_status === "delivered") && op;
    });
    expect(status).toMatchObject({ operation_id: sent.body.operation_id, tool: "sms_send", status: "succeeded", recipient_count: 1 });
    expect(status.events).toContainEqual(expect.objectContaining({ type: "delivery", delivery_status: "delivered" }));
  });

  it("never shows another agent's sends, even named by id", async () => {
    const sent = await call(myKey, "sms_send", { to: ["+61411110002"], body: "Mine" });
    const res = await call(theirKey, "message_status", { operation_ids: [sent.body.operation_id] });
    expect(res.status).toBe(200);
    expect(res.body.operations).toEqual([]);
    const latest = await call(theirKey, "message_status", {});
    expect(latest.body.operations.map((o: any) => o.operation_id)).not.toContain(sent.body.operation_id);
  });

  it("takes no account: an account argument is a 400 like any unknown argument", async () => {
    const res = await call(myKey, "message_status", { account: "00000000-0000-4000-8000-000000000000" });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
  });

  it("over MCP too", async () => {
    const res = await callFunction("mcp", myKey, {
      body: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "message_status", arguments: { limit: 1 } } },
      headers: { Accept: "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18" },
    });
    expect(res.status).toBe(200);
    const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
    expect(text).toContain("operations");
    expect(text).not.toContain('"isError":true');
  });
});
