"""Everything a running qibot holds: database, NLU, knowledge base, dialogue engine, and the
notifiers of every configured channel.

Built once per process by ``qibot serve`` and ``qibot chat`` (and by tests), so both front ends
talk to the very same engine and database. It is the :class:`~bot.delivery.DeliveryRuntime`
(what ``qibot jobs`` uses on its own) plus the dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.channels import registry
from bot.channels.base import Channel, ChannelDeps
from bot.config import Settings
from bot.delivery import DeliveryRuntime, event_bus, open_core
from bot.dialogue.engine import DialogueEngine, NluPort
from bot.services.kb_edits import KnowledgeSync
from bot.services.knowledge import KnowledgeService
from bot.services.limits import Limiter
from handlers.registry import default_handlers
from handlers.texts import load_texts
from intents.classifier import Nlu

log = logging.getLogger(__name__)
T = TypeVar("T")


_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """One BLAS thread in a serving process. A turn's matrix products (NLU scores, knowledge
    ranking, a sentence embedding) are small; OpenBLAS would still wake a thread per core for
    each and let them spin waiting for work, which on a 2-core machine cost more CPU than the
    turn itself: bench/engine.py --compare measured 18.6 ms of process CPU per turn with the
    default threads and 7.0 ms with one, in one run, for the same answers (docs/operations.md). An operator who
    sets OPENBLAS_NUM_THREADS (or OMP_/MKL_) keeps that choice."""
    if any(os.environ.get(name) for name in _BLAS_ENV):
        return
    from threadpoolctl import threadpool_limits

    # A BLAS library loaded later (scipy bundles its own OpenBLAS) reads the variable when it
    # loads; those loaded already are told through threadpoolctl.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    threadpool_limits(limits=1, user_api="blas")


@dataclass
class Runtime(DeliveryRuntime):
    nlu: NluPort
    knowledge: KnowledgeService
    dialogue: DialogueEngine
    limits: Limiter | None = None
    kb_sync: KnowledgeSync | None = None  # keeps the knowledge base at the console's latest edits

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        nlu: NluPort | None = None,
        knowledge: KnowledgeService | None = None,
        channels: Sequence[Channel] | None = None,
    ) -> Runtime:
        """Load the NLU and the knowledge base in worker threads (independent of each other and
        of the database) while the schema is migrated. Tests pass already-loaded ones to stay fast.
        ``channels``: the instances whose notifiers to register (the app passes the ones it
        mounted); by default every configured one."""
        started = time.perf_counter()
        limit_blas_threads()
        if channels is None:
            channels = registry.configured(settings)  # a bad channel setting fails before the long load
        # The loads start before the schema migration, which they do not need, so they overlap it.
        loading = asyncio.gather(
            asyncio.to_thread(Nlu.load, settings.cache_dir) if nlu is None else _ready(nlu),
            asyncio.to_thread(KnowledgeService, settings.kb_dir, settings.cache_dir)
            if knowledge is None
            else _ready(knowledge),
        )
        try:
            engine, sessions, policy, dispatcher = await open_core(settings, migrate)
        except BaseException:
            loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
            raise
        nlu, knowledge = await loading
        limits = Limiter(settings, sessions=sessions)
        if limits.backend == "redis" and not await limits.ping():
            log.warning("QIBOT_REDIS_URL: Redis does not answer; rates are counted per process until it does")
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
        dialogue.on_commit = dispatcher.wakeup.set
        runtime = cls(settings, engine, sessions, policy, dispatcher, event_bus(settings), nlu, knowledge, dialogue,
                      limits)
        # The console's knowledge edits are applied before anyone is answered, then followed.
        runtime.kb_sync = KnowledgeSync(knowledge, sessions, runtime.events, settings.kb_poll_seconds)
        await runtime.kb_sync.start()
        await runtime.open_channels(channels)
        log.info("runtime ready in %.2fs (%d knowledge entries)", time.perf_counter() - started, len(knowledge.kb))
        return runtime

    def now(self) -> datetime:
        return self.dialogue.clock()  # the engine's clock, which tests move

    def channel_deps(self, settings: Settings | None = None) -> ChannelDeps:
        return ChannelDeps(settings=settings or self.settings, sessions=self.sessions, policy=self.policy,
                           wake=self.dispatcher.wakeup.set, clock=self.now, dialogue=self.dialogue,
                           limits=self.limits, events=self.events, knowledge_sync=self.kb_sync)

    async def close(self) -> None:
        if self.kb_sync is not None:
            await self.kb_sync.close()
        if self.limits is not None:
            await self.limits.close()  # stores the last refusal counters while the database is open
        await super().close()


async def _ready(value: T) -> T:
    return value
