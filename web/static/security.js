// The signed-in user's own security: two-factor (TOTP enrolment with a QR
// code drawn in the browser, recovery codes, disabling) and API tokens
// (created with a subset of the user's permissions, the secret shown once,
// revoked at once). Both are reached from the user menu.

import { api } from "./api.js";
import { ago, badge, busy, field, formatTime, h, mount, problemBox, showFormProblem, table, toast, viewHead } from "./dom.js";
import { qrSVG } from "./qr.js";

function codeInput(name = "code") {
  return h("input", { name, inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6, required: true });
}

// ---- two-factor ----

/** ctx.onEnrolled is called once TOTP is on (an enrolment-only session becomes a full one). */
export function securityView(view, ctx) {
  const slot = h("div", { class: "slot" });
  const body = h("div", {});

  const showCodes = (codes) =>
    h(
      "div",
      { class: "card recovery" },
      h("h3", {}, "Recovery codes"),
      h("p", { class: "muted" }, "Each works once, instead of a code, if you lose your authenticator. They are shown only now: keep them somewhere safe."),
      h("ol", { class: "codes", "aria-label": "Recovery codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
    );

  const enrol = async (button) => {
    await busy(button, async () => {
      try {
        const e = await api("POST", "/v1/users/me/totp");
        const code = codeInput();
        const form = h(
          "form",
          {
            class: "card enrol",
            onsubmit: async (ev) => {
              ev.preventDefault();
              const submit = form.querySelector("button[type=submit]");
              await busy(submit, async () => {
                try {
                  const r = await api("POST", "/v1/users/me/totp/confirm", { code: code.value.trim() });
                  toast("Two-factor authentication is on");
                  await load(showCodes(r.recovery_codes));
                  if (ctx.onEnrolled) {
                    await ctx.onEnrolled();
                  }
                } catch (err) {
                  showFormProblem(form, formSlot, err);
                  code.select();
                }
              });
            },
          },
          h("h3", {}, "Scan with your authenticator app"),
          h("div", { class: "qr-wrap" }, qrSVG(e.otpauth_uri, "QR code of your two-factor secret")),
          h("p", { class: "muted" }, "Or enter this key by hand: ", h("code", { class: "totp-secret" }, e.secret)),
        );
        const formSlot = h("div", { class: "slot" });
        form.append(formSlot, field("Code from the app", code), h("button", { type: "submit", class: "primary" }, "Turn on"));
        mount(body, form);
        code.focus();
      } catch (err) {
        mount(slot, problemBox(err));
      }
    });
  };

  const disableForm = () => {
    const code = codeInput();
    const formSlot = h("div", { class: "slot" });
    const form = h(
      "form",
      {
        class: "inline",
        onsubmit: async (ev) => {
          ev.preventDefault();
          await busy(form.querySelector("button"), async () => {
            try {
              await api("DELETE", "/v1/users/me/totp", { code: code.value.trim() });
              toast("Two-factor authentication is off");
              await load();
            } catch (err) {
              showFormProblem(form, formSlot, err);
            }
          });
        },
      },
      formSlot,
      field("Current code", code),
      h("button", { type: "submit", class: "danger" }, "Turn off"),
    );
    return form;
  };

  const load = async (extra) => {
    try {
      const st = await api("GET", "/v1/users/me/totp");
      const status = st.enabled
        ? h("p", {}, badge("on", "running"), ` Two-factor authentication is on; ${st.recovery_codes_remaining} recovery codes left.`)
        : h("p", {}, badge("off", "stopped"), st.required ? " Your organisation requires two-factor authentication: set it up to continue." : " Two-factor authentication is off.");
      const start = h("button", { type: "button", class: "primary" }, st.pending ? "Start again" : "Set up two-factor");
      start.addEventListener("click", () => enrol(start));
      mount(body, extra || null, status, st.enabled ? disableForm() : start);
      mount(slot);
    } catch (err) {
      mount(slot, problemBox(err));
    }
  };

  mount(view, viewHead("Two-factor authentication"), h("p", { class: "muted" }, "A code from an authenticator app (TOTP), asked after your password."), slot, body);
  load();
  return () => {};
}

// ---- API tokens ----

export function tokensView(view, ctx) {
  const loadSlot = h("div", { class: "slot" });
  const created = h("div", {});
  const list = h("div", { class: "table-wrap" });

  const name = h("input", { name: "name", required: true, maxlength: 100 });
  const days = h("input", { name: "days", type: "number", min: 1, max: 365, value: 90, required: true });
  const perms = h(
    "fieldset",
    { class: "roles" },
    h("legend", {}, "Permissions (at most yours)"),
    ctx.me.permissions.map((p) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "perms", value: p }), h("span", {}, p))),
  );
  const formSlot = h("div", { class: "slot" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const submit = form.querySelector("button[type=submit]");
        await busy(submit, async () => {
          try {
            const chosen = [...form.querySelectorAll('input[name="perms"]:checked')].map((el) => el.value);
            const expires = new Date(Date.now() + Number(days.value) * 86400000).toISOString();
            const t = await api("POST", "/v1/users/me/tokens", { name: name.value.trim(), permissions: chosen, expires_at: expires });
            mount(formSlot);
            form.reset();
            mount(
              created,
              h(
                "div",
                { class: "card secret", role: "status" },
                h("h3", {}, `Token “${t.name}” created`),
                h("p", { class: "muted" }, "Copy it now: it is shown only once. Send it as Authorization: Bearer …"),
                h("code", { class: "token-secret" }, t.token),
              ),
            );
            await load();
          } catch (err) {
            showFormProblem(form, formSlot, err);
          }
        });
      },
    },
    h("h3", {}, "New token"),
    formSlot,
    field("Name", name),
    perms,
    field("Expires in (days)", days),
    h("button", { type: "submit", class: "primary" }, "Create token"),
  );

  const row = (t) => {
    const b = h("button", { type: "button", class: "small danger" }, "Revoke");
    b.addEventListener("click", async () => {
      await busy(b, async () => {
        try {
          await api("DELETE", `/v1/users/me/tokens/${encodeURIComponent(t.id)}`);
          toast("Token revoked");
          await load();
        } catch (err) {
          mount(loadSlot, problemBox(err));
        }
      });
    });
    return h(
      "tr",
      {},
      h("td", {}, t.name),
      h("td", {}, h("code", {}, `${t.prefix}…`)),
      h("td", {}, h("div", { class: "chips" }, t.permissions.map((p) => badge(p, "perm")))),
      h("td", { title: formatTime(t.expires_at) }, formatTime(t.expires_at)),
      h("td", {}, t.last_used_at ? `${ago(t.last_used_at)} from ${t.last_used_ip}` : "never"),
      h("td", {}, b),
    );
  };

  const load = async () => {
    try {
      const page = await api("GET", "/v1/users/me/tokens");
      mount(list, table(["Name", "Token", "Permissions", "Expires", "Last used", ""], page.items.map(row), "No API tokens."));
      mount(loadSlot);
    } catch (err) {
      mount(loadSlot, problemBox(err));
    }
  };

  mount(view, viewHead("API tokens"), h("p", { class: "muted" }, "For scripts and automation. A token may do what both it and you may do."), loadSlot, created, form, list);
  load();
  return () => {};
}
