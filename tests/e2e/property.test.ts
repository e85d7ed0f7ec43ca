/**
 * Malformed and hostile requests against every route — each provider function's tool
 * routes, `test` and number sync, every webhook (ClickSend receipts and inbound in form,
 * JSON and GET encodings; SendGrid events, validly signed; Twilio, Telnyx and Exotel
 * unsigned, forged or malformed), agent-tools GET and POST, and MCP — with a valid agent
 * key that could send on all six accounts. Whatever fast-check throws —
 * non-object JSON, text that is not JSON, wrong types, unknown fields next to an
 * otherwise sendable body, NUL characters and unpaired surrogates in keys, values,
 * idempotency keys and webhook fields, 10 kB identifiers, out-of-range numbers and
 * timestamps, nesting up to 1000 deep, wrong methods — the answer is never a 5xx: it is
 * a 4xx in the documented envelope with a known code (MCP: a JSON-RPC error or a tool
 * error carrying that envelope), with no stack trace or internal text, no provider fake
 * receives anything, and a refused webhook stores nothing.
 *
 * The generators only produce requests that must be refused (the few a webhook may
 * accept are kept apart); each tool route's spoilers start from a body that *would*
 * send, so a check that stopped refusing would make a fake receive a message and the
 * property fail.
 */
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentWithKey,
  callFunction,
  clicksendFake,
  connectedUser,
  type Connected,
  sendgridAccount,
  sendgridFake,
  smtpFake,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, status } from "./helpers.ts";
import { EXOTEL_FAKE_ACCOUNT } from "../../packages/devstack/src/fakes/exotel.ts";
import { TELNYX_FAKE_API_KEY } from "../../packages/devstack/src/fakes/telnyx.ts";
import { TWILIO_FAKE_ACCOUNT, TWILIO_FAKE_AUTH_TOKEN } from "../../packages/devstack/src/fakes/twilio.ts";

/** Runs per property; the whole file stays well under a minute. */
const NUM_RUNS = 50;
const CONTROL_FIELDS = ["agent_id", "user_id", "connection_id", "idempotency_key", "account"];
/** Every documented error code below 500 (README, "Errors"), with its status. */
const CLIENT_ERRORS: Record<string, number> = {
  invalid_request: 400, unauthorized: 401, permission_denied: 403, not_found: 404, conflict: 409,
  payload_too_large: 413, quota_exceeded: 429,
};
/** What a response must never show: a stack frame, a file, the database's own words. */
const INTERNALS = /\bat .+\.[jt]s:\d+|file:\/\/|node_modules|postgres|sqlstate|syntax error at|violates|relation "|stack depth/i;

interface Attempt {
  method: string;
  /** Raw request body (already serialised), or none. */
  body?: string;
  contentType?: string;
  /** Appended to the path ("?a=b"). */
  query?: string;
  headers?: Record<string, string>;
  /** Sign the body as SendGrid does, with the test connection's key. */
  signed?: boolean;
}

/** What the three fakes have received so far. */
async function fakeCounters() {
  const total = async (base: string) => {
    const { requests } = await (await fetch(`${base}/__fake/requests`)).json() as { requests: Record<string, number> };
    return Object.values(requests).reduce((a, b) => a + b, 0);
  };
  const [clicksend, sendgrid, smtp, twilio, telnyx, exotel] = await Promise.all([
    clicksendFake.requestTotal(),
    sendgridFake.requests().then((r) => r.length),
    smtpFake.messages().then((m) => m.length),
    total(status().TWILIO_FAKE_URL),
    total(status().TELNYX_FAKE_URL.replace(/\/v2\/?$/, "")),
    total(status().EXOTEL_FAKE_URL),
  ]);
  return { clicksend, sendgrid, smtp, twilio, telnyx, exotel };
}

/** The SMS providers on the adapter interface, connected to their fakes. */
const smsProviders: Record<"twilio" | "telnyx" | "exotel", { id: string; webhook_token: string }> = {} as never;

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
  template: { to: ["alice@example.org"], template_id: "d-0123456789abcdef0123456789abcdef", dynamic_template_data: { name: "Ada", items: ["a"] } },
  smsMms: { to: ["+61412345678"], body: "property test", media_urls: ["https://cdn.example.com/a.jpg"] },
  whatsapp: { to: ["+61412345678"], template: { id: "HX0123", variables: ["Ada"] } },
  call: { to: "+61412345678", from_phone: "+61412345679" },
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
// Hostile values: what PostgreSQL cannot store, what is too big, too deep or out of range
// ---------------------------------------------------------------------------

