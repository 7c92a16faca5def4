"""Live data end to end: the SSE stream, the drone views and outbound MQTT against the real stack.

The simulator process, the real service over HTTP (uvicorn) and a real mosquitto; nothing is mocked. A
gunshot near the Civic Center dock is flown by cv-1 and watched three ways at once: the SSE stream (as a
browser would read it), an MQTT subscriber (as a CAD bridge would) and the drone views. The stream is
left open when the server stops, which must end it cleanly rather than hang the shutdown.

The other tests need no simulator: the stream route alone on a bare app (framing, heartbeat, overflow,
shutdown), and the MQTT publisher against a broker that is down at first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from dfr.api.auth_routes import router as auth_router
from dfr.api.live_routes import router as live_router
from dfr.auth import Role
from dfr.domain.missions import MissionState
from dfr.live import EventBus, MissionEvent, TelemetryEvent
from dfr.live.mqtt_out import MqttPublisher
from dfr.service import http_server, running_service
from dfr.settings import Settings
from dfr.store import Store
from sim.harness import SimProcess
from tests.integration.mosquitto import Mosquitto
from tests.support.api import AREA, POLICY, mission, report
from tests.support.auth import signed_in
from tests.support.wait import until, until_sync

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SPEED = 20.0
NEAR_CIVIC = (32.6450, -117.0800)  # ~650 m from the civic dock: cv-1's scene
FLIGHT = ["launching", "en_route", "on_scene", "returning", "landed"]


# ---------------------------------------------------------------------------------------------------------
# Readers


@dataclass
class SseReader:
    """Reads one stream as an EventSource would: frames split at blank lines, comments kept apart."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    headers: httpx.Headers | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended_cleanly: bool = False

    async def run(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/v1/stream") as r:
            assert r.status_code == 200
            self.headers = r.headers
            kind, data = None, []
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    if line == ": connected":
                        self.connected.set()
                elif line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data.append(line.partition(":")[2].strip())
                elif line == "" and kind is not None:
                    self.events.append((kind, json.loads("\n".join(data))))
                    kind, data = None, []
                    self.changed.set()
            self.ended_cleanly = True  # the server finished the response (no error mid-stream)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]

    async def wait(self, pred: Any, timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not pred(self):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"stream never showed {what}; got {[k for k, _ in self.events]}") from None


@dataclass
class MqttWatcher:
    """Collects what a subscriber receives: (topic, JSON payload) in arrival order."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # the test disconnects when it is done
            async for message in client.messages:
                self.seen.append((message.topic.value, json.loads(bytes(message.payload))))
                self.changed.set()

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [p for t, p in self.seen if t == topic]

    async def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not pred():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"MQTT never showed {what}; got {[t for t, _ in self.seen]}") from None


async def retained(broker: Mosquitto, topic: str) -> tuple[dict[str, Any], bool]:
    """What a subscriber arriving now gets on `topic` (the broker's retained message)."""
    async with aiomqtt.Client(broker.host, broker.port) as late:
        await late.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            message = await anext(late.messages)
    return json.loads(bytes(message.payload)), message.retain


# ---------------------------------------------------------------------------------------------------------
# The whole stack


async def test_flight_is_streamed_published_and_shown(tmp_path: Path, mosquitto: Mosquitto) -> None:
    started = time.monotonic()
    # the HTTP client outlives the server, so that it is the server that ends the open stream
    client = httpx.AsyncClient(timeout=10)
    async with client, SimProcess(area=AREA, drones=1, speed=SPEED) as sim:  # only cv-1 is up
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
            area=str(AREA),
            policy=str(POLICY),
            time_scale=SPEED,
            mavlink_base_port=sim.base_port,
            mqtt_url=mosquitto.url,
        )
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            mqtt = MqttWatcher()
            async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="test-console") as mq:
                await mq.subscribe("dfr/missions/+", qos=1)
                await mq.subscribe("dfr/drones/+/telemetry", qos=0)
                mqtt_task = asyncio.create_task(mqtt.run(mq))
                sse = SseReader()
                async with http_server(svc.app) as url:
                    client.base_url = httpx.URL(url)
                    await signed_in(client, svc.store)
                    reader = asyncio.create_task(sse.run(client))
                    await asyncio.wait_for(sse.connected.wait(), 5)
                    assert sse.headers is not None
                    assert sse.headers["content-type"].startswith("text/event-stream")

                    # the static views
                    drones = (await client.get("/api/v1/drones")).json()["drones"]
                    assert [d["id"] for d in drones] == ["cv-1", "cv-2", "cv-3", "cv-4"]
                    cv1 = drones[0]
                    assert cv1["connected"] and not cv1["busy"] and cv1["mission_id"] is None
                    assert cv1["dock"] == "cv-civic" and cv1["telemetry"]["lat"] is not None
                    assert not drones[1]["connected"] and drones[1]["telemetry"] is None  # not simulated
                    r = await client.get("/api/v1/drones/cv-99")
                    assert r.status_code == 404
                    assert r.json()["detail"]["code"] == "not_found"
                    assert "cv-99" in r.json()["detail"]["reason"]
                    assert r.json()["detail"]["field"] == "drone_id"
                    docks = (await client.get("/api/v1/docks")).json()["docks"]
                    assert docks[0]["id"] == "cv-civic" and docks[0]["drones"] == ["cv-1", "cv-4"]
                    r = await client.get("/api/v1/area")
                    assert r.headers["content-type"].startswith("application/geo+json")
                    roles = {f["properties"]["role"] for f in r.json()["features"]}
                    assert roles == {"operating_area", "no_fly", "dock"}

                    # the flight
                    flight_started = time.monotonic()
                    r = await client.post("/api/v1/incidents", json=report("live-1", *NEAR_CIVIC))
                    assert r.status_code == 201, r.text
                    incident_id = r.json()["incident"]["id"]
                    await sse.wait(
                        lambda s: any(m["state"] == "en_route" for m in s.of("mission")), 15, "en_route"
                    )
                    mission_id = sse.of("mission")[0]["id"]
                    busy = (await client.get("/api/v1/drones/cv-1")).json()
                    assert busy["busy"] and busy["mission_id"] == mission_id, busy
                    await sse.wait(
                        lambda s: any(m["state"] == "landed" for m in s.of("mission")), 40, "landed"
                    )
                    flight_s = time.monotonic() - flight_started

                    async def cv1_free() -> bool:
                        return not (await client.get("/api/v1/drones/cv-1")).json()["busy"]

                    await until(cv1_free, 5, "cv-1 free")  # the dispatcher frees it just after "landed"

                    # stream: incident first, then every mission step once and in order
                    assert sse.of("incident")[0]["incident"]["id"] == incident_id
                    assert sse.of("incident")[0]["created"] is True
                    missions = sse.of("mission")
                    assert {m["id"] for m in missions} == {mission_id}
                    assert [m["state"] for m in missions] == FLIGHT
                    assert missions[-1]["drone_id"] == "cv-1" and missions[-1]["landed_at"] is not None
                    # telemetry: cv-1 moved and flew, tagged with its mission while busy, throttled to 2 Hz
                    tel = [t for t in sse.of("telemetry") if t["drone_id"] == "cv-1"]
                    positions = {(t["telemetry"]["lat"], t["telemetry"]["lon"]) for t in tel}
                    assert len(positions) > 5, positions
                    assert any(t["telemetry"]["in_air"] for t in tel)
                    assert any(t["mission_id"] == mission_id for t in tel)
                    stream_s = time.monotonic() - flight_started
                    assert len(tel) <= 2 * stream_s + 3, (len(tel), stream_s)
                    assert "overflow" not in {k for k, _ in sse.events}

                    # MQTT: the live subscriber saw the mission steps in order, and cv-1's telemetry
                    topic = f"dfr/missions/{mission_id}"
                    await mqtt.wait(lambda: len(mqtt.on(topic)) >= 5, 5, "five mission changes")
                    assert [p["state"] for p in mqtt.on(topic)] == FLIGHT
                    mqtt_tel = mqtt.on("dfr/drones/cv-1/telemetry")
                    assert mqtt_tel and mqtt_tel[0]["drone_id"] == "cv-1"
                    assert len({(p["telemetry"]["lat"], p["telemetry"]["lon"]) for p in mqtt_tel}) > 5
                    # ...and a console connecting now gets the latest state, retained
                    latest, was_retained = await retained(mosquitto, f"dfr/missions/{mission_id}")
                    assert was_retained and latest["state"] == "landed"
                    status, _ = await retained(mosquitto, "dfr/live/status")
                    assert status == {"online": True}

                    assert not reader.done()
                    stop_started = time.monotonic()
                # the server stopped with the stream still open: it ended it, cleanly and at once
                await asyncio.wait_for(reader, 5)
                assert sse.ended_cleanly
                assert time.monotonic() - stop_started < 3
                mqtt_task.cancel()
        # the service stopped: the publisher said so on its status topic before disconnecting
        status, _ = await retained(mosquitto, "dfr/live/status")
        assert status == {"online": False}
    print(f"flight {flight_s:.1f} s wall, test {time.monotonic() - started:.1f} s wall")


