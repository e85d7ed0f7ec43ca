/**
 * Connection config is input: create_connection and update_connection refuse (22023, a
 * 400 through PostgREST) every stored value the functions would refuse before use:
 *  - a CR or LF in anything that becomes a header or an SMTP command (sender id, from
 *    name and address, reply-to, host, TLS server name, base URL);
 *  - an address that is not an e-mail address, a ClickSend sender id that is neither an
 *    E.164 number nor 3-11 letters/digits;
 *  - a base URL with credentials, a query, a non-http(s) scheme or a non-canonical host;
 *  - an SMTP host that is not a host name or a canonical IP address (`0x7f.1`,
 *    `2130706433`, `012.0.0.1` are IPv4 spellings resolvers read differently).
 * The values stored beside a connection are input the same way: a sender identity's
 * address and name become the From header, a phone number the sender of an SMS.
 * What the local stack and real deployments store keeps working.
 */
begin;
set local search_path = extensions, public;
select plan(70);

select from tests.seed_world();
select tests.authenticate_as('user_a');

-- A valid config per provider; each case below changes one field of it.
create temporary table bad_values (provider text, field text, value jsonb, why text) on commit drop;
insert into bad_values values
    ('clicksend_sms', 'sender_id', to_jsonb(E'Acme\r\nX-Evil: 1'::text), 'a CR/LF in the sender id'),
    ('clicksend_sms', 'sender_id', to_jsonb(E'Acme\n'::text), 'a bare LF in the sender id'),
    ('clicksend_sms', 'sender_id', '"has spaces"', 'a sender id with spaces'),
    ('clicksend_sms', 'sender_id', '"AB"', 'a sender id shorter than 3 characters'),
    ('clicksend_sms', 'sender_id', '"TwelveChars1"', 'an alphanumeric sender id longer than 11 characters'),
    ('clicksend_sms', 'sender_id', '"+0412345678"', 'a number that is not E.164'),
    ('clicksend_sms', 'sender_id', '12345', 'a sender id that is not a string'),
    ('clicksend_sms', 'base_url', '"https://user:pw@rest.clicksend.com/v3"', 'a base URL with credentials'),
    ('clicksend_sms', 'base_url', '"https://rest.clicksend.com/v3?debug=1"', 'a base URL with a query'),
    ('clicksend_sms', 'base_url', '"https://rest.clicksend.com/v3#x"', 'a base URL with a fragment'),
    ('clicksend_sms', 'base_url', '"ftp://rest.clicksend.com/v3"', 'a base URL that is not http(s)'),
    ('clicksend_sms', 'base_url', '"rest.clicksend.com/v3"', 'a base URL that is not absolute'),
    ('clicksend_sms', 'base_url', '"https://0x7f.1/v3"', 'a base URL with a hex IPv4 host'),
    ('clicksend_sms', 'base_url', '"https://2130706433/v3"', 'a base URL with a decimal IPv4 host'),
    ('clicksend_sms', 'base_url', '"https://012.0.0.1/v3"', 'a base URL with an octal IPv4 host'),
    ('clicksend_sms', 'base_url', to_jsonb(E'https://rest.clicksend.com/v3\r\nX-Evil: 1'::text), 'a base URL with CR/LF'),
    ('sendgrid', 'from_name', to_jsonb(E'Agent\r\nBcc: evil@attacker.test'::text), 'a CR/LF in the from name'),
    ('sendgrid', 'from_name', to_jsonb(E'Agent\nX-Evil: 1'::text), 'a bare LF in the from name'),
    ('sendgrid', 'from_name', '"Doe, Jane"', 'a from name with a comma (splits address lists)'),
    ('sendgrid', 'from_name', '"Doe; Jane"', 'a from name with a semicolon'),
    ('sendgrid', 'from_email', '"not-an-address"', 'a from address that is not an address'),
    ('sendgrid', 'from_email', to_jsonb(E'agent@example.com\r\nX-Evil: 1'::text), 'a CR/LF in the from address'),
    ('sendgrid', 'reply_to', '"nobody"', 'a reply-to that is not an address'),
    ('sendgrid', 'base_url', '"https://api.sendgrid.com/?x=1"', 'a SendGrid base URL with a query'),
    ('smtp', 'host', '"0x7f.1"', 'a hex/shortened IPv4 host'),
    ('smtp', 'host', '"2130706433"', 'a decimal IPv4 host'),
    ('smtp', 'host', '"012.0.0.1"', 'an octal IPv4 host (10.0.0.1 to the resolver)'),
    ('smtp', 'host', '"127.1"', 'a shortened IPv4 host'),
    ('smtp', 'host', '"017700000001"', 'an octal 32-bit IPv4 host'),
    ('smtp', 'host', '"[::1]"', 'an IPv6 host in brackets'),
    ('smtp', 'host', '"smtp.example.com:465"', 'a host with a port'),
    ('smtp', 'host', '"user@smtp.example.com"', 'a host with a user part'),
    ('smtp', 'host', to_jsonb(E'smtp.example.com\r\nRCPT TO:<evil@attacker.test>'::text), 'a CR/LF in the host'),
    ('smtp', 'tls_servername', to_jsonb(E'mail.example.com\r\n'::text), 'a CR/LF in the TLS server name'),
    ('smtp', 'tls_servername', '"127.0.0.1"', 'an IP address as TLS server name'),
    ('smtp', 'from_email', '"agent"', 'an SMTP from address that is not an address'),
    ('smtp', 'from_name', to_jsonb(E'Agent\r\nBcc: evil@attacker.test'::text), 'a CR/LF in the SMTP from name'),
    ('smtp', 'port', '465.5', 'a fractional port'),
    ('smtp', 'tls_ca', '"not a certificate"', 'a tls_ca that is not PEM');

