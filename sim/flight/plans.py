"""Validation and local geometry of uploaded missions and geofences (MAVLink mission protocol items).

The vehicle stores items exactly as received (the link layer reads them back), so this module only decides
whether PX4 would accept a plan (a MAV_MISSION_RESULT code) and turns the accepted plan into local
north/east geometry around the current home for the flight model.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from sim.geo import ne_from_latlon
from sim.types import MissionItem

# MAV_MISSION_RESULT
MISSION_ACCEPTED = 0
MISSION_UNSUPPORTED_FRAME = 2
MISSION_UNSUPPORTED = 3
MISSION_INVALID = 5
MISSION_INVALID_PARAM1 = 6
MISSION_INVALID_PARAM5_X = 10
MISSION_INVALID_PARAM6_Y = 11
MISSION_INVALID_PARAM7 = 12
MISSION_INVALID_SEQUENCE = 13

# MAV_FRAME
FRAME_GLOBAL = 0
FRAME_MISSION = 2
FRAME_GLOBAL_RELATIVE_ALT = 3
FRAME_GLOBAL_INT = 5
FRAME_GLOBAL_RELATIVE_ALT_INT = 6
GLOBAL_FRAMES = frozenset(
    {FRAME_GLOBAL, FRAME_GLOBAL_RELATIVE_ALT, FRAME_GLOBAL_INT, FRAME_GLOBAL_RELATIVE_ALT_INT}
)
RELATIVE_FRAMES = frozenset({FRAME_GLOBAL_RELATIVE_ALT, FRAME_GLOBAL_RELATIVE_ALT_INT})
ANY_FRAMES = GLOBAL_FRAMES | {FRAME_MISSION}

# MAV_CMD used in missions
NAV_WAYPOINT = 16
NAV_LOITER_UNLIM = 17
NAV_LOITER_TIME = 19
NAV_RETURN_TO_LAUNCH = 20
NAV_LAND = 21
NAV_TAKEOFF = 22
DO_CHANGE_SPEED = 178
MISSION_COMMANDS = frozenset(
    {
        NAV_WAYPOINT,
        NAV_LOITER_UNLIM,
        NAV_LOITER_TIME,
        NAV_RETURN_TO_LAUNCH,
        NAV_LAND,
        NAV_TAKEOFF,
        DO_CHANGE_SPEED,
    }
)
# NAV items that carry a position (x/y/z); the others are flown or applied without one.
POSITION_COMMANDS = frozenset({NAV_WAYPOINT, NAV_LOITER_UNLIM, NAV_LOITER_TIME, NAV_LAND, NAV_TAKEOFF})
# For these, x = y = 0 means "where the vehicle is" (how ground stations send takeoff/land items).
POSITION_OPTIONAL = frozenset({NAV_TAKEOFF, NAV_LAND})
NAV_COMMANDS = POSITION_COMMANDS | {NAV_RETURN_TO_LAUNCH}

# MAV_CMD used in geofences
FENCE_RETURN_POINT = 5000
FENCE_POLYGON_INCLUSION = 5001
FENCE_POLYGON_EXCLUSION = 5002
FENCE_CIRCLE_INCLUSION = 5003
FENCE_CIRCLE_EXCLUSION = 5004


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _latlon_code(item: MissionItem) -> int:
    """MISSION_ACCEPTED if x/y (degE7) are a valid latitude/longitude, else the PARAM5/PARAM6 code."""
    if not -900_000_000 <= item.x <= 900_000_000:
        return MISSION_INVALID_PARAM5_X
    if not -1_800_000_000 <= item.y <= 1_800_000_000:
        return MISSION_INVALID_PARAM6_Y
    return MISSION_ACCEPTED


def checksum(items: Sequence[MissionItem]) -> int:
    """uint32 plan id (MISSION_ACK.opaque_id / MISSION_CURRENT.mission_id); 0 is reserved for "no plan"."""
    if not items:
        return 0
    crc = 0
    for it in items:
        crc = zlib.crc32(
            struct.pack(
                "<HBHBBffffiif",
                it.seq & 0xFFFF,
                it.frame & 0xFF,
                it.command & 0xFFFF,
                it.current & 0xFF,
                it.autocontinue & 0xFF,
                it.param1,
                it.param2,
                it.param3,
                it.param4,
                it.x,
                it.y,
                it.z,
            ),
            crc,
        )
    return crc or 1


def validate_mission(items: Sequence[MissionItem]) -> int:
    """MAV_MISSION_RESULT PX4-style: unsupported commands and frames, bad coordinates, bad sequence."""
    for i, it in enumerate(items):
        if it.seq != i:
            return MISSION_INVALID_SEQUENCE
        if it.command not in MISSION_COMMANDS:
            return MISSION_UNSUPPORTED
        if it.command in POSITION_COMMANDS:
            if it.frame not in GLOBAL_FRAMES:
                return MISSION_UNSUPPORTED_FRAME
            code = _latlon_code(it)
            if code:
                return code
            if it.x == 0 and it.y == 0 and it.command not in POSITION_OPTIONAL:
                return MISSION_INVALID_PARAM5_X
            if it.command != NAV_LAND and not _finite(it.z):
                return MISSION_INVALID_PARAM7
        elif it.frame not in ANY_FRAMES:
            return MISSION_UNSUPPORTED_FRAME
        if it.command == NAV_LOITER_TIME and not (_finite(it.param1) and it.param1 >= 0):
            return MISSION_INVALID_PARAM1
        if it.command == NAV_WAYPOINT and _finite(it.param1) and it.param1 < 0:
            return MISSION_INVALID_PARAM1
    return MISSION_ACCEPTED


@dataclass(frozen=True)
class Polygon:
    """A fence polygon in local metres (north, east) around the home it was computed for."""

    inclusion: bool
    north: tuple[float, ...]
    east: tuple[float, ...]
    bbox: tuple[float, float, float, float]  # min north, max north, min east, max east

    def contains(self, n: float, e: float) -> bool:
        """Even-odd ray casting; points exactly on an edge may land on either side."""
        if n < self.bbox[0] or n > self.bbox[1] or e < self.bbox[2] or e > self.bbox[3]:
            return False
        inside = False
        ns, es = self.north, self.east
        j = len(ns) - 1
        for i in range(len(ns)):
            ni, ei, nj, ej = ns[i], es[i], ns[j], es[j]
            if (ei > e) != (ej > e) and n < (nj - ni) * (e - ei) / (ej - ei) + ni:
                inside = not inside
            j = i
        return inside


@dataclass(frozen=True)
class Circle:
    inclusion: bool
    north: float
    east: float
    radius: float

    def contains(self, n: float, e: float) -> bool:
        dn, de = n - self.north, e - self.east
        return dn * dn + de * de <= self.radius * self.radius


@dataclass(frozen=True)
class FenceShape:
    """One fence element in lat/lon, as uploaded (converted to local metres per home by `local`)."""

    kind: int  # FENCE_POLYGON_* / FENCE_CIRCLE_*
    points: tuple[tuple[float, float], ...]  # (lat, lon); one point (the centre) for circles
    radius: float = 0.0


def parse_fence(items: Sequence[MissionItem]) -> tuple[int, list[FenceShape]]:
    """Validate a fence upload: (MAV_MISSION_RESULT, shapes). Return points are accepted and ignored."""
    shapes: list[FenceShape] = []
    i = 0
    for k, it in enumerate(items):
        if it.seq != k:
            return MISSION_INVALID_SEQUENCE, []
    while i < len(items):
        it = items[i]
        cmd = it.command
        if cmd not in (
            FENCE_RETURN_POINT,
            FENCE_POLYGON_INCLUSION,
            FENCE_POLYGON_EXCLUSION,
            FENCE_CIRCLE_INCLUSION,
            FENCE_CIRCLE_EXCLUSION,
        ):
            return MISSION_UNSUPPORTED, []
        if it.frame not in GLOBAL_FRAMES:
            return MISSION_UNSUPPORTED_FRAME, []
        code = _latlon_code(it)
        if code:
            return code, []
        if cmd in (FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION):
            if not _finite(it.param1) or it.param1 != int(it.param1):
                return MISSION_INVALID, []
            count = int(it.param1)
            if count < 3 or i + count > len(items):
                return MISSION_INVALID, []
            group = items[i : i + count]
            for v in group:
                if v.command != cmd or v.param1 != it.param1 or v.frame not in GLOBAL_FRAMES:
                    return MISSION_INVALID, []
                code = _latlon_code(v)
                if code:
                    return code, []
            shapes.append(FenceShape(cmd, tuple((v.x / 1e7, v.y / 1e7) for v in group)))
            i += count
            continue
        if cmd in (FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION):
            if not (_finite(it.param1) and it.param1 > 0):
                return MISSION_INVALID, []
            shapes.append(FenceShape(cmd, ((it.x / 1e7, it.y / 1e7),), float(it.param1)))
        i += 1
    return MISSION_ACCEPTED, shapes


def local_fence(
    shapes: Sequence[FenceShape], home_lat: float, home_lon: float
) -> tuple[list[Polygon | Circle], list[Polygon | Circle]]:
    """(inclusions, exclusions) in local metres around the given home."""
    inc: list[Polygon | Circle] = []
    exc: list[Polygon | Circle] = []
    for s in shapes:
        pts = [ne_from_latlon(home_lat, home_lon, lat, lon) for lat, lon in s.points]
        inclusion = s.kind in (FENCE_POLYGON_INCLUSION, FENCE_CIRCLE_INCLUSION)
        shape: Polygon | Circle
        if s.kind in (FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION):
            shape = Circle(inclusion, pts[0][0], pts[0][1], s.radius)
        else:
            ns = tuple(p[0] for p in pts)
            es = tuple(p[1] for p in pts)
            shape = Polygon(inclusion, ns, es, (min(ns), max(ns), min(es), max(es)))
        (inc if inclusion else exc).append(shape)
    return inc, exc
