/**
 * The guarded fetch under the HTTP adapters' shared transport (./transport.ts): every
 * request goes through guardedFetch, so the network guard runs on every route (send,
 * read, test) and no redirect is ever followed. Error classification ("may this have
 * been sent?") is the transport's `classify`, one rule for every provider.
 */
import { ApiError } from "../errors.ts";
import { type GuardTarget, guardUrl, type NetworkPolicy, UnresolvableHostError } from "../net/guard.ts";
import { ProviderError, type ProviderErrorDetails } from "./types.ts";

/** The input a provider base URL comes from. */
export const BASE_URL_TARGET: GuardTarget = { field: "base_url", source: "connection_config" };

export interface GuardedFetchOptions {
  network: NetworkPolicy;
  /** Which input the URL comes from, for refusals. */
  target: GuardTarget;
  provider: ProviderErrorDetails["provider"];
  /** Provider name for messages, e.g. "ClickSend". */
  displayName: string;
  /** Injected fetch (tests); defaults to globalThis.fetch. */
  fetch?: typeof fetch;
}

/**
 * fetch with the network guard in front and redirects refused.
 *  - A URL the guard refuses throws ApiError (400) before any connection is attempted.
 *  - A host that does not resolve is a ProviderError "unavailable" that was not sent.
 *  - A 3xx answer is a ProviderError that was not sent: following it would take the
 *    request (and its credentials) to an address nobody judged.
 * Network failures of fetch itself are rethrown untouched for the adapter to classify.
 */
export async function guardedFetch(url: string | URL, init: RequestInit, options: GuardedFetchOptions): Promise<Response> {
  let judged: URL;
  try {
    judged = await guardUrl(url, options.network, options.target);
  } catch (error) {
    if (error instanceof UnresolvableHostError) {
      throw new ProviderError("unavailable", `Could not connect to ${options.displayName}: ${error.message}`, {
        provider: options.provider,
      });
    }
    throw error;
  }
  const response = await (options.fetch ?? globalThis.fetch)(judged, { ...init, redirect: "manual" });
  if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
    await response.body?.cancel().catch(() => {});
    throw new ProviderError(
      "permanent",
      `${options.displayName} answered with a redirect (HTTP ${response.status}); redirects are never followed, so the request went no further`,
      { provider: options.provider, status: response.status },
    );
  }
  return response;
}

/** True for errors the transport raised on purpose (policy refusals, redirects): adapters pass them on as they are. */
export function isTransportVerdict(error: unknown): error is ApiError | ProviderError {
  return error instanceof ApiError || error instanceof ProviderError;
}

/**
 * The API base URL to use, without trailing slashes: the provider's own unless the
 * connection names another, which only deployments allowing custom provider hosts (the
 * local stack, pointing at its fakes) accept. Elsewhere a user-chosen base_url would
 * send the provider credentials to a host of the user's choosing.
 */
export function providerBaseUrl(configured: string | undefined, official: readonly string[], network: NetworkPolicy): string {
  const base = (configured ?? official[0]).replace(/\/+$/, "");
  if (!network.allowCustomProviderHosts && !official.includes(base)) {
    throw new ApiError(
      "invalid_request",
      `The connection's base_url must be ${official.join(" or ")}: this deployment does not allow other provider hosts.`,
      { field: "base_url", source: "connection_config", allowed: official },
    );
  }
  return base;
}
