/**
 * The local stack: database, provider fakes, platform server (Auth stand-in with the
 * JWKS, PostgREST stand-in) and the Deno functions host on the API port, wired together
 * the way a Supabase project is. Used by the CLI (`npm start`) and the e2e global setup.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import postgres, { type Sql } from "postgres";
import { loadConfig, statePath, type ConfigOverrides, type DevstackConfig } from "./config.ts";
import { functionsLoginUrl, resetDatabase, resolveDatabaseUrl } from "./db.ts";
import { startClickSendFake } from "./fakes/clicksend.ts";
import { startSendGridFake } from "./fakes/sendgrid.ts";
import { startSmtpFake } from "./fakes/smtp.ts";
import { startExotelFake } from "./fakes/exotel.ts";
import { startTelnyxFake } from "./fakes/telnyx.ts";
import { startTwilioFake } from "./fakes/twilio.ts";
import { configureJwt, createApiKey, createJwtIssuer, createOpaqueApiKeys, type JwtIssuer } from "./jwt.ts";
import { startPlatform } from "./platform.ts";

/** The flat object printed by `npm run status` (in the style of `supabase status -o json`). */
export interface StackStatus {
  API_URL: string;
  FUNCTIONS_URL: string;
  REST_URL: string;
  DB_URL: string;
  /** Legacy JWT API keys (role anon / service_role). */
  ANON_KEY: string;
  SERVICE_ROLE_KEY: string;
  /** New-format API keys, sent as `apikey`; the gateway maps them to the JWTs above. */
  PUBLISHABLE_KEY: string;
  SECRET_KEY: string;
  JWKS_URL: string;
  CLICKSEND_FAKE_URL: string;
  SENDGRID_FAKE_URL: string;
  SENDGRID_FAKE_PUBLIC_KEY: string;
  TWILIO_FAKE_URL: string;
  TELNYX_FAKE_URL: string;
  /** The Telnyx fake's webhook signing key (base64 Ed25519 public key), for connections' webhook_public_key. */
  TELNYX_FAKE_PUBLIC_KEY: string;
  /** Exotel's Singapore region (api.exotel.com); EXOTEL_IN_FAKE_URL is Mumbai (api.in.exotel.com). */
  EXOTEL_FAKE_URL: string;
  EXOTEL_IN_FAKE_URL: string;
  SMTP_FAKE_HOST: string;
  SMTP_FAKE_PORT: string;
  SMTP_FAKE_STARTTLS_PORT: string;
  SMTP_FAKE_INSPECT_URL: string;
  SMTP_FAKE_CA_PEM_PATH: string;
  /**
   * Filled by the seedDemo hook: DEMO_USER_ID, DEMO_USER_EMAIL, DEMO_USER_PASSWORD,
   * DEMO_USER_JWT (the demo team's owner), DEMO_WORKSPACE_ID, DEMO_MEMBER_ID,
   * DEMO_MEMBER_EMAIL, DEMO_MEMBER_JWT, DEMO_AGENT_ID, DEMO_AGENT_KEY (the member's agent).
   */
  [key: string]: string;
}

export interface SeedDemoContext {
  /** Superuser connection to the stack's database (same as SUPABASE_DB_URL). */
  sql: Sql;
  status: StackStatus;
  issuer: JwtIssuer;
  config: DevstackConfig;
}

