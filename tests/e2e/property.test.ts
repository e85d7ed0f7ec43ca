/**
 * Malformed requests against every provider-function route (and agent-tools), with a
 * valid agent key that could send on all three accounts: whatever fast-check throws —
 * non-object JSON, text that is not JSON, wrong types, out-of-range and huge values,
 * unknown fields next to an otherwise sendable body, wrong methods — the answer is
 * always a 4xx in the documented envelope with a known code, never a 5xx, and no
 * provider fake receives anything.
 *
 * The generators only produce requests that must be refused; each tool route's
 * "unknown field" case starts from a body that *would* send, so a schema that stopped
 * being strict would make a fake receive a message and the property fail.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentWithKey,
  callFunction,
  clicksendFake,
  connectedUser,
  type Connected,
  sendgridFake,
  smtpFake,
} from "./fixtures.ts";
import { closeAdminSql, status } from "./helpers.ts";

const NUM_RUNS = 60;
const CONTROL_FIELDS = ["agent_id", "user_id", "connection_id", "idempotency_key"];
/** Every code of DESIGN.md §6 below 500, with its status. */
const CLIENT_ERRORS: Record<string, number> = {
  invalid_request: 400, unauthorized: 401, permission_denied: 403, not_found: 404, conflict: 409,
  payload_too_large: 413, quota_exceeded: 429,
};

interface Attempt {
  method: string;
  /** Raw request body (already serialised), or none. */
  body?: string;
  contentType?: string;
}

/** What the three fakes have received so far. */
async function fakeCounters() {
  const [clicksend, sendgrid, smtp] = await Promise.all([
    clicksendFake.requestTotal(),
    sendgridFake.requests().then((r) => r.length),
    smtpFake.messages().then((m) => m.length),
  ]);
  return { clicksend, sendgrid, smtp };
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const post = (value: unknown): Attempt => ({ method: "POST", body: JSON.stringify(value) });

/** Field names no tool knows (and that are not control fields). */
const unknownKey = fc.string({ minLength: 1, maxLength: 20 }).filter((k) =>
  !CONTROL_FIELDS.includes(k) && !["to", "cc", "bcc", "body", "from", "subject", "text", "html", "reply_to", "attachments",
    "media_url", "schedule_at", "page", "limit", "date_from", "date_to", "template_id", "dynamic_template_data", "categories",
    "send_at", "__proto__", "constructor", "name", "arguments"].includes(k)
);

/** A value of any JSON type except the one a field wants. */
const notAString = fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 3 }));
const notAnArray = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 30 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 3 }));
const huge = fc.integer({ min: 20_000, max: 200_000 }).chain((n) => fc.constantFrom("x", "€", "😀", "\u0000").map((c) => c.repeat(n)));

/** Bodies any route must refuse: JSON that is not an object, text that is not JSON. */
const notAnObject = fc.oneof(
  fc.array(fc.jsonValue(), { maxLength: 5 }).map(post),
  fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null)).map(post),
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 80 }).filter((s) => {
      if (s.trim() === "") return false;
      try { JSON.parse(s); return false; } catch { return true; }
    }),
    fc.constantFrom('{"to": [', "{'to': ['+61412345678']}", "{to: 1}", '{"a":1,}', "undefined", "NaN", '{"a":1}{"b":2}', "\u0000{}"),
  ).map((text): Attempt => ({ method: "POST", body: text })),
);

/** Methods no route answers: a 405 in the envelope. */
const wrongMethod = fc.constantFrom("PUT", "PATCH", "DELETE").chain((method) =>
  fc.jsonValue().map((value): Attempt => ({ method, body: JSON.stringify(value) }))
);

/** A body that would be accepted, plus one field the tool does not know. */
const withUnknownField = (valid: Record<string, unknown>) =>
  fc.tuple(unknownKey, fc.jsonValue()).map(([key, value]) => post({ ...valid, [key]: value }));

const phone = fc.constantFrom("+61412345678", "+61412345679", "+64211234567");
const email = fc.constantFrom("alice@example.org", "bob@example.org");

