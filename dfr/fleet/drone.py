"""One connected drone as dfr sees it: a MAVSDK v4 system, its latest telemetry, and its commands.

All drones share one `mavsdk.asyncio.Mavsdk` instance (see `fleet.py`). Telemetry arrives through
MAVSDK subscriptions, each consumed by a named task that writes into `DroneState`; waiters block on a
condition that every update notifies, so "wait until within 5 m" is an event, not a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
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

log = logging.getLogger(__name__)

# PX4 parameters that are integers on the autopilot (set with set_param_int); all others are floats.
INT_PARAMS = frozenset({"NAV_DLL_ACT", "GF_ACTION", "COM_DL_LOSS_T", "COM_LOW_BAT_ACT", "GF_PREDICT"})


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

    # ------------------------------------------------------------------ telemetry
    def start(self) -> None:
        """Start one named task per telemetry subscription."""
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
            self._tasks.append(
                asyncio.create_task(self._consume(sub, handler), name=f"drone-{self.id}-telemetry-{name}")
            )

    async def stop(self) -> None:
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
        self.state.connected = c

    def _on_text(self, t: Any) -> None:
        self.state.status_texts = [*self.state.status_texts[-49:], t.text.strip()]

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
    async def _do(self, what: str, call: Awaitable[Any]) -> None:
        try:
            await call
        except ActionError as e:
            raise CommandRefused(f"{self.id}: {what} refused by the autopilot: {e.result.name}") from e

    async def set_params(self, params: dict[str, float]) -> None:
        """Apply PX4 parameters. MPC_XY_VEL_MAX goes before MPC_XY_CRUISE: PX4 clamps cruise to max."""
        order = sorted(params, key=lambda n: 0 if n == "MPC_XY_VEL_MAX" else 1)
        for name in order:
            value = params[name]
            try:
                if name in INT_PARAMS:
                    await self.param.set_param_int(name, int(value))
                else:
                    await self.param.set_param_float(name, float(value))
            except Exception as e:  # ParamError: unknown name or timeout
                raise CommandRefused(f"{self.id}: parameter {name}={value} not accepted: {e}") from e

    async def upload_fence(self, polygons: list[tuple[list[tuple[float, float]], bool]]) -> None:
        """Give the autopilot the geofence as a backstop: (lon/lat ring, is_inclusion) per polygon."""
        fence_polys = [
            Polygon(
                [Point(lat, lon) for lon, lat in ring],
                FenceType.INCLUSION if inclusion else FenceType.EXCLUSION,
            )
            for ring, inclusion in polygons
        ]
        circles: list[Circle] = []
        try:
            await self.geofence.upload_geofence(GeofenceData(fence_polys, circles))
        except Exception as e:
            raise CommandRefused(f"{self.id}: geofence upload failed: {e}") from e

    async def arm_and_takeoff(self, altitude_m: float) -> None:
        await self._do("set takeoff altitude", self.action.set_takeoff_altitude(altitude_m))
        await self._do("arm", self.action.arm())
        await self._do("takeoff", self.action.takeoff())

    async def goto(self, lat: float, lon: float, rel_alt_m: float) -> None:
        home = self.state.home
        if home is None:
            raise CommandRefused(f"{self.id}: no home position yet")
        await self._do("go-to", self.action.goto_location(lat, lon, home[2] + rel_alt_m, float("nan")))

    async def change_altitude(self, rel_alt_m: float) -> None:
        """Climb or descend to `rel_alt_m` above home over the current position (a go-to to here: PX4
        has no altitude-only command in position modes, and DO_REPOSITION also stops the drone)."""
        s = self.state
        if s.lat is None or s.lon is None:
            raise CommandRefused(f"{self.id}: no position yet")
        await self.goto(s.lat, s.lon, rel_alt_m)

    async def set_speed(self, speed_m_s: float) -> None:
        await self._do("change speed", self.action.set_current_speed(speed_m_s))

    async def orbit(self, lat: float, lon: float, radius_m: float, speed_m_s: float) -> None:
        await self._do(
            "orbit",
            self.action.do_orbit(
                radius_m,
                speed_m_s,
                OrbitYawBehavior.HOLD_FRONT_TO_CIRCLE_CENTER,
                lat,
                lon,
                float("nan"),
            ),
        )

    async def hold(self) -> None:
        await self._do("hold", self.action.hold())

    async def return_to_launch(self) -> None:
        await self._do("return to launch", self.action.return_to_launch())

    async def land(self) -> None:
        await self._do("land", self.action.land())
