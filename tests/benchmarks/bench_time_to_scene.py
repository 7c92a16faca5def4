"""Time to scene of the DFR-class drone against its physical limit, on the built-in simulator.

20 scenes at 0.5-3 km from the Civic Center dock of the sample area, in every direction the area allows.
Each is planned as the dispatcher plans it (route around the zones, straight legs where it may, corner
leads, fence) and flown by cv-1 (airframe profile ``dfr-class``) through the real fleet layer (MAVSDK
against the simulator process), prepared on its dock first as the service prepares it. For each: the
time from the flight's start (the service starts it the moment the launch is decided) to on scene, in
simulated seconds, and its ratio to the profile's physical limit: straight up to the dock's clear height
at the profile's climb rate, then the route at top speed with the profile's acceleration
(`AirframeProfile.physical_time_s`). Also the time from the flight's start to the arm command.

Not measured here: the service's own decision time (report received -> launch decided; see the load
benchmark's dispatch latency) and real PX4 (`dfr sitl run --backend px4` flies the shipped scenarios).
`DFR_BENCH_SCENES` changes the number of scenes.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

from dfr.area import Area, load_area
from dfr.dispatch.flight import FlightPlan, fly
from dfr.dispatch.preparation import launch_params
from dfr.dispatch.sortie import plan_sortie
from dfr.fleet.fleet import Fleet, default_links
from dfr.planning import PlanError
from sim.harness import SimProcess

AREA = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
SPEED = 20.0
DRONE = "cv-1"
EARTH_M_PER_DEG = 111_320.0


def _scenes(area: Area, n: int) -> list[tuple[float, float]]:
    """`n` plannable scenes 0.5-3 km from the drone's dock, spread over distance and bearing."""
    dock = area.dock(area.drone(DRONE).dock)
    cfg = area.drone(DRONE)
    out: list[tuple[float, float]] = []
    k = 0
    while len(out) < n and k < 40 * n:
        dist = 500.0 + (k * 2500.0 / 7.0) % 2500.0
        bearing = math.radians((k * 137.5) % 360.0)
        k += 1
        lat = dock.lat + dist * math.cos(bearing) / EARTH_M_PER_DEG
        lon = dock.lon + dist * math.sin(bearing) / (EARTH_M_PER_DEG * math.cos(math.radians(dock.lat)))
        try:
            plan_sortie(area, (dock.lat, dock.lon), (lat, lon), cruise_m_s=cfg.response_speed_m_s)
        except PlanError:
            continue
        out.append((lat, lon))
    return out


async def _fly_all(area: Area, scenes: list[tuple[float, float]]) -> list[dict[str, float]]:
    cfg = area.drone(DRONE)
    dock = area.dock(cfg.dock)
    profile = area.profile(DRONE)
    assert profile is not None, "cv-1 of the sample area names the dfr-class profile"
    accel = float(cfg.params.get("MPC_ACC_HOR", profile.accel_m_s2))
    rows: list[dict[str, float]] = []
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        fleet = Fleet(default_links([DRONE], base_port=sim.base_port))
        await fleet.start()
        try:
            drone = await fleet.wait_ready(DRONE, timeout=60)
            standing = launch_params(cfg.response_speed_m_s, dict(cfg.params), area.default_altitude_m)
            await drone.set_params(standing, time_scale=SPEED)  # prepared on the dock, as in service
            # twenty sorties back to back: the battery must not be what limits them here
            await drone.set_params({"SIM_BAT_DRAIN": 1e6}, time_scale=SPEED)
            for scene in scenes:
                await drone.wait_for(lambda s: not s.armed and not s.in_air, 120)
                sortie = plan_sortie(
                    area,
                    (dock.lat, dock.lon),
                    scene,
                    cruise_m_s=cfg.response_speed_m_s,
                    accel_m_s2=accel,
                    climb_m_s=profile.climb_m_s,
                    clear_height_m=dock.clear_height_m,
                )
                plan = FlightPlan(
                    waypoints=sortie.route.waypoints,
                    altitude_m=sortie.altitude_m,
                    target=sortie.orbit_centre,
                    response_speed_m_s=cfg.response_speed_m_s,
                    orbit_radius_m=sortie.orbit_radius_m,
                    loiter_s=0.0,
                    params=dict(cfg.params),
                    fence=sortie.fence,
                    time_scale=SPEED,
                    clear_height_m=dock.clear_height_m,
                    corner_leads=sortie.corner_leads,
                )
                started = time.time()
                result = await fly(drone, plan)
                if result.on_scene_at is None or result.launched_at is None:
                    continue
                flown = (result.on_scene_at - started) * SPEED
                limit = profile.physical_time_s(sortie.route.length_m, dock.clear_height_m)
                rows.append(
                    {
                        "route_m": sortie.route.length_m,
                        "flown_s": flown,
                        "eta_s": sortie.eta_s,
                        "limit_s": limit,
                        "to_arm_ms": (result.launched_at - started) * 1000.0,
                    }
                )
        finally:
            await fleet.stop()
    return rows


def run() -> list[dict[str, Any]]:
    area = load_area(AREA)
    scenes = _scenes(area, int(os.environ.get("DFR_BENCH_SCENES", "20")))
    rows = asyncio.run(_fly_all(area, scenes))
    if not rows:
        return [{"bench": "time to scene, dfr-class (builtin)", "note": "no flight reached its scene"}]
    ratios = sorted(r["flown_s"] / r["limit_s"] for r in rows)
    eta_err = sorted(abs(r["eta_s"] - r["flown_s"]) / r["flown_s"] for r in rows)
    near_1km = min(rows, key=lambda r: abs(r["route_m"] - 1000.0))
    to_arm = sorted(r["to_arm_ms"] for r in rows)
    return [
        {
            "bench": f"time to scene, dfr-class (builtin), {len(rows)} scenes 0.5-3 km",
            "median ratio to limit": statistics.median(ratios),
            "max ratio": ratios[-1],
            "median |ETA - flown| / flown": statistics.median(eta_err),
            "max |ETA - flown| / flown": eta_err[-1],
            "note": (
                f"route {near_1km['route_m']:.0f} m: {near_1km['flown_s']:.1f} s "
                f"(limit {near_1km['limit_s']:.1f} s);"
                f" flight start -> arm p50 {statistics.median(to_arm):.1f} ms, max {to_arm[-1]:.1f} ms (wall)"
            ),
        }
    ]


if __name__ == "__main__":
    from tests.benchmarks.run import print_table

    print_table(run())
