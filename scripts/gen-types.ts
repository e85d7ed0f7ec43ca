/**
 * Regenerates packages/client/src/database.types.ts with `supabase gen types typescript`
 * from a migrated database (default: the test database). `--check` fails when the
 * committed file is stale.
 *   npm run gen:types [-- --check] [-- --db-url <url>]
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../packages/devstack/src/db.ts";

const TYPES_FILE = join(REPO_ROOT, "packages/client/src/database.types.ts");
const args = process.argv.slice(2);
const dbUrlArg = args.indexOf("--db-url");
const dbUrl = new URL(
  dbUrlArg >= 0 ? args[dbUrlArg + 1] : process.env.SWITCHBOARD_TEST_DB_URL ?? "postgres://postgres@127.0.0.1:5432/switchboard",
);
// Local, unencrypted: say so, or the CLI prints a TLS warning into the generated file.
if (["127.0.0.1", "localhost"].includes(dbUrl.hostname)) dbUrl.searchParams.set("sslmode", "disable");

const generated = execFileSync(join(REPO_ROOT, "node_modules/.bin/supabase"),
  ["gen", "types", "typescript", "--db-url", dbUrl.toString(), "--schema", "public"],
  { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trimStart();

if (args.includes("--check")) {
  if (readFileSync(TYPES_FILE, "utf8") !== generated) {
    console.error("packages/client/src/database.types.ts is stale: run `npm run gen:types`");
    process.exit(1);
  }
  console.log("generated types are current");
} else {
  writeFileSync(TYPES_FILE, generated);
  console.log(`wrote ${TYPES_FILE}`);
}
