"""MQTT incident ingest: reports published on ``dfr/incidents`` become incidents, exactly like HTTP ones.

Sensor feeds and CAD bridges often speak MQTT rather than HTTP, so dfr subscribes to a broker and runs
every message through the same gate as the API (`validate_report`) and the same write path
(`Store.ingest`). Each message gets an answer on a topic of its own, because an MQTT publisher has no
response to read: ``dfr/incidents/accepted`` carries a receipt (incident id, created / merged /
duplicate), ``dfr/incidents/rejected`` the reason a report was refused (nothing is stored then).

Delivery guarantee (QoS 1), and why it is what it is
----------------------------------------------------
The goal is "persist before acknowledging": the broker forgets a report only after it is committed.
MQTT does this when the client sends PUBACK after processing. aiomqtt 2.5 has no manual acknowledgement
of its own (no ``manual_ack`` option, no ``Message.ack``; https://github.com/empicano/aiomqtt/issues/345),
so this module switches on the manual acknowledgement of the paho client underneath
(``manual_ack_set(True)``, then ``ack(mid, qos)``), reached through aiomqtt's private ``Client._client``:
a report is acknowledged only once it is committed (or refused for good: invalid reports are answered on
the rejected topic and acknowledged, since a redelivery would be refused again). A report that could not
be stored is *not* acknowledged, so the broker offers it again on the next connection. A process that
dies (crash, SIGKILL, power loss) between receiving and committing a report therefore loses nothing:
the broker still holds it for the session and redelivers it (tested with kill -9). Should a future
aiomqtt drop the private attribute, the ingest logs a warning and falls back to paho's automatic
acknowledgement, where the safeguards below keep the window small. Further:

- **persistent session**: the client connects with ``clean_session=False`` and a fixed client id, and
  subscribes at QoS 1. While dfr is down or disconnected, the broker keeps the subscription and queues
  every report for it (mosquitto with ``persistence true`` even across a broker restart), and it resends
  any report whose PUBACK it did not receive. Reports published while dfr is away are therefore not lost;
- **idempotent ingest**: `Store.ingest` is keyed on (source, external_id), so a redelivered or
  re-published report is answered with its existing incident and stored once; redelivery is always safe;
- **one client, one queue**: the same aiomqtt client is reused across reconnects, so reports received
  (and acknowledged) just before a connection drop stay in its queue and are stored after reconnecting;
- **drain before disconnecting**: `MqttIngest.stop` keeps the connection until the queue is empty and
  then disconnects without yielding to the event loop, so every report acknowledged so far has been
  stored; anything arriving after the DISCONNECT is not acknowledged and the broker keeps it;
- **the queue is unbounded** (aiomqtt's default): a bounded queue would discard reports that paho has
  already acknowledged.

With manual acknowledgement the broker resends anything unacknowledged when the session resumes, so
the in-memory queue is only a buffer, never the sole copy of a report.

Because the client id is fixed, two dfr processes must not share one (the broker disconnects the older
session holder whenever the other connects); give each process its own ``client_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiomqtt
from sqlalchemy.exc import InterfaceError, OperationalError

from dfr.domain.incidents import IncidentReport, ReportRejected, validate_report
from dfr.ingest.hooks import run_hooks
from dfr.live.bus import EventBus
from dfr.live.events import incident_event
from dfr.settings import Settings
from dfr.store import IngestResult, Store
from dfr.supervision import PartState, Supervisor

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_TOPIC",
    "BrokerAddress",
    "BrokerLink",
    "MqttIngest",
    "MqttIngestCounters",
    "mask_url",
    "parse_mqtt_url",
]

log = logging.getLogger(__name__)

DEFAULT_TOPIC: Final = "dfr/incidents"
"""Where senders publish reports; receipts go to ``<topic>/accepted``, refusals to ``<topic>/rejected``."""

INGEST_PART: Final = "mqtt-ingest"
"""The supervised part that runs the ingest (shown by ``/api/v1/healthz`` when it is down)."""

DEFAULT_CLIENT_ID: Final = "dfr-ingest"
"""The persistent session's name on the broker; must be unique per dfr process (see the module doc)."""

EXCERPT_CHARS: Final = 200
"""How much of a refused payload a reject notice quotes: enough for a sender to recognise its message."""

_SCHEMES: Final = {"mqtt": (1883, False), "mqtts": (8883, True)}
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Store errors that pass when the database comes back; anything else is a bug or a bad row, not worth
# blocking the ingest for.
_TRANSIENT_STORE_ERRORS: Final = (OperationalError, InterfaceError, OSError, TimeoutError)

