"""Fly one planned response with a connected drone: climb, follow the route, orbit, return, land.

The procedure reports each phase through `on_phase` so the mission state machine (and its store) can
record it; it never fights the autopilot: if PX4 starts a failsafe (RTL, land) the procedure stops
commanding and follows the vehicle home. Durations such as the loiter time are simulated-time seconds
divided by `time_scale`, which is 1 for real drones and the simulator's speed in tests.

A human pilot may take control at any moment (`FlightControl.pilot`). The procedure then issues no
further command: every command goes through `_act`, which refuses once the flag is set, and every wait
wakes up on it, so the procedure unwinds with `PilotTookOver` at its next step instead of being
cancelled in the middle of a database write. While the pilot flies, `fly` only supervises: it keeps the
track, records an autopilot failsafe and the landing. When the pilot hands back (`handback`, with a
plan replanned from where the drone is), the procedure re-enters at the recorded phase, exactly as it
does after a controller restart.

Re-tasking (`FlightControl.handover`) works the same way: once set, no further command is sent and the
procedure unwinds with `HandedOver`, leaving the drone on its last command for the next mission's flight,
which starts in the air (`FlightPlan.airborne_start`: fence refitted and uploaded, then the new route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from shapely.geometry import LineString, Point

from dfr.area import DEFAULT_CLEAR_HEIGHT_M
from dfr.dispatch.preparation import launch_params
from dfr.fleet.drone import Drone
from dfr.planning.fence import AutopilotFence

log = logging.getLogger(__name__)

Phase = str  # "launching", "en_route", "on_scene", "returning", "landed"
PHASES: tuple[Phase, ...] = ("launching", "en_route", "on_scene", "returning", "landed")
FAILSAFE_MODES = frozenset({"RETURN_TO_LAUNCH", "LAND"})
P = ParamSpec("P")
R = TypeVar("R")


class FlightAborted(RuntimeError):
    """The flight could not continue as planned (reason in the message)."""


class PilotTookOver(Exception):
    """A pilot has control: raised inside the procedure at its next step, so it stops commanding."""


class HandedOver(Exception):
    """The drone was given to another mission in the air: raised at the procedure's next step and out of
    `fly`, so that this flight stops commanding and its owner neither lands nor returns the drone."""


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
    fence: AutopilotFence = field(default_factory=AutopilotFence)
    time_scale: float = 1.0
    arrive_m: float = 5.0
    corner_m: float = 8.0
    clear_height_m: float = DEFAULT_CLEAR_HEIGHT_M  # the dock's obstacle height: straight up to here, then go
    # Per waypoint, metres before it at which the next go-to is sent, so the corner is flown through at
    # speed (dfr.planning.corners checks the cut against the zones); empty: stop at every corner.
    corner_leads: tuple[float, ...] = ()
    # The way home, (lon, lat) ending at the dock; None: the outbound route reversed. Set when a pilot
    # hands back far from the route, so that the return is planned around the zones from there.
    return_route: list[tuple[float, float]] | None = None
    # The drone is already in the air, taken from another mission: no take-off; the route starts where it is.
    airborne_start: bool = False


@dataclass
class FlightResult:
    launched_at: float | None = None
    on_scene_at: float | None = None
    landed_at: float | None = None
    track: list[dict[str, Any]] = field(default_factory=list)
    failsafe: str | None = None


OnPhase = Callable[[Phase, dict[str, Any]], Awaitable[None]]


@dataclass
class FlightControl:
    """What one running `fly` shares with the dispatcher: recall, pilot control and the recorded phase.

    `phase` is the last phase recorded (through `advance`, under `lock`, so that the procedure and a
    pilot command can never record the same step twice). `pilot` is set while a human commands the
    drone; `handback` is set by a release, with `plan` the plan to continue by; `handover` when the drone
    is re-tasked to another mission (the flight ends with `HandedOver`).
    """

    recall: asyncio.Event = field(default_factory=asyncio.Event)
    pilot: asyncio.Event = field(default_factory=asyncio.Event)
    handback: asyncio.Event = field(default_factory=asyncio.Event)
    handover: asyncio.Event = field(default_factory=asyncio.Event)  # re-tasked: stop, command nothing
    phase: Phase = "launching"
    plan: FlightPlan | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _noop(phase: Phase, info: dict[str, Any]) -> None:
    return None


async def advance(control: FlightControl, on_phase: OnPhase, target: Phase, info: dict[str, Any]) -> bool:
    """Record `target` (and the steps the state machine needs on the way) unless already there or past.

    Launching goes through en_route to reach returning; a landing is always preceded by returning.
    Returns False when nothing was recorded (the phase is already `target` or later).
    """
    async with control.lock:
        current = control.phase
        if PHASES.index(current) >= PHASES.index(target):
            return False
        steps: list[Phase] = [target]
        if target in ("returning", "landed"):
            steps = ["returning", "landed"] if target == "landed" and current != "returning" else [target]
            if current == "launching":
                steps.insert(0, "en_route")
        for step in steps:
            await on_phase(step, info if step == target else {"reason": info.get("reason")})
            control.phase = step
        return True


async def fly(
    drone: Drone,
    plan: FlightPlan,
    on_phase: OnPhase = _noop,
    recall: asyncio.Event | None = None,
    resume: Phase | None = None,
    result: FlightResult | None = None,
    control: FlightControl | None = None,
) -> FlightResult:
    """Run the sortie, or resume it from `resume` (the phase recorded before a controller restart).

    Wall-clock timeouts scale with `plan.time_scale`. `on_phase` is awaited before the phase's first
    command so that the record leads the action: a crash in between resumes the recorded phase.
    `control` (made here if not given) lets a pilot take over and hand back; its `recall` wins over
    the `recall` argument.
    """
    scale = plan.time_scale
    result = result if result is not None else FlightResult()  # the caller may watch the track grow
    if control is None:
        control = FlightControl(recall=recall or asyncio.Event())
    if resume is not None:
        control.phase = resume
    tracker = asyncio.create_task(
        _track(drone, result, 1.0 / max(scale, 1.0)), name=f"flight-{drone.id}-track"
    )
    try:
        await drone.wait_for(lambda s: s.home is not None and s.lat is not None, timeout=30)
        while True:
            if control.pilot.is_set():
                if await _piloted(drone, control, on_phase, result):
                    return result  # landed while the pilot had it
                plan = control.plan or plan
                log.info("drone %s handed back to automation at phase %s", drone.id, control.phase)
            try:
                return await _procedure(drone, plan, on_phase, control, result)
            except PilotTookOver:
                log.info("pilot took control of drone %s at phase %s", drone.id, control.phase)
    finally:
        tracker.cancel()
        try:
            await tracker
        except asyncio.CancelledError:
            pass


async def _procedure(
    drone: Drone, plan: FlightPlan, on_phase: OnPhase, control: FlightControl, result: FlightResult
) -> FlightResult:
    """The automated sortie from `control.phase` on; raises `PilotTookOver` when a pilot takes over."""
    scale = plan.time_scale
    recall = control.recall
    if control.phase == "launching" and not drone.state.in_air:
        await _launch(drone, plan, on_phase, control, result, scale)
    elif control.phase == "launching" and plan.airborne_start:
        await _take_over(drone, plan, control, result, scale)
    if control.phase in ("launching", "en_route"):
        await advance(control, on_phase, "en_route", {})
        arrived = await _fly_out(drone, plan, control, scale, _remaining_route(drone, plan.waypoints))
        if arrived:
            result.on_scene_at = time.time()
            await advance(control, on_phase, "on_scene", {"arrived_at": result.on_scene_at})
    if control.phase == "on_scene" and not recall.is_set() and drone.state.flight_mode not in FAILSAFE_MODES:
        there = True
        if drone.distance_to(*plan.target) > plan.orbit_radius_m + 2 * plan.corner_m:
            # handed back away from the scene: fly there first (the plan was replanned from here)
            there = await _fly_out(drone, plan, control, scale, _remaining_route(drone, plan.waypoints))
        if there:
            if plan.orbit_radius_m > 0:
                lat, lon = plan.target
                await _act(control, drone.orbit, lat, lon, plan.orbit_radius_m, plan.orbit_speed_m_s)
            with contextlib_suppress_timeout():
                await _wait(drone, lambda s: False, control, plan.loiter_s / scale)
    if control.phase != "returning":
        if drone.state.flight_mode in FAILSAFE_MODES:
            result.failsafe = drone.state.flight_mode
            reason = f"autopilot failsafe: {drone.state.flight_mode}"
        else:
            reason = "recalled" if recall.is_set() else "loiter complete"
        await advance(control, on_phase, "returning", {"reason": reason})
    if drone.state.flight_mode not in FAILSAFE_MODES and drone.state.in_air:
        result.failsafe = await _fly_back(drone, plan, control, scale)
    elif drone.state.flight_mode in FAILSAFE_MODES:
        result.failsafe = drone.state.flight_mode
    await _wait(
        drone,
        lambda s: not s.armed and not s.in_air,
        control,
        1200 / scale + 30,
        failsafe=False,
        recall=False,
    )
    result.landed_at = time.time()
    await advance(control, on_phase, "landed", {"failsafe": result.failsafe})
    return result


async def _piloted(drone: Drone, control: FlightControl, on_phase: OnPhase, result: FlightResult) -> bool:
    """Supervise while a pilot flies: record an autopilot failsafe and the landing, command nothing.

    Returns True once the drone has landed (the mission is recorded landed), False on hand-back. A
    drone that has not left the ground yet is not "landed": it waits for the hand-back to take off.
    """
    airborne = drone.state.in_air

    def changed(s: Any) -> bool:
        nonlocal airborne
        airborne = airborne or s.in_air
        landed = airborne and not s.armed and not s.in_air
        failsafe = s.flight_mode in FAILSAFE_MODES and control.phase not in ("returning", "landed")
        return landed or failsafe

    while True:
        handback = asyncio.create_task(control.handback.wait(), name=f"flight-{drone.id}-handback")
        watch = asyncio.create_task(drone.wait_for(changed, timeout=1e9), name=f"flight-{drone.id}-piloted")
        try:
            await asyncio.wait({handback, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (handback, watch):
                t.cancel()
        if control.handback.is_set():
            control.handback.clear()
            if not control.pilot.is_set():
                return False
            continue  # taken again before the procedure resumed
        s = drone.state
        if airborne and not s.armed and not s.in_air:
            result.landed_at = time.time()
            if s.flight_mode in FAILSAFE_MODES and result.failsafe is None:
                result.failsafe = s.flight_mode
            await advance(
                control,
                on_phase,
                "landed",
                {"failsafe": result.failsafe, "reason": "landed under pilot control"},
            )
            return True
        if s.flight_mode in FAILSAFE_MODES:
            result.failsafe = s.flight_mode
            await advance(control, on_phase, "returning", {"reason": f"autopilot failsafe: {s.flight_mode}"})


async def _act(control: FlightControl, command: Callable[P, Awaitable[R]], *a: P.args, **kw: P.kwargs) -> R:
    """Send one command, unless a pilot has control (then raise `PilotTookOver` instead) or the drone has
    been handed over to another mission (`HandedOver`)."""
    if control.handover.is_set():
        raise HandedOver()
    if control.pilot.is_set():
        raise PilotTookOver()
    return await command(*a, **kw)


async def _launch(
    drone: Drone,
    plan: FlightPlan,
    on_phase: OnPhase,
    control: FlightControl,
    result: FlightResult,
    scale: float,
) -> None:
    """Arm, take off and climb clear of the dock, with nothing slow in front of the arm command.

    A drone is normally prepared on its dock (`dfr.dispatch.preparation`): its parameters are confirmed
    already and nothing is sent before arming. What is not confirmed (an unprepared drone, a sortie at
    another altitude) is set and read back first. The sortie's fence (its fit checked before anything
    is sent) is uploaded and read back, and the prepared values are re-read, while the drone arms and
    climbs; both must succeed before the drone leaves the dock's vicinity (PX4 accepts a fence upload
    when armed: probed on v1.16 SITL), else the sortie fails and the drone is made safe.
    """
    await _wait(drone, lambda s: s.health_ok, control, 30, failsafe=False, recall=False)
    params = launch_params(plan.response_speed_m_s, plan.params, plan.altitude_m)
    if plan.fence:
        drone.check_fence_fits(plan.fence)
    set_now = await _act(control, drone.ensure_params, params, time_scale=scale)
    prepared = {k: v for k, v in params.items() if k not in set_now}
    result.launched_at = time.time()
    texts_before = drone.state.status_count
    background = [
        asyncio.create_task(drone.upload_fence(plan.fence), name=f"drone-{drone.id}-fence-upload")
        if plan.fence
        else None,
        asyncio.create_task(
            drone.recheck_params(prepared, time_scale=scale), name=f"drone-{drone.id}-param-recheck"
        )
        if prepared
        else None,
    ]
    try:
        await _act(control, drone.arm_and_takeoff, plan.altitude_m, time_scale=scale)
        await _climb_clear(drone, plan, control, scale, texts_before)
        for task in background:
            if task is not None:
                await task
    finally:  # on failure: stop what still runs; an error of its own is secondary to the one raised
        for task in background:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    await advance(control, on_phase, "en_route", {})


async def _climb_clear(
    drone: Drone, plan: FlightPlan, control: FlightControl, scale: float, texts_before: int
) -> None:
    """Wait until the drone is above the dock's obstacles; climb there itself if the takeoff ends low."""
    clear = min(plan.altitude_m - 2, plan.clear_height_m)
    took_off = False

    def climbed_or_settled(s: Any) -> bool:
        nonlocal took_off
        took_off = took_off or s.flight_mode == "TAKEOFF"
        new = s.status_texts[-(s.status_count - texts_before) :] if s.status_count > texts_before else []
        low = any((h := _announced_takeoff_m(t)) is not None and h < clear for t in new)
        return low or (s.rel_alt_m or 0) >= clear or (took_off and s.in_air and s.flight_mode == "HOLD")

    # Start along the route as soon as the drone is safely up; the go-to climbs the rest of the way.
    await _wait(drone, climbed_or_settled, control, 60 / scale + 10, failsafe=False, recall=False)
    if (drone.state.rel_alt_m or 0) < clear:
        # The takeoff ends low: the autopilot took off to another altitude than the one set and read back
        # (it says so at once; seen on real PX4 SITL), or stopped climbing. Climb here, then go: PX4 takes
        # the go-to even before lift-off.
        log.warning(
            "drone %s: takeoff too low (%.1f m now), climbing to %.0f m before the route",
            drone.id,
            drone.state.rel_alt_m or 0,
            plan.altitude_m,
        )
        await _act(control, drone.change_altitude, plan.altitude_m)
        await _wait(
            drone,
            lambda s: (s.rel_alt_m or 0) >= clear,
            control,
            60 / scale + 10,
            failsafe=False,
            recall=False,
        )


