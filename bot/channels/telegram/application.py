"""The python-telegram-bot Application: API address, rate limiter and handlers.

``base_url``/``base_file_url`` come from ``telegram_api_base_url`` (tests point them at a local
fake). ``AIORateLimiter`` keeps sends within Telegram's limits (30/s overall, 20/min per group)
and, with its default ``max_retries=0``, lets a 429 surface at once: the outbox retries a
notification later instead of a worker sleeping through ``retry_after``. In webhook mode there
is no Updater: the aiohttp route feeds ``process_update``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.telegram.buttons import Buttons
from bot.channels.telegram.commands import Commands
from bot.channels.telegram.common import Deps, log
from bot.channels.telegram.link import LinkCommands
from bot.channels.telegram.messages import TextMessages
from bot.channels.telegram.render import say
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.telegram.transport import http_request

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


def build_application(config: TelegramSettings, deps: Deps) -> TelegramApp:
    base = config.api_base_url.rstrip("/")
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .rate_limiter(AIORateLimiter())
        .request(http_request())
        .get_updates_request(http_request(get_updates=True))
    )
    if config.mode == "webhook":
        builder = builder.updater(None)
    application: TelegramApp = builder.build()
    register_handlers(application, deps)
    return application



def register_handlers(application: TelegramApp, deps: Deps) -> None:
    # New messages only: an edited message must not relay or resolve a second time.
    new = filters.UpdateType.MESSAGE
    link, commands = LinkCommands(deps), Commands(deps)
    for name, callback in (("start", link.start), ("link", link.link), *commands.routes()):
        application.add_handler(CommandHandler(name, callback, filters=new))
    application.add_handler(CallbackQueryHandler(Buttons(deps)))
    application.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, TextMessages(deps)))
    application.add_error_handler(on_error)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One log line per failed update (PTB would otherwise log it as unhandled); the update
    itself is not logged, since it carries message texts."""
    error = context.error
    kind = type(update).__name__ if not isinstance(update, Update) else f"update {update.update_id}"
    log.error("telegram: %s failed: %s", kind, type(error).__name__, exc_info=error)
    chat = update.effective_chat if isinstance(update, Update) else None
    if chat is not None:
        # If Telegram itself is the problem, the log line above is all we can do.
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(chat_id=chat.id, text=say("failed"))
