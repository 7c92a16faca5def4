"""Waiting in tests: on an event where one exists, else polling a public read until it is true.

One copy for every test (instead of one per file): `until` polls an async predicate, `until_sync` a
plain one; both fail with what was awaited, never hang past their timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["until", "until_sync"]


async def until(probe: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll `probe` until true: for states no event announces (a public API read, a process table)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if await probe():
                    return
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


async def until_sync(probe: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    async def check() -> bool:
        return probe()

    await until(check, timeout, what, every)
