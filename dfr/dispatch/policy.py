"""Launch policy: which incidents launch a drone on their own, which wait for a person, which never do.

An agency writes its policy as a short YAML file (see ``missions/policies/default.yaml``): an ordered list
of rules, each naming incident kinds and a priority threshold, where the first rule that matches wins, plus
the numbers the drone selection needs (coverage radius, battery limits, wind limit, sortie shape). Keeping
it in a file rather than in code means the agency's counsel and command staff can read and sign off the
exact text the controller runs.

`decide` is pure: the same policy, incident and wind always give the same `Decision`, and the decision's
``reason`` is a full sentence because it is shown to the operator and written to the audit log, where it
must explain the outcome to someone who never saw the policy file.

`load_policy` validates the whole file before returning, like `dfr.area.load_area`, and reports every
problem at once with the file, the field path and the line. Beyond types and ranges it refuses what is
always a mistake in an ordered rule list: duplicate names (the audit log records rules by name) and rules
that can never apply because earlier rules already match everything they cover.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dfr.domain.incidents import IncidentKind
from dfr.yamldoc import DocumentError, load_document

__all__ = [
    "ANY_KIND",
    "Decision",
    "Policy",
    "PolicyError",
    "Retask",
    "Rule",
    "decide",
    "load_policy",
]

ANY_KIND = "*"
"""In a rule's ``kinds``, matches every incident kind, including kinds added to dfr after the policy."""

MAX_POLICY_FILE_BYTES = 1_000_000
"""A policy is a few kilobytes; refusing anything this large bounds parse time on a wrong path."""


_KNOWN_KINDS: tuple[str, ...] = tuple(k.value for k in IncidentKind)
_PRIORITIES = range(1, 6)  # 1 is the most urgent, as in dfr.domain.incidents


def _kind_name(value: Any) -> Any:
    """Accept ``911`` written without quotes: YAML reads it as an int, but nobody means anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _kinds_input(value: Any) -> Any:
    return [_kind_name(v) for v in value] if isinstance(value, list) else value


class _Strict(BaseModel):
    """Closed and strict, as in dfr.area: a typo'd key or ``max_priority: "2"`` must not pass silently."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


Seconds = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]