const text = fc.string({ maxLength: 12 });
/** A string with a NUL somewhere in it. */
const withNul = fc.tuple(text, text).map(([a, b]) => `${a}\u0000${b}`);
/** A string with an unpaired UTF-16 surrogate (JSON only: a form encoder would replace it). */
const withLoneSurrogate = fc.tuple(text, fc.integer({ min: 0xd800, max: 0xdfff })).map(([a, c]) => `${a}${String.fromCharCode(c)}`);
const unstorable = fc.oneof(withNul, withNul, withLoneSurrogate);
/**
 * Identifiers past every bound (ids 255, recipients 320, event ids 510 characters), up to
 * 10 kB, of letters and digits PostgreSQL cannot compress much: as an index key, such a
 * value is too big for a btree row (a repeated letter would compress and fit).
 */
const oversized = fc.oneof(fc.integer({ min: 511, max: 10_240 }), fc.constant(10_240)).chain((length) =>
  fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789"), minLength: length, maxLength: length })
);
/** Numbers a field can never take: too big, negative, past 2^53, and strings that parse to NaN or Infinity. */
const outOfRange = fc.constantFrom(1e308, -1e308, -1, 2 ** 53 + 1, 1e-308, 0.5);
const outOfRangeText = fc.constantFrom("1e308", "-1", "9007199254740993", "99999999999999999999999", "NaN", "Infinity", "0x10", "1e", "");
/** A value nested 33 to 1000 levels deep (arrays and objects). */
const deep = fc.oneof(fc.integer({ min: 33, max: 1000 }), fc.constant(1000)).chain((depth) =>
  fc.boolean().map((arrays) => {
    let value: unknown = "leaf";
    for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
    return value;
  })
);
const hostileValue = fc.oneof(unstorable, unstorable, deep);
/** Anything that is not 1-255 printable characters. */
const badIdempotencyKey = fc.oneof(
  unstorable, oversized, fc.constantFrom("", "tab\there", "new\nline", "\u007f", "\u0085"), outOfRange, fc.constant(["k"]),
);
/** Values an id field (connection_id, agent_id) can never take. */
const badId = fc.oneof(unstorable, oversized, fc.constantFrom("-".repeat(36), "g".repeat(36), "0".repeat(37)), outOfRange);

/**
 * A body that would be accepted, made hostile in one place: a field's value, a value
 * inside an array field, a key, or a control field (idempotency key, ids, the account argument).
 */
function hostile(valid: Record<string, unknown>, { account = true } = {}) {
  const keys = Object.keys(valid);
  const texts = keys.filter((k) => typeof valid[k] === "string");
  const arrays = keys.filter((k) => Array.isArray(valid[k]));
  const variants: fc.Arbitrary<Record<string, unknown>>[] = [
    // Not user_id: an agent key names its user, and a user_id beside it is ignored.
    fc.tuple(fc.constantFrom("connection_id", "agent_id"), badId).map(([k, v]) => ({ ...valid, [k]: v })),
    badIdempotencyKey.map((key) => ({ ...valid, idempotency_key: key })),
    // The account argument (tool arguments and the provider routes' bodies).
    ...(account ? [badId.map((bad) => ({ ...valid, account: bad }))] : []),
    fc.tuple(unstorable, fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => ({ ...valid, [k]: v })),
  ];
  if (keys.length) variants.push(fc.tuple(fc.constantFrom(...keys), hostileValue).map(([k, v]) => ({ ...valid, [k]: v })));
  if (texts.length) {
    // Text that would be sent, with a NUL added: it passes the tool's schema, so only the
    // request-level check stands between it and the provider (or the database).
    variants.push(fc.tuple(fc.constantFrom(...texts), unstorable).map(([k, bad]) => ({ ...valid, [k]: `${valid[k]}${bad}` })));
  }
  if (arrays.length) {
    variants.push(fc.tuple(fc.constantFrom(...arrays), hostileValue).map(([k, v]) => ({ ...valid, [k]: [...(valid[k] as unknown[]), v] })));
  }
  return fc.oneof(...variants).map(post);
}

/** The Idempotency-Key header with what a header can carry but a key may not. */
const badKeyHeader = (valid: Record<string, unknown>) =>
  fc.constantFrom("tab\there", "x".repeat(256)).map((key): Attempt => ({ ...post(valid), headers: { "Idempotency-Key": key } }));

