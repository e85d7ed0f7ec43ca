/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a
 * devstack serving the built dashboard: sign in, connect ClickSend (the fake) from the
 * generated form and test it, grant an agent with a daily limit, issue a key shown
 * once, see a send made with that key in Activity, a member without can_view does not
 * see a connection, and the phone-width burger navigation.
 *
 * SWITCHBOARD_DASHBOARD_SCREENSHOTS=1 also writes the main pages to docs/screenshots/.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "../../packages/devstack/src/config.ts";
import { choose, createUser, detectAuthMode, launchChromium, rpc, signedIn, userClient, type AuthMode, type TestUser } from "./helpers.ts";

const s = inject("dashboardStack");
const SHOTS = process.env.SWITCHBOARD_DASHBOARD_SCREENSHOTS === "1" ? join(REPO_ROOT, "docs/screenshots") : null;

async function shot(page: Page, name: string) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.waitForLoadState("networkidle");
  // Let transitions (the navigation sliding in, notifications) settle.
  await page.waitForTimeout(600);
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

let browser: Browser;
let mode: AuthMode;
let owner: TestUser;

beforeAll(async () => {
  browser = await launchChromium();
  mode = await detectAuthMode(s);
  owner = await createUser(s, mode, "owner");
});

afterAll(async () => {
  await browser?.close();
});

