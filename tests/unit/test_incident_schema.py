"""dfr.domain.incidents: valid reports pass from bytes, str and dicts alike; every class of bad input is a
ReportRejected that names its code and field; and no input whatsoever makes the gate raise anything else.

Bad inputs are single mutations of one valid report, so each case shows exactly which edit breaks it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfr.domain.incidents import (
    EXAMPLE_911_REPORT,
    EXAMPLE_GUNSHOT_REPORT,
    IncidentKind,
    IncidentReport,
    Location,
    RejectCode,
    ReportRejected,
    validate_report,
)
from dfr.settings import Settings

NOW = datetime(2024, 5, 1, 17, 5, 0, tzinfo=UTC)
SETTINGS = Settings()


def valid(**changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "kind": "911",
        "location": {"lat": 32.6401, "lon": -117.0842},
        "reported_at": "2024-05-01T17:04:00Z",
        "priority": 2,
        "source": "cad.cv-pd",
        "external_id": "CV24-1",
    }
    report.update(changes)
    return report


def without(key: str) -> dict[str, Any]:
    report = valid()
    del report[key]
    return report


def splice(report: dict[str, Any], fragment: str) -> str:
    """The report as JSON text with a raw JSON fragment added (for values json.dumps cannot produce)."""
    return json.dumps(report)[:-1] + ", " + fragment + "}"


def check(raw: bytes | str | dict[str, Any], **kw: Any) -> IncidentReport:
    return validate_report(raw, now=kw.pop("now", NOW), settings=kw.pop("settings", SETTINGS))


def rejected(raw: bytes | str | dict[str, Any], **kw: Any) -> ReportRejected:
    with pytest.raises(ReportRejected) as info:
        check(raw, **kw)
    exc = info.value
    # Whatever the input, the rejection must be reportable: JSON-serialisable and valid UTF-8.
    json.dumps(exc.to_dict(), ensure_ascii=False).encode("utf-8")
    str(exc).encode("utf-8")
    return exc


# ---------------------------------------------------------------------------------------------------------
# Valid input


@pytest.mark.parametrize("example", [EXAMPLE_GUNSHOT_REPORT, EXAMPLE_911_REPORT], ids=["gunshot", "911"])
def test_the_documented_examples_are_valid(example: dict[str, Any]) -> None:
    report = check(example)
    assert report.reported_at.tzinfo is UTC


def test_bytes_str_and_dict_give_the_same_report() -> None:
    data = valid(address="290 Third Ave", note="two callers\nsame address")
    as_bytes = check(json.dumps(data).encode())
    assert as_bytes == check(json.dumps(data)) == check(data)
    assert as_bytes.kind is IncidentKind.CALL_911
    assert as_bytes.location == Location(lat=32.6401, lon=-117.0842)


def test_911_kind_serialises_as_the_string_911() -> None:
    report = check(valid())
    assert report.model_dump(mode="json")["kind"] == "911"
    assert json.loads(report.model_dump_json())["kind"] == "911"


def test_reported_at_is_normalised_to_utc() -> None:
    report = check(valid(reported_at="2024-05-01T10:04:00-07:00"))
    assert report.reported_at == datetime(2024, 5, 1, 17, 4, tzinfo=UTC)
    assert report.reported_at.utcoffset() == timedelta(0)
    # A datetime object works too (in-process callers), in any zone.
    pst = timezone(timedelta(hours=-8))
    report = check(valid(reported_at=datetime(2024, 5, 1, 9, 4, tzinfo=pst)))
    assert report.reported_at == datetime(2024, 5, 1, 17, 4, tzinfo=UTC)


def test_optional_fields_and_their_normalisation() -> None:
    report = check(valid(kind="gunshot", rounds=7, confidence=0.8, address="  300 Third Ave  ", note="a\tb"))
    assert (report.rounds, report.confidence, report.address, report.note) == (
        7,
        0.8,
        "300 Third Ave",
        "a\tb",
    )
    assert check(valid(address="   ")).address is None
    assert check(valid(confidence=1)).confidence == 1.0  # an integer is a number
    assert check(valid(kind="alpr", confidence=0.4)).confidence == 0.4  # not only for gunshots


def test_utf8_bom_is_tolerated_and_unicode_text_kept() -> None:
    data = valid(note="Calle Tercera, niño herido — 3ª planta")
    assert check(b"\xef\xbb\xbf" + json.dumps(data, ensure_ascii=False).encode()).note == data["note"]


def test_limits_are_inclusive() -> None:
    assert check(valid(location={"lat": -90, "lon": 180}, priority=5)).priority == 5
    assert check(valid(source="a" * 64, external_id="x" * 128, address="y" * 256, note="z" * 2000))
    skew, age = SETTINGS.max_future_skew_s, SETTINGS.max_incident_age_s
    assert check(valid(reported_at=(NOW + timedelta(seconds=skew)).isoformat()))
    assert check(valid(reported_at=(NOW - timedelta(seconds=age)).isoformat()))


def test_payload_exactly_at_the_limit_is_accepted() -> None:
    body = json.dumps(valid())
    padded = body[:-1] + " " * (SETTINGS.max_payload_bytes - len(body)) + "}"
    assert len(padded.encode()) == SETTINGS.max_payload_bytes
    assert check(padded.encode())
    assert rejected((padded + " ").encode()).code is RejectCode.PAYLOAD_TOO_LARGE


# ---------------------------------------------------------------------------------------------------------
# Every class of bad input: (raw, code, field)

BAD: dict[str, tuple[Any, RejectCode, str | None]] = {
    # transport level
    "oversize bytes": (b" " * 16385, RejectCode.PAYLOAD_TOO_LARGE, None),
    "oversize str": (json.dumps(valid(note="n" * 20000)), RejectCode.PAYLOAD_TOO_LARGE, None),
    "oversize dict": (valid(note="n" * 20000), RejectCode.PAYLOAD_TOO_LARGE, None),
    "not utf-8": (b'{"kind": "\xff"}', RejectCode.NOT_UTF8, None),
    "empty body": (b"", RejectCode.MALFORMED_JSON, None),
    "truncated json": (b'{"kind": "911", ', RejectCode.MALFORMED_JSON, None),
    "trailing garbage": (json.dumps(valid()) + "x", RejectCode.MALFORMED_JSON, None),
    "duplicate key": ('{"priority": 1, "priority": 5}', RejectCode.MALFORMED_JSON, "priority"),
    "NaN literal": ('{"location": {"lat": NaN, "lon": 0}}', RejectCode.MALFORMED_JSON, None),
    "Infinity literal": ('{"priority": Infinity}', RejectCode.MALFORMED_JSON, None),
    "deep nesting": ("[" * 5000 + "]" * 5000, RejectCode.MALFORMED_JSON, None),
    "5000-digit integer": ('{"priority": ' + "9" * 5000 + "}", RejectCode.MALFORMED_JSON, None),
    "array": (b"[1, 2]", RejectCode.NOT_AN_OBJECT, None),
    "number": (b"42", RejectCode.NOT_AN_OBJECT, None),
    "string": (b'"911"', RejectCode.NOT_AN_OBJECT, None),
    "null": (b"null", RejectCode.NOT_AN_OBJECT, None),
    # schema: presence
    "missing kind": (without("kind"), RejectCode.INVALID_FIELD, "kind"),
    "missing location": (without("location"), RejectCode.INVALID_FIELD, "location"),
    "missing reported_at": (without("reported_at"), RejectCode.INVALID_FIELD, "reported_at"),
    "missing priority": (without("priority"), RejectCode.INVALID_FIELD, "priority"),
    "missing source": (without("source"), RejectCode.INVALID_FIELD, "source"),
    "missing external_id": (without("external_id"), RejectCode.INVALID_FIELD, "external_id"),
    "missing lon": (valid(location={"lat": 1.0}), RejectCode.INVALID_FIELD, "location.lon"),
    "unknown field": (valid(colour="red"), RejectCode.INVALID_FIELD, "colour"),
    "lng for lon": (valid(location={"lat": 1.0, "lng": 2.0}), RejectCode.INVALID_FIELD, "location.lon"),
    # schema: kind
    "unknown kind": (valid(kind="fire"), RejectCode.INVALID_FIELD, "kind"),
    "kind as number": (valid(kind=911), RejectCode.INVALID_FIELD, "kind"),
    # schema: location
    "lat > 90": (valid(location={"lat": 90.0001, "lon": 0}), RejectCode.INVALID_FIELD, "location.lat"),
    "lat < -90": (valid(location={"lat": -91, "lon": 0}), RejectCode.INVALID_FIELD, "location.lat"),
    "lon > 180": (valid(location={"lat": 0, "lon": 180.5}), RejectCode.INVALID_FIELD, "location.lon"),
    "lat NaN": (valid(location={"lat": math.nan, "lon": 0}), RejectCode.INVALID_FIELD, "location.lat"),
    "lon inf": (valid(location={"lat": 0, "lon": math.inf}), RejectCode.INVALID_FIELD, "location.lon"),
    "lat 1e400": (
        splice(without("location"), '"location": {"lat": 1e400, "lon": 0}'),
        RejectCode.INVALID_FIELD,
        "location.lat",
    ),
    "lat as string": (valid(location={"lat": "32.6", "lon": 0}), RejectCode.INVALID_FIELD, "location.lat"),
    "lat as bool": (valid(location={"lat": True, "lon": 0}), RejectCode.INVALID_FIELD, "location.lat"),
    "location as list": (valid(location=[32.6, -117.0]), RejectCode.INVALID_FIELD, "location"),
    # schema: reported_at
    "naive time": (valid(reported_at="2024-05-01T17:04:00"), RejectCode.INVALID_FIELD, "reported_at"),
    "unix seconds": (valid(reported_at=1714582800), RejectCode.INVALID_FIELD, "reported_at"),
    "unix as string": (valid(reported_at="1714582800"), RejectCode.INVALID_FIELD, "reported_at"),
    "date only": (valid(reported_at="2024-05-01"), RejectCode.INVALID_FIELD, "reported_at"),
    "garbage time": (valid(reported_at="yesterday"), RejectCode.INVALID_FIELD, "reported_at"),
    "impossible date": (valid(reported_at="2024-02-30T00:00:00Z"), RejectCode.INVALID_FIELD, "reported_at"),
    "offset underflow": (
        valid(reported_at="0001-01-01T00:00:00+01:00"),
        RejectCode.INVALID_FIELD,
        "reported_at",
    ),
    "offset overflow": (
        valid(reported_at="9999-12-31T23:59:59-01:00"),
        RejectCode.INVALID_FIELD,
        "reported_at",
    ),
    "future": (valid(reported_at="2024-05-01T17:08:00Z"), RejectCode.IN_FUTURE, "reported_at"),
    "too old": (valid(reported_at="2024-04-30T17:04:59Z"), RejectCode.TOO_OLD, "reported_at"),
    # schema: priority
    "priority 0": (valid(priority=0), RejectCode.INVALID_FIELD, "priority"),
    "priority 6": (valid(priority=6), RejectCode.INVALID_FIELD, "priority"),
    "priority float": (valid(priority=2.0), RejectCode.INVALID_FIELD, "priority"),
    "priority string": (valid(priority="2"), RejectCode.INVALID_FIELD, "priority"),
    "priority bool": (valid(priority=True), RejectCode.INVALID_FIELD, "priority"),
    # schema: source / external_id
    "empty source": (valid(source=""), RejectCode.INVALID_FIELD, "source"),
    "long source": (valid(source="a" * 65), RejectCode.INVALID_FIELD, "source"),
    "source with space": (valid(source="cad pd"), RejectCode.INVALID_FIELD, "source"),
    "source with slash": (valid(source="cad/pd"), RejectCode.INVALID_FIELD, "source"),
    "source non-ascii": (valid(source="cád"), RejectCode.INVALID_FIELD, "source"),
    "source trailing newline": (valid(source="cad\n"), RejectCode.INVALID_FIELD, "source"),
    "empty external_id": (valid(external_id=""), RejectCode.INVALID_FIELD, "external_id"),
    "long external_id": (valid(external_id="x" * 129), RejectCode.INVALID_FIELD, "external_id"),
    "external_id NUL": (valid(external_id="a\x00b"), RejectCode.INVALID_FIELD, "external_id"),
    "external_id number": (valid(external_id=12345), RejectCode.INVALID_FIELD, "external_id"),
    # schema: optional fields
    "long address": (valid(address="a" * 257), RejectCode.INVALID_FIELD, "address"),
    "address newline": (valid(address="1 Main St\nApt 2"), RejectCode.INVALID_FIELD, "address"),
    "rounds on 911": (valid(rounds=3), RejectCode.INVALID_FIELD, "rounds"),
    "rounds 0": (valid(kind="gunshot", rounds=0), RejectCode.INVALID_FIELD, "rounds"),
    "rounds float": (valid(kind="gunshot", rounds=2.5), RejectCode.INVALID_FIELD, "rounds"),
    "confidence > 1": (valid(confidence=1.5), RejectCode.INVALID_FIELD, "confidence"),
    "confidence < 0": (valid(confidence=-0.1), RejectCode.INVALID_FIELD, "confidence"),
    "confidence NaN": (valid(confidence=math.nan), RejectCode.INVALID_FIELD, "confidence"),
    "long note": (valid(note="n" * 2001), RejectCode.INVALID_FIELD, "note"),
    "note with ESC": (valid(note="red\x1b[0m"), RejectCode.INVALID_FIELD, "note"),
    "lone surrogate": (splice(valid(), '"note": "\\ud800"'), RejectCode.INVALID_FIELD, "note"),
}


@pytest.mark.parametrize(("raw", "code", "field"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_rejected_with_code_and_field(raw: Any, code: RejectCode, field: str | None) -> None:
    exc = rejected(raw)
    assert exc.code is code, exc
    assert exc.field == field, exc
    assert exc.reason
    if field is not None:
        assert str(exc).startswith(f"{field}: ")


def test_malformed_json_reports_the_position() -> None:
    exc = rejected(b'{\n  "kind": "911",\n  "priority": ,\n}')
    assert exc.code is RejectCode.MALFORMED_JSON
    assert exc.position == 33
    assert "line 3 column 15" in exc.reason


def test_not_utf8_reports_the_byte_offset() -> None:
    exc = rejected(b'{"note": "caf\xe9"}')
    assert (exc.code, exc.position) == (RejectCode.NOT_UTF8, 13)


def test_all_field_errors_are_listed() -> None:
    exc = rejected(valid(priority=9, location={"lat": 100, "lon": 0}, colour="red"))
    assert {e.field for e in exc.errors} == {"priority", "location.lat", "colour"}
    assert "(and 2 more)" in exc.reason
    assert exc.to_dict()["errors"][0].keys() == {"field", "message", "type"}


def test_unknown_field_names_it_and_says_why() -> None:
    exc = rejected(valid(lng=1.0))
    assert exc.field == "lng"
    assert exc.reason == "is not a field of an incident report"
    assert rejected(without("kind")).reason == "is required"


def test_rejection_never_echoes_a_surrogate_key_unescaped() -> None:
    exc = rejected({**valid(), "\ud800bad": 1})
    assert exc.field == "\\ud800bad"


def test_time_checks_follow_the_settings_and_say_why() -> None:
    strict = Settings(max_future_skew_s=0, max_incident_age_s=60)
    exc = rejected(valid(reported_at="2024-05-01T17:05:01Z"), settings=strict)
    assert exc.code is RejectCode.IN_FUTURE
    assert "1 s in the future" in exc.reason and "clock" in exc.reason
    exc = rejected(valid(reported_at="2024-05-01T17:03:59Z"), settings=strict)
    assert exc.code is RejectCode.TOO_OLD
    assert "61 s old" in exc.reason
    assert check(valid(reported_at="2024-05-01T17:04:00Z"), settings=strict)


def test_schema_errors_come_before_time_errors() -> None:
    # A stale report that is also malformed is reported for the malformation the sender must fix first.
    exc = rejected(valid(reported_at="2020-01-01T00:00:00Z", priority=0))
    assert (exc.code, exc.field) == (RejectCode.INVALID_FIELD, "priority")


def test_now_must_be_aware() -> None:
    with pytest.raises(TypeError):
        validate_report(valid(), now=datetime(2024, 5, 1), settings=SETTINGS)


def test_unsupported_raw_types_are_rejected() -> None:
    assert rejected(12345).code is RejectCode.NOT_AN_OBJECT  # type: ignore[arg-type]
    assert rejected(None).code is RejectCode.NOT_AN_OBJECT  # type: ignore[arg-type]
    circular: dict[str, Any] = valid()
    circular["self"] = circular
    assert rejected(circular).code is RejectCode.MALFORMED_JSON


def test_report_is_immutable() -> None:
    report = check(valid())
    with pytest.raises(ValueError):
        report.priority = 1


def test_json_schema_documents_fields_and_examples() -> None:
    schema = IncidentReport.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"kind", "location", "reported_at", "priority", "source", "external_id"}
    assert schema["examples"] == [EXAMPLE_GUNSHOT_REPORT, EXAMPLE_911_REPORT]
    assert "911" in schema["$defs"]["IncidentKind"]["enum"]


def test_settings_come_from_dfr_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.database_url == "sqlite+aiosqlite:///./var/dfr.sqlite"
    assert (defaults.mqtt_url, defaults.merge_radius_m, defaults.merge_window_s) == (None, 250, 600)
    assert (defaults.max_payload_bytes, defaults.max_incident_age_s, defaults.max_future_skew_s) == (
        16384,
        86400,
        120,
    )
    monkeypatch.setenv("DFR_MERGE_RADIUS_M", "100")
    monkeypatch.setenv("DFR_MQTT_URL", "mqtt://broker:1883")
    monkeypatch.setenv("DFR_DATABASE_URL", "postgresql+asyncpg://dfr@db/dfr")
    configured = Settings()
    assert configured.merge_radius_m == 100
    assert configured.mqtt_url == "mqtt://broker:1883"
    assert configured.database_url == "postgresql+asyncpg://dfr@db/dfr"
    monkeypatch.setenv("DFR_MERGE_RADIUS_M", "-5")
    with pytest.raises(ValueError):
        Settings()


# ---------------------------------------------------------------------------------------------------------
# Property tests: nothing but ReportRejected or a valid report, whatever comes in

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
FIELDS = ["kind", "location", "reported_at", "priority", "source", "external_id", "address", "rounds"]
FIELDS += ["confidence", "note", "lat", "lon", "extra"]

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def gate(raw: Any) -> IncidentReport | ReportRejected:
    try:
        return check(raw)
    except ReportRejected as exc:
        json.dumps(exc.to_dict(), ensure_ascii=False).encode("utf-8")
        return exc


@PROPERTY
@given(st.binary(max_size=400))
def test_junk_bytes_never_raise_anything_else(raw: bytes) -> None:
    gate(raw)


@PROPERTY
@given(st.text(max_size=400))
def test_junk_text_never_raises_anything_else(raw: str) -> None:
    gate(raw)


@PROPERTY
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_junk_dicts_never_raise_anything_else(raw: dict[str, Any]) -> None:
    gate(raw)
    gate(json.dumps(raw).encode("utf-8", "surrogatepass"))


@PROPERTY
@given(st.sampled_from(FIELDS), json_values | st.datetimes(), st.sampled_from(["set", "delete", "nest"]))
def test_mutated_reports_never_raise_anything_else(field: str, value: Any, how: str) -> None:
    report = valid(kind="gunshot")
    if how == "delete":
        report.pop(field, None)
    elif how == "nest":
        report["location"] = {**report["location"], field: value}
    else:
        report[field] = value
    result = gate(report)
    if isinstance(result, IncidentReport):
        assert result == check(result.model_dump_json())  # a valid report round-trips through JSON


# Text a report may carry: no controls (C0, DEL, C1) and no bidirectional embeddings, overrides or isolates.
_DISPLAYABLE = st.characters(
    codec="utf-8",
    min_codepoint=0x20,
    exclude_categories=("Cc",),
    exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)

valid_reports: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    kind=st.sampled_from(["911", "alpr", "manual", "other"]),
    location=st.builds(
        dict,
        lat=st.floats(-90, 90, allow_nan=False),
        lon=st.floats(-180, 180, allow_nan=False),
    ),
    reported_at=st.datetimes(
        min_value=datetime(2024, 4, 30, 18, 0), max_value=datetime(2024, 5, 1, 17, 6)
    ).map(lambda d: d.replace(tzinfo=UTC).isoformat()),
    priority=st.integers(1, 5),
    source=st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z"),
    external_id=st.text(_DISPLAYABLE, min_size=1, max_size=128),
    note=st.none() | st.text(_DISPLAYABLE, max_size=200),
)


@PROPERTY
@given(valid_reports)
def test_generated_valid_reports_are_accepted_and_round_trip(data: dict[str, Any]) -> None:
    data["external_id"] = data["external_id"].replace("\x7f", "")
    data["note"] = data["note"].replace("\x7f", "") if data["note"] else None
    if not data["external_id"]:
        data["external_id"] = "x"
    report = check(json.dumps(data).encode())
    assert report == check(report.model_dump_json()) == check(report.model_dump(mode="json"))
    assert report.model_dump(mode="json")["kind"] == data["kind"]
