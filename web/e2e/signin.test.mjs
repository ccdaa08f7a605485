// Signing in and out, and a wrong password shown as the API's problem.

import assert from "node:assert/strict";
import { accounts, allowHTTPErrors, fillSignIn, scenario, signIn } from "./harness.mjs";

scenario("a wrong password is refused with the API's problem, the right one signs in", async (s) => {
  const page = await s.newPage();
  allowHTTPErrors(page, 401);
  await page.goto("/");
  await fillSignIn(page, accounts.viewer.email, "not the password at all");
  const problem = page.getByRole("alert");
  await problem.waitFor();
  assert.match(await problem.innerText(), /credentials|password|unauthori/i);
  assert.equal(await page.locator("#topbar").isVisible(), false, "no console behind a failed sign-in");

  await fillSignIn(page, accounts.viewer.email, accounts.viewer.password);
  await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
  assert.equal(await page.locator("#who .badge.role").innerText(), "viewer");
  await page.getByRole("heading", { name: "Virtual machines" }).waitFor();
});

scenario("signing out ends the session and a reload does not bring it back", async (s) => {
  const page = await s.signedIn("operator");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.getByText("You have signed out.").waitFor();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the refresh token is forgotten");
  await page.reload();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  assert.equal(await page.locator("#topbar").isVisible(), false);
});
