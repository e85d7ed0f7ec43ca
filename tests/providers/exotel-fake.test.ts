/**
 * The Exotel fake's own wire behaviour, through real HTTP: regions and Basic auth,
 * XML/JSON and the RestException envelope, SMS send/bulksend validation and terminal
 * callbacks (DLT scrubbing included), rate limits and throttling, click-to-call and its
 * callbacks, WhatsApp v2 sends, the 24 h window, DLR and inbound callbacks, the ExoPhone
 * list, Balance.json, and the fault switches.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  EXOTEL_FAKE_ACCOUNT as SG,
  EXOTEL_FAKE_ACCOUNT_IN as IN,
  type ExotelFake,
  startExotelFake,
} from "../../packages/devstack/src/fakes/exotel.ts";

type Region = "sg" | "in";
type Json = Record<string, any>;

let fake: ExotelFake;

const basic = (key: string, token: string) => `Basic ${Buffer.from(`${key}:${token}`).toString("base64")}`;
const SG_AUTH = basic(SG.apiKey, SG.apiToken);
const IN_AUTH = basic(IN.apiKey, IN.apiToken);
const HEX32 = /^[0-9a-f]{32}$/;
const EXOTEL_DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const DLT_BODY = "Your Switchboard code is 123456. It expires in 10 minutes.";
const CUSTOMER = "+919876543210";

interface CallOptions {
  form?: Record<string, string> | URLSearchParams;
  json?: unknown;
  auth?: string | null;
  region?: Region;
  signal?: AbortSignal;
}

/** Raw call to the fake's API (Singapore port and the seeded account unless told). */
async function api(method: string, path: string, opts: CallOptions = {}) {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? SG_AUTH : opts.auth;
  if (auth) headers.authorization = auth;
  let body: string | undefined;
  if (opts.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(opts.form).toString();
  }
  if (opts.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  const r = await fetch(`${fake.urls[opts.region ?? "sg"]}${path}`, { method, headers, body, signal: opts.signal });
  return { status: r.status, contentType: r.headers.get("content-type") ?? "", text: await r.text() };
}
const json = (r: { text: string }) => JSON.parse(r.text) as Json;
const v1 = (sid: string = SG.sid) => `/v1/Accounts/${sid}`;

async function control(path: string, body?: unknown, method = "POST") {
  const r = await fetch(`${fake.url}/__fake/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Json };
}

const validSms = (extra: Record<string, string> = {}) => ({
  From: SG.senderId,
  To: CUSTOMER,
  Body: DLT_BODY,
  DltEntityId: SG.dltEntityId,
  DltTemplateId: SG.dltTemplateId,
  ...extra,
});
const sendSms = (form: Record<string, string>, suffix = ".json") => api("POST", `${v1()}/Sms/send${suffix}`, { form });

/** Expects Exotel's JSON error envelope. */
function expectRest(r: { status: number; text: string }, status: number, code: number) {
  expect(r.status).toBe(status);
  const body = json(r);
  expect(body.RestException).toMatchObject({ Status: status, Code: code });
  expect(typeof body.RestException.Message).toBe("string");
}

// ---------------------------------------------------------------------------
// A callback receiver
// ---------------------------------------------------------------------------

interface Captured {
  method: string;
  url: string;
  contentType: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function startReceiver() {
  const requests: Captured[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, contentType: req.headers["content-type"] ?? "", headers: req.headers, body });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/secret-token`;
  return {
    url,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const form = (c: Captured) => Object.fromEntries(new URLSearchParams(c.body));
async function multipartFields(c: Captured) {
  const data = await new Response(c.body, { headers: { "content-type": c.contentType } }).formData();
  return Object.fromEntries([...data].map(([k, v]) => [k, String(v)]));
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  fake = await startExotelFake({ host: "127.0.0.1", port: 0, inPort: 0 });
  receiver = await startReceiver();
});
afterAll(async () => {
  await fake.close();
  await receiver.close();
});
beforeEach(() => {
  fake.reset();
  receiver.requests.length = 0;
});

// ---------------------------------------------------------------------------
// Regions, auth, formats
// ---------------------------------------------------------------------------

describe("regions, auth and formats", () => {
  it("serves the two clusters on two ports", () => {
    expect(fake.urls.sg).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.urls.in).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.urls.sg).not.toBe(fake.urls.in);
    expect(fake.url).toBe(fake.urls.sg);
  });

  it("a missing or wrong key:token is 401, XML by default and JSON with .json", async () => {
    const none = await api("POST", `${v1()}/Sms/send`, { form: validSms(), auth: null });
    expect(none.status).toBe(401);
    expect(none.contentType).toMatch(/xml/);
    expect(none.text).toMatch(/<TwilioResponse><RestException><Status>401<\/Status><Message>[^<]+<\/Message><Code>34010<\/Code><\/RestException><\/TwilioResponse>/);
    const wrong = await api("POST", `${v1()}/Sms/send.json`, { form: validSms(), auth: basic(SG.apiKey, "nope") });
    expectRest(wrong, 401, 34010);
    expectRest(await api("POST", `${v1()}/Sms/send.json`, { form: validSms(), auth: "Bearer x" }), 401, 34010);
    expect(fake.sms).toHaveLength(0);
  });

  it("credentials work only in their own cluster", async () => {
    const sgInMumbai = await api("GET", `${v1()}/SMS/Messages/${"0".repeat(32)}.json`, { region: "in" });
    expectRest(sgInMumbai, 401, 34010);
    const inInSingapore = await api("GET", `/v2_beta/Accounts/${IN.sid}/IncomingPhoneNumbers`, { auth: IN_AUTH });
    expectRest(inInSingapore, 401, 34010);
    const inInMumbai = await api("GET", `/v2_beta/Accounts/${IN.sid}/IncomingPhoneNumbers`, { auth: IN_AUTH, region: "in" });
    expect(inInMumbai.status).toBe(200);
    expect(json(inInMumbai).incoming_phone_numbers[0].phone_number).toBe(IN.smsExoPhone);
    const mumbaiSend = await api("POST", `${v1(IN.sid)}/Sms/send.json`, {
      auth: IN_AUTH,
      region: "in",
      form: { From: IN.senderId, To: CUSTOMER, Body: "Hello Asha, your Switchboard order 42 has shipped.", DltEntityId: IN.dltEntityId },
    });
    expect(mumbaiSend.status).toBe(200);
    expect(fake.sms[0]).toMatchObject({ region: "in", account_sid: IN.sid });
  });

  it("another account's sid in the path is 401", async () => {
    expectRest(await api("POST", `${v1(IN.sid)}/Sms/send.json`, { form: validSms() }), 401, 34010);
  });

  it("a successful send answers XML by default and JSON with .json", async () => {
    const xml = await sendSms(validSms(), "");
    expect(xml.status).toBe(200);
    expect(xml.contentType).toMatch(/application\/xml/);
    expect(xml.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<TwilioResponse><SMSMessage><Sid>[0-9a-f]{32}<\/Sid>/);
    expect(xml.text).toContain("<Status>queued</Status>");
    expect(xml.text).toContain("<DateSent/>");
    const j = await sendSms(validSms());
    expect(j.contentType).toMatch(/application\/json/);
    expect(json(j).SMSMessage.Status).toBe("queued");
  });

  it("XML escapes special characters", async () => {
    await control("accounts", { sid: SG.sid, dlt_templates: [] });
    const r = await sendSms(validSms({ Body: "Tom & Jerry <3 \"quotes\"" }), "");
    expect(r.text).toContain("<Body>Tom &amp; Jerry &lt;3 &quot;quotes&quot;</Body>");
  });

  it("unknown paths are 404 and wrong methods 405, in the envelope", async () => {
    expectRest(await api("GET", `${v1()}/Nope.json`), 404, 34004);
    const xml404 = await api("GET", `${v1()}/Nope`);
    expect(xml404.status).toBe(404);
    expect(xml404.text).toContain("<RestException><Status>404</Status>");
    expectRest(await api("GET", `${v1()}/Sms/send.json`), 405, 40502);
  });
});

// ---------------------------------------------------------------------------
// SMS send
// ---------------------------------------------------------------------------

describe("POST /v1/Accounts/{sid}/Sms/send", () => {
  it("answers 200 {SMSMessage} with a 32-hex Sid, queued, and records the raw request", async () => {
    const r = await sendSms(validSms({ CustomField: "op-1" }));
    expect(r.status).toBe(200);
    const m = json(r).SMSMessage;
    expect(m.Sid).toMatch(HEX32);
    expect(m).toMatchObject({
      AccountSid: SG.sid,
      From: SG.senderId,
      To: CUSTOMER,
      Body: DLT_BODY,
      Direction: "outbound-api",
      Status: "queued",
      DetailedStatusCode: 21010,
      DetailedStatus: "PENDING_TO_OPERATOR",
      DateSent: null,
      Price: null,
      SmsUnits: null,
      Uri: `/v1/Accounts/${SG.sid}/SMS/Messages/${m.Sid}.json`,
    });
    expect(m.DateCreated).toMatch(EXOTEL_DATE);
    const listed = (await control("messages", undefined, "GET")).body.messages;
    expect(listed).toHaveLength(1);
    expect(listed[0].sid).toBe(m.Sid);
    expect(listed[0].request.params).toMatchObject({ From: SG.senderId, To: CUSTOMER, CustomField: "op-1" });
    expect(listed[0].request.raw).toBe(new URLSearchParams(validSms({ CustomField: "op-1" })).toString());
    expect(listed[0].request.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(listed[0].request.headers.authorization).toBe(SG_AUTH);
  });

  it("accepts the linked ExoPhone number as From in any common format", async () => {
    for (const from of [SG.smsExoPhone, SG.smsExoPhone.replace("+91", "0"), SG.smsExoPhone.replace("+", "")]) {
      expect((await sendSms(validSms({ From: from }))).status).toBe(200);
    }
  });

  it("a comma-separated To gives one entry per number, in JSON and XML", async () => {
    const to = [CUSTOMER, "+919812345678", "09876500001"];
    const r = await sendSms(validSms({ To: to.join(",") }));
    expect(r.status).toBe(200);
    const list = json(r).SMSMessage;
    expect(Array.isArray(list)).toBe(true);
    expect(list.map((m: Json) => m.To)).toEqual(to);
    expect(new Set(list.map((m: Json) => m.Sid)).size).toBe(3);
    for (const m of list) expect(m.Sid).toMatch(HEX32);
    expect(fake.sms.map((m) => m.kind)).toEqual(["static_bulk", "static_bulk", "static_bulk"]);
    const xml = await sendSms(validSms({ To: to.join(",") }), "");
    expect(xml.text.match(/<SMSMessage>/g)).toHaveLength(3);
  });

  it.each([
    ["From missing", { From: "" }, 40205],
    ["To missing", { To: "" }, 34001],
    ["Body missing", { Body: "" }, 40200],
    ["Body over 2000 characters", { Body: "x".repeat(2001) }, 34001],
    ["+91 without DltEntityId", { DltEntityId: "" }, 34001],
    ["an unlinked sender ID", { From: "OTHERS" }, 40300],
    ["a voice-only ExoPhone as From", { From: SG.voiceExoPhone }, 40300],
    ["a bad EncodingType", { EncodingType: "utf8" }, 40209],
    ["a bad SmsType", { SmsType: "marketing" }, 40204],
    ["only invalid recipients", { To: "12345" }, 40203],
  ])("%s → 400", async (_name, override, code) => {
    const fields = validSms();
    for (const [k, v] of Object.entries(override)) {
      if (v === "") delete (fields as Record<string, string>)[k];
      else (fields as Record<string, string>)[k] = v;
    }
    expectRest(await sendSms(fields), 400, code);
    expect(fake.sms).toHaveLength(0);
  });

  it("accepts exactly 2000 characters and 100 numbers, refuses 101 numbers with 40406", async () => {
    await control("accounts", { sid: SG.sid, dlt_templates: [] });
    expect((await sendSms(validSms({ Body: "y".repeat(2000) }))).status).toBe(200);
    const numbers = (n: number) => Array.from({ length: n }, (_, i) => `+9198${String(76500000 + i).padStart(8, "0")}`);
    const hundred = await sendSms(validSms({ To: numbers(100).join(",") }));
    expect(hundred.status).toBe(200);
    expect(json(hundred).SMSMessage).toHaveLength(100);
    expectRest(await sendSms(validSms({ To: numbers(101).join(",") })), 400, 40406);
  });

  it("a non-Indian destination needs no DltEntityId", async () => {
    const r = await sendSms({ From: SG.senderId, To: "+6591234567", Body: "Hi from Singapore" });
    expect(r.status).toBe(200);
  });

  it("zero balance → 403 / 40001; inactive account → 403 / 40002", async () => {
    await control("accounts", { sid: SG.sid, balance: 0 });
    expectRest(await sendSms(validSms()), 403, 40001);
    await control("accounts", { sid: SG.sid, balance: 100, state: "inactive" });
    expectRest(await sendSms(validSms()), 403, 40002);
    expect(fake.sms).toHaveLength(0);
  });

  it("charges the balance per SMS unit", async () => {
    await control("accounts", { sid: SG.sid, dlt_templates: [] });
    const before = fake.accounts().find((a) => a.sid === SG.sid)!.balance;
    await sendSms(validSms({ Body: "z".repeat(161) })); // two GSM units
    expect(fake.sms[0].sms_units).toBe(2);
    expect(fake.accounts().find((a) => a.sid === SG.sid)!.balance).toBeCloseTo(before - 0.5, 6);
    await sendSms(validSms({ Body: "नमस्ते" })); // Unicode: one unit
    expect(fake.sms[1]).toMatchObject({ encoding: "unicode", sms_units: 1 });
  });

  it("the details endpoint returns the message", async () => {
    const sid = json(await sendSms(validSms())).SMSMessage.Sid;
    const r = await api("GET", `${v1()}/SMS/Messages/${sid}.json`);
    expect(r.status).toBe(200);
    expect(json(r).SMSMessage).toMatchObject({ Sid: sid, Status: "queued" });
    expectRest(await api("GET", `${v1()}/SMS/Messages/${"f".repeat(32)}.json`), 404, 34004);
  });
});

// ---------------------------------------------------------------------------
// SMS callbacks
// ---------------------------------------------------------------------------

describe("SMS terminal callbacks", () => {
  async function sendWithCallback(extra: Record<string, string> = {}) {
    const r = await sendSms(validSms({ StatusCallback: receiver.url, ...extra }));
    expect(r.status).toBe(200);
    return json(r).SMSMessage.Sid as string;
  }

  it("nothing is pushed until /__fake/advance", async () => {
    await sendWithCallback();
    await new Promise((r) => setTimeout(r, 50));
    expect(receiver.requests).toHaveLength(0);
  });

  it.each([
    ["sent", {}, "sent", 20005, "DELIVERED_TO_HANDSET"],
    ["failed_dnd", { status: "failed_dnd" }, "failed_dnd", 23005, "FAILED_DND"],
    ["failed / 23082", { status: "failed", code: 23082 }, "failed", 23082, "FAILED_DLT_TEMPLATE"],
    ["failed / 23035", { status: "failed" }, "failed", 23035, "FAILED_SUBSCRIBER_UNAVAILABLE"],
  ])("%s: one form-encoded, unsigned callback with the documented fields", async (_n, input, status, code, text) => {
    const sid = await sendWithCallback({ CustomField: "order-42" });
    const adv = await control("advance", { sid, ...input });
    expect(adv.status).toBe(200);
    expect(receiver.requests).toHaveLength(1);
    const push = receiver.requests[0];
    expect(push.method).toBe("POST");
    expect(push.url).toBe("/hook/secret-token");
    expect(push.contentType).toBe("application/x-www-form-urlencoded");
    const fields = form(push);
    expect(Object.keys(fields)).toEqual([
      "SmsSid",
      "To",
      "Status",
      "SmsUnits",
      "DetailedStatus",
      "DetailedStatusCode",
      "DateSent",
      "CustomField",
    ]);
    expect(fields).toMatchObject({
      SmsSid: sid,
      To: CUSTOMER,
      Status: status,
      SmsUnits: "1",
      DetailedStatus: text,
      DetailedStatusCode: String(code),
      CustomField: "order-42",
    });
    expect(fields.DateSent).toMatch(EXOTEL_DATE);
    // No signature of any kind.
    expect(Object.keys(push.headers).filter((h) => /signature|exotel|hmac/i.test(h))).toEqual([]);
    // Exactly once: a second advance is refused and pushes nothing.
    expect((await control("advance", { sid, status: "sent" })).status).toBe(409);
    expect(receiver.requests).toHaveLength(1);
    // The details endpoint agrees.
    const details = json(await api("GET", `${v1()}/SMS/Messages/${sid}.json`)).SMSMessage;
    expect(details).toMatchObject({ Status: status, DetailedStatusCode: code, SmsUnits: 1 });
    expect(details.DateSent).toMatch(EXOTEL_DATE);
  });

  it("CustomField is absent when it was not set", async () => {
    const sid = await sendWithCallback();
    await control("advance", { sid });
    expect(form(receiver.requests[0])).not.toHaveProperty("CustomField");
  });

  it("intermediate states push nothing; the terminal one pushes once", async () => {
    const sid = await sendWithCallback();
    await control("advance", { sid, status: "sending" });
    await control("advance", { sid, status: "submitted" });
    expect(receiver.requests).toHaveLength(0);
    expect(fake.sms[0]).toMatchObject({ status: "submitted", detailed_status_code: 21020 });
    await control("advance", { sid, status: "sent" });
    expect(receiver.requests).toHaveLength(1);
  });

  it("fault: a duplicate callback carries an identical body", async () => {
    const sid = await sendWithCallback();
    await control("advance", { sid, duplicate: 1 });
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[0].body).toBe(receiver.requests[1].body);
    expect(fake.pushes.filter((p) => p.sid === sid)).toHaveLength(2);
  });

  it("fault: a callback for an SmsSid that was never issued", async () => {
    await sendWithCallback();
    const r = await control("unknown-callback", { kind: "sms", url: receiver.url });
    expect(r.status).toBe(200);
    const fields = form(receiver.requests[0]);
    expect(fields.SmsSid).toMatch(HEX32);
    expect(fake.sms.some((m) => m.sid === fields.SmsSid)).toBe(false);
    expect((await control("unknown-callback", { kind: "sms", url: receiver.url, sid: fake.sms[0].sid })).status).toBe(400);
  });

  it("DLT: a body that does not match the template is accepted, then fails with 23082", async () => {
    const sid = await sendWithCallback({ Body: "Your Switchboard code is 123456. Click here to win!" });
    expect(fake.sms[0].status).toBe("queued");
    await control("advance", { sid, status: "sent" });
    expect(form(receiver.requests[0])).toMatchObject({ Status: "failed", DetailedStatusCode: "23082", DetailedStatus: "FAILED_DLT_TEMPLATE" });
  });

  it("DLT: an unknown template id fails with 23082; a wrong entity with 23081; a match is delivered", async () => {
    const a = await sendWithCallback({ DltTemplateId: "1107999999999999999" });
    const b = await sendWithCallback({ DltEntityId: "1101999999999999999" });
    const c = await sendWithCallback({ DltTemplateId: "" });
    await control("advance", { sid: a });
    await control("advance", { sid: b });
    await control("advance", { sid: c });
    expect(receiver.requests.map((r) => form(r).DetailedStatusCode)).toEqual(["23082", "23081", "20005"]);
  });

  it("DLT: a variable longer than 30 characters does not match", async () => {
    const sid = await sendWithCallback({ Body: `Your Switchboard code is ${"9".repeat(31)}. It expires in 10 minutes.` });
    await control("advance", { sid });
    expect(form(receiver.requests[0]).DetailedStatusCode).toBe("23082");
  });

  it("the DLT registry is configurable", async () => {
    await control("accounts", { sid: SG.sid, dlt_templates: [{ id: "T-1", body: "Hi {#var#}" }] });
    const ok = await sendWithCallback({ DltTemplateId: "T-1", Body: "Hi Asha" });
    await control("advance", { sid: ok });
    expect(form(receiver.requests[0]).Status).toBe("sent");
  });
});

// ---------------------------------------------------------------------------
// Bulk, rate limits, throttling
// ---------------------------------------------------------------------------

describe("POST /v1/Accounts/{sid}/Sms/bulksend", () => {
  const bulkForm = (n: number) => {
    const p = new URLSearchParams({ From: SG.senderId, DltEntityId: SG.dltEntityId });
    for (let i = 0; i < n; i++) {
      p.set(`Messages[${i}][To]`, `+9198${String(76500000 + i).padStart(8, "0")}`);
      p.set(`Messages[${i}][Body]`, `Your Switchboard code is ${1000 + i}. It expires in 5 minutes.`);
    }
    return p;
  };

  it("accepts 100 form-style messages, one entry each with its own body", async () => {
    const r = await api("POST", `${v1()}/Sms/bulksend.json`, { form: bulkForm(100) });
    expect(r.status).toBe(200);
    const list = json(r).SMSMessages;
    expect(list).toHaveLength(100);
    expect(list[7]).toMatchObject({ Status: "queued", Body: "Your Switchboard code is 1007. It expires in 5 minutes." });
    expect(fake.sms).toHaveLength(100);
    expect(fake.sms[0].kind).toBe("dynamic_bulk");
  });

  it("101 messages → 400 / 40400 and nothing is recorded", async () => {
    expectRest(await api("POST", `${v1()}/Sms/bulksend.json`, { form: bulkForm(101) }), 400, 40400);
    expect(fake.sms).toHaveLength(0);
  });

  it("accepts the JSON {sms: [...]} variant and reports invalid items per entry", async () => {
    const r = await api("POST", `${v1()}/Sms/bulksend.json`, {
      json: {
        sms: [
          { From: SG.senderId, To: CUSTOMER, Body: DLT_BODY, DltEntityId: SG.dltEntityId },
          { From: "NOPE01", To: CUSTOMER, Body: DLT_BODY, DltEntityId: SG.dltEntityId },
        ],
      },
    });
    expect(r.status).toBe(200);
    const [good, bad] = json(r).SMSMessages;
    expect(good.Sid).toMatch(HEX32);
    expect(bad).toMatchObject({ Status: "failed", RestException: { Status: 400, Code: 40300 } });
    expect(fake.sms).toHaveLength(1);
  });

  it("XML wraps the entries in <SMSMessages>", async () => {
    const r = await api("POST", `${v1()}/Sms/bulksend`, { form: bulkForm(2) });
    expect(r.text).toMatch(/<TwilioResponse><SMSMessages><SMSMessage><Sid>[0-9a-f]{32}<\/Sid>.*<\/SMSMessage><SMSMessage>/s);
  });
});

describe("rate limits and throttling", () => {
  it("the default is 200 POSTs a minute per account, then 429 / 40402", async () => {
    for (let i = 0; i < 200; i++) {
      const r = await api("POST", `${v1()}/Sms/send.json`, { form: { To: CUSTOMER } });
      expect(r.status).toBe(400);
    }
    expectRest(await sendSms(validSms()), 429, 40402);
    expect(fake.sms).toHaveLength(0);
    // GETs have their own window.
    expect((await api("GET", `/v2_beta/Accounts/${SG.sid}/IncomingPhoneNumbers`)).status).toBe(200);
  });

  it("N is configurable; GETs get 40403", async () => {
    await control("config", { rate_limits: { post: { limit: 2, windowSeconds: 60 }, get: { limit: 1, windowSeconds: 60 } } });
    expect((await sendSms(validSms())).status).toBe(200);
    expect((await sendSms(validSms())).status).toBe(200);
    expectRest(await sendSms(validSms()), 429, 40402);
    expect(fake.sms).toHaveLength(2);
    const numbers = `/v2_beta/Accounts/${SG.sid}/IncomingPhoneNumbers`;
    expect((await api("GET", numbers)).status).toBe(200);
    expectRest(await api("GET", numbers), 429, 40403);
  });

  it("the window resets after windowSeconds", async () => {
    await control("config", { rate_limits: { post: { limit: 1, windowSeconds: 0.2 } } });
    expect((await sendSms(validSms())).status).toBe(200);
    expect((await sendSms(validSms())).status).toBe(429);
    await new Promise((r) => setTimeout(r, 250));
    expect((await sendSms(validSms())).status).toBe(200);
  });

  it("throttle mode answers POSTs with 503 / 40405 until it is switched off", async () => {
    await control("config", { throttle: true });
    expectRest(await sendSms(validSms()), 503, 40405);
    const xml = await sendSms(validSms(), "");
    expect(xml.text).toContain("<Code>40405</Code>");
    await control("config", { throttle: false });
    expect((await sendSms(validSms())).status).toBe(200);
    expect(fake.sms).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------
// Click-to-call
// ---------------------------------------------------------------------------

describe("POST /v1/Accounts/{sid}/Calls/connect", () => {
  const AGENT = "+919812345678";
  const connect = (extra: Record<string, string> = {}, suffix = ".json") =>
    api("POST", `${v1()}/Calls/connect${suffix}`, {
      form: { From: AGENT, To: CUSTOMER, CallerId: SG.voiceExoPhone, ...extra },
    });

  it("answers 200 {Call} in-progress", async () => {
    const r = await connect({ CustomField: "ticket-9" });
    expect(r.status).toBe(200);
    const c = json(r).Call;
    expect(c.Sid).toMatch(HEX32);
    expect(c).toMatchObject({
      AccountSid: SG.sid,
      From: AGENT,
      To: CUSTOMER,
      PhoneNumberSid: SG.voiceExoPhone,
      Status: "in-progress",
      Direction: "outbound-api",
      EndTime: null,
      Duration: null,
      ParentCallSid: null,
      RecordingUrl: null,
    });
    expect(c.StartTime).toMatch(EXOTEL_DATE);
    const xml = await connect({}, "");
    expect(xml.text).toMatch(/<TwilioResponse><Call><Sid>[0-9a-f]{32}<\/Sid>/);
    const listed = (await control("calls", undefined, "GET")).body.calls;
    expect(listed).toHaveLength(2);
    expect(listed[0].request.params).toMatchObject({ CustomField: "ticket-9" });
  });

  it.each([
    ["CallerId missing", { CallerId: "" }],
    ["CallerId not an ExoPhone", { CallerId: "+918049999999" }],
    ["TimeLimit over 14400", { TimeLimit: "14401" }],
    ["TimeLimit not a number", { TimeLimit: "abc" }],
    ["From missing", { From: "" }],
    ["promo CallType", { CallType: "promo" }],
    ["CustomField over 128 characters", { CustomField: "c".repeat(129) }],
    ["an unknown event", { "StatusCallbackEvents[0]": "ringing" }],
    ["an unknown content type", { StatusCallbackContentType: "text/plain" }],
  ])("%s → 400", async (_n, extra) => {
    const fields: Record<string, string> = { From: AGENT, To: CUSTOMER, CallerId: SG.voiceExoPhone, ...extra };
    for (const [k, v] of Object.entries(fields)) if (v === "") delete fields[k];
    expectRest(await api("POST", `${v1()}/Calls/connect.json`, { form: fields }), 400, 34001);
    expect(fake.calls).toHaveLength(0);
  });

  it("TimeLimit 14400 is allowed; zero balance → 403", async () => {
    expect((await connect({ TimeLimit: "14400" })).status).toBe(200);
    await control("accounts", { sid: SG.sid, balance: 0 });
    expectRest(await connect(), 403, 40001);
  });

  it.each([
    ["completed", "completed", "completed"],
    ["no-answer", "no-answer", null],
    ["busy", "completed", "busy"],
    ["failed", "failed", null],
  ])("%s: the classic form callback (CallSid, Status, RecordingUrl, DateUpdated)", async (outcome, leg1, leg2) => {
    const sid = json(await connect({ StatusCallback: receiver.url })).Call.Sid;
    const adv = await control("advance", { sid, outcome });
    expect(adv.status).toBe(200);
    expect(adv.body.call.Status).toBe(outcome);
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].contentType).toBe("application/x-www-form-urlencoded");
    const fields = form(receiver.requests[0]);
    expect(Object.keys(fields)).toEqual(["CallSid", "Status", "RecordingUrl", "DateUpdated"]);
    expect(fields).toMatchObject({ CallSid: sid, Status: outcome, RecordingUrl: "" });
    expect(fields.DateUpdated).toMatch(EXOTEL_DATE);
    expect(fake.calls[0].legs!.map((l) => l.Status)).toEqual([leg1, leg2]);
    expect((await control("advance", { sid, outcome: "completed" })).status).toBe(409);
    expect(receiver.requests).toHaveLength(1);
    const details = json(await api("GET", `${v1()}/Calls/${sid}.json`)).Call;
    expect(details.Status).toBe(outcome);
    expect(details.EndTime).toMatch(EXOTEL_DATE);
  });

  it("StatusCallbackEvents answered+terminal in JSON: two events with Legs and CustomField", async () => {
    const sid = json(await connect({
      StatusCallback: receiver.url,
      "StatusCallbackEvents[0]": "answered",
      "StatusCallbackEvents[1]": "terminal",
      StatusCallbackContentType: "application/json",
      CustomField: "ticket-9",
      Record: "true",
    })).Call.Sid;
    await control("advance", { sid, outcome: "completed", duration: 42 });
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests.map((r) => r.contentType)).toEqual(["application/json", "application/json"]);
    const [answered, terminal] = receiver.requests.map((r) => JSON.parse(r.body));
    expect(answered).toMatchObject({ CallSid: sid, EventType: "answered", Status: "in-progress", CustomField: "ticket-9" });
    expect(terminal).toMatchObject({
      CallSid: sid,
      EventType: "terminal",
      Status: "completed",
      From: AGENT,
      To: CUSTOMER,
      PhoneNumberSid: SG.voiceExoPhone,
      Direction: "outbound-api",
      ConversationDuration: 42,
      CustomField: "ticket-9",
      Legs: [
        { OnCallDuration: 47, Status: "completed", AnsweredBy: "NA" },
        { OnCallDuration: 42, Status: "completed", AnsweredBy: "Human" },
      ],
    });
    expect(terminal.RecordingUrl).toMatch(new RegExp(`/__fake/recordings/${sid}\\.mp3$`));
    expect((await fetch(terminal.RecordingUrl)).status).toBe(200);
    for (const k of ["DateCreated", "StartTime", "EndTime", "DateUpdated"]) expect(terminal[k]).toMatch(EXOTEL_DATE);
  });

  it("events default to multipart/form-data; no-answer sends only the terminal event, To never dialled", async () => {
    const sid = json(await connect({
      StatusCallback: receiver.url,
      "StatusCallbackEvents[0]": "terminal",
      "StatusCallbackEvents[1]": "answered",
      CustomField: "ticket-10",
    })).Call.Sid;
    await control("advance", { sid, outcome: "no-answer" });
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].contentType).toMatch(/^multipart\/form-data; boundary=/);
    const fields = await multipartFields(receiver.requests[0]);
    expect(fields).toMatchObject({
      CallSid: sid,
      EventType: "terminal",
      Status: "no-answer",
      CustomField: "ticket-10",
      "Legs[0][Status]": "no-answer",
      "Legs[1][Status]": "",
      "Legs[1][OnCallDuration]": "0",
      ConversationDuration: "0",
    });
  });

  it("busy: answered (From picked up) then terminal busy", async () => {
    const sid = json(await connect({
      StatusCallback: receiver.url,
      "StatusCallbackEvents[]": "answered",
      StatusCallbackContentType: "application/json",
    })).Call.Sid;
    // Only "answered" was asked for: no terminal event.
    await control("advance", { sid, outcome: "busy" });
    expect(receiver.requests.map((r) => JSON.parse(r.body).EventType)).toEqual(["answered"]);
  });

  it("fault: out-of-order (terminal before answered) and duplicate call callbacks", async () => {
    const sid = json(await connect({
      StatusCallback: receiver.url,
      "StatusCallbackEvents[0]": "answered",
      "StatusCallbackEvents[1]": "terminal",
      StatusCallbackContentType: "application/json",
    })).Call.Sid;
    await control("advance", { sid, outcome: "completed", order: "reverse", duplicate: 1 });
    expect(receiver.requests.map((r) => JSON.parse(r.body).EventType)).toEqual(["terminal", "terminal", "answered", "answered"]);
  });

  it("Url (a call flow) may replace To", async () => {
    const r = await api("POST", `${v1()}/Calls/connect.json`, {
      form: { From: AGENT, Url: "http://my.exotel.com/exoml/start/1234", CallerId: SG.smsExoPhone },
    });
    expect(r.status).toBe(200);
    expect(json(r).Call.To).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// WhatsApp
// ---------------------------------------------------------------------------

describe("POST /v2/accounts/{sid}/messages (WhatsApp)", () => {
  const waPath = `/v2/accounts/${SG.sid}/messages`;
  const text = (to: string, body: string, from: string = SG.whatsappNumber) => ({
    from,
    to,
    content: { recipient_type: "individual", type: "text", text: { preview_url: false, body } },
  });
  const template = (to: string) => ({
    from: SG.whatsappNumber,
    to,
    content: {
      type: "template",
      template: {
        name: "order_update",
        language: { policy: "deterministic", code: "en" },
        components: [{ type: "body", parameters: [{ type: "text", text: "Alice" }] }],
      },
    },
  });
  const sendWa = (messages: unknown[], extra: Json = {}) =>
    api("POST", waPath, { json: { custom_data: "req-level", status_callback: receiver.url, whatsapp: { messages }, ...extra } });
  const openWindow = (from = CUSTOMER) =>
    control("inbound-whatsapp", { from, to: SG.whatsappNumber, body: "hi" });

  it("202 with metadata and response.whatsapp.messages[]", async () => {
    const r = await sendWa([template(CUSTOMER)]);
    expect(r.status).toBe(202);
    const body = json(r);
    expect(body).toMatchObject({
      method: "POST",
      http_code: 202,
      metadata: { total: 1, success: 1, failed: 0 },
    });
    expect(body.request_id).toMatch(HEX32);
    const [item] = body.response.whatsapp.messages;
    expect(item).toMatchObject({ code: 202, status: "success" });
    expect(item.data.sid).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(fake.whatsapp[0]).toMatchObject({ sid: item.data.sid, custom_data: "req-level", status: "accepted" });
  });

  it("more than 100 messages → 400 in the v2 envelope; 401 without credentials", async () => {
    const r = await sendWa(Array.from({ length: 101 }, () => template(CUSTOMER)));
    expect(r.status).toBe(400);
    expect(json(r)).toMatchObject({ http_code: 400, response: { code: 400, status: "failure" } });
    expect(typeof json(r).response.error_data.description).toBe("string");
    expect(fake.whatsapp).toHaveLength(0);
    const unauth = await api("POST", waPath, { json: { whatsapp: { messages: [template(CUSTOMER)] } }, auth: null });
    expect(unauth.status).toBe(401);
    expect(json(unauth).http_code).toBe(401);
  });

  it("partial failure: one item with a non-202 code, the others succeed", async () => {
    const r = await sendWa([template(CUSTOMER), template("+919812345678"), { ...template(CUSTOMER), from: "+918000000000" }]);
    expect(r.status).toBe(202);
    const body = json(r);
    expect(body.metadata).toEqual({ total: 3, success: 2, failed: 1 });
    const codes = body.response.whatsapp.messages.map((m: Json) => m.code);
    expect(codes.slice(0, 2)).toEqual([202, 202]);
    expect(codes[2]).not.toBe(202);
    expect(body.response.whatsapp.messages[2]).toMatchObject({ status: "failure", error_data: { description: expect.any(String) } });
    expect(fake.whatsapp).toHaveLength(2);
  });

  it("24 h window: free-form text fails without a recent inbound message; templates pass", async () => {
    const refused = json(await sendWa([text(CUSTOMER, "hello"), template(CUSTOMER)]));
    expect(refused.metadata).toEqual({ total: 2, success: 1, failed: 1 });
    expect(refused.response.whatsapp.messages[0]).toMatchObject({ status: "failure", error_data: { code: 30007 } });
    // An inbound message 25 hours ago does not open the window; one now does.
    await control("inbound-whatsapp", { from: CUSTOMER, to: SG.whatsappNumber, body: "old", at: Date.now() - 25 * 3600_000 });
    expect(json(await sendWa([text(CUSTOMER, "hello")])).metadata.failed).toBe(1);
    await openWindow();
    expect(json(await sendWa([text(CUSTOMER, "hello")])).metadata).toEqual({ total: 1, success: 1, failed: 0 });
    // The window is per customer.
    expect(json(await sendWa([text("+919812345678", "hello")])).metadata.failed).toBe(1);
  });

  it("24 h window in dlr mode: accepted, then a failed dlr with the configured code", async () => {
    await control("config", { whatsapp_window_failure: { mode: "dlr", code: 30005 } });
    const sid = json(await sendWa([text(CUSTOMER, "hello")])).response.whatsapp.messages[0].data.sid;
    await control("advance", { sid, status: "read" });
    expect(receiver.requests).toHaveLength(1);
    const dlr = JSON.parse(receiver.requests[0].body).whatsapp.messages[0];
    expect(dlr).toMatchObject({ callback_type: "dlr", sid, exo_status_code: 30005 });
  });

  it("dlr callbacks 30001 → 30002 → 30003 as JSON, with the message-level custom_data", async () => {
    const msg = { ...template(CUSTOMER), custom_data: "msg-level" };
    const sid = json(await sendWa([msg])).response.whatsapp.messages[0].data.sid;
    await control("advance", { sid, status: "delivered" });
    await control("advance", { sid, status: "read" });
    expect(receiver.requests.map((r) => r.contentType)).toEqual(["application/json", "application/json", "application/json"]);
    const items = receiver.requests.map((r) => JSON.parse(r.body).whatsapp.messages[0]);
    expect(items.map((i: Json) => i.exo_status_code)).toEqual([30001, 30002, 30003]);
    expect(items.map((i: Json) => i.exo_detailed_status)).toEqual(["EX_MESSAGE_SENT", "EX_MESSAGE_DELIVERED", "EX_MESSAGE_SEEN"]);
    for (const i of items) {
      expect(i).toMatchObject({ callback_type: "dlr", sid, to: CUSTOMER.slice(1), custom_data: "msg-level" });
      expect(i.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+05:30$/);
    }
    expect((await control("advance", { sid, status: "read" })).status).toBe(409);
    expect(fake.whatsapp[0]).toMatchObject({ status: "read", exo_status_code: 30003 });
  });

  it("fault: out-of-order and duplicate dlrs", async () => {
    const sid = json(await sendWa([template(CUSTOMER)])).response.whatsapp.messages[0].data.sid;
    await control("advance", { sid, status: "read", order: "reverse", duplicate: 1 });
    const codes = receiver.requests.map((r) => JSON.parse(r.body).whatsapp.messages[0].exo_status_code);
    expect(codes).toEqual([30003, 30003, 30002, 30002, 30001, 30001]);
  });

  it("a failed dlr with a chosen code; a dlr for an unknown sid", async () => {
    const sid = json(await sendWa([template(CUSTOMER)])).response.whatsapp.messages[0].data.sid;
    await control("advance", { sid, status: "failed", code: 30013 });
    expect(JSON.parse(receiver.requests[0].body).whatsapp.messages[0]).toMatchObject({ exo_status_code: 30013 });
    await control("unknown-callback", { kind: "whatsapp", url: receiver.url });
    const stray = JSON.parse(receiver.requests[1].body).whatsapp.messages[0];
    expect(fake.whatsapp.some((w) => w.sid === stray.sid)).toBe(false);
  });

  it("inbound icm callbacks via /__fake/inbound-whatsapp", async () => {
    const r = await control("inbound-whatsapp", {
      from: CUSTOMER,
      to: SG.whatsappNumber,
      body: "Where is my order?",
      profile_name: "Asha",
      url: receiver.url,
    });
    expect(r.status).toBe(200);
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].contentType).toBe("application/json");
    const item = JSON.parse(receiver.requests[0].body).whatsapp.messages[0];
    expect(item).toMatchObject({
      callback_type: "icm",
      sid: r.body.sid,
      from: CUSTOMER.slice(1),
      to: SG.whatsappNumber,
      profile_name: "Asha",
      content: { type: "text", text: { body: "Where is my order?" } },
    });
    // The account-level inbound URL is used when none is given.
    await control("accounts", { sid: SG.sid, whatsapp_inbound_url: receiver.url });
    await control("inbound-whatsapp", { from: CUSTOMER, body: "again" });
    expect(receiver.requests).toHaveLength(2);
    expect(fake.whatsappInbound).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------
// ExoPhones and balance
// ---------------------------------------------------------------------------

describe("ExoPhones and Balance.json", () => {
  const path = `/v2_beta/Accounts/${SG.sid}/IncomingPhoneNumbers`;

  it("lists ExoPhones with capabilities, paged by Page and PageSize", async () => {
    const all = json(await api("GET", path));
    expect(all).toMatchObject({ page: 0, page_size: 50, next_page_uri: null, previous_page_uri: null });
    expect(all.incoming_phone_numbers.map((n: Json) => [n.phone_number, n.capabilities])).toEqual([
      [SG.smsExoPhone, { voice: true, sms: true }],
      [SG.voiceExoPhone, { voice: true, sms: false }],
    ]);
    const first = json(await api("GET", `${path}?Page=0&PageSize=1`));
    expect(first.incoming_phone_numbers).toHaveLength(1);
    expect(first.next_page_uri).toBe(`${path}?Page=1&PageSize=1`);
    expect(first.first_page_uri).toBe(`${path}?Page=0&PageSize=1`);
    const second = json(await api("GET", first.next_page_uri));
    expect(second.incoming_phone_numbers[0].phone_number).toBe(SG.voiceExoPhone);
    expect(second.next_page_uri).toBeNull();
    expect(second.previous_page_uri).toBe(`${path}?Page=0&PageSize=1`);
    expect(json(await api("GET", `${path}?Page=5&PageSize=1`)).incoming_phone_numbers).toEqual([]);
    expectRest(await api("GET", `${path}?PageSize=x`), 400, 34001);
    expectRest(await api("GET", path, { auth: null }), 401, 34010);
  });

  it("Balance.json is 404 by default and the newer-docs shape when switched on", async () => {
    expectRest(await api("GET", `${v1()}/Balance.json`), 404, 34004);
    await control("config", { balance_endpoint: true });
    const r = await api("GET", `${v1()}/Balance.json`);
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({
      Account: { AccountSid: SG.sid, BalanceData: { Balance: "500.00", Currency: "INR", PricingPlan: "Pay As You Go" } },
    });
    expect(json(r).Account.BalanceData.DateUpdated).toMatch(EXOTEL_DATE);
    fake.reset();
    expect((await api("GET", `${v1()}/Balance.json`)).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

describe("fault injection", () => {
  const sendCount = () => fake.requestCounts()[`POST ${v1()}/Sms/send.json`] ?? 0;

  it("latency: the send is recorded, the answer comes late", async () => {
    await control("faults", { mode: "latency", path: "/Sms/send", delay_ms: 300 });
    const started = Date.now();
    const r = await sendSms(validSms());
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(r.status).toBe(200);
    expect(fake.sms).toHaveLength(1);
  });

  it("latency long enough for a client timeout: recorded although the client gave up", async () => {
    fake.addFault({ mode: "latency", path: "/Sms/send", delay_ms: 5_000 });
    await expect(api("POST", `${v1()}/Sms/send.json`, { form: validSms(), signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(fake.sms).toHaveLength(1);
  });

  it("reset: the connection drops after the message is recorded", async () => {
    await control("faults", { mode: "reset", path: "/Sms/send" });
    await expect(sendSms(validSms())).rejects.toThrow();
    expect(fake.sms).toHaveLength(1);
    expect(sendCount()).toBe(1);
    expect((await sendSms(validSms())).status).toBe(200); // count 1: the next one passes
  });

  it("drop and timeout: nothing is recorded", async () => {
    await control("faults", { mode: "drop", path: "/Sms/send" });
    await expect(sendSms(validSms())).rejects.toThrow();
    fake.addFault({ mode: "timeout", path: "/Sms/send" });
    await expect(api("POST", `${v1()}/Sms/send.json`, { form: validSms(), signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(fake.sms).toHaveLength(0);
    expect(sendCount()).toBe(2);
  });

  it("http500 and http503 in the envelope, nothing recorded", async () => {
    await control("faults", { mode: "http500" });
    expectRest(await sendSms(validSms()), 500, 35000);
    await control("faults", { mode: "http503", path: "/v2/accounts/" + SG.sid + "/messages" });
    const wa = await api("POST", `/v2/accounts/${SG.sid}/messages`, { json: { whatsapp: { messages: [] } } });
    expect(wa.status).toBe(503);
    expect(json(wa).response.error_data.code).toBe(40405);
    expect(fake.sms).toHaveLength(0);
  });

  it("http429 for the next N requests, after M pass", async () => {
    await control("faults", { mode: "http429", path: "/Sms/send", count: 2, after: 1 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await sendSms(validSms())).status);
    expect(statuses).toEqual([200, 429, 429, 200]);
    expect(fake.sms).toHaveLength(2);
  });

  it("faults only match their path, and DELETE clears them", async () => {
    await control("faults", { mode: "http500", path: "/Calls/connect" });
    expect((await sendSms(validSms())).status).toBe(200);
    expect((await control("faults", undefined, "GET")).body.faults).toHaveLength(1);
    await control("faults", undefined, "DELETE");
    expect((await control("faults", undefined, "GET")).body.faults).toHaveLength(0);
    expect((await control("faults", { mode: "explode" })).status).toBe(400);
  });

  it("reset forgets messages, pushes, faults and accounts changes", async () => {
    await sendSms(validSms());
    await control("accounts", { sid: SG.sid, balance: 0 });
    await control("faults", { mode: "http500", count: 5 });
    expect((await control("reset")).status).toBe(200);
    expect(fake.sms).toHaveLength(0);
    expect((await sendSms(validSms())).status).toBe(200);
    expect((await control("requests", undefined, "GET")).body.requests).toEqual({ [`POST ${v1()}/Sms/send.json`]: 1 });
  });
});
