"""Incident ingest end to end: the Store (on SQLite, and on PostgreSQL when its binaries are installed) and
the HTTP API over httpx's ASGI transport on a temporary SQLite file.

Store tests take the ``db_url`` fixture, parametrised over both backends; the PostgreSQL variant starts a
throw-away cluster once per session (as the ``postgres`` user when run as root, since PostgreSQL refuses
to run as root) and gives each test a fresh database, or skips saying why it cannot.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dfr.api import create_app
from dfr.domain.incidents import (
    EXAMPLE_911_REPORT,
    EXAMPLE_GUNSHOT_REPORT,
    IncidentKind,
    IncidentReport,
    IncidentStatus,
)
from dfr.live import Event, EventBus, IncidentEvent
from dfr.settings import Settings
from dfr.store import JOINABLE_KINDS, MergePolicy, Store, can_join, haversine_m, migrate
from dfr.store.engine import create_engine
from dfr.store.models import Base
from tests.support.auth import signed_in

NOW = datetime(2024, 5, 1, 17, 5, 0, tzinfo=UTC)
BASE_LAT, BASE_LON = 32.6401, -117.0842
METRE_LAT = 1 / 111_195  # degrees of latitude per metre (haversine sphere)


def clock() -> datetime:
    return NOW


def report(
    external_id: str,
    *,
    kind: str = "911",
    north_m: float = 0.0,
    east_m: float = 0.0,
    minutes_ago: float = 1.0,
    source: str = "cad.cv-pd",
    priority: int = 3,
    **extra: Any,
) -> IncidentReport:
    lat = BASE_LAT + north_m * METRE_LAT
    lon = BASE_LON + east_m * METRE_LAT / 0.8424  # cos(32.64°)
    return IncidentReport.model_validate(
        {
            "kind": kind,
            "location": {"lat": lat, "lon": lon},
            "reported_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
            "priority": priority,
            "source": source,
            "external_id": external_id,
            **extra,
        }
    )


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: a throw-away cluster when the binaries are installed


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for bindir in candidates:
        if (bindir / "pg_ctl").exists() and (bindir / "initdb").exists():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[Path, list[str], str]]:
    """(bindir, command prefix to run as the cluster owner, server URL without a database)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        if runuser is None:
            pytest.skip("running as root and runuser is missing, so PostgreSQL cannot be started")
        prefix = [runuser, "-u", "postgres", "--"]
    # Not tmp_path: pytest's base temp dir is private to the current user, and the cluster owner is not.
    base = Path(tempfile.mkdtemp(prefix="dfr-pg-"))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", _free_port()
    started = False
    try:
        init = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "dfr", "-A", "trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            pytest.skip(f"initdb failed, cannot run the PostgreSQL tests: {init.stderr.strip()[-500:]}")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                *("-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "-o", options),
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if start.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            pytest.skip(f"PostgreSQL did not start: {(start.stderr + log).strip()[-500:]}")
        started = True
        yield bindir, prefix, f"postgresql+asyncpg://dfr@127.0.0.1:{port}"
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


