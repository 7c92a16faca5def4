"""The panel shows the controller's own health (issue 12): a banner naming the supervised part that is
down, from /api/v1/healthz, hidden while every part runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dfr.auth import Role
from dfr.service import http_server, running_service
from dfr.settings import Settings
from dfr.supervision import Backoff, Supervisor
from sim.harness import free_udp_base_port
from tests.browser.test_panel import UI_TIMEOUT_MS, sign_in
from tests.support.api import AREA, POLICY
from tests.support.auth import add_user

pytestmark = pytest.mark.integration
VIEWER = ("viewer9", "pw-viewer-9")


async def test_a_part_that_is_down_shows_in_a_banner(tmp_path: Path, browser: Any) -> None:
    from playwright.async_api import expect

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        mavlink_base_port=free_udp_base_port(4),  # no drone comes up: not needed here
    )
    async with running_service(settings) as svc:
        await add_user(svc.store, *VIEWER, Role.VIEWER)
        async with http_server(svc.app) as url:
            page = await browser.new_page()
            await sign_in(page, url, *VIEWER)
            banner = page.get_by_test_id("health-banner")
            await expect(banner).to_be_hidden()

            supervisor: Supervisor = svc.app.state.supervisor
            supervisor.backoff = Backoff(initial_s=3600)  # stays down for the rest of the test

            async def broken() -> None:
                raise RuntimeError("camera bridge lost")

            supervisor.spawn("camera-bridge", broken)
            await asyncio.wait_for(supervisor.wait_until(lambda s: bool(s.down())), 5)
            await expect(banner).to_be_visible(timeout=UI_TIMEOUT_MS)
            await expect(banner).to_contain_text("camera-bridge restarting")
            await expect(banner).to_contain_text("camera bridge lost")
            await supervisor.stop_part("camera-bridge")
            await expect(banner).to_be_hidden(timeout=UI_TIMEOUT_MS)
            await page.close()
