/**
 * `npm start` / `npm run status` / `npm run db:reset`.
 *
 *   start [--keep-db]   reset the database (unless --keep-db), start the stack, print
 *                       endpoints and keys, run until Ctrl-C / SIGTERM
 *   status              the running stack as one flat JSON object (exit 1 if not running)
 *   db:reset            recreate the database: bootstrap, migrations, seed
 */
import { loadConfig } from "./config.ts";
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
  await assertPortsFree(loadConfig());
  const stack = await startStack({ reset: !keepDb, seedDemo: runDemo, log: (line) => console.error(line) });
  printBlock(stack.status);

  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${reason}: stopping the local stack…`);
    await stack.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));
  void stack.functionsExited.then((code) => shutdown(`The Deno functions host exited (code ${code})`, 1));
}

async function status(): Promise<void> {
  const state = await readRunningState();
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
