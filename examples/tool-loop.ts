/**
 * A complete agent tool loop against Switchboard, in the two shapes model APIs use:
 *
 *   - OpenAI Chat Completions: tools [{type:"function", function:{name, description,
 *     parameters, strict:true}}] → assistant message with tool_calls → {role:"tool"} results;
 *   - Anthropic Messages: tools [{name, description, input_schema}] → content blocks
 *     {type:"tool_use"} → user message with {type:"tool_result"} blocks.
 *
 * No model API is reachable from the local stack, so a scripted "model" stands in for
 * the real one: it first asks for sms_send, reads the result, then answers.
 * Everything else is the real thing: the tools come from Switchboard's live grants, the
 * calls go through the agent-tools function, the SMS reaches the provider fake the
 * agent's route picks.
 *
 *   npm start                      # in another terminal: stack + demo agent
 *   npx tsx examples/tool-loop.ts  # uses DEMO_AGENT_KEY from .devstack/state.json
 *
 * With a real model, replace `scriptedOpenAI.create(...)` by
 * `openai.chat.completions.create({model, messages, tools})` and
 * `scriptedAnthropic.create(...)` by `anthropic.messages.create({model, max_tokens, messages, tools})`:
 * the loop around them stays exactly as it is.
 */
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { SwitchboardAgent, SwitchboardError } from "../packages/client/src/index.ts";

// supabase-js (under the SDK) needs a WebSocket implementation on Node 20; Node 22+ has one.
if (!("WebSocket" in globalThis)) Object.assign(globalThis, { WebSocket });

const state = JSON.parse(readFileSync(new URL("../.devstack/state.json", import.meta.url), "utf8")) as Record<string, string>;
const agent = new SwitchboardAgent({
  supabaseUrl: state.API_URL,
  anonKey: state.ANON_KEY,
  agentKey: process.env.SWITCHBOARD_AGENT_KEY ?? state.DEMO_AGENT_KEY,
});
const RECIPIENT = process.env.DEMO_SMS_TO ?? "+61412345678";
const log = (line = "") => console.log(line);

/** Runs one tool call for the model; failures go back to the model as data, not exceptions. */
async function runTool(name: string, args: unknown): Promise<{ ok: boolean; content: string }> {
  try {
    return { ok: true, content: JSON.stringify(await agent.callTool(name, args)) };
  } catch (error) {
    if (!(error instanceof SwitchboardError)) throw error;
    // permission_denied, quota_exceeded, invalid_request …: the model can read and adapt.
    return { ok: false, content: JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } }) };
  }
}

/** The SMS channel tool's name, as listed (one tool, whichever SMS accounts the agent holds). */
const smsToolName = (names: string[]) => {
  const name = names.find((n) => n === "sms_send");
  if (!name) throw new Error(`the agent has no SMS tool (tools: ${names.join(", ") || "none"}); grant it "sms" on an SMS account`);
  return name;
};

// (Providers drop an identical text to the same number sent twice within a minute, so each differs.)
const orderText = (order: number) => `Your order #${order} is ready for pickup. (sent ${new Date().toISOString().slice(11, 23)} UTC)`;

// =============================================================================
// OpenAI Chat Completions shape
// =============================================================================

type OpenAITool = { type: "function"; function: { name: string; description: string; parameters: Record<string, any>; strict: boolean } };
type OpenAIToolCall = { id: string; type: "function"; function: { name: string; arguments: string } };
type OpenAIMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: OpenAIToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** Stands in for openai.chat.completions.create({model, messages, tools}).choices[0].message. */
const scriptedOpenAI = {
  async create({ messages, tools }: { messages: OpenAIMessage[]; tools: OpenAITool[] }): Promise<OpenAIMessage> {
    const last = messages.at(-1)!;
    if (last.role === "user") {
      const tool = tools.find((t) => t.function.name === smsToolName(tools.map((t) => t.function.name)))!;
      // Strict mode: every parameter present, null for the optional ones left out.
      const given: Record<string, unknown> = { to: [RECIPIENT], body: orderText(1042) };
      const args = Object.fromEntries(Object.keys(tool.function.parameters.properties).map((p) => [p, given[p] ?? null]));
      return {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: tool.function.name, arguments: JSON.stringify(args) } }],
      };
    }
    if (last.role === "tool") {
      const result = JSON.parse(last.content);
      return {
        role: "assistant",
        content: result.error
          ? `I could not send the text: ${result.error.message}.`
          : `Done: I texted ${RECIPIENT} that the order is ready (${result.status}, message ${result.provider_message_ids?.[0]}).`,
      };
    }
    throw new Error("unexpected conversation state");
  },
};

