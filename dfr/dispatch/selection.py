"""Which drone answers an incident: the one over the scene soonest that can also get home safely.

Pure: the fleet's state comes in as `Candidate` snapshots, so that the choice can be tested, replayed from
the audit log and explained. Every drone not chosen gets a `Rejection` with a reason an operator can act
on ("cv-2 battery 35 % below the 40 % minimum"), because "no drone available" alone at a moment that
matters leaves the operator guessing whether to wait, swap a battery or call a patrol car.

Two different failures are kept apart: `NoDroneAvailable` (right now nobody can go; it may change in a
minute) and `SceneRefused` (the scene itself cannot be flown to: outside the operating area, inside a
no-fly zone with stand-off disallowed, or unreachable from every dock), which waiting will not fix.

Battery model (deliberately simple and on the safe side, like the ETA): a full battery lasts
``hover_endurance_s`` in a hover, and each second of flight uses ``100 / hover_endurance_s × effort`` per
cent, where effort is 1 in a hover or an orbit, ``1 + 0.5·(v/10)²`` in cruise at v m/s and 1.3 while
climbing. A sortie is: climb, fly the route out, loiter ``loiter_s``, fly the same route back (the return
leg retraces the outbound route, see dfr.dispatch.sortie), descend. The whole cruise leg is charged at
cruise effort, including the acceleration and braking that ``horizontal_time_s`` adds, which
over-estimates a little; descent is charged as a hover at the climb rate.

Drones in the air (`Airborne`): a drone flying home, or loitering over a routine mission when the policy
lets an urgent incident pre-empt it, is weighed like the others, from where it is now: its time to scene
is the route from here plus the climb or descent to the transit altitude (no take-off), and its battery
must cover that route, the loiter, the way home from the new scene (planned around the zones, since the
dock is not where the new route starts) and the descent, with the reserve. The launch minimum
(``min_battery_pct``) is for take-offs and does not apply to a drone already up. The policy decides which
airborne drones an incident may take (`dfr.dispatch.policy.Retask`); the dispatcher does the hand-over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shapely.geometry import Point

from dfr.airframe import AirframeProfile
from dfr.area import DEFAULT_CLEAR_HEIGHT_M, METRES_PER_FOOT, Area, Dock
from dfr.charging import ON_DOCK_M, Charging, time_to_reach_s
from dfr.dispatch.policy import Policy, Retask, _distinct
from dfr.dispatch.sortie import SortiePlan, plan_sortie, planner_zones
from dfr.geo import distance_m
from dfr.planning import (
    PlanError,
    PlanRequest,
    StartInsideZone,
    StartOutsideArea,
    TargetInNoFlyZone,
    TargetOutsideArea,
    horizontal_time_s,
    plan_route,
)
from dfr.planning.corners import PX4_ACC_HOR_DEFAULT

__all__ = [
    "CLIMB_EFFORT",
    "MIN_RETASK_ALT_M",
    "Airborne",
    "Candidate",
    "Choice",
    "NoDroneAvailable",
    "Rejection",
    "RetaskKind",
    "SceneRefused",
    "WaitForCharge",
    "battery_needed_airborne_pct",
    "battery_needed_pct",
    "choose_drone",
    "cruise_effort",
]

CLIMB_EFFORT = 1.3
"""Power while climbing, relative to a hover."""

_SCENE_ONLY_ERRORS: tuple[type[PlanError], ...] = (TargetOutsideArea, TargetInNoFlyZone)
"""Planning failures that depend on the scene alone, not on where the drone starts: one is enough."""

_START_ERRORS: tuple[type[PlanError], ...] = (StartOutsideArea, StartInsideZone)
"""Failures caused by where a drone is, which say nothing about the scene even if every drone has one."""


MIN_RETASK_ALT_M = 15.0
"""Below this height a drone in the air is landing (or taking off): it is not re-tasked."""


class RetaskKind(StrEnum):
    """What a busy drone in the air is doing, as far as re-tasking goes."""

    RETURNING = "returning"
    """Flying home from a mission (its loiter is over or it was recalled)."""
    LOITERING = "loitering"
    """Over the scene of a mission: taking it is a pre-emption."""


@dataclass(frozen=True)
class Airborne:
    """A busy drone in the air that might leave its mission for a new incident."""

    mission_id: str
    kind: RetaskKind
    mission_priority: int | None  # of the mission's incident (1 most urgent); None: unknown
    altitude_m: float  # height above home now
    failsafe: bool = False  # its autopilot flies a failsafe of its own (RTL, land): never taken
    kept_by: str | None = None  # the pilot who refused it to this incident: never taken for it


@dataclass(frozen=True)
class Candidate:
    """A drone as the fleet sees it now; ``lat``/``lon`` is its position (normally its dock).

    ``airborne`` is set for a busy drone in the air that could be re-tasked (``available`` is then
    False: it is not free, it may only be taken as the policy allows)."""

    drone_id: str
    dock_id: str
    lat: float
    lon: float
    available: bool
    connected: bool
    battery_pct: float | None
    response_speed_m_s: float
    airborne: Airborne | None = None
    not_ready: str | None = None  # why a docked drone cannot launch at once (being prepared), else None


@dataclass(frozen=True)
class Choice:
    """The drone to send and its plan.

    ``battery_needed_pct`` is the modelled use of the whole sortie, without the reserve; ``distance_m`` is
    the straight-line distance from the drone's position to the scene (the route's length is in ``plan``).
    """

    drone_id: str
    plan: SortiePlan
    eta_s: float
    battery_needed_pct: float
    distance_m: float
    retask: Airborne | None = None  # the drone is taken from this mission in the air


@dataclass(frozen=True)
class Rejection:
    """Why one drone was not sent; ``reason`` reads after the drone id ("cv-1 busy")."""

    drone_id: str
    reason: str


class NoDroneAvailable(Exception):
    """No drone can respond now; ``rejections`` gives each drone's reason, in the candidates' order."""

    def __init__(self, rejections: Sequence[Rejection]) -> None:
        self.rejections: list[Rejection] = list(rejections)
        if self.rejections:
            detail = "; ".join(f"{r.drone_id} {r.reason}" for r in self.rejections)
        else:
            detail = "no drones were offered"
        super().__init__(f"no drone can respond: {detail}")


class WaitForCharge(NoDroneAvailable):
    """No drone should go now: one charging on its dock will be over the scene sooner than any drone that
    could leave now. The launch waits in the queue (re-checked as the drone charges)."""

    def __init__(self, rejections: Sequence[Rejection], choice: Choice, wait_s: float) -> None:
        super().__init__(rejections)
        self.choice = choice
        self.wait_s = wait_s
        self.args = (
            f"waiting {wait_s:.0f} s for {choice.drone_id} to charge (on scene in about "
            f"{choice.eta_s:.0f} s), sooner than any drone free now: "
            + "; ".join(f"{r.drone_id} {r.reason}" for r in rejections),
        )


class SceneRefused(Exception):
    """No drone may fly to this scene, whichever is free; ``error`` is the planner's error, if it was one."""

    def __init__(self, reason: str, error: PlanError | None = None) -> None:
        self.reason = reason
        self.error = error
        super().__init__(reason)


