/**
 * The provider reconciler (docs/operations.md, "The reconciler"): a service-only route,
 * POST /<function>/reconcile, run every few minutes by pg_cron through pg_net. It asks
 * the provider about the send calls that were closed as `unknown` because no outcome was
 * recorded before the deadline, and records each answer in SQL, which decides:
 *   found                            → succeeded (or partial), quota kept
 *   not found, whole window searched → failed once the grace period is over, quota given back
 *   anything else (provider trouble, a window too busy to read) → stays unknown, asked again
 * A provider failure never fails the batch: that call stays unknown.
 */
import { isServiceRequest } from "./auth.ts";
import { asService } from "./db.ts";
import { ApiError } from "./errors.ts";
import { json, logFailure, methodNotAllowed } from "./http.ts";
import { networkPolicy } from "./tool-call.ts";
import type { NetworkPolicy, ProviderName } from "./tools/types.ts";

/** One call to ask about, as private.operations_to_reconcile lists it. */
export interface ReconcileItem {
  operation_id: string;
  capability_key: string;
  recipients: string[];
  recipient_count: number;
  created_at: string;
  /** ISO timestamps: when the provider can have accepted the call's messages. */
  window_from: string;
  window_to: string;
  /** From when a whole-window search that finds nothing is conclusive; null: never (scheduled send). */
  conclusive_after: string | null;
  connection_id: string;
  config: Record<string, unknown>;
  credentials: Record<string, string>;
}

/** What the provider's history holds for one call. */
export interface ProviderSearchResult {
  messages: Array<{ message_id: string; to: string }>;
  /** Every page of the window was read (or every recipient found). */
  complete: boolean;
}

/** Asks the provider about one call; built from the stored connection like every other route. */
export type ProviderAsker = (
  item: ReconcileItem,
  connection: { credentials: Record<string, string>; config: Record<string, unknown>; network: NetworkPolicy },
  options: { deadline: number },
) => Promise<ProviderSearchResult>;

/** Calls asked about per run (oldest never-asked first). */
const BATCH_SIZE = 50;
/** Calls asked at once. */
const CONCURRENCY = 4;
/** No new question is started after this long: the run ends well inside pg_net's 60 s and a function's wall clock. */
const RUN_BUDGET_MS = 45_000;

export interface ReconcileSummary {
  /** Calls listed. */
  checked: number;
  /** Settled as sent (succeeded, or partial once conclusive). */
  found: number;
  /** Settled as never sent (failed, quota given back). */
  not_found: number;
  /** Still unknown: not conclusive yet, provider trouble, or not asked before the run's budget ran out. */
  still_unknown: number;
  /** Settled by someone else between listing and answering (left alone). */
  skipped: number;
}

type Answer = { answer: "found" | "not_found" | "unavailable"; messages: ProviderSearchResult["messages"]; note: string | null };

async function ask(item: ReconcileItem, asker: ProviderAsker, deadline: number): Promise<Answer> {
  try {
    const result = await asker(item, { credentials: item.credentials, config: item.config, network: networkPolicy() }, { deadline });
    if (result.messages.length > 0) return { answer: "found", messages: result.messages, note: null };
    if (result.complete) return { answer: "not_found", messages: [], note: null };
    return { answer: "unavailable", messages: [], note: "the search window could not be read to its end within the run's bounds" };
  } catch (error) {
    // Provider trouble, or a stored config the rules now refuse: ask again next run.
    const message = error instanceof Error ? error.message : "the provider could not be asked";
    return { answer: "unavailable", messages: [], note: message.slice(0, 300) };
  }
}

/** Handles POST /<function>/reconcile for one provider. */
export async function handleReconcile(req: Request, functionName: string, provider: ProviderName, asker: ProviderAsker): Promise<Response> {
  if (req.method !== "POST") throw methodNotAllowed(req.method, ["POST"]);
  if (!isServiceRequest(req)) {
    const presented = req.headers.has("authorization") || req.headers.has("apikey");
    if (!presented) throw new ApiError("unauthorized", "the service key is required");
    throw new ApiError("permission_denied", "only the service key can run the reconciler");
  }
  const started = Date.now();
  const deadline = started + RUN_BUDGET_MS;
  const [{ items }] = await asService()<[{ items: ReconcileItem[] }]>`
    select private.operations_to_reconcile(${provider}, ${BATCH_SIZE}) as items`;
  const summary: ReconcileSummary = { checked: items.length, found: 0, not_found: 0, still_unknown: 0, skipped: 0 };

  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      if (Date.now() >= deadline) {
        summary.still_unknown++; // not asked this run; first in line next run
        continue;
      }
      const { answer, messages, note } = await ask(item, asker, deadline);
      try {
        const sql = asService();
        const [{ result }] = await sql<[{ result: { ok: boolean; status: string | null } }]>`
          select private.record_provider_reconciliation(
            ${item.operation_id}::uuid, ${provider}, ${answer}, ${sql.json(messages as never)}::jsonb, ${note}) as result`;
        if (!result.ok) summary.skipped++;
        else if (result.status === "succeeded" || result.status === "partial") summary.found++;
        else if (result.status === "failed") summary.not_found++;
        else summary.still_unknown++;
      } catch (error) {
        // Not recorded: the call stays unknown and is asked again next run.
        summary.still_unknown++;
        logFailure(`/${functionName}/reconcile`, error,
          new ApiError("service_unavailable", "reconciliation answer not recorded", { operation_id: item.operation_id }));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, Math.max(items.length, 1)) }, worker));
  return json({ ...summary, duration_ms: Date.now() - started });
}
