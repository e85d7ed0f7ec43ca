/**
 * The network guard (supabase/functions/_shared/net/guard.ts), from the attacker's side:
 * every textual spelling of a loopback, private or link-local address the system resolver
 * or the URL parser accepts is refused, in URL form (what fetch is given) and host form
 * (what SMTP dials), before anything connects. The resolver is the real one (getaddrinfo);
 * no case here needs DNS: literals are canonicalised by the URL parser, numeric forms are
 * read by getaddrinfo itself, and names come from /etc/hosts or are refused by name.
 *
 * Name resolution that must be steered (pinning, rebinding, mixed answers) goes through a
 * stand-in for node:dns/promises lookup; every other name goes to the real one.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import {
  guardHost,
  type GuardTarget,
  guardUrl,
  isPublicAddress,
  type NetworkPolicy,
  UnresolvableHostError,
} from "../../supabase/functions/_shared/net/guard.ts";

/** Answers for names under .steered.test; anything else goes to the real resolver. */
const steered = new Map<string, string[][]>();
const lookupCalls: string[] = [];

vi.mock("node:dns/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:dns/promises")>();
  const lookup = async (name: string, options: unknown) => {
    lookupCalls.push(name);
    const answers = steered.get(name);
    if (!answers) return (real.lookup as (n: string, o: unknown) => Promise<unknown>)(name, options);
    const next = answers.length > 1 ? answers.shift()! : answers[0];
    if (next.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return next.map((address) => ({ address, family: isIP(address) }));
  };
  return { ...real, lookup, default: { ...real, lookup } };
});

const strict: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
const target: GuardTarget = { field: "base_url", source: "connection_config" };

beforeEach(() => {
  steered.clear();
  lookupCalls.length = 0;
});
afterEach(() => vi.clearAllMocks());

/** Names in /etc/hosts (other than localhost, refused by name anyway) that map to non-public addresses. */
function hostsFileNames(): string[] {
  const names = new Set<string>();
  for (const line of readFileSync("/etc/hosts", "utf8").split("\n")) {
    const [address, ...aliases] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!address || !isIP(address) || isPublicAddress(address)) continue;
    for (const name of aliases) if (/^[a-z0-9.-]+$/i.test(name) && !/localhost/i.test(name)) names.add(name);
  }
  return [...names].slice(0, 3);
}

// Every spelling of a non-public address the URL parser or getaddrinfo accepts. The
// comment says what a resolver connects to.
const HOSTILE = [
  "127.1", // 127.0.0.1 (shortened)
  "0177.0.0.1", // 127.0.0.1 (octal)
  "012.0.0.1", // 10.0.0.1 (octal), which a hand-written decimal parser reads as 12.0.0.1
  "0x7f.0.0.1", // 127.0.0.1 (hex)
  "0x7f000001", // 127.0.0.1 (hex, 32 bit)
  "2130706433", // 127.0.0.1 (decimal, 32 bit)
  "017700000001", // 127.0.0.1 (octal, 32 bit)
  "127.0.0.1.", // trailing dot
  "localhost",
  "localhost.",
  "LOCALHOST",
  "api.localhost", // RFC 6761: every *.localhost name is loopback
  "[::1]",
  "[::ffff:127.0.0.1]", // IPv4-mapped
  "[::ffff:7f00:1]",
  "[0:0:0:0:0:ffff:7f00:1]",
  "[::127.0.0.1]", // IPv4-compatible
  "[64:ff9b::7f00:1]", // NAT64
  "[2002:7f00:1::]", // 6to4 of 127.0.0.1
  "[::ffff:a9fe:a9fe]", // mapped 169.254.169.254
  "169.254.169.254", // cloud metadata
  "[fe80::1]", // link-local
  "[fd00::1]", // unique local
  "[ff02::1]", // multicast
  "0.0.0.0",
  "0",
  "10.1.2.3",
  "172.16.0.1",
  "192.168.0.1",
  "100.64.0.1", // carrier-grade NAT
  ...hostsFileNames(),
];

const PUBLIC = ["93.184.216.34", "[2606:4700::1111]", "[::ffff:5db8:d822]", "[64:ff9b::5db8:d822]", "8.8.8.8"];

