"""Incident reports: the one input schema every transport shares, and the gate that admits a report.

A report arrives from a gunshot-detection feed, a CAD (911) bridge, an ALPR hit list or an operator, over
HTTP or MQTT. Both transports call `validate_report` and nothing else, so a report accepted on one is
accepted on the other, byte for byte; the store and the dispatcher downstream can then trust every field.

The schema is deliberately strict, because a wrong value here sends a drone to the wrong place:

- unknown fields are refused (a typo such as ``"lng"`` must not silently drop the longitude);
- numbers must be numbers (``true`` is not a latitude, ``"2"`` is not a priority);
- ``reported_at`` must be an ISO 8601 timestamp *with* an offset: a bare local time or a Unix number is
  ambiguous by hours (or by a factor of 1000), and a drone sent on a stale alert is wasted;
- text may not contain control characters or unpaired surrogates, which would corrupt logs, break
  PostgreSQL (NUL) or crash JSON encoders downstream.

Everything wrong with an input ends as one `ReportRejected` carrying a stable ``code``, the ``field`` at
fault and a human ``reason``; no input whatsoever makes `validate_report` raise anything else, so a
transport needs a single ``except`` to answer the sender.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from dfr.settings import Settings

__all__ = [
    "EXAMPLE_911_REPORT",
    "EXAMPLE_GUNSHOT_REPORT",
    "Incident",
    "IncidentKind",
    "IncidentReport",
    "IncidentStatus",
    "Location",
    "RejectCode",
    "RejectedField",
    "ReportRejected",
    "validate_report",
]


class IncidentKind(StrEnum):
    """What raised the alarm; decides which reports may be merged into one incident (see dfr.store)."""

    GUNSHOT = "gunshot"
    """Acoustic gunshot detection: precise location, usually with a round count and a confidence."""
    CALL_911 = "911"
    """A call for service from CAD; the location is a geocoded address, good to tens of metres."""
    ALPR = "alpr"
    """A licence-plate reader hit on a wanted vehicle, located at the camera."""
    MANUAL = "manual"
    """Entered by an RTCC operator."""
    OTHER = "other"
    """Anything else; never merged automatically, because nothing is known about what it means."""


class IncidentStatus(StrEnum):
    """Only open incidents take new reports; closing (an operator action) ends merging into it."""

    OPEN = "open"
    CLOSED = "closed"


# ---------------------------------------------------------------------------------------------------------
# Field types

# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069): the latter draw text in another order than it is stored ("Trojan Source"), so an
# address or note could read differently on an operator's screen than in the record.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL_CHARS = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_CHARS_EXCEPT_WHITESPACE = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]")
# A date and a time must both be there; a bare number (Unix time) is ambiguous and refused.
_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _single_line(value: str) -> str:
    """Refuse control characters (including newlines): these fields end up in logs, topics and UIs."""
    if _CONTROL_CHARS.search(value):
        raise PydanticCustomError(
            "control_characters",
            "must not contain control characters, newlines or bidirectional-override characters",
        )
    return value


def free_text(value: str) -> str:
    """Free text may span lines, but other control characters (NUL, ESC...) are never meaningful."""
    if _CONTROL_CHARS_EXCEPT_WHITESPACE.search(value):
        raise PydanticCustomError(
            "control_characters",
            "must not contain control characters (other than newlines and tabs) or bidirectional-override "
            "characters",
        )
    return value


def _timestamp_input(value: object) -> object:
    """Let only datetimes and ISO 8601 strings through to pydantic, which would also take Unix numbers."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_TIMESTAMP.match(value):
        return value
    raise PydanticCustomError(
        "timestamp_format", "must be an ISO 8601 timestamp with a UTC offset, e.g. 2024-05-01T17:03:12Z"
    )


def _to_utc(value: datetime) -> datetime:
    """Store and compare in UTC only; an offset that pushes a date past year 1 or 9999 is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("timestamp_range", "is out of the representable date range") from None


Latitude = Annotated[
    float,
    Field(strict=True, ge=-90.0, le=90.0, allow_inf_nan=False, description="WGS 84 latitude, degrees."),
]
Longitude = Annotated[
    float,
    Field(strict=True, ge=-180.0, le=180.0, allow_inf_nan=False, description="WGS 84 longitude, degrees."),
]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_input), AfterValidator(_to_utc)]
Priority = Annotated[int, Field(strict=True, ge=1, le=5, description="1 is the most urgent, 5 the least.")]
Source = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Who sent the report (feed or console id); with external_id, the idempotency key.",
        examples=["shotspotter", "cad.cv-pd", "console:rtcc-3"],
    ),
]
ExternalId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=128,
        description="The sender's own id of this report; a repeat with the same (source, external_id) "
        "is acknowledged and changes nothing.",
    ),
    AfterValidator(_single_line),
]
Address = Annotated[str, Field(strict=True, max_length=256), AfterValidator(_single_line)]
Note = Annotated[str, Field(strict=True, max_length=2000), AfterValidator(free_text)]
Rounds = Annotated[int, Field(strict=True, ge=1, le=1000, description="Gunshot reports only.")]
Confidence = Annotated[
    float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False, description="Sensor confidence, 0..1.")
]


class Location(BaseModel):
    """A WGS 84 point. Altitude is not part of a report: the planner decides the flight altitude."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: Latitude
    lon: Longitude


