/**
 * Prepares the test database (`switchboard_test`, on the server DATABASE_URL names or
 * the local one): recreated, bootstrapped, migrated with the Supabase CLI, seeded.
 * Prints its URL.
 */
import { resetDatabase, resolveDatabaseUrl, withDatabase } from "../packages/devstack/src/db.ts";

async function main() {
  const base = process.env.DATABASE_URL;
  if (base) process.env.DATABASE_URL = withDatabase(base, "switchboard_test");
  const url = await resolveDatabaseUrl("switchboard_test");
  await resetDatabase(url);
  process.stdout.write(url);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
