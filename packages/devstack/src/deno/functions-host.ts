/**
 * Local stand-in for Supabase's edge runtime + API gateway. Runs under the real
 * Deno runtime (not Node):
 *
 *   npx deno run --allow-net --allow-env --allow-read --allow-sys --no-prompt \
 *     --config supabase/functions/deno.json packages/devstack/src/deno/functions-host.ts
 *
 * Every `<functions dir>/<name>/index.ts` is imported UNCHANGED, exactly as it would
 * be deployed. A deployed function calls `Deno.serve(handler)` at top level; here
 * `Deno.serve` is swapped for a capturing shim while each module loads, so the
 * handler is recorded instead of binding a port. One real `Deno.serve` on the API
 * port then routes `/functions/v1/<name>/…` to the captured handler with the URL
 * rewritten the way the hosted runtime presents it (`/<name>/…`), and proxies
 * everything else (auth, rest) to the Node platform server.
 *
 * On `/auth/v1`, `/rest/v1` and `/functions/v1` it rewrites `Authorization` exactly as
 * the Supabase CLI's API gateway (Kong) does, so a token the real gateway would
 * replace (anything sent as `Bearer sb_…`) does not reach a function locally either.
 *
 * Differences from hosted Supabase, on purpose: all functions share one isolate
 * (hosted: one worker each), modules load once at start (restart to pick up edits),
 * no CPU/memory/wall-clock limits are enforced, and RFC 9728's root metadata URL
 * `/.well-known/oauth-protected-resource/functions/v1/<name>` reaches the function
 * (hosted: only `/functions/v1/…` does; see route()).
 *
 * Env: SWITCHBOARD_HOST, SWITCHBOARD_API_PORT, SWITCHBOARD_PLATFORM_URL,
 * SWITCHBOARD_FUNCTIONS_DIR (":"-separated folders), plus what the functions read;
 * the gateway's API keys are the functions' own SUPABASE_PUBLISHABLE_KEYS /
 * SUPABASE_SECRET_KEYS and the JWTs it substitutes SUPABASE_ANON_KEY /
 * SUPABASE_SERVICE_ROLE_KEY.
 */

type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
type ErrorHandler = (error: unknown) => Response | Promise<Response>;

interface LoadedFunction {
  name: string;
  /** Folder URL the function was loaded from. */
  dir: URL;
  handler?: Handler;
  onError?: ErrorHandler;
  /** Why the module could not be used; requests get a 500 envelope. */
  loadError?: string;
}

const hostname = Deno.env.get("SWITCHBOARD_HOST") || "127.0.0.1";
const port = Number(Deno.env.get("SWITCHBOARD_API_PORT") || "54321");
const platformUrl = (Deno.env.get("SWITCHBOARD_PLATFORM_URL") || "http://127.0.0.1:54323").replace(/\/+$/, "");
/** PATH-style list; the first folder that has a function of a given name wins. */
const functionsDirs = (Deno.env.get("SWITCHBOARD_FUNCTIONS_DIR") || "supabase/functions").split(":").filter(Boolean).map(dirUrl);
/** Folder names that deploy as functions: `_shared` and dot folders do not. */
const FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

function dirUrl(path: string): URL {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  return new URL(`file://${absolute.replace(/\/*$/, "/")}`);
}

/** The error envelope of the README ("Errors") (same shape as supabase/functions/_shared/errors.ts). */
function envelope(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message, details: null } }, { status });
}

// ---- loading functions -----------------------------------------------------------

const functions = new Map<string, LoadedFunction>();
let loading: LoadedFunction | null = null;
/** Loads run one at a time: the shim attributes Deno.serve calls to `loading`. */
let loadQueue: Promise<unknown> = Promise.resolve();

