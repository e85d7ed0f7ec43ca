/**
 * A loopback server that answers every request with a 302 to a canary, and the canary,
 * which counts the connections it gets: a client that follows redirects shows up there.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** `basePath` is appended to the redirector's URL (an API base), `canaryPath` to the canary's. */
export async function redirectToCanary(canaryPath: string, basePath = "") {
  let canaryConnections = 0;
  const canary = http.createServer((_req, res) => res.end("{}"));
  canary.on("connection", () => canaryConnections++);
  await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
  const canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}${canaryPath}`;
  const redirector = http.createServer((_req, res) => res.writeHead(302, { location: canaryUrl }).end());
  await new Promise<void>((r) => redirector.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}${basePath}`,
    canaryConnections: () => canaryConnections,
    close: () => Promise.all([canary, redirector].map((s) => new Promise((r) => s.close(r)))),
  };
}
