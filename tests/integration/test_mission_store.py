"""Mission persistence end to end: MissionStore on SQLite (a temporary file) and on PostgreSQL (the throw-away
cluster of test_ingest_api, when its binaries are installed), and the /api/v1/missions routes over httpx's
ASGI transport on an app assembled here from create_app and the mission router.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from dfr.api import create_app
from dfr.api.mission_routes import router as mission_router
from dfr.auth import Role
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT, IncidentReport
from dfr.domain.missions import (
    InvalidTransition,
    Mission,
    MissionDecision,
    MissionState,
    PilotControl,
    StandoffPoint,
    TrackPoint,
)
from dfr.settings import Settings
from dfr.store import MissionExists, MissionNotFound, MissionStore, Store, UnknownIncident, migrate
from dfr.store.engine import create_engine
from dfr.store.migrate import alembic_config
from dfr.store.models import Base
from tests.integration.test_ingest_api import _pg_database, pg_server  # noqa: F401  (registers the fixture)
from tests.support.auth import signed_in

S = MissionState
T0 = datetime(2024, 5, 1, 17, 5, 0, tzinfo=UTC)
ROUTE = [[-117.0900, 32.6350], [-117.0870, 32.6380], [-117.0845, 32.6398]]
MISSION_TABLES = {"missions", "mission_events", "mission_track"}


class Clock:
    """A clock the test moves by hand; the Store and the MissionStore both read it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/dfr.sqlite"
    return _pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_url: str, clock: Clock) -> AsyncIterator[Store]:
    s = await Store.open(db_url, clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def missions(store: Store) -> MissionStore:
    return MissionStore(store)


async def incident(store: Store, external_id: str = "SST-1") -> str:
    report = IncidentReport.model_validate({**EXAMPLE_GUNSHOT_REPORT, "external_id": external_id})
    return (await store.ingest(report)).incident.id


def new_mission(incident_id: str, clock: Clock, **changes: Any) -> Mission:
    data: dict[str, Any] = {
        "incident_id": incident_id,
        "state": "pending_approval",
        "created_at": clock(),
        "updated_at": clock(),
        "target": {"lat": 32.6401, "lon": -117.0842},
        "standoff": None,
        "altitude_m": 60.0,
        "planned_route": ROUTE,
        "expected_time_to_scene_s": 92.5,
        "decision": {"policy": "approval:p1", "reason": "priority 1 gunshot", "by": "system"},
    }
    data.update(changes)
    return Mission.model_validate(data)


async def fly_to(missions: MissionStore, mission_id: str, clock: Clock, *states: MissionState) -> Mission:
    """Take a mission through ``states`` one second apart (a drone for launching)."""
    m: Mission | None = None
    for state in states:
        clock.advance(1)
        extra: dict[str, Any] = {"drone_id": "cv-d1"} if state is S.LAUNCHING else {}
        m = await missions.transition(mission_id, state, actor="dispatcher", **extra)
    assert m is not None
    return m


# ---------------------------------------------------------------------------------------------------------
# Schema


async def test_migration_head_has_the_mission_tables_and_matches_the_models(db_url: str) -> None:
    await migrate(db_url)

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    engine = create_engine(db_url, pooled=False)
    try:
        async with engine.connect() as conn:
            assert MISSION_TABLES <= set(Base.metadata.tables)  # registered by importing dfr.store
            assert await conn.run_sync(diff) == []
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == "0005"
        # 0002 downgrades cleanly to 0001 (incident tables kept) and upgrades again.
        await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0001")
        async with engine.connect() as conn:
            left = await conn.run_sync(tables)
            assert not MISSION_TABLES & left and {"incidents", "audit_log"} <= left
        await migrate(db_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_mission_events_are_append_only_in_the_database(
    store: Store, missions: MissionStore, clock: Clock, db_url: str
) -> None:
    await missions.create(new_mission(await incident(store), clock), "dispatcher")
    engine = create_engine(db_url, pooled=False)
    try:
        for statement in ("UPDATE mission_events SET actor = 'mallory'", "DELETE FROM mission_events"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        with pytest.raises(Exception, match="state_values"):  # and the states are checked
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE missions SET state = 'flying'"))
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------------------
# Create and transitions


async def test_happy_path_records_every_step_with_its_times(
    store: Store, missions: MissionStore, clock: Clock
) -> None:
    incident_id = await incident(store)
    created = await missions.create(new_mission(incident_id, clock), "policy")
    assert created.state is S.PENDING_APPROVAL and created.drone_id is None
    assert await missions.get(created.id) == created

    at_launch = clock.advance(30)
    launched = await missions.transition(
        created.id,
        S.LAUNCHING,
        actor="operator:rtcc-3",
        drone_id="cv-d1",
        decision=MissionDecision(policy="approval:p1", reason="approved on console", by="operator:rtcc-3"),
    )
    assert (launched.state, launched.drone_id, launched.launched_at) == (S.LAUNCHING, "cv-d1", at_launch)
    clock.advance(5)
    await missions.transition(created.id, "en_route", actor="flight")
    at_scene = clock.advance(90)
    on_scene = await missions.transition(created.id, S.ON_SCENE, actor="flight")
    assert on_scene.on_scene_at == at_scene
    assert on_scene.achieved_time_to_scene_s == 95.0  # from launch, like expected_time_to_scene_s
    clock.advance(120)
    returning = await missions.transition(created.id, S.RETURNING, actor="flight", reason="loiter complete")
    assert returning.reason == "loiter complete"
    at_landing = clock.advance(100)
    landed = await missions.transition(created.id, S.LANDED, actor="flight")

    assert landed.state is S.LANDED and landed.reason is None  # the reason explains the current state
    assert (landed.launched_at, landed.on_scene_at, landed.landed_at) == (at_launch, at_scene, at_landing)
    assert (landed.created_at, landed.updated_at) == (T0, at_landing)
    assert landed.decision is not None and landed.decision.by == "operator:rtcc-3"
    assert landed.expected_time_to_scene_s == 92.5 and landed.planned_route == [tuple(p) for p in ROUTE]
    assert await missions.get(created.id) == landed

    events = await missions.events(created.id)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, S.PENDING_APPROVAL),
        (S.PENDING_APPROVAL, S.LAUNCHING),
        (S.LAUNCHING, S.EN_ROUTE),
        (S.EN_ROUTE, S.ON_SCENE),
        (S.ON_SCENE, S.RETURNING),
        (S.RETURNING, S.LANDED),
    ]
    assert [e.actor for e in events] == ["policy", "operator:rtcc-3", "flight", "flight", "flight", "flight"]
    assert [e.at for e in events] == [
        T0,
        at_launch,
        at_launch + timedelta(seconds=5),
        at_scene,
        at_scene + timedelta(seconds=120),
        at_landing,
    ]
    assert events[0].details["decision"]["policy"] == "approval:p1"
    assert events[1].details["drone_id"] == "cv-d1"
    assert datetime.fromisoformat(events[1].details["launched_at"]) == at_launch
    assert events[3].details["achieved_time_to_scene_s"] == 95.0
    assert events[4].reason == "loiter complete"

    audit = await store.audit(created.id)
    assert [e.action for e in audit] == ["mission.created"] + ["mission.transition"] * 5
    assert {e.subject_type for e in audit} == {"mission"}
    assert [e.at for e in audit] == [e.at for e in events]
    assert audit[0].details["incident_id"] == incident_id
    assert [(e.details["from"], e.details["to"]) for e in audit[1:]] == [
        (e.from_state, e.to_state) for e in events[1:]
    ]
    assert await missions.row_counts() == {"missions": 1, "mission_events": 6, "mission_track": 0}


async def test_invalid_transitions_raise_and_change_nothing(
    store: Store, missions: MissionStore, clock: Clock
) -> None:
    m = await missions.create(new_mission(await incident(store), clock), "policy")

    async def unchanged(call: Any, error: type[Exception], match: str) -> None:
        before = (await missions.row_counts(), await store.row_counts(), await missions.get(m.id))
        clock.advance(1)
        with pytest.raises(error, match=match):
            await call
        assert (await missions.row_counts(), await store.row_counts(), await missions.get(m.id)) == before

    await unchanged(missions.transition(m.id, S.LANDED, actor="x"), InvalidTransition, "pending_approval")
    await unchanged(missions.transition(m.id, S.EN_ROUTE, actor="x"), InvalidTransition, "to en_route")
    await unchanged(missions.transition(m.id, S.LAUNCHING, actor="x"), ValidationError, "drone_id")
    await unchanged(missions.transition(m.id, S.DECLINED, actor="x"), ValidationError, "reason")
    await unchanged(missions.transition(m.id, S.QUEUED, actor="x", state="landed"), TypeError, "state")
    await unchanged(missions.transition(m.id, "flying", actor="x"), ValueError, "flying")
    await unchanged(
        missions.transition(str(uuid.uuid4()), S.QUEUED, actor="x"), MissionNotFound, "no mission"
    )

    await fly_to(missions, m.id, clock, S.LAUNCHING, S.EN_ROUTE, S.ON_SCENE, S.RETURNING, S.LANDED)
    await unchanged(missions.transition(m.id, S.EN_ROUTE, actor="x"), InvalidTransition, "landed is terminal")
    await unchanged(
        missions.transition(m.id, S.ABORTED, actor="x", reason="late"), InvalidTransition, "terminal"
    )
    await unchanged(missions.update(m.id, actor="x", drone_id="other"), InvalidTransition, "terminal")


async def test_a_failed_transition_is_rolled_back_whole(
    store: Store, missions: MissionStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await missions.create(new_mission(await incident(store), clock), "policy")
    before = (await missions.row_counts(), await store.row_counts())

    def broken_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(missions, "_audit", broken_audit)
    with pytest.raises(RuntimeError):
        await missions.transition(m.id, S.LAUNCHING, actor="x", drone_id="cv-d1")
    assert (await missions.row_counts(), await store.row_counts()) == before
    assert await missions.get(m.id) == m  # the state change was rolled back with the audit record


async def test_aborts_declines_and_queues_keep_their_reasons(
    store: Store, missions: MissionStore, clock: Clock
) -> None:
    incident_id = await incident(store)
    declined = await missions.create(new_mission(incident_id, clock), "policy")
    declined = await missions.transition(
        declined.id, S.DECLINED, actor="operator:a", reason="officers on scene"
    )
    assert (declined.state, declined.reason, declined.launched_at) == (S.DECLINED, "officers on scene", None)

    queued = await missions.create(
        new_mission(incident_id, clock, state="queued", reason="no drone free"), "p"
    )
    aborted = await missions.transition(queued.id, S.ABORTED, actor="operator:a", reason="incident closed")
    assert aborted.drone_id is None and aborted.reason == "incident closed"

    recalled = await missions.create(new_mission(incident_id, clock), "policy")
    await fly_to(missions, recalled.id, clock, S.LAUNCHING, S.EN_ROUTE)
    back = await missions.transition(recalled.id, S.RETURNING, actor="operator:a", reason="recalled")
    assert back.on_scene_at is None and back.achieved_time_to_scene_s is None
    failed = await missions.transition(recalled.id, S.FAILED, actor="flight", reason="link lost")
    assert failed.landed_at is None
    events = await missions.events(queued.id)
    assert [(e.to_state, e.reason) for e in events] == [
        (S.QUEUED, "no drone free"),
        (S.ABORTED, "incident closed"),
    ]


async def test_create_checks_its_input(store: Store, missions: MissionStore, clock: Clock) -> None:
    incident_id = await incident(store)
    m = await missions.create(new_mission(incident_id, clock), "policy")
    with pytest.raises(MissionExists):
        await missions.create(m, "policy")
    with pytest.raises(UnknownIncident):
        await missions.create(new_mission(str(uuid.uuid4()), clock), "policy")
    with pytest.raises(ValueError, match="must start in one of"):
        await missions.create(new_mission(incident_id, clock, state="en_route", drone_id="d1"), "policy")
    assert await missions.row_counts() == {"missions": 1, "mission_events": 1, "mission_track": 0}
    direct = await missions.create(new_mission(incident_id, clock, state="launching", drone_id="d1"), "auto")
    assert direct.launched_at == direct.created_at
    assert await missions.get(direct.id) == direct


async def test_update_changes_fields_without_a_state_change(
    store: Store, missions: MissionStore, clock: Clock
) -> None:
    m = await missions.create(new_mission(await incident(store), clock), "policy")
    await fly_to(missions, m.id, clock, S.LAUNCHING, S.EN_ROUTE)
    clock.advance(3)
    taken = await missions.update(
        m.id,
        actor="pilot:kim",
        reason="manual control",
        pilot_control=PilotControl(active=True, by="pilot:kim"),
        standoff=StandoffPoint(lat=32.64, lon=-117.085, zone_id="helipad", distance_m=120.0),
    )
    assert taken.state is S.EN_ROUTE and taken.pilot_control.by == "pilot:kim"
    assert taken.standoff is not None and taken.standoff.zone_id == "helipad"
    assert await missions.get(m.id) == taken
    last = (await missions.events(m.id))[-1]
    assert (last.from_state, last.to_state, last.reason, last.actor) == (
        S.EN_ROUTE,
        S.EN_ROUTE,
        "manual control",
        "pilot:kim",
    )
    assert set(last.details) == {"pilot_control", "standoff"}
    assert (await store.audit(m.id))[-1].action == "mission.updated"


async def test_concurrent_conflicting_commands_cannot_both_apply(
    store: Store, missions: MissionStore, clock: Clock, db_url: str
) -> None:
    # A second store with its own pool (and in-process lock) stands for a second process: only the
    # database lock (row lock / BEGIN IMMEDIATE) keeps both commands from passing the check.
    other_store = await Store.open(db_url, clock=clock)
    other = MissionStore(other_store)
    try:
        incident_id = await incident(store)
        for _ in range(3):
            m = await missions.create(new_mission(incident_id, clock), "policy")
            results = await asyncio.gather(
                missions.transition(m.id, S.LAUNCHING, actor="operator:a", drone_id="cv-d1"),
                other.transition(m.id, S.DECLINED, actor="operator:b", reason="not needed"),
                other.transition(m.id, S.QUEUED, actor="operator:c", reason="no drone free"),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, Mission)]
            lost = [r for r in results if not isinstance(r, Mission)]
            # Any order is fine, but the history must be a legal one: queued -> launching may follow.
            final = await missions.get(m.id)
            assert final is not None
            states = [e.to_state for e in await missions.events(m.id)]
            assert len(states) == 1 + len(won)
            assert all(isinstance(e, InvalidTransition) for e in lost), lost
            assert states[-1] is final.state
            assert len(await store.audit(m.id)) == len(states)

        # Many racers on one move: exactly one wins.
        m = await missions.create(new_mission(incident_id, clock), "policy")
        await fly_to(missions, m.id, clock, S.LAUNCHING, S.EN_ROUTE)
        racers = await asyncio.gather(
            *((missions, other)[i % 2].transition(m.id, S.ON_SCENE, actor=f"f{i}") for i in range(10)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Mission) for r in racers) == 1
        assert sum(isinstance(r, InvalidTransition) for r in racers) == 9
        assert [e.to_state for e in await missions.events(m.id)][-1] is S.ON_SCENE
        assert len(await missions.events(m.id)) == 4
    finally:
        await other_store.close()


# ---------------------------------------------------------------------------------------------------------
# Track and GeoJSON


async def test_track_batches_and_geojson(store: Store, missions: MissionStore, clock: Clock) -> None:
    m = await missions.create(
        new_mission(
            await incident(store),
            clock,
            standoff={"lat": 32.6398, "lon": -117.0845, "zone_id": "helipad", "distance_m": 45.5},
        ),
        "policy",
    )
    geo = await missions.as_geojson(m.id)
    assert geo["type"] == "FeatureCollection"
    assert [f["properties"]["kind"] for f in geo["features"]] == ["planned_route", "target", "standoff"]

    await fly_to(missions, m.id, clock, S.LAUNCHING, S.EN_ROUTE)
    first = [
        TrackPoint(t=T0 + timedelta(seconds=i), lat=32.635 + i * 1e-4, lon=-117.09, alt_m=i * 5.0)
        for i in range(3)
    ]
    # The flight procedure's own samples: Unix time, rel_alt_m; batches may arrive out of order.
    second = [
        {
            "t": (T0 + timedelta(seconds=i)).timestamp(),
            "lat": 32.635 + i * 1e-4,
            "lon": -117.09,
            "rel_alt_m": 60.0,
            "speed": 12.0,
            "mode": "HOLD",
        }
        for i in (5, 4, 3)
    ]
    assert await missions.append_track(m.id, first) == 3
    assert await missions.append_track(m.id, second) == 3
    assert await missions.append_track(m.id, []) == 0
    with pytest.raises(ValidationError):  # one bad point refuses the whole batch
        await missions.append_track(m.id, [*first, {"t": T0.isoformat(), "lat": 95.0, "lon": 0.0}])
    with pytest.raises(MissionNotFound):
        await missions.append_track(str(uuid.uuid4()), first)

    track = await missions.track(m.id)
    assert [p.t for p in track] == [T0 + timedelta(seconds=i) for i in range(6)]
    assert track[0] == first[0]
    assert (track[5].alt_m, track[5].speed, track[5].mode) == (60.0, 12.0, "HOLD")
    assert await missions.row_counts() == {"missions": 1, "mission_events": 3, "mission_track": 6}

    geo = await missions.as_geojson(m.id)
    features = {f["properties"]["kind"]: f for f in geo["features"]}
    assert list(features) == ["planned_route", "flown_track", "target", "standoff"]
    assert features["planned_route"]["geometry"] == {"type": "LineString", "coordinates": ROUTE}
    assert features["flown_track"]["geometry"]["type"] == "LineString"
    assert features["flown_track"]["geometry"]["coordinates"] == [[p.lon, p.lat] for p in track]
    assert features["flown_track"]["properties"]["points"] == 6
    assert features["target"]["geometry"] == {"type": "Point", "coordinates": [-117.0842, 32.6401]}
    assert features["standoff"]["geometry"]["coordinates"] == [-117.0845, 32.6398]
    assert features["standoff"]["properties"]["zone_id"] == "helipad"
    assert {f["properties"]["mission_id"] for f in geo["features"]} == {m.id}

    unknown = str(uuid.uuid4())
    for call in (missions.track(unknown), missions.events(unknown), missions.as_geojson(unknown)):
        with pytest.raises(MissionNotFound):
            await call


# ---------------------------------------------------------------------------------------------------------
# Restart and queries


async def test_reopened_store_returns_the_unfinished_missions(db_url: str, clock: Clock) -> None:
    s = await Store.open(db_url, clock=clock)
    ms = MissionStore(s)
    incident_id = await incident(s)
    ids: dict[str, str] = {}
    for name in ("landed", "flying", "aborted", "queued", "pending"):
        clock.advance(10)
        state = "queued" if name == "queued" else "pending_approval"
        ids[name] = (await ms.create(new_mission(incident_id, clock, state=state), "policy")).id
    await fly_to(ms, ids["landed"], clock, S.LAUNCHING, S.EN_ROUTE, S.ON_SCENE, S.RETURNING, S.LANDED)
    await fly_to(ms, ids["flying"], clock, S.LAUNCHING, S.EN_ROUTE, S.ON_SCENE)
    await ms.transition(ids["aborted"], S.ABORTED, actor="operator:a", reason="duplicate")
    await ms.append_track(ids["flying"], [TrackPoint(t=clock(), lat=32.64, lon=-117.08)])
    before = {i: await ms.get(i) for i in ids.values()}
    events = await ms.events(ids["flying"])
    await s.close()

    s = await Store.open(db_url, clock=clock)
    try:
        ms = MissionStore(s)
        unfinished = await ms.open_missions()
        assert [m.id for m in unfinished] == [ids["flying"], ids["queued"], ids["pending"]]  # oldest first
        assert unfinished[0] == before[ids["flying"]] and unfinished[0].state is S.ON_SCENE
        assert {i: await ms.get(i) for i in ids.values()} == before
        assert await ms.events(ids["flying"]) == events
        assert len(await ms.track(ids["flying"])) == 1
        # The resumed dispatcher carries on where the old one stopped.
        back = await ms.transition(ids["flying"], S.RETURNING, actor="dispatcher", reason="resumed")
        assert back.state is S.RETURNING

        newest_first = [m.id for m in await ms.list()]
        assert newest_first == [ids[n] for n in ("pending", "queued", "aborted", "flying", "landed")]
        assert [m.id for m in await ms.list(limit=2, offset=1)] == [ids["queued"], ids["aborted"]]
        assert [m.id for m in await ms.list(open_only=True)] == [
            ids[n] for n in ("pending", "queued", "flying")
        ]
        assert [m.id for m in await ms.list(S.LANDED)] == [ids["landed"]]
        assert await ms.list(S.LANDED, open_only=True) == []
        assert (await ms.count(), await ms.count(open_only=True), await ms.count(S.QUEUED)) == (5, 3, 1)
        with pytest.raises(ValueError):
            await ms.list(limit=0)
        assert await ms.get(str(uuid.uuid4())) is None
    finally:
        await s.close()


# ---------------------------------------------------------------------------------------------------------
# HTTP API

API = "/api/v1"


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[httpx.AsyncClient, MissionStore]]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/api.sqlite")
    s = await Store.open(settings.database_url, clock=clock)
    app: FastAPI = create_app(settings, store=s, clock=clock)
    app.include_router(mission_router)
    ms = MissionStore(s)
    try:
        async with app.router.lifespan_context(app):
            app.state.missions = ms
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dfr.test") as c:
                await signed_in(c, s, Role.VIEWER)  # reads need any signed-in reader
                yield c, ms
    finally:
        await s.close()


