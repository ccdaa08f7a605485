// Administration views: users (tenant admins), tenants and clusters
// (platform admins), the audit log (auditors) and the caller's sessions.

import { assistantPanel } from "./assistant.js";
import { api, ApiError, forget, listAll, newKey } from "./api.js";
import { act, actorLabel, ago, badge, busy, createSubmitter, field, formatTime, h, listLoader, mount, problemBox, shortId, showFormProblem, table, toast, toggle, viewHead } from "./dom.js";

const ROLES = [
  ["viewer", "read VMs"],
  ["operator", "power VMs"],
  ["vm_admin", "create, configure and delete VMs"],
  ["tenant_admin", "manage the tenant's users"],
  ["auditor", "read the audit log"],
  ["platform_admin", "manage tenants and clusters"],
];

/** Roles the caller may hand out: platform_admin only by one. */
function grantableRoles(ctx) {
  return ROLES.filter(([r]) => r !== "platform_admin" || ctx.me.roles.includes("platform_admin"));
}

function roleChecks(ctx, selected) {
  return h(
    "fieldset",
    { class: "roles" },
    h("legend", {}, "Roles"),
    grantableRoles(ctx).map(([r, what]) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "roles", value: r, checked: selected.includes(r) }), h("span", {}, r), h("small", { class: "muted" }, what)),
    ),
  );
}

function checkedRoles(form) {
  return [...form.querySelectorAll('input[name="roles"]:checked')].map((el) => el.value);
}

// ---- users ----

