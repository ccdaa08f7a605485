// The console's entry point: sign-in, the header with the user and their
// permissions, and hash routing to the views. What is shown follows the
// permissions of GET /v1/users/me; the API enforces them regardless.

import { adoptSignOnFragment, api, ApiError, completeMFA, hasSession, login, logout, publicGet, setSignedOutHandler } from "./api.js";
import { badge, busy, field, h, mount, problemBox, showFormProblem } from "./dom.js";
import { vmsView, vmView } from "./vms.js";
import { auditView, clustersView, sessionsView, tenantsView, usersView } from "./admin.js";
import { sshKeysView } from "./account.js";
import { consoleView } from "./console.js";
import { schedulesView } from "./schedules.js";
import { securityView, tokensView } from "./security.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// The sections, in navigation order, with the permission each needs.
const sections = [
  { path: "vms", label: "Virtual machines", perm: "vm:read", view: vmsView },
  { path: "backup-schedules", label: "Backup schedules", perm: "vm:delete", view: schedulesView },
  { path: "users", label: "Users", perm: "user:read", view: usersView },
  { path: "tenants", label: "Tenants", perm: "tenant:manage", view: tenantsView },
  { path: "clusters", label: "Clusters", perm: "cluster:manage", view: clustersView },
  { path: "audit", label: "Audit log", perm: "audit:read", view: auditView },
];

// The user's own pages, in the account menu beside their name: every user
// has them, so they stay out of the sections, which then fit one line of
// the header at 1,280 px even for a platform administrator.
const menu = [
  { path: "ssh-keys", label: "SSH keys", perm: null, view: sshKeysView },
  { path: "sessions", label: "Sessions", perm: null, view: sessionsView },
  { path: "security", label: "Two-factor", perm: null, view: securityView },
  { path: "tokens", label: "API tokens", perm: null, view: tokensView },
];

// enrolmentOnly: the tenant requires two-factor and the user has none yet;
// the session reaches only the two-factor page until it is on.
let enrolmentOnly = false;

let me = null;
let cleanup = null;

function can(perm) {
  return perm === null || (me !== null && me.permissions.includes(perm));
}

function stopView() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
}

// A session that ended on its own (revoked, user disabled, expired) says so
// on the sign-in form. The reason survives a reload, because the 2 s refresh
// may have noticed the end just before the user pressed reload; a deliberate
// sign-out or the next sign-in forgets it.
const ENDED_KEY = "accountdb.session_ended";
const SESSION_ENDED = "Your session has ended. Please sign in again.";

function showSessionEnded() {
  sessionStorage.setItem(ENDED_KEY, "1");
  showLogin(SESSION_ENDED);
}

function showLogin(message) {
  stopView();
  me = null;
  topbar.hidden = true;
  document.title = "Sign in · AccountDB";
  const slot = h("div", { class: "slot" }, message ? h("div", { class: "notice" }, message) : null);
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const providers = h("div", { class: "providers" });
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(submit, async () => {
          try {
            const r = await login(email.value.trim(), password.value);
            sessionStorage.removeItem(ENDED_KEY);
            password.value = "";
            if (r.mfaToken) {
              showMFAStep(r.mfaToken);
              return;
            }
            await start();
          } catch (err) {
            showFormProblem(form, slot, err);
            password.select();
          }
        });
      },
    },
    h("div", { class: "login-brand" }, h("img", { src: "/static/favicon.svg", alt: "", width: 40, height: 40 }), h("h1", {}, "AccountDB")),
    h("p", { class: "muted" }, "Sign in to manage your virtual machines and containers."),
    slot,
    field("Email", email),
    field("Password", password),
    submit,
    providers,
  );
  mount(main, h("div", { class: "login-wrap" }, form));
  email.focus();
  showProviders(providers);
}

// "Sign in with <provider>" for each configured OpenID Connect provider: a
// plain link, the server redirects to the provider and back.
async function showProviders(slot) {
  try {
    const list = await publicGet("/v1/auth/providers");
    mount(
      slot,
      list.items.length ? h("p", { class: "muted or" }, "or") : null,
      list.items.map((p) => h("a", { class: "button wide sso", href: `/v1/auth/oidc/${encodeURIComponent(p.id)}/start` }, `Sign in with ${p.name}`)),
    );
  } catch {
    mount(slot); // no providers to offer: the password form still works
  }
}

// The second step of a sign-in with two-factor on.
function showMFAStep(mfaToken) {
  const slot = h("div", { class: "slot" });
  const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6, required: true, autofocus: true });
  const recovery = h("input", { name: "recovery_code", autocomplete: "off" });
  const recoveryField = field("Recovery code", recovery);
  recoveryField.hidden = true;
  const useRecovery = h("button", { type: "button", class: "ghost small" }, "Use a recovery code");
  useRecovery.addEventListener("click", () => {
    recoveryField.hidden = false;
    codeField.hidden = true;
    code.required = false;
    recovery.required = true;
    useRecovery.hidden = true;
    recovery.focus();
  });
  const codeField = field("Authentication code", code);
  const submit = h("button", { type: "submit", class: "primary wide" }, "Verify");
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(submit, async () => {
          try {
            await completeMFA(mfaToken, code.value.trim(), recoveryField.hidden ? "" : recovery.value.trim());
            await start();
          } catch (err) {
            showFormProblem(form, slot, err);
            code.select();
          }
        });
      },
    },
    h("div", { class: "login-brand" }, h("img", { src: "/static/favicon.svg", alt: "", width: 40, height: 40 }), h("h1", {}, "AccountDB")),
    h("p", { class: "muted" }, "Enter the code from your authenticator app."),
    slot,
    codeField,
    recoveryField,
    submit,
    useRecovery,
    h("button", { type: "button", class: "ghost small", onclick: () => showLogin() }, "Start over"),
  );
  mount(main, h("div", { class: "login-wrap" }, form));
  code.focus();
}

