/**
 * Every emitted tool definition is valid: JSON Schema 2020-12 (ajv), OpenAI strict-mode
 * rules, and the strict form accepts exactly what the zod schema accepts once nulls are
 * dropped. Tool definitions are generated from the same zod schemas the calls are
 * validated with, so these tests guard the one source of truth.
 */
import Ajv2020 from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { strictViolations } from "../support/openai-strict.ts";
import { dropNulls, inputSchema, outputSchema, strictSchema } from "../../supabase/functions/_shared/tool-schemas.ts";
import { allTools, toolFor } from "../../supabase/functions/_shared/tools/index.ts";

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });


/** A valid call for each tool, as a model would make it. */
const samples: Record<string, Record<string, unknown>> = {
  clicksend_send_sms: { to: ["+61411111111"], body: "Hello" },
  clicksend_send_mms: { to: ["+61411111111"], body: "Look", subject: "Photo", media_url: "https://example.com/a.jpg" },
  clicksend_get_balance: {},
  clicksend_get_sms_history: { page: 1, limit: 20 },
  clicksend_get_mms_history: {},
  smtp_send_email: { to: ["a@example.com"], subject: "Hi", text: "Hello" },
  sendgrid_send_email: { to: ["a@example.com"], subject: "Hi", text: "Hello", categories: ["demo"] },
  sms_send: { to: ["+14155550123"], body: "Hello" },
  message_status: { limit: 5 },
  mms_send: { to: ["+14155550123"], media_urls: ["https://example.com/a.jpg"] },
  whatsapp_send: { to: ["+14155550123"], body: "Hello" },
  email_send: { to: ["a@example.com"], subject: "Hi", text: "Hello" },
  twilio_send_sms: { to: ["+14155550123"], body: "Hello" },
  twilio_send_mms: { to: ["+14155550123"], media_urls: ["https://example.com/a.jpg"], body: "Look" },
  twilio_send_whatsapp: { to: ["+14155550123"], template: { id: "HX0123", language: "en", variables: ["Ada"] } },
  twilio_get_balance: {},
  telnyx_send_sms: { to: ["+13125550123"], body: "Hello", from: "+13125550101" },
  telnyx_send_mms: { to: ["+13125550123"], media_urls: ["https://example.com/a.jpg"], subject: "Photo" },
  telnyx_get_balance: {},
  exotel_send_sms: { to: ["+919900000001"], body: "Hello" },
  exotel_send_whatsapp: { to: ["+919900000001"], body: "Hello" },
  exotel_click_to_call: { to: ["+919900000002"][0], from_phone: "+919900000001", time_limit_seconds: 600 },
};

/** A send tool's dry run answers a verdict instead of a result: both kinds fit its output schema. */
const verdicts = [
  { dry_run: true, allowed: true, connection_id: "7c1e2f3a-0b1c-4d2e-8f3a-4b5c6d7e8f90", provider: "twilio", sender: null,
    remaining_today: 4, remaining_this_month: null },
  { dry_run: true, allowed: false, reason: "quota_exceeded", hint: "Wait until the limit resets.",
    error: { code: "quota_exceeded", message: "daily send limit reached", details: { limit: "agent_daily" } } },
];

describe("tool definitions", () => {
  it("cover every capability with a sample", () => {
    expect(allTools.map((t) => t.capability).sort()).toEqual(Object.keys(samples).sort());
  });

  for (const tool of allTools) {
    describe(tool.capability, () => {
      it("input schema compiles as JSON Schema 2020-12 and is a closed object", () => {
        const schema = inputSchema(tool);
        expect(schema.type).toBe("object");
        expect(schema.additionalProperties).toBe(false);
        expect(() => ajv.compile(schema)).not.toThrow();
      });

      it("strict schema follows every OpenAI strict-mode rule", () => {
        expect(strictViolations(strictSchema(tool))).toEqual([]);
        expect(() => ajv.compile(strictSchema(tool))).not.toThrow();
      });

      it("the sample call is valid for zod, the input schema and the strict schema (with nulls)", () => {
        const sample = samples[tool.capability];
        expect(tool.schema.safeParse(sample).success).toBe(true);
        expect(ajv.validate(inputSchema(tool), sample)).toBe(true);
        const strict = strictSchema(tool);
        const withNulls = Object.fromEntries(Object.keys(strict.properties ?? {}).map((k) => [k, sample[k] ?? null]));
        expect(ajv.validate(strict, withNulls), JSON.stringify(ajv.errors)).toBe(true);
        expect(tool.schema.safeParse(dropNulls(withNulls)).success).toBe(true);
      });

      it("output schema is JSON Schema 2020-12 with an object at the root, and not vacuous", () => {
        const schema = outputSchema(tool);
        expect(schema.type).toBe("object");
        expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).toBe(true);
        expect(ajv.validate(schema, {})).toBe(false);
        for (const verdict of verdicts) expect(ajv.validate(schema, verdict), JSON.stringify(verdict)).toBe(tool.sendsMessages);
        // The error envelope too: some MCP clients check an error result against the output schema.
        expect(ajv.validate(schema, { error: { code: "quota_exceeded", message: "limit reached", details: null } })).toBe(true);
        expect(ajv.validate(schema, { error: { code: "no_such_code", message: "?", details: null } })).toBe(false);
      });

      it("rejects unknown arguments (schemas are closed)", () => {
        const sample = { ...samples[tool.capability], surprise: 1 };
        expect(tool.schema.safeParse(sample).success).toBe(false);
        expect(ajv.validate(inputSchema(tool), sample)).toBe(false);
      });
    });
  }

  it("dynamic template data can be given as an object or as a JSON-encoded object", () => {
    const tool = toolFor("sendgrid_send_email")!;
    const base = { to: ["a@example.com"], template_id: `d-${"a".repeat(32)}` };
    const asObject = tool.schema.safeParse({ ...base, dynamic_template_data: { name: "Ada" } });
    const asString = tool.schema.safeParse({ ...base, dynamic_template_data: '{"name":"Ada"}' });
    expect(asObject.success && asString.success).toBe(true);
    expect((asString.data as any).dynamic_template_data).toEqual({ name: "Ada" });
    expect(tool.schema.safeParse({ ...base, dynamic_template_data: "[1,2]" }).success).toBe(false);
  });

  it("dropNulls removes null keys at every depth but keeps other falsy values", () => {
    expect(dropNulls({ a: null, b: 0, c: { d: null, e: "" }, f: [{ g: null, h: false }] }))
      .toEqual({ b: 0, c: { e: "" }, f: [{ h: false }] });
  });
});
