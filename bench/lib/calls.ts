/**
 * The database calls of the functions' hot paths, exactly as they issue them
 * (supabase/functions/_shared/db.ts, tool-call.ts, tool-listing.ts): the same statements
 * and named arguments, on a connection of the functions' own login role, prepared. Used by
 * `npm run bench` (rows 1 and 14) and `npm run bench:compare`.
 */
import postgres, { type Sql } from "postgres";
import { functionsLoginUrl } from "../../packages/devstack/src/db.ts";

export const RECIPIENT = "+61412345678";
export const BODY = "Switchboard benchmark: your appointment is confirmed for 10:30 tomorrow.";

/**
 * How the functions connect (the stack gives them SWITCHBOARD_DB_URL as their own login
 * role, directly): switchboard_functions, whose sessions start as service_role, with
 * prepared statements.
 */
export function serviceConnection(dbUrl: string): Sql {
  return postgres(functionsLoginUrl(dbUrl), {
    max: 1,
    prepare: true,
    idle_timeout: 0,
    onnotice: () => {},
    connection: { application_name: "switchboard-bench:service_role" },
  });
}

const checkedLogins = new WeakSet<Sql>();

/**
 * One service step exactly as the functions run it (`step` in db.ts): the login role
 * starts as service_role with a statement_timeout within the deadline, so the statement
 * goes alone, in its own implicit transaction. Checked once per connection, so a
 * misconfigured role fails the bench instead of measuring something else.
 */
async function serviceStep<T extends readonly postgres.MaybeRow[]>(sql: Sql, build: (tx: Sql) => postgres.PendingQuery<T>): Promise<T> {
  if (!checkedLogins.has(sql)) {
    const [{ role, timeout }] = await sql`select current_user as role, current_setting('statement_timeout') as timeout`;
    if (role !== "service_role" || timeout === "0") throw new Error(`the functions' login role runs as ${role} with statement_timeout ${timeout}`);
    checkedLogins.add(sql);
  }
  return await build(sql);
}

/** The request summary of a one-recipient SMS, as the ClickSend function records it. */
export function smsSummary() {
  return { recipient_count: 1, body_length: BODY.length, segments: 1, encoding: "gsm7" };
}

/** What the ClickSend function answers for one accepted message. */
export function smsResponse(operationId: string, messageId: string) {
  return {
    operation_id: operationId,
    status: "succeeded",
    sent: 1,
    failed: 0,
    recipients: [{ to: RECIPIENT, ok: true, status: "SUCCESS", message_id: messageId }],
    provider_message_ids: [messageId],
  };
}

/** begin_tool_call for a one-recipient ClickSend SMS by the agent whose key hashes to keyHash; the operation id. */
export async function beginCall(sql: Sql, keyHash: string): Promise<string> {
  const [{ result }] = await serviceStep(sql, (tx) => tx`
    select private.begin_tool_call(
      p_capability => ${"clicksend_send_sms"},
      p_user_id => ${null}::uuid,
      p_agent_id => ${null}::uuid,
      p_agent_key_hash => ${keyHash},
      p_connection_id => ${null}::uuid,
      p_connection_ref => ${null},
      p_recipients => ${[RECIPIENT]}::text[],
      p_idempotency_key => ${null},
      p_request_hash => ${null},
      p_request_summary => ${tx.json(smsSummary())}::jsonb,
      p_auth_mode => ${"agent_key"},
      p_sender => ${null}
    ) as result`);
  if (!result.ok) throw new Error(`begin_tool_call refused: ${JSON.stringify(result.error)}`);
  return result.operation_id as string;
}

/** finish_tool_call for that SMS, accepted by the provider as messageId (response: what the function answered). */
export async function finishCall(sql: Sql, operationId: string, messageId: string,
  response: object = smsResponse(operationId, messageId)): Promise<void> {
  const [{ result }] = await serviceStep(sql, (tx) => tx`
    select private.finish_tool_call(
      ${operationId}::uuid, ${"succeeded"}, ${1}, ${[messageId]}::text[],
      ${tx.json(response as never)}::jsonb,
      ${null}, ${null}, ${null}::jsonb, ${12}) as result`);
  if (!result.ok) throw new Error(`finish_tool_call refused: ${JSON.stringify(result)}`);
}

/** The tool listing of the agent whose key hashes to keyHash, as entries (what agent-tools asks the database for). */
export async function listToolsCall(sql: Sql, keyHash: string, format = "openai"): Promise<unknown[]> {
  const [{ entries }] = await serviceStep(sql, (tx) => tx`
    select private.list_tools_for_caller(${null}::uuid, ${null}::uuid, ${keyHash}, ${format}, p_entries => true) as entries`);
  return entries as unknown[];
}

/**
 * What every change to an agent's rights does to its cached tool listing: bumps the
 * listing version of the agent's workspace. `admin` is the database's owner (the
 * functions' login role may not write the versions).
 */
export async function bumpListingVersion(admin: Sql, agentId: string): Promise<void> {
  await admin`update private.tool_listing_versions set version = version + 1
              where workspace_id = (select a.workspace_id from public.agents a where a.id = ${agentId}::uuid)`;
}
