/**
 * The devstack's PostgREST stand-in (packages/devstack/src/rest-standin.ts) through real
 * supabase-js: inserts, updates and deletes, and the read features the SDK, the README
 * and the dashboard use, with PostgREST's statuses, headers and error bodies.
 *
 * Every write runs under RLS as the JWT's role, in one transaction per request. The
 * attacker's side is checked as well: another user's rows cannot be changed (0 rows),
 * anon cannot insert, a member cannot write what the policies forbid, and a write that
 * fails leaves nothing behind.
 *
 * Probe objects (zz_rest_*) are created in the e2e database through the admin
 * connection and dropped afterwards; nothing here is a migration. The agents tests use
 * the real schema (its grants and policies are the contract under test).
 */
import { randomUUID } from "node:crypto";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { adminSql, closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

/** What the last request of a client sent and got back (supabase-js hides the headers). */
interface Exchange {
  method: string;
  url: URL;
  prefer: string | null;
  accept: string | null;
  status: number;
  headers: Headers;
}

interface Caller {
  sb: SupabaseClient;
  last(): Exchange;
}

/** supabase-js as a user (or anon), recording each exchange. */
function caller(token?: string): Caller {
  let last: Exchange | undefined;
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const sent = new Headers(init?.headers);
    last = {
      method: init?.method ?? "GET",
      url: new URL(String(input instanceof Request ? input.url : input)),
      prefer: sent.get("prefer"),
      accept: sent.get("accept"),
      status: res.status,
      headers: res.headers,
    };
    return res;
  };
  const sb = createClient(status().API_URL, status().ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: token ? { Authorization: `Bearer ${token}` } : {}, fetch: recording },
    realtime: { transport: WebSocket as never },
  });
  return {
    sb,
    last: () => {
      if (!last) throw new Error("no request yet");
      return last;
    },
  };
}

/** A plain HTTP request to /rest/v1 (what curl users and other clients send). */
function rest(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  headers.set("apikey", status().ANON_KEY);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body) headers.set("content-type", "application/json");
  return fetch(`${status().REST_URL}${path}`, { ...init, headers });
}

interface Person extends TestUser {
  as: Caller;
}

async function person(label: string): Promise<Person> {
  const user = await newUser(`${label}-${randomUUID().slice(0, 8)}@rest.example.test`);
  return { ...user, as: caller(user.token) };
}

const NOTES = "zz_rest_notes";
const BOARDS = "zz_rest_boards";
const EVENTS = "zz_rest_events";
const DROPS = "zz_rest_drops";
const RLS_REFUSAL = (table: string) => ({
  code: "42501",
  details: null,
  hint: null,
  message: `new row violates row-level security policy for table "${table}"`,
});

let nextId = 1000;
const id = () => nextId++;

let alice: Person;
let bob: Person;
const anon = () => caller();
const service = () => caller(status().SERVICE_ROLE_KEY);

/** A row as the database holds it (the admin connection, outside RLS). */
async function stored(ids: number[]) {
  return adminSql()`select id, owner, body, rank, label, tags, slug, board_id from public.zz_rest_notes where id in ${adminSql()(ids)} order by id`;
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([person("alice"), person("bob")]);
  const sql = adminSql();
  await sql.begin(async (tx) => {
    await tx`create table public.zz_rest_boards (id integer primary key, name text not null)`;
    await tx`alter table public.zz_rest_boards enable row level security`;
    await tx`create policy zz_rest_boards_select on public.zz_rest_boards for select to authenticated using (true)`;
    await tx`grant select on public.zz_rest_boards to authenticated, service_role`;
    await tx`insert into public.zz_rest_boards values (1, 'Inbox'), (2, 'Archive')`;

    await tx`create table public.zz_rest_notes (
      id integer primary key,
      owner uuid not null default auth.uid(),
      board_id integer references public.zz_rest_boards (id),
      body text not null,
      rank integer not null default 0 check (rank >= 0),
      label text default 'untitled',
      tags text[] not null default '{}',
      slug text unique,
      created_at timestamptz not null default now())`;
    await tx`alter table public.zz_rest_notes enable row level security`;
    await tx`create policy zz_rest_notes_select on public.zz_rest_notes for select to authenticated using (owner = (select auth.uid()))`;
    await tx`create policy zz_rest_notes_insert on public.zz_rest_notes for insert to authenticated with check (owner = (select auth.uid()))`;
    await tx`create policy zz_rest_notes_update on public.zz_rest_notes for update to authenticated
      using (owner = (select auth.uid())) with check (owner = (select auth.uid()))`;
    await tx`create policy zz_rest_notes_delete on public.zz_rest_notes for delete to authenticated using (owner = (select auth.uid()))`;
    await tx`grant select, insert, update, delete on public.zz_rest_notes to authenticated, service_role`;
    await tx`grant select on public.zz_rest_notes to anon`;

    await tx`create table public.zz_rest_drops (id integer primary key, recipient uuid not null, body text not null)`;
    await tx`alter table public.zz_rest_drops enable row level security`;
    await tx`create policy zz_rest_drops_insert on public.zz_rest_drops for insert to authenticated with check (true)`;
    await tx`create policy zz_rest_drops_select on public.zz_rest_drops for select to authenticated using (recipient = (select auth.uid()))`;
    await tx`grant select, insert on public.zz_rest_drops to authenticated`;

    await tx`create table public.zz_rest_events (id integer primary key, kind text not null, at timestamptz not null)`;
    await tx`alter table public.zz_rest_events enable row level security`;
    await tx`create policy zz_rest_events_select on public.zz_rest_events for select to authenticated using (true)`;
    await tx`grant select on public.zz_rest_events to authenticated`;
    await tx`insert into public.zz_rest_events
      select n, case when n % 2 = 0 then 'even' else 'odd' end, timestamptz '2026-11-01T00:00:00Z' + n * interval '1 hour'
      from generate_series(1, 100) as n`;
  });
});

