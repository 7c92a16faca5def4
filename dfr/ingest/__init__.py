"""Transports that feed incident reports into the store besides the HTTP API (today: MQTT).

Every transport uses the same gate (`dfr.domain.incidents.validate_report`) and the same write path
(`dfr.store.Store.ingest`), so a report means the same thing whichever way it arrived.
"""

from dfr.ingest.lifespan import mqtt_ingest_task
from dfr.ingest.mqtt import (
    DEFAULT_CLIENT_ID,
    DEFAULT_TOPIC,
    BrokerAddress,
    MqttIngest,
    MqttIngestCounters,
    mask_url,
    parse_mqtt_url,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_TOPIC",
    "BrokerAddress",
    "MqttIngest",
    "MqttIngestCounters",
    "mask_url",
    "mqtt_ingest_task",
    "parse_mqtt_url",
]
