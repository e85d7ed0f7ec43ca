/**
 * Credentials are input too: create_connection and rotate_connection_credentials refuse
 * (22023, a 400 through PostgREST) a line break in any credential that becomes a header
 * or an SMTP command, by the same rule the functions apply before use, and never echo the
 * value. The SMTP password, sent base64-encoded in AUTH, may hold any character.
 */
begin;
set local search_path = extensions, public;
select plan(10);

select from tests.seed_world();
select tests.authenticate_as('user_a');

select throws_ok($$select public.create_connection('clicksend_sms', 'crlf user',
        jsonb_build_object('username', E'me\r\nX-Evil: 1', 'api_key', 'k'))$$,
    '22023', 'credential field "username" must not contain line breaks (CR/LF)',
    'create: a CR/LF in the ClickSend username (Basic auth header) is refused, naming the field only');
select throws_ok($$select public.create_connection('clicksend_sms', 'lf key',
        jsonb_build_object('username', 'me', 'api_key', E'key\n'))$$,
    '22023', 'credential field "api_key" must not contain line breaks (CR/LF)', 'create: a bare LF in the ClickSend API key is refused');
select throws_ok($$select public.create_connection('sendgrid', 'cr key',
        jsonb_build_object('api_key', E'SG.x\rY'), '{"from_email": "a@example.com"}')$$,
    '22023', 'credential field "api_key" must not contain line breaks (CR/LF)', 'create: a bare CR in the SendGrid key (Bearer header) is refused');
select throws_ok(format($$select public.create_connection('smtp', 'crlf smtp user',
        jsonb_build_object('username', E'me\r\nRCPT TO:<x@example.com>', 'password', 'p'), %L)$$,
        '{"host": "smtp.example.com", "port": 465, "security": "tls", "from_email": "a@example.com"}'),
    '22023', 'credential field "username" must not contain line breaks (CR/LF)', 'create: a CR/LF in the SMTP username (AUTH command) is refused');
select lives_ok(format($$select public.create_connection('smtp', 'odd password',
        jsonb_build_object('username', 'me', 'password', E'pa\nss'), %L)$$,
        '{"host": "smtp.example.com", "port": 465, "security": "tls", "from_email": "a@example.com"}'),
    'the SMTP password may hold a line break (AUTH sends it base64-encoded)');

select throws_ok(format($$select public.rotate_connection_credentials(%L, jsonb_build_object('username', 'me', 'api_key', E'new\r\nkey'))$$,
        tests.world('a_clicksend')),
    '22023', 'credential field "api_key" must not contain line breaks (CR/LF)', 'rotate: a CR/LF in the new key is refused');
select lives_ok(format($$select public.rotate_connection_credentials(%L, '{"username": "me", "api_key": "fresh-key"}')$$,
        tests.world('a_clicksend')),
    'rotate: clean credentials are still accepted');

select throws_ok($$select public.create_connection('clicksend_sms', 'missing', '{"username": "me"}')$$,
    '22023', 'credential field "api_key" is required (a non-empty string)', 'the earlier rules still hold: a missing field');
select throws_ok($$select public.create_connection('clicksend_sms', 'extra', '{"username": "me", "api_key": "k", "token": "t"}')$$,
    '22023', null, '... and an unknown field');
select is((select count(*)::int from public.connections where name in ('crlf user', 'lf key', 'cr key', 'crlf smtp user')), 0,
    'no refused connection was stored');

select * from finish();
rollback;
