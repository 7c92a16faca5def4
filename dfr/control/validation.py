"""Checks of a pilot's command against the operating area, before anything is sent to a drone.

Pure functions over `dfr.area.Area` (no I/O), so the API, the panel's server side and the unit tests
apply one rule. A pilot command does not come from the planner, so every point, circle, straight
path and climb it implies is checked against the *unbuffered* zones: entering a zone whose altitude
band overlaps the altitudes flown is refused, and the refusal names the zone. Touching a zone's edge
is not entering it (the same reading as `dfr.planning.path_is_clear`).

Each failure is a `CommandInvalid` with a stable ``code`` and the request ``field`` it is about, which
the API turns into a 422 with the project's error body.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from shapely.geometry import LineString, Point

from dfr.area import METRES_PER_FOOT, Area, NoFlyZone
from dfr.planning import LocalProjection, path_is_clear
from dfr.planning import NoFlyZone as PlannerZone

__all__ = [
    "MAX_RADIUS_M",
    "MIN_ALTITUDE_M",
    "MIN_RADIUS_M",
    "RTL_RETURN_ALT_M",
    "CommandInvalid",
    "Limits",
    "check_altitude",
    "check_climb",
    "check_orbit",
    "check_path",
    "check_point",
    "check_radius",
]

MIN_ALTITUDE_M = 10.0
"""Lowest altitude a pilot may command: clear of trees, lamp posts and people (land to go lower)."""
MIN_RADIUS_M = 20.0
"""Smallest orbit: what the dispatcher's own orbits use (`dfr.dispatch.sortie.MIN_ORBIT_RADIUS_M`)."""
MAX_RADIUS_M = 500.0
"""Largest orbit: wider circles watch nothing in particular and leave the camera's useful range."""
RTL_RETURN_ALT_M = 60.0
"""PX4's default RTL_RETURN_ALT: a return climbs to at least this before it flies home."""


