"""dfr.dispatch.selection on the sample Chula Vista area: the drone over the scene first is chosen, every
drone left out says why, the battery model behaves, and scenes that cannot be flown to are refused as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from dfr.area import load_area
from dfr.dispatch.policy import Policy, load_policy
from dfr.dispatch.selection import (
    Candidate,
    Choice,
    NoDroneAvailable,
    Rejection,
    SceneRefused,
    WaitForCharge,
    battery_needed_pct,
    choose_drone,
)
from dfr.dispatch.sortie import plan_sortie
from dfr.planning import TargetInNoFlyZone

ROOT = Path(__file__).resolve().parents[2]
AREA = load_area(ROOT / "missions" / "areas" / "chula-vista.yaml")
POLICY = load_policy(ROOT / "missions" / "policies" / "default.yaml")

NEAR_CIVIC = (32.6380, -117.0800)  # ~0.5 km from the Civic Center dock (cv-1, and the slower cv-4)
NEAR_EAST = (32.6250, -117.0550)  # ~0.5 km from the East dock (cv-3)
HELIPAD = (32.6206, -117.0427)  # centre of the sharp-cv-helipad zone, ground to 400 ft
OUTSIDE = (32.5900, -117.1000)  # south-west of the operating area's boundary


def fleet(**changes: dict[str, Any]) -> list[Candidate]:
    """The area's four drones at their docks, fully charged, with per-drone changes by id."""
    out = []
    for drone in AREA.drones:
        dock = AREA.dock(drone.dock)
        c = Candidate(drone.id, dock.id, dock.lat, dock.lon, True, True, 95.0, drone.response_speed_m_s)
        out.append(dataclasses.replace(c, **changes.get(drone.id.replace("-", "_"), {})))
    return out


# A drone 100 m north of its dock: not on it, so not charging (the sample area's docks charge).
OFF_DOCK = {
    d.id.replace("-", "_"): {"lat": AREA.dock(d.dock).lat + 0.0009, "lon": AREA.dock(d.dock).lon}
    for d in AREA.drones
}


def reasons(exc: NoDroneAvailable) -> dict[str, str]:
    return {r.drone_id: r.reason for r in exc.rejections}


def choose(candidates: Sequence[Candidate], scene: tuple[float, float], policy: Policy = POLICY) -> Choice:
    return choose_drone(AREA, policy, candidates, scene)


# ---------------------------------------------------------------------------------------------------------
# Choosing


def test_nearest_by_eta_wins() -> None:
    assert choose(fleet(), NEAR_CIVIC).drone_id == "cv-1"  # cv-4 shares the dock but is slower
    choice = choose(fleet(), NEAR_EAST)
    assert choice.drone_id == "cv-3"
    assert choice.eta_s == choice.plan.eta_s
    assert 400 < choice.distance_m < 600
    # planned at 10 m/s: cv-3 is configured for 12 but its airframe tops out at 10 (max_speed_m_s)
    assert choice.battery_needed_pct == pytest.approx(battery_needed_pct(choice.plan, POLICY, 10.0))


def test_eta_not_distance_decides() -> None:
    """cv-4 (8 m/s) beats nobody at its own dock, but wins once cv-1 is busy."""
    assert choose(fleet(cv_1={"available": False}), NEAR_CIVIC).drone_id == "cv-4"


def test_ties_go_to_higher_battery_then_id() -> None:
    civic = AREA.dock("cv-civic")
    twins = [
        Candidate("b", civic.id, civic.lat, civic.lon, True, True, 80.0, 12.0),
        Candidate("a", civic.id, civic.lat, civic.lon, True, True, 70.0, 12.0),
    ]
    assert choose(twins, NEAR_CIVIC).drone_id == "b"
    level = [dataclasses.replace(c, battery_pct=80.0) for c in twins]
    assert choose(level, NEAR_CIVIC).drone_id == "a"


# ---------------------------------------------------------------------------------------------------------
# Rejections


def test_every_drone_says_why() -> None:
    candidates = fleet(
        cv_1={"available": False},
        cv_2={"battery_pct": 35.0, **OFF_DOCK["cv_2"]},  # landed away from its dock: it cannot charge
        cv_3={"connected": False},
        cv_4={"battery_pct": None},
    )
    with pytest.raises(NoDroneAvailable) as exc:
        choose(candidates, NEAR_CIVIC)
    assert exc.value.rejections == [
        Rejection("cv-1", "busy"),
        Rejection("cv-2", "battery 35 % below the 40 % minimum"),
        Rejection("cv-3", "not connected"),
        Rejection("cv-4", "battery level unknown"),
    ]
    assert str(exc.value) == (
        "no drone can respond: cv-1 busy; cv-2 battery 35 % below the 40 % minimum; cv-3 not connected; "
        "cv-4 battery level unknown"
    )


