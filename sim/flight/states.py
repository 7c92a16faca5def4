"""The simulated autopilot's internal states, as enums.

The reported PX4 `Mode` (in `sim.types`) is what a client sees; these say what the flight model is actually
doing, which differs in PX4's quirks (an RTL lands without a LAND mode, a go-to flies inside LOITER).
Only `MissionState` and `BatteryLevel` carry meaningful numbers: the first is MAVLink's MISSION_STATE, the
second is ordered (a level only ever rises until the battery recovers).

Python 3.11 resolves `Enum.MEMBER` through the enum's metaclass, ~0.1 us a time, which the 50 Hz step loop
cannot afford a dozen times a step; the modules that compare states there bind the members they need to
module-level names once (`_POS = NavState.POS`), so a comparison costs what comparing two ints did.
"""

from __future__ import annotations

import enum


class NavState(enum.Enum):
    """What the navigator is doing (PX4: the active navigator mode / flight task)."""

    IDLE = enum.auto()  # on the ground
    TAKEOFF = enum.auto()
    POS = enum.auto()  # hold / go-to a point (AUTO.LOITER incl. DO_REPOSITION)
    RTL = enum.auto()
    LAND = enum.auto()
    ORBIT = enum.auto()
    MISSION = enum.auto()
    FALL = enum.auto()  # motors off in the air (forced disarm)


class RtlPhase(enum.Enum):
    """PX4's RTL: climb to the return altitude, fly home, optionally descend and wait, then land."""

    CLIMB = enum.auto()
    RETURN = enum.auto()
    DESCEND = enum.auto()
    WAIT = enum.auto()
    LAND = enum.auto()


class MissionPhase(enum.Enum):
    """Progress on the current mission item: flying to it, holding at it (loiter items), landing on it."""

    FLY = enum.auto()
    HOLD = enum.auto()
    LAND = enum.auto()


class YawMode(enum.Enum):
    """Which way the vehicle turns its nose (PX4: MPC_YAW_MODE and DO_ORBIT's yaw behaviour)."""

    KEEP = enum.auto()  # hold the current heading
    FIXED = enum.auto()  # a commanded heading
    TRAVEL = enum.auto()  # face the target while far from it
    CENTER = enum.auto()  # face the orbit centre
    TANGENT = enum.auto()  # face the direction of travel


class MissionState(enum.IntEnum):
    """MAVLink MISSION_STATE, sent as is in MISSION_CURRENT."""

    NO_MISSION = 1
    NOT_STARTED = 2
    ACTIVE = 3
    PAUSED = 4
    COMPLETE = 5


class BatteryLevel(enum.IntEnum):
    """The highest battery warning announced, in PX4's order (BAT_LOW_THR, BAT_CRIT_THR, BAT_EMERGEN_THR)."""

    OK = 0
    LOW = 1
    CRITICAL = 2
    EMERGENCY = 3


class FailsafeAction(enum.Enum):
    """What a failsafe does once its Hold delay (COM_FAIL_ACT_T) is over."""

    RTL = enum.auto()
    LAND = enum.auto()