export function usersView(view, ctx) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });
  const platform = ctx.can("tenant:manage");
  const tenantPicker = platform ? h("select", { "aria-label": "Tenant" }, h("option", { value: "" }, "my tenant (platform)")) : null;
  const query = () => (tenantPicker && tenantPicker.value ? `/v1/users?tenant_id=${encodeURIComponent(tenantPicker.value)}` : "/v1/users");

  const rolesEditor = (u) => {
    const slot = h("div", { class: "slot span" });
    const save = h("button", { type: "submit", class: "small primary" }, "Save roles");
    const form = h(
      "form",
      {
        class: "roles-editor",
        onsubmit: async (ev) => {
          ev.preventDefault();
          await busy(save, async () => {
            try {
              await api("PUT", `/v1/users/${encodeURIComponent(u.id)}/roles`, { roles: checkedRoles(form) }, { idempotencyKey: newKey() });
              toast(`Roles of ${u.email} changed`);
              await load();
            } catch (err) {
              showFormProblem(form, slot, err);
            }
          });
        },
      },
      roleChecks(ctx, u.roles),
      slot,
      save,
    );
    return h("details", {}, h("summary", {}, "Change roles"), form);
  };

  const row = (u) => {
    const buttons = [];
    if (ctx.can("user:manage") && u.id !== ctx.me.id) {
      const disabled = u.status === "disabled";
      const b = h("button", { type: "button", class: disabled ? "small" : "small danger" }, disabled ? "Enable" : "Disable");
      b.addEventListener("click", () => {
        if (!disabled && !window.confirm(`Disable ${u.email}? Their sessions stop working.`)) {
          return;
        }
        act(
          b,
          actionSlot,
          `${u.email} ${disabled ? "enabled" : "disabled"}`,
          () => api("POST", `/v1/users/${encodeURIComponent(u.id)}/${disabled ? "enable" : "disable"}`, undefined, { idempotencyKey: newKey() }),
          load,
        );
      });
      buttons.push(b);
    }
    return h(
      "tr",
      { class: u.status === "disabled" ? "gone" : "" },
      h("td", {}, h("strong", {}, u.display_name), u.id === ctx.me.id ? h("span", { class: "muted small" }, " (you)") : null, h("div", { class: "muted small" }, u.email)),
      h("td", {}, h("div", { class: "chips" }, (u.roles || []).map((r) => badge(r, "role")))),
      h("td", {}, badge(u.status)),
      h("td", { title: formatTime(u.created_at) }, ago(u.created_at)),
      h("td", {}, h("div", { class: "actions" }, buttons, ctx.can("role:assign") && u.id !== ctx.me.id ? rolesEditor(u) : null)),
    );
  };

  const load = async () => {
    try {
      const users = await listAll(query());
      mount(list, table(["User", "Roles", "Status", "Created", ""], users.map(row), "No users."));
      mount(loadSlot);
    } catch (err) {
      mount(loadSlot, problemBox(err));
    }
  };

  let form = null;
  if (ctx.can("user:manage")) {
    const slot = h("div", { class: "slot span" });
    const submit = h("button", { type: "submit", class: "primary" }, "Create user");
    form = h(
      "form",
      {
        class: "card form-grid",
        ...createSubmitter({
          submit,
          slot,
          path: () => `/v1/users${tenantPicker && tenantPicker.value ? `?tenant_id=${encodeURIComponent(tenantPicker.value)}` : ""}`,
          body: (f) => ({
            email: f.elements.email.value.trim(),
            display_name: f.elements.display_name.value.trim(),
            password: f.elements.password.value,
            roles: checkedRoles(f),
          }),
          done: async (body) => {
            toast(`${body.email} created`);
            form.hidden = true;
            await load();
          },
        }),
      },
      h("h3", { class: "span" }, "New user"),
      slot,
      field("Email", h("input", { name: "email", type: "email", required: true, maxlength: 254, autocomplete: "off" })),
      field("Display name", h("input", { name: "display_name", required: true, maxlength: 100, autocomplete: "off" })),
      field("Initial password", h("input", { name: "password", type: "password", required: true, minlength: 12, maxlength: 256, autocomplete: "new-password" }), "at least 12 characters"),
      h("div", { class: "span" }, roleChecks(ctx, ["viewer"])),
      h("div", { class: "span buttons" }, submit),
    );
  }

  if (tenantPicker) {
    tenantPicker.addEventListener("change", load);
    listAll("/v1/tenants")
      .then((tenants) => {
        for (const t of tenants) {
          tenantPicker.append(h("option", { value: t.id }, t.name));
        }
      })
      .catch((err) => mount(loadSlot, problemBox(err)));
  }

  mount(
    view,
    viewHead("Users", tenantPicker, form ? toggle("New user", form) : null),
    form,
    loadSlot,
    actionSlot,
    list,
  );
  load();
  return () => {};
}

// ---- tenants ----

function usage(used, max, unit = "") {
  const pct = max > 0 ? Math.min(100, Math.round((used / max) * 100)) : 0;
  return h(
    "div",
    { class: "usage", title: `${used}${unit} of ${max}${unit}` },
    h("span", {}, `${used} / ${max}${unit}`),
    h("meter", { min: 0, max: 100, low: 70, high: 90, optimum: 0, value: pct }),
  );
}

