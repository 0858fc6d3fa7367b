"""A runtime whose dialogue and outbox run on the test's clock."""

from __future__ import annotations

from bot.config import Settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.helpers.clock import Clock


async def start_runtime(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock) -> Runtime:
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    runtime.dialogue.clock = clock
    runtime.dispatcher.clock = clock
    return runtime
