"""What every Telegram handler shares: its dependencies and the commissioner behind a chat.

Handlers keep no conversation state in memory (several workers may serve one bot): whatever a
later message needs (which case a reply is about, that a reply is a resolve summary) travels in
the message the commissioner replies to.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, ForceReply, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.constants import ChatType

from bot.channels.telegram.render import say, step
from bot.dialogue.engine import DialogueEngine
from bot.services import linking, staff_actions
from bot.services.cases import CaseError
from bot.storage.db import transaction
from bot.storage.models import Commissioner

log = logging.getLogger("bot.channels.telegram")

ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


@dataclass(frozen=True)
class Deps:
    sessions: async_sessionmaker[AsyncSession]
    dialogue: DialogueEngine
    wake: Callable[[], None]  # wakes the outbox dispatcher: an enterprise gets a reply at once
    clock: Callable[[], datetime]
    tz: tzinfo
    public_url: str = ""
    share_personal_data: bool = False
    enterprise_chat: bool = False


def chat_key(update: Update) -> str | None:
    """The chat id as stored in ``commissioner.telegram_chat_id``; None outside a chat."""
    chat = update.effective_chat
    return str(chat.id) if chat is not None else None


def is_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


@dataclass(frozen=True)
class Answer:
    """What to tell the chat once the transaction has committed (never send while holding it)."""

    text: str
    markup: ReplyMarkup | None = None
    ok: bool = True
    wake: bool = False  # the operation wrote outbox rows


Work = Callable[[AsyncSession, Commissioner], Awaitable[Answer]]


async def as_commissioner(deps: Deps, update: Update, work: Work) -> Answer:
    """Run ``work`` in one transaction as the commissioner linked to this private chat. A
    :class:`CaseError` rolls it back and becomes the answer (its next step as a /command), so the
    commissioner learns why and what to do."""
    key = chat_key(update)
    try:
        async with transaction(deps.sessions) as session:
            me = await linking.by_telegram(session, key) if key and is_private(update) else None
            if me is None:
                return Answer(say("commissioners_only" if deps.enterprise_chat else "not_linked"), ok=False)
            answer = await work(session, me)
    except CaseError as exc:
        return Answer(say("refused", reason=staff_actions.explain(exc, step)), ok=False)
    if answer.wake:
        deps.wake()
    return answer


async def send(bot: Bot, update: Update, answer: Answer) -> None:
    chat = update.effective_chat
    if chat is not None:
        await bot.send_message(chat_id=chat.id, text=answer.text, reply_markup=answer.markup)
