"""The real dfr service for one scenario run: started in-process, stoppable and restartable.

`Controller` owns `running_service` + `http_server` on a free port and two signed-in HTTP clients: a
pilot (reads everything, approves, commands drones) and a feed (submits incidents), exactly the accounts
an agency would give its console and its sensor bridge. `restart` stops the whole service (the drones
keep flying their last command) and starts it again on the same database, as an operator's restart of
the controller process would.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import httpx

from dfr.auth import Role
from dfr.auth.passwords import hash_password
from dfr.auth.users import UserStore
from dfr.service import Service, http_server, running_service
from dfr.settings import Settings

__all__ = ["FEED_USER", "PILOT_USER", "Controller"]

PILOT_USER = "sitl-pilot"
"""The account pilot actions are taken as; audit expectations name it as ``actor``."""
FEED_USER = "sitl-feed"


def _cheap_hash(password: str) -> str:
    """The run's database is thrown away after the run and its passwords are random, so the production
    scrypt cost (~0.4 s per hash) would only slow every scenario down; the parameters travel with the
    hash, so the service verifies it as usual."""
    return hash_password(password, n=2**4, r=8, p=1)


class Controller:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.svc: Service | None = None
        self.url: str | None = None
        self.pilot: httpx.AsyncClient | None = None
        self.feed: httpx.AsyncClient | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._passwords = {PILOT_USER: secrets.token_urlsafe(16), FEED_USER: secrets.token_urlsafe(16)}
        self.starts = 0

    async def start(self) -> None:
        stack = contextlib.AsyncExitStack()
        try:
            svc = await stack.enter_async_context(running_service(self.settings))
            users = UserStore(svc.store)
            for name, role in ((PILOT_USER, Role.PILOT), (FEED_USER, Role.FEED)):
                if await users.get(name) is None:
                    await users.add_hashed(name, _cheap_hash(self._passwords[name]), role, actor="sitl")
            url = await stack.enter_async_context(http_server(svc.app))
            self.pilot = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            self.feed = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            for client, name in ((self.pilot, PILOT_USER), (self.feed, FEED_USER)):
                await self._login(client, name)
        except BaseException:
            await stack.aclose()
            raise
        self.svc, self.url, self._stack = svc, url, stack
        self.starts += 1

    async def _login(self, client: httpx.AsyncClient, name: str) -> None:
        r = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": self._passwords[name]}
        )
        if r.status_code != 200:
            raise RuntimeError(f"sign-in of {name} failed: {r.status_code} {r.text[:300]}")
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        self.svc = self.url = self.pilot = self.feed = None
        if stack is not None:
            await stack.aclose()

    @property
    def running(self) -> bool:
        return self.svc is not None

    def client(self) -> httpx.AsyncClient:
        if self.pilot is None:
            raise RuntimeError("the controller is not running")
        return self.pilot

    def feed_client(self) -> httpx.AsyncClient:
        if self.feed is None:
            raise RuntimeError("the controller is not running")
        return self.feed

    async def get(self, path: str, **params: Any) -> Any:
        r = await self.client().get(path, params=params or None)
        r.raise_for_status()
        return r.json()
