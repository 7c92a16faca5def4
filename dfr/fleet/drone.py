"""One connected drone as dfr sees it: a MAVSDK v4 system, its latest telemetry, and its commands.

All drones share one `mavsdk.asyncio.Mavsdk` instance (see `fleet.py`). Telemetry arrives through
MAVSDK subscriptions, each consumed by a named task that writes into `DroneState`; waiters block on a
condition that every update notifies, so "wait until within 5 m" is an event, not a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mavsdk.asyncio.plugins.action import ActionAsync, ActionError, OrbitYawBehavior
from mavsdk.asyncio.plugins.geofence import Circle, FenceType, GeofenceAsync, GeofenceData, Point, Polygon
from mavsdk.asyncio.plugins.param import ParamAsync
from mavsdk.asyncio.plugins.telemetry import TelemetryAsync

from dfr.geo import distance_m
from dfr.planning.fence import PX4_FENCE_CAPACITY, AutopilotFence
from dfr.supervision import Supervisor

log = logging.getLogger(__name__)

# PX4 parameters that are integers on the autopilot (set with set_param_int); all others are floats.
INT_PARAMS = frozenset({"NAV_DLL_ACT", "GF_ACTION", "COM_DL_LOSS_T", "COM_LOW_BAT_ACT", "GF_PREDICT"})


def _reason(e: Exception) -> str:
    """MAVSDK's error without the call's arguments (object reprs that say nothing to a reader)."""
    result = getattr(e, "_result", None) or getattr(e, "result", None)
    name = getattr(result, "result", None)
    return str(getattr(name, "name", None) or str(e).split(";")[0])


def _same(a: float, b: float) -> bool:
    """Parameter equality as the autopilot stores it (REAL32 or INT32)."""
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)


def _geofence_data(fence: AutopilotFence) -> GeofenceData:
    polygons = [
        Polygon(
            [Point(lat, lon) for lon, lat in p.ring],
            FenceType.INCLUSION if p.inclusion else FenceType.EXCLUSION,
        )
        for p in fence.polygons
    ]
    circles = [
        Circle(Point(c.lat, c.lon), c.radius_m, FenceType.INCLUSION if c.inclusion else FenceType.EXCLUSION)
        for c in fence.circles
    ]
    return GeofenceData(polygons, circles)


def _fence_difference(sent: GeofenceData, stored: GeofenceData) -> str | None:
    """Why `stored` (read back) is not the fence that was `sent`, or None (degE7 and float tolerance)."""

    def key(points: list[Any]) -> list[tuple[int, int]]:
        return [(round(p.latitude_deg * 1e7), round(p.longitude_deg * 1e7)) for p in points]

    def close(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
        if len(a) != len(b):
            return False
        return all(abs(x - u) <= 1 and abs(y - v) <= 1 for (x, y), (u, v) in zip(a, b, strict=True))

    if len(sent.polygons) != len(stored.polygons) or len(sent.circles) != len(stored.circles):
        return (
            f"{len(stored.polygons)} polygons and {len(stored.circles)} circles stored, "
            f"{len(sent.polygons)} and {len(sent.circles)} sent"
        )
    for i, (a, b) in enumerate(zip(sent.polygons, stored.polygons, strict=True)):
        if a.fence_type != b.fence_type or not close(key(a.points), key(b.points)):
            return f"polygon {i} differs"
    for i, (c, d) in enumerate(zip(sent.circles, stored.circles, strict=True)):
        if (
            c.fence_type != d.fence_type
            or not close(key([c.point]), key([d.point]))
            or abs(c.radius - d.radius) > 0.01
        ):
            return f"circle {i} differs"
    return None


COMMAND_RETRIES = 1
"""Extra sends of an idempotent command that was not acknowledged (MAVSDK itself retransmits first)."""
TELEMETRY_HZ = 10.0
"""Position and velocity messages per vehicle second that dfr asks for (see `Drone._set_rates`)."""


class CommandRefused(RuntimeError):
    """The autopilot refused or did not acknowledge a command; the message says which and why."""


@dataclass
class DroneState:
    """Latest telemetry (None until first received). Written only by the drone's telemetry tasks."""

    lat: float | None = None
    lon: float | None = None
    abs_alt_m: float | None = None
    rel_alt_m: float | None = None
    vn: float = 0.0
    ve: float = 0.0
    heading_deg: float = 0.0
    armed: bool = False
    in_air: bool = False
    flight_mode: str = "UNKNOWN"
    landed_state: str = "UNKNOWN"
    battery_pct: float | None = None
    home: tuple[float, float, float] | None = None
    health_ok: bool = False
    connected: bool = False
    updated_at: float = 0.0
    status_texts: list[str] = field(default_factory=list)
    status_count: int = 0  # texts received in all (the list keeps the last 50)

    @property
    def groundspeed(self) -> float:
        return math.hypot(self.vn, self.ve)

    def snapshot(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lon": self.lon,
            "abs_alt_m": self.abs_alt_m,
            "rel_alt_m": self.rel_alt_m,
            "groundspeed": round(self.groundspeed, 2),
            "heading_deg": round(self.heading_deg, 1),
            "armed": self.armed,
            "in_air": self.in_air,
            "flight_mode": self.flight_mode,
            "landed_state": self.landed_state,
            "battery_pct": self.battery_pct,
            "connected": self.connected,
            "health_ok": self.health_ok,
        }


