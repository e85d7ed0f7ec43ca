// Mail through the user's own SMTP server (implicit TLS or required STARTTLS).
// Wiring only: the rules are in SQL, the SMTP dialogue in _shared/providers/smtp.ts.
import { createSmtpClient } from "../_shared/providers/smtp.ts";
import { providerFunction } from "../_shared/provider-function.ts";

Deno.serve(providerFunction({
  name: "smtp",
  provider: "smtp",
  routes: { "send": "smtp_send_email" },
  testConnection: async (connection) => createSmtpClient(connection).testConnection(),
}));

/* To invoke locally:
  curl -X POST "$FUNCTIONS_URL/smtp/send" -H "Authorization: Bearer $DEMO_AGENT_KEY" \
    -H 'Content-Type: application/json' -d '{"to":["someone@example.com"],"subject":"Hi","text":"Hello"}'
*/