function renderHeader() {
  topbar.hidden = false;
  mount(
    nav,
    enrolmentOnly
      ? []
      : sections.filter((s) => can(s.perm)).map((s) => h("a", { href: `#/${s.path}`, "data-section": s.path }, s.label)),
  );
  const accountMenu = h(
    "details",
    { class: "account-menu" },
    h("summary", {}, "Account"),
    h(
      "div",
      { class: "menu-panel" },
      h(
        "nav",
        { class: "user-menu", "aria-label": "Your account" },
        menu.filter((s) => !enrolmentOnly || s.path === "security").map((s) => h("a", { href: `#/${s.path}`, "data-section": s.path }, s.label)),
      ),
      h("div", { class: "muted small" }, me.permissions.length === 1 ? "1 permission" : `${me.permissions.length} permissions`),
      h("div", { class: "chips perms" }, me.permissions.map((p) => badge(p, "perm"))),
    ),
  );
  const signOut = h(
    "button",
    {
      type: "button",
      class: "ghost",
      onclick: async () => {
        await busy(signOut, async () => {
          // Stop the view's refresh first: a poll sent while the session
          // ends would be answered 401.
          stopView();
          try {
            await logout();
          } finally {
            location.hash = "";
            showLogin("You have signed out.");
          }
        });
      },
    },
    "Sign out",
  );
  mount(
    who,
    h(
      "div",
      { class: "user" },
      h("strong", { title: me.display_name || me.email }, me.display_name || me.email),
      h("span", { class: "muted small", title: me.email }, me.email),
    ),
    h("div", { class: "chips" }, me.roles.map((r) => badge(r, "role"))),
    accountMenu,
    signOut,
  );
}

function route() {
  if (!me) {
    return;
  }
  stopView();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (enrolmentOnly && parts[0] !== "security") {
    location.replace("#/security");
    return;
  }
  let section = sections.find((s) => s.path === parts[0]) || menu.find((s) => s.path === parts[0]);
  if (!section) {
    section = sections.find((s) => can(s.perm));
    location.replace(`#/${section.path}`);
    return;
  }
  for (const a of [...nav.querySelectorAll("a"), ...who.querySelectorAll(".user-menu a")]) {
    a.classList.toggle("active", a.dataset.section === section.path);
  }
  const accountMenu = who.querySelector(".account-menu");
  if (accountMenu) {
    // The menu closes once the page it opened is shown.
    accountMenu.open = false;
    accountMenu.classList.toggle("active", menu.includes(section));
  }
  const ctx = { me, can, refreshMe, onEnrolled };
  const view = h("section", { class: "view" });
  mount(main, view);
  document.title = `${section.label} · AccountDB`;
  if (!can(section.perm)) {
    mount(view, h("h2", {}, section.label), h("div", { class: "problem" }, `You need the ${section.perm} permission to see this page.`));
    return;
  }
  if (section.path === "vms" && parts[1] && parts[2] === "console") {
    cleanup = consoleView(view, ctx, decodeURIComponent(parts[1]));
  } else if (section.path === "vms" && parts[1]) {
    cleanup = vmView(view, ctx, decodeURIComponent(parts[1]));
  } else {
    // A view may take one more part of the path (#/audit/<position>).
    cleanup = section.view(view, ctx, parts[1] ? decodeURIComponent(parts[1]) : undefined);
  }
}

async function refreshMe() {
  me = await api("GET", "/v1/users/me");
  const totp = await api("GET", "/v1/users/me/totp").catch(() => null);
  enrolmentOnly = Boolean(totp && totp.required && !totp.enabled);
  renderHeader();
}

// Two-factor has just been turned on: an enrolment-only session is now a
// full one, with the user's permissions.
async function onEnrolled() {
  if (enrolmentOnly) {
    await refreshMe();
  }
}

async function start() {
  try {
    await refreshMe();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showSessionEnded();
      return;
    }
    mount(main, h("section", { class: "view" }, problemBox(err)));
    return;
  }
  route();
}

setSignedOutHandler((message) => (message === SESSION_ENDED ? showSessionEnded() : showLogin(message)));
window.addEventListener("hashchange", route);
// The account menu closes, as menus do, on a click elsewhere or on one of
// its links (the page may be the one already shown), and on Escape (which
// gives the focus back to its button).
document.addEventListener("click", (e) => {
  const open = who.querySelector(".account-menu[open]");
  if (open && (!open.contains(e.target) || e.target.closest(".user-menu a"))) {
    open.open = false;
  }
});
document.addEventListener("keydown", (e) => {
  const open = who.querySelector(".account-menu[open]");
  if (e.key === "Escape" && open) {
    open.open = false;
    open.querySelector("summary").focus();
  }
});
if (adoptSignOnFragment() || hasSession()) {
  start();
} else {
  showLogin(sessionStorage.getItem(ENDED_KEY) ? SESSION_ENDED : undefined);
}