afterAll(async () => {
  await adminSql()`drop table if exists public.zz_rest_notes, public.zz_rest_boards, public.zz_rest_events, public.zz_rest_drops`;
  await closeAdminSql();
});

describe("POST: insert", () => {
  it("inserts one object: 201, no body (return=minimal is the default), Content-Range */*", async () => {
    const noteId = id();
    const res = await alice.as.sb.from(NOTES).insert({ id: noteId, body: "one" });
    expect(res).toMatchObject({ status: 201, statusText: "Created", data: null, error: null });
    const sent = alice.as.last();
    expect([sent.method, sent.prefer]).toEqual(["POST", null]);
    expect(sent.headers.get("content-range")).toBe("*/*");
    expect(sent.headers.get("preference-applied")).toBeNull();
    expect(sent.headers.get("x-switchboard-standin")).toBe("postgrest");
    // Defaults filled by the database, owner from auth.uid() of the JWT.
    expect(await stored([noteId])).toEqual([{ id: noteId, owner: alice.id, body: "one", rank: 0, label: "untitled", tags: [], slug: null, board_id: null }]);
  });

  it("answers an explicit Prefer: return=minimal with 201, an empty body and Preference-Applied", async () => {
    const noteId = id();
    const res = await rest(`/${NOTES}`, { method: "POST", token: alice.token, headers: { Prefer: "return=minimal" }, body: JSON.stringify({ id: noteId, body: "minimal" }) });
    expect(res.status).toBe(201);
    expect(await res.text()).toBe("");
    expect(res.headers.get("preference-applied")).toBe("return=minimal");
    expect(res.headers.get("content-type")).toBeNull();
    expect(res.headers.get("location")).toBeNull();
    expect(await stored([noteId])).toHaveLength(1);
  });

  it("returns the inserted rows with return=representation, shaped by ?select=", async () => {
    const noteId = id();
    const res = await alice.as.sb.from(NOTES).insert({ id: noteId, body: "shown", board_id: 1 }).select("id, text:body, rank, board:zz_rest_boards(name)");
    expect(res).toMatchObject({ status: 201, error: null });
    expect(res.data).toEqual([{ id: noteId, text: "shown", rank: 0, board: { name: "Inbox" } }]);
    const sent = alice.as.last();
    expect(sent.prefer).toBe("return=representation");
    expect(sent.url.searchParams.get("select")).toBe("id,text:body,rank,board:zz_rest_boards(name)");
    expect(sent.headers.get("preference-applied")).toBe("return=representation");
    expect(sent.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(sent.headers.get("content-profile")).toBe("public");
    expect(sent.headers.get("content-range")).toBe("*/*");
  });

  it("inserts an array in one statement; supabase-js sends columns=, and missing keys become NULL", async () => {
    const [a, b] = [id(), id()];
    const res = await alice.as.sb.from(NOTES).insert([{ id: a, body: "bulk a", label: "given" }, { id: b, body: "bulk b" }], { count: "exact" }).select("id, label");
    expect(res).toMatchObject({ status: 201, count: 2, error: null, data: [{ id: a, label: "given" }, { id: b, label: null }] });
    const sent = alice.as.last();
    expect(sent.url.searchParams.get("columns")).toBe('"id","body","label"');
    expect(sent.headers.get("content-range")).toBe("*/2");
    expect(sent.headers.get("preference-applied")).toBe("return=representation, count=exact");
  });

  it("honours Prefer: missing=default (supabase-js defaultToNull: false): missing keys take the column default", async () => {
    const [a, b] = [id(), id()];
    const res = await alice.as.sb.from(NOTES)
      .insert([{ id: a, body: "d a", label: "given", tags: ["x"] }, { id: b, body: "d b" }], { defaultToNull: false })
      .select("id, label, tags");
    expect(res).toMatchObject({ status: 201, error: null, data: [{ id: a, label: "given", tags: ["x"] }, { id: b, label: "untitled", tags: [] }] });
    expect(alice.as.last().prefer).toBe("missing=default, return=representation");
    expect(alice.as.last().headers.get("preference-applied")).toBe("missing=default, return=representation");
  });

  it(".insert().select().single() gives the object with the singular media type", async () => {
    const noteId = id();
    const res = await alice.as.sb.from(NOTES).insert({ id: noteId, body: "single" }).select("id, body").single();
    expect(res).toMatchObject({ status: 201, error: null, data: { id: noteId, body: "single" } });
    expect(alice.as.last().accept).toBe("application/vnd.pgrst.object+json");
    expect(alice.as.last().headers.get("content-type")).toBe("application/vnd.pgrst.object+json; charset=utf-8");
  });

  it("a singular insert of two rows is 406 PGRST116 and writes nothing", async () => {
    const [a, b] = [id(), id()];
    const res = await alice.as.sb.from(NOTES).insert([{ id: a, body: "x" }, { id: b, body: "y" }]).select("id").single();
    expect(res.status).toBe(406);
    expect(res.error).toEqual({ code: "PGRST116", message: "Cannot coerce the result to a single JSON object", details: "The result contains 2 rows", hint: null });
    expect(await stored([a, b])).toEqual([]);
  });

  it("answers return=headers-only with the new row's Location", async () => {
    const noteId = id();
    const res = await rest(`/${NOTES}`, { method: "POST", token: alice.token, headers: { Prefer: "return=headers-only" }, body: JSON.stringify({ id: noteId, body: "located" }) });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`/${NOTES}?id=eq.${noteId}`);
    expect(res.headers.get("preference-applied")).toBe("return=headers-only");
    expect(await res.text()).toBe("");
  });

  it("refuses a row the insert policy rejects with 403 and PostgREST's exact body; nothing is written", async () => {
    const noteId = id();
    const res = await alice.as.sb.from(NOTES).insert({ id: noteId, body: "for bob", owner: bob.id });
    expect(res.status).toBe(403);
    expect(res.error).toEqual(RLS_REFUSAL(NOTES));
    expect(res.data).toBeNull();
    expect(await stored([noteId])).toEqual([]);
  });

  it("a row the inserter may write but not read: minimal succeeds, representation is refused (RETURNING reads it)", async () => {
    // Postgres applies SELECT policies to a new row only when RETURNING reads its columns,
    // which is why PostgREST returns `1` for return=minimal.
    const [a, b] = [id(), id()];
    const dropped = await alice.as.sb.from(DROPS).insert({ id: a, recipient: bob.id, body: "for bob" });
    expect(dropped).toMatchObject({ status: 201, error: null });
    const echoed = await alice.as.sb.from(DROPS).insert({ id: b, recipient: bob.id, body: "for bob" }).select();
    expect(echoed.status).toBe(403);
    expect(echoed.error).toEqual(RLS_REFUSAL(DROPS));
    expect(await adminSql()`select id from public.zz_rest_drops order by id`).toEqual([{ id: a }]);
    expect((await bob.as.sb.from(DROPS).select("id, body")).data).toEqual([{ id: a, body: "for bob" }]);
  });

  it("anon cannot insert: 401 42501 with a Bearer challenge", async () => {
    const noteId = id();
    const who = anon();
    const res = await who.sb.from(NOTES).insert({ id: noteId, body: "anon" });
    expect(res.status).toBe(401);
    expect(res.error).toEqual({ code: "42501", details: null, hint: null, message: "permission denied for table zz_rest_notes" });
    expect(who.last().headers.get("www-authenticate")).toBe("Bearer");
    expect(await stored([noteId])).toEqual([]);
  });

  it("maps constraint and input errors to PostgREST's statuses, writing nothing", async () => {
    const taken = id();
    await alice.as.sb.from(NOTES).insert({ id: taken, body: "taken", slug: `slug-${taken}` });
    const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
      ["not null", { body: null }, 400, "23502", /null value in column "body" of relation "zz_rest_notes" violates not-null constraint/],
      ["unique", { body: "dup", slug: `slug-${taken}` }, 409, "23505", /duplicate key value violates unique constraint "zz_rest_notes_slug_key"/],
      ["foreign key", { body: "fk", board_id: 99 }, 409, "23503", /violates foreign key constraint "zz_rest_notes_board_id_fkey"/],
      ["check", { body: "check", rank: -1 }, 400, "23514", /violates check constraint "zz_rest_notes_rank_check"/],
      ["bad input", { body: "type", rank: "high" }, 400, "22P02", /invalid input syntax for type integer: "high"/],
    ];
    for (const [what, row, httpStatus, code, message] of cases) {
      const noteId = id();
      const res = await alice.as.sb.from(NOTES).insert({ id: noteId, ...row });
      expect({ what, status: res.status, code: res.error?.code }).toEqual({ what, status: httpStatus, code });
      expect(res.error?.message).toMatch(message);
      expect(await stored([noteId])).toEqual([]);
    }
  });

  it("a bulk insert that fails on one row writes none of them (one transaction)", async () => {
    const [a, b, c] = [id(), id(), id()];
    // supabase-js sends columns="id","body","tags": the row without tags gets NULL, which tags refuses.
    const res = await alice.as.sb.from(NOTES).insert([{ id: a, body: "ok", tags: ["t"] }, { id: b, body: "ok" }, { id: c, body: "ok", tags: [] }]);
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: "23502", message: expect.stringContaining('null value in column "tags"') });
    expect(await stored([a, b, c])).toEqual([]);
  });

  it("refuses an unknown column with 400 PGRST204 and an unknown table with 404 PGRST205", async () => {
    const noColumn = await alice.as.sb.from(NOTES).insert({ id: id(), body: "x", colour: "red" });
    expect(noColumn.status).toBe(400);
    expect(noColumn.error).toEqual({ code: "PGRST204", details: null, hint: null, message: "Could not find the 'colour' column of 'zz_rest_notes' in the schema cache" });

    const noTable = await alice.as.sb.from("zz_rest_nowhere").insert({ id: 1 });
    expect(noTable.status).toBe(404);
    expect(noTable.error).toMatchObject({ code: "PGRST205", message: "Could not find the table 'public.zz_rest_nowhere' in the schema cache" });
  });

  it("refuses bad bodies like PostgREST: invalid JSON and objects whose keys differ are 400 PGRST102", async () => {
    const invalid = await rest(`/${NOTES}`, { method: "POST", token: alice.token, body: "{nope" });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });

    const uneven = await rest(`/${NOTES}`, { method: "POST", token: alice.token, body: JSON.stringify([{ id: id(), body: "a" }, { id: id() }]) });
    expect(uneven.status).toBe(400);
    expect(await uneven.json()).toMatchObject({ code: "PGRST102", message: "All object keys must match" });
  });
});