def _pg_database(server: tuple[Path, list[str], str]) -> str:
    bindir, prefix, url = server
    name = f"dfr_{uuid.uuid4().hex[:12]}"
    port = url.rsplit(":", 1)[1]
    subprocess.run(
        [*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "dfr", name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return f"{url}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/nested/dir/dfr.sqlite"
    return _pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url, policy=MergePolicy(radius_m=250, window_s=600), clock=clock)
    try:
        yield s
    finally:
        await s.close()


# ---------------------------------------------------------------------------------------------------------
# Store: schema


async def test_sqlite_file_and_directory_are_created_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "dfr.sqlite"
    s = await Store.open(f"sqlite:///{path}")  # no driver named: the async one is chosen
    try:
        assert path.exists()
        engine = create_engine(f"sqlite:///{path}", pooled=False)
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        await engine.dispose()
    finally:
        await s.close()


async def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        await Store.open("sqlite+aiosqlite:///:memory:")


async def test_migration_matches_the_models_and_is_idempotent(db_url: str) -> None:
    await migrate(db_url)
    await migrate(db_url)  # already at head: nothing to do, no error

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    engine = create_engine(db_url, pooled=False)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            assert (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar() == "0005"  # head revision
    finally:
        await engine.dispose()


async def test_audit_log_is_append_only_in_the_database(store: Store, db_url: str) -> None:
    await store.ingest(report("a1"))
    engine = create_engine(db_url, pooled=False)
    try:
        for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    assert [e.actor for e in await store.audit()] == ["system"]


# ---------------------------------------------------------------------------------------------------------
# Store: ingest


async def test_first_report_creates_an_incident_with_its_facts(store: Store) -> None:
    r = report("CV-1", address="300 Third Ave", note="caller hiding", priority=2)
    result = await store.ingest(r, actor="mqtt")
    assert (result.created, result.merged, result.duplicate_of_report) == (True, False, False)
    incident = result.incident
    assert incident.kind is IncidentKind.CALL_911
    assert incident.location == r.location
    assert incident.reported_at == incident.last_reported_at == r.reported_at
    assert incident.received_at == NOW
    assert (incident.priority, incident.source, incident.external_id) == (2, "cad.cv-pd", "CV-1")
    assert (incident.address, incident.note, incident.status) == ("300 Third Ave", "caller hiding", "open")
    assert (incident.merged_into, incident.report_count) == (None, 1)
    assert await store.get_incident(incident.id) == incident
    [stored] = await store.reports(incident.id)
    assert (stored.id, stored.disposition, stored.payload) == (
        result.report_id,
        "created",
        r.model_dump(mode="json"),
    )
    [entry] = await store.audit(incident.id)
    assert (entry.actor, entry.action, entry.subject_type, entry.at) == (
        "mqtt",
        "incident.created",
        "incident",
        NOW,
    )
    assert entry.details["report_id"] == result.report_id
    assert entry.details["external_id"] == "CV-1"


async def test_repeated_report_is_idempotent(store: Store) -> None:
    first = await store.ingest(report("CV-1"))
    before = await store.row_counts()
    again = await store.ingest(report("CV-1"))
    assert (again.created, again.merged, again.duplicate_of_report) == (False, False, True)
    assert again.incident == first.incident
    assert again.report_id == first.report_id
    assert await store.row_counts() == before  # not even an audit record


async def test_repeat_with_different_content_changes_nothing_but_is_audited(store: Store) -> None:
    first = await store.ingest(report("CV-1", priority=3))
    again = await store.ingest(report("CV-1", priority=1, note="updated"))
    assert again.duplicate_of_report and again.incident == first.incident
    assert (await store.get_incident(first.incident.id)) == first.incident
    entries = await store.audit(first.incident.id)
    assert [e.action for e in entries] == ["incident.created", "report.conflicting_repeat"]
    assert entries[-1].details["differing_fields"] == ["note", "priority"]


async def test_a_failed_ingest_leaves_nothing_behind(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await store.ingest(report("a"))
    before = await store.row_counts()

    def broken_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_audit", broken_audit)
    for r in (report("b", north_m=10), report("c", kind="gunshot", north_m=5000)):  # a merge, a create
        with pytest.raises(RuntimeError):
            await store.ingest(r)
    assert await store.row_counts() == before
    assert await store.get_incident(first.incident.id) == first.incident  # the merge was rolled back too


async def test_same_external_id_from_another_source_is_a_new_report(store: Store) -> None:
    a = await store.ingest(report("1", source="cad.a"))
    b = await store.ingest(report("1", source="cad.b"))
    assert b.merged and not b.duplicate_of_report
    assert b.incident.id == a.incident.id and b.incident.report_count == 2


async def test_burst_of_20_nearby_911_reports_is_one_incident(store: Store) -> None:
    reports = [report(f"CV-{i}", north_m=(i % 5) * 30, east_m=(i // 5) * 30) for i in range(20)]
    results = await asyncio.gather(*(store.ingest(r) for r in reports))
    assert sum(r.created for r in results) == 1
    assert sum(r.merged for r in results) == 19
    [incident] = await store.list_incidents()
    assert incident.report_count == 20
    assert {r.incident.id for r in results} == {incident.id}
    assert len(await store.reports(incident.id)) == 20
    assert await store.row_counts() == {"incidents": 1, "incident_reports": 20, "audit_log": 20}
    actions = [e.action for e in await store.audit(incident.id)]
    assert actions == ["incident.created"] + ["incident.report_merged"] * 19


async def test_two_stores_on_one_database_still_merge_a_concurrent_burst(store: Store, db_url: str) -> None:
    # Two processes (here: two stores with their own pools and in-process locks) share the database;
    # only the database lock (advisory lock / BEGIN IMMEDIATE) keeps them from opening two incidents.
    other = await Store.open(db_url, clock=clock)
    try:
        await asyncio.gather(*((store, other)[i % 2].ingest(report(f"CV-{i}", north_m=i)) for i in range(20)))
    finally:
        await other.close()
    [incident] = await store.list_incidents()
    assert incident.report_count == 20


async def test_two_distant_gunshots_are_two_incidents(store: Store) -> None:
    a = await store.ingest(report("SST-1", kind="gunshot", rounds=3, source="shotspotter"))
    b = await store.ingest(report("SST-2", kind="gunshot", rounds=2, source="shotspotter", north_m=2000))
    assert a.created and b.created and a.incident.id != b.incident.id
    assert await store.count_incidents() == 2


async def test_merge_radius_is_great_circle_distance(store: Store) -> None:
    first = await store.ingest(report("a"))
    inside = await store.ingest(report("b", north_m=170, east_m=170))  # ~240 m diagonally
    outside = await store.ingest(report("c", north_m=180, east_m=180))  # ~255 m
    assert inside.merged and inside.incident.id == first.incident.id
    assert outside.created
    d = haversine_m(BASE_LAT, BASE_LON, outside.incident.location.lat, outside.incident.location.lon)
    assert 250 < d < 260


async def test_merge_window_slides_with_the_reports(store: Store) -> None:
    first = await store.ingest(report("a", minutes_ago=60))
    chained = await store.ingest(report("b", minutes_ago=51))  # 9 min after a
    later = await store.ingest(report("c", minutes_ago=42))  # 9 min after b, 18 after a
    late_old = await store.ingest(report("d", minutes_ago=69))  # out of order, 9 min before a
    assert all(r.merged and r.incident.id == first.incident.id for r in (chained, later, late_old))
    incident = late_old.incident
    assert incident.reported_at == NOW - timedelta(minutes=69)
    assert incident.last_reported_at == NOW - timedelta(minutes=42)
    gap = await store.ingest(report("e", minutes_ago=31))  # 11 min after the latest report
    assert gap.created


@pytest.mark.parametrize(
    ("first", "second", "merges"),
    [
        ("gunshot", "gunshot", True),
        ("gunshot", "911", True),
        ("gunshot", "manual", True),
        ("gunshot", "alpr", True),
        ("911", "gunshot", False),
        ("manual", "911", True),
        ("alpr", "manual", True),
        ("911", "other", False),
        ("other", "other", False),
        ("other", "911", False),
    ],
)
async def test_kind_families(store: Store, first: str, second: str, merges: bool) -> None:
    a = await store.ingest(report("a", kind=first))
    b = await store.ingest(report("b", kind=second, north_m=10))
    assert b.merged is merges
    assert (b.incident.id == a.incident.id) is merges
    assert can_join(IncidentKind(second), IncidentKind(first)) is merges


def test_every_kind_has_a_merge_rule() -> None:
    assert set(JOINABLE_KINDS) == set(IncidentKind)


async def test_merge_raises_urgency_and_fills_gaps_but_keeps_the_location(store: Store) -> None:
    gunshot = await store.ingest(
        report("SST-1", kind="gunshot", source="shotspotter", priority=2, rounds=3, confidence=0.7)
    )
    call = await store.ingest(report("CV-1", priority=1, north_m=60, address="290 Third Ave"))
    second_sensor = await store.ingest(
        report(
            "SST-2", kind="gunshot", source="shotspotter", priority=2, rounds=5, confidence=0.9, north_m=20
        )
    )
    incident = second_sensor.incident
    assert incident.id == gunshot.incident.id == call.incident.id
    assert incident.kind is IncidentKind.GUNSHOT
    assert incident.location == gunshot.incident.location
    assert (incident.priority, incident.address, incident.rounds, incident.confidence) == (
        1,
        "290 Third Ave",
        5,
        0.9,
    )
    merged = [e for e in await store.audit(incident.id) if e.action == "incident.report_merged"]
    assert merged[0].details["priority"] == {"from": 2, "to": 1}
    assert 55 < merged[0].details["distance_m"] < 65


async def test_nearest_open_incident_wins(store: Store) -> None:
    west = await store.ingest(report("w", kind="gunshot", east_m=-200))
    east = await store.ingest(report("e", kind="gunshot", east_m=200))
    assert west.incident.id != east.incident.id
    between = await store.ingest(report("m", east_m=50))
    assert between.incident.id == east.incident.id


async def test_incidents_near_the_antimeridian_and_pole_merge(store: Store) -> None:
    def at(eid: str, lat: float, lon: float) -> IncidentReport:
        data = report(eid).model_dump(mode="json")
        return IncidentReport.model_validate({**data, "location": {"lat": lat, "lon": lon}})

    a = await store.ingest(at("dateline-1", -16.5, 179.9995))
    b = await store.ingest(at("dateline-2", -16.5, -179.9995))  # ~107 m away, across the antimeridian
    assert b.merged and b.incident.id == a.incident.id
    c = await store.ingest(at("pole-1", 89.9995, 0.0))
    d = await store.ingest(at("pole-2", 89.9995, 180.0))  # ~111 m away, across the pole
    assert d.merged and d.incident.id == c.incident.id


async def test_list_incidents_pages_newest_first_and_filters(store: Store) -> None:
    for i in range(5):
        await store.ingest(report(f"g{i}", kind="gunshot", north_m=i * 1000, minutes_ago=10 - i))
    listed = await store.list_incidents(limit=3)
    assert [i.external_id for i in listed] == ["g4", "g3", "g2"]
    assert [i.external_id for i in await store.list_incidents(limit=3, offset=3)] == ["g1", "g0"]
    assert len(await store.list_incidents(IncidentStatus.OPEN)) == 5
    assert await store.list_incidents(IncidentStatus.CLOSED) == []
    assert await store.count_incidents(IncidentStatus.CLOSED) == 0
    with pytest.raises(ValueError):
        await store.list_incidents(limit=0)
    assert await store.get_incident(str(uuid.uuid4())) is None


async def test_restart_keeps_everything(db_url: str) -> None:
    s = await Store.open(db_url, clock=clock)
    first = await s.ingest(report("a"))
    await s.ingest(report("b", north_m=10))
    await s.ingest(report("g", kind="gunshot", north_m=5000))
    incidents, audit, counts = await s.list_incidents(), await s.audit(), await s.row_counts()
    reports = await s.reports(first.incident.id)
    await s.close()

    s = await Store.open(db_url, clock=clock)
    try:
        assert await s.list_incidents() == incidents
        assert await s.audit() == audit
        assert await s.reports(first.incident.id) == reports
        assert await s.row_counts() == counts == {"incidents": 2, "incident_reports": 3, "audit_log": 3}
        again = await s.ingest(report("a"))  # idempotency survives the restart
        assert again.duplicate_of_report and again.incident.report_count == 2
        merged = await s.ingest(report("c", north_m=20))  # and so does the merge state
        assert merged.merged and merged.incident.report_count == 3
    finally:
        await s.close()


# ---------------------------------------------------------------------------------------------------------
# HTTP API

API = "/api/v1"


def body(external_id: str = "CV-1", **changes: Any) -> dict[str, Any]:
    data = report(external_id).model_dump(mode="json")
    data.update(changes)
    return data


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/var/dfr.sqlite")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)  # the app opens (and will close) its own store
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dfr.test") as c:
        await signed_in(c, app.state.store)  # a pilot: may submit and read
        yield c


def app_store(app: FastAPI) -> Store:
    s: Store = app.state.store
    return s


async def test_post_creates_then_get_returns_it(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.post(f"{API}/incidents", json=body(address="300 Third Ave"))
    assert response.status_code == 201, response.text
    data = response.json()
    assert (data["created"], data["merged"], data["duplicate"]) == (True, False, False)
    incident = data["incident"]
    assert incident["kind"] == "911" and incident["report_count"] == 1 and incident["status"] == "open"
    assert response.headers["location"] == f"http://dfr.test{API}/incidents/{incident['id']}"

    fetched = await client.get(f"{API}/incidents/{incident['id']}")
    assert fetched.status_code == 200 and fetched.json() == incident
    listed = (await client.get(f"{API}/incidents")).json()
    assert listed["total"] == 1 and listed["incidents"] == [incident]
    audit = (await client.get(f"{API}/audit", params={"subject_id": incident["id"]})).json()
    [entry] = audit["entries"]
    assert (entry["action"], entry["actor"], entry["details"]["report_id"]) == (
        "incident.created",
        "api:pilot1",  # the signed-in account that submitted it
        data["report_id"],
    )


async def test_post_is_persisted_before_the_response(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(f"{API}/incidents", json=body())
    incident_id = response.json()["incident"]["id"]
    # A second, independent connection sees the committed row the moment the response exists.
    other = await Store.open(settings.database_url)
    try:
        stored = await other.get_incident(incident_id)
        assert stored is not None and stored.report_count == 1
    finally:
        await other.close()


async def test_repeat_and_merge_answer_200(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{API}/incidents", json=body("CV-1"))
    repeat = await client.post(f"{API}/incidents", json=body("CV-1"))
    merged = await client.post(f"{API}/incidents", json=body("CV-2"))
    assert (created.status_code, repeat.status_code, merged.status_code) == (201, 200, 200)
    assert "location" not in repeat.headers
    r, m = repeat.json(), merged.json()
    assert (r["created"], r["merged"], r["duplicate"]) == (False, False, True)
    assert (m["created"], m["merged"], m["duplicate"]) == (False, True, False)
    assert r["incident"]["id"] == m["incident"]["id"] == created.json()["incident"]["id"]
    assert m["incident"]["report_count"] == 2


async def test_burst_of_20_posts_is_one_incident(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post(f"{API}/incidents", json=body(f"CV-{i}")) for i in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    listed = (await client.get(f"{API}/incidents")).json()
    assert listed["total"] == 1 and listed["incidents"][0]["report_count"] == 20
    audit = (await client.get(f"{API}/audit")).json()["entries"]
    assert len([e for e in audit if e["subject_type"] == "incident"]) == 20  # besides the sign-in's


def _chunks(data: bytes, size: int = 4096) -> Any:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    return gen()


BAD_REQUESTS: dict[str, tuple[Any, dict[str, str], int, str, str | None]] = {
    # name: (content, headers, status, code, field)
    "oversize": (json.dumps(body(note="n" * 17000)).encode(), {}, 413, "payload_too_large", None),
    "oversize chunked": ("chunked", {}, 413, "payload_too_large", None),
    "not json media type": (
        b"kind=911",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        None,
    ),
    "malformed json": (b'{"kind": "911",', {}, 422, "malformed_json", None),
    "empty body": (b"", {}, 422, "malformed_json", None),
    "not utf-8": (b'{"note": "\xff"}', {}, 422, "not_utf8", None),
    "not an object": (b"[]", {}, 422, "not_an_object", None),
    "missing field": (
        json.dumps({k: v for k, v in body().items() if k != "priority"}).encode(),
        {},
        422,
        "invalid_field",
        "priority",
    ),
    "unknown field": (json.dumps(body(colour="red")).encode(), {}, 422, "invalid_field", "colour"),
    "lat out of range": (
        json.dumps(body(location={"lat": 95, "lon": 0})).encode(),
        {},
        422,
        "invalid_field",
        "location.lat",
    ),
    "bad kind": (json.dumps(body(kind="fire")).encode(), {}, 422, "invalid_field", "kind"),
    "naive time": (
        json.dumps(body(reported_at="2024-05-01T17:00:00")).encode(),
        {},
        422,
        "invalid_field",
        "reported_at",
    ),
    "future": (
        json.dumps(body(reported_at="2024-05-01T18:00:00Z")).encode(),
        {},
        422,
        "in_future",
        "reported_at",
    ),
    "too old": (
        json.dumps(body(reported_at="2024-04-01T17:00:00Z")).encode(),
        {},
        422,
        "too_old",
        "reported_at",
    ),
    "bad source": (json.dumps(body(source="a b")).encode(), {}, 422, "invalid_field", "source"),
    "rounds on 911": (json.dumps(body(rounds=2)).encode(), {}, 422, "invalid_field", "rounds"),
}


@pytest.mark.parametrize(
    ("content", "headers", "status", "code", "field"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
async def test_rejected_requests_say_why_and_change_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    content: Any,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    await client.post(f"{API}/incidents", json=body("existing"))
    before = await app_store(app).row_counts()
    if content == "chunked":  # no Content-Length: the limit must hold while streaming
        content = _chunks(json.dumps(body(note="n" * 1900)).encode() * 10)
    headers = {"Content-Type": "application/json"} | headers  # an untyped body is refused (415) first
    response = await client.post(f"{API}/incidents", content=content, headers=headers)
    assert response.status_code == status, response.text
    problem = response.json()["detail"]
    assert (problem["code"], problem["field"]) == (code, field)
    assert problem["reason"]
    assert await app_store(app).row_counts() == before


async def test_malformed_json_response_gives_the_position(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/incidents",
        content=b'{"kind": "911", "priority": }',
        headers={"Content-Type": "application/json"},
    )
    problem = response.json()["detail"]
    assert response.status_code == 422
    assert problem["position"] == 28
    assert "column 29" in problem["reason"]


async def test_validation_error_lists_every_field(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/incidents", json=body(priority=0, location={"lat": 0, "lon": 200}))
    problem = response.json()["detail"]
    assert {e["field"] for e in problem["errors"]} == {"priority", "location.lon"}


async def test_get_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    unknown = await client.get(f"{API}/incidents/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]["code"] == "not_found"
    assert "no incident with id" in unknown.json()["detail"]["reason"]
    malformed = await client.get(f"{API}/incidents/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["detail"]["field"] == "incident_id"


async def test_list_and_audit_parameters_are_validated(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, str | int], str]] = [
        ("/incidents", {"limit": 0}, "limit"),
        ("/incidents", {"limit": 100000}, "limit"),
        ("/incidents", {"offset": -1}, "offset"),
        ("/incidents", {"status": "burning"}, "status"),
        ("/audit", {"limit": "many"}, "limit"),
    ]
    for path, params, field in cases:
        response = await client.get(f"{API}{path}", params=params)
        assert response.status_code == 422, (path, params)
        assert response.json()["detail"]["field"] == field


async def test_list_filters_by_status_and_pages(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await client.post(
            f"{API}/incidents", json=body(f"g{i}", kind="gunshot", location={"lat": i, "lon": i})
        )
    page = (await client.get(f"{API}/incidents", params={"limit": 2, "status": "open"})).json()
    assert page["total"] == 3 and len(page["incidents"]) == 2 and page["limit"] == 2
    closed = (await client.get(f"{API}/incidents", params={"status": "closed"})).json()
    assert closed == {"incidents": [], "total": 0, "limit": 50, "offset": 0}


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "sqlite",
        "parts": [],
        "supervised": {},
        "subscriber_failures": {},
    }


async def test_requests_before_startup_are_503(settings: Settings) -> None:
    application = create_app(settings)  # lifespan not run: no store
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://dfr.test") as c:
        assert (await c.get(f"{API}/incidents")).status_code == 503
        assert (await c.get(f"{API}/healthz")).status_code == 503


async def test_restart_of_the_app_keeps_everything(settings: Settings) -> None:
    first = create_app(settings, clock=clock)
    async with first.router.lifespan_context(first):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as c:
            await signed_in(c, first.state.store)
            created = (await c.post(f"{API}/incidents", json=body("CV-1"))).json()
    second = create_app(settings, clock=clock)
    async with second.router.lifespan_context(second):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as c:
            await signed_in(c, second.state.store)  # the account survived the restart too
            again = await c.get(f"{API}/incidents/{created['incident']['id']}")
            assert again.json() == created["incident"]
            repeat = await c.post(f"{API}/incidents", json=body("CV-1"))
            assert repeat.status_code == 200 and repeat.json()["duplicate"]


async def test_an_injected_store_is_used_and_left_open(settings: Settings) -> None:
    s = await Store.open(settings.database_url, clock=clock)
    try:
        application = create_app(settings, store=s, clock=clock)
        async with application.router.lifespan_context(application):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://t"
            ) as c:
                await signed_in(c, s)
                assert (await c.post(f"{API}/incidents", json=body())).status_code == 201
        assert await s.count_incidents() == 1  # still usable after the app shut down
    finally:
        await s.close()


async def test_openapi_documents_the_report_schema_with_examples(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    post = schema["paths"][f"{API}/incidents"]["post"]
    content = post["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/IncidentReport"}
    assert set(content["examples"]) == {"gunshot", "911"}
    assert {"200", "201", "413", "415", "422"} <= set(post["responses"])
    components = schema["components"]["schemas"]
    report_schema = components["IncidentReport"]
    assert report_schema["examples"] == [EXAMPLE_GUNSHOT_REPORT, EXAMPLE_911_REPORT]
    assert set(report_schema["properties"]) >= {"kind", "location", "reported_at", "priority", "source"}
    # Every reference in the document resolves.
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert refs <= set(components)
    for example in content["examples"].values():
        IncidentReport.model_validate(example["value"])


async def test_a_failing_subscriber_never_turns_a_stored_report_into_an_error(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A report is committed before the hooks run: whatever a hook does, the caller gets its 201, the
    other hooks still run, and the failure is logged with the hook's name (it used to answer 500)."""
    seen: list[str] = []

    async def broken(result: Any) -> None:
        raise RuntimeError("subscriber down")

    async def healthy(result: Any) -> None:
        seen.append(result.incident.id)

    app.state.ingest_hooks[:] = [broken, healthy]
    response = await client.post(f"{API}/incidents", json=body(external_id="hook-1"))
    assert response.status_code == 201, response.text
    incident_id = response.json()["incident"]["id"]
    assert seen == [incident_id]
    assert (await client.get(f"{API}/incidents/{incident_id}")).status_code == 200
    assert any("hook" in r.getMessage() and "broken" in r.getMessage() for r in caplog.records)


async def test_a_bus_subscriber_that_raises_never_turns_a_stored_report_into_an_error(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The report's `IncidentEvent` goes out on the live bus after the commit. A subscriber that raises on
    it is logged with its name and counted (in /healthz too); the other subscriber still gets it and the
    caller still gets its 201."""
    bus = EventBus()
    app.state.bus = bus
    got: list[Event] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("subscriber down")

    async def healthy(event: Event) -> None:
        got.append(event)

    subscribers = [
        asyncio.create_task(bus.serve(bus.subscribe("broken"), broken)),
        asyncio.create_task(bus.serve(bus.subscribe("healthy"), healthy)),
    ]
    try:
        response = await client.post(f"{API}/incidents", json=body(external_id="bus-1"))
        assert response.status_code == 201, response.text
        incident_id = response.json()["incident"]["id"]
        await asyncio.wait_for(bus.wait_for_failures("broken", 1), 5)
        bus.close()
        await asyncio.wait_for(asyncio.gather(*subscribers), 5)
    finally:
        bus.close()
    assert len(got) == 1 and isinstance(got[0], IncidentEvent)
    assert got[0].incident.id == incident_id and got[0].created
    health = (await client.get(f"{API}/healthz")).json()
    assert health["status"] == "ok" and health["subscriber_failures"] == {"broken": 1}
    assert any("broken" in r.getMessage() and r.exc_info for r in caplog.records)
