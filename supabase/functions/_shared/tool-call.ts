/**
 * One tool call, end to end (README, "One tool call"), shared by the provider functions, the
 * agent-tools function and the MCP server — there is no second implementation:
 *   validate input → begin (one round trip) → provider → finish (one round trip).
 */
import type { Caller } from "./auth.ts";
import { sha256Hex } from "./auth.ts";
import { asService, isDatabaseUnavailable } from "./db.ts";
import { env, functionsBaseUrl, isHostedSupabase } from "./env.ts";
import { ApiError, type ErrorCode, isErrorCode } from "./errors.ts";
import { z } from "zod";
import { IDEMPOTENCY_KEY_ARGUMENT, parseIdempotencyKey } from "./idempotency.ts";
import { ACCOUNT_ARGUMENT, DRY_RUN_ARGUMENT } from "./tool-schemas.ts";
import { logFailure, zodIssues } from "./http.ts";
import { canFailOver } from "./providers/transport.ts";
import { ProviderError, type ReadResult, type SendResult } from "./providers/types.ts";
import type { NetworkPolicy, ProviderName, ToolDefinition } from "./tools/types.ts";

export interface CallTarget {
  /** The account to use when the caller has more than one of the provider. */
  connectionId?: string | null;
  /** A prefix of the connection id (tool-name suffix). */
  connectionRef?: string | null;
  idempotencyKey?: string | null;
}

/** The account a call runs on: what begin (and a failover) answers. */
interface AccountResult {
  provider?: string;
  credentials?: Record<string, string>;
  config?: Record<string, unknown>;
  sender?: string | null;
  /** Where the provider reports this send's status: a path under the functions' URL. */
  status_callback?: string | null;
}

/** Accounts a channel send may move on to after the first (a route holds at most 10). */
const MAX_FAILOVERS = 9;

/**
 * Records a failed attempt and moves the send to its route's next account
 * (private.fail_over_tool_call); the next account, or null when none takes it.
 */
async function failOver(operationId: string, error: ProviderError, durationMs: number): Promise<AccountResult | null> {
  const [{ result }] = await asService()<[{ result: AccountResult & { ok: boolean } }]>`
    select private.fail_over_tool_call(${operationId}::uuid, ${error.kind}, ${error.message.slice(0, 1000)},
      ${typeof error.details.status === "number" ? error.details.status : null}::integer,
      ${error.details.provider_code === undefined ? null : String(error.details.provider_code)}, ${durationMs}::integer) as result`;
  return result.ok ? result : null;
}

interface BeginResult extends AccountResult {
  ok: boolean;
  replay?: boolean;
  operation_id?: string;
  status?: string;
  response?: Record<string, unknown> | null;
  error?: { code: string; message: string; details: unknown } | null;
}

/**
 * The network rules for destinations users control, in this deployment (README,
 * "Security model"). Only the local stack allows private networks and custom provider hosts.
 */
export function networkPolicy(): NetworkPolicy {
  const configuredPorts = env("SWITCHBOARD_BLOCKED_SMTP_PORTS");
  return {
    allowPrivateNetworks: env("SWITCHBOARD_ALLOW_PRIVATE_NETWORKS") === "true",
    allowCustomProviderHosts: env("SWITCHBOARD_ALLOW_CUSTOM_PROVIDER_HOSTS") === "true",
    blockedSmtpPorts: configuredPorts !== undefined
      ? configuredPorts.split(",").map((p) => Number(p.trim())).filter(Number.isInteger)
      : isHostedSupabase() ? [25, 587] : [],
  };
}

/** The public URL of a status-callback path begin returned, when the functions' URL is known. */
function statusCallbackUrl(path: string | null | undefined): string | undefined {
  const base = functionsBaseUrl();
  return path && base ? `${base}/${path}` : undefined;
}

