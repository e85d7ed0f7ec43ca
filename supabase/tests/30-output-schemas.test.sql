/**
 * Output schemas (integration_capabilities.output_schema): every capability has one, an
 * object at the root as MCP requires, kept as json for the listings; a send tool's covers
 * its dry run's verdict, and every one admits the error envelope. private.agent_tools lists
 * it as `outputSchema` (mcp) and `output_schema` (raw), never in the OpenAI or Anthropic shapes.
 */
begin;
set local search_path = extensions, public;
select plan(17);

-- ---- The columns ----------------------------------------------------------------
select has_column('public', 'integration_capabilities', 'output_schema', 'integration_capabilities has output_schema');
select col_type_is('public', 'integration_capabilities', 'output_schema', 'jsonb', 'output_schema is jsonb');
select col_not_null('public', 'integration_capabilities', 'output_schema', 'output_schema is not null');
select col_type_is('public', 'integration_capabilities', 'output_schema_json', 'json', 'output_schema_json is json');
select col_not_null('public', 'integration_capabilities', 'output_schema_json', 'output_schema_json is not null');
select is((select attgenerated::text from pg_attribute
           where attrelid = 'public.integration_capabilities'::regclass and attname = 'output_schema_json'), 's',
          'output_schema_json is generated from output_schema (stored)');

-- ---- Every row ------------------------------------------------------------------
select is_empty($$
    select capability_key from public.integration_capabilities
    where output_schema is null or output_schema_json is null
       or jsonb_typeof(output_schema) <> 'object' or output_schema ->> 'type' is distinct from 'object'
       or output_schema_json::jsonb <> output_schema
$$, 'every capability has an output schema, an object at the root, and the same as json');
select is_empty($$
    select capability_key from public.integration_capabilities where output_schema = '{"type": "object"}'
$$, 'every capability has its generated schema, not the column default');
select is_empty($$
    select capability_key from public.integration_capabilities
    where sends_messages and (jsonb_array_length(output_schema -> 'anyOf') <> 5
       or not output_schema -> 'anyOf' @> '[{"properties": {"dry_run": {"const": true}, "allowed": {"const": true}}},
                                            {"properties": {"dry_run": {"const": true}, "allowed": {"const": false}}}]')
$$, 'a send tool answers its result (live or reconciled), its dry run''s verdict (allowed or refused), or the error envelope');
select is_empty($$
    select capability_key from public.integration_capabilities
    where not output_schema -> 'anyOf' @> '[{"required": ["error"], "additionalProperties": false}]'
$$, 'every output schema admits the error envelope (clients may check an error result against it)');
select is((select output_schema #>> '{anyOf,0,properties,operations,type}' from public.integration_capabilities
           where capability_key = 'message_status'), 'array', 'message_status answers {operations: [...]}');

select throws_ok($$ update public.integration_capabilities set output_schema = '{"type": "array"}' where capability_key = 'sms_send' $$,
    '23514', null, 'an output schema whose root is not an object is refused');
select throws_ok($$ update public.integration_capabilities set output_schema = '[]' where capability_key = 'sms_send' $$,
    '23514', null, 'an output schema that is not an object is refused');

-- ---- Listings -------------------------------------------------------------------
select from tests.seed_team();
select tests.remember('o30_' || f, private.agent_tools(tests.world('t_agent')::uuid, f)::jsonb)
from unnest(array['raw', 'openai', 'anthropic', 'mcp']) f;

select results_eq($$
    select t ->> 'name', t -> 'outputSchema' from jsonb_array_elements(tests.recall('o30_mcp')) t order by 1
$$, $$
    select t ->> 'name', c.output_schema from jsonb_array_elements(tests.recall('o30_raw')) t
    join public.integration_capabilities c on c.capability_key = t ->> 'capability' order by 1
$$, 'mcp: every tool carries its capability''s outputSchema');
select results_eq($$
    select t ->> 'name', t -> 'output_schema' from jsonb_array_elements(tests.recall('o30_raw')) t order by 1
$$, $$
    select t ->> 'name', c.output_schema from jsonb_array_elements(tests.recall('o30_raw')) t
    join public.integration_capabilities c on c.capability_key = t ->> 'capability' order by 1
$$, 'raw: every tool carries its output_schema');
select is((select count(*)::int from jsonb_array_elements(tests.recall('o30_mcp'))), 3,
          'the listed agent has three tools (sms_send, clicksend_get_balance, message_status)');
select is_empty($$
    select t from jsonb_array_elements(tests.recall('o30_openai') || tests.recall('o30_anthropic')) t
    where t::text like '%utputSchema%' or t::text like '%output_schema%'
$$, 'openai and anthropic tools carry no output schema (they have no field for one)');

select * from finish();
rollback;
