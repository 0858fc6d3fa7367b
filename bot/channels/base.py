"""The channel contract: what a channel provides to the service and what it receives from it.

A channel (web chat, WeChat, Telegram, WeCom...) is one class deriving from :class:`Channel`,
listed once in :mod:`bot.channels.registry`. It provides:

* ``name`` and its own settings section: :meth:`Channel.parse` reads its raw ``QIBOT_<NAME>_*``
  values from the core :class:`~bot.config.Settings` and validates them with the channel's own
  rules, raising :class:`~bot.config.ConfigError` naming the setting. Every channel's section is
  checked at start, on or off, so a half-filled section fails loudly;
* :meth:`Channel.enabled`: whether the deployment configured it;
* :meth:`Channel.setup`: its routes (and their receiving side: a webhook's client, a polling loop),
  mounted only in the serving process (``qibot serve``);
* :meth:`Channel.lifetime`: the clients it sends with (HTTP sessions, the Telegram bot), opened
  and closed by whichever process delivers;
* :meth:`Channel.notifiers`: the outbox notifiers of its rows, built from :class:`ChannelDeps`
  alone, without the web app, the NLU or the knowledge base, so a delivery-only process
  (``qibot jobs``, ``qibot worker``) delivers every configured channel. A notifier that reaches
  live connections (the web chat's open sockets) publishes on the event bus (:mod:`bot.events`):
  with Redis every process has it; without, only the one where :meth:`Channel.setup` ran.

It receives one explicit, typed :class:`ChannelDeps` instead of the whole runtime. This module is
imported by every ``qibot`` command (settings are checked at start), so it and the channel classes
import nothing heavy at module level: a channel imports its implementation inside its methods.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bot.config import Settings

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.dialogue.engine import DialogueEngine
    from bot.events import EventBus
    from bot.notify.base import Notifier
    from bot.services.kb_edits import KnowledgeSync
    from bot.services.limits import Limiter
    from bot.services.policy import ServicePolicy


@dataclass(frozen=True)
class ChannelDeps:
    """Everything a channel may use, and nothing more. ``dialogue`` is None in a delivery-only
    process (``qibot jobs``): a channel needs it only to receive messages (its routes)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    policy: ServicePolicy  # the working calendar (its zone is the staff's clock) and service rules
    wake: Callable[[], None]  # wakes the outbox dispatcher after writing rows, so they go out at once
    clock: Callable[[], datetime]  # now, in UTC; tests move it
    dialogue: DialogueEngine | None = None
    limits: Limiter | None = None  # abuse limits of this process; None where nobody chats
    events: EventBus | None = None  # live events to pages on any worker (bot.events)
    knowledge_sync: KnowledgeSync | None = None  # the knowledge edits of this worker (console publishes)

    def require_dialogue(self) -> DialogueEngine:
        """The dialogue engine, for routes: they are mounted only where there is one."""
        if self.dialogue is None:
            raise RuntimeError("this process has no dialogue engine (a delivery-only runtime)")
        return self.dialogue


class Channel(ABC):
    """One channel in one process. Built from the settings (parsed by :meth:`parse`); the same
    instance serves its routes and builds its notifiers, so it may keep what both share."""

    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def parse(cls, settings: Settings) -> Any:
        """This channel's settings section, validated (:class:`~bot.config.ConfigError` names the
        bad ``QIBOT_*`` setting and never echoes a secret). Checked whether or not it is on."""

    @classmethod
    @abstractmethod
    def enabled(cls, settings: Settings) -> bool:
        """Whether the deployment turned this channel on (its key setting is given)."""

    def setup(self, app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:  # noqa: B027 - optional
        """Mount the routes. ``app[deps]`` holds the dependencies once the app has started (routes
        must be added before that, so they read it at startup or per request)."""

    @contextlib.asynccontextmanager
    async def lifetime(self, deps: ChannelDeps) -> AsyncIterator[None]:
        """Open the clients the notifiers send with; close them on exit. Entered before
        :meth:`notifiers` is called, by every process that delivers."""
        yield

    def notifiers(self, deps: ChannelDeps) -> list[Notifier]:
        """The outbox notifiers for this channel's rows in this process (within :meth:`lifetime`)."""
        return []
