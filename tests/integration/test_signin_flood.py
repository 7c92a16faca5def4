"""Anonymous sign-in floods (issue 15, item 1 and 5): refused before they cost a hash, never in the way.

A flood of 40 concurrent sign-ins with made-up usernames, kept up while we measure, must not hash more
than one attempt at a time for the flooding address and must never run a password hash on asyncio's
default executor, which video rendering, encoding and evidence recording use (in-process tests, peer
addresses given by the transport); and, against the real service flying a recorded mission with the
flood coming from another loopback address, a pilot's sign-in takes under 1 s and the recording has no
gap over 1 s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import httpx
import pytest
from fastapi import FastAPI

from dfr.api import create_app
from dfr.api.ratelimit import RateLimiter
from dfr.auth import Role, passwords
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.integration.test_service_e2e import wait_mission
from tests.integration.test_video_whep import _audited, settings_for
from tests.support.api import AREA, ROOT, report
from tests.support.auth import PILOT, add_user, login_headers

API = "/api/v1"
ATTACKER = ("10.66.0.1", 40000)
PILOT_HOST = ("10.20.0.7", 40001)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/flood.sqlite"))
    async with application.router.lifespan_context(application):
        await add_user(application.state.store, *PILOT, Role.PILOT)
        yield application


def client_from(app: FastAPI, peer: tuple[str, int], **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://dfr.test", headers=headers, timeout=60)


class HashWatch:
    """Wraps `verify_password`: which threads hash, and an event once a flood hash is under way."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.started = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self._real = passwords.verify_password

    def __call__(self, password: str, stored: str) -> bool:
        self.threads.append(threading.current_thread().name)
        self.loop.call_soon_threadsafe(self.started.set)
        return self._real(password, stored)


