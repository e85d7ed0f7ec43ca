/**
 * Idempotency keys: one rule wherever a key comes from (the Idempotency-Key header, the
 * `idempotency_key` body field of the provider routes and agent-tools, or the
 * `idempotency_key` argument every send tool takes for agents that cannot set headers).
 */
import { ApiError } from "./errors.ts";

/** The tool argument (and body field) that carries an idempotency key. */
export const IDEMPOTENCY_KEY_ARGUMENT = "idempotency_key";

/**
 * 1-255 characters, none a control character or an unpaired surrogate. Counted in code
 * points (the `u` flag), as the database's check on operations.idempotency_key counts.
 */
const IDEMPOTENCY_KEY = /^[^\p{Cc}\p{Cs}]{1,255}$/u;

/**
 * The one rule for an idempotency key: absent (undefined or null) is null; anything
 * else must be 1-255 printable characters, or the request is a 400 before anything runs.
 */
export function parseIdempotencyKey(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || !IDEMPOTENCY_KEY.test(value)) {
    throw new ApiError("invalid_request", "idempotency_key must be 1-255 printable characters (no control characters)");
  }
  return value;
}

/** The JSON Schema of the send tools' `idempotency_key` argument (generated into the tool schemas). */
export const IDEMPOTENCY_KEY_SCHEMA = {
  type: "string",
  minLength: 1,
  maxLength: 255,
  pattern: "^[^\\u0000-\\u001f\\u007f]+$",
  description:
    "Optional key that makes this call safe to retry: a retry with the same key and the same arguments " +
    "returns the first call's recorded outcome instead of sending again (a call still in progress answers " +
    "409 with Retry-After). Use a new key (1-255 characters, e.g. a UUID) for each new message.",
} as const;
