/**
 * JSON Schemas of the tools, generated from their zod schemas (the one source), plus the
 * arguments runTool handles for every tool (`account`) and every send tool
 * (`idempotency_key`, `dry_run`):
 *  - inputSchema: JSON Schema 2020-12 of what the call accepts (Anthropic, MCP);
 *  - strictSchema: the same in OpenAI strict-mode form — every object closed, every
 *    property required, optional ones nullable, unsupported keywords dropped;
 *  - outputSchema: JSON Schema 2020-12 of what a successful call answers (MCP's
 *    `outputSchema`, which its `structuredContent` conforms to).
 * The generated migration stores all three; a test fails if the database drifts from this.
 */
import { z } from "zod";
import { IDEMPOTENCY_KEY_ARGUMENT, IDEMPOTENCY_KEY_SCHEMA } from "./idempotency.ts";
import { errorEnvelope } from "./tools/results.ts";
import type { ToolDefinition } from "./tools/types.ts";

type Schema = Record<string, unknown>;

/**
 * Drops what zod writes that a reader has no use for, at every depth: a `pattern` next to a
 * `format` (e-mail addresses, uuids, date-times) only repeats the format as a regex,
 * hundreds of characters a model reads on every call; and the bounds zod gives every
 * integer (±2^53-1) when none was set. The zod schema still checks every value.
 */
function tidy(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy);
  if (!node || typeof node !== "object") return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) {
    if (key === "pattern" && typeof (node as Schema).format === "string") continue;
    if ((key === "minimum" && value === Number.MIN_SAFE_INTEGER) || (key === "maximum" && value === Number.MAX_SAFE_INTEGER)) continue;
    out[key] = tidy(value);
  }
  return out;
}

/** zod's JSON Schema of one side of a tool (its input or its output), without the `$schema` header. */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): Schema {
  const json = tidy(z.toJSONSchema(schema, { io, target: "draft-2020-12" })) as Schema;
  delete json.$schema;
  return json;
}

export function inputSchema(tool: ToolDefinition): Schema {
  const schema = jsonSchema(tool.schema, "input");
  // Every tool takes an optional account, and every send tool an optional idempotency
  // key; runTool takes them out before the tool's own (strict) schema sees the arguments.
  // (A tool the database answers alone, message_status, has no account to choose.)
  if (!tool.answer) schema.properties = { ...(schema.properties as Schema), [ACCOUNT_ARGUMENT]: { ...ACCOUNT_SCHEMA } };
  if (tool.sendsMessages) {
    schema.properties = {
      ...(schema.properties as Schema),
      [IDEMPOTENCY_KEY_ARGUMENT]: { ...IDEMPOTENCY_KEY_SCHEMA },
      [DRY_RUN_ARGUMENT]: { ...DRY_RUN_SCHEMA },
    };
  }
  return schema;
}

/**
 * What a call of the tool answers (tools/results.ts): each kind of successful result (a
 * send tool's, or its dry run's verdict), and the error envelope, which MCP clients may
 * check an error result against. `type: "object"` at the root, as MCP requires.
 */
export function outputSchema(tool: ToolDefinition): Schema {
  const success = jsonSchema(tool.output, "output");
  const results = Array.isArray(success.anyOf) && Object.keys(success).length === 1 ? success.anyOf : [success];
  return { type: "object", anyOf: [...results, jsonSchema(errorEnvelope, "output")] };
}

/** The send tools' argument that checks a call without making it. */
export const DRY_RUN_ARGUMENT = "dry_run";

/** The JSON Schema of the send tools' `dry_run` argument (generated into the tool schemas). */
export const DRY_RUN_SCHEMA = {
  type: "boolean",
  description:
    "Optional: true checks the call without making it. Every rule runs (account, rights, recipients, sender, " +
    "quota); nothing is sent, recorded or counted. The answer says whether it would be allowed, why not, and " +
    "the quota that would be left.",
} as const;

/** The tool argument naming the account (connection) a call uses, when the caller has several. */
export const ACCOUNT_ARGUMENT = "account";

/** The JSON Schema of every tool's `account` argument (generated into the tool schemas). */
export const ACCOUNT_SCHEMA = {
  type: "string",
  format: "uuid",
  description:
    "Optional: the account (connection id) to use, from the accounts this tool's description lists. " +
    "Omit it to use your only account, or your route (which tries your accounts in order).",
} as const;

/** Keywords OpenAI strict mode accepts besides structure (type, properties, items, ...). */
const STRICT_KEYWORDS = new Set([
  "type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const",
  "description", "title", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
  "multipleOf", "minItems", "maxItems", "$defs", "$ref",
]);
const STRICT_FORMATS = new Set(["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"]);

function nullable(schema: Schema): Schema {
  if (Array.isArray(schema.type)) return schema.type.includes("null") ? schema : { ...schema, type: [...schema.type, "null"] };
  if (typeof schema.type === "string") return { ...schema, type: [schema.type, "null"] };
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, { type: "null" }] };
  return { anyOf: [schema, { type: "null" }] };
}

function strictNode(node: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "format") {
      if (STRICT_FORMATS.has(String(value))) out.format = value;
    } else if (STRICT_KEYWORDS.has(key)) {
      out[key] = value;
    }
  }
  if (out.type === "object" || out.properties) {
    if (node.additionalProperties && node.additionalProperties !== false && !node.properties) {
      // A free-form map cannot be closed: strict mode takes it as a JSON-encoded string.
      return {
        type: "string",
        description: `${node.description ? `${node.description} ` : ""}(a JSON object, encoded as a string)`,
      };
    }
    const properties = (out.properties ?? {}) as Record<string, Schema>;
    const required = new Set((node.required as string[] | undefined) ?? []);
    out.properties = Object.fromEntries(Object.entries(properties).map(([name, child]) => {
      const strict = strictNode(child);
      return [name, required.has(name) ? strict : nullable(strict)];
    }));
    out.required = Object.keys(properties);
    out.additionalProperties = false;
    out.type = "object";
  }
  if (out.items && typeof out.items === "object") out.items = strictNode(out.items as Schema);
  if (Array.isArray(out.anyOf)) out.anyOf = (out.anyOf as Schema[]).map(strictNode);
  return out;
}

export function strictSchema(tool: ToolDefinition): Schema {
  return strictNode(inputSchema(tool));
}

/** Removes null-valued object keys: in the strict form a null means "not given". */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null).map(([k, v]) => [k, dropNulls(v)]),
    );
  }
  return value;
}
