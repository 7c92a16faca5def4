"""Outbound MQTT: mission changes and drone telemetry for RTCC consoles, CAD bridges and other listeners.

Topics (``<prefix>`` is ``dfr`` by default)::

    <prefix>/missions/<mission id>          the Mission JSON after each change   QoS 1, retained
    <prefix>/drones/<drone id>/telemetry    {drone_id, time, mission_id, telemetry}  QoS 0
    <prefix>/live/status                    {"online": true|false}              QoS 1, retained (+ will)

Mission changes are retained, so a console that subscribes late (or reconnects) gets every mission's
latest state at once; telemetry is not, because a position from an hour ago shown as "latest" would be
worse than none. The status topic, with a last will, tells a subscriber whether the retained missions
are still being kept up to date.

Why it is shaped like this: the publisher must never slow the controller down. It reads the in-process
bus (whose `publish` never waits) into two queues of its own and a separate task drains them to the
broker. While the broker is unreachable it reconnects with a jittered exponential backoff (like the
ingest) and keeps queueing: telemetry in a bounded queue that drops its oldest entries (stale positions
are worth little), mission changes in order and kept, because they are few and each one matters. Only if
a very long outage piles up more than `mission_queue` changes are they coalesced to the latest change per
mission (the retained topic only ever shows the latest anyway). A mission change is taken off its queue
only after the broker acknowledged it (PUBACK), so one in flight when the connection drops is sent again
after reconnecting; a repeat is harmless, it carries the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Final

import aiomqtt

from dfr.ingest.mqtt import BrokerLink, mask_url, parse_mqtt_url
from dfr.live.bus import EventBus, Subscription
from dfr.live.events import Event, MissionEvent, OverflowEvent, TelemetryEvent, encode
from dfr.supervision import PartState, Supervisor

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_PREFIX", "MqttPublisher", "MqttPublisherCounters"]

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID: Final = "dfr-live"
"""Distinct from the ingest's client id: the broker allows one connection per id."""

DEFAULT_PREFIX: Final = "dfr"

PUBLISH_PART: Final = "mqtt-out"
"""The supervised part that keeps the broker connection and sends the queues."""
PUMP_PART: Final = "mqtt-out-pump"
"""The supervised part that moves bus events into the queues (it runs while the broker is down)."""

BUS_QUEUE_SIZE: Final = 4096
"""The pump moves events off the bus without any I/O, so this is only ever a few events deep."""


