"""Who is asking: the role model shared by the API, the panel and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["COMMANDERS", "READERS", "Principal", "Role"]


class Role(StrEnum):
    """What an account may do. Not a strict ladder: a ``feed`` (a sensor or CAD bridge) may submit
    incidents but read nothing, because its credentials sit on many field devices."""

    VIEWER = "viewer"  # RTCC analyst: sees everything, commands nothing
    PILOT = "pilot"  # remote pilot in command: commands drones, approves launches
    ADMIN = "admin"  # everything a pilot may do, plus users, areas and policies
    FEED = "feed"  # integration account: may only submit incident reports


READERS = (Role.VIEWER, Role.PILOT, Role.ADMIN)
COMMANDERS = (Role.PILOT, Role.ADMIN)


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
