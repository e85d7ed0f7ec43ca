/**
 * Plans as evidence: runs statements with auto_explain loaded in the session
 * (log_analyze, buffers, nested statements, level NOTICE), so every statement executed
 * INSIDE the plpgsql/sql functions (begin_tool_call, finish_tool_call,
 * list_tools_for_caller) comes back to the client as an EXPLAIN ANALYZE with its own
 * timing. LOAD needs a superuser; the statements then run as service_role, exactly as
 * the functions run them.
 */
import postgres from "postgres";

export interface NestedPlan {
  /** The statement as auto_explain printed it, whitespace collapsed. */
  query: string;
  /** Execution time the plan reports, ms. */
  ms: number;
  plan: string;
}

export interface ExplainCapture {
  label: string;
  /** Wall time of the top-level statement with auto_explain on (instrumentation inflates it). */
  totalMs: number;
  plans: NestedPlan[];
}

function parseNotice(message: string): NestedPlan | undefined {
  const head = /^duration: ([\d.]+) ms/.exec(message);
  if (!head) return undefined;
  const lines = message.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Query Text: "));
  const query: string[] = [];
  for (let i = start; i >= 0 && i < lines.length; i++) {
    if (/\(cost=|\(actual time=/.test(lines[i])) break;
    query.push(i === start ? lines[i].slice("Query Text: ".length) : lines[i]);
  }
  return { query: query.join(" ").replace(/\s+/g, " ").trim(), ms: Number(head[1]), plan: message };
}

export interface ExplainSession {
  /** Runs a statement and captures the plans of everything it executed. */
  capture<T = Record<string, unknown>>(label: string, statement: string, params?: unknown[]): Promise<{ capture: ExplainCapture; rows: T[] }>;
  /** Runs a statement without keeping its plans (warm-up). */
  run<T = Record<string, unknown>>(statement: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function explainSession(dbUrl: string): Promise<ExplainSession> {
  const notices: string[] = [];
  const sql = postgres(dbUrl, {
    max: 1,
    onnotice: (n) => notices.push(String((n as { message?: string }).message ?? "")),
    connection: { application_name: "switchboard-bench:explain" },
  });
  await sql.unsafe(`load 'auto_explain'`);
  await sql.unsafe(`set auto_explain.log_min_duration = 0`);
  await sql.unsafe(`set auto_explain.log_analyze = on`);
  await sql.unsafe(`set auto_explain.log_buffers = on`);
  await sql.unsafe(`set auto_explain.log_nested_statements = on`);
  await sql.unsafe(`set auto_explain.log_level = notice`);
  await sql.unsafe(`set client_min_messages = notice`);
  await sql.unsafe(`set role service_role`);
  return {
    async run(statement, params = []) {
      const rows = await sql.unsafe(statement, params as never[]);
      notices.length = 0;
      return rows as never;
    },
    async capture(label, statement, params = []) {
      notices.length = 0;
      const started = process.hrtime.bigint();
      const rows = await sql.unsafe(statement, params as never[]);
      const totalMs = Number(process.hrtime.bigint() - started) / 1e6;
      const plans = notices.map(parseNotice).filter((p): p is NestedPlan => !!p);
      notices.length = 0;
      return { capture: { label, totalMs, plans }, rows: rows as never };
    },
    close: () => sql.end({ timeout: 2 }),
  };
}

/** Markdown for the captured plans (slowest nested statements first, top-level last). */
export function explainMarkdown(captures: ExplainCapture[]): string {
  const out: string[] = [];
  for (const c of captures) {
    out.push(`### ${c.label}`, "", `Top-level wall time with auto_explain instrumentation: ${c.totalMs.toFixed(3)} ms.`, "");
    out.push("| nested statement | ms |", "|---|---:|");
    for (const p of c.plans) out.push(`| \`${p.query.slice(0, 140).replace(/\|/g, "\\|")}\` | ${p.ms.toFixed(3)} |`);
    out.push("");
    for (const p of c.plans) out.push("```", p.plan.trimEnd(), "```", "");
  }
  return out.join("\n");
}
