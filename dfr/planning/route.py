"""Shortest safe 2-D route from the dock to an incident, around active no-fly zones.

Pure functions: no I/O, no global state besides the cached pyproj transformers. The planner is on
the launch path of every mission, so it must answer in milliseconds and must never produce a route
that clips a no-fly zone; when in doubt it refuses with a specific `PlanError`.

Method (all geometry in a local metric plane, see `projection.py`):

1. Zones whose altitude band covers the flight altitude are *active*. Each is buffered by the safety
   buffer, inflated so that the chords of the polygonal arcs never cut the true buffer.
2. Free space = operating area shrunk by a margin, minus the union of buffered active zones.
3. A target inside a buffered zone is replaced by the nearest reachable free point (stand-off).
4. The shortest path inside a polygonal domain bends only at reflex vertices of that domain, and
   each of its segments is tangent to the boundary at the vertices it touches. The planner searches
   that reduced visibility graph with A* (Dijkstra plus an admissible straight-line heuristic) and
   tests a segment against the free space only when the search pops it, so only a handful of
   polygon-covers tests run per plan. The result is the exact shortest path in the buffered free
   space, not a heuristic detour.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import nearest_points
from shapely.prepared import PreparedGeometry, prep
from shapely.validation import explain_validity

from dfr.planning.errors import (
    AltitudeOutOfLimits,
    InvalidInput,
    StartInsideZone,
    StartOutsideArea,
    TargetInNoFlyZone,
    TargetOutsideArea,
    TargetUnreachable,
)
from dfr.planning.projection import LocalProjection

__all__ = [
    "MAX_ALTITUDE_M",
    "NoFlyZone",
    "PlanRequest",
    "RoutePlan",
    "Standoff",
    "path_is_clear",
    "plan_route",
]

LonLat = tuple[float, float]
XY = tuple[float, float]

MAX_ALTITUDE_M = 121.92  # 400 ft AGL, the FAA Part 107 ceiling most DFR waivers keep.

# Arcs are approximated with this many segments per quarter circle: coarse on purpose, the number of
# graph nodes (and so planning time) grows with it, and the inflation below keeps it safe.
QUAD_SEGS = 4
# A polygonal arc with vertices on radius R has chords at R*cos(pi/(4*QUAD_SEGS)); dividing the
# buffer by that factor puts the chords, not just the vertices, at or beyond the true buffer.
_CHORD_FACTOR = 1.0 / math.cos(math.pi / (4 * QUAD_SEGS))
# Extra metres on every buffered zone: absorbs projection round-trips and float noise so that a route
# that grazes a buffered zone is still strictly outside the true buffer.
_EXTRA_BUFFER_M = 0.5
# How far a stand-off / escape point is pushed inside free space, so that it is not on the boundary
# (where the next covers() test could go either way in floating point).
_NUDGE_M = 1.0
# Free-space vertices closer than this are merged (see `_free_parts`).
_SNAP_M = 1e-4
# Vertices turning by less than this (sine of the turn angle) count as straight, not convex.
_STRAIGHT_SIN = 1e-6
# Relative tolerance for the tangency filter: generous on purpose, it only prunes candidate edges;
# every kept edge is still checked exactly against the free space.
_TANGENT_TOL = 1e-9


# --------------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class NoFlyZone:
    """A no-fly zone in lon/lat (WGS84), applying between `floor_m` and `ceiling_m` AGL inclusive.

    Bands are inclusive so that flying exactly at a zone's floor or ceiling counts as inside it:
    the conservative reading of an ambiguous boundary.
    """

    id: str
    name: str
    geometry: BaseGeometry
    floor_m: float = 0.0
    ceiling_m: float = math.inf

    def applies_at(self, altitude_m: float) -> bool:
        return self.floor_m <= altitude_m <= self.ceiling_m


@dataclass(frozen=True)
class PlanRequest:
    """Everything the planner needs; geometries and points are lon/lat (WGS84), heights metres AGL."""

    area: BaseGeometry
    start: LonLat
    target: LonLat
    altitude_m: float
    zones: tuple[NoFlyZone, ...] = ()
    buffer_m: float = 30.0
    max_altitude_m: float = MAX_ALTITUDE_M
    # When the target is inside a zone (or its buffer), fly to the nearest safe point instead of failing.
    allow_standoff: bool = True
    # Keep this far inside the operating area boundary (geofence breaches trigger failsafes).
    area_margin_m: float = 10.0

    def __post_init__(self) -> None:
        # Accept any iterable of zones but store a tuple so the request stays immutable.
        object.__setattr__(self, "zones", tuple(self.zones))


@dataclass(frozen=True)
class Standoff:
    """The target was inside an active zone's buffer; the route ends at `point` instead."""

    original_target: LonLat
    point: LonLat
    zone_id: str
    zone_name: str
    distance_m: float


