// The user's own settings: SSH keys (added, refused when malformed, removed).

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { allowHTTPErrors, answerDialog, openAccountPage, rowWith, scenario, until } from "./harness.mjs";

// An ed25519 public key in authorized_keys form, and its fingerprint as
// ssh-keygen -l prints it, computed here from the key's wire bytes (not by
// the code under test).
function ed25519Key(comment) {
  const der = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
  const raw = der.subarray(der.length - 32);
  const field = (b) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(raw)]);
  const fingerprint = "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
  return { line: `ssh-ed25519 ${blob.toString("base64")} ${comment}`, fingerprint };
}

scenario("a user adds an SSH key, a malformed one is refused on the field, and removes it", async (s) => {
  const page = await s.signedIn("viewer");
  await openAccountPage(page, "SSH keys");
  await page.getByRole("heading", { name: "SSH keys" }).waitFor();

  const name = `laptop-${Date.now().toString(36)}`;
  const key = ed25519Key("me@laptop");
  await page.getByRole("button", { name: "Add SSH key" }).click();
  const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "New SSH key" }) });

  // A DSA-looking line is not a key we accept: the problem names the field.
  allowHTTPErrors(page, 400);
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Public key").fill("ssh-dss AAAAB3NzaC1kc3MAAACBAP not-a-key");
  await form.getByRole("button", { name: "Add key" }).click();
  await form.getByRole("alert").waitFor();
  assert.equal(await form.getByLabel("Public key").getAttribute("aria-invalid"), "true", "the key field is marked");
  assert.equal(await rowWith(page, name).count(), 0, "nothing was added");

  await form.getByLabel("Public key").fill(key.line);
  await form.getByRole("button", { name: "Add key" }).click();
  await page.getByText(`${name} added`).waitFor();
  const row = rowWith(page, name);
  await row.getByText(key.fingerprint).waitFor();
  await row.getByText("ssh-ed25519").waitFor();

  const asked = answerDialog(page, true);
  await row.getByRole("button", { name: "Remove" }).click();
  assert.match(await asked, new RegExp(`Remove the key ${name}\\?`));
  await page.getByText(`${name} removed`).waitFor();
  await until("the key to leave the list", async () => (await rowWith(page, name).count()) === 0);
});
