"""Input that makes no sense for a DFR controller is refused with a reason (issue 15, item 7): places far
outside the operating area, text that would read differently on a screen than in the record, server paths
in answers, and a webhook error that says which source names exist."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dfr.api import create_app
from dfr.area import load_area
from dfr.auth import Role
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT
from dfr.ingest.webhook import sign
from dfr.settings import Settings
from dfr.store import Store
from tests.integration.test_service_e2e import AREA
from tests.support.auth import PILOT, VIEWER, add_user, login_headers

API = "/api/v1"
SECRET = "whsec-test-0123456789abcdef"


def report(external_id: str, **changes: Any) -> dict[str, Any]:
    body = dict(
        EXAMPLE_GUNSHOT_REPORT,
        source="console:rtcc-3",  # a pilot's own: "shotspotter" is the signed webhook's here
        external_id=external_id,
        reported_at=datetime.now(UTC).isoformat(),
    )
    body.update(changes)
    return body


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sense.sqlite",
        webhook_secrets={"shotspotter": SECRET},  # type: ignore[dict-item]
    )
    application = create_app(settings)
    application.state.area = load_area(AREA)  # as `dfr serve` sets it
    async with application.router.lifespan_context(application):
        await add_user(application.state.store, *PILOT, Role.PILOT)
        await add_user(application.state.store, *VIEWER, Role.VIEWER)
        yield application


@pytest.fixture
async def pilot(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dfr.test") as c:
        c.headers.update(await login_headers(c, *PILOT))
        yield c


async def test_a_report_far_outside_the_area_is_refused_with_the_distance(
    app: FastAPI, pilot: httpx.AsyncClient
) -> None:
    store: Store = app.state.store
    r = await pilot.post(f"{API}/incidents", json=report("far-1", location={"lat": 34.05, "lon": -118.25}))
    assert r.status_code == 422, r.text
    problem = r.json()["detail"]
    assert (problem["code"], problem["field"]) == ("outside_area", "location")
    assert "km outside the operating area" in problem["reason"]
    assert await store.count_incidents() == 0
    # just outside the boundary (within the 2 km margin): taken
    from dfr.domain.reach import distance_outside_m

    area = app.state.area.operating_area
    lon, lat = max(area.exterior.coords, key=lambda c: c[1])
    near = {"lat": lat + 0.005, "lon": lon}
    assert 0 < distance_outside_m(area, near["lat"], near["lon"]) < 2000
    r = await pilot.post(f"{API}/incidents", json=report("near-1", location=near))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("note", "shots fired \u202enoitcurtsni\u202c by the school"),  # right-to-left override
        ("note", "see \u2066attached\u2069"),  # isolates
        ("address", "300 Third Ave\u202d"),
        ("external_id", "SS-1\x85"),  # C1 control (NEL)
        ("address", "300 Third Ave\x1b[2J"),  # terminal escape
    ],
)
async def test_control_and_bidi_characters_are_refused(
    app: FastAPI, pilot: httpx.AsyncClient, field: str, value: str
) -> None:
    r = await pilot.post(f"{API}/incidents", json=report("bidi-1") | {field: value})
    assert r.status_code == 422, r.text
    problem = r.json()["detail"]
    assert problem["field"] == field and "control characters" in problem["reason"], problem
    assert await app.state.store.count_incidents() == 0


async def test_a_note_may_still_have_lines_and_any_script(pilot: httpx.AsyncClient) -> None:
    note = "Caller: شاهد عيان\nsecond line\twith a tab; 目撃者"
    r = await pilot.post(f"{API}/incidents", json=report("text-ok", note=note))
    assert r.status_code == 201 and r.json()["incident"]["note"] == note, r.text


async def test_audit_answers_show_no_server_paths(app: FastAPI) -> None:
    store: Store = app.state.store
    mission = "6f1c1f0e-3a55-4d61-9a4a-1d0f3a7e0a01"
    recorded = {"path": "/srv/dfr/var/evidence/m-1.mp4", "name": "m-1.mp4", "sha256": "ab" * 32, "bytes": 10}
    await store.append_audit("video", "evidence.recorded", "mission", mission, recorded)
    await store.append_audit(
        "video", "evidence.failed", "mission", mission,
        {"reason": "[Errno 28] No space left on device: '/srv/dfr/var/evidence/m-1.mp4'"},
    )  # fmt: skip
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dfr.test"
    ) as viewer:
        viewer.headers.update(await login_headers(viewer, *VIEWER))
        r = await viewer.get(f"{API}/audit", params={"subject_id": mission})
    assert r.status_code == 200
    assert "/srv/" not in r.text, r.text
    recorded, failed = r.json()["entries"]
    assert recorded["details"]["path"] == "m-1.mp4"
    assert failed["details"]["reason"] == "[Errno 28] No space left on device: 'm-1.mp4'"
    # the record itself is unchanged (it is hash-chained): only the answer hides the directories
    assert (await store.audit(mission))[0].details["path"] == "/srv/dfr/var/evidence/m-1.mp4"


async def test_the_webhook_does_not_tell_which_sources_exist(app: FastAPI) -> None:
    body = json.dumps(report("wh-1", source="shotspotter")).encode()
    t = int(time.time())
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dfr.test") as c:
        for source, secret in (
            ("shotspotter", "a-wrong-secret-value"),
            ("no-such-source", "a-wrong-secret-value"),
        ):
            headers = {
                "Content-Type": "application/json",
                "X-DFR-Source": source,
                "X-DFR-Signature": sign(secret, body, t),
            }
            answers.append(await c.post(f"{API}/webhooks/incidents", content=body, headers=headers))
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json(), [a.text for a in answers]  # known or not: the same answer
