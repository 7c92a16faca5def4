"""A dfr MQTT ingest in a process of its own, whose database write never finishes: the test kills it.

Run by test_mqtt_ingest.test_a_report_in_flight_survives_kill_9. It prints ``connected`` once subscribed
and ``ingesting <external_id>`` when a report reached the store (and would be committed next); then it
waits forever, so the parent can SIGKILL it exactly between receiving and committing.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from dfr.ingest.mqtt import MqttIngest
from dfr.settings import Settings
from dfr.store import Store


async def main(broker_url: str, database_url: str, client_id: str) -> None:
    store = await Store.open(database_url)

    async def never_commits(report: Any, **_: Any) -> Any:
        print(f"ingesting {report.external_id}", flush=True)
        await asyncio.Event().wait()

    store.ingest = never_commits  # type: ignore[method-assign]
    ingest = MqttIngest(Settings(mqtt_url=broker_url), store, client_id=client_id, initial_backoff_s=0.2)
    ingest.start()
    await ingest.connected.wait()
    print("connected", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
