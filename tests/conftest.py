"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.mosquitto import Mosquitto, find_mosquitto


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
