"""Dock charging: how a dock restores the battery of a drone that has landed on it, and when it is ready.

A drone that lands with 30 % is not available again at once, and a fleet whose drones never recharge is
grounded after an hour of a busy day. Real drone-in-a-box docks either charge the pack in place (roughly
half an hour from low to nearly full) or swap it for a charged one (a couple of minutes). An area file
states which for each dock (``charging:`` in the dock); the built-in simulator applies the same model to a
landed, disarmed drone sitting on its dock, and the dispatcher and panel can ask `time_until_ready_s`.

The model is deliberately linear (constant charge rate): real chargers taper near full, so a rate taken
from "low to ready" times is the honest single number, and `ready_pct` below 100 keeps the taper out of
the estimate. Pure: no I/O.
"""

from __future__ import annotations

import enum
import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ON_DOCK_M",
    "ChargeMethod",
    "Charging",
    "charge_after",
    "time_to_reach_s",
    "time_until_ready_s",
]

ON_DOCK_M = 10.0
"""A landed drone this close to its dock sits on it (and charges, where the dock charges)."""


class ChargeMethod(enum.Enum):
    """How a dock restores a battery."""

    CHARGE = "charge"  # the pack is charged in place at a constant rate
    SWAP = "swap"  # a robot swaps the pack for a full one after a fixed time


class Charging(BaseModel):
    """A dock's charging model, as written in the area file: exactly one of ``rate_pct_per_min`` or
    ``swap_s``, and the charge from which a drone counts as ready to launch again."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    rate_pct_per_min: float | None = Field(default=None, gt=0.0, le=100.0, allow_inf_nan=False)
    swap_s: float | None = Field(default=None, gt=0.0, le=3600.0, allow_inf_nan=False)
    ready_pct: float = Field(default=90.0, gt=0.0, le=100.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_method(self) -> Charging:
        if (self.rate_pct_per_min is None) == (self.swap_s is None):
            raise ValueError(
                "give exactly one of rate_pct_per_min (charging in place) or swap_s (battery swap)"
            )
        return self

    @property
    def method(self) -> ChargeMethod:
        return ChargeMethod.CHARGE if self.rate_pct_per_min is not None else ChargeMethod.SWAP


def _check(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")


def time_until_ready_s(battery_pct: float, charging: Charging, on_dock_s: float = 0.0) -> float:
    """Seconds until a drone now at ``battery_pct`` on its dock reaches ``ready_pct`` (0 if it has).

    ``on_dock_s`` is how long it has already sat on the dock, which matters for a swap only (the swap
    takes ``swap_s`` from landing whatever the charge).
    """
    _check("battery_pct", battery_pct)
    _check("on_dock_s", on_dock_s)
    if battery_pct >= charging.ready_pct:
        return 0.0
    if charging.rate_pct_per_min is not None:
        return (charging.ready_pct - battery_pct) / charging.rate_pct_per_min * 60.0
    assert charging.swap_s is not None
    return max(0.0, charging.swap_s - on_dock_s)


def charge_after(battery_pct: float, charging: Charging, on_dock_s: float, dt_s: float) -> float:
    """The charge after ``dt_s`` more seconds on the dock, having been there ``on_dock_s`` already.

    A swap gives a full pack once ``swap_s`` has passed; charging in place adds the rate, up to 100 %.
    """
    _check("battery_pct", battery_pct)
    _check("on_dock_s", on_dock_s)
    _check("dt_s", dt_s)
    if charging.rate_pct_per_min is not None:
        return min(100.0, battery_pct + charging.rate_pct_per_min * dt_s / 60.0)
    assert charging.swap_s is not None
    return 100.0 if on_dock_s + dt_s >= charging.swap_s else battery_pct


def time_to_reach_s(battery_pct: float, target_pct: float, charging: Charging) -> float:
    """Seconds until a drone on its dock holds `target_pct` (inf if the dock cannot give that much).

    A swap counts its whole ``swap_s`` (how long the drone has already waited is not known here: the
    estimate errs on the late side); charging in place counts the rate.
    """
    _check("battery_pct", battery_pct)
    if battery_pct >= target_pct:
        return 0.0
    if target_pct > 100.0:
        return math.inf
    if charging.rate_pct_per_min is not None:
        return (target_pct - battery_pct) / charging.rate_pct_per_min * 60.0
    assert charging.swap_s is not None
    return charging.swap_s