const VALID = {
  sms: { to: ["+61412345678"], body: "property test" },
  mms: { to: ["+61412345678"], body: "property test", subject: "Hi", media_url: "https://cdn.example.com/a.jpg" },
  mail: { to: ["alice@example.org"], subject: "property test", text: "hello" },
};

const smsInvalid = fc.oneof(
  fc.record({ to: notAnArray, body: fc.string({ maxLength: 20 }) }).map(post),
  fc.record({ to: fc.constant([]), body: fc.string({ minLength: 1, maxLength: 20 }) }).map(post),
  fc.record({ to: fc.array(fc.string({ maxLength: 12 }).filter((s) => !/\d{6}/.test(s)), { minLength: 1, maxLength: 3 }), body: fc.constant("hi") }).map(post),
  fc.record({ to: fc.array(phone, { minLength: 1, maxLength: 2 }), body: notAString }).map(post),
  fc.record({ to: fc.array(phone, { minLength: 1, maxLength: 2 }), body: huge }).map(post),
  fc.record({ to: fc.array(phone, { minLength: 1, maxLength: 2 }), body: fc.constantFrom("", "   ", "\n\t") }).map(post),
  fc.record({ to: fc.constant(["+61412345678"]), body: fc.constant("hi"), schedule_at: fc.oneof(notAString, fc.constant("2001-01-01T00:00:00Z"), fc.string({ maxLength: 20 })) }).map(post),
  fc.record({ to: fc.constant(["+61412345678"]), body: fc.constant("hi"), from: fc.oneof(notAString, fc.constantFrom("has space", "waytoolongsender", "+0123")) }).map(post),
  withUnknownField(VALID.sms),
);

const mmsInvalid = fc.oneof(
  fc.record({ ...fcConst(VALID.mms), media_url: fc.oneof(notAString, fc.string({ maxLength: 40 }).filter((s) => !s.startsWith("https://")), fc.constant("http://cdn.example.com/a.jpg")) }).map(post),
  fc.record({ ...fcConst(VALID.mms), subject: fc.oneof(notAString, fc.constant(""), fc.string({ minLength: 21, maxLength: 60 })) }).map(post),
  fc.record({ ...fcConst(VALID.mms), to: notAnArray }).map(post),
  fc.record({ ...fcConst(VALID.mms), body: huge }).map(post),
  withUnknownField(VALID.mms),
);

const historyInvalid = fc.oneof(
  fc.record({ page: fc.oneof(fc.integer({ max: 0 }), fc.double({ min: 1.1, max: 99.9, noInteger: true }), fc.string({ maxLength: 5 }), fc.boolean(), fc.constant(null)) }).map(post),
  fc.record({ limit: fc.oneof(fc.integer({ max: 14 }), fc.integer({ min: 101 })) }).map(post),
  fc.record({ date_from: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()) }).map(post),
  fc.constant(post({ date_from: "2030-01-02T00:00:00Z", date_to: "2030-01-01T00:00:00Z" })),
  withUnknownField({}),
);

const mailInvalid = (extra: fc.Arbitrary<Attempt>[] = []) => fc.oneof(
  fc.record({ ...fcConst(VALID.mail), to: fc.oneof(notAnArray, fc.constant([]), fc.array(fc.string({ maxLength: 20 }).filter((s) => !s.includes("@")), { minLength: 1, maxLength: 3 })) }).map(post),
  fc.record({ ...fcConst(VALID.mail), subject: fc.oneof(notAString, fc.constant(""), fc.string({ maxLength: 20 }).map((s) => `${s}\r\nBcc: x@evil.test`), fc.string({ minLength: 999, maxLength: 1200 })) }).map(post),
  fc.record({ ...fcConst(VALID.mail), text: notAString }).map(post),
  fc.record({ to: fc.array(email, { minLength: 1, maxLength: 1 }), subject: fc.constant("no body") }).map(post),
  fc.record({ ...fcConst(VALID.mail), cc: fc.constant(["alice@example.org"]) }).map(post),
  fc.record({ ...fcConst(VALID.mail), reply_to: fc.oneof(notAString, fc.string({ maxLength: 20 }).filter((s) => !s.includes("@"))) }).map(post),
  fc.record({ ...fcConst(VALID.mail), attachments: fc.oneof(notAnArray, fc.constant([{ filename: "a.txt", content: "not base64!" }]), fc.constant([{ filename: "a\r\nb.txt", content: "aGk=" }]), fc.constant([{ content: "aGk=" }])) }).map(post),
  fc.record({ ...fcConst(VALID.mail), to: fc.constant(Array.from({ length: 1001 }, (_, i) => `u${i}@example.org`)) }).map(post),
  withUnknownField(VALID.mail),
  ...extra,
);

