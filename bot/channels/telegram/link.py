"""``/start [CODE]`` and ``/link CODE``: link this private chat to a commissioner.

The code is the only proof: the chat's username, name or language say nothing about who is
typing. ``/start CODE`` is what Telegram sends for a deep link ``t.me/<bot>?start=CODE``.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.channels.telegram.common import Answer, Deps, chat_key, is_private, log, send
from bot.channels.telegram.enterprise import to_engine
from bot.channels.telegram.render import say
from bot.services import linking
from bot.services.linking import LinkError
from bot.storage.db import transaction


class LinkCommands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.args:
            await self._link(update, context, context.args[0])
            return
        key = chat_key(update)
        async with transaction(self.deps.sessions) as session:
            me = await linking.by_telegram(session, key) if key and is_private(update) else None
            name = me.name if me else ""
        if me is not None:
            await send(context.bot, update, Answer(say("welcome_back", name=name) + "\n" + say("help")))
        elif self.deps.enterprise_chat and is_private(update):
            await to_engine(self.deps, update, context, "你好")
        else:
            await send(context.bot, update, Answer(say("not_linked")))

    async def link(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not context.args:
            await send(context.bot, update, Answer(say("link_usage")))
            return
        await self._link(update, context, context.args[0])

    async def _link(self, update: Update, context: ContextTypes.DEFAULT_TYPE, code: str) -> None:
        key = chat_key(update)
        if key is None or not is_private(update):
            await send(context.bot, update, Answer(say("link_private_only")))
            return
        try:
            async with transaction(self.deps.sessions) as session:
                me = await linking.link_telegram(session, code, key, self.deps.clock())
                name, handle = me.name, me.handle
        except LinkError as exc:
            log.info("telegram link refused: %s", exc)
            await send(context.bot, update, Answer(say("refused", reason=str(exc))))
            return
        log.info("telegram chat linked to commissioner %s", handle)
        await send(context.bot, update, Answer(say("linked", name=name, handle=handle) + say("help")))
