/**
 * Where private.begin_tool_call's time goes: its steps (the small functions it is
 * composed of, see the ledger migration) called one by one, in the order begin calls
 * them and with the same arguments, in a PL/pgSQL loop inside the database, each timed
 * with clock_timestamp(); then the whole begin_tool_call and finish_tool_call the same
 * way. No client round trip is inside any timing, and commits are outside them too
 * (every iteration commits, so no row version chain grows inside one transaction).
 *
 * The calls are real: every iteration records a succeeded operation for the agent and
 * counts it on its counters, like a call through the functions would.
 */
import postgres from "postgres";

export interface StepTiming {
  step: string;
  /** Microseconds. */
  p50_us: number;
  p95_us: number;
  mean_us: number;
}

export interface StepReport {
  label: string;
  iterations: number;
  steps: StepTiming[];
  /** Sum of the steps' p50 (begin only). */
  steps_p50_sum_us: number;
}

const RECIPIENT = "+61412345678";

function loop(label: string, keyHash: string, n: number, warmup: number): string {
  if (!/^[0-9a-f]{64}$/.test(keyHash)) throw new Error("key hash must be hex SHA-256");
  if (!/^[a-z_]+$/.test(label)) throw new Error("label must be a plain word");
  return `
do $steps$
declare
    v_ctx0 private.call_context;
    v_ctx private.call_context;
    v_capability public.integration_capabilities;
    v_provider public.service_providers;
    v_right private.effective_right;
    v_denial jsonb;
    v_config jsonb;
    v_webhook_token text;
    v_credentials jsonb;
    v_reserve integer;
    v_operation_id uuid;
    v_over jsonb;
    v_result jsonb;
    t timestamptz;
    v_keep boolean;
begin
    for i in 1..${n + warmup} loop
        v_keep := i > ${warmup};
        v_ctx0 := row('clicksend_send_sms', 'agent_key', null, null, null, null, null, null, array['${RECIPIENT}'],
                      '{"recipient_count": 1, "body_length": 72, "segments": 1, "encoding": "gsm7"}'::jsonb,
                      null, null, null)::private.call_context;

        t := clock_timestamp();
        v_ctx := private.resolve_caller(v_ctx0, '${keyHash}');
        if v_keep then insert into bench_step_times values ('${label}', 1, 'resolve_caller', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if v_ctx.denial is not null then raise exception 'resolve_caller refused: %', v_ctx.denial; end if;

        t := clock_timestamp();
        select c.id, c.provider_id, c.capability_key, c.required_scope, c.sends_messages, c.channel,
               p.id, p.name, p.display_name, p.channels, p.is_enabled, p.function_name, p.status_callback_kind
        into v_capability.id, v_capability.provider_id, v_capability.capability_key, v_capability.required_scope,
             v_capability.sends_messages, v_capability.channel,
             v_provider.id, v_provider.name, v_provider.display_name, v_provider.channels, v_provider.is_enabled,
             v_provider.function_name, v_provider.status_callback_kind
        from public.integration_capabilities c
        left join public.service_providers p on p.id = c.provider_id
        where c.capability_key = 'clicksend_send_sms';
        if v_keep then insert into bench_step_times values ('${label}', 2, 'capability + provider lookup (one read)', extract(epoch from clock_timestamp() - t) * 1e6); end if;

        t := clock_timestamp();
        v_ctx := private.resolve_right(v_ctx, v_provider, null, null);
        if v_keep then insert into bench_step_times values ('${label}', 3, 'resolve_right (agent_rights: grant ∩ member permission)', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if v_ctx.denial is not null then raise exception 'resolve_right refused: %', v_ctx.denial; end if;
        v_right := v_ctx.effective;

        t := clock_timestamp();
        v_denial := private.check_call_rules(v_ctx, v_right, v_capability);
        if v_keep then insert into bench_step_times values ('${label}', 4, 'check_call_rules', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if v_denial is not null then raise exception 'check_call_rules refused: %', v_denial; end if;

        t := clock_timestamp();
        v_ctx := private.resolve_sender(v_ctx, v_capability, null);
        if v_keep then insert into bench_step_times values ('${label}', 5, 'resolve_sender', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if v_ctx.denial is not null then raise exception 'resolve_sender refused: %', v_ctx.denial; end if;

        t := clock_timestamp();
        v_denial := private.replay_keyed_call(v_ctx, null, null);
        if v_keep then insert into bench_step_times values ('${label}', 6, 'replay_keyed_call (no key)', extract(epoch from clock_timestamp() - t) * 1e6); end if;

        t := clock_timestamp();
        select c.config, s.decrypted_secret::jsonb, w.webhook_token
        into v_config, v_credentials, v_webhook_token
        from public.connections c
        left join vault.decrypted_secrets s on s.id = c.secret_id
        left join public.connection_webhooks w on v_provider.status_callback_kind is not null and w.connection_id = c.id
        where c.id = v_ctx.connection_id;
        if v_keep then insert into bench_step_times values ('${label}', 7, 'connection read: config, credentials (Vault stand-in), status webhook', extract(epoch from clock_timestamp() - t) * 1e6); end if;

        v_reserve := cardinality(v_ctx.recipients);
        t := clock_timestamp();
        v_operation_id := private.record_operation(v_ctx, v_reserve, v_ctx.sender, null, null);
        if v_keep then insert into bench_step_times values ('${label}', 9, 'record_operation (operations insert)', extract(epoch from clock_timestamp() - t) * 1e6); end if;

        t := clock_timestamp();
        v_over := private.reserve_quota(v_right, v_reserve, private.utc_today());
        if v_keep then insert into bench_step_times values ('${label}', 10, 'reserve_quota (counter upserts)', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if v_over is not null then raise exception 'reserve_quota refused: %', v_over; end if;

        perform private.finish_tool_call(v_operation_id, 'succeeded', 1, array['STEP'], '{}'::jsonb, null, null, null, 1);
        commit;

        t := clock_timestamp();
        v_result := private.begin_tool_call(p_capability => 'clicksend_send_sms', p_agent_key_hash => '${keyHash}',
                        p_recipients => array['${RECIPIENT}'],
                        p_request_summary => '{"recipient_count": 1, "body_length": 72, "segments": 1, "encoding": "gsm7"}'::jsonb,
                        p_auth_mode => 'agent_key', p_sender => null);
        if v_keep then insert into bench_step_times values ('${label}', 20, 'whole begin_tool_call', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        if not (v_result ->> 'ok')::boolean then raise exception 'begin_tool_call refused: %', v_result; end if;
        commit;

        t := clock_timestamp();
        perform private.finish_tool_call((v_result ->> 'operation_id')::uuid, 'succeeded', 1, array['STEP'], '{}'::jsonb,
                                         null, null, null, 1);
        if v_keep then insert into bench_step_times values ('${label}', 21, 'whole finish_tool_call', extract(epoch from clock_timestamp() - t) * 1e6); end if;
        commit;
    end loop;
end
$steps$`;
}