class Rule(_Strict):
    """One line of the policy: for these kinds at this urgency or higher, do this."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_. -]*$")]
    kinds: Annotated[list[str], BeforeValidator(_kinds_input), Field(min_length=1)]
    max_priority: Annotated[int, Field(ge=1, le=5)] = 5
    """The rule applies to incidents whose priority is at most this (1 is the most urgent)."""
    action: Literal["auto_launch", "require_approval", "never"]
    approval_timeout_s: Seconds = 120.0
    on_timeout: Literal["launch", "decline"] = "decline"
    """What happens when nobody answers an approval request in time; only used by require_approval."""
    queue_deadline_s: Seconds | None = None
    """How long a launch may wait for a drone before the call is given up (None: the policy's)."""
    retask: bool = True
    """Whether this rule's incidents may be given a drone already in the air (re-tasked on its way home,
    or pre-empted from a routine mission), as the policy's ``retask`` section allows; false: only a
    drone on its dock is sent."""

    @field_validator("kinds")
    @classmethod
    def _check_kinds(cls, kinds: list[str]) -> list[str]:
        """Unknown kinds are refused because a misspelt kind would make the rule silently never match."""
        for kind in kinds:
            if kind != ANY_KIND and kind not in _KNOWN_KINDS:
                raise ValueError(
                    f"unknown incident kind {kind!r} (expected {', '.join(_KNOWN_KINDS)}, "
                    f"or {ANY_KIND!r} for every kind)"
                )
        if ANY_KIND in kinds and len(kinds) > 1:
            raise ValueError(f"{ANY_KIND!r} already matches every kind; list it alone")
        if len(set(kinds)) != len(kinds):
            raise ValueError("the same kind is listed twice")
        return kinds

    def matches(self, kind: str, priority: int) -> bool:
        """True if this rule covers an incident of ``kind`` at ``priority``."""
        return priority <= self.max_priority and (ANY_KIND in self.kinds or kind in self.kinds)


Priority = Annotated[int, Field(ge=1, le=5)]


class Retask(_Strict):
    """When a drone in the air may leave its mission for a new incident (see dfr.dispatch.selection).

    A drone flying home is the cheapest drone there is: it is already up, and often nearer than any dock.
    Taking a drone off a scene is different: the first incident loses its eye in the sky, so pre-emption
    is off unless the agency says which incidents may take a drone from which, and a pilot may refuse it.
    """

    returning: bool = True
    """A drone flying home may be sent to a new incident when it is over the scene sooner than any other
    drone (waiting for a charging one included) and its battery covers the new sortie with the reserve."""
    preempt_priority: Priority | None = None
    """Incidents at this priority or more urgent may take a drone loitering over a routine mission
    (None: never)."""
    routine_priority: Priority = 3
    """Missions for incidents at this priority or less urgent are routine: they may be pre-empted."""
    refuse_window_s: Annotated[float, Field(ge=0.0, le=600.0, allow_inf_nan=False)] = 30.0
    """How long (simulated seconds) a pilot has to refuse a pre-emption before the drone is taken."""

    @model_validator(mode="after")
    def _routine_below_urgent(self) -> Retask:
        """A routine mission must be less urgent than the incidents that may take its drone; otherwise
        two incidents of the same priority could take the drone from each other back and forth."""
        if self.preempt_priority is not None and self.routine_priority <= self.preempt_priority:
            raise ValueError(
                f"routine_priority ({self.routine_priority}) must be less urgent (a larger number) than "
                f"preempt_priority ({self.preempt_priority}): an incident may only take a drone from a "
                "less urgent mission"
            )
        return self

    def may_preempt(self, incident_priority: int, mission_priority: int | None) -> bool:
        """Whether an incident at `incident_priority` may take a drone from a mission at `mission_priority`
        (None: unknown, never pre-empted)."""
        return (
            self.preempt_priority is not None
            and mission_priority is not None
            and incident_priority <= self.preempt_priority
            and mission_priority >= self.routine_priority
        )


class _PolicyFields(_Strict):
    """The policy file's fields without the checks across rules, so that those can point at one rule."""

    rules: Annotated[list[Rule], Field(min_length=1)]
    coverage_radius_m: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 5000.0
    """Farthest a scene may be from a drone's dock (straight line) for that drone to be sent."""
    min_battery_pct: Percent = 40.0
    """Below this charge a drone is not launched at all, whatever the sortie would need."""
    battery_reserve_pct: Annotated[float, Field(ge=0.0, lt=100.0, allow_inf_nan=False)] = 20.0
    """Charge that must remain on landing after the whole modelled sortie."""
    max_wind_m_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 12.0
    loiter_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 120.0
    """Time over the scene budgeted in the battery estimate."""
    orbit_radius_m: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 60.0
    orbit_speed_m_s: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 5.0
    altitude_m: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    """Transit altitude AGL; None uses the area's ``default_altitude_m``."""
    buffer_m: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 30.0
    allow_standoff: bool = True
    """If a scene is inside a no-fly zone, watch it from the nearest safe point instead of refusing."""
    hover_endurance_s: Seconds = 2400.0
    """Battery model: a full battery lasts this long in a hover (see dfr.dispatch.selection)."""
    climb_m_s: Seconds = 2.5
    queue_deadline_s: Seconds = 600.0
    """A launch that found no drone waits in the queue at most this long (simulated seconds from the
    call) before it ends with the reason; a drone over a scene whose moment has passed helps nobody."""
    retask: Retask = Field(default_factory=Retask)
    """Airborne re-tasking and pre-emption (a rule's ``retask: false`` opts its incidents out)."""


def _rule_problems(rules: list[Rule]) -> list[tuple[int, str]]:
    """(rule index, message) for duplicate names and for rules that earlier rules fully shadow."""
    problems: list[tuple[int, str]] = []
    first_with_name: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in first_with_name:
            problems.append(
                (i, f"duplicate rule name {rule.name!r} (also rules[{first_with_name[rule.name]}])")
            )
        else:
            first_with_name[rule.name] = i
    # Every (kind, priority) an incident can have, plus a kind dfr may add later (matched by "*" only).
    cases = [(kind, p) for kind in (*_KNOWN_KINDS, "\x00future") for p in _PRIORITIES]
    winner = {case: next((i for i, r in enumerate(rules) if r.matches(*case)), None) for case in cases}
    used = set(winner.values())
    for i, rule in enumerate(rules):
        if i not in used:
            problems.append(
                (
                    i,
                    f"rule {rule.name!r} can never apply: earlier rules already match every kind and "
                    "priority it covers (the first matching rule wins)",
                )
            )
    return problems


class Policy(_PolicyFields):
    """A validated launch policy. Build one with `load_policy`, or directly (e.g. in tests)."""

    @model_validator(mode="after")
    def _check_rules(self) -> Policy:
        problems = _rule_problems(self.rules)
        if problems:
            raise ValueError("; ".join(f"rules[{i}]: {msg}" for i, msg in problems))
        return self

    def rule_for(self, kind: str, priority: int) -> Rule | None:
        """The first rule that covers this incident, or None."""
        return next((r for r in self.rules if r.matches(kind, priority)), None)

    def queue_deadline_for(self, rule_name: str | None) -> float:
        """Seconds a launch decided by the rule so named may wait for a drone (the policy's if unset)."""
        rule = next((r for r in self.rules if r.name == rule_name), None)
        if rule is not None and rule.queue_deadline_s is not None:
            return rule.queue_deadline_s
        return self.queue_deadline_s

    def retask_allowed(self, rule_name: str | None) -> bool:
        """Whether incidents decided by the rule so named may be given a drone in the air."""
        rule = next((r for r in self.rules if r.name == rule_name), None)
        return rule is None or rule.retask


# ---------------------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True)
class Decision:
    """What to do about one incident now; ``reason`` is the sentence shown to operators and audited."""

    action: Literal["launch", "await_approval", "refuse"]
    reason: str
    rule: str | None
    approval_timeout_s: float | None
    on_timeout: str | None


def _distinct(value: float, limit: float) -> tuple[str, str]:
    """Both numbers to one decimal, or more if needed, so that a reading never shows equal to its limit."""
    for digits in (1, 2, 3):
        a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if a != b:
            return a, b
    return f"{value!r}", f"{limit!r}"


def _refuse(reason: str, rule: str | None = None) -> Decision:
    return Decision("refuse", reason, rule, None, None)


def decide(policy: Policy, *, kind: str, priority: int, wind_m_s: float) -> Decision:
    """Apply the policy to one incident under the current wind.

    The rule is looked up before the wind is checked: a kind the policy never launches for is refused as
    such, not "because of the wind", which would suggest it might launch once the wind drops. A wind
    reading that is not a finite, non-negative number is refused too, since the limit cannot be confirmed.
    """
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in _PRIORITIES:
        raise ValueError(f"priority must be an int from 1 to 5, got {priority!r}")
    kind = str(kind)
    rule = policy.rule_for(kind, priority)
    if rule is None:
        return _refuse(f"Not launching: there is no policy rule for kind {kind} priority {priority}.")
    what = f"{kind} incidents at priority {priority}"
    if rule.action == "never":
        return _refuse(f"Not launching: policy rule {rule.name!r} never launches for {what}.", rule.name)
    if not math.isfinite(wind_m_s) or wind_m_s < 0:
        return _refuse(
            f"Not launching: the wind reading ({wind_m_s!r}) is not a valid speed, so the "
            f"{policy.max_wind_m_s:.1f} m/s limit cannot be checked.",
            rule.name,
        )
    if wind_m_s > policy.max_wind_m_s:
        wind, limit = _distinct(wind_m_s, policy.max_wind_m_s)
        return _refuse(
            f"Not launching: the wind of {wind} m/s is above the {limit} m/s limit for flight.",
            rule.name,
        )
    if rule.action == "auto_launch":
        return Decision(
            "launch",
            f"Launching automatically: policy rule {rule.name!r} launches without approval for {what}.",
            rule.name,
            None,
            None,
        )
    outcome = "the drone launches anyway" if rule.on_timeout == "launch" else "the launch is declined"
    return Decision(
        "await_approval",
        f"Waiting for operator approval: policy rule {rule.name!r} requires approval for {what}; "
        f"if nobody answers within {rule.approval_timeout_s:g} s, {outcome}.",
        rule.name,
        rule.approval_timeout_s,
        rule.on_timeout,
    )


# ---------------------------------------------------------------------------------------------------------
# Loading


class PolicyError(DocumentError):
    """A policy could not be loaded; ``problems`` lists every issue found, ``path`` is the file."""

    kind = "policy"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load and validate a policy YAML; raise `PolicyError` listing every problem found.

    Nothing else escapes, whatever the file holds, so the caller needs a single ``except``.
    """
    fields, doc, _ = load_document(
        path, _PolicyFields, PolicyError, limit=MAX_POLICY_FILE_BYTES, what="policy file", keys="rules:, ..."
    )
    label = doc.label
    for i, msg in _rule_problems(fields.rules):
        doc.add(("rules", i, "name"), msg)
    if doc.problems:
        raise PolicyError(label, doc.problems)
    return Policy.model_validate(fields.model_dump())
