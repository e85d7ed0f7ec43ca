/**
 * The one network guard. Every outbound destination a user or agent can influence (a
 * connection's provider base URL, an MMS media URL, an SMTP host, any future callback
 * URL) passes here, on every route that contacts it (send, read, test), and is judged by
 * the address that will actually be connected to:
 *
 *  - A URL is parsed with the WHATWG URL parser, the one fetch itself uses. It rewrites
 *    every IPv4 spelling in a host (decimal `2130706433`, octal `0177.0.0.1`, hex
 *    `0x7f.1`, shortened `127.1`, a trailing dot) to dotted-quad, so the guard judges
 *    `url.hostname` and fetch is handed the very URL object that was judged.
 *  - A host we dial ourselves (SMTP) goes through the same parser, then the caller
 *    connects to the judged IP address (see PinnedHost), keeping the original name for
 *    TLS; a second DNS answer is never asked for, so DNS rebinding cannot move it.
 *  - A name is resolved with the system resolver (`node:dns` lookup = getaddrinfo: hosts
 *    file, then DNS), as fetch and the socket layer resolve it, and every address it
 *    answers must be public. `localhost` and `*.localhost` (RFC 6761) are refused by name.
 *  - Redirects are never followed (providers/http.ts), so a 3xx cannot lead anywhere
 *    this guard has not judged.
 *
 * Residual window, accepted and documented: fetch resolves a name again when it connects,
 * and Deno cannot pin that connection to the judged address (Deno.createHttpClient's
 * `proxy: { transport: "tcp" }` speaks plaintext even for https URLs). A rebinding DNS
 * server that answers a public address to us and a private one to fetch can make fetch
 * open a TCP connection to an internal host. Hosted policy is https only with certificate
 * verification, so that connection ends in a failed TLS handshake (the internal host has
 * no certificate for the public name): no request, and no credential, reaches it.
 *
 * `allowPrivateNetworks` (only the local stack, whose fakes live on loopback) skips the
 * address checks but not the URL rules. Runtime-neutral: works in Deno and Node.
 */
import { lookup } from "node:dns/promises";
import { isIPv4, isIPv6 } from "node:net";
import { ApiError } from "../errors.ts";

/**
 * What a deployment allows for destinations users control (read from SWITCHBOARD_*
 * settings by networkPolicy() in tool-call.ts). Required by every adapter.
 */
export interface NetworkPolicy {
  /** Allow loopback, link-local and private addresses, and plain http (only the local stack). */
  allowPrivateNetworks: boolean;
  /** Allow a provider base_url other than the provider's official API (only the local stack's fakes). */
  allowCustomProviderHosts: boolean;
  /** TCP ports an SMTP connection may not use (hosted Supabase blocks 25 and 587). */
  blockedSmtpPorts: number[];
}

/** Names the input being judged, for error details: e.g. {field: "base_url", source: "connection_config"}. */
export interface GuardTarget {
  field: string;
  source: "connection_config" | "arguments";
  /** Refuse plain http even where private networks are allowed (URLs a provider fetches). */
  httpsOnly?: boolean;
}

/** Where to connect: a judged IP address, and the name TLS must verify when the host was a name. */
export interface PinnedHost {
  address: string;
  servername?: string;
}

/**
 * The host's name could not be resolved. An ApiError (400) for a URL the provider will
 * fetch; connection code turns it into "provider unavailable, nothing sent".
 */
export class UnresolvableHostError extends ApiError {
  constructor(readonly host: string, target: GuardTarget) {
    super("invalid_request", `${target.field}: the host "${clip(host)}" could not be resolved.`, {
      field: target.field,
      source: target.source,
      host: clip(host),
    });
    this.name = "UnresolvableHostError";
  }
}

/** getaddrinfo has its own retries; a lookup that takes longer than this is treated as failed. */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * Checks a URL before anything connects to it: https (http only where private networks
 * are allowed), no embedded credentials, and a host whose every address is public.
 * Returns the parsed URL: fetch it, not the original string.
 */
export async function guardUrl(input: string | URL, policy: NetworkPolicy, target: GuardTarget): Promise<URL> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw refusal(target, "is not a valid absolute URL.");
  }
  const allowHttp = policy.allowPrivateNetworks && !target.httpsOnly;
  if (url.protocol !== "https:" && !(allowHttp && url.protocol === "http:")) {
    throw refusal(target, `must use ${allowHttp ? "https or http" : "https"}.`, { protocol: url.protocol });
  }
  if (url.username || url.password) throw refusal(target, "must not contain credentials.");
  if (!policy.allowPrivateNetworks) await judgeHostname(url.hostname, target);
  return url;
}

/**
 * Checks a host we open a socket to ourselves and returns the address to connect to.
 * The caller must connect to `address` (never re-resolve the host) and, when
 * `servername` is set, verify TLS against it.
 */
export async function guardHost(host: string, policy: NetworkPolicy, target: GuardTarget): Promise<PinnedHost> {
  const hostname = canonicalHostname(host, target);
  if (policy.allowPrivateNetworks) return { address: unbracket(hostname) };
  const addresses = await judgeHostname(hostname, target);
  // getaddrinfo already ordered the addresses by preference; the first is the one to use.
  return isIpLiteral(hostname) ? { address: addresses[0] } : { address: addresses[0], servername: hostname };
}

/** True for a routable public unicast address; false for anything else, including non-addresses. */
export function isPublicAddress(address: string): boolean {
  const v4 = ipv4Octets(address);
  if (v4) return !isNonPublicV4(v4);
  const v6 = ipv6Hextets(unbracket(address));
  return v6 !== null && !isNonPublicV6(v6);
}

// ---------------------------------------------------------------------------
// Judging
// ---------------------------------------------------------------------------

