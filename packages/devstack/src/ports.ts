/**
 * Before `npm start` touches anything: are the stack's fixed ports free? Another
 * Switchboard stack, or `supabase start` (which uses 54321 too), holding one would
 * otherwise surface as an EADDRINUSE from deep inside a server, after the database was
 * already reset under the running stack's feet.
 */
import { createServer } from "node:net";
import { type DevstackConfig, type DevstackPorts, PORT_ENV } from "./config.ts";

/** What each port serves, for the message. */
const PORT_ROLE: Readonly<Record<keyof DevstackPorts, string>> = {
  api: "the API gateway (functions, auth, rest)",
  platform: "the platform server",
  clicksend: "the ClickSend fake",
  sendgrid: "the SendGrid fake",
  twilio: "the Twilio fake",
  telnyx: "the Telnyx fake",
  exotel: "the Exotel fake",
  exotelIn: "the Exotel (Mumbai) fake",
  smtpHttp: "the SMTP fake's inspection API",
  smtpImplicitTls: "the SMTP fake (TLS)",
  smtpStarttls: "the SMTP fake (STARTTLS)",
};

/** Whether `port` can be bound on `host` now (false when something holds it). */
function isFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" || error.code === "EACCES") resolve(false);
      else reject(error);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Throws one plain message naming every fixed port that is taken and how to move it. */
export async function assertPortsFree(config: DevstackConfig): Promise<void> {
  const keys = (Object.keys(config.ports) as (keyof DevstackPorts)[]).filter((key) => config.ports[key] !== 0);
  const taken: string[] = [];
  for (const key of keys) {
    if (!(await isFree(config.host, config.ports[key]))) {
      taken.push(`  ${config.host}:${config.ports[key]}  ${PORT_ROLE[key]}  (set ${PORT_ENV[key]} to move it)`);
    }
  }
  if (taken.length) {
    throw new Error(
      `Another process is using ${taken.length === 1 ? "a port" : "ports"} the local stack needs:\n${taken.join("\n")}\n` +
        "Is another Switchboard stack (npm start) or a Supabase CLI stack (supabase start) running? Stop it, or move " +
        "this stack: each variable above takes a port number, and SWITCHBOARD_EPHEMERAL_PORTS=1 picks free ports for all. " +
        "Nothing was started and the database was not touched.",
    );
  }
}
