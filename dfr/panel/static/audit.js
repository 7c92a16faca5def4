// The audit view: who did what, when, for the selected mission (its own records and its incident's),
// read from GET /api/v1/audit, oldest first like the log itself.

import { api } from "./api.js";
import { state } from "./state.js";
import { clear, clock, el } from "./util.js";

function what(entry) {
  const d = entry.details || {};
  if (entry.action === "drone.command") {
    const args = Object.entries(d.args || {})
      .map(([k, v]) => `${k}=${typeof v === "number" ? +v.toFixed(5) : v}`)
      .join(" ");
    return `${d.drone_id} ${d.command}${args ? ` ${args}` : ""}: ${d.result}${d.detail ? ` — ${d.detail}` : ""}`;
  }
  const parts = [];
  for (const key of ["to_state", "state", "drone_id", "reason", "detail", "kind"]) {
    if (d[key] !== undefined && d[key] !== null) parts.push(`${key === "to_state" ? "→ " : ""}${d[key]}`);
  }
  return parts.length ? parts.join(" · ") : JSON.stringify(d).slice(0, 160);
}

export class AuditView {
  constructor() {
    this.table = document.getElementById("audit-table");
    this.rows = document.getElementById("audit-rows");
    this.empty = document.getElementById("audit-empty");
    this.timer = null;
    this.seq = 0;
  }

  /** Re-read soon; several changes in a burst cost one read. */
  refresh() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._load(), 250);
  }

  async _load() {
    const seq = ++this.seq;
    const m = state.missions.get(state.selectedMission);
    if (!m) {
      this.table.hidden = true;
      this.empty.hidden = false;
      this.empty.textContent = "Select a mission to see who did what.";
      return;
    }
    let entries;
    try {
      const [own, incident] = await Promise.all([
        api("/api/v1/audit", { params: { subject_id: m.id, limit: 500 } }),
        api("/api/v1/audit", { params: { subject_id: m.incident_id, limit: 500 } }),
      ]);
      entries = [...own.entries, ...incident.entries].sort((a, b) => a.id - b.id);
    } catch (e) {
      if (seq !== this.seq) return;
      this.empty.hidden = false;
      this.empty.textContent = `audit unavailable: ${e.message}`;
      return;
    }
    if (seq !== this.seq) return;
    clear(this.rows);
    for (const a of entries) {
      this.rows.append(
        el("tr", { testid: "audit-row" }, el("td", {}, clock(a.at)), el("td", { class: "actor" }, a.actor), el("td", {}, el("code", {}, a.action), " ", what(a))),
      );
    }
    this.table.hidden = entries.length === 0;
    this.empty.hidden = entries.length > 0;
    this.empty.textContent = "No records yet.";
  }
}
