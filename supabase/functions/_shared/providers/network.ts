/**
 * Guards for provider-bound hosts and URLs that a user controls (MMS media URL, SMTP
 * host, a connection's base_url, webhook URLs). Without them a user could make our
 * functions (or the provider) reach loopback, link-local (cloud metadata) or private
 * addresses. The local stack sets allowPrivateNetworks, hosted deployments do not.
 *
 * Runtime-neutral: `node:dns/promises` works in Node and Deno.
 *
 * Limitation (documented, accepted): the check resolves the name once; a hostile DNS
 * server can answer differently when the connection is made (DNS rebinding). It stops
 * the plain cases (literal IPs, names that resolve to private ranges) cheaply.
 */
import { lookup } from "node:dns/promises";
import { ApiError } from "../errors.ts";

export interface PrivateNetworkPolicy {
  /** Allow loopback, link-local and private addresses (only the local stack sets this). */
  allowPrivateNetworks: boolean;
}

/**
 * Throws ApiError('invalid_request') unless every address `host` resolves to is public.
 * Accepts a DNS name, an IPv4 literal or an IPv6 literal (with or without brackets).
 */
export async function assertPublicHost(host: string, policy: PrivateNetworkPolicy): Promise<void> {
  if (policy.allowPrivateNetworks) return;
  const name = stripBrackets(host.trim()).replace(/\.$/, "");
  if (!name) throw new ApiError("invalid_request", "Host is empty.");

  const literal = parseIp(name);
  const addresses = literal ? [name] : await resolveAll(name);
  for (const address of addresses) {
    if (isNonPublicAddress(address)) {
      throw new ApiError(
        "invalid_request",
        `Host "${clip(host)}" resolves to a private, loopback or link-local address, which is not allowed.`,
        { host: clip(host) },
      );
    }
  }
}

/**
 * Parses `url`, requires one of `protocols` (default https only), rejects embedded
 * credentials, and checks its host with assertPublicHost. Returns the parsed URL.
 */
export async function assertPublicUrl(
  url: string | URL,
  policy: PrivateNetworkPolicy,
  options: { protocols?: string[] } = {},
): Promise<URL> {
  const protocols = options.protocols ?? ["https:"];
  let parsed: URL;
  try {
    parsed = typeof url === "string" ? new URL(url) : url;
  } catch {
    throw new ApiError("invalid_request", "URL is not valid.");
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ApiError("invalid_request", `URL must use ${protocols.map((p) => p.replace(":", "")).join(" or ")}.`, {
      protocol: parsed.protocol,
    });
  }
  if (parsed.username || parsed.password) {
    throw new ApiError("invalid_request", "URL must not contain credentials.");
  }
  await assertPublicHost(parsed.hostname, policy);
  return parsed;
}

/** True for any address that is not a routable public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const ip = parseIp(stripBrackets(address));
  if (!ip) return true; // unparseable: fail closed
  return ip.length === 4 ? isNonPublicV4(ip) : isNonPublicV6(ip);
}

async function resolveAll(name: string): Promise<string[]> {
  try {
    const found = await lookup(name, { all: true, verbatim: true });
    if (found.length === 0) throw new Error("no addresses");
    return found.map((entry) => entry.address);
  } catch {
    throw new ApiError("invalid_request", `Host "${clip(name)}" could not be resolved.`, { host: clip(name) });
  }
}

// IPv4 ranges as [first octets, prefix length]; loopback, private, link-local, CGNAT,
// "this network", multicast and reserved/broadcast.
const V4_BLOCKED: Array<[number[], number]> = [
  [[0], 8],
  [[10], 8],
  [[100, 64], 10],
  [[127], 8],
  [[169, 254], 16],
  [[172, 16], 12],
  [[192, 0, 0], 24],
  [[192, 168], 16],
  [[198, 18], 15],
  [[224], 4],
  [[240], 4],
];

function isNonPublicV4(ip: number[]): boolean {
  const value = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
  return V4_BLOCKED.some(([octets, prefix]) => {
    const base = octets.concat([0, 0, 0, 0]).slice(0, 4);
    const baseValue = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) >>> 0;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return ((value & mask) >>> 0) === ((baseValue & mask) >>> 0);
  });
}

function isNonPublicV6(ip: number[]): boolean {
  const [a, b, c, d, e, f, g, h] = ip;
  const firstSixZero = a === 0 && b === 0 && c === 0 && d === 0 && e === 0;
  if (firstSixZero && f === 0 && g === 0 && (h === 0 || h === 1)) return true; // :: and ::1
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
  // carry an IPv4 address that is what really gets reached.
  const nat64 = a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0;
  if ((firstSixZero && (f === 0xffff || f === 0)) || nat64) {
    return isNonPublicV4([g >> 8, g & 0xff, h >> 8, h & 0xff]);
  }
  if (a === 0x2002) return isNonPublicV4([b >> 8, b & 0xff, c >> 8, c & 0xff]); // 6to4
  if ((a & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((a & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((a & 0xffc0) === 0xfec0) return true; // fec0::/10 deprecated site-local
  if ((a & 0xff00) === 0xff00) return true; // ff00::/8 multicast
  return false;
}

/** Parses an IP literal into 4 octets (IPv4) or 8 hextets (IPv6); null if not a literal. */
export function parseIp(text: string): number[] | null {
  return parseV4(text) ?? parseV6(text);
}

function parseV4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    octets.push(n);
  }
  return octets;
}

function parseV6(text: string): number[] | null {
  let input = text.replace(/%.*$/, ""); // zone id (fe80::1%eth0)
  if (!input.includes(":")) return null;
  // Rewrite a trailing dotted IPv4 (::ffff:127.0.0.1) as two hex groups.
  const v4Match = input.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (v4Match) {
    const v4 = parseV4(v4Match[2]);
    if (!v4) return null;
    input = `${v4Match[1]}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = input.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groupsOf(halves[0]);
  const rest = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (![...head, ...rest].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const explicit = head.length + rest.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return null;
  const zeros = halves.length === 2 ? new Array(8 - explicit).fill(0) : [];
  return [...head.map((g) => parseInt(g, 16)), ...zeros, ...rest.map((g) => parseInt(g, 16))];
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}
