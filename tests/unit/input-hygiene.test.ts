/**
 * The input rules that keep bad input a 4xx, as units: the JSON check every body,
 * query string and webhook payload goes through (NUL, unpaired surrogates, nesting),
 * idempotency keys, webhook events before they reach SQL, and the database safety net
 * that turns a data-exception SQLSTATE into 400 instead of 500.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyDbError } from "../../supabase/functions/_shared/db-errors.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import { assertStorableJson, errorResponse, MAX_JSON_DEPTH, methodNotAllowed, parseJson } from "../../supabase/functions/_shared/http.ts";
import { parseIdempotencyKey } from "../../supabase/functions/_shared/idempotency.ts";
import { validateWebhookEvents, type WebhookEventInput } from "../../supabase/functions/_shared/webhooks.ts";

/** The ApiError a call throws (fails the test if it does not throw one). */
function thrown(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("expected an ApiError");
}

const nest = (depth: number): unknown => (depth === 0 ? "leaf" : { a: [nest(depth - 1)] });
/** Arrays nested exactly `depth` levels (the outermost counts as 1). */
const arrays = (depth: number): unknown => (depth === 1 ? [] : [arrays(depth - 1)]);

describe("assertStorableJson", () => {
  it("refuses a NUL in a value or a key with 400, naming the path", () => {
    const value = thrown(() => assertStorableJson({ to: ["+61412345678"], args: { body: "a\u0000b" } }));
    expect(value.status).toBe(400);
    expect(value.code).toBe("invalid_request");
    expect(value.details).toEqual({ issues: [{ path: "args.body", message: "must not contain NUL characters (U+0000)" }] });

    const key = thrown(() => assertStorableJson({ list: [{ "k\u0000": 1 }] }, "query"));
    expect(key.message).toContain("invalid query");
    expect(key.details).toEqual({ issues: [{ path: "list.0.k\\u0000", message: "must not contain NUL characters (U+0000)" }] });
  });

  it("refuses an unpaired surrogate, and accepts paired ones (emoji)", () => {
    expect(thrown(() => assertStorableJson(["ok", "\ud800x"])).details).toEqual({
      issues: [{ path: "1", message: "must be valid Unicode (unpaired surrogate)" }],
    });
    expect(() => assertStorableJson({ body: "😀 €", "clé": "ключ" })).not.toThrow();
  });

  it(`accepts nesting ${MAX_JSON_DEPTH} deep and refuses one level more`, () => {
    expect(() => assertStorableJson(arrays(MAX_JSON_DEPTH))).not.toThrow();
    const error = thrown(() => assertStorableJson(arrays(MAX_JSON_DEPTH + 1)));
    expect(error.message).toContain(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    // 1000 levels: refused without walking them all.
    expect(thrown(() => assertStorableJson(nest(1000))).status).toBe(400);
  });

  it("accepts any JSON without NUL or lone surrogates within the bound, and refuses it with a NUL planted anywhere", () => {
    const clean = fc.string({ unit: "grapheme", maxLength: 8 }).filter((s) => !s.includes("\u0000"));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small", maxDepth: 6 }, clean, fc.double(), fc.boolean(), fc.constant(null),
        fc.array(tie("value"), { maxLength: 3 }), fc.dictionary(clean, tie("value"), { maxKeys: 3 })),
    })).value;
    fc.assert(fc.property(json, (value) => {
      expect(() => assertStorableJson(value)).not.toThrow();
      const text = JSON.stringify(value);
      const strings = [...text.matchAll(/"(?:[^"\\]|\\.)*"/g)];
      if (strings.length === 0) return;
      // Put a NUL inside one of the strings (a key or a value) of the same document.
      const at = strings[text.length % strings.length].index! + 1;
      const poisoned = JSON.parse(`${text.slice(0, at)}\\u0000${text.slice(at)}`);
      expect(thrown(() => assertStorableJson(poisoned)).code).toBe("invalid_request");
    }), { numRuns: 300 });
  });

  it("parseJson refuses text that is not JSON, then applies the same check", () => {
    expect(thrown(() => parseJson("{'a': 1}")).message).toBe("body is not valid JSON");
    expect(thrown(() => parseJson('{"a":"\\u0000"}')).status).toBe(400);
    expect(parseJson('{"a":[1,"b"]}')).toEqual({ a: [1, "b"] });
  });
});

describe("405 in the envelope", () => {
  it("carries the allowed methods in the Allow header", async () => {
    const response = errorResponse(methodNotAllowed("PUT", ["GET", "POST"]));
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, POST");
    expect((await response.json() as any).error.code).toBe("invalid_request");
  });
});

