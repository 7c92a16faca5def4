"""Hostile input against the whole HTTP API, generated from its own OpenAPI document (schemathesis).

Every operation is called with schema-conforming and malformed requests, signed in as an admin (so the
role check does not hide the handlers). It must never answer 5xx, and every answer must match what the
OpenAPI document promises (status codes, content types, response schemas). One check is left out:
"schema-valid data is accepted", because a report can be valid JSON for the schema and still be refused by
a rule no schema states (reported three days ago, too stale to fly to) — refusing it is the point. And
413 (body too large) counts as a refusal of schema-violating data: a negative case may be a body over the
size limit, and refusing it before parsing is right (schemathesis' default list lacks 413).

Examples are derandomized (tests/conftest.py): the same requests every run; `make explore` draws new ones.
The service runs for real (store, dispatcher, fleet with no drone connected) behind uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dfr.auth import Role
from dfr.service import http_server, running_service
from dfr.settings import Settings
from tests.support.api import AREA, POLICY
from tests.support.auth import ADMIN, add_user

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# Endpoints that cannot be fuzzed as request/response: the event stream never ends, and signing out
# would end the session the rest of the run uses.
EXCLUDED = ("/api/v1/stream", "/api/v1/auth/logout")


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    settings_ = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        mavlink_base_port=47000,
        login_rate_per_min=0,
    )
    ready = threading.Event()
    stop: dict[str, Any] = {}
    info: dict[str, Any] = {}

    async def main() -> None:
        async with running_service(settings_) as svc:
            await add_user(svc.store, *ADMIN, Role.ADMIN)
            async with http_server(svc.app) as url:
                import httpx

                async with httpx.AsyncClient(base_url=url) as c:
                    r = await c.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
                    info.update(url=url, token=r.json()["token"])
                stop["event"] = asyncio.Event()
                stop["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop["event"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="schema-service", daemon=True)
    thread.start()
    assert ready.wait(60), "the service did not start"
    yield info
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(30)


REFUSALS = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
"""Answers that count as refusing schema-violating data."""
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if op.path not in EXCLUDED]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_every_answer_matches_the_schema(live_api: dict[str, Any], mode: GenerationMode) -> None:
    """Each operation gets its own Hypothesis run; failures are collected so one run shows them all."""
    headers = {"Authorization": f"Bearer {live_api['token']}"}
    failures: list[str] = []
    ops = operations(live_api["url"])
    assert len(ops) >= 12, [op.label for op in ops]  # the document lists the whole API

    for op in ops:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Unsatisfiable:
            continue  # e.g. no negative request exists for an operation that takes no input at all
        except (Exception, BaseExceptionGroup) as e:  # a failed check: go on, report every one at the end
            failures.append(f"{op.label}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
