// Snapshots and backups on a VM's page, as a vm_admin: take two snapshots
// (the second's parent is the first), roll back through the confirmation
// (the VM is left stopped), delete one; back up, restore in place (a wrong
// name is refused, the right one restores), delete the backup. And the
// backup schedules page, as a tenant_admin: an invalid calendar is marked,
// a valid schedule listed, disabled and deleted.

import assert from "node:assert/strict";
import { allowHTTPErrors, answerDialog, rowWith, scenario, until } from "./harness.mjs";

async function createVM(page, name) {
  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.locator("form").filter({ hasText: "New VM or container" });
  await form.locator('input[name="name"]').fill(name);
  await form.locator('select[name="template"] option[data-name="debian-12"]').waitFor({ state: "attached" });
  await form.getByLabel("Template").selectOption({ label: "debian-12 (l26)" });
  await form.getByLabel("Cores").fill("1");
  await form.getByLabel("Memory (MiB)").fill("512");
  await form.getByLabel("Disk (GB)").fill("8");
  await form.getByRole("button", { name: "Create" }).click();
  const row = rowWith(page, name);
  await row.locator(".status .badge", { hasText: "running" }).waitFor();
  await row.getByRole("link", { name }).click();
  await page.getByRole("heading", { name }).waitFor();
}

