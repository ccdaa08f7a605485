// Identity in the console: two-factor enrolment with the QR code drawn in
// the browser and the code step at sign-in, API tokens from the user menu,
// and "Sign in with <provider>" through a real OpenID Connect provider.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { accounts, baseURL, fillSignIn, openAccountPage, rowWith, scenario } from "./harness.mjs";

const ssoProvider = process.env.E2E_SSO_PROVIDER;

// RFC 6238 (SHA-1, 6 digits, 30 s), as an authenticator app computes it.
function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of s.replace(/=+$/, "")) {
    bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) {
    out.push(parseInt(bits.slice(i, i + 8), 2));
  }
  return Buffer.from(out);
}

function totp(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 30000);

scenario("two-factor: enrol with the QR code, then sign in with a code", async (s) => {
  const page = await s.signedIn("mfa");
  await openAccountPage(page, "Two-factor");
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  await page.getByRole("button", { name: "Set up two-factor" }).click();
  const qr = page.getByRole("img", { name: "QR code of your two-factor secret" });
  await qr.waitFor();
  const modules = Number(await qr.getAttribute("data-modules"));
  assert.ok(modules >= 21 && (modules - 17) % 4 === 0, `a QR code has 17 + 4×version modules a side, not ${modules}`);
  assert.ok((await qr.locator("path").getAttribute("d")).length > 1000, "the QR code has dark modules");
  const secret = (await page.locator("code.totp-secret").innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  const step = currentStep();
  await page.getByLabel("Code from the app").fill(totp(secret, step));
  await page.getByRole("button", { name: "Turn on" }).click();
  const codes = page.getByRole("list", { name: "Recovery codes" }).locator("li");
  await codes.first().waitFor();
  assert.equal(await codes.count(), 10);
  await page.getByText("Two-factor authentication is on;").waitFor();

  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await fillSignIn(page, accounts.mfa.email, accounts.mfa.password);
  await page.getByLabel("Authentication code").fill(totp(secret, step + 1));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
  await page.locator("#who").getByText(accounts.mfa.email).waitFor();
});

scenario("API tokens: create one with some permissions, use it, revoke it", async (s) => {
  const page = await s.signedIn("tokens");
  await openAccountPage(page, "API tokens");
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  await page.getByLabel("Name").fill("ci-runner");
  await page.getByRole("checkbox", { name: "vm:read" }).check();
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.locator("code.token-secret").innerText()).trim();
  assert.match(secret, /^adb_[0-9A-Za-z]{42}$/);
  const row = rowWith(page, "ci-runner");
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(`${secret.slice(0, 12)}…`));
  assert.match(await row.innerText(), /never/);

  const use = await fetch(`${baseURL}/v1/vms`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(use.status, 200, "the token reads VMs");
  const power = await fetch(`${baseURL}/v1/users/me/tokens`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(power.status, 403, "a token cannot manage tokens");

  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByText("No API tokens.").waitFor();
  const after = await fetch(`${baseURL}/v1/vms`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(after.status, 401, "a revoked token stops at once");
});

scenario("single sign-on: Sign in with the provider lands in the console, signed in", async (s) => {
  assert.ok(ssoProvider, "E2E_SSO_PROVIDER is set by the Go test");
  const page = await s.newPage();
  await page.goto("/");
  await page.getByRole("link", { name: `Sign in with ${ssoProvider}` }).click();
  await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
  await page.locator("#who").getByText("jane.doe@example.com").waitFor();
  assert.equal(await page.locator("#who .badge.role").innerText(), "viewer");
  assert.ok(!page.url().includes("access_token"), `the tokens left the address bar: ${page.url()}`);
  await page.getByRole("heading", { name: "Virtual machines" }).waitFor();
});

scenario("a tenant that requires two-factor: its user without it may only enrol, then sees the console", async (s) => {
  const page = await s.newPage();
  await page.goto("/");
  await fillSignIn(page, accounts.enrol.email, accounts.enrol.password);
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  await page.getByText("Your organisation requires two-factor authentication").waitFor();
  assert.equal(await page.locator("#nav a").count(), 0, "no section but two-factor before enrolment");
  await page.goto("/#/vms");
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();

  await page.getByRole("button", { name: "Set up two-factor" }).click();
  const secret = (await page.locator("code.totp-secret").innerText()).trim();
  await page.getByLabel("Code from the app").fill(totp(secret, currentStep()));
  await page.getByRole("button", { name: "Turn on" }).click();
  await page.getByRole("list", { name: "Recovery codes" }).waitFor();
  await page.locator("#nav").getByRole("link", { name: "Virtual machines" }).click();
  await page.getByRole("heading", { name: "Virtual machines" }).waitFor();
});
