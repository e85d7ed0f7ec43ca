/**
 * A real agent framework's MCP client against the mcp function: the Vercel AI SDK's
 * `createMCPClient` (Streamable HTTP, the agent key as a header) loads the agent's tools as
 * AI SDK tools and runs one — what an app built on the AI SDK does with Switchboard.
 */
import { createMCPClient } from "@ai-sdk/mcp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, clicksendFake, connectedUser, type Connected } from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

let c: Connected;
let key: string;

beforeAll(async () => {
  c = await connectedUser();
  key = (await agentWithKey(c.user, [{ connectionId: c.clicksend.id, scopes: ["sms", "balance"], dailySendLimit: 10 }], "ai sdk agent")).key;
});

afterAll(async () => {
  await closeAdminSql();
});

describe("the Vercel AI SDK's MCP client", () => {
  it("loads the agent's tools as AI SDK tools and sends an SMS with one", async () => {
    const client = await createMCPClient({
      transport: { type: "http", url: `${status().FUNCTIONS_URL}/mcp`, headers: { Authorization: `Bearer ${key}` } },
    });
    try {
      const tools = await client.tools();
      expect(Object.keys(tools).sort()).toEqual(["clicksend_get_balance", "message_status", "sms_send"]);
      expect(tools.sms_send.description).toContain("10 of 10 messages left today");

      const before = (await clicksendFake.messages()).length;
      const result = await tools.sms_send.execute!({ to: ["+61411119999"], body: "Sent by an AI SDK agent" },
        { toolCallId: "call-1", messages: [], context: {} } as never) as { content: Array<{ type: string; text: string }>; isError?: boolean };
      expect(result.isError ?? false).toBe(false);
      const answer = JSON.parse(result.content[0].text);
      expect(answer).toMatchObject({ status: "succeeded", sent: 1, provider: "clicksend_sms" });
      expect((await clicksendFake.messages()).length).toBe(before + 1);
      const [operation] = await adminSql()`select capability_key, auth_mode, status from public.operations where id = ${answer.operation_id}`;
      expect(operation).toEqual({ capability_key: "sms_send", auth_mode: "agent_key", status: "succeeded" });

      // A refusal comes back to the model as a tool error it can read, not an exception.
      const refused = await client.callTool({ name: "sms_send", arguments: { to: ["+61411119999"], body: "x", account: "00000000-0000-4000-8000-000000000000" } });
      expect(refused.isError).toBe(true);
      expect(JSON.stringify(refused.content)).toContain("no_usable_account");
    } finally {
      await client.close();
    }
  });
});
