/**
 * A second, bench-only Deno functions host (the same functions-host.ts the stack
 * runs, same functions, same keys) whose database URL points at the counting
 * proxy. It serves only the structural round-trip check, so the timed measurements
 * against the stack's own host never pass through the proxy.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { DevstackConfig } from "../../packages/devstack/src/config.ts";
import { functionsLoginUrl } from "../../packages/devstack/src/db.ts";
import { createJwtIssuer } from "../../packages/devstack/src/jwt.ts";
import { freePort, npmRegistry, type StackStatus } from "../../packages/devstack/src/stack.ts";

export interface ProbeHost {
  functionsUrl: string;
  stop(): Promise<void>;
}

export async function startProbeHost(opts: { status: StackStatus; config: DevstackConfig; dbUrl: string; logFile: number }): Promise<ProbeHost> {
  const { status, config } = opts;
  const port = await freePort();
  const issuer = await createJwtIssuer({ stateDir: config.stateDir, apiUrl: status.API_URL });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NPM_CONFIG_REGISTRY: npmRegistry(),
    DENO_NO_UPDATE_CHECK: "1",
    DENO_CERT: status.SMTP_FAKE_CA_PEM_PATH,
    SWITCHBOARD_HOST: "127.0.0.1",
    SWITCHBOARD_API_PORT: String(port),
    // Non-function paths are proxied to the stack's platform through its API port.
    SWITCHBOARD_PLATFORM_URL: status.API_URL,
    SWITCHBOARD_FUNCTIONS_DIR: config.functionsDirs.join(":"),
    SUPABASE_URL: status.API_URL,
    SUPABASE_DB_URL: opts.dbUrl,
    // As the stack runs them: their own login role (which starts as service_role), prepared.
    SWITCHBOARD_DB_URL: functionsLoginUrl(opts.dbUrl),
    SWITCHBOARD_DB_PREPARE: "true",
    SUPABASE_ANON_KEY: status.ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: status.SERVICE_ROLE_KEY,
    SUPABASE_JWKS: JSON.stringify(issuer.jwks),
    SWITCHBOARD_ALLOW_PRIVATE_NETWORKS: "true",
    SWITCHBOARD_ALLOW_CUSTOM_PROVIDER_HOSTS: "true",
    SWITCHBOARD_FUNCTIONS_URL: `http://127.0.0.1:${port}/functions/v1`,
  };
  const child: ChildProcess = spawn(
    config.denoBin,
    ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "--no-prompt", "--config", config.denoConfig,
      join(config.repoRoot, "packages/devstack/src/deno/functions-host.ts")],
    { cwd: config.repoRoot, env, stdio: ["ignore", opts.logFile, opts.logFile] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const health = `http://127.0.0.1:${port}/_devstack/health`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error("the probe functions host exited during startup");
    try {
      const res = await fetch(health, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("the probe functions host did not start in time");
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return { functionsUrl: `http://127.0.0.1:${port}/functions/v1`, stop };
}
