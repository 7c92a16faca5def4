"""Outbound live data: what the controller is doing, pushed to consoles as it happens.

One in-process `EventBus` carries ``mission``, ``telemetry`` and ``incident`` events; `LiveFeed` fills
it from the dispatcher and the fleet; the HTTP stream (``GET /api/v1/stream``, dfr.api.live_routes) and
the optional `MqttPublisher` read it. `Live` bundles the three for the service, so that start-up and
shutdown stay a few lines in dfr.service.
"""

from __future__ import annotations

from dfr.dispatch.dispatcher import Dispatcher
from dfr.fleet.fleet import Fleet
from dfr.live.bus import EVENT_TYPES, Event, EventBus, Subscription, overflow_event
from dfr.live.mqtt_out import MqttPublisher, MqttPublisherCounters
from dfr.live.telemetry import DEFAULT_TELEMETRY_HZ, LiveFeed, mission_event, telemetry_event
from dfr.settings import Settings
from dfr.supervision import Supervisor

__all__ = [
    "DEFAULT_TELEMETRY_HZ",
    "EVENT_TYPES",
    "Event",
    "EventBus",
    "Live",
    "LiveFeed",
    "MqttPublisher",
    "MqttPublisherCounters",
    "Subscription",
    "mission_event",
    "overflow_event",
    "telemetry_event",
]


class Live:
    """The bus, its feed and (when ``settings.mqtt_url`` is set) the MQTT publisher of one service.

    Construction does no I/O and cannot fail on configuration; `start` does (a malformed broker URL
    fails start-up, as for the ingest), so the service can create this before its ``try`` and always
    call `stop`, which copes with a partial start.
    """

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        dispatcher: Dispatcher,
        *,
        telemetry_hz: float = DEFAULT_TELEMETRY_HZ,
    ) -> None:
        self.settings = settings
        self.bus = EventBus()
        self.feed = LiveFeed(self.bus, fleet, dispatcher, telemetry_hz=telemetry_hz)
        self.mqtt: MqttPublisher | None = None

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Start feeding the bus (the telemetry watcher supervised when `supervisor` is given), and
        publishing to MQTT if configured (the broker may be down)."""
        self.feed.start(supervisor)
        if self.settings.mqtt_url:
            self.mqtt = MqttPublisher(self.bus, self.settings.mqtt_url)
            self.mqtt.start()

    async def stop(self) -> None:
        """Stop feeding, flush mission changes to MQTT if connected, then end every bus subscription
        (open HTTP streams finish)."""
        await self.feed.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        self.bus.close()
