"""Scenario files: a situation and its expected outcome, written by a test engineer in YAML.

A scenario names an area (and optionally a policy with overrides), which drones fly with which battery
and parameters, a timeline of incidents, injected faults, pilot actions and controller restarts, and the
expectations the run must meet. The format is documented by the models below and by the shipped files
in ``missions/scenarios/``.

`load_scenario` validates the whole file before anything starts, the way `dfr.area.load_area` does and
with the same helpers: every problem at once, each with the file, the field path and the YAML line, and
nothing but `ScenarioError` escapes. A half-checked scenario would fail minutes into a simulated flight
with a message about a drone nobody can find in the file; checking references (incident names, drone ids,
zone ids, mission states) up front turns that into a one-line error before the simulator starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dfr.area import (
    Area,
    AreaError,
    ParamName,
    ParamValue,
    load_area,
)
from dfr.dispatch.policy import Policy, PolicyError, load_policy
from dfr.domain.incidents import IncidentKind
from dfr.domain.missions import MissionState
from dfr.yamldoc import DocumentError, YamlDoc, load_document

__all__ = [
    "Expectation",
    "Fault",
    "IncidentSpec",
    "PilotAction",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "scenario_files",
]

MAX_SCENARIO_FILE_BYTES = 200_000

Ref = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
DroneId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Seconds = Annotated[float, Field(ge=0.0, le=86_400.0, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
StateName = Literal[
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
KindName = Literal["gunshot", "911", "alpr", "manual", "other"]


def _kind_name(value: Any) -> Any:
    """``kind: 911`` unquoted is an int in YAML; nobody means anything but the 911 kind by it."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Strict(BaseModel):
    """Closed and strict, as in dfr.area: a typo'd key must be an error, never a silent default."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------------------
# Vehicles


class DroneSetup(_Strict):
    """One drone of the area that takes part; the simulator starts the listed drones in this order."""

    id: DroneId
    battery_pct: float = Field(default=100.0, ge=0.0, le=100.0, allow_inf_nan=False)
    params: dict[ParamName, ParamValue] = Field(default_factory=dict)


class WindSpec(_Strict):
    north_m_s: float = Field(default=0.0, ge=-40.0, le=40.0, allow_inf_nan=False)
    east_m_s: float = Field(default=0.0, ge=-40.0, le=40.0, allow_inf_nan=False)


class ServiceOverrides(_Strict):
    """The few service settings a scenario may change (merging is what a dedup scenario tunes)."""

    merge_radius_m: float | None = Field(default=None, gt=0.0, le=10_000.0)
    merge_window_s: float | None = Field(default=None, ge=0.0, le=86_400.0)


# ---------------------------------------------------------------------------------------------------------
# Timeline


class IncidentSpec(_Strict):
    """Reports about one event. ``count`` > 1 is a burst (e.g. several 911 calls about the same shots):
    ``count`` reports, ``interval_s`` simulated seconds apart, spread up to ``spread_m`` around the point."""

    ref: Ref = Field(description="The scenario's name for this incident (expectations refer to it).")
    kind: Annotated[KindName, Field()] = "gunshot"
    lat: Latitude
    lon: Longitude
    priority: int = Field(default=1, ge=1, le=5)
    source: str = Field(default="sitl", min_length=1, max_length=64)
    via: Literal["http", "mqtt"] = "http"
    count: int = Field(default=1, ge=1, le=100)
    interval_s: Seconds = 0.0
    spread_m: float = Field(default=0.0, ge=0.0, le=5000.0, allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" in data:
            return {**data, "kind": _kind_name(data["kind"])}
        return data


class Fault(_Strict):
    """An injected fault (simulator backend only): ``type`` says which, the other fields its arguments."""

    type: Literal["link", "gps", "battery", "motor_failure", "wind"]
    drone: DroneId | None = None
    up: bool | None = Field(default=None, description="link: restore (true) or cut (false).")
    lost: bool | None = Field(default=None, description="gps: lose (true) or regain (false).")
    pct: float | None = Field(default=None, ge=0.0, le=100.0, allow_inf_nan=False)
    north_m_s: float | None = Field(default=None, ge=-40.0, le=40.0, allow_inf_nan=False)
    east_m_s: float | None = Field(default=None, ge=-40.0, le=40.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _arguments(self) -> Fault:
        need: dict[str, tuple[str, ...]] = {
            "link": ("drone", "up"),
            "gps": ("drone", "lost"),
            "battery": ("drone", "pct"),
            "motor_failure": ("drone",),
            "wind": ("north_m_s", "east_m_s"),
        }
        missing = [n for n in need[self.type] if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a {self.type} fault needs {', '.join(missing)}")
        return self


PilotCommandName = Literal["take_control", "release", "hold", "goto", "orbit", "altitude", "return", "land"]


class PilotAction(_Strict):
    """A pilot's action through the public API: a mission action (approve, decline, recall: needs
    ``incident``) or a drone command (needs ``drone``; goto/orbit take ``lat``/``lon``)."""

    action: Literal["approve", "decline", "recall"] | PilotCommandName
    incident: Ref | None = None
    drone: DroneId | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    alt_m: float | None = Field(default=None, allow_inf_nan=False)
    radius_m: float | None = Field(default=None, allow_inf_nan=False)
    expect_status: int = Field(default=200, ge=100, le=599, description="The HTTP status the API must give.")

    @model_validator(mode="after")
    def _arguments(self) -> PilotAction:
        if self.action in ("approve", "decline", "recall"):
            if self.incident is None:
                raise ValueError(f"{self.action} needs 'incident' (the ref of the incident whose mission)")
        elif self.drone is None:
            raise ValueError(f"the {self.action} command needs 'drone'")
        if self.action in ("goto", "orbit") and (self.lat is None or self.lon is None):
            raise ValueError(f"{self.action} needs 'lat' and 'lon'")
        return self


class Restart(_Strict):
    """Stop the controller (the drones keep flying their last command) and start it again."""

    down_s: Seconds = Field(default=5.0, description="Simulated seconds the controller stays down.")


class Trigger(_Strict):
    """Wait until the mission of ``incident`` has reached ``state`` (or any state after it)."""

    incident: Ref
    state: StateName


class Step(_Strict):
    """One timeline entry: when (``at_s`` simulated seconds from the start, or ``after`` a mission state,
    plus ``delay_s``; neither: right after the previous step), and exactly one thing to do."""

    at_s: Seconds | None = None
    after: Trigger | None = None
    delay_s: Seconds = 0.0
    incident: IncidentSpec | None = None
    fault: Fault | None = None
    pilot: PilotAction | None = None
    restart: Restart | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [n for n in ("incident", "fault", "pilot", "restart") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a step does exactly one thing: give one of incident, fault, pilot, restart"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.at_s is not None and self.after is not None:
            raise ValueError("give at_s or after, not both")
        return self

    @property
    def what(self) -> str:
        for name in ("incident", "fault", "pilot", "restart"):
            if getattr(self, name) is not None:
                return name
        return "?"


# ---------------------------------------------------------------------------------------------------------
# Expectations


class OnSceneWithin(_Strict):
    incident: Ref
    seconds: float = Field(gt=0.0, allow_inf_nan=False, description="Simulated seconds from launch.")


class MissionStateIs(_Strict):
    incident: Ref
    state: StateName | list[StateName]
    reason_contains: str | None = None


class EventSeen(_Strict):
    """The incident's mission passed through ``state`` (optionally with a reason containing a text)."""

    incident: Ref
    state: StateName
    reason_contains: str | None = None
    actor: str | None = None


