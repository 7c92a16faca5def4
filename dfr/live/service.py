"""`Live`: the telemetry feed and the MQTT publisher of one service, so that start-up and shutdown stay a
few lines in dfr.service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dfr.live.mqtt_out import MqttPublisher
from dfr.live.telemetry import DEFAULT_TELEMETRY_HZ, LiveFeed
from dfr.settings import Settings
from dfr.supervision import Supervisor

if TYPE_CHECKING:  # the dispatcher publishes on the bus, so it imports this package
    from dfr.dispatch.dispatcher import Dispatcher
    from dfr.fleet.fleet import Fleet

__all__ = ["Live"]


class Live:
    """The telemetry feed and (when ``settings.mqtt_url`` is set) the MQTT publisher of one service's bus.

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
        self.bus = dispatcher.bus  # the one bus: the dispatcher publishes on it from its first step
        self.feed = LiveFeed(self.bus, fleet, dispatcher, telemetry_hz=telemetry_hz)
        self.mqtt: MqttPublisher | None = None

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Start feeding the bus and publishing to MQTT if configured (the broker may be down), both as
        parts of `supervisor` (``live-telemetry``, ``mqtt-out``, ``mqtt-out-pump``)."""
        self.feed.start(supervisor)
        if self.settings.mqtt_url:
            self.mqtt = MqttPublisher(self.bus, self.settings.mqtt_url)
            self.mqtt.start(supervisor)

    async def stop(self) -> None:
        """Stop feeding, flush mission changes to MQTT if connected, then end every bus subscription
        (open HTTP streams finish)."""
        await self.feed.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        self.bus.close()
