"""PX4 parameter store for one simulated vehicle.

Serves PX4's full default list (so a PARAM_REQUEST_LIST looks like PX4's) and applies PX4's own
clamping rules for the few parameters the flight model reads.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources

REAL32 = 9
INT32 = 6


@dataclass
class Param:
    name: str
    ptype: int  # MAV_PARAM_TYPE: REAL32 (9) or INT32 (6)
    value: float


# Defaults that differ from PX4's SIH airframe, with the reason.
SIM_OVERRIDES: dict[str, float] = {
    # PX4 SIH floors its battery at 50 % (SIM_BAT_MIN_PCT) and drains it in 60 s, which makes battery
    # planning meaningless. The simulator models a real pack instead: 0 % floor, 40 min hover endurance
    # (less in fast flight), typical of DFR docked quadrotors.
    "SIM_BAT_MIN_PCT": 0.0,
    "SIM_BAT_DRAIN": 2400.0,
}

# Parameters the simulator adds (not in PX4): none are served to clients to keep the list PX4-identical.


def _load_defaults() -> dict[str, Param]:
    out: dict[str, Param] = {}
    text = resources.files("sim").joinpath("data/px4_sih_params.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        ptype = REAL32 if row["type"] == "REAL32" else INT32
        out[row["name"]] = Param(row["name"], ptype, float(row["value"]))
    for name, value in SIM_OVERRIDES.items():
        out[name].value = value
    return out


_DEFAULTS = _load_defaults()


PARAM_APPLY_DELAY_S = 0.02
"""Vehicle seconds between PX4's PARAM_VALUE echo of a PARAM_SET and the new value taking effect.

On real PX4 SITL (v1.16, SIH) a takeoff sent 4 ms after the echo of MIS_TAKEOFF_ALT still used the old
value (../shared/reference/px4-sitl/README.md); in later probes an arm round trip was enough. The navigator
runs at tens of Hz, so one of its cycles (20 ms) is the delay modelled here: a client must not rely on
a value it has only just set."""


class ParamError(ValueError):
    """Raised for an unknown parameter or a value the autopilot refuses."""


class Params:
    """Name-ordered parameter table; reads are plain dict lookups for the flight model's hot loop."""

    def __init__(self, overrides: dict[str, float] | None = None) -> None:
        self._p = {k: Param(v.name, v.ptype, v.value) for k, v in _DEFAULTS.items()}
        self.names = sorted(self._p)
        self.notes: list[str] = []  # messages PX4 would send when it changes a value itself
        # What the vehicle's modules use: the stored value once it has taken effect (see `set`).
        self._applied: dict[str, float] = {k: p.value for k, p in self._p.items()}
        self._pending: dict[str, float] = {}  # name -> vehicle time at which the stored value applies
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def __contains__(self, name: str) -> bool:
        return name in self._p

    def __len__(self) -> int:
        return len(self._p)

    def __getitem__(self, name: str) -> float:
        """The value in effect (what the flight logic uses), which may lag the stored one."""
        return self._applied[name]

    def get(self, name: str) -> Param:
        try:
            return self._p[name]
        except KeyError:
            raise ParamError(f"unknown parameter {name!r}") from None

    def index_of(self, name: str) -> int:
        return self.names.index(name)

    def by_index(self, index: int) -> Param:
        return self._p[self.names[index]]

    def set(self, name: str, value: float, *, now: float | None = None) -> list[Param]:
        """Set a parameter; returns every parameter whose stored value changed (PX4 echoes each).

        With `now` (the vehicle's time, for a PARAM_SET from the link) the new value is stored, echoed
        and read back at once but takes effect `PARAM_APPLY_DELAY_S` later, as on PX4, whose modules
        pick a change up on their own cycle after the PARAM_VALUE echo went out. Without it (start-up
        overrides, tests) it takes effect at once.
        """
        p = self.get(name)
        if math.isnan(value) or math.isinf(value):
            raise ParamError(f"{name}: value must be finite")
        if p.ptype == INT32:
            value = float(round(value))
        stored_before = {n: q.value for n, q in self._p.items() if n in (name, "MPC_XY_CRUISE")}
        p.value = value
        changed = [p]
        # PX4 constrains the cruise speed to the maximum speed (and says so).
        if name in ("MPC_XY_CRUISE", "MPC_XY_VEL_MAX"):
            cruise, vmax = self._p["MPC_XY_CRUISE"], self._p["MPC_XY_VEL_MAX"]
            if cruise.value > vmax.value:
                cruise.value = vmax.value
                changed.append(cruise)
                self.notes.append("Cruise speed has been constrained by max speed")
        for c in changed:
            if now is None:
                self._applied[c.name] = c.value
                self._pending.pop(c.name, None)
            elif stored_before.get(c.name) != c.value:  # setting the stored value again changes nothing
                self._pending[c.name] = now + PARAM_APPLY_DELAY_S
        return changed

    def apply_due(self, now: float) -> bool:
        """Let stored values whose delay has passed take effect; True if any did."""
        due = [name for name, t in self._pending.items() if t <= now]
        for name in due:
            self._applied[name] = self._p[name].value
            del self._pending[name]
        return bool(due)
