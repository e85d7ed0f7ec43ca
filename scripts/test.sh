#!/usr/bin/env bash
# `npm test`: everything. Static checks, database checks (advisors, lint, pgTAP),
# then vitest (unit, db, end-to-end against the devstack, the network-guard suite in a
# loopback-only network namespace, the pooled lane behind PgBouncer, and the official MCP
# conformance suite, the dashboard in Chromium). Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
export NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm config get registry 2>/dev/null)}"
export DO_NOT_TRACK=1
mkdir -p .scratch
failed_steps=()
step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }

step "deno check (every function)"
npx deno check --config supabase/functions/deno.json supabase/functions/*/index.ts || failed_steps+=("deno check")

step "tool schemas in the database are generated from the zod schemas"
npx tsx packages/devstack/src/gen-capability-schemas.ts --check || failed_steps+=("schemas")

step "typescript (node side)"
npx tsc -p tsconfig.json || failed_steps+=("tsc")

step "typescript (dashboard: DOM and JSX) and its build"
npx tsc -p packages/dashboard/tsconfig.json || failed_steps+=("tsc dashboard")
npx tsx -e 'import("./packages/devstack/src/dashboard.ts").then((m) => m.buildDashboard())' || failed_steps+=("dashboard build")

step "test database"
if ! TEST_DB_URL="$(npx tsx scripts/test-db.ts)"; then
  echo "could not prepare the test database"; exit 1
fi
export SWITCHBOARD_TEST_DB_URL="$TEST_DB_URL"
echo "$TEST_DB_URL"

step "client types are generated from the migrated schema"
npx tsx scripts/gen-types.ts --check --db-url "$TEST_DB_URL" || failed_steps+=("types")

step "supabase db advisors (nothing at WARN or above)"
npx supabase db advisors --remote="$TEST_DB_URL?sslmode=disable" --level warn --fail-on warn || failed_steps+=("advisors")

step "supabase db lint (plpgsql_check, public and private)"
npx supabase db lint --remote="$TEST_DB_URL?sslmode=disable" -s public,private --level warning --fail-on warning || failed_steps+=("lint")

step "pgTAP (pg_prove)"
pg_prove -d "$TEST_DB_URL" --ext .sql -r supabase/tests | tee .scratch/pg_prove.out
[ "${PIPESTATUS[0]}" -eq 0 ] || failed_steps+=("pgTAP")
pgtap_tests=$(grep -oE 'Tests=[0-9]+' .scratch/pg_prove.out | tail -1 | cut -d= -f2)

step "vitest (unit, db, e2e, faults on a throwaway cluster)"
npx vitest run --project unit --project db --project e2e --project faults \
  --reporter=default --reporter=json --outputFile.json=.scratch/vitest.json
[ $? -eq 0 ] || failed_steps+=("vitest")

# The network guard against hostile destinations, from inside a network namespace with only
# loopback (unshare --net, as root), so a bypass can never reach anything off the machine.
step "vitest netns (network guard, loopback-only namespace)"
rm -f .scratch/vitest-netns.json
bash tests/netns/run.sh --reporter=default --reporter=json --outputFile.json=.scratch/vitest-netns.json
[ $? -eq 0 ] || failed_steps+=("netns")

# Part of the e2e suite again with the functions behind PgBouncer in transaction mode (a
# transaction pooler, as Supavisor is), logged in as switchboard_functions.
step "vitest pooled (functions behind PgBouncer in transaction mode)"
rm -f .scratch/vitest-pooled.json
npx vitest run --project pooled --reporter=default --reporter=json --outputFile.json=.scratch/vitest-pooled.json
[ $? -eq 0 ] || failed_steps+=("pooled")

# The dashboard in Debian's Chromium (playwright-core) against a stack of its own that serves
# the built dashboard.
step "vitest dashboard (browser tests in Chromium)"
rm -f .scratch/vitest-dashboard.json
npx vitest run --project dashboard --reporter=default --reporter=json --outputFile.json=.scratch/vitest-dashboard.json
[ $? -eq 0 ] || failed_steps+=("dashboard")

# The official MCP conformance suite needs Node 22: it lives in tests/conformance with its
# own lockfile (the suite and Node 22 from the npm registry), installed here on first use.
step "MCP conformance suite (both protocol revisions, Node 22)"
rm -f .scratch/vitest-conformance.json
if [ ! -x tests/conformance/node_modules/.bin/node ] || [ ! -f tests/conformance/node_modules/@modelcontextprotocol/conformance/package.json ]; then
  npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error || failed_steps+=("conformance install")
fi
npx vitest run --project conformance --reporter=default --reporter=json --outputFile.json=.scratch/vitest-conformance.json
[ $? -eq 0 ] || failed_steps+=("conformance")

# Each vitest report adds its passed and failed tests; a missing or empty one counts as a failure.
read -r v_passed v_failed < <(node -e '
  let passed = 0, failed = 0;
  for (const report of ["vitest.json", "vitest-netns.json", "vitest-pooled.json", "vitest-dashboard.json", "vitest-conformance.json"]) {
    try { const r = require(`./.scratch/${report}`); passed += r.numPassedTests; failed += r.numFailedTests + (r.numTotalTests ? 0 : 1); }
    catch { failed += 1; }
  }
  console.log(passed, failed);')
pg_failed=0; [[ " ${failed_steps[*]} " == *" pgTAP "* ]] && pg_failed=1
passed=$(( ${pgtap_tests:-0} - pg_failed + v_passed ))
failed=$(( v_failed + ${#failed_steps[@]} ))
echo
[ ${#failed_steps[@]} -eq 0 ] || echo "failed steps: ${failed_steps[*]}"
echo "${passed} passed, ${failed} failed"
[ ${#failed_steps[@]} -eq 0 ]