create function pg_temp.valid_config(p_provider text) returns jsonb
language sql immutable
as $$
    select case p_provider
        when 'clicksend_sms' then '{}'::jsonb
        when 'sendgrid' then '{"from_email": "agent@example.test"}'::jsonb
        else '{"host": "smtp.example.test", "port": 465, "security": "tls", "from_email": "agent@example.test"}'::jsonb
    end
$$;

create function pg_temp.credentials(p_provider text) returns jsonb
language sql immutable
as $$
    select case p_provider
        when 'clicksend_sms' then '{"username": "u", "api_key": "k"}'::jsonb
        when 'sendgrid' then '{"api_key": "SG.k"}'::jsonb
        else '{"username": "u", "password": "p"}'::jsonb
    end
$$;

-- ---- create_connection refuses every bad value ------------------------------------------------------------
select throws_ok(
    format('select public.create_connection(%L, %L, %L::jsonb, %L::jsonb)', provider, 'bad ' || field, pg_temp.credentials(provider),
           pg_temp.valid_config(provider) || jsonb_build_object(field, value)),
    '22023', null, format('create_connection (%s) refuses %s', provider, why))
from bad_values;

-- ---- update_connection refuses them too ----------------------------------------------------------------------
select throws_ok(
    format('select public.update_connection(%L, %L::jsonb)', tests.world('a_smtp'),
           jsonb_build_object('config', pg_temp.valid_config('smtp') || jsonb_build_object('host', host))),
    '22023', null, format('update_connection refuses the SMTP host %s', to_jsonb(host)))
from unnest(array['0x7f.1', '2130706433', '012.0.0.1', E'smtp.example.test\r\nX-Evil: 1']) host;
select throws_ok(
    format('select public.update_connection(%L, %L::jsonb)', tests.world('a_clicksend'),
           jsonb_build_object('config', jsonb_build_object('sender_id', E'Acme\r\nX-Evil: 1'))),
    '22023', null, 'update_connection refuses a CR/LF in the ClickSend sender id');
select is((select config ->> 'host' from public.connections where id = tests.world('a_smtp')::uuid), 'smtp.example.test',
    '... and the stored config is unchanged');

