"""Fixtures for the service flow: a runtime on the test's clock with the demo resource library."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.clock import Clock
from tests.helpers.runtime import start_runtime


@pytest.fixture
async def flow_runtime(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock
) -> AsyncIterator[Runtime]:
    runtime = await start_runtime(settings, nlu, knowledge, clock)
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    yield runtime
    await runtime.close()