def test_coverage() -> None:
    """The south-east corner is ~7 km from the East dock and farther from the others."""
    with pytest.raises(NoDroneAvailable) as exc:
        choose(fleet(), (32.5800, -117.0100))
    got = reasons(exc.value)
    assert set(got) == {"cv-1", "cv-2", "cv-3", "cv-4"}
    assert got["cv-3"] == "scene 7.0 km from its dock, beyond the 5.0 km coverage"
    # A wider coverage (and a drone that can fly that far) lets the East drone go.
    wide = POLICY.model_copy(update={"coverage_radius_m": 8000.0, "hover_endurance_s": 3600.0})
    assert choose(fleet(), (32.5800, -117.0100), wide).drone_id == "cv-3"


def test_battery_must_cover_the_sortie_and_the_reserve() -> None:
    far = (32.6000, -117.0300)  # ~4 km from the East dock: about 57 % with the default model
    with pytest.raises(NoDroneAvailable) as exc:
        choose(
            fleet(cv_3={"battery_pct": 60.0, **OFF_DOCK["cv_3"]}),
            far,
            POLICY.model_copy(update={"coverage_radius_m": 4500.0}),
        )
    reason = reasons(exc.value)["cv-3"]
    assert reason.startswith("battery 60 % too low for this sortie: it needs about ")  # 57-61 %
    assert reason.endswith("and 20 % must remain on landing")
    assert choose(fleet(cv_3={"battery_pct": 80.0}), far).drone_id == "cv-3"


def test_no_candidates() -> None:
    with pytest.raises(NoDroneAvailable, match="no drones were offered") as exc:
        choose([], NEAR_CIVIC)
    assert exc.value.rejections == []


def test_unknown_dock_is_a_rejection() -> None:
    [c, *_] = fleet()
    with pytest.raises(NoDroneAvailable, match="cv-1 is based at dock 'gone'"):
        choose([dataclasses.replace(c, dock_id="gone")], NEAR_CIVIC)


def test_drone_outside_the_area_is_not_a_scene_problem() -> None:
    [c, *_] = fleet()
    astray = dataclasses.replace(c, lat=OUTSIDE[0], lon=OUTSIDE[1])
    with pytest.raises(NoDroneAvailable, match="cv-1 cannot plan a route: start"):
        choose([astray], NEAR_CIVIC)


# ---------------------------------------------------------------------------------------------------------
# The scene


def test_scene_in_zone_gets_a_standoff_when_allowed() -> None:
    choice = choose(fleet(), HELIPAD)
    standoff = choice.plan.route.standoff
    assert standoff is not None and standoff.zone_id == "sharp-cv-helipad"
    assert choice.drone_id == "cv-3"


def test_scene_in_zone_is_refused_without_standoff() -> None:
    strict = POLICY.model_copy(update={"allow_standoff": False})
    with pytest.raises(SceneRefused, match="sharp-cv-helipad") as exc:
        choose(fleet(), HELIPAD, strict)
    assert isinstance(exc.value.error, TargetInNoFlyZone)
    # Even when only one drone could be asked: the scene, not the drone, is the problem.
    with pytest.raises(SceneRefused):
        choose(
            fleet(cv_1={"available": False}, cv_2={"available": False}, cv_4={"connected": False}),
            HELIPAD,
            strict,
        )


def test_scene_outside_area_is_refused_whoever_is_free() -> None:
    with pytest.raises(SceneRefused, match="outside the operating area") as exc:
        choose(fleet(), OUTSIDE)
    assert exc.value.reason == str(exc.value)
    with pytest.raises(SceneRefused):
        choose([], OUTSIDE)


def test_invalid_scene() -> None:
    with pytest.raises(SceneRefused, match="not a valid latitude/longitude"):
        choose(fleet(), (float("nan"), -117.08))


# ---------------------------------------------------------------------------------------------------------
# Battery model


def test_battery_model_by_hand() -> None:
    civic = AREA.dock("cv-civic")
    plan = plan_sortie(AREA, (civic.lat, civic.lon), (civic.lat, civic.lon))
    hover = POLICY.model_copy(update={"loiter_s": 0.0})
    # Zero length: climb 60 m at 2.5 m/s (24 s x 1.3) and descend (24 s x 1) out of 2400 s.
    assert battery_needed_pct(plan, hover, 12.0) == pytest.approx(100 * (24 * 1.3 + 24) / 2400)
    # 1 km each way at 10 m/s: 100 s cruise + 10/1.5 s of ramps, at effort 1.5.
    km = dataclasses.replace(plan, route=dataclasses.replace(plan.route, length_m=1000.0))
    expected = 100 * (24 * 1.3 + 2 * (100 + 10 / 1.5) * 1.5 + 24) / 2400
    assert battery_needed_pct(km, hover, 10.0) == pytest.approx(expected)
    assert battery_needed_pct(km, POLICY, 10.0) == pytest.approx(expected + 100 * 120 / 2400)


