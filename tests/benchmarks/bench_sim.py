"""Simulator costs: flight-model step, telemetry encoding, and the speed a fleet can reach."""

from __future__ import annotations

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
    return rows
