/** `npm start` says plainly which port another process holds, before touching anything. */
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../packages/devstack/src/config.ts";
import { assertPortsFree } from "../../packages/devstack/src/ports.ts";
import { freePort } from "../../packages/devstack/src/stack.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function hold(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

describe("assertPortsFree", () => {
  it("passes when every fixed port is free (port 0 means any port and is never checked)", async () => {
    const config = loadConfig({ ephemeralPorts: true }, {});
    await expect(assertPortsFree(config)).resolves.toBeUndefined();
  });

  it("names a taken port, what it serves and the variable that moves it", async () => {
    const taken = await hold();
    const config = loadConfig({ ephemeralPorts: true, ports: { api: taken } }, {});
    const error = await assertPortsFree(config).then(() => undefined, (e: Error) => e);
    expect(error?.message).toContain(`127.0.0.1:${taken}  the API gateway`);
    expect(error?.message).toContain("SWITCHBOARD_API_PORT");
    expect(error?.message).toMatch(/supabase start/);
    expect(error?.message).toContain("the database was not touched");
  });
});

describe("freePort", () => {
  it("picks a free port below the OS's ephemeral range, so no port-0 server or outgoing connection takes it meanwhile", async () => {
    for (let i = 0; i < 5; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(32_000);
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
    }
  });
});
