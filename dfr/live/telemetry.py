"""Feed the live bus with drone telemetry (`TelemetryEvent`), throttled.

Mission changes are published by the dispatcher itself after each commit, incidents by the ingests (see
`dfr.live.events`). MAVSDK delivers several updates per second per subscription and a map needs about
two, so each drone is watched by its own task that waits on `Drone.changed` (an event, not a poll) and
publishes at most `telemetry_hz` snapshots per second of wall time. Updates arriving inside one
throttle window are coalesced into the next snapshot, which is always the latest state, so nothing but
intermediate samples is lost and the final state of a burst is never held back longer than one window.

Drones that are not connected yet are awaited through `Fleet.wait_for_drone`, so a drone that comes up
late is fed as soon as it appears. The per-drone tasks run under the supervised part ``live-telemetry``;
a watcher that fails is logged and restarted after a pause, because a dead telemetry feed would leave
every map frozen without anyone noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Final

from dfr.fleet.drone import Drone
from dfr.live.bus import EventBus
from dfr.live.events import TelemetryEvent
from dfr.supervision import PartState, Supervisor

if TYPE_CHECKING:  # the dispatcher publishes on the bus, so it imports this package
    from dfr.dispatch.dispatcher import Dispatcher
    from dfr.fleet.fleet import Fleet

__all__ = ["DEFAULT_TELEMETRY_HZ", "LiveFeed", "telemetry_event"]

log = logging.getLogger(__name__)
TELEMETRY_PART = "live-telemetry"

DEFAULT_TELEMETRY_HZ: Final = 2.0
"""Snapshots per drone per wall second: smooth enough for a map, light enough for many viewers."""

RESTART_DELAY_S: Final = 1.0
"""Pause before a failed watcher is restarted, so that a persistent bug does not spin the CPU."""

_WAIT_FOR_DRONE_S: Final = 3600.0
"""`Fleet.wait_for_drone` needs a timeout; waiting is simply resumed when it expires."""


def telemetry_event(
    drone: Drone, mission_id: str | None, ready_in_s: float | None = None, not_ready: str | None = None
) -> TelemetryEvent:
    """The drone's latest snapshot, now, with its mission if busy, the seconds until it is ready again
    when it charges on its dock, and why it cannot launch at once (being prepared)."""
    return TelemetryEvent(
        drone.id, drone.state.snapshot(), mission_id=mission_id, ready_in_s=ready_in_s, not_ready=not_ready
    )


def _changed_since(drone: Drone, seen: float | None) -> bool:
    return drone.state.updated_at != seen


class LiveFeed:
    """Publishes the telemetry of one running service's drones on `bus`.

    `start` starts the part ``live-telemetry`` (with one ``live-telemetry-<drone>`` task per configured
    drone); `stop` stops it.
    """

    def __init__(
        self,
        bus: EventBus,
        fleet: Fleet,
        dispatcher: Dispatcher,
        *,
        telemetry_hz: float = DEFAULT_TELEMETRY_HZ,
    ) -> None:
        if not (telemetry_hz > 0 and math.isfinite(telemetry_hz)):
            raise ValueError("telemetry_hz must be a positive number")
        self.bus = bus
        self.fleet = fleet
        self.dispatcher = dispatcher
        self.period_s = 1.0 / telemetry_hz
        self._task: asyncio.Task[None] | None = None
        self._supervisor: Supervisor | None = None

    @property
    def running(self) -> bool:
        if self._supervisor is not None:
            status = self._supervisor.parts.get(TELEMETRY_PART)
            return status is not None and status.state is PartState.RUNNING
        return self._task is not None and not self._task.done()

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Follow the drones; the telemetry watcher is the supervised part ``live-telemetry`` when a
        supervisor is given (restarted if it dies), else a plain task (tests)."""
        if self._task is not None or self._supervisor is not None:
            raise RuntimeError("LiveFeed.start() was already called")
        if supervisor is not None:
            self._supervisor = supervisor
            supervisor.spawn(TELEMETRY_PART, self._supervise)
        else:
            self._task = asyncio.create_task(self._supervise(), name=TELEMETRY_PART)

    async def stop(self) -> None:
        """Stop publishing (idempotent). Events already on the bus stay there for their readers."""
        if self._supervisor is not None:
            await self._supervisor.stop_part(TELEMETRY_PART)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -------------------------------------------------------------------------------------------------
    # Telemetry

    async def _supervise(self) -> None:
        ids = list(dict.fromkeys(link.drone_id for link in self.fleet.links))
        async with asyncio.TaskGroup() as group:
            for drone_id in ids:
                group.create_task(self._keep_watching(drone_id), name=f"live-telemetry-{drone_id}")

    async def _keep_watching(self, drone_id: str) -> None:
        while True:
            try:
                await self._watch(drone_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live telemetry of %s failed; restarting in %.0f s", drone_id, RESTART_DELAY_S)
                await asyncio.sleep(RESTART_DELAY_S)

    async def _watch(self, drone_id: str) -> None:
        drone = await self._wait_for_drone(drone_id)
        last_sent = -math.inf
        seen: float | None = None  # `updated_at` of the last published snapshot
        while True:
            async with drone.changed:
                await drone.changed.wait_for(functools.partial(_changed_since, drone, seen))
            # The throttle: wait out the rest of the window; updates meanwhile land in the same snapshot.
            delay = last_sent + self.period_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            seen = drone.state.updated_at
            last_sent = time.monotonic()
            d = self.dispatcher
            self.bus.publish(
                telemetry_event(drone, d.mission_of(drone_id), d.ready_in_s(drone_id), d.not_ready(drone_id))
            )

    async def _wait_for_drone(self, drone_id: str) -> Drone:
        while True:
            with contextlib.suppress(TimeoutError):
                return await self.fleet.wait_for_drone(drone_id, _WAIT_FOR_DRONE_S)