async def _take_over(
    drone: Drone, plan: FlightPlan, control: FlightControl, result: FlightResult, scale: float
) -> None:
    """Take a drone in the air from the mission it was re-tasked from: the new sortie's fence first (it
    holds the new route and orbit; the autopilot accepts a fence in flight), then a go-to along the first
    leg, which also ends a return-to-launch the first mission had commanded (that RTL was ours, not a
    failsafe: the selection never takes a drone flying its autopilot's failsafe)."""
    if plan.fence:
        await _act(control, drone.upload_fence, plan.fence)
    result.launched_at = time.time()
    legs = _remaining_route(drone, plan.waypoints)
    lon, lat = legs[0] if legs else (plan.target[1], plan.target[0])
    await _act(control, drone.goto, lat, lon, plan.altitude_m)
    await _wait(
        drone,
        lambda s: s.flight_mode not in FAILSAFE_MODES,
        control,
        10 / scale + 5,
        failsafe=False,
        recall=False,
    )


_TAKEOFF_TEXT = re.compile(r"Using default takeoff altitude: ([0-9.]+) m")


def _announced_takeoff_m(text: str) -> float | None:
    """The height PX4 says it takes off to ("Using default takeoff altitude: 2.5 m"), if the text is that."""
    m = _TAKEOFF_TEXT.search(text)
    return float(m.group(1)) if m else None


