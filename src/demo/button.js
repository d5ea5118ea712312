// A stand-in for Invent's button.js, served by the demo site so the demo works offline.
// It defines <invent-assistant> and shows, in a bubble, the attributes the proxy gave it.
(function () {
  if (customElements.get("invent-assistant")) return;
  window.__inventDemo = { created: [] };
  const STYLE =
    ".b{position:fixed;right:24px;bottom:24px;width:56px;height:56px;border-radius:50%;display:flex;" +
    "align-items:center;justify-content:center;font:600 24px system-ui;box-shadow:0 6px 20px rgba(0,0,0,.25)}" +
    ".p{position:fixed;right:24px;bottom:92px;max-width:300px;padding:12px 14px;border-radius:12px;" +
    "background:#111827;color:#f9fafb;font:14px/1.4 system-ui;box-shadow:0 6px 20px rgba(0,0,0,.25)}" +
    "small{display:block;color:#9ca3af;word-break:break-all}";
  function line(parent, tag, text) {
    const el = document.createElement(tag);
    el.textContent = text;
    parent.appendChild(el);
    return el;
  }
  class InventAssistant extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      const attrs = {};
      for (const a of this.attributes) attrs[a.name] = a.value;
      window.__inventDemo.created.push(attrs);
      const root = this.attachShadow({ mode: "open" });
      line(root, "style", STYLE);
      const panel = document.createElement("div");
      panel.className = "p";
      line(panel, "strong", "Invent assistant (demo)");
      if (attrs["user-id"]) {
        line(panel, "div", "Signed in: " + (attrs["user-name"] || "user") + " · user-id " + attrs["user-id"]);
        line(panel, "small", "user-hash " + attrs["user-hash"]);
      } else {
        line(panel, "div", "Anonymous visitor");
      }
      root.appendChild(panel);
      const bubble = line(root, "div", "💬");
      bubble.className = "b";
      bubble.style.background = attrs["theme-button-background-color"] || "#6366f1";
      bubble.style.color = attrs["theme-button-color"] || "#ffffff";
    }
  }
  customElements.define("invent-assistant", InventAssistant);
})();
