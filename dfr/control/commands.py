"""A pilot's override commands: validate completely, take the drone from the automation, command it.

Order of a command, so that a refused one changes nothing and an accepted one takes effect at once:

1. the request itself (drone known, arguments present, point in the area and outside the zones,
   altitude and radius within limits): `CommandError` 404 / 422;
2. the drone now (connected 503, in the air or under pilot control as the command needs 409, the
   straight path or climb from where it is clear of the zones 422, a release able to replan 409);
3. pilot control is taken (the flight stops commanding before anything is awaited), the phase the
   command brings about is recorded (return, land), then the MAVLink command is sent; a refusal by the
   autopilot is a 502, and the drone stays with the pilot;
4. an audit record ``drone.command`` (actor: the pilot) says what was asked and how it ended.

``refuse_preemption`` keeps a drone on its mission when the policy offers it to an urgent incident
(see `dfr.dispatch.dispatcher`); it sends nothing to the drone and takes no control.

A pilot cannot take off from here: there is no launch command, a drone leaves its dock only for a
mission (hold, go-to, orbit and altitude need a drone in the air). A go-to whose straight path crosses
a zone is refused with the zone's name rather than silently re-routed: the pilot sees the line they
asked for, and sends a go-to around the zone (the panel can show why).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from enum import StrEnum

from dfr.area import Area
from dfr.control.validation import (
    RTL_RETURN_ALT_M,
    CommandInvalid,
    Limits,
    check_altitude,
    check_climb,
    check_orbit,
    check_path,
    check_point,
    check_radius,
)
from dfr.dispatch.dispatcher import Dispatcher, NoPreemption
from dfr.fleet.drone import CommandRefused, Drone
from dfr.fleet.fleet import Fleet
from dfr.planning import PlanError
from dfr.store import Store

__all__ = ["Command", "CommandError", "CommandOutcome", "PilotCommand", "execute"]

COMMAND_TIMEOUT_S = 10.0
"""MAVSDK retries a command itself; this bounds a command to a drone that stops answering mid-way."""


class Command(StrEnum):
    TAKE_CONTROL = "take_control"
    RELEASE = "release"
    HOLD = "hold"
    GOTO = "goto"
    ORBIT = "orbit"
    ALTITUDE = "altitude"
    RETURN = "return"
    LAND = "land"
    REFUSE_PREEMPTION = "refuse_preemption"


NEEDS_AIR = frozenset(
    {Command.HOLD, Command.GOTO, Command.ORBIT, Command.ALTITUDE, Command.RETURN, Command.LAND}
)


@dataclass(frozen=True)
class PilotCommand:
    command: Command
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    radius_m: float | None = None

    def args(self) -> dict[str, float]:
        values = {"lat": self.lat, "lon": self.lon, "alt_m": self.alt_m, "radius_m": self.radius_m}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class CommandOutcome:
    drone_id: str
    command: Command
    mission_id: str | None
    pilot_control: bool
    detail: str


@dataclass
class CommandError(Exception):
    """A refused command: HTTP status, stable code, reason for people and the field concerned."""

    status: int
    code: str
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.reason}"


def _invalid(e: CommandInvalid) -> CommandError:
    return CommandError(422, e.code, e.reason, e.field)


def _require(cmd: PilotCommand, *names: str) -> None:
    for name in names:
        value = getattr(cmd, name)
        if value is None:
            raise CommandError(422, "missing_field", f"{cmd.command.value} needs {name}", name)
        if not math.isfinite(value):
            raise CommandError(422, "invalid_field", f"{name} must be a finite number", name)


def _check_request(area: Area, cmd: PilotCommand, limits: Limits) -> None:
    """Everything that can be judged without the drone: a wrong request is wrong whatever it does."""
    c = cmd.command
    if c in (Command.GOTO, Command.ORBIT):
        _require(cmd, "lat", "lon")
    if c is Command.ORBIT:
        _require(cmd, "radius_m")
        if cmd.alt_m is not None:
            raise CommandError(
                422,
                "unsupported_field",
                "an orbit flies at the current altitude: change altitude first",
                "alt_m",
            )
    if c is Command.ALTITUDE:
        _require(cmd, "alt_m")
    unused = [n for n in ("lat", "lon", "radius_m") if getattr(cmd, n) is not None and not _uses(c, n)]
    if cmd.alt_m is not None and c not in (Command.GOTO, Command.ALTITUDE, Command.ORBIT):
        unused.append("alt_m")
    if unused:
        raise CommandError(422, "unsupported_field", f"{c.value} takes no {unused[0]}", unused[0])
    try:
        if cmd.alt_m is not None:
            check_altitude(cmd.alt_m, limits)
        if cmd.radius_m is not None:
            check_radius(cmd.radius_m, limits)
        if cmd.lat is not None and cmd.lon is not None:
            alts = [cmd.alt_m] if cmd.alt_m is not None else [limits.min_alt_m]
            check_point(area, cmd.lat, cmd.lon, alts)
    except CommandInvalid as e:
        raise _invalid(e) from None


def _uses(c: Command, name: str) -> bool:
    if name in ("lat", "lon"):
        return c in (Command.GOTO, Command.ORBIT)
    return name == "radius_m" and c is Command.ORBIT


def _current_alt(drone: Drone, limits: Limits) -> float:
    alt = drone.state.rel_alt_m or limits.min_alt_m
    return min(max(alt, limits.min_alt_m), limits.max_alt_m)


def _check_from_here(area: Area, cmd: PilotCommand, drone: Drone, limits: Limits) -> float | None:
    """Checks that depend on where the drone is; returns the altitude a go-to will fly at."""
    s = drone.state
    assert s.lat is not None and s.lon is not None
    here = (s.lat, s.lon)
    now = s.rel_alt_m or 0.0
    c = cmd.command
    try:
        if c is Command.GOTO:
            assert cmd.lat is not None and cmd.lon is not None
            alt = cmd.alt_m if cmd.alt_m is not None else _current_alt(drone, limits)
            check_point(area, cmd.lat, cmd.lon, [now, alt])
            check_path(area, here, (cmd.lat, cmd.lon), [now, alt], now)
            return alt
        if c is Command.ORBIT:
            assert cmd.lat is not None and cmd.lon is not None and cmd.radius_m is not None
            check_point(area, cmd.lat, cmd.lon, [now])
            check_path(area, here, (cmd.lat, cmd.lon), [now], now)
            check_orbit(area, cmd.lat, cmd.lon, cmd.radius_m, now)
        if c is Command.ALTITUDE:
            assert cmd.alt_m is not None
            check_climb(area, s.lat, s.lon, now, cmd.alt_m)
        if c is Command.RETURN and s.home is not None:
            # PX4's RTL climbs to at least RTL_RETURN_ALT, then flies straight home
            check_path(area, here, (s.home[0], s.home[1]), [now, max(now, RTL_RETURN_ALT_M)], now)
    except CommandInvalid as e:
        raise _invalid(e) from None
    return None


async def execute(
    *,
    area: Area,
    fleet: Fleet,
    dispatcher: Dispatcher,
    store: Store,
    drone_id: str,
    cmd: PilotCommand,
    who: str,
) -> CommandOutcome:
    """Run one pilot command (see the module docstring for the order); raises `CommandError`."""
    try:
        area.drone(drone_id)
    except KeyError:
        known = ", ".join(d.id for d in area.drones) or "none"
        raise CommandError(
            404, "not_found", f"no drone {drone_id[:80]!r} (drones: {known})", "drone_id"
        ) from None
    limits = Limits.for_area(area)
    _check_request(area, cmd, limits)

    drone = fleet.drones.get(drone_id)
    if drone is None or not drone.state.connected:
        raise CommandError(503, "not_connected", f"drone {drone_id} is not connected", "drone_id")
    if drone.state.lat is None or drone.state.lon is None:
        raise CommandError(
            503, "no_position", f"drone {drone_id} has not reported a position yet", "drone_id"
        )
    c = cmd.command
    if c in NEEDS_AIR and not drone.state.in_air:
        raise CommandError(
            409,
            "on_ground",
            f"drone {drone_id} is on the ground: {c.value} needs it in the air "
            "(a pilot cannot launch from here; drones take off for missions)",
            "command",
        )
    if c is Command.RELEASE:
        return await _release(dispatcher, store, drone_id, who)
    if c is Command.REFUSE_PREEMPTION:
        return await _refuse_preemption(dispatcher, store, drone_id, who)
    alt = _check_from_here(area, cmd, drone, limits)

    mission_id = await dispatcher.take_control(drone_id, who)
    detail = await _send(dispatcher, drone, cmd, alt, who, store, mission_id)
    return CommandOutcome(drone_id, c, mission_id, True, detail)


async def _release(dispatcher: Dispatcher, store: Store, drone_id: str, who: str) -> CommandOutcome:
    if dispatcher.pilot_of(drone_id) is None:
        raise CommandError(409, "not_piloted", f"drone {drone_id} is not under pilot control", "command")
    try:
        plan = await dispatcher.handback_plan(drone_id)
    except PlanError as e:
        raise CommandError(
            409,
            "cannot_hand_back",
            f"the automation cannot continue from here: {e}; fly clear first",
            "command",
        ) from None
    mission_id = await dispatcher.release(drone_id, who, plan)
    if mission_id is None:
        detail = "released: no mission, the drone keeps its current autopilot mode"
    else:
        detail = f"released: the automation continues mission {mission_id}"
    await _audit(store, who, drone_id, mission_id, PilotCommand(Command.RELEASE), "ok", detail)
    return CommandOutcome(drone_id, Command.RELEASE, mission_id, False, detail)


async def _refuse_preemption(dispatcher: Dispatcher, store: Store, drone_id: str, who: str) -> CommandOutcome:
    """Keep the drone on its mission: an urgent incident offered it (policy pre-emption) goes without it.
    Nothing is sent to the drone, and the automation keeps flying it (pilot control is not taken)."""
    try:
        mission_id = await dispatcher.refuse_preemption(drone_id, who)
    except NoPreemption as e:
        raise CommandError(409, "no_preemption", str(e), "command") from None
    detail = f"pre-emption refused: the drone stays on mission {mission_id}"
    await _audit(store, who, drone_id, mission_id, PilotCommand(Command.REFUSE_PREEMPTION), "ok", detail)
    return CommandOutcome(drone_id, Command.REFUSE_PREEMPTION, mission_id, False, detail)


async def _send(
    dispatcher: Dispatcher,
    drone: Drone,
    cmd: PilotCommand,
    alt: float | None,
    who: str,
    store: Store,
    mission_id: str | None,
) -> str:
    c = cmd.command
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            if c is Command.TAKE_CONTROL:
                detail = (
                    "pilot control: the automation sends no more commands; the drone keeps its current one"
                )
            elif c is Command.HOLD:
                await drone.hold()
                detail = "holding position"
            elif c is Command.GOTO:
                assert cmd.lat is not None and cmd.lon is not None and alt is not None
                await drone.goto(cmd.lat, cmd.lon, alt)
                detail = f"going to ({cmd.lat:.6f}, {cmd.lon:.6f}) at {alt:.0f} m"
            elif c is Command.ORBIT:
                assert cmd.lat is not None and cmd.lon is not None and cmd.radius_m is not None
                speed = dispatcher.policy.orbit_speed_m_s
                await drone.orbit(cmd.lat, cmd.lon, cmd.radius_m, speed)
                detail = f"orbiting ({cmd.lat:.6f}, {cmd.lon:.6f}) at {cmd.radius_m:.0f} m radius"
            elif c is Command.ALTITUDE:
                assert cmd.alt_m is not None
                await drone.change_altitude(cmd.alt_m)
                detail = f"changing altitude to {cmd.alt_m:.0f} m, holding position"
            elif c is Command.RETURN:
                await dispatcher.pilot_phase(drone.id, "returning", who, f"pilot {who}: return to launch")
                await drone.return_to_launch()
                detail = "returning to launch"
            else:  # LAND
                await dispatcher.pilot_phase(drone.id, "returning", who, f"pilot {who}: land now")
                await drone.land()
                detail = "landing now"
    except (CommandRefused, TimeoutError) as e:
        reason = str(e) or f"{drone.id}: no answer to {c.value} within {COMMAND_TIMEOUT_S:g} s"
        await _audit(store, who, drone.id, mission_id, cmd, "refused", reason)
        raise CommandError(502, "autopilot_refused", reason, "command") from None
    await _audit(store, who, drone.id, mission_id, cmd, "ok", detail)
    return detail


async def _audit(
    store: Store, who: str, drone_id: str, mission_id: str | None, cmd: PilotCommand, result: str, detail: str
) -> None:
    await store.append_audit(
        who,
        "drone.command",
        "mission" if mission_id is not None else "drone",
        mission_id if mission_id is not None else drone_id,
        {
            "drone_id": drone_id,
            "command": cmd.command.value,
            "args": cmd.args(),
            "result": result,
            "detail": detail,
        },
    )
