/**
 * The one HTTP transport every HTTP adapter uses (ClickSend, SendGrid, Twilio, Telnyx,
 * Exotel). It owns what must be the same for every provider:
 *  - the network guard and the connection policy (no redirects, `Connection: close`,
 *    a timeout on every request);
 *  - one answer to "may this have been sent?" (`classify` below), so no adapter carries
 *    its own copy with its own rules for a provider 5xx;
 *  - Retry-After parsing;
 *  - errors that never echo credentials.
 * Adapters keep what only they know: URLs, auth headers, bodies, and what a provider's
 * error body says (`describe`), which may name a more precise kind (e.g. insufficient
 * funds) but can never turn an answer that may have been acted on into "not sent".
 *
 * Runtime-neutral (Deno and Node).
 */
import { type GuardTarget, type NetworkPolicy } from "../net/guard.ts";
import { BASE_URL_TARGET, guardedFetch, isTransportVerdict } from "./http.ts";
import { type CallOptions, ProviderError, type ProviderErrorDetails, type ProviderErrorKind } from "./types.ts";

/** Default time a provider gets to answer (ms). */
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface ProviderEndpoint {
  provider: ProviderErrorDetails["provider"];
  /** For messages, e.g. "Twilio". */
  displayName: string;
  network: NetworkPolicy;
  /** Which input the URL comes from (default: the connection's base_url). */
  target?: GuardTarget;
}

export interface ProviderRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: URL | string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | FormData;
  /**
   * True when the request can make the provider act (send a message, place a call):
   * once it may have been written, a failure is "may have been sent".
   */
  acts: boolean;
}

/** What a provider's error body says, as the adapter reads it. */
export interface ErrorDescription {
  /** The provider's own code (Twilio 21610, Telnyx 40300, ClickSend response_code…). */
  code?: string;
  message?: string;
  /** Field errors, as the provider gave them. */
  errors?: unknown;
  /** A more precise kind than the status alone gives (never applied to a 5xx or 408). */
  kind?: ProviderErrorKind;
  /** Extra caller-facing details (no secrets). */
  details?: Record<string, unknown>;
}

export interface ProviderResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * Sends one request and returns the 2xx answer; anything else is a ProviderError with
 * `maybeSent` decided by `classify`. `describe` reads the provider's error body.
 */
export async function providerFetch(
  endpoint: ProviderEndpoint,
  request: ProviderRequest,
  describe: (response: ProviderResponse) => ErrorDescription = () => ({}),
  options: CallOptions = {},
): Promise<ProviderResponse> {
  // Header names are case-insensitive: merged through Headers, so an adapter's "accept"
  // replaces the default and no spelling of "connection" can combine with ours.
  const headers = new Headers(request.headers);
  if (!headers.has("accept")) headers.set("Accept", "application/json");
  // Never an idle pooled connection: Deno's fetch silently re-sends a POST when a reused
  // keep-alive connection drops after the request was written (a duplicate message).
  headers.set("Connection", "close");
  let response: ProviderResponse;
  try {
    const answer = await guardedFetch(request.url, {
      method: request.method,
      headers,
      body: request.body,
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    }, {
      network: endpoint.network,
      target: endpoint.target ?? BASE_URL_TARGET,
      provider: endpoint.provider,
      displayName: endpoint.displayName,
      fetch: options.fetch,
    });
    const text = await answer.text();
    response = { status: answer.status, headers: answer.headers, text, json: parseJson(text) };
  } catch (error) {
    if (isTransportVerdict(error)) throw error; // refused before connecting, or a redirect: never sent
    throw networkFailure(endpoint, error, request.acts);
  }
  if (response.status >= 200 && response.status < 300) return response;
  throw httpFailure(endpoint, response, describe(response), request.acts);
}

/** The sent/not-sent verdict of one failed request: the single rule every adapter shares. */
export function classify(status: number, acts: boolean): { kind: ProviderErrorKind; maybeSent: boolean } {
  if (status === 401) return { kind: "auth", maybeSent: false };
  if (status === 402) return { kind: "insufficient_funds", maybeSent: false };
  if (status === 403) return { kind: "forbidden", maybeSent: false };
  if (status === 404) return { kind: "not_found", maybeSent: false };
  if (status === 413) return { kind: "too_large", maybeSent: false };
  if (status === 429) return { kind: "rate_limited", maybeSent: false };
  // A request timeout or a server error may come after the provider acted: none of these
  // providers has an idempotency key for sends, so the message may be out.
  if (status === 408 || status >= 500) return { kind: status === 503 ? "unavailable" : "transient", maybeSent: acts };
  if (status >= 400) return { kind: status === 400 || status === 422 ? "invalid" : "permanent", maybeSent: false };
  return { kind: "permanent", maybeSent: acts };
}

