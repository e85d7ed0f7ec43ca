/**
 * The uniform provider adapter interface (Novu-style: one small module per provider,
 * optional capabilities as optional methods). Adapters know the provider's wire format
 * and nothing about Supabase: credentials and config come in as arguments, so they run
 * unchanged in Deno (edge functions) and Node (tests, devstack).
 */

/** Per-call options every adapter method accepts. */
export interface CallOptions {
  /** Injected fetch (tests); defaults to globalThis.fetch. */
  fetch?: typeof fetch;
  /** Abort the provider call after this many milliseconds (default 15 000). */
  timeoutMs?: number;
}

/**
 * Why a provider call failed. The function layer maps kinds to the public envelope:
 *  - auth, forbidden, insufficient_funds, invalid, too_large, not_found, permanent -> provider_error (502)
 *  - rate_limited, transient, unavailable -> provider_unavailable (503)
 *  - timeout -> provider_unavailable (504)
 */
export type ProviderErrorKind =
  | "auth"
  | "forbidden"
  | "insufficient_funds"
  | "invalid"
  | "too_large"
  | "not_found"
  | "rate_limited"
  | "transient"
  | "permanent"
  | "unavailable"
  | "timeout";

export interface ProviderErrorDetails {
  provider: "clicksend" | "sendgrid" | "smtp" | "twilio" | "telnyx" | "exotel";
  /** HTTP status or SMTP reply code the provider answered with, if any. */
  status?: number;
  /** The provider's own error code (e.g. ClickSend response_code, SMTP enhanced code). */
  provider_code?: string;
  /** Provider field errors, e.g. SendGrid errors[] or ClickSend 400 data. */
  errors?: unknown;
  /** Seconds until the provider's rate limit resets, when known. */
  retry_after?: number;
  [key: string]: unknown;
}

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    readonly details: ProviderErrorDetails,
    /**
     * True when the request may have reached the provider and been acted on
     * (timeout or connection dropped after the request was written). Such a send is
     * never retried blindly and its quota is not given back.
     */
    readonly maybeSent = false,
  ) {
    super(message);
    this.name = "ProviderError";
  }
}

/** Per-recipient result inside one send (partial success is real). */
export interface RecipientResult {
  to: string;
  ok: boolean;
  /** Provider status for this recipient, e.g. "SUCCESS", "INVALID_RECIPIENT", "250". */
  status: string;
  message_id?: string;
  /** SMS segments (message parts) for this recipient. */
  segments?: number;
  price?: string;
  error?: string;
}

/** Result of a send that the provider answered (possibly with per-recipient failures). */
export interface SendResult {
  /** How many recipients the provider accepted: the quota actually used. */
  sentCount: number;
  /** Provider message ids to store on the operation (for webhook correlation). */
  providerMessageIds: string[];
  recipients: RecipientResult[];
  /** Redacted, caller-facing provider data (never credentials). */
  data: Record<string, unknown>;
}

/** Result of a read-only call (balance, history). */
export interface ReadResult {
  data: Record<string, unknown>;
}

export interface TestConnectionResult {
  ok: boolean;
  message: string;
  details?: Record<string, unknown>;
}
