"""The minimal viewer page in headless Chromium: a signed-in viewer sees a drone's live video.

Chromium is a real WHEP client here (its own WebRTC stack and VP8/H.264 decoder), so this checks the
page, `whep.js`, the cookie sign-in and the server's SDP answer against a browser, not against aiortc.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dfr.auth import Role
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.support.api import AREA, POLICY
from tests.support.auth import add_user

pytestmark = pytest.mark.integration
VIEWER = ("viewer9", "pw-viewer-9")


async def video_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        "() => { const v = document.getElementById('video');"
        " return {w: v.videoWidth, h: v.videoHeight, t: v.currentTime, paused: v.paused,"
        " status: document.getElementById('status').textContent}; }"
    )
    return state


async def until(page: Any, predicate: str, arg: Any = None, timeout_s: float = 20.0) -> None:
    """Poll `predicate` in the page (wait_for_function would need 'unsafe-eval', which the page's CSP
    rightly refuses)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await page.evaluate(predicate, arg):
                return
            await asyncio.sleep(0.1)


async def test_viewer_page_plays_live_video(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=10.0) as sim:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
            area=str(AREA),
            policy=str(POLICY),
            time_scale=10.0,
            mavlink_base_port=sim.base_port,
            video_width=640,
            video_height=480,
            video_fps=15.0,
            video_recording=False,
        )
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            await add_user(svc.store, *VIEWER, Role.VIEWER)
            async with http_server(svc.app) as url:
                context = await browser.new_context(base_url=url)
                page = await context.new_page()
                # not signed in: the page says so and no stream is opened
                await page.goto("/video/cv-1")
                await until(page, "() => document.getElementById('status').textContent.includes('sign in')")
                assert not svc.app.state.video.hub.sessions

                r = await page.request.post(
                    "/api/v1/auth/login", data={"username": VIEWER[0], "password": VIEWER[1]}
                )
                assert r.status == 200, await r.text()  # the session cookie is now in the context
                await page.goto("/video/cv-1")
                await until(
                    page,
                    "() => { const v = document.getElementById('video');"
                    " return v.videoWidth > 0 && v.currentTime > 0.5; }",
                )
                first = await video_state(page)
                assert (first["w"], first["h"]) == (640, 480) and not first["paused"], first
                await until(page, "t => document.getElementById('video').currentTime > t", first["t"] + 1.0)
                assert len(svc.app.state.video.hub.sessions) == 1
                await page.screenshot(path=str(artifacts_dir / "video-viewer.png"))

                # leaving the page ends the session (pagehide -> DELETE)
                await page.goto("about:blank")
                hub = svc.app.state.video.hub
                async with asyncio.timeout(10):
                    while True:
                        if not hub.sessions:
                            break
                        await asyncio.sleep(0.1)
                await context.close()
