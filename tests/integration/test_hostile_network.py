"""A hostile client on the RTCC network (issue 15): forwarded headers, huge bodies, forged requests.

Run against the real HTTP server (uvicorn, as `dfr serve` runs it) where the transport matters: who the
peer is, and whether a body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from dfr.api import create_app
from dfr.api.ratelimit import RateLimiter
from dfr.auth import Role
from dfr.service import http_server, running_service
from dfr.settings import Settings
from tests.integration.test_service_e2e import AREA, POLICY
from tests.support.auth import PILOT, add_user

API = "/api/v1"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[FastAPI, str]]:
    """The API behind uvicorn (its lifespan opens the store), with a pilot account; yields (app, URL)."""
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/net.sqlite", **settings))  # type: ignore[arg-type]
    async with http_server(app) as url:
        await add_user(app.state.store, *PILOT, Role.PILOT)
        app.state.rate_limiter = RateLimiter(clock=lambda: 0.0)  # no refill during a test
        yield app, url


@contextlib.asynccontextmanager
async def simless_service(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    """The whole service (every router: panel, video, live, commands), no drone connected."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/svc.sqlite", area=str(AREA), policy=str(POLICY),
        mavlink_base_port=47200, video_evidence_dir=str(tmp_path / "evidence"),
    )  # fmt: skip
    async with running_service(settings) as svc, http_server(svc.app) as url:
        yield svc.app, url


async def wrong_passwords(url: str, forwarded_for: list[str]) -> list[int]:
    codes = []
    async with httpx.AsyncClient(base_url=url) as c:
        for hop in forwarded_for:
            r = await c.post(
                f"{API}/auth/login",
                json={"username": PILOT[0], "password": "wrong-password"},
                headers={"X-Forwarded-For": hop},
            )
            codes.append(r.status_code)
    return codes


async def test_forwarded_for_from_an_untrusted_peer_does_not_change_the_rate_limit_key(
    tmp_path: Path,
) -> None:
    """No proxy is trusted (the default): a new X-Forwarded-For per attempt buys no fresh allowance."""
    async with serving(tmp_path, login_rate_per_min=3) as (_, url):
        codes = await wrong_passwords(url, [f"10.9.0.{i}" for i in range(1, 6)])
    assert codes == [401, 401, 401, 429, 429], codes


async def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    """Behind a configured proxy each client has its own allowance, and entries a client wrote itself
    (left of the proxy's own) do not count."""
    async with serving(tmp_path, login_rate_per_min=3, trusted_proxies=["127.0.0.0/8"]) as (_, url):
        spoofed = await wrong_passwords(url, [f"10.9.0.{i}, 10.0.0.8" for i in range(1, 5)])
        other = await wrong_passwords(url, ["10.0.0.9"])
        async with httpx.AsyncClient(base_url=url) as c:  # TLS ends at the proxy: the cookie is Secure
            r = await c.post(
                f"{API}/auth/login",
                json={"username": PILOT[0], "password": PILOT[1]},
                headers={"X-Forwarded-For": "10.0.0.10", "X-Forwarded-Proto": "https"},
            )
    assert spoofed == [401, 401, 401, 429], spoofed  # always 10.0.0.8, whatever it prepends
    assert other == [401]
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower(), r.headers


# ------------------------------------------------------------------------------------------ body sizes
MiB = 1024 * 1024


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document, path parameters filled with plausible
    values, and the pages outside it (panel, viewer, docs, an unknown path), with GET and POST."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{(incident|mission|session)_id\}", "6f1c1f0e-3a55-4d61-9a4a-1d0f3a7e0a01", path)
        concrete = re.sub(r"\{[^}]+\}", "cv-1", concrete)
        out += [(m.upper(), concrete) for m in operations]
    for page in ("/", "/panel/app.js", "/video/cv-1", "/docs", "/openapi.json", "/no/such/page"):
        out += [("GET", page), ("POST", page)]
    return out


