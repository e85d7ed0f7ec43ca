/**
 * The shared HTTP transport (supabase/functions/_shared/providers/transport.ts), against a
 * real local server on 127.0.0.1 (and a closed port): the one "may this have been sent?"
 * rule (`classify`) for every status class on requests that act (sends) and that only
 * read; Retry-After in its three spellings; timeouts, refused and reset connections;
 * redirects refused and never followed; what an adapter's `describe` may and may not
 * change; the failover rule (`canFailOver`); `Connection: close` on every request; and
 * credentials that never appear in an error.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import type { NetworkPolicy } from "../../supabase/functions/_shared/net/guard.ts";
import {
  basicAuth,
  canFailOver,
  classify,
  type ErrorDescription,
  networkFailure,
  providerFetch,
  type ProviderEndpoint,
  type ProviderRequest,
  type ProviderResponse,
  retryAfterSeconds,
} from "../../supabase/functions/_shared/providers/transport.ts";
import { ProviderError, type ProviderErrorKind } from "../../supabase/functions/_shared/providers/types.ts";

/** The local stack's policy: loopback allowed. */
const local: NetworkPolicy = { allowPrivateNetworks: true, allowCustomProviderHosts: true, blockedSmtpPorts: [] };
const hosted: NetworkPolicy = { allowPrivateNetworks: false, allowCustomProviderHosts: false, blockedSmtpPorts: [25, 587] };
const endpoint: ProviderEndpoint = { provider: "twilio", displayName: "TestProvider", network: local };

const USER = "AC-transport-user-5f1c";
const SECRET = "s3cr3t-transport-key-9d2e";
const AUTH = basicAuth(USER, SECRET);

// ---------------------------------------------------------------------------
// The server: behaviour chosen by path
// ---------------------------------------------------------------------------

interface Seen {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let canary: http.Server;
let base: string;
let canaryUrl: string;
let closedUrl: string;
let canaryConnections = 0;
const seen: Seen[] = [];
const sockets = new Set<Socket>();

/**
 * /status/<code>[?h=<name>:<value>]  answers <code> with a small JSON body (and header)
 * /json, /text, /empty                 2xx answers of each body kind
 * /hang                                reads the request, never answers
 * /reset                               reads the whole request, then drops the connection
 * /redirect/<code>                     answers <code> with Location: the canary
 * /echo-auth/<code>                    answers <code> echoing the Authorization header in body and headers
 */
function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
  const url = new URL(req.url ?? "/", "http://x");
  seen.push({ method: req.method ?? "", path: url.pathname, headers: req.headers, body });
  const [, route, arg] = url.pathname.split("/");
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const h of url.searchParams.getAll("h")) {
    const i = h.indexOf(":");
    headers[h.slice(0, i)] = h.slice(i + 1);
  }
  switch (route) {
    case "status":
      res.writeHead(Number(arg), headers).end(JSON.stringify({ error: `status ${arg}` }));
      return;
    case "json":
      res.writeHead(200, headers).end('{"ok":true,"n":1}');
      return;
    case "text":
      res.writeHead(201, { "content-type": "text/html" }).end("<html>not json</html>");
      return;
    case "empty":
      res.writeHead(202).end();
      return;
    case "hang":
      return; // the socket is destroyed in afterAll
    case "reset":
      req.socket.destroy();
      return;
    case "redirect":
      res.writeHead(Number(arg), { location: `${canaryUrl}/stolen` }).end();
      return;
    case "echo-auth": {
      const auth = String(req.headers.authorization ?? "");
      res.writeHead(Number(arg), { ...headers, "x-echo": auth }).end(JSON.stringify({ message: `you sent ${auth}`, auth }));
      return;
    }
    default:
      res.writeHead(404).end();
  }
}

async function listen(s: http.Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return (s.address() as AddressInfo).port;
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => handle(req, res, body));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  base = `http://127.0.0.1:${await listen(server)}`;

  canary = http.createServer((_req, res) => res.end("{}"));
  canary.on("connection", () => canaryConnections++);
  canaryUrl = `http://127.0.0.1:${await listen(canary)}`;

  const closed = http.createServer();
  closedUrl = `http://127.0.0.1:${await listen(closed)}`;
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all([server, canary].map((s) => new Promise((resolve) => s.close(resolve))));
});

beforeEach(() => {
  seen.length = 0;
  canaryConnections = 0;
});