/** `hostname` as the WHATWG parser left it. Returns every address it stands for, all judged public. */
async function judgeHostname(hostname: string, target: GuardTarget): Promise<string[]> {
  let addresses: string[];
  if (isIpLiteral(hostname)) {
    addresses = [unbracket(hostname)];
  } else {
    if (/^(?:.+\.)?localhost\.?$/i.test(hostname)) throw privateHost(hostname, target);
    addresses = await resolve(hostname, target);
  }
  if (!addresses.every(isPublicAddress)) throw privateHost(hostname, target);
  return addresses;
}

async function resolve(name: string, target: GuardTarget): Promise<string[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("lookup timed out")), LOOKUP_TIMEOUT_MS);
  });
  try {
    const found = await Promise.race([lookup(name, { all: true, verbatim: true }), timeout]);
    if (found.length === 0) throw new Error("no addresses");
    return found.map((entry) => entry.address);
  } catch {
    throw new UnresolvableHostError(name, target);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bare host (no scheme, port, path or credentials) in the WHATWG parser's canonical
 * form, IPv6 literals in brackets. Anything else is refused.
 */
function canonicalHostname(host: string, target: GuardTarget): string {
  // Characters that would make the URL parser read a port, path, query, user or
  // percent-escape instead of a host; whitespace it would silently drop.
  // A colon belongs to an IPv6 address only: "host:443" would lose its default port silently.
  const ipv6 = isIPv6(host) || /^\[[^\]]*\]$/.test(host);
  if (!host || /[\s/\\?#@%]/.test(host) || (host.includes(":") && !ipv6)) {
    throw refusal(target, "must be a host name or an IP address, without a port.");
  }
  try {
    return new URL(`https://${isIPv6(host) ? `[${host}]` : host}/`).hostname;
  } catch {
    throw refusal(target, "must be a host name or an IP address.");
  }
}

function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || isIPv4(hostname);
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function refusal(target: GuardTarget, what: string, extra: Record<string, unknown> = {}): ApiError {
  return new ApiError("invalid_request", `${target.field} ${what}`, { field: target.field, source: target.source, ...extra });
}

function privateHost(host: string, target: GuardTarget): ApiError {
  return new ApiError(
    "invalid_request",
    `${target.field}: the host "${clip(host)}" is or resolves to a loopback, private, link-local or otherwise ` +
      "non-public address, which this deployment does not allow.",
    { field: target.field, source: target.source, host: clip(host) },
  );
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

// ---------------------------------------------------------------------------
// Address ranges. Inputs are only ever addresses the platform has already
// validated (isIPv4 accepts dotted-decimal only) or canonicalised (the URL parser
// for IPv6), so no textual IP spelling is interpreted here.
// ---------------------------------------------------------------------------

function ipv4Octets(address: string): number[] | null {
  return isIPv4(address) ? address.split(".").map(Number) : null;
}

/** Eight 16-bit groups of an IPv6 address, or null if it is not one. */
function ipv6Hextets(address: string): number[] | null {
  const plain = address.replace(/%.*$/, ""); // a zone id (fe80::1%eth0) does not change the address
  if (!isIPv6(plain)) return null;
  // The URL serializer writes IPv6 as lower-case hex groups with at most one "::" and no
  // embedded dotted IPv4, so only the "::" needs expanding.
  let canonical: string;
  try {
    canonical = unbracket(new URL(`http://[${plain}]/`).hostname);
  } catch {
    return null;
  }
  const [head, tail] = canonical.split("::");
  const groups = (part: string | undefined) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const first = groups(head);
  const last = groups(tail);
  return tail === undefined ? first : [...first, ...new Array(8 - first.length - last.length).fill(0), ...last];
}

// IPv4 ranges that are not public unicast: [network, prefix length].
const V4_BLOCKED: Array<[string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
];

const toUint32 = (o: number[]) => ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
const V4_BLOCKED_MASKS = V4_BLOCKED.map(([network, prefix]) => {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (toUint32(network.split(".").map(Number)) & mask) >>> 0, mask };
});

function isNonPublicV4(octets: number[]): boolean {
  const value = toUint32(octets);
  return V4_BLOCKED_MASKS.some(({ base, mask }) => ((value & mask) >>> 0) === base);
}

function isNonPublicV6(h: number[]): boolean {
  const embeddedV4 = (hi: number, lo: number) => isNonPublicV4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zeros = (from: number, to: number) => h.slice(from, to).every((g) => g === 0);
  if (zeros(0, 7) && h[7] <= 1) return true; // :: and ::1
  // These carry an IPv4 address, which is what is really reached: judge that.
  if (zeros(0, 5) && (h[5] === 0xffff || h[5] === 0)) return embeddedV4(h[6], h[7]); // mapped, compatible
  if (zeros(0, 4) && h[4] === 0xffff && h[5] === 0) return embeddedV4(h[6], h[7]); // IPv4-translated (SIIT)
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) return embeddedV4(h[6], h[7]); // NAT64 well-known prefix
  if (h[0] === 0x2002) return embeddedV4(h[1], h[2]); // 6to4
  if (h[0] === 0x64 && h[1] === 0xff9b && h[2] === 1) return true; // 64:ff9b:1::/48 local-use NAT64
  if (h[0] === 0x2001 && h[1] === 0) return true; // Teredo (its IPv4 is obfuscated)
  if (h[0] === 0x2001 && h[1] === 0xdb8) return true; // documentation
  if (h[0] === 0x100 && zeros(1, 4)) return true; // 100::/64 discard
  if ((h[0] & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((h[0] & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((h[0] & 0xffc0) === 0xfec0) return true; // fec0::/10 deprecated site-local
  if ((h[0] & 0xff00) === 0xff00) return true; // ff00::/8 multicast
  return false;
}