@dataclass(frozen=True)
class RoutePlan:
    """A planned route: fly `waypoints` (lon/lat) in order at `altitude_m` AGL.

    `avoided_zone_ids` lists the active zones whose buffered geometry the straight line from start
    to the requested target would have entered, i.e. the zones that shaped this route.
    """

    waypoints: list[LonLat]
    length_m: float
    altitude_m: float
    standoff: Standoff | None = None
    avoided_zone_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Validation


def _lonlat(name: str, value: Any) -> LonLat:
    try:
        lon, lat = (float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be a (lon, lat) pair of numbers, got {value!r}") from e
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInput(f"{name} has a non-finite coordinate: ({lon}, {lat})")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"{name} is out of range (lon in [-180, 180], lat in [-90, 90]): ({lon}, {lat})")
    return lon, lat


def _check_coords(name: str, geom: Any) -> None:
    if not isinstance(geom, BaseGeometry):
        raise InvalidInput(f"{name} must be a shapely geometry, got {type(geom).__name__}")
    if geom.is_empty:
        raise InvalidInput(f"{name} is empty")
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise InvalidInput(f"{name} has non-finite coordinates")
    if (np.abs(xy[:, 0]) > 180.0).any() or (np.abs(xy[:, 1]) > 90.0).any():
        raise InvalidInput(f"{name} has coordinates outside lon/lat range (are they projected metres?)")


