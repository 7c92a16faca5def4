"""Headless Chromium for browser tests: Debian's `/usr/bin/chromium` driven by Playwright (Python).

Playwright's own browser download cannot be used here (closed network), so the tests launch the system
Chromium. The flags keep it off the network it would otherwise try to reach at every start (updates,
sync, field trials): on a closed RTCC network, and on CI, those lookups fail noisily and slow start-up.
Tests that need it skip, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--autoplay-policy=no-user-gesture-required",  # live video starts without a click
    "--use-fake-ui-for-media-stream",
]


def chromium_path() -> str | None:
    explicit = os.environ.get("DFR_CHROMIUM")
    if explicit:
        return explicit
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh headless Chromium (its own empty profile), closed after the test."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not installed (Debian package 'chromium'; make test installs it as root)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - playwright is a test dependency
        pytest.skip("playwright (Python) not installed")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where browser tests leave screenshots for people to look at (kept after the run)."""
    d = Path(os.environ.get("DFR_TEST_ARTIFACTS", "test-artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d
