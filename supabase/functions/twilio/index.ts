// Twilio SMS, MMS and WhatsApp for agents and users: sends, balance, number sync, and the
// signed status-callback and inbound-message webhooks.
// Wiring only: the rules are in SQL, the wire format in _shared.
import { providerFunction } from "../_shared/provider-function.ts";
import { twilioAdapter } from "../_shared/providers/twilio.ts";
import { adapterWebhook } from "../_shared/webhooks.ts";

Deno.serve(providerFunction({
  name: "twilio",
  provider: "twilio",
  routes: {
    "sms/send": "twilio_send_sms",
    "mms/send": "twilio_send_mms",
    "whatsapp/send": "twilio_send_whatsapp",
    "balance": "twilio_get_balance",
  },
  testConnection: (connection) => twilioAdapter.testCredentials(connection),
  listNumbers: (connection) => twilioAdapter.listNumbers!(connection),
  webhooks: {
    status: adapterWebhook("twilio", twilioAdapter, ["status"]),
    inbound: adapterWebhook("twilio", twilioAdapter, ["inbound"]),
  },
}));
