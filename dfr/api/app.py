"""The HTTP API application: `create_app` builds a FastAPI app around one `Store`.

The store's lifetime is the app's (FastAPI lifespan): the app opens it from ``settings.database_url``
at startup and closes it at shutdown, unless a store is passed in, in which case the caller owns it
(tests, or a process that shares one store between the API and the MQTT ingest).

All refusals share one body shape, ``{"detail": {"code", "reason", "field", ...}}``, whether they come
from the report gate, from FastAPI's parameter validation or from a 404, so a client needs one parser.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

import dfr
from dfr.api.auth_routes import router as auth_router
from dfr.api.body_limit import BodyLimitMiddleware
from dfr.api.docs_routes import install_docs
from dfr.api.forgery import ForgeryMiddleware
from dfr.api.routes import router
from dfr.api.webhook_routes import router as webhook_router
from dfr.domain.incidents import IncidentReport, RejectCode, ReportRejected
from dfr.settings import Settings
from dfr.store import MergePolicy, Store

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Incident ingest for the dfr Drone-as-First-Responder controller.

Sensors, CAD bridges and operators submit **incident reports**; dfr stores each one, merges reports of
the same event into one incident, and keeps an append-only audit log. The same report schema is accepted
on the MQTT ingest topic.
"""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the API. ``store`` given: used as is and not closed; ``clock`` pins "now" (tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store or await Store.open(
            settings.database_url,
            policy=MergePolicy(radius_m=settings.merge_radius_m, window_s=settings.merge_window_s),
        )
        try:
            yield
        finally:
            active: Store = app.state.store
            app.state.store = None
            app.state.users = None  # accounts live in that store (dfr.auth.deps.user_store)
            if owned:
                await active.close()

    app = FastAPI(
        title="dfr",
        version=dfr.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN; ours from packaged files (dfr.api.docs_routes)
        redoc_url=None,
    )
    # Both refuse before any route runs or any body is read; the body cap is the outermost layer.
    app.add_middleware(ForgeryMiddleware, trusted_origins=settings.trusted_origins)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_docs:
        install_docs(app)
    app.state.settings = settings
    app.state.clock = clock or _utcnow
    app.state.store = None
    app.state.users = None
    app.state.ingest_hooks = []  # awaited after each committed report (the dispatcher registers here)
    app.include_router(router)
    app.include_router(auth_router)
    app.include_router(webhook_router)
    app.add_exception_handler(ReportRejected, _report_rejected)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _store_failed)
    _document_report_schema(app)
    return app


async def _report_rejected(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ReportRejected):  # registered for this class only
        raise exc
    status = 413 if exc.code is RejectCode.PAYLOAD_TOO_LARGE else 422
    return JSONResponse({"detail": exc.to_dict()}, status_code=status)


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Refusals raised with a plain string (by Starlette or FastAPI themselves: unknown path, unreadable
    body, wrong method) get the same body shape as ours; ours (a dict detail) pass through unchanged."""
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        raise exc
    detail: Any = exc.detail
    if not isinstance(detail, dict):
        code = _CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = {"code": code, "reason": str(detail), "field": None, "position": None, "errors": []}
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _store_failed(request: Request, exc: Exception) -> JSONResponse:
    """The database refused (full disk, read-only file, server gone): say so plainly, as a 503 the client
    may retry. Nothing was half-written: every write is one transaction, rolled back on the error."""
    orig = getattr(exc, "orig", None)
    why = str(orig or exc).strip().splitlines()[0][:300] if str(orig or exc).strip() else type(exc).__name__
    log.error("store error on %s %s: %s", request.method, request.url.path, why)
    problem: dict[str, Any] = {
        "code": "store_unavailable",
        "reason": f"the database refused the request ({why}); nothing was changed, retry later",
        "field": None,
        "position": None,
        "errors": [],
    }
    return JSONResponse({"detail": problem}, status_code=503, headers={"Retry-After": "5"})


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    """Path and query parameter errors, reshaped like report rejections (the field named first)."""
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        raise exc
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        field = ".".join(loc[1:] if loc and loc[0] in ("path", "query", "header", "body") else loc)
        errors.append(
            {"field": field or "(request)", "message": str(err.get("msg", "")), "type": err.get("type")}
        )
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    problem = {
        "code": "invalid_request",
        "reason": f"{first['message']}{more}",
        "field": first["field"],
        "position": None,
        "errors": errors,
    }
    return JSONResponse({"detail": problem}, status_code=422)


def _document_report_schema(app: FastAPI) -> None:
    """Add `IncidentReport` (and the models it uses) to the OpenAPI components.

    The ingest route reads its body raw (see dfr.api.routes), so FastAPI does not know the body model;
    its requestBody refers to ``#/components/schemas/IncidentReport``, which is supplied here.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        report = IncidentReport.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in report.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["IncidentReport"] = report
        _document_refusals(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_REFUSALS = {
    "401": "Not signed in, or the session ended (see /api/v1/auth/login).",
    "403": "Signed in, but the role may not do this.",
    "422": "A field, parameter or the body is invalid; `field` names it.",
    "429": "Too many requests from this caller; retry after the Retry-After seconds.",
    "503": "The service is starting or a part it needs is not running.",
}
_CROSS_ORIGIN = "A page of another origin tried to use the sign-in cookie (Origin / Sec-Fetch-Site)."
_PUBLIC = ("/api/v1/healthz", "/api/v1/auth/login", "/api/v1/webhooks/incidents")


def _document_refusals(schema: dict[str, Any]) -> None:
    """Say in the document what every route may answer besides success, in the one refusal shape.

    The answers come from shared layers (sign-in and roles, parameter validation, rate limits, start-up),
    so listing them on each route by hand would be repetitive and would drift. FastAPI's own 422 schema
    (HTTPValidationError) is replaced by `ErrorBody`, because that is what `_request_invalid` sends.
    """
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        from dfr.api.schemas import ErrorBody

        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in body.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["ErrorBody"] = body
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            codes = dict(_REFUSALS)
            if path in _PUBLIC:
                codes.pop("401")
                codes.pop("403")
            if "{" in path:
                codes["404"] = "Nothing with this id."
            if method in ("post", "put", "patch", "delete"):
                codes["409"] = "Not possible in the current state of the thing it acts on."
                codes["403"] = codes.get("403", _CROSS_ORIGIN)
                codes["413"] = "The body is larger than this route or the service allows; it was not read."
                codes["415"] = "The body is not of the type this route takes (JSON; WHEP: application/sdp)."
            if "requestBody" in op:
                codes["400"] = "The body could not be read at all (e.g. not UTF-8)."
            for code, description in codes.items():
                existing = responses.get(code)
                if existing is None or code == "422":
                    responses[code] = {
                        "description": (existing or {}).get("description", description),
                        "content": {"application/json": {"schema": ref}},
                    }
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
