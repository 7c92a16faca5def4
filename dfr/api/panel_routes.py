"""Serves the web panel: ``/`` (the page), ``/panel/...`` (its modules, styles and the map library)
and ``GET /api/v1/panel/config`` (what the page needs to know about this installation).

The page and its files are public (they hold no data); everything they show is read through the API
with the signed-in session, and every call is checked on the server. The page is sent with a strict
Content-Security-Policy: scripts only from this origin, no inline scripts, no framing. A panel that
commands aircraft must not run script injected through an incident's address or note, nor be framed
by another page that tricks a pilot into clicking.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.staticfiles import PathLike
from starlette.types import Scope

from dfr.api.routes import _problem
from dfr.auth import READERS, require_role
from dfr.panel import STATIC_DIR
from dfr.settings import Settings

__all__ = ["PanelConfig", "content_security_policy", "install_panel", "router"]

router = APIRouter(tags=["panel"])

LEAFLET_JS: Final = STATIC_DIR / "vendor" / "leaflet" / "leaflet.js"


class PanelConfig(BaseModel):
    area_name: str | None = Field(description="Name of the operating area the service flies.")
    tile_url: str | None = Field(description="Base-map tile URL template; null: vector layers only.")
    tile_attribution: str = Field(description="Attribution to show for those tiles.")
    map_library: bool = Field(description="The map library is installed (make panel-assets).")


def _tile_source(tile_url: str | None) -> str:
    """The CSP source for the tile server: its origin, with Leaflet's ``{s}`` subdomains as a wildcard."""
    if not tile_url:
        return ""
    parts = urlsplit(tile_url.replace("{s}", "x-subdomain"))
    host = (parts.hostname or "").replace("x-subdomain", "*")
    if not host:
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f" {parts.scheme}://{host}{port}"


def content_security_policy(settings: Settings) -> str:
    """Same origin for everything, tiles from the configured server; inline styles for Leaflet's layout."""
    return (
        "default-src 'self'; script-src 'self'; connect-src 'self'; "
        f"img-src 'self' data: blob:{_tile_source(settings.panel_tile_url)}; "
        "style-src 'self' 'unsafe-inline'; media-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@router.get("/", include_in_schema=False)
async def index(settings: SettingsDep) -> FileResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():  # a broken install, not a user error
        raise HTTPException(503, detail=_problem("not_ready", "the panel's files are not installed"))
    return FileResponse(
        page,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": content_security_policy(settings),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


@router.get("/login", include_in_schema=False)
async def login_page() -> RedirectResponse:
    """The sign-in form is part of the page (shown whenever there is no valid session)."""
    return RedirectResponse("/", status_code=303)


@router.get(
    "/api/v1/panel/config",
    response_model=PanelConfig,
    summary="Panel settings: base-map tiles, area name",
    dependencies=[Depends(require_role(*READERS))],
)
async def panel_config(request: Request, settings: SettingsDep) -> PanelConfig:
    area = getattr(request.app.state, "area", None)
    return PanelConfig(
        area_name=getattr(area, "name", None),
        tile_url=settings.panel_tile_url,
        tile_attribution=settings.panel_tile_attribution,
        map_library=LEAFLET_JS.is_file(),
    )


class _PanelFiles(StaticFiles):
    """Static files that browsers revalidate (``no-cache``): after an upgrade the page and its modules
    must not mix versions, and the files are small."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_panel(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Add the page, its files and its config route to `app`."""
    app.include_router(router)
    app.mount("/panel", _PanelFiles(directory=static_dir), name="panel")
