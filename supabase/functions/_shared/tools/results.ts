/**
 * What a tool call answers: the result runTool returns (tool-call.ts), which is the body of
 * agent-tools' POST and MCP's `structuredContent`. These zod schemas are the single source
 * of every tool's output schema (generated into the database like the input schemas, and
 * listed to MCP clients as `outputSchema`). Each tool family adds its provider's data
 * fields (./clicksend.ts, ./messaging.ts, ./smtp.ts, ./sendgrid.ts, ./status.ts).
 *
 * The fields Switchboard sets are exact. An object that also carries a provider's data stays
 * open (additionalProperties): providers add fields, and a client must not reject them.
 * Refusals are not results: they are the error envelope (MCP: `isError: true`), which the
 * listed output schema admits as well (errorEnvelope).
 */
import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../errors.ts";

/** A count of messages or recipients. */
export const count = () => z.int().min(0);

const operationId = z.uuid().describe("The operation id of this call (message_status takes it).");

/** Set on the recorded outcome a repeated idempotency key answers with, instead of calling again. */
const replayed = z.literal(true).optional()
  .describe("Present when a repeated idempotency key answered with the first call's recorded outcome.");

/** One recipient of a send, as the provider answered for it. */
export const recipientResult = z.looseObject({
  to: z.string().describe("The recipient: an E.164 number or an e-mail address."),
  ok: z.boolean().describe("Whether the provider accepted the message for this recipient."),
  status: z.string().describe(
    "The provider's status for this recipient (e.g. SUCCESS, queued, 250); MAYBE_SENT or NOT_SENT when a request failed mid-send.",
  ),
  message_id: z.string().optional().describe("The provider's message id."),
  segments: z.number().optional().describe("SMS parts billed for this recipient."),
  price: z.string().optional().describe("The provider's price for this recipient's message."),
  error: z.string().optional().describe("Why this recipient was not sent, or may have been."),
});

/** Fields every accepted send answers with, on top of the provider's data. */
const sendFields = {
  operation_id: operationId,
  status: z.enum(["succeeded", "partial"])
    .describe("succeeded: every recipient accepted; partial: some were not, or may not have been (a send none accepted is an error)."),
  sent: count().describe("Recipients the provider accepted."),
  failed: count().describe("Recipients the provider did not accept."),
  recipients: z.array(recipientResult).describe("Each recipient's outcome."),
  provider_message_ids: z.array(z.string()).describe("The provider's ids of the accepted messages (delivery reports carry them)."),
  maybe_sent_count: count().optional()
    .describe("Recipients whose request failed mid-flight and may have been sent: never resend to them blindly."),
  incomplete: z.looseObject({
    kind: z.string(),
    message: z.string(),
    maybe_sent: z.boolean(),
  }).optional().describe("Why the send stopped before every recipient, when it did."),
  replayed,
};

/** A send's result on a provider's own tool: Switchboard's fields and the provider's `data` fields. */
export function sendResult<Data extends z.ZodRawShape>(data: Data) {
  return z.looseObject({ ...data, ...sendFields });
}

/** A channel tool's send also names the provider it went through, and the accounts it moved past. */
export function channelSendResult<Data extends z.ZodRawShape>(data: Data) {
  return sendResult({
    ...data,
    provider: z.string().describe("The provider of the account the message went through, e.g. twilio."),
    failed_over: z.array(z.looseObject({
      provider: z.string(),
      error_code: z.string().describe("Why that account did not take it, e.g. rate_limited."),
    })).optional().describe("The route's accounts that proved they did not take the message, in order, before this one."),
  });
}

/**
 * A keyed retry of a send whose outcome was lost and later settled from the provider's
 * message history (the provider reconciler): the counts and ids it found, not the
 * per-recipient answer, which was never recorded.
 */
const reconciledReplay = z.looseObject({
  operation_id: operationId,
  status: sendFields.status,
  sent: sendFields.sent,
  failed: sendFields.failed,
  provider_message_ids: sendFields.provider_message_ids,
  reconciled: z.looseObject({
    by: z.literal("provider_history"),
    provider: z.string(),
    at: z.iso.datetime({ offset: true }),
    note: z.string(),
  }).describe("How the outcome was settled after it was lost."),
  replayed: z.literal(true),
});

/** A dry run that would be allowed: the account it would use and the quota that would be left. */
const dryRunAllowed = z.strictObject({
  dry_run: z.literal(true),
  allowed: z.literal(true),
  connection_id: z.uuid().nullable().describe("The account the call would use."),
  provider: z.string().nullable(),
  sender: z.string().nullable().describe("The number it would go out from; null for the account's own default."),
  remaining_today: z.int().nullable().describe("What would be left today after this call, on the tighter limit; null without a limit."),
  remaining_this_month: z.int().nullable().describe("What would be left this month after this call; null without a limit."),
});

/** A dry run that would be refused: the refusal a real call would get, a stable reason and what to do about it. */
const dryRunRefused = z.strictObject({
  dry_run: z.literal(true),
  allowed: z.literal(false),
  reason: z.string().describe("A stable code: the refusal's details.reason, else its error code (e.g. recipient_not_allowed, quota_exceeded)."),
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  }).describe("The error a real call would answer with."),
  hint: z.string().optional().describe("What to change for the call to be allowed."),
});

/** What a send tool answers: the send's result (or, replayed, its reconciled outcome), or with dry_run its verdict. */
export function sendOutput(result: z.ZodType) {
  return z.union([result, reconciledReplay, dryRunAllowed, dryRunRefused]);
}

/** A read's result (balance, history): the provider's `data` fields, the operation id and status. */
export function readResult<Data extends z.ZodRawShape>(data: Data) {
  return z.looseObject({
    ...data,
    operation_id: operationId,
    status: z.literal("succeeded"),
    replayed,
  });
}

/**
 * The error envelope of a refused or failed call, which MCP answers as an `isError: true`
 * result. The specification exempts error results from the output schema, but some clients
 * (the MCP TypeScript SDK's among them) check their structuredContent against it all the
 * same, and would then hide the refusal from the model: so every listed output schema
 * admits the envelope too (tool-schemas.ts).
 */
export const errorEnvelope = z.strictObject({
  error: z.strictObject({
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    details: z.unknown().describe("What the refusal is about, e.g. details.reason and details.operation_id; null when nothing."),
  }),
});