Clock = Callable[[], datetime]


def _manual_ack(client: aiomqtt.Client) -> Any:
    """Switch the paho client under `client` to manual acknowledgement; return it, or None if unreachable."""
    paho = getattr(client, "_client", None)
    if paho is None or not hasattr(paho, "manual_ack_set") or not hasattr(paho, "ack"):
        log.warning(
            "MQTT ingest: this aiomqtt hides paho's manual acknowledgement; reports are acknowledged on "
            "receipt, so a crash before they are stored can lose them"
        )
        return None
    paho.manual_ack_set(True)
    return paho


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------------------
# Broker URL


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to connect; parsed from ``mqtt[s]://[user[:password]@]host[:port]``.

    The password is left out of ``repr`` so that logging or printing an address cannot leak it.
    """

    hostname: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse a broker URL, refusing anything dfr would otherwise ignore (path, query, unknown scheme).

    A silently ignored part is a misconfiguration nobody notices, so it fails loudly at startup; error
    messages quote the URL with its password masked. User and password are percent-decoded, so a
    password containing ``@`` or ``:`` can be written ``%40`` / ``%3A``.
    """
    masked = mask_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid MQTT URL {masked}: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"MQTT URL {masked} must start with mqtt:// or mqtts:// (TLS)")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {masked} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"MQTT URL {masked} may not have a path, query or fragment")
    default_port, tls = _SCHEMES[parts.scheme]
    return BrokerAddress(
        hostname=parts.hostname,
        port=port if port is not None else default_port,
        tls=tls,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``: the only form of a broker URL that may be logged.

    Never raises, because it is used to build error messages about malformed URLs.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return "<MQTT URL without scheme>"
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return url.strip()
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hostport}{slash}{tail}"


# ---------------------------------------------------------------------------------------------------------
# Counters


@dataclass(slots=True)
class MqttIngestCounters:
    """Counts since start, for health checks and metrics.

        ``accepted`` is every report that passed validation and is stored: ``created + merged + duplicates``
        (a duplicate is a repeat of a stored report, answered with its incident). ``rejected`` reports failed
        validation; ``failed`` ones were valid but could not be stored (a reject notice with code
        ``store_error`` told the sender; it is not acknowledged, so the broker offers it again on the next
    connection). ``connections`` counts successful (re)connections.
    """

    accepted: int = 0
    created: int = 0
    merged: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    acknowledged: int = 0  # PUBACKs sent after the commit (or the refusal); see the module docstring
    connections: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------
# The ingest


