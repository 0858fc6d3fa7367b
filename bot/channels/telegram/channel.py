"""Telegram as a :class:`~bot.channels.base.Channel`: on when ``QIBOT_TELEGRAM_TOKEN`` is set;
the webhook (or polling) and the command handlers in the serving process; notifications from
any delivering process, through a sending-only bot."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from bot.channels.base import Channel, ChannelDeps
from bot.channels.telegram.settings import TelegramSettings
from bot.config import Settings

if TYPE_CHECKING:
    from aiohttp import web
    from telegram.ext import ExtBot

    from bot.notify.base import Notifier


class Telegram(Channel):
    name = "telegram"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = self.parse(settings)
        self._bot: ExtBot[Any] | None = None

    @classmethod
    def parse(cls, settings: Settings) -> TelegramSettings:
        return TelegramSettings.parse(settings)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return bool(settings.telegram_token)

    def setup(self, app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
        from bot.channels.telegram.web import setup

        setup(app, deps, self.config, self.settings.public_url)

    @contextlib.asynccontextmanager
    async def lifetime(self, deps: ChannelDeps) -> AsyncIterator[None]:
        from bot.channels.telegram.notifier import build_bot
        from bot.channels.telegram.tokenlog import quiet_token_logging

        quiet_token_logging(self.config.token)  # httpx logs request URLs, and they carry the token
        self._bot = build_bot(self.config)
        try:
            yield
        finally:
            bot, self._bot = self._bot, None
            await bot.shutdown()  # a no-op if it never sent anything

    def notifiers(self, deps: ChannelDeps) -> list[Notifier]:
        from bot.channels.telegram.notifier import TelegramNotifier

        assert self._bot is not None, "notifiers() is called within lifetime()"
        return [TelegramNotifier(self._bot, share_personal_data=self.config.share_personal_data,
                                 public_url=deps.settings.public_url)]
