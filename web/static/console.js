// The VM console page (#/vms/<id>/console): noVNC for a QEMU VM, xterm.js
// for a container. POST /v1/vms/{id}/console answers a single-use ticket
// and a WebSocket path that AccountDB relays to Proxmox; the VNC password
// comes in that answer and is handed straight to noVNC.
import { api } from "./api.js";
import { adoptScriptStyles } from "./cspstyle.js";
import { h, mount, problemBox } from "./dom.js";

// Proxmox's terminal protocol (termproxy): the proxy has logged in, the
// stream starts with "OK"; input is "0:LEN:DATA", a resize "1:COLS:ROWS:",
// a ping "2".
const encoder = new TextEncoder();
const termInput = (data) => `0:${encoder.encode(data).length}:${data}`;

function wsAddress(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

export function consoleView(view, ctx, id) {
  const state = h("span", { class: "badge", "data-state": "connecting" }, "connecting");
  const slot = h("div", { class: "slot" });
  const screen = h("div", { class: "console-screen", id: "console-screen" });
  const controls = h("div", { class: "actions" });
  let closer = () => {};
  const setState = (s, text = s) => {
    state.dataset.state = s;
    state.textContent = text;
  };

  const button = (label, onclick, attrs = {}) => h("button", { type: "button", class: "ghost", onclick, ...attrs }, label);
  const fullScreen = button("Full screen", () => screen.requestFullscreen?.());

  const vnc = async (ticket) => {
    const { default: RFB } = await import("./vendor/novnc/core/rfb.js");
    const rfb = new RFB(screen, wsAddress(ticket.url), { credentials: { password: ticket.password }, wsProtocols: ["binary"] });
    rfb.scaleViewport = true;
    rfb.addEventListener("connect", () => setState("connected"));
    rfb.addEventListener("disconnect", (e) => setState("disconnected", e.detail.clean ? "disconnected" : "connection lost"));
    rfb.addEventListener("securityfailure", (e) => mount(slot, h("div", { class: "problem" }, `VNC authentication failed: ${e.detail.reason || e.detail.status}`)));
    rfb.addEventListener("desktopname", (e) => (document.title = `${e.detail.name} · AccountDB`));
    mount(controls, button("Send Ctrl-Alt-Del", () => rfb.sendCtrlAltDel()), fullScreen, button("Disconnect", () => rfb.disconnect(), { id: "console-disconnect" }));
    closer = () => rfb.disconnect();
  };

  const terminal = async (ticket) => {
    adoptScriptStyles();
    const { Terminal } = await import("./vendor/xterm/xterm.mjs");
    if (!document.querySelector("link[data-xterm]")) {
      document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/xterm/xterm.css", "data-xterm": "1" }));
    }
    const term = new Terminal({ convertEol: false, cursorBlink: true });
    term.open(screen);
    const ws = new WebSocket(wsAddress(ticket.url), ["binary"]);
    ws.binaryType = "arraybuffer";
    const decoder = new TextDecoder();
    let loggedIn = false;
    let ping = null;
    ws.onmessage = (m) => {
      let text = decoder.decode(m.data, { stream: true });
      if (!loggedIn) {
        if (!text.startsWith("OK")) {
          return;
        }
        loggedIn = true;
        text = text.slice(2);
        setState("connected");
        ws.send(`1:${term.cols}:${term.rows}:`);
        ping = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("2"), 30000);
      }
      term.write(text);
    };
    ws.onclose = (e) => {
      clearInterval(ping);
      setState("disconnected", e.code === 1000 ? "disconnected" : `closed: ${e.reason || e.code}`);
    };
    term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(termInput(d)));
    term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(`1:${cols}:${rows}:`));
    term.focus();
    mount(controls, fullScreen, button("Disconnect", () => ws.close(1000), { id: "console-disconnect" }));
    closer = () => {
      ws.close(1000);
      term.dispose();
    };
  };

  mount(
    view,
    h("a", { href: `#/vms/${encodeURIComponent(id)}`, class: "back" }, "← Back to the VM"),
    h("div", { class: "view-head" }, h("h2", {}, "Console"), state),
    slot,
    controls,
    screen,
  );

  (async () => {
    try {
      const ticket = await api("POST", `/v1/vms/${encodeURIComponent(id)}/console`);
      await (ticket.protocol === "terminal" ? terminal(ticket) : vnc(ticket));
    } catch (err) {
      setState("failed");
      mount(slot, problemBox(err));
    }
  })();
  return () => closer();
}
