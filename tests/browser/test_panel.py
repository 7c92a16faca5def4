"""The web panel in Debian's headless Chromium against the real service and the simulator process.

A pilot signs in through the form, sees a gunshot appear in the queue and on the map, approves the
launch, watches the drone icon move, sends a go-to by clicking the map, is refused a go-to into a no-fly
zone (with the server's reason, and nothing changes), holds with the H key and returns with R (after a
confirmation); the page and the service agree on what the drone does. A viewer sees the same picture
without any command control, and the API refuses the viewer's commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from shapely.geometry import LineString

from dfr.area import Area, load_area
from dfr.auth import Role
from dfr.dispatch.policy import Rule
from dfr.geo import distance_m
from dfr.panel import STATIC_DIR
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.support.api import AREA, POLICY, report
from tests.support.auth import add_user, login_headers

pytestmark = pytest.mark.integration

SPEED = 10.0  # slow enough that the pilot's clicks land while the drone is still in the air
SCENE = (32.6450, -117.0800)  # about 650 m north-east of the Civic Center dock (cv-1)
PILOT = ("pilot7", "pw-pilot-7")
VIEWER = ("viewer7", "pw-viewer-7")
UI_TIMEOUT_MS = 15_000

if not (STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").is_file():
    pytest.skip("the panel's map library is missing: run `make panel-assets`", allow_module_level=True)


@contextlib.asynccontextmanager
async def panel_service(tmp_path: Path) -> AsyncIterator[tuple[SimProcess, str, httpx.AsyncClient]]:
    """One simulated drone (cv-1), the service with gunshots needing approval, the HTTP server."""
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
            area=str(AREA),
            policy=str(POLICY),
            time_scale=SPEED,
            mavlink_base_port=sim.base_port,
        )
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            approval = Rule(name="gunshot-approval", kinds=["gunshot"], action="require_approval")
            svc.dispatcher.policy = svc.policy.model_copy(update={"rules": [approval]})
            await add_user(svc.store, *PILOT, Role.PILOT)
            await add_user(svc.store, *VIEWER, Role.VIEWER)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                client.headers.update(await login_headers(client, *PILOT))
                yield sim, url, client


async def sign_in(page: Any, url: str, username: str, password: str) -> None:
    from playwright.async_api import expect

    response = await page.goto(url)
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("user-name")).to_have_text(username)
    await expect(page.get_by_test_id("stream-status")).to_have_text("live", timeout=UI_TIMEOUT_MS)


async def drone(client: httpx.AsyncClient, drone_id: str = "cv-1") -> dict[str, Any]:
    r = await client.get(f"/api/v1/drones/{drone_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def until(
    client: httpx.AsyncClient, pred: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Poll the drone through the public API (there is no event to wait on from a test) until `pred`."""
    last: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await drone(client)
                if pred(last):
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"cv-1 never got there: {last}") from None


async def sim_status(sim: SimProcess) -> dict[str, Any]:
    """cv-1 as the simulator itself sees it (its control socket), not as the service reports it."""
    assert sim.control is not None
    status = await sim.control.status()
    return status["drones"][0]


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return (
        lat + north_m / 111_320.0,
        lon + east_m / (111_320.0 * math.cos(math.radians(lat))),
    )


def clear_goto(area: Area, lat: float, lon: float, dist_m: float) -> tuple[float, float]:
    """A point `dist_m` from the drone whose straight path stays in the area, 150 m clear of every zone."""
    for bearing in range(0, 360, 30):
        b = math.radians(bearing)
        tlat, tlon = offset(lat, lon, dist_m * math.cos(b), dist_m * math.sin(b))
        path = LineString([(lon, lat), (tlon, tlat)])
        margin = 150.0 / 111_320.0
        if area.operating_area.buffer(-margin).covers(path) and not any(
            z.geometry.buffer(margin).intersects(path) for z in area.zones
        ):
            return tlat, tlon
    raise AssertionError(f"no clear go-to point {dist_m} m from ({lat}, {lon})")


