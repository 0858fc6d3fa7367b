"""Plain text from a commissioner: a reply to a notification is relayed to the enterprise
(``cases.reply``, which also keeps a live handoff alive); a reply to a 办结 prompt is the
resolve summary. Text from a chat that is not a linked commissioner goes to the dialogue
engine when enterprises may chat over Telegram, and gets the linking hint otherwise."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.channels.telegram import render
from bot.channels.telegram.commands import operation
from bot.channels.telegram.common import Answer, Deps, as_commissioner, chat_key, is_private, send
from bot.channels.telegram.enterprise import to_engine
from bot.channels.telegram.render import say
from bot.services import linking
from bot.services.staff_actions import Request
from bot.storage.db import transaction

DEFAULT_WORDS = frozenset({"默认", "默認", "default", "-"})


class TextMessages:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        key = chat_key(update)
        if message is None or not message.text or key is None or not is_private(update):
            return  # group chatter is not for us
        async with transaction(self.deps.sessions) as session:
            linked = await linking.by_telegram(session, key) is not None
        if not linked:
            if self.deps.enterprise_chat:
                await to_engine(self.deps, update, context, message.text)
            else:
                await send(context.bot, update, Answer(say("not_linked")))
            return
        replied = message.reply_to_message
        if replied is None or not _from_bot(replied, context.bot.id):
            await send(context.bot, update, Answer(say("which_case")))
            return
        prompt = render.RESOLVE_PROMPT.match(replied.text or "")
        if prompt is not None:
            summary = "" if message.text.strip().lower() in DEFAULT_WORDS else message.text
            work = operation(self.deps, "resolve", Request(number=prompt.group(1), text=summary))
        else:
            number = render.case_of(replied)
            if number is None:
                await send(context.bot, update, Answer(say("which_case")))
                return
            work = operation(self.deps, "reply", Request(number=number, text=message.text))
        await send(context.bot, update, await as_commissioner(self.deps, update, work))


def _from_bot(message: Message, bot_id: int) -> bool:
    return message.from_user is not None and message.from_user.id == bot_id