export function tenantsView(view, ctx) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });

  const row = (t) => {
    const suspended = t.status === "suspended";
    const b = h("button", { type: "button", class: suspended ? "small" : "small danger" }, suspended ? "Resume" : "Suspend");
    b.addEventListener("click", async () => {
      if (!suspended && !window.confirm(`Suspend ${t.name}? Its users will be signed out and cannot sign in until it is resumed.`)) {
        return;
      }
      await act(
        b,
        actionSlot,
        `${t.name} ${suspended ? "resumed" : "suspended"}`,
        () => api("POST", `/v1/tenants/${encodeURIComponent(t.id)}/${suspended ? "resume" : "suspend"}`, undefined, { idempotencyKey: newKey() }),
        load,
      );
    });
    const q = t.quota || {};
    const u = t.usage || {};
    return h(
      "tr",
      {},
      h("td", {}, h("strong", {}, t.name), h("div", { class: "muted small" }, h("code", {}, shortId(t.id)))),
      h("td", {}, badge(t.status)),
      h("td", {}, usage(u.vms || 0, q.max_vms || 0)),
      h("td", {}, usage(u.cores || 0, q.max_cores || 0)),
      h("td", {}, usage(u.memory_mb || 0, q.max_memory_mb || 0, " MiB")),
      h("td", {}, usage(u.disk_gb || 0, q.max_disk_gb || 0, " GB")),
      h("td", { title: formatTime(t.created_at) }, ago(t.created_at)),
      h("td", {}, b),
    );
  };

  const load = async () => {
    try {
      const tenants = await listAll("/v1/tenants");
      mount(list, table(["Tenant", "Status", "VMs", "Cores", "Memory", "Disk", "Created", ""], tenants.map(row), "No tenants."));
      mount(loadSlot);
    } catch (err) {
      mount(loadSlot, problemBox(err));
    }
  };

  const slot = h("div", { class: "slot span" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create tenant");
  const num = (name, value) => h("input", { name, type: "number", min: 0, value, required: true });
  const form = h(
    "form",
    {
      class: "card form-grid",
      ...createSubmitter({
        submit,
        slot,
        path: () => "/v1/tenants",
        body: (form) => {
          const f = form.elements;
          return {
            name: f.name.value.trim(),
            quota: {
              max_vms: Number(f.max_vms.value),
              max_cores: Number(f.max_cores.value),
              max_memory_mb: Number(f.max_memory_mb.value),
              max_disk_gb: Number(f.max_disk_gb.value),
              // Empty: the defaults (10 snapshots per VM, four times the disk quota of backups).
              ...(f.max_snapshots_per_vm.value ? { max_snapshots_per_vm: Number(f.max_snapshots_per_vm.value) } : {}),
              ...(f.max_backups_gb.value ? { max_backups_gb: Number(f.max_backups_gb.value) } : {}),
            },
          };
        },
        done: async (body) => {
          toast(`${body.name} created`);
          form.hidden = true;
          await load();
        },
      }),
    },
    h("h3", { class: "span" }, "New tenant"),
    slot,
    h("div", { class: "span" }, field("Name", h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" }))),
    field("Max VMs", num("max_vms", 10)),
    field("Max cores", num("max_cores", 32)),
    field("Max memory (MiB)", num("max_memory_mb", 65536)),
    field("Max disk (GB)", num("max_disk_gb", 1000)),
    field("Max snapshots per VM", h("input", { name: "max_snapshots_per_vm", type: "number", min: 1, placeholder: "10" })),
    field("Max backups (GB)", h("input", { name: "max_backups_gb", type: "number", min: 1, placeholder: "4 × max disk" })),
    h("div", { class: "span buttons" }, submit),
  );

  mount(view, viewHead("Tenants", toggle("New tenant", form)), form, loadSlot, actionSlot, list);
  load();
  return () => {};
}

// ---- clusters ----

// backupStorageForm chooses the Proxmox storage a cluster's VM backups go
// to (a storage with content "backup", such as an NFS share every node
// mounts).
function backupStorageForm(c, onDone) {
  const slot = h("div", { class: "slot" });
  const storage = h("input", { name: "backup_storage", value: c.backup_storage || "local", required: true, autocomplete: "off", spellcheck: "false" });
  const save = h("button", { type: "submit", class: "small" }, "Save");
  return h(
    "form",
    {
      class: "inline backup-storage",
      onsubmit: (ev) => {
        ev.preventDefault();
        act(save, slot, `Backups of ${c.name} go to ${storage.value.trim()}`,
          () => api("PUT", `/v1/clusters/${encodeURIComponent(c.id)}/backup-storage`, { storage: storage.value.trim() }, { idempotencyKey: newKey() }),
          onDone);
      },
    },
    field("Backup storage", storage),
    save,
    slot,
  );
}

export function clustersView(view) {
  const loadSlot = h("div", { class: "slot" });
  const list = h("div");

  const load = async () => {
    try {
      const clusters = await listAll("/v1/clusters");
      mount(loadSlot);
      mount(
        list,
        clusters.length
          ? clusters.map((c) =>
              h(
                "div",
                { class: "card" },
                h("div", { class: "view-head" }, h("h3", {}, c.name), c.insecure_tls ? badge("insecure TLS", "failed") : null),
                h("p", { class: "muted small" }, h("code", {}, c.api_url), ` · token ${c.token_id} · registered ${formatTime(c.created_at)}`),
                backupStorageForm(c, load),
                table(
                  ["Node", "Online", "Cores", "Memory used", "Disk used"],
                  (c.nodes || []).map((n) =>
                    h(
                      "tr",
                      {},
                      h("td", {}, n.name),
                      h("td", {}, badge(n.online ? "online" : "offline")),
                      h("td", {}, n.cores),
                      h("td", {}, usage(n.memory_mb - n.free_memory_mb, n.memory_mb, " MiB")),
                      h("td", {}, usage(n.disk_gb - n.free_disk_gb, n.disk_gb, " GB")),
                    ),
                  ),
                  "No nodes reported yet.",
                ),
              ),
            )
          : h("p", { class: "muted" }, "No clusters registered."),
      );
    } catch (err) {
      mount(loadSlot, problemBox(err));
    }
  };

  const slot = h("div", { class: "slot span" });
  const submit = h("button", { type: "submit", class: "primary" }, "Register cluster");
  const form = h(
    "form",
    {
      class: "card form-grid",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = form.elements;
        const body = {
          name: f.name.value.trim(),
          api_url: f.api_url.value.trim(),
          token_id: f.token_id.value.trim(),
          token_secret: f.token_secret.value,
          tls_fingerprint: f.tls_fingerprint.value.trim(),
        };
        await busy(submit, async () => {
          try {
            await api("POST", "/v1/clusters", body, { idempotencyKey: newKey() });
            toast(`${body.name} registered`);
            form.reset();
            showFormProblem(form, slot, null);
            form.hidden = true;
            await load();
          } catch (err) {
            showFormProblem(form, slot, err);
          }
        });
      },
    },
    h("h3", { class: "span" }, "Register a Proxmox VE cluster"),
    slot,
    field("Name", h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" })),
    field("API URL", h("input", { name: "api_url", type: "url", required: true, placeholder: "https://pve.example:8006/api2/json" })),
    field("Token id", h("input", { name: "token_id", required: true, placeholder: "accountdb@pve!console", autocomplete: "off" })),
    field("Token secret", h("input", { name: "token_secret", type: "password", required: true, minlength: 8, autocomplete: "off" }), "sealed before it is stored; never shown again"),
    field(
      "TLS fingerprint",
      h("input", { name: "tls_fingerprint", autocomplete: "off", spellcheck: "false", placeholder: "AB:CD:… (SHA-256)" }),
      "for a self-signed certificate: its SHA-256, as `pvenode cert info` prints it; empty to verify against trusted CAs",
    ),
    h("div", { class: "span buttons" }, submit),
  );

  mount(view, viewHead("Clusters", toggle("Register cluster", form)), form, loadSlot, list);
  load();
  return () => {};
}

// ---- audit ----

// position, when set (#/audit/<position>, a cited event's link), starts the
// list at that event and marks it.
export function auditView(view, ctx, position) {
  const from = /^\d{1,19}$/.test(position || "") ? position : null;
  const loadSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });
  const type = h("input", { type: "search", placeholder: "event type, e.g. vm_create_requested", "aria-label": "Event type" });
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  let events = [];

  const render = () =>
    mount(
      list,
      table(
        ["Position", "Recorded", "Event", "Stream", "Actor", "From"],
        events.map((e) =>
          h(
            "tr",
            { id: `event-${e.position}`, class: from !== null && String(e.position) === from ? "cited" : "" },
            h("td", { class: "num" }, e.position),
            h("td", {}, formatTime(e.recorded_at)),
            h("td", {}, h("code", {}, e.type)),
            h("td", { title: e.stream_id }, h("code", {}, e.stream_id)),
            h("td", { title: e.actor_id || "" }, actorLabel(e.actor_id, ctx.me)),
            h("td", {}, (e.metadata && e.metadata.client_ip) || ""),
          ),
        ),
        "No events match.",
      ),
    );

  const load = async (append) => {
    const q = new URLSearchParams({ limit: "100" });
    if (type.value.trim()) {
      q.set("type", type.value.trim());
    }
    if (append && cursor) {
      q.set("cursor", cursor);
    } else if (from !== null) {
      q.set("from_position", from);
    }
    try {
      const page = await api("GET", `/v1/audit?${q}`);
      events = append ? events.concat(page.items || []) : page.items || [];
      cursor = page.next_cursor;
      more.hidden = !cursor;
      mount(loadSlot);
      render();
      const cited = from !== null && !append ? document.getElementById(`event-${from}`) : null;
      if (cited) {
        cited.scrollIntoView({ block: "center" });
      }
    } catch (err) {
      mount(loadSlot, err instanceof ApiError && err.status === 404 ? h("div", { class: "notice" }, "This server does not offer the audit log API (GET /v1/audit).") : problemBox(err));
    }
  };
  type.addEventListener("change", () => load(false));
  more.addEventListener("click", () => busy(more, () => load(true)));

  // Ask (assistant.js): cited events link to this page, started at them.
  const ask = assistantPanel({
    title: "Ask",
    path: "/v1/assistant/ask",
    body: (question) => ({ question }),
    placeholder: "e.g. why did web-1 fail last night?",
    button: "Ask",
    required: true,
    citeLink: (pos, label) => h("a", { href: `#/audit/${pos}`, class: "citation" }, label),
  });
  mount(
    view,
    viewHead("Audit log"),
    ask,
    from !== null ? h("p", { class: "muted small" }, `From event #${from}. `, h("a", { href: "#/audit" }, "Show the whole log")) : null,
    h("div", { class: "toolbar" }, type),
    loadSlot,
    list,
    more,
  );
  load(false);
  return () => {};
}

// ---- sessions ----

export function sessionsView(view) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });

  const row = (s) => {
    const b = h("button", { type: "button", class: "small danger" }, s.current ? "Revoke (sign out)" : "Revoke");
    b.addEventListener("click", async () => {
      if (s.current && !window.confirm("This is the session you are using: revoking it signs you out. Continue?")) {
        return;
      }
      await busy(b, async () => {
        try {
          await api("DELETE", `/v1/sessions/${encodeURIComponent(s.id)}`);
          if (s.current) {
            forget();
            location.hash = "";
            location.reload();
            return;
          }
          mount(actionSlot);
          toast("Session revoked");
          await load();
        } catch (err) {
          mount(actionSlot, problemBox(err));
        }
      });
    });
    return h(
      "tr",
      { class: s.current ? "current" : "" },
      h("td", {}, formatTime(s.created_at), s.current ? h("span", {}, " ", badge("this session", "running")) : null),
      h("td", { title: formatTime(s.last_seen_at) }, ago(s.last_seen_at)),
      h("td", {}, s.ip),
      h("td", { class: "ua" }, s.user_agent),
      h("td", {}, b),
    );
  };

  const load = listLoader({ list, slot: loadSlot, path: "/v1/sessions", headers: ["Signed in", "Last seen", "IP", "Browser", ""], row, empty: "No sessions." });

  mount(view, viewHead("Sessions"), h("p", { class: "muted" }, "Where you are signed in. Revoking a session makes its refresh token stop working."), loadSlot, actionSlot, list);
  load();
  return () => {};
}
