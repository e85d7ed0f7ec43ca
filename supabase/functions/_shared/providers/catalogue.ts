/**
 * The provider catalogue: what each provider is, as data (Nango's providers catalogue
 * shape). Its config schemas are the adapters' own zod schemas: `npm run gen:schemas`
 * writes them to service_providers.config_schema, where private.validate_config checks a
 * connection's config when it is stored, and the docs' provider tables are generated from
 * the same entries (`npm run gen:schemas` also checks docs/providers.md is current).
 */
import { z } from "zod";
import type { Channel } from "./adapter.ts";
import { clickSendConfigSchema } from "./clicksend.ts";
import { exotelConfigSchema } from "./exotel.ts";
import { sendGridConfigSchema } from "./sendgrid.ts";
import { smtpConfigSchema } from "./smtp.ts";
import { telnyxConfigSchema } from "./telnyx.ts";
import { twilioConfigSchema } from "./twilio.ts";

export interface ProviderEntry {
  /** service_providers.name */
  name: string;
  displayName: string;
  authType: "basic_auth" | "api_key" | "smtp_password";
  channels: readonly Channel[];
  /** Secret fields, stored only in Vault. */
  credentialFields: readonly string[];
  /** The connection config (non-secret), as the adapter parses it. */
  configSchema: z.ZodType;
  /** The edge function and the webhook kinds it receives: /<function>/webhooks/<token>/<kind>. */
  functionName: string;
  webhookKinds: readonly string[];
  /** How webhooks are authenticated beyond the URL token. */
  webhookSignature: string;
}

export const PROVIDERS: readonly ProviderEntry[] = [
  {
    name: "clicksend_sms", displayName: "ClickSend SMS/MMS", authType: "basic_auth", channels: ["sms", "mms"],
    credentialFields: ["username", "api_key"], configSchema: clickSendConfigSchema,
    functionName: "clicksend", webhookKinds: ["receipts", "inbound"], webhookSignature: "none (URL token only)",
  },
  {
    name: "smtp", displayName: "SMTP mail", authType: "smtp_password", channels: ["email"],
    credentialFields: ["username", "password"], configSchema: smtpConfigSchema,
    functionName: "smtp", webhookKinds: [], webhookSignature: "—",
  },
  {
    name: "sendgrid", displayName: "SendGrid mail", authType: "api_key", channels: ["email"],
    credentialFields: ["api_key"], configSchema: sendGridConfigSchema,
    functionName: "sendgrid", webhookKinds: ["events"], webhookSignature: "ECDSA (config.webhook_public_key)",
  },
  {
    name: "twilio", displayName: "Twilio", authType: "basic_auth", channels: ["sms", "mms", "whatsapp"],
    credentialFields: ["account_sid", "auth_token"], configSchema: twilioConfigSchema,
    functionName: "twilio", webhookKinds: ["status", "inbound"], webhookSignature: "X-Twilio-Signature (HMAC-SHA1 with the auth token)",
  },
  {
    name: "telnyx", displayName: "Telnyx", authType: "api_key", channels: ["sms", "mms"],
    credentialFields: ["api_key"], configSchema: telnyxConfigSchema,
    functionName: "telnyx", webhookKinds: ["events"], webhookSignature: "Ed25519 (config.webhook_public_key)",
  },
  {
    name: "exotel", displayName: "Exotel", authType: "basic_auth", channels: ["sms", "whatsapp", "voice"],
    credentialFields: ["api_key", "api_token"], configSchema: exotelConfigSchema,
    functionName: "exotel", webhookKinds: ["status", "whatsapp"], webhookSignature: "none (URL token only; Exotel does not sign)",
  },
];

type Schema = Record<string, unknown>;

/**
 * A provider's config schema as JSON Schema, in the subset private.validate_config_schema
 * reads: per property its type, enum, lengths, range and pattern, and the required list.
 */
export function configJsonSchema(entry: ProviderEntry): Schema {
  const schema = z.toJSONSchema(entry.configSchema, { io: "input", target: "draft-2020-12", unrepresentable: "any" }) as Schema;
  delete schema.$schema;
  return schema;
}
