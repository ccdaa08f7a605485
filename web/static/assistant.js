// The assistant (docs/ASSISTANT.md): "Explain" on a VM's page and "Ask" on
// the audit log. Answers stream in as Server-Sent Events; the events an
// answer cites become links to them. Shown only when GET /v1/assistant says
// the server has a model configured.

import { api, postStream, whenSessionEnds } from "./api.js";
import { busy, h, mount, problemBox } from "./dom.js";

let enabled = null; // one GET per page load

/** Whether the server's assistant is on (404 assistant_disabled: off). */
export function assistantEnabled() {
  if (!enabled) {
    enabled = api("GET", "/v1/assistant")
      .then((a) => Boolean(a && a.enabled))
      .catch(() => false);
  }
  return enabled;
}

const CITATION = /\[#(\d{1,19})\]/g;

// The last question and answer of each panel (by the path it posts to),
// kept in this page's memory only: following a citation re-renders the
// page, and coming back must not lose the answer. Gone on reload and when
// the session ends.
const lastAnswers = new Map();
whenSessionEnds(() => lastAnswers.clear());

// answerText renders the answer with each citation the server kept as a
// link (citeLink) and the others as plain text.
function answerText(text, kept, citeLink) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(CITATION)) {
    out.push(text.slice(last, m.index));
    out.push(kept.has(m[1]) ? citeLink(m[1], m[0]) : m[0]);
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

/**
 * A question box and its streamed answer. path is the route to POST to,
 * body(question) its body; citeLink(position, label) the element a kept
 * citation becomes. Hidden until the assistant is known to be on.
 */
export function assistantPanel({ title, path, body, placeholder, button, required, citeLink }) {
  const question = h("input", { type: "text", name: "question", maxlength: 2000, placeholder, "aria-label": title, required: Boolean(required) });
  const submit = h("button", { type: "submit", class: "primary" }, button);
  const slot = h("div", { class: "slot" });
  const answer = h("div", { class: "assistant-answer", "aria-live": "polite" });
  const cites = h("div", { class: "assistant-citations muted small" });
  // show renders an answer so far; kept (the server's citations) is null
  // until they arrive.
  const show = (text, kept) => {
    if (kept === null) {
      mount(answer, text);
      return;
    }
    mount(answer, answerText(text, kept, citeLink));
    mount(cites, kept.size ? ["Cited events: ", [...kept].map((p) => [citeLink(p, `#${p}`), " "])] : "No events cited.");
  };
  const last = lastAnswers.get(path);
  if (last) {
    question.value = last.question;
    show(last.text, last.kept);
  }
  const panel = h(
    "form",
    {
      class: "card assistant",
      hidden: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(submit, async () => {
          mount(slot);
          mount(cites);
          lastAnswers.delete(path);
          const asked = { question: question.value.trim(), text: "", kept: null };
          mount(answer, h("span", { class: "muted" }, "Thinking…"));
          try {
            await postStream(path, body(asked.question), (e) => {
              const data = JSON.parse(e.data || "{}");
              if (e.type === "delta") {
                asked.text += data.text || "";
                show(asked.text, null);
              } else if (e.type === "citations") {
                asked.kept = new Set((data.citations || []).map(String));
                show(asked.text, asked.kept);
                lastAnswers.set(path, asked);
              } else if (e.type === "error") {
                mount(slot, h("div", { class: "problem", role: "alert" }, h("strong", {}, data.title || "The answer broke off"), data.detail ? ` — ${data.detail}` : ""));
              }
            });
          } catch (err) {
            mount(answer);
            mount(slot, problemBox(err));
          }
        });
      },
    },
    h("h3", {}, title),
    h("div", { class: "toolbar" }, question, submit),
    slot,
    answer,
    cites,
  );
  assistantEnabled().then((on) => {
    panel.hidden = !on;
  });
  return panel;
}
