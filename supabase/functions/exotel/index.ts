// Exotel SMS, WhatsApp and click-to-call for agents and users: sends, calls, number sync,
// and the status callbacks (Exotel does not sign them: the URL token authenticates).
// Wiring only: the rules are in SQL, the wire format in _shared.
import { providerFunction } from "../_shared/provider-function.ts";
import { exotelAdapter } from "../_shared/providers/exotel.ts";
import { adapterWebhook } from "../_shared/webhooks.ts";

Deno.serve(providerFunction({
  name: "exotel",
  provider: "exotel",
  routes: {
    "sms/send": "exotel_send_sms",
    "whatsapp/send": "exotel_send_whatsapp",
    "calls/connect": "exotel_click_to_call",
  },
  testConnection: (connection) => exotelAdapter.testCredentials(connection),
  listNumbers: (connection) => exotelAdapter.listNumbers!(connection),
  webhooks: {
    status: adapterWebhook("exotel", exotelAdapter, ["status"]),
    whatsapp: adapterWebhook("exotel", exotelAdapter, ["status", "inbound"]),
  },
}));
