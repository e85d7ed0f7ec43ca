/**
 * `npm run bench:compare -- <database A> <database B>` — the database side of two builds
 * on one machine, call by call.
 *
 * Timings on a shared machine drift by up to a factor of two within minutes, so two
 * `npm run bench` runs cannot tell a 10 % change from the machine's mood. This alternates
 * the two builds' calls one by one (which goes first alternates too), so drift falls on
 * both alike, and reports each side's p50 and B ÷ A:
 *   - DB work: begin_tool_call + finish_tool_call of the owner's sender and of the team
 *     member's sender (rows 1 and 14: the same statements, durable commits included);
 *   - discovery: list_tools_for_caller of the two 20-grant agents (rows 5 and 15, without
 *     the HTTP and the rendering), as listed again and again (a build with the discovery
 *     cache serves these from it) and built afresh (rows 26 and 27: before each call of
 *     either side, not timed, the agent's workspace's listing version is bumped in every
 *     build that has one).
 * Each database is one a bench left behind: in each checkout,
 *   BENCH_DATABASE=<name> npm run bench -- --only db
 * (same generator, so the same data; the bench resets only the database it names). Both
 * sides' calls go through the functions' login role with prepared statements
 * (bench/lib/calls.ts). BENCH_COMPARE_N sets the calls per side and measurement (default
 * 1 500, after 150 warm-up). A same-database run (A = B) shows the method's own noise.
 */
import { randomUUID } from "node:crypto";
import postgres, { type Sql } from "postgres";
import { resolveDatabaseUrl, withDatabase } from "../packages/devstack/src/db.ts";
import { beginCall, bumpListingVersion, finishCall, listToolsCall, serviceConnection } from "./lib/calls.ts";
import { nowMs, round, summarize } from "./lib/stats.ts";

const [nameA, nameB] = process.argv.slice(2).filter((a) => a !== "--");
for (const name of [nameA, nameB]) {
  if (!name || !/^[a-z_][a-z0-9_]*$/.test(name)) {
    console.error("usage: npm run bench:compare -- <database A> <database B> (plain lower-case names of databases a bench left behind)");
    process.exit(2);
  }
}
const N = Number(process.env.BENCH_COMPARE_N ?? 1_500);
const WARMUP = Math.ceil(N / 10);

/** The fixture's agents whose calls are compared, by the names bench/lib/fixture.ts gives them. */
const AGENTS = {
  owner: "bench sender",
  member: "bench member sender",
  discovery: "bench discovery",
  memberDiscovery: "bench member discovery",
} as const;
type AgentKey = keyof typeof AGENTS;

interface Side {
  sql: Sql;
  /** The database's owner, for what the calls' login role may not do (bumping a listing version). */
  admin: Sql;
  keyHashes: Record<AgentKey, string>;
  agentIds: Record<AgentKey, string>;
  /** Whether the build has the discovery cache (migration discovery_cache). */
  hasListingCache: boolean;
}

async function open(name: string): Promise<Side> {
  // The server the bench uses (DATABASE_URL, else the local one), this database on it.
  const url = process.env.DATABASE_URL ? withDatabase(process.env.DATABASE_URL, name) : await resolveDatabaseUrl(name);
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [{ cache }] = await admin`select to_regclass('private.tool_listing_versions') is not null as cache`;
    const rows = await admin<{ id: string; name: string; key_hash: string }[]>`
      select a.id, a.name, k.key_hash from public.agents a join public.agent_keys k on k.agent_id = a.id and k.revoked_at is null
      where a.name in ${admin(Object.values(AGENTS))}`;
    const byName = new Map(rows.map((r) => [r.name, r]));
    const agents = Object.entries(AGENTS).map(([key, agent]) => {
      const row = byName.get(agent);
      if (!row) throw new Error(`database ${name} has no agent "${agent}": prepare it with BENCH_DATABASE=${name} npm run bench -- --only db`);
      return [key, row] as const;
    });
    const keyHashes = Object.fromEntries(agents.map(([key, row]) => [key, row.key_hash])) as Record<AgentKey, string>;
    const agentIds = Object.fromEntries(agents.map(([key, row]) => [key, row.id])) as Record<AgentKey, string>;
    return { sql: serviceConnection(url), admin, keyHashes, agentIds, hasListingCache: cache };
  } catch (error) {
    await admin.end({ timeout: 2 });
    throw error;
  }
}

/**
 * Runs `call` on both sides, alternating one by one (`before` each call, not timed); the
 * p50 of each side and B ÷ A.
 */
async function alternate(label: string, sides: [Side, Side], call: (side: Side) => Promise<void>,
  before: () => Promise<void> = async () => {}) {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < WARMUP + N; i++) {
    for (const s of i % 2 === 0 ? [0, 1] : [1, 0]) {
      await before();
      const t = nowMs();
      await call(sides[s]);
      if (i >= WARMUP) times[s].push(nowMs() - t);
    }
  }
  const [a, b] = times.map((t) => summarize(t).p50);
  return { measurement: label, a_p50_ms: round(a), b_p50_ms: round(b), b_over_a: round(b / a, 3) };
}

const sides: [Side, Side] = [await open(nameA), await open(nameB)];
try {
  const results = [];
  for (const [label, agent] of [["DB work, owner's agent (begin + finish)", "owner"], ["DB work, member's agent (begin + finish)", "member"]] as const) {
    results.push(await alternate(label, sides, async (side) => {
      const operationId = await beginCall(side.sql, side.keyHashes[agent]);
      await finishCall(side.sql, operationId, randomUUID().toUpperCase());
    }));
  }
  for (const [label, agent] of [["discovery, personal workspace (list_tools_for_caller)", "discovery"],
    ["discovery, member of a team (list_tools_for_caller)", "memberDiscovery"]] as const) {
    results.push(await alternate(label, sides, async (side) => {
      await listToolsCall(side.sql, side.keyHashes[agent]);
    }));
    // Every side that has a listing version gets it bumped before either side's call, so
    // both sides' calls follow the same write (and its commit) on the machine.
    results.push(await alternate(`${label}, built afresh`, sides, async (side) => {
      await listToolsCall(side.sql, side.keyHashes[agent]);
    }, async () => {
      for (const side of sides) if (side.hasListingCache) await bumpListingVersion(side.admin, side.agentIds[agent]);
    }));
  }
  console.log(`A = ${nameA}, B = ${nameB}; ${N} calls per side and measurement, alternating, after ${WARMUP} warm-up`);
  console.table(results);
} finally {
  await Promise.all(sides.flatMap((s) => [s.sql.end({ timeout: 2 }), s.admin.end({ timeout: 2 })]));
}
