/**
 * Webhook receivers: authenticate (URL token; SendGrid's signature too), parse with
 * the provider adapter, validate every event, store as message events linked to
 * operations.
 *
 * Webhook input is untrusted (a ClickSend URL carries no signature), so every
 * normalised event is validated before it reaches SQL: no NUL or unpaired surrogate
 * anywhere, raw payload included (PostgreSQL can store neither), nesting bounded,
 * identifiers of bounded length (provider_event_id sits in a btree index, whose rows
 * are limited to about 2.7 kB), timestamps between 1970 and 9999. A batch with one bad
 * event is refused whole with 400 naming it: no provider sends such events, and a
 * cleaned-up copy would record something the provider never said.
 */
import { z } from "zod";
import { functionsBaseUrl } from "./env.ts";
import { ApiError } from "./errors.ts";
import { assertStorableJson, json, readBody, zodIssues } from "./http.ts";
import { mapClickSendStatus, parseClickSendWebhook } from "./providers/clicksend.ts";
import { normalizePhoneNumber } from "./providers/phone.ts";
import {
  EVENT_WEBHOOK_SIGNATURE_HEADER,
  EVENT_WEBHOOK_TIMESTAMP_HEADER,
  parseSendGridEvents,
  verifyEventWebhookSignature,
} from "./providers/sendgrid.ts";
import { recordEvents, type WebhookReceiver, webhookConnection, webhookConnectionSecrets } from "./provider-function.ts";
import { DELIVERY_STATUSES, type DeliveryStatus, type MessagingAdapter, type WebhookEvent as AdapterEvent } from "./providers/adapter.ts";
import { networkPolicy } from "./tool-call.ts";
import type { ProviderName } from "./tools/types.ts";

/** Webhook bodies are small; anything bigger is not a provider's. */
const MAX_WEBHOOK_BYTES = 1024 * 1024;

/** Longest provider id kept (ClickSend's are UUIDs, SendGrid's a few dozen characters). */
const MAX_ID_LENGTH = 255;
/**
 * 9999-12-31T23:59:59Z. Later instants have no plain ISO 8601 form (toISOString() writes
 * "+010000-…", or throws past the year 275760), and no provider event is from then.
 */
const MAX_UNIX_SECONDS = 253_402_300_799;

const providerId = z.string().min(1).max(MAX_ID_LENGTH);

/** One event as private.record_message_events takes it. */
const webhookEvent = z.strictObject({
  event_type: z.enum(["delivery_receipt", "inbound_message", "email_event"]),
  // ClickSend's is "receipt:<message id>:<status>", so it may run past one id.
  provider_event_id: z.string().min(1).max(2 * MAX_ID_LENGTH),
  provider_message_id: providerId.nullable(),
  original_message_id: providerId.nullable(),
  // Only a UUID can be one of our operation ids; any other custom string (another
  // system's, on the same account) is not a link, and stays in the payload.
  operation_id: z.string().nullable().transform((value) => value !== null && z.guid().safeParse(value).success ? value : null),
  status: z.string().min(1).max(64).nullable(),
  /** One status set for every provider (null: not a delivery status, e.g. an inbound message). */
  delivery_status: z.enum(DELIVERY_STATUSES as [DeliveryStatus, ...DeliveryStatus[]]).nullable().default(null),
  channel: z.enum(["sms", "mms", "whatsapp", "email", "voice"]).nullable().default(null),
  /** An inbound message's receiving number (ours): attributes it to the number's member. */
  our_number: z.string().min(1).max(40).nullable().default(null),
  // An e-mail address (at most 254 characters) or a phone number / sender id.
  recipient: z.string().min(1).max(320).nullable(),
  occurred_at: z.number().min(0).max(MAX_UNIX_SECONDS).nullable()
    .transform((seconds) => seconds === null ? null : new Date(seconds * 1000).toISOString()),
  payload: z.record(z.string(), z.unknown()),
});

export type WebhookEventInput = z.input<typeof webhookEvent>;
export type WebhookEvent = z.output<typeof webhookEvent>;

/** Checks normalised events against the rules above: the events as stored, or 400 naming the bad fields. */
export function validateWebhookEvents(events: WebhookEventInput[]): WebhookEvent[] {
  assertStorableJson(events, "webhook");
  const parsed = z.array(webhookEvent).safeParse(events);
  if (!parsed.success) throw new ApiError("invalid_request", "invalid webhook event", { issues: zodIssues(parsed.error) });
  return parsed.data;
}

async function storeEvents(token: string, provider: ProviderName, events: WebhookEventInput[]) {
  return { received: events.length, ...(await recordEvents(token, provider, validateWebhookEvents(events))) };
}

function e164OrRaw(value: string | undefined): string | null {
  if (!value) return null;
  try {
    return normalizePhoneNumber(value);
  } catch {
    return value;
  }
}

/**
 * The ClickSend adapter reads fields with String(), which recurses into nested values:
 * a JSON body is checked (NUL, depth) before it runs. Form and query-string encodings
 * are not JSON, and their flat values are checked with the events.
 */
function refuseHostileJson(raw: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return;
  }
  assertStorableJson(parsed, "webhook");
}

