"""PX4's vertical speed schedules for take-off and landing, and the take-off timing seen in the captures.

Take-off: the motors spin up first, then the climb rate ramps up over MPC_TKO_RAMP_T to MPC_TKO_SPEED and,
above MPC_LAND_ALT1, rises gradually towards MPC_Z_V_AUTO_UP (the captures show it between ~10 and ~20 m).
Landing: MPC_Z_V_AUTO_DN above MPC_LAND_ALT1, MPC_LAND_SPEED below MPC_LAND_ALT2, blended in between, and,
since the SIH quad has a range finder, MPC_LAND_CRWL below MPC_LAND_ALT3.
"""

from __future__ import annotations

from sim.params import Params

TAKEOFF_DETECT_S = 1.9  # "Takeoff detected" / landed_state TAKEOFF after the takeoff command
TAKEOFF_SPOOL_S = 3.2  # motors spin up before the climb ramp starts (leaves ground 4.6-5.3 s after arm)
TAKEOFF_DONE_BELOW_M = 1.0  # TAKEOFF -> LOITER when this far below the target height


class VerticalProfiles:
    """The take-off and landing parameters, cached, and the speed limits they give at a height."""

    __slots__ = ("alt1", "alt2", "alt3", "crawl", "land_speed", "tko_ramp", "tko_speed")

    def load(self, p: Params) -> None:
        self.tko_speed = max(0.1, p["MPC_TKO_SPEED"])
        self.tko_ramp = max(0.0, p["MPC_TKO_RAMP_T"])
        self.land_speed = max(0.1, p["MPC_LAND_SPEED"])
        self.alt1 = p["MPC_LAND_ALT1"]
        self.alt2 = min(p["MPC_LAND_ALT2"], self.alt1)
        self.alt3 = min(p["MPC_LAND_ALT3"], self.alt2)
        self.crawl = max(0.05, min(p["MPC_LAND_CRWL"], self.land_speed))

    def climb_cap(self, h: float, t: float, up: float) -> float:
        """Highest climb rate t seconds after the take-off command (t >= TAKEOFF_SPOOL_S), h metres above
        the ground, with MPC_Z_V_AUTO_UP `up`."""
        cap = self.tko_speed
        a1 = self.alt1
        if h > a1 > 0.0 and up > cap:
            cap += (up - cap) * min(1.0, (h - a1) / a1)
        if self.tko_ramp > 0.0:
            cap *= min(1.0, (t - TAKEOFF_SPOOL_S) / self.tko_ramp)
        return cap

    def descent(self, h: float, dn: float) -> float:
        """Landing descent speed h metres above the ground, with MPC_Z_V_AUTO_DN `dn`."""
        a1, a2 = self.alt1, self.alt2
        if h >= a1:
            return dn
        if h <= self.alt3:
            return self.crawl
        if h <= a2 or a1 <= a2:
            return self.land_speed
        return self.land_speed + (dn - self.land_speed) * (h - a2) / (a1 - a2)