def test_battery_model_grows_with_distance() -> None:
    plan = choose(fleet(), NEAR_CIVIC).plan
    needs = [
        battery_needed_pct(
            dataclasses.replace(plan, route=dataclasses.replace(plan.route, length_m=m)), POLICY, 12.0
        )
        for m in (0, 1, 10, 50, 96, 100, 500, 1000, 5000, 20000)
    ]
    assert needs == sorted(needs) and len(set(needs)) == len(needs)


def test_battery_model_rejects_a_bad_speed() -> None:
    plan = choose(fleet(), NEAR_CIVIC).plan
    with pytest.raises(ValueError):
        battery_needed_pct(plan, POLICY, 0.0)


# ---------------------------------------------------------------------------------------------------------
# Whatever the scene and the fleet's state: a choice or one of the two documented refusals.

minx, miny, maxx, maxy = AREA.operating_area.bounds
scenes = st.tuples(st.floats(miny, maxy), st.floats(minx, maxx)).filter(
    lambda s: AREA.operating_area.covers(Point(s[1], s[0]))
)
mostly = st.sampled_from([True, True, True, False])  # so that most examples get as far as planning
states = st.tuples(mostly, mostly, st.none() | st.floats(0, 100) | st.floats(60, 100))


@settings(max_examples=60, deadline=None)
@given(scene=scenes, state=st.lists(states, min_size=4, max_size=4), standoff=st.booleans())
def test_any_scene_in_the_area(
    scene: tuple[float, float], state: list[tuple[bool, bool, float | None]], standoff: bool
) -> None:
    candidates = [
        dataclasses.replace(c, available=a, connected=k, battery_pct=b)
        for c, (a, k, b) in zip(fleet(), state, strict=True)
    ]
    policy = POLICY.model_copy(update={"allow_standoff": standoff})
    try:
        choice = choose_drone(AREA, policy, candidates, scene)
    except NoDroneAvailable as e:
        assert len(e.rejections) == len(candidates)
    except SceneRefused as e:
        assert e.reason
    else:
        chosen = next(c for c in candidates if c.drone_id == choice.drone_id)
        assert chosen.available and chosen.connected and chosen.battery_pct is not None
        assert chosen.battery_pct >= choice.battery_needed_pct + policy.battery_reserve_pct


def test_the_airframe_top_speed_caps_the_planned_speed() -> None:
    """cv-3 is told 12 m/s but its airframe sustains 10 (area max_speed_m_s): it is planned at 10, and a
    faster setting does not make its estimate shorter than the airframe allows."""
    assert AREA.drone("cv-3").max_speed_m_s == 10.0
    at_12 = choose(fleet(), NEAR_EAST)
    at_20 = choose(fleet(cv_3={"response_speed_m_s": 20.0}), NEAR_EAST)
    at_9 = choose(fleet(cv_3={"response_speed_m_s": 9.0}), NEAR_EAST)
    assert at_12.eta_s == pytest.approx(at_20.eta_s)
    assert at_9.eta_s > at_12.eta_s


# ---------------------------------------------------------------------------------------------------------
# Waiting for a drone that charges on its dock


def test_a_charging_drone_is_waited_for_when_it_would_still_be_there_first() -> None:
    """Bayfront charges at 2.5 %/min: cv-2 at 38 % needs about a minute for a sortie next door; from the
    Civic Center the only free drone would need much longer to fly there."""
    bayfront = AREA.dock("cv-bayfront")
    scene = (bayfront.lat + 0.003, bayfront.lon)  # ~330 m north of the Bayfront dock
    free_elsewhere = fleet(cv_2={"battery_pct": 38.0}, cv_3={"available": False}, cv_4={"available": False})
    with pytest.raises(WaitForCharge) as exc:
        choose(free_elsewhere, scene)
    wait = exc.value
    assert wait.choice.drone_id == "cv-2" and 0 < wait.wait_s < 120
    assert "waiting" in str(wait) and "cv-2 to charge" in str(wait)
    assert "charging on its dock: ready for this sortie" in reasons(wait)["cv-2"]
    # the same drone off its dock cannot charge: the free drone goes now
    assert choose(fleet(cv_2={"battery_pct": 38.0, **OFF_DOCK["cv_2"]}), scene).drone_id != "cv-2"


def test_a_free_drone_goes_now_when_waiting_would_be_slower() -> None:
    civic = AREA.dock("cv-civic")
    scene = (civic.lat + 0.003, civic.lon)
    # cv-1 would need ~20 minutes of charge; cv-4 at the same dock is slower but ready now
    choice = choose(fleet(cv_1={"battery_pct": 5.0}, cv_2={"available": False}), scene)
    assert choice.drone_id == "cv-4"
