"""The channels this service speaks, in one list. Adding a channel is one package (a
:class:`~bot.channels.base.Channel` with its settings section) plus one line here.

Only the light channel classes are imported here: every ``qibot`` command checks the channels'
settings at start (:func:`check`), including the sub-second offline tools.
"""

from __future__ import annotations

from bot.channels.base import Channel
from bot.channels.telegram.channel import Telegram
from bot.channels.webchat_channel import WebChat
from bot.channels.wechat.channel import WeChat
from bot.channels.wecom.channel import WeCom
from bot.config import Settings

CHANNELS: tuple[type[Channel], ...] = (
    WebChat,
    WeChat,
    Telegram,
    WeCom,
)


def check(settings: Settings) -> Settings:
    """Validate every channel's settings section, on or off (a half-filled section fails at
    start, naming the setting); returns ``settings`` for chaining after ``load_settings``."""
    for channel in CHANNELS:
        channel.parse(settings)
    return settings


def configured(settings: Settings) -> list[Channel]:
    """One instance of every channel the settings turn on, for this process."""
    check(settings)
    return [channel(settings) for channel in CHANNELS if channel.enabled(settings)]