export interface StartStackOptions {
  config?: ConfigOverrides;
  /** Database name passed to resolveDatabaseUrl (default: its own, "switchboard"). */
  databaseName?: string;
  /** Use exactly this database (skips resolveDatabaseUrl). */
  databaseUrl?: string;
  /** Recreate the database (bootstrap, migrations, seed) before starting. */
  reset?: boolean;
  /** Extra environment for the edge functions (added to, and overriding, the platform's). */
  functionsEnv?: Record<string, string>;
  /** Deno host output: "inherit" (default) or a file path (truncated at start). */
  functionsLog?: string;
  /**
   * ---- DEMO DATA HOOK (owned by the lead) ----
   * Runs after everything is up; the returned keys (DEMO_USER_ID, DEMO_USER_JWT,
   * DEMO_WORKSPACE_ID, DEMO_MEMBER_ID, DEMO_AGENT_ID, DEMO_AGENT_KEY, …) are merged into
   * the status and state.json.
   */
  seedDemo?: (ctx: SeedDemoContext) => Promise<Record<string, string>>;
  /** Write `<stateDir>/state.json` (default true). */
  writeState?: boolean;
  log?: (line: string) => void;
}

export interface StackHandle {
  status: StackStatus;
  config: DevstackConfig;
  /** Resolves when the Deno functions host exits (normally only after stop()). */
  functionsExited: Promise<number | null>;
  /** Process id of the Deno functions host (fault tests kill it). */
  functionsPid: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 180_000; // first start may download npm packages for Deno

/** Whether `port` can be listened on now; resolves the bound port (0 asks the OS for one). */
async function tryListen(host: string, port: number): Promise<number | null> {
  const server = createServer();
  try {
    server.listen({ host, port, exclusive: true });
    await once(server, "listening");
    return (server.address() as { port: number }).port;
  } catch {
    return null;
  } finally {
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  }
}

/**
 * A port that is free right now, for a server that binds it later (the functions host
 * binds the API port only after loading every function). Drawn below Linux's ephemeral
 * range (32768–60999), so the OS cannot hand it meanwhile to one of our own servers on
 * port 0 or to an outgoing connection; the OS's pick when no such port is free.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await tryListen(host, candidate)) !== null) return candidate;
  }
  return (await tryListen(host, 0))!;
}

/** Deno only reaches the npm registry the machine's npm is configured for. */
export function npmRegistry(): string {
  if (process.env.NPM_CONFIG_REGISTRY) return process.env.NPM_CONFIG_REGISTRY;
  if (process.env.npm_config_registry) return process.env.npm_config_registry;
  try {
    return execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 15_000 }).trim();
  } catch {
    return "https://registry.npmjs.org/";
  }
}

