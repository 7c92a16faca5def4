"""The simulator process: N vehicles stepped in lock-step, each behind its own MAVLink UDP endpoint.

Simulated time advances in fixed 20 ms steps, `speed` steps' worth per wall-clock 20 ms, so that the
same commands at the same simulated times always give the same tracks (the seed only feeds the
vehicles' noise). If the machine cannot keep up, simulated time falls behind rather than taking
bigger steps; `effective_speed` reports what was achieved.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dfr.charging import Charging
from dfr.supervision import Supervisor
from sim.link import VehicleLink
from sim.params import Params
from sim.vehicle import DockCharger, Vehicle

log = logging.getLogger(__name__)

STEP_S = 0.02
TICK_S = 0.02
MAX_STEPS_PER_TICK = 250  # 50x at a 20 ms tick; beyond that simulated time lags
CLOCK = "sim-fleet-clock"


@dataclass
class DroneSpec:
    """One simulated vehicle: where it is parked and which PX4 parameters differ from the defaults."""

    sysid: int
    name: str
    lat: float
    lon: float
    alt_amsl: float
    params: dict[str, float] = field(default_factory=dict)
    # The dock's charging model from the area file; None: the battery only drains (as on PX4 SIH).
    charging: Charging | None = None


class Fleet:
    """Owns the vehicles, their UDP endpoints and the clock."""

    def __init__(
        self,
        drones: list[DroneSpec],
        *,
        speed: float = 1.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        base_port: int = 14540,
        wind_ne: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if not drones:
            raise ValueError("the fleet needs at least one drone")
        if not 0.1 <= speed <= 100:
            raise ValueError(f"speed must be within 0.1..100, got {speed}")
        ids = [d.sysid for d in drones]
        if len(set(ids)) != len(ids) or not all(1 <= i <= 250 for i in ids):
            raise ValueError(f"system ids must be unique and within 1..250: {ids}")
        self.specs = drones
        self.speed = speed
        self.seed = seed
        self.host = host
        self.base_port = base_port
        self.vehicles: dict[int, Vehicle] = {}
        self.links: dict[int, VehicleLink] = {}
        for i, d in enumerate(drones):
            params = Params({"MAV_SYS_ID": d.sysid, **d.params})
            # PX4's start script stretches the data-link timeout with the speed factor, because a ground
            # station's 1 Hz wall-clock heartbeat is 1/speed Hz in simulated time.
            if "COM_DL_LOSS_T" not in d.params and speed > 1:
                params.set("COM_DL_LOSS_T", params["COM_DL_LOSS_T"] * speed)
            vehicle = Vehicle(d.sysid, d.lat, d.lon, d.alt_amsl, params, wind_ne, seed + i)
            if d.charging is not None:
                vehicle.charger = DockCharger(d.lat, d.lon, d.charging)
            self.vehicles[d.sysid] = vehicle
        self.supervisor = Supervisor("sim")
        self._wall0 = 0.0
        self._sim0 = 0.0
        self.ticks = 0
        self.stopped = asyncio.Event()

    def port_of(self, sysid: int) -> int:
        index = [d.sysid for d in self.specs].index(sysid)
        return self.base_port + index

    def local_port_of(self, sysid: int) -> int:
        """The vehicle's own UDP port (where it receives; PX4 SITL uses 14580 + instance)."""
        transport = self.links[sysid].transport
        assert transport is not None
        return int(transport.get_extra_info("sockname")[1])

    async def start(self) -> None:
        """Open one UDP socket per vehicle and start the clock."""
        loop = asyncio.get_running_loop()
        speed = self.speed
        for d in self.specs:
            link = VehicleLink(self.vehicles[d.sysid], (self.host, self.port_of(d.sysid)), speed)
            await loop.create_datagram_endpoint(lambda link=link: link, local_addr=(self.host, 0))  # type: ignore[misc]
            self.links[d.sysid] = link
        self._wall0 = time.monotonic()
        # Supervised: a step or a send that raises is logged and the clock goes on after a back-off (from
        # the vehicles' current state: simulated time never jumps back); ten failures in a row give up and
        # set `supervisor.escalated`, on which `dfr sim` exits non-zero rather than stand still silently.
        self.supervisor.spawn(CLOCK, self._run)

    async def stop(self) -> None:
        await self.supervisor.stop()
        for link in self.links.values():
            if link.transport is not None:
                link.transport.close()
        self.stopped.set()

    @property
    def sim_time(self) -> float:
        return next(iter(self.vehicles.values())).t

    @property
    def effective_speed(self) -> float:
        wall = time.monotonic() - self._wall0
        return self.sim_time / wall if wall > 0 else 0.0

    async def _run(self) -> None:
        vehicles = list(self.vehicles.values())
        links = list(self.links.values())
        next_tick = time.monotonic()
        self._wall0 = next_tick - vehicles[0].t / self.speed  # a restarted clock resumes, never bursts
        while True:
            now = time.monotonic()
            target = (now - self._wall0) * self.speed
            steps = 0
            while vehicles[0].t + STEP_S / 2 < target and steps < MAX_STEPS_PER_TICK:
                for v in vehicles:
                    v.step(STEP_S)
                steps += 1
            if steps == MAX_STEPS_PER_TICK:  # fell behind: re-anchor rather than burst later
                self._wall0 = now - vehicles[0].t / self.speed
            for link in links:
                link.tick(now)
            self.ticks += 1
            next_tick += TICK_S
            delay = next_tick - time.monotonic()
            if delay < -0.5:
                next_tick = time.monotonic()
                delay = 0
            await asyncio.sleep(max(delay, 0))

    # ------------------------------------------------------------------ control (faults, status)
    def vehicle(self, sysid: int) -> Vehicle:
        try:
            return self.vehicles[sysid]
        except KeyError:
            raise ValueError(f"no drone with system id {sysid}") from None

    def set_link(self, sysid: int, up: bool) -> None:
        self.vehicle(sysid)
        self.links[sysid].link_down = not up

    def status(self) -> dict[str, Any]:
        return {
            "sim_time": round(self.sim_time, 3),
            "speed": self.speed,
            "effective_speed": round(self.effective_speed, 2),
            "drones": [self.drone_status(s) for s in self.vehicles],
        }

    def drone_status(self, sysid: int) -> dict[str, Any]:
        v = self.vehicle(sysid)
        return {
            "sysid": sysid,
            "name": next(d.name for d in self.specs if d.sysid == sysid),
            "port": self.port_of(sysid),
            "t": round(v.t, 3),
            "lat": v.lat,
            "lon": v.lon,
            "alt_amsl": round(v.alt_amsl, 2),
            "height": round(v.height, 2),
            "north": round(v.north, 2),
            "east": round(v.east, 2),
            "groundspeed": round(v.groundspeed, 2),
            "heading_deg": round(v.heading_deg, 1),
            "armed": v.armed,
            "mode": v.mode.name,
            "landed_state": v.landed_state.name,
            "battery_pct": round(v.battery_pct, 2),
            "failsafe": v.failsafe_active,
            "gcs_lost": v.gcs_lost,
            "link_down": self.links[sysid].link_down if sysid in self.links else False,
            "gps_fix": v.gps_fix_type,
            "home": [v.home_lat, v.home_lon, v.home_alt_amsl],
            "wind": [v.wind_n, v.wind_e],
        }