# ---------------------------------------------------------------------------------------------------------
# The stream route alone


@pytest.fixture
async def bare_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, EventBus]]:
    """The live router alone, with a real store behind sign-in (the stream needs a reader's session)."""
    app = FastAPI()
    bus = EventBus()
    app.state.bus = bus
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'auth.sqlite'}")
    app.state.store = store
    app.include_router(auth_router)
    app.state.sse_heartbeat_s = 0.2
    app.include_router(live_router)
    yield app, bus
    bus.close()
    await store.close()


async def test_stream_framing_heartbeat_overflow_and_shutdown(bare_app: tuple[FastAPI, EventBus]) -> None:
    app, bus = bare_app
    sse = SseReader()
    client = httpx.AsyncClient(timeout=5)  # outlives the server: the server ends the stream
    async with client:
        async with http_server(app) as url:
            client.base_url = httpx.URL(url)
            assert (await client.get("/api/v1/stream")).status_code == 401  # readers only
            await signed_in(client, app.state.store, Role.VIEWER)
            r = await client.get("/api/v1/drones")
            assert r.status_code == 503 and r.json()["detail"]["code"] == "not_ready"  # no fleet here
            reader = asyncio.create_task(sse.run(client))
            await asyncio.wait_for(sse.connected.wait(), 5)
            # idle stream: comments keep proxies from closing it
            await until_sync(lambda: "heartbeat" in sse.comments, 5, "a heartbeat comment")
            launching = mission(MissionState.LAUNCHING)
            bus.publish(MissionEvent(launching))
            await sse.wait(lambda s: len(s.events) == 1, 2, "the mission event")
            assert sse.events == [("mission", launching.model_dump(mode="json"))]
            # a reader that falls far behind is told how much it lost instead of blocking the bus
            (sub,) = [s for s in bus.subscribers if s.name.startswith("sse")]
            for i in range(sub.maxsize + 10):
                bus.publish(TelemetryEvent("cv-1", {"i": i}))
            last = sub.maxsize + 9
            await sse.wait(lambda s: s.events[-1][1].get("telemetry") == {"i": last}, 5, "the last event")
            # the marker sits where the gap is: after the mission event, before the oldest survivor
            assert sse.events[1] == ("overflow", {"dropped": 10})
            assert sse.events[2][0] == "telemetry" and sse.events[2][1]["telemetry"] == {"i": 10}
            assert len(sse.events) == 2 + sub.maxsize
            stop_started = time.monotonic()
        await asyncio.wait_for(reader, 5)  # leaving http_server with the stream open ends it
        assert sse.ended_cleanly and time.monotonic() - stop_started < 3
    assert bus.subscribers == ()  # the stream's subscription went with it


