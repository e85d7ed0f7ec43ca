/**
 * A tool is one capability (integration_capabilities.capability_key) made callable.
 * Its zod schema is the single source of truth for the tool's input: the JSON Schema
 * stored in the database (and shown to agents) is generated from it, and a test fails
 * if the two ever drift.
 */
import type { z } from "zod";
import type { NetworkPolicy } from "../net/guard.ts";
import type { Channel } from "../providers/adapter.ts";
import type { CallOptions, ReadResult, SendResult } from "../providers/types.ts";

/**
 * The deployment's rules for destinations users control (allowPrivateNetworks,
 * allowCustomProviderHosts, blockedSmtpPorts); defined with the network guard.
 */
export type { NetworkPolicy };

export type ProviderName = "clicksend_sms" | "smtp" | "sendgrid" | "twilio" | "telnyx" | "exotel";

export interface ToolContext {
  /** Decrypted credentials from Vault, exactly as stored for the connection. */
  credentials: Record<string, string>;
  /** The connection's non-secret config (from address, host, port, base_url, ...). */
  config: Record<string, unknown>;
  /** Our operation id, sent to the provider for correlation (custom_string / custom_args). */
  operationId: string;
  /** Required: every adapter is built with it, so no route can forget the network guard. */
  network: NetworkPolicy;
  /**
   * The number the message goes out from, as the database resolved it from the tool's
   * `from` (a number the member may use, or their default, or the connection's); null
   * to let the provider use the connection's own default.
   */
  sender?: string | null;
  /** The provider of the account the call runs on (how a channel tool sends). */
  provider?: ProviderName;
  /** Where the provider should report this send's status (the connection's webhook), when it takes one per send. */
  statusCallbackUrl?: string;
  options?: CallOptions;
}

export interface ToolDefinition<Schema extends z.ZodType = z.ZodType> {
  /** Capability key, e.g. "clicksend_send_sms". */
  capability: string;
  /** The provider whose API the tool calls; a channel tool has none (the account decides). */
  provider?: ProviderName;
  /** A channel tool's channel. */
  channel?: Channel;
  /**
   * True for tools that send messages (integration_capabilities.sends_messages): their
   * recipients are checked and counted, and they take an optional `idempotency_key` argument.
   */
  sendsMessages: boolean;
  /** Input schema. May normalise (e.g. phone numbers to E.164) via transforms. */
  schema: Schema;
  /**
   * What a successful call answers (runTool's result; MCP's structuredContent), the source
   * of the tool's output schema: a send tool's covers its dry-run verdict too (./results.ts).
   */
  output: z.ZodType;
  /**
   * Normalised recipients (E.164 numbers, lower-case e-mail addresses) that the
   * database checks against allowed/blocked patterns and the per-message limit.
   * Empty for read-only tools.
   */
  recipients(args: z.output<Schema>): string[];
  /** The sender the caller named (`from`), checked against the member's numbers before the call. */
  sender?(args: z.output<Schema>): string | undefined;
  /** Redacted request summary stored on the operation row: no bodies of secrets, no attachment content. */
  summarize(args: z.output<Schema>): Record<string, unknown>;
  /**
   * For a tool the database answers alone (message_status): runs instead of begin, the
   * provider and finish, with the caller's identity and the service's SQL.
   */
  answer?(
    caller: { user: string | null; agent: string | null; keyHash: string | null },
    args: z.output<Schema>,
    sql: import("postgres").Sql,
  ): Promise<Record<string, unknown>>;
  /** Calls the provider. Throws ProviderError on failure. */
  execute(ctx: ToolContext, args: z.output<Schema>): Promise<SendResult | ReadResult>;
}