describe("PATCH: update", () => {
  let mine: number[];

  beforeAll(async () => {
    mine = [id(), id(), id()];
    const { error } = await alice.as.sb.from(NOTES).insert(mine.map((n, i) => ({ id: n, body: `patch ${i}`, rank: i + 1 })));
    expect(error).toBeNull();
  });

  it("updates the filtered rows: 204 without a body, Content-Range names them", async () => {
    const res = await alice.as.sb.from(NOTES).update({ label: "renamed" }).eq("id", mine[0]!);
    expect(res).toMatchObject({ status: 204, data: null, error: null });
    expect(alice.as.last().method).toBe("PATCH");
    expect(alice.as.last().headers.get("content-range")).toBe("0-0/*");
    expect((await stored([mine[0]!]))[0]).toMatchObject({ label: "renamed" });
  });

  it("returns the updated rows with .select() (200) and counts them with count: exact", async () => {
    const res = await alice.as.sb.from(NOTES).update({ rank: 7 }, { count: "exact" }).in("id", [mine[1]!, mine[2]!]).select("id, rank").order("id");
    expect(res).toMatchObject({ status: 200, count: 2, error: null, data: [{ id: mine[1], rank: 7 }, { id: mine[2], rank: 7 }] });
    expect(alice.as.last().headers.get("content-range")).toBe("0-1/2");
    expect(alice.as.last().headers.get("preference-applied")).toBe("return=representation, count=exact");
  });

  it("another user's rows are invisible to an update: 0 rows, 204, nothing changed", async () => {
    const res = await bob.as.sb.from(NOTES).update({ body: "hijacked" }).eq("id", mine[0]!);
    expect(res).toMatchObject({ status: 204, data: null, error: null });
    expect(bob.as.last().headers.get("content-range")).toBe("*/*");
    const shown = await bob.as.sb.from(NOTES).update({ body: "hijacked" }).in("id", mine).select();
    expect(shown).toMatchObject({ status: 200, data: [], error: null });
    expect((await stored(mine)).map((r) => r.body)).toEqual(["patch 0", "patch 1", "patch 2"]);
  });

  it("an update the policy's WITH CHECK refuses (giving the row away) is 403 with PostgREST's body", async () => {
    const res = await alice.as.sb.from(NOTES).update({ owner: bob.id }).eq("id", mine[0]!);
    expect(res.status).toBe(403);
    expect(res.error).toEqual(RLS_REFUSAL(NOTES));
    expect((await stored([mine[0]!]))[0]).toMatchObject({ owner: alice.id });
  });

  it("a singular update that matches two rows is 406 PGRST116 and rolled back", async () => {
    const res = await alice.as.sb.from(NOTES).update({ label: "both" }).in("id", [mine[1]!, mine[2]!]).select("id").single();
    expect(res.status).toBe(406);
    expect(res.error).toMatchObject({ code: "PGRST116", details: "The result contains 2 rows" });
    expect((await stored([mine[1]!, mine[2]!])).map((r) => r.label)).toEqual(["untitled", "untitled"]);
  });

  it("refuses unknown columns (400 PGRST204), constraint violations (23514 → 400) and an empty object changes nothing", async () => {
    const unknown = await alice.as.sb.from(NOTES).update({ colour: "red" }).eq("id", mine[0]!);
    expect([unknown.status, unknown.error?.code]).toEqual([400, "PGRST204"]);
    const check = await alice.as.sb.from(NOTES).update({ rank: -5 }).eq("id", mine[0]!);
    expect([check.status, check.error?.code]).toEqual([400, "23514"]);
    const empty = await alice.as.sb.from(NOTES).update({}).eq("id", mine[0]!);
    expect(empty).toMatchObject({ status: 204, error: null });
    expect(alice.as.last().headers.get("content-range")).toBe("*/*");
    expect((await stored([mine[0]!]))[0]).toMatchObject({ rank: 1, label: "renamed" });
  });

  it("anon cannot update: 401", async () => {
    const res = await anon().sb.from(NOTES).update({ body: "anon" }).eq("id", mine[0]!);
    expect([res.status, res.error?.code]).toEqual([401, "42501"]);
  });
});

