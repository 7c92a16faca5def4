"""The geofence a sortie gives its autopilot: small enough to fit, never less safe than the plan.

The fence is the autopilot's backstop if dfr (or the link) fails, so it must hold the whole flight and
nothing outside it. Autopilots store few fence items: PX4 keeps at most 64 (`DM_KEY_FENCE_POINTS_MAX`,
every polygon vertex and every circle counts one, all shapes together) and answers a larger upload with
`MAV_MISSION_NO_SPACE`. An area drawn for people (an operating area with many corners, zones drawn as
48-gon circles) does not fit as it is. So the fence is built for one sortie:

- only the zones that matter to it: active in the sortie's altitude band and within `near_m` of its
  route and orbit;
- a zone that is a circle drawn as a polygon goes up as one native circle item whose radius covers
  every vertex (the exclusion never shrinks);
- a polygon with too many corners is simplified conservatively: an exclusion only grows (simplified
  from an outward buffer, then checked to cover the original), the inclusion only shrinks (simplified
  from an inward buffer, then checked to lie inside the original);
- the result is checked against the planned path (inside the inclusion, clear of every exclusion); a
  fence that cannot fit raises `FenceDoesNotFit` so the sortie fails before arming, never with half a
  fence on the autopilot.

Pure: shapely geometry in a local metric projection, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from dfr.planning.errors import PlanError
from dfr.planning.projection import LocalProjection
from dfr.planning.route import NoFlyZone

PX4_FENCE_CAPACITY = 64
"""Fence items PX4 stores (`DM_KEY_FENCE_POINTS_MAX` in its dataman, v1.16)."""

CIRCLE_MIN_VERTICES = 12
"""A polygon with at least this many vertices, all at one distance from the centre, is a drawn circle."""

CIRCLE_ROUNDNESS = 0.01
"""Largest relative spread of the vertices' distances from the centre for a polygon to count as a circle."""

CIRCLE_MARGIN_M = 0.5
"""Added to a circle's radius so that rounding on the wire (degE7, float radius) never shrinks it."""

SIMPLIFY_STEPS_M = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
"""Tolerances tried in turn when a polygon must lose corners (metres)."""


class FenceDoesNotFit(PlanError):
    """The sortie's fence cannot be expressed in the autopilot's capacity without being less safe."""

    code = "fence_does_not_fit"


@dataclass(frozen=True)
class FencePolygon:
    """A fence polygon: ring of (lon, lat) vertices (not closed); inclusion or exclusion."""

    ring: tuple[tuple[float, float], ...]
    inclusion: bool


@dataclass(frozen=True)
class FenceCircle:
    """A fence circle around (lat, lon) with a radius in metres; inclusion or exclusion."""

    lat: float
    lon: float
    radius_m: float
    inclusion: bool


@dataclass(frozen=True)
class AutopilotFence:
    """What goes to the autopilot: polygons and circles, and which zones they stand for."""

    polygons: tuple[FencePolygon, ...] = ()
    circles: tuple[FenceCircle, ...] = ()
    zone_ids: tuple[str, ...] = ()

    @property
    def item_count(self) -> int:
        """Mission-protocol items of the upload: one per polygon vertex, one per circle."""
        return sum(len(p.ring) for p in self.polygons) + len(self.circles)

    def __bool__(self) -> bool:
        return bool(self.polygons or self.circles)


@dataclass(frozen=True)
class _Shape:
    """One fence shape while it is being fitted, in local metres."""

    geometry: Polygon  # the area the shape stands for (a circle as its polygon), metres
    inclusion: bool
    circle: tuple[float, float, float] | None = None  # (x, y, radius) when it goes up as a circle

    @property
    def items(self) -> int:
        return 1 if self.circle is not None else len(self.geometry.exterior.coords) - 1


def _as_circle(poly: Polygon) -> tuple[float, float, float] | None:
    """(x, y, radius covering every vertex) when `poly` is a drawn circle, else None."""
    ring = list(poly.exterior.coords)[:-1]
    if len(ring) < CIRCLE_MIN_VERTICES or poly.interiors:
        return None
    cx = sum(x for x, _ in ring) / len(ring)
    cy = sum(y for _, y in ring) / len(ring)
    distances = [math.hypot(x - cx, y - cy) for x, y in ring]
    outer = max(distances)
    if outer <= 0 or (outer - min(distances)) / outer > CIRCLE_ROUNDNESS:
        return None
    return cx, cy, outer + CIRCLE_MARGIN_M


def _simplified(shape: _Shape, tolerance: float) -> _Shape:
    """The shape with fewer corners, never less safe: an exclusion grows, the inclusion shrinks."""
    if shape.circle is not None:
        return shape
    original = shape.geometry
    grown = original.buffer(-tolerance if shape.inclusion else tolerance, join_style="mitre")
    candidate = grown.simplify(tolerance, preserve_topology=True)
    if isinstance(candidate, Polygon) and not candidate.is_empty:
        candidate = Polygon(candidate.exterior)  # the autopilot takes no holes
        safe = original.covers(candidate) if shape.inclusion else candidate.covers(original)
        if safe and len(candidate.exterior.coords) - 1 >= 3:
            if len(candidate.exterior.coords) < len(original.exterior.coords):
                return _Shape(candidate, shape.inclusion)
    return shape


