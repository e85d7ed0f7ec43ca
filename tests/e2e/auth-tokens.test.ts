/**
 * Tokens from the attacker's side. A user JWT must be this project's (`iss`), meant for
 * signed-in users (`aud`), inside its validity window (`exp`, `nbf`) and signed by the
 * project's key with an algorithm of the project's choosing: every forgery below gets
 * the 401 envelope from every function, while the genuine token gets through.
 *
 * Then the secret key acting for a user without an agent: the user's own rights, on
 * their own account only, recorded as auth_mode "service" with no agent.
 */
import { createHmac, createPublicKey, randomUUID } from "node:crypto";
import { generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDefaultIssuer, type JwtIssuer } from "../../packages/devstack/src/jwt.ts";
import { agentWithKey, callFunction, clicksendFake, connectedUser, operationRow, type Connected } from "./fixtures.ts";
import { closeAdminSql, newUser, status, type TestUser } from "./helpers.ts";

afterAll(closeAdminSql);

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The claims Supabase Auth would issue for `user`, valid for an hour. */
function userClaims(user: TestUser, issuer: JwtIssuer): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { sub: user.id, role: "authenticated", aud: "authenticated", iss: issuer.issuer, email: user.email, iat: now, exp: now + 3600 };
}

/** Signs claims as the project's key does (ES256, the project's kid), or with `key` instead. */
function sign(claims: JWTPayload, issuer: JwtIssuer, key: CryptoKey = issuer.privateKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: issuer.kid, typ: "JWT" }).sign(key);
}