class StateNever(_Strict):
    incident: Ref
    state: StateName


class LandedAtDock(_Strict):
    drone: DroneId
    within_m: float = Field(default=15.0, gt=0.0, allow_inf_nan=False)


class IncidentCount(_Strict):
    """``incidents`` incidents in the store for the ``reports`` reports posted (merging, dedup)."""

    incidents: int = Field(ge=0)
    reports: int | None = Field(default=None, ge=0)


class MissionCount(_Strict):
    count: int = Field(ge=0)
    state: StateName | None = None


class MaxAltitude(_Strict):
    metres: float = Field(gt=0.0, allow_inf_nan=False, description="Above home, every drone, whole run.")


class RouteBends(_Strict):
    """The incident's planned route has more than two points and keeps out of ``zone``."""

    incident: Ref
    zone: Ref
    min_points: int = Field(default=3, ge=2)


class StandoffUsed(_Strict):
    incident: Ref
    zone: Ref | None = None


class FlightTimeWithin(_Strict):
    incident: Ref
    seconds: float = Field(gt=0.0, allow_inf_nan=False)


class DroneUsed(_Strict):
    incident: Ref
    drone: DroneId


class AuditHas(_Strict):
    action: str = Field(min_length=1, max_length=64)
    actor: str | None = None
    count_at_least: int = Field(default=1, ge=1)


