/**
 * A loopback TCP proxy in front of PostgreSQL that counts, from the wire protocol,
 * what a client really does: statements (Sync or simple Query messages, one
 * transaction each in autocommit) and round trips (client flights: bytes sent after
 * the server last said ReadyForQuery — pipelined statements share one flight).
 *
 * It is only ever put in front of a second, bench-only functions host used for the
 * structural "≤ 2 round trips per tool call" check, so it never adds latency to the
 * timed measurements.
 */
import net from "node:net";
import { once } from "node:events";

export interface WireCounts {
  /** Extended-protocol Sync + simple Query messages. */
  statements: number;
  /** Client flights that waited for a ReadyForQuery. */
  roundTrips: number;
  /** Parse messages (a statement not yet prepared on that connection). */
  parses: number;
  /** Connections opened (startup handshakes). */
  connections: number;
}

class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  constructor(private typed: boolean) {}

  /** Feeds bytes; returns the type bytes of every complete message (startup = "\0"). */
  push(chunk: Buffer): string[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const types: string[] = [];
    for (;;) {
      if (!this.typed) {
        if (this.buffer.length < 8) break;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) break;
        const code = this.buffer.readInt32BE(4);
        this.buffer = this.buffer.subarray(length);
        // SSLRequest / GSSENCRequest are answered with one byte and followed by a new startup.
        if (code === 80877103 || code === 80877104) {
          types.push("ssl");
          continue;
        }
        types.push("\0");
        this.typed = true;
        continue;
      }
      if (this.buffer.length < 5) break;
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) break;
      types.push(String.fromCharCode(this.buffer[0]));
      this.buffer = this.buffer.subarray(1 + length);
    }
    return types;
  }
}

export interface PgCounter {
  url: string;
  counts(): WireCounts;
  reset(): void;
  close(): Promise<void>;
}

/** Starts the proxy; `url` is `targetUrl` with host and port replaced by the proxy's. */
export async function startPgCounter(targetUrl: string): Promise<PgCounter> {
  const target = new URL(targetUrl);
  const targetHost = target.hostname || "127.0.0.1";
  const targetPort = Number(target.port || 5432);
  let counts: WireCounts = { statements: 0, roundTrips: 0, parses: 0, connections: 0 };
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const fromClient = new FrameReader(false);
    const fromServer = new FrameReader(true);
    let serverReady = true; // a flight starts with the first bytes after ReadyForQuery
    let handshakeDone = false;

    client.on("data", (chunk: Buffer) => {
      const types = fromClient.push(chunk);
      if (types.includes("\0")) counts.connections++;
      if (handshakeDone && serverReady && types.length) {
        counts.roundTrips++;
        serverReady = false;
      }
      for (const t of types) {
        if (t === "S" || t === "Q") counts.statements += handshakeDone ? 1 : 0;
        if (t === "P" && handshakeDone) counts.parses++;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      // An SSLRequest is answered with a single untyped byte; we only proxy plain TCP.
      for (const t of fromServer.push(chunk)) {
        if (t === "Z") {
          handshakeDone = true;
          serverReady = true;
        }
      }
      client.write(chunk);
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
    client.on("error", closeBoth);
    upstream.on("error", closeBoth);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);

  return {
    url: url.toString(),
    counts: () => ({ ...counts }),
    reset: () => {
      counts = { statements: 0, roundTrips: 0, parses: 0, connections: 0 };
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