class CommandInvalid(ValueError):
    """A command that must not be sent; ``code`` for programs, the message for people."""

    def __init__(self, code: str, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Limits:
    """Altitude (m above home) and orbit radius limits for pilot commands."""

    min_alt_m: float = MIN_ALTITUDE_M
    max_alt_m: float = 400 * METRES_PER_FOOT
    min_radius_m: float = MIN_RADIUS_M
    max_radius_m: float = MAX_RADIUS_M

    @classmethod
    def for_area(cls, area: Area) -> Limits:
        """The area's ceiling (``max_altitude_ft_agl``, 400 ft unless the file says otherwise)."""
        return cls(max_alt_m=area.max_altitude_ft_agl * METRES_PER_FOOT)


def check_altitude(alt_m: float, limits: Limits, field: str = "alt_m") -> float:
    if not math.isfinite(alt_m):
        raise CommandInvalid("invalid_altitude", "altitude must be a finite number of metres", field)
    if not limits.min_alt_m <= alt_m <= limits.max_alt_m:
        raise CommandInvalid(
            "altitude_out_of_limits",
            f"altitude {alt_m:g} m is outside {limits.min_alt_m:g}..{limits.max_alt_m:.2f} m above home "
            f"({limits.max_alt_m / METRES_PER_FOOT:.0f} ft ceiling of the area)",
            field,
        )
    return alt_m


def check_radius(radius_m: float, limits: Limits) -> float:
    if not math.isfinite(radius_m) or not limits.min_radius_m <= radius_m <= limits.max_radius_m:
        raise CommandInvalid(
            "radius_out_of_limits",
            f"orbit radius {radius_m:g} m is outside {limits.min_radius_m:g}..{limits.max_radius_m:g} m",
            "radius_m",
        )
    return radius_m


def _band(alts: Iterable[float]) -> tuple[float, float]:
    values = list(alts)
    return min(values) / METRES_PER_FOOT, max(values) / METRES_PER_FOOT


def _zones(area: Area, alts: Iterable[float]) -> tuple[NoFlyZone, ...]:
    """Zones whose altitude band overlaps any altitude between the lowest and highest of `alts` (m)."""
    return area.zones_in_band(*_band(alts))


def _describe(zone: NoFlyZone) -> str:
    return f"no-fly zone {zone.name!r} ({zone.id}, {zone.floor_ft_agl:g}-{zone.ceiling_ft_agl:g} ft)"


def check_point(area: Area, lat: float, lon: float, alts: Iterable[float], field: str = "lat") -> None:
    """The point must be in the operating area and outside every zone active between the altitudes."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise CommandInvalid("invalid_point", "lat and lon must be finite WGS 84 degrees", field)
    point = Point(lon, lat)
    if not area.operating_area.covers(point):
        raise CommandInvalid(
            "outside_area", f"({lat:.6f}, {lon:.6f}) is outside the operating area {area.name!r}", field
        )
    for zone in _zones(area, alts):
        if zone.geometry.intersects(point):
            raise CommandInvalid(
                "in_no_fly_zone", f"({lat:.6f}, {lon:.6f}) is inside {_describe(zone)}", field
            )


def _inside_now(zone: NoFlyZone, lat: float, lon: float, now_m: float | None) -> bool:
    """The drone is in the zone already (a failsafe, a zone just activated): leaving it is allowed."""
    return (
        now_m is not None
        and zone.applies_at(now_m / METRES_PER_FOOT)
        and zone.geometry.intersects(Point(lon, lat))
    )


def check_path(
    area: Area,
    start: tuple[float, float],
    end: tuple[float, float],
    alts: Iterable[float],
    now_m: float | None = None,
) -> None:
    """The straight flight from `start` to `end` (lat, lon) must stay in the area and out of the zones.

    The drone climbs or descends along the way, so every zone whose band overlaps the altitudes
    counts, except one the drone is inside right now (at `now_m`), so that it can fly out. Raises
    naming the first zone the path enters.
    """
    line = LineString([(start[1], start[0]), (end[1], end[0])])
    if start != end and not area.operating_area.covers(line):
        raise CommandInvalid("path_leaves_area", "the straight path there leaves the operating area", "lat")
    waypoints = [(start[1], start[0]), (end[1], end[0])]
    for zone in _zones(area, alts):
        if _inside_now(zone, start[0], start[1], now_m):
            continue
        # the zone is active over the whole band considered: check its footprint at any altitude
        planner = PlannerZone(zone.id, zone.name, zone.geometry)
        if not path_is_clear(waypoints, [planner], 0.0):
            raise CommandInvalid(
                "path_crosses_zone",
                f"the straight path from the drone to ({end[0]:.6f}, {end[1]:.6f}) crosses "
                f"{_describe(zone)}; send a go-to around it first",
                "lat",
            )


def check_climb(area: Area, lat: float, lon: float, from_alt_m: float, to_alt_m: float) -> None:
    """Climbing or descending over (lat, lon) must not enter a zone whose band starts or ends between
    (leaving a zone the drone is in is allowed)."""
    point = Point(lon, lat)
    for zone in _zones(area, (from_alt_m, to_alt_m)):
        if zone.geometry.intersects(point) and not _inside_now(zone, lat, lon, from_alt_m):
            raise CommandInvalid(
                "altitude_enters_zone",
                f"changing altitude from {from_alt_m:.0f} m to {to_alt_m:.0f} m here enters "
                f"{_describe(zone)}",
                "alt_m",
            )


def check_orbit(area: Area, lat: float, lon: float, radius_m: float, alt_m: float) -> None:
    """The whole circle must be in the operating area and clear of every zone active at `alt_m`."""
    proj = LocalProjection.around(lon, lat)
    circle = Point(proj.to_xy(lon, lat)).buffer(radius_m, quad_segs=16)
    if not proj.geom_to_xy(area.operating_area).covers(circle):
        raise CommandInvalid(
            "orbit_leaves_area",
            f"an orbit of {radius_m:g} m around this point leaves the operating area",
            "radius_m",
        )
    for zone in _zones(area, (alt_m,)):
        if proj.geom_to_xy(zone.geometry).intersects(circle):
            raise CommandInvalid(
                "orbit_enters_zone",
                f"an orbit of {radius_m:g} m around this point enters {_describe(zone)}",
                "radius_m",
            )