class _Empty(_Strict):
    """For checks without arguments: ``- never_in_no_fly_zone: {}``."""


class Expectation(_Strict):
    """Exactly one check per entry, written as a one-key mapping, e.g. ``- on_scene_within: {...}``."""

    on_scene_within: OnSceneWithin | None = None
    mission_state: MissionStateIs | None = None
    event: EventSeen | None = None
    state_never: StateNever | None = None
    never_in_no_fly_zone: _Empty | None = None
    landed_at_dock: LandedAtDock | None = None
    incidents: IncidentCount | None = None
    no_record_lost: _Empty | None = None
    mission_count: MissionCount | None = None
    max_altitude: MaxAltitude | None = None
    route_bends: RouteBends | None = None
    standoff: StandoffUsed | None = None
    flight_time_within: FlightTimeWithin | None = None
    drone_used: DroneUsed | None = None
    audit: AuditHas | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Expectation:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "each expectation is one check, e.g. '- on_scene_within: {incident: g1, seconds: 120}'"
                + (
                    f" (got {', '.join(given)})"
                    if given
                    else f" (one of: {', '.join(type(self).model_fields)})"
                )
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def args(self) -> Any:
        return getattr(self, self.kind)


# ---------------------------------------------------------------------------------------------------------
# The file


class ScenarioFile(_Strict):
    """The scenario YAML as written (paths relative to the scenario file)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    description: str = Field(min_length=1, max_length=4000)
    area: str = Field(min_length=1, max_length=1000)
    policy: str | None = Field(default=None, min_length=1, max_length=1000)
    policy_overrides: dict[str, Any] = Field(default_factory=dict)
    settings: ServiceOverrides = Field(default_factory=lambda: ServiceOverrides())
    speed: float = Field(default=20.0, ge=1.0, le=100.0, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    drones: list[DroneSetup] | None = Field(default=None, min_length=1)
    sim_params: dict[ParamName, ParamValue] = Field(default_factory=dict)
    wind: WindSpec | None = None
    timeout_s: float = Field(default=1200.0, gt=0.0, le=14_400.0, allow_inf_nan=False)
    settle_s: Seconds = Field(default=0.0, description="Simulated seconds to keep running after the end.")
    requires: list[Literal["faults", "commands_api", "mqtt"]] = Field(
        default_factory=list,
        description="What the run needs: a backend that cannot inject faults, or a run without a broker, "
        "skips the scenario and says why (commands_api is informational).",
    )
    timeline: list[Step] = Field(min_length=1)
    expect: list[Expectation] = Field(min_length=1)


class Scenario(BaseModel):
    """A validated scenario, with its area and policy loaded and its paths resolved."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    path: Path
    spec: ScenarioFile
    area_path: Path
    area: Area
    policy_path: Path
    policy: Policy

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def drone_ids(self) -> list[str]:
        """The drones that take part, in simulator order (system id 1, 2, ...)."""
        if self.spec.drones is None:
            return [d.id for d in self.area.drones]
        return [d.id for d in self.spec.drones]

    def incident_refs(self) -> list[str]:
        return [s.incident.ref for s in self.spec.timeline if s.incident is not None]

    def report_count(self) -> int:
        return sum(s.incident.count for s in self.spec.timeline if s.incident is not None)


class ScenarioError(DocumentError):
    """A scenario could not be loaded; ``problems`` lists every issue, each with file, field and line."""

    kind = "scenario"


DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "missions" / "policies" / "default.yaml"


