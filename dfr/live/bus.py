"""The in-process event bus that carries live data from the controller to its outbound feeds.

Publishers (the ingests, the dispatcher, the telemetry watcher) must never wait for a consumer: a
browser on a slow link or an MQTT broker that is down must not delay a mission step. So `publish` is a
plain function that only puts the event into each subscriber's own bounded `asyncio.Queue`. When a
subscriber's queue is full its *oldest* events are dropped (the newest state is the useful one for a
live view), and the subscriber's next read returns an `OverflowEvent` first, saying how many it lost,
so that it knows to re-read the full state (e.g. ``GET /api/v1/drones``) rather than silently showing a
stale picture.

Events are the typed records of `dfr.live.events`. `EventBus.close` ends every subscription, which is
how open streams finish at shutdown.

A failing subscriber, one policy for all: whatever a subscriber does with an event runs in its own task
(`EventBus.serve`, or the SSE stream's loop), never in the publisher's. If it raises, the error is
logged with the subscriber's name, counted in `EventBus.failures` (shown by ``/api/v1/healthz``), and
the subscriber goes on with the next event; the other subscribers and the publisher never see it. So a
report that was committed is answered 201 whatever a subscriber does with its event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from dfr.live.events import Event, OverflowEvent

__all__ = ["DEFAULT_QUEUE_SIZE", "Event", "EventBus", "Handler", "Subscription", "overflow_event"]

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]

DEFAULT_QUEUE_SIZE: Final = 256
"""Per subscriber: about two minutes of 2 Hz telemetry for one drone, far more than a healthy reader lags."""


def overflow_event(dropped: int) -> OverflowEvent:
    """The marker a subscriber reads in place of the events it lost."""
    return OverflowEvent(dropped)


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

    def _overflow(self) -> OverflowEvent:
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
        self.failures: Counter[str] = Counter()
        """Events a subscriber failed on, per subscriber name, since start (``/api/v1/healthz``)."""
        self._failed = asyncio.Event()  # pulsed on each failure, for `wait_for_failures`

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
        """Hand `event` to every subscriber. Synchronous on purpose: the caller cannot be held up, and
        it never raises (a subscription that cannot take the event is a failing subscriber)."""
        if self._closed:
            return
        self.published += 1
        for sub in tuple(self._subscribers):
            try:
                sub._put(event)
            except Exception:
                self.subscriber_failed(sub.name, event)

    def subscriber_failed(self, name: str, event: Event) -> None:
        """The failing-subscriber policy (call it from an ``except`` block): log with the subscriber's
        name and the event's kind, count; the subscriber goes on with its next event."""
        self.failures[name] += 1
        log.exception(
            "live subscriber %s failed on a %s event (failure %d)", name, event.kind, self.failures[name]
        )
        self._failed.set()

    async def serve(self, sub: Subscription, handler: Handler) -> None:
        """Await `handler` with each event of `sub` until the subscription ends (the bus closed or the
        subscription was closed), under the failing-subscriber policy. Run it in the subscriber's own
        (supervised) task: a slow handler only ever delays its own subscription."""
        async for event in sub:
            try:
                await handler(event)
            except Exception:
                self.subscriber_failed(sub.name, event)

    async def wait_for_failures(self, name: str, count: int) -> None:
        """Wait until subscriber `name` has failed `count` times (an event, not polling)."""
        while self.failures[name] < count:
            self._failed.clear()
            await self._failed.wait()

    def close(self) -> None:
        """End every subscription (readers drain what is queued, then stop) and refuse new events."""
        self._closed = True
        subs, self._subscribers = self._subscribers, []
        for sub in subs:
            sub._end()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
