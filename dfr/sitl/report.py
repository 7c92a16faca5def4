"""Scenario reports: a JSON file with the verdict, every check and the whole record, and a PNG map.

The map is drawn with OpenCV (no plotting library needed): the operating area, the no-fly zones, the
docks, each mission's planned route (thin, with its waypoints) and flown track (thick, one colour per
drone), the incidents and stand-off points, and under it a timeline strip with one row per mission
(coloured by state) and a tick for every timeline step (faults, pilot actions, restarts). A tester should
see at a glance whether the route bent around the zone and when things happened.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from dfr.sitl.scenario import Scenario

if TYPE_CHECKING:
    from dfr.sitl.runner import ScenarioResult

__all__ = ["draw_map", "write_report"]

W = 1000
MAP_H = 760
STRIP_ROW = 22
FONT = cv2.FONT_HERSHEY_SIMPLEX
Color = tuple[int, int, int]

# BGR
BG: Color = (245, 245, 240)
AREA_EDGE: Color = (90, 90, 90)
ZONE_FILL: Color = (120, 120, 235)
ZONE_EDGE: Color = (30, 30, 190)
ZONE_HIGH: Color = (150, 190, 245)  # zones that start above the flight altitude
ROUTE: Color = (0, 150, 230)
DOCK: Color = (160, 80, 0)
INCIDENT: Color = (160, 0, 160)
TRACK_COLOURS: list[Color] = [(200, 110, 0), (30, 150, 30), (0, 100, 200), (150, 60, 160), (80, 80, 80)]
STATE_COLOURS: dict[str, Color] = {
    "pending_approval": (0, 200, 240),
    "queued": (160, 160, 160),
    "launching": (240, 200, 120),
    "en_route": (220, 140, 30),
    "on_scene": (40, 170, 40),
    "returning": (200, 100, 160),
    "landed": (120, 120, 120),
    "aborted": (60, 60, 200),
    "failed": (0, 0, 200),
    "declined": (0, 120, 220),
}


class _View:
    """Lon/lat to pixels: a local equirectangular frame (metres) fitted to the picture, north up."""

    def __init__(self, bounds: tuple[float, float, float, float], width: int, height: int) -> None:
        lon0, lat0, lon1, lat1 = bounds
        self.lat_c = (lat0 + lat1) / 2
        self.kx = 111_320.0 * math.cos(math.radians(self.lat_c))
        self.ky = 110_574.0
        wm, hm = (lon1 - lon0) * self.kx, (lat1 - lat0) * self.ky
        self.scale = min((width - 40) / max(wm, 1.0), (height - 40) / max(hm, 1.0))  # px per metre
        self.lon0, self.lat1 = lon0, lat1
        self.ox = (width - wm * self.scale) / 2
        self.oy = (height - hm * self.scale) / 2

    def px(self, lon: float, lat: float) -> tuple[int, int]:
        x = self.ox + (lon - self.lon0) * self.kx * self.scale
        y = self.oy + (self.lat1 - lat) * self.ky * self.scale
        return round(x), round(y)

    def poly(self, coords: Any) -> NDArray[np.int32]:
        return np.array([self.px(x, y) for x, y, *_ in coords], dtype=np.int32)


def _bounds(scenario: Scenario, record: dict[str, Any]) -> tuple[float, float, float, float]:
    """What the scenario is about (docks used, incidents, routes, tracks), with a margin; else the area."""
    pts: list[tuple[float, float]] = []
    for drone_id in record.get("drone_ids", []):
        dock = scenario.area.dock(scenario.area.drone(drone_id).dock)
        pts.append((dock.lon, dock.lat))
    pts += [(rep["lon"], rep["lat"]) for rep in record.get("reports", [])]
    for m in record.get("missions", []):
        pts += [(float(p[0]), float(p[1])) for p in m.get("planned_route") or []]
    for g in record.get("geojson", {}).values():
        for f in g["features"]:
            if f["geometry"]["type"] == "LineString":
                pts += [(float(p[0]), float(p[1])) for p in f["geometry"]["coordinates"]]
    if not pts:
        b = scenario.area.operating_area.bounds
        return (b[0], b[1], b[2], b[3])
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    lon_c, lat_c = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    span_lon = max(max(xs) - min(xs), 0.012) * 1.3 + 0.004
    span_lat = max(max(ys) - min(ys), 0.010) * 1.3 + 0.004
    return (lon_c - span_lon / 2, lat_c - span_lat / 2, lon_c + span_lon / 2, lat_c + span_lat / 2)


def _text(
    img: NDArray[np.uint8], s: str, org: tuple[int, int], color: Color = (30, 30, 30), size: float = 0.45
) -> None:
    cv2.putText(img, s, org, FONT, size, color, 1, cv2.LINE_AA)


def _cross(img: NDArray[np.uint8], c: tuple[int, int], color: Color, r: int = 8) -> None:
    cv2.line(img, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), color, 2, cv2.LINE_AA)
    cv2.line(img, (c[0] - r, c[1] + r), (c[0] + r, c[1] - r), color, 2, cv2.LINE_AA)


def draw_map(scenario: Scenario, result: ScenarioResult) -> NDArray[np.uint8]:
    record = result.record
    missions = record.get("missions", [])
    steps = record.get("timeline", [])
    strip_h = 40 + STRIP_ROW * max(1, len(missions)) + 42
    img = np.full((MAP_H + strip_h, W, 3), BG, dtype=np.uint8)
    view = _View(_bounds(scenario, record), W, MAP_H)
    area = scenario.area
    alt = min((m["altitude_m"] for m in missions), default=area.default_altitude_m)

    cv2.polylines(img, [view.poly(area.operating_area.exterior.coords)], True, AREA_EDGE, 2, cv2.LINE_AA)
    overlay = img.copy()
    for z in area.zones:
        active = z.applies_at(alt / 0.3048)
        cv2.fillPoly(overlay, [view.poly(z.geometry.exterior.coords)], ZONE_FILL if active else ZONE_HIGH)
    img[:MAP_H] = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)[:MAP_H]
    labelled: list[tuple[int, int]] = []  # zone label positions, so that concentric zones do not overprint
    for z in area.zones:
        active = z.applies_at(alt / 0.3048)
        pts = view.poly(z.geometry.exterior.coords)
        cv2.polylines(img, [pts], True, ZONE_EDGE if active else ZONE_HIGH, 1, cv2.LINE_AA)
        c = view.px(z.geometry.centroid.x, z.geometry.centroid.y)
        c = (c[0], c[1] + 14 * sum(1 for q in labelled if abs(q[0] - c[0]) < 40 and abs(q[1] - c[1]) < 10))
        labelled.append(c)
        if 0 <= c[0] < W and 0 <= c[1] < MAP_H:
            band = f"{z.floor_ft_agl:.0f}-{z.ceiling_ft_agl:.0f} ft"
            _text(img, f"{z.id} ({band})", (c[0] - 60, c[1]), ZONE_EDGE, 0.4)

    colour_of = {d: TRACK_COLOURS[i % len(TRACK_COLOURS)] for i, d in enumerate(record.get("drone_ids", []))}
    for m in missions:
        geo = record.get("geojson", {}).get(m["id"]) or {"features": []}
        colour = colour_of.get(m.get("drone_id") or "", TRACK_COLOURS[-1])
        for f in geo["features"]:
            kind = f["properties"].get("kind")
            if kind == "flown_track":
                cv2.polylines(img, [view.poly(f["geometry"]["coordinates"])], False, colour, 3, cv2.LINE_AA)
            elif kind == "standoff":
                c = view.px(*f["geometry"]["coordinates"][:2])
                cv2.circle(img, c, 7, INCIDENT, 2, cv2.LINE_AA)
                _text(img, "stand-off", (c[0] + 9, c[1] + 14), INCIDENT, 0.4)
    # the planned routes on top of the tracks, thin, so that both show where they coincide
    for m in missions:
        route = m.get("planned_route") or []
        if len(route) >= 2:
            pts = view.poly(route)
            cv2.polylines(img, [pts], False, ROUTE, 2, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, (int(p[0]), int(p[1])), 4, ROUTE, -1, cv2.LINE_AA)
    # positions flown outside any mission (e.g. after a restart) from the samples, thin
    for drone_id, colour in colour_of.items():
        pts_s = [
            (p["lon"], p["lat"])
            for p in record.get("samples", [])
            if p["drone"] == drone_id and p["src"] == "vehicle" and p.get("in_air")
        ]
        if len(pts_s) >= 2:
            cv2.polylines(img, [view.poly(pts_s)], False, colour, 1, cv2.LINE_AA)
    for drone_id in record.get("drone_ids", []):
        dock = area.dock(area.drone(drone_id).dock)
        c = view.px(dock.lon, dock.lat)
        cv2.rectangle(img, (c[0] - 6, c[1] - 6), (c[0] + 6, c[1] + 6), DOCK, -1)
        _text(img, f"{dock.id}", (c[0] + 9, c[1] - 6), DOCK, 0.4)
    seen: set[str] = set()
    for rep in record.get("reports", []):
        c = view.px(rep["lon"], rep["lat"])
        _cross(img, c, INCIDENT, 6 if rep["ref"] in seen else 9)
        if rep["ref"] not in seen:
            _text(img, rep["ref"], (c[0] + 10, c[1] + 4), INCIDENT, 0.5)
        seen.add(rep["ref"])

    # legend and title
    verdict_colour: Color = (30, 140, 30) if result.verdict == "pass" else (0, 0, 200)
    _text(img, f"{scenario.name}: {result.verdict.upper()}", (12, 24), verdict_colour, 0.7)
    _text(
        img,
        "route (planned) / track (flown) / x incident / box dock / red: no-fly at flight altitude",
        (12, 46),
        (60, 60, 60),
        0.4,
    )
    metres = 1000.0 if view.scale * 1000 < W / 3 else 500.0
    x0, y0 = W - 30 - int(metres * view.scale), MAP_H - 20
    cv2.line(img, (x0, y0), (W - 30, y0), (40, 40, 40), 2)
    _text(img, f"{metres:.0f} m", (x0, y0 - 6), (40, 40, 40), 0.4)
    _draw_strip(img, missions, record, steps)
    return img


def _draw_strip(
    img: NDArray[np.uint8],
    missions: list[dict[str, Any]],
    record: dict[str, Any],
    steps: list[dict[str, Any]],
) -> None:
    """One row per mission, coloured by state over simulated time, with ticks for the timeline steps."""
    top = MAP_H + 10
    cv2.line(img, (0, MAP_H), (W, MAP_H), (180, 180, 180), 1)
    ends = [e.get("t") or 0.0 for m in missions for e in record.get("events", {}).get(m["id"], [])]
    ends += [s.get("t", 0.0) for s in steps] + [p["t"] for p in record.get("samples", [])[-1:]]
    t_end = max([*ends, 1.0])
    x0, x1 = 110, W - 20

    def tx(t: float) -> int:
        return int(x0 + (x1 - x0) * max(0.0, t) / t_end)

    for k in range(0, int(t_end) + 1, max(10, int(t_end / 8) // 10 * 10 or 10)):
        cv2.line(img, (tx(k), top + 14), (tx(k), top + 20), (90, 90, 90), 1)
        _text(img, f"{k}s", (tx(k) - 8, top + 12), (90, 90, 90), 0.35)
    base = top + 30 + STRIP_ROW * max(1, len(missions))
    for k, s in enumerate(steps):
        x = tx(s.get("t", 0.0))
        dy = 11 * (k % 2)  # steps close together: alternate the labels' rows
        cv2.line(img, (x, top + 20), (x, base + dy), (0, 0, 0), 1)
        _text(img, str(s.get("label") or s["what"])[:12], (x + 2, base + 10 + dy), (0, 0, 0), 0.35)
    for row, m in enumerate(reversed(missions)):  # oldest first
        y = top + 24 + STRIP_ROW * row
        _text(img, f"{(m.get('drone_id') or '-')[:6]} {m['id'][:4]}", (6, y + 14), (40, 40, 40), 0.38)
        evs = record.get("events", {}).get(m["id"], [])
        for i, e in enumerate(evs):
            t0 = e.get("t") or 0.0
            t1 = evs[i + 1].get("t") if i + 1 < len(evs) else t_end
            colour = STATE_COLOURS.get(e["to_state"], (200, 200, 200))
            cv2.rectangle(img, (tx(t0), y), (max(tx(t0) + 1, tx(t1 or t_end)), y + 16), colour, -1)
            if tx(t1 or t_end) - tx(t0) > 48:
                _text(img, e["to_state"], (tx(t0) + 3, y + 12), (20, 20, 20), 0.35)


def write_report(scenario: Scenario, result: ScenarioResult, directory: Path) -> tuple[str, str]:
    """Write ``<name>.json`` and ``<name>.png`` into `directory`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{scenario.name}.json"
    png_path = directory / f"{scenario.name}.png"
    body = {
        "scenario": scenario.name,
        "file": str(scenario.path),
        "description": scenario.spec.description,
        "backend": result.backend,
        "speed": result.speed,
        "verdict": result.verdict,
        "error": result.error,
        "time_to_scene_s": result.time_to_scene_s,
        "flight_time_s": result.flight_time_s,
        "wall_s": result.wall_s,
        "checks": [c.to_dict() for c in result.checks],
        "record": result.record,
    }
    json_path.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")
    img = draw_map(scenario, result)
    if not cv2.imwrite(str(png_path), img):
        raise OSError(f"could not write {png_path}")
    return str(json_path), str(png_path)