-- ---- What the local stack and real deployments store keeps working --------------------------------------------
select lives_ok(
    format('select public.create_connection(%L, %L, %L::jsonb, %L::jsonb)', provider, 'good ' || n, pg_temp.credentials(provider),
           pg_temp.valid_config(provider) || config),
    format('create_connection (%s) accepts %s', provider, why))
from (values
    (1, 'clicksend_sms', '{"base_url": "https://rest.clicksend.com/v3", "sender_id": "+61411111111"}'::jsonb, 'the official base URL and an E.164 sender id'),
    (2, 'clicksend_sms', '{"base_url": "http://127.0.0.1:54330/v3", "sender_id": "Switchboard"}', 'the local fake''s base URL and a tag'),
    (3, 'clicksend_sms', '{"base_url": "", "sender_id": null}', 'empty and null optional fields (not set)'),
    (4, 'sendgrid', '{"base_url": "https://api.eu.sendgrid.com", "from_name": "Demo Assistant", "reply_to": "replies@example.test"}', 'a display name and a reply-to'),
    (5, 'smtp', '{"host": "127.0.0.1", "tls_servername": "localhost", "from_name": "Switchboard Agent"}', 'an IPv4 host with a TLS server name'),
    (6, 'smtp', '{"host": "::1", "port": 2525, "security": "starttls"}', 'an IPv6 host'),
    (7, 'smtp', jsonb_build_object('tls_ca', E'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'), 'a PEM certificate (its line breaks are its format)')
) as t(n, provider, config, why);

-- ---- Sender identities and numbers --------------------------------------------------------------------------
select throws_ok(format('select public.add_sender_identity(%L, %L, %L)', tests.world('a_smtp'), 'agent2@example.test', name),
    '22023', null, format('add_sender_identity refuses the name %s', to_jsonb(name)))
from unnest(array[E'Agent\r\nBcc: evil@attacker.test', E'Agent\nX-Evil: 1', 'Doe, Jane', 'Doe; Jane', repeat('x', 257)]) name;
select throws_ok(format('select public.add_sender_identity(%L, %L)', tests.world('a_smtp'), email),
    '22023', null, format('add_sender_identity refuses the address %s', to_jsonb(email)))
from unnest(array['not-an-address', E'agent@example.test\r\nBcc: evil@attacker.test']) email;
select throws_ok(format('select public.update_sender_identity(%L, %L::jsonb)', tests.world('a_identity'),
                        jsonb_build_object('name', E'A\r\nBcc: evil@attacker.test')),
    '22023', null, 'update_sender_identity refuses a CR/LF in the name');
select throws_ok(format('select public.add_sender_identity(%L, %L)', tests.world('a_clicksend'), 'sms@example.test'),
    '22023', 'sender identities belong to mail connections', 'a sender identity goes on a mail connection only');
select throws_ok(format('select public.add_phone_number(%L, %L)', tests.world('a_clicksend'), e164),
    '22023', null, format('add_phone_number refuses %s (not E.164)', to_jsonb(e164)))
from unnest(array['0412345678', '+0412345678', '+61 412 345 678', E'+61412345678\n', '+1234567890123456']) e164;
select throws_ok(format('select public.update_phone_number(%L, %L::jsonb)', tests.world('a_number'), '{"capabilities": ["sms", "fax"]}'),
    '22023', null, 'update_phone_number refuses a capability that is not sms, mms, voice or whatsapp');
select results_eq(format('select e164, capabilities from public.phone_numbers where id = %L', tests.world('a_number')),
    $$ values ('+61400000111'::text, '{sms,mms}'::text[]) $$, '... and the stored number is unchanged');
select results_eq(format('select name from public.sender_identities where id = %L', tests.world('a_identity')),
    $$ values ('A sender'::text) $$, '... as is the stored identity');
select lives_ok(format('select public.add_sender_identity(%L, %L, %L)', tests.world('a_smtp'), 'Support@Example.test', 'Support Team'),
    'a plain display name and a mixed-case address are accepted (the address is stored lower-case)');

select * from finish();
rollback;
