"""Outbound live data: what the controller is doing, pushed to consoles as it happens.

One in-process `EventBus` carries the typed events of `dfr.live.events`: ``incident`` (published by
the HTTP and MQTT ingests), ``mission`` (the dispatcher, pilot commands included) and ``telemetry``
(`dfr.live.telemetry.LiveFeed`, from the fleet). The HTTP stream (``GET /api/v1/stream``,
dfr.api.live_routes), the optional `dfr.live.mqtt_out.MqttPublisher` and video (`dfr.video.watch`)
subscribe. `dfr.live.service.Live` bundles the feed and the publisher for the service.

This package's top level holds only the bus and the events, which every publisher imports (the ingests
and the dispatcher among them), so that importing them pulls in nothing that imports those back.
"""

from dfr.live.bus import EventBus, Subscription, overflow_event
from dfr.live.events import (
    Event,
    EventKind,
    IncidentEvent,
    MissionEvent,
    OverflowEvent,
    TelemetryEvent,
    incident_event,
)

__all__ = [
    "Event",
    "EventBus",
    "EventKind",
    "IncidentEvent",
    "MissionEvent",
    "OverflowEvent",
    "Subscription",
    "TelemetryEvent",
    "incident_event",
    "overflow_event",
]
