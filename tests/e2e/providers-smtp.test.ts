/**
 * SMTP end to end: the real `smtp` edge function (Deno, nodemailer) against the SMTP
 * fake over real TLS, through supabase-js `functions.invoke` and plain fetch. What the
 * relay received (envelope and parsed message), what the caller got back, the activity
 * log and the usage counter are what a user would check, and what is asserted.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  agentClient,
  agentWithKey,
  callFunction,
  connectedUser,
  type Connected,
  operationRow,
  smtpAccount,
  smtpFake,
  usedToday,
} from "./fixtures.ts";
import { adminSql, closeAdminSql, serviceClient } from "./helpers.ts";

let counter = 0;
const uniqueSubject = (text: string) => `${text} (ref ${Date.now().toString(36)}-${++counter})`;
const b64 = (text: string) => Buffer.from(text).toString("base64");

/** The mail the fake relay received for one of our operations (we send our id in a header). */
async function relayed(operationId: string) {
  return (await smtpFake.messages()).filter((m) => m.parsed.headers["x-switchboard-operation-id"] === operationId);
}

let owner: Connected;
let starttlsConnectionId: string;
let agent: Awaited<ReturnType<typeof agentWithKey>>;
let permissionId: string;

/** Makes a mail connection the owner's default mail connection (supabase-js, as the owner). */
async function setDefaultMail(connectionId: string) {
  const { error } = await owner.user.client.rpc("set_default_mail_connection", { p_connection_id: connectionId });
  expect(error).toBeNull();
}

beforeAll(async () => {
  await smtpFake.reset();
  owner = await connectedUser();
  const { data, error } = await owner.user.client.rpc("create_connection", {
    p_provider: "smtp", p_name: "Mailbox (STARTTLS)", ...(({ credentials, config }) => ({ p_credentials: credentials, p_config: config }))(smtpAccount("starttls")),
  });
  if (error) throw new Error(error.message);
  starttlsConnectionId = data.id;
  agent = await agentWithKey(owner.user, [{ connectionId: owner.smtp.id, scopes: ["email"], dailySendLimit: 100, maxRecipientsPerMessage: 10 }]);
  permissionId = agent.permissions[0].id;
});

afterAll(async () => {
  await smtpFake.fault(null);
  await closeAdminSql();
});

