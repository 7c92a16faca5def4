"""Checks of a scenario's expectations against the record of its run.

Each check is a pure function of the scenario and the record (what the public API returned, plus the
sampled drone states), returning pass or fail with a sentence a tester can act on: what was expected,
what happened, and where to look (mission id, time, position). Nothing here talks to the service, so a
saved JSON report can be re-checked offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from shapely.geometry import LineString, Point

from dfr.area import METRES_PER_FOOT
from dfr.dispatch.sortie import planner_zones
from dfr.geo import distance_m
from dfr.planning import path_is_clear
from dfr.sitl.scenario import Expectation, Scenario

__all__ = ["CheckResult", "evaluate", "summary_times"]

Record = dict[str, Any]
ALT_TOLERANCE_M = 2.0


@dataclass(frozen=True)
class CheckResult:
    index: int
    kind: str
    ok: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mission(record: Record, ref: str) -> dict[str, Any] | None:
    ids = set(record["refs"].get(ref, []))
    return next((m for m in record["missions"] if m["incident_id"] in ids), None)


def _no_mission(ref: str, record: Record) -> str:
    if not record["refs"].get(ref):
        return f"incident {ref} was never stored"
    return f"incident {ref} got no mission"


def _states(record: Record, m: dict[str, Any]) -> list[str]:
    return [e["to_state"] for e in record["events"].get(m["id"], [])]


def _fmt_t(t: float | None) -> str:
    return "?" if t is None else f"t={t:.0f} s"


# ---------------------------------------------------------------------------------------------------------
# The checks; each returns (ok, reason)


def on_scene_within(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    got = m.get("achieved_time_to_scene_s")
    if got is None:
        return (
            False,
            f"{a.incident}: never on scene (mission {m['id'][:8]} ended {m['state']}: {m.get('reason')})",
        )
    ok = got <= a.seconds
    cmp = "within" if ok else "later than"
    expected = m.get("expected_time_to_scene_s")
    return ok, f"{a.incident}: on scene after {got:.0f} s, {cmp} {a.seconds:g} s (planned {expected} s)"


def mission_state(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    wanted = a.state if isinstance(a.state, list) else [a.state]
    reason = m.get("reason") or ""
    ok = m["state"] in wanted
    text = f"{a.incident}: mission ended {m['state']}" + (f" ({reason})" if reason else "")
    if a.reason_contains is not None and a.reason_contains.lower() not in reason.lower():
        return False, f"{text}; expected a reason containing {a.reason_contains!r}"
    return ok, text + ("" if ok else f", expected {' or '.join(wanted)}")


def event(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    evs = [e for e in r["events"].get(m["id"], []) if e["to_state"] == a.state]
    if not evs:
        return False, f"{a.incident}: never {a.state} (went {' > '.join(_states(r, m))})"
    for e in evs:
        why = e.get("reason") or ""
        if a.reason_contains is not None and a.reason_contains.lower() not in why.lower():
            continue
        if a.actor is not None and e.get("actor") != a.actor:
            continue
        return True, f"{a.incident}: {a.state} at {_fmt_t(e.get('t'))} by {e.get('actor')}" + (
            f" ({why})" if why else ""
        )
    seen = "; ".join(f"by {e.get('actor')}: {e.get('reason')}" for e in evs)
    want = " and ".join(
        x
        for x in (
            f"reason containing {a.reason_contains!r}" if a.reason_contains else "",
            f"actor {a.actor}" if a.actor else "",
        )
        if x
    )
    return False, f"{a.incident}: {a.state} but not with {want} (seen {seen})"


def state_never(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    states = _states(r, m)
    if a.state in states:
        return False, f"{a.incident}: was {a.state} though it must not be (went {' > '.join(states)})"
    return True, f"{a.incident}: never {a.state} (went {' > '.join(states)})"


def _zone_hits(s: Scenario, r: Record) -> list[str]:
    """Where a flown track or a sampled position entered a zone active at the altitude flown."""
    hits: list[str] = []
    zones = planner_zones(s.area)
    for m in r["missions"]:
        geo = r["geojson"].get(m["id"]) or {"features": []}
        track = next((f for f in geo["features"] if f["properties"].get("kind") == "flown_track"), None)
        if track is None:
            continue
        coords = [(float(p[0]), float(p[1])) for p in track["geometry"]["coordinates"]]
        if not path_is_clear(coords, zones, m["altitude_m"]):
            bad = [
                z.name
                for z in zones
                if z.applies_at(m["altitude_m"]) and LineString(coords).crosses(z.geometry)
            ]
            hits.append(f"mission {m['id'][:8]} ({m['drone_id']}) track enters {', '.join(bad) or 'a zone'}")
    for p in r.get("samples", []):
        alt = p.get("alt")
        if not p.get("in_air") or alt is None or alt < 1.0:
            continue
        pt = Point(p["lon"], p["lat"])
        for z in s.area.zones:
            # the height a multicopter holds wanders by a metre or two: a drone cruising just under a
            # zone's floor (as planned) is not "in" it because one sample read 0.5 m high
            if z.applies_at(max(0.0, alt - ALT_TOLERANCE_M) / METRES_PER_FOOT) and z.geometry.contains(pt):
                hits.append(
                    f"{p['drone']} inside {z.name} at {_fmt_t(p['t'])} ({p['lat']:.5f}, {p['lon']:.5f}, "
                    f"{alt:.0f} m, {p['src']})"
                )
                break
    return hits


def never_in_no_fly_zone(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    hits = _zone_hits(s, r)
    tracks = sum(
        1
        for g in r["geojson"].values()
        for f in g["features"]
        if f["properties"].get("kind") == "flown_track"
    )
    if hits:
        more = f" (and {len(hits) - 3} more)" if len(hits) > 3 else ""
        return False, "; ".join(hits[:3]) + more
    airborne = sum(1 for p in r.get("samples", []) if p.get("in_air"))
    if tracks == 0 and airborne == 0:
        return True, "nothing flew, so nothing entered a zone"
    return True, f"{tracks} flown track(s) and {airborne} airborne samples all clear of every active zone"


def landed_at_dock(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    dock = s.area.dock(s.area.drone(a.drone).dock)
    last = [p for p in r.get("samples", []) if p["drone"] == a.drone]
    d = next((x for x in r["drones"] if x["id"] == a.drone), None)
    tel = (d or {}).get("telemetry") or {}
    if tel.get("lat") is not None:
        lat, lon, in_air = tel["lat"], tel["lon"], tel.get("in_air") or tel.get("armed")
    elif last:
        lat, lon, in_air = last[-1]["lat"], last[-1]["lon"], last[-1]["in_air"]
    else:
        return False, f"{a.drone}: no position known at the end"
    dist = distance_m(lat, lon, dock.lat, dock.lon)
    if in_air:
        return False, f"{a.drone}: still in the air at the end, {dist:.0f} m from dock {dock.id}"
    ok = dist <= a.within_m
    return ok, f"{a.drone}: on the ground {dist:.1f} m from dock {dock.id} (limit {a.within_m:g} m)"


def incidents(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    n_inc = len(r["incidents"])
    n_rep = len(r["reports"])
    counted = sum(int(i.get("report_count", 0)) for i in r["incidents"])
    text = f"{n_rep} report(s) posted, {n_inc} incident(s) stored holding {counted} report(s)"
    if n_inc != a.incidents:
        return False, f"{text}; expected {a.incidents} incident(s)"
    if a.reports is not None and n_rep != a.reports:
        return False, f"{text}; expected {a.reports} report(s) posted"
    return True, text


def no_record_lost(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    lost = [rep["external_id"] for rep in r["reports"] if not rep.get("incident_id")]
    stored = r.get("stored_incidents", {})
    missing = [i for ids in r["refs"].values() for i in ids if stored.get(i) is None]
    counted = sum(int(i.get("report_count", 0)) for i in r["incidents"])
    problems = []
    if lost:
        problems.append(f"reports without an incident: {', '.join(lost[:5])}")
    if missing:
        problems.append(f"incidents not readable back: {', '.join(x[:8] for x in missing[:5])}")
    if counted < len(r["reports"]):
        problems.append(f"the store counts {counted} report(s) but {len(r['reports'])} were accepted")
    if problems:
        return False, "; ".join(problems)
    return (
        True,
        f"all {len(r['reports'])} report(s) stored ({counted} counted on {len(r['incidents'])} incident(s))",
    )


def mission_count(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    ms = [m for m in r["missions"] if a.state is None or m["state"] == a.state]
    what = "missions" + (f" ended {a.state}" if a.state else "")
    states = ", ".join(m["state"] for m in r["missions"]) or "none"
    return len(ms) == a.count, f"{len(ms)} {what}, expected {a.count} (all: {states})"


def max_altitude(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    alts = [(p["alt"], p) for p in r.get("samples", []) if p.get("alt") is not None]
    if not alts:
        return False, "no altitude was sampled"
    top, p = max(alts, key=lambda x: x[0])
    ok = top <= a.metres
    return ok, f"highest {top:.1f} m ({p['drone']} at {_fmt_t(p['t'])}, {p['src']}), limit {a.metres:g} m"


def route_bends(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    route = [tuple(p) for p in m.get("planned_route") or []]
    zone = next(z for z in s.area.zones if z.id == a.zone)
    if len(route) < 2:
        return False, f"{a.incident}: no planned route"
    line = LineString(route)
    direct = LineString([route[0], route[-1]])
    if line.intersects(zone.geometry):
        return False, f"{a.incident}: the planned route crosses {zone.name}"
    if len(route) < a.min_points:
        return (
            False,
            f"{a.incident}: the route has {len(route)} points (straight), expected at least {a.min_points}",
        )
    crosses = direct.intersects(zone.geometry)
    return True, (
        f"{a.incident}: {len(route)}-point route keeps out of {zone.name}"
        + (" (the straight line would cross it)" if crosses else "")
    )


def standoff(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    so = m.get("standoff")
    if so is None:
        return False, f"{a.incident}: no stand-off point (mission {m['state']}: {m.get('reason')})"
    if a.zone is not None and so["zone_id"] != a.zone:
        return False, f"{a.incident}: stand-off for zone {so['zone_id']}, expected {a.zone}"
    return True, f"{a.incident}: watched from {so['distance_m']:.0f} m outside zone {so['zone_id']}"


def _flight_time(m: dict[str, Any]) -> float | None:
    if m.get("t_launched") is None or m.get("t_landed") is None:
        return None
    return float(m["t_landed"] - m["t_launched"])


def flight_time_within(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    ft = _flight_time(m)
    if ft is None:
        return False, f"{a.incident}: did not fly and land (mission {m['state']})"
    return ft <= a.seconds, f"{a.incident}: flew {ft:.0f} s, limit {a.seconds:g} s"


def drone_used(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    m = _mission(r, a.incident)
    if m is None:
        return False, _no_mission(a.incident, r)
    return m.get("drone_id") == a.drone, f"{a.incident}: flown by {m.get('drone_id')}, expected {a.drone}"


def audit(s: Scenario, r: Record, a: Any) -> tuple[bool, str]:
    hits = [e for e in r["audit"] if e["action"] == a.action and (a.actor is None or e["actor"] == a.actor)]
    who = f" by {a.actor}" if a.actor else ""
    return len(
        hits
    ) >= a.count_at_least, f"{len(hits)} audit record(s) {a.action}{who}, expected >= {a.count_at_least}"


CHECKS: dict[str, Callable[[Scenario, Record, Any], tuple[bool, str]]] = {
    "on_scene_within": on_scene_within,
    "mission_state": mission_state,
    "event": event,
    "state_never": state_never,
    "never_in_no_fly_zone": never_in_no_fly_zone,
    "landed_at_dock": landed_at_dock,
    "incidents": incidents,
    "no_record_lost": no_record_lost,
    "mission_count": mission_count,
    "max_altitude": max_altitude,
    "route_bends": route_bends,
    "standoff": standoff,
    "flight_time_within": flight_time_within,
    "drone_used": drone_used,
    "audit": audit,
}
assert set(CHECKS) == set(Expectation.model_fields)


def evaluate(scenario: Scenario, record: Record) -> list[CheckResult]:
    """Every expectation of the scenario, checked against the record, in file order."""
    out = []
    for i, exp in enumerate(scenario.spec.expect):
        try:
            ok, reason = CHECKS[exp.kind](scenario, record, exp.args)
        except Exception as e:  # a check that cannot be evaluated is a failure, with why
            ok, reason = False, f"could not be checked: {type(e).__name__}: {e}"
        out.append(CheckResult(i, exp.kind, ok, reason))
    return out


def summary_times(record: Record) -> tuple[float | None, float | None]:
    """For the table: the slowest time to scene over the missions that got there, and the total
    flight time (launch to landing, simulated seconds) over every mission that flew."""
    tts = [
        m["achieved_time_to_scene_s"] for m in record.get("missions", []) if m.get("achieved_time_to_scene_s")
    ]
    fts = [ft for m in record.get("missions", []) if (ft := _flight_time(m)) is not None]
    return (max(tts) if tts else None, round(sum(fts), 1) if fts else None)