async def _fly_out(
    drone: Drone, plan: FlightPlan, control: FlightControl, scale: float, legs: list[tuple[float, float]]
) -> bool:
    """Fly the remaining legs; True when over the scene, False after a recall or an autopilot failsafe.

    The next go-to goes out `plan.corner_leads` metres before a corner (the drone turns at speed instead
    of stopping there); the legs are the tail of `plan.waypoints`, so leads are matched from the end."""
    skipped = len(plan.waypoints) - len(legs)
    for i, (lon, lat) in enumerate(legs):
        if control.recall.is_set() or drone.state.flight_mode in FAILSAFE_MODES:
            return False
        k = skipped + i
        lead = plan.corner_leads[k] if 0 <= k < len(plan.corner_leads) else 0.0
        tol = plan.arrive_m if i == len(legs) - 1 else max(plan.corner_m, lead)
        await _act(control, drone.goto, lat, lon, plan.altitude_m)
        await _wait(drone, _near(drone, lat, lon, tol), control, 900 / scale + 10)
        if control.recall.is_set() or drone.state.flight_mode in FAILSAFE_MODES:
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


async def _fly_back(drone: Drone, plan: FlightPlan, control: FlightControl, scale: float) -> str | None:
    """Retrace the planned route (it is clear of every zone), then RTL: PX4's RTL flies straight home."""
    route = plan.return_route if plan.return_route is not None else list(reversed(plan.waypoints))
    for lon, lat in _remaining_route(drone, route)[:-1]:
        if drone.state.flight_mode in FAILSAFE_MODES:
            return drone.state.flight_mode
        await _act(control, drone.goto, lat, lon, plan.altitude_m)
        await _wait(drone, _near(drone, lat, lon, plan.corner_m), control, 900 / scale + 10, recall=False)
    if drone.state.flight_mode in FAILSAFE_MODES:
        return drone.state.flight_mode
    await _act(control, drone.return_to_launch)
    return None