async def first_answer(port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send a request head (and some body) on a raw connection and return the status line of the answer,
    without ever sending the rest of the body the head announced."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.readline()
    finally:
        writer.close()


async def test_a_20_mib_body_is_refused_unread_on_every_route(tmp_path: Path) -> None:
    async with simless_service(tmp_path) as (app, url):
        port = int(url.rsplit(":", 1)[1])
        routes = every_route(app)
        assert len(routes) > 30 and ("POST", "/api/v1/auth/login") in routes, routes
        for method, path in routes:
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {20 * MiB}\r\n\r\n"
            ).encode()
            status = await first_answer(port, head, b'{"username": "')  # 14 of the 20 MiB announced
            assert status.startswith(b"HTTP/1.1 413"), (method, path, status)


async def test_a_chunked_body_is_refused_once_past_the_cap(tmp_path: Path) -> None:
    """No Content-Length: the service reads up to its cap (1 MiB), answers 413 and stops reading."""
    async with simless_service(tmp_path) as (_, url):
        port = int(url.rsplit(":", 1)[1])
        chunk = b"x" * 65536
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        head = (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        status = await first_answer(port, head, framed * 20)  # 1.25 MiB sent of an endless body
        assert status.startswith(b"HTTP/1.1 413"), status


# ------------------------------------------------------------------------------------------ forgery
@contextlib.asynccontextmanager
async def cookie_client(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/csrf.sqlite"))
    async with app.router.lifespan_context(app):
        await add_user(app.state.store, *PILOT, Role.PILOT)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dfr.test") as c:
            r = await c.post(f"{API}/auth/login", json={"username": PILOT[0], "password": PILOT[1]})
            assert r.status_code == 200 and c.cookies.get("dfr_session")  # the panel's way: the cookie
            yield app, c


def gunshot(external_id: str) -> bytes:
    from datetime import UTC, datetime

    from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT

    body = dict(EXAMPLE_GUNSHOT_REPORT, external_id=external_id, reported_at=datetime.now(UTC).isoformat())
    return json.dumps(body).encode()


async def test_a_cross_origin_cookie_post_is_refused(tmp_path: Path) -> None:
    async with cookie_client(tmp_path) as (app, c):
        evil = [
            {"Origin": "http://intranet.dfr.test", "Sec-Fetch-Site": "same-site"},  # another host, same site
            {"Origin": "http://dfr.test:8080"},  # another port on the same machine
            {"Origin": "null"},  # sandboxed frame, file: page
            {"Sec-Fetch-Site": "cross-site"},
        ]
        for headers in evil:
            r = await c.post(
                f"{API}/incidents",
                content=gunshot("csrf-1"),
                headers=headers | {"Content-Type": "application/json"},
            )
            assert r.status_code == 403 and r.json()["detail"]["code"] == "cross_origin", (headers, r.text)
        # the form a forged page would send: no JSON type (and before the fix: accepted, and a launch)
        r = await c.post(
            f"{API}/incidents", content=gunshot("csrf-2"), headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 415, r.text
        r = await c.post(f"{API}/incidents", content=gunshot("csrf-3"))
        assert r.status_code == 415, r.text
        assert await app.state.store.count_incidents(None) == 0  # nothing stored

        # the panel itself (same origin) and a bearer-token integration are not affected
        same = {
            "Origin": "http://dfr.test",
            "Sec-Fetch-Site": "same-origin",
            "Content-Type": "application/json",
        }
        r = await c.post(f"{API}/incidents", content=gunshot("panel-1"), headers=same)
        assert r.status_code == 201, r.text
        token = (await c.post(f"{API}/auth/login", json={"username": PILOT[0], "password": PILOT[1]})).json()[
            "token"
        ]
        bearer = {
            "Authorization": f"Bearer {token}",
            "Origin": "http://elsewhere.example",
            "Content-Type": "application/json",
        }
        r = await c.post(f"{API}/incidents", content=gunshot("bearer-1"), headers=bearer)
        assert r.status_code == 200 and r.json()["merged"], r.text  # same place: joins the incident


async def test_docs_load_nothing_from_the_internet(tmp_path: Path) -> None:
    async with cookie_client(tmp_path) as (_, c):
        page = await c.get("/docs")
        assert page.status_code == 200, page.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
        assert sources and all(s.startswith("/") for s in sources), sources  # this service only, no CDN
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert (await c.get(f"/docs/assets/{asset}")).status_code == 200
        assert (await c.get("/docs/assets/..%2Fapp.js")).status_code == 404
        assert (await c.get("/redoc")).status_code == 404