/** Stable JSON (sorted keys) so equal requests hash equally for idempotency. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function callerIdentity(caller: Caller) {
  switch (caller.mode) {
    case "agent_key":
      return { user: null, agent: null, keyHash: caller.agentKeyHash };
    case "user":
      return { user: caller.userId, agent: null, keyHash: null };
    default:
      return { user: caller.userId, agent: caller.agentId, keyHash: null };
  }
}

/** A provider's failure in the public envelope: 502 for a refusal, 503/504 when it is unavailable. */
export function providerFailure(error: ProviderError): ApiError {
  const permanent = ["auth", "forbidden", "insufficient_funds", "invalid", "too_large", "not_found", "permanent"].includes(error.kind);
  if (permanent) return new ApiError("provider_error", error.message, error.details);
  return new ApiError("provider_unavailable", error.message, error.details, error.kind === "timeout" ? 504 : 503);
}

/** The same error with the operation id added to its details, so callers can find the log row. */
function withOperation(error: ApiError, operationId: string): ApiError {
  const details = error.details && typeof error.details === "object" ? error.details : {};
  return new ApiError(error.code, error.message, { ...details, operation_id: operationId }, error.status);
}

function isSendResult(result: SendResult | ReadResult): result is SendResult {
  return "sentCount" in result;
}

interface Outcome {
  status: "succeeded" | "partial" | "failed" | "unknown";
  sent?: number;
  ids?: string[];
  response?: unknown;
  error?: ApiError;
  durationMs: number;
}

/** Pauses between finish attempts: about 2 s in all, well inside a function's budget. */
const FINISH_BACKOFF_MS = [150, 500, 1_200];

function recordOutcome(operationId: string, outcome: Outcome) {
  const sql = asService();
  return sql`
    select private.finish_tool_call(
      ${operationId}::uuid, ${outcome.status}, ${outcome.sent ?? 0}, ${outcome.ids ?? []}::text[],
      ${outcome.response === undefined ? null : sql.json(outcome.response as never)}::jsonb,
      ${outcome.error?.code ?? null}, ${outcome.error?.message ?? null},
      ${outcome.error?.details === undefined ? null : sql.json(outcome.error.details as never)}::jsonb,
      ${outcome.durationMs})`;
}

/**
 * Records the outcome, retrying (bounded, with backoff) while the database is
 * unavailable: finish is idempotent, so a retry after a lost answer is harmless. If it
 * still cannot be recorded, the caller is told what the provider said and that the
 * outcome is not on record, never a bare internal error: the operation stays pending
 * until the reconciler closes it as unknown, and a keyed retry then replays that.
 */
async function finish(operationId: string, outcome: Outcome): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await recordOutcome(operationId, outcome);
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || attempt >= FINISH_BACKOFF_MS.length) {
        logFailure("tool-call/finish", error, new ApiError("service_unavailable", "finish failed", { operation_id: operationId }));
        throw outcomeNotRecorded(operationId, outcome);
      }
      await new Promise((resolve) => setTimeout(resolve, FINISH_BACKOFF_MS[attempt]));
    }
  }
}

function outcomeNotRecorded(operationId: string, outcome: Outcome): ApiError {
  const accepted = outcome.status === "succeeded" || outcome.status === "partial";
  const providerSaid = accepted
    ? "The provider accepted the message"
    : outcome.status === "unknown"
    ? "The message may have been sent"
    : "The provider refused the message";
  return new ApiError(
    "service_unavailable",
    `${providerSaid}, but its outcome could not be recorded. Do not resend it: retry with the same ` +
      "idempotency key, or look up the operation, to learn its recorded outcome.",
    {
      operation_id: operationId,
      outcome: "not_recorded",
      may_have_been_sent: outcome.status !== "failed",
      provider_status: outcome.status,
      ...(accepted ? { provider_message_ids: outcome.ids ?? [] } : {}),
    },
  );
}

/** Takes one named argument out of a tool call's arguments, leaving the rest for the tool's schema. */
function takeArgument(rawArgs: unknown, name: string): { toolArgs: unknown; found: boolean; value?: unknown } {
  if (!rawArgs || typeof rawArgs !== "object" || Array.isArray(rawArgs) || !Object.hasOwn(rawArgs, name)) {
    return { toolArgs: rawArgs, found: false };
  }
  const { [name]: value, ...toolArgs } = rawArgs as Record<string, unknown>;
  return { toolArgs, found: true, value };
}