describe("sending mail", () => {
  it("sends over implicit TLS with text, html, cc, bcc, reply-to and an attachment; bcc only in the envelope", async () => {
    const usedBefore = await usedToday(permissionId);
    const subject = uniqueSubject("Quarterly report");
    const { data, error } = await agentClient(agent.key).functions.invoke("smtp/send", {
      body: {
        to: ["alice@example.org"], cc: ["bob@example.org"], bcc: ["carol@example.org"], reply_to: "replies@example.org",
        subject, text: "Numbers attached.", html: "<p>Numbers <b>attached</b>.</p>",
        attachments: [{ filename: "report.csv", content: b64("a,b\n1,2\n"), content_type: "text/csv" }],
      },
    });

    expect(error).toBeNull();
    expect(data).toMatchObject({ status: "succeeded", sent: 3, failed: 0 });
    const [mail] = await relayed(data.operation_id);
    expect(mail).toMatchObject({ listener: "implicit_tls", secure: true, user: "demo", outcome: "accepted" });
    expect(mail.envelope.mailFrom).toBe("agent@example.com");
    expect([...mail.envelope.rcptTo].sort()).toEqual(["alice@example.org", "bob@example.org", "carol@example.org"]);
    expect(mail.parsed.from).toEqual([{ address: "agent@example.com", name: "Switchboard Agent" }]);
    expect(mail.parsed.to.map((a: any) => a.address)).toEqual(["alice@example.org"]);
    expect(mail.parsed.cc.map((a: any) => a.address)).toEqual(["bob@example.org"]);
    expect(mail.parsed.bcc).toEqual([]);
    expect(mail.raw).not.toContain("carol@example.org");
    expect(mail.parsed.replyTo.map((a: any) => a.address)).toEqual(["replies@example.org"]);
    expect(mail.parsed.subject).toBe(subject);
    expect(mail.parsed.text.trim()).toBe("Numbers attached.");
    expect(mail.parsed.html).toContain("<p>Numbers <b>attached</b>.</p>");
    expect(mail.parsed.attachments).toEqual([expect.objectContaining({ filename: "report.csv", contentType: "text/csv", size: 8 })]);

    const row = await operationRow(data.operation_id);
    expect(row).toMatchObject({
      status: "succeeded", auth_mode: "agent_key", capability_key: "smtp_send_email", recipient_count: 3, quota_used: 3,
      provider_message_ids: [mail.parsed.messageId],
    });
    expect([...row.recipients].sort()).toEqual(["alice@example.org", "bob@example.org", "carol@example.org"]);
    // The log keeps counts and metadata, never the bodies or the attachment content.
    expect(row.request_summary).toMatchObject({ to_count: 1, cc_count: 1, bcc_count: 1, attachments: [{ filename: "report.csv", size: 8 }] });
    expect(JSON.stringify(row.request_summary)).not.toContain("Numbers");
    expect(JSON.stringify(row.request_summary)).not.toContain(b64("a,b\n1,2\n"));
    expect(await usedToday(permissionId)).toBe(usedBefore + 3);
  });

  it("sends over STARTTLS for the owner acting directly, naming the connection", async () => {
    const subject = uniqueSubject("Via STARTTLS");
    const { data, error } = await owner.user.client.functions.invoke("smtp/send", {
      body: { connection_id: starttlsConnectionId, to: ["dave@example.org"], subject, text: "Upgraded before AUTH." },
    });

    expect(error).toBeNull();
    const [mail] = await relayed(data.operation_id);
    expect(mail).toMatchObject({ listener: "starttls", secure: true, user: "demo" });
    expect(mail.parsed.subject).toBe(subject);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "user", connection_id: starttlsConnectionId, agent_id: null, status: "succeeded" });
  });

  it("asks which mailbox to use when the owner has two, names none, and neither is the default mail connection (400), sending nothing", async () => {
    await setDefaultMail(owner.sendgrid.id);
    const before = (await smtpFake.messages()).length;
    const res = await callFunction("smtp/send", owner.user.token, { body: { to: ["dave@example.org"], subject: "Which one?", text: "?" } });

    expect(res.status).toBe(400);
    expect(res.body.error.details).toMatchObject({ reason: "ambiguous_connection" });
    expect((await smtpFake.messages()).length).toBe(before);
  });

  it("uses the workspace's default mail connection when a send names none and the default is one of the candidates", async () => {
    await setDefaultMail(owner.smtp.id);
    const subject = uniqueSubject("To the default");
    const res = await callFunction("smtp/send", owner.user.token, { body: { to: ["dave@example.org"], subject, text: "default" } });

    expect(res.status).toBe(200);
    expect(await operationRow(res.body.operation_id)).toMatchObject({ connection_id: owner.smtp.id, status: "succeeded" });
    expect((await smtpFake.messages()).some((m: any) => m.parsed.subject === subject)).toBe(true);
  });

  it("refuses CR/LF in the subject with 400 and sends nothing", async () => {
    const before = (await smtpFake.messages()).length;
    const res = await callFunction("smtp/send", agent.key, {
      body: { to: ["alice@example.org"], subject: "Hello\r\nBcc: victim@example.net", text: "hi" },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.details.issues.map((i: any) => i.path)).toContain("subject");
    expect((await smtpFake.messages()).length).toBe(before);
  });

  it("refuses the same address twice across to/cc/bcc with 400", async () => {
    const res = await callFunction("smtp/send", agent.key, {
      body: { to: ["alice@example.org"], bcc: ["Alice@Example.org"], subject: "Dup", text: "hi" },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe("bcc.0");
  });
});

describe("acting as the agent with a user JWT or the service key", () => {
  it("a user's JWT plus agent_id sends as that agent, counted on its grant", async () => {
    const usedBefore = await usedToday(permissionId);
    const { data, error } = await owner.user.client.functions.invoke("smtp/send", {
      body: { agent_id: agent.agent.id, to: ["judy@example.org"], subject: uniqueSubject("As agent"), text: "hi" },
    });

    expect(error).toBeNull();
    expect(await relayed(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "user_agent", agent_id: agent.agent.id, connection_id: owner.smtp.id, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("the service key with user_id and agent_id sends as that user's agent", async () => {
    const usedBefore = await usedToday(permissionId);
    const { data, error } = await serviceClient().functions.invoke("smtp/send", {
      body: { user_id: owner.user.id, agent_id: agent.agent.id, to: ["judy@example.org"], subject: uniqueSubject("From backend"), text: "hi" },
    });

    expect(error).toBeNull();
    expect(await relayed(data.operation_id)).toHaveLength(1);
    expect(await operationRow(data.operation_id)).toMatchObject({ auth_mode: "service", user_id: owner.user.id, agent_id: agent.agent.id, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });
});

describe("recipient rules by domain", () => {
  let ruled: Awaited<ReturnType<typeof agentWithKey>>;

  beforeAll(async () => {
    ruled = await agentWithKey(owner.user, [{
      connectionId: owner.smtp.id, scopes: ["email"], allowedRecipients: ["example.org", "*.partner.example"], blockedRecipients: ["ceo@example.org"],
    }], "mail rules agent");
  });

  it("sends to an allowed domain and an allowed subdomain", async () => {
    const res = await callFunction("smtp/send", ruled.key, {
      body: { to: ["ops@example.org", "lee@eu.partner.example"], subject: uniqueSubject("Allowed"), text: "hi" },
    });

    expect(res.status).toBe(200);
    expect([...(await relayed(res.body.operation_id))[0].envelope.rcptTo].sort()).toEqual(["lee@eu.partner.example", "ops@example.org"]);
  });

  it("refuses another domain with 403, logs the denial and sends nothing", async () => {
    const before = (await smtpFake.messages()).length;
    const res = await callFunction("smtp/send", ruled.key, {
      body: { to: ["ops@example.org", "friend@elsewhere.test"], subject: uniqueSubject("Leak"), text: "hi" },
    });

    expect(res.status).toBe(403);
    expect(res.body.error.details).toMatchObject({ reason: "recipient_not_allowed", recipient: "friend@elsewhere.test" });
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "denied", quota_reserved: 0 });
    expect((await smtpFake.messages()).length).toBe(before);
  });

  it("checks bcc too: a hidden recipient outside the allowed domains is refused (403)", async () => {
    const before = (await smtpFake.messages()).length;
    const res = await callFunction("smtp/send", ruled.key, {
      body: { to: ["ops@example.org"], bcc: ["me@elsewhere.test"], subject: uniqueSubject("Quiet copy"), text: "hi" },
    });

    expect(res.status).toBe(403);
    expect(res.body.error.details.recipient).toBe("me@elsewhere.test");
    expect((await smtpFake.messages()).length).toBe(before);
  });

  it("refuses a blocked address inside an allowed domain, whatever its case (403)", async () => {
    const before = (await smtpFake.messages()).length;
    const res = await callFunction("smtp/send", ruled.key, {
      body: { to: ["ops@example.org"], cc: ["CEO@Example.ORG"], subject: uniqueSubject("FYI"), text: "hi" },
    });

    expect(res.status).toBe(403);
    expect(res.body.error.details.recipient).toBe("ceo@example.org");
    expect((await smtpFake.messages()).length).toBe(before);
  });
});

describe("what the relay answers", () => {
  afterEach(async () => {
    await smtpFake.fault(null);
  });

  it("a 550 for the only recipient is a provider_error with the SMTP code, failed, quota given back", async () => {
    const usedBefore = await usedToday(permissionId);
    const before = (await smtpFake.messages()).length;

    const res = await callFunction("smtp/send", agent.key, { body: { to: ["unknown@example.org"], subject: uniqueSubject("Hello?"), text: "hi" } });

    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: "provider_error", details: { provider: "smtp", status: 550, provider_code: "5.1.1" } });
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_reserved: 1, quota_used: 0, error_code: "provider_error" });
    expect(await usedToday(permissionId)).toBe(usedBefore);
    expect((await smtpFake.messages()).length).toBe(before);
  });

  it("a 550 for one of two recipients is a partial send: one delivered, one counted", async () => {
    const usedBefore = await usedToday(permissionId);
    const res = await callFunction("smtp/send", agent.key, {
      body: { to: ["erin@example.org", "unknown@example.org"], subject: uniqueSubject("Half"), text: "hi" },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "partial", sent: 1, failed: 1 });
    expect(res.body.recipients.find((r: any) => r.to === "unknown@example.org")).toMatchObject({ ok: false, status: "550" });
    expect((await relayed(res.body.operation_id))[0].envelope.rcptTo).toEqual(["erin@example.org"]);
    expect(await operationRow(res.body.operation_id)).toMatchObject({ status: "partial", quota_reserved: 2, quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
  });

  it("a 4xx (451 after DATA) is provider_unavailable 503, failed, quota given back, one attempt only", async () => {
    await smtpFake.fault("451");
    const usedBefore = await usedToday(permissionId);
    const before = await smtpFake.messages();

    const res = await callFunction("smtp/send", agent.key, { body: { to: ["frank@example.org"], subject: uniqueSubject("Busy"), text: "hi" } });

    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "provider_unavailable", details: { provider: "smtp", status: 451 } });
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "failed", quota_used: 0 });
    expect(await usedToday(permissionId)).toBe(usedBefore);
    const after = await smtpFake.messages();
    expect(after.length).toBe(before.length + 1);
    expect(after.at(-1).outcome).toBe("rejected");
  });

  it("a connection dropped after DATA is 'unknown' with the quota kept, and is not retried", async () => {
    await smtpFake.fault("drop_after_data");
    const usedBefore = await usedToday(permissionId);
    const before = (await smtpFake.messages()).length;

    const res = await callFunction("smtp/send", agent.key, { body: { to: ["grace@example.org"], subject: uniqueSubject("Cut"), text: "hi" } });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
    const after = await smtpFake.messages();
    expect(after.length).toBe(before + 1);
    expect(after.at(-1).outcome).toBe("dropped");
  });

  it("a relay that never answers DATA: 504, 'unknown' with the quota kept, one attempt only", async () => {
    await smtpFake.fault("timeout");
    const usedBefore = await usedToday(permissionId);
    const before = (await smtpFake.messages()).length;

    const res = await callFunction("smtp/send", agent.key, { body: { to: ["heidi@example.org"], subject: uniqueSubject("Slow"), text: "hi" } });

    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("provider_unavailable");
    expect(await operationRow(res.body.error.details.operation_id)).toMatchObject({ status: "unknown", quota_used: 1 });
    expect(await usedToday(permissionId)).toBe(usedBefore + 1);
    expect((await smtpFake.messages()).length).toBe(before + 1);
  }, 45_000);

  it("a repeated idempotency key returns the first result without a second mail; other arguments get 409", async () => {
    const key = `mail-${randomBytes(8).toString("hex")}`;
    const body = { to: ["ivan@example.org"], subject: uniqueSubject("Once"), text: "only once" };
    const first = await callFunction("smtp/send", agent.key, { body, headers: { "Idempotency-Key": key } });
    const after = (await smtpFake.messages()).length;

    const again = await callFunction("smtp/send", agent.key, { body, headers: { "Idempotency-Key": key } });
    const changed = await callFunction("smtp/send", agent.key, { body: { ...body, text: "changed" }, headers: { "Idempotency-Key": key } });

    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true });
    expect(changed.status).toBe(409);
    expect((await smtpFake.messages()).length).toBe(after);
  });
});