async def test_client_disconnect_ends_the_stream(bare_app: tuple[FastAPI, EventBus]) -> None:
    app, bus = bare_app
    async with http_server(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        await signed_in(client, app.state.store, Role.VIEWER)
        async with client.stream("GET", "/api/v1/stream") as r:
            async for line in r.aiter_lines():
                if line == ": connected":
                    break
            assert len(bus.subscribers) == 1

        async def unsubscribed() -> bool:
            return not bus.subscribers

        await until(unsubscribed, 5, "the stream's subscription removed")


# ---------------------------------------------------------------------------------------------------------
# The MQTT publisher alone


async def test_publisher_queues_while_broker_down_then_delivers(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    bus = EventBus()
    # backoff 0.5 s, then 1 s: after the second failure the test has >= 0.8 s to start the broker and
    # subscribe before the publisher tries again (and sends telemetry, which is not retained)
    pub = MqttPublisher(bus, mosquitto.url, telemetry_queue=5, initial_backoff_s=0.5, max_backoff_s=1.0)
    pub.start()
    try:
        t0 = time.monotonic()
        first = mission(MissionState.LAUNCHING)
        bus.publish(MissionEvent(first))
        bus.publish(MissionEvent(first.model_copy(update={"state": MissionState.EN_ROUTE})))
        for i in range(20):
            bus.publish(TelemetryEvent("cv-1", {"i": i}))
        assert time.monotonic() - t0 < 0.05  # publishing never waits for the broker

        async def failed_twice() -> bool:
            return pub.counters.connection_failures >= 2

        await until(failed_twice, 5, "two failed connection attempts")
        assert not pub.connected.is_set() and pub.last_error
        assert pub.backlog == (2, 5) and pub.counters.telemetry_dropped == 15  # oldest telemetry gone

        mqtt = MqttWatcher()
        mosquitto.start()
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as mq:
            await mq.subscribe("dfr/#", qos=1)
            collector = asyncio.create_task(mqtt.run(mq))

            async def sent() -> bool:
                return pub.backlog == (0, 0) and pub.counters.telemetry_published == 5

            await until(sent, 10, "the backlog sent after reconnecting")
            latest, was_retained = await retained(mosquitto, f"dfr/missions/{first.id}")
            assert was_retained and latest["state"] == "en_route"
            topic = "dfr/drones/cv-1/telemetry"
            await mqtt.wait(lambda: len(mqtt.on(topic)) >= 5, 5, "the queued telemetry")
            collector.cancel()
        tel = [p["telemetry"]["i"] for p in mqtt.on(topic)]
        assert tel == [15, 16, 17, 18, 19]  # the newest telemetry, in order
        assert pub.counters.missions_published == 2
    finally:
        await pub.stop()
        bus.close()
