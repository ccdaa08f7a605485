// QR codes drawn in the browser (TOTP enrolment): the vendored
// qrcode-generator encodes, and the modules become an SVG built node by node
// (no data: URL, no innerHTML), which the Content-Security-Policy allows.

import qrcode from "./vendor/qrcode-generator.js";

const SVG = "http://www.w3.org/2000/svg";

/** An <svg> QR code of text (error correction M, the smallest version that fits). */
export function qrSVG(text, label) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  const size = n + 2 * quiet;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("width", String(size * 5));
  svg.setAttribute("height", String(size * 5));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#fff");
  svg.append(bg);
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) {
        d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
      }
    }
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(path);
  svg.dataset.modules = String(n);
  return svg;
}
