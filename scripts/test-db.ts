/**
 * Prepares the test database (the one DATABASE_URL names, else `switchboard_test` on the
 * local server): recreated, bootstrapped, migrated with the Supabase CLI, seeded.
 * Prints its URL.
 */
import { resetDatabase, resolveDatabaseUrl, testDatabaseName, withDatabase } from "../packages/devstack/src/db.ts";

async function main() {
  const base = process.env.DATABASE_URL;
  const name = testDatabaseName();
  if (base) process.env.DATABASE_URL = withDatabase(base, name);
  const url = await resolveDatabaseUrl(name);
  await resetDatabase(url);
  process.stdout.write(url);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
