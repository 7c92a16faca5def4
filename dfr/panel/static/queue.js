// The incident queue: newest first, each with its kind, time, address, status and its mission's state.
// A launch waiting for approval gets Approve / Decline for pilots and admins (viewers get no buttons at
// all); the decision is made, checked and audited by the server, and its refusal is shown in place.

import { api, post } from "./api.js";
import { isCommander, missionOfIncident, putMission, selectMission, state } from "./state.js";
import { ago, clear, clock, el, latlon } from "./util.js";

const SHOWN = 60;

export class Queue {
  constructor(list) {
    this.list = list;
    this.items = new Map(); // incident id -> li
    this.errors = new Map(); // incident id -> last error text (kept across re-renders)
  }

  renderAll() {
    const incidents = [...state.incidents.values()]
      .sort((a, b) => (a.received_at < b.received_at ? 1 : -1))
      .slice(0, SHOWN);
    clear(this.list);
    this.items.clear();
    for (const inc of incidents) this.list.append(this._item(inc));
    if (!incidents.length) this.list.append(el("li", { class: "muted empty" }, "No incidents yet."));
  }

  /** One incident changed (or its mission did): replace its item, or add it on top if new. */
  update(incidentId) {
    const inc = state.incidents.get(incidentId);
    if (!inc) return;
    const old = this.items.get(incidentId);
    const fresh = this._item(inc);
    if (old) old.replaceWith(fresh);
    else {
      const empty = this.list.querySelector(".empty");
      if (empty) empty.remove();
      this.list.prepend(fresh);
    }
  }

  refreshAges() {
    for (const [id, li] of this.items) {
      const inc = state.incidents.get(id);
      const age = li.querySelector(".age");
      if (inc && age) age.textContent = ago(inc.received_at);
    }
  }

  _item(inc) {
    const m = missionOfIncident(inc.id);
    const selected = m && state.selectedMission === m.id;
    const where = inc.address || latlon(inc.location.lat, inc.location.lon);
    const li = el(
      "li",
      {
        class: `incident kind-${inc.kind}${selected ? " selected" : ""}${m && m.state === "pending_approval" ? " pending" : ""}`,
        testid: `incident-${inc.id}`,
        onclick: () => m && selectMission(m.id),
      },
      el(
        "div",
        { class: "row" },
        el("span", { class: "kind", testid: "incident-kind" }, inc.kind.toUpperCase()),
        el("span", { class: "prio" }, `P${inc.priority}`),
        el("time", { datetime: inc.received_at }, clock(inc.received_at)),
        el("span", { class: "age" }, ago(inc.received_at)),
      ),
      el("div", { class: "addr", testid: "incident-address" }, where),
      el(
        "div",
        { class: "status", testid: "incident-status" },
        `incident ${inc.status}`,
        inc.report_count > 1 ? ` · ${inc.report_count} reports` : "",
        m ? el("span", { class: `mstate st-${m.state}`, testid: "mission-state" }, m.state) : " · no mission",
        m && m.drone_id ? ` · ${m.drone_id}` : "",
      ),
      m && m.reason ? el("div", { class: "reason muted" }, m.reason) : null,
    );
    if (m && m.state === "pending_approval" && isCommander()) li.append(this._decision(inc, m));
    const err = this.errors.get(inc.id);
    if (err) li.append(el("div", { class: "error", testid: "incident-error", role: "alert" }, err));
    this.items.set(inc.id, li);
    return li;
  }

  _decision(inc, m) {
    const act = async (verb, button) => {
      for (const b of button.parentElement.querySelectorAll("button")) b.disabled = true;
      this.errors.delete(inc.id);
      try {
        const body = verb === "decline" ? { reason: `declined by ${state.me.username} in the panel` } : {};
        const updated = await post(`/api/v1/missions/${m.id}/${verb}`, body);
        putMission(updated);
        selectMission(updated.id);
      } catch (e) {
        this.errors.set(inc.id, `${verb} refused: ${e.message}`);
        // the mission may have moved on meanwhile (timeout, another pilot): show what it is now
        try {
          putMission(await api(`/api/v1/missions/${m.id}`));
        } catch {
          /* the error above is already shown */
        }
      }
      this.update(inc.id);
    };
    return el(
      "div",
      { class: "actions" },
      el(
        "button",
        { type: "button", class: "approve", testid: "approve", onclick: (e) => { e.stopPropagation(); act("approve", e.currentTarget); } },
        "Approve launch",
      ),
      el(
        "button",
        { type: "button", class: "decline", testid: "decline", onclick: (e) => { e.stopPropagation(); act("decline", e.currentTarget); } },
        "Decline",
      ),
    );
  }
}
