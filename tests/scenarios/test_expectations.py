"""Each check fails on a record that breaks it, with a reason that says what happened (no simulator:
hand-made records in the shape the runner collects)."""

from __future__ import annotations

from typing import Any

import pytest

from dfr.sitl.expectations import evaluate
from dfr.sitl.scenario import Scenario, load_scenario
from tests.scenarios.conftest import SHIPPED

HELIPAD = (32.6206, -117.0427)  # inside sharp-cv-helipad (ground to 400 ft)


def mission(**kw: Any) -> dict[str, Any]:
    m = {
        "id": "11111111-2222-3333-4444-555555555555",
        "incident_id": "inc-1",
        "drone_id": "cv-1",
        "state": "landed",
        "reason": None,
        "altitude_m": 60.0,
        "planned_route": [[-117.0842, 32.6401], [-117.0800, 32.6450]],
        "standoff": None,
        "achieved_time_to_scene_s": 90.0,
        "expected_time_to_scene_s": 97.0,
        "t_launched": 2.0,
        "t_landed": 230.0,
    }
    m.update(kw)
    return m


def record(missions: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "refs": {"shot": ["inc-1"]},
        "reports": [
            {"ref": "shot", "external_id": "x-1", "incident_id": "inc-1", "lat": 32.645, "lon": -117.08}
        ],
        "incidents": [{"id": "inc-1", "report_count": 1}],
        "stored_incidents": {"inc-1": {"id": "inc-1"}},
        "missions": missions,
        "events": {
            m["id"]: [
                {"to_state": s, "t": 1.0, "actor": "dispatcher", "reason": None}
                for s in ("launching", "en_route", "on_scene", "returning", "landed")
            ]
            for m in missions
        },
        "geojson": {m["id"]: {"features": []} for m in missions},
        "audit": [],
        "drones": [
            {"id": "cv-1", "telemetry": {"lat": 32.6401, "lon": -117.0842, "in_air": False, "armed": False}}
        ],
        "samples": [],
    }
    r.update(kw)
    return r


@pytest.fixture(scope="module")
def gunshot() -> Scenario:
    return load_scenario(SHIPPED / "single-gunshot.yaml")


def by_kind(scenario: Scenario, rec: dict[str, Any]) -> dict[str, Any]:
    return {c.kind: c for c in evaluate(scenario, rec)}


def test_clean_record_passes(gunshot: Scenario) -> None:
    cruise = {"t": 40.0, "drone": "cv-1", "src": "vehicle", "lat": 32.643, "lon": -117.082, "alt": 60.0}
    checks = evaluate(gunshot, record([mission()], samples=[{**cruise, "in_air": True}]))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_late_failed_and_wrong_states_fail(gunshot: Scenario) -> None:
    rec = record([mission(achieved_time_to_scene_s=400.0, state="failed", reason="TimeoutError: leg")])
    rec["events"][mission()["id"]].insert(
        0, {"to_state": "queued", "t": 0.5, "actor": "dispatcher", "reason": "busy"}
    )
    c = by_kind(gunshot, rec)
    assert not c["on_scene_within"].ok and "after 400 s, later than 150 s" in c["on_scene_within"].reason
    assert (
        not c["mission_state"].ok
        and "ended failed (TimeoutError: leg), expected landed" in c["mission_state"].reason
    )
    assert not c["state_never"].ok and "was queued" in c["state_never"].reason


def test_track_through_a_zone_fails_naming_it(gunshot: Scenario) -> None:
    m = mission()
    track = [[-117.0570, 32.6290], [HELIPAD[1], HELIPAD[0]], [-117.0300, 32.6150]]
    rec = record([m])
    rec["geojson"][m["id"]] = {
        "features": [{"properties": {"kind": "flown_track"}, "geometry": {"coordinates": track}}]
    }
    rec["samples"] = [
        {
            "t": 50.0,
            "drone": "cv-1",
            "src": "vehicle",
            "lat": HELIPAD[0],
            "lon": HELIPAD[1],
            "alt": 60.0,
            "in_air": True,
        }
    ]
    reason = by_kind(gunshot, rec)["never_in_no_fly_zone"]
    assert not reason.ok
    assert "track enters" in reason.reason and "cv-1 inside Sharp" in reason.reason, reason.reason


def test_altitude_tolerance_only_near_a_floor(gunshot: Scenario) -> None:
    # 61 m (200.1 ft) under an approach zone starting at 200 ft is the planned cruise, not a breach;
    # 80 m is inside the approach zone
    approach = (32.6330, -117.0427)  # inside sharp-cv-helipad-approach (200-400 ft), outside the helipad
    sample = {
        "t": 1.0,
        "drone": "cv-1",
        "src": "vehicle",
        "lat": approach[0],
        "lon": approach[1],
        "in_air": True,
    }
    ok = by_kind(gunshot, record([mission()], samples=[{**sample, "alt": 61.0}]))["never_in_no_fly_zone"]
    bad = by_kind(gunshot, record([mission()], samples=[{**sample, "alt": 80.0}]))["never_in_no_fly_zone"]
    assert ok.ok, ok.reason
    assert not bad.ok and "approach" in bad.reason.lower()


def test_landing_away_from_dock_and_altitude_and_counts_fail(gunshot: Scenario) -> None:
    rec = record(
        [mission(), mission(id="99999999-2222-3333-4444-555555555555")],
        drones=[
            {"id": "cv-1", "telemetry": {"lat": 32.6450, "lon": -117.0800, "in_air": False, "armed": False}}
        ],
        samples=[
            {
                "t": 9.0,
                "drone": "cv-1",
                "src": "api",
                "lat": 32.64,
                "lon": -117.08,
                "alt": 95.0,
                "in_air": True,
            }
        ],
        reports=[{"ref": "shot", "external_id": "x-1", "incident_id": None, "lat": 32.645, "lon": -117.08}],
    )
    c = by_kind(gunshot, rec)
    assert not c["landed_at_dock"].ok and "m from dock cv-civic (limit 15 m)" in c["landed_at_dock"].reason
    assert not c["max_altitude"].ok and "highest 95.0 m" in c["max_altitude"].reason
    assert not c["mission_count"].ok and "2 missions, expected 1" in c["mission_count"].reason
    assert not c["no_record_lost"].ok and "reports without an incident: x-1" in c["no_record_lost"].reason


def test_straight_route_through_zone_does_not_bend() -> None:
    airport = load_scenario(SHIPPED / "airport-route-bends.yaml")
    straight = [[-116.98, 32.584044], [-116.977868, 32.565956]]
    rec = record([mission(drone_id="om-1", planned_route=straight)], refs={"south": ["inc-1"]})
    c = by_kind(airport, rec)
    assert not c["route_bends"].ok and "crosses Test airport" in c["route_bends"].reason