def cruise_effort(speed_m_s: float) -> float:
    """Power in cruise relative to a hover: grows with the square of the speed (drag)."""
    return 1.0 + 0.5 * (speed_m_s / 10.0) ** 2


def battery_needed_pct(
    plan: SortiePlan, policy: Policy, speed_m_s: float, profile: AirframeProfile | None = None
) -> float:
    """Per cent of a full battery the whole sortie uses: climb, out, loiter, back, descent.

    The climb rate and the hover endurance are the airframe profile's when the drone has one."""
    if not (math.isfinite(speed_m_s) and speed_m_s > 0):
        raise ValueError(f"speed_m_s must be a finite positive number, got {speed_m_s!r}")
    climb = profile.climb_m_s if profile is not None else policy.climb_m_s
    endurance = profile.hover_endurance_s if profile is not None else policy.hover_endurance_s
    vertical_s = plan.altitude_m / climb
    leg_s = horizontal_time_s(plan.route.length_m, speed_m_s)
    hover_equivalent_s = (
        vertical_s * CLIMB_EFFORT  # climb at the dock
        + 2.0 * leg_s * cruise_effort(speed_m_s)  # out and back along the same route
        + policy.loiter_s  # orbit or hold over the scene
        + vertical_s  # descent onto the dock
    )
    return 100.0 / endurance * hover_equivalent_s


