"""Pure planning of a whole sortie from an area, a dock and a scene: route, orbit, ETA, fence.

No I/O: everything here is computed from the area file and the request so it can be tested fast.
The return leg is the outbound route reversed (PX4's RTL flies a straight line home, which may cross
a no-fly zone), and the orbit radius shrinks so that the circle keeps clear of every active zone.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from shapely.geometry import Point

from dfr.area import DEFAULT_CLEAR_HEIGHT_M, METRES_PER_FOOT, Area
from dfr.planning import LocalProjection, NoFlyZone, PlanRequest, RoutePlan, plan_route
from dfr.planning.corners import (
    PX4_ACC_HOR_DEFAULT,
    braking_distance_m,
    corner_leads,
    cut_chords,
    shortcut,
)
from dfr.planning.eta import flythrough_eta_s
from dfr.planning.fence import PX4_FENCE_CAPACITY, AutopilotFence, FenceDoesNotFit, fit_fence

MIN_ORBIT_RADIUS_M = 20.0


@dataclass(frozen=True)
class SortiePlan:
    route: RoutePlan
    orbit_centre: tuple[float, float]  # (lat, lon)
    orbit_radius_m: float  # 0: hold over the point (no room to orbit)
    altitude_m: float
    eta_s: float
    fence: AutopilotFence  # what the autopilot enforces as a backstop (fitted to its capacity)
    # per waypoint, metres before it at which the drone turns for the next one (see dfr.planning.corners)
    corner_leads: tuple[float, ...] = ()


def planner_zones(area: Area) -> tuple[NoFlyZone, ...]:
    return tuple(
        NoFlyZone(
            z.id,
            z.name,
            z.geometry,
            z.floor_ft_agl * METRES_PER_FOOT,
            z.ceiling_ft_agl * METRES_PER_FOOT,
        )
        for z in area.zones
    )


def climb_band_zones(zones: tuple[NoFlyZone, ...], low_m: float, high_m: float) -> tuple[NoFlyZone, ...]:
    """`zones` with every zone that applies somewhere between `low_m` and `high_m` (but not at `high_m`)
    made to apply at every height: a route planned at `high_m` then avoids it, though the drone passes
    through the lower heights on its way up (PX4 climbs along the straight line to each go-to target)."""
    out = []
    for z in zones:
        if not z.applies_at(high_m) and z.floor_m <= high_m and z.ceiling_m >= low_m:
            z = NoFlyZone(z.id, z.name, z.geometry, 0.0, math.inf)
        out.append(z)
    return tuple(out)


def _leg_lengths(route: RoutePlan) -> list[float]:
    """Metres of each leg between consecutive waypoints (a local projection around the start)."""
    proj = LocalProjection.around(*route.waypoints[0])
    xy = [proj.to_xy(lon, lat) for lon, lat in route.waypoints]
    return [math.dist(a, b) for a, b in itertools.pairwise(xy)]


def plan_sortie(
    area: Area,
    start: tuple[float, float],
    scene: tuple[float, float],
    *,
    altitude_m: float | None = None,
    cruise_m_s: float = 12.0,
    accel_m_s2: float = PX4_ACC_HOR_DEFAULT,
    climb_m_s: float = 2.5,
    orbit_radius_m: float = 60.0,
    buffer_m: float = 30.0,
    allow_standoff: bool = True,
    fence_capacity: int = PX4_FENCE_CAPACITY,
    clear_height_m: float = DEFAULT_CLEAR_HEIGHT_M,
    airborne_at_m: float | None = None,
) -> SortiePlan:
    """Plan from `start` to `scene` (both (lat, lon)); raises dfr.planning.PlanError subclasses
    (`FenceDoesNotFit` when the autopilot cannot hold a fence as safe as the plan).

    The ETA is from the arm command: straight up to the dock's `clear_height_m`, the rest of the climb
    en route, corners flown through where planned; `airborne_at_m`: a drone in the air at that height."""
    alt = altitude_m if altitude_m is not None else area.default_altitude_m
    # The drone climbs the last part en route (from the dock's clear height, or from where a re-tasked
    # drone flies), so a zone active anywhere in that band counts as active at the transit altitude.
    low = min(clear_height_m, alt) if airborne_at_m is None else min(airborne_at_m, alt)
    zones = climb_band_zones(planner_zones(area), low, alt)
    route = plan_route(
        PlanRequest(
            area=area.operating_area,
            start=(start[1], start[0]),
            target=(scene[1], scene[0]),
            altitude_m=alt,
            zones=zones,
            buffer_m=buffer_m,
            max_altitude_m=area.max_altitude_ft_agl * METRES_PER_FOOT,
            allow_standoff=allow_standoff,
        )
    )
    # Fly through: skip the vertices a straight leg can (keeping half the planning buffer from zones).
    straight = shortcut(route.waypoints, zones, alt, area.operating_area, clearance_m=buffer_m / 2)
    if len(straight) < len(route.waypoints):
        route = replace(route, waypoints=straight, length_m=_path_length(straight))
    end_lon, end_lat = route.waypoints[-1]
    proj = LocalProjection.around(end_lon, end_lat)
    centre = Point(proj.to_xy(end_lon, end_lat))
    clearance = min(
        [proj.geom_to_xy(z.geometry).distance(centre) - buffer_m for z in zones if z.applies_at(alt)]
        + [proj.geom_to_xy(area.operating_area).exterior.distance(centre) - buffer_m]
    )
    radius = min(orbit_radius_m, clearance)
    orbit_radius = radius if radius >= MIN_ORBIT_RADIUS_M else 0.0
    orbit = (end_lon, end_lat, orbit_radius) if orbit_radius > 0 else None
    leads = corner_leads(route.waypoints, zones, alt, max_lead_m=braking_distance_m(cruise_m_s, accel_m_s2))
    try:  # the fence must allow the cut corners too; if it cannot, the drone stops at its corners
        fence = fit_fence(
            area.operating_area,
            zones,
            alt,
            route.waypoints,
            orbit=orbit,
            capacity=fence_capacity,
            also=cut_chords(route.waypoints, leads),
        )
    except FenceDoesNotFit:
        leads = tuple(0.0 for _ in route.waypoints)
        fence = fit_fence(
            area.operating_area, zones, alt, route.waypoints, orbit=orbit, capacity=fence_capacity
        )
    return SortiePlan(
        route=route,
        orbit_centre=(end_lat, end_lon),
        orbit_radius_m=orbit_radius,
        altitude_m=alt,
        eta_s=flythrough_eta_s(
            _leg_lengths(route),
            [lead > 0 for lead in leads[1:-1]],
            cruise_m_s,
            climb_m_s,
            alt,
            clear_height_m,
            accel_m_s2,
            airborne_at_m=airborne_at_m,
        ),
        fence=fence,
        corner_leads=leads,
    )


def _path_length(waypoints: list[tuple[float, float]]) -> float:
    proj = LocalProjection.around(*waypoints[0])
    xy = [proj.to_xy(*p) for p in waypoints]
    return float(sum(math.dist(a, b) for a, b in itertools.pairwise(xy)))
