// Administration in the console: users (create, change roles, disable),
// the audit log with its type filter, and revoking another session.

import assert from "node:assert/strict";
import { allowHTTPErrors, answerDialog, fillSignIn, openAccountPage, rowWith, scenario, until } from "./harness.mjs";

const password = "correct horse battery staple 42";

scenario("a tenant admin creates a user, changes their roles and disables them", async (s) => {
  const page = await s.signedIn("tenant_admin");
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByRole("heading", { name: "Users" }).waitFor();

  const email = `new-${Date.now().toString(36)}@example.com`;
  await page.getByRole("button", { name: "New user" }).click();
  const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "New user" }) });
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Display name").fill("Nora New");
  await form.getByLabel("Initial password").fill(password);
  assert.equal(await form.locator('input[name="roles"][value="viewer"]').isChecked(), true, "viewer is offered by default");
  assert.equal(await form.locator('input[name="roles"][value="platform_admin"]').count(), 0, "only a platform admin grants platform_admin");
  await form.getByRole("button", { name: "Create user" }).click();
  await page.getByText(`${email} created`).waitFor();
  const row = rowWith(page, email);
  await row.getByText("Nora New").waitFor();
  await row.locator(".badge.role", { hasText: "viewer" }).waitFor();
  await row.locator(".badge", { hasText: "active" }).waitFor();

  // viewer → operator.
  await row.getByText("Change roles").click();
  await row.locator('input[name="roles"][value="viewer"]').uncheck();
  await row.locator('input[name="roles"][value="operator"]').check();
  await row.getByRole("button", { name: "Save roles" }).click();
  await page.getByText(`Roles of ${email} changed`).waitFor();
  await until("the row to show operator only", async () => {
    const roles = await rowWith(page, email).locator(".badge.role").allTextContents();
    return JSON.stringify(roles) === JSON.stringify(["operator"]);
  });

  // The new user signs in with the new role.
  const theirs = await s.newPage();
  await theirs.goto("/");
  await fillSignIn(theirs, email, password);
  await theirs.locator("#who .badge.role", { hasText: "operator" }).waitFor();

  // Disabling asks first; afterwards their open console is signed out (its
  // next request, a reload or the 2 s refresh, is a 401; whichever comes
  // first, the reason is still shown after the reload) and they cannot
  // sign in again.
  allowHTTPErrors(theirs, 401);
  const asked = answerDialog(page, true);
  await rowWith(page, email).getByRole("button", { name: "Disable" }).click();
  assert.equal(await asked, `Disable ${email}? Their sessions stop working.`);
  await page.getByText(`${email} disabled`).waitFor();
  await rowWith(page, email).locator(".badge", { hasText: "disabled" }).waitFor();
  await rowWith(page, email).getByRole("button", { name: "Enable" }).waitFor();
  await theirs.reload();
  await theirs.getByText("Your session has ended. Please sign in again.").waitFor();

  const again = await s.newPage();
  allowHTTPErrors(again, 401, 403);
  await again.goto("/");
  await fillSignIn(again, email, password);
  await again.getByRole("alert").waitFor();
  assert.equal(await again.locator("#topbar").isVisible(), false, "a disabled user gets no console");
});

scenario("an auditor filters the audit log by event type", async (s) => {
  const page = await s.signedIn("auditor");
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  const types = () => page.locator("tbody tr td:nth-child(3)").allTextContents();
  const filter = page.getByLabel("Event type");

  // Unfiltered, the tenant's log has users, sessions and VMs in it.
  await until("several kinds of event", async () => new Set(await types()).size > 2);

  for (const [type, atLeast] of [
    ["user_created", 6],
    ["vm_provisioned", 1],
  ]) {
    await filter.fill(type);
    await filter.press("Enter");
    await until(`only ${type} events`, async () => {
      const shown = await types();
      return shown.length >= atLeast && shown.every((t) => t === type);
    });
  }
  await filter.fill("no_such_event");
  await filter.press("Enter");
  await page.getByText("No events match.").waitFor();
});

scenario("a user revokes their other session, which then has to sign in again", async (s) => {
  const elsewhere = await s.signedIn("sessions");
  const here = await s.signedIn("sessions");
  await openAccountPage(here, "Sessions");
  await here.getByRole("heading", { name: "Sessions" }).waitFor();
  const rows = here.locator("tbody tr");
  await until("both sessions listed", async () => (await rows.count()) === 2);
  const current = rows.filter({ hasText: "this session" });
  assert.equal(await current.count(), 1, "one session is this one");

  const other = rows.filter({ hasNotText: "this session" });
  await other.getByRole("button", { name: "Revoke" }).click();
  await here.getByText("Session revoked").waitFor();
  await until("only this session left", async () => (await rows.count()) === 1);
  assert.equal(await rows.filter({ hasText: "this session" }).count(), 1);

  // The other tab's refresh token no longer works: on reload it is out.
  allowHTTPErrors(elsewhere, 401);
  await elsewhere.reload();
  await elsewhere.getByText("Your session has ended. Please sign in again.").waitFor();
  await elsewhere.getByRole("button", { name: "Sign in" }).waitFor();

  // This one is still in.
  await here.reload();
  await here.getByRole("heading", { name: "Sessions" }).waitFor();
  await here.getByRole("button", { name: "Sign out", exact: true }).waitFor();
});
