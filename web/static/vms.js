// Virtual machines and containers: the list (refreshed every 2 s), the
// create form, power actions, resize, snapshots, delete and a VM's history.

import { assistantPanel } from "./assistant.js";
import { api, ApiError, expectPosition, follow, listAll, newKey } from "./api.js";
import { actorLabel, ago, badge, busy, createSubmitter, field, formatTime, h, mount, problemBox, showFormProblem, table, toast, toggle } from "./dom.js";
import { actionButtons, allows, kindLabel, loadVMActions } from "./vmactions.js";
import { accessFacts, accessFields, changeAccessForm, mayAsk, poolField, rebuildForm } from "./vm_access.js";
import { backupsCard, snapshotsCard } from "./vm_backups.js";

const POLL_MS = 2000; // while the live feed is down
const LIVE_POLL_MS = 30000; // while it is up: a safety net only
const LIVE_DEBOUNCE_MS = 150;
const STATUSES = ["provisioning", "stopped", "starting", "running", "stopping", "deleting", "deleted", "failed"];

function memory(mb) {
  return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024} GiB` : `${mb} MiB`;
}

function statusBadge(vm) {
  return h(
    "span",
    { class: "status" },
    badge(vm.status),
    vm.pending_action ? h("span", { class: "pending", title: "awaiting the Proxmox agent" }, `${vm.pending_action}…`) : null,
  );
}

/**
 * Poller runs fn now, again shortly after each event of the live feed
 * (GET /v1/events) that relevant(event) accepts, and on a timer as a safety
 * net: every POLL_MS while the feed is down, LIVE_POLL_MS while it is up.
 * Only while the view lives and the tab is visible. onLive(up) reports the
 * feed's state.
 */
function poller(fn, relevant = () => true, onLive = () => {}) {
  let stopped = false;
  let timer = null;
  let soonTimer = null;
  let live = false;
  let running = false;
  let again = false; // asked for while fn ran: run once more right after
  const tick = async () => {
    clearTimeout(timer);
    timer = null;
    if (stopped) {
      return;
    }
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      if (!document.hidden) {
        await fn();
      }
    } finally {
      running = false;
    }
    if (stopped) {
      return;
    }
    if (again) {
      again = false;
      tick();
      return;
    }
    timer = setTimeout(tick, live ? LIVE_POLL_MS : POLL_MS);
  };
  const now = () => {
    tick();
  };
  // A burst of events (a create is several) reloads once.
  const soon = () => {
    if (soonTimer === null) {
      soonTimer = setTimeout(() => {
        soonTimer = null;
        now();
      }, LIVE_DEBOUNCE_MS);
    }
  };
  const onVisible = () => {
    if (!document.hidden) {
      now();
    }
  };
  const stopFollowing = follow(
    "/v1/events",
    (ev) => {
      if (relevant(ev)) {
        if (ev.id) {
          expectPosition("/v1/vms", ev.id); // reload once the read model has it
        }
        soon();
      }
    },
    (up) => {
      if (up !== live) {
        live = up;
        onLive(up);
        soon(); // what happened while the feed was down
      }
    },
  );
  document.addEventListener("visibilitychange", onVisible);
  tick();
  return {
    now,
    stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(soonTimer);
      stopFollowing();
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}

function createForm(ctx, onCreated, onCancel) {
  const slot = h("div", { class: "slot span" });
  const name = h("input", { name: "name", required: true, maxlength: 63, pattern: "[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?", placeholder: "web-1", autocomplete: "off" });
  const kind = h("select", { name: "kind" }, h("option", { value: "qemu" }, "VM (qemu)"), h("option", { value: "lxc" }, "Container (lxc)"));
  const template = h("select", { name: "template", required: true });
  const cores = h("input", { name: "cores", type: "number", min: 1, max: 128, value: 1, required: true });
  const mem = h("input", { name: "memory_mb", type: "number", min: 64, step: 64, value: 1024, required: true });
  const disk = h("input", { name: "disk_gb", type: "number", min: 1, value: 10, required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Create");
  const access = accessFields(kind);
  const pool = poolField(template);
  let templates = [];

  const fillTemplates = () => {
    const offered = templates.filter((t) => t.kind === kind.value);
    mount(
      template,
      offered.length ? null : h("option", { value: "" }, "no templates of this kind"),
      offered.map((t, i) => h("option", { value: String(i), "data-name": t.name, "data-cluster": t.cluster_id }, t.os ? `${t.name} (${t.os})` : t.name)),
    );
    pool.refresh();
  };
  kind.addEventListener("change", fillTemplates);
  api("GET", "/v1/templates")
    .then((page) => {
      templates = page.items || [];
      fillTemplates();
    })
    .catch((err) => mount(slot, problemBox(err)));

  const form = h(
    "form",
    {
      class: "card form-grid",
      ...createSubmitter({
        submit,
        slot,
        path: () => "/v1/vms",
        body: () => {
          const opt = template.selectedOptions[0];
          const body = {
            name: name.value.trim(),
            kind: kind.value,
            template: opt && opt.dataset.name ? opt.dataset.name : "",
            cores: Number(cores.value),
            memory_mb: Number(mem.value),
            disk_gb: Number(disk.value),
          };
          if (opt && opt.dataset.cluster) {
            body.cluster_id = opt.dataset.cluster;
          }
          const network = pool.network();
          if (network) {
            body.network = network;
          }
          const cloudInit = access.body(kind.value);
          if (cloudInit) {
            body.cloud_init = cloudInit;
          }
          return body;
        },
        done: (body) => {
          access.clearSecret();
          toast(`${body.name} is being created`);
          fillTemplates();
          onCreated();
        },
      }),
    },
    h("h3", { class: "span" }, "New VM or container"),
    slot,
    field("Name", name, "lower-case letters, digits and hyphens"),
    field("Kind", kind),
    field("Template", template),
    field("Cores", cores),
    field("Memory (MiB)", mem),
    field("Disk (GB)", disk),
    pool.field,
    access.section,
    h("div", { class: "span buttons" }, submit, h("button", { type: "button", class: "ghost", onclick: onCancel }, "Cancel")),
  );
  return form;
}

export function vmsView(view, ctx) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const status = h("select", { "aria-label": "Status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s)));
  const search = h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter by name" });
  const showDeleted = h("input", { type: "checkbox" });
  const counter = h("span", { class: "muted small" });
  const freshness = h("span", { class: "muted small", title: "VM events arrive over GET /v1/events" }, "refreshes every 2 s");
  const tbody = h("tbody");
  const rows = new Map(); // id → {tr, sig}
  let form = null;
  let newButton = null;
  let poll = null;

  if (ctx.can("vm:create")) {
    form = createForm(
      ctx,
      () => {
        form.hidden = true;
        poll.now();
      },
      () => {
        form.hidden = true;
      },
    );
    newButton = toggle("New VM", form);
  }

  const rowFor = (vm) =>
    h(
      "tr",
      { class: vm.status === "deleted" ? "gone" : "" },
      h(
        "td",
        {},
        h("a", { href: `#/vms/${encodeURIComponent(vm.id)}`, class: "strong" }, vm.name),
        h("div", { class: "muted small" }, `${kindLabel(vm.kind)} · ${vm.template || "no template"}`),
        vm.last_error ? h("div", { class: "error small" }, vm.last_error) : null,
      ),
      h("td", {}, statusBadge(vm)),
      h("td", {}, vm.node || h("span", { class: "muted" }, "—"), vm.vmid ? h("div", { class: "muted small" }, `VMID ${vm.vmid}`) : null),
      h("td", {}, `${vm.cores} vCPU · ${memory(vm.memory_mb)} · ${vm.disk_gb} GB`),
      h("td", { class: "ago", title: formatTime(vm.updated_at) }, ago(vm.updated_at)),
      h("td", {}, actionButtons(vm, ctx, () => poll.now(), actionSlot)),
    );

  const render = (items) => {
    const wanted = search.value.trim().toLowerCase();
    const shown = items.filter((vm) => (showDeleted.checked || vm.status !== "deleted") && (!wanted || vm.name.toLowerCase().includes(wanted)));
    const seen = new Set();
    let changedOrder = tbody.children.length !== shown.length;
    shown.forEach((vm, i) => {
      seen.add(vm.id);
      const sig = JSON.stringify([vm.version, vm.status, vm.pending_action, vm.updated_at, vm.node, vm.vmid, vm.last_error]);
      const row = rows.get(vm.id);
      if (!row) {
        rows.set(vm.id, { tr: rowFor(vm), sig });
        changedOrder = true;
      } else if (row.sig !== sig) {
        const tr = rowFor(vm);
        row.tr.replaceWith(tr);
        rows.set(vm.id, { tr, sig });
      }
      const tr = rows.get(vm.id).tr;
      const when = tr.querySelector(".ago");
      if (when) {
        when.textContent = ago(vm.updated_at);
      }
      if (tbody.children[i] !== tr) {
        changedOrder = true;
      }
    });
    for (const id of [...rows.keys()]) {
      if (!seen.has(id)) {
        rows.get(id).tr.remove();
        rows.delete(id);
      }
    }
    if (changedOrder || !shown.length) {
      mount(tbody, shown.map((vm) => rows.get(vm.id).tr));
      if (!shown.length) {
        const deleted = items.filter((vm) => vm.status === "deleted").length;
        let text = ctx.can("vm:create") ? "No VMs yet. Create one with New VM." : "No VMs yet.";
        if (wanted || status.value) {
          text = "No VM matches the filter.";
        } else if (deleted && !showDeleted.checked) {
          text = `No VMs. ${deleted} deleted ${deleted === 1 ? "VM is" : "VMs are"} hidden.`;
        }
        tbody.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, text)));
      }
    }
    const running = items.filter((vm) => vm.status === "running").length;
    counter.textContent = `${shown.length} shown · ${running} running`;
  };

  let last = [];
  const load = async () => {
    try {
      await loadVMActions();
      last = await listAll(status.value ? `/v1/vms?status=${encodeURIComponent(status.value)}` : "/v1/vms");
      render(last);
      mount(loadSlot);
    } catch (err) {
      mount(loadSlot, problemBox(err));
    }
  };
  status.addEventListener("change", () => poll.now());
  search.addEventListener("input", () => render(last));
  showDeleted.addEventListener("change", () => render(last));

  mount(
    view,
    h("div", { class: "view-head" }, h("h2", {}, "Virtual machines"), counter, h("div", { class: "grow" }), newButton),
    form,
    h("div", { class: "toolbar" }, search, status, h("label", { class: "check" }, showDeleted, "show deleted"), freshness),
    loadSlot,
    actionSlot,
    h(
      "div",
      { class: "table-wrap" },
      h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Status", "Node", "Size", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))), tbody),
    ),
  );
  poll = poller(load, (ev) => ev.type.startsWith("vm_"), (up) => {
    freshness.textContent = up ? "live" : "refreshes every 2 s";
  });
  return () => poll.stop();
}

