"""Admission of sign-in attempts: refused early, before they cost a password hash.

A sign-in costs a scrypt hash (~0.4 s of a core, on purpose) even for a username that does not exist, so
anonymous requests could otherwise buy CPU by the second. Before any hash an attempt must pass, in order:
the caller's address (all usernames: password spraying), the username at that address, the username from
any address, and the whole service (each a token bucket, `dfr.api.ratelimit`, 429); then it must get one of
`login_concurrency` places (one per address at a time: 429 if that address already has an attempt being
checked, 503 if every place is taken). The hash itself runs in its own small pool
(`dfr.auth.passwords`), so whatever passes cannot delay missions, video or recording either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import HTTPException, Request

from dfr.api.clients import client_address
from dfr.api.ratelimit import limit
from dfr.settings import Settings

__all__ = ["SignInGate", "admit_sign_in"]


def _busy(status: int, reason: str) -> HTTPException:
    return HTTPException(
        status,
        detail={
            "code": "rate_limited" if status == 429 else "busy",
            "reason": reason,
            "field": None,
            "position": None,
            "errors": [],
        },
        headers={"Retry-After": "1"},
    )


class SignInGate:
    """At most `capacity` sign-ins being checked at once, at most one per client address."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.checking: set[str] = set()

    @contextlib.contextmanager
    def place(self, client: str) -> Iterator[None]:
        if client in self.checking:
            raise _busy(429, f"a sign-in from {client} is already being checked; wait for its answer")
        if len(self.checking) >= self.capacity:
            raise _busy(503, "too many sign-ins are being checked right now; retry in a second")
        self.checking.add(client)
        try:
            yield
        finally:
            self.checking.discard(client)


def _gate(request: Request, settings: Settings) -> SignInGate:
    gate: SignInGate | None = getattr(request.app.state, "sign_in_gate", None)
    if gate is None:
        gate = request.app.state.sign_in_gate = SignInGate(settings.login_concurrency)
    return gate


def admit_sign_in(
    request: Request, settings: Settings, username: str
) -> contextlib.AbstractContextManager[None]:
    """Check every sign-in limit for this attempt (raising 429/503) and return its place to hold while the
    password is checked. Returns the client address it was held to as ``request.state.client``."""
    client = client_address(request)
    request.state.client = client
    limit(request, "sign-in", client, settings.login_client_rate_per_min)
    limit(request, "sign-in", f"{username}@{client}", settings.login_rate_per_min)
    limit(request, "sign-in", f"user {username}", settings.login_user_rate_per_min)
    limit(request, "sign-in", "all callers", settings.login_global_rate_per_min)
    return _gate(request, settings).place(client)
