"""Accounts for tests: created directly in the store, signed in through the real API.

Passwords are hashed with tiny scrypt parameters here (the parameters travel with each hash, so the
service verifies them as stored): production cost (~0.4 s per hash) would add minutes to the suite and
test nothing more. The sign-in itself always goes through `POST /api/v1/auth/login`.
"""

from __future__ import annotations

import httpx

from dfr.auth import Role
from dfr.auth.passwords import hash_password
from dfr.auth.users import UserStore
from dfr.store import Store

PILOT = ("pilot1", "pw-pilot-1")
VIEWER = ("viewer1", "pw-viewer-1")
ADMIN = ("admin1", "pw-admin-1")
FEED = ("feed1", "pw-feed-1")


async def add_user(store: Store, username: str, password: str, role: Role | str) -> None:
    await UserStore(store).add_hashed(
        username, hash_password(password, n=2**4, r=8, p=1), Role(role), actor="test"
    )


async def login_headers(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def signed_in(client: httpx.AsyncClient, store: Store, role: Role = Role.PILOT) -> dict[str, str]:
    """Create the standard test account for `role` (once) and make `client` send its token."""
    username, password = {Role.PILOT: PILOT, Role.VIEWER: VIEWER, Role.ADMIN: ADMIN, Role.FEED: FEED}[role]
    if await UserStore(store).get(username) is None:
        await add_user(store, username, password, role)
    headers = await login_headers(client, username, password)
    client.headers.update(headers)
    return headers
