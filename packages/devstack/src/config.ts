/**
 * Fixed local ports and paths of the devstack.
 *
 * The defaults mirror `supabase start` (API gateway on 54321) so URLs in docs and
 * examples work unchanged. Every value can be overridden by environment variable
 * (CI, tests, a second stack next to a running one) or by the caller; port 0 means
 * "any free port", which is what the e2e suite uses so it never collides with a
 * developer's `npm start`.
 */
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export interface DevstackPorts {
  /** API gateway: Deno functions host, proxies everything else to the platform server. */
  api: number;
  /** Node platform server (JWKS, PostgREST stand-in); reached through the API port. */
  platform: number;
  clicksend: number;
  sendgrid: number;
  twilio: number;
  telnyx: number;
  /** Exotel's two regions: Singapore (api.exotel.com) and Mumbai (api.in.exotel.com). */
  exotel: number;
  exotelIn: number;
  smtpHttp: number;
  smtpImplicitTls: number;
  smtpStarttls: number;
}

export interface DevstackConfig {
  repoRoot: string;
  /** Interface every server binds to and the host name used in URLs. */
  host: string;
  ports: DevstackPorts;
  /** Keys, state.json and the SMTP CA live here (gitignored). */
  stateDir: string;
  /**
   * Folders whose `<name>/index.ts` files are served as edge functions; the first
   * folder that has a name wins (tests add a fixtures folder after the real one).
   */
  functionsDirs: string[];
  /** Import map / deno.json used for every function, as deployed. */
  denoConfig: string;
  denoBin: string;
}

export interface ConfigOverrides {
  host?: string;
  ports?: Partial<DevstackPorts>;
  /** Use port 0 (any free port) for every port not given explicitly. */
  ephemeralPorts?: boolean;
  stateDir?: string;
  functionsDirs?: string[];
  denoConfig?: string;
}

export const DEFAULT_PORTS: Readonly<DevstackPorts> = {
  api: 54321,
  platform: 54323,
  clicksend: 54330,
  sendgrid: 54331,
  smtpHttp: 54332,
  twilio: 54333,
  telnyx: 54334,
  exotel: 54335,
  exotelIn: 54336,
  smtpImplicitTls: 54465,
  smtpStarttls: 54587,
};

/** Environment variable per port, e.g. SWITCHBOARD_API_PORT=0. */
export const PORT_ENV: Readonly<Record<keyof DevstackPorts, string>> = {
  api: "SWITCHBOARD_API_PORT",
  platform: "SWITCHBOARD_PLATFORM_PORT",
  clicksend: "SWITCHBOARD_CLICKSEND_FAKE_PORT",
  sendgrid: "SWITCHBOARD_SENDGRID_FAKE_PORT",
  twilio: "SWITCHBOARD_TWILIO_FAKE_PORT",
  telnyx: "SWITCHBOARD_TELNYX_FAKE_PORT",
  exotel: "SWITCHBOARD_EXOTEL_FAKE_PORT",
  exotelIn: "SWITCHBOARD_EXOTEL_IN_FAKE_PORT",
  smtpHttp: "SWITCHBOARD_SMTP_FAKE_HTTP_PORT",
  smtpImplicitTls: "SWITCHBOARD_SMTP_FAKE_PORT",
  smtpStarttls: "SWITCHBOARD_SMTP_FAKE_STARTTLS_PORT",
};

function parsePort(name: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name} must be a port number (0 = any free port), got ${JSON.stringify(raw)}`);
  }
  return port;
}

function fromRoot(path: string): string {
  return isAbsolute(path) ? path : join(REPO_ROOT, path);
}

/** Precedence: explicit overrides, then environment, then SWITCHBOARD_EPHEMERAL_PORTS, then defaults. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): DevstackConfig {
  const ephemeral = overrides.ephemeralPorts ?? ["1", "true"].includes(env.SWITCHBOARD_EPHEMERAL_PORTS ?? "");
  const ports = {} as DevstackPorts;
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof DevstackPorts)[]) {
    const envName = PORT_ENV[key];
    const fromEnv = env[envName];
    ports[key] =
      overrides.ports?.[key] ??
      (fromEnv !== undefined && fromEnv !== "" ? parsePort(envName, fromEnv) : ephemeral ? 0 : DEFAULT_PORTS[key]);
  }
  return {
    repoRoot: REPO_ROOT,
    host: overrides.host ?? env.SWITCHBOARD_HOST ?? "127.0.0.1",
    ports,
    stateDir: fromRoot(overrides.stateDir ?? env.SWITCHBOARD_STATE_DIR ?? ".devstack"),
    // SWITCHBOARD_FUNCTIONS_DIR is a PATH-style list (":"-separated on Unix).
    functionsDirs: (overrides.functionsDirs ?? (env.SWITCHBOARD_FUNCTIONS_DIR || "supabase/functions").split(delimiter))
      .filter(Boolean)
      .map(fromRoot),
    denoConfig: fromRoot(overrides.denoConfig ?? env.SWITCHBOARD_DENO_CONFIG ?? "supabase/functions/deno.json"),
    denoBin: env.DENO_BIN ?? join(REPO_ROOT, "node_modules/.bin/deno"),
  };
}

export const statePath = (config: DevstackConfig): string => join(config.stateDir, "state.json");
export const keysPath = (stateDir: string): string => join(stateDir, "keys.json");