/** An HS256 token keyed with `secret`, whatever its form (the classic algorithm-confusion attack). */
function hs256(claims: JWTPayload, secret: string, kid?: string): string {
  const input = `${b64url({ alg: "HS256", typ: "JWT", ...(kid ? { kid } : {}) })}.${b64url(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Every forgery of a user token an attacker could try, each otherwise valid. */
async function forgedTokens(user: TestUser): Promise<Record<string, string>> {
  const issuer = await getDefaultIssuer();
  const claims = userClaims(user, issuer);
  const now = Math.floor(Date.now() / 1000);
  const { aud: _aud, ...noAud } = claims;
  const { exp: _exp, ...noExp } = claims;
  const publicJwk = issuer.jwks.keys[0]!;
  const publicPem = createPublicKey({ key: publicJwk as never, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
  const other = await generateKeyPair("ES256");
  return {
    "another project's issuer": await sign({ ...claims, iss: "https://otherproject.supabase.co/auth/v1" }, issuer),
    "no issuer": await sign((({ iss: _iss, ...rest }) => rest)(claims), issuer),
    "wrong audience": await sign({ ...claims, aud: "anon" }, issuer),
    "no audience": await sign(noAud, issuer),
    "no expiry": await sign(noExp, issuer),
    "expired": await sign({ ...claims, iat: now - 7200, exp: now - 120 }, issuer),
    "not yet valid": await sign({ ...claims, nbf: now + 600 }, issuer),
    "alg none": `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`,
    "HS256 keyed with the public key (PEM)": hs256(claims, publicPem, issuer.kid),
    "HS256 keyed with the public key (JWK)": hs256(claims, JSON.stringify(publicJwk), issuer.kid),
    "another key with the project's kid": await sign(claims, issuer, other.privateKey as CryptoKey),
    "genuine token, tampered claims": (() => {
      const [header, , signature] = user.token.split(".");
      return `${header}.${b64url({ ...claims, sub: randomUUID() })}.${signature}`;
    })(),
  };
}

/** One request per function that a valid user token passes authentication on. */
function requests(agentId: string): Record<string, { path: string; method: string; body?: unknown; expect: number }> {
  const invalidSms = { to: [], body: "" };
  const initialize = {
    jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "auth-tokens", version: "1" } },
  };
  // A genuine token reaches input validation (400) or is served (200); a forged one stops at 401.
  return {
    clicksend: { path: "clicksend/sms/send", method: "POST", body: invalidSms, expect: 400 },
    smtp: { path: "smtp/send", method: "POST", body: { to: [] }, expect: 400 },
    sendgrid: { path: "sendgrid/send", method: "POST", body: { to: [] }, expect: 400 },
    "agent-tools": { path: `agent-tools?format=openai&agent_id=${agentId}`, method: "GET", expect: 200 },
    mcp: { path: `mcp?agent_id=${agentId}`, method: "POST", body: initialize, expect: 200 },
  };
}

describe("user JWTs: only this project's genuine, current tokens", () => {
  let user: TestUser;
  let agentId: string;
  let forged: Record<string, string>;

  beforeAll(async () => {
    user = await newUser();
    const { data, error } = await user.client.rpc("create_agent", { p_name: "token target" });
    if (error) throw new Error(error.message);
    agentId = data.id;
    forged = await forgedTokens(user);
  });

  it.each(["clicksend", "smtp", "sendgrid", "agent-tools", "mcp"])("%s: the genuine token passes, every forgery gets the 401 envelope", async (fn) => {
    const request = requests(agentId)[fn]!;
    const call = (token: string) =>
      callFunction(request.path, token, { method: request.method, body: request.body, headers: { Accept: "application/json, text/event-stream" } });

    const genuine = await call(user.token);
    expect(genuine.status, JSON.stringify(genuine.body)).toBe(request.expect);

    const outcomes: Record<string, unknown> = {};
    for (const [name, token] of Object.entries(forged)) {
      const res = await call(token);
      outcomes[name] = res.status === 401 && res.body?.error?.code === "unauthorized" ? 401 : { status: res.status, body: res.body };
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(forged).map((name) => [name, 401])));
  });
});

describe("the secret key with user_id and no agent_id: the user acting on their own account", () => {
  let owner: Connected;
  let stranger: Connected;
  // Sent as a trusted backend sends it: the key as bearer and as `apikey`, which is how
  // an sb_secret_ key gets past the gateway (it turns it into the service_role JWT).
  const asService = (path: string, key: string, init: { body?: unknown } = {}) =>
    callFunction(path, key, { ...init, headers: { apikey: key, Accept: "application/json, text/event-stream" } });
  const sendSms = (key: string, body: Record<string, unknown>) =>
    asService("clicksend/sms/send", key, { body: { to: ["+61412555001"], body: `direct ${randomUUID().slice(0, 8)}`, ...body } });

  beforeAll(async () => {
    [owner, stranger] = await Promise.all([connectedUser(), connectedUser()]);
    // The owner's agent has a tight grant: acting without an agent is not bound by it.
    await agentWithKey(owner.user, [{ connectionId: owner.clicksend.id, scopes: ["sms"], dailySendLimit: 1, maxRecipientsPerMessage: 1 }]);
  });

  it("sends on the user's own connection, recorded as auth_mode service with no agent (legacy and sb_secret_ keys)", async () => {
    for (const key of [status().SERVICE_ROLE_KEY, status().SECRET_KEY]) {
      const res = await sendSms(key, { user_id: owner.user.id, to: ["+61412555001", "+61412555002"] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ status: "succeeded", sent: 2 });
      expect(await operationRow(res.body.operation_id)).toMatchObject({
        user_id: owner.user.id, agent_id: null, auth_mode: "service", connection_id: owner.clicksend.id, status: "succeeded",
      });
    }
  });

  it("serves the provider routes (send, read, test) but not the agent-only ones", async () => {
    const balance = await asService(`clicksend/balance?user_id=${owner.user.id}`, status().SECRET_KEY);
    expect(balance.status, JSON.stringify(balance.body)).toBe(200);
    const test = await asService("clicksend/test", status().SECRET_KEY, { body: { user_id: owner.user.id, connection_id: owner.clicksend.id } });
    expect(test.status, JSON.stringify(test.body)).toBe(200);
    expect(test.body).toMatchObject({ connection_id: owner.clicksend.id, ok: true });

    const tools = await asService(`agent-tools?format=openai&user_id=${owner.user.id}`, status().SECRET_KEY);
    expect(tools.status).toBe(400);
    expect(tools.body.error).toMatchObject({ code: "invalid_request", message: "agent_id is required" });
    const mcp = await asService(`mcp?user_id=${owner.user.id}`, status().SECRET_KEY, {
      body: { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} },
    });
    expect(mcp.status).toBe(400);
    expect(mcp.body.error.code).toBe("invalid_request");

    const noUser = await sendSms(status().SECRET_KEY, {});
    expect(noUser.status).toBe(400);
    expect(noUser.body.error.message).toBe("user_id is required with the service key");
  });

  it("cannot touch another user's connection", async () => {
    const sendsBefore = await clicksendFake.requestTotal();
    const send = await sendSms(status().SECRET_KEY, { user_id: owner.user.id, connection_id: stranger.clicksend.id });
    expect(send.status, JSON.stringify(send.body)).toBe(403);
    expect(send.body.error).toMatchObject({ code: "permission_denied", details: { reason: "no_grant" } });
    const test = await asService("clicksend/test", status().SECRET_KEY, { body: { user_id: owner.user.id, connection_id: stranger.clicksend.id } });
    expect(test.status).toBe(404);
    expect(test.body.error.code).toBe("not_found");
    expect(await clicksendFake.requestTotal()).toBe(sendsBefore);
  });

  it("a forged or legacy-looking key is refused with 401 and nothing is sent", async () => {
    const issuer = await getDefaultIssuer();
    const now = Math.floor(Date.now() / 1000);
    const other = await generateKeyPair("ES256");
    const forged = {
      "a random sb_secret_ key": `sb_secret_${randomUUID().replace(/-/g, "")}`,
      "the secret key with a character changed": `${status().SECRET_KEY.slice(0, -1)}${status().SECRET_KEY.endsWith("a") ? "b" : "a"}`,
      "the publishable key": status().PUBLISHABLE_KEY,
      "the legacy anon key": status().ANON_KEY,
      // Correctly signed by the project's key, but not the configured service key: a role claim is not a key.
      "a service_role JWT minted with the project's key": await sign({ role: "service_role", iss: issuer.issuer, iat: now, exp: now + 3600 }, issuer),
      "a service_role JWT signed by another key": await sign({ role: "service_role", iss: "supabase", iat: now, exp: now + 3600 }, issuer, other.privateKey as CryptoKey),
      "an unsigned service_role JWT": `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ role: "service_role", iss: "supabase" })}.`,
    };
    const sendsBefore = await clicksendFake.requestTotal();
    const outcomes: Record<string, unknown> = {};
    for (const [name, key] of Object.entries(forged)) {
      const res = await sendSms(key, { user_id: owner.user.id });
      outcomes[name] = res.status === 401 && res.body?.error?.code === "unauthorized" ? 401 : { status: res.status, body: res.body };
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(forged).map((name) => [name, 401])));
    expect(await clicksendFake.requestTotal()).toBe(sendsBefore);
  });
});