class Drone:
    """Commands and telemetry of one autopilot system."""

    def __init__(self, drone_id: str, sysid: int, system: Any) -> None:
        self.id = drone_id
        self.sysid = sysid
        self.system = system
        self.action = ActionAsync(system)
        self.telemetry = TelemetryAsync(system)
        self.param = ParamAsync(system)
        self.geofence = GeofenceAsync(system)
        self.state = DroneState(connected=True)  # discovered just now; the subscription reports changes
        self.changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._parts: list[str] = []  # supervised telemetry parts
        self._supervisor: Supervisor | None = None
        # Parameter values the autopilot read back as set, since the link last came up. A link that drops
        # may be a reboot, after which PX4 holds its stored values again: the record is then cleared.
        self.confirmed: dict[str, float] = {}

    # ------------------------------------------------------------------ telemetry
    def start(self, supervisor: Supervisor | None = None) -> None:
        """Follow each telemetry subscription as the part ``drone-<id>-telemetry-<name>`` of `supervisor`
        (a private one if none): a MAVSDK stream that fails is logged and subscribed again, instead of
        freezing that part of the drone's state (its position, say) while everything else looks alive."""
        self._supervisor = supervisor or Supervisor(f"drone-{self.id}")
        subs: list[tuple[str, Callable[[], AsyncIterator[Any]], Callable[[Any], None]]] = [
            ("position", self.telemetry.subscribe_position, self._on_position),
            ("velocity", self.telemetry.subscribe_velocity_ned, self._on_velocity),
            ("heading", self.telemetry.subscribe_heading, self._on_heading),
            ("armed", self.telemetry.subscribe_armed, self._on_armed),
            ("in_air", self.telemetry.subscribe_in_air, self._on_in_air),
            ("mode", self.telemetry.subscribe_flight_mode, self._on_mode),
            ("landed", self.telemetry.subscribe_landed_state, self._on_landed),
            ("battery", self.telemetry.subscribe_battery, self._on_battery),
            ("home", self.telemetry.subscribe_home, self._on_home),
            ("health", self.telemetry.subscribe_health, self._on_health),
            ("connected", self.system.is_connected_state, self._on_connected),
            ("statustext", self.telemetry.subscribe_status_text, self._on_text),
        ]
        for name, sub, handler in subs:
            part = f"drone-{self.id}-telemetry-{name}"
            self._supervisor.spawn(part, functools.partial(self._consume, sub, handler))
            self._parts.append(part)
        # one-shot (it logs its own failures), owned here and cancelled by `stop`
        self._tasks.append(asyncio.create_task(self._set_rates(), name=f"drone-{self.id}-telemetry-rates"))

    async def _set_rates(self) -> None:
        """Ask for position and velocity at `TELEMETRY_HZ` instead of PX4's 50 and 30 Hz.

        dfr needs metres, not attitude-loop detail, and a fleet (or a simulator running faster than real
        time) at PX4's rates floods MAVSDK's callback queue, which then drops callbacks of every kind,
        flight-mode changes included ("a subscriber is not keeping up", seen at 5x on real PX4 SITL).
        """
        for what, call in (
            ("position", self.telemetry.set_rate_position),
            ("velocity", self.telemetry.set_rate_velocity_ned),
        ):
            try:
                await call(TELEMETRY_HZ)
            except Exception as e:  # an autopilot that refuses keeps its own rate: slower, still correct
                log.warning("drone %s: %s rate not set: %s", self.id, what, e)

    async def stop(self) -> None:
        if self._supervisor is not None:
            for part in self._parts:
                await self._supervisor.stop_part(part)
        self._parts.clear()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()

    async def _consume(self, sub: Callable[[], AsyncIterator[Any]], handler: Callable[[Any], None]) -> None:
        gen = sub()
        try:
            async for value in gen:
                handler(value)
                self.state.updated_at = time.monotonic()
                async with self.changed:
                    self.changed.notify_all()
        finally:
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                await aclose()

    def _on_position(self, p: Any) -> None:
        s = self.state
        s.lat, s.lon, s.abs_alt_m, s.rel_alt_m = (
            p.latitude_deg,
            p.longitude_deg,
            p.absolute_altitude_m,
            p.relative_altitude_m,
        )

    def _on_velocity(self, v: Any) -> None:
        self.state.vn, self.state.ve = v.north_m_s, v.east_m_s

    def _on_heading(self, h: Any) -> None:
        self.state.heading_deg = h.heading_deg

    def _on_armed(self, a: bool) -> None:
        self.state.armed = a

    def _on_in_air(self, a: bool) -> None:
        self.state.in_air = a

    def _on_mode(self, m: Any) -> None:
        self.state.flight_mode = m.name

    def _on_landed(self, s: Any) -> None:
        self.state.landed_state = s.name

    def _on_battery(self, b: Any) -> None:
        self.state.battery_pct = b.remaining_percent

    def _on_home(self, h: Any) -> None:
        if not math.isnan(h.latitude_deg):
            self.state.home = (h.latitude_deg, h.longitude_deg, h.absolute_altitude_m)

    def _on_health(self, h: Any) -> None:
        self.state.health_ok = bool(h.is_global_position_ok and h.is_home_position_ok)

    def _on_connected(self, c: bool) -> None:
        if not c:
            self.confirmed.clear()
        self.state.connected = c

    def _on_text(self, t: Any) -> None:
        self.state.status_texts = [*self.state.status_texts[-49:], t.text.strip()]
        self.state.status_count += 1

    async def wait_for(self, pred: Callable[[DroneState], bool], timeout: float) -> DroneState:
        """Wait until `pred(state)` holds; raises TimeoutError after `timeout` wall seconds."""
        async with asyncio.timeout(timeout):
            async with self.changed:
                await self.changed.wait_for(lambda: pred(self.state))
        return self.state

    def distance_to(self, lat: float, lon: float) -> float:
        s = self.state
        if s.lat is None or s.lon is None:
            return math.inf
        return distance_m(s.lat, s.lon, lat, lon)

    # ------------------------------------------------------------------ commands
    async def _do(self, what: str, call: Callable[[], Awaitable[Any]], *, retry: bool = True) -> None:
        """Send a command; a TIMEOUT (no acknowledgement: a lost packet, a busy autopilot) is sent once
        more when the command is idempotent (`retry`), a refusal never is."""
        for attempt in range(1 + COMMAND_RETRIES if retry else 1):
            try:
                await call()
                return
            except ActionError as e:
                code = getattr(e.result, "result", e.result)  # ActionResult, or its Result enum
                name = str(getattr(code, "name", code))
                if name != "TIMEOUT" or attempt == COMMAND_RETRIES or not retry:
                    raise CommandRefused(f"{self.id}: {what} refused by the autopilot: {name}") from e
                log.warning("drone %s: %s not acknowledged; sending it again", self.id, what)

    async def set_params(
        self, params: dict[str, float], *, deadline_s: float = 10.0, time_scale: float = 1.0
    ) -> None:
        """Apply PX4 parameters and confirm each by reading it back before returning.

        PX4 acknowledges a PARAM_SET (PARAM_VALUE echo) before the module that uses the parameter has
        applied it, and it may store another value than the one sent (MPC_XY_CRUISE is clamped to
        MPC_XY_VEL_MAX): so nothing that depends on a parameter starts before the autopilot reads the
        value back as sent. MPC_XY_VEL_MAX goes before MPC_XY_CRUISE for the same clamping reason.
        `deadline_s` is in the vehicle's seconds (divided by `time_scale` for a faster simulator).
        """
        order = sorted(params, key=lambda n: 0 if n == "MPC_XY_VEL_MAX" else 1)
        for name in order:
            value = params[name]
            self.confirmed.pop(name, None)
            try:
                if name in INT_PARAMS:
                    await self.param.set_param_int(name, int(value))
                else:
                    await self.param.set_param_float(name, float(value))
            except Exception as e:  # ParamError: unknown name or timeout
                raise CommandRefused(f"{self.id}: parameter {name}={value} not accepted: {e}") from e
        await self.confirm_params(params, deadline_s=deadline_s, time_scale=time_scale)

    def unconfirmed(self, params: dict[str, float]) -> dict[str, float]:
        """The entries of `params` the autopilot has not read back as set since the link came up."""
        return {n: v for n, v in params.items() if n not in self.confirmed or not _same(self.confirmed[n], v)}

    async def ensure_params(
        self, params: dict[str, float], *, deadline_s: float = 10.0, time_scale: float = 1.0
    ) -> dict[str, float]:
        """Set and confirm only what is not confirmed already (a drone prepared on its dock needs
        nothing here); returns what had to be set."""
        missing = self.unconfirmed(params)
        if missing:
            await self.set_params(missing, deadline_s=deadline_s, time_scale=time_scale)
        return missing

    async def recheck_params(self, params: dict[str, float], *, time_scale: float = 1.0) -> dict[str, float]:
        """Read `params` back (one request each) and set again whatever the autopilot no longer holds
        (another ground station or a reboot the link did not show); returns what had to be set again."""
        stale: dict[str, float] = {}
        for name, value in params.items():
            try:
                got: float | None = await self.read_param(name)
            except Exception:
                got = None
            if got is None or not _same(got, value):
                self.confirmed.pop(name, None)
                stale[name] = value
        if stale:
            log.warning("drone %s: parameters changed since prepared, set again: %s", self.id, stale)
            await self.set_params(stale, time_scale=time_scale)
        return stale

    async def read_param(self, name: str) -> float:
        """The value the autopilot reports for `name` now (PARAM_REQUEST_READ)."""
        if name in INT_PARAMS:
            return float(await self.param.get_param_int(name))
        return float(await self.param.get_param_float(name))

    async def confirm_params(
        self, params: dict[str, float], *, deadline_s: float = 10.0, time_scale: float = 1.0
    ) -> None:
        """Read every parameter back until it shows the wanted value; CommandRefused at the deadline."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s / max(time_scale, 1.0)
        for name, value in params.items():
            while True:
                try:
                    got: float | None = await self.read_param(name)
                except Exception:
                    got = None
                if got is not None and _same(got, value):
                    self.confirmed[name] = float(value)
                    break
                self.confirmed.pop(name, None)
                if loop.time() >= end:
                    raise CommandRefused(
                        f"{self.id}: parameter {name} reads {got} instead of {value} "
                        f"after {deadline_s:.0f} s (not applied by the autopilot)"
                    )
                await asyncio.sleep(0.05 / max(time_scale, 1.0))  # polling the autopilot: no event exists

    def check_fence_fits(self, fence: AutopilotFence, *, capacity: int = PX4_FENCE_CAPACITY) -> None:
        """Refuse a fence larger than the autopilot stores (PX4 would answer MAV_MISSION_NO_SPACE)."""
        if fence.item_count > capacity:
            raise CommandRefused(
                f"{self.id}: geofence of {fence.item_count} items exceeds the autopilot's {capacity}"
            )

    async def upload_fence(self, fence: AutopilotFence, *, capacity: int = PX4_FENCE_CAPACITY) -> None:
        """Give the autopilot the sortie's geofence as a backstop, all of it or none of it.

        The item count is checked against the autopilot's capacity before anything is sent (PX4 would
        answer MAV_MISSION_NO_SPACE), and the fence is read back after the upload and compared, so a
        fence the autopilot did not store exactly is a refusal here, before arming.
        """
        self.check_fence_fits(fence, capacity=capacity)
        data = _geofence_data(fence)
        try:
            await self.geofence.upload_geofence(data)
        except Exception as e:
            raise CommandRefused(f"{self.id}: geofence upload failed: {_reason(e)}") from e
        try:
            stored = await self.geofence.download_geofence()
        except Exception as e:
            raise CommandRefused(f"{self.id}: geofence read-back failed: {_reason(e)}") from e
        problem = _fence_difference(data, stored)
        if problem is not None:
            raise CommandRefused(f"{self.id}: geofence read back differs from the upload: {problem}")

    async def arm_and_takeoff(self, altitude_m: float, *, time_scale: float = 1.0) -> None:
        """Arm and take off to `altitude_m` above home.

        MAVSDK's takeoff sends NAV_TAKEOFF without an altitude: PX4 climbs to MIS_TAKEOFF_ALT, which is
        set and confirmed by read-back first unless already confirmed (normally while the drone waited on
        its dock: a takeoff sent straight after the PARAM_SET climbed to PX4's 2.5 m default on real PX4).
        The flight procedure still checks where the climb ended.
        """
        await self.ensure_params({"MIS_TAKEOFF_ALT": altitude_m}, time_scale=time_scale)
        await self._do("arm", lambda: self.action.arm())
        await self._do("takeoff", lambda: self.action.takeoff(), retry=False)  # a second one may be refused

    async def disarm(self) -> None:
        await self._do("disarm", lambda: self.action.disarm())

    async def goto(self, lat: float, lon: float, rel_alt_m: float) -> None:
        home = self.state.home
        if home is None:
            raise CommandRefused(f"{self.id}: no home position yet")
        await self._do(
            "go-to", lambda: self.action.goto_location(lat, lon, home[2] + rel_alt_m, float("nan"))
        )

    async def change_altitude(self, rel_alt_m: float) -> None:
        """Climb or descend to `rel_alt_m` above home over the current position (a go-to to here: PX4
        has no altitude-only command in position modes, and DO_REPOSITION also stops the drone)."""
        s = self.state
        if s.lat is None or s.lon is None:
            raise CommandRefused(f"{self.id}: no position yet")
        await self.goto(s.lat, s.lon, rel_alt_m)

    async def set_speed(self, speed_m_s: float) -> None:
        await self._do("change speed", lambda: self.action.set_current_speed(speed_m_s))

    async def orbit(self, lat: float, lon: float, radius_m: float, speed_m_s: float) -> None:
        await self._do(
            "orbit",
            lambda: self.action.do_orbit(
                radius_m,
                speed_m_s,
                OrbitYawBehavior.HOLD_FRONT_TO_CIRCLE_CENTER,
                lat,
                lon,
                float("nan"),
            ),
        )

    async def hold(self) -> None:
        await self._do("hold", lambda: self.action.hold())

    async def return_to_launch(self) -> None:
        await self._do("return to launch", lambda: self.action.return_to_launch())

    async def land(self) -> None:
        await self._do("land", lambda: self.action.land())
