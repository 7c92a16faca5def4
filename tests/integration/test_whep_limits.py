"""Video sessions under a hostile account (issue 15, item 4): nobody takes every slot, nobody ends
another's session.

The WHEP route and the real `VideoHub` with real aiortc offers, on a plain test pattern instead of a drone
camera (what is sent does not matter here, who gets a session does). Limits: 6 sessions, 2 kept for pilots
and admins, 2 per account.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack
from fastapi import FastAPI

from dfr.api import create_app
from dfr.api.video_routes import router as video_router
from dfr.auth import Role
from dfr.settings import Settings
from dfr.video.hub import VideoHub
from tests.support.auth import add_user, login_headers

ACCOUNTS = {
    "viewer1": Role.VIEWER,
    "viewer2": Role.VIEWER,
    "viewer3": Role.VIEWER,
    "pilot1": Role.PILOT,
    "admin1": Role.ADMIN,
}


@contextlib.asynccontextmanager
async def video_api(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, dict[str, httpx.AsyncClient]]]:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/whep.sqlite"))
    app.include_router(video_router)
    hub = VideoHub(
        {"cv-1"}, lambda _drone: VideoStreamTrack(), max_sessions=6, max_per_account=2, commander_slots=2
    )
    app.state.video = SimpleNamespace(hub=hub)
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        clients = {}
        for name, role in ACCOUNTS.items():
            await add_user(app.state.store, name, f"pw-{name}-x", role)
            c = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://dfr.test", timeout=30
                )
            )
            c.headers.update(await login_headers(c, name, f"pw-{name}-x"))
            clients[name] = c
        try:
            yield app, clients
        finally:
            await hub.close()


async def offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def watch(client: httpx.AsyncClient, sdp: str) -> httpx.Response:
    return await client.post(
        "/api/v1/drones/cv-1/whep", content=sdp, headers={"Content-Type": "application/sdp"}
    )


async def test_a_viewer_cannot_exhaust_or_end_others_video_sessions(tmp_path: Path) -> None:
    sdp = await offer()
    async with video_api(tmp_path) as (app, c):
        hub: VideoHub = app.state.video.hub
        # a burst of offers from one account: its share, not every slot
        burst = await asyncio.gather(*(watch(c["viewer1"], sdp) for _ in range(8)))
        codes = sorted(r.status_code for r in burst)
        assert codes == [201] * 2 + [429] * 6, codes
        assert (
            "at most 2 per account"
            in next(r for r in burst if r.status_code == 429).json()["detail"]["reason"]
        )
        mine = [r.headers["location"] for r in burst if r.status_code == 201]

        assert [(await watch(c["viewer2"], sdp)).status_code for _ in range(2)] == [201, 201]
        # 4 of 6 taken: the last 2 are the pilots' and admins'
        refused = await watch(c["viewer3"], sdp)
        assert (
            refused.status_code == 503 and "kept for pilots and admins" in refused.json()["detail"]["reason"]
        )
        assert (await watch(c["pilot1"], sdp)).status_code == 201
        assert len(hub.sessions) == 5

        # ending sessions: one's own only; an admin any
        r = await c["viewer2"].delete(mine[0])
        assert r.status_code == 403 and r.json()["detail"]["code"] == "forbidden", r.text
        assert len(hub.sessions) == 5
        assert (await c["viewer1"].delete(mine[0])).status_code == 204
        assert (await c["admin1"].delete(mine[1])).status_code == 204
        assert len(hub.sessions) == 3
        assert (await watch(c["viewer1"], sdp)).status_code == 201  # its slots are free again
