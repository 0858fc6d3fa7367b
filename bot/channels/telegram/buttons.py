"""The inline buttons under a notification or case card: 认领 (accept), 办结 (resolve), 查看 (show).

办结 does not resolve at once: it asks for a summary with a ForceReply prompt whose text names the
case (``【办结 QI-…】``); the commissioner's reply to that prompt resolves the case with the reply
as the summary (``默认`` for a default one). The prompt carries the state, so nothing is kept
in memory between the two steps and any worker can take the reply.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, ForceReply, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram import render
from bot.channels.telegram.commands import card, operation
from bot.channels.telegram.common import Answer, Deps, as_commissioner, log, send
from bot.channels.telegram.render import say
from bot.services import cases
from bot.services.staff_actions import Request
from bot.storage.models import Commissioner


class Buttons:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        parsed = render.parse_callback(query.data if isinstance(query.data, str) else None)
        if parsed is None:
            await query.answer("按钮已失效")
            return
        action, number = parsed
        if action == "accept":
            await self._accept(update, context, query, number)
        elif action == "resolve":
            await self._ask_summary(update, context, query, number)
        else:
            await self._show(update, context, query, number)

    async def _accept(self, update: Update, context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery,
                      number: str) -> None:
        names: list[str] = []
        work = operation(self.deps, "accept", Request(number=number))

        async def accept(session: AsyncSession, me: Commissioner) -> Answer:
            names.append(me.name)
            return await work(session, me)

        answer = await as_commissioner(self.deps, update, accept)
        if not answer.ok:
            await query.answer(answer.text[:200], show_alert=True)
            return
        await query.answer(f"已受理 {number}")
        await _mark(query, say("accepted_mark", name=names[0]), render.keyboard(number, ("resolve", "show")))

    async def _ask_summary(self, update: Update, context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery,
                           number: str) -> None:
        async def check(session: AsyncSession, me: Commissioner) -> Answer:
            cases.check_resolvable(await cases.require_case(session, number))
            prompt = ForceReply(input_field_placeholder="办结总结")
            return Answer(say("resolve_prompt", number=number), prompt)

        answer = await as_commissioner(self.deps, update, check)
        if not answer.ok:
            await query.answer(answer.text[:200], show_alert=True)
            return
        await query.answer()
        await send(context.bot, update, answer)

    async def _show(self, update: Update, context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery,
                    number: str) -> None:
        async def show(session: AsyncSession, me: Commissioner) -> Answer:
            return card(self.deps, await cases.require_case(session, number))

        answer = await as_commissioner(self.deps, update, show)
        await query.answer()
        await send(context.bot, update, answer)


async def _mark(query: CallbackQuery, mark: str, markup: InlineKeyboardMarkup | None) -> None:
    """Append the outcome to the notification, so the chat shows what was done with it."""
    message = query.message
    text = getattr(message, "text", None)
    if not text:
        return
    try:
        await query.edit_message_text(render.clip(f"{text}\n\n{mark}"), reply_markup=markup)
    except TelegramError as exc:  # too old to edit, or unchanged: the toast already said it
        log.debug("telegram: notification not marked (%s)", type(exc).__name__)
