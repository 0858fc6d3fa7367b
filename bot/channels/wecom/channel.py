"""WeCom as a :class:`~bot.channels.base.Channel`: on when ``QIBOT_WECOM_CORP_ID`` is set; the
callback in the serving process; app messages (and the group robot's posts, when its key is
set) from any delivering process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelDeps
from bot.channels.wecom.settings import WeComSettings
from bot.config import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.wecom.api import WeComApi
    from bot.notify.base import Notifier


class WeCom(Channel):
    name = "wecom"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = self.parse(settings)
        self._api: WeComApi | None = None

    @classmethod
    def parse(cls, settings: Settings) -> WeComSettings:
        return WeComSettings.parse(settings)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return bool(settings.wecom_corp_id)

    def setup(self, app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
        from bot.channels.wecom.web import setup

        setup(app, deps, self.config, self.settings.max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifetime(self, deps: ChannelDeps) -> AsyncIterator[None]:
        """One API client (its access token cached in the process) for app messages and robot posts."""
        from bot.channels.wecom.api import WeComApi

        config = self.config
        self._api = WeComApi(config.api_base_url, config.corp_id, config.secret, config.agent_id,
                             robot_key=config.robot_key)
        try:
            yield
        finally:
            api, self._api = self._api, None
            await api.close()

    def notifiers(self, deps: ChannelDeps) -> list[Notifier]:
        """App messages to commissioners; with a group robot, also the team posts they queue
        (channel ``wecom_robot``, paced to the robot's ~20 a minute)."""
        from bot.channels.wecom.notifier import RobotNotifier, TokenBucket, WeComNotifier

        assert self._api is not None, "notifiers() is called within lifetime()"
        team = bool(self.config.robot_key)
        found: list[Notifier] = [WeComNotifier(self._api, deps.sessions, public_url=deps.settings.public_url,
                                               team=team)]
        if team:
            found.append(RobotNotifier(self._api, TokenBucket()))
        return found
