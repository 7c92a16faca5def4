"""Supervised background tasks: every long-lived task has a name, a state, and is restarted when it dies.

Why: a bare ``asyncio.create_task`` that raises dies silently (at best a "Task exception was never
retrieved" at exit), and whatever it did simply stops: fleet discovery no longer connects drones that
come up, the simulator's clock no longer steps. A `Supervisor` (after Home Assistant's tracked
background tasks, plus restarts) runs each *part* under its name; when a part raises, or returns though
it should run until stopped, the error is logged with the part's name and the part is restarted after a
back-off that doubles up to `Backoff.max_s` (and starts again from `Backoff.initial_s` once a run lasted
`Backoff.stable_s`). A part that keeps failing (`max_failures` runs in a row) or is marked
`OnFailure.ESCALATE` is given up: its state becomes `PartState.FAILED`, it is logged as critical and the
supervisor's `escalated` event is set, for whoever owns the process to decide (the simulator exits).

A part that must finish its work before it stops (the MQTT ingest stores the reports it has taken,
the MQTT publisher sends the mission changes it holds) is not cancelled: its owner calls `ending`, asks
it to finish, and `join`s it; its return is then a stop, not a failure.

`down()` lists the parts that are not running; the service's ``/api/v1/healthz`` shows it (``parts``,
and every part's state in ``supervised``) and the panel shows a banner while it is not empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Backoff", "OnFailure", "PartState", "PartStatus", "Supervisor"]

log = logging.getLogger(__name__)


class PartState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # it failed; waiting out the back-off before the next run
    FAILED = "failed"  # given up (escalated)
    STOPPED = "stopped"  # stopped on purpose (shutdown)


class OnFailure(StrEnum):
    RESTART = "restart"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    stable_s: float = 30.0
    """A run that lasted this long counts as healthy: the next failure starts the back-off afresh."""

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1)))


@dataclass
class PartStatus:
    """What the health endpoint shows of one part."""

    name: str
    state: PartState = PartState.RUNNING
    restarts: int = 0
    failures_in_a_row: int = 0
    last_error: str | None = None
    since: float = field(default_factory=time.time)
    """Unix time of the last state change."""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state.value,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "since": round(self.since, 3),
        }


PartFactory = Callable[[], Awaitable[None]]


class Supervisor:
    """Runs named parts until `stop`; see the module docstring."""

    def __init__(self, name: str = "dfr", *, backoff: Backoff | None = None, max_failures: int = 10) -> None:
        self.name = name
        self.backoff = backoff or Backoff()
        self.max_failures = max_failures
        self.parts: dict[str, PartStatus] = {}
        self.escalated = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ending: set[str] = set()  # parts their owner is stopping: their return is not a failure
        self._changed = asyncio.Event()

    def spawn(self, name: str, factory: PartFactory, *, on_failure: OnFailure = OnFailure.RESTART) -> None:
        """Run ``factory()`` as the part `name` (a fresh coroutine for every restart)."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"part {name!r} is already running")
        self._ending.discard(name)
        self.parts[name] = PartStatus(name)
        self._tasks[name] = asyncio.create_task(self._keep(name, factory, on_failure), name=name)
        self._pulse()

    def ending(self, name: str) -> None:
        """Part `name` is being stopped by its owner, who will make it return: that return (or a
        failure from now on) stops it instead of restarting it. Follow with `join`."""
        self._ending.add(name)

    async def join(self, name: str, timeout_s: float) -> None:
        """Wait for part `name` to return after `ending`; cancelled after `timeout_s`, or at once if it is
        only waiting out a back-off (there is no run left to finish)."""
        task = self._tasks.pop(name, None)
        part = self.parts.get(name)
        if task is not None and not task.done():
            if part is None or part.state is PartState.RUNNING:
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout_s)
                except TimeoutError:
                    log.error("%s part %s did not stop within %.1f s; cancelled", self.name, name, timeout_s)
            task.cancel()  # no-op if it returned
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if part is not None and part.state is not PartState.FAILED:
            self._set(part, PartState.STOPPED)

    def down(self) -> list[PartStatus]:
        """Parts not running (failed, or waiting to restart); stopped ones are not down."""
        return [p for p in self.parts.values() if p.state in (PartState.RESTARTING, PartState.FAILED)]

    async def wait_until(self, predicate: Callable[[Supervisor], bool]) -> None:
        """Wait until `predicate(self)` holds after some state change (an event, not polling)."""
        while not predicate(self):
            self._changed.clear()
            await self._changed.wait()

    async def stop_part(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if name in self.parts:
            self._set(self.parts[name], PartState.STOPPED)

    async def stop(self) -> None:
        """Stop every part (cancel, wait), newest first."""
        for name in reversed(list(self._tasks)):
            await self.stop_part(name)

    def _pulse(self) -> None:
        self._changed.set()

    def _set(self, part: PartStatus, state: PartState) -> None:
        part.state, part.since = state, time.time()
        self._pulse()

    async def _keep(self, name: str, factory: PartFactory, on_failure: OnFailure) -> None:
        part = self.parts[name]
        while True:
            started = time.monotonic()
            try:
                await factory()
                if name in self._ending:
                    self._set(part, PartState.STOPPED)
                    return
                error = "ended though it should run until stopped"
                log.error("%s part %s %s", self.name, name, error)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                error = f"{type(e).__name__}: {e}"[:300]
                log.exception("%s part %s failed", self.name, name)
                if name in self._ending:
                    part.last_error = error
                    self._set(part, PartState.STOPPED)
                    return
            if time.monotonic() - started >= self.backoff.stable_s:
                part.failures_in_a_row = 0
            part.failures_in_a_row += 1
            part.last_error = error
            if on_failure is OnFailure.ESCALATE or part.failures_in_a_row >= self.max_failures:
                log.critical(
                    "%s part %s given up after %d failure(s) in a row: %s",
                    self.name,
                    name,
                    part.failures_in_a_row,
                    error,
                )
                self._set(part, PartState.FAILED)
                self.escalated.set()
                return
            delay = self.backoff.delay(part.failures_in_a_row)
            log.warning("%s part %s restarts in %.1f s", self.name, name, delay)
            self._set(part, PartState.RESTARTING)
            await asyncio.sleep(delay)  # the back-off itself: a duration, not a synchronisation
            part.restarts += 1
            self._set(part, PartState.RUNNING)