/** A GET whose query string is hostile: NUL (%00) in a key or value, out-of-range numbers, bad control fields. */
function hostileQuery(fields: string[]) {
  const q = (entries: Array<[string, string]>): Attempt => ({ method: "GET", query: `?${new URLSearchParams(entries)}` });
  return fc.oneof(
    fc.tuple(fc.constantFrom(...fields, ...CONTROL_FIELDS), withNul).map(([k, v]) => q([[k, v]])),
    fc.tuple(withNul, text).map(([k, v]) => q([[k, v]])),
    fc.tuple(fc.constantFrom(...fields, "page"), outOfRangeText).map(([k, v]) => q([[k, v]])),
    fc.tuple(fc.constantFrom("connection_id", "agent_id"), fc.oneof(oversized, fc.constant("-".repeat(36)))).map(([k, v]) => q([[k, v]])),
    // Not unpaired surrogates: URL encoding turns them into U+FFFD, a printable character.
    fc.oneof(withNul, oversized, fc.constantFrom("", "tab\there", "\u007f")).map((k) => q([["idempotency_key", k]])),
  );
}

/** The methods a route does not answer: 405 in the envelope. */
const methodsOtherThan = (allowed: string[]) =>
  fc.constantFrom(...["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !allowed.includes(m))).chain((method) =>
    fc.jsonValue({ maxDepth: 2 }).map((value): Attempt => ({ method, body: method === "GET" ? undefined : JSON.stringify(value) }))
  );

// ---------------------------------------------------------------------------
// Webhook payloads: what a provider would send, spoiled in one field
// ---------------------------------------------------------------------------

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A ClickSend delivery receipt or inbound SMS, as its automation rules send them (all strings). */
const clicksendFields = (kind: "receipts" | "inbound") =>
  fc.uuid().map((id): Record<string, string> => kind === "receipts"
    ? { message_id: id.toUpperCase(), status_code: "201", status_text: "Delivered", timestamp: String(nowSeconds()), custom_string: "", message_type: "sms" }
    : { message_id: id.toUpperCase(), from: "+61412345678", to: "+61481070000", body: "Yes please", timestamp: String(nowSeconds()), original_message_id: "" });

/** Fields the events are built from (bounded) and timestamps past the year 9999. */
const CLICKSEND_IDS = { receipts: ["message_id", "status_code"], inbound: ["message_id", "from"] } as const;
const farFuture = fc.constantFrom("1e308", "9007199254740993", "253402300800", "1e15", "99999999999999999999");

/** One ClickSend field set made hostile: every variant must be refused. */
const hostileClicksendFields = (kind: "receipts" | "inbound") =>
  fc.tuple(clicksendFields(kind), fc.nat()).chain(([fields, pick]) => {
    const keys = Object.keys(fields);
    return fc.oneof(
      withNul.map((bad) => ({ ...fields, [keys[pick % keys.length]]: `${fields[keys[pick % keys.length]]}${bad}` })),
      fc.tuple(withNul, text).map(([k, v]) => ({ ...fields, [k]: v })),
      fc.tuple(fc.constantFrom(...CLICKSEND_IDS[kind]), oversized).map(([k, v]) => ({ ...fields, [k]: v })),
      farFuture.map((timestamp) => ({ ...fields, timestamp })),
    );
  });

/** The same field set as a form POST, a JSON POST or a GET (ClickSend's "post", "json", "get"). */
const clicksendEncodings = (fields: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(fields, fc.constantFrom("post", "json", "get")).map(([f, encoding]): Attempt => {
    if (encoding === "json") return { method: "POST", body: JSON.stringify(f) };
    const form = new URLSearchParams(Object.entries(f).map(([k, v]) => [k, String(v)])).toString();
    return encoding === "get" ? { method: "GET", query: `?${form}` } : { method: "POST", body: form, contentType: "application/x-www-form-urlencoded" };
  });

/** JSON-only hostility: unpaired surrogates, deep nesting, numbers out of range, in any field or key. */
const hostileClicksendJson = (kind: "receipts" | "inbound") =>
  fc.tuple(clicksendFields(kind), fc.nat()).chain(([fields, pick]) => {
    const key = Object.keys(fields)[pick % Object.keys(fields).length];
    return fc.oneof(
      fc.oneof(withLoneSurrogate, deep).map((bad) => ({ ...fields, [key]: bad })),
      withLoneSurrogate.map((k) => ({ ...fields, [k]: "x" })),
      deep.map((bad) => ({ ...fields, extra: bad })),
      fc.constantFrom(1e308, 2 ** 53 + 1, 1e15).map((timestamp) => ({ ...fields, timestamp })),
    ).map((f): Attempt => ({ method: "POST", body: JSON.stringify(f) }));
  });

/** What ClickSend's adapter tolerates as "no timestamp": stored, or refused, never a 5xx. */
const clicksendOddTimestamps = (kind: "receipts" | "inbound") =>
  clicksendEncodings(fc.tuple(clicksendFields(kind), fc.constantFrom("-1", "NaN", "abc", "0", "", "1.5")).map(([f, timestamp]) => ({ ...f, timestamp })));

/** A SendGrid event as the Event Webhook posts it. */
const sendgridEvent = fc.tuple(fc.uuid(), fc.constantFrom("processed", "delivered", "open", "bounce")).map(([id, event]): Record<string, unknown> => ({
  email: "alice@example.org", timestamp: nowSeconds(), event, sg_event_id: id, sg_message_id: `${id.slice(0, 22)}.filter-1`,
  "smtp-id": `<${id}@example.org>`, category: ["property"],
}));

/** A signed batch with one event made hostile: every variant must be refused. */
const hostileSendgridBatch = fc.tuple(fc.array(sendgridEvent, { maxLength: 2 }), sendgridEvent, fc.nat()).chain(([good, event, pick]) => {
  const keys = Object.keys(event);
  const spoiled = fc.oneof(
    fc.tuple(fc.constantFrom(...keys), unstorable).map(([k, v]) => ({ ...event, [k]: v })),
    // Not in event or sg_event_id: the adapter skips an event whose id or name is not a string.
    fc.tuple(fc.constantFrom(...keys.filter((k) => k !== "event" && k !== "sg_event_id")), deep).map(([k, v]) => ({ ...event, [k]: v })),
    unstorable.map((bad) => ({ ...event, [keys[pick % keys.length]]: `${String(event[keys[pick % keys.length]])}${bad}` })),
    fc.tuple(unstorable, fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => ({ ...event, [k]: v })),
    fc.tuple(fc.constantFrom("sg_event_id", "email", "event"), oversized).map(([k, v]) => ({ ...event, [k]: v })),
    oversized.map((id) => ({ ...event, sg_message_id: `${id}.filter-1` })),
    fc.constantFrom(1e308, -1, 2 ** 53 + 1, 253_402_300_800).map((timestamp) => ({ ...event, timestamp })),
  );
  return spoiled.map((bad): Attempt => ({ method: "POST", body: JSON.stringify([...good, bad]), signed: true }));
});

// ---------------------------------------------------------------------------
// MCP: JSON-RPC bodies with hostile tool arguments, and hostile JSON-RPC itself
// ---------------------------------------------------------------------------

const rpcCall = (name: unknown, args: unknown, id: unknown = 1) =>
  ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
const MCP_HEADERS = { Accept: "application/json, text/event-stream" };
const mcpPost = (value: unknown): Attempt => ({ method: "POST", body: JSON.stringify(value), headers: MCP_HEADERS });
/** The tool arguments a spoiled POST body carries (all JSON: only spoilers are passed in). */
const argumentsOf = (cases: fc.Arbitrary<Attempt>) =>
  cases.filter((a) => a.method === "POST" && !a.headers).map((a) => JSON.parse(a.body!) as unknown);

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

let owner: Connected;
let agentKey: string;
/** A SendGrid connection whose webhook key is the test's, so any body can carry a valid signature. */
let signer: { key: KeyObject; hook: string };

beforeAll(async () => {
  owner = await connectedUser();
  for (const [provider, credentials, config] of [
    ["twilio", { account_sid: TWILIO_FAKE_ACCOUNT, auth_token: TWILIO_FAKE_AUTH_TOKEN }, { base_url: status().TWILIO_FAKE_URL }],
    ["telnyx", { api_key: TELNYX_FAKE_API_KEY }, { base_url: status().TELNYX_FAKE_URL, webhook_public_key: status().TELNYX_FAKE_PUBLIC_KEY }],
    ["exotel", { api_key: EXOTEL_FAKE_ACCOUNT.apiKey, api_token: EXOTEL_FAKE_ACCOUNT.apiToken },
      { account_sid: EXOTEL_FAKE_ACCOUNT.sid, base_url: status().EXOTEL_FAKE_URL }],
  ] as const) {
    const { data, error } = await owner.user.client.rpc("create_connection", { p_provider: provider, p_name: provider, p_credentials: credentials, p_config: config });
    if (error) throw new Error(error.message);
    smsProviders[provider] = data;
  }
  const agent = await agentWithKey(owner.user, [
    { connectionId: owner.clicksend.id, scopes: ["sms", "mms", "balance", "history"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    { connectionId: owner.smtp.id, scopes: ["email"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    { connectionId: owner.sendgrid.id, scopes: ["email"], dailySendLimit: null, maxRecipientsPerMessage: 10_000 },
    { connectionId: smsProviders.twilio.id, scopes: ["sms", "mms", "whatsapp", "balance"], dailySendLimit: null, maxRecipientsPerMessage: 100 },
    { connectionId: smsProviders.telnyx.id, scopes: ["sms", "mms", "balance"], dailySendLimit: null, maxRecipientsPerMessage: 100 },
    { connectionId: smsProviders.exotel.id, scopes: ["sms", "whatsapp", "voice"], dailySendLimit: null, maxRecipientsPerMessage: 100 },
  ], "property agent");
  agentKey = agent.key;
  // Prove the key can send: a body that the generators only ever spoil would go out.
  const res = await callFunction("clicksend/sms/send", agentKey, { body: { to: ["+61411111111"], body: `property smoke ${Date.now()}` } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  // And so can the channel tools on a named account (what the agent-tools and MCP spoilers start from).
  for (const [name, args] of [
    ["sms_send", { ...VALID.sms, body: `property smoke ${Date.now()}`, account: owner.clicksend.id }],
    ["email_send", { ...VALID.mail, account: owner.smtp.id }],
  ] as const) {
    const channel = await callFunction("agent-tools", agentKey, { body: { name, arguments: args } });
    expect(channel.status, `${name}: ${JSON.stringify(channel.body)}`).toBe(200);
  }

  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const account = sendgridAccount();
  const { data, error } = await owner.user.client.rpc("create_connection", {
    p_provider: "sendgrid", p_name: "SendGrid (test signer)", p_credentials: account.credentials,
    p_config: { ...account.config, webhook_public_key: keys.publicKey.export({ type: "spki", format: "der" }).toString("base64") },
  });
  if (error) throw new Error(error.message);
  signer = { key: keys.privateKey, hook: `sendgrid/webhooks/${data.webhook_token}/events` };
  // Prove the signature passes: what the generators spoil would be stored.
  const signed = await attempt(signer.hook, { method: "POST", body: JSON.stringify([{ email: "a@example.org", timestamp: 1_700_000_000, event: "open", sg_event_id: `smoke-${Date.now()}` }]), signed: true });
  expect(signed.status, signed.text).toBe(200);
});

afterAll(async () => {
  await closeAdminSql();
});

interface Reply {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

async function attempt(path: string, a: Attempt): Promise<Reply> {
  const headers: Record<string, string> = { Authorization: `Bearer ${agentKey}`, "Content-Type": a.contentType ?? "application/json", ...a.headers };
  if (a.signed) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp;
    headers["X-Twilio-Email-Event-Webhook-Signature"] = sign("sha256", Buffer.from(timestamp + (a.body ?? "")), { key: signer.key, dsaEncoding: "der" }).toString("base64");
  }
  const response = await fetch(`${status().FUNCTIONS_URL}/${path}${a.query ?? ""}`, { method: a.method, headers, body: a.body });
  const text = await response.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* asserted below */ }
  return { status: response.status, body, text, headers: response.headers };
}

/** What a refused request must not leave behind: provider traffic, stored webhook events. */
async function sideEffects() {
  const [{ events }] = await adminSql()`select count(*)::int as events from public.message_events where user_id = ${owner.user.id}`;
  return { ...(await fakeCounters()), events };
}

/** A 4xx in the documented envelope with a known code, and nothing from inside. */
function expectEnvelope(res: Reply, method: string) {
  const context = res.text.slice(0, 300);
  expect(res.status, context).toBeGreaterThanOrEqual(400);
  expect(res.status, context).toBeLessThan(500);
  expect(Object.keys(CLIENT_ERRORS), context).toContain(res.body?.error?.code);
  expect(typeof res.body.error.message).toBe("string");
  if (res.status === 405) {
    // A wrong method is a 405 invalid_request that says what is allowed.
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.headers.get("allow")?.split(", "), context).not.toContain(method);
    expect(res.headers.get("allow"), context).toMatch(/^[A-Z]+(, [A-Z]+)*$/);
  } else {
    expect(res.status, context).toBe(CLIENT_ERRORS[res.body.error.code]);
  }
  expect(res.text, context).not.toMatch(INTERNALS);
}

async function assertRefused(path: string, cases: fc.Arbitrary<Attempt>) {
  const before = await sideEffects();
  await fc.assert(
    fc.asyncProperty(cases, async (a) => {
      expectEnvelope(await attempt(path, a), a.method);
      expect(await sideEffects()).toEqual(before);
    }),
    { numRuns: NUM_RUNS },
  );
}

/** For input a receiver may accept: stored or refused, never a 5xx, never provider traffic. */
async function assertNoServerError(path: string, cases: fc.Arbitrary<Attempt>) {
  const before = await fakeCounters();
  await fc.assert(
    fc.asyncProperty(cases, async (a) => {
      const res = await attempt(path, a);
      if (res.status === 200) expect(res.text).not.toMatch(INTERNALS);
      else expectEnvelope(res, a.method);
    }),
    { numRuns: NUM_RUNS },
  );
  expect(await fakeCounters()).toEqual(before);
}

/**
 * MCP refuses at the HTTP layer (our envelope, or the SDK's JSON-RPC error), or answers
 * with a JSON-RPC error or a tool error carrying our envelope: never a 5xx, never a
 * tool result. (The SDK answers params that fail its own tools/call schema, such as a
 * non-string name, with -32603 rather than -32602; our handler never throws.)
 */
async function assertMcpRefused(cases: fc.Arbitrary<Attempt>) {
  const before = await sideEffects();
  await fc.assert(
    fc.asyncProperty(cases, async (a) => {
      const res = await attempt("mcp", a);
      const context = res.text.slice(0, 300);
      expect(res.status, context).toBeLessThan(500);
      expect(res.text, context).not.toMatch(INTERNALS);
      if (res.status >= 400 && res.body?.jsonrpc === "2.0") expect(typeof res.body.error?.code, context).toBe("number");
      else if (res.status >= 400) expectEnvelope(res, a.method);
      else if (res.status !== 202) { // 202: notifications only, nothing to answer
        for (const message of Array.isArray(res.body) ? res.body : [res.body]) {
          expect(message?.jsonrpc, context).toBe("2.0");
          if (message.error) expect(typeof message.error.code, context).toBe("number");
          else if (message.result?.content) {
            expect(message.result.isError, context).toBe(true);
            expect(Object.keys(CLIENT_ERRORS), context).toContain(message.result.structuredContent?.error?.code);
          }
        }
      }
      expect(await sideEffects()).toEqual(before);
    }),
    { numRuns: NUM_RUNS },
  );
}

const getWithoutArgs = fc.constant<Attempt>({ method: "GET" });
const historyFields = ["page", "limit", "date_from", "date_to"];
const historyHostile = fc.oneof(
  hostile({ page: 2, limit: 20 }),
  fc.tuple(fc.constantFrom("page", "limit"), outOfRange).map(([k, v]) => post({ [k]: v })),
  hostileQuery(historyFields),
);

const ROUTES: Array<[string, fc.Arbitrary<Attempt>]> = [
  ["clicksend/sms/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, smsInvalid, hostile(VALID.sms), hostile(VALID.sms), badKeyHeader(VALID.sms), hostileQuery(["to", "body"]))],
  ["clicksend/mms/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mmsInvalid, hostile(VALID.mms), hostile(VALID.mms), badKeyHeader(VALID.mms), hostileQuery(["to", "media_url"]))],
  ["clicksend/balance", fc.oneof(notAnObject, wrongMethod, withUnknownField({}), hostile({}), badKeyHeader({}), hostileQuery(["page"]))],
  ["clicksend/sms/history", fc.oneof(notAnObject, wrongMethod, historyInvalid, historyHostile, historyHostile)],
  ["clicksend/mms/history", fc.oneof(notAnObject, wrongMethod, historyInvalid, historyHostile, historyHostile)],
  ["clicksend/test", fc.oneof(notAnObject, methodsOtherThan(["POST"]), anyObject, hostile({}))],
  ["smtp/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mailInvalid(), hostile(VALID.mail), hostile(VALID.mail), badKeyHeader(VALID.mail), hostileQuery(["to", "subject"]))],
  ["smtp/test", fc.oneof(notAnObject, methodsOtherThan(["POST"]), anyObject, hostile({}))],
  ["sendgrid/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, mailInvalid(sendgridExtra), hostile(VALID.mail), hostile(VALID.template), badKeyHeader(VALID.template), hostileQuery(["to", "template_id"]))],
  ["sendgrid/test", fc.oneof(notAnObject, methodsOtherThan(["POST"]), anyObject, hostile({}))],
  ["clicksend/no-such-route", fc.oneof(notAnObject, anyObject, getWithoutArgs, hostile({}))],
  ...(["twilio", "telnyx", "exotel"] as const).flatMap((p): Array<[string, fc.Arbitrary<Attempt>]> => [
    [`${p}/sms/send`, fc.oneof(notAnObject, wrongMethod, getWithoutArgs, smsInvalid, hostile(VALID.sms), hostile(VALID.sms), badKeyHeader(VALID.sms), hostileQuery(["to", "body"]))],
    [`${p}/test`, fc.oneof(notAnObject, methodsOtherThan(["POST"]), anyObject, hostile({}))],
    [`${p}/numbers/sync`, fc.oneof(notAnObject, methodsOtherThan(["POST"]), anyObject, hostile({}))],
  ]),
  ["twilio/mms/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, hostile(VALID.smsMms), badKeyHeader(VALID.smsMms), hostileQuery(["to", "media_urls"]))],
  ["twilio/whatsapp/send", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, smsInvalid, hostile(VALID.whatsapp), badKeyHeader(VALID.whatsapp))],
  ["exotel/calls/connect", fc.oneof(notAnObject, wrongMethod, getWithoutArgs, hostile(VALID.call), badKeyHeader(VALID.call), hostileQuery(["to", "from_phone"]))],
];

/**
 * An agent-tools call body: a tool name and the arguments a route's spoilers produce; for a
 * channel tool, on one named account (else several accounts would make it ambiguous, and
 * the spoilers would not start from a body that sends).
 */
const toolCall = (name: string, cases: fc.Arbitrary<Attempt>, account?: string) =>
  cases.filter((a) => a.method === "POST" && !a.headers).map((a) => JSON.parse(a.body!))
    .filter((b) => b && typeof b === "object" && !Array.isArray(b) && !Object.values(b).includes(null))
    .map((args) => post({ name, arguments: account ? { account, ...args } : args }));

describe("malformed and hostile requests with a valid agent key: always a 4xx envelope, nothing reaches a provider", () => {
  for (const [path, cases] of ROUTES) {
    it(`${path}`, async () => {
      await assertRefused(path, cases);
    });
  }

  it("agent-tools POST {name, arguments}", async () => {
    await assertRefused("agent-tools", fc.oneof(
      notAnObject,
      methodsOtherThan(["GET", "POST"]),
      fc.record({ name: fc.oneof(notAString, fc.string({ maxLength: 30 }), unstorable, oversized), arguments: fc.constant(VALID.sms) }).map(post),
      fc.record({ name: fc.constant("clicksend_send_sms"), arguments: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 2 }), fc.string(), fc.integer()) }).map(post),
      // null means "left out" here (OpenAI strict mode), so only non-null spoilers count.
      toolCall("clicksend_send_sms", fc.oneof(smsInvalid, hostile(VALID.sms))),
      toolCall("smtp_send_email", fc.oneof(mailInvalid(), hostile(VALID.mail))),
      toolCall("sendgrid_send_email", fc.oneof(mailInvalid(sendgridExtra), hostile(VALID.template))),
      toolCall("clicksend_get_sms_history", historyHostile),
      // The channel tools agents are given, on the ClickSend and SMTP accounts.
      toolCall("sms_send", fc.oneof(smsInvalid, hostile({ ...VALID.sms, account: owner.clicksend.id })), owner.clicksend.id),
      toolCall("email_send", fc.oneof(mailInvalid(), hostile({ ...VALID.mail, account: owner.smtp.id })), owner.smtp.id),
      // The call's envelope: account is an argument, not one of its fields (those are spoiled above).
      hostile({ name: "clicksend_send_sms", arguments: VALID.sms }, { account: false }),
      badKeyHeader({ name: "clicksend_send_sms", arguments: VALID.sms }),
    ));
  });

  it("agent-tools GET ?format=…", async () => {
    const query = (entries: Record<string, string>): Attempt => ({ method: "GET", query: `?${new URLSearchParams(entries)}` });
    await assertRefused("agent-tools", fc.oneof(
      fc.oneof(withNul, oversized, outOfRangeText, fc.string({ maxLength: 10 }).filter((f) => !["raw", "openai", "anthropic", "mcp"].includes(f)))
        .map((format) => query({ format })),
      fc.oneof(withNul, oversized, fc.constant("-".repeat(36))).map((agent_id) => query({ agent_id })),
      fc.tuple(withNul, text).map(([k, v]) => query({ format: "openai", [k]: v })),
    ));
  });
});

describe("MCP: hostile tool arguments and hostile JSON-RPC bodies", () => {
  it("tools/call with arguments each tool's schema (or the request check) refuses", async () => {
    const call = (name: string, cases: fc.Arbitrary<Attempt>) => argumentsOf(cases).map((args) => mcpPost(rpcCall(name, args)));
    await assertMcpRefused(fc.oneof(
      call("clicksend_send_sms", fc.oneof(smsInvalid, hostile(VALID.sms), hostile(VALID.sms))),
      call("clicksend_send_mms", fc.oneof(mmsInvalid, hostile(VALID.mms))),
      call("sendgrid_send_email", fc.oneof(mailInvalid(sendgridExtra), hostile(VALID.template))),
      call("clicksend_get_sms_history", historyHostile.filter((a) => a.method === "POST")),
      argumentsOf(fc.oneof(smsInvalid, hostile({ ...VALID.sms, account: owner.clicksend.id })))
        .map((args) => mcpPost(rpcCall("sms_send", args && typeof args === "object" && !Array.isArray(args) ? { account: owner.clicksend.id, ...args } : args))),
      fc.oneof(fc.array(fc.jsonValue(), { maxLength: 2 }), fc.string(), fc.integer(), fc.constant(null), unstorable, deep)
        .map((args) => mcpPost(rpcCall("clicksend_send_sms", args))),
      fc.oneof(unstorable, oversized, notAString, deep).map((name) => mcpPost(rpcCall(name, VALID.sms))),
    ));
  });

  it("JSON-RPC bodies with NUL, unpaired surrogates or deep nesting anywhere, non-objects, batches, wrong methods", async () => {
    // Each would send an SMS but for its hostile part.
    const sendable = rpcCall("clicksend_send_sms", VALID.sms);
    const hostileRpc = fc.oneof(
      fc.oneof(unstorable, deep).map((id) => ({ ...sendable, id })),
      unstorable.map((method) => ({ ...sendable, method })),
      fc.tuple(unstorable, fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => ({ ...sendable, params: { ...sendable.params, [k]: v } })),
      deep.map((meta) => ({ ...sendable, params: { ...sendable.params, _meta: meta } })),
      fc.tuple(unstorable, fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => ({ ...sendable, [k]: v })),
    );
    await assertMcpRefused(fc.oneof(
      hostileRpc.map(mcpPost),
      fc.array(hostileRpc, { minLength: 1, maxLength: 3 }).map(mcpPost),
      notAnObject.map((a) => ({ ...a, headers: MCP_HEADERS })),
      methodsOtherThan(["POST"]).map((a) => ({ ...a, headers: MCP_HEADERS })),
    ));
  });
});

describe("webhooks: hostile payloads refused in every encoding, nothing stored; wrong methods get 405", () => {
  const clicksendHook = (kind: string) => `clicksend/webhooks/${owner.clicksend.webhook_token}/${kind}`;

  for (const kind of ["receipts", "inbound"] as const) {
    it(`clicksend ${kind} (form, JSON and GET)`, async () => {
      await assertRefused(clicksendHook(kind), fc.oneof(
        clicksendEncodings(hostileClicksendFields(kind)),
        clicksendEncodings(hostileClicksendFields(kind)),
        hostileClicksendJson(kind),
        notAnObject,
        methodsOtherThan(["GET", "POST"]),
      ));
      // Timestamps the adapter reads as "none" (-1, NaN, text) may be stored: never a 5xx.
      await assertNoServerError(clicksendHook(kind), clicksendOddTimestamps(kind));
    });
  }

  it("sendgrid events, validly signed", async () => {
    await assertRefused(signer.hook, fc.oneof(hostileSendgridBatch, hostileSendgridBatch, methodsOtherThan(["POST"])));
  });

  it("valid tokens with malformed or unsigned bodies", async () => {
    const sendgridHook = `sendgrid/webhooks/${owner.sendgrid.webhook_token}/events`;
    for (const path of [clicksendHook("receipts"), clicksendHook("inbound"), sendgridHook, signer.hook]) {
      await assertRefused(path, fc.oneof(notAnObject, anyObject, fc.constant(post([])), fc.constant(post([{}]))));
    }
  });

  const form = (fields: Record<string, string>): Attempt =>
    ({ method: "POST", body: new URLSearchParams(fields).toString(), contentType: "application/x-www-form-urlencoded" });
  for (const [provider, kinds] of [["twilio", ["status", "inbound"]], ["telnyx", ["events"]], ["exotel", ["status", "whatsapp"]]] as const) {
    for (const kind of kinds) {
      it(`${provider} ${kind}: unsigned, forged or malformed posts are refused`, async () => {
        const hook = `${provider}/webhooks/${smsProviders[provider].webhook_token}/${kind}`;
        await assertRefused(hook, fc.oneof(
          notAnObject,
          anyObject,
          fc.constant(post([])),
          fc.constant(post({ data: { event_type: "message.finalized", id: "x", payload: {} } })),
          // Twilio and Telnyx sign: any plausible callback without a signature is refused. Exotel
          // does not: its callbacks are spoiled in the fields that are stored (a form encodes a
          // lone surrogate as U+FFFD, which is a legitimate character, so NUL and size only).
          provider === "exotel"
            ? fc.tuple(fc.oneof(withNul, oversized), fc.constantFrom("SmsSid", "Status")).map(([value, field]) => form({ SmsSid: "SM1", Status: "sent", To: "+61412345678", [field]: value }))
            : fc.record({ MessageSid: fc.string({ maxLength: 40 }), MessageStatus: fc.string({ maxLength: 20 }), To: fc.string({ maxLength: 20 }) }).map(form),
          methodsOtherThan(["POST"]),
        ));
      });
    }
  }

  it("names every object inherits are neither webhook kinds nor routes", async () => {
    for (const path of [clicksendHook("constructor"), "clicksend/constructor", "smtp/__proto__", "sendgrid/toString"]) {
      await assertRefused(path, fc.oneof(anyObject, getWithoutArgs));
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
