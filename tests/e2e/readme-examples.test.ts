/**
 * Every TypeScript block in the README runs as printed: each is written to a file in the
 * checkout (so its imports resolve as a newcomer's would) and run with tsx against the e2e
 * stack, with the values `npm run status` gives in the environment (the demo owner's
 * sign-in is seeded in every local database by supabase/seed.sql).
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { DEMO_USER_EMAIL, DEMO_USER_PASSWORD } from "../../packages/devstack/src/demo.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

const run = promisify(execFile);
const DIR = join(REPO_ROOT, ".scratch/readme-examples");

/** The README's ```ts blocks, in order. */
async function readmeBlocks(): Promise<string[]> {
  const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

async function runBlock(index: number, code: string): Promise<{ stdout: string; stderr: string }> {
  await mkdir(DIR, { recursive: true });
  const file = join(DIR, `block-${index + 1}.mts`);
  await writeFile(file, code);
  const env = { ...process.env, ...status(), DEMO_USER_EMAIL, DEMO_USER_PASSWORD } as NodeJS.ProcessEnv;
  return await run(join(REPO_ROOT, "node_modules/.bin/tsx"), [file], { cwd: REPO_ROOT, env, timeout: 60_000 });
}

afterAll(async () => {
  await rm(DIR, { recursive: true, force: true });
  await closeAdminSql();
});

describe("the README's TypeScript examples", () => {
  it("there are some, and each is a whole program (it creates its own client)", async () => {
    const blocks = await readmeBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) expect(block).toContain("createClient(");
  });

  it("block 1: the owner connects an account, creates an agent, grants it and gets its key", async () => {
    const [block] = await readmeBlocks();
    const { stdout } = await runBlock(0, block);
    const key = /shown this once: (swb_agent_\S+)/.exec(stdout)?.[1];
    expect(key, stdout).toBeDefined();
    // The key is real: it lists the granted tool.
    const tools = await fetch(`${status().FUNCTIONS_URL}/agent-tools?format=raw`, { headers: { Authorization: `Bearer ${key}` } });
    expect(tools.status).toBe(200);
    expect(((await tools.json()) as any).tools.map((t: any) => t.name)).toContain("sms_send");
  });

  it("block 2: a team — invitation, member permission, a number, the member's agent sends within it", async () => {
    const [, block] = await readmeBlocks();
    const { stdout } = await runBlock(1, block);
    expect(stdout).toMatch(/^200 \{/m);
    expect(stdout).toContain("status: 'succeeded'");
    // The send is on the ledger, from the member's assigned number, by the member's agent.
    const [op] = await adminSql()`
      select o.status, o.sender, a.name as agent
      from public.operations o join public.agents a on a.id = o.agent_id
      where a.name = 'Sam''s assistant' order by o.created_at desc limit 1`;
    expect(op).toMatchObject({ status: "succeeded", sender: "+61480000001", agent: "Sam's assistant" });
  });
});
