"""The MQTT ingest's place in the application's lifespan.

`mqtt_ingest_task` is an async context manager so that the app's lifespan can nest it inside the
store's lifetime: the ingest starts after the store is open and is stopped (its queue drained) before
the store is closed, so no report is ever handed to a closed store.

Startup does not wait for the broker: the HTTP API must serve even while the broker is unreachable,
and the ingest keeps reconnecting in the background (``ingest.connected`` tells whether it is up). A
malformed ``DFR_MQTT_URL`` does fail startup, because an ingest that can never work should not look
healthy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from dfr.ingest.mqtt import MqttIngest
from dfr.live.bus import EventBus
from dfr.settings import Settings
from dfr.store import IngestResult, Store
from dfr.supervision import Supervisor

__all__ = ["mqtt_ingest_task"]

STOP_TIMEOUT_S = 10.0
"""How long shutdown waits for queued reports to be stored before cancelling the ingest."""


@asynccontextmanager
async def mqtt_ingest_task(
    settings: Settings,
    store: Store,
    hooks: Sequence[Callable[[IngestResult], Awaitable[None]]] = (),
    *,
    bus: EventBus | None = None,
    supervisor: Supervisor | None = None,
) -> AsyncIterator[MqttIngest | None]:
    """Run the MQTT ingest for the duration of the block if ``settings.mqtt_url`` is set: the part
    ``mqtt-ingest`` of `supervisor`, publishing incident events on `bus`.

    Yields the running `MqttIngest` (for health checks), or None when MQTT is not configured.
    """
    if not settings.mqtt_url:
        yield None
        return
    ingest = MqttIngest(settings, store)
    ingest.hooks.extend(hooks)
    ingest.bus = bus
    ingest.start(supervisor)
    try:
        yield ingest
    finally:
        await ingest.stop(STOP_TIMEOUT_S)
