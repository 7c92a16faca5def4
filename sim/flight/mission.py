"""The uploaded mission and the vehicle's progress through it, with PX4's mission geometry.

The navigator (`sim.vehicle`) sequences the mission (it has to start RTLs, landings and holds); this holds
what belongs to the mission itself: the items as uploaded (the link reads them back), the current item
and MISSION_STATE, the phase at the current item, the speed DO_CHANGE_SPEED set, the items reached but
not yet reported, and how PX4 turns an item into a target (position, acceptance radius, corner speed).
"""

from __future__ import annotations

import math

from sim.flight import plans
from sim.flight.motion import Motion
from sim.flight.plans import MISSION_ACCEPTED, RELATIVE_FRAMES, checksum, validate_mission
from sim.flight.states import MissionPhase, MissionState
from sim.geo import ne_from_latlon
from sim.types import MissionItem

# mission item commands (MAV_CMD)
CMD_WAYPOINT = plans.NAV_WAYPOINT
CMD_LOITER_UNLIM = plans.NAV_LOITER_UNLIM
CMD_LOITER_TIME = plans.NAV_LOITER_TIME
CMD_RTL = plans.NAV_RETURN_TO_LAUNCH
CMD_LAND = plans.NAV_LAND
CMD_TAKEOFF = plans.NAV_TAKEOFF
CMD_CHANGE_SPEED = plans.DO_CHANGE_SPEED


def _finite(x: float | None) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


class MissionRun:
    """The mission plan and where the vehicle is in it."""

    __slots__ = ("corner_v", "current", "hold_until", "id", "items", "phase", "reached", "speed", "state")

    def __init__(self) -> None:
        self.items: list[MissionItem] = []
        self.id = 0  # checksum of the plan, as PX4 reports it
        self.current = 0
        self.state = MissionState.NO_MISSION
        self.phase = MissionPhase.FLY
        self.hold_until = 0.0  # end of a loiter at the current item
        self.speed = 5.0  # mission cruise speed (MPC_XY_CRUISE at start, DO_CHANGE_SPEED after)
        self.corner_v = 0.0  # speed allowed at the current waypoint (mission corners)
        self.reached: list[int] = []  # MISSION_ITEM_REACHED not yet sent

    def upload(self, items: list[MissionItem]) -> int:
        """Store a non-empty upload if PX4 would accept it, starting at its `current` item; returns
        MAV_MISSION_RESULT. The caller sets `state`, which depends on what the vehicle is doing."""
        result = validate_mission(items)
        if result != MISSION_ACCEPTED:
            return result
        self.items = list(items)
        self.id = checksum(self.items)
        self.current = next((i for i, it in enumerate(items) if it.current), 0)
        return MISSION_ACCEPTED

    def clear(self) -> None:
        self.items = []
        self.id = 0
        self.current = 0
        self.state = MissionState.NO_MISSION

    def pop_reached(self) -> list[int]:
        out, self.reached = self.reached, []
        return out

    # ------------------------------------------------------------------ DO items
    def current_is_do(self) -> bool:
        cur = self.current
        return cur < len(self.items) and self.items[cur].command == CMD_CHANGE_SPEED

    def apply_do(self, it: MissionItem, vel_max: float) -> None:
        """DO_CHANGE_SPEED (air or ground speed type) sets the mission cruise speed from here on."""
        speed_type = int(it.param1) if _finite(it.param1) else -1
        if it.command == CMD_CHANGE_SPEED and speed_type in (0, 1) and _finite(it.param2) and it.param2 > 0:
            self.speed = min(float(it.param2), vel_max)

    # ------------------------------------------------------------------ geometry
    def target(
        self, it: MissionItem, m: Motion, home_lat: float, home_lon: float, home_alt_amsl: float
    ) -> tuple[float, float, float]:
        """Local (north, east, height) of a positional item; x = y = 0 means the current position."""
        if it.x == 0 and it.y == 0:
            n, e = m.north, m.east
        else:
            n, e = ne_from_latlon(home_lat, home_lon, it.x / 1e7, it.y / 1e7)
        if it.command == CMD_LAND or not _finite(it.z):
            h = m.height
        elif it.frame in RELATIVE_FRAMES:
            h = it.z
        else:
            h = it.z - home_alt_amsl
        return n, e, h

    def acceptance(self, it: MissionItem, acc_rad: float) -> float:
        """Acceptance radius: the waypoint's own (param2) or NAV_ACC_RAD."""
        if it.command == CMD_WAYPOINT and _finite(it.param2) and it.param2 > 0:
            return float(it.param2)
        return acc_rad

    def corner_speed(self, m: Motion, home_lat: float, home_lon: float, home_alt_amsl: float) -> float:
        """Speed allowed at the current waypoint (the motion target) so the vehicle can turn onto the next
        leg (PX4: computeMaxSpeedInWaypoint, sqrt(a * r * tan(alpha / 2)) with alpha the angle between the
        legs)."""
        it = self.items[self.current]
        if it.command != CMD_WAYPOINT or (_finite(it.param1) and it.param1 > 0):
            return 0.0
        nxt = None
        for j in range(self.current + 1, len(self.items)):
            c = self.items[j].command
            if c == CMD_CHANGE_SPEED:
                continue
            if c in (CMD_WAYPOINT, CMD_LOITER_TIME, CMD_LOITER_UNLIM) or (
                c == CMD_LAND and (self.items[j].x or self.items[j].y)
            ):
                nxt = self.items[j]
            break
        if nxt is None:
            return 0.0
        nn, ne_, _ = self.target(nxt, m, home_lat, home_lon, home_alt_amsl)
        # legs: previous position (the vehicle) -> waypoint -> next
        an, ae = m.north - m.tn, m.east - m.te
        bn, be = nn - m.tn, ne_ - m.te
        la, lb = math.hypot(an, ae), math.hypot(bn, be)
        if la < 1e-3 or lb < 1e-3:
            return 0.0
        cos_alpha = max(-1.0, min(1.0, (an * bn + ae * be) / (la * lb)))
        alpha = math.acos(cos_alpha)
        if alpha >= math.pi - 1e-3:
            return self.speed
        radius = self.acceptance(it, m.acc_rad)
        return min(self.speed, math.sqrt(m.acc_hor * radius * math.tan(alpha / 2.0)))