describe("DELETE", () => {
  it("deletes the filtered rows (204), returns them with .select() (200) and counts them", async () => {
    const [a, b, c] = [id(), id(), id()];
    await alice.as.sb.from(NOTES).insert([{ id: a, body: "del" }, { id: b, body: "del" }, { id: c, body: "del" }]);

    const plain = await alice.as.sb.from(NOTES).delete().eq("id", a);
    expect(plain).toMatchObject({ status: 204, data: null, error: null });
    expect(alice.as.last().method).toBe("DELETE");
    expect(alice.as.last().headers.get("content-range")).toBe("*/*");

    const shown = await alice.as.sb.from(NOTES).delete({ count: "exact" }).in("id", [b, c]).select("id").order("id");
    expect(shown).toMatchObject({ status: 200, count: 2, data: [{ id: b }, { id: c }], error: null });
    expect(alice.as.last().headers.get("content-range")).toBe("*/2");
    expect(await stored([a, b, c])).toEqual([]);
  });

  it("another user's rows cannot be deleted: 0 rows, nothing gone", async () => {
    const noteId = id();
    await alice.as.sb.from(NOTES).insert({ id: noteId, body: "keep" });
    const res = await bob.as.sb.from(NOTES).delete().eq("id", noteId).select();
    expect(res).toMatchObject({ status: 200, data: [], error: null });
    const unfiltered = await bob.as.sb.from(NOTES).delete({ count: "exact" }).gte("id", 0);
    expect(unfiltered).toMatchObject({ status: 204, count: 0, error: null });
    expect(bob.as.last().headers.get("content-range")).toBe("*/0");
    expect(await stored([noteId])).toHaveLength(1);
  });
});

