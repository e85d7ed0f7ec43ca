/**
 * Bad input is never a 5xx, one example per class, from the attacker's side: NUL
 * characters and unpaired surrogates (PostgreSQL refuses them in text and jsonb),
 * oversized identifiers (a btree index row has a size limit), out-of-range numbers and
 * timestamps, nesting 1000 deep, and methods a webhook provider never uses. Each answer
 * is a 4xx in the documented envelope, and nothing reaches a provider or the database.
 * property.test.ts throws the same classes at every route with fast-check.
 */
import { generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentWithKey,
  callFunction,
  clicksendFake,
  connectedUser,
  type Connected,
  routeSendGridEvents,
  sendgridAccount,
  sendgridFake,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";

let owner: Connected;
let agentKey: string;

beforeAll(async () => {
  owner = await connectedUser();
  const agent = await agentWithKey(owner.user, [
    { connectionId: owner.clicksend.id, scopes: ["sms", "balance", "history"], dailySendLimit: null },
    { connectionId: owner.sendgrid.id, scopes: ["email"], dailySendLimit: null },
  ], "bad input agent");
  agentKey = agent.key;
});

afterAll(async () => {
  // Stop the SendGrid fake posting events to this file's connection.
  await fetch(`${status().SENDGRID_FAKE_URL}/v3/user/webhooks/event/settings`, {
    method: "PATCH", headers: { Authorization: "Bearer SG.demo-key", "Content-Type": "application/json" }, body: JSON.stringify({ enabled: false, url: "" }),
  });
  await closeAdminSql();
});

interface Reply {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

async function request(path: string, init: { method?: string; body?: string; headers?: Record<string, string>; token?: string | null } = {}): Promise<Reply> {
  const token = init.token === undefined ? agentKey : init.token;
  const response = await fetch(`${status().FUNCTIONS_URL}/${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), "Content-Type": "application/json", ...init.headers },
    body: init.body,
  });
  const text = await response.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* asserted by the caller */ }
  return { status: response.status, body, text, headers: response.headers };
}

function expectInvalid(res: Reply, status = 400) {
  expect(res.status, res.text.slice(0, 300)).toBe(status);
  expect(res.body?.error?.code, res.text.slice(0, 300)).toBe("invalid_request");
  expect(typeof res.body.error.message).toBe("string");
}

const clicksendSent = () => clicksendFake.requestTotal();
const sendgridSent = () => sendgridFake.requests().then((r) => r.length);
const storedEvents = async (connectionId: string) =>
  (await adminSql()`select count(*)::int as n from public.message_events where connection_id = ${connectionId}`)[0].n as number;

/** 10 kB that PostgreSQL cannot compress: a btree index row of it is too big (a repeated letter would fit). */
const tenKilobytes = () => randomBytes(5_120).toString("hex");

/** Nested arrays `depth` deep around a value. */
const nested = (depth: number, inner = "x") => `${"[".repeat(depth)}${JSON.stringify(inner)}${"]".repeat(depth)}`;

describe("request bodies: NUL, unpaired surrogates and deep nesting are refused before anything runs", () => {
  it("a NUL in a tool argument is a 400 naming its path, and nothing is sent", async () => {
    const before = await clicksendSent();
    const res = await request("clicksend/sms/send", { body: JSON.stringify({ to: ["+61412345678"], body: "hi\u0000there" }) });
    expectInvalid(res);
    expect(JSON.stringify(res.body.error.details)).toContain("body");
    expect(await clicksendSent()).toBe(before);
  });

  it("a NUL in a key, and an unpaired surrogate in a value, are 400s", async () => {
    for (const body of ['{"to":["+61412345678"],"body":"hi","a\\u0000":1}', '{"to":["+61412345678"],"body":"hi \\ud800"}']) {
      expectInvalid(await request("clicksend/sms/send", { body }));
    }
  });

  it("nesting 1000 deep is a 400 even where a free-form object is allowed (SendGrid template data)", async () => {
    const before = await sendgridSent();
    const body = `{"to":["alice@example.org"],"template_id":"d-0123456789abcdef0123456789abcdef","dynamic_template_data":{"a":${nested(1000)}}}`;
    const res = await request("sendgrid/send", { body });
    expectInvalid(res);
    expect(res.body.error.message).toMatch(/nest/i);
    expect(await sendgridSent()).toBe(before);
  });

  it("a query string with a NUL is a 400 on a GET tool route, control fields included", async () => {
    expectInvalid(await request("clicksend/balance?idempotency_key=a%00b"));
    expectInvalid(await request("clicksend/sms/history?date_from=%00"));
  });

  it("a malformed connection_id is a 400, not a database cast error", async () => {
    const res = await request("clicksend/balance", { body: JSON.stringify({ connection_id: "-".repeat(36) }) });
    expectInvalid(res);
  });

  it("agent-tools refuses a NUL in the arguments, and nothing is sent", async () => {
    const before = await clicksendSent();
    const res = await request("agent-tools", { body: JSON.stringify({ name: "clicksend_send_sms", arguments: { to: ["+61412345678"], body: "a\u0000b" } }) });
    expectInvalid(res);
    expect(await clicksendSent()).toBe(before);
  });
});

describe("idempotency keys: 1-255 printable characters", () => {
  const send = (key: unknown, header?: string) =>
    request("clicksend/sms/send", {
      body: JSON.stringify({ to: ["+61412345678"], body: `idempotency ${randomUUID()}`, ...(key === undefined ? {} : { idempotency_key: key }) }),
      headers: header === undefined ? {} : { "Idempotency-Key": header },
    });

  it("refuses a NUL, other control characters, an empty key and 256 characters, sending nothing; accepts 255", async () => {
    const before = await clicksendSent();
    for (const key of ["a\u0000b", "tab\there", "line\nbreak", "\u007f", "", "k".repeat(256), 42, ["k"]]) {
      const res = await send(key);
      expectInvalid(res);
      expect(res.body.error.message).toMatch(/idempotency/i);
    }
    for (const header of ["tab\there", "k".repeat(256)]) expectInvalid(await send(undefined, header));
    expect(await clicksendSent()).toBe(before);

    // The bound is not stricter than it says: 255 printable characters, non-ASCII ones too.
    for (const key of [`${randomUUID()}${"k".repeat(219)}`, `clé-${randomUUID()}-😀`]) {
      const res = await send(key);
      expect(res.status, res.text).toBe(200);
    }
  });
});

describe("MCP", () => {
  const mcp = (body: string) =>
    request("mcp", { body, headers: { Accept: "application/json, text/event-stream" } });
  const call = (args: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "clicksend_send_sms", arguments: args } });

  it("a tools/call with a NUL in its arguments is refused, and nothing is sent", async () => {
    const before = await clicksendSent();
    const res = await mcp(call({ to: ["+61412345678"], body: "a\u0000b" }));
    expect(res.status, res.text).toBeLessThan(500);
    // Either the HTTP layer refuses the body, or the tool answers with our envelope.
    const error = res.body?.error ?? res.body?.result?.structuredContent?.error;
    expect(error?.code, res.text).toBe("invalid_request");
    expect(await clicksendSent()).toBe(before);
  });

  it("a JSON-RPC body nested 1000 deep is a 400", async () => {
    const res = await mcp(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":${nested(1000)}}}`);
    expectInvalid(res);
  });
});

