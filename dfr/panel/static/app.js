// The panel's entry point: sign-in, then the map, queue, mission view, override and audit, all fed by
// the live stream. The page holds no authority: what a user may do is decided by the server on every
// call; the page only leaves out the controls a viewer may not use.

import { api, onUnauthenticated, post } from "./api.js";
import { AuditView } from "./audit.js";
import { connectLive, readState } from "./live.js";
import { watchHealth } from "./health.js";
import { MapView } from "./map.js";
import { MissionView } from "./mission.js";
import { Override } from "./override.js";
import { Queue } from "./queue.js";
import { isCommander, missionOfIncident, on, putIncident, putMission, putTelemetry, selectDrone, selectMission, state } from "./state.js";
import { isTerminal } from "./util.js";

const $ = (id) => document.getElementById(id);
const FLOWN = new Set(["launching", "en_route", "on_scene", "returning", "landed", "aborted", "failed"]);
const TICK_MS = 5000;

let views = null; // {mapView, queue, missionView, audit, override}
let live = null;

function fatal(text) {
  $("fatal").textContent = text;
  $("fatal").hidden = false;
}

function showLogin(message = "") {
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("login-form").username.focus();
}

async function signIn(e) {
  e.preventDefault();
  const form = e.target;
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  $("login-error").textContent = "";
  try {
    const r = await post("/api/v1/auth/login", { username: form.username.value, password: form.password.value });
    form.password.value = "";
    if (!views) {
      state.me = { username: r.username, role: r.role };
      await start();
    } else if (r.username === state.me.username && r.role === state.me.role) {
      $("login").hidden = true; // the same user after an expired session: carry on where they were
      await resync();
    } else {
      window.location.replace("/"); // another account: rebuild the page for its role
    }
  } catch (err) {
    $("login-error").textContent = err.message;
  } finally {
    submit.disabled = false;
  }
}

async function signOut() {
  try {
    await post("/api/v1/auth/logout");
  } catch {
    /* the session is gone either way */
  }
  if (live) live.close();
  window.location.replace("/");
}

function droneMissionState(d) {
  const m = d.mission_id && state.missions.get(d.mission_id);
  return m ? m.state : null;
}

function drawDrone(d) {
  views.mapView.upsertDrone(d, { selected: d.id === state.selectedDrone, missionState: droneMissionState(d) });
}

/** Draw the flown track of a mission on the map: what is stored so far, then live positions. */
async function loadTrack(m, replace) {
  const { mapView } = views;
  if (!FLOWN.has(m.state) || (isTerminal(m.state) && m.id !== state.selectedMission)) return;
  const has = mapView.hasTrack(m.id);
  if (has && !replace) return;
  mapView.upsertMission(m, m.id === state.selectedMission);
  if (!has) mapView.setTrack(m.id, []); // live positions are added from now on
  try {
    const geo = await api(`/api/v1/missions/${m.id}/geojson`);
    const flown = geo.features.find((f) => f.properties.kind === "flown_track");
    if (replace) mapView.clearTrack(m.id);
    mapView.setTrack(m.id, flown ? flown.geometry.coordinates.map(([lon, lat]) => [lat, lon]) : []);
  } catch (e) {
    console.warn(`panel: track of mission ${m.id} not loaded`, e);
  }
}

function renderAll() {
  const { mapView, queue, missionView, audit, override } = views;
  for (const d of state.drones.values()) drawDrone(d);
  for (const i of state.incidents.values()) mapView.upsertIncident(i);
  for (const m of state.missions.values()) mapView.upsertMission(m, m.id === state.selectedMission);
  queue.renderAll();
  missionView.renderDroneList();
  missionView.render();
  if (override) override.render();
  audit.refresh();
}

async function resync() {
  let s;
  try {
    s = await readState();
  } catch (e) {
    if (e.status !== 401) $("stream-status").textContent = `state not read: ${e.message}`;
    return;
  }
  for (const d of s.drones) state.drones.set(d.id, { ...state.drones.get(d.id), ...d });
  for (const m of s.missions) state.missions.set(m.id, m);
  for (const i of s.incidents) state.incidents.set(i.id, i);
  renderAll();
  for (const m of state.missions.values()) loadTrack(m, views.mapView.hasTrack(m.id));
}

