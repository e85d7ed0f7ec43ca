/**
 * `npm start` / `npm run status` / `npm run db:reset`.
 *
 *   start [--keep-db]   reset the database (unless --keep-db), start the stack and the
 *                       dashboard (built with Vite when its sources changed, served on
 *                       DASHBOARD_URL), print endpoints and keys, run until Ctrl-C / SIGTERM
 *   status [--env]      the running stack as one flat JSON object, or as KEY='value'
 *                       lines for --env-file (exit 1 if not running)
 *   db:reset            recreate the database: bootstrap, migrations, seed
 */
import { writeFile } from "node:fs/promises";
import { loadConfig, statePath } from "./config.ts";
import { buildDashboard, dashboardPort, startDashboard, startDashboardServer } from "./dashboard.ts";
import { redact, resetDatabase, resolveDatabaseUrl } from "./db.ts";
import { runDemo } from "./demo.ts";
import { assertPortsFree } from "./ports.ts";
import { readRunningState, startStack, type StackStatus } from "./stack.ts";

function printBlock(status: StackStatus): void {
  const shown = Object.entries(status).filter(([key]) => !key.endsWith("_FAKE_PUBLIC_KEY"));
  const width = Math.max(...shown.map(([key]) => key.length));
  const lines = shown.map(([key, value]) => `  ${key.padEnd(width)}  ${value}`);
  console.log(`\nSwitchboard local stack is running.\n\n${lines.join("\n")}\n\nStop with Ctrl-C. \`npm run status\` prints this as JSON.\n`);
}

async function start(args: string[]): Promise<void> {
  const keepDb = args.includes("--keep-db");
  const config = loadConfig();
  await assertPortsFree(config);
  // The dashboard's port too, before anything starts; its build runs while the stack starts.
  const port = dashboardPort();
  if (port !== 0) await (await startDashboardServer({ host: config.host, port, config: { supabaseUrl: "http://127.0.0.1", supabaseAnonKey: "-" } })).close();
  const build = buildDashboard({ log: (line) => console.error(line) });
  build.catch(() => {});
  const stack = await startStack({ reset: !keepDb, seedDemo: runDemo, log: (line) => console.error(line) });
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;
  try {
    dashboard = await startDashboard({ apiUrl: stack.status.API_URL, publishableKey: stack.status.PUBLISHABLE_KEY, host: config.host, port, build });
    stack.status.DASHBOARD_URL = dashboard.url;
    await writeFile(statePath(stack.config), `${JSON.stringify(stack.status, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    console.error(`The dashboard is not served: ${(error as Error).message}`);
  }
  printBlock(stack.status);

  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${reason}: stopping the local stack…`);
    await dashboard?.close();
    await stack.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));
  void stack.functionsExited.then((code) => shutdown(`The Deno functions host exited (code ${code})`, 1));
}

/** Shell-quoted as a dotenv value (Node's --env-file and dotenv read single quotes literally). */
const dotenvValue = (value: unknown) => `'${String(value).replace(/'/g, "")}'`;

async function status(args: string[]): Promise<void> {
  const state = await readRunningState();
  if (args.includes("--env")) {
    // KEY='value' lines, for `npx tsx --env-file=…` and the README's examples.
    console.log(Object.entries(state).map(([key, value]) => `${key}=${dotenvValue(value)}`).join("\n"));
    return;
  }
  console.log(JSON.stringify(state, null, 2));
}

async function dbReset(): Promise<void> {
  const url = await resolveDatabaseUrl();
  console.error(`Resetting ${redact(url)}: recreate database, platform bootstrap, supabase migration up, seed…`);
  const started = Date.now();
  await resetDatabase(url);
  console.error(`Database ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${redact(url)}`);
}

const [command, ...args] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = { start, status, "db:reset": dbReset };
const run = command ? commands[command] : undefined;
if (!run) {
  console.error("usage: cli.ts start [--keep-db] | status | db:reset");
  process.exit(2);
}
run(args).catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