const sendgridExtra = [
  fc.record({ to: fc.constant(["alice@example.org"]), template_id: fc.oneof(notAString, fc.string({ maxLength: 20 })) }).map(post),
  fc.record({ ...fcConst(VALID.mail), send_at: fc.oneof(notAString, fc.constant("2999-01-01T00:00:00Z"), fc.string({ maxLength: 10 })) }).map(post),
  fc.record({ ...fcConst(VALID.mail), categories: fc.oneof(notAnArray, fc.constant(["a", "a"]), fc.constant(Array.from({ length: 11 }, (_, i) => `c${i}`))) }).map(post),
];

/** Any object at all (the connection test refuses agent keys whatever the body says). */
const anyObject = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue(), { maxKeys: 5 }).map(post);

/** A fixed value per key, for fc.record. */
function fcConst(object: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, fc.constant(v)]));
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

let owner: Connected;
let agentKey: string;

beforeAll(async () => {
  owner = await connectedUser();
  const agent = await agentWithKey(owner.user, [
    { connectionId: owner.clicksend.id, scopes: ["sms", "mms", "balance", "history"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    { connectionId: owner.smtp.id, scopes: ["email"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    { connectionId: owner.sendgrid.id, scopes: ["email"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
  ], "property agent");
  agentKey = agent.key;
  // Prove the key can send: a body that the generators only ever spoil would go out.
  const res = await callFunction("clicksend/sms/send", agentKey, { body: { to: ["+61411111111"], body: `property smoke ${Date.now()}` } });
  expect(res.status).toBe(200);
});

afterAll(async () => {
  await closeAdminSql();
});

async function attempt(path: string, a: Attempt) {
  const response = await fetch(`${status().FUNCTIONS_URL}/${path}`, {
    method: a.method,
    headers: { Authorization: `Bearer ${agentKey}`, "Content-Type": a.contentType ?? "application/json" },
    body: a.body,
  });
  const text = await response.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* asserted below */ }
  return { status: response.status, body, text };
}

async function assertRefused(path: string, cases: fc.Arbitrary<Attempt>) {
  const before = await fakeCounters();
  await fc.assert(
    fc.asyncProperty(cases, async (a) => {
      const res = await attempt(path, a);
      expect(res.status, res.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
      expect(res.status, res.text.slice(0, 300)).toBeLessThan(500);
      expect(Object.keys(CLIENT_ERRORS), res.text.slice(0, 300)).toContain(res.body?.error?.code);
      expect(typeof res.body.error.message).toBe("string");
      // The status is the code's, except that a wrong method is a 405 invalid_request.
      expect(res.status).toBe(res.status === 405 ? 405 : CLIENT_ERRORS[res.body.error.code]);
      if (res.status === 405) expect(res.body.error.code).toBe("invalid_request");
      expect(res.text).not.toMatch(/\bat .+\.ts:\d+/); // no stack trace
      expect(await fakeCounters()).toEqual(before);
    }),
    { numRuns: NUM_RUNS },
  );
}

const getWithoutArgs = fc.constant<Attempt>({ method: "GET" });

const ROUTES: Array<[string, fc.Arbitrary<Attempt>]> = [
  ["clicksend/sms/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, smsInvalid, smsInvalid)],
  ["clicksend/mms/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mmsInvalid, mmsInvalid)],
  ["clicksend/balance", fc.oneof(notAnObject, wrongMethod, withUnknownField({}), withUnknownField({}))],
  ["clicksend/sms/history", fc.oneof(notAnObject, wrongMethod, historyInvalid, historyInvalid)],
  ["clicksend/mms/history", fc.oneof(notAnObject, wrongMethod, historyInvalid, historyInvalid)],
  ["clicksend/test", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, anyObject)],
  ["smtp/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mailInvalid(), mailInvalid())],
  ["smtp/test", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, anyObject)],
  ["sendgrid/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mailInvalid(sendgridExtra), mailInvalid(sendgridExtra))],
  ["sendgrid/test", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, anyObject)],
  ["clicksend/no-such-route", fc.oneof(notAnObject, anyObject, getWithoutArgs)],
];

describe("malformed requests with a valid agent key: always a 4xx envelope, nothing reaches a provider", () => {
  for (const [path, cases] of ROUTES) {
    it(`${path}`, async () => {
      await assertRefused(path, cases);
    });
  }

  it("agent-tools (POST {name, arguments})", async () => {
    const tool = <T>(name: string, args: fc.Arbitrary<T>) => args.map((a) => ({ name, arguments: a }));
    const bodyOf = (a: Attempt) => (a.body === undefined ? undefined : JSON.parse(a.body));
    const spoiled = (name: string, cases: fc.Arbitrary<Attempt>) =>
      tool(name, cases.filter((a) => a.method === "POST").map(bodyOf).filter((b) => b && typeof b === "object" && !Array.isArray(b)));
    await assertRefused("agent-tools", fc.oneof(
      notAnObject,
      fc.constantFrom("PUT", "PATCH", "DELETE").map((method): Attempt => ({ method, body: "{}" })),
      fc.record({ name: fc.oneof(notAString, fc.string({ maxLength: 30 })), arguments: fc.constant(VALID.sms) }).map(post),
      fc.record({ name: fc.constant("clicksend_send_sms"), arguments: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 2 }), fc.string(), fc.integer()) }).map(post),
      // null means "left out" here (OpenAI strict mode), so only non-null spoilers count.
      spoiled("clicksend_send_sms", smsInvalid).filter((b) => !Object.values(b.arguments as object).includes(null)).map(post),
      spoiled("smtp_send_email", mailInvalid()).filter((b) => !Object.values(b.arguments as object).includes(null)).map(post),
      spoiled("sendgrid_send_email", mailInvalid(sendgridExtra)).filter((b) => !Object.values(b.arguments as object).includes(null)).map(post),
    ));
  });

  it("webhook receivers (valid tokens, malformed or unsigned bodies)", async () => {
    const clicksendHook = `clicksend/webhooks/${owner.clicksend.webhook_token}`;
    const sendgridHook = `sendgrid/webhooks/${owner.sendgrid.webhook_token}/events`;
    for (const path of [`${clicksendHook}/receipts`, `${clicksendHook}/inbound`, sendgridHook]) {
      await assertRefused(path, fc.oneof(notAnObject, anyObject, fc.constant(post([])), fc.constant(post([{}]))));
    }
  });
});

describe("oversized and hostile bodies", () => {
  it("a body over 16 MB is refused with 413 payload_too_large on every send route, nothing sent", async () => {
    const before = await fakeCounters();
    const big = JSON.stringify({ to: ["+61412345678"], body: "x".repeat(17 * 1024 * 1024) });
    for (const path of ["clicksend/sms/send", "smtp/send", "sendgrid/send"]) {
      const res = await attempt(path, { method: "POST", body: big });
      expect(res.status, path).toBe(413);
      expect(res.body.error.code).toBe("payload_too_large");
    }
    expect(await fakeCounters()).toEqual(before);
  });

  it("an unknown \"__proto__\" field is refused like any other unknown field, and nothing is sent", async () => {
    // JSON.parse makes "__proto__" an ordinary own key; copying it with `obj[key] = value`
    // would instead set the copy's prototype, hiding the field from validation.
    const before = await fakeCounters();
    const cases: Array<[string, string]> = [
      ["clicksend/balance", '{"__proto__": {"x": 1}}'],
      ["clicksend/sms/send", `{"__proto__": ${JSON.stringify(VALID.sms)}}`],
      ["smtp/send", `{"__proto__": ${JSON.stringify(VALID.mail)}}`],
    ];
    for (const [path, body] of cases) {
      const res = await attempt(path, { method: "POST", body });
      expect(res.status, `${path} ${res.text.slice(0, 200)}`).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
    expect(await fakeCounters()).toEqual(before);
  });
});
