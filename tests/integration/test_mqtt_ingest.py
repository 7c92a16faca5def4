"""MQTT ingest end to end: a real mosquitto (tests/integration/mosquitto.py), a real Store on a temporary
SQLite file, and `MqttIngest` in between.

Every test waits on what the ingest publishes (receipts on dfr/incidents/accepted, notices on
dfr/incidents/rejected), which it does only after the store has committed, never on a fixed sleep; the
few states that publish nothing (a connection dropping, a backlog being stored) are polled with a
deadline. Messages are handled in order, so "the next receipt is for report B" also proves that report
A, published before it, produced no receipt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy.exc import OperationalError

from dfr.domain.incidents import IncidentReport
from dfr.ingest import MqttIngest, mask_url, mqtt_ingest_task, parse_mqtt_url
from dfr.settings import Settings
from dfr.store import IngestResult, MergePolicy, Store
from tests.integration.mosquitto import Mosquitto
from tests.support.wait import until, until_sync

pytestmark = pytest.mark.timeout(30)

BASE_LAT, BASE_LON = 32.6401, -117.0842
METRE_LAT = 1 / 111_195
ACCEPTED, REJECTED = "dfr/incidents/accepted", "dfr/incidents/rejected"
WAIT_S = 10.0


def report(external_id: str, *, north_m: float = 0.0, east_m: float = 0.0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "911",
        "location": {"lat": BASE_LAT + north_m * METRE_LAT, "lon": BASE_LON + east_m * METRE_LAT / 0.8424},
        "reported_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "priority": 2,
        "source": "cad.cv-pd",
        "external_id": external_id,
    }
    return body | extra


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


# ---------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path}/dfr.sqlite", policy=MergePolicy(radius_m=250, window_s=600)
    )
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def settings(mosquitto: Mosquitto) -> Settings:
    return Settings(mqtt_url=mosquitto.url)


def make_ingest(settings: Settings, store: Store, **kwargs: Any) -> MqttIngest:
    kwargs.setdefault("client_id", f"dfr-test-{uuid.uuid4().hex[:8]}")
    return MqttIngest(settings, store, initial_backoff_s=0.2, max_backoff_s=1.0, **kwargs)


@asynccontextmanager
async def running(ingest: MqttIngest) -> AsyncIterator[MqttIngest]:
    ingest.start()
    try:
        async with asyncio.timeout(WAIT_S):
            await ingest.connected.wait()
        yield ingest
    finally:
        await ingest.stop()


@pytest.fixture
async def ingest(settings: Settings, store: Store) -> AsyncIterator[MqttIngest]:
    async with running(make_ingest(settings, store)) as i:
        yield i


class Observer:
    """A sender: publishes reports and collects what the ingest answers, per topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.inbox: defaultdict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)

    async def collect(self) -> None:
        async for message in self.client.messages:
            self.inbox[message.topic.value].put_nowait(json.loads(message.payload))

    async def publish(self, payload: bytes, topic: str = "dfr/incidents") -> None:
        await self.client.publish(topic, payload, qos=1)

    async def next(self, topic: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            return await self.inbox[topic].get()


@asynccontextmanager
async def observer(broker: Mosquitto) -> AsyncIterator[Observer]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"obs-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe("dfr/incidents/+", qos=1)
        obs = Observer(client)
        task = asyncio.create_task(obs.collect())
        try:
            yield obs
        finally:
            task.cancel()


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """For states that publish nothing (a connection dropping); polls, bounded by WAIT_S."""
    await until_sync(condition, WAIT_S, what, every=0.02)


# ---------------------------------------------------------------------------------------------------------
# Accepted reports


async def test_valid_report_becomes_an_incident_with_a_receipt(
    mosquitto: Mosquitto, store: Store, ingest: MqttIngest
) -> None:
    async with observer(mosquitto) as obs:
        await obs.publish(encode(report("CV-1", address="300 Third Ave")))
        receipt = await obs.next(ACCEPTED)

    assert receipt["disposition"] == "created"
    assert (receipt["created"], receipt["merged"], receipt["duplicate"]) == (True, False, False)
    assert (receipt["source"], receipt["external_id"], receipt["topic"]) == (
        "cad.cv-pd",
        "CV-1",
        "dfr/incidents",
    )
    incident = await store.get_incident(receipt["incident_id"])
    assert incident is not None
    assert incident.address == "300 Third Ave"
    assert incident.location.lat == pytest.approx(BASE_LAT)
    [stored] = await store.reports(incident.id)
    assert stored.id == receipt["report_id"]
    audit = await store.audit(incident.id)
    assert [(a.actor, a.action) for a in audit] == [("mqtt:cad.cv-pd", "incident.created")]
    assert ingest.counters.as_dict() | {"connections": 0} == {
        "accepted": 1,
        "created": 1,
        "merged": 0,
        "duplicates": 0,
        "rejected": 0,
        "failed": 0,
        "connections": 0,
        "acknowledged": 1,  # sent after the commit
    }


async def test_burst_of_nearby_911_reports_is_one_incident(
    mosquitto: Mosquitto, store: Store, ingest: MqttIngest
) -> None:
    async with observer(mosquitto) as obs:
        for i in range(20):
            await obs.publish(encode(report(f"CV-{i}", north_m=(i % 5) * 20, east_m=(i // 5) * 20)))
        receipts = [await obs.next(ACCEPTED) for _ in range(20)]

    assert [r["external_id"] for r in receipts] == [f"CV-{i}" for i in range(20)]  # in order
    assert len({r["incident_id"] for r in receipts}) == 1
    assert [r["disposition"] for r in receipts] == ["created"] + ["merged"] * 19
    assert await store.count_incidents() == 1
    incident = await store.get_incident(receipts[0]["incident_id"])
    assert incident is not None and incident.report_count == 20
    assert (ingest.counters.created, ingest.counters.merged, ingest.counters.accepted) == (1, 19, 20)


async def test_same_external_id_twice_is_stored_once(
    mosquitto: Mosquitto, store: Store, ingest: MqttIngest
) -> None:
    body = encode(report("CV-dup"))
    async with observer(mosquitto) as obs:
        await obs.publish(body)
        await obs.publish(body)
        first, second = await obs.next(ACCEPTED), await obs.next(ACCEPTED)

    assert first["disposition"] == "created"
    assert second["disposition"] == "duplicate" and second["duplicate"] is True
    assert (second["incident_id"], second["report_id"]) == (first["incident_id"], first["report_id"])
    assert (await store.row_counts())["incident_reports"] == 1
    assert (ingest.counters.accepted, ingest.counters.duplicates) == (2, 1)


# ---------------------------------------------------------------------------------------------------------
# Rejected reports


OVERSIZE = encode(report("CV-big") | {"note": "x" * 20_000})

REJECTS = {
    "malformed_json": (b'{"kind": "911",\n "location": ', "malformed_json", None),
    "lat_out_of_range": (
        encode(report("CV-lat") | {"location": {"lat": 91.0, "lon": 0.0}}),
        "invalid_field",
        "location.lat",
    ),
    "unknown_kind": (encode(report("CV-kind", kind="drone-sighting")), "invalid_field", "kind"),
    "oversize": (OVERSIZE, "payload_too_large", None),
}


@pytest.mark.parametrize("case", REJECTS)
async def test_invalid_report_is_answered_on_rejected_and_changes_nothing(
    case: str, mosquitto: Mosquitto, store: Store, ingest: MqttIngest
) -> None:
    payload, code, field = REJECTS[case]
    before = await store.row_counts()
    async with observer(mosquitto) as obs:
        await obs.publish(payload)
        notice = await obs.next(REJECTED)
        # The ingest goes on, and the rejected report produced no receipt: the next receipt is this one's.
        await obs.publish(encode(report("CV-after")))
        receipt = await obs.next(ACCEPTED)

    assert receipt["external_id"] == "CV-after"
    assert (notice["code"], notice["field"], notice["topic"]) == (code, field, "dfr/incidents")
    assert notice["reason"]
    assert notice["payload_bytes"] == len(payload)
    assert datetime.fromisoformat(notice["received_at"]).tzinfo is not None
    excerpt = notice["payload_excerpt"]
    assert excerpt == payload[:200].decode().replace("\n", "\\x0a")
    after = await store.row_counts()
    assert after == {table: n + 1 for table, n in before.items()}  # CV-after's rows, nothing else
    assert (ingest.counters.rejected, ingest.counters.accepted) == (1, 1)


# ---------------------------------------------------------------------------------------------------------
# Store failures


async def test_a_database_outage_is_waited_out(
    mosquitto: Mosquitto, store: Store, ingest: MqttIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ingest, calls = store.ingest, []

    async def flaky(report: IncidentReport, **kwargs: Any) -> IngestResult:
        calls.append(report.external_id)
        if len(calls) <= 2:
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        return await real_ingest(report, **kwargs)

    monkeypatch.setattr(store, "ingest", flaky)
    async with observer(mosquitto) as obs:
        await obs.publish(encode(report("CV-outage")))
        receipt = await obs.next(ACCEPTED)
    assert receipt["disposition"] == "created"
    assert calls == ["CV-outage"] * 3
    assert (ingest.counters.accepted, ingest.counters.failed) == (1, 0)


async def test_a_report_the_store_refuses_is_answered_with_store_error(
    mosquitto: Mosquitto, store: Store, ingest: MqttIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(report: IncidentReport, **kwargs: Any) -> IngestResult:
        raise RuntimeError("bug")

    monkeypatch.setattr(store, "ingest", broken)
    async with observer(mosquitto) as obs:
        await obs.publish(encode(report("CV-bug")))
        notice = await obs.next(REJECTED)
    assert (notice["code"], notice["external_id"], notice["field"]) == ("store_error", "CV-bug", None)
    assert ingest.counters.failed == 1 and ingest.running


# ---------------------------------------------------------------------------------------------------------
# Connection: broker restart, persistent session, configuration


async def test_ingest_reconnects_after_broker_restart(
    mosquitto: Mosquitto, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"mqtt://dfr:s3cret-pw@{mosquitto.host}:{mosquitto.port}"  # anonymous broker ignores these
    async with running(make_ingest(Settings(mqtt_url=url), store)) as ingest:
        assert ingest.broker == f"mqtt://dfr:***@{mosquitto.host}:{mosquitto.port}"
        mosquitto.stop()
        await wait_until(lambda: "Connection refused" in caplog.text, "a refused reconnection attempt")
        assert not ingest.connected.is_set()
        mosquitto.start()
        async with observer(mosquitto) as obs:
            await obs.publish(encode(report("CV-after-restart")))
            receipt = await obs.next(ACCEPTED)
        assert ingest.connected.is_set()
        assert ingest.counters.connections >= 2
        assert ingest.last_error is None

    assert receipt["disposition"] == "created"
    assert await store.get_incident(receipt["incident_id"]) is not None
    assert "retrying in" in caplog.text  # the reason was logged...
    assert "s3cret-pw" not in caplog.text  # ...without the password


async def test_report_published_while_ingest_is_down_is_delivered_to_its_session(
    mosquitto: Mosquitto, store: Store, settings: Settings
) -> None:
    """clean_session=False + a fixed client id: the broker queues reports for dfr while it is away."""
    client_id = f"dfr-persistent-{uuid.uuid4().hex[:8]}"
    async with running(make_ingest(settings, store, client_id=client_id)) as first:
        pass
    assert not first.running and not first.connected.is_set()

    async with observer(mosquitto) as obs:
        await obs.publish(encode(report("CV-while-down")))
        async with running(make_ingest(settings, store, client_id=client_id)):
            receipt = await obs.next(ACCEPTED)
    assert receipt["external_id"] == "CV-while-down"
    assert await store.count_incidents() == 1


async def test_stopping_mid_burst_loses_nothing(
    mosquitto: Mosquitto, store: Store, settings: Settings
) -> None:
    """stop() stores what was already received (and acknowledged) before disconnecting; the broker keeps
    what arrives later for the session, so the next ingest with the same client id stores it."""
    client_id = f"dfr-drain-{uuid.uuid4().hex[:8]}"
    first = make_ingest(settings, store, client_id=client_id)
    async with observer(mosquitto) as obs:
        async with running(first):
            for i in range(5):
                await obs.publish(encode(report(f"CV-{i}", north_m=i)))
            await obs.next(ACCEPTED)
            stopping = asyncio.create_task(first.stop())
            for i in range(5, 10):  # while the first ingest drains and disconnects
                await obs.publish(encode(report(f"CV-{i}", north_m=i)))
            await stopping
        assert not first.running
        assert (await store.row_counts())["incident_reports"] == first.counters.accepted
        for i in range(10, 20):  # while no ingest runs
            await obs.publish(encode(report(f"CV-{i}", north_m=i)))
        async with running(make_ingest(settings, store, client_id=client_id)) as second:
            await wait_until_async(store_has_reports(store, 20), "all 20 reports to be stored")
    assert first.counters.accepted + second.counters.accepted == 20
    assert second.counters.accepted >= 10
    assert await store.count_incidents() == 1


def store_has_reports(store: Store, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await store.row_counts())["incident_reports"] >= n

    return check


async def wait_until_async(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    await until(condition, WAIT_S, what, every=0.02)


async def test_a_report_in_flight_survives_kill_9(
    mosquitto: Mosquitto, store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Persist before acknowledging: a process killed after receiving a report but before committing it
    has not acknowledged it, so the broker redelivers it to the session and the next ingest stores it."""
    client_id = f"dfr-crash-{uuid.uuid4().hex[:8]}"
    assert settings.mqtt_url is not None
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.mqtt_crash_child",
        settings.mqtt_url,
        f"sqlite+aiosqlite:///{tmp_path}/child.sqlite",
        client_id,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:

        async def line() -> str:
            async with asyncio.timeout(WAIT_S * 3):
                return (await child.stdout.readline()).decode().strip()  # type: ignore[union-attr]

        assert await line() == "connected"
        async with observer(mosquitto) as obs:
            await obs.publish(encode(report("CV-in-flight")))
            assert await line() == "ingesting CV-in-flight"  # received; the commit never comes
            child.send_signal(signal.SIGKILL)
            await child.wait()
            assert await store.count_incidents() == 0
            async with running(make_ingest(settings, store, client_id=client_id)) as second:
                receipt = await obs.next(ACCEPTED)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert receipt["external_id"] == "CV-in-flight" and receipt["disposition"] == "created"
    assert second.counters.acknowledged == 1
    assert await store.count_incidents() == 1


async def test_lifespan_hook_runs_only_when_configured(mosquitto: Mosquitto, store: Store) -> None:
    async with mqtt_ingest_task(Settings(mqtt_url=None), store) as none:
        assert none is None
    async with mqtt_ingest_task(Settings(mqtt_url=mosquitto.url), store) as ingest:
        assert ingest is not None and ingest.running
        async with asyncio.timeout(WAIT_S):
            await ingest.connected.wait()
    assert not ingest.running and not ingest.connected.is_set()


def test_broker_urls_are_parsed_strictly_and_never_show_the_password() -> None:
    address = parse_mqtt_url("mqtts://feed%40cv:p%40ss:w@broker.example")
    assert (address.hostname, address.port, address.tls) == ("broker.example", 8883, True)
    assert (address.username, address.password) == ("feed@cv", "p@ss:w")
    assert "p@ss" not in repr(address)
    assert parse_mqtt_url("mqtt://[::1]").port == 1883
    assert mask_url("mqtt://u:secret@h:1884") == "mqtt://u:***@h:1884"
    assert mask_url("mqtt://h:1884") == "mqtt://h:1884"
    for bad in (
        "http://u:secret@h",
        "mqtt://u:secret@h:99999",
        "mqtt://u:secret@h/topic",
        "mqtt://u:secret@",
    ):
        with pytest.raises(ValueError) as err:
            parse_mqtt_url(bad)
        assert "secret" not in str(err.value)


async def test_a_subscription_that_would_consume_its_own_receipts_is_refused(store: Store) -> None:
    settings = Settings(mqtt_url="mqtt://h")
    with pytest.raises(ValueError, match="has wildcards"):
        MqttIngest(settings, store, topic="dfr/incidents/#")
    with pytest.raises(ValueError, match="matches the subscription"):
        MqttIngest(settings, store, topic="dfr/#", accepted_topic="dfr/ok", rejected_topic="dfr-rejects")
    ingest = MqttIngest(
        settings, store, topic="agency/+/reports", accepted_topic="a/ok", rejected_topic="a/no"
    )
    assert (ingest.accepted_topic, ingest.rejected_topic) == ("a/ok", "a/no")
