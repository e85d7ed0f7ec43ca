/** Test support: OpenAI strict-mode rules (Structured Outputs subset), checked independently of the code that produces them. */
type Schema = Record<string, any>;

const ALLOWED_KEYWORDS = new Set(["type", "properties", "required", "additionalProperties", "items", "anyOf", "enum",
  "const", "description", "title", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
  "multipleOf", "minItems", "maxItems", "$defs", "$ref"]);

/** Every violation of OpenAI's strict-mode rules in a schema (empty when valid). */
export function strictViolations(schema: Schema, path = "$"): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(schema)) if (!ALLOWED_KEYWORDS.has(key)) problems.push(`${path}: unsupported keyword ${key}`);
  const isObject = schema.type === "object" || (Array.isArray(schema.type) && schema.type.includes("object"));
  if (isObject) {
    if (schema.additionalProperties !== false) problems.push(`${path}: object not closed`);
    const required = new Set(schema.required ?? []);
    for (const key of Object.keys(schema.properties ?? {})) if (!required.has(key)) problems.push(`${path}.${key}: not required`);
    for (const [key, child] of Object.entries(schema.properties ?? {})) problems.push(...strictViolations(child as Schema, `${path}.${key}`));
  }
  if (schema.items) problems.push(...strictViolations(schema.items, `${path}[]`));
  for (const [i, branch] of (schema.anyOf ?? []).entries()) problems.push(...strictViolations(branch, `${path}|${i}`));
  return problems;
}
