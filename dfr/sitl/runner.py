"""Run one scenario end to end: vehicles, the real service, the timeline, the record, the verdict.

Order of a run: start the vehicles (builtin simulator or PX4 SITL) → start the service in-process on a
fresh SQLite file, sign in a pilot and a feed account → wait until every drone is connected and healthy
→ play the timeline (incidents over HTTP or MQTT, faults through the simulator's control socket, pilot
actions and restarts through the public API) → wait until every incident's mission has ended → read the
record back through the public API → check the expectations → stop everything.

Times in a scenario are simulated seconds. The run's clock is the backend's (the simulator's own
``sim_time``), so a scenario means the same at 10x and at 30x. While it runs, a sampler records every
drone's position and height, both as the controller reports it (``/api/v1/drones``) and, where the
backend knows it, as the vehicle really is: the altitude and no-fly checks use these samples as well
as the stored tracks, so a drone flown by a pilot or by an autopilot failsafe is checked too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dfr.domain.missions import TERMINAL_STATES
from dfr.settings import Settings
from dfr.sitl.backends import Backend, BackendUnsupported, BuiltinBackend, derive_area, write_policy
from dfr.sitl.controller import Controller
from dfr.sitl.expectations import CheckResult, evaluate, summary_times
from dfr.sitl.scenario import IncidentSpec, PilotAction, Scenario, Step

log = logging.getLogger(__name__)

__all__ = ["RunOptions", "ScenarioResult", "StepFailed", "run_scenario"]

ORDER = ("pending_approval", "queued", "launching", "en_route", "on_scene", "returning", "landed")
TERMINAL = {s.value for s in TERMINAL_STATES}
SAMPLE_PERIOD_S = 0.2
"""Wall seconds between samples of the drones' state (at 20x: every 4 simulated seconds)."""


@dataclass
class RunOptions:
    backend: str = "builtin"
    speed: float | None = None
    report_dir: Path | None = None
    attach: list[str] | None = None
    mqtt_url: str | None = None
    px4_bin: str | None = None


@dataclass
class ScenarioResult:
    name: str
    path: str
    verdict: str  # pass, fail, error, skipped
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    time_to_scene_s: float | None = None
    flight_time_s: float | None = None
    wall_s: float = 0.0
    speed: float = 0.0
    backend: str = "builtin"
    record: dict[str, Any] = field(default_factory=dict)
    report_json: str | None = None
    report_png: str | None = None

    @property
    def failures(self) -> list[str]:
        out = [f"{c.kind}: {c.reason}" for c in self.checks if not c.ok]
        if self.error:
            out.insert(0, self.error)
        return out


class StepFailed(RuntimeError):
    """A timeline step could not be carried out as written (the message says which and why)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _label(step: Step) -> str:
    """A few characters for the report's timeline strip."""
    if step.incident is not None:
        return step.incident.ref
    if step.fault is not None:
        return step.fault.type
    if step.pilot is not None:
        return step.pilot.action
    return "restart"


# ---------------------------------------------------------------------------------------------------------
# The run


