"""Telegram's settings section (``QIBOT_TELEGRAM_*``), parsed and validated by the channel: core
settings only carry the raw values (:class:`bot.config.Settings`). Secrets are named, never
echoed, in the messages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.config import ConfigError, Settings

MODES = ("webhook", "polling")
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,80}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str  # empty: the channel is off
    secret_token: str  # Telegram echoes it in X-Telegram-Bot-Api-Secret-Token
    api_base_url: str
    mode: str  # webhook | polling (development)
    # Telegram is a cross-border service (PIPL arts. 38-39): no enterprise personal data unless true.
    share_personal_data: bool
    enterprise_chat: bool  # chats that are not linked commissioners talk to the bot

    @classmethod
    def parse(cls, settings: Settings) -> TelegramSettings:
        if settings.telegram_mode not in MODES:
            raise ConfigError(f"QIBOT_TELEGRAM_MODE: must be webhook or polling, got {settings.telegram_mode!r}")
        if not settings.telegram_api_base_url.startswith(("http://", "https://")):
            raise ConfigError("QIBOT_TELEGRAM_API_BASE_URL: must start with http:// or https://")
        if settings.telegram_secret_token and not _SECRET.match(settings.telegram_secret_token):
            raise ConfigError("QIBOT_TELEGRAM_SECRET_TOKEN: must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if settings.telegram_token:
            if not _TOKEN.match(settings.telegram_token):
                raise ConfigError("QIBOT_TELEGRAM_TOKEN: not a bot token from @BotFather (digits:letters)")
            if settings.telegram_mode == "webhook" and not settings.telegram_secret_token:
                raise ConfigError("QIBOT_TELEGRAM_SECRET_TOKEN: required in webhook mode (it authenticates Telegram)")
        return cls(
            token=settings.telegram_token, secret_token=settings.telegram_secret_token,
            api_base_url=settings.telegram_api_base_url, mode=settings.telegram_mode,
            share_personal_data=settings.telegram_share_personal_data,
            enterprise_chat=settings.telegram_enterprise_chat,
        )