async def test_api_lists_and_filters_missions(
    api: tuple[httpx.AsyncClient, MissionStore], clock: Clock
) -> None:
    client, ms = api
    incident_id = await incident(ms.store)
    done = await ms.create(new_mission(incident_id, clock), "policy")
    await ms.transition(done.id, S.DECLINED, actor="operator:a", reason="not needed")
    clock.advance(5)
    live = await ms.create(new_mission(incident_id, clock), "policy")
    await fly_to(ms, live.id, clock, S.LAUNCHING)

    page = (await client.get(f"{API}/missions")).json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 50, 0)
    assert [m["id"] for m in page["missions"]] == [live.id, done.id]
    assert Mission.model_validate(page["missions"][0]) == await ms.get(live.id)
    only_open = (await client.get(f"{API}/missions", params={"open": "true"})).json()
    assert [m["id"] for m in only_open["missions"]] == [live.id] and only_open["total"] == 1
    declined = (await client.get(f"{API}/missions", params={"state": "declined"})).json()
    assert [m["id"] for m in declined["missions"]] == [done.id]
    assert declined["missions"][0]["reason"] == "not needed"
    paged = (await client.get(f"{API}/missions", params={"limit": 1, "offset": 1})).json()
    assert [m["id"] for m in paged["missions"]] == [done.id] and paged["total"] == 2

    for params, field in (
        ({"state": "flying"}, "state"),
        ({"open": "maybe"}, "open"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ):
        response = await client.get(f"{API}/missions", params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"]["field"] == field


async def test_api_one_mission_its_events_and_geojson(
    api: tuple[httpx.AsyncClient, MissionStore], clock: Clock
) -> None:
    client, ms = api
    m = await ms.create(new_mission(await incident(ms.store), clock), "policy")
    await fly_to(ms, m.id, clock, S.LAUNCHING, S.EN_ROUTE)
    await ms.append_track(
        m.id,
        [TrackPoint(t=clock(), lat=32.635, lon=-117.09), TrackPoint(t=clock(), lat=32.636, lon=-117.089)],
    )

    one = await client.get(f"{API}/missions/{m.id}")
    assert one.status_code == 200
    assert Mission.model_validate(one.json()) == await ms.get(m.id)
    assert one.json()["state"] == "en_route" and one.json()["planned_route"] == ROUTE

    events = await client.get(f"{API}/missions/{m.id.upper()}/events")  # any UUID spelling
    assert events.status_code == 200
    body = events.json()
    assert body["mission_id"] == m.id
    assert [(e["from_state"], e["to_state"]) for e in body["events"]] == [
        (None, "pending_approval"),
        ("pending_approval", "launching"),
        ("launching", "en_route"),
    ]

    geo = await client.get(f"{API}/missions/{m.id}/geojson")
    assert geo.status_code == 200 and geo.headers["content-type"] == "application/geo+json"
    assert geo.json() == await ms.as_geojson(m.id)
    assert [f["properties"]["kind"] for f in geo.json()["features"]] == [
        "planned_route",
        "flown_track",
        "target",
    ]


async def test_api_unknown_and_malformed_ids(api: tuple[httpx.AsyncClient, MissionStore]) -> None:
    client, _ = api
    unknown = uuid.uuid4()
    for suffix in ("", "/events", "/geojson"):
        response = await client.get(f"{API}/missions/{unknown}{suffix}")
        assert response.status_code == 404, suffix
        problem = response.json()["detail"]
        assert (problem["code"], problem["field"]) == ("not_found", "mission_id")
        assert problem["reason"] == f"no mission with id {unknown}"
        malformed = await client.get(f"{API}/missions/not-a-uuid{suffix}")
        assert malformed.status_code == 422
        assert malformed.json()["detail"]["field"] == "mission_id"
        assert malformed.json()["detail"]["reason"]


async def test_api_without_a_mission_store_is_503(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.sqlite"))
    app.include_router(mission_router)  # app.state.missions never set
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get(f"{API}/missions")
        assert response.status_code == 503
        assert response.json()["detail"]["code"] == "not_ready"
        schema = (await c.get("/openapi.json")).json()
        assert {f"{API}/missions", f"{API}/missions/{{mission_id}}/geojson"} <= set(schema["paths"])
