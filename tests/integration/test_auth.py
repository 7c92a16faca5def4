"""Sign-in, roles and sessions through the real API, on a real SQLite store.

What must hold: nothing but /healthz answers without a session; each role gets exactly its rights, checked
on the server; sessions end at sign-out, expiry, password change and when the account is disabled; the
database keeps no password or token in the clear; every sign-in (and failed one) is on the record.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from dfr.api import create_app
from dfr.api.mission_actions import router as actions_router
from dfr.api.mission_routes import router as mission_router
from dfr.auth import Role
from dfr.auth.passwords import hash_password, verify_password
from dfr.auth.users import AccountError, UserStore
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT
from dfr.settings import Settings
from dfr.store import MissionStore, Store
from tests.support.auth import ADMIN, FEED, PILOT, VIEWER, add_user, login_headers

API = "/api/v1"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/auth.sqlite")
    application = create_app(settings)
    application.include_router(mission_router)
    application.include_router(actions_router)
    async with application.router.lifespan_context(application):
        store: Store = application.state.store
        application.state.missions = MissionStore(store)
        for (name, password), role in ((PILOT, Role.PILOT), (VIEWER, Role.VIEWER), (ADMIN, Role.ADMIN)):
            await add_user(store, name, password, role)
        await add_user(store, *FEED, Role.FEED)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dfr.test") as c:
        yield c


def report(external_id: str = "auth-1") -> dict[str, object]:
    from datetime import UTC, datetime

    body = dict(EXAMPLE_GUNSHOT_REPORT)
    body.update(external_id=external_id, reported_at=datetime.now(UTC).isoformat())
    return body


async def test_without_a_session_only_health_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/healthz")).status_code == 200
    for method, path in (
        ("GET", "/incidents"),
        ("POST", "/incidents"),
        ("GET", "/audit"),
        ("GET", "/missions"),
        ("GET", "/auth/me"),
        ("GET", "/users"),
        ("POST", "/missions/6f1c1f0e-3a55-4d61-9a4a-1d0f3a7e0a01/approve"),
    ):
        r = await client.request(method, f"{API}{path}", json={} if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["detail"]["code"] == "unauthenticated"
        assert r.headers["www-authenticate"] == "Bearer"
    r = await client.get(f"{API}/incidents", headers={"Authorization": "Bearer not-a-real-token-at-all-xx"})
    assert r.status_code == 401


async def test_wrong_password_and_unknown_user_look_the_same_and_are_audited(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post(f"{API}/auth/login", json={"username": PILOT[0], "password": "nope-nope"})
    unknown = await client.post(f"{API}/auth/login", json={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    bad = await client.post(f"{API}/auth/login", json={"username": "", "password": "x"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "username"
    headers = await login_headers(client, *ADMIN)
    audit = (await client.get(f"{API}/audit", headers=headers, params={"limit": 500})).json()["entries"]
    failed = [e for e in audit if e["action"] == "auth.sign_in_failed"]
    assert [e["actor"] for e in failed] == [PILOT[0], "ghost"]
    assert any(e["action"] == "auth.signed_in" and e["actor"] == ADMIN[0] for e in audit)
    assert all("nope" not in str(e["details"]) for e in audit)  # no password ever reaches the record


async def test_each_role_gets_exactly_its_rights(client: httpx.AsyncClient) -> None:
    viewer = await login_headers(client, *VIEWER)
    pilot = await login_headers(client, *PILOT)
    feed = await login_headers(client, *FEED)
    admin = await login_headers(client, *ADMIN)

    r = await client.post(f"{API}/incidents", json=report("v-1"), headers=viewer)
    assert r.status_code == 403 and "viewer" in r.json()["detail"]["reason"]
    r = await client.post(f"{API}/incidents", json=report("f-1"), headers=feed)
    assert r.status_code == 201, r.text
    assert (await client.get(f"{API}/incidents", headers=feed)).status_code == 403  # feeds read nothing
    assert (await client.get(f"{API}/missions", headers=feed)).status_code == 403
    for who in (viewer, pilot, admin):
        assert (await client.get(f"{API}/incidents", headers=who)).json()["total"] == 1
        assert (await client.get(f"{API}/missions", headers=who)).status_code == 200

    any_mission = f"{API}/missions/6f1c1f0e-3a55-4d61-9a4a-1d0f3a7e0a01"
    for action in ("approve", "decline", "recall"):
        r = await client.post(f"{any_mission}/{action}", json={}, headers=viewer)
        assert r.status_code == 403, (action, r.text)
        r = await client.post(f"{any_mission}/{action}", json={}, headers=pilot)
        assert r.status_code != 403  # past the role check (the mission does not exist: 404 / 409 / 503)

    assert (await client.get(f"{API}/users", headers=pilot)).status_code == 403
    r = await client.post(
        f"{API}/users", json={"username": "pilot2", "password": "pw-pilot-2", "role": "pilot"}, headers=admin
    )
    assert r.status_code == 201, r.text
    again = await client.post(
        f"{API}/users", json={"username": "pilot2", "password": "pw-pilot-2", "role": "pilot"}, headers=admin
    )
    assert again.status_code == 409
    bad = await client.post(
        f"{API}/users", json={"username": "../etc", "password": "pw-pilot-2", "role": "pilot"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "username"
    listed = (await client.get(f"{API}/users", headers=admin)).json()["users"]
    assert {u["username"] for u in listed} >= {"pilot2", PILOT[0], VIEWER[0]}
    assert (await login_headers(client, "pilot2", "pw-pilot-2"))["Authorization"].startswith("Bearer ")


async def test_cookie_session_and_sign_out(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/auth/login", json={"username": PILOT[0], "password": PILOT[1]})
    cookie = r.headers["set-cookie"].lower()
    assert "dfr_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    me = await client.get(f"{API}/auth/me")  # the client keeps the cookie, as a browser does
    assert me.json() == {"username": PILOT[0], "role": "pilot"}
    assert (await client.post(f"{API}/auth/logout")).status_code == 204
    client.cookies.set("dfr_session", r.json()["token"])  # the old token, replayed
    assert (await client.get(f"{API}/auth/me")).status_code == 401


async def test_sessions_end_on_expiry_password_change_and_disable(app: FastAPI) -> None:
    store: Store = app.state.store
    expired = UserStore(store, session_ttl=timedelta(seconds=-1))
    token, _, _ = await expired.sign_in(*PILOT, source="test")
    users = UserStore(store)
    assert await users.principal(token) is None

    token, who, _ = await users.sign_in(*PILOT, source="test")
    assert who.role is Role.PILOT and await users.principal(token) == who
    await users.set_password(PILOT[0], "a-new-password")
    assert await users.principal(token) is None  # a new password ends the old sessions
    with pytest.raises(AccountError):
        await users.sign_in(*PILOT, source="test")

    token, _, _ = await users.sign_in(*VIEWER, source="test")
    await users.set_disabled(VIEWER[0], True)
    assert await users.principal(token) is None
    with pytest.raises(AccountError):
        await users.sign_in(*VIEWER, source="test")
    with pytest.raises(AccountError, match="characters"):
        await users.add("x", "short", Role.PILOT)


async def test_the_database_keeps_no_password_or_token_in_the_clear(app: FastAPI) -> None:
    store: Store = app.state.store
    token, _, _ = await UserStore(store).sign_in(*ADMIN, source="test")
    async with store.engine.connect() as conn:
        hashes = (await conn.execute(text("SELECT password_hash FROM users"))).scalars().all()
        sessions = (await conn.execute(text("SELECT token_sha256 FROM sessions"))).scalars().all()
    assert all(h.startswith("scrypt$") for h in hashes)
    assert not any(pw in h for h in hashes for pw in (PILOT[1], VIEWER[1], ADMIN[1]))
    assert token not in sessions and len(sessions) == 1


def test_password_hash_round_trip_and_malformed_hashes() -> None:
    stored = hash_password("correct horse", n=2**4)
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    for broken in ("", "plain", "scrypt$1$2$3", "md5$1$1$1$AA==$AA==", stored.replace("$", "$x", 1)):
        assert not verify_password("correct horse", broken)


async def test_cli_adds_an_account_that_can_sign_in(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    cmd = [sys.executable, "-m", "dfr.cli", "user", "--database-url", url]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, timeout=60)

    done = await asyncio.to_thread(
        run, "add", "rpic", "--role", "pilot", "--password-stdin", stdin="pw-from-stdin\n"
    )
    assert done.returncode == 0, done.stderr
    dup = await asyncio.to_thread(
        run, "add", "rpic", "--role", "pilot", "--password-stdin", stdin="pw-from-stdin\n"
    )
    assert dup.returncode == 2 and "already exists" in dup.stderr
    listed = await asyncio.to_thread(run, "list")
    assert "rpic" in listed.stdout and "pilot" in listed.stdout
    application = create_app(Settings(database_url=url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            headers = await login_headers(c, "rpic", "pw-from-stdin")
            assert (await c.get(f"{API}/auth/me", headers=headers)).json()["role"] == "pilot"
