"""Identity of incident sources (issue 15, item 2): no account can speak for another source.

The attack: a feed account posted a report as ``shotspotter`` with ShotSpotter's next id, at a wrong
place; the genuine signed report with that id was then a mere "duplicate" and the incident stayed where
the attacker put it. Now a bound feed account reports only as its own sources, nobody else may report as
a source that is signed for or bound, and a conflicting repeat of a stored id is answered 409 and audited.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dfr.api import create_app
from dfr.auth import Role
from dfr.auth.users import AccountError, UserStore
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT
from dfr.ingest.webhook import sign
from dfr.settings import Settings
from dfr.store import Store
from tests.support.auth import PILOT, VIEWER, add_user, login_headers

API = "/api/v1"
SECRET = "whsec-test-0123456789abcdef"
SS_ID = "SS-2026-1207-0042"


def report(external_id: str, source: str, *, priority: int = 1, lat: float = 32.6401) -> dict[str, Any]:
    body = dict(EXAMPLE_GUNSHOT_REPORT)
    body.update(
        external_id=external_id,
        source=source,
        priority=priority,
        location={"lat": lat, "lon": -117.0842},
        reported_at=datetime.now(UTC).isoformat(),
    )
    return body


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/src.sqlite",
        webhook_secrets={"shotspotter": SECRET},  # type: ignore[dict-item]
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        store: Store = application.state.store
        users = UserStore(store)
        for name, sources in (
            ("cad-bridge", ["cad.cv-pd"]),
            ("intruder", ["acme-sensors"]),
            ("legacy-feed", []),
        ):
            await users.add_hashed(name, (await _cheap(name)), Role.FEED, actor="test", sources=sources)
        await add_user(store, *PILOT, Role.PILOT)
        await add_user(store, *VIEWER, Role.VIEWER)
        yield application


async def _cheap(name: str) -> str:
    from dfr.auth.passwords import hash_password

    return hash_password(f"pw-{name}-x", n=2**4, r=8, p=1)


@pytest.fixture
async def as_(app: FastAPI) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {}
    transport = httpx.ASGITransport(app=app)
    for name, password in (
        ("cad-bridge", "pw-cad-bridge-x"),
        ("intruder", "pw-intruder-x"),
        ("legacy-feed", "pw-legacy-feed-x"),
        PILOT,
        VIEWER,
    ):
        c = httpx.AsyncClient(transport=transport, base_url="http://dfr.test")
        c.headers.update(await login_headers(c, name, password))
        clients[name] = c
    yield clients
    for c in clients.values():
        await c.aclose()


async def test_a_feed_account_cannot_report_as_another_source(
    app: FastAPI, as_: dict[str, httpx.AsyncClient]
) -> None:
    store: Store = app.state.store
    # the probe: a session-authenticated feed account posts as shotspotter, wrong place, priority 5
    r = await as_["intruder"].post(
        f"{API}/incidents", json=report(SS_ID, "shotspotter", priority=5, lat=32.66)
    )
    assert r.status_code == 403, r.text
    assert r.json()["detail"]["field"] == "source" and "only as acme-sensors" in r.json()["detail"]["reason"]
    r = await as_["intruder"].post(f"{API}/incidents", json=report("CV-1", "cad.cv-pd"))
    assert r.status_code == 403, r.text  # bound to another account
    for who in ("legacy-feed", PILOT[0]):  # unbound callers: not as a signed or bound source either
        r = await as_[who].post(f"{API}/incidents", json=report(SS_ID, "shotspotter"))
        assert r.status_code == 403 and "signed webhook" in r.json()["detail"]["reason"], r.text
    assert await store.count_incidents() == 0  # nothing stored

    # the genuine signed report with that id is stored as itself, where and as urgent as it says
    body = json.dumps(report(SS_ID, "shotspotter", priority=1)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-DFR-Source": "shotspotter",
        "X-DFR-Signature": sign(SECRET, body, int(time.time())),
    }
    r = await as_[VIEWER[0]].post(f"{API}/webhooks/incidents", content=body, headers=headers)
    assert r.status_code == 201, r.text
    incident = r.json()["incident"]
    assert incident["priority"] == 1 and incident["location"]["lat"] == 32.6401

    # what each may still do: a bound feed its own source; pilots and unbound feeds an unowned one
    assert (
        await as_["cad-bridge"].post(f"{API}/incidents", json=report("CV-2", "cad.cv-pd", lat=32.61))
    ).status_code == 201
    assert (
        await as_["intruder"].post(f"{API}/incidents", json=report("A-1", "acme-sensors", lat=32.62))
    ).status_code == 201
    assert (
        await as_[PILOT[0]].post(f"{API}/incidents", json=report("M-1", "console:rtcc-3", lat=32.63))
    ).status_code == 201
    r = await as_["cad-bridge"].post(f"{API}/incidents", json=report("X-1", "console:rtcc-3"))
    assert r.status_code == 403  # a bound feed: its sources only


async def test_a_conflicting_repeat_is_answered_409_and_shown_to_operators(
    app: FastAPI, as_: dict[str, httpx.AsyncClient]
) -> None:
    first = report("CV-9", "cad.cv-pd", priority=1)
    r = await as_["cad-bridge"].post(f"{API}/incidents", json=first)
    assert r.status_code == 201
    incident_id = r.json()["incident"]["id"]
    assert (await as_["cad-bridge"].post(f"{API}/incidents", json=first)).status_code == 200  # plain repeat
    changed = dict(first, priority=5, location={"lat": 32.66, "lon": -117.0842})
    r = await as_["cad-bridge"].post(f"{API}/incidents", json=changed)
    assert r.status_code == 409, r.text
    problem = r.json()["detail"]
    assert problem["code"] == "conflicting_repeat" and "location, priority" in problem["reason"]
    audit = (await as_[VIEWER[0]].get(f"{API}/audit", params={"subject_id": incident_id})).json()["entries"]
    flagged = [e for e in audit if e["action"] == "report.conflicting_repeat"]
    assert flagged and flagged[0]["details"]["differing_fields"] == ["location", "priority"]
    stored = (await as_[VIEWER[0]].get(f"{API}/incidents/{incident_id}")).json()
    assert stored["priority"] == 1 and stored["location"]["lat"] == 32.6401  # the first report stands


async def test_sources_are_set_per_account_from_the_cli(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    cmd = [sys.executable, "-m", "dfr.cli", "user", "--database-url", url]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, timeout=60)

    done = await asyncio.to_thread(
        run,
        "add",
        "ssfeed",
        "--role",
        "feed",
        "--source",
        "shotspotter",
        "--password-stdin",
        stdin="pw-ssfeed-x\n",
    )
    assert done.returncode == 0 and "reports as shotspotter" in done.stdout, done.stderr
    bad = await asyncio.to_thread(
        run,
        "add",
        "p2",
        "--role",
        "pilot",
        "--source",
        "shotspotter",
        "--password-stdin",
        stdin="pw-pilot-xx\n",
    )
    assert bad.returncode == 2 and "only feed accounts" in bad.stderr
    assert (
        await asyncio.to_thread(run, "sources", "ssfeed", "--source", "cad.cv-pd", "--source", "shotspotter")
    ).returncode == 0
    listed = await asyncio.to_thread(run, "list")
    assert "sources: cad.cv-pd, shotspotter" in listed.stdout, listed.stdout
    store = await Store.open(url)
    try:
        assert await UserStore(store).sources_of("ssfeed") == {"cad.cv-pd", "shotspotter"}
        with pytest.raises(AccountError):
            await UserStore(store).set_sources("ssfeed", ["not a source"])
    finally:
        await store.close()
