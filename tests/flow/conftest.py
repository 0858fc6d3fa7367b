"""Fixtures for the service flow: a runtime with the demo resource library and a movable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu

# A Wednesday, 10:00 in Xiamen: inside working hours, so commissioners are "on".
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def start_runtime(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock) -> Runtime:
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    runtime.dialogue.clock = clock
    runtime.dispatcher.clock = clock
    return runtime


@pytest.fixture
async def flow_runtime(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock
) -> AsyncIterator[Runtime]:
    runtime = await start_runtime(settings, nlu, knowledge, clock)
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    yield runtime
    await runtime.close()