async function waitForHost(url: string, child: ChildProcess, logHint: string): Promise<{ failed: Record<string, string> }> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`The Deno functions host ${exited} during startup${logHint}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return (await res.json()) as { failed: Record<string, string> };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`The Deno functions host did not answer ${url} within ${READY_TIMEOUT_MS / 1000}s${logHint}`);
}

function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Starts the whole stack; on any failure, stops what already started and rethrows. */
export async function startStack(opts: StartStackOptions = {}): Promise<StackHandle> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const config = loadConfig(opts.config);
  const { host, ports } = config;
  const cleanups: (() => Promise<unknown>)[] = [];
  const runCleanups = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => log(`cleanup: ${(e as Error).message}`));
    cleanups.length = 0;
  };

  try {
    const dbUrl = opts.databaseUrl ?? (await resolveDatabaseUrl(opts.databaseName));
    if (opts.reset) {
      log("Resetting database (bootstrap, migrations, seed)…");
      await resetDatabase(dbUrl);
    }
    await mkdir(config.stateDir, { recursive: true });

    // The API URL is in every token's `iss` and in the functions' env, so the API
    // port must be known up front even when "any free port" was asked for.
    const apiPort = ports.api || (await freePort(host));
    const apiUrl = `http://${host}:${apiPort}`;
    configureJwt({ stateDir: config.stateDir, apiUrl });
    const issuer = await createJwtIssuer({ stateDir: config.stateDir, apiUrl });
    const [anonKey, serviceRoleKey, apiKeys] = await Promise.all([
      createApiKey("anon", { issuer }),
      createApiKey("service_role", { issuer }),
      createOpaqueApiKeys({ stateDir: config.stateDir }),
    ]);

    const fakes = await Promise.allSettled([
      startClickSendFake({ port: ports.clicksend, host }),
      startSendGridFake({ port: ports.sendgrid, host }),
      startSmtpFake({ host, implicitTlsPort: ports.smtpImplicitTls, starttlsPort: ports.smtpStarttls, httpPort: ports.smtpHttp }),
      startTwilioFake({ port: ports.twilio, host }),
      startTelnyxFake({ port: ports.telnyx, host }),
      startExotelFake({ port: ports.exotel, inPort: ports.exotelIn, host }),
    ] as const);
    // Close the fakes that did start even if another one failed.
    for (const fake of fakes) if (fake.status === "fulfilled") cleanups.push(() => fake.value.close());
    const clicksend = settled(fakes[0]);
    const sendgrid = settled(fakes[1]);
    const smtp = settled(fakes[2]);
    const twilio = settled(fakes[3]);
    const telnyx = settled(fakes[4]);
    const exotel = settled(fakes[5]);
    const caPemPath = join(config.stateDir, "smtp-fake-ca.pem");
    await writeFile(caPemPath, smtp.caPem);

    const sql = postgres(dbUrl, {
      max: 10,
      onnotice: () => {},
      connection: { application_name: "switchboard-devstack-platform" },
    });
    cleanups.push(() => sql.end({ timeout: 2 }));
    const platform = await startPlatform({
      sql, issuer, host, port: ports.platform, log,
      apiKeys: { publishable: [apiKeys.publishable], secret: [apiKeys.secret] },
    });
    cleanups.push(() => platform.close());

    const functionsUrl = `${apiUrl}/functions/v1`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NPM_CONFIG_REGISTRY: npmRegistry(),
      DENO_NO_UPDATE_CHECK: "1",
      // Functions trust the SMTP fake's CA the way hosted ones trust public CAs.
      DENO_CERT: caPemPath,
      SWITCHBOARD_HOST: host,
      SWITCHBOARD_API_PORT: String(apiPort),
      SWITCHBOARD_PLATFORM_URL: platform.url,
      SWITCHBOARD_FUNCTIONS_DIR: config.functionsDirs.join(delimiter),
      SUPABASE_URL: apiUrl,
      SUPABASE_DB_URL: dbUrl,
      // As docs/operations.md deploys them: the functions log in as their own role, here
      // directly (no pooler in front), so statements are prepared.
      SWITCHBOARD_DB_URL: functionsLoginUrl(dbUrl),
      SWITCHBOARD_DB_PREPARE: "true",
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
      // As the platform passes them: JSON objects of name → key.
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: apiKeys.publishable }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: apiKeys.secret }),
      SUPABASE_JWKS: JSON.stringify(issuer.jwks),
      SWITCHBOARD_ALLOW_PRIVATE_NETWORKS: "true",
      // The fakes are the local stack's providers: connections point their base_url at them.
      SWITCHBOARD_ALLOW_CUSTOM_PROVIDER_HOSTS: "true",
      SWITCHBOARD_FUNCTIONS_URL: functionsUrl,
      ...opts.functionsEnv,
    };
    let stdio: ("ignore" | "inherit" | number)[] = ["ignore", "inherit", "inherit"];
    if (opts.functionsLog && opts.functionsLog !== "inherit") {
      const file = await open(opts.functionsLog, "w");
      cleanups.push(() => file.close());
      stdio = ["ignore", file.fd, file.fd];
    }
    const child = spawn(
      config.denoBin,
      [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        "--no-prompt",
        "--config",
        config.denoConfig,
        join(config.repoRoot, "packages/devstack/src/deno/functions-host.ts"),
      ],
      { cwd: config.repoRoot, env, stdio },
    );
    const functionsExited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.once("error", (e) => log(`Deno functions host: ${e.message}`));
    cleanups.push(() => stopChild(child));
    const logHint = opts.functionsLog && opts.functionsLog !== "inherit" ? ` (see ${opts.functionsLog})` : "";
    const health = await waitForHost(`${apiUrl}/_devstack/health`, child, logHint);
    for (const [name, reason] of Object.entries(health.failed ?? {})) log(`warning: function "${name}" is not served: ${reason}`);

    const status: StackStatus = {
      API_URL: apiUrl,
      FUNCTIONS_URL: functionsUrl,
      REST_URL: `${apiUrl}/rest/v1`,
      DB_URL: dbUrl,
      ANON_KEY: anonKey,
      SERVICE_ROLE_KEY: serviceRoleKey,
      PUBLISHABLE_KEY: apiKeys.publishable,
      SECRET_KEY: apiKeys.secret,
      JWKS_URL: `${apiUrl}/auth/v1/.well-known/jwks.json`,
      CLICKSEND_FAKE_URL: clicksend.url,
      SENDGRID_FAKE_URL: sendgrid.url,
      SENDGRID_FAKE_PUBLIC_KEY: sendgrid.publicKey,
      TWILIO_FAKE_URL: twilio.url,
      TELNYX_FAKE_URL: telnyx.url,
      TELNYX_FAKE_PUBLIC_KEY: telnyx.publicKey,
      EXOTEL_FAKE_URL: exotel.urls.sg,
      EXOTEL_IN_FAKE_URL: exotel.urls.in,
      SMTP_FAKE_HOST: smtp.host,
      SMTP_FAKE_PORT: String(smtp.implicitTlsPort),
      SMTP_FAKE_STARTTLS_PORT: String(smtp.starttlsPort),
      SMTP_FAKE_INSPECT_URL: smtp.inspectUrl ?? "",
      SMTP_FAKE_CA_PEM_PATH: caPemPath,
    };

    // ---- DEMO DATA HOOK: the lead's seedDemo adds DEMO_USER_ID, DEMO_USER_JWT,
    // DEMO_WORKSPACE_ID, DEMO_MEMBER_ID, DEMO_AGENT_ID, DEMO_AGENT_KEY, … (see
    // StartStackOptions.seedDemo).
    if (opts.seedDemo) Object.assign(status, await opts.seedDemo({ sql, status, issuer, config }));

    const stateFile = statePath(config);
    if (opts.writeState !== false) {
      await writeFile(stateFile, `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
      cleanups.push(async () => {
        // Only remove the state we wrote: another stack may have replaced it.
        const current = await readFile(stateFile, "utf8").catch(() => "");
        if (current.includes(`"API_URL": "${apiUrl}"`)) await rm(stateFile, { force: true });
      });
    }

    let stopping: Promise<void> | undefined;
    return {
      status,
      config,
      functionsExited,
      functionsPid: child.pid!,
      stop: () => (stopping ??= runCleanups()),
    };
  } catch (error) {
    await runCleanups();
    const { code, port } = error as { code?: string; port?: number };
    if (code === "EADDRINUSE") {
      throw new Error(`Port ${port ?? "?"} is already in use: is another local stack running? (\`npm run status\`, or set SWITCHBOARD_*_PORT / SWITCHBOARD_EPHEMERAL_PORTS=1)`);
    }
    throw error;
  }
}

/**
 * The status of the stack `npm start` is running, or exits with a clear message when
 * none answers. Used by `npm run status` and `npm run demo`.
 */
export async function readRunningState(config: DevstackConfig = loadConfig()): Promise<StackStatus> {
  const file = statePath(config);
  let state: StackStatus;
  try {
    state = JSON.parse(await readFile(file, "utf8")) as StackStatus;
  } catch {
    console.error(`The local stack is not running (no ${file}). Start it with \`npm start\`.`);
    process.exit(1);
  }
  try {
    const res = await fetch(`${state.API_URL}/_devstack/health`, { signal: AbortSignal.timeout(3_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (error) {
    console.error(`The local stack is not running: ${state.API_URL} does not answer (${(error as Error).message}). Start it with \`npm start\`.`);
    process.exit(1);
  }
  return state;
}