def _resolve(base: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else (base / p)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate one scenario file (and its area and policy); raise `ScenarioError` listing
    every problem found."""
    spec, doc, scn_path = load_document(
        path,
        ScenarioFile,
        ScenarioError,
        limit=MAX_SCENARIO_FILE_BYTES,
        what="scenario file",
        keys="name:, area:, timeline:, ...",
    )
    label = doc.label
    if doc.problems:
        raise ScenarioError(label, doc.problems)

    base = scn_path.parent
    area_path = _resolve(base, spec.area)
    area: Area | None = None
    try:
        area = load_area(area_path)
    except AreaError as e:
        first = e.problems[0] if e.problems else None
        doc.add(("area",), f"area {spec.area!r} does not load: {first or e}")
    policy_path = _resolve(base, spec.policy) if spec.policy is not None else DEFAULT_POLICY
    policy: Policy | None = None
    try:
        policy = load_policy(policy_path)
    except PolicyError as e:
        first = e.problems[0] if e.problems else None
        doc.add(("policy",), f"policy {str(policy_path)!r} does not load: {first or e}")
    if policy is not None and spec.policy_overrides:
        policy = _override_policy(doc, policy, spec.policy_overrides)
    if area is not None:
        _check_references(doc, spec, area)
    if doc.problems or area is None or policy is None:
        raise ScenarioError(label, doc.problems)
    return Scenario(
        path=scn_path, spec=spec, area_path=area_path, area=area, policy_path=policy_path, policy=policy
    )


def _override_policy(doc: YamlDoc, policy: Policy, overrides: dict[str, Any]) -> Policy | None:
    """The policy with the scenario's overrides (e.g. a short loiter so that runs stay quick)."""
    for key in overrides:
        if key not in Policy.model_fields:
            allowed = ", ".join(Policy.model_fields)
            doc.add(("policy_overrides", key), f"unknown policy field {key!r} (one of: {allowed})")
    if doc.problems:
        return None
    try:
        return Policy.model_validate({**policy.model_dump(), **overrides})
    except ValidationError as e:
        for err in e.errors(include_url=False):
            loc = ("policy_overrides", *err["loc"])
            doc.add(loc, f"{err['msg'].removeprefix('Value error, ')} (got {err['input']!r})")
        return None


def _check_references(doc: YamlDoc, spec: ScenarioFile, area: Area) -> None:
    """Names used across the file must exist: drones in the area, incidents defined before use, zones."""
    area_drones = [d.id for d in area.drones]
    taking_part = [d.id for d in spec.drones] if spec.drones is not None else area_drones
    for i, d in enumerate(spec.drones or []):
        if d.id not in area_drones:
            doc.add(
                ("drones", i, "id"),
                f"no drone {d.id!r} in area {area.name!r} (drones: {', '.join(area_drones)})",
            )
    if len(set(taking_part)) != len(taking_part):
        doc.add(("drones",), "a drone is listed twice")
    zones = {z.id for z in area.zones}
    defined: set[str] = set()
    for i, step in enumerate(spec.timeline):
        loc: tuple[str | int, ...] = ("timeline", i)
        if step.after is not None and step.after.incident not in defined:
            doc.add(
                (*loc, "after", "incident"),
                _unknown_ref(step.after.incident, defined, "earlier in the timeline"),
            )
        if step.incident is not None:
            if step.incident.ref in defined:
                doc.add((*loc, "incident", "ref"), f"incident ref {step.incident.ref!r} is used twice")
            defined.add(step.incident.ref)
        drone = (step.fault.drone if step.fault else None) or (step.pilot.drone if step.pilot else None)
        if drone is not None and drone not in taking_part:
            doc.add(
                (*loc, step.what, "drone"),
                f"drone {drone!r} does not take part (drones: {', '.join(taking_part)})",
            )
        if step.pilot is not None and step.pilot.incident is not None and step.pilot.incident not in defined:
            doc.add(
                (*loc, "pilot", "incident"),
                _unknown_ref(step.pilot.incident, defined, "earlier in the timeline"),
            )
    for i, exp in enumerate(spec.expect):
        args = exp.args
        loc = ("expect", i, exp.kind)
        ref = getattr(args, "incident", None)
        if ref is not None and ref not in defined:
            doc.add((*loc, "incident"), _unknown_ref(ref, defined, "in the timeline"))
        drone = getattr(args, "drone", None)
        if drone is not None and drone not in taking_part:
            doc.add((*loc, "drone"), f"drone {drone!r} does not take part (drones: {', '.join(taking_part)})")
        zone = getattr(args, "zone", None)
        if zone is not None and zone not in zones:
            doc.add(
                (*loc, "zone"), f"no zone {zone!r} in area {area.name!r} (zones: {', '.join(sorted(zones))})"
            )


def _unknown_ref(ref: str, defined: set[str], where: str) -> str:
    known = ", ".join(sorted(defined)) or "none"
    return f"no incident with ref {ref!r} {where} (defined: {known})"


def scenario_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files given, plus every ``*.yaml``/``*.yml`` directly inside directories given, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            out.append(p)
    return out


assert {k.value for k in IncidentKind} == {"gunshot", "911", "alpr", "manual", "other"}
assert {s.value for s in MissionState} == set(StateName.__args__)  # type: ignore[attr-defined]
