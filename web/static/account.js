// The signed-in user's own settings: their SSH public keys, offered when
// they create a VM (cloud-init). No permission is needed: the routes only
// know "me", so another user's keys are never reachable.

import { api, newKey } from "./api.js";
import { act, ago, createSubmitter, field, formatTime, h, listLoader, mount, toast, toggle, viewHead } from "./dom.js";

export function sshKeysView(view) {
  const loadSlot = h("div", { class: "slot" });
  const actionSlot = h("div", { class: "slot" });
  const list = h("div", { class: "table-wrap" });

  const row = (k) => {
    const remove = h("button", { type: "button", class: "small danger" }, "Remove");
    remove.addEventListener("click", () => {
      if (!window.confirm(`Remove the key ${k.name}? VMs created with it keep it until they are rebuilt or changed.`)) {
        return;
      }
      act(remove, actionSlot, `${k.name} removed`, () => api("DELETE", `/v1/users/me/ssh-keys/${encodeURIComponent(k.id)}`, undefined, { idempotencyKey: newKey() }), load);
    });
    return h(
      "tr",
      {},
      h("td", {}, h("strong", {}, k.name)),
      h("td", {}, k.type),
      h("td", {}, h("code", { class: "fingerprint" }, k.fingerprint)),
      h("td", { title: formatTime(k.created_at) }, ago(k.created_at)),
      h("td", {}, remove),
    );
  };

  const load = listLoader({ list, slot: loadSlot, path: "/v1/users/me/ssh-keys", headers: ["Name", "Type", "Fingerprint", "Added", ""], row, empty: "No SSH keys yet." });

  const slot = h("div", { class: "slot span" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add key");
  const form = h(
    "form",
    {
      class: "card form-grid",
      ...createSubmitter({
        submit,
        slot,
        path: () => "/v1/users/me/ssh-keys",
        body: (form) => ({ name: form.elements.name.value.trim(), public_key: form.elements.public_key.value.trim() }),
        done: async (body) => {
          toast(`${body.name} added`);
          form.hidden = true;
          await load();
        },
      }),
    },
    h("h3", { class: "span" }, "New SSH key"),
    slot,
    h("div", { class: "span" }, field("Name", h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" }))),
    h(
      "div",
      { class: "span" },
      field(
        "Public key",
        h("textarea", { name: "public_key", required: true, rows: 3, spellcheck: "false", placeholder: "ssh-ed25519 AAAA… you@laptop" }),
        "ed25519, ECDSA, or RSA of at least 3072 bits, as in ~/.ssh/id_ed25519.pub",
      ),
    ),
    h("div", { class: "span buttons" }, submit),
  );

  mount(
    view,
    viewHead("SSH keys", toggle("Add SSH key", form)),
    h("p", { class: "muted" }, "Your public keys. A VM you create can be given them for its cloud-init user."),
    form,
    loadSlot,
    actionSlot,
    list,
  );
  load();
  return () => {};
}
