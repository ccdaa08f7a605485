// A VM's life in the console, as a vm_admin: create it and watch it reach
// running without a reload, resize it, snapshot it, shut it down through
// the confirmation, read its history, delete it.

import assert from "node:assert/strict";
import { answerDialog, rowWith, scenario, until } from "./harness.mjs";

scenario("create, watch, resize, snapshot, shut down, history, delete", async (s) => {
  const page = await s.signedIn("vm_admin");
  const name = `web-${Date.now().toString(36)}`;
  // Set on this document only: a reload or navigation would drop it.
  await page.evaluate(() => {
    window.sameDocument = true;
  });

  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.locator("form").filter({ hasText: "New VM or container" });
  await form.locator('input[name="name"]').fill(name);
  await form.locator('select[name="template"] option[data-name="debian-12"]').waitFor({ state: "attached" });
  await form.getByLabel("Template").selectOption({ label: "debian-12 (l26)" });
  await form.getByLabel("Cores").fill("1");
  await form.getByLabel("Memory (MiB)").fill("512");
  await form.getByLabel("Disk (GB)").fill("8");
  await form.getByRole("button", { name: "Create" }).click();
  await page.getByText(`${name} is being created`).waitFor();

  // The list follows the VM through provisioning to running by itself.
  const row = rowWith(page, name);
  await row.waitFor();
  await row.locator(".status .badge", { hasText: "running" }).waitFor();
  await row.getByText(/^VMID \d+$/).waitFor(); // placed on a node of pvesim
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was not reloaded");

  await row.getByRole("link", { name }).click();
  await page.getByRole("heading", { name }).waitFor();
  const facts = page.locator("dl.facts");
  await facts.getByText("1 vCPU · 512 MiB · 8 GB disk").waitFor();

  // Resize: more cores and memory, a larger disk.
  const resize = page.locator("form").filter({ has: page.getByRole("heading", { name: "Resize" }) });
  await resize.getByLabel("Cores").fill("2");
  await resize.getByLabel("Memory (MiB)").fill("1024");
  await resize.getByLabel("Disk (GB)").fill("12");
  await resize.getByRole("button", { name: "Resize" }).click();
  await page.getByText(`Resize requested for ${name}`).waitFor();
  await facts.getByText("2 vCPU · 1 GiB · 12 GB disk").waitFor();

  // Snapshot, once the resize is done (one action at a time).
  const snapshots = page.locator("form").filter({ has: page.getByRole("heading", { name: "Snapshots" }) });
  const take = snapshots.getByRole("button", { name: "Take snapshot" });
  await until("the snapshot button to be enabled", () => take.isEnabled());
  await snapshots.getByLabel("Name").fill("before-upgrade");
  await take.click();
  await snapshots.locator('tr[data-snapshot="before-upgrade"] .badge', { hasText: "ready" }).waitFor();

  // Shut down asks first; declining does nothing, accepting shuts it down.
  const shutDown = page.getByRole("button", { name: "Shut down" });
  await until("Shut down to be enabled", () => shutDown.isEnabled());
  let asked = answerDialog(page, false);
  await shutDown.click();
  assert.equal(await asked, `Shut down ${name} (ACPI, graceful)?`);
  assert.equal(await page.locator(".view-head .status .badge").innerText(), "running", "declined: still running");
  asked = answerDialog(page, true);
  await shutDown.click();
  await asked;
  await page.getByText(`Shut down requested for ${name}`).waitFor();
  await page.locator(".view-head .status .badge", { hasText: "stopped" }).waitFor();
  await page.getByRole("button", { name: "Start" }).waitFor();

  // The history lists every event of the VM, oldest first.
  const history = page.locator("table").filter({ has: page.getByRole("columnheader", { name: "Event" }) });
  const want = ["vm_create_requested", "vm_provisioned", "vm_resize_requested", "vm_action_succeeded", "vm_snapshot_requested", "vm_action_succeeded", "vm_action_requested", "vm_action_succeeded"];
  await until("the history to list every event", async () => {
    // The guest's addresses are reported whenever it answers: not part of the sequence.
    const types = (await history.locator("tbody tr td:nth-child(3)").allTextContents()).filter((t) => t !== "vm_guest_addresses_reported");
    return JSON.stringify(types) === JSON.stringify(want);
  });
  const actors = await history.locator("tbody tr td:nth-child(4)").allTextContents();
  assert.equal(actors[0], "you", "the create was the user's");
  assert.equal(actors[1], "system", "provisioning was the agent's");

  // Delete asks too, and the VM ends deleted.
  const del = page.getByRole("button", { name: "Delete", exact: true });
  asked = answerDialog(page, true);
  await del.click();
  assert.match(await asked, new RegExp(`^Delete VM ${name}\\?`));
  await page.locator(".view-head .status .badge", { hasText: "deleted" }).waitFor();
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was not reloaded");
});