class contextlib_suppress_timeout:
    """`with contextlib_suppress_timeout():` — a timed wait that is allowed to run out."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: Any) -> bool:
        return et is TimeoutError


async def _wait(
    drone: Drone,
    pred: Callable[[Any], bool],
    control: FlightControl,
    timeout: float,
    *,
    failsafe: bool = True,
    recall: bool = True,
) -> None:
    """Wait for `pred`, or an autopilot failsafe (RTL/LAND) or a recall, whichever comes first.

    Raises `HandedOver` once the drone is re-tasked, `PilotTookOver` as soon as a pilot takes control,
    and TimeoutError after `timeout`.
    """
    events = [control.pilot, control.handover] + ([control.recall] if recall else [])
    waiters = {
        asyncio.create_task(e.wait(), name=f"flight-{drone.id}-event-{i}") for i, e in enumerate(events)
    }
    cond_task = asyncio.create_task(
        drone.wait_for(lambda s: pred(s) or (failsafe and s.flight_mode in FAILSAFE_MODES), timeout=timeout),
        name=f"flight-{drone.id}-wait",
    )
    try:
        done, _ = await asyncio.wait({*waiters, cond_task}, return_when=asyncio.FIRST_COMPLETED)
        if control.handover.is_set():
            raise HandedOver()
        if control.pilot.is_set():
            raise PilotTookOver()
        if cond_task in done:
            cond_task.result()  # re-raise TimeoutError
    finally:
        for t in (*waiters, cond_task):
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
