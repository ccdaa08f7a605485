// A VM's snapshots and backups on its page: the snapshot tree (take with a
// description and, for a running VM, its RAM; roll back; delete), and its
// backups (take with vzdump's mode and a note; restore in place, which
// asks for the VM's name, or into a new VM; delete). Every destructive
// step asks first.

import { api, listAll, newKey } from "./api.js";
import { act, badge, field, formatTime, h, mount, showFormProblem, submitForm, table, toast } from "./dom.js";
import { mayAsk } from "./vm_access.js";
import { allows } from "./vmactions.js";

const vmPath = (vm) => `/v1/vms/${encodeURIComponent(vm.id)}`;

function size(bytes) {
  if (!bytes) {
    return "—";
  }
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** The snapshots card: the list with its actions and the take form. */
export function snapshotsCard(ctx, getVM, onDone) {
  const slot = h("div", { class: "slot span" });
  const name = h("input", { name: "name", required: true, minlength: 2, maxlength: 40, pattern: "[A-Za-z][A-Za-z0-9_\\-]{1,39}", placeholder: "before-upgrade", autocomplete: "off" });
  const description = h("input", { name: "description", maxlength: 200, placeholder: "optional", autocomplete: "off" });
  const vmstate = h("input", { name: "vmstate", type: "checkbox" });
  const vmstateField = field("Include RAM", vmstate);
  const submit = h("button", { type: "submit", class: "primary" }, "Take snapshot");
  const list = h("div", { class: "table-wrap snapshots" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const vm = getVM();
        const body = { name: name.value.trim() };
        if (description.value.trim()) {
          body.description = description.value.trim();
        }
        if (vmstate.checked) {
          body.vmstate = true;
        }
        await submitForm(form, slot, submit, async () => {
          await api("POST", `${vmPath(vm)}/snapshots`, body, { idempotencyKey: newKey() });
          toast(`Snapshot ${body.name} requested`);
          name.value = description.value = "";
          vmstate.checked = false;
          await onDone();
        });
      },
    },
    h("h3", {}, "Snapshots"),
    list,
    slot,
    h("div", { class: "inline" }, field("Name", name), field("Description", description), vmstateField, submit),
  );
  const row = (vm, s) => {
    const rollback = h("button", { type: "button", class: "small", disabled: s.status !== "ready" || !allows(vm, "snapshot_rollback") }, "Roll back");
    const del = h("button", { type: "button", class: "small danger", disabled: s.status !== "ready" || !allows(vm, "snapshot_delete") }, "Delete snapshot");
    const base = `${vmPath(vm)}/snapshots/${encodeURIComponent(s.name)}`;
    rollback.addEventListener("click", async () => {
      const ram = s.vmstate ? "it resumes running" : "it is left stopped";
      if (!window.confirm(`Roll ${vm.name} back to ${s.name}? Changes since are lost; ${ram}.`)) {
        return;
      }
      await act(rollback, slot, `Rollback to ${s.name} requested`, () => api("POST", `${base}/rollback`, undefined, { idempotencyKey: newKey() }), onDone);
    });
    del.addEventListener("click", async () => {
      if (!window.confirm(`Delete snapshot ${s.name} of ${vm.name}?`)) {
        return;
      }
      await act(del, slot, `Deletion of ${s.name} requested`, () => api("DELETE", base, undefined, { idempotencyKey: newKey() }), onDone);
    });
    return h(
      "tr",
      { "data-snapshot": s.name },
      h("td", {}, h("code", {}, s.name)),
      h("td", {}, s.parent || h("span", { class: "muted" }, "—")),
      h("td", {}, s.description),
      h("td", { title: s.created_at }, formatTime(s.created_at)),
      h("td", {}, s.vmstate ? "yes" : "no"),
      h("td", {}, badge(s.status)),
      h("td", {}, h("div", { class: "actions" }, mayAsk(ctx, "snapshot_rollback") ? rollback : null, mayAsk(ctx, "snapshot_delete") ? del : null)),
    );
  };
  return {
    form,
    async update(vm) {
      try {
        const snaps = await listAll(`${vmPath(vm)}/snapshots`);
        mount(list, table(["Name", "Parent", "Description", "Taken", "RAM", "Status", ""], snaps.map((s) => row(vm, s)), "No snapshots."));
      } catch (err) {
        showFormProblem(form, slot, err);
      }
      submit.disabled = !allows(vm, "snapshot");
      // RAM is saved only for a running QEMU guest.
      vmstateField.hidden = vm.kind !== "qemu" || vm.status !== "running";
    },
  };
}