describe("dashboard", () => {
  let page: Page;
  // A failing step leaves a picture of the page in .scratch/dashboard-failures/.
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== "fail" || !page) return;
    const dir = join(REPO_ROOT, ".scratch/dashboard-failures");
    mkdirSync(dir, { recursive: true });
    const invalid = await page.evaluate(() => [...document.querySelectorAll("input:invalid, textarea:invalid")].map((e) => e.outerHTML.slice(0, 300)));
    if (invalid.length) console.error(`invalid fields on the page: ${invalid.join("\n")}`);
    await page.screenshot({ path: join(dir, `${ctx.task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 80)}.png`), fullPage: true }).catch(() => {});
  });
  let workspaceUrl: string;
  let connectionId: string;
  let agentKey: string;

  it("serves the build with a runtime config naming the stack", async () => {
    const res = await fetch(`${s.DASHBOARD_URL}/config.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ supabaseUrl: s.API_URL, supabaseAnonKey: s.PUBLISHABLE_KEY });
    const deep = await fetch(`${s.DASHBOARD_URL}/w/some-id/agents`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<div id="root">');
    expect((await fetch(`${s.DASHBOARD_URL}/assets/missing.js`)).status).toBe(404);
  });

  it("shows the sign-in form, labelled, and the server's error in plain words", async () => {
    const context = await browser.newContext({ baseURL: s.DASHBOARD_URL, viewport: { width: 1280, height: 860 } });
    const p = await context.newPage();
    await p.goto("/");
    await p.waitForURL(/\/sign-in$/);
    // The URL changes before React commits the page: wait for the heading (isVisible does not wait).
    await p.getByRole("heading", { name: "Sign in to Switchboard" }).waitFor({ state: "visible" });
    await shot(p, "sign-in");
    await p.getByRole("textbox", { name: "E-mail", exact: true }).fill(owner.email);
    await p.getByRole("textbox", { name: "Password", exact: true }).fill("not-the-password");
    await p.getByRole("textbox", { name: "Password", exact: true }).press("Enter");
    const alert = p.getByRole("alert");
    await alert.waitFor();
    expect((await alert.textContent())?.length).toBeGreaterThan(10);
    expect(await p.getByRole("textbox", { name: "Password", exact: true }).inputValue()).toBe("");
    await context.close();
  });

  it("signs in and lands on the personal workspace's overview", async () => {
    ({ page } = await signedIn(browser, s, mode, owner));
    workspaceUrl = page.url().replace(/\/overview$/, "");
    await page.getByRole("heading", { level: 2 }).first().waitFor();
    for (const name of ["Overview", "Agents", "Connections", "Numbers", "Routes", "Members", "Activity", "Usage", "Audit"]) {
      await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name, exact: true }).waitFor({ state: "visible" });
    }
    await page.getByText("Your personal workspace").waitFor({ state: "visible" });
  });

  it("connects ClickSend from the form generated from its config schema, tests it, and shows its webhook URLs", async () => {
    await page.getByRole("link", { name: "Connections", exact: true }).click();
    await page.getByRole("button", { name: "Connect an account" }).click();
    const dialog = page.getByRole("dialog", { name: "Connect an account" });
    await choose(page, "Provider", "ClickSend SMS/MMS");
    await dialog.getByRole("textbox", { name: "Name", exact: true }).fill("Browser ClickSend");
    // Credentials are password inputs; the config fields come from service_providers.config_schema.
    expect(await dialog.getByRole("textbox", { name: "Username", exact: true }).getAttribute("type")).toBe("password");
    await dialog.getByRole("textbox", { name: "Username", exact: true }).fill("demo");
    await dialog.getByRole("textbox", { name: "API key", exact: true }).fill("demo-key");
    await dialog.getByRole("textbox", { name: "Sender ID", exact: true }).fill("no spaces allowed");
    await dialog.getByRole("textbox", { name: "Base URL", exact: true }).fill(s.CLICKSEND_FAKE_URL);
    await dialog.getByRole("button", { name: "Connect" }).click();
    // The schema's pattern refuses the sender id before anything is sent.
    await dialog.getByText("Not in the expected form").waitFor();
    await dialog.getByRole("textbox", { name: "Sender ID", exact: true }).fill("");
    await dialog.getByRole("textbox", { name: "Username", exact: true }).fill("demo");
    await dialog.getByRole("textbox", { name: "API key", exact: true }).fill("demo-key");
    await dialog.getByRole("button", { name: "Connect" }).click();
    await page.waitForURL(/\/connections\/[0-9a-f-]+$/);
    connectionId = page.url().split("/").pop()!;
    await page.getByRole("heading", { name: "Browser ClickSend" }).waitFor();
    // Nothing on the page holds a credential.
    expect(await page.content()).not.toContain("demo-key");

    await page.getByRole("button", { name: "Test connection" }).click();
    await page.getByText("Test passed").waitFor();
    await page.getByRole("button", { name: "Test connection" }).and(page.locator(":not([data-loading])")).waitFor();
    const receipts = await page.getByLabel("receipts webhook URL", { exact: true }).textContent();
    expect(receipts).toMatch(new RegExp(`^${s.API_URL}/functions/v1/clicksend/webhooks/[A-Za-z0-9]+/receipts$`));
    await shot(page, "connection");
  });

  it("closes a modal with Escape", async () => {
    await page.goto(`${workspaceUrl}/agents`);
    await page.getByRole("button", { name: "New agent" }).click();
    await page.getByRole("dialog", { name: "New agent" }).waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog", { name: "New agent" }).waitFor({ state: "detached" });
  });

  it("creates an agent and grants it SMS with a daily limit", async () => {
    await page.getByRole("button", { name: "New agent" }).click();
    const dialog = page.getByRole("dialog", { name: "New agent" });
    await dialog.getByRole("textbox", { name: "Name", exact: true }).fill("Browser agent");
    await dialog.getByRole("textbox", { name: "Name", exact: true }).press("Enter");
    await page.waitForURL(/\/agents\/[0-9a-f-]+$/);
    await page.getByRole("heading", { name: "Browser agent" }).waitFor();

    await page.getByRole("button", { name: "Grant access" }).click();
    const grant = page.getByRole("dialog", { name: "Grant access" });
    await choose(page, "Account", /Browser ClickSend/);
    await grant.getByRole("textbox", { name: "Daily send limit", exact: true }).fill("5");
    await grant.getByRole("textbox", { name: "Recipients per message", exact: true }).fill("3");
    await grant.getByRole("button", { name: "Grant", exact: true }).click();
    await grant.waitFor({ state: "detached" });
    const row = page.getByRole("row", { name: /Browser ClickSend/ });
    await row.waitFor();
    expect(await row.textContent()).toContain("5 / no limit");
  });

  it("issues a key that is shown exactly once", async () => {
    await page.getByRole("button", { name: "Issue a key" }).click();
    const dialog = page.getByRole("dialog", { name: "Issue a key" });
    await dialog.getByRole("textbox", { name: "Key name", exact: true }).fill("browser test");
    await dialog.getByRole("button", { name: "Issue key" }).click();
    const shown = page.getByLabel("agent key", { exact: true });
    await shown.waitFor();
    agentKey = (await shown.textContent())!.trim();
    expect(agentKey).toMatch(/^swb_agent_[A-Za-z0-9_-]{20,}$/);
    await page.getByRole("button", { name: "Copy agent key" }).waitFor({ state: "visible" });
    await shot(page, "agent-key");
    await page.getByRole("button", { name: "I have copied it" }).click();
    await shown.waitFor({ state: "detached" });
    await page.getByRole("row", { name: /browser test/ }).waitFor();
    expect(await page.content()).not.toContain(agentKey);
    await page.reload();
    await page.getByRole("row", { name: /browser test/ }).waitFor();
    expect(await page.content()).not.toContain(agentKey);
    await shot(page, "agent");
  });

  it("shows a send made with that key in Activity, with its detail", async () => {
    const res = await fetch(`${s.FUNCTIONS_URL}/agent-tools`, {
      method: "POST",
      headers: { Authorization: `Bearer ${agentKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "sms_send", arguments: { to: ["+61411111111"], body: "Hello from the dashboard test" } }),
    });
    const body = (await res.json()) as { operation_id?: string; status?: string };
    expect(res.status, JSON.stringify(body)).toBe(200);

    await page.getByRole("link", { name: "Activity", exact: true }).click();
    const table = page.getByRole("table", { name: "Operations" });
    await table.waitFor();
    const row = table.getByRole("row", { name: /sms_send/ }).first();
    await row.waitFor();
    expect(await row.textContent()).toContain("succeeded");
    expect(await row.textContent()).toContain("Browser agent");
    // Filtered by status: a denied filter hides it.
    await choose(page, "Status", "denied");
    await page.getByText("No calls match.").waitFor();
    await page.goto(`${workspaceUrl}/activity`);
    await shot(page, "activity");
    await page.getByRole("table", { name: "Operations" }).getByRole("row", { name: /sms_send/ }).first().getByRole("link").click();
    await page.waitForURL(/\/activity\/[0-9a-f-]+$/);
    await page.getByRole("heading", { name: /sms_send · succeeded/ }).waitFor();
    await page.getByText("+61411111111").first().waitFor({ state: "visible" });
    await shot(page, "operation");
  });

  it("charts usage against the grant's limit", async () => {
    await page.getByRole("link", { name: "Usage", exact: true }).click();
    await page.getByRole("table", { name: "Limits" }).waitFor();
    expect(await page.getByRole("table", { name: "Limits" }).textContent()).toContain("1 of 5");
    await shot(page, "usage");
  });

  describe("a team: a member without can_view does not see the connection", () => {
    let member: TestUser;
    let teamId: string;
    let teamConnection: string;

    beforeAll(async () => {
      member = await createUser(s, mode, "member");
      const asOwner = userClient(s, owner);
      const asMember = userClient(s, member);
      const team = await rpc<{ id: string }>(asOwner, "create_workspace", { p_name: "Browser Team" });
      teamId = team.id;
      const invitation = await rpc<{ token: string }>(asOwner, "invite_workspace_member", { p_workspace_id: teamId, p_email: member.email, p_role: "member" });
      await rpc(asMember, "accept_workspace_invitation", { p_token: invitation.token });
      const conn = await rpc<{ id: string }>(asOwner, "create_connection", {
        p_provider: "clicksend_sms", p_name: "Team ClickSend", p_workspace_id: teamId,
        p_credentials: { username: "demo", api_key: "demo-key" }, p_config: { base_url: s.CLICKSEND_FAKE_URL },
      });
      teamConnection = conn.id;
      await rpc(asOwner, "create_connection", {
        p_provider: "clicksend_sms", p_name: "Team Visible", p_workspace_id: teamId,
        p_credentials: { username: "demo", api_key: "demo-key" }, p_config: { base_url: s.CLICKSEND_FAKE_URL },
      });
      await rpc(asOwner, "set_member_permission", { p_connection_id: conn.id, p_user_id: member.id, p_can_view: true, p_can_send: true, p_daily_send_limit: 5 });
    });

    it("the owner takes view away in the connection's member access", async () => {
      await page.goto(`/w/${teamId}/connections/${teamConnection}`);
      await page.getByRole("heading", { name: "Team ClickSend" }).waitFor();
      const access = page.getByRole("row", { name: new RegExp(member.email.replace(/[.+]/g, "\\$&")) });
      await access.waitFor();
      expect(await access.textContent()).toContain("view, send");
      await access.getByRole("button", { name: /^Edit the access/ }).click();
      const dialog = page.getByRole("dialog", { name: /Access to Team ClickSend/ });
      await dialog.getByLabel("May send").uncheck();
      await dialog.getByLabel("May view").uncheck();
      await dialog.getByRole("button", { name: "Save access" }).click();
      await dialog.waitFor({ state: "detached" });
      await page.getByRole("row", { name: new RegExp(`${member.email.replace(/[.+]/g, "\\$&")}.*nothing`) }).waitFor();
      await page.goto(`/w/${teamId}/members`);
      await page.getByRole("cell", { name: member.email, exact: true }).waitFor();
      await shot(page, "members");
      await page.goto(`/w/${teamId}/audit`);
      await page.getByRole("table", { name: "Audit events" }).waitFor();
      await shot(page, "audit");
    });

    it("the member sees the workspace but not that connection", async () => {
      const { context, page: p } = await signedIn(browser, s, mode, member);
      // The switcher lists the personal workspace first, then the team.
      await p.getByRole("textbox", { name: "Workspace" }).or(p.getByRole("combobox", { name: "Workspace" })).first().click();
      const options = await p.getByRole("option").allTextContents();
      expect(options[0]).toMatch(/\(personal\)$/);
      await p.getByRole("option", { name: "Browser Team" }).click();
      await p.waitForURL(new RegExp(`/w/${teamId}/overview$`));
      await p.getByRole("link", { name: "Connections", exact: true }).click();
      await p.waitForURL(/\/connections$/);
      await p.getByRole("heading", { name: "Connections", exact: true }).waitFor();
      await p.getByText("You may not view any account of this workspace yet").waitFor();
      expect(await p.getByText("Team ClickSend").count()).toBe(0);
      await p.goto(`/w/${teamId}/connections/${teamConnection}`);
      await p.getByRole("heading", { name: "Connection not found" }).waitFor();
      // The member directory names the people of the team by address, to a plain member too.
      await p.goto(`/w/${teamId}/members`);
      await p.getByRole("cell", { name: owner.email, exact: true }).waitFor();
      await p.getByRole("cell", { name: `${member.email} (you)`, exact: true }).waitFor();
      // The audit trail is for admins.
      await p.goto(`/w/${teamId}/audit`);
      await p.getByText("Only the workspace's owner and admins read its audit trail.").waitFor();
      await context.close();
    });
  });

  it("declines an invitation pasted on the overview; the inviter sees it declined", async () => {
    const invitee = await createUser(s, mode, "invitee");
    const asOwner = userClient(s, owner);
    const team = await rpc<{ id: string }>(asOwner, "create_workspace", { p_name: "Declined Team" });
    const invitation = await rpc<{ id: string; token: string }>(asOwner, "invite_workspace_member", { p_workspace_id: team.id, p_email: invitee.email, p_role: "member" });
    const { context, page: p } = await signedIn(browser, s, mode, invitee);
    await p.getByRole("textbox", { name: "Invitation token" }).fill(invitation.token);
    await p.getByRole("button", { name: "Decline" }).click();
    await p.getByText("You declined the invitation").waitFor();
    expect(await p.getByRole("textbox", { name: "Invitation token" }).inputValue()).toBe("");
    await context.close();
    const { data, error } = await asOwner.from("workspace_invitations").select("status").eq("id", invitation.id).single();
    expect(error).toBeNull();
    expect(data).toEqual({ status: "declined" });
  });

  it("collapses the navigation into a burger menu at phone width, and it still navigates", async () => {
    const { context, page: phone } = await signedIn(browser, s, mode, owner, { width: 375, height: 760 });
    const burger = phone.getByRole("button", { name: "Open navigation" });
    await burger.waitFor();
    // The collapsed navigation sits off-screen until the burger opens it.
    const offscreen = async () => {
      const box = await phone.getByRole("navigation", { name: "Sections" }).boundingBox();
      return !box || box.x + box.width <= 0;
    };
    expect(await offscreen()).toBe(true);
    await shot(phone, "phone-overview");
    await burger.click();
    const agents = phone.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Agents", exact: true });
    await agents.waitFor({ state: "visible" });
    await expect.poll(offscreen).toBe(false);
    await shot(phone, "phone-navigation");
    await agents.click();
    await phone.waitForURL(/\/agents$/);
    await phone.getByRole("heading", { name: "Agents", exact: true }).waitFor();
    await phone.getByRole("button", { name: "Open navigation" }).waitFor({ state: "visible" });
    // No horizontal scrolling of the page itself at 375 px.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await context.close();
  });

  it("moves through the navigation with the keyboard", async () => {
    await page.goto(`${workspaceUrl}/overview`);
    await page.getByRole("heading", { level: 2 }).first().waitFor();
    const link = page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Routes", exact: true });
    await link.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/routes$/);
    await page.getByRole("heading", { name: "Routes", exact: true }).waitFor();
    await shot(page, "routes");
    await page.goto(`${workspaceUrl}/numbers`);
    await page.getByRole("heading", { name: "Numbers", exact: true }).waitFor();
    await shot(page, "numbers");
    await page.goto(`${workspaceUrl}/overview`);
    await page.getByText("Recent activity").waitFor();
    await shot(page, "overview");
    await page.goto(`${workspaceUrl}/connections`);
    await page.getByRole("link", { name: "Browser ClickSend" }).waitFor();
    await shot(page, "connections");
  });
});
