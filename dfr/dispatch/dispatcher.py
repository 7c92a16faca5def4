"""The dispatcher: turns new incidents into missions and supervises every flight to its end.

Ownership: the dispatcher owns which drone is busy and the flight tasks; the mission store owns
mission state (every step is persisted before the matching command is sent); the fleet owns the
MAVLink connections. On start it reloads open missions and resumes supervising them, so the
controller survives its own restart.

Pilot control: a pilot may take any drone (`take_control`). The drone is then in `_pilots`, its flight
(if it flies a mission) stops commanding it at once but keeps recording (see `dfr.dispatch.flight`),
and no new mission is given to it. `release` hands it back: the route is replanned from where the
pilot left the drone, and the flight resumes at its recorded phase. A mission's pilot control is
stored with the mission, so a restarted controller does not take the drone back from the pilot.

Re-tasking: a drone in the air may be chosen for a new incident (`dfr.dispatch.selection`, as the policy's
`retask` section allows). The hand-over happens under the launch lock: the new mission's sortie reserves
the drone first, then the first flight is told to stop (`FlightControl.handover`: it commands nothing more
and its supervisor neither lands nor returns the drone), the new mission is recorded launching, the first
one ends aborted "re-tasked to mission M" (audited as ``mission.retasked``), and the new flight takes the
drone where it is. Taking a drone off a scene (pre-emption) is first offered: the first mission's record
and the live feed announce it, and for the policy's window a pilot may refuse (`refuse_preemption`, or
by taking control of the drone); the urgent incident is then dispatched as if that drone were not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dfr.area import METRES_PER_FOOT, Area
from dfr.charging import ON_DOCK_M, time_until_ready_s
from dfr.dispatch.flight import (
    FAILSAFE_MODES,
    FlightControl,
    FlightPlan,
    FlightResult,
    HandedOver,
    OnPhase,
    Phase,
    advance,
    fly,
)
from dfr.dispatch.policy import Policy, decide
from dfr.dispatch.preparation import PREPARATION_PART, Preparation, launch_params
from dfr.dispatch.safety import make_safe
from dfr.dispatch.selection import (
    Airborne,
    Candidate,
    Choice,
    NoDroneAvailable,
    RetaskKind,
    SceneRefused,
    choose_drone,
)
from dfr.dispatch.sortie import plan_sortie, planner_zones
from dfr.domain.incidents import Incident
from dfr.domain.missions import (
    InvalidTransition,
    Mission,
    MissionDecision,
    MissionState,
    PilotControl,
    StandoffPoint,
    is_terminal,
)
from dfr.fleet.fleet import Fleet
from dfr.geo import distance_m
from dfr.live.bus import EventBus
from dfr.live.events import MissionEvent
from dfr.planning import PlanRequest, plan_route
from dfr.planning.corners import PX4_ACC_HOR_DEFAULT
from dfr.planning.fence import fit_fence
from dfr.store.missions import MissionStore
from dfr.store.store import IngestResult
from dfr.supervision import Supervisor

log = logging.getLogger(__name__)
S = MissionState
AIRBORNE = (S.LAUNCHING, S.EN_ROUTE, S.ON_SCENE, S.RETURNING)
RETRY_PART = "dispatcher-retry-queued"
HANDOVER_TIMEOUT_S = 15.0
"""Wall seconds a flight being re-tasked has to stop (it stops at its next step; a wait wakes at once)."""


def _with(mission: Mission, update: dict[str, Any]) -> Mission:
    """A validated copy (model_copy would skip the model's invariants)."""
    return Mission.model_validate({**mission.model_dump(), **update})


def _now() -> datetime:
    return datetime.now(UTC)


class NotPiloted(LookupError):
    """A release for a drone no pilot has taken."""


class NoPreemption(LookupError):
    """A refusal for a drone nobody offered to pre-empt."""


@dataclass(eq=False)
class PreemptionOffer:
    """An urgent mission's claim on a drone loitering over a routine one, open for the policy's window."""

    mission_id: str  # the urgent mission that would take the drone
    drone_id: str
    from_mission_id: str  # the routine mission it would be taken from
    refused: asyncio.Event = field(default_factory=asyncio.Event)
    refused_by: str | None = None


@dataclass(eq=False)
class Sortie:
    """One mission's flight, the one owner of everything that lives as long as it does.

    Made when a drone is reserved for the mission (before anything is stored, so that no drone is
    given two missions), it owns the supervising task, the flight's control (recall, pilot, phase)
    and the flown track. Its supervisor's one `finally` records the outcome, makes the drone safe
    (`dfr.dispatch.safety`) and frees the drone, whatever ended the flight.
    """

    mission_id: str
    drone_id: str
    control: FlightControl = field(default_factory=FlightControl)
    track: FlightResult = field(default_factory=FlightResult)
    task: asyncio.Task[None] | None = None
    priority: int | None = None  # of the mission's incident: whether it may be pre-empted
    airborne_start: bool = False  # the drone was taken in the air from another mission
    offer: PreemptionOffer | None = None  # an urgent mission's pending claim on this drone
    refused: dict[str, str] = field(default_factory=dict)  # urgent mission -> pilot who refused the drone


class BusyDrones(Mapping[str, str]):
    """A live, read-only view: drone id -> the mission it flies (or is reserved for)."""

    def __init__(self, sorties: dict[str, Sortie]) -> None:
        self._sorties = sorties

    def _pairs(self) -> dict[str, str]:
        return {s.drone_id: s.mission_id for s in self._sorties.values()}

    def __getitem__(self, drone_id: str) -> str:
        return self._pairs()[drone_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs())

    def __len__(self) -> int:
        return len(self._sorties)


class Dispatcher:
    def __init__(
        self,
        *,
        area: Area,
        policy: Policy,
        missions: MissionStore,
        fleet: Fleet,
        time_scale: float = 1.0,
        policy_name: str = "default",
        bus: EventBus | None = None,
    ) -> None:
        self.area = area
        self.policy = policy
        self.missions = missions
        self.fleet = fleet
        self.time_scale = time_scale
        self.policy_name = policy_name
        self._sorties: dict[str, Sortie] = {}  # mission id -> its sortie (drone reserved or flying)
        self.busy: Mapping[str, str] = BusyDrones(self._sorties)  # drone id -> mission id, read only
        self._pilots: dict[str, str] = {}  # drone id -> username of the pilot who has it
        self.approval_timers: dict[str, asyncio.Task[None]] = {}
        self.bus = bus if bus is not None else EventBus()
        """Where each committed mission change is published (`MissionEvent`): the live path's one bus."""
        self.pending: set[asyncio.Task[None]] = set()
        self._supervisor: Supervisor | None = None
        self._lock = asyncio.Lock()  # one launch decision at a time: no drone is given two missions
        self._offers: dict[str, PreemptionOffer] = {}  # urgent mission id -> its open pre-emption offer
        self._closing = False
        self._kick = asyncio.Event()  # a drone became ready: retry queued missions now
        self.preparation = Preparation(
            fleet,
            wanted=self._standing_params,
            idle=self._idle_on_dock,
            on_ready=lambda _drone_id: self._kick.set(),
            time_scale=time_scale,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Resume open missions (after a restart) and retry queued ones.

        The retry loop is the supervised part ``dispatcher-retry-queued`` (restarted if it ever dies)."""
        self._supervisor = supervisor or Supervisor("dispatcher")
        self._supervisor.spawn(RETRY_PART, self._retry_queued)
        self._supervisor.spawn(PREPARATION_PART, self.preparation.run)
        self.fleet.on_connect.append(lambda _drone_id: self.preparation.wake())
        for mission in await self.missions.open_missions():
            if mission.state in AIRBORNE and mission.drone_id is not None:
                sortie = self._reserve(mission.id, mission.drone_id)
                sortie.priority = await self._priority_of(mission)
                # re-tasked in the air and not yet under way when the service stopped: take it over again
                sortie.airborne_start = mission.state is S.LAUNCHING and self._starts_away(mission)
                self._spawn_flight(mission, resume=mission.state.value)
            elif mission.state is S.PENDING_APPROVAL:
                self._start_approval_timer(mission)
        await self._launch_queued()

    async def stop(self) -> None:
        """Stop supervising. Drones in the air keep flying their current command; a restart resumes them."""
        self._closing = True
        flights = [s.task for s in self._sorties.values() if s.task is not None]
        tasks = [*self.pending, *flights, *self.approval_timers.values()]
        if self._supervisor is not None:
            await self._supervisor.stop_part(RETRY_PART)
            await self._supervisor.stop_part(PREPARATION_PART)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _emit(self, mission: Mission) -> None:
        """Announce a committed change; publishing never waits and never fails (`EventBus.publish`), so no
        subscriber can hold up or break a mission step."""
        self.bus.publish(MissionEvent(mission))

    async def _step(
        self, mission_id: str, state: MissionState, actor: str = "dispatcher", **kw: Any
    ) -> Mission:
        mission = await self.missions.transition(mission_id, state, actor=actor, **kw)
        await self._emit(mission)
        return mission

    # ------------------------------------------------------------------ incidents
    async def submit(self, result: IngestResult) -> None:
        """Ingest hook: decide and launch in a named background task so the report's ack is not delayed."""
        if not result.created or self._closing:
            return

        async def run() -> None:
            try:
                await self.handle_incident(result.incident)
            except Exception:
                log.exception("dispatch of incident %s failed", result.incident.id)

        task = asyncio.create_task(run(), name=f"dispatch-incident-{result.incident.id}")
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def on_ingest(self, result: IngestResult) -> Mission | None:
        """Called after an incident report is persisted; only a new incident starts a mission."""
        if not result.created:
            return None
        return await self.handle_incident(result.incident)

    async def handle_incident(self, incident: Incident) -> Mission:
        wind = (self.area.wind.north_m_s**2 + self.area.wind.east_m_s**2) ** 0.5
        decision = decide(
            self.policy, kind=str(incident.kind.value), priority=incident.priority, wind_m_s=wind
        )
        record = MissionDecision(
            policy=f"{self.policy_name}:{decision.rule or 'none'}", reason=decision.reason, by="system"
        )
        now = _now()
        mission = Mission(
            incident_id=incident.id,
            state=S.PENDING_APPROVAL,
            created_at=now,
            updated_at=now,
            target=incident.location,
            altitude_m=self.policy.altitude_m or self.area.default_altitude_m,
            decision=record,
        )
        if decision.action == "launch":
            return await self._launch(mission, actor="dispatcher", new=True)
        mission = await self.missions.create(mission, actor="dispatcher")
        await self._emit(mission)
        if decision.action == "refuse":
            return await self._step(mission.id, S.DECLINED, reason=decision.reason)
        self._start_approval_timer(mission, decision.approval_timeout_s, decision.on_timeout)
        return mission

    # ------------------------------------------------------------------ approval
    def _start_approval_timer(
        self, mission: Mission, timeout: float | None = None, on_timeout: str | None = None
    ) -> None:
        timeout = timeout if timeout is not None else 120.0
        # The policy's timeout is in the drones' time: simulated seconds when the fleet is simulated faster
        # than real time (time_scale > 1), so that a scenario at 20x waits as long as a real shift would.
        elapsed = (_now() - mission.created_at).total_seconds()
        remaining = max(0.0, timeout / self.time_scale - elapsed)

        async def expire() -> None:
            await asyncio.sleep(remaining)
            self.approval_timers.pop(mission.id, None)  # fired: approve/decline have nothing to cancel
            current = await self.missions.get(mission.id)
            if current is None or current.state is not S.PENDING_APPROVAL:
                return
            if on_timeout == "launch":
                await self.try_launch(mission.id, actor="policy:approval-timeout")
            else:
                await self._step(
                    mission.id,
                    S.DECLINED,
                    actor="policy:approval-timeout",
                    reason=f"no approval within {timeout:.0f} s",
                )

        task = asyncio.create_task(expire(), name=f"approval-timer-{mission.id}")
        task.add_done_callback(self._timer_done)
        self.approval_timers[mission.id] = task

    def _timer_done(self, task: asyncio.Task[None]) -> None:
        """An approval timer that failed is logged with its name (the mission stays pending: a pilot can
        still approve or decline it, and a restart starts its timer again)."""
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def approve(self, mission_id: str, actor: str) -> Mission:
        timer = self.approval_timers.pop(mission_id, None)
        if timer is not None:
            timer.cancel()
        return await self.try_launch(mission_id, actor=actor)

    async def decline(self, mission_id: str, actor: str, reason: str) -> Mission:
        timer = self.approval_timers.pop(mission_id, None)
        if timer is not None:
            timer.cancel()
        return await self._step(mission_id, S.DECLINED, actor=actor, reason=reason)

    async def recall(self, mission_id: str, actor: str) -> None:
        sortie = self._sorties.get(mission_id)
        if sortie is None or sortie.task is None:
            raise LookupError(f"mission {mission_id} is not flying")
        if sortie.drone_id in self._pilots:
            raise LookupError(
                f"drone {sortie.drone_id} is under pilot control ({self._pilots[sortie.drone_id]}): "
                "the pilot commands it (return), or releases it first"
            )
        await self.missions.update(mission_id, actor=actor, reason="recalled by operator")
        sortie.control.recall.set()

    # ------------------------------------------------------------------ read-only questions
    def mission_of(self, drone_id: str) -> str | None:
        """The mission the drone flies or is reserved for, if any."""
        return self.busy.get(drone_id)

    def pilot_of(self, drone_id: str) -> str | None:
        """The username of the pilot who holds the drone, if one does."""
        return self._pilots.get(drone_id)

    def ready_in_s(self, drone_id: str) -> float | None:
        """Seconds until a drone on its charging dock is ready again (0: ready), for the RTCC's view;
        None when it is not on its dock, its dock does not charge, or its battery is unknown."""
        try:
            dock = self.area.dock(self.area.drone(drone_id).dock)
        except KeyError:
            return None
        drone = self.fleet.drones.get(drone_id)
        if dock.charging is None or drone is None:
            return None
        s = drone.state
        if s.in_air or s.armed or s.battery_pct is None or s.lat is None or s.lon is None:
            return None
        if distance_m(s.lat, s.lon, dock.lat, dock.lon) > ON_DOCK_M:
            return None
        return round(time_until_ready_s(max(0.0, s.battery_pct), dock.charging), 1)

    def not_ready(self, drone_id: str) -> str | None:
        """Why a drone idle on its dock cannot launch at once (being prepared), for the RTCC's view."""
        return self.preparation.not_ready(drone_id) if self._idle_on_dock(drone_id) else None

    def is_flying(self, mission_id: str) -> bool:
        """Whether the mission's flight is being supervised now."""
        sortie = self._sorties.get(mission_id)
        return sortie is not None and sortie.task is not None

    def _reserve(self, mission_id: str, drone_id: str) -> Sortie:
        sortie = Sortie(mission_id=mission_id, drone_id=drone_id)
        self._sorties[mission_id] = sortie
        return sortie

    # ------------------------------------------------------------------ launch
    def candidates(self, for_mission: str | None = None) -> list[Candidate]:
        """Every drone of the area as selection sees it; `for_mission` (the mission being dispatched)
        marks drones a pilot refused to it (`Airborne.kept_by`), which selection never takes for it."""
        out = []
        for cfg in self.area.drones:
            dock = self.area.dock(cfg.dock)
            drone = self.fleet.drones.get(cfg.id)
            state = drone.state if drone else None
            on_ground = state is not None and not state.in_air and not state.armed
            out.append(
                Candidate(
                    drone_id=cfg.id,
                    dock_id=dock.id,
                    lat=state.lat if state and state.lat is not None else dock.lat,
                    lon=state.lon if state and state.lon is not None else dock.lon,
                    available=cfg.id not in self.busy and cfg.id not in self._pilots and on_ground,
                    not_ready=self.preparation.not_ready(cfg.id) if on_ground else None,
                    connected=bool(state and state.connected and state.health_ok),
                    battery_pct=state.battery_pct if state else None,
                    response_speed_m_s=cfg.response_speed_m_s,
                    airborne=self._airborne(cfg.id, for_mission),
                )
            )
        return out

    def _airborne(self, drone_id: str, for_mission: str | None) -> Airborne | None:
        """What a busy drone in the air is doing, if it is something it might be re-tasked from: flying
        home or loitering, automated (no pilot, no recall), no offer pending."""
        mission_id = self.busy.get(drone_id)
        sortie = self._sorties.get(mission_id) if mission_id is not None else None
        drone = self.fleet.drones.get(drone_id)
        if sortie is None or sortie.task is None or sortie.task.done() or drone is None:
            return None
        control, state = sortie.control, drone.state
        if drone_id in self._pilots or control.recall.is_set() or control.handover.is_set():
            return None
        if not state.in_air or sortie.offer is not None:
            return None
        kinds = {"returning": RetaskKind.RETURNING, "on_scene": RetaskKind.LOITERING}
        kind = kinds.get(control.phase)
        if kind is None:
            return None
        # Our own return-to-launch looks like PX4's failsafe one; the flight records a failsafe it saw.
        own_rtl = control.phase == "returning" and sortie.track.failsafe is None
        failsafe = state.flight_mode == "LAND" or (state.flight_mode in FAILSAFE_MODES and not own_rtl)
        return Airborne(
            mission_id=sortie.mission_id,
            kind=kind,
            mission_priority=sortie.priority,
            altitude_m=state.rel_alt_m or 0.0,
            failsafe=failsafe,
            kept_by=sortie.refused.get(for_mission) if for_mission is not None else None,
        )

    async def _priority_of(self, mission: Mission) -> int | None:
        """The priority of the mission's incident (None if it cannot be read)."""
        try:
            incident = await self.missions.store.get_incident(mission.incident_id)
        except Exception:
            log.exception("mission %s: reading its incident's priority failed", mission.id)
            return None
        return incident.priority if incident is not None else None

    async def try_launch(self, mission_id: str, actor: str = "dispatcher") -> Mission:
        """Launch a stored mission that waits (approval given, or queued and a drone may be free)."""
        mission = await self.missions.get(mission_id)
        if mission is None:
            raise LookupError(f"no mission {mission_id}")
        return await self._launch(mission, actor=actor, new=False)

    async def _launch(self, mission: Mission, *, actor: str, new: bool) -> Mission:
        """Pick a drone and launch; else queue the mission (no drone free) or abort it (scene refused).

        `new`: the mission is not stored yet; it is created directly in the state the choice gives, so
        its timeline says what really happened (queued with the reason, or launching with the drone).
        A pre-emption is offered first: the mission waits queued for the refusal window (without the
        lock), then the choice is made again, that drone confirmed or, if refused, left out.
        """
        priority = await self._priority_of(mission)
        confirmed: set[str] = set()  # drones whose pre-emption window passed without a refusal
        offer: PreemptionOffer | None = None
        while True:
            async with self._lock:
                if offer is not None:
                    self._close_offer(offer)
                    if offer.refused.is_set() or offer.drone_id in self._pilots:
                        self._refuse(offer, offer.refused_by or self._pilots.get(offer.drone_id))
                    else:
                        confirmed.add(offer.drone_id)
                elif mission.id in self._offers:  # its own call waits for a refusal: nothing to do here
                    return await self.missions.get(mission.id) or mission
                step = await self._launch_locked(mission, actor, new, priority, confirmed, offer is not None)
            if isinstance(step, PreemptionOffer):
                offer, new = step, False
                mission = await self.missions.get(mission.id) or mission
                window = self.policy.retask.refuse_window_s / self.time_scale
                try:
                    await asyncio.wait_for(offer.refused.wait(), window)
                except TimeoutError:
                    pass
                except BaseException:  # cancelled (the service stops): the offer must not outlive its call
                    self._close_offer(offer)
                    raise
                continue
            mission, spawn = step
            if spawn:
                self._spawn_flight(mission, resume=None)
            return mission

    async def _launch_locked(
        self,
        mission: Mission,
        actor: str,
        new: bool,
        priority: int | None,
        confirmed: set[str],
        offered: bool = False,
    ) -> tuple[Mission, bool] | PreemptionOffer:
        """One launch decision under the lock: (mission, whether to spawn its flight), or an offer.

        `offered`: an offer of this mission's has just closed, so a queued mission's reason (the offer)
        is out of date and is restated."""
        if not new:
            current = await self.missions.get(mission.id)
            if current is None or current.state not in (S.PENDING_APPROVAL, S.QUEUED):
                return current or mission, False
            mission = current
        scene = (mission.target.lat, mission.target.lon)
        rule = mission.decision.policy.split(":", 1)[-1] if mission.decision is not None else None
        retask = self.policy.retask if self.policy.retask_allowed(rule) else None
        try:
            choice = choose_drone(
                self.area,
                self.policy,
                self.candidates(for_mission=mission.id),
                scene,
                retask=retask,
                priority=priority,
            )
        except SceneRefused as e:
            if new:
                mission = await self._create(_with(mission, {"state": S.QUEUED, "reason": "planning"}))
            return await self._step(mission.id, S.ABORTED, actor=actor, reason=f"refused: {e.reason}"), False
        except NoDroneAvailable as e:
            unreachable = self._beyond_every_dock(scene)
            if unreachable is not None:  # waiting would never help: say so instead of queueing forever
                if new:
                    mission = await self._create(_with(mission, {"state": S.QUEUED, "reason": "planning"}))
                reason = f"refused: {unreachable}"
                return await self._step(mission.id, S.ABORTED, actor=actor, reason=reason), False
            if new:
                return await self._create(_with(mission, {"state": S.QUEUED, "reason": str(e)[:500]})), False
            if mission.state is S.QUEUED:
                if offered:
                    await self._update_reason(mission.id, actor, str(e), restate=True)
                    return await self.missions.get(mission.id) or mission, False
                return mission, False
            return await self._step(mission.id, S.QUEUED, actor=actor, reason=str(e)[:500]), False
        taken = choice.retask
        window = self.policy.retask.refuse_window_s
        if taken is not None and taken.kind is RetaskKind.LOITERING and choice.drone_id not in confirmed:
            if window > 0:
                return await self._offer(mission, choice, taken, actor, new, priority)
        if taken is not None:
            return await self._hand_over(mission, choice, taken, actor, new, priority), True
        sortie = self._reserve(mission.id, choice.drone_id)
        sortie.priority = priority
        try:
            fields = self._launch_fields(choice)
            if new:
                mission = await self._create(_with(mission, {"state": S.LAUNCHING, **fields}))
            else:
                mission = await self._step(mission.id, S.LAUNCHING, actor=actor, **fields)
        except Exception:
            self._sorties.pop(mission.id, None)
            raise
        return mission, True

    # ------------------------------------------------------------------ re-tasking
    async def _offer(
        self, mission: Mission, choice: Choice, taken: Airborne, actor: str, new: bool, priority: int | None
    ) -> PreemptionOffer:
        """Announce that the urgent `mission` will take the drone from a routine one unless a pilot refuses
        within the policy's window: on both missions' records (events, audit) and the live feed."""
        sortie = self._sorties[taken.mission_id]
        window = self.policy.retask.refuse_window_s
        offer = PreemptionOffer(mission.id, choice.drone_id, taken.mission_id)
        waiting = (
            f"pre-empting {choice.drone_id} from routine mission {taken.mission_id} (on scene in about "
            f"{choice.eta_s:.0f} s): a pilot may refuse within {window:g} s"
        )
        if new:
            mission = await self._create(_with(mission, {"state": S.QUEUED, "reason": waiting}))
        elif mission.state is S.QUEUED:
            await self._update_reason(mission.id, actor, waiting, restate=True)
        else:
            mission = await self._step(mission.id, S.QUEUED, actor=actor, reason=waiting)
        offer.mission_id = mission.id
        sortie.offer = offer
        self._offers[mission.id] = offer
        await self._update_reason(
            taken.mission_id,
            "policy:preempt",
            f"pre-emption: priority-{priority} mission {mission.id} (incident {mission.incident_id}) takes "
            f"{choice.drone_id} in {window:g} s unless a pilot refuses",
            restate=True,  # on the mission itself, so that the live view shows it to the pilots
        )
        await self.missions.store.append_audit(
            "policy:preempt",
            "mission.preemption_offered",
            "mission",
            taken.mission_id,
            {
                "drone_id": choice.drone_id,
                "to_mission": mission.id,
                "incident_id": mission.incident_id,
                "priority": priority,
                "from_priority": taken.mission_priority,
                "refuse_window_s": window,
                "expected_time_to_scene_s": round(choice.eta_s, 1),
            },
        )
        return offer

    def _close_offer(self, offer: PreemptionOffer) -> None:
        self._offers.pop(offer.mission_id, None)
        sortie = self._sorties.get(offer.from_mission_id)
        if sortie is not None and sortie.offer is offer:
            sortie.offer = None

    def _refuse(self, offer: PreemptionOffer, who: str | None) -> None:
        """The drone stays with its mission; the urgent one is dispatched as if it were not there."""
        offer.refused_by = offer.refused_by or who
        sortie = self._sorties.get(offer.from_mission_id)
        if sortie is not None:
            sortie.refused[offer.mission_id] = offer.refused_by or "unknown"

    async def refuse_preemption(self, drone_id: str, who: str) -> str:
        """A pilot keeps the drone on its mission: the pending pre-emption of it is refused (recorded and
        audited on the mission it stays with). Returns that mission's id; raises `NoPreemption`."""
        mission_id = self.busy.get(drone_id)
        sortie = self._sorties.get(mission_id) if mission_id is not None else None
        offer = sortie.offer if sortie is not None else None
        if sortie is None or offer is None or offer.refused.is_set():
            raise NoPreemption(f"no pre-emption of drone {drone_id} is pending")
        self._refuse(offer, who)
        offer.refused.set()
        await self._update_reason(
            sortie.mission_id,
            who,
            f"pilot {who} refused the pre-emption of {drone_id} by mission {offer.mission_id}",
            restate=True,
        )
        return sortie.mission_id

    async def _update_reason(self, mission_id: str, actor: str, reason: str, restate: bool = False) -> None:
        """A note on a mission's record without a state change (an event, audited, and emitted);
        `restate`: it is also the mission's reason now."""
        try:
            mission = await self.missions.update(
                mission_id, actor=actor, reason=reason[:500], restate=restate
            )
        except InvalidTransition:
            return
        await self._emit(mission)

    async def _hand_over(
        self, mission: Mission, choice: Choice, taken: Airborne, actor: str, new: bool, priority: int | None
    ) -> Mission:
        """Give the drone in the air to `mission`: reserve it first (it always has an owner), stop the first
        flight without landing or returning the drone, record both missions; the caller spawns the flight.
        If recording fails after the first flight stopped, the drone is made safe (sent home)."""
        old = self._sorties[taken.mission_id]
        sortie = self._reserve(mission.id, choice.drone_id)
        sortie.priority, sortie.airborne_start = priority, True
        try:
            await self._stop_for_handover(old)
            fields = self._launch_fields(choice)
            from_what = "flying home" if taken.kind is RetaskKind.RETURNING else "loitering over"
            note = f"re-tasked in the air: {from_what} mission {taken.mission_id}"
            if new:
                mission = await self._create(_with(mission, {"state": S.LAUNCHING, "reason": note, **fields}))
            else:
                mission = await self._step(mission.id, S.LAUNCHING, actor=actor, reason=note, **fields)
        except Exception:
            self._sorties.pop(mission.id, None)
            action, _ = await make_safe(
                self.fleet.drones.get(choice.drone_id), pilot_holds=choice.drone_id in self._pilots
            )
            log.exception("re-tasking %s failed; %s", choice.drone_id, action.value)
            raise
        if taken.kind is RetaskKind.RETURNING:
            why = "it was flying home and is over the new scene sooner than any drone on a dock"
        else:
            window = self.policy.retask.refuse_window_s
            why = f"pre-empted by a priority-{priority} incident; no pilot refused within {window:g} s"
        reason = f"re-tasked to mission {mission.id} (incident {mission.incident_id}): {why}"
        try:
            await self._step(taken.mission_id, S.ABORTED, actor="policy:retask", reason=reason)
        except InvalidTransition:  # it ended on its own meanwhile (landed): its record stands
            log.info("mission %s ended before its drone was re-tasked", taken.mission_id)
        await self.missions.store.append_audit(
            "policy:retask",
            "mission.retasked",
            "mission",
            taken.mission_id,
            {
                "drone_id": choice.drone_id,
                "kind": taken.kind.value,
                "to_mission": mission.id,
                "incident_id": mission.incident_id,
                "priority": priority,
                "expected_time_to_scene_s": round(choice.eta_s, 1),
                "battery_needed_pct": round(choice.battery_needed_pct, 1),
            },
        )
        return mission

    async def _stop_for_handover(self, old: Sortie) -> None:
        """Stop the first flight at its next step (cancelled if it does not stop in time)."""
        old.control.handover.set()
        task = old.task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), HANDOVER_TIMEOUT_S)
        except TimeoutError:
            log.warning("mission %s did not stop for the hand-over in time: cancelled", old.mission_id)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _create(self, mission: Mission) -> Mission:
        stored = await self.missions.create(mission, actor="dispatcher")
        await self._emit(stored)
        return stored

    def _beyond_every_dock(self, scene: tuple[float, float]) -> str | None:
        """A reason if no dock of the area covers the scene (policy coverage radius), else None."""
        radius = self.policy.coverage_radius_m
        nearest = min(distance_m(d.lat, d.lon, *scene) for d in self.area.docks)
        if nearest <= radius:
            return None
        return (
            f"the scene is {nearest / 1000:.1f} km from the nearest dock, "
            f"beyond the {radius / 1000:.1f} km coverage"
        )

    def _launch_fields(self, choice: Choice) -> dict[str, Any]:
        route = choice.plan.route
        fields: dict[str, Any] = {
            "drone_id": choice.drone_id,
            "planned_route": [list(p) for p in route.waypoints],
            "expected_time_to_scene_s": round(choice.eta_s, 1),
            "altitude_m": choice.plan.altitude_m,
            "launched_at": _now(),
        }
        if route.standoff is not None:
            lon, lat = route.standoff.point
            fields["standoff"] = StandoffPoint(
                lat=lat,
                lon=lon,
                zone_id=route.standoff.zone_id,
                distance_m=round(route.standoff.distance_m, 1),
            )
        return fields

    async def _retry_queued(self, period_s: float = 2.0) -> None:
        """Retry queued missions periodically: a drone also becomes available by reconnecting, reporting
        its battery or being charged, not only by finishing a flight."""
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), period_s)
            self._kick.clear()
            try:
                await self._launch_queued()
            except Exception:
                log.exception("retrying queued missions failed")

    async def _launch_queued(self) -> None:
        for mission in await self.missions.list(state=S.QUEUED, limit=100):
            if self._closing:
                return
            if await self._expire_if_overdue(mission):
                continue
            await self.try_launch(mission.id)

    async def _expire_if_overdue(self, mission: Mission) -> bool:
        """End a queued launch whose deadline (policy, simulated seconds from the call) has passed."""
        rule = mission.decision.policy.split(":", 1)[-1] if mission.decision is not None else None
        deadline = self.policy.queue_deadline_for(rule)
        waited = (_now() - mission.created_at).total_seconds() * self.time_scale
        if waited < deadline:
            return False
        async with self._lock:  # no launch decision in between: only a mission still queued expires
            current = await self.missions.get(mission.id)
            if current is None or current.state is not S.QUEUED:
                return False
            await self._step(
                mission.id,
                S.ABORTED,
                actor="policy:queue-deadline",
                reason=(
                    f"expired: no drone could launch within {deadline:.0f} s of the call "
                    f"(last: {current.reason or 'no drone available'})"
                )[:500],
            )
        return True

    # ------------------------------------------------------------------ flight supervision
    def _spawn_flight(self, mission: Mission, resume: str | None) -> None:
        sortie = self._sorties[mission.id]
        assert mission.drone_id is not None
        if mission.pilot_control.active and mission.pilot_control.by is not None:
            self._pilots.setdefault(mission.drone_id, mission.pilot_control.by)  # a restart keeps the pilot's
        if mission.drone_id in self._pilots:
            sortie.control.pilot.set()
        sortie.task = asyncio.create_task(
            self._supervise(sortie, mission, resume), name=f"mission-{mission.id}"
        )
        sortie.task.add_done_callback(functools.partial(self._flight_done, sortie))

    def _flight_done(self, sortie: Sortie, task: asyncio.Task[None]) -> None:
        """`_supervise` records every flight's end itself; should it still die (say the database fails
        while it retries the queue after freeing the drone), say so with the mission, and make sure the
        drone is not left reserved for a flight that no longer runs (the retry loop launches the queue)."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("%s died after its flight", task.get_name(), exc_info=task.exception())
        if not self._closing:
            self._free(sortie)

    def _starts_away(self, mission: Mission) -> bool:
        """Whether the mission's route starts away from its drone's dock (it was re-tasked in the air)."""
        if not mission.planned_route or mission.drone_id is None:
            return False
        dock = self.area.dock(self.area.drone(mission.drone_id).dock)
        lon, lat = mission.planned_route[0]
        return distance_m(lat, lon, dock.lat, dock.lon) > ON_DOCK_M

    def _flight_plan(self, mission: Mission) -> FlightPlan:
        assert mission.drone_id is not None
        cfg = self.area.drone(mission.drone_id)
        end_lat, end_lon = mission.target.lat, mission.target.lon
        if mission.standoff is not None:
            end_lat, end_lon = mission.standoff.lat, mission.standoff.lon
        dock = self.area.dock(cfg.dock)
        sortie = plan_sortie(
            self.area,
            (dock.lat, dock.lon),
            (end_lat, end_lon),
            altitude_m=mission.altitude_m,
            cruise_m_s=cfg.response_speed_m_s,
            accel_m_s2=float(cfg.params.get("MPC_ACC_HOR", PX4_ACC_HOR_DEFAULT)),
            orbit_radius_m=self.policy.orbit_radius_m,
            buffer_m=self.policy.buffer_m,
            clear_height_m=dock.clear_height_m,
        )
        waypoints = [(float(p[0]), float(p[1])) for p in mission.planned_route] or sortie.route.waypoints
        home: list[tuple[float, float]] | None = None
        fence = sortie.fence
        if self._starts_away(mission):
            # Re-tasked in the air: the route starts where the drone was, so the way home is a route of its
            # own, and the fence is refitted to what this sortie flies (out from there, back to the dock).
            home = self._route(sortie.orbit_centre, (dock.lat, dock.lon), mission.altitude_m)
            lat, lon = sortie.orbit_centre
            fence = fit_fence(
                self.area.operating_area,
                planner_zones(self.area),
                mission.altitude_m,
                [*waypoints, *home],
                orbit=(lon, lat, sortie.orbit_radius_m) if sortie.orbit_radius_m > 0 else None,
            )
        return FlightPlan(
            waypoints=waypoints,
            altitude_m=mission.altitude_m,
            target=sortie.orbit_centre,
            response_speed_m_s=cfg.response_speed_m_s,
            orbit_radius_m=sortie.orbit_radius_m,
            orbit_speed_m_s=self.policy.orbit_speed_m_s,
            loiter_s=self.policy.loiter_s,
            params=dict(cfg.params),
            fence=fence,
            time_scale=self.time_scale,
            return_route=home,
            clear_height_m=dock.clear_height_m,
            # the leads were planned for these waypoints (and the fence allows them); another route (from
            # where a re-tasked drone was, or stored by an older version) is flown corner by corner
            corner_leads=sortie.corner_leads if waypoints == sortie.route.waypoints else (),
        )

    async def _supervise(self, sortie: Sortie, mission: Mission, resume: str | None) -> None:
        """Fly the sortie; whatever ends it, record the outcome, make the drone safe and free it.

        Cancellation (the service stopping) is the one exception: the drone is left to its autopilot
        and the mission stays open, so that the next start resumes it.
        """
        mission_id, drone_id = sortie.mission_id, sortie.drone_id
        flushed = 0

        async def flush() -> None:
            nonlocal flushed
            points = sortie.track.track[flushed:]
            if points:
                await self.missions.append_track(mission_id, points)
                flushed += len(points)

        async def flush_periodically() -> None:  # a restart loses at most a few seconds of track
            while True:
                await asyncio.sleep(2.0)
                try:
                    await flush()
                except Exception:  # the database refused: keep flying, try again at the next tick
                    log.exception("mission %s: track write failed", mission_id)

        flusher = asyncio.create_task(flush_periodically(), name=f"mission-{mission_id}-track")
        failure: Exception | None = None
        handed_over = False
        try:
            try:
                # after a restart the fleet may still be connecting to this drone
                drone = await self.fleet.wait_for_drone(drone_id, 60)
                plan = replace(self._flight_plan(mission), airborne_start=sortie.airborne_start)
                await fly(
                    drone,
                    plan,
                    self._recorder(mission_id),
                    resume=resume,
                    result=sortie.track,
                    control=sortie.control,
                )
            except asyncio.CancelledError:
                raise
            except HandedOver:  # re-tasked: the next mission's sortie owns the drone; the re-task records
                handed_over = True
            except Exception as e:  # the record must say why it ended
                log.exception("mission %s failed", mission_id)
                failure = e
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                try:
                    await asyncio.shield(flush())
                except Exception:
                    log.exception(
                        "mission %s: final track write failed; the drone is freed anyway", mission_id
                    )
            if failure is not None:
                await self._end_failed(sortie, failure)
        finally:
            if not self._closing:
                self._free(sortie)
        if not self._closing and not handed_over:  # (the hand-over holds the launch lock)
            await self._launch_queued()

    async def _end_failed(self, sortie: Sortie, failure: Exception) -> None:
        """A flight that gave up: make the drone safe, then record the failure and what was done."""
        drone = self.fleet.drones.get(sortie.drone_id)
        action, detail = await make_safe(drone, pilot_holds=sortie.drone_id in self._pilots)
        note = action.value + (f" ({detail})" if detail else "")
        reason = f"{type(failure).__name__}: {failure}; {note}"
        try:
            current = await self.missions.get(sortie.mission_id)
            if current is not None and not is_terminal(current.state):
                await self._step(sortie.mission_id, S.FAILED, reason=reason[:500])
        except Exception:
            log.exception("mission %s: recording the failure failed (%s)", sortie.mission_id, reason)

    def _free(self, sortie: Sortie) -> None:
        """The drone may be given another mission (pilot control ends with a flight on the ground)."""
        if self._sorties.get(sortie.mission_id) is sortie:
            del self._sorties[sortie.mission_id]
        flying = self.fleet.drones.get(sortie.drone_id)
        if flying is None or not flying.state.in_air:
            self._pilots.pop(sortie.drone_id, None)
        self.preparation.wake()

    def _standing_params(self, drone_id: str) -> dict[str, float] | None:
        """What a drone of this area holds while docked: its launch parameters at the transit altitude
        missions are given (the policy's, else the area's)."""
        try:
            cfg = self.area.drone(drone_id)
        except KeyError:
            return None
        altitude = self.policy.altitude_m or self.area.default_altitude_m
        return launch_params(cfg.response_speed_m_s, dict(cfg.params), altitude)

    def _idle_on_dock(self, drone_id: str) -> bool:
        """Parameters may be changed: no sortie, no pilot, disarmed on the ground."""
        drone = self.fleet.drones.get(drone_id)
        if drone is None or drone_id in self.busy or drone_id in self._pilots:
            return False
        return not drone.state.armed and not drone.state.in_air

    def _recorder(self, mission_id: str) -> OnPhase:
        """The `on_phase` of one mission's flight: each phase becomes a recorded mission step."""

        async def on_phase(phase: Phase, info: dict[str, Any]) -> None:
            fields: dict[str, Any] = {}
            if phase == "on_scene":
                current = await self.missions.get(mission_id)
                fields["on_scene_at"] = _now()
                if current is not None and current.launched_at is not None:
                    fields["achieved_time_to_scene_s"] = round(
                        (fields["on_scene_at"] - current.launched_at).total_seconds() * self.time_scale, 1
                    )
            if phase == "landed":
                fields["landed_at"] = _now()
            actor = str(info.get("actor") or "dispatcher")
            await self._step(
                mission_id, MissionState(phase), actor=actor, reason=info.get("reason"), **fields
            )

        return on_phase

    # ------------------------------------------------------------------ pilot control
    async def take_control(self, drone_id: str, who: str) -> str | None:
        """Give the drone to pilot `who` at once; returns its mission id (None if it has none).

        The flight's flag is set before anything is awaited, so the automation sends no further
        command from this instant; the change is then recorded on the mission (event + audit).
        """
        previous = self._pilots.get(drone_id)
        self._pilots[drone_id] = who
        mission_id = self.busy.get(drone_id)
        if mission_id is None:
            return None
        sortie = self._sorties.get(mission_id)
        if sortie is not None:
            sortie.control.pilot.set()
        if previous != who:
            reason = f"pilot {who} took control" + (f" from {previous}" if previous else "")
            await self._update(mission_id, who, reason, PilotControl(active=True, by=who))
        return mission_id

    async def handback_plan(self, drone_id: str) -> FlightPlan | None:
        """The plan a released mission continues by, replanned from where the drone is now.

        Raises a `dfr.planning.PlanError` (e.g. the drone is in a zone) when no safe route exists from
        here: the pilot must then fly clear first. None when the drone has no running flight.
        """
        mission_id = self.busy.get(drone_id)
        control = self._control(mission_id)
        drone = self.fleet.drones.get(drone_id)
        mission = await self.missions.get(mission_id) if mission_id is not None else None
        if mission is None or control is None or drone is None or mission.drone_id is None:
            return None
        base = self._flight_plan(mission)
        state = drone.state
        if state.lat is None or state.lon is None or not state.in_air:
            return base
        here = (state.lat, state.lon)
        if control.phase == "returning":
            dock = self.area.dock(self.area.drone(mission.drone_id).dock)
            home = self._route(here, (dock.lat, dock.lon), base.altitude_m)
            return replace(base, return_route=home)
        if control.phase in ("launching", "en_route", "on_scene"):
            out = self._route(here, base.target, base.altitude_m)
            back = base.return_route if base.return_route is not None else list(reversed(base.waypoints))
            return replace(base, waypoints=out, return_route=back)
        return base

    def _route(
        self, start: tuple[float, float], end: tuple[float, float], altitude_m: float
    ) -> list[tuple[float, float]]:
        """A zone-clear route (lon, lat) between two (lat, lon) points; ends exactly at `end`."""
        route = plan_route(
            PlanRequest(
                area=self.area.operating_area,
                start=(start[1], start[0]),
                target=(end[1], end[0]),
                altitude_m=altitude_m,
                zones=planner_zones(self.area),
                buffer_m=self.policy.buffer_m,
                max_altitude_m=self.area.max_altitude_ft_agl * METRES_PER_FOOT,
            )
        )
        points = list(route.waypoints)
        if route.standoff is not None:  # `end` sits in a zone's buffer (a dock may): the last leg is short
            points.append((end[1], end[0]))
        return points

    async def release(self, drone_id: str, who: str, plan: FlightPlan | None = None) -> str | None:
        """Hand the drone back to the automation; returns its mission id (None if it has none).

        `plan` (from `handback_plan`, computed before anything changes) is what the flight continues
        by. Raises `NotPiloted` if no pilot has the drone.
        """
        if drone_id not in self._pilots:
            raise NotPiloted(f"drone {drone_id} is not under pilot control")
        previous = self._pilots.pop(drone_id)
        mission_id = self.busy.get(drone_id)
        if mission_id is None:
            return None
        await self._update(
            mission_id, who, f"pilot {who} handed back to automation (had: {previous})", PilotControl()
        )
        control = self._control(mission_id)
        if control is not None and drone_id not in self._pilots:
            control.plan = plan
            control.pilot.clear()
            control.handback.set()
        return mission_id

    async def pilot_phase(self, drone_id: str, phase: Phase, who: str, reason: str) -> None:
        """Record a phase a pilot's command brings about (return, land) before the command is sent."""
        mission_id = self.busy.get(drone_id)
        control = self._control(mission_id)
        if mission_id is None or control is None:
            return
        await advance(control, self._recorder(mission_id), phase, {"reason": reason, "actor": who})

    def _control(self, mission_id: str | None) -> FlightControl | None:
        """The running flight's control of a mission (None when it is not flying)."""
        sortie = self._sorties.get(mission_id) if mission_id is not None else None
        return sortie.control if sortie is not None and sortie.task is not None else None

    async def _update(self, mission_id: str, who: str, reason: str, pilot: PilotControl) -> None:
        try:
            mission = await self.missions.update(mission_id, actor=who, reason=reason, pilot_control=pilot)
        except InvalidTransition:  # the mission has just ended: nothing left to record on it
            return
        await self._emit(mission)
