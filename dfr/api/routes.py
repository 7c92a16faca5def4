"""The /api/v1 routes. Every handler gets the store and the settings by dependency injection.

``POST /incidents`` reads the raw body itself and hands it to `validate_report`, the same gate the MQTT
ingest uses, instead of letting FastAPI parse it: that way the two transports accept exactly the same
reports (size limit, strict JSON, time checks included), and an oversize body is refused before it is
read into memory. The OpenAPI document still shows `IncidentReport` as the body (see dfr.api.app).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from dfr.api.ratelimit import limit
from dfr.api.redact import public_entry
from dfr.api.schemas import (
    MAX_OFFSET,
    AuditPage,
    ErrorBody,
    Health,
    IncidentPage,
    IngestResponse,
    PartDown,
)
from dfr.api.sources import check_source
from dfr.auth import FeedDep, ViewerDep
from dfr.auth.deps import user_store
from dfr.domain.incidents import (
    EXAMPLE_911_REPORT,
    EXAMPLE_GUNSHOT_REPORT,
    Incident,
    IncidentReport,
    IncidentStatus,
    RejectCode,
    ReportRejected,
    validate_report,
)
from dfr.domain.reach import check_reach
from dfr.ingest.hooks import run_hooks
from dfr.live.bus import EventBus
from dfr.live.events import incident_event
from dfr.settings import Settings
from dfr.store import MAX_PAGE, Store

__all__ = ["get_clock", "get_settings", "get_store", "router"]

router = APIRouter(prefix="/api/v1")

JSON_MEDIA_TYPES = ("application/json",)


def _problem(code: str, reason: str, field: str | None = None) -> dict[str, Any]:
    """The body shape of every refusal (see dfr.api.schemas.Problem)."""
    return {"code": code, "reason": reason, "field": field, "position": None, "errors": []}


def get_store(request: Request) -> Store:
    """The store opened by the app's lifespan; 503 if the app was not started (lifespan not run)."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, detail=_problem("not_ready", "the store is not open"))
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def _too_large(size: int | str, limit: int) -> ReportRejected:
    return ReportRejected(
        f"body is {size} bytes, more than the {limit} bytes allowed", code=RejectCode.PAYLOAD_TOO_LARGE
    )


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes.

    A declared Content-Length over the limit is refused without reading anything; a chunked body is
    read only until it passes the limit, so a huge upload costs at most ``limit`` bytes of memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(declared, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(f"more than {len(body)}", limit)
    return bytes(body)


def _check_media_type(request: Request) -> None:
    # No type at all is refused too (dfr.api.forgery does so first): a cross-origin form or "simple"
    # fetch can send a body without one, and a bridge can always say application/json.
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise HTTPException(
            415,
            detail=_problem(
                "unsupported_media_type",
                f"body must be JSON (Content-Type: application/json), not {media_type or 'untyped'}",
            ),
        )


_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "A path or query parameter is invalid; `field` names it."}
}


_REPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One incident report (the same schema as the MQTT ingest topic).",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/IncidentReport"},
                "examples": {
                    "gunshot": {"summary": "Gunshot detection", "value": EXAMPLE_GUNSHOT_REPORT},
                    "911": {"summary": "911 call from CAD", "value": EXAMPLE_911_REPORT},
                },
            }
        },
    }
}


@router.post(
    "/incidents",
    status_code=201,
    response_model=IngestResponse,
    summary="Submit an incident report",
    responses={
        200: {"model": IngestResponse, "description": "Merged into an open incident, or a repeat."},
        201: {"description": "A new incident was opened."},
        403: {
            "model": ErrorBody,
            "description": "The role may not submit, or may not report as this source.",
        },
        409: {"model": ErrorBody, "description": "This (source, external_id) was stored with other values."},
        413: {"model": ErrorBody, "description": "Body larger than max_payload_bytes."},
        415: {"model": ErrorBody, "description": "Body is not JSON."},
        422: {
            "model": ErrorBody,
            "description": "Malformed JSON, invalid field, a stale/future time, or a place outside the "
            "operating area (plus area_margin_m).",
        },
    },
    openapi_extra=_REPORT_BODY,
)
async def post_incident(
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    who: FeedDep,
) -> IngestResponse:
    """Validate and store one report; answered only after it is committed.

    Idempotent on (source, external_id): repeating a request returns the same incident with
    ``duplicate: true`` and changes nothing, so clients may retry freely after a timeout.
    """
    limit(request, "ingest", who.username, settings.ingest_rate_per_min)
    _check_media_type(request)
    body = await read_limited_body(request, settings.max_payload_bytes)

    async def may_report(report: IncidentReport) -> None:
        await check_source(who, report.source, user_store(request), settings)

    return await ingest_body(
        request,
        response,
        store,
        body,
        now=clock(),
        actor=f"api:{who.username}",
        settings=settings,
        authorize=may_report,
    )


