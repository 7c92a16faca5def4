// Pilot override (pilots and admins only: for a viewer this module builds nothing). Each button POSTs
// one command to /api/v1/drones/{id}/commands; the server validates it (area, no-fly zones, limits,
// drone state) and its reason for a refusal is shown as it is. Go here / Orbit here take the next click
// on the map. Emergency keys: H holds at once, R returns after a confirmation (as does Land).

import { post } from "./api.js";
import { putDrone, state } from "./state.js";
import { el } from "./util.js";

const LABEL = {
  take_control: "take control",
  release: "resume automation",
  hold: "hold",
  goto: "go to",
  orbit: "orbit",
  altitude: "altitude",
  return: "return to launch",
  land: "land",
  refuse_preemption: "keep on its mission",
};

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("[value=cancel]").focus(); // Enter alone never confirms a return or a landing
  });
}

export class Override {
  constructor(slot, { mapView, hint, onCommanded }) {
    this.mapView = mapView;
    this.hint = hint;
    this.onCommanded = onCommanded;
    const button = (cmd, text, cls = "") =>
      el("button", { type: "button", class: cls, testid: `cmd-${cmd}`, onclick: () => this.run(cmd) }, text);
    this.title = el("span", { testid: "override-drone" });
    this.altitude = el("input", { type: "number", testid: "altitude-input", min: 10, max: 122, step: 5, value: 60, "aria-label": "Altitude (m above home)" });
    this.radius = el("input", { type: "number", testid: "orbit-radius", min: 20, max: 500, step: 10, value: 60, "aria-label": "Orbit radius (m)" });
    this.result = el("p", { class: "result", testid: "command-result", role: "status" });
    this.buttons = el(
      "div",
      { class: "cmds" },
      button("take_control", "Take control"),
      button("release", "Resume automation"),
      button("hold", "Hold (H)", "hold"),
      button("goto", "Go here…"),
      el("span", { class: "field" }, button("orbit", "Orbit here…"), this.radius, " m"),
      el("span", { class: "field" }, button("altitude", "Altitude"), this.altitude, " m"),
      button("return", "Return (R)", "warn"),
      button("land", "Land now", "danger"),
      button("refuse_preemption", "Keep on mission (refuse pre-emption)"),
    );
    this.root = el("section", { class: "override", testid: "override-panel" }, el("h3", {}, "Override ", this.title), this.buttons, this.result);
    slot.append(this.root);
    document.addEventListener("keydown", (e) => this._key(e));
    this.render();
  }

  render() {
    const d = state.drones.get(state.selectedDrone);
    this.title.textContent = d ? `· ${d.id}${d.pilot_control ? ` · PILOT ${d.pilot_by || ""}` : " · automation"}` : "· select a drone";
    for (const b of this.buttons.querySelectorAll("button")) b.disabled = !d || this.busy;
  }

  _key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (e.target.closest && e.target.closest("input, textarea, select, dialog")) return;
    if (e.key === "Escape" && this.mapView.pick) {
      this.mapView.cancelPick();
      this._hint(null);
      return;
    }
    const cmd = { h: "hold", r: "return" }[e.key.toLowerCase()];
    if (cmd && state.selectedDrone) {
      e.preventDefault();
      this.run(cmd);
    }
  }

  _hint(text) {
    this.hint.hidden = !text;
    this.hint.textContent = text || "";
  }

  async run(cmd) {
    const droneId = state.selectedDrone;
    if (!droneId) return;
    if (cmd === "goto" || cmd === "orbit") {
      this._hint(`Click the map: ${cmd === "goto" ? "where" : "the point"} ${droneId} should ${cmd === "goto" ? "go" : "orbit"} (Esc cancels)`);
      this.mapView.startPick((ll) => {
        this._hint(null);
        const body = { command: cmd, lat: ll.lat, lon: ll.lng };
        if (cmd === "orbit") body.radius_m = Number(this.radius.value);
        this.send(droneId, body);
      });
      return;
    }
    if (cmd === "return" && !(await confirmDialog(`Return ${droneId} to launch now?`))) return;
    if (cmd === "land" && !(await confirmDialog(`Land ${droneId} where it is, now?`))) return;
    const body = { command: cmd };
    if (cmd === "altitude") body.alt_m = Number(this.altitude.value);
    this.send(droneId, body);
  }

  async send(droneId, body) {
    const what = `${droneId} ${LABEL[body.command]}`;
    this.busy = true;
    this.render();
    this._show(`${what}: sending…`, "pending");
    try {
      const r = await post(`/api/v1/drones/${encodeURIComponent(droneId)}/commands`, body);
      this._show(`✓ ${what}: ${r.detail}`, "ok");
      const d = state.drones.get(droneId);
      if (d) putDrone({ id: droneId, pilot_control: r.pilot_control, pilot_by: r.pilot_control ? state.me.username : null });
      if (body.command === "goto" || body.command === "orbit") this.mapView.showPilotTarget(body.command, body.lat, body.lon, body.radius_m);
      else if (body.command !== "altitude" && body.command !== "take_control") this.mapView.clearPilotTarget();
    } catch (e) {
      const status = e.status ? ` (${e.status} ${e.code})` : "";
      this._show(`✗ ${what} refused${status}: ${e.message}`, "error");
    } finally {
      this.busy = false;
      this.render();
      this.onCommanded();
    }
  }

  _show(text, kind) {
    this.result.textContent = text;
    this.result.className = `result ${kind}`;
    this.result.dataset.kind = kind;
  }
}
