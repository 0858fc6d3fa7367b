"""Wiring the Telegram channel into the aiohttp app: the webhook route and the Application's
lifetime (started and stopped with the app). The notifier is not built here
(:mod:`bot.channels.telegram.channel`): every delivering process builds it, serving or not.

The webhook answers 403 unless ``X-Telegram-Bot-Api-Secret-Token`` equals the configured secret
(compared in constant time): the URL alone is not a secret, it sits in proxy logs. Telegram
re-sends an update only when we fail to answer 2xx; a short in-process memory of update ids
(:class:`RecentIds`) drops such a resend if the first delivery got through after all. (A resend
that reaches another worker is not caught; the operations it could repeat are refused the second
time by the case rules, except a relayed reply, which needs both a failure and a worker switch.)

Telegram being unreachable at start does not stop qibot: the channel retries in the background
while the web chat and everything else run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from telegram import Update
from telegram.error import InvalidToken, TelegramError

from bot.channels import edge
from bot.channels.base import ChannelDeps
from bot.channels.telegram.application import TelegramApp, build_application
from bot.channels.telegram.common import Deps, log
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.telegram.tokenlog import quiet_token_logging

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/webhook"
ALLOWED_UPDATES = ["message", "callback_query"]
RETRY_START = (5.0, 300.0)  # first and longest wait between start attempts, seconds


class RecentIds:
    """Ids seen in the last ``ttl`` seconds (at most ``size`` of them), for dropping resends."""

    def __init__(self, ttl: float = 3600.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._seen: OrderedDict[int, float] = OrderedDict()

    def claim(self, key: int) -> bool:
        now = self.clock()
        while self._seen and (len(self._seen) >= self.size or next(iter(self._seen.values())) < now - self.ttl):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def release(self, key: int) -> None:
        self._seen.pop(key, None)


class TelegramChannel:
    """The running channel: the Application once it has started (None before)."""

    def __init__(self, config: TelegramSettings, public_url: str = "") -> None:
        self.config = config
        self.public_url = public_url
        self.application: TelegramApp | None = None
        self.seen = RecentIds()

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.config.secret_token.encode()):
            log.warning("telegram webhook: missing or wrong secret token (from %s)", request.remote)
            return web.json_response({"error": "forbidden"}, status=403)
        application = self.application
        if application is None:
            return web.json_response({"error": "telegram channel is starting"}, status=503)
        raw = await request.read()
        try:
            data = edge.loads(raw, max_depth=64)  # bounded nesting; no lone surrogate or NUL gets through
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # includes bad JSON and bad UTF-8
            log.warning("telegram webhook: unusable update (%s)", type(exc).__name__)
            return web.json_response({"error": "not a Telegram update"}, status=400)
        if not self.seen.claim(update.update_id):
            return web.Response(status=200)
        try:
            await application.process_update(update)
        except BaseException:
            self.seen.release(update.update_id)  # let Telegram's resend try again
            raise
        return web.Response(status=200)

    async def start(self, application: TelegramApp) -> None:
        """Initialise (``getMe``), then set the webhook or start polling."""
        config = self.config
        await application.initialize()
        if config.mode == "polling":
            await application.bot.delete_webhook()
            assert application.updater is not None
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            await application.start()
        elif self.public_url:
            await application.bot.set_webhook(
                url=self.public_url.rstrip("/") + WEBHOOK_PATH, secret_token=config.secret_token,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            log.warning("telegram: QIBOT_PUBLIC_URL is not set, so the webhook was not registered (see README)")
        self.application = application

    async def stop(self, application: TelegramApp) -> None:
        self.application = None
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()  # a no-op if it never initialised


CHANNEL = web.AppKey("telegram_channel", TelegramChannel)


def setup(app: web.Application, deps_key: web.AppKey[ChannelDeps], config: TelegramSettings,
          public_url: str = "") -> None:
    """Mount the webhook (in webhook mode) and run the Application while the app runs. Commands
    and enterprise chats need the dialogue engine, so this is for the serving process only."""
    channel = TelegramChannel(config, public_url)
    app[CHANNEL] = channel
    quiet_token_logging(config.token)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        deps = app[deps_key]
        handlers = Deps(
            sessions=deps.sessions, dialogue=deps.require_dialogue(), wake=deps.wake, clock=deps.clock,
            tz=deps.policy.calendar.tz, public_url=deps.settings.public_url,
            share_personal_data=config.share_personal_data, enterprise_chat=config.enterprise_chat,
        )
        application = build_application(config, handlers)
        retry: asyncio.Task[None] | None = None
        try:
            await channel.start(application)
        except InvalidToken:
            log.error("telegram: the API refused QIBOT_TELEGRAM_TOKEN; the channel stays off")
        except (TelegramError, OSError) as exc:
            log.warning("telegram: cannot reach the Bot API (%s); retrying in the background", type(exc).__name__)
            retry = asyncio.create_task(_keep_trying(channel, application), name="telegram-start")
        yield
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        await channel.stop(application)

    app.cleanup_ctx.append(lifetime)
    if config.mode == "webhook":
        app.router.add_post(WEBHOOK_PATH, channel.webhook)


async def _keep_trying(channel: TelegramChannel, application: TelegramApp) -> None:
    delay, longest = RETRY_START
    while True:
        await asyncio.sleep(delay)
        try:
            await channel.start(application)
            log.info("telegram: channel started")
            return
        except InvalidToken:
            log.error("telegram: the API refused QIBOT_TELEGRAM_TOKEN; the channel stays off")
            return
        except (TelegramError, OSError) as exc:
            log.warning("telegram: still cannot reach the Bot API (%s)", type(exc).__name__)
            delay = min(delay * 2, longest)