async def flood(app: FastAPI, stop: asyncio.Event, codes: list[int]) -> None:
    """40 concurrent sign-ins with made-up usernames, each sent again as soon as it is answered."""
    async with client_from(app, ATTACKER) as c:

        async def one(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                body = {"username": f"nobody-{worker}-{n}", "password": "guess-guess"}
                codes.append((await c.post(f"{API}/auth/login", json=body)).status_code)

        await asyncio.gather(*(one(w) for w in range(40)))


async def test_a_sign_in_flood_never_hashes_on_the_default_executor(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While 40 concurrent bogus sign-ins keep coming, the default executor stays free and a pilot (from
    another address) still signs in; every hash ran on the sign-in pool's threads. (The timed version of
    this, against a flying, recording service, is the last test of this file.)"""
    watch = HashWatch()
    monkeypatch.setattr(passwords, "verify_password", watch)
    stop = asyncio.Event()
    codes: list[int] = []
    attack = asyncio.create_task(flood(app, stop, codes))
    try:
        await asyncio.wait_for(watch.started.wait(), 30)  # the flood is costing hashes now
        async with client_from(app, PILOT_HOST) as pilot:
            r = await pilot.post(f"{API}/auth/login", json={"username": PILOT[0], "password": PILOT[1]})
        t0 = time.monotonic()
        await asyncio.to_thread(lambda: None)  # what every frame rendered, encoded or recorded waits for
        executor_s = time.monotonic() - t0
    finally:
        stop.set()
        await attack
    assert r.status_code == 200, r.text
    assert executor_s < 1.0, f"the default executor was busy for {executor_s:.2f} s"
    # never on asyncio's default executor ("asyncio_N" threads), always on the sign-in pool
    assert watch.threads and all(t.startswith("dfr-password") for t in watch.threads), set(watch.threads)
    assert 429 in codes and set(codes) <= {401, 429, 503}, set(codes)


async def test_flood_from_one_address_costs_one_hash_at_a_time(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = HashWatch()
    monkeypatch.setattr(passwords, "verify_password", watch)
    async with client_from(app, ATTACKER) as c:
        answers = await asyncio.gather(
            *(
                c.post(f"{API}/auth/login", json={"username": f"spray-{i}", "password": "Winter2026!"})
                for i in range(40)
            )
        )
    codes = [a.status_code for a in answers]
    assert codes.count(401) <= 2 and len(watch.threads) == codes.count(401), codes  # hashed = answered 401
    assert codes.count(429) >= 38
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["retry-after"] and refused.json()["detail"]["code"] == "rate_limited"


async def test_spraying_usernames_from_one_address_meets_429(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One attempt at a time, 31 usernames: the address's allowance (30 a minute) ends the spray."""
    monkeypatch.setattr(passwords, "verify_password", lambda _password, _stored: False)  # cost: not tested
    app.state.rate_limiter = RateLimiter(clock=lambda: 0.0)  # no refill while the hashes take their time
    async with client_from(app, ATTACKER) as c:
        codes = [
            (
                await c.post(f"{API}/auth/login", json={"username": f"user{i}", "password": "Winter2026!"})
            ).status_code
            for i in range(31)
        ]
    assert codes[:30] == [401] * 30 and codes[30] == 429, codes


# ---------------------------------------------------------------------------------------------- in flight
SPEED = 10.0
NEAR_CIVIC = (32.6450, -117.0800)  # ~650 m from the civic dock
FLOOD_S = 15.0


def pts_gaps_s(path: Path) -> list[float]:
    """Gaps between consecutive frames of a recording (frames are timed by wall clock, ms time base)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None)
    return [b - a for a, b in itertools.pairwise(times)]


async def test_flood_during_a_flight_leaves_the_recording_whole_and_the_pilot_quick(tmp_path: Path) -> None:
    """The issue's probe: 40 concurrent bogus sign-ins for 15 s from another host while a mission flies
    and is recorded. The recording must have no gap over 1 s, a pilot's sign-in must take under 1 s."""
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = settings_for(tmp_path, sim.base_port).model_copy(update={"time_scale": SPEED})
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            await add_user(svc.store, *PILOT, Role.PILOT)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as pilot:
                pilot.headers.update(await login_headers(pilot, *PILOT))
                r = await pilot.post("/api/v1/incidents", json=report("flood-1", *NEAR_CIVIC))
                assert r.status_code == 201, r.text
                incident_id = r.json()["incident"]["id"]
                ms = await wait_mission(
                    pilot,
                    lambda ms: any(m["incident_id"] == incident_id and m["state"] == "en_route" for m in ms),
                    60,
                )
                mission = next(m for m in ms if m["incident_id"] == incident_id)

                attacker = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.support.flood", url, str(FLOOD_S), "127.0.0.2",
                    stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
                )  # fmt: skip
                assert attacker.stdout is not None
                try:
                    assert (await asyncio.wait_for(attacker.stdout.readline(), 30)).strip() == b"flooding"
                    signins = []
                    for _ in range(3):  # spread over the flood
                        t0 = time.monotonic()
                        async with httpx.AsyncClient(base_url=url, timeout=60) as again:
                            r = await again.post(
                                "/api/v1/auth/login", json={"username": PILOT[0], "password": PILOT[1]}
                            )
                        signins.append(time.monotonic() - t0)
                        assert r.status_code == 200, r.text
                        await asyncio.sleep(FLOOD_S / 4)  # pacing, not synchronisation
                    summary = json.loads(await asyncio.wait_for(attacker.stdout.readline(), FLOOD_S + 60))
                finally:
                    if attacker.returncode is None:
                        attacker.kill()
                    await attacker.wait()

                await wait_mission(
                    pilot,
                    lambda ms: any(m["id"] == mission["id"] and m["state"] == "landed" for m in ms),
                    300,
                )
                record = await _audited(svc.store, mission["id"], "evidence.recorded")
            gaps = pts_gaps_s(tmp_path / "evidence" / str(record["name"]))
    print(
        f"\nflood answers {summary}; pilot sign-ins {[f'{s:.3f}' for s in signins]} s; "
        f"recording {len(gaps) + 1} frames, largest gap {max(gaps):.3f} s"
    )
    assert sum(summary.values()) > 40 and "429" in summary, summary
    assert max(signins) < 1.0, signins
    assert max(gaps) < 1.0, sorted(gaps)[-5:]
