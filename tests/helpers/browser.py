"""The system Chromium for the browser tests: where it is, how it is started, the two screens
every page is checked at, and (re-exported from ``processes``) a free local port for the app. One place, so the web
chat, console and manager tests start the browser the same way (and skip or fail alike when it
is missing: failing under ``TEST_REQUIRE_SERVICES=1``, as in CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.helpers.processes import free_port
from tests.helpers.services import skip_or_fail

__all__ = ["ARGS", "CHROMIUM", "SCREENS", "chromium", "free_port"]

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENS: dict[str, dict[str, Any]] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless system Chromium driven by playwright (never a downloaded browser)."""
    if not shutil.which(CHROMIUM):
        skip_or_fail(f"Chromium not found at {CHROMIUM}")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
