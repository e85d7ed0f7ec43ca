/**
 * ---- Section - Reference data ----
 * The providers and their capabilities. Input schemas are set by the generated
 * migration that follows (from the functions' zod schemas).
 */
insert into public.service_providers (name, display_name, auth_type, scopes_supported, credential_fields,
                                      required_config_fields, configuration_metadata)
values
    ('clicksend_sms', 'ClickSend SMS/MMS', 'basic_auth', array['sms', 'mms', 'balance', 'history'],
     array['username', 'api_key'], array[]::text[],
     '{"api_base_url": "https://rest.clicksend.com/v3", "auth_header_format": "Basic base64(username:api_key)",
       "config_fields": {"base_url": "API base URL (default https://rest.clicksend.com/v3)", "sender_id": "default sender id or number"},
       "max_recipients_per_request": 1000, "delivery_receipts": true, "inbound_messages": true}'),
    ('smtp', 'SMTP mail', 'smtp_password', array['email'],
     array['username', 'password'], array['host', 'port', 'security', 'from_email'],
     '{"config_fields": {"host": "SMTP server host", "port": "465 (implicit TLS) or 2525; 25 and 587 are blocked on hosted Supabase",
       "security": "tls (implicit) or starttls (required)", "from_email": "sender address", "from_name": "sender name",
       "tls_ca": "extra CA certificate (PEM) for self-hosted relays"}}'),
    ('sendgrid', 'SendGrid mail', 'api_key', array['email'],
     array['api_key'], array['from_email'],
     '{"api_base_url": "https://api.sendgrid.com", "auth_header_format": "Bearer api_key",
       "config_fields": {"base_url": "https://api.sendgrid.com or https://api.eu.sendgrid.com", "from_email": "verified sender",
       "from_name": "sender name", "webhook_public_key": "Event Webhook verification key (base64 SPKI)"}, "event_webhook": true}');

insert into public.integration_capabilities (provider_id, capability_key, display_label, description, required_scope,
                                             is_read_only, is_destructive, sends_messages, display_order)
select p.id, c.capability_key, c.display_label, c.description, c.required_scope, c.is_read_only, c.is_destructive,
       c.sends_messages, c.display_order
from (values
    ('clicksend_sms', 'clicksend_send_sms', 'Send SMS',
     'Send an SMS text message to one or more phone numbers (international format, e.g. +61411111111).',
     'sms', false, false, true, 1),
    ('clicksend_sms', 'clicksend_send_mms', 'Send MMS',
     'Send an MMS (image plus text, subject up to 20 characters) to one or more phone numbers.',
     'mms', false, false, true, 2),
    ('clicksend_sms', 'clicksend_get_balance', 'Check balance',
     'Get the SMS account balance and currency.',
     'balance', true, false, false, 3),
    ('clicksend_sms', 'clicksend_get_sms_history', 'SMS history',
     'List sent and received SMS messages, newest first, page by page.',
     'history', true, false, false, 4),
    ('clicksend_sms', 'clicksend_get_mms_history', 'MMS history',
     'List sent MMS messages page by page.',
     'history', true, false, false, 5),
    ('smtp', 'smtp_send_email', 'Send e-mail (SMTP)',
     'Send an e-mail (text and/or HTML, cc, bcc, attachments) from the connected mailbox.',
     'email', false, false, true, 1),
    ('sendgrid', 'sendgrid_send_email', 'Send e-mail (SendGrid)',
     'Send an e-mail through SendGrid, with content or a dynamic template.',
     'email', false, false, true, 1)
) as c (provider, capability_key, display_label, description, required_scope, is_read_only, is_destructive,
        sends_messages, display_order)
join public.service_providers p on p.name = c.provider;
