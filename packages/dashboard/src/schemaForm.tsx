/**
 * Forms generated from a provider's catalogue entry: `service_providers.config_schema`
 * (the adapter's JSON Schema, checked again by the database when stored) gives the
 * config fields, their types, allowed values, patterns and which are required;
 * `configuration_metadata.config_fields` gives their help text; `credential_fields`
 * the secrets, which are password inputs, sent once and never read back.
 */
import { NumberInput, PasswordInput, Select, Switch, Textarea, TextInput } from "@mantine/core";
import type { Json } from "./lib/supabase.ts";

export interface PropertySchema {
  type?: string;
  enum?: string[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  description?: string;
  title?: string;
  default?: unknown;
}

export interface ObjectSchema {
  type?: string;
  properties?: Record<string, PropertySchema>;
  required?: string[];
}

const WORDS: Record<string, string> = { api: "API", sid: "SID", url: "URL", id: "ID", tls: "TLS", ca: "CA", dlt: "DLT", smtp: "SMTP" };

/** api_key → "API key", account_sid → "Account SID". */
export function humanize(key: string): string {
  const words = key.split("_").map((w) => WORDS[w] ?? w);
  const first = words[0] ?? "";
  return [first.charAt(0).toUpperCase() + first.slice(1), ...words.slice(1)].join(" ");
}

export type FormValues = Record<string, string>;

export function schemaOf(json: Json | undefined): ObjectSchema {
  return json && typeof json === "object" && !Array.isArray(json) ? (json as unknown as ObjectSchema) : {};
}

function descriptionOf(metadata: Json | undefined, key: string): string | undefined {
  const fields = (metadata as { config_fields?: Record<string, string> } | null | undefined)?.config_fields;
  return fields?.[key];
}

/** Stored config → the form's strings. */
export function valuesFromConfig(schema: ObjectSchema, config: Json | undefined): FormValues {
  const out: FormValues = {};
  const cfg = (config && typeof config === "object" && !Array.isArray(config) ? config : {}) as Record<string, unknown>;
  for (const key of Object.keys(schema.properties ?? {})) {
    const v = cfg[key];
    if (v !== undefined && v !== null) out[key] = String(v);
  }
  return out;
}

/** The form's strings → config (typed per the schema; empty fields left out). */
export function configFromValues(schema: ObjectSchema, values: FormValues): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const raw = values[key];
    if (raw === undefined || raw === "") continue;
    if (prop.type === "integer" || prop.type === "number") out[key] = Number(raw);
    else if (prop.type === "boolean") out[key] = raw === "true";
    else out[key] = raw;
  }
  return out;
}

/** The schema's rules, checked before the RPC so mistakes are named per field. */
export function validateConfig(schema: ObjectSchema, values: FormValues): Record<string, string> {
  const errors: Record<string, string> = {};
  const required = new Set(schema.required ?? []);
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const raw = values[key] ?? "";
    if (raw === "") {
      if (required.has(key)) errors[key] = "Required";
      continue;
    }
    if (prop.type === "integer" || prop.type === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || (prop.type === "integer" && !Number.isInteger(n))) errors[key] = "A whole number";
      else if (prop.minimum !== undefined && n < prop.minimum) errors[key] = `At least ${prop.minimum}`;
      else if (prop.maximum !== undefined && n > prop.maximum) errors[key] = `At most ${prop.maximum}`;
      continue;
    }
    if (prop.enum && !prop.enum.includes(raw)) errors[key] = `One of ${prop.enum.join(", ")}`;
    else if (prop.maxLength !== undefined && raw.length > prop.maxLength) errors[key] = `At most ${prop.maxLength} characters`;
    else if (prop.minLength !== undefined && raw.length < prop.minLength) errors[key] = `At least ${prop.minLength} characters`;
    else if (prop.pattern) {
      try {
        if (!new RegExp(prop.pattern).test(raw)) errors[key] = "Not in the expected form";
      } catch {
        // a pattern this browser cannot compile: the database checks it
      }
    }
  }
  return errors;
}

export function ConfigFields({
  schema,
  metadata,
  values,
  errors,
  onChange,
  idPrefix,
}: {
  schema: ObjectSchema;
  metadata?: Json;
  values: FormValues;
  errors: Record<string, string>;
  onChange: (key: string, value: string) => void;
  idPrefix: string;
}) {
  const required = new Set(schema.required ?? []);
  const entries = Object.entries(schema.properties ?? {}).sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  return (
    <>
      {entries.map(([key, prop]) => {
        const common = {
          id: `${idPrefix}-${key}`,
          label: prop.title ?? humanize(key),
          description: prop.description ?? descriptionOf(metadata, key),
          required: required.has(key),
          error: errors[key],
        };
        if (prop.enum) {
          return (
            <Select
              key={key}
              {...common}
              data={prop.enum}
              value={values[key] ?? null}
              onChange={(v) => onChange(key, v ?? "")}
              clearable={!required.has(key)}
              placeholder={required.has(key) ? undefined : "(default)"}
            />
          );
        }
        if (prop.type === "integer" || prop.type === "number") {
          return (
            <NumberInput
              key={key}
              {...common}
              min={prop.minimum}
              max={prop.maximum}
              allowDecimal={prop.type === "number"}
              value={values[key] ?? ""}
              onChange={(v) => onChange(key, v === "" ? "" : String(v))}
            />
          );
        }
        if (prop.type === "boolean") {
          return (
            <Switch key={key} {...common} checked={values[key] === "true"} onChange={(e) => onChange(key, e.currentTarget.checked ? "true" : "")} />
          );
        }
        if ((prop.maxLength ?? 0) > 10_000) {
          return <Textarea key={key} {...common} autosize minRows={2} maxRows={8} value={values[key] ?? ""} onChange={(e) => onChange(key, e.currentTarget.value)} />;
        }
        return (
          <TextInput
            key={key}
            {...common}
            type={prop.format === "email" ? "email" : "text"}
            maxLength={prop.maxLength}
            value={values[key] ?? ""}
            onChange={(e) => onChange(key, e.currentTarget.value)}
            autoComplete="off"
          />
        );
      })}
    </>
  );
}

/** One password input per credential field: typed once, sent, cleared. */
export function CredentialFields({
  fields,
  values,
  onChange,
  idPrefix,
}: {
  fields: string[];
  values: FormValues;
  onChange: (key: string, value: string) => void;
  idPrefix: string;
}) {
  return (
    <>
      {fields.map((key) => (
        <PasswordInput
          key={key}
          id={`${idPrefix}-${key}`}
          label={humanize(key)}
          required
          autoComplete="new-password"
          value={values[key] ?? ""}
          onChange={(e) => onChange(key, e.currentTarget.value)}
        />
      ))}
    </>
  );
}
