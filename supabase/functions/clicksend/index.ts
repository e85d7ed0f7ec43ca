// ClickSend SMS/MMS for agents and users: send, balance, history, the receipt /
// inbound-SMS webhooks, and the reconciler's questions about lost calls.
// Wiring only: the rules are in SQL, the wire format in _shared.
import { createClickSendClient } from "../_shared/providers/clicksend.ts";
import { providerFunction } from "../_shared/provider-function.ts";
import { clicksendWebhook } from "../_shared/webhooks.ts";

Deno.serve(providerFunction({
  name: "clicksend",
  provider: "clicksend_sms",
  routes: {
    "sms/send": "clicksend_send_sms",
    "mms/send": "clicksend_send_mms",
    "balance": "clicksend_get_balance",
    "sms/history": "clicksend_get_sms_history",
    "mms/history": "clicksend_get_mms_history",
  },
  testConnection: async (connection) => createClickSendClient(connection).testConnection(),
  // Lost calls: ClickSend's history lists every message it accepted with our operation id
  // as custom_string, so the reconciler can ask (docs/operations.md, "The reconciler").
  reconcile: (item, connection, { deadline }) =>
    createClickSendClient(connection).findByCustomString(item.operation_id, {
      kind: item.capability_key === "clicksend_send_mms" ? "mms" : "sms",
      from: Math.floor(Date.parse(item.window_from) / 1000),
      to: Math.ceil(Date.parse(item.window_to) / 1000),
      expected: item.recipient_count,
      deadline,
    }),
  webhooks: { receipts: clicksendWebhook("receipts"), inbound: clicksendWebhook("inbound") },
}));

/* To invoke locally (npm start prints the key):
  curl -X POST "$FUNCTIONS_URL/clicksend/sms/send" -H "Authorization: Bearer $DEMO_AGENT_KEY" \
    -H 'Content-Type: application/json' -d '{"to":["+61411111111"],"body":"Hello from Switchboard"}'
*/
