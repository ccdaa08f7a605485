// The assistant (issue 18): "Explain" on a VM's page and "Ask" on the audit
// log, against the fake OpenAI-compatible model the world configures
// (world_test.go), whose answers cite the first event they were sent. A
// cited event links to the audit log, started at that event, or for a user
// without audit:read to its row in the VM's history.

import assert from "node:assert/strict";
import { fixtureVM, rowWith, scenario } from "./harness.mjs";

scenario("a viewer has a VM's history explained; its citation shows the event in the history", async (s) => {
  const page = await s.signedIn("viewer");
  await rowWith(page, fixtureVM).getByRole("link", { name: fixtureVM }).click();
  await page.getByRole("heading", { name: fixtureVM }).waitFor();
  const panel = page.locator("form.assistant");
  await panel.getByRole("heading", { name: "Explain" }).waitFor();
  await panel.getByRole("button", { name: "Explain" }).click();
  const answer = panel.locator(".assistant-answer");
  await answer.getByText(/According to the log/).waitFor();
  const cite = answer.locator("a.citation").first();
  await cite.waitFor();
  const label = await cite.innerText();
  assert.match(label, /^\[#\d+\]$/);
  assert.equal(await answer.getByText("[#999999999999]").count(), 1, "a position that was not sent stays plain text");
  assert.equal(await answer.locator("a.citation", { hasText: "999999999999" }).count(), 0, "and is no link");
  const pos = label.slice(2, -1);
  await cite.click();
  await page.locator(`tr#event-${pos}.cited`).waitFor();
  assert.match(page.url(), /#\/vms\//, "the viewer stays on the VM's page");
});

scenario("an auditor asks about the audit log and follows a citation to the event", async (s) => {
  const page = await s.signedIn("auditor");
  await page.goto("/#/audit");
  const panel = page.locator("form.assistant");
  await panel.getByRole("heading", { name: "Ask" }).waitFor();
  await panel.getByRole("textbox").fill("What happened to fixture-1?");
  await panel.getByRole("button", { name: "Ask" }).click();
  const cite = panel.locator(".assistant-answer a.citation").first();
  await cite.waitFor();
  await panel.locator(".assistant-citations").getByText("Cited events:").waitFor();
  const pos = (await cite.innerText()).slice(2, -1);
  await cite.click();
  await page.waitForURL(new RegExp(`#/audit/${pos}$`));
  const row = page.locator(`tr#event-${pos}.cited`);
  await row.waitFor();
  assert.equal(await page.locator("tbody tr").first().getAttribute("id"), `event-${pos}`, "the log starts at the cited event");
  await page.getByText(`From event #${pos}.`).waitFor();
  // The page re-rendered at the event; the question and its answer are still there.
  assert.equal(await panel.getByRole("textbox").inputValue(), "What happened to fixture-1?", "the question is kept");
  await panel.locator(".assistant-answer a.citation", { hasText: `#${pos}` }).first().waitFor();
  await panel.locator(".assistant-citations").getByText("Cited events:").waitFor();
});
