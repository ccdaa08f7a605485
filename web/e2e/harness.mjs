// The browser scenarios' harness. web/e2e's Go test boots the system and
// runs `node --test` on *.test.mjs with E2E_* variables saying where the
// console is and who may sign in. scenario() wraps node:test's test(): each
// scenario gets fresh browser contexts (no shared session), fails on any
// uncaught page error or console error, and on failure leaves a screenshot
// of every page it opened in $E2E_OUT.

import { after, test } from "node:test";
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { chromium } from "playwright-core";

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: the browser scenarios run from web/e2e's Go test (go test ./web/e2e)`);
  }
  return v;
}

export const baseURL = required("E2E_BASE_URL");
export const accounts = JSON.parse(required("E2E_ACCOUNTS"));
export const fixtureVM = required("E2E_FIXTURE_VM");
export const poolName = required("E2E_POOL");
export const quotaCores = Number(required("E2E_QUOTA_CORES"));
const outDir = required("E2E_OUT");
const executablePath = required("E2E_CHROMIUM");
// E2E_SCREENSHOTS=always keeps a screenshot of every scenario's pages, to
// look at what the scenarios see; by default only failures leave one.
const alwaysScreenshot = process.env.E2E_SCREENSHOTS === "always";

// How long a locator waits for the page to show what a scenario expects:
// generous, for a loaded machine running the race detector (CI runs the whole
// suite at once on two cores, and a VM action travels API → relay → agent →
// pvesim → result → projector → feed).
const WAIT_MS = 60000;

// Chromium from Debian's package, never a downloaded build. The flags keep
// it from reaching for the network it does not have here.
const launchArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser = null;
async function theBrowser() {
  if (!browser) {
    // playwright gives each launch a fresh, temporary --user-data-dir.
    browser = await chromium.launch({ executablePath, headless: true, args: launchArgs });
  }
  return browser;
}
after(async () => {
  if (browser) {
    await browser.close();
  }
});

const fileName = basename(process.argv[1] || "scenario", ".test.mjs");
const slug = (s) => s.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 80);

// A network answer Chromium logs as a console error: the console shows the
// problem to the user, so a scenario that provokes one says which statuses
// it expects on which page (allowHTTPErrors).
const failedLoad = /^Failed to load resource: the server responded with a status of (\d{3})/;

/** One scenario's browser: its pages, what went wrong on them, and cleanup. */
class Scenario {
  constructor(name) {
    this.name = name;
    this.pages = [];
    this.contexts = [];
    this.problems = [];
  }

  /** A new page in a context of its own (its own sessionStorage). */
  async newPage() {
    const context = await (await theBrowser()).newContext({ baseURL, viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    this.contexts.push(context);
    const page = await context.newPage();
    const label = `page ${this.pages.length + 1}`;
    page.allowedStatuses = new Set();
    page.dialogAnswers = [];
    page.on("pageerror", (err) => this.problems.push(`${label}: uncaught error: ${err.stack || err}`));
    page.on("console", (msg) => {
      if (msg.type() !== "error") {
        return;
      }
      const m = failedLoad.exec(msg.text());
      if (m && page.allowedStatuses.has(Number(m[1]))) {
        return;
      }
      const where = msg.location();
      this.problems.push(`${label}: console error: ${msg.text()} (${where.url}:${where.lineNumber})`);
    });
    // A confirm() the scenario did not expect is a failure, not a silent
    // dismissal: answerDialog queues the answer to the next one.
    page.on("dialog", async (dialog) => {
      const answer = page.dialogAnswers.shift();
      if (!answer) {
        this.problems.push(`${label}: unexpected dialog: ${dialog.message()}`);
        await dialog.dismiss();
        return;
      }
      answer.resolve(dialog.message());
      await (answer.accept ? dialog.accept(answer.text) : dialog.dismiss());
    });
    this.pages.push(page);
    return page;
  }

  /** A new page signed in as the account (a role name, or "sessions"). */
  async signedIn(who) {
    const page = await this.newPage();
    await signIn(page, who);
    return page;
  }

  async screenshots(kind) {
    mkdirSync(outDir, { recursive: true });
    const saved = [];
    for (const [i, page] of this.pages.entries()) {
      if (page.isClosed()) {
        continue;
      }
      const path = join(outDir, `${slug(fileName)}--${slug(this.name)}--${kind}-page${i + 1}.png`);
      try {
        await page.screenshot({ path, fullPage: true });
        saved.push(path);
      } catch (err) {
        saved.push(`(no screenshot of page ${i + 1}: ${err.message})`);
      }
    }
    return saved;
  }

  async close() {
    for (const c of this.contexts) {
      await c.close().catch(() => {});
    }
  }
}

/**
 * scenario(name, async (s) => {...}) is a test: s.newPage() and
 * s.signedIn(role) open pages. It fails on an exception, an uncaught page
 * error, a console error or an unexpected dialog.
 */
export function scenario(name, fn) {
  test(name, async () => {
    const s = new Scenario(name);
    try {
      await fn(s);
      if (s.problems.length) {
        throw new Error(`the page reported problems:\n  ${s.problems.join("\n  ")}`);
      }
      if (alwaysScreenshot) {
        await s.screenshots("passed");
      }
    } catch (err) {
      const shots = await s.screenshots("failed");
      const problems = s.problems.length && !String(err.message).includes("the page reported problems") ? `\npage problems:\n  ${s.problems.join("\n  ")}` : "";
      err.message = `${err.message}${problems}\nscreenshots:\n  ${shots.join("\n  ") || "(no page open)"}`;
      throw err;
    } finally {
      await s.close();
    }
  });
}

/** Signs in through the form and waits for the console to show the user. */
export async function signIn(page, who) {
  const a = accounts[who];
  if (!a) {
    throw new Error(`no account ${who} in E2E_ACCOUNTS`);
  }
  await page.goto("/");
  await fillSignIn(page, a.email, a.password);
  await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
  await page.locator("#who").getByText(a.email).waitFor();
}

/** Fills the sign-in form and submits it. */
export async function fillSignIn(page, email, password) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Lets the page log failed loads with these statuses (expected problems). */
export function allowHTTPErrors(page, ...statuses) {
  for (const s of statuses) {
    page.allowedStatuses.add(s);
  }
}

/**
 * Queues the answer to the page's next confirm() or prompt(): accept (with
 * text, for a prompt) or dismiss. Returns a promise of the dialog's message.
 */
export function answerDialog(page, accept, text) {
  return new Promise((resolve) => page.dialogAnswers.push({ accept, text, resolve }));
}

/** The texts of the main navigation's links. */
export async function navLinks(page) {
  await page.locator("#nav a").first().waitFor();
  return (await page.locator("#nav a").allTextContents()).map((t) => t.trim());
}

/** Opens the account menu beside the user's name; returns its links. */
export async function openAccountMenu(page) {
  await page.locator("#who .account-menu summary").click();
  const links = page.locator("#who .user-menu a");
  await links.first().waitFor();
  return links;
}

/** The texts of the account menu's links (it is left open). */
export async function accountMenuLinks(page) {
  return (await (await openAccountMenu(page)).allTextContents()).map((t) => t.trim());
}

/** Opens one of the user's own pages from the account menu. */
export async function openAccountPage(page, label) {
  await openAccountMenu(page);
  await page.locator("#who .user-menu").getByRole("link", { name: label }).click();
}

/** The table row that mentions text (a VM's or a user's name). */
export function rowWith(page, text) {
  return page.locator("tbody tr").filter({ hasText: text });
}

/** Waits until fn() (a page query) returns something truthy. */
export async function until(what, fn, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) {
        return last;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