scenario("snapshots and backups: take, roll back, restore, delete", async (s) => {
  const page = await s.signedIn("vm_admin");
  allowHTTPErrors(page, 422);
  const name = `bk-${Date.now().toString(36)}`;
  await createVM(page, name);
  const status = page.locator(".view-head .status .badge");

  const snapshots = page.locator("form").filter({ has: page.getByRole("heading", { name: "Snapshots" }) });
  const take = snapshots.getByRole("button", { name: "Take snapshot" });
  for (const [snap, description] of [["first", "clean install"], ["second", ""]]) {
    await until("the snapshot button to be enabled", () => take.isEnabled());
    await snapshots.getByLabel("Name").fill(snap);
    await snapshots.getByLabel("Description").fill(description);
    await take.click();
    await snapshots.locator(`tr[data-snapshot="${snap}"] .badge`, { hasText: "ready" }).waitFor();
  }
  const second = snapshots.locator('tr[data-snapshot="second"]');
  assert.equal((await second.locator("td").nth(1).innerText()).trim(), "first", "the second's parent");
  assert.match(await snapshots.locator('tr[data-snapshot="first"]').innerText(), /clean install/);

  // Roll back asks first and says the VM will be left stopped.
  const rollback = snapshots.locator('tr[data-snapshot="first"]').getByRole("button", { name: "Roll back" });
  await until("Roll back to be enabled", () => rollback.isEnabled());
  let asked = answerDialog(page, true);
  await rollback.click();
  assert.match(await asked, new RegExp(`Roll ${name} back to first\\? .*left stopped`));
  await status.filter({ hasText: "stopped" }).waitFor();

  const del = second.getByRole("button", { name: "Delete snapshot" });
  await until("Delete to be enabled", () => del.isEnabled());
  asked = answerDialog(page, false);
  await del.click();
  await asked;
  assert.equal(await second.count(), 1, "declined: still there");
  asked = answerDialog(page, true);
  await del.click();
  await asked;
  await second.waitFor({ state: "detached" });

  // A backup, then restored in place: the VM's name is the confirmation.
  const backups = page.locator("form").filter({ has: page.getByRole("heading", { name: "Backups" }) });
  const backUp = backups.getByRole("button", { name: "Back up now" });
  await until("Back up now to be enabled", () => backUp.isEnabled());
  await backups.getByLabel("Mode").selectOption("stop");
  await backups.getByLabel("Note").fill("before the change");
  await backUp.click();
  const row = backups.locator("tbody tr").filter({ hasText: "before the change" });
  await row.locator(".badge", { hasText: "available" }).waitFor();
  assert.match(await row.innerText(), /backup-nfs:backup\/vzdump-qemu-|local:backup\/vzdump-qemu-/);

  const restore = row.getByRole("button", { name: "Restore", exact: true });
  await until("Restore to be enabled", () => restore.isEnabled());
  asked = answerDialog(page, true, "not-the-name");
  await restore.click();
  assert.match(await asked, /Type the VM's name to confirm/);
  await backups.locator(".problem").filter({ hasText: "confirm_name" }).waitFor();
  asked = answerDialog(page, true, name);
  await restore.click();
  await asked;
  await page.getByText(`Restore of ${name} requested`).waitFor();
  await until("the restore in the history", async () => (await page.getByText("vm_restored").count()) > 0);
  await status.filter({ hasText: "stopped" }).waitFor();

  const delBackup = row.getByRole("button", { name: "Delete backup" });
  await until("the backup's Delete to be enabled", () => delBackup.isEnabled());
  asked = answerDialog(page, true);
  await delBackup.click();
  assert.match(await asked, /The archive is removed from storage/);
  await row.waitFor({ state: "detached" });
});

scenario("backup schedules: invalid calendar, create, disable, delete", async (s) => {
  const page = await s.signedIn("tenant_admin");
  allowHTTPErrors(page, 400);
  await page.getByRole("link", { name: "Backup schedules" }).click();
  await page.getByRole("heading", { name: "Backup schedules" }).waitFor();
  await page.getByRole("button", { name: "New schedule" }).click();
  const form = page.locator("form").filter({ hasText: "New backup schedule" });
  const name = `nightly-${Date.now().toString(36)}`;
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Calendar").fill("mon..fri 25:00");
  await form.getByLabel("Every VM of the tenant").check();
  await form.getByLabel("keep-last").fill("3");
  await form.getByRole("button", { name: "Create schedule" }).click();
  await form.locator('input[name="calendar"][aria-invalid="true"]').waitFor();
  await form.locator(".problem").filter({ hasText: "calendar" }).waitFor();

  await form.getByLabel("Calendar").fill("mon..fri 02:00");
  await form.getByRole("button", { name: "Create schedule" }).click();
  const row = page.locator(`tr[data-schedule="${name}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /mon\.\.fri 02:00/);
  assert.match(await row.innerText(), /every VM/);
  assert.match(await row.innerText(), /last 3/);

  await row.getByRole("button", { name: "Disable" }).click();
  await row.getByText("disabled").waitFor();
  const asked = answerDialog(page, true);
  await row.getByRole("button", { name: "Delete" }).click();
  assert.match(await asked, /Its backups stay/);
  await row.waitFor({ state: "detached" });
});

scenario("a platform admin gives a new tenant snapshot and backup limits", async (s) => {
  const page = await s.signedIn("platform_admin");
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByRole("button", { name: "New tenant" }).click();
  const form = page.locator("form").filter({ hasText: "New tenant" });
  const name = `limits-${Date.now().toString(36)}`;
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Max snapshots per VM").fill("5");
  await form.getByLabel("Max backups (GB)").fill("250");
  await form.getByRole("button", { name: "Create tenant" }).click();
  await page.getByText(`${name} created`).waitFor();
  await rowWith(page, name).waitFor();
});

scenario("a platform admin chooses a cluster's backup storage", async (s) => {
  const page = await s.signedIn("platform_admin");
  allowHTTPErrors(page, 400);
  await page.getByRole("link", { name: "Clusters" }).click();
  const form = page.locator("form.backup-storage").first();
  await form.waitFor();
  await form.getByLabel("Backup storage").fill("not a storage");
  await form.getByRole("button", { name: "Save" }).click();
  await form.locator(".problem").filter({ hasText: "backup_storage" }).waitFor();
  await form.getByLabel("Backup storage").fill("backup-nfs");
  await form.getByRole("button", { name: "Save" }).click();
  await page.getByText(/Backups of .* go to backup-nfs/).waitFor();
  await until("the saved storage shown", async () => (await page.locator("form.backup-storage input").first().inputValue()) === "backup-nfs");
});
