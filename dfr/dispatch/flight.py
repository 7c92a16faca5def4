"""Fly one planned response with a connected drone: climb, follow the route, orbit, return, land.

The procedure reports each phase through `on_phase` so the mission state machine (and its store) can
record it; it never fights the autopilot: if PX4 starts a failsafe (RTL, land) the procedure stops
commanding and follows the vehicle home. Durations such as the loiter time are simulated-time seconds
divided by `time_scale`, which is 1 for real drones and the simulator's speed in tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import LineString, Point

from dfr.fleet.drone import Drone

log = logging.getLogger(__name__)

Phase = str  # "launching", "en_route", "on_scene", "returning", "landed"
FAILSAFE_MODES = frozenset({"RETURN_TO_LAUNCH", "LAND"})


class FlightAborted(RuntimeError):
    """The flight could not continue as planned (reason in the message)."""


@dataclass(frozen=True)
class FlightPlan:
    waypoints: list[tuple[float, float]]  # (lon, lat), first = start
    altitude_m: float
    target: tuple[float, float]  # (lat, lon) of the orbit centre (the scene or its stand-off)
    response_speed_m_s: float
    orbit_radius_m: float = 60.0
    orbit_speed_m_s: float = 5.0
    loiter_s: float = 120.0
    params: dict[str, float] = field(default_factory=dict)
    fence: list[tuple[list[tuple[float, float]], bool]] = field(default_factory=list)
    time_scale: float = 1.0
    arrive_m: float = 5.0
    corner_m: float = 8.0


@dataclass
class FlightResult:
    launched_at: float | None = None
    on_scene_at: float | None = None
    landed_at: float | None = None
    track: list[dict[str, Any]] = field(default_factory=list)
    failsafe: str | None = None


OnPhase = Callable[[Phase, dict[str, Any]], Awaitable[None]]


async def _noop(phase: Phase, info: dict[str, Any]) -> None:
    return None


async def fly(
    drone: Drone,
    plan: FlightPlan,
    on_phase: OnPhase = _noop,
    recall: asyncio.Event | None = None,
    resume: Phase | None = None,
    result: FlightResult | None = None,
) -> FlightResult:
    """Run the sortie, or resume it from `resume` (the phase recorded before a controller restart).

    Wall-clock timeouts scale with `plan.time_scale`. `on_phase` is awaited before the phase's first
    command so that the record leads the action: a crash in between resumes the recorded phase.
    """
    scale = plan.time_scale
    result = result if result is not None else FlightResult()  # the caller may watch the track grow
    recall = recall or asyncio.Event()
    tracker = asyncio.create_task(
        _track(drone, result, 1.0 / max(scale, 1.0)), name=f"flight-{drone.id}-track"
    )
    try:
        await drone.wait_for(lambda s: s.home is not None and s.lat is not None, timeout=30)
        if resume is None or (resume == "launching" and not drone.state.in_air):
            await _launch(drone, plan, on_phase, result, scale)
            resume = "en_route"
        if resume in ("launching", "en_route"):
            if resume == "launching":
                await on_phase("en_route", {})
            arrived = await _fly_out(drone, plan, recall, scale, _remaining_route(drone, plan.waypoints))
            if arrived:
                resume = "on_scene"
                result.on_scene_at = time.time()
                await on_phase("on_scene", {"arrived_at": result.on_scene_at})
        if resume == "on_scene" and not recall.is_set() and drone.state.flight_mode not in FAILSAFE_MODES:
            if plan.orbit_radius_m > 0:
                await drone.orbit(plan.target[0], plan.target[1], plan.orbit_radius_m, plan.orbit_speed_m_s)
            with contextlib_suppress_timeout():
                await _wait_or_failsafe(drone, lambda s: False, recall, plan.loiter_s / scale)
        if resume != "returning":
            if drone.state.flight_mode in FAILSAFE_MODES:
                result.failsafe = drone.state.flight_mode
                await on_phase("returning", {"reason": f"autopilot failsafe: {drone.state.flight_mode}"})
            else:
                await on_phase("returning", {"reason": "recalled" if recall.is_set() else "loiter complete"})
        if drone.state.flight_mode not in FAILSAFE_MODES and drone.state.in_air:
            result.failsafe = await _fly_back(drone, plan, scale)
        elif drone.state.flight_mode in FAILSAFE_MODES:
            result.failsafe = drone.state.flight_mode
        await drone.wait_for(lambda s: not s.armed and not s.in_air, timeout=1200 / scale + 30)
        result.landed_at = time.time()
        await on_phase("landed", {"failsafe": result.failsafe})
        return result
    finally:
        tracker.cancel()
        try:
            await tracker
        except asyncio.CancelledError:
            pass


async def _launch(
    drone: Drone, plan: FlightPlan, on_phase: OnPhase, result: FlightResult, scale: float
) -> None:
    await drone.wait_for(lambda s: s.health_ok, timeout=30)
    speed_params = {
        "MPC_XY_VEL_MAX": max(plan.response_speed_m_s, 12.0),
        "MPC_XY_CRUISE": plan.response_speed_m_s,
    }
    await drone.set_params({**plan.params, **speed_params})
    if plan.fence:
        await drone.upload_fence(plan.fence)
    result.launched_at = time.time()
    await drone.arm_and_takeoff(plan.altitude_m)
    # Start along the route as soon as the drone is safely up; the go-to climbs the rest of the way.
    await drone.wait_for(
        lambda s: (s.rel_alt_m or 0) >= min(plan.altitude_m - 2, 20.0), timeout=60 / scale + 10
    )
    await on_phase("en_route", {})


async def _fly_out(
    drone: Drone, plan: FlightPlan, recall: asyncio.Event, scale: float, legs: list[tuple[float, float]]
) -> bool:
    """Fly the remaining legs; True when over the scene, False after a recall or an autopilot failsafe."""
    for i, (lon, lat) in enumerate(legs):
        tol = plan.arrive_m if i == len(legs) - 1 else plan.corner_m
        await drone.goto(lat, lon, plan.altitude_m)
        await _wait_or_failsafe(drone, _near(drone, lat, lon, tol), recall, 900 / scale + 10)
        if recall.is_set() or drone.state.flight_mode in FAILSAFE_MODES:
            return False
    return True


def _remaining_route(drone: Drone, waypoints: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The waypoints still ahead: after the route segment the drone is nearest to (it flies the route,
    so the straight line from there to the segment's end stays on it)."""
    s = drone.state
    if s.lat is None or s.lon is None or len(waypoints) < 2:
        return waypoints[1:]
    here = Point(s.lon, s.lat)
    nearest = min(range(len(waypoints) - 1), key=lambda k: LineString(waypoints[k : k + 2]).distance(here))
    return waypoints[nearest + 1 :]


