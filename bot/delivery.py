"""The delivery-side runtime: the database, the service rules, the outbox dispatcher and the
notifiers of every configured channel. Enough to run the periodic jobs and deliver every
channel's rows (``qibot jobs``, a delivery worker) without loading the NLU or the knowledge base,
which take most of a full start (and this module imports neither). :class:`bot.runtime.Runtime`
is this plus the dialogue engine.

Channels (:mod:`bot.channels.registry`) get an explicit :class:`~bot.channels.base.ChannelDeps`
from it, never the runtime itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels import registry
from bot.channels.base import Channel, ChannelDeps
from bot.config import Settings
from bot.events import EventBus
from bot.notify.dispatcher import OutboxDispatcher
from bot.notify.local import ConsoleNotifier, LogNotifier, TerminalNotifier
from bot.services.policy import ServicePolicy
from bot.storage import db
from bot.storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class DeliveryRuntime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    policy: ServicePolicy
    dispatcher: OutboxDispatcher
    events: EventBus
    # The channels whose notifiers this process registered; their lifetimes close with it.
    channels: list[Channel] = field(init=False, default_factory=list)
    _stack: AsyncExitStack = field(init=False, default_factory=AsyncExitStack, repr=False)

    @classmethod
    async def start(
        cls, settings: Settings, *, migrate: bool = True, channels: Sequence[Channel] | None = None
    ) -> DeliveryRuntime:
        """Migrate the schema, open the database and every configured channel's notifiers."""
        engine, sessions, policy, dispatcher = await open_core(settings, migrate)
        runtime = cls(settings, engine, sessions, policy, dispatcher, event_bus(settings))
        await runtime.open_channels(registry.configured(settings) if channels is None else channels)
        return runtime

    def now(self) -> datetime:
        return utcnow()

    def channel_deps(self, settings: Settings | None = None) -> ChannelDeps:
        """What a channel receives from this process (``settings``: another app's, in tests)."""
        return ChannelDeps(settings=settings or self.settings, sessions=self.sessions, policy=self.policy,
                           wake=self.dispatcher.wakeup.set, clock=self.now, events=self.events)

    async def open_channels(self, channels: Sequence[Channel], deps: ChannelDeps | None = None) -> None:
        """Enter each channel's lifetime (its clients) and register its notifiers; they close
        with the runtime, in reverse order."""
        deps = deps or self.channel_deps()
        for channel in channels:
            await self._stack.enter_async_context(channel.lifetime(deps))
            for notifier in channel.notifiers(deps):
                self.dispatcher.register(notifier)
            self.channels.append(channel)

    async def close(self) -> None:
        await self._stack.aclose()
        await self.events.close()
        await self.engine.dispose()


def event_bus(settings: Settings) -> EventBus:
    """Live events through Redis when the deployment has one (several workers), else in-process."""
    return EventBus(settings.redis_url, settings.redis_prefix)



async def open_core(
    settings: Settings, migrate: bool
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], ServicePolicy, OutboxDispatcher]:
    """The database, the service rules and the dispatcher with the local notifiers (staff
    inbox, log, terminal): what every runtime has."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if migrate:
        await db.upgrade(url)
    engine = db.create_engine(url, echo=settings.sql_echo)
    sessions = db.session_factory(engine)
    policy = ServicePolicy.from_settings(settings)
    year = datetime.now(policy.calendar.tz).year
    if not policy.calendar.covers(year):
        log.warning(
            "the working calendar lists no public holidays for %d: install them in %s "
            "(or QIBOT_CALENDAR_FILE); see README, 'Working calendar'",
            year,
            settings.calendar_file or settings.data_dir / "calendar.yaml",
        )
    notifiers = (ConsoleNotifier(), LogNotifier(), TerminalNotifier())
    dispatcher = OutboxDispatcher(sessions, {n.channel: n for n in notifiers},
                                  concurrency=settings.outbox_concurrency, timeout=settings.outbox_timeout)
    return engine, sessions, policy, dispatcher