def battery_needed_airborne_pct(
    plan: SortiePlan,
    home_m: float,
    altitude_now_m: float,
    policy: Policy,
    speed_m_s: float,
    profile: AirframeProfile | None = None,
) -> float:
    """Per cent of a full battery a re-tasked drone uses from where it is: climb or descent to the transit
    altitude, the route out, the loiter, `home_m` from the scene to its dock, and the descent; the same
    efforts as `battery_needed_pct`."""
    if not (math.isfinite(speed_m_s) and speed_m_s > 0):
        raise ValueError(f"speed_m_s must be a finite positive number, got {speed_m_s!r}")
    climb = profile.climb_m_s if profile is not None else policy.climb_m_s
    endurance = profile.hover_endurance_s if profile is not None else policy.hover_endurance_s
    change_s = abs(plan.altitude_m - altitude_now_m) / climb
    effort = cruise_effort(speed_m_s)
    hover_equivalent_s = (
        change_s * CLIMB_EFFORT
        + horizontal_time_s(plan.route.length_m, speed_m_s) * effort
        + policy.loiter_s
        + horizontal_time_s(home_m, speed_m_s) * effort
        + plan.altitude_m / climb  # descent onto the dock
    )
    return 100.0 / endurance * hover_equivalent_s


def _pct(value: float) -> str:
    return f"{round(value, 1):g}"


def _charging_on_dock(area: Area, c: Candidate) -> Charging | None:
    """The charging model of the drone's dock when the drone sits on it, free and on the ground."""
    try:
        dock = area.dock(c.dock_id)
    except KeyError:
        return None
    if dock.charging is None or not c.available or distance_m(c.lat, c.lon, dock.lat, dock.lon) > ON_DOCK_M:
        return None
    return dock.charging


def _precheck(
    area: Area, policy: Policy, c: Candidate, scene: tuple[float, float], *, charging: bool = False
) -> str | None:
    """The reason a drone cannot go that needs no route planning, or None. Cheapest checks first.

    `charging`: the drone charges on its dock, so a low battery is not a reason yet (how long the charge
    would take is weighed against the other drones after planning)."""
    if not c.connected:
        return "not connected"
    if not c.available:
        return "busy"
    if c.not_ready is not None:
        return c.not_ready
    if c.battery_pct is None or not math.isfinite(c.battery_pct):
        return "battery level unknown"
    if c.battery_pct < policy.min_battery_pct and not charging:
        return f"battery {_pct(c.battery_pct)} % below the {_pct(policy.min_battery_pct)} % minimum"
    reach = _dock_in_reach(area, policy, c, scene)
    return reach if isinstance(reach, str) else None


