"""Types shared by the simulated autopilot (vehicle.py) and its MAVLink front end (link.py).

Kept free of pymavlink so the flight model can be unit-tested without any protocol code.
Numbers follow MAVLink common.xml and PX4's custom-mode encoding (see protocol.md in the reference
captures: custom_mode = sub_mode << 24 | main_mode << 16).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class MavResult(enum.IntEnum):
    """MAV_RESULT values used in COMMAND_ACK."""

    ACCEPTED = 0
    TEMPORARILY_REJECTED = 1
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4
    IN_PROGRESS = 5


class Severity(enum.IntEnum):
    """MAV_SEVERITY used in STATUSTEXT."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7


class LandedState(enum.IntEnum):
    """MAV_LANDED_STATE as sent in EXTENDED_SYS_STATE."""

    UNDEFINED = 0
    ON_GROUND = 1
    IN_AIR = 2
    TAKEOFF = 3
    LANDING = 4


class Mode(enum.Enum):
    """PX4 flight modes the simulator implements, valued by (main_mode, sub_mode)."""

    MANUAL = (1, 0)
    ALTCTL = (2, 0)
    POSCTL = (3, 0)
    ORBIT = (3, 1)
    READY = (4, 1)
    TAKEOFF = (4, 2)
    LOITER = (4, 3)  # PX4 "Hold"; also the idle mode on the ground
    MISSION = (4, 4)
    RTL = (4, 5)
    LAND = (4, 6)
    OFFBOARD = (6, 0)
    STABILIZED = (7, 0)

    @property
    def custom_mode(self) -> int:
        main, sub = self.value
        return (sub << 24) | (main << 16)

    @classmethod
    def from_main_sub(cls, main: int, sub: int) -> Mode | None:
        for m in cls:
            if m.value == (main, sub):
                return m
        return None


# CURRENT_MODE.standard_mode per mode (MAV_STANDARD_MODE), as PX4 reports it.
STANDARD_MODE = {
    Mode.LOITER: 0,
    Mode.ORBIT: 2,
    Mode.RTL: 5,
    Mode.MISSION: 6,
    Mode.LAND: 7,
    Mode.TAKEOFF: 8,
}


class MissionType(enum.IntEnum):
    MISSION = 0
    FENCE = 1
    RALLY = 2


@dataclass(frozen=True)
class MissionItem:
    """One MISSION_ITEM_INT as stored by the autopilot (x/y in degE7 for global frames)."""

    seq: int
    frame: int
    command: int
    current: int = 0
    autocontinue: int = 1
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0
    mission_type: int = MissionType.MISSION


@dataclass(frozen=True)
class StatusText:
    severity: Severity
    text: str


@dataclass
class Faults:
    """Faults injected from outside (scenarios, tests). The link fault is applied by the link layer."""

    link_down: bool = False
    gps_lost: bool = False
    motor_failed: bool = False
    extra: dict[str, float] = field(default_factory=dict)
