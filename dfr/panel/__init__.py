"""The pilot and RTCC web panel: static files only (``static/``), served by `dfr.api.panel_routes`.

The page is plain ES modules plus Leaflet, which ``make panel-assets`` copies from npm into
``static/vendor/leaflet`` (nothing is fetched from a CDN at run time: RTCC networks are often closed).
Everything the page shows comes from the same public API other RTCC software uses, so the panel has
no powers of its own; the server checks the role of every call.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Where index.html, the modules, the style sheet and the vendored map library live."""

__all__ = ["STATIC_DIR"]
