"""Time-to-scene estimate shown to dispatchers before and during a launch.

The estimate is deliberately simple and slightly pessimistic: the drone climbs vertically to its
transit altitude first (what DFR autopilots do on launch), then flies each leg of the planned route
with a symmetric trapezoidal speed profile, from a hover at one corner to a hover at the next (PX4
go-tos end in a hover, so every corner costs a brake and a re-acceleration). A dispatcher who is told
"90 s" and sees the drone arrive at 80 s is fine; the reverse erodes trust in the number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dfr.planning.errors import InvalidInput


def _require(name: str, value: float, *, positive: bool) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise InvalidInput(f"{name} must be a finite {kind} number, got {value!r}")


def horizontal_time_s(length_m: float, cruise_m_s: float, accel_m_s2: float = 1.5) -> float:
    """Time to cover `length_m` from rest to rest, accelerating and braking at `accel_m_s2`.

    Short hops never reach cruise speed, hence the triangular branch.
    """
    _require("length_m", length_m, positive=False)
    _require("cruise_m_s", cruise_m_s, positive=True)
    _require("accel_m_s2", accel_m_s2, positive=True)
    ramp_m = cruise_m_s * cruise_m_s / accel_m_s2  # distance spent accelerating plus braking
    if length_m >= ramp_m:
        return length_m / cruise_m_s + cruise_m_s / accel_m_s2
    return 2.0 * math.sqrt(length_m / accel_m_s2)


def eta_s(
    length_m: float,
    cruise_m_s: float,
    climb_m_s: float,
    altitude_m: float,
    accel_m_s2: float = 1.5,
    legs_m: Sequence[float] | None = None,
) -> float:
    """Seconds from take-off to arrival overhead: vertical climb, then the horizontal legs.

    Climb ramps are ignored (they are short next to the climb itself at DFR altitudes). `legs_m`, the
    route's leg lengths, makes each corner a stop; without it the route is one leg of `length_m`.
    """
    _require("altitude_m", altitude_m, positive=False)
    _require("climb_m_s", climb_m_s, positive=True)
    legs = [length_m] if legs_m is None else list(legs_m)
    return altitude_m / climb_m_s + sum(horizontal_time_s(leg, cruise_m_s, accel_m_s2) for leg in legs)
