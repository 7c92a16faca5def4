"""Fixtures and settings shared by every test directory.

Property tests (hypothesis, and schemathesis through it) are *derandomized* by default: each test draws
the same examples on every run and every machine, so `make test` passes or fails the same way twice
(a fresh clone once failed on an example no later run drew). `make explore` runs them with fresh random
examples and more of them (``--hypothesis-profile=explore``) to look for new failures; pin what it finds
as an explicit ``@example``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.integration.mosquitto import Mosquitto, find_mosquitto

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile("deterministic")  # `--hypothesis-profile=explore` (make explore) overrides it


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A throw-away broker on a free loopback port (skips, saying why, without Debian's mosquitto)."""
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto broker not installed (Debian package 'mosquitto'; scripts/system-deps.sh)")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    with Mosquitto(binary, workdir) as broker:
        yield broker
