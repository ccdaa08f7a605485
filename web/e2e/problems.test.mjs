// A problem answer (RFC 9457) shown to the user where they acted.

import assert from "node:assert/strict";
import { allowHTTPErrors, quotaCores, rowWith, scenario } from "./harness.mjs";

scenario("the tenant's quota refuses a VM larger than it allows, and the form says so", async (s) => {
  const page = await s.signedIn("vm_admin");
  allowHTTPErrors(page, 422);
  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.locator("form").filter({ hasText: "New VM or container" });
  await form.locator('input[name="name"]').fill("too-big");
  await templatesLoaded(form);
  await form.getByLabel("Cores").fill(String(quotaCores * 2));
  await form.getByRole("button", { name: "Create" }).click();

  const problem = form.getByRole("alert");
  await problem.waitFor();
  assert.match(await problem.innerText(), /quota/i);
  assert.equal(await form.isVisible(), true, "the form stays open with what was typed");
  assert.equal(await form.locator('input[name="name"]').inputValue(), "too-big");
  assert.equal(await rowWith(page, "too-big").count(), 0, "no VM was created");
});

async function templatesLoaded(form) {
  await form.locator('select[name="template"] option[data-name]').first().waitFor({ state: "attached" });
}