function fakeServer(): Deno.HttpServer<Deno.NetAddr> {
  return {
    addr: { transport: "tcp", hostname, port },
    finished: new Promise<void>(() => {}),
    ref() {},
    unref() {},
    shutdown: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** Accepts Deno.serve(handler), Deno.serve(options, handler) and Deno.serve({ handler, ... }). */
function captureServe(...args: unknown[]): Deno.HttpServer<Deno.NetAddr> {
  const target = loading;
  if (!target) throw new Error("Deno.serve() called outside module evaluation; the devstack host only captures top-level calls");
  const options = (typeof args[0] === "function" ? {} : (args[0] ?? {})) as { handler?: unknown; onError?: unknown };
  const handler = typeof args[0] === "function" ? args[0] : typeof args[1] === "function" ? args[1] : options.handler;
  if (typeof handler !== "function") throw new TypeError("Deno.serve(): a handler function is required");
  if (target.handler) throw new Error(`function "${target.name}" called Deno.serve() more than once`);
  target.handler = handler as Handler;
  if (typeof options.onError === "function") target.onError = options.onError as ErrorHandler;
  return fakeServer();
}

async function importFunction(name: string, dir: URL): Promise<LoadedFunction> {
  const fn: LoadedFunction = { name, dir };
  const realServe = Deno.serve;
  loading = fn;
  Deno.serve = captureServe as typeof Deno.serve;
  try {
    const mod = await import(new URL(`${name}/index.ts`, dir).href);
    // The newer CLI template exports `{ fetch }` instead of calling Deno.serve.
    const fetchExport = mod?.default?.fetch;
    if (!fn.handler && typeof fetchExport === "function") fn.handler = (req, info) => fetchExport.call(mod.default, req, info);
    if (!fn.handler) fn.loadError = "index.ts did not call Deno.serve(handler)";
  } catch (error) {
    fn.loadError = "the function module failed to load";
    console.error(`[functions-host] ${name}: failed to load:`, error);
  } finally {
    Deno.serve = realServe;
    loading = null;
  }
  functions.set(name, fn);
  return fn;
}

function load(name: string, dir: URL): Promise<LoadedFunction> {
  const next = loadQueue.then(() => functions.get(name) ?? importFunction(name, dir));
  loadQueue = next.catch(() => {});
  return next;
}

/** The folder that serves `name`, if any. */
async function findFunction(name: string): Promise<URL | undefined> {
  if (!FUNCTION_NAME.test(name)) return undefined;
  for (const dir of functionsDirs) {
    try {
      if ((await Deno.stat(new URL(`${name}/index.ts`, dir))).isFile) return dir;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

async function loadAll(): Promise<void> {
  const names = new Set<string>();
  for (const dir of functionsDirs) {
    for await (const entry of Deno.readDir(dir)) if (entry.isDirectory) names.add(entry.name);
  }
  for (const name of [...names].sort()) {
    const dir = await findFunction(name);
    if (dir) await load(name, dir);
  }
}

// ---- gateway: the Authorization rule of Supabase's API gateway ---------------------------

/** The values of a platform key variable: a JSON object of name → key. */
function apiKeys(name: string): string[] {
  try {
    const parsed = JSON.parse(Deno.env.get(name) || "{}");
    return Object.values(parsed).filter((key): key is string => typeof key === "string" && key !== "");
  } catch {
    throw new Error(`${name} must be a JSON object of name → key`);
  }
}

const publishableKeys = apiKeys("SUPABASE_PUBLISHABLE_KEYS");
const secretKeys = apiKeys("SUPABASE_SECRET_KEYS");
const anonJwt = Deno.env.get("SUPABASE_ANON_KEY");
const serviceRoleJwt = Deno.env.get("SUPABASE_SERVICE_ROLE_KEY");
/** The paths the CLI's Kong applies the rule to (of those the devstack serves). */
const GATEWAY_PATHS = /^\/(auth|rest|functions)\/v1(\/|$)/;

/**
 * The Authorization the CLI's Kong forwards upstream (supabase/cli, `BearerToken` in
 * internal/start): the incoming header when present and not `Bearer sb_…` (compared
 * case-sensitively, as Kong does); else the service_role JWT for a secret `apikey`, the
 * anon JWT for a publishable one; else the raw `apikey` value (a legacy JWT key), and
 * nothing at all without one.
 */
function gatewayAuthorization(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization !== null && !authorization.startsWith("Bearer sb_")) return authorization;
  const apikey = headers.get("apikey");
  if (apikey !== null && serviceRoleJwt && secretKeys.includes(apikey)) return `Bearer ${serviceRoleJwt}`;
  if (apikey !== null && anonJwt && publishableKeys.includes(apikey)) return `Bearer ${anonJwt}`;
  return apikey;
}

/** Rewrites forwarded request headers as the gateway does for `path`. */
function applyGateway(headers: Headers, path: string): void {
  if (!GATEWAY_PATHS.test(path)) return;
  const authorization = gatewayAuthorization(headers);
  if (authorization === null) headers.delete("authorization");
  else headers.set("authorization", authorization);
}

// ---- routing -------------------------------------------------------------------------

async function invoke(fn: LoadedFunction, request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
  try {
    const response: unknown = await fn.handler!(request, info);
    if (response instanceof Response) return response;
    console.error(`[functions-host] ${fn.name}: handler returned ${typeof response}, not a Response`);
    return envelope(500, "internal_error", `Function "${fn.name}" did not return a Response`);
  } catch (error) {
    // Deno.serve semantics: a user-supplied onError turns a throw into its response.
    if (fn.onError) {
      try {
        const custom: unknown = await fn.onError(error);
        if (custom instanceof Response) return custom;
      } catch (nested) {
        console.error(`[functions-host] ${fn.name}: onError threw:`, nested);
      }
    }
    console.error(`[functions-host] ${fn.name}: uncaught error:`, error);
    return envelope(500, "internal_error", `Function "${fn.name}" failed with an uncaught error`);
  }
}

async function routeFunction(request: Request, url: URL, info: Deno.ServeHandlerInfo): Promise<Response> {
  const match = /^\/functions\/v1\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const name = match ? decodeURIComponent(match[1]) : "";
  const dir = functions.has(name) ? undefined : await findFunction(name);
  const fn = functions.get(name) ?? (dir ? await load(name, dir) : undefined);
  if (!match || !fn) return envelope(404, "not_found", `Function "${name}" not found`);
  if (fn.loadError || !fn.handler) return envelope(500, "internal_error", `Function "${name}" could not be loaded: ${fn.loadError}`);
  // Hosted Supabase hands the function a URL whose path starts with its name.
  const target = new URL(`${url.protocol}//${url.host}/${match[1]}${match[2] ?? ""}${url.search}`);
  const forwarded = new Request(target, request);
  applyGateway(forwarded.headers, url.pathname);
  return invoke(fn, forwarded, info);
}

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"];

/** Streams a request to the Node platform server and its response back, headers intact. */
async function proxy(request: Request, url: URL): Promise<Response> {
  const headers = new Headers(request.headers);
  applyGateway(headers, url.pathname);
  for (const name of [...HOP_BY_HOP, "host"]) headers.delete(name);
  headers.set("x-forwarded-host", url.host);
  headers.set("x-forwarded-proto", url.protocol.replace(":", ""));
  try {
    const upstream = await fetch(`${platformUrl}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    const responseHeaders = new Headers(upstream.headers);
    for (const name of HOP_BY_HOP) responseHeaders.delete(name);
    return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: responseHeaders });
  } catch (error) {
    console.error(`[functions-host] proxy ${request.method} ${url.pathname}:`, error);
    return Response.json({ message: "An invalid response was received from the upstream server" }, { status: 502 });
  }
}

function route(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> | Response {
  const url = new URL(request.url);
  if (url.pathname === "/_devstack/health") {
    const failed = Object.fromEntries([...functions.values()].filter((f) => f.loadError).map((f) => [f.name, f.loadError]));
    return Response.json({ status: "ok", functions: [...functions.keys()].sort(), failed });
  }
  if (url.pathname === "/functions/v1" || url.pathname.startsWith("/functions/v1/")) return routeFunction(request, url, info);
  // RFC 9728 §3.1's path-inserted metadata URL of a function's endpoint, handed to the
  // function's own `<name>/oauth-protected-resource`. Hosted Supabase's gateway routes
  // only /functions/v1/… to functions, so there the function's own URL (named in its
  // WWW-Authenticate challenges) is the one clients use (docs/agents.md, "Authorization").
  const metadata = /^\/\.well-known\/oauth-protected-resource(\/functions\/v1\/[^/]+)$/.exec(url.pathname);
  if (metadata && (request.method === "GET" || request.method === "HEAD")) {
    const target = new URL(`${metadata[1]}/oauth-protected-resource${url.search}`, url);
    return routeFunction(new Request(target, request), target, info);
  }
  return proxy(request, url);
}

// ---- start -----------------------------------------------------------------------------

await loadAll();
const server = Deno.serve({
  hostname,
  port,
  onListen: (addr) => console.log(JSON.stringify({ event: "ready", hostname: addr.hostname, port: addr.port })),
}, route);

// If the Node process that started us dies without stopping us, do not linger on the port.
const parentPid = Deno.ppid;
setInterval(() => {
  if (Deno.ppid !== parentPid) Deno.exit(0);
}, 1000);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    // Functions may hold database pools open; stop serving, then exit.
    server.shutdown().finally(() => Deno.exit(0));
    setTimeout(() => Deno.exit(0), 2000);
  });
}