/**
 * Takes a send tool's `idempotency_key` argument out of its arguments: it steers the
 * call exactly like the Idempotency-Key header and is never passed to the provider.
 * Given both ways, they must agree.
 */
function splitIdempotencyKey(tool: ToolDefinition, rawArgs: unknown, fromRequest: string | null) {
  if (!tool.sendsMessages) return { toolArgs: rawArgs, idempotencyKey: fromRequest };
  const { toolArgs, found, value } = takeArgument(rawArgs, IDEMPOTENCY_KEY_ARGUMENT);
  if (!found) return { toolArgs, idempotencyKey: fromRequest };
  const fromArgument = parseIdempotencyKey(value);
  if (fromRequest && fromArgument && fromRequest !== fromArgument) {
    throw new ApiError("invalid_request", "the Idempotency-Key header and the idempotency_key argument differ; send one");
  }
  return { toolArgs, idempotencyKey: fromRequest ?? fromArgument };
}

/** What private.dry_run_tool_call answers. */
interface DryRunVerdict {
  dry_run: true;
  allowed: boolean;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  [key: string]: unknown;
}

/** What to do about a refusal, by its stable reason code (details.reason, else the error code). */
const DRY_RUN_HINTS: Record<string, string> = {
  quota_exceeded: "Wait until the limit resets (details.resets_at), or ask the member for a higher limit.",
  recipient_not_allowed: "That recipient is outside the recipients this agent may reach; ask the member to allow it.",
  recipient_limit: "Split the recipients into smaller messages.",
  scope: "Ask the member to grant the scope this tool needs.",
  no_grant: "This agent holds no grant on such an account; ask the member for one.",
  no_usable_account: "None of this agent's accounts can take this send now (revoked, expired, disabled, or not allowed to send).",
  ambiguous_connection: "Name one of the listed accounts with the account argument.",
  sender_not_allowed: "Omit from to send from your default number, or use one of your numbers.",
  no_sender_number: "No number on this account is one this member may send from; ask an admin to assign one.",
  member_cannot_send: "The member this agent acts for may not send on this account.",
  agent_disabled: "The agent is disabled.",
  revoked: "The grant was revoked.",
  expired: "The grant expired.",
  idempotency_key_used: "Use a new idempotency key for a new message.",
  idempotency_key_in_flight: "Wait for the first call with this key to finish.",
};

function withHint(verdict: DryRunVerdict): Record<string, unknown> {
  if (verdict.allowed || !verdict.error) return verdict;
  const reason = String(verdict.error.details?.reason ?? verdict.error.code);
  return { ...verdict, reason, ...(DRY_RUN_HINTS[reason] ? { hint: DRY_RUN_HINTS[reason] } : {}) };
}

/** Takes a send tool's `dry_run` argument out of its arguments (true: check, do not send). */
function splitDryRun(tool: ToolDefinition, rawArgs: unknown) {
  if (!tool.sendsMessages) return { toolArgs: rawArgs, dryRun: false };
  const { toolArgs, found, value } = takeArgument(rawArgs, DRY_RUN_ARGUMENT);
  if (!found) return { toolArgs, dryRun: false };
  if (value !== null && typeof value !== "boolean") {
    throw new ApiError("invalid_request", "dry_run must be true or false", { field: DRY_RUN_ARGUMENT });
  }
  return { toolArgs, dryRun: value === true };
}

/**
 * Takes a tool's `account` argument out of its arguments: the connection the call uses,
 * like the routes' `connection_id` body field. Given both ways, they must agree.
 */
