"""The WeChat Official Account as a :class:`~bot.channels.base.Channel`: on when
``QIBOT_WECHAT_TOKEN`` is set; ``/wechat`` in the serving process; customer-service pushes from
any delivering process (or, without an AppID, every message held for the user's next one)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelDeps
from bot.channels.wechat.settings import WeChatSettings
from bot.config import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.wechat.notifier import WeChatNotifier
    from bot.notify.base import Notifier

log = logging.getLogger("bot.channels.wechat")


class WeChat(Channel):
    name = "wechat"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = self.parse(settings)
        self._notifier: WeChatNotifier | None = None

    @classmethod
    def parse(cls, settings: Settings) -> WeChatSettings:
        return WeChatSettings.parse(settings)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return bool(settings.wechat_token)

    def setup(self, app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
        from bot.channels.wechat.inbound import setup

        setup(app, deps, self.config)

    @contextlib.asynccontextmanager
    async def lifetime(self, deps: ChannelDeps) -> AsyncIterator[None]:
        """The API client (one HTTP session; the access token is shared by all workers through
        the database) lives as long as the process delivers."""
        if self.config.can_push:
            from bot.channels.wechat.notifier import WeChatNotifier

            self._notifier = WeChatNotifier.from_config(self.config, deps.sessions)
        try:
            yield
        finally:
            notifier, self._notifier = self._notifier, None
            if notifier is not None:
                await notifier.close()

    def notifiers(self, deps: ChannelDeps) -> list[Notifier]:
        if self._notifier is not None:
            return [self._notifier]
        from bot.channels.wechat.notifier import HoldingNotifier

        log.warning("wechat: no QIBOT_WECHAT_APP_ID, so no customer-service pushes: late answers wait for "
                    "the user's next message")
        # Marked held at once, so the user's next message hands them over (left pending they
        # would wait for a notifier that never comes).
        return [HoldingNotifier(deps.sessions)]
