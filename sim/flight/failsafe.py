"""PX4's failsafes as the simulator models them: what triggers one, and which reaction each setting asks for.

The navigator (`sim.vehicle`) carries the reactions out; this module holds the failsafe state that is not
the navigator's (the data link monitor, a reaction waiting out its Hold) and PX4's decision tables, so
that "what does NAV_DLL_ACT 2 do in RTL?" is answered in one place. The behaviour follows the PX4 v1.16
SITL captures: a delayed reaction first holds for COM_FAIL_ACT_T and says so, a data link that comes back
within that Hold cancels the reaction, and a failsafe never interrupts a landing.
"""

from __future__ import annotations

import enum

from sim.flight.states import BatteryLevel, FailsafeAction
from sim.params import Params
from sim.types import Mode, Severity

DL_STALE_S = 2.3  # PX4 declares the GCS lost COM_DL_LOSS_T + ~2.3 s after its last HEARTBEAT


class Reaction(enum.Enum):
    """A failsafe reaction the navigator carries out."""

    HOLD = enum.auto()  # hold where the vehicle stops, nothing after
    HOLD_THEN_RTL = enum.auto()  # hold COM_FAIL_ACT_T, then return
    HOLD_THEN_LAND = enum.auto()  # hold COM_FAIL_ACT_T, then land
    RTL = enum.auto()  # return now
    LAND = enum.auto()  # land now


BATTERY_TEXTS: dict[BatteryLevel, tuple[tuple[Severity, str], ...]] = {
    BatteryLevel.OK: (),
    BatteryLevel.LOW: ((Severity.CRITICAL, "Low battery\t"),),
    BatteryLevel.CRITICAL: ((Severity.CRITICAL, "Critical battery\t"),),
    BatteryLevel.EMERGENCY: (
        (Severity.EMERGENCY, "Emergency battery level\t"),
        (Severity.CRITICAL, "System does not support shutdown\t"),
    ),
}
"""What PX4 says when the battery reaches a level (STATUSTEXT as captured, tab included)."""


def link_loss_reaction(nav_dll_act: int, mode: Mode) -> Reaction | None:
    """NAV_DLL_ACT: 1 Hold, 2 Return, 3/5/6 Land (5 terminate and 6 lockdown are simulated as Land)."""
    if nav_dll_act == 1:
        return Reaction.HOLD
    if nav_dll_act == 2:
        return Reaction.HOLD_THEN_RTL if mode not in (Mode.RTL, Mode.LAND) else None
    if nav_dll_act in (3, 5, 6) and mode != Mode.LAND:
        return Reaction.HOLD_THEN_LAND
    return None


def battery_reaction(level: BatteryLevel, low_bat_act: int, mode: Mode) -> Reaction | None:
    """COM_LOW_BAT_ACT in the air: 1 Return at critical, 2 Land at critical, 3 Return at critical and Land
    at emergency (0 warns only). Critical waits out the Hold; emergency acts at once."""
    if level == BatteryLevel.CRITICAL:
        if low_bat_act in (1, 3) and mode not in (Mode.RTL, Mode.LAND):
            return Reaction.HOLD_THEN_RTL
        if low_bat_act == 2 and mode != Mode.LAND:
            return Reaction.HOLD_THEN_LAND
    elif level == BatteryLevel.EMERGENCY:
        if low_bat_act in (2, 3) and mode != Mode.LAND:
            return Reaction.LAND
        if low_bat_act == 1 and mode not in (Mode.RTL, Mode.LAND):
            return Reaction.RTL
    return None


def fence_reaction(gf_action: int, position_ok: bool) -> Reaction | None:
    """GF_ACTION on a breach: 1 warns only, 2 Hold, 3 Return (Land without a position), 4 terminate and 5
    Land are Land."""
    if gf_action <= 1:
        return None
    if gf_action == 2:
        return Reaction.HOLD
    if gf_action == 3 and position_ok:
        return Reaction.RTL
    return Reaction.LAND


class Failsafes:
    """The data link monitor and the reaction waiting out its Hold.

    The step loop reads these attributes directly (a method call per check would cost more than the check).
    """

    __slots__ = (
        "dl_loss_s",
        "from_link",
        "gcs_lost",
        "gcs_seen",
        "hold_s",
        "last_gcs_hb",
        "pending",
        "pending_t",
    )

    def __init__(self) -> None:
        self.gcs_seen = False  # link loss is only detected once a GCS was ever heard
        self.gcs_lost = False
        self.last_gcs_hb = 0.0
        self.pending: FailsafeAction | None = None  # due after a Hold
        self.pending_t = 0.0
        self.from_link = False  # the pending action is the data-link-loss reaction

    def load(self, p: Params) -> None:
        self.dl_loss_s = p["COM_DL_LOSS_T"] + DL_STALE_S
        self.hold_s = max(0.0, p["COM_FAIL_ACT_T"])

    def heartbeat(self, t: float) -> bool:
        """A GCS HEARTBEAT arrived at t; True if it ends a link loss."""
        self.gcs_seen = True
        self.last_gcs_hb = t
        if self.gcs_lost:
            self.gcs_lost = False
            return True
        return False
