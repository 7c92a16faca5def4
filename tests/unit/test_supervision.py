"""Supervised background tasks (issue 12): a part that raises is logged by name and restarted, one that
keeps failing is given up, and the health endpoint lists what is down."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from dfr.api import create_app
from dfr.settings import Settings
from dfr.store import Store
from dfr.supervision import Backoff, OnFailure, PartState, Supervisor
from sim.fleet import CLOCK, DroneSpec, Fleet
from tests.support.wait import until_sync

FAST = Backoff(initial_s=0.01, max_s=0.05)


async def test_a_part_that_raises_is_logged_by_name_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test", backoff=FAST)
    runs = 0
    second_run = asyncio.Event()

    async def part() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("boom")
        second_run.set()
        await asyncio.Event().wait()  # then runs until stopped

    with caplog.at_level(logging.WARNING, logger="dfr.supervision"):
        sup.spawn("watcher", part)
        await asyncio.wait_for(second_run.wait(), 5)
    status = sup.parts["watcher"]
    assert status.state is PartState.RUNNING and status.restarts == 1 and "boom" in (status.last_error or "")
    assert sup.down() == []
    failed = [r for r in caplog.records if "watcher" in r.getMessage() and "failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None  # the traceback is logged with the part's name
    await sup.stop()
    assert status.state is PartState.STOPPED


async def test_a_part_that_returns_is_restarted_too() -> None:
    sup = Supervisor("test", backoff=FAST)
    runs: list[int] = []
    third = asyncio.Event()

    async def part() -> None:
        runs.append(1)
        if len(runs) == 3:
            third.set()
            await asyncio.Event().wait()

    sup.spawn("returns", part)
    await asyncio.wait_for(third.wait(), 5)
    assert sup.parts["returns"].restarts == 2
    await sup.stop()


async def test_a_part_that_keeps_failing_is_given_up_and_escalated() -> None:
    sup = Supervisor("test", backoff=FAST, max_failures=3)

    async def part() -> None:
        raise OSError("no such device")

    sup.spawn("camera", part)
    await asyncio.wait_for(sup.escalated.wait(), 5)
    assert sup.parts["camera"].state is PartState.FAILED and sup.parts["camera"].restarts == 2
    assert [p.name for p in sup.down()] == ["camera"]
    await sup.stop()


async def test_health_lists_the_parts_that_are_down(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}")
    async with await Store.open(settings.database_url) as store:
        app = create_app(settings, store)
        app.state.store = store  # what the lifespan does (ASGITransport does not run it)
        sup = Supervisor("dfr", backoff=Backoff(initial_s=3600))  # stays "restarting" during the test
        app.state.supervisor = sup
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            healthy = (await client.get("/api/v1/healthz")).json()
            assert healthy["status"] == "ok" and healthy["parts"] == []

            async def broken() -> None:
                raise RuntimeError("MAVSDK went away")

            async def fatal() -> None:
                raise RuntimeError("cannot bind")

            sup.spawn("fleet-discovery", broken)
            sup.spawn("other", fatal, on_failure=OnFailure.ESCALATE)
            await asyncio.wait_for(sup.wait_until(lambda s: len(s.down()) == 2), 5)
            r = await client.get("/api/v1/healthz")
            assert r.status_code == 200
            body = r.json()
            assert body["status"] == "degraded"
            parts = {p["name"]: p for p in body["parts"]}
            assert parts["fleet-discovery"]["state"] == "restarting"
            assert "MAVSDK went away" in parts["fleet-discovery"]["last_error"]
            assert parts["other"]["state"] == "failed"
        await sup.stop()


async def test_the_simulator_clock_survives_an_error_in_a_step() -> None:
    fleet = Fleet([DroneSpec(1, "d1", 32.64, -117.08, 150.0)], speed=10, base_port=9)  # discard port
    vehicle = fleet.vehicles[1]
    real_step = vehicle.step
    failed = asyncio.Event()

    def step_once_broken(dt: float) -> None:
        if not failed.is_set():
            failed.set()
            raise ValueError("a bad step")
        real_step(dt)

    vehicle.step = step_once_broken  # type: ignore[method-assign]
    fleet.supervisor.backoff = FAST
    await fleet.start()
    try:
        await asyncio.wait_for(failed.wait(), 5)
        await asyncio.wait_for(fleet.supervisor.wait_until(lambda s: s.parts[CLOCK].restarts == 1), 5)
        t0 = fleet.sim_time
        await until_sync(lambda: fleet.sim_time > t0 + 0.5, 5, "simulated time to go on")
    finally:
        await fleet.stop()
    assert fleet.supervisor.parts[CLOCK].state is PartState.STOPPED


async def test_fleet_discovery_is_restarted_after_an_error() -> None:
    from dfr.fleet.fleet import DISCOVERY, DroneLink
    from dfr.fleet.fleet import Fleet as ServiceFleet
    from sim.harness import free_udp_base_port

    fleet = ServiceFleet([DroneLink("d1", 1, f"udpin://127.0.0.1:{free_udp_base_port(1)}")])
    real = fleet._discover
    calls = 0

    async def discover_once_broken() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("mavsdk_server hiccup")
        await real()

    fleet._discover = discover_once_broken  # type: ignore[method-assign]
    sup = Supervisor("dfr", backoff=FAST)
    await fleet.start(sup)
    try:
        await asyncio.wait_for(sup.wait_until(lambda s: s.parts[DISCOVERY].restarts == 1), 10)
        assert sup.parts[DISCOVERY].state is PartState.RUNNING and sup.down() == []
    finally:
        await fleet.stop()
    assert sup.parts[DISCOVERY].state is PartState.STOPPED


async def test_a_part_its_owner_ends_stops_instead_of_restarting() -> None:
    """A part that must finish its work (an ingest draining its queue) is asked to return, not cancelled:
    after `ending`, its return is a stop; and one waiting out a back-off is stopped at once by `join`."""
    sup = Supervisor("test", backoff=Backoff(initial_s=3600))
    finish = asyncio.Event()
    finished: list[str] = []

    async def draining() -> None:
        await finish.wait()
        finished.append("drained")  # the work done after the stop was asked: not cut short

    async def broken() -> None:
        raise RuntimeError("down")

    sup.spawn("ingest", draining)
    sup.spawn("broken", broken)
    await asyncio.wait_for(sup.wait_until(lambda s: s.parts["broken"].state is PartState.RESTARTING), 5)
    sup.ending("ingest")
    finish.set()
    await asyncio.wait_for(sup.join("ingest", 5), 5)
    assert finished == ["drained"] and sup.parts["ingest"].state is PartState.STOPPED
    assert sup.parts["ingest"].restarts == 0
    sup.ending("broken")
    await asyncio.wait_for(sup.join("broken", 5), 1)  # no 3600 s back-off to wait out
    assert sup.parts["broken"].state is PartState.STOPPED and sup.down() == []
