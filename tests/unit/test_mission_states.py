"""dfr.domain.missions: the transition table checked pair by pair against an independent statement of the
rules, structural properties of the graph, random walks (a terminal state is never left), and the
Mission model's invariants.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dfr.domain.missions import (
    ALLOWED,
    INITIAL_STATES,
    TERMINAL_STATES,
    InvalidTransition,
    Mission,
    MissionState,
    PilotControl,
    TrackPoint,
    is_terminal,
    transition,
)

S = MissionState
ALL = list(MissionState)
NON_TERMINAL = [s for s in ALL if s not in TERMINAL_STATES]
NOW = datetime(2024, 5, 1, 17, 5, tzinfo=UTC)

# The rules as the requirements state them, written out independently of ALLOWED.
EXPECTED: dict[MissionState, set[MissionState]] = {
    S.PENDING_APPROVAL: {S.LAUNCHING, S.DECLINED, S.QUEUED, S.ABORTED, S.FAILED},
    S.QUEUED: {S.LAUNCHING, S.ABORTED, S.FAILED},
    S.LAUNCHING: {S.EN_ROUTE, S.ABORTED, S.FAILED},
    S.EN_ROUTE: {S.ON_SCENE, S.RETURNING, S.ABORTED, S.FAILED},
    S.ON_SCENE: {S.RETURNING, S.ABORTED, S.FAILED},
    S.RETURNING: {S.LANDED, S.ABORTED, S.FAILED},
    S.LANDED: set(),
    S.ABORTED: set(),
    S.FAILED: set(),
    S.DECLINED: set(),
}


def test_the_states_and_their_wire_names() -> None:
    assert [s.value for s in ALL] == [
        "pending_approval",
        "queued",
        "launching",
        "en_route",
        "on_scene",
        "returning",
        "landed",
        "aborted",
        "failed",
        "declined",
    ]
    assert {S.LANDED, S.ABORTED, S.FAILED, S.DECLINED} == TERMINAL_STATES


@pytest.mark.parametrize(("current", "new"), list(itertools.product(ALL, ALL)), ids=str)
def test_every_pair_of_states(current: MissionState, new: MissionState) -> None:
    if new in EXPECTED[current]:
        assert transition(current, new) is new
        assert transition(current.value, new.value) is new  # names work as well as members
    else:
        with pytest.raises(InvalidTransition) as err:
            transition(current, new)
        assert (err.value.current, err.value.new) == (current, new)
        assert current.value in str(err.value) and new.value in str(err.value)


def test_table_is_the_expected_one_and_covers_every_state() -> None:
    assert set(ALLOWED) == set(ALL)
    assert {k: set(v) for k, v in ALLOWED.items()} == EXPECTED


def test_structure_of_the_graph() -> None:
    for state in ALL:
        assert (not ALLOWED[state]) == is_terminal(state)
    for state in NON_TERMINAL:  # anything still running can always be stopped
        assert {S.ABORTED, S.FAILED} <= ALLOWED[state]
    for state in ALL:  # no self-loops: a repeated phase report is refused, not absorbed
        assert state not in ALLOWED[state]

    def reachable(starts: set[MissionState]) -> set[MissionState]:
        seen, todo = set(starts), list(starts)
        while todo:
            for nxt in ALLOWED[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert reachable({S.PENDING_APPROVAL}) == set(ALL)  # every state is used
    assert INITIAL_STATES == {S.PENDING_APPROVAL, S.QUEUED, S.LAUNCHING}
    for state in NON_TERMINAL:  # from anywhere, the mission can still succeed (unless it never flew)
        assert S.LANDED in reachable({state})


def test_terminal_message_says_terminal_and_others_list_the_choices() -> None:
    with pytest.raises(InvalidTransition, match="landed is terminal"):
        transition(S.LANDED, S.EN_ROUTE)
    with pytest.raises(InvalidTransition, match="only aborted, failed, on_scene, returning"):
        transition(S.EN_ROUTE, S.LANDED)


def test_unknown_state_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'flying'"):
        transition("flying", S.LANDED)
    with pytest.raises(ValueError):
        transition(S.QUEUED, "teleported")


@given(st.lists(st.sampled_from(ALL), max_size=40), st.sampled_from(sorted(INITIAL_STATES)))
def test_random_sequences_never_leave_a_terminal_state(
    steps: list[MissionState], start: MissionState
) -> None:
    state = start
    history = [state]
    for new in steps:
        try:
            state = transition(state, new)
        except InvalidTransition:
            assert new not in EXPECTED[state]
        else:
            assert new in EXPECTED[history[-1]]
            history.append(state)
    ended = [i for i, s in enumerate(history) if s in TERMINAL_STATES]
    if ended:
        assert ended == [len(history) - 1]  # at most one terminal state, and it is the last
    # A launched mission passed through launching before being airborne.
    if any(s in (S.EN_ROUTE, S.ON_SCENE, S.RETURNING, S.LANDED) for s in history):
        assert S.LAUNCHING in history


@given(st.data())
def test_random_walks_along_allowed_moves_end_only_in_terminal_states(data: st.DataObject) -> None:
    state = data.draw(st.sampled_from(sorted(INITIAL_STATES)))
    for _ in range(20):
        if is_terminal(state):
            for other in ALL:
                with pytest.raises(InvalidTransition):
                    transition(state, other)
            return
        state = transition(state, data.draw(st.sampled_from(sorted(ALLOWED[state]))))
    raise AssertionError("a mission of 20 steps must have ended: the longest path has 6")


# ---------------------------------------------------------------------------------------------------------
# Models


def mission(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "incident_id": str(uuid.uuid4()),
        "state": "pending_approval",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "target": {"lat": 32.64, "lon": -117.08},
        "altitude_m": 60,
    }
    data.update(changes)
    return data


def test_mission_defaults_and_normalisation() -> None:
    m = Mission.model_validate(
        mission(incident_id=str(uuid.uuid4()).upper(), created_at="2024-05-01T10:05:00-07:00")
    )
    uuid.UUID(m.id)
    assert m.incident_id == m.incident_id.lower()
    assert m.created_at == NOW and m.created_at.tzinfo is UTC
    assert (m.drone_id, m.reason, m.standoff, m.decision, m.planned_route) == (None, None, None, None, [])
    assert m.pilot_control == PilotControl(active=False, by=None)
    again = Mission.model_validate_json(m.model_dump_json())
    assert again == m


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"state": "launching"}, "must have a drone_id"),
        ({"state": "landed", "drone_id": "d1"}, None),
        ({"state": "aborted"}, "must have a reason"),
        ({"state": "declined", "reason": "   "}, "at least 1 character"),
        ({"incident_id": "42"}, "must be a UUID"),
        ({"drone_id": "has space"}, "pattern"),
        ({"created_at": "2024-05-01T17:05:00"}, "timezone"),
        ({"updated_at": (NOW - timedelta(seconds=1)).isoformat()}, "before created_at"),
        ({"altitude_m": 0}, "greater than 0"),
        ({"planned_route": [[-117.0, 95.0]]}, "less than or equal to 90"),
        ({"pilot_control": {"active": True}}, "must say who"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_mission_invariants(changes: dict[str, Any], message: str | None) -> None:
    if message is None:
        Mission.model_validate(mission(**changes))
        return
    with pytest.raises(ValidationError, match=message):
        Mission.model_validate(mission(**changes))


def test_track_point_takes_the_flight_procedure_samples_as_they_are() -> None:
    sample = {
        "t": NOW.timestamp(),
        "lat": 32.64,
        "lon": -117.08,
        "rel_alt_m": 59.5,
        "speed": 12.1,
        "mode": "HOLD",
    }
    point = TrackPoint.model_validate(sample)
    assert (point.t, point.alt_m) == (NOW, 59.5)
    assert point.model_dump()["alt_m"] == 59.5
    other = TrackPoint(t=NOW.astimezone(timezone(timedelta(hours=-7))), lat=0, lon=0)
    assert other.t.tzinfo is UTC
