"""The system Chromium for the browser tests: where it is, how it is started, the two screens
every page is checked at, (re-exported from ``processes``) a free local port for the app, the
web-chat site on that port and what a visitor does on it. One place, so the web chat, console
and manager tests start the browser and drive the chat the same way (and skip or fail alike when it
is missing: failing under ``TEST_REQUIRE_SERVICES=1``, as in CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import cases, live
from bot.services.enterprises import enterprise_for
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Commissioner
from tests.helpers.clock import Clock
from tests.helpers.processes import free_port
from tests.helpers.services import skip_or_fail

__all__ = ["ANSWERED", "ARGS", "CHROMIUM", "SCREENS", "Site", "bot_count", "chromium", "expect", "free_port", "say",
           "screenshot"]

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


async def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path | None:
    """``name``.png of the page for a person to look at, in ``$QIBOT_SCREENSHOT_DIR``; none when it
    is not set (a run nobody looks at, as CI: a full-page PNG costs Chromium ~0.7 s of CPU)."""
    folder = os.environ.get("QIBOT_SCREENSHOT_DIR")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


class Site:
    """The service on a fixed port, so it can be stopped and started again like a restart."""

    def __init__(self, runtime: Runtime, settings: Settings, clock: Clock) -> None:
        self.runtime, self.settings, self.clock = runtime, settings, clock
        self.port = free_port()
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.server = TestServer(create_app(self.settings, self.runtime), host="127.0.0.1", port=self.port)
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def deliver(self) -> None:
        """One round of the outbox dispatcher (``qibot serve`` runs it in the background)."""
        await self.runtime.dispatcher.run_once()

    async def visitor(self, session: Any) -> ChannelIdentity:
        return (await session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == "webchat"))
                ).scalar_one()

    async def open_case(self, description: str = "加油机需要校准", domain: str = "metrology") -> str:
        """A case for the visitor, as if its intake had run (assigned by matching: wang)."""
        async with transaction(self.runtime.sessions) as session:
            identity = await self.visitor(session)
            enterprise = await enterprise_for(session, identity)
            case = await cases.open_case(session, enterprise=enterprise, identity=identity, domain=domain,
                                         description=description, mode="online", district="湖里区", now=self.clock())
            return case.number

    async def staff(self, handle: str, action: str, number: str, text: str = "") -> None:
        async with transaction(self.runtime.sessions) as session:
            case = await cases.require_case(session, number)
            actor = (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()
            if action == "accept":
                await cases.accept(session, case, actor, self.clock())
            elif action == "reply":
                await cases.reply(session, case, actor, text, self.clock())
            elif action == "resolve":
                await cases.resolve(session, case, actor, text, self.clock())
            elif action == "end_live":
                current = await live.active_for_case(session, case)
                assert current is not None
                await live.end(session, current, f"commissioner:{handle}", self.clock(), from_outside=True)


# --- what a web-chat visitor does -------------------------------------------------------------

async def bot_count(page: Any) -> int:
    return int(await page.locator("#log .msg--in").count())


async def say(page: Any, text: str) -> None:
    """Type and send; wait until the answer (or, with a person on, the acknowledgement) is shown."""
    before = [await bot_count(page), await page.locator("#log .msg--out .msg__meta", has_text="已送达").count()]
    await page.fill("#text", text)
    await page.keyboard.press("Enter")
    await page.wait_for_function(ANSWERED, arg=before)


ANSWERED = """([bots, acks]) => document.querySelectorAll('#log .msg--in').length > bots
  || [...document.querySelectorAll('#log .msg--out .msg__meta')]
       .filter(m => m.textContent.includes('已送达')).length > acks"""
