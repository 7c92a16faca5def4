"""The database refuses writes (read-only file, full disk): the API says so clearly, changes nothing, and
keeps serving what it can (reads, health). Real SQLite errors, provoked per connection with PRAGMAs:
``query_only`` raises SQLite's "attempt to write a readonly database", ``max_page_count`` its "database
or disk is full" — the very errors a read-only mount or a full disk give (file permissions cannot be
used: CI runs as root, which ignores them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from dfr.api import create_app
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT
from dfr.settings import Settings
from dfr.store import Store
from tests.support.auth import signed_in

API = "/api/v1"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/faults.sqlite"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dfr.test") as c:
        await signed_in(c, app.state.store)  # signing in writes too: done while the disk is fine
        yield c


@asynccontextmanager
async def every_connection(store: Store, pragma: Callable[[Any], str]) -> AsyncIterator[None]:
    """Run a PRAGMA on each connection as it is handed out, while the block runs; undone afterwards."""
    pool = store.engine.sync_engine.pool

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(pragma(cur))
        cur.close()

    event.listen(pool, "checkout", on_checkout)
    try:
        yield
    finally:
        event.remove(pool, "checkout", on_checkout)
        await store.engine.dispose()  # the PRAGMAs are per connection: fresh ones are back to normal


def body(external_id: str, north: float = 0.0) -> dict[str, Any]:
    b = json.loads(json.dumps(EXAMPLE_GUNSHOT_REPORT))
    b["location"]["lat"] += north
    # a long note, so that storing it needs new database pages (a full disk has none to give)
    b.update(external_id=external_id, reported_at=datetime.now(UTC).isoformat(), note="x" * 2000)
    return b


def full_disk(cur: Any) -> str:
    cur.execute("PRAGMA page_count")
    return f"PRAGMA max_page_count = {cur.fetchone()[0]}"


@pytest.mark.parametrize(
    ("pragma", "words"),
    [(lambda cur: "PRAGMA query_only = ON", "readonly"), (full_disk, "full")],
    ids=["read-only", "disk-full"],
)
async def test_refused_writes_are_503_with_the_reason_and_reads_go_on(
    client: httpx.AsyncClient, app: FastAPI, pragma: Callable[[Any], str], words: str
) -> None:
    store: Store = app.state.store
    assert (await client.post(f"{API}/incidents", json=body("before"))).status_code == 201
    audit_before = (await store.row_counts())["audit_log"]
    async with every_connection(store, pragma):
        r = await client.post(f"{API}/incidents", json=body("during", north=0.05))
        assert r.status_code == 503, r.text
        problem = r.json()["detail"]
        assert problem["code"] == "store_unavailable" and words in problem["reason"]
        assert r.headers["retry-after"]
        assert (await client.get(f"{API}/incidents")).json()["total"] == 1  # reads still answer
        assert (await client.get(f"{API}/healthz")).status_code == 200
    assert (await store.row_counts())["audit_log"] == audit_before  # nothing half-written
    r = await client.post(f"{API}/incidents", json=body("during", north=0.05))
    assert r.status_code == 201  # the same report, once the disk is back
    assert (await client.get(f"{API}/incidents")).json()["total"] == 2