# Examples for the OpenAPI document and for people writing a sender; they validate (see the tests).
EXAMPLE_GUNSHOT_REPORT: Final[dict[str, Any]] = {
    "kind": "gunshot",
    "location": {"lat": 32.6401, "lon": -117.0842},
    "reported_at": "2024-05-01T17:03:12Z",
    "priority": 1,
    "source": "shotspotter",
    "external_id": "SST-2024-0501-0042",
    "address": "300 Third Ave, Chula Vista, CA",
    "rounds": 4,
    "confidence": 0.93,
}
EXAMPLE_911_REPORT: Final[dict[str, Any]] = {
    "kind": "911",
    "location": {"lat": 32.6405, "lon": -117.0838},
    "reported_at": "2024-05-01T10:03:40-07:00",
    "priority": 2,
    "source": "cad.cv-pd",
    "external_id": "CV24-118734",
    "address": "290 Third Ave, Chula Vista, CA",
    "note": "Caller reports several shots and a dark sedan leaving northbound.",
}


class IncidentReport(BaseModel):
    """One report of something a drone should look at; the only input schema, for HTTP and MQTT alike."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="IncidentReport",
        json_schema_extra={"examples": [EXAMPLE_GUNSHOT_REPORT, EXAMPLE_911_REPORT]},
    )

    kind: IncidentKind
    location: Location
    reported_at: Timestamp = Field(
        description="When the sender observed or received the event, ISO 8601 with an offset; stored in UTC."
    )
    priority: Priority
    source: Source
    external_id: ExternalId
    address: Address | None = Field(
        default=None, description="Human-readable address; blank is treated as absent."
    )
    rounds: Rounds | None = None
    confidence: Confidence | None = None
    note: Note | None = Field(default=None, description="Free text for the operator, up to 2000 characters.")

    @field_validator("address")
    @classmethod
    def _blank_address_is_none(cls, value: str | None) -> str | None:
        """CAD exports often send "" for "no address"; refusing that would only bounce harmless reports."""
        if value is None:
            return None
        value = value.strip()
        return value or None

    @field_validator("rounds")
    @classmethod
    def _rounds_only_for_gunshots(cls, value: int | None, info: ValidationInfo) -> int | None:
        """A round count on a 911 call is a mapping bug in the sender's bridge; say so, do not keep it."""
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind is not IncidentKind.GUNSHOT:
            raise PydanticCustomError("rounds_not_gunshot", "is only allowed for kind 'gunshot'")
        return value


class Incident(BaseModel):
    """An incident as stored: the first report's facts plus what the merged reports changed.

    ``reported_at`` and ``last_reported_at`` span the reports' own times; ``received_at`` is when dfr
    created the incident; ``priority`` is the most urgent of its reports.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="UUID.")
    kind: IncidentKind
    location: Location
    reported_at: datetime
    last_reported_at: datetime
    received_at: datetime
    priority: int
    source: str
    external_id: str
    address: str | None
    rounds: int | None
    confidence: float | None
    note: str | None
    status: IncidentStatus
    merged_into: str | None
    report_count: int


# ---------------------------------------------------------------------------------------------------------
# Rejection


class RejectCode(StrEnum):
    """Stable machine-readable reasons; transports map them to HTTP statuses or MQTT reject topics."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_FIELD = "invalid_field"
    IN_FUTURE = "in_future"
    TOO_OLD = "too_old"
    OUTSIDE_AREA = "outside_area"


@dataclass(frozen=True, slots=True)
class RejectedField:
    """One problem with one field; all are listed so that a sender can fix them in one pass."""

    field: str
    message: str
    type: str


