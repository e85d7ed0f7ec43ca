/**
 * The Twilio Programmable Messaging fake's own wire behaviour, through real HTTP: auth
 * (account token and SK API key), error bodies and codes, the .json suffix, validation,
 * scheduling, the Message resource and segment maths, status callbacks and their
 * X-Twilio-Signature (checked with the official `twilio` library), inbound webhooks and
 * TwiML replies, the WhatsApp 24-hour window, paging and filters, balance, 429s and faults.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import twilio from "twilio";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  startTwilioFake,
  type TwilioFake,
  TWILIO_FAKE_ACCOUNT,
  TWILIO_FAKE_API_KEY,
  TWILIO_FAKE_API_SECRET,
  TWILIO_FAKE_AUTH_TOKEN,
  TWILIO_FAKE_LANDLINES,
  TWILIO_FAKE_NUMBERS,
  TWILIO_FAKE_OTHER_ACCOUNT,
  TWILIO_FAKE_OTHER_AUTH_TOKEN,
  TWILIO_FAKE_OTHER_NUMBER,
  TWILIO_FAKE_OTHER_VERIFIED,
  TWILIO_FAKE_SERVICE,
  TWILIO_FAKE_STOPPED_NUMBER,
  twilioBodySha256,
  twilioSignature,
  type TwilioPushRecord,
} from "../../packages/devstack/src/fakes/twilio.ts";

const USER = "+14155550177";
const USER2 = "+14155550178";
const TOKEN = TWILIO_FAKE_AUTH_TOKEN;
const SM = /^SM[0-9a-f]{32}$/;
const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HX = `HX${"ab".repeat(16)}`;

type Auth = { user: string; pass: string } | string | null;
const MAIN: Auth = { user: TWILIO_FAKE_ACCOUNT, pass: TOKEN };
const OTHER: Auth = { user: TWILIO_FAKE_OTHER_ACCOUNT, pass: TWILIO_FAKE_OTHER_AUTH_TOKEN };
const KEY: Auth = { user: TWILIO_FAKE_API_KEY, pass: TWILIO_FAKE_API_SECRET };

let fake: TwilioFake;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

type FormInput = Record<string, string | string[] | undefined>;

function form(params: FormInput) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) s.append(k, x);
  }
  return s.toString();
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** A raw call to the fake. `path` is relative to /2010-04-01/Accounts/{account} unless it starts with "//". */
async function api(
  method: string,
  path: string,
  opts: { params?: FormInput; auth?: Auth; account?: string; signal?: AbortSignal; contentType?: string; body?: string } = {},
): Promise<Answer> {
  const auth = opts.auth === undefined ? MAIN : opts.auth;
  const url = path.startsWith("//") ? `${fake.url}${path.slice(1)}` : `${fake.url}/2010-04-01/Accounts/${opts.account ?? TWILIO_FAKE_ACCOUNT}${path}`;
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = typeof auth === "string" ? auth : `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString("base64")}`;
  let body: string | undefined = opts.body;
  if (opts.params) body = form(opts.params);
  if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/x-www-form-urlencoded";
  const response = await fetch(url, { method, headers, body, signal: opts.signal });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const BASE_SEND = { To: USER, From: TWILIO_FAKE_NUMBERS.primary, Body: "Hello from Switchboard" };
const send = (params: FormInput, auth: Auth = MAIN, account?: string) => api("POST", "/Messages.json", { params, auth, account });

async function control(method: string, path: string, body?: unknown) {
  const response = await fetch(`${fake.url}/__fake/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as any };
}

const advance = (body: Record<string, unknown>) => control("POST", "advance", body);
const inboundSms = (body: Record<string, unknown>) => control("POST", "inbound", body);

function expectTwilioError(r: Answer, status: number, code: number) {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.json).toEqual({ code, message: expect.any(String), more_info: `https://www.twilio.com/docs/errors/${code}`, status });
  expect(typeof r.json.code).toBe("number");
}

// --- a local webhook receiver ------------------------------------------------

interface Hit {
  method: string;
  path: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  params: Record<string, string>;
}
type Responder = (hit: Hit, nth: number) => { status?: number; type?: string; body?: string };

let rx: { base: string; hits: Hit[]; respond: Map<string, Responder>; close(): Promise<void> };

async function startReceiver() {
  const hits: Hit[] = [];
  const respond = new Map<string, Responder>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://receiver.local");
      const isForm = /x-www-form-urlencoded/.test(String(req.headers["content-type"] ?? ""));
      const params = Object.fromEntries(isForm ? new URLSearchParams(body) : url.searchParams);
      const hit: Hit = { method: req.method ?? "", path: url.pathname, url: req.url ?? "/", headers: req.headers, body, params };
      hits.push(hit);
      const nth = hits.filter((h) => h.path === hit.path).length;
      const r = respond.get(url.pathname)?.(hit, nth) ?? {};
      res.writeHead(r.status ?? 200, { "content-type": r.type ?? "text/plain" });
      res.end(r.body ?? "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    respond,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
const sigOf = (hit: Hit) => String(hit.headers["x-twilio-signature"] ?? "");
const tokenOf = (hit: Hit) => String(hit.headers["i-twilio-idempotency-token"] ?? "");

/** The official twilio SDK, pointed at the fake by rewriting its api.twilio.com URLs. */
function sdkClient(username = TWILIO_FAKE_API_KEY, password = TWILIO_FAKE_API_SECRET, accountSid = TWILIO_FAKE_ACCOUNT) {
  const httpClient = new twilio.RequestClient();
  const original = httpClient.request.bind(httpClient);
  httpClient.request = ((opts: Parameters<typeof original>[0]) =>
    original({ ...opts, uri: String(opts.uri).replace("https://api.twilio.com", fake.url) })) as typeof httpClient.request;
  return twilio(username, password, { accountSid, httpClient });
}

const numberSid = async (phone: string) => {
  const r = await api("GET", `/IncomingPhoneNumbers.json?PhoneNumber=${encodeURIComponent(phone)}`);
  return r.json.incoming_phone_numbers[0].sid as string;
};

beforeAll(async () => {
  fake = await startTwilioFake({ port: 0, host: "127.0.0.1" });
  rx = await startReceiver();
});
afterAll(async () => {
  await fake.close();
  await rx.close();
});
beforeEach(() => {
  fake.reset();
  rx.hits.length = 0;
  rx.respond.clear();
  rx.respond.set("/sms", () => ({ type: "text/xml", body: EMPTY_TWIML }));
});

// ---------------------------------------------------------------------------
// Signature algorithm
// ---------------------------------------------------------------------------

describe("twilioSignature", () => {
  it("reproduces Twilio's documented example value", () => {
    const params = { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" };
    const url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    expect(twilioSignature("12345", url, params)).toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    expect(twilio.validateRequest("12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", url, params)).toBe(true);
    // Any change to the URL, a value or the token breaks it.
    expect(twilioSignature("12345", url.replace("foo=1", "foo=2"), params)).not.toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    expect(twilioSignature("12345", url, { ...params, Digits: "1235" })).not.toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    expect(twilioSignature("12346", url, params)).not.toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  });

  it("agrees with the official library on arbitrary URLs and parameters (repeated names included)", () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,11}$/);
    const value = fc.string({ maxLength: 20 });
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.webUrl({ withQueryParameters: true }),
        fc.dictionary(name, fc.oneof(value, fc.uniqueArray(value, { minLength: 2, maxLength: 4 }))),
        (token, url, params) => {
          expect(twilioSignature(token, url, params)).toBe(twilio.getExpectedTwilioSignature(token, url, params));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("signs a JSON-body URL (bodySHA256) with no params", () => {
    const body = '{"a":1}';
    const url = `https://example.test/hook?bodySHA256=${twilioBodySha256(body)}`;
    const sig = twilioSignature(TOKEN, url);
    expect(twilio.validateRequestWithBody(TOKEN, sig, url, body)).toBe(true);
    expect(twilio.validateRequestWithBody(TOKEN, sig, url, '{"a":2}')).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Auth, accounts, paths
// ---------------------------------------------------------------------------

describe("authentication and paths", () => {
  it("accepts AccountSid:AuthToken and SK key:secret for the path's account", async () => {
    const byToken = await api("GET", "/Balance.json");
    expect(byToken.status).toBe(200);
    const byKey = await api("GET", "/Balance.json", { auth: KEY });
    expect(byKey.status).toBe(200);
    expect(byKey.json.account_sid).toBe(TWILIO_FAKE_ACCOUNT);
    const sent = await send(BASE_SEND, KEY);
    expect(sent.status).toBe(201);
    expect(sent.json.account_sid).toBe(TWILIO_FAKE_ACCOUNT);
    const other = await api("GET", "/Balance.json", { auth: OTHER, account: TWILIO_FAKE_OTHER_ACCOUNT });
    expect(other.json).toEqual({ account_sid: TWILIO_FAKE_OTHER_ACCOUNT, balance: "5.00", currency: "USD" });
  });

  it("answers 401 with code 20003 for every credential mismatch, recording nothing", async () => {
    const cases: Auth[] = [
      { user: TWILIO_FAKE_ACCOUNT, pass: "wrong" },
      { user: TWILIO_FAKE_API_KEY, pass: TOKEN }, // key with the account token
      { user: TWILIO_FAKE_ACCOUNT, pass: TWILIO_FAKE_API_SECRET }, // account with the key secret
      { user: TWILIO_FAKE_ACCOUNT, pass: TWILIO_FAKE_OTHER_AUTH_TOKEN },
      "Bearer abc",
      `Basic ${Buffer.from("no-colon").toString("base64")}`,
      null,
    ];
    for (const auth of cases) {
      const r = await send(BASE_SEND, auth);
      expectTwilioError(r, 401, 20003);
      expect(r.headers.get("www-authenticate")).toMatch(/^Basic/);
    }
    const bad = await api("GET", "/Balance.json", { auth: { user: TWILIO_FAKE_ACCOUNT, pass: "nope" } });
    expect(bad.json).toEqual({
      code: 20003,
      message: "Authentication Error - invalid username",
      more_info: "https://www.twilio.com/docs/errors/20003",
      status: 401,
    });
    expect(fake.messages).toHaveLength(0);
  });

  it("answers 404/20404 when the path's account is not the authenticated one", async () => {
    expectTwilioError(await send(BASE_SEND, MAIN, TWILIO_FAKE_OTHER_ACCOUNT), 404, 20404);
    expectTwilioError(await send(BASE_SEND, KEY, TWILIO_FAKE_OTHER_ACCOUNT), 404, 20404);
    expectTwilioError(await api("GET", "/Balance.json", { auth: OTHER }), 404, 20404);
    const r = await api("GET", "/Balance.json", { account: `AC${"0".repeat(32)}` });
    expectTwilioError(r, 404, 20404);
    expect(r.json.message).toBe(`The requested resource /2010-04-01/Accounts/AC${"0".repeat(32)}/Balance.json was not found`);
    expect(fake.messages).toHaveLength(0);
  });

  it("requires the .json suffix: without it, 404 in Twilio's XML error envelope (no XML resources)", async () => {
    for (const path of ["/Balance", "/Messages", "/IncomingPhoneNumbers", ""]) {
      const r = await api("GET", path);
      expect(r.status).toBe(404);
      expect(r.headers.get("content-type")).toMatch(/^application\/xml/);
      expect(r.text).toContain("<RestException><Code>20404</Code>");
      expect(r.text).toContain("<Status>404</Status>");
    }
    const post = await api("POST", "/Messages", { params: BASE_SEND });
    expect(post.status).toBe(404);
    expect(fake.messages).toHaveLength(0);
    const unauth = await api("GET", "/Balance", { auth: null });
    expect(unauth.status).toBe(401);
    expect(unauth.text).toContain("<Code>20003</Code>");
    expect((await api("GET", "/Balance.json")).status).toBe(200);
  });

  it("serves the account resource and refuses unknown methods with 405/20004", async () => {
    const r = await api("GET", ".json");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ sid: TWILIO_FAKE_ACCOUNT, status: "active", type: "Full", owner_account_sid: TWILIO_FAKE_ACCOUNT });
    expect(r.json.date_created).toMatch(RFC2822);
    expectTwilioError(await api("DELETE", "/Messages.json"), 405, 20004);
    expectTwilioError(await api("GET", "/Nope.json"), 404, 20404);
  });
});

// ---------------------------------------------------------------------------
// Sending: validation
// ---------------------------------------------------------------------------

describe("POST Messages.json validation", () => {
  const cases: Array<[string, FormInput, number]> = [
    ["no To", { To: undefined }, 21604],
    ["To too short", { To: "+1555" }, 21211],
    ["To without +", { To: "4155550177" }, 21211],
    ["To not a real number", { To: "+11234567890" }, 21211],
    ["WhatsApp To invalid", { To: "whatsapp:+123", From: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}` }, 21211],
    ["neither From nor MessagingServiceSid", { From: undefined }, 21603],
    ["no Body, MediaUrl or ContentSid", { Body: undefined }, 21602],
    ["empty Body", { Body: "" }, 21602],
    ["From not on the account", { From: "+14155559999" }, 21606],
    ["From without SMS capability", { From: TWILIO_FAKE_NUMBERS.voiceOnly }, 21606],
    ["From of another account", { From: TWILIO_FAKE_OTHER_NUMBER }, 21606],
    ["To on the STOP list", { To: TWILIO_FAKE_STOPPED_NUMBER }, 21610],
    ["To a landline", { To: TWILIO_FAKE_LANDLINES[0] }, 21614],
    ["To a UK landline", { To: "+442071838750" }, 21614],
    ["To a disabled country (China)", { To: "+8613800138000" }, 21408],
    ["To a disabled country (Nigeria)", { To: "+2348031234567" }, 21408],
    ["Body over 1600 characters", { Body: "a".repeat(1601) }, 21617],
    ["11 MediaUrl", { MediaUrl: Array.from({ length: 11 }, (_, i) => `https://example.test/${i}.jpg`) }, 21623],
    ["MediaUrl not http(s)", { MediaUrl: "ftp://example.test/a.jpg" }, 21620],
    ["ValidityPeriod 0", { ValidityPeriod: "0" }, 21624],
    ["ValidityPeriod 36001", { ValidityPeriod: "36001" }, 21624],
    ["ValidityPeriod not a number", { ValidityPeriod: "ten" }, 21624],
    ["StatusCallback host with an underscore", { StatusCallback: "https://bad_host.example.test/cb" }, 21609],
    ["StatusCallback not a URL", { StatusCallback: "not a url" }, 21609],
    ["StatusCallback over 4000 characters", { StatusCallback: `https://example.test/${"a".repeat(4000)}` }, 21609],
    ["MessagingServiceSid malformed", { From: undefined, MessagingServiceSid: "MG123" }, 21705],
    ["MessagingServiceSid unknown", { From: undefined, MessagingServiceSid: `MG${"0".repeat(32)}` }, 21701],
    ["WhatsApp To from an SMS From", { To: `whatsapp:${USER}` }, 21612],
    ["WhatsApp From not enabled", { To: `whatsapp:${USER}`, From: `whatsapp:${TWILIO_FAKE_NUMBERS.primary}` }, 63007],
    ["ContentSid malformed", { Body: undefined, ContentSid: "HX123" }, 21655],
    ["ContentVariables not JSON", { Body: undefined, ContentSid: HX, ContentVariables: "{1: Alice" }, 21656],
  ];
  for (const [name, override, code] of cases) {
    it(`${name} → 400/${code}, nothing recorded`, async () => {
      const r = await send({ ...BASE_SEND, ...override });
      expectTwilioError(r, 400, code);
      expect(fake.messages).toHaveLength(0);
    });
  }

  it("accepts the boundaries: 1600 characters, 10 media, ValidityPeriod 1 and 36000", async () => {
    const long = await send({ ...BASE_SEND, Body: "a".repeat(1600) });
    expect(long.status).toBe(201);
    expect(long.json.num_segments).toBe("11");
    const media = await send({ ...BASE_SEND, MediaUrl: Array.from({ length: 10 }, (_, i) => `https://example.test/${i}.jpg`) });
    expect(media.status).toBe(201);
    expect(media.json.num_media).toBe("10");
    expect((await send({ ...BASE_SEND, ValidityPeriod: "1" })).status).toBe(201);
    expect((await send({ ...BASE_SEND, ValidityPeriod: "36000" })).status).toBe(201);
    expect((await send({ To: USER, From: TWILIO_FAKE_NUMBERS.primary, MediaUrl: "https://example.test/a.png" })).status).toBe(201);
    expect(fake.messages).toHaveLength(5);
  });

  it("reads only form bodies: a JSON body has no To (21604)", async () => {
    const r = await api("POST", "/Messages.json", { body: JSON.stringify(BASE_SEND), contentType: "application/json" });
    expectTwilioError(r, 400, 21604);
  });

  it("trial accounts may only send to verified numbers (21608)", async () => {
    const from = TWILIO_FAKE_OTHER_NUMBER;
    expectTwilioError(await send({ To: USER, From: from, Body: "x" }, OTHER, TWILIO_FAKE_OTHER_ACCOUNT), 400, 21608);
    expect((await send({ To: TWILIO_FAKE_OTHER_VERIFIED, From: from, Body: "x" }, OTHER, TWILIO_FAKE_OTHER_ACCOUNT)).status).toBe(201);
  });

  it("the STOP list, landlines and Geo Permissions are settable through /__fake", async () => {
    expect((await control("POST", "accounts", { sid: TWILIO_FAKE_ACCOUNT, stop_list: [USER2], disabled_prefixes: ["+44"] })).status).toBe(200);
    expect((await control("POST", "config", { landlines: ["+14155550188"] })).status).toBe(200);
    expectTwilioError(await send({ ...BASE_SEND, To: USER2 }), 400, 21610);
    expectTwilioError(await send({ ...BASE_SEND, To: "+447700123456" }), 400, 21408);
    expectTwilioError(await send({ ...BASE_SEND, To: "+14155550188" }), 400, 21614);
    expect((await send({ ...BASE_SEND, To: TWILIO_FAKE_STOPPED_NUMBER })).status).toBe(201);
    expect((await send({ ...BASE_SEND, To: "+8613800138000" })).status).toBe(201);
  });
});

// ---------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------

describe("scheduling", () => {
  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
  const scheduled = (extra: FormInput = {}) => ({
    To: USER,
    MessagingServiceSid: TWILIO_FAKE_SERVICE,
    Body: "Later",
    ScheduleType: "fixed",
    SendAt: inSeconds(3600),
    ...extra,
  });

  it("rejects each scheduling mistake with its code", async () => {
    expectTwilioError(await send(scheduled({ MessagingServiceSid: undefined, From: TWILIO_FAKE_NUMBERS.primary })), 400, 35118);
    expectTwilioError(await send(scheduled({ SendAt: undefined })), 400, 35111);
    expectTwilioError(await send(scheduled({ SendAt: inSeconds(299) })), 400, 35114);
    expectTwilioError(await send(scheduled({ SendAt: inSeconds(300) })), 400, 35114);
    expectTwilioError(await send(scheduled({ SendAt: "tomorrow at noon" })), 400, 35114);
    expectTwilioError(await send(scheduled({ SendAt: inSeconds(35 * 86_400 + 60) })), 400, 35115);
    expect(fake.messages).toHaveLength(0);
  });

  it("accepts the window's edges and answers 201 status scheduled", async () => {
    const soon = await send(scheduled({ SendAt: inSeconds(330) }));
    expect(soon.status).toBe(201);
    expect(soon.json).toMatchObject({ status: "scheduled", messaging_service_sid: TWILIO_FAKE_SERVICE, num_segments: "0", from: null });
    const far = await send(scheduled({ SendAt: inSeconds(35 * 86_400 - 60) }));
    expect(far.status).toBe(201);
    // MessagingServiceSid may also be passed as From.
    const viaFrom = await send(scheduled({ MessagingServiceSid: undefined, From: TWILIO_FAKE_SERVICE }));
    expect(viaFrom.json.status).toBe("scheduled");
  });

  it("cancels a scheduled message once; a second cancel is 400/30409", async () => {
    const created = await send(scheduled());
    const path = `/Messages/${created.json.sid}.json`;
    const canceled = await api("POST", path, { params: { Status: "canceled" } });
    expect(canceled.status).toBe(200);
    expect(canceled.json.status).toBe("canceled");
    expect((await api("GET", path)).json.status).toBe("canceled");
    expectTwilioError(await api("POST", path, { params: { Status: "canceled" } }), 400, 30409);
    expect((await advance({ sid: created.json.sid, to: "delivered" })).status).toBe(409);
    // A message that is not scheduled cannot be canceled either.
    const now = await send(BASE_SEND);
    expectTwilioError(await api("POST", `/Messages/${now.json.sid}.json`, { params: { Status: "canceled" } }), 400, 30409);
  });

  it("a scheduled message is released to queued on /__fake/advance", async () => {
    const created = await send(scheduled({ StatusCallback: `${rx.base}/status` }));
    const r = await advance({ sid: created.json.sid });
    expect(r.json.messages[0]).toMatchObject({ status: "queued", from: TWILIO_FAKE_NUMBERS.primary, num_segments: "1" });
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["queued"]);
  });
});

// ---------------------------------------------------------------------------
// The Message resource
// ---------------------------------------------------------------------------

describe("201 Message resource", () => {
  it("has Twilio's full shape and wire types", async () => {
    const r = await send({ ...BASE_SEND, StatusCallback: `${rx.base}/status` });
    expect(r.status).toBe(201);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const m = r.json;
    expect(m.sid).toMatch(SM);
    expect(m).toMatchObject({
      account_sid: TWILIO_FAKE_ACCOUNT,
      api_version: "2010-04-01",
      body: BASE_SEND.Body,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: TWILIO_FAKE_NUMBERS.primary,
      messaging_service_sid: null,
      num_media: "0",
      num_segments: "1",
      price: null,
      price_unit: "USD",
      status: "queued",
      to: USER,
      date_sent: null,
      uri: `/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages/${m.sid}.json`,
      subresource_uris: {
        media: `/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages/${m.sid}/Media.json`,
        feedback: `/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages/${m.sid}/Feedback.json`,
      },
    });
    expect(m.date_created).toMatch(RFC2822);
    expect(m.date_updated).toMatch(RFC2822);
    expect(Object.keys(m).sort()).toEqual([
      "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated", "direction", "error_code",
      "error_message", "from", "messaging_service_sid", "num_media", "num_segments", "price", "price_unit", "sid",
      "status", "subresource_uris", "to", "uri",
    ]);
    // Fetch returns the same resource.
    const fetched = await api("GET", `/Messages/${m.sid}.json`);
    expect(fetched.json).toEqual(m);
  });

  it("is accepted with num_segments \"0\" when a Messaging Service picks the sender", async () => {
    const r = await send({ To: USER, MessagingServiceSid: TWILIO_FAKE_SERVICE, Body: "pooled" });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ status: "accepted", num_segments: "0", from: null, messaging_service_sid: TWILIO_FAKE_SERVICE });
  });

  it("records the exact raw request under /__fake/messages", async () => {
    const r = await send({ ...BASE_SEND, MediaUrl: ["https://example.test/a.jpg", "https://example.test/b.jpg"] }, KEY);
    const { json } = await control("GET", "messages");
    expect(json.messages).toHaveLength(1);
    const rec = json.messages[0];
    expect(rec.sid).toBe(r.json.sid);
    expect(rec.fake.request.method).toBe("POST");
    expect(rec.fake.request.path).toBe(`/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages.json`);
    expect(rec.fake.request.headers.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_FAKE_API_KEY}:${TWILIO_FAKE_API_SECRET}`).toString("base64")}`);
    expect(rec.fake.request.raw_body).toContain("MediaUrl=https%3A%2F%2Fexample.test%2Fa.jpg&MediaUrl=");
    expect(rec.fake.request.params.MediaUrl).toEqual(["https://example.test/a.jpg", "https://example.test/b.jpg"]);
    expect(rec.num_media).toBe("2");
  });

  it("counts segments: GSM-7 160/153 and UCS-2 70/67, never splitting a character", async () => {
    const cases: Array<[string, string, string]> = [
      ["a".repeat(160), "1", "GSM-7"],
      ["a".repeat(161), "2", "GSM-7"],
      ["a".repeat(306), "2", "GSM-7"],
      ["a".repeat(307), "3", "GSM-7"],
      ["é".repeat(160), "1", "GSM-7"], // é is in the GSM basic table
      ["€".repeat(80), "1", "GSM-7"], // extension table: 2 septets each
      ["€".repeat(81), "2", "GSM-7"],
      [`${"a".repeat(152)}€${"a".repeat(152)}`, "3", "GSM-7"], // 306 septets, but € cannot straddle
      ["ж".repeat(70), "1", "UCS-2"],
      ["ж".repeat(71), "2", "UCS-2"],
      ["ж".repeat(134), "2", "UCS-2"],
      ["ж".repeat(135), "3", "UCS-2"],
      [`${"a".repeat(69)}😀`, "2", "UCS-2"], // one emoji makes it UCS-2; a surrogate pair is 2 units (71)
      ["😀".repeat(35), "1", "UCS-2"],
      ["😀".repeat(36), "2", "UCS-2"],
      [`${"ж".repeat(66)}😀${"ж".repeat(66)}`, "3", "UCS-2"], // 134 units, the pair cannot straddle
    ];
    for (const [body, segments, encoding] of cases) {
      const r = await send({ ...BASE_SEND, Body: body });
      expect(r.status).toBe(201);
      expect(r.json.num_segments, `${body.slice(0, 12)}… (${body.length})`).toBe(segments);
      expect(fake.messages.at(-1)!.encoding).toBe(encoding);
    }
  });

  it("fetch of an unknown or foreign message is 404/20404; DELETE answers 204; Body= redacts", async () => {
    expectTwilioError(await api("GET", `/Messages/SM${"0".repeat(32)}.json`), 404, 20404);
    const created = await send(BASE_SEND);
    const path = `/Messages/${created.json.sid}.json`;
    expectTwilioError(await api("GET", path, { auth: OTHER, account: TWILIO_FAKE_OTHER_ACCOUNT }), 404, 20404);
    expectTwilioError(await api("GET", path, { auth: MAIN, account: TWILIO_FAKE_OTHER_ACCOUNT }), 404, 20404);
    const redacted = await api("POST", path, { params: { Body: "" } });
    expect(redacted.status).toBe(200);
    expect(redacted.json.body).toBe("");
    const deleted = await api("DELETE", path);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    expectTwilioError(await api("GET", path), 404, 20404);
  });
});

// ---------------------------------------------------------------------------
// Status progression and callbacks
// ---------------------------------------------------------------------------

describe("status progression on /__fake/advance", () => {
  const sendWithCallback = async (extra: FormInput = {}, path = "/status") => {
    const r = await send({ ...BASE_SEND, StatusCallback: `${rx.base}${path}`, ...extra });
    expect(r.status).toBe(201);
    return r.json.sid as string;
  };

  it("queued → sending → sent → delivered, one signed form callback per change (none for queued)", async () => {
    const sid = await sendWithCallback();
    const r = await advance({ sid, to: "delivered" });
    expect(r.status).toBe(200);
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sent", "delivered"]);
    const url = `${rx.base}/status`;
    for (const hit of rx.hits) {
      expect(hit.method).toBe("POST");
      expect(hit.headers["content-type"]).toBe("application/x-www-form-urlencoded");
      expect(hit.params).toMatchObject({
        AccountSid: TWILIO_FAKE_ACCOUNT,
        ApiVersion: "2010-04-01",
        From: TWILIO_FAKE_NUMBERS.primary,
        To: USER,
        MessageSid: sid,
        SmsSid: sid,
        SmsStatus: hit.params.MessageStatus,
        FakeFutureParam: "added-without-notice", // stands for parameters Twilio adds without notice
      });
      expect(hit.params.ErrorCode).toBeUndefined();
      expect(hit.params.MessagingServiceSid).toBeUndefined();
      expect(tokenOf(hit)).toMatch(UUID);
      // The official validator accepts it with every posted parameter...
      expect(twilio.validateRequest(TOKEN, sigOf(hit), url, hit.params)).toBe(true);
      expect(sigOf(hit)).toBe(twilioSignature(TOKEN, url, hit.params));
      // ...and not with a fixed list that drops the unknown one.
      const { FakeFutureParam: _, ...known } = hit.params;
      expect(twilio.validateRequest(TOKEN, sigOf(hit), url, known)).toBe(false);
    }
    expect(rx.hits[2].params.RawDlrDoneDate).toMatch(/^\d{10}$/);
    expect(new Set(rx.hits.map(tokenOf)).size).toBe(3);

    const m = (await api("GET", `/Messages/${sid}.json`)).json;
    expect(m).toMatchObject({ status: "delivered", price: "-0.00790", price_unit: "USD", error_code: null });
    expect(m.date_sent).toMatch(RFC2822);
    expect((await api("GET", "/Balance.json")).json.balance).toBe("24.9921");

    // Final: no further moves, and never backwards.
    expect((await advance({ sid, to: "delivered" })).status).toBe(409);
    expect((await advance({ sid, to: "sent" })).status).toBe(409);
    expect((await advance({ sid, to: "read" })).status).toBe(409);
  });

  it("one step at a time without `to`", async () => {
    const sid = await sendWithCallback();
    expect((await advance({ sid })).json.messages[0].status).toBe("sending");
    expect((await advance({ sid })).json.messages[0].status).toBe("sent");
    expect((await advance({ sid })).json.messages[0].status).toBe("delivered");
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sent", "delivered"]);
  });

  for (const code of [30003, 30005, 30006, 30007, 30008]) {
    it(`undelivered with ErrorCode ${code}`, async () => {
      const sid = await sendWithCallback();
      await advance({ sid, to: "undelivered", error_code: code });
      expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sent", "undelivered"]);
      const last = rx.hits[2].params;
      expect(last.ErrorCode).toBe(String(code));
      expect(last.ErrorMessage).toEqual(expect.any(String));
      expect(last.RawDlrDoneDate).toMatch(/^\d{10}$/);
      const m = (await api("GET", `/Messages/${sid}.json`)).json;
      expect(m.status).toBe("undelivered");
      expect(m.error_code).toBe(code);
      expect(m.price).toBe("-0.00790"); // the carrier was tried: billed
    });
  }

  for (const code of [30001, 30002]) {
    it(`failed with ErrorCode ${code}, straight from queued and never billed`, async () => {
      const sid = await sendWithCallback();
      await advance({ sid, to: "failed", error_code: code });
      expect(rx.hits.map((h) => [h.params.MessageStatus, h.params.ErrorCode])).toEqual([["failed", String(code)]]);
      const m = (await api("GET", `/Messages/${sid}.json`)).json;
      expect(m).toMatchObject({ status: "failed", error_code: code, price: null, date_sent: null });
      expect((await api("GET", "/Balance.json")).json.balance).toBe("25.00");
    });
  }

  it("a suspended account's sends are accepted, then fail with 30002", async () => {
    await control("POST", "accounts", { sid: TWILIO_FAKE_ACCOUNT, status: "suspended" });
    const sid = await sendWithCallback();
    await advance({ sid, to: "delivered" });
    expect(rx.hits.map((h) => [h.params.MessageStatus, h.params.ErrorCode])).toEqual([["failed", "30002"]]);
  });

  it("Messaging Service: accepted → queued fills From and num_segments; the service's callback URL is used", async () => {
    await control("POST", "services", { sid: TWILIO_FAKE_SERVICE, status_callback: `${rx.base}/service-status` });
    const r = await send({ To: USER, MessagingServiceSid: TWILIO_FAKE_SERVICE, Body: "a".repeat(200) });
    expect(r.json).toMatchObject({ status: "accepted", num_segments: "0" });
    const a = await advance({ sid: r.json.sid });
    expect(a.json.messages[0]).toMatchObject({ status: "queued", from: TWILIO_FAKE_NUMBERS.primary, num_segments: "2" });
    expect(rx.hits).toHaveLength(1);
    expect(rx.hits[0].path).toBe("/service-status");
    expect(rx.hits[0].params).toMatchObject({ MessageStatus: "queued", MessagingServiceSid: TWILIO_FAKE_SERVICE, From: TWILIO_FAKE_NUMBERS.primary });
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[0]), `${rx.base}/service-status`, rx.hits[0].params)).toBe(true);
  });

  it("WhatsApp: a template send goes on to read, with the channel parameters", async () => {
    const r = await send({
      To: `whatsapp:${USER}`,
      From: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`,
      ContentSid: HX,
      ContentVariables: '{"1":"Alice"}',
      StatusCallback: `${rx.base}/status`,
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ to: `whatsapp:${USER}`, from: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`, status: "queued" });
    await advance({ sid: r.json.sid, to: "read" });
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sent", "delivered", "read"]);
    const read = rx.hits[3].params;
    expect(read).toMatchObject({ EventType: "READ", ChannelPrefix: "whatsapp", ChannelToAddress: USER, To: `whatsapp:${USER}` });
    expect(read.ChannelInstallSid).toMatch(/^XE[0-9a-f]{32}$/);
    expect(read.RawDlrDoneDate).toBeUndefined();
    // read is WhatsApp only.
    const sms = await sendWithCallback();
    expect((await advance({ sid: sms, to: "read" })).status).toBe(409);
  });

  it("advances every pending message when no sid is given", async () => {
    const a = await sendWithCallback();
    const b = await sendWithCallback();
    const r = await advance({ to: "sent" });
    expect(r.json.messages.map((m: { sid: string }) => m.sid).sort()).toEqual([a, b].sort());
    expect(rx.hits).toHaveLength(4);
  });

  it("duplicate delivery repeats the same body, signature and I-Twilio-Idempotency-Token", async () => {
    const sid = await sendWithCallback();
    const r = await advance({ sid, to: "sent", duplicate: 1 });
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sending", "sent", "sent"]);
    expect(tokenOf(rx.hits[0])).toBe(tokenOf(rx.hits[1]));
    expect(tokenOf(rx.hits[2])).toBe(tokenOf(rx.hits[3]));
    expect(tokenOf(rx.hits[0])).not.toBe(tokenOf(rx.hits[2]));
    expect(rx.hits[1].body).toBe(rx.hits[0].body);
    expect(sigOf(rx.hits[1])).toBe(sigOf(rx.hits[0]));
    expect(r.json.pushes.map((p: TwilioPushRecord) => p.duplicate)).toEqual([false, true, false, true]);
  });

  it("retries under the #rc/#rp connection overrides with the same token; the fragment is not signed", async () => {
    rx.respond.set("/flaky", (_hit, nth) => ({ status: nth === 1 ? 500 : 200 }));
    const sid = await sendWithCallback({}, "/flaky#rc=2&rp=5xx");
    const r = await advance({ sid });
    expect(rx.hits).toHaveLength(2);
    expect(tokenOf(rx.hits[1])).toBe(tokenOf(rx.hits[0]));
    expect(sigOf(rx.hits[1])).toBe(sigOf(rx.hits[0]));
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[0]), `${rx.base}/flaky`, rx.hits[0].params)).toBe(true);
    expect(r.json.pushes.map((p: TwilioPushRecord) => [p.attempt, p.response_status])).toEqual([[1, 500], [2, 200]]);
  });

  it("by default a 5xx answer is not retried (only connection failures are)", async () => {
    rx.respond.set("/down", () => ({ status: 503 }));
    const sid = await sendWithCallback({}, "/down");
    await advance({ sid });
    expect(rx.hits).toHaveLength(1);
    // A refused connection is retried once.
    const closed = await startReceiver();
    const deadUrl = `${closed.base}/gone`;
    await closed.close();
    const r2 = await send({ ...BASE_SEND, StatusCallback: deadUrl });
    const a = await advance({ sid: r2.json.sid });
    expect(a.json.pushes).toHaveLength(2);
    expect(a.json.pushes.every((p: TwilioPushRecord) => p.error && p.response_status === undefined)).toBe(true);
    expect(a.json.pushes[1].idempotency_token).toBe(a.json.pushes[0].idempotency_token);
  });

  it("out of order: reverse delivers delivered before sent; the resource still ends delivered", async () => {
    const sid = await sendWithCallback();
    await advance({ sid, to: "delivered", order: "reverse" });
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["delivered", "sent", "sending"]);
    expect((await api("GET", `/Messages/${sid}.json`)).json.status).toBe("delivered");
  });

  it("redeliver replays an earlier callback verbatim (a stale `sent` after `delivered`)", async () => {
    const sid = await sendWithCallback();
    const r = await advance({ sid, to: "delivered" });
    const sent = r.json.pushes.find((p: TwilioPushRecord) => p.event === "sent");
    const again = await control("POST", "redeliver", { push_id: sent.id });
    expect(again.status).toBe(200);
    expect(again.json.pushes[0]).toMatchObject({ redelivery: true, idempotency_token: sent.idempotency_token });
    const last = rx.hits.at(-1)!;
    expect(last.params.MessageStatus).toBe("sent");
    expect(last.body).toBe(rx.hits[1].body);
    expect(tokenOf(last)).toBe(tokenOf(rx.hits[1]));
    expect((await control("GET", "pushes")).json.pushes).toHaveLength(4);
  });
});

