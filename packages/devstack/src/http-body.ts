/** Request bodies for the devstack's Node servers (the Auth and PostgREST stand-ins). */
import type { IncomingMessage } from "node:http";

/**
 * The whole body as UTF-8 text. Past `maxBytes` it keeps nothing, reads on to the end and
 * rejects with `tooLarge()` (each stand-in answers that in its own service's shape): the
 * connection must stay usable for the answer, which the gateway in front would otherwise
 * turn into a 502.
 */
export function readBody(req: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on("end", () => (size <= maxBytes ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(tooLarge())));
    req.on("error", reject);
  });
}
