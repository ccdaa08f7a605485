// How a VM's owner gets in: the cloud-init part of the New VM form (user,
// SSH keys, password, hostname, DNS) and what the VM page shows of it
// (user, key fingerprints, addresses, changes waiting for the next boot).
// The password goes to the API once and is hashed there; nothing here keeps it.

import { api, listAll, newKey } from "./api.js";
import { badge, field, h, mount, problemBox, submitForm, toast } from "./dom.js";
import { actionRoute, allows } from "./vmactions.js";

/**
 * accessFields returns the form's "Access" section and body(kind), the
 * cloud_init object to send (undefined when nothing was filled in).
 * Containers take no user (their keys and password are root's, and only a
 * container created from an OS template takes them).
 */
export function accessFields(kindSelect, { afterCreation = false } = {}) {
  const user = h("input", { name: "cloud_init.user", placeholder: "debian", autocomplete: "off", maxlength: 32 });
  const password = h("input", { name: "cloud_init.password", type: "password", minlength: 12, autocomplete: "new-password" });
  const hostname = h("input", { name: "cloud_init.hostname", placeholder: "the VM's name", autocomplete: "off", maxlength: 63 });
  const nameservers = h("input", { name: "cloud_init.nameservers", placeholder: "1.1.1.1, 9.9.9.9", autocomplete: "off" });
  const search = h("input", { name: "cloud_init.search_domain", placeholder: "example.com", autocomplete: "off" });
  const keys = h("div", { class: "chips key-choices" }, h("span", { class: "muted small" }, "loading your keys…"));
  const userField = field("User", user, "created by cloud-init, with sudo");
  const guestOnly = h(
    "div",
    { class: "span form-grid inner" },
    userField,
    field("Password", password, "optional, 12 characters or more; a container's is root's"),
    h("div", { class: "span" }, field("SSH keys", keys, h("span", {}, "manage them under ", h("a", { href: "#/ssh-keys" }, "SSH keys")))),
  );
  // The keys are read when the section opens, so a key added a moment ago
  // in another view is offered.
  const loadKeys = () =>
    listAll("/v1/users/me/ssh-keys")
      .then((list) => {
        const checked = new Set([...keys.querySelectorAll("input:checked")].map((c) => c.value));
        const fresh = keys.querySelector("input") === null;
        mount(
          keys,
          list.length
            ? list.map((k) =>
                h(
                  "label",
                  { class: "check", title: k.fingerprint },
                  h("input", { type: "checkbox", name: "cloud_init.ssh_key_ids", value: k.id, checked: fresh || checked.has(k.id) }),
                  ` ${k.name} `,
                  h("code", { class: "fingerprint" }, k.fingerprint.slice(0, 19) + "…"),
                ),
              )
            : h("span", { class: "muted small" }, "You have no SSH keys yet."),
        );
      })
      .catch((err) => mount(keys, problemBox(err)));

  const section = h(
    "details",
    { class: "span access" },
    h("summary", {}, "Access (cloud-init): user, SSH keys, password, hostname, DNS"),
    h("div", { class: "form-grid inner" }, guestOnly, field("Hostname", hostname), field("Nameservers", nameservers, "comma-separated, up to 3"), field("Search domain", search)),
  );
  section.addEventListener("toggle", () => {
    if (section.open) {
      loadKeys();
    }
  });
  // A container has no cloud-init user: its keys and password are root's,
  // and only a container created from an OS template takes them.
  // After creation a container takes no keys or password at all (Proxmox
  // has no call for them), only hostname and DNS.
  const onKind = () => {
    userField.hidden = kindSelect.value === "lxc";
    guestOnly.hidden = afterCreation && kindSelect.value === "lxc";
  };
  kindSelect.addEventListener("change", onKind);
  onKind();

  const body = (kind) => {
    const ci = {};
    const text = (el) => el.value.trim();
    if (kind !== "lxc" && text(user)) ci.user = text(user);
    if (!(afterCreation && kind === "lxc")) {
      if (password.value) ci.password = password.value;
      const ids = [...keys.querySelectorAll('input[name="cloud_init.ssh_key_ids"]:checked')].map((c) => c.value);
      if (ids.length) ci.ssh_key_ids = ids;
    }
    if (text(hostname)) ci.hostname = text(hostname);
    const ns = text(nameservers)
      .split(/[\s,]+/)
      .filter(Boolean);
    if (ns.length) ci.nameservers = ns;
    if (text(search)) ci.search_domain = text(search);
    return Object.keys(ci).length ? ci : undefined;
  };
  const clearSecret = () => {
    password.value = "";
  };
  return { section, body, clearSecret };
}

/** accessFacts are the VM page's rows about access: [dt, dd] pairs. */
export function accessFacts(vm, fact) {
  const ci = vm.cloud_init || {};
  const addresses = (vm.ip_addresses || []).map((a) => h("div", {}, h("code", {}, a.address), " ", badge(a.source === "guest" ? "reported by the guest" : "from the pool", "muted")));
  const fingerprints = (ci.ssh_key_fingerprints || []).map((f) => h("div", {}, h("code", { class: "fingerprint" }, f)));
  return [
    fact("Addresses", addresses.length ? addresses : ""),
    fact("User", ci.user || ""),
    fact("Hostname", ci.hostname || ""),
    fact("SSH keys", fingerprints.length ? fingerprints : ""),
    vm.pending_changes ? fact("Pending", badge("cloud-init changes apply at the next boot", "pending")) : null,
  ];
}