def _dock_in_reach(area: Area, policy: Policy, c: Candidate, scene: tuple[float, float]) -> Dock | str:
    """The drone's dock, or why the drone cannot serve `scene` from it (unusable speed, unknown dock,
    scene beyond the coverage radius): the checks docked and airborne candidates share."""
    if not (math.isfinite(c.response_speed_m_s) and c.response_speed_m_s > 0):
        return f"has an unusable response speed ({c.response_speed_m_s!r} m/s)"
    try:
        dock = area.dock(c.dock_id)
    except KeyError:
        return f"is based at dock {c.dock_id!r}, which is not in area {area.name!r}"
    from_dock = distance_m(dock.lat, dock.lon, scene[0], scene[1])
    if from_dock > policy.coverage_radius_m:
        away, cover = _distinct(from_dock / 1000.0, policy.coverage_radius_m / 1000.0)
        return f"scene {away} km from its dock, beyond the {cover} km coverage"
    return dock


def _accel(area: Area, c: Candidate) -> float:
    """The drone's horizontal acceleration (MPC_ACC_HOR from its profile or parameters, else PX4's)."""
    try:
        params = area.drone(c.drone_id).params
    except KeyError:
        params = {}
    return float(params.get("MPC_ACC_HOR", PX4_ACC_HOR_DEFAULT))


def _clear_height(area: Area, c: Candidate) -> float:
    """Height of the obstacles around the drone's dock, which it climbs straight up to."""
    try:
        return area.dock(c.dock_id).clear_height_m
    except KeyError:
        return DEFAULT_CLEAR_HEIGHT_M


def _check_scene(area: Area, scene: tuple[float, float]) -> None:
    """Refuse a scene outside the area before looking at drones: waiting for one would not help."""
    lat, lon = scene
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise SceneRefused(f"scene ({lat!r}, {lon!r}) is not a valid latitude/longitude")
    if not area.operating_area.covers(Point(lon, lat)):
        raise SceneRefused(f"scene ({lat:.5f}, {lon:.5f}) is outside the operating area of {area.name}")


def _achievable(area: Area, c: Candidate) -> float:
    """The candidate's response speed, capped by its airframe's top speed when the area file gives one."""
    try:
        top = area.drone(c.drone_id).max_speed_m_s
    except KeyError:
        top = None
    return c.response_speed_m_s if top is None else min(c.response_speed_m_s, top)


def _may_take(a: Airborne, retask: Retask | None, priority: int | None) -> str | None:
    """Why the policy (or a pilot) does not let this incident take the drone in the air, or None."""
    if a.kept_by is not None:
        return f"busy: pilot {a.kept_by} kept it on its mission (pre-emption refused)"
    if a.kind is RetaskKind.RETURNING:
        if retask is None or not retask.returning:
            return "busy: flying home (re-tasking is off for this incident)"
        return None
    if retask is None or priority is None or not retask.may_preempt(priority, a.mission_priority):
        on = f"priority {a.mission_priority}" if a.mission_priority is not None else "another"
        return f"busy: on scene for a {on} mission (the policy does not pre-empt it for this incident)"
    return None


def _home_m(area: Area, policy: Policy, plan: SortiePlan, dock: tuple[float, float]) -> float:
    """Length of the way home from the end of `plan` to the dock, around the zones (raises PlanError)."""
    end_lat, end_lon = plan.orbit_centre
    route = plan_route(
        PlanRequest(
            area=area.operating_area,
            start=(end_lon, end_lat),
            target=(dock[1], dock[0]),
            altitude_m=plan.altitude_m,
            zones=planner_zones(area),
            buffer_m=policy.buffer_m,
            max_altitude_m=area.max_altitude_ft_agl * METRES_PER_FOOT,
        )
    )
    last_lon, last_lat = route.waypoints[-1]  # a dock in a zone's buffer: the last short leg
    return route.length_m + distance_m(last_lat, last_lon, dock[0], dock[1])


