"""Missions: one drone response to one incident, and the state machine every mission follows.

The states, in the order a successful response passes through them::

    pending_approval ──> launching ──> en_route ──> on_scene ──> returning ──> landed
          │   │              ^              │                        ^
          │   └──> queued ───┘              └── recall / failsafe ───┘
          └──> declined

plus ``aborted`` and ``failed``, reachable from every non-terminal state. ``landed`` ends a mission that
flew; ``declined`` (an operator or policy said no), ``aborted`` (stopped on purpose) and ``failed``
(something broke) end it with a reason.

The transition table is a plain value and `transition` a pure function, deliberately free of I/O, so
that the same rule is applied by the store (which enforces it under a row lock before anything is
written), by the dispatcher before it commands a drone, and by tests that enumerate every pair of
states. A terminal state has no way out: a landed mission that is flown again is a *new* mission, so
that the record of the first one can never be rewritten.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from dfr.domain.incidents import Latitude, Location, Longitude

__all__ = [
    "ALLOWED",
    "DRONE_STATES",
    "INITIAL_STATES",
    "REASON_STATES",
    "TERMINAL_STATES",
    "InvalidTransition",
    "Mission",
    "MissionDecision",
    "MissionEvent",
    "MissionState",
    "PilotControl",
    "StandoffPoint",
    "TrackPoint",
    "is_terminal",
    "transition",
]


class MissionState(StrEnum):
    """Where a mission is in its life; the values are stored and sent over the API as they are."""

    PENDING_APPROVAL = "pending_approval"
    """Proposed (by policy or an operator) and waiting for a human to approve or decline it."""
    QUEUED = "queued"
    """Approved, but no drone is available yet."""
    LAUNCHING = "launching"
    """A drone is assigned and taking off."""
    EN_ROUTE = "en_route"
    """Airborne and flying the planned route to the scene (or its stand-off point)."""
    ON_SCENE = "on_scene"
    """Over the scene, orbiting or holding."""
    RETURNING = "returning"
    """Flying home: the loiter is over, or the drone was recalled, or the autopilot took over."""
    LANDED = "landed"
    """Terminal, success: the drone is back on the ground."""
    ABORTED = "aborted"
    """Terminal: stopped on purpose (operator, superseded incident, drone re-tasked in the air to another
    mission: "re-tasked to mission M"); ``reason`` says why."""
    FAILED = "failed"
    """Terminal: something broke (link lost, command refused, crash); ``reason`` says what."""
    DECLINED = "declined"
    """Terminal: never flown, because approval was refused; ``reason`` says why."""


S = MissionState

TERMINAL_STATES: Final[frozenset[MissionState]] = frozenset({S.LANDED, S.ABORTED, S.FAILED, S.DECLINED})
"""States a mission never leaves."""

REASON_STATES: Final[frozenset[MissionState]] = frozenset({S.ABORTED, S.FAILED, S.DECLINED})
"""Unsuccessful ends: a mission only gets there with a reason, because "it stopped" helps nobody."""

DRONE_STATES: Final[frozenset[MissionState]] = frozenset(
    {S.LAUNCHING, S.EN_ROUTE, S.ON_SCENE, S.RETURNING, S.LANDED}
)
"""States in which a drone is committed, so ``drone_id`` must be known."""

INITIAL_STATES: Final[frozenset[MissionState]] = frozenset({S.PENDING_APPROVAL, S.QUEUED, S.LAUNCHING})
"""Where a mission may start: awaiting approval, approved without a drone, or approved with one."""

_ENDINGS: Final = frozenset({S.ABORTED, S.FAILED})

ALLOWED: Final[dict[MissionState, frozenset[MissionState]]] = {
    S.PENDING_APPROVAL: frozenset({S.LAUNCHING, S.QUEUED, S.DECLINED}) | _ENDINGS,
    S.QUEUED: frozenset({S.LAUNCHING}) | _ENDINGS,
    S.LAUNCHING: frozenset({S.EN_ROUTE}) | _ENDINGS,
    # returning straight from en_route: a recall, or an autopilot failsafe (RTL) before arrival.
    S.EN_ROUTE: frozenset({S.ON_SCENE, S.RETURNING}) | _ENDINGS,
    S.ON_SCENE: frozenset({S.RETURNING}) | _ENDINGS,
    S.RETURNING: frozenset({S.LANDED}) | _ENDINGS,
    S.LANDED: frozenset(),
    S.ABORTED: frozenset(),
    S.FAILED: frozenset(),
    S.DECLINED: frozenset(),
}
"""Every legal move, ``state -> the states it may go to``; anything not listed is refused.