def _finite(name: str, value: float, *, minimum: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be a number, got {value!r}") from e
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be finite, got {v}")
    if minimum is not None and v < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {v}")
    return v


def _check_area(area: Any) -> None:
    _check_coords("operating area", area)
    if not isinstance(area, Polygon | MultiPolygon) or area.area <= 0:
        raise InvalidInput(f"operating area must be a non-degenerate (Multi)Polygon, got {area.geom_type}")
    if not area.is_valid:
        # The area is configured once by an administrator: better to fail loudly than guess.
        raise InvalidInput(f"operating area polygon is invalid: {explain_validity(area)}")


def _check_zone(zone: Any) -> None:
    if not isinstance(zone, NoFlyZone):
        raise InvalidInput(f"zones must be NoFlyZone instances, got {type(zone).__name__}")
    _check_coords(f"zone {zone.id!r} geometry", zone.geometry)
    floor = float(zone.floor_m)
    ceiling = float(zone.ceiling_m)
    if math.isnan(floor) or math.isnan(ceiling) or floor > ceiling or floor == math.inf:
        raise InvalidInput(f"zone {zone.id!r} has an invalid altitude band {floor}..{ceiling} m")


def _zone_xy(zone: NoFlyZone, proj: LocalProjection) -> Any:
    """Zone geometry in metres; invalid polygons (bow-ties from external feeds) are repaired.

    A zone is kept rather than rejected: dropping a zone, or refusing every launch because one
    feed polygon self-intersects, are both worse than flying around its repaired shape.
    """
    g = zone.geometry if zone.geometry.is_valid else shapely.make_valid(zone.geometry)
    return proj.geom_to_xy(g)


def _inflated_buffer(buffer_m: float) -> float:
    return buffer_m * _CHORD_FACTOR + _EXTRA_BUFFER_M


# --------------------------------------------------------------------------------------------------
# Geometry helpers (metric plane)


def _enters(zone_xy: Any, geom: Any) -> bool:
    """True when `geom` reaches the interior of `zone_xy` (merely touching its boundary is allowed)."""
    return bool(zone_xy.relate_pattern(geom, "T********"))


def _segment(a: XY, b: XY) -> Any:
    return LineString([a, b]) if a != b else Point(a)


def _point_inside(part: Any, prepared: PreparedGeometry, p: XY) -> XY | None:
    """The point of `part` nearest to `p`, pushed ~1 m inside so it is robustly in free space.

    Moving from the nearest boundary point away from `p` enters the polygon: `p - q` is an outward
    normal of the polygon at `q`.
    """
    q, _ = nearest_points(part, Point(p))
    qx, qy = float(q.x), float(q.y)
    dx, dy = qx - p[0], qy - p[1]
    norm = math.hypot(dx, dy)
    if norm > 0:
        for step in (_NUDGE_M, _NUDGE_M / 4, 0.0):
            cand = (qx + dx / norm * step, qy + dy / norm * step)
            if prepared.covers(Point(cand)):
                return cand
    elif prepared.covers(Point(p)):
        return p
    shrunk = part.buffer(-_NUDGE_M / 4, quad_segs=2)
    if not shrunk.is_empty:
        q, _ = nearest_points(shrunk, Point(p))
        return float(q.x), float(q.y)
    return None


def _free_parts(geom: Any) -> list[Any]:
    """Connected components of the free space, with overlay noise removed.

    Overlaying overlapping buffers leaves clusters of vertices ~1e-13 m apart; directions along such
    micro-edges are noise and would mislead the tangency filter, so vertices closer than `_SNAP_M`
    are merged. That moves the boundary by at most `_SNAP_M`, far inside `_EXTRA_BUFFER_M`.
    """
    cleaned = shapely.remove_repeated_points(geom, _SNAP_M)
    if not cleaned.is_valid:
        cleaned = geom  # the search falls back to the unpruned graph if this one misleads it
    return [g for g in shapely.get_parts(cleaned) if isinstance(g, Polygon) and g.area > 1e-6]


def _reflex_vertices(poly: Any, *, reflex_only: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices of `poly` where the free space's interior angle exceeds 180°, with their neighbours.

    Shortest paths bend only there; convex corners of the free space (e.g. the area's corners) can
    never be on a shortest path, so dropping them halves the graph. Rings are oriented so that the
    free space is on the left: then a right turn is a reflex vertex. `reflex_only=False` returns
    every vertex (for the unpruned fallback search).
    """
    pts: list[np.ndarray] = []
    prevs: list[np.ndarray] = []
    nexts: list[np.ndarray] = []
    poly = orient(poly, 1.0)
    for ring in (poly.exterior, *poly.interiors):
        c = np.asarray(ring.coords, dtype=float)[:-1, :2]
        if len(c) < 3:
            continue
        step = np.roll(c, -1, axis=0) - c
        c = c[np.hypot(step[:, 0], step[:, 1]) > 0]  # drop repeated points
        if len(c) < 3:
            continue
        a = np.roll(c, 1, axis=0)
        b = np.roll(c, -1, axis=0)
        e1 = c - a
        e2 = b - c
        cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        scale = np.hypot(e1[:, 0], e1[:, 1]) * np.hypot(e2[:, 0], e2[:, 1])
        # Nearly straight vertices are kept too: overlay noise can leave a vertex a hair off the line
        # of its neighbours, so the segment that skips it would clip the boundary by 1e-13 m.
        reflex = cross < _STRAIGHT_SIN * scale if reflex_only else np.ones(len(c), dtype=bool)
        pts.append(c[reflex])
        prevs.append(a[reflex])
        nexts.append(b[reflex])
    if not pts:
        empty = np.empty((0, 2))
        return empty, empty, empty
    return np.concatenate(pts), np.concatenate(prevs), np.concatenate(nexts)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.hypot(v[:, 0], v[:, 1])
    n[n == 0] = 1.0
    return v / n[:, None]


def _shortest_path(part: Any, prepared: PreparedGeometry, start: XY, target: XY) -> list[XY] | None:
    """Exact shortest path from `start` to `target` inside polygon `part` (both must be in it).

    The pruned graph is exact for a clean polygon; should floating-point noise in the boundary ever
    mislead the pruning, the unpruned graph (every vertex, every edge, slower) gives the answer.
    """
    if start == target or prepared.covers(_segment(start, target)):
        return [start, target]
    path = _search(part, prepared, start, target, prune=True)
    return path if path is not None else _search(part, prepared, start, target, prune=False)


def _search(part: Any, prepared: PreparedGeometry, start: XY, target: XY, *, prune: bool) -> list[XY] | None:
    """A* over the visibility graph of `part` with lazy edge checks.

    Nodes: start (0), target (1), reflex vertices (2..). With `prune`, an edge is a candidate only if
    it is tangent to the boundary at each vertex end (both neighbours on one side): a shortest path
    can only wrap around a corner, never turn into it. Candidates are pushed with their tentative
    cost and checked against the polygon only when popped, which is what keeps this fast.
    """
    verts, prev, nxt = _reflex_vertices(part, reflex_only=prune)
    n = 2 + len(verts)
    pts = np.vstack([np.array([start, target], dtype=float), verts])
    is_vertex = np.zeros(n, dtype=bool)
    is_vertex[2:] = prune
    ua = np.zeros((n, 2))
    ub = np.zeros((n, 2))
    ua[2:] = _unit(prev - verts)
    ub[2:] = _unit(nxt - verts)
    h = np.hypot(pts[:, 0] - target[0], pts[:, 1] - target[1])

    closed = np.zeros(n, dtype=bool)
    parent = np.full(n, -1, dtype=np.int64)
    visible: dict[tuple[int, int], bool] = {(0, 1): False}
    heap: list[tuple[float, float, int, int]] = [(float(h[0]), 0.0, 0, -1)]
    while heap:
        _, g, j, par = heapq.heappop(heap)
        if closed[j]:
            continue
        if par >= 0:
            key = (par, j) if par < j else (j, par)
            ok = visible.get(key)
            if ok is None:
                ok = bool(prepared.covers(LineString([pts[par], pts[j]])))
                visible[key] = ok
            if not ok:
                continue
        closed[j] = True
        parent[j] = par
        if j == 1:
            break
        d = pts - pts[j]
        dist = np.hypot(d[:, 0], d[:, 1])
        tol = _TANGENT_TOL * dist * dist
        # Tangent at the far end k: both neighbours of k on the same side of the line j->k.
        sa = d[:, 0] * ua[:, 1] - d[:, 1] * ua[:, 0]
        sb = d[:, 0] * ub[:, 1] - d[:, 1] * ub[:, 0]
        cand = ~closed & (dist > 0) & (~is_vertex | (sa * sb >= -tol))
        if is_vertex[j]:
            # ... and tangent at the near end j.
            ta = d[:, 0] * ua[j, 1] - d[:, 1] * ua[j, 0]
            tb = d[:, 0] * ub[j, 1] - d[:, 1] * ub[j, 0]
            cand &= ta * tb >= -tol
        for k in np.flatnonzero(cand).tolist():
            ng = g + float(dist[k])
            heapq.heappush(heap, (ng + float(h[k]), ng, k, j))
    if not closed[1]:
        return None
    path: list[int] = []
    node = 1
    while node >= 0:
        path.append(node)
        node = int(parent[node])
    path.reverse()
    return [(float(pts[i, 0]), float(pts[i, 1])) for i in path]


# --------------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class _ActiveZone:
    """An active zone in the metric plane; `buffered` is filled only when the fast path fails."""

    zone: NoFlyZone
    true: Any
    buffered: Any = None


@dataclass(frozen=True)
class _Leg:
    """How a route endpoint joins the free space: `node` is in it, `extra` is the off-graph leg."""

    node: XY
    extra: list[XY] = field(default_factory=list)
    standoff_zone: NoFlyZone | None = None


def plan_route(request: PlanRequest) -> RoutePlan:
    """Plan the shortest route that keeps `buffer_m` from every active zone and stays in the area.

    Raises a `PlanError` subclass (never anything else for bad input) when no such route exists or
    the request is malformed; see `dfr.planning.errors`.
    """
    start = _lonlat("start", request.start)
    target = _lonlat("target", request.target)
    altitude = _finite("altitude_m", request.altitude_m)
    max_alt = _finite("max_altitude_m", request.max_altitude_m, minimum=0.0)
    buffer_m = _finite("buffer_m", request.buffer_m, minimum=0.0)
    margin = _finite("area_margin_m", request.area_margin_m, minimum=0.0)
    _check_area(request.area)
    for nfz in request.zones:
        _check_zone(nfz)
    if not 0.0 < altitude <= max_alt + 1e-9:
        raise AltitudeOutOfLimits(f"flight altitude {altitude:g} m AGL is outside (0, {max_alt:g}] m")

    centre = request.area.centroid
    proj = LocalProjection.around(float(centre.x), float(centre.y))
    area_xy = proj.geom_to_xy(request.area)
    start_xy = proj.to_xy(*start)
    target_xy = proj.to_xy(*target)
    if not area_xy.covers(Point(start_xy)):
        raise StartOutsideArea(f"start {start} is outside the operating area")
    if not area_xy.covers(Point(target_xy)):
        raise TargetOutsideArea(f"target {target} is outside the operating area")

    radius = _inflated_buffer(buffer_m)
    inner_margin = margin * _CHORD_FACTOR  # chords of the shrunk area's rounded corners keep `margin`
    zones = _active_zones(request.zones, altitude, proj, area_xy, radius, start_xy)
    direct = _segment(start_xy, target_xy)

    # Fast path (most launches): the straight line already keeps the margin and every buffer. The
    # test is stricter than the polygonal buffers below, so it never accepts what the graph would not.
    if (
        area_xy.covers(direct)
        and (margin == 0 or not shapely.dwithin(area_xy.boundary, direct, inner_margin))
        and not any(shapely.dwithin(z.true, direct, radius) for z in zones)
    ):
        return _result(proj, [start_xy, target_xy], start, target, altitude, None, [])

    zones = [_ActiveZone(z.zone, z.true, z.true.buffer(radius, quad_segs=QUAD_SEGS)) for z in zones]
    inner = area_xy.buffer(-inner_margin, quad_segs=QUAD_SEGS) if margin > 0 else area_xy
    if inner.is_empty:
        raise InvalidInput(f"operating area is too small for a {margin:g} m boundary margin")
    blocked = shapely.union_all([z.buffered for z in zones]) if zones else None
    parts = _free_parts(inner.difference(blocked) if blocked is not None else inner)
    if not parts:
        raise TargetUnreachable("no free airspace left in the operating area at this altitude")
    prepared = [prep(p) for p in parts]

    start_part, head = _join_start(start_xy, parts, prepared, zones, area_xy, buffer_m)
    part, prepared_part = parts[start_part], prepared[start_part]
    tail = _join_target(
        target_xy, part, prepared_part, prepared, zones, blocked, area_xy, request, buffer_m, altitude
    )
    core = _shortest_path(part, prepared_part, head.node, tail.node)
    if core is None:
        raise TargetUnreachable("no path to the target keeps the safety buffer from every zone")
    path_xy = _dedupe([*head.extra, *core, *tail.extra])

    # Defence in depth: whatever the search did, the route must not enter an active zone.
    route_geom = LineString(path_xy) if len(path_xy) > 1 else Point(path_xy[0])
    for z in zones:
        if _enters(z.true, route_geom):
            raise TargetUnreachable(f"internal check: route would enter zone {z.zone.name!r} ({z.zone.id})")
    avoided = [z.zone.id for z in zones if z.buffered.intersects(direct)]
    return _result(proj, path_xy, start, target, altitude, tail.standoff_zone, avoided)


def _active_zones(
    zones: Iterable[NoFlyZone],
    altitude: float,
    proj: LocalProjection,
    area_xy: Any,
    radius: float,
    start_xy: XY,
) -> list[_ActiveZone]:
    """Zones whose band covers `altitude` and that come within `radius` of the area, in metres."""
    minx, miny, maxx, maxy = area_xy.bounds
    out = []
    for z in zones:
        if not z.applies_at(altitude):
            continue
        true_xy = _zone_xy(z, proj)
        zx0, zy0, zx1, zy1 = true_xy.bounds
        if zx0 > maxx + radius or zx1 < minx - radius or zy0 > maxy + radius or zy1 < miny - radius:
            continue  # cannot influence anything inside the area
        if true_xy.contains(Point(start_xy)):
            raise StartInsideZone(f"start is inside active no-fly zone {z.name!r} ({z.id})", z.id)
        out.append(_ActiveZone(z, true_xy))
    return out


def _join_start(
    start_xy: XY,
    parts: list[Any],
    prepared: list[PreparedGeometry],
    zones: list[_ActiveZone],
    area_xy: Any,
    buffer_m: float,
) -> tuple[int, _Leg]:
    """Free-space component the route starts in, and how the start reaches it.

    A dock may legitimately sit inside a zone's safety buffer or the area margin; the drone then
    leaves by the shortest straight leg into free space, which must not enter a zone itself.
    """
    here = Point(start_xy)
    for i, pp in enumerate(prepared):
        if pp.covers(here):
            return i, _Leg(start_xy)
    i = min(range(len(parts)), key=lambda k: parts[k].distance(here))
    escape = _point_inside(parts[i], prepared[i], start_xy)
    if escape is not None:
        leg = _segment(start_xy, escape)
        if area_xy.covers(leg) and not any(_enters(z.true, leg) for z in zones):
            return i, _Leg(escape, extra=[start_xy])
    near = next((z.zone for z in zones if z.buffered.covers(here)), None)
    if near is not None:
        raise StartInsideZone(
            f"start is inside the {buffer_m:g} m safety buffer of zone {near.name!r} ({near.id})"
            " and cannot leave it without crossing a zone",
            near.id,
        )
    raise TargetUnreachable("start cannot reach free airspace inside the area margin")


def _join_target(
    target_xy: XY,
    part: Any,
    prepared_part: PreparedGeometry,
    prepared: list[PreparedGeometry],
    zones: list[_ActiveZone],
    blocked: Any,
    area_xy: Any,
    request: PlanRequest,
    buffer_m: float,
    altitude: float,
) -> _Leg:
    """Where the route ends: the target, a stand-off point, or a short leg out of the area margin.

    The stand-off point is searched only in the start's component: a closer safe point that cannot
    be reached from the dock is of no use to the responder.
    """
    here = Point(target_xy)
    hit = [z for z in zones if z.buffered.covers(here)]
    if hit:
        zone = min(hit, key=lambda z: (not z.true.covers(here), z.true.distance(here))).zone
        where = "inside" if any(z.true.covers(here) for z in hit) else f"within {buffer_m:g} m of"
        if not request.allow_standoff:
            raise TargetInNoFlyZone(
                f"target is {where} no-fly zone {zone.name!r} ({zone.id}) active at {altitude:g} m",
                zone.id,
                zone.name,
            )
        point = _point_inside(part, prepared_part, target_xy)
        if point is None:
            raise TargetUnreachable(f"no reachable stand-off point outside zone {zone.name!r} ({zone.id})")
        return _Leg(point, standoff_zone=zone)
    if prepared_part.covers(here):
        return _Leg(target_xy)
    if any(pp.covers(here) for pp in prepared):
        raise TargetUnreachable("target is cut off from the start by no-fly zones")
    # In the area margin: fly to the nearest free point, then straight to the target.
    point = _point_inside(part, prepared_part, target_xy)
    if point is not None:
        leg = _segment(point, target_xy)
        if area_xy.covers(leg) and (blocked is None or not blocked.intersects(leg)):
            return _Leg(point, extra=[target_xy])
    raise TargetUnreachable("target cannot be reached without breaching a zone buffer or the area")


def _result(
    proj: LocalProjection,
    path_xy: list[XY],
    start: LonLat,
    target: LonLat,
    altitude: float,
    standoff_zone: NoFlyZone | None,
    avoided: list[str],
) -> RoutePlan:
    coords = proj.to_lonlat_array(np.asarray(path_xy))
    waypoints: list[LonLat] = [(float(lon), float(lat)) for lon, lat in coords]
    waypoints[0] = start  # the exact inputs, without projection round-trip noise
    standoff = None
    if standoff_zone is None:
        waypoints[-1] = target
    else:
        standoff = Standoff(
            original_target=target,
            point=waypoints[-1],
            zone_id=standoff_zone.id,
            zone_name=standoff_zone.name,
            distance_m=math.dist(path_xy[-1], proj.to_xy(*target)),
        )
    return RoutePlan(
        waypoints=waypoints,
        length_m=_length(path_xy),
        altitude_m=altitude,
        standoff=standoff,
        avoided_zone_ids=avoided,
    )


def path_is_clear(
    waypoints: Sequence[LonLat],
    zones: Iterable[NoFlyZone],
    altitude_m: float,
    *,
    clearance_m: float = 0.0,
) -> bool:
    """True when no straight segment between `waypoints` enters a zone active at `altitude_m`.

    Used to verify flown tracks and pilot go-to commands, which do not come from the planner, so it
    checks the *unbuffered* zones (optionally grown by `clearance_m`). Touching a zone's boundary is
    not entering it. Raises `InvalidInput` for malformed waypoints or zones.
    """
    pts = [_lonlat(f"waypoint {i}", p) for i, p in enumerate(waypoints)]
    if not pts:
        raise InvalidInput("path_is_clear needs at least one waypoint")
    altitude = _finite("altitude_m", altitude_m)
    clearance = _finite("clearance_m", clearance_m, minimum=0.0)
    active = []
    for z in zones:
        _check_zone(z)
        if z.applies_at(altitude):
            active.append(z)
    if not active:
        return True
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    proj = LocalProjection.around((min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2)
    xy = [tuple(p) for p in proj.to_xy_array(np.asarray(pts)).tolist()]
    track = LineString(xy) if len(set(xy)) > 1 else Point(xy[0])
    for z in active:
        g = _zone_xy(z, proj)
        if clearance > 0:
            g = g.buffer(_inflated_buffer(clearance) - _EXTRA_BUFFER_M, quad_segs=QUAD_SEGS)
        if _enters(g, track):
            return False
    return True


def _dedupe(path: list[XY]) -> list[XY]:
    out = [path[0]]
    for p in path[1:]:
        if math.dist(p, out[-1]) > 1e-6:
            out.append(p)
    if len(out) == 1:
        out.append(path[-1])  # keep a two-point route even when start == target
    return out


def _length(path: list[XY]) -> float:
    return float(sum(math.dist(a, b) for a, b in itertools.pairwise(path)))
