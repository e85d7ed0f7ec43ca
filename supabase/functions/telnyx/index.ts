// Telnyx SMS and MMS for agents and users: sends, balance, number sync, and the
// Ed25519-signed message webhooks (delivery reports and inbound messages on one URL).
// Wiring only: the rules are in SQL, the wire format in _shared.
import { providerFunction } from "../_shared/provider-function.ts";
import { telnyxAdapter } from "../_shared/providers/telnyx.ts";
import { adapterWebhook } from "../_shared/webhooks.ts";

Deno.serve(providerFunction({
  name: "telnyx",
  provider: "telnyx",
  routes: {
    "sms/send": "telnyx_send_sms",
    "mms/send": "telnyx_send_mms",
    "balance": "telnyx_get_balance",
  },
  testConnection: (connection) => telnyxAdapter.testCredentials(connection),
  listNumbers: (connection) => telnyxAdapter.listNumbers!(connection),
  webhooks: { events: adapterWebhook("telnyx", telnyxAdapter, ["status", "inbound"]) },
}));