describe("test connection", () => {
  it("connects, upgrades to TLS and authenticates: ok, recorded on the connection", async () => {
    const { data, error } = await owner.user.client.functions.invoke("smtp/test", { body: { connection_id: owner.smtp.id } });

    expect(error).toBeNull();
    expect(data).toMatchObject({ connection_id: owner.smtp.id, ok: true, details: { security: "tls" } });
    const [row] = await adminSql()`select last_test_ok, status from public.connections where id = ${owner.smtp.id}`;
    expect(row).toEqual({ last_test_ok: true, status: "active" });
  });

  it("reports a wrong password as ok:false, and the password appears nowhere", async () => {
    const password = `Wr0ng-${randomBytes(6).toString("hex")}`;
    const account = smtpAccount("tls");
    const { data: connection, error } = await owner.user.client.rpc("create_connection", {
      p_provider: "smtp", p_name: "Mailbox (wrong password)", p_credentials: { username: "demo", password }, p_config: account.config,
    });
    expect(error).toBeNull();

    const res = await callFunction("smtp/test", owner.user.token, { body: { connection_id: connection.id } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, details: { kind: "auth", status: 535 } });
    const [row] = await adminSql()`select to_jsonb(c) as c from public.connections c where id = ${connection.id}`;
    expect(row.c).toMatchObject({ last_test_ok: false, status: "error" });
    const [ops] = await adminSql()`select coalesce(jsonb_agg(to_jsonb(o)), '[]')::text as text from public.operations o where user_id = ${owner.user.id}`;
    for (const text of [JSON.stringify(res.body), JSON.stringify(row.c), ops.text]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(b64(password));
      expect(text).not.toContain(b64(`\u0000demo\u0000${password}`));
    }
  });
});