const req = (path: string, acts: boolean, extra: Partial<ProviderRequest> = {}): ProviderRequest => ({
  method: acts ? "POST" : "GET",
  url: `${base}${path}`,
  headers: { Authorization: AUTH, ...(acts ? { "Content-Type": "application/json" } : {}) },
  ...(acts ? { body: JSON.stringify({ to: "+15005550006", body: "hi" }) } : {}),
  acts,
  ...extra,
});

async function failure(
  request: ProviderRequest,
  describe?: (r: ProviderResponse) => ErrorDescription,
  options: { timeoutMs?: number } = {},
): Promise<ProviderError> {
  const error = await providerFetch(endpoint, request, describe, options).then(
    () => {
      throw new Error("expected the request to fail");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

const BOTH = [true, false] as const;

// ---------------------------------------------------------------------------
// classify: the one sent/not-sent rule
// ---------------------------------------------------------------------------

describe("classify", () => {
  // [status, kind, maybe sent when the request acts]
  const table: Array<[number, ProviderErrorKind, boolean]> = [
    [400, "invalid", false],
    [401, "auth", false],
    [402, "insufficient_funds", false],
    [403, "forbidden", false],
    [404, "not_found", false],
    [405, "permanent", false],
    [409, "permanent", false],
    [410, "permanent", false],
    [413, "too_large", false],
    [415, "permanent", false],
    [422, "invalid", false],
    [429, "rate_limited", false],
    [451, "permanent", false],
    [408, "transient", true], // the provider may have acted before giving up
    [500, "transient", true],
    [501, "transient", true],
    [502, "transient", true],
    [503, "unavailable", true],
    [504, "transient", true],
    [599, "transient", true],
  ];

  it.each(table.flatMap(([status, kind, maybe]) => BOTH.map((acts) => [status, acts, kind, maybe && acts] as const)))(
    "HTTP %i with acts=%s → %s, maybeSent %s",
    (status, acts, kind, maybeSent) => {
      expect(classify(status, acts)).toEqual({ kind, maybeSent });
    },
  );

  it("a 5xx or 408 is maybe-sent exactly when the request acts; no 4xx other than 408 ever is", () => {
    for (let status = 400; status <= 599; status++) {
      for (const acts of BOTH) {
        const { maybeSent } = classify(status, acts);
        expect(maybeSent, `${status} acts=${acts}`).toBe(acts && (status >= 500 || status === 408));
      }
    }
  });

  it("anything else reaching it (1xx, 3xx) is permanent, maybe-sent iff the request acts", () => {
    for (const status of [100, 304, 399]) {
      expect(classify(status, true)).toEqual({ kind: "permanent", maybeSent: true });
      expect(classify(status, false)).toEqual({ kind: "permanent", maybeSent: false });
    }
  });

  it.each(table.flatMap(([status]) => BOTH.map((acts) => [status, acts] as const)))(
    "providerFetch applies it to a real HTTP %i answer (acts=%s)",
    async (status, acts) => {
      const error = await failure(req(`/status/${status}`, acts));
      const verdict = classify(status, acts);
      expect(error).toMatchObject({ kind: verdict.kind, maybeSent: verdict.maybeSent, details: { provider: "twilio", status } });
      expect(error.message).toContain(`TestProvider`);
      expect(error.message).toContain(`HTTP ${status}`);
      expect(seen).toHaveLength(1); // never retried
    },
  );
});

// ---------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------

describe("2xx answers", () => {
  it("returns status, headers, text and parsed JSON", async () => {
    const r = await providerFetch(endpoint, req("/json?h=x-message-id:abc", true));
    expect(r).toMatchObject({ status: 200, text: '{"ok":true,"n":1}', json: { ok: true, n: 1 } });
    expect(r.headers.get("x-message-id")).toBe("abc");
    expect(seen[0]).toMatchObject({ method: "POST", body: '{"to":"+15005550006","body":"hi"}' });
  });

  it("a body that is not JSON, or none, has json undefined", async () => {
    expect(await providerFetch(endpoint, req("/text", false))).toMatchObject({ status: 201, json: undefined });
    expect(await providerFetch(endpoint, req("/empty", true))).toMatchObject({ status: 202, text: "", json: undefined });
  });
});

// ---------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------

describe("Retry-After", () => {
  const now = () => Date.now() / 1000;

  it("reads seconds, an HTTP date, and a reset given as a Unix time", () => {
    expect(retryAfterSeconds(new Headers({ "retry-after": "7" }))).toBe(7);
    expect(retryAfterSeconds(new Headers({ "retry-after": "2.2" }))).toBe(3);
    expect(retryAfterSeconds(new Headers({ "retry-after": "0" }))).toBe(0);
    const date = retryAfterSeconds(new Headers({ "retry-after": new Date(Date.now() + 30_000).toUTCString() }))!;
    expect(date).toBeGreaterThanOrEqual(29);
    expect(date).toBeLessThanOrEqual(31);
    expect(retryAfterSeconds(new Headers({ "retry-after": new Date(Date.now() - 60_000).toUTCString() }))).toBe(0);
    const unix = retryAfterSeconds(new Headers({ "x-ratelimit-reset": String(Math.floor(now()) + 42) }))!;
    expect(unix).toBeGreaterThanOrEqual(41);
    expect(unix).toBeLessThanOrEqual(42);
    expect(retryAfterSeconds(new Headers({ "x-ratelimit-reset": String(Math.floor(now()) - 10) }))).toBe(0);
    expect(retryAfterSeconds(new Headers({ "ratelimit-reset": "5" }))).toBe(5);
  });

  it("prefers Retry-After, skips blanks, and is undefined when nothing readable is there", () => {
    expect(retryAfterSeconds(new Headers({ "retry-after": "3", "x-ratelimit-reset": String(Math.floor(now()) + 100) }))).toBe(3);
    expect(retryAfterSeconds(new Headers({ "retry-after": " ", "ratelimit-reset": "9" }))).toBe(9);
    expect(retryAfterSeconds(new Headers())).toBeUndefined();
    expect(retryAfterSeconds(new Headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(retryAfterSeconds(new Headers({ "retry-after": "-5" })) ?? 0).toBe(0); // never a negative wait
  });

  it("a real 429 or 503 carries retry_after in seconds, from each spelling", async () => {
    expect((await failure(req("/status/429?h=retry-after:7", true))).details).toMatchObject({ status: 429, retry_after: 7 });
    const date = encodeURIComponent(new Date(Date.now() + 20_000).toUTCString());
    const fromDate = (await failure(req(`/status/503?h=retry-after:${date}`, false))).details.retry_after as number;
    expect(fromDate).toBeGreaterThanOrEqual(19);
    expect(fromDate).toBeLessThanOrEqual(21);
    const reset = Math.floor(Date.now() / 1000) + 60;
    const fromUnix = (await failure(req(`/status/429?h=x-ratelimit-reset:${reset}`, true))).details.retry_after as number;
    expect(fromUnix).toBeGreaterThanOrEqual(59);
    expect(fromUnix).toBeLessThanOrEqual(60);
    expect((await failure(req("/status/429", true))).details.retry_after).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// Network failures
// ---------------------------------------------------------------------------

describe("network failures", () => {
  it.each(BOTH)("a timeout is kind timeout, maybe-sent iff the request acts (acts=%s), one request", async (acts) => {
    const started = Date.now();
    const error = await failure(req("/hang", acts), undefined, { timeoutMs: 150 });
    expect(error).toMatchObject({ kind: "timeout", maybeSent: acts, details: { provider: "twilio" } });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(seen).toHaveLength(1);
    expect(canFailOver(error)).toBe(!acts);
  });

  it.each(BOTH)("connection refused is unavailable and not sent (acts=%s)", async (acts) => {
    const error = await failure({ ...req("/anything", acts), url: `${closedUrl}/anything` });
    expect(error).toMatchObject({ kind: "unavailable", maybeSent: false });
    expect(error.message).toMatch(/could not connect/i);
    expect(canFailOver(error)).toBe(true);
  });

  it.each(BOTH)("a connection reset after the request was read is maybe-sent iff the request acts (acts=%s), one request", async (acts) => {
    const error = await failure(req("/reset", acts));
    expect(error).toMatchObject({ kind: "unavailable", maybeSent: acts });
    expect(error.message).toMatch(/failed mid-request/);
    expect(seen).toHaveLength(1);
    if (acts) expect(seen[0].body).toContain("+15005550006"); // the provider had the whole request
    expect(canFailOver(error)).toBe(!acts);
  });

  it("networkFailure reads undici's cause chain: a refused connect is never maybe-sent", () => {
    const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:443"), { code: "ECONNREFUSED" }) });
    expect(networkFailure(endpoint, refused, true)).toMatchObject({ kind: "unavailable", maybeSent: false });
    const deno = new TypeError("error sending request: client error (Connect): tcp connect error: Connection refused");
    expect(networkFailure(endpoint, deno, true)).toMatchObject({ kind: "unavailable", maybeSent: false });
    for (const code of ["CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "ERR_TLS_CERT_ALTNAME_INVALID"]) {
      // A refused certificate fails the TLS handshake: none of the request was written.
      const tls = new TypeError("fetch failed", { cause: Object.assign(new Error(`certificate refused (${code})`), { code }) });
      expect(networkFailure(endpoint, tls, true), code).toMatchObject({ kind: "unavailable", maybeSent: false });
    }
    const denoTls = new TypeError("error sending request: client error (Connect): invalid peer certificate: Expired");
    expect(networkFailure(endpoint, denoTls, true)).toMatchObject({ maybeSent: false });
    const reset = new TypeError("fetch failed", { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) });
    expect(networkFailure(endpoint, reset, true)).toMatchObject({ kind: "unavailable", maybeSent: true });
    expect(networkFailure(endpoint, new DOMException("aborted", "TimeoutError"), false)).toMatchObject({ kind: "timeout", maybeSent: false });
  });

  it("a URL the network guard refuses is an ApiError, and nothing connects", async () => {
    const error = await providerFetch({ ...endpoint, network: hosted }, req("/json", true)).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(seen).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------

describe("redirects", () => {
  it.each([301, 302, 303, 307, 308].flatMap((status) => BOTH.map((acts) => [status, acts] as const)))(
    "a %i is refused as not sent (acts=%s), and the redirect target gets no request",
    async (status, acts) => {
      const error = await failure(req(`/redirect/${status}`, acts));
      expect(error).toMatchObject({ kind: "permanent", maybeSent: false, details: { provider: "twilio", status } });
      expect(error.message).toMatch(/redirect/);
      expect(seen).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(canaryConnections).toBe(0);
      expect(canFailOver(error)).toBe(false);
    },
  );
});

// ---------------------------------------------------------------------------
// describe: what the adapter's reading of an error body may change
// ---------------------------------------------------------------------------

describe("describe", () => {
  const says = (said: ErrorDescription) => () => said;

  it("can refine a 4xx kind, and its code, message, errors and details reach the error", async () => {
    const error = await failure(
      req("/status/400", true),
      says({ kind: "insufficient_funds", code: "21606", message: "Account balance too low", errors: [{ field: "to" }], details: { more_info: "https://x" } }),
    );
    expect(error).toMatchObject({
      kind: "insufficient_funds",
      maybeSent: false,
      details: { status: 400, provider_code: "21606", errors: [{ field: "to" }], more_info: "https://x" },
    });
    expect(error.message).toBe("TestProvider refused the request: the account has insufficient funds (HTTP 400: Account balance too low)");
    expect(canFailOver(error)).toBe(true);
    expect(await failure(req("/status/409", true), says({ kind: "rate_limited" }))).toMatchObject({ kind: "rate_limited", maybeSent: false });
    expect(await failure(req("/status/403", false), says({ kind: "auth" }))).toMatchObject({ kind: "auth", maybeSent: false });
  });

  it("reads the real response it is given", async () => {
    let given: ProviderResponse | undefined;
    await failure(req("/status/422?h=x-request-id:r-1", true), (r) => {
      given = r;
      return {};
    });
    expect(given).toMatchObject({ status: 422, json: { error: "status 422" } });
    expect(given!.headers.get("x-request-id")).toBe("r-1");
  });

  it.each([500, 502, 503, 504, 408].flatMap((status) => BOTH.map((acts) => [status, acts] as const)))(
    "can never refine a %i (acts=%s): it stays what classify says",
    async (status, acts) => {
      for (const kind of ["invalid", "insufficient_funds", "auth", "permanent"] as const) {
        const error = await failure(req(`/status/${status}`, acts), says({ kind, message: "no credit left" }));
        expect(error).toMatchObject(classify(status, acts));
        expect(error.message).toContain("no credit left"); // the message is still the provider's
      }
    },
  );

  it("a long provider message is cut to 300 characters", async () => {
    const error = await failure(req("/status/400", false), says({ message: "x".repeat(1000) }));
    expect(error.message).toContain(`${"x".repeat(300)})`);
    expect(error.message).not.toContain("x".repeat(301));
  });
});

// ---------------------------------------------------------------------------
// canFailOver
// ---------------------------------------------------------------------------

describe("canFailOver", () => {
  const ACCOUNT_LEVEL: ProviderErrorKind[] = ["auth", "forbidden", "insufficient_funds", "rate_limited", "unavailable", "transient", "timeout"];
  const ALL: ProviderErrorKind[] = [...ACCOUNT_LEVEL, "invalid", "too_large", "not_found", "permanent"];

  it.each(ALL)("%s: true exactly for a not-sent account-level failure, never when maybe sent", (kind) => {
    expect(canFailOver(new ProviderError(kind, "x", { provider: "twilio" }, false))).toBe(ACCOUNT_LEVEL.includes(kind));
    expect(canFailOver(new ProviderError(kind, "x", { provider: "twilio" }, true))).toBe(false);
  });

  it("false for anything that is not a ProviderError", () => {
    for (const error of [new Error("x"), new ApiError("invalid_request", "x"), undefined, null, "unavailable", { kind: "auth", maybeSent: false }]) {
      expect(canFailOver(error)).toBe(false);
    }
  });

  it("on real answers: account refusals move on; the message's own faults and maybe-sent sends do not", async () => {
    const cases: Array<[string, boolean, boolean]> = [
      ["/status/401", true, true],
      ["/status/402", true, true],
      ["/status/403", true, true],
      ["/status/429", true, true],
      ["/status/503", false, true], // a read: nothing was sent
      ["/status/500", false, true],
      ["/status/500", true, false], // a send: may be out
      ["/status/503", true, false],
      ["/status/408", true, false],
      ["/status/400", true, false],
      ["/status/422", true, false],
      ["/status/413", true, false],
      ["/status/404", true, false],
    ];
    for (const [path, acts, expected] of cases) {
      expect(canFailOver(await failure(req(path, acts))), `${path} acts=${acts}`).toBe(expected);
    }
  });
});

// ---------------------------------------------------------------------------
// Headers and secrets
// ---------------------------------------------------------------------------

describe("request headers", () => {
  it("sends Connection: close and Accept: application/json on every request, with the adapter's headers", async () => {
    await providerFetch(endpoint, req("/json", true));
    await providerFetch(endpoint, req("/json", false));
    await failure(req("/status/500", true));
    expect(seen.map((s) => s.headers.connection)).toEqual(["close", "close", "close"]);
    expect(seen.map((s) => s.headers.accept)).toEqual(["application/json", "application/json", "application/json"]);
    expect(seen.map((s) => s.headers.authorization)).toEqual([AUTH, AUTH, AUTH]);
  });

  it("an adapter cannot turn Connection: close off, however it spells the header", async () => {
    for (const name of ["Connection", "connection", "CONNECTION"]) {
      await providerFetch(endpoint, req("/json", true, { headers: { Authorization: AUTH, [name]: "keep-alive" } }));
    }
    expect(seen.map((s) => s.headers.connection)).toEqual(["close", "close", "close"]);
  });

  it("an adapter's Accept, in any case, replaces the default instead of joining it", async () => {
    await providerFetch(endpoint, req("/json", false, { headers: { accept: "application/xml" } }));
    await providerFetch(endpoint, req("/json", false, { headers: { Accept: "text/plain" } }));
    expect(seen.map((s) => s.headers.accept)).toEqual(["application/xml", "text/plain"]);
  });

  it("basicAuth is RFC 7617 Basic over UTF-8", () => {
    expect(basicAuth("user", "pass")).toBe(`Basic ${Buffer.from("user:pass").toString("base64")}`);
    expect(basicAuth("usér", "pässwörd✓")).toBe(`Basic ${Buffer.from("usér:pässwörd✓", "utf8").toString("base64")}`);
  });
});

describe("credentials never appear in an error", () => {
  const token = AUTH.slice("Basic ".length);
  const leaks = (error: unknown) => {
    const e = error as { message?: string; details?: unknown; stack?: string };
    const text = `${e.message ?? ""} ${JSON.stringify(e.details ?? null)}`;
    return [USER, SECRET, token, AUTH].filter((secret) => text.includes(secret));
  };

  it("not from an answer that echoes the Authorization header back, in the body or a header", async () => {
    for (const status of [400, 401, 403, 429, 500, 503]) {
      for (const acts of BOTH) {
        const error = await failure(req(`/echo-auth/${status}`, acts));
        expect(seen.at(-1)!.headers.authorization).toBe(AUTH); // the server did get (and echo) it
        expect(leaks(error), `${status} acts=${acts}`).toEqual([]);
      }
    }
  });

  it("not from a timeout, a reset, a refused connection or a redirect", async () => {
    const errors = [
      await failure(req("/hang", true), undefined, { timeoutMs: 100 }),
      await failure(req("/reset", true)),
      await failure({ ...req("/x", true), url: `${closedUrl}/x` }),
      await failure(req("/redirect/302", true)),
    ];
    for (const error of errors) expect(leaks(error), error.message).toEqual([]);
  });
});
