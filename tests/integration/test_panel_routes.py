"""The panel's routes without a browser: the page and its files are served (with a strict CSP), the
config needs a sign-in, and nothing outside the panel's directory can be read through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dfr.api import create_app
from dfr.api.panel_routes import install_panel
from dfr.auth import Role
from dfr.settings import Settings
from tests.support.auth import FEED, VIEWER, add_user, login_headers

TILES = "https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/panel.sqlite",
        panel_tile_url=TILES,
        panel_tile_attribution="© example",
    )
    app = create_app(settings)
    install_panel(app)
    async with app.router.lifespan_context(app):
        await add_user(app.state.store, *VIEWER, Role.VIEWER)
        await add_user(app.state.store, *FEED, Role.FEED)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dfr.test") as c:
            yield c


async def test_page_and_modules_are_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="/panel/app.js"' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "https://*.tiles.example.org:8443" in csp  # the configured tiles, and only those
    r = await client.get("/panel/app.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["cache-control"] == "no-cache"
    for path in ("/panel/../panel_routes.py", "/panel/%2e%2e/__init__.py", "/panel/nope.js"):
        assert (await client.get(path)).status_code == 404, path
    r = await client.get("/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


async def test_config_needs_a_reader(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/panel/config")
    assert r.status_code == 401 and r.json()["detail"]["code"] == "unauthenticated"
    feed = await login_headers(client, *FEED)
    assert (await client.get("/api/v1/panel/config", headers=feed)).status_code == 403
    viewer = await login_headers(client, *VIEWER)
    r = await client.get("/api/v1/panel/config", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tile_url"] == TILES and body["tile_attribution"] == "© example"
    assert body["area_name"] is None  # no area on this bare app