class Run:
    """State of one run: the clock, the service, what was posted and what was sampled."""

    def __init__(self, scenario: Scenario, backend: Backend, controller: Controller, speed: float) -> None:
        self.scenario = scenario
        self.backend = backend
        self.ctl = controller
        self.speed = speed
        self.t0_sim = 0.0
        self.t0_wall = _now()
        self.refs: dict[str, list[str]] = {}  # incident ref -> server incident ids, first report's first
        self.reports: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.sampler_errors = 0
        self.effective_speed: float | None = None
        self._mqtt: Any = None
        self._rng = random.Random(scenario.spec.seed)

    # --------------------------------------------------------------- clock
    async def sim_now(self) -> float:
        return await self.backend.sim_time() - self.t0_sim

    async def wait_sim(self, t: float) -> None:
        """Until `t` simulated seconds after the start (polling the backend's clock, not sleeping blind)."""
        while True:
            now = await self.sim_now()
            if now >= t:
                return
            await asyncio.sleep(min(0.1, max(0.01, (t - now) / self.speed)))

    async def sleep_sim(self, seconds: float) -> None:
        if seconds > 0:
            await self.wait_sim(await self.sim_now() + seconds)

    def sim_of(self, at: datetime | str | None) -> float | None:
        """A wall timestamp from the record, as simulated seconds since the start."""
        if at is None:
            return None
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return round((at - self.t0_wall).total_seconds() * self.speed, 1)

    # --------------------------------------------------------------- missions
    async def missions(self) -> list[dict[str, Any]]:
        page = await self.ctl.get("/api/v1/missions", limit=1000)
        return list(page["missions"])

    def mission_of(self, ref: str, missions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The newest mission of the incident `ref` names (missions are listed newest first)."""
        ids = set(self.refs.get(ref, []))
        return next((m for m in missions if m["incident_id"] in ids), None)

    async def wait_mission(self, ref: str, timeout_sim: float = 120.0) -> dict[str, Any]:
        deadline = await self.sim_now() + timeout_sim
        while True:
            m = self.mission_of(ref, await self.missions())
            if m is not None:
                return m
            if await self.sim_now() > deadline:
                raise StepFailed(f"incident {ref!r} has no mission after {timeout_sim:.0f} s")
            await asyncio.sleep(0.05)

    async def reached(self, mission: dict[str, Any], state: str) -> bool | None:
        """True if the mission is or was in `state`; False if not yet; None if it ended without it."""
        if mission["state"] == state:
            return True
        events = (await self.ctl.get(f"/api/v1/missions/{mission['id']}/events"))["events"]
        if any(e["to_state"] == state for e in events):
            return True
        return None if mission["state"] in TERMINAL else False

    # --------------------------------------------------------------- steps
    async def play(self) -> None:
        for i, step in enumerate(self.scenario.spec.timeline):
            await self._when(i, step)
            t = await self.sim_now()
            entry: dict[str, Any] = {"step": i, "t": round(t, 1), "what": step.what, "label": _label(step)}
            entry["ok"] = True
            self.timeline.append(entry)
            try:
                entry["detail"] = await self._do(step)
            except StepFailed as e:
                entry.update(ok=False, detail=str(e))
                raise StepFailed(f"timeline[{i}] ({step.what}): {e}") from None

    async def _when(self, i: int, step: Step) -> None:
        if step.at_s is not None:
            await self.wait_sim(step.at_s)
        if step.after is not None:
            ref, state = step.after.incident, step.after.state
            deadline = await self.sim_now() + self.scenario.spec.timeout_s
            while True:
                m = self.mission_of(ref, await self.missions())
                if m is not None:
                    hit = await self.reached(m, state)
                    if hit:
                        break
                    if hit is None:
                        raise StepFailed(
                            f"timeline[{i}]: waits for {ref}'s mission to reach {state}, but it ended "
                            f"{m['state']} without it ({m.get('reason') or 'no reason'})"
                        )
                if await self.sim_now() > deadline:
                    raise StepFailed(f"timeline[{i}]: {ref}'s mission never reached {state}")
                await asyncio.sleep(0.05)
        await self.sleep_sim(step.delay_s)

    async def _do(self, step: Step) -> str:
        if step.incident is not None:
            return await self._incident(step.incident)
        if step.fault is not None:
            f = step.fault
            sysid = self.scenario.drone_ids.index(f.drone) + 1 if f.drone is not None else None
            try:
                await self.backend.fault(sysid, f)
            except BackendUnsupported as e:
                raise StepFailed(str(e)) from None
            args = {k: v for k, v in f.model_dump().items() if v is not None and k != "type"}
            return f"fault {f.type} {args}"
        if step.pilot is not None:
            return await self._pilot(step.pilot)
        assert step.restart is not None
        await self.ctl.stop()
        await self.sleep_sim(step.restart.down_s)
        await self.ctl.start()
        await self.wait_drones_connected()
        return f"controller restarted after {step.restart.down_s:g} s down"

    def _report(self, spec: IncidentSpec, k: int) -> dict[str, Any]:
        lat, lon = spec.lat, spec.lon
        if spec.spread_m > 0 and k > 0:
            r = spec.spread_m * math.sqrt(self._rng.random())
            a = self._rng.uniform(0, 2 * math.pi)
            lat += r * math.cos(a) / 111_320.0
            lon += r * math.sin(a) / (111_320.0 * math.cos(math.radians(spec.lat)))
        body: dict[str, Any] = {
            "kind": spec.kind,
            "location": {"lat": round(lat, 7), "lon": round(lon, 7)},
            "reported_at": _now().isoformat(),
            "priority": spec.priority,
            "source": spec.source,
            "external_id": f"{self.scenario.name}-{spec.ref}-{k + 1}",
        }
        if spec.note:
            body["note"] = spec.note
        return body

    async def _incident(self, spec: IncidentSpec) -> str:
        outcomes = []
        for k in range(spec.count):
            if k > 0:
                await self.sleep_sim(spec.interval_s)
            body = self._report(spec, k)
            rec: dict[str, Any] = {"ref": spec.ref, "via": spec.via, "external_id": body["external_id"]}
            rec.update(source=spec.source, lat=body["location"]["lat"], lon=body["location"]["lon"])
            rec["t"] = round(await self.sim_now(), 1)
            if spec.via == "mqtt":
                await self._publish(body)
                incident_id = await self._find_incident(spec.source, body["external_id"])
                rec.update(status="published", incident_id=incident_id)
            else:
                r = await self.ctl.feed_client().post("/api/v1/incidents", json=body)
                if r.status_code not in (200, 201):
                    raise StepFailed(f"report {body['external_id']} refused: {r.status_code} {r.text[:300]}")
                res = r.json()
                incident_id = res["incident"]["id"]
                rec.update(status=r.status_code, incident_id=incident_id, created=res["created"])
                rec.update(merged=res["merged"], duplicate=res["duplicate"])
            self.reports.append(rec)
            ids = self.refs.setdefault(spec.ref, [])
            if incident_id is not None and incident_id not in ids:
                ids.append(incident_id)
            outcomes.append("new" if rec.get("created", True) else "merged")
        return f"{spec.count} {spec.kind} report(s) {spec.ref} via {spec.via}: {', '.join(outcomes)}"

    async def _publish(self, body: dict[str, Any]) -> None:
        if self._mqtt is None:
            raise StepFailed("an MQTT report needs a broker: run with --mqtt-url")
        await self._mqtt.publish("dfr/incidents", json.dumps(body), qos=1)

    async def _find_incident(self, source: str, external_id: str) -> str | None:
        """The incident an MQTT report went into, once the service has committed it."""
        deadline = await self.sim_now() + 60
        while await self.sim_now() < deadline:
            page = await self.ctl.get("/api/v1/incidents", limit=1000)
            for inc in page["incidents"]:
                if inc["source"] == source and inc["external_id"] == external_id:
                    return str(inc["id"])
            audit = await self.ctl.get("/api/v1/audit", limit=1000)
            for e in audit["entries"]:
                d = e.get("details") or {}
                if d.get("external_id") == external_id and d.get("source") == source and e["subject_id"]:
                    return str(e["subject_id"])
            await asyncio.sleep(0.1)
        raise StepFailed(f"MQTT report {external_id} never reached the store")

    async def _pilot(self, act: PilotAction) -> str:
        client = self.ctl.client()
        if act.action in ("approve", "decline", "recall"):
            assert act.incident is not None
            m = await self.wait_mission(act.incident)
            if act.action in ("approve", "decline"):  # the approval request may still be being written
                deadline = await self.sim_now() + 60
                while m["state"] != "pending_approval" and not await self.sim_now() > deadline:
                    if m["state"] in TERMINAL:
                        break
                    await asyncio.sleep(0.05)
                    m = await self.wait_mission(act.incident)
            r = await client.post(f"/api/v1/missions/{m['id']}/{act.action}", json={})
            what = f"{act.action} mission of {act.incident}"
        else:
            body: dict[str, Any] = {"command": act.action}
            for k in ("lat", "lon", "alt_m", "radius_m"):
                v = getattr(act, k)
                if v is not None:
                    body[k] = v
            r = await client.post(f"/api/v1/drones/{act.drone}/commands", json=body)
            if r.status_code == 404 and "not_found" not in r.text:
                raise StepFailed("the drone commands API (POST /api/v1/drones/{id}/commands) is not there")
            what = f"{act.action} {act.drone}"
        detail = f"{what}: HTTP {r.status_code}"
        if r.status_code != act.expect_status:
            raise StepFailed(f"{detail}, expected {act.expect_status}: {r.text[:300]}")
        return detail

    # --------------------------------------------------------------- waiting and sampling
    async def wait_drones_connected(self, timeout_wall: float = 60.0) -> None:
        assert self.ctl.svc is not None
        for drone_id in self.scenario.drone_ids:
            await self.ctl.svc.fleet.wait_ready(drone_id, timeout=timeout_wall)
            # and prepared on its dock, so that the first incident launches at once as in service
            await self.ctl.svc.dispatcher.preparation.wait_prepared(drone_id, timeout=timeout_wall)

    async def wait_done(self) -> None:
        """Until every posted incident has a mission and every mission has ended (or the timeout)."""
        deadline = self.scenario.spec.timeout_s
        while await self.sim_now() < deadline:
            ms = await self.missions()
            have = all(self.mission_of(ref, ms) is not None for ref in self.refs)
            if have and all(m["state"] in TERMINAL for m in ms):
                await self.sleep_sim(self.scenario.spec.settle_s)
                return
            await asyncio.sleep(0.1)
        states = {m["id"][:8]: m["state"] for m in await self.missions()}
        raise StepFailed(f"not finished within {deadline:g} simulated seconds (missions: {states})")

    async def sample(self) -> None:
        """Record positions and heights until cancelled; errors (e.g. during a restart) are skipped."""
        while True:
            try:
                t = round(await self.sim_now(), 1)
                if self.ctl.running:
                    for d in (await self.ctl.get("/api/v1/drones"))["drones"]:
                        tel = d.get("telemetry") or {}
                        if tel.get("lat") is not None and d.get("connected"):
                            self.samples.append(
                                {
                                    "t": t,
                                    "drone": d["id"],
                                    "src": "api",
                                    "lat": tel["lat"],
                                    "lon": tel["lon"],
                                    "alt": tel.get("rel_alt_m"),
                                    "in_air": tel.get("in_air"),
                                    "mode": tel.get("flight_mode"),
                                    "battery": tel.get("battery_pct"),
                                }
                            )
                truth = await self.backend.truth()
                for v in truth or []:
                    self.samples.append(
                        {
                            "t": t,
                            "drone": self.scenario.drone_ids[v["sysid"] - 1],
                            "src": "vehicle",
                            "lat": v["lat"],
                            "lon": v["lon"],
                            "alt": v["alt"],
                            "in_air": v["armed"],
                            "mode": v.get("mode"),
                            "battery": v.get("battery"),
                        }
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                self.sampler_errors += 1
            await asyncio.sleep(SAMPLE_PERIOD_S)

    async def collect(self) -> dict[str, Any]:
        """The record of the run, read through the public API."""
        missions = await self.missions()
        events = {}
        geo = {}
        for m in missions:
            events[m["id"]] = (await self.ctl.get(f"/api/v1/missions/{m['id']}/events"))["events"]
            geo[m["id"]] = await self.ctl.get(f"/api/v1/missions/{m['id']}/geojson")
        incidents = (await self.ctl.get("/api/v1/incidents", limit=1000))["incidents"]
        stored = {}
        for ids in self.refs.values():
            for incident_id in ids:
                r = await self.ctl.client().get(f"/api/v1/incidents/{incident_id}")
                stored[incident_id] = r.json() if r.status_code == 200 else None
        audit = (await self.ctl.get("/api/v1/audit", limit=1000))["entries"]
        drones = (await self.ctl.get("/api/v1/drones"))["drones"]
        for m in missions:
            m["t_launched"] = self.sim_of(m.get("launched_at"))
            m["t_on_scene"] = self.sim_of(m.get("on_scene_at"))
            m["t_landed"] = self.sim_of(m.get("landed_at"))
            for e in events[m["id"]]:
                e["t"] = self.sim_of(e["at"])
        return {
            "refs": self.refs,
            "reports": self.reports,
            "incidents": incidents,
            "stored_incidents": stored,
            "missions": missions,
            "events": events,
            "geojson": geo,
            "audit": audit,
            "drones": drones,
        }


# ---------------------------------------------------------------------------------------------------------
# Entry point


def make_backend(
    opts: RunOptions, scenario: Scenario, area_path: Path, speed: float, workdir: Path
) -> Backend:
    if opts.backend == "builtin":
        return BuiltinBackend(scenario, area_path, speed)
    if opts.backend == "px4":
        from dfr.sitl.px4 import Px4Backend

        return Px4Backend(scenario, speed, workdir, binary=opts.px4_bin, attach=opts.attach)
    raise ValueError(f"unknown backend {opts.backend!r} (builtin or px4)")


def _skip_reason(scenario: Scenario, opts: RunOptions) -> str | None:
    needs = set(scenario.spec.requires)
    if opts.backend == "px4":
        from dfr.sitl.px4 import px4_cannot_run

        reason = px4_cannot_run(scenario, attached=bool(opts.attach))
        if reason is not None:
            return reason
    elif opts.backend != "builtin" and "faults" in needs:
        return f"needs fault injection, which the {opts.backend} backend cannot do"
    uses_mqtt = any(s.incident is not None and s.incident.via == "mqtt" for s in scenario.spec.timeline)
    if (uses_mqtt or "mqtt" in needs) and not opts.mqtt_url:
        return "sends reports over MQTT: give a broker with --mqtt-url"
    return None


async def run_scenario(scenario: Scenario, opts: RunOptions | None = None) -> ScenarioResult:
    """Run one scenario; never raises for a failure of the scenario itself (the result says it)."""
    opts = opts or RunOptions()
    speed = opts.speed or scenario.spec.speed
    result = ScenarioResult(scenario.name, str(scenario.path), "error", speed=speed, backend=opts.backend)
    skip = _skip_reason(scenario, opts)
    if skip is not None:
        result.verdict, result.error = "skipped", skip
        return result
    wall0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"dfr-sitl-{scenario.name}-") as tmp:
        workdir = Path(tmp)
        try:
            await _run(scenario, opts, speed, workdir, result)
        except Exception as e:  # the run broke (not an expectation): the verdict says error, with why
            log.exception("scenario %s broke", scenario.name)
            result.verdict = "error"
            result.error = result.error or f"{type(e).__name__}: {e}"
    result.wall_s = round(time.monotonic() - wall0, 1)
    if opts.report_dir is not None:
        from dfr.sitl.report import write_report

        try:
            result.report_json, result.report_png = await asyncio.to_thread(
                write_report, scenario, result, opts.report_dir
            )
        except Exception as e:
            log.exception("report of %s failed", scenario.name)
            result.error = (result.error + "; " if result.error else "") + f"report not written: {e}"
    return result


async def _run(
    scenario: Scenario, opts: RunOptions, speed: float, workdir: Path, result: ScenarioResult
) -> None:
    area_path = derive_area(scenario, workdir)
    policy_path = write_policy(scenario, workdir)
    async with make_backend(opts, scenario, area_path, speed, workdir) as backend:
        over = scenario.spec.settings
        extra = {k: v for k, v in over.model_dump().items() if v is not None}
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{workdir / 'dfr.sqlite'}",
            area=str(area_path),
            policy=str(policy_path),
            time_scale=speed,
            mavlink_base_port=backend.base_port,
            mqtt_url=opts.mqtt_url,
            **extra,
        )
        ctl = Controller(settings)
        await ctl.start()
        run = Run(scenario, backend, ctl, speed)
        sampler: asyncio.Task[None] | None = None
        try:
            await run.wait_drones_connected()
            run.t0_sim = await backend.sim_time()
            run.t0_wall = _now()
            sampler = asyncio.create_task(run.sample(), name=f"sitl-{scenario.name}-sampler")
            async with contextlib.AsyncExitStack() as stack:
                if opts.mqtt_url:
                    run._mqtt = await stack.enter_async_context(_mqtt_client(opts.mqtt_url))
                wall0 = time.monotonic()
                try:
                    await run.play()
                    await run.wait_done()
                except StepFailed as e:
                    result.error = str(e)
                # times in the record are wall time x speed: a starved simulator makes them look slower
                sim_s, wall_s = await run.sim_now(), time.monotonic() - wall0
                run.effective_speed = round(sim_s / wall_s, 1) if wall_s > 0 else None
            if not ctl.running:  # failed during a restart: bring it back to read the record
                await ctl.start()
            result.record = await run.collect()
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            await ctl.stop()
    result.record.update(
        timeline=run.timeline,
        samples=run.samples,
        speed=speed,
        t0_wall=run.t0_wall.isoformat(),
        drone_ids=scenario.drone_ids,
        sampler_errors=run.sampler_errors,
        effective_speed=run.effective_speed,
    )
    result.checks = evaluate(scenario, result.record)
    result.time_to_scene_s, result.flight_time_s = summary_times(result.record)
    failed = result.error is not None or any(not c.ok for c in result.checks)
    result.verdict = "fail" if failed else "pass"


@contextlib.asynccontextmanager
async def _mqtt_client(url: str) -> Any:
    from urllib.parse import urlsplit

    import aiomqtt

    parts = urlsplit(url)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", port=parts.port or 1883) as client:
        yield client
