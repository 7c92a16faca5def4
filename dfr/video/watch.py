"""Which mission each drone is flying, as the video side needs it: from the live event bus.

The sources need the target to draw and the state for transit mode; the recorder needs to know when a
mission launches and ends. Both follow the `MissionEvent`s the dispatcher publishes on the service's
`EventBus` after each committed change (as the mission JSON the API returns, which is what sources and
recorder read), so video never queries the database per frame. At start the view is seeded from the
dispatcher's busy drones (missions resumed after a restart), and after an `OverflowEvent` (events were
lost) it is rebuilt the same way.

Following runs as the supervised part ``video-mission-watch``; a restart subscribes afresh and re-seeds,
as after an overflow, since events published while it was down were not seen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dfr.domain.missions import TERMINAL_STATES, MissionState
from dfr.live.bus import EventBus, Subscription
from dfr.live.events import Event, MissionEvent, OverflowEvent
from dfr.store.missions import MissionStore
from dfr.supervision import Supervisor

__all__ = ["WATCH_PART", "MissionListener", "MissionWatch"]

WATCH_PART = "video-mission-watch"

log = logging.getLogger(__name__)

MissionListener = Callable[[dict[str, Any]], Awaitable[None]]
_TERMINAL = frozenset(s.value for s in TERMINAL_STATES)


class MissionWatch:
    """Latest mission per drone (until it ends); `listeners` are awaited with each mission change."""

    def __init__(self, bus: EventBus, busy: Mapping[str, str], missions: MissionStore) -> None:
        self.bus = bus
        self.busy = busy  # the dispatcher's drone id -> mission id (read only)
        self.missions = missions
        self.by_drone: dict[str, dict[str, Any]] = {}
        self.listeners: list[MissionListener] = []
        self._supervisor: Supervisor | None = None
        self._sub: Subscription | None = None  # the first run's, subscribed and seeded by `start`

    def mission_for(self, drone_id: str) -> dict[str, Any] | None:
        return self.by_drone.get(drone_id)

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Seed, then follow as the part ``video-mission-watch`` of `supervisor` (a private one if none)."""
        self._sub = self._subscribe()  # before seeding: no change falls in between
        await self._seed()
        self._supervisor = supervisor or Supervisor("video")
        self._supervisor.spawn(WATCH_PART, self._follow)

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop_part(WATCH_PART)
        if self._sub is not None:
            self._sub.close()

    def _subscribe(self) -> Subscription:
        return self.bus.subscribe("video", maxsize=1024)

    async def _seed(self) -> None:
        """Load the busy drones' missions, and re-read those we hold that may have ended unseen (events
        lost to an overflow), so that their end reaches the listeners (the recorder) too."""
        ids = set(self.busy.values()) | {str(m.get("id")) for m in self.by_drone.values()}
        for mission_id in ids:
            mission = await self.missions.get(mission_id)
            if mission is not None:
                await self._apply(mission.model_dump(mode="json"))

    async def _follow(self) -> None:
        sub, self._sub = self._sub, None
        if sub is None:  # a restart: what was published meanwhile is unknown, so read it again
            sub = self._subscribe()
            await self._seed()
        with sub:
            await self.bus.serve(sub, self._on_event)
        if self.bus.closed and self._supervisor is not None:  # the end of the bus ends the watch
            self._supervisor.ending(WATCH_PART)

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, MissionEvent):
            await self._apply(event.mission.model_dump(mode="json"))
        elif isinstance(event, OverflowEvent):
            log.warning("video mission watch lost %d events; resyncing", event.dropped)
            await self._seed()

    async def _apply(self, mission: dict[str, Any]) -> None:
        drone_id = mission.get("drone_id")
        state = mission.get("state")
        if isinstance(drone_id, str) and isinstance(state, str):
            if state in _TERMINAL:
                current = self.by_drone.get(drone_id)
                if current is not None and current.get("id") == mission.get("id"):
                    del self.by_drone[drone_id]
            elif state != MissionState.QUEUED.value:
                self.by_drone[drone_id] = mission
        for listener in tuple(self.listeners):
            try:
                await listener(mission)
            except Exception:
                log.exception("video mission listener failed")
