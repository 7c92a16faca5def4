// Small DOM and formatting helpers. Text always goes in as text nodes (never as HTML), so an incident's
// address or note can never inject markup or script into the page.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "testid") e.dataset.testid = v;
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function clock(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function ageSeconds(iso, now = Date.now()) {
  return Math.max(0, (now - new Date(iso).getTime()) / 1000);
}

export function ago(iso, now = Date.now()) {
  const s = ageSeconds(iso, now);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

export function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  return m ? `${m} min ${r} s` : `${r} s`;
}

export function num(v, digits = 0, unit = "") {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return `${v.toFixed(digits)}${unit}`;
}

export function latlon(lat, lon) {
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}

const TERMINAL = new Set(["landed", "aborted", "failed", "declined"]);
export const isTerminal = (state) => TERMINAL.has(state);