/**
 * True when a failure proves the provider did not accept the message and the message
 * itself is not at fault, so another account may be tried (failover): connection refused,
 * rate limited, insufficient funds, credentials or account refused, the provider down
 * before it took the request. A message another provider would refuse the same way
 * (invalid recipient, too large) is not retried elsewhere; anything that may have been
 * sent never is.
 */
export function canFailOver(error: unknown): boolean {
  if (!(error instanceof ProviderError) || error.maybeSent) return false;
  return ["auth", "forbidden", "insufficient_funds", "rate_limited", "unavailable", "transient", "timeout"].includes(error.kind);
}

function httpFailure(endpoint: ProviderEndpoint, response: ProviderResponse, said: ErrorDescription, acts: boolean): ProviderError {
  const verdict = classify(response.status, acts);
  // A body may name a better kind for a 4xx; a 5xx stays "may have been sent".
  const kind = said.kind && response.status < 500 && response.status !== 408 ? said.kind : verdict.kind;
  const retryAfter = retryAfterSeconds(response.headers);
  const text = said.message ? `: ${said.message.slice(0, 300)}` : "";
  return new ProviderError(
    kind,
    `${endpoint.displayName} ${KIND_MESSAGES[kind]} (HTTP ${response.status}${text})`,
    {
      provider: endpoint.provider,
      status: response.status,
      ...(said.code !== undefined ? { provider_code: said.code } : {}),
      ...(said.errors !== undefined ? { errors: said.errors } : {}),
      ...(retryAfter !== undefined && (kind === "rate_limited" || kind === "unavailable") ? { retry_after: retryAfter } : {}),
      ...said.details,
    },
    verdict.maybeSent,
  );
}

const KIND_MESSAGES: Record<ProviderErrorKind, string> = {
  auth: "rejected the credentials",
  forbidden: "refused access",
  insufficient_funds: "refused the request: the account has insufficient funds",
  invalid: "rejected the request",
  too_large: "found the request too large",
  not_found: "found no such resource",
  rate_limited: "rate limit reached",
  transient: "failed to answer",
  permanent: "refused the request",
  unavailable: "is unavailable",
  timeout: "did not answer in time",
};

/** Seconds to wait, from Retry-After (seconds or an HTTP date) or a reset header. */
export function retryAfterSeconds(headers: Headers): number | undefined {
  for (const name of ["retry-after", "ratelimit-reset", "x-ratelimit-reset"]) {
    const value = headers.get(name);
    if (value === null || value.trim() === "") continue;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) {
      // Some providers send the reset as a Unix time rather than a delay.
      return Math.ceil(seconds > 1e9 ? Math.max(0, seconds - Date.now() / 1000) : seconds);
    }
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000));
  }
  return undefined;
}

// Errors that prove the request never left: nothing can have been sent.
// Node/undici puts the code in `cause` (a refused certificate fails the TLS handshake,
// before any of the request is written); Deno says "tcp connect error" / "dns error",
// "client error (Connect)" for anything before the request (a failed TLS handshake too),
// and "Requires net access" when its permissions refuse the host.
const NOT_CONNECTED =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|UND_ERR_CONNECT_TIMEOUT|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|ERR_TLS_CERT_ALTNAME_INVALID|connection refused|tcp connect error|\(Connect\)|dns error|failed to lookup|are blocked|requires net access|invalid url/i;

/** A fetch rejection (timeout, reset, refused) as a ProviderError. */
export function networkFailure(endpoint: ProviderEndpoint, error: unknown, acts: boolean): ProviderError {
  const name = (error as { name?: string })?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return new ProviderError("timeout", `${endpoint.displayName} did not answer in time.`, { provider: endpoint.provider }, acts);
  }
  const description = describeError(error);
  const neverConnected = NOT_CONNECTED.test(description);
  return new ProviderError(
    "unavailable",
    neverConnected ? `Could not connect to ${endpoint.displayName}.` : `The connection to ${endpoint.displayName} failed mid-request.`,
    { provider: endpoint.provider, cause: description.slice(0, 200) },
    acts && !neverConnected,
  );
}

/** Message and cause chain (undici hides the socket error code in `cause`). */
function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const e = current as { message?: string; code?: string; cause?: unknown };
    parts.push([e.code, e.message].filter(Boolean).join(" "));
    current = e.cause;
  }
  return parts.join(" <- ");
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // e.g. an HTML error page from a proxy, or XML
  }
}

/** Basic auth header value. */
export function basicAuth(user: string, secret: string): string {
  const bytes = new TextEncoder().encode(`${user}:${secret}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}
