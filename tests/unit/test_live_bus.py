"""The live event bus: publishing never blocks, a slow reader loses its oldest events and is told so, and
a subscriber that fails is logged by name, counted and skipped without touching anyone else."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest

from dfr.api.live_routes import format_sse
from dfr.live.bus import EventBus, overflow_event
from dfr.live.events import Event, EventKind, OverflowEvent, TelemetryEvent, encode, wire

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def ev(i: int) -> TelemetryEvent:
    return TelemetryEvent("cv-1", {"i": i}, time=T0)


async def test_slow_subscriber_drops_oldest_and_gets_an_overflow_marker() -> None:
    bus = EventBus()
    slow = bus.subscribe("slow", maxsize=3)
    fast = bus.subscribe("fast", maxsize=100)
    for i in range(5):
        bus.publish(ev(i))  # synchronous: no reader ever holds the publisher up
    assert slow.dropped == 2 and fast.dropped == 0
    # the marker comes first, exactly where the gap is, then the newest events in order
    assert await slow.get() == overflow_event(2)
    assert [await slow.get() for _ in range(3)] == [ev(2), ev(3), ev(4)]
    assert [await fast.get() for _ in range(5)] == [ev(i) for i in range(5)]
    # after catching up, a new overflow reports only what was lost since
    for i in range(5, 9):
        bus.publish(ev(i))
    assert slow.get_nowait() == OverflowEvent(1)
    assert slow.get_nowait() == ev(6)


async def test_reader_woken_after_an_overflow_gets_the_marker_first() -> None:
    bus = EventBus()
    sub = bus.subscribe("slow", maxsize=2)
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)  # the reader waits on the empty queue
    for i in range(4):  # wakes it, but it resumes only after all four: 0 and 1 are lost
        bus.publish(ev(i))
    assert await reader == overflow_event(2)
    assert [sub.get_nowait(), sub.get_nowait()] == [ev(2), ev(3)]


async def test_close_ends_readers_after_they_drain() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    waiting = bus.subscribe()
    reader = asyncio.create_task(waiting.get())
    await asyncio.sleep(0)
    bus.publish(ev(1))
    assert await reader == ev(1)
    reader = asyncio.create_task(waiting.get())
    await asyncio.sleep(0)
    bus.close()
    assert await asyncio.wait_for(reader, 1) is None  # a blocked reader wakes up at the end
    assert [e async for e in sub] == [ev(1)]
    assert await sub.get() is None  # the end stays the end
    bus.publish(ev(2))  # ignored after close, no error
    late = bus.subscribe()
    assert await late.get() is None  # arriving during shutdown: finished at once


async def test_unsubscribed_reader_gets_nothing_more() -> None:
    bus = EventBus()
    with bus.subscribe() as sub:
        bus.publish(ev(1))
    bus.publish(ev(2))
    assert bus.subscribers == ()
    assert [e async for e in sub] == [ev(1)]


def test_one_serialisation_for_sse_and_mqtt_and_sse_framing_is_one_data_line() -> None:
    event = TelemetryEvent("cv-1", {"text": "line one\nline two"}, mission_id="m-1", ready_in_s=None, time=T0)
    kind, data = wire(event)
    assert kind == EventKind.TELEMETRY == "telemetry"
    assert json.loads(data) == {
        "drone_id": "cv-1",
        "time": "2026-01-02T03:04:05+00:00",
        "mission_id": "m-1",
        "ready_in_s": None,
        "not_ready": None,
        "telemetry": {"text": "line one\nline two"},
    }
    assert format_sse(event) == f"event: telemetry\ndata: {data}\n\n" and "\n" not in data
    assert encode(event) == data.encode()  # MQTT out sends the same bytes
    assert format_sse(OverflowEvent(3)) == 'event: overflow\ndata: {"dropped":3}\n\n'


async def test_a_failing_subscriber_is_logged_counted_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """One subscriber raises on every event: the publisher never sees it, the other subscriber gets
    every event, the failing one goes on with its next event, and each failure is counted by name."""
    bus = EventBus()
    broken_sub, healthy_sub = bus.subscribe("broken"), bus.subscribe("healthy")
    tried: list[Event] = []
    got: list[Event] = []

    async def broken(event: Event) -> None:
        tried.append(event)
        raise RuntimeError("subscriber down")

    async def healthy(event: Event) -> None:
        got.append(event)

    with caplog.at_level(logging.ERROR, logger="dfr.live.bus"):
        tasks = [
            asyncio.create_task(bus.serve(broken_sub, broken)),
            asyncio.create_task(bus.serve(healthy_sub, healthy)),
        ]
        for i in range(3):
            bus.publish(ev(i))  # never raises
        await asyncio.wait_for(bus.wait_for_failures("broken", 3), 5)
        bus.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)  # both end with the bus, neither died
    assert tried == got == [ev(0), ev(1), ev(2)]
    assert bus.failures == {"broken": 3}
    logged = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(logged) == 3 and all(r.exc_info is not None for r in logged)
