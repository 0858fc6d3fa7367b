"""The web chat as a :class:`~bot.channels.base.Channel` (the implementation is
:mod:`bot.channels.webchat`). Always on: it is the platform's website channel. It has no settings
section of its own (the page's settings are the operator's, in core settings). Its notifier
publishes on the visitor's event topic: with Redis (``QIBOT_REDIS_URL``) every process has it and
reaches the pages held by any worker; without, only the process holding the pages has it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelDeps
from bot.config import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.webchat import WebChatHub
    from bot.notify.base import Notifier


class WebChat(Channel):
    name = "webchat"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._hub: WebChatHub | None = None

    @classmethod
    def parse(cls, settings: Settings) -> None:
        return None

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return True

    def setup(self, app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
        from bot.channels import webchat

        self._hub = webchat.setup(app, deps, self.settings)

    def notifiers(self, deps: ChannelDeps) -> list[Notifier]:
        """In the process holding the pages' sockets, and in every process when events cross
        workers (Redis); elsewhere its rows are not even claimed (the dispatcher takes rows of
        the channels it has a notifier for), so a page on this process is never skipped."""
        if self._hub is None and (deps.events is None or not deps.events.cluster):
            return []
        from bot.channels.webchat import WebChatNotifier

        return [WebChatNotifier(self._hub, deps.events)]
