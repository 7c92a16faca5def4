"""Path traversal and injection through every id, path and query parameter of the running service.

Every parameter that names a thing (incident, mission, drone, video session, audit subject, panel or
video file) is tried with traversal sequences, encoded traversals, NUL bytes, SQL and shell
metacharacters and oversize values. Each must be refused or come back empty, never a 5xx, never a file
from outside the panel, and the database must be unchanged afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dfr.service import http_server, running_service
from dfr.settings import Settings
from tests.support.api import AREA, POLICY
from tests.support.auth import signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOSTILE = [
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "%00",
    "cv-1%00.mp4",
    "' OR '1'='1",
    "1; DROP TABLE incidents; --",
    '" OR 1=1 --',
    "$(rm -rf /)",
    "`id`",
    "<script>alert(1)</script>",
    "x" * 5000,
]

TEMPLATES = [
    ("GET", "/api/v1/incidents/{}"),
    ("GET", "/api/v1/missions/{}"),
    ("GET", "/api/v1/missions/{}/events"),
    ("GET", "/api/v1/missions/{}/geojson"),
    ("GET", "/api/v1/missions/{}/video"),
    ("GET", "/api/v1/missions/{}/video/meta"),
    ("POST", "/api/v1/missions/{}/approve"),
    ("POST", "/api/v1/missions/{}/recall"),
    ("GET", "/api/v1/drones/{}"),
    ("POST", "/api/v1/drones/{}/commands"),
    ("POST", "/api/v1/drones/{}/whep"),
    ("DELETE", "/api/v1/drones/cv-1/whep/{}"),
    ("GET", "/video/{}"),
    ("GET", "/panel/{}"),
    ("GET", "/video/{}.js"),
]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        mavlink_base_port=47100,  # no drones: ids are checked before anything is flown
        video_evidence_dir=str(tmp_path / "evidence"),
    )
    async with running_service(settings) as svc:
        async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as c:
            await signed_in(c, svc.store)
            yield c, svc


async def test_hostile_ids_are_refused_and_change_nothing(client: tuple[httpx.AsyncClient, Any]) -> None:
    c, svc = client
    before = await svc.store.row_counts()
    seen: dict[int, int] = {}
    for method, template in TEMPLATES:
        for value in HOSTILE:
            url = template.format(value)
            body = {"command": "hold"} if url.endswith("/commands") else {}
            if url.endswith("/whep"):
                r = await c.request(method, url, content=b"v=0", headers={"Content-Type": "application/sdp"})
            else:
                r = await c.request(method, url, json=body if method == "POST" else None)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, url, r.status_code, r.text[:200])
            assert r.status_code != 200 or (template.startswith("/video/{}") and "root:" not in r.text)
            assert "root:x:0:0" not in r.text and "[fonts]" not in r.text, (method, url)
    assert set(seen) <= {307, 400, 401, 403, 404, 405, 409, 413, 415, 422}, seen

    for value in HOSTILE:  # query parameters: filters that match nothing, never an error or a leak
        r = await c.get("/api/v1/audit", params={"subject_id": value[:64]})
        assert r.status_code in (200, 422) and (r.status_code == 422 or r.json()["entries"] == [])
        r = await c.get("/api/v1/incidents", params={"status": value[:64]})
        assert r.status_code == 422
    after = await svc.store.row_counts()
    audit_added = after["audit_log"] - before["audit_log"]
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
    assert audit_added == 0  # no command, approval or sign-in went through