async function openaiLoop(): Promise<void> {
  log("── OpenAI Chat Completions shape ──────────────────────────────────────────");
  const tools = await agent.listTools<OpenAITool>("openai");
  log(`tools: ${tools.map((t) => t.function.name).join(", ")}`);
  const messages: OpenAIMessage[] = [
    { role: "system", content: "You are the shop's assistant. Use the tools to reach customers." },
    { role: "user", content: `Text ${RECIPIENT} that order #1042 is ready for pickup.` },
  ];
  log(`user: ${(messages[1] as { content: string }).content}`);
  for (let turn = 0; turn < 5; turn++) {
    const reply = await scriptedOpenAI.create({ messages, tools });
    messages.push(reply);
    if (reply.role !== "assistant" || !reply.tool_calls?.length) {
      log(`assistant: ${(reply as { content: string }).content}`);
      return;
    }
    for (const call of reply.tool_calls) {
      log(`assistant → tool_call ${call.function.name}(${call.function.arguments})`);
      const result = await runTool(call.function.name, JSON.parse(call.function.arguments));
      log(`tool ← ${result.ok ? "" : "(error) "}${result.content.slice(0, 160)}${result.content.length > 160 ? "…" : ""}`);
      messages.push({ role: "tool", tool_call_id: call.id, content: result.content });
    }
  }
  throw new Error("the model did not finish within 5 turns");
}

// =============================================================================
// Anthropic Messages shape
// =============================================================================

type AnthropicTool = { name: string; description: string; input_schema: Record<string, any> };
type AnthropicBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };
type AnthropicMessage = { role: "user" | "assistant"; content: string | AnthropicBlock[] };
type AnthropicResponse = { role: "assistant"; content: AnthropicBlock[]; stop_reason: "tool_use" | "end_turn" };

/** Stands in for anthropic.messages.create({model, max_tokens, system, messages, tools}). */
const scriptedAnthropic = {
  async create({ messages, tools }: { messages: AnthropicMessage[]; tools: AnthropicTool[] }): Promise<AnthropicResponse> {
    const last = messages.at(-1)!;
    const results = Array.isArray(last.content) ? last.content.filter((b) => b.type === "tool_result") : [];
    if (results.length === 0) {
      const name = smsToolName(tools.map((t) => t.name));
      return {
        role: "assistant",
        stop_reason: "tool_use",
        content: [
          { type: "text", text: "I'll text the customer." },
          { type: "tool_use", id: "toolu_01", name, input: { to: [RECIPIENT], body: orderText(1043) } },
        ],
      };
    }
    const result = results[0] as Extract<AnthropicBlock, { type: "tool_result" }>;
    const data = JSON.parse(result.content);
    return {
      role: "assistant",
      stop_reason: "end_turn",
      content: [{
        type: "text",
        text: result.is_error
          ? `I could not send the text: ${data.error.message}.`
          : `Done: ${RECIPIENT} has been told order #1043 is ready (${data.status}, message ${data.provider_message_ids?.[0]}).`,
      }],
    };
  },
};

async function anthropicLoop(): Promise<void> {
  log("── Anthropic Messages shape ───────────────────────────────────────────────");
  const tools = await agent.listTools<AnthropicTool>("anthropic");
  log(`tools: ${tools.map((t) => t.name).join(", ")}`);
  const messages: AnthropicMessage[] = [{ role: "user", content: `Text ${RECIPIENT} that order #1043 is ready for pickup.` }];
  log(`user: ${messages[0]!.content}`);
  for (let turn = 0; turn < 5; turn++) {
    const reply = await scriptedAnthropic.create({ messages, tools });
    messages.push({ role: "assistant", content: reply.content });
    for (const block of reply.content) if (block.type === "text") log(`assistant: ${block.text}`);
    if (reply.stop_reason !== "tool_use") return;
    const results: AnthropicBlock[] = [];
    for (const block of reply.content) {
      if (block.type !== "tool_use") continue;
      log(`assistant → tool_use ${block.name}(${JSON.stringify(block.input)})`);
      const result = await runTool(block.name, block.input);
      log(`tool_result ← ${result.ok ? "" : "(error) "}${result.content.slice(0, 160)}${result.content.length > 160 ? "…" : ""}`);
      results.push({ type: "tool_result", tool_use_id: block.id, content: result.content, ...(result.ok ? {} : { is_error: true }) });
    }
    messages.push({ role: "user", content: results });
  }
  throw new Error("the model did not finish within 5 turns");
}

try {
  await openaiLoop();
  log();
  await anthropicLoop();
} catch (error) {
  const e = error as Error;
  console.error(e instanceof SwitchboardError ? `Switchboard refused: ${e.code} ${e.message}` : e.message);
  console.error("Is the local stack running (npm start)?");
  process.exit(1);
}