/** The backups card: the VM's backups with restore and delete, and the take form. */
export function backupsCard(ctx, getVM, onDone) {
  const slot = h("div", { class: "slot span" });
  const mode = h("select", { name: "mode" }, ["snapshot", "suspend", "stop"].map((m) => h("option", { value: m }, m)));
  const note = h("input", { name: "note", maxlength: 200, placeholder: "optional", autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "primary" }, "Back up now");
  const list = h("div", { class: "table-wrap backups" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const vm = getVM();
        const body = { mode: mode.value };
        if (note.value.trim()) {
          body.note = note.value.trim();
        }
        await submitForm(form, slot, submit, async () => {
          await api("POST", `${vmPath(vm)}/backups`, body, { idempotencyKey: newKey() });
          toast(`Backup of ${vm.name} requested`);
          note.value = "";
          await onDone();
        });
      },
    },
    h("h3", {}, "Backups"),
    list,
    slot,
    mayAsk(ctx, "backup") ? h("div", { class: "inline" }, field("Mode", mode), field("Note", note), submit) : null,
  );
  const row = (vm, b) => {
    const ready = b.status === "available";
    const restore = h("button", { type: "button", class: "small", disabled: !ready || !allows(vm, "restore") }, "Restore");
    const copy = h("button", { type: "button", class: "small" }, "Restore as new VM");
    const del = h("button", { type: "button", class: "small danger", disabled: !(ready || b.status === "failed") || !allows(vm, "backup_delete") }, "Delete backup");
    const base = `/v1/backups/${encodeURIComponent(b.id)}`;
    restore.addEventListener("click", async () => {
      const typed = window.prompt(`Restoring overwrites ${vm.name}'s disks with the backup of ${formatTime(b.created_at)} and leaves it stopped. Type the VM's name to confirm:`);
      if (typed === null) {
        return;
      }
      await act(restore, slot, `Restore of ${vm.name} requested`,
        () => api("POST", `${base}/restore`, { target: "in_place", confirm_name: typed }, { idempotencyKey: newKey() }), onDone);
    });
    copy.addEventListener("click", async () => {
      const name = window.prompt("Name of the new VM:", `${vm.name}-restored`);
      if (!name) {
        return;
      }
      await act(copy, slot, `Restore into ${name} requested`,
        () => api("POST", `${base}/restore`, { target: "new", name }, { idempotencyKey: newKey() }), onDone);
    });
    del.addEventListener("click", async () => {
      if (!window.confirm(`Delete the backup of ${formatTime(b.created_at)}? The archive is removed from storage.`)) {
        return;
      }
      await act(del, slot, "Backup deletion requested", () => api("DELETE", base, undefined, { idempotencyKey: newKey() }), onDone);
    });
    // Restoring into a new VM also creates one; it is offered only for an
    // available backup (it does not depend on this VM's state).
    const actions = [];
    if (mayAsk(ctx, "restore")) {
      actions.push(restore);
      if (ready && mayAsk(ctx, "create")) {
        actions.push(copy);
      }
    }
    if (mayAsk(ctx, "backup_delete")) {
      actions.push(del);
    }
    return h(
      "tr",
      { "data-backup": b.id },
      h("td", { title: b.created_at }, formatTime(b.created_at)),
      h("td", {}, badge(b.status)),
      h("td", {}, b.mode),
      h("td", {}, size(b.size_bytes)),
      h("td", {}, b.volume_id ? h("code", {}, b.volume_id) : b.error ? h("span", { class: "error" }, b.error) : h("span", { class: "muted" }, "—")),
      h("td", {}, b.note),
      h("td", {}, h("div", { class: "actions" }, actions)),
    );
  };
  return {
    form,
    async update(vm) {
      try {
        const items = await listAll(`${vmPath(vm)}/backups`);
        mount(list, table(["Taken", "Status", "Mode", "Size", "Archive", "Note", ""], items.map((b) => row(vm, b)), "No backups."));
      } catch (err) {
        showFormProblem(form, slot, err);
      }
      submit.disabled = !allows(vm, "backup");
    },
  };
}