function onEvent(type, data) {
  if (type === "mission") putMission(data);
  else if (type === "incident") putIncident(data.incident);
  else if (type === "telemetry") {
    putTelemetry(data);
    const t = data.telemetry;
    if (data.mission_id && t.lat !== null) views.mapView.extendTrack(data.mission_id, t.lat, t.lon);
  }
}

function wire() {
  const { mapView, queue, missionView, audit, override } = views;
  on("drone", (d) => {
    drawDrone(d);
    if (d.id === state.selectedDrone) {
      missionView.render();
      if (override) override.render();
    }
  });
  on("mission", (m) => {
    mapView.upsertMission(m, m.id === state.selectedMission);
    loadTrack(m, false);
    queue.update(m.incident_id);
    const d = m.drone_id && state.drones.get(m.drone_id);
    if (d) drawDrone(d);
    if (d && m.drone_id === state.selectedDrone && !isTerminal(m.state)) state.selectedMission = m.id;
    if (m.id === state.selectedMission) {
      missionView.render();
      audit.refresh();
    }
  });
  on("incident", (i) => {
    mapView.upsertIncident(i);
    queue.update(i.id);
  });
  on("select", () => {
    for (const d of state.drones.values()) drawDrone(d);
    for (const m of state.missions.values()) mapView.upsertMission(m, m.id === state.selectedMission);
    const m = state.missions.get(state.selectedMission);
    if (m) loadTrack(m, false);
    queue.renderAll();
    missionView.render();
    if (override) override.render();
    audit.refresh();
  });
}

async function start() {
  $("login").hidden = true;
  $("who").hidden = false;
  $("user-name").textContent = state.me.username;
  $("user-role").textContent = state.me.role;
  if (state.me.role !== "viewer" && !isCommander()) {
    fatal(`${state.me.username} is a ${state.me.role} account (for integrations): it cannot use the panel.`);
    return;
  }
  if (!window.L) {
    fatal("The map library is missing on this service: run `make panel-assets` (it copies Leaflet from npm), then reload.");
    return;
  }
  const [config, area] = await Promise.all([api("/api/v1/panel/config"), api("/api/v1/area")]);
  state.config = config;
  state.area = area;
  $("area-name").textContent = area.name || config.area_name || "";
  $("area-notice").textContent = area.illustrative && area.notice ? `(${area.notice})` : "";
  $("app").hidden = false;
  const mapView = new MapView($("map"), {
    tileUrl: config.tile_url,
    tileAttribution: config.tile_attribution,
    onDroneClick: (id) => selectDrone(id),
    onIncidentClick: (id) => {
      const m = missionOfIncident(id);
      if (m) selectMission(m.id);
    },
  });
  mapView.setArea(area);
  const audit = new AuditView();
  views = {
    mapView,
    audit,
    queue: new Queue($("queue")),
    missionView: new MissionView($("mission-view")),
    override: isCommander() ? new Override($("override-slot"), { mapView, hint: $("map-hint"), onCommanded: () => audit.refresh() }) : null,
  };
  window.dfr = { map: mapView.map, state }; // for tests and the browser console
  wire();
  onUnauthenticated(() => showLogin("Your session has ended: sign in again."));
  live = connectLive({
    onEvent,
    onResync: resync,
    onStatus: (s) => {
      $("stream-status").textContent = s;
      $("stream-status").dataset.state = s;
    },
  });
  watchHealth($("health-banner"));
  setInterval(() => {
    mapView.refreshAges();
    views.queue.refreshAges();
    views.missionView.render();
  }, TICK_MS);
  document.body.dataset.ready = "true";
}

async function main() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  try {
    state.me = await api("/api/v1/auth/me");
  } catch (e) {
    if (e.status === 401) showLogin();
    else fatal(`The service does not answer: ${e.message}`);
    return;
  }
  await start();
}

main().catch((e) => {
  console.error(e);
  fatal(`The panel failed to start: ${e.message}`);
});