The sets are frozen so that no caller can widen the rule at run time for everyone else.
"""


class InvalidTransition(ValueError):
    """A move the table does not allow; ``current`` and ``new`` say which, the message says why."""

    def __init__(self, current: MissionState, new: MissionState) -> None:
        self.current = current
        self.new = new
        if current in TERMINAL_STATES:
            why = f"{current.value} is terminal"
        else:
            allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
            why = f"from {current.value} only {allowed} are allowed"
        super().__init__(f"mission cannot go from {current.value} to {new.value}: {why}")


def is_terminal(state: MissionState | str) -> bool:
    return MissionState(state) in TERMINAL_STATES


def transition(current: MissionState | str, new: MissionState | str) -> MissionState:
    """Return ``new`` if a mission in ``current`` may move there, else raise `InvalidTransition`.

    Staying in the same state is not a transition and is refused too: a repeated "en_route" from a
    flight procedure means a bug or a replayed message, and accepting it silently would hide either.
    Unknown state names raise ``ValueError``.
    """
    current, new = MissionState(current), MissionState(new)
    if new not in ALLOWED[current]:
        raise InvalidTransition(current, new)
    return new


# ---------------------------------------------------------------------------------------------------------
# Values


def _canonical_uuid(value: str) -> str:
    """Ids are UUIDs in the canonical lower-case form, so the same id is always the same string."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


UUIDStr = Annotated[str, AfterValidator(_canonical_uuid)]
# The same rule as dfr.area ids: drone ids end up in MQTT topics, URLs and file names.
DroneId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
UTCTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandoffPoint(_Value):
    """Where the drone holds instead of over the target, because the target is inside a no-fly zone."""

    lat: Latitude
    lon: Longitude
    zone_id: str = Field(min_length=1, max_length=64)
    distance_m: float = Field(ge=0.0, allow_inf_nan=False, description="From the target to this point.")


class MissionDecision(_Value):
    """Who or what decided to fly (or not), under which policy, and why: the first question asked later."""

    policy: str = Field(min_length=1, max_length=128, examples=["auto:gunshot-p1"])
    reason: Reason = Field(examples=["priority 1 gunshot inside the 2 km auto-launch radius"])
    by: Who = Field(examples=["system", "operator:rtcc-3"])


class PilotControl(_Value):
    """Whether a human pilot has taken manual control, and who; the dispatcher must then stop commanding."""

    active: bool = False
    by: Who | None = None

    @model_validator(mode="after")
    def _who_when_active(self) -> PilotControl:
        if self.active and self.by is None:
            raise ValueError("pilot control that is active must say who has it")
        return self


class Mission(_Value):
    """A mission as stored. Build a new one with `state` in `INITIAL_STATES`; change it only through
    the store's ``transition``, which checks `ALLOWED` and records the event.

    ``achieved_time_to_scene_s`` is measured from ``launched_at`` to ``on_scene_at``, like the planner's
    ``expected_time_to_scene_s``, so the two can be compared directly. ``reason`` explains the current
    state (required for declined, aborted and failed).
    """

    id: UUIDStr = Field(default_factory=_new_id, description="UUID.")
    incident_id: UUIDStr
    drone_id: DroneId | None = Field(default=None, description="Unknown while pending or queued.")
    state: MissionState
    reason: Reason | None = None
    created_at: UTCTime
    updated_at: UTCTime
    target: Location = Field(description="The point to look at: the incident's location.")
    standoff: StandoffPoint | None = None
    altitude_m: float = Field(gt=0.0, le=1000.0, allow_inf_nan=False, description="Flight altitude AGL.")
    planned_route: list[tuple[Longitude, Latitude]] = Field(
        default_factory=list, description="Waypoints as [lon, lat] (GeoJSON order), the dock first."
    )
    expected_time_to_scene_s: Finite | None = Field(default=None, ge=0.0)
    achieved_time_to_scene_s: Finite | None = None
    launched_at: UTCTime | None = None
    on_scene_at: UTCTime | None = None
    landed_at: UTCTime | None = None
    decision: MissionDecision | None = None
    pilot_control: PilotControl = Field(default_factory=PilotControl)

    @model_validator(mode="after")
    def _state_invariants(self) -> Mission:
        """Refuse combinations no real mission can be in, so that a bad update is never stored."""
        if self.state in DRONE_STATES and self.drone_id is None:
            raise ValueError(f"a mission in state {self.state.value} must have a drone_id")
        if self.state in REASON_STATES and self.reason is None:
            raise ValueError(f"a mission in state {self.state.value} must have a reason")
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        return self


class MissionEvent(_Value):
    """One entry of a mission's timeline: creation (``from_state`` None) or one state change."""

    id: int
    mission_id: str
    at: datetime
    actor: str
    from_state: MissionState | None
    to_state: MissionState
    reason: str | None
    details: dict[str, Any] = Field(description="The fields this step set, as JSON.")


class TrackPoint(_Value):
    """One flown position. Also accepts the flight procedure's samples as they are (``t`` in Unix
    seconds, the altitude as ``rel_alt_m``), so they can be stored without reshaping."""

    t: UTCTime = Field(description="ISO 8601 with an offset, or Unix seconds.")
    lat: Latitude
    lon: Longitude
    alt_m: Finite | None = Field(
        default=None, validation_alias=AliasChoices("alt_m", "rel_alt_m"), description="Above home, m."
    )
    speed: Finite | None = Field(default=None, ge=0.0, description="Ground speed, m/s.")
    mode: str | None = Field(default=None, max_length=32, description="Autopilot flight mode.")
