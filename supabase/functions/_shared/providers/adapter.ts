/**
 * The one provider interface (Novu's shape: a tiny required core, optional capabilities as
 * optional members, statuses normalised inside the adapter, signatures checked inside the
 * adapter). A messaging adapter knows its provider's wire format and nothing about
 * Supabase: credentials and config come in as arguments, every request goes through the
 * shared transport (./transport.ts), so it runs unchanged in Deno and Node.
 */
import type { NetworkPolicy } from "../net/guard.ts";
import type { CallOptions, ReadResult, SendResult, TestConnectionResult } from "./types.ts";

/** What a connection carries. */
export type Channel = "sms" | "mms" | "whatsapp" | "email" | "voice";

/** One status set for every provider's delivery reports. */
export type DeliveryStatus = "queued" | "sent" | "delivered" | "undelivered" | "failed" | "read";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["queued", "sent", "delivered", "undelivered", "failed", "read"];

/** A connection's secrets and settings, as stored, plus the deployment's network rules. */
export interface AdapterContext {
  credentials: Record<string, string>;
  config: Record<string, unknown>;
  network: NetworkPolicy;
  options?: CallOptions;
}

/** A text message (SMS, MMS or WhatsApp) to one or more numbers. */
export interface OutboundMessage {
  channel: "sms" | "mms" | "whatsapp";
  /** E.164 numbers. */
  to: string[];
  /** The number (or sender id) it goes out from, as the database resolved it; null: the account's default. */
  from?: string | null;
  body?: string;
  /** Public http(s) URLs of media (MMS, WhatsApp), already judged by the network guard. */
  mediaUrls?: string[];
  /** MMS subject, where the provider has one. */
  subject?: string;
  /** A pre-approved WhatsApp template (Twilio Content SID, Exotel template name) and its variables. */
  template?: { id: string; language?: string; variables?: Record<string, string> };
  /** Our operation id: sent as the provider's correlation field where it has one. */
  operationId: string;
  /** Where the provider should post this message's status reports (our webhook URL), when known. */
  statusCallbackUrl?: string;
}

/** A number the provider account holds, as number sync stores it. */
export interface ProviderNumber {
  /** E.164. */
  phone_number: string;
  friendly_name?: string | null;
  capabilities: { sms: boolean; mms: boolean; voice: boolean; whatsapp: boolean };
  /** The provider's own id for the number (Twilio PN…, Telnyx id, ExoPhone sid). */
  provider_number_id?: string | null;
}

/** A webhook request as it arrived: the adapter verifies and parses it. */
export interface WebhookRequest {
  method: string;
  /** The full public URL the provider posted to (what signatures cover). */
  url: string;
  headers: Headers;
  rawBody: string;
}

/** A delivery report, normalised. */
export interface DeliveryEvent {
  kind: "status";
  provider_message_id: string;
  status: DeliveryStatus;
  /** The provider's own status word (and code), kept for support. */
  provider_status: string;
  error_code?: string | null;
  recipient?: string | null;
  occurred_at?: string | null;
  /** Unique per event at the provider: retries of one event carry the same key. */
  dedupe_key: string;
  channel?: Channel;
}

/** A message someone sent to one of the account's numbers. */
export interface InboundEvent {
  kind: "inbound";
  provider_message_id: string;
  channel: "sms" | "mms" | "whatsapp";
  from: string;
  /** The account's number it was sent to (E.164): attributes it to the number's member. */
  to: string;
  body: string;
  media_urls: string[];
  occurred_at?: string | null;
  dedupe_key: string;
}

export type WebhookEvent = DeliveryEvent | InboundEvent;

/** Connects two phones (click-to-call): the provider rings `from`, then `to`. */
export interface CallRequest {
  from: string;
  to: string;
  /** The account's number shown to both parties. */
  callerId: string;
  timeLimitSeconds?: number;
  operationId: string;
  statusCallbackUrl?: string;
}

export interface MessagingAdapter {
  readonly provider: string;
  /** Sends one message to its recipients (per-recipient results; partial success is real). */
  send(ctx: AdapterContext, message: OutboundMessage): Promise<SendResult>;
  /** Checks the credentials with a read-only call. */
  testCredentials(ctx: AdapterContext): Promise<TestConnectionResult>;
  balance?(ctx: AdapterContext): Promise<ReadResult>;
  history?(ctx: AdapterContext, query: Record<string, unknown>): Promise<ReadResult>;
  listNumbers?(ctx: AdapterContext): Promise<ProviderNumber[]>;
  /** Places a click-to-call. */
  call?(ctx: AdapterContext, call: CallRequest): Promise<SendResult>;
  /**
   * True when the request is genuinely the provider's (signature, timestamp); providers
   * that do not sign (Exotel) rely on the URL token alone and leave this out.
   */
  verifyWebhook?(ctx: AdapterContext, request: WebhookRequest): Promise<boolean>;
  /** The events a verified webhook carries, normalised; unknown shapes are a 400 (ApiError). */
  parseWebhook?(request: WebhookRequest): WebhookEvent[];
  /** The provider's status word → the normalised status (null: not a status we record). */
  mapDeliveryStatus?(providerStatus: string): DeliveryStatus | null;
  /**
   * What the webhook answers the provider on success (Twilio expects TwiML for inbound
   * messages); default 200 `{"ok":true}`.
   */
  webhookReply?(events: WebhookEvent[]): { status: number; contentType: string; body: string };
}
