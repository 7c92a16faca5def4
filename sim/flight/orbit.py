"""DO_ORBIT as PX4's FlightTaskOrbit flies it: approach the circle, then circle at constant height.

Approaching, the vehicle flies to the nearest point of the circle through the normal trajectory. On the
circle, the tangential velocity (with a radial correction) and the centripetal acceleration go straight to
the velocity controller (`Motion.direct`): PX4's orbit bypasses the jerk-limited trajectory too, which is
why its circles have no trajectory lag.
"""

from __future__ import annotations

import math

from sim.flight.motion import Motion

ORBIT_DEFAULT_RADIUS_M = 10.0
ORBIT_DEFAULT_SPEED = 1.0  # PX4 FlightTaskOrbit's default when no velocity is given
ORBIT_MAX_RADIUS_M = 1000.0  # MC_ORBIT_RAD_MAX
ORBIT_CAPTURE_M = 2.0  # approach ends when this close to the circle


class Orbit:
    """The circle being flown (metres from home) and whether the vehicle is still approaching it."""

    __slots__ = ("approach", "ce", "cn", "h", "r", "v")

    def __init__(self) -> None:
        self.cn = self.ce = self.r = self.v = self.h = 0.0
        self.approach = False

    def start(self, cn: float, ce: float, r: float, v: float, m: Motion) -> None:
        """Circle (cn, ce) at radius r and signed speed v (positive clockwise) at the current height."""
        self.cn, self.ce, self.r = cn, ce, r
        self.v = v
        self.h = m.height
        self.approach = abs(math.hypot(m.north - cn, m.east - ce) - r) > ORBIT_CAPTURE_M

    def guide(self, m: Motion, approach_speed: float, position_ok: bool) -> None:
        """Set the motion's set-points for this step."""
        dn, de = m.north - self.cn, m.east - self.ce
        d = math.sqrt(dn * dn + de * de)
        r = self.r
        m.wd = m.climb_to(self.h)
        if not position_ok:
            m.hctrl = False
            return
        if self.approach:
            if d < 0.1:  # at the centre: leave along the current heading
                un, ue = math.cos(m.yaw), math.sin(m.yaw)
            else:
                un, ue = dn / d, de / d
            m.tn, m.te = self.cn + un * r, self.ce + ue * r
            m.goto_point(approach_speed, 0.0, position_ok)
            if abs(d - r) <= ORBIT_CAPTURE_M:
                self.approach = False
            return
        if d < 0.1:
            self.approach = True
            return
        un, ue = dn / d, de / d
        v = self.v  # signed: positive is clockwise seen from above
        corr = r - d
        m.vdn = -ue * v + corr * un
        m.vde = un * v + corr * ue
        cent = v * v / r
        m.ffn, m.ffe = -un * cent, -ue * cent
        m.hctrl = True
        m.direct = True
