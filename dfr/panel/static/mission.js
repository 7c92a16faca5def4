// The mission view: the selected drone's live video (WHEP), its telemetry, and its mission's state and
// time to scene. The WHEP client is the video service's own module (/video/whep.js), loaded only when
// a drone is selected, so the rest of the panel works when video is not installed.

import { selectDrone, state } from "./state.js";
import { clear, clock, duration, el, num } from "./util.js";

let whep = null; // the imported module, or the reason it could not be loaded

async function whepModule() {
  if (whep === null) {
    try {
      whep = await import("/video/whep.js");
    } catch (e) {
      whep = { error: `no video client on this service (${e.message})` };
    }
  }
  return whep;
}

export class MissionView {
  constructor(root) {
    this.root = root;
    this.select = el("select", { testid: "drone-select", "aria-label": "Drone", onchange: (e) => selectDrone(e.target.value || null) });
    this.video = el("video", { testid: "video", muted: true, autoplay: true, playsinline: true });
    this.video.muted = true; // autoplay needs it, and there is no audio
    this.videoStatus = el("div", { class: "video-status", testid: "video-status" }, "no drone selected");
    this.retry = el("button", { type: "button", class: "small", testid: "video-retry", hidden: true, onclick: () => this._startVideo(true) }, "Retry video");
    this.telemetry = el("dl", { class: "telemetry", testid: "telemetry" });
    this.mission = el("dl", { class: "mission", testid: "mission-info" });
    root.append(
      el("h2", {}, "Drone ", this.select),
      el("div", { class: "video-box" }, this.video, el("div", { class: "video-bar" }, this.videoStatus, this.retry)),
      this.telemetry,
      el("h3", {}, "Mission"),
      this.mission,
    );
    this.session = null;
    this.videoDrone = null;
    this.videoToken = 0;
  }

  renderDroneList() {
    const current = state.selectedDrone || "";
    clear(this.select);
    this.select.append(el("option", { value: "" }, "— select —"));
    for (const d of state.drones.values()) this.select.append(el("option", { value: d.id }, `${d.id} (${d.name})`));
    this.select.value = current;
  }

  render() {
    if (this.select.value !== (state.selectedDrone || "")) this.select.value = state.selectedDrone || "";
    this._renderTelemetry();
    this._renderMission();
    if (this.videoDrone !== state.selectedDrone) this._startVideo(false);
  }

  _renderTelemetry() {
    const d = state.drones.get(state.selectedDrone);
    const t = d && d.telemetry;
    const rows = !t
      ? [["", d ? "no telemetry yet" : "select a drone on the map or in the list"]]
      : [
          ["Mode", t.flight_mode || "—", "tm-mode"],
          ["Altitude", num(t.rel_alt_m, 1, " m"), "tm-alt"],
          ["Speed", num(t.groundspeed, 1, " m/s"), "tm-speed"],
          ["Heading", num(t.heading_deg, 0, "°"), "tm-heading"],
          ["Battery", num(t.battery_pct, 0, " %"), "tm-battery"],
          ["State", `${t.armed ? "armed" : "disarmed"} · ${t.in_air ? "in air" : "on ground"}`, "tm-state"],
          ["Link", d.connected ? `up${t.health_ok ? "" : " · health check failing"}` : "LOST", "tm-link"],
          ["Control", d.pilot_control ? `PILOT (${d.pilot_by || "?"})` : "automation", "tm-control"],
        ];
    clear(this.telemetry);
    for (const [k, v, id] of rows) this.telemetry.append(el("dt", {}, k), el("dd", { testid: id }, v));
  }

  _renderMission() {
    const m = state.missions.get(state.selectedMission);
    clear(this.mission);
    if (!m) {
      this.mission.append(el("dd", { class: "muted" }, "none"));
      return;
    }
    const inc = state.incidents.get(m.incident_id);
    let tts = m.achieved_time_to_scene_s !== null ? `${duration(m.achieved_time_to_scene_s)} achieved` : "";
    if (!tts && m.launched_at && (m.state === "en_route" || m.state === "launching")) {
      tts = `${duration((Date.now() - new Date(m.launched_at).getTime()) / 1000)} since launch`;
    }
    const rows = [
      ["State", el("span", { class: `mstate st-${m.state}`, testid: "mv-state" }, m.state)],
      ["Incident", inc ? `${inc.kind} · ${inc.address || clock(inc.received_at)}` : m.incident_id.slice(0, 8)],
      ["Drone", m.drone_id || "not assigned"],
      ["To scene", `expected ${duration(m.expected_time_to_scene_s)}${tts ? ` · ${tts}` : ""}`],
      ["Altitude", num(m.altitude_m, 0, " m")],
      ["Launched", clock(m.launched_at)],
      m.standoff ? ["Stand-off", `${Math.round(m.standoff.distance_m)} m from the scene (zone ${m.standoff.zone_id})`] : null,
      m.reason ? ["Why", m.reason] : null,
    ].filter(Boolean);
    for (const [k, v] of rows) this.mission.append(el("dt", {}, k), el("dd", {}, v));
  }

  async _startVideo(force) {
    const droneId = state.selectedDrone;
    if (!force && droneId === this.videoDrone) return;
    this.videoDrone = droneId;
    const token = ++this.videoToken;
    this._stopVideo();
    this.retry.hidden = true;
    if (!droneId) {
      this.videoStatus.textContent = "no drone selected";
      return;
    }
    this.videoStatus.textContent = `connecting to ${droneId} video…`;
    const mod = await whepModule();
    if (token !== this.videoToken) return;
    if (mod.error) {
      this.videoStatus.textContent = mod.error;
      return;
    }
    try {
      const session = await mod.playWhep(this.video, `/api/v1/drones/${encodeURIComponent(droneId)}/whep`);
      if (token !== this.videoToken) {
        session.close();
        return;
      }
      this.session = session;
      this.videoStatus.textContent = `${droneId} live`;
    } catch (e) {
      if (token !== this.videoToken) return;
      this.videoStatus.textContent = `video unavailable: ${e.message}`;
      this.retry.hidden = false;
    }
  }

  _stopVideo() {
    if (this.session) {
      try {
        this.session.close();
      } catch (e) {
        console.warn("panel: closing the video session failed", e);
      }
    }
    this.session = null;
    this.video.srcObject = null;
  }
}
