"""Time-to-scene estimate shown to dispatchers before and during a launch.

`eta_s` is deliberately simple and slightly pessimistic: the drone climbs vertically to its transit
altitude first, then flies each leg of the planned route with a symmetric trapezoidal speed profile,
from a hover at one corner to a hover at the next (PX4 go-tos end in a hover). `flythrough_eta_s` is
what dfr flies now: straight up only to the dock's obstacle height, the rest of the climb en route, and
corners turned at speed where the zones allow, each run accelerating at the airframe's rate. A dispatcher
told "90 s" who sees the drone arrive at 80 s is fine; the reverse erodes trust in the number.
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


TAKEOFF_OVERHEAD_S = 3.0
"""Seconds a take-off loses against a climb at full rate from the ground: PX4 spools the motors up, then
ramps the climb speed up (MPC_TKO_RAMP_T); measured on the built-in simulator and PX4 SIH alike."""


def flythrough_eta_s(
    legs_m: Sequence[float],
    flown_through: Sequence[bool],
    cruise_m_s: float,
    climb_m_s: float,
    altitude_m: float,
    clear_m: float,
    accel_m_s2: float,
    airborne_at_m: float | None = None,
) -> float:
    """Seconds from the arm command to arrival overhead when the drone leaves the dock's vicinity at
    `clear_m` and climbs the rest of the way en route, and turns at speed at the corners marked
    `flown_through` (one per corner between legs): straight up to `clear_m`, then the longer of the
    remaining climb and the horizontal flight, whose runs end only at the corners it stops at.

    `airborne_at_m`: the drone is in the air at that height already (re-tasked): no take-off, the change
    of height counted before the horizontal flight (conservative)."""
    _require("altitude_m", altitude_m, positive=False)
    _require("climb_m_s", climb_m_s, positive=True)
    _require("clear_m", clear_m, positive=False)
    clear = min(clear_m, altitude_m)
    runs: list[float] = [0.0]
    for i, leg in enumerate(legs_m):
        _require("leg", leg, positive=False)
        runs[-1] += leg
        if i < len(legs_m) - 1 and not (i < len(flown_through) and flown_through[i]):
            runs.append(0.0)
    horizontal = sum(horizontal_time_s(run, cruise_m_s, accel_m_s2) for run in runs)
    if airborne_at_m is not None:
        return abs(altitude_m - airborne_at_m) / climb_m_s + horizontal
    return TAKEOFF_OVERHEAD_S + clear / climb_m_s + max(horizontal, (altitude_m - clear) / climb_m_s)
