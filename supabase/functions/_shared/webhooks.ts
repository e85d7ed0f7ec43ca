/**
 * Webhook receivers: authenticate (URL token; SendGrid's signature too), parse with
 * the provider adapter, store as message events linked to operations.
 */
import { ApiError } from "./errors.ts";
import { json, readBody } from "./http.ts";
import { parseClickSendWebhook } from "./providers/clicksend.ts";
import { normalizePhoneNumber } from "./providers/phone.ts";
import {
  EVENT_WEBHOOK_SIGNATURE_HEADER,
  EVENT_WEBHOOK_TIMESTAMP_HEADER,
  parseSendGridEvents,
  verifyEventWebhookSignature,
} from "./providers/sendgrid.ts";
import { recordEvents, webhookConnection } from "./provider-function.ts";

/** Webhook bodies are small; anything bigger is not a provider's. */
const MAX_WEBHOOK_BYTES = 1024 * 1024;

function e164OrRaw(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    return normalizePhoneNumber(value);
  } catch {
    return value;
  }
}

const unixToIso = (seconds: number | undefined) =>
  seconds === undefined || !Number.isFinite(seconds) ? null : new Date(seconds * 1000).toISOString();

/** ClickSend delivery receipts and inbound SMS (form, JSON or query string). */
export function clicksendWebhook(kind: "receipts" | "inbound") {
  return async (req: Request, token: string): Promise<Response> => {
    const raw = new TextDecoder().decode(await readBody(req, MAX_WEBHOOK_BYTES));
    const parsed = parseClickSendWebhook(req.headers.get("content-type"), raw, new URL(req.url).searchParams);
    const events = parsed.map((event) => {
      const inbound = event.kind === "inbound";
      if (inbound !== (kind === "inbound")) {
        throw new ApiError("invalid_request", `expected ${kind === "inbound" ? "inbound messages" : "delivery receipts"}`);
      }
      return {
        event_type: inbound ? "inbound_message" : "delivery_receipt",
        // A receipt can come twice per message (interim 200, final 201): one event per status.
        provider_event_id: inbound ? `inbound:${event.message_id}` : `receipt:${event.message_id}:${event.status_code ?? ""}`,
        provider_message_id: event.message_id,
        original_message_id: event.original_message_id ?? null,
        operation_id: event.custom_string ?? null,
        status: inbound ? "received" : event.status_code ?? null,
        recipient: inbound ? e164OrRaw(event.from) : e164OrRaw(event.to),
        occurred_at: unixToIso(event.timestamp),
        payload: event.raw,
      };
    });
    return json({ received: events.length, ...(await recordEvents(token, "clicksend_sms", events)) });
  };
}

/** SendGrid's signed Event Webhook. */
export async function sendgridEventWebhook(req: Request, token: string): Promise<Response> {
  const connection = await webhookConnection(token, "sendgrid");
  const publicKey = connection.config.webhook_public_key;
  if (typeof publicKey !== "string" || !publicKey) {
    throw new ApiError("permission_denied", "this connection has no webhook_public_key configured; set it to verify events");
  }
  const rawBody = await readBody(req, MAX_WEBHOOK_BYTES * 8);
  const valid = await verifyEventWebhookSignature({
    publicKey,
    signature: req.headers.get(EVENT_WEBHOOK_SIGNATURE_HEADER),
    timestamp: req.headers.get(EVENT_WEBHOOK_TIMESTAMP_HEADER),
    rawBody,
  });
  if (!valid) throw new ApiError("unauthorized", "invalid or stale event webhook signature");
  const events = parseSendGridEvents(rawBody).map((event) => ({
    event_type: "email_event",
    provider_event_id: event.sg_event_id,
    provider_message_id: event.message_id,
    operation_id: event.operation_id,
    status: event.event,
    recipient: event.email?.toLowerCase(),
    occurred_at: unixToIso(event.timestamp),
    payload: event.raw,
  }));
  return json({ received: events.length, ...(await recordEvents(token, "sendgrid", events)) });
}
