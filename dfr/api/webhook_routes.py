"""`POST /api/v1/webhooks/incidents`: incident reports from sensor vendors and CAD systems, signed with
a per-source HMAC secret instead of a user session (see `dfr.ingest.webhook` for the scheme)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from dfr.api.ratelimit import limit
from dfr.api.routes import (
    _REPORT_BODY,
    ClockDep,
    SettingsDep,
    StoreDep,
    _check_media_type,
    _problem,
    ingest_body,
    read_limited_body,
)
from dfr.api.schemas import ErrorBody, IngestResponse
from dfr.ingest.webhook import WebhookRefused, verify

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.post(
    "/webhooks/incidents",
    status_code=201,
    response_model=IngestResponse,
    summary="Submit an incident report, signed (HMAC-SHA256) by its source",
    description=(
        "Headers: `X-DFR-Source: <source>` and `X-DFR-Signature: t=<unix seconds>,v1=<hex>` where the hex "
        "is HMAC-SHA256 of `<t>.` followed by the raw body, keyed with the source's secret. The report's "
        "`source` field must be that source. Same answers as `POST /api/v1/incidents`."
    ),
    responses={
        200: {"model": IngestResponse, "description": "Merged into an open incident, or a repeat."},
        401: {"model": ErrorBody, "description": "Unsigned, unknown source, stale or wrong signature."},
        403: {"model": ErrorBody, "description": "The report names another source than the signer."},
        413: {"model": ErrorBody, "description": "Body larger than max_payload_bytes."},
        429: {"model": ErrorBody, "description": "Too many reports from this source."},
    },
    openapi_extra=_REPORT_BODY,
)
async def webhook_incident(
    request: Request, response: Response, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> IngestResponse:
    _check_media_type(request)
    body = await read_limited_body(request, settings.max_payload_bytes)
    now = clock()
    try:
        source = verify(
            request.headers,
            body,
            settings.webhook_secrets,
            now=now.timestamp(),
            window_s=settings.webhook_window_s,
        )
    except WebhookRefused as e:
        raise HTTPException(401, detail=_problem("unauthenticated", e.reason, e.field)) from None
    limit(request, "ingest", f"webhook:{source}", settings.ingest_rate_per_min)
    return await ingest_body(
        request, response, store, body, now=now, actor=f"webhook:{source}", settings=settings, source=source
    )
