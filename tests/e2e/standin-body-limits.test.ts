/**
 * A body past a stand-in's bound gets its service's answer through the gateway (the body is
 * read to the end and dropped, so the connection can carry the answer), not a 502.
 */
import { describe, expect, it } from "vitest";
import { status } from "./helpers.ts";

describe("request bodies over the stand-ins' bounds", () => {
  it("PostgREST stand-in: 413 past 16 MB, with the stand-in's label", async () => {
    const res = await fetch(`${status().API_URL}/rest/v1/rpc/create_agent`, {
      method: "POST",
      headers: { apikey: status().ANON_KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ p_name: "x".repeat(17 << 20) }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("x-switchboard-standin")).toBe("postgrest");
  });

  it("Auth stand-in: 400 validation_failed past 1 MB, with the stand-in's label", async () => {
    const res = await fetch(`${status().API_URL}/auth/v1/signup`, {
      method: "POST",
      headers: { apikey: status().ANON_KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ email: "big@example.test", password: "x".repeat(2 << 20) }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-switchboard-standin")).toBe("auth");
    expect(((await res.json()) as { error_code?: string }).error_code).toBe("validation_failed");
  });
});
