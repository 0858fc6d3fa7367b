"""Everything a running qibot holds: database, NLU, knowledge base, dialogue engine.

Built once per process by ``qibot serve`` and ``qibot chat`` (and by tests), so both front ends
talk to the very same engine and database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.dialogue.engine import DialogueEngine, NluPort
from bot.services.knowledge import KnowledgeService
from bot.storage import db
from handlers.registry import default_handlers
from handlers.texts import Texts
from intents.classifier import Nlu

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nlu: NluPort
    knowledge: KnowledgeService
    dialogue: DialogueEngine

    @classmethod
    async def start(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """Migrate the schema, then load the NLU and the knowledge base in worker threads
        (both are CPU-bound, and loading them concurrently halves the start-up wait)."""
        started = time.perf_counter()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.effective_database_url
        if migrate:
            await db.upgrade(url)
        nlu, knowledge = await asyncio.gather(
            asyncio.to_thread(Nlu.load, settings.cache_dir),
            asyncio.to_thread(KnowledgeService, settings.kb_dir),
        )
        engine = db.create_engine(url, echo=settings.sql_echo)
        sessions = db.session_factory(engine)
        dialogue = DialogueEngine(
            sessions,
            nlu,
            knowledge,
            default_handlers(),
            Texts.load(),
            max_message_chars=settings.max_message_chars,
        )
        log.info("runtime ready in %.2fs (%d knowledge entries)", time.perf_counter() - started, len(knowledge.kb))
        return cls(settings, engine, sessions, nlu, knowledge, dialogue)

    async def close(self) -> None:
        await self.engine.dispose()
