// A running VM's console, as an operator: the VM page offers "Console",
// which opens noVNC on the WebSocket AccountDB relays to Proxmox (pvesim's
// RFB server), authenticates with the VNC password of the ticket's answer
// and draws the framebuffer: pvesim's solid #1e3a5f with the guest's name
// in white. Disconnect closes it.

import assert from "node:assert/strict";
import { answerDialog, fixtureVM, rowWith, scenario, until } from "./harness.mjs";

scenario("open a running VM's console, see its framebuffer, disconnect", async (s) => {
  const page = await s.signedIn("operator");
  const row = rowWith(page, fixtureVM);
  await row.getByText("running").waitFor();
  await row.getByRole("link", { name: fixtureVM }).click();
  await page.getByRole("heading", { name: fixtureVM }).waitFor();

  await page.getByRole("link", { name: "Console", exact: true }).click();
  await page.locator('.view-head .badge[data-state="connected"]').waitFor();
  const canvas = page.locator("#console-screen canvas");
  await canvas.waitFor({ state: "attached" });

  // The framebuffer arrives after the handshake: its background colour at a
  // corner, and white text somewhere (not a blank canvas).
  const pixels = () =>
    page.evaluate(() => {
      const c = document.querySelector("#console-screen canvas");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let white = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255) {
          white++;
        }
      }
      return { corner: [d[0], d[1], d[2]], white, width: c.width, height: c.height };
    });
  await until("the framebuffer to be drawn", async () => (await pixels()).white > 0);
  const seen = await pixels();
  assert.deepEqual(seen.corner, [0x1e, 0x3a, 0x5f], "the guest's background colour");
  assert.equal(`${seen.width}x${seen.height}`, "640x400", "the guest's screen size");

  await page.getByRole("button", { name: "Disconnect" }).click();
  await page.locator('.view-head .badge[data-state="disconnected"]').waitFor();
});

// A container's console is xterm.js speaking Proxmox's terminal protocol
// through the relay: type a command, read its output. The container is the
// scenario's own and is deleted at the end (the quota scenarios count).
scenario("open a container's terminal, type a command, read its output", async (s) => {
  const page = await s.signedIn("vm_admin");
  const name = `ct-${Date.now().toString(36)}`;
  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.locator("form").filter({ hasText: "New VM or container" });
  await form.locator('input[name="name"]').fill(name);
  await form.getByLabel("Kind").selectOption("lxc");
  await form.locator('select[name="template"] option[data-name="debian-12-ct"]').waitFor({ state: "attached" });
  await form.getByLabel("Template").selectOption({ label: "debian-12-ct (debian)" });
  await form.getByLabel("Cores").fill("1");
  await form.getByLabel("Memory (MiB)").fill("512");
  await form.getByLabel("Disk (GB)").fill("8");
  await form.getByRole("button", { name: "Create" }).click();
  const row = rowWith(page, name);
  await row.locator(".status .badge", { hasText: "running" }).waitFor();
  await row.getByRole("link", { name }).click();
  await page.getByRole("heading", { name }).waitFor();

  await page.getByRole("link", { name: "Console", exact: true }).click();
  await page.locator('.view-head .badge[data-state="connected"]').waitFor();
  const rows = page.locator("#console-screen .xterm-rows");
  await until("the shell prompt", async () => (await rows.innerText()).includes(`root@${name}:~#`));
  await page.locator("#console-screen .xterm").click();
  await page.keyboard.type("echo relayed-through-accountdb");
  await page.keyboard.press("Enter");
  await until("the command's output", async () => /\nrelayed-through-accountdb\s*\n/.test(await rows.innerText()));

  await page.getByRole("button", { name: "Disconnect" }).click();
  await page.locator('.view-head .badge[data-state="disconnected"]').waitFor();
  await page.getByRole("link", { name: "← Back to the VM" }).click();
  const asked = answerDialog(page, true);
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await asked;
  await page.locator(".view-head .status .badge", { hasText: "deleted" }).waitFor();
});
