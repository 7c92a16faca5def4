"""Routes flown through: fewer, straighter legs and corners turned at speed instead of stops.

The planner's shortest path hugs each zone's buffered outline, so around a round zone it has dozens of
vertices a few metres apart with turns of a few degrees; flown as go-tos, each is a stop. `shortcut`
drops every vertex whose straight replacement still keeps `clearance_m` from the zones (and inside the
area), so the drone flies few long legs.

PX4 brings the vehicle to a halt at every go-to (DO_REPOSITION) target. Sending the next go-to while
the drone is still `lead` metres before a corner lets it turn at speed: from there it heads straight for
the next waypoint, and its path stays between that chord and the planned corner, bulging outwards as the
velocity turns, never further inside than the chord. So a corner may be cut by `lead` only if the
triangle (turn point, corner, next waypoint), grown by a margin for the trajectory, enters no zone
active at the sortie's altitude. Pure: the dispatcher computes the leads once per sortie.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from dfr.planning.projection import LocalProjection
from dfr.planning.route import NoFlyZone

LonLat = tuple[float, float]
LEAD_STEP_M = 5.0
PX4_ACC_HOR_DEFAULT = 3.0  # MPC_ACC_HOR, m/s², when the drone's parameters do not set it
TRAJECTORY_MARGIN_M = 10.0
"""Room around the cut corner for the way a multicopter's trajectory rounds it (velocity turning under
limited acceleration), on top of which the route keeps its planned buffer from each zone."""


def braking_distance_m(speed_m_s: float, accel_m_s2: float) -> float:
    """Metres a drone at `speed_m_s` needs to stop at `accel_m_s2`: the most a lead can usefully be."""
    if not (speed_m_s > 0 and accel_m_s2 > 0):
        return 0.0
    return speed_m_s * speed_m_s / (2.0 * accel_m_s2)


def corner_leads(
    waypoints: Sequence[LonLat],
    zones: Iterable[NoFlyZone],
    altitude_m: float,
    *,
    max_lead_m: float,
    margin_m: float = TRAJECTORY_MARGIN_M,
) -> tuple[float, ...]:
    """For each waypoint, the metres before it at which the next go-to may be sent (0: fly to it).

    The first waypoint (the start) and the last (the scene) get 0. A corner's lead is at most half of
    each adjoining leg, at most `max_lead_m`, and the largest multiple of `LEAD_STEP_M` whose cut
    triangle, grown by `margin_m`, stays out of every zone active at `altitude_m`.
    """
    pts = list(waypoints)
    leads = [0.0] * len(pts)
    if len(pts) < 3 or max_lead_m <= 0:
        return tuple(leads)
    active = [z for z in zones if z.applies_at(altitude_m)]
    proj = LocalProjection.around(*pts[0])
    xy = [tuple(p) for p in proj.to_xy_array(np.asarray(pts)).tolist()]
    shapes = [prep(proj.geom_to_xy(z.geometry)) for z in active]
    for i in range(1, len(pts) - 1):
        before, corner, after = xy[i - 1], xy[i], xy[i + 1]
        incoming = math.dist(before, corner)
        limit = min(max_lead_m, incoming / 2.0, math.dist(corner, after) / 2.0)
        lead = math.floor(limit / LEAD_STEP_M + 1e-6) * LEAD_STEP_M
        while lead > 0:
            k = lead / incoming
            turn = (corner[0] + (before[0] - corner[0]) * k, corner[1] + (before[1] - corner[1]) * k)
            cut = Polygon([turn, corner, after]).buffer(margin_m)
            if not any(s.intersects(cut) for s in shapes):
                break
            lead -= LEAD_STEP_M
        leads[i] = max(lead, 0.0)
    return tuple(leads)


def shortcut(
    waypoints: Sequence[LonLat],
    zones: Iterable[NoFlyZone],
    altitude_m: float,
    area: BaseGeometry,
    *,
    clearance_m: float,
) -> list[LonLat]:
    """`waypoints` without the vertices a straight leg can skip while staying `clearance_m` away from
    every zone active at `altitude_m` and `clearance_m` inside `area` (greedy: from each kept vertex to
    the farthest one in plain view). The planned legs themselves are always kept as they are."""
    pts = list(waypoints)
    if len(pts) < 3:
        return pts
    proj = LocalProjection.around(*pts[0])
    xy = [tuple(p) for p in proj.to_xy_array(np.asarray(pts)).tolist()]
    grown = [proj.geom_to_xy(z.geometry).buffer(clearance_m) for z in zones if z.applies_at(altitude_m)]
    blocked = [prep(g) for g in grown]
    inside = prep(proj.geom_to_xy(area).buffer(-clearance_m))

    def clear(a: int, b: int) -> bool:
        leg = LineString([xy[a], xy[b]])
        return inside.covers(leg) and not any(g.intersects(leg) for g in blocked)

    kept = [0]
    i = 0
    while i < len(pts) - 1:
        j = len(pts) - 1
        while j > i + 1 and not clear(i, j):
            j -= 1
        kept.append(j)
        i = j
    return [pts[k] for k in kept]


def cut_chords(waypoints: Sequence[LonLat], leads: Sequence[float]) -> list[list[LonLat]]:
    """The straight lines a drone flies when it turns `leads[i]` metres before waypoint i: from each turn
    point to the next waypoint. With the planned legs they bound every path it can take."""
    pts = list(waypoints)
    if len(pts) < 3:
        return []
    proj = LocalProjection.around(*pts[0])
    xy = [tuple(p) for p in proj.to_xy_array(np.asarray(pts)).tolist()]
    out: list[list[LonLat]] = []
    for i in range(1, len(pts) - 1):
        lead = leads[i] if i < len(leads) else 0.0
        if lead <= 0:
            continue
        before, corner = xy[i - 1], xy[i]
        k = lead / math.dist(before, corner)
        turn = proj.to_lonlat(
            corner[0] + (before[0] - corner[0]) * k, corner[1] + (before[1] - corner[1]) * k
        )
        out.append([(turn[0], turn[1]), pts[i + 1]])
    return out
