// The live map: Leaflet with vector layers only, unless a tile URL is configured (closed RTCC networks
// have no tile server, and the panel must stay usable there). Leaflet is the global L from
// /panel/vendor/leaflet/leaflet.js (copied from npm by `make panel-assets`).

import { el, ageSeconds, ago, clock, isTerminal } from "./util.js";

const L = window.L;

const KIND = {
  gunshot: { color: "#d7263d", letter: "G" },
  911: { color: "#e67e22", letter: "9" },
  alpr: { color: "#2e86de", letter: "A" },
  manual: { color: "#8e44ad", letter: "M" },
  other: { color: "#636e72", letter: "?" },
};
const INCIDENT_FADE_S = 3600; // an incident's marker fades over its first hour

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function zonePopup(p) {
  const band = `${p.floor_ft_agl}–${p.ceiling_ft_agl} ft AGL`;
  return el(
    "div",
    { class: "zone-popup", testid: `zone-popup-${p.id}` },
    el("strong", {}, p.name),
    el("div", {}, `${p.kind} · ${band}`),
    p.description ? el("div", { class: "muted" }, p.description) : null,
  );
}

export class MapView {
  constructor(container, { tileUrl, tileAttribution, onDroneClick, onIncidentClick }) {
    this.container = container;
    this.map = L.map(container, { zoomSnap: 0.25, attributionControl: !!tileUrl, boxZoom: false });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution || "", maxZoom: 19 }).addTo(this.map);
    else container.classList.add("no-tiles");
    const group = () => L.layerGroup().addTo(this.map);
    this.areaLayer = group();
    this.routeLayer = group();
    this.incidentLayer = group();
    this.dockLayer = group();
    this.pilotLayer = group();
    this.droneLayer = group();
    this.drones = new Map(); // id -> {marker, root, arrow, label, sub}
    this.incidents = new Map(); // id -> {marker, root, incident}
    this.routes = new Map(); // mission id -> polyline (planned)
    this.tracks = new Map(); // mission id -> polyline (flown)
    this.onDroneClick = onDroneClick;
    this.onIncidentClick = onIncidentClick;
    this.pick = null;
    this.map.on("click", (e) => this._click(e));
    L.control.scale({ imperial: false }).addTo(this.map);
  }

  setArea(geojson) {
    this.areaLayer.clearLayers();
    this.dockLayer.clearLayers();
    const shapes = L.geoJSON(geojson, {
      filter: (f) => f.properties.role !== "dock",
      style: (f) =>
        f.properties.role === "no_fly"
          ? {
              color: "#c0392b",
              weight: 1.5,
              fillColor: "#e74c3c",
              fillOpacity: f.properties.floor_ft_agl > 0 ? 0.07 : 0.2,
              dashArray: f.properties.floor_ft_agl > 0 ? "6 4" : null,
            }
          : { color: "#34495e", weight: 2, fill: true, fillOpacity: 0.02, interactive: false },
      onEachFeature: (f, layer) => {
        if (f.properties.role === "no_fly") layer.bindPopup(() => zonePopup(f.properties));
      },
    }).addTo(this.areaLayer);
    for (const f of geojson.features.filter((x) => x.properties.role === "dock")) {
      const [lon, lat] = f.geometry.coordinates;
      const p = f.properties;
      const icon = L.divIcon({
        className: "dock-icon",
        html: el("div", { class: "dock", testid: `dock-${p.id}`, title: p.name }, "⌂"),
        iconSize: [18, 18],
        iconAnchor: [9, 9],
      });
      L.marker([lat, lon], { icon, keyboard: false })
        .bindTooltip(el("div", {}, el("strong", {}, p.name), el("div", {}, `drones: ${p.drones.join(", ") || "none"}`)), {
          direction: "top",
        })
        .addTo(this.dockLayer);
    }
    const area = geojson.features.find((f) => f.properties.role === "operating_area");
    this.map.fitBounds((area ? L.geoJSON(area) : shapes).getBounds(), { padding: [12, 12] });
  }

  // ------------------------------------------------------------------ drones

  upsertDrone(d, { selected, missionState }) {
    const t = d.telemetry;
    if (!t || t.lat === null || t.lon === null || (t.lat === 0 && t.lon === 0)) return;
    let v = this.drones.get(d.id);
    if (!v) {
      const arrow = svg("svg", { class: "arrow", viewBox: "-10 -10 20 20", width: 26, height: 26 });
      arrow.append(svg("path", { d: "M0,-9 L7,8 L0,4 L-7,8 Z" }));
      const label = el("span", { class: "label" });
      const sub = el("span", { class: "sub" });
      const root = el("div", { class: "drone", testid: `drone-marker-${d.id}` }, arrow, el("div", { class: "tag" }, label, sub));
      const icon = L.divIcon({ className: "drone-icon", html: root, iconSize: [26, 26], iconAnchor: [13, 13] });
      const marker = L.marker([t.lat, t.lon], { icon, keyboard: false, zIndexOffset: 1000 });
      marker.on("click", () => this.onDroneClick(d.id));
      marker.addTo(this.droneLayer);
      v = { marker, root, arrow, label, sub };
      this.drones.set(d.id, v);
    }
    v.marker.setLatLng([t.lat, t.lon]);
    v.arrow.style.transform = `rotate(${t.heading_deg || 0}deg)`;
    const battery = t.battery_pct === null ? "—" : `${Math.round(t.battery_pct)}%`;
    const charging = d.ready_in_s > 0 ? ` · ready in ${Math.ceil(d.ready_in_s / 60)} min` : d.not_ready ? " · preparing" : "";
    v.label.textContent = `${d.id} · ${missionState || (t.in_air ? "flying" : "docked")} · ${battery}${charging}`;
    v.sub.textContent = `${t.flight_mode || ""}${d.pilot_control ? " · PILOT" : ""}`;
    v.root.title = d.not_ready || "";
    v.root.dataset.lat = t.lat;
    v.root.dataset.lon = t.lon;
    v.root.dataset.mode = t.flight_mode || "";
    v.root.classList.toggle("selected", !!selected);
    v.root.classList.toggle("in-air", !!t.in_air);
    v.root.classList.toggle("pilot", !!d.pilot_control);
    v.root.classList.toggle("offline", !d.connected);
  }

  // ------------------------------------------------------------------ incidents

  upsertIncident(inc) {
    let v = this.incidents.get(inc.id);
    const kind = KIND[inc.kind] || KIND.other;
    if (!v) {
      const root = el("div", { class: `inc kind-${inc.kind}`, testid: `incident-marker-${inc.id}` }, kind.letter);
      root.style.background = kind.color;
      const icon = L.divIcon({ className: "inc-icon", html: root, iconSize: [20, 20], iconAnchor: [10, 10] });
      const marker = L.marker([inc.location.lat, inc.location.lon], { icon, keyboard: false, zIndexOffset: 500 });
      marker.on("click", () => this.onIncidentClick(inc.id));
      marker.addTo(this.incidentLayer);
      v = { marker, root };
      this.incidents.set(inc.id, v);
    }
    v.incident = inc;
    v.marker.setLatLng([inc.location.lat, inc.location.lon]);
    v.root.classList.toggle("closed", inc.status !== "open");
    this._age(v);
  }

  _age(v) {
    const inc = v.incident;
    const s = ageSeconds(inc.last_reported_at || inc.received_at);
    v.root.style.opacity = String(Math.max(0.35, 1 - (0.65 * s) / INCIDENT_FADE_S));
    v.root.classList.toggle("fresh", s < 120);
    v.root.title = `${inc.kind} · ${clock(inc.received_at)} (${ago(inc.received_at)})${inc.address ? ` · ${inc.address}` : ""}`;
  }

  refreshAges() {
    for (const v of this.incidents.values()) this._age(v);
  }

  // ------------------------------------------------------------------ routes and tracks

  upsertMission(m, selected) {
    const show = !isTerminal(m.state) || selected;
    let route = this.routes.get(m.id);
    if (!show) {
      if (route) this.routeLayer.removeLayer(route);
      const track = this.tracks.get(m.id);
      if (track) this.routeLayer.removeLayer(track);
      this.routes.delete(m.id);
      this.tracks.delete(m.id);
      return;
    }
    const latlngs = m.planned_route.map(([lon, lat]) => [lat, lon]);
    if (!route) {
      route = L.polyline(latlngs, { color: "#2471a3", weight: 2, dashArray: "6 6", interactive: false });
      route.addTo(this.routeLayer);
      this.routes.set(m.id, route);
    } else {
      route.setLatLngs(latlngs);
    }
    route.setStyle({ opacity: selected ? 0.95 : 0.5 });
  }

  hasTrack(missionId) {
    return this.tracks.has(missionId);
  }

  setTrack(missionId, latlngs) {
    let track = this.tracks.get(missionId);
    if (!track) {
      if (!this.routes.has(missionId)) return; // not shown (ended and not selected)
      track = L.polyline([], { color: "#e67e22", weight: 3, interactive: false }).addTo(this.routeLayer);
      this.tracks.set(missionId, track);
    }
    track.setLatLngs([...latlngs, ...track.getLatLngs()]);
  }

  clearTrack(missionId) {
    const track = this.tracks.get(missionId);
    if (track) track.setLatLngs([]);
  }

  extendTrack(missionId, lat, lon) {
    const track = this.tracks.get(missionId);
    if (track) track.addLatLng([lat, lon]);
  }

  // ------------------------------------------------------------------ pilot targets and map picks

  showPilotTarget(kind, lat, lon, radius) {
    this.pilotLayer.clearLayers();
    if (kind === "orbit") {
      L.circle([lat, lon], { radius, color: "#8e44ad", weight: 2, fill: false, interactive: false }).addTo(this.pilotLayer);
    }
    const icon = L.divIcon({
      className: "target-icon",
      html: el("div", { class: "target", testid: "pilot-target" }, "✕"),
      iconSize: [16, 16],
      iconAnchor: [8, 8],
    });
    L.marker([lat, lon], { icon, interactive: false, keyboard: false }).addTo(this.pilotLayer);
  }

  clearPilotTarget() {
    this.pilotLayer.clearLayers();
  }

  /** The next click on the map (anywhere, also on a zone or a marker) goes to `cb(latlng)`. */
  startPick(cb) {
    this.pick = cb;
    this.container.classList.add("picking");
  }

  cancelPick() {
    this.pick = null;
    this.container.classList.remove("picking");
  }

  _click(e) {
    if (!this.pick) return;
    const cb = this.pick;
    this.cancelPick();
    cb(e.latlng);
  }
}
