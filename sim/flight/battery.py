"""The simulated battery: drain in flight, PX4's warning levels, and recharging on a dock.

Drain is not PX4 SIH's (which empties in a minute and floors at 50 %, see `sim.params`): it follows the
flight effort over SIM_BAT_DRAIN seconds of hover. Charging is not PX4's either (SIH only drains): a
vehicle given a `DockCharger` regains charge while it sits disarmed on the ground within a few metres of
that dock, by the dock's model in `dfr.charging`, so that a simulated day does not ground a fleet whose real
docks would have recharged it. Without one (the default, and every PX4 comparison) nothing recharges.

What the autopilot does about a warning level is the failsafes' business (`sim.flight.failsafe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dfr.charging import Charging, charge_after
from sim.flight.motion import Motion
from sim.flight.states import BatteryLevel
from sim.params import Params

CELLS = 4
CELL_V_FULL = 4.05
CELL_V_EMPTY = 3.5
IDLE_CURRENT_A = 0.4

DOCK_RADIUS_M = 5.0
"""A landed drone this close to its dock counts as sitting on it (PX4 lands within a metre or two)."""


@dataclass(frozen=True)
class DockCharger:
    """The dock a vehicle belongs to and how it restores the battery (see `dfr.charging`)."""

    lat: float
    lon: float
    model: Charging
    radius_m: float = DOCK_RADIUS_M


class Battery:
    """Remaining charge (percent), the highest warning level announced, and the dock that recharges it."""

    __slots__ = (
        "avg_current",
        "charger",
        "crit",
        "dock_s",
        "drain_s",
        "effort",
        "emerg",
        "level",
        "low",
        "min_pct",
        "pct",
    )

    def __init__(self) -> None:
        self.pct = 100.0
        self.level = BatteryLevel.OK
        self.effort = 0.0  # last drain rate relative to hover, for the reported current
        self.charger: DockCharger | None = None  # set by the fleet when the area gives the dock a model
        self.dock_s = 0.0  # seconds sitting disarmed on the dock (a swap takes a fixed time from landing)

    def load(self, p: Params) -> None:
        """Cache the parameters read every step."""
        self.drain_s = max(1.0, p["SIM_BAT_DRAIN"])
        self.min_pct = min(max(p["SIM_BAT_MIN_PCT"], 0.0), 100.0)
        self.low = p["BAT_LOW_THR"] * 100.0
        self.crit = p["BAT_CRIT_THR"] * 100.0
        self.emerg = p["BAT_EMERGEN_THR"] * 100.0
        self.avg_current = p["BAT_AVRG_CURRENT"]

    @property
    def voltage_v(self) -> float:
        return CELLS * (CELL_V_EMPTY + (CELL_V_FULL - CELL_V_EMPTY) * self.pct / 100.0)

    def current_a(self, armed: bool) -> float:
        if not armed:
            return IDLE_CURRENT_A
        return self.avg_current * self.effort

    def drain(self, dt: float, m: Motion, idling: bool) -> None:
        """Drain over SIM_BAT_DRAIN seconds of hover, more when fast or climbing (effort > 1)."""
        if idling:
            effort = 0.15  # armed, motors idling
        else:
            v_air = math.hypot(m.vn - m.wind_n, m.ve - m.wind_e)
            climb = -m.vd
            effort = 1.0 + 0.5 * (v_air * 0.1) ** 2 + (0.1 * climb if climb > 0.0 else 0.0)
        self.effort = effort
        pct = self.pct - 100.0 * effort * dt / self.drain_s
        floor = self.min_pct
        self.pct = pct if pct > floor else min(floor, self.pct)

    def charge(self, dt: float, on_dock: bool) -> None:
        """Disarmed: the dock restores the battery while the vehicle sits on it; elsewhere nothing changes."""
        c = self.charger
        assert c is not None
        if not on_dock:
            self.dock_s = 0.0
            return
        if self.pct < 100.0:
            self.pct = charge_after(self.pct, c.model, self.dock_s, dt)
        self.dock_s += dt

    def update_level(self) -> BatteryLevel | None:
        """Track the warning level; returns it when it rose (PX4 announces and reacts only then)."""
        pct = self.pct
        if pct <= self.emerg:
            level = BatteryLevel.EMERGENCY
        elif pct <= self.crit:
            level = BatteryLevel.CRITICAL
        else:
            level = BatteryLevel.LOW if pct <= self.low else BatteryLevel.OK
        rose = level > self.level
        self.level = level
        return level if rose else None
