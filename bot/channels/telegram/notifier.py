"""Outbox rows for channel ``telegram``: commissioner notifications with inline buttons, and
(with ``telegram_enterprise_chat``) messages to enterprises that chat over Telegram.

Every send goes through the Application's bot, so ``AIORateLimiter`` paces it within
Telegram's limits. A 429 (``RetryAfter``), a network error or a blocked bot raises
:class:`NotifierUnavailable`, and the outbox dispatcher retries later with backoff: nothing is
dropped and no worker sleeps through Telegram's ``retry_after``. An enterprise that blocked the
bot gets the message ``HELD`` instead, handed over at its next contact like any other channel.

The bot is initialised (``getMe``, which also checks the token) at the first delivery, not when
the process starts: a process with nothing to send for Telegram never calls it, and Telegram
being unreachable at start only delays its rows, retried like any other failed send.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot
from telegram.error import Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, ExtBot

from bot.channels.telegram import render
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.telegram.transport import http_request
from bot.notify.base import Delivery, Notification, NotifierUnavailable
from intents.normalize import to_script

log = logging.getLogger(__name__)

CHANNEL = "telegram"


def build_bot(config: TelegramSettings) -> ExtBot[Any]:
    """A bot for sending only, without an Application (a delivery-only process runs no
    handlers), paced by its own ``AIORateLimiter`` like the Application's; ``shutdown()`` it."""
    base = config.api_base_url.rstrip("/")
    return ExtBot(config.token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
                  rate_limiter=AIORateLimiter(), request=http_request(),
                  get_updates_request=http_request(get_updates=True))


class TelegramNotifier:
    channel = CHANNEL

    def __init__(self, bot: Bot, *, share_personal_data: bool = False, public_url: str = "") -> None:
        self.bot = bot
        self.share_personal_data = share_personal_data
        self.public_url = public_url

    async def deliver(self, notification: Notification) -> Delivery:
        enterprise = notification.identity_id is not None
        if enterprise:
            script = str(notification.payload.get("script") or "hans")
            text, markup = render.clip(to_script(notification.text, script)), None
        else:
            text = render.notification_text(notification, personal=self.share_personal_data,
                                            public_url=self.public_url)
            markup = render.notification_keyboard(notification)
        if not text.strip():
            return Delivery.SENT
        await self._ready()
        try:
            chat_id = int(notification.recipient)
        except ValueError:
            raise NotifierUnavailable(f"not a Telegram chat id: {notification.recipient[:20]!r}") from None
        try:
            await self.bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
        except RetryAfter as exc:
            raise NotifierUnavailable(f"Telegram rate limit: {exc.message}") from None
        except Forbidden:
            if enterprise:
                return Delivery.HELD
            log.warning("outbox %d: Telegram refused chat of commissioner %s (bot blocked or chat gone)",
                        notification.id, notification.payload.get("commissioner"))
            raise NotifierUnavailable("Telegram: bot blocked by the user or chat not reachable") from None
        except TelegramError as exc:
            # The dispatcher logs and stores this: the token (part of every API URL) must not be in it.
            detail = exc.message.replace(self.bot.token, "<token>")[:200]
            raise NotifierUnavailable(f"Telegram {type(exc).__name__}: {detail}") from None
        return Delivery.SENT

    async def _ready(self) -> None:
        """Initialise the bot once (a no-op afterwards); a failure is retried with the row."""
        try:
            await self.bot.initialize()
        except InvalidToken:  # its message quotes the token: never into a log line or last_error
            log.error("telegram: the API refused QIBOT_TELEGRAM_TOKEN; notifications wait")
            raise NotifierUnavailable("Telegram refused QIBOT_TELEGRAM_TOKEN") from None
        except TelegramError as exc:
            raise NotifierUnavailable(f"Telegram unreachable: {type(exc).__name__}") from None
