"""Signed webhooks and rate limits through the real API: a report is stored only when its source signed
exactly that body recently, and a flood is answered 429 without touching the store."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from dfr.api import create_app
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT
from dfr.ingest.webhook import WebhookRefused, sign, verify
from dfr.settings import Settings
from dfr.store import Store
from tests.support.auth import PILOT, add_user

API = "/api/v1"
SECRET = "whsec-test-0123456789abcdef"


def report(external_id: str, source: str = "shotspotter") -> bytes:
    body = dict(EXAMPLE_GUNSHOT_REPORT)
    body.update(external_id=external_id, source=source, reported_at=datetime.now(UTC).isoformat())
    return json.dumps(body).encode()


def signed(
    body: bytes, source: str = "shotspotter", secret: str = SECRET, t: int | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-DFR-Source": source,
        "X-DFR-Signature": sign(secret, body, int(time.time()) if t is None else t),
    }


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    s = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/wh.sqlite",
        webhook_secrets={"shotspotter": SECRET, "cad.cv-pd": "another-secret-value"},  # type: ignore[dict-item]
        ingest_rate_per_min=5,
        login_rate_per_min=3,
    )
    application = create_app(s)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dfr.test") as c:
        yield c


async def count(app: FastAPI) -> int:
    store: Store = app.state.store
    return await store.count_incidents()


async def test_a_signed_report_is_stored_and_a_replay_is_a_duplicate(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = report("ss-1")
    headers = signed(body)
    first = await client.post(f"{API}/webhooks/incidents", content=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(f"{API}/webhooks/incidents", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"]
    store: Store = app.state.store
    audit = await store.audit(first.json()["incident"]["id"])
    assert audit[0].actor == "webhook:shotspotter"


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda b, h: h.pop("X-DFR-Source"), "X-DFR-Source", "missing"),
        (lambda b, h: h.update(signed(b, source="nobody")), "X-DFR-Signature", "does not verify"),
        (lambda b, h: h.pop("X-DFR-Signature"), "X-DFR-Signature", "malformed"),
        (lambda b, h: h.update({"X-DFR-Signature": "v1=abc"}), "X-DFR-Signature", "malformed"),
        (lambda b, h: h.update(signed(b, t=int(time.time()) - 3600)), "X-DFR-Signature", "window"),
        (lambda b, h: h.update(signed(b, t=int(time.time()) + 3600)), "X-DFR-Signature", "window"),
        (lambda b, h: h.update(signed(b, secret="wrong-secret")), "X-DFR-Signature", "does not verify"),
        (lambda b, h: h.update(signed(b + b" ")), "X-DFR-Signature", "does not verify"),  # body changed
        (lambda b, h: h.update(signed(b, source="cad.cv-pd")), "X-DFR-Signature", "does not verify"),
    ],
)
async def test_unsigned_stale_or_forged_requests_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    mutate: Any,
    field: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = report("ss-bad")
    headers = signed(body)
    mutate(body, headers)
    r = await client.post(f"{API}/webhooks/incidents", content=body, headers=headers)
    assert r.status_code == 401, r.text
    problem = r.json()["detail"]
    assert problem["code"] == "unauthenticated" and problem["field"] == field and reason in problem["reason"]
    assert await count(app) == 0
    assert SECRET not in r.text and SECRET not in caplog.text


async def test_a_source_may_only_speak_for_itself(client: httpx.AsyncClient, app: FastAPI) -> None:
    body = report("cad-1", source="shotspotter")
    r = await client.post(
        f"{API}/webhooks/incidents", content=body, headers=signed(body, "cad.cv-pd", "another-secret-value")
    )
    assert r.status_code == 403 and r.json()["detail"]["field"] == "source"
    assert await count(app) == 0


async def test_floods_get_429_per_source_and_logins_per_user(client: httpx.AsyncClient, app: FastAPI) -> None:
    codes = []
    for i in range(7):
        body = report(f"flood-{i}")
        codes.append(
            (await client.post(f"{API}/webhooks/incidents", content=body, headers=signed(body))).status_code
        )
    assert codes[:5] == [201, 200, 200, 200, 200] and codes[5:] == [429, 429]  # one scene: merged
    limited = await client.post(f"{API}/webhooks/incidents", content=body, headers=signed(body))
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["detail"]["code"] == "rate_limited"
    other = report("cad-ok", source="cad.cv-pd")
    r = await client.post(
        f"{API}/webhooks/incidents", content=other, headers=signed(other, "cad.cv-pd", "another-secret-value")
    )
    assert r.status_code == 200  # another source has its own allowance (its report joins the scene)
    store: Store = app.state.store
    assert (await store.row_counts())["incident_reports"] == 6  # the refused ones were never stored

    await add_user(app.state.store, *PILOT, "pilot")
    wrong = [
        (await client.post(f"{API}/auth/login", json={"username": PILOT[0], "password": "guess"})).status_code
        for _ in range(4)
    ]
    assert wrong == [401, 401, 401, 429]  # guessing stops at machine speed...
    r = await client.post(f"{API}/auth/login", json={"username": PILOT[0], "password": PILOT[1]})
    assert r.status_code == 429  # ...for that account from that address, even with the right password


@settings(max_examples=300, deadline=None)
@given(
    source=st.text(max_size=80),
    signature=st.text(max_size=200),
    body=st.binary(max_size=200),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_verify_refuses_garbage_cleanly(source: str, signature: str, body: bytes, now: float) -> None:
    secrets = {"s": SecretStr(SECRET)}
    try:
        verify({"x-dfr-source": source, "x-dfr-signature": signature}, body, secrets, now=now, window_s=300)
    except WebhookRefused as e:
        assert e.field in ("X-DFR-Source", "X-DFR-Signature") and SECRET not in e.reason
    else:
        raise AssertionError("random headers verified")


def test_weak_secrets_refuse_to_start_without_showing_them() -> None:
    with pytest.raises(ValueError, match="at least 16 characters; too short for: cad") as e:
        Settings(webhook_secrets={"cad": "hunter2", "ok": SECRET})  # type: ignore[dict-item]
    assert "hunter2" not in str(e.value)