describe("hostile spellings are refused before anything connects", () => {
  it.each(HOSTILE)("URL form: https://%s/", async (host) => {
    const error = await guardUrl(`https://${host}/v3`, strict, target).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: "invalid_request", status: 400, details: { field: "base_url", source: "connection_config" } });
    expect(error).not.toBeInstanceOf(UnresolvableHostError); // judged, not merely unresolved
  });

  it.each(HOSTILE)("host form: %s", async (host) => {
    const error = await guardHost(host, strict, { field: "host", source: "connection_config" }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: "invalid_request", details: { field: "host" } });
    expect(error).not.toBeInstanceOf(UnresolvableHostError);
  });

  it.each(HOSTILE.filter((h) => h.startsWith("[")).map((h) => h.slice(1, -1)))("host form without brackets: %s", async (host) => {
    await expect(guardHost(host, strict, target)).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("judges what the resolver connects to: 012.0.0.1 is 10.0.0.1, 0x5d.0xb8.0xd8.0x22 is 93.184.216.34", async () => {
    expect((await guardUrl("https://0x5d.0xb8.0xd8.0x22/x", strict, target)).hostname).toBe("93.184.216.34");
    expect(await guardHost("0x5d.0xb8.0xd8.0x22", strict, target)).toEqual({ address: "93.184.216.34" });
    await expect(guardHost("012.0.0.1", strict, target)).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("refuses *.localhost by name, without asking any resolver", async () => {
    await expect(guardHost("mail.localhost.", strict, target)).rejects.toMatchObject({ code: "invalid_request" });
    expect(lookupCalls).toEqual([]);
  });
});

describe("public destinations pass", () => {
  it.each(PUBLIC)("URL form: https://%s/", async (host) => {
    const url = await guardUrl(`https://${host}:8443/v3`, strict, target);
    expect(url.port).toBe("8443");
  });

  it.each(PUBLIC)("host form: %s", async (host) => {
    const pinned = await guardHost(host, strict, target);
    expect(isPublicAddress(pinned.address)).toBe(true);
    expect(pinned.servername).toBeUndefined(); // an IP literal: TLS checks the address itself
  });
});

describe("URL rules", () => {
  it("https only, unless private networks are allowed; never credentials", async () => {
    await expect(guardUrl("http://93.184.216.34/", strict, target)).rejects.toThrow(/https/);
    await expect(guardUrl("ftp://93.184.216.34/", local, target)).rejects.toThrow(/https or http/);
    await expect(guardUrl("http://127.0.0.1:4010/v3", local, target)).resolves.toBeInstanceOf(URL);
    await expect(guardUrl("http://127.0.0.1/a.jpg", local, { ...target, httpsOnly: true })).rejects.toThrow(/https/);
    await expect(guardUrl("https://user:pw@93.184.216.34/", strict, target)).rejects.toThrow(/credentials/);
    await expect(guardUrl("https://user:pw@127.0.0.1/", local, target)).rejects.toThrow(/credentials/);
    await expect(guardUrl("not a url", strict, target)).rejects.toThrow(/valid absolute URL/);
  });

  it("a host must be just a host", async () => {
    for (const host of [
      "", "93.184.216.34:25", "93.184.216.34:443", "[2606:4700::1111]:443", "[::1]:25", "a@93.184.216.34", "93.184.216.34/x",
      "a b", "%39%33.184.216.34", "[example.com]",
    ]) {
      await expect(guardHost(host, strict, target), host).rejects.toMatchObject({ code: "invalid_request" });
    }
  });

  it("allowPrivateNetworks skips the address checks (the local stack's fakes are on loopback)", async () => {
    await expect(guardUrl("https://127.0.0.1/v3", local, target)).resolves.toBeInstanceOf(URL);
    expect(await guardHost("localhost", local, target)).toEqual({ address: "localhost" });
    expect(lookupCalls).toEqual([]);
  });
});

describe("names: resolved once, every address judged, the judged address pinned", () => {
  it("a name is pinned to its judged address, and TLS keeps the name", async () => {
    steered.set("mail.steered.test", [["93.184.216.34"]]);
    expect(await guardHost("Mail.Steered.Test", strict, target)).toEqual({ address: "93.184.216.34", servername: "mail.steered.test" });
  });

  it("refuses a name when any of its addresses is private (a resolver may pick any)", async () => {
    steered.set("mixed.steered.test", [["93.184.216.34", "10.0.0.1"]]);
    await expect(guardHost("mixed.steered.test", strict, target)).rejects.toMatchObject({ code: "invalid_request" });
    await expect(guardUrl("https://mixed.steered.test/", strict, target)).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("refuses a name whose AAAA answer is loopback even if its A answer is public", async () => {
    steered.set("v6.steered.test", [["::1", "93.184.216.34"]]);
    await expect(guardUrl("https://v6.steered.test/", strict, target)).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("DNS rebinding cannot move a pinned host: the second answer is never asked for", async () => {
    steered.set("rebind.steered.test", [["93.184.216.34"], ["127.0.0.1"]]);
    const pinned = await guardHost("rebind.steered.test", strict, target);
    expect(pinned.address).toBe("93.184.216.34");
    expect(lookupCalls).toEqual(["rebind.steered.test"]);
  });

  it("a name that does not resolve is its own error (connections report it as not sent)", async () => {
    steered.set("gone.steered.test", [[]]);
    const error = await guardUrl("https://gone.steered.test/", strict, target).catch((e) => e);
    expect(error).toBeInstanceOf(UnresolvableHostError);
    expect(error).toMatchObject({ code: "invalid_request", details: { field: "base_url", host: "gone.steered.test" } });
  });
});

describe("isPublicAddress (the range judge)", () => {
  it.each([
    "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "255.255.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1",
    "2002:a00:1::1", "2001::1", "2001:db8::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1",
    "100::1", "not-an-address", "012.0.0.1", "127.1", "",
  ])("%s is not public", (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])(
    "%s is public",
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );
});
