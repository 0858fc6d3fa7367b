"""What the console's handlers share in one app: the channel dependencies (database, clock,
settings, limits, the outbox wake-up) and the in-process wake-up of live views."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiohttp import web

from bot.channels.base import ChannelDeps


class Waker:
    """Wakes this process's open event streams at once after a console action here; other
    workers' streams see the change at their next poll (the database is the source of truth)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()


@dataclass
class ConsoleContext:
    deps: ChannelDeps
    waker: Waker = field(default_factory=Waker)
    poll_seconds: float = 2.0  # how often an event stream re-reads the database


CONSOLE = web.AppKey("console", ConsoleContext)
