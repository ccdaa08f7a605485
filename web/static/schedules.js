// Backup schedules of the tenant: Proxmox-style calendar events ("mon..fri
// 02:00", "daily"), every VM or chosen ones, vzdump's mode and Proxmox's
// retention (keep-last, -daily, -weekly, -monthly). Changing them takes
// vm:delete, as retention deletes backups.

import { api, listAll, newKey } from "./api.js";
import { act, createSubmitter, field, formatTime, h, listLoader, mount, toast, toggle, viewHead } from "./dom.js";

const KEEPS = ["keep_last", "keep_daily", "keep_weekly", "keep_monthly"];

function retentionText(r) {
  const parts = KEEPS.filter((k) => r[k]).map((k) => `${k.replace("keep_", "")} ${r[k]}`);
  return parts.length ? parts.join(", ") : "keep all";
}

export function schedulesView(view, ctx) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });
  const mayChange = ctx.can("vm:delete");

  const row = (s) => {
    const remove = h("button", { type: "button", class: "small danger" }, "Delete");
    remove.addEventListener("click", () => {
      if (!window.confirm(`Delete the schedule ${s.name}? Its backups stay.`)) {
        return;
      }
      act(remove, actionSlot, `${s.name} deleted`, () => api("DELETE", `/v1/backup-schedules/${encodeURIComponent(s.id)}`, undefined, { idempotencyKey: newKey() }), load);
    });
    const flip = h("button", { type: "button", class: "small" }, s.enabled ? "Disable" : "Enable");
    flip.addEventListener("click", () =>
      act(flip, actionSlot, `${s.name} ${s.enabled ? "disabled" : "enabled"}`,
        () => api("PATCH", `/v1/backup-schedules/${encodeURIComponent(s.id)}`, { enabled: !s.enabled }, { idempotencyKey: newKey() }), load),
    );
    return h(
      "tr",
      { "data-schedule": s.name },
      h("td", {}, h("strong", {}, s.name)),
      h("td", {}, h("code", {}, s.calendar)),
      h("td", {}, s.all ? "every VM" : `${s.vm_ids.length} VM${s.vm_ids.length === 1 ? "" : "s"}`),
      h("td", {}, s.mode),
      h("td", {}, retentionText(s.retention)),
      h("td", {}, s.enabled ? (s.next_run_at ? formatTime(s.next_run_at) : "—") : h("span", { class: "muted" }, "disabled")),
      h("td", {}, s.last_run_at ? formatTime(s.last_run_at) : h("span", { class: "muted" }, "never")),
      h("td", {}, mayChange ? h("div", { class: "actions" }, flip, remove) : null),
    );
  };
  const load = listLoader({ list, slot: loadSlot, path: "/v1/backup-schedules",
    headers: ["Name", "Calendar", "VMs", "Mode", "Retention", "Next run", "Last run", ""], row, empty: "No backup schedules yet." });

  const vms = h("select", { name: "vm_ids", multiple: true, size: 5 });
  const all = h("input", { name: "all", type: "checkbox" });
  all.addEventListener("change", () => (vms.disabled = all.checked));
  const slot = h("div", { class: "slot span" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create schedule");
  const num = (name) => h("input", { name, type: "number", min: 0, max: 10000, placeholder: "0" });
  const form = h(
    "form",
    {
      class: "card form-grid",
      ...createSubmitter({
        submit,
        slot,
        path: () => "/v1/backup-schedules",
        body: (f) => {
          const retention = {};
          for (const k of KEEPS) {
            const v = Number(f.elements[k].value || 0);
            if (v) {
              retention[k] = v;
            }
          }
          const body = { name: f.elements.name.value.trim(), calendar: f.elements.calendar.value.trim(), mode: f.elements.mode.value, retention };
          if (all.checked) {
            body.all = true;
          } else {
            body.vm_ids = [...vms.selectedOptions].map((o) => o.value);
          }
          return body;
        },
        done: async (body) => {
          toast(`${body.name} created`);
          form.hidden = true;
          await load();
        },
      }),
    },
    h("h3", { class: "span" }, "New backup schedule"),
    slot,
    field("Name", h("input", { name: "name", required: true, maxlength: 63, autocomplete: "off", placeholder: "nightly" })),
    field("Calendar", h("input", { name: "calendar", required: true, autocomplete: "off", placeholder: "mon..fri 02:00" }),
      "Proxmox's format, in UTC: daily, weekly, sat 03:00, mon..fri 02:00, */30"),
    field("Mode", h("select", { name: "mode" }, ["snapshot", "suspend", "stop"].map((m) => h("option", { value: m }, m)))),
    field("Every VM of the tenant", all),
    h("div", { class: "span" }, field("VMs", vms)),
    ...KEEPS.map((k) => field(k.replace("_", "-"), num(k))),
    h("div", { class: "span buttons" }, submit),
  );
  listAll("/v1/vms")
    .then((items) => mount(vms, items.filter((v) => v.status !== "deleted").map((v) => h("option", { value: v.id }, v.name))))
    .catch(() => {});

  mount(
    view,
    viewHead("Backup schedules", mayChange ? toggle("New schedule", form) : null),
    h("p", { class: "muted" }, "Backups taken on a calendar, pruned as Proxmox prunes: a failed backup never makes an older one go."),
    mayChange ? form : null,
    loadSlot,
    actionSlot,
    list,
  );
  load();
  return () => {};
}
