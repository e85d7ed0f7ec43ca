// Mail through SendGrid (content or dynamic templates) and its signed Event Webhook.
// Wiring only: the rules are in SQL, the wire format in _shared/providers/sendgrid.ts.
import { createSendGridClient } from "../_shared/providers/sendgrid.ts";
import { providerFunction } from "../_shared/provider-function.ts";
import { sendgridEventWebhook } from "../_shared/webhooks.ts";

Deno.serve(providerFunction({
  name: "sendgrid",
  provider: "sendgrid",
  routes: { "send": "sendgrid_send_email" },
  testConnection: async (connection) => createSendGridClient(connection).testConnection(),
  webhooks: { events: sendgridEventWebhook },
}));

/* To invoke locally:
  curl -X POST "$FUNCTIONS_URL/sendgrid/send" -H "Authorization: Bearer $DEMO_AGENT_KEY" \
    -H 'Content-Type: application/json' -d '{"to":["someone@example.com"],"subject":"Hi","text":"Hello"}'
*/
