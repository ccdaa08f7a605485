// DOM helpers. Text always goes in as text nodes or attribute values, never
// as HTML, so data from the API cannot inject markup.

import { api, ApiError, listAll, newKey } from "./api.js";

/** h("tag", {attr: value, onclick: fn}, ...children) builds an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) {
      continue;
    }
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "value") {
      el.value = String(v);
    } else if (k === "checked") {
      el.checked = Boolean(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces el's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function formatTime(iso) {
  if (!iso) {
    return "";
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function ago(iso) {
  const d = new Date(iso);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (Number.isNaN(s)) {
    return "";
  }
  if (s < 60) {
    return `${Math.max(s, 0)} s ago`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ago`;
  }
  return `${Math.floor(s / 86400)} d ago`;
}

// The tail of a UUID: ids made close together (UUIDv7) share their head.
export function shortId(id) {
  return id ? `…${String(id).slice(-8)}` : "";
}

/** Who caused an event: you, another user (short id) or the system. */
export function actorLabel(actorId, me) {
  if (!actorId) {
    return h("span", { class: "muted" }, "system");
  }
  return me && actorId === me.id ? "you" : shortId(actorId);
}

/** A problem box: the problem's title and detail and its field errors. */
export function problemBox(err) {
  if (!(err instanceof ApiError)) {
    return h("div", { class: "problem", role: "alert" }, String(err && err.message ? err.message : err));
  }
  const p = err.problem;
  const fields = Object.entries(err.fieldErrors);
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", {}, p.title || `Request failed (${err.status})`),
    p.detail && p.detail !== p.title ? h("span", {}, ` — ${p.detail}`) : null,
    fields.length ? h("ul", {}, fields.map(([f, m]) => h("li", {}, h("code", {}, f), `: ${m}`))) : null,
    p.request_id ? h("div", { class: "muted small" }, `request id ${p.request_id}`) : null,
  );
}

/** Shows a problem in a form's error slot and marks the fields it names. */
export function showFormProblem(form, slot, err) {
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
  }
  if (err instanceof ApiError) {
    for (const field of Object.keys(err.fieldErrors)) {
      // "cloud_init.ssh_keys[1]" marks the field named so, else its object.
      const path = field.replace(/\[\d+\]$/, "");
      const el = form.elements.namedItem(path) || form.elements.namedItem(field.split(".")[0]);
      if (el && el.setAttribute) {
        el.setAttribute("aria-invalid", "true");
      }
    }
  }
  mount(slot, err ? problemBox(err) : null);
}

/** A short notice at the bottom right. */
export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/** Disables a button while fn runs. */
export async function busy(button, fn) {
  button.disabled = true;
  button.classList.add("busy");
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
  }
}

/**
 * Runs fn, a form's request (and what follows it), with submit busy: on
 * success clears the form's problem; on failure shows it in slot and marks
 * the fields it names.
 */
export async function submitForm(form, slot, submit, fn) {
  await busy(submit, async () => {
    try {
      await fn();
      showFormProblem(form, slot, null);
    } catch (err) {
      showFormProblem(form, slot, err);
    }
  });
}

/**
 * Runs fn, a request, with button busy: on success clears slot, shows
 * message and awaits then() (a reload); on failure shows the problem in slot.
 */
export async function act(button, slot, message, fn, then) {
  await busy(button, async () => {
    try {
      await fn();
      mount(slot);
      toast(message);
      await then();
    } catch (err) {
      mount(slot, problemBox(err));
    }
  });
}

/** A labelled form field. */
export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

/** A toggle button that shows and hides a form (hidden at first). */
export function toggle(label, form) {
  form.hidden = true;
  return h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: () => {
        form.hidden = !form.hidden;
        const first = form.querySelector("input");
        if (!form.hidden && first) {
          first.focus();
        }
      },
    },
    label,
  );
}

/** A view's heading row: the title, then extra controls on the right. */
export function viewHead(title, ...extra) {
  return h("div", { class: "view-head" }, h("h2", {}, title), h("div", { class: "grow" }), extra);
}

/**
 * listLoader returns load(): it fetches every page of path and shows them
 * in list as a table (one row(item) each), or the problem in slot.
 */
export function listLoader({ list, slot, path, headers, row, empty }) {
  return async () => {
    try {
      const items = await listAll(path);
      mount(list, table(headers, items.map(row), empty));
      mount(slot);
    } catch (err) {
      mount(slot, problemBox(err));
    }
  };
}

/** A table with a header row; rows are <tr> elements. */
export function table(headers, rows, empty = "Nothing here yet.") {
  const body = h("tbody", {}, rows);
  if (!rows.length) {
    body.append(h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, empty)));
  }
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), body);
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

// createSubmitter wires a create form's handlers: one Idempotency-Key per
// version of the form (a changed form is a new request, a resubmitted one
// the same), the button busy while the request runs, the problem shown on
// the form, and the form reset before done(body) on success.
export function createSubmitter({ submit, slot, path, body, done }) {
  let key = newKey();
  return {
    oninput: () => {
      key = newKey();
    },
    onsubmit: async (ev) => {
      ev.preventDefault();
      const form = ev.currentTarget;
      const sent = body(form);
      await busy(submit, async () => {
        try {
          await api("POST", path(), sent, { idempotencyKey: key });
          form.reset();
          key = newKey();
          showFormProblem(form, slot, null);
          await done(sent);
        } catch (err) {
          showFormProblem(form, slot, err);
        }
      });
    },
  };
}
