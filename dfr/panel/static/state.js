// What the page knows: the latest drones, missions and incidents, and what the user selected.
// Modules change it only through these functions, which tell the views (on/emit) what changed.

export const state = {
  me: null, // {username, role}
  config: {},
  area: null, // GeoJSON FeatureCollection
  drones: new Map(), // id -> DroneView (+ live telemetry)
  missions: new Map(), // id -> Mission
  incidents: new Map(), // id -> Incident
  selectedDrone: null,
  selectedMission: null,
};

const listeners = new Map();

export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(fn);
}

export function emit(type, payload) {
  for (const fn of listeners.get(type) || []) {
    try {
      fn(payload);
    } catch (e) {
      console.error(`panel: a ${type} listener failed`, e);
    }
  }
}

export const isCommander = () => !!state.me && (state.me.role === "pilot" || state.me.role === "admin");

export function putDrone(view) {
  const old = state.drones.get(view.id) || {};
  const d = { ...old, ...view };
  state.drones.set(d.id, d);
  emit("drone", d);
}

export function putTelemetry({ drone_id, mission_id, telemetry, time, ready_in_s, not_ready }) {
  const d = state.drones.get(drone_id);
  if (!d) return;
  d.telemetry = telemetry;
  d.ready_in_s = ready_in_s ?? null;
  d.not_ready = not_ready ?? null;
  d.telemetry_time = time;
  d.mission_id = mission_id;
  d.busy = mission_id !== null;
  d.connected = telemetry.connected;
  emit("drone", d);
}

export function putMission(m) {
  state.missions.set(m.id, m);
  const d = m.drone_id && state.drones.get(m.drone_id);
  if (d && d.mission_id === m.id) {
    // the mission carries the pilot's hold on its drone; drones without a mission get it from /drones
    d.pilot_control = m.pilot_control.active;
    d.pilot_by = m.pilot_control.by;
    emit("drone", d);
  }
  emit("mission", m);
}

export function putIncident(i) {
  state.incidents.set(i.id, i);
  emit("incident", i);
}

/** The newest mission for an incident (an incident may be flown again after a mission ended). */
export function missionOfIncident(incidentId) {
  let best = null;
  for (const m of state.missions.values()) {
    if (m.incident_id === incidentId && (!best || m.created_at > best.created_at)) best = m;
  }
  return best;
}

/** The drone's current mission, else its most recent one. */
export function missionOfDrone(droneId) {
  const d = state.drones.get(droneId);
  if (d && d.mission_id && state.missions.has(d.mission_id)) return state.missions.get(d.mission_id);
  let best = null;
  for (const m of state.missions.values()) {
    if (m.drone_id === droneId && (!best || m.created_at > best.created_at)) best = m;
  }
  return best;
}

export function selectDrone(droneId) {
  state.selectedDrone = droneId;
  const m = droneId ? missionOfDrone(droneId) : null;
  state.selectedMission = m ? m.id : null;
  emit("select", state);
}

export function selectMission(missionId) {
  state.selectedMission = missionId;
  const m = state.missions.get(missionId);
  if (m && m.drone_id) state.selectedDrone = m.drone_id;
  emit("select", state);
}
