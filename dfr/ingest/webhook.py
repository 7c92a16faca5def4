"""Signed webhooks: how a sensor vendor or CAD system proves a report comes from it (HMAC-SHA256).

Each source is given a secret. It sends::

    X-DFR-Source: <source name, as in the report's "source" field>
    X-DFR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The timestamp is inside the signature, so a captured request cannot be replayed once it is older than
the window (``webhook_window_s``, default 5 minutes, either way for clock skew); within the window a
replay is harmless, because the ingest is idempotent on (source, external id). Comparison is constant
time; secrets are `SecretStr` and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as secrets_module
from collections.abc import Mapping

from pydantic import SecretStr

__all__ = ["WebhookRefused", "sign", "verify"]

_SIGNATURE = re.compile(r"^t=(?P<t>\d{1,12}),v1=(?P<v1>[0-9a-f]{64})$")


class WebhookRefused(Exception):
    """The request is not signed as it must be; ``reason`` says why (safe to return to the caller)."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-DFR-Signature header value for `body` (for senders, tests and the demo)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


_UNKNOWN_SOURCE_KEY = secrets_module.token_hex(32)  # never matches: the same work for an unknown source


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, SecretStr],
    *,
    now: float,
    window_s: float,
) -> str:
    """The source that signed `body`, or WebhookRefused. Checks come cheapest-first; every failure of the
    signature itself reads the same, so that the answer tells an attacker nothing about the secret, and an
    unknown source reads like a wrong signature (an HMAC is still computed), so that it does not tell which
    source names exist either."""
    source = headers.get("x-dfr-source", "")
    if not source:
        raise WebhookRefused("missing X-DFR-Source header", "X-DFR-Source")
    match = _SIGNATURE.match(headers.get("x-dfr-signature", "").strip())
    if match is None:
        raise WebhookRefused(
            "missing or malformed X-DFR-Signature (expected t=<unix>,v1=<hex>)", "X-DFR-Signature"
        )
    t = int(match["t"])
    if abs(now - t) > window_s:
        raise WebhookRefused(
            f"signature timestamp is {now - t:+.0f} s away from now; the window is ±{window_s:g} s",
            "X-DFR-Signature",
        )
    secret = secrets.get(source)
    key = secret.get_secret_value() if secret is not None else _UNKNOWN_SOURCE_KEY
    expected = sign(key, body, t).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, match["v1"]) or secret is None:
        raise WebhookRefused(
            "the signature does not verify for this source (unknown source, wrong secret, or the body "
            "was changed)",
            "X-DFR-Signature",
        )
    return source
