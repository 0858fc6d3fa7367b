"""Commissioner commands: ``/mycases``, ``/case``, ``/duty``, ``/accept``, ``/reply``,
``/resolve`` and ``/help`` — the ``qibot case`` operations, as the linked commissioner."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.channels.telegram import render
from bot.channels.telegram.common import Answer, Deps, Work, as_commissioner, log, send
from bot.channels.telegram.render import say
from bot.services import cases, desk
from bot.storage.models import Commissioner, ServiceCase


class Commands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _run(self, update: Update, context: ContextTypes.DEFAULT_TYPE, work: Work) -> None:
        await send(context.bot, update, await as_commissioner(self.deps, update, work))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        async def work(session: AsyncSession, me: Commissioner) -> Answer:
            return Answer(say("help"))

        await self._run(update, context, work)

    async def mycases(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        async def work(session: AsyncSession, me: Commissioner) -> Answer:
            rows = await desk.open_cases(session, me)
            if not rows:
                return Answer(say("no_cases"))
            text = say("my_cases", count=len(rows)) + "\n" + "\n".join(desk.case_line(c) for c in rows)
            buttons = [[InlineKeyboardButton(f"查看 {c.number}", callback_data=f"show:{c.number}")] for c in rows[:10]]
            return Answer(render.clip(text), InlineKeyboardMarkup(buttons))

        await self._run(update, context, work)

    async def case(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        number = desk.find_number(" ".join(context.args or []))
        if number is None:
            await send(context.bot, update, Answer(say("case_usage", command="case", more=""), ok=False))
            return

        async def work(session: AsyncSession, me: Commissioner) -> Answer:
            return card(self.deps, await cases.require_case(session, number))

        await self._run(update, context, work)

    async def duty(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        wanted = (context.args or [""])[0].lower()

        async def work(session: AsyncSession, me: Commissioner) -> Answer:
            if wanted not in ("on", "off"):
                return Answer(say("duty_now", on=me.on_duty))
            me.on_duty = wanted == "on"
            log.info("telegram: commissioner %s duty %s", me.handle, wanted)
            return Answer(say("duty_set", on=me.on_duty))

        await self._run(update, context, work)

    async def accept(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._act(update, context, "accept", "")

    async def reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._act(update, context, "reply", "内容")

    async def resolve(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._act(update, context, "resolve", "[总结]")

    async def _act(self, update: Update, context: ContextTypes.DEFAULT_TYPE, action: desk.Action, more: str) -> None:
        args = list(context.args or [])
        number = desk.find_number(args[0]) if args else None
        text = " ".join(args[1:])
        if number is None or (action == "reply" and not text.strip()):
            await send(context.bot, update, Answer(say("case_usage", command=action, more=more), ok=False))
            return
        await self._run(update, context, operation(self.deps, action, number, text))


def operation(deps: Deps, action: desk.Action, number: str, text: str) -> Work:
    """One ``desk.act`` as a unit of work, answered with its confirmation."""

    async def work(session: AsyncSession, me: Commissioner) -> Answer:
        await desk.act(session, me, action, number, text, deps.clock())
        log.info("telegram: commissioner %s %s %s", me.handle, action, number)
        key = {"accept": "accepted", "reply": "replied", "resolve": "resolved"}[action]
        markup = render.keyboard(number, ("resolve", "show")) if action != "resolve" else None
        return Answer(say(key, number=number), markup, wake=True)

    return work


def card(deps: Deps, case: ServiceCase) -> Answer:
    text = desk.case_card(case, tz=deps.tz, personal=deps.share_personal_data,
                          link=desk.console_link(deps.public_url, case.number))
    actions = tuple(a for a in render.buttons_for_status(case.status) if a != "show")
    return Answer(render.clip(text), render.keyboard(case.number, actions))
