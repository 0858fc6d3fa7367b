"""The web chat as a :class:`~bot.channels.base.Channel` (the implementation is
:mod:`bot.channels.webchat`). Always on: it is the platform's website channel. It has no settings
section of its own (the page's settings are the operator's, in core settings), and its notifier
pushes to the pages open on this process, so it exists only where the routes are mounted."""

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
        """Only in the process holding the pages' sockets; elsewhere its rows are not even
        claimed (the dispatcher takes rows of the channels it has a notifier for)."""
        if self._hub is None:
            return []
        from bot.channels.webchat import WebChatNotifier

        return [WebChatNotifier(self._hub)]
