"""Per-caller request rate limits (token buckets), answered with 429 and a Retry-After.

A misbehaving sensor gateway or a script stuck in a loop must not be able to flood the dispatcher or the
database, and a password must not be guessable at machine speed. Each (purpose, caller) pair gets a
bucket of ``rate_per_min`` tokens, refilled continuously; a request takes one. Buckets live in memory:
limits protect this process, and a restart granting a fresh allowance is harmless.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

__all__ = ["RateLimiter", "limit"]

MAX_BUCKETS = 10_000  # distinct callers remembered; the idlest are forgotten first


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._clock = clock

    def take(self, purpose: str, caller: str, rate_per_min: float) -> float:
        """Take a token; returns 0 if allowed, else the seconds until one is available."""
        if rate_per_min <= 0:
            return 0.0  # unlimited
        now = self._clock()
        key = (purpose, caller)
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                idlest = min(self._buckets, key=lambda k: self._buckets[k].at)
                del self._buckets[idlest]
            b = self._buckets[key] = _Bucket(tokens=rate_per_min, at=now)
        per_s = rate_per_min / 60.0
        b.tokens = min(rate_per_min, b.tokens + (now - b.at) * per_s)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / per_s


def limit(request: Request, purpose: str, caller: str, rate_per_min: float) -> None:
    """Raise 429 (with Retry-After) if `caller` used up its allowance for `purpose`."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = request.app.state.rate_limiter = RateLimiter()
    wait = limiter.take(purpose, caller, rate_per_min)
    if wait > 0:
        raise HTTPException(
            429,
            detail={
                "code": "rate_limited",
                "reason": f"too many {purpose} requests from {caller}: at most {rate_per_min:g} a minute",
                "field": None,
                "position": None,
                "errors": [],
            },
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