// ---------------------------------------------------------------------------
// Signature fault modes
// ---------------------------------------------------------------------------

describe("webhook signatures and their fault modes", () => {
  const PUBLIC = "https://hooks.example.test/twilio/status?tenant=acme";
  const sendTo = async (callback: string) => (await send({ ...BASE_SEND, StatusCallback: callback })).json.sid as string;

  it("behind a TLS-terminating proxy (webhook_routes) the public https URL is signed", async () => {
    await control("POST", "config", { webhook_routes: { "https://hooks.example.test": rx.base } });
    const sid = await sendTo(PUBLIC);
    await advance({ sid });
    const hit = rx.hits[0];
    expect(hit.url).toBe("/twilio/status?tenant=acme");
    expect(hit.headers.host).toBe("hooks.example.test");
    expect(hit.headers["x-forwarded-proto"]).toBe("https");
    expect(twilio.validateRequest(TOKEN, sigOf(hit), PUBLIC, hit.params)).toBe(true);
    expect(twilio.validateRequest(TOKEN, sigOf(hit), PUBLIC.replace("https:", "http:"), hit.params)).toBe(false);
  });

  it("wrong_token: rejected by the official validator", async () => {
    const url = `${rx.base}/status`;
    await advance({ sid: await sendTo(url), signature: "wrong_token" });
    const hit = rx.hits[0];
    expect(sigOf(hit)).toMatch(/^[A-Za-z0-9+/]{27}=$/);
    expect(twilio.validateRequest(TOKEN, sigOf(hit), url, hit.params)).toBe(false);
  });

  it("swap_scheme: signs http:// while Twilio posts to https:// — rejected", async () => {
    await control("POST", "config", { webhook_routes: { "https://hooks.example.test": rx.base } });
    await advance({ sid: await sendTo(PUBLIC), signature: "swap_scheme" });
    const hit = rx.hits[0];
    expect(twilio.validateRequest(TOKEN, sigOf(hit), PUBLIC, hit.params)).toBe(false);
    expect(twilio.validateRequest(TOKEN, sigOf(hit), PUBLIC.replace("https:", "http:"), hit.params)).toBe(true);
    // On a local http URL it signs https:// instead.
    const local = `${rx.base}/status`;
    await advance({ sid: await sendTo(local), signature: "swap_scheme" });
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[1]), local, rx.hits[1].params)).toBe(false);
  });

  it("add_port: signs with :443; exact comparison fails, the official validator's port variants accept it", async () => {
    await control("POST", "config", { webhook_routes: { "https://hooks.example.test": rx.base } });
    await advance({ sid: await sendTo(PUBLIC), signature: "add_port" });
    const hit = rx.hits[0];
    expect(sigOf(hit)).not.toBe(twilioSignature(TOKEN, PUBLIC, hit.params));
    expect(sigOf(hit)).toBe(twilioSignature(TOKEN, "https://hooks.example.test:443/twilio/status?tenant=acme", hit.params));
    expect(twilio.validateRequest(TOKEN, sigOf(hit), PUBLIC, hit.params)).toBe(true);
    // A URL that already has a port cannot get one added.
    const r = await advance({ sid: await sendTo(`${rx.base}/status`), signature: "add_port" });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/webhook_routes/);
  });

  it("format json: bodySHA256 in the query, signed over the URL alone; body_mismatch is rejected", async () => {
    const url = `${rx.base}/status`;
    const sid = await sendTo(url);
    await advance({ sid, format: "json" });
    const hit = rx.hits[0];
    expect(hit.headers["content-type"]).toBe("application/json");
    const full = `${rx.base}${hit.url}`;
    expect(hit.url).toMatch(/^\/status\?bodySHA256=[0-9a-f]{64}$/);
    expect(JSON.parse(hit.body)).toMatchObject({ MessageSid: sid, MessageStatus: "sending", FakeFutureParam: "added-without-notice" });
    expect(twilio.validateRequestWithBody(TOKEN, sigOf(hit), full, hit.body)).toBe(true);

    await advance({ sid, format: "json", signature: "body_mismatch" });
    const bad = rx.hits[1];
    const badFull = `${rx.base}${bad.url}`;
    expect(twilio.validateRequest(TOKEN, sigOf(bad), badFull, {})).toBe(true); // the URL signature itself holds
    expect(twilio.validateRequestWithBody(TOKEN, sigOf(bad), badFull, bad.body)).toBe(false);

    expect((await advance({ sid, signature: "body_mismatch" })).status).toBe(400); // form has no body hash
  });

  it("missing: no X-Twilio-Signature header", async () => {
    const url = `${rx.base}/status`;
    await advance({ sid: await sendTo(url), signature: "missing" });
    expect(rx.hits[0].headers["x-twilio-signature"]).toBeUndefined();
    expect(twilio.validateRequest(TOKEN, "", url, rx.hits[0].params)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------

describe("inbound webhooks", () => {
  const setSmsUrl = async (phone: string, params: FormInput) => {
    const r = await api("POST", `/IncomingPhoneNumbers/${await numberSid(phone)}.json`, { params });
    expect(r.status).toBe(200);
    return r.json;
  };

  it("posts the inbound parameters, signed, to the number's SmsUrl and records the TwiML reply", async () => {
    const updated = await setSmsUrl(TWILIO_FAKE_NUMBERS.primary, { SmsUrl: `${rx.base}/sms` });
    expect(updated.sms_url).toBe(`${rx.base}/sms`);
    rx.respond.set("/sms", () => ({
      type: "text/xml; charset=utf-8",
      body: '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks &amp; bye</Message></Response>',
    }));
    const r = await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: "Hi there" });
    expect(r.status).toBe(200);
    const hit = rx.hits[0];
    const sid = r.json.message.sid;
    expect(sid).toMatch(SM);
    expect(hit.params).toMatchObject({
      MessageSid: sid,
      SmsSid: sid,
      SmsMessageSid: sid,
      AccountSid: TWILIO_FAKE_ACCOUNT,
      MessagingServiceSid: TWILIO_FAKE_SERVICE, // the number is in the service's pool
      From: USER,
      To: TWILIO_FAKE_NUMBERS.primary,
      Body: "Hi there",
      NumMedia: "0",
      NumSegments: "1",
      SmsStatus: "received",
      ApiVersion: "2010-04-01",
      FromCountry: "US",
      ToCountry: "US",
      FakeFutureParam: "added-without-notice",
    });
    for (const k of ["FromCity", "FromState", "FromZip", "ToCity", "ToState", "ToZip"]) expect(hit.params[k]).toBe("");
    expect(twilio.validateRequest(TOKEN, sigOf(hit), `${rx.base}/sms`, hit.params)).toBe(true);
    expect(tokenOf(hit)).toMatch(UUID);

    const push = r.json.pushes[0];
    expect(push.twiml).toMatchObject({ valid: true, error_code: null, messages: ["Thanks & bye"] });
    expect(push.response_status).toBe(200);
    // The <Message> reply becomes an outbound-reply message; the inbound one is listed too.
    const list = (await api("GET", "/Messages.json")).json.messages;
    expect(list.map((m: { direction: string }) => m.direction)).toEqual(["outbound-reply", "inbound"]);
    expect(list[0]).toMatchObject({ from: TWILIO_FAKE_NUMBERS.primary, to: USER, body: "Thanks & bye", status: "queued" });
    expect(list[1]).toMatchObject({ sid, status: "received", from: USER, to: TWILIO_FAKE_NUMBERS.primary });
  });

  it("flags answers that are not TwiML as 11200", async () => {
    await setSmsUrl(TWILIO_FAKE_NUMBERS.primary, { SmsUrl: `${rx.base}/sms` });
    const answers: Array<[{ status?: number; type?: string; body?: string }, boolean]> = [
      [{ type: "application/json", body: '{"ok":true}' }, false],
      [{ type: "text/plain", body: "" }, false],
      [{ type: "text/xml", body: "" }, false],
      [{ type: "text/xml", body: "<html>nope</html>" }, false],
      [{ status: 204 }, false],
      [{ status: 500, type: "text/xml", body: EMPTY_TWIML }, false],
      [{ type: "application/xml", body: "<Response/>" }, true],
      [{ type: "text/xml", body: EMPTY_TWIML }, true],
    ];
    for (const [answer, valid] of answers) {
      rx.respond.set("/sms", () => answer);
      const r = await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: "ping" });
      const twiml = r.json.pushes[0].twiml;
      expect(twiml.valid, JSON.stringify(answer)).toBe(valid);
      expect(twiml.error_code).toBe(valid ? null : 11200);
      expect(twiml.messages).toEqual([]);
    }
    // Recorded under /__fake/pushes with the answer's details.
    const recorded = (await control("GET", "pushes")).json.pushes[0];
    expect(recorded).toMatchObject({ kind: "inbound", response_content_type: "application/json", response_body: '{"ok":true}' });
    expect(recorded.twiml.error_code).toBe(11200);
  });

  it("MMS: NumMedia with MediaUrlN and MediaContentTypeN", async () => {
    await setSmsUrl(TWILIO_FAKE_NUMBERS.primary, { SmsUrl: `${rx.base}/sms` });
    await inboundSms({
      from: USER,
      to: TWILIO_FAKE_NUMBERS.primary,
      body: "",
      media: ["https://media.example.test/cat.png", { url: "https://media.example.test/clip", content_type: "video/mp4" }],
    });
    const p = rx.hits[0].params;
    expect(p).toMatchObject({
      NumMedia: "2",
      MediaUrl0: "https://media.example.test/cat.png",
      MediaContentType0: "image/png",
      MediaUrl1: "https://media.example.test/clip",
      MediaContentType1: "video/mp4",
    });
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[0]), `${rx.base}/sms`, p)).toBe(true);
  });

  it("SmsMethod GET: parameters in the query, signed over the URL alone", async () => {
    await setSmsUrl(TWILIO_FAKE_NUMBERS.secondary, { SmsUrl: `${rx.base}/sms?tenant=acme`, SmsMethod: "GET" });
    await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.secondary, body: "get me" });
    const hit = rx.hits[0];
    expect(hit.method).toBe("GET");
    expect(hit.params).toMatchObject({ tenant: "acme", Body: "get me", From: USER });
    expect(twilio.validateRequest(TOKEN, sigOf(hit), `${rx.base}${hit.url}`, {})).toBe(true);
  });

  it("WhatsApp: whatsapp: prefixes, ProfileName and WaId", async () => {
    await control("POST", "numbers", { phone_number: TWILIO_FAKE_NUMBERS.whatsapp, sms_url: `${rx.base}/sms` });
    await inboundSms({ from: `whatsapp:${USER}`, to: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`, body: "hola", profile_name: "Alice" });
    const p = rx.hits[0].params;
    expect(p).toMatchObject({
      From: `whatsapp:${USER}`,
      To: `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`,
      ProfileName: "Alice",
      WaId: USER.slice(1),
      Body: "hola",
    });
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[0]), `${rx.base}/sms`, p)).toBe(true);
  });

  it("duplicate inbound delivery repeats the idempotency token; bad signature modes apply too", async () => {
    await setSmsUrl(TWILIO_FAKE_NUMBERS.primary, { SmsUrl: `${rx.base}/sms` });
    await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: "twice", duplicate: 1 });
    expect(rx.hits).toHaveLength(2);
    expect(tokenOf(rx.hits[1])).toBe(tokenOf(rx.hits[0]));
    await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: "forged", signature: "wrong_token" });
    expect(twilio.validateRequest(TOKEN, sigOf(rx.hits[2]), `${rx.base}/sms`, rx.hits[2].params)).toBe(false);
  });

  it("STOP opts the user out of that sender (21610) until START", async () => {
    await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: " stop " });
    expectTwilioError(await send(BASE_SEND), 400, 21610);
    expect((await send({ ...BASE_SEND, From: TWILIO_FAKE_NUMBERS.secondary })).status).toBe(201);
    await inboundSms({ from: USER, to: TWILIO_FAKE_NUMBERS.primary, body: "START" });
    expect((await send(BASE_SEND)).status).toBe(201);
  });

  it("rejects numbers no account owns", async () => {
    expect((await inboundSms({ from: USER, to: "+14155559999", body: "x" })).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------
// WhatsApp 24-hour window
// ---------------------------------------------------------------------------

describe("WhatsApp 24-hour window", () => {
  const WA_FROM = `whatsapp:${TWILIO_FAKE_NUMBERS.whatsapp}`;
  const freeForm = (user: string) =>
    send({ To: `whatsapp:${user}`, From: WA_FROM, Body: "free-form", StatusCallback: `${rx.base}/status` });

  it("outside the window a free-form send is accepted (201), then fails with 63016", async () => {
    const r = await freeForm(USER);
    expect(r.status).toBe(201);
    expect(r.json.status).toBe("queued");
    await advance({ sid: r.json.sid, to: "delivered" });
    expect(rx.hits.map((h) => [h.params.MessageStatus, h.params.ErrorCode])).toEqual([["failed", "63016"]]);
    expect((await api("GET", `/Messages/${r.json.sid}.json`)).json).toMatchObject({ status: "failed", error_code: 63016 });
  });

  it("a ContentSid template always goes through", async () => {
    const r = await send({ To: `whatsapp:${USER}`, From: WA_FROM, ContentSid: HX, StatusCallback: `${rx.base}/status` });
    await advance({ sid: r.json.sid, to: "delivered" });
    expect(rx.hits.map((h) => h.params.MessageStatus)).toEqual(["sending", "sent", "delivered"]);
  });

  it("an inbound message opens the window for 24 hours (per sender and user)", async () => {
    const hour = 3_600_000;
    await inboundSms({ from: `whatsapp:${USER}`, to: WA_FROM, body: "hi", received_at: Date.now() - 23 * hour });
    await inboundSms({ from: `whatsapp:${USER2}`, to: WA_FROM, body: "hi", received_at: new Date(Date.now() - 25 * hour).toISOString() });
    const inside = await freeForm(USER);
    const outside = await freeForm(USER2);
    await advance({ sid: inside.json.sid, to: "delivered" });
    await advance({ sid: outside.json.sid, to: "delivered" });
    expect((await api("GET", `/Messages/${inside.json.sid}.json`)).json.status).toBe("delivered");
    expect((await api("GET", `/Messages/${outside.json.sid}.json`)).json).toMatchObject({ status: "failed", error_code: 63016 });
  });

  it("via the Messaging Service the pool's WhatsApp sender is used", async () => {
    await inboundSms({ from: `whatsapp:${USER}`, to: WA_FROM, body: "hi" });
    const r = await send({ To: `whatsapp:${USER}`, MessagingServiceSid: TWILIO_FAKE_SERVICE, Body: "pooled", StatusCallback: `${rx.base}/status` });
    expect(r.json.status).toBe("accepted");
    const a = await advance({ sid: r.json.sid, to: "delivered" });
    expect(a.json.messages[0]).toMatchObject({ status: "delivered", from: WA_FROM });
  });
});

// ---------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------

describe("GET IncomingPhoneNumbers.json", () => {
  it("pages with PageSize and a relative next_page_uri that is null on the last page", async () => {
    const seen: string[] = [];
    let uri: string | null = `/2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/IncomingPhoneNumbers.json?PageSize=2`;
    const pages: number[] = [];
    for (let i = 0; i < 10 && uri; i++) {
      expect(uri.startsWith("/2010-04-01/Accounts/")).toBe(true);
      const r = await api("GET", `/${uri}`);
      expect(r.status).toBe(200);
      expect(r.json.page_size).toBe(2);
      pages.push(r.json.incoming_phone_numbers.length);
      expect(r.json.page).toBe(i);
      expect(r.json.start).toBe(i * 2);
      expect(r.json.first_page_uri).toMatch(/PageSize=2&Page=0$/);
      expect(r.json.previous_page_uri === null).toBe(i === 0);
      for (const n of r.json.incoming_phone_numbers) seen.push(n.phone_number);
      uri = r.json.next_page_uri;
    }
    expect(pages).toEqual([2, 2, 1]);
    expect(uri).toBeNull();
    expect(new Set(seen)).toEqual(new Set(Object.values(TWILIO_FAKE_NUMBERS)));
  });

  it("has Twilio's item shape with boolean capabilities", async () => {
    const r = await api("GET", "/IncomingPhoneNumbers.json");
    expect(r.json.page_size).toBe(50);
    expect(r.json.next_page_uri).toBeNull();
    const voiceOnly = r.json.incoming_phone_numbers.find((n: { phone_number: string }) => n.phone_number === TWILIO_FAKE_NUMBERS.voiceOnly);
    expect(voiceOnly.sid).toMatch(/^PN[0-9a-f]{32}$/);
    expect(voiceOnly.capabilities).toEqual({ voice: true, sms: false, mms: false, fax: false });
    expect(voiceOnly).toMatchObject({ friendly_name: "(415) 555-0102", status: "in-use", origin: "twilio", sms_method: "POST", account_sid: TWILIO_FAKE_ACCOUNT });
    for (const k of ["sms_url", "sms_fallback_url", "status_callback", "voice_url", "address_requirements", "bundle_sid", "emergency_status", "uri"]) {
      expect(voiceOnly).toHaveProperty(k);
    }
    expect(voiceOnly.date_created).toMatch(RFC2822);
    const smsCapable = r.json.incoming_phone_numbers.filter((n: { capabilities: { sms: boolean } }) => n.capabilities.sms === true);
    expect(smsCapable).toHaveLength(4);
  });

  it("filters PhoneNumber with * wildcards and partial digits; caps PageSize at 1000", async () => {
    const list = async (q: string) =>
      (await api("GET", `/IncomingPhoneNumbers.json?${q}`)).json.incoming_phone_numbers.map((n: { phone_number: string }) => n.phone_number);
    expect(await list(`PhoneNumber=${encodeURIComponent("+1415555010*")}`)).toEqual([
      TWILIO_FAKE_NUMBERS.primary,
      TWILIO_FAKE_NUMBERS.secondary,
      TWILIO_FAKE_NUMBERS.voiceOnly,
    ]);
    expect(await list("PhoneNumber=238886")).toEqual([TWILIO_FAKE_NUMBERS.whatsapp]);
    expect(await list("PhoneNumber=44*4")).toEqual([TWILIO_FAKE_NUMBERS.uk]);
    expect(await list("PhoneNumber=999999")).toEqual([]);
    expect((await api("GET", "/IncomingPhoneNumbers.json?PageSize=5000")).json.page_size).toBe(1000);
    // Filters survive into the page links.
    const page = (await api("GET", `/IncomingPhoneNumbers.json?PhoneNumber=1415*&PageSize=1`)).json;
    expect(page.next_page_uri).toContain("PhoneNumber=1415*&PageSize=1&Page=1&PageToken=PAPN");
    const next = (await api("GET", `/${page.next_page_uri}`)).json;
    expect(next.incoming_phone_numbers[0].phone_number).toMatch(/^\+1415/);
    expect(next.incoming_phone_numbers[0].phone_number).not.toBe(page.incoming_phone_numbers[0].phone_number);
  });

  it("the official SDK follows the paging to the end", async () => {
    const numbers = await sdkClient().incomingPhoneNumbers.list({ pageSize: 2 });
    expect(numbers.map((n) => n.phoneNumber).sort()).toEqual(Object.values(TWILIO_FAKE_NUMBERS).sort());
    expect(numbers.every((n) => typeof n.capabilities.sms === "boolean")).toBe(true);
  });
});

describe("GET Messages.json", () => {
  const at = (iso: string) => Date.parse(iso);
  const seed = async () => {
    for (const day of ["2024-03-10", "2024-03-11", "2024-03-12"]) {
      await inboundSms({ from: USER2, to: TWILIO_FAKE_NUMBERS.primary, body: day, received_at: at(`${day}T12:00:00Z`) });
    }
  };
  const bodies = async (query: string) =>
    (await api("GET", `/Messages.json?From=${encodeURIComponent(USER2)}&${query}`)).json.messages.map((m: { body: string }) => m.body);

  it("filters DateSent, DateSent< and DateSent> (midnight UTC of a date, or an exact date-time)", async () => {
    await seed();
    expect(await bodies("DateSent=2024-03-11")).toEqual(["2024-03-11"]);
    expect(await bodies(`${encodeURIComponent("DateSent<")}=2024-03-11`)).toEqual(["2024-03-10"]);
    expect(await bodies("DateSent<=2024-03-12")).toEqual(["2024-03-11", "2024-03-10"]); // literal < in the query
    expect(await bodies(`${encodeURIComponent("DateSent>")}=2024-03-11`)).toEqual(["2024-03-12", "2024-03-11"]);
    expect(await bodies(`${encodeURIComponent("DateSent>")}=2024-03-11T12:00:01Z`)).toEqual(["2024-03-12"]);
    expect(await bodies(`${encodeURIComponent("DateSent<")}=2024-03-11T12:00:00Z`)).toEqual(["2024-03-11", "2024-03-10"]);
    expect(await bodies(`${encodeURIComponent("DateSent>")}=2024-03-10&${encodeURIComponent("DateSent<")}=2024-03-12`)).toEqual([
      "2024-03-11",
      "2024-03-10",
    ]);
    expectTwilioError(await api("GET", "/Messages.json?DateSent=yesterday"), 400, 20001);
  });

  it("filters To and From, newest first, and pages", async () => {
    const a = await send({ ...BASE_SEND, Body: "one" });
    const b = await send({ ...BASE_SEND, Body: "two", To: USER2 });
    const c = await send({ ...BASE_SEND, Body: "three" });
    const toUser = (await api("GET", `/Messages.json?To=${encodeURIComponent(USER)}`)).json.messages;
    expect(toUser.map((m: { sid: string }) => m.sid)).toEqual([c.json.sid, a.json.sid]);
    const fromPrimary = (await api("GET", `/Messages.json?From=${encodeURIComponent(TWILIO_FAKE_NUMBERS.primary)}`)).json.messages;
    expect(fromPrimary).toHaveLength(3);
    expect((await api("GET", `/Messages.json?From=${encodeURIComponent(TWILIO_FAKE_NUMBERS.secondary)}`)).json.messages).toEqual([]);
    // A just-created message (no date_sent yet) is found by date, for reconciling a timed-out send.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const found = (await api("GET", `/Messages.json?To=${encodeURIComponent(USER2)}&${encodeURIComponent("DateSent>")}=${yesterday}`)).json.messages;
    expect(found.map((m: { sid: string }) => m.sid)).toEqual([b.json.sid]);
    // Paging.
    const first = (await api("GET", "/Messages.json?PageSize=2")).json;
    expect(first.messages.map((m: { sid: string }) => m.sid)).toEqual([c.json.sid, b.json.sid]);
    expect(first.next_page_uri).toMatch(/^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Messages\.json\?PageSize=2&Page=1&PageToken=PASM/);
    const second = (await api("GET", `/${first.next_page_uri}`)).json;
    expect(second.messages.map((m: { sid: string }) => m.sid)).toEqual([a.json.sid]);
    expect(second.next_page_uri).toBeNull();
    // Another account sees none of them.
    expect((await api("GET", "/Messages.json", { auth: OTHER, account: TWILIO_FAKE_OTHER_ACCOUNT })).json.messages).toEqual([]);
  });

  it("works with the official SDK: create, RestException codes, list with date filters", async () => {
    const client = sdkClient();
    const m = await client.messages.create({ to: USER, from: TWILIO_FAKE_NUMBERS.primary, body: "via sdk" });
    expect(m.sid).toMatch(SM);
    expect(m.numSegments).toBe("1");
    expect(m.status).toBe("queued");
    expect(m.dateCreated).toBeInstanceOf(Date);
    await expect(client.messages.create({ to: "+1555", from: TWILIO_FAKE_NUMBERS.primary, body: "x" })).rejects.toMatchObject({
      status: 400,
      code: 21211,
      moreInfo: "https://www.twilio.com/docs/errors/21211",
    });
    await expect(sdkClient(TWILIO_FAKE_ACCOUNT, "wrong").balance.fetch()).rejects.toMatchObject({ status: 401, code: 20003 });
    await seed();
    const listed = await client.messages.list({ from: USER2, dateSentBefore: new Date("2024-03-11T12:00:00Z") });
    expect(listed.map((x) => x.body)).toEqual(["2024-03-11", "2024-03-10"]);
    const onDay = await client.messages.list({ from: USER2, dateSent: new Date("2024-03-12T00:00:00Z") });
    expect(onDay.map((x) => x.body)).toEqual(["2024-03-12"]);
    const balance = await client.balance.fetch();
    expect(balance).toMatchObject({ accountSid: TWILIO_FAKE_ACCOUNT, balance: "25.00", currency: "USD" });
  });
});

// ---------------------------------------------------------------------------
// Balance
// ---------------------------------------------------------------------------

describe("GET Balance.json", () => {
  it("returns the balance as a string and is settable through /__fake/accounts", async () => {
    const r = await api("GET", "/Balance.json");
    expect(r.json).toEqual({ account_sid: TWILIO_FAKE_ACCOUNT, balance: "25.00", currency: "USD" });
    expect((await control("POST", "accounts", { sid: TWILIO_FAKE_ACCOUNT, balance: "12.34" })).json.balance).toBe("12.34");
    expect((await api("GET", "/Balance.json")).json.balance).toBe("12.34");
    expect(fake.account(TWILIO_FAKE_ACCOUNT)?.balance).toBe("12.34");
    await control("POST", "accounts", { sid: TWILIO_FAKE_ACCOUNT, balance: 0.05 });
    expect((await api("GET", "/Balance.json")).json.balance).toBe("0.05");
    expect((await control("POST", "accounts", { sid: "AC-nope", balance: "1" })).status).toBe(404);
  });

  it("charges segments × price when a message is sent", async () => {
    await control("POST", "config", { price_per_segment: "0.0100" });
    const r = await send({ ...BASE_SEND, Body: "a".repeat(200), StatusCallback: `${rx.base}/status` });
    await advance({ sid: r.json.sid, to: "sent" });
    expect((await api("GET", `/Messages/${r.json.sid}.json`)).json.price).toBe("-0.02000");
    expect((await api("GET", "/Balance.json")).json.balance).toBe("24.98");
  });
});

// ---------------------------------------------------------------------------
// 429s and faults
// ---------------------------------------------------------------------------

describe("429, concurrency and faults", () => {
  it("429 mode answers 20429 and records nothing, so a retry is safe", async () => {
    await control("POST", "faults", { mode: "http429", path: "/Messages.json", count: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await send(BASE_SEND);
      expect(r.json).toEqual({ code: 20429, message: "Too Many Requests", more_info: "https://www.twilio.com/docs/errors/20429", status: 429 });
      expect(r.status).toBe(429);
    }
    expect(fake.messages).toHaveLength(0);
    expect((await send(BASE_SEND)).status).toBe(201);
    expect(fake.messages).toHaveLength(1);
    expect(fake.requestCounts()[`POST /2010-04-01/Accounts/${TWILIO_FAKE_ACCOUNT}/Messages.json`]).toBe(3);
  });

  it("a concurrency cap refuses requests over N in flight with 429/20429", async () => {
    await control("POST", "config", { max_concurrent: 2 });
    await control("POST", "faults", { mode: "latency", path: "/Messages.json", delay_ms: 300, count: 3 });
    const answers = await Promise.all([send(BASE_SEND), send(BASE_SEND), send(BASE_SEND)]);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 429]);
    expectTwilioError(answers.find((a) => a.status === 429)!, 429, 20429);
    expect(fake.messages).toHaveLength(2);
    // Once they are done, there is room again.
    expect((await send(BASE_SEND)).status).toBe(201);
  });

  it("an optional fixed-window rate limit answers 429/20429", async () => {
    await control("POST", "config", { rate_limit: { limit: 2, windowSeconds: 60 } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await api("GET", "/Balance.json")).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("latency: the send is recorded and the answer arrives late", async () => {
    await control("POST", "faults", { mode: "latency", path: "/Messages.json", delay_ms: 250 });
    const started = Date.now();
    const r = await send(BASE_SEND);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
    expect(r.status).toBe(201);
    expect(fake.messages).toHaveLength(1);
  });

  it("timeout: never answered and not handled", async () => {
    fake.addFault({ mode: "timeout", path: "/Messages.json" });
    await expect(api("POST", "/Messages.json", { params: BASE_SEND, signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(fake.messages).toHaveLength(0);
  });

  it("reset after recording: the client sees a dropped connection, but the message exists", async () => {
    await control("POST", "faults", { mode: "reset", path: "/Messages.json", method: "POST" });
    await expect(send(BASE_SEND)).rejects.toThrow();
    expect(fake.messages).toHaveLength(1);
    // Reconciliation finds it.
    const list = (await api("GET", `/Messages.json?To=${encodeURIComponent(USER)}`)).json.messages;
    expect(list.map((m: { sid: string }) => m.sid)).toEqual([fake.messages[0].sid]);
  });

  it("drop: connection closed before anything is handled", async () => {
    await control("POST", "faults", { mode: "drop", path: "/Messages.json" });
    await expect(send(BASE_SEND)).rejects.toThrow();
    expect(fake.messages).toHaveLength(0);
  });

  it("500 and 503 with Twilio's error body; commit handles the request first", async () => {
    await control("POST", "faults", { mode: "http500", path: "/Messages.json" });
    expectTwilioError(await send(BASE_SEND), 500, 20500);
    expect(fake.messages).toHaveLength(0);
    await control("POST", "faults", { mode: "http503", path: "/Messages.json" });
    expectTwilioError(await send(BASE_SEND), 503, 20503);
    expect(fake.messages).toHaveLength(0);
    await control("POST", "faults", { mode: "http500", path: "/Messages.json", commit: true });
    expectTwilioError(await send(BASE_SEND), 500, 20500);
    expect(fake.messages).toHaveLength(1);
  });

  it("faults match path, method and `after`; DELETE clears them; unknown modes are refused", async () => {
    await control("POST", "faults", { mode: "http503", path: "/Messages.json", method: "POST", after: 1 });
    expect((await api("GET", "/Balance.json")).status).toBe(200);
    expect((await api("GET", "/Messages.json")).status).toBe(200);
    expect((await send(BASE_SEND)).status).toBe(201);
    expect((await send(BASE_SEND)).status).toBe(503);
    expect((await send(BASE_SEND)).status).toBe(201);
    await control("POST", "faults", { mode: "http500", count: 5 });
    expect((await control("DELETE", "faults")).json.faults).toEqual([]);
    expect((await api("GET", "/Balance.json")).status).toBe(200);
    expect((await control("POST", "faults", { mode: "explode" })).status).toBe(400);
  });

  it("reset clears messages, pushes, counters, faults and account changes", async () => {
    await send({ ...BASE_SEND, StatusCallback: `${rx.base}/status` });
    await advance({ to: "sent" });
    await control("POST", "accounts", { sid: TWILIO_FAKE_ACCOUNT, balance: "1.00" });
    await control("POST", "faults", { mode: "http500" });
    expect((await control("POST", "reset", {})).status).toBe(200);
    expect(fake.messages).toHaveLength(0);
    expect(fake.pushes).toHaveLength(0);
    expect(fake.requestCounts()).toEqual({});
    expect((await api("GET", "/Balance.json")).json.balance).toBe("25.00");
  });
});
