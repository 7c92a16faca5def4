"""Simulator costs: flight-model step, telemetry encoding, and the speed a fleet can reach."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sim.link import DEFAULT_RATES, VehicleLink
from sim.params import Params
from sim.vehicle import Vehicle
from tests.benchmarks.run import timeit

HOME = (32.6401, -117.0842, 150.0)


def _flying_vehicle() -> Vehicle:
    v = Vehicle(1, *HOME, Params({"SIM_BAT_DRAIN": 1e6}))
    v.cmd_arm()
    v.cmd_takeoff(30.0)
    for _ in range(1500):
        v.step(0.02)
    lat, lon = v.lat + 0.01, v.lon
    v.cmd_reposition(lat, lon, None, None)
    return v


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    v = _flying_vehicle()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        v.step(0.02)
    per_step_us = (time.perf_counter() - t0) / n * 1e6
    rows.append(
        {
            "case": "vehicle.step (in flight)",
            "mean ms": per_step_us / 1000,
            "note": f"{per_step_us:.1f} us/step; max speed 1 drone ~{20000 / per_step_us:.0f}x",
        }
    )

    link = VehicleLink(v, ("127.0.0.1", 9))
    sent: list[bytes] = []

    class _T:
        def sendto(self, data: bytes, addr: Any) -> None:
            sent.append(data)

    link.transport = _T()  # type: ignore[assignment]
    ids = list(DEFAULT_RATES)

    def encode_all() -> None:
        for mid in ids:
            link.send_message(mid)

    r = timeit(encode_all, 300)
    msgs_per_s = sum(DEFAULT_RATES.values())
    rows.append(
        {
            "case": f"telemetry encode ({len(ids)} msg types)",
            **r,
            "note": f"{msgs_per_s:.0f} msg/s per drone at PX4 rates",
        }
    )
    for drones, speed in ((3, 10.0), (5, 50.0)):
        rows.append(asyncio.run(_fleet_speed(drones, speed)))
    return rows


async def _fleet_speed(drones: int, speed: float, seconds: float = 4.0) -> dict[str, Any]:
    """Run a whole fleet (physics + telemetry to UDP) and report the simulated/wall ratio and CPU."""
    from sim.fleet import DroneSpec, Fleet
    from sim.harness import free_udp_base_port

    specs = [DroneSpec(i + 1, f"b{i + 1}", *HOME) for i in range(drones)]
    fleet = Fleet(specs, speed=speed, base_port=free_udp_base_port(drones))
    await fleet.start()
    for v in fleet.vehicles.values():
        v.cmd_arm()
        v.cmd_takeoff(30.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    eff = fleet.effective_speed
    await fleet.stop()
    return {
        "case": f"fleet {drones} drones at {speed:.0f}x",
        "cpu % of a core": cpu / wall * 100,
        "note": f"achieved {eff:.1f}x; CPU {cpu / wall * 100:.0f}% of one core",
    }
