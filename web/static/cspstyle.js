// xterm.js draws with <style> elements it fills from script, which the
// console's Content-Security-Policy (default-src 'self', no
// 'unsafe-inline') refuses. Rather than weaken the policy for every page,
// a script-made <style> becomes an <adopted-style>: an element that puts
// its text into a constructable stylesheet adopted by the document (CSSOM,
// which the policy allows) and drops it when removed. The console creates
// no <style> of its own, so nothing else is affected.

class AdoptedStyle extends HTMLElement {
  constructor() {
    super();
    this.cssSheet = new CSSStyleSheet();
    this.cssText = "";
  }

  connectedCallback() {
    if (!document.adoptedStyleSheets.includes(this.cssSheet)) {
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.cssSheet];
    }
  }

  disconnectedCallback() {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== this.cssSheet);
  }

  get textContent() {
    return this.cssText;
  }

  set textContent(text) {
    this.cssText = String(text ?? "");
    this.cssSheet.replaceSync(this.cssText);
  }
}

let installed = false;

/** installs the <style> replacement once, before xterm.js is loaded. */
export function adoptScriptStyles() {
  if (installed) {
    return;
  }
  installed = true;
  customElements.define("adopted-style", AdoptedStyle);
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (name, options) {
    return String(name).toLowerCase() === "style" ? create.call(this, "adopted-style") : create.call(this, name, options);
  };
}
