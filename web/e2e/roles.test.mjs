// What each built-in role sees: the console shows only what the user's
// permissions (GET /v1/users/me) allow; the API enforces them regardless.

import assert from "node:assert/strict";
import { accountMenuLinks, fixtureVM, navLinks, openAccountMenu, rowWith, scenario } from "./harness.mjs";

const POWER = ["Start", "Shut down", "Reboot", "Stop"];

// Each role: its navigation, and whether its user gets the VM list's New VM
// button, the power buttons, Delete, and the VM page's Resize and Snapshots.
const roles = {
  viewer: { nav: ["Virtual machines"], newVM: false, power: false, del: false, resize: false, snapshots: false },
  operator: { nav: ["Virtual machines"], newVM: false, power: true, del: false, resize: false, snapshots: true },
  vm_admin: { nav: ["Virtual machines", "Backup schedules"], newVM: true, power: true, del: true, resize: true, snapshots: true },
  tenant_admin: { nav: ["Virtual machines", "Backup schedules", "Users", "Audit log"], newVM: true, power: true, del: true, resize: true, snapshots: true },
  auditor: { nav: ["Virtual machines", "Users", "Audit log"], newVM: false, power: false, del: false, resize: false, snapshots: false },
  platform_admin: {
    nav: ["Virtual machines", "Backup schedules", "Users", "Tenants", "Clusters", "Audit log"],
    newVM: true,
    power: true,
    del: true,
    resize: true,
    snapshots: true,
  },
};

async function buttonNames(scope) {
  return (await scope.getByRole("button").allTextContents()).map((t) => t.trim());
}

for (const [role, want] of Object.entries(roles)) {
  scenario(`${role} sees what the role allows`, async (s) => {
    const page = await s.signedIn(role);
    assert.deepEqual(await navLinks(page), want.nav, "navigation");
    // The header is one line at 1,280 px: the sections side by side, the
    // user's block beside them.
    const rows = await page.evaluate(() =>
      [...document.querySelectorAll("#nav a, #who > *")].map((el) => Math.round(el.getBoundingClientRect().bottom)),
    );
    const navBottom = rows[0];
    assert.ok(rows.every((bottom) => Math.abs(bottom - navBottom) < 24), `header in one line at 1280 px (bottoms ${rows})`);
    assert.equal(await page.locator("#who .badge.role").innerText(), role);
    // Every user's own pages are in the account menu, whatever the role.
    assert.deepEqual(await accountMenuLinks(page), ["SSH keys", "Sessions", "Two-factor", "API tokens"], "account menu");
    await page.keyboard.press("Escape");
    assert.equal(await page.locator("#who .account-menu").getAttribute("open"), null, "Escape closes the account menu");
    await openAccountMenu(page);
    await page.locator("main").click({ position: { x: 5, y: 5 } });
    assert.equal(await page.locator("#who .account-menu").getAttribute("open"), null, "a click elsewhere closes the account menu");

    await page.getByRole("heading", { name: "Virtual machines" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "New VM" }).count(), want.newVM ? 1 : 0, "New VM button");
    if (role === "platform_admin") {
      // A platform administrator's own tenant has no VMs; the tenants'
      // machines are behind their tenants.
      return;
    }
    const row = rowWith(page, fixtureVM);
    await row.getByText("running").waitFor();
    const inRow = await buttonNames(row);
    assert.deepEqual(inRow.filter((b) => POWER.includes(b)), want.power ? POWER : [], "power buttons");
    assert.equal(inRow.includes("Delete"), want.del, "Delete button");

    await row.getByRole("link", { name: fixtureVM }).click();
    await page.getByRole("heading", { name: fixtureVM }).waitFor();
    await page.getByRole("heading", { name: "History" }).waitFor();
    assert.equal(await page.getByRole("heading", { name: "Resize" }).count(), want.resize ? 1 : 0, "Resize form");
    assert.equal(await page.getByRole("heading", { name: "Snapshots" }).count(), want.snapshots ? 1 : 0, "Snapshots form");

    if (!want.nav.includes("Users")) {
      // Typed by hand, a hidden section says what is missing.
      await page.goto("/#/users");
      await page.getByText("You need the user:read permission to see this page.").waitFor();
    }
  });
}
