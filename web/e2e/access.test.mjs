// How a VM's owner gets in, in the console: an SSH key and a password at
// creation (cloud-init), what the VM page shows of them, a change that
// waits for the next boot, and a rebuild.

import assert from "node:assert/strict";
import { generateKeyPairSync, createHash } from "node:crypto";
import { answerDialog, openAccountPage, poolName, rowWith, scenario, until } from "./harness.mjs";

function ed25519Key(comment) {
  const der = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
  const field = (b) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(der.subarray(der.length - 32))]);
  return { line: `ssh-ed25519 ${blob.toString("base64")} ${comment}`, fingerprint: "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "") };
}

scenario("a VM created with an SSH key, a password and a pool address shows its access, takes a change at the next boot, and rebuilds", async (s) => {
  const page = await s.signedIn("vm_admin");
  const key = ed25519Key("owner@laptop");
  const keyName = `owner-${Date.now().toString(36)}`;
  await openAccountPage(page, "SSH keys");
  await page.getByRole("button", { name: "Add SSH key" }).click();
  const keyForm = page.locator("form").filter({ has: page.getByRole("heading", { name: "New SSH key" }) });
  await keyForm.getByLabel("Name").fill(keyName);
  await keyForm.getByLabel("Public key").fill(key.line);
  await keyForm.getByRole("button", { name: "Add key" }).click();
  await page.getByText(`${keyName} added`).waitFor();
  await rowWith(page, keyName).waitFor();

  await page.getByRole("link", { name: "Virtual machines" }).click();
  const name = `app-${Date.now().toString(36)}`;
  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.locator("form").filter({ hasText: "New VM or container" });
  await form.locator('input[name="name"]').fill(name);
  await form.locator('select[name="template"] option[data-name="debian-12"]').waitFor({ state: "attached" });
  await form.getByLabel("Template").selectOption({ label: "debian-12 (l26)" });
  await form.getByLabel("Disk (GB)").fill("8");
  const pool = form.getByLabel("Address pool");
  await pool.locator("option", { hasText: poolName }).waitFor({ state: "attached" });
  await pool.selectOption({ label: `${poolName} (10.80.0.0/24, 241 free)` });
  await form.getByText("Access (cloud-init)").click();
  await form.locator('input[name="cloud_init.user"]').fill("ops");
  await form.locator('input[name="cloud_init.password"]').fill("a long enough password");
  const offered = form.locator(".key-choices label", { hasText: keyName }).locator("input");
  await offered.waitFor();
  assert.equal(await offered.isChecked(), true, "the user's keys are offered, checked");
  await form.getByRole("button", { name: "Create" }).click();
  await page.getByText(`${name} is being created`).waitFor();

  const row = rowWith(page, name);
  await row.locator(".status .badge", { hasText: "running" }).waitFor();
  await row.getByRole("link", { name }).click();
  const facts = page.locator("dl.facts");
  await facts.getByText("ops", { exact: true }).waitFor();
  await facts.getByText(key.fingerprint).waitFor();
  await facts.getByText(name, { exact: true }).waitFor(); // the hostname defaults to the VM's name
  await facts.getByText("10.80.0.10", { exact: true }).first().waitFor(); // the pool's first free address (the guest may report it too)
  assert.equal(await page.getByText("a long enough password").count(), 0, "the password is shown nowhere");

  // A change of DNS waits for the next boot.
  const change = page.locator("form").filter({ has: page.getByRole("heading", { name: "Change access" }) });
  await change.getByLabel("Nameservers").fill("9.9.9.9");
  const save = change.getByRole("button", { name: "Save for the next boot" });
  await until("the access form to be enabled", () => save.isEnabled());
  await save.click();
  await page.getByText(`Access of ${name} changed; it applies at the next boot`).waitFor();
  await facts.getByText("cloud-init changes apply at the next boot").waitFor();

  // Rebuild asks first, then goes through provisioning back to running.
  const rebuild = page.locator("form").filter({ has: page.getByRole("heading", { name: "Rebuild" }) });
  const go = rebuild.getByRole("button", { name: "Rebuild" });
  await until("Rebuild to be enabled", () => go.isEnabled());
  const asked = answerDialog(page, true);
  await go.click();
  assert.equal(await asked, `Rebuild ${name}? Its disks are destroyed and it starts again from the template.`);
  await page.getByText(`Rebuild of ${name} requested`).waitFor();
  const history = page.locator("table").filter({ has: page.getByRole("columnheader", { name: "Event" }) });
  await until("the rebuild to finish", async () => (await history.locator("tbody tr td:nth-child(3)").allTextContents()).includes("vm_rebuilt"));
  await page.locator(".view-head .status .badge", { hasText: "running" }).waitFor();
  await facts.getByText(key.fingerprint).waitFor();
});
