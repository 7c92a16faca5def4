"""Interactive API documentation at ``/docs`` from files shipped with dfr, never from a CDN.

FastAPI's default page loads Swagger UI's script and fonts from a public CDN, which an RTCC's closed
network cannot reach (and which would let a third party run script next to a signed-in panel cookie).
``make panel-assets`` copies Swagger UI from npm (``swagger-ui-dist``) next to the panel's other vendored
files; this module serves exactly those files. ReDoc (also CDN-only) is not offered. ``DFR_API_DOCS=false``
turns the page off; ``/openapi.json`` is always served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["install_docs"]

ASSETS: Final = Path(__file__).resolve().parent.parent / "panel" / "static" / "vendor" / "swagger-ui"
_FILES: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install_docs(app: FastAPI, assets: Path = ASSETS) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not (assets / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<p>API documentation files are missing: run <code>make panel-assets</code>. "
                'The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p>',
                status_code=503,
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="dfr API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = _FILES.get(name)  # only these names: nothing from the request reaches the file system
        if media_type is None or not (assets / name).is_file():
            raise HTTPException(404, detail=f"no documentation file {name!r}")
        return FileResponse(assets / name, media_type=media_type)
