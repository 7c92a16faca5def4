"""Response bodies of the HTTP API (the request body is `dfr.domain.incidents.IncidentReport`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dfr.domain.incidents import Incident
from dfr.store import AuditEntry
from dfr.supervision import PartState

__all__ = ["AuditPage", "ErrorBody", "FieldProblem", "Health", "IncidentPage", "IngestResponse", "Problem"]


class IngestResponse(BaseModel):
    """The incident a report ended up in, and how: exactly one of created / merged / duplicate is true."""

    incident: Incident
    created: bool = Field(description="A new incident was opened for this report (HTTP 201).")
    merged: bool = Field(description="The report joined an existing open incident (HTTP 200).")
    duplicate: bool = Field(
        description="This (source, external_id) was already stored; nothing changed (HTTP 200)."
    )
    report_id: str = Field(description="Id of the stored report (the original one for a duplicate).")


class IncidentPage(BaseModel):
    incidents: list[Incident]
    total: int = Field(description="Incidents matching the filter, over all pages.")
    limit: int
    offset: int


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    limit: int
    offset: int


class PartDown(BaseModel):
    name: str = Field(
        description="The supervised part (a named background task).", examples=["fleet-discovery"]
    )
    state: PartState = Field(description="restarting (failed, back-off running) or failed (given up).")
    restarts: int
    last_error: str | None
    since: float = Field(description="Unix time of the last state change.")


class Health(BaseModel):
    status: str = Field(description="ok, degraded (a part is down) or unavailable.", examples=["ok"])
    database: str = Field(description="Backend in use, or why it is unavailable.", examples=["sqlite"])
    parts: list[PartDown] = Field(default_factory=list, description="Supervised parts that are down.")
    supervised: dict[str, PartState] = Field(
        default_factory=dict,
        description="Every supervised part (a named background task) and its state.",
        examples=[{"fleet-discovery": "running", "mqtt-ingest": "restarting"}],
    )
    subscriber_failures: dict[str, int] = Field(
        default_factory=dict,
        description="Live events a subscriber of the event bus failed on (logged, skipped), by subscriber, "
        "since start.",
        examples=[{"mqtt-out": 0}],
    )


class FieldProblem(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """Why a request was refused; ``code`` is stable for programs, ``reason`` is for people."""

    code: str = Field(examples=["invalid_field"])
    reason: str = Field(examples=["Input should be less than or equal to 90"])
    field: str | None = Field(default=None, examples=["location.lat"])
    position: int | None = Field(default=None, description="Character offset in the body, when known.")
    errors: list[FieldProblem] = Field(default_factory=list)


MAX_OFFSET = 1_000_000_000
"""Paging offsets beyond this are refused (422): databases keep 64-bit offsets, and nobody pages this far."""


class ErrorBody(BaseModel):
    detail: Problem