def _near(drone: Drone, lat: float, lon: float, tol: float) -> Callable[[Any], bool]:
    return lambda _state: drone.distance_to(lat, lon) <= tol


async def _fly_back(drone: Drone, plan: FlightPlan, scale: float) -> str | None:
    """Retrace the planned route (it is clear of every zone), then RTL: PX4's RTL flies straight home."""
    never = asyncio.Event()
    for lon, lat in _remaining_route(drone, list(reversed(plan.waypoints)))[:-1]:
        if drone.state.flight_mode in FAILSAFE_MODES:
            return drone.state.flight_mode
        await drone.goto(lat, lon, plan.altitude_m)
        await _wait_or_failsafe(
            drone,
            _near(drone, lat, lon, plan.corner_m),
            never,
            900 / scale + 10,
        )
    if drone.state.flight_mode in FAILSAFE_MODES:
        return drone.state.flight_mode
    await drone.return_to_launch()
    return None


class contextlib_suppress_timeout:
    """`with contextlib_suppress_timeout():` — a timed wait that is allowed to run out."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: Any) -> bool:
        return et is TimeoutError


async def _wait_or_failsafe(
    drone: Drone, pred: Callable[[Any], bool], recall: asyncio.Event, timeout: float
) -> None:
    """Wait for `pred`, or until the autopilot takes over (RTL/LAND) or a recall, whichever comes first."""
    recall_task = asyncio.create_task(recall.wait(), name=f"flight-{drone.id}-recall")
    cond_task = asyncio.create_task(
        drone.wait_for(lambda s: pred(s) or s.flight_mode in FAILSAFE_MODES, timeout=timeout),
        name=f"flight-{drone.id}-wait",
    )
    try:
        done, _ = await asyncio.wait({recall_task, cond_task}, return_when=asyncio.FIRST_COMPLETED)
        if cond_task in done:
            cond_task.result()  # re-raise TimeoutError
    finally:
        for t in (recall_task, cond_task):
            t.cancel()


async def _track(drone: Drone, result: FlightResult, period: float) -> None:
    """Sample the flown track (used to prove the route never entered a no-fly zone)."""
    while True:
        s = drone.state
        if s.lat is not None and s.lon is not None:
            result.track.append(
                {
                    "t": time.time(),
                    "lat": s.lat,
                    "lon": s.lon,
                    "rel_alt_m": s.rel_alt_m,
                    "speed": round(s.groundspeed, 2),
                    "mode": s.flight_mode,
                }
            )
        await asyncio.sleep(period)
