"""The vehicle's geofence: the uploaded plan, its local geometry, PX4's distance limits, breach tracking.

The plan is kept as uploaded (the link reads it back) and its shapes are converted to north/east around
the current home, again whenever arming moves home. GF_MAX_HOR_DIST and GF_MAX_VER_DIST fence a vehicle
even without an upload, as on PX4. What the vehicle does about a breach (GF_ACTION) is decided by the
failsafes (`sim.flight.failsafe`); this only says when a breach starts.
"""

from __future__ import annotations

from sim.flight.plans import MISSION_ACCEPTED, Circle, FenceShape, Polygon, checksum, local_fence, parse_fence
from sim.params import Params
from sim.types import MissionItem


class Geofence:
    """The uploaded fence, its shapes around home, the distance limits, and whether the vehicle is outside."""

    __slots__ = (
        "_exc",
        "_inc",
        "_max_hor",
        "_max_ver",
        "_shapes",
        "action",
        "active",
        "breached",
        "id",
        "items",
    )

    def __init__(self) -> None:
        self.items: list[MissionItem] = []
        self.id = 0
        self._shapes: list[FenceShape] = []
        self._inc: list[Polygon | Circle] = []
        self._exc: list[Polygon | Circle] = []
        self.breached = False  # the vehicle was outside when last checked
        self.active = False  # anything to check at all (a plan or a distance limit)
        self.action = 0
        self._max_hor = 0.0
        self._max_ver = 0.0

    def load(self, p: Params) -> None:
        self.action = int(p["GF_ACTION"])
        self._max_hor = p["GF_MAX_HOR_DIST"]
        self._max_ver = p["GF_MAX_VER_DIST"]
        self.active = bool(self._inc or self._exc or self._max_hor > 0 or self._max_ver > 0)

    def set(self, items: list[MissionItem], home_lat: float, home_lon: float) -> int:
        """Store an upload if PX4 would accept it; returns MAV_MISSION_RESULT. Call `load` after it."""
        result, shapes = parse_fence(items)
        if result != MISSION_ACCEPTED:
            return result
        self.items = list(items)
        self.id = checksum(self.items)
        self._shapes = shapes
        self._inc, self._exc = local_fence(shapes, home_lat, home_lon)
        self.breached = False
        return MISSION_ACCEPTED

    def clear(self) -> None:
        """Remove the plan (the distance limits stay). Call `load` after it."""
        self.items = []
        self.id = 0
        self._shapes = []
        self._inc, self._exc = [], []
        self.breached = False

    def rehome(self, home_lat: float, home_lon: float) -> None:
        """Home moved: recompute the shapes' local geometry around it."""
        self._inc, self._exc = local_fence(self._shapes, home_lat, home_lon)

    def outside(self, n: float, e: float, h: float) -> bool:
        """True if a point (metres from home) breaks the fence."""
        for s in self._exc:
            if s.contains(n, e):
                return True
        if self._inc and not any(s.contains(n, e) for s in self._inc):
            return True
        if self._max_hor > 0 and n * n + e * e > self._max_hor * self._max_hor:
            return True
        return self._max_ver > 0 and h > self._max_ver

    def breach_started(self, n: float, e: float, h: float) -> bool:
        """Track the breach state; True when a breach begins and GF_ACTION asks for a reaction."""
        breached = self.outside(n, e, h)
        if breached == self.breached:
            return False
        self.breached = breached
        return breached and self.action > 0