function resizeForm(ctx, getVM, onDone) {
  const slot = h("div", { class: "slot span" });
  const cores = h("input", { name: "cores", type: "number", min: 1, max: 128 });
  const mem = h("input", { name: "memory_mb", type: "number", min: 64, step: 64 });
  const disk = h("input", { name: "disk_gb", type: "number", min: 1 });
  const submit = h("button", { type: "submit", class: "primary" }, "Resize");
  let dirty = false;
  const form = h(
    "form",
    {
      class: "card form-grid three",
      oninput: () => {
        dirty = true;
      },
      onsubmit: async (ev) => {
        ev.preventDefault();
        const vm = getVM();
        const body = {};
        if (Number(cores.value) !== vm.cores) {
          body.cores = Number(cores.value);
        }
        if (Number(mem.value) !== vm.memory_mb) {
          body.memory_mb = Number(mem.value);
        }
        if (Number(disk.value) !== vm.disk_gb) {
          body.disk_gb = Number(disk.value);
        }
        if (!Object.keys(body).length) {
          mount(slot, h("div", { class: "notice" }, "Nothing to change."));
          return;
        }
        await busy(submit, async () => {
          try {
            await api("PATCH", `/v1/vms/${encodeURIComponent(vm.id)}`, body, { idempotencyKey: newKey() });
            toast(`Resize requested for ${vm.name}`);
            dirty = false;
            showFormProblem(form, slot, null);
            onDone();
          } catch (err) {
            showFormProblem(form, slot, err);
          }
        });
      },
    },
    h("h3", { class: "span" }, "Resize"),
    slot,
    field("Cores", cores),
    field("Memory (MiB)", mem),
    field("Disk (GB)", disk, "disks only grow"),
    h("div", { class: "span buttons" }, submit),
  );
  return {
    form,
    update(vm) {
      if (!dirty) {
        cores.value = vm.cores;
        mem.value = vm.memory_mb;
        disk.value = vm.disk_gb;
        disk.min = vm.disk_gb;
      }
      submit.disabled = !allows(vm, "resize");
    },
  };
}