describe("parseIdempotencyKey", () => {
  it("treats undefined and null as absent", () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
    expect(parseIdempotencyKey(null)).toBeNull();
  });

  it("accepts 1-255 printable characters, counted in code points", () => {
    for (const key of ["k", "k".repeat(255), "order 42 / retry", "😀".repeat(255), "clé-ключ-鍵"]) {
      expect(parseIdempotencyKey(key)).toBe(key);
    }
  });

  it("refuses empty, too long, non-strings, control characters and unpaired surrogates", () => {
    for (const key of ["", "k".repeat(256), "😀".repeat(256), 1, true, {}, ["k"], "a\u0000b", "a\tb", "a\r\nb", "\u007f", "\u009f", "a\ud800"]) {
      expect(thrown(() => parseIdempotencyKey(key)).code, JSON.stringify(key)).toBe("invalid_request");
    }
  });
});

describe("classifyDbError", () => {
  it("turns each data-exception SQLSTATE into 400 invalid_request, without the database's message", () => {
    for (const code of ["22P05", "22021", "22P02", "22001", "22003", "22007", "22008", "54000"]) {
      const error = classifyDbError(Object.assign(new Error('index row size 10016 exceeds btree version 4 maximum 2704 for index "message_events_connection_id_provider_event_id_key"'), { code }));
      expect(error, code).toBeInstanceOf(ApiError);
      expect(error!.status).toBe(400);
      expect(error!.code).toBe("invalid_request");
      expect(error!.details).toEqual({ sqlstate: code });
      expect(error!.message).not.toContain("message_events");
    }
  });

  it("leaves every other error alone", () => {
    for (const error of [
      Object.assign(new Error("x"), { code: "23505" }), // unique_violation
      Object.assign(new Error("x"), { code: "57014" }), // query_canceled
      Object.assign(new Error("x"), { code: "08006" }), // connection_failure
      Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("x"), { code: "toString" }),
      new Error("no code"), null, undefined, "22P05", { code: 22001 },
    ]) {
      expect(classifyDbError(error)).toBeNull();
    }
  });
});

describe("validateWebhookEvents", () => {
  const event = (fields: Partial<WebhookEventInput> = {}): WebhookEventInput => ({
    event_type: "delivery_receipt",
    provider_event_id: "receipt:ABC:201",
    provider_message_id: "ABC",
    original_message_id: null,
    operation_id: null,
    status: "201",
    recipient: "+61412345678",
    occurred_at: 1_700_000_000,
    payload: { message_id: "ABC", status_code: "201" },
    ...fields,
  });
  const refused = (fields: Partial<WebhookEventInput>) => thrown(() => validateWebhookEvents([event(), event(fields)]));

  it("passes a well-formed event, with its timestamp as an ISO instant", () => {
    expect(validateWebhookEvents([event()])[0]).toMatchObject({ provider_message_id: "ABC", occurred_at: "2023-11-14T22:13:20.000Z" });
  });

  it("accepts timestamps from 0 to the end of 9999 and refuses anything outside", () => {
    expect(validateWebhookEvents([event({ occurred_at: 0 }), event({ occurred_at: 253_402_300_799 })]).map((e) => e.occurred_at))
      .toEqual(["1970-01-01T00:00:00.000Z", "9999-12-31T23:59:59.000Z"]);
    for (const occurred_at of [-1, 253_402_300_800, 2 ** 53 + 1, 1e308, Infinity, NaN]) {
      expect(refused({ occurred_at }).details, String(occurred_at)).toMatchObject({ issues: [{ path: "1.occurred_at" }] });
    }
  });

  it("bounds every stored string and refuses a NUL anywhere, payload included", () => {
    for (const fields of [
      { provider_event_id: "e".repeat(511) }, { provider_message_id: "m".repeat(256) }, { original_message_id: "o".repeat(256) },
      { status: "s".repeat(65) }, { recipient: "r".repeat(321) }, { provider_event_id: "" }, { provider_message_id: "" },
      { provider_message_id: "a\u0000b" }, { payload: { note: ["x\u0000"] } }, { payload: { "k\u0000": 1 } },
      { payload: nest(40) as Record<string, unknown> },
    ]) {
      expect(refused(fields).code, JSON.stringify(fields).slice(0, 80)).toBe("invalid_request");
    }
    expect(() => validateWebhookEvents([event({ provider_event_id: "e".repeat(510), provider_message_id: "m".repeat(255), status: "s".repeat(64), recipient: "r".repeat(320) })])).not.toThrow();
  });

  it("takes only a UUID for an operation id; any other custom string is no link", () => {
    const id = "0b7c8a52-7d0e-4a43-9b59-2a1f2e6f1b11";
    const [ours, foreign] = validateWebhookEvents([event({ operation_id: id }), event({ operation_id: "c".repeat(10_000) })]);
    expect(ours.operation_id).toBe(id);
    expect(foreign.operation_id).toBeNull();
  });
});
