"""A hostile client on the RTCC network (issue 15): forwarded headers, huge bodies, forged requests.

Run against the real HTTP server (uvicorn, as `dfr serve` runs it) where the transport matters: who the
peer is, and whether a body is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from dfr.api import create_app
from dfr.api.ratelimit import RateLimiter
from dfr.auth import Role
from dfr.service import http_server
from dfr.settings import Settings
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
    assert spoofed == [401, 401, 401, 429], spoofed  # always 10.0.0.8, whatever it prepends
    assert other == [401]
