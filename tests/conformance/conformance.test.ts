/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
 * tests/conformance/package.json, run with the Node 22 installed beside it) against the
 * real mcp function, through the key-adding loopback proxy of global-setup.ts, once per
 * protocol revision Switchboard serves: the frozen requirement set of 2025-11-25 (the
 * stateful initialize wire) and of 2026-07-28 (the stateless `_meta` wire).
 *
 * Each revision's expected failures are in baseline-<revision>.yml, every entry with the
 * reason it cannot apply to Switchboard; the suite itself fails the run on a failure not
 * listed there and on a listed one that now passes (a stale baseline). On top of the
 * exit code, the scenarios that do apply are checked here one by one: every check of
 * theirs succeeded, except the few listed in the baseline.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";

const HERE = join(REPO_ROOT, "tests/conformance");
const NODE22 = join(HERE, "node_modules/.bin/node");
const SUITE = join(HERE, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const OUT = join(REPO_ROOT, ".scratch/conformance");

/** The scenarios that apply to Switchboard's real tool surface, per revision. */
const APPLIES: Record<string, string[]> = {
  "2025-11-25": ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"],
  "2026-07-28": ["server-stateless", "tools-list", "caching", "dns-rebinding-protection"],
};

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO";
  errorMessage?: string;
}

function runSuite(revision: string, outDir: string): Promise<{ code: number | null; output: string }> {
  const args = [
    SUITE, "server",
    "--url", inject("conformance").mcpUrl,
    "--requirements", revision,
    "--expected-failures", join(HERE, `baseline-${revision}.yml`),
    "-o", outDir,
    "--timeout", "20000",
  ];
  return new Promise((resolve, reject) => {
    // The suite's Node 22 first on PATH: it spawns nothing else, but keep it self-consistent.
    const child = spawn(NODE22, args, {
      cwd: HERE,
      env: { ...process.env, PATH: `${join(HERE, "node_modules/.bin")}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill("SIGTERM"), 240_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Every scenario's checks, from the suite's output folder (one checks.json per scenario). */
async function readChecks(outDir: string): Promise<Map<string, Check[]>> {
  const byScenario = new Map<string, Check[]>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name === "checks.json") {
        const scenario = dir.split("/").at(-1)!.replace(/^server-?/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
        byScenario.set(scenario, JSON.parse(await readFile(path, "utf8")));
      }
    }
  };
  await walk(outDir);
  return byScenario;
}

describe("the conformance lane's proxy", () => {
  it("reaches the real, authenticated handler: the same URL with a wrong key is refused with 401", async () => {
    const res = await fetch(inject("conformance").mcpUrl, {
      method: "POST",
      headers: { Authorization: "Bearer swb_agent_not-a-key", "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});

describe.each(Object.keys(APPLIES))("MCP conformance, revision %s", (revision) => {
  it("passes every scenario that applies; the baseline lists only what cannot apply, each with its reason", async () => {
    expect(existsSync(NODE22), "tests/conformance is installed (npm ci --prefix tests/conformance)").toBe(true);
    const baseline = parseYaml(await readFile(join(HERE, `baseline-${revision}.yml`), "utf8")) as { server: string[] };
    const outDir = join(OUT, revision);
    await rm(outDir, { recursive: true, force: true });
    await mkdir(outDir, { recursive: true });

    const { code, output } = await runSuite(revision, outDir);
    expect(code, output.slice(-6000)).toBe(0);

    const checks = await readChecks(outDir);
    console.log(`[conformance ${revision}] ${[...checks].map(([s, c]) => `${s}: ${c.filter((x) => x.status === "SUCCESS").length}/${c.length}`).join(", ")}`);
    for (const scenario of APPLIES[revision]) {
      const ran = checks.get(scenario);
      expect(ran, `${scenario} ran (scenarios: ${[...checks.keys()].join(", ")})`).toBeDefined();
      const allowed = new Set(baseline.server.filter((e) => e.startsWith(`${scenario}:`)).map((e) => e.slice(scenario.length + 1)));
      expect(baseline.server, `${scenario} applies, so it is never baselined whole`).not.toContain(scenario);
      const failed = ran!.filter((c) => c.status === "FAILURE" && !allowed.has(c.id));
      expect(failed, `${scenario}: unexpected failures`).toEqual([]);
      expect(ran!.some((c) => c.status === "SUCCESS"), `${scenario} checked something`).toBe(true);
    }
  }, 300_000);
});