/**
 * changeAccessForm is the VM page's form for the configure action: new SSH
 * keys, DNS, user or password, which Proxmox applies at the next boot.
 */
export function changeAccessForm(ctx, getVM, onDone) {
  const slot = h("div", { class: "slot span" });
  const submit = h("button", { type: "submit", class: "primary" }, "Save for the next boot");
  const kind = h("select", { hidden: true }, h("option", { value: "qemu" }));
  const fields = accessFields(kind, { afterCreation: true });
  fields.section.open = true;
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const vm = getVM();
        const route = actionRoute(vm, "configure");
        const cloudInit = fields.body(vm.kind);
        if (!route || !cloudInit) {
          return;
        }
        await submitForm(form, slot, submit, async () => {
          await api(route.method, route.path, { cloud_init: cloudInit }, { idempotencyKey: newKey() });
          fields.clearSecret();
          toast(`Access of ${vm.name} changed; it applies at the next boot`);
          onDone();
        });
      },
    },
    h("h3", {}, "Change access"),
    h("p", { class: "muted small" }, "Keys, DNS, user and password given here replace the current ones at the next boot."),
    slot,
    fields.section,
    h("div", { class: "buttons" }, submit),
  );
  return {
    form,
    update(vm) {
      kind.value = vm.kind === "lxc" ? "lxc" : "qemu";
      kind.dispatchEvent(new Event("change"));
      submit.disabled = !allows(vm, "configure");
    },
  };
}

/**
 * rebuildForm re-creates the guest from a template, keeping its id, name,
 * address and access settings; its disks are destroyed, so it asks first.
 */
export function rebuildForm(ctx, getVM, onDone) {
  const slot = h("div", { class: "slot span" });
  const template = h("select", { name: "template" });
  const submit = h("button", { type: "submit", class: "danger" }, "Rebuild");
  let templates = null;
  const fill = (vm) => {
    const current = template.value;
    mount(
      template,
      h("option", { value: "" }, `the same template (${vm.template || "unknown"})`),
      (templates || []).filter((t) => t.kind === vm.kind && t.name !== vm.template).map((t) => h("option", { value: t.name }, t.os ? `${t.name} (${t.os})` : t.name)),
    );
    template.value = current;
  };
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const vm = getVM();
        const route = actionRoute(vm, "rebuild");
        if (!route || !window.confirm(`Rebuild ${vm.name}? Its disks are destroyed and it starts again from the template.`)) {
          return;
        }
        await submitForm(form, slot, submit, async () => {
          await api(route.method, route.path, template.value ? { template: template.value } : {}, { idempotencyKey: newKey() });
          toast(`Rebuild of ${vm.name} requested`);
          onDone();
        });
      },
    },
    h("h3", {}, "Rebuild"),
    h("p", { class: "muted small" }, "Re-creates the guest, keeping its ID, name, address and access settings."),
    slot,
    h("div", { class: "inline" }, field("Template", template), submit),
  );
  api("GET", "/v1/templates")
    .then((page) => {
      templates = page.items || [];
      const vm = getVM();
      if (vm) {
        fill(vm);
      }
    })
    .catch((err) => mount(slot, problemBox(err)));
  return {
    form,
    update(vm) {
      fill(vm);
      submit.disabled = !allows(vm, "rebuild");
    },
  };
}

/** Whether the user may ask for the action at all (its permission). */
export function mayAsk(ctx, name) {
  const route = actionRoute({ id: "" }, name);
  return Boolean(route) && ctx.can(route.permission);
}

/**
 * poolField offers the address pools of the chosen template's cluster;
 * "" leaves the choice to the cluster's default pool (or none). network()
 * is the request's network object, undefined for the default.
 */
export function poolField(templateSelect) {
  const select = h("select", { name: "network.ip_pool_id" });
  const wrapper = field("Address pool", select);
  let pools = [];
  const fill = () => {
    const opt = templateSelect.selectedOptions[0];
    const cluster = opt ? opt.dataset.cluster : "";
    const current = select.value;
    mount(
      select,
      h("option", { value: "" }, "the cluster's default pool"),
      pools.filter((p) => !cluster || p.cluster_id === cluster).map((p) => h("option", { value: p.id }, `${p.name} (${p.cidr}, ${p.size - p.allocated} free)`)),
    );
    select.value = [...select.options].some((o) => o.value === current) ? current : "";
  };
  templateSelect.addEventListener("change", fill);
  listAll("/v1/ip-pools")
    .then((list) => {
      pools = list;
      fill();
    })
    .catch(() => {
      wrapper.hidden = true; // not offered to this user: the default applies
    });
  const network = () => (select.value ? { ip_pool_id: select.value } : undefined);
  return { field: wrapper, network, refresh: fill };
}
