"""Enterprises over Telegram (``telegram_enterprise_chat``): a private chat that is not a linked
commissioner talks to the same dialogue engine as the web chat and WeChat, one adapter, same
handlers. Reply choices become a one-time reply keyboard, whose taps arrive as plain text."""

from __future__ import annotations

from telegram import KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.channels.telegram.common import Answer, Deps, chat_key, send
from bot.channels.telegram.notifier import CHANNEL
from bot.channels.telegram.render import clip
from bot.messages import InboundMessage


async def to_engine(deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    key, message = chat_key(update), update.effective_message
    if key is None or message is None:
        return
    result = await deps.dialogue.handle(
        InboundMessage(channel=CHANNEL, user_id=key, text=text, message_id=str(message.message_id))
    )
    for reply in result.replies:
        markup = (
            ReplyKeyboardMarkup([[KeyboardButton(c)] for c in reply.choices], resize_keyboard=True,
                                one_time_keyboard=True)
            if reply.choices else None
        )
        await send(context.bot, update, Answer(clip(reply.text), markup))
