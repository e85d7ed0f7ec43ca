/**
 * Drift check: the tool definitions the database serves to agents are exactly the
 * schemas the functions validate calls with (both generated from zod).
 */
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { inputSchema, outputSchema, strictSchema } from "../../supabase/functions/_shared/tool-schemas.ts";
import { allTools } from "../../supabase/functions/_shared/tools/index.ts";

const sql = postgres(process.env.SWITCHBOARD_TEST_DB_URL ?? "postgres://postgres@127.0.0.1:5432/switchboard_test", {
  max: 1,
  onnotice: () => {},
});
afterAll(() => sql.end());

describe("capabilities in the database", () => {
  it("are exactly the tools the functions implement", async () => {
    const rows = await sql<{ capability_key: string }[]>`select capability_key from public.integration_capabilities order by 1`;
    expect(rows.map((r) => r.capability_key)).toEqual(allTools.map((t) => t.capability).sort());
  });

  it("every one has an output schema with an object at the root (MCP outputSchema)", async () => {
    const rows = await sql<{ capability_key: string; root: string | null }[]>`
      select capability_key, output_schema_json ->> 'type' as root from public.integration_capabilities order by 1`;
    expect(rows.filter((r) => r.root !== "object").map((r) => r.capability_key)).toEqual([]);
  });

  for (const tool of allTools) {
    it(`${tool.capability}: input, strict and output schemas match the zod schemas`, async () => {
      const [row] = await sql<{
        input_schema: unknown; strict_input_schema: unknown; output_schema: unknown; provider: string | null; channel: string | null;
      }[]>`
        select c.input_schema, c.strict_input_schema, c.output_schema, p.name as provider, c.channel
        from public.integration_capabilities c left join public.service_providers p on p.id = c.provider_id
        where c.capability_key = ${tool.capability}`;
      expect(row.input_schema).toEqual(inputSchema(tool));
      expect(row.strict_input_schema).toEqual(strictSchema(tool));
      expect(row.output_schema).toEqual(outputSchema(tool));
      // A provider's tool names its provider; a channel tool its channel and no provider.
      expect({ provider: row.provider, channel: row.channel }).toEqual({ provider: tool.provider ?? null, channel: tool.channel ?? null });
    });
  }
});