function splitAccount(rawArgs: unknown, fromRequest: string | null) {
  const { toolArgs, found, value } = takeArgument(rawArgs, ACCOUNT_ARGUMENT);
  if (!found) return { toolArgs, account: fromRequest };
  if (value !== null && (typeof value !== "string" || !z.guid().safeParse(value).success)) {
    throw new ApiError("invalid_request", "account must be a connection id (a UUID)", { field: ACCOUNT_ARGUMENT });
  }
  if (fromRequest && value && fromRequest !== value) {
    throw new ApiError("invalid_request", "connection_id and the account argument differ; send one");
  }
  return { toolArgs, account: fromRequest ?? (value as string | null) };
}

/**
 * Validates, authorizes, calls the provider and records the outcome. Returns the
 * caller-facing result or throws ApiError in the documented envelope.
 */
export async function runTool(
  caller: Caller,
  tool: ToolDefinition,
  rawArgs: unknown,
  target: CallTarget = {},
): Promise<Record<string, unknown>> {
  if (tool.channel && target.connectionRef) {
    // Channel tools were never listed with account suffixes: they take the account argument.
    throw new ApiError("invalid_request", `${tool.capability} takes the account argument, not a name suffix`);
  }
  const { toolArgs: withDryRun, dryRun } = splitDryRun(tool, rawArgs ?? {});
  const { toolArgs: withAccount, idempotencyKey } = splitIdempotencyKey(tool, withDryRun, target.idempotencyKey ?? null);
  // A tool the database answers alone declares no account: its own schema refuses one.
  const { toolArgs, account: connectionId } = tool.answer
    ? { toolArgs: withAccount, account: null }
    : splitAccount(withAccount, target.connectionId ?? null);
  const parsed = tool.schema.safeParse(toolArgs);
  if (!parsed.success) {
    throw new ApiError("invalid_request", `invalid arguments for ${tool.capability}`, { issues: zodIssues(parsed.error) });
  }
  const args = parsed.data;
  if (tool.answer) return await tool.answer(callerIdentity(caller), args, asService());
  const recipients = tool.recipients(args);
  // A channel send that named its account stays on it (the ledger says it was named).
  const summary = { ...tool.summarize(args), ...(tool.channel && connectionId ? { account: connectionId } : {}) };
  const who = callerIdentity(caller);
  // Hashed without the key itself, so a key sent as a header or as an argument is the same request.
  const requestHash = idempotencyKey ? await sha256Hex(canonicalJson([tool.capability, toolArgs, connectionId])) : null;

  if (dryRun) {
    const [{ verdict }] = await asService()<[{ verdict: DryRunVerdict }]>`
      select private.dry_run_tool_call(
        p_capability => ${tool.capability},
        p_user_id => ${who.user}::uuid,
        p_agent_id => ${who.agent}::uuid,
        p_agent_key_hash => ${who.keyHash},
        p_connection_id => ${connectionId}::uuid,
        p_connection_ref => ${target.connectionRef ?? null},
        p_recipients => ${recipients}::text[],
        p_idempotency_key => ${idempotencyKey},
        p_request_hash => ${requestHash},
        p_request_summary => ${asService().json(summary as never)}::jsonb,
        p_auth_mode => ${caller.mode},
        p_sender => ${tool.sender?.(args) ?? null}
      ) as verdict`;
    return withHint(verdict);
  }

  const [{ result }] = await asService()<[{ result: BeginResult }]>`
    select private.begin_tool_call(
      p_capability => ${tool.capability},
      p_user_id => ${who.user}::uuid,
      p_agent_id => ${who.agent}::uuid,
      p_agent_key_hash => ${who.keyHash},
      p_connection_id => ${connectionId}::uuid,
      p_connection_ref => ${target.connectionRef ?? null},
      p_recipients => ${recipients}::text[],
      p_idempotency_key => ${idempotencyKey},
      p_request_hash => ${requestHash},
      p_request_summary => ${asService().json(summary as never)}::jsonb,
      p_auth_mode => ${caller.mode},
      p_sender => ${tool.sender?.(args) ?? null}
    ) as result`.catch((error: { code?: string; message?: string }) => {
      // Two calls with one key raced and the other one won: it is in flight.
      if (error.code === "PT409") throw new ApiError("conflict", error.message ?? "conflict", { retry_after: 1 });
      throw error;
    });

  if (!result.ok) {
    const error = result.error!;
    const code: ErrorCode = isErrorCode(error.code) ? error.code : "permission_denied";
    throw new ApiError(code, error.message, { ...(error.details as object ?? {}), operation_id: result.operation_id ?? null });
  }
  if (result.replay) {
    if (result.error) {
      const code: ErrorCode = isErrorCode(result.error.code) ? result.error.code : "provider_error";
      throw new ApiError(code, result.error.message, { ...(result.error.details as object ?? {}), operation_id: result.operation_id, replayed: true });
    }
    return { ...(result.response ?? {}), replayed: true };
  }

  const operationId = result.operation_id!;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let outcome: SendResult | ReadResult;
  let account: AccountResult = result;
  const failedOver: Array<{ provider: string | undefined; error_code: string }> = [];
  try {
    for (;;) {
      const attemptStarted = performance.now();
      try {
        outcome = await tool.execute({
          credentials: account.credentials ?? {},
          config: account.config ?? {},
          operationId,
          network: networkPolicy(),
          provider: account.provider as ProviderName | undefined,
          sender: account.sender ?? null,
          statusCallbackUrl: statusCallbackUrl(account.status_callback),
        }, args);
        break;
      } catch (error) {
        // A channel send the provider proved it did not take moves to the route's next account.
        if (!tool.channel || !canFailOver(error) || failedOver.length >= MAX_FAILOVERS) throw error;
        const next = await failOver(operationId, error as ProviderError, Math.round(performance.now() - attemptStarted))
          .catch((failure) => {
            // The send was provably not taken: without a next account it simply failed.
            logFailure("tool-call/fail-over", failure, new ApiError("service_unavailable", "fail over failed", { operation_id: operationId }));
            return null;
          });
        if (!next) throw error;
        failedOver.push({ provider: account.provider, error_code: (error as ProviderError).kind });
        account = next;
      }
    }
  } catch (error) {
    const base = error instanceof ProviderError
      ? providerFailure(error)
      : error instanceof ApiError
      ? error
      : new ApiError("provider_error", "the provider call failed unexpectedly");
    // A send that may have gone out keeps its quota and is never retried blindly.
    const maybeSent = error instanceof ProviderError ? error.maybeSent : !(error instanceof ApiError);
    const apiError = withOperation(base, operationId);
    await finish(operationId, { status: maybeSent ? "unknown" : "failed", error: apiError, durationMs: elapsed() });
    throw apiError;
  }

  const route = tool.channel ? { provider: account.provider, ...(failedOver.length ? { failed_over: failedOver } : {}) } : {};
  if (!isSendResult(outcome)) {
    const response = { ...outcome.data, operation_id: operationId, status: "succeeded" };
    await finish(operationId, { status: "succeeded", response, durationMs: elapsed() });
    return response;
  }

  // Recipients whose provider request failed mid-flight may have been sent: their quota is kept.
  const maybeSent = Number(outcome.data.maybe_sent_count ?? 0);
  const kept = outcome.sentCount + maybeSent;
  const status = outcome.sentCount === 0 && maybeSent === 0 ? "failed" : kept < recipients.length || maybeSent > 0 ? "partial" : "succeeded";
  // Provider data first: our operation id and status must not be shadowed by its fields.
  const response = {
    ...outcome.data,
    ...route,
    operation_id: operationId,
    status,
    sent: outcome.sentCount,
    failed: outcome.recipients.filter((r) => !r.ok).length,
    recipients: outcome.recipients,
    provider_message_ids: outcome.providerMessageIds,
  };
  if (status === "failed") {
    const apiError = new ApiError("provider_error", "the provider accepted none of the recipients", {
      operation_id: operationId,
      recipients: outcome.recipients,
    });
    await finish(operationId, { status, sent: 0, ids: outcome.providerMessageIds, response, error: apiError, durationMs: elapsed() });
    throw apiError;
  }
  await finish(operationId, { status, sent: kept, ids: outcome.providerMessageIds, response, durationMs: elapsed() });
  return response;
}
