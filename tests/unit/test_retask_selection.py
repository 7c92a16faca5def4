"""Drones in the air as candidates (dfr.dispatch.selection): a drone flying home, or loitering over a routine
mission, is weighed from where it is, by the same ETA and battery model as a drone on its dock, and only as
the policy's `retask` section allows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dfr.area import load_area
from dfr.dispatch.policy import Policy, Retask, load_policy
from dfr.dispatch.selection import (
    Airborne,
    Candidate,
    Choice,
    NoDroneAvailable,
    RetaskKind,
    WaitForCharge,
    battery_needed_airborne_pct,
    choose_drone,
)

ROOT = Path(__file__).resolve().parents[2]
AREA = load_area(ROOT / "missions" / "areas" / "chula-vista.yaml")
POLICY = load_policy(ROOT / "missions" / "policies" / "default.yaml")
PREEMPT = POLICY.model_copy(update={"retask": Retask(preempt_priority=1, routine_priority=3)})

UP_THERE = (32.6480, -117.0720)  # ~1.3 km north-east of the Civic Center dock, clear of every zone
SCENE = (32.6500, -117.0700)  # ~280 m from there; ~1.6 km from the Civic Center, ~2 km from the East dock


def fleet(cv_1: Airborne | None, battery: float = 80.0, alt: float = 60.0) -> list[Candidate]:
    """The four drones on their docks, fully charged; cv-1 in the air over `UP_THERE` when `cv_1` is set."""
    out = []
    for drone in AREA.drones:
        dock = AREA.dock(drone.dock)
        c = Candidate(drone.id, dock.id, dock.lat, dock.lon, True, True, 95.0, drone.response_speed_m_s)
        if drone.id == "cv-1" and cv_1 is not None:
            c = dataclasses.replace(
                c, lat=UP_THERE[0], lon=UP_THERE[1], available=False, battery_pct=battery, airborne=cv_1
            )
        out.append(c)
    return out


CV1 = AREA.drone("cv-1")
CV1_SPEED = min(CV1.response_speed_m_s, CV1.max_speed_m_s or CV1.response_speed_m_s)


def returning(alt: float = 60.0, **kw: object) -> Airborne:
    return Airborne("m-a", RetaskKind.RETURNING, 3, alt, **kw)  # type: ignore[arg-type]


def loitering(mission_priority: int | None = 4) -> Airborne:
    return Airborne("m-a", RetaskKind.LOITERING, mission_priority, 60.0)


def choose(candidates: list[Candidate], policy: Policy = POLICY, priority: int = 1) -> Choice:
    return choose_drone(AREA, policy, candidates, SCENE, retask=policy.retask, priority=priority)


def rejected(candidates: list[Candidate], policy: Policy = POLICY, priority: int = 1) -> str:
    """Why cv-1 alone is not sent."""
    try:
        choice = choose([c for c in candidates if c.drone_id == "cv-1"], policy, priority)
    except NoDroneAvailable as e:
        return e.rejections[0].reason
    pytest.fail(f"expected no drone, got {choice}")


def test_a_returning_drone_nearer_than_every_dock_is_retasked() -> None:
    docked = choose(fleet(None))
    choice = choose(fleet(returning()))
    assert choice.drone_id == "cv-1" and choice.retask == returning()
    assert choice.eta_s < docked.eta_s
    # no take-off: already at the transit altitude, the ETA is the flight from here alone
    assert choice.eta_s == pytest.approx(choice.plan.eta_s)
    assert choice.eta_s < 60.0
    start_lon, start_lat = choice.plan.route.waypoints[0]
    assert (start_lat, start_lon) == pytest.approx(UP_THERE)


def test_a_low_drone_pays_for_its_climb_and_a_landing_one_is_not_taken() -> None:
    at_60 = choose(fleet(returning(60.0)))
    at_30 = choose(fleet(returning(30.0)))
    profile = AREA.profile("cv-1")  # the sample's cv-1 is DFR-class: it climbs at its profile's rate
    climb = profile.climb_m_s if profile is not None else POLICY.climb_m_s
    assert at_30.eta_s == pytest.approx(at_60.eta_s + 30.0 / climb)
    assert "landing" in rejected(fleet(returning(8.0)))
    assert choose(fleet(returning(8.0))).drone_id != "cv-1"


def test_battery_must_cover_reaching_the_scene_loitering_and_getting_home_with_the_reserve() -> None:
    choice = choose(fleet(returning()))
    need = choice.battery_needed_pct
    assert need == pytest.approx(
        battery_needed_airborne_pct(
            choice.plan, _home_m(choice), 60.0, POLICY, CV1_SPEED, AREA.profile("cv-1")
        )
    )
    assert need > POLICY.loiter_s / POLICY.hover_endurance_s * 100  # the loiter, and more
    # just enough passes; a little less is refused with the figures, and a docked drone goes instead
    enough = need + POLICY.battery_reserve_pct + 0.5
    assert choose(fleet(returning(), battery=enough)).drone_id == "cv-1"
    low = fleet(returning(), battery=need + POLICY.battery_reserve_pct - 0.5)
    reason = rejected(low)
    assert reason.startswith("flying home, battery") and "too low to be re-tasked" in reason
    assert choose(low).drone_id != "cv-1"
    # the launch minimum is for take-offs: a drone up there below it may still take a short hop
    strict = POLICY.model_copy(update={"min_battery_pct": enough + 10.0})
    assert choose(fleet(returning(), battery=enough), strict).drone_id == "cv-1"


def _home_m(choice: Choice) -> float:
    from dfr.dispatch.selection import _home_m as home

    civic = AREA.dock("cv-civic")
    return home(AREA, POLICY, choice.plan, (civic.lat, civic.lon))


def test_policy_can_turn_returning_retasks_off_and_then_the_drone_is_busy() -> None:
    off = POLICY.model_copy(update={"retask": Retask(returning=False)})
    assert choose(fleet(returning()), off).drone_id != "cv-1"
    assert rejected(fleet(returning()), off).startswith("busy")
    # no retask rules at all (the incident's rule opted out): the same
    got = choose_drone(AREA, POLICY, fleet(returning()), SCENE, retask=None, priority=1)
    assert got.drone_id != "cv-1" and got.retask is None


def test_autopilot_failsafe_is_never_taken() -> None:
    assert choose(fleet(returning(failsafe=True))).drone_id != "cv-1"


def test_pre_emption_only_as_the_policy_says() -> None:
    # off by default
    assert choose(fleet(loitering())).drone_id != "cv-1"
    # urgent incident, routine mission: taken
    choice = choose(fleet(loitering(4)), PREEMPT, priority=1)
    assert choice.drone_id == "cv-1" and choice.retask is not None
    assert choice.retask.kind is RetaskKind.LOITERING
    # not urgent enough, or the mission is not routine, or its priority is unknown: left alone
    assert choose(fleet(loitering(4)), PREEMPT, priority=2).drone_id != "cv-1"
    assert choose(fleet(loitering(2)), PREEMPT, priority=1).drone_id != "cv-1"
    assert choose(fleet(loitering(None)), PREEMPT, priority=1).drone_id != "cv-1"
    reason = rejected(fleet(loitering(2)), PREEMPT, priority=1)
    assert (
        reason
        == "busy: on scene for a priority 2 mission (the policy does not pre-empt it for this incident)"
    )


def test_a_drone_a_pilot_kept_is_not_taken_for_that_incident() -> None:
    kept = dataclasses.replace(loitering(4), kept_by="pilot1")
    assert choose(fleet(kept), PREEMPT, priority=1).drone_id != "cv-1"
    assert rejected(fleet(kept), PREEMPT) == "busy: pilot pilot1 kept it on its mission (pre-emption refused)"


def test_a_retask_is_weighed_against_waiting_for_a_charging_drone() -> None:
    """cv-1 flying home 280 m from the scene beats waiting for the East drone to charge for it."""
    east = AREA.dock("cv-east")
    cands = fleet(returning())
    cands = [
        dataclasses.replace(c, battery_pct=20.0) if c.drone_id == "cv-3" else c
        for c in cands
        if c.drone_id != "cv-4" and c.drone_id != "cv-2"
    ]
    assert next(c for c in cands if c.drone_id == "cv-3").lat == east.lat
    assert choose(cands).drone_id == "cv-1"
    without = [c for c in cands if c.drone_id != "cv-1"]
    with pytest.raises(WaitForCharge):
        choose(without)


def test_retask_rules_are_validated() -> None:
    with pytest.raises(ValueError, match=r"routine_priority .* must be less urgent"):
        Retask(preempt_priority=3, routine_priority=3)
    assert Retask(preempt_priority=2, routine_priority=3).may_preempt(1, 5)
    assert not Retask().may_preempt(1, 5)  # off unless a preempt priority is given


def test_a_policy_file_with_a_wrong_retask_section_is_refused_with_the_line(tmp_path: Path) -> None:
    from dfr.dispatch.policy import PolicyError

    path = tmp_path / "p.yaml"
    path.write_text(
        "rules:\n  - name: all\n    kinds: ['*']\n    action: auto_launch\n    retask: maybe\n"
        "retask:\n  preempt_priority: 3\n  routine_priority: 2\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    text = str(exc.value)
    assert f"{path}:5: rules[0].retask: Input should be a valid boolean" in text
    assert f"{path}:7: retask: routine_priority (2) must be less urgent" in text
    assert POLICY.retask_allowed("gunshot")
    assert not POLICY.model_copy(
        update={"rules": [POLICY.rules[0].model_copy(update={"retask": False}), *POLICY.rules[1:]]}
    ).retask_allowed("gunshot")