@dataclass(slots=True)
class MqttPublisherCounters:
    """Counts since start, for health output and tests."""

    missions_published: int = 0
    telemetry_published: int = 0
    telemetry_dropped: int = 0
    missions_coalesced: int = 0
    bus_overflows: int = 0
    connections: int = 0
    connection_failures: int = 0
    """Connection attempts that failed plus connections lost."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _topic_level(value: Any) -> str | None:
    """An id usable as one topic level, or None (no separators, wildcards or empty strings)."""
    if not isinstance(value, str) or not value or any(c in value for c in "/+#\x00"):
        return None
    return value


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


_ONLINE: Final = _encode({"online": True})
_OFFLINE: Final = _encode({"online": False})


class MqttPublisher(BrokerLink):
    """Publish the bus's ``mission`` and ``telemetry`` events to a broker until `stop`.

    `start` subscribes to the bus at once (nothing published after it is missed, even before the first
    connection) and runs two supervised parts: ``mqtt-out-pump`` (bus to queues) and ``mqtt-out`` (queues
    to broker). If either dies it is logged and restarted; the queues, and so the mission changes not yet
    acknowledged, live in this object and survive the restart. ``connected`` is set while connected.
    """

    def __init__(
        self,
        bus: EventBus,
        url: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        prefix: str = DEFAULT_PREFIX,
        telemetry_queue: int = 100,
        mission_queue: int = 10_000,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        keepalive_s: int = 30,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Check the configuration now, so that a bad URL fails at startup rather than in the task."""
        self._address = parse_mqtt_url(url)
        self._masked_url = mask_url(url)
        prefix = prefix.strip("/")
        if not prefix or "+" in prefix or "#" in prefix:
            raise ValueError(f"invalid MQTT topic prefix {prefix!r}")
        if not 0 < initial_backoff_s <= max_backoff_s:
            raise ValueError("need 0 < initial_backoff_s <= max_backoff_s")
        if telemetry_queue < 1 or mission_queue < 1:
            raise ValueError("queue sizes must be at least 1")
        self.bus = bus
        self.prefix = prefix
        self.status_topic = f"{prefix}/live/status"
        self._what = "MQTT publisher"
        self._client_id = client_id
        self._initial_backoff = initial_backoff_s
        self._max_backoff = max_backoff_s
        self._keepalive = keepalive_s
        self._tls_context = tls_context
        self._missions: deque[tuple[str, bytes]] = deque()  # (mission id, payload), oldest first
        self._mission_cap = mission_queue
        self._telemetry: deque[tuple[str, bytes]] = deque(maxlen=telemetry_queue)  # (topic, payload)

        self.connected = asyncio.Event()
        """Set while connected to the broker."""
        self.counters = MqttPublisherCounters()
        self.last_error: str | None = None
        """Why the last connection failed or ended (the password is never in it); None when healthy."""

        self._wake = asyncio.Event()  # something was queued, or stop was requested
        self._stopping = asyncio.Event()
        self._sub: Subscription | None = None
        self._supervisor: Supervisor | None = None

    @property
    def broker(self) -> str:
        """The broker URL with the password masked."""
        return self._masked_url

    @property
    def running(self) -> bool:
        """Started, not stopped, and not waiting to be restarted after a failure."""
        sup = self._supervisor
        part = sup.parts.get(PUBLISH_PART) if sup is not None else None
        return part is not None and part.state is PartState.RUNNING

    @property
    def backlog(self) -> tuple[int, int]:
        """(mission changes, telemetry messages) waiting to be sent."""
        return len(self._missions), len(self._telemetry)

    def mission_topic(self, mission_id: str) -> str:
        return f"{self.prefix}/missions/{mission_id}"

    def telemetry_topic(self, drone_id: str) -> str:
        return f"{self.prefix}/drones/{drone_id}/telemetry"

    # -------------------------------------------------------------------------------------------------
    # Lifecycle

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Subscribe and run the parts ``mqtt-out-pump`` and ``mqtt-out`` of `supervisor` (a private one
        if none is given)."""
        if self._supervisor is not None:
            raise RuntimeError("MqttPublisher.start() was already called")
        self._supervisor = supervisor or Supervisor("mqtt-out")
        self._sub = self.bus.subscribe("mqtt-out", BUS_QUEUE_SIZE)
        self._supervisor.spawn(PUMP_PART, self._pump)
        self._supervisor.spawn(PUBLISH_PART, self._run)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Send the mission changes still queued (if connected, within ``timeout_s``), then disconnect.

        Queued telemetry is dropped: it is stale by the time anyone could read it.
        """
        sup = self._supervisor
        if sup is None:
            return
        sup.ending(PUMP_PART)
        if self._sub is not None:
            self._sub.close()  # the pump moves what is left on the bus into the queues, then ends
        await sup.join(PUMP_PART, timeout_s)
        self._stopping.set()
        self._wake.set()
        sup.ending(PUBLISH_PART)
        await sup.join(PUBLISH_PART, timeout_s)
        if self._missions:
            log.warning("MQTT publisher stopped with %d mission change(s) unsent", len(self._missions))

    # -------------------------------------------------------------------------------------------------
    # Bus -> queues

    async def _pump(self) -> None:
        """Until the subscription ends; a restart goes on reading the same subscription, so an event
        published while the pump was down waits for it there (or is counted as an overflow)."""
        assert self._sub is not None and self._supervisor is not None
        await self.bus.serve(self._sub, self._enqueue)
        if self.bus.closed:  # the end of the bus is the end of the pump, not a failure
            self._supervisor.ending(PUMP_PART)

    async def _enqueue(self, event: Event) -> None:
        """Queue one event for the broker (no I/O: the pump only moves events off the bus)."""
        if isinstance(event, MissionEvent):
            mission_id = _topic_level(event.mission.id)
            if mission_id is None:
                log.warning("MQTT publisher: mission event without a usable id dropped")
                return
            self._missions.append((mission_id, encode(event)))
            if len(self._missions) > self._mission_cap:
                self._coalesce_missions()
        elif isinstance(event, TelemetryEvent):
            drone_id = _topic_level(event.drone_id)
            if drone_id is None:
                log.warning("MQTT publisher: telemetry event without a usable drone id dropped")
                return
            if len(self._telemetry) == self._telemetry.maxlen:
                self.counters.telemetry_dropped += 1  # deque drops the oldest on append
            self._telemetry.append((self.telemetry_topic(drone_id), encode(event)))
        elif isinstance(event, OverflowEvent):
            self.counters.bus_overflows += 1
            log.error("MQTT publisher lost %d bus event(s)", event.dropped)
        else:
            return  # incidents are not published over MQTT
        self._wake.set()

    def _coalesce_missions(self) -> None:
        """Keep only the latest change of each mission, in the order of those latest changes."""
        before = len(self._missions)
        latest: dict[str, bytes] = {}
        for mission_id, payload in self._missions:
            latest.pop(mission_id, None)  # re-insert so that the order is that of the latest change
            latest[mission_id] = payload
        self._missions = deque(latest.items())
        self.counters.missions_coalesced += before - len(self._missions)
        while len(self._missions) > self._mission_cap:  # more distinct missions than the cap: the oldest go
            mission_id, _ = self._missions.popleft()
            self.counters.missions_coalesced += 1
            log.error("MQTT publisher backlog full: change of mission %s dropped", mission_id)
        log.warning("MQTT publisher backlog: coalesced %d mission changes", before - len(self._missions))

    # -------------------------------------------------------------------------------------------------
    # Queues -> broker

    async def _run(self) -> None:
        """Connect and publish; on any connection error retry after a jittered exponential backoff."""
        # clean_session: nothing to resume, every mission change is re-sent by us, not the broker
        client = self._client(
            clean_session=True, will=aiomqtt.Will(self.status_topic, _OFFLINE, qos=1, retain=True)
        )
        await self._keep_connected(client)

    def _connections(self) -> int:
        return self.counters.connections

    def _retrying(self) -> None:
        self.counters.connection_failures += 1

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: publish until the queues are empty and stop was asked, or the link drops."""
        async with client:
            self.counters.connections += 1
            self.last_error = None
            self.connected.set()
            log.info("MQTT publisher connected to %s as %r", self._masked_url, self._client_id)
            # Nothing is subscribed, so this completes only when the connection is lost (with MqttError):
            # a disconnect is noticed while idle, not at the next publish.
            lost = asyncio.ensure_future(anext(client.messages))
            try:
                await client.publish(self.status_topic, _ONLINE, qos=1, retain=True)
                while True:
                    if await self._publish_next(client):
                        continue
                    if self._stopping.is_set():
                        await client.publish(self.status_topic, _OFFLINE, qos=1, retain=True)
                        return
                    self._wake.clear()
                    woken = asyncio.ensure_future(self._wake.wait())
                    try:
                        await asyncio.wait({woken, lost}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        woken.cancel()
                    if lost.done():
                        lost.result()  # raises the disconnect
            finally:
                lost.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, StopAsyncIteration):
                    await lost

    async def _publish_next(self, client: aiomqtt.Client) -> bool:
        """Publish one queued message (mission changes first); False if both queues are empty."""
        if self._missions:
            mission_id, payload = self._missions[0]
            await client.publish(self.mission_topic(mission_id), payload, qos=1, retain=True)
            # taken off only now that the broker has it; the queue may have been coalesced meanwhile
            if self._missions and self._missions[0] == (mission_id, payload):
                self._missions.popleft()
            self.counters.missions_published += 1
            return True
        if self._telemetry and not self._stopping.is_set():
            topic, payload = self._telemetry.popleft()
            await client.publish(topic, payload, qos=0)
            self.counters.telemetry_published += 1
            return True
        return False