def _airborne_choice(
    area: Area,
    policy: Policy,
    c: Candidate,
    scene: tuple[float, float],
    retask: Retask | None,
    priority: int | None,
) -> Choice | str | PlanError:
    """A drone in the air as a choice, or why it may not or cannot go (a `PlanError` for planning)."""
    a = c.airborne
    assert a is not None
    if not c.connected:
        return "not connected"
    refused = _may_take(a, retask, priority)
    if refused is not None:
        return refused
    if a.failsafe:
        return "busy: its autopilot is flying a failsafe"
    if a.altitude_m < MIN_RETASK_ALT_M:
        return f"busy: landing ({a.altitude_m:.0f} m up)"
    if c.battery_pct is None or not math.isfinite(c.battery_pct):
        return "battery level unknown"
    dock = _dock_in_reach(area, policy, c, scene)
    if isinstance(dock, str):
        return dock
    cruise = _achievable(area, c)
    profile = area.profile(c.drone_id)
    climb = profile.climb_m_s if profile is not None else policy.climb_m_s
    try:
        plan = plan_sortie(
            area,
            (c.lat, c.lon),
            scene,
            altitude_m=policy.altitude_m,
            cruise_m_s=cruise,
            accel_m_s2=_accel(area, c),
            climb_m_s=climb,
            orbit_radius_m=policy.orbit_radius_m,
            buffer_m=policy.buffer_m,
            allow_standoff=policy.allow_standoff,
            airborne_at_m=a.altitude_m,
        )
        home_m = _home_m(area, policy, plan, (dock.lat, dock.lon))
    except PlanError as e:
        return e
    eta = plan.eta_s  # no take-off: only the change from the height the drone flies at (`airborne_at_m`)
    need = battery_needed_airborne_pct(plan, home_m, a.altitude_m, policy, cruise, profile)
    if need + policy.battery_reserve_pct > c.battery_pct:
        doing = "flying home" if a.kind is RetaskKind.RETURNING else "on scene"
        return (
            f"{doing}, battery {_pct(c.battery_pct)} % too low to be re-tasked: this sortie from where it "
            f"is needs about {_pct(need)} % and {_pct(policy.battery_reserve_pct)} % must remain on landing"
        )
    return Choice(c.drone_id, plan, eta, need, distance_m(c.lat, c.lon, scene[0], scene[1]), retask=a)


