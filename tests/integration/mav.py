"""Test helpers around MAVSDK v4 (one `Mavsdk` instance for a whole fleet)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mavsdk.asyncio import ComponentType, Configuration, Mavsdk
from mavsdk.asyncio.plugins.action import ActionAsync
from mavsdk.asyncio.plugins.geofence import GeofenceAsync
from mavsdk.asyncio.plugins.mission_raw import MissionRawAsync
from mavsdk.asyncio.plugins.param import ParamAsync
from mavsdk.asyncio.plugins.telemetry import TelemetryAsync

from sim.geo import distance_m, latlon_from_ne

T = TypeVar("T")


@dataclass
class Drone:
    sysid: int
    system: Any
    action: ActionAsync
    telemetry: TelemetryAsync
    param: ParamAsync
    mission_raw: MissionRawAsync
    geofence: GeofenceAsync


def new_mavsdk() -> Mavsdk:
    return Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))


async def connect_fleet(mavsdk: Mavsdk, urls: list[str], timeout: float = 30.0) -> dict[int, Drone]:
    """Add one connection per vehicle and wait until MAVSDK has discovered an autopilot on each."""
    for url in urls:
        await mavsdk.add_any_connection(url)
    want = len(urls)

    async def discovered() -> dict[int, Any]:
        found: dict[int, Any] = {}
        gen = mavsdk.on_new_system()
        async with contextlib.aclosing(gen):
            while True:
                for system in await mavsdk.get_systems():
                    if await system.has_autopilot():
                        found[await system.get_system_id()] = system
                if len(found) >= want:
                    return found
                await gen.__anext__()

    systems = await asyncio.wait_for(discovered(), timeout)
    return {
        sid: Drone(
            sid, s, ActionAsync(s), TelemetryAsync(s), ParamAsync(s), MissionRawAsync(s), GeofenceAsync(s)
        )
        for sid, s in systems.items()
    }


async def first(gen: AsyncGenerator[T, None], pred: Callable[[T], bool], timeout: float) -> T:
    """The first value of a MAVSDK subscription that satisfies `pred` (an event, not a sleep)."""

    async def scan() -> T:
        async with contextlib.aclosing(gen):
            async for value in gen:
                if pred(value):
                    return value
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(scan(), timeout)


async def wait_ready(drone: Drone, timeout: float = 30.0) -> None:
    await first(
        drone.telemetry.subscribe_health(),
        lambda h: h.is_global_position_ok and h.is_home_position_ok,
        timeout,
    )


def offset(lat: float, lon: float, north: float, east: float) -> tuple[float, float]:
    return latlon_from_ne(lat, lon, north, east)


def dist(pos: Any, lat: float, lon: float) -> float:
    return distance_m(pos.latitude_deg, pos.longitude_deg, lat, lon)


def bearing_ne(d: float, deg: float) -> tuple[float, float]:
    return d * math.cos(math.radians(deg)), d * math.sin(math.radians(deg))
