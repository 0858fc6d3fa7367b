"""Runtime start-up: the NLU and knowledge-base loads overlap the database migration, and a
database that cannot be opened still fails the start with its own error."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from bot import runtime as runtime_module
from bot.config import Settings
from bot.runtime import Runtime
from intents.classifier import Nlu


async def test_the_knowledge_base_loads_while_the_database_opens_and_its_failure_still_stops_the_start(
    settings: Settings, nlu: Nlu, monkeypatch: pytest.MonkeyPatch
) -> None:
    loading = threading.Event()

    class SlowKnowledge:
        def __init__(self, *args: Any) -> None:
            loading.set()

    async def open_core(*args: Any) -> Any:
        # the knowledge base is already loading while the schema would be migrated
        assert await asyncio.to_thread(loading.wait, 10)
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(runtime_module, "KnowledgeService", SlowKnowledge)
    monkeypatch.setattr(runtime_module, "open_core", open_core)
    with pytest.raises(ConnectionError, match="database unreachable"):
        await Runtime.start(settings, nlu=nlu)
