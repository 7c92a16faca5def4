"""Every background part of the service is supervised (issue 12): one that dies is logged by name,
shown as down by /api/v1/healthz while it waits to restart, and restarted.

Real parts throughout: mosquitto, the SQLite store, the MQTT ingest and publisher, the API app (and, in
the last test, the whole service). The one thing injected is the death itself: the first MQTT client
the part asks for cannot be made (as when a TLS context cannot be built), which raises out of the
part's run; before supervision that task died once and for all, and nothing said so but a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from dfr.api import create_app
from dfr.domain.missions import MissionState
from dfr.ingest import MqttIngest
from dfr.ingest.mqtt import INGEST_PART
from dfr.live import EventBus, MissionEvent
from dfr.live.mqtt_out import PUBLISH_PART, PUMP_PART, MqttPublisher
from dfr.service import http_server, running_service
from dfr.settings import Settings
from dfr.store import Store
from dfr.supervision import Backoff, PartState, Supervisor
from dfr.video.hub import JANITOR_PART
from dfr.video.watch import WATCH_PART
from sim.harness import free_udp_base_port
from tests.integration.mosquitto import Mosquitto
from tests.support.api import AREA, NEAR_CIVIC, POLICY, mission, report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

WAIT_S = 10.0
BACKOFF = Backoff(initial_s=2.0)
"""Long enough for the test to read /healthz while the part waits to restart (in-process, milliseconds)."""


def fails_once(make: Callable[..., aiomqtt.Client]) -> Callable[..., aiomqtt.Client]:
    calls = 0

    def make_client(**kwargs: Any) -> aiomqtt.Client:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected: no MQTT client")
        return make(**kwargs)

    return make_client


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Store, Supervisor]]:
    """The API app over a real store, with a supervisor of its own, as the service wires them."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}")
    async with await Store.open(settings.database_url) as store:
        app = create_app(settings, store)
        app.state.store = store  # what the lifespan does (ASGITransport does not run it)
        sup = Supervisor("dfr", backoff=BACKOFF)
        app.state.supervisor = sup
        try:
            yield app, store, sup
        finally:
            await sup.stop()


async def health(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/api/v1/healthz")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body


async def dies_then_restarts(app: FastAPI, sup: Supervisor, part: str) -> None:
    """The part is shown down (restarting, with its error) while it waits, then runs again."""
    async with asyncio.timeout(WAIT_S):
        await sup.wait_until(lambda s: s.parts[part].state is PartState.RESTARTING)
    down = await health(app)
    assert down["status"] == "degraded" and down["supervised"][part] == "restarting"
    (shown,) = [p for p in down["parts"] if p["name"] == part]
    assert "injected: no MQTT client" in shown["last_error"]
    status = sup.parts[part]
    async with asyncio.timeout(WAIT_S):
        await sup.wait_until(lambda _: status.state is PartState.RUNNING and status.restarts == 1)
    up = await health(app)
    assert up["status"] == "ok" and up["parts"] == [] and up["supervised"][part] == "running"


async def test_mqtt_ingest_that_dies_is_shown_down_restarted_and_ingests(
    api: tuple[FastAPI, Store, Supervisor], mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    app, store, sup = api
    ingest = MqttIngest(Settings(mqtt_url=mosquitto.url), store, client_id=f"dfr-test-{uuid.uuid4().hex[:8]}")
    ingest._client = fails_once(ingest._client)  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="dfr.supervision"):
        ingest.start(sup)
        await dies_then_restarts(app, sup, INGEST_PART)
    assert any(INGEST_PART in r.getMessage() and r.exc_info for r in caplog.records)  # logged by name
    try:
        async with asyncio.timeout(WAIT_S):
            await ingest.connected.wait()
        assert ingest.running
        body = report("after-restart", *NEAR_CIVIC)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as sender:
            await sender.subscribe("dfr/incidents/+", qos=1)
            await sender.publish("dfr/incidents", json.dumps(body), qos=1)
            async with asyncio.timeout(WAIT_S):
                answer = await anext(sender.messages)
        receipt = json.loads(answer.payload)  # type: ignore[arg-type]
        assert answer.topic.value == "dfr/incidents/accepted", receipt
        assert receipt["external_id"] == "after-restart" and receipt["created"]
        assert await store.get_incident(receipt["incident_id"]) is not None
    finally:
        await ingest.stop()
    assert sup.parts[INGEST_PART].state is PartState.STOPPED and not ingest.running


async def test_mqtt_out_that_dies_is_shown_down_restarted_and_publishes(
    api: tuple[FastAPI, Store, Supervisor], mosquitto: Mosquitto
) -> None:
    app, _, sup = api
    bus = EventBus()
    pub = MqttPublisher(bus, mosquitto.url, client_id=f"dfr-live-{uuid.uuid4().hex[:8]}")
    pub._client = fails_once(pub._client)  # type: ignore[method-assign]
    pub.start(sup)
    try:
        launching = mission(MissionState.LAUNCHING)
        bus.publish(MissionEvent(launching))  # while the publisher is dead: kept for after the restart
        await dies_then_restarts(app, sup, PUBLISH_PART)
        assert sup.parts[PUMP_PART].state is PartState.RUNNING and sup.parts[PUMP_PART].restarts == 0
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as reader:
            await reader.subscribe(f"dfr/missions/{launching.id}", qos=1)  # retained: comes at once
            async with asyncio.timeout(WAIT_S):
                message = await anext(reader.messages)
        assert json.loads(message.payload) == launching.model_dump(mode="json")  # type: ignore[arg-type]
    finally:
        await pub.stop()
        bus.close()
    assert {sup.parts[p].state for p in (PUBLISH_PART, PUMP_PART)} == {PartState.STOPPED}


async def test_the_service_shows_every_background_part_and_stops_them_cleanly(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """MQTT ingest and out, the telemetry feed, the video watch, discovery and the queue retry all run
    as named parts of the service's supervisor, listed by /healthz; a clean stop restarts none."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        mqtt_url=mosquitto.url,
        video_evidence_dir=str(tmp_path / "evidence"),
        mavlink_base_port=free_udp_base_port(4),  # no drone comes up: not needed here
    )
    async with running_service(settings) as svc:
        sup: Supervisor = svc.app.state.supervisor
        async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
            body = (await client.get("/api/v1/healthz")).json()
        expected = {
            "fleet-discovery",
            "live-telemetry",
            "dispatcher-retry-queued",
            INGEST_PART,
            PUBLISH_PART,
            PUMP_PART,
            WATCH_PART,
        }
        assert body["status"] == "ok"
        assert {name for name, state in body["supervised"].items() if state == "running"} >= expected
        assert JANITOR_PART not in body["supervised"]  # started with the first video session
    assert all(p.state is PartState.STOPPED and p.restarts == 0 for p in sup.parts.values()), sup.parts