/** ClickSend delivery receipts and inbound SMS: automation rules send GET ("get") or POST ("post", "json"). */
export function clicksendWebhook(kind: "receipts" | "inbound"): WebhookReceiver {
  const receive = async (req: Request, token: string): Promise<Response> => {
    const raw = new TextDecoder().decode(await readBody(req, MAX_WEBHOOK_BYTES));
    refuseHostileJson(raw);
    const parsed = parseClickSendWebhook(req.headers.get("content-type"), raw, new URL(req.url).searchParams);
    const events = parsed.map((event): WebhookEventInput => {
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
        delivery_status: inbound || !event.status_code ? null : mapClickSendStatus(event.status_code),
        // A receipt's channel is its send's (the database fills it in); ClickSend's inbound rules are SMS.
        channel: inbound ? "sms" : null,
        recipient: inbound ? e164OrRaw(event.from) : e164OrRaw(event.to),
        our_number: inbound ? e164OrRaw(event.to) : null,
        occurred_at: event.timestamp ?? null,
        payload: event.raw,
      };
    });
    return json(await storeEvents(token, "clicksend_sms", events));
  };
  return { methods: ["GET", "POST"], receive };
}

/** SendGrid's event names → the normalised delivery status (engagement events other than open are not statuses). */
const SENDGRID_DELIVERY_STATUS: Record<string, DeliveryStatus> = {
  processed: "queued",
  deferred: "queued",
  delivered: "delivered",
  bounce: "undelivered",
  dropped: "failed",
  open: "read",
};

/** SendGrid's signed Event Webhook: POST only. */
export const sendgridEventWebhook: WebhookReceiver = {
  methods: ["POST"],
  async receive(req, token) {
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
    const events = parseSendGridEvents(rawBody).map((event): WebhookEventInput => ({
      event_type: "email_event",
      provider_event_id: event.sg_event_id,
      provider_message_id: event.message_id || null,
      original_message_id: null,
      operation_id: event.operation_id,
      status: event.event,
      delivery_status: SENDGRID_DELIVERY_STATUS[event.event] ?? null,
      channel: "email",
      recipient: event.email ? event.email.toLowerCase() : null,
      occurred_at: event.timestamp,
      payload: event.raw,
    }));
    return json(await storeEvents(token, "sendgrid", events));
  },
};

/**
 * The webhook receiver of a provider on the adapter interface (Twilio, Telnyx, Exotel):
 * the URL token picks the connection; the adapter checks the provider's signature (with
 * the connection's secret or public key) where the provider signs, and parses the body
 * into normalised events, which are validated and stored like every provider's. Events
 * of a kind other than the URL's are refused, so a receipt URL cannot be fed inbound
 * messages. The reply is the adapter's (Twilio wants TwiML for an inbound message).
 */
export function adapterWebhook(
  provider: ProviderName,
  adapter: MessagingAdapter,
  kinds: ReadonlyArray<AdapterEvent["kind"]>,
): WebhookReceiver {
  return {
    methods: ["POST"],
    async receive(req, token) {
      const rawBody = new TextDecoder().decode(await readBody(req, MAX_WEBHOOK_BYTES));
      refuseHostileJson(rawBody);
      const request = { method: req.method, url: publicUrl(req), headers: req.headers, rawBody };
      if (adapter.verifyWebhook) {
        const connection = await webhookConnectionSecrets(token, provider);
        const verified = await adapter.verifyWebhook(
          { credentials: connection.credentials, config: connection.config, network: networkPolicy() },
          request,
        );
        if (!verified) throw new ApiError("unauthorized", "invalid or stale webhook signature");
      }
      if (!adapter.parseWebhook) throw new ApiError("not_found", "this provider sends no webhooks");
      const parsed = adapter.parseWebhook(request);
      for (const event of parsed) {
        if (!kinds.includes(event.kind)) {
          throw new ApiError("invalid_request", `this webhook takes ${kinds.join(" and ")} events, not ${event.kind}`);
        }
      }
      const events = parsed.map((event): WebhookEventInput =>
        event.kind === "inbound"
          ? {
            event_type: "inbound_message",
            provider_event_id: `inbound:${event.dedupe_key}`,
            provider_message_id: event.provider_message_id,
            original_message_id: null,
            operation_id: null,
            status: "received",
            delivery_status: null,
            channel: event.channel,
            recipient: e164OrRaw(event.from),
            our_number: e164OrRaw(event.to),
            occurred_at: unixSeconds(event.occurred_at),
            payload: { body: event.body, media_urls: event.media_urls },
          }
          : {
            event_type: "delivery_receipt",
            provider_event_id: `status:${event.dedupe_key}`,
            provider_message_id: event.provider_message_id,
            original_message_id: null,
            operation_id: null,
            status: event.provider_status.slice(0, 64),
            delivery_status: event.status,
            channel: event.channel ?? null,
            recipient: event.recipient ? e164OrRaw(event.recipient) : null,
            our_number: null,
            occurred_at: unixSeconds(event.occurred_at),
            payload: { provider_status: event.provider_status, ...(event.error_code ? { error_code: event.error_code } : {}) },
          }
      );
      const stored = await storeEvents(token, provider, events);
      if (adapter.webhookReply) {
        const reply = adapter.webhookReply(parsed);
        return new Response(reply.body, { status: reply.status, headers: { "content-type": reply.contentType } });
      }
      return json(stored);
    },
  };
}

/** An ISO instant as Unix seconds (what the stored event takes), or null. */
function unixSeconds(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/**
 * The URL the provider posted to, as it signed it: behind the platform's gateway the
 * request URL is internal (`/<function>/…` at another origin), so the functions' public
 * base URL replaces its origin when known.
 */
function publicUrl(req: Request): string {
  const url = new URL(req.url);
  const base = functionsBaseUrl();
  if (!base) return url.toString();
  const path = url.pathname.replace(/^\/functions\/v1(?=\/)/, "");
  return `${base}${path}${url.search}`;
}
