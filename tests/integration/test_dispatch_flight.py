"""A planned response flown by dfr's fleet layer (real MAVSDK) against the simulator process.

The route must bend around the hospital helipad zone of the sample area, and the flown track —
not just the plan — must never enter an active no-fly zone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dfr.airframe import load_airframe
from dfr.area import load_area
from dfr.dispatch.flight import FlightPlan, fly
from dfr.dispatch.sortie import plan_sortie, planner_zones
from dfr.fleet.fleet import Fleet, default_links
from dfr.geo import distance_m
from dfr.planning import path_is_clear
from sim.harness import SimProcess

pytestmark = pytest.mark.integration

AREA = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
AIRFRAMES = AREA.parents[1] / "airframes"
SPEED = 20.0
SCENE = (32.6150, -117.0330)  # beyond the hospital helipad zone as seen from the east dock


@pytest.mark.parametrize("profile", ["area-drone", "dfr-class"])
async def test_response_flies_around_no_fly_zone_and_returns(profile: str) -> None:
    """Corners are flown through (the next go-to sent early, as far as the zones allow), at the area
    drone's speed and at the DFR-class profile's 20 m/s: the flown track still enters no zone."""
    area = load_area(AREA)
    drone_cfg = next(d for d in area.drones if d.dock == "cv-east")
    dock = area.dock(drone_cfg.dock)
    speed, params = drone_cfg.response_speed_m_s, dict(drone_cfg.params)
    top, climb = drone_cfg.max_speed_m_s or speed, 2.5  # the default policy's climb rate
    if profile == "dfr-class":
        frame = load_airframe(AIRFRAMES / "dfr-class.yaml")
        speed, params = frame.cruise_m_s, {**frame.params, "NAV_DLL_ACT": 2}
        top, climb = frame.max_speed_m_s, frame.climb_m_s
    accel = params.get("MPC_ACC_HOR", 3.0)
    # planned as the dispatcher plans it: at the speed the airframe can hold, with its climb rate
    sortie = plan_sortie(
        area, (dock.lat, dock.lon), SCENE, cruise_m_s=min(speed, top), accel_m_s2=accel, climb_m_s=climb
    )
    assert len(sortie.route.waypoints) > 2, "the sample scene should need a detour"
    assert sortie.route.avoided_zone_ids
    leads = sortie.corner_leads
    assert any(lead > 0 for lead in leads), "the detour's corners should be flown through"

    async with SimProcess(area=AREA, drones=3, speed=SPEED) as sim:
        fleet = Fleet(default_links([d.id for d in area.drones[:3]], base_port=sim.base_port))
        await fleet.start()
        try:
            await fleet.wait_connected()
            drone = fleet.drone(drone_cfg.id)
            phases: list[str] = []

            async def on_phase(phase: str, info: dict[str, Any]) -> None:
                phases.append(phase)

            plan = FlightPlan(
                waypoints=sortie.route.waypoints,
                altitude_m=sortie.altitude_m,
                target=sortie.orbit_centre,
                response_speed_m_s=speed,
                orbit_radius_m=sortie.orbit_radius_m,
                loiter_s=10.0,
                params=params,
                fence=sortie.fence,
                time_scale=SPEED,
                corner_leads=leads,
            )
            result = await fly(drone, plan, on_phase)
        finally:
            await fleet.stop()

    assert phases == ["en_route", "on_scene", "returning", "landed"]
    assert result.failsafe is None
    track = [(p["lon"], p["lat"]) for p in result.track if (p["rel_alt_m"] or 0) > sortie.altitude_m - 5]
    assert len(track) > 20
    assert path_is_clear(track, planner_zones(area), sortie.altitude_m)
    closest = min(distance_m(p["lat"], p["lon"], *sortie.orbit_centre) for p in result.track)
    assert closest < 10.0
    last = result.track[-1]
    assert distance_m(last["lat"], last["lon"], dock.lat, dock.lon) < 3.0
    assert result.on_scene_at is not None and result.launched_at is not None
    achieved = (result.on_scene_at - result.launched_at) * SPEED
    print(
        f"{profile}: route {sortie.route.length_m:.0f} m, leads {leads}; time to scene (simulated s):",
        end=" ",
    )
    print(f"expected {sortie.eta_s:.0f}, achieved {achieved:.0f}")
    # the ETA the dispatcher announces is within 10 % of what the simulator flies, for each profile
    assert abs(sortie.eta_s - achieved) <= 0.10 * achieved