/** Times begin's steps for each agent (by key hash), `n` iterations after 50 warm-up. */
export async function timeBeginSteps(dbUrl: string, agents: Array<{ label: string; keyHash: string }>, n: number): Promise<StepReport[]> {
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {}, connection: { application_name: "switchboard-bench:steps" } });
  try {
    await sql.unsafe(`create temp table bench_step_times (label text, ord integer, step text, us double precision)`);
    for (const a of agents) await sql.unsafe(loop(a.label, a.keyHash, n, 50)).simple();
    const rows = await sql<Array<{ label: string; step: string; p50: number; p95: number; mean: number; ord: number }>>`
      select label, ord, step,
             percentile_cont(0.5) within group (order by us) as p50,
             percentile_cont(0.95) within group (order by us) as p95,
             avg(us) as mean
      from bench_step_times group by label, ord, step order by label, ord`;
    return agents.map((a) => {
      const steps = rows.filter((r) => r.label === a.label).map((r) => ({
        step: r.step,
        p50_us: Math.round(Number(r.p50)),
        p95_us: Math.round(Number(r.p95)),
        mean_us: Math.round(Number(r.mean)),
        ord: r.ord,
      }));
      return {
        label: a.label,
        iterations: n,
        steps: steps.map(({ ord: _ord, ...s }) => s),
        steps_p50_sum_us: steps.filter((s) => s.ord < 20).reduce((sum, s) => sum + s.p50_us, 0),
      };
    });
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** Markdown table: steps as rows, one column pair per agent. */
export function stepsMarkdown(reports: StepReport[]): string {
  if (!reports.length) return "";
  const names = reports[0].steps.map((s) => s.step);
  const out = [
    `## Where begin_tool_call's time goes (its steps timed one by one inside the database, n = ${reports[0].iterations} each, µs)`,
    "",
    `| step | ${reports.map((r) => `${r.label} p50 | ${r.label} p95`).join(" | ")} |`,
    `|---|${reports.map(() => "---:|---:").join("|")}|`,
  ];
  for (const name of names) {
    out.push(`| ${name} | ${reports.map((r) => {
      const s = r.steps.find((x) => x.step === name);
      return s ? `${s.p50_us} | ${s.p95_us}` : "— | —";
    }).join(" | ")} |`);
  }
  out.push(`| sum of the steps' p50 (begin without its commit) | ${reports.map((r) => `${r.steps_p50_sum_us} | `).join(" | ")} |`, "");
  return out.join("\n");
}
