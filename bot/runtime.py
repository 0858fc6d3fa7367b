"""Everything a running qibot holds: database, NLU, knowledge base, dialogue engine.

Built once per process by ``qibot serve`` and ``qibot chat`` (and by tests), so both front ends
talk to the very same engine and database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.dialogue.engine import DialogueEngine, NluPort
from bot.notify.dispatcher import OutboxDispatcher
from bot.notify.local import ConsoleNotifier, LogNotifier, TerminalNotifier
from bot.services.knowledge import KnowledgeService
from bot.services.limits import Limiter
from bot.services.policy import ServicePolicy
from bot.storage import db
from handlers.registry import default_handlers
from handlers.texts import load_texts
from intents.classifier import Nlu

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nlu: NluPort
    knowledge: KnowledgeService
    dialogue: DialogueEngine
    policy: ServicePolicy
    dispatcher: OutboxDispatcher
    limits: Limiter | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        nlu: NluPort | None = None,
        knowledge: KnowledgeService | None = None,
    ) -> Runtime:
        """Migrate the schema, then load the NLU and the knowledge base in worker threads
        (both are CPU-bound and independent). Tests pass already-loaded ones to stay fast."""
        started = time.perf_counter()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.effective_database_url
        if migrate:
            await db.upgrade(url)
        if nlu is None or knowledge is None:
            loaded_nlu, loaded_knowledge = await asyncio.gather(
                asyncio.to_thread(Nlu.load, settings.cache_dir) if nlu is None else _ready(nlu),
                asyncio.to_thread(KnowledgeService, settings.kb_dir, settings.cache_dir)
                if knowledge is None
                else _ready(knowledge),
            )
            nlu, knowledge = loaded_nlu, loaded_knowledge
        engine = db.create_engine(url, echo=settings.sql_echo)
        sessions = db.session_factory(engine)
        policy = ServicePolicy.from_settings(settings)
        limits = Limiter(settings, sessions=sessions)
        if limits.backend == "redis" and not await limits.ping():
            log.warning("QIBOT_REDIS_URL: Redis does not answer; rates are counted per process until it does")
        year = datetime.now(policy.calendar.tz).year
        if not policy.calendar.covers(year):
            log.warning(
                "the working calendar lists no public holidays for %d: install them in %s "
                "(or QIBOT_CALENDAR_FILE); see README, 'Working calendar'",
                year,
                settings.calendar_file or settings.data_dir / "calendar.yaml",
            )
        dialogue = DialogueEngine(
            sessions,
            nlu,
            knowledge,
            default_handlers(),
            load_texts(),
            policy=policy,
            max_message_chars=settings.max_message_chars,
            limits=limits,
        )
        notifiers = (ConsoleNotifier(), LogNotifier(), TerminalNotifier())
        dispatcher = OutboxDispatcher(sessions, {n.channel: n for n in notifiers})
        dialogue.on_commit = dispatcher.wakeup.set
        log.info("runtime ready in %.2fs (%d knowledge entries)", time.perf_counter() - started, len(knowledge.kb))
        return cls(settings, engine, sessions, nlu, knowledge, dialogue, policy, dispatcher, limits)

    async def close(self) -> None:
        if self.limits is not None:
            await self.limits.close()  # stores the last refusal counters while the database is open
        await self.engine.dispose()


async def _ready(value: T) -> T:
    return value