function historyTable(events, me) {
  const rows = events.map((e) =>
    h(
      "tr",
      { id: `event-${e.position}` },
      h("td", { class: "num" }, e.stream_version),
      h("td", { title: e.recorded_at }, formatTime(e.recorded_at)),
      h("td", {}, h("code", {}, e.type)),
      h("td", { title: e.actor_id || "" }, actorLabel(e.actor_id, me)),
      h("td", {}, h("code", { class: "data" }, JSON.stringify(e.data))),
    ),
  );
  return table(["#", "Recorded", "Event", "Actor", "Data"], rows, "No events.");
}

// showHistoryRow scrolls to and marks the history row of event pos,
// without changing the hash (which would route away).
function showHistoryRow(ev, pos) {
  ev.preventDefault();
  const row = document.getElementById(`event-${pos}`);
  if (row) {
    row.classList.add("cited");
    row.scrollIntoView({ block: "center" });
  }
}

export function vmView(view, ctx, id) {
  const path = `/v1/vms/${encodeURIComponent(id)}`;
  const title = h("h2", {}, "VM");
  const statusSlot = h("span");
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const facts = h("dl", { class: "facts" });
  const actions = h("div");
  const history = h("div", { class: "table-wrap" });
  let vm = null;
  let historyVersion = -1;
  let poll = null;
  const refresh = () => poll.now();
  const resize = ctx.can("vm:config") ? resizeForm(ctx, () => vm, refresh) : null;
  // vm_backups.js: snapshots and backups, each read from its own list.
  const snaps = ctx.can("vm:snapshot") ? snapshotsCard(ctx, () => vm, refresh) : null;
  const backups = ctx.can("vm:snapshot") ? backupsCard(ctx, () => vm, refresh) : null;
  // Shown once the action table says the user may ask for them.
  const access = changeAccessForm(ctx, () => vm, refresh);
  const rebuild = rebuildForm(ctx, () => vm, refresh);
  access.form.hidden = rebuild.form.hidden = true;

  const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v === "" || v === null || v === undefined ? h("span", { class: "muted" }, "—") : v)];
  const load = async () => {
    try {
      await loadVMActions();
      vm = await api("GET", path);
    } catch (err) {
      mount(loadSlot, err instanceof ApiError && err.status === 404 ? h("div", { class: "problem" }, "This VM does not exist.") : problemBox(err));
      if (err instanceof ApiError && err.status === 404) {
        poll.stop();
      }
      return;
    }
    mount(loadSlot);
    title.textContent = vm.name;
    document.title = `${vm.name} · AccountDB`;
    mount(statusSlot, statusBadge(vm));
    mount(
      facts,
      fact("ID", h("code", {}, vm.id)),
      fact("Kind", kindLabel(vm.kind)),
      fact("Template", vm.template),
      fact("Size", `${vm.cores} vCPU · ${memory(vm.memory_mb)} · ${vm.disk_gb} GB disk`),
      fact("Node", vm.node),
      fact("VMID", vm.vmid || ""),
      fact("Cluster", vm.cluster_id ? h("code", {}, vm.cluster_id) : ""),
      fact("Created", formatTime(vm.created_at)),
      fact("Updated", `${formatTime(vm.updated_at)} (${ago(vm.updated_at)})`),
      fact("Version", vm.version),
      ...accessFacts(vm, fact),
      vm.last_error ? fact("Last error", h("span", { class: "error" }, vm.last_error)) : null,
    );
    mount(
      actions,
      actionButtons(vm, ctx, refresh, actionSlot),
      ctx.can("vm:console") && vm.status === "running"
        ? h("a", { class: "button console-link", href: `#/vms/${encodeURIComponent(vm.id)}/console` }, "Console")
        : null,
    );
    if (resize) {
      resize.update(vm);
    }
    if (snaps) {
      await Promise.all([snaps.update(vm), backups.update(vm)]);
    }
    access.form.hidden = !mayAsk(ctx, "configure");
    rebuild.form.hidden = !mayAsk(ctx, "rebuild");
    access.update(vm);
    rebuild.update(vm);
    if (vm.version !== historyVersion) {
      try {
        const events = await listAll(`${path}/history`);
        historyVersion = vm.version;
        mount(history, historyTable(events, ctx.me));
      } catch (err) {
        mount(history, problemBox(err));
      }
    }
  };

  // Explain (assistant.js): a cited event links to the audit log for those
  // who may read it, else to its row in the history below.
  const explain = assistantPanel({
    title: "Explain",
    path: `${path}/explain`,
    body: (q) => (q ? { question: q } : {}),
    placeholder: "Ask about this VM, or leave empty to explain its history",
    button: "Explain",
    citeLink: (pos, label) =>
      ctx.can("audit:read")
        ? h("a", { href: `#/audit/${pos}`, class: "citation" }, label)
        : h("a", { href: `#event-${pos}`, class: "citation", onclick: (ev) => showHistoryRow(ev, pos) }, label),
  });

  mount(
    view,
    h("a", { href: "#/vms", class: "back" }, "← All VMs"),
    h("div", { class: "view-head" }, title, statusSlot),
    loadSlot,
    actionSlot,
    h("div", { class: "card" }, facts, actions),
    resize ? h("div", { class: "columns" }, resize.form) : null,
    snaps ? snaps.form : null,
    backups ? backups.form : null,
    h("div", { class: "columns" }, access.form, rebuild.form),
    explain,
    h("h3", {}, "History"),
    h("p", { class: "muted small" }, "Every change to this VM is an event, oldest first."),
    history,
  );
  const stream = `vm-${id}`;
  poll = poller(load, (ev) => {
    try {
      return JSON.parse(ev.data).stream_id === stream;
    } catch {
      return false;
    }
  });
  return () => poll.stop();
}
