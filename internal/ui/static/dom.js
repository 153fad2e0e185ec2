// DOM helpers. Every text from the server (branch names, commit messages,
// log lines: written by whoever pushed) goes in as a text node, never as
// HTML.

// h builds an element: h("a", {href: "/x", class: "y"}, "text", child...).
// Attributes starting with "on" are listeners; null and false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// link is an in-app link the router follows without a reload.
export function link(href, ...children) {
  return h("a", { href, "data-link": true }, ...children);
}

export function status(s) {
  return h("span", { class: "status " + (s || ""), "data-status": s || "" }, s || "–");
}

export function duration(seconds) {
  if (seconds === undefined || seconds === null) return "";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  const m = Math.floor(seconds / 60);
  if (m < 60) return m + "m" + String(Math.round(seconds % 60)).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}

export function when(t) {
  if (!t) return "";
  const d = new Date(t);
  if (isNaN(d)) return t;
  return d.toLocaleString();
}

export function ago(t) {
  if (!t) return "";
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (s < 60) return Math.max(0, Math.round(s)) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

export function short(digest) {
  if (!digest) return "";
  const i = digest.indexOf(":");
  return i >= 0 ? digest.slice(0, i + 13) : digest.slice(0, 12);
}

// digestLink links an image digest to its evidence page (text: what to
// show, default the whole digest); anything else is shown as it is.
export function digestLink(digest, text) {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest || "")) return text === undefined ? digest || "" : text;
  return h("a", { href: "/evidence/" + digest, "data-link": true, "data-evidence": digest, class: "mono" }, text === undefined ? digest : text);
}

// kv renders pairs as a definition list, skipping empty values.
export function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(h("dt", {}, k), h("dd", {}, v));
  }
  return dl;
}

let toastTimer;
export function toast(msg, isError) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = isError ? "error" : "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), isError ? 8000 : 4000);
}