async def ingest_body(
    request: Request,
    response: Response,
    store: Store,
    body: bytes,
    *,
    now: datetime,
    actor: str,
    settings: Settings,
    source: str | None = None,
    authorize: Callable[[IncidentReport], Awaitable[None]] | None = None,
) -> IngestResponse:
    """Validate, store (committed before this returns), run the ingest hooks, and answer.

    Shared by the session-authenticated route and the signed webhook; ``source`` set: the report must
    name that source (a webhook secret is issued per source, so it may only speak for that source);
    ``authorize``: raises if the caller may not report this (see dfr.api.sources).

    A repeat of a stored (source, external_id) whose content differs is answered 409 with the fields that
    differ: the stored report stands (ids are idempotency keys), and the conflict is on the audit log for
    the operators (``report.conflicting_repeat``) instead of being acknowledged as a plain repeat.
    """
    report = validate_report(body, now=now, settings=settings)
    if source is not None and report.source != source:
        raise HTTPException(
            403,
            detail=_problem(
                "forbidden", "the report names another source than the one that signed it", "source"
            ),
        )
    area = getattr(request.app.state, "area", None)  # the service's area (absent in a bare API app)
    if area is not None:
        check_reach(report, area.operating_area, settings.area_margin_m, area.name)
    if authorize is not None:
        await authorize(report)
    result = await store.ingest(report, actor=actor, received_at=now)
    if result.conflicting_fields:
        fields = ", ".join(result.conflicting_fields)
        raise HTTPException(
            409,
            detail=_problem(
                "conflicting_repeat",
                f"report {report.external_id!r} of {report.source!r} was already stored (incident "
                f"{result.incident.id}) with other values of: {fields}. The stored report stands; this "
                "conflict is on the audit log for the operators.",
                "external_id",
            ),
        )
    # After the commit: the incident event on the live bus (publishing never waits or raises; a failing
    # subscriber is the bus's to log and count), then the hooks (the dispatcher), logged if they fail:
    # neither can turn this stored report into an error answer.
    bus: EventBus | None = getattr(request.app.state, "bus", None)
    event = incident_event(result)
    if bus is not None and event is not None:
        bus.publish(event)
    await run_hooks(getattr(request.app.state, "ingest_hooks", ()), result, "HTTP ingest")
    response.status_code = 201 if result.created else 200
    if result.created:
        response.headers["Location"] = str(request.url_for("get_incident", incident_id=result.incident.id))
    return IngestResponse(
        incident=result.incident,
        created=result.created,
        merged=result.merged,
        duplicate=result.duplicate_of_report,
        report_id=result.report_id,
    )


@router.get(
    "/incidents", response_model=IncidentPage, summary="List incidents, newest first", responses=_INVALID
)
async def list_incidents(
    _: ViewerDep,
    store: StoreDep,
    status: Annotated[IncidentStatus | None, Query(description="Only incidents in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> IncidentPage:
    incidents = await store.list_incidents(status, limit, offset)
    total = await store.count_incidents(status)
    return IncidentPage(incidents=incidents, total=total, limit=limit, offset=offset)


@router.get(
    "/incidents/{incident_id}",
    response_model=Incident,
    summary="One incident",
    responses={404: {"model": ErrorBody, "description": "No incident with this id."}, **_INVALID},
)
async def get_incident(incident_id: uuid.UUID, store: StoreDep, _: ViewerDep) -> Incident:
    incident = await store.get_incident(str(incident_id))
    if incident is None:
        raise HTTPException(
            404, detail=_problem("not_found", f"no incident with id {incident_id}", "incident_id")
        )
    return incident


@router.get("/audit", response_model=AuditPage, summary="Audit records, oldest first", responses=_INVALID)
async def get_audit(
    _: ViewerDep,
    store: StoreDep,
    subject_id: Annotated[
        str | None, Query(max_length=64, description="Only records about this subject (an incident id).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditPage:
    entries = [public_entry(e) for e in await store.audit(subject_id, limit=limit, offset=offset)]
    return AuditPage(entries=entries, limit=limit, offset=offset)


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness, database reachability and supervised parts that are down",
    responses={503: {"model": Health, "description": "The database does not answer."}},
)
async def healthz(request: Request) -> Health | JSONResponse:
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        return JSONResponse({"status": "unavailable", "database": "not open"}, status_code=503)
    try:
        await store.ping()
    except Exception as exc:  # any failure means "not healthy"; the reason helps the operator
        return JSONResponse(
            {"status": "unavailable", "database": f"{type(exc).__name__}: {exc}"[:300]}, status_code=503
        )
    supervisor = getattr(request.app.state, "supervisor", None)
    down = [PartDown.model_validate(p.as_dict()) for p in supervisor.down()] if supervisor else []
    states = {p.name: p.state for p in supervisor.parts.values()} if supervisor else {}
    bus: EventBus | None = getattr(request.app.state, "bus", None)
    failures = dict(bus.failures) if bus is not None else {}
    return Health(
        status="degraded" if down else "ok",
        database=store.backend,
        parts=down,
        supervised=states,
        subscriber_failures=failures,
    )