def choose_drone(
    area: Area,
    policy: Policy,
    candidates: Sequence[Candidate],
    scene: tuple[float, float],
    *,
    retask: Retask | None = None,
    priority: int | None = None,
) -> Choice:
    """The candidate with the smallest ETA among those that may go and can come back with the reserve.

    Ties go to the higher battery, then to the smaller drone id, so that the choice is deterministic.
    Raises `SceneRefused` when the scene cannot be flown to (outside the area; planning failed on the
    scene itself, or failed the same way for every candidate), else `NoDroneAvailable` with every reason.

    `retask` (the policy's, None when the incident may not take a drone in the air) and `priority` (the
    incident's) say which `Airborne` candidates may be taken; a chosen one comes back with
    ``Choice.retask`` set. The waiting for a charging drone is weighed against them too.
    """
    _check_scene(area, scene)
    rejections: list[Rejection] = []
    failures: list[PlanError] = []
    planned: list[tuple[Choice, float]] = []
    waiting: list[tuple[Choice, float]] = []  # drones charging on their docks: (choice, wait)
    # Drones sharing a dock and a speed get the same plan; planning is the only costly step.
    cache: dict[tuple[float, float, float, float, float, float], SortiePlan | PlanError] = {}
    for c in candidates:
        if c.airborne is not None:
            outcome = _airborne_choice(area, policy, c, scene, retask, priority)
            if isinstance(outcome, _SCENE_ONLY_ERRORS):
                raise SceneRefused(str(outcome), outcome) from outcome
            if isinstance(outcome, PlanError):
                failures.append(outcome)
                rejections.append(Rejection(c.drone_id, f"cannot plan from where it flies: {outcome}"))
            elif isinstance(outcome, str):
                rejections.append(Rejection(c.drone_id, outcome))
            else:
                assert c.battery_pct is not None
                planned.append((outcome, c.battery_pct))
            continue
        charging = _charging_on_dock(area, c)
        reason = _precheck(area, policy, c, scene, charging=charging is not None)
        if reason is not None:
            rejections.append(Rejection(c.drone_id, reason))
            continue
        cruise = _achievable(area, c)
        profile = area.profile(c.drone_id)
        climb = profile.climb_m_s if profile is not None else policy.climb_m_s
        key = (c.lat, c.lon, cruise, climb, _accel(area, c), _clear_height(area, c))
        if key not in cache:
            try:
                cache[key] = plan_sortie(
                    area,
                    (c.lat, c.lon),
                    scene,
                    altitude_m=policy.altitude_m,
                    cruise_m_s=cruise,
                    accel_m_s2=_accel(area, c),
                    clear_height_m=_clear_height(area, c),
                    climb_m_s=climb,
                    orbit_radius_m=policy.orbit_radius_m,
                    buffer_m=policy.buffer_m,
                    allow_standoff=policy.allow_standoff,
                )
            except PlanError as e:
                cache[key] = e
        plan = cache[key]
        if isinstance(plan, PlanError):
            if isinstance(plan, _SCENE_ONLY_ERRORS):
                raise SceneRefused(str(plan), plan) from plan
            failures.append(plan)
            rejections.append(Rejection(c.drone_id, f"cannot plan a route: {plan}"))
            continue
        battery = c.battery_pct
        assert battery is not None  # _precheck refused unknown levels
        need = battery_needed_pct(plan, policy, cruise, profile)
        target = max(policy.min_battery_pct, need + policy.battery_reserve_pct)
        if charging is not None and battery < target:
            wait = time_to_reach_s(battery, target, charging)
            if math.isfinite(wait):
                eta = wait + plan.eta_s
                choice = Choice(c.drone_id, plan, eta, need, distance_m(c.lat, c.lon, scene[0], scene[1]))
                waiting.append((choice, wait))
                rejections.append(
                    Rejection(
                        c.drone_id,
                        f"battery {_pct(battery)} %, charging on its dock: ready for this sortie "
                        f"({_pct(target)} %) in {wait:.0f} s",
                    )
                )
                continue
        if battery < policy.min_battery_pct:
            rejections.append(
                Rejection(
                    c.drone_id,
                    f"battery {_pct(battery)} % below the {_pct(policy.min_battery_pct)} % minimum",
                )
            )
            continue
        if need + policy.battery_reserve_pct > battery:
            rejections.append(
                Rejection(
                    c.drone_id,
                    f"battery {_pct(battery)} % too low for this sortie: it needs about {_pct(need)} % "
                    f"and {_pct(policy.battery_reserve_pct)} % must remain on landing",
                )
            )
            continue
        choice = Choice(
            drone_id=c.drone_id,
            plan=plan,
            eta_s=plan.eta_s,
            battery_needed_pct=need,
            distance_m=distance_m(c.lat, c.lon, scene[0], scene[1]),
        )
        planned.append((choice, battery))
    best = min(planned, key=lambda cb: (cb[0].eta_s, -cb[1], cb[0].drone_id))[0] if planned else None
    if waiting:
        later, wait = min(waiting, key=lambda cw: (cw[0].eta_s, cw[0].drone_id))
        if best is None or later.eta_s < best.eta_s:
            for choice, _ in planned:  # every drone says why it is not sent
                rejections.append(
                    Rejection(
                        choice.drone_id,
                        f"free now, but on scene in about {choice.eta_s:.0f} s, later than "
                        f"{later.drone_id} after charging ({later.eta_s:.0f} s)",
                    )
                )
            raise WaitForCharge(rejections, later, wait)
    if best is not None:
        return best
    if failures and len(failures) == len(candidates):
        kinds = {type(e) for e in failures}
        if len(kinds) == 1 and not isinstance(failures[0], _START_ERRORS):
            raise SceneRefused(str(failures[0]), failures[0])
    raise NoDroneAvailable(rejections)