class ReportRejected(ValueError):
    """A report was refused. ``reason`` is for humans, ``code`` for programs, ``field`` points at the fault.

    ``position`` is the character offset (byte offset for encoding errors) in the payload, when known.
    """

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        *,
        code: RejectCode = RejectCode.INVALID_FIELD,
        position: int | None = None,
        errors: Sequence[RejectedField] = (),
    ) -> None:
        self.reason = _printable(reason)
        self.field = None if field is None else _printable(field)
        self.code = code
        self.position = position
        self.errors = tuple(errors)
        super().__init__(f"{self.field}: {self.reason}" if self.field else self.reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description for a response body or a reject message; never echoes the input."""
        return {
            "code": str(self.code),
            "reason": self.reason,
            "field": self.field,
            "position": self.position,
            "errors": [{"field": e.field, "message": e.message, "type": e.type} for e in self.errors],
        }


def _printable(text: str) -> str:
    """Make a message safe to encode anywhere: a junk key can carry unpaired surrogates into the message."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------------------------------------------------
# The gate


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


class _NonStandardConstant(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate keys: parsers disagree on which copy wins, so a sender's intent is unknowable."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    """NaN and Infinity are Python's JSON extensions, not JSON; a sender emitting them has a bug."""
    raise _NonStandardConstant(name)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ReportRejected(
            f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}",
            code=RejectCode.MALFORMED_JSON,
            position=exc.pos,
        ) from None
    except _DuplicateKey as exc:
        raise ReportRejected(
            f"malformed JSON: key {exc.key!r} appears more than once", exc.key, code=RejectCode.MALFORMED_JSON
        ) from None
    except _NonStandardConstant as exc:
        raise ReportRejected(
            f"malformed JSON: {exc.name} is not a JSON value", code=RejectCode.MALFORMED_JSON
        ) from None
    except RecursionError:
        raise ReportRejected("malformed JSON: nested too deeply", code=RejectCode.MALFORMED_JSON) from None
    except ValueError as exc:  # e.g. an integer literal with more digits than Python converts
        raise ReportRejected(f"malformed JSON: {exc}", code=RejectCode.MALFORMED_JSON) from None


def _too_large(size: int, limit: int) -> ReportRejected:
    return ReportRejected(
        f"payload is {size} bytes, more than the {limit} bytes allowed", code=RejectCode.PAYLOAD_TOO_LARGE
    )


def _decode(raw: object, limit: int) -> object:
    """Turn the raw payload into Python values, enforcing the size limit before any parsing work."""
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        if len(data) > limit:
            raise _too_large(len(data), limit)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReportRejected(
                f"payload is not valid UTF-8 (byte {exc.start})", code=RejectCode.NOT_UTF8, position=exc.start
            ) from None
        return _parse_json(text.removeprefix("\ufeff"))
    if isinstance(raw, str):
        size = len(raw.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _too_large(size, limit)
        return _parse_json(raw.removeprefix("\ufeff"))
    if isinstance(raw, Mapping):
        # An already-decoded payload (e.g. from a transport that parsed it): measure it as compact JSON.
        try:
            encoded = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ReportRejected(
                f"payload cannot be represented as JSON: {exc}", code=RejectCode.MALFORMED_JSON
            ) from None
        size = len(encoded.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _too_large(size, limit)
        return raw
    raise ReportRejected(
        f"payload must be JSON bytes, a str or a mapping, not {type(raw).__name__}",
        code=RejectCode.NOT_AN_OBJECT,
    )


_MESSAGES: Final[dict[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of an incident report",
}


def _field_errors(exc: ValidationError) -> list[RejectedField]:
    errors = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "(report)"
        errors.append(RejectedField(_printable(field), _MESSAGES.get(err["type"], err["msg"]), err["type"]))
    return errors


def _check_keys(data: Mapping[Any, Any], prefix: str = "") -> None:
    """Name a field whose *name* is not valid Unicode; pydantic would only blame the enclosing object."""
    for key, value in data.items():
        if isinstance(key, str):
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise ReportRejected(
                    "field name is not valid Unicode (unpaired surrogate)", prefix + key
                ) from None
        if key == "location" and not prefix and isinstance(value, Mapping):
            _check_keys(value, "location.")


def _schema(data: object) -> IncidentReport:
    if not isinstance(data, Mapping):
        raise ReportRejected(
            f"payload must be a JSON object, not {type(data).__name__}", code=RejectCode.NOT_AN_OBJECT
        )
    _check_keys(data)
    try:
        return IncidentReport.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ReportRejected(
            f"{first.message}{more}", first.field, code=RejectCode.INVALID_FIELD, errors=errors
        ) from None
    except RecursionError:  # a pathologically nested mapping handed in directly
        raise ReportRejected("payload is nested too deeply", code=RejectCode.MALFORMED_JSON) from None


def _check_time(report: IncidentReport, now: datetime, settings: Settings) -> None:
    skew = timedelta(seconds=settings.max_future_skew_s)
    max_age = timedelta(seconds=settings.max_incident_age_s)
    stamp = report.reported_at.isoformat()
    if report.reported_at > now + skew:
        ahead = (report.reported_at - now).total_seconds()
        raise ReportRejected(
            f"{stamp} is {ahead:.0f} s in the future, more than the {settings.max_future_skew_s:g} s of "
            "clock skew tolerated; check the sender's clock and time zone",
            "reported_at",
            code=RejectCode.IN_FUTURE,
        )
    if report.reported_at < now - max_age:
        age = (now - report.reported_at).total_seconds()
        raise ReportRejected(
            f"{stamp} is {age:.0f} s old, older than the {settings.max_incident_age_s:g} s accepted; "
            "too stale to respond to",
            "reported_at",
            code=RejectCode.TOO_OLD,
        )


def validate_report(
    raw: bytes | str | Mapping[str, Any], *, now: datetime, settings: Settings
) -> IncidentReport:
    """Admit one report or raise `ReportRejected`: size, UTF-8, JSON, schema, then time, in that order.

    The order puts the cheap checks first, so a flood of junk costs little. ``now`` is the receiver's
    clock (passed in so that tests and replays are deterministic); it must be timezone-aware.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise TypeError("now must be a timezone-aware datetime")
    data = _decode(raw, settings.max_payload_bytes)
    report = _schema(data)
    _check_time(report, now, settings)
    return report
