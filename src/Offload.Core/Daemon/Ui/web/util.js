// Small helpers shared by the pages.

/** An error from the API: its words (message) and what to do next (hint), as the CLI prints them. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `the daemon answered ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.hint = body && body.hint;
  }
  toString() { return this.hint ? `${this.message}\nnext: ${this.hint}` : this.message; }
}

export async function api(path, { method = "GET", body, text = false } = {}) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, init);
  if (!response.ok) {
    let error = null;
    try { error = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, error);
  }
  return text ? response.text() : response.json();
}

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = s => String(s ?? "").replace(/[&<>"']/g, c => escapes[c]);

/** Builds an element: h("button", {class: "primary", onclick}, "Merge"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "html") el.innerHTML = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const STATUS_LABEL = { queued: "queued", running: "running", needs_input: "needs input", succeeded: "succeeded", failed: "failed", cancelled: "cancelled", limited: "limited" };
export const isFinal = s => s === "succeeded" || s === "failed" || s === "cancelled" || s === "limited";

export function tokens(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

export const cost = usd => "$" + Number(usd || 0).toFixed(usd >= 100 ? 0 : 2);

export function age(at, now = Date.now()) {
  const s = Math.max(0, (now - Date.parse(at)) / 1000);
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}

export function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 60) return seconds.toFixed(0) + "s";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
  return Math.floor(seconds / 3600) + "h" + String(Math.floor(seconds % 3600 / 60)).padStart(2, "0") + "m";
}

export function setConnection(text) { document.getElementById("connection").textContent = text; }

/** The repository's name for a heading: its last folder, with the whole path as a tooltip. */
export const repoName = path => path.split("/").filter(Boolean).pop() || path;