def _fit(shapes: list[_Shape], capacity: int) -> list[_Shape] | None:
    """Simplify the largest polygons first, with growing tolerance, until the items fit."""
    for tolerance in SIMPLIFY_STEPS_M:
        if sum(s.items for s in shapes) <= capacity:
            return shapes
        shapes = [_simplified(s, tolerance) if s.items > 4 else s for s in shapes]
    return shapes if sum(s.items for s in shapes) <= capacity else None


def fit_fence(
    operating_area: Polygon,
    zones: Sequence[NoFlyZone],
    altitude_m: float,
    path: Sequence[tuple[float, float]],
    *,
    orbit: tuple[float, float, float] | None = None,
    near_m: float = 1500.0,
    capacity: int = PX4_FENCE_CAPACITY,
    also: Sequence[Sequence[tuple[float, float]]] = (),
) -> AutopilotFence:
    """The fence for a sortie flying `path` ((lon, lat) points, out and back) at `altitude_m`.

    `orbit`: (lon, lat, radius_m) of the orbit at the scene, which the fence must also allow.
    `also`: more lines the drone may fly (the chords of corners it turns early), allowed likewise.
    Raises `FenceDoesNotFit` when no fence within `capacity` keeps the flight in and the zones out.
    """
    if not path:
        raise FenceDoesNotFit("no planned path to fence")
    proj = LocalProjection.around(*path[0])
    flown: BaseGeometry = (
        LineString([proj.to_xy(*p) for p in path]) if len(path) > 1 else Point(proj.to_xy(*path[0]))
    )
    for line in also:
        if len(line) > 1:
            flown = shapely.union(flown, LineString([proj.to_xy(*p) for p in line]))
    if orbit is not None:
        ox, oy = proj.to_xy(orbit[0], orbit[1])
        flown = shapely.union(flown, Point(ox, oy).buffer(orbit[2]).exterior)
    shapes = [_Shape(proj.geom_to_xy(operating_area), inclusion=True)]
    zone_ids: list[str] = []
    for zone in zones:
        if not zone.applies_at(altitude_m):
            continue
        geometry = proj.geom_to_xy(zone.geometry)
        if geometry.distance(flown) > near_m:
            continue
        zone_ids.append(zone.id)
        shapes.append(_Shape(geometry, inclusion=False, circle=_as_circle(geometry)))
    fitted = _fit(shapes, capacity)
    if fitted is None:
        items = sum(s.items for s in shapes)
        raise FenceDoesNotFit(
            f"the fence needs {items} items even simplified; the autopilot stores {capacity} "
            f"(zones near the route: {', '.join(zone_ids) or 'none'})"
        )
    fence = _to_fence(fitted, proj, tuple(zone_ids))
    _check_path(fence, flown, proj)
    return fence


def _to_fence(shapes: list[_Shape], proj: LocalProjection, zone_ids: tuple[str, ...]) -> AutopilotFence:
    polygons: list[FencePolygon] = []
    circles: list[FenceCircle] = []
    for s in shapes:
        if s.circle is not None:
            x, y, r = s.circle
            lon, lat = proj.to_lonlat(x, y)
            circles.append(FenceCircle(lat=lat, lon=lon, radius_m=round(r + 0.05, 1), inclusion=s.inclusion))
        else:
            ring = tuple(proj.to_lonlat(x, y) for x, y in list(s.geometry.exterior.coords)[:-1])
            polygons.append(FencePolygon(ring=ring, inclusion=s.inclusion))
    return AutopilotFence(polygons=tuple(polygons), circles=tuple(circles), zone_ids=zone_ids)


def fence_geometry(fence: AutopilotFence, proj: LocalProjection) -> tuple[list[Polygon], list[Polygon]]:
    """(inclusions, exclusions) of a fence as polygons in `proj`'s metres (circles as 64-gons)."""
    inc: list[Polygon] = []
    exc: list[Polygon] = []
    for p in fence.polygons:
        (inc if p.inclusion else exc).append(Polygon([proj.to_xy(*v) for v in p.ring]))
    for c in fence.circles:
        x, y = proj.to_xy(c.lon, c.lat)
        (inc if c.inclusion else exc).append(Point(x, y).buffer(c.radius_m, quad_segs=16))
    return inc, exc


def _check_path(fence: AutopilotFence, flown: BaseGeometry, proj: LocalProjection) -> None:
    """The flight must be inside an inclusion and clear of every exclusion of the fitted fence."""
    inc, exc = fence_geometry(fence, proj)
    if inc and not shapely.union_all(inc).covers(flown):
        raise FenceDoesNotFit("the planned path leaves the fence's inclusion area")
    for poly in exc:
        if poly.intersects(flown):
            raise FenceDoesNotFit("the planned path crosses one of the fence's exclusions")
