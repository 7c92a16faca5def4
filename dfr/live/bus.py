"""The in-process event bus that carries live data from the controller to its outbound feeds.

Publishers (the dispatcher's mission listener, the telemetry watcher) must never wait for a consumer:
a browser on a slow link or an MQTT broker that is down must not delay a mission step. So `publish` is a
plain function that only puts the event into each subscriber's own bounded `asyncio.Queue`. When a
subscriber's queue is full its *oldest* events are dropped (the newest state is the useful one for a
live view), and the subscriber's next read returns an ``{"type": "overflow"}`` marker first, saying how
many it lost, so that it knows to re-read the full state (e.g. ``GET /api/v1/drones``) rather than
silently showing a stale picture.

An event is a dict ``{"type": <str>, "data": <JSON-able dict>}``; the types in use are listed in
`EVENT_TYPES`. `EventBus.close` ends every subscription, which is how open streams finish at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

__all__ = ["DEFAULT_QUEUE_SIZE", "EVENT_TYPES", "Event", "EventBus", "Subscription", "overflow_event"]

log = logging.getLogger(__name__)

Event = dict[str, Any]

EVENT_TYPES: Final = ("mission", "telemetry", "incident", "overflow")
"""``mission``: the Mission JSON after each change; ``telemetry``: one drone's throttled state;
``incident``: a new or merged incident; ``overflow``: this subscriber lost events (``data.dropped``)."""

DEFAULT_QUEUE_SIZE: Final = 256
"""Per subscriber: about two minutes of 2 Hz telemetry for one drone, far more than a healthy reader lags."""


def overflow_event(dropped: int) -> Event:
    """The marker a subscriber reads in place of the events it lost."""
    return {"type": "overflow", "data": {"dropped": dropped}}


class Subscription:
    """One consumer's view of the bus: its own bounded queue, read with `get` or ``async for``.

    Created by `EventBus.subscribe`; use it as a context manager (sync or async) so that it is removed
    from the bus when the consumer goes away, or call `close`.
    """

    def __init__(self, bus: EventBus, maxsize: int, name: str) -> None:
        if maxsize < 1:
            raise ValueError("a subscription needs room for at least one event")
        self.name = name
        self.maxsize = maxsize
        self._bus = bus
        # None is the end-of-stream sentinel: it wakes a reader blocked in get() when the bus closes.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._pending_drops = 0  # dropped since the reader last saw an overflow marker
        self._held: list[Event | None] = []  # at most one event, read but due after an overflow marker
        self.dropped = 0
        """Events lost to overflow since this subscription was made (for logs and metrics)."""
        self.closed = False

    def __repr__(self) -> str:
        return f"<Subscription {self.name!r} queued={self._queue.qsize()} dropped={self.dropped}>"

    @property
    def qsize(self) -> int:
        return self._queue.qsize()

    def _put(self, event: Event) -> None:
        """Called by the bus: enqueue without ever blocking, dropping the oldest event if full."""
        if self.closed:
            return
        if self._queue.full():
            self._queue.get_nowait()  # never the sentinel: it is only queued once closed
            self._pending_drops += 1
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("live subscriber %s is too slow: %d event(s) dropped", self.name, self.dropped)
        self._queue.put_nowait(event)

    def _end(self) -> None:
        """Called by the bus on close: the reader gets what is queued, then the end of the stream."""
        if self.closed:
            return
        self.closed = True
        if self._queue.full():
            self._queue.get_nowait()
            self._pending_drops += 1
            self.dropped += 1
        self._queue.put_nowait(None)

    async def get(self) -> Event | None:
        """The next event, an overflow marker if events were lost since the last read, or None at the end.

        Drops happen at the head of the queue, i.e. right after what the reader last received, so the
        marker is delivered exactly where the gap is.
        """
        if self._held:
            return self._keep_end(self._held.pop())
        if self._pending_drops:
            return self._overflow()
        return self._after_wait(await self._queue.get())

    def get_nowait(self) -> Event | None:
        """Like `get` without waiting; raises `asyncio.QueueEmpty` if nothing is there yet."""
        if self._held:
            return self._keep_end(self._held.pop())
        if self._pending_drops:
            return self._overflow()
        return self._after_wait(self._queue.get_nowait())

    def _after_wait(self, event: Event | None) -> Event | None:
        """A reader woken by one event resumes only after later publishes, which may have overflowed the
        queue meanwhile: those losses precede `event`, so the marker goes first and `event` is held."""
        if self._pending_drops:
            self._held.append(event)
            return self._overflow()
        return self._keep_end(event)

    def _overflow(self) -> Event:
        dropped, self._pending_drops = self._pending_drops, 0
        return overflow_event(dropped)

    def _keep_end(self, event: Event | None) -> Event | None:
        if event is None:
            self._queue.put_nowait(None)  # the end stays the end for any further read
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event

    def close(self) -> None:
        """Leave the bus; a reader waiting in `get` gets None."""
        self._bus._remove(self)
        self._end()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of live events to any number of subscribers; publishing never blocks and never fails."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: list[Subscription] = []
        self._closed = False
        self.published = 0
        """Events published since start (for health output)."""

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscribers(self) -> tuple[Subscription, ...]:
        return tuple(self._subscribers)

    def subscribe(self, name: str = "subscriber", maxsize: int | None = None) -> Subscription:
        """A new subscription that sees every event published from now on (not earlier ones).

        On a closed bus the subscription is already at its end, so a consumer arriving during shutdown
        finishes at once instead of waiting for events that will never come.
        """
        sub = Subscription(self, maxsize or self.queue_size, name)
        if self._closed:
            sub._end()
        else:
            self._subscribers.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber. Synchronous on purpose: the caller cannot be held up."""
        if self._closed:
            return
        if not isinstance(event.get("type"), str):
            raise ValueError("an event needs a string 'type'")
        self.published += 1
        for sub in tuple(self._subscribers):
            sub._put(event)

    def close(self) -> None:
        """End every subscription (readers drain what is queued, then stop) and refuse new events."""
        self._closed = True
        subs, self._subscribers = self._subscribers, []
        for sub in subs:
            sub._end()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
