"""The live event bus: publishing never blocks, a slow reader loses its oldest events and is told so."""

from __future__ import annotations

import asyncio

import pytest

from dfr.api.live_routes import format_sse
from dfr.live.bus import EventBus, overflow_event


def ev(i: int) -> dict[str, object]:
    return {"type": "telemetry", "data": {"i": i}}


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
    assert slow.get_nowait() == {"type": "overflow", "data": {"dropped": 1}}
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


def test_events_need_a_type_and_sse_framing_is_one_data_line() -> None:
    bus = EventBus()
    with pytest.raises(ValueError):
        bus.publish({"data": {}})
    text = format_sse({"type": "mission", "data": {"reason": "line one\nline two", "state": "en_route"}})
    assert text == 'event: mission\ndata: {"reason":"line one\\nline two","state":"en_route"}\n\n'