describe("GET: filters, order, ranges, counts", () => {
  let ids: number[];
  const read = () => alice.as.sb.from(NOTES).select("id").in("id", ids);
  const got = (res: { data: { id: number }[] | null; error: unknown }) => {
    expect(res.error).toBeNull();
    return res.data!.map((r) => r.id);
  };

  beforeAll(async () => {
    ids = [id(), id(), id(), id(), id()];
    const sql = adminSql();
    await sql`insert into public.zz_rest_notes (id, owner, body, rank, label, tags, board_id, created_at) values
      (${ids[0]!}, ${alice.id}, 'alpha one',   1, 'work', '{red,blue}', 1, '2026-11-01T09:00:00Z'),
      (${ids[1]!}, ${alice.id}, 'Beta TWO',    2, null,   '{red}',      2, '2026-11-02T09:00:00Z'),
      (${ids[2]!}, ${alice.id}, 'gamma three', 3, 'home', '{}',         null, '2026-11-03T09:00:00Z'),
      (${ids[3]!}, ${alice.id}, 'delta two',   1, 'work', '{blue}',     1, '2026-11-04T09:00:00Z'),
      (${ids[4]!}, ${bob.id},   'bob two',     1, 'work', '{red}',      1, '2026-11-02T10:00:00Z')`;
  });

  it("eq, neq, gt, gte, lt, lte, in, is (null, not null, true/false)", async () => {
    expect(got(await read().eq("rank", 1).order("id"))).toEqual([ids[0], ids[3]]);
    expect(got(await read().neq("rank", 1).order("id"))).toEqual([ids[1], ids[2]]);
    expect(got(await read().gt("rank", 1).lte("rank", 3).order("id"))).toEqual([ids[1], ids[2]]);
    expect(got(await read().gte("rank", 2).lt("rank", 3))).toEqual([ids[1]]);
    expect(got(await read().in("label", ["work", "home"]).order("id"))).toEqual([ids[0], ids[2], ids[3]]);
    expect(got(await read().is("label", null))).toEqual([ids[1]]);
    expect(got(await read().not("label", "is", null).order("id"))).toEqual([ids[0], ids[2], ids[3]]);
    expect(alice.as.last().url.searchParams.get("label")).toBe("not.is.null");
  });

  it("like and ilike, with % or PostgREST's *", async () => {
    expect(got(await read().like("body", "%two").order("id"))).toEqual([ids[3]]);
    expect(got(await read().ilike("body", "%two%").order("id"))).toEqual([ids[1], ids[3]]);
    expect(got(await read().ilike("body", "*TWO").order("id"))).toEqual([ids[1], ids[3]]);
    expect(got(await read().not("body", "like", "*o*").order("id"))).toEqual([ids[1], ids[2]]);
  });

  it("cs and cd on arrays, not.<op>", async () => {
    expect(got(await read().contains("tags", ["red"]).order("id"))).toEqual([ids[0], ids[1]]);
    expect(alice.as.last().url.searchParams.get("tags")).toBe("cs.{red}");
    expect(got(await read().containedBy("tags", ["red"]).order("id"))).toEqual([ids[1], ids[2]]);
    expect(got(await read().not("rank", "in", "(1,2)"))).toEqual([ids[2]]);
    expect(got(await read().not("rank", "eq", 1).order("id"))).toEqual([ids[1], ids[2]]);
  });

  it("or=(…) with nested and(…), and time ranges as the activity filters send them", async () => {
    expect(got(await read().or("rank.eq.3,body.ilike.*beta*").order("id"))).toEqual([ids[1], ids[2]]);
    expect(alice.as.last().url.searchParams.get("or")).toBe("(rank.eq.3,body.ilike.*beta*)");
    expect(got(await read().or("label.is.null,and(rank.eq.1,tags.cs.{blue})").order("id"))).toEqual([ids[0], ids[1], ids[3]]);
    expect(got(await read().or('label.in.("work","x,y"),rank.gt.2').order("id"))).toEqual([ids[0], ids[2], ids[3]]);
    expect(got(await read().gte("created_at", "2026-11-02T00:00:00+00:00").lt("created_at", "2026-11-04T00:00:00Z").order("id"))).toEqual([ids[1], ids[2]]);
    expect(got(await read().or("created_at.lt.2026-11-02T00:00:00+00:00,created_at.gte.2026-11-04T00:00:00+00:00").order("id"))).toEqual([ids[0], ids[3]]);
    const bad = await read().or("rank.eq.1,oops");
    expect([bad.status, bad.error?.code]).toEqual([400, "PGRST100"]);
  });

  it("orders by several columns with directions and nulls placement", async () => {
    const res = await read().order("label", { ascending: false, nullsFirst: false }).order("id", { ascending: false });
    expect(alice.as.last().url.searchParams.get("order")).toBe("label.desc.nullslast,id.desc");
    expect(got(res)).toEqual([ids[3], ids[0], ids[2], ids[1]]);
    const nullsFirst = await read().order("label", { nullsFirst: true }).order("id");
    expect(got(nullsFirst)).toEqual([ids[1], ids[2], ids[0], ids[3]]);
  });

  it("count=exact with a range: 206 and Content-Range 0-24/100; limit/offset; HEAD counts", async () => {
    const page = await alice.as.sb.from(EVENTS).select("*", { count: "exact" }).order("id").range(0, 24);
    expect(page).toMatchObject({ status: 206, count: 100, error: null });
    expect(page.data).toHaveLength(25);
    const sent = alice.as.last();
    expect([sent.url.searchParams.get("offset"), sent.url.searchParams.get("limit")]).toEqual(["0", "25"]);
    expect(sent.headers.get("content-range")).toBe("0-24/100");
    expect(sent.headers.get("preference-applied")).toBe("count=exact");

    const later = await alice.as.sb.from(EVENTS).select("id", { count: "exact" }).eq("kind", "even").order("id").range(40, 59);
    expect(later).toMatchObject({ status: 206, count: 50 });
    expect(later.data!.map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => 82 + 2 * i));
    expect(alice.as.last().headers.get("content-range")).toBe("40-49/50");

    const all = await alice.as.sb.from(EVENTS).select("id", { count: "exact" }).lte("id", 3);
    expect(all).toMatchObject({ status: 200, count: 3 });
    expect(alice.as.last().headers.get("content-range")).toBe("0-2/3");

    const head = await alice.as.sb.from(EVENTS).select("id", { count: "exact", head: true }).gte("at", "2026-11-03T00:00:00Z");
    expect(head).toMatchObject({ status: 200, count: 53, data: null, error: null });
    expect(alice.as.last().method).toBe("HEAD");

    const none = await alice.as.sb.from(EVENTS).select("id", { count: "exact" }).eq("kind", "none");
    expect(none).toMatchObject({ status: 200, count: 0, data: [] });
    expect(alice.as.last().headers.get("content-range")).toBe("*/0");
    const plain = await alice.as.sb.from(EVENTS).select("id").order("id").limit(2);
    expect(plain).toMatchObject({ status: 200, count: null, data: [{ id: 1 }, { id: 2 }] });
    expect(alice.as.last().headers.get("content-range")).toBe("0-1/*");
  });

  it("an offset beyond the count is 416 PGRST103", async () => {
    const res = await alice.as.sb.from(EVENTS).select("id", { count: "exact" }).range(200, 209);
    expect(res.status).toBe(416);
    expect(res.error).toEqual({ code: "PGRST103", message: "Requested range not satisfiable", details: "An offset of 200 was requested, but there are only 100 rows.", hint: null });
    expect(alice.as.last().headers.get("content-range")).toBe("*/100");
  });

  it("honours the Range header on GET, intersected with limit/offset", async () => {
    const ranged = await rest(`/${EVENTS}?select=id&order=id`, { token: alice.token, headers: { Range: "10-14", "Range-Unit": "items", Prefer: "count=exact" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe("10-14/100");
    expect(await ranged.json()).toEqual([11, 12, 13, 14, 15].map((n) => ({ id: n })));

    const open = await rest(`/${EVENTS}?select=id&order=id`, { token: alice.token, headers: { Range: "98-" } });
    expect(open.headers.get("content-range")).toBe("98-99/*");
    const limited = await rest(`/${EVENTS}?select=id&order=id&limit=2`, { token: alice.token, headers: { Range: "0-5" } });
    expect(await limited.json()).toEqual([{ id: 1 }, { id: 2 }]);

    const backwards = await rest(`/${EVENTS}?select=id`, { token: alice.token, headers: { Range: "5-2" } });
    expect(backwards.status).toBe(416);
    expect(await backwards.json()).toMatchObject({ code: "PGRST103", details: "The lower boundary must be lower than or equal to the upper boundary in the Range header." });
  });

  it(".single() needs exactly one row (406 PGRST116 otherwise); .maybeSingle() allows none", async () => {
    const one = await read().eq("id", ids[0]!).single();
    expect(one).toMatchObject({ status: 200, data: { id: ids[0] }, error: null });
    const none = await read().eq("id", -1).single();
    expect(none.status).toBe(406);
    expect(none.error).toEqual({ code: "PGRST116", message: "Cannot coerce the result to a single JSON object", details: "The result contains 0 rows", hint: null });
    const maybe = await read().eq("id", -1).maybeSingle();
    expect(maybe).toMatchObject({ status: 200, data: null, error: null });
    const several = await read().maybeSingle();
    expect(several.error).toMatchObject({ code: "PGRST116" });
  });

  it("RLS decides what a read sees: bob's row is not alice's, anon sees nothing", async () => {
    expect(got(await alice.as.sb.from(NOTES).select("id").eq("id", ids[4]!))).toEqual([]);
    expect(got(await bob.as.sb.from(NOTES).select("id").in("id", ids))).toEqual([ids[4]]);
    expect(got(await anon().sb.from(NOTES).select("id").in("id", ids))).toEqual([]);
  });

  it("embeds a to-one foreign key as an object (or null), nested in the select", async () => {
    const res = await read().select("id, board:zz_rest_boards(id, name)").order("id").limit(3);
    expect(res.data).toEqual([
      { id: ids[0], board: { id: 1, name: "Inbox" } },
      { id: ids[1], board: { id: 2, name: "Archive" } },
      { id: ids[2], board: null },
    ]);
    const bare = await alice.as.sb.from(NOTES).select("*, zz_rest_boards(*)").eq("id", ids[1]!).single();
    expect(bare.data).toMatchObject({ id: ids[1], body: "Beta TWO", zz_rest_boards: { id: 2, name: "Archive" } });
  });

  it("answers relationships it cannot resolve like PostgREST, and what it does not implement with 501", async () => {
    const none = await alice.as.sb.from(NOTES).select("id, zz_rest_events(id)");
    expect(none.status).toBe(400);
    expect(none.error).toMatchObject({ code: "PGRST200", message: "Could not find a relationship between 'zz_rest_notes' and 'zz_rest_events' in the schema cache" });

    // The ledger's ids are plain references, not foreign keys: PostgREST cannot embed them either.
    const ledger = await alice.as.sb.from("operations").select("id, agents(name)");
    expect([ledger.status, ledger.error?.code]).toEqual([400, "PGRST200"]);

    const toMany = await alice.as.sb.from(BOARDS).select("name, zz_rest_notes(id)");
    expect(toMany.status).toBe(501);
    expect(toMany.error).toMatchObject({ code: "SBSTANDIN", message: expect.stringContaining("not supported by the local PostgREST stand-in") });
    const planned = await alice.as.sb.from(NOTES).select("id", { count: "planned" });
    expect(planned.status).toBe(501);
    const upsert = await alice.as.sb.from(NOTES).upsert({ id: ids[0], body: "upserted" });
    expect(upsert.status).toBe(501);
    expect(alice.as.last().headers.get("x-switchboard-standin")).toBe("postgrest");
    expect((await stored([ids[0]!]))[0]).toMatchObject({ body: "alpha one" });
  });
});

describe("the real schema: agents are written directly, RPC-only tables refuse", () => {
  let owner: Person;
  let member: Person;
  let stranger: Person;
  let teamId: string;

  beforeAll(async () => {
    [owner, member, stranger] = await Promise.all([person("owner"), person("member"), person("stranger")]);
    const team = await owner.as.sb.rpc("create_workspace", { p_name: `REST ${randomUUID().slice(0, 6)}` });
    expect(team.error).toBeNull();
    teamId = team.data.id;
    const invite = await owner.as.sb.rpc("invite_workspace_member", { p_workspace_id: teamId, p_email: member.email, p_role: "member" });
    expect(invite.error).toBeNull();
    const accepted = await member.as.sb.rpc("accept_workspace_invitation", { p_token: invite.data.token });
    expect(accepted.error).toBeNull();
  });

  const agentRow = async (agentId: string) =>
    (await adminSql()`select name, user_id, workspace_id, is_active, disabled_by from public.agents where id = ${agentId}`)[0];

  it("from('agents').insert works as the README says: the caller's agent in their personal workspace", async () => {
    const res = await member.as.sb.from("agents").insert({ name: "Inserted directly" }).select("id, name, user_id, workspace_id, is_active").single();
    expect(res).toMatchObject({ status: 201, error: null });
    const personal = await member.as.sb.from("workspaces").select("id").eq("personal", true).single();
    expect(res.data).toEqual({ id: expect.any(String), name: "Inserted directly", user_id: member.id, workspace_id: personal.data!.id, is_active: true });
  });

  it("a member adds an agent in the team; an admin can disable it and the member cannot enable it again", async () => {
    const created = await member.as.sb.from("agents").insert({ name: "Team helper", workspace_id: teamId }).select("id, workspace_id, user_id").single();
    expect(created).toMatchObject({ status: 201, data: { workspace_id: teamId, user_id: member.id } });
    const agentId = created.data!.id as string;

    const disabled = await owner.as.sb.from("agents").update({ is_active: false }).eq("id", agentId);
    expect(disabled).toMatchObject({ status: 204, error: null });
    expect(owner.as.last().headers.get("content-range")).toBe("0-0/*");
    expect(await agentRow(agentId)).toMatchObject({ is_active: false, disabled_by: owner.id });

    const reenabled = await member.as.sb.from("agents").update({ is_active: true }).eq("id", agentId);
    expect(reenabled.status).toBe(403);
    expect(reenabled.error).toMatchObject({ code: "42501", message: "this agent was disabled by an admin; only an admin can enable it again" });
    expect(await agentRow(agentId)).toMatchObject({ is_active: false });

    // The member may rename it (a granted column), not re-assign it (no column grant).
    expect((await member.as.sb.from("agents").update({ name: "Renamed" }).eq("id", agentId)).status).toBe(204);
    const reassigned = await member.as.sb.from("agents").update({ user_id: owner.id }).eq("id", agentId);
    expect([reassigned.status, reassigned.error?.code, reassigned.error?.message]).toEqual([403, "42501", "permission denied for table agents"]);
    expect(await agentRow(agentId)).toMatchObject({ name: "Renamed", user_id: member.id });
  });

  it("a member cannot touch the owner's agent, a stranger cannot touch the team's: 0 rows", async () => {
    const created = await owner.as.sb.from("agents").insert({ name: "Owner's", workspace_id: teamId }).select("id").single();
    const agentId = created.data!.id as string;
    for (const intruder of [member, stranger]) {
      const updated = await intruder.as.sb.from("agents").update({ name: "pwned", is_active: false }).eq("id", agentId).select("id");
      expect(updated).toMatchObject({ status: 200, data: [], error: null });
      const deleted = await intruder.as.sb.from("agents").delete().eq("id", agentId);
      expect(deleted).toMatchObject({ status: 204, error: null });
      expect(intruder.as.last().headers.get("content-range")).toBe("*/*");
    }
    expect(await agentRow(agentId)).toMatchObject({ name: "Owner's", is_active: true });

    // A stranger cannot add an agent to the team either.
    const smuggled = await stranger.as.sb.from("agents").insert({ name: "Smuggled", workspace_id: teamId });
    expect([smuggled.status, smuggled.error?.code]).toEqual([403, "42501"]);
    expect(await adminSql()`select 1 from public.agents where workspace_id = ${teamId} and name = 'Smuggled'`).toHaveLength(0);
  });

  it("anon cannot insert an agent (401); connections are written through RPCs only (403 permission denied)", async () => {
    const asAnon = await anon().sb.from("agents").insert({ name: "anon" });
    expect(asAnon.status).toBe(401);
    expect(asAnon.error).toEqual({ code: "42501", details: null, hint: null, message: "permission denied for table agents" });

    const connection = await owner.as.sb.from("connections").insert({ name: "direct", workspace_id: teamId });
    expect(connection.status).toBe(403);
    expect(connection.error).toMatchObject({ code: "42501", message: "permission denied for table connections" });
    const grant = await owner.as.sb.from("agent_permissions").update({ daily_send_limit: 1_000_000 }).eq("workspace_id", teamId);
    expect([grant.status, grant.error?.code]).toEqual([403, "42501"]);
  });

  it("service_role writes past RLS, as on Supabase", async () => {
    const res = await service().sb.from("agents").insert({ name: "By the service", workspace_id: teamId, user_id: member.id }).select("name, user_id").single();
    expect(res).toMatchObject({ status: 201, data: { name: "By the service", user_id: member.id } });
    const embedded = await owner.as.sb.from("agents").select("name, workspace:workspaces(name)").eq("workspace_id", teamId).eq("name", "By the service").single();
    expect(embedded.data).toMatchObject({ name: "By the service", workspace: { name: expect.stringMatching(/^REST /) } });
  });
});
