/**
 * Rules for the values stored on a connection. They are input like any agent-supplied
 * field: private.validate_config applies the same rules when a connection is stored, and
 * every adapter parses its stored config again with these schemas before use, so a bad
 * value that got into a row anyway (an older row, a direct write) is a 400
 * invalid_request naming the field — never a 5xx, never forwarded to a provider.
 *
 *  - Nothing that becomes a header or an SMTP command (names, addresses, sender id, host,
 *    TLS server name) may contain CR, LF or NUL.
 *  - Addresses must be valid e-mail addresses.
 *  - Hosts are DNS names or IP addresses in canonical form: `0x7f.1`, `2130706433` or
 *    `012.0.0.1` are IPv4 spellings that resolvers read differently, so they are refused.
 *  - A base URL is an absolute http(s) URL without credentials, query or fragment.
 *    Whether http or a host other than the provider's own may be used is decided at use
 *    time by the deployment's NetworkPolicy.
 *
 * Runtime-neutral (Deno and Node).
 */
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { displayName, MAX_EMAIL_LENGTH } from "./email.ts";

/** A stored optional field: absent, null and "" all mean "not set". */
export function optional<S extends z.ZodType>(schema: S) {
  return z.preprocess((value) => (value === "" || value === null ? undefined : value), schema.optional());
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * A DNS host name: letters, digits and hyphens in labels of 1-63 characters. A last label
 * that is a number (`1`, `0x7f`) would make URL parsers and getaddrinfo read the whole
 * host as an IPv4 address, so it is not a name.
 */
export function isHostName(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.split(".");
  return labels.every((label) => LABEL.test(label)) && !/^(?:[0-9]+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1]);
}

/** A DNS host name, a dotted-decimal IPv4 address, or an IPv6 address without brackets or zone. */
export function isHostOrIp(host: string): boolean {
  return isHostName(host) || isIPv4(host) || (isIPv6(host) && !host.includes("%"));
}

// scheme://host[:port][/path], nothing else. The host is taken as written, before the URL
// parser canonicalises it, so a non-canonical IPv4 spelling cannot hide behind it.
const BASE_URL = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:[\]]+)(?::(\d{1,5}))?(?:\/[^\s?#]*)?$/i;

/** An absolute http(s) API base URL with a canonical host, no credentials, query or fragment. */
export function isBaseUrl(text: string): boolean {
  if (/[\u0000-\u001f\u007f]/.test(text)) return false; // the URL parser would silently drop some
  const match = BASE_URL.exec(text);
  if (!match) return false;
  const host = match[1].startsWith("[") ? match[1].slice(1, -1) : match[1];
  if (!isHostOrIp(host) || (match[2] !== undefined && Number(match[2]) > 65535)) return false;
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}


/** An e-mail address as stored (kept as written: the provider may compare it exactly). */
export const storedEmail = z.email({ message: "must be a valid e-mail address" }).max(MAX_EMAIL_LENGTH);

/** A sender's display name: what the mail tools accept for names (no CR/LF/NUL, ';' or ','). */
export const storedDisplayName = displayName;

export const baseUrlField = z.string().max(2000).refine(isBaseUrl, {
  message: "must be an absolute http(s) URL (scheme://host[:port][/path]) with a canonical host and no credentials, query or fragment",
});

export const hostField = z.string().max(253).refine(isHostOrIp, {
  message: "must be a host name or an IP address in canonical form (IPv4 as four decimal numbers)",
});

export const serverNameField = z.string().max(253).refine(isHostName, { message: "must be a DNS host name" });

/**
 * Parses a connection's stored config with `schema`; a refusal is a 400 naming the
 * first offending field. Values are never echoed (the row is the user's, but a value
 * may be long or hostile).
 */
export function parseStoredConfig<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join(".") || "config";
  throw new ApiError("invalid_request", `The connection's config is not valid: ${field} ${issue.message}`, {
    field,
    source: "connection_config",
  });
}

/**
 * Refuses a stored credential that would end up in a header or command with CR, LF or
 * NUL in it (the value itself is never shown).
 */
export function assertHeaderSafeCredentials(credentials: Record<string, string>): void {
  for (const [field, value] of Object.entries(credentials)) {
    if (/[\r\n\u0000]/.test(value)) {
      throw new ApiError("invalid_request", `The connection's credential ${field} contains a line break or NUL character`, {
        field,
        source: "credentials",
      });
    }
  }
}
