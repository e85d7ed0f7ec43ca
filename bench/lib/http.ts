/**
 * A minimal keep-alive HTTP/1.1 client on node:http. Used for both the measured
 * requests and their baselines, so client overhead is the same on both sides of
 * every ratio. Loopback only.
 */
import http from "node:http";

export interface HttpResult {
  status: number;
  body: string;
}

export class HttpClient {
  readonly agent: http.Agent;

  constructor(maxSockets = 1) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, keepAliveMsecs: 30_000 });
  }

  request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
    const u = new URL(url);
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const headers: Record<string, string | number> = { ...init.headers };
    if (body) {
      headers["content-type"] ??= "application/json";
      headers["content-length"] = body.length;
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: u.hostname,
          port: u.port,
          path: `${u.pathname}${u.search}`,
          method: init.method ?? (body ? "POST" : "GET"),
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.setTimeout(60_000, () => req.destroy(new Error(`timeout: ${init.method ?? "GET"} ${url}`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** JSON convenience: parses the body (or leaves it as text). */
  async json(url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
    const res = await this.request(url, {
      method: init.method,
      headers: init.headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    let parsed: any = res.body;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  }

  close(): void {
    this.agent.destroy();
  }
}
