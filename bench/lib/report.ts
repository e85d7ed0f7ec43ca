/** Result rows, the printed table and the files bench/results.json and bench/results.md. */
import { writeFile } from "node:fs/promises";

export interface ResultRow {
  /** Short id, stable across runs (for tooling). */
  id: string;
  name: string;
  unit: string;
  measured: number | string;
  baseline: number | string | null;
  /** measured / baseline where that is meaningful. */
  ratio: number | null;
  /** measured − baseline (the part the budget is about), same unit. */
  overhead: number | null;
  budget: string;
  met: boolean;
  notes?: string;
}

function fmt(value: number | string | null, unit = ""): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  const abs = Math.abs(value);
  const text = abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(3);
  return unit ? `${text} ${unit}` : text;
}

export function ratioOverhead(row: ResultRow): string {
  const parts: string[] = [];
  if (row.overhead !== null) parts.push(`${row.overhead >= 0 ? "+" : ""}${fmt(row.overhead, row.unit)}`);
  if (row.ratio !== null) parts.push(`×${row.ratio.toFixed(2)}`);
  return parts.join(" / ") || "—";
}

export function markdownTable(rows: ResultRow[]): string {
  const lines = [
    "| # | measurement | measured | baseline | overhead / ratio | budget | met |",
    "|---|---|---:|---:|---:|---|:---:|",
  ];
  rows.forEach((r, i) => {
    lines.push(
      `| ${i + 1} | ${r.name} | ${fmt(r.measured, r.unit)} | ${fmt(r.baseline, typeof r.baseline === "number" ? r.unit : "")} | ${ratioOverhead(r)} | ${r.budget} | ${r.met ? "yes" : "**NO**"} |`,
    );
  });
  return lines.join("\n");
}

/** A plain-text table for the terminal. */
export function consoleTable(rows: ResultRow[]): string {
  const header = ["#", "measurement", "measured", "baseline", "overhead / ratio", "budget", "met"];
  const body = rows.map((r, i) => [
    String(i + 1),
    r.name,
    fmt(r.measured, r.unit),
    fmt(r.baseline, typeof r.baseline === "number" ? r.unit : ""),
    ratioOverhead(r),
    r.budget,
    r.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c])).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export async function writeResults(
  jsonPath: string,
  mdPath: string,
  payload: { rows: ResultRow[]; details: Record<string, unknown>; environment: Record<string, unknown>; notes: string[] },
  extraMarkdown: string,
): Promise<void> {
  await writeFile(jsonPath, `${JSON.stringify({ generated_at: new Date().toISOString(), ...payload }, null, 2)}\n`);
  const md = [
    "# Switchboard benchmark results",
    "",
    `Generated ${new Date().toISOString()} by \`npm run bench\` (see docs/benchmarks.md).`,
    "",
    markdownTable(payload.rows),
    "",
    ...(payload.notes.length ? ["## Notes", "", ...payload.notes.map((n) => `- ${n}`), ""] : []),
    "## Environment",
    "",
    ...Object.entries(payload.environment).map(([k, v]) => `- ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`),
    "",
    extraMarkdown,
  ].join("\n");
  await writeFile(mdPath, `${md.trimEnd()}\n`);
}
