// The console's entry point: sign-in, the header with the user and their
// permissions, and hash routing to the views. What is shown follows the
// permissions of GET /v1/users/me; the API enforces them regardless.

import { api, ApiError, hasSession, login, logout, setSignedOutHandler } from "./api.js";
import { badge, busy, field, h, mount, problemBox, showFormProblem } from "./dom.js";
import { vmsView, vmView } from "./vms.js";
import { auditView, clustersView, sessionsView, tenantsView, usersView } from "./admin.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// The sections, in navigation order, with the permission each needs.
const sections = [
  { path: "vms", label: "Virtual machines", perm: "vm:read", view: vmsView },
  { path: "users", label: "Users", perm: "user:read", view: usersView },
  { path: "tenants", label: "Tenants", perm: "tenant:manage", view: tenantsView },
  { path: "clusters", label: "Clusters", perm: "cluster:manage", view: clustersView },
  { path: "audit", label: "Audit log", perm: "audit:read", view: auditView },
  { path: "sessions", label: "Sessions", perm: null, view: sessionsView },
];

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

function showLogin(message) {
  stopView();
  me = null;
  topbar.hidden = true;
  document.title = "Sign in · AccountDB";
  const slot = h("div", { class: "slot" }, message ? h("div", { class: "notice" }, message) : null);
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(submit, async () => {
          try {
            await login(email.value.trim(), password.value);
            password.value = "";
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
  );
  mount(main, h("div", { class: "login-wrap" }, form));
  email.focus();
}

function renderHeader() {
  topbar.hidden = false;
  mount(
    nav,
    sections
      .filter((s) => can(s.perm))
      .map((s) => h("a", { href: `#/${s.path}`, "data-section": s.path }, s.label)),
  );
  const perms = h("details", { class: "perms" }, h("summary", {}, `${me.permissions.length} permissions`), h("div", { class: "chips" }, me.permissions.map((p) => badge(p, "perm"))));
  const signOut = h(
    "button",
    {
      type: "button",
      class: "ghost",
      onclick: async () => {
        await busy(signOut, async () => {
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
    h("div", { class: "user" }, h("strong", {}, me.display_name || me.email), h("span", { class: "muted small" }, me.email)),
    h("div", { class: "chips" }, me.roles.map((r) => badge(r, "role"))),
    perms,
    signOut,
  );
}

function route() {
  if (!me) {
    return;
  }
  stopView();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  let section = sections.find((s) => s.path === parts[0]);
  if (!section) {
    section = sections.find((s) => can(s.perm));
    location.replace(`#/${section.path}`);
    return;
  }
  for (const a of nav.querySelectorAll("a")) {
    a.classList.toggle("active", a.dataset.section === section.path);
  }
  const ctx = { me, can, refreshMe };
  const view = h("section", { class: "view" });
  mount(main, view);
  document.title = `${section.label} · AccountDB`;
  if (!can(section.perm)) {
    mount(view, h("h2", {}, section.label), h("div", { class: "problem" }, `You need the ${section.perm} permission to see this page.`));
    return;
  }
  if (section.path === "vms" && parts[1]) {
    cleanup = vmView(view, ctx, decodeURIComponent(parts[1]));
  } else {
    cleanup = section.view(view, ctx);
  }
}

async function refreshMe() {
  me = await api("GET", "/v1/users/me");
  renderHeader();
}

async function start() {
  try {
    await refreshMe();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin("Your session has ended. Please sign in again.");
      return;
    }
    mount(main, h("section", { class: "view" }, problemBox(err)));
    return;
  }
  route();
}

setSignedOutHandler((message) => showLogin(message));
window.addEventListener("hashchange", route);
if (hasSession()) {
  start();
} else {
  showLogin();
}