class BrokerLink:
    """What the MQTT ingest and the MQTT publisher share: one aiomqtt client per broker, and the loop that
    keeps it connected (aiomqtt's recommended ``async with client`` inside a loop catching `MqttError`),
    retrying after a jittered exponential backoff that starts afresh once a connection worked.

    Unexpected errors are logged and retried the same way: a supervisor that dies on the first bug would
    silently stop the link for the rest of the process's life. A subclass provides `_session` (one
    connection's work) and sets the attributes below in its ``__init__``.
    """

    _what: str  # "MQTT ingest", "MQTT publisher": names the link in log lines
    _address: BrokerAddress
    _masked_url: str
    _client_id: str
    _keepalive: int
    _tls_context: ssl.SSLContext | None
    _initial_backoff: float
    _max_backoff: float
    _stopping: asyncio.Event
    connected: asyncio.Event
    last_error: str | None

    def _client(self, *, clean_session: bool, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
        address = self._address
        return aiomqtt.Client(
            address.hostname,
            address.port,
            username=address.username,
            password=address.password,
            identifier=self._client_id,
            clean_session=clean_session,
            keepalive=self._keepalive,
            will=will,
            tls_context=self._tls_context or (ssl.create_default_context() if address.tls else None),
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        raise NotImplementedError

    def _connections(self) -> int:
        """How many connections have succeeded so far (a success resets the backoff)."""
        raise NotImplementedError

    def _describe(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"

    def _retrying(self) -> None:
        """Called before each wait for a retry (counters)."""

    async def _keep_connected(self, client: aiomqtt.Client) -> None:
        """Run `_session` on `client` again and again until `_stopping` is set."""
        backoff = self._initial_backoff
        while not self._stopping.is_set():
            connections = self._connections()
            try:
                await self._session(client)
            except aiomqtt.MqttError as exc:
                self.last_error = self._describe(exc)
            except Exception as exc:
                log.exception("%s: unexpected error", self._what)
                self.last_error = self._describe(exc)
            finally:
                self.connected.clear()
            if self._stopping.is_set():
                break
            self._retrying()
            if self._connections() != connections:
                backoff = self._initial_backoff  # it worked until now: a new outage starts afresh
            delay = backoff * random.uniform(0.8, 1.2)
            log.warning(
                "%s: connection to %s failed or was lost (%s); retrying in %.1f s",
                self._what,
                self._masked_url,
                self.last_error,
                delay,
            )
            backoff = min(backoff * 2, self._max_backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)


class MqttIngest(BrokerLink):
    """Subscribe to the incident topic and ingest every report; reconnect forever until `stop`.

    Run it with `start` (the supervised part ``mqtt-ingest``: restarted if it dies) or by awaiting `run`.
    ``connected`` is set while the client is connected and subscribed; ``counters`` and ``last_error``
    describe what happened. With a `bus`, each committed report's `IncidentEvent` is published on it.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        url: str | None = None,
        topic: str = DEFAULT_TOPIC,
        accepted_topic: str | None = None,
        rejected_topic: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        clock: Clock | None = None,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        keepalive_s: int = 30,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Check the configuration now, so that a bad URL or topic fails at startup, not in the task.

        ``url`` defaults to ``settings.mqtt_url``. ``topic`` may be a filter with wildcards, but then the
        output topics must be given, and none of them may match the filter: the ingest would consume its
        own receipts. ``clock`` is the receiver's "now" for the time checks (tests pin it).
        """
        url = url if url is not None else settings.mqtt_url
        if not url:
            raise ValueError("no MQTT broker URL: set DFR_MQTT_URL or pass url=")
        self._address = parse_mqtt_url(url)
        self._masked_url = mask_url(url)
        if not client_id:
            raise ValueError("a persistent MQTT session needs a non-empty client_id")
        subscription = aiomqtt.Wildcard(topic)  # validates the filter
        if (accepted_topic is None or rejected_topic is None) and ("+" in topic or "#" in topic):
            raise ValueError(f"topic {topic!r} has wildcards: pass accepted_topic and rejected_topic")
        accepted_topic = accepted_topic if accepted_topic is not None else f"{topic}/accepted"
        rejected_topic = rejected_topic if rejected_topic is not None else f"{topic}/rejected"
        for name in (accepted_topic, rejected_topic):
            aiomqtt.Topic(name)  # validates: no wildcards in a topic one publishes to
            if aiomqtt.Topic(name).matches(subscription):
                raise ValueError(f"output topic {name!r} matches the subscription {topic!r}")
        if not 0 < initial_backoff_s <= max_backoff_s:
            raise ValueError("need 0 < initial_backoff_s <= max_backoff_s")

        self._settings = settings
        self._store = store
        self.hooks: list[Callable[[IngestResult], Awaitable[None]]] = []  # awaited after each stored report
        self.bus: EventBus | None = None  # where each committed report's incident event is published
        self._topic = topic
        self._accepted_topic = accepted_topic
        self._rejected_topic = rejected_topic
        self._what = "MQTT ingest"
        self._client_id = client_id
        self._clock = clock or _utcnow
        self._initial_backoff = initial_backoff_s
        self._max_backoff = max_backoff_s
        self._keepalive = keepalive_s
        self._tls_context = tls_context

        self.connected = asyncio.Event()
        """Set while connected and subscribed; cleared on disconnect."""
        self.counters = MqttIngestCounters()
        self.last_error: str | None = None
        """Why the last connection failed or ended (never contains the password); None when healthy."""

        self._stopping = asyncio.Event()
        self._supervisor: Supervisor | None = None
        self._next: asyncio.Future[aiomqtt.Message] | None = None
        self._paho: Any = None  # the paho client when manual acknowledgement is on (see module doc)

    @property
    def broker(self) -> str:
        """The broker URL with the password masked, for logs and health output."""
        return self._masked_url

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def accepted_topic(self) -> str:
        return self._accepted_topic

    @property
    def rejected_topic(self) -> str:
        return self._rejected_topic

    @property
    def running(self) -> bool:
        """Started, not stopped, and not waiting to be restarted after a failure."""
        sup = self._supervisor
        part = sup.parts.get(INGEST_PART) if sup is not None else None
        return part is not None and part.state is PartState.RUNNING

    # -----------------------------------------------------------------------------------------------------
    # Lifecycle

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Run the ingest as the supervised part ``mqtt-ingest`` of `supervisor` (a private one if none is
        given): if `run` ever dies, it is logged and restarted with a new client, and the reports it had
        taken but not stored come again from the broker (manual acknowledgement, see the module doc)."""
        if self._supervisor is not None:
            raise RuntimeError("MqttIngest.start() was already called")
        self._supervisor = supervisor or Supervisor("mqtt-ingest")
        self._supervisor.spawn(INGEST_PART, self.run)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop cleanly: finish the report in hand, store those already queued, then disconnect.

        The part is cancelled if that takes longer than ``timeout_s`` (a report being stored at that
        moment is rolled back and, having been acknowledged, lost: see the module docstring).
        """
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.ending(INGEST_PART)
            await self._supervisor.join(INGEST_PART, timeout_s)

    def _connections(self) -> int:
        return self.counters.connections

    def _describe(self, exc: BaseException) -> str:
        return _describe(exc)  # with the cause: aiomqtt's own message hides why the link dropped

    async def run(self) -> None:
        """Connect, consume, and reconnect (`BrokerLink`) until stopped; one client object is reused so
        that its message queue survives reconnects."""
        client = self._client(clean_session=False)
        self._paho = _manual_ack(client)
        try:
            await self._keep_connected(client)
        finally:
            self.connected.clear()
            left = len(client.messages)
            if left:
                log.error(
                    "MQTT ingest stopped while disconnected with %d received report(s) not yet stored; "
                    "the broker redelivers those it did not see acknowledged",
                    left,
                )

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: subscribe, consume until disconnected or stopping, then disconnect."""
        try:
            async with client:
                await client.subscribe(self._topic, qos=1)
                self.counters.connections += 1
                self.last_error = None
                self.connected.set()
                log.info(
                    "MQTT ingest connected to %s as %r, subscribed to %r",
                    self._masked_url,
                    self._client_id,
                    self._topic,
                )
                try:
                    await self._consume(client)
                finally:
                    self.connected.clear()
                # Leaving the block disconnects at once (no await before paho's disconnect()), so nothing
                # can arrive and be acknowledged between the empty-queue check and the DISCONNECT.
        finally:
            await self._collect_pending()

    async def _collect_pending(self) -> None:
        """Settle the wait for a next message that `_consume` left pending when it stopped.

        Once disconnected it ends with `aiomqtt.MqttError`, or with a message that either arrived after
        our DISCONNECT (so the broker keeps it too) or was taken off the queue just before. Either way
        it is stored now (idempotent, so a later redelivery is harmless); only the receipt is lost.
        """
        pending, self._next = self._next, None
        if pending is None:
            return
        await asyncio.wait({pending}, timeout=1.0)
        if not pending.done():
            pending.cancel()
        elif not pending.cancelled() and pending.exception() is None:
            await self._handle(pending.result(), None)

    async def _consume(self, client: aiomqtt.Client) -> None:
        """Handle messages one at a time, in order; return when stopping and the queue is empty.

        The wait for the next message is never cancelled (a cancelled wait can drop a message it had
        just taken off the queue); on stop it is left pending and collected after disconnecting.
        """
        messages = client.messages
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                if self._stopping.is_set() and len(messages) == 0:
                    return
                if self._next is None:
                    self._next = asyncio.ensure_future(anext(messages))
                waits: set[asyncio.Future[Any]] = {self._next}
                if not self._stopping.is_set():
                    waits.add(stop)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if not self._next.done():
                    continue  # stop requested: drain what is queued, then leave
                done, self._next = self._next, None
                await self._handle(done.result(), client)  # result() raises MqttError on disconnect
        finally:
            stop.cancel()

    # -----------------------------------------------------------------------------------------------------
    # One message

    async def _handle(self, message: aiomqtt.Message, client: aiomqtt.Client | None) -> None:
        """Validate, store, answer. ``client`` None: already disconnected, store without answering."""
        received_at = self._clock()
        topic = message.topic.value
        payload = bytes(message.payload)
        try:
            report = validate_report(payload, now=received_at, settings=self._settings)
        except ReportRejected as exc:
            self.counters.rejected += 1
            log.info("MQTT report on %r rejected: %s (%s, field %s)", topic, exc.reason, exc.code, exc.field)
            notice = {**exc.to_dict(), **_context(topic, payload, received_at)}
            await self._answer(client, self._rejected_topic, notice)
            self._ack(message, client)  # refused for good: a redelivery would be refused again
            return

        result = await self._persist(report, received_at)
        if result is None:
            self.counters.failed += 1
            notice = {
                "code": "store_error",
                "reason": "the report is valid but could not be stored; publish it again",
                "field": None,
                "position": None,
                "errors": [],
                "source": report.source,
                "external_id": report.external_id,
                **_context(topic, payload, received_at),
            }
            await self._answer(client, self._rejected_topic, notice)
            return

        self._ack(message, client)  # committed: now the broker may forget it
        self.counters.accepted += 1
        event = incident_event(result)
        if self.bus is not None and event is not None:
            self.bus.publish(event)  # never waits, never raises: subscribers fail on their own
        await run_hooks(self.hooks, result, "MQTT ingest")  # e.g. the dispatcher, after the commit
        if result.created:
            self.counters.created += 1
            disposition = "created"
        elif result.merged:
            self.counters.merged += 1
            disposition = "merged"
        else:
            self.counters.duplicates += 1
            disposition = "duplicate"
        receipt = {
            "incident_id": result.incident.id,
            "report_id": result.report_id,
            "disposition": disposition,
            "created": result.created,
            "merged": result.merged,
            "duplicate": result.duplicate_of_report,
            "report_count": result.incident.report_count,
            "source": report.source,
            "external_id": report.external_id,
            "topic": topic,
            "received_at": received_at.isoformat(),
        }
        await self._answer(client, self._accepted_topic, receipt)

    def _ack(self, message: aiomqtt.Message, client: aiomqtt.Client | None) -> None:
        """Send the PUBACK for a handled message (manual acknowledgement; no-op for QoS 0 or when off).

        ``client`` None means the connection it came on is gone: the broker resends the message on the
        next session, and the idempotent ingest recognises it.
        """
        if self._paho is None or client is None or message.qos == 0:
            return
        rc = self._paho.ack(message.mid, message.qos)
        if rc:
            log.warning(
                "MQTT ingest: could not acknowledge message %d (rc %s); it will come again", message.mid, rc
            )
        else:
            self.counters.acknowledged += 1

    async def _persist(self, report: IncidentReport, received_at: datetime) -> IngestResult | None:
        """Store the report, waiting out database outages; None if it cannot be stored.

        A transient error (database restarting, locked, unreachable) is retried with backoff for as long
        as the ingest runs: the report has already been acknowledged to the broker, so giving up loses
        it, and the following reports would fail the same way anyway. Other errors are not retried.
        """
        actor = f"mqtt:{report.source}"
        delay = self._initial_backoff
        while True:
            try:
                return await self._store.ingest(report, actor=actor, received_at=received_at)
            except _TRANSIENT_STORE_ERRORS as exc:
                if self._stopping.is_set():
                    log.error("MQTT ingest stopping; report %s/%s not stored: %s", *_key(report), exc)
                    return None
                log.warning(
                    "MQTT ingest: store unavailable (%s); retrying report %s/%s in %.1f s",
                    exc,
                    *_key(report),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, self._max_backoff)
            except Exception:
                log.exception("MQTT ingest: report %s/%s could not be stored", *_key(report))
                return None

    async def _answer(self, client: aiomqtt.Client | None, topic: str, body: dict[str, Any]) -> None:
        """Publish a receipt or reject notice at QoS 1; skipped (and logged) when already disconnected."""
        if client is None:
            log.info("MQTT ingest disconnected; no %s notice for a report on %s", topic, body.get("topic"))
            return
        await client.publish(topic, json.dumps(body, ensure_ascii=False, separators=(",", ":")), qos=1)


def _describe(exc: BaseException) -> str:
    """The error and its cause: aiomqtt's "Disconnected during message iteration" hides the reason."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    return f"{text} ({type(cause).__name__}: {cause})" if cause is not None else text


def _key(report: IncidentReport) -> tuple[str, str]:
    return report.source, report.external_id


def _context(topic: str, payload: bytes, received_at: datetime) -> dict[str, Any]:
    """What a reject notice says about the message itself, so a sender can tell which one it was."""
    return {
        "topic": topic,
        "payload_excerpt": _excerpt(payload),
        "payload_bytes": len(payload),
        "received_at": received_at.isoformat(),
    }


def _excerpt(payload: bytes) -> str:
    """The first `EXCERPT_CHARS` characters, safe to show anywhere.

    Only a bounded prefix is decoded (a huge payload costs nothing); invalid UTF-8 becomes U+FFFD;
    control, line-separator and bidirectional-override characters are shown escaped (``\\x0a``) so that
    the excerpt cannot break a log line or disguise itself in an operator's UI.
    """
    text = payload[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    return _UNSAFE_CHARS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