describe("ClickSend webhooks", () => {
  const hook = (kind: string) => `clicksend/webhooks/${owner.clicksend.webhook_token}/${kind}`;
  const receipt = (fields: Record<string, string>) => ({
    message_id: randomUUID().toUpperCase(), status_code: "201", status_text: "Delivered", timestamp: String(Math.floor(Date.now() / 1000)), ...fields,
  });
  const post = (kind: string, fields: Record<string, string>) =>
    request(hook(kind), { token: null, body: new URLSearchParams(fields).toString(), headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  const postJson = (kind: string, body: string) => request(hook(kind), { token: null, body });
  const get = (kind: string, fields: Record<string, string>) => request(`${hook(kind)}?${new URLSearchParams(fields)}`, { token: null });

  it("refuses a NUL in the message id or in any other field, in form, JSON and GET encodings; stores them without it", async () => {
    const before = await storedEvents(owner.clicksend.id);
    for (const fields of [receipt({ message_id: "ABC\u0000DEF" }), receipt({ status_text: "Deli\u0000vered" }), receipt({ "x\u0000": "1" })]) {
      expectInvalid(await post("receipts", fields));
      expectInvalid(await postJson("receipts", JSON.stringify(fields)));
      expectInvalid(await get("receipts", fields));
    }
    const inbound = { message_id: randomUUID(), from: "+61412345678", to: "+61481070000", body: "hi\u0000", timestamp: "1700000000" };
    expectInvalid(await post("inbound", inbound));
    expect(await storedEvents(owner.clicksend.id)).toBe(before);

    // The same receipts without the NUL are stored, in each encoding.
    expect((await post("receipts", receipt({}))).status).toBe(200);
    expect((await postJson("receipts", JSON.stringify(receipt({})))).status).toBe(200);
    expect((await get("receipts", receipt({}))).status).toBe(200);
    expect(await storedEvents(owner.clicksend.id)).toBe(before + 3);
  });

  it("refuses a 10 kB message id, status or sender with 400, but keeps a 10 kB custom string", async () => {
    const before = await storedEvents(owner.clicksend.id);
    expectInvalid(await post("receipts", receipt({ message_id: tenKilobytes() })));
    expectInvalid(await post("receipts", receipt({ status_code: tenKilobytes() })));
    expectInvalid(await post("inbound", { message_id: randomUUID(), from: "9".repeat(10_000), to: "+61481070000", body: "hi", timestamp: "1700000000" }));
    expect(await storedEvents(owner.clicksend.id)).toBe(before);

    // A long custom string (another system's, on the same account) is kept in the payload,
    // not taken for an operation id.
    const messageId = randomUUID().toUpperCase();
    expect((await post("receipts", receipt({ message_id: messageId, custom_string: "c".repeat(10_000) }))).status).toBe(200);
    const [row] = await adminSql()`select operation_id, payload->>'custom_string' as custom from public.message_events where provider_message_id = ${messageId}`;
    expect(row).toEqual({ operation_id: null, custom: "c".repeat(10_000) });
  });

  it("refuses timestamps past the year 9999 with 400", async () => {
    for (const timestamp of ["1e308", "100000000000000000000", "1e15"]) {
      expectInvalid(await post("receipts", receipt({ timestamp })));
    }
  });

  it("refuses JSON nested 10000 deep with 400", async () => {
    expectInvalid(await postJson("receipts", `{"message_id":${nested(10_000)},"status_code":"201"}`));
  });

  it("answers an inherited property name as a webhook kind with 404, not a crash", async () => {
    const res = await request(hook("constructor"), { token: null, body: new URLSearchParams(receipt({})).toString() });
    expect(res.status, res.text).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });

  it("answers PUT, PATCH and DELETE with 405 and Allow: GET, POST", async () => {
    for (const method of ["PUT", "PATCH", "DELETE"]) {
      const res = await request(hook("receipts"), { token: null, method, body: JSON.stringify(receipt({})) });
      expectInvalid(res, 405);
      expect(res.headers.get("allow")).toBe("GET, POST");
    }
  });
});

describe("SendGrid Event Webhook", () => {
  /** A SendGrid connection whose webhook key is ours, so any body can be signed. */
  let hook: string;
  let connectionId: string;
  let signer: ReturnType<typeof generateKeyPairSync>["privateKey"];

  beforeAll(async () => {
    const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    signer = keys.privateKey;
    const publicKey = keys.publicKey.export({ type: "spki", format: "der" }).toString("base64");
    const account = sendgridAccount();
    const { data, error } = await owner.user.client.rpc("create_connection", {
      p_provider: "sendgrid", p_name: "SendGrid (test signer)", p_credentials: account.credentials,
      p_config: { ...account.config, webhook_public_key: publicKey },
    });
    if (error) throw new Error(error.message);
    hook = `sendgrid/webhooks/${data.webhook_token}/events`;
    connectionId = data.id;
  });

  const signed = (body: string, method = "POST") => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = sign("sha256", Buffer.from(timestamp + body), { key: signer, dsaEncoding: "der" }).toString("base64");
    return request(hook, {
      token: null, method, body,
      headers: { "X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": timestamp },
    });
  };
  const event = (fields: Record<string, unknown>) => ({
    email: "alice@example.org", timestamp: Math.floor(Date.now() / 1000), event: "delivered", sg_event_id: randomUUID(), sg_message_id: "abc.filter-1", ...fields,
  });

  it("refuses signed events with a NUL, a 10 kB id or an out-of-range timestamp, storing nothing; stores good ones", async () => {
    const before = await storedEvents(connectionId);
    const hostile = [
      event({ sg_event_id: "a\u0000b" }), event({ sg_message_id: "m\u0000.x" }), event({ reason: "r\u0000" }), event({ "k\u0000": 1 }),
      event({ sg_event_id: tenKilobytes() }), event({ sg_message_id: `${tenKilobytes()}.x` }), event({ email: `${tenKilobytes()}@example.org` }),
      event({ timestamp: 1e308 }), event({ timestamp: 2 ** 53 + 1 }), event({ timestamp: -1 }),
    ];
    for (const e of hostile) expectInvalid(await signed(JSON.stringify([event({}), e])));
    expectInvalid(await signed(`[{"event":"open","sg_event_id":"x","nested":${nested(1000)}}]`));
    expect(await storedEvents(connectionId)).toBe(before);

    // The signature is what the test signer's key makes: a well-formed batch is stored.
    const res = await signed(JSON.stringify([event({}), event({ event: "open" })]));
    expect(res.status, res.text).toBe(200);
    expect(await storedEvents(connectionId)).toBe(before + 2);
  });

  it("answers any method but POST with 405 and Allow: POST", async () => {
    for (const method of ["GET", "PUT", "PATCH", "DELETE"]) {
      const res = method === "GET" ? await request(hook, { token: null }) : await signed("[]", method);
      expectInvalid(res, 405);
      expect(res.headers.get("allow")).toBe("POST");
    }
  });

  it("refuses a NUL in an event signed by the SendGrid fake itself", async () => {
    await routeSendGridEvents(owner.sendgrid.webhook_token);
    const sent = await callFunction("sendgrid/send", agentKey, { body: { to: ["alice@example.org"], subject: "events", text: "hi" } });
    expect(sent.status).toBe(200);
    const { statuses } = await sendgridFake.events({ message_id: sent.body.provider_message_ids[0], events: [{ event: "open", useragent: "x\u0000y" }] });
    expect(statuses).toEqual([400]);
  });
});