async def click_map(page: Any, lat: float, lon: float) -> None:
    """Click the map where (lat, lon) is drawn (the page exposes its Leaflet map as window.dfr.map)."""
    x, y = await page.evaluate(
        """([lat, lon]) => {
            const map = window.dfr.map;
            const p = map.latLngToContainerPoint([lat, lon]);
            const r = map.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        [lat, lon],
    )
    await page.mouse.click(x, y)


async def test_pilot_approves_flies_and_overrides_from_the_panel(
    tmp_path: Path, browser: Any, artifacts_dir: Path
) -> None:
    from playwright.async_api import expect

    area = load_area(AREA)
    async with panel_service(tmp_path) as (sim, url, client):
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, url, *PILOT)
        await expect(page.get_by_test_id("user-role")).to_have_text("pilot")
        await expect(page.get_by_test_id("override-panel")).to_be_visible()
        marker = page.get_by_test_id("drone-marker-cv-1")
        await expect(marker).to_be_visible(timeout=UI_TIMEOUT_MS)
        docked = await marker.bounding_box()
        assert docked is not None

        # a gunshot comes in over the API: in the queue and on the map at once, waiting for approval
        r = await client.post(
            "/api/v1/incidents", json=report("g-panel", *SCENE, address="276 Fourth Ave", rounds=3)
        )
        assert r.status_code == 201, r.text
        incident_id = r.json()["incident"]["id"]
        item = page.get_by_test_id(f"incident-{incident_id}")
        await expect(item).to_contain_text("GUNSHOT", timeout=UI_TIMEOUT_MS)
        await expect(item).to_contain_text("276 Fourth Ave")
        await expect(item.get_by_test_id("mission-state")).to_have_text("pending_approval")
        await expect(page.get_by_test_id(f"incident-marker-{incident_id}")).to_be_visible()

        # approve in the page: the launch is the pilot's, on the record
        await item.get_by_test_id("approve").click()
        await expect(item.get_by_test_id("mission-state")).not_to_have_text("pending_approval")
        await expect(page.get_by_test_id("override-drone")).to_contain_text("cv-1")
        missions = (await client.get("/api/v1/missions")).json()["missions"]
        mission = next(m for m in missions if m["incident_id"] == incident_id)
        assert mission["decision"] is not None and mission["state"] != "pending_approval", mission
        events = (await client.get(f"/api/v1/missions/{mission['id']}/events")).json()["events"]
        assert any(e["actor"] == PILOT[0] and e["to_state"] == "launching" for e in events), events

        # the drone icon moves on the map
        await page.wait_for_function(
            """([x, y]) => {
                const el = document.querySelector('[data-testid="drone-marker-cv-1"]');
                const r = el.getBoundingClientRect();
                return Math.hypot(r.x - x, r.y - y) > 15;
            }""",
            arg=[docked["x"], docked["y"]],
            timeout=UI_TIMEOUT_MS,
        )

        # the mission view plays the drone's live video (WHEP)
        await expect(page.get_by_test_id("video-status")).to_have_text("cv-1 live", timeout=UI_TIMEOUT_MS)
        await page.wait_for_function(
            "document.querySelector('[data-testid=video]').videoWidth > 0", timeout=UI_TIMEOUT_MS
        )

        # bad input from the page is refused with the server's reason and changes nothing: a go-to
        # into a no-fly zone (clicked on the map), an altitude out of limits
        result = page.get_by_test_id("command-result")
        helipad = next(z for z in area.zones if z.id == "sharp-cv-helipad")
        inside = helipad.geometry.centroid
        await page.get_by_test_id("cmd-goto").click()
        await expect(page.get_by_test_id("map-hint")).to_be_visible()
        await click_map(page, inside.y, inside.x)
        await expect(result).to_have_attribute("data-kind", "error", timeout=UI_TIMEOUT_MS)
        await expect(result).to_contain_text("no-fly zone")
        await expect(result).to_contain_text(helipad.name)
        await page.get_by_test_id("altitude-input").fill("500")
        await page.get_by_test_id("cmd-altitude").click()
        await expect(result).to_contain_text("altitude", timeout=UI_TIMEOUT_MS)
        await expect(result).to_have_attribute("data-kind", "error")
        assert not (await drone(client))["pilot_control"], "a refused command must not take the drone"
        await expect(page.get_by_test_id("tm-control")).to_have_text("automation")
        audit_rows = (await client.get("/api/v1/audit", params={"subject_id": mission["id"]})).json()
        assert not [a for a in audit_rows["entries"] if a["action"] == "drone.command"], audit_rows

        # click the map to send a go-to: the pilot has the drone, and it flies there
        now = (await drone(client))["telemetry"]
        target = clear_goto(area, now["lat"], now["lon"], 900.0)
        await page.get_by_test_id("cmd-goto").click()
        await click_map(page, *target)
        await expect(result).to_have_attribute("data-kind", "ok", timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_test_id("tm-control")).to_contain_text("PILOT")
        await expect(page.get_by_test_id("pilot-target")).to_be_visible()
        start = await until(client, lambda d: d["pilot_control"], 5)
        assert start["pilot_by"] == PILOT[0]
        d0 = distance_m(start["telemetry"]["lat"], start["telemetry"]["lon"], *target)
        await until(
            client,
            lambda d: distance_m(d["telemetry"]["lat"], d["telemetry"]["lon"], *target) < d0 - 150.0,
            30,
        )
        await page.screenshot(path=str(artifacts_dir / "panel-in-flight.png"))

        # H holds: the drone stops short of the go-to point, in the page, the service and the simulator
        await page.get_by_test_id("user-name").click()  # focus outside any input: keys are commands
        await page.keyboard.press("h")
        await expect(result).to_contain_text("hold", timeout=UI_TIMEOUT_MS)
        await expect(result).to_have_attribute("data-kind", "ok")
        await expect(page.get_by_test_id("tm-mode")).to_have_text("HOLD", timeout=UI_TIMEOUT_MS)
        held = await until(client, lambda d: d["telemetry"]["groundspeed"] < 0.5, 20)
        assert held["telemetry"]["flight_mode"] == "HOLD"
        await expect(page.get_by_test_id("tm-speed")).to_have_text(re.compile(r"^0\.\d m/s$"))
        assert distance_m(held["telemetry"]["lat"], held["telemetry"]["lon"], *target) > 50.0
        assert (await sim_status(sim))["mode"] == "LOITER"  # PX4's name for Hold

        # R returns, after a confirmation
        await page.keyboard.press("r")
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Return cv-1")
        await page.get_by_test_id("confirm-ok").click()
        await expect(page.get_by_test_id("tm-mode")).to_have_text("RETURN_TO_LAUNCH", timeout=UI_TIMEOUT_MS)
        await until(client, lambda d: d["telemetry"]["flight_mode"] == "RETURN_TO_LAUNCH", 10)
        assert (await sim_status(sim))["mode"] == "RTL"
        await expect(page.get_by_test_id("mv-state")).to_have_text("returning", timeout=UI_TIMEOUT_MS)

        # Resume automation hands the drone back: the mission brings it home
        await page.get_by_test_id("cmd-release").click()
        await expect(result).to_contain_text("resume automation", timeout=UI_TIMEOUT_MS)
        await expect(result).to_have_attribute("data-kind", "ok")
        await expect(page.get_by_test_id("tm-control")).to_have_text("automation", timeout=UI_TIMEOUT_MS)
        assert not (await drone(client))["pilot_control"]

        # the audit view names the pilot and the commands
        audit = page.get_by_test_id("audit-rows")
        await expect(audit).to_contain_text("drone.command", timeout=UI_TIMEOUT_MS)
        await expect(audit).to_contain_text("return")
        await expect(audit).to_contain_text(PILOT[0])
        assert not errors, errors
        await context.close()


async def test_viewer_sees_everything_and_commands_nothing(
    tmp_path: Path, browser: Any, artifacts_dir: Path
) -> None:
    from playwright.async_api import expect

    async with panel_service(tmp_path) as (_sim, url, client):
        r = await client.post("/api/v1/incidents", json=report("g-viewer", *SCENE))
        assert r.status_code == 201, r.text
        incident_id = r.json()["incident"]["id"]
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, url, *VIEWER)
        await expect(page.get_by_test_id("user-role")).to_have_text("viewer")
        item = page.get_by_test_id(f"incident-{incident_id}")
        await expect(item.get_by_test_id("mission-state")).to_have_text("pending_approval")
        await expect(page.get_by_test_id("drone-marker-cv-1")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_test_id("dock-cv-civic")).to_be_visible()
        await page.get_by_test_id("drone-select").select_option("cv-1")
        await expect(page.get_by_test_id("tm-control")).to_have_text("automation")

        # no command control is rendered at all, and the keys do nothing
        for testid in ("override-panel", "cmd-hold", "cmd-goto", "approve", "decline"):
            assert await page.get_by_test_id(testid).count() == 0, testid
        await page.keyboard.press("h")
        await page.screenshot(path=str(artifacts_dir / "panel-viewer.png"))

        # the server refuses the viewer's session whatever the page shows
        statuses = await page.evaluate(
            """async (missionPath) => {
                const post = (path, body) => fetch(path, {
                    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
                }).then(r => r.status);
                return [
                    await post('/api/v1/drones/cv-1/commands', {command: 'hold'}),
                    await post(missionPath, {}),
                ];
            }""",
            f"/api/v1/missions/{(await client.get('/api/v1/missions')).json()['missions'][0]['id']}/approve",
        )
        assert statuses == [403, 403]
        assert not (await drone(client))["pilot_control"]

        # signing out ends the session: the form is back and the API answers 401
        await page.get_by_test_id("sign-out").click()
        await expect(page.get_by_test_id("login-form")).to_be_visible()
        assert await page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)") == 401
        assert not errors, errors
        await context.close()
