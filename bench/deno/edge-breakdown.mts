/**
 * Where the edge path's time goes — run by bench/run.ts under the real Deno runtime
 * against the running bench stack, with the functions' own _shared modules (nothing
 * re-implemented): the stages of runTool() timed one by one, plus the provider
 * function's handler called in-process (everything except the HTTP server).
 *
 * (.mts so the Node-side `tsc` does not type-check this Deno program.)
 *
 * Env: SUPABASE_DB_URL, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWKS,
 * SWITCHBOARD_ALLOW_PRIVATE_NETWORKS, BENCH_AGENT_KEY, BENCH_N, BENCH_RECIPIENT, BENCH_BODY.
 * Prints one JSON object on stdout.
 */
import { authenticate } from "../../supabase/functions/_shared/auth.ts";
import { asService, closePools } from "../../supabase/functions/_shared/db.ts";
import { providerFunction } from "../../supabase/functions/_shared/provider-function.ts";
import { networkPolicy } from "../../supabase/functions/_shared/tool-call.ts";
import { toolFor } from "../../supabase/functions/_shared/tools/index.ts";

const env = (name: string) => {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const key = env("BENCH_AGENT_KEY");
const n = Number(Deno.env.get("BENCH_N") ?? "300");
const warmup = 50;
const recipient = env("BENCH_RECIPIENT");
const text = env("BENCH_BODY");
const tool = toolFor("clicksend_send_sms")!;
const sql = asService();

// The same wiring as supabase/functions/clicksend/index.ts (no webhooks needed here).
const handler = providerFunction({
  name: "clicksend",
  provider: "clicksend_sms",
  routes: { "sms/send": "clicksend_send_sms" },
  testConnection: () => Promise.resolve({ ok: true, message: "" }),
});

const samples: Record<string, number[]> = {};
const time = async <T,>(stage: string, keep: boolean, fn: () => Promise<T>): Promise<T> => {
  const t = performance.now();
  const result = await fn();
  if (keep) (samples[stage] ??= []).push(performance.now() - t);
  return result;
};

for (let i = 0; i < warmup + n; i++) {
  const keep = i >= warmup;
  await time("select 1 (pool round trip)", keep, () => sql`select 1`);

  const req = new Request("http://localhost/clicksend/sms/send", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ to: [recipient], body: text }),
  });
  const body = await time("read JSON body", keep, () => req.json());
  const caller = await time("authenticate (agent key → SHA-256)", keep, () => authenticate(req, {}));
  const { args, recipients, summary } = await time("validate input (zod + libphonenumber) + summary", keep, () => {
    const parsed = tool.schema.safeParse({ to: body.to, body: body.body });
    if (!parsed.success) throw new Error("invalid");
    return Promise.resolve({ args: parsed.data, recipients: tool.recipients(parsed.data), summary: tool.summarize(parsed.data) });
  });
  const [{ result }] = await time("DB: begin_tool_call", keep, () =>
    sql`
      select private.begin_tool_call(
        p_capability => ${tool.capability},
        p_user_id => ${null}::uuid,
        p_agent_id => ${null}::uuid,
        p_agent_key_hash => ${caller.mode === "agent_key" ? caller.agentKeyHash : null},
        p_connection_id => ${null}::uuid,
        p_connection_ref => ${null},
        p_recipients => ${recipients}::text[],
        p_idempotency_key => ${null},
        p_request_hash => ${null},
        p_request_summary => ${sql.json(summary as never)}::jsonb,
        p_auth_mode => ${caller.mode},
        p_sender => ${null}
      ) as result`
  );
  if (!result.ok) throw new Error(`begin refused: ${JSON.stringify(result.error)}`);
  const outcome = await time("provider call (adapter: Connection: close)", keep, () =>
    tool.execute({ credentials: result.credentials, config: result.config, operationId: result.operation_id, network: networkPolicy() }, args)
  );
  const baseUrl = String(result.config.base_url).replace(/\/+$/, "");
  await time("same request, keep-alive fetch (for comparison)", keep, async () => {
    const res = await fetch(`${baseUrl}/sms/send`, {
      method: "POST",
      headers: {
        authorization: `Basic ${btoa(`${result.credentials.username}:${result.credentials.api_key}`)}`,
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify({ messages: [{ to: recipient, body: text, source: "switchboard", custom_string: result.operation_id }] }),
    });
    return await res.text();
  });
  const sent = "sentCount" in outcome ? outcome.sentCount : 0;
  await time("DB: finish_tool_call", keep, () =>
    sql`
      select private.finish_tool_call(
        ${result.operation_id}::uuid, ${"succeeded"}, ${sent}, ${"providerMessageIds" in outcome ? outcome.providerMessageIds : []}::text[],
        ${sql.json({ operation_id: result.operation_id, status: "succeeded", sent } as never)}::jsonb,
        ${null}, ${null}, ${null}::jsonb, ${1})`
  );

  const full = new Request("http://localhost/clicksend/sms/send", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ to: [recipient], body: text }),
  });
  const response = await time("whole function handler, in-process (no HTTP server)", keep, async () => {
    const res = await handler(full);
    await res.text();
    return res;
  });
  if (response.status !== 200) throw new Error(`handler answered ${response.status}`);
}

await closePools();
const p50 = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)];
};
const p95 = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.95) - 1)];
};
console.log(JSON.stringify({
  n,
  stages: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, { p50: Math.round(p50(v) * 1000) / 1000, p95: Math.round(p95(v) * 1000) / 1000 }])),
}));
