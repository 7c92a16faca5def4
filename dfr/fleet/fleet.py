"""Connect dfr to its drones: one `mavsdk.asyncio.Mavsdk` for the whole fleet (MAVSDK v4's model).

Each configured drone has a MAVLink system id and a connection URL. By default drone *i* of the area
(1-based, in file order) is system *i* on `udpin://127.0.0.1:14540+i-1`, PX4 SITL's and the built-in
simulator's convention, so the same configuration flies both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mavsdk.asyncio import ComponentType, Configuration, Mavsdk

from dfr.fleet.drone import Drone
from dfr.supervision import Supervisor

log = logging.getLogger(__name__)
DISCOVERY = "fleet-discovery"


class FleetError(RuntimeError):
    """The fleet could not be connected as configured."""


@dataclass(frozen=True)
class DroneLink:
    drone_id: str
    sysid: int
    url: str


def default_links(
    drone_ids: Sequence[str], base_port: int = 14540, host: str = "127.0.0.1"
) -> list[DroneLink]:
    return [DroneLink(d, i + 1, f"udpin://{host}:{base_port + i}") for i, d in enumerate(drone_ids)]


class Fleet:
    """Owns the Mavsdk instance and one `Drone` per configured system."""

    def __init__(self, links: Sequence[DroneLink]) -> None:
        sysids = [link.sysid for link in links]
        if len(set(sysids)) != len(sysids):
            raise FleetError(f"duplicate MAVLink system ids in fleet configuration: {sysids}")
        self.links = list(links)
        self.drones: dict[str, Drone] = {}
        self._mavsdk: Mavsdk | None = None
        self._supervisor: Supervisor | None = None
        self.all_connected = asyncio.Event()
        self._changed = asyncio.Event()  # set whenever a drone connects
        self.on_connect: list[Callable[[str], None]] = []  # called with the drone id of a new drone

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Open every connection and discover systems in the background (drones may come up later).

        Discovery is the supervised part ``fleet-discovery``: if it fails it is logged and restarted
        (MAVSDK's system list is re-read, so no drone is missed), never silently gone."""
        self._mavsdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
        for link in {lk.url for lk in self.links}:
            try:
                await self._mavsdk.add_any_connection(link)
            except Exception as e:
                raise FleetError(f"cannot open MAVLink connection {link}: {e}") from e
        self._supervisor = supervisor or Supervisor("fleet")
        self._supervisor.spawn(DISCOVERY, self._discover)

    async def _discover(self) -> None:
        assert self._mavsdk is not None
        by_sysid = {lk.sysid: lk for lk in self.links}
        gen = self._mavsdk.on_new_system()
        async with contextlib.aclosing(gen):
            while True:
                for system in await self._mavsdk.get_systems():
                    if not await system.has_autopilot():
                        continue
                    sysid = await system.get_system_id()
                    link = by_sysid.get(sysid)
                    if link is None:
                        continue  # MAVLink from systems we were not configured for is ignored
                    if link.drone_id not in self.drones:
                        drone = Drone(link.drone_id, sysid, system)
                        drone.start(self._supervisor)
                        self.drones[link.drone_id] = drone
                        log.info("drone %s connected as MAVLink system %d", link.drone_id, sysid)
                        self._changed.set()
                        for callback in self.on_connect:
                            callback(link.drone_id)
                if len(self.drones) == len(self.links):
                    self.all_connected.set()
                await gen.__anext__()

    async def wait_connected(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self.all_connected.wait(), timeout)
        except TimeoutError:
            missing = [lk.drone_id for lk in self.links if lk.drone_id not in self.drones]
            raise FleetError(f"drones not connected after {timeout:.0f} s: {missing}") from None

    async def wait_for_drone(self, drone_id: str, timeout: float = 30.0) -> Drone:
        """Wait until one drone is connected (others of the fleet may be offline)."""
        async with asyncio.timeout(timeout):
            while drone_id not in self.drones:
                await self._changed.wait()
                self._changed.clear()
        return self.drones[drone_id]

    async def wait_ready(self, drone_id: str, timeout: float = 30.0) -> Drone:
        """Wait until a drone is connected, healthy (position and home) and has reported its battery."""
        drone = await self.wait_for_drone(drone_id, timeout)
        await drone.wait_for(lambda s: s.health_ok and s.battery_pct is not None, timeout)
        return drone

    def drone(self, drone_id: str) -> Drone:
        try:
            return self.drones[drone_id]
        except KeyError:
            raise FleetError(f"drone {drone_id!r} is not connected") from None

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop_part(DISCOVERY)
        for drone in self.drones.values():
            await drone.stop()
        if self._mavsdk is not None:
            await asyncio.to_thread(self._mavsdk.destroy)
            self._mavsdk = None

    def snapshot(self) -> dict[str, Any]:
        return {d: drone.state.snapshot() for d, drone in self.drones.items()}
