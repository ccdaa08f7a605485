// The VM actions as the API serves them (GET /v1/vm-actions, the domain's
// own table): which exist, their routes and permissions, and the statuses
// each may be asked in. The console keeps only its words for them.

import { api, newKey } from "./api.js";
import { act, h } from "./dom.js";

/** How the console names a guest of kind ("qemu" or "lxc"). */
export function kindLabel(kind) {
  return kind === "lxc" ? "container" : "VM";
}

// The console's words for the actions it shows as buttons, in the order it
// shows them. An action the table adds gets a button named after it.
const WORDING = {
  start: { label: "Start" },
  shutdown: { label: "Shut down", confirm: () => "Shut down {name} (ACPI, graceful)?" },
  reboot: { label: "Reboot", confirm: () => "Reboot {name}?" },
  stop: { label: "Stop", confirm: () => "Stop {name} immediately? Unsaved guest data may be lost." },
  delete: { label: "Delete", danger: true, confirm: (vm) => `Delete ${kindLabel(vm.kind)} {name}? Its disk and snapshots are destroyed.` },
};

let table = null; // the served actions, once loaded
let loading = null;

/** Loads the action table once; a failed load is tried again next time. */
export async function loadVMActions() {
  if (!table) {
    loading = loading || api("GET", "/v1/vm-actions").finally(() => (loading = null));
    table = (await loading).items;
  }
  return table;
}

/**
 * Whether vm may be asked for the action named name now: no action pending
 * and its status one the action is allowed from. False before the table is
 * loaded and for an action the table lacks.
 */
export function allows(vm, name) {
  const a = (table || []).find((x) => x.name === name);
  return Boolean(a) && !vm.pending_action && a.allowed_from.includes(vm.status);
}

/**
 * The route and permission of the action named name, for forms that send
 * a body ({method, path with {id} filled in, permission}); null before the
 * table is loaded or for an action it lacks.
 */
export function actionRoute(vm, name) {
  const a = (table || []).find((x) => x.name === name);
  return a ? { method: a.method, path: a.path.replace("{id}", encodeURIComponent(vm.id)), permission: a.permission } : null;
}

/** The table's actions a button can ask for: no body, on an existing VM. */
function buttonActions() {
  const rank = (a) => {
    const i = Object.keys(WORDING).indexOf(a.name);
    return i < 0 ? Infinity : i;
  };
  // Only routes on the VM itself: a snapshot's or a backup's actions have
  // their own buttons (vm_backups.js).
  const onVM = (a) => a.path.startsWith("/v1/vms/{id}") && !a.path.slice("/v1/vms/{id}".length).includes("{");
  return (table || []).filter((a) => !a.body && a.allowed_from.length && onVM(a)).sort((a, b) => rank(a) - rank(b));
}

/** The buttons a user may press on vm, given their permissions. */
export function actionButtons(vm, ctx, onDone, slot) {
  const buttons = [];
  for (const a of buttonActions()) {
    if (!ctx.can(a.permission)) {
      continue;
    }
    const words = WORDING[a.name] || { label: a.name.charAt(0).toUpperCase() + a.name.slice(1) };
    const b = h("button", { type: "button", class: words.danger ? "small danger" : "small", disabled: !allows(vm, a.name) }, words.label);
    b.addEventListener("click", async () => {
      const question = a.disruptive ? (words.confirm ? words.confirm(vm) : `${words.label} {name}?`) : "";
      if (question && !window.confirm(question.replace("{name}", vm.name))) {
        return;
      }
      const path = a.path.replace("{id}", encodeURIComponent(vm.id));
      await act(b, slot, `${words.label} requested for ${vm.name}`, () => api(a.method, path, undefined, { idempotencyKey: newKey() }), onDone);
    });
    buttons.push(b);
  }
  return h("div", { class: "actions" }, buttons);
}
